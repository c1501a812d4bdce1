"""The hand-written client of the SQL-Databricks Bridge REST API.

::

    from sql_databricks_bridge.sdk import BridgeClient

    client = BridgeClient(base_url="http://localhost:8000", token="your-api-token")
    job = client.extract(queries_path="./queries", config_path="./config", country="Colombia",
                         destination="/Volumes/catalog/schema/volume")
    status = client.get_job_status(job.job_id)
    print(status.state)

:class:`BridgeClient` (sync) and :class:`AsyncBridgeClient` (``async def``
methods) have one method per operation of the API (see :data:`OPERATIONS`),
plus ``wait_for_job`` and ``wait_for_sync_event``. They call the code
generated from openapi.json (``sql_databricks_bridge._generated``, never edited
by hand) and return its typed models (:mod:`.models`); errors are
:mod:`.errors` exceptions carrying the API's error body.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import errors, models
    from ._client import EXEMPT_OPERATIONS, OPERATIONS, AsyncBridgeClient, BridgeClient
    from ._http import RETRY_STATUSES, RetryPolicy
    from .errors import (
        BridgeError,
        ConflictError,
        ForbiddenError,
        NotFoundError,
        RateLimitedError,
        RequestTimeoutError,
        ServerError,
        TransportError,
        UnauthorizedError,
        ValidationError,
        WaitTimeoutError,
    )
    from .models import (
        AuditLine,
        AuditPage,
        EventStatus,
        JobAccepted,
        JobList,
        JobState,
        JobStatus,
        Live,
        Operation,
        ParamsView,
        QueryInfo,
        QueryState,
        QueryStatus,
        Ready,
        SyncEvent,
    )

# The REST client is imported on first use (PEP 562), not with the package:
# ``sql_databricks_bridge.sdk.databricks`` (the BridgeOperator, Python >= 3.10)
# must import without it, and its generated code needs Python >= 3.11.
_HOMES = {
    "errors": None,
    "models": None,
    "EXEMPT_OPERATIONS": "_client",
    "OPERATIONS": "_client",
    "AsyncBridgeClient": "_client",
    "BridgeClient": "_client",
    "RETRY_STATUSES": "_http",
    "RetryPolicy": "_http",
    "AuditLine": "models",
    "AuditPage": "models",
    "EventStatus": "models",
    "JobAccepted": "models",
    "JobList": "models",
    "JobState": "models",
    "JobStatus": "models",
    "Live": "models",
    "Operation": "models",
    "ParamsView": "models",
    "QueryInfo": "models",
    "QueryState": "models",
    "QueryStatus": "models",
    "Ready": "models",
    "SyncEvent": "models",
}


def __getattr__(name: str):
    import importlib

    if name in _HOMES:
        home = _HOMES[name]
        if home is None:
            return importlib.import_module(f".{name}", __name__)
        return getattr(importlib.import_module(f".{home}", __name__), name)
    if name.endswith("Error"):
        errors = importlib.import_module(".errors", __name__)
        if hasattr(errors, name):
            return getattr(errors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EXEMPT_OPERATIONS",
    "OPERATIONS",
    "RETRY_STATUSES",
    "AsyncBridgeClient",
    "AuditLine",
    "AuditPage",
    "BridgeClient",
    "BridgeError",
    "ConflictError",
    "EventStatus",
    "ForbiddenError",
    "JobAccepted",
    "JobList",
    "JobState",
    "JobStatus",
    "Live",
    "NotFoundError",
    "Operation",
    "ParamsView",
    "QueryInfo",
    "QueryState",
    "QueryStatus",
    "RateLimitedError",
    "Ready",
    "RequestTimeoutError",
    "RetryPolicy",
    "ServerError",
    "SyncEvent",
    "TransportError",
    "UnauthorizedError",
    "ValidationError",
    "WaitTimeoutError",
    "errors",
    "models",
]

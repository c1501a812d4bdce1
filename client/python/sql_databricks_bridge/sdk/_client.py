"""BridgeClient and AsyncBridgeClient: one method per API operation."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Iterable
from typing import Any

import httpx

from .._generated.client import AuthenticatedClient, Client
from . import _ops
from ._http import RetryPolicy, async_error_hook, run_async, run_sync, sync_error_hook
from ._ops import PathLike
from .errors import WaitTimeoutError
from .models import (
    FINAL_EVENT_STATUSES,
    FINAL_JOB_STATES,
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
    Ready,
    SparkAborted,
    SparkCommitted,
    SparkRun,
    SparkStage,
    SparkWrite,
    SyncEvent,
)

#: operationId in openapi.json → the method of BridgeClient / AsyncBridgeClient
#: that calls it. tests/clients/test_python_drift.py checks it both ways against
#: the spec: a new operation without a method (or a method for an operation the
#: spec no longer has) fails the tests.
OPERATIONS: dict[str, str] = {
    "extract": "extract",
    "get_job_status": "get_job_status",
    "list_jobs": "list_jobs",
    "cancel_job": "cancel_job",
    "list_queries": "list_queries",
    "show_params": "show_params",
    "list_countries": "list_countries",
    "submit_sync_event": "submit_sync_event",
    "get_sync_event": "get_sync_event",
    "list_sync_events": "list_sync_events",
    "search_audit": "search_audit",
    "open_spark_write": "open_spark_write",
    "commit_spark_write": "commit_spark_write",
    "abort_spark_write": "abort_spark_write",
    "health_live": "health_live",
    "health_ready": "health_ready",
    "metrics": "metrics",
    "openapi": "openapi",
}

#: Operations deliberately without a method, and why.
EXEMPT_OPERATIONS: dict[str, str] = {
    "swagger_ui": "an HTML page (Swagger UI) for browsers, not an API call",
}

DEFAULT_TIMEOUT = 30.0


def _timeout(value: float | httpx.Timeout | None) -> httpx.Timeout:
    if isinstance(value, httpx.Timeout):
        return value
    return httpx.Timeout(value)


class _Base:
    """Construction shared by the sync and async clients."""

    _hook_event = "response"

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_attempts: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        verify_ssl: Any = True,
        headers: dict[str, str] | None = None,
        httpx_args: dict[str, Any] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._base_url = str(base_url)
        self._token = token or None
        self._timeout = _timeout(timeout)
        self._policy = RetryPolicy(
            max_attempts=max_attempts,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
        )
        args = dict(httpx_args or {})
        hooks = {k: list(v) for k, v in dict(args.pop("event_hooks", {}) or {}).items()}
        hooks.setdefault("response", []).append(self._make_hook(self._token))
        args["event_hooks"] = hooks
        common: dict[str, Any] = {
            "base_url": self._base_url,
            "timeout": self._timeout,
            "verify_ssl": verify_ssl,
            "headers": dict(headers or {}),
            "httpx_args": args,
        }
        # Private: the generated client's own repr would show the token.
        if self._token is None:
            self.__api: Any = Client(**common)
        else:
            self.__api = AuthenticatedClient(token=self._token, **common)

    @staticmethod
    def _make_hook(secret: str | None) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def _api(self) -> Any:
        return self.__api

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def timeout(self) -> httpx.Timeout:
        return self._timeout

    def __repr__(self) -> str:
        token = "None" if self._token is None else "'***'"
        return f"{type(self).__name__}(base_url={self._base_url!r}, token={token})"

    __str__ = __repr__


class BridgeClient(_Base):
    """The SQL-Databricks Bridge REST API, synchronously.

    ::

        from sql_databricks_bridge.sdk import BridgeClient

        client = BridgeClient(base_url="http://localhost:8000", token="your-api-token")
        job = client.extract(queries_path="./queries", config_path="./config",
                             country="Colombia", destination="/Volumes/catalog/schema/volume")
        status = client.wait_for_job(job.job_id)
        print(status.state)   # "succeeded"

    Args:
        base_url: where the server listens, e.g. ``http://localhost:8000``.
        token: a token of the server's permissions.yaml, sent as
            ``Authorization: Bearer``; ``None`` for the open routes only (health,
            metrics, openapi). Never shown by ``repr`` or in exceptions.
        timeout: seconds per request (connect, read, write, pool), or an
            ``httpx.Timeout``; ``None`` waits forever.
        max_attempts, backoff, max_backoff, max_retry_after: retries after
            connection failures and 429/502/503/504 (see :class:`RetryPolicy`),
            of GET and DELETE, and of the POSTs (``extract``,
            ``submit_sync_event``), which send an ``Idempotency-Key`` (a new
            UUID per call, or the caller's ``idempotency_key``) so that the
            server acts on them once however often they are sent.
        verify_ssl, headers, httpx_args: passed to the underlying ``httpx.Client``.

    Errors raise :class:`~sql_databricks_bridge.sdk.errors.BridgeError`
    subclasses. Use as a context manager, or call :meth:`close`.
    """

    @staticmethod
    def _make_hook(secret: str | None) -> Any:
        return sync_error_hook(secret)

    def _run(self, call: Any) -> Any:
        return run_sync(call, self._api, self._policy, self._token)

    def close(self) -> None:
        """Close the connection pool."""
        self._api.get_httpx_client().close()

    def __enter__(self) -> BridgeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- jobs -----------------------------------------------------------------

    def extract(
        self,
        queries_path: PathLike,
        config_path: PathLike,
        country: str,
        destination: str,
        queries: Iterable[str] | None = None,
        overwrite: bool = False,
        idempotency_key: str | None = None,
        partition_on: str | None = None,
        partitions: int | None = None,
    ) -> JobAccepted:
        """Queue an extraction (``POST /extract``); returns ``job_id``, ``state``, ``status_url``.

        Paths are the server's (inside its queries and config roots);
        ``destination`` is a Unity Catalog Volume path. ``queries`` picks
        queries by name (all when ``None``); ``overwrite`` replaces earlier output.
        ``idempotency_key`` (default: a new UUID per call) is sent on every
        attempt; pass your own to make a retry of your own (e.g. after a crash)
        get the first job instead of a second one. The same key with different
        arguments raises ValidationError (``idempotency_key_reused``).
        ``partition_on`` (and ``partitions``, default 4) reads each query in
        ranges of that column concurrently.
        """
        return self._run(
            _ops.extract(
                queries_path, config_path, country, destination, queries, overwrite, idempotency_key,
                partition_on, partitions,
            )
        )

    def get_job_status(self, job_id: str) -> JobStatus:
        """A job's state, per-query progress, times and discrepancies (``GET /jobs/{job_id}``)."""
        return self._run(_ops.get_job_status(job_id))

    def list_jobs(
        self,
        state: str | JobState | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        offset: int | None = None,
    ) -> JobList:
        """One page of this token's jobs, newest first (``GET /jobs``).

        Returns a ``JobList``: ``.jobs`` and ``.next_cursor`` (pass it as ``cursor``
        for the next page; ``None`` on the last one).
        """
        return self._run(_ops.list_jobs(state, limit, cursor, offset))

    def cancel_job(self, job_id: str) -> JobStatus:
        """Cancel a job (``DELETE /jobs/{job_id}``); a finished job raises ConflictError."""
        return self._run(_ops.cancel_job(job_id))

    def wait_for_job(self, job_id: str, poll_interval: float = 1.0, timeout: float | None = 600) -> JobStatus:
        """Poll a job until it is succeeded, failed, cancelled or interrupted; return that status.

        Raises :class:`WaitTimeoutError` (a ``TimeoutError``, with ``.last_status``)
        after ``timeout`` seconds (``None``: no limit). A failed job is returned,
        not raised: check ``status.state``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.get_job_status(job_id)
            if status.state in FINAL_JOB_STATES:
                return status
            pause = _pause(poll_interval, deadline)
            if pause is None:
                raise WaitTimeoutError(
                    f"job {job_id} still {status.state} after {timeout}s", last_status=status
                )
            time.sleep(pause)

    # -- queries --------------------------------------------------------------

    def list_queries(self, queries_path: PathLike | None = None) -> list[QueryInfo]:
        """The server's .sql files and their parameters (``GET /queries``)."""
        return self._run(_ops.list_queries(queries_path))

    def list_countries(self, config_path: PathLike | None = None) -> list[str]:
        """The countries the config directory has a ``<Country>.yaml`` for (``GET /countries``)."""
        return self._run(_ops.list_countries(config_path))

    def show_params(
        self,
        country: str,
        config_path: PathLike | None = None,
        queries: Iterable[str] | str | None = None,
        queries_path: PathLike | None = None,
    ) -> ParamsView:
        """A country's merged parameters, and the named queries rendered (``GET /params``)."""
        return self._run(_ops.show_params(country, config_path, queries, queries_path))

    # -- sync events ----------------------------------------------------------

    def submit_sync_event(
        self,
        operation: str | Operation,
        source_table: str,
        target_table: str,
        primary_keys: Iterable[str] | None = None,
        columns: Iterable[str] | None = None,
        idempotency_key: str | None = None,
    ) -> SyncEvent:
        """Queue a sync of a Databricks table into a SQL Server table (``POST /sync/events``).

        ``operation``: INSERT, UPDATE, DELETE or UPSERT; ``primary_keys`` are
        needed for all but INSERT; ``columns`` limits the copied columns (all
        of the source's when ``None``). Returns the event as written (pending).
        ``idempotency_key``: as for :meth:`extract`.
        """
        return self._run(
            _ops.submit_sync_event(operation, source_table, target_table, primary_keys, columns, idempotency_key)
        )

    def get_sync_event(self, event_id: str) -> SyncEvent:
        """An event: ``status``, ``rows_expected``, ``rows_affected``, ``error_message``, ..."""
        return self._run(_ops.get_sync_event(event_id))

    def list_sync_events(self, status: str | EventStatus | None = None, limit: int | None = None) -> list[SyncEvent]:
        """This token's events, newest first (``GET /sync/events``), optionally by status."""
        return self._run(_ops.list_sync_events(status, limit))

    def wait_for_sync_event(
        self, event_id: str, poll_interval: float = 1.0, timeout: float | None = 600
    ) -> SyncEvent:
        """Poll an event until it is completed or failed; return it (see :meth:`wait_for_job`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            event = self.get_sync_event(event_id)
            if event.status in FINAL_EVENT_STATUSES:
                return event
            pause = _pause(poll_interval, deadline)
            if pause is None:
                raise WaitTimeoutError(
                    f"sync event {event_id} still {event.status} after {timeout}s", last_status=event
                )
            time.sleep(pause)

    # -- Spark writes ---------------------------------------------------------

    def open_spark_write(self, write: SparkWrite | dict[str, Any]) -> SparkRun:
        """Open a Spark job's distributed write (``POST /spark/writes``).

        ``write`` (a :class:`SparkWrite` or its dict): ``write_id``, ``run_id``,
        ``operation``, ``target_table``, ``columns`` (``name``, ``spark_type``),
        ``primary_keys``, ``stage_schema``, ``max_delete_rows``, ``table_lock``.
        Needs ``write`` on the target. The answer's ``write_id`` (scoped to
        this token's user) and ``target_table`` (resolved) are what the tasks
        stage under. The data source's ``bridge_url`` option calls this.
        """
        return self._run(_ops.open_spark_write(write))

    def commit_spark_write(
        self, write: SparkWrite | dict[str, Any], stages: Iterable[SparkStage | tuple[str, int]]
    ) -> SparkCommitted:
        """Apply the stages the tasks reported (table, rows) once (``POST /spark/writes/commit``)."""
        return self._run(_ops.commit_spark_write(write, stages))

    def abort_spark_write(self, write: SparkWrite | dict[str, Any]) -> SparkAborted:
        """Close the write's run and drop its stage tables (``POST /spark/writes/abort``)."""
        return self._run(_ops.abort_spark_write(write))

    # -- audit ----------------------------------------------------------------

    def search_audit(
        self,
        user: str | None = None,
        resource: str | None = None,
        action: str | None = None,
        event_type: str | None = None,
        outcome: str | None = None,
        since: str | datetime.datetime | None = None,
        until: str | datetime.datetime | None = None,
        limit: int | None = None,
    ) -> AuditPage:
        """Audit lines this token may read, newest first (``GET /audit``): its own,
        or everyone's with ``audit: all`` in permissions.yaml. ``since``/``until``
        are RFC 3339 times; ``resource`` matches a part of the resource."""
        return self._run(_ops.search_audit(user, resource, action, event_type, outcome, since, until, limit))

    # -- health and docs ------------------------------------------------------

    def health_live(self) -> Live:
        """Liveness: ``status`` (``ok``), ``version``, ``uptime_seconds``."""
        return self._run(_ops.health_live())

    def health_ready(self) -> Ready:
        """Readiness of SQL Server and Databricks; the Ready body for 200 and 503 alike.

        ``ready.status`` is ``ready`` or ``not_ready``; ``ready.sqlserver`` and
        ``ready.databricks`` say which check failed.
        """
        return self._run(_ops.health_ready())

    def metrics(self) -> str:
        """The Prometheus metrics, as text."""
        return self._run(_ops.metrics())

    def openapi(self) -> dict[str, Any]:
        """The server's OpenAPI document, as a dict."""
        return self._run(_ops.openapi())


class AsyncBridgeClient(_Base):
    """The same API as :class:`BridgeClient`, with ``async def`` methods (httpx.AsyncClient).

    ::

        async with AsyncBridgeClient(base_url="http://localhost:8000", token="...") as client:
            job = await client.extract(...)
            status = await client.wait_for_job(job.job_id)
    """

    @staticmethod
    def _make_hook(secret: str | None) -> Any:
        return async_error_hook(secret)

    async def _run(self, call: Any) -> Any:
        return await run_async(call, self._api, self._policy, self._token)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._api.get_async_httpx_client().aclose()

    async def __aenter__(self) -> AsyncBridgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def extract(
        self,
        queries_path: PathLike,
        config_path: PathLike,
        country: str,
        destination: str,
        queries: Iterable[str] | None = None,
        overwrite: bool = False,
        idempotency_key: str | None = None,
        partition_on: str | None = None,
        partitions: int | None = None,
    ) -> JobAccepted:
        """See :meth:`BridgeClient.extract`."""
        return await self._run(
            _ops.extract(
                queries_path, config_path, country, destination, queries, overwrite, idempotency_key,
                partition_on, partitions,
            )
        )

    async def get_job_status(self, job_id: str) -> JobStatus:
        """See :meth:`BridgeClient.get_job_status`."""
        return await self._run(_ops.get_job_status(job_id))

    async def list_jobs(
        self,
        state: str | JobState | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        offset: int | None = None,
    ) -> JobList:
        """See :meth:`BridgeClient.list_jobs`."""
        return await self._run(_ops.list_jobs(state, limit, cursor, offset))

    async def cancel_job(self, job_id: str) -> JobStatus:
        """See :meth:`BridgeClient.cancel_job`."""
        return await self._run(_ops.cancel_job(job_id))

    async def wait_for_job(self, job_id: str, poll_interval: float = 1.0, timeout: float | None = 600) -> JobStatus:
        """See :meth:`BridgeClient.wait_for_job`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = await self.get_job_status(job_id)
            if status.state in FINAL_JOB_STATES:
                return status
            pause = _pause(poll_interval, deadline)
            if pause is None:
                raise WaitTimeoutError(
                    f"job {job_id} still {status.state} after {timeout}s", last_status=status
                )
            await asyncio.sleep(pause)

    async def list_queries(self, queries_path: PathLike | None = None) -> list[QueryInfo]:
        """See :meth:`BridgeClient.list_queries`."""
        return await self._run(_ops.list_queries(queries_path))

    async def list_countries(self, config_path: PathLike | None = None) -> list[str]:
        """See :meth:`BridgeClient.list_countries`."""
        return await self._run(_ops.list_countries(config_path))

    async def show_params(
        self,
        country: str,
        config_path: PathLike | None = None,
        queries: Iterable[str] | str | None = None,
        queries_path: PathLike | None = None,
    ) -> ParamsView:
        """See :meth:`BridgeClient.show_params`."""
        return await self._run(_ops.show_params(country, config_path, queries, queries_path))

    async def submit_sync_event(
        self,
        operation: str | Operation,
        source_table: str,
        target_table: str,
        primary_keys: Iterable[str] | None = None,
        columns: Iterable[str] | None = None,
        idempotency_key: str | None = None,
    ) -> SyncEvent:
        """See :meth:`BridgeClient.submit_sync_event`."""
        return await self._run(
            _ops.submit_sync_event(operation, source_table, target_table, primary_keys, columns, idempotency_key)
        )

    async def get_sync_event(self, event_id: str) -> SyncEvent:
        """See :meth:`BridgeClient.get_sync_event`."""
        return await self._run(_ops.get_sync_event(event_id))

    async def list_sync_events(
        self, status: str | EventStatus | None = None, limit: int | None = None
    ) -> list[SyncEvent]:
        """See :meth:`BridgeClient.list_sync_events`."""
        return await self._run(_ops.list_sync_events(status, limit))

    async def open_spark_write(self, write: SparkWrite | dict[str, Any]) -> SparkRun:
        """See :meth:`BridgeClient.open_spark_write`."""
        return await self._run(_ops.open_spark_write(write))

    async def commit_spark_write(
        self, write: SparkWrite | dict[str, Any], stages: Iterable[SparkStage | tuple[str, int]]
    ) -> SparkCommitted:
        """See :meth:`BridgeClient.commit_spark_write`."""
        return await self._run(_ops.commit_spark_write(write, stages))

    async def abort_spark_write(self, write: SparkWrite | dict[str, Any]) -> SparkAborted:
        """See :meth:`BridgeClient.abort_spark_write`."""
        return await self._run(_ops.abort_spark_write(write))

    async def search_audit(
        self,
        user: str | None = None,
        resource: str | None = None,
        action: str | None = None,
        event_type: str | None = None,
        outcome: str | None = None,
        since: str | datetime.datetime | None = None,
        until: str | datetime.datetime | None = None,
        limit: int | None = None,
    ) -> AuditPage:
        """See :meth:`BridgeClient.search_audit`."""
        return await self._run(_ops.search_audit(user, resource, action, event_type, outcome, since, until, limit))

    async def wait_for_sync_event(
        self, event_id: str, poll_interval: float = 1.0, timeout: float | None = 600
    ) -> SyncEvent:
        """See :meth:`BridgeClient.wait_for_sync_event`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            event = await self.get_sync_event(event_id)
            if event.status in FINAL_EVENT_STATUSES:
                return event
            pause = _pause(poll_interval, deadline)
            if pause is None:
                raise WaitTimeoutError(
                    f"sync event {event_id} still {event.status} after {timeout}s", last_status=event
                )
            await asyncio.sleep(pause)

    async def health_live(self) -> Live:
        """See :meth:`BridgeClient.health_live`."""
        return await self._run(_ops.health_live())

    async def health_ready(self) -> Ready:
        """See :meth:`BridgeClient.health_ready`."""
        return await self._run(_ops.health_ready())

    async def metrics(self) -> str:
        """See :meth:`BridgeClient.metrics`."""
        return await self._run(_ops.metrics())

    async def openapi(self) -> dict[str, Any]:
        """See :meth:`BridgeClient.openapi`."""
        return await self._run(_ops.openapi())


def _pause(poll_interval: float, deadline: float | None) -> float | None:
    """How long to sleep before the next poll; ``None`` when the deadline has passed."""
    if deadline is None:
        return poll_interval
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    return min(poll_interval, left)

"""One builder per API operation: the facade's arguments → a :class:`Call` of the generated code.

Shared by :class:`BridgeClient` and :class:`AsyncBridgeClient`, which only run
the calls (sync or async). Arguments are checked here where the generated
models would otherwise fail with a bare ``ValueError`` (enum values), so a
wrong value raises the same :class:`ValidationError` the server would.
"""

from __future__ import annotations

import datetime
import json
import os
import uuid
from collections.abc import Iterable
from enum import Enum
from typing import Any, TypeVar

from .._generated.api.audit import search_audit as _search_audit
from .._generated.api.docs import openapi as _openapi
from .._generated.api.health import health_live as _health_live
from .._generated.api.health import health_ready as _health_ready
from .._generated.api.health import metrics as _metrics
from .._generated.api.jobs import cancel_job as _cancel_job
from .._generated.api.jobs import extract as _extract
from .._generated.api.jobs import get_job_status as _get_job_status
from .._generated.api.jobs import list_jobs as _list_jobs
from .._generated.api.queries import list_countries as _list_countries
from .._generated.api.queries import list_queries as _list_queries
from .._generated.api.queries import show_params as _show_params
from .._generated.api.spark import abort_spark_write as _abort_spark_write
from .._generated.api.spark import commit_spark_write as _commit_spark_write
from .._generated.api.spark import open_spark_write as _open_spark_write
from .._generated.api.sync import get_sync_event as _get_sync_event
from .._generated.api.sync import list_sync_events as _list_sync_events
from .._generated.api.sync import submit_sync_event as _submit_sync_event
from .._generated.types import UNSET
from ._http import RETRY_STATUSES, Call
from .errors import BridgeError, ValidationError
from .models import (
    AuditPage,
    CountryList,
    EventStatus,
    ExtractRequest,
    JobAccepted,
    JobList,
    JobState,
    JobStatus,
    Live,
    Operation,
    ParamsView,
    QueryList,
    Ready,
    SparkAborted,
    SparkCommit,
    SparkCommitted,
    SparkRun,
    SparkStage,
    SparkWrite,
    SubmitSyncEvent,
    SyncEvent,
    SyncEventList,
)

T = TypeVar("T")
E = TypeVar("E", bound=Enum)

PathLike = str | os.PathLike[str]


def _expect(operation: str, cls: type[T]) -> Any:
    def result(response: Any) -> T:
        parsed = response.parsed
        if not isinstance(parsed, cls):
            raise BridgeError(
                f"{operation}: unexpected answer (HTTP {int(response.status_code)}), "
                f"expected {cls.__name__}",
                status=int(response.status_code),
                code="unexpected_response",
            )
        return parsed

    return result


def _opt(value: Any) -> Any:
    return UNSET if value is None else value


def _path(value: PathLike) -> str:
    return os.fspath(value)


def _enum(cls: type[E], value: Any, field: str) -> E:
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise ValidationError(
            f"{field} must be one of {allowed}, not {value!r}",
            code="validation_failed",
            details={"field": field},
        ) from None


def _idempotency_key(key: str | None) -> str:
    """The caller's key, or a new one for this logical call (a UUID).

    The server keeps the first answer to a POST with a key (see the
    ``Idempotency-Key`` header in openapi.json), so the retries of one call
    send the same key and can never queue twice. Checked here as the server
    checks it: 1 to 255 visible ASCII characters.
    """
    if key is None:
        return str(uuid.uuid4())
    if not (1 <= len(key) <= 255 and all("!" <= ch <= "~" for ch in key)):
        raise ValidationError(
            "idempotency_key must be 1 to 255 visible ASCII characters (no spaces)",
            code="validation_failed",
            details={"field": "Idempotency-Key"},
        )
    return key


#: Retried for a POST that carries an Idempotency-Key: the transient
#: statuses, and 409 while the first request with the key is still being
#: processed (the server sends Retry-After).
KEYED_POST_RETRY_STATUSES: frozenset[int] = RETRY_STATUSES | {409}


def _str_list(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


# -- jobs ---------------------------------------------------------------------


def extract(
    queries_path: PathLike,
    config_path: PathLike,
    country: str,
    destination: str,
    queries: str | Iterable[str] | None,
    overwrite: bool,
    idempotency_key: str | None = None,
    partition_on: str | None = None,
    partitions: int | None = None,
) -> Call:
    body = ExtractRequest(
        queries_path=_path(queries_path),
        config_path=_path(config_path),
        country=country,
        destination=_path(destination),
        queries=_opt(_str_list(queries)),
        overwrite=bool(overwrite),
        partition_on=_opt(partition_on),
        partitions=_opt(partitions),
    )
    # Safe to retry: every attempt carries the same key.
    return Call(
        "extract",
        _extract,
        _expect("extract", JobAccepted),
        idempotent=True,
        kwargs={"body": body, "idempotency_key": _idempotency_key(idempotency_key)},
        retry_statuses=KEYED_POST_RETRY_STATUSES,
    )


def get_job_status(job_id: str) -> Call:
    return Call(
        "get_job_status", _get_job_status, _expect("get_job_status", JobStatus), idempotent=True, args=(str(job_id),)
    )


def list_jobs(state: str | JobState | None, limit: int | None, cursor: str | None, offset: int | None) -> Call:
    kwargs = {
        "state": UNSET if state is None else _enum(JobState, state, "state"),
        "limit": _opt(limit),
        "cursor": _opt(cursor),
        "offset": _opt(offset),
    }
    return Call("list_jobs", _list_jobs, _expect("list_jobs", JobList), idempotent=True, kwargs=kwargs)


def cancel_job(job_id: str) -> Call:
    # DELETE is idempotent: cancelling twice leaves the job cancelled (the
    # second try may answer 409 "already finished", which is not retried).
    return Call("cancel_job", _cancel_job, _expect("cancel_job", JobStatus), idempotent=True, args=(str(job_id),))


# -- queries ------------------------------------------------------------------


def list_queries(queries_path: PathLike | None) -> Call:
    def result(response: Any) -> Any:
        return _expect("list_queries", QueryList)(response).queries

    kwargs = {"queries_path": UNSET if queries_path is None else _path(queries_path)}
    return Call("list_queries", _list_queries, result, idempotent=True, kwargs=kwargs)


def list_countries(config_path: PathLike | None) -> Call:
    def result(response: Any) -> Any:
        return _expect("list_countries", CountryList)(response).countries

    kwargs = {"config_path": UNSET if config_path is None else _path(config_path)}
    return Call("list_countries", _list_countries, result, idempotent=True, kwargs=kwargs)


def show_params(
    country: str,
    config_path: PathLike | None,
    queries: str | Iterable[str] | None,
    queries_path: PathLike | None,
) -> Call:
    names = _str_list(queries)
    kwargs = {
        "country": country,
        "config_path": UNSET if config_path is None else _path(config_path),
        "queries": UNSET if not names else ",".join(names),
        "queries_path": UNSET if queries_path is None else _path(queries_path),
    }
    return Call("show_params", _show_params, _expect("show_params", ParamsView), idempotent=True, kwargs=kwargs)


# -- sync events --------------------------------------------------------------


def submit_sync_event(
    operation: str | Operation,
    source_table: str,
    target_table: str,
    primary_keys: str | Iterable[str] | None,
    columns: str | Iterable[str] | None,
    idempotency_key: str | None = None,
) -> Call:
    body = SubmitSyncEvent(
        operation=_enum(Operation, operation, "operation"),
        source_table=source_table,
        target_table=target_table,
        primary_keys=_opt(_str_list(primary_keys)),
        columns=_opt(_str_list(columns)),
    )
    return Call(
        "submit_sync_event",
        _submit_sync_event,
        _expect("submit_sync_event", SyncEvent),
        idempotent=True,
        kwargs={"body": body, "idempotency_key": _idempotency_key(idempotency_key)},
        retry_statuses=KEYED_POST_RETRY_STATUSES,
    )


def get_sync_event(event_id: str) -> Call:
    return Call(
        "get_sync_event", _get_sync_event, _expect("get_sync_event", SyncEvent), idempotent=True, args=(str(event_id),)
    )


def list_sync_events(status: str | EventStatus | None, limit: int | None) -> Call:
    def result(response: Any) -> Any:
        return _expect("list_sync_events", SyncEventList)(response).events

    kwargs = {
        "status": UNSET if status is None else _enum(EventStatus, status, "status"),
        "limit": _opt(limit),
    }
    return Call("list_sync_events", _list_sync_events, result, idempotent=True, kwargs=kwargs)


# -- Spark writes -------------------------------------------------------------


def _spark_write(write: SparkWrite | dict[str, Any]) -> SparkWrite:
    if isinstance(write, SparkWrite):
        return write
    try:
        return SparkWrite.from_dict(dict(write))
    except (KeyError, TypeError, ValueError) as e:
        raise ValidationError(
            f"write: not a SparkWrite ({e!r}); it needs write_id, run_id, operation, target_table and columns",
            code="validation_failed",
            details={"field": "write"},
        ) from None


# The three calls are idempotent on the server (a run opened twice is one
# run, a committed write is found in the ledger, an abort drops what is
# left): retried without a key.


def open_spark_write(write: SparkWrite | dict[str, Any]) -> Call:
    return Call(
        "open_spark_write",
        _open_spark_write,
        _expect("open_spark_write", SparkRun),
        idempotent=True,
        kwargs={"body": _spark_write(write)},
    )


def commit_spark_write(
    write: SparkWrite | dict[str, Any], stages: Iterable[SparkStage | tuple[str, int]]
) -> Call:
    body = SparkCommit(
        write=_spark_write(write),
        stages=[s if isinstance(s, SparkStage) else SparkStage(table=str(s[0]), rows=int(s[1])) for s in stages],
    )
    return Call(
        "commit_spark_write",
        _commit_spark_write,
        _expect("commit_spark_write", SparkCommitted),
        idempotent=True,
        kwargs={"body": body},
    )


def abort_spark_write(write: SparkWrite | dict[str, Any]) -> Call:
    return Call(
        "abort_spark_write",
        _abort_spark_write,
        _expect("abort_spark_write", SparkAborted),
        idempotent=True,
        kwargs={"body": _spark_write(write)},
    )


# -- audit --------------------------------------------------------------------


def search_audit(
    user: str | None = None,
    resource: str | None = None,
    action: str | None = None,
    event_type: str | None = None,
    outcome: str | None = None,
    since: str | datetime.datetime | None = None,
    until: str | datetime.datetime | None = None,
    limit: int | None = None,
) -> Call:
    def when(name: str, value: str | datetime.datetime | None) -> Any:
        if value is None or isinstance(value, datetime.datetime):
            return _opt(value)
        try:
            return datetime.datetime.fromisoformat(value)
        except ValueError as e:
            raise ValidationError(
                f"{name} must be an ISO 8601 time, not {value!r}",
                code="validation_failed",
                details={"field": name},
            ) from e

    kwargs = {
        "user": _opt(user),
        "resource": _opt(resource),
        "action": _opt(action),
        "event_type": _opt(event_type),
        "outcome": _opt(outcome),
        "since": when("since", since),
        "until": when("until", until),
        "limit": _opt(limit),
    }
    return Call("search_audit", _search_audit, _expect("search_audit", AuditPage), idempotent=True, kwargs=kwargs)


# -- health and docs ----------------------------------------------------------


def health_live() -> Call:
    return Call("health_live", _health_live, _expect("health_live", Live), idempotent=True)


def health_ready() -> Call:
    # 503 is an answer here (a check failed; the Ready body says which), not a
    # transient failure: never retried on status.
    return Call(
        "health_ready",
        _health_ready,
        _expect("health_ready", Ready),
        idempotent=True,
        retry_statuses=RETRY_STATUSES - {503},
    )


def metrics() -> Call:
    def result(response: Any) -> str:
        return response.content.decode("utf-8")

    return Call("metrics", _metrics, result, idempotent=True)


def openapi() -> Call:
    # The document as a plain dict, decoded from the body (whatever the
    # generated code makes of a free-form object).
    def result(response: Any) -> dict[str, Any]:
        doc = json.loads(response.content)
        if not isinstance(doc, dict):
            raise BridgeError("openapi: the document is not a JSON object", code="unexpected_response")
        return doc

    return Call("openapi", _openapi, result, idempotent=True)

"""The API's data types, as the client methods return them.

These are the generated attrs classes (``sql_databricks_bridge._generated.models``),
re-exported under stable names: attribute access (``job.job_id``,
``status.state``, ``event.rows_affected``), ``to_dict()`` / ``from_dict()``.
The state enums are ``StrEnum``\\ s, so they compare equal to plain strings:
``status.state == "succeeded"``. Nullable fields the server sends as ``null``
are ``None``.
"""

from __future__ import annotations

from .._generated.models import (
    AuditLine,
    AuditPage,
    Check,
    CountryList,
    ErrorBody,
    EventStatus,
    ExtractRequest,
    JobAccepted,
    JobList,
    JobState,
    JobStatus,
    Live,
    Operation,
    ParamsView,
    ParamValue,
    QueryInfo,
    QueryList,
    QueryState,
    QueryStatus,
    Ready,
    RenderedSql,
    SparkAborted,
    SparkColumn,
    SparkCommit,
    SparkCommitted,
    SparkRun,
    SparkStage,
    SparkWrite,
    SubmitSyncEvent,
    SyncEvent,
    SyncEventList,
)

#: Job states after which a job no longer changes.
FINAL_JOB_STATES: frozenset[JobState] = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED}
)
#: Event statuses after which a sync event no longer changes.
FINAL_EVENT_STATUSES: frozenset[EventStatus] = frozenset({EventStatus.COMPLETED, EventStatus.FAILED})

__all__ = [
    "FINAL_EVENT_STATUSES",
    "FINAL_JOB_STATES",
    "AuditLine",
    "AuditPage",
    "Check",
    "CountryList",
    "ErrorBody",
    "EventStatus",
    "ExtractRequest",
    "JobAccepted",
    "JobList",
    "JobState",
    "JobStatus",
    "Live",
    "Operation",
    "ParamValue",
    "ParamsView",
    "QueryInfo",
    "QueryList",
    "QueryState",
    "QueryStatus",
    "Ready",
    "RenderedSql",
    "SparkAborted",
    "SparkColumn",
    "SparkCommit",
    "SparkCommitted",
    "SparkRun",
    "SparkStage",
    "SparkWrite",
    "SubmitSyncEvent",
    "SyncEvent",
    "SyncEventList",
]

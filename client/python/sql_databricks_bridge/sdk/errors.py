"""Exceptions raised by :mod:`sql_databricks_bridge.sdk`.

Every HTTP error of the API has one JSON shape (``ErrorBody``)::

    {"code": "validation_failed", "message": "...", "details": {"field": "country"}}

and becomes a :class:`BridgeError` subclass chosen by the status code, with
``status``, ``code``, ``message`` and ``details`` (a plain dict, ``{}`` when the
server sent none) as attributes::

    BridgeError
    ├── UnauthorizedError      401  missing or unknown token
    ├── ForbiddenError         403  no permission on a table, or a path outside the server's roots
    ├── NotFoundError          404  no such job / event for this token
    ├── ValidationError        400, 422  .field names the field (details.field)
    ├── ConflictError          409  e.g. cancelling a finished job
    ├── RateLimitedError       429
    ├── ServerError            5xx
    ├── TransportError         no HTTP answer: connection refused or reset, timeout
    │   └── RequestTimeoutError
    └── WaitTimeoutError       wait_for_job / wait_for_sync_event gave up (also a TimeoutError)

Other statuses (405, 413, 415, ...) raise :class:`BridgeError` itself, as does
a success answer that does not match the API description (code
``unexpected_response``). The
client's token never appears in these exceptions' messages.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

__all__ = [
    "BridgeError",
    "ConflictError",
    "ForbiddenError",
    "NotFoundError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ServerError",
    "TransportError",
    "UnauthorizedError",
    "ValidationError",
    "WaitTimeoutError",
    "error_for_status",
]


class BridgeError(Exception):
    """Base class of every error the SDK raises.

    Attributes:
        status: the HTTP status code (``None`` when there was no HTTP answer).
        code: the API's machine-readable code (``validation_failed``, ``forbidden``, ...).
        message: the API's message, for people.
        details: the API's structured context (``{"field": "country"}``,
            ``{"tables": [...]}``, ...); ``{}`` when absent.
        retry_after: seconds from a ``Retry-After`` header, if the server sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(self.code)
        head = " ".join(parts)
        return f"{head}: {self.message}" if head else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, details={self.details!r})"
        )


class UnauthorizedError(BridgeError):
    """401: the token is missing or not in the server's permissions.yaml."""


class ForbiddenError(BridgeError):
    """403: the token lacks a permission (``details["tables"]`` lists the tables refused),
    or a path lies outside the server's roots."""


class NotFoundError(BridgeError):
    """404: no such job or event for this token (a token sees only its own)."""


class ValidationError(BridgeError):
    """400 or 422: a request field is wrong; :attr:`field` names it."""

    @property
    def field(self) -> str | None:
        """The field the server blamed (``details["field"]``), if any."""
        value = self.details.get("field")
        return value if isinstance(value, str) else None


class ConflictError(BridgeError):
    """409: the request conflicts with the resource's state (e.g. the job had already finished)."""


class RateLimitedError(BridgeError):
    """429: too many requests (retried for idempotent calls, honouring ``Retry-After``)."""


class ServerError(BridgeError):
    """5xx: the server or a system behind it (SQL Server, Databricks) failed."""


class TransportError(BridgeError):
    """No HTTP answer: the connection failed or broke, or the request timed out."""


class RequestTimeoutError(TransportError):
    """The request took longer than the client's ``timeout``."""


class WaitTimeoutError(BridgeError, TimeoutError):
    """``wait_for_job`` / ``wait_for_sync_event`` gave up before the job or event finished.

    Attributes:
        last_status: the last :class:`JobStatus` or :class:`SyncEvent` seen.
    """

    def __init__(self, message: str, *, last_status: Any) -> None:
        super().__init__(message, code="wait_timeout")
        self.last_status = last_status


_BY_STATUS: dict[int, type[BridgeError]] = {
    400: ValidationError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitedError,
}


def _exception_class(status: int) -> type[BridgeError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 500 <= status <= 599:
        return ServerError
    return BridgeError


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def scrub(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` (the client's token) masked, should a message ever echo it."""
    if secret and secret in text:
        return text.replace(secret, "***")
    return text


def error_for_status(
    status: int,
    content: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    secret: str | None = None,
) -> BridgeError:
    """The exception for an HTTP error answer (status >= 400) and its body.

    Bodies that are not the API's ErrorBody (a proxy's HTML page, say) still
    give an exception of the right class, with the start of the body as message.
    """
    code: str | None = None
    message: str | None = None
    details: Mapping[str, Any] | None = None
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("code"), str):
            code = body["code"]
        if isinstance(body.get("message"), str):
            message = body["message"]
        if isinstance(body.get("details"), dict):
            details = body["details"]
    if message is None:
        text = content.decode("utf-8", "replace").strip()
        message = text[:500] if text else f"HTTP {status}"
    retry_after = parse_retry_after((headers or {}).get("retry-after")) if headers else None
    details = {k: v for k, v in (details or {}).items()}
    return _exception_class(status)(
        scrub(message, secret),
        status=status,
        code=code,
        details=details,
        retry_after=retry_after,
    )

"""How a facade call runs: error answers become exceptions, idempotent calls retry.

* Error answers are turned into :mod:`.errors` exceptions by an httpx response
  hook, before the generated code parses anything: the generated functions
  only ever see success answers (and the one documented non-error 503, the
  body of ``GET /health/ready``).
* :func:`run_sync` / :func:`run_async` call a generated ``sync_detailed`` /
  ``asyncio_detailed`` function and retry it when the call is idempotent (GET,
  DELETE, and the POSTs, which carry an ``Idempotency-Key``) and the failure is
  transient: no HTTP answer (connection refused or reset, timeout) or
  429/502/503/504 (and for a keyed POST, 409 while its first request is still
  being processed), waiting ``Retry-After`` when the server sends one and an
  exponential backoff otherwise. A POST is retried only with its key: every
  attempt sends the same one, so a server that acted on a request whose
  answer was lost answers the retry with that first answer instead of acting
  again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import httpx

from .errors import BridgeError, RequestTimeoutError, TransportError, error_for_status, scrub

#: Statuses worth another try of an idempotent call.
RETRY_STATUSES: frozenset[int] = frozenset({429, 502, 503, 504})

#: Answers with an error status that the API documents as a normal body, not an
#: ErrorBody: readiness reports "not ready" as 503 with the Ready body.
_NON_ERROR_ANSWERS: dict[tuple[str, str], frozenset[int]] = {
    ("GET", "/health/ready"): frozenset({503}),
}


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of idempotent calls.

    Attributes:
        max_attempts: tries in all, the first included (1 turns retrying off).
        backoff: the first wait in seconds; doubled each time, up to ``max_backoff``
            (each wait is jittered down to half of that).
        max_backoff: the longest computed wait.
        max_retry_after: the longest ``Retry-After`` honoured (longer ones are capped).
    """

    max_attempts: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, error: BridgeError) -> float:
        if error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        computed = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return computed * (0.5 + random.random() / 2)


@dataclass(frozen=True)
class Call:
    """One API call, built by :mod:`._ops` and run by :func:`run_sync` / :func:`run_async`.

    ``module`` is the generated module of the operation (its ``sync_detailed``
    and ``asyncio_detailed`` take ``args``, ``client=`` and ``kwargs``);
    ``result`` turns the generated ``Response`` into what the facade returns.
    """

    operation: str
    module: ModuleType
    result: Callable[[Any], Any]
    idempotent: bool
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    retry_statuses: frozenset[int] = RETRY_STATUSES


def _is_documented_answer(response: httpx.Response) -> bool:
    request = response.request
    for (method, suffix), statuses in _NON_ERROR_ANSWERS.items():
        if (
            request.method == method
            and request.url.path.endswith(suffix)
            and response.status_code in statuses
        ):
            return True
    return False


def sync_error_hook(secret: str | None) -> Callable[[httpx.Response], None]:
    """An httpx response hook (sync client) raising the API's error as a BridgeError."""

    def hook(response: httpx.Response) -> None:
        if response.status_code < 400 or _is_documented_answer(response):
            return
        response.read()
        raise error_for_status(response.status_code, response.content, response.headers, secret=secret)

    return hook


def async_error_hook(secret: str | None) -> Callable[[httpx.Response], Any]:
    """An httpx response hook (async client) raising the API's error as a BridgeError."""

    async def hook(response: httpx.Response) -> None:
        if response.status_code < 400 or _is_documented_answer(response):
            return
        await response.aread()
        raise error_for_status(response.status_code, response.content, response.headers, secret=secret)

    return hook


def _transport_error(exc: httpx.HTTPError, secret: str | None) -> TransportError:
    try:
        where = f"{exc.request.method} {exc.request.url}: "
    except RuntimeError:  # no request attached
        where = ""
    detail = str(exc) or type(exc).__name__
    cls = RequestTimeoutError if isinstance(exc, httpx.TimeoutException) else TransportError
    code = "timeout" if cls is RequestTimeoutError else "transport"
    return cls(scrub(f"{where}{detail}", secret), code=code)


def _unreadable(call: Call, exc: Exception) -> BridgeError:
    return BridgeError(
        f"{call.operation}: the answer does not match the API description ({type(exc).__name__}: {exc})",
        code="unexpected_response",
    )


def _should_retry(call: Call, error: BridgeError, attempt: int, policy: RetryPolicy) -> bool:
    if not call.idempotent or attempt >= policy.max_attempts:
        return False
    if isinstance(error, TransportError):
        return True
    return error.status in call.retry_statuses


def _failure(call: Call, exc: Exception, secret: str | None) -> tuple[BridgeError, BaseException | None]:
    """The error one attempt ended with, and its cause (shared by both loops)."""
    if isinstance(exc, BridgeError):
        return exc, exc.__cause__
    if isinstance(exc, httpx.HTTPError):
        return _transport_error(exc, secret), exc
    # A success answer the generated models cannot read (not JSON, a
    # missing field, an enum value this client does not know).
    raise _unreadable(call, exc) from exc


_FAILURES = (BridgeError, httpx.HTTPError, ValueError, KeyError, TypeError)


def run_sync(call: Call, api: Any, policy: RetryPolicy, secret: str | None) -> Any:
    attempt = 0
    while True:
        attempt += 1
        try:
            response = call.module.sync_detailed(*call.args, client=api, **call.kwargs)
            return call.result(response)
        except _FAILURES as exc:
            error, cause = _failure(call, exc, secret)
        if not _should_retry(call, error, attempt, policy):
            raise error from cause
        time.sleep(policy.delay(attempt, error))


async def run_async(call: Call, api: Any, policy: RetryPolicy, secret: str | None) -> Any:
    attempt = 0
    while True:
        attempt += 1
        try:
            response = await call.module.asyncio_detailed(*call.args, client=api, **call.kwargs)
            return call.result(response)
        except _FAILURES as exc:
            error, cause = _failure(call, exc, secret)
        if not _should_retry(call, error, attempt, policy):
            raise error from cause
        await asyncio.sleep(policy.delay(attempt, error))

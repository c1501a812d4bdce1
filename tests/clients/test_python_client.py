"""The Python client (client/python, sql_databricks_bridge.sdk) against the real server.

`bridge` (conftest.py) is `sql-databricks-bridge serve` over both sandboxes
with the demo seeds and config/permissions.yaml: Colombia's token reads
KWP_Colombia's J_Ventas_CO and Productos, writes under
/Volumes/main/demo/landing/Colombia and into KWP_Colombia.dbo.CalibratedPanel; the Databricks double has the
volume main.demo.landing and the table main.demo.calibrated_panel. Retries and
odd answers are checked against a scripted local server (`fake_server`).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sql_databricks_bridge._generated.types import Unset
from sql_databricks_bridge.sdk import (
    AsyncBridgeClient,
    BridgeClient,
    BridgeError,
    ConflictError,
    EventStatus,
    ForbiddenError,
    JobAccepted,
    JobList,
    JobState,
    JobStatus,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    SyncEvent,
    TransportError,
    UnauthorizedError,
    ValidationError,
    WaitTimeoutError,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
COLOMBIA_TOKEN = "demo-colombia-token"
MEXICO_TOKEN = "demo-mexico-token"
LANDING = "/Volumes/main/demo/landing"
PANEL_COLUMNS = ["panel_id", "country", "period", "household_id", "weight", "spend", "is_active", "updated_at"]
POLL = 0.1
WAIT = 60


FAKE_REQUEST = {"queries_path": "./queries", "config_path": "./config", "country": "Colombia",
                "destination": "/Volumes/main/demo/landing", "queries": [], "overwrite": False}


@pytest.fixture()
def client(bridge):
    bridge.assert_alive()
    with BridgeClient(base_url=bridge.url, token=COLOMBIA_TOKEN, timeout=30) as c:
        yield c


def extract_colombia(c: BridgeClient, destination: str = LANDING, **kw) -> JobAccepted:
    return c.extract(queries_path="./queries", config_path="./config", country="Colombia",
                     destination=destination, overwrite=True, **kw)


# --------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------

def test_extract_then_wait_for_job(client, bridge):
    job = extract_colombia(client)
    assert isinstance(job, JobAccepted)
    assert job.state in ("queued", "running")
    assert job.status_url == f"/jobs/{job.job_id}"

    status = client.get_job_status(job.job_id)
    assert isinstance(status, JobStatus)
    assert status.job_id == job.job_id and status.owner == "proyecto-colombia"

    final = client.wait_for_job(job.job_id, poll_interval=POLL, timeout=WAIT)
    assert final.state == "succeeded", (final.to_dict(), bridge.server_log())
    assert final.state is JobState.SUCCEEDED
    assert final.error is None and final.finished_at
    assert final.rows > 0 and final.files >= 2 and final.bytes_ > 0
    by_query = {q.query: q for q in final.queries}
    assert set(by_query) == {"productos", "ventas"}
    for name, q in by_query.items():
        assert q.state == "succeeded" and q.rows > 0
        assert q.output == f"{LANDING}/Colombia/{name}"
        assert q.files and all(f.startswith(f"{LANDING}/Colombia/{name}/") for f in q.files)
    assert final.request.country == "Colombia" and final.request.overwrite is True


def test_extract_chosen_queries(client):
    job = extract_colombia(client, destination=f"{LANDING}/Colombia/only-productos", queries=["productos"])
    final = client.wait_for_job(job.job_id, poll_interval=POLL, timeout=WAIT)
    assert final.state == "succeeded"
    assert [q.query for q in final.queries] == ["productos"]


def test_list_jobs_filters_and_pages(client):
    jobs = [extract_colombia(client, destination=f"{LANDING}/Colombia/listing-{i}") for i in range(2)]
    done = [client.wait_for_job(j.job_id, poll_interval=POLL, timeout=WAIT) for j in jobs][-1]
    page = client.list_jobs(state="succeeded", limit=50)
    assert isinstance(page, JobList)
    assert done.job_id in [j.job_id for j in page.jobs]
    assert all(j.state == "succeeded" for j in page.jobs)

    first = client.list_jobs(limit=1)
    assert len(first.jobs) == 1 and first.next_cursor, first.to_dict()
    second = client.list_jobs(limit=1, cursor=first.next_cursor)
    assert len(second.jobs) == 1 and second.jobs[0].job_id != first.jobs[0].job_id
    by_offset = client.list_jobs(limit=1, offset=1)
    assert by_offset.jobs[0].job_id == second.jobs[0].job_id

    assert client.list_jobs(state=JobState.CANCELLED, limit=500).jobs is not None
    with pytest.raises(ValidationError) as err:
        client.list_jobs(limit=0)  # the server refuses it
    assert err.value.status == 422 and err.value.field == "limit"
    with pytest.raises(ValidationError) as err:
        client.list_jobs(state="done")  # refused before any request
    assert err.value.status is None and err.value.field == "state"


def test_cancel_finished_job_is_a_conflict(client):
    job = extract_colombia(client, destination=f"{LANDING}/Colombia/cancel-finished")
    client.wait_for_job(job.job_id, poll_interval=POLL, timeout=WAIT)
    with pytest.raises(ConflictError) as err:
        client.cancel_job(job.job_id)
    e = err.value
    assert e.status == 409 and e.code == "conflict"
    assert e.details.get("state") == "succeeded"
    assert "already finished" in e.message


def test_cancel_just_submitted_job(client):
    job = extract_colombia(client, destination=f"{LANDING}/Colombia/cancel-early")
    try:
        cancelled = client.cancel_job(job.job_id)
    except ConflictError:
        # It finished first (the demo data is small).
        final = client.get_job_status(job.job_id)
        assert final.state == "succeeded"
    else:
        assert isinstance(cancelled, JobStatus) and cancelled.job_id == job.job_id
        final = client.wait_for_job(job.job_id, poll_interval=POLL, timeout=WAIT)
        assert final.state in ("cancelled", "succeeded"), final.to_dict()


def test_wait_for_job_times_out_with_the_last_status(fake_server):
    running = {"job_id": "j1", "kind": "extract", "state": "running", "owner": "me", "request": FAKE_REQUEST,
               "queries": [], "rows": 5, "bytes": 0, "files": 0, "discrepancies": [],
               "created_at": "2026-01-01T00:00:00Z"}
    fake_server.script("GET", "/jobs/j1", (200, running))
    with BridgeClient(base_url=fake_server.url, token="t") as c:
        t0 = time.monotonic()
        with pytest.raises(WaitTimeoutError) as err:
            c.wait_for_job("j1", poll_interval=0.05, timeout=0.3)
    assert isinstance(err.value, TimeoutError) and isinstance(err.value, BridgeError)
    assert err.value.last_status.state == "running" and err.value.last_status.rows == 5
    assert 0.25 <= time.monotonic() - t0 < 5
    assert fake_server.count("GET", "/jobs/j1") >= 3


# --------------------------------------------------------------------------
# Errors from the real server
# --------------------------------------------------------------------------

def test_bad_token_is_unauthorized(bridge):
    secret = "not-a-real-token-5f3c9a"
    c = BridgeClient(base_url=bridge.url, token=secret)
    assert secret not in repr(c) and secret not in str(c)
    with pytest.raises(UnauthorizedError) as err:
        c.get_job_status("anything")
    e = err.value
    assert e.status == 401 and e.code == "unauthorized"
    assert secret not in str(e) and secret not in repr(e) and secret not in e.message
    with pytest.raises(UnauthorizedError):
        c.extract(queries_path="./queries", config_path="./config", country="Colombia", destination=LANDING)
    # Without any token: the open routes work, the others are 401.
    anonymous = BridgeClient(base_url=bridge.url)
    assert anonymous.health_live().status == "ok"
    with pytest.raises(UnauthorizedError):
        anonymous.list_jobs()
    c.close()
    anonymous.close()


def test_mexico_extracting_colombia_is_forbidden(bridge):
    with BridgeClient(base_url=bridge.url, token=MEXICO_TOKEN) as mexico:
        with pytest.raises(ForbiddenError) as err:
            extract_colombia(mexico)
    e = err.value
    assert e.status == 403 and e.code == "forbidden"
    assert "kwp_colombia.dbo.j_ventas_co" in [t.lower() for t in e.details["tables"]]
    assert MEXICO_TOKEN not in str(e)


def test_not_found(client, bridge):
    with pytest.raises(NotFoundError) as err:
        client.get_job_status("no-such-job")
    assert err.value.status == 404 and err.value.code == "not_found"
    with pytest.raises(NotFoundError):
        client.cancel_job("no-such-job")
    with pytest.raises(NotFoundError):
        client.get_sync_event("no-such-event")
    # A token sees only its own jobs.
    job = extract_colombia(client, destination=f"{LANDING}/Colombia/not-found")
    with BridgeClient(base_url=bridge.url, token=MEXICO_TOKEN) as mexico:
        with pytest.raises(NotFoundError):
            mexico.get_job_status(job.job_id)
    client.wait_for_job(job.job_id, poll_interval=POLL, timeout=WAIT)


def test_unknown_country_is_a_validation_error_on_country(client):
    with pytest.raises(ValidationError) as err:
        client.extract(queries_path="./queries", config_path="./config", country="Atlantis", destination=LANDING)
    e = err.value
    assert e.status == 422 and e.code == "validation_failed" and e.field == "country"
    assert "Atlantis" in e.message
    with pytest.raises(ValidationError) as err:
        client.show_params("Atlantis")
    assert err.value.field == "country"
    with pytest.raises(ValidationError) as err:
        client.extract(queries_path="./queries", config_path="./config", country="Colombia",
                       destination=LANDING, queries=["no_such_query"])
    assert err.value.status == 422


def test_paths_outside_the_roots_are_forbidden(client):
    with pytest.raises(ForbiddenError) as err:
        client.list_queries(queries_path="../..")
    assert err.value.status == 403


# --------------------------------------------------------------------------
# Queries and parameters
# --------------------------------------------------------------------------

def test_list_queries_and_show_params(client):
    queries = client.list_queries()
    assert {q.name: q.path for q in queries} == {"productos": "productos.sql", "ventas": "ventas.sql"}
    ventas = next(q for q in queries if q.name == "ventas")
    assert "country_code" in ventas.params
    assert [q.name for q in client.list_queries(queries_path="./queries")] == [q.name for q in queries]

    view = client.show_params("Colombia", config_path="./config", queries=["ventas", "productos"],
                              queries_path="./queries")
    assert view.country == "Colombia"
    assert view.files == ["common_params.yaml", "Colombia.yaml"]
    assert view.params["country_code"].value == "CO"
    assert view.params["country_code"].source == "Colombia.yaml"
    assert [r.query for r in view.queries] == ["ventas", "productos"]
    assert "J_Ventas_CO" in view.queries[0].sql
    assert client.show_params("Mexico", queries="ventas").queries[0].query == "ventas"
    assert client.show_params("Mexico").queries == []


# --------------------------------------------------------------------------
# Sync events
# --------------------------------------------------------------------------

def test_upsert_sync_event_completes(client, bridge):
    event = client.submit_sync_event(operation="UPSERT", source_table="main.demo.calibrated_panel",
                                     target_table="KWP_Colombia.dbo.CalibratedPanel",
                                     primary_keys=["panel_id"], columns=PANEL_COLUMNS)
    assert isinstance(event, SyncEvent)
    assert event.status == "pending" and event.requested_by == "proyecto-colombia"
    assert event.operation == "UPSERT" and event.primary_keys == ["panel_id"] and event.columns == PANEL_COLUMNS

    done = client.wait_for_sync_event(event.event_id, poll_interval=POLL, timeout=WAIT)
    assert done.status == "completed", (done.to_dict(), bridge.server_log())
    assert done.status is EventStatus.COMPLETED
    assert done.rows_affected == 6 and done.rows_expected == 6
    assert done.error_message is None
    again = client.get_sync_event(event.event_id)
    assert again.status == "completed" and again.rows_affected == 6
    assert event.event_id in [e.event_id for e in client.list_sync_events(status="completed", limit=50)]


def test_failed_sync_event_is_listed_as_failed(client):
    # Without `columns`, the ARRAY column `tags` is copied too: SQL Server has no such column.
    event = client.submit_sync_event(operation="UPSERT", source_table="main.demo.calibrated_panel",
                                     target_table="KWP_Colombia.dbo.CalibratedPanel", primary_keys=["panel_id"])
    done = client.wait_for_sync_event(event.event_id, poll_interval=POLL, timeout=WAIT)
    assert done.status == "failed"
    assert "tags" in done.error_message

    failed = client.list_sync_events(status="failed", limit=10)
    assert isinstance(failed, list)
    assert all(e.status == "failed" for e in failed)
    mine = [e for e in failed if e.event_id == event.event_id]
    assert mine and "tags" in mine[0].error_message
    everything = client.list_sync_events()
    assert event.event_id in [e.event_id for e in everything]
    assert len(client.list_sync_events(limit=1)) == 1


def test_sync_event_errors(client, bridge):
    with pytest.raises(ValidationError) as err:
        client.submit_sync_event(operation="MERGE", source_table="main.demo.calibrated_panel",
                                 target_table="KWP_Colombia.dbo.CalibratedPanel")
    assert err.value.field == "operation" and err.value.status is None  # refused before sending
    with pytest.raises(ValidationError) as err:
        client.list_sync_events(status="done")
    assert err.value.field == "status"
    # No `write` on the target.
    with BridgeClient(base_url=bridge.url, token=MEXICO_TOKEN) as mexico:
        with pytest.raises(ForbiddenError) as err:
            mexico.submit_sync_event(operation="INSERT", source_table="main.demo.calibrated_panel",
                                     target_table="KWP_Colombia.dbo.CalibratedPanel")
    assert err.value.status == 403
    # UPSERT without keys.
    with pytest.raises(ValidationError) as err:
        client.submit_sync_event(operation="UPSERT", source_table="main.demo.calibrated_panel",
                                 target_table="KWP_Colombia.dbo.CalibratedPanel")
    assert err.value.status == 422


# --------------------------------------------------------------------------
# Health, metrics, the document
# --------------------------------------------------------------------------

def test_health_metrics_and_openapi(client):
    live = client.health_live()
    assert live.status == "ok" and live.version and live.uptime_seconds >= 0
    ready = client.health_ready()
    assert ready.status == "ready" and ready.sqlserver.ok and ready.databricks.ok
    text = client.metrics()
    assert isinstance(text, str) and "# TYPE" in text
    doc = client.openapi()
    assert doc["openapi"].startswith("3.1")
    served = {op["operationId"] for item in doc["paths"].values() for op in item.values()}
    from sql_databricks_bridge.sdk import OPERATIONS
    assert set(OPERATIONS) <= served


def test_health_ready_returns_the_body_of_a_503(unready_bridge):
    with BridgeClient(base_url=unready_bridge, max_attempts=3, backoff=5) as c:
        t0 = time.monotonic()
        ready = c.health_ready()
        elapsed = time.monotonic() - t0
    assert ready.status == "not_ready"
    assert not ready.sqlserver.ok and not ready.databricks.ok
    # Without a token: which check failed, not where or why.
    assert isinstance(ready.sqlserver.detail, Unset) and isinstance(ready.sqlserver.latency_ms, Unset)
    assert elapsed < 5  # not retried (a retry would have waited >= 2.5 s)
    with BridgeClient(base_url=unready_bridge, token=COLOMBIA_TOKEN, max_attempts=1) as c:
        ready = c.health_ready()
    assert ready.status == "not_ready"
    assert "127.0.0.1:1" in ready.sqlserver.detail and ready.sqlserver.latency_ms >= 0


# --------------------------------------------------------------------------
# The async client
# --------------------------------------------------------------------------

def test_async_client(bridge):
    async def main():
        async with AsyncBridgeClient(base_url=bridge.url, token=COLOMBIA_TOKEN) as c:
            assert "***" in repr(c) and COLOMBIA_TOKEN not in repr(c)
            job = await c.extract(queries_path="./queries", config_path="./config", country="Colombia",
                                  destination=f"{LANDING}/Colombia/async", overwrite=True)
            event = await c.submit_sync_event(operation="UPSERT", source_table="main.demo.calibrated_panel",
                                              target_table="KWP_Colombia.dbo.CalibratedPanel",
                                              primary_keys=["panel_id"], columns=PANEL_COLUMNS)
            status = await c.get_job_status(job.job_id)
            assert status.job_id == job.job_id
            final, done = await asyncio.gather(
                c.wait_for_job(job.job_id, poll_interval=POLL, timeout=WAIT),
                c.wait_for_sync_event(event.event_id, poll_interval=POLL, timeout=WAIT),
            )
            assert final.state == "succeeded" and final.rows > 0
            assert done.status == "completed" and done.rows_affected == 6
            assert (await c.get_sync_event(event.event_id)).status == "completed"
            assert event.event_id in [e.event_id for e in await c.list_sync_events(status="completed")]
            assert job.job_id in [j.job_id for j in (await c.list_jobs(limit=500)).jobs]
            with pytest.raises(ConflictError):
                await c.cancel_job(job.job_id)
            with pytest.raises(NotFoundError):
                await c.get_job_status("no-such-job")
            with pytest.raises(ValidationError) as err:
                await c.extract(queries_path="./queries", config_path="./config", country="Atlantis",
                                destination=LANDING)
            assert err.value.field == "country"
            assert {q.name for q in await c.list_queries()} == {"productos", "ventas"}
            assert (await c.show_params("Colombia")).params["country_code"].value == "CO"
            assert (await c.health_live()).status == "ok"
            assert (await c.health_ready()).status == "ready"
            assert "# TYPE" in await c.metrics()
            assert (await c.openapi())["openapi"].startswith("3.1")

    asyncio.run(main())


# --------------------------------------------------------------------------
# Retries, timeouts and odd answers (scripted server)
# --------------------------------------------------------------------------

LIVE = {"status": "ok", "version": "0.0.0", "uptime_seconds": 1}
UNAVAILABLE = {"code": "unavailable", "message": "try again"}
ACCEPTED = {"job_id": "j1", "state": "queued", "status_url": "/jobs/j1"}


def fast(url: str, **kw) -> BridgeClient:
    return BridgeClient(base_url=url, token="tok-123", backoff=0.01, **kw)


def test_get_retries_transient_503_then_succeeds(fake_server):
    fake_server.script("GET", "/health/live", (503, UNAVAILABLE), (503, UNAVAILABLE), (200, LIVE))
    with fast(fake_server.url) as c:
        assert c.health_live().status == "ok"
    assert fake_server.count("GET", "/health/live") == 3


def test_get_gives_up_after_three_attempts(fake_server):
    fake_server.script("GET", "/jobs/j1", (502, UNAVAILABLE))
    with fast(fake_server.url) as c:
        with pytest.raises(ServerError) as err:
            c.get_job_status("j1")
    assert err.value.status == 502 and err.value.code == "unavailable"
    assert fake_server.count("GET", "/jobs/j1") == 3


def _keys(fake_server, method: str, path: str) -> list[str | None]:
    with fake_server._lock:
        return [h.get("Idempotency-Key") for m, p, h, _ in fake_server.requests if m == method and p == path]


def test_post_is_retried_with_one_idempotency_key(fake_server):
    fake_server.script("POST", "/extract", (503, UNAVAILABLE), (202, ACCEPTED))
    fake_server.script("POST", "/sync/events", (503, UNAVAILABLE))
    with fast(fake_server.url) as c:
        assert c.extract(queries_path="q", config_path="c", country="Colombia", destination=LANDING).job_id == "j1"
        with pytest.raises(ServerError) as err:
            c.submit_sync_event(operation="INSERT", source_table="a.b.c", target_table="dbo.t")
        assert err.value.status == 503
        # The next call is another logical call: another key.
        c.extract(queries_path="q", config_path="c", country="Colombia", destination=LANDING)
    first, retry, other = _keys(fake_server, "POST", "/extract")
    assert first and first == retry and other and other != first
    events = _keys(fake_server, "POST", "/sync/events")
    assert len(events) == 3 and len(set(events)) == 1 and events[0]


def test_post_waits_out_a_request_in_progress(fake_server):
    in_use = {"code": "idempotency_key_in_use", "message": "still processing"}
    fake_server.script("POST", "/extract", (409, in_use, {"Retry-After": "0"}), (202, ACCEPTED))
    with fast(fake_server.url) as c:
        job = c.extract(queries_path="q", config_path="c", country="Colombia", destination=LANDING,
                        idempotency_key="my-key-1")
    assert job.job_id == "j1"
    assert _keys(fake_server, "POST", "/extract") == ["my-key-1", "my-key-1"]
    with fast(fake_server.url) as c, pytest.raises(ValidationError) as err:
        c.extract(queries_path="q", config_path="c", country="Colombia", destination=LANDING,
                  idempotency_key="not a key")
    assert err.value.field == "Idempotency-Key"
    assert fake_server.count("POST", "/extract") == 2


def test_delete_is_retried(fake_server):
    cancelled = {"job_id": "j1", "kind": "extract", "state": "cancelled", "owner": "me", "request": FAKE_REQUEST,
                 "queries": [], "rows": 0, "bytes": 0, "files": 0, "discrepancies": [],
                 "created_at": "2026-01-01T00:00:00Z"}
    fake_server.script("DELETE", "/jobs/j1", (504, UNAVAILABLE), (200, cancelled))
    with fast(fake_server.url) as c:
        assert c.cancel_job("j1").state == "cancelled"
    assert fake_server.count("DELETE", "/jobs/j1") == 2


def test_retry_after_is_honoured(fake_server):
    fake_server.script("GET", "/health/live",
                       (429, {"code": "too_many_requests", "message": "slow down"}, {"Retry-After": "1"}),
                       (200, LIVE))
    with fast(fake_server.url) as c:
        t0 = time.monotonic()
        assert c.health_live().status == "ok"
        elapsed = time.monotonic() - t0
    assert elapsed >= 0.9
    assert fake_server.count("GET", "/health/live") == 2
    fake_server.script("GET", "/metrics", (429, {"code": "too_many_requests", "message": "no"}, {"Retry-After": "0"}))
    with fast(fake_server.url, max_attempts=1) as c:
        with pytest.raises(RateLimitedError) as err:
            c.metrics()
    assert err.value.status == 429 and err.value.retry_after == 0


def test_client_errors_are_not_retried(fake_server):
    fake_server.script("GET", "/jobs/j1", (404, {"code": "not_found", "message": "no job j1"}))
    with fast(fake_server.url) as c:
        with pytest.raises(NotFoundError):
            c.get_job_status("j1")
    assert fake_server.count("GET", "/jobs/j1") == 1


def test_non_json_error_bodies(fake_server):
    fake_server.script("GET", "/jobs", (502, b"<html>Bad Gateway</html>"))
    fake_server.script("GET", "/sync/events", (500, b""))
    with fast(fake_server.url, max_attempts=1) as c:
        with pytest.raises(ServerError) as err:
            c.list_jobs()
        assert err.value.status == 502 and err.value.code is None and "Bad Gateway" in err.value.message
        with pytest.raises(ServerError) as err:
            c.list_sync_events()
        assert err.value.status == 500 and err.value.message == "HTTP 500"


def test_unreadable_success_answers(fake_server):
    fake_server.script("GET", "/jobs/j1", (200, {"job_id": "j1", "state": "teleported"}))
    fake_server.script("GET", "/health/live", (200, b"not json"))
    with fast(fake_server.url) as c:
        with pytest.raises(BridgeError) as err:
            c.get_job_status("j1")
        assert err.value.code == "unexpected_response" and "get_job_status" in str(err.value)
        with pytest.raises(BridgeError) as err:
            c.health_live()
        assert err.value.code == "unexpected_response"
    assert fake_server.count("GET", "/jobs/j1") == 1


def test_the_token_is_sent_and_never_shown(fake_server):
    token = "tok-very-secret-42"
    # A server that (wrongly) echoes the token in its message.
    fake_server.script("GET", "/jobs/j1", (401, {"code": "unauthorized", "message": f"bad token {token}"}))
    with BridgeClient(base_url=fake_server.url, token=token) as c:
        with pytest.raises(UnauthorizedError) as err:
            c.get_job_status("j1")
        assert token not in repr(c) and token not in str(c)
    assert token not in str(err.value) and token not in repr(err.value) and token not in err.value.message
    assert "***" in err.value.message
    headers = fake_server.requests[-1][2]
    assert headers.get("Authorization") == f"Bearer {token}"


def test_connection_errors(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "tok-conn-77"
    with BridgeClient(base_url=f"http://127.0.0.1:{port}", token=token, backoff=0.01) as c:
        t0 = time.monotonic()
        with pytest.raises(TransportError) as err:
            c.health_live()
        assert time.monotonic() - t0 < 5
        assert err.value.status is None and token not in str(err.value)
        with pytest.raises(TransportError):
            c.extract(queries_path="q", config_path="c", country="Colombia", destination=LANDING)
        assert time.monotonic() - t0 < 5


def test_timeouts(fake_server):
    fake_server.script("GET", "/health/live", (200, LIVE, None, 1.0))
    fake_server.script("POST", "/extract", (202, ACCEPTED, None, 1.0))
    with BridgeClient(base_url=fake_server.url, token="t", timeout=0.2, backoff=0.01) as c:
        with pytest.raises(RequestTimeoutError):
            c.health_live()
        with pytest.raises(RequestTimeoutError):
            c.extract(queries_path="q", config_path="c", country="Colombia", destination=LANDING)
    assert fake_server.count("GET", "/health/live") == 3
    # A POST whose answer was lost is retried with its key.
    keys = _keys(fake_server, "POST", "/extract")
    assert len(keys) == 3 and len(set(keys)) == 1


def test_async_retries_get_and_keyed_post(fake_server):
    fake_server.script("GET", "/health/live", (503, UNAVAILABLE), (503, UNAVAILABLE), (200, LIVE))
    fake_server.script("POST", "/extract", (503, UNAVAILABLE))

    async def main():
        async with AsyncBridgeClient(base_url=fake_server.url, token="t", backoff=0.01) as c:
            assert (await c.health_live()).status == "ok"
            with pytest.raises(ServerError):
                await c.extract(queries_path="q", config_path="c", country="Colombia", destination=LANDING)

    asyncio.run(main())
    assert fake_server.count("GET", "/health/live") == 3
    keys = _keys(fake_server, "POST", "/extract")
    assert len(keys) == 3 and len(set(keys)) == 1 and keys[0]


def test_idempotency_keys_against_the_server(client, bridge):
    # The caller's own key: a second call with it (a retry after a crash,
    # say) gets the first job back, not a second one.
    before = {j.job_id for j in client.list_jobs(limit=500).jobs}
    key = f"py-{time.monotonic_ns()}"
    a = extract_colombia(client, idempotency_key=key)
    b = extract_colombia(client, idempotency_key=key)
    assert a.job_id == b.job_id
    after = {j.job_id for j in client.list_jobs(limit=500).jobs}
    assert after - before == {a.job_id}
    with pytest.raises(ValidationError) as err:
        extract_colombia(client, idempotency_key=key, queries=["ventas"])
    assert err.value.code == "idempotency_key_reused"
    # Without a key of its own, each call is its own request.
    c = extract_colombia(client)
    assert c.job_id != a.job_id

    async def main():
        async with AsyncBridgeClient(base_url=bridge.url, token=COLOMBIA_TOKEN) as ac:
            return await ac.extract(queries_path="./queries", config_path="./config", country="Colombia",
                                    destination=LANDING, overwrite=True, idempotency_key=key)

    assert asyncio.run(main()).job_id == a.job_id
    for j in (a, c):
        client.wait_for_job(j.job_id, poll_interval=POLL, timeout=WAIT)


# --------------------------------------------------------------------------
# examples/python_client.py
# --------------------------------------------------------------------------

def test_example_program(bridge):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update(
        BRIDGE_URL=bridge.url,
        BRIDGE_TOKEN=COLOMBIA_TOKEN,
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT / "client" / "python"), env.get("PYTHONPATH")) if p),
    )
    cmd = [
        sys.executable, str(REPO_ROOT / "examples" / "python_client.py"),
        "--destination", f"{LANDING}/Colombia/example", "--overwrite",
        "--source-table", "main.demo.calibrated_panel",
        "--target-table", "KWP_Colombia.dbo.CalibratedPanel",
        "--operation", "UPSERT", "--primary-key", "panel_id",
        *[arg for col in PANEL_COLUMNS for arg in ("--column", col)],
        "--poll-interval", "0.2", "--timeout", "60",
    ]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    out = run.stdout
    assert run.returncode == 0, f"stdout:\n{out}\nstderr:\n{run.stderr}"
    assert COLOMBIA_TOKEN not in out + run.stderr
    assert "ready" in out
    assert "state: succeeded" in out
    assert "status: completed" in out and "rows_affected=6" in out
    assert "ventas: succeeded" in out and "productos: succeeded" in out

    # A bad token: a clean error and a non-zero exit, without the token.
    env["BRIDGE_TOKEN"] = "wrong-token-1"
    bad = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0
    assert "401" in bad.stderr and "wrong-token-1" not in bad.stdout + bad.stderr


def test_to_dict_round_trip(client):
    job = extract_colombia(client, destination=f"{LANDING}/Colombia/roundtrip")
    status = client.wait_for_job(job.job_id, poll_interval=POLL, timeout=WAIT)
    data = status.to_dict()
    assert json.loads(json.dumps(data))["job_id"] == job.job_id
    assert JobStatus.from_dict(data) == status


# --------------------------------------------------------------------------
# examples/databricks/submit_sync_event.py (the asset bundle's Python task)
# --------------------------------------------------------------------------

def test_bundle_python_task(bridge):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT / "client" / "python"), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, str(REPO_ROOT / "examples" / "databricks" / "submit_sync_event.py"),
           "--bridge-url", bridge.url, "--token", COLOMBIA_TOKEN, "--timeout", "60"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert "status completed, rows affected 6" in run.stdout
    assert COLOMBIA_TOKEN not in run.stdout + run.stderr


def test_search_audit_reads_the_callers_own_lines(client, bridge):
    # A refusal of the caller's: Mexico's tables.
    with pytest.raises(ForbiddenError):
        client.extract(queries_path="./queries", config_path="./config", country="Mexico",
                       destination=f"{LANDING}/Mexico")
    page = client.search_audit(event_type="permission_denied", since="2000-01-01T00:00:00+00:00")
    assert page.lines and all(line.user_name == "proyecto-colombia" for line in page.lines)
    assert any("kwp_mexico" in line.resource for line in page.lines)
    with pytest.raises(ForbiddenError):
        client.search_audit(user="proyecto-mexico")
    with pytest.raises(ValidationError) as e:
        client.search_audit(since="yesterday")
    assert e.value.field == "since"
    with BridgeClient(base_url=bridge.url, token="demo-ops-token") as ops:
        everyone = ops.search_audit(outcome="denied", limit=1000)
        assert {"proyecto-colombia", None} <= {line.user_name for line in everyone.lines}


def test_list_countries(client):
    assert {"Colombia", "Mexico"} <= set(client.list_countries())
    assert client.list_countries(config_path="./config") == sorted(client.list_countries())

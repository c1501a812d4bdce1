"""Fault injection set from the command line, observed by clients: 429 with
Retry-After (and the SDK retrying it), FAILED statements matching a pattern,
downloads cut mid-stream (and the SDK's resumable download recovering with
Range + If-Unmodified-Since), expired result links."""

from __future__ import annotations

import io

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.sql import Disposition, Format, StatementState

from dbx_double import TOKEN, start_workspace, stop_workspace


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    ws = start_workspace(
        tmp_path_factory.mktemp("databricks-faults"),
        "--fault-429", "1:2",
        "--fail-statements", "(?i)calibrated_panel:1",
        "--cut-downloads-after", str(3 * 1024 * 1024),
        "--expire-links",
    )
    yield ws
    stop_workspace(ws)


def test_cli_faults(faulty):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = requests.get(f"{faulty.host}/api/2.0/sql/warehouses", headers=auth)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "2"
    assert r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"

    w = WorkspaceClient(host=faulty.host, token=TOKEN)
    sql = "SELECT count(*) FROM main.demo.calibrated_panel"
    first = w.statement_execution.execute_statement(statement=sql, warehouse_id=faulty.warehouse_id)
    assert first.status.state == StatementState.FAILED
    second = w.statement_execution.execute_statement(statement=sql, warehouse_id=faulty.warehouse_id)
    assert second.status.state == StatementState.SUCCEEDED
    assert second.result.data_array == [["6"]]

    # 5 MiB, cut after every 3 MiB sent: a plain GET comes up short; the
    # SDK reads 2 MiB pieces, so each resumed request makes progress.
    data = bytes(range(256)) * (5 * 4096)
    path = "/Volumes/main/demo/landing/cut-me.bin"
    w.files.upload(path, io.BytesIO(data), overwrite=True)
    raw = requests.get(f"{faulty.host}/api/2.0/fs/files{path}", headers=auth, stream=True)
    with pytest.raises(requests.exceptions.RequestException):
        raw.content  # noqa: B018 - reading the body is the point
    # The SDK's download resumes with Range + If-Unmodified-Since and gets every byte.
    assert w.files.download(path).contents.read() == data

    res = w.statement_execution.execute_statement(
        statement="SELECT id FROM range(10)", warehouse_id=faulty.warehouse_id,
        disposition=Disposition.EXTERNAL_LINKS, format=Format.CSV)
    link = res.result.external_links[0]
    refused = requests.get(link.external_link)
    assert refused.status_code == 403
    assert "expired" in refused.text


def test_sdk_retries_429_after_retry_after(tmp_path):
    ws = start_workspace(tmp_path, "--fault-429", "1:1")
    try:
        w = WorkspaceClient(host=ws.host, token=TOKEN)
        # The host-metadata probe during configuration takes the 429 or the call
        # below does; either way the SDK waits Retry-After and succeeds.
        assert [x.id for x in w.warehouses.list()] == [ws.warehouse_id]
    finally:
        stop_workspace(ws)

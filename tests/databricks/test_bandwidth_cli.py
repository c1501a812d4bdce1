"""The slow-link fault and header-protected result links, set from the
command line (`--bandwidth-bytes-per-sec`, `--link-header`) and observed with
the official SDK and plain HTTP: file transfers take the time the rate
gives them and arrive whole; result links carry `http_headers` and refuse a
GET without them."""

from __future__ import annotations

import io
import time

import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.sql import Disposition, Format, StatementState

from dbx_double import TOKEN, start_workspace, stop_workspace

RATE = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    ws = start_workspace(
        tmp_path_factory.mktemp("databricks-slow"),
        "--bandwidth-bytes-per-sec", str(RATE),
        "--link-header", "x-ms-encryption-key",
        "--link-header", "x-ms-encryption-algorithm=AES256",
    )
    yield ws
    stop_workspace(ws)


def test_files_move_at_the_set_rate(slow):
    w = WorkspaceClient(host=slow.host, token=TOKEN)
    data = bytes(range(256)) * (6 * 4096)  # 6 MiB
    path = "/Volumes/main/demo/landing/slow.bin"
    started = time.monotonic()
    w.files.upload(path, io.BytesIO(data), overwrite=True)
    assert time.monotonic() - started >= 1.2
    started = time.monotonic()
    got = requests.get(
        f"{slow.host}/api/2.0/fs/files{path}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=(2, 2),  # connect, read: each wait stays short while bytes flow
    )
    assert time.monotonic() - started >= 1.2
    assert got.content == data
    assert w.files.download(path).contents.read() == data


def test_result_links_require_their_headers(slow):
    w = WorkspaceClient(host=slow.host, token=TOKEN)
    res = w.statement_execution.execute_statement(
        statement="SELECT id FROM range(10)", warehouse_id=slow.warehouse_id,
        disposition=Disposition.EXTERNAL_LINKS, format=Format.CSV)
    assert res.status.state == StatementState.SUCCEEDED
    link = res.result.external_links[0]
    assert link.http_headers["x-ms-encryption-algorithm"] == "AES256"
    assert len(link.http_headers["x-ms-encryption-key"]) == 32
    assert requests.get(link.external_link).status_code == 403
    ok = requests.get(link.external_link, headers=link.http_headers)
    assert ok.status_code == 200
    assert ok.text.split() == [str(i) for i in range(10)]

"""The official Databricks SDK for Python, unchanged, against the double.

These tests are the double's contract: the bridge relies on a behaviour only
once it passes here with a client nobody on this project wrote.
"""

from __future__ import annotations

import io
import time

import pyarrow as pa
import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, PermissionDenied, ResourceAlreadyExists, AlreadyExists
from databricks.sdk.service.sql import (
    Disposition,
    ExecuteStatementRequestOnWaitTimeout,
    Format,
    StatementParameterListItem,
    StatementState,
)

from dbx_double import CLIENT_ID, CLIENT_SECRET, TOKEN, client, unique, workspace  # noqa: F401 - fixtures

VOLUME = "/Volumes/main/demo/landing"


# ---- Files API

def test_upload_download_metadata_and_listing(client, unique):
    data = bytes(range(256)) * 4096 + b"tail"
    path = f"{VOLUME}/sdk-{unique}/part-0000.parquet"
    client.files.upload(path, io.BytesIO(data), overwrite=True)

    meta = client.files.get_metadata(path)
    assert meta.content_length == len(data)
    assert meta.last_modified

    got = client.files.download(path).contents.read()
    assert got == data

    client.files.upload(f"{VOLUME}/sdk-{unique}/part-0001.parquet", io.BytesIO(b"x"), overwrite=True)
    entries = list(client.files.list_directory_contents(f"{VOLUME}/sdk-{unique}", page_size=1))
    assert [e.name for e in entries] == ["part-0000.parquet", "part-0001.parquet"]
    assert entries[0].path == path
    assert entries[0].file_size == len(data)
    assert entries[0].is_directory is False

    top = [e.name for e in client.files.list_directory_contents(VOLUME)]
    assert f"sdk-{unique}" in top


def test_overwrite_false_conflicts_and_delete(client, unique):
    path = f"{VOLUME}/ow-{unique}.bin"
    client.files.upload(path, io.BytesIO(b"one"), overwrite=True)
    with pytest.raises((AlreadyExists, ResourceAlreadyExists)) as exc:
        client.files.upload(path, io.BytesIO(b"two"), overwrite=False)
    assert exc.value.error_code == "ALREADY_EXISTS"
    assert client.files.download(path).contents.read() == b"one"
    client.files.delete(path)
    with pytest.raises(NotFound):
        client.files.get_metadata(path)


def test_paths_outside_a_volume_are_404(client):
    with pytest.raises(NotFound):
        client.files.upload("/Volumes/main/demo/no_such_volume/x.bin", io.BytesIO(b"x"))
    with pytest.raises(NotFound):
        client.files.download(f"{VOLUME}/does/not/exist.bin").contents.read()
    with pytest.raises(NotFound):
        list(client.files.list_directory_contents(f"{VOLUME}/no-such-dir"))


def test_directories(client, unique):
    d = f"{VOLUME}/dir-{unique}/a/b"
    client.files.create_directory(d)
    client.files.get_directory_metadata(d)
    client.files.delete_directory(d)
    with pytest.raises(NotFound):
        client.files.get_directory_metadata(d)


def test_range_download(workspace, client, unique):
    path = f"{VOLUME}/range-{unique}.bin"
    client.files.upload(path, io.BytesIO(b"0123456789"), overwrite=True)
    r = requests.get(f"{workspace.host}/api/2.0/fs/files{path}",
                     headers={"Authorization": f"Bearer {TOKEN}", "Range": "bytes=2-5"})
    assert r.status_code == 206
    assert r.content == b"2345"
    assert r.headers["Content-Range"] == "bytes 2-5/10"


def test_upload_size_limit(workspace, unique):
    r = requests.put(f"{workspace.host}/api/2.0/fs/files{VOLUME}/big-{unique}.bin",
                     headers={"Authorization": f"Bearer {TOKEN}"}, data=b"x" * (4 * 1024 * 1024 + 1))
    assert r.status_code == 413
    assert set(r.json()) >= {"error_code", "message"}


# ---- Statement Execution API

def test_execute_with_named_parameters(workspace, client):
    resp = client.statement_execution.execute_statement(
        statement="SELECT panel_id, country, weight, period, is_active, tags, updated_at "
                  "FROM main.demo.calibrated_panel WHERE country = :country AND period >= :since "
                  "ORDER BY panel_id",
        warehouse_id=workspace.warehouse_id,
        parameters=[
            StatementParameterListItem(name="country", value="CO"),
            StatementParameterListItem(name="since", value="2024-01-01", type="DATE"),
        ],
        wait_timeout="30s",
    )
    assert resp.status.state == StatementState.SUCCEEDED
    cols = resp.manifest.schema.columns
    assert [c.name for c in cols] == ["panel_id", "country", "weight", "period", "is_active", "tags", "updated_at"]
    assert [c.type_text for c in cols] == ["BIGINT", "STRING", "DECIMAL(18,6)", "DATE", "BOOLEAN",
                                           "ARRAY<STRING>", "TIMESTAMP"]
    assert [c.type_name.value for c in cols] == ["LONG", "STRING", "DECIMAL", "DATE", "BOOLEAN", "ARRAY", "TIMESTAMP"]
    assert [c.position for c in cols] == list(range(7))
    rows = resp.result.data_array
    assert len(rows) == 3 and resp.manifest.total_row_count == 3
    assert all(v is None or isinstance(v, str) for r in rows for v in r)
    assert rows[0][:5] == ["1", "CO", "1.250000", "2024-01-01", "true"]
    assert rows[0][5] == '["urban","north"]'
    assert rows[0][6].startswith("2024-01-05T08:00:00")


def test_sql_error_is_200_with_failed_state(workspace, client):
    resp = client.statement_execution.execute_statement(
        statement="SELECT * FROM main.demo.no_such_table", warehouse_id=workspace.warehouse_id,
        wait_timeout="10s")
    assert resp.status.state == StatementState.FAILED
    assert "TABLE_OR_VIEW_NOT_FOUND" in resp.status.error.message
    assert resp.status.error.error_code is not None


def test_async_polling_and_chunks(workspace, client):
    resp = client.statement_execution.execute_statement(
        statement="SELECT id, concat('row-', id) AS label FROM range(20000)",
        warehouse_id=workspace.warehouse_id, wait_timeout="0s")
    assert resp.status.state in (StatementState.PENDING, StatementState.RUNNING)
    seen = {resp.status.state}
    deadline = time.time() + 30
    while True:
        st = client.statement_execution.get_statement(resp.statement_id)
        seen.add(st.status.state)
        if st.status.state not in (StatementState.PENDING, StatementState.RUNNING):
            break
        assert time.time() < deadline
        time.sleep(0.05)
    assert st.status.state == StatementState.SUCCEEDED
    m = st.manifest
    assert m.total_chunk_count > 1 and m.total_row_count == 20000 and m.truncated is False
    ids = [int(r[0]) for r in st.result.data_array]
    nxt = st.result.next_chunk_index
    assert st.result.next_chunk_internal_link.endswith(f"/result/chunks/{nxt}")
    while nxt is not None:
        chunk = client.statement_execution.get_statement_result_chunk_n(st.statement_id, nxt)
        assert chunk.chunk_index == nxt and chunk.row_offset == len(ids)
        ids.extend(int(r[0]) for r in chunk.data_array)
        nxt = chunk.next_chunk_index
    assert ids == list(range(20000))


def test_row_limit_truncates(workspace, client):
    resp = client.statement_execution.execute_statement(
        statement="SELECT id FROM range(100)", warehouse_id=workspace.warehouse_id, row_limit=10)
    assert resp.manifest.truncated is True
    assert resp.manifest.total_row_count == 10


def test_cancel_on_wait_timeout_and_cancel_call(workspace, client):
    resp = client.statement_execution.execute_statement(
        statement="SELECT 1", warehouse_id=workspace.warehouse_id, wait_timeout="0s")
    client.statement_execution.cancel_execution(resp.statement_id)
    assert client.statement_execution.get_statement(resp.statement_id).status.state == StatementState.CANCELED


def test_dml_counts_and_merge(workspace, client, unique):
    ex = lambda sql, **kw: client.statement_execution.execute_statement(
        statement=sql, warehouse_id=workspace.warehouse_id, catalog="main", schema="demo", **kw)
    t = f"t_{unique}"
    assert ex(f"CREATE TABLE {t} (id INT, v STRING, amount DECIMAL(10,2))").status.state == StatementState.SUCCEEDED
    ins = ex(f"INSERT INTO {t} VALUES (1, 'a', 1.50), (2, 'b', 2.25), (3, 'c', 3.00)")
    assert [c.name for c in ins.manifest.schema.columns] == ["num_affected_rows", "num_inserted_rows"]
    assert ins.result.data_array == [["3", "3"]]
    upd = ex(f"UPDATE {t} SET v = :v WHERE id = :id",
             parameters=[StatementParameterListItem(name="v", value="zz"),
                         StatementParameterListItem(name="id", value="2", type="INT")])
    assert upd.result.data_array == [["1"]]
    merge = ex(f"MERGE INTO {t} AS t USING (SELECT 3 AS id, 'C' AS v UNION ALL SELECT 4, 'd') AS s "
               f"ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v "
               f"WHEN NOT MATCHED THEN INSERT (id, v, amount) VALUES (s.id, s.v, 0)")
    assert merge.result.data_array == [["2", "1", "0", "1"]]
    rows = ex(f"SELECT id, v, amount FROM {t} ORDER BY id").result.data_array
    assert rows == [["1", "a", "1.50"], ["2", "zz", "2.25"], ["3", "C", "3.00"], ["4", "d", "0.00"]]
    assert ex(f"DELETE FROM {t} WHERE id > 2").result.data_array == [["2"]]


def test_external_links_arrow_stream_types(workspace, client):
    resp = client.statement_execution.execute_statement(
        statement="SELECT panel_id, weight, period, updated_at, tags FROM main.demo.calibrated_panel ORDER BY panel_id",
        warehouse_id=workspace.warehouse_id, disposition=Disposition.EXTERNAL_LINKS,
        format=Format.ARROW_STREAM, wait_timeout="30s")
    assert resp.status.state == StatementState.SUCCEEDED
    links = resp.result.external_links
    assert links and links[0].expiration
    raw = requests.get(links[0].external_link)  # no bearer token, as documented
    assert raw.status_code == 200
    table = pa.ipc.open_stream(raw.content).read_all()
    assert table.schema.field("panel_id").type == pa.int64()
    assert table.schema.field("weight").type == pa.decimal128(18, 6)
    assert table.schema.field("period").type == pa.date32()
    assert pa.types.is_timestamp(table.schema.field("updated_at").type)
    assert table.schema.field("updated_at").type.unit == "us"
    assert table.schema.field("tags").type == pa.list_(pa.field("element", pa.string()))
    assert table.num_rows == 6
    assert str(table.column("weight")[0].as_py()) == "1.250000"
    assert table.column("tags")[0].as_py() == ["urban", "north"]


def test_inline_only_json_array(workspace, client):
    from databricks.sdk.errors import BadRequest
    with pytest.raises(BadRequest):
        client.statement_execution.execute_statement(
            statement="SELECT 1", warehouse_id=workspace.warehouse_id,
            disposition=Disposition.INLINE, format=Format.ARROW_STREAM)


def test_unknown_warehouse_is_rejected(client):
    from databricks.sdk.errors import DatabricksError
    with pytest.raises(DatabricksError):
        client.statement_execution.execute_statement(statement="SELECT 1", warehouse_id="nope")


# ---- Unity Catalog and warehouses

def test_unity_catalog_and_warehouses(workspace, client, unique):
    assert {"main", "bridge"} <= {c.name for c in client.catalogs.list()}
    assert "demo" in {s.name for s in client.schemas.list(catalog_name="main")}
    vol = client.volumes.read("main.demo.landing")
    assert vol.full_name == "main.demo.landing"
    t = client.tables.get("bridge.events.bridge_events")
    cols = {c.name: c for c in t.columns}
    assert cols["primary_keys"].type_text == "array<string>"
    assert cols["created_at"].type_name.value == "TIMESTAMP"
    panel = client.tables.get("main.demo.calibrated_panel")
    w = {c.name: c for c in panel.columns}["weight"]
    assert (w.type_name.value, w.type_precision, w.type_scale) == ("DECIMAL", 18, 6)
    client.schemas.create(name=f"s_{unique}", catalog_name="main")
    client.volumes.create(catalog_name="main", schema_name=f"s_{unique}", name="v",
                          volume_type=__import__("databricks.sdk.service.catalog", fromlist=["VolumeType"]).VolumeType.MANAGED)
    client.files.upload(f"/Volumes/main/s_{unique}/v/x.txt", io.BytesIO(b"hi"))
    client.volumes.delete(f"main.s_{unique}.v")
    with pytest.raises(NotFound):
        client.files.get_metadata(f"/Volumes/main/s_{unique}/v/x.txt")
    client.schemas.delete(f"main.s_{unique}")
    whs = list(client.warehouses.list())
    assert len(whs) == 1 and whs[0].id == workspace.warehouse_id
    assert client.warehouses.get(workspace.warehouse_id).state.value == "RUNNING"


# ---- Auth

def test_oauth_m2m(workspace):
    w = WorkspaceClient(host=workspace.host, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert w.config.auth_type == "oauth-m2m"
    resp = w.statement_execution.execute_statement(
        statement="SELECT count(*), current_user() FROM bridge.events.bridge_events",
        warehouse_id=workspace.warehouse_id)
    assert resp.status.state == StatementState.SUCCEEDED
    count, user = resp.result.data_array[0]
    assert int(count) >= 0
    assert user == CLIENT_ID  # a service principal is named by its application id


def test_oauth_token_endpoint_and_bad_credentials(workspace):
    r = requests.post(f"{workspace.host}/oidc/v1/token", auth=(CLIENT_ID, CLIENT_SECRET),
                      data={"grant_type": "client_credentials", "scope": "all-apis"})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    ok = requests.get(f"{workspace.host}/api/2.0/sql/warehouses",
                      headers={"Authorization": f"Bearer {body['access_token']}"})
    assert ok.status_code == 200
    bad = requests.post(f"{workspace.host}/oidc/v1/token", auth=(CLIENT_ID, "wrong"),
                        data={"grant_type": "client_credentials", "scope": "all-apis"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"


def test_bad_and_missing_tokens(workspace):
    w = WorkspaceClient(host=workspace.host, token="dapi-wrong")
    with pytest.raises(PermissionDenied, match="Invalid access token"):
        list(w.warehouses.list())
    raw = requests.get(f"{workspace.host}/api/2.0/sql/warehouses", headers={"Authorization": "Bearer dapi-wrong"})
    assert raw.status_code == 403
    assert raw.json() == {"error_code": 403, "message": "Invalid access token."}
    r = requests.get(f"{workspace.host}/api/2.0/sql/warehouses")
    assert r.status_code == 401
    assert r.json()["error_code"] == "UNAUTHENTICATED"


# ---- Identities and Unity Catalog grants

def test_current_user_and_grants(workspace, client, unique):
    from databricks.sdk.service.catalog import PermissionsChange, Privilege, SecurableType

    me = client.current_user.me()
    assert me.user_name == "sandbox-admin@bridge.local"  # a bare --token's principal
    assert me.active and me.id.isdigit()
    sp = WorkspaceClient(host=workspace.host, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert sp.current_user.me().user_name == CLIENT_ID

    schema, table = f"main.g_{unique}", f"main.g_{unique}.t"
    for sql in (f"CREATE SCHEMA {schema}", f"CREATE TABLE {table} (id BIGINT)"):
        r = client.statement_execution.execute_statement(statement=sql, warehouse_id=workspace.warehouse_id)
        assert r.status.state == StatementState.SUCCEEDED
    assert client.tables.get(table).owner == me.user_name

    who = "analyst@example.com"
    upd = client.grants.update(securable_type="table", full_name=table, changes=[
        PermissionsChange(principal=who, add=[Privilege.SELECT, Privilege.MODIFY])])
    assert [(a.principal, sorted(p.value for p in a.privileges)) for a in upd.privilege_assignments] == [
        (who, ["MODIFY", "SELECT"])]
    client.grants.update(securable_type="schema", full_name=schema, changes=[
        PermissionsChange(principal=who, add=[Privilege.USE_SCHEMA, Privilege.SELECT])])
    client.grants.update(securable_type="table", full_name=table, changes=[
        PermissionsChange(principal=who, remove=[Privilege.MODIFY])])

    got = client.grants.get(securable_type="table", full_name=table)
    assert [(a.principal, [p.value for p in a.privileges]) for a in got.privilege_assignments] == [
        (who, ["SELECT"])]
    eff = client.grants.get_effective(securable_type="table", full_name=table, principal=who)
    [assignment] = eff.privilege_assignments
    assert assignment.principal == who
    assert {(p.privilege, p.inherited_from_type, p.inherited_from_name) for p in assignment.privileges} == {
        (Privilege.SELECT, None, None),
        (Privilege.SELECT, SecurableType.SCHEMA, schema),
    }
    with pytest.raises(NotFound):
        client.grants.get(securable_type="table", full_name=f"{schema}.missing")


# ---- Parquet in a Volume, read back with SQL

def test_parquet_uploaded_to_a_volume_reads_back(workspace, client, unique):
    import datetime
    import decimal

    import pyarrow.parquet as pq

    table = pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "name": pa.array(["a", None, "c"], pa.string()),
        "amount": pa.array([decimal.Decimal("1.50"), decimal.Decimal("-2.25"), None], pa.decimal128(18, 2)),
        "day": pa.array([datetime.date(2024, 1, 1), datetime.date(2024, 2, 29), None], pa.date32()),
        "ts": pa.array([datetime.datetime(2024, 1, 1, 12, 30), None, datetime.datetime(2024, 3, 1)],
                       pa.timestamp("us", tz="UTC")),
    })
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy")
    buf.seek(0)
    base = f"{VOLUME}/extract-{unique}"
    client.files.upload(f"{base}/part-0.parquet", buf, overwrite=True)

    resp = client.statement_execution.execute_statement(
        statement=f"SELECT id, name, amount, day, ts FROM parquet.`{base}/part-0.parquet` ORDER BY id",
        warehouse_id=workspace.warehouse_id)
    assert resp.status.state == StatementState.SUCCEEDED, resp.status
    assert [c.type_text for c in resp.manifest.schema.columns] == [
        "BIGINT", "STRING", "DECIMAL(18,2)", "DATE", "TIMESTAMP"]
    assert resp.result.data_array == [
        ["1", "a", "1.50", "2024-01-01", "2024-01-01T12:30:00.000Z"],
        ["2", None, "-2.25", "2024-02-29", None],
        ["3", "c", None, None, "2024-03-01T00:00:00.000Z"],
    ]
    count = client.statement_execution.execute_statement(
        statement=f"SELECT count(*) FROM read_files('{base}', format => 'parquet')",
        warehouse_id=workspace.warehouse_id)
    assert count.status.state == StatementState.SUCCEEDED, count.status
    assert count.result.data_array == [["3"]]
    missing = client.statement_execution.execute_statement(
        statement=f"SELECT * FROM parquet.`{base}/nope.parquet`", warehouse_id=workspace.warehouse_id)
    assert missing.status.state == StatementState.FAILED
    assert "PATH_NOT_FOUND" in missing.status.error.message


def test_names_with_spaces_and_unicode(client, unique):
    path = f"{VOLUME}/odd {unique}/año 1+1%.txt"
    client.files.upload(path, io.BytesIO(b"ok"), overwrite=True)
    assert client.files.download(path).contents.read() == b"ok"
    names = [e.name for e in client.files.list_directory_contents(f"{VOLUME}/odd {unique}")]
    assert names == ["año 1+1%.txt"]

"""The Python BridgeOperator (sql_databricks_bridge.sdk.databricks) against
both sandboxes, as a notebook uses it: the installed wheel (built by
scripts/setup-test-env.sh from client/python with maturin), never the working
tree, so what is tried is what `pip install` gives a user.

Run on its own (`pytest tests/operator`): tests/clients puts the working
tree's client/python first on sys.path, which has no compiled `_native`.

Values are checked with a client nobody here wrote (python-tds) on the SQL
Server side, and against the Parquet extraction of the same query read by
pyarrow for every `extract_to_*`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytds
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from processes import REPO_ROOT, start_databricks, start_sqlserver  # noqa: E402

SA_PASSWORD = "Bridge!Passw0rd"
DBX_TOKEN = "dapi-operator"
LARGE_ROWS = 1_000_000

if str(REPO_ROOT / "client" / "python") in sys.path:  # pragma: no cover
    pytest.fail("tests/operator must run without client/python on sys.path", pytrace=False)

from sql_databricks_bridge.sdk import databricks as sdk_dbx  # noqa: E402
from sql_databricks_bridge.sdk.databricks import (  # noqa: E402
    ArgumentError,
    BridgeError,
    BridgeOperator,
    ExtractError,
    SqlServerError,
    SyncError,
)

SQLSERVER_SEED = """
CREATE DATABASE OpTest
GO
USE OpTest
GO
CREATE TABLE dbo.tipos (
    id int NOT NULL PRIMARY KEY,
    d decimal(18,4) NULL,
    d38 decimal(38,10) NULL,
    m money NULL,
    sm smallmoney NULL,
    dto datetimeoffset(7) NULL,
    dt2 datetime2(7) NULL,
    dtm datetime NULL,
    dd date NULL,
    g uniqueidentifier NULL,
    u nvarchar(60) NULL,
    v varchar(20) NULL,
    b bit NULL,
    f float NULL,
    bin varbinary(16) NULL,
    ti tinyint NULL,
    si smallint NULL,
    bi bigint NULL
)
GO
INSERT INTO dbo.tipos VALUES
 (1, 12345678901234.5678, 1234567890123456789012345678.0123456789, 922337203685477.5807, 214748.3647,
  '2024-03-10T22:15:30.1234567-05:00', '2024-03-10T01:02:03.1234560', '2024-03-10T01:02:03.997', '2024-03-10',
  '6F9619FF-8B86-D011-B42D-00C04FC964FF', N'José Ñandú 李小龍 🚀', 'abc', 1, 1.5e300, 0x00FF10, 255, -32768, -9223372036854775808),
 (2, -0.0001, -1.0000000001, -922337203685477.5808, -214748.3648,
  '0001-01-01T00:00:00-08:00', '9999-12-31T23:59:59.9999990', '1753-01-01T00:00:00', '0001-01-01',
  '00000000-0000-0000-0000-000000000000', N'', '', 0, -0.0, 0x, 0, 32767, 9223372036854775807),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
GO
CREATE TABLE dbo.CalibrationResults (
    id_hogar int NOT NULL,
    periodo char(7) NOT NULL,
    peso decimal(18,6) NULL,
    nota nvarchar(40) NULL,
    CONSTRAINT pk_cal PRIMARY KEY (id_hogar, periodo)
)
GO
CREATE TABLE dbo.JobTarget (id_hogar int NOT NULL, periodo char(7) NOT NULL, peso decimal(18,6) NULL,
                            nota nvarchar(40) NULL, PRIMARY KEY (id_hogar, periodo))
GO
CREATE DATABASE KWP_Colombia
GO
USE KWP_Colombia
GO
CREATE TABLE dbo.Ventas (id_transaccion bigint NOT NULL PRIMARY KEY, fecha datetime2(3) NOT NULL,
                         monto_total decimal(18,2) NOT NULL)
GO
INSERT INTO dbo.Ventas VALUES (1, '2023-12-31T23:59:59.999', 10.00), (2, '2024-01-01T00:00:00', 20.50),
                              (3, '2024-06-30T12:00:00', 30.25)
GO
CREATE TABLE dbo.CalibrationResults (id_hogar int NOT NULL, periodo char(7) NOT NULL, peso decimal(18,6) NULL,
                                     CONSTRAINT pk_cal_co PRIMARY KEY (id_hogar, periodo))
GO
"""

DATABRICKS_SEED = """
CREATE SCHEMA IF NOT EXISTS main.op;
CREATE TABLE main.op.calibrated_panel (id_hogar INT, periodo STRING, peso DECIMAL(18,6), nota STRING);
INSERT INTO main.op.calibrated_panel VALUES
  (1, '2024-01', 1.250000, 'urbano'), (2, '2024-01', 0.980000, 'rural'),
  (3, '2024-02', 1.310000, NULL), (4, '2024-02', 2.000000, 'Ñandú');
CREATE TABLE main.op.updates (id_hogar INT, periodo STRING, peso DECIMAL(18,6), nota STRING);
INSERT INTO main.op.updates VALUES (2, '2024-01', 9.999999, 'revisado'), (4, '2024-02', NULL, NULL);
CREATE TABLE main.op.upserts (id_hogar INT, periodo STRING, peso DECIMAL(18,6), nota STRING);
INSERT INTO main.op.upserts VALUES (1, '2024-01', 0.500000, 'upsert'), (5, '2024-03', 3.000000, 'nuevo');
CREATE TABLE main.op.deletes (id_hogar INT, periodo STRING);
CREATE CATALOG IF NOT EXISTS catalog;
CREATE SCHEMA IF NOT EXISTS catalog.`schema`;
CREATE TABLE catalog.`schema`.calibrated_panel (id_hogar INT, periodo STRING, peso DECIMAL(18,6));
INSERT INTO catalog.`schema`.calibrated_panel VALUES (1001, '2024-01', 1.25), (1002, '2024-01', 0.98);
INSERT INTO main.op.deletes VALUES (3, '2024-02'), (5, '2024-03');
"""


@dataclass
class World:
    host: str
    port: int
    dbx_url: str
    warehouse: str

    def operator(self, **kw) -> BridgeOperator:
        args = dict(
            sql_server_host=f"{self.host},{self.port}",
            sql_server_database="OpTest",
            sql_server_user="sa",
            sql_server_password=SA_PASSWORD,
            trust_server_certificate=True,
            databricks_host=self.dbx_url,
            databricks_token=DBX_TOKEN,
            warehouse_id=self.warehouse,
        )
        args.update(kw)
        return BridgeOperator(**args)

    def tds(self):
        return pytds.connect(
            dsn=self.host, port=self.port, database="OpTest", user="sa", password=SA_PASSWORD,
            autocommit=True,
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    d = tmp_path_factory.mktemp("operator")
    (d / "sqlserver.sql").write_text(SQLSERVER_SEED)
    (d / "databricks.sql").write_text(DATABRICKS_SEED)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQLSERVER_", "DATABRICKS_", "BRIDGE_"))}
    # Generating the large table takes a while on a small machine.
    sql, host, port = start_sqlserver(
        "sqlserver", d, "--seed", str(d / "sqlserver.sql"), "--generate", f"OpTest.ventas:{LARGE_ROWS}",
        env=env, timeout=600.0,
    )
    try:
        dbx, url, warehouse = start_databricks(
            "databricks", d, "--token", DBX_TOKEN, "--seed", str(d / "databricks.sql"), env=env, timeout=600.0,
        )
        try:
            yield World(host, port, url, warehouse)
        finally:
            dbx.stop()
    finally:
        sql.stop()


def _rows(world: World, sql: str) -> list[tuple]:
    with world.tds() as conn, conn.cursor() as cur:
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()]


TYPES_QUERY = "SELECT * FROM dbo.tipos ORDER BY id OFFSET 0 ROWS"


def _parquet(world: World, tmp_path: Path, query: str) -> pa.Table:
    out = world.operator().extract_to_parquet(query, tmp_path / "ref")
    assert out.rows_written == out.rows_read and out.discrepancy is None
    assert (tmp_path / "ref" / "_manifest.json").is_file()
    return pq.read_table(tmp_path / "ref")


# -- extraction ----------------------------------------------------------------------


def test_arrow_equals_parquet_on_every_type(world, tmp_path):
    ref = _parquet(world, tmp_path, TYPES_QUERY)
    got = world.operator().extract_to_arrow(TYPES_QUERY)
    assert isinstance(got, pa.Table)
    assert got.schema.equals(ref.schema, check_metadata=False), f"{got.schema}\n!=\n{ref.schema}"
    assert got.equals(ref)
    assert got.to_pylist() == ref.to_pylist()
    types = {f.name: f.type for f in got.schema}
    assert types["d"] == pa.decimal128(18, 4) and types["d38"] == pa.decimal128(38, 10)
    assert types["m"] == pa.decimal128(19, 4) and types["sm"] == pa.decimal128(10, 4)
    assert pa.types.is_timestamp(types["dto"]) and types["dto"].tz is not None
    assert types["g"] == pa.string() and types["u"] == pa.string()
    rows = got.to_pylist()
    assert rows[0]["m"] == decimal.Decimal("922337203685477.5807")
    assert rows[1]["m"] == decimal.Decimal("-922337203685477.5808")
    assert rows[0]["d38"] == decimal.Decimal("1234567890123456789012345678.0123456789")
    assert rows[0]["u"] == "José Ñandú 李小龍 🚀"
    assert rows[0]["g"].upper() == "6F9619FF-8B86-D011-B42D-00C04FC964FF"
    assert rows[0]["dto"] == dt.datetime(2024, 3, 11, 3, 15, 30, 123456, tzinfo=dt.timezone.utc)
    assert all(v is None for k, v in rows[2].items() if k != "id")


def test_polars_equals_parquet(world, tmp_path):
    import polars as pl

    ref = pl.read_parquet(_write_ref(world, tmp_path))
    got = world.operator().extract_to_polars(TYPES_QUERY)
    assert isinstance(got, pl.DataFrame)
    assert got.schema == ref.schema
    assert got.equals(ref)
    assert got.schema["d38"] == pl.Decimal(38, 10)
    assert got["m"][0] == decimal.Decimal("922337203685477.5807")


def _write_ref(world: World, tmp_path: Path) -> Path:
    _parquet(world, tmp_path, TYPES_QUERY)
    return tmp_path / "ref" / "part-00000.parquet"


def test_parquet_result_and_errors(world, tmp_path):
    op = world.operator()
    out = op.extract_to_parquet("SELECT id, u FROM dbo.tipos", tmp_path / "p")
    assert (out.rows_read, out.rows_written) == (3, 3)
    assert out.parts == ["part-00000.parquet"] and out.bytes > 0
    with pytest.raises(ExtractError) as e:
        op.extract_to_parquet("SELECT id FROM dbo.tipos", tmp_path / "p")
    assert e.value.kind == "extract.exists"
    op.extract_to_parquet("SELECT id FROM dbo.tipos WHERE id = 1", tmp_path / "p", overwrite=True)
    assert pq.read_table(tmp_path / "p").num_rows == 1
    with pytest.raises(ExtractError) as e:
        op.extract_to_arrow("SELECT no_such_column FROM dbo.tipos")
    assert e.value.kind == "extract.sql" and "no_such_column" in e.value.message
    assert isinstance(e.value, BridgeError)


def test_bad_login_is_a_sql_server_error(world):
    with pytest.raises(SqlServerError) as e:
        world.operator(sql_server_password="wrong").extract_to_arrow("SELECT 1 AS x")
    assert e.value.kind == "sqlserver.login"
    assert "wrong" not in str(e.value)


def test_settings_from_the_environment(world, monkeypatch):
    monkeypatch.setenv("SQLSERVER_HOST", f"{world.host},{world.port}")
    monkeypatch.setenv("SQLSERVER_DATABASE", "OpTest")
    monkeypatch.setenv("SQLSERVER_USERNAME", "sa")
    monkeypatch.setenv("SQLSERVER_PASSWORD", SA_PASSWORD)
    monkeypatch.setenv("SQLSERVER_TRUST_SERVER_CERTIFICATE", "true")
    monkeypatch.setenv("DATABRICKS_HOST", world.dbx_url)
    monkeypatch.setenv("DATABRICKS_TOKEN", DBX_TOKEN)
    monkeypatch.setenv("DATABRICKS_WAREHOUSE_ID", world.warehouse)
    op = BridgeOperator()
    assert op.extract_to_arrow("SELECT COUNT(*) AS n FROM dbo.tipos").to_pylist() == [{"n": 3}]


# -- Spark ------------------------------------------------------------------------------


def test_spark_small_result_through_arrow(world, tmp_path, spark):
    ref = spark.read.parquet(str(_write_ref(world, tmp_path)))
    df = world.operator().extract_to_spark(TYPES_QUERY, spark)
    assert df.inputFiles() == [], "a small result is handed over from memory"
    assert df.schema == ref.schema, f"{df.schema}\n!=\n{ref.schema}"
    # Compared in Spark: Python's datetime cannot hold every value here
    # (pyspark's collect() fails on 0001-01-01 in UTC-8).
    assert df.count() == 3
    assert df.exceptAll(ref).count() == 0 and ref.exceptAll(df).count() == 0
    # The DataFrame is usable: written as a table and read back.
    spark.sql(f"CREATE DATABASE IF NOT EXISTS op LOCATION '{tmp_path / 'warehouse'}'")
    df.write.mode("overwrite").format("parquet").saveAsTable("op.tipos_extract")
    assert spark.table("op.tipos_extract").count() == 3


def test_spark_large_result_through_parquet_parts(world, tmp_path, spark):
    query = "SELECT id, fecha, pais, monto_total, cliente, actualizado FROM dbo.ventas"
    df = world.operator().extract_to_spark(query, spark, staging_path=tmp_path / "staging")
    files = df.inputFiles()
    assert files and all(str(tmp_path / "staging") in f and f.endswith(".parquet") for f in files)
    assert df.count() == LARGE_ROWS
    types = dict(df.dtypes)
    assert types["monto_total"] == "decimal(18,2)" and types["fecha"] == "timestamp_ntz"
    assert types["actualizado"] == "timestamp"
    (src,) = _rows(world, "SELECT COUNT(*), SUM(monto_total), MIN(id), MAX(id) FROM dbo.ventas")
    (got,) = df.selectExpr("count(*)", "sum(monto_total)", "min(id)", "max(id)").collect()
    assert tuple(got) == src
    df.write.mode("overwrite").format("parquet").saveAsTable("op_ventas_extract")
    assert spark.table("op_ventas_extract").count() == LARGE_ROWS


# -- sync ---------------------------------------------------------------------------------


def _calibration(world: World) -> list[tuple]:
    return _rows(world, "SELECT id_hogar, periodo, peso, nota FROM dbo.CalibrationResults ORDER BY id_hogar")


def test_sync_every_operation(world):
    op = world.operator()
    r = op.sync_to_sql_server(
        source_table="main.op.calibrated_panel", target_table="dbo.CalibrationResults",
        operation="INSERT", primary_keys=["id_hogar", "periodo"], sync_id="job-42:run-7",
    )
    assert (r.rows_read, r.rows_affected, r.discrepancy, r.from_ledger) == (4, 4, None, False)
    d = decimal.Decimal
    assert _calibration(world) == [
        (1, "2024-01", d("1.250000"), "urbano"), (2, "2024-01", d("0.980000"), "rural"),
        (3, "2024-02", d("1.310000"), None), (4, "2024-02", d("2.000000"), "Ñandú"),
    ]
    # The same sync (a retried job run, same sync_id) is not written twice,
    # even from another operator.
    again = world.operator().sync_to_sql_server("main.op.calibrated_panel", "dbo.CalibrationResults", "INSERT",
                                                ["id_hogar", "periodo"], sync_id="job-42:run-7")
    assert again.from_ledger and (again.rows_read, again.rows_affected) == (4, 4)
    assert len(_calibration(world)) == 4
    # Without a sync_id a call is a new sync: here a second INSERT of the
    # same keys, refused by the primary key with nothing written.
    with pytest.raises(SyncError) as e:
        op.sync_to_sql_server("main.op.calibrated_panel", "dbo.CalibrationResults", "INSERT", ["id_hogar", "periodo"])
    assert "PRIMARY KEY" in e.value.message
    assert len(_calibration(world)) == 4
    with pytest.raises(ArgumentError) as e:
        op.sync_to_sql_server("main.op.calibrated_panel", "dbo.CalibrationResults", "INSERT", sync_id="no spaces")
    assert e.value.kind == "argument" and "sync_id" in e.value.message

    r = op.sync_to_sql_server("main.op.updates", "dbo.CalibrationResults", "UPDATE", ["id_hogar", "periodo"])
    assert r.rows_affected == 2
    # Under a table lock (TABLOCK): the same result.
    r = world.operator(table_lock=True).sync_to_sql_server(
        "main.op.upserts", "dbo.CalibrationResults", "UPSERT", ["id_hogar", "periodo"])
    assert r.rows_affected == 2
    assert _calibration(world) == [
        (1, "2024-01", d("0.500000"), "upsert"), (2, "2024-01", d("9.999999"), "revisado"),
        (3, "2024-02", d("1.310000"), None), (4, "2024-02", None, None), (5, "2024-03", d("3.000000"), "nuevo"),
    ]

    # A delete above the cap is refused and deletes nothing.
    with pytest.raises(SyncError) as e:
        op.sync_to_sql_server("main.op.deletes", "dbo.CalibrationResults", "DELETE", ["id_hogar", "periodo"],
                              max_delete_rows=1)
    assert e.value.kind == "sync.refused" and "max_delete_rows" in e.value.message.replace(" ", "_")
    assert len(_calibration(world)) == 5
    r = op.sync_to_sql_server("main.op.deletes", "dbo.CalibrationResults", "DELETE", ["id_hogar", "periodo"])
    assert (r.rows_read, r.rows_affected) == (2, 2)
    assert [row[0] for row in _calibration(world)] == [1, 2, 4]


def test_sync_without_keys_is_refused(world):
    with pytest.raises(SyncError) as e:
        world.operator().sync_to_sql_server("main.op.updates", "dbo.CalibrationResults", "UPDATE")
    assert e.value.kind == "sync.refused"


# -- long calls ------------------------------------------------------------------------


def test_ctrl_c_interrupts_a_long_call(world, tmp_path):
    """SIGINT during an extraction: KeyboardInterrupt, and nothing left behind."""
    op = world.operator()
    target = tmp_path / "interrupted"
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            op.extract_to_parquet("SELECT v.*, t.u FROM dbo.ventas v CROSS JOIN dbo.tipos t", target)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 30
    assert not target.exists()


def test_gil_released_while_a_call_runs(world):
    """Another Python thread runs while the operator waits on SQL Server."""
    op = world.operator()
    ticks = []
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.01)

    t = threading.Thread(target=tick)
    t.start()
    try:
        op.extract_to_arrow("SELECT TOP 200000 id, cliente FROM dbo.ventas")
    finally:
        stop.set()
        t.join()
    assert len(ticks) > 5


def test_module_is_the_native_build():
    from sql_databricks_bridge import _native

    assert Path(_native.__file__).suffix in (".so", ".pyd")
    assert sdk_dbx.BridgeOperator is BridgeOperator


# -- the deck's snippets -----------------------------------------------------------------


def test_deck_example_runs_as_written(world, tmp_path):
    """examples/databricks_operator.py: the deck's two snippets, unchanged
    but for the host, with dbutils' secrets from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQLSERVER_", "DATABRICKS_"))}
    env.update(
        SQL_SERVER_HOST=f"{world.host},{world.port}",
        SQLSERVER_TRUST_SERVER_CERTIFICATE="true",
        SCOPE_SQL_USER="sa",
        SCOPE_SQL_PASS=SA_PASSWORD,
        DATABRICKS_HOST=world.dbx_url,
        DATABRICKS_TOKEN=DBX_TOKEN,
        DATABRICKS_WAREHOUSE_ID=world.warehouse,
    )
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "databricks_operator.py")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    assert "Filas sincronizadas: 2" in out.stdout
    assert "ventas_extract: 2 filas" in out.stdout
    with pytds.connect(dsn=world.host, port=world.port, database="KWP_Colombia", user="sa",
                       password=SA_PASSWORD, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT id_hogar, periodo, peso FROM dbo.CalibrationResults ORDER BY id_hogar")
        assert cur.fetchall() == [(1001, "2024-01", decimal.Decimal("1.250000")),
                                  (1002, "2024-01", decimal.Decimal("0.980000"))]


def test_wheel_task_entry_point(world):
    """`sync_to_sql_server`, the wheel's console script a Databricks
    python_wheel_task runs (examples/databricks/databricks.yml), with its
    named parameters as Databricks passes them (--key=value) and the
    settings from the environment (spark_env_vars on a cluster)."""
    script = Path(sys.executable).parent / "sync_to_sql_server"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQLSERVER_", "DATABRICKS_"))}
    env.update(
        SQLSERVER_HOST=f"{world.host},{world.port}", SQLSERVER_DATABASE="OpTest", SQLSERVER_USERNAME="sa",
        SQLSERVER_PASSWORD=SA_PASSWORD, SQLSERVER_TRUST_SERVER_CERTIFICATE="true",
        DATABRICKS_HOST=world.dbx_url, DATABRICKS_TOKEN=DBX_TOKEN, DATABRICKS_WAREHOUSE_ID=world.warehouse,
    )
    args = ["--source_table=main.op.calibrated_panel", "--target_table=dbo.JobTarget", "--operation=INSERT",
            "--primary_keys=id_hogar,periodo", "--sync_id=123-456"]
    import json

    first = subprocess.run([str(script), *args], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"status": "applied", "rows_read": 4, "rows_affected": 4,
                                        "discrepancy": None, "from_ledger": False}
    # The job run repaired: same run id, nothing written again.
    again = subprocess.run([str(script), *args], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and json.loads(again.stdout)["from_ledger"] is True
    assert len(_rows(world, "SELECT * FROM dbo.JobTarget")) == 4
    # Refused: exit 1 with the reason.
    bad = subprocess.run([str(script), "--source_table=main.op.nope", "--target_table=dbo.JobTarget"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1
    out = json.loads(bad.stdout)
    assert out["status"] == "failed" and "main.op.nope" in out["message"]
    usage = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "--source_table" in usage.stderr


# -- Microsoft Entra ID -----------------------------------------------------------


ENTRA_APP = ("6d3f2a1b-0000-4000-8000-00000000e71a", "0b7c3e5d-0000-4000-8000-0000000000a1", "s3cret~value")


@pytest.fixture()
def entra_sqlserver(tmp_path):
    """The SQL Server sandbox trusting an Entra ID double's tenant (HTTPS, its CA
    written to a file), with a login FROM EXTERNAL PROVIDER for ENTRA_APP."""
    client_id, object_id, secret = ENTRA_APP
    seed = tmp_path / "entra.sql"
    seed.write_text(f"CREATE LOGIN [etl-bridge] FROM EXTERNAL PROVIDER WITH OBJECT_ID = '{object_id}'\n")
    ca = tmp_path / "entra-ca.pem"
    proc, host, port = start_sqlserver(
        "sandbox-sqlserver-entra-operator", tmp_path, "--encryption", "login",
        "--seed", str(seed), "--entra-app", f"{client_id}:{object_id}:{secret}",
        "--entra-ca-file", str(ca))
    try:
        fields = dict(f.split("=", 1) for f in proc.ready_line.split()[3:])
        yield host, port, fields["entra"], fields["tenant"], ca
    finally:
        from processes import stop_process

        stop_process(proc.proc)


def test_signed_in_with_an_entra_id_access_token(entra_sqlserver):
    """An access token from the Entra ID double signs the operator in as the
    application's login FROM EXTERNAL PROVIDER; an expired one is refused
    before SQL Server is asked, and never shown."""
    import base64
    import json
    import ssl
    import urllib.parse
    import urllib.request

    host, port, authority, tenant, ca = entra_sqlserver
    client_id, _, secret = ENTRA_APP
    body = urllib.parse.urlencode({
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
        "scope": "https://database.windows.net/.default"}).encode()
    url = f"{authority}/{tenant}/oauth2/v2.0/token"
    trust = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10, context=trust) as r:
        token = json.load(r)["access_token"]
    op = BridgeOperator(sql_server_host=f"{host},{port}", trust_server_certificate=True,
                        sql_server_access_token=token)
    assert op.extract_to_arrow("SELECT SUSER_SNAME() AS who").to_pylist() == [{"who": "etl-bridge"}]

    # The same token with its expiry moved into the past (its signature no
    # longer matters: the operator refuses it before connecting).
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] = claims["iat"] - 60
    stale = ".".join([header, base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("="),
                      signature])
    with pytest.raises(SqlServerError) as e:
        BridgeOperator(sql_server_host=f"{host},{port}", trust_server_certificate=True,
                       sql_server_access_token=stale).extract_to_arrow("SELECT 1 AS x")
    assert e.value.kind == "sqlserver.access_token", e.value
    assert "expired" in str(e.value) and signature not in str(e.value)


def test_signed_in_as_an_entra_id_service_principal(entra_sqlserver, monkeypatch):
    """sql_server_authentication="ActiveDirectoryServicePrincipal" with the
    application's client id and secret: the operator gets its own tokens from
    the tenant (AZURE_TENANT_ID, AZURE_AUTHORITY_HOST, the CA in SSL_CERT_FILE)
    and signs in as the application's login; a wrong secret is a SqlServerError
    of kind sqlserver.entra_token naming Entra ID's code, never the secret."""
    host, port, authority, tenant, ca = entra_sqlserver
    client_id, _, secret = ENTRA_APP
    monkeypatch.setenv("AZURE_TENANT_ID", tenant)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", authority)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    op = BridgeOperator(sql_server_host=f"{host},{port}", trust_server_certificate=True,
                        sql_server_authentication="ActiveDirectoryServicePrincipal",
                        sql_server_user=client_id, sql_server_password=secret)
    assert op.extract_to_arrow("SELECT SUSER_SNAME() AS who").to_pylist() == [{"who": "etl-bridge"}]

    with pytest.raises(SqlServerError) as e:
        BridgeOperator(sql_server_host=f"{host},{port}", trust_server_certificate=True,
                       sql_server_authentication="ActiveDirectoryServicePrincipal",
                       sql_server_user=client_id, sql_server_password="wrong~secret").extract_to_arrow("SELECT 1 AS x")
    assert e.value.kind == "sqlserver.entra_token", e.value
    assert "AADSTS7000215" in str(e.value) and "wrong~secret" not in str(e.value)


def test_signed_in_with_a_credential_the_program_holds(entra_sqlserver):
    """sql_server_credential: an Azure Identity credential the program already
    holds (on Databricks, dbutils.credentials.getServiceCredentialsProvider(name),
    the job's own identity) is asked for a token per new connection; here
    Microsoft's azure-identity ClientSecretCredential against the Entra ID double.
    A credential that cannot give one is a SqlServerError of kind
    sqlserver.entra_token with its reason."""
    from azure.identity import ClientSecretCredential

    host, port, authority, tenant, ca = entra_sqlserver
    client_id, _, secret = ENTRA_APP
    asked = []

    class Recording:
        def __init__(self, credential):
            self.credential = credential

        def get_token(self, *scopes, **kwargs):
            asked.extend(scopes)
            return self.credential.get_token(*scopes, **kwargs)

    credential = Recording(ClientSecretCredential(tenant, client_id, secret, authority=authority,
                                                  connection_verify=str(ca),
                                                  disable_instance_discovery=True))
    op = BridgeOperator(sql_server_host=f"{host},{port}", trust_server_certificate=True,
                        sql_server_credential=credential)
    assert op.extract_to_arrow("SELECT SUSER_SNAME() AS who").to_pylist() == [{"who": "etl-bridge"}]
    assert asked and set(asked) == {"https://database.windows.net/.default"}

    class Broken:
        def get_token(self, *scopes, **kwargs):
            raise RuntimeError("no identity on this cluster")

    with pytest.raises(SqlServerError) as e:
        BridgeOperator(sql_server_host=f"{host},{port}", trust_server_certificate=True,
                       sql_server_credential=Broken()).extract_to_arrow("SELECT 1 AS x")
    assert e.value.kind == "sqlserver.entra_token", e.value
    assert "no identity on this cluster" in str(e.value)


# -- Windows authentication (Kerberos) ------------------------------------------


def test_signed_in_with_kerberos_from_a_keytab(tmp_path, monkeypatch):
    """Integrated Security=true in the connection string: the operator (a wheel
    built with the kerberos feature) signs in through the system's GSSAPI with a
    client keytab, against a real MIT KDC in a private realm, as the principal's
    Windows login; without a ticket it is a SqlServerError of kind
    sqlserver.kerberos that says what is missing."""
    from processes import start_kdc, stop_process

    realm = start_kdc("kdc-operator", tmp_path, tmp_path / "realm", ("bridge", tmp_path / "bridge.keytab"))
    seed = tmp_path / "windows.sql"
    seed.write_text("CREATE LOGIN [BRIDGE\\bridge] FROM WINDOWS\n")
    proc, host, port = start_sqlserver(
        "sandbox-sqlserver-kerberos-operator", tmp_path, "--encryption", "login",
        "--seed", str(seed), "--kerberos-keytab", str(tmp_path / "sql.keytab"))
    try:
        realm.add_principal(f"MSSQLSvc/{host}:{port}", tmp_path / "sql.keytab")
        monkeypatch.setenv("KRB5_CONFIG", realm.krb5_conf)
        monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'cc'}")
        monkeypatch.setenv("KRB5_CLIENT_KTNAME", str(tmp_path / "bridge.keytab"))
        cs = f"Server={host},{port};Integrated Security=true;TrustServerCertificate=true"
        op = BridgeOperator(connection_string=cs)
        assert op.extract_to_arrow("SELECT SUSER_SNAME() AS who").to_pylist() == [{"who": "BRIDGE\\bridge"}]

        monkeypatch.delenv("KRB5_CLIENT_KTNAME")
        monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'empty-cc'}")
        with pytest.raises(SqlServerError) as e:
            BridgeOperator(connection_string=cs).extract_to_arrow("SELECT 1 AS x")
        assert e.value.kind == "sqlserver.kerberos", e.value
        assert "KRB5_CLIENT_KTNAME" in str(e.value)
    finally:
        stop_process(proc.proc)
        stop_process(realm.proc.proc)


# -- the Spark data source ------------------------------------------------------------------


def _source_options(world: World) -> dict[str, str]:
    """The connection as options: what every executor builds its operator from."""
    return {
        "sql_server_host": f"{world.host},{world.port}", "sql_server_database": "OpTest",
        "sql_server_user": "sa", "sql_server_password": SA_PASSWORD, "trust_server_certificate": "true",
    }


def test_spark_data_source_reads_ranges_equal_to_the_parquet(world, tmp_path, spark):
    """spark.read.format("sqlserver_bridge"): one partition or several (ranges of
    partition_on cut on the driver, each read on an executor through the Rust core
    as Arrow batches) — the rows and the types equal the Parquet extraction's, row
    by row (decimal, money, datetimeoffset, guid, unicode, binary, NULLs)."""
    from sql_databricks_bridge.spark import register

    register(spark)
    ref = _parquet(world, tmp_path, "SELECT * FROM dbo.tipos").sort_by("id")
    for parts in (1, 3):
        reader = spark.read.format("sqlserver_bridge").options(**_source_options(world)).option(
            "query", "SELECT * FROM dbo.tipos")
        if parts > 1:
            reader = reader.option("partition_on", "id").option("partitions", str(parts))
        df = reader.load()
        assert df.rdd.getNumPartitions() == parts
        types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
        assert (types["d38"], types["m"], types["dto"], types["dt2"], types["g"]) == (
            "decimal(38,10)", "decimal(19,4)", "timestamp", "timestamp_ntz", "string"), types
        got = df.toArrow().sort_by("id")
        assert got.num_rows == ref.num_rows == 3
        assert got.to_pylist() == ref.to_pylist()

    # A large table in eight ranges, at most two connections at once: every row once.
    df = (spark.read.format("sqlserver_bridge").options(**_source_options(world))
          .option("query", "SELECT id FROM dbo.ventas")
          .option("max_connections", "2").option("connection_group", "spark-read")
          .option("partition_on", "id").option("partitions", "8").load())
    assert df.rdd.getNumPartitions() == 8
    from pyspark.sql import functions as F

    row = df.agg(F.count("*").alias("n"), F.countDistinct("id").alias("ids")).collect()[0]
    assert (row["n"], row["ids"]) == (LARGE_ROWS, LARGE_ROWS)


def test_spark_data_source_reads_a_named_query_and_refuses_bad_options(world, tmp_path, spark):
    """name + country: the query file rendered with the country's parameters, its
    <name>.yaml's partition_on/partitions; bad options are errors naming them."""
    from sql_databricks_bridge.spark import register

    register(spark)
    (tmp_path / "queries").mkdir()
    (tmp_path / "config").mkdir()
    (tmp_path / "queries" / "tipos.sql").write_text("SELECT * FROM {database}.dbo.tipos\n")
    (tmp_path / "queries" / "tipos.yaml").write_text("partition_on: id\npartitions: 2\n")
    (tmp_path / "config" / "common_params.yaml").write_text("schema: dbo\n")
    (tmp_path / "config" / "Colombia.yaml").write_text("database: OpTest\n")
    df = (spark.read.format("sqlserver_bridge").options(**_source_options(world))
          .option("name", "tipos").option("country", "Colombia")
          .option("queries_dir", str(tmp_path / "queries")).option("config_dir", str(tmp_path / "config")).load())
    assert df.rdd.getNumPartitions() == 2
    assert sorted(r["id"] for r in df.select("id").collect()) == [1, 2, 3]

    for options, says in [
        ({}, "give the option query"),
        ({"query": "SELECT 1 AS x", "partitions": "2"}, "needs partition_on"),
        ({"query": "SELECT 1 AS x", "partiton_on": "x"}, "unknown option(s) partiton_on"),
        ({"name": "tipos"}, "needs the country"),
    ]:
        with pytest.raises(Exception) as e:
            spark.read.format("sqlserver_bridge").options(**_source_options(world), **options).load().collect()
        assert says in str(e.value), e.value


def test_spark_reads_any_batch_the_cli_extracts(world, tmp_path, spark):
    """A batch that cannot be a derived table (DECLARE ...; SELECT ...) reads as
    the CLI extracts it, rows and types, with rows or none; the columns' names
    are refused as the CLI refuses them (not in SQL Server's words about the
    derived table the schema is read through); a batch cannot be cut into ranges."""
    from sql_databricks_bridge.spark import register

    register(spark)
    # Every type but money, which a batch's extraction cannot cast on the server
    # (the CLI then refuses a value beyond what the driver reads exactly).
    select = "SELECT id, d, d38, sm, dto, dt2, dtm, dd, g, u, v, b, f, bin, ti, si, bi FROM dbo.tipos"
    for n, batch in enumerate([f"DECLARE @desde int = 2;\n{select} WHERE id >= @desde",
                               f"DECLARE @desde int = 99; {select} WHERE id >= @desde"]):
        ref = _parquet(world, tmp_path / str(n), batch).sort_by("id")
        df = spark.read.format("sqlserver_bridge").options(**_source_options(world)).option("query", batch).load()
        got = df.toArrow().sort_by("id")
        assert got.num_rows == ref.num_rows == (2, 0)[n]
        assert got.schema.equals(ref.schema, check_metadata=False), f"{got.schema}\n!=\n{ref.schema}"
        assert got.to_pylist() == ref.to_pylist()
    for options, says in [
        ({"query": "SELECT 1, 2 AS b"}, "column 1 has no name; give it an alias in the query"),
        ({"query": "SELECT id, id FROM dbo.tipos"}, "two columns are named 'id'; give one an alias"),
        ({"query": "DECLARE @x int = 1; SELECT 1 AS a, 2 AS A"}, "two columns are named 'A'"),
        ({"query": "DECLARE @x int = 1; SELECT id FROM dbo.tipos", "partition_on": "id", "partitions": "2"},
         "partition_on needs a query that is one SELECT"),
    ]:
        with pytest.raises(Exception) as e:
            spark.read.format("sqlserver_bridge").options(**_source_options(world), **options).load().collect()
        assert says in str(e.value), str(e.value)[:3000]
        if "partition_on" not in options:
            with pytest.raises(Exception) as cli:
                world.operator().extract_to_arrow(options["query"])
            assert says in str(cli.value), cli.value


def test_spark_finds_the_data_source_without_register(world, tmp_path):
    """Installed, the wheel registers the source by itself: a new Spark (its own
    JVM, never given register(spark)) looks up the pyspark_* modules of its
    workers' path and reads format("sqlserver_bridge") — rows equal to the
    Parquet extraction's."""
    ref = _parquet(world, tmp_path, "SELECT * FROM dbo.tipos").sort_by("id")
    out = tmp_path / "auto.parquet"
    script = f"""
import sys
from pyspark.sql import SparkSession
s = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
     .config("spark.sql.session.timeZone", "UTC").config("spark.pyspark.python", sys.executable).getOrCreate())
try:
    df = (s.read.format("sqlserver_bridge").options(**{_source_options(world)!r})
          .option("query", "SELECT * FROM dbo.tipos").option("partition_on", "id").option("partitions", "2").load())
    import pyarrow.parquet as pq
    pq.write_table(df.toArrow(), {str(out)!r})
    print("partitions", df.rdd.getNumPartitions())
finally:
    s.stop()
"""
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=600)
    # Spark's error class (DATA_SOURCE_NOT_FOUND when the lookup finds nothing) heads its trace.
    assert run.returncode == 0, [line for line in run.stderr.splitlines() if "Exception" in line][:3]
    assert "partitions 2" in run.stdout, run.stdout
    got = pq.read_table(out).sort_by("id")
    assert got.num_rows == ref.num_rows == 3
    assert got.to_pylist() == ref.to_pylist()


def test_spark_reads_through_map_in_arrow_where_the_api_is_missing(world, tmp_path, spark):
    """read_arrow: the same read through DataFrame.mapInArrow (Spark 3.5, older
    DBR) — one task per range, the same types and rows as the Parquet extraction."""
    from sql_databricks_bridge.spark import read_arrow

    ref = _parquet(world, tmp_path, "SELECT * FROM dbo.tipos").sort_by("id")
    df = read_arrow(spark, query="SELECT * FROM dbo.tipos", partition_on="id", partitions=3,
                    **_source_options(world))
    assert df.rdd.getNumPartitions() == 3
    assert df.toArrow().sort_by("id").to_pylist() == ref.to_pylist()


def _try_slot(cur, group: str, i: int) -> int:
    """sp_getapplock on slot `i` of `group` from python-tds, without waiting."""
    cur.execute(f"DECLARE @r int; EXEC @r = sp_getapplock @Resource = N'sqlserver_bridge/{group}/{i}', "
                "@LockMode = 'Exclusive', @LockOwner = 'Session', @LockTimeout = 0; SELECT @r")
    return cur.fetchone()[0]


def test_a_connection_cap_holds_across_readers_and_programs(world):
    """max_connections=2: five concurrent streamed reads, each paused after
    its first batch — two read, three wait with no batch (and no
    connection); python-tds sees both slots held; released, all five finish
    with every row and the slots are free. A slot held by another program
    makes a cap-1 read wait and fail naming the group; once that program's
    session ends, the read goes."""
    op = world.operator(max_connections=2, connection_group="cap-test", connection_wait=120)
    started: list[int] = []
    results: dict[int, int] = {}
    lock, go = threading.Lock(), threading.Event()

    def read(k: int) -> None:
        reader = pa.RecordBatchReader.from_stream(op._native.stream_arrow("SELECT id FROM dbo.ventas"))
        first = reader.read_next_batch()
        with lock:
            started.append(k)
        go.wait(180)
        results[k] = first.num_rows + sum(b.num_rows for b in reader)

    threads = [threading.Thread(target=read, args=(k,)) for k in range(5)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while len(started) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # room for a third reader, were the cap not held
        assert len(started) == 2, started
        with world.tds() as conn, conn.cursor() as cur:
            assert [_try_slot(cur, "cap-test", i) for i in range(2)] == [-1, -1]
    finally:
        go.set()
        for t in threads:
            t.join(300)
    assert results == {k: LARGE_ROWS for k in range(5)}
    with world.tds() as conn, conn.cursor() as cur:
        assert [_try_slot(cur, "cap-test", i) for i in range(2)] == [0, 0]

    one = world.operator(max_connections=1, connection_group="cap-held", connection_wait=0.5)
    with world.tds() as conn, conn.cursor() as cur:
        assert _try_slot(cur, "cap-held", 0) == 0
        with pytest.raises(SqlServerError) as e:
            one._native.stream_arrow("SELECT TOP (5) id FROM dbo.ventas")
        assert e.value.kind == "sqlserver.no_slot" and "'cap-held'" in str(e.value), str(e.value)
    got = pa.RecordBatchReader.from_stream(one._native.stream_arrow("SELECT TOP (5) id FROM dbo.ventas"))
    assert got.read_all().num_rows == 5


def test_a_streamed_read_equals_the_parquet_and_can_stop_early(world, tmp_path):
    """stream_arrow (what each Spark partition reads through): the rows of the
    Parquet extraction, handed over batch by batch while the query runs; a
    bad query raises its typed error before any batch; a reader that stops
    after one batch cancels the query and leaves the operator usable."""
    op = world.operator()
    ref = _parquet(world, tmp_path, TYPES_QUERY)
    got = pa.RecordBatchReader.from_stream(op._native.stream_arrow(TYPES_QUERY)).read_all()
    assert got.schema.equals(ref.schema, check_metadata=False)
    assert got.to_pylist() == ref.to_pylist()

    reader = pa.RecordBatchReader.from_stream(op._native.stream_arrow("SELECT id FROM dbo.ventas"))
    batches = rows = 0
    for batch in reader:
        batches += 1
        rows += batch.num_rows
    assert rows == LARGE_ROWS and batches > 1

    with pytest.raises(ExtractError) as e:
        op._native.stream_arrow("SELECT no_such_column FROM dbo.tipos")
    assert e.value.kind == "extract.sql"

    for _ in range(6):  # more than the pool holds: each stopped read gave its connection back
        reader = pa.RecordBatchReader.from_stream(op._native.stream_arrow("SELECT id FROM dbo.ventas"))
        assert reader.read_next_batch().num_rows > 0
        del reader
    assert op.extract_to_arrow("SELECT COUNT(*) AS n FROM dbo.tipos").to_pylist() == [{"n": 3}]

"""The Change Tracking stream (``spark.readStream.format("sqlserver_bridge")``)
with a real local SparkSession against the SQL Server sandbox, through the
installed wheel.

The invariant, checked after every round: a copy kept by ``foreachBatch``
(applying each batch by key in order of ``_change_version``, as a Delta MERGE
would) equals the source table read with python-tds, a client nobody here
wrote. Rounds of seeded random inserts, updates, deletes and re-inserts, some
while the stream runs; a restart from the checkpoint; Change Tracking's
cleanup overtaking a stopped stream. Both of SQL Server's read paths: one
SNAPSHOT transaction (a database allowing snapshot isolation) and validate,
read, validate again (one that does not).
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytds
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from processes import REPO_ROOT, start_sqlserver

if str(REPO_ROOT / "client" / "python") in sys.path:  # pragma: no cover
    pytest.fail("tests/operator must run without client/python on sys.path", pytrace=False)

SA_PASSWORD = "Bridge!Passw0rd"
COLUMNS = ["region", "id", "name", "amount", "at"]


def _seed(db: str, snapshot: bool) -> str:
    rows = ", ".join(f"(N'{r}', {i}, N'seed {i}', {i}.25, '2024-01-0{1 + i % 9}T10:00:00+02:00')"
                     for r in ("CO", "MX") for i in range(1, 21))
    return f"""
CREATE DATABASE {db}
GO
ALTER DATABASE {db} SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON)
GO
{"ALTER DATABASE " + db + " SET ALLOW_SNAPSHOT_ISOLATION ON" if snapshot else ""}
GO
USE {db}
GO
CREATE TABLE dbo.src (region nchar(2) NOT NULL, id int NOT NULL, name nvarchar(40) NULL,
                      amount decimal(18,2) NULL, at datetimeoffset(7) NULL, PRIMARY KEY (region, id))
GO
ALTER TABLE dbo.src ENABLE CHANGE_TRACKING
GO
INSERT INTO dbo.src VALUES {rows}
GO
CREATE TABLE dbo.untracked (id int NOT NULL PRIMARY KEY)
GO
"""


# The deck's tables, as examples/spark_data_source.py reads and writes them.
DECK_SEED = """
CREATE DATABASE KWP_Colombia
GO
ALTER DATABASE KWP_Colombia SET CHANGE_TRACKING = ON
GO
ALTER DATABASE KWP_Colombia SET ALLOW_SNAPSHOT_ISOLATION ON
GO
USE KWP_Colombia
GO
CREATE TABLE dbo.Ventas (id_transaccion bigint NOT NULL PRIMARY KEY, fecha datetime2(3) NOT NULL,
                         monto_total decimal(18,2) NOT NULL)
GO
ALTER TABLE dbo.Ventas ENABLE CHANGE_TRACKING
GO
INSERT INTO dbo.Ventas VALUES (1, '2023-12-31T23:59:59.999', 10.00), (2, '2024-01-01T00:00:00', 20.50),
                              (3, '2024-06-30T12:00:00', 30.25)
GO
CREATE TABLE dbo.CalibrationResults (id_hogar int NOT NULL, periodo char(7) NOT NULL, peso decimal(18,6) NULL,
                                     CONSTRAINT pk_cal_co PRIMARY KEY (id_hogar, periodo))
GO
"""


@pytest.fixture(scope="module")
def sql(tmp_path_factory):
    d = tmp_path_factory.mktemp("spark-stream")
    (d / "seed.sql").write_text(_seed("CtSnap", True) + _seed("CtPlain", False) + DECK_SEED)
    proc, host, port = start_sqlserver("sqlserver", d, "--seed", str(d / "seed.sql"))
    try:
        yield host, port
    finally:
        proc.stop()


def _options(host: str, port: int, db: str, **more: str) -> dict[str, str]:
    return {
        "sql_server_host": f"{host},{port}", "sql_server_database": db, "sql_server_user": "sa",
        "sql_server_password": SA_PASSWORD, "trust_server_certificate": "true", "table": "dbo.src", **more,
    }


def _run(host: str, port: int, db: str, *statements: str) -> list[tuple]:
    with pytds.connect(dsn=host, port=port, database=db, user="sa", password=SA_PASSWORD,
                       autocommit=True) as conn, conn.cursor() as cur:
        out: list[tuple] = []
        for s in statements:
            cur.execute(s)
            if cur.description:
                out = [tuple(r) for r in cur.fetchall()]
        return out


def _utc(v):
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.UTC).replace(tzinfo=None)
    return v


def _source(host: str, port: int, db: str) -> dict[tuple, tuple]:
    rows = _run(host, port, db, f"SELECT {', '.join(COLUMNS)} FROM dbo.src")
    return {(r[0], r[1]): tuple(_utc(v) for v in r) for r in rows}


class Copy:
    """What a foreachBatch sink keeps: the batches applied by key, in order
    of their change versions."""

    def __init__(self) -> None:
        self.rows: dict[tuple, tuple] = {}
        self.batches = 0
        self.operations: set[str] = set()

    def apply(self, df, batch_id: int) -> None:
        self.batches += 1
        rows = df.orderBy("_change_version").collect()
        if any(r["_change_operation"] == "S" for r in rows):
            # A re-snapshot (on_expired=snapshot): the table as it is.
            assert {r["_change_operation"] for r in rows} == {"S"}
            self.operations.add("S")
            self.rows = {(r["region"], r["id"]): tuple(_utc(r[c]) for c in COLUMNS) for r in rows}
            return
        for r in rows:
            key = (r["region"], r["id"])
            self.operations.add(r["_change_operation"])
            if r["_change_operation"] == "D":
                self.rows.pop(key, None)
            else:
                self.rows[key] = tuple(_utc(r[c]) for c in COLUMNS)


def _mutate(host: str, port: int, db: str, rng: random.Random, n: int) -> None:
    """`n` random changes, each its own transaction (its own version):
    inserts of new and of deleted keys, updates (some to NULL), deletes."""
    for _ in range(n):
        region, i = rng.choice(["CO", "MX", "PE"]), rng.randint(1, 40)
        roll = rng.random()
        name = rng.choice(["José", "Ñandú", "李小龍 🚀", None, "O'Brien"])
        amount = None if rng.random() < 0.1 else decimal.Decimal(rng.randint(-10**9, 10**9)).scaleb(-2)
        at = "NULL" if rng.random() < 0.1 else f"'2025-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T0{rng.randint(0, 9)}:30:00.1234567-05:00'"
        lit = "NULL" if name is None else "N'" + name.replace("'", "''") + "'"
        num = "NULL" if amount is None else str(amount)
        if roll < 0.35:
            _run(host, port, db, f"IF NOT EXISTS (SELECT 1 FROM dbo.src WHERE region = N'{region}' AND id = {i}) "
                                 f"INSERT INTO dbo.src VALUES (N'{region}', {i}, {lit}, {num}, {at})")
        elif roll < 0.75:
            _run(host, port, db, f"UPDATE dbo.src SET name = {lit}, amount = {num}, at = {at} "
                                 f"WHERE region = N'{region}' AND id = {i}")
        else:
            _run(host, port, db, f"DELETE FROM dbo.src WHERE region = N'{region}' AND id = {i}")


def _stream(spark, copy: Copy, options: dict[str, str], checkpoint: Path):
    return (spark.readStream.format("sqlserver_bridge").options(**options).load()
            .writeStream.foreachBatch(copy.apply).option("checkpointLocation", str(checkpoint)).start())


@pytest.mark.parametrize("db", ["CtSnap", "CtPlain"])
def test_the_stream_keeps_a_copy_equal_to_the_table(sql, spark, tmp_path, db):
    from sql_databricks_bridge.spark import register

    register(spark)
    host, port = sql
    rng = random.Random(f"stream-{db}")
    options = _options(host, port, db)
    df = spark.readStream.format("sqlserver_bridge").options(**options).load()
    assert [f.name for f in df.schema.fields] == ["_change_operation", "_change_version", *COLUMNS]
    assert {f.name: f.dataType.simpleString() for f in df.schema.fields}["amount"] == "decimal(18,2)"

    copy = Copy()
    q = _stream(spark, copy, options, tmp_path / "checkpoint")
    try:
        q.processAllAvailable()
        assert copy.rows == _source(host, port, db) and len(copy.rows) == 40, "the first batch is the table"
        for _ in range(2):
            _mutate(host, port, db, rng, 40)
            q.processAllAvailable()
            assert copy.rows == _source(host, port, db)
        # Changes made while micro-batches run.
        writer = threading.Thread(target=_mutate, args=(host, port, db, rng, 60))
        writer.start()
        while writer.is_alive():
            q.processAllAvailable()
        writer.join()
        q.processAllAvailable()
        assert copy.rows == _source(host, port, db)
        assert copy.operations == {"I", "U", "D"}
    finally:
        q.stop()

    # Restarted from its checkpoint: it goes on where it stopped (no second snapshot).
    _mutate(host, port, db, rng, 20)
    batches = copy.batches
    q = _stream(spark, copy, options, tmp_path / "checkpoint")
    try:
        q.processAllAvailable()
    finally:
        q.stop()
    assert copy.rows == _source(host, port, db)
    assert copy.batches > batches

    # Stopped while Change Tracking cleans up past it: it refuses to go on.
    _mutate(host, port, db, rng, 10)
    (current,) = _run(host, port, db, "SELECT CHANGE_TRACKING_CURRENT_VERSION()")[0]
    _run(host, port, db, f"EXEC sp_sandbox_change_tracking_cleanup @table_name = 'dbo.src', @version = {current}")
    q = _stream(spark, copy, options, tmp_path / "checkpoint")
    with pytest.raises(Exception) as e:
        try:
            q.processAllAvailable()
        finally:
            q.stop()
    assert "no longer holds the changes of [dbo].[src]" in str(e.value), str(e.value)[:3000]
    assert "start it again with a new checkpoint location" in str(e.value)

    # The remedy: a new checkpoint, a new snapshot.
    fresh = Copy()
    q = _stream(spark, fresh, options, tmp_path / "checkpoint-2")
    try:
        q.processAllAvailable()
    finally:
        q.stop()
    assert fresh.rows == _source(host, port, db)

    # Or, with on_expired=snapshot, the stream re-snapshots by itself: the
    # batch after the cleanup is the whole table ("S"), the copy replaced by
    # it (rows deleted in the gap gone), and the stream goes on from there.
    resnap = {**options, "on_expired": "snapshot"}
    q = _stream(spark, fresh, resnap, tmp_path / "checkpoint-2")
    try:
        q.processAllAvailable()
        _mutate(host, port, db, rng, 30)
        (current,) = _run(host, port, db, "SELECT CHANGE_TRACKING_CURRENT_VERSION()")[0]
        _run(host, port, db, f"EXEC sp_sandbox_change_tracking_cleanup @table_name = 'dbo.src', @version = {current}")
        _mutate(host, port, db, rng, 10)
        q.processAllAvailable()
        assert "S" in fresh.operations
        assert fresh.rows == _source(host, port, db)
        _mutate(host, port, db, rng, 20)
        q.processAllAvailable()
        assert fresh.rows == _source(host, port, db)
    finally:
        q.stop()


def test_stream_options_and_tables_without_change_tracking(sql, spark, tmp_path):
    from sql_databricks_bridge.spark import register

    register(spark)
    host, port = sql
    # starting_version latest: only what changes from now on.
    copy = Copy()
    q = _stream(spark, copy, _options(host, port, "CtSnap", starting_version="latest"), tmp_path / "latest")
    try:
        q.processAllAvailable()
        assert copy.rows == {}
        _run(host, port, "CtSnap", "INSERT INTO dbo.src VALUES (N'AR', 1, N'nuevo', 1.50, NULL)")
        q.processAllAvailable()
        assert copy.rows == {("AR", 1): ("AR", 1, "nuevo", decimal.Decimal("1.50"), None)}
    finally:
        q.stop()
    for options, says in [
        ({"table": "dbo.untracked"}, "change tracking is not enabled on [dbo].[untracked]"),
        ({"table": "dbo.nope"}, "[dbo].[nope] does not exist"),
        # A bare name with a space is refused, not read as [dbo].[srcx] or dbo.src aliased x.
        ({"table": "dbo.src x"}, "tracked_table 'dbo.src x' is not [database.]schema.table"),
        # A version Change Tracking has not reached: refused, not a stream that starts over.
        ({"starting_version": "999999"}, "starting_version 999999 is beyond"),
        ({"starting_version": "yesterday"}, "starting_version 'yesterday' is not snapshot"),
        ({"on_expired": "ignore"}, "on_expired 'ignore' is not fail or snapshot"),
        ({"query": "SELECT 1 AS x"}, "give table (a stream, or a write's target) or query / name"),
        ({"tabel": "x"}, "unknown stream option(s) tabel"),
    ]:
        with pytest.raises(Exception) as e:
            c = Copy()
            q = _stream(spark, c, {**_options(host, port, "CtSnap"), **options}, tmp_path / "bad")
            try:
                q.processAllAvailable()
            finally:
                q.stop()
        assert says in str(e.value), (options, str(e.value)[:3000])
    with pytest.raises(Exception) as e:
        spark.read.format("sqlserver_bridge").options(**_options(host, port, "CtSnap")).load().collect()
    assert "the option table is for readStream" in str(e.value)


def test_the_notebook_example_runs_and_runs_again(sql, tmp_path):
    """examples/spark_data_source.py, run as a scheduled job would: the read,
    the write (the same run id: applied once), and the stream's copy following
    the table across the runs — also across a pause that Change Tracking's
    cleanup overtook (the copy re-snapshotted)."""
    host, port = sql
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SQLSERVER_", "DATABRICKS_"))}
    env.update(SQL_SERVER_HOST=f"{host},{port}", SQLSERVER_TRUST_SERVER_CERTIFICATE="true",
               SQLSERVER_USERNAME="sa", SQLSERVER_PASSWORD=SA_PASSWORD, RUN_ID="job-77",
               EXAMPLE_WORK_DIR=str(tmp_path))

    def run() -> str:
        out = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "spark_data_source.py")],
                             check=False, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-4000:]
        return out.stdout

    first = run()
    assert "ventas: 3 filas en " in first, first
    assert "CalibrationResults: UPSERT job-77 aplicado" in first
    assert "ventas_copia: 3 filas" in first
    _run(host, port, "KWP_Colombia", "DELETE FROM dbo.Ventas WHERE id_transaccion = 2",
         "UPDATE dbo.Ventas SET monto_total = 99.99 WHERE id_transaccion = 3",
         "INSERT INTO dbo.Ventas VALUES (4, '2024-07-01T08:00:00', 4.00), (5, '2024-07-02T09:00:00', 5.00)")
    second = run()
    assert "ventas: 4 filas" in second and "ventas_copia: 4 filas" in second, second
    assert _run(host, port, "KWP_Colombia", "SELECT id_hogar, periodo, peso FROM dbo.CalibrationResults "
                                            "ORDER BY id_hogar") == [
        (1001, "2024-01", decimal.Decimal("1.250000")), (1002, "2024-01", decimal.Decimal("0.980000"))]
    assert _run(host, port, "KWP_Colombia", "SELECT COUNT(*) FROM dbo.bridge_sync_ledger") == [(1,)]
    import pyarrow.parquet as pq

    latest = max(tmp_path.glob("copia/v*"), key=lambda p: int(p.name[1:]))
    copy = sorted((r["id_transaccion"], r["monto_total"]) for r in pq.read_table(latest).to_pylist())
    assert copy == [(1, decimal.Decimal("10.00")), (3, decimal.Decimal("99.99")), (4, decimal.Decimal("4.00")),
                    (5, decimal.Decimal("5.00"))]
    # Paused past the retention: Change Tracking cleans up changes the stream
    # has not read. The third run re-snapshots (on_expired=snapshot): the copy
    # is the table, the row deleted in the gap gone with it.
    _run(host, port, "KWP_Colombia", "DELETE FROM dbo.Ventas WHERE id_transaccion = 1",
         "INSERT INTO dbo.Ventas VALUES (6, '2024-07-03T10:00:00', 6.00)")
    (current,) = _run(host, port, "KWP_Colombia", "SELECT CHANGE_TRACKING_CURRENT_VERSION()")[0]
    _run(host, port, "KWP_Colombia",
         f"EXEC sp_sandbox_change_tracking_cleanup @table_name = 'dbo.Ventas', @version = {current}")
    third = run()
    assert "ventas_copia: 4 filas" in third, third
    latest = max(tmp_path.glob("copia/v*"), key=lambda p: int(p.name[1:]))
    copy = sorted((r["id_transaccion"], r["monto_total"]) for r in pq.read_table(latest).to_pylist())
    assert copy == [(3, decimal.Decimal("99.99")), (4, decimal.Decimal("4.00")), (5, decimal.Decimal("5.00")),
                    (6, decimal.Decimal("6.00"))]

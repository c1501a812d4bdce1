"""Writes into SQL Server through the Spark data source
(``df.write.format("sqlserver_bridge")``) and its mapInArrow twin, with a real
local SparkSession against the SQL Server sandbox — the installed wheel, as
tests/operator/test_operator.py uses it.

Every test checks the invariant, not one output: after each write the target
equals a model of what the writes asked (read back with python-tds, a client
nobody here wrote), each write id is applied once, and no stage table is left.
Faults are the sandbox's (a bulk load cut mid-way, a COMMIT whose answer is
lost); the rows are drawn from a seeded generator.
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
import sys
import uuid
from pathlib import Path

import pyarrow as pa
import pytds
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from processes import REPO_ROOT, start_sqlserver

if str(REPO_ROOT / "client" / "python") in sys.path:  # pragma: no cover
    pytest.fail("tests/operator must run without client/python on sys.path", pytrace=False)

SA_PASSWORD = "Bridge!Passw0rd"

SEED = """
CREATE DATABASE SparkW
GO
USE SparkW
GO
CREATE TABLE dbo.target (
    id int NOT NULL PRIMARY KEY,
    d decimal(18,4) NULL,
    m money NULL,
    dto datetimeoffset(7) NULL,
    dt2 datetime2(6) NULL,
    dd date NULL,
    g uniqueidentifier NULL,
    u nvarchar(60) NULL,
    b bit NULL,
    f float NULL,
    bin varbinary(16) NULL,
    bi bigint NULL
)
GO
CREATE TABLE dbo.narrow (id int NOT NULL PRIMARY KEY, u nvarchar(5) NULL)
GO
CREATE TABLE dbo.many (id int NOT NULL PRIMARY KEY)
GO
CREATE TABLE dbo.heap (k int NOT NULL, u nvarchar(5) NULL)
GO
CREATE TABLE dbo.stamped (id int NOT NULL PRIMARY KEY, u nvarchar(20) NULL, rv rowversion)
GO
CREATE SCHEMA staging
GO
"""

SCHEMA = pa.schema([
    ("id", pa.int32()), ("d", pa.decimal128(18, 4)), ("m", pa.decimal128(19, 4)),
    ("dto", pa.timestamp("us", tz="UTC")), ("dt2", pa.timestamp("us")), ("dd", pa.date32()),
    ("g", pa.string()), ("u", pa.string()), ("b", pa.bool_()), ("f", pa.float64()),
    ("bin", pa.binary()), ("bi", pa.int64()),
])
WORDS = ["José", "Ñandú", "李小龍", "🚀", "", "O'Brien", "a;b", "\t"]


def _row(rng: random.Random, i: int) -> dict:
    """A random row; about one value in eight NULL."""
    def maybe(v):
        return None if rng.random() < 0.12 else v

    return {
        "id": i,
        "d": maybe(decimal.Decimal(rng.randint(-10**17, 10**17)).scaleb(-4)),
        "m": maybe(decimal.Decimal(rng.randint(-922337203685477_5808, 922337203685477_5807)).scaleb(-4)),
        "dto": maybe(dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
                     + dt.timedelta(microseconds=rng.randint(0, 10**15))),
        "dt2": maybe(dt.datetime(1, 1, 1) + dt.timedelta(microseconds=rng.randint(0, 3 * 10**17))),
        "dd": maybe(dt.date(1, 1, 1) + dt.timedelta(days=rng.randint(0, 3_000_000))),
        "g": maybe(str(uuid.UUID(int=rng.getrandbits(128)))),
        "u": maybe(" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 4)))),
        "b": maybe(rng.random() < 0.5),
        "f": maybe(rng.choice([0.0, -0.0, 1.5e300, -2.25, rng.random()])),
        "bin": maybe(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 16)))),
        "bi": maybe(rng.randint(-2**63, 2**63 - 1)),
    }


@pytest.fixture(scope="module")
def sql(tmp_path_factory):
    d = tmp_path_factory.mktemp("spark-write")
    (d / "seed.sql").write_text(SEED)
    proc, host, port = start_sqlserver("sqlserver", d, "--seed", str(d / "seed.sql"))
    try:
        yield host, port
    finally:
        proc.stop()


def _options(host: str, port: int, **more: str) -> dict[str, str]:
    return {
        "sql_server_host": f"{host},{port}", "sql_server_database": "SparkW", "sql_server_user": "sa",
        "sql_server_password": SA_PASSWORD, "trust_server_certificate": "true", **more,
    }


def _tds(host: str, port: int):
    return pytds.connect(dsn=host, port=port, database="SparkW", user="sa", password=SA_PASSWORD,
                         autocommit=True)


def _query(host: str, port: int, sql: str) -> list[tuple]:
    with _tds(host, port) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()]


def _normal(row: dict) -> tuple:
    """A row as python-tds reads the target back."""
    out = []
    for name in SCHEMA.names:
        v = row[name]
        if v is not None and name == "dto":
            v = v.astimezone(dt.UTC)
        if v is not None and name == "g":
            v = uuid.UUID(v)
        out.append(v)
    return tuple(out)


def _target(host: str, port: int, table: str = "dbo.target") -> dict[int, tuple]:
    rows = _query(host, port, f"SELECT {', '.join(SCHEMA.names)} FROM {table}")
    got = {}
    for r in rows:
        r = list(r)
        if r[3] is not None:
            r[3] = r[3].astimezone(dt.UTC)
        if r[10] is not None:
            r[10] = bytes(r[10])
        got[r[0]] = tuple(r)
    return got


def _leftovers(host: str, port: int) -> list[str]:
    """Stage tables left, in any schema (the open-runs table is not one)."""
    return [r[0] for r in _query(
        host, port, "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE LEFT(TABLE_NAME, 13) = 'bridge_stage_' "
                    "AND TABLE_NAME <> 'bridge_stage_runs'")]


def _frame(spark, rows: list[dict], partitions: int):
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    return spark.createDataFrame(table).repartition(partitions)


def _save(df, options: dict[str, str]) -> None:
    df.write.format("sqlserver_bridge").options(**options).mode("append").save()


def test_spark_writes_all_four_operations_once_each(sql, spark):
    """INSERT, UPSERT, UPDATE and DELETE of seeded random rows (every type,
    NULLs, unicode, extremes) from several partitions: after each write the
    target equals the model; the same write id again writes nothing; no stage
    table is left; one ledger row per write."""
    from sql_databricks_bridge.spark import register

    register(spark)
    host, port = sql
    rng = random.Random(27)
    model: dict[int, dict] = {}

    def check():
        assert _target(host, port) == {i: _normal(r) for i, r in model.items()}
        assert _leftovers(host, port) == []

    rows = [_row(rng, i) for i in range(1, 301)]
    writes = [("INSERT", rows, None)]
    changed = [_row(rng, i) for i in rng.sample(range(1, 301), 60)] + [_row(rng, i) for i in range(301, 341)]
    writes.append(("UPSERT", changed, "id"))
    writes.append(("UPDATE", [_row(rng, i) for i in rng.sample(range(1, 341), 40)], "id"))
    writes.append(("DELETE", [_row(rng, i) for i in rng.sample(range(1, 341), 25)] + [_row(rng, 9999)], "id"))

    for n, (operation, batch, key) in enumerate(writes):
        options = _options(host, port, table="dbo.target", operation=operation, write_id=f"ops-{n}")
        if key:
            options["primary_key"] = key
        df = _frame(spark, batch, 3)
        _save(df, options)
        for r in batch:
            if operation == "INSERT" or (operation == "UPSERT") or (operation == "UPDATE" and r["id"] in model):
                model[r["id"]] = r
            elif operation == "DELETE":
                model.pop(r["id"], None)
        check()
        # A job re-run with the same write id: nothing written again.
        _save(df, options)
        check()
    ledger = _query(host, port, "SELECT event_id, operation, rows_expected FROM dbo.bridge_sync_ledger "
                                "WHERE LEFT(event_id, 10) = 'spark-ops-' ORDER BY event_id")
    assert ledger == [("spark-ops-0", "INSERT", 300), ("spark-ops-1", "UPSERT", 100),
                      ("spark-ops-2", "UPDATE", 40), ("spark-ops-3", "DELETE", 26)]


def test_spark_write_refusals_name_the_problem_and_write_nothing(sql, spark):
    """Checked on the driver before any task runs, or in the commit's
    transaction: nothing written, no stage left."""
    from sql_databricks_bridge.spark import register

    register(spark)
    host, port = sql
    before = _target(host, port)
    df = _frame(spark, [_row(random.Random(1), i) for i in range(1, 4)], 2)
    cases = [
        ({"operation": "UPSERT"}, "UPSERT needs primary_key"),
        ({"operation": "REPLACE", "primary_key": "id"}, "unknown operation 'REPLACE'"),
        ({"table": "dbo.nope"}, "target table dbo.nope does not exist"),
        # Not [dbo].[targetx]: a space in a name needs brackets.
        ({"table": "dbo.target x"}, "target table 'dbo.target x' must be schema.table"),
        ({"primary_key": "nope", "operation": "UPDATE"}, "primary key column nope is not in"),
        ({"tabel": "dbo.target"}, "unknown write option(s) tabel"),
        ({"write_id": "has space"}, "write_id 'has space' must be 1 to 90"),
        ({"table": "dbo.narrow"}, "column d of the source is not in the target table dbo.narrow"),
    ]
    for extra, says in cases:
        options = _options(host, port, table="dbo.target", write_id="refused")
        options.update(extra)
        with pytest.raises(Exception) as e:
            _save(df, options)
            pytest.fail(f"{extra} was written")
        assert says in str(e.value), (extra, str(e.value)[:2000])
    with pytest.raises(Exception) as e:
        df.write.format("sqlserver_bridge").options(**_options(host, port, table="dbo.target")).mode(
            "overwrite").save()
    assert "mode('overwrite') is not supported" in str(e.value)
    # A DELETE above the cap is refused in the commit; its stages dropped.
    everything = _frame(spark, [{"id": i} for i in before], 2).select("id")
    with pytest.raises(Exception) as e:
        _save(everything, _options(host, port, table="dbo.target", operation="DELETE", primary_key="id",
                                   max_delete_rows="5", write_id="too-many"))
    assert "above max_delete_rows 5" in str(e.value)
    assert _target(host, port) == before
    assert _leftovers(host, port) == []
    assert _query(host, port, "SELECT COUNT(*) FROM dbo.bridge_sync_ledger WHERE event_id = 'spark-too-many'") == [(0,)]


def test_a_source_repeating_a_key_across_partitions_is_refused(sql, spark):
    """UPDATE and UPSERT need one source row per key. Two rows of one key in
    different tasks' stages are refused whole in the commit — nothing written,
    no stage, no ledger row — where SQL Server alone would pick one of them for
    an UPDATE, or insert both into a target without a key constraint."""
    from sql_databricks_bridge.spark import register

    register(spark)
    host, port = sql
    schema = pa.schema([("k", pa.int32()), ("u", pa.string())])
    _save(spark.createDataFrame(pa.Table.from_pylist([{"k": 1, "u": "one"}], schema=schema)),
          _options(host, port, table="dbo.heap", write_id="heap-load"))
    before = _query(host, port, "SELECT k, u FROM dbo.heap ORDER BY k, u")
    rng = random.Random(45)
    for operation, key in (("UPDATE", 1), ("UPSERT", 7), ("UPSERT", 1)):
        rows = [{"k": i, "u": f"r{i}"} for i in range(100, 140)]
        rows += [{"k": key, "u": "a"}, {"k": key, "u": "b"}]
        rng.shuffle(rows)
        # Each of the two rows of the key in a partition of its own.
        df = spark.createDataFrame(pa.Table.from_pylist(rows, schema=schema)).repartition(2, "u")
        write_id = f"dup-key-{operation}-{key}".lower()
        with pytest.raises(Exception) as e:
            _save(df, _options(host, port, table="dbo.heap", operation=operation, primary_key="k",
                               write_id=write_id))
        assert "the source has rows with the same primary key (k)" in str(e.value), str(e.value)[:2000]
        assert _query(host, port, "SELECT k, u FROM dbo.heap ORDER BY k, u") == before
        assert _leftovers(host, port) == []
        assert _query(host, port, f"SELECT COUNT(*) FROM dbo.bridge_sync_ledger WHERE event_id = 'spark-{write_id}'") \
            == [(0,)]


def test_a_target_with_a_rowversion_column_is_stamped_by_the_server(sql, spark):
    """A rowversion column is the server's: a write leaves it out, and every row
    it inserts or updates gets a new stamp above the database's last one
    (@@DBTS), rows it does not touch keep theirs; read back, the column is
    eight bytes, as python-tds reads it."""
    from sql_databricks_bridge.sdk.databricks import BridgeOperator
    from sql_databricks_bridge.spark import register

    register(spark)
    host, port = sql
    schema = pa.schema([("id", pa.int32()), ("u", pa.string())])

    def stamps() -> dict[int, bytes]:
        return {r[0]: bytes(r[1]) for r in _query(host, port, "SELECT id, rv FROM dbo.stamped")}

    def dbts() -> bytes:
        return bytes(_query(host, port, "SELECT @@DBTS")[0][0])

    _save(spark.createDataFrame(pa.Table.from_pylist([{"id": i, "u": f"v{i}"} for i in range(1, 21)], schema=schema))
          .repartition(3), _options(host, port, table="dbo.stamped", write_id="stamp-1"))
    first = stamps()
    assert len(first) == 20 and len(set(first.values())) == 20
    assert max(first.values()) == dbts()
    before = dbts()
    changed = [{"id": i, "u": f"w{i}"} for i in (3, 7)] + [{"id": 21, "u": "new"}]
    _save(spark.createDataFrame(pa.Table.from_pylist(changed, schema=schema)),
          _options(host, port, table="dbo.stamped", operation="UPSERT", primary_key="id", write_id="stamp-2"))
    second = stamps()
    assert {i for i in second if second[i] != first.get(i)} == {3, 7, 21}
    assert all(second[i] > before for i in (3, 7, 21))
    assert _query(host, port, "SELECT u FROM dbo.stamped WHERE id = 7") == [("w7",)]
    # The CLI's read: binary(8), the same bytes.
    op = BridgeOperator(f"{host},{port}", "SparkW", "sa", SA_PASSWORD, trust_server_certificate=True)
    got = op.extract_to_arrow("SELECT id, rv FROM dbo.stamped")
    assert got.schema.field("rv").type == pa.binary()
    assert {r["id"]: r["rv"] for r in got.to_pylist()} == second
    assert _leftovers(host, port) == []


def test_a_delete_is_capped_at_10000_rows_unless_the_write_says_otherwise(sql, spark):
    """Without max_delete_rows a DELETE may remove 10,000 rows, not one more:
    10,001 are refused whole in the commit (nothing deleted, no stage left,
    no ledger row); 10,000 go; a write that raises the cap deletes the rest."""
    from sql_databricks_bridge.spark import register

    register(spark)
    host, port = sql
    ids = spark.range(1, 10_003).selectExpr("CAST(id AS INT) AS id")
    _save(ids.repartition(2), _options(host, port, table="dbo.many", write_id="many-load"))
    assert _query(host, port, "SELECT COUNT(*) FROM dbo.many") == [(10_002,)]
    delete = _options(host, port, table="dbo.many", operation="DELETE", primary_key="id")
    with pytest.raises(Exception) as e:
        _save(ids.where("id <= 10001").repartition(3), {**delete, "write_id": "many-del-1"})
    assert "above max_delete_rows 10000" in str(e.value), str(e.value)[:2000]
    assert _query(host, port, "SELECT COUNT(*) FROM dbo.many") == [(10_002,)]
    assert _leftovers(host, port) == []
    assert _query(host, port, "SELECT COUNT(*) FROM dbo.bridge_sync_ledger WHERE event_id = 'spark-many-del-1'") \
        == [(0,)]
    _save(ids.where("id <= 10000").repartition(3), {**delete, "write_id": "many-del-2"})
    assert _query(host, port, "SELECT MIN(id), COUNT(*) FROM dbo.many") == [(10_001, 2)]
    _save(ids.where("id > 10000"), {**delete, "write_id": "many-del-3", "max_delete_rows": "2"})
    assert _query(host, port, "SELECT COUNT(*) FROM dbo.many") == [(0,)]


def test_a_failing_task_aborts_the_write_and_drops_every_stage(sql, spark):
    """One partition holds a value the target cannot take: its task fails on
    every attempt, the job aborts — nothing written, no stage left (the other
    partitions' and every failed attempt's)."""
    from sql_databricks_bridge.spark import register

    register(spark)
    host, port = sql
    rows = [{"id": i, "u": "ok"} for i in range(1, 200)] + [{"id": 500, "u": "far too long"}]
    df = spark.createDataFrame(pa.Table.from_pylist(rows, schema=pa.schema([("id", pa.int32()), ("u", pa.string())])))
    with pytest.raises(Exception) as e:
        _save(df.repartition(4), _options(host, port, table="dbo.narrow", write_id="abort-1"))
    assert "longer than the column's 5" in str(e.value)
    assert _query(host, port, "SELECT COUNT(*) FROM dbo.narrow") == [(0,)]
    assert _leftovers(host, port) == []


def test_duplicate_attempts_and_forged_messages(sql):
    """Two attempts of one partition (a speculative duplicate) stage twice;
    the commit takes the one reported, once, and drops the other. A commit
    message naming a table that is not one of the write's stages is refused."""
    from sql_databricks_bridge.sdk.databricks import BridgeOperator

    host, port = sql
    op = BridgeOperator(f"{host},{port}", "SparkW", "sa", SA_PASSWORD, trust_server_certificate=True)
    columns = [("id", "int"), ("u", "string")]
    write = op._native.plan_write("dup-1", "dbo.narrow", "UPSERT", columns, ["id"])
    write.open()
    batch = pa.RecordBatch.from_pylist([{"id": 900 + i, "u": f"v{i}"} for i in range(5)],
                                       schema=pa.schema([("id", pa.int32()), ("u", pa.string())]))
    messages = []
    for attempt in (7, 8):
        loader = write.stage(0, attempt)
        loader.send(batch)
        messages.append(loader.finish())
    assert messages[0][1] == messages[1][1] == 5 and messages[0][0] != messages[1][0]
    assert len(_leftovers(host, port)) == 2
    with pytest.raises(Exception) as e:
        write.commit([("target", 5)])
    assert "is not a stage table of write spark-dup-1" in str(e.value)
    # Another run of the same write (a re-run overlapping this one) may not
    # commit this run's stages.
    other = op._native.plan_write("dup-1", "dbo.narrow", "UPSERT", columns, ["id"], "otherrun")
    with pytest.raises(Exception) as e:
        other.commit([messages[1]])
    assert "is not a stage table of write spark-dup-1 (run otherrun)" in str(e.value)
    out = write.commit([messages[1]])
    assert (out["rows_read"], out["rows_affected"], out["from_ledger"]) == (5, 5, False)
    assert _query(host, port, "SELECT COUNT(*) FROM dbo.narrow WHERE id >= 900") == [(5,)]
    assert _leftovers(host, port) == []
    again = write.commit([messages[0]])
    assert again["from_ledger"] is True
    # A task late for a committed run (cancelled, still running) stages nothing.
    with pytest.raises(Exception) as e:
        late = write.stage(0, 9)
        late.send(batch)
        late.finish()
    assert "is over (committed or aborted)" in str(e.value)
    assert _leftovers(host, port) == []


def test_a_task_late_for_an_aborted_run_leaves_nothing(sql):
    """The abort closes the run before dropping its stages: a task of it still
    running (Spark cancels the others as a job fails, and a cancelled Python
    task may go on a while) makes no stage after, and the abort leaves none."""
    from sql_databricks_bridge.sdk.databricks import BridgeOperator

    host, port = sql
    op = BridgeOperator(f"{host},{port}", "SparkW", "sa", SA_PASSWORD, trust_server_certificate=True)
    columns = [("id", "int"), ("u", "string")]
    write = op._native.plan_write("late-1", "dbo.narrow", "INSERT", columns)
    write.open()
    batch = pa.RecordBatch.from_pylist([{"id": -4000, "u": "x"}],
                                       schema=pa.schema([("id", pa.int32()), ("u", pa.string())]))
    early = write.stage(0, 1)
    early.send(batch)
    early.finish()
    assert len(_leftovers(host, port)) == 1
    assert write.abort() == 1
    with pytest.raises(Exception) as e:
        late = write.stage(1, 2)
        late.send(batch)
        late.finish()
    assert "run " + write.run + " of write spark-late-1 is over" in str(e.value)
    assert _leftovers(host, port) == []
    assert _query(host, port, "SELECT COUNT(*) FROM dbo.narrow WHERE id = -4000") == [(0,)]
    # Another run of the same write is its own: opened, committed once.
    again = op._native.plan_write("late-1", "dbo.narrow", "INSERT", columns)
    again.open()
    loader = again.stage(0, 3)
    loader.send(batch)
    assert again.commit([loader.finish()])["rows_affected"] == 1
    assert _query(host, port, "SELECT COUNT(*) FROM dbo.bridge_stage_runs") == [(0,)]


def test_a_cut_bulk_load_and_a_lost_commit_answer_still_write_once(tmp_path, spark):
    """A SQL Server that cuts the first stage's bulk load mid-way (the task
    fails and Spark retries it) and loses the answer to the first COMMIT (the
    write committed; the bridge cannot tell until it reads the ledger): the
    target holds every row once."""
    from sql_databricks_bridge.spark import register

    register(spark)
    (tmp_path / "seed.sql").write_text(SEED)
    proc, host, port = start_sqlserver("faulty", tmp_path, "--seed", str(tmp_path / "seed.sql"),
                                       "--drop-bulk-after-rows", "10:1", "--lose-answer", "^COMMIT")
    try:
        rng = random.Random(2712)
        rows = [_row(rng, i) for i in range(1, 401)]
        _save(_frame(spark, rows, 4), _options(host, port, table="dbo.target", write_id="faults-1"))
        assert _target(host, port) == {r["id"]: _normal(r) for r in rows}
        assert _leftovers(host, port) == []
        (n,) = _query(host, port, "SELECT COUNT(*) FROM dbo.bridge_sync_ledger")
        assert n == (1,)
        # Both faults fired.
        log = (tmp_path / "faulty.log").read_text(errors="replace")
        assert "connection dropped mid bulk load" in log and "answer lost" in log, log[-3000:]
    finally:
        proc.stop()


def test_write_through_map_in_arrow_where_the_api_is_missing(sql, spark):
    """write_arrow: the same staged, exactly-once write through
    DataFrame.mapInArrow (Spark 3.5, older DBR)."""
    from sql_databricks_bridge.spark import write_arrow

    host, port = sql
    rows = [{"id": 2000 + i, "u": f"m{i}"} for i in range(50)]
    df = spark.createDataFrame(pa.Table.from_pylist(rows, schema=pa.schema([("id", pa.int32()), ("u", pa.string())])))
    options = _options(host, port, table="dbo.narrow", operation="UPSERT", primary_key="id", write_id="mia-1")
    out = write_arrow(df.repartition(3), **options)
    assert (out["rows_read"], out["rows_affected"], out["from_ledger"]) == (50, 50, False)
    assert write_arrow(df.repartition(3), **options)["from_ledger"] is True
    got = _query(host, port, "SELECT id, u FROM dbo.narrow WHERE id >= 2000 ORDER BY id")
    assert got == [(r["id"], r["u"]) for r in rows]
    assert _leftovers(host, port) == []


def test_stages_go_to_the_schema_named(sql, spark):
    """stage_schema: the stages in a schema of their own (where the login
    may create tables), not dbo; the target and the ledger as always."""
    from sql_databricks_bridge.sdk.databricks import BridgeOperator
    from sql_databricks_bridge.spark import register

    host, port = sql
    op = BridgeOperator(f"{host},{port}", "SparkW", "sa", SA_PASSWORD, trust_server_certificate=True)
    write = op._native.plan_write("schema-1", "dbo.narrow", "INSERT", [("id", "int"), ("u", "string")],
                                  None, None, "staging")
    write.open()
    loader = write.stage(0, 1)
    loader.send(pa.RecordBatch.from_pylist([{"id": 3000, "u": "s"}],
                                           schema=pa.schema([("id", pa.int32()), ("u", pa.string())])))
    message = loader.finish()
    assert _query(host, port, "SELECT TABLE_SCHEMA, TABLE_NAME FROM INFORMATION_SCHEMA.TABLES "
                              "WHERE LEFT(TABLE_NAME, 13) = 'bridge_stage_' AND TABLE_NAME <> 'bridge_stage_runs'"
                  ) == [("staging", message[0])]
    assert write.commit([message])["rows_affected"] == 1
    assert _leftovers(host, port) == []

    register(spark)
    rows = [{"id": 3100 + i, "u": "t"} for i in range(20)]
    df = spark.createDataFrame(pa.Table.from_pylist(rows, schema=pa.schema([("id", pa.int32()), ("u", pa.string())])))
    _save(df.repartition(2), _options(host, port, table="dbo.narrow", write_id="schema-2", stage_schema="staging"))
    assert _query(host, port, "SELECT COUNT(*) FROM dbo.narrow WHERE id >= 3000") == [(21,)]
    assert _leftovers(host, port) == []
    with pytest.raises(Exception) as e:
        _save(df, _options(host, port, table="dbo.narrow", write_id="schema-3", stage_schema="nope"))
    assert "stage_schema 'nope' does not exist in the database of dbo.narrow" in str(e.value)
    assert _leftovers(host, port) == []

"""Spark writes governed by a bridge server (the data source's ``bridge_url``):
the real ``sql-databricks-bridge serve`` binary over the SQL Server sandbox,
its own permissions.yaml, a real local SparkSession, the installed wheel.

The driver asks the server to open, commit and abort; each call needs
``write`` on the target for the token's user (the name resolved in the
server's database, not the executors'), every decision is an audit line, the
user's ``max_delete_rows`` caps a DELETE whatever the job asks, the server
applies the stages with its own login, and write ids are scoped per user.
Checked as invariants: the target equals the model of what was allowed, each
write is applied once, no stage is left, and the audit says who did what.
"""

from __future__ import annotations

import decimal
import json
import os
import sys
from pathlib import Path

import pyarrow as pa
import pytds
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from processes import bridge_bin, start_process, start_sqlserver

SA_PASSWORD = "Bridge!Passw0rd"

SEED = """
CREATE DATABASE GovW
GO
USE GovW
GO
CREATE TABLE dbo.target (id int NOT NULL PRIMARY KEY, name nvarchar(40) NULL, amount decimal(18,2) NULL)
GO
CREATE TABLE dbo.other (id int NOT NULL PRIMARY KEY)
GO
"""

# No database in the grants: they are in the server's (GovW), as the
# executors' plain `dbo.target` is not (their login's default is master).
PERMISSIONS = """
users:
  - name: "spark-writer"
    token: "writer-token"
    permissions:
      - table: "dbo.target"
        access: "read_write"
        max_delete_rows: 3
  - name: "spark-reader"
    token: "reader-token"
    permissions:
      - table: "dbo.target"
        access: "read"
  - name: "spark-other"
    token: "other-token"
    permissions:
      - table: "GovW.dbo.target"
        access: "write"
"""

SCHEMA = pa.schema([("id", pa.int32()), ("name", pa.string()), ("amount", pa.decimal128(18, 2))])


class World:
    def __init__(self, host: str, port: int, url: str, audit: Path) -> None:
        self.host, self.port, self.url, self.audit = host, port, url, audit

    def query(self, sql: str) -> list[tuple]:
        with pytds.connect(dsn=self.host, port=self.port, database="GovW", user="sa", password=SA_PASSWORD,
                           autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]

    def target(self) -> dict[int, tuple]:
        return {r[0]: (r[1], None if r[2] is None else str(r[2])) for r in self.query(
            "SELECT id, name, amount FROM dbo.target")}

    def leftovers(self) -> list[str]:
        return [r[0] for r in self.query(
            "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE LEFT(TABLE_NAME, 13) = 'bridge_stage_' "
            "AND TABLE_NAME <> 'bridge_stage_runs'")]

    def audit_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.audit.read_text().splitlines() if line.strip()]

    def options(self, token: str, **more: str) -> dict[str, str]:
        # The executors' connection names no database: the server resolves
        # the target in its own.
        return {
            "sql_server_host": f"{self.host},{self.port}", "sql_server_user": "sa",
            "sql_server_password": SA_PASSWORD, "trust_server_certificate": "true",
            "bridge_url": self.url, "bridge_token": token, "table": "dbo.target", **more,
        }


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("spark-governed")
    (d / "seed.sql").write_text(SEED)
    (d / "permissions.yaml").write_text(PERMISSIONS)
    (d / "queries").mkdir()
    (d / "config").mkdir()
    sql, host, port = start_sqlserver("sqlserver", d, "--seed", str(d / "seed.sql"))
    procs = [sql]
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "SQLSERVER_", "DATABRICKS_"))}
        env.update(SQLSERVER_HOST=f"{host},{port}", SQLSERVER_DATABASE="GovW", SQLSERVER_USERNAME="sa",
                   SQLSERVER_PASSWORD=SA_PASSWORD, SQLSERVER_TRUST_SERVER_CERTIFICATE="true")
        server = start_process("serve", [
            str(bridge_bin()), "serve", "--port", "0", "--permissions-file", str(d / "permissions.yaml"),
            "--jobs-db", str(d / "jobs.sqlite"), "--audit-log", str(d / "audit.jsonl"), "--no-sync",
            "--shutdown-timeout", "2",
        ], cwd=d, env=env, ready_prefix="listening on ", log_dir=d)
        procs.append(server)
        yield World(host, port, server.ready_line.split()[2], d / "audit.jsonl")
    finally:
        for p in reversed(procs):
            p.stop()


def _frame(spark, rows: list[dict], partitions: int = 3):
    return spark.createDataFrame(pa.Table.from_pylist(rows, schema=SCHEMA)).repartition(partitions)


def _save(df, options: dict[str, str]) -> None:
    df.write.format("sqlserver_bridge").options(**options).mode("append").save()


def _rows(ids, tag: str) -> list[dict]:
    return [{"id": i, "name": f"{tag}-{i}", "amount": decimal.Decimal(f"{i}.25")} for i in ids]


def test_a_governed_write_is_applied_by_the_server_once_and_audited(world, spark):
    """UPSERT from three partitions through the server: the target equals the
    model, the ledger names the token's user and the resolved target, a re-run
    of the write id writes nothing, no stage is left, and the audit has the
    right checked, the run opened and the commit with its counts."""
    from sql_databricks_bridge.spark import register, write_arrow

    register(spark)
    model = world.target()
    batch = _rows(range(1, 41), "a")
    # Three tasks staging through one connection slot at a time.
    options = world.options("writer-token", operation="UPSERT", primary_key="id", write_id="gov-1",
                            max_connections="1", connection_group="gov")
    _save(_frame(spark, batch), options)
    model.update({r["id"]: (r["name"], str(r["amount"])) for r in batch})
    assert world.target() == model
    assert world.leftovers() == []
    # The job re-run: found in the ledger, nothing written.
    _save(_frame(spark, _rows(range(1, 41), "changed")), options)
    assert world.target() == model
    # The mapInArrow twin, governed the same way.
    more = _rows(range(41, 51), "m")
    out = write_arrow(_frame(spark, more, 2), **world.options("writer-token", write_id="gov-arrow"))
    assert (out["rows_read"], out["rows_affected"], out["from_ledger"]) == (10, 10, False)
    model.update({r["id"]: (r["name"], str(r["amount"])) for r in more})
    assert world.target() == model
    assert world.leftovers() == []

    ledger = world.query("SELECT event_id, applied_by, target_table FROM dbo.bridge_sync_ledger "
                         "WHERE event_id LIKE 'spark-u%:gov-%' ORDER BY event_id")
    assert [(e.split(":", 1)[1], by) for e, by, _ in ledger] == [("gov-1", "spark-writer"),
                                                                   ("gov-arrow", "spark-writer")]
    assert all("GovW" in t for _, _, t in ledger), ledger
    lines = [a for a in world.audit_lines() if a.get("user_name") == "spark-writer"]
    kinds = [a["event_type"] for a in lines if a["event_type"].startswith("spark_write")]
    assert kinds.count("spark_write_opened") == 3 and kinds.count("spark_write_committed") == 3, kinds
    committed = [a for a in lines if a["event_type"] == "spark_write_committed"]
    assert all(a["resource"] == "govw.dbo.target" for a in committed), committed
    assert "40 rows read, 40 affected" in committed[0]["detail"]
    assert "from the ledger" in committed[1]["detail"]
    rights = [a for a in lines if a["event_type"] == "auth_success" and a["action"] == "write"]
    assert rights and all(a["resource"] == "govw.dbo.target" for a in rights)


def test_a_user_without_write_is_refused_before_any_task_and_audited(world, spark):
    """The reader's token may read the target, not write it: the write fails
    on the driver naming the table and the right, nothing is staged or
    written; a bad token is refused as such."""
    from sql_databricks_bridge.spark import register

    register(spark)
    before = world.target()
    df = _frame(spark, _rows(range(900, 905), "r"))
    with pytest.raises(Exception) as e:
        _save(df, world.options("reader-token", write_id="gov-reader"))
    assert "may not write govw.dbo.target" in str(e.value), str(e.value)[:2000]
    with pytest.raises(Exception) as e:
        _save(df, world.options("no-such-token", write_id="gov-bad"))
    assert "token is not valid" in str(e.value), str(e.value)[:2000]
    # Another table: the writer has no right there either.
    with pytest.raises(Exception) as e:
        _save(df.select("id"), world.options("writer-token", table="dbo.other", write_id="gov-other"))
    assert "may not write govw.dbo.other" in str(e.value), str(e.value)[:2000]
    assert world.target() == before
    assert world.query("SELECT COUNT(*) FROM dbo.other") == [(0,)]
    assert world.leftovers() == []
    denied = [a for a in world.audit_lines() if a["event_type"] == "permission_denied"]
    assert any(a["user_name"] == "spark-reader" and a["missing_right"] == "write on SQL Server table govw.dbo.target"
               for a in denied), denied
    assert any(a["user_name"] == "spark-writer" and a["resource"] == "govw.dbo.other" for a in denied), denied


def test_the_users_delete_cap_holds_whatever_the_job_asks(world, spark):
    """permissions.yaml caps the writer's DELETEs at 3 rows: a job asking for
    100 is refused in the commit (nothing deleted, stages dropped, audited as
    refused); 3 rows go."""
    from sql_databricks_bridge.spark import register

    register(spark)
    _save(_frame(spark, _rows(range(100, 110), "d")), world.options("writer-token", write_id="gov-d0"))
    before = world.target()
    too_many = _frame(spark, _rows(range(100, 105), "d")).select("id")
    with pytest.raises(Exception) as e:
        _save(too_many, world.options("writer-token", operation="DELETE", primary_key="id", max_delete_rows="100",
                                      write_id="gov-d1"))
    assert "above max_delete_rows 3" in str(e.value), str(e.value)[:2000]
    assert world.target() == before
    assert world.leftovers() == []
    refused = [a for a in world.audit_lines() if a["event_type"] == "spark_write_refused"]
    assert any("gov-d1" in a["detail"] and a["outcome"] == "denied" for a in refused), refused
    _save(_frame(spark, _rows(range(100, 103), "d")).select("id"),
          world.options("writer-token", operation="DELETE", primary_key="id", write_id="gov-d2"))
    for i in range(100, 103):
        before.pop(i)
    assert world.target() == before


def test_write_ids_are_the_users_own(world, spark):
    """Two users with the same write id: neither's write is a no-op for the
    other, and neither can abort the other's run (an abort through the server
    only ever names the caller's own scoped write)."""
    from sql_databricks_bridge.sdk import BridgeClient
    from sql_databricks_bridge.spark import register

    register(spark)
    model = world.target()
    a, b = _rows(range(200, 205), "writer"), _rows(range(205, 210), "other")
    _save(_frame(spark, a), world.options("writer-token", write_id="shared-id"))
    _save(_frame(spark, b), world.options("other-token", write_id="shared-id"))
    model.update({r["id"]: (r["name"], str(r["amount"])) for r in a + b})
    assert world.target() == model
    scoped = world.query("SELECT event_id, applied_by FROM dbo.bridge_sync_ledger "
                         "WHERE event_id LIKE 'spark-u%:shared-id' ORDER BY applied_by")
    assert [by for _, by in scoped] == ["spark-other", "spark-writer"] and scoped[0][0] != scoped[1][0]

    # The writer opens a run. The other user, naming the same write id and
    # run id, can neither open it as its own, nor close it, nor commit or
    # drop the writer's stage: its calls only ever reach its own scoped write.
    write = {"write_id": "open-run", "run_id": "abc123", "operation": "INSERT", "target_table": "dbo.target",
             "columns": [{"name": "id", "spark_type": "int"}]}
    from sql_databricks_bridge.sdk.databricks import BridgeOperator

    op = BridgeOperator(sql_server_host=f"{world.host},{world.port}", sql_server_user="sa",
                        sql_server_password=SA_PASSWORD, trust_server_certificate=True)
    with BridgeClient(world.url, "writer-token") as writer, BridgeClient(world.url, "other-token") as other:
        run = writer.open_spark_write(write)
        assert run.target_table == "[GovW].[dbo].[target]" and run.max_delete_rows == 3
        assert writer.open_spark_write(write).write_id == run.write_id  # opened again: the same run
        with pytest.raises(Exception) as e:
            other.open_spark_write(write)
        assert "run id abc123 is open for another write" in str(e.value), str(e.value)
        assert other.abort_spark_write(write).stages_dropped == 0
        # The writer's run is still open: its task stages.
        loader = op._native.plan_write(run.write_id, run.target_table, "INSERT", [("id", "int")], [], "abc123",
                                       None).stage(0, 1)
        loader.send(pa.record_batch([pa.array([777], pa.int32())], names=["id"]))
        stage, rows = loader.finish()
        assert rows == 1 and world.leftovers() == [stage]
        assert other.abort_spark_write(write).stages_dropped == 0
        with pytest.raises(Exception) as e:
            other.commit_spark_write(write, [(stage, 1)])
        assert "is not a stage table of write" in str(e.value), str(e.value)
        assert world.leftovers() == [stage]
        assert writer.abort_spark_write(write).stages_dropped == 1
    assert world.leftovers() == []
    assert 777 not in world.target()

#!/usr/bin/env python3
"""Benchmark (not a test): N generated rows written into SQL Server through
the bridge's Spark data source (local[2], 8 partitions, INSERT: each task
bulk-loads its stage, the driver commits them in one transaction with the
ledger row) beside FreeTDS freebcp loading the same rows from a
tab-separated file into an identical table, same sandbox, same run. Each runs
in a fresh process; freebcp's peak RSS from /usr/bin/time, Spark's sampled
from its process tree by kind (the JVM; the Python workers, where each task
runs the bridge's core — the executor's share; the driver's Python). Both targets are read back and compared (count, sums) afterwards.
Also timed alone, inside SQL Server: the commit's copy of every staged row,
and the repeated-key check an UPDATE or UPSERT commit adds over the stages.
`sync apply` beside freebcp on the same kind of rows is
target/release/sync_vs_freebcp (bench/run.sh runs both).

Needs the release wheel and binaries (bench/run.sh builds them):
    .venv/bin/python bench/spark_write_vs_freebcp.py --rows 1000000
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from measure import sampled, timed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "Bridge!Passw0rd"
PARTS = 8
TABLE = ("(id bigint NOT NULL, monto decimal(18,2) NULL, nombre nvarchar(40) NULL, "
         "fecha datetime2(6) NULL, f float NULL, activo bit NULL)")
SEED = f"""
CREATE DATABASE Bench
GO
USE Bench
GO
CREATE TABLE dbo.spark_target {TABLE}
GO
CREATE TABLE dbo.bcp_target {TABLE}
GO
CREATE TABLE dbo.copy_target {TABLE}
GO
"""


def row(i: int) -> tuple:
    """The generator both clients load (the Spark expression below computes the same)."""
    return (str(i), f"{(i * 37) % 1000000 / 100:.2f}", f"cliente {i % 9973}",
            f"2024-01-01 00:00:{i % 60:02d}.{(i * 7) % 1000000:06d}", f"{i / 8:.3f}", str(i % 2))


SPARK_ROWS = ["id", "CAST(((id * 37) % 1000000) / 100 AS DECIMAL(18,2)) AS monto",
              "concat('cliente ', CAST(id % 9973 AS STRING)) AS nombre",
              ("CAST(timestamp_micros(1704067200000000 + (id % 60) * 1000000 + ((id * 7) % 1000000)) "
               "AS TIMESTAMP_NTZ) AS fecha"),
              "CAST(id / 8 AS DOUBLE) AS f", "(id % 2) = 1 AS activo"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--sandbox", default=os.path.join(ROOT, "target/release/bridge-sandbox"))
    args = ap.parse_args()
    freebcp = shutil.which("freebcp")
    if not freebcp:
        sys.exit("freebcp not found (scripts/setup-test-env.sh installs FreeTDS)")

    sandbox = args.sandbox
    work = tempfile.mkdtemp(prefix="bridge-bench-spark-write-")
    with open(os.path.join(work, "seed.sql"), "w") as f:
        f.write(SEED)
    with open(os.path.join(work, "rows.tsv"), "w") as f:
        f.writelines("\t".join(row(i)) + "\n" for i in range(args.rows))
    proc = subprocess.Popen([sandbox, "sqlserver", "--port", "0", "--seed", os.path.join(work, "seed.sql")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(proc.stdout.readline().strip().rsplit(":", 1)[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SQLSERVER_", "DATABRICKS_"))}
        env.update(SQLSERVER_HOST=f"127.0.0.1,{port}", SQLSERVER_DATABASE="Bench", SQLSERVER_USERNAME="sa",
                   SQLSERVER_PASSWORD=PASSWORD, SQLSERVER_TRUST_SERVER_CERTIFICATE="true",
                   PYSPARK_PYTHON=sys.executable)
        import pytds

        def query(sql):
            with pytds.connect(dsn="127.0.0.1", port=port, database="Bench", user="sa", password=PASSWORD,
                               autocommit=True) as c, c.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall() if cur.description else None

        results = {}
        for run in range(args.runs):
            query("TRUNCATE TABLE dbo.spark_target")
            query("TRUNCATE TABLE dbo.bcp_target")
            spark_code = (
                "import time\n"
                "from pyspark.sql import SparkSession\n"
                "from sql_databricks_bridge.spark import register\n"
                "s = (SparkSession.builder.master('local[2]').config('spark.ui.enabled', 'false')"
                ".config('spark.sql.session.timeZone', 'UTC').config('spark.driver.memory', '2g').getOrCreate())\n"
                "register(s)\n"
                f"df = s.range({args.rows}).selectExpr(*{SPARK_ROWS!r}).repartition({PARTS}).cache()\n"
                "df.count()\n"
                "t = time.perf_counter()\n"
                "(df.write.format('sqlserver_bridge').option('table', 'dbo.spark_target')"
                f".option('write_id', 'bench-{run}-{os.getpid()}').mode('append').save())\n"
                "print(round(time.perf_counter() - t, 3))\n"
                "s.stop()\n"
            )
            secs, peaks, stdout = sampled([sys.executable, "-c", spark_code], env=env, cwd=work)
            results.setdefault(f"Spark data source INSERT (local[2], {PARTS} tasks)", []).append(
                (float(stdout.split()[-1]), secs, max(peaks.values())))
            # The commit's share: one INSERT ... SELECT of every staged row in
            # SQL Server (the commit runs in a Python process of Spark's own,
            # whose log this process does not see), timed alone.
            query("TRUNCATE TABLE dbo.copy_target")
            started = time.perf_counter()
            query("INSERT INTO dbo.copy_target SELECT * FROM dbo.spark_target")
            copy_s = time.perf_counter() - started
            print(f"run {run}: copying {args.rows:,} rows inside SQL Server (the commit's work): "
                  f"{copy_s:.2f} s", flush=True)
            # What an UPDATE or UPSERT commit adds: the staged rows checked for
            # a repeated key (stages come from tasks that each saw only theirs).
            started = time.perf_counter()
            query("SELECT TOP 1 COUNT(*) AS n FROM dbo.spark_target GROUP BY [id] HAVING COUNT(*) > 1")
            check_s = time.perf_counter() - started
            print(f"run {run}: checking {args.rows:,} staged keys for a repeat (an UPDATE/UPSERT commit's "
                  f"extra work): {check_s:.2f} s = {check_s / copy_s:.2f}x the copy", flush=True)
            print(f"run {run}: Spark peak RSS by process: " + ", ".join(
                f"{k} {v:.1f} MiB" for k, v in sorted(peaks.items())), flush=True)
            secs, rss, _ = timed([freebcp, "Bench.dbo.bcp_target", "in", "rows.tsv", "-S", f"127.0.0.1:{port}",
                                  "-U", "sa", "-P", PASSWORD, "-c", "-b", "10000"], env=env, cwd=work)
            results.setdefault("freebcp (-c, -b 10000)", []).append((secs, secs, rss))
            got = [query(f"SELECT COUNT(*), SUM(id), SUM(monto), SUM(CAST(activo AS int)) FROM dbo.{t}")[0]
                   for t in ("spark_target", "bcp_target")]
            if got[0] != got[1] or got[0][0] != args.rows:
                sys.exit(f"the targets differ: spark {got[0]}, freebcp {got[1]}")
        bcp = min(results["freebcp (-c, -b 10000)"])[0]
        for name, rs in results.items():
            call, proc_s, _ = min(rs)
            rss = max(r for _, _, r in rs)
            print(f"{name:44}: {args.rows / call:>10,.0f} rows/s  write {call:6.2f} s  process {proc_s:6.2f} s  "
                  f"peak RSS {rss:8.1f} MiB  time {call / bcp:5.2f}x freebcp")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()

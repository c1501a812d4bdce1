#!/usr/bin/env python3
"""Benchmark (not a test): a generated 10-column table read through the
bridge's Spark data source (local[2], `partition_on` id, 8 ranges, the read
forced with the `noop` sink) beside the CLI's partitioned extraction of the
same table to Parquet (8 partitions), same sandbox, same run: the overhead of
Spark as a ratio. Each runs in a fresh process; the CLI's peak RSS from
/usr/bin/time, Spark's sampled from its process tree by kind (the JVM, the
Python workers where each range runs the bridge's core, the driver).

Needs the release wheel and binaries (bench/run.sh builds them):
    .venv/bin/python bench/spark_read_vs_extract.py --rows 1000000
"""
import argparse
import os
import subprocess
import sys
import tempfile

from measure import sampled, timed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "Bridge!Passw0rd"
PARTS = 8


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()

    sandbox = os.path.join(ROOT, "target/release/bridge-sandbox")
    bridge = os.path.join(ROOT, "target/release/sql-databricks-bridge")
    work = tempfile.mkdtemp(prefix="bridge-bench-spark-")
    for d in ("queries", "config"):
        os.makedirs(os.path.join(work, d))
    with open(os.path.join(work, "queries/ventas.sql"), "w") as f:
        f.write("SELECT * FROM bench.dbo.ventas\n")
    with open(os.path.join(work, "queries/ventas.yaml"), "w") as f:
        f.write(f"partition_on: id\npartitions: {PARTS}\n")
    with open(os.path.join(work, "config/common_params.yaml"), "w") as f:
        f.write("schema: dbo\n")
    with open(os.path.join(work, "config/Bench.yaml"), "w") as f:
        f.write("database: bench\n")
    proc = subprocess.Popen([sandbox, "sqlserver", "--port", "0", "--generate", f"bench.ventas:{args.rows}"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(proc.stdout.readline().strip().rsplit(":", 1)[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SQLSERVER_", "DATABRICKS_"))}
        env.update(SQLSERVER_HOST=f"127.0.0.1,{port}", SQLSERVER_USERNAME="sa", SQLSERVER_PASSWORD=PASSWORD,
                   SQLSERVER_TRUST_SERVER_CERTIFICATE="true", PYSPARK_PYTHON=sys.executable)
        spark_code = (
            "import sys, time\n"
            "from pyspark.sql import SparkSession\n"
            "from sql_databricks_bridge.spark import register\n"
            "s = (SparkSession.builder.master('local[2]').config('spark.ui.enabled', 'false')"
            ".config('spark.driver.memory', '2g').getOrCreate())\n"
            "register(s)\n"
            "t = time.perf_counter()\n"
            "df = (s.read.format('sqlserver_bridge').option('query', 'SELECT * FROM bench.dbo.ventas')"
            f".option('partition_on', 'id').option('partitions', '{PARTS}').load())\n"
            "df.write.format('noop').mode('overwrite').save()\n"
            "secs = time.perf_counter() - t\n"
            "print(df.count(), round(secs, 3))\n"
            "s.stop()\n"
        )
        results = {}
        for run in range(args.runs):
            out_dir = f"out{run}"
            secs, rss, _ = timed([bridge, "extract", "--country", "Bench", "--query", "ventas",
                                  "--destination", out_dir, "--timeout", "60"], env=env, cwd=work)
            results.setdefault("CLI extract (8 partitions)", []).append((secs, secs, rss))
            secs, peaks, stdout = sampled([sys.executable, "-c", spark_code], env=env, cwd=work)
            rows, inner = stdout.split()[-2:]
            if int(rows) != args.rows:
                sys.exit(f"spark read {rows} rows, expected {args.rows}")
            results.setdefault("Spark data source (local[2], 8 ranges)", []).append(
                (float(inner), secs, max(peaks.values())))
            print(f"run {run}: Spark peak RSS by process: " + ", ".join(
                f"{k} {v:.1f} MiB" for k, v in sorted(peaks.items())), flush=True)
        cli = min(results["CLI extract (8 partitions)"])[0]
        for name, rs in results.items():
            call, proc_s, _ = min(rs)
            rss = max(r for _, _, r in rs)
            print(f"{name:42}: {args.rows / call:>12,.0f} rows/s  read {call:6.2f} s  process {proc_s:6.2f} s  "
                  f"peak RSS {rss:8.1f} MiB  time {call / cli:5.2f}x the CLI")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark (not a test): the bridge extracting a generated 10-column table
from the SQL Server sandbox to Parquet, beside ConnectorX reading the same
table to Arrow and pyarrow writing the same Parquet, in one run.

Each side reads once on one connection and once split into --partitions
ranges of `id` on as many connections (the bridge's --partition-on, ConnectorX's
partition_on/partition_num). Prints rows/s and peak RSS of each and the ratios. Release binaries:
    cargo build --release -p bridge-sandbox -p sql-databricks-bridge
    .venv/bin/python bench/extract_vs_connectorx.py --rows 1000000
Needs connectorx and pyarrow in the venv (pip install connectorx).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "Bridge!Passw0rd"


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (seconds, peak RSS in MiB)."""
    out = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M"] + cmd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    m = re.search(r"TIME ([0-9.]+) ([0-9]+)", out.stderr)
    return float(m.group(1)), int(m.group(2)) / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--compression", default="snappy", choices=["snappy", "zstd"])
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()

    sandbox = os.path.join(ROOT, "target/release/bridge-sandbox")
    bridge = os.path.join(ROOT, "target/release/sql-databricks-bridge")
    work = tempfile.mkdtemp(prefix="bridge-bench-")
    proc = subprocess.Popen([sandbox, "sqlserver", "--port", "0", "--generate", f"bench.ventas:{args.rows}"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        t = time.time()
        line = proc.stdout.readline().strip()
        port = int(line.rsplit(":", 1)[1])
        print(f"sandbox ready with {args.rows:,} rows in {time.time() - t:.1f} s (port {port})")

        os.makedirs(os.path.join(work, "queries"))
        os.makedirs(os.path.join(work, "config"))
        with open(os.path.join(work, "queries", "ventas.sql"), "w") as f:
            f.write("SELECT * FROM bench.dbo.ventas\n")
        with open(os.path.join(work, "config", "Bench.yaml"), "w") as f:
            f.write("{}\n")
        env = dict(os.environ, SQLSERVER_HOST=f"127.0.0.1,{port}", SQLSERVER_USERNAME="sa",
                   SQLSERVER_PASSWORD=PASSWORD, SQLSERVER_TRUST_SERVER_CERTIFICATE="true")
        results = {}
        uri = f"mssql://sa:Bridge%21Passw0rd@127.0.0.1:{port}/bench?trust_server_certificate=true"
        n = args.rows
        k = args.partitions
        for run in range(args.runs):
            for label, extra, cx_extra in [
                ("single", [], ""),
                (f"{k} partitions", ["--partition-on", "id", "--partitions", str(k)],
                 f", partition_on='id', partition_num={k}"),
            ]:
                out = os.path.join(work, f"out{run}-{len(extra)}")
                secs, rss = timed([bridge, "extract", "--queries-path", os.path.join(work, "queries"),
                                   "--config-path", os.path.join(work, "config"), "--country", "Bench",
                                   "--destination", out, "--compression", args.compression, *extra], env)
                results.setdefault(("bridge", label), []).append((secs, rss))
                pq_out = os.path.join(work, f"cx{run}-{len(extra)}.parquet")
                code = (
                    "import connectorx as cx, pyarrow.parquet as pq\n"
                    f"t = cx.read_sql({uri!r}, 'SELECT * FROM bench.dbo.ventas', return_type='arrow'{cx_extra})\n"
                    f"pq.write_table(t, {pq_out!r}, compression={args.compression!r})\n"
                    f"assert t.num_rows == {n}, t.num_rows\n"
                )
                secs, rss = timed([sys.executable, "-c", code])
                results.setdefault(("connectorx", label), []).append((secs, rss))
        best = {key: (min(s for s, _ in v), max(r for _, r in v)) for key, v in results.items()}
        for (who, label), (secs, rss) in best.items():
            note = "  (read to Arrow + pyarrow write)" if who == "connectorx" else ""
            print(f"{who:11} {label:13}: {n / secs:>12,.0f} rows/s  ({secs:6.2f} s)  peak RSS {rss:8.1f} MiB{note}")
        for label in ["single", f"{k} partitions"]:
            b, c = best[("bridge", label)], best[("connectorx", label)]
            print(f"ratio {label:13}: bridge is {c[0] / b[0]:.2f}x the speed of connectorx, with {b[1] / c[1]:.2f}x its memory")
        b, c = best[("bridge", f"{k} partitions")], best[("connectorx", f"{k} partitions")]
        s1 = best[("bridge", "single")]
        print(f"bridge partitioned vs its own single read: {s1[0] / b[0]:.2f}x")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark (not a test): the Python BridgeOperator's extract_to_arrow of a
generated 10-column table, beside its extract_to_parquet and beside
ConnectorX's read_sql(..., return_type="arrow") of the same table, same
sandbox, same run. Each call runs in a fresh Python process, so its peak RSS
(/usr/bin/time's maximum resident set) is its own, interpreter included.

Needs the release wheel in the venv (bench/run.sh installs it):
    pip install ./client/python          # maturin, release profile
    .venv/bin/python bench/operator_arrow_vs_connectorx.py --rows 1000000
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
QUERY = "SELECT * FROM bench.dbo.ventas"


def timed(code):
    """Runs `python -c code` under /usr/bin/time: (seconds, peak RSS MiB, stdout)."""
    out = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", sys.executable, "-c", code],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tempfile.gettempdir())
    if out.returncode != 0:
        sys.exit(f"failed:\n{code}\n{out.stdout}\n{out.stderr}")
    m = re.search(r"TIME ([0-9.]+) ([0-9]+)", out.stderr)
    return float(m.group(1)), int(m.group(2)) / 1024.0, out.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()

    sandbox = os.path.join(ROOT, "target/release/bridge-sandbox")
    work = tempfile.mkdtemp(prefix="bridge-bench-op-")
    proc = subprocess.Popen([sandbox, "sqlserver", "--port", "0", "--generate", f"bench.ventas:{args.rows}"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline().strip()
        port = int(line.rsplit(":", 1)[1])
        op = (
            "from sql_databricks_bridge.sdk.databricks import BridgeOperator\n"
            f"op = BridgeOperator(sql_server_host='127.0.0.1,{port}', sql_server_database='bench', "
            f"sql_server_user='sa', sql_server_password={PASSWORD!r}, trust_server_certificate=True)\n"
            "import time; t = time.perf_counter()\n"
        )
        peers = {
            "extract_to_arrow": op + f"tb = op.extract_to_arrow({QUERY!r})\n"
            "print(tb.num_rows, round(time.perf_counter() - t, 3))\n",
            "extract_to_parquet": op + "import uuid\n"
            f"r = op.extract_to_parquet({QUERY!r}, {work!r} + '/pq-' + uuid.uuid4().hex)\n"
            "print(r.rows_written, round(time.perf_counter() - t, 3))\n",
            "connectorx arrow": "import connectorx as cx, time; t = time.perf_counter()\n"
            f"tb = cx.read_sql('mssql://sa:Bridge%21Passw0rd@127.0.0.1:{port}/bench?trust_server_certificate=true', "
            f"{QUERY!r}, return_type='arrow')\n"
            "print(tb.num_rows, round(time.perf_counter() - t, 3))\n",
        }
        results = {}
        for _ in range(args.runs):
            for name, code in peers.items():
                secs, rss, stdout = timed(code)
                rows, inner = stdout.split()
                if int(rows) != args.rows:
                    sys.exit(f"{name} returned {rows} rows, expected {args.rows}")
                results.setdefault(name, []).append((float(inner), secs, rss))
        n = args.rows
        cx = min(results["connectorx arrow"])
        for name, rs in results.items():
            call, proc_s, _ = min(rs)
            rss = max(r for _, _, r in rs)
            print(f"{name:20}: {n / call:>12,.0f} rows/s  call {call:6.2f} s  process {proc_s:6.2f} s  "
                  f"peak RSS {rss:8.1f} MiB  speed {cx[0] / call:5.2f}x connectorx")
        a = max(r for _, _, r in results["extract_to_arrow"])
        c = max(r for _, _, r in results["connectorx arrow"])
        p = max(r for _, _, r in results["extract_to_parquet"])
        print(f"memory              : extract_to_arrow {a / c:.2f}x connectorx's, extract_to_parquet {p / c:.2f}x")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

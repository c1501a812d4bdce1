#!/usr/bin/env bash
# Benchmarks (not tests): release builds, figures printed to stdout.
# Usage: bench/run.sh [rows]   (default 1,000,000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rows=${1:-1000000}
scripts/setup-test-env.sh >/dev/null
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
cargo build --release -p bridge-sandbox -p bridge-bench -p sql-databricks-bridge
# The Python distribution, release profile (maturin), for the operator bench;
# scripts/setup-test-env.sh puts the debug one back on its next run.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./client/python
rm -f .venv/.python-client.sha256
echo "== SQL Server sandbox streaming a ${rows}-row 10-column table to tiberius"
target/release/sandbox_stream --rows "$rows" --runs 3
echo
echo "== extraction to Parquet: the bridge beside ConnectorX (+ pyarrow), same table, same run"
.venv/bin/python bench/extract_vs_connectorx.py --rows "$rows"
echo
echo "== REST API under load: GET /health/live and GET /jobs/{id} beside a bare axum handler, same run"
target/release/http_load
echo
echo "== reverse sync (sync apply INSERT ${rows} rows, UPDATE 100,000) beside FreeTDS freebcp, same sandbox, same run"
target/release/sync_vs_freebcp --rows "$rows"
echo
echo "== incremental table load: the second run (1% of ${rows} rows changed) beside the first (full), same table, same run"
target/release/incremental_load --rows "$rows"
echo
echo "== the Python BridgeOperator: extract_to_arrow beside extract_to_parquet and ConnectorX's Arrow read, same table, same run"
.venv/bin/python bench/operator_arrow_vs_connectorx.py --rows "$rows"
echo
echo "== the Spark data source (local[2], 8 ranges) beside the CLI's partitioned extraction, same table, same run"
.venv/bin/python bench/spark_read_vs_extract.py --rows "$rows"
echo
echo "== the Spark data source's write (local[2], 8 tasks, INSERT staged and committed once) beside freebcp, same sandbox, same run"
.venv/bin/python bench/spark_write_vs_freebcp.py --rows "$rows"

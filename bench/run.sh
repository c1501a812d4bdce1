#!/usr/bin/env bash
# Benchmarks (not tests): release builds, figures printed to stdout.
# Usage: bench/run.sh [rows]   (default 1,000,000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rows=${1:-1000000}
cargo build --release -p bridge-sandbox -p bridge-bench
echo "== SQL Server sandbox streaming a ${rows}-row 10-column table to tiberius"
target/release/sandbox_stream --rows "$rows" --runs 3

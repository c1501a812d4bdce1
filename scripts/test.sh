#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit tests and the end-to-end tests
# against the sandboxes), the client fidelity tests (mssql-python,
# python-tds, FreeTDS) against the SQL Server sandbox, and the official
# databricks-sdk against the Databricks workspace double.
# Installs what it needs first (scripts/setup-test-env.sh); works on a fresh
# Debian 12 machine with the Rust toolchain.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# A clean build gains nothing from incremental compilation and its caches
# would double target/'s size; a developer may still set it.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

scripts/setup-test-env.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (every feature: polars included)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

echo "== BridgeOperator::extract_to_dataframe (cargo feature polars)"
cargo test -p sql-databricks-bridge --features polars --locked --test it -- operator::

echo "== tiberius 0.13.0's own integration tests, unchanged, against the SQL Server sandbox"
scripts/tiberius-suite.sh --min-pass 95

echo "== vendor/tiberius is the published tiberius 0.13.0 plus vendor/tiberius.patch, nothing else"
scripts/check-vendor.sh

echo "== the same suite linked with the patched tiberius the bridge builds with (vendor/tiberius)"
scripts/tiberius-suite.sh --min-pass 95 --driver vendor

echo "== the API fuzzed from openapi.json against the real server (schemathesis --checks all)"
BRIDGE_SANDBOX_BIN="$PWD/target/debug/bridge-sandbox" .venv/bin/python -m pytest tests/clients/test_schemathesis.py -q

echo "== the Python BridgeOperator (the installed wheel: sync, extract_to_arrow/polars/spark/parquet, the deck's example, the wheel in a fresh venv)"
BRIDGE_SANDBOX_BIN="$PWD/target/debug/bridge-sandbox" .venv/bin/python -m pytest tests/operator -q

echo "== client fidelity, Databricks SDK contract, OpenAPI, Python client and bundle tests (pytest)"
BRIDGE_SANDBOX_BIN="$PWD/target/debug/bridge-sandbox" .venv/bin/python -m pytest tests/fidelity tests/databricks tests/api tests/clients tests/examples -q \
    --ignore=tests/clients/test_schemathesis.py

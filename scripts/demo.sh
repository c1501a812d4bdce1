#!/usr/bin/env bash
# The demo, end to end on the bundled sandboxes (no SQL Server or Databricks
# account needed): starts the SQL Server sandbox with the demo data and the
# Databricks workspace double, then runs the bridge's commands that exist so
# far — test-connection, list-queries, show-params — and reads the rendered
# queries' rows through FreeTDS tsql, a client nobody here wrote.
# (The extract command itself is not built yet; see the issues.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup-test-env.sh >/dev/null
cargo build --quiet -p bridge-sandbox -p sql-databricks-bridge

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

start() { # name, log, command...
    local log=$1; shift
    "$@" >"$log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 150); do
        grep -q '^READY' "$log" && return 0
        kill -0 "${pids[-1]}" 2>/dev/null || { cat "$log"; exit 1; }
        sleep 0.1
    done
    echo "timed out waiting for: $*"; cat "$log"; exit 1
}

start "$work/sql.log" target/debug/bridge-sandbox sqlserver --port 0 --seed sandbox/seed/demo.sql
start "$work/dbx.log" target/debug/bridge-sandbox databricks --port 0 --token dapi-demo \
    --seed sandbox/seed/databricks_demo.sql
sql_addr=$(sed -n 's/^READY sqlserver //p' "$work/sql.log")
dbx_url=$(sed -n 's/^READY databricks \([^ ]*\).*/\1/p' "$work/dbx.log")
port=${sql_addr##*:}

export SQLSERVER_HOST="127.0.0.1,$port" SQLSERVER_USERNAME=sa SQLSERVER_PASSWORD='Bridge!Passw0rd'
export SQLSERVER_TRUST_SERVER_CERTIFICATE=true DATABRICKS_HOST="$dbx_url" DATABRICKS_TOKEN=dapi-demo
bridge=target/debug/sql-databricks-bridge

echo "== SQL Server sandbox on $sql_addr, Databricks double on $dbx_url"
echo; echo "\$ sql-databricks-bridge test-connection"
$bridge test-connection
echo; echo "\$ sql-databricks-bridge list-queries"
$bridge list-queries --queries-path queries
for country in Colombia Mexico; do
    echo; echo "\$ sql-databricks-bridge show-params --country $country --query ventas"
    $bridge show-params --config-path config --country "$country" --query ventas
    sql=$($bridge show-params --config-path config --country "$country" --query ventas --json \
        | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["queries"][0]["sql"])')
    echo; echo "-- rows the rendered query returns for $country (FreeTDS tsql):"
    printf 'SELECT COUNT(*) AS filas, MIN(fecha) AS desde, SUM(monto_total) AS total FROM (%s\n) AS q\nGO\n' "$sql" \
        | TDSVER=7.4 tsql -H 127.0.0.1 -p "$port" -U sa -P 'Bridge!Passw0rd' -o q
done

#!/usr/bin/env bash
# Starts the SQL Server sandbox with the demo data (KWP_Colombia, KWP_Mexico)
# and shows it through FreeTDS tsql, a client nobody here wrote: what the
# bridge's extraction reads. Nothing else to install by hand.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup-test-env.sh >/dev/null
cargo build --quiet -p bridge-sandbox

log=$(mktemp)
target/debug/bridge-sandbox sqlserver --port 0 --encryption off --seed sandbox/seed/demo.sql >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
    grep -q '^READY' "$log" && break
    kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.1
done
addr=$(sed -n 's/^READY sqlserver //p' "$log")
port=${addr##*:}
echo "SQL Server sandbox listening on $addr (user sa, password Bridge!Passw0rd)"
echo
for q in ventas productos; do
    sql=$(cat "queries/$q.sql")
    echo "-- queries/$q.sql, rendered for Colombia:"
    sql=${sql//\{database\}/KWP_Colombia}
    sql=${sql//\{schema\}/dbo}
    sql=${sql//\{sales_table\}/J_Ventas_CO}
    sql=${sql//\{products_table\}/Productos}
    sql=${sql//\{country_code\}/CO}
    sql=${sql//\{start_date\}/2024-01-01}
    sql=${sql//\{factor\}/factor_rw1}
    echo "$sql"
    printf 'SELECT COUNT(*) AS filas FROM (%s) AS q\nGO\n' "$sql" \
        | TDSVER=7.4 tsql -H 127.0.0.1 -p "$port" -U sa -P 'Bridge!Passw0rd' -o q
    echo
done
printf 'SELECT TOP 5 id_transaccion, fecha, pais, monto_total, cliente FROM KWP_Mexico.dbo.J_Ventas_MX ORDER BY id_transaccion\nGO\n' \
    | TDSVER=7.4 tsql -H 127.0.0.1 -p "$port" -U sa -P 'Bridge!Passw0rd' -o q

#!/usr/bin/env bash
# The demo, end to end on the bundled sandboxes (no SQL Server or Databricks
# account needed): starts the SQL Server sandbox with the demo data and the
# Databricks workspace double, checks both connections, shows the parameters,
# extracts the example queries for Colombia and Mexico into a Volume of the
# double and into a local directory, and has "Databricks" read the landed
# Parquet back.
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
# Databricks tokens and whose they are: the bridge's own (an admin), and the
# principals that act for the projects (config/permissions.yaml).
start "$work/dbx.log" target/debug/bridge-sandbox databricks --port 0 \
    --token dapi-demo=bridge@example.com --admin bridge@example.com \
    --token dapi-colombia=colombia-etl@example.com --token dapi-mexico=mexico-etl@example.com \
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
echo; echo "\$ sql-databricks-bridge show-params --country Colombia --query ventas"
$bridge show-params --config-path config --country Colombia --query ventas

out=demo-out
rm -rf "$out"
for country in Colombia Mexico; do
    echo; echo "\$ sql-databricks-bridge extract --country $country --destination /Volumes/main/demo/landing --overwrite"
    $bridge extract --queries-path queries --config-path config --country "$country" \
        --destination /Volumes/main/demo/landing --overwrite 2>/dev/null
    echo; echo "\$ sql-databricks-bridge extract --country $country --destination ./$out"
    $bridge extract --queries-path queries --config-path config --country "$country" \
        --destination "./$out" 2>/dev/null
done

echo; echo "== what Databricks sees in the Volume: each output's _manifest.json names its complete run;"
echo "   read_files reads that run (Files API, then the SQL Statement Execution API):"
.venv/bin/python - "$dbx_url" <<'PY'
import json, sys, urllib.request
url = sys.argv[1]
auth = {"Authorization": "Bearer dapi-demo"}
for country in ("Colombia", "Mexico"):
    for q in ("ventas", "productos"):
        out = f"/Volumes/main/demo/landing/{country}/{q}"
        manifest = json.load(urllib.request.urlopen(urllib.request.Request(
            url + "/api/2.0/fs/files" + out + "/_manifest.json", headers=auth)))
        body = json.dumps({"warehouse_id": "5a4d3c2b1a000001", "wait_timeout": "30s", "statement":
            f"SELECT count(*) FROM read_files('{manifest['location']}')"}).encode()
        req = urllib.request.Request(url + "/api/2.0/sql/statements", data=body, method="POST",
            headers={**auth, "Content-Type": "application/json"})
        r = json.load(urllib.request.urlopen(req))
        print(f"  {out} (run {manifest['run_id']}): {r['result']['data_array'][0][0]} rows ({r['status']['state']})")
PY
echo; echo "== local output:"
find "$out" -type f | sort | sed 's/^/  /'
echo; echo "== reverse sync: Colombia's Databricks principal inserts an event (INSERT INTO bridge.events.bridge_events ...),"
echo "   and another with requested_by = proyecto-mexico, which it does not act for"
.venv/bin/python - "$dbx_url" <<'PY'
import json, sys, urllib.request
url = sys.argv[1]
cols = "array('panel_id', 'country', 'period', 'household_id', 'weight', 'spend', 'is_active', 'updated_at')"
for who in ("proyecto-colombia", "proyecto-mexico"):
    body = json.dumps({"warehouse_id": "5a4d3c2b1a000001", "wait_timeout": "30s", "statement":
        "INSERT INTO bridge.events.bridge_events (event_id, operation, source_table, target_table, "
        "primary_keys, columns, requested_by, status, created_at) VALUES (uuid(), 'INSERT', "
        f"'main.demo.calibrated_panel', 'KWP_Colombia.dbo.CalibratedPanel', array('panel_id'), {cols}, "
        f"'{who}', 'pending', current_timestamp())"}).encode()
    req = urllib.request.Request(url + "/api/2.0/sql/statements", data=body, method="POST",
        headers={"Authorization": "Bearer dapi-colombia", "Content-Type": "application/json"})
    print(f"  as colombia-etl@example.com, requested_by {who}: {json.load(urllib.request.urlopen(req))['status']['state']}")
PY
echo "\$ sql-databricks-bridge sync run-once"
$bridge sync run-once --audit-log "$work/audit.jsonl" 2>/dev/null || true
.venv/bin/python - "$dbx_url" "$port" <<'PY'
import json, sys, urllib.request, pytds
url, port = sys.argv[1], int(sys.argv[2])
body = json.dumps({"warehouse_id": "5a4d3c2b1a000001", "wait_timeout": "30s", "statement":
    "SELECT operation, target_table, requested_by, status, rows_expected, rows_affected, error_message "
    "FROM bridge.events.bridge_events ORDER BY requested_by"}).encode()
req = urllib.request.Request(url + "/api/2.0/sql/statements", data=body, method="POST",
    headers={"Authorization": "Bearer dapi-demo", "Content-Type": "application/json"})
for row in json.load(urllib.request.urlopen(req))["result"]["data_array"]:
    print("  event in Databricks: {} into {} for {}: {} ({} rows read, {} affected){}".format(
        *row[:6], f"\n    {row[6]}" if row[6] else ""))
with pytds.connect("127.0.0.1", port=port, user="sa", password="Bridge!Passw0rd", database="KWP_Colombia") as c:
    cur = c.cursor()
    cur.execute("SELECT panel_id, country, period, weight, spend FROM dbo.CalibratedPanel ORDER BY panel_id")
    for r in cur.fetchall():
        print("  SQL Server KWP_Colombia.dbo.CalibratedPanel:", r)
PY

echo; echo "== the REST API: sql-databricks-bridge serve, then the deck's curl calls"
$bridge serve --port 0 --jobs-db "$work/jobs.sqlite" --audit-log "$work/audit.jsonl" --sync-interval 1 \
    >"$work/serve.out" 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q '^listening on' "$work/serve.out" && break; sleep 0.1; done
api=$(sed -n 's/^listening on //p' "$work/serve.out")
[ -n "$api" ] || { cat "$work/serve.log"; exit 1; }
echo "\$ curl -X POST $api/extract ... (country Colombia, destination /Volumes/main/demo/landing)"
job=$(curl -sf -X POST "$api/extract" -H "Authorization: Bearer demo-colombia-token" \
    -H "Content-Type: application/json" \
    -d '{"queries_path": "./queries", "config_path": "./config", "country": "Colombia",
         "destination": "/Volumes/main/demo/landing", "overwrite": true}')
echo "  $job"
id=$(sed -n 's/.*"job_id":"\([^"]*\)".*/\1/p' <<<"$job")
for _ in $(seq 1 100); do
    status=$(curl -sf "$api/jobs/$id" -H "Authorization: Bearer demo-colombia-token")
    grep -q '"state":"\(queued\|running\)"' <<<"$status" || break
    sleep 0.2
done
echo "\$ curl $api/jobs/$id"
.venv/bin/python - "$status" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
print(f"  state={j['state']} rows={j['rows']} files={j['files']}")
for q in j["queries"]:
    print(f"    {q['query']}: {q['state']}, {q['rows']} rows -> {q['output']}")
PY
echo "\$ curl $api/jobs/$id with Mexico's token -> $(curl -s -o /dev/null -w '%{http_code}' "$api/jobs/$id" -H "Authorization: Bearer demo-mexico-token") (a token sees only its own jobs)"
denied=$(curl -s -X POST "$api/extract" -H "Authorization: Bearer demo-colombia-token" \
    -H "Content-Type: application/json" \
    -d '{"queries_path": "./queries", "config_path": "./config", "country": "Mexico",
         "queries": ["productos"], "destination": "/Volumes/main/demo/landing", "overwrite": true}')
echo "\$ curl -X POST $api/extract ... (Colombia's token, country Mexico) -> $(sed -n 's/.*"message":"\([^"]*\)".*/\1/p' <<<"$denied")"
echo "\$ curl -X POST $api/sync/events ... (UPSERT main.demo.calibrated_panel into KWP_Colombia.dbo.CalibratedPanel)"
ev=$(curl -sf -X POST "$api/sync/events" -H "Authorization: Bearer demo-colombia-token" \
    -H "Content-Type: application/json" \
    -d '{"operation": "UPSERT", "source_table": "main.demo.calibrated_panel",
         "target_table": "KWP_Colombia.dbo.CalibratedPanel", "primary_keys": ["panel_id"],
         "columns": ["panel_id", "country", "period", "household_id", "weight", "spend", "is_active", "updated_at"]}')
eid=$(sed -n 's/.*"event_id":"\([^"]*\)".*/\1/p' <<<"$ev")
for _ in $(seq 1 100); do
    st=$(curl -sf "$api/sync/events/$eid" -H "Authorization: Bearer demo-colombia-token")
    grep -q '"status":"\(pending\|processing\)"' <<<"$st" || break
    sleep 0.2
done
echo "\$ curl $api/sync/events/$eid"
.venv/bin/python - "$st" <<'PY'
import json, sys
e = json.loads(sys.argv[1])
print(f"  status={e['status']} rows_expected={e['rows_expected']} rows_affected={e['rows_affected']} error={e['error_message']}")
PY
echo "  audit trail: $(wc -l <"$work/audit.jsonl") JSON lines; Swagger UI at $api/docs"

echo; echo "Done. Parquet files are in ./$out/<country>/<query>/ (with _manifest.json)."

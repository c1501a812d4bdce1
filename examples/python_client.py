#!/usr/bin/env python3
"""The deck's flow with the Python client, against a running bridge server.

    pip install ./client/python
    sql-databricks-bridge serve --port 8000 &
    BRIDGE_URL=http://localhost:8000 BRIDGE_TOKEN=demo-colombia-token \\
        python examples/python_client.py --destination /Volumes/main/demo/landing --overwrite \\
            --source-table main.demo.calibrated_panel --target-table KWP_Colombia.dbo.CalibratedPanel \\
            --operation UPSERT --primary-key panel_id --column panel_id --column country ...

1. checks the server is ready;
2. extracts a country's queries into a Unity Catalog Volume and follows the
   job's state until it finishes (printing each state);
3. submits a sync event (Databricks table -> SQL Server table) and follows it;
4. lists the latest failed sync events.

Exits 0 when the job succeeded and the event completed, 1 when either failed,
2 on an API error (printed with its status, code and details).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from sql_databricks_bridge.sdk import BridgeClient, BridgeError


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=os.environ.get("BRIDGE_URL", "http://localhost:8000"),
                   help="the server (env BRIDGE_URL)")
    p.add_argument("--queries-path", default="./queries")
    p.add_argument("--config-path", default="./config")
    p.add_argument("--country", default="Colombia")
    p.add_argument("--destination", default=os.environ.get("BRIDGE_DESTINATION", "/Volumes/catalog/schema/volume"),
                   help="a Unity Catalog Volume path (env BRIDGE_DESTINATION)")
    p.add_argument("--overwrite", action="store_true", help="replace earlier output")
    p.add_argument("--operation", default="INSERT", choices=["INSERT", "UPDATE", "DELETE", "UPSERT"])
    p.add_argument("--source-table", default="catalog.schema.source_table")
    p.add_argument("--target-table", default="dbo.target_table")
    p.add_argument("--primary-key", action="append", dest="primary_keys", help="repeat for several (default: id)")
    p.add_argument("--column", action="append", dest="columns", help="copy only these columns (repeat)")
    p.add_argument("--poll-interval", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=600.0)
    return p.parse_args()


def main() -> int:
    args = parse_args()
    token = os.environ.get("BRIDGE_TOKEN")
    if not token:
        print("set BRIDGE_TOKEN to a token of the server's permissions.yaml", file=sys.stderr)
        return 2

    with BridgeClient(base_url=args.url, token=token) as client:
        ready = client.health_ready()
        print(f"server {args.url}: {ready.status} "
              f"(sqlserver {'ok' if ready.sqlserver.ok else 'FAILED'}, "
              f"databricks {'ok' if ready.databricks.ok else 'FAILED'})")

        # Extraction, as on the deck.
        job = client.extract(queries_path=args.queries_path, config_path=args.config_path,
                             country=args.country, destination=args.destination, overwrite=args.overwrite)
        print(f"job {job.job_id} submitted ({args.country} -> {args.destination})")
        deadline = time.monotonic() + args.timeout
        last = None
        while True:
            status = client.get_job_status(job.job_id)
            if status.state != last:
                print(f"job {job.job_id} state: {status.state}")
                last = status.state
            if status.state not in ("queued", "running") or time.monotonic() > deadline:
                break
            time.sleep(args.poll_interval)
        for q in status.queries:
            print(f"  {q.query}: {q.state}, {q.rows} rows, {len(q.files)} file(s) -> {q.output or q.error}")
        if status.error:
            print(f"  error: {status.error}")

        # Reverse sync, as on the deck.
        event = client.submit_sync_event(operation=args.operation, source_table=args.source_table,
                                         target_table=args.target_table,
                                         primary_keys=args.primary_keys or ["id"], columns=args.columns)
        print(f"sync event {event.event_id} submitted ({args.operation} {args.source_table} -> {args.target_table})")
        last = None
        while True:
            ev = client.get_sync_event(event.event_id)
            if ev.status != last:
                print(f"sync event {event.event_id} status: {ev.status}")
                last = ev.status
            if ev.status in ("completed", "failed") or time.monotonic() > deadline:
                break
            time.sleep(args.poll_interval)
        print(f"  {ev.status} rows_expected={ev.rows_expected} rows_affected={ev.rows_affected}"
              + (f" error={ev.error_message}" if ev.error_message else ""))

        failed = client.list_sync_events(status="failed", limit=10)
        print(f"failed sync events (latest {len(failed)}):")
        for e in failed:
            print(f"  {e.event_id} {e.error_message}")

    return 0 if status.state == "succeeded" and ev.status == "completed" else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BridgeError as e:
        print(f"error: {e}" + (f" {e.details}" if e.details else ""), file=sys.stderr)
        sys.exit(2)

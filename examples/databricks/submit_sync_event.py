"""Submits a sync event to the bridge's REST API and waits for it.

Runs as a Databricks job task (see databricks.yml: the token comes from a
secret scope) or anywhere with `--token`:

    python examples/databricks/submit_sync_event.py --bridge-url http://localhost:8000 \\
        --token demo-colombia-token
"""

import argparse
import sys
import time

from sql_databricks_bridge.sdk import BridgeClient

COLUMNS = ["panel_id", "country", "period", "household_id", "weight", "spend", "is_active", "updated_at"]


def token_from(args):
    if args.token:
        return args.token
    # Inside a Databricks job: the token lives in a secret scope.
    from databricks.sdk.runtime import dbutils  # noqa: PLC0415

    return dbutils.secrets.get(args.secret_scope, args.secret_key)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bridge-url", required=True)
    p.add_argument("--token")
    p.add_argument("--secret-scope", default="bridge")
    p.add_argument("--secret-key", default="token")
    p.add_argument("--source-table", default="main.demo.calibrated_panel")
    p.add_argument("--target-table", default="KWP_Colombia.dbo.CalibratedPanel")
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args(argv)

    client = BridgeClient(base_url=args.bridge_url, token=token_from(args))
    event = client.submit_sync_event(
        operation="UPSERT",
        source_table=args.source_table,
        target_table=args.target_table,
        primary_keys=["panel_id"],
        columns=COLUMNS,
    )
    print(f"submitted {event.event_id}")
    deadline = time.monotonic() + args.timeout
    status = client.get_sync_event(event.event_id)
    while str(status.status) in ("pending", "processing") and time.monotonic() < deadline:
        time.sleep(1)
        status = client.get_sync_event(event.event_id)
    print(f"status {status.status}, rows affected {status.rows_affected}")
    if str(status.status) != "completed":
        print(f"error: {status.error_message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

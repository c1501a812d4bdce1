"""Entry points of the wheel for a Databricks ``python_wheel_task`` (the deck's
``databricks.yml``): the BridgeOperator run from job parameters.

::

    python_wheel_task:
      package_name: sql_databricks_bridge
      entry_point: sync_to_sql_server
      named_parameters:
        source_table: catalog.schema.calibrated_panel
        target_table: dbo.CalibrationResults
        operation: INSERT
        primary_keys: id_hogar,periodo
        sync_id: "{{job.id}}-{{job.run_id}}"

SQL Server and Databricks settings come from the environment, as for
:class:`~sql_databricks_bridge.sdk.databricks.BridgeOperator` — on a cluster,
``spark_env_vars`` with secret references (``SQLSERVER_PASSWORD:
"{{secrets/scope/sql_pass}}"``) keep the credentials out of the job's
parameters — or from ``--sql-server-host`` and friends. Exit status 0 when
the sync was applied (or had been, for the same ``sync_id``), 1 when it was
refused or failed, 2 on bad arguments; one JSON line with the result on
stdout either way.
"""

from __future__ import annotations

import argparse
import json
import sys

from .databricks import BridgeError, BridgeOperator


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sync_to_sql_server",
        description="Apply a Databricks table to a SQL Server table (INSERT, UPDATE, DELETE or UPSERT) "
        "in one transaction, with the bridge's checks and ledger.",
    )
    p.add_argument("--source_table", "--source-table", required=True, help="catalog.schema.table in Databricks")
    p.add_argument("--target_table", "--target-table", required=True, help="[database.]schema.table in SQL Server")
    p.add_argument("--operation", default="INSERT", choices=["INSERT", "UPDATE", "DELETE", "UPSERT"],
                   type=str.upper)
    p.add_argument("--primary_keys", "--primary-keys", default="",
                   help="comma-separated key columns (UPDATE, DELETE, UPSERT)")
    p.add_argument("--max_delete_rows", "--max-delete-rows", type=int,
                   help="refuse a DELETE of more rows than this (default 10,000)")
    p.add_argument("--sync_id", "--sync-id",
                   help="names this sync: the same id again writes nothing (pass the job's run id)")
    p.add_argument("--sql_server_host", "--sql-server-host", help="default: SQLSERVER_HOST")
    p.add_argument("--sql_server_database", "--sql-server-database", help="default: SQLSERVER_DATABASE")
    p.add_argument("--warehouse_id", "--warehouse-id", help="default: DATABRICKS_WAREHOUSE_ID")
    return p


def sync_to_sql_server(argv: list[str] | None = None) -> int:
    """``sync_to_sql_server`` console script (the wheel task's entry point)."""
    args = _parser().parse_args(argv)
    keys = [k.strip() for k in args.primary_keys.split(",") if k.strip()]
    try:
        op = BridgeOperator(
            sql_server_host=args.sql_server_host,
            sql_server_database=args.sql_server_database,
            warehouse_id=args.warehouse_id,
        )
        r = op.sync_to_sql_server(
            args.source_table, args.target_table, args.operation, keys or None,
            args.max_delete_rows, sync_id=args.sync_id,
        )
    except BridgeError as e:
        print(json.dumps({"status": "failed", "kind": e.kind, "message": e.message}), flush=True)
        print(f"sync_to_sql_server: {e.message}", file=sys.stderr)
        return 1
    print(json.dumps({
        "status": "applied", "rows_read": r.rows_read, "rows_affected": r.rows_affected,
        "discrepancy": r.discrepancy, "from_ledger": r.from_ledger,
    }), flush=True)
    return 0


def main() -> None:  # pragma: no cover - console script wrapper
    sys.exit(sync_to_sql_server())

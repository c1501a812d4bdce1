"""The bridge in a Databricks notebook or job, without a server.

::

    from sql_databricks_bridge.sdk.databricks import BridgeOperator

    operator = BridgeOperator(sql_server_host="server.database.windows.net",
                              sql_server_database="KWP_Colombia",
                              sql_server_user=dbutils.secrets.get("scope", "sql_user"),
                              sql_server_password=dbutils.secrets.get("scope", "sql_pass"))
    result = operator.sync_to_sql_server(source_table="catalog.schema.calibrated_panel",
                                         target_table="dbo.CalibrationResults", operation="INSERT",
                                         primary_keys=["id_hogar", "periodo"])
    print(f"Filas sincronizadas: {result.rows_affected}")
    df = operator.extract_to_spark(query="SELECT id_transaccion, fecha, monto_total FROM dbo.Ventas")
    df.write.format("delta").saveAsTable("catalog.schema.ventas_extract")

Every call runs the bridge's own Rust code (the native module
``sql_databricks_bridge._native``, built from the same library as the
``sql-databricks-bridge`` binary): the same typed extraction, the same
Parquet mapping, the same guarded, exactly-once sync. This module only
turns its results into pyarrow, polars and Spark objects.

Calls release the GIL while they run and stop on Ctrl-C (the query is
cancelled, half-written output removed, ``KeyboardInterrupt`` raised).
Failures raise :class:`BridgeError` subclasses carrying ``kind`` (a stable
code such as ``"sync.refused"`` or ``"sqlserver.login"``) and ``message``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _native
from .._native import (
    ArgumentError,
    BridgeError,
    DatabricksError,
    ExtractError,
    SettingsError,
    SqlServerError,
    SyncError,
)

if TYPE_CHECKING:
    import polars
    import pyarrow
    import pyspark.sql

__all__ = [
    "SPARK_ARROW_LIMIT",
    "ArgumentError",
    "BridgeError",
    "BridgeOperator",
    "DatabricksError",
    "ExtractError",
    "ExtractResult",
    "SettingsError",
    "SqlServerError",
    "SyncError",
    "SyncResult",
]

#: Where :meth:`BridgeOperator.extract_to_spark` draws the line: a result
#: whose Arrow buffers stay within this many bytes (64 MiB) goes to Spark
#: from the driver's memory (``createDataFrame`` of an Arrow table); a larger
#: one is written as Parquet parts that ``spark.read.parquet`` reads on the
#: executors. 64 MiB is well under Spark's default driver result and
#: Arrow batch limits and small enough not to strain a driver that also runs
#: the notebook.
SPARK_ARROW_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class SyncResult:
    """What :meth:`BridgeOperator.sync_to_sql_server` did."""

    #: Rows read from the Databricks source table.
    rows_read: int
    #: Rows SQL Server reports written (inserted, updated or deleted).
    rows_affected: int
    #: Why the two differ, when they differ in a way the operation does not
    #: explain; ``None`` when the counts agree.
    discrepancy: str | None
    #: True when this exact sync had already been applied: the counts are the
    #: first application's, read from the target database's ledger, and
    #: nothing was written again.
    from_ledger: bool


@dataclass(frozen=True)
class ExtractResult:
    """Where :meth:`BridgeOperator.extract_to_parquet` wrote, and how much."""

    #: The output directory: Parquet parts and ``_manifest.json``.
    path: str
    rows_read: int
    rows_written: int
    bytes: int
    #: Part file names, in order.
    parts: list[str]
    seconds: float
    #: Why rows read and written differ; ``None`` when they agree.
    discrepancy: str | None
    #: Where the column types came from (``"describe"`` or ``"result"``).
    types_from: str


def _env_or(value: Any, *names: str) -> Any:
    if value is not None:
        return value
    for n in names:
        if os.environ.get(n):
            return os.environ[n]
    return None


class BridgeOperator:
    """Extraction from SQL Server and sync from Databricks, in-process.

    Arguments not given are read from the environment as the
    ``sql-databricks-bridge`` binary reads them: ``SQLSERVER_HOST``,
    ``SQLSERVER_PORT``, ``SQLSERVER_DATABASE``, ``SQLSERVER_USERNAME``,
    ``SQLSERVER_PASSWORD``, ``SQLSERVER_ENCRYPT``,
    ``SQLSERVER_TRUST_SERVER_CERTIFICATE``, ``SQLSERVER_CONNECTION_STRING``;
    Databricks as the Databricks SDKs find it: ``DATABRICKS_HOST`` with
    ``DATABRICKS_TOKEN``, or OAuth machine-to-machine
    (``DATABRICKS_CLIENT_ID``/``DATABRICKS_CLIENT_SECRET``), or a profile of
    ``~/.databrickscfg`` (``DATABRICKS_CONFIG_PROFILE``). In a Databricks job
    or notebook without those variables, the workspace URL and the run's own
    token are taken from the notebook context when ``dbutils`` is there.
    ``warehouse_id`` (or ``DATABRICKS_WAREHOUSE_ID``) names the SQL warehouse
    sync reads through; without it the workspace's only running warehouse.

    ``table_lock=True`` bulk-loads syncs under a table lock (TABLOCK):
    faster, but other writers of the target table, and readers without
    snapshot isolation, wait until the sync commits.

    ``max_connections=N`` caps the connections streaming a read, a change
    batch or a Spark task's stage at once — across every process using the
    same ``connection_group`` (default ``"default"``) on the same server and
    database: each takes one of N slots (SQL Server application locks owned
    by its session, freed if the process dies) and closes its connection
    when done; a task finding none free waits without a connection, up to
    ``connection_wait`` seconds (default 3600), then fails with a
    ``SqlServerError`` of kind ``sqlserver.no_slot``.

    ``sql_server_host`` may carry a port (``"host,1433"`` or
    ``"host:1433"``). ``connection_string`` (ADO.NET form) stands alone:
    no ``SQLSERVER_*`` variable is laid over it.

    ``sql_server_access_token`` (or ``SQLSERVER_ACCESS_TOKEN``) signs in to
    SQL Server with a Microsoft Entra ID access token for
    ``https://database.windows.net/`` instead of a user and password; it is
    not refreshed, so it must outlive the operator's use. An expired token,
    or one for another resource, is a ``SqlServerError`` of kind
    ``sqlserver.access_token``.

    ``sql_server_authentication`` (or ``SQLSERVER_AUTHENTICATION``) names a
    Microsoft Entra ID method by its ADO.NET name — the operator then gets
    and refreshes its own tokens: ``"ActiveDirectoryServicePrincipal"``
    (``sql_server_user`` the application's client id, ``sql_server_password``
    its secret or the path of a PEM certificate with its key),
    ``"ActiveDirectoryManagedIdentity"`` (``sql_server_user`` a user-assigned
    identity's client id, or none for the system-assigned one),
    ``"ActiveDirectoryWorkloadIdentity"`` or ``"ActiveDirectoryDefault"``;
    the tenant and authority come from ``AZURE_TENANT_ID`` and
    ``AZURE_AUTHORITY_HOST``. A token Entra ID refuses to give is a
    ``SqlServerError`` of kind ``sqlserver.entra_token``.

    ``sql_server_credential`` is a credential the program already holds —
    anything with Azure Identity's ``get_token(scope)`` — asked for a token
    for each new connection: on Databricks, the job's own identity through a
    Unity Catalog service credential,
    ``dbutils.credentials.getServiceCredentialsProvider("<name>")``; or any
    ``azure.identity`` credential.
    """

    def __init__(
        self,
        sql_server_host: str | None = None,
        sql_server_database: str | None = None,
        sql_server_user: str | None = None,
        sql_server_password: str | None = None,
        *,
        sql_server_port: int | None = None,
        connection_string: str | None = None,
        sql_server_access_token: str | None = None,
        sql_server_authentication: str | None = None,
        sql_server_credential: object | None = None,
        encrypt: str | bool | None = None,
        trust_server_certificate: bool | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        databricks_host: str | None = None,
        databricks_token: str | None = None,
        databricks_client_id: str | None = None,
        databricks_client_secret: str | None = None,
        databricks_profile: str | None = None,
        warehouse_id: str | None = None,
        max_delete_rows: int | None = None,
        table_lock: bool = False,
        max_connections: int | None = None,
        connection_group: str | None = None,
        connection_wait: float | None = None,
    ) -> None:
        if isinstance(encrypt, bool):
            encrypt = "true" if encrypt else "false"
        if databricks_host is None and databricks_token is None and not _env_or(
            None, "DATABRICKS_HOST", "DATABRICKS_CONFIG_PROFILE"
        ):
            databricks_host, databricks_token = _notebook_context()
        self._native = _native.Operator(
            sql_server_host,
            sql_server_database,
            sql_server_user,
            sql_server_password,
            sql_server_port=sql_server_port,
            connection_string=connection_string,
            sql_server_access_token=sql_server_access_token,
            sql_server_authentication=sql_server_authentication,
            sql_server_credential=sql_server_credential,
            encrypt=encrypt,
            trust_server_certificate=trust_server_certificate,
            ca_file=os.fspath(ca_file) if ca_file is not None else None,
            databricks_host=databricks_host,
            databricks_token=databricks_token,
            databricks_client_id=databricks_client_id,
            databricks_client_secret=databricks_client_secret,
            databricks_profile=databricks_profile,
            warehouse_id=warehouse_id,
            max_delete_rows=max_delete_rows,
            table_lock=table_lock,
            max_connections=max_connections,
            connection_group=connection_group,
            connection_wait=connection_wait,
        )

    # -- Databricks -> SQL Server -------------------------------------------------

    def sync_to_sql_server(
        self,
        source_table: str,
        target_table: str,
        operation: str = "INSERT",
        primary_keys: list[str] | None = None,
        max_delete_rows: int | None = None,
        *,
        sync_id: str | None = None,
    ) -> SyncResult:
        """Applies a Databricks table to a SQL Server table, in one transaction.

        ``operation`` is ``INSERT``, ``UPDATE``, ``DELETE`` or ``UPSERT``;
        the last three need ``primary_keys``. ``DELETE`` refuses to remove
        more than ``max_delete_rows`` rows (default: the operator's, else
        10,000) and nothing is written then. Retries inside the call never
        write twice.

        Each call is a new sync, unless ``sync_id`` names it (1-90 characters
        of ``A-Z a-z 0-9 . _ : -``; in a job, for example, the job's run id):
        the target database's ledger records it, and the same ``sync_id``
        again — a repaired or retried job run — writes nothing and returns
        the first application's counts (``from_ledger``).
        """
        out = self._native.sync_to_sql_server(
            source_table, target_table, operation, primary_keys, max_delete_rows, sync_id
        )
        return SyncResult(**out)

    # -- SQL Server -> Arrow, polars, Spark, Parquet -----------------------------------

    def extract_to_arrow(self, query: str) -> pyarrow.Table:
        """Runs ``query``; its rows as a pyarrow Table.

        The types are the Parquet extraction's (``decimal(p,s)`` and
        ``money`` as exact decimals, ``datetimeoffset`` as UTC timestamps,
        ``uniqueidentifier`` as its canonical string, ...). The buffers pass
        from Rust to pyarrow through the Arrow C stream interface, without a
        copy. The whole result is held in memory.
        """
        import pyarrow as pa

        return pa.table(self._native.extract_arrow(query))

    def extract_to_polars(self, query: str) -> polars.DataFrame:
        """Runs ``query``; its rows as a polars DataFrame (types as in
        :meth:`extract_to_arrow`; decimals stay ``pl.Decimal``)."""
        import polars as pl

        return pl.DataFrame(self._native.extract_arrow(query))

    def extract_to_parquet(
        self, query: str, path: str | os.PathLike[str], overwrite: bool = False
    ) -> ExtractResult:
        """Runs ``query`` into Parquet parts and ``_manifest.json`` in the
        directory ``path`` (a local path or a ``/Volumes/...`` path), exactly
        as ``sql-databricks-bridge extract`` writes them."""
        out = self._native.extract_parquet(query, os.fspath(path), overwrite)
        return ExtractResult(**out)

    def extract_to_spark(
        self,
        query: str,
        spark: pyspark.sql.SparkSession | None = None,
        *,
        staging_path: str | os.PathLike[str] | None = None,
        arrow_limit: int = SPARK_ARROW_LIMIT,
    ) -> pyspark.sql.DataFrame:
        """Runs ``query``; its rows as a Spark DataFrame with the Parquet
        extraction's types.

        A result within ``arrow_limit`` bytes of Arrow buffers
        (:data:`SPARK_ARROW_LIMIT`) is handed to Spark from memory. A larger
        one is written, while it streams, as Parquet parts into a new
        directory under ``staging_path`` and returned as
        ``spark.read.parquet(...)``, so the executors read it in parallel.
        On a cluster ``staging_path`` must be a path every node reads: a
        Unity Catalog Volume (``/Volumes/catalog/schema/volume/tmp``); the
        default, ``$BRIDGE_STAGING_PATH`` or else a local temporary
        directory removed at exit, suits a local SparkSession only. The
        parts stay there while the DataFrame is used: remove them after the
        DataFrame is written elsewhere.
        """
        if spark is None:
            from pyspark.sql import SparkSession

            spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        base = _env_or(
            os.fspath(staging_path) if staging_path is not None else None, "BRIDGE_STAGING_PATH"
        )
        if base is None:
            base = _local_staging()
        target = Path(base) / f"bridge-extract-{uuid.uuid4().hex}"
        where, value = self._native.extract_spilling(query, str(target), arrow_limit)
        if where == "files":
            return spark.read.parquet(str(target))
        import pyarrow as pa

        table = pa.table(value)
        return _spark_from_arrow(spark, table)


def _spark_from_arrow(spark: Any, table: pyarrow.Table) -> Any:
    """A Spark DataFrame of an Arrow table, with the schema Spark gives the
    same columns read from Parquet (the large path's): the same types, and
    every column nullable as Spark makes file sources, so a DataFrame's
    schema never depends on the size of the result."""
    from pyspark.sql.pandas.types import from_arrow_schema
    from pyspark.sql.types import StructField, StructType

    typed = from_arrow_schema(table.schema, prefer_timestamp_ntz=True)
    schema = StructType([StructField(f.name, f.dataType, True, f.metadata) for f in typed.fields])
    return spark.createDataFrame(table, schema=schema)


_LOCAL_STAGING: list[str] = []


def _local_staging() -> str:
    if not _LOCAL_STAGING:
        d = tempfile.mkdtemp(prefix="sql-databricks-bridge-")
        _LOCAL_STAGING.append(d)
        atexit.register(shutil.rmtree, d, True)
    return _LOCAL_STAGING[0]


def _notebook_context() -> tuple[str | None, str | None]:
    """The workspace URL and the run's API token from a Databricks notebook
    or job's context (``dbutils``), when running on Databricks; else
    ``(None, None)``. Databricks sets ``DATABRICKS_RUNTIME_VERSION`` on
    its clusters; elsewhere nothing is tried."""
    if not os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return None, None
    try:
        from databricks.sdk.runtime import dbutils  # type: ignore[import-not-found]

        ctx = dbutils.notebook.entry_point.getDbutils().notebook().getContext()
        host = ctx.apiUrl().getOrElse(None)
        token = ctx.apiToken().getOrElse(None)
        return host, token
    except Exception:  # noqa: BLE001  (not on Databricks, or no notebook context)
        return None, None

"""The deck's "SDK: Databricks Jobs" pages, as written: the BridgeOperator in
a Databricks notebook or job, with no bridge server.

On Databricks, install the wheel (`pip install sql-databricks-bridge`, or the
bundle's artifact) and run the two cells below in a notebook: `dbutils` and
`spark` are the notebook's. Here, off Databricks, they are stood in for:
`dbutils.secrets.get(scope, key)` reads the environment variable
`SCOPE_KEY` (SCOPE_SQL_USER, SCOPE_SQL_PASS), the host comes from
SQL_SERVER_HOST, and Databricks from DATABRICKS_HOST / DATABRICKS_TOKEN /
DATABRICKS_WAREHOUSE_ID, as the Databricks SDKs read them. With the bundled
sandboxes (see sandbox/README.md):

    SQL_SERVER_HOST=127.0.0.1,14330 SQLSERVER_TRUST_SERVER_CERTIFICATE=true \
    SCOPE_SQL_USER=sa 'SCOPE_SQL_PASS=Bridge!Passw0rd' \
    DATABRICKS_HOST=http://127.0.0.1:18080 DATABRICKS_TOKEN=dapi-test \
    python examples/databricks_operator.py

The tables are the deck's: dbo.Ventas and dbo.CalibrationResults in
KWP_Colombia, catalog.schema.calibrated_panel in Databricks.
"""

import os

ON_DATABRICKS = bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))

if not ON_DATABRICKS:

    class _Secrets:
        @staticmethod
        def get(scope: str, key: str) -> str:
            return os.environ[f"{scope}_{key}".upper()]

    class dbutils:  # noqa: N801  (the notebook's name)
        secrets = _Secrets

    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )

SQL_SERVER_HOST = os.environ.get("SQL_SERVER_HOST", "server.database.windows.net")

# -- the deck: "SDK: Databricks Jobs" ---------------------------------------------------

# En un notebook de Databricks
from sql_databricks_bridge.sdk.databricks import BridgeOperator  # noqa: E402

# Inicializar operador (usa credenciales del job context)
operator = BridgeOperator(
    sql_server_host=SQL_SERVER_HOST,
    sql_server_database="KWP_Colombia",
    sql_server_user=dbutils.secrets.get("scope", "sql_user"),
    sql_server_password=dbutils.secrets.get("scope", "sql_pass"),
)

# Sincronizar datos desde tabla Databricks a SQL Server
result = operator.sync_to_sql_server(
    source_table="catalog.schema.calibrated_panel",
    target_table="dbo.CalibrationResults",
    operation="INSERT",
    primary_keys=["id_hogar", "periodo"],
)

print(f"Filas sincronizadas: {result.rows_affected}")

# -- the deck: "SDK: Extracción a Spark" ----------------------------------------------------

# Extraer de SQL Server a DataFrame de Spark
df = operator.extract_to_spark(
    query="""
        SELECT id_transaccion, fecha, monto_total
        FROM dbo.Ventas
        WHERE fecha >= '2024-01-01'
    """
)

# Guardar como tabla Delta (off Databricks: a Parquet table of the local
# session's catalog, as a plain SparkSession has no Delta)
if ON_DATABRICKS:
    df.write.format("delta").saveAsTable("catalog.schema.ventas_extract")
else:
    df.write.mode("overwrite").format("parquet").saveAsTable("ventas_extract")
    print(f"ventas_extract: {spark.table('ventas_extract').count()} filas")

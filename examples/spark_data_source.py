"""The bridge as a Spark data source, notebook-style: a read split across
executors, an exactly-once write into SQL Server, and a Change Tracking stream
MERGEd into a copy.

On Databricks (DBR 15.4 LTS and later, or serverless), install the wheel on
the cluster and run the cells in a notebook: `spark` is the notebook's, and
the copy is a Delta table. The SQL Server login is in the cluster's
environment as secret references (SQLSERVER_USERNAME and SQLSERVER_PASSWORD =
{{secrets/<scope>/<key>}}, as the bundle's job cluster sets them): every
executor reads it there, so no option or partition carries it. Off
Databricks the session is a local one, the login comes from the same
environment variables, and the copy is a Parquet directory kept with
DataFrame operations (a plain SparkSession has no Delta). With the bundled
SQL Server sandbox (its KWP_Colombia database, Change Tracking on for
dbo.Ventas):

    SQL_SERVER_HOST=127.0.0.1,14330 SQLSERVER_TRUST_SERVER_CERTIFICATE=true \\
    SQLSERVER_USERNAME=sa 'SQLSERVER_PASSWORD=Bridge!Passw0rd' \\
    python examples/spark_data_source.py
"""

import os
import sys
import uuid
from decimal import Decimal
from pathlib import Path

ON_DATABRICKS = bool(os.environ.get("DATABRICKS_RUNTIME_VERSION"))

if ON_DATABRICKS:
    # A notebook has it already; a job's Python file (the bundle's
    # spark_python_task) makes it so.
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
else:
    from pyspark.sql import SparkSession

    # Executors run this interpreter, which has the wheel.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )

# -- 1. The source ------------------------------------------------------------------------
# With the wheel installed (a cluster library or %pip install), Spark registers
# "sqlserver_bridge" by itself: it imports the wheel's pyspark_sqlserver_bridge module
# and takes its DefaultSource. register(spark) is for a wheel on the driver's path only;
# it does no harm where the source is already there.

from sql_databricks_bridge.spark import register

register(spark)

# Where to connect; every executor adds the login from its own environment
# (SQLSERVER_USERNAME / SQLSERVER_PASSWORD, secret references on the cluster):
# no credential travels with the options or the partitions.
connection = {
    "sql_server_host": os.environ.get("SQL_SERVER_HOST", "sqlserver.example.com,1433"),
    "sql_server_database": "KWP_Colombia",
}

# -- 2. Read, split across executors ------------------------------------------------------

ventas = (
    spark.read.format("sqlserver_bridge").options(**connection)
    .option("query", "SELECT id_transaccion, fecha, monto_total FROM dbo.Ventas")
    .option("partition_on", "id_transaccion").option("partitions", 4)
    .load()
)
print(f"ventas: {ventas.count()} filas en {ventas.rdd.getNumPartitions()} particiones")

# -- 3. Write into SQL Server, exactly once -----------------------------------------------

# In a job, the run's id (the bundle passes `--run-id {{job.run_id}}`): a repaired
# or re-run job writes nothing twice.
RUN_ID = (sys.argv[sys.argv.index("--run-id") + 1] if "--run-id" in sys.argv[:-1] else None) \
    or os.environ.get("RUN_ID") or f"notebook-{uuid.uuid4().hex[:12]}"
panel = spark.createDataFrame(
    [(1001, "2024-01", Decimal("1.250000")), (1002, "2024-01", Decimal("0.980000"))],
    "id_hogar int, periodo string, peso decimal(18,6)",
)
(
    panel.write.format("sqlserver_bridge").options(**connection)
    .option("table", "dbo.CalibrationResults")
    .option("operation", "UPSERT").option("primary_key", "id_hogar,periodo")
    .option("write_id", RUN_ID)
    .mode("append").save()
)
print(f"CalibrationResults: UPSERT {RUN_ID} aplicado")

# -- 4. Stream the changes of dbo.Ventas into a copy --------------------------------------

COLUMNS = ["id_transaccion", "fecha", "monto_total"]
WORK = Path(os.environ.get("EXAMPLE_WORK_DIR", "spark_data_source_work")).resolve()


def merge_into_copy(batch, batch_id: int) -> None:
    """One micro-batch applied by key: a deleted row removed, any other
    upserted. Each key appears once in a batch (its net change). A batch of
    "S" rows (on_expired=snapshot: Change Tracking cleaned up changes the
    stream had not read) is the whole table: it replaces the copy."""
    resnapshot = not batch.filter("_change_operation = 'S'").isEmpty()
    if ON_DATABRICKS:
        # Idempotent MERGE: a micro-batch replayed after a failure commits nothing twice
        # (https://docs.databricks.com/aws/en/structured-streaming/foreach.html).
        batch.sparkSession.conf.set("spark.databricks.delta.write.txnAppId", "ventas-changes")
        batch.sparkSession.conf.set("spark.databricks.delta.write.txnVersion", str(batch_id))
        batch.createOrReplaceTempView("cambios")
        # A re-snapshot also deletes the rows it lacks (deleted in the gap).
        gone = "WHEN NOT MATCHED BY SOURCE THEN DELETE" if resnapshot else ""
        batch.sparkSession.sql(f"""
            MERGE INTO catalog.schema.ventas_copia AS t USING cambios AS s
            ON t.id_transaccion = s.id_transaccion
            WHEN MATCHED AND s._change_operation = 'D' THEN DELETE
            WHEN MATCHED THEN UPDATE SET t.fecha = s.fecha, t.monto_total = s.monto_total
            WHEN NOT MATCHED AND s._change_operation <> 'D' THEN
              INSERT (id_transaccion, fecha, monto_total) VALUES (s.id_transaccion, s.fecha, s.monto_total)
            {gone}
        """)
    else:
        # The same MERGE with DataFrame operations: each batch writes the next
        # version of the copy (a replayed batch rewrites the same one).
        versions = sorted(WORK.glob("copia/v*"), key=lambda p: int(p.name[1:]))
        previous = [] if resnapshot else [v for v in versions if int(v.name[1:]) < batch_id]
        keys = batch.select("id_transaccion")
        upserts = batch.filter("_change_operation <> 'D'").select(*COLUMNS)
        if previous:
            kept = spark.read.parquet(str(previous[-1])).join(keys, "id_transaccion", "left_anti")
            upserts = kept.unionByName(upserts)
        upserts.write.mode("overwrite").parquet(str(WORK / "copia" / f"v{batch_id}"))


if ON_DATABRICKS:
    spark.sql("CREATE TABLE IF NOT EXISTS catalog.schema.ventas_copia "
              "(id_transaccion BIGINT, fecha TIMESTAMP_NTZ, monto_total DECIMAL(18,2))")

query = (
    spark.readStream.format("sqlserver_bridge").options(**connection)
    .option("table", "dbo.Ventas")          # Change Tracking enabled on it
    .option("on_expired", "snapshot")       # paused past the retention: re-snapshot, not stop
    .load()
    .writeStream.foreachBatch(merge_into_copy)
    .option("checkpointLocation", str(WORK / "checkpoint"))
    .trigger(availableNow=True)             # what changed since the last run, then stop
    .start()
)
query.awaitTermination()

if ON_DATABRICKS:
    copia = spark.table("catalog.schema.ventas_copia")
else:
    latest = max(WORK.glob("copia/v*"), key=lambda p: int(p.name[1:]))
    copia = spark.read.parquet(str(latest))
print(f"ventas_copia: {copia.count()} filas")

"""Registers the bridge's Spark data source by itself: Spark 4 looks up, in
the Python workers' path, every installed top-level module whose name starts
with ``pyspark_`` and registers its ``DefaultSource`` the first time a session
touches a Python data source (``pyspark/sql/worker/lookup_data_sources.py``;
SPARK-45917, https://github.com/apache/spark/pull/44504). With the
``sql-databricks-bridge`` wheel installed where the workers run,
``spark.read.format("sqlserver_bridge")`` works with no ``register(spark)``.

Nothing else lives here: the source is ``sql_databricks_bridge.spark``.
"""

from sql_databricks_bridge.spark import SqlServerBridgeDataSource as DefaultSource

__all__ = ["DefaultSource"]

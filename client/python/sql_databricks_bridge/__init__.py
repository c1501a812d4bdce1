"""Python client of the SQL-Databricks Bridge REST API.

* :mod:`sql_databricks_bridge.sdk` — the client to use: ``BridgeClient`` and
  ``AsyncBridgeClient`` (hand-written, thin).
* :mod:`sql_databricks_bridge._generated` — the low-level client generated from
  the server's openapi.json by ``client/python/regenerate.sh`` (never edited by hand).
"""

__version__ = "0.1.0"

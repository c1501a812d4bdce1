"""What the operator's test modules share: one local SparkSession per run
(a JVM starts once)."""

from __future__ import annotations

import os
import sys

import pytest


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from pyspark.sql import SparkSession

    # Python workers (the data source's planner and executors) run the
    # interpreter PYSPARK_PYTHON names: this venv's, which has the bridge.
    os.environ["PYSPARK_PYTHON"] = sys.executable

    s = (
        # local[2,4]: two cores, and a failed task is tried up to four
        # times, as a cluster retries it (plain local[2] never retries).
        SparkSession.builder.master("local[2,4]")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
        .appName("bridge-operator-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "2g")
        # Workers run this venv's python: the data source's executors import the bridge.
        .config("spark.pyspark.python", sys.executable)
        .getOrCreate()
    )
    yield s
    s.stop()

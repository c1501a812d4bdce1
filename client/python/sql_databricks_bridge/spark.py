"""The bridge as a Spark data source, on PySpark's Python Data Source API
(Spark 4, Databricks Runtime 15.4 LTS and serverless): reads split across
executors, each range streamed from SQL Server through the bridge's Rust core
as Arrow record batches.

Installed, the wheel registers the source by itself (its ``pyspark_sqlserver_bridge``
module, which Spark's lookup of ``pyspark_*`` modules finds); ``register(spark)``
does it explicitly, in one session::

    df = (spark.read.format("sqlserver_bridge")
          .option("query", "SELECT * FROM dbo.ventas")      # or name + country
          .option("partition_on", "id").option("partitions", 8)
          .option("sql_server_host", "sql.example.com,1433")
          .load())

On the driver the source reads the result's schema (the Parquet mapping's
exact types: decimals and money as decimals, datetimeoffset as UTC
timestamps, uniqueidentifier as text) without reading rows, and cuts the
ranges as ``sql-databricks-bridge extract`` does (``MIN``/``MAX`` of the
column, ``partitions`` ranges, NULLs in the first; a batch such as
``DECLARE ...; SELECT ...`` is one partition, its schema read from its first
row). Each partition carries its SQL only — never credentials: every
executor builds its own operator from its environment (``SQLSERVER_*``,
``AZURE_*``) and the options. On Databricks, put the credentials in the
cluster's environment variables as secret references
(``SQLSERVER_PASSWORD`` = ``{{secrets/<scope>/<key>}}``, resolved on every
node: https://docs.databricks.com/security/secrets/secrets-spark-conf-env-var.html);
a credential given as an option travels to the executors with the source's
options (Spark pickles them), so the environment is the better place.

Options: ``query`` (T-SQL), or ``name`` and ``country`` (a query of
``queries_dir``, default ``queries``, rendered with the parameters of
``config_dir``, default ``config``; its ``<name>.yaml`` may give
``partition_on``/``partitions``); ``partition_on`` and ``partitions``
(default 4 with a column, else one partition); and the connection, as
``BridgeOperator`` takes it: ``sql_server_host``, ``sql_server_database``,
``sql_server_user``, ``sql_server_password``, ``connection_string``,
``sql_server_authentication``, ``sql_server_access_token``, ``encrypt``,
``trust_server_certificate``, ``ca_file``; and ``max_connections`` (with
``connection_group``, ``connection_wait``): at most that many connections of
the group work on the server at once, however many executors run (slots held
as SQL Server application locks; a task waits for one without a connection).

Writes, exactly once::

    (df.write.format("sqlserver_bridge")
       .option("table", "dbo.ventas").option("operation", "UPSERT")
       .option("primary_key", "id").option("write_id", run_id)
       .mode("append").save())

``operation`` is ``INSERT`` (default), ``UPDATE``, ``DELETE`` or ``UPSERT``
(the last three by ``primary_key``, comma-separated); ``max_delete_rows``
(default 10,000) and ``table_lock`` as ``sync_to_sql_server`` takes them. The
driver checks the DataFrame against the target (every column in it, every
type converting without loss) before any task runs. Each task bulk-loads its
rows into a stage table of its own (``bridge_stage_<write>_<run>_p<partition>_a<attempt>``
in the target's database, schema ``dbo`` or ``stage_schema``) and reports it; the driver applies all reported
stages in one SQL Server transaction with the ledger row of ``write_id``
(default: a new id per write), then drops every stage of the write. A task
retried or run twice leaves a stage nobody reports; a job re-run with the
same ``write_id`` writes nothing; an aborted job drops its stages.

Governed by a bridge server (``bridge_url``, and ``bridge_token`` or the
driver's ``BRIDGE_TOKEN``): the driver asks the server to open, commit or
abort the write, each needing ``write`` on the target for the token's user in
the server's permissions.yaml (the name resolved in the bridge's database,
every decision in its audit log), the user's ``max_delete_rows`` capping a
DELETE. The server applies the stages with its own SQL Server login, so the
executors' login needs only to make and fill stage tables (``stage_schema``);
a write id is scoped to the token's user. ``bridge_timeout``: seconds a call
may take (default 3600: the commit applies every row).

A stream of a Change-Tracking-enabled table, offsets being Change Tracking
versions::

    changes = (spark.readStream.format("sqlserver_bridge")
               .option("table", "dbo.ventas").load())

Each row carries ``_change_operation`` (``I``, ``U``, ``D``) and
``_change_version`` before the table's columns. The first micro-batch is the
whole table (``starting_version`` ``snapshot``, the default; ``latest`` starts
at the current version, a number at that version); each later one holds the
net change of every key whose last change falls in its range of versions,
read as the table held it then (a deleted row: its key only). Applied by key
in order of ``_change_version`` (a Delta ``MERGE`` in ``foreachBatch``), they
keep a copy equal to the table. When Change Tracking has cleaned up the
changes after the last version read, the stream stops with an error naming
the remedy (a new checkpoint: a new snapshot) — or, with ``on_expired``
``snapshot``, that batch is the whole table as it is, every row marked ``S``:
the copy is replaced by it (a key it lacks was deleted meanwhile; in a Delta
``MERGE``, ``whenNotMatchedBySourceDelete`` for such a batch).

On runtimes without the Data Source API (Spark 3.5, Databricks Runtime
before 15.4), ``read_arrow(spark, **options)`` does the same read through
``DataFrame.mapInArrow``: one task per range, the same schema and rows; and
``write_arrow(df, **options)`` the same write.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    DataSourceStreamReader,
    DataSourceWriter,
    InputPartition,
    WriterCommitMessage,
)

FORMAT = "sqlserver_bridge"


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "yes", "1")


# Options that are BridgeOperator's keyword arguments, and how each is read.
_CONNECTION: dict[str, Any] = {
    "sql_server_host": str,
    "sql_server_database": str,
    "sql_server_user": str,
    "sql_server_password": str,
    "sql_server_port": int,
    "connection_string": str,
    "sql_server_authentication": str,
    "sql_server_access_token": str,
    "encrypt": str,
    "ca_file": str,
    "trust_server_certificate": _flag,
    "max_connections": int,
    "connection_group": str,
    "connection_wait": float,
}

_KNOWN = set(_CONNECTION) | {"query", "name", "country", "queries_dir", "config_dir", "partition_on", "partitions",
                             "path"}

# A stream's options besides the connection.
_STREAM = {"table", "starting_version", "on_expired"}

# A write's options besides the connection.
_WRITE = {"table", "operation", "primary_key", "max_delete_rows", "table_lock", "write_id", "stage_schema",
          "bridge_url", "bridge_token", "bridge_timeout"}

_log = logging.getLogger("sql_databricks_bridge.spark")


def read_arrow(spark: Any, **options: Any) -> Any:
    """The data source's read through ``mapInArrow``, for Spark 3.5 and
    Databricks Runtime before 15.4: the ranges planned on the driver, one task
    each (a slice of its own), each streaming its range through the Rust core.
    Takes the data source's options as keyword arguments."""
    source = SqlServerBridgeDataSource({k: str(v) for k, v in options.items()})
    schema = source.schema()
    reader = source.reader(schema)
    sqls = [p.sql for p in reader.partitions()]
    connection = {k: v for k, v in source.options.items() if k.lower() in _CONNECTION}

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        for batch in batches:
            for sql in batch.column("sql").to_pylist():
                stream = _operator(connection)._native.stream_arrow(sql)
                yield from pa.RecordBatchReader.from_stream(stream)

    plan = spark.sparkContext.parallelize([(sql,) for sql in sqls], len(sqls)).toDF("sql string")
    return plan.mapInArrow(run, schema)


def write_arrow(df: Any, **options: Any) -> dict[str, Any]:
    """The data source's write through ``mapInArrow``, for Spark 3.5 and
    Databricks Runtime before 15.4: each task stages its rows, the driver
    commits the reported stages once (or drops them all when the job
    fails). Takes the data source's write options as keyword arguments;
    returns the commit's counts (``rows_read``, ``rows_affected``,
    ``from_ledger``)."""
    writer = SqlServerBridgeDataSource({k: str(v) for k, v in options.items()}).writer(df.schema, False)
    assert isinstance(writer, _Writer)

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        m = writer.write(batches)
        yield pa.RecordBatch.from_pylist([{"stage": m.stage, "rows": m.rows}],
                                         schema=pa.schema([("stage", pa.string()), ("rows", pa.int64())]))

    try:
        rows = df.mapInArrow(run, "stage string, rows long").collect()
    except BaseException:
        writer.abort([])
        raise
    # The commit drops every stage of the write, whatever its outcome.
    return writer.apply([_Staged(r["stage"], r["rows"]) for r in rows])


def register(spark: Any) -> None:
    """Makes ``spark.read.format("sqlserver_bridge")`` and
    ``df.write.format("sqlserver_bridge")`` available in ``spark``."""
    spark.dataSource.register(SqlServerBridgeDataSource)


# Operators of this process by their arguments: a Python worker runs many
# tasks, and the driver plans every micro-batch, each reusing the pool (and
# its logins) of the same connection rather than opening one per call.
_OPERATORS: dict[tuple[tuple[str, str], ...], Any] = {}
_MAX_OPERATORS = 8


def _operator(options: Mapping[str, str], **extra: Any) -> Any:
    """A BridgeOperator from the options over the environment (executors build
    their own: a partition carries no credentials)."""
    from sql_databricks_bridge.sdk.databricks import BridgeOperator

    kwargs = {k: read(options[k]) for k, read in _CONNECTION.items() if options.get(k) is not None}
    kwargs.update(extra)
    key = tuple(sorted((k, repr(v)) for k, v in kwargs.items()))
    op = _OPERATORS.get(key)
    if op is None:
        op = BridgeOperator(**kwargs)
        if len(_OPERATORS) >= _MAX_OPERATORS:
            _OPERATORS.pop(next(iter(_OPERATORS)))
        _OPERATORS[key] = op
    return op


class _Range(InputPartition):
    """One partition's plan: its SQL, and its place."""

    def __init__(self, index: int, sql: str) -> None:
        super().__init__(index)
        self.index = index
        self.sql = sql


class SqlServerBridgeDataSource(DataSource):
    """``spark.read.format("sqlserver_bridge")``; see the module's text."""

    @classmethod
    def name(cls) -> str:
        return FORMAT

    def _plan(self) -> tuple[str, str | None, int]:
        """The SQL, the partition column and the number of partitions."""
        options = {k.lower(): v for k, v in self.options.items()}
        unknown = sorted(set(options) - _KNOWN)
        if unknown:
            raise ValueError(f"sqlserver_bridge: unknown option(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(_KNOWN - {'path'}))}")
        column, count = options.get("partition_on"), options.get("partitions")
        if options.get("query"):
            if options.get("name"):
                raise ValueError("sqlserver_bridge: give either query or name, not both")
            sql = options["query"]
        elif options.get("name"):
            if not options.get("country"):
                raise ValueError("sqlserver_bridge: a named query needs the country whose parameters render it")
            from sql_databricks_bridge import _native

            sql, spec = _native.Operator.named_query(
                options.get("queries_dir", "queries"), options.get("config_dir", "config"),
                options["name"], options["country"])
            if spec is not None and column is None:
                column, count = spec[0], count if count is not None else spec[1]
        else:
            raise ValueError("sqlserver_bridge: give the option query (T-SQL) or name and country (a query file)")
        if count is not None:
            try:
                n = int(count)
            except ValueError:
                raise ValueError(f"sqlserver_bridge: partitions '{count}' is not a number") from None
            if n < 1:
                raise ValueError(f"sqlserver_bridge: partitions must be at least 1, not {n}")
        else:
            n = 4 if column else 1
        if n > 1 and not column:
            raise ValueError("sqlserver_bridge: partitions > 1 needs partition_on (the column to cut ranges of)")
        return sql, column, n

    def _stream_table(self) -> str | None:
        """The table a readStream follows; None for a batch read."""
        options = {k.lower(): v for k, v in self.options.items()}
        if not options.get("table"):
            return None
        if options.get("query") or options.get("name"):
            raise ValueError("sqlserver_bridge: give table (a stream, or a write's target) or query / name "
                             "(a batch read), not both")
        return options["table"]

    def schema(self) -> Any:
        import pyarrow as pa
        from pyspark.sql.pandas.types import from_arrow_schema

        table = self._stream_table()
        if table is not None:
            info = _operator(self.options)._native.change_stream(table)
            return from_arrow_schema(pa.RecordBatchReader.from_stream(info["schema"]).schema)
        sql, _, _ = self._plan()
        stream = _operator(self.options)._native.result_schema(sql)
        return from_arrow_schema(pa.RecordBatchReader.from_stream(stream).schema)

    def reader(self, schema: Any) -> DataSourceReader:
        if self._stream_table() is not None:
            raise ValueError("sqlserver_bridge: the option table is for readStream (Change Tracking) and writes; "
                             "a batch read takes query, or name and country")
        return _Reader(dict(self.options), *self._plan())

    def streamReader(self, schema: Any) -> DataSourceStreamReader:
        options = {k.lower(): v for k, v in self.options.items()}
        unknown = sorted(set(options) - set(_CONNECTION) - _STREAM - {"path"})
        if unknown:
            raise ValueError(f"sqlserver_bridge: unknown stream option(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(set(_CONNECTION) | _STREAM))}")
        if self._stream_table() is None:
            raise ValueError("sqlserver_bridge: a stream needs the option table (a Change-Tracking-enabled "
                             "[database.]schema.table), not query or name")
        return _ChangeReader(options)

    def writer(self, schema: Any, overwrite: bool) -> DataSourceWriter:
        if overwrite:
            raise ValueError("sqlserver_bridge: mode('overwrite') is not supported (it would empty the SQL Server "
                             "table first); use mode('append') with operation INSERT, UPDATE, DELETE or UPSERT")
        return _Writer({k.lower(): v for k, v in self.options.items()}, schema)


@dataclass
class _Staged(WriterCommitMessage):
    """A task's commit message: its stage table (None when it had no rows)
    and the rows it loaded."""

    stage: str | None
    rows: int


class _Writer(DataSourceArrowWriter):
    """Plans on the driver (failing before any task runs), stages per task,
    commits once."""

    def __init__(self, options: dict[str, str], schema: Any) -> None:
        unknown = sorted(set(options) - set(_CONNECTION) - _WRITE - {"path"})
        if unknown:
            raise ValueError(f"sqlserver_bridge: unknown write option(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(set(_CONNECTION) | _WRITE))}")
        if not options.get("table"):
            raise ValueError("sqlserver_bridge: a write needs the option table ([database.]schema.table in SQL Server)")
        self.options = options
        self.write_id = options.get("write_id") or f"auto-{uuid.uuid4().hex}"
        # This run of the write: a re-run (same write_id) stages apart.
        self.run = uuid.uuid4().hex[:12]
        self.keys = [k.strip() for k in options.get("primary_key", "").split(",") if k.strip()]
        self.columns = [(f.name, f.dataType.simpleString()) for f in schema.fields]
        extra: dict[str, Any] = {"table_lock": _flag(options.get("table_lock", "false"))}
        if options.get("max_delete_rows") is not None:
            try:
                extra["max_delete_rows"] = int(options["max_delete_rows"])
            except ValueError:
                raise ValueError(f"sqlserver_bridge: max_delete_rows '{options['max_delete_rows']}' "
                                 "is not a number") from None
        self.extra = extra
        # What the tasks stage under: the write id and the target as given, or
        # as a bridge server scoped and resolved them.
        self.staged_id, self.target = self.write_id, options["table"]
        if options.get("bridge_url"):
            # Governed: the server checks the token's rights on the target,
            # opens the run, and later applies the stages with its own login.
            run = self._server(lambda c: c.open_spark_write(self._request()))
            self.staged_id, self.target = run.write_id, run.target_table
            _log.info("sqlserver_bridge: write %s opened by %s as %s into %s (DELETE cap %d)", self.write_id,
                      options["bridge_url"], run.write_id, run.target_table, run.max_delete_rows)
        else:
            # Checked, and the run opened: its tasks may stage until the commit
            # or the abort closes it.
            self._plan().open()

    def _request(self) -> dict[str, Any]:
        """The write as the bridge server's /spark/writes calls take it."""
        body: dict[str, Any] = {
            "write_id": self.write_id, "run_id": self.run,
            "operation": self.options.get("operation", "INSERT").strip().upper(),
            "target_table": self.options["table"], "primary_keys": self.keys,
            "columns": [{"name": n, "spark_type": t} for n, t in self.columns],
            "table_lock": bool(self.extra["table_lock"]),
        }
        if self.options.get("stage_schema"):
            body["stage_schema"] = self.options["stage_schema"]
        if "max_delete_rows" in self.extra:
            body["max_delete_rows"] = self.extra["max_delete_rows"]
        return body

    def _server(self, call: Any) -> Any:
        """Runs ``call`` with a client of the bridge server (made per call: a
        writer is pickled to the process that commits). The token comes from
        ``bridge_token`` or the driver's ``BRIDGE_TOKEN``; tasks never use it."""
        import os

        from sql_databricks_bridge.sdk import BridgeClient

        token = self.options.get("bridge_token") or os.environ.get("BRIDGE_TOKEN")
        if not token:
            raise ValueError("sqlserver_bridge: bridge_url needs a token of the server's permissions.yaml "
                             "(the option bridge_token, or BRIDGE_TOKEN in the driver's environment)")
        try:
            timeout = float(self.options.get("bridge_timeout", "3600"))
        except ValueError:
            raise ValueError(f"sqlserver_bridge: bridge_timeout '{self.options['bridge_timeout']}' "
                             "is not a number of seconds") from None
        with BridgeClient(self.options["bridge_url"], token, timeout=timeout) as client:
            return call(client)

    def _plan(self) -> Any:
        return _operator(self.options, **self.extra)._native.plan_write(
            self.staged_id, self.target, self.options.get("operation", "INSERT"),
            self.columns, self.keys, self.run, self.options.get("stage_schema"))

    def write(self, iterator: Iterator[Any]) -> _Staged:
        from pyspark import TaskContext

        context = TaskContext.get()
        # Outside a Spark task (a direct call) the attempt is made unique.
        partition = context.partitionId() if context else 0
        attempt = context.taskAttemptId() if context else uuid.uuid4().int >> 80
        loader, rows = None, 0
        for batch in iterator:
            if loader is None:
                loader = self._plan().stage(partition, attempt)
            loader.send(batch)
        if loader is None:
            return _Staged(None, 0)
        stage, rows = loader.finish()
        return _Staged(stage, rows)

    def apply(self, messages: list[Any]) -> dict[str, Any]:
        """Applies the reported stages once; the counts."""
        import time

        stages = [(m.stage, m.rows) for m in messages if isinstance(m, _Staged) and m.stage]
        started = time.perf_counter()
        if self.options.get("bridge_url"):
            done = self._server(lambda c: c.commit_spark_write(self._request(), stages))
            out = {"rows_read": done.rows_read, "rows_affected": done.rows_affected, "from_ledger": done.from_ledger}
        else:
            out = self._plan().commit(stages)
        _log.info("sqlserver_bridge: write %s into %s from %d stage(s) committed in %.2f s: %s", self.write_id,
                  self.options["table"], len(stages), time.perf_counter() - started, out)
        return out

    def commit(self, messages: list[Any]) -> None:
        self.apply(messages)

    def abort(self, messages: list[Any]) -> None:
        if self.options.get("bridge_url"):
            dropped = self._server(lambda c: c.abort_spark_write(self._request())).stages_dropped
        else:
            dropped = self._plan().abort()
        _log.warning("sqlserver_bridge: write %s aborted; %d stage table(s) dropped", self.write_id, dropped)


class _Reader(DataSourceReader):
    def __init__(self, options: dict[str, str], sql: str, column: str | None, count: int) -> None:
        self.options, self.sql, self.column, self.count = options, sql, column, count

    def partitions(self) -> list[InputPartition]:
        if self.column is None or self.count <= 1:
            return [_Range(0, self.sql)]
        sqls = _operator(self.options)._native.partition_queries(self.sql, self.column, self.count)
        return [_Range(i, s) for i, s in enumerate(sqls)]

    def read(self, partition: InputPartition) -> Iterator[Any]:
        import pyarrow as pa

        assert isinstance(partition, _Range)
        stream = _operator(self.options)._native.stream_arrow(partition.sql)
        yield from pa.RecordBatchReader.from_stream(stream)


class _Versions(InputPartition):
    """One micro-batch: the whole table (start None) or the changes in
    (start, end]."""

    def __init__(self, start: int | None, end: int) -> None:
        super().__init__(0)
        self.start, self.end = start, end


class _ChangeReader(DataSourceStreamReader):
    """Offsets are ``{"version": n}``: Change Tracking versions; -1 before
    the first snapshot."""

    def __init__(self, options: dict[str, str]) -> None:
        self.options = options
        self.starting = str(options.get("starting_version", "snapshot")).strip().lower()
        if self.starting not in ("snapshot", "latest") and not self.starting.isdigit():
            raise ValueError(f"sqlserver_bridge: starting_version '{self.starting}' is not snapshot, latest "
                             "or a version number")
        self.on_expired = str(options.get("on_expired", "fail")).strip().lower()
        if self.on_expired not in ("fail", "snapshot"):
            raise ValueError(f"sqlserver_bridge: on_expired '{self.on_expired}' is not fail or snapshot")
        info = _operator(options)._native.change_stream(options["table"])
        self.tracked, self.columns, self.keys = info["tracked"], info["columns"], info["keys"]
        self.current = info["current"]
        if self.starting.isdigit() and int(self.starting) > self.current:
            # Spark would go on from the current version, not from the one asked.
            raise ValueError(f"sqlserver_bridge: starting_version {self.starting} is beyond {self.tracked}'s "
                             f"current Change Tracking version {self.current}")

    def initialOffset(self) -> dict:
        if self.starting == "snapshot":
            return {"version": -1}
        if self.starting == "latest":
            return {"version": self.current}
        return {"version": int(self.starting)}

    def latestOffset(self, start: dict | None = None, limit: Any = None) -> dict:
        current, _ = _operator(self.options)._native.change_versions(self.tracked)
        return {"version": current}

    def partitions(self, start: dict, end: dict) -> list[InputPartition]:
        first, last = int(start["version"]), int(end["version"])
        return [_Versions(None if first < 0 else first, last)]

    def read(self, partition: InputPartition) -> Iterator[Any]:
        import pyarrow as pa

        assert isinstance(partition, _Versions)
        native = _operator(self.options)._native
        try:
            stream = native.read_changes(self.tracked, self.columns, self.keys, partition.start, partition.end)
        except Exception as e:
            # Cleanup overtook the stream: with on_expired=snapshot the batch is
            # the whole table, its rows "S" (replace the copy). A read that
            # found out only after handing rows over fails the task; Spark's
            # retry lands here.
            if getattr(e, "kind", None) != "changes.expired" or self.on_expired != "snapshot":
                raise
            _log.warning("sqlserver_bridge: %s; on_expired=snapshot: this batch is the whole table (S)", e)
            stream = native.read_changes(self.tracked, self.columns, self.keys, None, partition.end,
                                         resnapshot=True)
        yield from pa.RecordBatchReader.from_stream(stream)

    def commit(self, end: dict) -> None:
        """Nothing to release: the versions read stay Change Tracking's."""


"""Bulk-load hints as real clients send them: CHECK_CONSTRAINTS, FIRE_TRIGGERS, KEEP_NULLS.

SQL Server's documented behaviour (BULK INSERT / bcp hints, SqlBulkCopyOptions):
  * without CHECK_CONSTRAINTS, CHECK and FOREIGN KEY constraints are not checked
    and are marked not trusted (is_not_trusted = 1); with it a violation fails
    the load with error 547;
  * without FIRE_TRIGGERS, INSERT triggers do not fire; with it they do;
  * without KEEP_NULLS, a NULL for a column with a DEFAULT takes the DEFAULT.
https://learn.microsoft.com/en-us/sql/t-sql/statements/bulk-insert-transact-sql
https://learn.microsoft.com/en-us/sql/relational-databases/import-export/keep-nulls-or-use-default-values-during-bulk-import-sql-server

Each client sends its own INSERT BULK text (mssql-python's Rust core,
python-tds's copy_to, FreeTDS freebcp -h, which passes a single hint);
the sandbox must parse each.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest
import test_sqlserver_clients as clients
from conftest import SandboxServer, unique_name
from test_sqlserver_clients import (
    mssql_connect,
    mssql_database,
    needs_freetds,
    pytds_connect,
    pytds_database,
    run_tsql,
    tsql_database,
    tsql_ok,
)

mssql_python = pytest.importorskip("mssql_python", reason="run scripts/setup-test-env.sh")
pytds = pytest.importorskip("pytds", reason="run scripts/setup-test-env.sh")


def setup_sql(t: str) -> list[str]:
    """A parent, a child with a FOREIGN KEY, a CHECK and a DEFAULT, and an INSERT trigger."""
    return [
        f"CREATE TABLE dbo.{t}_parent (id int NOT NULL PRIMARY KEY)",
        f"INSERT INTO dbo.{t}_parent (id) VALUES (1)",
        (f"CREATE TABLE dbo.{t} (id int NOT NULL PRIMARY KEY, "
         f"pid int NOT NULL CONSTRAINT FK_{t} REFERENCES dbo.{t}_parent (id), "
         f"qty int NOT NULL CONSTRAINT CK_{t} CHECK (qty > 0), "
         f"note nvarchar(20) NULL CONSTRAINT DF_{t} DEFAULT N'dflt')"),
        f"CREATE TABLE dbo.{t}_audit (n int NOT NULL)",
        (f"CREATE TRIGGER dbo.TR_{t} ON dbo.{t} AFTER INSERT AS "
         f"INSERT INTO dbo.{t}_audit (n) SELECT COUNT(*) FROM inserted"),
    ]


def state_sql(t: str) -> str:
    """One row: notes by id, audit rows, and whether each constraint is trusted."""
    return (
        f"SELECT (SELECT COUNT(*) FROM dbo.{t}) AS rows_loaded, "
        f"(SELECT COUNT(*) FROM dbo.{t} WHERE note = N'dflt') AS defaulted, "
        f"(SELECT COUNT(*) FROM dbo.{t} WHERE note IS NULL) AS nulls, "
        f"(SELECT COUNT(*) FROM dbo.{t}_audit) AS audits, "
        f"(SELECT is_not_trusted FROM sys.check_constraints WHERE name = 'CK_{t}') AS ck_untrusted, "
        f"(SELECT is_not_trusted FROM sys.foreign_keys WHERE name = 'FK_{t}') AS fk_untrusted"
    )


BAD_ROWS = [(10, 99, -1, None), (11, 1, 5, None)]  # row 10 breaks both constraints
GOOD_ROWS = [(20, 1, 1, None), (21, 1, 2, "kept")]


# ---------------------------------------------------------------------------
# mssql-python (bulkcopy: Microsoft's Rust TDS core)
# ---------------------------------------------------------------------------


def test_mssql_python_bulk_options(sandbox_plain):
    db = mssql_database(sandbox_plain)
    t = unique_name("bo")
    with contextlib.closing(mssql_connect(sandbox_plain, database=db)) as conn:
        cur = conn.cursor()
        for sql in setup_sql(t):
            cur.execute(sql)

        # No hints: constraints skipped and untrusted, no trigger, NULL -> DEFAULT.
        result = cur.bulkcopy(f"dbo.{t}", BAD_ROWS, timeout=60)
        assert result["rows_copied"] == 2, result
        cur.execute(state_sql(t))
        assert tuple(cur.fetchone()) == (2, 2, 0, 0, True, True)

        # CHECK_CONSTRAINTS: the violating row fails the load with 547.
        with pytest.raises(Exception) as err:
            cur.bulkcopy(f"dbo.{t}", [(12, 99, 1, None)], timeout=60, check_constraints=True)
        assert "547" in str(err.value) or "FOREIGN KEY" in str(err.value), err.value
        cur.execute(f"SELECT COUNT(*) FROM dbo.{t} WHERE id = 12")
        assert cur.fetchone()[0] == 0

        # FIRE_TRIGGERS + KEEP_NULLS + CHECK_CONSTRAINTS on good rows.
        result = cur.bulkcopy(f"dbo.{t}", GOOD_ROWS, timeout=60, check_constraints=True,
                              fire_triggers=True, keep_nulls=True)
        assert result["rows_copied"] == 2, result
        cur.execute(state_sql(t))
        assert tuple(cur.fetchone()) == (4, 2, 1, 1, True, True)
        cur.execute(f"SELECT n FROM dbo.{t}_audit")
        assert [r[0] for r in cur.fetchall()] == [2]


# ---------------------------------------------------------------------------
# python-tds (copy_to)
# ---------------------------------------------------------------------------


def _text(rows):
    """copy_to without column metadata sends every column as nvarchar(4000)."""
    return [tuple(None if v is None else str(v) for v in r) for r in rows]


def test_pytds_bulk_options(sandbox_plain, tmp_path):
    db = pytds_database(sandbox_plain, tmp_path)
    t = unique_name("bo")
    with contextlib.closing(pytds_connect(sandbox_plain, tmp_path, database=db)) as conn:
        cur = conn.cursor()
        for sql in setup_sql(t):
            cur.execute(sql)
        conn.commit()

        cur.copy_to(table_or_view=t, schema="dbo", data=_text(BAD_ROWS))
        conn.commit()
        cur.execute(state_sql(t))
        assert tuple(cur.fetchone()) == (2, 2, 0, 0, True, True)

        with pytest.raises(pytds.IntegrityError) as err:
            cur.copy_to(table_or_view=t, schema="dbo", data=_text([(12, 1, -3, None)]),
                        check_constraints=True)
        assert err.value.number == 547, err.value
        assert "CHECK constraint" in str(err.value), err.value
        conn.rollback()

        cur.copy_to(table_or_view=t, schema="dbo", data=_text(GOOD_ROWS), check_constraints=True,
                    fire_triggers=True, keep_nulls=True)
        conn.commit()
        cur.execute(state_sql(t))
        assert tuple(cur.fetchone()) == (4, 2, 1, 1, True, True)


# ---------------------------------------------------------------------------
# FreeTDS freebcp (-h "hints")
# ---------------------------------------------------------------------------


def _freebcp_hints(server: SandboxServer, tmp_path: Path, target: str, datafile: Path,
                   hints: str | None):
    """freebcp with -h; otherwise the command line of test_freebcp_in."""
    conf = clients._freetds_conf(server, tmp_path)
    cmd = [clients.FREEBCP, target, "in", str(datafile), "-c", "-t", "\t", "-r", "\n",
           "-S", f"{server.host}:{server.port}", "-U", clients.SA_USER, "-P",
           clients.SA_PASSWORD, "-b", "100"]
    if hints:
        cmd += ["-h", hints]
    proc = subprocess.run(cmd, check=False, capture_output=True, env=clients.freetds_env(conf), timeout=30)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


@needs_freetds
def test_freebcp_bulk_hints(sandbox_plain, tmp_path):
    db = tsql_database(sandbox_plain, tmp_path)
    t = unique_name("bo")
    tsql_ok(run_tsql(sandbox_plain, tmp_path, setup_sql(t), database=db))
    target = f"{db}.dbo.{t}"

    def tsv(rows) -> str:
        # freebcp -c: an empty field is NULL.
        return "".join("\t".join("" if v is None else str(v) for v in r) + "\n" for r in rows)

    plain = tmp_path / "plain.tsv"
    plain.write_text(tsv(BAD_ROWS), encoding="utf-8")
    code, out, err = _freebcp_hints(sandbox_plain, tmp_path, target, plain, None)
    assert code == 0, f"freebcp exit {code}\n{out}\n{err}"

    bad = tmp_path / "bad.tsv"
    bad.write_text(tsv([(12, 99, 1, None)]), encoding="utf-8")
    code, out, err = _freebcp_hints(sandbox_plain, tmp_path, target, bad, "CHECK_CONSTRAINTS")
    assert "547" in out + err or "FOREIGN KEY" in out + err, f"exit {code}\n{out}\n{err}"

    good = tmp_path / "good.tsv"
    good.write_text(tsv(GOOD_ROWS), encoding="utf-8")
    # db-lib's bcp_options(BCPHINTS) keeps ONE hint: the first of ORDER,
    # ROWS_PER_BATCH, KILOBYTES_PER_BATCH, TABLOCK, CHECK_CONSTRAINTS,
    # FIRE_TRIGGERS the text starts with (FreeTDS 1.3 src/dblib/bcp.c), so
    # "-h FIRE_TRIGGERS" alone; no KEEP_NULLS: the NULL note takes the DEFAULT.
    code, out, err = _freebcp_hints(sandbox_plain, tmp_path, target, good, "FIRE_TRIGGERS")
    assert code == 0, f"freebcp exit {code}\n{out}\n{err}"

    lines = tsql_ok(run_tsql(sandbox_plain, tmp_path, [state_sql(t)], database=db))
    assert lines[-1].split() == ["4", "3", "0", "1", "1", "1"], lines

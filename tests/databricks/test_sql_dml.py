"""MERGE INTO with `UPDATE SET *` / `INSERT *`, and UPDATE / DELETE with WHERE
subqueries (the forms Databricks SQL documents; FROM / USING joins are not
Databricks SQL and fail as a syntax error), through the SDK's Statement
Execution calls.
"""

from __future__ import annotations

from databricks.sdk.service.sql import StatementState

from dbx_double import client, unique, workspace  # noqa: F401 - fixtures


def run(client, workspace, sql):
    r = client.statement_execution.execute_statement(
        statement=sql, warehouse_id=workspace.warehouse_id, wait_timeout="30s")
    return r


def test_merge_star_and_subquery_dml(workspace, client, unique):
    t, s = f"main.demo.tgt_{unique}", f"main.demo.src_{unique}"
    for sql in [
        f"CREATE TABLE {t} (id BIGINT, name STRING, weight DECIMAL(18,6))",
        f"INSERT INTO {t} VALUES (1, 'a', 1.0), (2, 'b', 2.0)",
        f"CREATE TABLE {s} (weight DECIMAL(18,6), id BIGINT, name STRING)",
        f"INSERT INTO {s} VALUES (10.5, 1, 'A'), (30, 3, 'C')",
    ]:
        assert run(client, workspace, sql).status.state == StatementState.SUCCEEDED, sql
    m = run(client, workspace, f"""MERGE INTO {t} AS t USING {s} AS src ON t.id = src.id
        WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *""")
    assert m.status.state == StatementState.SUCCEEDED, m.status.error
    cols = [c.name for c in m.manifest.schema.columns]
    assert dict(zip(cols, m.result.data_array[0])) == {
        "num_affected_rows": "2", "num_updated_rows": "1", "num_deleted_rows": "0", "num_inserted_rows": "1"}
    rows = run(client, workspace, f"SELECT id, name, weight FROM {t} ORDER BY id").result.data_array
    assert rows == [["1", "A", "10.500000"], ["2", "b", "2.000000"], ["3", "C", "30.000000"]]

    u = run(client, workspace, f"UPDATE {t} AS x SET name = 'z' WHERE EXISTS (SELECT 1 FROM {s} WHERE id = x.id)")
    assert u.result.data_array == [["2"]]
    d = run(client, workspace, f"DELETE FROM {t} WHERE id NOT IN (SELECT id FROM {s})")
    assert d.result.data_array == [["1"]]

    bad = run(client, workspace, f"UPDATE {t} t SET name = 'q' FROM {s} s WHERE t.id = s.id")
    assert bad.status.state == StatementState.FAILED
    assert bad.status.error.message.startswith("[PARSE_SYNTAX_ERROR]")

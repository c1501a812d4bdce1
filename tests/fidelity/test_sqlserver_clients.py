"""Fidelity of the SQL Server sandbox, checked with clients nobody here wrote.

Clients:
  * mssql-python  — Microsoft's driver (bundled ODBC Driver 18 + Rust bulk-copy core)
  * python-tds    — pure-Python TDS 7.4 (`pytds`)
  * FreeTDS       — `tsql` (libtds) and `freebcp` (db-lib BCP)

One scenario per client, one test per step:
  1. connect without TLS (server --encryption off) and with TLS (--encryption required)
  2. every column type: parameterised INSERT of extremes, parameterised SELECT,
     values and reported column metadata compared
  3. bulk load (INSERT BULK / BCP)
  4. transactions: ROLLBACK undoes, other sessions never see uncommitted rows
  5. errors carry SQL Server's numbers (208, 207, 102, 2627, 515, 2628/8152, 18456)

Expected values and metadata are SQL Server's real behaviour as each client
reports it; these tests are the sandbox's contract.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import math
import re
import shutil
import subprocess
import sys
import threading
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import (
    SA_PASSWORD,
    SA_USER,
    SandboxServer,
    fetch_server_certificate_der,
    freetds_env,
    parse_prelogin,
    unique_name,
    write_freetds_conf,
    _prelogin_payload,
    _recv_message,
    _tds_packet,
)

mssql_python = pytest.importorskip("mssql_python", reason="run scripts/setup-test-env.sh")
pytds = pytest.importorskip("pytds", reason="run scripts/setup-test-env.sh")
from pytds import tds_base, tds_types  # noqa: E402

TZ_IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
TZ_PST = dt.timezone(dt.timedelta(hours=-8))

# ---------------------------------------------------------------------------
# The all-types table and its rows
# ---------------------------------------------------------------------------

COLUMNS: list[tuple[str, str]] = [
    ("c_bit", "bit"),
    ("c_tinyint", "tinyint"),
    ("c_smallint", "smallint"),
    ("c_int", "int"),
    ("c_bigint", "bigint"),
    ("c_dec38", "decimal(38,10)"),
    ("c_dec5", "decimal(5,2)"),
    ("c_num18", "numeric(18,4)"),
    ("c_money", "money"),
    ("c_smallmoney", "smallmoney"),
    ("c_float", "float"),
    ("c_real", "real"),
    ("c_char", "char(10)"),
    ("c_varchar", "varchar(50)"),
    ("c_varcharmax", "varchar(max)"),
    ("c_nchar", "nchar(10)"),
    ("c_nvarchar", "nvarchar(50)"),
    ("c_nvarcharmax", "nvarchar(max)"),
    ("c_binary", "binary(8)"),
    ("c_varbinary", "varbinary(50)"),
    ("c_varbinarymax", "varbinary(max)"),
    ("c_date", "date"),
    ("c_time7", "time(7)"),
    ("c_time0", "time(0)"),
    ("c_datetime", "datetime"),
    ("c_smalldatetime", "smalldatetime"),
    ("c_datetime2_7", "datetime2(7)"),
    ("c_datetime2_3", "datetime2(3)"),
    ("c_dto7", "datetimeoffset(7)"),
    ("c_guid", "uniqueidentifier"),
]
COL_NAMES = [c for c, _ in COLUMNS]
COL_TYPES = dict(COLUMNS)

UNICODE = "ñandú 🚀 日本"
BIG_VARCHAR = "x" * 9000                       # > 8000 bytes: PLP in several chunks
BIG_NVARCHAR = (UNICODE + " ") * 900            # > 8000 bytes in UTF-16, with surrogate pairs
BIG_VARBINARY = bytes(range(256)) * 40          # 10240 bytes

# Values as Python objects (what a driver should hand back, except the 100ns
# columns of row 3, which are inserted from strings; see ROW3_100NS).
ROW_MIN = {
    "c_bit": False,
    "c_tinyint": 0,
    "c_smallint": -32768,
    "c_int": -2147483648,
    "c_bigint": -9223372036854775808,
    "c_dec38": Decimal("-9999999999999999999999999999.9999999999"),
    "c_dec5": Decimal("-999.99"),
    "c_num18": Decimal("-99999999999999.9999"),
    "c_money": Decimal("-922337203685477.5808"),
    "c_smallmoney": Decimal("-214748.3648"),
    "c_float": -1.7976931348623157e308,
    "c_real": -3.4028234663852886e38,           # -FLT_MAX, exact in float32
    "c_char": "a",                              # comes back blank-padded to 10
    "c_varchar": "",                            # empty string, not NULL
    "c_varcharmax": BIG_VARCHAR,
    "c_nchar": "ñ",
    "c_nvarchar": "",
    "c_nvarcharmax": BIG_NVARCHAR,
    "c_binary": bytes([0, 1, 2, 3, 4, 5, 6, 7]),
    "c_varbinary": b"",
    "c_varbinarymax": BIG_VARBINARY,
    "c_date": dt.date(1, 1, 1),
    "c_time7": dt.time(0, 0, 0),
    "c_time0": dt.time(0, 0, 0),
    "c_datetime": dt.datetime(1753, 1, 1, 0, 0, 0),
    "c_smalldatetime": dt.datetime(1900, 1, 1, 0, 0),
    "c_datetime2_7": dt.datetime(1, 1, 1, 0, 0, 0),
    "c_datetime2_3": dt.datetime(1, 1, 1, 0, 0, 0),
    "c_dto7": dt.datetime(1, 1, 1, 12, 0, 0, tzinfo=TZ_IST),
    "c_guid": uuid.UUID("00000000-0000-0000-0000-000000000000"),
}
ROW_MAX = {
    "c_bit": True,
    "c_tinyint": 255,
    "c_smallint": 32767,
    "c_int": 2147483647,
    "c_bigint": 9223372036854775807,
    "c_dec38": Decimal("1234567890123456789012345678.0123456789"),   # 28 integer digits
    "c_dec5": Decimal("999.99"),
    "c_num18": Decimal("99999999999999.9999"),
    "c_money": Decimal("922337203685477.5807"),
    "c_smallmoney": Decimal("214748.3647"),
    "c_float": 1.7976931348623157e308,
    "c_real": 3.4028234663852886e38,
    "c_char": "abcdefghij",
    "c_varchar": "y" * 50,
    "c_varcharmax": "",
    "c_nchar": "ñandú 🚀 日",                   # exactly 10 UTF-16 code units
    "c_nvarchar": UNICODE,
    "c_nvarcharmax": "",
    "c_binary": b"\xff" * 8,
    "c_varbinary": b"\xfe" * 50,
    "c_varbinarymax": b"",
    "c_date": dt.date(9999, 12, 31),
    "c_time7": dt.time(23, 59, 59, 999999),     # inserted as 23:59:59.9999999
    "c_time0": dt.time(23, 59, 59),
    "c_datetime": dt.datetime(9999, 12, 31, 23, 59, 59, 997000),
    "c_smalldatetime": dt.datetime(2079, 6, 6, 23, 59),
    "c_datetime2_7": dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    "c_datetime2_3": dt.datetime(9999, 12, 31, 23, 59, 59, 999000),
    "c_dto7": dt.datetime(9999, 12, 31, 10, 0, 0, 123456, tzinfo=TZ_PST),
    "c_guid": uuid.UUID("ffffffff-ffff-ffff-ffff-ffffffffffff"),
}
ROW_TYPICAL = {
    "c_bit": True,
    "c_tinyint": 42,
    "c_smallint": -1234,
    "c_int": 123456789,
    "c_bigint": -1234567890123,
    "c_dec38": Decimal("-1234567890123456789012345678.0123456789"),
    "c_dec5": Decimal("-1.05"),
    "c_num18": Decimal("0.0001"),
    "c_money": Decimal("-1.2345"),
    "c_smallmoney": Decimal("0.0001"),
    "c_float": 3.141592653589793,
    "c_real": 0.5,
    "c_char": "",                               # char(10) '' comes back as 10 blanks
    "c_varchar": "ñandú",                       # Latin-1 range, fits the CP1252 code page
    "c_varcharmax": "hola",
    "c_nchar": "ab",
    "c_nvarchar": UNICODE,
    "c_nvarcharmax": UNICODE,
    "c_binary": b"\x01",                        # binary(8) pads with zeros
    "c_varbinary": b"\x00\xde\xad\xbe\xef\x00",
    "c_varbinarymax": b"\x00",
    "c_date": dt.date(1899, 12, 31),
    "c_time7": dt.time(13, 14, 15, 123456),     # inserted as '13:14:15.1234564'
    "c_time0": dt.time(13, 14, 15),
    "c_datetime": dt.datetime(1899, 12, 31, 12, 34, 56, 500000),
    "c_smalldatetime": dt.datetime(1970, 1, 1, 0, 1),
    "c_datetime2_7": dt.datetime(2024, 2, 29, 13, 14, 15, 123456),   # from '...15.1234564'
    "c_datetime2_3": dt.datetime(1969, 12, 31, 23, 59, 59, 999000),
    "c_dto7": dt.datetime(2024, 2, 29, 13, 14, 15, 123456, tzinfo=TZ_IST),  # from '... +05:30'
    "c_guid": uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff"),
}
ROW_NULLS = {c: None for c in COL_NAMES}

# Row 3's 100-nanosecond values travel as strings (Python's datetime stops at
# microseconds); the server converts them. Reads through Python drivers truncate
# to microseconds (the 7th digit is 4, so truncation == rounding); the exact
# values are checked server-side with a parameterised equality.
ROW3_100NS = {
    "c_time7": "13:14:15.1234564",
    "c_datetime2_7": "2024-02-29 13:14:15.1234564",
    "c_dto7": "2024-02-29 13:14:15.1234564 +05:30",
}
ROW2_100NS = {
    "c_time7": "23:59:59.9999999",
    "c_datetime2_7": "9999-12-31 23:59:59.9999999",
    "c_dto7": "9999-12-31 10:00:00.1234564 -08:00",
}

ROWS = {1: ROW_MIN, 2: ROW_MAX, 3: ROW_TYPICAL, 4: ROW_NULLS}
FIXED_LEN = {"c_char": 10, "c_nchar": 10}


def insert_values(row_id: int) -> list:
    """Parameter values for INSERT of row `row_id` (id first)."""
    row = ROWS[row_id]
    overrides = {3: ROW3_100NS, 2: ROW2_100NS}.get(row_id, {})
    return [row_id] + [overrides.get(c, row[c]) for c in COL_NAMES]


def expected_value(row_id: int, col: str):
    v = ROWS[row_id][col]
    if v is None:
        return None
    if col == "c_nchar":                        # nchar(n): n UTF-16 code units, blank-padded
        return v + " " * (FIXED_LEN[col] - len(v.encode("utf-16-le")) // 2)
    if col == "c_char":                         # char(n): n bytes of the code page (CP1252 here)
        return v + " " * (FIXED_LEN[col] - len(v.encode("cp1252")))
    if col == "c_binary":
        return v.ljust(8, b"\x00")
    return v


def create_table_sql(table: str) -> str:
    cols = ",\n    ".join(f"{name} {decl} NULL" for name, decl in COLUMNS)
    return f"CREATE TABLE dbo.{table} (\n    id int NOT NULL PRIMARY KEY,\n    {cols}\n)"


def assert_value(col: str, got, want, client: str, row_id: int) -> None:
    where = f"{client}: row {row_id} column {col} ({COL_TYPES[col]})"
    if want is None:
        assert got is None, f"{where}: expected NULL, got {got!r}"
        return
    assert got is not None, f"{where}: expected {want!r}, got NULL"
    if isinstance(want, float):
        assert isinstance(got, float), f"{where}: expected float, got {type(got).__name__} {got!r}"
        assert got == want, f"{where}: expected {want!r}, got {got!r}"
    elif isinstance(want, Decimal):
        assert isinstance(got, Decimal), f"{where}: expected Decimal, got {type(got).__name__} {got!r}"
        assert got == want, f"{where}: expected {want}, got {got}"
    elif isinstance(want, bool):
        assert got in (True, False) and bool(got) is want, f"{where}: expected {want!r}, got {got!r}"
    elif isinstance(want, dt.datetime) and want.tzinfo is not None:
        assert isinstance(got, dt.datetime) and got.tzinfo is not None, \
            f"{where}: expected aware datetime, got {got!r}"
        assert got == want and got.utcoffset() == want.utcoffset(), f"{where}: expected {want!r}, got {got!r}"
    elif isinstance(want, (bytes, bytearray)):
        assert bytes(got) == bytes(want), f"{where}: expected {bytes(want)[:40]!r}..., got {bytes(got)[:40]!r}..."
    else:
        assert type(got) is type(want) or (isinstance(want, str) and isinstance(got, str)), \
            f"{where}: expected {type(want).__name__}, got {type(got).__name__} {got!r}"
        assert got == want, f"{where}: expected {want!r}, got {got!r}"


SELECT_ROW_SQL = "SELECT id, " + ", ".join(COL_NAMES) + " FROM dbo.{table} WHERE id = {p}"
HUNDRED_NS_SQL = ("SELECT COUNT(*) FROM dbo.{table} WHERE id = {p} AND c_time7 = {p} "
                  "AND c_datetime2_7 = {p} AND c_dto7 = {p}")


def hundred_ns_params(row_id: int) -> list:
    v = {3: ROW3_100NS, 2: ROW2_100NS}[row_id]
    return [row_id, v["c_time7"], v["c_datetime2_7"], v["c_dto7"]]


# ---------------------------------------------------------------------------
# Error cases: (name, SQL with {t} = table having id int PK, name varchar(5) NOT NULL
# and one row (1, 'a'); accepted SQL Server error numbers; the SQLSTATE ODBC Driver 18
# derives from that number, None where not pinned down: 2628 is new in SQL Server 2019)
# ---------------------------------------------------------------------------

ERROR_CASES = [
    ("missing_table", "SELECT * FROM dbo.no_such_table_fid", {208}, "42S02"),
    ("missing_column", "SELECT no_such_column FROM dbo.{t}", {207}, "42S22"),
    ("syntax_error", "SELEC 1", {102}, "42000"),
    ("duplicate_pk", "INSERT INTO dbo.{t} (id, name) VALUES (1, 'dup')", {2627}, "23000"),
    ("null_into_not_null", "INSERT INTO dbo.{t} (id, name) VALUES (2, NULL)", {515}, "23000"),
    ("string_too_long", "INSERT INTO dbo.{t} (id, name) VALUES (3, 'abcdef')", {2628, 8152}, None),
]
ERROR_IDS = [c[0] for c in ERROR_CASES]
ERRORS_TABLE_SQL = "CREATE TABLE dbo.{t} (id int NOT NULL PRIMARY KEY, name varchar(5) NOT NULL)"


# ---------------------------------------------------------------------------
# Raw protocol: PRELOGIN encryption negotiation per server mode
# ---------------------------------------------------------------------------

def _prelogin_encryption(server: SandboxServer, client_flag: int) -> int:
    import socket
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(_tds_packet(0x12, _prelogin_payload(client_flag)))
        ptype, payload = _recv_message(sock)
    assert ptype == 0x04, f"PRELOGIN answered with packet type {ptype:#x}, expected 0x04 (tabular result)"
    opts = parse_prelogin(payload)
    assert 0x00 in opts and len(opts[0x00]) == 6, "PRELOGIN response lacks VERSION"
    assert 0x01 in opts and len(opts[0x01]) == 1, "PRELOGIN response lacks ENCRYPTION"
    return opts[0x01][0]


ENCRYPT_OFF, ENCRYPT_ON, ENCRYPT_NOT_SUP, ENCRYPT_REQ = 0, 1, 2, 3


def test_prelogin_encryption_off_server(sandbox_plain):
    assert _prelogin_encryption(sandbox_plain, ENCRYPT_OFF) == ENCRYPT_NOT_SUP
    assert _prelogin_encryption(sandbox_plain, ENCRYPT_NOT_SUP) == ENCRYPT_NOT_SUP


def test_prelogin_encryption_login_server(sandbox_login):
    assert _prelogin_encryption(sandbox_login, ENCRYPT_OFF) == ENCRYPT_OFF
    assert _prelogin_encryption(sandbox_login, ENCRYPT_ON) == ENCRYPT_ON


def test_prelogin_encryption_required_server(sandbox_tls):
    assert _prelogin_encryption(sandbox_tls, ENCRYPT_OFF) == ENCRYPT_REQ
    assert _prelogin_encryption(sandbox_tls, ENCRYPT_ON) == ENCRYPT_ON
    der = fetch_server_certificate_der(sandbox_tls.host, sandbox_tls.port)
    assert len(der) > 100


# ===========================================================================
# mssql-python (Microsoft ODBC Driver 18 underneath)
# ===========================================================================

def mssql_connect(server: SandboxServer, *, database: str = "master", tls: bool = False,
                  autocommit: bool = True, password: str = SA_PASSWORD, extra: str = ""):
    enc = "Encrypt=yes;TrustServerCertificate=yes" if tls else "Encrypt=no"
    conn_str = (f"Server={server.host},{server.port};Database={database};"
                f"UID={SA_USER};PWD={{{password}}};{enc}" + (f";{extra}" if extra else ""))
    return mssql_python.connect(conn_str, autocommit=autocommit, timeout=15)


def _is_tls(server: SandboxServer) -> bool:
    return server.encryption == "required"


_mssql_dbs: dict[tuple[int, str], str] = {}


def mssql_database(server: SandboxServer) -> str:
    key = (server.port, "mssql")
    if key not in _mssql_dbs:
        name = unique_name("fid_mssql")
        with contextlib.closing(mssql_connect(server, tls=_is_tls(server))) as conn:
            conn.cursor().execute(f"CREATE DATABASE {name}")
        _mssql_dbs[key] = name
    return _mssql_dbs[key]


@contextlib.contextmanager
def odbc_diagnostics():
    """Collect ODBC diagnostic records ("[SQLSTATE] (native)", message) of failing statements.

    mssql-python raises with the SQLSTATE-mapped class and message only; the
    native error number (SQL Server's error number) is in the ODBC diagnostic
    records, read here just before the driver turns them into an exception.
    """
    import mssql_python.cursor as mcursor
    from mssql_python import ddbc_bindings

    records: list[tuple[str, str]] = []
    original = mcursor.check_error

    def check_error(handle_type, handle, ret):
        if ret < 0:
            try:
                records.extend(tuple(r) for r in ddbc_bindings.DDBCSQLGetAllDiagRecords(handle))
            except Exception as exc:  # pragma: no cover - diagnostic aid
                records.append(("[?????] (-1)", f"could not read diagnostics: {exc}"))
        return original(handle_type, handle, ret)

    mcursor.check_error = check_error
    try:
        yield records
    finally:
        mcursor.check_error = original


def parse_diag(records) -> list[tuple[str, int, str]]:
    out = []
    for state, msg in records:
        m = re.match(r"\[(\w{5})\] \((-?\d+)\)", state)
        if m:
            out.append((m.group(1), int(m.group(2)), msg))
    return out


# ODBC (SQLDescribeCol) metadata per column: (SQL type, column size, decimal digits)
ODBC_META = {
    "c_bit": (-7, 1, 0),
    "c_tinyint": (-6, 3, 0),
    "c_smallint": (5, 5, 0),
    "c_int": (4, 10, 0),
    "c_bigint": (-5, 19, 0),
    "c_dec38": (3, 38, 10),
    "c_dec5": (3, 5, 2),
    "c_num18": (2, 18, 4),
    "c_money": (3, 19, 4),
    "c_smallmoney": (3, 10, 4),
    "c_float": (6, 53, None),
    "c_real": (7, 24, None),
    "c_char": (1, 10, None),
    "c_varchar": (12, 50, None),
    "c_varcharmax": (12, 0, None),          # SQL_SS_LENGTH_UNLIMITED
    "c_nchar": (-8, 10, None),
    "c_nvarchar": (-9, 50, None),
    "c_nvarcharmax": (-9, 0, None),
    "c_binary": (-2, 8, None),
    "c_varbinary": (-3, 50, None),
    "c_varbinarymax": (-3, 0, None),
    "c_date": (91, 10, 0),
    "c_time7": (-154, 16, 7),               # SQL_SS_TIME2
    "c_time0": (-154, 8, 0),
    "c_datetime": (93, 23, 3),
    "c_smalldatetime": (93, 16, 0),
    "c_datetime2_7": (93, 27, 7),
    "c_datetime2_3": (93, 23, 3),
    "c_dto7": (-155, 34, 7),                # SQL_SS_TIMESTAMPOFFSET
    "c_guid": (-11, 36, None),
}
PY_TYPE = {
    "bit": bool, "tinyint": int, "smallint": int, "int": int, "bigint": int,
    "decimal(38,10)": Decimal, "decimal(5,2)": Decimal, "numeric(18,4)": Decimal,
    "money": Decimal, "smallmoney": Decimal, "float": float, "real": float,
    "char(10)": str, "varchar(50)": str, "varchar(max)": str, "nchar(10)": str,
    "nvarchar(50)": str, "nvarchar(max)": str, "binary(8)": bytes, "varbinary(50)": bytes,
    "varbinary(max)": bytes, "date": dt.date, "time(7)": dt.time, "time(0)": dt.time,
    "datetime": dt.datetime, "smalldatetime": dt.datetime, "datetime2(7)": dt.datetime,
    "datetime2(3)": dt.datetime, "datetimeoffset(7)": dt.datetime, "uniqueidentifier": uuid.UUID,
}


def test_mssql_python_connect(sandbox_any):
    tls = _is_tls(sandbox_any)
    with contextlib.closing(mssql_connect(sandbox_any, tls=tls)) as conn:
        cur = conn.cursor()
        cur.execute("SELECT DB_NAME(), 1 + 1, N'ñ'")
        assert tuple(cur.fetchone()) == ("master", 2, "ñ")
        name = unique_name("fid_mssql_conn")
        cur.execute(f"CREATE DATABASE {name}")
        cur.execute(f"USE {name}")
        cur.execute("SELECT DB_NAME()")
        assert cur.fetchone()[0] == name
    # Database= in the connection string selects it at login.
    with contextlib.closing(mssql_connect(sandbox_any, tls=tls, database=name)) as conn:
        cur = conn.cursor()
        cur.execute("SELECT DB_NAME()")
        assert cur.fetchone()[0] == name


def test_mssql_python_connect_login_only_encryption(sandbox_login):
    # Encrypt=no against a server with a certificate: TLS for the login packet only.
    with contextlib.closing(mssql_connect(sandbox_login, tls=False)) as conn:
        cur = conn.cursor()
        cur.execute("SELECT 42")
        assert cur.fetchone()[0] == 42
    with contextlib.closing(mssql_connect(sandbox_login, tls=True)) as conn:
        cur = conn.cursor()
        cur.execute("SELECT 43")
        assert cur.fetchone()[0] == 43


def mssql_insert_values(row_id: int) -> list:
    """insert_values() as bound through mssql-python.

    mssql-python (1.x) refuses, client-side and before anything is sent, to
    bind a Python datetime.date before 1753 (the *datetime* range) even for a
    `date` parameter: "Date out of range for SQL Server (1753-9999) at
    paramIndex N". Its SQL_C_TYPE_DATE binding path has that check; datetime
    (SQL_C_TYPE_TIMESTAMP) and aware datetime (SQL_C_SS_TIMESTAMPOFFSET) values
    of year 1 bind fine. A user storing 0001-01-01 in a date column passes it as
    an ISO string and lets the server convert it; the value read back is still
    compared with datetime.date(1, 1, 1).
    """
    values = insert_values(row_id)
    for i, v in enumerate(values):
        if type(v) is dt.date and v.year < 1753:
            values[i] = v.isoformat()
    return values


def test_mssql_python_types_roundtrip(sandbox_any):
    db = mssql_database(sandbox_any)
    table = unique_name("types")
    with contextlib.closing(mssql_connect(sandbox_any, tls=_is_tls(sandbox_any), database=db)) as conn:
        cur = conn.cursor()
        cur.execute(create_table_sql(table))
        insert = (f"INSERT INTO dbo.{table} (id, {', '.join(COL_NAMES)}) "
                  f"VALUES ({', '.join('?' * (len(COL_NAMES) + 1))})")
        for row_id in ROWS:
            cur.execute(insert, mssql_insert_values(row_id))  # SQLPrepare/SQLExecute (sp_prepexec)
            assert cur.rowcount == 1

        for row_id in ROWS:
            cur.execute(SELECT_ROW_SQL.format(table=table, p="?"), row_id)
            desc = cur.description
            assert [d[0] for d in desc] == ["id"] + COL_NAMES
            row = cur.fetchone()
            assert row is not None, f"row {row_id} not found"
            assert cur.fetchone() is None
            assert row[0] == row_id
            for i, col in enumerate(COL_NAMES, start=1):
                assert_value(col, row[i], expected_value(row_id, col), "mssql-python", row_id)

        # Reported column metadata (ODBC SQLDescribeCol through mssql-python).
        cur.execute(SELECT_ROW_SQL.format(table=table, p="?"), 1)
        cur.fetchall()
        desc = cur.description
        # id is int NOT NULL; its null_ok is checked in test_mssql_python_not_null_metadata.
        assert desc[0][1] is int, f"id column: {desc[0]}"
        sql_types = getattr(cur, "_column_sql_types", None)
        for i, (col, decl) in enumerate(COLUMNS, start=1):
            name, type_code, _disp, internal_size, precision, scale, null_ok = desc[i]
            assert type_code is PY_TYPE[decl], f"{col} {decl}: type_code {type_code}"
            assert null_ok is True, f"{col}: nullable column reported NOT NULL"
            want_sql, want_size, want_digits = ODBC_META[col]
            assert precision == want_size, f"{col} {decl}: column size {precision}, want {want_size}"
            if want_digits is not None:
                assert scale == want_digits, f"{col} {decl}: decimal digits {scale}, want {want_digits}"
            if sql_types is not None:
                assert sql_types[i] == want_sql, f"{col} {decl}: ODBC SQL type {sql_types[i]}, want {want_sql}"

        # 100ns precision, compared by the server against the exact strings.
        for row_id in (2, 3):
            cur.execute(HUNDRED_NS_SQL.format(table=table, p="?"), hundred_ns_params(row_id))
            assert cur.fetchone()[0] == 1, f"row {row_id}: 100ns values not stored exactly"

        # NULL vs empty string in a parameterised WHERE.
        cur.execute(f"SELECT id FROM dbo.{table} WHERE c_varchar = ? ORDER BY id", "")
        assert [r[0] for r in cur.fetchall()] == [1]
        cur.execute(f"SELECT id FROM dbo.{table} WHERE c_varchar IS NULL")
        assert [r[0] for r in cur.fetchall()] == [4]
        cur.execute(f"SELECT id FROM dbo.{table} WHERE c_nvarchar = ? ORDER BY id", UNICODE)
        assert [r[0] for r in cur.fetchall()] == [2, 3]


# NOT NULL columns of types that have a fixed-length TDS type. SQL Server
# describes them with INT4TYPE/INT8TYPE/FLT8TYPE/MONEYTYPE/DATETIMETYPE/BITTYPE
# ("Non-nullable values are returned using these fixed-length data types",
# MS-TDS 2.2.5.4.2), and ODBC Driver 18 reports the nullable INTN/FLTN/MONEYN/
# DATETIMN variants as nullable whatever the fNullable flag says.
NOT_NULL_COLUMNS = [("id", "int"), ("c_bit", "bit"), ("c_bigint", "bigint"), ("c_float", "float"),
                    ("c_money", "money"), ("c_datetime", "datetime"), ("c_dec", "decimal(9,2)"),
                    ("c_nvarchar", "nvarchar(10)")]


def test_mssql_python_not_null_metadata(sandbox_plain):
    db = mssql_database(sandbox_plain)
    table = unique_name("notnull")
    cols = ", ".join(f"{n} {d} NOT NULL" for n, d in NOT_NULL_COLUMNS)
    with contextlib.closing(mssql_connect(sandbox_plain, database=db)) as conn:
        cur = conn.cursor()
        cur.execute(f"CREATE TABLE dbo.{table} ({cols}, c_null int NULL)")
        cur.execute(f"SELECT * FROM dbo.{table}")
        cur.fetchall()
        null_ok = {d[0]: d[6] for d in cur.description}
    assert null_ok["c_null"] is True, null_ok
    reported_nullable = [n for n, _d in NOT_NULL_COLUMNS if null_ok[n] is not False]
    assert not reported_nullable, f"NOT NULL columns reported nullable: {reported_nullable}"


def test_mssql_python_bulkcopy(sandbox_plain):
    db = mssql_database(sandbox_plain)
    table = unique_name("bulk")
    rows = [
        (i, f"cliente {i} ñ 🚀" if i % 7 else None, Decimal(f"{i}.{i % 100:02d}"),
         dt.datetime(2024, 1, 1, 0, 0, 0) + dt.timedelta(minutes=i), i % 2 == 0)
        for i in range(1, 1001)
    ]
    with contextlib.closing(mssql_connect(sandbox_plain, database=db)) as conn:
        cur = conn.cursor()
        cur.execute(f"CREATE TABLE dbo.{table} (id int NOT NULL PRIMARY KEY, name nvarchar(100) NULL, "
                    f"amount decimal(18,2) NOT NULL, created datetime2(3) NOT NULL, flag bit NOT NULL)")
        result = cur.bulkcopy(f"dbo.{table}", rows, batch_size=250, timeout=60)
        assert result["rows_copied"] == len(rows), result
        cur.execute(f"SELECT COUNT(*), SUM(amount), SUM(CAST(flag AS int)) FROM dbo.{table}")
        count, total, flags = cur.fetchone()
        assert count == 1000
        assert total == sum(r[2] for r in rows)
        assert flags == 500
        cur.execute(f"SELECT id, name, amount, created, flag FROM dbo.{table} WHERE id IN (?, ?) ORDER BY id", 7, 8)
        got = [tuple(r) for r in cur.fetchall()]
        assert got == [rows[6], rows[7]]


def test_mssql_python_transaction(sandbox_plain):
    db = mssql_database(sandbox_plain)
    table = unique_name("tx")
    with contextlib.closing(mssql_connect(sandbox_plain, database=db)) as c1, \
            contextlib.closing(mssql_connect(sandbox_plain, database=db)) as c2:
        cur1, cur2 = c1.cursor(), c2.cursor()
        cur1.execute(f"CREATE TABLE dbo.{table} (id int NOT NULL PRIMARY KEY, v nvarchar(20) NULL)")
        cur1.execute(f"INSERT INTO dbo.{table} VALUES (?, ?)", 1, "committed")

        # T-SQL transaction control.
        cur1.execute("BEGIN TRANSACTION")
        cur1.execute(f"INSERT INTO dbo.{table} VALUES (?, ?)", 2, "uncommitted")
        cur1.execute("SELECT @@TRANCOUNT")
        assert cur1.fetchone()[0] == 1
        assert _mssql_visible_ids(cur2, table) in ([1], "blocked")
        cur1.execute("ROLLBACK TRANSACTION")
        cur1.execute("SELECT @@TRANCOUNT")
        assert cur1.fetchone()[0] == 0
        assert _mssql_visible_ids(cur1, table) == [1]

        # Driver transaction API (autocommit off: the driver opens the transaction).
        with contextlib.closing(mssql_connect(sandbox_plain, database=db, autocommit=False)) as c3:
            cur3 = c3.cursor()
            cur3.execute(f"INSERT INTO dbo.{table} VALUES (?, ?)", 3, "rolled back")
            assert _mssql_visible_ids(cur2, table) in ([1], "blocked")
            c3.rollback()
            assert _mssql_visible_ids(cur2, table) == [1]
            cur3.execute(f"INSERT INTO dbo.{table} VALUES (?, ?)", 4, "committed")
            c3.commit()
        assert _mssql_visible_ids(cur2, table) == [1, 4]


def _mssql_visible_ids(cur, table):
    """Ids another session can read; 'blocked' if SQL Server-style locking made it wait (1222)."""
    cur.execute("SET LOCK_TIMEOUT 2000")
    with odbc_diagnostics() as diag:
        try:
            cur.execute(f"SELECT id FROM dbo.{table} ORDER BY id")
            return [r[0] for r in cur.fetchall()]
        except mssql_python.DatabaseError:
            natives = [n for _s, n, _m in parse_diag(diag)]
            if 1222 in natives:
                return "blocked"
            raise


@pytest.mark.parametrize("case", ERROR_CASES, ids=ERROR_IDS)
def test_mssql_python_errors(sandbox_plain, case):
    name, sql, numbers, sqlstate = case
    db = mssql_database(sandbox_plain)
    table = unique_name("err")
    with contextlib.closing(mssql_connect(sandbox_plain, database=db)) as conn:
        cur = conn.cursor()
        cur.execute(ERRORS_TABLE_SQL.format(t=table))
        cur.execute(f"INSERT INTO dbo.{table} VALUES (1, 'a')")
        with odbc_diagnostics() as diag:
            with pytest.raises(mssql_python.DatabaseError) as excinfo:
                cur.execute(sql.format(t=table))
        records = parse_diag(diag)
        natives = {n for _s, n, _m in records}
        assert natives & numbers, f"{name}: native errors {records}, want one of {numbers}; {excinfo.value}"
        if sqlstate is not None:
            states = {s for s, n, _m in records if n in numbers}
            assert sqlstate in states, f"{name}: SQLSTATE {states}, want {sqlstate}"
        # The connection stays usable after a statement error.
        cur.execute(f"SELECT COUNT(*) FROM dbo.{table}")
        assert cur.fetchone()[0] == 1


def test_mssql_python_login_failure(sandbox_plain):
    with pytest.raises(mssql_python.DatabaseError) as excinfo:
        mssql_connect(sandbox_plain, password="wrong-password")
    text = str(excinfo.value)
    # The ODBC layer exposes SQLSTATE 28000 (mapped from error 18456) and the message.
    assert isinstance(excinfo.value, mssql_python.OperationalError), text
    assert "Login failed for user 'sa'" in text, text


# ===========================================================================
# python-tds (pytds)
# ===========================================================================

# pytds reports cursor.description[1] as the TDS type of the *value serializer*
# it picked from COLMETADATA: INTN(4) -> 56 (INT4), DECIMALN/NUMERICN -> 106,
# BIGCHAR/BIGVARCHAR -> 167, NCHAR/NVARCHAR -> 231, nvarchar(max) -> 99 (NTEXT),
# BIGBINARY/BIGVARBINARY -> 165, ... (worked out by feeding SQL Server's
# COLMETADATA bytes for each type to pytds' own SerializerFactory).
# (type id, size, precision, scale)
PYTDS_META = {
    "c_bit": (50, 1, None, None),
    "c_tinyint": (48, 1, None, None),
    "c_smallint": (52, 2, None, None),
    "c_int": (56, 4, None, None),
    "c_bigint": (127, 8, None, None),
    "c_dec38": (106, 17, 38, 10),
    "c_dec5": (106, 5, 5, 2),
    "c_num18": (106, 9, 18, 4),
    "c_money": (60, 8, None, None),
    "c_smallmoney": (122, 4, None, None),
    "c_float": (62, 8, None, None),
    "c_real": (59, 4, None, None),
    "c_char": (167, 10, None, None),
    "c_varchar": (167, 50, None, None),
    "c_varcharmax": (167, 0, None, None),
    "c_nchar": (231, 10, None, None),
    "c_nvarchar": (231, 50, None, None),
    "c_nvarcharmax": (99, -1, None, None),
    "c_binary": (165, 8, None, None),
    "c_varbinary": (165, 50, None, None),
    "c_varbinarymax": (165, 0, None, None),
    "c_date": (40, None, None, None),
    "c_time7": (41, 5, 7, None),
    "c_time0": (41, 3, 0, None),
    "c_datetime": (61, 8, None, None),
    "c_smalldatetime": (58, 4, None, None),
    "c_datetime2_7": (42, 8, 7, None),
    "c_datetime2_3": (42, 7, 3, None),
    "c_dto7": (43, 10, 7, None),
    "c_guid": (36, None, None, None),
}
# Which serializer class pytds chose tells char from varchar and max from sized.
PYTDS_SERIALIZER = {
    "c_varcharmax": "VarCharMaxSerializer",
    "c_nvarcharmax": "NVarCharMaxSerializer",
    "c_varbinarymax": "VarBinarySerializerMax",
    "c_bit": "BitNSerializer",
    "c_int": "IntNSerializer",
    "c_money": "MoneyNSerializer",
    "c_float": "FloatNSerializer",
    "c_datetime": "DateTimeNSerializer",
}


def pytds_connect(server: SandboxServer, tmp_path: Path, *, database: str = "master",
                  tls: bool = False, autocommit: bool = True, password: str = SA_PASSWORD,
                  login_only: bool = False):
    kwargs = {}
    if tls or login_only:
        # pytds verifies the peer against a CA file; the sandbox's certificate is
        # self-signed, so it is its own CA. Host name checks are off (127.0.0.1).
        kwargs.update(cafile=str(server.certificate_file(tmp_path)), validate_host=False,
                      enc_login_only=login_only)
    return pytds.connect(dsn=server.host, port=server.port, user=SA_USER, password=password,
                         database=database, autocommit=autocommit, login_timeout=15,
                         timeout=60, disable_connect_retry=True, **kwargs)


_pytds_dbs: dict[int, str] = {}


def pytds_database(server: SandboxServer, tmp_path: Path) -> str:
    if server.port not in _pytds_dbs:
        name = unique_name("fid_pytds")
        with contextlib.closing(pytds_connect(server, tmp_path, tls=_is_tls(server))) as conn:
            conn.cursor().execute(f"CREATE DATABASE {name}")
        _pytds_dbs[server.port] = name
    return _pytds_dbs[server.port]


def test_pytds_connect(sandbox_any, tmp_path):
    tls = _is_tls(sandbox_any)
    with contextlib.closing(pytds_connect(sandbox_any, tmp_path, tls=tls)) as conn:
        cur = conn.cursor()
        cur.execute("SELECT DB_NAME(), 1 + 1, N'ñ'")
        assert tuple(cur.fetchone()) == ("master", 2, "ñ")
        name = unique_name("fid_pytds_conn")
        cur.execute(f"CREATE DATABASE {name}")
        cur.execute(f"USE {name}")
        cur.execute("SELECT DB_NAME()")
        assert cur.fetchone()[0] == name
    with contextlib.closing(pytds_connect(sandbox_any, tmp_path, tls=tls, database=name)) as conn:
        cur = conn.cursor()
        cur.execute("SELECT DB_NAME()")
        assert cur.fetchone()[0] == name


def test_pytds_connect_login_only_encryption(sandbox_login, tmp_path):
    with contextlib.closing(pytds_connect(sandbox_login, tmp_path, login_only=True)) as conn:
        cur = conn.cursor()
        cur.execute("SELECT 42")
        assert cur.fetchone()[0] == 42
    with contextlib.closing(pytds_connect(sandbox_login, tmp_path, tls=True)) as conn:
        cur = conn.cursor()
        cur.execute("SELECT 43")
        assert cur.fetchone()[0] == 43


def pytds_insert_values(row_id: int) -> tuple:
    """insert_values() as bound through pytds.

    pytds sends a plain Python `bytes` parameter as a *string* (nvarchar(max),
    decoding it as UTF-8 client-side; tds_types.TdsTypeInferrer, bytes_to_unicode)
    and documents `pytds.Binary` as the way to pass binary data, which it sends
    as varbinary(8000) / varbinary(max).
    """
    return tuple(pytds.Binary(v) if isinstance(v, (bytes, bytearray)) else v
                 for v in insert_values(row_id))


def test_pytds_types_roundtrip(sandbox_any, tmp_path):
    db = pytds_database(sandbox_any, tmp_path)
    table = unique_name("types")
    with contextlib.closing(pytds_connect(sandbox_any, tmp_path, tls=_is_tls(sandbox_any),
                                          database=db)) as conn:
        cur = conn.cursor()
        cur.execute(create_table_sql(table))
        insert = (f"INSERT INTO dbo.{table} (id, {', '.join(COL_NAMES)}) "
                  f"VALUES ({', '.join(['%s'] * (len(COL_NAMES) + 1))})")
        for row_id in ROWS:
            cur.execute(insert, pytds_insert_values(row_id))      # sp_executesql RPC
            assert cur.rowcount == 1

        for row_id in ROWS:
            cur.execute(SELECT_ROW_SQL.format(table=table, p="%s"), (row_id,))
            desc = cur.description
            assert [d[0] for d in desc] == ["id"] + COL_NAMES
            row = cur.fetchone()
            assert row is not None, f"row {row_id} not found"
            assert cur.fetchone() is None
            assert row[0] == row_id
            for i, col in enumerate(COL_NAMES, start=1):
                assert_value(col, row[i], expected_value(row_id, col), "pytds", row_id)

        cur.execute(SELECT_ROW_SQL.format(table=table, p="%s"), (1,))
        cur.fetchall()
        desc = cur.description
        assert desc[0][1] == tds_base.SYBINT4 and not desc[0][6], f"id column {desc[0]}"
        columns = cur._session.res_info.columns
        for i, (col, decl) in enumerate(COLUMNS, start=1):
            name, type_id, _disp, size, precision, scale, nullable = desc[i]
            want = PYTDS_META[col]
            assert (type_id, size, precision, scale) == want, \
                f"{col} {decl}: pytds (type, size, precision, scale) = {(type_id, size, precision, scale)}, want {want}"
            assert nullable, f"{col}: nullable column reported NOT NULL"
            if col in PYTDS_SERIALIZER:
                got = type(columns[i].serializer).__name__
                assert got == PYTDS_SERIALIZER[col], f"{col} {decl}: serializer {got}"

        for row_id in (2, 3):
            cur.execute(HUNDRED_NS_SQL.format(table=table, p="%s"), tuple(hundred_ns_params(row_id)))
            assert cur.fetchone()[0] == 1, f"row {row_id}: 100ns values not stored exactly"

        cur.execute(f"SELECT id FROM dbo.{table} WHERE c_varchar = %s ORDER BY id", ("",))
        assert [r[0] for r in cur.fetchall()] == [1]
        cur.execute(f"SELECT id FROM dbo.{table} WHERE c_nvarchar = %(v)s ORDER BY id", {"v": UNICODE})
        assert [r[0] for r in cur.fetchall()] == [2, 3]


BULK_DDL = ("CREATE TABLE dbo.{t} (id int NOT NULL PRIMARY KEY, name nvarchar(100) NULL, "
            "amount decimal(18,2) NOT NULL, created datetime2(3) NOT NULL, flag bit NOT NULL, "
            "offset_at datetimeoffset(3) NULL)")


def bulk_rows(n: int, start: int = 1) -> list[tuple]:
    out = []
    for i in range(start, start + n):
        out.append((
            i,
            None if i % 7 == 0 else f"cliente {i} ñandú 🚀",
            Decimal(f"{i * 3}.{i % 100:02d}"),
            dt.datetime(1999, 12, 31, 23, 0, 0) + dt.timedelta(minutes=i, milliseconds=i % 1000),
            i % 2 == 0,
            None if i % 5 == 0 else dt.datetime(2024, 1, 1, 8, 30, tzinfo=TZ_PST) + dt.timedelta(hours=i),
        ))
    return out


def test_pytds_bulk_copy_to(sandbox_plain, tmp_path):
    db = pytds_database(sandbox_plain, tmp_path)
    table = unique_name("bulk")
    typed = bulk_rows(600, start=1)
    with contextlib.closing(pytds_connect(sandbox_plain, tmp_path, database=db)) as conn:
        cur = conn.cursor()
        cur.execute(BULK_DDL.format(t=table))
        # Typed INSERT BULK: column metadata with real types.
        cols = [
            tds_base.Column(name="id", type=tds_types.IntType(), flags=0),
            tds_base.Column(name="name", type=tds_types.NVarCharType(size=100)),
            tds_base.Column(name="amount", type=tds_types.DecimalType(precision=18, scale=2), flags=0),
            tds_base.Column(name="created", type=tds_types.DateTime2Type(precision=3), flags=0),
            tds_base.Column(name="flag", type=tds_types.BitType(), flags=0),
            tds_base.Column(name="offset_at", type=tds_types.DateTimeOffsetType(precision=3)),
        ]
        cur.copy_to(table_or_view=table, schema="dbo", columns=cols, data=typed, keep_nulls=True)
        # Text INSERT BULK from a tab-separated file: every column sent as
        # nvarchar(4000) and converted by the server.
        text_rows = bulk_rows(400, start=601)
        tsv = io.StringIO()
        for r in text_rows:
            tsv.write("\t".join([
                str(r[0]), "NULL" if r[1] is None else r[1], str(r[2]),
                r[3].isoformat(sep=" ", timespec="milliseconds"), "1" if r[4] else "0",
                "NULL" if r[5] is None else tsql_lit(r[5], "datetimeoffset(3)").strip("'"),
            ]) + "\n")
        tsv.seek(0)
        cur.copy_to(file=tsv, table_or_view=table, schema="dbo", sep="\t", null_string="NULL",
                    keep_nulls=True)
        cur.execute(f"SELECT COUNT(*), COUNT(name), COUNT(offset_at) FROM dbo.{table}")
        everything = typed + text_rows
        assert tuple(cur.fetchone()) == (
            1000,
            sum(1 for r in everything if r[1] is not None),
            sum(1 for r in everything if r[5] is not None),
        )
        cur.execute(f"SELECT id, name, amount, created, flag, offset_at FROM dbo.{table} ORDER BY id")
        got = [tuple(r) for r in cur.fetchall()]
        assert len(got) == 1000
        for want, have in zip(everything, got):
            assert have[:5] == want[:5], f"bulk row {want[0]}: {have} != {want}"
            assert have[5] == want[5], f"bulk row {want[0]}: offset_at {have[5]!r} != {want[5]!r}"
            if want[5] is not None:
                assert have[5].utcoffset() == want[5].utcoffset()


def test_pytds_transaction(sandbox_plain, tmp_path):
    db = pytds_database(sandbox_plain, tmp_path)
    table = unique_name("tx")
    with contextlib.closing(pytds_connect(sandbox_plain, tmp_path, database=db)) as c1, \
            contextlib.closing(pytds_connect(sandbox_plain, tmp_path, database=db)) as c2:
        cur1, cur2 = c1.cursor(), c2.cursor()
        cur1.execute(f"CREATE TABLE dbo.{table} (id int NOT NULL PRIMARY KEY, v nvarchar(20) NULL)")
        cur1.execute(f"INSERT INTO dbo.{table} VALUES (%s, %s)", (1, "committed"))

        cur1.execute("BEGIN TRANSACTION")
        cur1.execute(f"INSERT INTO dbo.{table} VALUES (%s, %s)", (2, "uncommitted"))
        cur1.execute("SELECT @@TRANCOUNT")
        assert cur1.fetchone()[0] == 1
        assert _pytds_visible_ids(cur2, table) in ([1], "blocked")
        cur1.execute("ROLLBACK TRANSACTION")
        cur1.execute("SELECT @@TRANCOUNT")
        assert cur1.fetchone()[0] == 0
        assert _pytds_visible_ids(cur1, table) == [1]

        # autocommit=False: pytds opens the transaction with a TDS transaction
        # manager request (TM_BEGIN_XACT) and ends it with TM_ROLLBACK/COMMIT_XACT.
        with contextlib.closing(pytds_connect(sandbox_plain, tmp_path, database=db,
                                              autocommit=False)) as c3:
            cur3 = c3.cursor()
            cur3.execute(f"INSERT INTO dbo.{table} VALUES (%s, %s)", (3, "rolled back"))
            assert _pytds_visible_ids(cur2, table) in ([1], "blocked")
            c3.rollback()
            assert _pytds_visible_ids(cur2, table) == [1]
            cur3.execute(f"INSERT INTO dbo.{table} VALUES (%s, %s)", (4, "committed"))
            c3.commit()
        assert _pytds_visible_ids(cur2, table) == [1, 4]


def _pytds_visible_ids(cur, table):
    cur.execute("SET LOCK_TIMEOUT 2000")
    try:
        cur.execute(f"SELECT id FROM dbo.{table} ORDER BY id")
        return [r[0] for r in cur.fetchall()]
    except tds_base.DatabaseError as exc:
        if exc.number == 1222:
            return "blocked"
        raise


@pytest.mark.parametrize("case", ERROR_CASES, ids=ERROR_IDS)
def test_pytds_errors(sandbox_plain, tmp_path, case):
    name, sql, numbers, _sqlstate = case
    db = pytds_database(sandbox_plain, tmp_path)
    table = unique_name("err")
    with contextlib.closing(pytds_connect(sandbox_plain, tmp_path, database=db)) as conn:
        cur = conn.cursor()
        cur.execute(ERRORS_TABLE_SQL.format(t=table))
        cur.execute(f"INSERT INTO dbo.{table} VALUES (1, 'a')")
        with pytest.raises(tds_base.DatabaseError) as excinfo:
            cur.execute(sql.format(t=table))
        exc = excinfo.value
        assert exc.number in numbers, f"{name}: error {exc.number} ({exc.text}), want one of {numbers}"
        assert exc.severity >= 11, f"{name}: severity {exc.severity}"
        # pytds picks the class from the number (tds_base.prog_errors / integrity_errors).
        expected_class = {"duplicate_pk": tds_base.IntegrityError, "null_into_not_null": tds_base.IntegrityError,
                          "string_too_long": tds_base.OperationalError}.get(name, tds_base.ProgrammingError)
        assert isinstance(exc, expected_class), f"{name}: {type(exc).__name__}"
        cur.execute(f"SELECT COUNT(*) FROM dbo.{table}")
        assert cur.fetchone()[0] == 1


def test_pytds_login_failure(sandbox_plain, tmp_path):
    with pytest.raises(tds_base.OperationalError) as excinfo:
        pytds_connect(sandbox_plain, tmp_path, password="wrong-password")
    assert excinfo.value.number == 18456, f"{excinfo.value.number}: {excinfo.value}"
    assert "Login failed for user 'sa'" in str(excinfo.value)


# ===========================================================================
# FreeTDS: tsql (libtds) and freebcp (db-lib BCP)
# ===========================================================================

TSQL = shutil.which("tsql")
FREEBCP = shutil.which("freebcp")
needs_freetds = pytest.mark.skipif(
    not (TSQL and FREEBCP), reason="FreeTDS tools missing: run scripts/setup-test-env.sh (apt freetds-bin)")


def _freetds_conf(server: SandboxServer, tmp_path: Path, mode: str | None = None) -> Path:
    mode = mode or ("require" if _is_tls(server) else "off")
    return write_freetds_conf(tmp_path, server, mode)


def run_tsql(server: SandboxServer, tmp_path: Path, batches: list[str], *, database: str | None = None,
             password: str = SA_PASSWORD, mode: str | None = None, timeout: float = 120):
    """Run batches through `tsql -S sandbox -o q`, each followed by GO.

    Returns (returncode, stdout lines, stderr text). -o q: no prompts/banners
    and no "(N rows affected)" lines; results are a header line then rows,
    tab-separated, NULL printed as NULL.
    """
    conf = _freetds_conf(server, tmp_path, mode)
    cmd = [TSQL, "-S", "sandbox", "-U", SA_USER, "-P", password, "-o", "q"]
    if database:
        cmd += ["-D", database]
    script = "".join(f"{b}\nGO\n" for b in batches)
    proc = subprocess.run(cmd, input=script.encode("utf-8"), capture_output=True,
                          env=freetds_env(conf), timeout=timeout)
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    lines = out.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return proc.returncode, lines, err


def tsql_messages(stderr: str) -> list[int]:
    return [int(m) for m in re.findall(r"^Msg (\d+) \(severity", stderr, flags=re.M)]


def tsql_ok(result) -> list[str]:
    code, lines, err = result
    msgs = tsql_messages(err)
    assert code == 0 and not msgs, f"tsql failed (exit {code}, messages {msgs}):\n{err}"
    return lines


def tsql_lit(value, decl: str) -> str:
    """A T-SQL literal for a sp_executesql parameter value."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value).replace("e+", "E+").replace("e-", "E-")
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return f"'{value}'"
    if isinstance(value, dt.datetime):
        # datetime accepts at most 3 fraction digits in a string, smalldatetime none.
        timespec = {"datetime": "milliseconds", "smalldatetime": "seconds"}.get(decl, "auto")
        s = value.replace(tzinfo=None).isoformat(sep=" ", timespec=timespec)
        if value.tzinfo is not None:
            z = value.strftime("%z")
            s += f" {z[:3]}:{z[3:]}"
        return f"'{s}'"
    if isinstance(value, (dt.date, dt.time)):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        prefix = "N" if decl.startswith("n") else ""
        return prefix + "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no literal for {value!r}")


_tsql_dbs: dict[int, str] = {}


def tsql_database(server: SandboxServer, tmp_path: Path) -> str:
    if server.port not in _tsql_dbs:
        name = unique_name("fid_tsql")
        tsql_ok(run_tsql(server, tmp_path, [f"CREATE DATABASE {name}"]))
        _tsql_dbs[server.port] = name
    return _tsql_dbs[server.port]


@needs_freetds
def test_tsql_connect(sandbox_any, tmp_path):
    name = unique_name("fid_tsql_conn")
    lines = tsql_ok(run_tsql(sandbox_any, tmp_path, [
        "SELECT DB_NAME() AS db, 1 + 1 AS two, N'ñ' AS enye",
        f"CREATE DATABASE {name}",
        f"USE {name}",
        "SELECT DB_NAME() AS db",
    ]))
    assert lines == ["db\ttwo\tenye", "master\t2\tñ", "db", name], lines
    lines = tsql_ok(run_tsql(sandbox_any, tmp_path, ["SELECT DB_NAME() AS db"], database=name))
    assert lines == ["db", name], lines


@needs_freetds
def test_tsql_connect_login_only_encryption(sandbox_login, tmp_path):
    # encryption = request: TLS offered by the server is used for the login.
    lines = tsql_ok(run_tsql(sandbox_login, tmp_path, ["SELECT 42 AS v"], mode="request"))
    assert lines == ["v", "42"], lines
    lines = tsql_ok(run_tsql(sandbox_login, tmp_path, ["SELECT 43 AS v"], mode="require"))
    assert lines == ["v", "43"], lines


_MONTHS = {m: i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)}


def parse_freetds_temporal(text: str) -> dict:
    """Parse what FreeTDS prints for date/time types.

    FreeTDS formats with its locale formats (no locales.conf here): ISO-like
    'YYYY-MM-DD HH:MM:SS.fffffff [+hh:mm]' or Sybase-like 'Mon dd yyyy hh:mm[:ss[.fff]]AM'.
    Returns the fields present and the number of fraction digits shown.
    """
    text = text.strip()
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
                     r"(?:\s*([+-])(\d{2}):?(\d{2}))?", text)
    if m:
        y, mo, d, h, mi, s, frac, sign, oh, om = m.groups()
        out = {"date": (int(y), int(mo), int(d))}
        if h is not None:
            out["time"] = (int(h), int(mi), int(s) if s else None, frac)
        if sign:
            mins = int(oh) * 60 + int(om)
            out["offset"] = -mins if sign == "-" else mins
        return out
    m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*([AP]M)?", text)
    if m:
        h, mi, s, frac, ampm = m.groups()
        h = int(h)
        if ampm:
            h = h % 12 + (12 if ampm == "PM" else 0)
        return {"time": (h, int(mi), int(s) if s else None, frac)}
    # The year is printed without zero padding ('Jan  1 1 12:00AM' for 0001-01-01).
    m = re.fullmatch(r"([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{1,4})\s+(\d{1,2}):(\d{2})"
                     r"(?::(\d{2})(?:[:.](\d+))?)?\s*([AP]M)", text)
    if m:
        mon, d, y, h, mi, s, frac, ampm = m.groups()
        h = int(h) % 12 + (12 if ampm == "PM" else 0)
        return {"date": (int(y), _MONTHS[mon], int(d)), "time": (h, int(mi), int(s) if s else None, frac)}
    raise AssertionError(f"unrecognised FreeTDS date/time text: {text!r}")


def _check_temporal_text(text: str, exact: str | None, want, col: str, row_id: int) -> None:
    """Compare FreeTDS's text with the expected value at the precision FreeTDS shows."""
    where = f"tsql: row {row_id} column {col} ({COL_TYPES[col]}) printed {text!r}"
    p = parse_freetds_temporal(text)
    # The exact value: 7 fraction digits where the row was inserted from a string.
    if isinstance(want, dt.time):
        h, mi, s, frac = p["time"]
        want_frac = (exact.split(".")[1] if exact and "." in exact else f"{want.microsecond:06d}0")
        assert (h, mi) == (want.hour, want.minute), where
        if s is not None:
            assert s == want.second, where
        if frac:
            assert frac.rstrip("0") == want_frac[:len(frac)].rstrip("0"), where
        return
    if isinstance(want, dt.date) and not isinstance(want, dt.datetime):
        assert p["date"] == (want.year, want.month, want.day), where
        return
    assert isinstance(want, dt.datetime)
    candidates = [want]
    if want.tzinfo is not None:
        if "offset" in p:
            assert p["offset"] * 60 == want.utcoffset().total_seconds(), where
        else:
            # FreeTDS printed no offset: accept the wall time in its own offset or in UTC.
            candidates = [want, want.astimezone(dt.timezone.utc)]
    want_frac_full = None
    if exact and "." in exact:
        want_frac_full = exact.split(".")[1].split(" ")[0]
    errors = []
    for cand in candidates:
        frac_full = want_frac_full or f"{cand.microsecond:06d}0"
        h, mi, s, frac = p["time"]
        ok = p["date"] == (cand.year, cand.month, cand.day) and (h, mi) == (cand.hour, cand.minute)
        if s is not None:
            ok = ok and s == cand.second
        if frac:
            ok = ok and frac.ljust(7, "0")[:7].rstrip("0") == frac_full[:len(frac)].ljust(7, "0")[:7].rstrip("0")
        if ok:
            return
        errors.append(cand)
    raise AssertionError(f"{where}; expected one of {errors}")


def _check_tsql_value(col: str, text: str, row_id: int) -> None:
    want = expected_value(row_id, col)
    where = f"tsql: row {row_id} column {col} ({COL_TYPES[col]}) printed {text[:60]!r}"
    if want is None:
        assert text == "NULL", where
        return
    if isinstance(want, bool):
        assert text == ("1" if want else "0"), where
    elif isinstance(want, int):
        assert text == str(want), where
    elif isinstance(want, Decimal):
        got = Decimal(text)
        if COL_TYPES[col] in ("money", "smallmoney"):
            # FreeTDS may print money with 2 or 4 decimals.
            places = len(text.split(".")[1]) if "." in text else 0
            assert places >= 2, where
            assert got == want.quantize(Decimal(1).scaleb(-places), rounding="ROUND_HALF_UP"), where
        else:
            assert got == want, where
            scale = int(COL_TYPES[col].split(",")[1].rstrip(")"))
            assert len(text.split(".")[1]) == scale, f"{where}: scale {scale} digits expected"
    elif isinstance(want, float):
        rel = 1e-6 if COL_TYPES[col] == "real" else 1e-15
        assert math.isclose(float(text), want, rel_tol=rel), where
    elif isinstance(want, str):
        assert text == want, where
    elif isinstance(want, (bytes, bytearray)):
        hex_text = text[2:] if text.lower().startswith("0x") else text
        assert hex_text.lower() == bytes(want).hex(), where
    elif isinstance(want, uuid.UUID):
        assert uuid.UUID(text) == want, where
    elif isinstance(want, (dt.date, dt.time)):
        exact = {3: ROW3_100NS, 2: ROW2_100NS}.get(row_id, {}).get(col)
        _check_temporal_text(text, exact, want, col, row_id)
    else:  # pragma: no cover
        raise AssertionError(f"unhandled expected value {want!r}")


def _tsql_exec_insert(table: str, row_id: int) -> str:
    values = insert_values(row_id)
    decls = [("id", "int")] + COLUMNS
    params = ", ".join(f"@{name} {decl}" for name, decl in decls)
    assigns = ", ".join(f"@{name} = {tsql_lit(v, decl)}" for (name, decl), v in zip(decls, values))
    cols = ", ".join(name for name, _ in decls)
    vals = ", ".join(f"@{name}" for name, _ in decls)
    return (f"EXEC sp_executesql N'INSERT INTO dbo.{table} ({cols}) VALUES ({vals})', "
            f"N'{params}', {assigns}")


@needs_freetds
def test_tsql_types_roundtrip(sandbox_any, tmp_path):
    # tsql sends language batches only; the parameterised statements are
    # sp_executesql calls written in T-SQL, as a user of tsql would do.
    db = tsql_database(sandbox_any, tmp_path)
    table = unique_name("types")
    tsql_ok(run_tsql(sandbox_any, tmp_path, [create_table_sql(table)], database=db))
    tsql_ok(run_tsql(sandbox_any, tmp_path, [_tsql_exec_insert(table, r) for r in ROWS], database=db))
    header = "\t".join(["id"] + COL_NAMES)
    for row_id in ROWS:
        select = ("EXEC sp_executesql N'" + SELECT_ROW_SQL.format(table=table, p="@id")
                  + "', N'@id int', @id = " + str(row_id))
        lines = tsql_ok(run_tsql(sandbox_any, tmp_path, [select], database=db))
        assert len(lines) == 2 and lines[0] == header, lines[:1]
        fields = lines[1].split("\t")
        assert len(fields) == len(COL_NAMES) + 1, f"row {row_id}: {len(fields)} fields"
        assert fields[0] == str(row_id)
        for col, text in zip(COL_NAMES, fields[1:]):
            _check_tsql_value(col, text, row_id)
    for row_id in (2, 3):
        p = hundred_ns_params(row_id)
        sql = (f"EXEC sp_executesql N'SELECT COUNT(*) AS n FROM dbo.{table} WHERE id = @id "
               "AND c_time7 = @t AND c_datetime2_7 = @d AND c_dto7 = @o', "
               "N'@id int, @t nvarchar(40), @d nvarchar(40), @o nvarchar(40)', "
               f"@id = {p[0]}, @t = N'{p[1]}', @d = N'{p[2]}', @o = N'{p[3]}'")
        lines = tsql_ok(run_tsql(sandbox_any, tmp_path, [sql], database=db))
        assert lines[-1] == "1", f"row {row_id}: 100ns values not stored exactly: {lines}"


def _freebcp(server: SandboxServer, tmp_path: Path, target: str, datafile: Path, *, via_host_port: bool):
    conf = _freetds_conf(server, tmp_path)
    server_arg = f"{server.host}:{server.port}" if via_host_port else "sandbox"
    cmd = [FREEBCP, target, "in", str(datafile), "-c", "-t", "\t", "-r", "\n",
           "-S", server_arg, "-U", SA_USER, "-P", SA_PASSWORD, "-b", "100"]
    # 250 rows take well under a second; a hang (see test_freebcp_in) should not cost minutes.
    proc = subprocess.run(cmd, capture_output=True, env=freetds_env(conf), timeout=30)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


@needs_freetds
def test_freebcp_in(sandbox_plain, tmp_path):
    db = tsql_database(sandbox_plain, tmp_path)
    table = unique_name("bcp")
    tsql_ok(run_tsql(sandbox_plain, tmp_path, [BULK_DDL.format(t=table)], database=db))
    rows = bulk_rows(500)

    def tsv_line(r) -> str:
        # freebcp -c: an empty field loads NULL. The datetimeoffset column is
        # left NULL here: freebcp converts character data client-side and
        # FreeTDS 1.3's string-to-datetimeoffset parsing is not something this
        # test should depend on (pytds and mssql-python cover that type in bulk).
        return "\t".join([
            str(r[0]), "" if r[1] is None else r[1], str(r[2]),
            r[3].isoformat(sep=" ", timespec="milliseconds"), "1" if r[4] else "0", "",
        ]) + "\n"

    first, second = tmp_path / "part1.tsv", tmp_path / "part2.tsv"
    first.write_text("".join(tsv_line(r) for r in rows[:250]), encoding="utf-8")
    second.write_text("".join(tsv_line(r) for r in rows[250:]), encoding="utf-8")
    target = f"{db}.dbo.{table}"
    for datafile, via_host_port in ((first, True), (second, False)):
        code, out, err = _freebcp(sandbox_plain, tmp_path, target, datafile, via_host_port=via_host_port)
        assert code == 0, f"freebcp (-S {'host:port' if via_host_port else 'sandbox'}) exit {code}\n{out}\n{err}"
        assert re.search(r"^250 rows copied", out, flags=re.M), out

    # Check the rows with a different client.
    with contextlib.closing(pytds_connect(sandbox_plain, tmp_path, database=db)) as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT id, name, amount, created, flag, offset_at FROM dbo.{table} ORDER BY id")
        got = [tuple(r) for r in cur.fetchall()]
    assert len(got) == 500
    for want, have in zip(rows, got):
        assert have[:5] == want[:5], f"bcp row {want[0]}: {have} != {want}"
        assert have[5] is None, f"bcp row {want[0]}: offset_at {have[5]!r}, loaded as NULL"


@needs_freetds
def test_tsql_transaction(sandbox_plain, tmp_path):
    db = tsql_database(sandbox_plain, tmp_path)
    table = unique_name("tx")
    tsql_ok(run_tsql(sandbox_plain, tmp_path, [
        f"CREATE TABLE dbo.{table} (id int NOT NULL PRIMARY KEY, v nvarchar(20) NULL)",
        f"INSERT INTO dbo.{table} VALUES (1, N'committed')",
    ], database=db))

    # Session 1 stays open (interactive tsql) with an uncommitted insert while
    # session 2 looks; stdout is line-buffered through stdbuf so markers arrive.
    conf = _freetds_conf(sandbox_plain, tmp_path)
    stdbuf = shutil.which("stdbuf")
    cmd = ([stdbuf, "-oL"] if stdbuf else []) + [TSQL, "-S", "sandbox", "-U", SA_USER, "-P", SA_PASSWORD,
                                                 "-o", "q", "-D", db]
    s1 = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=freetds_env(conf))
    lines: list[str] = []
    seen = threading.Event()

    def reader():
        for raw in s1.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            if line == "step1":
                seen.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        s1.stdin.write((f"BEGIN TRANSACTION\nINSERT INTO dbo.{table} VALUES (2, N'uncommitted')\n"
                        "SELECT @@TRANCOUNT AS trancount\nSELECT 'step1' AS marker\nGO\n").encode())
        s1.stdin.flush()
        assert seen.wait(30), f"session 1 did not reach step1; stdout so far: {lines}"
        assert "1" in lines, f"@@TRANCOUNT inside BEGIN TRANSACTION: {lines}"
        code, out, err = run_tsql(sandbox_plain, tmp_path, [
            "SET LOCK_TIMEOUT 2000", f"SELECT id FROM dbo.{table} ORDER BY id"], database=db)
        msgs = tsql_messages(err)
        if msgs:
            assert msgs == [1222], f"second session: {err}"
        else:
            assert out == ["id", "1"], f"second session saw uncommitted rows: {out}"
        s1.stdin.write((f"ROLLBACK TRANSACTION\nGO\nSELECT @@TRANCOUNT AS trancount\nGO\n"
                        f"SELECT id FROM dbo.{table} ORDER BY id\nGO\n").encode())
        s1.stdin.close()
        s1.wait(timeout=30)
        t.join(timeout=5)
    finally:
        if s1.poll() is None:
            s1.kill()
            s1.wait()
    err1 = s1.stderr.read().decode("utf-8", "replace")
    assert not tsql_messages(err1), err1
    tail = lines[lines.index("step1") + 1:]
    assert tail == ["trancount", "0", "id", "1"], tail
    lines2 = tsql_ok(run_tsql(sandbox_plain, tmp_path, [f"SELECT COUNT(*) AS n FROM dbo.{table}"], database=db))
    assert lines2 == ["n", "1"], lines2


@needs_freetds
@pytest.mark.parametrize("case", ERROR_CASES, ids=ERROR_IDS)
def test_tsql_errors(sandbox_plain, tmp_path, case):
    name, sql, numbers, _sqlstate = case
    db = tsql_database(sandbox_plain, tmp_path)
    table = unique_name("err")
    tsql_ok(run_tsql(sandbox_plain, tmp_path, [
        ERRORS_TABLE_SQL.format(t=table), f"INSERT INTO dbo.{table} VALUES (1, 'a')"], database=db))
    code, lines, err = run_tsql(sandbox_plain, tmp_path, [sql.format(t=table),
                                                          f"SELECT COUNT(*) AS n FROM dbo.{table}"], database=db)
    msgs = tsql_messages(err)
    assert msgs and msgs[0] in numbers, f"{name}: messages {msgs}, want one of {numbers}\n{err}"
    m = re.search(r"^Msg (\d+) \(severity (\d+), state (\d+)\)", err, flags=re.M)
    assert int(m.group(2)) >= 11, err
    # The session survives the error; the next batch runs.
    assert lines[-2:] == ["n", "1"], lines


@needs_freetds
def test_tsql_login_failure(sandbox_plain, tmp_path):
    code, lines, err = run_tsql(sandbox_plain, tmp_path, ["SELECT 1"], password="wrong-password")
    assert code != 0, f"tsql connected with a wrong password: {lines}"
    assert 18456 in tsql_messages(err), err
    assert "Login failed for user 'sa'" in err, err


# ===========================================================================
# Microsoft Entra ID: mssql-python signs in with a token from the Entra ID
# double, through its documented token_provider (the driver sends it in the
# LOGIN7 FEDAUTH feature); the sandbox checks it and signs the driver in as
# the application's login FROM EXTERNAL PROVIDER.
# ===========================================================================

ENTRA_APP = ("6d3f2a1b-0000-4000-8000-00000000e71a", "0b7c3e5d-0000-4000-8000-0000000000a1",
             "s3cret~value")
ENTRA_STRANGER = ("0000aaaa-0000-4000-8000-00000000beef", "0000bbbb-0000-4000-8000-00000000beef",
                  "other~secret")


def _client_secret_credential(authority: str, tenant: str, ca_file: str, client_id: str, secret: str):
    """Microsoft's azure-identity ClientSecretCredential (through MSAL), pointed at
    the Entra ID double as at any sovereign cloud: its authority host over HTTPS,
    trusting the double's CA, without instance discovery (which asks the public
    cloud)."""
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(tenant, client_id, secret, authority=authority,
                                  connection_verify=ca_file, disable_instance_discovery=True)


@pytest.fixture(scope="module")
def sandbox_entra(tmp_path_factory):
    from processes import start_sqlserver, stop_process

    ca_file = tmp_path_factory.mktemp("entra-ca") / "ca.pem"
    p, host, port = start_sqlserver(
        "sandbox-sqlserver-entra", tmp_path_factory.mktemp("entra-logs"),
        "--user", SA_USER, "--password", SA_PASSWORD, "--encryption", "login",
        "--entra-app", ":".join(ENTRA_APP), "--entra-app", ":".join(ENTRA_STRANGER),
        "--entra-ca-file", str(ca_file),
    )
    fields = dict(f.split("=", 1) for f in p.ready_line.split()[3:])
    server = SandboxServer(encryption="login", host=host, port=port, proc=p.proc, log_path=p.log_path)
    with contextlib.closing(mssql_connect(server)) as conn:
        conn.cursor().execute(
            f"CREATE LOGIN [etl-bridge] FROM EXTERNAL PROVIDER WITH OBJECT_ID = '{ENTRA_APP[1]}'")
    yield server, fields["entra"], fields["tenant"], str(ca_file)
    stop_process(p.proc)


def test_mssql_python_signs_in_with_an_entra_id_token(sandbox_entra):
    server, authority, tenant, ca_file = sandbox_entra

    class Recording:
        """The credential, with the scopes the driver asked it for."""

        def __init__(self, credential) -> None:
            self.credential, self.scopes = credential, []

        def get_token(self, *scopes, **kwargs):
            self.scopes.extend(scopes)
            return self.credential.get_token(*scopes, **kwargs)

    provider = Recording(_client_secret_credential(authority, tenant, ca_file, ENTRA_APP[0], ENTRA_APP[2]))
    conn_str = f"Server={server.host},{server.port};Database=master;Encrypt=yes;TrustServerCertificate=yes"
    with contextlib.closing(mssql_python.connect(conn_str, token_provider=provider, timeout=15)) as conn:
        cur = conn.cursor()
        cur.execute("SELECT SUSER_SNAME(), DB_NAME()")
        assert tuple(cur.fetchone()) == ("etl-bridge", "master")
    assert provider.scopes == ["https://database.windows.net/.default"]

    # An application with no login in the server: Azure SQL's 18456.
    stranger = _client_secret_credential(authority, tenant, ca_file, ENTRA_STRANGER[0], ENTRA_STRANGER[2])
    with pytest.raises(Exception) as refused:
        mssql_python.connect(conn_str, token_provider=stranger, timeout=15)
    assert "token-identified principal" in str(refused.value) or "18456" in str(refused.value), refused.value


# ===========================================================================
# Windows authentication (Kerberos): Microsoft's driver signs in with
# Trusted_Connection=yes through the system's GSSAPI, with a ticket from a real
# MIT KDC in a private realm; the sandbox accepts it with its service keytab.
# ===========================================================================


def test_mssql_python_signs_in_with_kerberos(tmp_path):
    from processes import start_kdc, start_sqlserver, stop_process

    realm = start_kdc("kdc-fidelity", tmp_path, tmp_path / "realm", ("bridge", tmp_path / "bridge.keytab"))
    seed = tmp_path / "windows.sql"
    seed.write_text("CREATE LOGIN [BRIDGE\\bridge] FROM WINDOWS\n")
    p, host, port = start_sqlserver(
        "sandbox-sqlserver-kerberos", tmp_path, "--encryption", "login",
        "--seed", str(seed), "--kerberos-keytab", str(tmp_path / "sql.keytab"))
    try:
        # The driver names the service by the host it connects to, or by its
        # canonical name: both are the sandbox's principal.
        for name in (host, "localhost"):
            realm.add_principal(f"MSSQLSvc/{name}:{port}", tmp_path / "sql.keytab")
        env = {**realm.env(), "KRB5CCNAME": f"FILE:{tmp_path / 'cc'}"}
        kinit = subprocess.run(["kinit", "-kt", str(tmp_path / "bridge.keytab"), "bridge@BRIDGE.TEST"],
                               env=env, capture_output=True, text=True, timeout=60)
        assert kinit.returncode == 0, kinit.stderr
        # mssql-python reads the Kerberos settings from the process environment.
        code = (
            "import mssql_python, sys\n"
            f"conn = mssql_python.connect('Server={host},{port};Database=master;Trusted_Connection=yes;"
            "Encrypt=yes;TrustServerCertificate=yes', timeout=15)\n"
            "cur = conn.cursor(); cur.execute('SELECT SUSER_SNAME()'); print(cur.fetchone()[0])\n"
        )
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stdout.strip() == "BRIDGE\\bridge", run.stdout
    finally:
        stop_process(p.proc)
        stop_process(realm.proc.proc)

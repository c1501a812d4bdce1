"""The distribution builds as the README says (`pip wheel ./client/python`)
into one abi3 wheel, which installs into a fresh virtualenv and imports
there: the REST client and the native BridgeOperator, from the wheel alone.

Built in the debug profile (MATURIN_PEP517_ARGS, reusing target/debug from the
test run); the README's command builds the release one the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_wheel_builds_and_installs_in_a_fresh_venv(tmp_path):
    env = dict(os.environ, MATURIN_PEP517_ARGS="--profile dev", CARGO_TARGET_DIR=str(REPO_ROOT / "target"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
         str(REPO_ROOT / "client" / "python"), "-w", str(tmp_path / "dist")],
        check=True, env=env, cwd=tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    # One wheel for every CPython >= 3.10 (the stable ABI).
    assert wheel.name.startswith("sql_databricks_bridge-0.1.0-cp310-abi3-"), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("sql_databricks_bridge/_native") and n.endswith(".so") for n in names), names
    assert "sql_databricks_bridge/sdk/databricks.py" in names
    assert any(n.startswith("sql_databricks_bridge/_generated/") for n in names)
    assert not any("__pycache__" in n for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # --no-deps: the import below needs none of them (pyarrow, polars and
    # pyspark are imported by the conversions that use them).
    subprocess.run(
        [str(py), "-m", "pip", "install", "--no-deps", "--quiet", "--disable-pip-version-check", str(wheel)],
        check=True,
    )
    out = subprocess.run(
        [str(py), "-c",
         "import sql_databricks_bridge._native as n, sql_databricks_bridge.sdk.databricks as d;"
         "print(n.__version__, d.BridgeOperator.__name__, issubclass(d.SyncError, d.BridgeError))"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    )
    assert out.stdout.split() == ["0.1.0", "BridgeOperator", "True"]
    # Without settings: a SettingsError naming what is missing, not a crash.
    bad = subprocess.run(
        [str(py), "-c",
         "from sql_databricks_bridge.sdk.databricks import BridgeOperator, SettingsError\n"
         "try:\n    BridgeOperator()\nexcept SettingsError as e:\n    print(e.kind, '|', e.message)\n"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
    )
    assert bad.stdout.startswith("settings |") and "SQLSERVER_HOST" in bad.stdout, bad.stdout + bad.stderr

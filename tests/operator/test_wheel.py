"""The distribution builds as the README says (`pip wheel ./client/python`)
into one abi3 wheel, which installs into a fresh virtualenv of every CPython
>= 3.10 the machine has and imports there: the native BridgeOperator and its
errors, from the wheel alone.

Built in the debug profile (MATURIN_PEP517_ARGS, reusing target/debug from the
test run); the README's command builds the release one the same way.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def other_pythons():
    """Every other CPython >= 3.10 this machine has (on PATH or under
    pyenv), one per minor version: the abi3 wheel must import on each."""
    found = {}
    candidates = [shutil.which(f"python3.{m}") for m in range(10, 20)]
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3")))
    for exe in filter(None, candidates):
        probe = subprocess.run([exe, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        version = probe.stdout.strip()
        if probe.returncode != 0 or not version:
            continue
        if tuple(map(int, version.split("."))) >= (3, 10) and version != "%d.%d" % sys.version_info[:2]:
            found.setdefault(version, exe)
    return found


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
    # The module Spark's data source lookup finds by its prefix (automatic registration).
    assert "pyspark_sqlserver_bridge/__init__.py" in names
    assert any(n.startswith("sql_databricks_bridge/_generated/") for n in names)
    assert not any("__pycache__" in n for n in names)

    for version, exe in {"%d.%d" % sys.version_info[:2]: sys.executable, **other_pythons()}.items():
        py = install_in_fresh_venv(exe, wheel, tmp_path / f"venv-{version}")
        out = subprocess.run(
            [str(py), "-c",
             "import sql_databricks_bridge._native as n, sql_databricks_bridge.sdk.databricks as d;"
             "print(n.__version__, d.BridgeOperator.__name__, issubclass(d.SyncError, d.BridgeError))"],
            check=True, capture_output=True, text=True, cwd=tmp_path,
        )
        assert out.stdout.split() == ["0.1.0", "BridgeOperator", "True"], (version, out.stdout)
        # Without settings: a SettingsError naming what is missing, not a crash.
        bad = subprocess.run(
            [str(py), "-c",
             "from sql_databricks_bridge.sdk.databricks import BridgeOperator, SettingsError\n"
             "try:\n    BridgeOperator()\nexcept SettingsError as e:\n    print(e.kind, '|', e.message)\n"],
            check=True, capture_output=True, text=True, cwd=tmp_path,
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
        )
        assert bad.stdout.startswith("settings |") and "SQLSERVER_HOST" in bad.stdout, (
            version, bad.stdout + bad.stderr)

def install_in_fresh_venv(python, wheel, venv):
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # --no-deps: the import needs none of them (pyarrow, polars and
    # pyspark are imported by the conversions that use them).
    subprocess.run(
        [str(py), "-m", "pip", "install", "--no-deps", "--quiet", "--disable-pip-version-check", str(wheel)],
        check=True,
    )
    return py

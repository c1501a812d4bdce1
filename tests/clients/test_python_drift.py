"""The Python client cannot drift from openapi.json.

* The committed generated code (client/python/sql_databricks_bridge/_generated)
  is exactly what client/python/regenerate.sh makes from the current spec.
* Every operationId of the spec has a method in the facade's OPERATIONS (on
  both clients), and every entry there names an operation the spec has.
"""

from __future__ import annotations

import filecmp
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from sql_databricks_bridge.sdk import EXEMPT_OPERATIONS, OPERATIONS, AsyncBridgeClient, BridgeClient

REPO_ROOT = Path(__file__).resolve().parents[2]
CLIENT_DIR = REPO_ROOT / "client" / "python"
GENERATED = CLIENT_DIR / "sql_databricks_bridge" / "_generated"
SPEC = REPO_ROOT / "openapi.json"


def spec_operation_ids() -> set[str]:
    doc = json.loads(SPEC.read_text())
    ids = set()
    for item in doc["paths"].values():
        for method, op in item.items():
            if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}:
                ids.add(op["operationId"])
    return ids


def tree(root: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if "__pycache__" in rel.parts or ".ruff_cache" in rel.parts or path.is_dir():
            continue
        out[rel.as_posix()] = path.read_bytes()
    return out


def test_generated_code_matches_the_spec(tmp_path):
    out = tmp_path / "_generated"
    env = dict(os.environ, PYTHON=sys.executable)
    run = subprocess.run(
        ["bash", str(CLIENT_DIR / "regenerate.sh"), str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, f"regenerate.sh failed:\n{run.stdout}\n{run.stderr}"
    fresh, committed = tree(out), tree(GENERATED)
    missing = sorted(set(fresh) - set(committed))
    extra = sorted(set(committed) - set(fresh))
    changed = sorted(p for p in set(fresh) & set(committed) if fresh[p] != committed[p])
    assert not (missing or extra or changed), (
        "client/python/sql_databricks_bridge/_generated is out of date with openapi.json "
        "(or was edited by hand). Run client/python/regenerate.sh and commit the result.\n"
        f"  missing: {missing}\n  not generated: {extra}\n  differ: {changed}"
    )
    # And the comparison itself compares something.
    assert "api/jobs/extract.py" in committed and filecmp.cmp(out / "client.py", GENERATED / "client.py", shallow=False)


def test_every_operation_has_a_facade_method():
    ops = spec_operation_ids()
    assert ops, "no operationIds in openapi.json"
    without_method = sorted(ops - set(OPERATIONS) - set(EXEMPT_OPERATIONS))
    assert not without_method, (
        f"operations of openapi.json with no method in sql_databricks_bridge.sdk OPERATIONS: {without_method} "
        "(add the method to BridgeClient and AsyncBridgeClient, and to OPERATIONS)"
    )
    gone = sorted((set(OPERATIONS) | set(EXEMPT_OPERATIONS)) - ops)
    assert not gone, f"OPERATIONS / EXEMPT_OPERATIONS name operations openapi.json does not have: {gone}"
    assert not set(OPERATIONS) & set(EXEMPT_OPERATIONS)


def test_the_mapped_methods_exist_on_both_clients():
    for op, name in OPERATIONS.items():
        sync_method = getattr(BridgeClient, name, None)
        async_method = getattr(AsyncBridgeClient, name, None)
        assert callable(sync_method), f"BridgeClient.{name} (operation {op}) is missing"
        assert callable(async_method), f"AsyncBridgeClient.{name} (operation {op}) is missing"
        assert not inspect.iscoroutinefunction(sync_method), f"BridgeClient.{name} must be sync"
        assert inspect.iscoroutinefunction(async_method), f"AsyncBridgeClient.{name} must be async def"
        assert inspect.signature(sync_method) == inspect.signature(async_method), name


def test_both_clients_have_the_same_public_methods():
    def public(cls):
        return {n for n, v in inspect.getmembers(cls) if not n.startswith("_") and callable(v)} - {"close", "aclose"}

    assert public(BridgeClient) == public(AsyncBridgeClient)
    helpers = public(BridgeClient) - set(OPERATIONS.values())
    assert helpers == {"wait_for_job", "wait_for_sync_event"}, helpers


def test_each_mapped_operation_has_a_generated_module():
    """The generated code has a function for every operation the facade maps."""
    modules = {p.stem for p in (GENERATED / "api").rglob("*.py") if p.stem != "__init__"}
    assert set(OPERATIONS) | set(EXEMPT_OPERATIONS) <= modules, sorted(set(OPERATIONS) - modules)


def test_tool_versions_are_the_pinned_ones():
    """regenerate.sh and tests/requirements.txt pin the same generator and ruff."""
    script = (CLIENT_DIR / "regenerate.sh").read_text()
    reqs = (REPO_ROOT / "tests" / "requirements.txt").read_text()

    def pin(pattern: str, text: str) -> str:
        m = re.search(pattern, text, re.M)
        assert m, pattern
        return m.group(1)

    assert pin(r'^OPC_VERSION="([^"]+)"', script) == pin(r"^openapi-python-client==(\S+)", reqs)
    assert pin(r'^RUFF_VERSION="([^"]+)"', script) == pin(r"^ruff==(\S+)", reqs)


def test_generated_modules_say_they_are_generated():
    modules = sorted(GENERATED.rglob("*.py"))
    assert len(modules) > 20
    for path in modules:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# Generated by client/python/regenerate.sh"), path
        assert "Do not edit by hand" in first, path

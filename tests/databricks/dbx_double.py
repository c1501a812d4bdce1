"""Starting and stopping the Databricks workspace double for the contract
tests, and their fixtures (imported by the test modules: this directory has
no conftest.py, so it never shadows tests/fidelity/conftest.py when both run
in one pytest invocation).

The double (`bridge-sandbox databricks`, crate `sandbox/`) is started once per
test session with the demo seed, a personal access token and one OAuth M2M
client:

    bridge-sandbox databricks --port 0 --token dapi-sandbox \
        --client-id sandbox-sp --client-secret sandbox-secret \
        --seed sandbox/seed/databricks_demo.sql --execution-delay-ms 300 --chunk-bytes 65536

It prints `READY databricks http://127.0.0.1:<port> warehouse=<id>` when it
listens and runs until SIGTERM (started by `tests/processes.py`). A missing
binary is an error, not a skip: these tests are the double's contract, run with
the official `databricks-sdk`.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from processes import REPO_ROOT, Proc, start_databricks  # noqa: E402

TOKEN = "dapi-sandbox"
CLIENT_ID = "sandbox-sp"
CLIENT_SECRET = "sandbox-secret"


@dataclass
class Workspace:
    host: str
    warehouse_id: str
    process: Proc

    def log_tail(self, n: int = 40) -> str:
        return self.process.log_tail(n)


def start_workspace(tmp: Path, *extra: str) -> Workspace:
    p, url, warehouse = start_databricks(
        f"databricks-{uuid.uuid4().hex[:8]}", tmp,
        "--token", TOKEN, "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
        "--seed", str(REPO_ROOT / "sandbox" / "seed" / "databricks_demo.sql"),
        *extra,
    )
    return Workspace(host=url, warehouse_id=warehouse, process=p)


def stop_workspace(ws: Workspace) -> None:
    ws.process.stop()


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Workspace:
    ws = start_workspace(
        tmp_path_factory.mktemp("databricks"),
        "--execution-delay-ms", "300",
        "--chunk-bytes", "65536",
        "--max-upload-bytes", str(4 * 1024 * 1024),
    )
    yield ws
    stop_workspace(ws)


@pytest.fixture()
def client(workspace):
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient(host=workspace.host, token=TOKEN)


@pytest.fixture()
def unique() -> str:
    return uuid.uuid4().hex[:10]

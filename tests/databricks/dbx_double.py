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
listens and runs until SIGTERM. The binary comes from $BRIDGE_SANDBOX_BIN,
default target/debug/bridge-sandbox. A missing binary is an error, not a skip:
these tests are the double's contract, run with the official `databricks-sdk`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = "dapi-sandbox"
CLIENT_ID = "sandbox-sp"
CLIENT_SECRET = "sandbox-secret"
READY_TIMEOUT_S = 60.0


def sandbox_binary() -> Path:
    raw = os.environ.get("BRIDGE_SANDBOX_BIN")
    path = Path(raw) if raw else REPO_ROOT / "target" / "debug" / "bridge-sandbox"
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"sandbox binary not found or not executable: {path}\n"
            "Build it with `cargo build -p bridge-sandbox` or point BRIDGE_SANDBOX_BIN at it.",
            pytrace=False,
        )
    return path


@dataclass
class Workspace:
    host: str
    warehouse_id: str
    proc: subprocess.Popen
    log_path: Path

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no log>"


def start_workspace(tmp: Path, *extra: str) -> Workspace:
    log_path = tmp / f"databricks-{uuid.uuid4().hex[:8]}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [
            str(sandbox_binary()), "databricks", "--port", "0", "--token", TOKEN,
            "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
            "--seed", str(REPO_ROOT / "sandbox" / "seed" / "databricks_demo.sql"),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(READY_TIMEOUT_S)
    text = line[0].decode().strip() if line else ""
    if not text.startswith("READY databricks "):
        proc.kill()
        pytest.fail(f"databricks double did not start (got {text!r}); log:\n"
                    f"{log_path.read_text(errors='replace')}", pytrace=False)
    _, _, url, wh = text.split()
    return Workspace(host=url, warehouse_id=wh.split("=", 1)[1], proc=proc, log_path=log_path)


def stop_workspace(ws: Workspace) -> None:
    ws.proc.send_signal(signal.SIGTERM)
    try:
        ws.proc.wait(10)
    except subprocess.TimeoutExpired:
        ws.proc.kill()
        ws.proc.wait(5)

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

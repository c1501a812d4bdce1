"""Fixtures for the Python client tests: the real server with both sandboxes.

Started once per session, on first use (the drift tests need none of it):

    bridge-sandbox sqlserver  --port 0 --seed sandbox/seed/demo.sql
        -> "READY sqlserver 127.0.0.1:<port>"
    bridge-sandbox databricks --port 0 --token dapi-test --seed sandbox/seed/databricks_demo.sql
        -> "READY databricks <url> warehouse=<id>"
    sql-databricks-bridge serve --port 0 --sync-interval 1 ...   (in a temp copy of queries/ and config/)
        -> "listening on http://127.0.0.1:<port>"

Binaries: $BRIDGE_SANDBOX_BIN and $BRIDGE_BIN, default target/debug/ under the
repository root; a missing one is an error, not a skip. Every process runs in
its own session and is stopped (SIGTERM, then SIGKILL) at the end.

The client under test is the working tree's client/python (put first on
sys.path), so the tests never run a stale installed copy.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from processes import (  # noqa: E402
    REPO_ROOT, Proc, bridge_bin, start_databricks, start_process, start_sqlserver,
)

CLIENT_DIR = REPO_ROOT / "client" / "python"
sys.path.insert(0, str(CLIENT_DIR))

COLOMBIA_TOKEN = "demo-colombia-token"
MEXICO_TOKEN = "demo-mexico-token"
DATABRICKS_TOKEN = "dapi-test"
SA_PASSWORD = "Bridge!Passw0rd"

# Variables of the environment that would change what `serve` connects to.
_SCRUBBED_PREFIXES = ("BRIDGE_", "SQLSERVER_", "DATABRICKS_")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(extra)
    return env


@dataclass
class Bridge:
    """The running server and what it runs against."""

    url: str
    workdir: Path
    sqlserver_addr: str
    databricks_url: str
    procs: list[Proc]

    def assert_alive(self) -> None:
        for p in self.procs:
            if p.proc.poll() is not None:
                pytest.fail(f"{p.name} exited with {p.proc.returncode}; log tail:\n{p.log_tail()}", pytrace=False)

    def server_log(self) -> str:
        return self.procs[-1].log_tail()


def start_bridge(workdir: Path, log_dir: Path, env: dict[str, str], name: str, *extra_args: str) -> Proc:
    cmd = [
        str(bridge_bin()), "serve",
        "--port", "0",
        "--permissions-file", "config/permissions.yaml",
        "--jobs-db", str(workdir / f"{name}-jobs.sqlite"),
        "--audit-log", str(workdir / f"{name}-audit.jsonl"),
        "--shutdown-timeout", "2",
        *extra_args,
    ]
    return start_process(name, cmd, cwd=workdir, env=env, ready_prefix="listening on ", log_dir=log_dir)


def copy_inputs(workdir: Path) -> None:
    shutil.copytree(REPO_ROOT / "queries", workdir / "queries")
    shutil.copytree(REPO_ROOT / "config", workdir / "config")


def _world(tmp_path_factory, prefix: str, *serve_args: str):
    """Both sandboxes with the demo data and `serve` over them, in a copy of
    queries/ and config/; stopped when the generator is closed."""
    workdir = tmp_path_factory.mktemp(f"{prefix}-work")
    log_dir = tmp_path_factory.mktemp(f"{prefix}-logs")
    copy_inputs(workdir)
    procs: list[Proc] = []
    try:
        sql, host, port = start_sqlserver(
            f"{prefix}-sqlserver", log_dir, "--seed", str(REPO_ROOT / "sandbox/seed/demo.sql"), env=clean_env(),
        )
        procs.append(sql)
        dbx, dbx_url, _ = start_databricks(
            f"{prefix}-databricks", log_dir, "--token", DATABRICKS_TOKEN,
            "--seed", str(REPO_ROOT / "sandbox/seed/databricks_demo.sql"), env=clean_env(),
        )
        procs.append(dbx)
        env = clean_env(
            SQLSERVER_HOST=f"{host},{port}",
            SQLSERVER_USERNAME="sa",
            SQLSERVER_PASSWORD=SA_PASSWORD,
            SQLSERVER_TRUST_SERVER_CERTIFICATE="true",
            DATABRICKS_HOST=dbx_url,
            DATABRICKS_TOKEN=DATABRICKS_TOKEN,
        )
        server = start_bridge(workdir, log_dir, env, f"{prefix}-serve", *serve_args)
        procs.append(server)
        url = server.ready_line.split()[2]  # listening on http://127.0.0.1:<port>
        yield Bridge(url=url, workdir=workdir, sqlserver_addr=f"{host}:{port}", databricks_url=dbx_url, procs=procs)
    finally:
        for p in reversed(procs):
            p.stop()


@pytest.fixture(scope="session")
def bridge(tmp_path_factory) -> Bridge:
    yield from _world(tmp_path_factory, "bridge", "--sync-interval", "1")


@pytest.fixture(scope="session")
def fuzz_bridge(tmp_path_factory) -> Bridge:
    """A server of its own for the fuzzer, over sandboxes of its own.

    Fuzzed requests queue jobs and write sync events; they must not reach
    the `bridge` other tests list and count. `--no-sync`: events stay pending.
    """
    yield from _world(tmp_path_factory, "fuzz", "--no-sync")


@pytest.fixture()
def unready_bridge(tmp_path) -> str:
    """A server whose SQL Server and Databricks do not answer (nothing listens there)."""
    copy_inputs(tmp_path)
    env = clean_env(
        SQLSERVER_HOST="127.0.0.1,1",
        SQLSERVER_USERNAME="sa",
        SQLSERVER_PASSWORD=SA_PASSWORD,
        DATABRICKS_HOST="http://127.0.0.1:1",
        DATABRICKS_TOKEN=DATABRICKS_TOKEN,
    )
    proc = start_bridge(tmp_path, tmp_path, env, "bridge-unready", "--no-sync", "--ready-timeout", "2")
    try:
        yield proc.ready_line.split()[2]
    finally:
        proc.stop()


# --------------------------------------------------------------------------
# A scripted HTTP server, for what the real one cannot be made to do on
# demand: transient 503s, Retry-After, slow or non-JSON answers.
# --------------------------------------------------------------------------

@dataclass
class Answer:
    status: int = 200
    body: object = b""  # bytes, str, or JSON-able
    headers: dict[str, str] | None = None
    delay: float = 0.0


class FakeServer:
    """Answers each (method, path) with the next Answer of its script (the last one repeats)."""

    def __init__(self) -> None:
        import http.server
        import json as _json

        self.scripts: dict[tuple[str, str], list[Answer]] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                with fake._lock:
                    fake.requests.append((self.command, self.path, dict(self.headers), body))
                    script = fake.scripts.get((self.command, path))
                    if not script:
                        answer = Answer(404, {"code": "not_found", "message": f"no script for {self.command} {path}"})
                    else:
                        answer = script.pop(0) if len(script) > 1 else script[0]
                if answer.delay:
                    time.sleep(answer.delay)
                payload = answer.body
                ctype = "application/json"
                if isinstance(payload, str):
                    payload, ctype = payload.encode(), "text/plain; charset=utf-8"
                elif not isinstance(payload, bytes):
                    payload = _json.dumps(payload).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in (answer.headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = do_DELETE = _answer

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-bridge", daemon=True
        )
        self._thread.start()

    def script(self, method: str, path: str, *answers: Answer | tuple) -> None:
        """Answers in order; a tuple is Answer's arguments: (status, body, headers, delay)."""
        with self._lock:
            self.scripts[(method, path)] = [a if isinstance(a, Answer) else Answer(*a) for a in answers]

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for m, p, _, _ in self.requests if m == method and p.split("?", 1)[0] == path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture()
def fake_server():
    server = FakeServer()
    try:
        yield server
    finally:
        server.close()

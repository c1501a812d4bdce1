"""Starting and stopping the sandboxes and the bridge for the Python tests,
written once (the fidelity, Databricks contract, client and operator tests
import it; `tests/` is put on `sys.path` by the module that imports it).

Every program here prints a line when it is ready — `READY sqlserver
127.0.0.1:<port>`, `READY databricks <url> warehouse=<id>`, `listening on
http://127.0.0.1:<port>` — and runs until SIGTERM. Binaries come from
$BRIDGE_SANDBOX_BIN and $BRIDGE_BIN, default target/debug/ under the
repository root; a missing one is an error, not a skip. Each process runs in
its own session, its stderr in a log file, and is stopped with SIGTERM, then
SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def binary(env_var: str, default: str) -> Path:
    """The binary `$env_var` names, else target/debug/<default>."""
    raw = os.environ.get(env_var)
    path = Path(raw) if raw else REPO_ROOT / "target" / "debug" / default
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{default} not found or not executable: {path}\n"
            "Build it with `cargo build -p sql-databricks-bridge -p bridge-sandbox` "
            f"or point {env_var} at it.",
            pytrace=False,
        )
    return path


def sandbox_bin() -> Path:
    return binary("BRIDGE_SANDBOX_BIN", "bridge-sandbox")


def bridge_bin() -> Path:
    return binary("BRIDGE_BIN", "sql-databricks-bridge")


@dataclass
class Proc:
    """A started program and the line it printed when ready."""

    name: str
    proc: subprocess.Popen
    ready_line: str
    log_path: Path

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "<no log>"

    def assert_alive(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(
                f"{self.name} exited with {self.proc.returncode}; log tail:\n{self.log_tail()}",
                pytrace=False,
            )

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


def start_process(
    name: str,
    cmd: list[str],
    *,
    ready_prefix: str,
    log_dir: Path,
    cwd: Path = REPO_ROOT,
    env: dict[str, str] | None = None,
    timeout: float = READY_TIMEOUT_S,
) -> Proc:
    """Start `cmd` and wait up to `timeout` seconds for a stdout line
    starting with `ready_prefix`."""
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            start_new_session=True,
        )
    ready: list[str] = []
    lines: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(line)
            if not ready and line.startswith(ready_prefix):
                ready.append(line)

    threading.Thread(target=read_stdout, name=f"{name}-stdout", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready:
        if proc.poll() is not None:
            pytest.fail(
                f"{name} exited with {proc.returncode} before '{ready_prefix}': {' '.join(cmd)}\n"
                f"stdout: {lines}\nstderr:\n{log_path.read_text(errors='replace')[-4000:]}",
                pytrace=False,
            )
        if time.monotonic() > deadline:
            stop_process(proc)
            pytest.fail(
                f"{name} not ready within {timeout}s: {' '.join(cmd)}\nstdout: {lines}",
                pytrace=False,
            )
        time.sleep(0.02)
    return Proc(name=name, proc=proc, ready_line=ready[0], log_path=log_path)


def start_sqlserver(
    name: str, log_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = READY_TIMEOUT_S
) -> tuple[Proc, str, int]:
    """`bridge-sandbox sqlserver --port 0 <args>`: the process, its host and port."""
    p = start_process(
        name, [str(sandbox_bin()), "sqlserver", "--port", "0", *args],
        ready_prefix="READY sqlserver ", log_dir=log_dir, env=env, timeout=timeout,
    )
    host, _, port = p.ready_line.split()[2].rpartition(":")  # READY sqlserver 127.0.0.1:<port>
    return p, host, int(port)


class Realm:
    """A real MIT KDC in the private realm BRIDGE.TEST (`bridge-sandbox kdc`)."""

    def __init__(self, proc: Proc, krb5_conf: str, kdc_conf: str) -> None:
        self.proc, self.krb5_conf, self.kdc_conf = proc, krb5_conf, kdc_conf

    def env(self) -> dict[str, str]:
        """What a Kerberos client of the realm needs, over the environment."""
        return {**os.environ, "KRB5_CONFIG": self.krb5_conf}

    def add_principal(self, name: str, keytab: Path) -> None:
        """A principal with a random key, its key written to `keytab` (MIT's kadmin.local)."""
        env = {**self.env(), "KRB5_KDC_PROFILE": self.kdc_conf}
        kadmin = shutil.which("kadmin.local") or "/usr/sbin/kadmin.local"
        for query in (f"addprinc -randkey {name}", f"ktadd -k {keytab} {name}"):
            subprocess.run([kadmin, "-r", "BRIDGE.TEST", "-q", query], env=env, check=True,
                           capture_output=True, timeout=60)


def start_kdc(name: str, log_dir: Path, realm_dir: Path, *principals: tuple[str, Path]) -> Realm:
    """`bridge-sandbox kdc --dir <realm_dir> --principal NAME=KEYTAB ...`."""
    args = [f"--principal={n}={k}" for n, k in principals]
    p = start_process(
        name, [str(sandbox_bin()), "kdc", "--dir", str(realm_dir), *args],
        ready_prefix="READY kdc ", log_dir=log_dir,
    )
    fields = dict(f.split("=", 1) for f in p.ready_line.split()[3:])
    return Realm(p, fields["krb5_conf"], fields["kdc_conf"])


def start_databricks(
    name: str, log_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = READY_TIMEOUT_S
) -> tuple[Proc, str, str]:
    """`bridge-sandbox databricks --port 0 <args>`: the process, its URL and warehouse id."""
    p = start_process(
        name, [str(sandbox_bin()), "databricks", "--port", "0", *args],
        ready_prefix="READY databricks ", log_dir=log_dir, env=env, timeout=timeout,
    )
    _, _, url, wh = p.ready_line.split()  # READY databricks <url> warehouse=<id>
    return p, url, wh.split("=", 1)[1]

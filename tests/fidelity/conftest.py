"""Fixtures for the SQL Server sandbox fidelity tests.

The sandbox binary (`bridge-sandbox`, crate `sandbox/`) is started once per
encryption mode and per test session:

    bridge-sandbox sqlserver --port 0 --user sa --password 'Bridge!Passw0rd' \
        --encryption off|login|required

It prints `READY sqlserver 127.0.0.1:<port>` on stdout when it listens and runs
until SIGTERM. The binary comes from $BRIDGE_SANDBOX_BIN, default
target/debug/bridge-sandbox under the repository root. A missing binary is an
error (not a skip): these tests are the sandbox's contract.

Also here: helpers shared by the client tests (FreeTDS config files, the
server certificate fetched through the TDS PRELOGIN handshake, unique names).
"""

from __future__ import annotations

import itertools
import os
import socket
import ssl
import struct
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from processes import start_sqlserver, stop_process  # noqa: E402

SA_USER = "sa"
SA_PASSWORD = "Bridge!Passw0rd"


@dataclass
class SandboxServer:
    """A running `bridge-sandbox sqlserver` process."""

    encryption: str
    host: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    _cert_pem: str | None = field(default=None, repr=False)

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "<no log>"
        return "\n".join(lines[-n:])

    def assert_alive(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(
                f"sandbox ({self.encryption}) exited with {self.proc.returncode}; log tail:\n"
                f"{self.log_tail()}",
                pytrace=False,
            )

    def certificate_pem(self) -> str:
        """The server's TLS certificate, fetched over TDS (PRELOGIN-wrapped TLS)."""
        if self._cert_pem is None:
            der = fetch_server_certificate_der(self.host, self.port)
            self._cert_pem = ssl.DER_cert_to_PEM_cert(der)
        return self._cert_pem

    def certificate_file(self, directory: Path) -> Path:
        path = directory / f"sandbox-{self.encryption}-{self.port}.pem"
        if not path.exists():
            path.write_text(self.certificate_pem())
        return path


def start_sandbox(encryption: str, log_dir: Path) -> SandboxServer:
    p, host, port = start_sqlserver(
        f"sandbox-sqlserver-{encryption}", log_dir,
        "--user", SA_USER, "--password", SA_PASSWORD, "--encryption", encryption,
    )
    return SandboxServer(encryption=encryption, host=host, port=port, proc=p.proc, log_path=p.log_path)


class _ServerPool:
    """Starts one sandbox per encryption mode, on first use; stops them all at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.servers: dict[str, SandboxServer] = {}

    def get(self, encryption: str) -> SandboxServer:
        if encryption not in self.servers:
            self.servers[encryption] = start_sandbox(encryption, self.log_dir)
        server = self.servers[encryption]
        server.assert_alive()
        return server

    def stop_all(self) -> None:
        for server in self.servers.values():
            stop_process(server.proc)


@pytest.fixture(scope="session")
def sandbox_pool(tmp_path_factory):
    pool = _ServerPool(tmp_path_factory.mktemp("sandbox-logs"))
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def sandbox_plain(sandbox_pool) -> SandboxServer:
    """Server with --encryption off (PRELOGIN answers ENCRYPT_NOT_SUP)."""
    return sandbox_pool.get("off")


@pytest.fixture(scope="session")
def sandbox_login(sandbox_pool) -> SandboxServer:
    """Server with --encryption login (self-signed cert; login packet encrypted only)."""
    return sandbox_pool.get("login")


@pytest.fixture(scope="session")
def sandbox_tls(sandbox_pool) -> SandboxServer:
    """Server with --encryption required (full TLS forced, self-signed cert)."""
    return sandbox_pool.get("required")


@pytest.fixture(params=["plain", "tls"])
def sandbox_any(request, sandbox_pool) -> SandboxServer:
    """Parametrised: the same test against the plain server and the TLS-required server."""
    return sandbox_pool.get("off" if request.param == "plain" else "required")


_counter = itertools.count(1)


def unique_name(prefix: str) -> str:
    """A short identifier unique within this test session (and across runs)."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}_{next(_counter)}"


# --------------------------------------------------------------------------
# FreeTDS (tsql / freebcp) configuration
# --------------------------------------------------------------------------

def write_freetds_conf(directory: Path, server: SandboxServer, encryption: str) -> Path:
    """A freetds.conf with a [sandbox] section pointing at the server.

    encryption: FreeTDS `encryption` setting: "off", "request" or "require".
    Used with FREETDSCONF=<file> and `-S sandbox` (tsql, freebcp).
    """
    path = directory / f"freetds-{server.encryption}-{encryption}.conf"
    path.write_text(
        "[global]\n"
        "\ttds version = 7.4\n"
        "\tclient charset = UTF-8\n"
        "\ttext size = 2147483647\n"
        "\n"
        "[sandbox]\n"
        f"\thost = {server.host}\n"
        f"\tport = {server.port}\n"
        "\ttds version = 7.4\n"
        f"\tencryption = {encryption}\n"
        "\tclient charset = UTF-8\n"
    )
    return path


def freetds_env(conf: Path, dump: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["FREETDSCONF"] = str(conf)
    env["TDSVER"] = "7.4"
    env["LANG"] = "C.UTF-8"
    env["LC_ALL"] = "C.UTF-8"
    env.pop("FREETDS", None)
    env.pop("SYBASE", None)
    if dump is not None:
        env["TDSDUMP"] = str(dump)
    return env


# --------------------------------------------------------------------------
# Server certificate through TDS: PRELOGIN, then TLS records wrapped in
# PRELOGIN (0x12) packets, exactly as clients do it (MS-TDS 2.2.6.5).
# python-tds verifies the peer against a CA file, so its TLS test needs the
# sandbox's self-signed certificate as a file.
# --------------------------------------------------------------------------

_PRELOGIN = 0x12


def _tds_packet(ptype: int, payload: bytes, packet_id: int = 1) -> bytes:
    return struct.pack(">BBHHBB", ptype, 0x01, 8 + len(payload), 0, packet_id, 0) + payload


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("server closed the connection during PRELOGIN/TLS handshake")
        buf += chunk
    return bytes(buf)


def _recv_message(sock: socket.socket) -> tuple[int, bytes]:
    """One TDS message (packets up to the one with the EOM status bit)."""
    payload = bytearray()
    while True:
        ptype, status, length, _spid, _pid, _win = struct.unpack(">BBHHBB", _recv_exact(sock, 8))
        payload += _recv_exact(sock, length - 8)
        if status & 0x01:
            return ptype, bytes(payload)


def _prelogin_payload(encryption: int) -> bytes:
    # options: VERSION(0) 6 bytes, ENCRYPTION(1) 1 byte, INSTOPT(2) 1 byte, THREADID(3) 4 bytes
    opts = [(0x00, bytes([0x10, 0x00, 0x00, 0x00, 0x00, 0x00])),
            (0x01, bytes([encryption])),
            (0x02, b"\x00"),
            (0x03, struct.pack(">I", os.getpid() & 0xFFFFFFFF))]
    header_len = 5 * len(opts) + 1
    head, data = bytearray(), bytearray()
    for token, value in opts:
        head += struct.pack(">BHH", token, header_len + len(data), len(value))
        data += value
    head.append(0xFF)
    return bytes(head + data)


def parse_prelogin(payload: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    i = 0
    while i < len(payload) and payload[i] != 0xFF:
        token, off, ln = struct.unpack(">BHH", payload[i:i + 5])
        out[token] = payload[off:off + ln]
        i += 5
    return out


def fetch_server_certificate_der(host: str, port: int, timeout: float = 10.0) -> bytes:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(_tds_packet(_PRELOGIN, _prelogin_payload(0x01)))  # ENCRYPT_ON
        ptype, payload = _recv_message(sock)
        if ptype != 0x04:
            raise AssertionError(f"PRELOGIN response has packet type {ptype:#x}, expected 0x04")
        enc = parse_prelogin(payload).get(0x01)
        if not enc or enc[0] not in (0x00, 0x01, 0x03):
            raise AssertionError(f"server does not offer TLS (PRELOGIN ENCRYPTION={enc!r})")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_side=False)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                data = outgoing.read()
                if data:
                    sock.sendall(_tds_packet(_PRELOGIN, data))
                _ptype, reply = _recv_message(sock)
                incoming.write(reply)
        der = tls.getpeercert(binary_form=True)
        if not der:
            raise AssertionError("TLS handshake completed without a server certificate")
        return der

#!/usr/bin/env bash
# Prepare a machine to run the fidelity tests (tests/fidelity) against the
# SQL Server sandbox: FreeTDS command-line tools, the system libraries that
# Microsoft's mssql-python driver (bundled ODBC Driver 18) loads, and a Python
# virtualenv at .venv with tests/requirements.txt.
#
# Idempotent: packages already installed are not touched, `apt-get update` runs
# only when something is missing, and an existing .venv is reused.
# Works as root (CI) or as a user with sudo. Debian 12 (bookworm), Python >= 3.10.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO_ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

# freetds-bin: tsql, freebcp, bsqldb (FreeTDS 1.3.x on bookworm).
# libltdl7 libkrb5-3 libgssapi-krb5-2: what libmsodbcsql-18 (shipped inside the
#   mssql-python-odbc wheel) links against; the wheel also ships its own
#   libodbcinst, so unixODBC itself is not needed. libssl3 is used by the
#   bulk-copy core (mssql-python-rs).
# chromium chromium-driver: the headless browser and its WebDriver for the web
#   console's tests (tests/clients/test_console.py).
# libkrb5-dev libclang-dev: the bridge's Windows (Kerberos) authentication
#   builds against the system's GSSAPI (libgssapi-sys runs bindgen).
# krb5-kdc krb5-admin-server krb5-user: a real MIT KDC in a private realm for
#   the Kerberos tests (krb5kdc, kdb5_util, kadmin.local), and kinit/klist.
APT_PACKAGES=(freetds-bin libltdl7 libkrb5-3 libgssapi-krb5-2 libssl3 ca-certificates chromium chromium-driver
    libkrb5-dev libclang-dev krb5-kdc krb5-admin-server krb5-user)

log() { printf '[setup-test-env] %s\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
apt_updated=0
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ "$apt_updated" -eq 0 ]; then
        "${SUDO[@]}" apt-get update -qq
        apt_updated=1
    fi
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@"
}

# pyspark 4 (tests/operator) needs a Java 17+ runtime: Debian's headless JRE
# when no java is on PATH.
if ! command -v java >/dev/null 2>&1; then
    missing+=(openjdk-17-jre-headless)
fi

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing apt packages: ${missing[*]}"
    apt_install "${missing[@]}"
else
    log "apt packages already installed: ${APT_PACKAGES[*]}"
fi

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV"
    if ! "$PYTHON" -m venv "$VENV"; then
        # Debian's own python3 needs python3-venv for ensurepip.
        rm -rf "$VENV"
        log "python -m venv failed; installing python3-venv"
        apt_install python3-venv
        "$PYTHON" -m venv "$VENV"
    fi
fi

req="$REPO_ROOT/tests/requirements.txt"
stamp="$VENV/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "python requirements already installed ($req)"
else
    log "installing python requirements from $req"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
fi

# The Python distribution (client/python: the REST client and the native
# BridgeOperator, built by maturin from client/python/native and the bridge's
# library) into the venv; rebuilt whenever its files or the Rust sources it is
# built from change (a stamp of their hashes), without touching its
# dependencies (pinned in the requirements above). A debug build (the tests'
# profile, sharing target/debug with cargo test) with Windows (Kerberos)
# authentication (this machine has GSSAPI); `pip install ./client/python`
# without MATURIN_PEP517_ARGS builds the release one, without Kerberos.
client_dir="$REPO_ROOT/client/python"
client_stamp="$VENV/.python-client.sha256"
client_want="$(cd "$REPO_ROOT" && find client/python server/src server/core server/Cargo.toml Cargo.toml Cargo.lock -type f \
    -not -path '*/__pycache__/*' -not -path 'client/python/build/*' -not -path 'client/python/dist/*' \
    -not -path '*.egg-info/*' -not -path '*/.ruff_cache/*' -print0 |
    LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [ -f "$client_stamp" ] && [ "$(cat "$client_stamp")" = "$client_want" ]; then
    log "python distribution already installed ($client_dir)"
else
    log "building and installing the python distribution from $client_dir (maturin, debug profile)"
    MATURIN_PEP517_ARGS="--profile dev --features kerberos" CARGO_TARGET_DIR="$REPO_ROOT/target" \
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$client_dir"
    echo "$client_want" > "$client_stamp"
fi

# Verify: every client imports / runs.
log "verifying"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import mssql_python, pytds, pyarrow, pytest, OpenSSL  # noqa: F401
from mssql_python import ddbc_bindings  # loads the bundled ODBC Driver 18 glue
import mssql_py_core  # bulk-copy core
from sql_databricks_bridge.sdk import BridgeClient  # noqa: F401  (client/python)
from sql_databricks_bridge.sdk.databricks import BridgeOperator  # noqa: F401  (native)
import polars, pyspark, selenium  # noqa: F401
for dist in ("mssql-python", "mssql-python-odbc", "mssql-python-rs", "python-tds",
             "pyOpenSSL", "pyarrow", "pytest", "sql-databricks-bridge", "polars", "pyspark", "openapi-python-client", "ruff"):
    print(f"  {dist}=={md.version(dist)}")
PY
tsql_conf="$(tsql -C)"
log "  java: $(java -version 2>&1 | head -n1)"
log "  tsql: $(printf '%s\n' "$tsql_conf" | sed -n 's/^ *Version: //p')"
# freebcp has no version flag: -v prints usage and exits 1; check that it runs.
fb_out="$(freebcp -v 2>&1 || true)"
case "$fb_out" in
    *"usage:  freebcp"*) log "  freebcp: ok" ;;
    *) log "freebcp does not run: $fb_out" >&2; exit 1 ;;
esac
log "done. Run: $VENV/bin/pytest tests/fidelity"

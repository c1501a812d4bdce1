#!/usr/bin/env bash
# Measures the SQL Server sandbox's fidelity with tiberius 0.13.0's OWN
# integration tests, unchanged: takes tests/*.rs from the tiberius crate source
# in the cargo registry, builds them in tests/tiberius-suite/ (with an
# equivalent of tiberius's unpublished `runtimes-macro`), runs every test
# against one `bridge-sandbox sqlserver`, and prints passed/total.
#
#   scripts/tiberius-suite.sh [--min-pass PCT] [--timeout SECS] [--jobs N]
#                             [--encryption off|login|required] [--port N]
#                             [--driver registry|vendor]
#
#   --min-pass PCT  exit 1 when the pass rate is below PCT (default 0: report only)
#   --timeout SECS  per-test time limit; a test over it counts as failed (default 60)
#   --jobs N        tests run at once, each in its own process (default 4)
#   --encryption    the sandbox's --encryption (default login, SQL Server's default)
#   --port N        the sandbox's port (default: 1433 when it is free, else 0 for any
#                   free one). login_errors.rs and custom-cert.rs hard-code
#                   localhost:1433, so they reach the sandbox only there.
#   --driver        which tiberius the tests link: `registry` (default), the
#                   published 0.13.0 unchanged, measures the sandbox; `vendor`,
#                   the patched copy in vendor/tiberius that the bridge uses,
#                   checks the patch against the same tests (the suite's
#                   Cargo.lock is put back afterwards).
#
# Each test runs as `<test binary> --exact <name>` under `timeout`, so one
# hanging test cannot hang the run. Tests that need what one local server
# cannot provide (named instances, a custom CA, other logins...) still run and
# are counted; they pass, fail or are skipped as the unchanged file decides.
#
# Output: per-file counts, then as the last lines the summary and the failing
# tests. target/tiberius-suite/report.txt has the same plus each failure's first
# error line; target/tiberius-suite/logs/ has every test's full output.
# Exit: 0 when the pass rate >= --min-pass, 1 below it, 2 when the sandbox does
# not start, and cargo's code when a build fails.
set -euo pipefail

MIN_PASS=0
TIMEOUT=60
JOBS=4
ENCRYPTION=login
PORT=auto
DRIVER=registry
while [[ $# -gt 0 ]]; do
    case "$1" in
        --min-pass) MIN_PASS="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --jobs) JOBS="$2"; shift 2 ;;
        --encryption) ENCRYPTION="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        --driver) DRIVER="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
    esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE="$REPO/tests/tiberius-suite"
# Shared with the workspace: cargo's lock serializes the two builds.
export CARGO_TARGET_DIR="$REPO/target"
OUT="$CARGO_TARGET_DIR/tiberius-suite"
USER_NAME=sa
PASSWORD='Bridge!Passw0rd'
# shellcheck source=lib/tiberius-source.sh
source "$REPO/scripts/lib/tiberius-source.sh"
SANDBOX_BIN="$CARGO_TARGET_DIR/debug/bridge-sandbox"
MANIFEST=(--manifest-path "$SUITE/Cargo.toml")
# The published crate, exactly as the committed Cargo.lock pins it; or the
# patched copy, which changes the lock, so the lock is restored on exit.
LOCK=(--locked)
case "$DRIVER" in
    registry) ;;
    vendor)
        LOCK=(--config "patch.crates-io.tiberius.path=\"$REPO/vendor/tiberius\"")
        cp "$SUITE/Cargo.lock" "$SUITE/.Cargo.lock.registry"
        trap 'mv -f "$SUITE/.Cargo.lock.registry" "$SUITE/Cargo.lock"' EXIT
        ;;
    *) echo "--driver is registry or vendor, not $DRIVER" >&2; exit 64 ;;
esac

log() { echo "== $*" >&2; }

# --- 1. the sandbox binary --------------------------------------------------
log "cargo build -p bridge-sandbox --features kerberos"
(cd "$REPO" && cargo build -p bridge-sandbox --features kerberos)

# --- 2. tiberius's tests, copied unchanged ---------------------------------
log "locating tiberius $TIBERIUS_VERSION in the cargo registry"
TIBERIUS_SRC="$(tiberius_source "$REPO")"
log "tests from $TIBERIUS_SRC/tests"
rm -rf "$OUT/upstream" "$OUT/logs"
mkdir -p "$OUT/upstream" "$OUT/logs"
cp "$TIBERIUS_SRC"/tests/*.rs "$OUT/upstream/"
for f in "$OUT"/upstream/*.rs; do
    name="$(basename "$f" .rs)"
    grep -q "path = \"../../target/tiberius-suite/upstream/$name.rs\"" "$SUITE/Cargo.toml" ||
        echo "warning: tests/$name.rs has no [[test]] entry in tests/tiberius-suite/Cargo.toml" >&2
done

# --- 3. build the test binaries ---------------------------------------------
log "cargo test --no-run (tests/tiberius-suite)"
# Artifacts (JSON) on stdout, compiler diagnostics rendered on stderr.
cargo test "${LOCK[@]}" "${MANIFEST[@]}" --no-run --message-format=json-render-diagnostics \
    >"$OUT/build.json"
if [[ "$DRIVER" == vendor ]]; then
    mv -f "$SUITE/.Cargo.lock.registry" "$SUITE/Cargo.lock"
    trap - EXIT
fi
# "<target name> <executable>" for each test binary.
grep '"reason":"compiler-artifact"' "$OUT/build.json" | grep '"kind":\["test"\]' \
    | sed -n 's/.*"target":{[^}]*"name":"\([^"]*\)".*"executable":"\([^"]*\)".*/\1 \2/p' \
    | sort -u >"$OUT/binaries.txt"
if [[ ! -s "$OUT/binaries.txt" ]]; then
    echo "no test binaries were built" >&2
    exit 3
fi

# --- 4. list the tests --------------------------------------------------------
: >"$OUT/tests.txt"
while read -r target exe; do
    (cd "$TIBERIUS_SRC" && "$exe" --list --format terse) \
        | sed -n 's/: test$//p' | while read -r name; do
            echo "$target $exe $name"
        done >>"$OUT/tests.txt"
done <"$OUT/binaries.txt"
TOTAL=$(wc -l <"$OUT/tests.txt")
log "$TOTAL tests in $(wc -l <"$OUT/binaries.txt") test binaries"

# --- 5. the sandbox ---------------------------------------------------------
SANDBOX_PID=""
SANDBOX_STARTS=0
stop_sandbox() {
    if [[ -n "$SANDBOX_PID" ]] && kill -0 "$SANDBOX_PID" 2>/dev/null; then
        kill "$SANDBOX_PID" 2>/dev/null || true
        wait "$SANDBOX_PID" 2>/dev/null || true
    fi
    SANDBOX_PID=""
}
trap stop_sandbox EXIT
trap 'exit 130' INT TERM

if [[ "$PORT" == auto ]]; then
    # SQL Server's own port, when nothing else holds it.
    if (exec 3<>/dev/tcp/127.0.0.1/1433) 2>/dev/null; then PORT=0; else PORT=1433; fi
fi

start_sandbox() {
    SANDBOX_STARTS=$((SANDBOX_STARTS + 1))
    local logf="$OUT/sandbox.$SANDBOX_STARTS.log"
    "$SANDBOX_BIN" sqlserver --port "$PORT" --user "$USER_NAME" --password "$PASSWORD" \
        --encryption "$ENCRYPTION" >"$logf" 2>&1 &
    SANDBOX_PID=$!
    local addr="" i
    for ((i = 0; i < 600; i++)); do
        addr="$(sed -n 's/^READY sqlserver \([0-9.]*:[0-9]*\).*/\1/p' "$logf" | head -n1)"
        [[ -n "$addr" ]] && break
        if ! kill -0 "$SANDBOX_PID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if [[ -z "$addr" ]]; then
        echo "the sandbox did not start ($SANDBOX_BIN); its output:" >&2
        cat "$logf" >&2
        exit 2
    fi
    local host="${addr%:*}" port="${addr##*:}"
    export TIBERIUS_TEST_CONNECTION_STRING="server=tcp:$host,$port;user=$USER_NAME;password=$PASSWORD;TrustServerCertificate=true"
    log "sandbox pid $SANDBOX_PID at $addr (--encryption $ENCRYPTION)"
}
start_sandbox

# --- 6. run every test in its own process -------------------------------------
# logs/<target>/<test>.log with the test's output; .rc with its exit code.
run_one() {
    local target="$1" exe="$2" name="$3"
    local logf="$OUT/logs/$target/$name.log"
    local rc=0
    (cd "$TIBERIUS_SRC" && RUST_BACKTRACE=0 timeout -k 5 "$TIMEOUT" \
        "$exe" --exact "$name" --test-threads=1) >"$logf" 2>&1 </dev/null || rc=$?
    echo "$rc" >"$logf.rc"
}

SANDBOX_DEATHS=()
started=0
while read -r target exe name; do
    mkdir -p "$OUT/logs/$target"
    while (($(jobs -rp | wc -l) >= JOBS + 1)); do wait -n 2>/dev/null || true; done
    if ! kill -0 "$SANDBOX_PID" 2>/dev/null; then
        # It crashed: note around which test, and give the rest a live server.
        wait "$SANDBOX_PID" 2>/dev/null || true
        SANDBOX_DEATHS+=("before $target::$name (see $OUT/sandbox.$SANDBOX_STARTS.log)")
        log "sandbox died; restarting (next test: $target::$name)"
        start_sandbox
    fi
    run_one "$target" "$exe" "$name" &
    started=$((started + 1))
    if ((started % 50 == 0)); then log "$started/$TOTAL started"; fi
done <"$OUT/tests.txt"
# Wait for the tests only, not the sandbox.
for pid in $(jobs -rp); do
    [[ "$pid" == "$SANDBOX_PID" ]] || wait "$pid" 2>/dev/null || true
done
if ! kill -0 "$SANDBOX_PID" 2>/dev/null; then
    SANDBOX_DEATHS+=("after the last test (see $OUT/sandbox.$SANDBOX_STARTS.log)")
fi
stop_sandbox

# --- 7. results ---------------------------------------------------------------
# The first line saying why a test failed.
first_error() {
    local logf="$1" rc="$2"
    if [[ "$rc" == 124 || "$rc" == 137 ]]; then
        echo "timed out after ${TIMEOUT}s"
        return
    fi
    local line
    line="$(grep -m1 '^Error: ' "$logf" || true)"
    if [[ -z "$line" ]]; then
        # thread '...' panicked at FILE:LINE:COL:\nMESSAGE (assertions: + left/right lines)
        line="$(awk '
            /panicked at/ && !at { at = $0; sub(/.*panicked at /, "", at); msg = "panicked at " at; next }
            at && (/^note: / || /^$/) { exit }
            at { sub(/^ +/, ""); msg = msg " " $0 }
            END { if (at) print msg }' "$logf")"
    fi
    if [[ -z "$line" ]]; then
        line="$(grep -m1 -v -e '^$' -e '^running ' "$logf" || true)"
        line="exit code $rc: $line"
    fi
    line="${line//..\/..\/target\/tiberius-suite\/upstream\//tests/}"
    echo "${line:0:400}"
}

PASSED=0
IGNORED=0
FAILED_NAMES=()
FAILED_LINES=()
declare -A T_TOTAL T_PASSED
while read -r target exe name; do
    logf="$OUT/logs/$target/$name.log"
    rc="$(cat "$logf.rc" 2>/dev/null || echo missing)"
    T_TOTAL[$target]=$((${T_TOTAL[$target]:-0} + 1))
    if [[ "$rc" == 0 ]] && grep -q '^test result: ok\. 1 passed' "$logf"; then
        PASSED=$((PASSED + 1))
        T_PASSED[$target]=$((${T_PASSED[$target]:-0} + 1))
    elif [[ "$rc" == 0 ]] && grep -q '^test result: ok\. 0 passed; 0 failed; 1 ignored' "$logf"; then
        IGNORED=$((IGNORED + 1))
        FAILED_NAMES+=("$target::$name (ignored)")
        FAILED_LINES+=("$target::$name: ignored by the test file")
    else
        FAILED_NAMES+=("$target::$name")
        FAILED_LINES+=("$target::$name: $(first_error "$logf" "$rc")")
    fi
done <"$OUT/tests.txt"

PCT="$(awk -v p="$PASSED" -v t="$TOTAL" 'BEGIN { printf "%.1f", (t > 0 ? 100 * p / t : 0) }')"
SUMMARY="tiberius $TIBERIUS_VERSION integration tests against the sandbox: $PASSED / $TOTAL passed ($PCT%)"

{
    echo "per test file (passed/total):"
    while read -r target _; do
        printf '  %-24s %4d / %d\n' "$target" "${T_PASSED[$target]:-0}" "${T_TOTAL[$target]:-0}"
    done <"$OUT/binaries.txt"
    if ((IGNORED > 0)); then echo "ignored by the test files: $IGNORED (counted as not passed)"; fi
    for d in "${SANDBOX_DEATHS[@]+"${SANDBOX_DEATHS[@]}"}"; do echo "WARNING: the sandbox died $d"; done
} >"$OUT/header.txt"

{
    cat "$OUT/header.txt"
    echo "$SUMMARY"
    echo "failing (${#FAILED_NAMES[@]}), with the first error line of each:"
    for l in "${FAILED_LINES[@]+"${FAILED_LINES[@]}"}"; do echo "  $l"; done
    echo "(full output of each test: $OUT/logs/<file>/<test>.log)"
} >"$OUT/report.txt"

cat "$OUT/header.txt"
echo "report: $OUT/report.txt"
echo "$SUMMARY"
echo "failing (${#FAILED_NAMES[@]}):"
for n in "${FAILED_NAMES[@]+"${FAILED_NAMES[@]}"}"; do echo "  $n"; done

if awk -v p="$PASSED" -v t="$TOTAL" -v m="$MIN_PASS" 'BEGIN { exit !((t > 0 ? 100 * p / t : 0) >= m) }'; then
    exit 0
fi
echo "pass rate $PCT% is below --min-pass $MIN_PASS%" >&2
exit 1

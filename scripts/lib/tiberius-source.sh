# Sourced by the scripts that need the published tiberius 0.13.0 source:
# `tiberius_source` fetches it into the cargo registry as the tiberius
# suite's committed Cargo.lock pins it (cargo checks its crates.io checksum)
# and prints the directory it was unpacked in.
TIBERIUS_VERSION=0.13.0

tiberius_source() {
    local repo="$1" manifest src
    manifest=(--manifest-path "$repo/tests/tiberius-suite/Cargo.toml")
    cargo fetch --locked "${manifest[@]}" >&2
    src="$(cargo metadata --locked --offline --format-version 1 "${manifest[@]}" \
        | grep -o "\"manifest_path\":\"[^\"]*/tiberius-$TIBERIUS_VERSION/Cargo.toml\"" \
        | head -n1 | sed 's/^"manifest_path":"//; s#/Cargo.toml"$##')" || true
    if [[ -z "$src" || ! -d "$src/tests" ]]; then
        src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/tiberius-$TIBERIUS_VERSION 2>/dev/null | head -n1)"
    fi
    if [[ -z "$src" || ! -d "$src/tests" ]]; then
        echo "tiberius-$TIBERIUS_VERSION source not found in the cargo registry" >&2
        return 3
    fi
    echo "$src"
}

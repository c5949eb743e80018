#!/usr/bin/env bash
# The README's main job: the side-by-side benchmark on the built-in data set
# (native and hnswlib, flat as the exact reference), set-up included.
# Extra arguments go to `vecsearch bench` (e.g. --dataset glove-50 --n 100000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-hnswlib.sh
# hnswlib's shim for this CPU (AVX kernels), as native picks its kernels at
# run time: the comparison is like with like. Libraries build portable.
export VECSEARCH_NATIVE_CPU=1
cargo build --release -p vecsearch-cli --features native,hnswlib
exec target/release/vecsearch bench --backends flat,native,hnswlib "$@"

#!/usr/bin/env bash
# The README's main job: the side-by-side benchmark on the built-in data set
# (native and hnswlib, flat as the exact reference), set-up included.
# Extra arguments go to `vecsearch bench` (e.g. --dataset glove-50 --n 100000);
# a --backends among them replaces the default list.
set -euo pipefail

DEFAULT_BACKENDS=flat,native,hnswlib

# Sets BENCH_ARGV to the command that runs the benchmark with the caller's
# arguments: the binary where cargo builds it (under CARGO_TARGET_DIR when
# set), the caller's --backends if there is one (clap would append a second
# list to the first, measuring some backends twice), else ours.
set_bench_argv() {
    local a
    BENCH_ARGV=("${CARGO_TARGET_DIR:-target}/release/vecsearch" bench)
    for a in "$@"; do
        if [[ "$a" == --backends || "$a" == --backends=* ]]; then
            BENCH_ARGV+=("$@")
            return 0
        fi
    done
    BENCH_ARGV+=(--backends "$DEFAULT_BACKENDS" "$@")
}

main() {
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    scripts/setup-hnswlib.sh
    # hnswlib's shim for this CPU (AVX kernels), as native picks its kernels at
    # run time: the comparison is like with like. Libraries build portable.
    export VECSEARCH_NATIVE_CPU=1
    cargo build --release -p vecsearch-cli --features native,hnswlib
    set_bench_argv "$@"
    exec "${BENCH_ARGV[@]}"
}

# Sourced (by the CLI's tests), it only defines the functions above.
(return 0 2>/dev/null) || main "$@"

#!/usr/bin/env bash
# The README's test command: sets up everything the tests need on a fresh
# machine (hnswlib headers, a real Milvus server on 127.0.0.1), runs every
# test of every crate with all backends, and stops the server however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-hnswlib.sh
scripts/milvus.sh install
trap 'scripts/milvus.sh stop || true' EXIT
scripts/milvus.sh start
export VECSEARCH_MILVUS_URL="${VECSEARCH_MILVUS_URL:-milvus://127.0.0.1:19530}"
if [ -z "${VECSEARCH_QDRANT_URL:-}" ]; then
  echo "note: VECSEARCH_QDRANT_URL is not set: the Qdrant suite will report itself skipped"
fi

# One optimised build serves the tests and the benchmarks (recall cases need it).
cargo test --release --workspace --all-features --no-fail-fast "$@"

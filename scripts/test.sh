#!/usr/bin/env bash
# The README's test command: sets up everything the tests need on a fresh
# machine (hnswlib headers, a real Milvus and a real Qdrant server on
# 127.0.0.1), runs every test of every crate with all backends, and stops
# both servers however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-hnswlib.sh
scripts/milvus.sh install
# One trap stops both servers, whichever of them started.
trap 'scripts/milvus.sh stop || true; scripts/qdrant.sh stop || true' EXIT
scripts/milvus.sh start
export VECSEARCH_MILVUS_URL="${VECSEARCH_MILVUS_URL:-milvus://127.0.0.1:19530}"
scripts/qdrant.sh start
if [ -z "${VECSEARCH_QDRANT_URL:-}" ]; then
  if scripts/qdrant.sh status >/dev/null 2>&1; then
    export VECSEARCH_QDRANT_URL="qdrant://127.0.0.1:${QDRANT_PORT:-6333}"
  else
    echo "note: no Qdrant server (see above): the Qdrant suite will report itself skipped"
  fi
fi

# One optimised build serves the tests and the benchmarks (recall cases need it).
cargo test --release --workspace --all-features --no-fail-fast "$@"

# The NEON kernels, cross-compiled and run under qemu (skipped, saying so,
# where the cross tools cannot be had).
scripts/test-aarch64.sh

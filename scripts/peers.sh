#!/usr/bin/env bash
# Native, its storage kinds, hnswlib and faiss side by side, from one command:
# the same .npy rows, the same split, metric, M, ef_construction, k and ef
# sweep; prints per backend the one-thread QPS at recall@10 0.90, 0.95 and
# 0.99 read on each recall curve, evaluations per query at 0.95, and the
# ratios native/faiss, native f16 / faiss fp16 SQ, native i8 / faiss SQ8 +
# refine, hnswlib/native.
#
#   scripts/peers.sh [--dataset glove-50|minilm-384|PATH.npy] [--n 100000] [--nq 1000]
#                    [--out DIR] [--metric l2|cosine|ip] [--m 16] [--ef-construction 200]
#                    [--ef 10,16,...] [--repeat 3] [--no-build-1t]
#                    [--skip-vecsearch] [--skip-faiss]
#
# Steps:
#  1. vecsearch: scripts/setup-hnswlib.sh, then (VECSEARCH_NATIVE_CPU=1, as
#     scripts/bench.sh) `cargo build --release -p vecsearch-cli --features
#     native,hnswlib` and `vecsearch bench --backends native,hnswlib --storage
#     f32,f16,i8 --churn 0` on the data set -> OUT/vecsearch.json and .txt.
#     The binary is taken from ${CARGO_TARGET_DIR:-target}/release.
#  2. faiss: scripts/peers/faiss_bench.py in a virtual environment, on the
#     same rows (base = the first n rows of the .npy, queries = the next nq,
#     as the bench's dataset.rs; cosine normalises both and searches by inner
#     product): IndexHNSWFlat ("faiss"), IndexHNSWSQ fp16 ("faiss/fp16") and
#     IndexHNSWSQ 8-bit inside IndexRefineFlat ("faiss/sq8+refine", k_factor =
#     ef/k: all ef candidates of the walk are re-scored with the f32
#     originals, as native i8 re-scores its ef best). Ground truth by
#     IndexFlat. One search thread, the whole query batch per search call,
#     best of --repeat alternated passes; builds timed on 1 thread and on all;
#     evaluations per query from faiss's hnsw_stats.ndis -> OUT/faiss.json
#     (the bench's JSON format) and OUT/faiss.txt.
#  3. scripts/peers/compare.py over both -> the table on stdout, OUT/peers.txt
#     and OUT/peers.md (markdown). A native point's evals_per_query is used
#     where the bench JSON has it ("—" otherwise).
#
# Downloads (PyPI only, through pip): faiss-cpu 1.15.1 (~19 MB), numpy 2.4.6
# (~17 MB) and packaging 26.4, every file pinned by version and sha256 in
# scripts/peers/requirements.txt (pip install --require-hashes, wheels only),
# into a virtual environment at ${VECSEARCH_CACHE:-~/.cache/vecsearch}/peers-venv,
# made once (python3 -m venv) and re-made only when the requirements file or
# the Python version change. The data sets come from scripts/fetch-glove.sh
# and scripts/fetch-minilm.sh (pinned there), cached beside it; if one of them
# is already running (another process fetching), this waits for it.
# Default OUT: ${VECSEARCH_CACHE:-~/.cache/vecsearch}/peers/<dataset>-<n>.
#
# Time on this project's 2-core machine: --n 5000 --nq 200 measures in about
# 10 s (bench 3 s, faiss 7 s) after the cargo build (incremental: ~30 s) and,
# the first time, the venv (~5 s). At --n 100000, measured on 2026-12-06
# (the whole command, both sides, the cargo build already done): 4m28s on
# GloVe-50 and 7m57s on minilm-384; --no-build-1t skips faiss's one-thread
# builds (build_s_1t then "—").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${VECSEARCH_CACHE:-$HOME/.cache/vecsearch}"
VENV="$CACHE/peers-venv"
REQS="$ROOT/scripts/peers/requirements.txt"

die() { echo "peers: $*" >&2; exit 1; }
log() { echo "peers: $*" >&2; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

need() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }

dataset=glove-50 n=100000 nq=1000 out="" metric="" m=16 efc=200
efs=10,16,24,32,48,64,96,128,192,256 repeat=3
skip_vecsearch=0 skip_faiss=0 build_1t=1
orig_args=("$@")
while [[ $# -gt 0 ]]; do
    arg="$1"
    if [[ "$arg" == --*=* ]]; then
        set -- "${arg%%=*}" "${arg#*=}" "${@:2}"
        arg="$1"
    fi
    case "$arg" in
        --dataset) need "$@"; dataset="$2"; shift 2 ;;
        --n) need "$@"; n="$2"; shift 2 ;;
        --nq) need "$@"; nq="$2"; shift 2 ;;
        --out) need "$@"; out="$2"; shift 2 ;;
        --metric) need "$@"; metric="$2"; shift 2 ;;
        --m) need "$@"; m="$2"; shift 2 ;;
        --ef-construction) need "$@"; efc="$2"; shift 2 ;;
        --ef) need "$@"; efs="$2"; shift 2 ;;
        --repeat) need "$@"; repeat="$2"; shift 2 ;;
        --no-build-1t) build_1t=0; shift ;;
        --skip-vecsearch) skip_vecsearch=1; shift ;;
        --skip-faiss) skip_faiss=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$arg' (see --help)" ;;
    esac
done
for v in n nq m efc repeat; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v/efc/ef-construction} must be a positive integer, not '${!v}'"
done
[[ "$efs" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--ef must be a comma-separated list of positive integers, not '$efs'"

# The data file, and the name the bench knows it by.
case "$dataset" in
    glove-50) npy="$CACHE/glove-50/glove_6B_50d_emb.npy"; fetch=fetch-glove.sh; name=glove-50 ;;
    minilm-384) npy="$CACHE/minilm-384/minilm_384.npy"; fetch=fetch-minilm.sh; name=minilm-384 ;;
    *.npy)
        [[ -f "$dataset" ]] || die "no such file: $dataset"
        npy="$(cd "$(dirname "$dataset")" && pwd)/$(basename "$dataset")"
        dataset="$npy" fetch="" name="$(basename "$npy" .npy)" ;;
    *) die "--dataset must be glove-50, minilm-384 or a .npy file, not '$dataset'" ;;
esac
# As the bench: cosine for the two named sets, l2 for other files.
if [[ -z "$metric" ]]; then
    if [[ -n "$fetch" ]]; then metric=cosine; else metric=l2; fi
fi
case "$metric" in l2|cosine|ip) ;; *) die "--metric must be l2, cosine or ip (faiss has no jaccard HNSW), not '$metric'" ;; esac
out="${out:-$CACHE/peers/$name-$n}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

# A named data set: wait for a fetch already under way (two would write the
# same files), then run the fetch script, which does nothing when it is there.
ensure_data() {
    [[ -z "$fetch" || -s "$npy" ]] && return 0
    local waited=0
    while pgrep -f "$fetch" >/dev/null 2>&1; do
        (( waited % 60 == 0 )) && log "waiting for a running $fetch to finish ($waited s so far)"
        sleep 10; waited=$((waited + 10))
        (( waited < 7200 )) || die "$fetch still running after 2 hours; giving up"
    done
    [[ -s "$npy" ]] && return 0
    log "fetching $dataset with scripts/$fetch"
    VECSEARCH_CACHE="$CACHE" bash "$ROOT/scripts/$fetch" >/dev/null
    [[ -s "$npy" ]] || die "scripts/$fetch did not produce $npy"
}

# The virtual environment with faiss-cpu, made once per requirements file
# and Python version.
ensure_venv() {
    command -v python3 >/dev/null || die "python3 is required"
    local stamp
    stamp="$(sha256sum "$REQS" | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
    if [[ -x "$VENV/bin/python" && "$(cat "$VENV/.peers-stamp" 2>/dev/null)" == "$stamp" ]] &&
        "$VENV/bin/python" -c 'import faiss, numpy' 2>/dev/null; then
        return 0
    fi
    log "making the virtual environment $VENV (faiss-cpu, numpy; pinned by sha256)"
    rm -rf "$VENV"
    python3 -m venv "$VENV" ||
        die "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
        --require-hashes --only-binary :all: -r "$REQS" ||
        die "pip could not install $REQS (a wheel for this Python/platform missing from its pins?)"
    "$VENV/bin/python" -c 'import faiss, numpy' || die "faiss installed but does not import"
    echo "$stamp" >"$VENV/.peers-stamp"
}

run_vecsearch() {
    local bin="${CARGO_TARGET_DIR:-target}/release/vecsearch"
    (
        cd "$ROOT"
        scripts/setup-hnswlib.sh >&2
        # hnswlib's shim for this CPU, as native picks its kernels at run time.
        export VECSEARCH_NATIVE_CPU=1
        cargo build --release -p vecsearch-cli --features native,hnswlib
        local args=(bench --dataset "$dataset" --n "$n" --nq "$nq" --metric "$metric"
            --m "$m" --ef-construction "$efc" --ef "$efs" --repeat "$repeat"
            --backends native,hnswlib --storage f32,f16,i8 --churn 0
            --json "$out/vecsearch.json")
        log "$bin ${args[*]}"
        rm -f "$out/vecsearch.json"
        "$bin" "${args[@]}" | tee "$out/vecsearch.txt"
    )
    [[ -s "$out/vecsearch.json" ]] || die "the bench wrote no $out/vecsearch.json"
}

run_faiss() {
    local args=(--npy "$npy" --dataset "$name" --n "$n" --nq "$nq" --metric "$metric"
        --m "$m" --ef-construction "$efc" --ef "$efs" --repeat "$repeat"
        --out "$out/faiss.json")
    (( build_1t )) || args+=(--no-build-1t)
    rm -f "$out/faiss.json"
    "$VENV/bin/python" "$ROOT/scripts/peers/faiss_bench.py" "${args[@]}" 2>&1 | tee "$out/faiss.txt"
    [[ -s "$out/faiss.json" ]] || die "faiss_bench.py wrote no $out/faiss.json"
}

start=$SECONDS
ensure_data
(( skip_faiss )) || ensure_venv
if (( skip_vecsearch )); then
    [[ -s "$out/vecsearch.json" ]] || die "--skip-vecsearch: no $out/vecsearch.json to reuse"
    log "reusing $out/vecsearch.json"
else
    run_vecsearch
fi
if (( skip_faiss )); then
    [[ -s "$out/faiss.json" ]] || die "--skip-faiss: no $out/faiss.json to reuse"
    log "reusing $out/faiss.json"
else
    run_faiss
fi
echo
python3 "$ROOT/scripts/peers/compare.py" "$out/vecsearch.json" "$out/faiss.json" \
    --out-dir "$out" --command "scripts/peers.sh ${orig_args[*]}"
log "done in $((SECONDS - start)) s; results in $out"

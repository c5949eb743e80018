#!/usr/bin/env python3
"""faiss on the same split, parameters and sweep as `vecsearch bench`.

Run by scripts/peers.sh inside its virtual environment (faiss-cpu, numpy);
writes a JSON file in the bench's format: {"settings": {...}, "points": [...]},
one point per index kind and ef, phase "fresh".

The split is the bench's (crates/vecsearch-cli/src/dataset.rs): base = the
first n rows of the .npy file, queries = the next nq rows (n shrinks so that
nq rows are left, as there). Cosine normalises base rows and queries to unit
length and searches by inner product, as the bench's cosine indexes do.

Index kinds (M, efConstruction and the metric as given):
  faiss             IndexHNSWFlat: f32 rows, every distance exact.
  faiss/fp16        IndexHNSWSQ with QT_fp16: rows in half precision.
  faiss/sq8+refine  IndexHNSWSQ with QT_8bit (a learned min/max per
                    dimension), wrapped in IndexRefineFlat, which keeps the
                    f32 originals and re-scores the base index's candidates
                    with them. k_factor = ef / k at each ef, so the HNSW walk
                    (efSearch = ef) hands back all ef candidates of its list
                    and all ef are re-scored exactly: the re-rank that
                    native's i8 storage does ("re-score its ef best
                    candidates with the exact f32 originals").

Each kind is built on one thread (timed: build_s_1t, unless --no-build-1t),
then on every thread (build_s_nt); the searched index is the all-thread
build, as in the bench. Searches run on one thread (omp_set_num_threads(1)),
the whole query batch in one search call per pass; every (kind, ef) is
measured --repeat times, the kinds alternating, and the fastest pass is kept
(qps_1t; every pass in qps_1t_runs). Distance evaluations per query come
from faiss's own counter, faiss.cvar.hnsw_stats.ndis, reset before each pass
(the HNSW walk, upper levels included; for sq8+refine the walk's evaluations
are on the 8-bit codes and the ef re-scored originals are reported apart, as
rerank_per_query). Recall@10 is against exact neighbours from IndexFlat on the
same rows, computed as the bench does: the share of the true top k found in
the returned k. memory_bytes is the size of faiss.serialize_index (codes,
links and, for sq8+refine, the f32 originals).
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

try:
    import faiss
except ImportError as e:  # pragma: no cover
    sys.exit(f"faiss_bench: cannot import faiss ({e}); run it through scripts/peers.sh")

KINDS = ("faiss", "faiss/fp16", "faiss/sq8+refine")


def log(msg):
    print(f"faiss_bench: {msg}", file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--npy", required=True, help="the data set, a 2-d .npy array")
    p.add_argument("--dataset", default=None, help="name for the report (default: the file name)")
    p.add_argument("--n", type=int, default=50_000, help="base rows (a prefix of the file)")
    p.add_argument("--nq", type=int, default=1000, help="queries (the rows after the base)")
    p.add_argument("--metric", choices=("l2", "cosine", "ip"), required=True)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--ef", default="10,16,24,32,48,64,96,128,192,256", help="efSearch sweep")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--kinds", default=",".join(KINDS), help="subset of " + ",".join(KINDS))
    p.add_argument("--no-build-1t", action="store_true", help="skip the timed one-thread builds")
    p.add_argument("--out", required=True, help="JSON file to write")
    a = p.parse_args()
    a.ef = [int(x) for x in a.ef.split(",") if x]
    a.kinds = [x for x in a.kinds.split(",") if x]
    bad = [x for x in a.kinds if x not in KINDS]
    if bad:
        p.error(f"unknown kinds {bad}; known: {', '.join(KINDS)}")
    if a.n < 1 or a.nq < 1 or a.repeat < 1 or a.k < 1 or not a.ef or min(a.ef) < 1:
        p.error("--n, --nq, --repeat, --k and every --ef must be at least 1")
    return a


def load(a):
    try:
        arr = np.load(a.npy, mmap_mode="r")
    except Exception as e:
        sys.exit(f"faiss_bench: cannot read {a.npy} as .npy: {e}")
    if arr.ndim != 2:
        sys.exit(f"faiss_bench: {a.npy} has shape {arr.shape}, want (rows, dim)")
    total = arr.shape[0]
    # dataset.rs's split: n shrinks to leave nq rows, then nq to what is left.
    n = min(a.n, max(total - a.nq, 0))
    nq = min(a.nq, total - n)
    if n == 0 or nq == 0:
        sys.exit(f"faiss_bench: {a.npy} has {total} rows: no room for base and queries")
    # Copies (the file is mapped read-only), native-endian float32, C order.
    xb = np.array(arr[:n], dtype=np.float32, order="C")
    xq = np.array(arr[n:n + nq], dtype=np.float32, order="C")
    if not (np.isfinite(xb).all() and np.isfinite(xq).all()):
        sys.exit(f"faiss_bench: {a.npy} has non-finite values in its first {n + nq} rows")
    if a.metric == "cosine":
        for x in (xb, xq):
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            np.divide(x, norms, out=x, where=norms > 0)
    return xb, xq


def faiss_metric(metric):
    return faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT


def ground_truth(xb, xq, metric, k):
    d = xb.shape[1]
    flat = faiss.IndexFlatL2(d) if metric == "l2" else faiss.IndexFlatIP(d)
    flat.add(xb)
    _, gt = flat.search(xq, k)
    return gt


class Kind:
    """One faiss index kind: how to make it, and how to point it at an ef."""

    def __init__(self, name, d, a):
        self.name, self.d, self.a = name, d, a
        self.index = self.base = None

    def make(self):
        d, m, metric = self.d, self.a.m, faiss_metric(self.a.metric)
        if self.name == "faiss":
            base = faiss.IndexHNSWFlat(d, m, metric)
            top = base
        elif self.name == "faiss/fp16":
            base = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_fp16, m, metric)
            top = base
        else:
            base = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, m, metric)
            top = faiss.IndexRefineFlat(base)
        base.hnsw.efConstruction = self.a.ef_construction
        return base, top

    def build(self, xb, threads):
        faiss.omp_set_num_threads(threads)
        base, top = self.make()
        start = time.perf_counter()
        top.train(xb)  # SQ: per-dimension ranges (8-bit), nothing to learn (fp16, flat)
        top.add(xb)
        secs = time.perf_counter() - start
        return base, top, secs

    def set_ef(self, ef):
        self.base.hnsw.efSearch = ef
        if self.index is not self.base:
            # The walk's whole candidate list (ef of them) goes to the re-rank.
            self.index.k_factor = k_factor(ef, self.a.k)


def k_factor(ef, k):
    """ef / k as faiss's float k_factor, nudged up where single precision
    would make IndexRefine's k_base = int64(k * k_factor) fall below ef."""
    kf = np.float32(ef / k)
    while int(np.float32(k) * kf) < ef:
        kf = np.nextafter(kf, np.float32(np.inf))
    return float(kf)


def recall(labels, gt):
    # The share of the true top k found among the returned k (bench.rs).
    hits = (gt[:, :, None] == labels[:, None, :]).any(axis=2).sum()
    return float(hits) / gt.size


def main():
    a = parse_args()
    threads_all = faiss.omp_get_max_threads()
    xb, xq = load(a)
    n, d = xb.shape
    nq = xq.shape[0]
    name = a.dataset or os.path.basename(a.npy)
    log(f"faiss {faiss.__version__} ({faiss.SIMDConfig.get_level_name()}), {name}: "
        f"{n} x {d} base, {nq} queries, metric {a.metric}, M {a.m}, "
        f"efConstruction {a.ef_construction}, k {a.k}")

    t = time.perf_counter()
    faiss.omp_set_num_threads(threads_all)
    gt = ground_truth(xb, xq, a.metric, a.k)
    log(f"exact ground truth (IndexFlat, {threads_all} threads) in {time.perf_counter() - t:.1f} s")

    kinds = [Kind(k, d, a) for k in a.kinds]
    # As bench.rs: one-thread builds in order, all-thread builds in reverse.
    one = {}
    if not a.no_build_1t:
        for kind in kinds:
            _, _, secs = kind.build(xb, 1)
            one[kind.name] = secs
            log(f"build {kind.name} (1 thread): {secs:.2f} s")
    nt = {}
    memory = {}
    for kind in reversed(kinds):
        kind.base, kind.index, secs = kind.build(xb, threads_all)
        nt[kind.name] = secs
        memory[kind.name] = int(faiss.serialize_index(kind.index).nbytes)
        log(f"build {kind.name} ({threads_all} threads): {secs:.2f} s, "
            f"{memory[kind.name] / 1e6:.1f} MB serialized")

    faiss.omp_set_num_threads(1)
    stats = faiss.cvar.hnsw_stats
    best = {}
    for rep in range(a.repeat):
        for ef in a.ef:
            for j in range(len(kinds)):
                kind = kinds[(j + rep) % len(kinds)]
                kind.set_ef(ef)
                stats.reset()
                start = time.perf_counter()
                _, labels = kind.index.search(xq, a.k)
                secs = time.perf_counter() - start
                ndis = stats.ndis
                qps = nq / secs
                key = (kind.name, ef)
                p = best.get(key)
                if p is None:
                    p = best[key] = {
                        "backend": kind.name,
                        "phase": "fresh",
                        "ef": ef,
                        "build_s_1t": one.get(kind.name),
                        "build_s_nt": nt[kind.name],
                        "qps_1t": qps,
                        "qps_1t_runs": [],
                        "recall_at_10": recall(labels, gt),
                        "evals_per_query": ndis / nq,
                        "memory_bytes": memory[kind.name],
                    }
                    if kind.index is not kind.base:
                        p["k_factor"] = kind.index.k_factor
                        p["rerank_per_query"] = float(int(np.float32(a.k) * np.float32(kind.index.k_factor)))
                p["qps_1t_runs"].append(qps)
                p["qps_1t"] = max(p["qps_1t"], qps)
        log(f"sweep {rep + 1}/{a.repeat} done")

    points = [best[(k.name, ef)] for k in kinds for ef in a.ef]
    for p in points:
        log(f"{p['backend']:>17} ef {p['ef']:>4}: recall@10 {p['recall_at_10']:.4f}, "
            f"{p['qps_1t']:8.0f} QPS, {p['evals_per_query']:7.1f} evals/query")
    settings = {
        "dataset": f"{name} first {n}",
        "file": os.path.abspath(a.npy),
        "n": n,
        "dim": d,
        "queries": nq,
        "metric": a.metric,
        "m": a.m,
        "ef_construction": a.ef_construction,
        "k": a.k,
        "ef": a.ef,
        "threads": threads_all,
        "search_threads": 1,
        "repeat": a.repeat,
        "search": "one index.search call over the whole query batch per pass, 1 OpenMP thread",
        "refine_k_factor": "ef / k (the base walk's ef candidates are all re-scored)",
        "faiss_version": faiss.__version__,
        "faiss_simd": faiss.SIMDConfig.get_level_name(),
        "numpy_version": np.__version__,
        "python": platform.python_version(),
    }
    tmp = a.out + ".part"
    with open(tmp, "w") as f:
        json.dump({"settings": settings, "points": points}, f, indent=1)
        f.write("\n")
    os.replace(tmp, a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

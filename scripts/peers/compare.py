#!/usr/bin/env python3
"""Reads a `vecsearch bench --json` file and faiss_bench.py's JSON and prints,
per backend, the single-thread QPS at recall@10 0.90, 0.95 and 0.99 read on
its recall curve, evaluations per query at 0.95, the ratios the issue asks
for, build time and memory; writes the same as peers.txt and peers.md.

Reading a curve at a target is report.rs's `qps_on_curve`: the backend's
fresh points sorted by ef, the first that reaches the target and the one
before it, QPS linear in recall between them. Two cases have no such pair:
  - the curve never reaches the target: "—";
  - its first ef already does: the QPS at the target is at least that
    point's (a smaller ef would answer faster), shown as "≥Q"; a ratio with
    one such bound is a bound itself ("≥" or "≤"), with two it is "—".
Evaluations per query are read the same way (at most the first point's:
"≤E"), from each point's `evals_per_query` where the file has one.
Standard library only.
"""

import argparse
import json
import os
import sys

TARGETS = (0.90, 0.95, 0.99)
EVALS_AT = 0.95
ORDER = ("native", "native/f16", "native/i8", "hnswlib",
         "faiss", "faiss/fp16", "faiss/sq8+refine")
# (numerator, denominator): the comparisons.
RATIOS = (
    ("native", "faiss"),
    ("native/f16", "faiss/fp16"),
    ("native/i8", "faiss/sq8+refine"),
    ("hnswlib", "native"),
)
# Settings that must agree for the comparison to mean anything.
MUST_MATCH = ("n", "dim", "queries", "metric", "m", "ef_construction")
DASH = "—"


class Value:
    """A reading on a curve: exact, a lower bound ("≥") or an upper bound ("≤")."""

    def __init__(self, v, bound=""):
        self.v, self.bound = v, bound


def read_curve(points, field, target):
    """`field` where the fresh curve of `points` crosses `target` (None if never)."""
    pts = sorted((p for p in points if p.get("ef") is not None), key=lambda p: p["ef"])
    i = next((i for i, p in enumerate(pts) if p["recall_at_10"] >= target), None)
    if i is None or pts[i].get(field) is None:
        return None
    if i == 0:
        # QPS falls and evaluations grow with ef: the first point bounds them.
        return Value(pts[0][field], "≥" if field == "qps_1t" else "≤")
    a, b = pts[i - 1], pts[i]
    if a.get(field) is None:
        return None
    t = (target - a["recall_at_10"]) / (b["recall_at_10"] - a["recall_at_10"])
    return Value(a[field] + t * (b[field] - a[field]))


def ratio(x, y):
    if x is None or y is None or (x.bound and y.bound) or y.v == 0:
        return None
    r = x.v / y.v
    if x.bound:
        # x is bounded on one side: so is x / y, on the same side.
        return Value(r, x.bound)
    if y.bound:
        return Value(r, "≤" if y.bound == "≥" else "≥")
    return Value(r)


def fmt_qps(v):
    return DASH if v is None else f"{v.bound}{v.v:,.0f}"


def fmt_evals(v):
    return DASH if v is None else f"{v.bound}{v.v:,.0f}"


def fmt_ratio(v):
    return DASH if v is None else f"{v.bound}{v.v:.2f}x"


def load(path):
    try:
        with open(path) as f:
            data = json.load(f)
        return data.get("settings", {}), data["points"]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"compare: cannot read {path} as a bench JSON file: {e}")


def by_backend(points):
    out = {}
    for p in points:
        if p.get("phase", "fresh") == "fresh" and p.get("ef") is not None:
            out.setdefault(p["backend"], []).append(p)
    return out


def first(points, field):
    return next((p[field] for p in points if p.get(field) is not None), None)


def render_text(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(
        (str(c).ljust(w) if i == 0 else str(c).rjust(w)) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def render_md(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("vecsearch_json")
    p.add_argument("faiss_json")
    p.add_argument("--out-dir", help="writes peers.txt and peers.md here")
    p.add_argument("--command", help="the command that measured it, for the notes")
    a = p.parse_args()

    vs_set, vs_pts = load(a.vecsearch_json)
    fa_set, fa_pts = load(a.faiss_json)
    curves = by_backend(vs_pts)
    for name, pts in by_backend(fa_pts).items():
        if name in curves:
            sys.exit(f"compare: backend {name} is in both files")
        curves[name] = pts
    if not curves:
        sys.exit("compare: no graph backend points (fresh, with an ef) in either file")

    warnings = []
    for key in MUST_MATCH:
        x, y = vs_set.get(key), fa_set.get(key)
        if x is not None and y is not None and x != y:
            warnings.append(f"settings differ: {key} is {x} in {a.vecsearch_json}, "
                            f"{y} in {a.faiss_json}: the two sides did not measure the same thing")

    names = [n for n in ORDER if n in curves] + sorted(n for n in curves if n not in ORDER)
    qps = {n: {t: read_curve(curves[n], "qps_1t", t) for t in TARGETS} for n in names}
    evals = {n: read_curve(curves[n], "evals_per_query", EVALS_AT) for n in names}

    threads = vs_set.get("threads") or fa_set.get("threads")
    tcols = [f"QPS @{t:.2f}" for t in TARGETS]
    header = ["Backend"] + tcols + [f"Evals/query @{EVALS_AT:.2f}", "Build (s) 1t",
                                    f"Build (s) {threads}t" if threads else "Build (s) nt",
                                    "Memory (MB)"]
    rows = []
    for n in names:
        b1, bn, mem = (first(curves[n], f) for f in ("build_s_1t", "build_s_nt", "memory_bytes"))
        rows.append([n] + [fmt_qps(qps[n][t]) for t in TARGETS] + [
            fmt_evals(evals[n]),
            DASH if b1 is None else f"{b1:.2f}",
            DASH if bn is None else f"{bn:.2f}",
            DASH if mem is None else f"{mem / 1e6:.1f}",
        ])

    rheader = ["Ratio"] + [f"QPS @{t:.2f}" for t in TARGETS] + [f"Evals/query @{EVALS_AT:.2f}"]
    rrows = []
    for x, y in RATIOS:
        if x in curves and y in curves:
            rrows.append([f"{x} / {y}"] + [fmt_ratio(ratio(qps[x][t], qps[y][t])) for t in TARGETS]
                         + [fmt_ratio(ratio(evals[x], evals[y]))])

    s = vs_set if vs_set else fa_set
    title = (f"{vs_set.get('dataset', '?')}: {s.get('n', '?')} x {s.get('dim', '?')}, "
             f"{s.get('queries', '?')} queries, metric {s.get('metric', '?')}, M {s.get('m', '?')}, "
             f"ef_construction {s.get('ef_construction', '?')}, k 10; "
             f"faiss {fa_set.get('faiss_version', '?')} ({fa_set.get('faiss_simd', '?')})")
    rv, rf = vs_set.get("repeat", "?"), fa_set.get("repeat", "?")
    passes = rv if rv == rf else f"{rv} (vecsearch) and {rf} (faiss)"
    notes = [
        "QPS: one query thread, read on each recall@10 curve (linear between the two sweep points "
        "around the target, as the bench's report does); " + DASH + ": the curve never reaches it; "
        "≥: the sweep's first ef already does (the QPS there, a lower bound); a ratio with one such "
        "bound is a bound (≥ or ≤), with two it is " + DASH + ".",
        "vecsearch: `vecsearch bench`, one query per call in a loop; faiss: one search call over "
        "the whole query batch, omp_set_num_threads(1); both the fastest of "
        f"{passes} alternated passes.",
        "Evals/query: distance evaluations per query, read on the curve like QPS (vecsearch: the "
        "bench's evals_per_query, rows scored; faiss: hnsw_stats.ndis / nq, the walk, upper levels "
        "included; faiss/sq8+refine walks on its 8-bit codes, then re-scores all ef candidates with "
        "the f32 originals (k_factor = ef / k), which are not counted here); " + DASH + ": not reported.",
        "Memory: the bench's memory_bytes (native/i8: heap only, the f32 originals are in a mapped "
        "file); faiss: serialize_index size (faiss/sq8+refine includes its f32 originals).",
    ]
    if a.command:
        notes.insert(0, f"Command: `{a.command}`")

    text = "\n".join([title, "", render_text(header, rows), "", render_text(rheader, rrows), ""]
                     + [f"- {n}" for n in notes] + [f"WARNING: {w}" for w in warnings]) + "\n"
    md = "\n".join([f"**{title}**", "", render_md(header, rows), "", render_md(rheader, rrows), ""]
                   + [f"- {n}" for n in notes] + [f"- **Warning**: {w}" for w in warnings]) + "\n"
    sys.stdout.write(text)
    if a.out_dir:
        for name, body in (("peers.txt", text), ("peers.md", md)):
            with open(os.path.join(a.out_dir, name), "w") as f:
                f.write(body)
        print(f"wrote {os.path.join(a.out_dir, 'peers.txt')} and peers.md")


if __name__ == "__main__":
    main()

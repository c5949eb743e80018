//! What a benchmark prints and writes: the table, the JSON points, the plot,
//! and the progress bars while it runs.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// One measured point: a backend at one `ef`, in one phase.
#[derive(Debug, Clone)]
pub struct Point {
    pub backend: String,
    /// `fresh`; `after_churn` (after deleting a share and adding as many);
    /// `rebuilt` (a fresh build of the points that remain after the churn).
    pub phase: String,
    /// `None` for the exact flat index.
    pub ef: Option<usize>,
    pub build_s_1t: f64,
    pub build_s_nt: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub qps_1t: f64,
    pub qps_batch: f64,
    pub recall_at_10: f64,
    pub memory_bytes: Option<usize>,
    pub rss_delta_bytes: i64,
    /// What the engine reported after indexing: vectors stored, and of
    /// those answered by exact scan (`None` where it could not say).
    pub indexing: Option<(usize, usize)>,
    /// `qps_1t` of every repeat of this point (the point is the fastest).
    pub qps_1t_runs: Vec<f64>,
    /// `qps_batch` of every repeat of this point.
    pub qps_batch_runs: Vec<f64>,
    /// Mean distance evaluations per query (rows scored, upper levels
    /// included), where the engine counts them (native, flat).
    pub evals_per_query: Option<f64>,
}

impl Point {
    fn to_json(&self) -> serde_json::Value {
        json!({
            "backend": self.backend,
            "phase": self.phase,
            "ef": self.ef,
            "build_s_1t": self.build_s_1t,
            "build_s_nt": self.build_s_nt,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "qps_1t": self.qps_1t,
            "qps_batch": self.qps_batch,
            "recall_at_10": self.recall_at_10,
            "memory_bytes": self.memory_bytes,
            "rss_delta_bytes": self.rss_delta_bytes,
            "stored": self.indexing.map(|i| i.0),
            "exact_scan": self.indexing.map(|i| i.1),
            "qps_1t_runs": self.qps_1t_runs,
            "qps_batch_runs": self.qps_batch_runs,
            "evals_per_query": self.evals_per_query,
        })
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress(len: u64, label: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg:>28} [{bar:40}] {pos}/{len} {elapsed}") {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(label.to_string());
    pb
}

/// The fresh point where `backend` first reaches `target` recall (by
/// ascending ef), or its best-recall point when it never does.
pub fn at_target<'a>(points: &'a [Point], backend: &str, target: f64) -> Option<&'a Point> {
    let mut mine: Vec<&Point> = points
        .iter()
        .filter(|p| p.backend == backend && p.phase == "fresh")
        .collect();
    mine.sort_by_key(|p| p.ef);
    mine.iter()
        .find(|p| p.recall_at_10 >= target)
        .or_else(|| {
            mine.iter()
                .max_by(|a, b| a.recall_at_10.total_cmp(&b.recall_at_10))
        })
        .copied()
}

/// `backend`'s single-thread QPS where its fresh recall curve crosses
/// `target`: linear between the two sweep points around the crossing.
/// `None` when no point reaches the target, or the first one already does
/// (nothing to read between).
pub fn qps_on_curve(points: &[Point], backend: &str, target: f64) -> Option<f64> {
    on_curve_of(points, backend, target, |p| Some(p.qps_1t))
}

/// `backend`'s distance evaluations per query where its fresh recall curve
/// crosses `target`, read as [`qps_on_curve`] reads QPS.
pub fn evals_on_curve(points: &[Point], backend: &str, target: f64) -> Option<f64> {
    on_curve_of(points, backend, target, |p| p.evals_per_query)
}

fn on_curve_of(
    points: &[Point],
    backend: &str,
    target: f64,
    value: impl Fn(&Point) -> Option<f64>,
) -> Option<f64> {
    let mut mine: Vec<&Point> = points
        .iter()
        .filter(|p| p.backend == backend && p.phase == "fresh" && p.ef.is_some())
        .collect();
    mine.sort_by_key(|p| p.ef);
    crossing(&mine, |p| p.recall_at_10, |p| value(p), target)
}

/// The value where a sweep's recall first reaches `target` (the sweep in
/// order of ef): linear between the two points around the crossing.
/// `None` when no point reaches the target, the first one already does
/// (nothing to read between), or either point has no value.
pub fn crossing<T>(
    sweep: &[T],
    recall: impl Fn(&T) -> f64,
    value: impl Fn(&T) -> Option<f64>,
    target: f64,
) -> Option<f64> {
    let i = sweep.iter().position(|p| recall(p) >= target)?;
    let (a, b) = (sweep.get(i.checked_sub(1)?)?, sweep.get(i)?);
    let t = (target - recall(a)) / (recall(b) - recall(a));
    let (va, vb) = (value(a)?, value(b)?);
    Some(va + t * (vb - va))
}

// Every graph backend's QPS read on its curve at the target, each compared
// with the baseline's in a sentence: the table's first-ef rule can put two
// curves that cross the target a hair apart a whole ef step apart.
fn on_curve(points: &[Point], names: &[&str], target: f64) -> String {
    let read: Vec<(&str, f64)> = names
        .iter()
        .filter_map(|n| qps_on_curve(points, n, target).map(|q| (*n, q)))
        .collect();
    if read.is_empty() {
        return String::new();
    }
    let cells: Vec<String> = read.iter().map(|(n, q)| format!("{n} {q:.0}")).collect();
    let mut out = format!(
        "\nQPS at recall@10 = {target} on each curve (linear between the two sweep points around it): {}\n",
        cells.join(", ")
    );
    let evals: Vec<String> = names
        .iter()
        .filter_map(|n| evals_on_curve(points, n, target).map(|e| format!("{n} {e:.0}")))
        .collect();
    if !evals.is_empty() {
        out += &format!(
            "Distance evaluations per query there (rows scored, upper levels included; read the same way): {}\n",
            evals.join(", ")
        );
    }
    let base = baseline(&read.iter().map(|r| r.0).collect::<Vec<_>>());
    if let Some(&(bn, bq)) = read.iter().find(|r| Some(r.0) == base) {
        for &(n, q) in read.iter().filter(|r| r.0 != bn) {
            out += &compare(&Compare {
                what: "On the curves at the target",
                a: (bn, q_fmt(bq)),
                b: (n, q_fmt(q)),
                ratio: bq / q,
                better: Better::Higher("the QPS of"),
                noise: None,
            });
        }
    }
    out
}

/// The backend the others are compared with: native where it ran, else the
/// first one named.
fn baseline<'a>(names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .find(|n| **n == "native")
        .or_else(|| names.first())
        .copied()
}

fn q_fmt(q: f64) -> String {
    format!("{q:.0} QPS")
}

/// Which way a figure is better, and how a ratio of it reads.
enum Better {
    /// Higher wins; the ratio reads "1.35x the QPS of hnswlib".
    Higher(&'static str),
    /// Lower wins (times, bytes); the ratio reads "1.33x as fast as" (for
    /// times) or "hnswlib holds 1.18x as much" (for memory).
    Lower(&'static str),
}

/// One comparison of two backends on one figure.
struct Compare<'a> {
    what: &'a str,
    a: (&'a str, String),
    b: (&'a str, String),
    /// a's figure over b's.
    ratio: f64,
    better: Better,
    /// The larger spread of the two figures' repeats, as a fraction.
    noise: Option<f64>,
}

/// One sentence: who won and by how much, the ratio always the winner's
/// advantage (at least 1.00x), the figures beside it, and whether the lead
/// is within the noise of the repeats.
fn compare(c: &Compare) -> String {
    let a_wins = match c.better {
        Better::Higher(_) => c.ratio >= 1.0,
        Better::Lower(_) => c.ratio <= 1.0,
    };
    let ((w, wv), (l, lv)) = if a_wins { (&c.a, &c.b) } else { (&c.b, &c.a) };
    let r = if c.ratio >= 1.0 {
        c.ratio
    } else {
        1.0 / c.ratio
    };
    if !r.is_finite() {
        return format!("{}: {w} {wv}, {l} {lv}.\n", c.what);
    }
    let noise = match c.noise {
        Some(n) if r - 1.0 <= n => format!(
            "; the repeats varied by up to {:.0}%, so this lead is within the noise",
            n * 100.0
        ),
        Some(n) => format!("; the repeats varied by up to {:.0}%", n * 100.0),
        None => String::new(),
    };
    if format!("{r:.2}") == "1.00" {
        return format!("{}: {w} and {l} tie ({wv} against {lv}){noise}.\n", c.what);
    }
    let lead = match c.better {
        Better::Higher(of) => format!("{w} wins, {r:.2}x {of} {l}"),
        Better::Lower("time") => format!("{w} wins, {r:.2}x as fast as {l}"),
        Better::Lower(what) => format!("{w} wins, {l} holds {r:.2}x as much {what}"),
    };
    format!("{}: {lead} ({wv} against {lv}){noise}.\n", c.what)
}

/// How much the repeats of one figure varied: (fastest - slowest) / fastest.
pub fn spread(runs: &[f64]) -> Option<f64> {
    let max = runs.iter().copied().fold(f64::NAN, f64::max);
    let min = runs.iter().copied().fold(f64::NAN, f64::min);
    (runs.len() > 1 && max > 0.0).then(|| (max - min) / max)
}

/// A QPS cell: the fastest repeat, and how far below it the slowest was.
fn qps_cell(qps: f64, runs: &[f64]) -> String {
    match spread(runs) {
        Some(s) if s < 0.005 => format!("{qps:.0} (-<1%)"),
        Some(s) => format!("{qps:.0} (-{:.0}%)", s * 100.0),
        None => format!("{qps:.0}"),
    }
}

/// "1.85x as fast" for a speed-up of at least 1, "4% slower" below it.
fn speedup(r: f64, faster: &str, slower: &str) -> String {
    if format!("{r:.2}") == "1.00" {
        format!("1.00x {faster}")
    } else if r > 1.0 {
        format!("{r:.2}x {faster}")
    } else {
        format!("{:.0}% {slower}", (1.0 - r) * 100.0)
    }
}

fn mb(bytes: Option<usize>) -> String {
    bytes.map_or("-".into(), |b| format!("{:.1}", b as f64 / 1e6))
}

fn ef_label(ef: Option<usize>) -> String {
    ef.map_or("exact".into(), |e| e.to_string())
}

/// What the churn phase did, for the churn table's title.
#[derive(Debug, Clone, Copy)]
pub struct Churned {
    /// The share of the points deleted (and as many added).
    pub fraction: f64,
    /// Points deleted, and as many added.
    pub replaced: usize,
    /// Points before the churn.
    pub of: usize,
}

/// The seed literature's table at the target recall, then one sentence per
/// comparison, and the churn rows.
pub fn table(
    points: &[Point],
    target: f64,
    threads: usize,
    repeat: usize,
    churned: Option<Churned>,
) -> String {
    let mut names: Vec<&str> = Vec::new();
    for p in points {
        if !names.contains(&p.backend.as_str()) {
            names.push(&p.backend);
        }
    }
    let mut out = format!(
        "At the first ef reaching recall@10 >= {target} (one query thread; build with 1 and {threads} threads):\n\n\
         | Backend | ef | Build (s) 1t | Build (s) {threads}t | Query p50 (us) | p99 (us) | QPS | Batch QPS ({threads}t) | Recall@10 | Memory (MB) | RSS growth (MB) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    let chosen: Vec<&Point> = names
        .iter()
        .filter_map(|n| at_target(points, n, target))
        .collect();
    for p in &chosen {
        out += &format!(
            "| {}{}{} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {} | {} | {:.3} | {} | {:.1} |\n",
            p.backend,
            if p.recall_at_10 < target {
                " (below target)"
            } else {
                ""
            },
            crate::bench::scan_note(p.indexing),
            ef_label(p.ef),
            p.build_s_1t,
            p.build_s_nt,
            p.p50_us,
            p.p99_us,
            qps_cell(p.qps_1t, &p.qps_1t_runs),
            qps_cell(p.qps_batch, &p.qps_batch_runs),
            p.recall_at_10,
            mb(p.memory_bytes),
            p.rss_delta_bytes as f64 / 1e6
        );
    }
    out += &format!(
        "\nQPS and batch QPS are the fastest of {repeat} alternating repeat{}{}; \
         latencies are from that repeat; each build is timed once.\n",
        if repeat == 1 { "" } else { "s" },
        if repeat > 1 {
            " (in brackets: how far below it the slowest repeat was, the machine's noise)"
        } else {
            ""
        }
    );
    out += &ratios(&chosen, threads);
    out += &on_curve(points, &names, target);
    out += &churn_table(points, churned);
    out
}

/// The rows after churn, beside fresh and rebuilt, and one sentence per backend.
fn churn_table(points: &[Point], churned: Option<Churned>) -> String {
    let after: Vec<&Point> = points.iter().filter(|p| p.phase == "after_churn").collect();
    if after.is_empty() {
        return String::new();
    }
    let share = churned.map_or("a share".to_string(), |c| {
        format!("{:.0}%", c.fraction * 100.0)
    });
    let counts = churned.map_or(String::new(), |c| format!(" ({} of {})", c.replaced, c.of));
    let mut out = format!(
        "\nAfter churn: {share} of the points{counts} deleted at random and as many new ones added, \
         searched at the same ef. \"rebuilt\" is a fresh build of the points that remain, \
         what the churned index should match:\n\n\
         | Backend | ef | Recall@10 fresh | after {share} churn | rebuilt | QPS fresh | after {share} churn | rebuilt | Memory fresh (MB) | after churn (MB) |\n\
         |---|---|---|---|---|---|---|---|---|---|\n"
    );
    let find = |phase: &str, c: &Point| {
        points
            .iter()
            .find(|p| p.phase == phase && p.backend == c.backend && p.ef == c.ef)
    };
    let mut lines = String::new();
    for c in after {
        let Some(f) = find("fresh", c) else { continue };
        let r = find("rebuilt", c);
        out += &format!(
            "| {} | {} | {:.3} | {:.3} | {} | {} | {} | {} | {} | {} |\n",
            c.backend,
            ef_label(c.ef),
            f.recall_at_10,
            c.recall_at_10,
            r.map_or("-".into(), |r| format!("{:.3}", r.recall_at_10)),
            qps_cell(f.qps_1t, &f.qps_1t_runs),
            qps_cell(c.qps_1t, &c.qps_1t_runs),
            r.map_or("-".into(), |r| qps_cell(r.qps_1t, &r.qps_1t_runs)),
            mb(f.memory_bytes),
            mb(c.memory_bytes)
        );
        let noise = [Some(f), Some(c), r]
            .iter()
            .flatten()
            .filter_map(|p| spread(&p.qps_1t_runs))
            .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
        let recall = match r {
            Some(r) => format!(
                "recall@10 {:.3} (fresh {:.3}, rebuilt {:.3})",
                c.recall_at_10, f.recall_at_10, r.recall_at_10
            ),
            None => format!(
                "recall@10 {:.3} (fresh {:.3})",
                c.recall_at_10, f.recall_at_10
            ),
        };
        let vs = |other: &Point, name: &str| {
            let d = c.qps_1t / other.qps_1t;
            if format!("{d:.2}") == "1.00" {
                format!("as fast as {name}")
            } else if d > 1.0 {
                format!("{:.0}% faster than {name}", (d - 1.0) * 100.0)
            } else {
                format!("{:.0}% slower than {name}", (1.0 - d) * 100.0)
            }
        };
        let mut qps = vs(f, "fresh");
        if let Some(r) = r {
            qps += &format!(" and {}", vs(r, "rebuilt"));
        }
        let noise = match noise {
            Some(n) => format!(" (the repeats varied by up to {:.0}%)", n * 100.0),
            None => String::new(),
        };
        lines += &format!(
            "{} after {share} churn: {recall}; QPS {:.0}, {qps}{noise}.\n",
            c.backend, c.qps_1t
        );
    }
    out + "\n" + &lines
}

// The baseline (native where it ran) against each other graph engine at the
// target recall, one sentence per figure; then each engine against itself:
// all threads against one.
fn ratios(chosen: &[&Point], threads: usize) -> String {
    let graph: Vec<&Point> = chosen.iter().copied().filter(|p| p.ef.is_some()).collect();
    let names: Vec<&str> = graph.iter().map(|p| p.backend.as_str()).collect();
    let mut out = String::from("\n");
    if let Some(base) = baseline(&names).and_then(|b| graph.iter().find(|p| p.backend == b)) {
        for other in graph.iter().filter(|p| p.backend != base.backend) {
            let (a, b) = (base.backend.as_str(), other.backend.as_str());
            let noise = |x: &[f64], y: &[f64]| match (spread(x), spread(y)) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            };
            let secs = |s: f64| format!("{s:.2} s");
            let mut cmp = vec![
                Compare {
                    what: "Single-query QPS (1 thread)",
                    a: (a, q_fmt(base.qps_1t)),
                    b: (b, q_fmt(other.qps_1t)),
                    ratio: base.qps_1t / other.qps_1t,
                    better: Better::Higher("the QPS of"),
                    noise: noise(&base.qps_1t_runs, &other.qps_1t_runs),
                },
                Compare {
                    what: "Batch QPS",
                    a: (a, q_fmt(base.qps_batch)),
                    b: (b, q_fmt(other.qps_batch)),
                    ratio: base.qps_batch / other.qps_batch,
                    better: Better::Higher("the batch QPS of"),
                    noise: noise(&base.qps_batch_runs, &other.qps_batch_runs),
                },
                Compare {
                    what: "Build on 1 thread",
                    a: (a, secs(base.build_s_1t)),
                    b: (b, secs(other.build_s_1t)),
                    ratio: base.build_s_1t / other.build_s_1t,
                    better: Better::Lower("time"),
                    noise: None,
                },
            ];
            if threads > 1 {
                cmp.push(Compare {
                    what: "Build on all threads",
                    a: (a, secs(base.build_s_nt)),
                    b: (b, secs(other.build_s_nt)),
                    ratio: base.build_s_nt / other.build_s_nt,
                    better: Better::Lower("time"),
                    noise: None,
                });
            }
            if let (Some(x), Some(y)) = (base.memory_bytes, other.memory_bytes) {
                cmp.push(Compare {
                    what: "Memory",
                    a: (a, format!("{} MB", mb(Some(x)))),
                    b: (b, format!("{} MB", mb(Some(y)))),
                    ratio: x as f64 / y as f64,
                    better: Better::Lower("memory"),
                    noise: None,
                });
            }
            for c in &cmp {
                out += &compare(c);
            }
        }
    }
    for p in &graph {
        out += &format!(
            "{}: building on {threads} threads is {} building on 1; batch search on {threads} threads \
             answers {} the single-query loop.\n",
            p.backend,
            speedup(p.build_s_1t / p.build_s_nt, "as fast as", "slower than"),
            speedup(
                p.qps_batch / p.qps_1t,
                "the queries per second of",
                "fewer queries per second than"
            ),
        );
    }
    out
}

/// Writes every point as a JSON array, with the run's settings beside them.
pub fn write_json(
    path: &Path,
    settings: serde_json::Value,
    points: &[Point],
) -> Result<(), String> {
    let doc = json!({
        "settings": settings,
        "points": points.iter().map(Point::to_json).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

// Distinct on white and for the common colour-blindness types (Okabe–Ito).
const COLORS: [plotters::style::RGBColor; 6] = [
    plotters::style::RGBColor(0, 114, 178),
    plotters::style::RGBColor(213, 94, 0),
    plotters::style::RGBColor(0, 158, 115),
    plotters::style::RGBColor(204, 121, 167),
    plotters::style::RGBColor(86, 180, 233),
    plotters::style::RGBColor(0, 0, 0),
];

/// Draws recall@10 (x) against single-thread QPS (y, log scale) per backend,
/// like ann-benchmarks, into an SVG.
pub fn plot(path: &Path, title: &str, points: &[Point]) -> Result<(), String> {
    use plotters::prelude::*;

    let fresh: Vec<&Point> = points.iter().filter(|p| p.phase == "fresh").collect();
    let min_recall = fresh
        .iter()
        .map(|p| p.recall_at_10)
        .fold(1.0, f64::min)
        .min(0.9);
    let max_qps = fresh.iter().map(|p| p.qps_1t).fold(10.0, f64::max) * 2.0;
    let min_qps = fresh
        .iter()
        .map(|p| p.qps_1t)
        .fold(max_qps, f64::min)
        .max(1.0)
        / 2.0;
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(min_recall..1.0, (min_qps..max_qps).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("Recall@10")
        .y_desc("Queries per second (1 thread, log scale)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(e)?;
    let mut names: Vec<&str> = fresh.iter().map(|p| p.backend.as_str()).collect();
    names.dedup();
    names.sort();
    names.dedup();
    for (i, name) in names.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let mut line: Vec<(f64, f64)> = fresh
            .iter()
            .filter(|p| p.backend == *name)
            .map(|p| (p.recall_at_10, p.qps_1t))
            .collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(e)?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(line.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerLeft)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(ef: usize, recall: f64, qps: f64) -> Point {
        Point {
            backend: "native".into(),
            phase: "fresh".into(),
            ef: Some(ef),
            build_s_1t: 1.0,
            build_s_nt: 1.0,
            p50_us: 1.0,
            p99_us: 1.0,
            qps_1t: qps,
            qps_batch: qps,
            recall_at_10: recall,
            memory_bytes: None,
            rss_delta_bytes: 0,
            indexing: None,
            qps_1t_runs: vec![qps],
            qps_batch_runs: vec![qps],
            evals_per_query: None,
        }
    }

    fn named(backend: &str, qps: f64, runs: &[f64], build: (f64, f64), mem: usize) -> Point {
        Point {
            backend: backend.into(),
            build_s_1t: build.0,
            build_s_nt: build.1,
            qps_batch: qps * 0.9,
            qps_1t_runs: runs.to_vec(),
            qps_batch_runs: runs.iter().map(|q| q * 0.9).collect(),
            memory_bytes: Some(mem),
            ..point(32, 0.96, qps)
        }
    }

    /// Every ratio a sentence prints is the winner's lead (at least 1.00x);
    /// what is below 1 is said as "slower" or "fewer" (issue 21: "0.96x
    /// faster build on all threads" meant slower).
    fn no_ratio_below_one(text: &str) {
        for word in text.split_whitespace() {
            let w = word.trim_start_matches('(');
            if let Some(num) = w.strip_suffix('x').or_else(|| w.strip_suffix("x,")) {
                if let Ok(r) = num.parse::<f64>() {
                    assert!(r >= 1.0, "a ratio below 1 ({word}) in:\n{text}");
                }
            }
        }
        assert!(!text.contains("x faster"), "{text}");
    }

    #[test]
    fn comparisons_name_the_winner_and_read_one_way() {
        // native slower at queries, faster to build, smaller; and slower on
        // two threads than on one.
        let pts = [
            named("native", 800.0, &[800.0, 790.0, 700.0], (3.0, 3.2), 80),
            named("hnswlib", 1000.0, &[1000.0, 995.0, 990.0], (4.0, 2.5), 100),
        ];
        let text = table(&pts, 0.95, 2, 3, None);
        no_ratio_below_one(&text);
        assert!(
            text.contains("Single-query QPS (1 thread): hnswlib wins, 1.25x the QPS of native (1000 QPS against 800 QPS); the repeats varied by up to 12%."),
            "{text}"
        );
        assert!(
            text.contains(
                "Build on 1 thread: native wins, 1.33x as fast as hnswlib (3.00 s against 4.00 s)."
            ),
            "{text}"
        );
        assert!(
            text.contains("Build on all threads: hnswlib wins, 1.28x as fast as native"),
            "{text}"
        );
        assert!(
            text.contains("Memory: native wins, hnswlib holds 1.25x as much memory"),
            "{text}"
        );
        assert!(
            text.contains("native: building on 2 threads is 6% slower than building on 1"),
            "{text}"
        );
        // The spread of the repeats beside each QPS.
        assert!(text.contains("| 800 (-12%) |"), "{text}");
        assert!(text.contains("| 1000 (-1%) |"), "{text}");
        // A lead smaller than the noise says so.
        let close = [
            named("native", 1000.0, &[1000.0, 900.0], (1.0, 0.5), 1),
            named("hnswlib", 980.0, &[980.0, 970.0], (1.0, 0.5), 1),
        ];
        let text = table(&close, 0.95, 2, 2, None);
        assert!(
            text.contains("native wins, 1.02x the QPS of hnswlib (1000 QPS against 980 QPS); the repeats varied by up to 10%, so this lead is within the noise."),
            "{text}"
        );
    }

    #[test]
    fn the_churn_table_says_the_share_and_the_rebuild() {
        let fresh = named("native", 1000.0, &[1000.0, 950.0], (1.0, 0.5), 1);
        let after = Point {
            phase: "after_churn".into(),
            recall_at_10: 0.95,
            ..named("native", 900.0, &[900.0, 880.0], (1.0, 0.5), 1)
        };
        let rebuilt = Point {
            phase: "rebuilt".into(),
            ..named("native", 1100.0, &[1100.0, 1000.0], (1.0, 0.5), 1)
        };
        let churned = Churned {
            fraction: 0.3,
            replaced: 300,
            of: 1000,
        };
        let text = table(&[fresh, after, rebuilt], 0.95, 2, 2, Some(churned));
        no_ratio_below_one(&text);
        assert!(
            text.contains("After churn: 30% of the points (300 of 1000) deleted at random"),
            "{text}"
        );
        assert!(
            text.contains("\"rebuilt\" is a fresh build of the points that remain"),
            "{text}"
        );
        assert!(text.contains("| after 30% churn | rebuilt |"), "{text}");
        assert!(
            text.contains("native after 30% churn: recall@10 0.950 (fresh 0.960, rebuilt 0.960); QPS 900, 10% slower than fresh and 18% slower than rebuilt (the repeats varied by up to 9%)."),
            "{text}"
        );
    }

    #[test]
    fn qps_is_read_between_the_points_around_the_target() {
        // Out of order on purpose: the curve is read by ascending ef.
        let pts = [
            point(32, 0.97, 20.0),
            point(10, 0.90, 100.0),
            point(16, 0.94, 60.0),
        ];
        // A third of the way from 0.94 to 0.97: a third of the way from 60 to 20.
        let q = qps_on_curve(&pts, "native", 0.95).unwrap();
        assert!((q - (60.0 - 40.0 / 3.0)).abs() < 1e-9, "{q}");
        assert_eq!(qps_on_curve(&pts, "native", 0.99), None, "never reached");
        assert_eq!(
            qps_on_curve(&pts, "native", 0.85),
            None,
            "reached at the first ef"
        );
        assert_eq!(qps_on_curve(&pts, "hnswlib", 0.95), None, "no such backend");
    }

    #[test]
    fn evaluations_are_read_on_the_curve_like_qps() {
        let with = |ef, r, q, e| Point {
            evals_per_query: Some(e),
            ..point(ef, r, q)
        };
        let pts = [
            with(10, 0.90, 100.0, 300.0),
            with(16, 0.94, 60.0, 420.0),
            with(32, 0.97, 20.0, 720.0),
        ];
        let e = evals_on_curve(&pts, "native", 0.95).unwrap();
        assert!((e - 520.0).abs() < 1e-9, "{e}");
        // An engine that does not count has no reading.
        let uncounted = [point(10, 0.90, 100.0), point(16, 0.97, 60.0)];
        assert_eq!(evals_on_curve(&uncounted, "native", 0.95), None);
        let text = on_curve(&pts, &["native"], 0.95);
        assert!(
            text.contains("Distance evaluations per query there") && text.contains("native 520"),
            "{text}"
        );
    }
}

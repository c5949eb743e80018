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
    let mut mine: Vec<&Point> = points
        .iter()
        .filter(|p| p.backend == backend && p.phase == "fresh" && p.ef.is_some())
        .collect();
    mine.sort_by_key(|p| p.ef);
    let i = mine.iter().position(|p| p.recall_at_10 >= target)?;
    let (a, b) = (mine.get(i.checked_sub(1)?)?, mine.get(i)?);
    let t = (target - a.recall_at_10) / (b.recall_at_10 - a.recall_at_10);
    Some(a.qps_1t + t * (b.qps_1t - a.qps_1t))
}

// Every graph backend's QPS read on its curve at the target, as a multiple
// of native's: the table's first-ef rule can put two curves that cross the
// target a hair apart a whole ef step apart.
fn on_curve(points: &[Point], names: &[&str], target: f64) -> String {
    let read: Vec<(&str, f64)> = names
        .iter()
        .filter_map(|n| qps_on_curve(points, n, target).map(|q| (*n, q)))
        .collect();
    if read.is_empty() {
        return String::new();
    }
    let native = read.iter().find(|(n, _)| *n == "native").map(|r| r.1);
    let cells: Vec<String> = read
        .iter()
        .map(|(n, q)| match native {
            Some(base) if *n != "native" => format!("{n} {q:.0} ({:.2}x native)", q / base),
            _ => format!("{n} {q:.0}"),
        })
        .collect();
    format!(
        "
QPS at recall@10 = {target} on each curve (linear between the two sweep points around it): {}
",
        cells.join(", ")
    )
}

fn mb(bytes: Option<usize>) -> String {
    bytes.map_or("-".into(), |b| format!("{:.1}", b as f64 / 1e6))
}

fn ef_label(ef: Option<usize>) -> String {
    ef.map_or("exact".into(), |e| e.to_string())
}

/// The seed literature's table at the target recall, then ratios and churn rows.
pub fn table(points: &[Point], target: f64, threads: usize) -> String {
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
        out +=
            &format!(
            "| {}{}{} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {:.0} | {:.0} | {:.3} | {} | {:.1} |\n",
            p.backend,
            if p.recall_at_10 < target { " (below target)" } else { "" },
            crate::bench::scan_note(p.indexing),
            ef_label(p.ef),
            p.build_s_1t,
            p.build_s_nt,
            p.p50_us,
            p.p99_us,
            p.qps_1t,
            p.qps_batch,
            p.recall_at_10,
            mb(p.memory_bytes),
            p.rss_delta_bytes as f64 / 1e6
        );
    }
    out += &ratios(&chosen);
    out += &on_curve(points, &names, target);
    let churned: Vec<&Point> = points.iter().filter(|p| p.phase == "after_churn").collect();
    if !churned.is_empty() {
        out += "\nAfter deleting a random share and adding as many new points (same ef), \
                beside a fresh build of the points that remain:\n\n\
                | Backend | ef | Recall@10 fresh | after churn | rebuilt | QPS fresh | after churn | rebuilt | Memory fresh (MB) | after churn (MB) |\n\
                |---|---|---|---|---|---|---|---|---|---|\n";
        let find = |phase: &str, c: &Point| {
            points
                .iter()
                .find(|p| p.phase == phase && p.backend == c.backend && p.ef == c.ef)
                .cloned()
        };
        for c in churned {
            let Some(f) = find("fresh", c) else { continue };
            let r = find("rebuilt", c);
            out += &format!(
                "| {} | {} | {:.3} | {:.3} | {} | {:.0} | {:.0} | {} | {} | {} |\n",
                c.backend,
                ef_label(c.ef),
                f.recall_at_10,
                c.recall_at_10,
                r.as_ref()
                    .map_or("-".into(), |r| format!("{:.3}", r.recall_at_10)),
                f.qps_1t,
                c.qps_1t,
                r.as_ref()
                    .map_or("-".into(), |r| format!("{:.0}", r.qps_1t)),
                mb(f.memory_bytes),
                mb(c.memory_bytes)
            );
        }
    }
    out
}

// native against each other engine, at the target recall.
fn ratios(chosen: &[&Point]) -> String {
    let Some(native) = chosen.iter().find(|p| p.backend == "native") else {
        return String::new();
    };
    let mut out = String::from("\n");
    for other in chosen
        .iter()
        .filter(|p| p.backend != "native" && p.ef.is_some())
    {
        out += &format!(
            "native / {}: QPS {:.2}x, build 1t {:.2}x, build nt {:.2}x, batch QPS {:.2}x{}\n",
            other.backend,
            native.qps_1t / other.qps_1t,
            native.build_s_1t / other.build_s_1t,
            native.build_s_nt / other.build_s_nt,
            native.qps_batch / other.qps_batch,
            match (native.memory_bytes, other.memory_bytes) {
                (Some(a), Some(b)) => format!(", memory {:.2}x", a as f64 / b as f64),
                _ => String::new(),
            }
        );
    }
    for p in chosen.iter().filter(|p| p.ef.is_some()) {
        out += &format!(
            "{}: {:.2}x faster build on all threads than on one; batch search {:.2}x the single-query loop\n",
            p.backend,
            p.build_s_1t / p.build_s_nt,
            p.qps_batch / p.qps_1t
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
        }
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
}

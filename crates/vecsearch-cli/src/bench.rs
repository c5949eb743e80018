//! The benchmark itself: build every engine on the same data, sweep `ef`,
//! measure, churn, measure again.

use std::time::Instant;

use vecsearch::backend::synthetic::Rng;
use vecsearch::{IndexSpec, Metric};

use crate::dataset::{exact, ground_truth, Data};
use crate::engines::{self, Engine, Kind};
use crate::report::{progress, Point};

/// Recall@k of the benchmark.
pub const K: usize = 10;

/// The knobs of one run.
#[derive(Clone)]
pub struct Config {
    pub metric: Metric,
    pub m: usize,
    pub ef_construction: usize,
    pub efs: Vec<usize>,
    pub target_recall: f64,
    pub threads: usize,
    pub repeat: usize,
    pub churn_fraction: f64,
    pub seed: u64,
}

struct Built {
    kind: Kind,
    engine: Box<dyn Engine>,
    build_s_1t: f64,
    build_s_nt: f64,
    rss_delta: i64,
    /// Stored vectors, and those answered by exact scan, after the build.
    indexing: Option<(usize, usize)>,
}

/// Runs the whole benchmark and returns every measured point.
pub fn run(kinds: &[Kind], data: &Data, cfg: &Config) -> Result<Vec<Point>, String> {
    let gt = ground_truth(&data.base, &data.queries, cfg.metric, K)?;
    let mut built = build_all(kinds, data, cfg)?;
    let mut points = sweep(&built, data, &gt, cfg, "fresh");
    if cfg.churn_fraction > 0.0 && !data.extra.is_empty() {
        points.extend(churn(&mut built, data, cfg, &points)?);
    }
    Ok(points)
}

fn spec(cfg: &Config, dim: usize, threads: usize) -> IndexSpec {
    IndexSpec::new(dim, cfg.metric)
        .with_m(cfg.m)
        .with_ef_construction(cfg.ef_construction)
        .with_threads(threads)
}

// One-thread builds in the given order, then all-thread builds in reverse,
// so neither phase always runs a backend first on a warming machine.
fn build_all(kinds: &[Kind], data: &Data, cfg: &Config) -> Result<Vec<Built>, String> {
    let ids: Vec<u64> = (0..data.base.len() as u64).collect();
    let rows = data.base.to_rows();
    let mut one = Vec::new();
    for kind in kinds {
        let (_, secs, _, _) = build(kind, &ids, &rows, cfg, 1)?;
        one.push(secs);
    }
    let mut out: Vec<Option<Built>> = kinds.iter().map(|_| None).collect();
    for (i, kind) in kinds.iter().enumerate().rev() {
        let (engine, secs, rss_delta, indexing) = build(kind, &ids, &rows, cfg, cfg.threads)?;
        out[i] = Some(Built {
            kind: kind.clone(),
            engine,
            build_s_1t: one[i],
            build_s_nt: secs,
            rss_delta,
            indexing,
        });
    }
    Ok(out.into_iter().flatten().collect())
}

/// A built engine, its build time (the server's indexing included), RSS
/// growth, and what it reported indexed.
type BuildResult = (Box<dyn Engine>, f64, i64, Option<(usize, usize)>);

fn build(
    kind: &Kind,
    ids: &[u64],
    rows: &[Vec<f32>],
    cfg: &Config,
    threads: usize,
) -> Result<BuildResult, String> {
    let dim = rows.first().map_or(1, Vec::len);
    // The size is known, so the spec reserves it, as a user would (and as
    // hnswlib's `max_elements` does): memory is then the index, not slack.
    let spec = spec(cfg, dim, threads).with_capacity(rows.len());
    let engine = engines::create(kind, &spec, rows.len())?;
    let label = format!(
        "build {} ({threads} thread{})",
        kind.name(),
        if threads == 1 { "" } else { "s" }
    );
    let pb = progress(rows.len() as u64, &label);
    let rss0 = rss_bytes();
    let huge0 = huge_page_bytes();
    let start = Instant::now();
    let chunk = (rows.len() / 20).max(1000);
    for (i, c) in rows.chunks(chunk).enumerate() {
        engine.add(&ids[i * chunk..i * chunk + c.len()], c)?;
        pb.inc(c.len() as u64);
    }
    // A server has only taken the vectors in when its upserts return; the
    // build ends when its searches go through the index.
    let indexing = engine.finish_indexing()?;
    let secs = start.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let rss = rss_bytes() as i64 - rss0 as i64;
    // How much of what the build kept is backed by huge pages: a run whose
    // searches read slower than the others' with the same work done may
    // have got fewer (the kernel gives them where it finds free 2-MiB runs).
    let huge = match (huge0, huge_page_bytes()) {
        (Some(a), Some(b)) => format!(
            " (resident {:+.1} MB, of it in huge pages {:+.1} MB)",
            rss as f64 / 1e6,
            (b as f64 - a as f64) / 1e6
        ),
        _ => String::new(),
    };
    eprintln!("{label}: {secs:.2} s{}{huge}", scan_note(indexing));
    Ok((engine, secs, rss, indexing))
}

// Alternates engines within every repeat and keeps each (engine, ef)'s
// fastest run: the least disturbed one on a shared machine.
fn sweep(built: &[Built], data: &Data, gt: &[Vec<u64>], cfg: &Config, phase: &str) -> Vec<Point> {
    let mut best: Vec<Point> = Vec::new();
    for rep in 0..cfg.repeat {
        for &ef in &cfg.efs {
            for j in 0..built.len() {
                let b = &built[(j + rep) % built.len()];
                if !b.engine.uses_ef() && ef != cfg.efs[0] {
                    continue;
                }
                match measure(b, data, gt, ef, phase) {
                    Ok(mut p) => {
                        // Counted once, outside the timed passes.
                        if rep == 0 {
                            p.evals_per_query = mean_evals(b, data, ef);
                        }
                        keep_best(&mut best, p)
                    }
                    Err(e) => eprintln!("{} ef {ef}: {e}", b.engine.name()),
                }
            }
        }
    }
    best
}

// Keeps the fastest run of each (engine, ef, phase), with every run's QPS
// beside it, so the report shows how much the repeats varied.
fn keep_best(best: &mut Vec<Point>, p: Point) {
    match best
        .iter_mut()
        .find(|q| q.backend == p.backend && q.ef == p.ef && q.phase == p.phase)
    {
        Some(q) => {
            let mut qps_1t_runs = std::mem::take(&mut q.qps_1t_runs);
            let mut qps_batch_runs = std::mem::take(&mut q.qps_batch_runs);
            let evals = q.evals_per_query.or(p.evals_per_query);
            qps_1t_runs.extend(&p.qps_1t_runs);
            qps_batch_runs.extend(&p.qps_batch_runs);
            if p.qps_1t > q.qps_1t {
                *q = p;
            }
            q.qps_1t_runs = qps_1t_runs;
            q.qps_batch_runs = qps_batch_runs;
            q.evals_per_query = evals;
        }
        None => best.push(p),
    }
}

fn measure(
    b: &Built,
    data: &Data,
    gt: &[Vec<u64>],
    ef: usize,
    phase: &str,
) -> Result<Point, String> {
    let e = &b.engine;
    let mut lat = Vec::with_capacity(data.queries.len());
    let mut hits = 0usize;
    let mut want = 0usize;
    let start = Instant::now();
    for (q, truth) in data.queries.iter().zip(gt) {
        let t = Instant::now();
        let got = e.search(q, K, ef)?;
        lat.push(t.elapsed().as_secs_f64());
        hits += truth.iter().filter(|id| got.contains(id)).count();
        want += truth.len();
    }
    let total = start.elapsed().as_secs_f64();
    let t = Instant::now();
    e.search_batch(&data.queries, K, ef)?;
    let batch = t.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
            * 1e6
    };
    let nq = data.queries.len() as f64;
    Ok(Point {
        backend: e.name().to_string(),
        phase: phase.to_string(),
        ef: if e.uses_ef() { Some(ef) } else { None },
        build_s_1t: b.build_s_1t,
        build_s_nt: b.build_s_nt,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        qps_1t: nq / total,
        qps_batch: nq / batch,
        recall_at_10: hits as f64 / want.max(1) as f64,
        memory_bytes: e.memory_bytes(),
        rss_delta_bytes: b.rss_delta,
        indexing: b.indexing,
        qps_1t_runs: vec![nq / total],
        qps_batch_runs: vec![nq / batch],
        evals_per_query: None,
    })
}

/// Mean distance evaluations per query at `ef`, where the engine counts them.
fn mean_evals(b: &Built, data: &Data, ef: usize) -> Option<f64> {
    let mut total = 0usize;
    for q in &data.queries {
        total += b.engine.evals(q, K, ef)?;
    }
    Some(total as f64 / data.queries.len().max(1) as f64)
}

/// What a row's label adds when the engine did not search all through its index.
pub fn scan_note(indexing: Option<(usize, usize)>) -> String {
    match indexing {
        None => " (index state unknown)".into(),
        Some((_, 0)) => String::new(),
        Some((stored, unindexed)) => format!(" (exact scan: {unindexed} of {stored})"),
    }
}

// Deletes a random `churn_fraction` of the base from every engine that can
// delete, adds as many new points, and measures again at the ef where the
// engine first reached the target on the fresh index; then builds the same
// engine afresh on the points that remain and measures it at that ef too
// (`rebuilt`), which is what the churned index should match.
fn churn(
    built: &mut Vec<Built>,
    data: &Data,
    cfg: &Config,
    fresh: &[Point],
) -> Result<Vec<Point>, String> {
    let n = data.base.len();
    let mut order: Vec<u64> = (0..n as u64).collect();
    Rng::new(cfg.seed ^ 0xC0FFEE).shuffle(&mut order);
    let m = churn_count(data, cfg);
    let gone = &order[..m];
    let new_ids: Vec<u64> = (n as u64..(n + m) as u64).collect();
    let new_rows: Vec<Vec<f32>> = data.extra.to_rows().into_iter().take(m).collect();
    let gone_set: std::collections::HashSet<u64> = gone.iter().copied().collect();
    let mut live_rows = Vec::with_capacity(n);
    let mut live_ids = Vec::with_capacity(n);
    for i in 0..n {
        if !gone_set.contains(&(i as u64)) {
            live_ids.push(i as u64);
            live_rows.extend_from_slice(data.base.row(i));
        }
    }
    for (id, r) in new_ids.iter().zip(&new_rows) {
        live_ids.push(*id);
        live_rows.extend_from_slice(r);
    }
    let live = vecsearch::backend::synthetic::Vectors {
        dim: data.base.dim,
        data: live_rows,
    };
    let gt = exact(&live, &live_ids, &data.queries, cfg.metric, K)?;
    let mut points = Vec::new();
    built.retain(|b| b.engine.uses_ef() || b.engine.name() == "flat");
    for b in built.iter() {
        let name = b.engine.name().to_string();
        match b.engine.delete(gone) {
            None => {
                eprintln!("churn: {name} cannot delete; no churn row");
                continue;
            }
            Some(r) => r?,
        }
        b.engine.add(&new_ids, &new_rows)?;
        let indexing = b.engine.finish_indexing()?;
        let ef = crate::report::at_target(fresh, &name, cfg.target_recall)
            .and_then(|p| p.ef)
            .unwrap_or(cfg.efs[0]);
        let cfg_one = Config {
            efs: vec![ef],
            ..cfg.clone()
        };
        points.extend(
            sweep(std::slice::from_ref(b), data, &gt, &cfg_one, "after_churn")
                .into_iter()
                .map(|p| Point { indexing, ..p }),
        );
        if b.engine.uses_ef() {
            let rows = live.to_rows();
            let (engine, secs, rss_delta, indexing) =
                build(&b.kind, &live_ids, &rows, cfg, cfg.threads)?;
            let rebuilt = Built {
                kind: b.kind.clone(),
                engine,
                build_s_1t: b.build_s_1t,
                build_s_nt: secs,
                rss_delta,
                indexing,
            };
            let one = std::slice::from_ref(&rebuilt);
            points.extend(sweep(one, data, &gt, &cfg_one, "rebuilt"));
        }
    }
    Ok(points)
}

/// How many points the churn phase deletes (and adds): the churn share of
/// the base, at most the extra points the data set has.
pub fn churn_count(data: &Data, cfg: &Config) -> usize {
    ((data.base.len() as f64 * cfg.churn_fraction) as usize).min(data.extra.len())
}

/// The bytes of a `key:  N kB` line of the /proc file `path` (`None`
/// where there is no such file or line).
fn proc_bytes(path: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// The process's anonymous memory in transparent huge pages.
fn huge_page_bytes() -> Option<u64> {
    proc_bytes("/proc/self/smaps_rollup", "AnonHugePages")
}

/// The process's resident set size, from /proc (0 where there is none).
pub fn rss_bytes() -> u64 {
    proc_bytes("/proc/self/status", "VmRSS").unwrap_or(0)
}

//! Measures the native engine on seeded clustered data: build time (at the
//! given thread count), single-thread search QPS and recall@10 against the
//! exact flat index at several ef, save/open time and memory.
//!
//! `cargo run -p vecsearch-native --release --example native_bench -- [n] [dim] [threads] [M] [efC] [metric]`

use std::time::Instant;

use vecsearch_core::synthetic::{clustered, recall};
use vecsearch_core::{Blocking, FlatIndex, IndexSpec, Metric, SearchParams, VectorIndex};
use vecsearch_native::NativeIndex;

fn arg<T: std::str::FromStr>(i: usize, default: T) -> T {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Nanoseconds this thread has run on a CPU (Linux schedstat): unlike the
/// wall clock, it does not count time the shared machine gave to others.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0)
}

/// CPU seconds used by the whole process (user + system, clock ticks of 10 ms).
fn process_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the name.
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Writes the data set for an outside comparison (a C++ hnswlib loop):
/// u32 n, nq, dim; points and queries as f32; the true top-10 ids as u32.
fn dump(
    path: &std::path::Path,
    dim: usize,
    points: &[Vec<f32>],
    queries: &[Vec<f32>],
    truth: &[Vec<vecsearch_core::Neighbor>],
) {
    let mut b = Vec::new();
    for x in [points.len(), queries.len(), dim] {
        b.extend_from_slice(&(x as u32).to_le_bytes());
    }
    for v in points.iter().chain(queries) {
        v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
    }
    for t in truth {
        t.iter()
            .for_each(|n| b.extend_from_slice(&(n.id as u32).to_le_bytes()));
    }
    if let Err(e) = std::fs::write(path, b) {
        eprintln!("could not write {}: {e}", path.display());
    }
}

fn main() -> vecsearch_core::Result<()> {
    let n: usize = arg(1, 100_000);
    let dim: usize = arg(2, 50);
    let threads: usize = arg(3, 1);
    let m: usize = arg(4, 16);
    let efc: usize = arg(5, 200);
    let metric: Metric = arg(6, Metric::L2);
    let nq = 1000;
    let churn = n * 3 / 10;
    // The first n + nq rows do not depend on `churn` (rows are drawn in order).
    let data = clustered(n + nq + churn, dim, 200, 42, metric);
    let rows = data.to_rows();
    let (points, rest) = rows.split_at(n);
    let (queries, extra) = rest.split_at(nq);
    let ids: Vec<u64> = (0..n as u64).collect();
    println!("data: {n} x {dim} clustered (200 clusters), {nq} held-out queries, metric {metric}");

    let spec = IndexSpec::new(dim, metric)
        .with_m(m)
        .with_ef_construction(efc)
        .with_threads(threads);
    let idx = Blocking::new(Box::new(NativeIndex::new(spec.clone())?));
    let (t, cpu) = (Instant::now(), process_cpu_s());
    idx.add_batch(&ids, points)?;
    let build = t.elapsed().as_secs_f64();
    let cpu = process_cpu_s() - cpu;
    println!("build: {build:.2} s wall, {cpu:.2} s CPU, with {threads} thread(s), M {m}, ef_construction {efc}");

    let flat = Blocking::new(Box::new(FlatIndex::new(spec.clone().with_threads(0))?));
    flat.add_batch(&ids, points)?;
    let truth = flat.search_batch(queries, 10, &SearchParams::default())?;
    if let Some(out) = std::env::var_os("NATIVE_BENCH_DUMP") {
        dump(std::path::Path::new(&out), dim, points, queries, &truth);
    }

    for ef in [10, 16, 32, 48, 64, 96, 128, 200] {
        let params = SearchParams::default().with_ef(ef);
        // Best of three passes: the machine is shared, the best pass is the
        // one least disturbed.
        let (mut secs, mut cpu) = (f64::INFINITY, f64::INFINITY);
        let mut got = Vec::with_capacity(nq);
        for _ in 0..3 {
            got.clear();
            let (t, c) = (Instant::now(), thread_cpu_ns());
            for q in queries {
                got.push(idx.search(q, 10, &params)?);
            }
            secs = secs.min(t.elapsed().as_secs_f64());
            cpu = cpu.min((thread_cpu_ns() - c) as f64 / 1e9);
        }
        let r: f64 = got
            .iter()
            .zip(&truth)
            .map(|(g, t)| recall(g, t))
            .sum::<f64>()
            / nq as f64;
        println!(
            "ef {ef:>4}: recall@10 {r:.4}  QPS {:>8.0} wall, {:>8.0} CPU (1 thread)  {:.1} us/query CPU",
            nq as f64 / secs,
            nq as f64 / cpu,
            cpu * 1e6 / nq as f64
        );
    }

    let mem = idx.inner().memory_bytes().unwrap_or(0);
    println!(
        "memory_bytes: {:.1} MB; peak RSS of this process: {:.1} MB",
        mem as f64 / 1e6,
        peak_rss_mb()
    );

    let path = std::env::temp_dir().join(format!("native-bench-{}.vsn", std::process::id()));
    let t = Instant::now();
    idx.save(&path)?;
    let save = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let opened = vecsearch_core::exec::block_on(NativeIndex::open(&path, spec.clone()))?;
    let open = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let same = queries.iter().take(100).all(|q| {
        let p = SearchParams::default();
        let a = idx.search(q, 10, &p).ok();
        let b = vecsearch_core::exec::block_on(opened.search(q, 10, &p)).ok();
        a == b
    });
    let _ = std::fs::remove_file(&path);

    // Delete 30% at random, insert as many new points, compare recall at the
    // same ef with the fresh build and the memory with before.
    let mut order: Vec<u64> = ids.clone();
    vecsearch_core::synthetic::Rng::new(3).shuffle(&mut order);
    let t = Instant::now();
    for &id in &order[..churn] {
        idx.delete(id)?;
        flat.delete(id)?;
    }
    let new_ids: Vec<u64> = (n as u64..(n + churn) as u64).collect();
    idx.add_batch(&new_ids, extra)?;
    flat.add_batch(&new_ids, extra)?;
    let churn_secs = t.elapsed().as_secs_f64();
    let truth = flat.search_batch(queries, 10, &SearchParams::default())?;
    // A fresh build of the same live set, for comparison.
    let fresh = Blocking::new(Box::new(NativeIndex::new(spec.clone())?));
    let kept: Vec<u64> = order[churn..].to_vec();
    let kept_rows: Vec<Vec<f32>> = kept.iter().map(|&id| points[id as usize].clone()).collect();
    fresh.add_batch(&kept, &kept_rows)?;
    fresh.add_batch(&new_ids, extra)?;
    for ef in [16, 32, 64] {
        let params = SearchParams::default().with_ef(ef);
        let (mut r, mut rf) = (0.0, 0.0);
        for (q, t) in queries.iter().zip(&truth) {
            r += recall(&idx.search(q, 10, &params)?, t);
            rf += recall(&fresh.search(q, 10, &params)?, t);
        }
        println!(
            "after deleting {churn} and adding {churn} ({churn_secs:.1} s): ef {ef:>3} recall@10 {:.4}, fresh build of the same set {:.4}",
            r / nq as f64,
            rf / nq as f64
        );
    }
    let mem_after = idx.inner().memory_bytes().unwrap_or(0);
    println!(
        "memory_bytes after churn: {:.1} MB (before {:.1} MB)",
        mem_after as f64 / 1e6,
        mem as f64 / 1e6
    );
    println!(
        "save {save:.3} s, open {open:.3} s, file {:.1} MB, answers after open identical: {same}",
        size as f64 / 1e6
    );
    Ok(())
}

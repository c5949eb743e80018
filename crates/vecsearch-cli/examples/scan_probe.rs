//! What a filtered search answered by an exact scan of a few matches costs
//! per call, flat against native (and hnswlib, when built with it) on the
//! same points and payloads, alternated rounds, the best round of each:
//! the tool for the cells of `vecsearch bench --filters` where they run
//! the same scan and differ by microseconds.
//!
//! `cargo run -p vecsearch-cli --release --example scan_probe -- [n [rounds]]`
//!
//! `n` uniform random points of 96 dimensions (200,000 by default;
//! `PROBE_DIM` sets another) with keywords of 100 and 10,000 values and two
//! uniform integers; the filters are a value of each keyword (1%, 0.01%)
//! and an AND of two ranges (0.01%), each searched
//! by 200 queries 20 times a round. `PROBE_ONLY=flat|native|hnswlib`
//! and `PROBE_FILTER=keyword|and` narrow it (for a profiler; flat is
//! always built). `AB_SCAN_ORDER=1` adds native with its scans reading
//! rows in slot order.

use std::time::Instant;

use vecsearch::backend::exec::block_on;
use vecsearch::backend::synthetic::Rng;
use vecsearch::native::tuning::ScanOrder;
use vecsearch::native::NativeIndex;
use vecsearch::{
    Filter, FlatIndex, IndexSpec, Metric, Payload, Result, Schema, SearchParams, VectorIndex,
};

fn main() -> Result<()> {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (n, rounds) = (arg(1, 200_000), arg(2, 5));
    let dim = std::env::var("PROBE_DIM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(96);
    let clustered = std::env::var("PROBE_CLUSTERED").is_ok_and(|v| v == "1");
    let schema = Schema::new()
        .integer("region")
        .keyword("k100")
        .keyword("k10000")
        .integer("u1")
        .integer("u2");
    let spec = IndexSpec::new(dim, Metric::L2).with_schema(schema);
    let mut rng = Rng::new(3);
    let row = |rng: &mut Rng| (0..dim).map(|_| rng.uniform() as f32).collect::<Vec<_>>();
    // 200 clusters (as the filtered bench's synthetic points at 200,000),
    // each point's `region` its cluster's number mod 50: a value covers 2%
    // of the points, 4 whole clusters.
    let clusters = 200;
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| rng.normal() as f32).collect())
        .collect();
    let ids: Vec<u64> = (0..n as u64).collect();
    let mut regions = Vec::with_capacity(n);
    let rows: Vec<Vec<f32>> = (0..n)
        .map(|_| {
            if !clustered {
                return row(&mut rng);
            }
            let c = rng.below(clusters);
            regions.push(c % 50);
            centres[c]
                .iter()
                .map(|x| x + 0.5 * rng.normal() as f32)
                .collect()
        })
        .collect();
    let payloads: Vec<Payload> = (0..n)
        .map(|i| {
            Payload::new()
                .with("region", regions.get(i).copied().unwrap_or(0) as i64)
                .with("k100", format!("c{}", rng.below(100)))
                .with("k10000", format!("e{}", rng.below(10_000)))
                .with("u1", rng.below(1_000_000) as i64)
                .with("u2", rng.below(1_000_000) as i64)
        })
        .collect();
    let queries: Vec<Vec<f32>> = (0..200).map(|_| row(&mut rng)).collect();
    let mut all: Vec<(&str, Box<dyn VectorIndex>)> = vec![
        ("flat", Box::new(FlatIndex::new(spec.clone())?)),
        ("native", Box::new(NativeIndex::new(spec.clone())?)),
    ];
    #[cfg(feature = "hnswlib")]
    all.push((
        "hnswlib",
        Box::new(vecsearch::hnswlib::HnswlibIndex::new(spec)?),
    ));
    let only = std::env::var("PROBE_ONLY").unwrap_or_default();
    all.retain(|(name, _)| name == &"flat" || only.is_empty() || *name == only);
    let t = Instant::now();
    for (_, index) in &all {
        block_on(index.add_batch_with_payloads(&ids, &rows, &payloads))?;
        block_on(index.finish_indexing())?;
    }
    eprintln!("built in {:.1} s", t.elapsed().as_secs_f64());
    let filters = [
        ("region 2%", Filter::eq("region", 7)),
        ("keyword 1%", Filter::eq("k100", "c0")),
        ("keyword 0.01%", Filter::eq("k10000", "e0")),
        (
            "and 0.01%",
            Filter::range("u1")
                .lt(10_000)
                .and(Filter::range("u2").lt(10_000)),
        ),
        (
            "or 0.01%",
            Filter::range("u1").lt(50).or(Filter::range("u2").lt(50)),
        ),
        ("window 0.01%", Filter::between("u1", 500_000, 500_100)),
    ];
    let which = std::env::var("PROBE_FILTER").unwrap_or_default();
    // `AB_SCAN_ORDER=1`: native twice, its scans reading rows in the
    // matches' id order and in slot order (`tuning::set_scan_order`).
    let ab = std::env::var("AB_SCAN_ORDER").is_ok_and(|v| v == "1");
    let mut backends: Vec<(&str, &dyn VectorIndex, ScanOrder)> = all
        .iter()
        .filter(|(name, _)| only.is_empty() || *name == only)
        .map(|(name, index)| (*name, &**index, ScanOrder::Auto))
        .collect();
    if ab {
        if let Some(native) = backends.iter_mut().find(|b| b.0 == "native") {
            native.2 = ScanOrder::Ids;
            let index = native.1;
            backends.push(("native/slot-order", index, ScanOrder::Slots));
        }
    }
    println!("{n} points: microseconds a search, the best of {rounds} rounds");
    for (name, f) in filters.iter().filter(|(name, _)| name.contains(&which)) {
        let params = SearchParams {
            filter: Some(f.clone()),
            ..SearchParams::default()
        };
        let mut best = vec![f64::MAX; backends.len()];
        for _ in 0..rounds {
            for (b, &(_, index, order)) in backends.iter().enumerate() {
                vecsearch::native::tuning::set_scan_order(order);
                let t = Instant::now();
                for _ in 0..20 {
                    for q in &queries {
                        std::hint::black_box(block_on(index.search(q, 10, &params))?);
                    }
                }
                let us = t.elapsed().as_secs_f64() * 1e6 / (20 * queries.len()) as f64;
                best[b] = best[b].min(us);
            }
        }
        let cells: Vec<String> = backends
            .iter()
            .zip(&best)
            .map(|((backend, _, _), us)| format!("{backend} {us:.2}"))
            .collect();
        println!("{name}: {}", cells.join(", "));
    }
    Ok(())
}

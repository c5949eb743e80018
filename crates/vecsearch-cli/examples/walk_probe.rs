//! One filtered cell of `vecsearch bench --filters`, native alone, on an
//! index built once and saved: the tool for changing the filtered walk and
//! measuring each change in seconds instead of a 1M build per try.
//!
//! `cargo run -p vecsearch-cli --release --example walk_probe -- [n [rounds]]`
//!
//! `n` clustered points of 96 dimensions (1,000,000 by default; the bench's
//! generator, `n / 1000` clusters up to 200, seed 42, L2), each with a
//! `region`: its nearest of 10 pivots drawn from the points, as the bench
//! draws them. 200 queries from the same clusters, each filtered to the
//! region of the pivot farthest from it (the bench's anti-correlated cell)
//! or, with `PROBE_FILTER=own`, to its own region (the correlated cell).
//! The index is saved to `PROBE_CACHE` (default
//! `$TMPDIR/walk_probe-<n>.vsx`) and opened from there on later runs.
//! Prints recall@10 against an exact scan of the region, the best round's
//! QPS at the default ef, and the plans the queries took. `AB_SCAN_ORDER=1`
//! alternates rounds of exact scans reading rows in the matches' id order
//! and in slot order.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use vecsearch::backend::distance::exact_distance;
use vecsearch::backend::exec::block_on;
use vecsearch::backend::synthetic::{clustered, exact_knn, recall, Rng};
use vecsearch::native::tuning::ScanOrder;
use vecsearch::native::NativeIndex;
use vecsearch::{Filter, IndexSpec, Metric, Payload, Result, Schema, SearchParams, VectorIndex};

const DIM: usize = 96;
const REGIONS: usize = 10;
const QUERIES: usize = 200;

/// The index of the pivot nearest `v` (with `far`, the farthest), as the
/// bench's payload generator picks regions.
fn nearest(v: &[f32], pivots: &[Vec<f32>], far: bool) -> usize {
    let d: Vec<f64> = pivots
        .iter()
        .map(|p| exact_distance(Metric::L2, v, p))
        .collect();
    let by = |a: &usize, b: &usize| d[*a].total_cmp(&d[*b]);
    let all = 0..pivots.len();
    if far { all.max_by(by) } else { all.min_by(by) }.unwrap_or(0)
}

fn main() -> Result<()> {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (n, rounds) = (arg(1, 1_000_000), arg(2, 3));
    let own = std::env::var("PROBE_FILTER").is_ok_and(|v| v == "own");
    let clusters = (n / 1000).clamp(10, 200);
    let all = clustered(n + QUERIES, DIM, clusters, 42, Metric::L2);
    let rows = all.to_rows();
    let (base, queries) = rows.split_at(n);
    let mut rng = Rng::new(42 ^ 0x9E37);
    let pivots: Vec<Vec<f32>> = (0..REGIONS).map(|_| base[rng.below(n)].clone()).collect();
    let regions: Vec<usize> = base.iter().map(|r| nearest(r, &pivots, false)).collect();
    let schema = Schema::new().integer("region");
    let spec = IndexSpec::new(DIM, Metric::L2).with_schema(schema);
    let cache = std::env::var_os("PROBE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("walk_probe-{n}.vsx")));
    let index = if cache.exists() {
        block_on(NativeIndex::open(&cache, spec))?
    } else {
        let index = NativeIndex::new(spec)?;
        let ids: Vec<u64> = (0..n as u64).collect();
        let payloads: Vec<Payload> = regions
            .iter()
            .map(|&r| Payload::new().with("region", r as i64))
            .collect();
        let t = Instant::now();
        block_on(index.add_batch_with_payloads(&ids, base, &payloads))?;
        block_on(index.finish_indexing())?;
        eprintln!("built in {:.1} s", t.elapsed().as_secs_f64());
        block_on(VectorIndex::save(&index, &cache))?;
        index
    };
    let wanted: Vec<usize> = queries.iter().map(|q| nearest(q, &pivots, !own)).collect();
    let truth: Vec<Vec<vecsearch::Neighbor>> = queries
        .iter()
        .zip(&wanted)
        .map(|(q, &r)| {
            let pts: Vec<(u64, &[f32])> = (0..n)
                .filter(|&i| regions[i] == r)
                .map(|i| (i as u64, base[i].as_slice()))
                .collect();
            exact_knn(Metric::L2, &pts, q, 10)
        })
        .collect();
    let params: Vec<SearchParams> = wanted
        .iter()
        .map(|&r| SearchParams {
            filter: Some(Filter::eq("region", r as i64)),
            ..SearchParams::default()
        })
        .collect();
    let mut plans = BTreeMap::<String, usize>::new();
    let (mut got, mut scored, mut matches) = (0.0, 0usize, 0usize);
    for ((q, p), t) in queries.iter().zip(&params).zip(&truth) {
        let e = block_on(index.explain(q, 10, p))?;
        got += recall(&e.hits, t);
        scored += e.scored.unwrap_or(0);
        matches += e.matches.unwrap_or(0);
        *plans.entry(e.plan.to_string()).or_default() += 1;
    }
    // `AB_SCAN_ORDER=1`: rounds alternate scans in the matches' id order
    // and in slot order (`tuning::set_scan_order`), in this process.
    let ab = std::env::var("AB_SCAN_ORDER").is_ok_and(|v| v == "1");
    let mut best = [f64::MAX; 2];
    for r in 0..rounds * if ab { 2 } else { 1 } {
        let ordered = ab && r % 2 == 1;
        vecsearch::native::tuning::set_scan_order(match (ab, ordered) {
            (false, _) => ScanOrder::Auto,
            (true, false) => ScanOrder::Ids,
            (true, true) => ScanOrder::Slots,
        });
        let t = Instant::now();
        for (q, p) in queries.iter().zip(&params) {
            std::hint::black_box(block_on(index.search(q, 10, p))?);
        }
        let b = &mut best[usize::from(ordered)];
        *b = b.min(t.elapsed().as_secs_f64());
    }
    if ab {
        println!(
            "scans in id order {:.0} QPS, in slot order {:.0} QPS",
            QUERIES as f64 / best[0],
            QUERIES as f64 / best[1]
        );
    }
    let best = best[0];
    println!(
        "{n} points, {} region: recall@10 {:.3}, {:.0} QPS, {:.0} rows scored and {:.0} matches a query; plans {plans:?}",
        if own { "own" } else { "farthest" },
        got / QUERIES as f64,
        QUERIES as f64 / best,
        scored as f64 / QUERIES as f64,
        matches as f64 / QUERIES as f64,
    );
    Ok(())
}

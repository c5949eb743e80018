//! What a batch costs beside single calls: per-vector time of `add` one by
//! one against `add_batch` of 1, 8, 64 and 1024 vectors, interleaved on
//! fresh indexes of the same data, medians of 5 rounds.
//!
//! `cargo run --release -p vecsearch-native --example batch_overhead`

use std::time::Instant;

use vecsearch_core::synthetic::clustered;
use vecsearch_core::{Blocking, IndexSpec, Metric, VectorIndex};
use vecsearch_native::NativeIndex;

fn main() -> vecsearch_core::Result<()> {
    let n = 4096;
    let rows = clustered(n, 32, 16, 7, Metric::L2).to_rows();
    let ids: Vec<u64> = (0..n as u64).collect();
    let sizes = [0usize, 1, 8, 64, 1024]; // 0: single `add` calls
    let mut per_vector: Vec<Vec<f64>> = vec![Vec::new(); sizes.len()];
    for _round in 0..5 {
        for (i, &size) in sizes.iter().enumerate() {
            let idx =
                Blocking::new(Box::new(NativeIndex::new(IndexSpec::new(32, Metric::L2))?)
                    as Box<dyn VectorIndex>);
            let start = Instant::now();
            if size == 0 {
                for (id, v) in ids.iter().zip(&rows) {
                    idx.add(*id, v)?;
                }
            } else {
                for (c_ids, c_rows) in ids.chunks(size).zip(rows.chunks(size)) {
                    idx.add_batch(c_ids, c_rows)?;
                }
            }
            per_vector[i].push(start.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let single = median(&mut per_vector[0].clone());
    for (i, &size) in sizes.iter().enumerate() {
        let m = median(&mut per_vector[i]);
        let what = if size == 0 {
            "add".to_string()
        } else {
            format!("add_batch of {size}")
        };
        println!("{what:>18}: {m:7.1} us per vector ({:.2}x add)", m / single);
    }
    Ok(())
}

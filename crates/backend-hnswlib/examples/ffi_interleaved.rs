//! The FFI-cost comparison of `benches/ffi.rs`, with the two loops
//! interleaved (rust, C++, rust, C++, ...) and medians taken, so load from
//! other processes on a shared machine hits both sides alike.
//!
//! `cargo run -p vecsearch-hnswlib --release --example ffi_interleaved`

use std::time::Instant;

use vecsearch_core::synthetic::clustered;
use vecsearch_core::{exec::block_on, IndexSpec, Metric, VectorIndex};
use vecsearch_hnswlib::HnswlibIndex;

const DIM: usize = 128;
const QUERIES: usize = 1_000;
const ROUNDS: usize = 41;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn compare(name: &str, index: &HnswlibIndex, queries: &[Vec<f32>], k: usize) {
    let packed: Vec<f32> = queries.concat();
    let (mut rust, mut cpp) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let mut a = 0u64;
        for q in queries {
            a = a.wrapping_add(index.engine().search_raw(q, k).unwrap());
        }
        rust.push(t.elapsed().as_secs_f64() * 1e9 / QUERIES as f64);
        let t = Instant::now();
        let b = index.engine().search_loop_in_cpp(&packed, k).unwrap();
        cpp.push(t.elapsed().as_secs_f64() * 1e9 / QUERIES as f64);
        assert_eq!(a, b, "both loops must do the same searches");
    }
    let (r, c) = (median(rust), median(cpp));
    println!(
        "{name}: per query rust loop {r:.0} ns, C++ loop {c:.0} ns, difference {:+.0} ns ({:+.1}%)",
        r - c,
        100.0 * (r - c) / c
    );
}

fn main() {
    let n = 10_000;
    let rows = clustered(n, DIM, 50, 1, Metric::L2).to_rows();
    let queries = clustered(QUERIES, DIM, 50, 2, Metric::L2).to_rows();
    let index =
        HnswlibIndex::new(IndexSpec::new(DIM, Metric::L2).with_ef_construction(100)).unwrap();
    let ids: Vec<u64> = (0..n as u64).collect();
    block_on(index.add_batch(&ids, &rows)).unwrap();
    let tiny = HnswlibIndex::new(IndexSpec::new(DIM, Metric::L2)).unwrap();
    block_on(tiny.add(1, &rows[0])).unwrap();
    println!("shim built with: {}", vecsearch_hnswlib::build_flags());
    compare(
        &format!("dim {DIM}, {n} vectors, k 10"),
        &index,
        &queries,
        10,
    );
    compare(&format!("dim {DIM}, {n} vectors, k 1"), &index, &queries, 1);
    compare(
        &format!("dim {DIM}, one vector, k 1 (crossing alone)"),
        &tiny,
        &queries,
        1,
    );
}

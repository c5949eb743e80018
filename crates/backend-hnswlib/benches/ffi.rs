//! The cost of crossing the FFI (issue 4, "Proof"): the same unfiltered
//! searches on one index, looped in Rust with one FFI call per query
//! (`rust_loop`), against looped inside C++ with one FFI call for all
//! (`cpp_loop`). Both check every query and take the read lock; the
//! difference per query is the per-call cost (the crossing, the lock, and
//! the result vector handed back).
//!
//! `cargo bench -p vecsearch-hnswlib --bench ffi` (a group name after `--`
//! runs one group, e.g. `-- ffi_overhead`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vecsearch_core::synthetic::clustered;
use vecsearch_core::{exec::block_on, IndexSpec, Metric, SearchParams, VectorIndex};
use vecsearch_hnswlib::HnswlibIndex;

const DIM: usize = 128;
const N: usize = 10_000;
const QUERIES: usize = 1_000;
const K: usize = 10;

fn bench(c: &mut Criterion) {
    let spec = IndexSpec::new(DIM, Metric::L2).with_ef_construction(100);
    let index = HnswlibIndex::new(spec).unwrap();
    let rows = clustered(N, DIM, 50, 1, Metric::L2).to_rows();
    let ids: Vec<u64> = (0..N as u64).collect();
    block_on(index.add_batch(&ids, &rows)).unwrap();
    let queries = clustered(QUERIES, DIM, 50, 2, Metric::L2).to_rows();
    let packed: Vec<f32> = queries.concat();
    // Both loops do the same searches.
    let per_call: u64 = queries
        .iter()
        .map(|q| index.engine().search_raw(q, K).unwrap())
        .fold(0, u64::wrapping_add);
    assert_eq!(
        per_call,
        index.engine().search_loop_in_cpp(&packed, K).unwrap()
    );

    for k in [K, 1] {
        let mut g = c.benchmark_group(format!("ffi_dim{DIM}_k{k}"));
        g.throughput(Throughput::Elements(QUERIES as u64));
        g.bench_function("rust_loop", |b| {
            b.iter(|| {
                let mut sum = 0u64;
                for q in &queries {
                    sum = sum.wrapping_add(index.engine().search_raw(black_box(q), k).unwrap());
                }
                sum
            })
        });
        g.bench_function("cpp_loop", |b| {
            b.iter(|| {
                index
                    .engine()
                    .search_loop_in_cpp(black_box(&packed), k)
                    .unwrap()
            })
        });
        g.finish();
    }

    // The crossing alone: on a one-vector index a search is a single
    // distance, so the per-query difference is almost all per-call cost.
    let tiny = HnswlibIndex::new(IndexSpec::new(DIM, Metric::L2)).unwrap();
    block_on(tiny.add(1, &rows[0])).unwrap();
    let mut g = c.benchmark_group(format!("ffi_overhead_dim{DIM}_one_vector"));
    g.throughput(Throughput::Elements(QUERIES as u64));
    g.bench_function("rust_loop", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for q in &queries {
                sum = sum.wrapping_add(tiny.engine().search_raw(black_box(q), 1).unwrap());
            }
            sum
        })
    });
    g.bench_function("cpp_loop", |b| {
        b.iter(|| {
            tiny.engine()
                .search_loop_in_cpp(black_box(&packed), 1)
                .unwrap()
        })
    });
    // The full trait method: validation, widening check, result vector, sort.
    let params = SearchParams::default();
    g.bench_function("rust_loop_trait_search", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for q in &queries {
                n += block_on(tiny.search(black_box(q), 1, &params))
                    .unwrap()
                    .len();
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

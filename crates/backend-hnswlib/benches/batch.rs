//! `add_batch` and `search_batch` on one thread against every core: the
//! parallel loop is in Rust (`exec::parallel_for`), each item one FFI call.
//!
//! `cargo bench -p vecsearch-hnswlib --bench batch`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vecsearch_core::synthetic::clustered;
use vecsearch_core::{exec::block_on, IndexSpec, Metric, SearchParams, VectorIndex};
use vecsearch_hnswlib::HnswlibIndex;

const DIM: usize = 64;
const N: usize = 4_000;
const QUERIES: usize = 2_000;

fn bench(c: &mut Criterion) {
    let rows = clustered(N, DIM, 20, 1, Metric::L2).to_rows();
    let ids: Vec<u64> = (0..N as u64).collect();
    let queries = clustered(QUERIES, DIM, 20, 2, Metric::L2).to_rows();
    let cores = vecsearch_core::exec::resolve_threads(0);
    let mut g = c.benchmark_group("batch");
    g.sample_size(10);
    for threads in [1, cores] {
        let spec = IndexSpec::new(DIM, Metric::L2)
            .with_ef_construction(100)
            .with_threads(threads);
        g.throughput(Throughput::Elements(N as u64));
        g.bench_function(format!("add_batch_{N}_threads{threads}"), |b| {
            b.iter(|| {
                let index = HnswlibIndex::new(spec.clone()).unwrap();
                block_on(index.add_batch(&ids, &rows)).unwrap();
                index
            })
        });
        let index = HnswlibIndex::new(spec.clone()).unwrap();
        block_on(index.add_batch(&ids, &rows)).unwrap();
        let params = SearchParams::default();
        g.throughput(Throughput::Elements(QUERIES as u64));
        g.bench_function(format!("search_batch_{QUERIES}_threads{threads}"), |b| {
            b.iter(|| block_on(index.search_batch(&queries, 10, &params)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

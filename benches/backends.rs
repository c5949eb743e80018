//! Criterion benchmarks comparing the backends on the same data: single
//! search latency, batch search, and add throughput. Run with
//! `cargo bench --features native,hnswlib --bench backends`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vecsearch::backend::exec::block_on;
use vecsearch::backend::synthetic::clustered;
use vecsearch::{IndexSpec, Metric, SearchParams, VectorIndex};

const N: usize = 20_000;
const DIM: usize = 64;
const NQ: usize = 200;

fn backends() -> Vec<&'static str> {
    let mut v = vec!["flat"];
    if cfg!(feature = "native") {
        v.push("native");
    }
    if cfg!(feature = "hnswlib") {
        v.push("hnswlib");
    }
    v
}

fn data() -> (Vec<u64>, Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let all = clustered(N + NQ, DIM, 40, 7, Metric::L2).to_rows();
    let (base, queries) = all.split_at(N);
    ((0..N as u64).collect(), base.to_vec(), queries.to_vec())
}

fn open(name: &str, threads: usize) -> Box<dyn VectorIndex> {
    let spec = IndexSpec::new(DIM, Metric::L2).with_threads(threads);
    match block_on(vecsearch::open(&format!("{name}:"), spec)) {
        Ok(idx) => idx,
        Err(e) => panic!("cannot open {name}: {e}"),
    }
}

fn search(c: &mut Criterion) {
    let (ids, base, queries) = data();
    let mut group = c.benchmark_group("search_k10_ef64");
    group.throughput(Throughput::Elements(1));
    for name in backends() {
        let idx = open(name, 0);
        block_on(idx.add_batch(&ids, &base)).expect("build");
        let params = SearchParams::default().with_ef(64);
        let mut i = 0;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                block_on(idx.search(&queries[i], 10, &params)).expect("search")
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("search_batch_200_k10_ef64");
    group.throughput(Throughput::Elements(NQ as u64));
    for name in backends() {
        let idx = open(name, 0);
        block_on(idx.add_batch(&ids, &base)).expect("build");
        let params = SearchParams::default().with_ef(64);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| block_on(idx.search_batch(&queries, 10, &params)).expect("search"))
        });
    }
    group.finish();
}

fn add(c: &mut Criterion) {
    let (ids, base, _) = data();
    let (ids, base) = (&ids[..2000], &base[..2000]);
    let mut group = c.benchmark_group("add_batch_2000");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ids.len() as u64));
    for name in backends() {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let idx = open(name, 0);
                block_on(idx.add_batch(ids, base)).expect("add");
                idx
            })
        });
    }
    group.finish();
}

criterion_group!(benches, search, add);
criterion_main!(benches);

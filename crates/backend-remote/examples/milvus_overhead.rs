//! What the client adds to each query on top of the server's own time.
//!
//! Fills a fresh Milvus collection, then sends the same searches two ways,
//! one at a time: through `MilvusIndex::search` (validation, body building,
//! the spawned request with retries, reply parsing, distance conversion,
//! sorting), and as the identical pre-built request bodies through a bare
//! `reqwest` loop that only reads the reply bytes. The difference is the
//! client's cost per query.
//!
//! ```text
//! scripts/milvus.sh start
//! cargo run -p vecsearch-remote --release --example milvus_overhead -- milvus://127.0.0.1:19530 2000
//! ```

use std::time::{Duration, Instant};

use vecsearch_core::synthetic::Rng;
use vecsearch_core::{IndexSpec, Metric, SearchParams, VectorIndex};
use vecsearch_remote::{drop_collection, Endpoint, MilvusEngine};

const DIM: usize = 128;
const POINTS: usize = 10_000;
const K: usize = 10;
const EF: usize = 64;

fn vector(rng: &mut Rng) -> Vec<f32> {
    (0..DIM).map(|_| rng.normal() as f32).collect()
}

/// The management API search the client sends for Milvus 2.3 (REST v1's
/// own search drops `ef`).
fn body(collection: &str, q: &[f32]) -> String {
    let v: Vec<String> = q.iter().map(|x| x.to_string()).collect();
    format!(
        "{{\"collection_name\":\"{collection}\",\"search_params\":[\
         {{\"key\":\"anns_field\",\"value\":\"vector\"}},{{\"key\":\"topk\",\"value\":\"{K}\"}},\
         {{\"key\":\"metric_type\",\"value\":\"L2\"}},{{\"key\":\"params\",\"value\":\"{{\\\"ef\\\":{EF}}}\"}},\
         {{\"key\":\"round_decimal\",\"value\":\"-1\"}}],\"vectors\":[[{}]],\"dsl_type\":1,\"nq\":1,\
         \"guarantee_timestamp\":2}}",
        v.join(",")
    )
}

fn per_query(total: Duration, n: usize) -> f64 {
    total.as_secs_f64() * 1e6 / n as f64
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let base = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "milvus://127.0.0.1:19530".into());
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let uri = format!("{base}/vsbench_overhead_{}", std::process::id());
    let ep = Endpoint::parse(&uri)?;
    let idx = MilvusEngine::open(&uri, IndexSpec::new(DIM, Metric::L2)).await?;
    if idx.engine().speaks_v2() {
        return Err("this measurement builds Milvus 2.3 bodies; the server speaks v2".into());
    }
    let mut rng = Rng::new(1);
    let ids: Vec<u64> = (0..POINTS as u64).collect();
    let points: Vec<Vec<f32>> = ids.iter().map(|_| vector(&mut rng)).collect();
    let t = Instant::now();
    idx.add_batch(&ids, &points).await?;
    let added = t.elapsed();
    idx.sync().await?;
    println!(
        "add_batch of {POINTS} x {DIM}: {:.2} s ({:.0} vectors/s), then sync {:.2} s",
        added.as_secs_f64(),
        POINTS as f64 / added.as_secs_f64(),
        (t.elapsed() - added).as_secs_f64()
    );
    let queries: Vec<Vec<f32>> = (0..n).map(|_| vector(&mut rng)).collect();
    let bodies: Vec<String> = queries
        .iter()
        .map(|q| body(idx.engine().collection(), q))
        .collect();
    let raw = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let url = format!("{}/api/v1/search", ep.url_with_port(ep.mgmt_port));
    let params = SearchParams::default().with_ef(EF);

    // Warm both paths (connections, server caches) before timing.
    for (q, b) in queries.iter().zip(&bodies).take(100) {
        idx.search(q, K, &params).await?;
        raw.post(&url).body(b.clone()).send().await?.bytes().await?;
    }
    let mut client_total = Duration::ZERO;
    let mut raw_total = Duration::ZERO;
    // Interleave the two so drifts in the server's speed hit both alike.
    for (q, b) in queries.iter().zip(&bodies) {
        let t = Instant::now();
        let got = idx.search(q, K, &params).await?;
        client_total += t.elapsed();
        if got.len() != K {
            return Err(format!("expected {K} results, got {}", got.len()).into());
        }
        let t = Instant::now();
        let reply = raw
            .post(&url)
            .header("content-type", "application/json")
            .body(b.clone())
            .send()
            .await?
            .bytes()
            .await?;
        raw_total += t.elapsed();
        std::hint::black_box(reply);
    }
    let (c, r) = (per_query(client_total, n), per_query(raw_total, n));
    println!("queries: {n}, dim {DIM}, {POINTS} points, k {K}, ef {EF}, sequential");
    println!("through MilvusIndex::search: {c:.1} us/query");
    println!("bare reqwest, same bodies:   {r:.1} us/query");
    println!(
        "client overhead:             {:.1} us/query ({:.1}%)",
        c - r,
        (c - r) / r * 100.0
    );
    drop(idx);
    drop_collection(&uri).await?;
    Ok(())
}

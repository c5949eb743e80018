//! Shared set-up of the remote suites: a fresh collection per index, dropped
//! when the index is dropped and, for any left over, at the end of the run.

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use vecsearch_core::{
    async_trait, Capabilities, Filter, IndexProgress, IndexSpec, Neighbor, Payload, Result,
    ScanPage, SearchParams, VectorIndex,
};

/// Collections this process created, and drops still running.
#[derive(Default)]
pub struct Collections {
    created: Mutex<Vec<String>>,
    drops: Mutex<Vec<JoinHandle<()>>>,
    counter: AtomicUsize,
}

impl Collections {
    /// A URI naming a new collection under `base` (`milvus://127.0.0.1:19530`).
    pub fn fresh_uri(&self, base: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let uri = format!(
            "{}/vstest_{}_{n}_{nanos}",
            base.trim_end_matches('/'),
            std::process::id()
        );
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(uri.clone());
        uri
    }

    /// Waits for pending drops and drops every collection still there.
    pub async fn drop_all(&self) -> usize {
        let drops: Vec<_> =
            std::mem::take(&mut *self.drops.lock().unwrap_or_else(|e| e.into_inner()));
        for d in drops {
            let _ = d.await;
        }
        let created: Vec<_> =
            std::mem::take(&mut *self.created.lock().unwrap_or_else(|e| e.into_inner()));
        let mut dropped = 0;
        for uri in created {
            if let Ok(true) = vecsearch_remote::drop_collection(&uri).await {
                dropped += 1;
            }
        }
        dropped
    }
}

/// The URI a case opens. Qdrant builds a graph (and quantises) only for
/// segments over its indexing threshold, and searches one only past its
/// full-scan threshold, 10,000 KB of vectors each by default: far more than
/// a case holds. Both at their least, the suite proves Qdrant's graph and
/// rescoring rather than its exact scan.
fn case_uri(mut uri: String) -> String {
    if uri.starts_with("qdrant") {
        uri.push_str("?indexing_threshold_kb=10&full_scan_threshold_kb=10");
    }
    uri
}

/// Opens a fresh collection for `spec`; the collection goes when the index goes.
pub async fn open_fresh(
    cols: Arc<Collections>,
    base: String,
    handle: Handle,
    spec: IndexSpec,
) -> Result<Box<dyn VectorIndex>> {
    let uri = case_uri(cols.fresh_uri(&base));
    let inner = vecsearch_remote::open_uri(&uri, spec).await?;
    Ok(Box::new(Dropping {
        inner,
        uri,
        handle,
        cols,
    }))
}

/// An index that drops its collection when dropped, so the server's memory
/// follows the live indexes rather than the whole run.
struct Dropping {
    inner: Box<dyn VectorIndex>,
    uri: String,
    handle: Handle,
    cols: Arc<Collections>,
}

impl Drop for Dropping {
    fn drop(&mut self) {
        let uri = self.uri.clone();
        let task = self.handle.spawn(async move {
            let _ = vecsearch_remote::drop_collection(&uri).await;
        });
        self.cols
            .drops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }
}

#[async_trait]
impl VectorIndex for Dropping {
    fn backend(&self) -> &str {
        self.inner.backend()
    }
    fn spec(&self) -> &IndexSpec {
        self.inner.spec()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn add(&self, id: u64, vector: &[f32]) -> Result<()> {
        self.inner.add(id, vector).await
    }
    async fn add_batch(&self, ids: &[u64], vectors: &[Vec<f32>]) -> Result<()> {
        self.inner.add_batch(ids, vectors).await
    }
    async fn delete(&self, id: u64) -> Result<bool> {
        self.inner.delete(id).await
    }
    async fn get(&self, id: u64) -> Result<Option<Vec<f32>>> {
        self.inner.get(id).await
    }
    async fn len(&self) -> Result<usize> {
        self.inner.len().await
    }
    async fn search(&self, q: &[f32], k: usize, p: &SearchParams) -> Result<Vec<Neighbor>> {
        self.inner.search(q, k, p).await
    }
    async fn search_batch(
        &self,
        qs: &[Vec<f32>],
        k: usize,
        p: &SearchParams,
    ) -> Result<Vec<Vec<Neighbor>>> {
        self.inner.search_batch(qs, k, p).await
    }
    async fn sync(&self) -> Result<()> {
        self.inner.sync().await
    }
    async fn finish_indexing(&self) -> Result<IndexProgress> {
        self.inner.finish_indexing().await
    }
    async fn save(&self, path: &Path) -> Result<()> {
        self.inner.save(path).await
    }
    fn memory_bytes(&self) -> Option<usize> {
        self.inner.memory_bytes()
    }
    async fn contains(&self, id: u64) -> Result<bool> {
        self.inner.contains(id).await
    }
    async fn add_with_payload(&self, id: u64, v: &[f32], p: &Payload) -> Result<()> {
        self.inner.add_with_payload(id, v, p).await
    }
    async fn add_batch_with_payloads(
        &self,
        ids: &[u64],
        vs: &[Vec<f32>],
        ps: &[Payload],
    ) -> Result<()> {
        self.inner.add_batch_with_payloads(ids, vs, ps).await
    }
    async fn set_payload(&self, id: u64, p: &Payload) -> Result<bool> {
        self.inner.set_payload(id, p).await
    }
    async fn get_payload(&self, id: u64) -> Result<Option<Payload>> {
        self.inner.get_payload(id).await
    }
    async fn count(&self, f: &Filter) -> Result<usize> {
        self.inner.count(f).await
    }
    async fn delete_where(&self, f: &Filter) -> Result<usize> {
        self.inner.delete_where(f).await
    }
    async fn ids(&self) -> Result<Vec<u64>> {
        self.inner.ids().await
    }
    async fn scan(&self, after: Option<u64>, limit: usize) -> Result<ScanPage> {
        self.inner.scan(after, limit).await
    }
}

/// The harness scale for remote suites: `VECSEARCH_REMOTE_SCALE`, else 0.25.
fn remote_scale() -> f64 {
    std::env::var("VECSEARCH_REMOTE_SCALE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(0.25)
}

/// Runs the shared suite against `base` (a `milvus://` or `qdrant://` URI
/// without collection), then drops every collection it made.
pub fn run_suite(name: &str, base: String) -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("conformance: {name} cannot start a Tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cols = Arc::new(Collections::default());
    let handle = rt.handle().clone();
    let (c, h2) = (Arc::clone(&cols), handle.clone());
    let (c3, base3) = (Arc::clone(&cols), base.clone());
    let harness = vecsearch_conformance::Harness::new(name, move |spec| {
        open_fresh(Arc::clone(&c), base.clone(), h2.clone(), spec)
    })
    .with_block_on(move |fut| handle.block_on(fut))
    // Every write to a server is a round trip (and on Milvus a sync a poll):
    // the long cases run at the size the suite asks of remote backends
    // (recall cases keep their 20,000 points whatever the scale).
    .with_scale(remote_scale())
    // What `vecsearch::open_blocking(uri, spec)` does, on the case's plain
    // thread with no runtime; the collection is dropped at the end of the run.
    .with_blocking_factory(move |spec| {
        let uri = case_uri(c3.fresh_uri(&base3));
        let idx = vecsearch_core::exec::block_on(vecsearch_remote::open_uri(&uri, spec))?;
        Ok(vecsearch_core::Blocking::new(idx))
    });
    let code = vecsearch_conformance::run_main(harness);
    let dropped = rt.block_on(cols.drop_all());
    println!("conformance: {name} dropped {dropped} left-over test collections");
    code
}

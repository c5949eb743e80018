//! `native`: our own pure-Rust HNSW engine.
//!
//! Laid out for the cache the way hnswlib is (vectors in one buffer, level-0
//! links in one flat array, `u32` slots), with what hnswlib lacks: searches
//! that are safe beside inserts and deletes, deletion whose slots are reused
//! (so churn keeps memory bounded), upsert in place, filtered search, and a
//! file format validated field by field.
//!
//! # How it stays safe beside writers
//! - **Vectors, ids, levels, deleted flags** change only under the store's
//!   write lock, held briefly: placing a batch's vectors (new slots, reused
//!   slots, upserts in place) or a delete. Searches and the linking of
//!   inserts hold the read lock, so they read plain memory that nobody
//!   writes meanwhile: a search sees a vector entirely old or entirely new,
//!   never torn, without copying it.
//! - **Links** change under the read lock, beside searches: each list is an
//!   array of `AtomicU32` written under its node's mutex and read
//!   lock-free as a seqlock, so a reader never sees a torn list.
//! - **The entry point** is one atomic word; inserts that raise the top
//!   level are serialised by one mutex.
//!
//! # Deletion and upsert
//! A deleted node leaves results at once but stays in the graph, still
//! helping navigation; its slot goes on a free list and the next insert of a
//! new id reuses it, after re-selecting the old node's neighbours' links
//! (hnswlib's replace-deleted idea), so churn keeps memory bounded. An
//! upsert writes the new vector in place and repairs the same way.
//!
//! ```
//! use vecsearch_core::{Blocking, IndexSpec, Metric, SearchParams};
//! use vecsearch_native::NativeIndex;
//!
//! let idx = Blocking::new(Box::new(NativeIndex::new(IndexSpec::new(2, Metric::L2))?));
//! idx.add(7, &[1.0, 0.0])?;
//! idx.add(9, &[0.0, 1.0])?;
//! let near = idx.search(&[0.9, 0.1], 1, &SearchParams::default())?;
//! assert_eq!(near[0].id, 7);
//! # Ok::<(), vecsearch_core::Error>(())
//! ```
#![warn(missing_docs)]

mod graph;
mod links;
mod persist;
mod storage;
mod visited;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use vecsearch_core::distance::{distance_fn, prepare};
use vecsearch_core::validate::{check_batch, check_queries, check_vector};
use vecsearch_core::{exec, Capabilities, IndexSpec, Neighbor, Result, SearchParams, VectorIndex};

use crate::graph::Graph;
use crate::storage::Store;

/// Seed of the level generator: the same adds in the same order on one
/// thread build the same graph.
const SEED: u64 = 0x5EED_0F4E_57AB;

/// Batch calls use at most this many threads, whatever the spec asks: a
/// spec asking for a million must not make a call fail to spawn them.
const MAX_THREADS: usize = 256;

/// An HNSW index held in memory, saved to and opened from files.
pub struct NativeIndex {
    spec: IndexSpec,
    inner: Arc<Graph>,
}

impl NativeIndex {
    /// An empty index for `spec` (every metric is served).
    pub fn new(spec: IndexSpec) -> Result<Self> {
        spec.validate()?;
        let store = Store::new(spec.dim, spec.m, spec.capacity, SEED);
        let graph = Graph::new(spec.clone(), distance_fn(spec.metric), store, None);
        Ok(NativeIndex {
            spec,
            inner: Arc::new(graph),
        })
    }

    /// Opens an index saved with [`VectorIndex::save`]. The file's dim and
    /// metric must match `spec`'s; M and ef_construction are the file's (the
    /// graph was built with them), ef_search and threads are `spec`'s.
    pub async fn open(path: &Path, spec: IndexSpec) -> Result<Self> {
        let path = path.to_path_buf();
        let graph = exec::offload(move || persist::load(&path, spec)).await?;
        Ok(NativeIndex {
            spec: graph.spec.clone(),
            inner: Arc::new(graph),
        })
    }

    /// The live ids that a search could never reach from the entry point
    /// (a walk of the bottom level's links). The engine links back every
    /// node it leaves without an in-link, so this is empty in practice; it
    /// is here to prove it ("nothing is orphaned").
    pub fn unreachable_ids(&self) -> Vec<u64> {
        let slots = self.inner.unreachable();
        let st = self.inner.read();
        slots
            .into_iter()
            .filter_map(|s| st.ids.get(s as usize).copied())
            .collect()
    }

    fn ef(&self, params: &SearchParams) -> usize {
        params.ef.unwrap_or(self.spec.ef_search)
    }
}

#[async_trait]
impl VectorIndex for NativeIndex {
    fn backend(&self) -> &str {
        "native"
    }

    fn spec(&self) -> &IndexSpec {
        &self.spec
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::local_full()
    }

    async fn add(&self, id: u64, vector: &[f32]) -> Result<()> {
        check_vector(&self.spec, vector)?;
        let v = prepare(self.spec.metric, vector);
        self.inner.add(&[id], &[v], 1)
    }

    async fn add_batch(&self, ids: &[u64], vectors: &[Vec<f32>]) -> Result<()> {
        check_batch(&self.spec, u64::MAX, ids, vectors)?;
        let keep = graph::last_occurrences(ids);
        let ids: Vec<u64> = keep.iter().map(|&i| ids[i]).collect();
        let vectors: Vec<Vec<f32>> = keep.iter().map(|&i| vectors[i].clone()).collect();
        let inner = Arc::clone(&self.inner);
        exec::offload(move || {
            let threads = inner.spec.effective_threads().min(MAX_THREADS);
            let metric = inner.spec.metric;
            let prepared = exec::parallel_map(threads, &vectors, |v| prepare(metric, v));
            drop(vectors);
            inner.add(&ids, &prepared, threads)
        })
        .await
    }

    async fn delete(&self, id: u64) -> Result<bool> {
        Ok(self.inner.delete(id))
    }

    async fn get(&self, id: u64) -> Result<Option<Vec<f32>>> {
        Ok(self.inner.get(id))
    }

    async fn len(&self) -> Result<usize> {
        Ok(self.inner.read().live())
    }

    async fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Neighbor>> {
        check_vector(&self.spec, query)?;
        let q = prepare(self.spec.metric, query);
        Ok(self
            .inner
            .search(&q, k, self.ef(params), params.filter.as_ref()))
    }

    async fn search_batch(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Neighbor>>> {
        check_queries(&self.spec, queries)?;
        let inner = Arc::clone(&self.inner);
        let (queries, ef, filter) = (queries.to_vec(), self.ef(params), params.filter.clone());
        exec::offload(move || {
            let threads = inner.spec.effective_threads().min(MAX_THREADS);
            let metric = inner.spec.metric;
            Ok(exec::parallel_map(threads, &queries, |q| {
                inner.search(&prepare(metric, q), k, ef, filter.as_ref())
            }))
        })
        .await
    }

    async fn save(&self, path: &Path) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        let path: PathBuf = path.to_path_buf();
        exec::offload(move || persist::save(&inner, &path)).await
    }

    fn memory_bytes(&self) -> Option<usize> {
        Some(self.inner.read().memory_bytes())
    }
}

#[cfg(test)]
mod tests;

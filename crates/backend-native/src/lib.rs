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
//! [`NativeEngine`] implements the core's narrow `Engine` trait; the index
//! users hold, [`NativeIndex`], is the core's front door over it (every
//! check of the contract, once for all backends).
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
mod huge;
mod kernels;
mod lined;
mod links;
mod order;
mod originals;
/// The atomics and waits `links` uses (swapped for loom's in its model test).
mod sync {
    pub(crate) use std::hint::spin_loop;
    pub(crate) use std::sync::atomic::{fence, AtomicU32, Ordering};
    pub(crate) use std::thread::yield_now;
}
mod persist;
mod rows;
mod slots;
mod storage;
mod visited;

#[doc(hidden)]
pub mod tuning;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use vecsearch_core::{
    exec, Capabilities, Create, Engine, IdFilter, Index, IndexSpec, Neighbor, Open, Result,
    Storage, Trace,
};

use crate::graph::Graph;
use crate::storage::Store;

/// Seed of the level generator: the same adds in the same order on one
/// thread build the same graph.
const SEED: u64 = 0x5EED_0F4E_57AB;

/// Batch calls use at most this many threads, whatever the spec asks: a
/// spec asking for a million must not make a call fail to spawn them.
const MAX_THREADS: usize = 256;

/// The native index: [`NativeEngine`] behind the core's front door.
pub type NativeIndex = Index<NativeEngine>;

/// An HNSW graph held in memory, saved to and opened from files.
pub struct NativeEngine {
    spec: IndexSpec,
    inner: Arc<Graph>,
}

impl Create for NativeEngine {
    /// An empty index for `spec` (every metric is served).
    fn create(spec: IndexSpec) -> Result<Self> {
        let store = Store::new(
            spec.dim,
            spec.m,
            spec.capacity,
            SEED,
            spec.metric,
            spec.storage,
        );
        let graph = Graph::new(spec.clone(), store, None);
        Ok(NativeEngine {
            spec,
            inner: Arc::new(graph),
        })
    }
}

#[async_trait]
impl Open for NativeEngine {
    /// Opens an index saved by [`Engine::save`]. The file's dim and metric
    /// must match `spec`'s; M and ef_construction are the file's (the graph
    /// was built with them), ef_search and threads are `spec`'s.
    async fn open(path: &Path, spec: IndexSpec) -> Result<(Self, Option<Vec<u8>>)> {
        let path = path.to_path_buf();
        let (graph, section) = exec::offload(move || {
            persist::load(&path, spec).map_err(|e| vecsearch_core::persist::in_file(&path, e))
        })
        .await?;
        let engine = NativeEngine {
            spec: graph.spec.clone(),
            inner: Arc::new(graph),
        };
        Ok((engine, section))
    }
}

impl NativeEngine {
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

    /// Bytes of the f32 originals an I8 index keeps in a memory-mapped
    /// temporary file (0 for the other kinds, or where no file could be
    /// mapped and they stayed on the heap). Not part of `memory_bytes`,
    /// which counts the heap: the kernel pages these in when re-ranking
    /// reads them and may drop them under memory pressure.
    pub fn mapped_bytes(&self) -> usize {
        self.inner.read().rows.mapped_bytes()
    }

    /// The instruction sets of the f16 and i8 kernels on this CPU, as
    /// `"avx2+fma+f16c"`, `"neon"` or `"scalar"`, followed by
    /// `", avx512f+bw+vl from dim 128"` where long rows get 16-lane kernels,
    /// then those of the i8 rows' integer kernels (`"; i8 integer: avx2,
    /// avx512vnni from dim 128"`).
    pub fn code_kernels() -> String {
        let float = match kernels::wide() {
            Some(w) => format!(
                "{}, {} from dim {}",
                kernels::chosen().isa,
                w.isa,
                vecsearch_core::distance::WIDE_MIN_DIM
            ),
            None => kernels::chosen().isa.to_string(),
        };
        format!("{float}; i8 integer: {}", kernels::q16_names())
    }

    fn threads(&self) -> usize {
        self.spec.effective_threads().min(MAX_THREADS)
    }
}

#[async_trait]
impl Engine for NativeEngine {
    fn backend(&self) -> &str {
        "native"
    }

    fn spec(&self) -> &IndexSpec {
        &self.spec
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            storages: Storage::ALL.to_vec(),
            ..Capabilities::local_full()
        }
    }

    async fn upsert(&self, ids: Vec<u64>, vectors: Vec<Vec<f32>>) -> Result<()> {
        if ids.len() == 1 {
            // One vector links on the caller's thread: a worker costs more.
            return self.inner.add(&ids, &vectors, 1);
        }
        let (inner, threads) = (Arc::clone(&self.inner), self.threads());
        exec::offload(move || inner.add(&ids, &vectors, threads)).await
    }

    async fn remove(&self, id: u64) -> Result<bool> {
        Ok(self.inner.delete(id))
    }

    async fn fetch(&self, id: u64) -> Result<Option<Vec<f32>>> {
        Ok(self.inner.get(id))
    }

    async fn contains(&self, id: u64) -> Result<bool> {
        Ok(self.inner.read().slot_of(id).is_some())
    }

    async fn count(&self) -> Result<usize> {
        Ok(self.inner.read().live())
    }

    async fn knn(
        &self,
        queries: Vec<Vec<f32>>,
        k: usize,
        ef: usize,
        filter: Option<&IdFilter>,
    ) -> Result<Vec<Vec<Neighbor>>> {
        if let [q] = queries.as_slice() {
            return Ok(vec![self.inner.search(q, k, ef, filter).0]);
        }
        let (inner, threads, filter) = (Arc::clone(&self.inner), self.threads(), filter.cloned());
        exec::offload(move || {
            Ok(exec::parallel_map(threads, &queries, |q| {
                inner.search(q, k, ef, filter.as_ref()).0
            }))
        })
        .await
    }

    async fn knn_traced(
        &self,
        query: Vec<f32>,
        k: usize,
        ef: usize,
        filter: Option<&IdFilter>,
    ) -> Result<(Vec<Neighbor>, Trace)> {
        Ok(self.inner.search(&query, k, ef, filter))
    }

    async fn ids(&self) -> Result<Vec<u64>> {
        let st = self.inner.read();
        Ok(st.live_slots().map(|s| st.ids[s as usize]).collect())
    }

    async fn save(&self, path: &Path, payloads: &[u8]) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        let path: PathBuf = path.to_path_buf();
        let payloads = payloads.to_vec();
        exec::offload(move || persist::save(&inner, &path, &payloads)).await
    }

    fn memory_bytes(&self) -> Option<usize> {
        Some(self.inner.read().memory_bytes())
    }
}

#[cfg(test)]
mod tests;

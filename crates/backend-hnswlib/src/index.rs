//! [`HnswlibIndex`]: the `VectorIndex` contract over hnswlib, and the
//! locking hnswlib's thread-safety rules ask for.
//!
//! hnswlib lets searches run with searches and adds with adds, but not a
//! search beside an add, and nothing beside `resizeIndex` or `markDelete`.
//! One `RwLock` (the "mode" lock) encodes that: searches, `get` and `len`
//! share the read side; a write (one add, a batch whose threads add in
//! parallel, a delete, a resize) holds the write side. The search width is
//! passed as hnswlib's `k` (it searches with `max(ef_, k)`, and `ef_` stays
//! at 1), so no search ever writes the shared `ef_`.

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use cxx::UniquePtr;
use vecsearch_core::distance::prepare;
use vecsearch_core::validate::{check_batch, check_queries, check_vector};
use vecsearch_core::{
    exec, sort_neighbors, Capabilities, Error, IdMap, IndexSpec, Metric, Neighbor, Result,
    SearchParams, VectorIndex,
};

use crate::ffi::{bridge, AllowList};

/// Slots an index starts with when the spec gives no capacity.
const MIN_CAPACITY: usize = 64;
/// At most this many slots are allocated up front whatever the capacity
/// hint says (hnswlib touches per-slot locks and levels at once); growth by
/// doubling takes it from there.
const MAX_INITIAL_CAPACITY: usize = 1 << 20;

/// The slots to allocate for a capacity hint.
pub(crate) fn initial_capacity(hint: usize) -> usize {
    hint.clamp(MIN_CAPACITY, MAX_INITIAL_CAPACITY)
}
/// hnswlib's default level seed, so builds are reproducible.
const SEED: usize = 100;
/// A filter admitting at most this share (1/n) of the live vectors, or at
/// most [`SMALL_FILTER`] ids, is served by an exact scan of its ids: a graph
/// search through a sparse allow-list visits most of the graph anyway.
const FILTER_SCAN_SHARE: usize = 8;
const SMALL_FILTER: usize = 256;
/// Batches smaller than this run on one thread.
const PARALLEL_MIN: usize = 32;

// `label_state` answers.
const ABSENT: u8 = 0;
const LIVE: u8 = 1;
const DELETED: u8 = 2;

/// An hnswlib HNSW index (see the crate docs).
pub struct HnswlibIndex {
    spec: IndexSpec,
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) spec: IndexSpec,
    pub(crate) hnsw: UniquePtr<bridge::Hnsw>,
    mode: RwLock<()>,
}

/// hnswlib's space for a metric: cosine is inner product on normalised vectors.
pub(crate) fn space_code(metric: Metric) -> u32 {
    match metric {
        Metric::L2 => 0,
        Metric::Cosine | Metric::InnerProduct => 1,
        Metric::Jaccard => 2,
    }
}

/// The vector as hnswlib's space wants it: normalised for cosine, else as
/// given (borrowed: no copy on the search path).
fn prepared(metric: Metric, v: &[f32]) -> Cow<'_, [f32]> {
    if metric == Metric::Cosine {
        Cow::Owned(prepare(metric, v))
    } else {
        Cow::Borrowed(v)
    }
}

pub(crate) fn ffi_err(what: &str, e: cxx::Exception) -> Error {
    Error::Internal(format!("hnswlib failed while {what}: {}", e.what()))
}

impl HnswlibIndex {
    /// An empty index for `spec`. Every metric is served.
    pub fn new(spec: IndexSpec) -> Result<Self> {
        spec.validate()?;
        let hnsw = bridge::new_index(
            space_code(spec.metric),
            spec.dim,
            initial_capacity(spec.capacity),
            spec.m,
            spec.ef_construction,
            SEED,
        )
        .map_err(|e| ffi_err("creating the index", e))?;
        Ok(Self::from_hnsw(spec, hnsw))
    }

    pub(crate) fn from_hnsw(spec: IndexSpec, hnsw: UniquePtr<bridge::Hnsw>) -> Self {
        let inner = Inner {
            spec: spec.clone(),
            hnsw,
            mode: RwLock::new(()),
        };
        HnswlibIndex {
            spec,
            inner: Arc::new(inner),
        }
    }

    /// Opens an index saved with [`VectorIndex::save`]. Dim and metric come
    /// from the file and must match `spec`'s; `M` and `ef_construction` are
    /// the file's; the rest (ef_search, threads, capacity) is `spec`'s.
    pub async fn open(path: &Path, spec: IndexSpec) -> Result<Self> {
        let path = path.to_path_buf();
        exec::offload(move || crate::files::open(&path, spec)).await
    }

    /// Loads a file in hnswlib's own `saveIndex` format (as hnswlib's C++
    /// `saveIndex` or Python `Index.save_index` write it) for an index of
    /// `spec.dim` and `spec.metric` (`Cosine` for Python's `cosine` space:
    /// its vectors are stored normalised). The file is validated field by
    /// field first; anything inconsistent is `Corrupt`.
    pub async fn import_hnswlib_file(path: &Path, spec: IndexSpec) -> Result<Self> {
        let path = path.to_path_buf();
        exec::offload(move || crate::files::import(&path, spec)).await
    }

    /// Writes the index in hnswlib's own `saveIndex` format, atomically, for
    /// hnswlib (C++ `loadIndex`, Python `Index.load_index`) to read.
    pub async fn export_hnswlib_file(&self, path: &Path) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        let path = path.to_path_buf();
        exec::offload(move || crate::files::export(&inner, &path)).await
    }

    /// Runs `searchKnn` (unfiltered, width `k`) for each of the queries
    /// packed row after row in `queries` entirely inside C++, one FFI call
    /// for all: the reference the FFI-cost benchmark compares per-query
    /// calls ([`HnswlibIndex::search_raw`]) with. Queries are used as given
    /// (for `Cosine`, pass them normalised). Returns a checksum of the labels.
    pub fn search_loop_in_cpp(&self, queries: &[f32], k: usize) -> Result<u64> {
        for q in queries.chunks(self.spec.dim) {
            check_vector(&self.spec, q)?;
        }
        let _r = self.inner.read();
        self.inner
            .hnsw
            .search_loop(queries, k)
            .map_err(|e| ffi_err("searching", e))
    }

    /// One unfiltered `searchKnn` of width `k` through the FFI, no widening
    /// or sorting: the per-call side of the FFI-cost benchmark. The query is
    /// used as given (for `Cosine`, pass it normalised). Returns a checksum
    /// of the labels found.
    pub fn search_raw(&self, query: &[f32], k: usize) -> Result<u64> {
        check_vector(&self.spec, query)?;
        const STACK: usize = 32;
        let blank = bridge::Hit {
            id: 0,
            distance: 0.0,
        };
        let mut stack = [blank; STACK];
        let mut heap = Vec::new();
        let out: &mut [bridge::Hit] = if k <= STACK {
            &mut stack[..k]
        } else {
            // No more hits than slots can come back: never allocate for more.
            heap.resize(k.min(self.inner.hnsw.element_count()), blank);
            &mut heap
        };
        let _r = self.inner.read();
        let n = self
            .inner
            .hnsw
            .search_into(query, k, out)
            .map_err(|e| ffi_err("searching", e))?;
        Ok(out[..n.min(out.len())]
            .iter()
            .map(|h| h.id)
            .fold(0u64, u64::wrapping_add))
    }
}

impl Inner {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, ()> {
        self.mode.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, ()> {
        self.mode.write().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self, id: u64) -> Result<u8> {
        self.hnsw
            .label_state(id)
            .map_err(|e| ffi_err("looking up an id", e))
    }

    /// Grows capacity (doubling) so `new_labels` labels that are not in the
    /// index fit: they fill deleted slots first, then new ones. Needs the
    /// write side (`resizeIndex` is not thread-safe).
    fn reserve(&self, new_labels: usize) -> Result<()> {
        let h = &self.hnsw;
        let extra = new_labels.saturating_sub(h.deleted_count());
        let need = h.element_count().saturating_add(extra);
        let max = h.max_elements();
        if need > max {
            let target = need.max(max.saturating_mul(2)).max(MIN_CAPACITY);
            h.resize(target)
                .map_err(|e| ffi_err(&format!("growing to {target} slots"), e))?;
        }
        Ok(())
    }

    /// Adds already validated vectors, as `add` one by one in order would.
    fn upsert(&self, ids: &[u64], vectors: &[Vec<f32>]) -> Result<()> {
        // The last of equal ids wins: only it is added.
        let mut last: IdMap<usize> = IdMap::default();
        last.reserve(ids.len());
        for (i, &id) in ids.iter().enumerate() {
            last.insert(id, i);
        }
        let order: Vec<usize> = (0..ids.len())
            .filter(|&i| last.get(&ids[i]) == Some(&i))
            .collect();

        let _w = self.write();
        // A deleted label is revived in place before the parallel part:
        // addPoint refuses to update a deleted label when slot reuse is on,
        // and a reused slot must never be one of this batch's labels.
        let mut fresh = Vec::with_capacity(order.len());
        for &i in &order {
            let state = self.state(ids[i])?;
            if state == DELETED {
                self.hnsw
                    .unmark_deleted(ids[i])
                    .map_err(|e| ffi_err("reviving a deleted id", e))?;
            }
            fresh.push(state == ABSENT);
        }
        self.reserve(fresh.iter().filter(|&&f| f).count())?;

        let threads = if order.len() < PARALLEL_MIN {
            1
        } else {
            self.spec.effective_threads()
        };
        let failure: Mutex<Option<Error>> = Mutex::new(None);
        exec::parallel_for(threads, order.len(), |j| {
            let i = order[j];
            let v = prepared(self.spec.metric, &vectors[i]);
            // A new label takes a deleted slot if there is one; an existing
            // label is updated in place (replace_deleted on an existing
            // label would leave its old slot live beside the new one).
            if let Err(e) = self.hnsw.add_point(&v, ids[i], fresh[j]) {
                let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
                f.get_or_insert_with(|| ffi_err(&format!("adding id {}", ids[i]), e));
            }
        });
        match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn delete(&self, id: u64) -> Result<bool> {
        let _w = self.write();
        if self.state(id)? != LIVE {
            return Ok(false);
        }
        self.hnsw
            .mark_deleted(id)
            .map_err(|e| ffi_err("deleting", e))?;
        Ok(true)
    }

    fn live(&self) -> usize {
        self.hnsw
            .element_count()
            .saturating_sub(self.hnsw.deleted_count())
    }

    /// The search itself; the caller holds the read side.
    fn search(&self, query: &[f32], k: usize, params: &SearchParams) -> Result<Vec<Neighbor>> {
        let live = self.live();
        if k == 0 || live == 0 {
            return Ok(Vec::new());
        }
        let q = prepared(self.spec.metric, query);
        let width = params.ef.unwrap_or(self.spec.ef_search).max(k);
        // "Small is exact": a walk as wide as the index (or the allow-list)
        // would visit everything anyway, and only a scan is sure to be exact.
        let hits = match &params.filter {
            None if width >= live => {
                let everyone = AllowList(vecsearch_core::Filter::default());
                self.hnsw
                    .scan(&q, k, false, &everyone)
                    .map_err(|e| ffi_err("scanning", e))?
            }
            None => self.widening(k.min(live), width, |w| self.hnsw.search(&q, w), None, &q, k)?,
            Some(f)
                if f.len() <= SMALL_FILTER
                    || f.len() <= width
                    || width >= live
                    || f.len().saturating_mul(FILTER_SCAN_SHARE) <= live =>
            {
                let ids: Vec<u64> = f.ids().collect();
                self.hnsw
                    .distances_to(&q, &ids)
                    .map_err(|e| ffi_err("scanning the filter's ids", e))?
            }
            Some(f) => {
                let allow = AllowList(f.clone());
                self.widening(
                    k.min(f.len()),
                    width,
                    |w| self.hnsw.search_filtered(&q, w, &allow),
                    Some(&allow),
                    &q,
                    k,
                )?
            }
        };
        let mut out: Vec<Neighbor> = hits
            .into_iter()
            .map(|h| Neighbor {
                id: h.id,
                distance: h.distance,
            })
            .collect();
        sort_neighbors(&mut out);
        out.truncate(k);
        Ok(out)
    }

    /// Searches with `width`, doubling it while fewer than `target` hits come
    /// back (small ef, many deleted or filtered-out nodes); once the width
    /// covers every slot, an exact scan settles it, so a sparse or
    /// disconnected graph still yields `min(k, admitted)`.
    fn widening(
        &self,
        target: usize,
        mut width: usize,
        search: impl Fn(usize) -> std::result::Result<Vec<bridge::Hit>, cxx::Exception>,
        allow: Option<&AllowList>,
        q: &[f32],
        k: usize,
    ) -> Result<Vec<bridge::Hit>> {
        let slots = self.hnsw.element_count();
        loop {
            let hits = search(width).map_err(|e| ffi_err("searching", e))?;
            if hits.len() >= target {
                return Ok(hits);
            }
            if width >= slots {
                break;
            }
            width = width.saturating_mul(2).min(slots);
        }
        let everyone = AllowList(vecsearch_core::Filter::default());
        let (filtered, allow) = match allow {
            Some(a) => (true, a),
            None => (false, &everyone),
        };
        self.hnsw
            .scan(q, k, filtered, allow)
            .map_err(|e| ffi_err("scanning", e))
    }
}

#[async_trait]
impl VectorIndex for HnswlibIndex {
    fn backend(&self) -> &str {
        "hnswlib"
    }

    fn spec(&self) -> &IndexSpec {
        &self.spec
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::local_full()
    }

    async fn add(&self, id: u64, vector: &[f32]) -> Result<()> {
        check_vector(&self.spec, vector)?;
        self.inner.upsert(
            std::slice::from_ref(&id),
            std::slice::from_ref(&vector.to_vec()),
        )
    }

    async fn add_batch(&self, ids: &[u64], vectors: &[Vec<f32>]) -> Result<()> {
        check_batch(&self.spec, u64::MAX, ids, vectors)?;
        if ids.is_empty() {
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        let (ids, vectors) = (ids.to_vec(), vectors.to_vec());
        exec::offload(move || inner.upsert(&ids, &vectors)).await
    }

    async fn delete(&self, id: u64) -> Result<bool> {
        self.inner.delete(id)
    }

    async fn get(&self, id: u64) -> Result<Option<Vec<f32>>> {
        let _r = self.inner.read();
        if self.inner.state(id)? != LIVE {
            return Ok(None);
        }
        self.inner
            .hnsw
            .get_vector(id)
            .map(Some)
            .map_err(|e| ffi_err("reading a vector", e))
    }

    async fn len(&self) -> Result<usize> {
        let _r = self.inner.read();
        Ok(self.inner.live())
    }

    async fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Neighbor>> {
        check_vector(&self.spec, query)?;
        let _r = self.inner.read();
        self.inner.search(query, k, params)
    }

    async fn search_batch(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Neighbor>>> {
        check_queries(&self.spec, queries)?;
        let inner = Arc::clone(&self.inner);
        let (queries, params) = (queries.to_vec(), params.clone());
        exec::offload(move || {
            let threads = if queries.len() < PARALLEL_MIN {
                1
            } else {
                inner.spec.effective_threads()
            };
            let _r = inner.read();
            exec::parallel_map(threads, &queries, |q| inner.search(q, k, &params))
                .into_iter()
                .collect()
        })
        .await
    }

    async fn save(&self, path: &Path) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        let path = path.to_path_buf();
        exec::offload(move || crate::files::save(&inner, &path)).await
    }

    fn memory_bytes(&self) -> Option<usize> {
        let _r = self.inner.read();
        Some(self.inner.hnsw.memory_bytes())
    }
}

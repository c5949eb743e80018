//! The `VectorIndex` trait every backend implements.

use std::path::Path;

use async_trait::async_trait;

use crate::{Capabilities, Error, Filter, IndexSpec, Neighbor, Payload, Result, SearchParams};

/// An approximate nearest-neighbour index. Every method takes `&self`: an
/// index is shared by threads and tasks without an outer lock.
///
/// The semantics are those of the contract (`crates/conformance/CONTRACT.md` in the repository; the
/// `contract` module of `vecsearch-conformance` on docs.rs),
/// and the conformance suite checks every backend against them.
///
/// Local backends' futures complete without a reactor, so
/// [`crate::exec::block_on`] (or [`crate::Blocking`]) drives them from
/// synchronous code; CPU-heavy calls run on worker threads, so they do not
/// hold an async executor's thread.
#[async_trait]
pub trait VectorIndex: Send + Sync {
    /// The backend's short name (`flat`, `native`, `hnswlib`, `qdrant`, `milvus`).
    fn backend(&self) -> &str;

    /// What the index was built for.
    fn spec(&self) -> &IndexSpec;

    /// What the backend can do.
    fn capabilities(&self) -> Capabilities;

    /// Inserts `vector` under `id`, or replaces the vector an existing `id` has (upsert).
    async fn add(&self, id: u64, vector: &[f32]) -> Result<()>;

    /// Adds every `(ids[i], vectors[i])` as `add` would, in order (the last of
    /// two equal ids wins), on every core the spec allows. Every vector is
    /// checked first: a bad one rejects the whole batch and nothing is written.
    async fn add_batch(&self, ids: &[u64], vectors: &[Vec<f32>]) -> Result<()>;

    /// Removes `id`; returns whether it was present.
    async fn delete(&self, id: u64) -> Result<bool>;

    /// `add` with a payload (checked against the spec's schema first: an
    /// unknown field or a wrong type is `InvalidArgument` and nothing is
    /// written). Upsert replaces vector and payload together; a plain `add`
    /// of an existing id leaves it with no payload.
    async fn add_with_payload(&self, id: u64, vector: &[f32], payload: &Payload) -> Result<()> {
        let _ = (id, vector, payload);
        Err(no_payloads(self.backend()))
    }

    /// `add_batch` with one payload per row (an empty payload for none).
    async fn add_batch_with_payloads(
        &self,
        ids: &[u64],
        vectors: &[Vec<f32>],
        payloads: &[Payload],
    ) -> Result<()> {
        let _ = (ids, vectors, payloads);
        Err(no_payloads(self.backend()))
    }

    /// `add_rows` with one payload per row.
    async fn add_rows_with_payloads(
        &self,
        ids: &[u64],
        rows: &[f32],
        payloads: &[Payload],
    ) -> Result<()> {
        let rows = split_rows(rows, self.spec().dim, Some(ids.len()))?;
        self.add_batch_with_payloads(ids, &rows, payloads).await
    }

    /// Replaces the payload of `id` without touching its vector; whether
    /// `id` was present (nothing is written if not).
    async fn set_payload(&self, id: u64, payload: &Payload) -> Result<bool> {
        let _ = (id, payload);
        Err(no_payloads(self.backend()))
    }

    /// The payload of `id`: `None` if `id` is absent, an empty payload if
    /// it has none.
    async fn get_payload(&self, id: u64) -> Result<Option<Payload>> {
        let _ = id;
        Err(no_payloads(self.backend()))
    }

    /// How many stored ids `filter` admits (exact).
    async fn count(&self, filter: &Filter) -> Result<usize> {
        let _ = filter;
        Err(no_payloads(self.backend()))
    }

    /// Deletes every id `filter` admits; how many were deleted.
    async fn delete_where(&self, filter: &Filter) -> Result<usize> {
        let _ = filter;
        Err(no_payloads(self.backend()))
    }

    /// One page of a scan over everything stored: the records of the ids
    /// after `after` (`None`: from the first), ascending by id, at most
    /// `limit` of them (at least 1). Pass the page's `next` as `after` for
    /// the next page; it is `None` once the scan is done. The cursor is the
    /// caller's: a scan can be resumed at any time, and sees each id that
    /// was live for the whole scan exactly once, with its stored vector.
    async fn scan(&self, after: Option<u64>, limit: usize) -> Result<ScanPage> {
        let _ = (after, limit);
        Err(Error::Unsupported(format!(
            "the {} backend does not scan",
            self.backend()
        )))
    }

    /// Every stored id, ascending.
    async fn ids(&self) -> Result<Vec<u64>> {
        Err(Error::Unsupported(format!(
            "the {} backend does not list its ids",
            self.backend()
        )))
    }

    /// The stored vector of `id` (normalised, for `Cosine`, where the backend
    /// stores it so).
    async fn get(&self, id: u64) -> Result<Option<Vec<f32>>>;

    /// Whether `id` is present, without copying its vector.
    async fn contains(&self, id: u64) -> Result<bool> {
        Ok(self.get(id).await?.is_some())
    }

    /// Removes every id of `ids` (as `delete` one by one); how many were present.
    async fn delete_batch(&self, ids: &[u64]) -> Result<usize> {
        let mut removed = 0;
        for &id in ids {
            removed += usize::from(self.delete(id).await?);
        }
        Ok(removed)
    }

    /// `add_batch` from a row-major matrix (`ids.len()` rows of `dim`
    /// components, as numpy, Arrow or a memory-mapped file hold them), with
    /// no `Vec` per row on the caller's side.
    async fn add_rows(&self, ids: &[u64], rows: &[f32]) -> Result<()> {
        let rows = split_rows(rows, self.spec().dim, Some(ids.len()))?;
        self.add_batch(ids, &rows).await
    }

    /// `search_batch` over the rows of a row-major matrix of queries.
    async fn search_rows(
        &self,
        rows: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let rows = split_rows(rows, self.spec().dim, None)?;
        self.search_batch(&rows, k, params).await
    }

    /// The number of vectors held.
    async fn len(&self) -> Result<usize>;

    /// Whether the index holds no vector.
    async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// The `min(k, len)` nearest neighbours of `query` (among ids the filter
    /// admits, if any), by distance ascending, ties by id.
    async fn search(&self, query: &[f32], k: usize, params: &SearchParams)
        -> Result<Vec<Neighbor>>;

    /// `search` for each query, in order; runs queries in parallel where the
    /// backend can.
    async fn search_batch(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Neighbor>>>;

    /// `search` for one query, with how the index answered it: the plan
    /// (exact scan, filtered walk, two-hop walk, ...), the filter's exact
    /// match count and the rows scored, where the backend knows them. The
    /// hits are the ones `search` returns. The default (indexes outside
    /// this crate's front door) runs `search` and reports
    /// [`Plan::Server`](crate::Plan::Server).
    async fn explain(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<crate::Explain> {
        let hits = self.search(query, k, params).await?;
        Ok(crate::Explain {
            hits,
            plan: crate::Plan::Server,
            matches: None,
            live: self.len().await?,
            scored: None,
        })
    }

    /// Returns once every write that returned before this call is visible to
    /// reads. Immediate for local backends; eventually consistent servers wait here.
    async fn sync(&self) -> Result<()> {
        Ok(())
    }

    /// Has the backend index everything written before the call, and waits
    /// (for a bounded time the backend documents) until its searches go
    /// through that index. Servers build their index in the background and
    /// answer by exact scan meanwhile: call this before measuring them.
    /// Local backends index vectors as they write; here they build only
    /// what their payload indexes defer (the prefix bitmaps of range
    /// fields, else built once the first ranges after a write have read as
    /// many ids as the field holds), so filtered queries after this call
    /// run at full speed from the first.
    ///
    /// The answer says how many stored vectors searches still reach only by
    /// exact scan ([`IndexProgress::unindexed`]); a server may leave some so on
    /// purpose (Qdrant does not index a segment below its indexing threshold).
    async fn finish_indexing(&self) -> Result<IndexProgress> {
        Ok(IndexProgress {
            stored: self.len().await?,
            unindexed: 0,
        })
    }

    /// Writes the index to `path` atomically, for a later open by URI.
    /// `Unsupported` where the backend has no persistence.
    async fn save(&self, path: &Path) -> Result<()> {
        let _ = path;
        Err(Error::Unsupported(format!(
            "the {} backend does not save to files",
            self.backend()
        )))
    }

    /// The file the index was opened from by path or URI, if any.
    fn origin(&self) -> Option<&Path> {
        None
    }

    /// Saves to [`VectorIndex::origin`], the file the index came from;
    /// `InvalidArgument` for an index that came from no file.
    async fn save_in_place(&self) -> Result<()> {
        match self.origin() {
            Some(path) => self.save(path).await,
            None => Err(Error::InvalidArgument(
                "this index was opened from no file: save it with save(path)".into(),
            )),
        }
    }

    /// Bytes the index holds in memory, where the backend knows.
    fn memory_bytes(&self) -> Option<usize> {
        None
    }
}

/// One stored vector, as a scan reads it back.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The id.
    pub id: u64,
    /// The stored vector (normalised, for `Cosine`).
    pub vector: Vec<f32>,
    /// The payload (empty where it has none).
    pub payload: Payload,
}

/// A page of [`VectorIndex::scan`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanPage {
    /// The records, ascending by id.
    pub records: Vec<Record>,
    /// The cursor of the next page (`after`), or `None` at the end.
    pub next: Option<u64>,
}

/// The error of a payload call on a backend (or index) without payloads.
pub(crate) fn no_payloads(backend: &str) -> Error {
    Error::Unsupported(format!("the {backend} backend does not store payloads"))
}

/// What [`VectorIndex::finish_indexing`] found: how much of the index its
/// searches reach through the backend's index structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexProgress {
    /// Vectors stored (as the server counts them).
    pub stored: usize,
    /// Of those, vectors that searches reach only by exact scan: not yet in
    /// the index, or in a part the server chose not to index. Servers count
    /// in whole segments, so this is approximate for them.
    pub unindexed: usize,
}

impl IndexProgress {
    /// `unindexed` of `stored` vectors still outside the index (answered by
    /// exact scan).
    pub fn new(stored: usize, unindexed: usize) -> IndexProgress {
        IndexProgress {
            stored,
            unindexed: unindexed.min(stored),
        }
    }

    /// Whether every stored vector is searched through the index.
    pub fn complete(&self) -> bool {
        self.unindexed == 0
    }
}

/// The rows of a row-major matrix of `dim` columns (and `want` rows, if given).
fn split_rows(data: &[f32], dim: usize, want: Option<usize>) -> Result<Vec<Vec<f32>>> {
    if dim == 0 || !data.len().is_multiple_of(dim) {
        return Err(Error::InvalidArgument(format!(
            "a matrix of {} values is not whole rows of {dim}",
            data.len()
        )));
    }
    let rows = data.len() / dim;
    if let Some(n) = want.filter(|&n| n != rows) {
        return Err(Error::InvalidArgument(format!(
            "{n} ids but {rows} rows of {dim}"
        )));
    }
    Ok(data.chunks_exact(dim).map(<[f32]>::to_vec).collect())
}

/// Forwards every call: `Box<dyn VectorIndex>`, `Arc<T>` and `&T` are
/// indexes too, so generic code takes any of them.
macro_rules! forward_index {
    ($($ty:ty),*) => {$(
        #[async_trait]
        impl<T: VectorIndex + ?Sized> VectorIndex for $ty {
            fn backend(&self) -> &str {
                (**self).backend()
            }
            fn spec(&self) -> &IndexSpec {
                (**self).spec()
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            async fn add(&self, id: u64, vector: &[f32]) -> Result<()> {
                (**self).add(id, vector).await
            }
            async fn add_batch(&self, ids: &[u64], vectors: &[Vec<f32>]) -> Result<()> {
                (**self).add_batch(ids, vectors).await
            }
            async fn delete(&self, id: u64) -> Result<bool> {
                (**self).delete(id).await
            }
            async fn add_with_payload(&self, id: u64, vector: &[f32], payload: &Payload) -> Result<()> {
                (**self).add_with_payload(id, vector, payload).await
            }
            async fn add_batch_with_payloads(
                &self,
                ids: &[u64],
                vectors: &[Vec<f32>],
                payloads: &[Payload],
            ) -> Result<()> {
                (**self).add_batch_with_payloads(ids, vectors, payloads).await
            }
            async fn add_rows_with_payloads(
                &self,
                ids: &[u64],
                rows: &[f32],
                payloads: &[Payload],
            ) -> Result<()> {
                (**self).add_rows_with_payloads(ids, rows, payloads).await
            }
            async fn set_payload(&self, id: u64, payload: &Payload) -> Result<bool> {
                (**self).set_payload(id, payload).await
            }
            async fn get_payload(&self, id: u64) -> Result<Option<Payload>> {
                (**self).get_payload(id).await
            }
            async fn count(&self, filter: &Filter) -> Result<usize> {
                (**self).count(filter).await
            }
            async fn delete_where(&self, filter: &Filter) -> Result<usize> {
                (**self).delete_where(filter).await
            }
            async fn ids(&self) -> Result<Vec<u64>> {
                (**self).ids().await
            }
            async fn scan(&self, after: Option<u64>, limit: usize) -> Result<ScanPage> {
                (**self).scan(after, limit).await
            }
            async fn get(&self, id: u64) -> Result<Option<Vec<f32>>> {
                (**self).get(id).await
            }
            async fn contains(&self, id: u64) -> Result<bool> {
                (**self).contains(id).await
            }
            async fn delete_batch(&self, ids: &[u64]) -> Result<usize> {
                (**self).delete_batch(ids).await
            }
            async fn add_rows(&self, ids: &[u64], rows: &[f32]) -> Result<()> {
                (**self).add_rows(ids, rows).await
            }
            async fn search_rows(
                &self,
                rows: &[f32],
                k: usize,
                params: &SearchParams,
            ) -> Result<Vec<Vec<Neighbor>>> {
                (**self).search_rows(rows, k, params).await
            }
            async fn len(&self) -> Result<usize> {
                (**self).len().await
            }
            async fn is_empty(&self) -> Result<bool> {
                (**self).is_empty().await
            }
            async fn search(
                &self,
                query: &[f32],
                k: usize,
                params: &SearchParams,
            ) -> Result<Vec<Neighbor>> {
                (**self).search(query, k, params).await
            }
            async fn explain(
                &self,
                query: &[f32],
                k: usize,
                params: &SearchParams,
            ) -> Result<crate::Explain> {
                (**self).explain(query, k, params).await
            }
            async fn search_batch(
                &self,
                queries: &[Vec<f32>],
                k: usize,
                params: &SearchParams,
            ) -> Result<Vec<Vec<Neighbor>>> {
                (**self).search_batch(queries, k, params).await
            }
            async fn sync(&self) -> Result<()> {
                (**self).sync().await
            }
            async fn finish_indexing(&self) -> Result<IndexProgress> {
                (**self).finish_indexing().await
            }
            async fn save(&self, path: &Path) -> Result<()> {
                (**self).save(path).await
            }
            fn origin(&self) -> Option<&Path> {
                (**self).origin()
            }
            async fn save_in_place(&self) -> Result<()> {
                (**self).save_in_place().await
            }
            fn memory_bytes(&self) -> Option<usize> {
                (**self).memory_bytes()
            }
        }
    )*};
}

forward_index!(Box<T>, std::sync::Arc<T>, &T);

/// A synchronous face for a [`VectorIndex`]: every call is driven to
/// completion on the calling thread. Local backends' futures need no reactor;
/// the remote backends run their requests on a runtime of their own when the
/// caller has none.
pub struct Blocking<I: ?Sized>(pub Box<I>);

impl<I: VectorIndex + ?Sized> Blocking<I> {
    /// Wraps `index`.
    pub fn new(index: Box<I>) -> Self {
        Blocking(index)
    }

    /// The wrapped index, for calls not mirrored here.
    pub fn inner(&self) -> &I {
        &self.0
    }

    /// See [`VectorIndex::backend`].
    pub fn backend(&self) -> &str {
        self.0.backend()
    }

    /// See [`VectorIndex::spec`].
    pub fn spec(&self) -> &IndexSpec {
        self.0.spec()
    }

    /// See [`VectorIndex::capabilities`].
    pub fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }

    /// See [`VectorIndex::memory_bytes`].
    pub fn memory_bytes(&self) -> Option<usize> {
        self.0.memory_bytes()
    }

    /// See [`VectorIndex::sync`].
    pub fn sync(&self) -> Result<()> {
        crate::exec::block_on(self.0.sync())
    }

    /// See [`VectorIndex::finish_indexing`].
    pub fn finish_indexing(&self) -> Result<IndexProgress> {
        crate::exec::block_on(self.0.finish_indexing())
    }

    /// See [`VectorIndex::add`].
    pub fn add(&self, id: u64, vector: &[f32]) -> Result<()> {
        crate::exec::block_on(self.0.add(id, vector))
    }

    /// See [`VectorIndex::add_batch`].
    pub fn add_batch(&self, ids: &[u64], vectors: &[Vec<f32>]) -> Result<()> {
        crate::exec::block_on(self.0.add_batch(ids, vectors))
    }

    /// See [`VectorIndex::delete`].
    pub fn delete(&self, id: u64) -> Result<bool> {
        crate::exec::block_on(self.0.delete(id))
    }

    /// See [`VectorIndex::add_with_payload`].
    pub fn add_with_payload(&self, id: u64, vector: &[f32], payload: &Payload) -> Result<()> {
        crate::exec::block_on(self.0.add_with_payload(id, vector, payload))
    }

    /// See [`VectorIndex::add_batch_with_payloads`].
    pub fn add_batch_with_payloads(
        &self,
        ids: &[u64],
        vectors: &[Vec<f32>],
        payloads: &[Payload],
    ) -> Result<()> {
        crate::exec::block_on(self.0.add_batch_with_payloads(ids, vectors, payloads))
    }

    /// See [`VectorIndex::add_rows_with_payloads`].
    pub fn add_rows_with_payloads(
        &self,
        ids: &[u64],
        rows: &[f32],
        payloads: &[Payload],
    ) -> Result<()> {
        crate::exec::block_on(self.0.add_rows_with_payloads(ids, rows, payloads))
    }

    /// See [`VectorIndex::set_payload`].
    pub fn set_payload(&self, id: u64, payload: &Payload) -> Result<bool> {
        crate::exec::block_on(self.0.set_payload(id, payload))
    }

    /// See [`VectorIndex::get_payload`].
    pub fn get_payload(&self, id: u64) -> Result<Option<Payload>> {
        crate::exec::block_on(self.0.get_payload(id))
    }

    /// See [`VectorIndex::count`].
    pub fn count(&self, filter: &Filter) -> Result<usize> {
        crate::exec::block_on(self.0.count(filter))
    }

    /// See [`VectorIndex::delete_where`].
    pub fn delete_where(&self, filter: &Filter) -> Result<usize> {
        crate::exec::block_on(self.0.delete_where(filter))
    }

    /// See [`VectorIndex::scan`].
    pub fn scan(&self, after: Option<u64>, limit: usize) -> Result<ScanPage> {
        crate::exec::block_on(self.0.scan(after, limit))
    }

    /// See [`VectorIndex::ids`].
    pub fn ids(&self) -> Result<Vec<u64>> {
        crate::exec::block_on(self.0.ids())
    }

    /// See [`VectorIndex::get`].
    pub fn get(&self, id: u64) -> Result<Option<Vec<f32>>> {
        crate::exec::block_on(self.0.get(id))
    }

    /// See [`VectorIndex::contains`].
    pub fn contains(&self, id: u64) -> Result<bool> {
        crate::exec::block_on(self.0.contains(id))
    }

    /// See [`VectorIndex::delete_batch`].
    pub fn delete_batch(&self, ids: &[u64]) -> Result<usize> {
        crate::exec::block_on(self.0.delete_batch(ids))
    }

    /// See [`VectorIndex::add_rows`].
    pub fn add_rows(&self, ids: &[u64], rows: &[f32]) -> Result<()> {
        crate::exec::block_on(self.0.add_rows(ids, rows))
    }

    /// See [`VectorIndex::search_rows`].
    pub fn search_rows(
        &self,
        rows: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Neighbor>>> {
        crate::exec::block_on(self.0.search_rows(rows, k, params))
    }

    /// See [`VectorIndex::len`].
    pub fn len(&self) -> Result<usize> {
        crate::exec::block_on(self.0.len())
    }

    /// See [`VectorIndex::is_empty`].
    pub fn is_empty(&self) -> Result<bool> {
        crate::exec::block_on(self.0.is_empty())
    }

    /// See [`VectorIndex::search`].
    pub fn search(&self, query: &[f32], k: usize, params: &SearchParams) -> Result<Vec<Neighbor>> {
        crate::exec::block_on(self.0.search(query, k, params))
    }

    /// See [`VectorIndex::search_batch`].
    pub fn search_batch(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Neighbor>>> {
        crate::exec::block_on(self.0.search_batch(queries, k, params))
    }

    /// See [`VectorIndex::explain`].
    pub fn explain(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<crate::Explain> {
        crate::exec::block_on(self.0.explain(query, k, params))
    }

    /// See [`VectorIndex::save`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::exec::block_on(self.0.save(path.as_ref()))
    }

    /// See [`VectorIndex::save_in_place`].
    pub fn save_in_place(&self) -> Result<()> {
        crate::exec::block_on(self.0.save_in_place())
    }

    /// See [`VectorIndex::origin`].
    pub fn origin(&self) -> Option<&Path> {
        self.0.origin()
    }
}

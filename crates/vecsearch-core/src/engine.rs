//! The front door and the narrow trait behind it, the way Go's `database/sql`
//! puts `sql.DB` (argument checks, conversions) in front of `driver.Conn`.
//!
//! A backend implements [`Engine`]: a handful of methods that receive only
//! well-formed work. [`Index`] wraps any engine and implements
//! [`VectorIndex`] once for all of them: it validates every vector, id and
//! argument against the contract, prepares vectors for the metric
//! (normalises them for cosine, in f64), keeps the last of equal ids in a
//! batch, resolves `ef`, answers the trivial cases (`k = 0`, an empty
//! allow-list) without the engine, checks what the engine returns, and
//! sorts and truncates it. A rule fixed here is fixed for every backend.
//!
//! Writing a backend: implement [`Engine`] (and [`Create`] / [`Open`] where
//! it makes sense), then hand out `Index<YourEngine>`; the flat index
//! ([`crate::FlatEngine`]) is the worked example.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::distance::prepare;
use crate::validate::{check_batch, check_id, check_queries, check_vector};
use crate::{
    exec, sort_neighbors, Capabilities, Error, Filter, IdMap, IndexProgress, IndexSpec, Neighbor,
    Result, SearchParams, VectorIndex,
};

/// What a backend implements. Every argument has been checked by [`Index`]:
///
/// - vectors have `spec().dim` finite components within the magnitude
///   limits, are *prepared* (unit length for `Cosine`), and are never empty
///   batches;
/// - ids are within `capabilities().max_id`, and the ids of one `upsert`
///   are distinct (the last of equal ids was kept);
/// - `knn` gets `k >= 1`, `ef >= k`, at least one query, and a filter that
///   admits at least one id, if any.
///
/// `knn` may return its neighbours in any order and more than `k`: `Index`
/// sorts by distance, then id, and truncates. It must not return an id
/// twice, a deleted id, an id the filter does not admit, or a NaN distance
/// (`Index` turns those into [`Error::Internal`]).
#[async_trait]
pub trait Engine: Send + Sync {
    /// The backend's short name (`flat`, `native`, `hnswlib`, `qdrant`, `milvus`).
    fn backend(&self) -> &str;

    /// What the index was built for.
    fn spec(&self) -> &IndexSpec;

    /// What the backend can do.
    fn capabilities(&self) -> Capabilities;

    /// Inserts or replaces every `(ids[i], vectors[i])`.
    async fn upsert(&self, ids: Vec<u64>, vectors: Vec<Vec<f32>>) -> Result<()>;

    /// Removes `id`; whether it was present.
    async fn remove(&self, id: u64) -> Result<bool>;

    /// The stored (prepared) vector of `id`.
    async fn fetch(&self, id: u64) -> Result<Option<Vec<f32>>>;

    /// Whether `id` is present. The default fetches the vector; engines that
    /// can answer without copying it override this.
    async fn contains(&self, id: u64) -> Result<bool> {
        Ok(self.fetch(id).await?.is_some())
    }

    /// The number of vectors held.
    async fn count(&self) -> Result<usize>;

    /// Up to `k` nearest neighbours of each query, searching with width `ef`.
    async fn knn(
        &self,
        queries: Vec<Vec<f32>>,
        k: usize,
        ef: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Vec<Neighbor>>>;

    /// See [`VectorIndex::sync`].
    async fn sync(&self) -> Result<()> {
        Ok(())
    }

    /// See [`VectorIndex::finish_indexing`]; the default (an engine that
    /// indexes as it writes) reports every vector indexed.
    async fn finish_indexing(&self) -> Result<IndexProgress> {
        Ok(IndexProgress::new(self.count().await?, 0))
    }

    /// See [`VectorIndex::save`].
    async fn save(&self, path: &Path) -> Result<()> {
        let _ = path;
        Err(Error::Unsupported(format!(
            "the {} backend does not save to files",
            self.backend()
        )))
    }

    /// See [`VectorIndex::memory_bytes`].
    fn memory_bytes(&self) -> Option<usize> {
        None
    }
}

/// An engine made from a spec alone (the local backends).
pub trait Create: Engine + Sized {
    /// A new, empty engine for a spec [`Index::new`] has validated.
    fn create(spec: IndexSpec) -> Result<Self>;
}

/// An engine opened from a file it saved.
#[async_trait]
pub trait Open: Engine + Sized {
    /// Opens the engine saved at `path`; the file's dim and metric must match `spec`'s.
    async fn open(path: &Path, spec: IndexSpec) -> Result<Self>;
}

/// Batches at least this long are prepared on every allowed core.
const PARALLEL_PREPARE_MIN: usize = 4096;

/// The front door: a [`VectorIndex`] over any [`Engine`], doing the common
/// work once (see the module docs).
pub struct Index<E> {
    engine: E,
    caps: Capabilities,
    /// The file the index was opened from (or is to be created at), for
    /// [`VectorIndex::save_in_place`].
    origin: Option<PathBuf>,
}

impl<E: Engine> Index<E> {
    /// Puts the front door before `engine`.
    pub fn from_engine(engine: E) -> Self {
        let caps = engine.capabilities();
        Index {
            engine,
            caps,
            origin: None,
        }
    }

    /// Remembers `path` as the index's file: [`VectorIndex::save_in_place`]
    /// writes there.
    pub fn with_origin(mut self, path: impl Into<PathBuf>) -> Self {
        self.origin = Some(path.into());
        self
    }

    /// The engine, for backend-specific calls.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// The engine, unwrapped.
    pub fn into_engine(self) -> E {
        self.engine
    }

    fn prepare_all(&self, vectors: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let metric = self.engine.spec().metric;
        if vectors.len() >= PARALLEL_PREPARE_MIN {
            exec::parallel_map(self.engine.spec().effective_threads(), vectors, |v| {
                prepare(metric, v)
            })
        } else {
            vectors.iter().map(|v| prepare(metric, v)).collect()
        }
    }

    /// The search width: the spec's unless the call sets one, at least `k`.
    /// `ef = 0` is refused, as `IndexSpec` refuses `ef_search = 0`.
    fn ef(&self, params: &SearchParams, k: usize) -> Result<usize> {
        match params.ef {
            Some(0) => Err(Error::InvalidArgument(
                "ef must be at least 1 (None means the index's ef_search)".into(),
            )),
            Some(ef) => Ok(ef.max(k)),
            None => Ok(self.engine.spec().ef_search.max(k)),
        }
    }

    async fn knn(
        &self,
        queries: Vec<Vec<f32>>,
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let n = queries.len();
        let ef = self.ef(params, k)?;
        let nothing = k == 0 || n == 0 || params.filter.as_ref().is_some_and(Filter::is_empty);
        if nothing {
            return Ok(vec![Vec::new(); n]);
        }
        let mut out = self
            .engine
            .knn(queries, k, ef, params.filter.as_ref())
            .await?;
        if out.len() != n {
            return Err(Error::Internal(format!(
                "the {} engine answered {} of {n} queries",
                self.engine.backend(),
                out.len()
            )));
        }
        for hits in &mut out {
            self.check_hits(hits, params.filter.as_ref())?;
            sort_neighbors(hits);
            hits.truncate(k);
        }
        Ok(out)
    }

    /// What no engine may return, whatever it is: NaN distances, one id
    /// twice, ids the filter does not admit.
    fn check_hits(&self, hits: &[Neighbor], filter: Option<&Filter>) -> Result<()> {
        let bad = |what: String| {
            Err(Error::Internal(format!(
                "the {} engine returned {what}",
                self.engine.backend()
            )))
        };
        if let Some(h) = hits.iter().find(|h| h.distance.is_nan()) {
            return bad(format!("a NaN distance for id {}", h.id));
        }
        if let Some(f) = filter {
            if let Some(h) = hits.iter().find(|h| !f.admits(h.id)) {
                return bad(format!("id {}, which the filter does not admit", h.id));
            }
        }
        let mut ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return bad(format!("id {} twice", w[0]));
        }
        Ok(())
    }
}

impl<E: std::fmt::Debug> std::fmt::Debug for Index<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("engine", &self.engine)
            .field("origin", &self.origin)
            .finish()
    }
}

impl<E: Create> Index<E> {
    /// A new, empty index for `spec` (checked first).
    pub fn new(spec: IndexSpec) -> Result<Self> {
        spec.validate()?;
        let engine = E::create(spec.clone())?;
        engine.capabilities().check(engine.backend(), &spec)?;
        Ok(Self::from_engine(engine))
    }
}

impl<E: Open> Index<E> {
    /// Opens the index saved at `path` (see the engine's [`Open::open`]).
    pub async fn open(path: impl AsRef<Path>, spec: IndexSpec) -> Result<Self> {
        spec.validate()?;
        let path = path.as_ref();
        let engine = E::open(path, spec).await?;
        engine
            .capabilities()
            .check(engine.backend(), engine.spec())?;
        Ok(Self::from_engine(engine).with_origin(path))
    }
}

#[async_trait]
impl<E: Engine> VectorIndex for Index<E> {
    fn backend(&self) -> &str {
        self.engine.backend()
    }

    fn spec(&self) -> &IndexSpec {
        self.engine.spec()
    }

    fn capabilities(&self) -> Capabilities {
        self.caps.clone()
    }

    async fn add(&self, id: u64, vector: &[f32]) -> Result<()> {
        check_id(self.caps.max_id, id)?;
        check_vector(self.engine.spec(), vector)?;
        let v = prepare(self.engine.spec().metric, vector);
        self.engine.upsert(vec![id], vec![v]).await
    }

    async fn add_batch(&self, ids: &[u64], vectors: &[Vec<f32>]) -> Result<()> {
        check_batch(self.engine.spec(), self.caps.max_id, ids, vectors)?;
        if ids.is_empty() {
            return Ok(());
        }
        let keep = last_occurrences(ids);
        if keep.len() == ids.len() {
            let prepared = self.prepare_all(vectors);
            return self.engine.upsert(ids.to_vec(), prepared).await;
        }
        let ids: Vec<u64> = keep.iter().map(|&i| ids[i]).collect();
        let kept: Vec<Vec<f32>> = keep.iter().map(|&i| vectors[i].clone()).collect();
        let prepared = self.prepare_all(&kept);
        self.engine.upsert(ids, prepared).await
    }

    async fn delete(&self, id: u64) -> Result<bool> {
        // Nothing can be stored beyond the backend's largest id.
        if id > self.caps.max_id {
            return Ok(false);
        }
        self.engine.remove(id).await
    }

    async fn get(&self, id: u64) -> Result<Option<Vec<f32>>> {
        if id > self.caps.max_id {
            return Ok(None);
        }
        self.engine.fetch(id).await
    }

    async fn contains(&self, id: u64) -> Result<bool> {
        if id > self.caps.max_id {
            return Ok(false);
        }
        self.engine.contains(id).await
    }

    async fn len(&self) -> Result<usize> {
        self.engine.count().await
    }

    async fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Neighbor>> {
        check_vector(self.engine.spec(), query)?;
        let q = prepare(self.engine.spec().metric, query);
        let mut out = self.knn(vec![q], k, params).await?;
        Ok(out.pop().unwrap_or_default())
    }

    async fn search_batch(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Neighbor>>> {
        check_queries(self.engine.spec(), queries)?;
        let prepared = self.prepare_all(queries);
        self.knn(prepared, k, params).await
    }

    async fn sync(&self) -> Result<()> {
        self.engine.sync().await
    }

    async fn finish_indexing(&self) -> Result<IndexProgress> {
        self.engine.finish_indexing().await
    }

    async fn save(&self, path: &Path) -> Result<()> {
        self.engine.save(path).await
    }

    fn origin(&self) -> Option<&Path> {
        self.origin.as_deref()
    }

    fn memory_bytes(&self) -> Option<usize> {
        self.engine.memory_bytes()
    }
}

/// The positions of the last occurrence of every id, in order: a batch with
/// repeated ids equals its adds one by one.
pub fn last_occurrences(ids: &[u64]) -> Vec<usize> {
    let mut seen: IdMap<()> = IdMap::default();
    seen.reserve(ids.len());
    let mut keep: Vec<usize> = (0..ids.len())
        .rev()
        .filter(|&i| seen.insert(ids[i], ()).is_none())
        .collect();
    keep.reverse();
    keep
}

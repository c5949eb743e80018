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
use std::sync::{Condvar, Mutex, RwLock};

use async_trait::async_trait;

use crate::distance::prepare;
use crate::index::no_payloads;
use crate::store::{PayloadStore, Resolved};
use crate::validate::{check_batch, check_id, check_queries, check_vector};
use crate::{
    exec, sort_neighbors, Capabilities, Error, Explain, Filter, IdFilter, IdMap, IdSet,
    IndexProgress, IndexSpec, Neighbor, Payload, Plan, Record, Result, ScanPage, SearchParams,
    Trace, VectorIndex,
};

/// What a backend implements. Every argument has been checked by [`Index`]:
///
/// - vectors have `spec().dim` finite components within the magnitude
///   limits, are *prepared* (unit length for `Cosine`), and are never empty
///   batches;
/// - ids are within `capabilities().max_id`, and the ids of one `upsert`
///   are distinct (the last of equal ids was kept);
/// - `knn` gets `k >= 1`, `ef >= k`, at least one query, and a filter that
///   admits at least one id, if any. For an engine that does not hold
///   payloads (the local ones), the filter is resolved: the exact set of
///   admitted live ids ([`IdFilter::admits`], [`IdFilter::len`]); the front
///   door keeps the payloads and evaluates the expression. An engine that
///   holds payloads itself ([`Engine::holds_payloads`], the servers) gets
///   the expression ([`IdFilter::expr`]), validated against the schema, and
///   translates it exactly or answers `Unsupported`.
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
        filter: Option<&IdFilter>,
    ) -> Result<Vec<Vec<Neighbor>>>;

    /// One query's neighbours, as `knn`, with how they were found. The
    /// default runs `knn` and reports the plan as the server's (remote
    /// engines) or a plain walk; engines with a planner override it.
    async fn knn_traced(
        &self,
        query: Vec<f32>,
        k: usize,
        ef: usize,
        filter: Option<&IdFilter>,
    ) -> Result<(Vec<Neighbor>, Trace)> {
        let plan = if self.holds_payloads() {
            Plan::Server
        } else {
            Plan::Walk
        };
        let mut out = self.knn(vec![query], k, ef, filter).await?;
        Ok((out.pop().unwrap_or_default(), Trace::of(plan)))
    }

    /// Every live id, in no particular order. Local engines serve it (the
    /// front door builds its payload store from it when a file is opened).
    async fn ids(&self) -> Result<Vec<u64>> {
        Err(Error::Unsupported(format!(
            "the {} backend does not list its ids",
            self.backend()
        )))
    }

    /// A page of records after `after`, ascending by id, at most `limit`
    /// (engines that hold payloads; the front door scans the others
    /// itself). The page may be shorter while `next` is `Some`.
    async fn scan(&self, after: Option<u64>, limit: usize) -> Result<ScanPage> {
        let _ = (after, limit);
        Err(Error::Unsupported(format!(
            "the {} backend does not scan",
            self.backend()
        )))
    }

    /// Whether the engine keeps payloads itself (a server). If not, the
    /// front door keeps them, with every live id, and the payload calls
    /// below are never made.
    fn holds_payloads(&self) -> bool {
        false
    }

    /// Inserts or replaces every `(ids[i], vectors[i], payloads[i])` (each
    /// payload checked against the schema; an empty one means none).
    async fn upsert_with_payloads(
        &self,
        ids: Vec<u64>,
        vectors: Vec<Vec<f32>>,
        payloads: Vec<Payload>,
    ) -> Result<()> {
        let _ = (ids, vectors, payloads);
        Err(no_payloads(self.backend()))
    }

    /// Replaces the payload of a present `id`; whether it was present.
    async fn set_payload(&self, id: u64, payload: Payload) -> Result<bool> {
        let _ = (id, payload);
        Err(no_payloads(self.backend()))
    }

    /// The payload of `id` (`None` if absent; an empty one if it has none).
    async fn get_payload(&self, id: u64) -> Result<Option<Payload>> {
        let _ = id;
        Err(no_payloads(self.backend()))
    }

    /// How many ids the (validated) filter admits.
    async fn count_where(&self, filter: &Filter) -> Result<usize> {
        let _ = filter;
        Err(no_payloads(self.backend()))
    }

    /// Deletes every id the (validated) filter admits; how many.
    async fn delete_where(&self, filter: &Filter) -> Result<usize> {
        let _ = filter;
        Err(no_payloads(self.backend()))
    }

    /// See [`VectorIndex::sync`].
    async fn sync(&self) -> Result<()> {
        Ok(())
    }

    /// See [`VectorIndex::finish_indexing`]; the default (an engine that
    /// indexes as it writes) reports every vector indexed.
    async fn finish_indexing(&self) -> Result<IndexProgress> {
        Ok(IndexProgress::new(self.count().await?, 0))
    }

    /// See [`VectorIndex::save`]. `payloads` is the front door's payload
    /// section: the engine stores it verbatim with its own data
    /// ([`crate::persist::write_atomic_with`]) and hands it back at open.
    async fn save(&self, path: &Path, payloads: &[u8]) -> Result<()> {
        let _ = (path, payloads);
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
    /// Opens the engine saved at `path`; the file's dim and metric must
    /// match `spec`'s. Returns the payload section saved with it, if any.
    async fn open(path: &Path, spec: IndexSpec) -> Result<(Self, Option<Vec<u8>>)>;
}

/// Ids being written: a write claims its ids before it reaches the engine
/// and releases them after the payload store has followed, so two writes of
/// one id never leave the vector of one beside the payload of the other.
/// (A claim holds no lock across the engine call: a future holding it
/// stays `Send`.)
#[derive(Default)]
struct InFlight {
    ids: Mutex<IdSet>,
    freed: Condvar,
}

struct Claim<'a> {
    owner: &'a InFlight,
    ids: Vec<u64>,
}

impl InFlight {
    fn claim(&self, ids: &[u64]) -> Claim<'_> {
        let mut set = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        while ids.iter().any(|&id| set.contains(id)) {
            set = self.freed.wait(set).unwrap_or_else(|e| e.into_inner());
        }
        set.extend(ids.iter().copied());
        Claim {
            owner: self,
            ids: ids.to_vec(),
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut set = self.owner.ids.lock().unwrap_or_else(|e| e.into_inner());
        for &id in &self.ids {
            set.remove(id);
        }
        self.owner.freed.notify_all();
    }
}

/// Batches at least this long are prepared on every allowed core.
const PARALLEL_PREPARE_MIN: usize = 4096;

/// The front door: a [`VectorIndex`] over any [`Engine`], doing the common
/// work once (see the module docs).
pub struct Index<E> {
    engine: E,
    caps: Capabilities,
    /// The engine's spec with the schema in force (a file's, once opened).
    spec: IndexSpec,
    /// The file the index was opened from (or is to be created at), for
    /// [`VectorIndex::save_in_place`].
    origin: Option<PathBuf>,
    /// Every live id and its payload, for engines that keep no payloads.
    store: Option<RwLock<PayloadStore>>,
    in_flight: InFlight,
}

impl<E: Engine> Index<E> {
    /// Puts the front door before `engine`, which must be empty unless it
    /// keeps its own payloads (use [`Index::with_payloads`] for one that
    /// holds vectors already).
    pub fn from_engine(engine: E) -> Self {
        let caps = engine.capabilities();
        let spec = engine.spec().clone();
        let store =
            (!engine.holds_payloads()).then(|| RwLock::new(PayloadStore::new(spec.schema.clone())));
        Index {
            engine,
            caps,
            spec,
            origin: None,
            store,
            in_flight: InFlight::default(),
        }
    }

    /// The front door before an engine that already holds vectors (opened
    /// from a file): its live ids, and the payload section saved with them
    /// (which brings its schema; the engine spec's, if not empty, must equal it).
    pub async fn with_payloads(engine: E, section: Option<Vec<u8>>) -> Result<Self> {
        Self::with_payloads_of(Self::from_engine(engine), section).await
    }

    async fn with_payloads_of(mut index: Self, section: Option<Vec<u8>>) -> Result<Self> {
        if index.store.is_none() {
            return Ok(index);
        }
        let ids = index.engine.ids().await?;
        let store = match section {
            Some(bytes) => {
                let store = PayloadStore::from_section(&bytes, ids)?;
                let asked = &index.spec.schema;
                if !asked.is_empty() && asked != store.schema() {
                    return Err(Error::InvalidArgument(format!(
                        "the file's payload schema is {:?}, but {:?} was asked for",
                        store.schema(),
                        asked
                    )));
                }
                index.spec.schema = store.schema().clone();
                store
            }
            None => {
                let mut store = PayloadStore::new(index.spec.schema.clone());
                store.mark_live(ids);
                store
            }
        };
        index.store = Some(RwLock::new(store));
        Ok(index)
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
        let metric = self.spec.metric;
        if vectors.len() >= PARALLEL_PREPARE_MIN {
            exec::parallel_map(self.spec.effective_threads(), vectors, |v| {
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
            None => Ok(self.spec.ef_search.max(k)),
        }
    }

    /// The store, read-locked (local engines only).
    fn read_store(&self) -> Option<std::sync::RwLockReadGuard<'_, PayloadStore>> {
        self.store
            .as_ref()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn write_store(&self) -> Option<std::sync::RwLockWriteGuard<'_, PayloadStore>> {
        self.store
            .as_ref()
            .map(|s| s.write().unwrap_or_else(|e| e.into_inner()))
    }

    /// Checks a filter against the schema and, for a local engine, resolves
    /// it to the exact set of admitted live ids.
    fn compile(&self, filter: &Filter) -> Result<IdFilter> {
        if !self.caps.filter {
            return Err(Error::Unsupported(format!(
                "the {} backend does not filter searches",
                self.engine.backend()
            )));
        }
        filter.validate(&self.spec.schema)?;
        Ok(match self.read_store() {
            Some(store) => match store.resolve(filter) {
                Resolved::Set(ids) => IdFilter::resolved(filter.clone(), ids),
                Resolved::Bits(bits) => IdFilter::resolved_bits(filter.clone(), bits),
            },
            None => IdFilter::expression(filter.clone()),
        })
    }

    /// Checks a payload against the schema; its normal form.
    fn check_payload(&self, payload: &Payload) -> Result<Payload> {
        if !self.caps.payloads {
            return Err(no_payloads(self.engine.backend()));
        }
        self.spec.schema.check(payload)?;
        Ok(payload.clone().normalised(&self.spec.schema))
    }

    /// Writes checked, prepared, distinct-id rows, with their payloads (an
    /// upsert without payloads clears the ids' payloads).
    async fn write(
        &self,
        ids: Vec<u64>,
        vectors: Vec<Vec<f32>>,
        payloads: Option<Vec<Payload>>,
    ) -> Result<()> {
        if self.store.is_none() {
            return match payloads {
                Some(p) => self.engine.upsert_with_payloads(ids, vectors, p).await,
                None => self.engine.upsert(ids, vectors).await,
            };
        }
        let _claim = self.in_flight.claim(&ids);
        self.engine.upsert(ids.clone(), vectors).await?;
        if let Some(mut store) = self.write_store() {
            let mut payloads = payloads.map(Vec::into_iter);
            for id in ids {
                store.put(id, payloads.as_mut().and_then(Iterator::next));
            }
        }
        Ok(())
    }

    /// `add_batch` with optional payloads: validation of everything first,
    /// the last of equal ids kept.
    async fn add_all(
        &self,
        ids: &[u64],
        vectors: &[Vec<f32>],
        payloads: Option<&[Payload]>,
    ) -> Result<()> {
        check_batch(&self.spec, self.caps.max_id, ids, vectors)?;
        let payloads = match payloads {
            Some(p) if p.len() != ids.len() => {
                return Err(Error::InvalidArgument(format!(
                    "{} ids but {} payloads",
                    ids.len(),
                    p.len()
                )))
            }
            Some(p) => Some(
                p.iter()
                    .enumerate()
                    .map(|(i, p)| {
                        self.check_payload(p).map_err(|e| match e {
                            Error::InvalidArgument(m) => {
                                Error::InvalidArgument(format!("payload of id {}: {m}", ids[i]))
                            }
                            e => e,
                        })
                    })
                    .collect::<Result<Vec<Payload>>>()?,
            ),
            None => None,
        };
        if ids.is_empty() {
            return Ok(());
        }
        let keep = last_occurrences(ids);
        if keep.len() == ids.len() {
            let prepared = self.prepare_all(vectors);
            return self.write(ids.to_vec(), prepared, payloads).await;
        }
        let kept_ids: Vec<u64> = keep.iter().map(|&i| ids[i]).collect();
        let kept: Vec<Vec<f32>> = keep.iter().map(|&i| vectors[i].clone()).collect();
        let kept_payloads =
            payloads.map(|p| keep.iter().map(|&i| p[i].clone()).collect::<Vec<_>>());
        let prepared = self.prepare_all(&kept);
        self.write(kept_ids, prepared, kept_payloads).await
    }

    /// The next `limit` ids after `after` from the store, with their
    /// vectors from the engine (an id deleted meanwhile is left out).
    async fn scan_local(&self, after: Option<u64>, limit: usize) -> Result<ScanPage> {
        let mut ids: Vec<u64> = match self.read_store() {
            Some(s) => s.ids().filter(|&id| after.is_none_or(|a| id > a)).collect(),
            None => Vec::new(),
        };
        // The smallest `limit` in linear time, then sorted.
        if ids.len() > limit {
            ids.select_nth_unstable(limit);
            ids.truncate(limit);
        }
        ids.sort_unstable();
        // The cursor follows the ids chosen, not the records found: an id
        // deleted meanwhile must not end the scan early.
        let next = (ids.len() >= limit).then(|| ids.last().copied()).flatten();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(vector) = self.engine.fetch(id).await? else {
                continue;
            };
            let payload = self
                .read_store()
                .and_then(|s| s.get(id))
                .unwrap_or_default();
            out.push(Record {
                id,
                vector,
                payload,
            });
        }
        Ok(ScanPage { records: out, next })
    }

    /// Deletes `id` from the engine and the store.
    async fn remove(&self, id: u64) -> Result<bool> {
        if self.store.is_none() {
            return self.engine.remove(id).await;
        }
        let _claim = self.in_flight.claim(&[id]);
        let removed = self.engine.remove(id).await?;
        if let Some(mut store) = self.write_store() {
            store.remove(id);
        }
        Ok(removed)
    }

    /// The search width and compiled filter of a search, and whether
    /// nothing can come back (`k` 0, a filter admitting no id): an empty
    /// answer without asking the engine.
    fn plan_search(
        &self,
        k: usize,
        params: &SearchParams,
    ) -> Result<(usize, Option<IdFilter>, bool)> {
        let ef = self.ef(params, k)?;
        if params.max_distance.is_some_and(f32::is_nan) {
            return Err(Error::InvalidArgument(
                "max_distance is NaN (it bounds the distance of every hit)".into(),
            ));
        }
        let filter = params
            .filter
            .as_ref()
            .map(|f| self.compile(f))
            .transpose()?;
        let empty = filter
            .as_ref()
            .is_some_and(|f| f.is_empty() || f.expr().is_empty_allow_list());
        Ok((ef, filter, k == 0 || empty))
    }

    /// An engine's hits as the caller gets them: checked, in order, `k` at
    /// most, within `max_distance`.
    fn finish_hits(
        &self,
        hits: &mut Vec<Neighbor>,
        k: usize,
        params: &SearchParams,
        filter: Option<&IdFilter>,
    ) -> Result<()> {
        self.check_hits(hits, filter)?;
        sort_neighbors(hits);
        hits.truncate(k);
        if let Some(d) = params.max_distance {
            hits.retain(|h| h.distance <= d);
        }
        Ok(())
    }

    async fn knn(
        &self,
        queries: Vec<Vec<f32>>,
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let n = queries.len();
        let (ef, filter, nothing) = self.plan_search(k, params)?;
        if nothing || n == 0 {
            return Ok(vec![Vec::new(); n]);
        }
        let mut out = self.engine.knn(queries, k, ef, filter.as_ref()).await?;
        if out.len() != n {
            return Err(Error::Internal(format!(
                "the {} engine answered {} of {n} queries",
                self.engine.backend(),
                out.len()
            )));
        }
        for hits in &mut out {
            self.finish_hits(hits, k, params, filter.as_ref())?;
        }
        Ok(out)
    }

    /// What no engine may return, whatever it is: NaN distances, one id
    /// twice, ids the filter does not admit.
    fn check_hits(&self, hits: &[Neighbor], filter: Option<&IdFilter>) -> Result<()> {
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
        let mut index = Self::from_engine(engine);
        // The spec the caller gave is the one in force (the engine's may
        // leave out what it does not use).
        index.spec.schema = spec.schema;
        if let Some(mut store) = index.write_store() {
            *store = PayloadStore::new(index.spec.schema.clone());
        }
        Ok(index)
    }
}

impl<E: Open> Index<E> {
    /// Opens the index saved at `path` (see the engine's [`Open::open`]).
    pub async fn open(path: impl AsRef<Path>, spec: IndexSpec) -> Result<Self> {
        spec.validate()?;
        let path = path.as_ref();
        let schema = spec.schema.clone();
        let (engine, section) = E::open(path, spec).await?;
        engine.capabilities().check(
            engine.backend(),
            &IndexSpec {
                schema: crate::Schema::new(),
                ..engine.spec().clone()
            },
        )?;
        let mut index = Self::from_engine(engine);
        index.spec.schema = schema;
        let index = Self::with_payloads_of(index, section)
            .await
            .map_err(|e| match e {
                Error::Corrupt(m) => Error::Corrupt(format!("{}: {m}", path.display())),
                e => e,
            })?;
        Ok(index.with_origin(path))
    }
}

#[async_trait]
impl<E: Engine> VectorIndex for Index<E> {
    fn backend(&self) -> &str {
        self.engine.backend()
    }

    fn spec(&self) -> &IndexSpec {
        &self.spec
    }

    fn capabilities(&self) -> Capabilities {
        self.caps.clone()
    }

    async fn add(&self, id: u64, vector: &[f32]) -> Result<()> {
        check_id(self.caps.max_id, id)?;
        check_vector(&self.spec, vector)?;
        let v = prepare(self.spec.metric, vector);
        self.write(vec![id], vec![v], None).await
    }

    async fn add_with_payload(&self, id: u64, vector: &[f32], payload: &Payload) -> Result<()> {
        check_id(self.caps.max_id, id)?;
        check_vector(&self.spec, vector)?;
        let payload = self.check_payload(payload)?;
        let v = prepare(self.spec.metric, vector);
        self.write(vec![id], vec![v], Some(vec![payload])).await
    }

    async fn add_batch(&self, ids: &[u64], vectors: &[Vec<f32>]) -> Result<()> {
        self.add_all(ids, vectors, None).await
    }

    async fn add_batch_with_payloads(
        &self,
        ids: &[u64],
        vectors: &[Vec<f32>],
        payloads: &[Payload],
    ) -> Result<()> {
        self.add_all(ids, vectors, Some(payloads)).await
    }

    async fn set_payload(&self, id: u64, payload: &Payload) -> Result<bool> {
        let payload = self.check_payload(payload)?;
        if id > self.caps.max_id {
            return Ok(false);
        }
        if self.store.is_none() {
            return self.engine.set_payload(id, payload).await;
        }
        let _claim = self.in_flight.claim(&[id]);
        Ok(self.write_store().is_some_and(|mut s| s.set(id, payload)))
    }

    async fn get_payload(&self, id: u64) -> Result<Option<Payload>> {
        if !self.caps.payloads {
            return Err(no_payloads(self.engine.backend()));
        }
        if id > self.caps.max_id {
            return Ok(None);
        }
        if self.store.is_none() {
            return self.engine.get_payload(id).await;
        }
        Ok(self.read_store().and_then(|s| s.get(id)))
    }

    async fn count(&self, filter: &Filter) -> Result<usize> {
        if self.store.is_none() {
            filter.validate(&self.spec.schema)?;
            return self.engine.count_where(filter).await;
        }
        Ok(self.compile(filter)?.len())
    }

    async fn delete_where(&self, filter: &Filter) -> Result<usize> {
        if self.store.is_none() {
            filter.validate(&self.spec.schema)?;
            return self.engine.delete_where(filter).await;
        }
        let matched: Vec<u64> = self.compile(filter)?.ids().collect();
        let mut removed = 0;
        for id in matched {
            let _claim = self.in_flight.claim(&[id]);
            // A write may have changed the id since the filter was evaluated.
            let still = self
                .read_store()
                .and_then(|s| s.contains(id).then(|| s.get(id)))
                .flatten()
                .is_some_and(|p| filter.admits(id, Some(&p)));
            if still && self.engine.remove(id).await? {
                if let Some(mut s) = self.write_store() {
                    s.remove(id);
                }
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn delete(&self, id: u64) -> Result<bool> {
        // Nothing can be stored beyond the backend's largest id.
        if id > self.caps.max_id {
            return Ok(false);
        }
        self.remove(id).await
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

    async fn scan(&self, after: Option<u64>, limit: usize) -> Result<ScanPage> {
        if limit == 0 {
            return Err(Error::InvalidArgument(
                "a scan page holds at least 1 record".into(),
            ));
        }
        if after == Some(u64::MAX) {
            return Ok(ScanPage::default());
        }
        if self.store.is_some() {
            return self.scan_local(after, limit).await;
        }
        let page = self.engine.scan(after, limit).await?;
        let ascending = page.records.windows(2).all(|w| w[0].id < w[1].id);
        let beyond = |id: u64| after.is_some_and(|a| id <= a);
        if page.records.len() > limit || !ascending || page.records.iter().any(|r| beyond(r.id)) {
            return Err(Error::Internal(format!(
                "the {} engine's scan page is not {limit} ascending ids after {after:?}",
                self.engine.backend()
            )));
        }
        Ok(page)
    }

    async fn ids(&self) -> Result<Vec<u64>> {
        let mut ids: Vec<u64> = if self.store.is_some() {
            self.read_store()
                .map(|s| s.ids().collect())
                .unwrap_or_default()
        } else {
            match self.engine.ids().await {
                Ok(ids) => ids,
                // A server lists its ids by scanning.
                Err(Error::Unsupported(_)) => {
                    let mut ids = Vec::new();
                    let mut after = None;
                    loop {
                        let page = self.scan(after, 4096).await?;
                        ids.extend(page.records.iter().map(|r| r.id));
                        match page.next {
                            Some(n) => after = Some(n),
                            None => break ids,
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        };
        ids.sort_unstable();
        Ok(ids)
    }

    async fn search(
        &self,
        query: &[f32],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Neighbor>> {
        check_vector(&self.spec, query)?;
        let q = prepare(self.spec.metric, query);
        let mut out = self.knn(vec![q], k, params).await?;
        Ok(out.pop().unwrap_or_default())
    }

    async fn search_batch(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        params: &SearchParams,
    ) -> Result<Vec<Vec<Neighbor>>> {
        check_queries(&self.spec, queries)?;
        let prepared = self.prepare_all(queries);
        self.knn(prepared, k, params).await
    }

    async fn explain(&self, query: &[f32], k: usize, params: &SearchParams) -> Result<Explain> {
        check_vector(&self.spec, query)?;
        let q = prepare(self.spec.metric, query);
        let (ef, filter, nothing) = self.plan_search(k, params)?;
        let live = self.engine.count().await?;
        let matches = filter
            .as_ref()
            .filter(|f| f.is_resolved())
            .map(IdFilter::len);
        if nothing {
            return Ok(Explain {
                hits: Vec::new(),
                plan: Plan::Nothing,
                matches,
                live,
                scored: Some(0),
            });
        }
        let (mut hits, trace) = self.engine.knn_traced(q, k, ef, filter.as_ref()).await?;
        self.finish_hits(&mut hits, k, params, filter.as_ref())?;
        Ok(Explain {
            hits,
            plan: trace.plan,
            matches,
            live,
            scored: trace.scored,
        })
    }

    async fn sync(&self) -> Result<()> {
        self.engine.sync().await
    }

    async fn finish_indexing(&self) -> Result<IndexProgress> {
        // The payload indexes' deferred parts (range prefixes) are built
        // here, not by the first filtered queries after the writes.
        if let Some(store) = self.read_store() {
            store.finish();
        }
        self.engine.finish_indexing().await
    }

    async fn save(&self, path: &Path) -> Result<()> {
        // Payloads go with the file only where there are some: a file
        // without them opens in builds that predate payloads.
        let section = match self.read_store() {
            Some(s) if !s.schema().is_empty() => s.to_section(),
            _ => Vec::new(),
        };
        self.engine.save(path, &section).await
    }

    fn origin(&self) -> Option<&Path> {
        self.origin.as_deref()
    }

    fn memory_bytes(&self) -> Option<usize> {
        let store = self.read_store().map_or(0, |s| s.memory_bytes());
        self.engine.memory_bytes().map(|b| b + store)
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

//! What an index is built for, what a search asks, what comes back, and what
//! a backend can do.

use crate::{Error, Filter, Metric, Result, Schema, Storage};

/// How an index is built. Backends take what applies to them; HNSW backends
/// use all of it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    /// Number of components of every vector (at least 1).
    pub dim: usize,
    /// How distance is measured.
    pub metric: Metric,
    /// HNSW: links per node on the upper levels (level 0 has `2 * m`).
    pub m: usize,
    /// HNSW: candidate-list size while inserting.
    pub ef_construction: usize,
    /// HNSW: candidate-list size while searching when the call sets none
    /// (default 100, as Qdrant searches at its default `ef_construct` of
    /// 100). At 64, the default before 2026-12-07, a graph of a million
    /// 96-d clustered points found 0.916 of the true ten unfiltered and
    /// 0.947 with a filter following the clusters; at 96, 0.956. Smaller
    /// indexes reach 0.99 at 64 (100,000 384-d sentence embeddings, 0.989):
    /// set it lower there for speed, or per call with `SearchParams::ef`.
    pub ef_search: usize,
    /// Expected number of vectors; capacity grows past it by itself.
    pub capacity: usize,
    /// Threads for batch calls; 0 means every core.
    pub threads: usize,
    /// How vectors are held in memory (default [`Storage::F32`]).
    pub storage: Storage,
    /// The payload fields the index takes (empty: no payloads). A saved
    /// file keeps its schema.
    pub schema: Schema,
}

impl IndexSpec {
    /// A spec with the default graph parameters (M 16, ef_construction 200,
    /// ef_search 100) and every core for batches.
    pub fn new(dim: usize, metric: Metric) -> Self {
        IndexSpec {
            dim,
            metric,
            m: 16,
            ef_construction: 200,
            ef_search: 100,
            capacity: 0,
            threads: 0,
            storage: Storage::F32,
            schema: Schema::new(),
        }
    }

    /// Sets the payload schema: the fields (and their types) payloads may
    /// have and filters may name.
    pub fn with_schema(mut self, schema: Schema) -> Self {
        self.schema = schema;
        self
    }

    /// Sets how vectors are stored; a backend that cannot store them so
    /// fails at creation with `Unsupported` (see [`Capabilities::storages`]).
    pub fn with_storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// Sets `m`.
    pub fn with_m(mut self, m: usize) -> Self {
        self.m = m;
        self
    }

    /// Sets `ef_construction`.
    pub fn with_ef_construction(mut self, ef: usize) -> Self {
        self.ef_construction = ef;
        self
    }

    /// Sets the default search width.
    pub fn with_ef_search(mut self, ef: usize) -> Self {
        self.ef_search = ef;
        self
    }

    /// Sets the capacity hint.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets the thread count for batch calls (0: every core).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Checks the parameters are usable; every backend calls this at creation.
    pub fn validate(&self) -> Result<()> {
        const MAX_DIM: usize = 1 << 16;
        if self.dim == 0 || self.dim > MAX_DIM {
            return Err(Error::InvalidArgument(format!(
                "dim must be between 1 and {MAX_DIM}, got {}",
                self.dim
            )));
        }
        if self.m < 2 || self.m > 256 {
            return Err(Error::InvalidArgument(format!(
                "m must be between 2 and 256, got {}",
                self.m
            )));
        }
        if self.ef_construction == 0 || self.ef_search == 0 {
            return Err(Error::InvalidArgument(
                "ef_construction and ef_search must be at least 1".into(),
            ));
        }
        self.schema.validate()
    }

    /// The number of threads batch calls use: `threads`, or every core when 0.
    pub fn effective_threads(&self) -> usize {
        crate::exec::resolve_threads(self.threads)
    }
}

/// Options of one search.
#[derive(Debug, Clone, Default)]
pub struct SearchParams {
    /// Search width; `None` uses the index's `ef_search`. Backends use at
    /// least `k`.
    pub ef: Option<usize>,
    /// Only ids the filter admits are returned (see [`Filter`]), the
    /// nearest admitted ones, never fewer than `min(k, admitted)`.
    ///
    /// What each backend promises: flat is always exact. native and hnswlib
    /// answer a filter exactly, by scoring the admitted ids, when matches x
    /// dim is at most [`crate::plan::SCAN_BELOW_COORDS`] (and always when it
    /// admits no more than `ef`); above it they walk the graph, keeping
    /// what the filter admits, with the recall the README's filtered table
    /// measures. [`VectorIndex::explain`](crate::VectorIndex::explain) says
    /// which plan a query took. Qdrant and Milvus filter with the server's own engine, the
    /// tie at the `k`-th distance widened until it comes back whole.
    pub filter: Option<Filter>,
    /// Range search: only hits at most this far from the query are
    /// returned (still at most `k`, the nearest first).
    pub max_distance: Option<f32>,
}

impl SearchParams {
    /// Sets the search width.
    pub fn with_ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }

    /// Restricts results to the ids the filter admits.
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Range search: keeps only hits within `d` of the query (faiss's
    /// `range_search`, Qdrant's `score_threshold`, Milvus's `radius`), in
    /// the metric's distance (squared for L2).
    pub fn with_max_distance(mut self, d: f32) -> Self {
        self.max_distance = Some(d);
        self
    }
}

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// The caller's id.
    pub id: u64,
    /// Distance in the metric's convention (smaller is closer).
    pub distance: f32,
}

/// For backend authors: sorts by distance ascending, ties by id, the order
/// every backend returns (the front door sorts engines' answers with it).
pub fn sort_neighbors(list: &mut [Neighbor]) {
    list.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.id.cmp(&b.id)));
}

/// When a write becomes visible to reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// A write is visible as soon as it returns.
    Immediate,
    /// A write is visible once `sync()` has returned after it.
    Eventual,
}

/// What a backend can do. The conformance suite runs the cases these allow
/// and prints the others as skipped, with the missing capability.
#[derive(Debug, Clone, PartialEq)]
pub struct Capabilities {
    /// Metrics the backend serves; others fail at creation with `Unsupported`.
    pub metrics: Vec<Metric>,
    /// Whether `SearchParams::filter` is served (`has_id` at least).
    pub filter: bool,
    /// Whether payloads (and filters on their fields, `count` and
    /// `delete_where`) are served.
    pub payloads: bool,
    /// Whether `save` and opening a saved file are served.
    pub persistence: bool,
    /// When writes become visible.
    pub consistency: Consistency,
    /// The largest id the backend can hold (Milvus: `i64::MAX - 1`, since
    /// Milvus 2.3.5 cannot read back the row keyed `i64::MAX`).
    pub max_id: u64,
    /// Whether `memory_bytes` reports the index's size (for the bounded-churn check).
    pub reports_memory: bool,
    /// Storage kinds the backend serves; others fail at creation with `Unsupported`.
    pub storages: Vec<Storage>,
    /// Whether a write, once `sync` has shown it, stays visible to every
    /// later read while other writes go on. False for Milvus 2.3, whose REST
    /// reads are served at bounded staleness: a row deleted and synced
    /// before a scan came back in a page of it while two writers wrote.
    pub stable_reads: bool,
}

impl Capabilities {
    /// For backend authors: everything a local in-memory engine serves
    /// (every metric, filters, payloads, persistence, immediate
    /// consistency, every `u64` id, `memory_bytes`; F32 storage only).
    pub fn local_full() -> Self {
        Capabilities {
            metrics: Metric::ALL.to_vec(),
            filter: true,
            payloads: true,
            persistence: true,
            consistency: Consistency::Immediate,
            max_id: u64::MAX,
            reports_memory: true,
            storages: vec![Storage::F32],
            stable_reads: true,
        }
    }

    /// What a vector database server offers: L2, cosine and inner product,
    /// allow-list filters, no local files or memory figures.
    pub fn server(consistency: Consistency, max_id: u64) -> Self {
        Capabilities {
            metrics: vec![Metric::L2, Metric::Cosine, Metric::InnerProduct],
            filter: true,
            payloads: false,
            persistence: false,
            consistency,
            max_id,
            reports_memory: false,
            storages: vec![Storage::F32],
            stable_reads: true,
        }
    }

    /// Whether `storage` is served.
    pub fn serves_storage(&self, storage: Storage) -> bool {
        self.storages.contains(&storage)
    }

    /// Fails with `Unsupported` unless `spec`'s metric and storage are
    /// served (backends call it at creation, before touching anything).
    pub fn check(&self, backend: &str, spec: &IndexSpec) -> Result<()> {
        if !self.serves(spec.metric) {
            return Err(Error::Unsupported(format!(
                "{backend} does not serve the {} metric",
                spec.metric
            )));
        }
        if !self.payloads && !spec.schema.is_empty() {
            return Err(Error::Unsupported(format!(
                "{backend} does not store payloads (the spec has a schema)"
            )));
        }
        if !self.serves_storage(spec.storage) {
            return Err(Error::Unsupported(format!(
                "{backend} does not store vectors as {}",
                spec.storage
            )));
        }
        Ok(())
    }

    /// Whether `metric` is served.
    pub fn serves(&self, metric: Metric) -> bool {
        self.metrics.contains(&metric)
    }
}

//! [`MilvusIndex`]: a `VectorIndex` kept in a Milvus collection, over REST
//! v1 (Milvus 2.3) or v2 (Milvus 2.4+).

mod api;
mod indexing;
mod schema;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use vecsearch_core::{
    async_trait, Capabilities, Consistency, Error, Filter, IdMap, IndexProgress, IndexSpec,
    Neighbor, Result, SearchParams,
};

use self::api::{to_distance, Api, Dialect, MAX_TOPK};
use crate::check::{bad_reply, check_hits, check_row_ids, SearchRules};
use crate::http::{join_all, rows_limit, Exec, Http, SMALL_REPLY};
use crate::json::{malformed, parse_id, parse_u64, parse_vector, push_ids};
use crate::pending::{fingerprint, Pending, State};
use crate::uri::{Endpoint, Engine};

/// Ids are int64 in Milvus, and Milvus 2.3.5's retrieval by key (query,
/// get, search with output fields) misses the row keyed `i64::MAX` while
/// search and count see it (measured), so that one key is refused too.
const MAX_ID: u64 = (i64::MAX - 1) as u64;
/// Rows per upsert request: well under Milvus's 64 MB gRPC message limit.
const MAX_BODY_BYTES: usize = 4 << 20;
const MAX_ROWS: usize = 5_000;
/// Upsert requests in flight for one batch.
const UPSERT_WIDTH: usize = 4;
/// Ids per `id in [...]` query while syncing.
const SYNC_CHUNK: usize = 1_000;
/// Puts whose exact vector `sync` checks (an upsert of a present id shows
/// the old vector until it is visible; later writes imply earlier ones).
const SYNC_VECTOR_TAIL: usize = 64;
/// Searches in flight for one `search_batch`.
const SEARCH_WIDTH: usize = 8;
/// How long `sync` waits for the server to show earlier writes.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Writes held for `sync` before a write syncs by itself (bounds memory).
const PENDING_LIMIT: usize = 1 << 20;

/// A Milvus collection behind the core's front door (which checks every
/// argument, ids up to `i64::MAX - 1` included, before a request is made).
pub type MilvusIndex = vecsearch_core::Index<MilvusEngine>;

/// A vector index in a Milvus collection (`milvus://host:19530/collection`).
///
/// Ids are Milvus int64 keys: ids from `i64::MAX` up are refused (see
/// `Capabilities::max_id`). Reads are eventually consistent:
/// [`VectorIndex::sync`](vecsearch_core::VectorIndex::sync) waits until
/// every earlier write shows. Jaccard is not served (Milvus has it for
/// binary vectors only).
pub struct MilvusEngine {
    spec: IndexSpec,
    inner: Arc<Inner>,
    // Dropped after `inner`, so no task holds the last owner of its runtime.
    _exec: Exec,
}

struct Inner {
    spec: IndexSpec,
    api: Api,
    pk: String,
    vf: String,
    metric_name: &'static str,
    pending: Pending,
}

impl std::fmt::Debug for MilvusEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MilvusEngine")
            .field("collection", &self.inner.api.collection)
            .field("dialect", &self.inner.api.dialect)
            .finish()
    }
}

impl MilvusEngine {
    /// Opens the collection `uri` names, creating it for `spec` when absent.
    /// An existing collection must have the spec's dim and metric
    /// (`InvalidArgument` otherwise; nothing is changed).
    pub async fn open(uri: &str, spec: IndexSpec) -> Result<MilvusIndex> {
        Self::open_endpoint(&Endpoint::parse_as(uri, Engine::Milvus)?, spec).await
    }

    /// [`MilvusEngine::open`] with a parsed endpoint.
    pub async fn open_endpoint(ep: &Endpoint, spec: IndexSpec) -> Result<MilvusIndex> {
        spec.validate()?;
        let metric_name = api::metric_name(spec.metric)?;
        // Milvus 2.3.5 stores float vectors as f32 only (float16 vectors
        // came in 2.4); its quantised indexes are not mapped.
        Capabilities::server(Consistency::Immediate, MAX_ID).check("milvus", &spec)?;
        let (exec, api) = connect(ep).await?;
        let layout = match api.describe().await? {
            Some(data) => {
                let layout = schema::parse_layout(&data)?;
                schema::check_matches(&layout, &spec, &api.collection)?;
                if layout.load != "LoadStateLoaded" {
                    schema::wait_loaded(&api).await?
                } else {
                    layout
                }
            }
            None => {
                schema::create(&api, &spec).await?;
                let layout = schema::wait_loaded(&api).await?;
                schema::check_matches(&layout, &spec, &api.collection)?;
                layout
            }
        };
        Ok(vecsearch_core::Index::from_engine(MilvusEngine {
            spec: spec.clone(),
            inner: Arc::new(Inner {
                spec,
                api,
                pk: layout.pk,
                vf: layout.vf,
                metric_name,
                pending: Pending::default(),
            }),
            _exec: exec,
        }))
    }

    /// The collection's name.
    pub fn collection(&self) -> &str {
        &self.inner.api.collection
    }

    /// Whether the server speaks REST v2 (Milvus 2.4+) rather than v1.
    pub fn speaks_v2(&self) -> bool {
        self.inner.api.dialect == Dialect::V2
    }
}

/// A client and dialect for `ep`.
async fn connect(ep: &Endpoint) -> Result<(Exec, Api)> {
    let exec = Exec::new()?;
    let auth = ep
        .api_key
        .as_ref()
        .map(|k| ("authorization", format!("Bearer {k}")));
    let http = Http::new(ep, auth, &exec)?;
    let base = ep.base_url();
    let dialect = schema::detect(&http, &base, ep.url_with_port(ep.mgmt_port)).await?;
    let api = Api {
        http,
        base,
        dialect,
        collection: ep.collection.clone(),
    };
    Ok((exec, api))
}

/// Drops the collection `ep` names; returns whether it existed.
pub(crate) async fn drop_endpoint(ep: &Endpoint) -> Result<bool> {
    let (_exec, api) = connect(ep).await?;
    if api.describe().await?.is_none() {
        return Ok(false);
    }
    api.drop_collection().await?;
    Ok(true)
}

impl Inner {
    /// `ids` are distinct (the front door keeps the last of equal ids, which
    /// matters here: Milvus would store both rows of a batch with a repeated
    /// key) and the vectors prepared (cosine normalised in f64: a server
    /// normalising in f32 loses a tiny vector's direction).
    async fn upsert(&self, ids: &[u64], vectors: &[Vec<f32>]) -> Result<()> {
        // No two chunks share an id, so their order is free and a few can
        // be in flight at once.
        let vectors: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        let row_bytes = 40 + self.spec.dim * 16;
        let rows = (MAX_BODY_BYTES / row_bytes).clamp(1, MAX_ROWS);
        let chunks: Vec<(&[u64], &[&[f32]])> = ids.chunks(rows).zip(vectors.chunks(rows)).collect();
        for wave in chunks.chunks(UPSERT_WIDTH) {
            let sends = wave
                .iter()
                .map(|(ids, vectors)| self.api.upsert(&self.pk, &self.vf, ids, vectors));
            let results = join_all(sends.collect()).await;
            let mut first_err = None;
            for ((ids, vectors), result) in wave.iter().zip(results) {
                match result {
                    Ok(n) if n == ids.len() as u64 => self.pending.record(
                        ids.iter()
                            .zip(vectors.iter())
                            .map(|(&id, v)| (id, State::Present(fingerprint(v)))),
                    ),
                    Ok(n) => {
                        first_err = first_err.or(Some(Error::Remote {
                            status: 200,
                            message: format!("Milvus upserted {n} of {} rows", ids.len()),
                        }))
                    }
                    Err(e) => first_err = first_err.or(Some(e)),
                }
            }
            if let Some(e) = first_err {
                return Err(e);
            }
        }
        if self.pending.len() > PENDING_LIMIT {
            self.sync().await?;
        }
        Ok(())
    }

    /// Whether `id` holds a vector: the latest unsynced write says, else the
    /// server, whose rows must all be `id`'s.
    async fn present(&self, id: u64) -> Result<bool> {
        if let Some(state) = self.pending.state(id) {
            return Ok(state != State::Absent);
        }
        let rows = self.api.get(&[id], &[self.pk.as_str()], 0).await?;
        let ids = check_row_ids("Milvus get", &[id], &rows, |r| {
            r.get(&self.pk).and_then(parse_id)
        })?;
        Ok(!ids.is_empty())
    }

    async fn search(&self, q: &[f32], k: usize, params: &SearchParams) -> Result<Vec<Neighbor>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        if k > MAX_TOPK {
            return Err(Error::InvalidArgument(format!(
                "k = {k} is above Milvus's limit of {MAX_TOPK}"
            )));
        }
        let filter = match &params.filter {
            None => None,
            Some(f) => {
                let mut ids: Vec<u64> = f.ids().filter(|&id| id <= MAX_ID).collect();
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                ids.sort_unstable();
                let mut expr = format!("{} in ", self.pk);
                push_ids(&mut expr, ids);
                Some(expr)
            }
        };
        // Milvus's HNSW refuses ef < k.
        let ef = params.ef.unwrap_or(self.spec.ef_search).max(k);
        let rows = self
            .api
            .search(&self.vf, q, k, ef, filter.as_deref(), self.metric_name)
            .await?;
        let mut raw = Vec::with_capacity(rows.len().min(k.saturating_add(1)));
        for h in rows {
            let id = h.id.get().ok_or_else(|| {
                bad_reply(
                    "Milvus search",
                    format!("a hit whose id {:?} is not a u64", h.id),
                )
            })?;
            raw.push((id, to_distance(self.spec.metric, h.distance)));
        }
        let rules = SearchRules {
            what: "Milvus search",
            metric: self.spec.metric,
            k,
            max_id: MAX_ID,
            filter: params.filter.as_ref(),
        };
        check_hits(&rules, raw)
    }

    async fn count(&self) -> Result<usize> {
        let filter = format!("{0} >= 0 || {0} < 0", self.pk);
        let rows = self
            .api
            .query(&filter, &["count(*)"], None, SMALL_REPLY)
            .await?;
        if rows.len() != 1 {
            return Err(bad_reply(
                "Milvus count",
                format!("{} rows instead of one", rows.len()),
            ));
        }
        let row = rows.first().cloned().unwrap_or(Value::Null);
        row.get("count(*)")
            .and_then(parse_u64)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| malformed("count: no count(*)", &row))
    }

    /// Which of `ids` the server shows, with the fingerprint of each one's
    /// vector when `with_vectors`.
    async fn shown(&self, ids: &[u64], with_vectors: bool) -> Result<IdMap<Option<u64>>> {
        let mut seen = IdMap::default();
        let fields: Vec<&str> = if with_vectors {
            vec![self.pk.as_str(), self.vf.as_str()]
        } else {
            vec![self.pk.as_str()]
        };
        let dim = if with_vectors { self.spec.dim } else { 0 };
        for chunk in ids.chunks(SYNC_CHUNK) {
            let mut expr = format!("{} in ", self.pk);
            push_ids(&mut expr, chunk.iter().copied());
            let rows = self
                .api
                .query(&expr, &fields, Some(MAX_TOPK), rows_limit(chunk.len(), dim))
                .await?;
            let row_ids = check_row_ids("Milvus query", chunk, &rows, |r| {
                r.get(&self.pk).and_then(parse_id)
            })?;
            for (row, id) in rows.iter().zip(row_ids) {
                // A row without the vector asked for is a malformed reply,
                // not a write still to show: waiting would wait for nothing.
                let fp = if with_vectors {
                    let v = row
                        .get(&self.vf)
                        .and_then(|v| parse_vector(v, self.spec.dim))
                        .ok_or_else(|| {
                            bad_reply(
                                "Milvus query",
                                format!("the row of id {id} has no usable vector"),
                            )
                        })?;
                    Some(fingerprint(&v))
                } else {
                    None
                };
                seen.insert(id, fp);
            }
        }
        Ok(seen)
    }

    /// Waits until the server shows every write recorded before the call.
    async fn sync(&self) -> Result<()> {
        let start = Instant::now();
        let mut todo = self.pending.snapshot();
        let tail_from = todo
            .iter()
            .filter(|e| e.2 != State::Absent)
            .count()
            .saturating_sub(SYNC_VECTOR_TAIL);
        let mut puts_seen = 0usize;
        let mut check_vector: HashSet<u64> = HashSet::new();
        for e in &todo {
            if e.2 != State::Absent {
                if puts_seen >= tail_from {
                    check_vector.insert(e.0);
                }
                puts_seen += 1;
            }
        }
        let mut delay = Duration::from_millis(50);
        while !todo.is_empty() {
            let ids: Vec<u64> = todo.iter().map(|e| e.0).collect();
            let mut seen = self.shown(&ids, false).await?;
            let tail: Vec<u64> = ids
                .into_iter()
                .filter(|id| check_vector.contains(id))
                .collect();
            seen.extend(self.shown(&tail, true).await?);
            todo.retain(|&(id, seq, state)| {
                let shown = match (state, seen.get(&id)) {
                    (State::Absent, None) => true,
                    (State::Present(want), Some(got)) => {
                        !check_vector.contains(&id) || *got == Some(want)
                    }
                    _ => false,
                };
                if shown {
                    self.pending.confirm(id, seq);
                }
                !shown
            });
            if todo.is_empty() {
                break;
            }
            if start.elapsed() > SYNC_TIMEOUT {
                return Err(Error::Unavailable(format!(
                    "Milvus has not shown {} acknowledged writes after {} s",
                    todo.len(),
                    SYNC_TIMEOUT.as_secs()
                )));
            }
            // On the index's runtime: the caller may have no timer (issue 13).
            self.api.http.sleep(delay).await?;
            delay = (delay * 2).min(Duration::from_millis(400));
        }
        Ok(())
    }
}

#[async_trait]
impl vecsearch_core::Engine for MilvusEngine {
    fn backend(&self) -> &str {
        "milvus"
    }

    fn spec(&self) -> &IndexSpec {
        &self.spec
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::server(Consistency::Eventual, MAX_ID)
    }

    async fn upsert(&self, ids: Vec<u64>, vectors: Vec<Vec<f32>>) -> Result<()> {
        self.inner.upsert(&ids, &vectors).await
    }

    async fn remove(&self, id: u64) -> Result<bool> {
        match self.inner.present(id).await {
            Ok(false) => Ok(false),
            Ok(true) => {
                self.inner.api.delete(&self.inner.pk, &[id]).await?;
                self.inner.pending.record([(id, State::Absent)]);
                Ok(true)
            }
            // A reply that cannot say whether the id is there: delete it
            // anyway (the caller asked for it gone), then report the reply.
            Err(e @ Error::Remote { .. }) => {
                if self.inner.api.delete(&self.inner.pk, &[id]).await.is_ok() {
                    self.inner.pending.record([(id, State::Absent)]);
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    async fn fetch(&self, id: u64) -> Result<Option<Vec<f32>>> {
        let inner = &self.inner;
        let rows = inner
            .api
            .get(
                &[id],
                &[inner.pk.as_str(), inner.vf.as_str()],
                self.spec.dim,
            )
            .await?;
        check_row_ids("Milvus get", &[id], &rows, |r| {
            r.get(&inner.pk).and_then(parse_id)
        })?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        row.get(&inner.vf)
            .and_then(|v| parse_vector(v, self.spec.dim))
            .map(Some)
            .ok_or_else(|| bad_reply("Milvus get", "the row has no usable vector"))
    }

    async fn contains(&self, id: u64) -> Result<bool> {
        self.inner.present(id).await
    }

    async fn count(&self) -> Result<usize> {
        self.inner.count().await
    }

    async fn knn(
        &self,
        queries: Vec<Vec<f32>>,
        k: usize,
        ef: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let params = SearchParams {
            ef: Some(ef),
            filter: filter.cloned(),
        };
        if let [q] = queries.as_slice() {
            return Ok(vec![self.inner.search(q, k, &params).await?]);
        }
        let inner = Arc::clone(&self.inner);
        let params = Arc::new(params);
        self.inner
            .api
            .http
            .map_concurrent(queries, SEARCH_WIDTH, move |q| {
                let (inner, params) = (Arc::clone(&inner), Arc::clone(&params));
                async move { inner.search(&q, k, &params).await }
            })
            .await
    }

    async fn sync(&self) -> Result<()> {
        self.inner.sync().await
    }

    /// Flushes, then waits (up to 20 minutes, or 2 while nothing moves) until the index is built on
    /// every sealed segment and the query nodes search them with it. Milvus
    /// 2.3 (REST v1) only: `Unsupported` on REST v2 servers.
    async fn finish_indexing(&self) -> Result<IndexProgress> {
        self.inner.sync().await?;
        let stored = vecsearch_core::Engine::count(self).await?;
        indexing::finish(&self.inner.api, stored).await
    }
}

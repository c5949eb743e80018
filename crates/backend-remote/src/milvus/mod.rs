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
    async_trait, Capabilities, Consistency, Error, IdFilter, IdMap, IndexProgress, IndexSpec,
    Neighbor, Payload, Record, Result, ScanPage,
};

use self::api::{to_distance, Api, Dialect, MAX_TOPK};
use crate::check::{bad_reply, check_hits, check_row_ids, SearchRules};
use crate::http::{join_all, rows_limit, Exec, Http, SMALL_REPLY};
use crate::json::{malformed, parse_id, parse_u64, parse_vector, push_ids};
use crate::pending::{fingerprint, Pending, State};
use crate::translate;
use crate::uri::{Endpoint, Server};
use vecsearch_core::distance::exact_distance;

/// One search as the engine sends it: the width, the filter and its
/// boolean expression (translated once per call; `none` when it admits no
/// id Milvus can hold).
struct Ask {
    ef: usize,
    filter: Option<IdFilter>,
    expr: Option<String>,
    none: bool,
}

/// Ids are int64 in Milvus, and Milvus 2.3.5's retrieval by key (query,
/// get, search with output fields) misses the row keyed `i64::MAX` while
/// search and count see it (measured), so that one key is refused too.
const MAX_ID: u64 = (i64::MAX - 1) as u64;
/// Room for one row's payload in a scan reply.
const SCAN_PAYLOAD_BYTES: usize = 64 << 10;

/// One page of a scan: the key range (a filter on the primary key), how
/// many rows it held when counted, and the cursor of the page after it.
struct KeyRange {
    expr: String,
    count: usize,
    next: Option<u64>,
}
/// Times a page is counted again when its range grew past the slack of
/// [`slack`] between its count and its query.
const RECOUNTS: usize = 8;

/// Rows to ask of a key range counted at `count`: twice as many, and at
/// least 64 more, so rows added since the count still come back whole.
fn slack(count: usize) -> usize {
    count.saturating_mul(2).max(count + 64).min(MAX_TOPK)
}

/// A scan page retried `RECOUNTS` times: writers outpaced it.
fn range_kept_growing() -> Error {
    Error::Unavailable(format!(
        "Milvus scan: a key range grew past twice its count {RECOUNTS} times between counting and reading it (writers faster than the scan); try again"
    ))
}

/// The largest reply to a payload read (64 fields of up to 1,024 elements
/// of up to 1 KiB).
const PAYLOAD_REPLY: usize = 72 << 20;
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
/// Reads of `count(*)` for one count, and the pause between two (see
/// `Inner::count`).
const COUNT_READS: usize = 5;
const COUNT_PAUSE: Duration = Duration::from_millis(20);
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
        Self::open_endpoint(&Endpoint::parse_as(uri, Server::Milvus)?, spec).await
    }

    /// [`MilvusEngine::open`] with a parsed endpoint.
    pub async fn open_endpoint(ep: &Endpoint, spec: IndexSpec) -> Result<MilvusIndex> {
        spec.validate()?;
        let metric_name = api::metric_name(spec.metric)?;
        // Milvus 2.3.5 stores float vectors as f32 only (float16 vectors
        // came in 2.4); its quantised indexes are not mapped.
        capabilities(true).check("milvus", &spec)?;
        let (exec, api) = connect(ep).await?;
        if api.dialect == Dialect::V2 && !spec.schema.is_empty() {
            return Err(Error::Unsupported(
                "milvus: payloads are served over Milvus 2.3's REST v1 in this version; this \
                 server speaks v2"
                    .into(),
            ));
        }
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

/// What a Milvus collection serves: payloads (in its dynamic field) where
/// the server speaks REST v1.
fn capabilities(payloads: bool) -> Capabilities {
    Capabilities {
        payloads,
        // REST v1's query takes no consistency level: reads are bounded-stale.
        stable_reads: false,
        ..Capabilities::server(Consistency::Eventual, MAX_ID)
    }
}

/// The fingerprint of a row: its vector's, and its payload's where it has
/// one, so `sync` also waits for a payload change that kept the vector.
fn row_fingerprint(v: &[f32], p: Option<&Payload>) -> u64 {
    let base = fingerprint(v);
    match p.filter(|p| !p.is_empty()) {
        None => base,
        Some(p) => {
            let text = p.to_json().to_string();
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in text.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            base ^ h.rotate_left(17)
        }
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
    async fn upsert(
        &self,
        ids: &[u64],
        vectors: &[Vec<f32>],
        payloads: Option<&[Payload]>,
    ) -> Result<()> {
        if let Some(ps) = payloads {
            ps.iter().try_for_each(translate::milvus_payload_fits)?;
        }
        // No two chunks share an id, so their order is free and a few can
        // be in flight at once.
        let vectors: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        let payload_bytes = payloads.map_or(0, |ps| {
            ps.iter()
                .map(|p| p.to_json().to_string().len())
                .max()
                .unwrap_or(0)
        });
        let row_bytes = 40 + self.spec.dim * 16 + payload_bytes;
        let rows = (MAX_BODY_BYTES / row_bytes).clamp(1, MAX_ROWS);
        let payload_chunks: Vec<Option<&[Payload]>> = match payloads {
            Some(ps) => ps.chunks(rows).map(Some).collect(),
            None => vec![None; ids.len().div_ceil(rows)],
        };
        type Chunk<'a> = ((&'a [u64], &'a [&'a [f32]]), Option<&'a [Payload]>);
        let chunks: Vec<Chunk<'_>> = ids
            .chunks(rows)
            .zip(vectors.chunks(rows))
            .zip(payload_chunks)
            .collect();
        for wave in chunks.chunks(UPSERT_WIDTH) {
            let sends = wave
                .iter()
                .map(|((ids, vectors), ps)| self.api.upsert(&self.pk, &self.vf, ids, vectors, *ps));
            let results = join_all(sends.collect()).await;
            let mut first_err = None;
            for (((ids, vectors), ps), result) in wave.iter().zip(results) {
                match result {
                    Ok(n) if n == ids.len() as u64 => {
                        self.pending
                            .record(ids.iter().zip(vectors.iter()).enumerate().map(
                                |(i, (&id, v))| {
                                    (id, State::Present(row_fingerprint(v, ps.map(|p| &p[i]))))
                                },
                            ))
                    }
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

    async fn search(&self, q: &[f32], k: usize, params: &Ask) -> Result<Vec<Neighbor>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        if k > MAX_TOPK {
            return Err(Error::InvalidArgument(format!(
                "k = {k} is above Milvus's limit of {MAX_TOPK}"
            )));
        }
        if params.none {
            return Ok(Vec::new());
        }
        // One hit more than asked, and more while the last one ties the
        // k-th: a tie at the boundary goes to the lowest id (the front door
        // sorts and truncates), so the whole tied group must come back.
        let mut want = k.saturating_add(1).min(MAX_TOPK);
        let found = loop {
            let found = self.search_once(q, want, params).await?;
            if !crate::check::boundary_tied(&found, k, want) || want >= MAX_TOPK {
                break found;
            }
            want = want.saturating_mul(2).min(MAX_TOPK);
        };
        if found.len() >= k {
            return Ok(found);
        }
        // Milvus's graph can come back short under a filter (measured:
        // 1 to 2 of 200 queries at 100,000 points); the contract promises
        // min(k, matches). Where more match, they are scored exactly.
        let all = format!("{0} >= 0 || {0} < 0", self.pk);
        let expr = params.expr.as_deref().unwrap_or(&all);
        let matches = self.count_expr(expr).await?;
        if matches <= found.len() || matches > MAX_TOPK {
            return Ok(found);
        }
        self.exact(q, expr, matches, params).await
    }

    /// A page of ids after `after`: Milvus's query has no order, so the page
    /// is a range of keys whose count (asked first, halving the range while
    /// it is over `limit`) fits.
    async fn scan(&self, after: Option<u64>, limit: usize) -> Result<ScanPage> {
        let limit = limit.min(MAX_TOPK / 2);
        for _ in 0..RECOUNTS {
            let Some(page) = self.page_range(after, limit).await? else {
                return Ok(ScanPage::default());
            };
            // A writer may add ids to the range between its count and this
            // query: asked for only `count` rows, Milvus would drop some of
            // the range's rows, any of them (a row live all along went
            // missing so, in `scan_beside_writers`). Asked for more, it
            // returns the whole range, and a page over `limit` is cut at
            // its `limit`-th id, the rest left to the next page.
            let ask = slack(page.count);
            let mut records = self.records(&page.expr, ask).await?;
            if records.len() >= ask {
                continue; // grew by more than the slack: count again
            }
            let next = if records.len() > limit {
                records.truncate(limit);
                records.last().map(|r| r.id)
            } else {
                page.next
            };
            return Ok(ScanPage { records, next });
        }
        Err(range_kept_growing())
    }

    /// Every id, ascending: the key ranges of [`Self::scan`], each asked
    /// for its ids alone (no vectors, no payloads).
    async fn ids(&self) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        let mut after = None;
        let mut recounts = 0;
        while let Some(page) = self.page_range(after, MAX_TOPK / 2).await? {
            // As in `scan`: room for rows added since the count, else a
            // row of the range could be dropped from the reply.
            let ask = slack(page.count);
            let rows = self
                .api
                .query(
                    &page.expr,
                    &[self.pk.as_str()],
                    Some(ask),
                    rows_limit(ask, 0),
                )
                .await?;
            if rows.len() >= ask {
                recounts += 1;
                if recounts >= RECOUNTS {
                    return Err(range_kept_growing());
                }
                continue;
            }
            let mut got = Vec::with_capacity(rows.len());
            for r in &rows {
                let id = r
                    .get(&self.pk)
                    .and_then(parse_id)
                    .ok_or_else(|| bad_reply("Milvus query", "a row without a usable id"))?;
                got.push(id);
            }
            got.sort_unstable();
            if got.windows(2).any(|w| w[0] == w[1]) {
                return Err(bad_reply("Milvus query", "one id in two rows"));
            }
            ids.extend(got);
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        Ok(ids)
    }

    /// The key range of the page after `after` ([`Self::scan`]), or `None`
    /// when no id is left.
    async fn page_range(&self, after: Option<u64>, limit: usize) -> Result<Option<KeyRange>> {
        let limit = limit.min(MAX_TOPK);
        let pk = self.pk.as_str();
        let mut lo = match after {
            Some(a) if a >= MAX_ID => return Ok(None),
            Some(a) => a + 1,
            None => 0,
        };
        let mut width = limit as u64;
        loop {
            let hi = lo.saturating_add(width).min(MAX_ID + 1);
            let range = format!("{pk} >= {lo} && {pk} < {hi}");
            let count = self.count_expr(&range).await?;
            if count > limit && width > 1 {
                width /= 2;
                continue;
            }
            if count == 0 {
                let rest = if hi > MAX_ID {
                    0
                } else {
                    self.count_expr(&format!("{pk} >= {hi}")).await?
                };
                if rest == 0 {
                    return Ok(None);
                }
                lo = hi;
                width = width.saturating_mul(4);
                continue;
            }
            return Ok(Some(KeyRange {
                expr: range,
                count,
                next: (hi <= MAX_ID).then(|| hi - 1),
            }));
        }
    }

    /// The rows `expr` admits (at most `limit`), as records by id.
    async fn records(&self, expr: &str, limit: usize) -> Result<Vec<Record>> {
        let mut fields = vec![self.pk.as_str(), self.vf.as_str()];
        if !self.spec.schema.is_empty() {
            fields.push("$meta");
        }
        let reply = rows_limit(limit, self.spec.dim)
            .saturating_add(limit.saturating_mul(SCAN_PAYLOAD_BYTES));
        let rows = self.api.query(expr, &fields, Some(limit), reply).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id = r
                .get(&self.pk)
                .and_then(parse_id)
                .ok_or_else(|| bad_reply("Milvus query", "a row without a usable id"))?;
            let vector = r
                .get(&self.vf)
                .and_then(|v| parse_vector(v, self.spec.dim))
                .ok_or_else(|| {
                    bad_reply("Milvus query", format!("id {id} has no usable vector"))
                })?;
            let payload = if self.spec.schema.is_empty() {
                Payload::new()
            } else {
                self.payload_of_row(r, id)?
            };
            out.push(Record {
                id,
                vector,
                payload,
            });
        }
        out.sort_by_key(|r| r.id);
        if out.windows(2).any(|w| w[0].id == w[1].id) {
            return Err(bad_reply("Milvus query", "one id in two rows"));
        }
        Ok(out)
    }

    /// Every row `expr` admits (at most `limit`), scored exactly.
    async fn exact(
        &self,
        q: &[f32],
        expr: &str,
        limit: usize,
        params: &Ask,
    ) -> Result<Vec<Neighbor>> {
        let fields = [self.pk.as_str(), self.vf.as_str()];
        let rows = self
            .api
            .query(expr, &fields, Some(limit), rows_limit(limit, self.spec.dim))
            .await?;
        let mut raw = Vec::with_capacity(rows.len());
        for r in &rows {
            let id = r
                .get(&self.pk)
                .and_then(parse_id)
                .ok_or_else(|| bad_reply("Milvus query", "a row without a usable id"))?;
            let v = r
                .get(&self.vf)
                .and_then(|v| parse_vector(v, self.spec.dim))
                .ok_or_else(|| {
                    bad_reply("Milvus query", format!("id {id} has no usable vector"))
                })?;
            raw.push((id, exact_distance(self.spec.metric, q, &v)));
        }
        raw.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let rules = SearchRules {
            what: "Milvus query",
            metric: self.spec.metric,
            k: limit,
            max_id: MAX_ID,
            filter: params.filter.as_ref(),
        };
        check_hits(&rules, raw)
    }

    /// One search for `want` hits, checked.
    async fn search_once(&self, q: &[f32], want: usize, params: &Ask) -> Result<Vec<Neighbor>> {
        // Milvus's HNSW refuses ef < k.
        let ef = params.ef.max(want);
        let rows = self
            .api
            .search(
                &self.vf,
                q,
                want,
                ef,
                params.expr.as_deref(),
                self.metric_name,
            )
            .await?;
        let mut raw = Vec::with_capacity(rows.len().min(want.saturating_add(1)));
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
            k: want,
            max_id: MAX_ID,
            filter: params.filter.as_ref(),
        };
        check_hits(&rules, raw)
    }

    /// The number of rows, read until two reads [`COUNT_PAUSE`] apart
    /// agree (at most [`COUNT_READS`] reads; with writers of its own the
    /// count moves, and the last read is the answer). Milvus's `count(*)`
    /// can count a row twice for a moment, while a segment that holds an
    /// upserted row's old version is handed over or compacted
    /// (milvus-io/milvus#28434, #38373): once in a CI run at 15be186,
    /// `concurrent_searches_beside_writes` read a `len` other than 2,080
    /// after `sync`, an upsert-heavy case.
    async fn count(&self) -> Result<usize> {
        let mut last = self.count_once().await?;
        for _ in 1..COUNT_READS {
            self.api.http.sleep(COUNT_PAUSE).await?;
            let now = self.count_once().await?;
            if now == last {
                break;
            }
            last = now;
        }
        Ok(last)
    }

    /// One `count(*)`.
    async fn count_once(&self) -> Result<usize> {
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
        let mut fields: Vec<&str> = if with_vectors {
            vec![self.pk.as_str(), self.vf.as_str()]
        } else {
            vec![self.pk.as_str()]
        };
        if with_vectors && !self.spec.schema.is_empty() {
            fields.push("$meta");
        }
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
                    let p = if self.spec.schema.is_empty() {
                        None
                    } else {
                        Some(self.payload_of_row(row, id)?)
                    };
                    Some(row_fingerprint(&v, p.as_ref()))
                } else {
                    None
                };
                seen.insert(id, fp);
            }
        }
        Ok(seen)
    }

    /// The payload in a row read with `$meta`: the schema's keys (others
    /// are not ours), checked like a write.
    fn payload_of_row(&self, row: &Value, id: u64) -> Result<Payload> {
        let mut p = Payload::new();
        for f in self.spec.schema.fields() {
            if let Some(v) = row.get(&f.name) {
                let v = vecsearch_core::Value::from_json(v)
                    .map_err(|e| bad_reply("Milvus query", format!("id {id}: {e}")))?;
                p.insert(f.name.clone(), v);
            }
        }
        self.spec
            .schema
            .check(&p)
            .map_err(|e| bad_reply("Milvus query", format!("id {id}'s payload: {e}")))?;
        Ok(p.normalised(&self.spec.schema))
    }

    /// The payload of `id`, `None` if absent.
    async fn payload(&self, id: u64) -> Result<Option<Payload>> {
        let expr = format!("{} in [{id}]", self.pk);
        let fields = [self.pk.as_str(), "$meta"];
        let rows = self
            .api
            .query(
                &expr,
                &fields,
                Some(2),
                rows_limit(1, 0).saturating_add(PAYLOAD_REPLY),
            )
            .await?;
        check_row_ids("Milvus query", &[id], &rows, |r| {
            r.get(&self.pk).and_then(parse_id)
        })?;
        rows.first()
            .map(|row| self.payload_of_row(row, id))
            .transpose()
    }

    /// How many rows a Milvus expression admits.
    async fn count_expr(&self, expr: &str) -> Result<usize> {
        let rows = self
            .api
            .query(expr, &["count(*)"], None, SMALL_REPLY)
            .await?;
        let row = rows.first().cloned().unwrap_or(Value::Null);
        row.get("count(*)")
            .and_then(parse_u64)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| malformed("count: no count(*)", &row))
    }

    /// The Milvus form of a (validated) filter; `None` when it admits nothing.
    fn expr(&self, filter: &vecsearch_core::Filter) -> Result<Option<String>> {
        translate::milvus(filter, &self.spec.schema, &self.pk, MAX_ID)
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
        capabilities(self.inner.api.dialect != Dialect::V2)
    }

    async fn upsert(&self, ids: Vec<u64>, vectors: Vec<Vec<f32>>) -> Result<()> {
        self.inner.upsert(&ids, &vectors, None).await
    }

    fn holds_payloads(&self) -> bool {
        true
    }

    async fn upsert_with_payloads(
        &self,
        ids: Vec<u64>,
        vectors: Vec<Vec<f32>>,
        payloads: Vec<Payload>,
    ) -> Result<()> {
        self.inner.upsert(&ids, &vectors, Some(&payloads)).await
    }

    /// Milvus updates whole rows: the vector is read and written back with
    /// the new payload.
    async fn set_payload(&self, id: u64, payload: Payload) -> Result<bool> {
        translate::milvus_payload_fits(&payload)?;
        self.inner.sync().await?;
        let Some(v) = vecsearch_core::Engine::fetch(self, id).await? else {
            return Ok(false);
        };
        self.inner.upsert(&[id], &[v], Some(&[payload])).await?;
        Ok(true)
    }

    async fn get_payload(&self, id: u64) -> Result<Option<Payload>> {
        self.inner.payload(id).await
    }

    async fn scan(&self, after: Option<u64>, limit: usize) -> Result<ScanPage> {
        self.inner.scan(after, limit).await
    }

    /// The ids alone, by key ranges (no vectors or payloads sent).
    async fn ids(&self) -> Result<Vec<u64>> {
        self.inner.ids().await
    }

    async fn count_where(&self, filter: &vecsearch_core::Filter) -> Result<usize> {
        match self.inner.expr(filter)? {
            Some(e) => self.inner.count_expr(&e).await,
            None => Ok(0),
        }
    }

    /// The ids the filter admits (once earlier writes show), then deleted
    /// by id, as `delete` does.
    async fn delete_where(&self, filter: &vecsearch_core::Filter) -> Result<usize> {
        let Some(expr) = self.inner.expr(filter)? else {
            return Ok(0);
        };
        let pk = self.inner.pk.as_str();
        let mut total = 0;
        // Rounds of one query's worth: what a round deleted no longer
        // shows once `sync` has returned.
        loop {
            self.inner.sync().await?;
            let rows = self
                .inner
                .api
                .query(&expr, &[pk], Some(MAX_TOPK), rows_limit(MAX_TOPK, 0))
                .await?;
            let mut ids = Vec::with_capacity(rows.len());
            for r in &rows {
                let id = r
                    .get(pk)
                    .and_then(parse_id)
                    .ok_or_else(|| bad_reply("Milvus query", "a row without a usable id"))?;
                ids.push(id);
            }
            ids.sort_unstable();
            ids.dedup();
            for chunk in ids.chunks(SYNC_CHUNK) {
                self.inner.api.delete(pk, chunk).await?;
                self.inner
                    .pending
                    .record(chunk.iter().map(|&id| (id, State::Absent)));
            }
            total += ids.len();
            if rows.len() < MAX_TOPK {
                return Ok(total);
            }
        }
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
        filter: Option<&IdFilter>,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let expr = filter
            .map(|f| translate::milvus(f.expr(), &self.spec.schema, &self.inner.pk, MAX_ID))
            .transpose()?;
        let params = Ask {
            ef,
            filter: filter.cloned(),
            none: expr.as_ref().is_some_and(Option::is_none),
            expr: expr.flatten(),
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

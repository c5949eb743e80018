//! [`QdrantEngine`]: the core's narrow `Engine` trait over a Qdrant
//! collection (REST); [`QdrantIndex`] is the front door over it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use vecsearch_core::{
    async_trait, Capabilities, Consistency, Error, Filter, IdFilter, IndexProgress, IndexSpec,
    Metric, Neighbor, Payload, Record, Result, ScanPage, Storage,
};
use vecsearch_core::{distance::exact_distance, sort_neighbors};

use crate::check::{bad_reply, boundary_tied, check_hits, check_row_ids, SearchRules};
use crate::http::{
    rows_limit, Body, Exec, Http, RawReply, Reply, PER_COMPONENT, PER_HIT, REPLY_BASE, SMALL_REPLY,
};
use crate::json::{malformed, parse_u64, push_vector};
use crate::translate;
use crate::uri::{Endpoint, Server};
use crate::wire::{finite_vector, qdrant_result, QdrantHit, QdrantPoint};

/// How long `finish_indexing` waits for the optimizers before it reports.
const INDEX_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Room for one point's payload in a scroll reply.
const SCAN_PAYLOAD_BYTES: usize = 64 << 10;
/// Ids per page when `ids()` scrolls without vectors.
const IDS_PAGE: usize = 10_000;
/// The most hits a search widens to while the last ties the k-th.
const MAX_TIE_WIDEN: usize = 4096;
/// The largest reply to a payload read: a payload holds at most 64 fields
/// of up to 1,024 elements of up to 1 KiB.
const PAYLOAD_REPLY: usize = 72 << 20;
/// Points per upsert request (Qdrant's default body limit is 32 MB).
const MAX_BODY_BYTES: usize = 8 << 20;
const MAX_POINTS: usize = 10_000;
/// Queries per `search/batch` request, and such requests in flight.
const QUERIES_PER_REQUEST: usize = 64;
const SEARCH_WIDTH: usize = 4;

/// A Qdrant collection behind the core's front door (which checks every
/// argument before a request is made).
pub type QdrantIndex = vecsearch_core::Index<QdrantEngine>;

/// A vector index in a Qdrant collection (`qdrant://host:6333/collection`).
///
/// Writes are sent with `wait=true`, so they are visible when they return.
/// Jaccard is not served (Qdrant has no such distance).
pub struct QdrantEngine {
    spec: IndexSpec,
    inner: Arc<Inner>,
    _exec: Exec,
}

struct Inner {
    spec: IndexSpec,
    http: Http,
    /// Given to Qdrant when the collection is created.
    indexing_threshold_kb: Option<u64>,
    full_scan_threshold_kb: Option<u64>,
    /// `http[s]://host:port/collections/<name>`.
    url: String,
    collection: String,
}

impl std::fmt::Debug for QdrantEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantEngine")
            .field("collection", &self.inner.collection)
            .finish()
    }
}

/// What a Qdrant collection serves: f16 as Qdrant's float16 vectors, i8 as
/// its int8 scalar quantisation, searched with rescoring by the originals;
/// payloads, with a payload index per schema field.
fn capabilities() -> Capabilities {
    Capabilities {
        storages: vec![Storage::F32, Storage::F16, Storage::I8],
        payloads: true,
        ..Capabilities::server(Consistency::Immediate, u64::MAX)
    }
}

/// One search as the engine sends it: the width, and the filter with its
/// Qdrant form (translated once per call, not per query).
struct Ask {
    ef: usize,
    filter: Option<IdFilter>,
    filter_json: Option<String>,
}

/// The vector parameters and quantisation of a collection for `spec`.
fn vectors_config(spec: &IndexSpec, distance: &str) -> (Value, Value) {
    let mut vectors = json!({"size": spec.dim, "distance": distance});
    if spec.storage == Storage::F16 {
        vectors["datatype"] = json!("float16");
    }
    let quantization = match spec.storage {
        // The range is learned from the data at each optimisation (the whole
        // range: no quantile clips outliers); originals stay for rescoring.
        Storage::I8 => json!({"scalar": {"type": "int8", "always_ram": true}}),
        _ => Value::Null,
    };
    (vectors, quantization)
}

/// The storage kind an existing collection holds: its vectors' datatype and
/// its quantisation. `InvalidArgument` for what vecsearch does not map.
fn stored_kind(info: &Value, vectors: &Value) -> Result<Storage> {
    let datatype = match vectors.get("datatype") {
        None | Some(Value::Null) => "float32",
        Some(v) => v
            .as_str()
            .ok_or_else(|| malformed("collection info: datatype is not a name", vectors))?,
    };
    let quantization = match info.pointer("/config/quantization_config") {
        None | Some(Value::Null) => None,
        Some(q) => Some(
            q.pointer("/scalar/type")
                .and_then(Value::as_str)
                .unwrap_or("other"),
        ),
    };
    match (datatype, quantization) {
        ("float32", None) => Ok(Storage::F32),
        ("float16", None) => Ok(Storage::F16),
        ("float32", Some("int8")) => Ok(Storage::I8),
        (d, q) => Err(Error::InvalidArgument(format!(
            "the collection holds {d} vectors{}; vecsearch maps float32, float16, and float32 \
             with int8 scalar quantisation",
            q.map_or(String::new(), |q| format!(" with {q} quantisation"))
        ))),
    }
}

/// Qdrant's name for a metric.
fn distance_name(m: Metric) -> Result<&'static str> {
    match m {
        Metric::L2 => Ok("Euclid"),
        Metric::Cosine => Ok("Cosine"),
        Metric::InnerProduct => Ok("Dot"),
        Metric::Jaccard => Err(Error::Unsupported(
            "Qdrant has no Jaccard distance (use l2, cosine or ip)".into(),
        )),
    }
}

/// A collection description can list payload indexes and more: room for them.
const INFO_REPLY: usize = 1 << 20;

/// The contract's distance from a Qdrant score: Euclid scores are
/// distances (square them, keeping the sign, so an impossible negative
/// one is caught by the range check); Cosine and Dot are similarities.
fn to_distance(m: Metric, score: f64) -> f64 {
    match m {
        Metric::L2 => score * score.abs(),
        _ => 1.0 - score,
    }
}

/// The `result` of a Qdrant reply; a non-2xx status is the server's error
/// (`{"status":{"error":..}}`), never `Ok`.
fn check(reply: Reply) -> Result<Value> {
    let status = reply.status;
    match reply.body {
        Body::Json(mut v) if (200..300).contains(&status) => {
            if v.get("status").and_then(|s| s.get("error")).is_some() {
                return Err(error_of(status, &v));
            }
            Ok(v.get_mut("result").map(Value::take).unwrap_or(Value::Null))
        }
        Body::Json(v) => Err(error_of(status, &v)),
        Body::Text(_) => Err(Error::Remote {
            status,
            message: reply.describe(),
        }),
    }
}

/// The error a reply that is not a typed success stands for.
fn qdrant_error(raw: RawReply) -> Error {
    match check(raw.parse()) {
        Err(e) => e,
        Ok(v) => malformed("unexpected reply", &v),
    }
}

fn error_of(status: u16, v: &Value) -> Error {
    let message = v
        .get("status")
        .and_then(|s| s.get("error"))
        .and_then(Value::as_str)
        .map(crate::http::shorten)
        .unwrap_or_else(|| crate::http::shorten(&v.to_string()));
    Error::Remote { status, message }
}

async fn connect(ep: &Endpoint) -> Result<(Exec, Http, String)> {
    let exec = Exec::new()?;
    let auth = ep.api_key.clone().map(|k| ("api-key", k));
    let http = Http::new(ep, auth, &exec)?;
    let url = format!("{}/collections/{}", ep.base_url(), ep.collection);
    Ok((exec, http, url))
}

/// Drops the collection `ep` names; returns whether it existed.
pub(crate) async fn drop_endpoint(ep: &Endpoint) -> Result<bool> {
    let (_exec, http, url) = connect(ep).await?;
    let reply = http.send(Method::DELETE, url, None, SMALL_REPLY).await?;
    // Qdrant answers `result: true` when it dropped something.
    let result = check(reply)?;
    result
        .as_bool()
        .ok_or_else(|| malformed("drop collection: result is not a boolean", &result))
}

impl QdrantEngine {
    /// Opens the collection `uri` names, creating it for `spec` when absent.
    /// An existing collection must have the spec's dim and distance
    /// (`InvalidArgument` otherwise; nothing is changed).
    pub async fn open(uri: &str, spec: IndexSpec) -> Result<QdrantIndex> {
        Self::open_endpoint(&Endpoint::parse_as(uri, Server::Qdrant)?, spec).await
    }

    /// [`QdrantEngine::open`] with a parsed endpoint.
    pub async fn open_endpoint(ep: &Endpoint, spec: IndexSpec) -> Result<QdrantIndex> {
        spec.validate()?;
        let distance = distance_name(spec.metric)?;
        capabilities().check("qdrant", &spec)?;
        let (exec, http, url) = connect(ep).await?;
        let inner = Inner {
            spec: spec.clone(),
            http,
            indexing_threshold_kb: ep.indexing_threshold_kb,
            full_scan_threshold_kb: ep.full_scan_threshold_kb,
            url,
            collection: ep.collection.clone(),
        };
        let reply = inner
            .http
            .send(Method::GET, inner.url.clone(), None, INFO_REPLY)
            .await?;
        if reply.status == 404 {
            inner.create(distance).await?;
        } else {
            let info = check(reply)?;
            inner.check_matches(&info, distance)?;
        }
        inner.index_payload_fields().await?;
        Ok(vecsearch_core::Index::from_engine(QdrantEngine {
            spec,
            inner: Arc::new(inner),
            _exec: exec,
        }))
    }

    /// The collection's name.
    pub fn collection(&self) -> &str {
        &self.inner.collection
    }
}

impl Inner {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        limit: usize,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.url);
        check(self.http.send(method, url, body, limit).await?)
    }

    /// A write with `wait=true`: Qdrant answers `status: completed` once it
    /// is applied; anything else would break read-your-writes.
    async fn write(&self, method: Method, path: &str, body: String) -> Result<()> {
        let result = self.call(method, path, Some(body), SMALL_REPLY).await?;
        match result.get("status").and_then(Value::as_str) {
            Some("completed") => Ok(()),
            _ => Err(malformed("write not reported completed", &result)),
        }
    }

    async fn create(&self, distance: &str) -> Result<()> {
        let (vectors, quantization) = vectors_config(&self.spec, distance);
        let mut body = json!({
            "vectors": vectors,
            "hnsw_config": {"m": self.spec.m, "ef_construct": self.spec.ef_construction}
        });
        if !quantization.is_null() {
            body["quantization_config"] = quantization;
        }
        if let Some(kb) = self.indexing_threshold_kb {
            body["optimizers_config"] = json!({ "indexing_threshold": kb });
        }
        if let Some(kb) = self.full_scan_threshold_kb {
            body["hnsw_config"]["full_scan_threshold"] = json!(kb);
        }
        match self
            .call(Method::PUT, "", Some(body.to_string()), SMALL_REPLY)
            .await
        {
            // Qdrant answers `result: true` when it created the collection;
            // anything else means there is none.
            Ok(Value::Bool(true)) => Ok(()),
            Ok(other) => Err(malformed(
                "create collection: result is not true, so no collection was made",
                &other,
            )),
            // Created by someone else meanwhile: check it like any existing one.
            Err(Error::Remote { status: 409, .. }) => {
                let info = self.call(Method::GET, "", None, INFO_REPLY).await?;
                self.check_matches(&info, distance)
            }
            Err(e) => Err(e),
        }
    }

    /// A payload index per schema field (Qdrant answers filters on indexed
    /// fields from the index; creating an existing index again is a no-op).
    async fn index_payload_fields(&self) -> Result<()> {
        for f in self.spec.schema.fields() {
            let body = json!({
                "field_name": f.name,
                "field_schema": translate::qdrant_index_type(f.ty),
            });
            self.write(Method::PUT, "/index?wait=true", body.to_string())
                .await?;
        }
        Ok(())
    }

    /// The Qdrant form of a (validated) filter.
    fn filter_json(&self, filter: &Filter) -> Result<Value> {
        translate::qdrant(filter, &self.spec.schema)
    }

    /// The payload of `id`: `None` if absent.
    async fn retrieve_payload(&self, id: u64) -> Result<Option<Payload>> {
        let body = format!("{{\"ids\":[{id}],\"with_vector\":false,\"with_payload\":true}}");
        let limit = rows_limit(1, 0).saturating_add(PAYLOAD_REPLY);
        let result = self
            .call(Method::POST, "/points", Some(body), limit)
            .await?;
        let rows = result
            .as_array()
            .ok_or_else(|| malformed("retrieve: result is not a list", &result))?;
        let row = match rows.as_slice() {
            [] => return Ok(None),
            [row] if row.get("id").and_then(parse_u64) == Some(id) => row,
            _ => {
                return Err(bad_reply(
                    "Qdrant retrieve",
                    format!("rows that are not id {id}'s"),
                ))
            }
        };
        let raw = row.get("payload").cloned().unwrap_or_else(|| json!({}));
        let raw = if raw.is_null() { json!({}) } else { raw };
        let p = Payload::from_json(&raw)
            .and_then(|p| self.spec.schema.check(&p).map(|()| p))
            .map_err(|e| bad_reply("Qdrant retrieve", format!("id {id}'s payload: {e}")))?;
        Ok(Some(p.normalised(&self.spec.schema)))
    }

    /// A page of Qdrant's scroll from the id after `after`.
    async fn scroll(&self, after: Option<u64>, limit: usize) -> Result<ScanPage> {
        let mut body = json!({"limit": limit, "with_vector": true, "with_payload": true});
        if let Some(a) = after {
            body["offset"] = json!(a + 1);
        }
        let reply = rows_limit(limit, self.spec.dim)
            .saturating_add(limit.saturating_mul(SCAN_PAYLOAD_BYTES));
        let result = self
            .call(
                Method::POST,
                "/points/scroll",
                Some(body.to_string()),
                reply,
            )
            .await?;
        let points = result
            .get("points")
            .and_then(Value::as_array)
            .ok_or_else(|| malformed("scroll: no points", &result))?;
        let mut records = Vec::with_capacity(points.len());
        for p in points {
            let id = p
                .get("id")
                .and_then(parse_u64)
                .ok_or_else(|| bad_reply("Qdrant scroll", "a point without a u64 id"))?;
            let vector = p
                .get("vector")
                .and_then(Value::as_array)
                .and_then(|v| {
                    let v: Option<Vec<f64>> = v.iter().map(Value::as_f64).collect();
                    v.and_then(|v| finite_vector(&v, self.spec.dim))
                })
                .ok_or_else(|| {
                    bad_reply("Qdrant scroll", format!("point {id} has no usable vector"))
                })?;
            let raw = match p.get("payload") {
                None | Some(Value::Null) => json!({}),
                Some(v) => v.clone(),
            };
            let payload = Payload::from_json(&raw)
                .and_then(|pl| self.spec.schema.check(&pl).map(|()| pl))
                .map_err(|e| bad_reply("Qdrant scroll", format!("point {id}'s payload: {e}")))?
                .normalised(&self.spec.schema);
            records.push(Record {
                id,
                vector,
                payload,
            });
        }
        let next = match result.get("next_page_offset") {
            None | Some(Value::Null) => None,
            Some(_) => records.last().map(|r| r.id),
        };
        Ok(ScanPage { records, next })
    }

    /// Every id, ascending, from Qdrant's scroll without vectors or
    /// payloads (`with_vector: false, with_payload: false`).
    async fn all_ids(&self) -> Result<Vec<u64>> {
        let mut ids: Vec<u64> = Vec::new();
        let mut from: Option<u64> = None;
        loop {
            let mut body = json!({"limit": IDS_PAGE, "with_vector": false, "with_payload": false});
            if let Some(f) = from {
                body["offset"] = json!(f);
            }
            let result = self
                .call(
                    Method::POST,
                    "/points/scroll",
                    Some(body.to_string()),
                    rows_limit(IDS_PAGE, 0),
                )
                .await?;
            let points = result
                .get("points")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed("scroll: no points", &result))?;
            if points.len() > IDS_PAGE {
                return Err(bad_reply(
                    "Qdrant scroll",
                    format!("{} points for a page of {IDS_PAGE}", points.len()),
                ));
            }
            for p in points {
                let id = p
                    .get("id")
                    .and_then(parse_u64)
                    .ok_or_else(|| bad_reply("Qdrant scroll", "a point without a u64 id"))?;
                // Ascending, and past the page asked for: a reply that goes
                // back could otherwise scroll for ever.
                if ids.last().is_some_and(|&l| l >= id) || from.is_some_and(|f| id < f) {
                    return Err(bad_reply("Qdrant scroll", "ids out of order"));
                }
                ids.push(id);
            }
            let more = result.get("next_page_offset").is_some_and(|v| !v.is_null());
            match ids.last().and_then(|l| l.checked_add(1)) {
                Some(f) if more && !points.is_empty() => from = Some(f),
                _ => return Ok(ids),
            }
        }
    }

    /// Exact count of the points `filter` (Qdrant form) admits.
    async fn count_json(&self, filter: Option<&Value>) -> Result<usize> {
        let body = match filter {
            Some(f) => json!({"exact": true, "filter": f}),
            None => json!({"exact": true}),
        };
        let result = self
            .call(
                Method::POST,
                "/points/count",
                Some(body.to_string()),
                SMALL_REPLY,
            )
            .await?;
        result
            .get("count")
            .and_then(parse_u64)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| malformed("count: no count", &result))
    }

    fn check_matches(&self, info: &Value, distance: &str) -> Result<()> {
        let vectors = info
            .pointer("/config/params/vectors")
            .ok_or_else(|| malformed("collection info: no config.params.vectors", info))?;
        let single = |v: &Value| {
            Some((
                v.get("size")?.as_u64()?,
                v.get("distance")?.as_str()?.to_string(),
            ))
        };
        let (size, dist) = match single(vectors) {
            Some(one) => one,
            // Named vectors: each a well-formed {size, distance}. The
            // collection is the user's, and not one vecsearch can use.
            None if vectors.get("size").is_none()
                && vectors
                    .as_object()
                    .is_some_and(|m| !m.is_empty() && m.values().all(|v| single(v).is_some())) =>
            {
                return Err(Error::InvalidArgument(format!(
                    "collection {} has named vectors; vecsearch needs one unnamed vector",
                    self.collection
                )))
            }
            // Anything else is a description no Qdrant sends: the server's fault.
            None => {
                return Err(malformed(
                    "collection info: config.params.vectors is neither {size, distance} nor named vectors",
                    vectors,
                ))
            }
        };
        if size != self.spec.dim as u64 || dist != distance {
            return Err(Error::InvalidArgument(format!(
                "collection {} holds {size}-dimensional vectors with distance {dist}, but dim {} \
                 and distance {distance} were asked for (nothing was changed)",
                self.collection, self.spec.dim
            )));
        }
        let held = stored_kind(info, vectors)?;
        if held != self.spec.storage {
            return Err(Error::InvalidArgument(format!(
                "collection {} stores vectors as {held}, but {} was asked for (nothing was changed)",
                self.collection, self.spec.storage
            )));
        }
        Ok(())
    }

    /// Waits until the optimizers are idle (status green, counts holding
    /// still between two looks) or [`INDEX_TIMEOUT`] passes, then reports
    /// points outside the HNSW-indexed segments as unindexed, or all of them
    /// when the segments are (on average) under the full-scan threshold.
    async fn indexing(&self) -> Result<IndexProgress> {
        let start = Instant::now();
        let mut last = None;
        let mut nudged = false;
        loop {
            let info = self.call(Method::GET, "", None, INFO_REPLY).await?;
            let count = |key: &str| match info.get(key) {
                None | Some(Value::Null) => Ok(0),
                Some(v) => parse_u64(v)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| {
                        malformed(&format!("collection info: {key} is not a count"), &info)
                    }),
            };
            let (points, indexed) = (count("points_count")?, count("indexed_vectors_count")?);
            let segments = count("segments_count")?.max(1);
            let progress = if points / segments < self.full_scan_below(&info)? {
                IndexProgress::new(points, points)
            } else {
                IndexProgress::new(points, points.saturating_sub(indexed))
            };
            match info.get("status").and_then(Value::as_str) {
                Some("green") if progress.complete() || last == Some(progress) => {
                    return Ok(progress)
                }
                Some("green") => last = Some(progress),
                Some("yellow") => last = None,
                // Optimisations pending but not started (after a restart):
                // an update of the optimizer config starts them.
                Some("grey") if !nudged => {
                    let body = "{\"optimizers_config\":{}}".to_string();
                    self.call(Method::PATCH, "", Some(body), SMALL_REPLY)
                        .await?;
                    nudged = true;
                    last = None;
                }
                Some("grey") => last = None,
                Some("red") => {
                    return Err(Error::Unavailable(format!(
                        "collection {} reports an optimizer error: {}",
                        self.collection,
                        info.get("optimizer_status")
                            .map_or_else(String::new, Value::to_string)
                    )))
                }
                _ => return Err(malformed("collection info: unknown status", &info)),
            }
            if start.elapsed() > INDEX_TIMEOUT {
                return Ok(progress);
            }
            self.http.sleep(Duration::from_millis(500)).await?;
        }
    }

    /// Qdrant searches a segment of fewer vectors than this by exact scan,
    /// graph or not (its `full_scan_threshold`, in KB of f32 vectors).
    fn full_scan_below(&self, info: &Value) -> Result<usize> {
        let kb = info
            .pointer("/config/hnsw_config/full_scan_threshold")
            .and_then(parse_u64)
            .ok_or_else(|| malformed("collection info: no hnsw full_scan_threshold", info))?;
        let row = (self.spec.dim * 4).max(1) as u64;
        Ok(usize::try_from(kb.saturating_mul(1024) / row).unwrap_or(usize::MAX))
    }

    /// The point `id` (its vector when `with_vector`; else an empty one):
    /// `None` for an empty list, `Remote` for rows that are not `id`'s.
    async fn retrieve(&self, id: u64, with_vector: bool) -> Result<Option<Vec<f32>>> {
        let body =
            format!("{{\"ids\":[{id}],\"with_vector\":{with_vector},\"with_payload\":false}}");
        let dim = if with_vector { self.spec.dim } else { 0 };
        let url = format!("{}/points", self.url);
        let raw = self
            .http
            .send_raw(Method::POST, url, Some(body), rows_limit(1, dim))
            .await?;
        let points: Vec<QdrantPoint> = qdrant_result(raw, "Qdrant retrieve", qdrant_error)?;
        check_row_ids("Qdrant retrieve", &[id], &points, |p| p.id.get())?;
        let Some(p) = points.first() else {
            return Ok(None);
        };
        if !with_vector {
            return Ok(Some(Vec::new()));
        }
        p.vector
            .as_deref()
            .and_then(|v| finite_vector(v, self.spec.dim))
            .map(Some)
            .ok_or_else(|| bad_reply("Qdrant retrieve", "the point has no usable vector"))
    }

    /// `ids` are distinct (the front door keeps the last of equal ids: one
    /// request has no defined order) and the vectors prepared (cosine
    /// normalised in f64: Qdrant normalises in f32, where a tiny vector
    /// loses its direction).
    async fn upsert(
        &self,
        ids: &[u64],
        vectors: &[Vec<f32>],
        payloads: Option<&[Payload]>,
    ) -> Result<()> {
        if let Some(ps) = payloads {
            ps.iter().try_for_each(translate::qdrant_payload_fits)?;
        }
        let per = (MAX_BODY_BYTES / (32 + self.spec.dim * 16)).clamp(1, MAX_POINTS);
        let mut start = 0;
        while start < ids.len() {
            let mut body = String::from("{\"points\":[");
            let mut i = start;
            // A point replaces the whole point, payload included: an upsert
            // without payload leaves the id with none.
            while i < ids.len() && (i == start || (i - start < per && body.len() < MAX_BODY_BYTES))
            {
                if i > start {
                    body.push(',');
                }
                body.push_str(&format!("{{\"id\":{},\"vector\":", ids[i]));
                push_vector(&mut body, &vectors[i]);
                if let Some(p) = payloads.map(|p| &p[i]).filter(|p| !p.is_empty()) {
                    body.push_str(",\"payload\":");
                    body.push_str(&p.to_json().to_string());
                }
                body.push('}');
                i += 1;
            }
            body.push_str("]}");
            self.write(Method::PUT, "/points?wait=true", body).await?;
            start = i;
        }
        Ok(())
    }

    /// Hits asked of Qdrant for `k`: twice as many for f16 collections,
    /// whose scores use the query rounded to f16 as well, so the best `k`
    /// by exact distance are among them.
    fn fetch(&self, k: usize) -> usize {
        match self.spec.storage {
            Storage::F16 => k.saturating_mul(2),
            _ => k,
        }
    }

    fn search_body(&self, q: &[f32], k: usize, params: &Ask, exact: bool) -> String {
        let ef = params.ef.max(k);
        let (fetch, with_vector) = (self.fetch(k), self.spec.storage == Storage::F16);
        let mut body = String::from("{\"vector\":");
        push_vector(&mut body, q);
        body.push_str(&format!(
            ",\"limit\":{fetch},\"with_payload\":false,\"with_vector\":{with_vector},\"params\":{{\"hnsw_ef\":{ef},\"exact\":{exact}"
        ));
        if self.spec.storage == Storage::I8 {
            // Rescore as native does: the whole `ef` list, by the originals.
            let oversampling = (ef as f64 / k.max(1) as f64).max(1.0);
            body.push_str(&format!(
                ",\"quantization\":{{\"rescore\":true,\"oversampling\":{oversampling}}}"
            ));
        }
        body.push('}');
        if let Some(f) = &params.filter_json {
            body.push_str(",\"filter\":");
            body.push_str(f);
        }
        body.push('}');
        body
    }

    fn parse_hits(
        &self,
        q: &[f32],
        hits: Vec<QdrantHit>,
        k: usize,
        params: &Ask,
    ) -> Result<Vec<Neighbor>> {
        let fetch = self.fetch(k);
        let mut raw = Vec::with_capacity(hits.len().min(fetch.saturating_add(1)));
        let mut vectors = Vec::new();
        for h in hits {
            let id = h.id.get().ok_or_else(|| {
                bad_reply(
                    "Qdrant search",
                    format!("a hit whose id {:?} is not a u64", h.id),
                )
            })?;
            raw.push((id, to_distance(self.spec.metric, h.score)));
            if self.spec.storage == Storage::F16 {
                let v = h
                    .vector
                    .as_deref()
                    .and_then(|v| finite_vector(v, self.spec.dim))
                    .ok_or_else(|| {
                        bad_reply("Qdrant search", format!("hit {id} has no usable vector"))
                    })?;
                vectors.push((id, v));
            }
        }
        let rules = SearchRules {
            what: "Qdrant search",
            metric: self.spec.metric,
            k: fetch,
            max_id: u64::MAX,
            filter: params.filter.as_ref(),
        };
        let mut found = check_hits(&rules, raw)?;
        if self.spec.storage == Storage::F16 {
            // The contract's distance: the f32 query to the stored vector.
            for n in &mut found {
                if let Some((_, v)) = vectors.iter().find(|(id, _)| *id == n.id) {
                    n.distance = exact_distance(self.spec.metric, q, v) as f32;
                }
            }
            sort_neighbors(&mut found);
            found.truncate(k);
        }
        Ok(found)
    }

    /// Searches; a query answered with fewer than `k` hits is asked again
    /// as an exact scan. Qdrant's graph can come back short (2 of 50 hits,
    /// measured, over a segment with most points deleted while it is being
    /// rebuilt), and the contract promises `min(k, len)` results; where
    /// fewer exist, the exact scan confirms it.
    async fn search_many(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        params: &Ask,
    ) -> Result<Vec<Vec<Neighbor>>> {
        if k == 0
            || params
                .filter
                .as_ref()
                .is_some_and(|f| f.expr().is_empty_allow_list())
        {
            return Ok(vec![Vec::new(); queries.len()]);
        }
        // One hit more than asked, and more while the last one ties the
        // k-th: a tie at the boundary goes to the lowest id (the front
        // door sorts and truncates), so the whole tied group must come back.
        let mut want = k.saturating_add(1);
        let mut found = self.search_round(queries, want, params, false).await?;
        let short: Vec<usize> = (0..found.len()).filter(|&i| found[i].len() < k).collect();
        if !short.is_empty() {
            let again: Vec<Vec<f32>> = short.iter().map(|&i| queries[i].clone()).collect();
            let exact = self.search_round(&again, want, params, true).await?;
            for (i, list) in short.into_iter().zip(exact) {
                found[i] = list;
            }
        }
        loop {
            let tied: Vec<usize> = (0..found.len())
                .filter(|&i| boundary_tied(&found[i], k, want))
                .collect();
            if tied.is_empty() || want >= MAX_TIE_WIDEN {
                return Ok(found);
            }
            want = want.saturating_mul(2).min(MAX_TIE_WIDEN);
            let again: Vec<Vec<f32>> = tied.iter().map(|&i| queries[i].clone()).collect();
            let wider = self.search_round(&again, want, params, false).await?;
            for (i, list) in tied.into_iter().zip(wider) {
                if list.len() >= found[i].len() {
                    found[i] = list;
                }
            }
        }
    }

    /// One `search/batch` request (by exact scan when `exact`).
    async fn search_round(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        params: &Ask,
        exact: bool,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let mut body = String::from("{\"searches\":[");
        for (i, q) in queries.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&self.search_body(q, k, params, exact));
        }
        body.push_str("]}");
        let per_hit = match self.spec.storage {
            Storage::F16 => PER_HIT.saturating_add(self.spec.dim.saturating_mul(PER_COMPONENT)),
            _ => PER_HIT,
        };
        let hits = queries.len().saturating_mul(self.fetch(k));
        let limit = REPLY_BASE.saturating_add(hits.saturating_mul(per_hit));
        let url = format!("{}/points/search/batch", self.url);
        let raw = self
            .http
            .send_raw(Method::POST, url, Some(body), limit)
            .await?;
        let lists: Vec<Vec<QdrantHit>> = qdrant_result(raw, "Qdrant search", qdrant_error)?;
        if lists.len() != queries.len() {
            return Err(bad_reply(
                "Qdrant search",
                format!(
                    "{} lists of hits for {} queries",
                    lists.len(),
                    queries.len()
                ),
            ));
        }
        lists
            .into_iter()
            .zip(queries)
            .map(|(hits, q)| self.parse_hits(q, hits, k, params))
            .collect()
    }
}

#[async_trait]
impl vecsearch_core::Engine for QdrantEngine {
    fn backend(&self) -> &str {
        "qdrant"
    }

    fn spec(&self) -> &IndexSpec {
        &self.spec
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
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

    async fn set_payload(&self, id: u64, payload: Payload) -> Result<bool> {
        translate::qdrant_payload_fits(&payload)?;
        if self.inner.retrieve(id, false).await?.is_none() {
            return Ok(false);
        }
        // PUT overwrites the whole payload (POST would merge).
        let body = json!({"payload": payload.to_json(), "points": [id]});
        self.inner
            .write(Method::PUT, "/points/payload?wait=true", body.to_string())
            .await?;
        Ok(true)
    }

    async fn get_payload(&self, id: u64) -> Result<Option<Payload>> {
        self.inner.retrieve_payload(id).await
    }

    /// Qdrant's scroll, which pages by id.
    async fn scan(&self, after: Option<u64>, limit: usize) -> Result<ScanPage> {
        self.inner.scroll(after, limit).await
    }

    /// Qdrant's scroll asked for ids alone (no vectors or payloads sent).
    async fn ids(&self) -> Result<Vec<u64>> {
        self.inner.all_ids().await
    }

    async fn count_where(&self, filter: &Filter) -> Result<usize> {
        let f = self.inner.filter_json(filter)?;
        self.inner.count_json(Some(&f)).await
    }

    async fn delete_where(&self, filter: &Filter) -> Result<usize> {
        let f = self.inner.filter_json(filter)?;
        let n = self.inner.count_json(Some(&f)).await?;
        if n > 0 {
            let body = json!({"filter": f});
            self.inner
                .write(Method::POST, "/points/delete?wait=true", body.to_string())
                .await?;
        }
        Ok(n)
    }

    async fn remove(&self, id: u64) -> Result<bool> {
        let body = format!("{{\"points\":[{id}]}}");
        match self.inner.retrieve(id, false).await {
            Ok(None) => Ok(false),
            Ok(Some(_)) => {
                self.inner
                    .write(Method::POST, "/points/delete?wait=true", body)
                    .await?;
                Ok(true)
            }
            // A reply that cannot say whether the id is there: delete it
            // anyway (the caller asked for it gone), then report the reply.
            Err(e @ Error::Remote { .. }) => {
                let _ = self
                    .inner
                    .write(Method::POST, "/points/delete?wait=true", body)
                    .await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    async fn fetch(&self, id: u64) -> Result<Option<Vec<f32>>> {
        self.inner.retrieve(id, true).await
    }

    /// Waits (up to 20 minutes) until Qdrant's optimizers are idle. Points
    /// Qdrant answers by exact scan stay unindexed: those in segments under
    /// the indexing threshold (no graph is built), and all of them when its
    /// segments are under the full-scan threshold (10 000 KB of vectors
    /// each, by default). Create the collection with
    /// `?indexing_threshold_kb=10&full_scan_threshold_kb=10` to search a graph.
    async fn finish_indexing(&self) -> Result<IndexProgress> {
        self.inner.indexing().await
    }

    async fn contains(&self, id: u64) -> Result<bool> {
        Ok(self.inner.retrieve(id, false).await?.is_some())
    }

    async fn count(&self) -> Result<usize> {
        self.inner.count_json(None).await
    }

    async fn knn(
        &self,
        queries: Vec<Vec<f32>>,
        k: usize,
        ef: usize,
        filter: Option<&IdFilter>,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let filter_json = filter
            .map(|f| self.inner.filter_json(f.expr()).map(|v| v.to_string()))
            .transpose()?;
        let params = Ask {
            ef,
            filter: filter.cloned(),
            filter_json,
        };
        if queries.len() <= QUERIES_PER_REQUEST {
            return self.inner.search_many(&queries, k, &params).await;
        }
        let groups: Vec<Vec<Vec<f32>>> = queries
            .chunks(QUERIES_PER_REQUEST)
            .map(<[_]>::to_vec)
            .collect();
        let inner = Arc::clone(&self.inner);
        let params = Arc::new(params);
        let parts = self
            .inner
            .http
            .map_concurrent(groups, SEARCH_WIDTH, move |group| {
                let (inner, params) = (Arc::clone(&inner), Arc::clone(&params));
                async move { inner.search_many(&group, k, &params).await }
            })
            .await?;
        Ok(parts.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_become_distances() {
        assert_eq!(to_distance(Metric::L2, 3.0), 9.0);
        assert_eq!(to_distance(Metric::L2, -3.0), -9.0);
        assert_eq!(to_distance(Metric::Cosine, 0.25), 0.75);
        assert_eq!(to_distance(Metric::InnerProduct, 2.0), -1.0);
        assert!(matches!(
            distance_name(Metric::Jaccard),
            Err(Error::Unsupported(_))
        ));
    }

    #[test]
    fn storage_kinds_map_both_ways() {
        for kind in [Storage::F32, Storage::F16, Storage::I8] {
            let spec = IndexSpec::new(4, Metric::L2).with_storage(kind);
            let (vectors, quantization) = vectors_config(&spec, "Euclid");
            let info = json!({"config": {"params": {"vectors": vectors},
                "quantization_config": quantization}});
            let back = stored_kind(&info, &info["config"]["params"]["vectors"]);
            assert_eq!(back.ok(), Some(kind));
        }
        let v = json!({"size": 4, "distance": "Euclid", "datatype": "uint8"});
        let info = json!({"config": {"quantization_config": null}});
        assert!(matches!(
            stored_kind(&info, &v),
            Err(Error::InvalidArgument(_))
        ));
        let v = json!({"size": 4, "distance": "Euclid"});
        let info = json!({"config": {"quantization_config": {"binary": {}}}});
        assert!(matches!(
            stored_kind(&info, &v),
            Err(Error::InvalidArgument(_))
        ));
        let v = json!({"size": 4, "distance": "Euclid", "datatype": 16});
        assert!(matches!(stored_kind(&info, &v), Err(Error::Remote { .. })));
    }

    #[test]
    fn errors_are_errors() {
        let r = |status, body: &str| Reply {
            status,
            body: Body::Json(serde_json::from_str(body).unwrap()),
            request: "POST /collections/x/points".into(),
        };
        assert!(matches!(
            check(r(
                404,
                r#"{"status":{"error":"Not found: Collection `x` doesn't exist!"}}"#
            )),
            Err(Error::Remote { status: 404, .. })
        ));
        assert!(matches!(
            check(r(200, r#"{"status":{"error":"odd"},"result":null}"#)),
            Err(Error::Remote { .. })
        ));
        assert_eq!(
            check(r(200, r#"{"status":"ok","result":{"count":3}}"#)).unwrap()["count"],
            3
        );
    }
}

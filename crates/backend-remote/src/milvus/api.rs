//! Milvus's two REST dialects: v1 (Milvus 2.3, `/v1/vector/...`) and v2
//! (Milvus 2.4+, `/v2/vectordb/...`). Request bodies and the reply envelope.

use reqwest::Method;
use serde_json::{json, Value};
use vecsearch_core::{Error, Metric, Result};

use super::schema::mgmt_call;

use crate::http::{rows_limit, Body, Http, RawReply, Reply, PER_HIT, REPLY_BASE, SMALL_REPLY};
use crate::json::{malformed, push_ids, push_vector, string_lit};
use crate::wire::{milvus_rows, MilvusHit, WireId};

/// Which REST API the server speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Milvus 2.3: REST v1; collections are created through the management
    /// API at this base URL (v1's own create makes autoID collections).
    V1 { mgmt: String },
    /// Milvus 2.4+: REST v2.
    V2,
}

/// The hits of a management API search of one query: `results` holds
/// `topks` (hits per query), `scores` and `ids.IdField.IntId.data`, the
/// last two left out when there are none.
fn mgmt_hits(reply: &Value) -> Result<Vec<MilvusHit>> {
    let what = "Milvus search";
    let results = reply
        .get("results")
        .ok_or_else(|| malformed("search: no results", reply))?;
    let list = |key: &str| match results.pointer(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a.clone()),
        Some(_) => Err(malformed(&format!("search: {key} is not a list"), results)),
    };
    let mut n = 0u64;
    for t in list("/topks")? {
        let t = t
            .as_u64()
            .ok_or_else(|| malformed("search: topks are not counts", results))?;
        n = n.saturating_add(t);
    }
    let (scores, ids) = (list("/scores")?, list("/ids/IdField/IntId/data")?);
    if scores.len() as u64 != n || ids.len() as u64 != n {
        return Err(malformed(
            &format!(
                "search: {n} hits announced, {} scores, {} int ids",
                scores.len(),
                ids.len()
            ),
            results,
        ));
    }
    ids.iter()
        .zip(&scores)
        .map(|(id, score)| {
            let id = id.as_u64().ok_or_else(|| {
                crate::check::bad_reply(what, format!("a hit whose id {id} is not a u64"))
            })?;
            let distance = score.as_f64().ok_or_else(|| {
                crate::check::bad_reply(what, format!("id {id}: score {score} is not a number"))
            })?;
            Ok(MilvusHit {
                id: WireId::Num(id),
                distance,
            })
        })
        .collect()
}

/// Milvus's error code for a collection that does not exist.
pub(crate) const COLLECTION_NOT_FOUND: u16 = 100;
/// Milvus's largest `limit` for search and query.
pub(crate) const MAX_TOPK: usize = 16384;

/// The data part of a Milvus reply: HTTP 200 and `code` 200 (v1) or 0 (v2);
/// anything else is the server's error, never `Ok`.
pub(crate) fn check(reply: Reply) -> Result<Value> {
    let json = match reply.body {
        Body::Json(v) if reply.status == 200 => v,
        _ => {
            return Err(Error::Remote {
                status: reply.status,
                message: reply.describe(),
            })
        }
    };
    let code = json
        .get("code")
        .and_then(Value::as_i64)
        .ok_or_else(|| malformed("no code", &json))?;
    if code == 200 || code == 0 {
        return Ok(json);
    }
    let message = json
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("(no message)");
    Err(Error::Remote {
        status: u16::try_from(code).unwrap_or(u16::MAX),
        message: format!("Milvus error {code}: {}", crate::http::shorten(message)),
    })
}

/// The error a reply that is not a typed success stands for.
fn milvus_error(raw: RawReply) -> Error {
    match check(raw.parse()) {
        Err(e) => e,
        Ok(v) => malformed("unexpected reply", &v),
    }
}

/// The metric's Milvus name; Jaccard over float vectors is not served.
pub(crate) fn metric_name(m: Metric) -> Result<&'static str> {
    match m {
        Metric::L2 => Ok("L2"),
        Metric::Cosine => Ok("COSINE"),
        Metric::InnerProduct => Ok("IP"),
        Metric::Jaccard => Err(Error::Unsupported(
            "Milvus computes Jaccard only on binary vectors; vecsearch stores float vectors \
             (use l2, cosine or ip)"
                .into(),
        )),
    }
}

/// Converts a Milvus score to the contract's distance: L2 is already
/// squared; IP and COSINE are similarities. The range is checked after.
pub(crate) fn to_distance(m: Metric, score: f64) -> f64 {
    match m {
        Metric::L2 => score,
        _ => 1.0 - score,
    }
}

/// A collection description (fields, indexes, properties): room for a wide schema.
pub(crate) const DESCRIBE_REPLY: usize = 1 << 20;

/// Requests of one collection in one dialect.
pub(crate) struct Api {
    pub http: Http,
    pub base: String,
    pub dialect: Dialect,
    pub collection: String,
}

impl Api {
    fn path(&self, v1: &str, v2: &str) -> String {
        match self.dialect {
            Dialect::V1 { .. } => format!("{}/v1/vector/{v1}", self.base),
            Dialect::V2 => format!("{}/v2/vectordb/{v2}", self.base),
        }
    }

    /// POSTs `body` and returns the checked reply, refusing one longer
    /// than `limit` bytes.
    pub async fn post(&self, v1: &str, v2: &str, body: String, limit: usize) -> Result<Value> {
        let url = self.path(v1, v2);
        check(self.http.send(Method::POST, url, Some(body), limit).await?)
    }

    fn coll(&self) -> String {
        string_lit(&self.collection)
    }

    /// The collection's description; `None` when it does not exist.
    pub async fn describe(&self) -> Result<Option<Value>> {
        let reply = match self.dialect {
            Dialect::V1 { .. } => {
                let url = format!(
                    "{}/v1/vector/collections/describe?collectionName={}",
                    self.base, self.collection
                );
                self.http
                    .send(Method::GET, url, None, DESCRIBE_REPLY)
                    .await?
            }
            Dialect::V2 => {
                let url = format!("{}/v2/vectordb/collections/describe", self.base);
                let body = format!("{{\"collectionName\":{}}}", self.coll());
                self.http
                    .send(Method::POST, url, Some(body), DESCRIBE_REPLY)
                    .await?
            }
        };
        match check(reply) {
            Ok(mut v) => match v.get_mut("data").map(Value::take) {
                Some(data @ Value::Object(_)) => Ok(Some(data)),
                _ => Err(malformed("describe: data is not an object", &v)),
            },
            Err(Error::Remote { status, message })
                if status == COLLECTION_NOT_FOUND
                    || message.contains("collection not found")
                    || message.contains("can't find collection") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Drops the collection (no error when it is absent).
    pub async fn drop_collection(&self) -> Result<()> {
        let body = format!("{{\"collectionName\":{}}}", self.coll());
        self.post("collections/drop", "collections/drop", body, SMALL_REPLY)
            .await
            .map(|_| ())
    }

    /// Upserts rows; returns how many the server says it wrote.
    pub async fn upsert(
        &self,
        pk: &str,
        vf: &str,
        ids: &[u64],
        vectors: &[&[f32]],
        payloads: Option<&[vecsearch_core::Payload]>,
    ) -> Result<u64> {
        let mut body = String::with_capacity(
            64 + ids.len() * (24 + vectors.first().map_or(0, |v| v.len() * 12)),
        );
        body.push_str(&format!("{{\"collectionName\":{},\"data\":[", self.coll()));
        let (pk, vf) = (string_lit(pk), string_lit(vf));
        for (i, (id, v)) in ids.iter().zip(vectors).enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!("{{{pk}:{id},{vf}:"));
            push_vector(&mut body, v);
            // Payload fields go to the dynamic field, one key each.
            if let Some(p) = payloads.map(|p| &p[i]) {
                for (name, value) in p.iter() {
                    body.push_str(&format!(
                        ",{}:{}",
                        string_lit(name),
                        crate::translate::milvus_value(value)
                    ));
                }
            }
            body.push('}');
        }
        body.push_str("]}");
        let reply = self
            .post("upsert", "entities/upsert", body, rows_limit(ids.len(), 0))
            .await?;
        reply
            .get("data")
            .and_then(|d| d.get("upsertCount"))
            .and_then(Value::as_u64)
            .ok_or_else(|| malformed("upsert: no data.upsertCount", &reply))
    }

    /// Deletes rows by id.
    pub async fn delete(&self, pk: &str, ids: &[u64]) -> Result<()> {
        let mut list = String::new();
        push_ids(&mut list, ids.iter().copied());
        let body = match self.dialect {
            Dialect::V1 { .. } => format!("{{\"collectionName\":{},\"id\":{list}}}", self.coll()),
            Dialect::V2 => format!(
                "{{\"collectionName\":{},\"filter\":{}}}",
                self.coll(),
                string_lit(&format!("{pk} in {list}"))
            ),
        };
        self.post("delete", "entities/delete", body, rows_limit(ids.len(), 0))
            .await
            .map(|_| ())
    }

    /// Rows matching `filter`, with `fields`; at most `limit`. `None` is
    /// what `count(*)` needs: v1 must be sent `limit: 0` (its default of 100
    /// makes Milvus refuse to count), v2 no limit at all. A reply longer
    /// than `reply_limit` bytes is refused.
    pub async fn query(
        &self,
        filter: &str,
        fields: &[&str],
        limit: Option<usize>,
        reply_limit: usize,
    ) -> Result<Vec<Value>> {
        let fields: Vec<Value> = fields.iter().map(|f| Value::from(*f)).collect();
        let mut body = format!(
            "{{\"collectionName\":{},\"filter\":{},\"outputFields\":{}",
            self.coll(),
            string_lit(filter),
            Value::Array(fields)
        );
        match (limit, &self.dialect) {
            (Some(n), _) => body.push_str(&format!(",\"limit\":{n}")),
            (None, Dialect::V1 { .. }) => body.push_str(",\"limit\":0"),
            (None, Dialect::V2) => {}
        }
        body.push('}');
        let reply = self
            .post("query", "entities/query", body, reply_limit)
            .await?;
        take_data_array(reply, "query")
    }

    /// One query vector's nearest hits, as sent (typed, unchecked).
    pub async fn search(
        &self,
        vf: &str,
        q: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&str>,
        metric: &str,
    ) -> Result<Vec<MilvusHit>> {
        let mgmt = match &self.dialect {
            Dialect::V1 { mgmt } => mgmt,
            Dialect::V2 => return self.search_v2(vf, q, k, ef, filter, metric).await,
        };
        // REST v1's search drops every search parameter (it sends Milvus
        // only a consistency level), so HNSW ran at its default ef whatever
        // was asked: recall stayed at 0.84 from ef 10 to 256 on 20,000
        // points (measured). The management API's search takes them.
        let mut body = json!({
            "collection_name": self.collection,
            "search_params": [
                {"key": "anns_field", "value": vf},
                {"key": "topk", "value": k.to_string()},
                {"key": "metric_type", "value": metric},
                {"key": "params", "value": json!({"ef": ef}).to_string()},
                {"key": "round_decimal", "value": "-1"}
            ],
            "vectors": [q],
            "dsl_type": 1,
            "nq": 1,
            // Bounded staleness, as REST v1's own search (a strong read
            // waits ~200 ms for the next time tick): `sync` waits for writes.
            "guarantee_timestamp": 2
        });
        if let Some(f) = filter {
            body["dsl"] = json!(f);
        }
        let reply = mgmt_call(&self.http, mgmt, Method::POST, "search", body).await?;
        mgmt_hits(&reply)
    }

    async fn search_v2(
        &self,
        vf: &str,
        q: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&str>,
        metric: &str,
    ) -> Result<Vec<MilvusHit>> {
        let mut body = format!("{{\"collectionName\":{},", self.coll());
        body.push_str("\"data\":[");
        push_vector(&mut body, q);
        body.push_str(&format!(
            "],\"annsField\":{},\"limit\":{k},\"searchParams\":{{\"metricType\":\"{metric}\",\"params\":{{\"ef\":{ef}}}}}",
            string_lit(vf)
        ));
        if let Some(f) = filter {
            body.push_str(&format!(",\"filter\":{}", string_lit(f)));
        }
        body.push('}');
        let limit = REPLY_BASE.saturating_add(k.saturating_mul(PER_HIT));
        let url = self.path("search", "entities/search");
        let raw = self
            .http
            .send_raw(Method::POST, url, Some(body), limit)
            .await?;
        milvus_rows(raw, "Milvus search", milvus_error)
    }

    /// Rows by id with `fields`, `dim` components of vector per row at most.
    pub async fn get(&self, ids: &[u64], fields: &[&str], dim: usize) -> Result<Vec<Value>> {
        let mut list = String::new();
        push_ids(&mut list, ids.iter().copied());
        let fields: Vec<Value> = fields.iter().map(|f| Value::from(*f)).collect();
        let body = format!(
            "{{\"collectionName\":{},\"id\":{list},\"outputFields\":{}}}",
            self.coll(),
            Value::Array(fields)
        );
        let reply = self
            .post("get", "entities/get", body, rows_limit(ids.len(), dim))
            .await?;
        take_data_array(reply, "get")
    }
}

/// `data` as an array; Milvus leaves it out or sends `{}` when nothing matched.
fn take_data_array(mut reply: Value, what: &str) -> Result<Vec<Value>> {
    match reply.get_mut("data").map(Value::take) {
        Some(Value::Array(rows)) => Ok(rows),
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(o)) if o.is_empty() => Ok(Vec::new()),
        Some(_) => Err(malformed(&format!("{what}: data is not a list"), &reply)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: match serde_json::from_str(body) {
                Ok(v) => Body::Json(v),
                Err(_) => Body::Text(body.into()),
            },
            request: "POST /v1/vector/query".into(),
        }
    }

    #[test]
    fn envelope_errors_are_errors() {
        assert!(check(reply(200, r#"{"code":200,"data":[]}"#)).is_ok());
        assert!(check(reply(200, r#"{"code":0,"data":[]}"#)).is_ok());
        assert!(matches!(
            check(reply(
                200,
                r#"{"code":100,"message":"collection not found"}"#
            )),
            Err(Error::Remote { status: 100, .. })
        ));
        assert!(matches!(
            check(reply(200, r#"{"code":70000,"message":"x"}"#)),
            Err(Error::Remote {
                status: u16::MAX,
                ..
            })
        ));
        assert!(matches!(
            check(reply(200, r#"{"data":[]}"#)),
            Err(Error::Remote { .. })
        ));
        assert!(matches!(
            check(reply(200, r#"[1,2]"#)),
            Err(Error::Remote { .. })
        ));
        assert!(matches!(
            check(reply(404, "404 page not found")),
            Err(Error::Remote { status: 404, .. })
        ));
        assert!(take_data_array(serde_json::json!({"data":{}}), "x")
            .unwrap()
            .is_empty());
        assert!(take_data_array(serde_json::json!({"data":5}), "x").is_err());
    }

    #[test]
    fn scores_become_distances() {
        assert_eq!(to_distance(Metric::L2, 2.0), 2.0);
        assert_eq!(to_distance(Metric::Cosine, 1.0), 0.0);
        assert_eq!(to_distance(Metric::InnerProduct, 0.25), 0.75);
        assert!(matches!(
            metric_name(Metric::Jaccard),
            Err(Error::Unsupported(_))
        ));
    }
}

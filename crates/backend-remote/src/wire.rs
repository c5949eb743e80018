//! Typed shapes of the replies that carry rows (search hits, points), parsed
//! with serde straight from the reply's bytes into small structs rather than
//! a `serde_json::Value` tree: a hit is an id and an `f64`, a vector a
//! `Vec<f64>`, whatever else the server adds is skipped unread. A reply of
//! another shape is `Remote`, with serde's account of where it went wrong.
//!
//! Milvus's query and get rows are keyed by the collection's own field names,
//! so they stay `Value` rows; every reply is capped by what its call can need
//! (`http::rows_limit`), which bounds those too.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use vecsearch_core::{Error, Result};

use crate::http::{shorten, RawReply};

/// An id as servers send it: a JSON number or a decimal string (Milvus
/// writes int64 ids as strings so JavaScript keeps them exact).
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub(crate) enum WireId {
    Num(u64),
    Text(String),
}

impl WireId {
    /// The id, when it is a `u64`.
    pub fn get(&self) -> Option<u64> {
        match self {
            WireId::Num(n) => Some(*n),
            WireId::Text(s) => s.parse().ok(),
        }
    }
}

/// One Qdrant search hit.
#[derive(Deserialize, Debug)]
pub(crate) struct QdrantHit {
    pub id: WireId,
    pub score: f64,
    /// Present when the search asked for vectors.
    #[serde(default)]
    pub vector: Option<Vec<f64>>,
}

/// One Qdrant point of a retrieve.
#[derive(Deserialize, Debug)]
pub(crate) struct QdrantPoint {
    pub id: WireId,
    #[serde(default)]
    pub vector: Option<Vec<f64>>,
}

/// One Milvus search hit.
#[derive(Deserialize, Debug)]
pub(crate) struct MilvusHit {
    pub id: WireId,
    pub distance: f64,
}

/// A vector of `dim` components, each finite as `f32`.
pub(crate) fn finite_vector(v: &[f64], dim: usize) -> Option<Vec<f32>> {
    if v.len() != dim {
        return None;
    }
    v.iter()
        .map(|&x| Some(x as f32).filter(|f| f.is_finite()))
        .collect()
}

fn unexpected(status: u16, what: &str, problem: impl std::fmt::Display, raw: &RawReply) -> Error {
    Error::Remote {
        status,
        message: format!(
            "unexpected reply ({what}): {}; reply: {}",
            shorten(&problem.to_string()),
            raw.describe()
        ),
    }
}

#[derive(Deserialize)]
struct QdrantEnvelope<'a> {
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    status: Option<Value>,
}

/// The `result` of a Qdrant reply as `T`. A non-2xx status or an error
/// status is the server's error (`fallback` turns it into one); a reply of
/// another shape is `Remote`.
pub(crate) fn qdrant_result<T: DeserializeOwned>(
    raw: RawReply,
    what: &str,
    fallback: impl FnOnce(RawReply) -> Error,
) -> Result<T> {
    if !(200..300).contains(&raw.status) {
        return Err(fallback(raw));
    }
    let env: QdrantEnvelope<'_> = match serde_json::from_slice(&raw.bytes) {
        Ok(env) => env,
        Err(e) => return Err(unexpected(raw.status, what, e, &raw)),
    };
    if env.status.as_ref().and_then(|s| s.get("error")).is_some() {
        return Err(fallback(raw));
    }
    let Some(result) = env.result else {
        return Err(unexpected(raw.status, what, "no result", &raw));
    };
    serde_json::from_str(result.get()).map_err(|e| unexpected(raw.status, what, e, &raw))
}

#[derive(Deserialize)]
struct MilvusEnvelope<'a> {
    code: i64,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// The `data` rows of a Milvus reply as `T`s. HTTP 200 and `code` 200 (v1)
/// or 0 (v2); anything else is the server's error (`fallback` turns it into
/// one). Milvus leaves `data` out, or sends `{}`, when nothing matched.
pub(crate) fn milvus_rows<T: DeserializeOwned>(
    raw: RawReply,
    what: &str,
    fallback: impl FnOnce(RawReply) -> Error,
) -> Result<Vec<T>> {
    if raw.status != 200 {
        return Err(fallback(raw));
    }
    let env = match serde_json::from_slice::<MilvusEnvelope<'_>>(&raw.bytes) {
        Ok(env) if env.code == 0 || env.code == 200 => env,
        // An error code, or no code: the envelope check says which.
        _ => return Err(fallback(raw)),
    };
    let Some(data) = env.data else {
        return Ok(Vec::new());
    };
    let text = data.get().trim_start();
    if text.starts_with('{') {
        return match serde_json::from_str::<serde_json::Map<String, Value>>(text) {
            Ok(m) if m.is_empty() => Ok(Vec::new()),
            _ => Err(unexpected(raw.status, what, "data is not a list", &raw)),
        };
    }
    if text == "null" {
        return Ok(Vec::new());
    }
    serde_json::from_str(text).map_err(|e| unexpected(raw.status, what, e, &raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, body: &str) -> RawReply {
        RawReply {
            status,
            bytes: body.as_bytes().to_vec(),
            request: "POST /collections/c/points/search/batch".into(),
        }
    }

    fn server_error(r: RawReply) -> Error {
        Error::Remote {
            status: r.status,
            message: "server".into(),
        }
    }

    #[test]
    fn qdrant_hits_parse_typed() {
        let got: Vec<Vec<QdrantHit>> = qdrant_result(
            raw(
                200,
                r#"{"result":[[{"id":3,"version":1,"score":0.5,"payload":null}]],"status":"ok"}"#,
            ),
            "t",
            server_error,
        )
        .unwrap();
        assert_eq!(got[0][0].id.get(), Some(3));
        for bad in [
            r#"{"result":[[{"id":3,"score":null}]]}"#,
            r#"{"result":[[{"id":3,"score":"NaN"}]]}"#,
            r#"{"result":[[{"id":3,"score":1e400}]]}"#,
            r#"{"result":[[{"id":-3,"score":1}]]}"#,
            r#"{"result":[[{"score":1}]]}"#,
            r#"{"status":"ok"}"#,
            r#"{"result":{"count":1}}"#,
            r#"[1,2]"#,
            r#"{"result":[[{"id":3,"#,
        ] {
            let got: Result<Vec<Vec<QdrantHit>>> = qdrant_result(raw(200, bad), "t", server_error);
            assert!(matches!(got, Err(Error::Remote { .. })), "{bad}");
        }
    }

    #[test]
    fn milvus_rows_parse_typed() {
        let got: Vec<MilvusHit> = milvus_rows(
            raw(
                200,
                r#"{"code":200,"data":[{"id":"7","distance":0.5,"x":[1]}]}"#,
            ),
            "t",
            server_error,
        )
        .unwrap();
        assert_eq!(got[0].id.get(), Some(7));
        for empty in [
            r#"{"code":0}"#,
            r#"{"code":0,"data":{}}"#,
            r#"{"code":0,"data":null}"#,
        ] {
            let got: Vec<MilvusHit> = milvus_rows(raw(200, empty), "t", server_error).unwrap();
            assert!(got.is_empty(), "{empty}");
        }
        for bad in [
            r#"{"code":0,"data":5}"#,
            r#"{"code":0,"data":{"a":1}}"#,
            r#"{"code":0,"data":[{"id":"1","distance":null}]}"#,
            r#"{"code":1804,"message":"x"}"#,
            r#"{"data":[]}"#,
        ] {
            let got: Result<Vec<MilvusHit>> = milvus_rows(raw(200, bad), "t", server_error);
            assert!(matches!(got, Err(Error::Remote { .. })), "{bad}");
        }
        assert_eq!(finite_vector(&[1.0, 1e39], 2), None);
        assert_eq!(finite_vector(&[1.0], 2), None);
        assert_eq!(finite_vector(&[1.0, 0.5], 2), Some(vec![1.0, 0.5]));
    }
}

//! Finding, creating, checking and loading a Milvus collection for a spec.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use vecsearch_core::{Error, IndexSpec, Result};

use super::api::{check, metric_name, Api, Dialect, DESCRIBE_REPLY};
use crate::http::{Body, Http, SMALL_REPLY};
use crate::json::malformed;

/// How long opening waits for a collection to be loaded.
const LOAD_TIMEOUT: Duration = Duration::from_secs(90);

/// The fields of a collection vecsearch can use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    /// The int64 primary key field, with caller-chosen ids.
    pub pk: String,
    /// The float vector field.
    pub vf: String,
    /// Its dimension.
    pub dim: usize,
    /// The metric of its index, if it has one.
    pub metric: Option<String>,
    /// The load state (`LoadStateLoaded`, `LoadStateLoading`, `LoadStateNotLoad`).
    pub load: String,
    /// Whether rows take keys beyond the declared fields (where payloads go).
    pub dynamic: bool,
}

/// Which REST API the server at `base` speaks: v2 when it answers
/// `/v2/vectordb/collections/list` with a Milvus envelope, else v1.
pub(crate) async fn detect(http: &Http, base: &str, mgmt: String) -> Result<Dialect> {
    let v2 = http
        .send(
            Method::POST,
            format!("{base}/v2/vectordb/collections/list"),
            Some("{}".into()),
            DESCRIBE_REPLY,
        )
        .await?;
    if v2.status == 200 {
        if let Body::Json(v) = &v2.body {
            if v.get("code").is_some() {
                // An error here (bad token) is the server's answer to us.
                check(v2)?;
                return Ok(Dialect::V2);
            }
        }
    }
    let v1 = http
        .send(
            Method::GET,
            format!("{base}/v1/vector/collections"),
            None,
            DESCRIBE_REPLY,
        )
        .await?;
    match &v1.body {
        Body::Json(v) if v1.status == 200 && v.get("code").is_some() => {
            check(v1)?;
            Ok(Dialect::V1 { mgmt })
        }
        _ => Err(Error::Remote {
            status: v1.status,
            message: format!(
                "{base} answers neither Milvus REST v2 nor v1: {}",
                v1.describe()
            ),
        }),
    }
}

/// Reads a describe reply (v1 and v2 shapes).
pub(crate) fn parse_layout(data: &Value) -> Result<Layout> {
    let fields = crate::json::array_at(data, "fields", "describe")?;
    let mut pk = None;
    let mut vectors = Vec::new();
    for f in fields {
        let name = f.get("name").and_then(Value::as_str);
        let (Some(name), Some(ty)) = (name, f.get("type").and_then(Value::as_str)) else {
            return Err(malformed("describe: a field without a name or type", data));
        };
        if f.get("primaryKey").and_then(Value::as_bool) == Some(true) {
            let auto = f.get("autoId").and_then(Value::as_bool).unwrap_or(false)
                || data.get("autoId").and_then(Value::as_bool).unwrap_or(false);
            pk = Some((name.to_string(), ty.to_string(), auto));
        } else if let Some(rest) = ty.strip_prefix("FloatVector") {
            vectors.push((name.to_string(), field_dim(f, rest)));
        }
    }
    let (pk, pk_type, auto) = pk.ok_or_else(|| malformed("describe: no primary key", data))?;
    if pk_type != "Int64" || auto {
        return Err(Error::InvalidArgument(format!(
            "the collection's primary key {pk:?} is {pk_type}{}; vecsearch needs an Int64 key \
             with caller-chosen ids (autoID off)",
            if auto { " with autoID" } else { "" }
        )));
    }
    let (vf, dim) = match vectors.as_slice() {
        [one] => one.clone(),
        _ => {
            return Err(Error::InvalidArgument(format!(
                "the collection has {} float vector fields; vecsearch needs exactly one",
                vectors.len()
            )))
        }
    };
    let dim = dim.ok_or_else(|| malformed("describe: vector field without a dimension", data))?;
    let metric = data
        .get("indexes")
        .and_then(Value::as_array)
        .and_then(|ix| {
            ix.iter()
                .find(|i| i.get("fieldName").and_then(Value::as_str) == Some(vf.as_str()))
        })
        .and_then(|i| i.get("metricType").and_then(Value::as_str))
        .map(str::to_string);
    // No load state is a malformed reply, not "not loaded yet": waiting
    // for one would wait for nothing.
    let load = data
        .get("load")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("describe: no load state", data))?
        .to_string();
    let dynamic = data
        .get("enableDynamicField")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Layout {
        pk,
        vf,
        dim,
        metric,
        load,
        dynamic,
    })
}

/// A vector field's dimension: `FloatVector(128)` (v1) or a `dim` param (v2).
fn field_dim(f: &Value, type_rest: &str) -> Option<usize> {
    if let Some(n) = type_rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
    {
        return n.parse().ok();
    }
    let params = f.get("params")?;
    let from_value = |v: &Value| match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().and_then(|d| usize::try_from(d).ok()),
        _ => None,
    };
    match params {
        Value::Array(list) => list
            .iter()
            .find(|p| p.get("key").and_then(Value::as_str) == Some("dim"))
            .and_then(|p| p.get("value"))
            .and_then(from_value),
        Value::Object(map) => map.get("dim").and_then(from_value),
        _ => None,
    }
}

/// Fails unless an existing collection was built for the spec's dim and metric.
pub(crate) fn check_matches(layout: &Layout, spec: &IndexSpec, name: &str) -> Result<()> {
    let want = metric_name(spec.metric)?;
    let metric = layout.metric.as_deref().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "collection {name} has no index on {:?}; create one or use another collection",
            layout.vf
        ))
    })?;
    if !spec.schema.is_empty() && !layout.dynamic {
        return Err(Error::InvalidArgument(format!(
            "collection {name} has no dynamic field, where payloads go: it was created without \
             a schema (use another collection for payloads; nothing was changed)"
        )));
    }
    if let Some(f) = spec
        .schema
        .fields()
        .iter()
        .find(|f| f.name == layout.pk || f.name == layout.vf)
    {
        return Err(Error::InvalidArgument(format!(
            "payload field {:?} has the name of collection {name}'s own field",
            f.name
        )));
    }
    if layout.dim != spec.dim || !metric.eq_ignore_ascii_case(want) {
        return Err(Error::InvalidArgument(format!(
            "collection {name} holds {}-dimensional vectors with metric {metric}, but dim {} and \
             metric {want} were asked for (nothing was changed)",
            layout.dim, spec.dim
        )));
    }
    Ok(())
}

/// Creates the collection (fields `id`, `vector`), its HNSW index, and loads it.
pub(crate) async fn create(api: &Api, spec: &IndexSpec) -> Result<()> {
    let metric = metric_name(spec.metric)?;
    let name = &api.collection;
    match &api.dialect {
        Dialect::V2 => {
            let body = json!({
                "collectionName": name,
                "schema": {
                    "autoId": false,
                    "enableDynamicField": false,
                    "fields": [
                        {"fieldName": "id", "dataType": "Int64", "isPrimary": true},
                        {"fieldName": "vector", "dataType": "FloatVector",
                         "elementTypeParams": {"dim": spec.dim.to_string()}}
                    ]
                },
                "indexParams": [{
                    "fieldName": "vector", "indexName": "vector", "metricType": metric,
                    "indexType": "HNSW",
                    "params": {"index_type": "HNSW", "M": spec.m, "efConstruction": spec.ef_construction}
                }]
            });
            api.post("", "collections/create", body.to_string(), SMALL_REPLY)
                .await?;
        }
        Dialect::V1 { mgmt } => {
            // REST v1's own create makes autoID collections, which refuse
            // caller ids and upserts; the management API takes a full schema.
            let schema = json!({
                "name": name, "autoID": false,
                // Payload fields go to the dynamic field (Milvus 2.3 has no
                // nullable fields, so a declared one could not be missing).
                "enable_dynamic_field": !spec.schema.is_empty(),
                "fields": [
                    {"name": "id", "is_primary_key": true, "autoID": false, "data_type": 5},
                    {"name": "vector", "data_type": 101,
                     "type_params": [{"key": "dim", "value": spec.dim.to_string()}]}
                ]
            });
            let create = json!({"collection_name": name, "schema": schema, "shards_num": 1});
            mgmt_post(&api.http, mgmt, "collection", create).await?;
            let params = json!({"M": spec.m, "efConstruction": spec.ef_construction}).to_string();
            let index = json!({
                "collection_name": name, "field_name": "vector", "index_name": "vector",
                "extra_params": [
                    {"key": "metric_type", "value": metric},
                    {"key": "index_type", "value": "HNSW"},
                    {"key": "params", "value": params}
                ]
            });
            mgmt_post(&api.http, mgmt, "index", index).await?;
            load(api).await?;
        }
    }
    Ok(())
}

/// Asks the server to load the collection into memory.
pub(crate) async fn load(api: &Api) -> Result<()> {
    let name = &api.collection;
    match &api.dialect {
        Dialect::V2 => {
            let body = json!({"collectionName": name}).to_string();
            api.post("", "collections/load", body, SMALL_REPLY)
                .await
                .map(|_| ())
        }
        Dialect::V1 { mgmt } => {
            mgmt_post(
                &api.http,
                mgmt,
                "collection/load",
                json!({"collection_name": name}),
            )
            .await
        }
    }
}

/// Waits until the collection is loaded (loading it if nobody has), bounded.
pub(crate) async fn wait_loaded(api: &Api) -> Result<Layout> {
    let start = Instant::now();
    let mut asked = false;
    loop {
        let data = api.describe().await?.ok_or_else(|| Error::Remote {
            status: super::api::COLLECTION_NOT_FOUND,
            message: format!("collection {} vanished while loading", api.collection),
        })?;
        let layout = parse_layout(&data)?;
        match layout.load.as_str() {
            "LoadStateLoaded" => return Ok(layout),
            "LoadStateNotLoad" if !asked => {
                load(api).await?;
                asked = true;
            }
            // Documented states on the way to loaded (NotExist is briefly
            // shown by a collection just created).
            "LoadStateNotLoad" | "LoadStateLoading" | "LoadStateNotExist" => {}
            other => {
                return Err(malformed(
                    &format!("describe: unknown load state {other:?}"),
                    &data,
                ))
            }
        }
        if start.elapsed() > LOAD_TIMEOUT {
            return Err(Error::Unavailable(format!(
                "collection {} not loaded after {} s (state {:?})",
                api.collection,
                LOAD_TIMEOUT.as_secs(),
                layout.load
            )));
        }
        // On the index's runtime: the caller may have no timer (issue 13).
        api.http.sleep(Duration::from_millis(200)).await?;
    }
}

/// A call to Milvus 2.3's management API (port 9091), which answers `{}`
/// on success and `{"error_code":..,"reason":..}` (or a `status` object) on failure.
async fn mgmt_post(http: &Http, mgmt: &str, path: &str, body: Value) -> Result<()> {
    mgmt_call(http, mgmt, Method::POST, path, body)
        .await
        .map(|_| ())
}

/// A management API call (its GETs take a JSON body too); the reply on success.
pub(crate) async fn mgmt_call(
    http: &Http,
    mgmt: &str,
    method: Method,
    path: &str,
    body: Value,
) -> Result<Value> {
    let reply = http
        .send(
            method,
            format!("{mgmt}/api/v1/{path}"),
            Some(body.to_string()),
            DESCRIBE_REPLY,
        )
        .await?;
    let v = match reply.body {
        Body::Json(v) => v,
        Body::Text(_) => {
            return Err(Error::Remote {
                status: reply.status,
                message: format!("management API {path}: {}", reply.describe()),
            })
        }
    };
    let status = v.get("status").unwrap_or(&v);
    let code = status
        .get("error_code")
        .and_then(Value::as_i64)
        .or_else(|| status.get("code").and_then(Value::as_i64))
        .unwrap_or(0);
    if reply.status != 200 || code != 0 {
        let reason = status
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("(no reason)");
        return Err(Error::Remote {
            status: if reply.status != 200 {
                reply.status
            } else {
                u16::try_from(code).unwrap_or(u16::MAX)
            },
            message: format!("management API {path}: {}", crate::http::shorten(reason)),
        });
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vecsearch_core::Metric;

    #[test]
    fn reads_both_describe_shapes() {
        let v1 = json!({"fields":[{"autoId":false,"name":"id","primaryKey":true,"type":"Int64"},
            {"autoId":false,"name":"vector","primaryKey":false,"type":"FloatVector(4)"}],
            "indexes":[{"fieldName":"vector","indexName":"vector","metricType":"L2"}],
            "load":"LoadStateLoaded"});
        let l = parse_layout(&v1).unwrap();
        assert_eq!((l.pk.as_str(), l.vf.as_str(), l.dim), ("id", "vector", 4));
        check_matches(&l, &IndexSpec::new(4, Metric::L2), "c").unwrap();
        assert!(matches!(
            check_matches(&l, &IndexSpec::new(5, Metric::L2), "c"),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            check_matches(&l, &IndexSpec::new(4, Metric::Cosine), "c"),
            Err(Error::InvalidArgument(_))
        ));
        let v2 = json!({"autoId":false,"fields":[{"name":"pk","primaryKey":true,"type":"Int64"},
            {"name":"emb","type":"FloatVector","params":[{"key":"dim","value":"8"}]}],
            "indexes":[{"fieldName":"emb","metricType":"COSINE"}],"load":"LoadStateLoading"});
        let l = parse_layout(&v2).unwrap();
        assert_eq!((l.pk.as_str(), l.vf.as_str(), l.dim), ("pk", "emb", 8));
        assert_eq!(l.metric.as_deref(), Some("COSINE"));
    }

    #[test]
    fn refuses_unusable_collections() {
        let auto = json!({"fields":[{"name":"id","primaryKey":true,"autoId":true,"type":"Int64"},
            {"name":"v","type":"FloatVector(2)"}]});
        assert!(matches!(
            parse_layout(&auto),
            Err(Error::InvalidArgument(_))
        ));
        let varchar = json!({"fields":[{"name":"id","primaryKey":true,"type":"VarChar"},
            {"name":"v","type":"FloatVector(2)"}]});
        assert!(matches!(
            parse_layout(&varchar),
            Err(Error::InvalidArgument(_))
        ));
        for bad in [
            json!({}),
            json!({"fields":5}),
            json!({"fields":[{"type":"Int64"}]}),
            json!({"fields":[{"name":"id","primaryKey":true,"type":"Int64"},
                                     {"name":"v","type":"FloatVector(x)"}]}),
        ] {
            assert!(parse_layout(&bad).is_err(), "{bad}");
        }
    }
}

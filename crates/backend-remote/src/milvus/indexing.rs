//! Waiting for Milvus to index what was written: Milvus indexes only sealed
//! segments, and answers from growing ones by brute force meanwhile.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use vecsearch_core::{Error, IndexProgress, Result};

use super::api::{Api, Dialect};
use super::schema::mgmt_call;
use crate::json::malformed;

/// How long [`finish`] waits for the index before it reports what it has.
pub(crate) const INDEX_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// How long it waits while nothing moves (a segment nobody will index).
const STALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Seals the collection's segments (a flush), then waits until the index is
/// built on them and the query nodes serve them with it. `stored` is the
/// collection's row count, taken after every earlier write showed.
pub(crate) async fn finish(api: &Api, stored: usize) -> Result<IndexProgress> {
    let Dialect::V1 { mgmt } = &api.dialect else {
        // REST v2 servers (2.4+) have other calls for this; none is mapped.
        return Err(Error::Unsupported(
            "finish_indexing is built for Milvus 2.3 (REST v1 and its management API) only".into(),
        ));
    };
    let name = &api.collection;
    mgmt_call(
        &api.http,
        mgmt,
        Method::POST,
        "persist",
        json!({ "collection_names": [name] }),
    )
    .await?;
    let start = Instant::now();
    let (mut last, mut moved) = (None, Instant::now());
    loop {
        let built = index_built(api, mgmt).await?;
        let served = served_by_index(api, mgmt).await?;
        let pending = stored.saturating_sub(served);
        if last != Some((built, served)) {
            (last, moved) = (Some((built, served)), Instant::now());
        }
        let done = built && pending == 0;
        if done || start.elapsed() > INDEX_TIMEOUT || moved.elapsed() > STALL_TIMEOUT {
            return Ok(IndexProgress::new(stored, pending));
        }
        api.http.sleep(Duration::from_millis(250)).await?;
    }
}

/// Whether the index covers every row of the sealed segments.
async fn index_built(api: &Api, mgmt: &str) -> Result<bool> {
    let body = json!({ "collection_name": api.collection });
    let v = mgmt_call(&api.http, mgmt, Method::GET, "index/progress", body).await?;
    // Zero counts are left out of the reply.
    let count = |key: &str| match v.get(key) {
        None => Ok(0),
        Some(n) => n
            .as_u64()
            .ok_or_else(|| malformed(&format!("index progress: {key} is not a count"), &v)),
    };
    Ok(count("indexed_rows")? >= count("total_rows")?)
}

/// Rows in segments the query nodes search with the index (growing
/// segments, and sealed ones loaded before their index, are not listed or
/// have no index name). Deleted rows still count until compaction, so this
/// is approximate after deletes.
async fn served_by_index(api: &Api, mgmt: &str) -> Result<usize> {
    let body = json!({ "collectionName": api.collection });
    let v = mgmt_call(&api.http, mgmt, Method::GET, "query-segment-info", body).await?;
    let Some(infos) = v.get("infos") else {
        return Ok(0);
    };
    let infos = infos
        .as_array()
        .ok_or_else(|| malformed("query segment info: infos is not a list", &v))?;
    let mut rows = 0usize;
    for seg in infos {
        let indexed = seg
            .get("index_name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let n = match seg.get("num_rows") {
            None => 0,
            Some(n) => n
                .as_u64()
                .ok_or_else(|| malformed("query segment info: num_rows is not a count", seg))?,
        };
        if indexed {
            rows = rows.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
        }
    }
    Ok(rows)
}

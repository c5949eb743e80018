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

/// Seals the collection's segments (a flush), waits until they are flushed,
/// compacts them, then waits until the index is built on them and the query
/// nodes serve exactly the live rows with it. `stored` is the collection's
/// row count, taken after every earlier write showed.
///
/// Why so much: right after a flush Milvus 2.3.5 serves the sealed segment
/// with every superseded row still in it, masked as deleted, and its HNSW
/// search then misses live rows (3 to 6 of 3,000 at ef 3,000, from plain
/// HTTP: `scripts/probes/milvus_settle.py`) until its own compaction
/// replaces the segment, 30 to 110 s later. Waiting for the compacted
/// segment to be served ends that. Should deleted rows stay (a compaction
/// that keeps them), the wait ends after two minutes without movement.
pub(crate) async fn finish(api: &Api, stored: usize) -> Result<IndexProgress> {
    let Dialect::V1 { mgmt } = &api.dialect else {
        // REST v2 servers (2.4+) have other calls for this; none is mapped.
        return Err(Error::Unsupported(
            "finish_indexing is built for Milvus 2.3 (REST v1 and its management API) only".into(),
        ));
    };
    let name = &api.collection;
    let flush = mgmt_call(
        &api.http,
        mgmt,
        Method::POST,
        "persist",
        json!({ "collection_names": [name] }),
    )
    .await?;
    let start = Instant::now();
    wait_flushed(api, mgmt, &flush, start).await?;
    compact(api, mgmt, start).await?;
    let (mut last, mut moved) = (None, Instant::now());
    loop {
        let built = index_built(api, mgmt).await?;
        let served = served_by_index(api, mgmt).await?;
        let unindexed = stored.saturating_sub(served);
        if last != Some((built, served)) {
            (last, moved) = (Some((built, served)), Instant::now());
        }
        // More rows served than stored: superseded ones not compacted away.
        let done = built && served == stored;
        if done || start.elapsed() > INDEX_TIMEOUT || moved.elapsed() > STALL_TIMEOUT {
            return Ok(IndexProgress::new(stored, unindexed));
        }
        api.http.sleep(Duration::from_millis(250)).await?;
    }
}

/// `Unavailable` once `what` has taken longer than [`INDEX_TIMEOUT`].
fn overdue(api: &Api, what: &str, start: Instant) -> Result<()> {
    if start.elapsed() > INDEX_TIMEOUT {
        return Err(Error::Unavailable(format!(
            "{what} of {} not done after {} s",
            api.collection,
            INDEX_TIMEOUT.as_secs()
        )));
    }
    Ok(())
}

/// Waits until the segments the flush sealed are flushed.
async fn wait_flushed(api: &Api, mgmt: &str, flush: &Value, start: Instant) -> Result<()> {
    let segments = match flush.pointer(&format!("/coll_segIDs/{}/data", api.collection)) {
        None => return Ok(()),
        Some(Value::Array(ids)) => ids.clone(),
        Some(_) => return Err(malformed("flush: segment ids are not a list", flush)),
    };
    if segments.is_empty() {
        return Ok(());
    }
    loop {
        let body = json!({ "segmentIDs": segments });
        let state = mgmt_call(&api.http, mgmt, Method::GET, "persist/state", body).await?;
        // `flushed: false` is left out of the reply.
        if state.get("flushed").and_then(Value::as_bool) == Some(true) {
            return Ok(());
        }
        overdue(api, "flush", start)?;
        api.http.sleep(Duration::from_millis(250)).await?;
    }
}

/// Compacts the flushed segments, so rows deleted or replaced leave them and
/// their index.
async fn compact(api: &Api, mgmt: &str, start: Instant) -> Result<()> {
    let body = json!({ "collection_name": api.collection });
    let info = mgmt_call(&api.http, mgmt, Method::GET, "collection", body).await?;
    let id = info
        .get("collectionID")
        .and_then(Value::as_u64)
        .ok_or_else(|| malformed("collection: no collectionID", &info))?;
    let body = json!({ "collectionID": id });
    let started = mgmt_call(&api.http, mgmt, Method::POST, "compaction", body).await?;
    let Some(job) = started.get("compactionID") else {
        // Nothing to compact.
        return Ok(());
    };
    let job = job
        .as_i64()
        .ok_or_else(|| malformed("compaction: compactionID is not an id", &started))?;
    loop {
        let body = json!({ "compactionID": job });
        let state = mgmt_call(&api.http, mgmt, Method::GET, "compaction/state", body).await?;
        // 1 executing, 2 completed; zero ("undefined", a job Milvus does not
        // know) is left out of the reply: nothing to wait for.
        match state.get("state").and_then(Value::as_u64) {
            Some(2) | None => return Ok(()),
            Some(1) => {}
            Some(other) => return Err(malformed(&format!("compaction state {other}"), &state)),
        }
        overdue(api, "compaction", start)?;
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

//! A table of server misbehaviours, per endpoint and per dialect (Qdrant,
//! Milvus REST v1, Milvus REST v2), each run from async code and from
//! blocking code with no runtime (issue 13). A scripted HTTP server answers
//! like a healthy server except on the one endpoint a row of the table names,
//! where it misbehaves: truncated or mistyped JSON, missing fields, rows for
//! other ids, duplicate ids, impossible scores, more than k hits, hits
//! outside the filter, ids beyond Milvus's range, 5xx and 429, slow and
//! endless bodies, cut connections, cross-origin redirects, oversized
//! replies. Each must end in the right error within about timeout x retries,
//! with no panic and bounded memory; the few well-formed oddities (extra
//! fields) must still be `Ok`.
//!
//! The real servers are tested by `conformance_qdrant` and `conformance_milvus`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vecsearch_core::{Blocking, Error, Filter, IndexSpec, Metric, SearchParams, VectorIndex};

// ---------- the scripted server ----------

/// What the server does with one request.
#[derive(Clone, Debug)]
enum Act {
    /// A complete reply.
    Reply(u16, String),
    /// Headers promising 1000 bytes, then one byte every 100 ms.
    Slow,
    /// A chunked body of zeros that never ends.
    Endless,
    /// A chunked body of `n` zeros (no length announced).
    Big(usize),
    /// A `content-length` of `n`, and `n` zeros.
    BigAnnounced(usize),
    /// Headers promising 1000 bytes, 10 of them, then the connection is cut.
    CutBody,
    /// A 307 to the same path on another port of 127.0.0.1.
    Redirect(u16),
    /// No reply ever.
    Hang,
    /// The connection is closed without a reply.
    Close,
    /// Bytes of no protocol at all, then the connection is closed.
    Garbage,
    /// What an HTTP/2-only server (a gRPC port) answers an HTTP/1.1
    /// request: its SETTINGS frame and a GOAWAY, then the connection is closed.
    Http2,
    /// A JSON body with no status line or headers, then the connection is closed.
    NoStatusLine,
}

/// One misbehaviour in place: `(method, path without query)` answered by `act`.
type Override = Option<(&'static str, &'static str, Act)>;
type Healthy = fn(&str, &str, &str) -> Act;

struct Server {
    port: u16,
    healthy: Healthy,
    over: Mutex<Override>,
    /// `(method, path)` of every request, in order.
    log: Mutex<Vec<(String, String)>>,
    /// Requests that carried an `api-key` or `authorization` header.
    with_credentials: AtomicUsize,
    /// Bytes of body written for big and endless replies.
    written: AtomicUsize,
}

impl Server {
    fn set(&self, over: Override) {
        *self.over.lock().unwrap() = over;
        self.log.lock().unwrap().clear();
    }

    fn saw(&self, method: &str, path: &str) -> bool {
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|(m, p)| m == method && p == path)
    }
}

/// Starts a server on its own runtime (so the test thread has none).
fn start(healthy: Healthy) -> (Arc<Server>, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind a loopback port");
    let server = Arc::new(Server {
        port: listener.local_addr().unwrap().port(),
        healthy,
        over: Mutex::new(None),
        log: Mutex::new(Vec::new()),
        with_credentials: AtomicUsize::new(0),
        written: AtomicUsize::new(0),
    });
    let s = Arc::clone(&server);
    rt.spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(serve(conn, Arc::clone(&s)));
        }
    });
    (server, rt)
}

async fn serve(mut conn: TcpStream, server: Arc<Server>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let len = header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        if header("api-key").is_some() || header("authorization").is_some() {
            server.with_credentials.fetch_add(1, Ordering::SeqCst);
        }
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 65536];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
        buf.drain(..head_end + len);
        let mut words = head.split_whitespace();
        let method = words.next().unwrap_or("").to_string();
        let target = words.next().unwrap_or("").to_string();
        let path = target.split('?').next().unwrap_or("").to_string();
        server
            .log
            .lock()
            .unwrap()
            .push((method.clone(), path.clone()));
        let over = server.over.lock().unwrap().clone();
        let act = match over {
            Some((m, p, act)) if m == method && p == path => act,
            _ => (server.healthy)(&method, &path, &body),
        };
        if !act_on(&mut conn, &server, act, &target).await {
            return;
        }
    }
}

/// Carries out `act`; false when the connection is done with.
async fn act_on(conn: &mut TcpStream, server: &Server, act: Act, target: &str) -> bool {
    let head = |status: u16, extra: &str| {
        format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}\r\n")
    };
    match act {
        Act::Reply(status, body) => {
            let msg = format!(
                "{}{body}",
                head(status, &format!("content-length: {}\r\n", body.len()))
            );
            conn.write_all(msg.as_bytes()).await.is_ok()
        }
        Act::Slow => {
            if conn
                .write_all(head(200, "content-length: 1000\r\n").as_bytes())
                .await
                .is_err()
            {
                return false;
            }
            for _ in 0..1000 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if conn.write_all(b" ").await.is_err() {
                    return false;
                }
            }
            true
        }
        Act::Endless | Act::Big(_) => {
            let total = match act {
                Act::Big(n) => n,
                _ => usize::MAX,
            };
            if conn
                .write_all(head(200, "transfer-encoding: chunked\r\n").as_bytes())
                .await
                .is_err()
            {
                return false;
            }
            let block = vec![b'0'; 64 << 10];
            let mut sent = 0usize;
            while sent < total {
                let n = block.len().min(total - sent);
                let mut chunk = format!("{n:x}\r\n").into_bytes();
                chunk.extend_from_slice(&block[..n]);
                chunk.extend_from_slice(b"\r\n");
                if conn.write_all(&chunk).await.is_err() {
                    return false;
                }
                sent += n;
                server.written.fetch_add(n, Ordering::SeqCst);
            }
            conn.write_all(b"0\r\n\r\n").await.is_ok()
        }
        Act::BigAnnounced(n) => {
            if conn
                .write_all(head(200, &format!("content-length: {n}\r\n")).as_bytes())
                .await
                .is_err()
            {
                return false;
            }
            let block = vec![b'0'; 64 << 10];
            let mut sent = 0usize;
            while sent < n {
                let k = block.len().min(n - sent);
                if conn.write_all(&block[..k]).await.is_err() {
                    return false;
                }
                sent += k;
                server.written.fetch_add(k, Ordering::SeqCst);
            }
            true
        }
        Act::CutBody => {
            let _ = conn
                .write_all(
                    format!("{}[{{\"id\":1,", head(200, "content-length: 1000\r\n")).as_bytes(),
                )
                .await;
            false
        }
        Act::Redirect(port) => {
            let extra =
                format!("location: http://127.0.0.1:{port}{target}\r\ncontent-length: 0\r\n");
            conn.write_all(head(307, &extra).as_bytes()).await.is_ok()
        }
        Act::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            false
        }
        Act::Close => false,
        Act::Garbage => {
            let _ = conn
                .write_all(b"\x00\xff\x13garbage \x7f\x01\x02\r\n\r\n")
                .await;
            false
        }
        Act::Http2 => {
            let settings = [0u8, 0, 0, 4, 0, 0, 0, 0, 0];
            let goaway = [0u8, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            let _ = conn.write_all(&settings).await;
            let _ = conn.write_all(&goaway).await;
            false
        }
        Act::NoStatusLine => {
            let _ = conn
                .write_all(br#"{"result":{"status":"completed"},"status":"ok","time":0.0}"#)
                .await;
            false
        }
    }
}

// ---------- healthy servers of the three dialects ----------

/// The index every test opens: 4-dimensional, L2.
const DIM: usize = 4;
const V: [f32; 4] = [1.0, 0.0, 0.0, 0.0];

fn ok(body: &str) -> Act {
    Act::Reply(200, body.to_string())
}

fn count_of(body: &str, key: &str) -> usize {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v[key].as_array().map(Vec::len))
        .unwrap_or(1)
}

fn qdrant_healthy(method: &str, path: &str, body: &str) -> Act {
    let done = r#"{"result":{"operation_id":3,"status":"completed"},"status":"ok","time":0.001}"#;
    match (method, path) {
        ("GET", "/collections/c") => ok(
            r#"{"result":{"status":"green","config":{"params":{"vectors":{"size":4,"distance":"Euclid"}}}},"status":"ok","time":0.0}"#,
        ),
        ("POST", "/collections/c/points/search/batch") => {
            let n = count_of(body, "searches");
            let one = r#"[{"id":1,"version":0,"score":0.5}]"#;
            ok(&format!(
                r#"{{"result":[{}],"status":"ok","time":0.0}}"#,
                vec![one; n].join(",")
            ))
        }
        ("POST", "/collections/c/points") => {
            ok(r#"{"result":[{"id":1,"vector":[1.0,0.0,0.0,0.0],"payload":null}],"status":"ok"}"#)
        }
        ("POST", "/collections/c/points/count") => ok(r#"{"result":{"count":2},"status":"ok"}"#),
        ("PUT", "/collections/c/points") | ("POST", "/collections/c/points/delete") => ok(done),
        _ => Act::Reply(
            404,
            format!(r#"{{"status":{{"error":"unexpected {method} {path}"}}}}"#),
        ),
    }
}

/// Rows `{id, vector}` for the ids of an `id in [..]` filter.
fn rows_for_filter(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    let filter = v["filter"].as_str().unwrap_or("");
    let ids = filter
        .split_once('[')
        .and_then(|(_, r)| r.split_once(']'))
        .map(|(ids, _)| ids)
        .unwrap_or("");
    let rows: Vec<String> = ids
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|id| format!(r#"{{"id":"{}","vector":[1.0,0.0,0.0,0.0]}}"#, id.trim()))
        .collect();
    format!("[{}]", rows.join(","))
}

fn milvus_v1_healthy(method: &str, path: &str, body: &str) -> Act {
    let wrap = |data: &str| ok(&format!(r#"{{"code":200,"data":{data}}}"#));
    match (method, path) {
        (_, p) if p.starts_with("/v2/") => Act::Reply(404, "404 page not found".into()),
        ("GET", "/v1/vector/collections") => wrap(r#"["c"]"#),
        ("GET", "/v1/vector/collections/describe") => wrap(
            r#"{"collectionName":"c","fields":[
                {"autoId":false,"name":"id","primaryKey":true,"type":"Int64"},
                {"autoId":false,"name":"vector","primaryKey":false,"type":"FloatVector(4)"}],
                "indexes":[{"fieldName":"vector","indexName":"vector","metricType":"L2"}],
                "load":"LoadStateLoaded","shardsNum":1}"#,
        ),
        // Milvus 2.3 is searched through its management API (REST v1's
        // search drops the search parameters).
        ("POST", "/api/v1/search") => ok(&hits(Dialect::MilvusV1, &[("1", "0.5")])),
        ("POST", "/v1/vector/get") => wrap(r#"[{"id":"1","vector":[1.0,0.0,0.0,0.0]}]"#),
        ("POST", "/v1/vector/query") if body.contains("count(*)") => wrap(r#"[{"count(*)":2}]"#),
        ("POST", "/v1/vector/query") => wrap(&rows_for_filter(body)),
        ("POST", "/v1/vector/upsert") => wrap(&format!(
            r#"{{"upsertCount":{},"upsertIds":[]}}"#,
            count_of(body, "data")
        )),
        ("POST", "/v1/vector/delete") => wrap("{}"),
        ("POST", "/api/v1/persist") => ok(r#"{"status":{}}"#),
        ("GET", "/api/v1/collection") => ok(r#"{"status":{},"collectionID":470831088319070267}"#),
        ("POST", "/api/v1/compaction") => ok(r#"{"status":{},"compactionID":470831088319688049}"#),
        ("GET", "/api/v1/compaction/state") => ok(r#"{"status":{},"state":2}"#),
        ("GET", "/api/v1/index/progress") => ok(r#"{"status":{},"indexed_rows":2,"total_rows":2}"#),
        ("GET", "/api/v1/query-segment-info") => ok(
            r#"{"status":{},"infos":[{"segmentID":7,"num_rows":2,"index_name":"vector","state":3}]}"#,
        ),
        _ => Act::Reply(404, "404 page not found".into()),
    }
}

fn milvus_v2_healthy(method: &str, path: &str, body: &str) -> Act {
    let wrap = |data: &str| ok(&format!(r#"{{"code":0,"data":{data}}}"#));
    match (method, path) {
        ("POST", "/v2/vectordb/collections/list") => wrap(r#"["c"]"#),
        ("POST", "/v2/vectordb/collections/describe") => wrap(
            r#"{"autoId":false,"collectionName":"c","fields":[
                {"autoId":false,"name":"id","primaryKey":true,"type":"Int64"},
                {"autoId":false,"name":"vector","params":[{"key":"dim","value":"4"}],
                 "primaryKey":false,"type":"FloatVector"}],
                "indexes":[{"fieldName":"vector","indexName":"vector","metricType":"L2"}],
                "load":"LoadStateLoaded","shardsNum":1}"#,
        ),
        ("POST", "/v2/vectordb/entities/search") => wrap(r#"[{"distance":0.5,"id":1}]"#),
        ("POST", "/v2/vectordb/entities/get") => wrap(r#"[{"id":1,"vector":[1.0,0.0,0.0,0.0]}]"#),
        ("POST", "/v2/vectordb/entities/query") if body.contains("count(*)") => {
            wrap(r#"[{"count(*)":2}]"#)
        }
        ("POST", "/v2/vectordb/entities/query") => wrap(&rows_for_filter(body)),
        ("POST", "/v2/vectordb/entities/upsert") => wrap(&format!(
            r#"{{"upsertCount":{},"upsertIds":[]}}"#,
            count_of(body, "data")
        )),
        ("POST", "/v2/vectordb/entities/delete") => wrap("{}"),
        _ => Act::Reply(404, "404 page not found".into()),
    }
}

// ---------- the table ----------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dialect {
    Qdrant,
    MilvusV1,
    MilvusV2,
}

/// The call a row makes, after opening (or the open itself).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Open,
    Search,
    /// A search with k = 1.
    SearchK1,
    /// A search allowing ids 1 and 2 only.
    SearchFiltered,
    SearchBatch,
    Get,
    Delete,
    Len,
    Add,
    /// `add(1, V)` answered well, then `sync`.
    Sync,
    FinishIndexing,
}

#[derive(Clone, Debug, PartialEq)]
enum Want {
    Ok,
    Remote,
    RemoteStatus(u16),
    Unavailable,
    /// The server's fault either way (not the caller's: not `InvalidArgument`).
    RemoteOrUnavailable,
    /// `Remote`, with a message of at most [`MESSAGE_MAX`] characters that
    /// says this.
    RemoteSaying(String),
    InvalidArgument,
    Unsupported,
}

struct Row {
    what: String,
    op: Op,
    method: &'static str,
    path: &'static str,
    act: Act,
    want: Want,
}

/// Paths of each endpoint in a dialect.
struct Paths {
    describe: (&'static str, &'static str),
    search: (&'static str, &'static str),
    get: (&'static str, &'static str),
    count: (&'static str, &'static str),
    query: (&'static str, &'static str),
    upsert: (&'static str, &'static str),
    delete: (&'static str, &'static str),
}

fn paths(d: Dialect) -> Paths {
    match d {
        Dialect::Qdrant => Paths {
            describe: ("GET", "/collections/c"),
            search: ("POST", "/collections/c/points/search/batch"),
            get: ("POST", "/collections/c/points"),
            count: ("POST", "/collections/c/points/count"),
            query: ("POST", "/collections/c/points/count"),
            upsert: ("PUT", "/collections/c/points"),
            delete: ("POST", "/collections/c/points/delete"),
        },
        Dialect::MilvusV1 => Paths {
            describe: ("GET", "/v1/vector/collections/describe"),
            search: ("POST", "/api/v1/search"),
            get: ("POST", "/v1/vector/get"),
            count: ("POST", "/v1/vector/query"),
            query: ("POST", "/v1/vector/query"),
            upsert: ("POST", "/v1/vector/upsert"),
            delete: ("POST", "/v1/vector/delete"),
        },
        Dialect::MilvusV2 => Paths {
            describe: ("POST", "/v2/vectordb/collections/describe"),
            search: ("POST", "/v2/vectordb/entities/search"),
            get: ("POST", "/v2/vectordb/entities/get"),
            count: ("POST", "/v2/vectordb/entities/query"),
            query: ("POST", "/v2/vectordb/entities/query"),
            upsert: ("POST", "/v2/vectordb/entities/upsert"),
            delete: ("POST", "/v2/vectordb/entities/delete"),
        },
    }
}

/// A success envelope around `data` in the dialect.
fn wrap(d: Dialect, data: &str) -> String {
    match d {
        Dialect::Qdrant => format!(r#"{{"result":{data},"status":"ok","time":0.0}}"#),
        Dialect::MilvusV1 => format!(r#"{{"code":200,"data":{data}}}"#),
        Dialect::MilvusV2 => format!(r#"{{"code":0,"data":{data}}}"#),
    }
}

/// A search reply of `hits` (`(id as JSON, score as JSON)`), for one query.
fn hits(d: Dialect, hits: &[(&str, &str)]) -> String {
    if d == Dialect::MilvusV1 {
        return mgmt_hits(hits);
    }
    let list: Vec<String> = hits
        .iter()
        .map(|(id, s)| match d {
            Dialect::Qdrant => format!(r#"{{"id":{id},"version":1,"score":{s}}}"#),
            _ => format!(r#"{{"id":{id},"distance":{s}}}"#),
        })
        .collect();
    let list = format!("[{}]", list.join(","));
    match d {
        Dialect::Qdrant => wrap(d, &format!("[{list}]")),
        _ => wrap(d, &list),
    }
}

/// The management API's search reply (Milvus 2.3): parallel lists of
/// scores and int ids. An id with `,"extra"...` after it puts those extra
/// fields beside the lists; v1's quoted ids are written as numbers.
fn mgmt_hits(hits: &[(&str, &str)]) -> String {
    let mut extra = String::new();
    let mut ids = Vec::new();
    for (id, _) in hits {
        let (id, rest) = id.split_once(',').unwrap_or((id, ""));
        if !rest.is_empty() {
            extra = format!(",{rest}");
        }
        ids.push(id.trim_matches('"').to_string());
    }
    let scores: Vec<&str> = hits.iter().map(|(_, s)| *s).collect();
    format!(
        r#"{{"status":{{}},"results":{{"num_queries":1,"top_k":{n},"scores":[{}],"ids":{{"IdField":{{"IntId":{{"data":[{}]}}}}}},"topks":[{n}]{extra}}}}}"#,
        scores.join(","),
        ids.join(","),
        n = hits.len()
    )
}

/// The longest error message a server's reply may make (issue 21: an HTML
/// page came whole).
const MESSAGE_MAX: usize = 400;

/// A web server's error page, 40 KB of it.
fn html_page(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n{}</body>\n</html>\n",
        "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n".repeat(640)
    )
}

/// Replies that are not HTTP/1.
fn not_http1() -> [(&'static str, Act); 3] {
    [
        ("garbage bytes", Act::Garbage),
        ("an HTTP/2-only answer", Act::Http2),
        ("a body without a status line", Act::NoStatusLine),
    ]
}

fn table(d: Dialect, victim_port: u16) -> Vec<Row> {
    let p = paths(d);
    let mut rows = Vec::new();
    let mut add = |what: &str, op: Op, at: (&'static str, &'static str), act: Act, want: Want| {
        rows.push(Row {
            what: what.to_string(),
            op,
            method: at.0,
            path: at.1,
            act,
            want,
        })
    };
    let milvus = d != Dialect::Qdrant;
    // A Milvus id is a JSON string in v1, a number in v2; Qdrant's a number.
    let id = |n: &str| -> String {
        if d == Dialect::MilvusV1 {
            format!("\"{n}\"")
        } else {
            n.to_string()
        }
    };
    let (i1, i2, i9) = (id("1"), id("2"), id("9"));

    // Every endpoint: broken bodies, transport failures, redirects, size.
    let endpoints: Vec<(&str, Op, (&'static str, &'static str))> = vec![
        ("search", Op::Search, p.search),
        ("search_batch", Op::SearchBatch, p.search),
        ("get", Op::Get, p.get),
        ("delete", Op::Delete, p.get),
        ("len", Op::Len, p.count),
        ("add", Op::Add, p.upsert),
    ];
    for (name, op, at) in &endpoints {
        let (op, at) = (*op, *at);
        let truncated = match d {
            Dialect::Qdrant => r#"{"result":[{"id":1,"#.to_string(),
            _ => r#"{"code":200,"data":[{"id":"1","#.to_string(),
        };
        add(
            &format!("{name}: truncated JSON"),
            op,
            at,
            ok(&truncated),
            Want::Remote,
        );
        add(
            &format!("{name}: not JSON"),
            op,
            at,
            ok("<html>proxy error</html>"),
            Want::Remote,
        );
        add(
            &format!("{name}: mistyped data"),
            op,
            at,
            ok(&wrap(d, r#""x""#)),
            Want::Remote,
        );
        add(
            &format!("{name}: a 503 persisting"),
            op,
            at,
            Act::Reply(503, "busy".into()),
            Want::Unavailable,
        );
        add(
            &format!("{name}: a 429 persisting"),
            op,
            at,
            Act::Reply(429, "slow down".into()),
            Want::Unavailable,
        );
        add(
            &format!("{name}: cut connection"),
            op,
            at,
            Act::Close,
            Want::Unavailable,
        );
        add(
            &format!("{name}: body cut short"),
            op,
            at,
            Act::CutBody,
            Want::Unavailable,
        );
        add(
            &format!("{name}: slow body"),
            op,
            at,
            Act::Slow,
            Want::Unavailable,
        );
        add(
            &format!("{name}: no reply"),
            op,
            at,
            Act::Hang,
            Want::Unavailable,
        );
        add(
            &format!("{name}: endless body"),
            op,
            at,
            Act::Endless,
            Want::Remote,
        );
        add(
            &format!("{name}: 50 MB body of zeros"),
            op,
            at,
            Act::Big(50 << 20),
            Want::Remote,
        );
        add(
            &format!("{name}: 50 MB announced"),
            op,
            at,
            Act::BigAnnounced(50 << 20),
            Want::Remote,
        );
        add(
            &format!("{name}: redirect to another origin"),
            op,
            at,
            Act::Redirect(victim_port),
            Want::RemoteStatus(307),
        );
        // Error replies make bounded messages that say what came (issue 21).
        add(
            &format!("{name}: a 403 HTML page"),
            op,
            at,
            Act::Reply(403, html_page("403 Forbidden")),
            Want::RemoteSaying(r#"an HTML page (title "403 Forbidden""#.into()),
        );
        add(
            &format!("{name}: a 404 with an empty body"),
            op,
            at,
            Act::Reply(404, String::new()),
            Want::RemoteSaying(format!("an empty reply to {} {}", at.0, at.1)),
        );
        // After a good open, the server stops speaking HTTP/1: its fault,
        // not a URI naming another protocol's port (issue 21).
        for (what, act) in not_http1() {
            add(
                &format!("{name}: {what} after a good open"),
                op,
                at,
                act,
                Want::RemoteOrUnavailable,
            );
        }
    }

    // The first request of open meeting a port of another protocol: the
    // URI names the wrong port, the caller's to fix.
    let first = if milvus {
        ("POST", "/v2/vectordb/collections/list")
    } else {
        p.describe
    };
    for (what, act) in not_http1() {
        add(
            &format!("open: {what} from the start"),
            Op::Open,
            first,
            act,
            Want::InvalidArgument,
        );
    }

    // Search hits.
    let s = p.search;
    add(
        "search: hit without id",
        Op::Search,
        s,
        ok(&hits(d, &[("null", "0.5")])),
        Want::Remote,
    );
    add(
        "search: hit without score",
        Op::Search,
        s,
        ok(&hits(d, &[(&i1, "null")])),
        Want::Remote,
    );
    add(
        "search: score as a string \"NaN\"",
        Op::Search,
        s,
        ok(&hits(d, &[(&i1, "\"NaN\"")])),
        Want::Remote,
    );
    add(
        "search: score 1e39",
        Op::Search,
        s,
        ok(&hits(d, &[(&i1, "1e39")])),
        Want::Remote,
    );
    add(
        "search: score 1e400",
        Op::Search,
        s,
        ok(&hits(d, &[(&i1, "1e400")])),
        Want::Remote,
    );
    add(
        "search: negative L2",
        Op::Search,
        s,
        ok(&hits(d, &[(&i1, "-2.0")])),
        Want::Remote,
    );
    add(
        "search: the same id twice",
        Op::Search,
        s,
        ok(&hits(d, &[(&i1, "0.5"), (&i1, "0.7")])),
        Want::Remote,
    );
    add(
        // k 1 asks for 2 (one more, for ties at the boundary): 3 is too many.
        "search: more than k",
        Op::SearchK1,
        s,
        ok(&hits(d, &[(&i1, "0.5"), (&i2, "0.7"), (&i9, "0.9")])),
        Want::Remote,
    );
    add(
        "search: outside the filter",
        Op::SearchFiltered,
        s,
        ok(&hits(d, &[(&i1, "0.5"), (&i9, "0.7")])),
        Want::Remote,
    );
    add(
        "search: unsorted",
        Op::Search,
        s,
        ok(&hits(d, &[(&i1, "0.9"), (&i2, "0.5")])),
        Want::Remote,
    );
    add(
        "search: a negative id",
        Op::Search,
        s,
        ok(&hits(d, &[(&id("-3"), "0.5")])),
        Want::Remote,
    );
    add(
        "search: extra fields are fine",
        Op::Search,
        s,
        ok(&hits(
            d,
            &[(
                &format!(r#"{i1},"extra":{{"a":[1,2]}},"payload":null"#),
                "0.5",
            )],
        )),
        Want::Ok,
    );
    if milvus {
        for big in ["9223372036854775807", "18446744073709551615"] {
            add(
                &format!("search: id {big} beyond Milvus's range"),
                Op::Search,
                s,
                ok(&hits(d, &[(&id(big), "0.5")])),
                Want::Remote,
            );
        }
    }
    if d == Dialect::Qdrant {
        add(
            "search: not one list per query",
            Op::SearchBatch,
            s,
            ok(&wrap(d, "[[]]")),
            Want::Remote,
        );
    }

    // Rows by id: get, and delete's presence check.
    let row = |idj: &str, vec: &str| format!(r#"{{"id":{idj},"vector":{vec}}}"#);
    let junk = wrap(d, r#"[5,"x",null,[],{}]"#);
    let other = wrap(d, &format!("[{}]", row(&i2, "[1,0,0,0]")));
    let twice = wrap(d, &format!("[{0},{0}]", row(&i1, "[1,0,0,0]")));
    let count_shaped = match d {
        Dialect::Qdrant => wrap(d, r#"{"count":1}"#),
        _ => wrap(d, r#"[{"count(*)":1}]"#),
    };
    let search_shaped = match d {
        Dialect::Qdrant => wrap(d, r#"[[{"id":1,"score":0.5}]]"#),
        _ => wrap(d, r#"[[{"id":1,"distance":0.5}]]"#),
    };
    for (name, op) in [("get", Op::Get), ("delete", Op::Delete)] {
        let g = p.get;
        add(
            &format!("{name}: junk rows"),
            op,
            g,
            ok(&junk),
            Want::Remote,
        );
        add(
            &format!("{name}: a row for another id"),
            op,
            g,
            ok(&other),
            Want::Remote,
        );
        add(
            &format!("{name}: two rows for the id"),
            op,
            g,
            ok(&twice),
            Want::Remote,
        );
        add(
            &format!("{name}: a count-shaped reply"),
            op,
            g,
            ok(&count_shaped),
            Want::Remote,
        );
        add(
            &format!("{name}: a search-shaped reply"),
            op,
            g,
            ok(&search_shaped),
            Want::Remote,
        );
    }
    let g = p.get;
    add(
        "get: a vector of the wrong length",
        Op::Get,
        g,
        ok(&wrap(d, &format!("[{}]", row(&i1, "[1,2,3]")))),
        Want::Remote,
    );
    add(
        "get: a vector with null",
        Op::Get,
        g,
        ok(&wrap(d, &format!("[{}]", row(&i1, "[1,null,0,0]")))),
        Want::Remote,
    );
    add(
        "get: a vector component 1e39",
        Op::Get,
        g,
        ok(&wrap(d, &format!("[{}]", row(&i1, "[1e39,0,0,0]")))),
        Want::Remote,
    );
    add(
        "get: no vector",
        Op::Get,
        g,
        ok(&wrap(d, &format!(r#"[{{"id":{i1}}}]"#))),
        Want::Remote,
    );
    add(
        "get: extra fields are fine",
        Op::Get,
        g,
        ok(&wrap(
            d,
            &format!(r#"[{{"id":{i1},"vector":[1,0,0,0],"x":{{"y":1}}}}]"#),
        )),
        Want::Ok,
    );

    // Counts and writes.
    let c = p.count;
    let no_count = match d {
        Dialect::Qdrant => wrap(d, "{}"),
        _ => wrap(d, "[{}]"),
    };
    add("len: no count", Op::Len, c, ok(&no_count), Want::Remote);
    let neg_count = match d {
        Dialect::Qdrant => wrap(d, r#"{"count":-1}"#),
        _ => wrap(d, r#"[{"count(*)":-1}]"#),
    };
    add(
        "len: a negative count",
        Op::Len,
        c,
        ok(&neg_count),
        Want::Remote,
    );
    let u = p.upsert;
    let unacked = match d {
        Dialect::Qdrant => wrap(d, r#"{"operation_id":1,"status":"acknowledged"}"#),
        _ => wrap(d, r#"{"upsertCount":0}"#),
    };
    add("add: not applied", Op::Add, u, ok(&unacked), Want::Remote);
    add(
        "add: no status",
        Op::Add,
        u,
        ok(&wrap(d, "{}")),
        Want::Remote,
    );

    // Milvus's sync and open.
    if milvus {
        let q = p.query;
        add(
            "sync: rows without the vector asked for",
            Op::Sync,
            q,
            ok(&wrap(d, &format!(r#"[{{"id":{i1}}}]"#))),
            Want::Remote,
        );
        add(
            "sync: rows for other ids",
            Op::Sync,
            q,
            ok(&wrap(d, &format!("[{}]", row(&i9, "[1,0,0,0]")))),
            Want::Remote,
        );
        add("sync: junk rows", Op::Sync, q, ok(&junk), Want::Remote);
        for (what, act) in not_http1() {
            add(
                &format!("sync: {what} after a good open"),
                Op::Sync,
                q,
                act,
                Want::RemoteOrUnavailable,
            );
        }
        add(
            "sync: a 503 persisting",
            Op::Sync,
            q,
            Act::Reply(503, "busy".into()),
            Want::Unavailable,
        );
        let describe_no_load = wrap(
            d,
            r#"{"collectionName":"c","autoId":false,"fields":[
                {"autoId":false,"name":"id","primaryKey":true,"type":"Int64"},
                {"autoId":false,"name":"vector","primaryKey":false,"type":"FloatVector(4)"}],
                "indexes":[{"fieldName":"vector","indexName":"vector","metricType":"L2"}]}"#,
        );
        add(
            "open: a description without load state",
            Op::Open,
            p.describe,
            ok(&describe_no_load),
            Want::Remote,
        );
        add(
            "open: a description of the wrong type",
            Op::Open,
            p.describe,
            ok(&wrap(d, "[1,2]")),
            Want::Remote,
        );
        add(
            "open: describe redirected",
            Op::Open,
            p.describe,
            Act::Redirect(victim_port),
            Want::RemoteStatus(307),
        );
    } else {
        add(
            "open: a mistyped description",
            Op::Open,
            p.describe,
            ok(&wrap(
                d,
                r#"{"config":{"params":{"vectors":{"size":"4","distance":"Euclid"}}}}"#,
            )),
            Want::Remote,
        );
        add(
            "open: describe redirected",
            Op::Open,
            p.describe,
            Act::Redirect(victim_port),
            Want::RemoteStatus(307),
        );
        add(
            "open: describe 50 MB",
            Op::Open,
            p.describe,
            Act::Big(50 << 20),
            Want::Remote,
        );
        let info = |status: &str, points: &str, hnsw: &str| {
            ok(&wrap(
                d,
                &format!(
                    r#"{{"status":"{status}","optimizer_status":"ok","points_count":{points},
                    "indexed_vectors_count":2,"segments_count":1,"config":{{"params":{{"vectors":
                    {{"size":4,"distance":"Euclid"}}}}{hnsw}}}}}"#
                ),
            ))
        };
        let hnsw = r#","hnsw_config":{"full_scan_threshold":10}"#;
        for (what, act, want) in [
            ("a healthy description", info("green", "2", hnsw), Want::Ok),
            ("an unknown status", info("purple", "2", hnsw), Want::Remote),
            ("a negative count", info("green", "-1", hnsw), Want::Remote),
            (
                "an optimizer error",
                info("red", "2", hnsw),
                Want::Unavailable,
            ),
            (
                "no full-scan threshold",
                info("green", "2", ""),
                Want::Remote,
            ),
        ] {
            let what = format!("finish_indexing: {what}");
            add(&what, Op::FinishIndexing, p.describe, act, want);
        }
    }
    if d == Dialect::MilvusV1 {
        let persist = ("POST", "/api/v1/persist");
        let progress = ("GET", "/api/v1/index/progress");
        let segments = ("GET", "/api/v1/query-segment-info");
        for (what, at, act, want) in [
            (
                "a healthy server",
                persist,
                ok(r#"{"status":{}}"#),
                Want::Ok,
            ),
            (
                "a refused flush",
                persist,
                ok(r#"{"status":{"error_code":1,"reason":"no"}}"#),
                Want::Remote,
            ),
            (
                "a flush answered 503",
                persist,
                Act::Reply(503, "busy".into()),
                Want::Unavailable,
            ),
            (
                "a compaction in an unknown state",
                ("GET", "/api/v1/compaction/state"),
                ok(r#"{"status":{},"state":7}"#),
                Want::Remote,
            ),
            (
                "a collection without its id",
                ("GET", "/api/v1/collection"),
                ok(r#"{"status":{}}"#),
                Want::Remote,
            ),
            (
                "a progress count that is text",
                progress,
                ok(r#"{"status":{},"indexed_rows":"2","total_rows":2}"#),
                Want::Remote,
            ),
            (
                "segments that are not a list",
                segments,
                ok(r#"{"status":{},"infos":"x"}"#),
                Want::Remote,
            ),
            (
                "a segment row count that is negative",
                segments,
                ok(r#"{"status":{},"infos":[{"num_rows":-2,"index_name":"vector"}]}"#),
                Want::Remote,
            ),
        ] {
            let what = format!("finish_indexing: {what}");
            add(&what, Op::FinishIndexing, at, act, want);
        }
    }
    if d == Dialect::MilvusV2 {
        add(
            "finish_indexing: not built for REST v2",
            Op::FinishIndexing,
            p.describe,
            ok(&wrap(d, "{}")),
            Want::Unsupported,
        );
    }
    rows
}

// ---------- running it ----------

fn uri(d: Dialect, port: u16) -> String {
    let scheme = if d == Dialect::Qdrant {
        "qdrant"
    } else {
        "milvus"
    };
    // An API key, so a redirect that carried it would show at the victim;
    // Milvus 2.3's management API is the same scripted server.
    format!(
        "{scheme}://127.0.0.1:{port}/c?timeout_ms=250&retries=2&api_key=secret-key{}",
        if d == Dialect::Qdrant {
            String::new()
        } else {
            format!("&mgmt_port={port}")
        }
    )
}

/// The ops of a row, on an index opened before the misbehaviour starts.
async fn op_on(idx: &dyn VectorIndex, op: Op) -> Result<String, Error> {
    let q = V;
    let p = SearchParams::default();
    Ok(match op {
        Op::Open => "opened".into(),
        Op::Search => format!("{:?}", idx.search(&q, 3, &p).await?),
        Op::SearchK1 => format!("{:?}", idx.search(&q, 1, &p).await?),
        Op::SearchFiltered => {
            let p = SearchParams::default().with_filter(Filter::allow([1, 2]));
            format!("{:?}", idx.search(&q, 3, &p).await?)
        }
        Op::SearchBatch => format!(
            "{:?}",
            idx.search_batch(&[q.to_vec(), q.to_vec()], 3, &p).await?
        ),
        Op::Get => format!("{:?}", idx.get(1).await?),
        Op::Delete => format!("{:?}", idx.delete(1).await?),
        Op::Len => format!("{:?}", idx.len().await?),
        Op::Add => format!("{:?}", idx.add(1, &q).await?),
        Op::Sync => format!("{:?}", idx.sync().await?),
        Op::FinishIndexing => format!("{:?}", idx.finish_indexing().await?),
    })
}

fn matches_want(got: &Result<String, Error>, want: &Want) -> bool {
    match (want, got) {
        (Want::Ok, Ok(_)) => true,
        (Want::Remote, Err(Error::Remote { .. })) => true,
        (Want::RemoteStatus(s), Err(Error::Remote { status, .. })) => s == status,
        (Want::Unavailable, Err(Error::Unavailable(_))) => true,
        (Want::RemoteOrUnavailable, Err(Error::Remote { .. } | Error::Unavailable(_))) => true,
        (Want::InvalidArgument, Err(Error::InvalidArgument(_))) => true,
        (Want::RemoteSaying(what), Err(e @ Error::Remote { .. })) => {
            let m = e.to_string();
            m.contains(what.as_str()) && m.chars().count() <= MESSAGE_MAX
        }
        (Want::Unsupported, Err(Error::Unsupported(_))) => true,
        _ => false,
    }
}

/// Peak resident memory of this process, in MiB (Linux).
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kb| kb / 1024)
}

/// Drives `fut` on the client runtime (async rows) or on this plain thread
/// with no runtime at all (blocking rows).
fn drive<F: std::future::Future>(rt: Option<&tokio::runtime::Runtime>, fut: F) -> F::Output {
    match rt {
        Some(rt) => rt.block_on(fut),
        None => vecsearch_core::exec::block_on(fut),
    }
}

/// Every call of a row must end within about timeout x retries and the backoff.
const LIMIT: Duration = Duration::from_secs(3);

/// Runs the whole table of `d`, async (on a Tokio runtime) or blocking
/// (this plain thread, no runtime); fails listing every row that broke.
fn run_table(d: Dialect, blocking: bool) {
    let healthy: Healthy = match d {
        Dialect::Qdrant => qdrant_healthy,
        Dialect::MilvusV1 => milvus_v1_healthy,
        Dialect::MilvusV2 => milvus_v2_healthy,
    };
    let (server, _srt) = start(healthy);
    let (victim, _vrt) = start(healthy);
    let uri = uri(d, server.port);
    let spec = IndexSpec::new(DIM, Metric::L2);
    let client_rt = (!blocking).then(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    });
    let rt = client_rt.as_ref();
    let mut broken = Vec::new();
    let rows = table(d, victim.port);
    let n = rows.len();
    for row in rows {
        let label = format!(
            "{d:?} {} {}",
            if blocking { "blocking" } else { "async" },
            row.what
        );
        server.set(None);
        victim.set(None);
        let over = Some((row.method, row.path, row.act.clone()));
        let start = Instant::now();
        let got = if row.op == Op::Open {
            server.set(over);
            drive(rt, async {
                vecsearch_remote::open_uri(&uri, spec.clone())
                    .await
                    .map(|_| "opened".to_string())
            })
        } else {
            // Blocking: what `vecsearch::open_blocking` does, on this thread.
            let opened =
                drive(rt, vecsearch_remote::open_uri(&uri, spec.clone())).map(Blocking::new);
            let idx = match opened {
                Ok(idx) => idx,
                Err(e) => {
                    broken.push(format!(
                        "{label}: open against the healthy server failed: {e}"
                    ));
                    continue;
                }
            };
            if row.op == Op::Sync {
                let added = drive(rt, idx.inner().add(1, &V));
                if let Err(e) = added {
                    broken.push(format!("{label}: the healthy add failed: {e}"));
                    continue;
                }
            }
            server.set(over);
            let start = Instant::now();
            let got = drive(rt, op_on(idx.inner(), row.op));
            let took = start.elapsed();
            if took > LIMIT {
                broken.push(format!("{label}: took {took:?}"));
            }
            drop(idx);
            got
        };
        let took = start.elapsed();
        if !matches_want(&got, &row.want) {
            broken.push(format!("{label}: wanted {:?}, got {got:?}", row.want));
        } else if took > LIMIT + LIMIT {
            broken.push(format!("{label}: took {took:?}"));
        }
        if victim.with_credentials.load(Ordering::SeqCst) > 0
            || !victim.log.lock().unwrap().is_empty()
        {
            broken.push(format!(
                "{label}: a request reached the other origin (credentials: {})",
                victim.with_credentials.load(Ordering::SeqCst)
            ));
            victim.with_credentials.store(0, Ordering::SeqCst);
        }
        // A junk presence reply must not leave the point on the server.
        if row.op == Op::Delete
            && row.path == paths(d).get.1
            && matches!(row.act, Act::Reply(200, _))
        {
            let (m, p) = paths(d).delete;
            if !server.saw(m, p) {
                broken.push(format!("{label}: the delete was never sent"));
            }
        }
    }
    // Big and endless bodies were refused early, not read whole.
    let written = server.written.load(Ordering::SeqCst);
    let big_rows = 3 * 6 + 1;
    if written > big_rows * (24 << 20) {
        broken.push(format!(
            "{written} bytes of big bodies were written: the client kept reading"
        ));
    }
    if let Some(peak) = peak_rss_mib() {
        if peak > 400 {
            broken.push(format!("peak resident memory {peak} MiB"));
        }
    }
    assert!(
        broken.is_empty(),
        "{} of {n} rows broke:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn qdrant_async() {
    run_table(Dialect::Qdrant, false);
}

#[test]
fn qdrant_blocking_no_runtime() {
    run_table(Dialect::Qdrant, true);
}

#[test]
fn milvus_v1_async() {
    run_table(Dialect::MilvusV1, false);
}

#[test]
fn milvus_v1_blocking_no_runtime() {
    run_table(Dialect::MilvusV1, true);
}

#[test]
fn milvus_v2_async() {
    run_table(Dialect::MilvusV2, false);
}

#[test]
fn milvus_v2_blocking_no_runtime() {
    run_table(Dialect::MilvusV2, true);
}

/// Qdrant's create must answer `result: true`: `false` or no result means
/// no collection exists, so open fails.
#[test]
fn qdrant_create_not_confirmed_is_an_error() {
    fn absent_then(result: &'static str) -> Healthy {
        // A fn pointer cannot capture: one per reply.
        match result {
            "false" => |m, p, b| create_answer(m, p, b, r#"{"result":false,"status":"ok"}"#),
            _ => |m, p, b| create_answer(m, p, b, r#"{"status":"ok","time":0.1}"#),
        }
    }
    fn create_answer(method: &str, path: &str, body: &str, answer: &str) -> Act {
        match (method, path) {
            ("GET", "/collections/c") => Act::Reply(
                404,
                r#"{"status":{"error":"Not found: Collection `c` doesn't exist!"}}"#.into(),
            ),
            ("PUT", "/collections/c") => ok(answer),
            _ => qdrant_healthy(method, path, body),
        }
    }
    for result in ["false", "none"] {
        let (server, _rt) = start(absent_then(result));
        let got = vecsearch_core::exec::block_on(vecsearch_remote::open_uri(
            &uri(Dialect::Qdrant, server.port),
            IndexSpec::new(DIM, Metric::L2),
        ));
        assert!(
            matches!(got, Err(Error::Remote { .. })),
            "create answering {result}: {:?}",
            got.map(|_| ())
        );
    }
}

static LOAD_DESCRIBES: AtomicUsize = AtomicUsize::new(0);
static SYNC_QUERIES: AtomicUsize = AtomicUsize::new(0);

/// A Milvus 2.3 whose collection is still loading for two descriptions, and
/// which shows a write only at the third query: both waits must sleep.
fn milvus_slow_to_load_and_show(method: &str, path: &str, body: &str) -> Act {
    if (method, path) == ("GET", "/v1/vector/collections/describe")
        && LOAD_DESCRIBES.fetch_add(1, Ordering::SeqCst) < 2
    {
        return ok(r#"{"code":200,"data":{"collectionName":"c","fields":[
            {"autoId":false,"name":"id","primaryKey":true,"type":"Int64"},
            {"autoId":false,"name":"vector","primaryKey":false,"type":"FloatVector(4)"}],
            "indexes":[{"fieldName":"vector","indexName":"vector","metricType":"L2"}],
            "load":"LoadStateLoading","shardsNum":1}}"#);
    }
    if (method, path) == ("POST", "/v1/vector/query")
        && !body.contains("count(*)")
        && SYNC_QUERIES.fetch_add(1, Ordering::SeqCst) < 2
    {
        return ok(r#"{"code":200,"data":[]}"#);
    }
    milvus_v1_healthy(method, path, body)
}

/// The waits of open (for the collection to load) and of sync (for a write
/// to show) sleep on the index's runtime, so a plain thread with no Tokio
/// runtime runs them (issue 13: both panicked for want of a reactor).
#[test]
fn milvus_waits_run_without_a_runtime() {
    let (server, _rt) = start(milvus_slow_to_load_and_show);
    let idx = vecsearch_core::exec::block_on(vecsearch_remote::open_uri(
        &uri(Dialect::MilvusV1, server.port),
        IndexSpec::new(DIM, Metric::L2),
    ))
    .map(Blocking::new)
    .expect("open waits for the load");
    assert!(LOAD_DESCRIBES.load(Ordering::SeqCst) >= 3);
    idx.add(1, &V).unwrap();
    vecsearch_core::exec::block_on(idx.inner().sync()).expect("sync waits for the write");
    assert!(SYNC_QUERIES.load(Ordering::SeqCst) >= 3);
}

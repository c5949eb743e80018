//! A scripted HTTP server standing in where no real one can: replies no
//! real server should send (5xx storms, hangs, dropped connections,
//! non-JSON, wrong shapes, non-finite or missing fields), each of which must
//! come back as an `Err` (never `Ok`, a panic or a hang); and the request
//! and reply shapes of Milvus REST v2 as documented, since no 2.4 server can
//! run here. The wider table of misbehaviours is `misbehaviour.rs`. Milvus
//! 2.3 itself is tested for real by `conformance_milvus`, `restart_milvus`
//! and `reopen_milvus`, Qdrant 1.18 by `conformance_qdrant`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vecsearch_core::{Error, IndexSpec, Metric, SearchParams, VectorIndex};

/// What the scripted server does with one request.
#[derive(Clone)]
enum Act {
    Reply(u16, String),
    Hang,
    Close,
}

type Script = Arc<dyn Fn(&str, &str) -> Act + Send + Sync>;

/// A scripted HTTP/1.1 server on 127.0.0.1; `script` maps a request path to
/// an act, and can be swapped while the server runs.
struct Server {
    port: u16,
    script: Arc<Mutex<Script>>,
    hits: Arc<AtomicUsize>,
}

impl Server {
    async fn start(script: Script) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = Arc::new(Mutex::new(script));
        let hits = Arc::new(AtomicUsize::new(0));
        let (s, h) = (Arc::clone(&script), Arc::clone(&hits));
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (s, h) = (Arc::clone(&s), Arc::clone(&h));
                tokio::spawn(serve(conn, s, h));
            }
        });
        Server { port, script, hits }
    }

    fn set(&self, script: Script) {
        *self.script.lock().unwrap() = script;
        self.hits.store(0, Ordering::SeqCst);
    }
}

async fn serve(mut conn: TcpStream, script: Arc<Mutex<Script>>, hits: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    loop {
        // Read one request: headers, then Content-Length bytes of body.
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
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 65536];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
        buf.drain(..head_end + len);
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        hits.fetch_add(1, Ordering::SeqCst);
        let act = (script.lock().unwrap())(&path, &body);
        match act {
            Act::Reply(status, body) => {
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if conn.write_all(resp.as_bytes()).await.is_err() {
                    return;
                }
            }
            Act::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Act::Close => return,
        }
    }
}

fn ok(body: &str) -> Act {
    Act::Reply(200, body.to_string())
}

/// A Milvus 2.3 (REST v1) that holds a loaded 4-dimensional L2 collection,
/// and answers `other` for everything else.
fn milvus_with(other: Act) -> Script {
    Arc::new(move |path: &str, _body: &str| {
        if path.starts_with("/v2/") {
            Act::Reply(404, "404 page not found".into())
        } else if path == "/v1/vector/collections" {
            ok(r#"{"code":200,"data":["c"]}"#)
        } else if path.starts_with("/v1/vector/collections/describe") {
            ok(r#"{"code":200,"data":{"collectionName":"c","fields":[
                {"autoId":false,"name":"id","primaryKey":true,"type":"Int64"},
                {"autoId":false,"name":"vector","primaryKey":false,"type":"FloatVector(4)"}],
                "indexes":[{"fieldName":"vector","indexName":"vector","metricType":"L2"}],
                "load":"LoadStateLoaded","shardsNum":1}}"#)
        } else {
            other.clone()
        }
    })
}

/// A Qdrant holding a 4-dimensional Euclid collection `c`.
fn qdrant_with(other: Act) -> Script {
    Arc::new(move |path: &str, _body: &str| {
        if path == "/collections/c" {
            ok(
                r#"{"result":{"status":"green","config":{"params":{"vectors":{"size":4,"distance":"Euclid"}}}},"status":"ok","time":0.0}"#,
            )
        } else {
            other.clone()
        }
    })
}

/// Every call of the trait, each expected to fail promptly.
async fn every_call_fails(idx: &dyn VectorIndex, label: &str) {
    let q = [1.0f32, 0.0, 0.0, 0.0];
    let p = SearchParams::default();
    let limit = Duration::from_secs(10);
    macro_rules! expect_err {
        ($what:expr, $fut:expr) => {{
            let start = Instant::now();
            match tokio::time::timeout(limit, $fut).await {
                Err(_) => panic!("{label}: {} hung", $what),
                Ok(Ok(v)) => panic!("{label}: {} returned Ok({v:?})", $what),
                Ok(Err(e)) => {
                    assert!(
                        matches!(e, Error::Remote { .. } | Error::Unavailable(_)),
                        "{label}: {}: unexpected error kind {e:?}",
                        $what
                    );
                    assert!(start.elapsed() < limit);
                }
            }
        }};
    }
    expect_err!("search", idx.search(&q, 3, &p));
    expect_err!(
        "search_batch",
        idx.search_batch(&[q.to_vec(), q.to_vec()], 3, &p)
    );
    expect_err!("add", idx.add(1, &q));
    expect_err!(
        "add_batch",
        idx.add_batch(&[1, 2], &[q.to_vec(), q.to_vec()])
    );
    expect_err!("delete", idx.delete(1));
    expect_err!("get", idx.get(1));
    expect_err!("len", idx.len());
}

const BAD_REPLIES: &[(&str, u16, &str)] = &[
    ("not JSON", 200, "<html>oops</html>"),
    ("empty body", 200, ""),
    ("truncated JSON", 200, r#"{"code":200,"data":[{"id":"1","#),
    ("an error code", 200, r#"{"code":1804,"message":"wrong dimension"}"#),
    ("no code", 200, r#"{"data":[]}"#),
    ("code of the wrong type", 200, r#"{"code":"200","data":[]}"#),
    ("data of the wrong type", 200, r#"{"code":200,"data":5}"#),
    ("a 404", 404, "404 page not found"),
    ("a 400 with JSON", 400, r#"{"status":{"error":"bad"}}"#),
    ("deep nesting", 200, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["),
];

/// Shapes that parse as JSON with a success code but cannot be trusted.
const BAD_MILVUS_DATA: &[&str] = &[
    r#"{"code":200,"data":[{"id":"abc","distance":1.0,"count(*)":"x","vector":[1,2],"upsertCount":1}]}"#,
    r#"{"code":200,"data":[{"id":"-3","distance":1.0,"vector":[1,2,3,4,5]}]}"#,
    r#"{"code":200,"data":[{"id":"1","distance":null,"vector":[1,null,3,4]}]}"#,
    r#"{"code":200,"data":[{"id":"1","distance":"NaN","vector":"1,2,3,4","count(*)":-1}]}"#,
    r#"{"code":200,"data":{"upsertCount":7}}"#,
];

/// The scripted server answers Milvus 2.3's management API too (searches go
/// there): never a real server's port 9091.
fn milvus_uri(port: u16) -> String {
    format!("milvus://127.0.0.1:{port}/c?timeout_ms=300&retries=2&mgmt_port={port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn milvus_hostile_replies_are_errors() {
    let server = Server::start(milvus_with(Act::Close)).await;
    let idx = vecsearch_remote::open_uri(&milvus_uri(server.port), IndexSpec::new(4, Metric::L2))
        .await
        .expect("open against the scripted Milvus");
    for (what, status, body) in BAD_REPLIES {
        // A fresh index each time: a delete sent after a junk presence
        // reply is remembered (the id is then known absent until sync).
        server.set(milvus_with(Act::Close));
        let idx =
            vecsearch_remote::open_uri(&milvus_uri(server.port), IndexSpec::new(4, Metric::L2))
                .await
                .expect("open against the scripted Milvus");
        server.set(milvus_with(Act::Reply(*status, body.to_string())));
        every_call_fails(&*idx, &format!("milvus, {what}")).await;
    }
    for body in BAD_MILVUS_DATA {
        server.set(milvus_with(ok(body)));
        // Writes may succeed or fail on these; reads must not be Ok.
        let q = [1.0f32, 0.0, 0.0, 0.0];
        let got = idx.search(&q, 3, &SearchParams::default()).await;
        assert!(got.is_err(), "search accepted {body}: {got:?}");
        let got = idx.len().await;
        assert!(got.is_err(), "len accepted {body}: {got:?}");
        let got = idx.add_batch(&[1, 2], &[q.to_vec(), q.to_vec()]).await;
        assert!(got.is_err(), "add_batch accepted {body}: {got:?}");
    }
    // A vector of the wrong length or with a null is not a stored vector.
    server.set(milvus_with(ok(
        r#"{"code":200,"data":[{"id":"1","vector":[1,2,3]}]}"#,
    )));
    assert!(idx.get(1).await.is_err());
    server.set(milvus_with(ok(
        r#"{"code":200,"data":[{"id":"1","vector":[1,null,3,4]}]}"#,
    )));
    assert!(idx.get(1).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn milvus_outages_are_unavailable_after_retries() {
    let server = Server::start(milvus_with(Act::Close)).await;
    let idx = vecsearch_remote::open_uri(&milvus_uri(server.port), IndexSpec::new(4, Metric::L2))
        .await
        .expect("open against the scripted Milvus");
    for (what, act) in [
        ("a 503", Act::Reply(503, "busy".into())),
        ("a hang", Act::Hang),
        ("a dropped connection", Act::Close),
    ] {
        server.set(milvus_with(act));
        let start = Instant::now();
        let got = idx
            .search(&[1.0, 0.0, 0.0, 0.0], 3, &SearchParams::default())
            .await;
        assert!(matches!(got, Err(Error::Unavailable(_))), "{what}: {got:?}");
        // Two attempts of at most 300 ms each, and one backoff.
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{what} took {:?}",
            start.elapsed()
        );
        assert_eq!(server.hits.load(Ordering::SeqCst), 2, "{what}: attempts");
    }
    // A client error is the server's answer: not retried.
    server.set(milvus_with(Act::Reply(400, "no".into())));
    assert!(matches!(
        idx.len().await,
        Err(Error::Remote { status: 400, .. })
    ));
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn milvus_open_refuses_what_it_cannot_use() {
    let server = Server::start(milvus_with(Act::Close)).await;
    // Wrong dim and wrong metric: InvalidArgument, and nothing is sent but reads.
    for spec in [
        IndexSpec::new(5, Metric::L2),
        IndexSpec::new(4, Metric::Cosine),
    ] {
        let got = vecsearch_remote::open_uri(&milvus_uri(server.port), spec).await;
        assert!(
            matches!(got, Err(Error::InvalidArgument(_))),
            "{:?}",
            got.err()
        );
    }
    let got =
        vecsearch_remote::open_uri(&milvus_uri(server.port), IndexSpec::new(4, Metric::Jaccard))
            .await;
    assert!(matches!(got, Err(Error::Unsupported(_))));
    // Not Milvus at all.
    server.set(Arc::new(|_: &str, _: &str| Act::Reply(404, "nope".into())));
    let got =
        vecsearch_remote::open_uri(&milvus_uri(server.port), IndexSpec::new(4, Metric::L2)).await;
    assert!(matches!(got, Err(Error::Remote { .. })), "{:?}", got.err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_hostile_replies_are_errors() {
    let server = Server::start(qdrant_with(Act::Close)).await;
    let uri = format!(
        "qdrant://127.0.0.1:{}/c?timeout_ms=300&retries=2",
        server.port
    );
    let idx = vecsearch_remote::open_uri(&uri, IndexSpec::new(4, Metric::L2))
        .await
        .expect("open against the scripted Qdrant");
    for (what, status, body) in BAD_REPLIES {
        server.set(qdrant_with(Act::Reply(*status, body.to_string())));
        every_call_fails(&*idx, &format!("qdrant, {what}")).await;
    }
    for body in [
        r#"{"result":[[{"id":"6f1a-uuid","score":1.0}]],"status":"ok"}"#,
        r#"{"result":[[{"id":1,"score":null}]],"status":"ok"}"#,
        r#"{"result":[],"status":"ok"}"#,
        r#"{"result":{"operation_id":1,"status":"acknowledged"},"status":"ok"}"#,
        r#"{"result":[{"id":1,"vector":[1,2]}],"status":"ok"}"#,
    ] {
        server.set(qdrant_with(ok(body)));
        let q = [1.0f32, 0.0, 0.0, 0.0];
        assert!(
            idx.search(&q, 3, &SearchParams::default()).await.is_err(),
            "search accepted {body}"
        );
        assert!(idx.len().await.is_err(), "len accepted {body}");
        assert!(idx.add(1, &q).await.is_err(), "add accepted {body}");
    }
    server.set(qdrant_with(ok(
        r#"{"result":[{"id":1,"vector":[1,2]}],"status":"ok"}"#,
    )));
    assert!(idx.get(1).await.is_err());
    // Wrong size or distance at open.
    let got = vecsearch_remote::open_uri(&uri, IndexSpec::new(4, Metric::Cosine)).await;
    assert!(
        matches!(got, Err(Error::InvalidArgument(_))),
        "{:?}",
        got.err()
    );
}

/// The v2 dialect (Milvus 2.4+) against the reply shapes Milvus documents,
/// since no 2.4 server can run here: detection, paths, request keys, and
/// replies with `code: 0` and numeric ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn milvus_v2_dialect_speaks_v2() {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let log = Arc::clone(&seen);
    let script: Script = Arc::new(move |path: &str, body: &str| {
        log.lock()
            .unwrap()
            .push((path.to_string(), body.to_string()));
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        match path {
            "/v2/vectordb/collections/list" => ok(r#"{"code":0,"data":["c"]}"#),
            "/v2/vectordb/collections/describe" => ok(r#"{"code":0,"data":{"autoId":false,
                "collectionName":"c","fields":[
                {"autoId":false,"name":"id","primaryKey":true,"type":"Int64"},
                {"autoId":false,"name":"vector","params":[{"key":"dim","value":"4"}],
                 "primaryKey":false,"type":"FloatVector"}],
                "indexes":[{"fieldName":"vector","indexName":"vector","metricType":"IP"}],
                "load":"LoadStateLoaded","shardsNum":1}}"#),
            "/v2/vectordb/entities/upsert" => {
                let n = v["data"].as_array().map_or(0, |a| a.len());
                ok(&format!(
                    r#"{{"code":0,"data":{{"upsertCount":{n},"upsertIds":[]}}}}"#
                ))
            }
            "/v2/vectordb/entities/search" => {
                assert!(
                    v["data"][0].is_array() && v["annsField"] == "vector",
                    "{body}"
                );
                assert_eq!(v["searchParams"]["params"]["ef"], 100, "{body}");
                ok(
                    r#"{"code":0,"cost":0,"data":[{"distance":0.9,"id":9223372036854775806},{"distance":0.5,"id":7}]}"#,
                )
            }
            "/v2/vectordb/entities/query" => {
                assert!(
                    v.get("limit").is_none(),
                    "count(*) must not send a limit: {body}"
                );
                ok(r#"{"code":0,"data":[{"count(*)":2}]}"#)
            }
            "/v2/vectordb/entities/get" => ok(r#"{"code":0,"data":[{"id":7,"vector":[1,0,0,0]}]}"#),
            "/v2/vectordb/entities/delete" => {
                assert_eq!(v["filter"], "id in [7]", "{body}");
                ok(r#"{"code":0,"data":{}}"#)
            }
            _ => Act::Reply(404, "404 page not found".into()),
        }
    });
    let server = Server::start(script).await;
    let uri = milvus_uri(server.port);
    let idx = vecsearch_remote::MilvusEngine::open(&uri, IndexSpec::new(4, Metric::InnerProduct))
        .await
        .expect("open against the scripted v2 server");
    assert!(idx.engine().speaks_v2());
    let q = [1.0f32, 0.0, 0.0, 0.0];
    idx.add_batch(&[7, 8], &[q.to_vec(), q.to_vec()])
        .await
        .unwrap();
    let got = idx.search(&q, 2, &SearchParams::default()).await.unwrap();
    assert_eq!(
        got.iter().map(|n| n.id).collect::<Vec<_>>(),
        [9223372036854775806, 7]
    );
    assert!((got[0].distance - 0.1).abs() < 1e-6 && (got[1].distance - 0.5).abs() < 1e-6);
    assert_eq!(idx.len().await.unwrap(), 2);
    assert_eq!(idx.get(7).await.unwrap(), Some(q.to_vec()));
    assert!(idx.delete(7).await.unwrap());
    let paths: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    assert!(paths.iter().all(|p| p.starts_with("/v2/")), "{paths:?}");
}

/// Qdrant against the reply shapes its REST API documents, since no Qdrant
/// server can run here: creation when absent, `wait=true` writes, batch
/// search with `hnsw_ef` and a `has_id` filter, scores to distances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_requests_follow_the_rest_api() {
    let created = Arc::new(AtomicUsize::new(0));
    let made = Arc::clone(&created);
    let script: Script = Arc::new(move |path: &str, body: &str| {
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let done =
            r#"{"result":{"operation_id":3,"status":"completed"},"status":"ok","time":0.001}"#;
        match path {
            "/collections/c" if body.is_empty() && made.load(Ordering::SeqCst) == 0 => Act::Reply(
                404,
                r#"{"status":{"error":"Not found: Collection `c` doesn't exist!"},"time":0.0}"#
                    .into(),
            ),
            "/collections/c" if body.is_empty() => ok(
                r#"{"result":{"config":{"params":{"vectors":{"size":4,"distance":"Cosine"}}}},"status":"ok"}"#,
            ),
            "/collections/c" => {
                assert_eq!(v["vectors"]["size"], 4, "{body}");
                assert_eq!(v["vectors"]["distance"], "Cosine", "{body}");
                assert_eq!(v["hnsw_config"]["m"], 16, "{body}");
                made.fetch_add(1, Ordering::SeqCst);
                ok(r#"{"result":true,"status":"ok","time":0.1}"#)
            }
            "/collections/c/points?wait=true" => {
                // The last of two equal ids is the one sent, normalised
                // (cosine vectors are normalised in f64 before sending).
                assert_eq!(v["points"].as_array().map(|a| a.len()), Some(2), "{body}");
                assert_eq!(v["points"][1]["id"], 5, "{body}");
                assert_eq!(v["points"][1]["vector"][1], 1.0, "{body}");
                ok(done)
            }
            "/collections/c/points/search/batch" => {
                let s = &v["searches"][0];
                assert_eq!(s["params"]["hnsw_ef"], 100, "{body}");
                assert_eq!(s["filter"]["must"][0]["has_id"][0], 5, "{body}");
                // k 3, and one more: a tie at the k-th place must come back whole.
                assert_eq!(s["limit"], 4, "{body}");
                ok(r#"{"result":[[{"id":5,"version":0,"score":0.75}]],"status":"ok","time":0.0}"#)
            }
            "/collections/c/points" => {
                ok(r#"{"result":[{"id":5,"vector":[0.6,0.8,0,0]}],"status":"ok"}"#)
            }
            "/collections/c/points/count" => {
                assert_eq!(v["exact"], true);
                ok(r#"{"result":{"count":2},"status":"ok"}"#)
            }
            "/collections/c/points/delete?wait=true" => {
                assert_eq!(v["points"][0], 5, "{body}");
                ok(done)
            }
            _ => Act::Reply(
                404,
                format!(r#"{{"status":{{"error":"unexpected {path}"}}}}"#),
            ),
        }
    });
    let server = Server::start(script).await;
    let uri = format!(
        "qdrant://127.0.0.1:{}/c?timeout_ms=300&retries=2",
        server.port
    );
    let idx = vecsearch_remote::QdrantEngine::open(&uri, IndexSpec::new(4, Metric::Cosine))
        .await
        .expect("open creates the collection");
    assert_eq!(created.load(Ordering::SeqCst), 1);
    idx.add_batch(
        &[5, 6, 5],
        &[
            vec![1.0, 0.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0, 0.0],
            vec![0.0, 2.0, 0.0, 0.0],
        ],
    )
    .await
    .unwrap();
    let p = SearchParams::default().with_filter(vecsearch_core::Filter::allow([5]));
    let got = idx.search(&[1.0, 0.0, 0.0, 0.0], 3, &p).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, 5);
    assert!((got[0].distance - 0.25).abs() < 1e-6);
    assert_eq!(idx.get(5).await.unwrap(), Some(vec![0.6, 0.8, 0.0, 0.0]));
    assert_eq!(idx.len().await.unwrap(), 2);
    assert!(idx.delete(5).await.unwrap());
    // An existing collection is checked, not recreated.
    let again = vecsearch_remote::QdrantEngine::open(&uri, IndexSpec::new(4, Metric::Cosine)).await;
    assert!(again.is_ok());
    assert_eq!(created.load(Ordering::SeqCst), 1);
}

/// An index opened outside any Tokio runtime runs on its own, so plain
/// threads drive it with `vecsearch_core::exec::block_on`; dropping it
/// inside some other runtime's async context does not panic either.
#[test]
fn works_without_a_runtime_of_the_callers() {
    let server_rt = tokio::runtime::Runtime::new().unwrap();
    // A management API search reply: one hit, id 3 at 0.25.
    let server = server_rt.block_on(Server::start(milvus_with(ok(
        r#"{"status":{},"results":{"num_queries":1,"top_k":1,"scores":[0.25],
            "ids":{"IdField":{"IntId":{"data":[3]}}},"topks":[1]}}"#,
    ))));
    let uri = milvus_uri(server.port);
    let idx = vecsearch_core::exec::block_on(vecsearch_remote::open_uri(
        &uri,
        IndexSpec::new(4, Metric::L2),
    ))
    .expect("open with no runtime around");
    let got = std::thread::scope(|s| {
        let h = s.spawn(|| {
            vecsearch_core::exec::block_on(idx.search(&[1.0; 4], 1, &SearchParams::default()))
        });
        h.join().unwrap()
    })
    .unwrap();
    assert_eq!(got[0].id, 3);
    server_rt.block_on(async move { drop(idx) });
}

/// Issue 21: `ids()` asks for the ids alone. Qdrant's scroll is sent
/// `with_vector: false` and `with_payload: false` and followed page by
/// page; Milvus's query names only the primary key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_ask_for_ids_alone() {
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let log = Arc::clone(&seen);
    let script: Script = Arc::new(move |path: &str, body: &str| {
        if path != "/collections/c/points/scroll" {
            return qdrant_with(Act::Close)(path, body);
        }
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        log.lock().unwrap().push(v.clone());
        // Two pages: 3 and 5, then 9 (the cursor is the next id).
        match v["offset"].as_u64() {
            None => ok(
                r#"{"result":{"points":[{"id":3},{"id":5}],"next_page_offset":9},"status":"ok"}"#,
            ),
            Some(6) => {
                ok(r#"{"result":{"points":[{"id":9}],"next_page_offset":null},"status":"ok"}"#)
            }
            Some(o) => Act::Reply(400, format!(r#"{{"status":{{"error":"offset {o}"}}}}"#)),
        }
    });
    let server = Server::start(script).await;
    let uri = format!(
        "qdrant://127.0.0.1:{}/c?timeout_ms=300&retries=2",
        server.port
    );
    let idx = vecsearch_remote::QdrantEngine::open(&uri, IndexSpec::new(4, Metric::L2))
        .await
        .expect("open against the scripted Qdrant");
    assert_eq!(idx.ids().await.unwrap(), [3, 5, 9]);
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    for b in &bodies {
        assert_eq!(b["with_vector"], false, "{b}");
        assert_eq!(b["with_payload"], false, "{b}");
    }

    let fields: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let log = Arc::clone(&fields);
    let query = Act::Reply(500, "unscripted".into());
    let script: Script = Arc::new(move |path: &str, body: &str| {
        if path != "/v1/vector/query" {
            return milvus_with(query.clone())(path, body);
        }
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let filter = v["filter"].as_str().unwrap_or("").to_string();
        if v["outputFields"][0] == "count(*)" {
            // Two rows, both in the first key range (whatever its width).
            let n = if filter.starts_with("id >= 0 && id < ") {
                2
            } else {
                0
            };
            return ok(&format!(r#"{{"code":200,"data":[{{"count(*)":{n}}}]}}"#));
        }
        log.lock().unwrap().push(v["outputFields"].clone());
        ok(r#"{"code":200,"data":[{"id":"7"},{"id":"3"}]}"#)
    });
    server.set(script);
    let idx = vecsearch_remote::open_uri(&milvus_uri(server.port), IndexSpec::new(4, Metric::L2))
        .await
        .expect("open against the scripted Milvus");
    assert_eq!(idx.ids().await.unwrap(), [3, 7]);
    assert_eq!(
        *fields.lock().unwrap(),
        [serde_json::json!(["id"])],
        "one query, for the key alone"
    );
}

/// A Milvus 2.3 whose `count(*)` replies, in turn, `counts` (then the
/// last one again), and a log of how many it was asked.
fn milvus_counting(counts: &'static [u64], asked: Arc<AtomicUsize>) -> Script {
    let base = milvus_with(Act::Close);
    Arc::new(move |path: &str, body: &str| {
        if path == "/v1/vector/query" && body.contains("count(*)") {
            let i = asked.fetch_add(1, Ordering::SeqCst).min(counts.len() - 1);
            return ok(&format!(
                r#"{{"code":200,"data":[{{"count(*)":{}}}]}}"#,
                counts[i]
            ));
        }
        base(path, body)
    })
}

/// Milvus's `count(*)` can count a row twice for a moment (a segment
/// handed over after upserts): `len` reads it until two reads in a row
/// agree, and answers the settled value; a count that keeps moving (other
/// writers) gives its last read after a bounded number of reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn milvus_len_reads_count_until_it_settles() {
    let asked = Arc::new(AtomicUsize::new(0));
    let server = Server::start(milvus_counting(&[2081, 2080], Arc::clone(&asked))).await;
    let idx = vecsearch_remote::open_uri(&milvus_uri(server.port), IndexSpec::new(4, Metric::L2))
        .await
        .expect("open against the scripted Milvus");
    asked.store(0, Ordering::SeqCst);
    assert_eq!(idx.len().await.unwrap(), 2080);
    assert_eq!(asked.load(Ordering::SeqCst), 3, "2081, 2080, 2080");

    let asked = Arc::new(AtomicUsize::new(0));
    server.set(milvus_counting(&[2080], Arc::clone(&asked)));
    assert_eq!(idx.len().await.unwrap(), 2080, "steady");
    assert_eq!(
        asked.load(Ordering::SeqCst),
        2,
        "a steady count costs two reads"
    );

    let asked = Arc::new(AtomicUsize::new(0));
    server.set(milvus_counting(
        &[10, 11, 12, 13, 14, 15, 16, 17],
        Arc::clone(&asked),
    ));
    assert_eq!(idx.len().await.unwrap(), 14, "the last of five reads");
    assert_eq!(asked.load(Ordering::SeqCst), 5);
}

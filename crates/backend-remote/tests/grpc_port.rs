//! A `milvus://` URI that points at a port speaking only gRPC (HTTP/2, as
//! milvus-lite's does) is named as such at once, not retried as a server
//! that is down.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use vecsearch_core::{Error, IndexSpec, Metric};

/// Answers every connection as an HTTP/2-only server answers an HTTP/1.1
/// request: its SETTINGS frame, then GOAWAY (PROTOCOL_ERROR), then close.
fn grpc_only_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let conns = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&conns);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let settings = [0u8, 0, 0, 4, 0, 0, 0, 0, 0];
            let goaway = [0u8, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            let _ = s.write_all(&settings);
            let _ = s.write_all(&goaway);
        }
    });
    (port, conns)
}

#[test]
fn a_grpc_port_is_named_at_once() {
    let (port, conns) = grpc_only_server();
    let uri = format!("milvus://127.0.0.1:{port}/c?timeout_ms=2000&retries=4");
    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = rt.block_on(vecsearch_remote::MilvusEngine::open(
        &uri,
        IndexSpec::new(4, Metric::L2),
    ));
    let secs = start.elapsed().as_secs_f64();
    match got {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("gRPC"), "{m}"),
        other => panic!(
            "expected InvalidArgument naming gRPC, got {:?}",
            other.map(|_| ())
        ),
    }
    assert!(
        secs < 1.5,
        "took {secs:.2} s: retried as if the server were down"
    );
    assert_eq!(
        conns.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the request was retried"
    );
}

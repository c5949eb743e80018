//! What each server stores exactly, and what it cannot (refused with
//! `Unsupported`, nothing written): checked against the real servers the
//! test command starts (`VECSEARCH_QDRANT_URL`, `VECSEARCH_MILVUS_URL`);
//! skipped, saying so, without them.

use vecsearch_core::{Error, Filter, IndexSpec, Metric, Payload, Schema, VectorIndex};
use vecsearch_remote::{drop_collection, open_uri};

fn spec() -> IndexSpec {
    IndexSpec::new(2, Metric::L2).with_schema(Schema::new().float("x").integer("n"))
}

async fn round_trip(idx: &dyn VectorIndex, id: u64, p: &Payload) -> Result<Option<Payload>, Error> {
    idx.add_with_payload(id, &[id as f32, 0.0], p).await?;
    idx.sync().await?;
    idx.get_payload(id).await
}

fn run(server: &str, body: impl std::future::Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("payload_limits: {server}");
    rt.block_on(body);
}

#[test]
fn qdrant_refuses_floats_its_parser_misreads() {
    let Ok(base) = std::env::var("VECSEARCH_QDRANT_URL") else {
        println!("payload_limits: qdrant skipped (VECSEARCH_QDRANT_URL not set)");
        return;
    };
    let uri = format!(
        "{}/payload_limits_{}",
        base.trim_end_matches('/'),
        std::process::id()
    );
    run("qdrant", async {
        let idx = open_uri(&uri, spec()).await.expect("open");
        // Measured: Qdrant 1.18.3 stores 90.33333333333333 as 90.33333333333331.
        let e = round_trip(&*idx, 1, &Payload::new().with("x", 90.333_333_333_333_33)).await;
        assert!(
            matches!(e, Err(Error::Unsupported(ref m)) if m.contains("\"x\"")),
            "{e:?}"
        );
        assert!(!idx.contains(1).await.unwrap(), "a refused write wrote");
        let r = idx
            .search(
                &[0.0, 0.0],
                1,
                &vecsearch_core::SearchParams::default()
                    .with_filter(Filter::range("x").gt(90.333_333_333_333_33)),
            )
            .await;
        assert!(matches!(r, Err(Error::Unsupported(_))), "{r:?}");
        for x in [2.5, -0.1, 1e20, 5e-324, 1.7976931348623157e308, 123.456] {
            let p = Payload::new().with("x", x).with("n", (1_i64 << 53) + 1);
            assert_eq!(round_trip(&*idx, 2, &p).await.unwrap(), Some(p), "{x}");
        }
        drop_collection(&uri).await.expect("drop");
    });
}

#[test]
fn milvus_stores_floats_exactly_and_refuses_big_integers() {
    let Ok(base) = std::env::var("VECSEARCH_MILVUS_URL") else {
        println!("payload_limits: milvus skipped (VECSEARCH_MILVUS_URL not set)");
        return;
    };
    let uri = format!(
        "{}/payload_limits_{}",
        base.trim_end_matches('/'),
        std::process::id()
    );
    run("milvus", async {
        let idx = open_uri(&uri, spec()).await.expect("open");
        // Measured: Milvus 2.3.5 reads `1e20` as 0; we write `1.0e20`.
        for (i, x) in [1e20, 5e-324, -1e23, 90.333_333_333_333_33, 0.1, 1.5e300]
            .into_iter()
            .enumerate()
        {
            let p = Payload::new().with("x", x).with("n", -(1_i64 << 53));
            assert_eq!(
                round_trip(&*idx, 10 + i as u64, &p).await.unwrap(),
                Some(p),
                "{x}"
            );
            let f = Filter::range("x").gte(x).and(Filter::range("x").lte(x));
            assert_eq!(idx.count(&f).await.unwrap(), 1, "a range at exactly {x}");
        }
        let e = round_trip(&*idx, 1, &Payload::new().with("n", (1_i64 << 53) + 1)).await;
        assert!(
            matches!(e, Err(Error::Unsupported(ref m)) if m.contains("\"n\"")),
            "{e:?}"
        );
        drop_collection(&uri).await.expect("drop");
    });
}

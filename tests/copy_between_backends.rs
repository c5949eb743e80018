//! `vecsearch::copy` between backends: native -> flat -> hnswlib -> native
//! locally, and native -> Qdrant -> Milvus -> native against the real
//! servers the test command starts (skipped, saying so, without their
//! URLs), with nothing lost: every id, vector and payload read back by a
//! full scan at the end equals the start.

use vecsearch::backend::exec::block_on;
use vecsearch::{
    copy, verify, CopyOptions, Error, Filter, IndexSpec, Metric, Payload, Record, Schema,
    SearchParams, VectorIndex,
};

fn schema() -> Schema {
    Schema::new()
        .keyword("tenant")
        .integer("date")
        .float("score")
        .keyword_list("tags")
}

fn spec() -> IndexSpec {
    IndexSpec::new(8, Metric::Cosine).with_schema(schema())
}

/// 1,500 seeded vectors, most with payloads (some fields missing, some
/// lists empty), ids spread out.
fn fill(idx: &dyn VectorIndex) {
    let mut rng = vecsearch::backend::synthetic::Rng::new(7);
    let n = 1500;
    let ids: Vec<u64> = (0..n as u64).map(|i| 10 + i * 1_000_003).collect();
    let vs: Vec<Vec<f32>> = (0..n)
        .map(|_| (0..8).map(|_| rng.normal() as f32).collect())
        .collect();
    let ps: Vec<Payload> = (0..n)
        .map(|i| {
            let mut p = Payload::new();
            if i % 4 != 0 {
                p.insert("tenant", ["acme", "globex", "o'hara \"q\""][i % 3]);
            }
            if i % 5 != 0 {
                p.insert("date", 1_700_000_000 + i as i64);
            }
            if i % 7 != 0 {
                // Short decimals: Qdrant misreads some 17-digit floats (refused there).
                p.insert("score", i as f64 / 8.0 - 40.0);
            }
            if i % 2 == 0 {
                p.insert("tags", ["legal", "eu"][..i % 3].to_vec());
            }
            p
        })
        .collect();
    block_on(async {
        idx.add_batch_with_payloads(&ids, &vs, &ps).await?;
        idx.sync().await
    })
    .expect("fill");
}

fn everything(idx: &dyn VectorIndex) -> Vec<Record> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = block_on(idx.scan(after, 333)).expect("scan");
        out.extend(page.records);
        match page.next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

fn same(a: &[Record], b: &[Record]) {
    assert_eq!(a.len(), b.len(), "record counts");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.id, y.id);
        assert_eq!(x.payload, y.payload, "id {}", x.id);
        for (p, q) in x.vector.iter().zip(&y.vector) {
            assert!((p - q).abs() <= 1e-6, "id {}: {p} vs {q}", x.id);
        }
    }
}

fn hop(src: &dyn VectorIndex, dst: &dyn VectorIndex) {
    let mut seen = 0;
    let report = block_on(copy(src, dst, &CopyOptions::default(), &mut |n| seen = n))
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", src.backend(), dst.backend()));
    assert_eq!(report.copied, 1500);
    assert_eq!(seen, 1500);
    let check = block_on(verify(src, dst, 100)).expect("verify");
    assert!(check.same_data(), "{check:?}");
    // Filters mean the same on the copy.
    let f = Filter::eq("tenant", "acme").and(Filter::range("date").gte(1_700_000_500));
    assert_eq!(
        block_on(src.count(&f)).unwrap(),
        block_on(dst.count(&f)).unwrap()
    );
}

fn open(uri: &str) -> Box<dyn VectorIndex> {
    block_on(vecsearch::open(uri, spec())).unwrap_or_else(|e| panic!("{uri}: {e}"))
}

#[test]
fn local_round_trip() {
    let a = open("native:");
    fill(&*a);
    let b = open("flat:");
    hop(&*a, &*b);
    let last = if cfg!(feature = "hnswlib") {
        let c = open("hnswlib:");
        hop(&*b, &*c);
        let d = open("native:");
        hop(&*c, &*d);
        d
    } else {
        let d = open("native:");
        hop(&*b, &*d);
        d
    };
    same(&everything(&*a), &everything(&*last));
}

#[test]
fn refusals_change_nothing() {
    let a = open("native:");
    fill(&*a);
    let b = open("flat:");
    block_on(b.add(1, &[1.0; 8])).unwrap();
    let e = block_on(copy(&*a, &*b, &CopyOptions::default(), &mut |_| {})).unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument(ref m) if m.contains("already holds 1")),
        "{e}"
    );
    assert_eq!(block_on(b.len()).unwrap(), 1);
    let merged = CopyOptions {
        merge: true,
        ..CopyOptions::default()
    };
    block_on(copy(&*a, &*b, &merged, &mut |_| {})).unwrap();
    assert_eq!(block_on(b.len()).unwrap(), 1501);
    let other = block_on(vecsearch::open("flat:", IndexSpec::new(4, Metric::Cosine))).unwrap();
    let e = block_on(copy(&*a, &*other, &CopyOptions::default(), &mut |_| {})).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let plain = block_on(vecsearch::open("flat:", IndexSpec::new(8, Metric::Cosine))).unwrap();
    let e = block_on(copy(&*a, &*plain, &CopyOptions::default(), &mut |_| {})).unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument(ref m) if m.contains("takes none")),
        "{e}"
    );
    // A search on the copy needs no schema of its own to run.
    assert!(block_on(b.search(&[1.0; 8], 3, &SearchParams::default())).is_ok());
}

#[cfg(feature = "remote")]
#[test]
fn native_qdrant_milvus_native() {
    let (Ok(q), Ok(m)) = (
        std::env::var("VECSEARCH_QDRANT_URL"),
        std::env::var("VECSEARCH_MILVUS_URL"),
    ) else {
        println!("copy_between_backends: skipped (VECSEARCH_QDRANT_URL and VECSEARCH_MILVUS_URL not both set)");
        return;
    };
    let tag = std::process::id();
    let q_uri = format!("{}/copy_test_{tag}", q.trim_end_matches('/'));
    let m_uri = format!("{}/copy_test_{tag}", m.trim_end_matches('/'));
    let a = open("native:");
    fill(&*a);
    let b = open(&q_uri);
    let c = open(&m_uri);
    let d = open("native:");
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        hop(&*a, &*b);
        hop(&*b, &*c);
        hop(&*c, &*d);
        same(&everything(&*a), &everything(&*d));
    }));
    let _ = block_on(vecsearch::remote::drop_collection(&q_uri));
    let _ = block_on(vecsearch::remote::drop_collection(&m_uri));
    if let Err(p) = run {
        std::panic::resume_unwind(p);
    }
}

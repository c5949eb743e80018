//! `vecsearch copy`: a saved native index with payloads into a new flat
//! file and, where the test command's Qdrant runs, into a collection and
//! back, each with `--verify`; refusals exit non-zero with a clear message.

mod common;

use common::vecsearch;
use vecsearch::{IndexSpec, Metric, Payload, Schema};

fn saved_source(dir: &std::path::Path) -> String {
    let path = dir.join("a.vs");
    let uri = format!("native:{}?mode=rwc", path.display());
    let spec =
        IndexSpec::new(4, Metric::L2).with_schema(Schema::new().keyword("tenant").integer("date"));
    let idx = vecsearch::open_blocking(&uri, spec).expect("open");
    for i in 0..300u64 {
        let p = Payload::new()
            .with("tenant", ["acme", "globex"][(i % 2) as usize])
            .with("date", i as i64);
        idx.add_with_payload(i * 3, &[i as f32, 1.0, (i % 7) as f32, 0.5], &p)
            .expect("add");
    }
    idx.save_in_place().expect("save");
    format!("native:{}", path.display())
}

#[test]
fn copies_a_file_into_a_new_file_and_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = saved_source(dir.path());
    let dst = format!("flat:{}", dir.path().join("b.vs").display());
    let (ok, text) = vecsearch(&["copy", &src, &dst, "--verify", "--batch", "64"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("copied 300 vectors (300 with payloads)"),
        "{text}"
    );
    assert!(text.contains("0 differ"), "{text}");
    let back = vecsearch::open_saved_blocking(&dst).expect("the copy was saved");
    assert_eq!(
        back.count(&vecsearch::Filter::eq("tenant", "acme"))
            .unwrap(),
        150
    );
    // Into a destination that holds data: refused unless --merge.
    let (ok, text) = vecsearch(&["copy", &src, &dst]);
    assert!(!ok && text.contains("already holds 300"), "{text}");
    let (ok, text) = vecsearch(&["copy", &src, &dst, "--merge"]);
    assert!(ok, "{text}");
}

#[test]
fn a_server_source_needs_its_spec() {
    let (ok, text) = vecsearch(&["copy", "qdrant://127.0.0.1:1/x", "flat:"]);
    assert!(!ok && text.contains("--dim and --metric"), "{text}");
}

#[cfg(feature = "remote")]
#[test]
fn native_to_qdrant_and_back() {
    let Ok(base) = std::env::var("VECSEARCH_QDRANT_URL") else {
        println!("copy_command: qdrant skipped (VECSEARCH_QDRANT_URL not set)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let src = saved_source(dir.path());
    let coll = format!(
        "{}/copy_cli_{}",
        base.trim_end_matches('/'),
        std::process::id()
    );
    let (ok, text) = vecsearch(&["copy", &src, &coll, "--verify"]);
    assert!(ok, "{text}");
    let back = format!("native:{}", dir.path().join("c.vs").display());
    let schema = r#"[{"name":"tenant","type":"keyword"},{"name":"date","type":"integer"}]"#;
    let (ok, text) = vecsearch(&[
        "copy", &coll, &back, "--dim", "4", "--metric", "l2", "--schema", schema, "--verify",
    ]);
    let _ = vecsearch::backend::exec::block_on(vecsearch::remote::drop_collection(&coll));
    assert!(ok, "{text}");
    assert!(
        text.contains("copied 300 vectors (300 with payloads)"),
        "{text}"
    );
}

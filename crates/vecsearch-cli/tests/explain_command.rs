//! `vecsearch explain`: one search on a saved index, with the plan, the
//! filter's exact match count and the hits; bad input exits non-zero with
//! a clear message.

mod common;

use common::vecsearch;
use vecsearch::{IndexSpec, Metric, Payload, Schema};

#[test]
fn explains_a_filtered_search_on_a_saved_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.vs");
    let spec = IndexSpec::new(4, Metric::L2).with_schema(Schema::new().keyword("tenant"));
    let idx = vecsearch::open_blocking(&format!("native:{}?mode=rwc", path.display()), spec)
        .expect("open");
    for i in 0..300u64 {
        let p = Payload::new().with("tenant", ["acme", "globex", "initech"][(i % 3) as usize]);
        idx.add_with_payload(i, &[i as f32, 1.0, (i % 7) as f32, 0.5], &p)
            .expect("add");
    }
    idx.save_in_place().expect("save");
    let uri = format!("native:{}", path.display());
    let filter = r#"{"eq": {"field": "tenant", "value": "acme"}}"#;
    let (ok, text) = vecsearch(&[
        "explain", &uri, "--like", "30", "--filter", filter, "--k", "3",
    ]);
    assert!(ok, "{text}");
    // 100 matches x 4 dims is far below the crossover: an exact scan.
    assert!(
        text.contains("plan exact_scan, filter matches 100 of 300 live, 100 rows scored, 3 hits"),
        "{text}"
    );
    // The nearest acme ids (those divisible by 3) to id 30's vector:
    // itself, then 33 (squared distance 18) and 27 (25).
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split('\t').next().filter(|_| l.contains('\t')))
        .collect();
    assert_eq!(ids, ["30", "33", "27"], "{text}");
    let (ok, text) = vecsearch(&["explain", &uri, "--query", "[1, 2, 3, 4]"]);
    assert!(ok && text.contains("plan "), "{text}");
    // Bad input: a wrong dimension, an unknown field, no query.
    let (ok, text) = vecsearch(&["explain", &uri, "--query", "[1, 2]"]);
    assert!(!ok && text.contains("dimension"), "{text}");
    let bad = r#"{"eq": {"field": "nope", "value": "x"}}"#;
    let (ok, text) = vecsearch(&["explain", &uri, "--like", "1", "--filter", bad]);
    assert!(!ok && text.contains("nope"), "{text}");
    let (ok, text) = vecsearch(&["explain", &uri]);
    assert!(!ok && text.contains("--like"), "{text}");
}

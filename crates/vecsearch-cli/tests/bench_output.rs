//! `vecsearch bench`'s output as a newcomer reads it (issue 21, section 5):
//! every ratio the winner's lead, never "0.96x faster"; the churn share
//! and the rebuild named; the spread of the repeats beside each QPS.

use std::process::Command;

#[test]
fn a_small_bench_reads_without_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_vecsearch"))
        .args([
            "bench",
            "--n",
            "800",
            "--dim",
            "8",
            "--nq",
            "40",
            "--ef",
            "10,32",
            "--repeat",
            "2",
            "--backends",
            "flat,native",
        ])
        .output()
        .expect("run vecsearch bench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for word in text.split_whitespace() {
        let w = word
            .trim_start_matches('(')
            .trim_end_matches([',', ';', '.']);
        if let Some(r) = w.strip_suffix('x').and_then(|n| n.parse::<f64>().ok()) {
            assert!(r >= 1.0, "a ratio below 1 ({word}) in:\n{text}");
        }
    }
    assert!(!text.contains("x faster"), "{text}");
    assert!(
        text.contains("After churn: 30% of the points (240 of 800) deleted at random"),
        "{text}"
    );
    assert!(text.contains("| after 30% churn | rebuilt |"), "{text}");
    assert!(
        text.contains("\"rebuilt\" is a fresh build of the points that remain"),
        "{text}"
    );
    assert!(text.contains("native after 30% churn: recall@10"), "{text}");
    assert!(
        text.contains("QPS and batch QPS are the fastest of 2 alternating repeats"),
        "{text}"
    );
    // Every QPS cell of native's row carries the spread of its repeats.
    let row = text
        .lines()
        .find(|l| l.starts_with("| native | "))
        .unwrap_or_else(|| panic!("no native row in:\n{text}"));
    assert_eq!(row.matches("%) |").count(), 2, "{row}");
    assert!(row.contains("(-"), "{row}");
}

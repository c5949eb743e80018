//! `cargo doc --workspace --all-features` builds every page (issue 21):
//! the `vecsearch` binary's page would overwrite the `vecsearch` library's
//! front page (cargo warned of an output filename collision), and docs.rs
//! would document the facade without its backends, leaving
//! `vecsearch::native` and the others unlinked. The manifests keep both
//! settings; `cargo doc --workspace --all-features --no-deps` shows no
//! warning with them.

use std::path::Path;

fn manifest(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines of the table that starts with the header `header`.
fn table<'a>(toml: &'a str, header: &str) -> Vec<&'a str> {
    let Some((_, rest)) = toml.split_once(&format!("{header}\n")) else {
        panic!("no {header} table");
    };
    rest.lines()
        .take_while(|l| !l.trim_start().starts_with('['))
        .map(str::trim)
        .collect()
}

#[test]
fn the_binary_is_not_documented_over_the_library() {
    let cli = manifest("Cargo.toml");
    let bin = table(&cli, "[[bin]]");
    assert!(bin.contains(&r#"name = "vecsearch""#), "{bin:?}");
    assert!(bin.contains(&"doc = false"), "{bin:?}");
}

#[test]
fn docs_rs_documents_every_backend() {
    let facade = manifest("../../Cargo.toml");
    let meta = table(&facade, "[package.metadata.docs.rs]");
    assert!(meta.contains(&"all-features = true"), "{meta:?}");
}

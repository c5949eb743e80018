//! The shared conformance suite against a real Qdrant server, named by
//! `VECSEARCH_QDRANT_URL` (`qdrant://127.0.0.1:6333`). No package registry
//! ships Qdrant's server, so this is skipped, saying so, when it is unset.

mod common;

fn main() -> std::process::ExitCode {
    match std::env::var("VECSEARCH_QDRANT_URL") {
        Ok(url) if !url.is_empty() => common::run_suite("qdrant", url),
        _ => {
            println!("conformance: qdrant skipped (VECSEARCH_QDRANT_URL not set)");
            std::process::ExitCode::SUCCESS
        }
    }
}

//! The shared conformance suite against a real Milvus server, named by
//! `VECSEARCH_MILVUS_URL` (`milvus://127.0.0.1:19530`); `scripts/milvus.sh`
//! installs and starts one. Skipped, saying so, when the variable is unset.

mod common;

fn main() -> std::process::ExitCode {
    match std::env::var("VECSEARCH_MILVUS_URL") {
        Ok(url) if !url.is_empty() => common::run_suite("milvus", url),
        _ => {
            println!("conformance: milvus skipped (VECSEARCH_MILVUS_URL not set)");
            std::process::ExitCode::SUCCESS
        }
    }
}

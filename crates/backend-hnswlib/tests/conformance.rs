//! The shared conformance suite on the hnswlib backend.

use vecsearch_conformance::Harness;
use vecsearch_hnswlib::HnswlibIndex;

fn main() -> std::process::ExitCode {
    let h = Harness::new("hnswlib", |spec| async move {
        Ok(Box::new(HnswlibIndex::new(spec)?) as Box<dyn vecsearch_core::VectorIndex>)
    })
    .with_opener(|path, spec| async move {
        Ok(Box::new(HnswlibIndex::open(&path, spec).await?)
            as Box<dyn vecsearch_core::VectorIndex>)
    })
    .with_blocking_factory(|spec| {
        Ok(vecsearch_core::Blocking::new(
            Box::new(HnswlibIndex::new(spec)?) as Box<dyn vecsearch_core::VectorIndex>,
        ))
    });
    vecsearch_conformance::run_main(h)
}

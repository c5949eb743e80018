//! The whole suite against the flat (exact) index.

use vecsearch_conformance::{run_main, Harness};
use vecsearch_core::{Blocking, FlatIndex, VectorIndex};

fn main() -> std::process::ExitCode {
    let h = Harness::new("flat", |spec| async move {
        Ok(Box::new(FlatIndex::new(spec)?) as Box<dyn VectorIndex>)
    })
    .with_opener(|path, spec| async move {
        Ok(Box::new(FlatIndex::open(&path, spec).await?) as Box<dyn VectorIndex>)
    })
    .with_blocking_factory(|spec| {
        Ok(Blocking::new(
            Box::new(FlatIndex::new(spec)?) as Box<dyn VectorIndex>
        ))
    });
    run_main(h)
}

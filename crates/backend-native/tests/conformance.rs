//! The whole conformance suite against the native engine.

use vecsearch_conformance::{run_main, Harness};
use vecsearch_core::{Blocking, VectorIndex};
use vecsearch_native::NativeIndex;

fn main() -> std::process::ExitCode {
    let h = Harness::new("native", |spec| async move {
        Ok(Box::new(NativeIndex::new(spec)?) as Box<dyn VectorIndex>)
    })
    .with_opener(|path, spec| async move {
        Ok(Box::new(NativeIndex::open(&path, spec).await?) as Box<dyn VectorIndex>)
    })
    .with_blocking_factory(|spec| {
        Ok(Blocking::new(
            Box::new(NativeIndex::new(spec)?) as Box<dyn VectorIndex>
        ))
    });
    run_main(h)
}

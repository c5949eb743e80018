//! The `hnswlib` backend: hnswlib 0.8.0 (header-only C++) through `cxx`.
//!
//! [`HnswlibIndex`] (the core's front door over [`HnswlibEngine`]) keeps
//! the whole `VectorIndex` contract on top of
//! `hnswlib::HierarchicalNSW<float>`: upserts, deletes whose slots are
//! reused, allow-list filters, batches on every core, growth without a fixed
//! capacity, the four metrics (Jaccard through our own space), and an `Err`
//! instead of an abort for every C++ exception. Files are the project's
//! envelope around hnswlib's own stream, and [`HnswlibEngine::import_hnswlib_file`]
//! / [`HnswlibEngine::export_hnswlib_file`] read and write hnswlib's bare
//! `saveIndex` format for interop; every file is validated field by field
//! before hnswlib reads it.
//!
//! Building needs the headers: run `scripts/setup-hnswlib.sh` or set
//! `HNSWLIB_INCLUDE_DIR`. The shim is compiled portable (`-O3`, the
//! target's baseline) unless `VECSEARCH_NATIVE_CPU=1` asks for
//! `-march=native` (faster, but the binary then runs only on CPUs like the
//! build machine's); [`build_flags`] says which.
#![warn(missing_docs)]

mod ffi;
mod files;
mod format;
mod handle;
mod index;

pub use index::{HnswlibEngine, HnswlibIndex};

/// The C++ flags the shim (and so hnswlib) was compiled with: `-O3` by
/// default (portable), `-O3 -march=native` with `VECSEARCH_NATIVE_CPU=1` at
/// build time.
pub fn build_flags() -> &'static str {
    env!("VECSEARCH_HNSWLIB_CFLAGS")
}

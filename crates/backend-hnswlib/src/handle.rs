//! The one owner of the C++ index: the `UniquePtr` to the shim and the lock
//! that encodes hnswlib's thread-safety rules. Nothing else in the crate
//! holds the pointer; every call goes through a [`Reading`] or [`Writing`]
//! guard, so the locking discipline cannot be skipped by accident.
//!
//! hnswlib lets searches run with searches and adds with adds, but not a
//! search beside an add, and nothing beside `resizeIndex` or `markDelete`.
//! The read side is taken by searches, `get`, counts and saves; the write
//! side by one add or a batch whose threads add in parallel, a delete, a
//! resize.

use std::ops::Deref;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use cxx::UniquePtr;
use vecsearch_core::{Error, IndexSpec, Metric, Result};

use crate::ffi::bridge;

/// The C++ index, its spec, and the mode lock.
pub(crate) struct Handle {
    spec: IndexSpec,
    hnsw: UniquePtr<bridge::Hnsw>,
    mode: RwLock<()>,
}

/// Shared access: searches, reads, saves.
pub(crate) struct Reading<'a> {
    _guard: RwLockReadGuard<'a, ()>,
    hnsw: &'a bridge::Hnsw,
}

/// Exclusive access: adds (which may run on several threads together under
/// one `Writing`), deletes, resizes.
pub(crate) struct Writing<'a> {
    _guard: RwLockWriteGuard<'a, ()>,
    hnsw: &'a bridge::Hnsw,
}

impl Deref for Reading<'_> {
    type Target = bridge::Hnsw;
    fn deref(&self) -> &bridge::Hnsw {
        self.hnsw
    }
}

impl Deref for Writing<'_> {
    type Target = bridge::Hnsw;
    fn deref(&self) -> &bridge::Hnsw {
        self.hnsw
    }
}

impl Handle {
    /// Takes ownership of `hnsw`, built for `spec`; a null pointer (which the
    /// shim never returns) is an internal error, not a later crash.
    pub(crate) fn new(spec: IndexSpec, hnsw: UniquePtr<bridge::Hnsw>) -> Result<Self> {
        if hnsw.is_null() {
            return Err(Error::Internal("hnswlib returned no index".into()));
        }
        Ok(Handle {
            spec,
            hnsw,
            mode: RwLock::new(()),
        })
    }

    pub(crate) fn spec(&self) -> &IndexSpec {
        &self.spec
    }

    pub(crate) fn read(&self) -> Reading<'_> {
        Reading {
            _guard: self.mode.read().unwrap_or_else(|e| e.into_inner()),
            hnsw: self.hnsw(),
        }
    }

    pub(crate) fn write(&self) -> Writing<'_> {
        Writing {
            _guard: self.mode.write().unwrap_or_else(|e| e.into_inner()),
            hnsw: self.hnsw(),
        }
    }

    fn hnsw(&self) -> &bridge::Hnsw {
        // `new` refused a null pointer and nothing takes it out afterwards.
        self.hnsw
            .as_ref()
            .unwrap_or_else(|| unreachable!("Handle::new refuses a null index"))
    }
}

/// hnswlib's space for a metric: cosine is inner product on normalised vectors.
pub(crate) fn space_of(metric: Metric) -> bridge::Space {
    match metric {
        Metric::L2 => bridge::Space::L2,
        Metric::Cosine | Metric::InnerProduct => bridge::Space::InnerProduct,
        Metric::Jaccard => bridge::Space::Jaccard,
    }
}

/// A C++ failure (an exception cxx caught) as an error.
pub(crate) fn ffi_err(what: &str, e: cxx::Exception) -> Error {
    Error::Internal(format!("hnswlib failed while {what}: {}", e.what()))
}

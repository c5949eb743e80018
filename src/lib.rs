//! # vecsearch
//!
//! One [`VectorIndex`] trait for approximate nearest-neighbour search, with
//! interchangeable backends picked by Cargo feature and opened by URI, the
//! way `database/sql` opens databases:
//!
//! | URI | backend | feature |
//! |---|---|---|
//! | `flat:` / `flat:/path/file` | exact scan (always there) | — |
//! | `native:` / `native:/path/file` | our pure-Rust HNSW engine | `native` (default) |
//! | `hnswlib:` / `hnswlib:/path/file` | hnswlib 0.8.0 (C++) | `hnswlib` |
//! | `qdrant://host:6333/collection` | a Qdrant server | `remote` |
//! | `milvus://host:19530/collection` | a Milvus server | `remote` |
//!
//! Remote URIs take `+https` (`qdrant+https://...`), an API key as userinfo
//! or `?api_key=` (else `VECSEARCH_QDRANT_API_KEY` / `VECSEARCH_MILVUS_TOKEN`),
//! and `timeout_ms`, `retries` options.
//!
//! A path after a local scheme opens the index saved there; a missing file
//! is an `Io` error naming the path, unless the URI asks for creation with
//! `?mode=rwc` (`native:/data/docs.vs?mode=rwc`), as sqlx's SQLite URIs do.
//! So a typo in a path never starts an empty index that the next save
//! would write over the real one.
//!
//! Payloads and filters: declare the fields in the spec's [`Schema`], write
//! a [`Payload`] with each vector, and search, count or delete with one
//! [`Filter`] that means the same on every backend:
//!
//! ```
//! use vecsearch::{Filter, IndexSpec, Metric, Payload, Schema, SearchParams};
//!
//! # fn main() -> vecsearch::Result<()> {
//! let schema = Schema::new().keyword("tenant").integer("date").keyword_list("tags");
//! let index = vecsearch::open_blocking("flat:", IndexSpec::new(2, Metric::L2).with_schema(schema))?;
//! index.add_with_payload(1, &[0.0, 0.0], &Payload::new().with("tenant", "acme").with("date", 1_704_067_200_i64))?;
//! index.add_with_payload(2, &[0.1, 0.0], &Payload::new().with("tenant", "globex").with("date", 1_704_067_200_i64))?;
//! let acme_2024 = Filter::eq("tenant", "acme").and(Filter::range("date").gte(1_704_067_200));
//! let hits = index.search(&[0.1, 0.0], 5, &SearchParams::default().with_filter(acme_2024.clone()))?;
//! assert_eq!(hits.iter().map(|n| n.id).collect::<Vec<_>>(), [1]);
//! assert_eq!(index.count(&acme_2024)?, 1);
//! # Ok(())
//! # }
//! ```
//!
//! Backend authors find the shared building blocks (validation, distances,
//! the file envelope, executors, synthetic data) in [`backend`].
//!
//! ```
//! use vecsearch::{IndexSpec, Metric, SearchParams};
//!
//! # fn main() -> vecsearch::Result<()> {
//! let index = vecsearch::open_blocking("flat:", IndexSpec::new(3, Metric::Cosine))?;
//! index.add(1, &[1.0, 0.0, 0.0])?;
//! index.add(2, &[0.0, 1.0, 0.0])?;
//! index.add_batch(&[3, 4], &[vec![0.9, 0.1, 0.0], vec![0.0, 0.0, 1.0]])?;
//! let hits = index.search(&[1.0, 0.05, 0.0], 2, &SearchParams::default())?;
//! assert_eq!(hits.iter().map(|n| n.id).collect::<Vec<_>>(), [1, 3]);
//! assert!(index.delete(3)?);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

use std::path::Path;

use vecsearch_core::{exec, uri};

mod copy;
pub use copy::{copy, verify, CopyOptions, CopyReport, VerifyReport};

pub use vecsearch_core::{
    sort_neighbors, Blocking, Capabilities, Consistency, Error, FieldType, Filter, FlatIndex,
    IndexProgress, IndexSpec, Metric, Neighbor, Payload, Record, Result, ScanPage, Schema,
    SearchParams, Storage, Value, VectorIndex,
};

/// The filter language's parts beside [`Filter`] (ranges, numbers, scalars,
/// limits), and the payload limits; see the contract's "Payloads and filters".
pub mod filter {
    pub use vecsearch_core::filter::{
        FieldLen, FieldName, FieldRange, FieldValue, FieldValues, LenRange, Number, Range,
        RangeBuilder, Scalar, MAX_FILTER_DEPTH, MAX_FILTER_NODES,
    };
    pub use vecsearch_core::payload::{
        Field, MAX_FIELDS, MAX_FIELD_NAME_BYTES, MAX_KEYWORD_BYTES, MAX_LIST_LEN,
    };
}

/// For backend authors and tools: the checks, distances, file envelope,
/// executors and synthetic data every backend shares. Applications need
/// none of it.
pub mod backend {
    pub use vecsearch_core::{distance, exec, persist, synthetic, uri, validate};
}

#[cfg(feature = "hnswlib")]
pub use vecsearch_hnswlib as hnswlib;
#[cfg(feature = "native")]
pub use vecsearch_native as native;
#[cfg(feature = "remote")]
pub use vecsearch_remote as remote;

/// Opens an index by URI (see the crate docs for the schemes). A scheme whose
/// backend was not compiled in fails with `Unsupported`, naming the feature.
pub async fn open(uri: &str, spec: IndexSpec) -> Result<Box<dyn VectorIndex>> {
    let (scheme, rest) = vecsearch_core::uri::split(uri)?;
    match scheme.kind {
        uri::Kind::Remote => open_remote(uri, spec).await,
        uri::Kind::Local => {
            let target = uri::local_target(rest)?;
            let path = target.existing()?;
            // A new index at a path (`mode=rwc`) remembers it for save_in_place.
            let new_at = target.path.clone().filter(|_| path.is_none());
            match scheme.backend {
                "flat" => match path {
                    Some(p) => Ok(Box::new(FlatIndex::open(p, spec).await?)),
                    None => Ok(Box::new(with_origin(FlatIndex::new(spec)?, new_at))),
                },
                "native" => open_native(path, new_at, spec).await,
                _ => open_hnswlib(path, new_at, spec).await,
            }
        }
    }
}

/// Opens a saved local index by URI (`native:/data/docs.vs`) without a spec:
/// dim and metric come from the file's header (the graph parameters from its
/// body), the run-time settings are the defaults of [`IndexSpec::new`].
/// Use [`open`] to set them (a spec that contradicts the file is an error).
pub async fn open_saved(uri: &str) -> Result<Box<dyn VectorIndex>> {
    let (scheme, rest) = uri::split(uri)?;
    let target = uri::local_target(rest)?;
    let path = match (scheme.kind, &target.path) {
        (uri::Kind::Local, Some(p)) => p.clone(),
        _ => {
            return Err(Error::InvalidArgument(format!(
            "{uri:?} names no saved file: open_saved takes flat:, native: or hnswlib: with a path"
        )))
        }
    };
    let header = match vecsearch_core::persist::read_header(&path, scheme.backend) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(no_saved_index(scheme.name, &path))
        }
        other => other?,
    };
    open(uri, IndexSpec::new(header.dim, header.metric)).await
}

/// `open_saved`'s error for a path with no file: the path, and how to
/// start an index there instead.
fn no_saved_index(scheme: &str, path: &Path) -> Error {
    Error::io(
        "opening",
        path,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "no saved index there: open_saved reads dim and metric from a saved file; \
                 to create one, open \"{scheme}:{}?mode=rwc\" with an IndexSpec \
                 (vecsearch::open or open_blocking) and save it",
                path.display()
            ),
        ),
    )
}

/// [`open_saved`] for synchronous code.
pub fn open_saved_blocking(uri: &str) -> Result<Blocking<dyn VectorIndex>> {
    Ok(Blocking::new(exec::block_on(open_saved(uri))?))
}

fn with_origin<E: vecsearch_core::Engine>(
    index: vecsearch_core::Index<E>,
    path: Option<std::path::PathBuf>,
) -> vecsearch_core::Index<E> {
    match path {
        Some(p) => index.with_origin(p),
        None => index,
    }
}

/// [`open`] for synchronous code: the index's calls block the calling thread.
/// Works for every backend (remote indexes bring their own runtime when the
/// caller has none).
pub fn open_blocking(uri: &str, spec: IndexSpec) -> Result<Blocking<dyn VectorIndex>> {
    Ok(Blocking::new(exec::block_on(open(uri, spec))?))
}

#[cfg_attr(
    all(feature = "native", feature = "hnswlib", feature = "remote"),
    allow(dead_code)
)]
fn not_compiled(backend: &str, feature: &str) -> Error {
    Error::Unsupported(format!(
        "the {backend} backend is not compiled in: enable the `{feature}` feature of the vecsearch crate"
    ))
}

#[cfg(feature = "native")]
async fn open_native(
    path: Option<&Path>,
    new_at: Option<std::path::PathBuf>,
    spec: IndexSpec,
) -> Result<Box<dyn VectorIndex>> {
    match path {
        Some(p) => Ok(Box::new(native::NativeIndex::open(p, spec).await?)),
        None => Ok(Box::new(with_origin(
            native::NativeIndex::new(spec)?,
            new_at,
        ))),
    }
}

#[cfg(not(feature = "native"))]
async fn open_native(
    _: Option<&Path>,
    _: Option<std::path::PathBuf>,
    _: IndexSpec,
) -> Result<Box<dyn VectorIndex>> {
    Err(not_compiled("native", "native"))
}

#[cfg(feature = "hnswlib")]
async fn open_hnswlib(
    path: Option<&Path>,
    new_at: Option<std::path::PathBuf>,
    spec: IndexSpec,
) -> Result<Box<dyn VectorIndex>> {
    match path {
        Some(p) => Ok(Box::new(hnswlib::HnswlibIndex::open(p, spec).await?)),
        None => Ok(Box::new(with_origin(
            hnswlib::HnswlibIndex::new(spec)?,
            new_at,
        ))),
    }
}

#[cfg(not(feature = "hnswlib"))]
async fn open_hnswlib(
    _: Option<&Path>,
    _: Option<std::path::PathBuf>,
    _: IndexSpec,
) -> Result<Box<dyn VectorIndex>> {
    Err(not_compiled("hnswlib", "hnswlib"))
}

#[cfg(feature = "remote")]
async fn open_remote(uri: &str, spec: IndexSpec) -> Result<Box<dyn VectorIndex>> {
    remote::open_uri(uri, spec).await
}

#[cfg(not(feature = "remote"))]
async fn open_remote(uri: &str, _: IndexSpec) -> Result<Box<dyn VectorIndex>> {
    let backend = uri.split([':', '+']).next().unwrap_or("remote");
    Err(not_compiled(backend, "remote"))
}

// The README's examples are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! # vecsearch
//!
//! One [`VectorIndex`] trait for approximate nearest-neighbour search, with
//! interchangeable backends picked by Cargo feature and opened by URI, the
//! way `database/sql` opens databases. This page is for applications first;
//! what backend authors need is at the end ([For backend
//! authors](#for-backend-authors)).
//!
//! ## Open an index by URI
//!
//! | URI | backend | feature |
//! |---|---|---|
//! | `flat:` / `flat:/path/file` | exact scan (always there) | — |
//! | `native:` / `native:/path/file` | our pure-Rust HNSW engine | `native` (default) |
//! | `hnswlib:` / `hnswlib:/path/file` | hnswlib 0.8.0 (C++) | `hnswlib` |
//! | `qdrant://host:6333/collection` | a Qdrant server | `remote` |
//! | `milvus://host:19530/collection` | a Milvus server | `remote` |
//!
//! [`open`] (async) and [`open_blocking`] (synchronous code) take the URI and
//! an [`IndexSpec`] (dimension, [`Metric`], HNSW parameters, [`Storage`],
//! payload [`Schema`]); [`open_saved`] opens a saved local file without a
//! spec. A scheme whose feature is off fails with `Unsupported`, naming the
//! feature.
//!
//! A local URI without a path is a new index in memory. With a path it opens
//! the index saved there; a missing file is an [`Error::Io`] naming the path,
//! unless the URI asks for creation with `?mode=rwc`
//! (`native:/data/docs.vs?mode=rwc`, as sqlx's SQLite URIs do), which starts
//! a new index that [`VectorIndex::save_in_place`] writes to that path. So a
//! typo in a path never starts an empty index that the next save would
//! write over the real one.
//!
//! ## Add, search, delete
//!
//! ```
//! use vecsearch::{IndexSpec, Metric, SearchParams};
//!
//! # fn main() -> vecsearch::Result<()> {
//! let index = vecsearch::open_blocking("flat:", IndexSpec::new(3, Metric::Cosine))?;
//! index.add(1, &[1.0, 0.0, 0.0])?; // an upsert: an existing id gets the new vector
//! index.add(2, &[0.0, 1.0, 0.0])?;
//! index.add_batch(&[3, 4], &[vec![0.9, 0.1, 0.0], vec![0.0, 0.0, 1.0]])?;
//! let hits = index.search(&[1.0, 0.05, 0.0], 2, &SearchParams::default())?;
//! assert_eq!(hits.iter().map(|n| n.id).collect::<Vec<_>>(), [1, 3]);
//! assert!(index.delete(3)?);
//! # Ok(())
//! # }
//! ```
//!
//! Every call, its errors and its guarantees are those of the contract
//! (`crates/conformance/CONTRACT.md`), which the conformance suite checks on
//! every backend: see [`VectorIndex`].
//!
//! ## Payloads and filters
//!
//! Declare the fields in the spec's [`Schema`], write a [`Payload`] with
//! each vector, and search, count or delete with one [`Filter`] that means
//! the same on every backend (its parts are in [`filter`]):
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
//! ## Read everything back, and copy
//!
//! [`VectorIndex::scan`] pages through every record (id, vector, payload) in
//! id order from a cursor the caller keeps; [`VectorIndex::ids`] lists the
//! ids alone. [`copy`] streams one index into another (any backend into any
//! other) and [`verify`] compares them; `vecsearch copy SRC_URI DST_URI` is
//! the same from the shell.
//!
//! ```
//! use vecsearch::{CopyOptions, IndexSpec, Metric};
//!
//! # fn main() -> vecsearch::Result<()> {
//! let a = vecsearch::open_blocking("flat:", IndexSpec::new(2, Metric::L2))?;
//! a.add_batch(&[1, 2, 3], &[vec![0.0, 0.0], vec![1.0, 0.0], vec![5.0, 5.0]])?;
//! let page = a.scan(None, 2)?; // ids 1 and 2; the next page from `page.next`
//! assert_eq!(page.records.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2]);
//! assert_eq!(a.ids()?, [1, 2, 3]);
//! let b = vecsearch::open_blocking("flat:", IndexSpec::new(2, Metric::L2))?;
//! let report = vecsearch::backend::exec::block_on(vecsearch::copy(
//!     a.inner(), b.inner(), &CopyOptions::default(), &mut |_| {},
//! ))?;
//! assert_eq!(report.copied, 3);
//! # Ok(())
//! # }
//! ```
//!
//! ## What each backend promises about filtered search
//!
//! Everywhere: only ids the filter admits come back, the nearest admitted
//! ones, never fewer than `min(k, admitted)`, ties by the lowest id; a filter
//! admitting no more ids than `ef` gets the exact answer.
//!
//! - **flat**: always exact (it scores every admitted id).
//! - **native** and **hnswlib**: the filter's exact match count picks the
//!   plan. When matches x dim is at most 1,000,000 (10,417 matches at 96
//!   dimensions; `backend::plan::SCAN_BELOW_COORDS`, measured), the matches
//!   are scored exactly; above it, the graph is walked with the filter
//!   (nodes it rejects still carry the walk), at the recall@10 the README's
//!   filtered table measures per shape and selectivity (0.995 or more in
//!   every cell there; the suite holds 0.95). [`VectorIndex::explain`] says
//!   which plan a query took.
//! - **Qdrant** and **Milvus**: the server's own filtering (Qdrant: payload
//!   indexes and `must` / `should` / `must_not`; Milvus: a boolean
//!   expression), with the tie at the `k`-th distance widened until it comes
//!   back whole; where Milvus's graph comes back short, the client scores
//!   the matches exactly. What a server cannot express with the same meaning
//!   (integer bounds beyond ±2^53, for one) is `Unsupported`, never an
//!   approximate answer.
//!
//! ## Remote URIs
//!
//! `qdrant://host[:port]/collection` (port 6333 by default) and
//! `milvus://host[:port]/collection` (19530); `qdrant+https://` and
//! `milvus+https://` for TLS. The collection is created for the spec when
//! absent, and checked against it (dim, metric, storage) when present. The
//! API key (Qdrant) or token (Milvus: `user:password` or an API key) is the
//! URI's user part (`qdrant://KEY@host/c`) or `?api_key=` (also
//! `?token=`), else `VECSEARCH_QDRANT_API_KEY` / `VECSEARCH_MILVUS_TOKEN`.
//! Query options, any other being `InvalidArgument`:
//!
//! | option | servers | meaning |
//! |---|---|---|
//! | `timeout_ms` | both | per request, default 30000 |
//! | `retries` | both | attempts for a request that failed to connect or got a 5xx, default 4 (1 to 20) |
//! | `api_key`, `token` | both | the key or token, as above |
//! | `mgmt_port` | Milvus | Milvus 2.3's management API (creation with caller-chosen ids, searches with `ef`), default 9091 |
//! | `indexing_threshold_kb` | Qdrant | at creation: segments above this many KB of vectors get a graph (server default 10000) |
//! | `full_scan_threshold_kb` | Qdrant | at creation: segments below this are searched by exact scan (at least 10; server default 10000) |
//!
//! Milvus's REST dialect (v1 of 2.3, v2 of 2.4 and later) is detected at
//! open. Remote URIs take no `mode=`: opening always creates an absent
//! collection. Servers index in the background:
//! [`VectorIndex::finish_indexing`] waits until searches go through the
//! index and says how many vectors are still answered by exact scan.
//!
//! ## Deleting an index
//!
//! - In memory: drop the value.
//! - A saved local index is one file: remove it (`std::fs::remove_file`).
//! - A server's collection: `vecsearch::remote::drop_collection(uri).await`
//!   (feature `remote`) drops the collection a URI names and returns
//!   whether it existed; everything in it is lost.
//! - To empty an index and keep it: `delete_where(&Filter::all())` on an
//!   index created with a payload schema, `delete_batch(&index.ids()?)` on
//!   any.
//!
//! ## For backend authors
//!
//! None of this is needed to use an index. A backend implements the narrow
//! engine trait [`backend::Engine`] and gets the whole [`VectorIndex`] API
//! from the front door [`backend::Index`], which does every check of the
//! contract once for all backends (`vecsearch_core::FlatIndex` is the worked
//! example). [`backend`] also holds the shared parts: validation, exact and
//! SIMD distances, the file envelope, executors, synthetic data,
//! [`backend::sort_neighbors`] (the result order every backend returns) and
//! the id filter engines receive. [`Capabilities`] says what a backend
//! serves (`Capabilities::local_full()` is everything a local engine
//! serves); the conformance suite (`vecsearch-conformance`) runs the
//! contract's cases that a backend's capabilities allow.
#![warn(missing_docs)]

use std::path::Path;

use vecsearch_core::{exec, uri};

mod copy;
pub use copy::{copy, verify, CopyOptions, CopyReport, VerifyReport};

pub use vecsearch_core::{
    Blocking, Capabilities, Consistency, Error, Explain, FieldType, Filter, FlatIndex,
    IndexProgress, IndexSpec, Metric, Neighbor, Payload, Plan, Record, Result, ScanPage, Schema,
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

/// For backend authors and tools: the engine trait and the front door in
/// front of it, the checks, distances, file envelope, executors and
/// synthetic data every backend shares. Applications need none of it.
pub mod backend {
    pub use vecsearch_core::{distance, exec, persist, store, synthetic, uri, validate};
    pub use vecsearch_core::{
        plan, sort_neighbors, Create, Engine, IdFilter, IdSet, Index, Open, TopK, Trace,
    };
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

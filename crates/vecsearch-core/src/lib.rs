//! The foundation of `vecsearch`. Applications normally use the `vecsearch`
//! facade crate, which opens any backend by URI; this crate is what it and
//! every backend are built on.
//!
//! ## For applications
//!
//! - [`VectorIndex`]: the one trait every index implements (upserting
//!   `add`, `add_batch`, `search`, `delete`, payloads, `count`,
//!   `delete_where`, `scan`, `ids`, `save`, `finish_indexing`), and
//!   [`Blocking`], its face for synchronous code.
//! - [`IndexSpec`] (dimension, [`Metric`], HNSW parameters, [`Storage`],
//!   payload [`Schema`]) and [`SearchParams`] (`ef`, a [`Filter`], range
//!   search).
//! - [`Payload`] and [`Value`]; [`Filter`], one filter language for every
//!   backend (its parts in [`filter`]).
//! - [`Neighbor`], [`Record`] and [`ScanPage`], [`IndexProgress`]; the one
//!   [`Error`] type.
//! - [`FlatIndex`]: exact search, a real backend for small sets and the
//!   oracle of the conformance suite.
//!
//! Filtered search: [`FlatIndex`] is always exact; native and hnswlib answer
//! a filter exactly when its matches x dim is at most
//! [`plan::SCAN_BELOW_COORDS`], and walk their graph with the filter above
//! it ([`VectorIndex::explain`] says which);
//! the servers filter with their own engines. The facade's front page says
//! what each backend promises.
//!
//! ## For backend authors
//!
//! - [`Engine`]: the narrow trait a backend implements, receiving only
//!   well-formed work; [`Index`] is the front door that turns an engine into
//!   a [`VectorIndex`], doing every check of the contract once (validation,
//!   cosine normalisation, duplicate ids in a batch, `ef` resolution, the
//!   payload store of local engines, the answer checked, sorted and
//!   truncated); [`Create`] and [`Open`] give `Index::new` and `Index::open`.
//! - [`Capabilities`] (what a backend serves; [`Capabilities::local_full`]
//!   for a local engine), [`sort_neighbors`] (the order every backend
//!   returns), [`TopK`], [`IdFilter`] (the ids an engine may return) and
//!   its maps and sets.
//! - [`validate`], [`distance`] (exact and SIMD), [`persist`] (the file
//!   envelope), [`exec`] (executors), [`store`] (the payload store),
//!   [`storage`], [`synthetic`] data, [`uri`] (the scheme table).
#![warn(missing_docs)]

mod dense;
pub mod distance;
pub mod engine;
mod error;
pub mod exec;
pub mod filter;
mod flat;
mod idset;
mod index;
mod metric;
pub mod payload;
pub mod persist;
pub mod plan;
mod range_index;
mod spec;
pub mod storage;
pub mod store;
pub mod synthetic;
mod topk;
pub mod uri;
pub mod validate;

pub use dense::DenseIds;
pub use engine::{Create, Engine, Index, Open};
pub use error::{Error, Result};
pub use filter::{Filter, IdFilter, IdHasher, IdMap, Number, Range, Scalar};
pub use flat::{FlatEngine, FlatIndex};
pub use idset::IdSet;
pub use index::{Blocking, IndexProgress, Record, ScanPage, VectorIndex};
pub use metric::Metric;
pub use payload::{FieldType, Payload, Schema, Value};
pub use plan::{Explain, Plan, Trace};
pub use spec::{sort_neighbors, Capabilities, Consistency, IndexSpec, Neighbor, SearchParams};
pub use storage::Storage;
pub use topk::TopK;

/// Re-exported so backends implement the trait with the same macro version.
pub use async_trait::async_trait;

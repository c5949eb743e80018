//! The foundation of `vecsearch`: the [`VectorIndex`] trait, its types and
//! its one [`Error`], input validation, exact and SIMD distances, the on-disk
//! envelope, and [`FlatIndex`], the exact index that is both a real backend
//! for small sets and the oracle of the conformance suite.
//!
//! Applications normally use the `vecsearch` facade crate, which opens any
//! backend by URI.
#![warn(missing_docs)]

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

//! Qdrant and Milvus over HTTP: the same [`VectorIndex`] as the local
//! backends, served by a vector database.
//!
//! Open by URI with [`open_uri`]:
//! `qdrant://host:6333/collection`, `milvus://host:19530/collection`, and
//! `qdrant+https://...`, `milvus+https://...` for TLS. An API key (Qdrant) or
//! token (Milvus, `user:password` or an API key) comes from the URI's user
//! part or `?api_key=` (or `?token=`), else from `VECSEARCH_QDRANT_API_KEY` /
//! `VECSEARCH_MILVUS_TOKEN`. Options (any other is `InvalidArgument`):
//! `timeout_ms` (per request, default 30000), `retries` (attempts for a
//! failed connection or a 5xx, default 4, 1 to 20), `mgmt_port` (Milvus 2.3's
//! management API, default 9091); for Qdrant, applied when the collection is
//! created, `indexing_threshold_kb` and `full_scan_threshold_kb` (the sizes
//! under which Qdrant builds no graph for a segment, or does not search the
//! graph it has: 10 000 KB of vectors each by default, so a small collection
//! is answered by exact scan).
//!
//! Servers index in the background: `finish_indexing()` waits until searches
//! go through the index and says how many vectors are still answered by
//! exact scan. Call it before measuring a server.
//!
//! Opening creates the collection for the spec when it is absent (remote
//! URIs take no `mode=`) and checks dim and metric when it exists;
//! [`drop_collection`] drops it. Requests run on the Tokio runtime that was
//! current at open (or on a small runtime of the index's own), so an index
//! can be used from any executor.
#![warn(missing_docs)]

mod check;
mod http;
mod json;
mod milvus;
mod pending;
mod qdrant;
mod translate;
mod uri;
mod wire;

pub use milvus::{MilvusEngine, MilvusIndex};
pub use qdrant::{QdrantEngine, QdrantIndex};
pub use uri::{Endpoint, Server};

use vecsearch_core::{IndexSpec, Result, VectorIndex};

/// Opens (creating when absent) the collection a `qdrant://` or `milvus://`
/// URI names, as an index for `spec`.
pub async fn open_uri(uri: &str, spec: IndexSpec) -> Result<Box<dyn VectorIndex>> {
    let ep = Endpoint::parse(uri)?;
    Ok(match ep.server {
        Server::Qdrant => Box::new(QdrantEngine::open_endpoint(&ep, spec).await?),
        Server::Milvus => Box::new(MilvusEngine::open_endpoint(&ep, spec).await?),
    })
}

/// Drops the collection a URI names; returns whether it existed. For tests
/// and clean-up: everything in the collection is lost.
pub async fn drop_collection(uri: &str) -> Result<bool> {
    let ep = Endpoint::parse(uri)?;
    match ep.server {
        Server::Qdrant => qdrant::drop_endpoint(&ep).await,
        Server::Milvus => milvus::drop_endpoint(&ep).await,
    }
}

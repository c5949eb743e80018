//! Qdrant and Milvus over HTTP (in progress).

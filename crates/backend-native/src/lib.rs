//! Our own pure-Rust HNSW engine (in progress).

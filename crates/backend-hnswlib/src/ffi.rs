//! The cxx bridge to the C++ shim (`shim.h`/`shim.cc`) around
//! `hnswlib::HierarchicalNSW<float>`.
//!
//! Every C++ function that can throw is declared `-> Result<..>`, so cxx
//! catches the exception and hands it over as an `Err`: none reaches Rust's
//! stack or aborts the process. The locking discipline hnswlib needs (see
//! `index.rs`) is the Rust side's job; the shim takes `&self` everywhere.

use vecsearch_core::IdFilter;

/// A compiled filter as the shim's `BaseFilterFunctor` reads it, entirely
/// in C++ (no call back into Rust per visited label): a bit array over
/// labels from `base` (bit `i` of word `i / 64` is label `base + i`), or,
/// when the ids spread too widely for one, their sorted list.
pub struct Labels<'a> {
    pub(crate) base: u64,
    pub(crate) words: &'a [u64],
    pub(crate) sorted: Vec<u64>,
}

impl<'a> Labels<'a> {
    /// The labels `filter` admits (`None` filter: an empty, unused set).
    pub(crate) fn of(filter: Option<&'a IdFilter>, live: usize) -> Labels<'a> {
        let none = Labels {
            base: 0,
            words: &[],
            sorted: Vec::new(),
        };
        let Some(f) = filter else {
            return none;
        };
        match f.dense(live) {
            Some(d) => Labels {
                base: d.base(),
                words: d.words(),
                sorted: Vec::new(),
            },
            None => Labels {
                sorted: f.ids().collect(),
                ..none
            },
        }
    }
}

#[cxx::bridge(namespace = "vecsearch")]
pub(crate) mod bridge {
    /// One search hit as the shim reports it.
    #[derive(Debug, Clone, Copy)]
    struct Hit {
        id: u64,
        distance: f32,
    }

    /// hnswlib's space (cosine is inner product on normalised vectors).
    #[repr(u8)]
    enum Space {
        L2 = 0,
        InnerProduct = 1,
        /// Our own weighted Jaccard space.
        Jaccard = 2,
    }

    /// Where a label stands.
    #[repr(u8)]
    enum LabelState {
        Absent = 0,
        Live = 1,
        /// Marked deleted: its slot may be reused.
        Deleted = 2,
    }

    unsafe extern "C++" {
        include!("shim.h");

        /// The wrapped `HierarchicalNSW<float>` with its space.
        type Hnsw;

        /// A new, empty index.
        fn new_index(
            space: Space,
            dim: usize,
            capacity: usize,
            m: usize,
            ef_construction: usize,
            seed: usize,
        ) -> Result<UniquePtr<Hnsw>>;
        /// An index loaded from a file in hnswlib's own `saveIndex` format,
        /// which the caller has validated field by field.
        fn load_index(
            space: Space,
            dim: usize,
            path: &str,
            capacity: usize,
        ) -> Result<UniquePtr<Hnsw>>;

        /// Whether a label is absent, live or marked deleted.
        fn label_state(self: &Hnsw, label: u64) -> Result<LabelState>;
        /// Clears the delete mark of a label (taking its slot out of the reuse pool).
        fn unmark_deleted(self: &Hnsw, label: u64) -> Result<()>;
        /// `addPoint`; `replace_deleted` reuses a deleted slot for a new label.
        fn add_point(self: &Hnsw, vector: &[f32], label: u64, replace_deleted: bool) -> Result<()>;
        /// `markDelete`.
        fn mark_deleted(self: &Hnsw, label: u64) -> Result<()>;
        /// The stored vector of a live label.
        fn get_vector(self: &Hnsw, label: u64) -> Result<Vec<f32>>;
        /// `resizeIndex`.
        fn resize(self: &Hnsw, new_max: usize) -> Result<()>;

        /// `searchKnn(query, width)`: the `width` nearest live labels, any order.
        fn search(self: &Hnsw, query: &[f32], width: usize) -> Result<Vec<Hit>>;
        /// `searchKnn(query, width)` written into `out` (at most `out.len()`
        /// hits, any order): no allocation crosses the boundary. Returns the count.
        fn search_into(self: &Hnsw, query: &[f32], width: usize, out: &mut [Hit]) -> Result<usize>;
        /// `searchKnn` with a `BaseFilterFunctor` admitting the labels set
        /// in `words` (bit `i` is label `base + i`), or, when `words` is
        /// empty, the labels of the ascending list `sorted`; the bottom
        /// level's walk stops once it has scored more than `budget` rows,
        /// and then sets `gave_up` (its hits are not the answer).
        #[allow(clippy::too_many_arguments)]
        fn search_filtered(
            self: &Hnsw,
            query: &[f32],
            width: usize,
            base: u64,
            words: &[u64],
            sorted: &[u64],
            budget: usize,
            gave_up: &mut bool,
        ) -> Result<Vec<Hit>>;
        /// The `k` live labels of `labels` nearest to `query`, by exact
        /// distance, ties at the `k`-th distance to the lowest labels (absent
        /// or deleted labels are skipped).
        fn nearest_of(self: &Hnsw, query: &[f32], labels: &[u64], k: usize) -> Result<Vec<Hit>>;
        /// Exact distances from `query` to every live slot (the admitted ones
        /// if `filtered`, as for `search_filtered`), the `k` nearest.
        #[allow(clippy::too_many_arguments)]
        fn scan(
            self: &Hnsw,
            query: &[f32],
            k: usize,
            filtered: bool,
            base: u64,
            words: &[u64],
            sorted: &[u64],
        ) -> Result<Vec<Hit>>;
        /// Runs `searchKnn` for each of `n` queries packed in `queries`,
        /// all inside C++: the reference for the FFI-cost benchmark.
        /// Returns the sum of the returned labels (so nothing is optimised away).
        fn search_loop(self: &Hnsw, queries: &[f32], k: usize) -> Result<u64>;

        /// `saveIndex` to `path`.
        fn save(self: &Hnsw, path: &str) -> Result<()>;
        /// `indexFileSize()`: the bytes `save` writes.
        fn file_size(self: &Hnsw) -> usize;

        fn element_count(self: &Hnsw) -> usize;
        fn deleted_count(self: &Hnsw) -> usize;
        fn max_elements(self: &Hnsw) -> usize;
        /// Bytes held: level 0 block, upper link lists, locks, lookups.
        fn memory_bytes(self: &Hnsw) -> usize;
        /// Every live label, in slot order.
        fn labels(self: &Hnsw) -> Vec<u64>;
    }
}

// SAFETY: `Hnsw` owns its hnswlib index exclusively (no thread-local state,
// no references handed out), so moving it between threads is sound. Sharing
// it (`Sync`) is sound because every call from Rust goes through the mode
// lock of `handle.rs` (the only owner of the pointer): searches and reads together, adds together (hnswlib
// serialises those with its own per-label and per-node mutexes), deletes,
// resizes and saves alone.
unsafe impl Send for bridge::Hnsw {}
// SAFETY: see above.
unsafe impl Sync for bridge::Hnsw {}

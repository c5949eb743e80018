//! The allow-list filter every backend serves.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// An allow-list of ids: a search with it returns only these ids, and the
/// nearest of them. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Filter {
    ids: Arc<HashSet<u64, BuildHasherDefault<IdHasher>>>,
}

impl Filter {
    /// A filter admitting exactly `ids`.
    pub fn allow(ids: impl IntoIterator<Item = u64>) -> Self {
        Filter {
            ids: Arc::new(ids.into_iter().collect()),
        }
    }

    /// Whether `id` passes.
    #[inline]
    pub fn admits(&self, id: u64) -> bool {
        self.ids.contains(&id)
    }

    /// Number of admitted ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id passes.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The admitted ids, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.ids.iter().copied()
    }
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Filter({} ids)", self.ids.len())
    }
}

/// A multiplicative hash for `u64` keys: membership tests sit in the search
/// loop, where SipHash's cost shows and its DoS resistance buys nothing (the
/// caller builds the set).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fold the high half in so ids that differ only there still spread.
        let x = (n ^ (n >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }
}

/// A `HashMap` keyed by ids with [`IdHasher`].
pub type IdMap<V> = std::collections::HashMap<u64, V, BuildHasherDefault<IdHasher>>;

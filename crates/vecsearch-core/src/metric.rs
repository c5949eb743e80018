//! The distance functions an index can be built for.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// How closeness is measured. Every backend reports distances in the same
/// convention (smaller is closer); see the contract
/// (`crates/conformance/CONTRACT.md`, or the `contract` module of
/// `vecsearch-conformance` on docs.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Squared Euclidean distance, `Σ(aᵢ−bᵢ)²`.
    L2,
    /// `1 − cos(a, b)`. Vectors are normalised on the way in; a zero vector is rejected.
    Cosine,
    /// `1 − a·b` (hnswlib's convention).
    InnerProduct,
    /// Weighted Jaccard distance `1 − Σmin(aᵢ,bᵢ) / Σmax(aᵢ,bᵢ)` over
    /// non-negative vectors; equals set Jaccard on 0/1 vectors. Two all-zero
    /// vectors are at distance 0.
    Jaccard,
}

impl Metric {
    /// All metrics, in a fixed order.
    pub const ALL: [Metric; 4] = [
        Metric::L2,
        Metric::Cosine,
        Metric::InnerProduct,
        Metric::Jaccard,
    ];

    /// The lower-case name used in URIs, files and command lines.
    pub fn name(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Cosine => "cosine",
            Metric::InnerProduct => "ip",
            Metric::Jaccard => "jaccard",
        }
    }

    /// A stable number for file headers.
    pub fn code(self) -> u32 {
        match self {
            Metric::L2 => 1,
            Metric::Cosine => 2,
            Metric::InnerProduct => 3,
            Metric::Jaccard => 4,
        }
    }

    /// The metric for a file-header number, if it is one.
    pub fn from_code(code: u32) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.code() == code)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "l2" | "euclidean" => Ok(Metric::L2),
            "cosine" | "cos" => Ok(Metric::Cosine),
            "ip" | "inner_product" | "innerproduct" | "dot" => Ok(Metric::InnerProduct),
            "jaccard" => Ok(Metric::Jaccard),
            other => Err(Error::InvalidArgument(format!(
                "unknown metric {other:?}: expected l2, cosine, ip or jaccard"
            ))),
        }
    }
}

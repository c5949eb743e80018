//! How an index holds its vectors in memory: exact `f32`, half precision,
//! or 8-bit codes re-ranked with exact distances.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// How an index stores its vectors (see [`IndexSpec::with_storage`](crate::IndexSpec::with_storage)).
///
/// | kind | bytes a component | `get` returns | distances returned |
/// |---|---|---|---|
/// | `F32` | 4 | the vector (prepared) | exact |
/// | `F16` | 2 | the vector rounded to half precision | exact, for the rounded vector |
/// | `I8` | 1 (+ 8 a vector), plus the f32 originals (on disk, mapped) | the vector (prepared) | exact: the best candidates are re-ranked with the originals |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Storage {
    /// Every component as an `f32`.
    #[default]
    F32,
    /// Every component rounded to IEEE half precision (after cosine
    /// normalisation): half the bytes, about 3 significant digits. A
    /// component beyond ±65504 (half's range) is refused at insertion.
    F16,
    /// Every vector quantised to one byte a component over its own range
    /// (`lo + step·code`), so vectors added later never fall outside it and
    /// nothing is learned or re-learned. Searches walk the graph with the
    /// codes and re-score their `ef` best candidates with the exact f32
    /// originals, which the index keeps (native: in a memory-mapped
    /// temporary file in `TMPDIR`, outside the heap).
    I8,
}

impl Storage {
    /// Every kind.
    pub const ALL: [Storage; 3] = [Storage::F32, Storage::F16, Storage::I8];

    /// The name used in URIs, the bench and messages: `f32`, `f16`, `i8`.
    pub fn name(self) -> &'static str {
        match self {
            Storage::F32 => "f32",
            Storage::F16 => "f16",
            Storage::I8 => "i8",
        }
    }

    /// What `get` returns for a prepared vector stored this way (a copy).
    pub fn stored(self, prepared: &[f32]) -> Vec<f32> {
        match self {
            Storage::F16 => prepared.iter().map(|&x| round_f16(x)).collect(),
            Storage::F32 | Storage::I8 => prepared.to_vec(),
        }
    }

    /// Refuses a prepared vector this kind cannot hold (F16: a component
    /// beyond half's range would become infinite).
    pub fn check(self, prepared: &[f32]) -> Result<()> {
        if self == Storage::F16 {
            if let Some(i) = prepared.iter().position(|x| x.abs() > F16_MAX) {
                return Err(Error::InvalidVector(format!(
                    "component {i} is {}, beyond ±{F16_MAX}, the range of f16 storage",
                    prepared[i]
                )));
            }
        }
        Ok(())
    }
}

/// The largest finite half-precision value.
pub const F16_MAX: f32 = 65504.0;

/// `x` rounded to the nearest half-precision value, as an `f32`.
pub fn round_f16(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Storage {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Storage::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::InvalidArgument(format!("unknown storage {s:?}: expected f32, f16 or i8"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_f16_rounds_and_refuses_what_overflows() {
        for k in Storage::ALL {
            assert_eq!(k.name().parse::<Storage>().unwrap(), k);
        }
        assert!("f64".parse::<Storage>().is_err());
        assert_eq!(Storage::F16.stored(&[1.0, 0.1]), vec![1.0, 0.099_975_586]);
        assert_eq!(Storage::I8.stored(&[0.1]), vec![0.1]);
        assert!(Storage::F16.check(&[65504.0, -65504.0]).is_ok());
        assert!(Storage::F16.check(&[1.0, 70000.0]).is_err());
        assert!(Storage::F32.check(&[1e30]).is_ok());
    }
}

//! Input checks every backend runs before it writes or searches, so the rules
//! of the contract (`crates/conformance/CONTRACT.md`) live in one place.

use crate::{Error, IndexSpec, Metric, Result};

/// Checks one vector against the spec: its length, finite values, a
/// direction for `Cosine`, no negative component for `Jaccard`, and a
/// magnitude whose distances stay finite in f32 (see [`MAX_MAGNITUDE`]).
pub fn check_vector(spec: &IndexSpec, v: &[f32]) -> Result<()> {
    if v.len() != spec.dim {
        return Err(Error::DimensionMismatch {
            expected: spec.dim,
            got: v.len(),
        });
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::InvalidVector(format!(
            "component {i} is {} (every component must be finite)",
            v[i]
        )));
    }
    // Cosine vectors are stored normalised, within every kind's range.
    if spec.metric != Metric::Cosine {
        spec.storage.check(v)?;
    }
    match spec.metric {
        Metric::Cosine if v.iter().all(|&x| x == 0.0) => Err(Error::InvalidVector(
            "an all-zero vector has no direction, so it has no cosine distance".into(),
        )),
        Metric::L2 | Metric::InnerProduct => check_magnitude(sq_norm(v), "squared norm"),
        Metric::Jaccard if v.iter().any(|&x| x < 0.0) => Err(negative_component(v)),
        Metric::Jaccard => check_magnitude(v.iter().map(|&x| f64::from(x)).sum(), "sum"),
        Metric::Cosine => Ok(()),
    }
}

/// The largest squared norm (L2, inner product) or component sum (Jaccard) a
/// vector may have: a quarter of `f32::MAX`, so that the f32 distance between
/// any two accepted vectors (at most `2(|a|² + |b|²)` for L2, `|a||b|` for the
/// inner product, `Σa + Σb` for Jaccard) stays finite. Cosine vectors are
/// normalised, so any finite magnitude is fine there.
pub const MAX_MAGNITUDE: f64 = f32::MAX as f64 / 4.0;

fn sq_norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| f64::from(x) * f64::from(x)).sum()
}

fn check_magnitude(magnitude: f64, what: &str) -> Result<()> {
    if magnitude > MAX_MAGNITUDE {
        return Err(Error::InvalidVector(format!(
            "the vector's {what} is {magnitude:e}, above {MAX_MAGNITUDE:e}: its distances would overflow f32"
        )));
    }
    Ok(())
}

fn negative_component(v: &[f32]) -> Error {
    let i = v.iter().position(|&x| x < 0.0).unwrap_or(0);
    Error::InvalidVector(format!(
        "component {i} is {} but Jaccard distance needs non-negative vectors",
        v.get(i).copied().unwrap_or_default()
    ))
}

/// Checks a whole batch before anything of it is written: equal counts of
/// ids and vectors, every id within `max_id`, every vector valid. The error
/// names the first bad position.
pub fn check_batch(spec: &IndexSpec, max_id: u64, ids: &[u64], vectors: &[Vec<f32>]) -> Result<()> {
    if ids.len() != vectors.len() {
        return Err(Error::InvalidArgument(format!(
            "batch has {} ids but {} vectors",
            ids.len(),
            vectors.len()
        )));
    }
    for (i, (&id, v)) in ids.iter().zip(vectors).enumerate() {
        check_id(max_id, id).map_err(|e| at_position(i, e))?;
        check_vector(spec, v).map_err(|e| at_position(i, e))?;
    }
    Ok(())
}

/// Checks every query of a batch.
pub fn check_queries(spec: &IndexSpec, queries: &[Vec<f32>]) -> Result<()> {
    for (i, q) in queries.iter().enumerate() {
        check_vector(spec, q).map_err(|e| at_position(i, e))?;
    }
    Ok(())
}

/// Rejects an id the backend cannot hold (rather than truncating it).
pub fn check_id(max_id: u64, id: u64) -> Result<()> {
    if id > max_id {
        return Err(Error::InvalidArgument(format!(
            "id {id} is larger than this backend's largest id {max_id}"
        )));
    }
    Ok(())
}

// Keeps the variant (callers match on it) and says where in the batch.
fn at_position(i: usize, e: Error) -> Error {
    match e {
        Error::InvalidVector(m) => Error::InvalidVector(format!("batch item {i}: {m}")),
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("batch item {i}: {m}")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_has_its_variant() {
        let spec = IndexSpec::new(3, Metric::Cosine);
        assert!(check_vector(&spec, &[1.0, 0.0, 0.0]).is_ok());
        assert!(matches!(
            check_vector(&spec, &[1.0]),
            Err(Error::DimensionMismatch {
                expected: 3,
                got: 1
            })
        ));
        assert!(matches!(
            check_vector(&spec, &[f32::NAN, 0.0, 1.0]),
            Err(Error::InvalidVector(_))
        ));
        assert!(matches!(
            check_vector(&spec, &[f32::INFINITY, 0.0, 1.0]),
            Err(Error::InvalidVector(_))
        ));
        assert!(matches!(
            check_vector(&spec, &[0.0; 3]),
            Err(Error::InvalidVector(_))
        ));
        let jac = IndexSpec::new(2, Metric::Jaccard);
        assert!(matches!(
            check_vector(&jac, &[-1.0, 1.0]),
            Err(Error::InvalidVector(_))
        ));
        assert!(check_vector(&jac, &[0.0, 0.0]).is_ok());
        assert!(matches!(check_id(10, 11), Err(Error::InvalidArgument(_))));
        let err = check_batch(
            &spec,
            u64::MAX,
            &[1, 2],
            &[vec![1.0, 0.0, 0.0], vec![0.0; 3]],
        );
        assert!(matches!(err, Err(Error::InvalidVector(m)) if m.contains("batch item 1")));
    }
}

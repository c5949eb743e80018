//! Writing request bodies fast and reading server replies without trusting them.

use std::fmt::Write;

use serde_json::Value;
use vecsearch_core::{Error, Result};

/// Appends `[v0,v1,...]`. Callers have validated every component as finite
/// (serde_json would write NaN as `null`, which Milvus stores as 0); Rust's
/// float `Display` is the shortest text that reads back to the same `f32`.
pub(crate) fn push_vector(out: &mut String, v: &[f32]) {
    out.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{x}");
    }
    out.push(']');
}

/// Appends `[id0,id1,...]`.
pub(crate) fn push_ids(out: &mut String, ids: impl IntoIterator<Item = u64>) {
    out.push('[');
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{id}");
    }
    out.push(']');
}

/// A JSON string literal for `s` (names we validated, but escape anyway).
pub(crate) fn string_lit(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// An error for a reply that does not have the shape the API documents.
pub(crate) fn malformed(what: &str, reply: &Value) -> Error {
    Error::Remote {
        status: 200,
        message: format!(
            "unexpected reply ({what}): {}",
            crate::http::shorten(&reply.to_string())
        ),
    }
}

/// An id as servers send it: a JSON number or a decimal string (Milvus
/// writes int64 ids as strings so JavaScript keeps them exact).
pub(crate) fn parse_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    }
}

/// A number that may come as a JSON number or a string (Milvus's `count(*)`).
pub(crate) fn parse_u64(v: &Value) -> Option<u64> {
    parse_id(v)
}

/// A vector of `dim` finite components.
pub(crate) fn parse_vector(v: &Value, dim: usize) -> Option<Vec<f32>> {
    let arr = v.as_array()?;
    if arr.len() != dim {
        return None;
    }
    arr.iter()
        .map(|x| x.as_f64().map(|f| f as f32).filter(|f| f.is_finite()))
        .collect()
}

/// The array at `key` of an object, or an error naming what was expected.
pub(crate) fn array_at<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a Vec<Value>> {
    v.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(&format!("{what}: no {key} array"), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip_through_text() {
        let v = [0.1f32, -3.5e-30, 1e30, f32::MIN_POSITIVE, 7.0];
        let mut s = String::new();
        push_vector(&mut s, &v);
        let parsed: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(parse_vector(&parsed, 5).unwrap(), v);
        assert_eq!(parse_vector(&parsed, 4), None);
    }

    #[test]
    fn ids_in_both_forms() {
        assert_eq!(
            parse_id(&Value::from("9223372036854775807")),
            Some(i64::MAX as u64)
        );
        assert_eq!(parse_id(&Value::from(5u64)), Some(5));
        assert_eq!(parse_id(&Value::from(-5i64)), None);
        assert_eq!(parse_id(&Value::from("x")), None);
        assert_eq!(parse_id(&Value::Null), None);
    }
}

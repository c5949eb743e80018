//! The core's filter expression in each server's own language, exactly or
//! not at all: a construct a server cannot express with the contract's
//! meaning is `Unsupported`, naming it, never an approximate answer.
//!
//! The meaning translated is `Filter::admits` (the contract's): a
//! comparison on a missing field is false, `not` of it true.

use serde_json::{json, Value};
use vecsearch_core::filter::{FieldValues, Number, Range};
use vecsearch_core::{Error, FieldType, Filter, Result, Scalar, Schema};

/// The largest integer a server's JSON number (an `f64` on the server side
/// of some parsers) carries exactly.
const EXACT_INT: i64 = 1 << 53;

fn unsupported(server: &str, what: String) -> Error {
    Error::Unsupported(format!("{server} cannot express {what} exactly"))
}

/// A Qdrant filter (`must` / `should` / `must_not`) with the contract's meaning.
///
/// Facts of Qdrant 1.18 this relies on (checked on the real server by the
/// suite's `filter_semantics` table): a condition on a missing field is
/// false; `should: []` admits everything (so an empty `or` is `has_id: []`);
/// `values_count` is false on a missing field and 0 on an empty list;
/// `is_empty` holds for a missing field (our single values are never null).
pub fn qdrant(filter: &Filter, schema: &Schema) -> Result<Value> {
    let cond = qdrant_cond(filter, schema)?;
    // The top level must be a filter object, not a bare condition.
    Ok(match cond {
        v if v.get("must").is_some()
            || v.get("should").is_some()
            || v.get("must_not").is_some() =>
        {
            v
        }
        v => json!({"must": [v]}),
    })
}

fn qdrant_cond(filter: &Filter, schema: &Schema) -> Result<Value> {
    let field_cond = |field: &str, cond: Value| -> Value {
        let mut c = json!({"key": field});
        if let (Some(obj), Some(extra)) = (c.as_object_mut(), cond.as_object()) {
            obj.extend(extra.clone());
        }
        c
    };
    let present = |field: &str| -> Result<Value> {
        Ok(match schema.require(field)? {
            // A list field is present, empty or not, where it has a count.
            t if t.is_list() => field_cond(field, json!({"values_count": {"gte": 0}})),
            _ => json!({"must_not": [{"is_empty": {"key": field}}]}),
        })
    };
    Ok(match filter {
        Filter::And(list) => {
            json!({"must": list.iter().map(|f| qdrant_cond(f, schema)).collect::<Result<Vec<_>>>()?})
        }
        Filter::Or(list) if list.is_empty() => json!({"has_id": []}),
        Filter::Or(list) => {
            json!({"should": list.iter().map(|f| qdrant_cond(f, schema)).collect::<Result<Vec<_>>>()?})
        }
        Filter::Not(f) => json!({"must_not": [qdrant_cond(f, schema)?]}),
        Filter::Eq(fv) | Filter::Contains(fv) => {
            field_cond(&fv.field, json!({"match": {"value": scalar(&fv.value)}}))
        }
        Filter::In(fv) | Filter::ContainsAny(fv) => field_cond(&fv.field, match_any(fv)),
        // `match.except` passes a list with any element outside; the
        // contract's not_in is "present, and equal to none".
        Filter::NotIn(fv) => json!({"must": [
            present(&fv.field)?,
            {"must_not": [field_cond(&fv.field, match_any(fv))]}
        ]}),
        Filter::ContainsAll(fv) if fv.values.is_empty() => present(&fv.field)?,
        Filter::ContainsAll(fv) => json!({"must": fv.values.iter()
            .map(|v| field_cond(&fv.field, json!({"match": {"value": scalar(v)}})))
            .collect::<Vec<_>>()}),
        Filter::Range(r) => field_cond(
            &r.field,
            json!({"range": qdrant_range(&r.range, &r.field, schema)?}),
        ),
        Filter::Len(l) => {
            let mut count = serde_json::Map::new();
            if let Some(g) = l.len.gte {
                count.insert("gte".into(), g.into());
            }
            if let Some(m) = l.len.lte {
                count.insert("lte".into(), m.into());
            }
            if count.is_empty() {
                count.insert("gte".into(), 0.into());
            }
            field_cond(&l.field, json!({"values_count": count}))
        }
        Filter::IsNull(f) => json!({"is_empty": {"key": f.field}}),
        Filter::HasId(ids) => json!({"has_id": ids}),
    })
}

fn match_any(fv: &FieldValues) -> Value {
    json!({"match": {"any": fv.values.iter().map(scalar).collect::<Vec<_>>()}})
}

fn scalar(s: &Scalar) -> Value {
    s.to_json()
}

fn qdrant_range(r: &Range, field: &str, schema: &Schema) -> Result<Value> {
    let float_field = schema.type_of(field) == Some(FieldType::Float);
    let mut out = serde_json::Map::new();
    for (name, b) in [("gt", r.gt), ("gte", r.gte), ("lt", r.lt), ("lte", r.lte)] {
        let Some(b) = b else { continue };
        let v = match b {
            // Qdrant reads range bounds as f64.
            Number::Integer(i) if !(-EXACT_INT..=EXACT_INT).contains(&i) => {
                return Err(unsupported(
                    "Qdrant",
                    format!(
                        "a range bound of {i} on {field:?} (bounds travel as f64, exact to ±2^53)"
                    ),
                ))
            }
            Number::Integer(i) if float_field => json!(i as f64),
            Number::Integer(i) => json!(i),
            Number::Float(x) => json!(x),
        };
        out.insert(name.into(), v);
    }
    Ok(Value::Object(out))
}

/// The payload index type Qdrant gets for a field of `ty`.
pub fn qdrant_index_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Keyword | FieldType::KeywordList => "keyword",
        FieldType::Integer | FieldType::IntegerList => "integer",
        FieldType::Float => "float",
        FieldType::Bool => "bool",
    }
}

/// A Milvus boolean expression with the contract's meaning, for a
/// collection keyed by `pk`; `None` when the filter admits no id Milvus can
/// hold (an allow-list of ids above `max_id` only).
pub fn milvus(filter: &Filter, schema: &Schema, pk: &str, max_id: u64) -> Result<Option<String>> {
    let _ = schema;
    if let Filter::HasId(ids) = filter {
        let ids: Vec<u64> = ids.iter().copied().filter(|&id| id <= max_id).collect();
        if ids.is_empty() {
            return Ok(None);
        }
    }
    milvus_expr(filter, pk, max_id).map(Some)
}

fn milvus_expr(filter: &Filter, pk: &str, max_id: u64) -> Result<String> {
    let join = |list: &[Filter], op: &str, empty: &str| -> Result<String> {
        if list.is_empty() {
            return Ok(empty.to_string());
        }
        let parts = list
            .iter()
            .map(|f| milvus_expr(f, pk, max_id).map(|e| format!("({e})")))
            .collect::<Result<Vec<_>>>()?;
        Ok(parts.join(op))
    };
    let always = format!("{pk} >= 0 || {pk} < 0");
    let never = format!("{pk} < 0 && {pk} >= 0");
    match filter {
        Filter::And(list) => join(list, " && ", &always),
        Filter::Or(list) => join(list, " || ", &never),
        Filter::Not(f) => Ok(format!("not ({})", milvus_expr(f, pk, max_id)?)),
        Filter::HasId(ids) => {
            let ids: Vec<String> = ids
                .iter()
                .filter(|&&id| id <= max_id)
                .map(u64::to_string)
                .collect();
            if ids.is_empty() {
                return Ok(never);
            }
            Ok(format!("{pk} in [{}]", ids.join(",")))
        }
        other => Err(unsupported(
            "Milvus",
            format!("a payload condition ({}) in this version", other.op()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::new()
            .keyword("t")
            .integer("n")
            .float("x")
            .keyword_list("tags")
    }

    #[test]
    fn qdrant_forms() {
        let s = schema();
        let f = Filter::eq("t", "a").and(Filter::not_in("n", [1, 2]).or(Filter::none()));
        let v = qdrant(&f, &s).unwrap();
        let text = v.to_string();
        assert!(
            text.contains(r#"{"key":"t","match":{"value":"a"}}"#),
            "{text}"
        );
        assert!(text.contains(r#"{"has_id":[]}"#), "{text}");
        assert!(
            text.contains(r#"{"must_not":[{"is_empty":{"key":"n"}}]}"#),
            "{text}"
        );
        let lone = qdrant(&Filter::is_null("t"), &s).unwrap();
        assert_eq!(lone, json!({"must": [{"is_empty": {"key": "t"}}]}));
        let e = qdrant(&Filter::range("n").gt(i64::MAX), &s).unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{e}");
        let all = qdrant(&Filter::contains_all("tags", Vec::<&str>::new()), &s).unwrap();
        assert!(all.to_string().contains("values_count"));
    }
}

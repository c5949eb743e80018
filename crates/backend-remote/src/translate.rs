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
        Filter::In(fv) | Filter::ContainsAny(fv) => any_of(fv),
        // `match.except` passes a list with any element outside; the
        // contract's not_in is "present, and equal to none".
        Filter::NotIn(fv) => json!({"must": [
            present(&fv.field)?,
            {"must_not": [any_of(fv)]}
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

/// The field equals (or, for a list, holds) one of the values. Qdrant's
/// `match.any` takes keywords and integers, not bools: those become a
/// `should` of single matches.
fn any_of(fv: &FieldValues) -> Value {
    if fv.values.iter().any(|v| matches!(v, Scalar::Bool(_))) {
        let each: Vec<Value> = fv
            .values
            .iter()
            .map(|v| json!({"key": fv.field, "match": {"value": scalar(v)}}))
            .collect();
        return json!({"should": each});
    }
    json!({"key": fv.field, "match": {"any": fv.values.iter().map(scalar).collect::<Vec<_>>()}})
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
            Number::Float(x) => {
                qdrant_float_fits(field, x)?;
                json!(x)
            }
        };
        out.insert(name.into(), v);
    }
    Ok(Value::Object(out))
}

/// How a JSON parser without correct rounding (serde_json's default, which
/// Qdrant uses) reads the shortest decimal of `x`: the significand as an
/// f64, then one multiplication or division by a power of ten. About 7% of
/// arbitrary doubles (those needing 16 to 17 digits) come out an ulp off.
pub fn read_by_fast_parser(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    let s = format!("{x:e}");
    let Some((mant, exp)) = s.split_once('e') else {
        return f64::NAN;
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return f64::NAN;
    };
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let Ok(sig) = digits.parse::<u64>() else {
        return f64::NAN;
    };
    let mut e = exp - (digits.len() as i32 - 1);
    let mut f = sig as f64;
    // Below 1e-308 the parser divides by 1e308 first, then by the rest.
    while e < -308 {
        f /= 1e308;
        e += 308;
    }
    // The parser's table of powers of ten, each correctly rounded.
    let Ok(pow) = format!("1e{}", e.abs()).parse::<f64>() else {
        return f64::NAN;
    };
    let f = if e >= 0 { f * pow } else { f / pow };
    if x < 0.0 {
        -f
    } else {
        f
    }
}

/// Refuses a payload Qdrant would not store exactly: a float its JSON
/// parser reads as another value.
pub fn qdrant_payload_fits(p: &vecsearch_core::Payload) -> Result<()> {
    for (name, v) in p.iter() {
        if let vecsearch_core::Value::Float(x) = v {
            qdrant_float_fits(name, *x)?;
        }
    }
    Ok(())
}

fn qdrant_float_fits(field: &str, x: f64) -> Result<()> {
    let read = read_by_fast_parser(x);
    if read.to_bits() != x.to_bits() && !(read == 0.0 && x == 0.0) {
        return Err(unsupported(
            "Qdrant",
            format!(
                "the float {x:?} in field {field:?}: its JSON parser reads it as {read:?}; \
                 floats of up to 15 significant digits are read"
            ),
        ));
    }
    Ok(())
}

/// A float as a Milvus literal (in expressions and in rows): Milvus 2.3
/// reads an exponent form without a decimal point (`1e20`) as 0, so the
/// mantissa always has one (`1.0e20`).
pub fn milvus_float(x: f64) -> String {
    let s = format!("{x:?}");
    match s.split_once('e') {
        Some((m, e)) if !m.contains('.') => format!("{m}.0e{e}"),
        _ => s,
    }
}

/// A payload value as Milvus row JSON (floats as [`milvus_float`]).
pub fn milvus_value(v: &vecsearch_core::Value) -> String {
    match v {
        vecsearch_core::Value::Float(x) => milvus_float(*x),
        other => other.to_json().to_string(),
    }
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
/// collection keyed by `pk` whose payload fields live in its dynamic field
/// (`$meta["name"]`, so no field name can clash with a keyword); `None` when
/// the filter admits no id Milvus can hold (an allow-list of ids above
/// `max_id` only).
///
/// Facts of Milvus 2.3.5 this relies on (the suite's `filter_semantics`
/// table checks them on the real server): a comparison on a missing key is
/// false and `not` of it true, but `!=` and `not in` hold for a missing key
/// (so the contract's `not_in` is `exists k and not (k in [...])`);
/// `array_length` of a missing key is 0 and takes `==` only; `exists` binds
/// tighter than `&&` only inside parentheses; an empty list literal is a
/// parse error; string literals take `\\`, `\"`, `\n`, `\t` escapes; JSON
/// integers beyond ±2^53 come back rounded.
pub fn milvus(filter: &Filter, schema: &Schema, pk: &str, max_id: u64) -> Result<Option<String>> {
    if let Filter::HasId(ids) = filter {
        if !ids.iter().any(|&id| id <= max_id) {
            return Ok(None);
        }
    }
    milvus_expr(filter, schema, pk, max_id).map(Some)
}

/// Refuses a payload Milvus would not store exactly: integers beyond ±2^53.
pub fn milvus_payload_fits(p: &vecsearch_core::Payload) -> Result<()> {
    use vecsearch_core::Value as V;
    for (name, v) in p.iter() {
        let big = |i: &i64| !(-EXACT_INT..=EXACT_INT).contains(i);
        let bad = match v {
            V::Integer(i) => big(i),
            V::IntegerList(l) => l.iter().any(big),
            _ => false,
        };
        if bad {
            return Err(unsupported(
                "Milvus",
                format!(
                    "payload field {name:?}: integers beyond ±2^53 (its JSON storage rounds them)"
                ),
            ));
        }
    }
    Ok(())
}

fn milvus_expr(filter: &Filter, schema: &Schema, pk: &str, max_id: u64) -> Result<String> {
    let always = format!("({pk} >= 0 || {pk} < 0)");
    let never = format!("({pk} < 0 && {pk} >= 0)");
    let join = |list: &[Filter], op: &str, empty: &str| -> Result<String> {
        if list.is_empty() {
            return Ok(empty.to_string());
        }
        let parts = list
            .iter()
            .map(|f| milvus_expr(f, schema, pk, max_id).map(|e| format!("({e})")))
            .collect::<Result<Vec<_>>>()?;
        Ok(parts.join(op))
    };
    let key = |field: &str| format!("$meta[{}]", milvus_string(field).unwrap_or_default());
    let exists = |field: &str| format!("(exists {})", key(field));
    let values = |fv: &FieldValues| -> Result<String> {
        let parts = fv
            .values
            .iter()
            .map(milvus_scalar)
            .collect::<Result<Vec<_>>>()?;
        Ok(format!("[{}]", parts.join(", ")))
    };
    Ok(match filter {
        Filter::And(list) => join(list, " && ", &always)?,
        Filter::Or(list) => join(list, " || ", &never)?,
        Filter::Not(f) => format!("not ({})", milvus_expr(f, schema, pk, max_id)?),
        Filter::HasId(ids) => {
            let ids: Vec<String> = ids
                .iter()
                .filter(|&&id| id <= max_id)
                .map(u64::to_string)
                .collect();
            if ids.is_empty() {
                return Ok(never);
            }
            format!("{pk} in [{}]", ids.join(","))
        }
        Filter::Eq(fv) => format!("{} == {}", key(&fv.field), milvus_scalar(&fv.value)?),
        Filter::In(fv) | Filter::ContainsAny(fv) if fv.values.is_empty() => never,
        Filter::In(fv) => format!("{} in {}", key(&fv.field), values(fv)?),
        Filter::NotIn(fv) if fv.values.is_empty() => exists(&fv.field),
        Filter::NotIn(fv) => format!(
            "{} && not ({} in {})",
            exists(&fv.field),
            key(&fv.field),
            values(fv)?
        ),
        Filter::Contains(fv) => format!(
            "json_contains({}, {})",
            key(&fv.field),
            milvus_scalar(&fv.value)?
        ),
        Filter::ContainsAny(fv) => {
            format!("json_contains_any({}, {})", key(&fv.field), values(fv)?)
        }
        Filter::ContainsAll(fv) if fv.values.is_empty() => exists(&fv.field),
        Filter::ContainsAll(fv) => {
            format!("json_contains_all({}, {})", key(&fv.field), values(fv)?)
        }
        Filter::Range(r) => {
            let float_field = schema.type_of(&r.field) == Some(FieldType::Float);
            let mut parts = Vec::new();
            for (op, b) in [
                (">", r.range.gt),
                (">=", r.range.gte),
                ("<", r.range.lt),
                ("<=", r.range.lte),
            ] {
                let Some(b) = b else { continue };
                let lit = match b {
                    Number::Integer(i) if !(-EXACT_INT..=EXACT_INT).contains(&i) => {
                        return Err(unsupported(
                            "Milvus",
                            format!("a range bound of {i} on {:?} (its JSON numbers are exact to ±2^53)", r.field),
                        ))
                    }
                    Number::Integer(i) if float_field => milvus_float(i as f64),
                    Number::Integer(i) => i.to_string(),
                    Number::Float(x) => milvus_float(x),
                };
                parts.push(format!("{} {op} {lit}", key(&r.field)));
            }
            if parts.is_empty() {
                // No bound: any number, so the field is present.
                exists(&r.field)
            } else {
                parts.join(" && ")
            }
        }
        Filter::Len(l) => {
            // `array_length` takes `==` only and is 0 for a missing key:
            // the lengths in range (or, shorter, those outside it) by `==`,
            // with the key present.
            let lo = l.len.gte.unwrap_or(0) as usize;
            let hi = l
                .len
                .lte
                .map_or(vecsearch_core::payload::MAX_LIST_LEN, |m| m as usize)
                .min(vecsearch_core::payload::MAX_LIST_LEN);
            let len_is = |n: usize| format!("array_length({}) == {n}", key(&l.field));
            if lo > hi {
                never
            } else if hi - lo < vecsearch_core::payload::MAX_LIST_LEN - (hi - lo) {
                let any: Vec<String> = (lo..=hi).map(len_is).collect();
                format!("{} && ({})", exists(&l.field), any.join(" || "))
            } else {
                let outside: Vec<String> = (0..lo)
                    .chain(hi + 1..=vecsearch_core::payload::MAX_LIST_LEN)
                    .map(len_is)
                    .collect();
                if outside.is_empty() {
                    exists(&l.field)
                } else {
                    format!("{} && not ({})", exists(&l.field), outside.join(" || "))
                }
            }
        }
        Filter::IsNull(f) => format!("not {}", exists(&f.field)),
    })
}

fn milvus_scalar(s: &Scalar) -> Result<String> {
    Ok(match s {
        Scalar::Bool(b) => b.to_string(),
        Scalar::Integer(i) if !(-EXACT_INT..=EXACT_INT).contains(i) => {
            return Err(unsupported(
                "Milvus",
                format!("the integer {i} (its JSON numbers are exact to ±2^53)"),
            ))
        }
        Scalar::Integer(i) => i.to_string(),
        Scalar::Keyword(k) => milvus_string(k)?,
    })
}

/// A Milvus string literal for `s`, or `Unsupported` for control
/// characters its parser takes no escape for.
fn milvus_string(s: &str) -> Result<String> {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                return Err(unsupported(
                    "Milvus",
                    format!(
                    "a string with the control character {:?} (its parser has no escape for it)",
                    c
                ),
                ))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
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

    #[test]
    fn float_literals() {
        assert_eq!(milvus_float(1e20), "1.0e20");
        assert_eq!(milvus_float(-5e-324), "-5.0e-324");
        assert_eq!(milvus_float(1.5e300), "1.5e300");
        assert_eq!(milvus_float(0.25), "0.25");
        // Measured on Qdrant 1.18.3: 90.33333333333333 comes back as ...331.
        assert_eq!(
            read_by_fast_parser(90.333_333_333_333_33),
            90.333_333_333_333_31
        );
        assert_eq!(read_by_fast_parser(0.1), 0.1);
        assert!(qdrant_float_fits("f", 90.333_333_333_333_33).is_err());
        assert!(qdrant_float_fits("f", 2.5).is_ok());
        assert_eq!(read_by_fast_parser(5e-324), 5e-324);
    }

    #[test]
    fn milvus_forms() {
        let s = schema();
        let m = |f: Filter| milvus(&f, &s, "id", u64::MAX).unwrap().unwrap_or_default();
        assert_eq!(m(Filter::eq("t", "a\"b\\")), r#"$meta["t"] == "a\"b\\""#);
        assert_eq!(
            m(Filter::not_in("t", ["x"])),
            r#"(exists $meta["t"]) && not ($meta["t"] in ["x"])"#
        );
        assert_eq!(m(Filter::is_null("t")), r#"not (exists $meta["t"])"#);
        assert_eq!(m(Filter::none()), "(id < 0 && id >= 0)");
        assert!(m(Filter::len_range("tags", Some(1), None)).contains("not (array_length"));
        assert!(matches!(
            milvus(&Filter::eq("t", "a\u{1}"), &s, "id", u64::MAX),
            Err(Error::Unsupported(_))
        ));
        assert!(milvus(&Filter::allow([u64::MAX]), &s, "id", 10)
            .unwrap()
            .is_none());
    }
}

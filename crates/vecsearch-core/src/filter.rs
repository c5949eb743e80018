//! The filter language: one expression over ids and payload fields, with the
//! same meaning on every backend (see the contract's "Payloads and filters").
//!
//! [`Filter`] is what a caller writes, in Rust with the builder functions or
//! as JSON (it is `serde`-deserialisable, so a service can take it from a
//! request):
//!
//! ```
//! use vecsearch_core::Filter;
//! let f = Filter::eq("tenant", "acme")
//!     .and(Filter::range("date").gte(1_704_067_200))
//!     .and(Filter::contains("tags", "legal"));
//! let json = r#"{"and": [
//!     {"eq": {"field": "tenant", "value": "acme"}},
//!     {"range": {"field": "date", "gte": 1704067200}},
//!     {"contains": {"field": "tags", "value": "legal"}}
//! ]}"#;
//! assert_eq!(serde_json::from_str::<Filter>(json).unwrap(), f);
//! ```
//!
//! A field a payload does not have is *missing*: every comparison on it is
//! false, and `not` of a comparison on it is true (Qdrant's `must_not`).
//!
//! Local backends evaluate it once per search in the front door, against the
//! index's payload store, and hand their engine an [`IdFilter`]: the exact
//! set of admitted ids (a membership test and its count). Server backends
//! translate the expression into the server's own filter.

use std::cmp::Ordering;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::payload::{check_keyword, FieldType, Payload, Schema, Value};
use crate::{Error, IdSet, Result};

pub use crate::dense::DenseIds;

/// The deepest nesting of `and` / `or` / `not` a filter may have.
pub const MAX_FILTER_DEPTH: usize = 16;
/// The most conditions (nodes) a filter may have.
pub const MAX_FILTER_NODES: usize = 1024;

/// A scalar a condition compares with: a keyword, an integer or a bool.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Integer(i64),
    /// A string.
    Keyword(String),
}

impl Scalar {
    fn field_type(&self) -> FieldType {
        match self {
            Scalar::Bool(_) => FieldType::Bool,
            Scalar::Integer(_) => FieldType::Integer,
            Scalar::Keyword(_) => FieldType::Keyword,
        }
    }

    /// The scalar as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Scalar::Bool(b) => (*b).into(),
            Scalar::Integer(i) => (*i).into(),
            Scalar::Keyword(s) => s.as_str().into(),
        }
    }

    /// Whether a stored single value equals this scalar.
    fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            (Scalar::Bool(a), Value::Bool(b)) => a == b,
            (Scalar::Integer(a), Value::Integer(b)) => a == b,
            (Scalar::Keyword(a), Value::Keyword(b)) => a == b,
            _ => false,
        }
    }

    /// Whether a stored list holds this scalar.
    fn in_list(&self, v: &Value) -> bool {
        match (self, v) {
            (Scalar::Integer(a), Value::IntegerList(l)) => l.contains(a),
            (Scalar::Keyword(a), Value::KeywordList(l)) => l.contains(a),
            _ => false,
        }
    }
}

impl From<&str> for Scalar {
    fn from(s: &str) -> Self {
        Scalar::Keyword(s.to_owned())
    }
}
impl From<String> for Scalar {
    fn from(s: String) -> Self {
        Scalar::Keyword(s)
    }
}
impl From<i64> for Scalar {
    fn from(i: i64) -> Self {
        Scalar::Integer(i)
    }
}
impl From<i32> for Scalar {
    fn from(i: i32) -> Self {
        Scalar::Integer(i64::from(i))
    }
}
impl From<bool> for Scalar {
    fn from(b: bool) -> Self {
        Scalar::Bool(b)
    }
}

/// A number a range compares with: an integer, compared exactly, or a float.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Number {
    /// An integer.
    Integer(i64),
    /// A float (finite).
    Float(f64),
}

impl Number {
    /// How a stored number compares with this bound, exactly (no rounding
    /// of integers beyond 2^53).
    fn cmp_value(self, v: &Value) -> Option<Ordering> {
        match (v, self) {
            (Value::Integer(a), Number::Integer(b)) => Some(a.cmp(&b)),
            (Value::Integer(a), Number::Float(b)) => cmp_int_float(*a, b),
            (Value::Float(a), Number::Integer(b)) => cmp_int_float(b, *a).map(Ordering::reverse),
            (Value::Float(a), Number::Float(b)) => a.partial_cmp(&b),
            _ => None,
        }
    }

    /// The number as JSON.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Number::Integer(i) => i.into(),
            Number::Float(x) => serde_json::Number::from_f64(x)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
        }
    }

    /// The number as an `f64`, if it is one exactly.
    pub fn as_exact_f64(self) -> Option<f64> {
        match self {
            Number::Float(x) => Some(x),
            Number::Integer(i) => {
                let x = i as f64;
                (cmp_int_float(i, x) == Some(Ordering::Equal)).then_some(x)
            }
        }
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Self {
        Number::Integer(i)
    }
}
impl From<i32> for Number {
    fn from(i: i32) -> Self {
        Number::Integer(i64::from(i))
    }
}
impl From<f64> for Number {
    fn from(x: f64) -> Self {
        Number::Float(x)
    }
}

/// Compares an integer with a float exactly.
fn cmp_int_float(a: i64, b: f64) -> Option<Ordering> {
    if b.is_nan() {
        return None;
    }
    // -2^63 is exact in f64; 2^63 is the first float above every i64.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if b >= TWO_63 {
        return Some(Ordering::Less);
    }
    if b < -TWO_63 {
        return Some(Ordering::Greater);
    }
    let t = b.trunc() as i64; // exact: |b| < 2^63
    match a.cmp(&t) {
        Ordering::Equal => {
            let frac = b - b.trunc();
            Some(if frac > 0.0 {
                Ordering::Less
            } else if frac < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            })
        }
        o => Some(o),
    }
}

/// Bounds of a `range` condition; a bound left out is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// Greater than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<Number>,
    /// Greater than or equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<Number>,
    /// Less than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<Number>,
    /// Less than or equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<Number>,
}

impl Range {
    /// Whether a stored value lies within the bounds (compared exactly).
    pub fn admits(&self, v: &Value) -> bool {
        let test = |b: Option<Number>, ok: fn(Ordering) -> bool| {
            b.is_none_or(|b| b.cmp_value(v).is_some_and(ok))
        };
        test(self.gt, Ordering::is_gt)
            && test(self.gte, Ordering::is_ge)
            && test(self.lt, Ordering::is_lt)
            && test(self.lte, Ordering::is_le)
    }

    fn bounds(&self) -> impl Iterator<Item = Number> {
        [self.gt, self.gte, self.lt, self.lte].into_iter().flatten()
    }
}

/// Bounds on the number of elements of a list field (`len`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LenRange {
    /// At least this many elements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<u32>,
    /// At most this many elements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<u32>,
}

/// A condition on one field with one scalar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldValue {
    /// The field.
    pub field: String,
    /// The value.
    pub value: Scalar,
}

/// A condition on one field with a set of scalars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldValues {
    /// The field.
    pub field: String,
    /// The values.
    pub values: Vec<Scalar>,
}

/// A range condition on one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldRange {
    /// The field.
    pub field: String,
    /// The bounds.
    #[serde(flatten)]
    pub range: Range,
}

/// A length condition on one list field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldLen {
    /// The field.
    pub field: String,
    /// The bounds.
    #[serde(flatten)]
    pub len: LenRange,
}

/// A field named alone (`is_null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldName {
    /// The field.
    pub field: String,
}

/// A filter expression: which ids a search, a count or a delete-by-filter
/// may touch. Build it with the functions below ([`Filter::eq`],
/// [`Filter::range`], [`Filter::and`], ...) or deserialise it from JSON
/// (`{"and": [{"eq": {"field": "tenant", "value": "acme"}}, ...]}`).
///
/// Semantics (the contract's): `eq` / `in` / `not_in` on keyword, integer
/// and bool fields; `range` on integer and float fields; `contains`,
/// `contains_any`, `contains_all` and `len` on list fields; `is_null` (the
/// field is missing) on single-value fields; `has_id` on ids. A comparison
/// on a missing field is false, so `not_in` is false there while
/// `not(in)` is true. `and([])` admits every id, `or([])` none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// Every condition holds.
    And(Vec<Filter>),
    /// At least one condition holds.
    Or(Vec<Filter>),
    /// The condition does not hold.
    Not(Box<Filter>),
    /// The field equals the value.
    Eq(FieldValue),
    /// The field equals one of the values.
    In(FieldValues),
    /// The field is present and equals none of the values.
    NotIn(FieldValues),
    /// The (integer or float) field is within the bounds.
    Range(FieldRange),
    /// The list field holds the value.
    Contains(FieldValue),
    /// The list field holds at least one of the values.
    ContainsAny(FieldValues),
    /// The list field holds every one of the values.
    ContainsAll(FieldValues),
    /// The list field's length is within the bounds.
    Len(FieldLen),
    /// The (single-value) field is missing.
    IsNull(FieldName),
    /// The id is one of these (an allow-list).
    HasId(Vec<u64>),
}

/// A range condition under construction: `Filter::range("date").gte(5).lt(9)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeBuilder(FieldRange);

impl RangeBuilder {
    /// Greater than `x`.
    pub fn gt(mut self, x: impl Into<Number>) -> Filter {
        self.0.range.gt = Some(x.into());
        Filter::Range(self.0)
    }
    /// Greater than or equal to `x`.
    pub fn gte(mut self, x: impl Into<Number>) -> Filter {
        self.0.range.gte = Some(x.into());
        Filter::Range(self.0)
    }
    /// Less than `x`.
    pub fn lt(mut self, x: impl Into<Number>) -> Filter {
        self.0.range.lt = Some(x.into());
        Filter::Range(self.0)
    }
    /// Less than or equal to `x`.
    pub fn lte(mut self, x: impl Into<Number>) -> Filter {
        self.0.range.lte = Some(x.into());
        Filter::Range(self.0)
    }
    /// Within `range` (any bounds).
    pub fn within(mut self, range: Range) -> Filter {
        self.0.range = range;
        Filter::Range(self.0)
    }
}

impl Filter {
    /// Admits exactly `ids` (`has_id`; the allow-list of earlier versions).
    pub fn allow(ids: impl IntoIterator<Item = u64>) -> Filter {
        let mut ids: Vec<u64> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        Filter::HasId(ids)
    }

    /// Admits every id but `ids` (an exclude list).
    pub fn exclude(ids: impl IntoIterator<Item = u64>) -> Filter {
        Filter::allow(ids).negate()
    }

    /// `field == value`.
    pub fn eq(field: impl Into<String>, value: impl Into<Scalar>) -> Filter {
        Filter::Eq(FieldValue {
            field: field.into(),
            value: value.into(),
        })
    }

    /// `field` equals one of `values`.
    pub fn is_in<V: Into<Scalar>>(
        field: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Filter {
        Filter::In(field_values(field, values))
    }

    /// `field` is present and equals none of `values`.
    pub fn not_in<V: Into<Scalar>>(
        field: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Filter {
        Filter::NotIn(field_values(field, values))
    }

    /// A range on `field`; finish it with `.gt`, `.gte`, `.lt`, `.lte`
    /// (chain two with [`Filter::and`], or use [`RangeBuilder::within`]).
    pub fn range(field: impl Into<String>) -> RangeBuilder {
        RangeBuilder(FieldRange {
            field: field.into(),
            range: Range::default(),
        })
    }

    /// `field` within `[lo, hi)`, the usual date window.
    pub fn between(
        field: impl Into<String>,
        lo: impl Into<Number>,
        hi: impl Into<Number>,
    ) -> Filter {
        Filter::range(field).within(Range {
            gte: Some(lo.into()),
            lt: Some(hi.into()),
            ..Range::default()
        })
    }

    /// The list `field` holds `value`.
    pub fn contains(field: impl Into<String>, value: impl Into<Scalar>) -> Filter {
        Filter::Contains(FieldValue {
            field: field.into(),
            value: value.into(),
        })
    }

    /// The list `field` holds at least one of `values`.
    pub fn contains_any<V: Into<Scalar>>(
        field: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Filter {
        Filter::ContainsAny(field_values(field, values))
    }

    /// The list `field` holds every one of `values`.
    pub fn contains_all<V: Into<Scalar>>(
        field: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Filter {
        Filter::ContainsAll(field_values(field, values))
    }

    /// The list `field` has between `gte` and `lte` elements (either open).
    pub fn len_range(field: impl Into<String>, gte: Option<u32>, lte: Option<u32>) -> Filter {
        Filter::Len(FieldLen {
            field: field.into(),
            len: LenRange { gte, lte },
        })
    }

    /// The single-value `field` is missing.
    pub fn is_null(field: impl Into<String>) -> Filter {
        Filter::IsNull(FieldName {
            field: field.into(),
        })
    }

    /// Every id.
    pub fn all() -> Filter {
        Filter::And(Vec::new())
    }

    /// No id.
    pub fn none() -> Filter {
        Filter::Or(Vec::new())
    }

    /// `self` and `other` (flattens nested `and`s).
    pub fn and(self, other: Filter) -> Filter {
        match self {
            Filter::And(mut list) => {
                list.push(other);
                Filter::And(list)
            }
            f => Filter::And(vec![f, other]),
        }
    }

    /// `self` or `other` (flattens nested `or`s).
    pub fn or(self, other: Filter) -> Filter {
        match self {
            Filter::Or(mut list) => {
                list.push(other);
                Filter::Or(list)
            }
            f => Filter::Or(vec![f, other]),
        }
    }

    /// Not `self`.
    pub fn negate(self) -> Filter {
        Filter::Not(Box::new(self))
    }

    /// The ids of an allow-list filter (`has_id` alone), if it is one.
    pub fn allowed_ids(&self) -> Option<&[u64]> {
        match self {
            Filter::HasId(ids) => Some(ids),
            _ => None,
        }
    }

    /// Whether this is an allow-list that admits nothing (answered without the engine).
    pub fn is_empty_allow_list(&self) -> bool {
        matches!(self, Filter::HasId(ids) if ids.is_empty())
    }

    /// Whether the expression reads any payload field (not only ids).
    pub fn uses_payload(&self) -> bool {
        match self {
            Filter::And(l) | Filter::Or(l) => l.iter().any(Filter::uses_payload),
            Filter::Not(f) => f.uses_payload(),
            Filter::HasId(_) => false,
            _ => true,
        }
    }

    /// The deepest nesting of the expression (a lone condition is 1).
    pub fn depth(&self) -> usize {
        match self {
            Filter::And(l) | Filter::Or(l) => 1 + l.iter().map(Filter::depth).max().unwrap_or(0),
            Filter::Not(f) => 1 + f.depth(),
            _ => 1,
        }
    }

    fn nodes(&self) -> usize {
        match self {
            Filter::And(l) | Filter::Or(l) => 1 + l.iter().map(Filter::nodes).sum::<usize>(),
            Filter::Not(f) => 1 + f.nodes(),
            _ => 1,
        }
    }

    /// Checks the expression against `schema`: every field declared and of
    /// a type the operator takes, values of the field's type, within the
    /// limits; depth at most [`MAX_FILTER_DEPTH`]. `InvalidArgument` naming
    /// what is wrong otherwise.
    pub fn validate(&self, schema: &Schema) -> Result<()> {
        if self.depth() > MAX_FILTER_DEPTH {
            return Err(Error::InvalidArgument(format!(
                "the filter is nested {} deep, over the limit of {MAX_FILTER_DEPTH}",
                self.depth()
            )));
        }
        if self.nodes() > MAX_FILTER_NODES {
            return Err(Error::InvalidArgument(format!(
                "the filter has {} conditions, over the limit of {MAX_FILTER_NODES}",
                self.nodes()
            )));
        }
        self.check_node(schema)
    }

    fn check_node(&self, schema: &Schema) -> Result<()> {
        use FieldType as T;
        let scalar_on = |field: &str, value: &Scalar, list: bool| -> Result<()> {
            let ty = schema.require(field)?;
            let want = match (ty, list) {
                (T::Keyword | T::Integer | T::Bool, false) => ty,
                (T::KeywordList, true) => T::Keyword,
                (T::IntegerList, true) => T::Integer,
                _ => return Err(wrong_op(self, field, ty)),
            };
            if value.field_type() != want {
                return Err(Error::InvalidArgument(format!(
                    "filter {}: field {field:?} holds {want} values but the filter compares it with {value:?}",
                    self.op()
                )));
            }
            if let Scalar::Keyword(s) = value {
                check_keyword(field, s)?;
            }
            Ok(())
        };
        let many = |fv: &FieldValues, list: bool| -> Result<()> {
            if fv.values.len() > crate::payload::MAX_LIST_LEN {
                return Err(Error::InvalidArgument(format!(
                    "filter {}: {} values, over the limit of {}",
                    self.op(),
                    fv.values.len(),
                    crate::payload::MAX_LIST_LEN
                )));
            }
            schema.require(&fv.field)?;
            if fv.values.is_empty() {
                // Nothing to type-check, but the operator must fit the field.
                let probe = match schema.require(&fv.field)? {
                    T::Keyword | T::KeywordList => Scalar::Keyword(String::new()),
                    T::Integer | T::IntegerList => Scalar::Integer(0),
                    _ => Scalar::Bool(false),
                };
                return scalar_on(&fv.field, &probe, list);
            }
            fv.values
                .iter()
                .try_for_each(|v| scalar_on(&fv.field, v, list))
        };
        match self {
            Filter::And(l) | Filter::Or(l) => l.iter().try_for_each(|f| f.check_node(schema)),
            Filter::Not(f) => f.check_node(schema),
            Filter::Eq(fv) => scalar_on(&fv.field, &fv.value, false),
            Filter::In(fv) | Filter::NotIn(fv) => many(fv, false),
            Filter::Contains(fv) => scalar_on(&fv.field, &fv.value, true),
            Filter::ContainsAny(fv) | Filter::ContainsAll(fv) => many(fv, true),
            Filter::Range(r) => {
                let ty = schema.require(&r.field)?;
                if !matches!(ty, T::Integer | T::Float) {
                    return Err(wrong_op(self, &r.field, ty));
                }
                if let Some(b) = r.range.bounds().find(|b| match b {
                    Number::Float(x) => !x.is_finite(),
                    Number::Integer(_) => false,
                }) {
                    return Err(Error::InvalidArgument(format!(
                        "filter range on {:?}: bound {b:?} is not finite",
                        r.field
                    )));
                }
                Ok(())
            }
            Filter::Len(l) => {
                let ty = schema.require(&l.field)?;
                if !ty.is_list() {
                    return Err(wrong_op(self, &l.field, ty));
                }
                Ok(())
            }
            Filter::IsNull(f) => {
                let ty = schema.require(&f.field)?;
                if ty.is_list() {
                    return Err(wrong_op(self, &f.field, ty));
                }
                Ok(())
            }
            Filter::HasId(_) => Ok(()),
        }
    }

    /// The operator's name as the JSON form spells it.
    pub fn op(&self) -> &'static str {
        match self {
            Filter::And(_) => "and",
            Filter::Or(_) => "or",
            Filter::Not(_) => "not",
            Filter::Eq(_) => "eq",
            Filter::In(_) => "in",
            Filter::NotIn(_) => "not_in",
            Filter::Range(_) => "range",
            Filter::Contains(_) => "contains",
            Filter::ContainsAny(_) => "contains_any",
            Filter::ContainsAll(_) => "contains_all",
            Filter::Len(_) => "len",
            Filter::IsNull(_) => "is_null",
            Filter::HasId(_) => "has_id",
        }
    }

    /// Whether the filter admits `id` with `payload` (`None`: no payload,
    /// every field missing). This is the contract's meaning, written once:
    /// the payload store's indexes, the suite's model and the servers'
    /// translations are all checked against it.
    pub fn admits(&self, id: u64, payload: Option<&Payload>) -> bool {
        let get = |field: &str| payload.and_then(|p| p.get(field));
        match self {
            Filter::And(l) => l.iter().all(|f| f.admits(id, payload)),
            Filter::Or(l) => l.iter().any(|f| f.admits(id, payload)),
            Filter::Not(f) => !f.admits(id, payload),
            Filter::Eq(fv) => get(&fv.field).is_some_and(|v| fv.value.matches(v)),
            Filter::In(fv) => {
                get(&fv.field).is_some_and(|v| fv.values.iter().any(|s| s.matches(v)))
            }
            Filter::NotIn(fv) => {
                get(&fv.field).is_some_and(|v| !fv.values.iter().any(|s| s.matches(v)))
            }
            Filter::Range(r) => get(&r.field).is_some_and(|v| r.range.admits(v)),
            Filter::Contains(fv) => get(&fv.field).is_some_and(|v| fv.value.in_list(v)),
            Filter::ContainsAny(fv) => {
                get(&fv.field).is_some_and(|v| fv.values.iter().any(|s| s.in_list(v)))
            }
            Filter::ContainsAll(fv) => {
                get(&fv.field).is_some_and(|v| fv.values.iter().all(|s| s.in_list(v)))
            }
            Filter::Len(l) => get(&l.field).and_then(Value::list_len).is_some_and(|n| {
                let n = n as u64;
                l.len.gte.is_none_or(|g| n >= u64::from(g))
                    && l.len.lte.is_none_or(|m| n <= u64::from(m))
            }),
            Filter::IsNull(f) => get(&f.field).is_none(),
            Filter::HasId(ids) => ids.binary_search(&id).is_ok(),
        }
    }
}

fn field_values<V: Into<Scalar>>(
    field: impl Into<String>,
    values: impl IntoIterator<Item = V>,
) -> FieldValues {
    FieldValues {
        field: field.into(),
        values: values.into_iter().map(Into::into).collect(),
    }
}

fn wrong_op(f: &Filter, field: &str, ty: FieldType) -> Error {
    let takes = match f {
        Filter::Eq(_) | Filter::In(_) | Filter::NotIn(_) => "keyword, integer and bool fields",
        Filter::Range(_) => "integer and float fields",
        Filter::Contains(_) | Filter::ContainsAny(_) | Filter::ContainsAll(_) | Filter::Len(_) => {
            "list fields"
        }
        Filter::IsNull(_) => "single-value fields",
        _ => "fields",
    };
    Error::InvalidArgument(format!(
        "filter {}: field {field:?} is {ty}, but {} takes {takes}",
        f.op(),
        f.op()
    ))
}

/// What an engine receives for a filtered search: the exact set of admitted
/// live ids (its size is the filter's exact match count), or, for a server
/// backend that holds the payloads itself, the expression to translate.
/// Cheap to clone (shared).
#[derive(Clone)]
pub struct IdFilter {
    expr: Arc<Filter>,
    ids: Option<Arc<Admitted>>,
}

/// A resolved filter's ids, as the payload store made them (a bitmap, or a
/// bit array when it combined ranges as one) and in the other form when
/// first asked, shared by the clones (one per batch of queries).
struct Admitted {
    len: usize,
    set: OnceLock<IdSet>,
    /// `None` inside: the ids spread too far for a bit array.
    bits: OnceLock<Option<DenseIds>>,
}

impl Admitted {
    /// The bitmap, made from the bit array on first use.
    fn set(&self) -> &IdSet {
        self.set.get_or_init(|| match self.bits.get() {
            Some(Some(bits)) => bits.to_set(),
            _ => IdSet::new(),
        })
    }
}

impl IdFilter {
    /// The filter `expr` whose admitted ids are exactly `ids`.
    pub fn resolved(expr: Filter, ids: IdSet) -> IdFilter {
        let admitted = Admitted {
            len: ids.len(),
            set: OnceLock::from(ids),
            bits: OnceLock::new(),
        };
        IdFilter {
            expr: Arc::new(expr),
            ids: Some(Arc::new(admitted)),
        }
    }

    /// The filter `expr` whose admitted ids are exactly the bits of `bits`
    /// (what the payload store makes of a filter holding ranges): a walk
    /// tests them as they are, and the bitmap is made only if asked for.
    pub fn resolved_bits(expr: Filter, bits: DenseIds) -> IdFilter {
        let admitted = Admitted {
            len: bits.len(),
            set: OnceLock::new(),
            bits: OnceLock::from(Some(bits)),
        };
        IdFilter {
            expr: Arc::new(expr),
            ids: Some(Arc::new(admitted)),
        }
    }

    /// The expression alone, for an engine that evaluates it itself.
    pub fn expression(expr: Filter) -> IdFilter {
        IdFilter {
            expr: Arc::new(expr),
            ids: None,
        }
    }

    /// An allow-list of `ids` (the expression `has_id`).
    pub fn allow(ids: impl IntoIterator<Item = u64>) -> IdFilter {
        let set: IdSet = ids.into_iter().collect();
        let list: Vec<u64> = set.iter().collect();
        IdFilter::resolved(Filter::HasId(list), set)
    }

    /// The expression.
    pub fn expr(&self) -> &Filter {
        &self.expr
    }

    /// Whether the admitted ids are known (always, for local engines).
    pub fn is_resolved(&self) -> bool {
        self.ids.is_some()
    }

    /// Whether `id` passes. Unresolved: as far as ids tell (the expression's
    /// `has_id` parts with every field missing is not enough, so `true`
    /// unless the expression is a plain allow-list).
    #[inline]
    pub fn admits(&self, id: u64) -> bool {
        match &self.ids {
            Some(a) => match a.bits.get() {
                Some(Some(bits)) => bits.contains(id),
                _ => a.set().contains(id),
            },
            None => self
                .expr
                .allowed_ids()
                .is_none_or(|l| l.binary_search(&id).is_ok()),
        }
    }

    /// The exact number of admitted ids (0 when unresolved).
    pub fn len(&self) -> usize {
        self.ids.as_ref().map_or(0, |a| a.len)
    }

    /// Whether it is resolved and admits no id.
    pub fn is_empty(&self) -> bool {
        self.ids.as_ref().is_some_and(|a| a.len == 0)
    }

    /// The admitted ids, ascending (none when unresolved).
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        let (bits, set) = match self.ids.as_deref() {
            None => (None, None),
            Some(a) => match (a.set.get(), a.bits.get()) {
                (None, Some(Some(bits))) => (Some(bits.iter()), None),
                _ => (None, Some(a.set().iter())),
            },
        };
        bits.into_iter().flatten().chain(set.into_iter().flatten())
    }

    /// The admitted ids as a bitmap (`None` when unresolved; made on the
    /// first call when the store resolved them as a bit array).
    pub fn set(&self) -> Option<&IdSet> {
        self.ids.as_deref().map(Admitted::set)
    }

    /// The admitted ids as a plain bit array, made on the first call (a
    /// copy of the bitmap's dense containers, about `span / 8` bytes), or
    /// `None` when unresolved or when the ids spread over more than
    /// `max(1 MiB, 4 x live)` bytes' worth of range.
    pub fn dense(&self, live: usize) -> Option<&DenseIds> {
        let a = self.ids.as_deref()?;
        a.bits
            .get_or_init(|| {
                let limit = crate::dense::max_bytes(live);
                let (base, words) = a.set().to_bits(limit)?;
                Some(DenseIds::from_parts(base, words))
            })
            .as_ref()
    }
}

impl std::fmt::Debug for IdFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ids {
            Some(a) => write!(f, "IdFilter({} ids)", a.len),
            None => write!(f, "IdFilter({:?})", self.expr),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::new()
            .keyword("tenant")
            .integer("date")
            .float("score")
            .bool("public")
            .keyword_list("tags")
    }

    #[test]
    fn missing_fields_compare_false_and_negate_true() {
        let p = Payload::new().with("tenant", "a");
        let f = Filter::eq("date", 5);
        assert!(!f.admits(1, Some(&p)));
        assert!(f.clone().negate().admits(1, Some(&p)));
        assert!(!Filter::not_in("date", [5]).admits(1, Some(&p)));
        assert!(Filter::is_null("date").admits(1, Some(&p)));
        assert!(Filter::is_null("date").admits(1, None));
        assert!(!Filter::len_range("tags", Some(0), None).admits(1, Some(&p)));
        let empty = Payload::new().with("tags", Vec::<String>::new());
        assert!(Filter::len_range("tags", None, Some(0)).admits(1, Some(&empty)));
        assert!(!Filter::contains_all("tags", Vec::<&str>::new()).admits(1, None));
        assert!(Filter::contains_all("tags", Vec::<&str>::new()).admits(1, Some(&empty)));
    }

    #[test]
    fn ranges_compare_exactly() {
        let big = Payload::new().with("date", i64::MAX);
        assert!(Filter::range("date").gte(i64::MAX).admits(0, Some(&big)));
        assert!(!Filter::range("date")
            .gt(i64::MAX - 1 + 1)
            .admits(0, Some(&big)));
        // i64::MAX as f64 rounds up to 2^63, which is above it.
        assert!(Filter::range("date")
            .lt(i64::MAX as f64)
            .admits(0, Some(&big)));
        let x = Payload::new().with("date", 3_i64).with("score", 2.5);
        assert!(Filter::range("date").gt(2.5).admits(0, Some(&x)));
        assert!(!Filter::range("date").lt(2.5).admits(0, Some(&x)));
        assert!(Filter::range("score").gt(2).admits(0, Some(&x)));
        assert!(Filter::between("score", 2.5, 3).admits(0, Some(&x)));
        assert!(!Filter::between("score", 2, 2.5).admits(0, Some(&x)));
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let s = schema();
        let err = |f: Filter| f.validate(&s).unwrap_err().to_string();
        assert!(err(Filter::eq("nope", 1)).contains("\"nope\""));
        assert!(err(Filter::eq("date", "x")).contains("integer"));
        assert!(err(Filter::range("tenant").gt(1)).contains("keyword"));
        assert!(err(Filter::contains("tenant", "x")).contains("list fields"));
        assert!(err(Filter::range("score").gt(f64::NAN)).contains("finite"));
        assert!(err(Filter::is_null("tags")).contains("single-value"));
        let mut deep = Filter::eq("date", 1);
        for _ in 0..MAX_FILTER_DEPTH {
            deep = deep.negate();
        }
        assert!(err(deep).contains("deep"));
        Filter::eq("tenant", "a")
            .and(Filter::range("date").gte(1))
            .or(Filter::contains_any("tags", ["x"]).negate())
            .validate(&s)
            .unwrap();
    }

    #[test]
    fn json_form() {
        let f = Filter::not_in("tenant", ["a", "b"])
            .or(Filter::allow([3, 1]))
            .and(Filter::len_range("tags", Some(1), None).negate())
            .and(Filter::range("score").within(Range {
                gt: Some(Number::Float(0.5)),
                lte: Some(Number::Integer(2)),
                ..Range::default()
            }));
        let s = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<Filter>(&s).unwrap(), f);
        assert!(s.contains(r#"{"has_id":[1,3]}"#), "{s}");
        assert!(serde_json::from_str::<Filter>(r#"{"eq": {"field": "a"}}"#).is_err());
        assert!(serde_json::from_str::<Filter>(r#"{"bogus": 1}"#).is_err());
    }
}

//! Payloads: the metadata stored beside a vector (a tenant, a date, tags),
//! and the [`Schema`] that says which fields an index takes and of what type.
//!
//! A payload is a map from field names to [`Value`]s. Every write is checked
//! against the index's schema first ([`Schema::check`]): an unknown field, a
//! value of the wrong type, a NaN, a string or a list over the limits is
//! `InvalidArgument` naming the field, and nothing is written.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The longest keyword (string) value, in bytes.
pub const MAX_KEYWORD_BYTES: usize = 1024;
/// The most elements a list value holds.
pub const MAX_LIST_LEN: usize = 1024;
/// The most fields a schema declares.
pub const MAX_FIELDS: usize = 64;
/// The longest field name, in bytes.
pub const MAX_FIELD_NAME_BYTES: usize = 64;

/// The type of a payload field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A string, matched exactly (`eq`, `in`).
    Keyword,
    /// A signed 64-bit integer (`eq`, `in`, `range`); dates as epochs.
    Integer,
    /// A 64-bit float (`range` only: floats are not matched for equality).
    Float,
    /// `true` or `false` (`eq`, `in`).
    Bool,
    /// A list of strings (`contains`, `contains_any`, `contains_all`, `len`).
    KeywordList,
    /// A list of integers (`contains`, `contains_any`, `contains_all`, `len`).
    IntegerList,
}

impl FieldType {
    /// Whether values of this type are lists.
    pub fn is_list(self) -> bool {
        matches!(self, FieldType::KeywordList | FieldType::IntegerList)
    }

    /// The type's name as the schema and errors spell it.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Keyword => "keyword",
            FieldType::Integer => "integer",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::KeywordList => "keyword_list",
            FieldType::IntegerList => "integer_list",
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One field of a [`Schema`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The field's name: 1 to 64 bytes of ASCII letters, digits and `_`,
    /// not starting with a digit (so every server takes it as it is).
    pub name: String,
    /// The field's type.
    #[serde(rename = "type")]
    pub ty: FieldType,
}

/// The payload fields an index takes, each with a type. An index created
/// without one takes no payloads.
///
/// ```
/// use vecsearch_core::Schema;
/// let schema = Schema::new().keyword("tenant").integer("date").keyword_list("tags");
/// assert_eq!(schema.fields().len(), 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Schema {
    fields: Vec<Field>,
}

impl Schema {
    /// A schema with no fields (add them with the builder methods).
    pub fn new() -> Self {
        Schema::default()
    }

    /// Adds (or retypes) a field.
    pub fn field(mut self, name: impl Into<String>, ty: FieldType) -> Self {
        let name = name.into();
        match self.fields.iter_mut().find(|f| f.name == name) {
            Some(f) => f.ty = ty,
            None => self.fields.push(Field { name, ty }),
        }
        self
    }

    /// Adds a keyword (string) field.
    pub fn keyword(self, name: impl Into<String>) -> Self {
        self.field(name, FieldType::Keyword)
    }

    /// Adds an integer field.
    pub fn integer(self, name: impl Into<String>) -> Self {
        self.field(name, FieldType::Integer)
    }

    /// Adds a float field.
    pub fn float(self, name: impl Into<String>) -> Self {
        self.field(name, FieldType::Float)
    }

    /// Adds a bool field.
    pub fn bool(self, name: impl Into<String>) -> Self {
        self.field(name, FieldType::Bool)
    }

    /// Adds a keyword-list field (tags).
    pub fn keyword_list(self, name: impl Into<String>) -> Self {
        self.field(name, FieldType::KeywordList)
    }

    /// Adds an integer-list field.
    pub fn integer_list(self, name: impl Into<String>) -> Self {
        self.field(name, FieldType::IntegerList)
    }

    /// The fields, in the order they were declared.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The type of field `name`, if declared.
    pub fn type_of(&self, name: &str) -> Option<FieldType> {
        self.fields.iter().find(|f| f.name == name).map(|f| f.ty)
    }

    /// Whether the schema declares no field.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Checks the schema itself: names well-formed and distinct, at most
    /// [`MAX_FIELDS`] fields.
    pub fn validate(&self) -> Result<()> {
        if self.fields.len() > MAX_FIELDS {
            return Err(Error::InvalidArgument(format!(
                "a schema holds at most {MAX_FIELDS} fields, this one {}",
                self.fields.len()
            )));
        }
        for (i, f) in self.fields.iter().enumerate() {
            check_field_name(&f.name)?;
            if self.fields[..i].iter().any(|g| g.name == f.name) {
                return Err(Error::InvalidArgument(format!(
                    "the schema declares field {:?} twice",
                    f.name
                )));
            }
        }
        Ok(())
    }

    /// The type of `field`, or `InvalidArgument` naming it and the fields
    /// there are.
    pub fn require(&self, field: &str) -> Result<FieldType> {
        self.type_of(field).ok_or_else(|| self.unknown(field))
    }

    fn unknown(&self, field: &str) -> Error {
        if self.fields.is_empty() {
            return Error::InvalidArgument(format!(
                "unknown payload field {field:?}: this index has no schema, so it takes no payloads \
                 (create it with IndexSpec::with_schema)"
            ));
        }
        let names: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
        Error::InvalidArgument(format!(
            "unknown payload field {field:?} (the schema has {})",
            names.join(", ")
        ))
    }

    /// Checks `payload` against the schema: every field declared, every
    /// value of the field's type and within the limits.
    pub fn check(&self, payload: &Payload) -> Result<()> {
        for (name, value) in payload.iter() {
            let ty = self.require(name)?;
            check_value(name, ty, value)?;
        }
        Ok(())
    }
}

fn check_field_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_FIELD_NAME_BYTES
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "field name {name:?}: a field is named by 1 to {MAX_FIELD_NAME_BYTES} ASCII letters, \
             digits and '_', not starting with a digit"
        )))
    }
}

fn check_value(name: &str, ty: FieldType, value: &Value) -> Result<()> {
    if value.field_type() != Some(ty) {
        // An integer where a float is declared is the float it names.
        let widen = ty == FieldType::Float && matches!(value, Value::Integer(_));
        // An empty list matches either list type.
        let empty_list = ty.is_list() && value.list_len() == Some(0);
        if !widen && !empty_list {
            return Err(Error::InvalidArgument(format!(
                "payload field {name:?} is declared {ty} but the value is {}",
                value.describe()
            )));
        }
    }
    match value {
        Value::Float(x) if !x.is_finite() => Err(Error::InvalidArgument(format!(
            "payload field {name:?} is {x}: float values must be finite"
        ))),
        Value::Keyword(s) => check_keyword(name, s),
        Value::KeywordList(list) => {
            check_list_len(name, list.len())?;
            list.iter().try_for_each(|s| check_keyword(name, s))
        }
        Value::IntegerList(list) => check_list_len(name, list.len()),
        _ => Ok(()),
    }
}

/// Checks a keyword's length against [`MAX_KEYWORD_BYTES`].
pub(crate) fn check_keyword(name: &str, s: &str) -> Result<()> {
    if s.len() > MAX_KEYWORD_BYTES {
        return Err(Error::InvalidArgument(format!(
            "payload field {name:?}: a keyword of {} bytes is over the limit of {MAX_KEYWORD_BYTES}",
            s.len()
        )));
    }
    Ok(())
}

fn check_list_len(name: &str, len: usize) -> Result<()> {
    if len > MAX_LIST_LEN {
        return Err(Error::InvalidArgument(format!(
            "payload field {name:?}: a list of {len} elements is over the limit of {MAX_LIST_LEN}"
        )));
    }
    Ok(())
}

/// One payload value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A string.
    Keyword(String),
    /// A list of integers.
    IntegerList(Vec<i64>),
    /// A list of strings.
    KeywordList(Vec<String>),
}

impl Value {
    /// The type this value has (`None` for an empty list, which fits either list type).
    pub fn field_type(&self) -> Option<FieldType> {
        Some(match self {
            Value::Bool(_) => FieldType::Bool,
            Value::Integer(_) => FieldType::Integer,
            Value::Float(_) => FieldType::Float,
            Value::Keyword(_) => FieldType::Keyword,
            Value::IntegerList(l) if l.is_empty() => return None,
            Value::KeywordList(l) if l.is_empty() => return None,
            Value::IntegerList(_) => FieldType::IntegerList,
            Value::KeywordList(_) => FieldType::KeywordList,
        })
    }

    /// The number of elements of a list value.
    pub fn list_len(&self) -> Option<usize> {
        match self {
            Value::IntegerList(l) => Some(l.len()),
            Value::KeywordList(l) => Some(l.len()),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Value::Bool(b) => format!("the bool {b}"),
            Value::Integer(i) => format!("the integer {i}"),
            Value::Float(x) => format!("the float {x}"),
            Value::Keyword(s) if s.len() > 40 => format!("a string of {} bytes", s.len()),
            Value::Keyword(s) => format!("the string {s:?}"),
            Value::IntegerList(_) => "a list of integers".into(),
            Value::KeywordList(_) => "a list of strings".into(),
        }
    }

    /// Converts a JSON value (`null` is refused: leave the field out instead).
    pub fn from_json(v: &serde_json::Value) -> Result<Value> {
        serde_json::from_value(v.clone()).map_err(|_| {
            Error::InvalidArgument(format!(
                "{} is not a payload value (a string, integer, float, bool, or a list of \
                 strings or of integers)",
                short_json(v)
            ))
        })
    }

    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Bool(b) => (*b).into(),
            Value::Integer(i) => (*i).into(),
            Value::Float(x) => serde_json::Number::from_f64(*x)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Keyword(s) => s.as_str().into(),
            Value::IntegerList(l) => l.clone().into(),
            Value::KeywordList(l) => l.clone().into(),
        }
    }
}

fn short_json(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        let cut = (0..=57).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Keyword(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Keyword(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Integer(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Integer(i64::from(i))
    }
}
impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Float(x)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<Vec<String>> for Value {
    fn from(l: Vec<String>) -> Self {
        Value::KeywordList(l)
    }
}
impl From<Vec<&str>> for Value {
    fn from(l: Vec<&str>) -> Self {
        Value::KeywordList(l.into_iter().map(str::to_owned).collect())
    }
}
impl<const N: usize> From<[&str; N]> for Value {
    fn from(l: [&str; N]) -> Self {
        Value::KeywordList(l.iter().map(|s| (*s).to_owned()).collect())
    }
}
impl From<Vec<i64>> for Value {
    fn from(l: Vec<i64>) -> Self {
        Value::IntegerList(l)
    }
}

/// The payload of one vector: field names to values. A field left out is
/// *missing* (see the contract: comparisons on it are false).
///
/// ```
/// use vecsearch_core::Payload;
/// let p = Payload::new().with("tenant", "acme").with("date", 1_704_067_200_i64).with("tags", ["legal", "eu"]);
/// assert_eq!(p.len(), 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload {
    fields: BTreeMap<String, Value>,
}

impl Payload {
    /// An empty payload.
    pub fn new() -> Self {
        Payload::default()
    }

    /// Sets `field` to `value`.
    pub fn with(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(field.into(), value.into());
        self
    }

    /// Sets `field` to `value`, returning the old value.
    pub fn insert(&mut self, field: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.fields.insert(field.into(), value.into())
    }

    /// The value of `field`, if present.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }

    /// Removes `field`.
    pub fn remove(&mut self, field: &str) -> Option<Value> {
        self.fields.remove(field)
    }

    /// The fields, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The number of fields present.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether no field is present.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// A payload from a JSON object (`{"tenant": "acme", "tags": ["a"]}`).
    pub fn from_json(v: &serde_json::Value) -> Result<Payload> {
        let obj = v.as_object().ok_or_else(|| {
            Error::InvalidArgument(format!("a payload is a JSON object, not {}", short_json(v)))
        })?;
        let mut p = Payload::new();
        for (k, v) in obj {
            let value = Value::from_json(v)
                .map_err(|e| Error::InvalidArgument(format!("payload field {k:?}: {e}")))?;
            p.fields.insert(k.clone(), value);
        }
        Ok(p)
    }

    /// The payload as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.fields
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    }

    /// The payload with every value in its schema type's form: an integer in
    /// a float field becomes a float, an empty list takes the field's list
    /// type (so equal payloads compare equal whatever was written).
    pub fn normalised(mut self, schema: &Schema) -> Payload {
        for (name, value) in self.fields.iter_mut() {
            match (schema.type_of(name), &*value) {
                (Some(FieldType::Float), Value::Integer(i)) => *value = Value::Float(*i as f64),
                (Some(FieldType::KeywordList), Value::IntegerList(l)) if l.is_empty() => {
                    *value = Value::KeywordList(Vec::new())
                }
                (Some(FieldType::IntegerList), Value::KeywordList(l)) if l.is_empty() => {
                    *value = Value::IntegerList(Vec::new())
                }
                _ => {}
            }
        }
        self
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Payload {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        Payload {
            fields: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

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
            .integer_list("years")
    }

    #[test]
    fn checks_names_types_and_limits() {
        let s = schema();
        s.validate().unwrap();
        let ok = Payload::new()
            .with("tenant", "a")
            .with("date", 5_i64)
            .with("score", 3_i64)
            .with("tags", Vec::<String>::new())
            .with("years", Vec::<String>::new());
        s.check(&ok).unwrap();
        let err = |p: Payload| s.check(&p).unwrap_err().to_string();
        assert!(err(Payload::new().with("nope", 1_i64)).contains("\"nope\""));
        assert!(err(Payload::new().with("date", "x")).contains("declared integer"));
        assert!(err(Payload::new().with("score", f64::NAN)).contains("finite"));
        assert!(
            err(Payload::new().with("tenant", "x".repeat(MAX_KEYWORD_BYTES + 1)))
                .contains("over the limit")
        );
        let long: Vec<i64> = (0..MAX_LIST_LEN as i64 + 1).collect();
        assert!(err(Payload::new().with("years", long)).contains("over the limit"));
        let none = Schema::new();
        assert!(none
            .check(&Payload::new().with("a", 1_i64))
            .unwrap_err()
            .to_string()
            .contains("no schema"));
        assert!(Schema::new().keyword("1x").validate().is_err());
        assert!(Schema::new().keyword("a b").validate().is_err());
    }

    #[test]
    fn json_round_trip() {
        let p = Payload::new()
            .with("tenant", "a\"b")
            .with("date", -5_i64)
            .with("score", 0.5)
            .with("public", true)
            .with("tags", ["x", "y"])
            .with("years", vec![1_i64, 2]);
        let back = Payload::from_json(&p.to_json()).unwrap();
        assert_eq!(back, p);
        assert!(Payload::from_json(&serde_json::json!({"a": null})).is_err());
        assert!(Payload::from_json(&serde_json::json!({"a": [1, "x"]})).is_err());
        assert!(Payload::from_json(&serde_json::json!([1])).is_err());
    }
}

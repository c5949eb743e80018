//! The payload store the local backends share: every live id, its payload,
//! and indexes over the schema's fields, so a filter is evaluated to the
//! exact set of admitted ids without looking at every payload.
//!
//! Indexes: a posting list (an id set) per value of every keyword, integer
//! and bool field and per element of every list field; a sorted map from
//! value to ids for integer and float fields (ranges); the ids holding each
//! field (`is_null`, `not_in`). `len` conditions scan the payloads.
//!
//! The store is rebuilt from the payloads when a file is opened, so a saved
//! file holds the payloads only and its indexes can never disagree with them.

use std::collections::HashMap;
use std::ops::Bound;

use crate::dense::{self, DenseIds, CONTAINER_WORDS};
use crate::filter::{FieldValues, Number, Range, Scalar};
use crate::payload::{FieldType, Payload, Schema, Value};
use crate::range_index::RangeIndex;
use crate::{Error, Filter, IdMap, IdSet, Result};

/// A float with a total order, for the range index.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Key64(f64);
impl Eq for Key64 {}
impl PartialOrd for Key64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl crate::range_index::Bits for Key64 {
    // `total_cmp`'s order: negative floats' bits reversed, then the sign
    // bit flipped so that negatives sort below positives.
    fn bits(self) -> u64 {
        let b = self.0.to_bits();
        if b >> 63 == 1 {
            !b
        } else {
            b | (1 << 63)
        }
    }
    fn from_bits(bits: u64) -> Self {
        let b = if bits >> 63 == 1 {
            bits & !(1 << 63)
        } else {
            !bits
        };
        Key64(f64::from_bits(b))
    }
}

/// The value a posting list is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl Key {
    fn of(s: &Scalar) -> Key {
        match s {
            Scalar::Bool(b) => Key::Bool(*b),
            Scalar::Integer(i) => Key::Int(*i),
            Scalar::Keyword(k) => Key::Str(k.clone()),
        }
    }
}

/// The indexes of one field.
struct FieldIndex {
    /// Ids holding the field (any value, an empty list included).
    present: IdSet,
    /// Value (or list element) to ids.
    postings: HashMap<Key, IdSet>,
    /// Integer fields: ranges.
    ints: RangeIndex<i64>,
    /// Float fields: ranges.
    floats: RangeIndex<Key64>,
}

impl Default for FieldIndex {
    fn default() -> Self {
        FieldIndex {
            present: IdSet::new(),
            postings: HashMap::new(),
            ints: RangeIndex::new(i64::MIN),
            floats: RangeIndex::new(Key64(f64::NEG_INFINITY)),
        }
    }
}

/// Every live id of a local index with its payload, and the field indexes.
pub struct PayloadStore {
    schema: Schema,
    /// Every live id; `None` for an id without payload.
    live: IdMap<Option<Box<Payload>>>,
    /// Every live id, as a bitmap (for `not`).
    all: IdSet,
    fields: Vec<FieldIndex>,
}

impl std::fmt::Debug for PayloadStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadStore")
            .field("schema", &self.schema)
            .field("ids", &self.live.len())
            .finish()
    }
}

impl PayloadStore {
    /// An empty store for `schema` (already validated).
    pub fn new(schema: Schema) -> Self {
        let fields = schema
            .fields()
            .iter()
            .map(|_| FieldIndex::default())
            .collect();
        PayloadStore {
            schema,
            live: IdMap::default(),
            all: IdSet::new(),
            fields,
        }
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The number of live ids.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no id is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Whether `id` is live.
    pub fn contains(&self, id: u64) -> bool {
        self.live.contains_key(&id)
    }

    /// Marks `id` live with `payload` (checked against the schema by the
    /// caller), replacing what it had.
    pub fn put(&mut self, id: u64, payload: Option<Payload>) {
        self.unindex(id);
        let payload = payload.filter(|p| !p.is_empty());
        if let Some(p) = &payload {
            self.index(id, p);
        }
        self.live.insert(id, payload.map(Box::new));
        self.all.insert(id);
    }

    /// Replaces the payload of a live `id`; whether it was live.
    pub fn set(&mut self, id: u64, payload: Payload) -> bool {
        if !self.live.contains_key(&id) {
            return false;
        }
        self.put(id, Some(payload));
        true
    }

    /// Forgets `id`; whether it was live.
    pub fn remove(&mut self, id: u64) -> bool {
        self.unindex(id);
        self.all.remove(id);
        self.live.remove(&id).is_some()
    }

    /// The payload of `id`: `None` if it is not live, an empty payload if
    /// it has none.
    pub fn get(&self, id: u64) -> Option<Payload> {
        self.live
            .get(&id)
            .map(|p| p.as_deref().cloned().unwrap_or_default())
    }

    /// Every live id with a non-empty payload.
    pub fn payloads(&self) -> impl Iterator<Item = (u64, &Payload)> {
        self.live
            .iter()
            .filter_map(|(&id, p)| p.as_deref().map(|p| (id, p)))
    }

    /// Every live id, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.live.keys().copied()
    }

    /// Builds what the indexes otherwise build on demand: each range
    /// field's prefix bitmaps, which a write makes stale and which are
    /// rebuilt only once the ranges asked since have read as many ids as
    /// the field holds (so writes between queries do not rebuild them
    /// each time). Until then a range reads its ids bucket by bucket: at
    /// 1,000,000 ids, the first queries of a 50% range cost milliseconds.
    /// The front door calls this from
    /// [`VectorIndex::finish_indexing`](crate::VectorIndex::finish_indexing).
    pub fn finish(&self) {
        for f in &self.fields {
            f.ints.finish();
            f.floats.finish();
        }
    }

    /// An estimate of the bytes held.
    pub fn memory_bytes(&self) -> usize {
        let per_entry = std::mem::size_of::<(u64, Option<Box<Payload>>)>() + 1;
        let mut bytes = self.live.capacity() * per_entry;
        for p in self.live.values().flatten() {
            bytes += 48 * p.len();
        }
        bytes + self.index_bytes()
    }

    /// An estimate of the bytes the indexes hold (not the payloads). Range
    /// fields' prefix bitmaps count once built (after the first ranges).
    pub fn index_bytes(&self) -> usize {
        let mut bytes = self.all.size_bytes();
        for f in &self.fields {
            bytes += f.present.size_bytes()
                + f.postings
                    .values()
                    .map(|s| s.size_bytes() + 48)
                    .sum::<usize>()
                + f.ints.memory_bytes()
                + f.floats.memory_bytes();
        }
        bytes
    }

    fn field(&self, name: &str) -> Option<(usize, FieldType)> {
        self.schema
            .fields()
            .iter()
            .position(|f| f.name == name)
            .map(|i| (i, self.schema.fields()[i].ty))
    }

    fn index(&mut self, id: u64, p: &Payload) {
        self.each_entry(p, |fi, entry| match entry {
            Entry::Present => {
                fi.present.insert(id);
            }
            Entry::Key(k) => {
                fi.postings.entry(k).or_default().insert(id);
            }
            Entry::Int(i) => fi.ints.insert(i, id),
            Entry::Float(x) => fi.floats.insert(Key64(x), id),
        });
    }

    fn unindex(&mut self, id: u64) {
        let Some(Some(p)) = self.live.get(&id).map(|p| p.as_deref().cloned()) else {
            return;
        };
        self.each_entry(&p, |fi, entry| match entry {
            Entry::Present => {
                fi.present.remove(id);
            }
            Entry::Key(k) => {
                if let Some(s) = fi.postings.get_mut(&k) {
                    s.remove(id);
                    if s.is_empty() {
                        fi.postings.remove(&k);
                    }
                }
            }
            Entry::Int(i) => fi.ints.remove(i, id),
            Entry::Float(x) => fi.floats.remove(Key64(x), id),
        });
    }

    fn each_entry(&mut self, p: &Payload, mut f: impl FnMut(&mut FieldIndex, Entry)) {
        for (name, value) in p.iter() {
            let Some(i) = self.schema.fields().iter().position(|f| f.name == name) else {
                continue;
            };
            let fi = &mut self.fields[i];
            f(fi, Entry::Present);
            match value {
                Value::Bool(b) => f(fi, Entry::Key(Key::Bool(*b))),
                Value::Integer(x) => match self.schema.fields()[i].ty {
                    FieldType::Float => f(fi, Entry::Float(*x as f64)),
                    // One index per integer field, the range index: `eq`
                    // and `in` read it too (a posting list per value would
                    // cost a bitmap per distinct value of a date field).
                    _ => f(fi, Entry::Int(*x)),
                },
                Value::Float(x) => f(fi, Entry::Float(*x)),
                Value::Keyword(s) => f(fi, Entry::Key(Key::Str(s.clone()))),
                Value::IntegerList(l) => {
                    for x in l {
                        f(fi, Entry::Key(Key::Int(*x)));
                    }
                }
                Value::KeywordList(l) => {
                    for s in l {
                        f(fi, Entry::Key(Key::Str(s.clone())));
                    }
                }
            }
        }
    }

    /// The exact set of live ids `filter` admits (validated by the caller),
    /// as a bitmap.
    pub fn eval(&self, filter: &Filter) -> IdSet {
        match self.resolve(filter) {
            Resolved::Set(set) => set,
            Resolved::Bits(bits) => bits.to_set(),
        }
    }

    /// The exact set of live ids `filter` admits, as a bitmap or, for a
    /// filter holding a range while the live ids lie close enough together
    /// ([`DenseIds`]' size rule), as a bit array: its ranges, `and`s and
    /// `or`s then cost a word-wise pass over the ids' stretch each, where
    /// roaring intersects and unites sorted arrays id by id (`cargo run
    /// --release -p vecsearch-cli --example range_probe`).
    pub fn resolve(&self, filter: &Filter) -> Resolved {
        if let Some(stretch) = self.stretch().filter(|_| holds_range(filter)) {
            // Worth it when the ranges hold at least about an id per word
            // of the array: below that, passes over the whole stretch (to
            // clear it, count it, list it) cost more than the bitmaps' work
            // per id. Measured: a window of 100 dates ran at 0.65x.
            let words = stretch.1 * CONTAINER_WORDS;
            if self.range_weight(filter, words) >= words {
                if let Some(bits) = self.dense(filter, stretch) {
                    return Resolved::Bits(bits);
                }
            }
        }
        Resolved::Set(self.sets(filter))
    }

    /// How many ids the range conditions in `filter` reach, about (their
    /// buckets' sizes), counted up to `cap`.
    fn range_weight(&self, filter: &Filter, cap: usize) -> usize {
        match filter {
            Filter::Range(r) => self.range_count(&r.field, &r.range, cap),
            Filter::And(list) | Filter::Or(list) => {
                let mut n = 0usize;
                for f in list {
                    if n >= cap {
                        break;
                    }
                    n += self.range_weight(f, cap - n);
                }
                n
            }
            Filter::Not(f) => self.range_weight(f, cap),
            _ => 0,
        }
    }

    /// The live ids' stretch (first id, stretches of 65,536 ids), if a bit
    /// array over it is small enough.
    fn stretch(&self) -> Option<(u64, usize)> {
        self.all
            .stretch()
            .filter(|&(_, containers)| dense::fits(containers, self.all.len()))
    }

    /// `filter`'s ids as a bit array over `stretch`; `None` if an id fell
    /// outside it (then the bitmaps answer).
    fn dense(&self, filter: &Filter, stretch: (u64, usize)) -> Option<DenseIds> {
        match filter {
            Filter::Range(r) => {
                let mut out = DenseIds::zeroed(stretch.0, stretch.1);
                self.range_into(&r.field, &r.range, &mut out)?;
                Some(out)
            }
            Filter::Or(list) => {
                let mut out = DenseIds::zeroed(stretch.0, stretch.1);
                for f in list {
                    out.or_from(&self.dense(f, stretch)?)?;
                }
                Some(out)
            }
            Filter::And(list) => {
                // Positive conditions first, then take away what each
                // negation's inner condition admits.
                let (neg, pos): (Vec<&Filter>, Vec<&Filter>) =
                    list.iter().partition(|f| matches!(f, Filter::Not(_)));
                let mut out = match pos.split_first() {
                    Some((first, _)) => self.dense(first, stretch)?,
                    None => DenseIds::of(&self.all, stretch)?,
                };
                for f in pos.iter().skip(1) {
                    out.and(&self.dense(f, stretch)?);
                }
                for f in neg {
                    if let Filter::Not(inner) = f {
                        out.and_not_from(&self.dense(inner, stretch)?)?;
                    }
                }
                Some(out)
            }
            Filter::Not(inner) => {
                let mut out = DenseIds::of(&self.all, stretch)?;
                out.and_not_from(&self.dense(inner, stretch)?)?;
                Some(out)
            }
            // Conditions without ranges: their bitmap, copied in.
            other => DenseIds::of(&self.sets(other), stretch),
        }
    }

    /// The exact set of live ids `filter` admits, through the bitmaps.
    fn sets(&self, filter: &Filter) -> IdSet {
        match filter {
            Filter::And(list) => self.eval_and(list),
            Filter::Or(list) => {
                let sets: Vec<IdSet> = list.iter().map(|f| self.sets(f)).collect();
                IdSet::union_of(&sets)
            }
            Filter::Not(f) => {
                let mut out = self.all.clone();
                out.subtract(&self.sets(f));
                out
            }
            Filter::Eq(fv) => self.posting(&fv.field, &fv.value),
            Filter::In(fv) => self.any_of(fv),
            Filter::NotIn(fv) => {
                let mut out = self.present(&fv.field).clone();
                out.subtract(&self.any_of(fv));
                out
            }
            Filter::Range(r) => self.range(&r.field, &r.range),
            Filter::Contains(fv) => self.posting(&fv.field, &fv.value),
            Filter::ContainsAny(fv) => self.any_of(fv),
            Filter::ContainsAll(fv) => {
                let Some(i) = self.field(&fv.field).map(|(i, _)| i) else {
                    return IdSet::new();
                };
                let mut sets: Vec<&IdSet> = Vec::with_capacity(fv.values.len());
                for v in &fv.values {
                    match self.fields[i].postings.get(&Key::of(v)) {
                        Some(s) => sets.push(s),
                        None => return IdSet::new(),
                    }
                }
                sets.sort_by_key(|s| s.len());
                let Some((first, rest)) = sets.split_first() else {
                    return self.present(&fv.field).clone();
                };
                let mut out = (*first).clone();
                for s in rest {
                    out.intersect(s);
                }
                out
            }
            Filter::IsNull(f) => {
                let mut out = self.all.clone();
                out.subtract(self.present(&f.field));
                out
            }
            // The listed ids that are live: as cheap as the list, whatever
            // the index's size.
            Filter::HasId(ids) => ids
                .iter()
                .copied()
                .filter(|&id| self.all.contains(id))
                .collect(),
            Filter::Len(_) => self
                .live
                .iter()
                .filter(|(&id, p)| filter.admits(id, p.as_deref()))
                .map(|(&id, _)| id)
                .collect(),
        }
    }

    fn eval_and(&self, list: &[Filter]) -> IdSet {
        // Intersect the positive conditions smallest first, then take away
        // what each negation's inner condition admits.
        let (neg, pos): (Vec<&Filter>, Vec<&Filter>) =
            list.iter().partition(|f| matches!(f, Filter::Not(_)));
        let mut sets: Vec<IdSet> = pos.iter().map(|f| self.sets(f)).collect();
        sets.sort_by_key(IdSet::len);
        let mut out = if sets.is_empty() {
            self.all.clone()
        } else {
            sets.remove(0)
        };
        for s in &sets {
            if out.is_empty() {
                return out;
            }
            out.intersect(s);
        }
        for f in neg {
            if out.is_empty() {
                break;
            }
            if let Filter::Not(inner) = f {
                out.subtract(&self.sets(inner));
            }
        }
        out
    }

    fn present(&self, field: &str) -> &IdSet {
        static EMPTY: std::sync::OnceLock<IdSet> = std::sync::OnceLock::new();
        match self.field(field) {
            Some((i, _)) => &self.fields[i].present,
            None => EMPTY.get_or_init(IdSet::default),
        }
    }

    fn posting(&self, field: &str, value: &Scalar) -> IdSet {
        match (self.field(field), value) {
            (Some((i, FieldType::Integer)), Scalar::Integer(v)) => {
                let v = *v;
                self.fields[i]
                    .ints
                    .collect(Bound::Included(v), Bound::Included(v), |k| k == v)
            }
            (Some((i, _)), _) => self.fields[i]
                .postings
                .get(&Key::of(value))
                .cloned()
                .unwrap_or_default(),
            (None, _) => IdSet::new(),
        }
    }

    fn any_of(&self, fv: &FieldValues) -> IdSet {
        let Some((i, ty)) = self.field(&fv.field) else {
            return IdSet::new();
        };
        if ty == FieldType::Integer {
            let sets: Vec<IdSet> = fv
                .values
                .iter()
                .map(|v| self.posting(&fv.field, v))
                .collect();
            return IdSet::union_of(&sets);
        }
        let postings = &self.fields[i].postings;
        IdSet::union_of(fv.values.iter().filter_map(|v| postings.get(&Key::of(v))))
    }

    /// The range `r` on `field` as its range index sees it: the index and
    /// bounds that hold every value it admits (each value then checked
    /// exactly); `None` when it admits nothing (no such field, or bounds
    /// that cross).
    fn range_on(&self, field: &str, r: &Range) -> Option<RangeOn<'_>> {
        let (i, ty) = self.field(field)?;
        let fi = &self.fields[i];
        match ty {
            FieldType::Integer => {
                let (lo, hi) = int_bounds(r);
                (lo <= hi).then_some(RangeOn::Ints(
                    &fi.ints,
                    Bound::Included(lo),
                    Bound::Included(hi),
                ))
            }
            FieldType::Float => float_bounds(r).map(|(lo, hi)| RangeOn::Floats(&fi.floats, lo, hi)),
            _ => None,
        }
    }

    fn range(&self, field: &str, r: &Range) -> IdSet {
        match self.range_on(field, r) {
            Some(RangeOn::Ints(ix, lo, hi)) => ix.collect(lo, hi, |k| r.admits(&Value::Integer(k))),
            Some(RangeOn::Floats(ix, lo, hi)) => {
                ix.collect(lo, hi, |k| r.admits(&Value::Float(k.0)))
            }
            None => IdSet::new(),
        }
    }

    /// [`PayloadStore::range`] into the bit array `out` (empty so far).
    fn range_into(&self, field: &str, r: &Range, out: &mut DenseIds) -> Option<()> {
        match self.range_on(field, r) {
            Some(RangeOn::Ints(ix, lo, hi)) => {
                ix.collect_into(lo, hi, |k| r.admits(&Value::Integer(k)), out)
            }
            Some(RangeOn::Floats(ix, lo, hi)) => {
                ix.collect_into(lo, hi, |k| r.admits(&Value::Float(k.0)), out)
            }
            None => Some(()),
        }
    }

    /// About how many ids the range `r` on `field` admits, up to `cap`.
    fn range_count(&self, field: &str, r: &Range, cap: usize) -> usize {
        match self.range_on(field, r) {
            Some(RangeOn::Ints(ix, lo, hi)) => ix.count_near(lo, hi, cap),
            Some(RangeOn::Floats(ix, lo, hi)) => ix.count_near(lo, hi, cap),
            None => 0,
        }
    }

    /// The payload section of a saved file: the schema and every payload,
    /// as JSON (the indexes are rebuilt at open).
    pub fn to_section(&self) -> Vec<u8> {
        let mut ids: Vec<(u64, &Payload)> = self.payloads().collect();
        ids.sort_unstable_by_key(|&(id, _)| id);
        let rows: Vec<serde_json::Value> = ids
            .into_iter()
            .map(|(id, p)| serde_json::json!([id, p.to_json()]))
            .collect();
        let doc = serde_json::json!({"schema": self.schema, "payloads": rows});
        doc.to_string().into_bytes()
    }

    /// A store from a payload section written by [`PayloadStore::to_section`],
    /// every payload checked against the section's schema; `live` lists the
    /// ids the engine holds (each payload's id must be one of them).
    pub fn from_section(section: &[u8], live: impl IntoIterator<Item = u64>) -> Result<Self> {
        let bad = |what: String| Error::corrupt(format!("payload section: {what}"));
        let doc: serde_json::Value =
            serde_json::from_slice(section).map_err(|e| bad(format!("not valid JSON ({e})")))?;
        let schema: Schema = serde_json::from_value(doc["schema"].clone())
            .map_err(|e| bad(format!("bad schema ({e})")))?;
        schema.validate().map_err(|e| bad(e.to_string()))?;
        let mut store = PayloadStore::new(schema);
        store.mark_live(live);
        let rows = doc["payloads"]
            .as_array()
            .ok_or_else(|| bad("no payload list".into()))?;
        for row in rows {
            let (id, p) = match row.as_array().map(Vec::as_slice) {
                Some([id, p]) => (id.as_u64(), p),
                _ => (None, &serde_json::Value::Null),
            };
            let id = id.ok_or_else(|| bad(format!("a row is not [id, payload]: {row}")))?;
            let payload = Payload::from_json(p).map_err(|e| bad(format!("id {id}: {e}")))?;
            store
                .schema
                .check(&payload)
                .map_err(|e| bad(format!("id {id}: {e}")))?;
            if !store.contains(id) {
                return Err(bad(format!("id {id} has a payload but no vector")));
            }
            if store.live.get(&id).is_some_and(Option::is_some) {
                return Err(bad(format!("id {id} has two payloads")));
            }
            let payload = payload.normalised(&store.schema);
            store.put(id, Some(payload));
        }
        Ok(store)
    }

    /// Marks every id of `ids` live, without payload (opening a file).
    pub fn mark_live(&mut self, ids: impl IntoIterator<Item = u64>) {
        for id in ids {
            self.live.entry(id).or_insert(None);
            self.all.insert(id);
        }
    }
}

/// A range condition on one field: its range index and the bounds to read.
enum RangeOn<'a> {
    Ints(&'a RangeIndex<i64>, Bound<i64>, Bound<i64>),
    Floats(&'a RangeIndex<Key64>, Bound<Key64>, Bound<Key64>),
}

/// A filter's admitted ids, in the form [`PayloadStore::resolve`] made them.
#[derive(Debug)]
pub enum Resolved {
    /// A compressed bitmap.
    Set(IdSet),
    /// A bit array over the live ids' stretch.
    Bits(DenseIds),
}

/// Whether `filter` holds a range condition (then its ids are combined as
/// a bit array, see [`PayloadStore::resolve`]).
fn holds_range(filter: &Filter) -> bool {
    match filter {
        Filter::Range(_) => true,
        Filter::And(list) | Filter::Or(list) => list.iter().any(holds_range),
        Filter::Not(f) => holds_range(f),
        _ => false,
    }
}

enum Entry {
    Present,
    Key(Key),
    Int(i64),
    Float(f64),
}

/// Integer bounds that hold every integer the range can admit (each key is
/// then checked exactly).
fn int_bounds(r: &Range) -> (i64, i64) {
    let floor = |n: Number| match n {
        Number::Integer(i) => i,
        Number::Float(x) => x.floor().clamp(i64::MIN as f64, i64::MAX as f64) as i64,
    };
    let ceil = |n: Number| match n {
        Number::Integer(i) => i,
        Number::Float(x) => x.ceil().clamp(i64::MIN as f64, i64::MAX as f64) as i64,
    };
    let lo = [r.gt, r.gte]
        .into_iter()
        .flatten()
        .map(floor)
        .max()
        .unwrap_or(i64::MIN);
    let hi = [r.lt, r.lte]
        .into_iter()
        .flatten()
        .map(ceil)
        .min()
        .unwrap_or(i64::MAX);
    (lo, hi)
}

/// Float bounds, one step wider than the range's, that hold every float it
/// can admit (`None` for a range that admits nothing).
fn float_bounds(r: &Range) -> Option<(Bound<Key64>, Bound<Key64>)> {
    let as_f = |n: Number| match n {
        Number::Integer(i) => i as f64,
        Number::Float(x) => x,
    };
    let lo = [r.gt, r.gte]
        .into_iter()
        .flatten()
        .map(as_f)
        .fold(f64::NEG_INFINITY, f64::max);
    let hi = [r.lt, r.lte]
        .into_iter()
        .flatten()
        .map(as_f)
        .fold(f64::INFINITY, f64::min);
    if lo > hi {
        return None;
    }
    Some((
        Bound::Included(Key64(lo.next_down())),
        Bound::Included(Key64(hi.next_up())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The range index keeps float values as order-preserving integers.
    #[test]
    fn float_bits_keep_the_total_order_and_come_back() {
        use crate::range_index::Bits;
        let xs = [
            f64::NEG_INFINITY,
            -1e300,
            -1.5,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            2.5,
            1e300,
            f64::INFINITY,
        ];
        for a in xs {
            assert_eq!(Key64::from_bits(Key64(a).bits()).0.to_bits(), a.to_bits());
            for b in xs {
                let (ka, kb) = (Key64(a), Key64(b));
                assert_eq!(ka.bits().cmp(&kb.bits()), ka.cmp(&kb), "{a} {b}");
            }
        }
    }

    fn schema() -> Schema {
        Schema::new()
            .keyword("tenant")
            .integer("date")
            .float("score")
            .bool("public")
            .keyword_list("tags")
            .integer_list("years")
    }

    fn payload(i: u64) -> Option<Payload> {
        if i.is_multiple_of(7) {
            return None;
        }
        let mut p = Payload::new();
        if !i.is_multiple_of(5) {
            p.insert("tenant", ["a", "b", "c"][(i % 3) as usize]);
        }
        if !i.is_multiple_of(4) {
            p.insert("date", (i as i64 - 50) * 1000);
        }
        if !i.is_multiple_of(6) {
            p.insert("score", i as f64 / 8.0);
        }
        p.insert("public", i.is_multiple_of(2));
        let tags: Vec<&str> = ["x", "y", "z"].into_iter().take((i % 4) as usize).collect();
        if !i.is_multiple_of(9) {
            p.insert("tags", tags);
        }
        Some(p)
    }

    /// Every operator, through the indexes, equals the contract's meaning
    /// (`Filter::admits`) over every payload.
    #[test]
    fn indexes_agree_with_the_meaning() {
        let mut store = PayloadStore::new(schema());
        let mut model: Vec<(u64, Option<Payload>)> = Vec::new();
        for i in 0..200 {
            store.put(i, payload(i));
            model.push((i, payload(i)));
        }
        // Rewrite and remove some, so unindexing is exercised.
        for i in (0..200).step_by(11) {
            store.put(i, payload(i + 1));
            model[i as usize].1 = payload(i + 1);
        }
        for i in (0..200).step_by(13) {
            store.remove(i);
        }
        model.retain(|(id, _)| id % 13 != 0);
        let filters = vec![
            Filter::eq("tenant", "a"),
            Filter::eq("public", true),
            Filter::is_in("tenant", ["a", "c"]),
            Filter::not_in("tenant", ["a"]),
            Filter::range("date").gte(0),
            Filter::range("date")
                .gt(-2500.5)
                .and(Filter::range("date").lt(10_000)),
            Filter::range("score").lte(3),
            Filter::between("score", 2.5, 7.125),
            Filter::between("score", 3, 1),
            Filter::between("date", 3, 1),
            Filter::contains("tags", "y"),
            Filter::contains_any("tags", ["y", "z"]),
            Filter::contains_all("tags", ["x", "y"]),
            Filter::contains_all("tags", Vec::<&str>::new()),
            Filter::len_range("tags", Some(0), Some(1)),
            Filter::is_null("tenant"),
            Filter::eq("tenant", "a").negate(),
            Filter::allow([1, 2, 3, 13, 500]),
            Filter::exclude([1, 2]),
            Filter::all(),
            Filter::none(),
            Filter::eq("tenant", "b")
                .and(Filter::contains("tags", "x").negate())
                .or(Filter::is_null("date").and(Filter::eq("public", false))),
        ];
        for f in filters {
            let mut got: Vec<u64> = store.eval(&f).iter().collect();
            got.sort_unstable();
            let want: Vec<u64> = model
                .iter()
                .filter(|(id, p)| f.admits(*id, p.as_ref()))
                .map(|(id, _)| *id)
                .collect();
            assert_eq!(got, want, "{f:?}");
        }
    }

    /// A random filter of depth at most `depth`: ranges (open and closed,
    /// integer and float, some empty), keywords, and `and` / `or` / `not`.
    fn random_filter(rng: &mut crate::synthetic::Rng, depth: usize) -> Filter {
        let pick = if depth == 0 {
            rng.below(4)
        } else {
            rng.below(7)
        };
        let a = rng.below(1100) as i64 - 50;
        match pick {
            0 => Filter::between("date", a, a + rng.below(400) as i64),
            // Integer and float bounds on either field, so the bounds the
            // store widens are stepped in from on both sides.
            1 => match rng.below(6) {
                0 => Filter::range("date").lt(a),
                1 => Filter::range("date").gte(a),
                2 => Filter::range("date")
                    .gt(a as f64 + 0.5)
                    .and(Filter::range("date").lte(a as f64 + 40.75)),
                3 => Filter::range("date")
                    .gte(a as f64)
                    .and(Filter::range("date").lt(a as f64 + 90.0)),
                4 => Filter::range("score").gt(a as f64 / 3.0),
                _ => Filter::between("score", a / 3, a / 3 + 20),
            },
            2 => Filter::between("score", a as f64 / 9.0, a as f64 / 2.0),
            3 => Filter::eq("tenant", ["a", "b", "c"][rng.below(3)]),
            4 => Filter::And(
                (0..1 + rng.below(3))
                    .map(|_| random_filter(rng, depth - 1))
                    .collect(),
            ),
            5 => Filter::Or(
                (0..1 + rng.below(3))
                    .map(|_| random_filter(rng, depth - 1))
                    .collect(),
            ),
            _ => random_filter(rng, depth - 1).negate(),
        }
    }

    /// Random filters holding ranges, over points with some fields missing
    /// and some points removed, equal the contract's meaning: combined as
    /// bit arrays (ids straddling 2^32; the range index's prefixes not yet
    /// built, then built as bit arrays where the field fills a quarter of
    /// its ids' stretch and as bitmaps where it does not), and through the
    /// bitmaps alone where the ids spread too far for a bit array.
    #[test]
    fn range_filters_as_bit_arrays_agree_with_the_meaning() {
        let cases = [
            ((1u64 << 32) - 10_000, 1u64, 40_000u64, "bits"),
            ((1 << 32) - 5_000, 1, 12_000, "sets"),
            (3, 1 << 28, 12_000, "sets"),
        ];
        for (base, spread, n, form) in cases {
            let mut rng = crate::synthetic::Rng::new(23);
            let mut store = PayloadStore::new(schema());
            let mut model = std::collections::BTreeMap::new();
            for i in 0..n {
                let mut p = Payload::new();
                if rng.below(10) > 0 {
                    p.insert("date", rng.below(1000) as i64);
                }
                if rng.below(10) > 0 {
                    p.insert("score", rng.below(5000) as f64 / 13.0);
                }
                p.insert("tenant", ["a", "b", "c"][rng.below(3)]);
                let id = base + i * spread;
                store.put(id, Some(p.clone()));
                model.insert(id, p);
            }
            for _ in 0..1_000 {
                let id = base + rng.below(n as usize) as u64 * spread;
                store.remove(id);
                model.remove(&id);
            }
            let mut arrays = 0;
            for _ in 0..400 {
                let f = random_filter(&mut rng, 3);
                let (ids, bits) = match store.resolve(&f) {
                    Resolved::Set(set) => (set, None),
                    Resolved::Bits(bits) => (bits.to_set(), Some(bits)),
                };
                let want: Vec<u64> = model
                    .iter()
                    .filter(|(&id, p)| f.admits(id, Some(p)))
                    .map(|(&id, _)| id)
                    .collect();
                assert!(ids.iter().eq(want.iter().copied()), "{f:?}");
                if let Some(b) = &bits {
                    assert_eq!(&b.to_set(), &ids, "{f:?}");
                    arrays += 1;
                }
                assert!(
                    bits.is_none() || (spread == 1 && holds_range(&f)),
                    "a bit array where none is made: {f:?}"
                );
            }
            assert_eq!(arrays > 150, spread == 1, "{arrays} of 400 as bit arrays");
            let (i, _) = store.field("date").expect("a field");
            assert_eq!(store.fields[i].ints.prefix_form(), Some(form));
        }
    }

    /// `finish` builds the prefixes of every range field at once, a write
    /// makes them stale again, and a range resolves alike either way.
    #[test]
    fn finish_builds_the_range_prefixes_a_write_made_stale() {
        let mut rng = crate::synthetic::Rng::new(5);
        let mut store = PayloadStore::new(schema());
        for id in 0..12_000u64 {
            let p = Payload::new()
                .with("date", rng.below(1000) as i64)
                .with("score", rng.below(5000) as f64 / 13.0);
            store.put(id, Some(p));
        }
        let forms = |store: &PayloadStore| {
            let (d, _) = store.field("date").expect("a field");
            let (s, _) = store.field("score").expect("a field");
            (
                store.fields[d].ints.prefix_form(),
                store.fields[s].floats.prefix_form(),
            )
        };
        let f = Filter::range("date")
            .lt(300)
            .and(Filter::range("score").gt(100.0));
        let lazy = store.eval(&f);
        assert_eq!(forms(&store), (None, None));
        store.finish();
        assert_eq!(forms(&store), (Some("sets"), Some("sets")));
        assert_eq!(store.eval(&f), lazy);
        store.put(7, Some(Payload::new().with("date", 5i64)));
        assert_eq!(forms(&store).0, None, "a write leaves the prefixes fresh");
        store.finish();
        assert_eq!(forms(&store).0, Some("sets"));
    }

    #[test]
    fn section_round_trip_and_crafted_sections() {
        let mut store = PayloadStore::new(schema());
        for i in 0..50 {
            store.put(i, payload(i));
        }
        let bytes = store.to_section();
        let back = PayloadStore::from_section(&bytes, 0..50).unwrap();
        for i in 0..50 {
            assert_eq!(back.get(i), store.get(i), "{i}");
        }
        let f = Filter::eq("tenant", "a").and(Filter::range("date").gte(0));
        assert_eq!(back.eval(&f), store.eval(&f));
        let err = |s: &str, live: std::ops::Range<u64>| {
            PayloadStore::from_section(s.as_bytes(), live)
                .unwrap_err()
                .to_string()
        };
        assert!(err("{", 0..1).contains("payload section"));
        assert!(err(r#"{"schema":[],"payloads":[[1,{"a":1}]]}"#, 0..2).contains("unknown"));
        assert!(err(
            r#"{"schema":[{"name":"a","type":"integer"}],"payloads":[[9,{"a":1}]]}"#,
            0..2
        )
        .contains("no vector"));
        assert!(err(
            r#"{"schema":[{"name":"a","type":"integer"}],"payloads":[[1,{"a":"x"}]]}"#,
            0..2
        )
        .contains("declared integer"));
    }
}

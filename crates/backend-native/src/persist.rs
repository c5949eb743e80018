//! The native file format, inside the core's checksummed envelope (magic
//! `VSNATIVE`, body version 2). Body, little-endian:
//!
//! | field | type |
//! |---|---|
//! | M, ef_construction | u32, u32 |
//! | storage kind: 0 f32, 1 f16, 2 i8 (absent in version 1: f32) | u32 |
//! | level generator state | u64 |
//! | node count n (live and deleted) | u64 |
//! | entry slot (`u32::MAX` if empty), entry level | u32, u32 |
//! | id of every slot | n × u64 |
//! | level of every slot | n × u8 |
//! | deleted flag of every slot (0/1) | n × u8 |
//! | vectors (prepared): f32 and i8 (the originals; codes are rebuilt) | n × dim × f32 |
//! | vectors (prepared), f16: half bits | n × dim × u16 |
//! | level-0 lists: count, then 2M slots | n × (1 + 2M) × u32 |
//! | upper lists, node by node, level 1 up: count, then M slots | Σ levels × (1 + M) × u32 |
//!
//! Opening checks every field before use: a file that passes builds a graph
//! whose every slot, link and level is in range, so no later search can be
//! led out of bounds by it.

use std::path::Path;

use vecsearch_core::persist::{self, Header, Reader, Writer};
use vecsearch_core::{Error, IndexSpec, Result, Storage};

use crate::graph::{Entry, Graph};
use crate::links;
use crate::slots::SlotTable;
use crate::storage::{Store, MAX_LEVEL, MAX_NODES, NONE};

const MAGIC: &[u8; 8] = b"VSNATIVE";
const VERSION: u32 = 2;

/// Writes the graph to `path` atomically.
pub(crate) fn save(g: &Graph, path: &Path, payloads: &[u8]) -> Result<()> {
    let st = g.read();
    // Read under the store lock: the entry's slot exists in this store.
    let entry = g.entry();
    let n = st.len();
    let dim = st.dim;
    let mut w =
        Writer::with_capacity(40 + n * (10 + 4 * dim + 4 * (1 + st.m0)) + st.upper.len() * 4);
    w.u32(st.m as u32);
    w.u32(u32::try_from(g.spec.ef_construction).unwrap_or(u32::MAX));
    w.u32(storage_code(st.rows.kind));
    w.u64(st.rng);
    w.u64(n as u64);
    w.u32(entry.map_or(NONE, |e| e.slot));
    w.u32(entry.map_or(0, |e| e.level as u32));
    w.u64s(&st.ids);
    w.buf.extend_from_slice(&st.levels);
    w.buf.extend(st.deleted.iter().map(|&d| u8::from(d)));
    if st.rows.kind == Storage::F16 {
        w.u16s(st.rows.halves());
    } else {
        w.f32s(&st.rows.f32s());
    }
    let mut buf = Vec::new();
    let mut put = |w: &mut Writer, list, cap: usize| {
        links::read(list, &mut buf);
        buf.resize(buf.len().min(cap), 0);
        w.u32(buf.len() as u32);
        w.u32s(&buf);
        (buf.len()..cap).for_each(|_| w.u32(0));
    };
    for s in 0..n as u32 {
        put(&mut w, st.list(s, 0), st.m0);
    }
    for s in 0..n as u32 {
        for level in 1..=st.level(s) {
            put(&mut w, st.list(s, level), st.m);
        }
    }
    let header = Header {
        magic: *MAGIC,
        version: VERSION,
        metric: g.spec.metric,
        dim,
        count: st.live() as u64,
    };
    drop(st);
    persist::write_atomic_with(path, &header, &w.buf, payloads)
}

/// Reads a graph saved by [`save`]. Dim and metric must match `spec`; M and
/// ef_construction come from the file, the rest (ef_search, threads) from `spec`.
pub(crate) fn load(path: &Path, mut spec: IndexSpec) -> Result<(Graph, Option<Vec<u8>>)> {
    spec.validate()?;
    let (header, body, section) = persist::read_checked_with(path, MAGIC, VERSION)?;
    persist::check_matches(&header, &spec)?;
    let dim = header.dim;
    let mut r = Reader::new(&body);
    let m = r.u32()? as usize;
    if !(2..=256).contains(&m) {
        return Err(Error::corrupt(format!("M is {m}, not in 2..=256")));
    }
    let ef_construction = r.u32()?;
    // Any width is safe: search heaps never outgrow the node count.
    if ef_construction == 0 {
        return Err(Error::corrupt(format!(
            "ef_construction is {ef_construction}"
        )));
    }
    let storage = if header.version >= 2 {
        storage_of(r.u32()?)?
    } else {
        Storage::F32
    };
    let rng = r.u64()?;
    let m0 = 2 * m;
    let component = if storage == Storage::F16 { 2 } else { 4 };
    let per_node = 10 + component * dim + 4 * (1 + m0);
    let n = r.count("node count", (body.len() / per_node) as u64)?;
    if n > MAX_NODES {
        return Err(Error::corrupt(format!(
            "node count {n} exceeds {MAX_NODES}"
        )));
    }
    let entry_slot = r.u32()?;
    let entry_level = r.u32()? as usize;
    let ids = r.u64s(n)?;
    let levels = r.bytes(n)?.to_vec();
    let deleted_raw = r.bytes(n)?;
    let (vectors, halves) = if storage == Storage::F16 {
        (Vec::new(), r.u16s(n * dim)?)
    } else {
        (r.f32s(n * dim)?, Vec::new())
    };
    let raw0 = r.u32s(n * (1 + m0))?;

    if let Some(l) = levels.iter().find(|&&l| usize::from(l) > MAX_LEVEL) {
        return Err(Error::corrupt(format!(
            "a node has level {l}, above {MAX_LEVEL}"
        )));
    }
    let level_sum: usize = levels.iter().map(|&l| usize::from(l)).sum();
    let raw_upper = r.u32s(level_sum * (1 + m))?;
    r.finish()?;

    let entry = check_entry(n, entry_slot, entry_level, &levels)?;
    let deleted = check_flags(deleted_raw)?;
    let slots = check_ids(&ids, &deleted, header.count)?;
    if vectors.iter().any(|x| !x.is_finite())
        || halves.iter().any(|&h| !half::f16::from_bits(h).is_finite())
    {
        return Err(Error::corrupt("a stored vector has a non-finite component"));
    }
    let links0 = check_lists(&raw0, m0, 0, &levels)?;
    let upper_flat = check_upper(&raw_upper, m, &levels)?;

    let mut store = Store::new(dim, m, 0, rng, spec.metric, storage);
    store.free = (0..n as u32).filter(|&s| deleted[s as usize]).collect();
    // The file does not say whether its graph saw churn; deleted slots do.
    store.churned = !store.free.is_empty();
    if storage == Storage::F16 {
        store.rows.load_halves(halves);
    } else {
        store.rows.load_f32s(vectors)?;
    }
    store.ids = ids;
    store.deleted = deleted;
    store.links0 = crate::huge::adopt(links0);
    store.set_upper(upper_flat);
    store.levels = levels;
    store.slots = slots;
    store.count_indegrees();

    spec.m = m;
    spec.ef_construction = ef_construction as usize;
    spec.storage = storage;
    Ok((Graph::new(spec, store, entry), section))
}

fn check_entry(n: usize, slot: u32, level: usize, levels: &[u8]) -> Result<Option<Entry>> {
    if n == 0 {
        return if slot == NONE {
            Ok(None)
        } else {
            Err(Error::corrupt("an empty graph has an entry point"))
        };
    }
    match levels.get(slot as usize) {
        Some(&l) if usize::from(l) == level => Ok(Some(Entry { slot, level })),
        Some(_) => Err(Error::corrupt(
            "the entry point's level disagrees with its node",
        )),
        None => Err(Error::corrupt(format!(
            "entry point {slot} is not a node (there are {n})"
        ))),
    }
}

fn check_flags(raw: &[u8]) -> Result<Vec<bool>> {
    raw.iter()
        .map(|&b| match b {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::corrupt(format!("a deleted flag is {b}, not 0 or 1"))),
        })
        .collect()
}

fn check_ids(ids: &[u64], deleted: &[bool], header_count: u64) -> Result<SlotTable> {
    let mut slots = SlotTable::default();
    let live = deleted.iter().filter(|&&d| !d).count();
    if live as u64 != header_count {
        return Err(Error::corrupt("the live count disagrees with the header"));
    }
    let live_ids = ids.iter().zip(deleted).filter(|(_, &gone)| !gone);
    slots.reserve(live_ids.map(|(&id, _)| id), ids);
    for (slot, (&id, &gone)) in ids.iter().zip(deleted).enumerate() {
        if gone {
            continue;
        }
        if slots.get(id, ids).is_some() {
            return Err(Error::corrupt(format!("id {id} is stored twice")));
        }
        slots.insert(id, slot as u32, ids);
    }
    Ok(slots)
}

/// Turns stored lists (count, `cap` slots) on `level` into seqlock lists,
/// checking every count and link: a link must name a node that has `level`.
fn check_lists(
    raw: &[u32],
    cap: usize,
    level: usize,
    levels: &[u8],
) -> Result<Vec<std::sync::atomic::AtomicU32>> {
    let n = levels.len();
    let mut out = Vec::with_capacity(raw.len() / (cap + 1) * links::words(cap));
    for list in raw.chunks_exact(cap + 1) {
        let count = list[0] as usize;
        if count > cap {
            return Err(Error::corrupt(format!(
                "a level-{level} list holds {count} links, more than {cap}"
            )));
        }
        for &link in &list[1..=count] {
            match levels.get(link as usize) {
                Some(&l) if usize::from(l) >= level => {}
                Some(_) => {
                    return Err(Error::corrupt(format!(
                        "a level-{level} link to node {link}, which has no level {level}"
                    )))
                }
                None => {
                    return Err(Error::corrupt(format!(
                        "a link to node {link}, but there are {n} nodes"
                    )))
                }
            }
        }
        out.extend(links::filled(cap, &list[1..=count]));
    }
    Ok(out)
}

fn check_upper(
    raw: &[u32],
    m: usize,
    levels: &[u8],
) -> Result<Vec<Vec<std::sync::atomic::AtomicU32>>> {
    let mut out = Vec::with_capacity(levels.len());
    let mut pos = 0;
    for &l in levels {
        let mut node = Vec::with_capacity(usize::from(l) * links::words(m));
        for level in 1..=usize::from(l) {
            let list = raw
                .get(pos..pos + m + 1)
                .ok_or_else(|| Error::corrupt("upper lists end early"))?;
            pos += m + 1;
            node.extend(check_lists(list, m, level, levels)?);
        }
        out.push(node);
    }
    Ok(out)
}

fn storage_code(kind: Storage) -> u32 {
    match kind {
        Storage::F16 => 1,
        Storage::I8 => 2,
        _ => 0,
    }
}

fn storage_of(code: u32) -> Result<Storage> {
    match code {
        0 => Ok(Storage::F32),
        1 => Ok(Storage::F16),
        2 => Ok(Storage::I8),
        _ => Err(Error::corrupt(format!(
            "storage kind {code} is not 0 (f32), 1 (f16) or 2 (i8)"
        ))),
    }
}

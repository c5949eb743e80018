//! Validation of hnswlib's own file format (what `saveIndex` writes and
//! `loadIndex` reads) before a byte of it reaches hnswlib.
//!
//! hnswlib's `loadIndex` trusts its header: a crafted element count or size
//! overflows the heap (hnswlib issue 673), and a link pointing past the last
//! element or to a level its target lacks is read out of bounds by every
//! later search. So every field is checked here, against the buffer's
//! length, against the others, and against what `dim` implies; anything
//! inconsistent is `Corrupt`.
//!
//! Layout (hnswlib 0.8.0, x86-64, native little-endian):
//!
//! | field | type |
//! |---|---|
//! | offsetLevel0_, max_elements_, cur_element_count, size_data_per_element_, label_offset_, offsetData_ | u64 each |
//! | maxlevel_ | i32 |
//! | enterpoint_node_ | u32 |
//! | maxM_, maxM0_, M_ | u64 each |
//! | mult_ | f64 |
//! | ef_construction_ | u64 |
//! | level-0 block | cur_element_count × size_data_per_element_ bytes |
//! | per element | linkListSize u32, then linkListSize bytes of upper-level lists |
//!
//! One level-0 record is `[count u16][flags u8][0 u8][maxM0_ × u32 links]
//! [vector: dim × f32][label u64]`; flag bit 0 marks a deleted element. An
//! upper-level list is `[count u16][2 bytes][maxM_ × u32 links]`.

use vecsearch_core::persist::Reader;
use vecsearch_core::{Error, IdMap, Metric, Result};

/// Length of the fixed header.
pub(crate) const HEADER_LEN: usize = 6 * 8 + 4 + 4 + 3 * 8 + 8 + 8;
/// Largest `M` hnswlib accepts (it caps larger values at this).
const MAX_M: u64 = 10_000;
/// Largest `ef_construction` a file may carry (a sanity bound; hnswlib has none).
const MAX_EF_CONSTRUCTION: u64 = 1 << 24;
/// The element-count type of hnswlib (`tableint`) is 32-bit.
const MAX_ELEMENTS: u64 = u32::MAX as u64;
const LABEL_LEN: usize = 8;

/// What a valid file holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    /// Slots in use (live and deleted).
    pub(crate) count: usize,
    /// Slots marked deleted.
    pub(crate) deleted: usize,
    /// The graph's `M`.
    pub(crate) m: usize,
    /// The graph's `ef_construction`.
    pub(crate) ef_construction: usize,
}

impl Layout {
    /// Vectors a search can find.
    pub(crate) fn live(&self) -> usize {
        self.count - self.deleted
    }
}

struct Header {
    offset_level0: u64,
    max_elements: u64,
    count: u64,
    size_per_element: u64,
    label_offset: u64,
    offset_data: u64,
    max_level: i32,
    entry_point: u32,
    max_m: u64,
    max_m0: u64,
    m: u64,
    mult: f64,
    ef_construction: u64,
}

fn corrupt(msg: impl Into<String>) -> Error {
    Error::corrupt(format!("hnswlib data: {}", msg.into()))
}

fn read_header(r: &mut Reader<'_>) -> Result<Header> {
    Ok(Header {
        offset_level0: r.u64()?,
        max_elements: r.u64()?,
        count: r.u64()?,
        size_per_element: r.u64()?,
        label_offset: r.u64()?,
        offset_data: r.u64()?,
        max_level: r.u32()? as i32,
        entry_point: r.u32()?,
        max_m: r.u64()?,
        max_m0: r.u64()?,
        m: r.u64()?,
        mult: f64::from_bits(r.u64()?),
        ef_construction: r.u64()?,
    })
}

/// The sizes `dim` and `M` imply, which the header must repeat exactly.
struct Sizes {
    links0: usize,
    links: usize,
    data: usize,
    per_element: usize,
}

fn check_header(h: &Header, dim: usize, remaining: usize) -> Result<Sizes> {
    if h.offset_level0 != 0 {
        return Err(corrupt(format!(
            "offsetLevel0 is {}, hnswlib always writes 0",
            h.offset_level0
        )));
    }
    if !(2..=MAX_M).contains(&h.m) || h.max_m != h.m || h.max_m0 != 2 * h.m {
        return Err(corrupt(format!(
            "M {} / maxM {} / maxM0 {} are inconsistent (hnswlib sets maxM = M, maxM0 = 2M, 2 <= M <= {MAX_M})",
            h.m, h.max_m, h.max_m0
        )));
    }
    let expected_mult = 1.0 / (h.m as f64).ln();
    if !h.mult.is_finite() || (h.mult - expected_mult).abs() > 1e-9 * expected_mult {
        return Err(corrupt(format!(
            "mult {} is not 1/ln(M) = {expected_mult}",
            h.mult
        )));
    }
    if h.ef_construction == 0 || h.ef_construction > MAX_EF_CONSTRUCTION {
        return Err(corrupt(format!(
            "ef_construction {} is out of range",
            h.ef_construction
        )));
    }
    // M <= 10_000, so these cannot overflow.
    let links0 = h.max_m0 as usize * 4 + 4;
    let links = h.max_m as usize * 4 + 4;
    let data = dim
        .checked_mul(4)
        .ok_or_else(|| corrupt("dimension too large"))?;
    let per_element = links0 + data + LABEL_LEN;
    if h.size_per_element != per_element as u64
        || h.offset_data != links0 as u64
        || h.label_offset != (links0 + data) as u64
    {
        return Err(corrupt(format!(
            "element layout (size {}, data at {}, label at {}) does not match dim {dim} and M {} \
             (expected size {per_element}, data at {links0}, label at {}); wrong dim or metric?",
            h.size_per_element,
            h.offset_data,
            h.label_offset,
            h.m,
            links0 + data
        )));
    }
    if h.count > h.max_elements || h.count > MAX_ELEMENTS {
        return Err(corrupt(format!(
            "element count {} exceeds max_elements {} or hnswlib's 32-bit limit",
            h.count, h.max_elements
        )));
    }
    // Every element needs its level-0 record and a 4-byte link-list size.
    let need = h
        .count
        .checked_mul(per_element as u64 + 4)
        .ok_or_else(|| corrupt("element count overflows"))?;
    if need > remaining as u64 {
        return Err(corrupt(format!(
            "{} elements need at least {need} bytes, the data holds {remaining}",
            h.count
        )));
    }
    if h.count == 0 {
        if h.max_level != -1 || h.entry_point != u32::MAX {
            return Err(corrupt(
                "an empty index must have max level -1 and no entry point",
            ));
        }
    } else if h.max_level < 0 || u64::from(h.entry_point) >= h.count {
        return Err(corrupt(format!(
            "max level {} / entry point {} are invalid for {} elements",
            h.max_level, h.entry_point, h.count
        )));
    }
    Ok(Sizes {
        links0,
        links,
        data,
        per_element,
    })
}

fn u16_at(b: &[u8], at: usize) -> Result<usize> {
    b.get(at..at + 2)
        .map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])))
        .ok_or_else(|| corrupt("record too short"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| corrupt("record too short"))
}

/// Checks one link list (`[count u16][2 bytes][links]`) of element `owner`:
/// at most `max` links, each to an existing element; returns the links.
fn links_of(list: &[u8], max: usize, count: usize, owner: usize) -> Result<Vec<u32>> {
    let n = u16_at(list, 0)?;
    if n > max {
        return Err(corrupt(format!(
            "element {owner} has {n} links, more than the {max} allowed"
        )));
    }
    (0..n)
        .map(|j| {
            let t = u32_at(list, 4 + 4 * j)?;
            if t as usize >= count {
                return Err(corrupt(format!(
                    "element {owner} links to element {t}, past the last of {count}"
                )));
            }
            Ok(t)
        })
        .collect()
}

/// Checks a whole hnswlib file held in `buf` for an index of `dim`
/// components and `metric`; returns what it holds.
pub(crate) fn validate(buf: &[u8], dim: usize, metric: Metric) -> Result<Layout> {
    let mut r = Reader::new(buf);
    let h = read_header(&mut r)?;
    let sizes = check_header(&h, dim, r.remaining())?;
    let count = h.count as usize;
    let level0 = r.bytes(count * sizes.per_element)?;

    let mut labels: IdMap<()> = IdMap::default();
    labels.reserve(count);
    let mut deleted = 0usize;
    for i in 0..count {
        let rec = &level0[i * sizes.per_element..(i + 1) * sizes.per_element];
        if rec[2] & 1 == 1 {
            deleted += 1;
        }
        links_of(&rec[..sizes.links0], h.max_m0 as usize, count, i)?;
        check_vector(&rec[sizes.links0..sizes.links0 + sizes.data], metric, i)?;
        let mut label = [0u8; 8];
        label.copy_from_slice(&rec[sizes.links0 + sizes.data..]);
        let label = u64::from_le_bytes(label);
        if labels.insert(label, ()).is_some() {
            return Err(corrupt(format!("label {label} is stored twice")));
        }
    }

    // Levels first: a link on level l must point at an element that has level l.
    let max_level = usize::try_from(h.max_level).unwrap_or(0);
    let mut levels = vec![0usize; count];
    let mut upper: Vec<(usize, &[u8])> = Vec::new();
    for (i, level) in levels.iter_mut().enumerate() {
        let size = r.u32()? as usize;
        if !size.is_multiple_of(sizes.links) {
            return Err(corrupt(format!(
                "element {i}'s link lists are {size} bytes, not a multiple of {}",
                sizes.links
            )));
        }
        *level = size / sizes.links;
        if *level > max_level {
            return Err(corrupt(format!(
                "element {i} has level {level}, above the index's max level {max_level}"
            )));
        }
        if size > 0 {
            upper.push((i, r.bytes(size)?));
        }
    }
    r.finish()?;
    if count > 0 && levels[h.entry_point as usize] != max_level {
        return Err(corrupt(format!(
            "the entry point has level {}, not the max level {max_level}",
            levels[h.entry_point as usize]
        )));
    }
    for (i, lists) in upper {
        for (l, list) in lists.chunks_exact(sizes.links).enumerate() {
            let level = l + 1;
            for t in links_of(list, h.max_m as usize, count, i)? {
                if levels[t as usize] < level {
                    return Err(corrupt(format!(
                        "element {i} links on level {level} to element {t}, which has no such level"
                    )));
                }
            }
        }
    }
    Ok(Layout {
        count,
        deleted,
        m: h.m as usize,
        ef_construction: h.ef_construction as usize,
    })
}

fn check_vector(bytes: &[u8], metric: Metric, i: usize) -> Result<()> {
    for c in bytes.chunks_exact(4) {
        let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if !x.is_finite() || (metric == Metric::Jaccard && x < 0.0) {
            return Err(corrupt(format!(
                "element {i} has component {x}, invalid for the {metric} metric"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(count: u64, max_level: i32, entry: u32) -> Vec<u8> {
        let m = 16u64;
        let per = (2 * m as usize * 4 + 4) + 4 * 2 + 8;
        let mut b = Vec::new();
        for v in [
            0,
            100,
            count,
            per as u64,
            (2 * m * 4 + 4) + 8,
            2 * m * 4 + 4,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&max_level.to_le_bytes());
        b.extend_from_slice(&entry.to_le_bytes());
        for v in [m, 2 * m, m] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&(1.0 / (m as f64).ln()).to_bits().to_le_bytes());
        b.extend_from_slice(&200u64.to_le_bytes());
        b
    }

    #[test]
    fn an_empty_index_is_the_header_alone() {
        let b = header(0, -1, u32::MAX);
        assert_eq!(b.len(), HEADER_LEN);
        let layout = validate(&b, 2, Metric::L2).unwrap();
        assert_eq!((layout.count, layout.live(), layout.m), (0, 0, 16));
        // The same header for another dim has another element layout.
        assert!(matches!(
            validate(&b, 3, Metric::L2),
            Err(Error::Corrupt(_))
        ));
        // An empty index with an entry point would make hnswlib link to itself.
        assert!(validate(&header(0, 0, 0), 2, Metric::L2).is_err());
    }

    #[test]
    fn counts_are_checked_before_anything_is_allocated() {
        for count in [1, 1 << 20, u64::MAX / 8, u64::MAX] {
            let r = validate(&header(count, 0, 0), 2, Metric::L2);
            assert!(matches!(r, Err(Error::Corrupt(_))), "count {count}");
        }
    }

    #[test]
    fn one_element_round_trips_and_jaccard_rejects_negatives() {
        let mut b = header(1, 0, 0);
        let mut rec = vec![0u8; 2 * 16 * 4 + 4];
        rec.extend_from_slice(&1.0f32.to_le_bytes());
        rec.extend_from_slice(&(-2.0f32).to_le_bytes());
        rec.extend_from_slice(&7u64.to_le_bytes());
        b.extend_from_slice(&rec);
        b.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(validate(&b, 2, Metric::L2).unwrap().live(), 1);
        assert!(validate(&b, 2, Metric::Jaccard).is_err());
        b[HEADER_LEN + 2] = 1; // the delete mark
        assert_eq!(validate(&b, 2, Metric::L2).unwrap().deleted, 1);
    }
}

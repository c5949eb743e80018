//! The vectors of the graph, one row per slot, in the spec's storage kind:
//! `f32`, half precision, or 8-bit codes with the f32 originals beside them.
//!
//! Every distance the graph computes goes through here, so the search code
//! is the same for every kind: `dist` (a query against a stored row, what
//! the walk uses), `exact` (against the exact vector, what results report),
//! `between` (two stored nodes, what linking uses).

use std::borrow::Cow;

use vecsearch_core::distance::{distance_fn_for, DistanceFn};
use vecsearch_core::{Metric, Result, Storage};

use crate::kernels::{self, decode_f16, decode_i8, F16Fn, F16PairFn, I8Fn, Q16Fn};
use crate::lined::Lined;
use crate::originals::Originals;

/// Bytes before the codes of an 8-bit row: `lo`, `step` and the squared
/// norm of the decoded row, f32 each. (Rows in memory only: files keep the
/// originals, and the codes are made again when one opens.)
const CODE_HEAD: usize = 12;

/// What an 8-bit row's head holds.
#[derive(Clone, Copy, Default)]
struct CodeHead {
    lo: f32,
    step: f32,
    /// Σ decoded², for L2 by the 16-bit query kernel.
    norm2: f32,
}

/// A query prepared for the rows' kernels: the f32 query, and where the
/// rows are 8-bit codes and the CPU has integer dot products, its 16-bit
/// form (see [`Rows::query`]).
pub(crate) struct Query<'a> {
    /// The query itself.
    pub(crate) v: &'a [f32],
    /// `v ≈ scale·q16` (empty when not used).
    q16: Vec<i16>,
    scale: f32,
    /// Σ scale·q16, for the `lo` part of every decoded row.
    sum: f32,
    /// Σ (scale·q16)², for L2.
    norm2: f32,
}

/// The rows of every slot.
pub(crate) struct Rows {
    pub(crate) kind: Storage,
    dim: usize,
    /// F32 rows. Each buffer's first row starts on a cache line (`lined`).
    f32s: Lined<f32>,
    /// I8: the f32 originals (re-ranking and `get`), out of the heap.
    originals: Originals,
    /// F16 rows, as half bits.
    halves: Lined<u16>,
    /// I8 rows: `lo`, `step` (little-endian f32), then `dim` codes.
    codes: Lined<u8>,
    f32fn: DistanceFn,
    f16fn: F16Fn,
    f16_pair: F16PairFn,
    i8fn: I8Fn,
    /// Σ q16·code, where the CPU has it and the metric is L2 or a dot.
    q16fn: Option<Q16Fn>,
    /// The metric is L2 (else a dot, for `q16fn`).
    l2: bool,
}

impl Rows {
    pub(crate) fn new(kind: Storage, dim: usize, metric: Metric) -> Self {
        let k = kernels::chosen_for(dim);
        Rows {
            kind,
            dim,
            f32s: Lined::new(),
            originals: Originals::new(if kind == Storage::I8 { dim } else { 0 }),
            halves: Lined::new(),
            codes: Lined::new(),
            f32fn: distance_fn_for(metric, dim),
            f16fn: k.f16(metric),
            f16_pair: k.f16_pair(metric),
            i8fn: k.i8(metric),
            q16fn: match metric {
                Metric::Jaccard => None,
                _ if kind == Storage::I8 => kernels::q16_for(dim),
                _ => None,
            },
            l2: metric == Metric::L2,
        }
    }

    /// `v` prepared for `dist`. With 8-bit rows that get a 16-bit-query
    /// kernel (`kernels::q16_for`), the query is also rounded to integers
    /// of at most `q16_limit(dim)` times a scale: `dist` is then the
    /// distance from that rounded query to the decoded row, its products
    /// summed exactly in integers. Rounding moves each component by at most
    /// half of `max|v| / q16_limit` (2^-15.4 of the largest at 384
    /// components; the codes' own error is 2^-9 of the row's range).
    pub(crate) fn query<'a>(&self, v: &'a [f32]) -> Query<'a> {
        let mut q = Query {
            v,
            q16: Vec::new(),
            scale: 0.0,
            sum: 0.0,
            norm2: 0.0,
        };
        if self.q16fn.is_none() {
            return q;
        }
        let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        if max.is_finite() && max > 0.0 {
            q.scale = max / kernels::q16_limit(v.len()) as f32;
            q.q16 = v.iter().map(|&x| (x / q.scale).round() as i16).collect();
            // The rounded query throughout: its error then meets the row's
            // values, not their distance from `lo` (smaller where rows
            // centre on zero, as embeddings do).
            let rounded = q.q16.iter().map(|&c| q.scale * f32::from(c));
            (q.sum, q.norm2) = rounded.fold((0.0, 0.0), |(s, n), x| (s + x, n + x * x));
        }
        q
    }

    fn stride(&self) -> usize {
        CODE_HEAD + self.dim
    }

    /// Makes room for `grow` more rows beyond `len`, exactly (see
    /// `grow_exact`); fails only if the originals' file cannot grow.
    pub(crate) fn grow(&mut self, len: usize, grow: usize) -> Result<()> {
        let d = self.dim;
        match self.kind {
            Storage::F16 => self.halves.grow_exact(len * d, grow * d),
            Storage::I8 => {
                let s = self.stride();
                self.originals.reserve(len + grow)?;
                self.codes.grow_exact(len * s, grow * s);
            }
            _ => self.f32s.grow_exact(len * d, grow * d),
        }
        Ok(())
    }

    /// Reserves room for `n` rows, or fails (an impossible capacity hint).
    pub(crate) fn try_reserve(
        &mut self,
        n: usize,
    ) -> std::result::Result<(), std::collections::TryReserveError> {
        let d = n.saturating_mul(self.dim);
        match self.kind {
            Storage::F16 => self.halves.try_reserve_exact(d)?,
            Storage::I8 => {
                // An originals file that cannot grow now grows (or fails
                // cleanly) at the first insert.
                let _ = self.originals.reserve(n);
                self.codes
                    .try_reserve_exact(n.saturating_mul(self.stride()))?
            }
            _ => self.f32s.try_reserve_exact(d)?,
        }
        Ok(())
    }

    /// Appends a row for the prepared vector `v` (room made by `grow`).
    pub(crate) fn push(&mut self, v: &[f32]) -> Result<()> {
        match self.kind {
            Storage::F16 => self
                .halves
                .extend(v.iter().map(|&x| half::f16::from_f32(x).to_bits())),
            Storage::I8 => {
                self.originals.push(v)?;
                self.push_codes(v);
            }
            _ => self.f32s.extend_from_slice(v),
        }
        Ok(())
    }

    /// Overwrites the row of `slot` with the prepared vector `v`.
    pub(crate) fn set(&mut self, slot: u32, v: &[f32]) {
        let (i, d) = (slot as usize * self.dim, self.dim);
        match self.kind {
            Storage::F16 => {
                if let Some(dst) = self.halves.get_mut(i..i + d) {
                    for (h, &x) in dst.iter_mut().zip(v) {
                        *h = half::f16::from_f32(x).to_bits();
                    }
                }
            }
            Storage::I8 => {
                let s = slot as usize * self.stride();
                let stride = self.stride();
                if let Some(dst) = self.codes.get_mut(s..s + stride) {
                    encode_i8(v, dst);
                }
                self.originals.set(slot, v);
            }
            _ => {
                if let Some(dst) = self.f32s.get_mut(i..i + d) {
                    dst.copy_from_slice(v);
                }
            }
        }
    }

    /// The exact vector of `slot`: the F32 row or the I8 original.
    #[inline]
    fn f32_row(&self, slot: u32) -> &[f32] {
        if self.kind == Storage::I8 {
            return self.originals.row(slot);
        }
        let i = slot as usize * self.dim;
        debug_assert!(i + self.dim <= self.f32s.len(), "slot {slot} out of range");
        self.f32s.get(i..i + self.dim).unwrap_or(&[])
    }

    #[inline]
    fn half_row(&self, slot: u32) -> &[u16] {
        let i = slot as usize * self.dim;
        debug_assert!(
            i + self.dim <= self.halves.len(),
            "slot {slot} out of range"
        );
        self.halves.get(i..i + self.dim).unwrap_or(&[])
    }

    /// The codes of `slot` and their head.
    #[inline]
    fn code_row(&self, slot: u32) -> (&[u8], CodeHead) {
        let i = slot as usize * self.stride();
        let row = self.codes.get(i..i + self.stride()).unwrap_or(&[]);
        debug_assert!(!row.is_empty(), "slot {slot} out of range");
        match row {
            [a, b, c, d, e, f, g, h, i, j, k, l, codes @ ..] => (
                codes,
                CodeHead {
                    lo: f32::from_le_bytes([*a, *b, *c, *d]),
                    step: f32::from_le_bytes([*e, *f, *g, *h]),
                    norm2: f32::from_le_bytes([*i, *j, *k, *l]),
                },
            ),
            _ => (&[], CodeHead::default()),
        }
    }

    /// Distance from the prepared query `q` to the stored row of `slot` (for
    /// I8, to its decoded codes: what the graph walk uses).
    #[inline]
    pub(crate) fn dist(&self, q: &Query<'_>, slot: u32) -> f32 {
        match self.kind {
            Storage::F16 => (self.f16fn)(q.v, self.half_row(slot)),
            Storage::I8 => {
                let (codes, h) = self.code_row(slot);
                match self.q16fn {
                    Some(f) if !q.q16.is_empty() => {
                        // q·decoded = lo·Σq + step·Σ q·code.
                        let dot =
                            h.lo.mul_add(q.sum, h.step * q.scale * f(&q.q16, codes) as f32);
                        if self.l2 {
                            (q.norm2 + h.norm2 - 2.0 * dot).max(0.0)
                        } else {
                            1.0 - dot
                        }
                    }
                    _ => (self.i8fn)(q.v, codes, h.lo, h.step),
                }
            }
            _ => (self.f32fn)(q.v, self.f32_row(slot)),
        }
    }

    /// Whether `dist` is only an estimate that results must re-score.
    #[inline]
    pub(crate) fn approximate(&self) -> bool {
        self.kind == Storage::I8
    }

    /// The distance results report: exact for the stored vector.
    #[inline]
    pub(crate) fn exact(&self, q: &[f32], slot: u32) -> f32 {
        match self.kind {
            Storage::F16 => (self.f16fn)(q, self.half_row(slot)),
            _ => (self.f32fn)(q, self.f32_row(slot)),
        }
    }

    /// Distance between two stored nodes (for I8, between the originals: the
    /// links are chosen with exact distances).
    #[inline]
    pub(crate) fn between(&self, a: u32, b: u32) -> f32 {
        match self.kind {
            Storage::F16 => (self.f16_pair)(self.half_row(a), self.half_row(b)),
            _ => (self.f32fn)(self.f32_row(a), self.f32_row(b)),
        }
    }

    /// The vector of `slot` as `get` returns it (F16: decoded; I8: the original).
    pub(crate) fn vector(&self, slot: u32) -> Cow<'_, [f32]> {
        match self.kind {
            Storage::F16 => {
                Cow::Owned(self.half_row(slot).iter().map(|&h| decode_f16(h)).collect())
            }
            _ => Cow::Borrowed(self.f32_row(slot)),
        }
    }

    /// Asks the CPU to start loading the whole row `dist` reads for `slot`.
    #[inline]
    pub(crate) fn prefetch(&self, slot: u32) {
        // Every line of the row: the search asks for all the unvisited
        // neighbours' rows before the first distance, and fetching them
        // whole, in parallel, is what made shorter rows pay (minilm-384,
        // 50k, ef 24: f16 1.30-1.36x and i8 1.38-1.41x f32's QPS, against
        // 1.12x and 1.37x with the first line only).
        let (p, bytes) = self.row_span(slot);
        prefetch_to(p, bytes, Level::L2);
    }

    /// Where the row `dist` reads for `slot` starts, and its bytes; the
    /// address is only computed (`wrapping_add`), for a prefetch.
    fn row_span(&self, slot: u32) -> (*const u8, usize) {
        let at = slot as usize;
        match self.kind {
            Storage::F16 => (
                self.halves.as_ptr().wrapping_add(at * self.dim).cast(),
                self.dim * 2,
            ),
            Storage::I8 => (
                self.codes.as_ptr().wrapping_add(at * self.stride()),
                self.stride(),
            ),
            _ => (
                self.f32s.as_ptr().wrapping_add(at * self.dim).cast(),
                self.dim * 4,
            ),
        }
    }

    /// How many neighbours' rows a search asks memory for ahead of the one
    /// it scores: about 8 KiB of rows in flight. Asking for all of a node's
    /// unvisited neighbours at once (up to 32 rows, 48 KiB at 384-d f32)
    /// queues more lines than the core can fetch at a time, and the row
    /// being scored waits behind the others: on minilm-384, the same saved
    /// graphs (`storage_ab`, ef 16-32) answered 1.03-1.10x the queries with
    /// 4 rows ahead for f32 and 1.02-1.05x with 8 for f16, while i8's short
    /// rows lost 2-3% with 4 and were level with all.
    ///
    /// The bytes are `tuning::set_ahead`'s (8 KiB unless set); at the
    /// default at least 4 rows go ahead, set lower as few as one.
    pub(crate) fn prefetch_ahead(&self) -> usize {
        rows_ahead(crate::tuning::ahead(), self.row_span(0).1)
    }

    /// Asks the CPU to start loading the vector `exact` reads for `slot`,
    /// whatever the storage (a scan scores with `exact`).
    #[inline]
    pub(crate) fn prefetch_scan(&self, slot: u32) {
        if self.kind == Storage::I8 {
            self.prefetch_exact(slot);
        } else {
            let (p, bytes) = self.row_span(slot);
            prefetch_to(p, bytes, Level::L1);
        }
    }

    /// Asks the CPU to start loading the vector `exact` reads for `slot`,
    /// where that is not the row `dist` reads (I8: its original).
    #[inline]
    pub(crate) fn prefetch_exact(&self, slot: u32) {
        if self.kind == Storage::I8 {
            let row = self.originals.row(slot);
            prefetch_to(row.as_ptr().cast(), std::mem::size_of_val(row), Level::L1);
        }
    }

    /// Heap bytes allocated (I8 originals in a mapped file are not heap).
    pub(crate) fn bytes(&self) -> usize {
        self.f32s.heap_bytes()
            + self.halves.heap_bytes()
            + self.codes.heap_bytes()
            + self.originals.heap_bytes()
    }

    /// Bytes of the I8 originals' mapped file.
    pub(crate) fn mapped_bytes(&self) -> usize {
        self.originals.mapped_bytes()
    }

    /// The f32 rows (F32) or originals (I8), for saving.
    pub(crate) fn f32s(&self) -> Cow<'_, [f32]> {
        if self.kind == Storage::I8 {
            Cow::Owned(self.originals.all())
        } else {
            Cow::Borrowed(&self.f32s)
        }
    }

    /// The half rows (F16), for saving.
    pub(crate) fn halves(&self) -> &[u16] {
        &self.halves
    }

    /// Rows from saved data: f32 rows or originals.
    pub(crate) fn load_f32s(&mut self, all: Vec<f32>) -> Result<()> {
        if self.kind != Storage::I8 {
            self.f32s = Lined::from_vec(all);
            return Ok(());
        }
        self.codes = Lined::new();
        self.codes
            .grow_exact(0, all.len() / self.dim.max(1) * self.stride());
        for v in all.chunks_exact(self.dim) {
            self.push_codes(v);
        }
        self.originals.load(all)
    }

    /// Appends the 8-bit row of `v`.
    fn push_codes(&mut self, v: &[f32]) {
        let at = self.codes.len();
        self.codes.resize(at + self.stride(), 0);
        encode_i8(v, &mut self.codes[at..]);
    }

    /// F16 rows from saved half bits.
    pub(crate) fn load_halves(&mut self, all: Vec<u16>) {
        self.halves = Lined::from_vec(all);
    }
}

/// Asks the CPU to start loading the `bytes` from `p` into its caches. A
/// hint only: any address is allowed, none is read by the program.
///
/// Each cache line the bytes touch is asked for, from the line holding
/// the first byte to the one holding the last: rows need not start on a
/// line (an allocation's buffer starts 16 bytes into one here), and
/// counting 64-byte steps from the first byte left out a row's last line,
/// which the distance kernel then waited for. A walk's lines go to the
/// second-level cache (`Level::L2`, `prefetcht1`; AMD's and Intel's cores
/// place `t1` and `t2` there), not the first: a first-level prefetch holds
/// one of the core's few first-level miss buffers until its line comes,
/// and the 8 KiB a walk asks for ahead (`Rows::prefetch_ahead`) needs more
/// lines in flight than those buffers hold, so further prefetches wait
/// behind them. An exact scan's rows (and its id-table lookups) still go
/// to the first (`Level::L1`): scattered matches of a keyword at a million
/// points were scanned in 443 µs with `t1` against 348 µs with `t0`
/// (`PROBE_FILTER=keyword scan_probe 1000000 3`).
///
/// Measured with `storage_ab` (`AB_PREFETCH=1`: the old way and this one
/// alternated pass by pass in one process, the same saved graphs; AMD
/// EPYC, 32 MB L3), QPS at ef 24 and 64, two runs: minilm-384 100k f32
/// 1.47x-1.74x, f16 1.67x-1.88x, i8 1.63x-1.95x; GloVe-50 100k (in the
/// cache), one run: f32 1.35x-1.43x, f16 1.07x-1.26x, i8 1.02x-1.15x.
/// `walk_probe` at a million 96-d points (`VECSEARCH_NATIVE_PREFETCH=l1`
/// against the default, alternated runs): walks 1.19x-1.51x; a region's
/// exact scan level with `t0` on every line (417 and 455 against 363 and
/// 475 QPS); `scan_probe 200000 5`'s keyword 1% scan 63.0 against
/// 67.4-74.4 µs.
#[inline]
pub(crate) fn prefetch_to(p: *const u8, bytes: usize, level: Level) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::tuning::Prefetch;
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0, _MM_HINT_T1};
        match crate::tuning::prefetch() {
            Prefetch::Lines => {
                for line in lines(p as usize, bytes) {
                    let line = line as *const i8;
                    // SAFETY: SSE is part of the x86-64 baseline, so the
                    // instruction exists; a prefetch is a hint that never
                    // faults and never reads into the program, whatever
                    // the address.
                    unsafe {
                        match level {
                            Level::L1 => _mm_prefetch::<_MM_HINT_T0>(line),
                            Level::L2 => _mm_prefetch::<_MM_HINT_T1>(line),
                        }
                    }
                }
            }
            Prefetch::FromStartL1 => {
                for off in (0..bytes).step_by(64) {
                    // SAFETY: as above.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off).cast()) };
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes, level);
}

/// Whole rows of `row` bytes in `bytes`, at most 64; at least 4 at the
/// default setting (as before the setting existed), at least 1 when set.
fn rows_ahead(bytes: usize, row: usize) -> usize {
    let least = if bytes == crate::tuning::AHEAD_DEFAULT {
        4
    } else {
        1
    };
    (bytes / row.max(1)).clamp(least, 64)
}

/// Which cache a prefetch fills ([`prefetch_to`]).
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Level {
    /// The first-level cache (`prefetcht0`): the next few rows of an exact
    /// scan, read in order right after.
    L1,
    /// The second-level cache (`prefetcht1`): a walk's rows, many in
    /// flight at once.
    L2,
}

/// The start of every 64-byte cache line that the `bytes` from address
/// `first` touch, in order; none for no bytes, or where the range would
/// run past the end of the address space.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn lines(first: usize, bytes: usize) -> impl Iterator<Item = usize> {
    let last = bytes
        .checked_sub(1)
        .and_then(|b| first.checked_add(b))
        .map(|l| l & !63);
    let start = first & !63;
    let count = last.map_or(0, |l| (l - start) / 64 + 1);
    (0..count).map(move |i| start + 64 * i)
}

/// Quantises `v` over its own range into `out` (`CODE_HEAD + v.len()` bytes):
/// `lo = min`, `step = (max - min) / 255`, `code = round((x - lo) / step)`,
/// and the squared norm of the decoded row.
fn encode_i8(v: &[f32], out: &mut [u8]) {
    let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (lo, step) = if lo.is_finite() && hi > lo {
        (lo, (hi - lo) / 255.0)
    } else {
        (if lo.is_finite() { lo } else { 0.0 }, 0.0)
    };
    let (head, codes) = out.split_at_mut(CODE_HEAD.min(out.len()));
    let mut norm2 = 0f32;
    for (c, &x) in codes.iter_mut().zip(v) {
        *c = if step > 0.0 {
            ((x - lo) / step).round().clamp(0.0, 255.0) as u8
        } else {
            0
        };
        let d = decode_i8(*c, lo, step);
        norm2 += d * d;
    }
    if let [a, b, c, d, e, f, g, h, i, j, k, l] = head {
        [*a, *b, *c, *d] = lo.to_le_bytes();
        [*e, *f, *g, *h] = step.to_le_bytes();
        [*i, *j, *k, *l] = norm2.to_le_bytes();
    }
}

/// Makes room in `v` (of `len` items) for `grow` more, exactly: `Vec`'s own
/// doubling would leave up to half of a large index unused.
pub(crate) fn grow_exact<T>(v: &mut Vec<T>, len: usize, grow: usize) {
    let want = len.saturating_add(grow);
    if want > v.capacity() {
        v.reserve_exact(want - v.len());
        crate::huge::advise(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_asks_for_every_line_a_row_touches() {
        // The lines each byte of the range lies on, counted one by one.
        let by_byte = |first: usize, bytes: usize| {
            let mut v: Vec<usize> = (first..first + bytes).map(|a| a & !63).collect();
            v.dedup();
            v
        };
        for first in [0, 1, 16, 63, 64, 4096 + 16, 1 << 40] {
            for bytes in [0, 1, 2, 48, 63, 64, 65, 392, 768, 1536] {
                let got: Vec<usize> = lines(first, bytes).collect();
                assert_eq!(got, by_byte(first, bytes), "{first} + {bytes}");
            }
        }
        // A row 16 bytes into a line spans one line more than its length
        // in lines: what counting from its first byte left out.
        assert_eq!(lines(16, 1536).count(), 25);
        assert_eq!(lines(usize::MAX - 10, 100).count(), 0);
        assert_eq!(lines(usize::MAX - 10, 11).count(), 1);
        // Any address is a valid hint, both ways of asking.
        let row = vec![1.0f32; 384];
        for p in [
            crate::tuning::Prefetch::Lines,
            crate::tuning::Prefetch::FromStartL1,
        ] {
            crate::tuning::set_prefetch(p);
            for level in [Level::L1, Level::L2] {
                prefetch_to(row.as_ptr().cast(), 1536, level);
                prefetch_to(std::ptr::null(), 64, level);
                prefetch_to(usize::MAX as *const u8, 1 << 20, level);
            }
        }
        crate::tuning::set_prefetch(crate::tuning::Prefetch::Lines);
    }

    #[test]
    fn rows_ahead_are_whole_rows_within_bounds() {
        let d = crate::tuning::AHEAD_DEFAULT;
        // The default: 8 KiB of rows, at least 4 and at most 64.
        assert_eq!(rows_ahead(d, 1536), 5); // 384-d f32
        assert_eq!(rows_ahead(d, 200), 40); // 50-d f32
        assert_eq!(rows_ahead(d, 62), 64); // 50-d i8, capped
        assert_eq!(rows_ahead(d, 3072), 4); // 768-d f32, at least 4

        // Set lower, as few as one row; a zero-byte row cannot divide.
        assert_eq!(rows_ahead(2048, 1536), 1);
        assert_eq!(rows_ahead(512, 200), 2);
        assert_eq!(rows_ahead(1, 1536), 1);
        assert_eq!(rows_ahead(1 << 20, 0), 64);
    }

    #[test]
    fn i8_codes_stay_within_half_a_step_and_flat_vectors_decode_exactly() {
        let v: Vec<f32> = (0..100)
            .map(|i| ((i * 7919) % 200) as f32 * 0.37 - 20.0)
            .collect();
        let mut out = vec![0u8; CODE_HEAD + v.len()];
        encode_i8(&v, &mut out);
        let lo = f32::from_le_bytes(out[0..4].try_into().unwrap());
        let step = f32::from_le_bytes(out[4..8].try_into().unwrap());
        for (&x, &c) in v.iter().zip(&out[CODE_HEAD..]) {
            assert!((decode_i8(c, lo, step) - x).abs() <= step * 0.5001, "{x}");
        }
        let flat = [2.5f32; 9];
        let mut out = vec![0u8; CODE_HEAD + 9];
        encode_i8(&flat, &mut out);
        let lo = f32::from_le_bytes(out[0..4].try_into().unwrap());
        let step = f32::from_le_bytes(out[4..8].try_into().unwrap());
        assert!(out[CODE_HEAD..]
            .iter()
            .all(|&c| decode_i8(c, lo, step) == 2.5));
    }

    /// I8 rows scored through the 16-bit query (where the CPU has it) give
    /// the distance from the rounded query to the decoded row, and stay
    /// within the rounding's reach of the f32 query's distance.
    #[test]
    fn i8_rows_score_the_decoded_row_with_a_16_bit_query() {
        for dim in [50, 384] {
            i8_rows_score_with_a_16_bit_query(dim);
        }
    }

    fn i8_rows_score_with_a_16_bit_query(dim: usize) {
        let mut x = 0.37f32;
        let mut next = move || {
            x = (x * 9301.0 + 49297.0) % 233280.0;
            x / 233280.0 - 0.5
        };
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
            let mut rows = Rows::new(Storage::I8, dim, metric);
            if rows.q16fn.is_none() {
                eprintln!("skipped: this CPU has no 16-bit-query kernel for {dim} components");
                return;
            }
            let v: Vec<f32> = (0..dim).map(|_| next()).collect();
            let q: Vec<f32> = (0..dim).map(|_| next() * 3.0).collect();
            rows.grow(0, 1).unwrap();
            rows.push(&v).unwrap();
            let (codes, h) = rows.code_row(0);
            let decoded: Vec<f32> = codes.iter().map(|&c| decode_i8(c, h.lo, h.step)).collect();
            // Rows hold cosine vectors normalised: their distance is 1 - dot.
            let as_dot = if metric == Metric::Cosine {
                Metric::InnerProduct
            } else {
                metric
            };
            let prepared = rows.query(&q);
            assert!(!prepared.q16.is_empty());
            let got = f64::from(rows.dist(&prepared, 0));
            // Exact, up to f32 arithmetic, for the rounded query.
            let rounded: Vec<f32> = prepared
                .q16
                .iter()
                .map(|&c| prepared.scale * f32::from(c))
                .collect();
            let want = vecsearch_core::distance::exact_distance(as_dot, &rounded, &decoded);
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{metric}: {got} vs {want}"
            );
            // Within the rounding's bound of the f32 query's distance.
            let exact = vecsearch_core::distance::exact_distance(as_dot, &q, &decoded);
            let half = f64::from(prepared.scale) / 2.0;
            let bound: f64 = q
                .iter()
                .zip(&decoded)
                .map(|(&a, &b)| match metric {
                    Metric::L2 => half * (2.0 * f64::from(a - b).abs() + half),
                    _ => half * f64::from(b).abs(),
                })
                .sum();
            assert!(
                (got - exact).abs() <= bound + 1e-5,
                "{metric}: {got} vs {exact} (bound {bound})"
            );
        }
    }

    #[test]
    fn every_kind_reports_exact_distances_for_what_get_returns() {
        for kind in Storage::ALL {
            for metric in Metric::ALL {
                let mut rows = Rows::new(kind, 5, metric);
                let a = [0.3f32, 0.1, 0.7, 0.2, 0.05];
                let b = [0.6f32, 0.2, 0.1, 0.9, 0.4];
                rows.grow(0, 2).unwrap();
                rows.push(&a).unwrap();
                rows.push(&b).unwrap();
                rows.set(1, &a);
                rows.set(1, &b);
                let got = rows.vector(1).into_owned();
                assert_eq!(got, kind.stored(&b), "{kind} {metric}");
                let want = vecsearch_core::distance::distance_fn_for(metric, 5)(&a, &got);
                assert!((rows.exact(&a, 1) - want).abs() < 1e-6, "{kind} {metric}");
                assert!((rows.between(0, 1) - rows.exact(&rows.vector(0), 1)).abs() < 1e-6);
            }
        }
    }
}

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

use crate::kernels::{self, decode_f16, F16Fn, F16PairFn, I8Fn};
use crate::originals::Originals;

/// Bytes before the codes of an 8-bit row: `lo` and `step`, f32 each.
const CODE_HEAD: usize = 8;

/// The rows of every slot.
pub(crate) struct Rows {
    pub(crate) kind: Storage,
    dim: usize,
    /// F32 rows.
    f32s: Vec<f32>,
    /// I8: the f32 originals (re-ranking and `get`), out of the heap.
    originals: Originals,
    /// F16 rows, as half bits.
    halves: Vec<u16>,
    /// I8 rows: `lo`, `step` (little-endian f32), then `dim` codes.
    codes: Vec<u8>,
    f32fn: DistanceFn,
    f16fn: F16Fn,
    f16_pair: F16PairFn,
    i8fn: I8Fn,
}

impl Rows {
    pub(crate) fn new(kind: Storage, dim: usize, metric: Metric) -> Self {
        let k = kernels::chosen();
        Rows {
            kind,
            dim,
            f32s: Vec::new(),
            originals: Originals::new(if kind == Storage::I8 { dim } else { 0 }),
            halves: Vec::new(),
            codes: Vec::new(),
            f32fn: distance_fn_for(metric, dim),
            f16fn: k.f16(metric),
            f16_pair: k.f16_pair(metric),
            i8fn: k.i8(metric),
        }
    }

    fn stride(&self) -> usize {
        CODE_HEAD + self.dim
    }

    /// Makes room for `grow` more rows beyond `len`, exactly (see
    /// `grow_exact`); fails only if the originals' file cannot grow.
    pub(crate) fn grow(&mut self, len: usize, grow: usize) -> Result<()> {
        let d = self.dim;
        match self.kind {
            Storage::F16 => grow_exact(&mut self.halves, len * d, grow * d),
            Storage::I8 => {
                let s = self.stride();
                self.originals.reserve(len + grow)?;
                grow_exact(&mut self.codes, len * s, grow * s);
            }
            _ => grow_exact(&mut self.f32s, len * d, grow * d),
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
            Storage::F16 => self.halves.try_reserve_exact(d),
            Storage::I8 => {
                // An originals file that cannot grow now grows (or fails
                // cleanly) at the first insert.
                let _ = self.originals.reserve(n);
                self.codes
                    .try_reserve_exact(n.saturating_mul(self.stride()))
            }
            _ => self.f32s.try_reserve_exact(d),
        }
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

    /// The codes of `slot` and their `lo`, `step`.
    #[inline]
    fn code_row(&self, slot: u32) -> (&[u8], f32, f32) {
        let i = slot as usize * self.stride();
        let row = self.codes.get(i..i + self.stride()).unwrap_or(&[]);
        debug_assert!(!row.is_empty(), "slot {slot} out of range");
        match row {
            [a, b, c, d, e, f, g, h, codes @ ..] => (
                codes,
                f32::from_le_bytes([*a, *b, *c, *d]),
                f32::from_le_bytes([*e, *f, *g, *h]),
            ),
            _ => (&[], 0.0, 0.0),
        }
    }

    /// Distance from the prepared query `q` to the stored row of `slot` (for
    /// I8, to its decoded codes: what the graph walk uses).
    #[inline]
    pub(crate) fn dist(&self, q: &[f32], slot: u32) -> f32 {
        match self.kind {
            Storage::F16 => (self.f16fn)(q, self.half_row(slot)),
            Storage::I8 => {
                let (codes, lo, step) = self.code_row(slot);
                (self.i8fn)(q, codes, lo, step)
            }
            _ => (self.f32fn)(q, self.f32_row(slot)),
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
            Storage::I8 => (self.f32fn)(q, self.f32_row(slot)),
            _ => self.dist(q, slot),
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
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let p: *const i8 = match self.kind {
                Storage::F16 => self
                    .halves
                    .as_ptr()
                    .wrapping_add(slot as usize * self.dim)
                    .cast(),
                Storage::I8 => self
                    .codes
                    .as_ptr()
                    .wrapping_add(slot as usize * self.stride())
                    .cast(),
                _ => self
                    .f32s
                    .as_ptr()
                    .wrapping_add(slot as usize * self.dim)
                    .cast(),
            };
            // Every line of the row: the search asks for all the unvisited
            // neighbours' rows before the first distance, and fetching them
            // whole, in parallel, is what made shorter rows pay (minilm-384,
            // 50k, ef 24: f16 1.30-1.36x and i8 1.38-1.41x f32's QPS, against
            // 1.12x and 1.37x with the first line only).
            let bytes = match self.kind {
                Storage::F16 => self.dim * 2,
                Storage::I8 => self.stride(),
                _ => self.dim * 4,
            };
            for off in (0..bytes).step_by(64) {
                // SAFETY: SSE is part of the x86-64 baseline, so the
                // instruction exists; a prefetch is a hint that never faults
                // and never reads into the program, whatever the address
                // (`wrapping_add` never asserts the address is in bounds).
                unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off)) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    /// Heap bytes allocated (I8 originals in a mapped file are not heap).
    pub(crate) fn bytes(&self) -> usize {
        self.f32s.capacity() * 4
            + self.halves.capacity() * 2
            + self.codes.capacity()
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
            self.f32s = all;
            return Ok(());
        }
        self.codes = Vec::with_capacity(all.len() / self.dim.max(1) * self.stride());
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
        self.halves = all;
    }
}

/// Quantises `v` over its own range into `out` (`CODE_HEAD + v.len()` bytes):
/// `lo = min`, `step = (max - min) / 255`, `code = round((x - lo) / step)`.
fn encode_i8(v: &[f32], out: &mut [u8]) {
    let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (lo, step) = if lo.is_finite() && hi > lo {
        (lo, (hi - lo) / 255.0)
    } else {
        (if lo.is_finite() { lo } else { 0.0 }, 0.0)
    };
    let (head, codes) = out.split_at_mut(CODE_HEAD.min(out.len()));
    if let [a, b, c, d, e, f, g, h] = head {
        [*a, *b, *c, *d] = lo.to_le_bytes();
        [*e, *f, *g, *h] = step.to_le_bytes();
    }
    for (c, &x) in codes.iter_mut().zip(v) {
        *c = if step > 0.0 {
            ((x - lo) / step).round().clamp(0.0, 255.0) as u8
        } else {
            0
        };
    }
}

/// Makes room in `v` (of `len` items) for `grow` more, exactly: `Vec`'s own
/// doubling would leave up to half of a large index unused.
pub(crate) fn grow_exact<T>(v: &mut Vec<T>, len: usize, grow: usize) {
    let want = len.saturating_add(grow);
    if want > v.capacity() {
        v.reserve_exact(want - v.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::decode_i8;

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

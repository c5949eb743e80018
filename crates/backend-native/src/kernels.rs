//! Distances from an `f32` query to rows stored in half precision or as
//! 8-bit codes, chosen once at run time for the CPU: AVX2 + FMA (+ F16C) on
//! x86-64, NEON on aarch64 (part of every aarch64 target), scalar elsewhere.
//!
//! Both kinds decode a row on the fly and compute in f32: an f16 row with
//! the CPU's conversion instruction, an 8-bit row as `lo + step·code` (one
//! FMA). The query stays exact (asymmetric distance), which costs no more
//! than integer dot products here: on long vectors the time goes to fetching
//! rows from memory, and a quarter of the bytes is what pays.

use std::sync::OnceLock;

use vecsearch_core::distance::jaccard_from_sums;
use vecsearch_core::Metric;

/// Query against an f16 row (raw half bits).
pub(crate) type F16Fn = fn(&[f32], &[u16]) -> f32;
/// Query against 8-bit codes that decode as `lo + step·code`.
pub(crate) type I8Fn = fn(&[f32], &[u8], f32, f32) -> f32;
/// Two f16 rows (building links between stored nodes).
pub(crate) type F16PairFn = fn(&[u16], &[u16]) -> f32;

/// The kernels of one instruction set, per metric.
pub(crate) struct CodeKernels {
    /// `"avx2+fma+f16c"`, `"neon"` or `"scalar"`.
    pub(crate) isa: &'static str,
    f16: [F16Fn; 3],
    i8: [I8Fn; 3],
    f16_pair: [F16PairFn; 3],
}

// Index of a metric's operation: squared L2, 1 - dot, weighted Jaccard.
fn op(metric: Metric) -> usize {
    match metric {
        Metric::L2 => 0,
        Metric::Cosine | Metric::InnerProduct => 1,
        Metric::Jaccard => 2,
    }
}

impl CodeKernels {
    pub(crate) fn f16(&self, metric: Metric) -> F16Fn {
        self.f16[op(metric)]
    }

    pub(crate) fn i8(&self, metric: Metric) -> I8Fn {
        self.i8[op(metric)]
    }

    pub(crate) fn f16_pair(&self, metric: Metric) -> F16PairFn {
        self.f16_pair[op(metric)]
    }
}

/// The portable kernels, also the reference of the SIMD ones.
pub(crate) const SCALAR: CodeKernels = CodeKernels {
    isa: "scalar",
    f16: [scalar::f16_l2, scalar::f16_ip, scalar::f16_jaccard],
    i8: [scalar::i8_l2, scalar::i8_ip, scalar::i8_jaccard],
    f16_pair: [scalar::pair_l2, scalar::pair_ip, scalar::pair_jaccard],
};

/// The fastest kernels this CPU runs, detected once.
pub(crate) fn chosen() -> &'static CodeKernels {
    static CHOSEN: OnceLock<CodeKernels> = OnceLock::new();
    CHOSEN.get_or_init(|| {
        if vecsearch_core::distance::force_scalar() {
            return SCALAR;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
            {
                return x86::KERNELS;
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            return neon::KERNELS;
        }
        #[allow(unreachable_code)]
        SCALAR
    })
}

/// What a SIMD kernel accumulates over decoded lanes.
#[derive(Clone, Copy)]
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
enum Op {
    L2,
    Dot,
    MinMax,
}

/// One lane of `op` in scalar code: the SIMD kernels' tails.
#[inline]
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
fn tail(op: Op, a: f32, b: f32, s0: &mut f32, s1: &mut f32) {
    match op {
        Op::L2 => *s0 += (a - b) * (a - b),
        Op::Dot => *s0 += a * b,
        Op::MinMax => {
            *s0 += a.min(b);
            *s1 += a.max(b);
        }
    }
}

/// `lo + step·code`: the value an 8-bit code stands for.
#[inline]
pub(crate) fn decode_i8(code: u8, lo: f32, step: f32) -> f32 {
    step.mul_add(f32::from(code), lo)
}

/// The f32 value of half bits.
#[inline]
pub(crate) fn decode_f16(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

mod scalar {
    use super::{decode_f16, decode_i8, jaccard_from_sums};

    // Generic over the decoder; four accumulators let the compiler pipeline.
    #[inline]
    fn l2<T: Copy>(q: &[f32], r: &[T], dec: impl Fn(T) -> f32) -> f32 {
        let mut acc = [0f32; 4];
        for (i, (&a, &b)) in q.iter().zip(r).enumerate() {
            let d = a - dec(b);
            acc[i & 3] += d * d;
        }
        acc.iter().sum()
    }

    #[inline]
    fn dot<T: Copy>(q: &[f32], r: &[T], dec: impl Fn(T) -> f32) -> f32 {
        let mut acc = [0f32; 4];
        for (i, (&a, &b)) in q.iter().zip(r).enumerate() {
            acc[i & 3] += a * dec(b);
        }
        acc.iter().sum()
    }

    #[inline]
    fn jaccard<T: Copy>(q: &[f32], r: &[T], dec: impl Fn(T) -> f32) -> f32 {
        let (mut lo, mut hi) = (0f32, 0f32);
        for (&a, &b) in q.iter().zip(r) {
            let b = dec(b);
            lo += a.min(b);
            hi += a.max(b);
        }
        jaccard_from_sums(lo, hi)
    }

    pub(super) fn f16_l2(q: &[f32], r: &[u16]) -> f32 {
        l2(q, r, decode_f16)
    }
    pub(super) fn f16_ip(q: &[f32], r: &[u16]) -> f32 {
        1.0 - dot(q, r, decode_f16)
    }
    pub(super) fn f16_jaccard(q: &[f32], r: &[u16]) -> f32 {
        jaccard(q, r, decode_f16)
    }
    // Two f16 rows: the first decoded on the fly too.
    fn decoded(a: &[u16]) -> impl Iterator<Item = f32> + '_ {
        a.iter().map(|&h| decode_f16(h))
    }
    pub(super) fn pair_l2(a: &[u16], b: &[u16]) -> f32 {
        decoded(a)
            .zip(decoded(b))
            .map(|(x, y)| (x - y) * (x - y))
            .sum()
    }
    pub(super) fn pair_ip(a: &[u16], b: &[u16]) -> f32 {
        1.0 - decoded(a).zip(decoded(b)).map(|(x, y)| x * y).sum::<f32>()
    }
    pub(super) fn pair_jaccard(a: &[u16], b: &[u16]) -> f32 {
        let (lo, hi) = decoded(a)
            .zip(decoded(b))
            .fold((0f32, 0f32), |(l, h), (x, y)| (l + x.min(y), h + x.max(y)));
        jaccard_from_sums(lo, hi)
    }
    pub(super) fn i8_l2(q: &[f32], r: &[u8], lo: f32, step: f32) -> f32 {
        l2(q, r, |c| decode_i8(c, lo, step))
    }
    pub(super) fn i8_ip(q: &[f32], r: &[u8], lo: f32, step: f32) -> f32 {
        1.0 - dot(q, r, |c| decode_i8(c, lo, step))
    }
    pub(super) fn i8_jaccard(q: &[f32], r: &[u8], lo: f32, step: f32) -> f32 {
        jaccard(q, r, |c| decode_i8(c, lo, step))
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{decode_f16, decode_i8, jaccard_from_sums, tail, Op};

    pub(super) const KERNELS: super::CodeKernels = super::CodeKernels {
        isa: "avx2+fma+f16c",
        f16: [f16_l2, f16_ip, f16_jaccard],
        i8: [i8_l2, i8_ip, i8_jaccard],
        f16_pair: [pair_l2, pair_ip, pair_jaccard],
    };

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// Folds 8 query lanes `a` and 8 decoded lanes `b` into the accumulators.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn step(op: Op, a: __m256, b: __m256, acc: &mut [__m256; 2]) {
        match op {
            Op::L2 => {
                let d = _mm256_sub_ps(a, b);
                acc[0] = _mm256_fmadd_ps(d, d, acc[0]);
            }
            Op::Dot => acc[0] = _mm256_fmadd_ps(a, b, acc[0]),
            Op::MinMax => {
                acc[0] = _mm256_add_ps(acc[0], _mm256_min_ps(a, b));
                acc[1] = _mm256_add_ps(acc[1], _mm256_max_ps(a, b));
            }
        }
    }

    /// The sums of `op` over an f16 row; the tail beyond a multiple of 8 in
    /// scalar code.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn f16_sums(op: Op, q: &[f32], r: &[u16]) -> (f32, f32) {
        let n = q.len().min(r.len());
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n and both slices hold at least n items;
            // unaligned loads have no alignment requirement.
            let (a, b) = unsafe {
                (
                    _mm256_loadu_ps(q.as_ptr().add(i)),
                    _mm256_cvtph_ps(_mm_loadu_si128(r.as_ptr().add(i).cast())),
                )
            };
            step(op, a, b, &mut acc);
            i += 8;
        }
        let (mut s0, mut s1) = (hsum(acc[0]), hsum(acc[1]));
        for j in i..n {
            tail(op, q[j], decode_f16(r[j]), &mut s0, &mut s1);
        }
        (s0, s1)
    }

    /// The sums of `op` over two f16 rows.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn pair_sums(op: Op, a: &[u16], b: &[u16]) -> (f32, f32) {
        let n = a.len().min(b.len());
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n and both slices hold at least n halves;
            // unaligned loads have no alignment requirement.
            let (x, y) = unsafe {
                (
                    _mm256_cvtph_ps(_mm_loadu_si128(a.as_ptr().add(i).cast())),
                    _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(i).cast())),
                )
            };
            step(op, x, y, &mut acc);
            i += 8;
        }
        let (mut s0, mut s1) = (hsum(acc[0]), hsum(acc[1]));
        for j in i..n {
            tail(op, decode_f16(a[j]), decode_f16(b[j]), &mut s0, &mut s1);
        }
        (s0, s1)
    }

    /// The sums of `op` over 8-bit codes decoding as `lo + step·code`.
    #[target_feature(enable = "avx2,fma")]
    fn i8_sums(op: Op, q: &[f32], r: &[u8], lo: f32, stp: f32) -> (f32, f32) {
        let n = q.len().min(r.len());
        let (vlo, vstep) = (_mm256_set1_ps(lo), _mm256_set1_ps(stp));
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n: 8 floats of `q` and 8 bytes of `r` are in
            // bounds; the loads have no alignment requirement.
            let (a, codes) = unsafe {
                (
                    _mm256_loadu_ps(q.as_ptr().add(i)),
                    _mm_loadl_epi64(r.as_ptr().add(i).cast()),
                )
            };
            let c = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(codes));
            let b = _mm256_fmadd_ps(vstep, c, vlo);
            step(op, a, b, &mut acc);
            i += 8;
        }
        let (mut s0, mut s1) = (hsum(acc[0]), hsum(acc[1]));
        for j in i..n {
            tail(op, q[j], decode_i8(r[j], lo, stp), &mut s0, &mut s1);
        }
        (s0, s1)
    }

    // SAFETY (every wrapper below): KERNELS is only chosen after detecting
    // avx2, fma and f16c, the features the called functions enable.
    fn f16_l2(q: &[f32], r: &[u16]) -> f32 {
        unsafe { f16_sums(Op::L2, q, r).0 }
    }
    fn f16_ip(q: &[f32], r: &[u16]) -> f32 {
        1.0 - unsafe { f16_sums(Op::Dot, q, r).0 }
    }
    fn f16_jaccard(q: &[f32], r: &[u16]) -> f32 {
        let (lo, hi) = unsafe { f16_sums(Op::MinMax, q, r) };
        jaccard_from_sums(lo, hi)
    }
    fn pair_l2(a: &[u16], b: &[u16]) -> f32 {
        unsafe { pair_sums(Op::L2, a, b).0 }
    }
    fn pair_ip(a: &[u16], b: &[u16]) -> f32 {
        1.0 - unsafe { pair_sums(Op::Dot, a, b).0 }
    }
    fn pair_jaccard(a: &[u16], b: &[u16]) -> f32 {
        let (lo, hi) = unsafe { pair_sums(Op::MinMax, a, b) };
        jaccard_from_sums(lo, hi)
    }
    fn i8_l2(q: &[f32], r: &[u8], lo: f32, stp: f32) -> f32 {
        unsafe { i8_sums(Op::L2, q, r, lo, stp).0 }
    }
    fn i8_ip(q: &[f32], r: &[u8], lo: f32, stp: f32) -> f32 {
        1.0 - unsafe { i8_sums(Op::Dot, q, r, lo, stp).0 }
    }
    fn i8_jaccard(q: &[f32], r: &[u8], lo: f32, stp: f32) -> f32 {
        let (a, b) = unsafe { i8_sums(Op::MinMax, q, r, lo, stp) };
        jaccard_from_sums(a, b)
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use std::arch::aarch64::*;
    use std::arch::asm;

    use super::{decode_f16, decode_i8, jaccard_from_sums, tail, Op};

    pub(super) const KERNELS: super::CodeKernels = super::CodeKernels {
        isa: "neon",
        f16: [f16_l2, f16_ip, f16_jaccard],
        i8: [i8_l2, i8_ip, i8_jaccard],
        f16_pair: [pair_l2, pair_ip, pair_jaccard],
    };

    /// Folds 4 query lanes `a` and 4 decoded lanes `b` into the accumulators.
    #[inline]
    fn step(op: Op, a: float32x4_t, b: float32x4_t, acc: &mut [float32x4_t; 2]) {
        // SAFETY: NEON is part of every aarch64 target.
        unsafe {
            match op {
                Op::L2 => {
                    let d = vsubq_f32(a, b);
                    acc[0] = vfmaq_f32(acc[0], d, d);
                }
                Op::Dot => acc[0] = vfmaq_f32(acc[0], a, b),
                Op::MinMax => {
                    acc[0] = vaddq_f32(acc[0], vminq_f32(a, b));
                    acc[1] = vaddq_f32(acc[1], vmaxq_f32(a, b));
                }
            }
        }
    }

    /// Four halves (raw bits) widened to f32 with FCVTL, which every aarch64
    /// CPU has; Rust's intrinsic for it takes the unstable `f16` type.
    #[inline]
    fn widen_f16(bits: uint16x4_t) -> float32x4_t {
        let out: float32x4_t;
        // SAFETY: FCVTL only reads and writes the named vector registers.
        unsafe {
            asm!("fcvtl {o:v}.4s, {i:v}.4h", o = lateout(vreg) out, i = in(vreg) bits,
                 options(pure, nomem, nostack, preserves_flags));
        }
        out
    }

    fn sums(
        op: Op,
        n: usize,
        lanes: impl Fn(usize) -> (float32x4_t, float32x4_t),
        rest: impl Fn(usize) -> (f32, f32),
    ) -> (f32, f32) {
        // SAFETY: NEON is part of every aarch64 target.
        let mut acc = unsafe { [vdupq_n_f32(0.0); 2] };
        let mut i = 0;
        while i + 4 <= n {
            let (a, b) = lanes(i);
            step(op, a, b, &mut acc);
            i += 4;
        }
        // SAFETY: as above.
        let (mut s0, mut s1) = unsafe { (vaddvq_f32(acc[0]), vaddvq_f32(acc[1])) };
        for j in i..n {
            let (a, b) = rest(j);
            tail(op, a, b, &mut s0, &mut s1);
        }
        (s0, s1)
    }

    fn f16_sums(op: Op, q: &[f32], r: &[u16]) -> (f32, f32) {
        let n = q.len().min(r.len());
        // SAFETY: `sums` asks for lanes i..i + 4 only with i + 4 <= n, and
        // both slices hold at least n items.
        let lanes = |i: usize| unsafe {
            (
                vld1q_f32(q.as_ptr().add(i)),
                widen_f16(vld1_u16(r.as_ptr().add(i))),
            )
        };
        sums(op, n, lanes, |j| (q[j], decode_f16(r[j])))
    }

    fn pair_sums(op: Op, a: &[u16], b: &[u16]) -> (f32, f32) {
        let n = a.len().min(b.len());
        // SAFETY: as in f16_sums.
        let lanes = |i: usize| unsafe {
            (
                widen_f16(vld1_u16(a.as_ptr().add(i))),
                widen_f16(vld1_u16(b.as_ptr().add(i))),
            )
        };
        sums(op, n, lanes, |j| (decode_f16(a[j]), decode_f16(b[j])))
    }

    fn i8_sums(op: Op, q: &[f32], r: &[u8], lo: f32, stp: f32) -> (f32, f32) {
        let n = q.len().min(r.len());
        // SAFETY: as in f16_sums; the 4 codes at i are read as one u32
        // (unaligned read) and widened u8 -> u16 -> u32 -> f32, then
        // decoded with one FMA: lo + step * code.
        let lanes = |i: usize| unsafe {
            let word = r.as_ptr().add(i).cast::<u32>().read_unaligned();
            let codes = vget_low_u16(vmovl_u8(vcreate_u8(u64::from(word))));
            let c = vcvtq_f32_u32(vmovl_u16(codes));
            let b = vfmaq_f32(vdupq_n_f32(lo), vdupq_n_f32(stp), c);
            (vld1q_f32(q.as_ptr().add(i)), b)
        };
        sums(op, n, lanes, |j| (q[j], decode_i8(r[j], lo, stp)))
    }

    fn f16_l2(q: &[f32], r: &[u16]) -> f32 {
        f16_sums(Op::L2, q, r).0
    }
    fn f16_ip(q: &[f32], r: &[u16]) -> f32 {
        1.0 - f16_sums(Op::Dot, q, r).0
    }
    fn f16_jaccard(q: &[f32], r: &[u16]) -> f32 {
        let (lo, hi) = f16_sums(Op::MinMax, q, r);
        jaccard_from_sums(lo, hi)
    }
    fn pair_l2(a: &[u16], b: &[u16]) -> f32 {
        pair_sums(Op::L2, a, b).0
    }
    fn pair_ip(a: &[u16], b: &[u16]) -> f32 {
        1.0 - pair_sums(Op::Dot, a, b).0
    }
    fn pair_jaccard(a: &[u16], b: &[u16]) -> f32 {
        let (lo, hi) = pair_sums(Op::MinMax, a, b);
        jaccard_from_sums(lo, hi)
    }
    fn i8_l2(q: &[f32], r: &[u8], lo: f32, stp: f32) -> f32 {
        i8_sums(Op::L2, q, r, lo, stp).0
    }
    fn i8_ip(q: &[f32], r: &[u8], lo: f32, stp: f32) -> f32 {
        1.0 - i8_sums(Op::Dot, q, r, lo, stp).0
    }
    fn i8_jaccard(q: &[f32], r: &[u8], lo: f32, stp: f32) -> f32 {
        let (a, b) = i8_sums(Op::MinMax, q, r, lo, stp);
        jaccard_from_sums(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vecsearch_core::distance::exact_distance;

    fn rng(seed: u64) -> impl FnMut() -> f32 {
        let mut s = seed;
        move || {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
    }

    /// Every chosen kernel, and the scalar ones, at every length from 1 to
    /// 70 (all tails) and at 384, against the exact f64 distance of the
    /// de-quantised row. Cosine is checked as the inner product of
    /// normalised vectors, which is what the kernels compute.
    #[test]
    fn code_kernels_match_the_f64_distance_of_the_decoded_row() {
        let mut r = rng(7);
        for ks in [chosen(), &SCALAR] {
            for n in (1..=70).chain([384]) {
                for metric in [Metric::L2, Metric::InnerProduct, Metric::Jaccard] {
                    let pos = metric == Metric::Jaccard;
                    let mut v = || if pos { r().abs() * 3.0 } else { r() * 3.0 };
                    let q: Vec<f32> = (0..n).map(|_| v()).collect();
                    let x: Vec<f32> = (0..n).map(|_| v()).collect();
                    // f16
                    let bits: Vec<u16> = x
                        .iter()
                        .map(|&a| half::f16::from_f32(a).to_bits())
                        .collect();
                    let dec: Vec<f32> = bits.iter().map(|&b| decode_f16(b)).collect();
                    let want = exact_distance(metric, &q, &dec);
                    let got = ks.f16(metric)(&q, &bits);
                    assert!(
                        (f64::from(got) - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{} f16 {metric} n {n}: {got} vs {want}",
                        ks.isa
                    );
                    // f16 against f16: the query rounded too.
                    let qbits: Vec<u16> = q
                        .iter()
                        .map(|&a| half::f16::from_f32(a).to_bits())
                        .collect();
                    let qdec: Vec<f32> = qbits.iter().map(|&b| decode_f16(b)).collect();
                    let want = exact_distance(metric, &qdec, &dec);
                    let got = ks.f16_pair(metric)(&qbits, &bits);
                    assert!(
                        (f64::from(got) - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{} f16 pair {metric} n {n}: {got} vs {want}",
                        ks.isa
                    );
                    // i8
                    let codes: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
                    let (lo, step) = (if pos { 0.1 } else { -1.5 }, 0.0117);
                    let dec: Vec<f32> = codes.iter().map(|&c| decode_i8(c, lo, step)).collect();
                    let want = exact_distance(metric, &q, &dec);
                    let got = ks.i8(metric)(&q, &codes, lo, step);
                    assert!(
                        (f64::from(got) - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{} i8 {metric} n {n}: {got} vs {want}",
                        ks.isa
                    );
                }
            }
        }
    }
}

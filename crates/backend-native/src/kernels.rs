//! Distances from a query to rows stored in half precision or as 8-bit
//! codes, chosen once at run time for the CPU: AVX2 + FMA (+ F16C) on
//! x86-64, and AVX-512 for rows of 128 components or more where the CPU has
//! it; NEON on aarch64 (part of every aarch64 target); scalar elsewhere.
//!
//! An f16 row is decoded on the fly with the CPU's conversion instruction
//! and scored against the exact f32 query. An 8-bit row decodes as
//! `lo + step·code`; for L2 and dot products it is scored by integer
//! multiply-adds against the query rounded to 16-bit integers (`q16`
//! kernels: AVX-512 VNNI, AVX2, NEON). For vectors of like scale that
//! rounding's step is `2·q16_limit/255` times finer than the codes' own
//! (172 times at 384 components, 43 at 1,536). Jaccard, and the scalar set,
//! decode to f32 with one FMA and keep the query exact.

use std::sync::OnceLock;

use vecsearch_core::distance::{jaccard_from_sums, WIDE_MIN_DIM};
use vecsearch_core::Metric;

/// Query against an f16 row (raw half bits).
pub(crate) type F16Fn = fn(&[f32], &[u16]) -> f32;
/// Query against 8-bit codes that decode as `lo + step·code`.
pub(crate) type I8Fn = fn(&[f32], &[u8], f32, f32) -> f32;
/// Two f16 rows (building links between stored nodes).
pub(crate) type F16PairFn = fn(&[u16], &[u16]) -> f32;
/// Σ q·code over a 16-bit integer query and 8-bit codes, exactly. The
/// caller keeps Σ |q|·255 within `i32` (see [`q16_limit`]), so no partial
/// sum, in any lane order, can overflow.
pub(crate) type Q16Fn = fn(&[i16], &[u8]) -> i32;

/// The largest |q| a 16-bit query of `dim` components may hold for a
/// [`Q16Fn`]: `i32::MAX / (255·dim)`, at most `i16::MAX` (21,931 for 384
/// components, 5,483 for 1,536).
pub(crate) fn q16_limit(dim: usize) -> i32 {
    let limit = i32::MAX as usize / (255 * dim.max(1));
    limit.min(i16::MAX as usize) as i32
}

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

/// The kernels for rows of `dim` components: the 16-lane ones from
/// [`WIDE_MIN_DIM`] on where the CPU has them (as the core's f32 kernels),
/// else [`chosen`].
pub(crate) fn chosen_for(dim: usize) -> &'static CodeKernels {
    match wide() {
        Some(k) if dim >= WIDE_MIN_DIM => k,
        _ => chosen(),
    }
}

/// The 16-lane kernels, where this CPU has AVX-512 (F, BW, VL) besides
/// the 8-lane set's features.
pub(crate) fn wide() -> Option<&'static CodeKernels> {
    #[cfg(target_arch = "x86_64")]
    if chosen().isa == x86::KERNELS.isa
        && !vecsearch_core::distance::no_wide()
        && x86_512::runs_here()
    {
        return Some(&x86_512::KERNELS);
    }
    None
}

/// The 16-bit-query kernel for 8-bit rows of `dim` components, integer
/// multiply-adds: AVX-512 VNNI's from [`WIDE_MIN_DIM`] components on where
/// the CPU has it, else AVX2's (on 50-d rows VNNI's masked tail made i8
/// slower: 0.95-0.98x f32's QPS on GloVe-50, against 1.04-1.06x with
/// AVX2's); NEON's widening one. None with the scalar kernels, or where
/// the query could not keep 7 bits.
pub(crate) fn q16_for(dim: usize) -> Option<Q16Fn> {
    q16_pick(dim).map(|(_, f)| f)
}

/// [`q16_for`]'s choice, with the name of its instruction set.
fn q16_pick(dim: usize) -> Option<(&'static str, Q16Fn)> {
    if q16_limit(dim) < 127 || vecsearch_core::distance::force_scalar() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if dim >= WIDE_MIN_DIM && wide().is_some() && x86_512::vnni_here() {
            return Some(("avx512vnni", x86_512::q16_dot));
        }
        if chosen().isa == x86::KERNELS.isa {
            return Some(("avx2", x86::q16_dot));
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        return Some(("neon", neon::q16_dot));
    }
    #[allow(unreachable_code)]
    None
}

/// The instruction sets of the 16-bit-query kernels this CPU runs (as
/// [`q16_for`] picks them), or `"none"`.
pub(crate) fn q16_names() -> String {
    let name = |dim| q16_pick(dim).map_or("none", |(isa, _)| isa);
    let (short, long) = (name(WIDE_MIN_DIM - 1), name(WIDE_MIN_DIM));
    if short == long {
        short.to_string()
    } else {
        format!("{short}, {long} from dim {WIDE_MIN_DIM}")
    }
}

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
    /// The reference of the 16-bit-query kernels (not chosen: without
    /// SIMD the f32 query costs no more).
    #[cfg(test)]
    pub(super) fn q16_dot(q: &[i16], r: &[u8]) -> i32 {
        q.iter()
            .zip(r)
            .map(|(&a, &c)| i32::from(a) * i32::from(c))
            .sum()
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

    /// The sums of `op` over `n` lanes: 8 a step from `lanes(i)`. The tail
    /// beyond a multiple of 8 is the last 8 lanes again with those already
    /// counted zeroed (a scalar loop would cost short rows as much as the
    /// rest of the row); rows under 8 lanes go through `rest(j)`. Two sets
    /// of accumulators, so consecutive steps do not wait for each other.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn sums(
        op: Op,
        n: usize,
        lanes: impl Fn(usize) -> (__m256, __m256),
        rest: impl Fn(usize) -> (f32, f32),
    ) -> (f32, f32) {
        let mut acc = [[_mm256_setzero_ps(); 2]; 2];
        let mut i = 0;
        while i + 16 <= n {
            let (a, b) = lanes(i);
            step(op, a, b, &mut acc[0]);
            let (a, b) = lanes(i + 8);
            step(op, a, b, &mut acc[1]);
            i += 16;
        }
        if i + 8 <= n {
            let (a, b) = lanes(i);
            step(op, a, b, &mut acc[0]);
            i += 8;
        }
        if i < n && n >= 8 {
            let (a, b) = lanes(n - 8);
            // Lane l of that load is lane n - 8 + l: new from l = 8 - (n - i).
            let first_new = _mm256_set1_epi32((8 - (n - i)) as i32 - 1);
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, first_new));
            step(
                op,
                _mm256_and_ps(a, keep),
                _mm256_and_ps(b, keep),
                &mut acc[1],
            );
            i = n;
        }
        let mut s0 = hsum(_mm256_add_ps(acc[0][0], acc[1][0]));
        let mut s1 = hsum(_mm256_add_ps(acc[0][1], acc[1][1]));
        for j in i..n {
            let (a, b) = rest(j);
            tail(op, a, b, &mut s0, &mut s1);
        }
        (s0, s1)
    }

    /// The sums of `op` over an f16 row.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn f16_sums(op: Op, q: &[f32], r: &[u16]) -> (f32, f32) {
        let n = q.len().min(r.len());
        // SAFETY: `sums` asks for lanes i..i + 8 only with i + 8 <= n, and
        // both slices hold at least n items; unaligned loads have no
        // alignment requirement.
        let lanes = |i: usize| unsafe {
            (
                _mm256_loadu_ps(q.as_ptr().add(i)),
                _mm256_cvtph_ps(_mm_loadu_si128(r.as_ptr().add(i).cast())),
            )
        };
        sums(op, n, lanes, |j| (q[j], decode_f16(r[j])))
    }

    /// The sums of `op` over two f16 rows.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn pair_sums(op: Op, a: &[u16], b: &[u16]) -> (f32, f32) {
        let n = a.len().min(b.len());
        // SAFETY: as in f16_sums.
        let lanes = |i: usize| unsafe {
            (
                _mm256_cvtph_ps(_mm_loadu_si128(a.as_ptr().add(i).cast())),
                _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(i).cast())),
            )
        };
        sums(op, n, lanes, |j| (decode_f16(a[j]), decode_f16(b[j])))
    }

    /// The sums of `op` over 8-bit codes decoding as `lo + step·code`.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn i8_sums(op: Op, q: &[f32], r: &[u8], lo: f32, stp: f32) -> (f32, f32) {
        let n = q.len().min(r.len());
        let (vlo, vstep) = (_mm256_set1_ps(lo), _mm256_set1_ps(stp));
        // SAFETY: as in f16_sums (8 floats of `q` and 8 bytes of `r`).
        let lanes = |i: usize| unsafe {
            let codes = _mm_loadl_epi64(r.as_ptr().add(i).cast());
            let c = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(codes));
            (
                _mm256_loadu_ps(q.as_ptr().add(i)),
                _mm256_fmadd_ps(vstep, c, vlo),
            )
        };
        sums(op, n, lanes, |j| (q[j], decode_i8(r[j], lo, stp)))
    }

    /// Σ q·code: 16 codes a step widened to 16 bits and multiplied by the
    /// query in pairs, summed into i32 lanes (VPMADDWD).
    pub(super) fn q16_dot(q: &[i16], r: &[u8]) -> i32 {
        // SAFETY: only chosen (`q16_for`) with these kernels, after
        // detecting avx2 (and fma, f16c).
        unsafe { q16_sums(q, r) }
    }

    #[target_feature(enable = "avx2")]
    fn q16_sums(q: &[i16], r: &[u8]) -> i32 {
        let n = q.len().min(r.len());
        // SAFETY: lanes i..i + 16 are read only when i + 16 <= n, and both
        // slices hold at least n items; unaligned loads have no alignment
        // requirement.
        let lanes = |i: usize| unsafe {
            (
                _mm256_loadu_si256(q.as_ptr().add(i).cast()),
                _mm256_cvtepu8_epi16(_mm_loadu_si128(r.as_ptr().add(i).cast())),
            )
        };
        let (mut acc0, mut acc1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        let mut i = 0;
        while i + 32 <= n {
            let (a, b) = lanes(i);
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(a, b));
            let (a, b) = lanes(i + 16);
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(a, b));
            i += 32;
        }
        if i + 16 <= n {
            let (a, b) = lanes(i);
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(a, b));
            i += 16;
        }
        let acc = _mm256_add_epi32(acc0, acc1);
        let s = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256(acc, 1),
        );
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        let mut sum = _mm_cvtsi128_si32(s);
        for j in i..n {
            sum += i32::from(q[j]) * i32::from(r[j]);
        }
        sum
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

/// 16 lanes a step, for long rows (as the core's f32 kernels), with masked
/// loads for the tail. Jaccard keeps the 8-lane kernels.
#[cfg(target_arch = "x86_64")]
mod x86_512 {
    use std::arch::x86_64::*;

    use super::{x86, Op};

    pub(super) fn runs_here() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }

    /// Whether [`q16_dot`] runs here (besides [`runs_here`]).
    pub(super) fn vnni_here() -> bool {
        std::arch::is_x86_feature_detected!("avx512vnni")
    }

    /// Σ q·code: 32 codes a step widened to 16 bits and multiplied by the
    /// query in pairs, summed into i32 lanes (VPDPWSSD).
    pub(super) fn q16_dot(q: &[i16], r: &[u8]) -> i32 {
        // SAFETY: only chosen (`q16_for`) after detecting avx512f, bw, vl
        // and vnni.
        unsafe { q16_sums(q, r) }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    fn q16_sums(q: &[i16], r: &[u8]) -> i32 {
        let n = q.len().min(r.len());
        // SAFETY: lanes i..i + 32 are read only with a mask selecting those
        // below n (all of them when i + 32 <= n); masked loads touch no
        // memory for the others, and both slices hold at least n items.
        let lanes = |i: usize, m: __mmask32| unsafe {
            (
                _mm512_maskz_loadu_epi16(m, q.as_ptr().add(i)),
                _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, r.as_ptr().add(i).cast())),
            )
        };
        let (mut acc0, mut acc1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
        let mut i = 0;
        while i + 64 <= n {
            let (a, b) = lanes(i, u32::MAX);
            acc0 = _mm512_dpwssd_epi32(acc0, a, b);
            let (a, b) = lanes(i + 32, u32::MAX);
            acc1 = _mm512_dpwssd_epi32(acc1, a, b);
            i += 64;
        }
        if i + 32 <= n {
            let (a, b) = lanes(i, u32::MAX);
            acc0 = _mm512_dpwssd_epi32(acc0, a, b);
            i += 32;
        }
        if i < n {
            // Masked-off query lanes are 0, so their products are too.
            let (a, b) = lanes(i, (1u32 << (n - i)) - 1);
            acc1 = _mm512_dpwssd_epi32(acc1, a, b);
        }
        _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1))
    }

    pub(super) const KERNELS: super::CodeKernels = super::CodeKernels {
        isa: "avx512f+bw+vl",
        f16: [f16_l2, f16_ip, x86::KERNELS.f16[2]],
        i8: [i8_l2, i8_ip, x86::KERNELS.i8[2]],
        f16_pair: [pair_l2, pair_ip, x86::KERNELS.f16_pair[2]],
    };

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn fold(op: Op, a: __m512, b: __m512, acc: __m512) -> __m512 {
        match op {
            Op::L2 => {
                let d = _mm512_sub_ps(a, b);
                _mm512_fmadd_ps(d, d, acc)
            }
            _ => _mm512_fmadd_ps(a, b, acc),
        }
    }

    /// Σ over 16-lane steps of `op` on `lanes(i, mask)`, two accumulators.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn sums(op: Op, n: usize, lanes: impl Fn(usize, __mmask16) -> (__m512, __m512)) -> f32 {
        // Two accumulators in registers, so consecutive steps overlap.
        let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut i = 0;
        while i + 32 <= n {
            let (a, b) = lanes(i, 0xFFFF);
            acc0 = fold(op, a, b, acc0);
            let (a, b) = lanes(i + 16, 0xFFFF);
            acc1 = fold(op, a, b, acc1);
            i += 32;
        }
        if i + 16 <= n {
            let (a, b) = lanes(i, 0xFFFF);
            acc0 = fold(op, a, b, acc0);
            i += 16;
        }
        if i < n {
            let (a, b) = lanes(i, ((1u32 << (n - i)) - 1) as u16);
            acc1 = fold(op, a, b, acc1);
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn f16_sums(op: Op, q: &[f32], r: &[u16]) -> f32 {
        let n = q.len().min(r.len());
        // SAFETY: `sums` asks for lanes i..i + 16 with a mask that selects
        // only lanes below n; masked loads touch no memory for the others,
        // and both slices hold at least n items.
        let lanes = |i: usize, m: __mmask16| unsafe {
            (
                _mm512_maskz_loadu_ps(m, q.as_ptr().add(i)),
                _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, r.as_ptr().add(i).cast())),
            )
        };
        sums(op, n, lanes)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn pair_sums(op: Op, a: &[u16], b: &[u16]) -> f32 {
        let n = a.len().min(b.len());
        // SAFETY: as in f16_sums.
        let lanes = |i: usize, m: __mmask16| unsafe {
            (
                _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, a.as_ptr().add(i).cast())),
                _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, b.as_ptr().add(i).cast())),
            )
        };
        sums(op, n, lanes)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    fn i8_sums(op: Op, q: &[f32], r: &[u8], lo: f32, stp: f32) -> f32 {
        let n = q.len().min(r.len());
        let (vlo, vstep) = (_mm512_set1_ps(lo), _mm512_set1_ps(stp));
        // SAFETY: as in f16_sums; the codes widen u8 -> i32 -> f32 and
        // decode with one FMA, zero in the lanes masked off (where `lo`
        // would count in an L2 sum).
        let lanes = |i: usize, m: __mmask16| unsafe {
            let codes = _mm_maskz_loadu_epi8(m, r.as_ptr().add(i).cast());
            let c = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(codes));
            (
                _mm512_maskz_loadu_ps(m, q.as_ptr().add(i)),
                _mm512_maskz_mov_ps(m, _mm512_fmadd_ps(vstep, c, vlo)),
            )
        };
        sums(op, n, lanes)
    }

    // SAFETY (every wrapper below): KERNELS is only chosen after detecting
    // avx512f, avx512bw and avx512vl (and the 8-lane set's features, for
    // the Jaccard kernels).
    fn f16_l2(q: &[f32], r: &[u16]) -> f32 {
        unsafe { f16_sums(Op::L2, q, r) }
    }
    fn f16_ip(q: &[f32], r: &[u16]) -> f32 {
        1.0 - unsafe { f16_sums(Op::Dot, q, r) }
    }
    fn pair_l2(a: &[u16], b: &[u16]) -> f32 {
        unsafe { pair_sums(Op::L2, a, b) }
    }
    fn pair_ip(a: &[u16], b: &[u16]) -> f32 {
        1.0 - unsafe { pair_sums(Op::Dot, a, b) }
    }
    fn i8_l2(q: &[f32], r: &[u8], lo: f32, stp: f32) -> f32 {
        unsafe { i8_sums(Op::L2, q, r, lo, stp) }
    }
    fn i8_ip(q: &[f32], r: &[u8], lo: f32, stp: f32) -> f32 {
        1.0 - unsafe { i8_sums(Op::Dot, q, r, lo, stp) }
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

    /// Σ q·code: 8 codes a step widened to 16 bits and multiplied by the
    /// query into i32 lanes (SMLAL, SMLAL2: baseline NEON).
    pub(super) fn q16_dot(q: &[i16], r: &[u8]) -> i32 {
        let n = q.len().min(r.len());
        // SAFETY: NEON is part of every aarch64 target; lanes i..i + 8 are
        // read only when i + 8 <= n, and both slices hold at least n items.
        unsafe {
            let (mut acc0, mut acc1) = (vdupq_n_s32(0), vdupq_n_s32(0));
            let mut i = 0;
            while i + 8 <= n {
                let c = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(r.as_ptr().add(i))));
                let a = vld1q_s16(q.as_ptr().add(i));
                acc0 = vmlal_s16(acc0, vget_low_s16(a), vget_low_s16(c));
                acc1 = vmlal_high_s16(acc1, a, c);
                i += 8;
            }
            let mut sum = vaddvq_s32(vaddq_s32(acc0, acc1));
            for j in i..n {
                sum += i32::from(q[j]) * i32::from(r[j]);
            }
            sum
        }
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

    /// Every 16-bit-query kernel this CPU runs sums exactly, at every tail
    /// length, with the query at its limit and the codes at theirs.
    #[test]
    fn q16_kernels_sum_q_times_code_exactly() {
        let mut fns: Vec<(&str, Q16Fn)> = vec![("scalar", scalar::q16_dot)];
        #[cfg(target_arch = "x86_64")]
        {
            if chosen().isa == x86::KERNELS.isa {
                fns.push(("avx2", x86::q16_dot));
            }
            if wide().is_some() && x86_512::vnni_here() {
                fns.push(("avx512vnni", x86_512::q16_dot));
            }
        }
        #[cfg(target_arch = "aarch64")]
        fns.push(("neon", neon::q16_dot));
        let mut r = rng(11);
        for (name, f) in fns {
            for n in (1..=130).chain([384, 1000, 4096]) {
                let top = q16_limit(n) as f32;
                let mut q: Vec<i16> = (0..n).map(|_| (r() * top) as i16).collect();
                let mut codes: Vec<u8> = (0..n).map(|_| ((r() + 1.0) * 127.9) as u8).collect();
                let want: i64 = q
                    .iter()
                    .zip(&codes)
                    .map(|(&a, &c)| i64::from(a) * i64::from(c))
                    .sum();
                assert_eq!(i64::from(f(&q, &codes)), want, "{name} q16 n {n}");
                // The extreme the limit allows: every product at its largest.
                q.fill(top as i16);
                codes.fill(255);
                let most = i64::from(top as i16) * 255 * n as i64;
                assert_eq!(
                    i64::from(f(&q, &codes)),
                    most,
                    "{name} q16 at the limit, n {n}"
                );
            }
        }
    }

    /// Every chosen kernel (8- and 16-lane), and the scalar ones, at every length from 1 to
    /// 70 (all tails) and at 384, against the exact f64 distance of the
    /// de-quantised row. Cosine is checked as the inner product of
    /// normalised vectors, which is what the kernels compute.
    #[test]
    fn code_kernels_match_the_f64_distance_of_the_decoded_row() {
        let mut r = rng(7);
        for ks in [Some(chosen()), wide(), Some(&SCALAR)]
            .into_iter()
            .flatten()
        {
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

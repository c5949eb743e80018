//! Distances: an exact f64 reference, and fast f32 kernels chosen once at run
//! time for the CPU (AVX2+FMA on x86-64, NEON on aarch64, scalar elsewhere).
//!
//! The kernels take vectors already *prepared* for the metric: for `Cosine`
//! that means normalised (see [`prepare`]), so cosine distance is `1 − a·b`.

use std::sync::OnceLock;

use crate::Metric;

/// A distance between two prepared vectors of equal length.
pub type DistanceFn = fn(&[f32], &[f32]) -> f32;

/// The exact distance in f64 between two raw (unprepared) vectors: the
/// reference every reported distance is checked against.
pub fn exact_distance(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    let pairs = a.iter().zip(b).map(|(&x, &y)| (f64::from(x), f64::from(y)));
    match metric {
        Metric::L2 => pairs.map(|(x, y)| (x - y) * (x - y)).sum(),
        Metric::InnerProduct => 1.0 - pairs.map(|(x, y)| x * y).sum::<f64>(),
        Metric::Cosine => {
            let (mut dot, mut na, mut nb) = (0.0, 0.0, 0.0);
            for (x, y) in pairs {
                dot += x * y;
                na += x * x;
                nb += y * y;
            }
            if na == 0.0 || nb == 0.0 {
                return 1.0;
            }
            1.0 - dot / (na.sqrt() * nb.sqrt())
        }
        Metric::Jaccard => {
            let (mut lo, mut hi) = (0.0, 0.0);
            for (x, y) in pairs {
                lo += x.min(y);
                hi += x.max(y);
            }
            if hi == 0.0 {
                0.0
            } else {
                1.0 - lo / hi
            }
        }
    }
}

/// Whether a reported distance agrees with the exact one, within the
/// contract's tolerance `1e-3 · max(1, |exact|)`.
pub fn agrees(reported: f32, exact: f64) -> bool {
    (f64::from(reported) - exact).abs() <= 1e-3 * exact.abs().max(1.0)
}

/// The vector as the kernels want it: a normalised copy for `Cosine`, the
/// same values otherwise. Callers validate first (a zero vector has no direction).
pub fn prepare(metric: Metric, v: &[f32]) -> Vec<f32> {
    let mut out = v.to_vec();
    if metric == Metric::Cosine {
        normalize(&mut out);
    }
    out
}

/// Scales `v` to unit length (left alone when it is all zeros).
///
/// Works in f64 throughout: the squares of every finite f32 (down to the
/// smallest subnormal, up to `f32::MAX`) and their sum are exact enough and
/// finite there, and each component is divided by the norm rather than
/// multiplied by `1 / norm`, which overflows f32 for a norm below ~3e-39.
/// So every finite non-zero vector gets its direction, however tiny or huge.
pub fn normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        v.iter_mut()
            .for_each(|x| *x = (f64::from(*x) / norm) as f32);
    }
}

/// The kernel set of this CPU.
#[derive(Debug, Clone, Copy)]
pub struct Kernels {
    /// Which instruction set was chosen: `"avx2+fma"`, `"neon"` or `"scalar"`.
    pub isa: &'static str,
    /// Squared Euclidean distance.
    pub l2: DistanceFn,
    /// `1 − a·b` (inner product, and cosine on normalised vectors).
    pub ip: DistanceFn,
    /// Weighted Jaccard distance.
    pub jaccard: DistanceFn,
}

impl Kernels {
    /// The distance function for `metric` (on prepared vectors).
    pub fn for_metric(&self, metric: Metric) -> DistanceFn {
        match metric {
            Metric::L2 => self.l2,
            Metric::Cosine | Metric::InnerProduct => self.ip,
            Metric::Jaccard => self.jaccard,
        }
    }
}

/// The portable kernels, also the fallback and the reference for the SIMD ones.
pub const SCALAR: Kernels = Kernels {
    isa: "scalar",
    l2: scalar::l2,
    ip: scalar::ip,
    jaccard: scalar::jaccard,
};

/// The fastest kernels this CPU runs, detected once.
pub fn kernels() -> &'static Kernels {
    static CHOSEN: OnceLock<Kernels> = OnceLock::new();
    CHOSEN.get_or_init(detect)
}

/// The distance function for `metric` with the best kernels of this CPU.
pub fn distance_fn(metric: Metric) -> DistanceFn {
    kernels().for_metric(metric)
}

/// Vectors at least this long use the 16-lane (AVX-512) kernels where the
/// CPU has them. Shorter ones keep the 8-lane kernels: measured here (an AMD
/// EPYC with AVX-512), the wide kernels made 384-d searches faster
/// (native/hnswlib QPS 0.95x -> 1.09x) and 50-d and 64-d ones slower
/// (1.13x -> 0.99x, 1.14x -> 0.97x), where a masked tail is a large share.
pub const WIDE_MIN_DIM: usize = 128;

/// The 16-lane kernels, where this CPU has AVX-512 (F) besides AVX2 + FMA.
pub fn wide_kernels() -> Option<&'static Kernels> {
    static CHOSEN: OnceLock<Option<Kernels>> = OnceLock::new();
    CHOSEN
        .get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if !force_scalar() && !no_wide() && x86_512::runs_here() {
                return Some(x86_512::KERNELS);
            }
            None
        })
        .as_ref()
}

/// Whether `VECSEARCH_FORCE_SCALAR` is set: every kernel set then gives
/// way to the portable one (to compare them, or to rule SIMD out).
pub fn force_scalar() -> bool {
    std::env::var_os("VECSEARCH_FORCE_SCALAR").is_some()
}

/// Whether `VECSEARCH_NO_AVX512` is set: long vectors then keep the 8-lane
/// kernels too, as on a CPU without AVX-512 (to measure what such a CPU
/// gets, on one that has it).
pub fn no_wide() -> bool {
    std::env::var_os("VECSEARCH_NO_AVX512").is_some()
}

/// The distance function for `metric` on vectors of `dim` components: the
/// wide kernels from [`WIDE_MIN_DIM`] on, where the CPU has them.
pub fn distance_fn_for(metric: Metric, dim: usize) -> DistanceFn {
    match wide_kernels() {
        Some(k) if dim >= WIDE_MIN_DIM => k.for_metric(metric),
        _ => distance_fn(metric),
    }
}

fn detect() -> Kernels {
    if force_scalar() {
        return SCALAR;
    }
    #[cfg(target_arch = "x86_64")]
    if x86::runs_here() {
        return x86::KERNELS;
    }
    #[cfg(target_arch = "aarch64")]
    {
        return neon::KERNELS;
    }
    #[allow(unreachable_code)]
    SCALAR
}

/// Every kernel set this CPU can run, the scalar one first (for tests and
/// benchmarks that compare them).
pub fn available() -> Vec<Kernels> {
    let mut out = vec![SCALAR];
    #[cfg(target_arch = "x86_64")]
    {
        if x86::runs_here() {
            out.push(x86::KERNELS);
        }
        if x86_512::runs_here() {
            out.push(x86_512::KERNELS);
        }
    }
    #[cfg(target_arch = "aarch64")]
    out.push(neon::KERNELS);
    out
}

mod scalar {
    // Four independent accumulators let the compiler vectorise and pipeline
    // even without target features.
    pub fn l2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0f32; 4];
        let mut ca = a.chunks_exact(4);
        let mut cb = b.chunks_exact(4);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for i in 0..4 {
                let d = x[i] - y[i];
                acc[i] += d * d;
            }
        }
        let tail: f32 = ca
            .remainder()
            .iter()
            .zip(cb.remainder())
            .map(|(x, y)| (x - y) * (x - y))
            .sum();
        acc.iter().sum::<f32>() + tail
    }

    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0f32; 4];
        let mut ca = a.chunks_exact(4);
        let mut cb = b.chunks_exact(4);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for i in 0..4 {
                acc[i] += x[i] * y[i];
            }
        }
        let tail: f32 = ca
            .remainder()
            .iter()
            .zip(cb.remainder())
            .map(|(x, y)| x * y)
            .sum();
        acc.iter().sum::<f32>() + tail
    }

    pub fn ip(a: &[f32], b: &[f32]) -> f32 {
        1.0 - dot(a, b)
    }

    pub fn jaccard(a: &[f32], b: &[f32]) -> f32 {
        let (mut lo, mut hi) = (0f32, 0f32);
        for (&x, &y) in a.iter().zip(b) {
            lo += x.min(y);
            hi += x.max(y);
        }
        super::jaccard_from_sums(lo, hi)
    }
}

/// The weighted Jaccard distance from its two sums, `Σmin` and `Σmax`
/// (0 when both vectors are empty): what every Jaccard kernel ends with.
#[inline]
pub fn jaccard_from_sums(lo: f32, hi: f32) -> f32 {
    if hi <= 0.0 {
        0.0
    } else {
        1.0 - lo / hi
    }
}

/// 16 lanes a step, with a masked load for the tail (no scalar loop).
/// Jaccard keeps the AVX2 kernel: it is rarely on the hot path.
#[cfg(target_arch = "x86_64")]
mod x86_512 {
    use std::arch::x86_64::*;

    /// AVX-512 (F) for these, AVX2 + FMA for the Jaccard kernel they borrow.
    pub fn runs_here() -> bool {
        super::x86::runs_here() && std::arch::is_x86_feature_detected!("avx512f")
    }

    pub const KERNELS: super::Kernels = super::Kernels {
        isa: "avx512f",
        l2,
        ip,
        jaccard: super::x86::KERNELS.jaccard,
    };

    fn l2(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: KERNELS is only chosen after detecting avx512f (and avx2,
        // fma for the Jaccard kernel it borrows).
        unsafe { sums(a, b, true) }
    }

    fn ip(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as above.
        1.0 - unsafe { sums(a, b, false) }
    }

    /// Σ(a−b)² when `l2`, else Σab.
    #[target_feature(enable = "avx512f")]
    unsafe fn sums(a: &[f32], b: &[f32], l2: bool) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let fold = |x: __m512, y: __m512, acc: __m512| {
            if l2 {
                let d = _mm512_sub_ps(x, y);
                _mm512_fmadd_ps(d, d, acc)
            } else {
                _mm512_fmadd_ps(x, y, acc)
            }
        };
        let mut i = 0;
        // SAFETY (every load below): full loads read lanes i..i+16 <= n; the
        // masked tail load reads only lanes i..n and touches no memory for
        // the masked-off ones; both slices hold at least n floats.
        while i + 32 <= n {
            acc0 = fold(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
            acc1 = fold(
                _mm512_loadu_ps(pa.add(i + 16)),
                _mm512_loadu_ps(pb.add(i + 16)),
                acc1,
            );
            i += 32;
        }
        if i + 16 <= n {
            acc0 = fold(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), acc0);
            i += 16;
        }
        if i < n {
            let m: __mmask16 = ((1u32 << (n - i)) - 1) as u16;
            acc1 = fold(
                _mm512_maskz_loadu_ps(m, pa.add(i)),
                _mm512_maskz_loadu_ps(m, pb.add(i)),
                acc1,
            );
        }
        _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1))
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Whether this CPU has what these kernels need.
    pub fn runs_here() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    pub const KERNELS: super::Kernels = super::Kernels {
        isa: "avx2+fma",
        l2,
        ip,
        jaccard,
    };

    fn l2(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: KERNELS is only chosen after detecting avx2 and fma.
        unsafe { l2_avx2(a, b) }
    }

    fn ip(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as above.
        1.0 - unsafe { dot_avx2(a, b) }
    }

    fn jaccard(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as above.
        let (lo, hi) = unsafe { minmax_avx2(a, b) };
        super::jaccard_from_sums(lo, hi)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn l2_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY (all loads below): i + 16 <= n, resp. i + 8 <= n, and both
        // slices hold at least n floats; loadu has no alignment requirement.
        while i + 16 <= n {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            let d1 = _mm256_sub_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
            );
            acc0 = _mm256_fmadd_ps(d0, d0, acc0);
            acc1 = _mm256_fmadd_ps(d1, d1, acc1);
            i += 16;
        }
        if i + 8 <= n {
            let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            acc0 = _mm256_fmadd_ps(d, d, acc0);
            i += 8;
        }
        let mut sum = hsum(_mm256_add_ps(acc0, acc1));
        while i < n {
            let d = a[i] - b[i];
            sum += d * d;
            i += 1;
        }
        sum
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: as in l2_avx2, every load is within the first n floats.
        while i + 16 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            acc1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
                acc1,
            );
            i += 16;
        }
        if i + 8 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            i += 8;
        }
        let mut sum = hsum(_mm256_add_ps(acc0, acc1));
        while i < n {
            sum += a[i] * b[i];
            i += 1;
        }
        sum
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn minmax_avx2(a: &[f32], b: &[f32]) -> (f32, f32) {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut lo = _mm256_setzero_ps();
        let mut hi = _mm256_setzero_ps();
        let mut i = 0;
        // SAFETY: as in l2_avx2, every load is within the first n floats.
        while i + 8 <= n {
            let x = _mm256_loadu_ps(pa.add(i));
            let y = _mm256_loadu_ps(pb.add(i));
            lo = _mm256_add_ps(lo, _mm256_min_ps(x, y));
            hi = _mm256_add_ps(hi, _mm256_max_ps(x, y));
            i += 8;
        }
        let (mut l, mut h) = (hsum(lo), hsum(hi));
        while i < n {
            l += a[i].min(b[i]);
            h += a[i].max(b[i]);
            i += 1;
        }
        (l, h)
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use std::arch::aarch64::*;

    pub const KERNELS: super::Kernels = super::Kernels {
        isa: "neon",
        l2,
        ip,
        jaccard,
    };

    fn l2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let mut i = 0;
        // SAFETY: NEON is part of every aarch64 target; each load reads 4
        // floats at i with i + 4 <= n, inside both slices.
        let mut sum = unsafe {
            let mut acc = vdupq_n_f32(0.0);
            while i + 4 <= n {
                let d = vsubq_f32(vld1q_f32(a.as_ptr().add(i)), vld1q_f32(b.as_ptr().add(i)));
                acc = vfmaq_f32(acc, d, d);
                i += 4;
            }
            vaddvq_f32(acc)
        };
        while i < n {
            let d = a[i] - b[i];
            sum += d * d;
            i += 1;
        }
        sum
    }

    fn ip(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let mut i = 0;
        // SAFETY: as in l2.
        let mut sum = unsafe {
            let mut acc = vdupq_n_f32(0.0);
            while i + 4 <= n {
                acc = vfmaq_f32(
                    acc,
                    vld1q_f32(a.as_ptr().add(i)),
                    vld1q_f32(b.as_ptr().add(i)),
                );
                i += 4;
            }
            vaddvq_f32(acc)
        };
        while i < n {
            sum += a[i] * b[i];
            i += 1;
        }
        1.0 - sum
    }

    fn jaccard(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let mut i = 0;
        // SAFETY: as in l2.
        let (mut lo, mut hi) = unsafe {
            let mut lo = vdupq_n_f32(0.0);
            let mut hi = vdupq_n_f32(0.0);
            while i + 4 <= n {
                let x = vld1q_f32(a.as_ptr().add(i));
                let y = vld1q_f32(b.as_ptr().add(i));
                lo = vaddq_f32(lo, vminq_f32(x, y));
                hi = vaddq_f32(hi, vmaxq_f32(x, y));
                i += 4;
            }
            (vaddvq_f32(lo), vaddvq_f32(hi))
        };
        while i < n {
            lo += a[i].min(b[i]);
            hi += a[i].max(b[i]);
            i += 1;
        }
        super::jaccard_from_sums(lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Rng;

    fn random(rng: &mut Rng, n: usize, nonneg: bool) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let x = rng.normal() as f32;
                if nonneg {
                    x.abs()
                } else {
                    x
                }
            })
            .collect()
    }

    #[test]
    fn chosen_kernels_match_the_f64_reference_at_every_length() {
        let mut rng = Rng::new(7);
        let all = available();
        assert!(all.iter().any(|k| k.isa == kernels().isa));
        if let Some(w) = wide_kernels() {
            assert!(all.iter().any(|k| k.isa == w.isa));
        }
        for k in &all {
            for n in (1..=70).chain([127, 128, 129, 300, 960]) {
                for metric in Metric::ALL {
                    let nonneg = metric == Metric::Jaccard;
                    let a = prepare(metric, &random(&mut rng, n, nonneg));
                    let b = prepare(metric, &random(&mut rng, n, nonneg));
                    let got = k.for_metric(metric)(&a, &b);
                    let want = exact_distance(metric, &a, &b);
                    assert!(
                        agrees(got, want),
                        "{} {metric} n={n}: {got} vs {want}",
                        k.isa
                    );
                }
            }
        }
    }

    #[test]
    fn jaccard_of_sets_and_of_empty_vectors() {
        let a = [1.0, 1.0, 0.0, 0.0];
        let b = [1.0, 0.0, 1.0, 0.0];
        assert!((kernels().jaccard)(&a, &b) - (1.0 - 1.0 / 3.0) < 1e-6);
        assert_eq!((kernels().jaccard)(&[0.0; 4], &[0.0; 4]), 0.0);
        assert_eq!(exact_distance(Metric::Jaccard, &[0.0; 4], &[0.0; 4]), 0.0);
    }

    /// Rule "every accepted vector stays whole", bug 1 of the reliability
    /// issue: `1 / norm` in f32 overflowed for a norm below ~3e-39, so
    /// `[1e-40, 0, 0, 0]` became `[inf, NaN, NaN, NaN]`.
    #[test]
    fn every_accepted_vector_stays_whole_when_normalised() {
        let sub = f32::from_bits(1);
        let cases: [&[f32]; 6] = [
            &[1e-40, 0.0, 0.0, 0.0],
            &[sub, 0.0, 0.0, 0.0],
            &[sub, sub, 0.0, sub],
            &[1e30, 1e30, 1e30, 1e30],
            &[f32::MAX, f32::MAX, 0.0, f32::MIN],
            &[1e-20, 1e20, 0.0, 1e-30],
        ];
        for v in cases {
            let n = prepare(Metric::Cosine, v);
            assert!(n.iter().all(|x| x.is_finite()), "{v:?} -> {n:?}");
            let len: f64 = n.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
            assert!((len - 1.0).abs() < 1e-6, "{v:?} -> length {len}");
            // The direction is kept: the exact cosine distance to the input is 0.
            assert!(
                exact_distance(Metric::Cosine, v, &n).abs() < 1e-6,
                "{v:?} -> {n:?}"
            );
        }
    }

    #[test]
    fn cosine_is_one_minus_dot_of_normalised() {
        let a = prepare(Metric::Cosine, &[3.0, 4.0]);
        let b = prepare(Metric::Cosine, &[4.0, 3.0]);
        let d = distance_fn(Metric::Cosine)(&a, &b);
        assert!((d - (1.0 - 24.0 / 25.0)).abs() < 1e-6);
    }
}

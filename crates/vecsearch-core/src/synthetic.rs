//! Seeded data for tests and benchmarks: no download, the same bytes on every machine.

use crate::Metric;

/// SplitMix64: tiny, fast and good enough for test data (not for secrets).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x853C_49E6_748F_EA9B)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Shuffles `v` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// A row-major matrix of `n` vectors of `dim` components.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    /// Components per vector.
    pub dim: usize,
    /// `n * dim` values, row after row.
    pub data: Vec<f32>,
}

impl Vectors {
    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Vector `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Every vector as its own `Vec` (the batch calls' form).
    pub fn to_rows(&self) -> Vec<Vec<f32>> {
        self.data
            .chunks_exact(self.dim)
            .map(<[f32]>::to_vec)
            .collect()
    }
}

/// `n` points in `clusters` Gaussian clusters in `dim` dimensions: centres
/// drawn from N(0, 1), points at N(0, spread²) around them. Clustered data is
/// what makes approximate search non-trivial (uniform data is all equidistant
/// in high dimensions). For `Jaccard` the values are made non-negative.
pub fn clustered(n: usize, dim: usize, clusters: usize, seed: u64, metric: Metric) -> Vectors {
    let mut rng = Rng::new(seed);
    let clusters = clusters.max(1);
    let centres: Vec<f64> = (0..clusters * dim).map(|_| rng.normal()).collect();
    let spread = 0.5;
    let mut data = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.below(clusters);
        for j in 0..dim {
            let x = centres[c * dim + j] + spread * rng.normal();
            data.push(if metric == Metric::Jaccard {
                x.abs() as f32
            } else {
                x as f32
            });
        }
    }
    Vectors { dim, data }
}

/// Exact `k` nearest neighbours of `query` among `points` by the f64
/// reference distance, ties by id: the ground truth recall is measured against.
pub fn exact_knn(
    metric: Metric,
    points: &[(u64, &[f32])],
    query: &[f32],
    k: usize,
) -> Vec<crate::Neighbor> {
    let mut all: Vec<(f64, u64)> = points
        .iter()
        .map(|(id, v)| (crate::distance::exact_distance(metric, query, v), *id))
        .collect();
    let k = k.min(all.len());
    if k == 0 {
        return Vec::new();
    }
    all.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.truncate(k);
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter()
        .map(|(d, id)| crate::Neighbor {
            id,
            distance: d as f32,
        })
        .collect()
}

/// Fraction of `truth`'s ids found in `got` (recall@k with k = `truth.len()`).
pub fn recall(got: &[crate::Neighbor], truth: &[crate::Neighbor]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let hits = truth
        .iter()
        .filter(|t| got.iter().any(|g| g.id == t.id))
        .count();
    hits as f64 / truth.len() as f64
}

//! Where a batch's new rows go in memory: near vectors in nearby slots.
//!
//! A batch of new ids is given new slots in an order that keeps near
//! vectors in consecutive slots (a tree of 2-means splits, each group cut
//! between two centres found on a sample of its members, down to groups of
//! [`LEAF`]). The graph is still linked in the caller's order; only the
//! rows' places (and so their slot numbers) change. Ids and the file
//! format are untouched.
//!
//! Why: a search reads the rows and links of nodes near the query, so in
//! this order it reads a few stretches of memory instead of rows scattered
//! through the whole index, and more of what it reads is already cached.
//! This is the reordering of "Graph Reordering for Cache-Efficient Near
//! Neighbor Search" (NeurIPS 2022), done as the rows are placed, so no copy
//! of the index is made to renumber it.
//! Measured on one build each way (`VECSEARCH_NATIVE_ORDER=0` places rows
//! in the caller's order), the same command, runs minutes apart:
//! - `vecsearch bench --filters --n 200000 --dim 96 --nq 200 --backends
//!   flat,native,hnswlib` (77 MB of rows, beyond this machine's 32 MB
//!   cache): every walk 1.17-1.48x faster (unfiltered 14,518 against
//!   11,454 QPS; hnswlib in the same runs 10,402 and 9,793), the exact
//!   scans of filters unrelated to the vectors 0.89-0.98x (their matches'
//!   slots are no longer their ids' numbers, so each is looked up);
//! - GloVe-50, 399,000 rows (`vecsearch bench --dataset glove-50 --n 399000
//!   --backends native --churn 0`): at the first ef reaching recall 0.95
//!   (128 either way), 1.06x the single-query and 1.25x the batch QPS
//!   (6,397 against 6,050; 12,983 against 10,359), builds 5% faster;
//! - minilm-384 100k and GloVe-50 100k (rows that largely fit the cache):
//!   level within the noise.

use vecsearch_core::distance::{distance_fn_for, DistanceFn};
use vecsearch_core::synthetic::Rng;
use vecsearch_core::Metric;

/// Groups this small are not split further: their rows are consecutive.
const LEAF: usize = 64;

/// Members sampled (with repeats) to place a group's two centres.
const SAMPLE: usize = 256;

/// Rounds of 2-means on the sample.
const ROUNDS: usize = 4;

/// Groups at least this large are split on two threads.
const PARALLEL: usize = 1 << 15;

/// A permutation of `0..vectors.len()`: the order in which to place them,
/// near vectors next to each other. Deterministic for the same vectors.
pub(crate) fn locality_order(vectors: &[Vec<f32>], threads: usize) -> Vec<u32> {
    let mut keyed: Vec<(f32, u32)> = (0..vectors.len() as u32).map(|i| (0.0, i)).collect();
    let dim = vectors.first().map_or(0, Vec::len);
    let k = Kernels {
        l2: distance_fn_for(Metric::L2, dim),
        ip: distance_fn_for(Metric::InnerProduct, dim),
    };
    split(
        &k,
        vectors,
        &mut keyed,
        0x9E37_79B9_7F4A_7C15,
        threads.max(1),
    );
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// The SIMD kernels for the batch's dimension, chosen once.
struct Kernels {
    l2: DistanceFn,
    /// `1 - a . b`.
    ip: DistanceFn,
}

impl Kernels {
    fn dot(&self, a: &[f32], b: &[f32]) -> f32 {
        1.0 - (self.ip)(a, b)
    }
}

/// Orders `group` (the second of each pair: an index into `vectors`; the
/// first is scratch for its projection) so that near vectors are adjacent.
fn split(k: &Kernels, vectors: &[Vec<f32>], group: &mut [(f32, u32)], seed: u64, threads: usize) {
    if group.len() <= LEAF {
        return;
    }
    let mut rng = Rng::new(seed);
    let Some((dir, cut)) = two_means(k, vectors, group, &mut rng) else {
        return; // every sampled member is the same point
    };
    for (p, i) in group.iter_mut() {
        *p = k.dot(&vectors[*i as usize], &dir);
    }
    // The members nearer the first centre go first, but neither side
    // smaller than a sixteenth (one far outlier would otherwise cost a
    // level per point).
    let n = group.len();
    let nearer = group.iter().filter(|(p, _)| *p < cut).count();
    let mid = nearer.clamp(n / 16, n - n / 16);
    group.select_nth_unstable_by(mid, |a, b| a.0.total_cmp(&b.0));
    let (lo, hi) = group.split_at_mut(mid);
    let (s1, s2) = (rng.next_u64(), rng.next_u64());
    if threads > 1 && lo.len().min(hi.len()) >= PARALLEL {
        let half = threads / 2;
        std::thread::scope(|s| {
            s.spawn(|| split(k, vectors, lo, s1, half.max(1)));
            split(k, vectors, hi, s2, threads - half);
        });
    } else {
        split(k, vectors, lo, s1, 1);
        split(k, vectors, hi, s2, 1);
    }
}

/// Two centres of `group` by a few rounds of 2-means on a sample of its
/// members (started from two far-apart ones): the line between them and
/// the cut half-way along it, as `(c2 - c1, (|c2|^2 - |c1|^2) / 2)`, so a
/// member `x` is nearer `c1` when `x . dir < cut`. A median cut instead
/// would run through the middle of whatever lay between the two far
/// points, splitting those groups; 2-means cuts between groups. `None`
/// when the sample is one point.
fn two_means(
    k: &Kernels,
    vectors: &[Vec<f32>],
    group: &[(f32, u32)],
    rng: &mut Rng,
) -> Option<(Vec<f32>, f32)> {
    let n = group.len();
    let sample: Vec<&[f32]> = (0..SAMPLE.min(n))
        .map(|_| vectors[group[rng.below(n)].1 as usize].as_slice())
        .collect();
    let l2 = k.l2;
    let farthest = |from: &[f32]| {
        sample
            .iter()
            .copied()
            .max_by(|x, y| l2(from, x).total_cmp(&l2(from, y)))
    };
    let a = farthest(sample[0])?;
    let b = farthest(a)?;
    let (mut c1, mut c2) = (a.to_vec(), b.to_vec());
    for _ in 0..ROUNDS {
        let dim = c1.len();
        let (mut s1, mut s2) = (vec![0.0f32; dim], vec![0.0f32; dim]);
        let (mut n1, mut n2) = (0usize, 0usize);
        for x in &sample {
            let (sum, count) = if l2(x, &c1) <= l2(x, &c2) {
                (&mut s1, &mut n1)
            } else {
                (&mut s2, &mut n2)
            };
            sum.iter_mut().zip(x.iter()).for_each(|(s, v)| *s += v);
            *count += 1;
        }
        if n1 == 0 || n2 == 0 {
            break;
        }
        c1 = s1.into_iter().map(|v| v / n1 as f32).collect();
        c2 = s2.into_iter().map(|v| v / n2 as f32).collect();
    }
    let dir: Vec<f32> = c2.iter().zip(&c1).map(|(x, y)| x - y).collect();
    let cut = (k.dot(&c2, &c2) - k.dot(&c1, &c1)) / 2.0;
    dir.iter().any(|&d| d != 0.0).then_some((dir, cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points on 8 well-separated clusters, dealt out at random: in the
    /// order, each cluster's members must lie in few runs.
    #[test]
    fn clusters_come_out_in_few_runs_and_every_index_once() {
        let (clusters, per, dim) = (8usize, 500usize, 16usize);
        let mut points = Vec::new();
        let mut labels = Vec::new();
        let mut rng = Rng::new(7);
        for _ in 0..clusters * per {
            let c = rng.below(clusters);
            let v: Vec<f32> = (0..dim)
                .map(|d| {
                    let centre = if d == c { 100.0 } else { 0.0 };
                    centre + rng.uniform() as f32
                })
                .collect();
            points.push(v);
            labels.push(c);
        }
        for threads in [1, 2] {
            let order = locality_order(&points, threads);
            let mut seen = order.clone();
            seen.sort_unstable();
            assert_eq!(seen, (0..points.len() as u32).collect::<Vec<_>>());
            let runs = 1 + order
                .windows(2)
                .filter(|w| labels[w[0] as usize] != labels[w[1] as usize])
                .count();
            // A random order has ~3,500 label changes; one run per cluster
            // is ideal, and a cut through a cluster's median adds one.
            assert!(runs <= 3 * clusters, "{runs} runs, threads {threads}");
            assert_eq!(order, locality_order(&points, threads), "deterministic");
        }
    }

    #[test]
    fn tiny_and_degenerate_batches_keep_every_index() {
        assert!(locality_order(&[], 2).is_empty());
        let same = vec![vec![1.0f32, 2.0]; 1000];
        let mut o = locality_order(&same, 2);
        o.sort_unstable();
        assert_eq!(o, (0..1000).collect::<Vec<_>>());
    }
}

//! `degenerate_vectors`: tiny, subnormal, huge and mixed-magnitude vectors
//! ("every accepted vector stays whole").

use vecsearch_core::distance::exact_distance;
use vecsearch_core::{Error, IndexSpec, Metric, SearchParams, VectorIndex};

use super::{caps, fail, open, Case, TempDir};
use crate::data::same_vector;
use crate::Harness;

const DIM: usize = 4;

fn degenerate(metric: Metric) -> Vec<Vec<f32>> {
    let sub = f32::from_bits(1); // the smallest subnormal
    let mut v = vec![
        vec![1e-40, 0.0, 0.0, 0.0],
        vec![sub, 0.0, 0.0, 0.0],
        vec![sub, sub, 0.0, sub],
        vec![1e-38, 2e-39, 0.0, 1e-45],
        vec![1e30; DIM],
        vec![1e19, 1e19, 0.0, 0.0],
        vec![3e38, 1e-38, 0.0, 1.0],
        vec![f32::MAX, 0.0, 0.0, 0.0],
        vec![f32::MAX, f32::MAX, f32::MAX, f32::MAX],
        vec![1e-20, 1e20, 0.0, 1e-30],
        vec![f32::MIN_POSITIVE, 0.0, 1.0, 0.0],
    ];
    if metric != Metric::Jaccard {
        v.push(vec![-1e-41, 0.0, 0.0, 0.0]);
        v.push(vec![-3e38, 3e38, 0.0, -1e-40]);
        v.push(vec![f32::MIN, 0.0, 0.0, 0.0]);
    }
    v
}

/// Ordinary points the degenerate ones must live beside.
fn ordinary(metric: Metric) -> Vec<Vec<f32>> {
    (0..24)
        .map(|i| {
            (0..DIM)
                .map(|d| {
                    let x = ((i * 7 + d * 3) % 11) as f32 / 5.0 - 1.0;
                    if metric == Metric::Jaccard {
                        x.abs() + 0.1
                    } else {
                        x
                    }
                })
                .collect()
        })
        .collect()
}

/// Each degenerate vector is either accepted and then correct (finite
/// distances, found by itself, kept whole through save and open) or refused
/// with `InvalidVector`, leaving the index as it was.
pub async fn degenerate_vectors(h: &Harness) -> Case {
    let c = caps(h).await?;
    for metric in [
        Metric::L2,
        Metric::Cosine,
        Metric::InnerProduct,
        Metric::Jaccard,
    ] {
        if c.serves(metric) {
            one_metric(h, metric).await?;
        }
    }
    Ok(())
}

async fn one_metric(h: &Harness, metric: Metric) -> Case {
    let idx = h.create(IndexSpec::new(DIM, metric)).await?;
    let base = ordinary(metric);
    let base_ids: Vec<u64> = (0..base.len() as u64).map(|i| 10 + i).collect();
    idx.add_batch(&base_ids, &base).await?;
    idx.sync().await?;
    let mut accepted: Vec<(u64, Vec<f32>)> = base_ids.iter().copied().zip(base.clone()).collect();
    for (i, v) in degenerate(metric).into_iter().enumerate() {
        let id = 1000 + i as u64;
        // Counted once earlier writes show (an eventually consistent server).
        idx.sync().await?;
        let before = idx.len().await?;
        match idx.add(id, &v).await {
            Ok(()) => accepted.push((id, v)),
            Err(Error::InvalidVector(_)) => {
                idx.sync().await?;
                if idx.len().await? != before || idx.get(id).await?.is_some() {
                    return Err(fail(format!("{metric}: refusing {v:?} changed the index")));
                }
            }
            Err(e) => {
                return Err(fail(format!(
                    "{metric}: {v:?} gave {e}, expected Ok or InvalidVector"
                )))
            }
        }
    }
    idx.sync().await?;
    check_whole(&*idx, metric, &accepted).await?;
    if h.opener.is_some() && idx.capabilities().persistence {
        let dir = TempDir::new("degenerate")?;
        let path = dir.0.join("d.vs");
        idx.save(&path).await?;
        let back = open(h, &path, idx.spec().clone()).await?;
        check_whole(&*back, metric, &accepted).await?;
    }
    Ok(())
}

async fn check_whole(idx: &dyn VectorIndex, metric: Metric, accepted: &[(u64, Vec<f32>)]) -> Case {
    let n = accepted.len();
    if idx.len().await? != n {
        return Err(fail(format!("{metric}: len is not {n}")));
    }
    for (id, v) in accepted {
        let got = idx.get(*id).await?;
        match got {
            Some(g) if g.iter().all(|x| x.is_finite()) && same_vector(metric, &g, v) => {}
            other => return Err(fail(format!("{metric}: get({id}) of {v:?} gave {other:?}"))),
        }
        // Found by itself, among every accepted vector, with finite distances.
        for ef in [None, Some(n)] {
            let p = SearchParams {
                ef,
                ..SearchParams::default()
            };
            let hits = idx.search(v, n, &p).await?;
            if hits.len() != n || hits.iter().any(|x| !x.distance.is_finite()) {
                return Err(fail(format!(
                    "{metric}: searching {v:?} gave {} hits, some not finite: {hits:?}",
                    hits.len()
                )));
            }
            if metric == Metric::InnerProduct {
                // The nearest by inner product is the longest vector that way,
                // not the vector itself: only finiteness is asked here.
                continue;
            }
            let self_d = exact_distance(metric, v, v);
            let best = exact_distance(metric, v, accepted_vec(accepted, hits[0].id));
            let found = hits.iter().take(3).any(|x| x.id == *id) || best <= self_d + 1e-6;
            if !found {
                return Err(fail(format!(
                    "{metric}: a search for {v:?} (id {id}) does not find it: {:?}",
                    &hits[..3.min(hits.len())]
                )));
            }
        }
    }
    Ok(())
}

fn accepted_vec(accepted: &[(u64, Vec<f32>)], id: u64) -> &[f32] {
    accepted
        .iter()
        .find(|(i, _)| *i == id)
        .map_or(&[][..], |(_, v)| v.as_slice())
}

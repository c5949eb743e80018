//! Distances in the contract's convention, per metric, and metrics refused at creation.

#[allow(unused_imports)]
use super::*;

async fn distances_for(h: &Harness, metric: Metric) -> Case {
    let idx = fresh(h, 24, metric).await?;
    let set = Set::new(400, 20, 24, metric, 11);
    fill(&*idx, &set.ids, &set.points).await?;
    let by_id: std::collections::HashMap<u64, &Vec<f32>> =
        set.ids.iter().copied().zip(&set.points).collect();
    for q in &set.queries {
        let got = idx.search(q, 10, &default_params()).await?;
        ensure!(got.len() == 10, "expected 10 results, got {}", got.len());
        check_sorted(&got)?;
        for n in &got {
            let v = by_id
                .get(&n.id)
                .ok_or_else(|| fail(format!("unknown id {} returned", n.id)))?;
            let exact = exact_distance(metric, q, v);
            ensure!(
                agrees(n.distance, exact),
                "id {}: reported {} but the exact {metric} distance is {exact}",
                n.id,
                n.distance
            );
        }
    }
    Ok(())
}

/// Reported L2 distances equal the exact squared Euclidean distance.
pub async fn distances_l2(h: &Harness) -> Case {
    distances_for(h, Metric::L2).await
}

/// Reported cosine distances equal `1 − cos`.
pub async fn distances_cosine(h: &Harness) -> Case {
    distances_for(h, Metric::Cosine).await
}

/// Reported inner-product distances equal `1 − a·b`.
pub async fn distances_inner_product(h: &Harness) -> Case {
    distances_for(h, Metric::InnerProduct).await
}

/// Reported Jaccard distances equal the weighted Jaccard distance.
pub async fn distances_jaccard(h: &Harness) -> Case {
    distances_for(h, Metric::Jaccard).await
}

/// Every storage kind the backend does not declare fails at creation with
/// `Unsupported` (and one it declares is created).
pub async fn unsupported_storage_fails_at_creation(h: &Harness) -> Case {
    let c = caps(h).await?;
    if !c.serves_storage(Storage::F32) {
        return Err(fail("every backend stores f32"));
    }
    let missing: Vec<Storage> = Storage::ALL
        .into_iter()
        .filter(|k| !c.serves_storage(*k))
        .collect();
    if missing.is_empty() {
        return Err(Why::Skip("the backend serves every storage kind".into()));
    }
    for k in missing {
        let spec = IndexSpec::new(8, Metric::L2).with_storage(k);
        match (h.factory)(spec).await {
            Err(Error::Unsupported(_)) => {}
            Err(e) => return Err(fail(format!("{k}: expected Unsupported, got {e}"))),
            Ok(_) => {
                return Err(fail(format!(
                    "{k}: created an index for an undeclared storage kind"
                )))
            }
        }
    }
    Ok(())
}

/// A metric the backend does not declare fails at creation with `Unsupported`.
pub async fn unsupported_metric_fails_at_creation(h: &Harness) -> Case {
    let c = caps(h).await?;
    let missing: Vec<Metric> = Metric::ALL.into_iter().filter(|m| !c.serves(*m)).collect();
    if missing.is_empty() {
        return Err(Why::Skip("the backend serves every metric".into()));
    }
    for m in missing {
        match h.create(IndexSpec::new(8, m)).await {
            Err(Error::Unsupported(_)) => {}
            Err(e) => return Err(fail(format!("{m}: expected Unsupported, got {e}"))),
            Ok(_) => {
                return Err(fail(format!(
                    "{m}: created an index for an undeclared metric"
                )))
            }
        }
    }
    Ok(())
}

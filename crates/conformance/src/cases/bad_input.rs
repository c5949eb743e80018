//! Bad input: a clear error, and nothing changes.

#[allow(unused_imports)]
use super::*;

async fn expect_rejected_add(
    h: &Harness,
    metric: Metric,
    bad: Vec<f32>,
    is_right: fn(&Error) -> bool,
    what: &str,
) -> Case {
    let idx = fresh(h, 8, metric).await?;
    let good = vec![vec![0.5f32; 8], vec![1.5f32; 8]];
    fill(&*idx, &[1, 2], &good).await?;
    match idx.add(3, &bad).await {
        Err(e) if is_right(&e) => {}
        other => return Err(fail(format!("add with {what}: wrong outcome {other:?}"))),
    }
    match idx.add(1, &bad).await {
        Err(e) if is_right(&e) => {}
        other => return Err(fail(format!("upsert with {what}: wrong outcome {other:?}"))),
    }
    match idx.add_batch(&[4, 5], &[vec![2.5f32; 8], bad]).await {
        Err(e) if is_right(&e) => {}
        other => return Err(fail(format!("batch with {what}: wrong outcome {other:?}"))),
    }
    idx.sync().await?;
    ensure!(len(&*idx).await? == 2, "a rejected write changed len");
    ensure!(
        idx.get(4).await?.is_none(),
        "the good half of a rejected batch was written"
    );
    let v1 = idx.get(1).await?.ok_or_else(|| fail("id 1 vanished"))?;
    ensure!(
        same_vector(metric, &v1, &good[0]),
        "a rejected upsert changed the stored vector"
    );
    Ok(())
}

/// Wrong length: `DimensionMismatch`, nothing written.
pub async fn bad_input_wrong_dimension(h: &Harness) -> Case {
    let is = |e: &Error| {
        matches!(
            e,
            Error::DimensionMismatch {
                expected: 8,
                got: 7
            }
        )
    };
    expect_rejected_add(h, Metric::L2, vec![1.0; 7], is, "7 components").await
}

/// NaN: `InvalidVector`, nothing written.
pub async fn bad_input_nan(h: &Harness) -> Case {
    let mut v = vec![1.0f32; 8];
    v[3] = f32::NAN;
    expect_rejected_add(
        h,
        Metric::L2,
        v,
        |e| matches!(e, Error::InvalidVector(_)),
        "NaN",
    )
    .await
}

/// ±infinity: `InvalidVector`, nothing written.
pub async fn bad_input_infinity(h: &Harness) -> Case {
    for inf in [f32::INFINITY, f32::NEG_INFINITY] {
        let mut v = vec![1.0f32; 8];
        v[7] = inf;
        expect_rejected_add(
            h,
            Metric::L2,
            v,
            |e| matches!(e, Error::InvalidVector(_)),
            "infinity",
        )
        .await?;
    }
    Ok(())
}

/// An all-zero vector under cosine: `InvalidVector`, nothing written.
pub async fn bad_input_zero_vector_cosine(h: &Harness) -> Case {
    let is = |e: &Error| matches!(e, Error::InvalidVector(_));
    expect_rejected_add(h, Metric::Cosine, vec![0.0; 8], is, "a zero vector").await
}

/// A negative component under Jaccard: `InvalidVector`, nothing written.
pub async fn bad_input_negative_jaccard(h: &Harness) -> Case {
    let mut v = vec![1.0f32; 8];
    v[0] = -0.5;
    let is = |e: &Error| matches!(e, Error::InvalidVector(_));
    expect_rejected_add(h, Metric::Jaccard, v, is, "a negative component").await
}

/// A batch whose ids and vectors differ in number is rejected whole.
pub async fn bad_batch_changes_nothing(h: &Harness) -> Case {
    let idx = fresh(h, 4, Metric::L2).await?;
    match idx
        .add_batch(&[1, 2, 3], &[vec![1.0; 4], vec![2.0; 4]])
        .await
    {
        Err(Error::InvalidArgument(_)) => {}
        other => {
            return Err(fail(format!(
                "3 ids, 2 vectors: expected InvalidArgument, got {other:?}"
            )))
        }
    }
    idx.sync().await?;
    ensure!(len(&*idx).await? == 0, "a rejected batch wrote something");
    Ok(())
}

/// A bad query is rejected with the same variants, in single and batch search.
pub async fn bad_query_is_rejected(h: &Harness) -> Case {
    let idx = fresh(h, 8, Metric::L2).await?;
    fill(&*idx, &[1], &[vec![1.0; 8]]).await?;
    let p = default_params();
    ensure!(
        matches!(
            idx.search(&[1.0; 3], 1, &p).await,
            Err(Error::DimensionMismatch { .. })
        ),
        "a short query was not DimensionMismatch"
    );
    let mut nan = vec![1.0f32; 8];
    nan[0] = f32::NAN;
    ensure!(
        matches!(idx.search(&nan, 1, &p).await, Err(Error::InvalidVector(_))),
        "a NaN query was accepted"
    );
    ensure!(
        matches!(
            idx.search_batch(&[vec![1.0; 8], nan], 1, &p).await,
            Err(Error::InvalidVector(_))
        ),
        "a batch with a NaN query was accepted"
    );
    Ok(())
}

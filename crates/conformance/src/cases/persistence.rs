//! Saving and opening, and damaged, foreign or crafted files.

#[allow(unused_imports)]
use super::*;

struct Saved {
    _dir: TempDir,
    path: PathBuf,
    set: Set,
}

async fn saved_index(h: &Harness) -> Result<(Saved, Box<dyn VectorIndex>), Why> {
    if h.opener.is_none() || !caps(h).await?.persistence {
        return Err(Why::Skip("no persistence".into()));
    }
    let idx = fresh(h, 16, Metric::Cosine).await?;
    let set = Set::new(2000, 20, 16, Metric::Cosine, 61);
    fill(&*idx, &set.ids, &set.points).await?;
    for i in (0..2000).step_by(7) {
        idx.delete(set.ids[i]).await?;
    }
    let dir = TempDir::new(h.name())?;
    let path = dir.0.join("index.vs");
    idx.save(&path).await?;
    Ok((
        Saved {
            _dir: dir,
            path,
            set,
        },
        idx,
    ))
}

/// A saved and reopened index answers every query exactly as before.
pub async fn save_open_round_trip(h: &Harness) -> Case {
    let (s, idx) = saved_index(h).await?;
    let back = open(h, &s.path, idx.spec().clone()).await?;
    ensure!(
        len(&*back).await? == len(&*idx).await?,
        "len differs after reopening"
    );
    for q in &s.set.queries {
        let (a, b) = (
            idx.search(q, 10, &default_params()).await?,
            back.search(q, 10, &default_params()).await?,
        );
        ensure!(a == b, "answers differ after reopening: {a:?} vs {b:?}");
    }
    for id in s.set.ids.iter().take(50) {
        ensure!(
            idx.get(*id).await? == back.get(*id).await?,
            "get({id}) differs after reopening"
        );
    }
    back.add(1, &[1.0; 16]).await?;
    ensure!(
        back.get(1).await?.is_some(),
        "a reopened index does not take writes"
    );
    Ok(())
}

/// Saving twice over the same path works and leaves no temporary file.
pub async fn save_is_atomic_and_repeatable(h: &Harness) -> Case {
    let (s, idx) = saved_index(h).await?;
    idx.add(77, &[2.0; 16]).await?;
    idx.save(&s.path).await?;
    let names: Vec<String> = std::fs::read_dir(s.path.parent().unwrap_or(Path::new(".")))
        .map_err(|e| fail(format!("listing the directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    ensure!(
        names == ["index.vs"],
        "the directory holds {names:?} after saving, not just the index"
    );
    let back = open(h, &s.path, idx.spec().clone()).await?;
    ensure!(
        back.get(77).await?.is_some(),
        "the second save did not replace the first"
    );
    Ok(())
}

/// Opening with another dim or metric is a clear error, not a wrong index.
pub async fn open_checks_dim_and_metric(h: &Harness) -> Case {
    let (s, _idx) = saved_index(h).await?;
    for spec in [
        IndexSpec::new(15, Metric::Cosine),
        IndexSpec::new(16, Metric::L2),
    ] {
        match open(h, &s.path, spec.clone()).await {
            Err(Error::InvalidArgument(_)) | Err(Error::Corrupt(_)) => {}
            other => {
                return Err(fail(format!(
                    "open as {spec:?}: expected an error, got {:?}",
                    other.map(|_| ())
                )))
            }
        }
    }
    Ok(())
}

async fn expect_corrupt(h: &Harness, path: &Path, bytes: &[u8], what: &str) -> Case {
    std::fs::write(path, bytes).map_err(|e| fail(format!("writing the test file: {e}")))?;
    match open(h, path, IndexSpec::new(16, Metric::Cosine)).await {
        Err(Error::Corrupt(_)) | Err(Error::Io { .. }) => Ok(()),
        Err(e) => Err(fail(format!("{what}: expected Corrupt or Io, got {e}"))),
        Ok(_) => Err(fail(format!("{what}: opened without error"))),
    }
}

/// An empty file is `Corrupt`.
pub async fn corrupt_empty_file(h: &Harness) -> Case {
    let (s, _idx) = saved_index(h).await?;
    expect_corrupt(h, &s.path, &[], "an empty file").await
}

/// Every truncation is `Corrupt`.
pub async fn corrupt_truncated_file(h: &Harness) -> Case {
    let (s, _idx) = saved_index(h).await?;
    let good = read(&s.path)?;
    for cut in [
        1,
        8,
        47,
        48,
        100,
        good.len() / 2,
        good.len() - 4,
        good.len() - 1,
    ] {
        expect_corrupt(
            h,
            &s.path,
            &good[..cut.min(good.len() - 1)],
            &format!("cut at {cut}"),
        )
        .await?;
    }
    Ok(())
}

/// Flipped bits anywhere are `Corrupt`.
pub async fn corrupt_bit_flips(h: &Harness) -> Case {
    let (s, _idx) = saved_index(h).await?;
    let good = read(&s.path)?;
    let mut rng = Rng::new(67);
    for i in 0..64 {
        let mut bad = good.clone();
        // The first 48 flips hit the header and the start of the body, where
        // the structure is; the rest land anywhere.
        let pos = if i < 48 {
            rng.below(good.len().min(256))
        } else {
            rng.below(good.len())
        };
        bad[pos] ^= 1 << rng.below(8);
        expect_corrupt(h, &s.path, &bad, &format!("a bit flipped at byte {pos}")).await?;
    }
    Ok(())
}

/// Random bytes, bare or behind the right magic, are `Corrupt`.
pub async fn corrupt_random_bytes(h: &Harness) -> Case {
    let (s, _idx) = saved_index(h).await?;
    let good = read(&s.path)?;
    let mut rng = Rng::new(71);
    for size in [16, 48, 49, 4096, 100_000] {
        let mut bytes: Vec<u8> = (0..size).map(|_| rng.next_u64() as u8).collect();
        expect_corrupt(h, &s.path, &bytes, &format!("{size} random bytes")).await?;
        bytes[..8.min(size)].copy_from_slice(&good[..8.min(size)]);
        expect_corrupt(
            h,
            &s.path,
            &bytes,
            &format!("the magic and {size} random bytes"),
        )
        .await?;
    }
    Ok(())
}

/// Another backend's file is `Corrupt` (named as such), not misread.
pub async fn corrupt_foreign_file(h: &Harness) -> Case {
    let (s, _idx) = saved_index(h).await?;
    let own_magic: [u8; 8] = read(&s.path)?
        .get(..8)
        .and_then(|m| m.try_into().ok())
        .ok_or_else(|| fail("the saved file is shorter than 8 bytes"))?;
    if &own_magic != b"VSFLAT01" {
        let flat = FlatIndex::new(IndexSpec::new(16, Metric::Cosine))?;
        fill(&flat, &s.set.ids, &s.set.points).await?;
        flat.save(&s.path).await?;
    } else {
        let header = Header {
            magic: *b"VSNATIVE",
            version: 1,
            metric: Metric::Cosine,
            dim: 16,
            count: 0,
        };
        persist::write_atomic(&s.path, &header, &[0u8; 64])?;
    }
    let foreign = read(&s.path)?;
    expect_corrupt(h, &s.path, &foreign, "another backend's file").await
}

/// Bodies altered behind valid checksums (so only the backend's own field
/// checks stand between them and the engine) never crash, abort or hang; an
/// index that opens anyway answers searches with well-formed results.
pub async fn crafted_body_never_crashes(h: &Harness) -> Case {
    let (s, _idx) = saved_index(h).await?;
    let good = read(&s.path)?;
    let body_len = good.len() - persist::HEADER_LEN;
    let mut rng = Rng::new(73);
    let patterns: [u64; 5] = [u64::MAX, u32::MAX as u64, 1 << 40, 0, 0x7FFF_FFFF];
    for i in 0..80 {
        let mut body = good[persist::HEADER_LEN..].to_vec();
        // Overwrite an aligned word near the start (counts, offsets) or anywhere.
        let limit = if i % 2 == 0 {
            body_len.min(512)
        } else {
            body_len
        };
        let pos = (rng.below(limit.saturating_sub(8).max(1)) / 4) * 4;
        let word = patterns[i % patterns.len()].to_le_bytes();
        let end = (pos + 8).min(body.len());
        body[pos..end].copy_from_slice(&word[..end - pos]);
        let header = Header {
            magic: good[..8].try_into().map_err(|_| fail("short file"))?,
            version: u32::from_le_bytes([good[8], good[9], good[10], good[11]]),
            metric: Metric::Cosine,
            dim: 16,
            count: u64::from_le_bytes(good[24..32].try_into().map_err(|_| fail("short file"))?),
        };
        persist::write_atomic(&s.path, &header, &body)?;
        if let Ok(idx) = open(h, &s.path, IndexSpec::new(16, Metric::Cosine)).await {
            for q in s.set.queries.iter().take(3) {
                if let Ok(got) = idx.search(q, 10, &default_params()).await {
                    ensure!(
                        got.len() <= 10,
                        "a crafted index returned {} results for k = 10",
                        got.len()
                    );
                }
            }
        }
    }
    Ok(())
}

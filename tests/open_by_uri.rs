//! The facade: opening by URI, the blocking wrapper, and the errors for
//! schemes that are unknown or not compiled in.

use vecsearch::{Error, IndexSpec, Metric, SearchParams};

#[test]
fn flat_in_memory_and_on_disk() {
    let spec = IndexSpec::new(2, Metric::L2);
    let dir = std::env::temp_dir().join(format!("vecsearch-facade-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a.idx");
    let uri = format!("flat:{}", file.display());

    // No file yet: opening it is an error unless creation is asked for.
    assert!(matches!(
        vecsearch::open_blocking(&uri, spec.clone()),
        Err(Error::Io { .. })
    ));
    let idx = vecsearch::open_blocking(&format!("{uri}?mode=rwc"), spec.clone()).unwrap();
    idx.add_batch(&[1, 2], &[vec![0.0, 0.0], vec![5.0, 5.0]])
        .unwrap();
    idx.save(&file).unwrap();

    let back = vecsearch::open_blocking(&uri, spec.clone()).unwrap();
    assert_eq!(back.len().unwrap(), 2);
    let hits = back
        .search(&[4.0, 4.0], 1, &SearchParams::default())
        .unwrap();
    assert_eq!(hits[0].id, 2);
    assert_eq!(back.backend(), "flat");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_uris_say_what_to_do() {
    let spec = IndexSpec::new(2, Metric::L2);
    assert!(matches!(
        vecsearch::open_blocking("nonsense", spec.clone()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        vecsearch::open_blocking("redis://x", spec.clone()),
        Err(Error::InvalidArgument(_))
    ));
    for (uri, feature) in [
        ("native:", "native"),
        ("hnswlib:", "hnswlib"),
        ("qdrant://h:1/c", "remote"),
    ] {
        let compiled = match feature {
            "native" => cfg!(feature = "native"),
            "hnswlib" => cfg!(feature = "hnswlib"),
            _ => cfg!(feature = "remote"),
        };
        if !compiled {
            match vecsearch::open_blocking(uri, spec.clone()) {
                Err(Error::Unsupported(m)) => assert!(m.contains(feature), "{m}"),
                other => panic!("{uri}: expected Unsupported, got {:?}", other.map(|_| ())),
            }
        }
    }
}

#[test]
fn a_bad_spec_is_rejected_at_open() {
    assert!(matches!(
        vecsearch::open_blocking("flat:", IndexSpec::new(0, Metric::L2)),
        Err(Error::InvalidArgument(_))
    ));
}

/// A typo in a path is an error naming the path, for every local backend,
/// never a new empty index (which the next save would write over the data).
#[test]
fn a_missing_file_is_not_found_unless_created() {
    let spec = IndexSpec::new(2, Metric::L2);
    let missing = std::env::temp_dir().join("vecsearch-no-such-dir/typo.vs");
    for scheme in ["flat", "native", "hnswlib"] {
        let uri = format!("{scheme}:{}", missing.display());
        match vecsearch::open_blocking(&uri, spec.clone()) {
            Err(Error::Io { context, source }) => {
                assert!(context.contains("typo.vs"), "{context}");
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            Err(Error::Unsupported(_)) => {} // backend not compiled in
            other => panic!(
                "{uri}: expected a not-found error, got {:?}",
                other.map(|_| ())
            ),
        }
        assert!(
            vecsearch::open_blocking(&format!("{uri}?mode=rwc"), spec.clone())
                .map(|_| ())
                .or_else(|e| match e {
                    Error::Unsupported(_) => Ok(()),
                    e => Err(e),
                })
                .is_ok()
        );
        assert!(matches!(
            vecsearch::open_blocking(&format!("{uri}?mode=bogus"), spec.clone()),
            Err(Error::InvalidArgument(_) | Error::Unsupported(_))
        ));
    }
}

/// `open_blocking` of a remote URI from a plain thread with no Tokio
/// runtime, for a new collection and then the existing one (issue 13: it
/// panicked for want of a reactor). Runs where `VECSEARCH_MILVUS_URL` /
/// `VECSEARCH_QDRANT_URL` name a server (`scripts/test.sh` starts both).
#[cfg(feature = "remote")]
#[test]
fn open_blocking_remote_without_a_runtime() {
    for var in ["VECSEARCH_MILVUS_URL", "VECSEARCH_QDRANT_URL"] {
        let Ok(base) = std::env::var(var) else {
            println!("{var} not set: skipped");
            continue;
        };
        let uri = format!(
            "{}/vstest_facade_{}",
            base.trim_end_matches('/'),
            std::process::id()
        );
        let spec = IndexSpec::new(8, Metric::L2);
        for round in 0..2 {
            let idx = vecsearch::open_blocking(&uri, spec.clone())
                .unwrap_or_else(|e| panic!("{uri}, open {round}: {e}"));
            let v: Vec<f32> = (0..8).map(|i| (i + round) as f32).collect();
            idx.add(round as u64 + 1, &v).unwrap();
            vecsearch::backend::exec::block_on(idx.inner().sync()).unwrap();
            let hits = idx.search(&v, 1, &SearchParams::default()).unwrap();
            assert_eq!(hits[0].id, round as u64 + 1, "{uri}");
            assert_eq!(idx.len().unwrap(), round + 1, "{uri}");
        }
        let dropped =
            vecsearch::backend::exec::block_on(vecsearch::remote::drop_collection(&uri)).unwrap();
        assert!(dropped, "{uri}");
    }
}

/// Save and reopen as a user does: create at a path, save in place, reopen
/// with no spec (dim and metric from the file).
#[test]
fn save_in_place_and_reopen_without_a_spec() {
    let dir = std::env::temp_dir().join(format!("vecsearch-inplace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for scheme in ["flat", "native", "hnswlib"] {
        let file = dir.join(format!("{scheme}.vs"));
        let uri = format!("{scheme}:{}", file.display());
        let idx = match vecsearch::open_blocking(
            &format!("{uri}?mode=rwc"),
            IndexSpec::new(3, Metric::Cosine),
        ) {
            Ok(idx) => idx,
            Err(Error::Unsupported(_)) => continue, // not compiled in
            Err(e) => panic!("{uri}: {e}"),
        };
        assert_eq!(idx.origin(), Some(file.as_path()));
        idx.add_batch(&[1, 2], &[vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]])
            .unwrap();
        idx.save_in_place().unwrap();
        let back = vecsearch::open_saved_blocking(&uri).unwrap();
        assert_eq!(back.spec().dim, 3);
        assert_eq!(back.spec().metric, Metric::Cosine);
        assert_eq!(back.len().unwrap(), 2);
        let hit = back
            .search(&[0.9, 0.1, 0.0], 1, &SearchParams::default())
            .unwrap();
        assert_eq!(hit[0].id, 1);
        // A spec that contradicts the file is an error, not a silent choice.
        assert!(matches!(
            vecsearch::open_blocking(&uri, IndexSpec::new(4, Metric::L2)),
            Err(Error::InvalidArgument(_))
        ));
    }
    assert!(matches!(
        vecsearch::open_saved_blocking("native:"),
        Err(Error::InvalidArgument(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh folder for one test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vecsearch-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A two-vector index of `scheme` created at `file` (`None` when the
/// backend is not compiled in).
fn small_index(
    scheme: &str,
    file: &std::path::Path,
) -> Option<vecsearch::Blocking<dyn vecsearch::VectorIndex>> {
    let uri = format!("{scheme}:{}?mode=rwc", file.display());
    match vecsearch::open_blocking(&uri, IndexSpec::new(3, Metric::L2)) {
        Ok(idx) => {
            idx.add_batch(&[1, 2], &[vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]])
                .unwrap();
            Some(idx)
        }
        Err(Error::Unsupported(_)) => None,
        Err(e) => panic!("{uri}: {e}"),
    }
}

/// Issue 21: `open_saved` of a missing file names the path and the fix
/// (it said only "No such file or directory").
#[test]
fn open_saved_of_a_missing_file_names_the_path_and_the_fix() {
    let dir = scratch("missing");
    for scheme in ["flat", "native", "hnswlib"] {
        let file = dir.join(format!("{scheme}-index.vs"));
        let uri = format!("{scheme}:{}", file.display());
        for u in [uri.clone(), format!("{uri}?mode=rwc")] {
            match vecsearch::open_saved_blocking(&u) {
                Err(Error::Io { context, source }) => {
                    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
                    let m = format!("{context}: {source}");
                    assert!(m.contains(&file.display().to_string()), "{m}");
                    assert!(m.contains("?mode=rwc") && m.contains("IndexSpec"), "{m}");
                }
                Err(Error::Unsupported(_)) => {} // not compiled in
                other => panic!("{u}: expected Io, got {:?}", other.map(|_| ())),
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 21: every error about a damaged file names the file ("body
/// checksum mismatch" and "header says the body is ..." did not).
#[test]
fn damaged_files_are_named() {
    let dir = scratch("damaged");
    for scheme in ["flat", "native", "hnswlib"] {
        let file = dir.join(format!("{scheme}-index.vs"));
        let Some(idx) = small_index(scheme, &file) else {
            continue;
        };
        idx.save_in_place().unwrap();
        let good = std::fs::read(&file).unwrap();
        let uri = format!("{scheme}:{}", file.display());
        let shown = file.display().to_string();
        // A flipped body byte, a body cut short, a header bit flipped, a
        // file of another backend.
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 0x40;
        let mut head_flipped = good.clone();
        head_flipped[20] ^= 1;
        let other = if scheme == "flat" {
            b"VSNATIVE"
        } else {
            b"VSFLAT01"
        };
        let mut foreign = good.clone();
        foreign[..8].copy_from_slice(other);
        for (what, bytes) in [
            ("body checksum", flipped),
            ("header says the body is", good[..good.len() - 4].to_vec()),
            ("header checksum", head_flipped),
            ("index file", foreign),
        ] {
            std::fs::write(&file, &bytes).unwrap();
            let by_uri = vecsearch::open_saved_blocking(&uri).map(|_| ());
            let with_spec =
                vecsearch::open_blocking(&uri, IndexSpec::new(3, Metric::L2)).map(|_| ());
            for got in [by_uri, with_spec] {
                match got {
                    Err(e @ Error::Corrupt(_)) => {
                        let m = e.to_string();
                        assert!(m.contains(what), "{scheme}: {m}");
                        assert!(
                            m.contains(&shown),
                            "{scheme}: {what}: does not name {shown}: {m}"
                        );
                    }
                    other => panic!("{uri} ({what}): expected Corrupt, got {other:?}"),
                }
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 21: a save into a folder that does not exist names the path
/// asked for (hnswlib's named an internal temporary file).
#[test]
fn saving_into_a_missing_folder_names_the_path() {
    let dir = scratch("nofolder");
    for scheme in ["flat", "native", "hnswlib"] {
        let Some(idx) = small_index(scheme, &dir.join(format!("{scheme}.vs"))) else {
            continue;
        };
        let nowhere = dir.join("no-such-folder").join("x.vs");
        match idx.save(&nowhere) {
            Err(e @ Error::Io { .. }) => {
                let m = e.to_string();
                assert!(m.contains(&nowhere.display().to_string()), "{scheme}: {m}");
                assert!(
                    !m.contains("hnswlib-tmp") && !m.contains(".vecsearch-save-"),
                    "{scheme}: names a temporary file: {m}"
                );
            }
            other => panic!("{scheme}: expected Io, got {other:?}"),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

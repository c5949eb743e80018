//! `vecsearch copy SRC DST`: every vector and payload of one index into
//! another (the library's `vecsearch::copy`), with a progress bar, a report,
//! and `--verify`.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use vecsearch::backend::exec::block_on;
use vecsearch::{CopyOptions, IndexSpec, Schema, VectorIndex};

use crate::CopyArgs;

fn is_remote(uri: &str) -> bool {
    uri.contains("://")
}

/// The local path a URI names, if any (`native:/a.vs?x=y` -> `/a.vs`).
fn local_path(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once(':')?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty()).then_some(path)
}

fn open_source(a: &CopyArgs) -> Result<Box<dyn VectorIndex>, String> {
    open_existing(&a.src, a.dim, a.metric, a.schema.as_deref())
}

/// An existing index: a saved local file (it says its own spec) or a
/// server's collection (opened with the dimension, metric and schema given).
pub fn open_existing(
    uri: &str,
    dim: Option<usize>,
    metric: Option<vecsearch::Metric>,
    schema: Option<&str>,
) -> Result<Box<dyn VectorIndex>, String> {
    if !is_remote(uri) {
        return block_on(vecsearch::open_saved(uri)).map_err(|e| format!("{uri}: {e}"));
    }
    let (Some(dim), Some(metric)) = (dim, metric) else {
        return Err(format!(
            "{uri}: a server's collection is opened with --dim and --metric (and --schema for its payloads)"
        ));
    };
    let mut spec = IndexSpec::new(dim, metric);
    if let Some(json) = schema {
        let schema: Schema = serde_json::from_str(json).map_err(|e| format!("--schema: {e}"))?;
        spec = spec.with_schema(schema);
    }
    block_on(vecsearch::open(uri, spec)).map_err(|e| format!("{uri}: {e}"))
}

/// Runs the copy and prints what it did.
pub fn run(a: &CopyArgs) -> Result<(), String> {
    let src = open_source(a)?;
    let mut spec = src.spec().clone();
    if let Some(s) = a.storage {
        spec = spec.with_storage(s);
    }
    // A new local file is created (and saved at the end); an existing one opened.
    let dst_uri = match local_path(&a.dst) {
        Some(p) if !is_remote(&a.dst) && !Path::new(p).exists() && !a.dst.contains('?') => {
            format!("{}?mode=rwc", a.dst)
        }
        _ => a.dst.clone(),
    };
    let dst = block_on(vecsearch::open(&dst_uri, spec)).map_err(|e| format!("{}: {e}", a.dst))?;
    let total = block_on(src.len()).map_err(|e| e.to_string())?;
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} vectors, {per_sec}, eta {eta}")
    {
        bar.set_style(style);
    }
    let opts = CopyOptions {
        batch: a.batch,
        merge: a.merge,
    };
    let report = block_on(vecsearch::copy(&*src, &*dst, &opts, &mut |n| {
        bar.set_position(n as u64)
    }))
    .map_err(|e| format!("copy {} -> {}: {e}", a.src, a.dst))?;
    bar.finish_and_clear();
    if dst.origin().is_some() {
        block_on(dst.save_in_place()).map_err(|e| format!("saving {}: {e}", a.dst))?;
    }
    println!(
        "copied {} vectors ({} with payloads) from {} ({}) to {} ({}) in {:.1} s",
        report.copied,
        report.with_payload,
        a.src,
        src.backend(),
        a.dst,
        dst.backend(),
        report.seconds
    );
    if a.verify {
        let v = block_on(vecsearch::verify(&*src, &*dst, 200)).map_err(|e| e.to_string())?;
        println!(
            "verify: {} vectors in the source, {} in the destination; {} sampled ids, {} differ{}; top-10 searches for them agree on {:.1}% of ids",
            v.counts.0,
            v.counts.1,
            v.checked,
            v.mismatched,
            if v.differing.is_empty() { String::new() } else { format!(" ({:?})", v.differing) },
            v.search_overlap * 100.0
        );
        if !v.same_data() {
            return Err("the copy differs from its source".into());
        }
    }
    Ok(())
}

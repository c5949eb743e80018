//! Files: the project's envelope (magic `VSHNSWLB`) around hnswlib's own
//! stream, and bare hnswlib files for interop.
//!
//! hnswlib reads and writes only through paths (`saveIndex`/`loadIndex`
//! take a file name), so its stream passes through a private temporary
//! file; the bytes hnswlib will read are validated by [`crate::format`]
//! first and are a copy nobody else writes to.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use vecsearch_core::persist::{self, Header};
use vecsearch_core::{Error, IndexSpec, Result};

use crate::ffi::bridge;
use crate::format;
use crate::handle::{ffi_err, space_of, Handle};
use crate::index::initial_capacity;

const MAGIC: &[u8; 8] = b"VSHNSWLB";
const VERSION: u32 = 1;

/// A temporary file removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    /// A fresh name in `dir` (the target's directory for saves, so the final
    /// rename stays on one file system).
    fn in_dir(dir: &Path, stem: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        TempFile(dir.join(format!(".{stem}.hnswlib-tmp-{}-{n}", std::process::id())))
    }

    fn str(&self) -> Result<&str> {
        self.0.to_str().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "hnswlib needs a UTF-8 path, got {}",
                self.0.display()
            ))
        })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn stem_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "index".into())
}

/// hnswlib's stream of the index, read back and checked (hnswlib's
/// `saveIndex` reports no write error, so a short or damaged write is
/// caught here). Errors name `target`, the file being saved.
fn stream_of(handle: &Handle, tmp: &TempFile, target: &Path) -> Result<Vec<u8>> {
    let failed = |source: std::io::Error| Error::Io {
        context: format!(
            "saving {} (hnswlib's stream through {})",
            target.display(),
            tmp.0.display()
        ),
        source,
    };
    let hnsw = handle.read();
    let expected = hnsw.file_size();
    hnsw.save(tmp.str()?)
        .map_err(|e| ffi_err(&format!("saving {}", target.display()), e))?;
    drop(hnsw);
    let bytes = fs::read(&tmp.0).map_err(failed)?;
    if bytes.len() != expected {
        return Err(failed(std::io::Error::other(format!(
            "hnswlib wrote {} of {expected} bytes (disk full?)",
            bytes.len()
        ))));
    }
    Ok(bytes)
}

/// The folder a save to `path` writes in, which must exist: hnswlib's
/// stream goes through a temporary file there, and hnswlib reports no
/// failure to create it, so a missing folder is named here, with `path`.
fn save_dir(path: &Path) -> Result<PathBuf> {
    persist::save_folder(path).map(Path::to_path_buf)
}

/// Writes the envelope file.
pub(crate) fn save(handle: &Handle, path: &Path, payloads: &[u8]) -> Result<()> {
    let tmp = TempFile::in_dir(&save_dir(path)?, &stem_of(path));
    let body = stream_of(handle, &tmp, path)?;
    let spec = handle.spec();
    let layout = format::validate(&body, spec.dim, spec.metric)?;
    let header = Header {
        magic: *MAGIC,
        version: VERSION,
        metric: spec.metric,
        dim: spec.dim,
        count: layout.live() as u64,
    };
    persist::write_atomic_with(path, &header, &body, payloads)
}

/// Writes a bare hnswlib file atomically.
pub(crate) fn export(handle: &Handle, path: &Path) -> Result<()> {
    let dir = save_dir(path)?;
    let tmp = TempFile::in_dir(&dir, &stem_of(path));
    let body = stream_of(handle, &tmp, path)?;
    format::validate(&body, handle.spec().dim, handle.spec().metric)?;
    let out = TempFile::in_dir(&dir, &stem_of(path));
    let mut f = File::create(&out.0).map_err(|e| Error::io("creating", &out.0, e))?;
    f.write_all(&body)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("writing", &out.0, e))?;
    fs::rename(&out.0, path).map_err(|e| Error::io("renaming the export to", path, e))
}

/// Opens an envelope file; every error about the file names it.
pub(crate) fn open(path: &Path, spec: IndexSpec) -> Result<(Handle, Option<Vec<u8>>)> {
    open_unnamed(path, spec).map_err(|e| persist::in_file(path, e))
}

fn open_unnamed(path: &Path, spec: IndexSpec) -> Result<(Handle, Option<Vec<u8>>)> {
    spec.validate()?;
    let (header, body, section) = persist::read_checked_with(path, MAGIC, VERSION)?;
    persist::check_matches(&header, &spec)?;
    let layout = format::validate(&body, spec.dim, spec.metric)?;
    if layout.live() as u64 != header.count {
        return Err(Error::corrupt(format!(
            "the header counts {} vectors, the data holds {}",
            header.count,
            layout.live()
        )));
    }
    Ok((load(&body, layout, spec)?, section))
}

/// Imports a bare hnswlib file; every error about the file names it.
pub(crate) fn import(path: &Path, spec: IndexSpec) -> Result<Handle> {
    import_unnamed(path, spec).map_err(|e| persist::in_file(path, e))
}

fn import_unnamed(path: &Path, spec: IndexSpec) -> Result<Handle> {
    spec.validate()?;
    let len = fs::metadata(path)
        .map_err(|e| Error::io("reading the size of", path, e))?
        .len();
    if len < format::HEADER_LEN as u64 {
        return Err(Error::corrupt(format!(
            "{} is {len} bytes, shorter than hnswlib's {}-byte header",
            path.display(),
            format::HEADER_LEN
        )));
    }
    let body = fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    let layout = format::validate(&body, spec.dim, spec.metric)?;
    load(&body, layout, spec)
}

/// Hands validated bytes to hnswlib's `loadIndex` through a private copy.
fn load(body: &[u8], layout: format::Layout, spec: IndexSpec) -> Result<Handle> {
    let tmp = TempFile::in_dir(&std::env::temp_dir(), "vecsearch-load");
    let mut f = File::create(&tmp.0).map_err(|e| Error::io("creating", &tmp.0, e))?;
    f.write_all(body)
        .and_then(|()| f.flush())
        .map_err(|e| Error::io("writing", &tmp.0, e))?;
    drop(f);
    let capacity = layout.count.max(initial_capacity(spec.capacity));
    let hnsw = bridge::load_index(space_of(spec.metric), spec.dim, tmp.str()?, capacity)
        .map_err(|e| ffi_err("loading", e))?;
    let spec = IndexSpec {
        m: layout.m,
        ef_construction: layout.ef_construction,
        ..spec
    };
    Handle::new(spec, hnsw)
}

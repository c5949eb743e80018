//! The envelope every local backend's file sits in, and bounds-checked
//! reading and writing of its body.
//!
//! Layout (little-endian), 48 bytes of header then the body:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic, one per backend (`VSFLAT01`, `VSNATIVE`, ...) |
//! | 8..12 | body format version |
//! | 12..16 | metric code ([`Metric::code`]) |
//! | 16..20 | dim |
//! | 20..24 | flags: bit 0 = the body ends with a payload section |
//! | 24..32 | number of vectors |
//! | 32..40 | body length in bytes |
//! | 40..44 | CRC-32 of the body |
//! | 44..48 | CRC-32 of bytes 0..44 |
//!
//! Saving writes a temporary file beside the target, fsyncs it and renames it
//! over the target, so a crash leaves the old file or the new one. Opening
//! checks length, both checksums and every header field before the backend
//! sees a byte of the body, and the body length must equal the file's size,
//! so nothing is allocated that the file does not justify.
//!
//! A payload section (the front door's payloads, see [`crate::store`]) sits
//! at the end of the body, followed by its length as a `u64`, and flag bit 0
//! says it is there: files saved without payloads, and those saved before
//! payloads existed, have the bit clear and open as they did.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use crate::{Error, Metric, Result};

/// Length of the envelope's header.
pub const HEADER_LEN: usize = 48;

/// Magics of the project's formats, so a file of another backend is named as such.
pub const KNOWN_MAGICS: [(&[u8; 8], &str); 3] = [
    (b"VSFLAT01", "flat"),
    (b"VSNATIVE", "native"),
    (b"VSHNSWLB", "hnswlib"),
];

/// The header fields of a saved index.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The backend's magic.
    pub magic: [u8; 8],
    /// Body format version.
    pub version: u32,
    /// Metric of the index.
    pub metric: Metric,
    /// Dimension of the index.
    pub dim: usize,
    /// Number of vectors.
    pub count: u64,
}

/// Writes `header` and `body` to `path` atomically: a temporary file of this
/// save's own beside the target (so concurrent saves to one path never share
/// one), fsync, rename over the target, fsync of the folder. Whoever opens the
/// path meanwhile sees the old file or one whole new one.
pub fn write_atomic(path: &Path, header: &Header, body: &[u8]) -> Result<()> {
    write_atomic_with(path, header, body, &[])
}

/// [`write_atomic`] with a payload section after the body (none if empty).
pub fn write_atomic_with(path: &Path, header: &Header, body: &[u8], section: &[u8]) -> Result<()> {
    let mut joined;
    let (body, flags) = if section.is_empty() {
        (body, 0)
    } else {
        joined = Vec::with_capacity(body.len() + section.len() + 8);
        joined.extend_from_slice(body);
        joined.extend_from_slice(section);
        joined.extend_from_slice(&(section.len() as u64).to_le_bytes());
        (&joined[..], FLAG_PAYLOADS)
    };
    let head = encode_header(header, body, flags)?;
    let dir = save_folder(path)?;
    // `NamedTempFile` picks a fresh random name (O_EXCL) and removes the file
    // if anything below fails before `persist`.
    let mut tmp = tempfile::Builder::new()
        .prefix(".vecsearch-save-")
        .tempfile_in(dir)
        .map_err(|e| Error::Io {
            context: format!(
                "saving {} (creating a temporary file in {})",
                path.display(),
                dir.display()
            ),
            source: e,
        })?;
    tmp.write_all(&head)
        .and_then(|()| tmp.write_all(body))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io("writing a temporary file for", path, e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("renaming the saved index to", path, e.error))?;
    sync_parent(path);
    Ok(())
}

/// The folder a save to `path` writes in (its parent; `.` for a bare file
/// name), which must exist: a missing one is an `Io` not-found error that
/// names `path` (not the temporary file the save would have made there).
pub fn save_folder(path: &Path) -> Result<&Path> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        return Ok(dir);
    }
    Err(Error::io(
        "saving",
        path,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("the folder {} does not exist", dir.display()),
        ),
    ))
}

/// Header flag: the body ends with a payload section and its length.
const FLAG_PAYLOADS: u32 = 1;

fn encode_header(header: &Header, body: &[u8], flags: u32) -> Result<Vec<u8>> {
    let dim = u32::try_from(header.dim)
        .map_err(|_| Error::InvalidArgument("dim does not fit the file format".into()))?;
    let mut head = Vec::with_capacity(HEADER_LEN);
    head.extend_from_slice(&header.magic);
    head.extend_from_slice(&header.version.to_le_bytes());
    head.extend_from_slice(&header.metric.code().to_le_bytes());
    head.extend_from_slice(&dim.to_le_bytes());
    head.extend_from_slice(&flags.to_le_bytes());
    head.extend_from_slice(&header.count.to_le_bytes());
    head.extend_from_slice(&(body.len() as u64).to_le_bytes());
    head.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    let head_crc = crc32fast::hash(&head);
    head.extend_from_slice(&head_crc.to_le_bytes());
    Ok(head)
}

// A rename is durable once its directory is synced; best effort where the
// platform cannot open directories.
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// `e`, naming the file `path` when it is `Corrupt` (every other error
/// that concerns a file names it already): backends pass the errors of
/// reading a file's body through this, so every message says which file.
pub fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::Corrupt(m) if !m.contains(&path.display().to_string()) => {
            Error::Corrupt(format!("{}: {m}", path.display()))
        }
        e => e,
    }
}

/// Reads and checks a file written by [`write_atomic`] with magic `magic`
/// and a body version of at most `max_version`; returns the header and body.
/// Every error names `path`.
pub fn read_checked(path: &Path, magic: &[u8; 8], max_version: u32) -> Result<(Header, Vec<u8>)> {
    read_checked_with(path, magic, max_version).map(|(h, body, _)| (h, body))
}

/// [`read_checked`], also returning the payload section, if the file has
/// one (split off the body, so the backend parses its body as before).
pub fn read_checked_with(
    path: &Path,
    magic: &[u8; 8],
    max_version: u32,
) -> Result<(Header, Vec<u8>, Option<Vec<u8>>)> {
    read_checked_unnamed(path, magic, max_version).map_err(|e| in_file(path, e))
}

fn read_checked_unnamed(
    path: &Path,
    magic: &[u8; 8],
    max_version: u32,
) -> Result<(Header, Vec<u8>, Option<Vec<u8>>)> {
    let mut f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let file_len = f
        .metadata()
        .map_err(|e| Error::io("reading the size of", path, e))?
        .len();
    if file_len < HEADER_LEN as u64 {
        return Err(Error::corrupt(format!(
            "{} is {file_len} bytes, shorter than the {HEADER_LEN}-byte header",
            path.display()
        )));
    }
    let mut head = [0u8; HEADER_LEN];
    f.read_exact(&mut head)
        .map_err(|e| Error::io("reading", path, e))?;
    let (header, flags) = parse_header(&head, magic, max_version)?;
    let mut r = Reader::new(&head[32..44]);
    let body_len = r.u64()?;
    let body_crc = r.u32()?;
    if body_len != file_len - HEADER_LEN as u64 {
        return Err(Error::corrupt(format!(
            "header says the body is {body_len} bytes but the file holds {} (truncated or padded)",
            file_len - HEADER_LEN as u64
        )));
    }
    let len = usize::try_from(body_len).map_err(|_| Error::corrupt("body too large"))?;
    let mut body = vec![0u8; len];
    f.read_exact(&mut body)
        .map_err(|e| Error::io("reading", path, e))?;
    if crc32fast::hash(&body) != body_crc {
        return Err(Error::corrupt(
            "body checksum mismatch (the file is damaged)",
        ));
    }
    let section = if flags & FLAG_PAYLOADS != 0 {
        Some(split_section(&mut body)?)
    } else {
        None
    };
    Ok((header, body, section))
}

/// Splits the payload section (and its length) off the end of `body`.
fn split_section(body: &mut Vec<u8>) -> Result<Vec<u8>> {
    let short = || Error::corrupt("the payload section's length is missing or too large");
    let at = body.len().checked_sub(8).ok_or_else(short)?;
    let mut len = [0u8; 8];
    len.copy_from_slice(&body[at..]);
    let len = usize::try_from(u64::from_le_bytes(len)).map_err(|_| short())?;
    let start = at.checked_sub(len).ok_or_else(short)?;
    let section = body[start..at].to_vec();
    body.truncate(start);
    Ok(section)
}

/// The header of the file `backend` (`flat`, `native`, `hnswlib`) saved at
/// `path`, checked (magic, header checksum, fields) without reading the
/// body: what an index can be reopened from without the caller's spec.
/// Every error about the file names `path`.
pub fn read_header(path: &Path, backend: &str) -> Result<Header> {
    let magic = KNOWN_MAGICS
        .iter()
        .find(|(_, name)| *name == backend)
        .map(|(m, _)| *m)
        .ok_or_else(|| Error::Unsupported(format!("the {backend} backend saves no files")))?;
    let mut f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut head = [0u8; HEADER_LEN];
    f.read_exact(&mut head).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::corrupt(format!(
            "{} is shorter than the {HEADER_LEN}-byte header",
            path.display()
        )),
        _ => Error::io("reading", path, e),
    })?;
    parse_header(&head, magic, u32::MAX)
        .map(|(h, _)| h)
        .map_err(|e| in_file(path, e))
}

fn parse_header(
    head: &[u8; HEADER_LEN],
    magic: &[u8; 8],
    max_version: u32,
) -> Result<(Header, u32)> {
    let found: [u8; 8] = head[..8].try_into().map_err(|_| Error::corrupt("header"))?;
    if &found != magic {
        let want = name_of(magic).unwrap_or("this backend");
        return Err(match name_of(&found) {
            Some(other) => Error::corrupt(format!(
                "this is a vecsearch {other} index file, not a {want} one"
            )),
            None => Error::corrupt(format!("not a vecsearch {want} index file (bad magic)")),
        });
    }
    let mut r = Reader::new(&head[8..]);
    let stored_crc = u32::from_le_bytes([head[44], head[45], head[46], head[47]]);
    if crc32fast::hash(&head[..44]) != stored_crc {
        return Err(Error::corrupt(
            "header checksum mismatch (the file is damaged)",
        ));
    }
    let version = r.u32()?;
    if version == 0 || version > max_version {
        return Err(Error::corrupt(format!(
            "format version {version} is not one this build reads (1..={max_version})"
        )));
    }
    let metric_code = r.u32()?;
    let metric = Metric::from_code(metric_code)
        .ok_or_else(|| Error::corrupt(format!("unknown metric code {metric_code}")))?;
    let dim = r.u32()? as usize;
    if dim == 0 {
        return Err(Error::corrupt("dim is 0"));
    }
    let flags = r.u32()?;
    if flags & !FLAG_PAYLOADS != 0 {
        return Err(Error::corrupt(format!(
            "unknown header flags {flags:#x} (a newer format, or damage)"
        )));
    }
    let count = r.u64()?;
    Ok((
        Header {
            magic: found,
            version,
            metric,
            dim,
            count,
        },
        flags,
    ))
}

/// Fails with `InvalidArgument` unless a file's dim and metric are the ones
/// the caller asked for (a wrong spec is the caller's mistake, not damage).
pub fn check_matches(header: &Header, spec: &crate::IndexSpec) -> Result<()> {
    if header.dim != spec.dim || header.metric != spec.metric {
        return Err(Error::InvalidArgument(format!(
            "the file holds a {}-dimensional {} index, but dim {} and metric {} were asked for",
            header.dim, header.metric, spec.dim, spec.metric
        )));
    }
    Ok(())
}

fn name_of(magic: &[u8; 8]) -> Option<&'static str> {
    KNOWN_MAGICS
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, n)| *n)
}

/// Reads little-endian values from a byte slice, every read bounds-checked:
/// running past the end is `Corrupt`, never a panic.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::corrupt(format!(
                "the file ends early: wanted {n} bytes at offset {}, {} left",
                self.pos,
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A `u32`.
    pub fn u32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `u64`.
    pub fn u64(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A `u64` that must be a count of at most `max` (checked before anyone allocates for it).
    pub fn count(&mut self, what: &str, max: u64) -> Result<usize> {
        let n = self.u64()?;
        if n > max {
            return Err(Error::corrupt(format!(
                "{what} is {n}, more than the file can hold ({max})"
            )));
        }
        usize::try_from(n).map_err(|_| Error::corrupt(format!("{what} too large")))
    }

    /// `n` values of `W` little-endian bytes each, decoded by `from_le`
    /// (the length is checked against what is left before allocating).
    fn le_values<T, const W: usize>(
        &mut self,
        n: usize,
        from_le: impl Fn([u8; W]) -> T,
    ) -> Result<Vec<T>> {
        let len = n
            .checked_mul(W)
            .ok_or_else(|| Error::corrupt("length overflow"))?;
        Ok(self
            .bytes(len)?
            .chunks_exact(W)
            .map(|c| {
                let mut a = [0u8; W];
                a.copy_from_slice(c);
                from_le(a)
            })
            .collect())
    }

    /// `n` `f32`s (the length is checked against what is left before allocating).
    pub fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        self.le_values(n, f32::from_le_bytes)
    }

    /// `n` `u16`s.
    pub fn u16s(&mut self, n: usize) -> Result<Vec<u16>> {
        self.le_values(n, u16::from_le_bytes)
    }

    /// `n` `u32`s.
    pub fn u32s(&mut self, n: usize) -> Result<Vec<u32>> {
        self.le_values(n, u32::from_le_bytes)
    }

    /// `n` `u64`s.
    pub fn u64s(&mut self, n: usize) -> Result<Vec<u64>> {
        self.le_values(n, u64::from_le_bytes)
    }

    /// Fails unless every byte was read (trailing bytes mean a foreign or damaged body).
    pub fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(Error::corrupt(format!(
                "{} unexpected bytes after the end of the data",
                self.remaining()
            )));
        }
        Ok(())
    }
}

/// Appends little-endian values to a body.
#[derive(Default)]
pub struct Writer {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// A writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    /// Appends a `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a `u64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends `v`, each value as the `W` little-endian bytes of `to_le`.
    fn le_values<T: Copy, const W: usize>(&mut self, v: &[T], to_le: impl Fn(T) -> [u8; W]) {
        self.buf.reserve(v.len() * W);
        v.iter()
            .for_each(|&x| self.buf.extend_from_slice(&to_le(x)));
    }

    /// Appends `f32`s.
    pub fn f32s(&mut self, v: &[f32]) {
        self.le_values(v, f32::to_le_bytes);
    }

    /// Appends `u16`s.
    pub fn u16s(&mut self, v: &[u16]) {
        self.le_values(v, u16::to_le_bytes);
    }

    /// Appends `u32`s.
    pub fn u32s(&mut self, v: &[u32]) {
        self.le_values(v, u32::to_le_bytes);
    }

    /// Appends `u64`s.
    pub fn u64s(&mut self, v: &[u64]) {
        self.le_values(v, u64::to_le_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn header() -> Header {
        Header {
            magic: *b"VSFLAT01",
            version: 1,
            metric: Metric::L2,
            dim: 3,
            count: 2,
        }
    }

    /// Rule "saves to one path at once each stay atomic", bug 4 of the
    /// reliability issue: every save used `<name>.tmp-<pid>`, so threads of
    /// one process wrote into the same temporary file.
    #[test]
    fn saves_to_one_path_at_once_stay_atomic() {
        let dir = std::env::temp_dir().join(format!("vs-persist-race-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.vs");
        write_atomic(&path, &header(), &[0u8; 4096]).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..50 {
                        let body = vec![t; 4096 + usize::from(t)];
                        write_atomic(path, &header(), &body).unwrap();
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..200 {
                    // Always one whole save: a single writer's bytes.
                    let (_, body) = read_checked(&path, b"VSFLAT01", 1).unwrap();
                    assert!(body.iter().all(|&b| b == body[0]));
                    assert_eq!(body.len(), 4096 + usize::from(body[0]));
                }
            });
        });
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "temporary files left"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn round_trip_and_every_kind_of_damage() {
        let dir = std::env::temp_dir().join(format!("vs-persist-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.idx");
        write_atomic(&path, &header(), b"hello body").unwrap();
        let (h, body) = read_checked(&path, b"VSFLAT01", 1).unwrap();
        assert_eq!(h, header());
        assert_eq!(body, b"hello body");

        let good = fs::read(&path).unwrap();
        assert!(
            matches!(read_checked(&path, b"VSNATIVE", 1), Err(Error::Corrupt(m)) if m.contains("flat"))
        );
        for cut in [0, 10, HEADER_LEN, good.len() - 1] {
            fs::write(&path, &good[..cut]).unwrap();
            assert!(
                matches!(read_checked(&path, b"VSFLAT01", 1), Err(Error::Corrupt(_))),
                "cut {cut}"
            );
        }
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            fs::write(&path, &bad).unwrap();
            assert!(read_checked(&path, b"VSFLAT01", 1).is_err(), "bit {bit}");
        }
        assert!(matches!(
            read_checked(&dir.join("missing"), b"VSFLAT01", 1),
            Err(Error::Io { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reader_never_reads_past_the_end() {
        let mut r = Reader::new(&[1, 0, 0, 0, 2]);
        assert_eq!(r.u32().unwrap(), 1);
        assert!(r.u32().is_err());
        assert!(r.f32s(usize::MAX).is_err());
        assert!(Reader::new(&[0; 8]).count("n", 0).is_ok());
        assert!(Reader::new(&[9, 0, 0, 0, 0, 0, 0, 0])
            .count("n", 8)
            .is_err());
    }
}

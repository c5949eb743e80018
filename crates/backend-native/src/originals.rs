//! The f32 originals of an I8 index, kept out of the heap: in an unnamed
//! temporary file (in `std::env::temp_dir()`, so `TMPDIR` chooses the disk)
//! mapped into memory. Searches walk the 8-bit codes and touch an original
//! only to re-rank their few best candidates, so the originals need not be
//! resident: the kernel pages them in when read and may drop them under
//! memory pressure, where heap memory would stay. Where no temporary file
//! can be made or mapped, the originals stay on the heap (same answers,
//! more memory; `memory_bytes` then counts them).

use std::fs::File;

use memmap2::MmapMut;
use vecsearch_core::{Error, Result};

/// Rows of `dim` f32s.
pub(crate) struct Originals {
    dim: usize,
    /// Rows written.
    rows: usize,
    place: Place,
}

enum Place {
    /// The temporary file and its mapping (none until the first row).
    Mapped {
        file: File,
        map: Option<MmapMut>,
    },
    Heap(Vec<f32>),
}

impl Originals {
    /// Empty originals of `dim` floats a row, mapped where the system allows.
    pub(crate) fn new(dim: usize) -> Self {
        let place = match tempfile::tempfile() {
            Ok(file) => Place::Mapped { file, map: None },
            Err(_) => Place::Heap(Vec::new()),
        };
        Originals {
            dim,
            rows: 0,
            place,
        }
    }

    /// Whether the rows live in a mapped file.
    #[cfg(test)]
    pub(crate) fn mapped(&self) -> bool {
        matches!(self.place, Place::Mapped { .. })
    }

    /// Room for `total` rows (an exact size: callers grow by quarters).
    pub(crate) fn reserve(&mut self, total: usize) -> Result<()> {
        let dim = self.dim;
        match &mut self.place {
            Place::Heap(v) => {
                let want = total.saturating_mul(dim);
                if want > v.capacity() {
                    v.reserve_exact(want - v.len());
                }
                Ok(())
            }
            Place::Mapped { file, map } => {
                let bytes = total.saturating_mul(dim).saturating_mul(4);
                if map.as_ref().is_some_and(|m| m.len() >= bytes) || bytes == 0 {
                    return Ok(());
                }
                let io = |source| {
                    Error::Io {
                    context: format!(
                        "growing the i8 index's originals file (a temporary file in {}) to {bytes} bytes",
                        std::env::temp_dir().display()
                    ),
                    source,
                }
                };
                file.set_len(bytes as u64).map_err(io)?;
                // SAFETY: the file is an unnamed temporary file that only this
                // value holds (no path, so no other process opens it in
                // practice), just sized to `bytes`; the old mapping is
                // replaced under `&mut self`, so no borrow of it is alive.
                let m = unsafe { memmap2::MmapOptions::new().len(bytes).map_mut(&*file) };
                *map = Some(m.map_err(io)?);
                Ok(())
            }
        }
    }

    /// Appends a row (room reserved first).
    pub(crate) fn push(&mut self, v: &[f32]) -> Result<()> {
        self.reserve(self.rows + 1)?;
        self.rows += 1;
        if let Place::Heap(h) = &mut self.place {
            h.extend_from_slice(v);
            return Ok(());
        }
        self.set(self.rows as u32 - 1, v);
        Ok(())
    }

    /// Overwrites row `slot` (in range).
    pub(crate) fn set(&mut self, slot: u32, v: &[f32]) {
        let (i, dim) = (slot as usize * self.dim, self.dim);
        match &mut self.place {
            Place::Heap(h) => {
                if let Some(dst) = h.get_mut(i..i + dim) {
                    dst.copy_from_slice(v);
                }
            }
            Place::Mapped { map: Some(m), .. } => {
                if let Some(dst) = m.get_mut(i * 4..(i + dim) * 4) {
                    for (d, x) in dst.chunks_exact_mut(4).zip(v) {
                        d.copy_from_slice(&x.to_ne_bytes());
                    }
                }
            }
            Place::Mapped { map: None, .. } => {}
        }
    }

    /// Row `slot` (empty when out of range).
    #[inline]
    pub(crate) fn row(&self, slot: u32) -> &[f32] {
        let i = slot as usize * self.dim;
        if slot as usize >= self.rows {
            return &[];
        }
        match &self.place {
            Place::Heap(h) => h.get(i..i + self.dim).unwrap_or(&[]),
            Place::Mapped { map: Some(m), .. } => {
                let Some(bytes) = m.get(i * 4..(i + self.dim) * 4) else {
                    return &[];
                };
                // SAFETY: a mapping starts on a page boundary and the row
                // starts a multiple of 4 bytes into it, so the pointer is
                // aligned for f32; `bytes` holds exactly `dim * 4` bytes of
                // the mapping, borrowed for as long as the result; every bit
                // pattern is a valid f32; writes need `&mut self`.
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), self.dim) }
            }
            Place::Mapped { map: None, .. } => &[],
        }
    }

    /// Every row, back to back (for saving).
    pub(crate) fn all(&self) -> Vec<f32> {
        (0..self.rows as u32)
            .flat_map(|s| self.row(s).iter().copied())
            .collect()
    }

    /// Replaces every row by `all` (loading a file).
    pub(crate) fn load(&mut self, all: Vec<f32>) -> Result<()> {
        let rows = all.len() / self.dim.max(1);
        if let Place::Heap(h) = &mut self.place {
            *h = all;
            self.rows = rows;
            return Ok(());
        }
        self.reserve(rows)?;
        self.rows = rows;
        for (s, v) in all.chunks_exact(self.dim).enumerate() {
            self.set(s as u32, v);
        }
        Ok(())
    }

    /// Heap bytes held (a mapped file's pages are the page cache's).
    pub(crate) fn heap_bytes(&self) -> usize {
        match &self.place {
            Place::Heap(h) => h.capacity() * 4,
            Place::Mapped { .. } => 0,
        }
    }

    /// Bytes of the mapped file.
    pub(crate) fn mapped_bytes(&self) -> usize {
        match &self.place {
            Place::Mapped { map: Some(m), .. } => m.len(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_rows_read_back_through_growth_and_overwrites() {
        let mut o = Originals::new(3);
        assert!(o.mapped(), "a temporary file could not be mapped here");
        for i in 0..1000u32 {
            o.push(&[i as f32, -(i as f32), 0.5]).unwrap();
        }
        o.set(7, &[1.0, 2.0, 3.0]);
        assert_eq!(o.row(7), [1.0, 2.0, 3.0]);
        assert_eq!(o.row(999), [999.0, -999.0, 0.5]);
        assert!(o.row(1000).is_empty());
        assert_eq!(o.heap_bytes(), 0);
        assert_eq!(o.mapped_bytes(), 1000 * 12);
        let all = o.all();
        let mut back = Originals::new(3);
        back.load(all).unwrap();
        assert_eq!(back.row(999), o.row(999));
        assert_eq!(back.row(7), [1.0, 2.0, 3.0]);
    }
}

//! [`Lined`]: a growable buffer of rows whose first item starts on a
//! 64-byte cache line, wherever the allocator put the memory.
//!
//! A row is read whole, line by line: 384 f32 components are 1,536 bytes,
//! 24 lines when the row starts on a line and 25 when it does not, and a
//! half-precision row 12 lines or 13. glibc puts a large buffer 16 bytes
//! past a page (its chunk header), and a buffer reused from its heap
//! anywhere on a 16-byte boundary, so every row of a 384-d index cost a
//! line more than its size, and how many more changed with where the
//! buffer landed. A `Vec` cannot be asked for a larger alignment (its
//! `dealloc` must repeat the layout it allocated with), so the buffer
//! starts its items `pad` slots into a plain `Vec` instead; `pad` is worked
//! out again whenever the `Vec` may have moved.

use std::collections::TryReserveError;
use std::ops::{Deref, DerefMut};

/// A cache line on the CPUs native runs on (x86-64, aarch64).
pub(crate) const LINE: usize = 64;

/// Items of `T` in a `Vec` of which the first `pad` are not part of the
/// buffer: the rest start `skew` bytes past a line (0 unless an A/B asks,
/// see `tuning::set_row_skew`).
pub(crate) struct Lined<T> {
    v: Vec<T>,
    pad: usize,
    skew: usize,
}

impl<T: Copy + Default> Lined<T> {
    /// An empty buffer (allocates nothing).
    pub(crate) fn new() -> Self {
        Lined {
            v: Vec::new(),
            pad: 0,
            skew: crate::tuning::row_skew(),
        }
    }

    /// `all` in a buffer asked for huge pages before it was written (see
    /// `huge::advise`): one copy, as a loaded index's rows take.
    pub(crate) fn from_vec(all: Vec<T>) -> Self {
        let mut b = Lined::new();
        b.grow_exact(0, all.len());
        b.extend_from_slice(&all);
        b
    }

    /// Room for the `pad` the buffer may need wherever it lands.
    fn slack() -> usize {
        LINE / std::mem::size_of::<T>().max(1)
    }

    /// Heap bytes held (capacity, the pad included).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.v.capacity() * std::mem::size_of::<T>()
    }

    /// Reserves room for `n` more items, exactly, or fails.
    pub(crate) fn try_reserve_exact(&mut self, n: usize) -> Result<(), TryReserveError> {
        // The Vec holds pad + len items: asking it for n + slack - pad
        // more leaves room for a pad up to the slack after any move.
        let more = n.saturating_add(Self::slack()) - self.pad;
        self.v.try_reserve_exact(more)?;
        self.realign();
        self.advise();
        Ok(())
    }

    /// Makes room (of `len` items) for `grow` more, exactly and advised
    /// for huge pages, as `rows::grow_exact` does for a plain `Vec`, with
    /// the slack a pad may need after the move.
    pub(crate) fn grow_exact(&mut self, len: usize, grow: usize) {
        let before = self.v.capacity();
        crate::rows::grow_exact(&mut self.v, len, grow.saturating_add(Self::slack()));
        if self.v.capacity() != before {
            self.realign();
        }
    }

    /// Asks for huge pages under the buffer (see `huge::advise`).
    pub(crate) fn advise(&mut self) {
        crate::huge::advise(&mut self.v);
    }

    /// Appends `items`.
    pub(crate) fn extend_from_slice(&mut self, items: &[T]) {
        self.v.extend_from_slice(items);
        self.realign();
    }

    /// Appends what `items` yields.
    pub(crate) fn extend(&mut self, items: impl IntoIterator<Item = T>) {
        self.v.extend(items);
        self.realign();
    }

    /// Makes the buffer `len` items long, new ones `value`.
    pub(crate) fn resize(&mut self, len: usize, value: T) {
        self.v.resize(self.pad + len, value);
        self.realign();
    }

    /// Moves the items so the first starts `skew` bytes past a line, after
    /// anything that may have moved the `Vec`.
    fn realign(&mut self) {
        let size = std::mem::size_of::<T>();
        if self.v.capacity() == 0 || size == 0 {
            return;
        }
        loop {
            // The buffer's address is a multiple of the item's size (its
            // alignment, for the f32, u16 and u8 rows), and so are `LINE`
            // and `skew`: the byte distance is a whole number of items.
            let at = self.v.as_ptr() as usize % LINE;
            let want = (self.skew + LINE - at) % LINE / size;
            if want == self.pad {
                return;
            }
            let items = self.v.len() - self.pad;
            if want > self.pad {
                let extra = want - self.pad;
                if self.v.len() + extra > self.v.capacity() {
                    // Growing moves the Vec: work the pad out again.
                    self.v.reserve(extra.max(Self::slack()));
                    continue;
                }
                self.v.resize(self.v.len() + extra, T::default());
                self.v.copy_within(self.pad..self.pad + items, want);
            } else {
                self.v.copy_within(self.pad..self.pad + items, want);
                self.v.truncate(want + items);
            }
            self.pad = want;
            return;
        }
    }
}

impl<T> Deref for Lined<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.v.get(self.pad..).unwrap_or(&[])
    }
}

impl<T> DerefMut for Lined<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.v.get_mut(self.pad..).unwrap_or(&mut [])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts_on_a_line<T>(b: &Lined<T>) -> bool {
        (b.as_ptr() as usize).is_multiple_of(LINE)
    }

    /// Whatever the allocator does as the buffer grows (exactly, by
    /// doubling, from a loaded Vec), the items start on a line and keep
    /// their values.
    #[test]
    fn items_start_on_a_line_and_survive_every_move() {
        let mut want: Vec<u16> = Vec::new();
        let mut b: Lined<u16> = Lined::new();
        assert!(b.is_empty());
        for round in 0..200u16 {
            match round % 4 {
                0 => b.grow_exact(b.len(), 37),
                1 => b.try_reserve_exact(5).expect("small reserve"),
                _ => {}
            }
            let items: Vec<u16> = (0..round % 29 + 1).map(|i| round ^ i).collect();
            if round % 2 == 0 {
                b.extend_from_slice(&items);
            } else {
                b.extend(items.iter().copied());
            }
            want.extend_from_slice(&items);
            assert!(starts_on_a_line(&b), "round {round}");
            assert_eq!(&b[..], &want[..], "round {round}");
        }
        b.resize(b.len() + 3, 9);
        want.resize(want.len() + 3, 9);
        assert_eq!(&b[..], &want[..]);
        b[0] = 1234;
        want[0] = 1234;
        assert_eq!(&b[..], &want[..]);
        let loaded = Lined::from_vec(want.clone());
        assert!(starts_on_a_line(&loaded));
        assert_eq!(&loaded[..], &want[..]);
        for n in [0usize, 1, 15, 16, 17, 1000] {
            let f: Lined<f32> = Lined::from_vec((0..n).map(|i| i as f32).collect());
            assert_eq!(f.len(), n);
            assert!(n == 0 || starts_on_a_line(&f));
        }
    }

    #[test]
    fn an_impossible_reserve_fails_and_changes_nothing() {
        let mut b: Lined<u8> = Lined::from_vec(vec![1, 2, 3]);
        assert!(b.try_reserve_exact(usize::MAX).is_err());
        assert_eq!(&b[..], &[1, 2, 3]);
        assert!(starts_on_a_line(&b));
    }
}

//! Knobs for A/B measurements: the examples that alternate two settings
//! in one process (separate runs drift apart on a shared machine). Not a
//! stable API: hidden from the docs, and a knob may go once the choice it
//! compares is settled.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// How native asks the CPU for a row (or link list) before reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefetch {
    /// Every cache line the bytes touch: a walk's into the second-level
    /// cache (x86's `prefetcht1`), an exact scan's into the first
    /// (`prefetcht0`). The default.
    Lines,
    /// As before 2026-12-07: one request per 64 bytes counted from the
    /// row's first byte (a row that does not start on a line misses its
    /// last line), into the first-level cache (`prefetcht0`).
    FromStartL1,
}

const UNREAD: u8 = u8::MAX;

static PREFETCH: AtomicU8 = AtomicU8::new(UNREAD);

/// Sets how rows are asked for ahead, for the whole process.
pub fn set_prefetch(p: Prefetch) {
    PREFETCH.store(p as u8, Ordering::Relaxed);
}

/// The setting [`set_prefetch`] chose; at first the environment's
/// (`VECSEARCH_NATIVE_PREFETCH=l1` for [`Prefetch::FromStartL1`]).
#[inline]
pub(crate) fn prefetch() -> Prefetch {
    match PREFETCH.load(Ordering::Relaxed) {
        0 => Prefetch::Lines,
        1 => Prefetch::FromStartL1,
        _ => {
            let p = match std::env::var("VECSEARCH_NATIVE_PREFETCH").as_deref() {
                Ok("l1") => Prefetch::FromStartL1,
                _ => Prefetch::Lines,
            };
            // Racing first calls store the same value.
            PREFETCH.store(p as u8, Ordering::Relaxed);
            p
        }
    }
}

/// In what order an exact scan of a filter's matches reads their rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOrder {
    /// Slot order where the matches are at least 1/64 of the slots, else
    /// the matches' id order. The default.
    Auto,
    /// Always the matches' id order (as before 2026-12-07).
    Ids,
    /// Always ascending slot order.
    Slots,
}

static SCAN_ORDER: AtomicU8 = AtomicU8::new(ScanOrder::Auto as u8);

/// Sets the order exact scans read their rows in, for the whole process.
pub fn set_scan_order(o: ScanOrder) {
    SCAN_ORDER.store(o as u8, Ordering::Relaxed);
}

/// The setting [`set_scan_order`] chose.
#[inline]
pub(crate) fn scan_order() -> ScanOrder {
    match SCAN_ORDER.load(Ordering::Relaxed) {
        1 => ScanOrder::Ids,
        2 => ScanOrder::Slots,
        _ => ScanOrder::Auto,
    }
}

static ROW_SKEW: AtomicU8 = AtomicU8::new(UNREAD);

/// Where the rows of indexes made or opened from now on start: `bytes`
/// past a 64-byte cache line (0, the default: on a line; 16 is where
/// glibc put a large buffer before 2026-12-08). Rounded down to a
/// multiple of 16, below 64.
pub fn set_row_skew(bytes: u8) {
    ROW_SKEW.store(bytes % 64 / 16 * 16, Ordering::Relaxed);
}

/// The setting [`set_row_skew`] chose; at first the environment's
/// (`VECSEARCH_NATIVE_ROW_SKEW=16`, say), else 0.
pub(crate) fn row_skew() -> usize {
    match ROW_SKEW.load(Ordering::Relaxed) {
        UNREAD => {
            let b = std::env::var("VECSEARCH_NATIVE_ROW_SKEW")
                .ok()
                .and_then(|s| s.parse::<u8>().ok())
                .unwrap_or(0);
            set_row_skew(b);
            row_skew()
        }
        b => usize::from(b),
    }
}

/// [`set_ahead`]'s default: 8 KiB of rows.
pub(crate) const AHEAD_DEFAULT: usize = 8192;

static AHEAD: AtomicUsize = AtomicUsize::new(usize::MAX);

/// How many bytes of rows a walk asks memory for ahead of the row it
/// scores (whole rows, at most 64; at the default, 8,192, at least 4),
/// for the whole process, from the next search. Measured on an Intel
/// Xeon (260 MB L3) on 2026-12-08, GloVe-50 100k alternated in one
/// process (`AB_AHEAD=8192,2048,1024,512 storage_ab`): 2,048 and less
/// were 0.77x-0.87x at ef 48 and 0.85x-1.05x at ef 128, so the default
/// stays.
pub fn set_ahead(bytes: usize) {
    AHEAD.store(bytes.clamp(1, usize::MAX - 1), Ordering::Relaxed);
}

/// The setting [`set_ahead`] chose; at first the environment's
/// (`VECSEARCH_NATIVE_AHEAD=2048`, say), else [`AHEAD_DEFAULT`].
#[inline]
pub(crate) fn ahead() -> usize {
    match AHEAD.load(Ordering::Relaxed) {
        usize::MAX => {
            let b = std::env::var("VECSEARCH_NATIVE_AHEAD")
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(AHEAD_DEFAULT);
            set_ahead(b);
            ahead()
        }
        b => b,
    }
}

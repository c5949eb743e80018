//! Writes an eventually consistent server has acknowledged but may not show
//! yet: what `sync()` waits for, and what `delete` consults to know whether
//! an id is present before the server shows it.

use std::sync::Mutex;

use vecsearch_core::IdMap;

/// What the last write since the last sync left under an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Holds a vector with this fingerprint.
    Present(u64),
    /// Deleted.
    Absent,
}

/// One write still to confirm: id, write sequence number, state it left.
pub(crate) type Entry = (u64, u64, State);

#[derive(Default)]
pub(crate) struct Pending {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    seq: u64,
    by_id: IdMap<(u64, State)>,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records acknowledged writes, in order.
    pub fn record(&self, writes: impl IntoIterator<Item = (u64, State)>) {
        let mut g = self.lock();
        for (id, state) in writes {
            g.seq += 1;
            let seq = g.seq;
            g.by_id.insert(id, (seq, state));
        }
    }

    /// The state the latest unconfirmed write left under `id`, if any.
    pub fn state(&self, id: u64) -> Option<State> {
        self.lock().by_id.get(&id).map(|&(_, s)| s)
    }

    /// Every unconfirmed write, oldest first.
    pub fn snapshot(&self) -> Vec<Entry> {
        let g = self.lock();
        let mut v: Vec<Entry> = g
            .by_id
            .iter()
            .map(|(&id, &(seq, s))| (id, seq, s))
            .collect();
        v.sort_unstable_by_key(|e| e.1);
        v
    }

    /// Forgets `id`'s write number `seq` once the server shows it (a later
    /// write to the same id stays pending).
    pub fn confirm(&self, id: u64, seq: u64) {
        let mut g = self.lock();
        if g.by_id.get(&id).is_some_and(|&(s, _)| s == seq) {
            g.by_id.remove(&id);
        }
    }

    /// Number of unconfirmed ids.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }
}

/// A fingerprint of a vector's exact bits, to recognise it when the server
/// sends it back (float text round-trips exactly, so equal vectors hash equal).
pub(crate) fn fingerprint(v: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in v {
        // -0.0 and 0.0 are the same stored value.
        let bits = if *x == 0.0 { 0 } else { x.to_bits() };
        h = (h ^ u64::from(bits)).wrapping_mul(0x0000_0100_0000_01b3);
        h ^= h >> 29;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_write_survives_earlier_confirmation() {
        let p = Pending::default();
        p.record([(1, State::Present(fingerprint(&[1.0])))]);
        let first = p.snapshot();
        p.record([(1, State::Absent)]);
        p.confirm(first[0].0, first[0].1);
        assert_eq!(p.state(1), Some(State::Absent));
        let second = p.snapshot();
        p.confirm(second[0].0, second[0].1);
        assert_eq!(p.len(), 0);
        assert_ne!(fingerprint(&[1.0, 2.0]), fingerprint(&[2.0, 1.0]));
        assert_eq!(fingerprint(&[0.0]), fingerprint(&[-0.0]));
    }
}

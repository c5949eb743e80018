//! Never trusting a reply: what a server sends is checked against what the
//! request allows before it becomes a result. Both clients use these checks;
//! anything that breaks them is `Error::Remote` naming what was wrong.
//!
//! Search hits: at most `k`, ids unique, within the backend's id range and
//! admitted by the filter, distances finite (also as `f32`) and within the
//! metric's range. Servers return hits best first; that order is *checked*
//! (non-decreasing distance, within float rounding), and the client then
//! sorts by `(distance, id)` so ties come out by id as the contract says.
//!
//! Rows by id (`get`, the presence check of `delete`, `sync`'s queries):
//! every row names one of the requested ids, once.

use std::collections::HashSet;

use vecsearch_core::{sort_neighbors, Error, IdFilter, IdMap, Metric, Neighbor, Result};

/// Rounding a reported distance may carry: a cosine distance of `-1e-7`
/// for a vector and itself is rounding, `-0.5` is not.
const SLACK: f64 = 1e-4;

/// An error for a reply that breaks what the request allows.
pub(crate) fn bad_reply(what: &str, problem: impl std::fmt::Display) -> Error {
    Error::Remote {
        status: 200,
        message: format!("untrustworthy reply to {what}: {problem}"),
    }
}

/// What a search request allows its reply to hold.
pub(crate) struct SearchRules<'a> {
    /// Which call this is, for messages (`Qdrant search`).
    pub what: &'a str,
    /// The index's metric.
    pub metric: Metric,
    /// The `k` asked for.
    pub k: usize,
    /// The backend's largest id.
    pub max_id: u64,
    /// The filter sent with the request, if any (its ids are checked
    /// where it is an allow-list).
    pub filter: Option<&'a IdFilter>,
}

/// Whether `hits` (sorted, asked for `want > k`) may have left out ids tied
/// with the `k`-th: all `want` came back and the last ties the `k`-th.
pub(crate) fn boundary_tied(hits: &[Neighbor], k: usize, want: usize) -> bool {
    k > 0 && want > k && hits.len() >= want && hits[want - 1].distance <= hits[k - 1].distance
}

/// Checks hits (id, distance as the contract defines it, computed in `f64`
/// from the server's score) in the server's order, and returns them sorted
/// by distance, ties by id.
pub(crate) fn check_hits(rules: &SearchRules<'_>, hits: Vec<(u64, f64)>) -> Result<Vec<Neighbor>> {
    let what = rules.what;
    if hits.len() > rules.k {
        return Err(bad_reply(
            what,
            format!("{} hits for k = {}", hits.len(), rules.k),
        ));
    }
    let mut seen = HashSet::with_capacity(hits.len());
    let mut out = Vec::with_capacity(hits.len());
    let mut prev = f64::NEG_INFINITY;
    for (id, d) in hits {
        if id > rules.max_id {
            return Err(bad_reply(
                what,
                format!("id {id} is above the backend's largest id {}", rules.max_id),
            ));
        }
        if rules.filter.is_some_and(|f| !f.admits(id)) {
            return Err(bad_reply(
                what,
                format!("id {id} is not admitted by the request's filter"),
            ));
        }
        if !seen.insert(id) {
            return Err(bad_reply(what, format!("id {id} appears twice")));
        }
        let d = checked_distance(rules.metric, d)
            .map_err(|p| bad_reply(what, format!("id {id}: {p}")))?;
        if f64::from(d) < prev - SLACK * prev.abs().max(1.0) {
            return Err(bad_reply(
                what,
                format!("hits are not ordered best first (id {id} at {d} after {prev})"),
            ));
        }
        prev = prev.max(f64::from(d));
        out.push(Neighbor { id, distance: d });
    }
    sort_neighbors(&mut out);
    Ok(out)
}

/// A distance as reported, if it can be one for `metric`: finite as `f32`,
/// L2 not negative, cosine within `[0, 2]` (rounding clamped in).
fn checked_distance(metric: Metric, d: f64) -> std::result::Result<f32, String> {
    let f = d as f32;
    if !d.is_finite() || !f.is_finite() {
        return Err(format!("distance {d} is not a finite f32"));
    }
    match metric {
        Metric::L2 | Metric::Jaccard if d < -SLACK => {
            Err(format!("distance {d} is negative, impossible for {metric}"))
        }
        Metric::L2 | Metric::Jaccard => Ok(f.max(0.0)),
        Metric::Cosine if !(-SLACK..=2.0 + SLACK).contains(&d) => {
            Err(format!("cosine distance {d} is outside [0, 2]"))
        }
        Metric::Cosine => Ok(f.clamp(0.0, 2.0)),
        Metric::InnerProduct => Ok(f),
    }
}

/// Checks that rows of a reply each name one of `requested` (by `row_id`),
/// none twice; returns each row's id, in order.
pub(crate) fn check_row_ids<R>(
    what: &str,
    requested: &[u64],
    rows: &[R],
    row_id: impl Fn(&R) -> Option<u64>,
) -> Result<Vec<u64>> {
    if rows.len() > requested.len() {
        return Err(bad_reply(
            what,
            format!("{} rows for {} ids", rows.len(), requested.len()),
        ));
    }
    let wanted: HashSet<u64> = requested.iter().copied().collect();
    let mut seen: IdMap<()> = IdMap::default();
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row_id(row).ok_or_else(|| bad_reply(what, "a row without a usable id"))?;
        if !wanted.contains(&id) {
            return Err(bad_reply(
                what,
                format!("a row for id {id}, which was not asked for"),
            ));
        }
        if seen.insert(id, ()).is_some() {
            return Err(bad_reply(what, format!("two rows for id {id}")));
        }
        ids.push(id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(metric: Metric, k: usize, filter: Option<&IdFilter>) -> SearchRules<'_> {
        SearchRules {
            what: "test",
            metric,
            k,
            max_id: 100,
            filter,
        }
    }

    #[test]
    fn good_hits_come_back_sorted_ties_by_id() {
        let got = check_hits(
            &rules(Metric::L2, 3, None),
            vec![(5, 0.0), (2, 1.0), (1, 1.0)],
        )
        .unwrap();
        let ids: Vec<u64> = got.iter().map(|n| n.id).collect();
        assert_eq!(ids, [5, 1, 2]);
        // Rounding below zero is clamped in.
        let got = check_hits(&rules(Metric::Cosine, 1, None), vec![(1, -1e-7)]).unwrap();
        assert_eq!(got[0].distance, 0.0);
    }

    #[test]
    fn impossible_hits_are_refused() {
        let allow = IdFilter::allow([1, 2]);
        let bad: Vec<(SearchRules<'_>, Vec<(u64, f64)>)> = vec![
            (rules(Metric::L2, 1, None), vec![(1, 0.0), (2, 1.0)]),
            (rules(Metric::L2, 3, None), vec![(1, 0.0), (1, 1.0)]),
            (rules(Metric::L2, 3, None), vec![(101, 0.0)]),
            (rules(Metric::L2, 3, Some(&allow)), vec![(3, 0.0)]),
            (rules(Metric::L2, 3, None), vec![(1, -4.0)]),
            (rules(Metric::L2, 3, None), vec![(1, 1e39)]),
            (rules(Metric::L2, 3, None), vec![(1, f64::NAN)]),
            (rules(Metric::Cosine, 3, None), vec![(1, 2.5)]),
            (rules(Metric::Cosine, 3, None), vec![(1, -0.5)]),
            (
                rules(Metric::InnerProduct, 3, None),
                vec![(1, f64::INFINITY)],
            ),
            (rules(Metric::L2, 3, None), vec![(1, 2.0), (2, 1.0)]),
        ];
        for (r, hits) in bad {
            let shown = format!("{hits:?}");
            assert!(
                matches!(check_hits(&r, hits), Err(Error::Remote { .. })),
                "{shown}"
            );
        }
    }

    #[test]
    fn rows_must_match_the_request() {
        let id = |r: &Option<u64>| *r;
        assert_eq!(check_row_ids("t", &[1, 2], &[Some(2)], id).unwrap(), [2]);
        assert!(check_row_ids("t", &[1], &[Some(3)], id).is_err());
        assert!(check_row_ids("t", &[1], &[None], id).is_err());
        assert!(check_row_ids("t", &[1, 2], &[Some(1), Some(1)], id).is_err());
        assert!(check_row_ids("t", &[1], &[Some(1), Some(1)], id).is_err());
    }
}

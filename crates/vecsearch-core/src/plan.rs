//! How a search was answered: [`Plan`] and [`Explain`], what
//! [`VectorIndex::explain`](crate::VectorIndex::explain) returns, so a user
//! can see why one filtered query was slow and another was not.

use crate::Neighbor;

/// Below this many matching coordinates (matches x dim) a local engine
/// answers a filtered search by scanning the matches exactly: the scan then
/// costs less than a walk through them. Measured with
/// `vecsearch bench --filters` forcing each plan (`VECSEARCH_NATIVE_PLAN`),
/// see the README's filtered-search section.
pub const SCAN_BELOW_COORDS: usize = 1_000_000;

/// Whether a filtered search of `matches` admitted rows of `dim`
/// coordinates among `live` should scan the matches rather than walk the
/// graph with width `ef`: few matches ([`SCAN_BELOW_COORDS`]), no more
/// matches than the walk would keep anyway, or a walk as wide as the index.
pub fn exact_scan_pays(matches: usize, live: usize, ef: usize, dim: usize) -> bool {
    matches <= ef || ef >= live || matches.saturating_mul(dim) <= SCAN_BELOW_COORDS
}

/// How many rows a filtered walk of width `ef` over `matches` rows may score
/// before it gives up for the exact scan of the matches (the plan
/// [`Plan::WalkThenScan`]): a quarter of them, but no less than `32 x ef`
/// (a walk that finds its matches scores 15-30 x ef rows at 10% shares),
/// and no more than all of them: native's rule. (hnswlib's walk, which
/// follows every rejected node, is allowed all of the matches.)
///
/// A walk fails where the filter avoids the query's neighbourhood (the
/// bench's anti-correlated region): it scores its way across to the matches
/// and gives up. Allowed as many rows as the filter matches (0673840),
/// native's walk in that cell ran at 0.77x flat's plain scan of the matches
/// at 200,000 points and 0.69x at 1,000,000; with a quarter, 1.04x and 1.33x
/// (`vecsearch bench --filters --n 200000|1000000 --dim 96`, the README's
/// filtered tables).
pub fn walk_budget(matches: usize, ef: usize) -> usize {
    (matches / 4).max(ef.saturating_mul(32)).min(matches)
}

/// The strategy an engine used for one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Plan {
    /// No filter: a graph walk (exact backends: a scan).
    Walk,
    /// Every matching row scored: exact. Chosen when the filter matches
    /// few rows (matches x dim below the engine's crossover), when `ef`
    /// covers the index, and always by flat.
    ExactScan,
    /// A graph walk that scores every node it passes and keeps the ones
    /// the filter admits (failing nodes still carry the walk). Chosen for
    /// filters that admit a large share of the index.
    FilteredWalk,
    /// A graph walk that steps over failing neighbours to their own
    /// neighbours without scoring them (ACORN-1's two-hop expansion), so
    /// it keeps its way through a sparse match set. Chosen for filters
    /// that admit a small share, but too many rows to scan.
    TwoHopWalk,
    /// A walk that scored more rows than its budget (native,
    /// [`walk_budget`]: a quarter of the filter's matches, at least 32 x
    /// ef, or fewer where it met no match at all; hnswlib: all of them),
    /// so it stopped and scanned the matches instead (exact).
    WalkThenScan,
    /// A graph walk that found fewer than `min(k, matches)` hits even at
    /// full width, completed by an exact scan.
    WalkWidened,
    /// Nothing to search: `k` 0, or a filter that admits no id.
    Nothing,
    /// A server answered with its own planner.
    Server,
}

impl Plan {
    /// A short name: `exact_scan`, `two_hop_walk`, ...
    pub fn name(self) -> &'static str {
        match self {
            Plan::Walk => "walk",
            Plan::ExactScan => "exact_scan",
            Plan::FilteredWalk => "filtered_walk",
            Plan::TwoHopWalk => "two_hop_walk",
            Plan::WalkThenScan => "walk_then_scan",
            Plan::WalkWidened => "walk_widened",
            Plan::Nothing => "nothing",
            Plan::Server => "server",
        }
    }

    /// Whether this plan's answer is exact (scored every admitted row).
    pub fn is_exact(self) -> bool {
        matches!(
            self,
            Plan::ExactScan | Plan::WalkThenScan | Plan::WalkWidened | Plan::Nothing
        )
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What an engine reports about one query it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trace {
    /// The strategy.
    pub plan: Plan,
    /// Rows whose distance to the query was computed (`None` where the
    /// engine does not count them: hnswlib's walks, servers).
    pub scored: Option<usize>,
}

impl Trace {
    /// A trace of `plan` with no count.
    pub fn of(plan: Plan) -> Trace {
        Trace { plan, scored: None }
    }
}

/// One search with its [`Trace`]: the hits exactly as `search` returns
/// them, the plan, the filter's exact match count where the index knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Explain {
    /// The hits, as [`VectorIndex::search`](crate::VectorIndex::search) would return them.
    pub hits: Vec<Neighbor>,
    /// How they were found.
    pub plan: Plan,
    /// The exact number of live ids the filter admits (local backends;
    /// `None` without a filter or on a server).
    pub matches: Option<usize>,
    /// Live vectors in the index.
    pub live: usize,
    /// Rows scored, where the engine counts them.
    pub scored: Option<usize>,
}

impl std::fmt::Display for Explain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plan {}", self.plan)?;
        if let Some(m) = self.matches {
            write!(f, ", filter matches {m} of {} live", self.live)?;
        } else {
            write!(f, ", {} live", self.live)?;
        }
        if let Some(s) = self.scored {
            write!(f, ", {s} rows scored")?;
        }
        write!(f, ", {} hits", self.hits.len())
    }
}

//! The one analysis cache: each negotiation keeps at most one analysis of its current
//! positions (inside `bargain::Negotiation`, where offers are evaluated against it and
//! `AnalyzeNegotiation` reuses it), and every kept analysis holds its frontier points against
//! one budget over all negotiations. An analysis the budget cannot take is forgotten after
//! the call that computed it (computed again when needed: memory over speed), so the budget
//! bounds what is held.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::Entry;

/// Frontier points above which an analysis is not kept for reuse (memory over speed).
pub const ANALYSIS_CACHE_MAX_POINTS: usize = 100_000;
/// Frontier points kept for reuse over all negotiations together (a few hundred bytes each);
/// an analysis that would go past it is not kept.
pub const ANALYSIS_CACHE_BUDGET_POINTS: usize = 1_000_000;

/// Points held against the shared budget by one kept analysis, given back when dropped.
pub struct Charge {
    used: Arc<AtomicUsize>,
    points: usize,
    /// Heap bytes the analysis holds (measured), counted in the registry's budget.
    bytes: usize,
    /// Which analysis it pays for (its address).
    of: usize,
}

/// Points the kept analyses hold (a gauge), beside [`BUDGET_GAUGE`].
const USED_GAUGE: &str = "tradepact_analysis_cache_points";
/// The points they may hold.
const BUDGET_GAUGE: &str = "tradepact_analysis_cache_budget_points";

impl Charge {
    /// Heap bytes the analysis holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Heap bytes per frontier point when they cannot be measured (no counting allocator).
const BYTES_PER_POINT: usize = 256;

impl Drop for Charge {
    fn drop(&mut self) {
        self.used.fetch_sub(self.points, Ordering::AcqRel);
        metrics::gauge!(USED_GAUGE).decrement(self.points as f64);
    }
}

/// The budget the kept analyses share.
#[derive(Clone)]
pub struct AnalysisCache {
    used: Arc<AtomicUsize>,
    budget: usize,
    max_points: usize,
}

impl Default for AnalysisCache {
    fn default() -> Self {
        AnalysisCache::new(ANALYSIS_CACHE_BUDGET_POINTS, ANALYSIS_CACHE_MAX_POINTS)
    }
}

impl AnalysisCache {
    /// At most `budget` points over all kept analyses, `max_points` for one.
    pub fn new(budget: usize, max_points: usize) -> AnalysisCache {
        metrics::gauge!(BUDGET_GAUGE).set(budget as f64);
        AnalysisCache {
            used: Arc::new(AtomicUsize::new(0)),
            budget,
            max_points,
        }
    }

    /// Points held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Takes `points` from the budget, if they fit.
    fn take(&self, points: usize, of: usize) -> Option<Charge> {
        if points > self.max_points {
            return None;
        }
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(points).filter(|&total| total <= self.budget)
            })
            .ok()
            .map(|_| {
                metrics::gauge!(USED_GAUGE).increment(points as f64);
                Charge {
                    used: self.used.clone(),
                    points,
                    bytes: 0,
                    of,
                }
            })
    }

    /// Brings `entry`'s charge in line with the analysis its negotiation keeps: none kept,
    /// none charged; a new one is charged, or forgotten if the budget cannot take it.
    pub fn settle(&self, entry: &mut Entry) {
        let Some(kept) = entry.negotiation.kept_analysis() else {
            entry.charge = None;
            return;
        };
        let of = Arc::as_ptr(kept) as usize;
        if entry.charge.as_ref().is_some_and(|c| c.of == of) {
            return;
        }
        let points = kept.frontier.points.len();
        entry.charge = None; // the one it replaces gives its points back first
        let bytes =
            tradepact_rpc::alloc::heap_bytes_of(kept.as_ref()).unwrap_or(points * BYTES_PER_POINT);
        entry.charge = self.take(points, of).map(|mut c| {
            c.bytes = bytes;
            c
        });
        if entry.charge.is_none() {
            tracing::debug!(points, "analysis not kept: over the cache's budget");
            entry.negotiation.forget_analysis();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stay_within_the_budget_and_are_given_back_on_drop() {
        let cache = AnalysisCache::new(1000, 800);
        let a = cache.take(600, 1).unwrap();
        assert!(cache.take(500, 2).is_none(), "over the budget");
        assert!(cache.take(900, 2).is_none(), "over the largest one");
        let b = cache.take(400, 3).unwrap();
        assert_eq!(cache.used(), 1000);
        drop(a);
        assert_eq!(cache.used(), 400);
        let unbounded = AnalysisCache::new(usize::MAX, usize::MAX);
        let _most = unbounded.take(usize::MAX - 1, 4).unwrap();
        assert!(unbounded.take(10, 5).is_none(), "no overflow");
        drop(b);
        assert_eq!(cache.used(), 0);
    }
}

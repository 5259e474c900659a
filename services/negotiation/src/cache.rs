//! Analyses kept for reuse: repeated analyses (and the pages of one) of an unchanged
//! negotiation reuse the last one, within one budget of frontier points over all negotiations.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tradepact_bargain::Analysis;

use crate::service::Entry;

/// Frontier points above which an analysis is not kept for reuse (memory over speed).
pub const ANALYSIS_CACHE_MAX_POINTS: usize = 100_000;
/// Frontier points kept for reuse over all negotiations together (a few hundred bytes each);
/// an analysis that would go past it is not kept.
pub const ANALYSIS_CACHE_BUDGET_POINTS: usize = 1_000_000;

/// An analysis kept for reuse, with the event count it was computed at. Its frontier points
/// count against the service's budget until it is dropped.
pub(crate) struct Cached {
    pub version: u64,
    pub analysis: Arc<Analysis>,
    _charge: Charge,
}

/// Points held against a shared budget, given back when dropped.
struct Charge {
    used: Arc<AtomicUsize>,
    points: usize,
}

impl Charge {
    /// Takes `points` from the budget, if they fit.
    fn take(used: &Arc<AtomicUsize>, points: usize, budget: usize) -> Option<Charge> {
        used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
            u.checked_add(points).filter(|&total| total <= budget)
        })
        .ok()
        .map(|_| Charge {
            used: used.clone(),
            points,
        })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.used.fetch_sub(self.points, Ordering::AcqRel);
    }
}

/// The budget the kept analyses share.
#[derive(Clone, Default)]
pub(crate) struct AnalysisCache {
    used: Arc<AtomicUsize>,
}

impl AnalysisCache {
    /// Keeps `solved` (of `entry` at `version`) for reuse, if the budget allows.
    pub fn keep(&self, entry: &mut Entry, version: u64, solved: &Arc<Analysis>) {
        let points = solved.frontier.points.len();
        let charge = (points <= ANALYSIS_CACHE_MAX_POINTS)
            .then(|| Charge::take(&self.used, points, ANALYSIS_CACHE_BUDGET_POINTS))
            .flatten();
        match charge {
            Some(charge) => {
                entry.analysis = Some(Cached {
                    version,
                    analysis: solved.clone(),
                    _charge: charge,
                })
            }
            None => tracing::debug!(points, "analysis not kept for reuse"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_points_stay_within_the_budget_and_are_given_back_on_drop() {
        let used = Arc::new(AtomicUsize::new(0));
        let a = Charge::take(&used, 600, 1000).unwrap();
        assert!(Charge::take(&used, 500, 1000).is_none(), "over the budget");
        let b = Charge::take(&used, 400, 1000).unwrap();
        assert_eq!(used.load(Ordering::Acquire), 1000);
        drop(a);
        assert_eq!(used.load(Ordering::Acquire), 400);
        assert!(
            Charge::take(&used, usize::MAX, usize::MAX).is_none(),
            "no overflow"
        );
        drop(b);
        assert_eq!(used.load(Ordering::Acquire), 0);
    }
}

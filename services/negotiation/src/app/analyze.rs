//! `AnalyzeNegotiation`'s work: the analysis of a negotiation's current positions, reused
//! from the one the negotiation keeps when it is complete (with its ZOPA), else computed as
//! a heavy call on a snapshot (no lock held) and kept for the offers and the next pages.

use std::sync::Arc;

use tradepact_bargain::analysis::{self, LogrollHint, Standing};
use tradepact_bargain::{Analysis, Negotiation, OutcomeSpace, Position};
use tradepact_model::{Failure, Outcome};

use super::caller::Caller;
use super::Negotiations;

/// A negotiation's analysis and what it is judged on.
pub struct Analyzed {
    /// Events the negotiation had when it was analysed (page tokens are tied to it).
    pub version: u64,
    /// The outcome space.
    pub space: OutcomeSpace,
    /// The parties, in order.
    pub parties: Vec<String>,
    /// Frontier, solutions and ZOPA.
    pub analysis: Arc<Analysis>,
    /// Where every offer stands.
    pub standings: Vec<Standing>,
    /// Issues two parties weigh differently enough to trade, strongest first.
    pub hints: Vec<LogrollHint>,
}

impl Negotiations {
    /// The analysis of negotiation `id`, for a `caller` who must see every position;
    /// logrolling hints between weights differing by at least `min_ratio`.
    pub async fn analyze(&self, id: &str, caller: &Caller, min_ratio: f64) -> Outcome<Analyzed> {
        let (_, entry) = self.entry(id).await?;
        // A snapshot, so that the computation holds no lock other calls need.
        let (version, space, parties, positions, offers, kept) = {
            let entry = entry.lock().await;
            let n = &entry.negotiation;
            caller.require_every_party(&n.parties, "an analysis")?;
            let positions = every_position(n)?;
            let kept = n.kept_analysis().filter(|a| a.zopa.is_some()).cloned();
            let offers: Vec<_> = n.offers.iter().map(|o| (o.id, o.package.clone())).collect();
            (
                n.version,
                n.space.clone(),
                n.parties.clone(),
                positions,
                offers,
                kept,
            )
        };
        let analysis = match kept {
            Some(kept) => kept,
            None => {
                let (run_space, run_positions) = (space.clone(), positions.clone());
                let solved = self
                    .heavy
                    .run("an analysis", move || {
                        let refs: Vec<&Position> = run_positions.iter().collect();
                        Negotiation::analyze_snapshot(&run_space, &refs)
                    })
                    .await?;
                Arc::new(solved)
            }
        };
        let mut entry = entry.lock().await;
        if entry
            .negotiation
            .install_analysis(version, Ok(analysis.clone()))
        {
            self.cache.settle(&mut entry);
            // The kept analysis counts in the registry's budget.
            self.registry.changed(&entry).await;
        }
        drop(entry);
        let refs: Vec<&Position> = positions.iter().collect();
        let standings = offers
            .iter()
            .map(|(id, package)| analysis::standing(&analysis, &refs, *id, package))
            .collect();
        Ok(Analyzed {
            version,
            hints: analysis::logrolling_hints(&refs, min_ratio),
            parties,
            space,
            analysis,
            standings,
        })
    }
}

/// Every party's position, or `FailedPrecondition` naming the parties without one.
pub(crate) fn every_position(n: &Negotiation) -> Outcome<Vec<Position>> {
    match n.all_positions() {
        Some(positions) => Ok(positions.into_iter().cloned().collect()),
        None => {
            let missing: Vec<&str> = n
                .parties
                .iter()
                .zip(&n.positions)
                .filter(|(_, p)| p.is_none())
                .map(|(name, _)| name.as_str())
                .collect();
            Err(Failure::FailedPrecondition(format!(
                "every party needs a position before analysis; missing: {}",
                missing.join(", ")
            )))
        }
    }
}

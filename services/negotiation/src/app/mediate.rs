//! `SimulateMediation`'s work: the single-negotiation-text protocol between the parties'
//! positions (see `tradepact_bargain::mediate`), run as a heavy call, and where its text ends
//! against the negotiation's analysis. Nothing is recorded.

use tradepact_bargain::analysis::{self, solve};
use tradepact_bargain::mediate::{mediate, MediationOutcome, Voter};
use tradepact_bargain::{OutcomeSpace, Package, Position};
use tradepact_model::Outcome;

use super::analyze::every_position;
use super::caller::Caller;
use super::Negotiations;

/// A mediation and where it ended.
pub struct Mediated {
    /// The outcome space.
    pub space: OutcomeSpace,
    /// The mediation.
    pub outcome: MediationOutcome,
    /// Whether the final text is on the frontier.
    pub pareto_optimal: bool,
    /// Its distance to the nearest Nash point.
    pub distance_to_nash: Option<f64>,
    /// A Nash package and its utilities.
    pub nash: Option<(Package, Vec<f64>)>,
}

impl Negotiations {
    /// Mediates negotiation `id` for a `caller` who must see every position.
    pub async fn mediate(
        &self,
        id: &str,
        caller: &Caller,
        voters: Vec<Voter>,
        rounds: u32,
        seed: u64,
    ) -> Outcome<Mediated> {
        let (_, entry) = self.entry(id).await?;
        let (space, positions) = {
            let entry = entry.lock().await;
            let n = &entry.negotiation;
            caller.require_every_party(&n.parties, "a mediation")?;
            (n.space.clone(), every_position(n)?)
        };
        let run_space = space.clone();
        let (outcome, standing, nash) = self
            .heavy
            .run("a mediation", move || {
                let refs: Vec<&Position> = positions.iter().collect();
                let outcome = mediate(&run_space, &refs, &voters, rounds, seed)?;
                let solved = solve(&run_space, &refs, 1)?;
                let standing = analysis::standing(&solved, &refs, 0, &outcome.text);
                let nash = solved.nash.points.first().and_then(|p| {
                    let package = p.packages.first()?.clone();
                    Some((package, p.utilities_f64()))
                });
                Ok((outcome, standing, nash))
            })
            .await?;
        Ok(Mediated {
            space,
            outcome,
            pareto_optimal: standing.pareto_optimal,
            distance_to_nash: standing.distance_to_nash,
            nash,
        })
    }
}

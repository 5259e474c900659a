//! Automated negotiation: alternating offers between concession strategies.
//!
//! Protocol (stacked alternating offers): parties take turns in order; on its turn a party
//! either accepts the standing offer or rejects it and makes its own. An offer is agreed
//! once every other party has accepted it in turn. Each turn is one [`Step`]; a round is one
//! turn of every party; nothing happens after the deadline round.
//!
//! Strategies have complete information (they know every position) and pick offers on the
//! Pareto frontier of rational outcomes, so no offer is below its proposer's reservation
//! value. Acceptance rule, for every strategy: accept when the standing offer is worth at least
//! what one would offer next. Ties between equally good offers are broken by a seeded
//! generator, so a run is reproduced exactly by its seed.

use serde::{Deserialize, Serialize};

use crate::frontier::{pareto_frontier, FrontierPoint, ParetoFrontier};
use crate::position::{Position, SCALE};
use crate::rng::SplitMix64;
use crate::space::{OutcomeSpace, Package};
use crate::{Error, Result};

/// How a simulated party concedes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Strategy {
    /// target(t) = best − (best − reservation) · t^(1/e), t ∈ [0, 1] the normalised time:
    /// Boulware e < 1 (concedes late), linear e = 1, Conceder e > 1 (concedes early).
    TimeBased {
        /// The exponent e (> 0).
        exponent: f64,
    },
    /// Naive tit-for-tat: concedes, in its own utility, as much as the others conceded in
    /// theirs on their last offers; starts at its best.
    TitForTat,
    /// Zeuthen: the party whose own offer has the smaller Nash product (equivalently the
    /// smaller risk of conflict) concedes, just enough to make the other's risk the smaller.
    /// With more than two parties, Harsanyi's generalisation: a party whose last offer has the
    /// smallest Nash product of the offers on the table (each party's last) concedes, just
    /// enough that its offer's product exceeds the smallest of the others'.
    Zeuthen,
}

impl Strategy {
    /// Boulware (e = 0.2).
    pub const BOULWARE: Strategy = Strategy::TimeBased { exponent: 0.2 };
    /// Linear (e = 1).
    pub const LINEAR: Strategy = Strategy::TimeBased { exponent: 1.0 };
    /// Conceder (e = 5).
    pub const CONCEDER: Strategy = Strategy::TimeBased { exponent: 5.0 };
}

/// What a party did on its turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// Proposed a package.
    Offer(Package),
    /// Accepted the standing offer.
    Accept,
}

/// One turn of a simulation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Turn number (0-based).
    pub turn: u32,
    /// Round (1-based).
    pub round: u32,
    /// The acting party.
    pub party: usize,
    /// What it did.
    pub action: Action,
    /// Every party's utility of the standing offer after this turn.
    pub utilities: Vec<f64>,
    /// For an offer: the drop in the proposer's utility from its previous offer.
    pub concession: Option<f64>,
    /// Whether this turn completed an agreement.
    pub agreed: bool,
}

/// How a simulation ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The agreed package, if any.
    pub agreement: Option<Package>,
    /// Every party's utility of the agreement (reservation values without one).
    pub utilities: Vec<f64>,
    /// Turns played.
    pub turns: u32,
    /// Why it ended.
    pub reason: String,
}

/// A running simulation; iterate it for its steps, then read [`Simulation::outcome`].
pub struct Simulation<'a> {
    positions: Vec<&'a Position>,
    strategies: Vec<Strategy>,
    deadline_rounds: u32,
    frontier: ParetoFrontier,
    rng: SplitMix64,
    turn: u32,
    /// Standing offer: frontier index or package, utilities (units), acceptors.
    standing: Option<(Package, Vec<i64>, Vec<usize>)>,
    /// Last offer of each party (utilities in units), and the one before.
    last_offers: Vec<Vec<Vec<i64>>>,
    /// Tit-for-tat targets (units).
    targets: Vec<i64>,
    best: Vec<i64>,
    outcome: Option<Outcome>,
}

impl<'a> Simulation<'a> {
    /// Sets up a simulation; fails on a strategy that does not fit (a non-positive exponent) or
    /// a zero deadline.
    pub fn new(
        space: &'a OutcomeSpace,
        positions: Vec<&'a Position>,
        strategies: Vec<Strategy>,
        deadline_rounds: u32,
        seed: u64,
    ) -> Result<Simulation<'a>> {
        if strategies.len() != positions.len() {
            return Err(Error::invalid(
                "strategies",
                format!(
                    "one strategy per party: {} parties, {} strategies",
                    positions.len(),
                    strategies.len()
                ),
            ));
        }
        for (i, s) in strategies.iter().enumerate() {
            match s {
                Strategy::TimeBased { exponent } if !(exponent.is_finite() && *exponent > 0.0) => {
                    return Err(Error::invalid(
                        format!("strategies[{i}].exponent"),
                        format!("must be a positive number, got {exponent}"),
                    ))
                }
                _ => {}
            }
        }
        if deadline_rounds == 0 {
            return Err(Error::invalid("deadline_rounds", "must be at least 1"));
        }
        let frontier = pareto_frontier(space, &positions, 1)?;
        let best: Vec<i64> = (0..positions.len())
            .map(|p| {
                frontier
                    .points
                    .iter()
                    .map(|f| f.utilities[p])
                    .max()
                    .unwrap_or(i64::MIN)
            })
            .collect();
        let n = positions.len();
        let mut sim = Simulation {
            positions,
            strategies,
            deadline_rounds,
            frontier,
            rng: SplitMix64::new(seed),
            turn: 0,
            standing: None,
            last_offers: vec![Vec::new(); n],
            targets: best.clone(),
            best,
            outcome: None,
        };
        if sim.frontier.points.is_empty() {
            sim.outcome = Some(
                sim.no_agreement("no outcome is acceptable to every party (empty ZOPA)".into()),
            );
        }
        Ok(sim)
    }

    /// The frontier the strategies choose from.
    pub fn frontier(&self) -> &ParetoFrontier {
        &self.frontier
    }

    /// The outcome, once the simulation has ended.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Runs to the end; returns the steps and the outcome.
    pub fn run(mut self) -> (Vec<Step>, Outcome) {
        let steps: Vec<Step> = self.by_ref().collect();
        let outcome = self
            .outcome
            .clone()
            .expect("a finished simulation has an outcome");
        (steps, outcome)
    }

    fn no_agreement(&self, reason: String) -> Outcome {
        Outcome {
            agreement: None,
            utilities: self.positions.iter().map(|p| p.reservation()).collect(),
            turns: self.turn,
            reason,
        }
    }

    /// Normalised time of `round`: 0 in the first round, 1 in the deadline round.
    fn time(&self, round: u32) -> f64 {
        if self.deadline_rounds <= 1 {
            1.0
        } else {
            f64::from(round - 1) / f64::from(self.deadline_rounds - 1)
        }
    }

    /// Among frontier points where `party` gets at least `target`, the best for the others
    /// (ties broken by the generator).
    fn pick(&mut self, party: usize, target: i64) -> Option<FrontierPoint> {
        let others = |p: &FrontierPoint| p.utilities.iter().sum::<i64>() - p.utilities[party];
        let eligible: Vec<&FrontierPoint> = self
            .frontier
            .points
            .iter()
            .filter(|p| p.utilities[party] >= target)
            .collect();
        let best = eligible.iter().map(|p| others(p)).max()?;
        let tied: Vec<&FrontierPoint> =
            eligible.into_iter().filter(|p| others(p) == best).collect();
        let i = self.rng.below(tied.len() as u64) as usize;
        Some(tied[i].clone())
    }

    fn nash_product(&self, u: &[i64]) -> f64 {
        u.iter()
            .zip(&self.positions)
            .map(|(u, p)| ((u - p.reservation_units()) as f64 / SCALE).max(0.0))
            .product()
    }

    /// The offer `party` would make now (`None`: it would take the standing offer).
    fn next_offer(&mut self, party: usize, round: u32) -> Option<FrontierPoint> {
        let reservation = self.positions[party].reservation_units();
        match self.strategies[party] {
            Strategy::TimeBased { exponent } => {
                let t = self.time(round);
                let best = self.best[party];
                let span = (best - reservation).max(0) as f64;
                let target = best - (span * t.powf(1.0 / exponent)).round() as i64;
                self.pick(party, target.max(reservation))
            }
            Strategy::TitForTat => {
                let conceded: Vec<i64> = (0..self.positions.len())
                    .filter(|&q| q != party)
                    .filter_map(|q| {
                        let offers = &self.last_offers[q];
                        let n = offers.len();
                        (n >= 2).then(|| (offers[n - 2][q] - offers[n - 1][q]).max(0))
                    })
                    .collect();
                if !conceded.is_empty() && !self.last_offers[party].is_empty() {
                    let mean = conceded.iter().sum::<i64>() / conceded.len() as i64;
                    self.targets[party] = (self.targets[party] - mean).max(reservation);
                }
                let target = self.targets[party];
                self.pick(party, target)
            }
            Strategy::Zeuthen => {
                let Some(own) = self.last_offers[party].last().cloned() else {
                    let best = self.best[party];
                    return self.pick(party, best);
                };
                if self.standing.is_none() {
                    return self.pick(party, own[party]);
                }
                // The smallest Nash product of the others' offers on the table (bilaterally:
                // the other's offer, which is the standing one).
                let lowest = (0..self.positions.len())
                    .filter(|&q| q != party)
                    .filter_map(|q| self.last_offers[q].last())
                    .map(|u| self.nash_product(u))
                    .fold(f64::INFINITY, f64::min);
                if !lowest.is_finite() || self.nash_product(&own) > lowest {
                    // Another's risk is smaller: it is theirs to concede.
                    return self.pick(party, own[party]);
                }
                // Concede just enough: the best point for us whose Nash product beats theirs.
                // Conceding to a point worth no more than the standing offer is accepting it (the
                // acceptance rule); the point is still the party's proposal on the table.
                let eligible: Vec<&FrontierPoint> = (self.frontier.points.iter())
                    .filter(|p| self.nash_product(&p.utilities) > lowest)
                    .collect();
                let u = eligible.iter().map(|p| p.utilities[party]).max()?;
                if self.positions.len() == 2 {
                    // Bilaterally the frontier's best point for the other at that level is the
                    // eligible one (and the generator's draws stay as they were).
                    return self.pick(party, u);
                }
                // With more parties, among the eligible points at that level, the best for the
                // others (ties broken by the generator).
                let others =
                    |p: &FrontierPoint| p.utilities.iter().sum::<i64>() - p.utilities[party];
                let level: Vec<&FrontierPoint> = eligible
                    .into_iter()
                    .filter(|p| p.utilities[party] == u)
                    .collect();
                let best = level.iter().map(|p| others(p)).max()?;
                let tied: Vec<&FrontierPoint> =
                    level.into_iter().filter(|p| others(p) == best).collect();
                let i = self.rng.below(tied.len() as u64) as usize;
                Some(tied[i].clone())
            }
        }
    }
}

impl Iterator for Simulation<'_> {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if self.outcome.is_some() {
            return None;
        }
        if crate::cancel::is_cancelled() {
            // Stopped from outside: no outcome (the caller knows why).
            return None;
        }
        let n = self.positions.len();
        let party = self.turn as usize % n;
        let round = self.turn / n as u32 + 1;
        if round > self.deadline_rounds {
            self.outcome = Some(self.no_agreement(format!(
                "no agreement within the deadline of {} rounds",
                self.deadline_rounds
            )));
            return None;
        }
        let proposal = self.next_offer(party, round);
        let turn = self.turn;
        self.turn += 1;
        // Accept when the standing offer is worth at least what we would offer next.
        if let Some((package, utilities, mut acceptors)) = self.standing.take() {
            let would_offer = proposal.as_ref().map_or(i64::MIN, |p| p.utilities[party]);
            if utilities[party] >= would_offer {
                if let (Strategy::Zeuthen, Some(p)) = (self.strategies[party], &proposal) {
                    // A Zeuthen party that conceded and accepts keeps its concession on the
                    // table (with more than two parties, the others' risks are judged by it).
                    self.last_offers[party].push(p.utilities.clone());
                }
                acceptors.push(party);
                let agreed = acceptors.len() == n;
                let step = Step {
                    turn,
                    round,
                    party,
                    action: Action::Accept,
                    utilities: utilities.iter().map(|&u| u as f64 / SCALE).collect(),
                    concession: None,
                    agreed,
                };
                if agreed {
                    self.outcome = Some(Outcome {
                        agreement: Some(package),
                        utilities: step.utilities.clone(),
                        turns: self.turn,
                        reason: format!("agreed in round {round}"),
                    });
                } else {
                    self.standing = Some((package, utilities, acceptors));
                }
                return Some(step);
            }
        }
        let Some(point) = proposal else {
            // Nothing to offer and nothing acceptable: only possible without a ZOPA.
            self.outcome = Some(self.no_agreement("no acceptable offer left".into()));
            return None;
        };
        let package = point.packages[0].clone();
        let concession = self.last_offers[party]
            .last()
            .map(|prev| (prev[party] - point.utilities[party]) as f64 / SCALE);
        self.last_offers[party].push(point.utilities.clone());
        self.standing = Some((package.clone(), point.utilities.clone(), vec![party]));
        Some(Step {
            turn,
            round,
            party,
            action: Action::Offer(package),
            utilities: point.utilities_f64(),
            concession,
            agreed: false,
        })
    }
}

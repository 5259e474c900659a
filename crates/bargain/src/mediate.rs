//! Mediated negotiation: the single-negotiation-text protocol (Raiffa; as simulated by Klein,
//! Faratin, Sayama and Bar-Yam, "Negotiating complex contracts", 2003).
//!
//! A mediator holds one text (a package), starting from a seeded random one. Each round it
//! proposes a change to one issue or, half the time, to two (a seeded random other option for
//! each: a two-issue change can trade one issue against another, which is how a text improves
//! for everyone when every issue opposes the parties), and every party votes on it; the change
//! is adopted only when no party vetoes it (unanimity). How a party votes:
//! - **hill climber**: accepts a change that does not lower its utility;
//! - **annealer**: also accepts a change that lowers its utility by Δ with probability
//!   `exp(−Δ / T)`, the temperature `T` falling linearly from its initial value to 0 at the
//!   last round (so it explores early and climbs late).
//!
//! With hill climbers only, every adopted change is a weak Pareto improvement, so the text ends
//! where no change of one or two issues helps one party without hurting another (a local Pareto
//! optimum, not always a global one). At the end, a text below some party's reservation value
//! is no agreement (that party walks away).

use serde::{Deserialize, Serialize};

use crate::position::{Position, SCALE};
use crate::rng::SplitMix64;
use crate::space::{OutcomeSpace, Package};
use crate::{Error, Result};

/// Most rounds one mediation may run.
pub const MAX_ROUNDS: u32 = 1_000_000;

/// How a party votes on the mediator's proposals.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Voter {
    /// Accepts a change that does not lower its utility.
    HillClimber,
    /// Also accepts a worse change with probability exp(−Δ / T), T falling linearly from
    /// `initial_temperature` to 0.
    Annealer {
        /// The starting temperature (utility units in [0, 1]; > 0).
        initial_temperature: f64,
    },
}

/// The mediation's end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediationOutcome {
    /// The final text.
    pub text: Package,
    /// Every party's utility of it.
    pub utilities: Vec<f64>,
    /// Whether every party gets at least its reservation value (else no agreement).
    pub agreed: bool,
    /// Rounds run.
    pub rounds: u32,
    /// Changes adopted.
    pub adopted: u32,
    /// The text the mediator started from.
    pub start: Package,
}

/// Runs `rounds` rounds of single-text mediation between parties voting as `voters`.
pub fn mediate(
    space: &OutcomeSpace,
    positions: &[&Position],
    voters: &[Voter],
    rounds: u32,
    seed: u64,
) -> Result<MediationOutcome> {
    if voters.len() != positions.len() {
        return Err(Error::invalid(
            "voters",
            format!(
                "one voter per party: {} parties, {} voters",
                positions.len(),
                voters.len()
            ),
        ));
    }
    for (i, v) in voters.iter().enumerate() {
        if let Voter::Annealer {
            initial_temperature,
        } = v
        {
            if !(initial_temperature.is_finite() && *initial_temperature > 0.0) {
                return Err(Error::invalid(
                    format!("voters[{i}].initial_temperature"),
                    format!("must be a positive number, got {initial_temperature}"),
                ));
            }
        }
    }
    if rounds == 0 || rounds > MAX_ROUNDS {
        return Err(Error::invalid(
            "rounds",
            format!("must be between 1 and {MAX_ROUNDS}, got {rounds}"),
        ));
    }
    let sizes: Vec<u64> = space
        .issues()
        .iter()
        .map(|i| i.options.len() as u64)
        .collect();
    let mut rng = SplitMix64::new(seed);
    let start = Package(sizes.iter().map(|&k| rng.below(k) as u16).collect());
    let mut text = start.clone();
    let mut utilities: Vec<i64> = positions.iter().map(|p| p.utility_units(&text)).collect();
    let changeable: Vec<usize> = (0..sizes.len()).filter(|&i| sizes[i] > 1).collect();
    let mut adopted = 0;
    for round in 0..rounds {
        if round % 1024 == 0 {
            crate::cancel::check()?;
        }
        if changeable.is_empty() {
            break;
        }
        let mut proposal = text.clone();
        let first = changeable[rng.below(changeable.len() as u64) as usize];
        let mut issues = vec![first];
        if changeable.len() > 1 && rng.below(2) == 1 {
            let mut second = changeable[rng.below(changeable.len() as u64 - 1) as usize];
            if second == first {
                second = changeable[changeable.len() - 1];
            }
            issues.push(second);
        }
        for issue in issues {
            let current = text.0[issue];
            let mut option = rng.below(sizes[issue] - 1) as u16;
            if option >= current {
                option += 1;
            }
            proposal.0[issue] = option;
        }
        let after: Vec<i64> = positions
            .iter()
            .map(|p| p.utility_units(&proposal))
            .collect();
        let temperature_share = 1.0 - f64::from(round) / f64::from(rounds);
        // Every party votes (so the generator's draws do not depend on who vetoed first).
        let votes: Vec<bool> = voters
            .iter()
            .zip(after.iter().zip(&utilities))
            .map(|(voter, (&new, &old))| {
                let draw = rng.unit();
                match voter {
                    _ if new >= old => true,
                    Voter::HillClimber => false,
                    Voter::Annealer {
                        initial_temperature,
                    } => {
                        let t = initial_temperature * temperature_share;
                        let loss = (old - new) as f64 / SCALE;
                        t > 0.0 && draw < (-loss / t).exp()
                    }
                }
            })
            .collect();
        if votes.iter().all(|v| *v) {
            text = proposal;
            utilities = after;
            adopted += 1;
        }
    }
    let agreed = positions
        .iter()
        .zip(&utilities)
        .all(|(p, &u)| u >= p.reservation_units());
    Ok(MediationOutcome {
        text,
        utilities: utilities.iter().map(|&u| u as f64 / SCALE).collect(),
        agreed,
        rounds,
        adopted,
        start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::random_bilateral;

    #[test]
    fn hill_climbers_only_make_pareto_improvements_and_stop_at_a_local_optimum() {
        let (space, a, b) = random_bilateral(4, 5, 3);
        let positions = [&a, &b];
        let start = mediate(&space, &positions, &[Voter::HillClimber; 2], 1, 9).unwrap();
        let end = mediate(&space, &positions, &[Voter::HillClimber; 2], 5000, 9).unwrap();
        assert_eq!(
            start.start, end.start,
            "the same seed starts from the same text"
        );
        let u0: Vec<f64> = positions.iter().map(|p| p.utility(&end.start)).collect();
        // Weak Pareto improvements only: nobody ends worse off than at the start.
        for (u, s) in end.utilities.iter().zip(&u0) {
            assert!(u >= s, "{end:?}");
        }
        // Local optimum: no change of one or two issues improves one party without hurting
        // another.
        let improves = |p: &Package| {
            let utilities = positions.iter().zip(&end.utilities);
            utilities.clone().all(|(q, &u)| q.utility(p) >= u - 1e-9)
                && utilities.into_iter().any(|(q, &u)| q.utility(p) > u + 1e-9)
        };
        let issues = space.issues();
        for i in 0..issues.len() {
            for j in i..issues.len() {
                for oi in 0..issues[i].options.len() as u16 {
                    for oj in 0..issues[j].options.len() as u16 {
                        let mut p = end.text.clone();
                        p.0[i] = oi;
                        p.0[j] = oj;
                        assert!(!improves(&p), "{p:?} is a Pareto improvement on {end:?}");
                    }
                }
            }
        }
        assert!(end.adopted > 0);
    }

    #[test]
    fn annealers_explore_and_bad_input_is_refused() {
        let (space, a, b) = random_bilateral(4, 5, 3);
        let annealer = Voter::Annealer {
            initial_temperature: 0.3,
        };
        let r = mediate(&space, &[&a, &b], &[annealer; 2], 5000, 4).unwrap();
        assert!(r.adopted > 0 && r.rounds == 5000);
        assert_eq!(
            r,
            mediate(&space, &[&a, &b], &[annealer; 2], 5000, 4).unwrap()
        );
        assert!(mediate(&space, &[&a, &b], &[Voter::HillClimber], 10, 1).is_err());
        assert!(mediate(&space, &[&a, &b], &[Voter::HillClimber; 2], 0, 1).is_err());
        let cold = Voter::Annealer {
            initial_temperature: 0.0,
        };
        assert!(mediate(&space, &[&a, &b], &[cold; 2], 10, 1).is_err());
    }
}

//! `AnalyzeRobustness`'s work: the stated positions (as their parties set them, raw weights
//! included), the uncertain parameters by party name turned into the model's, the spreads
//! expanded into one parameter per weight and reservation, and the analysis run as a heavy
//! call (bounded in time, stopped when the caller goes away or the server shuts down).

use tradepact_bargain::robust::{self, Parameter, Robustness, Uncertain};
use tradepact_bargain::{OutcomeSpace, Package};
use tradepact_model::{Failure, Outcome};

use super::caller::Caller;
use super::Negotiations;

/// Which parameter a [`NamedUncertain`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An issue's raw weight.
    Weight,
    /// An option's value.
    Value,
    /// The reservation value.
    Reservation,
}

/// An uncertain parameter as a caller names it.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedUncertain {
    /// The party.
    pub party: String,
    /// Which parameter.
    pub kind: Kind,
    /// The issue (weights and values).
    pub issue: String,
    /// The option (values).
    pub option: String,
    /// Lowest value.
    pub low: f64,
    /// Highest value.
    pub high: f64,
}

/// What to analyse.
pub struct RobustRequest {
    /// Parameters and their ranges.
    pub uncertain: Vec<NamedUncertain>,
    /// Every weight varied by this share of its stated value (0: none).
    pub weight_spread: f64,
    /// Every reservation varied by this much either way (0: none).
    pub reservation_spread: f64,
    /// Samples to draw.
    pub samples: usize,
    /// Seed.
    pub seed: u64,
}

/// The analysis and what to present it with.
pub struct RobustAnswer {
    /// The outcome space.
    pub space: OutcomeSpace,
    /// The parties, in order.
    pub parties: Vec<String>,
    /// The parameters analysed, by name (the caller's, then the spreads').
    pub named: Vec<NamedUncertain>,
    /// What the analysis found.
    pub robustness: Robustness,
    /// With a package to compare: entry k is the share of samples whose Nash package matches
    /// it on at least k issues.
    pub compare_at_least: Vec<f64>,
}

impl Negotiations {
    /// The robustness of negotiation `id`'s solutions, for a `caller` who must see every
    /// position; `compare` reads an optional package against the space.
    pub async fn robustness(
        &self,
        id: &str,
        caller: &Caller,
        req: RobustRequest,
        compare: impl FnOnce(&OutcomeSpace) -> Outcome<Option<Package>>,
    ) -> Outcome<RobustAnswer> {
        let (_, entry) = self.entry(id).await?;
        let (space, parties, specs) = {
            let entry = entry.lock().await;
            caller.require_every_party(&entry.negotiation.parties, "a robustness analysis")?;
            let specs: Option<Vec<_>> = entry.position_specs().into_iter().collect();
            let specs = specs.ok_or_else(|| {
                Failure::FailedPrecondition(
                    "every party needs a position before a robustness analysis".to_owned(),
                )
            })?;
            let n = &entry.negotiation;
            (n.space.clone(), n.parties.clone(), specs)
        };
        let compare = compare(&space)?;
        let mut named = req.uncertain;
        spreads(
            &parties,
            &specs,
            req.weight_spread,
            req.reservation_spread,
            &mut named,
        )?;
        let uncertain = named
            .iter()
            .enumerate()
            .map(|(i, u)| model_uncertain(&parties, u, i))
            .collect::<Outcome<Vec<_>>>()?;
        let (run_space, (samples, seed)) = (space.clone(), (req.samples, req.seed));
        let robustness = self
            .heavy
            .run("a robustness analysis", move || {
                robust::robustness(&run_space, &specs, &uncertain, samples, seed)
            })
            .await?;
        let compare_at_least = compare.map_or_else(Vec::new, |c| {
            let mut at_least = vec![0.0; c.0.len() + 1];
            for p in &robustness.nash_packages {
                let same = p.0.iter().zip(&c.0).filter(|(a, b)| a == b).count();
                for share in &mut at_least[..=same] {
                    *share += 1.0;
                }
            }
            let n = robustness.samples as f64;
            at_least.iter().map(|k| k / n).collect()
        });
        Ok(RobustAnswer {
            space,
            parties,
            named,
            robustness,
            compare_at_least,
        })
    }
}

/// Adds a parameter per stated weight (±`weight` of it) and per reservation (±`reservation`).
fn spreads(
    parties: &[String],
    specs: &[tradepact_bargain::PositionSpec],
    weight: f64,
    reservation: f64,
    named: &mut Vec<NamedUncertain>,
) -> Outcome<()> {
    if !(weight.is_finite() && (0.0..=1.0).contains(&weight)) {
        return Err(Failure::invalid(
            "weight_spread",
            format!("must be between 0 and 1, got {weight}"),
        ));
    }
    if !(reservation.is_finite() && (0.0..=1.0).contains(&reservation)) {
        return Err(Failure::invalid(
            "reservation_spread",
            format!("must be between 0 and 1, got {reservation}"),
        ));
    }
    for (party, spec) in parties.iter().zip(specs) {
        if weight > 0.0 {
            let mut issues: Vec<(&String, &f64)> = spec.weights.iter().collect();
            issues.sort_by(|a, b| a.0.cmp(b.0));
            for (issue, w) in issues {
                named.push(NamedUncertain {
                    party: party.clone(),
                    kind: Kind::Weight,
                    issue: issue.clone(),
                    option: String::new(),
                    low: w * (1.0 - weight),
                    high: w * (1.0 + weight),
                });
            }
        }
        if reservation > 0.0 {
            named.push(NamedUncertain {
                party: party.clone(),
                kind: Kind::Reservation,
                issue: String::new(),
                option: String::new(),
                low: (spec.reservation - reservation).max(0.0),
                high: (spec.reservation + reservation).min(1.0),
            });
        }
    }
    Ok(())
}

fn model_uncertain(parties: &[String], u: &NamedUncertain, i: usize) -> Outcome<Uncertain> {
    let party = parties.iter().position(|p| *p == u.party).ok_or_else(|| {
        Failure::invalid(
            format!("uncertain[{i}].party"),
            format!(
                "{} is not a party of this negotiation",
                tradepact_model::echo(&u.party)
            ),
        )
    })?;
    let parameter = match u.kind {
        Kind::Weight => Parameter::Weight {
            party,
            issue: u.issue.clone(),
        },
        Kind::Value => Parameter::Value {
            party,
            issue: u.issue.clone(),
            option: u.option.clone(),
        },
        Kind::Reservation => Parameter::Reservation { party },
    };
    Ok(Uncertain {
        parameter,
        low: u.low,
        high: u.high,
    })
}

//! Robustness of the bargaining solutions to uncertain positions.
//!
//! Positions are assumptions. Here each uncertain parameter — a party's raw issue weight
//! (before normalisation), an option's value, a reservation value — has a range, and:
//!
//! - **Sampling** (seeded): each sample draws every uncertain parameter uniformly from its
//!   range, the others at their stated value, and solves the negotiation
//!   ([`crate::analysis::solve`]). Over the samples: for each issue, how often each option is
//!   in the Nash package and in the Kalai–Smorodinsky package (the first package of the first
//!   point when several tie); how often the ZOPA is empty (no rational outcome: no Nash point);
//!   and each party's utility at the Nash point (mean and 5th, 50th and 95th percentiles).
//! - **Sensitivity** (one parameter at a time, the others at their stated value): the range of
//!   the parameter, around its stated value and inside its range, over which the Nash package
//!   stays the one of the stated positions; found on a grid of [`GRID`] steps each way and
//!   refined by bisection to [`BISECTIONS`] halvings at each end. A parameter whose whole range
//!   keeps the package is not an assumption the recommended deal depends on.
//!
//! Both stop at [`crate::cancel`] checks between solves.

use crate::analysis::{solve, Solution};
use crate::position::{Position, PositionSpec, SCALE};
use crate::rng::SplitMix64;
use crate::space::{OutcomeSpace, Package};
use crate::{Error, Result};

/// Steps of the sensitivity grid on each side of the stated value.
pub const GRID: usize = 24;
/// Halvings refining each end of a sensitivity range.
pub const BISECTIONS: usize = 12;
/// Most samples one analysis draws.
pub const MAX_SAMPLES: usize = 100_000;
/// Most uncertain parameters one analysis takes.
pub const MAX_PARAMETERS: usize = 256;

/// One parameter of one party's position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parameter {
    /// The raw weight of an issue (before the weights are normalised to sum 1).
    Weight { party: usize, issue: String },
    /// The value of an option.
    Value {
        party: usize,
        issue: String,
        option: String,
    },
    /// The reservation value.
    Reservation { party: usize },
}

/// A parameter and the range it may take.
#[derive(Clone, Debug, PartialEq)]
pub struct Uncertain {
    /// The parameter.
    pub parameter: Parameter,
    /// Lowest value.
    pub low: f64,
    /// Highest value.
    pub high: f64,
}

/// Percentiles of a party's utility over the samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// 5th percentile.
    pub p5: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// How far one parameter may move, alone, before the Nash package changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Sensitivity {
    /// The parameter and its range.
    pub uncertain: Uncertain,
    /// Its stated value.
    pub stated: f64,
    /// The Nash package stays the stated positions' over `[stays_from, stays_to]` (within the
    /// range; to the bisection's precision).
    pub stays_from: f64,
    /// See `stays_from`.
    pub stays_to: f64,
    /// The Nash package just below `stays_from` (when it changes inside the range to another
    /// package; `None` too when there is no rational outcome there).
    pub below: Option<Package>,
    /// The Nash package just above `stays_to` (as `below`).
    pub above: Option<Package>,
}

impl Sensitivity {
    /// Whether the whole range keeps the Nash package (a change to no rational outcome at all,
    /// where `below` or `above` is `None`, counts as a change).
    pub fn robust(&self) -> bool {
        self.stays_from <= self.uncertain.low && self.stays_to >= self.uncertain.high
    }
}

/// What the sampling and the sensitivity analysis found.
#[derive(Clone, Debug, PartialEq)]
pub struct Robustness {
    /// Samples drawn.
    pub samples: usize,
    /// The Nash package of the stated positions (`None`: no rational outcome).
    pub stated_nash: Option<Package>,
    /// Per issue and option, the share of samples whose Nash package chose it.
    pub nash_option_share: Vec<Vec<f64>>,
    /// The same for the Kalai–Smorodinsky package.
    pub ks_option_share: Vec<Vec<f64>>,
    /// Share of samples with no rational outcome.
    pub zopa_empty_share: f64,
    /// Share of samples whose Nash package is the stated positions'.
    pub same_nash_share: f64,
    /// Per party, its utility at the Nash point over the samples that have one.
    pub nash_utility: Vec<Spread>,
    /// Per uncertain parameter, in the order given.
    pub sensitivity: Vec<Sensitivity>,
    /// Per sample with a Nash point, its package (for callers that compare it with another).
    pub nash_packages: Vec<Package>,
}

/// The stated value of `parameter` in `specs`.
fn stated(specs: &[PositionSpec], parameter: &Parameter) -> f64 {
    match parameter {
        Parameter::Weight { party, issue } => {
            specs[*party].weights.get(issue).copied().unwrap_or(0.0)
        }
        Parameter::Value {
            party,
            issue,
            option,
        } => specs[*party]
            .values
            .get(issue)
            .and_then(|v| v.get(option))
            .copied()
            .unwrap_or(0.0),
        Parameter::Reservation { party } => specs[*party].reservation,
    }
}

fn set(specs: &mut [PositionSpec], parameter: &Parameter, value: f64) {
    match parameter {
        Parameter::Weight { party, issue } => {
            specs[*party].weights.insert(issue.clone(), value);
        }
        Parameter::Value {
            party,
            issue,
            option,
        } => {
            specs[*party]
                .values
                .entry(issue.clone())
                .or_default()
                .insert(option.clone(), value);
        }
        Parameter::Reservation { party } => specs[*party].reservation = value,
    }
}

/// Checks the uncertain parameters against the space and the positions.
pub fn validate(
    space: &OutcomeSpace,
    specs: &[PositionSpec],
    uncertain: &[Uncertain],
) -> Result<()> {
    if uncertain.len() > MAX_PARAMETERS {
        return Err(Error::invalid(
            "uncertain",
            format!(
                "at most {MAX_PARAMETERS} parameters, got {}",
                uncertain.len()
            ),
        ));
    }
    for (i, u) in uncertain.iter().enumerate() {
        let field = |f: &str| format!("uncertain[{i}].{f}");
        let party = match &u.parameter {
            Parameter::Weight { party, .. }
            | Parameter::Value { party, .. }
            | Parameter::Reservation { party } => *party,
        };
        if party >= specs.len() {
            return Err(Error::invalid(
                field("party"),
                "not a party of the negotiation",
            ));
        }
        match &u.parameter {
            Parameter::Weight { issue, .. } if space.issue_index(issue).is_none() => {
                return Err(Error::invalid(
                    field("issue_id"),
                    format!("unknown issue {issue:?}"),
                ));
            }
            Parameter::Value { issue, option, .. } => {
                let known = space
                    .issue_index(issue)
                    .and_then(|k| space.option_index(k, option));
                if known.is_none() {
                    return Err(Error::invalid(
                        field("option_id"),
                        format!("unknown option {issue:?}={option:?}"),
                    ));
                }
            }
            _ => {}
        }
        let unit = !matches!(u.parameter, Parameter::Weight { .. });
        let in_domain = |v: f64| v.is_finite() && v >= 0.0 && (!unit || v <= 1.0);
        if !(in_domain(u.low) && in_domain(u.high) && u.low <= u.high) {
            return Err(Error::invalid(
                field("low"),
                format!(
                    "the range must satisfy 0 ≤ low ≤ high{}, got [{}, {}]",
                    if unit { " ≤ 1" } else { "" },
                    u.low,
                    u.high
                ),
            ));
        }
    }
    Ok(())
}

/// The Nash and KS packages and the Nash utilities of `specs` (`None`: no rational outcome).
#[allow(clippy::type_complexity)]
fn nash_of(
    space: &OutcomeSpace,
    specs: &[PositionSpec],
) -> Result<Option<(Package, Option<Package>, Vec<f64>)>> {
    let positions: Vec<Position> = specs
        .iter()
        .map(|s| Position::new(space, s))
        .collect::<Result<_>>()?;
    let refs: Vec<&Position> = positions.iter().collect();
    let analysis = solve(space, &refs, 1)?;
    let first = |s: &Solution| s.points.first().and_then(|p| p.packages.first().cloned());
    Ok(analysis.nash.points.first().and_then(|point| {
        let package = point.packages.first()?.clone();
        let utilities = point.utilities.iter().map(|u| *u as f64 / SCALE).collect();
        Some((package, first(&analysis.kalai_smorodinsky), utilities))
    }))
}

/// Samples `samples` positions from `uncertain` (seeded) and analyses each parameter alone.
pub fn robustness(
    space: &OutcomeSpace,
    specs: &[PositionSpec],
    uncertain: &[Uncertain],
    samples: usize,
    seed: u64,
) -> Result<Robustness> {
    validate(space, specs, uncertain)?;
    if samples == 0 || samples > MAX_SAMPLES {
        return Err(Error::invalid(
            "samples",
            format!("must be between 1 and {MAX_SAMPLES}, got {samples}"),
        ));
    }
    let stated_nash = nash_of(space, specs)?.map(|(p, _, _)| p);
    let share = || -> Vec<Vec<f64>> {
        space
            .issues()
            .iter()
            .map(|i| vec![0.0; i.options.len()])
            .collect()
    };
    let (mut nash_share, mut ks_share) = (share(), share());
    let mut utilities: Vec<Vec<f64>> = vec![Vec::new(); specs.len()];
    let mut nash_packages = Vec::new();
    let (mut empty, mut same) = (0usize, 0usize);
    let mut rng = SplitMix64::new(seed);
    let mut drawn = specs.to_vec();
    for _ in 0..samples {
        crate::cancel::check()?;
        for u in uncertain {
            let v = u.low + (u.high - u.low) * rng.unit();
            set(&mut drawn, &u.parameter, v);
        }
        let Some((nash, ks, u)) = nash_of(space, &drawn)? else {
            empty += 1;
            continue;
        };
        for (i, &o) in nash.0.iter().enumerate() {
            nash_share[i][usize::from(o)] += 1.0;
        }
        if let Some(ks) = ks {
            for (i, &o) in ks.0.iter().enumerate() {
                ks_share[i][usize::from(o)] += 1.0;
            }
        }
        same += usize::from(stated_nash.as_ref() == Some(&nash));
        for (party, u) in u.into_iter().enumerate() {
            utilities[party].push(u);
        }
        nash_packages.push(nash);
    }
    let n = samples as f64;
    for row in nash_share.iter_mut().chain(ks_share.iter_mut()) {
        for v in row.iter_mut() {
            *v /= n;
        }
    }
    let nash_utility = utilities.into_iter().map(spread).collect();
    let sensitivity = uncertain
        .iter()
        .map(|u| sensitivity(space, specs, u, stated_nash.as_ref()))
        .collect::<Result<_>>()?;
    Ok(Robustness {
        samples,
        stated_nash,
        nash_option_share: nash_share,
        ks_option_share: ks_share,
        zopa_empty_share: empty as f64 / n,
        same_nash_share: same as f64 / n,
        nash_utility,
        sensitivity,
        nash_packages,
    })
}

fn spread(mut values: Vec<f64>) -> Spread {
    if values.is_empty() {
        return Spread::default();
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    Spread {
        mean: values.iter().sum::<f64>() / values.len() as f64,
        p5: at(0.05),
        p50: at(0.5),
        p95: at(0.95),
    }
}

/// The range of `u` alone, around its stated value, keeping the stated Nash package.
fn sensitivity(
    space: &OutcomeSpace,
    specs: &[PositionSpec],
    u: &Uncertain,
    stated_nash: Option<&Package>,
) -> Result<Sensitivity> {
    let stated_value = stated(specs, &u.parameter).clamp(u.low, u.high);
    let mut trial = specs.to_vec();
    let mut nash_at = |v: f64| -> Result<Option<Package>> {
        crate::cancel::check()?;
        set(&mut trial, &u.parameter, v);
        Ok(nash_of(space, &trial)?.map(|(p, _, _)| p))
    };
    // Walk from the stated value to one end of the range; then bisect the first change.
    let mut edge = |end: f64| -> Result<(f64, Option<Package>)> {
        let mut inside = stated_value;
        for step in 1..=GRID {
            let v = stated_value + (end - stated_value) * step as f64 / GRID as f64;
            let nash = nash_at(v)?;
            if nash.as_ref() != stated_nash {
                let (mut keep, mut change, mut changed) = (inside, v, nash);
                for _ in 0..BISECTIONS {
                    let mid = (keep + change) / 2.0;
                    let nash = nash_at(mid)?;
                    if nash.as_ref() == stated_nash {
                        keep = mid;
                    } else {
                        (change, changed) = (mid, nash);
                    }
                }
                return Ok((keep, changed));
            }
            inside = v;
        }
        Ok((end, None))
    };
    let (stays_from, below) = edge(u.low)?;
    let (stays_to, above) = edge(u.high)?;
    Ok(Sensitivity {
        uncertain: u.clone(),
        stated: stated_value,
        stays_from,
        stays_to,
        below: below.filter(|_| stays_from > u.low),
        above: above.filter(|_| stays_to < u.high),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::space::{Issue, OptionDef};

    /// Two issues of options A and B; the US wants A on both and cares for issue 1 (raw
    /// weights 0.7, 0.3), Korea wants B and cares for issue 2 (0.2, 0.8); no reservation.
    fn case() -> (OutcomeSpace, Vec<PositionSpec>) {
        let issue = |id: &str| Issue {
            id: id.into(),
            label: id.into(),
            options: ["A", "B"]
                .iter()
                .map(|o| OptionDef {
                    id: (*o).into(),
                    label: (*o).into(),
                })
                .collect(),
        };
        let space = OutcomeSpace::new(vec![issue("i1"), issue("i2")]).unwrap();
        let spec = |w1: f64, w2: f64, a: f64| PositionSpec {
            weights: HashMap::from([("i1".into(), w1), ("i2".into(), w2)]),
            values: ["i1", "i2"]
                .iter()
                .map(|i| {
                    (
                        (*i).to_owned(),
                        HashMap::from([("A".into(), a), ("B".into(), 1.0 - a)]),
                    )
                })
                .collect(),
            reservation: 0.0,
        };
        (space, vec![spec(0.7, 0.3, 1.0), spec(0.2, 0.8, 0.0)])
    }

    fn us_weight(low: f64, high: f64) -> Uncertain {
        Uncertain {
            parameter: Parameter::Weight {
                party: 0,
                issue: "i1".into(),
            },
            low,
            high,
        }
    }

    #[test]
    fn the_nash_package_holds_while_the_us_cares_enough_for_issue_one_by_hand() {
        // Products: (A,B) = w1' · 0.8, (B,A) = (1 − w1') · 0.2, the others 0, with the US's
        // normalised weight w1' = w1 / (w1 + 0.3). (A,B) is Nash while 0.8 w1' > 0.2 (1 − w1'),
        // i.e. w1' > 0.2, i.e. w1 > 0.075.
        let (space, specs) = case();
        let r = robustness(&space, &specs, &[us_weight(0.0, 1.4)], 200, 7).unwrap();
        assert_eq!(r.stated_nash, Some(Package(vec![0, 1])));
        let s = &r.sensitivity[0];
        assert_eq!(s.stated, 0.7);
        assert!((s.stays_from - 0.075).abs() < 1e-3, "{s:?}");
        assert_eq!(s.stays_to, 1.4);
        assert_eq!(s.below, Some(Package(vec![1, 0])));
        assert_eq!(s.above, None);
        assert!(!s.robust());
        // Sampled uniformly on [0, 1.4]: the package changes below 0.075, 5.4 % of the range.
        assert!(
            (r.same_nash_share - (1.0 - 0.075 / 1.4)).abs() < 0.05,
            "{r:?}"
        );
        assert!((r.nash_option_share[0][0] - r.same_nash_share).abs() < 1e-12);
        assert_eq!(r.zopa_empty_share, 0.0);
        // Shares of one issue add up to the samples with a Nash point.
        assert!((r.nash_option_share[1].iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // The US's utility at the Nash point is its normalised weight on issue 1.
        let us = &r.nash_utility[0];
        assert!(
            us.p5 <= us.p50 && us.p50 <= us.p95 && us.p95 <= 1.0,
            "{us:?}"
        );
    }

    #[test]
    fn a_range_that_keeps_the_package_is_robust_and_reservations_can_empty_the_zopa() {
        let (space, specs) = case();
        let r = robustness(&space, &specs, &[us_weight(0.5, 1.0)], 50, 1).unwrap();
        assert!(r.sensitivity[0].robust());
        assert_eq!(r.same_nash_share, 1.0);
        // Korea's reservation alone: (A,B) gives it 0.8, so past 0.8 the Nash package is the
        // only other outcome rational for Korea, (B,B) (the US's gain there is 0).
        let korea = Uncertain {
            parameter: Parameter::Reservation { party: 1 },
            low: 0.0,
            high: 1.0,
        };
        let r = robustness(&space, &specs, std::slice::from_ref(&korea), 400, 3).unwrap();
        let s = &r.sensitivity[0];
        assert_eq!(s.stays_from, 0.0);
        assert!((s.stays_to - 0.8).abs() < 1e-3, "{s:?}");
        assert_eq!(s.above, Some(Package(vec![1, 1])));
        assert_eq!(r.zopa_empty_share, 0.0);
        // Both reservations high: no package gives the US 0.75 and Korea 0.85 together.
        let us = Uncertain {
            parameter: Parameter::Reservation { party: 0 },
            low: 0.75,
            high: 1.0,
        };
        let both = [us, Uncertain { low: 0.85, ..korea }];
        let r = robustness(&space, &specs, &both, 100, 3).unwrap();
        assert_eq!(r.zopa_empty_share, 1.0);
        assert_eq!(r.same_nash_share, 0.0);
        assert!(r.nash_packages.is_empty());
    }

    #[test]
    fn the_same_seed_gives_the_same_answer_and_bad_ranges_are_refused() {
        let (space, specs) = case();
        let a = robustness(&space, &specs, &[us_weight(0.0, 1.4)], 100, 9).unwrap();
        let b = robustness(&space, &specs, &[us_weight(0.0, 1.4)], 100, 9).unwrap();
        assert_eq!(a, b);
        let bad = |u: Uncertain| robustness(&space, &specs, &[u], 10, 1).unwrap_err();
        assert!(matches!(bad(us_weight(1.0, 0.5)), Error::Invalid { .. }));
        let value = Uncertain {
            parameter: Parameter::Value {
                party: 0,
                issue: "i1".into(),
                option: "C".into(),
            },
            low: 0.0,
            high: 1.0,
        };
        assert!(
            matches!(bad(value), Error::Invalid { field, .. } if field == "uncertain[0].option_id")
        );
        assert!(robustness(&space, &specs, &[], 0, 1).is_err());
    }
}

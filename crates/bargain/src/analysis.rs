//! Bargaining analysis over the Pareto frontier: ZOPA, Nash, Kalai–Smorodinsky, egalitarian
//! and max-welfare points, inverse queries and logrolling hints.
//!
//! Every solution is chosen among the frontier points (the rational, Pareto-optimal
//! outcomes): each solution concept's maximiser lies there when the maximum is positive.
//! Ties are all returned.

use crate::frontier::{self, FrontierPoint, ParetoFrontier};
use crate::position::{Position, SCALE};
use crate::space::{OutcomeSpace, Package};

/// Spaces up to this size are enumerated to count the ZOPA exactly.
pub const EXACT_ZOPA_LIMIT: u64 = 2_000_000;
/// Packages sampled to estimate the ZOPA of a larger space.
pub const ZOPA_SAMPLES: u64 = 200_000;

/// The zone of possible agreement: outcomes every party prefers to its reservation value.
#[derive(Clone, Debug, PartialEq)]
pub struct Zopa {
    /// Rational outcomes (exact, or estimated from a sample).
    pub size: f64,
    /// Share of the whole space.
    pub share: f64,
    /// Whether `size` was counted (true) or estimated from [`ZOPA_SAMPLES`] random packages.
    pub exact: bool,
}

/// A bargaining solution: the frontier points that maximise its criterion.
#[derive(Clone, Debug, PartialEq)]
pub struct Solution {
    /// The maximising points (ties all kept).
    pub points: Vec<FrontierPoint>,
    /// The criterion's value at the maximum.
    pub value: f64,
}

/// All solutions of one analysis.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// The frontier.
    pub frontier: ParetoFrontier,
    /// The ZOPA.
    pub zopa: Zopa,
    /// argmax Π (u_i − d_i), d = reservation values.
    pub nash: Solution,
    /// The frontier point whose gains, normalised by each party's ideal, are most equal.
    pub kalai_smorodinsky: Solution,
    /// argmax min_i (u_i − d_i).
    pub egalitarian: Solution,
    /// argmax Σ u_i.
    pub max_welfare: Solution,
    /// Each party's best utility over the whole space (units).
    pub ideal: Vec<i64>,
}

/// Counts (or estimates) the rational outcomes.
pub fn zopa(space: &OutcomeSpace, positions: &[&Position], seed: u64) -> Zopa {
    let total = space.size();
    match space.size_exact() {
        Some(n) if n <= EXACT_ZOPA_LIMIT => {
            let size = frontier::rational_outcomes(space, positions).count() as f64;
            Zopa {
                size,
                share: size / total,
                exact: true,
            }
        }
        _ => {
            let t = frontier::tolerance(space.issues().len());
            let reservations: Vec<i64> = positions.iter().map(|p| p.reservation_units()).collect();
            let mut rng = crate::rng::SplitMix64::new(seed);
            let mut hits = 0u64;
            let mut pkg = Package(vec![0; space.issues().len()]);
            for _ in 0..ZOPA_SAMPLES {
                for (slot, issue) in pkg.0.iter_mut().zip(space.issues()) {
                    *slot = rng.below(issue.options.len() as u64) as u16;
                }
                let u = frontier::utilities_of(positions, &pkg);
                hits += u64::from(frontier::rational(&u, &reservations, t));
            }
            let share = hits as f64 / ZOPA_SAMPLES as f64;
            Zopa {
                size: share * total,
                share,
                exact: false,
            }
        }
    }
}

/// The points maximising `score` (ties within a relative 1e-12 kept).
fn argmax(frontier: &ParetoFrontier, score: impl Fn(&FrontierPoint) -> f64) -> Solution {
    let scores: Vec<f64> = frontier.points.iter().map(&score).collect();
    let best = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let eps = 1e-12 * best.abs().max(1e-300);
    Solution {
        points: frontier
            .points
            .iter()
            .zip(&scores)
            .filter(|(_, s)| **s >= best - eps)
            .map(|(p, _)| p.clone())
            .collect(),
        value: best,
    }
}

fn gains<'a>(p: &'a FrontierPoint, d: &'a [i64]) -> impl Iterator<Item = f64> + 'a {
    p.utilities
        .iter()
        .zip(d)
        .map(|(u, d)| (u - d) as f64 / SCALE)
}

/// Analyses the negotiation: frontier (keeping up to `max_packages` per point), ZOPA and
/// every solution.
pub fn analyze(
    space: &OutcomeSpace,
    positions: &[&Position],
    max_packages: usize,
    seed: u64,
) -> Analysis {
    let frontier = frontier::pareto_frontier(space, positions, max_packages);
    let d: Vec<i64> = positions.iter().map(|p| p.reservation_units()).collect();
    let ideal: Vec<i64> = positions.iter().map(|p| p.best_units()).collect();
    let nash = argmax(&frontier, |p| gains(p, &d).map(|g| g.max(0.0)).product());
    let kalai_smorodinsky = argmax(&frontier, |p| {
        let normalised: Vec<f64> = p
            .utilities
            .iter()
            .zip(&d)
            .zip(&ideal)
            .map(|((u, d), i)| {
                if i > d {
                    (u - d) as f64 / (i - d) as f64
                } else {
                    1.0
                }
            })
            .collect();
        let (lo, hi) = normalised
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), g| {
                (lo.min(*g), hi.max(*g))
            });
        // Most equal gains; among equally equal, the higher ones.
        -(hi - lo) + 1e-6 * lo
    });
    let egalitarian = argmax(&frontier, |p| gains(p, &d).fold(f64::INFINITY, f64::min));
    let max_welfare = argmax(&frontier, |p| {
        p.utilities.iter().sum::<i64>() as f64 / SCALE
    });
    Analysis {
        zopa: zopa(space, positions, seed),
        frontier,
        nash,
        kalai_smorodinsky,
        egalitarian,
        max_welfare,
        ideal,
    }
}

/// Euclidean distance, in utility space, from `package` to the nearest Nash point.
pub fn distance_to(solution: &Solution, positions: &[&Position], package: &Package) -> Option<f64> {
    let u = frontier::utilities_of(positions, package);
    solution
        .points
        .iter()
        .map(|p| {
            p.utilities
                .iter()
                .zip(&u)
                .map(|(a, b)| ((a - b) as f64 / SCALE).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .min_by(f64::total_cmp)
}

/// A party's best packages (every issue at its best option; all combinations of ties, up to
/// `cap`) or worst ones.
pub fn extreme_packages(
    space: &OutcomeSpace,
    position: &Position,
    best: bool,
    cap: usize,
) -> Vec<Package> {
    let choices: Vec<Vec<u16>> = position
        .contributions()
        .iter()
        .map(|row| {
            let target = if best {
                row.iter().max()
            } else {
                row.iter().min()
            }
            .copied()
            .unwrap_or(0);
            (0..row.len() as u16)
                .filter(|&o| row[usize::from(o)] == target)
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    let mut current = vec![0u16; space.issues().len()];
    fn rec(
        k: usize,
        choices: &[Vec<u16>],
        current: &mut Vec<u16>,
        out: &mut Vec<Package>,
        cap: usize,
    ) {
        if out.len() >= cap {
            return;
        }
        if k == choices.len() {
            out.push(Package(current.clone()));
            return;
        }
        for &o in &choices[k] {
            current[k] = o;
            rec(k + 1, choices, current, out, cap);
        }
    }
    rec(0, &choices, &mut current, &mut out, cap.max(1));
    out
}

/// Frontier points where party `party` gets at least `threshold` (units), best for the other
/// parties (highest sum of their utilities) first: the packages a strategy picks offers from.
pub fn at_or_above(frontier: &ParetoFrontier, party: usize, threshold: i64) -> Vec<&FrontierPoint> {
    let mut out: Vec<&FrontierPoint> = frontier
        .points
        .iter()
        .filter(|p| p.utilities[party] >= threshold)
        .collect();
    let others = |p: &FrontierPoint| p.utilities.iter().sum::<i64>() - p.utilities[party];
    out.sort_by(|a, b| {
        others(b)
            .cmp(&others(a))
            .then(a.utilities[party].cmp(&b.utilities[party]))
    });
    out
}

/// A pair of issues worth trading between two parties.
#[derive(Clone, Debug, PartialEq)]
pub struct LogrollHint {
    /// The party that should give ground on `gives` to win on `gets`.
    pub party: usize,
    /// The other party.
    pub counterpart: usize,
    /// Issue the party cares about relatively less.
    pub gives: usize,
    /// Issue the party cares about relatively more.
    pub gets: usize,
    /// How much more the party cares about `gets` relative to `gives`, than the counterpart
    /// does: (w_p[gets] / w_p[gives]) / (w_c[gets] / w_c[gives]); above 1 trading helps both.
    pub ratio: f64,
}

/// Pairs of issues where two parties' relative weights differ by at least `min_ratio`
/// (e.g. 1.5), strongest first. Issues a party does not weigh at all are skipped.
pub fn logrolling_hints(positions: &[&Position], min_ratio: f64) -> Vec<LogrollHint> {
    let mut out = Vec::new();
    for (p, pp) in positions.iter().enumerate() {
        for (c, pc) in positions.iter().enumerate() {
            if p >= c {
                continue;
            }
            let (wp, wc) = (pp.weights(), pc.weights());
            for a in 0..wp.len() {
                for b in 0..wp.len() {
                    if a == b || wp[a] <= 0.0 || wp[b] <= 0.0 || wc[a] <= 0.0 || wc[b] <= 0.0 {
                        continue;
                    }
                    // Party p cares relatively more about b than c does: p gives a, gets b.
                    let ratio = (wp[b] / wp[a]) / (wc[b] / wc[a]);
                    if ratio >= min_ratio {
                        out.push(LogrollHint {
                            party: p,
                            counterpart: c,
                            gives: a,
                            gets: b,
                            ratio,
                        });
                    }
                }
            }
        }
    }
    out.sort_by(|x, y| y.ratio.total_cmp(&x.ratio));
    out
}

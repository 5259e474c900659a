//! Bargaining analysis over the Pareto frontier: ZOPA, Nash, Kalai–Smorodinsky, egalitarian
//! and max-welfare points, inverse queries and logrolling hints.
//!
//! Every solution is chosen among the frontier points (the rational, Pareto-optimal
//! outcomes): each solution concept's maximiser lies there when the maximum is positive.
//! Ties are all returned.

use crate::frontier::{self, FrontierPoint, ParetoFrontier};
use crate::position::{Position, SCALE};
use crate::space::{OutcomeSpace, Package};
use crate::Result;

/// Packages kept per frontier point by the analyses a negotiation keeps (for its offers and
/// for `AnalyzeNegotiation`): ties beyond it are counted, not listed.
pub const PACKAGES_PER_POINT: usize = 16;
/// Seed of the ZOPA estimate's sample (fixed, so that repeated analyses agree).
pub const ZOPA_SEED: u64 = 0x7ade;

/// Spaces up to this size are enumerated to count the ZOPA exactly (more than two parties).
pub const EXACT_ZOPA_LIMIT: u64 = 2_000_000;
/// Largest half-space enumerated when counting a bilateral ZOPA by meet-in-the-middle: spaces
/// up to about this size squared (4·10^12) are counted exactly.
pub const HALF_SPACE_LIMIT: u64 = 2_000_000;
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
    /// The ZOPA (`None` from [`solve`], which skips counting it).
    pub zopa: Option<Zopa>,
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

/// Counts (or estimates) the rational outcomes. Inside a cancelled [`crate::cancel`] scope it
/// stops early with a meaningless figure: check [`crate::cancel::check`] after it.
///
/// Two parties: meet-in-the-middle. The issues are split in two halves; every partial
/// utility pair of each half is listed (about √size each), and pairs (a, b) with
/// a + b ≥ reservation − T for both parties are counted by a sweep over one coordinate and a
/// Fenwick tree over the other: O(√size · log size), exact. More parties: enumeration up to
/// [`EXACT_ZOPA_LIMIT`] outcomes. Beyond either: an estimate from [`ZOPA_SAMPLES`] seeded
/// random packages.
pub fn zopa(space: &OutcomeSpace, positions: &[&Position], seed: u64) -> Zopa {
    let total = space.size();
    let t = frontier::tolerance(space.issues().len());
    let reservations: Vec<i64> = positions.iter().map(|p| p.reservation_units()).collect();
    if positions.len() == 2 {
        if let Some(count) = count_bilateral(space, positions, &reservations, t) {
            return Zopa {
                size: count as f64,
                share: count as f64 / total,
                exact: true,
            };
        }
    } else if space.size_exact().is_some_and(|n| n <= EXACT_ZOPA_LIMIT) {
        let size = frontier::rational_outcomes(space, positions)
            .take_while(|_| !crate::cancel::is_cancelled())
            .count() as f64;
        return Zopa {
            size,
            share: size / total,
            exact: true,
        };
    }
    let mut rng = crate::rng::SplitMix64::new(seed);
    let mut hits = 0u64;
    let mut pkg = Package(vec![0; space.issues().len()]);
    for sample in 0..ZOPA_SAMPLES {
        if sample % 1024 == 0 && crate::cancel::is_cancelled() {
            break;
        }
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

/// Every partial utility pair of issues `range`, or `None` past [`HALF_SPACE_LIMIT`].
fn partial_sums(positions: &[&Position], range: std::ops::Range<usize>) -> Option<Vec<(i64, i64)>> {
    let mut sums = vec![(0i64, 0i64)];
    for k in range {
        let (a, b) = (
            &positions[0].contributions()[k],
            &positions[1].contributions()[k],
        );
        if (sums.len() * a.len()) as u64 > HALF_SPACE_LIMIT {
            return None;
        }
        sums = sums
            .iter()
            .flat_map(|&(x, y)| a.iter().zip(b).map(move |(ca, cb)| (x + ca, y + cb)))
            .collect();
    }
    Some(sums)
}

fn count_bilateral(
    space: &OutcomeSpace,
    positions: &[&Position],
    r: &[i64],
    t: i64,
) -> Option<u64> {
    // Split where the two halves' sizes are closest.
    let sizes: Vec<f64> = space
        .issues()
        .iter()
        .map(|i| i.options.len() as f64)
        .collect();
    let total: f64 = sizes.iter().product();
    let mut split = 0;
    let mut left = 1.0;
    while split < sizes.len() && left * sizes[split] <= total.sqrt() {
        left *= sizes[split];
        split += 1;
    }
    let first = partial_sums(positions, 0..split)?;
    let mut second = partial_sums(positions, split..sizes.len())?;
    // Count pairs with b.0 >= r0 - t - a.0 and b.1 >= r1 - t - a.1.
    let mut queries: Vec<(i64, i64)> = first
        .iter()
        .map(|&(x, y)| (r[0] - t - x, r[1] - t - y))
        .collect();
    queries.sort_unstable_by_key(|p| std::cmp::Reverse(p.0));
    second.sort_unstable_by_key(|p| std::cmp::Reverse(p.0));
    let mut ys: Vec<i64> = second.iter().map(|p| p.1).collect();
    ys.sort_unstable();
    ys.dedup();
    let mut tree = vec![0u64; ys.len() + 1];
    let (mut inserted, mut count, mut next) = (0u64, 0u64, 0usize);
    for (q, (need_x, need_y)) in queries.into_iter().enumerate() {
        if q % 4096 == 0 && crate::cancel::is_cancelled() {
            return None;
        }
        while next < second.len() && second[next].0 >= need_x {
            // Fenwick tree over the ranks of the second coordinate.
            let mut i = ys.partition_point(|&y| y < second[next].1) + 1;
            while i < tree.len() {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
            inserted += 1;
            next += 1;
        }
        // Inserted points with y < need_y, subtracted from all inserted.
        let mut i = ys.partition_point(|&y| y < need_y);
        let mut below = 0u64;
        while i > 0 {
            below += tree[i];
            i -= i & i.wrapping_neg();
        }
        count += inserted - below;
    }
    Some(count)
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
) -> Result<Analysis> {
    let mut analysis = solve(space, positions, max_packages)?;
    analysis.zopa = Some(zopa(space, positions, seed));
    // A cancelled count stops early with a wrong figure: not returned.
    crate::cancel::check()?;
    Ok(analysis)
}

/// The frontier and every solution, without counting the ZOPA (whose cost grows with the
/// square root of the space, while this grows with the frontier).
pub fn solve(
    space: &OutcomeSpace,
    positions: &[&Position],
    max_packages: usize,
) -> Result<Analysis> {
    let frontier = frontier::pareto_frontier(space, positions, max_packages)?;
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
    Ok(Analysis {
        zopa: None,
        frontier,
        nash,
        kalai_smorodinsky,
        egalitarian,
        max_welfare,
        ideal,
    })
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

/// Where one offer stands against an analysis of the positions it was judged by.
#[derive(Clone, Debug, PartialEq)]
pub struct Standing {
    /// The offer's index in its negotiation.
    pub offer_id: u32,
    /// Each party's utility of its package (fixed-point units).
    pub utilities: Vec<i64>,
    /// Whether every party gets at least its reservation value (within the tolerance).
    pub rational: bool,
    /// Whether the package is on the frontier.
    pub pareto_optimal: bool,
    /// Distance in utility space to the nearest Nash point.
    pub distance_to_nash: Option<f64>,
}

/// The standing of `package` (offer `offer_id`) against `analysis` of `positions`.
pub fn standing(
    analysis: &Analysis,
    positions: &[&Position],
    offer_id: u32,
    package: &Package,
) -> Standing {
    let utilities = frontier::utilities_of(positions, package);
    let rational = utilities
        .iter()
        .zip(positions)
        .all(|(u, p)| *u >= p.reservation_units() - analysis.frontier.tolerance);
    Standing {
        offer_id,
        rational,
        pareto_optimal: frontier::is_pareto_optimal(&analysis.frontier, positions, package),
        distance_to_nash: distance_to(&analysis.nash, positions, package),
        utilities,
    }
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

//! The Pareto frontier over rational outcomes, computed without enumerating the space.
//!
//! Utilities are linear-additive, so the utility vector of a package is the sum of one
//! contribution vector per issue. The frontier of a sum of sets is contained in the sum of
//! the sets' frontiers, so the frontier is built issue by issue: add the options of the next
//! issue to every point kept so far, drop what can never be rational, drop what is dominated,
//! and go on. The work grows with the size of the intermediate frontiers, not with the
//! product of option counts.
//!
//! Dominance is judged with a tolerance `T` of one fixed-point unit per issue (1e-9 per
//! issue): `y` dominates `x` when `y_i ≥ x_i − T` for every party and `y_j > x_j + T` for one.
//! Outcomes whose utilities differ by less than that (the float rounding of an exact tie) are
//! both kept. Intermediate stages drop `x` only when `y ≥ x` exactly and `y_j > x_j + T`,
//! which never drops a point of the final frontier, so the result equals the brute-force
//! definition exactly (a proptest checks this).

use crate::position::Position;
use crate::space::{OutcomeSpace, Package};
use crate::{Error, Result};

/// Most candidate points one stage of the merge may hold. Utilities that are nearly opposed
/// (one party's gain is the other's loss on every issue) make almost every outcome
/// Pareto-optimal; past this limit the frontier is refused rather than exhausting memory.
pub const MAX_STAGE_CANDIDATES: usize = 20_000_000;

/// Most bytes the merge may hold at once: the stages kept (for walking back to packages) and
/// the candidates of the stage being merged. A merge that would go past it is refused before
/// it allocates the stage (the heavy calls at once, `--max-heavy-calls`, times this bounds
/// their memory).
pub const MAX_FRONTIER_BYTES: usize = 256 << 20;

/// Bytes one candidate point of a stage takes while it is merged beyond its utilities: its
/// origin, its place in the sort, its group and representative, and the group's map entry.
const CANDIDATE_BYTES: usize = 8 + 8 + 16 + 8 + 48;

impl Stage {
    /// Bytes the stage holds.
    fn bytes(&self) -> usize {
        self.utilities.capacity() * 8
            + self.parent_start.capacity() * 4
            + self.parents.capacity() * 8
            + self.counts.capacity() * 8
    }
}

/// One point of the frontier: a utility vector and the packages that reach it.
#[derive(Clone, Debug, PartialEq)]
pub struct FrontierPoint {
    /// Utility of each party, in fixed-point units (see [`crate::position::SCALE`]).
    pub utilities: Vec<i64>,
    /// Packages with exactly these utilities (at most the cap given to [`pareto_frontier`]).
    pub packages: Vec<Package>,
    /// How many packages have exactly these utilities (saturating).
    pub package_count: u64,
}

impl FrontierPoint {
    /// Utilities as fractions in [0, 1].
    pub fn utilities_f64(&self) -> Vec<f64> {
        self.utilities
            .iter()
            .map(|&u| u as f64 / crate::position::SCALE)
            .collect()
    }
}

/// The Pareto frontier over rational outcomes, sorted by the first party's utility,
/// highest first.
#[derive(Clone, Debug, PartialEq)]
pub struct ParetoFrontier {
    /// The points.
    pub points: Vec<FrontierPoint>,
    /// The dominance tolerance used, in fixed-point units.
    pub tolerance: i64,
    /// Largest number of points kept at any intermediate stage (a measure of the work done).
    pub peak_stage_points: usize,
}

/// The tolerance of a space with `issues` issues: one unit per issue.
pub fn tolerance(issues: usize) -> i64 {
    issues as i64
}

/// `y` dominates `x`: `y_i ≥ x_i − slack` for all i, and `y_j > x_j + t` for some j.
pub(crate) fn dominates(y: &[i64], x: &[i64], slack: i64, t: i64) -> bool {
    y.iter().zip(x).all(|(a, b)| *a >= b - slack) && y.iter().zip(x).any(|(a, b)| *a > b + t)
}

/// Rational: `u_i ≥ reservation_i − t` for every party.
pub(crate) fn rational(u: &[i64], reservations: &[i64], t: i64) -> bool {
    u.iter().zip(reservations).all(|(a, r)| *a >= r - t)
}

struct Stage {
    /// Utility vectors, `parties` per point.
    utilities: Vec<i64>,
    /// Parents of point k: `parents[parent_start[k]..parent_start[k + 1]]`, each the index of
    /// a point of the previous stage and the option chosen on this stage's issue.
    parent_start: Vec<u32>,
    parents: Vec<(u32, u16)>,
    counts: Vec<u64>,
}

impl Stage {
    fn len(&self) -> usize {
        self.counts.len()
    }
}

/// Indices of the candidates that no other candidate dominates (with `slack`, `t`).
fn non_dominated(u: &[i64], parties: usize, idx: &[usize], slack: i64, t: i64) -> Vec<usize> {
    let at = |i: usize| &u[i * parties..(i + 1) * parties];
    if parties == 2 {
        // Sort by u1 descending; a prefix maximum of u2 answers "is there a y with
        // y1 above a threshold and y2 above another" in O(log n).
        let mut order: Vec<usize> = idx.to_vec();
        order.sort_unstable_by(|&a, &b| at(b)[0].cmp(&at(a)[0]).then(at(b)[1].cmp(&at(a)[1])));
        if crate::cancel::is_cancelled() {
            return Vec::new();
        }
        let u1: Vec<i64> = order.iter().map(|&i| at(i)[0]).collect();
        let mut prefix_max = Vec::with_capacity(order.len());
        let mut m = i64::MIN;
        for &i in &order {
            m = m.max(at(i)[1]);
            prefix_max.push(m);
        }
        // Largest u2 among points with u1 > θ (strict) or u1 ≥ θ.
        let max_above = |theta: i64, strict: bool| -> i64 {
            let n = if strict {
                u1.partition_point(|&v| v > theta)
            } else {
                u1.partition_point(|&v| v >= theta)
            };
            if n == 0 {
                i64::MIN
            } else {
                prefix_max[n - 1]
            }
        };
        order
            .into_iter()
            .filter(|&i| {
                let x = at(i);
                let a = max_above(x[0] + t, true) >= x[1] - slack;
                let b = max_above(x[0] - slack, false) > x[1] + t;
                !(a || b)
            })
            .collect()
    } else {
        // Highest sums first: dominators tend to come early, so most checks end quickly.
        let mut order: Vec<usize> = idx.to_vec();
        order.sort_unstable_by_key(|&i| std::cmp::Reverse(at(i).iter().sum::<i64>()));
        let mut kept: Vec<usize> = Vec::new();
        for &i in &order {
            // O(n) per point: the slow path on large spaces of three or more parties.
            if crate::cancel::is_cancelled() {
                return Vec::new();
            }
            if !order
                .iter()
                .any(|&j| j != i && dominates(at(j), at(i), slack, t))
            {
                kept.push(i);
            }
        }
        kept.sort_unstable_by(|&a, &b| at(b).cmp(at(a)));
        kept
    }
}

/// Computes the Pareto frontier of the rational outcomes of `space` for `positions`
/// (one per party), keeping at most `max_packages` packages per point. Fails with
/// [`Error::TooLarge`] when a stage would exceed [`MAX_STAGE_CANDIDATES`] points, and with
/// [`Error::Cancelled`] when the flag of its [`crate::cancel`] scope is set.
pub fn pareto_frontier(
    space: &OutcomeSpace,
    positions: &[&Position],
    max_packages: usize,
) -> Result<ParetoFrontier> {
    pareto_frontier_limited(space, positions, max_packages, MAX_STAGE_CANDIDATES)
}

/// [`pareto_frontier`] with another limit on the candidates of a stage.
pub fn pareto_frontier_limited(
    space: &OutcomeSpace,
    positions: &[&Position],
    max_packages: usize,
    max_candidates: usize,
) -> Result<ParetoFrontier> {
    let parties = positions.len();
    let issues = space.issues().len();
    let t = tolerance(issues);
    let reservations: Vec<i64> = positions.iter().map(|p| p.reservation_units()).collect();
    // best_rest[k][p]: the most party p can still gain from issues k.. (for rationality pruning).
    let mut best_rest = vec![vec![0i64; parties]; issues + 1];
    for k in (0..issues).rev() {
        for (p, pos) in positions.iter().enumerate() {
            let best = pos.contributions()[k].iter().copied().max().unwrap_or(0);
            best_rest[k][p] = best_rest[k + 1][p] + best;
        }
    }

    let mut stages: Vec<Stage> = Vec::with_capacity(issues);
    let mut peak = 0usize;
    for k in 0..issues {
        let options = space.issues()[k].options.len();
        let prev_len = stages.last().map_or(1, Stage::len);
        if prev_len.saturating_mul(options) > max_candidates {
            return Err(Error::TooLarge(format!(
                "the Pareto frontier grows past {max_candidates} candidate points at issue {:?} \
                 ({prev_len} points × {options} options): the parties' utilities are too nearly opposed \
                 for an exact frontier of this space",
                space.issues()[k].id
            )));
        }
        let held: usize = stages.iter().map(Stage::bytes).sum();
        let merging = prev_len
            .saturating_mul(options)
            .saturating_mul(parties * 8 + CANDIDATE_BYTES);
        if held.saturating_add(merging) > MAX_FRONTIER_BYTES {
            return Err(Error::TooLarge(format!(
                "the Pareto frontier would take more than {} MiB at issue {:?} ({prev_len} points × \
                 {options} options to merge, {} MiB held): the parties' utilities are too nearly \
                 opposed for an exact frontier of this space",
                MAX_FRONTIER_BYTES >> 20,
                space.issues()[k].id,
                held >> 20
            )));
        }
        // Candidates: every kept point of the previous stage plus each option of issue k.
        let mut u = Vec::with_capacity(prev_len * options * parties);
        let mut origin: Vec<(u32, u16)> = Vec::with_capacity(prev_len * options);
        for prev in 0..prev_len {
            if prev % 1024 == 0 {
                crate::cancel::check()?;
            }
            for o in 0..options {
                let start = u.len();
                for (p, pos) in positions.iter().enumerate() {
                    let base = stages.last().map_or(0, |s| s.utilities[prev * parties + p]);
                    u.push(base + pos.contributions()[k][o]);
                }
                // Drop what can never become rational.
                let hopeless =
                    (0..parties).any(|p| u[start + p] + best_rest[k + 1][p] < reservations[p] - t);
                if hopeless {
                    u.truncate(start);
                } else {
                    origin.push((prev as u32, o as u16));
                }
            }
        }
        let n = origin.len();
        peak = peak.max(n);
        let at = |i: usize| &u[i * parties..(i + 1) * parties];
        // Merge exact ties: sort candidate indices by utility vector.
        let mut by_value: Vec<usize> = (0..n).collect();
        by_value.sort_unstable_by(|&a, &b| at(a).cmp(at(b)));
        let mut groups: Vec<(usize, usize)> = Vec::new(); // (start, end) in by_value
        let mut s = 0;
        while s < n {
            let mut e = s + 1;
            while e < n && at(by_value[e]) == at(by_value[s]) {
                e += 1;
            }
            groups.push((s, e));
            s = e;
        }
        let representatives: Vec<usize> = groups.iter().map(|&(s, _)| by_value[s]).collect();
        let last = k + 1 == issues;
        // Intermediate stages: exact dominance with a margin; the last: the tolerant relation.
        let slack = if last { t } else { 0 };
        crate::cancel::check()?;
        let kept = non_dominated(&u, parties, &representatives, slack, t);
        // A cancelled merge returns early (with nothing kept).
        crate::cancel::check()?;
        let group_of: std::collections::HashMap<usize, (usize, usize)> =
            groups.iter().map(|&(s, e)| (by_value[s], (s, e))).collect();
        let mut stage = Stage {
            utilities: Vec::with_capacity(kept.len() * parties),
            parent_start: Vec::with_capacity(kept.len() + 1),
            parents: Vec::new(),
            counts: Vec::with_capacity(kept.len()),
        };
        for rep in kept {
            if last && !rational(at(rep), &reservations, t) {
                continue;
            }
            let (s, e) = group_of[&rep];
            stage.utilities.extend_from_slice(at(rep));
            stage.parent_start.push(stage.parents.len() as u32);
            let mut count = 0u64;
            for &c in &by_value[s..e] {
                let (prev, o) = origin[c];
                let prev_count = stages.last().map_or(1, |st| st.counts[prev as usize]);
                count = count.saturating_add(prev_count);
                stage.parents.push((prev, o));
            }
            stage.counts.push(count);
        }
        stage.parent_start.push(stage.parents.len() as u32);
        stages.push(stage);
    }

    let last = stages.last().expect("at least one issue");
    let points = (0..last.len())
        .map(|i| FrontierPoint {
            utilities: last.utilities[i * parties..(i + 1) * parties].to_vec(),
            packages: packages_of(&stages, i, max_packages),
            package_count: last.counts[i],
        })
        .collect();
    Ok(ParetoFrontier {
        points,
        tolerance: t,
        peak_stage_points: peak,
    })
}

/// Up to `cap` packages reaching point `i` of the last stage, by walking the parents back.
fn packages_of(stages: &[Stage], i: usize, cap: usize) -> Vec<Package> {
    let mut out = Vec::new();
    let mut suffix = vec![0u16; stages.len()];
    walk(
        stages,
        stages.len() - 1,
        i,
        &mut suffix,
        &mut out,
        cap.max(1),
    );
    out
}

fn walk(
    stages: &[Stage],
    k: usize,
    i: usize,
    suffix: &mut Vec<u16>,
    out: &mut Vec<Package>,
    cap: usize,
) {
    let stage = &stages[k];
    let (s, e) = (
        stage.parent_start[i] as usize,
        stage.parent_start[i + 1] as usize,
    );
    for &(prev, o) in &stage.parents[s..e] {
        if out.len() >= cap {
            return;
        }
        suffix[k] = o;
        if k == 0 {
            out.push(Package(suffix.clone()));
        } else {
            walk(stages, k - 1, prev as usize, suffix, out, cap);
        }
    }
}

/// Utility vectors (in units) of `package` for `positions`.
pub fn utilities_of(positions: &[&Position], package: &Package) -> Vec<i64> {
    positions.iter().map(|p| p.utility_units(package)).collect()
}

/// Whether `package` is on the frontier: rational and not dominated by a frontier point.
pub fn is_pareto_optimal(
    frontier: &ParetoFrontier,
    positions: &[&Position],
    package: &Package,
) -> bool {
    let u = utilities_of(positions, package);
    let reservations: Vec<i64> = positions.iter().map(|p| p.reservation_units()).collect();
    rational(&u, &reservations, frontier.tolerance)
        && !frontier
            .points
            .iter()
            .any(|p| dominates(&p.utilities, &u, frontier.tolerance, frontier.tolerance))
}

/// Enumerates a (small) space: every rational outcome with its utilities.
pub fn rational_outcomes<'a>(
    space: &'a OutcomeSpace,
    positions: &'a [&'a Position],
) -> impl Iterator<Item = (Package, Vec<i64>)> + 'a {
    let t = tolerance(space.issues().len());
    let reservations: Vec<i64> = positions.iter().map(|p| p.reservation_units()).collect();
    space.packages().filter_map(move |pkg| {
        let u = utilities_of(positions, &pkg);
        rational(&u, &reservations, t).then_some((pkg, u))
    })
}

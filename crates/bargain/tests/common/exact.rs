//! The exact side of the scenario-format tests: decimals as rationals, the Pareto set, Nash
//! and Kalai–Smorodinsky packages by enumeration in rational arithmetic, and the check that the
//! engine finds the same ones on a scenario read from files.

use std::collections::BTreeSet;

use num_rational::BigRational;
use tradepact_bargain::genius::Scenario;
use tradepact_bargain::{analyze, OutcomeSpace, Package, Position};

/// An exact rational.
pub type Q = BigRational;

/// A decimal as an exact rational ("0.45" → 9/20).
pub fn dec(s: &str) -> Q {
    let s = s.trim();
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits: num_bigint::BigInt = format!("{int}{frac}").parse().unwrap();
    let q = Q::new(digits, num_bigint::BigInt::from(10).pow(frac.len() as u32));
    if neg {
        -q
    } else {
        q
    }
}

pub fn package_of(index: usize, sizes: &[usize]) -> Package {
    let mut n = index;
    let mut p = vec![0u16; sizes.len()];
    for i in (0..sizes.len()).rev() {
        p[i] = (n % sizes[i]) as u16;
        n /= sizes[i];
    }
    Package(p)
}

/// The exact Pareto set, Nash set and Kalai–Smorodinsky set (packages).
#[allow(clippy::type_complexity)]
pub fn exact(
    utilities: &[Vec<Q>],
    d: &[Q],
    sizes: &[usize],
) -> (BTreeSet<Package>, BTreeSet<Package>, BTreeSet<Package>) {
    let zero = Q::from_integer(0.into());
    let rational: Vec<usize> = (0..utilities.len())
        .filter(|&i| utilities[i].iter().zip(d).all(|(u, d)| u >= d))
        .collect();
    let dominates = |y: &[Q], x: &[Q]| {
        y.iter().zip(x).all(|(a, b)| a >= b) && y.iter().zip(x).any(|(a, b)| a > b)
    };
    let pareto: Vec<usize> = rational
        .iter()
        .copied()
        .filter(|&x| {
            !rational
                .iter()
                .any(|&y| dominates(&utilities[y], &utilities[x]))
        })
        .collect();
    let best_by = |score: &dyn Fn(usize) -> Q| -> BTreeSet<Package> {
        let best = pareto.iter().map(|&i| score(i)).max().unwrap();
        pareto
            .iter()
            .filter(|&&i| score(i) == best)
            .map(|&i| package_of(i, sizes))
            .collect()
    };
    let nash = best_by(&|i| {
        utilities[i]
            .iter()
            .zip(d)
            .map(|(u, d)| (u - d).max(zero.clone()))
            .product()
    });
    let ideal: Vec<Q> = (0..d.len())
        .map(|p| utilities.iter().map(|u| u[p].clone()).max().unwrap())
        .collect();
    let gains = |i: usize| -> Vec<Q> {
        utilities[i]
            .iter()
            .zip(d)
            .zip(&ideal)
            .map(|((u, d), top)| {
                if top > d {
                    (u - d) / (top - d)
                } else {
                    Q::from_integer(1.into())
                }
            })
            .collect()
    };
    // Most equal normalised gains; among those, the highest.
    let spread = |i: usize| {
        let g = gains(i);
        g.iter().max().unwrap() - g.iter().min().unwrap()
    };
    let least = pareto.iter().map(|&i| spread(i)).min().unwrap();
    let equal: Vec<usize> = pareto
        .iter()
        .copied()
        .filter(|&i| spread(i) == least)
        .collect();
    let low = |i: usize| gains(i).into_iter().min().unwrap();
    let top = equal.iter().map(|&i| low(i)).max().unwrap();
    let ks = equal
        .iter()
        .filter(|&&i| low(i) == top)
        .map(|&i| package_of(i, sizes))
        .collect();
    let pareto = pareto.iter().map(|&i| package_of(i, sizes)).collect();
    (pareto, nash, ks)
}

/// Checks that the engine's Pareto set, Nash and Kalai–Smorodinsky packages on `scenario`
/// are the exact ones of `utilities` (every package's, in the engine's order) and `d`.
pub fn agrees(dir: &str, scenario: &Scenario, outcomes: usize, utilities: &[Vec<Q>], d: &[Q]) {
    let space = OutcomeSpace::new(scenario.issues.clone()).unwrap();
    assert_eq!(space.size_exact(), Some(outcomes as u64));
    let positions: Vec<Position> = scenario
        .positions
        .iter()
        .map(|(_, spec)| Position::new(&space, spec).unwrap())
        .collect();
    let refs: Vec<&Position> = positions.iter().collect();
    let analysis = analyze(&space, &refs, 1_000, 1).unwrap();
    let engine = |points: &[tradepact_bargain::FrontierPoint]| -> BTreeSet<Package> {
        points
            .iter()
            .flat_map(|p| p.packages.iter().cloned())
            .collect()
    };
    let sizes: Vec<usize> = space.issues().iter().map(|i| i.options.len()).collect();
    let (pareto, nash, ks) = exact(utilities, d, &sizes);
    assert!(
        pareto.len() > 2,
        "{dir}: a frontier worth checking: {pareto:?}"
    );
    assert_eq!(
        engine(&analysis.frontier.points),
        pareto,
        "{dir}: Pareto set"
    );
    assert_eq!(engine(&analysis.nash.points), nash, "{dir}: Nash");
    assert_eq!(
        engine(&analysis.kalai_smorodinsky.points),
        ks,
        "{dir}: Kalai-Smorodinsky"
    );
}

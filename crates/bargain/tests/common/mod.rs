//! Helpers shared by the bargain tests: small spaces and positions, and the brute-force oracle.

#![allow(dead_code)]

pub mod exact;

use std::collections::{BTreeMap, HashMap};

use tradepact_bargain::frontier::{tolerance, utilities_of};
use tradepact_bargain::{Issue, OptionDef, OutcomeSpace, Package, Position, PositionSpec};

/// A space with `options[i]` options on issue `i`, ids `i0..`, options `o0..`.
pub fn space(options: &[usize]) -> OutcomeSpace {
    OutcomeSpace::new(
        options
            .iter()
            .enumerate()
            .map(|(i, &n)| Issue {
                id: format!("i{i}"),
                label: format!("issue {i}"),
                options: (0..n)
                    .map(|o| OptionDef {
                        id: format!("o{o}"),
                        label: format!("option {o}"),
                    })
                    .collect(),
            })
            .collect(),
    )
    .unwrap()
}

/// A position from weights and values by index.
pub fn position(
    space: &OutcomeSpace,
    weights: &[f64],
    values: &[Vec<f64>],
    reservation: f64,
) -> Position {
    let mut spec = PositionSpec {
        reservation,
        ..Default::default()
    };
    for (i, issue) in space.issues().iter().enumerate() {
        spec.weights.insert(issue.id.clone(), weights[i]);
        spec.values.insert(
            issue.id.clone(),
            issue
                .options
                .iter()
                .enumerate()
                .map(|(o, opt)| (opt.id.clone(), values[i][o]))
                .collect::<HashMap<_, _>>(),
        );
    }
    Position::new(space, &spec).unwrap()
}

/// The frontier by definition: rational outcomes not dominated by a rational outcome,
/// grouped by utility vector (packages sorted).
pub fn brute_force_frontier(
    space: &OutcomeSpace,
    positions: &[&Position],
) -> BTreeMap<Vec<i64>, Vec<Package>> {
    let t = tolerance(space.issues().len());
    let r: Vec<i64> = positions.iter().map(|p| p.reservation_units()).collect();
    let all: Vec<(Package, Vec<i64>)> = space
        .packages()
        .map(|p| {
            let u = utilities_of(positions, &p);
            (p, u)
        })
        .filter(|(_, u)| u.iter().zip(&r).all(|(a, r)| *a >= r - t))
        .collect();
    let dominates = |y: &[i64], x: &[i64]| {
        y.iter().zip(x).all(|(a, b)| *a >= b - t) && y.iter().zip(x).any(|(a, b)| *a > b + t)
    };
    let mut out: BTreeMap<Vec<i64>, Vec<Package>> = BTreeMap::new();
    for (p, u) in &all {
        if !all.iter().any(|(_, v)| dominates(v, u)) {
            out.entry(u.clone()).or_default().push(p.clone());
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

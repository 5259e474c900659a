//! Synthetic negotiations for benchmarks and tests: the workload of the NegMAS reference
//! figures (two parties, random linear-additive utilities).

use crate::position::Position;
use crate::rng::SplitMix64;
use crate::space::{Issue, OptionDef, OutcomeSpace};

/// `issues` issues of `options` options each, and two parties whose weights and values are
/// uniform in [0, 1) from `seed`, with reservation values 0.
pub fn random_bilateral(
    issues: usize,
    options: usize,
    seed: u64,
) -> (OutcomeSpace, Position, Position) {
    let space = OutcomeSpace::new(
        (0..issues)
            .map(|i| Issue {
                id: format!("i{i}"),
                label: String::new(),
                options: (0..options)
                    .map(|o| OptionDef {
                        id: format!("o{o}"),
                        label: String::new(),
                    })
                    .collect(),
            })
            .collect(),
    )
    .expect("issue and option ids are distinct");
    let mut rng = SplitMix64::new(seed);
    let mut party = || {
        let weights: Vec<f64> = (0..issues).map(|_| rng.unit() + f64::EPSILON).collect();
        let total: f64 = weights.iter().sum();
        let values = (0..issues)
            .map(|_| (0..options).map(|_| rng.unit()).collect())
            .collect();
        Position::from_parts(weights.iter().map(|w| w / total).collect(), values, 0.0)
    };
    let (a, b) = (party(), party());
    (space, a, b)
}

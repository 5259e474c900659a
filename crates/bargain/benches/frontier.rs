//! Criterion benches: frontier + Nash point for 10^4 … 10^12 outcomes (2 parties, 10 options
//! per issue, random linear-additive utilities), and a 100-round Boulware-versus-Conceder
//! simulation on 10^6 outcomes, and a robustness analysis on 10^6 outcomes (100 samples with
//! every weight ±25 %, plus the one-at-a-time sensitivity of the 12 weights), and 100-round
//! three-party simulations on 10^6 outcomes.
//! `cargo bench -p tradepact-bargain`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tradepact_bargain::robust::{self, Parameter, Uncertain};
use tradepact_bargain::{analyze, OutcomeSpace, Position, PositionSpec, Simulation, Strategy};

fn scenario(issues: usize, seed: u64) -> (OutcomeSpace, Position, Position) {
    tradepact_bargain::sample::random_bilateral(issues, 10, seed)
}

fn frontier_and_nash(c: &mut Criterion) {
    let mut group = c.benchmark_group("pareto_frontier_and_nash");
    group.sample_size(10);
    for issues in [4usize, 5, 6, 9, 12] {
        let (space, a, b) = scenario(issues, 1);
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("1e{issues}")),
            &issues,
            |bench, _| {
                bench.iter(|| analyze(&space, &[&a, &b], 1, 1).unwrap());
            },
        );
    }
    group.finish();
}

fn simulation(c: &mut Criterion) {
    let (space, a, b) = scenario(6, 1);
    c.bench_function("simulation_boulware_vs_conceder_1e6_100_rounds", |bench| {
        bench.iter(|| {
            Simulation::new(
                &space,
                vec![&a, &b],
                vec![Strategy::BOULWARE, Strategy::CONCEDER],
                100,
                1,
            )
            .unwrap()
            .run()
        });
    });
}

/// The stated position of `p` (raw weights = the normalised ones).
fn spec(space: &OutcomeSpace, p: &Position) -> PositionSpec {
    let issues = space.issues();
    PositionSpec {
        weights: (issues.iter().zip(p.weights()))
            .map(|(i, w)| (i.id.clone(), *w))
            .collect(),
        values: (issues.iter().zip(p.values()))
            .map(|(i, row)| {
                let values = (i.options.iter().zip(row))
                    .map(|(o, v)| (o.id.clone(), *v))
                    .collect();
                (i.id.clone(), values)
            })
            .collect(),
        reservation: p.reservation(),
    }
}

fn robustness(c: &mut Criterion) {
    let (space, a, b) = scenario(6, 1);
    let specs = vec![spec(&space, &a), spec(&space, &b)];
    let uncertain: Vec<Uncertain> = (0..2)
        .flat_map(|party| {
            let specs = &specs;
            space.issues().iter().map(move |i| {
                let w = specs[party].weights[&i.id];
                Uncertain {
                    parameter: Parameter::Weight {
                        party,
                        issue: i.id.clone(),
                    },
                    low: w * 0.75,
                    high: w * 1.25,
                }
            })
        })
        .collect();
    let mut group = c.benchmark_group("robustness_1e6");
    group.sample_size(10);
    group.bench_function("100_samples_12_weights", |bench| {
        bench.iter(|| robust::robustness(&space, &specs, &uncertain, 100, 1).unwrap());
    });
    // Sampling dominates (one solve a sample, whatever varies): 1000 samples of one weight,
    // with its sensitivity (at most 72 solves).
    group.bench_function("1000_samples_one_weight", |bench| {
        bench.iter(|| robust::robustness(&space, &specs, &uncertain[..1], 1000, 1).unwrap());
    });
    group.finish();
}

/// A third party on the same space: random weights and values (seed 3).
fn third(space: &OutcomeSpace) -> Position {
    let mut rng = tradepact_bargain::rng::SplitMix64::new(3);
    let spec = PositionSpec {
        weights: (space.issues().iter())
            .map(|i| (i.id.clone(), rng.unit() + 0.05))
            .collect(),
        values: (space.issues().iter())
            .map(|i| {
                let values = (i.options.iter())
                    .map(|o| (o.id.clone(), rng.unit()))
                    .collect();
                (i.id.clone(), values)
            })
            .collect(),
        reservation: 0.0,
    };
    Position::new(space, &spec).unwrap()
}

fn three_party_simulation(c: &mut Criterion) {
    let (space, a, b) = scenario(6, 1);
    let c3 = third(&space);
    let mut group = c.benchmark_group("simulation_three_parties_1e6_100_rounds");
    group.sample_size(10);
    for (name, strategies) in [
        (
            "boulware_linear_conceder",
            vec![Strategy::BOULWARE, Strategy::LINEAR, Strategy::CONCEDER],
        ),
        ("zeuthen", vec![Strategy::Zeuthen; 3]),
    ] {
        group.bench_function(name, |bench| {
            bench.iter(|| {
                Simulation::new(&space, vec![&a, &b, &c3], strategies.clone(), 100, 1)
                    .unwrap()
                    .run()
            });
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    frontier_and_nash,
    simulation,
    robustness,
    three_party_simulation
);
criterion_main!(benches);

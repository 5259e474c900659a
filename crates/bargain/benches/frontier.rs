//! Criterion benches: frontier + Nash point for 10^4 … 10^12 outcomes (2 parties, 10 options
//! per issue, random linear-additive utilities), and a 100-round Boulware-versus-Conceder
//! simulation on 10^6 outcomes. `cargo bench -p tradepact-bargain`.

use std::collections::HashMap;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tradepact_bargain::rng::SplitMix64;
use tradepact_bargain::{
    analyze, Issue, OptionDef, OutcomeSpace, Position, PositionSpec, Simulation, Strategy,
};

fn scenario(issues: usize, seed: u64) -> (OutcomeSpace, Position, Position) {
    let space = OutcomeSpace::new(
        (0..issues)
            .map(|i| Issue {
                id: format!("i{i}"),
                label: String::new(),
                options: (0..10)
                    .map(|o| OptionDef {
                        id: format!("o{o}"),
                        label: String::new(),
                    })
                    .collect(),
            })
            .collect(),
    )
    .unwrap();
    let mut rng = SplitMix64::new(seed);
    let mut party = || {
        let mut spec = PositionSpec {
            reservation: 0.0,
            ..Default::default()
        };
        for i in 0..issues {
            spec.weights.insert(format!("i{i}"), rng.unit());
            spec.values.insert(
                format!("i{i}"),
                (0..10)
                    .map(|o| (format!("o{o}"), rng.unit()))
                    .collect::<HashMap<_, _>>(),
            );
        }
        Position::new(&space, &spec).unwrap()
    };
    let (a, b) = (party(), party());
    (space, a, b)
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

criterion_group!(benches, frontier_and_nash, simulation);
criterion_main!(benches);

//! Criterion benches: frontier + Nash point for 10^4 … 10^12 outcomes (2 parties, 10 options
//! per issue, random linear-additive utilities), and a 100-round Boulware-versus-Conceder
//! simulation on 10^6 outcomes. `cargo bench -p tradepact-bargain`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tradepact_bargain::{analyze, OutcomeSpace, Position, Simulation, Strategy};

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

criterion_group!(benches, frontier_and_nash, simulation);
criterion_main!(benches);

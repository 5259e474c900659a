//! Simulated negotiations: Zeuthen reaches Nash (two parties, and three worked by hand),
//! Boulware beats Conceder, nobody offers below its reservation value, a seed reproduces a run.

mod common;

use common::{position, space};
use tradepact_bargain::rng::SplitMix64;
use tradepact_bargain::simulate::Action;
use tradepact_bargain::{analyze, OutcomeSpace, Position, Simulation, Strategy};

fn random_parties(s: &OutcomeSpace, seed: u64, reservation: f64) -> (Position, Position) {
    let mut rng = SplitMix64::new(seed);
    let n = s.issues().len();
    let mut one = || {
        let w: Vec<f64> = (0..n).map(|_| rng.unit() + 0.05).collect();
        let v: Vec<Vec<f64>> = s
            .issues()
            .iter()
            .map(|i| (0..i.options.len()).map(|_| rng.unit()).collect())
            .collect();
        position(s, &w, &v, reservation)
    };
    (one(), one())
}

#[test]
fn two_zeuthen_players_reach_the_nash_outcome() {
    let mut agreements = 0;
    for seed in 1..=20 {
        let s = space(&[4, 3, 5]);
        let (a, b) = random_parties(&s, seed, 0.2);
        let analysis = analyze(&s, &[&a, &b], 64, 1).unwrap();
        let (steps, outcome) = Simulation::new(
            &s,
            vec![&a, &b],
            vec![Strategy::Zeuthen, Strategy::Zeuthen],
            200,
            seed,
        )
        .unwrap()
        .run();
        if analysis.frontier.points.is_empty() {
            assert!(outcome.agreement.is_none());
            continue;
        }
        let agreed = outcome
            .agreement
            .unwrap_or_else(|| panic!("seed {seed}: no agreement after {} steps", steps.len()));
        assert!(
            analysis
                .nash
                .points
                .iter()
                .any(|p| p.packages.contains(&agreed)),
            "seed {seed}: agreed {agreed:?}, Nash {:?}",
            analysis.nash.points
        );
        // Zeuthen concedes step by step: a real negotiation, not an opening acceptance.
        assert!(steps.len() >= 2, "seed {seed}: {steps:?}");
        agreements += 1;
    }
    assert!(
        agreements >= 15,
        "only {agreements} of 20 scenarios had a ZOPA"
    );
}

#[test]
fn boulware_facing_a_conceder_ends_nearer_its_ideal_than_the_reverse() {
    let mut wins = 0;
    for seed in 1..=10 {
        let s = space(&[5, 5, 5, 4]);
        let (a, b) = random_parties(&s, 100 + seed, 0.1);
        let run = |sa, sb| {
            Simulation::new(&s, vec![&a, &b], vec![sa, sb], 50, seed)
                .unwrap()
                .run()
                .1
        };
        let hard = run(Strategy::BOULWARE, Strategy::CONCEDER);
        let soft = run(Strategy::CONCEDER, Strategy::BOULWARE);
        assert!(hard.agreement.is_some() && soft.agreement.is_some());
        assert!(
            hard.utilities[0] >= soft.utilities[0],
            "seed {seed}: {hard:?} vs {soft:?}"
        );
        wins += u32::from(hard.utilities[0] > soft.utilities[0]);
    }
    assert!(
        wins >= 8,
        "Boulware did strictly better in only {wins} of 10 runs"
    );
}

#[test]
fn no_strategy_offers_below_its_reservation_value() {
    let strategies = [
        Strategy::BOULWARE,
        Strategy::LINEAR,
        Strategy::CONCEDER,
        Strategy::TitForTat,
    ];
    let s = space(&[4, 4, 3]);
    for seed in 1..=5 {
        let (a, b) = random_parties(&s, 200 + seed, 0.35);
        let positions = [&a, &b];
        for sa in strategies {
            for sb in strategies {
                let (steps, _) = Simulation::new(&s, vec![&a, &b], vec![sa, sb], 30, seed)
                    .unwrap()
                    .run();
                for step in steps {
                    if let Action::Offer(pkg) = &step.action {
                        let p = positions[step.party];
                        assert!(
                            p.utility(pkg) >= p.reservation() - 1e-8,
                            "{sa:?}/{sb:?} seed {seed}: {step:?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn the_same_seed_reproduces_a_run_bit_for_bit() {
    let s = space(&[6, 6, 6]);
    let (a, b) = random_parties(&s, 7, 0.1);
    let run = |seed| {
        Simulation::new(
            &s,
            vec![&a, &b],
            vec![Strategy::LINEAR, Strategy::TitForTat],
            40,
            seed,
        )
        .unwrap()
        .run()
    };
    let (s1, o1) = run(9);
    let (s2, o2) = run(9);
    assert_eq!(
        serde_json::to_string(&s1).unwrap(),
        serde_json::to_string(&s2).unwrap()
    );
    assert_eq!(o1, o2);
    assert!(!s1.is_empty());
}

#[test]
fn strategies_that_do_not_fit_are_refused() {
    let s = space(&[2]);
    let a = position(&s, &[1.0], &[vec![1.0, 0.0]], 0.0);
    let b = position(&s, &[1.0], &[vec![0.0, 1.0]], 0.0);
    let c = position(&s, &[1.0], &[vec![0.5, 0.5]], 0.0);
    // Zeuthen takes any number of parties now (Harsanyi's generalisation).
    assert!(Simulation::new(&s, vec![&a, &b, &c], vec![Strategy::Zeuthen; 3], 5, 1).is_ok());
    assert!(Simulation::new(
        &s,
        vec![&a, &b],
        vec![Strategy::TimeBased { exponent: 0.0 }, Strategy::LINEAR],
        5,
        1
    )
    .is_err());
    assert!(Simulation::new(&s, vec![&a, &b], vec![Strategy::LINEAR], 5, 1).is_err());
    assert!(Simulation::new(&s, vec![&a, &b], vec![Strategy::LINEAR; 2], 0, 1).is_err());
}

/// Three Zeuthen players on one issue of options X, Y, Z, worked by hand. Utilities: A (1, .6,
/// 0), B (0, .7, 1), C (.5, 1, .4); no reservation values; Nash products X 0, Y .42, Z 0 —
/// every option is on the frontier, Y is the Nash point.
/// Round 1: A offers X, B offers Z, C offers Y (each its best; none accepts what is worth less).
/// Round 2: A's offer X has the smallest product (0, tied with B's Z): A concedes; the only
/// point whose product beats 0 is Y, worth .6 to A — no more than the standing Y — so A accepts
/// it. B likewise (Z's product 0 is the smallest of the others' X 0 and its own): Y is worth .7
/// to it, as standing: B accepts, and Y is agreed on turn 5.
#[test]
fn three_zeuthen_players_agree_on_the_nash_point_by_hand() {
    let s = space(&[3]);
    let a = position(&s, &[1.0], &[vec![1.0, 0.6, 0.0]], 0.0);
    let b = position(&s, &[1.0], &[vec![0.0, 0.7, 1.0]], 0.0);
    let c = position(&s, &[1.0], &[vec![0.5, 1.0, 0.4]], 0.0);
    let (steps, outcome) = Simulation::new(&s, vec![&a, &b, &c], vec![Strategy::Zeuthen; 3], 10, 1)
        .unwrap()
        .run();
    let actions: Vec<(usize, Action)> = steps
        .iter()
        .map(|st| (st.party, st.action.clone()))
        .collect();
    let offer = |o: u16| Action::Offer(tradepact_bargain::Package(vec![o]));
    assert_eq!(
        actions,
        vec![
            (0, offer(0)),
            (1, offer(2)),
            (2, offer(1)),
            (0, Action::Accept),
            (1, Action::Accept),
        ]
    );
    assert_eq!(outcome.agreement, Some(tradepact_bargain::Package(vec![1])));
    assert_eq!(outcome.utilities, vec![0.6, 0.7, 1.0]);
    assert_eq!(outcome.turns, 5);
    let nash = analyze(&s, &[&a, &b, &c], 4, 1).unwrap().nash;
    assert_eq!(
        nash.points[0].packages[0],
        tradepact_bargain::Package(vec![1])
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Any simulation, of any number of parties, is a legal history of a negotiation under the
    /// stacked rule, and ends where it does: agreed on the same package, or at the deadline.
    #[test]
    fn every_simulation_replays_as_a_stacked_negotiation(
        parties in 2usize..=4,
        seed in 0u64..1_000,
        kinds in proptest::collection::vec(0usize..4, 4),
        deadline in 1u32..12,
        reservation in 0.0f64..0.8,
    ) {
        use tradepact_bargain::{Command, Negotiation, Status, TurnRule};
        let s = space(&[3, 2, 4]);
        let mut rng = SplitMix64::new(seed);
        let positions: Vec<Position> = (0..parties)
            .map(|_| {
                let w: Vec<f64> = (0..3).map(|_| rng.unit() + 0.05).collect();
                let v: Vec<Vec<f64>> = [3, 2, 4]
                    .iter()
                    .map(|&n| (0..n).map(|_| rng.unit()).collect())
                    .collect();
                position(&s, &w, &v, reservation)
            })
            .collect();
        let strategies: Vec<Strategy> = kinds[..parties]
            .iter()
            .map(|k| [Strategy::BOULWARE, Strategy::CONCEDER, Strategy::TitForTat, Strategy::Zeuthen][*k])
            .collect();
        let names: Vec<String> = (0..parties).map(|i| format!("P{i}")).collect();
        let created = Negotiation::create(
            "t", "a", names.clone(), s.issues().to_vec(), deadline, TurnRule::Stacked,
        ).unwrap();
        let mut n = Negotiation::replay([&created]).unwrap();
        let mut sim = Simulation::new(&s, positions.iter().collect(), strategies, deadline, seed).unwrap();
        for step in sim.by_ref() {
            let party = names[step.party].clone();
            let command = match step.action {
                Action::Offer(package) => Command::Offer { party, package },
                Action::Accept => Command::Respond {
                    party,
                    offer: n.offers.len() as u32 - 1,
                    accept: true,
                },
            };
            n.execute(&command).unwrap();
        }
        let outcome = sim.outcome().unwrap();
        match &outcome.agreement {
            Some(package) => {
                proptest::prop_assert_eq!(n.status, Status::Agreed);
                proptest::prop_assert_eq!(&n.offers[n.agreed.unwrap() as usize].package, package);
            }
            None if outcome.reason.contains("deadline") => {
                proptest::prop_assert_eq!(n.status, Status::BrokenOff);
                proptest::prop_assert_eq!(n.turns, deadline * parties as u32);
            }
            None => proptest::prop_assert_eq!(n.status, Status::Open),
        }
        proptest::prop_assert_eq!(n.turns, outcome.turns.min(deadline * parties as u32));
    }
}

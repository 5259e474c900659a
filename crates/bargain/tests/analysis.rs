//! Solutions on scenarios worked out by hand.

mod common;

use common::{position, space};
use tradepact_bargain::analysis::{at_or_above, extreme_packages, logrolling_hints, zopa};
use tradepact_bargain::{analyze, Package};

/// One issue, four options; utilities (US, KOR): A (0.95, 0.35), B (0.6, 0.6), C (0.5, 0.75),
/// D (0.2, 0.95); reservations 0.1 each. By hand:
/// - Nash, Π(u − 0.1): A 0.2125, B 0.25, C 0.26, D 0.085 → C;
/// - Kalai–Smorodinsky, ideals 0.95 both: normalised gains A (1, 0.29), B (0.59, 0.59),
///   C (0.47, 0.76), D (0.12, 1) → B (equal gains);
/// - egalitarian, min(u − 0.1): A 0.25, B 0.5, C 0.4, D 0.1 → B;
/// - max welfare, Σu: A 1.3, B 1.2, C 1.25, D 1.15 → A.
#[test]
fn nash_ks_egalitarian_and_welfare_points_match_the_hand_calculation() {
    let s = space(&[4]);
    let us = position(&s, &[1.0], &[vec![0.95, 0.6, 0.5, 0.2]], 0.1);
    let kor = position(&s, &[1.0], &[vec![0.35, 0.6, 0.75, 0.95]], 0.1);
    let a = analyze(&s, &[&us, &kor], 8, 1).unwrap();
    let only = |sol: &tradepact_bargain::Solution| {
        assert_eq!(sol.points.len(), 1, "{sol:?}");
        sol.points[0].packages[0].clone()
    };
    assert_eq!(a.frontier.points.len(), 4);
    assert_eq!(only(&a.nash), Package(vec![2]));
    assert!((a.nash.value - 0.26).abs() < 1e-9);
    assert_eq!(only(&a.kalai_smorodinsky), Package(vec![1]));
    assert_eq!(only(&a.egalitarian), Package(vec![1]));
    assert!((a.egalitarian.value - 0.5).abs() < 1e-9);
    assert_eq!(only(&a.max_welfare), Package(vec![0]));
    assert!((a.max_welfare.value - 1.3).abs() < 1e-9);
    assert_eq!(a.ideal, vec![950_000_000, 950_000_000]);
    assert_eq!(
        a.zopa,
        Some(tradepact_bargain::Zopa {
            size: 4.0,
            share: 1.0,
            exact: true
        })
    );
}

/// Two issues where the US cares more about the tariff (0.6) and Korea about the quota (0.7):
/// (keep, high) (1, 0), (keep, low) (0.6, 0.7), (cut, high) (0.4, 0.3), (cut, low) (0, 1).
#[test]
fn logrolling_zopa_and_inverse_queries() {
    let s = space(&[2, 2]);
    let us = position(&s, &[0.6, 0.4], &[vec![1.0, 0.0], vec![1.0, 0.0]], 0.2);
    let kor = position(&s, &[0.3, 0.7], &[vec![0.0, 1.0], vec![0.0, 1.0]], 0.2);
    let refs = [&us, &kor];

    // Only (keep, low) and (cut, high) beat both reservations; (keep, low) dominates.
    let z = zopa(&s, &refs, 1);
    assert_eq!((z.size, z.exact), (2.0, true));
    let a = analyze(&s, &refs, 8, 1).unwrap();
    assert_eq!(a.frontier.points.len(), 1);
    assert_eq!(a.nash.points[0].packages, vec![Package(vec![0, 1])]);

    // The US should give on the quota (issue 1) to win the tariff (issue 0):
    // (0.6 / 0.4) / (0.3 / 0.7) = 3.5.
    let hints = logrolling_hints(&refs, 1.5);
    assert_eq!(hints.len(), 1, "{hints:?}");
    assert_eq!((hints[0].party, hints[0].gives, hints[0].gets), (0, 1, 0));
    assert!((hints[0].ratio - 3.5).abs() < 1e-9);

    assert_eq!(
        extreme_packages(&s, &us, true, 8),
        vec![Package(vec![0, 0])]
    );
    assert_eq!(
        extreme_packages(&s, &kor, false, 8),
        vec![Package(vec![0, 0])]
    );

    let all = analyze(
        &s,
        &[
            &position(&s, &[0.6, 0.4], &[vec![1.0, 0.0], vec![1.0, 0.0]], 0.0),
            &position(&s, &[0.3, 0.7], &[vec![0.0, 1.0], vec![0.0, 1.0]], 0.0),
        ],
        8,
        1,
    )
    .unwrap();
    // US at or above 0.5: (keep, low) [KOR 0.7] before (keep, high) [KOR 0].
    let offers = at_or_above(&all.frontier, 0, 500_000_000);
    let pkgs: Vec<&Package> = offers.iter().map(|p| &p.packages[0]).collect();
    assert_eq!(pkgs, vec![&Package(vec![0, 1]), &Package(vec![0, 0])]);
}

#[test]
fn opposed_utilities_past_the_limit_are_refused_not_exhausting_memory() {
    // B's values are exactly 1 − A's with equal weights: every outcome is Pareto-optimal,
    // so the frontier is the whole space (10^6 here).
    let s = space(&[10; 6]);
    let mut rng = tradepact_bargain::rng::SplitMix64::new(5);
    let v: Vec<Vec<f64>> = (0..6)
        .map(|_| (0..10).map(|_| rng.unit()).collect())
        .collect();
    let w = vec![1.0; 6];
    let a = position(&s, &w, &v, 0.0);
    let opposed: Vec<Vec<f64>> = v
        .iter()
        .map(|r| r.iter().map(|x| 1.0 - x).collect())
        .collect();
    let b = position(&s, &w, &opposed, 0.0);
    let limited = tradepact_bargain::frontier::pareto_frontier_limited(&s, &[&a, &b], 1, 50_000);
    match limited {
        Err(tradepact_bargain::Error::TooLarge(why)) => {
            assert!(why.contains("50000 candidate points"), "{why}")
        }
        other => panic!("expected TooLarge, got {:?}", other.map(|f| f.points.len())),
    }
    // Under the default limit the same space is fine, and every outcome is on the frontier.
    let full = tradepact_bargain::pareto_frontier(&s, &[&a, &b], 1).unwrap();
    assert!(full.points.len() > 900_000, "{}", full.points.len());
}

#[test]
fn a_frontier_past_its_memory_bound_is_refused_before_it_allocates_the_stage() {
    // The outside test's space: 64 issues of 449 options, opposed values. Refused as soon as
    // the stages held and the next to merge would pass MAX_FRONTIER_BYTES (before, stages of
    // up to 20 million candidates were merged first: 540 MB, seconds).
    let s = space(&[449; 64]);
    let w = vec![1.0; 64];
    let v: Vec<Vec<f64>> = (0..64)
        .map(|_| (0..449).map(|o| o as f64 / 448.0).collect())
        .collect();
    let opposed: Vec<Vec<f64>> = v
        .iter()
        .map(|r| r.iter().map(|x| 1.0 - x).collect())
        .collect();
    let (a, b) = (position(&s, &w, &v, 0.1), position(&s, &w, &opposed, 0.1));
    let started = std::time::Instant::now();
    match tradepact_bargain::pareto_frontier(&s, &[&a, &b], 1) {
        Err(tradepact_bargain::Error::TooLarge(why)) => {
            let bound = format!(
                "{} MiB",
                tradepact_bargain::frontier::MAX_FRONTIER_BYTES >> 20
            );
            assert!(why.contains(&bound), "{why}");
        }
        other => panic!("expected TooLarge, got {:?}", other.map(|f| f.points.len())),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn a_space_of_a_trillion_outcomes_is_analysed_exactly_without_enumeration() {
    // 12 issues × 10 options; values from a fixed generator.
    let s = space(&[10; 12]);
    let mut rng = tradepact_bargain::rng::SplitMix64::new(42);
    let mut party = |res: f64| {
        let w: Vec<f64> = (0..12).map(|_| rng.unit() + 0.01).collect();
        let v: Vec<Vec<f64>> = (0..12)
            .map(|_| (0..10).map(|_| rng.unit()).collect())
            .collect();
        position(&s, &w, &v, res)
    };
    let (a, b) = (party(0.3), party(0.3));
    let an = analyze(&s, &[&a, &b], 1, 7).unwrap();
    assert!(!an.frontier.points.is_empty());
    // Counted exactly by meet-in-the-middle (two halves of 10^6 partial sums).
    let zopa = an.zopa.unwrap();
    assert!(zopa.exact);
    assert!(zopa.size > 0.0 && zopa.size < 1e12);
    assert_eq!(zopa.size.fract(), 0.0);
    // Frontier sorted by A descending, B ascending, and no point dominates another.
    for w in an.frontier.points.windows(2) {
        assert!(w[0].utilities[0] > w[1].utilities[0] && w[0].utilities[1] < w[1].utilities[1]);
    }
    // The Nash package's utilities recomputed from the positions match.
    let nash = &an.nash.points[0];
    assert_eq!(a.utility_units(&nash.packages[0]), nash.utilities[0]);
    assert_eq!(b.utility_units(&nash.packages[0]), nash.utilities[1]);
}

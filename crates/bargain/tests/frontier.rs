//! The merged frontier equals the brute-force definition, including ties.

mod common;

use common::{brute_force_frontier, position, space};
use proptest::prelude::*;
use std::collections::BTreeMap;
use tradepact_bargain::{analyze, pareto_frontier, Package};

fn merged(
    space: &tradepact_bargain::OutcomeSpace,
    positions: &[&tradepact_bargain::Position],
) -> BTreeMap<Vec<i64>, Vec<Package>> {
    let f = pareto_frontier(space, positions, usize::MAX).unwrap();
    f.points
        .into_iter()
        .map(|p| {
            assert_eq!(p.package_count as usize, p.packages.len());
            let mut pk = p.packages;
            pk.sort();
            (p.utilities, pk)
        })
        .collect()
}

/// Values from a small dyadic grid, so that exact ties are frequent and exact in floats.
fn grid() -> impl Strategy<Value = f64> {
    (0u8..=4).prop_map(|v| f64::from(v) / 4.0)
}

/// Weights, values per issue and option, reservation value.
type PartyCase = (Vec<f64>, Vec<Vec<f64>>, f64);

fn case(parties: usize) -> impl Strategy<Value = (Vec<usize>, Vec<PartyCase>)> {
    proptest::collection::vec(1usize..=4, 1..=4).prop_flat_map(move |options| {
        let party = (
            proptest::collection::vec((0u8..=4).prop_map(f64::from), options.len()),
            options
                .iter()
                .map(|&n| proptest::collection::vec(grid(), n))
                .collect::<Vec<_>>(),
            (0u8..=4).prop_map(|r| f64::from(r) / 8.0),
        )
            .prop_filter("a positive weight", |(w, _, _)| w.iter().sum::<f64>() > 0.0);
        (Just(options), proptest::collection::vec(party, parties))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn merged_frontier_equals_brute_force_for_two_parties((options, parties) in case(2)) {
        let s = space(&options);
        let ps: Vec<_> = parties.iter().map(|(w, v, r)| position(&s, w, v, *r)).collect();
        let refs: Vec<_> = ps.iter().collect();
        prop_assert_eq!(merged(&s, &refs), brute_force_frontier(&s, &refs));
    }

    #[test]
    fn merged_frontier_equals_brute_force_for_three_parties((options, parties) in case(3)) {
        let s = space(&options);
        let ps: Vec<_> = parties.iter().map(|(w, v, r)| position(&s, w, v, *r)).collect();
        let refs: Vec<_> = ps.iter().collect();
        prop_assert_eq!(merged(&s, &refs), brute_force_frontier(&s, &refs));
    }

    #[test]
    fn bilateral_zopa_count_equals_enumeration((options, parties) in case(2)) {
        let s = space(&options);
        let ps: Vec<_> = parties.iter().map(|(w, v, r)| position(&s, w, v, *r)).collect();
        let refs: Vec<_> = ps.iter().collect();
        let z = tradepact_bargain::analysis::zopa(&s, &refs, 1);
        let counted = tradepact_bargain::frontier::rational_outcomes(&s, &refs).count();
        prop_assert!(z.exact);
        prop_assert_eq!(z.size as usize, counted);
    }

    #[test]
    fn nash_points_maximise_the_product_over_all_rational_outcomes((options, parties) in case(2)) {
        let s = space(&options);
        let ps: Vec<_> = parties.iter().map(|(w, v, r)| position(&s, w, v, *r)).collect();
        let refs: Vec<_> = ps.iter().collect();
        let a = analyze(&s, &refs, 4, 1).unwrap();
        let product = |u: &[i64]| u.iter().zip(&refs).map(|(u, p)| ((u - p.reservation_units()) as f64 / 1e9).max(0.0)).product::<f64>();
        let best = tradepact_bargain::frontier::rational_outcomes(&s, &refs).map(|(_, u)| product(&u)).fold(f64::NEG_INFINITY, f64::max);
        if best.is_finite() {
            prop_assert!(!a.nash.points.is_empty());
            for p in &a.nash.points {
                prop_assert!((product(&p.utilities) - best).abs() <= 1e-12 * best.max(1.0));
            }
        } else {
            prop_assert!(a.nash.points.is_empty());
        }
    }
}

#[test]
fn an_exact_tie_broken_by_float_rounding_keeps_both_packages() {
    // A weighs the issues 1/3 and 2/3. P = (o1, o1): 1/3·1 + 2/3·0.5; Q = (o0, o2): 2/3·1.
    // Both are 2/3, but the roundings give 666666666 and 666666667 units.
    let s = space(&[2, 3]);
    let a = position(&s, &[1.0, 2.0], &[vec![0.0, 1.0], vec![0.0, 0.5, 1.0]], 0.0);
    // B: P = 0.5·0.5 + 0.5·1 = 0.75 and Q = 0.5·1 + 0.5·0.5 = 0.75, exactly.
    let b = position(&s, &[1.0, 1.0], &[vec![1.0, 0.5], vec![0.0, 1.0, 0.5]], 0.0);
    let (p, q) = (Package(vec![1, 1]), Package(vec![0, 2]));
    assert_eq!(
        a.utility_units(&q) - a.utility_units(&p),
        1,
        "the rounding splits the tie"
    );
    let f = pareto_frontier(&s, &[&a, &b], 16).unwrap();
    let on_frontier = |pkg: &Package| f.points.iter().any(|pt| pt.packages.contains(pkg));
    assert!(on_frontier(&p) && on_frontier(&q), "{f:?}");
    // The frontier: (1, 0.5), the tie (2/3, 0.75) twice, (1/3, 1).
    assert_eq!(f.points.len(), 4);
    let brute = brute_force_frontier(&s, &[&a, &b]);
    assert_eq!(merged(&s, &[&a, &b]), brute);
}

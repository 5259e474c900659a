//! Every grouped figure against a brute-force sum over the stored points, on random data:
//! several reporters, partners, flows, products at different HS levels and schemes, monthly
//! and annual series, gaps, exclusions, balances and roll-ups.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::model::{Point, SeriesFilter, SeriesPoints};

const REPORTERS: [&str; 3] = ["USA", "KOR", "JPN"];
const PARTNERS: [&str; 5] = ["USA", "KOR", "JPN", "CHN", "WLD"];
const PRODUCTS: [&str; 6] = [
    "TOTAL",
    "HS:87",
    "HS:8703",
    "HS:870323",
    "HS:84",
    "SITC4:78",
];

fn country(s: &str) -> Country {
    Country::parse(s).unwrap()
}

/// A series: (reporter, partner, export?, product, monthly?) indexes, and its points
/// (ordinal offset, value).
type SeriesSpec = ((usize, usize, bool, usize, bool), Vec<(u32, u32)>);

fn key_of(((r, p, export, product, monthly), _): &SeriesSpec) -> SeriesKey {
    SeriesKey {
        reporter: country(REPORTERS[*r]),
        partner: country(PARTNERS[*p]),
        flow: if *export { Flow::Export } else { Flow::Import },
        kind: Kind::Goods,
        product: Product::parse(PRODUCTS[*product]).unwrap(),
        frequency: if *monthly {
            Frequency::Monthly
        } else {
            Frequency::Annual
        },
        measure: Measure::ValueUsd,
    }
}

fn series() -> impl Strategy<Value = SeriesSpec> {
    (
        (
            0..3usize,
            0..5usize,
            any::<bool>(),
            0..6usize,
            any::<bool>(),
        ),
        proptest::collection::vec((0..36u32, 1..1000u32), 0..12),
    )
}

/// An independent reading of the query: which series, which group, what sum.
fn brute_force(store: &Store, q: &Query) -> BTreeMap<Vec<String>, (Option<f64>, u64, u64)> {
    let (all, _) = store
        .list(
            &SeriesFilter {
                measure: None,
                ..Default::default()
            },
            None,
            usize::MAX,
        )
        .unwrap();
    let factor = q.plan.factor();
    let mut sums: BTreeMap<Vec<String>, (f64, u64, u64, [u64; 2])> = BTreeMap::new();
    for info in all {
        let k = &info.key;
        let wanted = |list: &[Country], c: &Country| list.is_empty() || list.contains(c);
        let product_ok = match &q.products {
            Products::Total => k.product.as_str() == "TOTAL",
            Products::Codes(c) => c.contains(&k.product),
            Products::Prefix(p) => k.product.as_str().starts_with(p.as_str()),
            Products::Level(l) => k.product.as_str().split(':').nth(1).is_some_and(|c| {
                c.len() == usize::from(*l) && c.chars().all(|ch| ch.is_ascii_digit())
            }),
        };
        let flow_ok = if q.balance {
            true // both flows of the data are exports and imports
        } else {
            q.flows.is_empty() || q.flows.contains(&k.flow)
        };
        if !(wanted(&q.reporters, &k.reporter)
            && wanted(&q.partners, &k.partner)
            && !q.exclude_partners.contains(&k.partner)
            && flow_ok
            && product_ok
            && k.frequency == q.frequency)
        {
            continue;
        }
        let points: BTreeMap<u32, f64> = store
            .read(k, 0, u32::MAX)
            .unwrap()
            .into_iter()
            .map(|p| (p.period.ordinal, p.value))
            .collect();
        for stored in q.periods.0 * factor..(q.periods.1 + 1) * factor {
            let period = Period {
                frequency: q.plan.frequency,
                ordinal: stored / factor,
            };
            let group: Vec<String> = q
                .group_by
                .iter()
                .map(|d| match d {
                    Dimension::Reporter => k.reporter.to_string(),
                    Dimension::Partner => k.partner.to_string(),
                    Dimension::Product(0) => k.product.to_string(),
                    Dimension::Product(l) => {
                        let (scheme, code) = k.product.as_str().split_once(':').unwrap_or(("", ""));
                        if code.len() > usize::from(*l) && code.chars().all(|c| c.is_ascii_digit())
                        {
                            format!("{scheme}:{}", &code[..usize::from(*l)])
                        } else {
                            k.product.to_string()
                        }
                    }
                    Dimension::Flow => k.flow.to_string(),
                    Dimension::Kind => k.kind.to_string(),
                    Dimension::Period => period.to_string(),
                })
                .collect();
            let entry = sums.entry(group).or_default();
            match points.get(&stored) {
                Some(v) => {
                    let import = k.flow == Flow::Import;
                    entry.0 += if q.balance && import { -v } else { *v };
                    entry.1 += 1;
                    entry.3[usize::from(import)] += 1;
                }
                None => entry.2 += 1,
            }
        }
    }
    sums.into_iter()
        .map(|(g, (v, inputs, missing, sides))| {
            let complete = if q.balance {
                sides.iter().all(|&n| n > 0)
            } else {
                inputs > 0
            };
            (g, (complete.then_some(v), inputs, missing))
        })
        .collect()
}

fn subset<T: Clone + std::fmt::Debug + 'static>(items: Vec<T>) -> impl Strategy<Value = Vec<T>> {
    proptest::sample::subsequence(items.clone(), 0..=items.len())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn grouped_figures_equal_a_brute_force_sum(
        data in proptest::collection::vec(series(), 1..30),
        reporters in subset(REPORTERS.to_vec()),
        partners in subset(PARTNERS.to_vec()),
        exclude in subset(PARTNERS.to_vec()),
        export_only in any::<bool>(),
        products in 0..4usize,
        monthly in any::<bool>(),
        roll_up in any::<bool>(),
        dims in subset(vec![0usize, 1, 2, 3, 4, 5]),
        level in prop_oneof![Just(0u8), Just(2u8), Just(4u8)],
        balance in any::<bool>(),
        (first, span) in (0..30u32, 1..8u32),
    ) {
        let store = Store::temporary().unwrap();
        for spec in &data {
            let key = key_of(spec);
            let base = if key.frequency == Frequency::Monthly { 2000 * 12 } else { 2000 };
            let points: BTreeMap<u32, f64> =
                spec.1.iter().map(|&(o, v)| (base + o, f64::from(v))).collect();
            let points = points
                .into_iter()
                .map(|(ordinal, value)| Point { ordinal, value, source: "t".into() })
                .collect();
            store.write(&[SeriesPoints { key, points }]).unwrap();
        }
        let frequency = if monthly { Frequency::Monthly } else { Frequency::Annual };
        let plan = ReadPlan::new(frequency, (monthly && roll_up).then_some(Frequency::Annual)).unwrap();
        let base = if plan.frequency == Frequency::Monthly { 2000 * 12 } else { 2000 };
        let group_by: Vec<Dimension> = dims
            .into_iter()
            .filter(|d| !(balance && *d == 3))
            .map(|d| [Dimension::Reporter, Dimension::Partner, Dimension::Product(level), Dimension::Flow, Dimension::Kind, Dimension::Period][d])
            .collect();
        let q = Query {
            reporters: reporters.iter().map(|c| country(c)).collect(),
            partners: partners.iter().map(|c| country(c)).collect(),
            exclude_partners: exclude.iter().map(|c| country(c)).collect(),
            flows: if export_only { vec![Flow::Export] } else { vec![] },
            kinds: vec![],
            products: [
                Products::Total,
                Products::Level(4),
                Products::Prefix("HS:87".into()),
                Products::Codes(vec![Product::parse("HS:84").unwrap(), Product::parse("SITC4:78").unwrap()]),
            ][products].clone(),
            frequency,
            measure: Measure::ValueUsd,
            plan,
            periods: (base + first, base + first + span),
            group_by,
            balance,
            order: Order::Group,
            limit: 0,
        };
        let got: BTreeMap<Vec<String>, (Option<f64>, u64, u64)> = run(&store, &q)
            .unwrap()
            .into_iter()
            .map(|c| {
                // Named per series and period (a partial year is one name for its months).
                prop_assert!(c.missing_named.len() <= MISSING_NAMED);
                prop_assert_eq!(c.missing > 0, !c.missing_named.is_empty());
                Ok((c.group, (c.value, c.inputs, c.missing)))
            })
            .collect::<Result<_, TestCaseError>>()?;
        prop_assert_eq!(got, brute_force(&store, &q));
    }
}

#[test]
fn top_partners_by_deficit_and_the_world_minus_one() {
    let store = Store::temporary().unwrap();
    let write = |partner: &str, flow: Flow, value: f64| {
        let key = SeriesKey {
            reporter: country("USA"),
            partner: country(partner),
            flow,
            kind: Kind::Goods,
            product: Product::total(),
            frequency: Frequency::Annual,
            measure: Measure::ValueUsd,
        };
        let points = vec![Point {
            ordinal: 2016,
            value,
            source: "t".into(),
        }];
        store.write(&[SeriesPoints { key, points }]).unwrap();
    };
    for (partner, x, m) in [
        ("KOR", 42.3, 69.9),
        ("CHN", 115.6, 462.6),
        ("JPN", 63.3, 132.2),
        ("CAN", 266.0, 278.0),
    ] {
        write(partner, Flow::Export, x * 1e9);
        write(partner, Flow::Import, m * 1e9);
    }
    write("MEX", Flow::Export, 230.0e9); // no imports: no balance, never a zero
    let q = Query {
        reporters: vec![country("USA")],
        partners: vec![],
        exclude_partners: vec![country("CHN")],
        flows: vec![],
        kinds: vec![],
        products: Products::Total,
        frequency: Frequency::Annual,
        measure: Measure::ValueUsd,
        plan: ReadPlan::new(Frequency::Annual, None).unwrap(),
        periods: (2016, 2016),
        group_by: vec![Dimension::Partner],
        balance: true,
        order: Order::Ascending,
        limit: 2,
    };
    let cells = run(&store, &q).unwrap();
    let top: Vec<(&str, Option<i64>)> = cells
        .iter()
        .map(|c| {
            (
                c.group[0].as_str(),
                c.value.map(|v| (v / 1e8).round() as i64),
            )
        })
        .collect();
    assert_eq!(top, [("JPN", Some(-689)), ("KOR", Some(-276))]);
    let all = run(&store, &Query { limit: 0, ..q }).unwrap();
    assert_eq!(all.last().unwrap().group, ["MEX"]);
    assert_eq!(all.last().unwrap().value, None);
}

//! NegMAS scenarios read with `tradepact_bargain::negmas` and analysed by the engine, checked
//! against an exact rational computation over the same files with NegMAS's semantics (a
//! utility is `Σ wᵢ · fᵢ(xᵢ)` on the files' raw numbers; the reserved value on that scale, and
//! the lowest utility in its stead when it is below, as NegMAS's `nash_points` takes it): the
//! Pareto set, the Nash and the Kalai–Smorodinsky packages, ties included. The files in
//! `tests/fixtures/negmas` are NegMAS 0.16's own (`Scenario.dumpas(…, type="yml")` of the
//! GENIUS fixtures): raw evaluations, affine and identity value functions, a discounted
//! utility, three parties. Also: NegMAS's files written by tradepact read back alike.

mod common;

use std::path::{Path, PathBuf};

use common::exact::{dec, Q};
use serde_norway::Value;
use tradepact_bargain::negmas::{self, FileKind};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/negmas")
}

type Profiles = Vec<(String, String, String)>;

/// A folder's outcome-space file (name, text) and utility files (party, file, text), sorted by
/// file name as NegMAS sorts them.
fn load(dir: &str) -> (String, String, Profiles) {
    let mut entries: Vec<_> = std::fs::read_dir(fixtures().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let (mut domain, mut profiles) = (None, Vec::new());
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        match negmas::kind(&text) {
            FileKind::Domain => domain = Some((file, text)),
            FileKind::Utility => profiles.push((stem, file, text)),
            FileKind::Other => {}
        }
    }
    let (file, text) = domain.unwrap();
    (file, text, profiles)
}

/// A YAML number as an exact decimal.
fn q(v: &Value) -> Q {
    match v {
        Value::Number(n) => dec(&n.to_string()),
        other => panic!("not a number: {other:?}"),
    }
}

/// An option's key as the files write it.
fn key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// Each party's exact utility of every package (the engine's order) and its reserved value,
/// computed from the YAML directly.
fn oracle(domain: &str, profiles: &Profiles) -> (Vec<Vec<Q>>, Vec<Q>) {
    let domain: Value = serde_norway::from_str(domain).unwrap();
    // Per issue: its options, as (key, number if any).
    let issues: Vec<Vec<(String, Option<Q>)>> = domain["issues"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|i| match i["type"].as_str().unwrap() {
            "ContiguousIssue" => {
                let (low, high) = (
                    i["values"][0].as_i64().unwrap(),
                    i["values"][1].as_i64().unwrap(),
                );
                (low..=high)
                    .map(|x| (x.to_string(), Some(Q::from_integer(x.into()))))
                    .collect()
            }
            _ => (i["values"].as_sequence().unwrap().iter())
                .map(|v| (key(v), None))
                .collect(),
        })
        .collect();
    let mut rows: Vec<Vec<Vec<Q>>> = Vec::new(); // party → issue → option → w·f
    let mut reserved = Vec::new();
    for (_, _, text) in profiles {
        let mut u: Value = serde_norway::from_str(text).unwrap();
        if u["type"].as_str().unwrap().contains("Discounted") {
            u = u["ufun"].clone();
        }
        let mut party = Vec::new();
        for (k, options) in issues.iter().enumerate() {
            let w = q(&u["weights"][k]);
            let f = &u["values"][k];
            let value = |(option, x): &(String, Option<Q>)| -> Q {
                match f["type"].as_str().unwrap() {
                    "TableFun" => {
                        let table = f["mapping"].as_mapping().unwrap();
                        let (_, v) = table.iter().find(|(k, _)| key(k) == *option).unwrap();
                        q(v)
                    }
                    "IdentityFun" => x.clone().unwrap(),
                    "AffineFun" => q(&f["slope"]) * x.clone().unwrap() + q(&f["bias"]),
                    other => panic!("not in the fixtures: {other}"),
                }
            };
            party.push(options.iter().map(|o| w.clone() * value(o)).collect());
        }
        rows.push(party);
        reserved.push(q(&u["reserved_value"]));
    }
    let sizes: Vec<usize> = issues.iter().map(Vec::len).collect();
    let total: usize = sizes.iter().product();
    let utilities: Vec<Vec<Q>> = (0..total)
        .map(|index| {
            let p = common::exact::package_of(index, &sizes).0;
            (rows.iter())
                .map(|party| {
                    (p.iter().enumerate())
                        .map(|(i, &o)| party[i][o as usize].clone())
                        .sum()
                })
                .collect()
        })
        .collect();
    // NegMAS's nash_points measures from the lowest utility when the reserved value is below.
    let d = (reserved.into_iter().enumerate())
        .map(|(k, r)| {
            let lowest = utilities.iter().map(|u| u[k].clone()).min().unwrap();
            r.max(lowest)
        })
        .collect();
    (utilities, d)
}

fn check(dir: &str, parties: usize, outcomes: usize) -> Vec<String> {
    let (file, domain, profiles) = load(dir);
    let scenario = negmas::read(&file, &domain, &profiles).unwrap();
    assert_eq!(scenario.positions.len(), parties);
    let (utilities, d) = oracle(&domain, &profiles);
    common::exact::agrees(dir, &scenario, outcomes, &utilities, &d);

    // Written back (tradepact's positions as NegMAS files) and read again: the same positions.
    let specs: Vec<_> = scenario.positions.iter().map(|(_, s)| s).collect();
    let (domain2, written) = negmas::write(&scenario.name, &scenario.issues, &specs);
    let profiles2: Profiles = (scenario.positions.iter().zip(written))
        .map(|((party, _), text)| (party.clone(), format!("{party}.yml"), text))
        .collect();
    let again = negmas::read("domain.yml", &domain2, &profiles2).unwrap();
    assert_eq!(again.issues, scenario.issues);
    for ((_, a), (_, b)) in again.positions.iter().zip(&scenario.positions) {
        assert!((a.reservation - b.reservation).abs() < 1e-12);
        let total: f64 = b.weights.values().sum();
        for (issue, values) in &b.values {
            assert!((a.weights[issue] - b.weights[issue] / total).abs() < 1e-12);
            for (option, v) in values {
                assert!(
                    (a.values[issue][option] - v).abs() < 1e-12,
                    "{issue} {option}"
                );
            }
        }
    }
    scenario.not_carried_over()
}

#[test]
fn raw_discrete_evaluations_and_a_discounted_utility_agree_with_exact_arithmetic() {
    let notes = check("holiday", 2, 36);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("alice's discount (ExpDiscountedUFun, 0.9)")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.contains("rescaled")), "{notes:?}");
}

#[test]
fn affine_and_identity_value_functions_on_an_integer_issue_agree_with_exact_arithmetic() {
    check("integer", 2, 60);
}

#[test]
fn three_parties_agree_with_exact_arithmetic() {
    check("trio", 3, 27);
}

#[test]
fn anac_2010_england_zimbabwe_as_negmas_writes_it_agrees_with_exact_arithmetic() {
    check("england_zimbabwe", 2, 576);
}

#[test]
fn anac_2015_new_sporthal_as_negmas_writes_it_agrees_with_exact_arithmetic() {
    check("new_sporthal", 3, 243);
}

//! GENIUS scenarios read with `tradepact_bargain::genius` and analysed by the engine, checked
//! against an exact rational computation over the same files (GENIUS semantics: an option's
//! value is its evaluation over the issue's largest; weights normalised to sum 1): the Pareto
//! set, the Nash packages and the Kalai–Smorodinsky packages, ties included. The scenarios are
//! in `tests/fixtures/genius` (written for these tests, in GENIUS's format). Also: writing a
//! scenario and reading it back gives the same positions, and a real-valued issue is refused.

mod common;

use std::path::{Path, PathBuf};

use common::exact::{dec, Q};
use tradepact_bargain::genius;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/genius")
}

/// A directory's domain (the `<negotiation_template>` file) and profiles (name, file, XML).
fn load(dir: &str) -> (String, String, Vec<(String, String, String)>) {
    let mut domain = None;
    let mut profiles = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(fixtures().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if text.contains("<negotiation_template") {
            domain = Some((name, text));
        } else {
            profiles.push((name.clone(), format!("{name}.xml"), text));
        }
    }
    let (name, text) = domain.unwrap();
    (name, text, profiles)
}

/// Each party's exact utility of every package (the engine's package order), and its
/// reservation value, computed from the XML directly.
fn oracle(domain: &str, profiles: &[(String, String, String)]) -> (Vec<Vec<Q>>, Vec<Q>) {
    let doc = roxmltree::Document::parse(domain).unwrap();
    // Options per issue, in order: items, or the integers of the bounds.
    let issues: Vec<(String, Vec<String>)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("issue"))
        .map(|n| {
            let name = n.attribute("name").unwrap().to_owned();
            let options = match n.attribute("lowerbound") {
                Some(low) => {
                    let (low, high): (i64, i64) = (
                        low.parse().unwrap(),
                        n.attribute("upperbound").unwrap().parse().unwrap(),
                    );
                    (low..=high).map(|x| x.to_string()).collect()
                }
                None => n
                    .children()
                    .filter(|c| c.has_tag_name("item"))
                    .map(|c| c.attribute("value").unwrap().to_owned())
                    .collect(),
            };
            (name, options)
        })
        .collect();
    let mut per_party: Vec<Vec<Vec<Q>>> = Vec::new(); // party → issue → option → weighted value
    let mut reservations = Vec::new();
    for (_, _, xml) in profiles {
        let doc = roxmltree::Document::parse(xml).unwrap();
        let weights: Vec<(String, Q)> = doc
            .descendants()
            .filter(|n| n.has_tag_name("weight"))
            .map(|w| {
                (
                    w.attribute("index").unwrap().to_owned(),
                    dec(w.attribute("value").unwrap()),
                )
            })
            .collect();
        let total: Q = weights.iter().map(|(_, w)| w.clone()).sum();
        let mut rows = Vec::new();
        for (name, options) in &issues {
            let node = doc
                .descendants()
                .find(|n| n.has_tag_name("issue") && n.attribute("name") == Some(name))
                .unwrap();
            let index = node.attribute("index").unwrap();
            let w = weights.iter().find(|(i, _)| i == index).unwrap().1.clone() / total.clone();
            let evaluations: Vec<Q> = match node.attribute("lowerbound") {
                None => options
                    .iter()
                    .map(|o| {
                        let item = node
                            .children()
                            .find(|c| c.has_tag_name("item") && c.attribute("value") == Some(o))
                            .unwrap();
                        dec(item.attribute("evaluation").unwrap())
                    })
                    .collect(),
                Some(low) => {
                    let low: i64 = low.parse().unwrap();
                    let high: i64 = node.attribute("upperbound").unwrap().parse().unwrap();
                    let evaluator = node.children().find(|c| c.has_tag_name("evaluator"));
                    (low..=high)
                        .map(|x| {
                            let x = Q::from_integer(x.into());
                            match evaluator.and_then(|e| e.attribute("slope")) {
                                Some(slope) => {
                                    let offset =
                                        evaluator.unwrap().attribute("offset").unwrap_or("0");
                                    dec(offset) + dec(slope) * x
                                }
                                None => {
                                    let lo = dec(node.attribute("utilityLowestValue").unwrap());
                                    let hi = dec(node.attribute("utilityHighestValue").unwrap());
                                    let span = Q::from_integer((high - low).into());
                                    lo.clone()
                                        + (hi - lo) * (x - Q::from_integer(low.into())) / span
                                }
                            }
                        })
                        .collect()
                }
            };
            let top = evaluations.iter().max().unwrap().clone();
            rows.push(
                evaluations
                    .into_iter()
                    .map(|e| w.clone() * e / top.clone())
                    .collect(),
            );
        }
        per_party.push(rows);
        let r = doc
            .descendants()
            .find(|n| n.has_tag_name("reservation"))
            .unwrap();
        reservations.push(dec(r.attribute("value").unwrap()));
    }
    // Every package, lexicographic by option index as the engine enumerates them.
    let sizes: Vec<usize> = issues.iter().map(|(_, o)| o.len()).collect();
    let mut packages = Vec::new();
    let total: usize = sizes.iter().product();
    for mut n in 0..total {
        let mut p = vec![0usize; sizes.len()];
        for i in (0..sizes.len()).rev() {
            p[i] = n % sizes[i];
            n /= sizes[i];
        }
        packages.push(p);
    }
    let utilities = packages
        .iter()
        .map(|p| {
            per_party
                .iter()
                .map(|rows| p.iter().enumerate().map(|(i, &o)| rows[i][o].clone()).sum())
                .collect()
        })
        .collect();
    (utilities, reservations)
}

fn check(dir: &str, parties: usize, outcomes: usize) {
    let (name, domain, profiles) = load(dir);
    let scenario = genius::read(&format!("{name}.xml"), &domain, &profiles).unwrap();
    assert_eq!(scenario.positions.len(), parties);
    let (utilities, d) = oracle(&domain, &profiles);
    common::exact::agrees(dir, &scenario, outcomes, &utilities, &d);

    // Written back in GENIUS's format and read again: the same values and weights.
    let specs: Vec<_> = scenario.positions.iter().map(|(_, s)| s).collect();
    let (domain2, written) = genius::write(&scenario.name, &scenario.issues, &specs);
    let profiles2: Vec<(String, String, String)> = (scenario.positions.iter().zip(written))
        .map(|((party, _), xml)| (party.clone(), format!("{party}.xml"), xml))
        .collect();
    let again = genius::read("domain.xml", &domain2, &profiles2).unwrap();
    assert_eq!(again.issues, scenario.issues);
    for ((_, a), (_, b)) in again.positions.iter().zip(&scenario.positions) {
        assert_eq!(a.reservation, b.reservation);
        assert_eq!(a.weights, b.weights);
        for (issue, values) in &b.values {
            for (option, v) in values {
                assert!(
                    (a.values[issue][option] - v).abs() < 1e-15,
                    "{issue} {option}"
                );
            }
        }
    }
}

#[test]
fn two_parties_on_discrete_issues_agree_with_exact_arithmetic() {
    check("holiday", 2, 36);
}

#[test]
fn an_integer_issue_with_both_linear_evaluators_agrees_with_exact_arithmetic() {
    check("integer", 2, 60);
}

#[test]
fn three_parties_agree_with_exact_arithmetic() {
    check("trio", 3, 27);
}

#[test]
fn a_real_valued_issue_is_refused_by_name_and_the_discount_factor_is_reported() {
    let domain = r#"<negotiation_template><utility_space><objective name="X">
        <issue index="1" name="Price" type="real" lowerbound="0" upperbound="1"></issue>
        </objective></utility_space></negotiation_template>"#;
    let e = genius::read("x.xml", domain, &[]).unwrap_err().to_string();
    assert!(e.contains("\"Price\" is real"), "{e}");
    let (_, domain, profiles) = load("holiday");
    let s = genius::read("holiday.xml", &domain, &profiles).unwrap();
    assert_eq!(s.discount_factors, vec![0.9, 1.0]);
    assert_eq!(s.name, "Holiday");
    assert_eq!(s.issues[2].options[1].id, "B&B");
    let broken = genius::read(
        "holiday.xml",
        &domain,
        &[("p".into(), "p.xml".into(), "<utility_space>".into())],
    );
    assert!(broken.unwrap_err().to_string().contains("not XML"));
}

// Five domains of the ANAC competitions, as GENIUS 10.4 ships them (tests/fixtures/genius/anac).

#[test]
fn anac_2010_england_zimbabwe_agrees_with_exact_arithmetic() {
    check("anac/england_zimbabwe", 2, 576);
}

#[test]
fn anac_2011_is_bt_acquisition_agrees_with_exact_arithmetic() {
    check("anac/is_bt_acquisition", 2, 384);
    // Its IS profile's discount factor reads value="s": ignored, with a note, not refused.
    let (name, domain, profiles) = load("anac/is_bt_acquisition");
    let s = genius::read(&format!("{name}.xml"), &domain, &profiles).unwrap();
    assert_eq!(s.discount_factors, vec![1.0, 1.0]);
    let discount: Vec<&String> = s.notes.iter().filter(|n| n.contains("discount")).collect();
    assert_eq!(discount.len(), 1, "{:?}", s.notes);
    assert!(
        discount[0].contains("IS_BT_Acquisition_IS_20.xml") && discount[0].contains("\"s\""),
        "{}",
        discount[0]
    );
}

#[test]
fn anac_2011_camera_agrees_with_exact_arithmetic() {
    check("anac/camera", 2, 3600);
}

#[test]
fn anac_2011_amsterdam_agrees_with_exact_arithmetic() {
    check("anac/amsterdam", 2, 3024);
}

#[test]
fn anac_2015_new_sporthal_three_parties_agree_with_exact_arithmetic() {
    check("anac/new_sporthal", 3, 243);
}

/// Evaluations outside GENIUS's range follow the NegMAS reader's rule: GENIUS's own division
/// by an issue's largest evaluation is said in a note; a negative evaluation makes the
/// utility leave [0, 1], and the whole utility is then rescaled by a positive affine map, with
/// a note (as NegMAS utilities outside the model's shape are; `tests/negmas.rs`); evaluations
/// that are not finite numbers, or all at most 0 with some below, are refused.
#[test]
fn evaluations_out_of_range_are_rescaled_with_a_note_or_refused() {
    let domain = r#"<negotiation_template><utility_space><objective index="0" name="D">
<issue index="1" name="X" type="discrete"><item index="1" value="a"/><item index="2" value="b"/><item index="3" value="c"/></issue>
<issue index="2" name="Y" type="discrete"><item index="1" value="p"/><item index="2" value="q"/></issue>
</objective></utility_space></negotiation_template>"#;
    let profile = |x: [&str; 3], reservation: &str| {
        format!(
            r#"<utility_space><objective index="0" name="D">
<issue index="1" name="X" type="discrete"><item index="1" value="a" evaluation="{}"/><item index="2" value="b" evaluation="{}"/><item index="3" value="c" evaluation="{}"/></issue>
<issue index="2" name="Y" type="discrete"><item index="1" value="p" evaluation="0"/><item index="2" value="q" evaluation="1"/></issue>
<weight index="1" value="0.5"/><weight index="2" value="0.5"/></objective>
<reservation value="{reservation}"/></utility_space>"#,
            x[0], x[1], x[2]
        )
    };
    let read = |x: [&str; 3], reservation: &str| {
        genius::read(
            "d.xml",
            domain,
            &[("P".to_owned(), "p.xml".to_owned(), profile(x, reservation))],
        )
    };

    // 0, 21, 42: divided by 42, as GENIUS does, said in a note; nothing rescaled.
    let s = read(["0", "21", "42"], "0.25").unwrap();
    let spec = &s.positions[0].1;
    assert_eq!(spec.values["X"]["b"], 0.5);
    assert_eq!(spec.reservation, 0.25);
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("divided") && n.contains("X (largest 42)")),
        "{:?}",
        s.notes
    );
    assert!(
        !s.notes.iter().any(|n| n.contains("rescaled")),
        "{:?}",
        s.notes
    );

    // -3, 42, 1e300: GENIUS's values -3e-300, 4.2e-299, 1 leave [0, 1]; the utility
    // u = (vX + vY) / 2 is rescaled to (u − L) / (H − L), L = -1.5e-300, H = 1.
    let s = read(["-3", "42", "1e300"], "0.5").unwrap();
    let spec = &s.positions[0].1;
    let x = &spec.values["X"];
    assert_eq!(x["a"], 0.0);
    assert!(x["b"] > 0.0 && x["b"] < 1e-298, "{x:?}");
    assert_eq!(x["c"], 1.0);
    assert_eq!(spec.values["Y"]["q"], 1.0);
    assert!(spec
        .values
        .values()
        .flat_map(|v| v.values())
        .all(|v| (0.0..=1.0).contains(v)));
    assert!((spec.weights["X"] - 0.5).abs() < 1e-12 && (spec.weights["Y"] - 0.5).abs() < 1e-12);
    assert!(
        (spec.reservation - 0.5).abs() < 1e-12,
        "{}",
        spec.reservation
    );
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("P's utilities are rescaled to [0, 1] (negative evaluations)")),
        "{:?}",
        s.notes
    );
    // The engine takes it as a position.
    tradepact_bargain::Position::new(
        &tradepact_bargain::OutcomeSpace::new(s.issues.clone()).unwrap(),
        spec,
    )
    .unwrap();

    // Refused, naming the value or the issue.
    for (x, says) in [
        (["inf", "1", "2"], "\"inf\" is not a number"),
        (["NaN", "1", "2"], "\"NaN\" is not a number"),
        (["1e400", "1", "2"], "is not a number"),
        (
            ["-3", "-1", "0"],
            "issue \"X\": every evaluation is 0 or less",
        ),
    ] {
        let e = read(x, "0").unwrap_err().to_string();
        assert!(e.contains(says), "{x:?}: {e}");
    }
}

//! The KORUS 2018 scenario through the command-line tool against `tradepact up`: it loads,
//! its Nash point is compared with the actual outcome, its utility space and a simulation are
//! drawn, and the outcome's impact is estimated from the sample dataset.

use std::process::Command;

use tradepact_tests::{binary, start_up, READY_TIMEOUT};

fn cli(args: &[&str]) -> String {
    let out = Command::new(binary("tradepact"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tradepact {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn korus_scenario_loads_analyses_and_estimates_its_impact() {
    let home = tempfile::tempdir().unwrap();
    let up = start_up(home.path());
    up.wait_for_log("loaded the KORUS sample dataset", READY_TIMEOUT);
    let url = format!(
        "http://{}",
        up.addr_of("tradepact.negotiation.v1.NegotiationService")
    );

    let id = cli(&[
        "scenario",
        "load",
        "korus-2018",
        "--negotiation-service",
        &url,
    ]);
    let id = id.trim();
    assert_eq!(id, "neg-000001");

    let analysis = cli(&[
        "analyze",
        id,
        "--compare",
        "korus-2018",
        "--negotiation-service",
        &url,
    ]);
    assert!(analysis.contains("outcomes 52488"), "{analysis}");
    let frontier = analysis
        .split("Pareto frontier ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("the frontier size")
        .to_owned();

    // The utility space as a chart: every frontier point (a dot of radius 2), the Nash ring,
    // both reservation lines (the CLI's token-less call sees both positions here).
    let svg = home.path().join("space.svg");
    cli(&[
        "chart",
        "negotiation",
        id,
        "--negotiation-service",
        &url,
        "--out",
        svg.to_str().unwrap(),
    ]);
    let svg = std::fs::read_to_string(svg).unwrap();
    let dots = svg.matches(r#"r="2""#).count();
    assert_eq!(dots.to_string(), frontier, "frontier points drawn");
    assert!(svg.contains("52488 outcomes"), "{svg}");
    // Every outcome as a density (52,488 evaluated in the client from both positions).
    assert!(
        svg.contains("The density of 52488 outcomes in grey (all of them"),
        "{svg}"
    );
    assert!(svg.matches("<rect").count() > 500, "density cells drawn");
    assert!(
        svg.contains(&format!("{frontier} on the Pareto frontier")),
        "{svg}"
    );
    assert!(svg.contains("US: reservation value") && svg.contains("KOR: reservation value"));
    assert!(svg.contains("Nash") && svg.contains("Kalai-Smorodinsky"));

    // A simulation as concession curves: Boulware against Conceder agrees; each party's
    // offers are dots, the agreement a ring per party; a strategy it does not know is refused.
    let svg = home.path().join("simulation.svg");
    let run = |strategies: &str| {
        Command::new(binary("tradepact"))
            .args(["chart", "simulation", id, "--strategies", strategies])
            .args(["--negotiation-service", &url, "--out"])
            .arg(&svg)
            .output()
            .unwrap()
    };
    let drawn = run("boulware,conceder");
    assert!(drawn.status.success(), "{drawn:?}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.contains("boulware vs conceder (agreed after"),
        "{text}"
    );
    assert!(text.matches(r#"r="3""#).count() >= 2, "{text}");
    assert_eq!(text.matches(r#"r="8""#).count(), 2, "{text}");
    let refused = run("boulware,banana");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("banana"));
    assert!(
        analysis.contains("the Nash point matches the 2018 outcome on 9 of 11 issues"),
        "{analysis}"
    );

    let outcome = "light_truck_tariff=A,us_standard_vehicles=A,auto_standards=A,auto_rules_of_origin=B,steel=B,pharma_pricing=A,customs_verification=A,isds=B,trade_remedies=B,currency=B,agriculture=B";
    let impact = cli(&[
        "impact",
        id,
        "--package",
        outcome,
        "--year",
        "2016",
        "--negotiation-service",
        &url,
    ]);
    // 2 · 2.2 bn · (−1) · (−0.02) / 1.08 = 81.5 M USD of US exports; steel has no baseline.
    assert!(impact.contains("balance: exports +81.5 M USD"), "{impact}");
    assert!(
        impact.contains("skipped: no baseline for the trade effect of steel=B"),
        "{impact}"
    );

    // Korea's light-truck option on its tariff lines: the 25 % read from the sample's tariffs,
    // the trade (none: no Korean pickups were exported) from its one tariff-line figure.
    let korea = outcome.replace("light_truck_tariff=A", "light_truck_tariff=C");
    let impact = cli(&[
        "impact",
        id,
        "--package",
        &korea,
        "--year",
        "2017",
        "--negotiation-service",
        &url,
    ]);
    for line in ["HS:870421", "HS:870431"] {
        let row = impact
            .lines()
            .find(|l| l.trim_start().starts_with(line))
            .unwrap_or_else(|| panic!("no row for {line}: {impact}"));
        assert!(row.contains("25%") && row.contains("0%"), "{row}");
        assert!(row.contains("preferential (KOR)"), "{row}");
        assert!(row.contains("creates none from nothing"), "{row}");
    }
}

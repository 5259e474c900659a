//! The negotiation brief (`tradepact report negotiation`) in headless Chromium: the page loads
//! with no console error and fetches nothing, its figures equal the analysis and impact RPCs'
//! answers, and with one party's scope it shows that party's side only and says what is left
//! out.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use tradepact_proto::negotiation_v1 as pb;
use tradepact_tests::{binary, start_data, start_up, Process, READY_TIMEOUT};

use crate::web::{json_of, node};

/// Runs the CLI with `env`, failing the test if it fails.
fn cli(args: &[&str], env: &[(&str, &str)]) {
    let out = Command::new(binary("tradepact"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tradepact {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Loads `brief` in Chromium (a screenshot beside it): what `tests/web/brief.mjs` saw.
fn open_in_chromium(brief: &Path) -> serde_json::Value {
    let screenshot = brief.with_extension("png");
    let seen = json_of(
        node("brief.mjs")
            .arg(brief)
            .arg(&screenshot)
            .output()
            .unwrap(),
        "brief.mjs",
    );
    assert_eq!(seen["console_errors"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["requests"], serde_json::json!([]), "self-contained");
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a screenshot"
    );
    seen
}

fn figures(seen: &serde_json::Value) -> HashMap<String, String> {
    (seen["figures"].as_object().unwrap().iter())
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// The number of figure `name`, failing the test if it is missing.
fn number(figures: &HashMap<String, String>, name: &str) -> f64 {
    figures
        .get(name)
        .unwrap_or_else(|| panic!("no figure {name}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_brief_renders_and_its_figures_are_the_analysis() {
    let home = tempfile::tempdir().unwrap();
    let up = start_up(home.path());
    up.wait_for_log("ready:", READY_TIMEOUT);
    let negotiation = format!(
        "http://{}",
        up.addr_of("tradepact.negotiation.v1.NegotiationService")
    );
    let env = [("TRADEPACT_NEGOTIATION_SERVICE_URL", negotiation.as_str())];
    cli(&["scenario", "load", "korus-2018"], &env);
    let brief = home.path().join("brief.html");
    let out = brief.to_str().unwrap();
    cli(
        &[
            "report",
            "negotiation",
            "neg-000001",
            "--compare",
            "korus-2018",
            "--out",
            out,
        ],
        &env,
    );
    let seen = open_in_chromium(&brief);
    let f = figures(&seen);
    assert_eq!(seen["svg_charts"], 1, "the utility space is drawn");
    assert_eq!(
        seen["left_out"],
        serde_json::Value::Null,
        "nothing left out"
    );

    let mut client = tradepact_client::negotiation::connect(&negotiation)
        .await
        .unwrap();
    let a = client
        .analyze_negotiation(pb::AnalyzeNegotiationRequest {
            id: "neg-000001".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(number(&f, "outcome-count"), a.outcome_count);
    assert_eq!(number(&f, "zopa-size"), a.zopa_size);
    assert_eq!(number(&f, "frontier-size"), a.frontier_size as f64);
    let parties = ["US", "KOR"];
    for (key, solution) in [
        ("nash", &a.nash),
        ("ks", &a.kalai_smorodinsky),
        ("egalitarian", &a.egalitarian),
        ("welfare", &a.max_welfare),
    ] {
        let point = &solution.as_ref().unwrap().points[0];
        for (i, party) in parties.iter().enumerate() {
            assert_eq!(
                number(&f, &format!("{key}-utility-{party}")),
                point.utilities[i],
                "{key} {party}"
            );
        }
        for choice in &point.packages[0].choices {
            assert_eq!(
                f[&format!("{key}-choice-{}", choice.issue_id)],
                choice.option_id,
                "{key}"
            );
        }
    }
    for (i, party) in parties.iter().enumerate() {
        assert_eq!(number(&f, &format!("ideal-{party}")), a.ideal[i]);
    }
    assert_eq!(number(&f, "logroll-ratio-0"), a.logrolling_hints[0].ratio);
    // The 2018 outcome beside the Nash package: 9 of 11 issues agree (docs/korus.md).
    assert_eq!(number(&f, "matches-nash"), 9.0);
    assert!(seen["text"].as_str().unwrap().contains("on 9 of 11 issues"));

    let nash = a.nash.as_ref().unwrap().points[0].packages[0].clone();
    let impact = client
        .estimate_impact(pb::EstimateImpactRequest {
            id: "neg-000001".into(),
            package: Some(nash),
            baseline: None,
            skip_missing_baselines: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!impact.effects.is_empty(), "the sample has baselines");
    assert_eq!(
        number(&f, "impact-bilateral"),
        impact.bilateral_balance_change_usd
    );
    assert_eq!(
        number(&f, "impact-overall"),
        impact.overall_balance_change_usd
    );
}

/// With the US's scope only, the brief shows the US side: its position, its utility of the
/// offers, no Korean figure, no analysis (it would reveal Korea's position), and says so; the
/// negotiation chart draws the US side only, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_party_brief_shows_that_side_and_says_what_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let hash = |t: &str| crate::security::tradepact_rpc_hash(t);
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        format!(
            "{} admin *\n{} us-delegation negotiation:read,negotiation:position:US\n",
            hash("brief-admin"),
            hash("brief-us")
        ),
    )
    .unwrap();
    let data = start_data(&dir.path().join("data"));
    let server = Process::start(
        "tradepact-negotiation",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().join("neg").to_str().unwrap(),
            "--data-service",
            &data.url(),
            "--tokens-file",
            tokens.to_str().unwrap(),
        ],
    );
    let url = server.url();
    let as_admin = [
        ("TRADEPACT_NEGOTIATION_SERVICE_URL", url.as_str()),
        ("TRADEPACT_TOKEN", "brief-admin"),
    ];
    cli(&["scenario", "load", "korus-2018"], &as_admin);
    // One US offer: the package agreed in 2018.
    let package = pb::Package {
        choices: (tradepact_tests::korus_actual_outcome().into_iter())
            .map(|(issue_id, option_id)| pb::Choice {
                issue_id,
                option_id,
            })
            .collect(),
    };
    let mut client = tradepact_client::negotiation::connect(&url).await.unwrap();
    let offer = client
        .submit_offer(tradepact_client::authorized(
            pb::SubmitOfferRequest {
                negotiation_id: "neg-000001".into(),
                party: "US".into(),
                package: Some(package),
            },
            tradepact_client::DEFAULT_DEADLINE,
            Some("brief-admin"),
        ))
        .await
        .unwrap()
        .into_inner()
        .offer
        .unwrap();
    let us_utility = offer.evaluation.unwrap().party_utilities["US"];
    let brief = dir.path().join("brief.html");
    let as_us = [
        ("TRADEPACT_NEGOTIATION_SERVICE_URL", url.as_str()),
        ("TRADEPACT_TOKEN", "brief-us"),
    ];
    cli(
        &[
            "report",
            "negotiation",
            "neg-000001",
            "--out",
            brief.to_str().unwrap(),
        ],
        &as_us,
    );
    let seen = open_in_chromium(&brief);
    let f = figures(&seen);
    assert_eq!(number(&f, "reservation-US"), 0.35);
    assert!(f.contains_key("weight-US-steel"));
    let korean: Vec<&String> = f.keys().filter(|k| k.contains("KOR")).collect();
    assert!(
        korean.is_empty(),
        "Korean figures on a US brief: {korean:?}"
    );
    for analysed in [
        "outcome-count",
        "zopa-size",
        "nash-utility-US",
        "matches-nash",
    ] {
        assert!(!f.contains_key(analysed), "{analysed} on a US brief");
    }
    assert_eq!(seen["svg_charts"], 0, "no utility space");
    let left_out = seen["left_out"].as_str().expect("a left-out box");
    assert!(
        left_out.contains("The positions of KOR are not visible"),
        "{left_out}"
    );
    assert!(left_out.contains("negotiation:all-parties"), "{left_out}");
    let text = seen["text"].as_str().unwrap();
    assert!(text.contains("KOR: not visible to this caller."), "{text}");
    // The offer, with the US's utility only.
    assert_eq!(number(&f, "offer-0-utility-US"), us_utility);

    let side = dir.path().join("side.svg");
    cli(
        &[
            "chart",
            "negotiation",
            "neg-000001",
            "--out",
            side.to_str().unwrap(),
        ],
        &as_us,
    );
    let svg = std::fs::read_to_string(&side).unwrap();
    assert!(svg.contains("Only the side of US"), "{svg}");
    assert!(
        svg.contains("the positions of KOR are not visible"),
        "{svg}"
    );
    // The offer's dot and the two legend marks; no frontier, no solutions.
    assert_eq!(svg.matches("<circle").count(), 3, "{svg}");
    assert!(!svg.contains("Nash") && !svg.contains("reservation value 0.250"));
}

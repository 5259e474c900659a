//! GENIUS scenarios through the command-line tool and the negotiation service: `scenario
//! import DIR` creates the negotiation with every party's position, `scenario export ID DIR`
//! writes it back in GENIUS's format, and the re-imported copy analyses the same (the exact
//! comparison with rational arithmetic is `crates/bargain/tests/genius.rs`).

use std::collections::BTreeMap;
use std::process::Command;

use tradepact_client::negotiation::NegotiationClient;
use tradepact_proto::negotiation_v1 as pb;
use tradepact_tests::{binary, negotiation_client, start_data, start_negotiation, workspace};

fn cli(url: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(binary("tradepact"))
        .args(args)
        .env("TRADEPACT_NEGOTIATION_SERVICE_URL", url)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "tradepact {args:?}: {stderr}");
    (stdout.trim().to_owned(), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genius_scenario_imports_exports_and_imports_again_alike() {
    let dir = tempfile::tempdir().unwrap();
    let data = start_data(&dir.path().join("data"));
    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let url = server.url();
    let mut c = negotiation_client(&server).await;
    let analyzer = c.clone();
    let analysis = |id: String| {
        let mut c = analyzer.clone();
        async move {
            c.analyze_negotiation(pb::AnalyzeNegotiationRequest {
                id,
                page_size: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
        }
    };

    for (fixture, parties, outcomes) in [
        ("holiday", 2, 36.0),
        ("integer", 2, 60.0),
        ("trio", 3, 27.0),
        ("anac/is_bt_acquisition", 2, 384.0),
    ] {
        let source = workspace().join("tests/fixtures/genius").join(fixture);
        let (id, stderr) = cli(&url, &["scenario", "import", source.to_str().unwrap()]);
        let n = c
            .get_negotiation(pb::GetNegotiationRequest {
                id: id.clone(),
                include_positions: true,
            })
            .await
            .unwrap()
            .into_inner()
            .negotiation
            .unwrap();
        assert_eq!(n.parties.len(), parties, "{fixture}");
        assert_eq!(
            n.positions.iter().filter(|p| p.position.is_some()).count(),
            parties
        );
        if fixture == "holiday" {
            // Alice's discount factor has no counterpart: said, not dropped silently.
            assert!(
                stderr.contains("note: alice's discount factor 0.9 is not modelled"),
                "{stderr}"
            );
        }
        if fixture == "anac/is_bt_acquisition" {
            // A real ANAC file whose discount factor reads "s": imported, and said.
            assert!(
                stderr.contains("IS_BT_Acquisition_IS_20.xml: value=\"s\" is not a number"),
                "{stderr}"
            );
        }
        let first = analysis(id.clone()).await;
        assert_eq!(first.outcome_count, outcomes, "{fixture}");

        let out = dir.path().join(format!("{fixture}-export"));
        cli(&url, &["scenario", "export", &id, out.to_str().unwrap()]);
        let (again, _) = cli(&url, &["scenario", "import", out.to_str().unwrap()]);
        let second = analysis(again).await;
        assert_eq!(second.frontier_size, first.frontier_size, "{fixture}");
        assert_eq!(second.frontier, first.frontier, "{fixture}");
        assert_eq!(second.nash, first.nash, "{fixture}");
        assert_eq!(
            second.kalai_smorodinsky, first.kalai_smorodinsky,
            "{fixture}"
        );
        assert_eq!(second.zopa_size, first.zopa_size, "{fixture}");
        if parties == 3 {
            // Three Zeuthen players (Harsanyi's generalisation) agree on the Nash package; the
            // run, recorded, is a three-party negotiation under the stacked rule that ended
            // the same way, turn for turn.
            let zeuthen = pb::Strategy {
                kind: Some(pb::strategy::Kind::Zeuthen(true)),
            };
            let (steps, outcome) = simulate(&mut c, &id, vec![zeuthen; 3], 0).await;
            assert!(outcome.agreed, "{outcome:?}");
            let nash = first.nash.as_ref().unwrap().points[0].packages[0].clone();
            assert_eq!(outcome.agreement, Some(nash), "{outcome:?}");
            let branch = get(&mut c, &outcome.branch_id).await;
            assert_eq!(branch.forked_from, id);
            assert_eq!(branch.turn_rule, pb::TurnRule::Stacked as i32);
            assert_eq!(branch.status, pb::NegotiationStatus::Agreed as i32);
            assert_eq!(recorded(&steps), offers(&branch));
            assert!(
                steps.iter().any(|s| s.accepted && !s.agreed),
                "a party accepted and a later one did not: the stacked rule's case"
            );
            // Tit-for-tat parties (nobody concedes first) reach the deadline: the branch is
            // broken off by it after the sixth turn, the last offer unanswered.
            let tit_for_tat = pb::Strategy {
                kind: Some(pb::strategy::Kind::TitForTat(true)),
            };
            let (steps, outcome) = simulate(&mut c, &id, vec![tit_for_tat; 3], 2).await;
            assert!(
                !outcome.agreed && outcome.reason.contains("deadline"),
                "{outcome:?}"
            );
            let branch = get(&mut c, &outcome.branch_id).await;
            assert_eq!(branch.status, pb::NegotiationStatus::BrokenOff as i32);
            assert!(
                branch.ended_because.contains("deadline of 2 rounds"),
                "{branch:?}"
            );
            assert_eq!((steps.len(), branch.deadline_rounds), (6, 2));
            assert_eq!(recorded(&steps), offers(&branch));
            // The same from the command line: a line a turn, the outcome, the branch.
            let (out, _) = cli(
                &url,
                &["simulate", &id, "--strategies", "zeuthen", "--record"],
            );
            let last = out.lines().last().unwrap();
            let branch_id = last.strip_prefix("recorded as ").expect(&out);
            assert_eq!(
                get(&mut c, branch_id).await.turn_rule,
                pb::TurnRule::Stacked as i32
            );
            assert!(
                out.contains("  agreed\n") && out.contains("agreed: Rent="),
                "{out}"
            );
        }
    }

    // A directory without a domain file is refused clearly.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(binary("tradepact"))
        .args(["scenario", "import", empty.to_str().unwrap()])
        .env("TRADEPACT_NEGOTIATION_SERVICE_URL", &url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no domain file"));
}

/// NegMAS scenarios (as NegMAS itself writes them) through the command-line tool: the
/// service's Nash packages are NegMAS's own on the same files; written back in NegMAS's format,
/// NegMAS finds the same Nash packages in tradepact's files, and they import again alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negmas_scenario_imports_exports_and_imports_again_alike() {
    let dir = tempfile::tempdir().unwrap();
    let data = start_data(&dir.path().join("data"));
    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let url = server.url();
    let mut c = negotiation_client(&server).await;
    for (fixture, parties) in [
        ("holiday", 2),
        ("integer", 2),
        ("trio", 3),
        ("england_zimbabwe", 2),
        ("new_sporthal", 3),
    ] {
        let source = workspace().join("tests/fixtures/negmas").join(fixture);
        let (id, stderr) = cli(&url, &["scenario", "import", source.to_str().unwrap()]);
        assert!(
            stderr.contains("note:") && stderr.contains("rescaled"),
            "{stderr}"
        );
        if fixture == "holiday" {
            assert!(
                stderr.contains("alice's discount (ExpDiscountedUFun, 0.9)"),
                "{stderr}"
            );
        }
        let first = analyze(&mut c, &id).await;
        let n = get(&mut c, &id).await;
        assert_eq!(n.parties.len(), parties);
        let nash = named(&n, first.nash.as_ref().unwrap());
        assert_eq!(
            nash,
            negmas_nash(&source),
            "{fixture}: NegMAS on its own files"
        );

        let out = dir.path().join(format!("{fixture}-negmas"));
        let (_, stderr) = cli(
            &url,
            &[
                "scenario",
                "export",
                &id,
                out.to_str().unwrap(),
                "--format",
                "negmas",
            ],
        );
        assert!(
            stderr.contains(&format!("{parties} party files")),
            "{stderr}"
        );
        assert_eq!(
            nash,
            negmas_nash(&out),
            "{fixture}: NegMAS on tradepact's files"
        );
        let (again, _) = cli(&url, &["scenario", "import", out.to_str().unwrap()]);
        let second = analyze(&mut c, &again).await;
        assert_eq!(second.frontier_size, first.frontier_size, "{fixture}");
        assert_eq!(second.nash, first.nash, "{fixture}");
        assert_eq!(
            second.kalai_smorodinsky, first.kalai_smorodinsky,
            "{fixture}"
        );
        for (a, b) in second.frontier.iter().zip(&first.frontier) {
            assert_eq!(a.packages, b.packages, "{fixture}");
            for (x, y) in a.utilities.iter().zip(&b.utilities) {
                assert!((x - y).abs() < 1e-9, "{fixture}: {x} {y}");
            }
        }
    }
}

async fn analyze(c: &mut NegotiationClient, id: &str) -> pb::AnalyzeNegotiationResponse {
    let req = pb::AnalyzeNegotiationRequest {
        id: id.to_owned(),
        page_size: 1000,
        ..Default::default()
    };
    c.analyze_negotiation(req).await.unwrap().into_inner()
}

/// A solution's packages as issue → option maps, sorted.
fn named(n: &pb::Negotiation, s: &pb::Solution) -> Vec<BTreeMap<String, String>> {
    let mut out: Vec<BTreeMap<String, String>> = (s.points.iter())
        .flat_map(|p| &p.packages)
        .map(|p| {
            (p.choices.iter())
                .map(|c| (c.issue_id.clone(), c.option_id.clone()))
                .collect()
        })
        .collect();
    assert!(out.iter().all(|p| p.len() == n.issues.len()));
    out.sort();
    out
}

/// NegMAS's Nash packages of a folder (tests/python/negmas_nash.py).
fn negmas_nash(dir: &std::path::Path) -> Vec<BTreeMap<String, String>> {
    let out = Command::new("python3")
        .arg(workspace().join("tests/python/negmas_nash.py"))
        .arg(dir)
        .output()
        .expect("python3 on PATH");
    assert!(
        out.status.success(),
        "NegMAS (pip install -r tests/python/requirements.txt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut packages: Vec<BTreeMap<String, String>> =
        serde_json::from_slice(&out.stdout).expect("a JSON list");
    packages.sort();
    packages
}

/// Runs a simulation recorded as a branch: its steps and outcome.
async fn simulate(
    c: &mut NegotiationClient,
    id: &str,
    strategies: Vec<pb::Strategy>,
    deadline_rounds: u32,
) -> (Vec<pb::SimulationStep>, pb::SimulationOutcome) {
    let mut run = c
        .simulate_negotiation(pb::SimulateNegotiationRequest {
            id: id.to_owned(),
            strategies,
            deadline_rounds,
            seed: 1,
            record_as_branch: true,
        })
        .await
        .unwrap()
        .into_inner();
    let (mut steps, mut outcome) = (Vec::new(), None);
    while let Some(message) = run.message().await.unwrap() {
        match message.event.unwrap() {
            pb::simulate_negotiation_response::Event::Step(s) => steps.push(s),
            pb::simulate_negotiation_response::Event::Outcome(o) => outcome = Some(o),
        }
    }
    (steps, outcome.expect("an outcome"))
}

async fn get(c: &mut NegotiationClient, id: &str) -> pb::Negotiation {
    let req = pb::GetNegotiationRequest {
        id: id.to_owned(),
        include_positions: false,
    };
    c.get_negotiation(req)
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap()
}

/// Each offer of a run with the parties that accepted it, in order.
fn recorded(steps: &[pb::SimulationStep]) -> Vec<(String, pb::Package, Vec<String>)> {
    let mut offers: Vec<(String, pb::Package, Vec<String>)> = Vec::new();
    for s in steps {
        match (&s.offer, offers.last_mut()) {
            (Some(p), _) => offers.push((s.party.clone(), p.clone(), Vec::new())),
            (None, Some(last)) if s.accepted => last.2.push(s.party.clone()),
            _ => panic!("a step that neither offers nor accepts: {s:?}"),
        }
    }
    offers
}

fn offers(n: &pb::Negotiation) -> Vec<(String, pb::Package, Vec<String>)> {
    (n.offers.iter())
        .map(|o| {
            (
                o.proposer.clone(),
                o.package.clone().unwrap(),
                o.accepted_by.clone(),
            )
        })
        .collect()
}

/// ImportScenario: the same GENIUS files through the RPC give the negotiation the CLI import
/// gives; a discount factor comes back as a note; bad files are INVALID_ARGUMENT naming them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_rpc_reads_the_files_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let data = start_data(&dir.path().join("data"));
    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let mut c = negotiation_client(&server).await;
    let source = workspace().join("tests/fixtures/genius/holiday");
    let file = |name: &str| pb::ScenarioFile {
        name: name.into(),
        content: std::fs::read_to_string(source.join(name)).unwrap(),
    };
    let request = pb::ImportScenarioRequest {
        format: pb::ScenarioFormat::Genius.into(),
        domain: Some(file("holiday.xml")),
        profiles: vec![file("alice.xml"), file("bob.xml")],
        deadline_rounds: 7,
        ..Default::default()
    };
    let r = c
        .import_scenario(request.clone())
        .await
        .unwrap()
        .into_inner();
    let n = r.negotiation.unwrap();
    assert_eq!(n.parties, vec!["alice".to_owned(), "bob".to_owned()]);
    assert_eq!(
        (n.title.as_str(), n.deadline_rounds, n.issues.len()),
        ("Holiday", 7, 3)
    );
    // The discount factor, and each party's evaluations divided by their largest (GENIUS's
    // normalisation: alice's Destination 8, bob's 10, …).
    assert_eq!(r.notes.len(), 3, "{:?}", r.notes);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("alice's discount factor 0.9")),
        "{:?}",
        r.notes
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("alice's evaluations are divided")
                && n.contains("Destination (largest 8)")),
        "{:?}",
        r.notes
    );
    let positions = c
        .get_negotiation(pb::GetNegotiationRequest {
            id: n.id.clone(),
            include_positions: true,
        })
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap()
        .positions;
    let alice = positions[0].position.as_ref().unwrap();
    // Coast's evaluation 8 over the largest, 8; Mountains 3 / 8.
    assert_eq!(alice.values["Destination"].values["Coast"], 1.0);
    assert_eq!(alice.values["Destination"].values["Mountains"], 0.375);
    assert_eq!(alice.reservation_value, 0.3);

    let mut broken = request.clone();
    broken.profiles[1].content = "<utility_space>".into();
    let e = c.import_scenario(broken).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains("bob.xml") && e.message().contains("not XML"),
        "{}",
        e.message()
    );
    let mut alone = request;
    alone.profiles.truncate(1);
    let e = c.import_scenario(alone).await.unwrap_err();
    assert!(e.message().contains("profiles"), "{}", e.message());
}

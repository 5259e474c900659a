//! GENIUS scenarios through the command-line tool and the negotiation service: `scenario
//! import DIR` creates the negotiation with every party's position, `scenario export ID DIR`
//! writes it back in GENIUS's format, and the re-imported copy analyses the same (the exact
//! comparison with rational arithmetic is `crates/bargain/tests/genius.rs`).

use std::process::Command;

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
            // Three Zeuthen players (Harsanyi's generalisation) agree on the Nash package.
            let zeuthen = pb::Strategy {
                kind: Some(pb::strategy::Kind::Zeuthen(true)),
            };
            let mut run = c
                .simulate_negotiation(pb::SimulateNegotiationRequest {
                    id: id.clone(),
                    strategies: vec![zeuthen; 3],
                    seed: 1,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let mut outcome = None;
            while let Some(message) = run.message().await.unwrap() {
                if let Some(pb::simulate_negotiation_response::Event::Outcome(o)) = message.event {
                    outcome = Some(o);
                }
            }
            let outcome = outcome.expect("an outcome");
            assert!(outcome.agreed, "{outcome:?}");
            let nash = first.nash.as_ref().unwrap().points[0].packages[0].clone();
            assert_eq!(outcome.agreement, Some(nash), "{outcome:?}");
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
    assert_eq!(r.notes.len(), 1);
    assert!(
        r.notes[0].contains("alice's discount factor 0.9"),
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

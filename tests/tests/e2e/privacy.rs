//! Parties and privacy: a token acts only for the parties whose position scope it holds, and
//! nothing a caller gets reveals a position it may not see — neither the utilities
//! themselves nor what they would let it derive (Pareto-optimality, distance to Nash, the
//! other side's concessions, analysis, simulation).

use std::collections::BTreeSet;

use tonic::Code;
use tradepact_client::{authorized, DEFAULT_DEADLINE};
use tradepact_proto::negotiation_v1 as pb;
use tradepact_tests::Process;

use crate::security::{create_with_positions, tradepact_rpc_hash};

pub(crate) const TOKENS: &[(&str, &str)] = &[
    ("admin", "*"),
    ("us", "negotiation:read,negotiation:position:US"),
    ("kor", "negotiation:read,negotiation:position:KOR"),
    ("reader", "negotiation:read"),
    ("writer", "negotiation:read,negotiation:write"),
    ("analyst", "negotiation:read,negotiation:all-parties"),
];

pub(crate) fn start(dir: &std::path::Path) -> Process {
    let lines: String = TOKENS
        .iter()
        .map(|(t, scopes)| format!("{} {t} {scopes}\n", tradepact_rpc_hash(t)))
        .collect();
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, lines).unwrap();
    let data_dir = dir.join("n");
    Process::start(
        "tradepact-negotiation",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--tokens-file",
            tokens.to_str().unwrap(),
        ],
    )
}

fn package(autos: &str, steel: &str) -> Option<pb::Package> {
    Some(pb::Package {
        choices: vec![
            pb::Choice {
                issue_id: "autos".into(),
                option_id: autos.into(),
            },
            pb::Choice {
                issue_id: "steel".into(),
                option_id: steel.into(),
            },
        ],
    })
}

fn offer(id: &str, party: &str, autos: &str, steel: &str) -> pb::SubmitOfferRequest {
    pb::SubmitOfferRequest {
        negotiation_id: id.into(),
        party: party.into(),
        package: package(autos, steel),
    }
}

/// Every number of `utilities` written as the services would print it, to look for in text.
pub(crate) fn texts(utilities: impl IntoIterator<Item = f64>) -> Vec<String> {
    utilities
        .into_iter()
        .filter(|u| *u != 0.0 && *u != 1.0)
        .flat_map(|u| [format!("{u}"), format!("{u:?}")])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_acts_only_for_itself_and_sees_only_its_own_utilities() {
    let dir = tempfile::tempdir().unwrap();
    let neg = start(dir.path());
    let mut n = tradepact_client::negotiation::connect(&neg.url())
        .await
        .unwrap();
    let id = create_with_positions(&mut n, "admin").await;
    let (client, negotiation) = (n.clone(), id.clone());
    let get = move |token: &'static str| {
        let mut n = client.clone();
        let id = negotiation.clone();
        async move {
            n.get_negotiation(authorized(
                pb::GetNegotiationRequest {
                    id,
                    include_positions: true,
                },
                DEFAULT_DEADLINE,
                Some(token),
            ))
            .await
            .unwrap()
            .into_inner()
            .negotiation
            .unwrap()
        }
    };
    let events_before = get("admin").await.event_count;

    // 1. Acting for another party is refused, and nothing is recorded.
    let as_us = |token| authorized(offer(&id, "US", "a", "a"), DEFAULT_DEADLINE, Some(token));
    for token in ["kor", "writer", "reader", "analyst"] {
        let refused = n.submit_offer(as_us(token)).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{token}: {refused:?}"
        );
        assert!(
            refused.message().contains("negotiation:position:"),
            "{refused:?}"
        );
    }
    let break_off = |party: &str, token| {
        authorized(
            pb::BreakOffRequest {
                negotiation_id: id.clone(),
                party: party.into(),
                reason: "not mine to end".into(),
            },
            DEFAULT_DEADLINE,
            Some(token),
        )
    };
    assert_eq!(
        n.break_off(break_off("US", "kor"))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        get("admin").await.event_count,
        events_before,
        "nothing recorded"
    );

    // US offers (twice, so that it has a concession) and KOR answers, each for itself.
    let first = n
        .submit_offer(as_us("us"))
        .await
        .unwrap()
        .into_inner()
        .offer
        .unwrap();
    let respond = |party: &str, offer_id, token| {
        authorized(
            pb::RespondToOfferRequest {
                negotiation_id: id.clone(),
                party: party.into(),
                offer_id,
                accept: false,
            },
            DEFAULT_DEADLINE,
            Some(token),
        )
    };
    assert_eq!(
        n.respond_to_offer(respond("KOR", 0, "us"))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied,
        "US cannot answer for KOR"
    );
    n.respond_to_offer(respond("KOR", 0, "kor")).await.unwrap();
    let kor_offer = n
        .submit_offer(authorized(
            offer(&id, "KOR", "c", "c"),
            DEFAULT_DEADLINE,
            Some("kor"),
        ))
        .await
        .unwrap()
        .into_inner()
        .offer
        .unwrap();
    n.respond_to_offer(respond("US", 1, "us")).await.unwrap();
    let second = n
        .submit_offer(authorized(
            offer(&id, "US", "b", "a"),
            DEFAULT_DEADLINE,
            Some("us"),
        ))
        .await
        .unwrap()
        .into_inner()
        .offer
        .unwrap();

    // 2. What the proposer gets back: its own utility and concession only.
    let e = first.evaluation.unwrap();
    assert!(e.utilities.is_empty(), "{e:?}");
    assert_eq!(e.party_utilities.keys().collect::<Vec<_>>(), vec!["US"]);
    assert_eq!((e.pareto_optimal, e.distance_to_nash), (None, None));
    let e = second.evaluation.unwrap();
    assert!(e.concession.is_some(), "its own concession: {e:?}");
    let e = kor_offer.evaluation.unwrap();
    assert_eq!(e.party_utilities.keys().collect::<Vec<_>>(), vec!["KOR"]);

    // 3. The whole picture, for a caller who may see every party.
    let full = get("analyst").await;
    assert_eq!(full.positions.len(), 2);
    let utilities_of = |negotiation: &pb::Negotiation, party: usize| -> Vec<f64> {
        negotiation
            .offers
            .iter()
            .map(|o| o.evaluation.as_ref().unwrap().utilities[party])
            .collect()
    };
    let (us_u, kor_u) = (utilities_of(&full, 0), utilities_of(&full, 1));
    for o in &full.offers {
        let e = o.evaluation.as_ref().unwrap();
        assert_eq!(e.utilities.len(), 2);
        assert!(e.pareto_optimal.is_some() && e.distance_to_nash.is_some());
        assert_eq!(e.party_utilities.len(), 2);
    }
    assert!(full.offers[2]
        .evaluation
        .as_ref()
        .unwrap()
        .concession
        .is_some());
    assert_eq!(get("admin").await, full, "`*` sees what all-parties sees");

    // 4. Each party, the reader and the writer: only what they may see, in every answer.
    let (client, negotiation) = (n.clone(), id.clone());
    let watch = move |token: &'static str| {
        let mut n = client.clone();
        let id = negotiation.clone();
        async move {
            let mut stream = n
                .watch_negotiation(authorized(
                    pb::WatchNegotiationRequest {
                        id,
                        from_event: 0,
                        include_positions: true,
                    },
                    DEFAULT_DEADLINE,
                    Some(token),
                ))
                .await
                .unwrap()
                .into_inner();
            let mut events = Vec::new();
            while events.len() < events_before as usize + 5 {
                events.push(stream.message().await.unwrap().unwrap());
            }
            events
        }
    };
    for (token, sees) in [
        ("us", vec!["US"]),
        ("kor", vec!["KOR"]),
        ("reader", vec![]),
        ("writer", vec![]),
    ] {
        let seen = get(token).await;
        let hidden = if sees.contains(&"US") { &kor_u } else { &us_u };
        let mut hidden_texts = texts(hidden.iter().copied());
        if sees.is_empty() {
            hidden_texts.extend(texts(kor_u.iter().copied()));
        }
        assert_eq!(
            seen.positions
                .iter()
                .map(|p| p.party.as_str())
                .collect::<Vec<_>>(),
            sees,
            "{token}: positions"
        );
        for (o, whole) in seen.offers.iter().zip(&full.offers) {
            let e = o.evaluation.as_ref().unwrap();
            let w = whole.evaluation.as_ref().unwrap();
            assert!(e.utilities.is_empty(), "{token}: {e:?}");
            assert_eq!(
                e.party_utilities
                    .keys()
                    .map(String::as_str)
                    .collect::<BTreeSet<_>>(),
                sees.iter().copied().collect(),
                "{token}"
            );
            assert_eq!(
                (e.pareto_optimal, e.distance_to_nash),
                (None, None),
                "{token}"
            );
            let own_offer = sees.contains(&o.proposer.as_str());
            assert_eq!(e.concession, w.concession.filter(|_| own_offer), "{token}");
        }
        // Nothing of the hidden side's utilities appears anywhere in the answers.
        let events = watch(token).await;
        let text = format!("{seen:?} {events:?}");
        for t in &hidden_texts {
            assert!(!text.contains(t.as_str()), "{token} got {t}: {text}");
        }
        for event in events.iter().filter(|e| e.r#type == "offer_made") {
            let json: serde_json::Value = serde_json::from_str(&event.json).unwrap();
            let evaluation = &json["evaluation"];
            assert_eq!(
                evaluation["utilities"],
                serde_json::json!([]),
                "{token}: {json}"
            );
            assert!(
                evaluation.get("pareto_optimal").is_none(),
                "{token}: {json}"
            );
            assert!(
                evaluation.get("distance_to_nash").is_none(),
                "{token}: {json}"
            );
        }
        for event in events.iter().filter(|e| e.r#type == "position_set") {
            let json: serde_json::Value = serde_json::from_str(&event.json).unwrap();
            let party = json["party"].as_str().unwrap();
            assert_eq!(
                json["position"].is_object(),
                sees.contains(&party),
                "{token}: {json}"
            );
        }
    }
    // The analyst's watch shows evaluations whole.
    let events = watch("analyst").await;
    let offer_made = events.iter().find(|e| e.r#type == "offer_made").unwrap();
    assert!(
        offer_made.json.contains("pareto_optimal"),
        "{}",
        offer_made.json
    );

    // 5. Analysis and simulation need every party's position.
    let analyze = |token| {
        authorized(
            pb::AnalyzeNegotiationRequest {
                id: id.clone(),
                ..Default::default()
            },
            DEFAULT_DEADLINE,
            Some(token),
        )
    };
    for (token, missing) in [
        ("us", "negotiation:position:KOR"),
        ("kor", "negotiation:position:US"),
        ("reader", "negotiation:position:US"),
    ] {
        let refused = n.analyze_negotiation(analyze(token)).await.unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{token}");
        assert!(refused.message().contains(missing), "{token}: {refused:?}");
        assert!(refused.message().contains("negotiation:all-parties"));
    }
    let analysis = n
        .analyze_negotiation(analyze("analyst"))
        .await
        .unwrap()
        .into_inner();
    assert!(analysis.nash.is_some() && !analysis.ideal.is_empty());
    let simulate = |token, record_as_branch| {
        authorized(
            pb::SimulateNegotiationRequest {
                id: id.clone(),
                strategies: vec![
                    pb::Strategy {
                        kind: Some(pb::strategy::Kind::TimeBasedExponent(1.0)),
                    };
                    2
                ],
                deadline_rounds: 5,
                seed: 1,
                record_as_branch,
            },
            DEFAULT_DEADLINE,
            Some(token),
        )
    };
    for token in ["us", "kor", "reader", "writer"] {
        let refused = n.simulate_negotiation(simulate(token, false)).await;
        assert_eq!(
            refused.err().map(|s| s.code()),
            Some(Code::PermissionDenied),
            "{token}"
        );
    }
    let mut steps = n
        .simulate_negotiation(simulate("analyst", false))
        .await
        .unwrap()
        .into_inner();
    assert!(steps.message().await.unwrap().is_some());
    // Recording a branch writes a negotiation: negotiation:write too.
    let refused = n.simulate_negotiation(simulate("analyst", true)).await;
    assert_eq!(
        refused.err().map(|s| s.code()),
        Some(Code::PermissionDenied)
    );
}

/// `ExportScenario` writes only the positions the token may see: a party its own, an
/// all-parties analyst every one, a reader none; and nothing of a hidden position is in the
/// files, in either format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_writes_only_the_positions_the_caller_may_see() {
    let dir = tempfile::tempdir().unwrap();
    let neg = start(dir.path());
    let mut n = tradepact_client::negotiation::connect(&neg.url())
        .await
        .unwrap();
    let id = create_with_positions(&mut n, "admin").await;
    let us_numbers = texts([0.7131, 0.2869, 0.9173, 0.4411]);
    for format in [pb::ScenarioFormat::Genius, pb::ScenarioFormat::Negmas] {
        for (token, written, left_out) in [
            ("kor", vec!["KOR"], vec!["US"]),
            ("reader", vec![], vec!["US", "KOR"]),
            ("analyst", vec!["US", "KOR"], vec![]),
        ] {
            let request = pb::ExportScenarioRequest {
                id: id.clone(),
                format: format.into(),
            };
            let export = n
                .export_scenario(authorized(request, DEFAULT_DEADLINE, Some(token)))
                .await
                .unwrap()
                .into_inner();
            let names: Vec<String> = (export.profiles.iter())
                .map(|f| f.name.rsplit_once('.').unwrap().0.to_owned())
                .collect();
            assert_eq!(
                (names, export.left_out.clone()),
                (
                    written.iter().map(|s| s.to_string()).collect(),
                    left_out.iter().map(|s| s.to_string()).collect(),
                ),
                "{token} {format:?}"
            );
            let text: String = (export.domain.iter().chain(&export.profiles))
                .map(|f| f.content.as_str())
                .collect();
            if token != "analyst" {
                for number in &us_numbers {
                    assert!(
                        !text.contains(number.as_str()),
                        "{token} {format:?}: {number}"
                    );
                }
            } else {
                assert!(text.contains("0.9173"), "{text}");
            }
        }
    }
    let e = n
        .export_scenario(authorized(
            pb::ExportScenarioRequest {
                id: id.clone(),
                format: 9,
            },
            DEFAULT_DEADLINE,
            Some("admin"),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
}

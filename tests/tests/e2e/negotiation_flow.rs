//! The negotiation service end to end, beside a real data service: a negotiation from
//! creation to agreement, analysis checked by hand, a simulation, a fork, a resumable watch,
//! concurrent offers, and a restart that loses nothing.

use std::collections::HashMap;
use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::Code;
use tradepact_proto::negotiation_v1 as pb;
use tradepact_tests::{negotiation_client, start_data, start_negotiation};

fn option(id: &str) -> pb::IssueOption {
    pb::IssueOption {
        id: id.into(),
        label: id.into(),
        trade_effects: vec![],
    }
}

fn position(
    weights: &[(&str, f64)],
    values: &[(&str, &[(&str, f64)])],
    reservation: f64,
) -> pb::Position {
    pb::Position {
        weights: weights.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        values: values
            .iter()
            .map(|(issue, opts)| {
                let values: HashMap<String, f64> =
                    opts.iter().map(|(o, v)| ((*o).to_owned(), *v)).collect();
                ((*issue).to_owned(), pb::OptionValues { values })
            })
            .collect(),
        reservation_value: reservation,
    }
}

fn package(choices: &[(&str, &str)]) -> pb::Package {
    pb::Package {
        choices: choices
            .iter()
            .map(|(i, o)| pb::Choice {
                issue_id: (*i).into(),
                option_id: (*o).into(),
            })
            .collect(),
    }
}

/// Tariff (keep/cut) and quota (high/low); the US weighs the tariff 0.6, Korea the quota 0.7.
fn two_issues() -> pb::CreateNegotiationRequest {
    pb::CreateNegotiationRequest {
        title: "tariff and quota".into(),
        agreement: "test FTA".into(),
        parties: vec!["US".into(), "KOR".into()],
        issues: vec![
            pb::Issue {
                id: "tariff".into(),
                label: "tariff".into(),
                options: vec![option("keep"), option("cut")],
            },
            pb::Issue {
                id: "quota".into(),
                label: "quota".into(),
                options: vec![option("high"), option("low")],
            },
        ],
        deadline_rounds: 5,
        ..Default::default()
    }
}

fn us() -> pb::Position {
    position(
        &[("tariff", 0.6), ("quota", 0.4)],
        &[
            ("tariff", &[("keep", 1.0), ("cut", 0.0)]),
            ("quota", &[("high", 1.0), ("low", 0.0)]),
        ],
        0.2,
    )
}

fn kor() -> pb::Position {
    position(
        &[("tariff", 0.3), ("quota", 0.7)],
        &[
            ("tariff", &[("keep", 0.0), ("cut", 1.0)]),
            ("quota", &[("high", 0.0), ("low", 1.0)]),
        ],
        0.2,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negotiation_from_creation_to_agreement_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = start_data(&dir.path().join("data"));
    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let mut c = negotiation_client(&server).await;

    let n = c
        .create_negotiation(two_issues())
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap();
    let id = n.id.clone();
    assert_eq!(
        (n.status, n.next_proposer.as_str()),
        (pb::NegotiationStatus::Open as i32, "US")
    );
    for (party, p) in [("US", us()), ("KOR", kor())] {
        c.set_position(pb::SetPositionRequest {
            negotiation_id: id.clone(),
            party: party.into(),
            position: Some(p),
        })
        .await
        .unwrap();
    }
    // Weights that sum to zero, values out of range and unknown options are refused.
    for bad in [
        position(
            &[("tariff", 0.0), ("quota", 0.0)],
            &[
                ("tariff", &[("keep", 1.0), ("cut", 0.0)]),
                ("quota", &[("high", 1.0), ("low", 0.0)]),
            ],
            0.2,
        ),
        position(
            &[("tariff", 1.0)],
            &[("tariff", &[("keep", 1.5), ("cut", 0.0)])],
            0.2,
        ),
        position(
            &[("tariff", 1.0)],
            &[("tariff", &[("keep", 1.0), ("sideways", 0.0)])],
            0.2,
        ),
    ] {
        let e = c
            .set_position(pb::SetPositionRequest {
                negotiation_id: id.clone(),
                party: "US".into(),
                position: Some(bad),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }
    // Positions are private unless asked for.
    let got = c
        .get_negotiation(pb::GetNegotiationRequest {
            id: id.clone(),
            include_positions: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(got.negotiation.unwrap().positions.is_empty());
    let got = c
        .get_negotiation(pb::GetNegotiationRequest {
            id: id.clone(),
            include_positions: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got.negotiation.unwrap().positions[1]
            .position
            .as_ref()
            .unwrap()
            .weights["quota"],
        0.7
    );

    let offer = c
        .submit_offer(pb::SubmitOfferRequest {
            negotiation_id: id.clone(),
            party: "US".into(),
            package: Some(package(&[("tariff", "keep"), ("quota", "high")])),
        })
        .await
        .unwrap()
        .into_inner()
        .offer
        .unwrap();
    let eval = offer.evaluation.unwrap();
    assert_eq!(eval.utilities, vec![1.0, 0.0]);
    assert!(
        eval.pareto_optimal == Some(false),
        "KOR gets less than its reservation value"
    );

    // Out of turn, own offer, unknown option, missing issue.
    let e = c
        .submit_offer(pb::SubmitOfferRequest {
            negotiation_id: id.clone(),
            party: "US".into(),
            package: Some(package(&[("tariff", "keep"), ("quota", "low")])),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = c
        .respond_to_offer(pb::RespondToOfferRequest {
            negotiation_id: id.clone(),
            party: "US".into(),
            offer_id: 0,
            accept: true,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = c
        .submit_offer(pb::SubmitOfferRequest {
            negotiation_id: id.clone(),
            party: "KOR".into(),
            package: Some(package(&[("tariff", "keep"), ("quota", "medium")])),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .submit_offer(pb::SubmitOfferRequest {
            negotiation_id: id.clone(),
            party: "KOR".into(),
            package: Some(package(&[("tariff", "keep")])),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("quota"), "{}", e.message());

    c.respond_to_offer(pb::RespondToOfferRequest {
        negotiation_id: id.clone(),
        party: "KOR".into(),
        offer_id: 0,
        accept: false,
    })
    .await
    .unwrap();
    let offer = c
        .submit_offer(pb::SubmitOfferRequest {
            negotiation_id: id.clone(),
            party: "KOR".into(),
            package: Some(package(&[("tariff", "keep"), ("quota", "low")])),
        })
        .await
        .unwrap()
        .into_inner()
        .offer
        .unwrap();
    let eval = offer.evaluation.unwrap();
    assert_eq!(eval.utilities, vec![0.6, 0.7]);
    assert_eq!(eval.pareto_optimal, Some(true));
    assert_eq!(eval.distance_to_nash, Some(0.0));
    let done = c
        .respond_to_offer(pb::RespondToOfferRequest {
            negotiation_id: id.clone(),
            party: "US".into(),
            offer_id: 1,
            accept: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (done.status, done.agreed_offer),
        (pb::NegotiationStatus::Agreed as i32, Some(1))
    );
    let e = c
        .submit_offer(pb::SubmitOfferRequest {
            negotiation_id: id.clone(),
            party: "US".into(),
            package: Some(package(&[("tariff", "cut"), ("quota", "low")])),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    // Kill without a chance to flush; everything acknowledged is replayed.
    let before = c
        .get_negotiation(pb::GetNegotiationRequest {
            id: id.clone(),
            include_positions: true,
        })
        .await
        .unwrap()
        .into_inner();
    drop(c);
    server.kill9();
    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let mut c = negotiation_client(&server).await;
    let after = c
        .get_negotiation(pb::GetNegotiationRequest {
            id: id.clone(),
            include_positions: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before, after);
    let listed = c
        .list_negotiations(pb::ListNegotiationsRequest {
            status: pb::NegotiationStatus::Agreed.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.negotiations.len(), 1);
    let e = c
        .get_negotiation(pb::GetNegotiationRequest {
            id: "neg-999999".into(),
            include_positions: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

/// One issue, four options, reservations 0.1; (US, KOR): A (0.95, 0.35), B (0.6, 0.6),
/// C (0.5, 0.75), D (0.2, 0.95). By hand: Nash C (0.4 · 0.65 = 0.26), Kalai–Smorodinsky and
/// egalitarian B, max welfare A (1.3); every option is on the frontier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysis_simulation_fork_and_watch_on_a_scenario_worked_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let data = start_data(&dir.path().join("data"));
    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let mut c = negotiation_client(&server).await;
    let n = c
        .create_negotiation(pb::CreateNegotiationRequest {
            title: "one issue".into(),
            agreement: "test".into(),
            parties: vec!["US".into(), "KOR".into()],
            issues: vec![pb::Issue {
                id: "deal".into(),
                label: "deal".into(),
                options: ["A", "B", "C", "D"].map(option).to_vec(),
            }],
            deadline_rounds: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap();
    let id = n.id;
    let e = c
        .analyze_negotiation(pb::AnalyzeNegotiationRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("US, KOR"), "{}", e.message());
    let us = position(
        &[("deal", 1.0)],
        &[("deal", &[("A", 0.95), ("B", 0.6), ("C", 0.5), ("D", 0.2)])],
        0.1,
    );
    let kor = position(
        &[("deal", 1.0)],
        &[("deal", &[("A", 0.35), ("B", 0.6), ("C", 0.75), ("D", 0.95)])],
        0.1,
    );
    for (party, p) in [("US", us), ("KOR", kor)] {
        c.set_position(pb::SetPositionRequest {
            negotiation_id: id.clone(),
            party: party.into(),
            position: Some(p),
        })
        .await
        .unwrap();
    }

    // Watch from the start, before anything else happens.
    let mut watch = c
        .watch_negotiation(pb::WatchNegotiationRequest {
            id: id.clone(),
            from_event: 0,
            include_positions: false,
        })
        .await
        .unwrap()
        .into_inner();

    let only = |s: Option<pb::Solution>| {
        let s = s.unwrap();
        assert_eq!(s.points.len(), 1, "{s:?}");
        s.points[0].packages[0].choices[0].option_id.clone()
    };
    let a = c
        .analyze_negotiation(pb::AnalyzeNegotiationRequest {
            id: id.clone(),
            page_size: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (a.outcome_count, a.zopa_size, a.zopa_exact, a.frontier_size),
        (4.0, 4.0, true, 4)
    );
    assert_eq!(a.frontier.len(), 3);
    let nash_value = a.nash.as_ref().unwrap().value;
    assert!((nash_value - 0.26).abs() < 1e-9);
    assert_eq!(only(a.nash), "C");
    assert_eq!(only(a.kalai_smorodinsky), "B");
    assert_eq!(only(a.egalitarian), "B");
    assert_eq!(only(a.max_welfare), "A");
    let rest = c
        .analyze_negotiation(pb::AnalyzeNegotiationRequest {
            id: id.clone(),
            page_size: 3,
            page_token: a.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.frontier.len(), 1);
    assert_eq!(rest.frontier[0].utilities, vec![0.2, 0.95]);
    assert!(rest.next_page_token.is_empty());

    // An offer, then a simulation between two Zeuthen players recorded as a branch: it ends
    // in agreement on the Nash option.
    c.submit_offer(pb::SubmitOfferRequest {
        negotiation_id: id.clone(),
        party: "US".into(),
        package: Some(package(&[("deal", "A")])),
    })
    .await
    .unwrap();
    let zeuthen = pb::Strategy {
        kind: Some(pb::strategy::Kind::Zeuthen(true)),
    };
    let mut sim = c
        .simulate_negotiation(pb::SimulateNegotiationRequest {
            id: id.clone(),
            strategies: vec![zeuthen, zeuthen],
            deadline_rounds: 0,
            seed: 3,
            record_as_branch: true,
        })
        .await
        .unwrap()
        .into_inner();
    let (mut steps, mut outcome) = (0, None);
    while let Some(msg) = sim.next().await {
        match msg.unwrap().event.unwrap() {
            pb::simulate_negotiation_response::Event::Step(_) => steps += 1,
            pb::simulate_negotiation_response::Event::Outcome(o) => outcome = Some(o),
        }
    }
    let outcome = outcome.expect("the stream ends with the outcome");
    assert!(
        outcome.agreed && steps >= 2,
        "{outcome:?} after {steps} steps"
    );
    assert_eq!(outcome.agreement.unwrap().choices[0].option_id, "C");
    let branch = c
        .get_negotiation(pb::GetNegotiationRequest {
            id: outcome.branch_id.clone(),
            include_positions: false,
        })
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap();
    assert_eq!(branch.status, pb::NegotiationStatus::Agreed as i32);
    assert_eq!(branch.forked_from, id);

    // A fork as of round 0 has the positions but not the offer.
    let fork = c
        .fork_negotiation(pb::ForkNegotiationRequest {
            id: id.clone(),
            after_round: 0,
            title: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap();
    assert!(fork.offers.is_empty() && fork.title.ends_with("(what-if)"));
    assert_eq!(fork.event_count, 3);
    c.submit_offer(pb::SubmitOfferRequest {
        negotiation_id: fork.id.clone(),
        party: "US".into(),
        package: Some(package(&[("deal", "B")])),
    })
    .await
    .unwrap();

    // The watch saw creation, two positions and the offer of the original, in order.
    let mut types = Vec::new();
    for expected in 0..4u64 {
        let e = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(e.event_number, expected);
        types.push(e.r#type);
    }
    assert_eq!(
        types,
        vec!["created", "position_set", "position_set", "offer_made"]
    );
    // Positions are private: a watch shows them only when asked for.
    for (include_positions, shown) in [(false, false), (true, true)] {
        let mut w = c
            .watch_negotiation(pb::WatchNegotiationRequest {
                id: id.clone(),
                from_event: 1,
                include_positions,
            })
            .await
            .unwrap()
            .into_inner();
        let e = w.next().await.unwrap().unwrap();
        assert!(e.json.contains("\"party\":\"US\""), "{}", e.json);
        assert_eq!(e.json.contains("0.95"), shown, "{}", e.json);
    }
    // A new watcher resumes from event 3.
    let mut resumed = c
        .watch_negotiation(pb::WatchNegotiationRequest {
            id: id.clone(),
            from_event: 3,
            include_positions: false,
        })
        .await
        .unwrap()
        .into_inner();
    let e = resumed.next().await.unwrap().unwrap();
    assert_eq!((e.event_number, e.r#type.as_str()), (3, "offer_made"));
    assert!(e.json.contains("\"party\":\"US\""));
    // A live event reaches both.
    c.respond_to_offer(pb::RespondToOfferRequest {
        negotiation_id: id.clone(),
        party: "KOR".into(),
        offer_id: 0,
        accept: false,
    })
    .await
    .unwrap();
    for w in [&mut watch, &mut resumed] {
        let e = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!((e.event_number, e.r#type.as_str()), (4, "offer_rejected"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_offers_on_one_negotiation_are_serialised() {
    let dir = tempfile::tempdir().unwrap();
    let data = start_data(&dir.path().join("data"));
    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let c = negotiation_client(&server).await;
    let id = c
        .clone()
        .create_negotiation(two_issues())
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap()
        .id;
    let offers = (0..8).map(|i| {
        let mut c = c.clone();
        let id = id.clone();
        let tariff = if i % 2 == 0 { "keep" } else { "cut" };
        tokio::spawn(async move {
            c.submit_offer(pb::SubmitOfferRequest {
                negotiation_id: id,
                party: "US".into(),
                package: Some(package(&[("tariff", tariff), ("quota", "high")])),
            })
            .await
        })
    });
    let mut ok = 0;
    for handle in offers {
        match handle.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}"),
        }
    }
    assert_eq!(ok, 1, "exactly one offer wins the turn");
    let n = c
        .clone()
        .get_negotiation(pb::GetNegotiationRequest {
            id,
            include_positions: false,
        })
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap();
    assert_eq!((n.offers.len(), n.event_count), (1, 2));
}

/// An analysis is reused while the negotiation is unchanged and recomputed after any event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_analysis_follows_position_changes() {
    let dir = tempfile::tempdir().unwrap();
    let data = start_data(&dir.path().join("data"));
    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let mut c = negotiation_client(&server).await;
    let id = c
        .create_negotiation(two_issues())
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap()
        .id;
    let set = |reservation: f64| pb::SetPositionRequest {
        negotiation_id: id.clone(),
        party: "US".into(),
        position: Some(pb::Position {
            reservation_value: reservation,
            ..us()
        }),
    };
    c.set_position(set(0.2)).await.unwrap();
    c.set_position(pb::SetPositionRequest {
        negotiation_id: id.clone(),
        party: "KOR".into(),
        position: Some(kor()),
    })
    .await
    .unwrap();
    let analyze = |c: &mut tradepact_client::negotiation::NegotiationClient| {
        let mut c = c.clone();
        let id = id.clone();
        async move {
            c.analyze_negotiation(pb::AnalyzeNegotiationRequest {
                id,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
        }
    };
    // Reservations 0.2 and 0.2: keep/low (0.6, 0.7) and cut/high (0.4, 0.3) are rational.
    let first = analyze(&mut c).await;
    assert_eq!(first.zopa_size, 2.0);
    assert_eq!(analyze(&mut c).await, first, "the same analysis again");
    // The US now needs 0.5: only keep/low is left.
    c.set_position(set(0.5)).await.unwrap();
    let after = analyze(&mut c).await;
    assert_eq!(after.zopa_size, 1.0);
    let nash = &after.nash.unwrap().points[0].packages[0];
    assert_eq!(nash, &package(&[("tariff", "keep"), ("quota", "low")]));
}

/// A live three-party negotiation under the stacked rule: the turn goes round responses too,
/// a party out of turn is refused, an unknown rule is invalid, and the rule survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stacked_negotiation_takes_turns_with_its_responses() {
    let dir = tempfile::tempdir().unwrap();
    let data = start_data(&dir.path().join("data"));
    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let mut c = negotiation_client(&server).await;
    let mut req = two_issues();
    req.parties = vec!["US".into(), "KOR".into(), "JPN".into()];
    req.turn_rule = 7;
    let e = c.create_negotiation(req.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("turn_rule"), "{e:?}");
    req.turn_rule = pb::TurnRule::Stacked as i32;
    let id = (c.create_negotiation(req).await.unwrap().into_inner())
        .negotiation
        .unwrap()
        .id;
    let offer = |party: &str, tariff: &str| pb::SubmitOfferRequest {
        negotiation_id: id.clone(),
        party: party.into(),
        package: Some(package(&[("tariff", tariff), ("quota", "high")])),
    };
    let respond = |party: &str, offer_id: u32| pb::RespondToOfferRequest {
        negotiation_id: id.clone(),
        party: party.into(),
        offer_id,
        accept: true,
    };
    c.submit_offer(offer("US", "keep")).await.unwrap();
    let e = c.respond_to_offer(respond("JPN", 0)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("KOR's turn"), "{e:?}");
    c.respond_to_offer(respond("KOR", 0)).await.unwrap();
    // JPN's counter-offer is its turn (offers in order would want KOR's).
    c.submit_offer(offer("JPN", "cut")).await.unwrap();
    let get = pb::GetNegotiationRequest {
        id: id.clone(),
        include_positions: false,
    };
    let n = (c.get_negotiation(get.clone()).await.unwrap().into_inner())
        .negotiation
        .unwrap();
    assert_eq!(
        (n.turn_rule, n.next_proposer.as_str(), n.offers.len()),
        (pb::TurnRule::Stacked as i32, "US", 2)
    );

    server.kill9();
    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let mut c = negotiation_client(&server).await;
    c.respond_to_offer(respond("US", 1)).await.unwrap();
    let agreed = c.respond_to_offer(respond("KOR", 1)).await.unwrap();
    assert_eq!(agreed.into_inner().agreed_offer, Some(1));
    let n = (c.get_negotiation(get).await.unwrap().into_inner())
        .negotiation
        .unwrap();
    assert_eq!(n.turn_rule, pb::TurnRule::Stacked as i32);
    assert_eq!(n.offers[1].accepted_by, vec!["US", "KOR"]);
}

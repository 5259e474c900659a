//! AnalyzeRobustness against the real negotiation service: the sensitivity range of a case
//! worked by hand, the shares adding up, the comparison with a package, the same answer for
//! the same seed, field violations for bad ranges, and a caller who sees one party refused.

use tonic::Code;
use tradepact_proto::negotiation_v1 as pb;
use tradepact_tests::{negotiation_client, start_data, start_negotiation};

/// Two issues of options A and B: the US wants A on both and weighs issue 1 at 0.7 (raw),
/// Korea wants B on both and weighs issue 2 at 0.8; no reservation values.
async fn two_issues(c: &mut tradepact_client::negotiation::NegotiationClient) -> String {
    let issue = |id: &str| pb::Issue {
        id: id.into(),
        label: id.into(),
        options: ["A", "B"]
            .iter()
            .map(|o| pb::IssueOption {
                id: (*o).into(),
                label: (*o).into(),
                trade_effects: vec![],
            })
            .collect(),
    };
    let id = c
        .create_negotiation(pb::CreateNegotiationRequest {
            title: "two issues".into(),
            agreement: "test".into(),
            parties: vec!["US".into(), "KOR".into()],
            issues: vec![issue("i1"), issue("i2")],
            deadline_rounds: 4,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap()
        .id;
    for (party, w1, w2, a) in [("US", 0.7, 0.3, 1.0), ("KOR", 0.2, 0.8, 0.0)] {
        let values = |a: f64| pb::OptionValues {
            values: [("A".to_owned(), a), ("B".to_owned(), 1.0 - a)].into(),
        };
        c.set_position(pb::SetPositionRequest {
            negotiation_id: id.clone(),
            party: party.into(),
            position: Some(pb::Position {
                weights: [("i1".to_owned(), w1), ("i2".to_owned(), w2)].into(),
                values: [("i1".to_owned(), values(a)), ("i2".to_owned(), values(a))].into(),
                reservation_value: 0.0,
            }),
        })
        .await
        .unwrap();
    }
    id
}

fn us_weight(low: f64, high: f64) -> pb::UncertainParameter {
    pb::UncertainParameter {
        party: "US".into(),
        kind: pb::ParameterKind::Weight.into(),
        issue_id: "i1".into(),
        low,
        high,
        ..Default::default()
    }
}

fn choices(p: &Option<pb::Package>) -> Vec<(String, String)> {
    (p.iter().flat_map(|p| &p.choices))
        .map(|c| (c.issue_id.clone(), c.option_id.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robustness_by_hand_through_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let data = start_data(&dir.path().join("data"));
    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let mut c = negotiation_client(&server).await;
    let id = two_issues(&mut c).await;
    let request = pb::AnalyzeRobustnessRequest {
        id: id.clone(),
        uncertain: vec![us_weight(0.0, 1.4)],
        samples: 500,
        seed: 11,
        compare: Some(pb::Package {
            choices: vec![
                pb::Choice {
                    issue_id: "i1".into(),
                    option_id: "A".into(),
                },
                pb::Choice {
                    issue_id: "i2".into(),
                    option_id: "B".into(),
                },
            ],
        }),
        ..Default::default()
    };
    let r = c
        .analyze_robustness(request.clone())
        .await
        .unwrap()
        .into_inner();
    // By hand: (A,B) is the Nash package while the US's raw weight on i1 exceeds 0.075.
    let ab = vec![
        ("i1".to_owned(), "A".to_owned()),
        ("i2".to_owned(), "B".to_owned()),
    ];
    assert_eq!(choices(&r.stated_nash), ab);
    let s = &r.sensitivity[0];
    assert!((s.stays_from - 0.075).abs() < 1e-3, "{s:?}");
    assert_eq!((s.stated, s.stays_to, s.robust), (0.7, 1.4, false));
    assert_eq!(
        choices(&s.nash_below),
        vec![
            ("i1".to_owned(), "B".to_owned()),
            ("i2".to_owned(), "A".to_owned())
        ]
    );
    assert!(s.nash_above.is_none());
    // The shares of one issue add up to the samples with a Nash point (all of them here).
    assert_eq!(r.samples, 500);
    assert_eq!(r.zopa_empty_share, 0.0);
    for issue in &r.issues {
        let total: f64 = issue.options.iter().map(|o| o.nash_share).sum();
        assert!((total - 1.0).abs() < 1e-9, "{issue:?}");
    }
    // Sampled uniformly on [0, 1.4], the package changes below 0.075 (5.4 % of the range).
    assert!(
        (r.same_nash_share - (1.0 - 0.075 / 1.4)).abs() < 0.04,
        "{r:?}"
    );
    // Compared with (A,B): every sample matches it on ≥ 0 issues, those keeping it on both.
    assert_eq!(r.compare_at_least.len(), 3);
    assert_eq!(r.compare_at_least[0], 1.0);
    assert_eq!(r.compare_at_least[2], r.same_nash_share);
    assert_eq!(r.nash_utility.len(), 2);
    assert_eq!(r.nash_utility[0].party, "US");

    // The same seed, the same answer.
    let again = c
        .analyze_robustness(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, r);

    // Spreads add one parameter per weight and per reservation.
    let spread = c
        .analyze_robustness(pb::AnalyzeRobustnessRequest {
            id: id.clone(),
            weight_spread: 0.25,
            reservation_spread: 0.05,
            samples: 20,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(spread.sensitivity.len(), 2 * 2 + 2);

    // Bad input: each field named.
    let bad = |r: pb::AnalyzeRobustnessRequest| {
        let mut c = c.clone();
        async move { c.analyze_robustness(r).await.unwrap_err() }
    };
    let reversed = bad(pb::AnalyzeRobustnessRequest {
        uncertain: vec![us_weight(1.0, 0.5)],
        ..request.clone()
    })
    .await;
    assert_eq!(reversed.code(), Code::InvalidArgument);
    assert!(
        reversed.message().contains("uncertain[0].low"),
        "{}",
        reversed.message()
    );
    let stranger = bad(pb::AnalyzeRobustnessRequest {
        uncertain: vec![pb::UncertainParameter {
            party: "JPN".into(),
            ..us_weight(0.0, 1.0)
        }],
        ..request.clone()
    })
    .await;
    assert!(
        stranger.message().contains("uncertain[0].party"),
        "{}",
        stranger.message()
    );
    let nothing = bad(pb::AnalyzeRobustnessRequest {
        id: id.clone(),
        ..Default::default()
    })
    .await;
    assert!(
        nothing.message().contains("uncertain"),
        "{}",
        nothing.message()
    );
    let too_many = bad(pb::AnalyzeRobustnessRequest {
        samples: 1_000_000,
        ..request.clone()
    })
    .await;
    assert!(
        too_many.message().contains("samples"),
        "{}",
        too_many.message()
    );
}

/// SimulateMediation on the two-issue case: hill climbers adopt only changes no party loses by,
/// so from (B,A) the text moves to (A,B), the Nash package, and from the extremes (A,A) and
/// (B,B) nothing moves; bad voters are refused by field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mediation_by_hand_through_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let data = start_data(&dir.path().join("data"));
    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let mut c = negotiation_client(&server).await;
    let id = two_issues(&mut c).await;
    let hill = pb::Voter {
        kind: Some(pb::voter::Kind::HillClimber(true)),
    };
    let ab = vec![
        ("i1".to_owned(), "A".to_owned()),
        ("i2".to_owned(), "B".to_owned()),
    ];
    let mut starts = std::collections::BTreeSet::new();
    for seed in 0..16 {
        let r = c
            .simulate_mediation(pb::SimulateMediationRequest {
                id: id.clone(),
                voters: vec![hill, hill],
                rounds: 200,
                seed,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(choices(&r.nash), ab);
        assert_eq!(r.nash_utilities, vec![0.7, 0.8]);
        let (start, text) = (choices(&r.start), choices(&r.text));
        let expected = match (start[0].1.as_str(), start[1].1.as_str()) {
            ("B", "A") | ("A", "B") => ab.clone(),
            _ => start.clone(),
        };
        assert_eq!(text, expected, "seed {seed}: {r:?}");
        assert!(r.agreed && r.pareto_optimal, "{r:?}");
        if text == ab {
            assert_eq!(r.distance_to_nash, Some(0.0));
        }
        starts.insert(start);
    }
    assert!(
        starts.len() >= 3,
        "the seeds start from different texts: {starts:?}"
    );

    let err = c
        .simulate_mediation(pb::SimulateMediationRequest {
            id: id.clone(),
            voters: vec![
                hill,
                pb::Voter {
                    kind: Some(pb::voter::Kind::AnnealerTemperature(-1.0)),
                },
            ],
            rounds: 10,
            seed: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("voters[1].annealer_temperature"),
        "{}",
        err.message()
    );
    let err = c
        .simulate_mediation(pb::SimulateMediationRequest {
            id,
            voters: vec![hill],
            rounds: 10,
            seed: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("voters"), "{}", err.message());
}

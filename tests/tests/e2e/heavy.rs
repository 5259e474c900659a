//! Heavy computations are bounded: they run off the async workers (health and other calls
//! keep answering), at most `--max-heavy-calls` at once, stop when their caller goes away,
//! at the server's own bound (`--heavy-call-timeout-secs`) and at shutdown.

use std::time::{Duration, Instant};

use tonic::Code;
use tradepact_client::{authorized, with_deadline};
use tradepact_proto::negotiation_v1 as pb;
use tradepact_tests::{get_negotiation, Process};

/// A value in [0, 1) from `n` (SplitMix64's finaliser), so that utilities look random.
fn unit(n: u64) -> f64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as f64 / u64::MAX as f64
}

/// Three parties, 10 issues of 100 options, random utilities: the frontier merge runs for
/// minutes (an outside test saw 150 s and more).
async fn heavy_negotiation(n: &mut tradepact_client::negotiation::NegotiationClient) -> String {
    let issues: Vec<pb::Issue> = (0..10)
        .map(|i| pb::Issue {
            id: format!("i{i}"),
            label: String::new(),
            options: (0..100)
                .map(|o| pb::IssueOption {
                    id: format!("o{o}"),
                    label: String::new(),
                    trade_effects: vec![],
                })
                .collect(),
        })
        .collect();
    let parties = ["A", "B", "C"];
    let id = n
        .create_negotiation(pb::CreateNegotiationRequest {
            title: "heavy".into(),
            agreement: "test".into(),
            parties: parties.iter().map(|p| (*p).to_owned()).collect(),
            issues,
            deadline_rounds: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap()
        .id;
    for (k, party) in parties.iter().enumerate() {
        // A different pseudo-random value per party, issue and option.
        let values = (0..10)
            .map(|i| {
                let of = (0..100)
                    .map(|o| (format!("o{o}"), unit((k * 1000 + i * 100 + o) as u64)))
                    .collect();
                (format!("i{i}"), pb::OptionValues { values: of })
            })
            .collect();
        n.set_position(pb::SetPositionRequest {
            negotiation_id: id.clone(),
            party: (*party).into(),
            position: Some(pb::Position {
                weights: (0..10).map(|i| (format!("i{i}"), 1.0)).collect(),
                values,
                reservation_value: 0.0,
            }),
        })
        .await
        .unwrap();
    }
    id
}

fn analyze(id: &str, deadline: Duration) -> tonic::Request<pb::AnalyzeNegotiationRequest> {
    with_deadline(
        pb::AnalyzeNegotiationRequest {
            id: id.into(),
            ..Default::default()
        },
        deadline,
    )
}

/// Health and a light call answer within `within` while heavy work runs.
async fn still_answers(url: &str, within: Duration) {
    let channel = tradepact_client::channel(url).await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let started = Instant::now();
    let status = health
        .check(with_deadline(
            tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            },
            within,
        ))
        .await
        .expect("health answers")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let mut n = tradepact_client::negotiation::client(channel);
    n.list_negotiations(authorized(
        pb::ListNegotiationsRequest::default(),
        within,
        None,
    ))
    .await
    .expect("ListNegotiations answers");
    assert!(started.elapsed() < within, "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_calls_are_bounded_cancelled_and_do_not_block_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("n");
    let neg = Process::start(
        "tradepact-negotiation",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--max-heavy-calls",
            "1",
            "--heavy-call-timeout-secs",
            "3",
        ],
    );
    let mut n = tradepact_client::negotiation::connect(&neg.url())
        .await
        .unwrap();
    let id = heavy_negotiation(&mut n).await;

    // 1. The client gives up after 0.5 s; the service keeps answering meanwhile and after.
    let gave_up = {
        let mut n = n.clone();
        let id = id.clone();
        tokio::spawn(async move {
            n.analyze_negotiation(analyze(&id, Duration::from_millis(500)))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    still_answers(&neg.url(), Duration::from_secs(2)).await;
    let status = gave_up.await.unwrap().unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );

    // 2. Its computation stopped, so the one slot is free: the next analysis gets it and runs
    //    to the server's own bound. (Had the first kept running, this one would be refused
    //    after half a second.) A third, meanwhile, finds no free slot.
    let started = Instant::now();
    let bounded = {
        let mut n = n.clone();
        let id = id.clone();
        tokio::spawn(async move {
            n.analyze_negotiation(analyze(&id, Duration::from_secs(30)))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = n
        .analyze_negotiation(analyze(&id, Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("--max-heavy-calls"),
        "{refused:?}"
    );
    let simulate = n
        .simulate_negotiation(pb::SimulateNegotiationRequest {
            id: id.clone(),
            strategies: vec![
                pb::Strategy {
                    kind: Some(pb::strategy::Kind::TimeBasedExponent(1.0)),
                };
                3
            ],
            deadline_rounds: 1,
            seed: 1,
            record_as_branch: false,
        })
        .await;
    assert_eq!(
        simulate.err().map(|s| s.code()),
        Some(Code::ResourceExhausted)
    );
    still_answers(&neg.url(), Duration::from_secs(2)).await;
    let status = bounded.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status.message().contains("--heavy-call-timeout-secs"),
        "{status:?}"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(6),
        "the server's bound is 3 s: {took:?}"
    );

    // 3. An offer's evaluation needs the same frontier: bounded the same way, nothing recorded.
    let before = get_negotiation(&mut n, &id).await.event_count;
    let package = pb::Package {
        choices: (0..10)
            .map(|i| pb::Choice {
                issue_id: format!("i{i}"),
                option_id: "o0".into(),
            })
            .collect(),
    };
    let offer = n
        .submit_offer(pb::SubmitOfferRequest {
            negotiation_id: id.clone(),
            party: "A".into(),
            package: Some(package),
        })
        .await
        .unwrap_err();
    assert_eq!(offer.code(), Code::DeadlineExceeded, "{offer:?}");
    let after = get_negotiation(&mut n, &id).await.event_count;
    assert_eq!(before, after);

    // 4. SIGTERM during a heavy computation: the process exits promptly.
    let running = {
        let mut n = n.clone();
        let id = id.clone();
        tokio::spawn(async move {
            n.analyze_negotiation(analyze(&id, Duration::from_secs(30)))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    let exit = tokio::task::spawn_blocking(move || neg.terminate(Duration::from_secs(5)))
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(stopping.elapsed() < Duration::from_secs(5));
    let status = running.await.unwrap().unwrap_err();
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::Cancelled | Code::Unknown
        ),
        "{status:?}"
    );
}

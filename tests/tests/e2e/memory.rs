//! Memory bounds of the negotiation service: a negotiation's size in bytes, and lists that
//! leave out what can be large.

use tonic::Code;
use tradepact_proto::negotiation_v1 as pb;
use tradepact_tests::{
    get_negotiation, negotiation_client, start_data, start_negotiation, READY_TIMEOUT,
};

fn request(issues: usize, options: usize, label: usize) -> pb::CreateNegotiationRequest {
    pb::CreateNegotiationRequest {
        title: "big".into(),
        agreement: "test".into(),
        parties: vec!["US".into(), "KOR".into()],
        issues: (0..issues)
            .map(|i| pb::Issue {
                id: format!("i{i}"),
                label: "L".repeat(label),
                options: (0..options)
                    .map(|o| pb::IssueOption {
                        id: format!("o{o}"),
                        label: "L".repeat(label),
                        trade_effects: vec![],
                    })
                    .collect(),
            })
            .collect(),
        deadline_rounds: 10,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negotiation_is_bounded_in_bytes_and_lists_leave_out_issues() {
    let dir = tempfile::tempdir().unwrap();
    let data = start_data(&dir.path().join("data"));
    let neg = start_negotiation(&dir.path().join("neg"), &data.url());
    let mut n = negotiation_client(&neg).await;

    // About 10 MB of labels: refused, nothing kept (an outside test held 2.6 GB after 60).
    let refused = n
        .create_negotiation(request(64, 1000, 150))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::InvalidArgument,
        "{}",
        refused.message()
    );
    assert!(
        refused.message().contains("at most 1 MiB"),
        "{}",
        refused.message()
    );
    assert!(refused.message().len() < 1100);
    let listed = n
        .list_negotiations(pb::ListNegotiationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.negotiations.is_empty());

    // Within the bound (about 0.5 MB): created; listed without its issues, which
    // GetNegotiation has.
    let id = n
        .create_negotiation(request(32, 100, 150))
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap()
        .id;
    let listed = n
        .list_negotiations(pb::ListNegotiationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.negotiations.len(), 1);
    assert!(listed.negotiations[0].issues.is_empty());
    assert!(listed.negotiations[0].offers.is_empty());
    let got = get_negotiation(&mut n, &id).await;
    assert_eq!(got.issues.len(), 32);
}

/// Negotiations past the memory budget are evicted and read again from the log when used:
/// every call still sees every negotiation whole, before and after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiations_past_the_memory_budget_are_evicted_and_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let neg_dir = dir.path().join("neg");
    let start = || {
        tradepact_tests::Process::start_with_env(
            "tradepact-negotiation",
            &[
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                neg_dir.to_str().unwrap(),
                "--negotiation-memory-mib",
                "1",
            ],
            &[(
                "RUST_LOG",
                "info,tradepact_negotiation::app::registry=debug",
            )],
        )
    };
    let neg = start();
    let mut n = negotiation_client(&neg).await;
    // Eight negotiations of about 300 kB: 2.4 MB against a budget of 1 MiB.
    let mut ids = Vec::new();
    for _ in 0..8 {
        let created = n.create_negotiation(request(20, 100, 140)).await.unwrap();
        ids.push(created.into_inner().negotiation.unwrap().id);
    }
    let package = |option: &str| pb::Package {
        choices: (0..20)
            .map(|i| pb::Choice {
                issue_id: format!("i{i}"),
                option_id: option.into(),
            })
            .collect(),
    };
    // Round robin: each call may need a negotiation evicted by the previous ones.
    for round in 0..3 {
        for id in &ids {
            let party = if round % 2 == 0 { "US" } else { "KOR" };
            n.submit_offer(pb::SubmitOfferRequest {
                negotiation_id: id.clone(),
                party: party.into(),
                package: Some(package(&format!("o{round}"))),
            })
            .await
            .unwrap();
            if round < 2 {
                let other = if party == "US" { "KOR" } else { "US" };
                n.respond_to_offer(pb::RespondToOfferRequest {
                    negotiation_id: id.clone(),
                    party: other.into(),
                    offer_id: round,
                    accept: false,
                })
                .await
                .unwrap();
            }
        }
    }
    // Logged during the calls above; the log reaches the test a little later.
    neg.wait_for_log("negotiation evicted from memory", READY_TIMEOUT);
    let check = |n: tradepact_client::negotiation::NegotiationClient| {
        let ids = ids.clone();
        async move {
            let mut n = n;
            for id in &ids {
                let got = get_negotiation(&mut n, id).await;
                assert_eq!(got.offers.len(), 3, "{id}");
                assert_eq!(got.issues.len(), 20, "{id}");
                // created, 3 offers, 2 rejections
                assert_eq!(got.event_count, 6, "{id}");
            }
            let listed = n
                .list_negotiations(pb::ListNegotiationsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .negotiations;
            assert_eq!(listed.len(), 8);
            assert!(listed
                .iter()
                .all(|l| l.event_count == 6 && l.issues.is_empty()));
        }
    };
    check(n).await;
    drop(neg);
    let neg = start();
    check(negotiation_client(&neg).await).await;
}

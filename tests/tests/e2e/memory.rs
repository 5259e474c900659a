//! Memory bounds of the negotiation service: a negotiation's size in bytes, and lists that
//! leave out what can be large.

use tonic::Code;
use tradepact_proto::negotiation_v1 as pb;
use tradepact_tests::{negotiation_client, start_data, start_negotiation};

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
    let got = n
        .get_negotiation(pb::GetNegotiationRequest {
            id,
            include_positions: false,
        })
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap();
    assert_eq!(got.issues.len(), 32);
}

//! Cluster mode over a three-node NATS JetStream cluster on loopback: data nodes whose stores
//! are views of one data stream, and negotiation replicas whose event log is a stream.
//! - Negotiations: one created on a replica is read on the other; ids stay dense across
//!   replicas; concurrent offers through both replicas are recorded exactly once each (one wins
//!   each race, the other is told to read again), and both replicas hold, and tell watchers,
//!   the same history; the log survives the loss of a NATS node and of a replica, and a
//!   follower the stopping of the stream's leader; TLS to NATS; a record larger than a NATS
//!   message refused.
//! - Data: read-your-writes across nodes, a node killed mid-ingest catches up, the stream and
//!   meta leaders killed during ingests lose no acknowledged write, writes need a quorum (and
//!   answer UNAVAILABLE within their deadline without one) while reads answer, new nodes start
//!   from a snapshot after the stream was cut.
//! - `tradepact up --cluster` runs all of it in one command.

use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::Code;
use tradepact_client::data::DataClient;
use tradepact_client::negotiation::NegotiationClient;
use tradepact_proto::data_v1 as data_pb;
use tradepact_proto::negotiation_v1 as pb;
use tradepact_tests::{
    data_client, negotiation_client, start_data, start_data_replica, start_data_replica_with,
    start_negotiation_replica, start_negotiation_replica_with, write_request, NatsCluster,
};

fn create() -> pb::CreateNegotiationRequest {
    let issue = |id: &str, options: [&str; 2]| pb::Issue {
        id: id.into(),
        label: id.into(),
        options: options
            .map(|o| pb::IssueOption {
                id: o.into(),
                label: o.into(),
                trade_effects: vec![],
            })
            .to_vec(),
    };
    pb::CreateNegotiationRequest {
        title: "replicated".into(),
        agreement: "test FTA".into(),
        parties: vec!["US".into(), "KOR".into()],
        issues: vec![
            issue("tariff", ["keep", "cut"]),
            issue("quota", ["high", "low"]),
        ],
        deadline_rounds: 5,
        ..Default::default()
    }
}

fn offer(id: &str, party: &str, tariff: &str, quota: &str) -> pb::SubmitOfferRequest {
    let choice = |issue: &str, option: &str| pb::Choice {
        issue_id: issue.into(),
        option_id: option.into(),
    };
    pb::SubmitOfferRequest {
        negotiation_id: id.into(),
        party: party.into(),
        package: Some(pb::Package {
            choices: vec![choice("tariff", tariff), choice("quota", quota)],
        }),
    }
}

/// The first `n` events of negotiation `id` as a replica tells a watcher: (number, JSON).
async fn history(c: &mut NegotiationClient, id: &str, n: usize) -> Vec<(u64, String)> {
    let request = pb::WatchNegotiationRequest {
        id: id.into(),
        from_event: 0,
        include_positions: false,
    };
    let mut watch = c.watch_negotiation(request).await.unwrap().into_inner();
    let mut events = Vec::new();
    while events.len() < n {
        let e = tokio::time::timeout(Duration::from_secs(20), watch.next())
            .await
            .expect("the replica tells every event")
            .expect("the stream stays open")
            .unwrap();
        events.push((e.event_number, e.json));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_negotiations_and_record_each_concurrent_offer_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let data = start_data(&dir.path().join("data"));
    let a = start_negotiation_replica(&nats.urls(), &data.url());
    let b = start_negotiation_replica(&nats.urls(), &data.url());
    let (mut ca, mut cb) = (negotiation_client(&a).await, negotiation_client(&b).await);

    // Created on A, read on B at once; the next id, taken on B, follows A's.
    let n = ca.create_negotiation(create()).await.unwrap().into_inner();
    let id = n.negotiation.unwrap().id;
    let on_b = cb
        .get_negotiation(pb::GetNegotiationRequest {
            id: id.clone(),
            include_positions: false,
        })
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap();
    assert_eq!((on_b.title.as_str(), on_b.parties.len()), ("replicated", 2));
    let second = cb.create_negotiation(create()).await.unwrap().into_inner();
    let number = |id: &str| id.trim_start_matches("neg-").parse::<u64>().unwrap();
    assert_eq!(number(&second.negotiation.unwrap().id), number(&id) + 1);

    // Each round, the party whose turn it is offers through both replicas at once: one offer
    // is recorded, the other replica's caller is told the negotiation changed.
    let mut recorded = Vec::new();
    for round in 0..8 {
        let party = ["US", "KOR"][round % 2];
        let (ra, rb) = tokio::join!(
            ca.submit_offer(offer(&id, party, "keep", "high")),
            cb.submit_offer(offer(&id, party, "cut", "low"))
        );
        let (won, lost) = match (ra, rb) {
            (Ok(o), Err(e)) => ((o.into_inner().offer.unwrap(), "[0,0]"), e),
            (Err(e), Ok(o)) => ((o.into_inner().offer.unwrap(), "[1,1]"), e),
            other => panic!("round {round}: one offer and one refusal, got {other:?}"),
        };
        assert!(
            matches!(lost.code(), Code::Aborted | Code::FailedPrecondition),
            "round {round}: {lost:?}"
        );
        assert_eq!(won.0.id as usize, round, "round {round}");
        recorded.push(won);
    }

    // Both replicas hold and tell the same history: the creation and the eight offers, each
    // acknowledged one at its place.
    let (on_a, on_b) = (
        history(&mut ca, &id, 9).await,
        history(&mut cb, &id, 9).await,
    );
    assert_eq!(on_a, on_b);
    assert_eq!(
        on_a.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        (0..9).collect::<Vec<u64>>()
    );
    // (Packages are stored as option indices: keep/high [0,0], cut/low [1,1].)
    for ((offer, package), (_, json)) in recorded.iter().zip(&on_a[1..]) {
        let party = ["US", "KOR"][offer.id as usize % 2];
        assert_eq!(offer.proposer, party);
        let made =
            format!("{{\"type\":\"offer_made\",\"party\":\"{party}\",\"package\":{package},");
        assert!(json.starts_with(&made), "{json}");
    }

    // One NATS node killed: both replicas still record and read (a quorum of two is left);
    // restarted, it catches up.
    nats.nodes[0].kill9();
    let third = cb.create_negotiation(create()).await.unwrap().into_inner();
    let third = third.negotiation.unwrap().id;
    let got = ca
        .get_negotiation(pb::GetNegotiationRequest {
            id: third.clone(),
            include_positions: false,
        })
        .await
        .unwrap();
    assert_eq!(got.into_inner().negotiation.unwrap().id, third);
    nats.nodes[0].restart();

    // A replica killed and started again reads every negotiation back from the stream.
    a.kill9();
    let a = start_negotiation_replica(&nats.urls(), &data.url());
    let mut ca = negotiation_client(&a).await;
    assert_eq!(history(&mut ca, &id, 9).await, on_b);
    let listed = ca
        .list_negotiations(pb::ListNegotiationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.negotiations.len(), 3);
}

/// The connection to NATS over TLS with a client certificate (`--nats-ca`, `--nats-cert`,
/// `--nats-key`): the replica records and reads; without its certificate the server refuses
/// it and the replica stops with the reason instead of serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_log_speaks_tls_to_nats() {
    let dir = tempfile::tempdir().unwrap();
    let pki = crate::security::Pki::new(dir.path());
    let tls = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true }}",
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem")
    );
    let nats = NatsCluster::start_with(&dir.path().join("nats"), 1, &tls);
    let url = nats.urls().replace("nats://", "tls://");
    let data = start_data(&dir.path().join("data"));
    let with = |cert: bool| {
        let mut args = vec![
            "--listen".to_owned(),
            "127.0.0.1:0".into(),
            "--nats".into(),
            url.clone(),
            "--nats-replicas".into(),
            "1".into(),
            "--nats-ca".into(),
            pki.path("ca.pem"),
            "--data-service".into(),
            data.url(),
        ];
        if cert {
            args.extend(["--nats-cert".into(), pki.path("client.pem")]);
            args.extend(["--nats-key".into(), pki.path("client.key")]);
        }
        args
    };
    let args = with(true);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let replica = tradepact_tests::Process::start("tradepact-negotiation", &args);
    let mut c = negotiation_client(&replica).await;
    let id = (c.create_negotiation(create()).await.unwrap().into_inner())
        .negotiation
        .unwrap()
        .id;
    let read = c
        .get_negotiation(pb::GetNegotiationRequest {
            id: id.clone(),
            include_positions: false,
        })
        .await
        .unwrap();
    assert_eq!(read.into_inner().negotiation.unwrap().id, id);

    let out = std::process::Command::new(tradepact_tests::binary("tradepact-negotiation"))
        .args(with(false))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("listening on"), "{stderr}");
    assert!(stderr.contains("CertificateRequired"), "{stderr}");
}

fn data_key(product: &str) -> data_pb::SeriesKey {
    tradepact_tests::key(
        "KOR",
        "USA",
        data_pb::Flow::Export,
        data_pb::TradeKind::Goods,
        product,
        data_pb::Frequency::Monthly,
    )
}

/// A read asking for at least write `sequence`.
fn at_least<T>(message: T, sequence: u64) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = sequence.to_string().parse().unwrap();
    request
        .metadata_mut()
        .insert("tradepact-min-sequence", value);
    request
}

/// Every point a node holds, in key and period order, after it has applied `sequence`.
async fn everything(c: &mut DataClient, sequence: u64) -> Vec<(String, String, f64)> {
    let list = data_pb::ListSeriesRequest {
        page_size: 1000,
        ..Default::default()
    };
    let listed = c.list_series(at_least(list, sequence)).await.unwrap();
    let mut out = Vec::new();
    for info in listed.into_inner().series {
        let key = info.key.unwrap();
        let get = data_pb::GetSeriesRequest {
            key: Some(key.clone()),
            ..Default::default()
        };
        let series = c.get_series(at_least(get, sequence)).await.unwrap();
        for v in series.into_inner().values {
            out.push((key.product.clone(), v.period, v.value_usd));
        }
    }
    out
}

/// Two data nodes as views of one data stream: a write through one is read on the other at
/// its sequence; a node killed during an ingest through the other catches up to the same
/// points; a read at a sequence not applied in time says how far the node is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_data_nodes_apply_the_stream_alike_and_read_their_writes() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let a = start_data_replica(&nats.urls(), &dir.path().join("a"));
    let b = start_data_replica(&nats.urls(), &dir.path().join("b"));
    let (mut ca, mut cb) = (data_client(&a).await, data_client(&b).await);

    // Read-your-writes across nodes.
    let written = ca
        .write_points(write_request(
            data_key("HS:87"),
            &[("2017-01", 1.0), ("2017-02", 2.0)],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written.inserted, 2);
    let get = data_pb::GetSeriesRequest {
        key: Some(data_key("HS:87")),
        ..Default::default()
    };
    let on_b = cb
        .get_series(at_least(get.clone(), written.sequence))
        .await
        .unwrap();
    let values: Vec<f64> = on_b
        .into_inner()
        .values
        .iter()
        .map(|v| v.value_usd)
        .collect();
    assert_eq!(values, vec![1.0, 2.0]);
    // A write through B, then through A again: sequences of one stream.
    let through_b = cb
        .write_points(write_request(data_key("HS:87"), &[("2017-03", 3.0)]))
        .await
        .unwrap()
        .into_inner();
    assert!(through_b.sequence > written.sequence);
    // A user's group defined through A is a message of the stream too: B has it once it has
    // applied a write made after it.
    let group = data_pb::Group {
        name: "MY_PARTNERS".into(),
        description: "Korea and Japan".into(),
        members: ["KOR", "JPN"]
            .map(|code| data_pb::GroupMember {
                code: code.into(),
                from_year: 2012,
                until_year: 0,
            })
            .to_vec(),
        user_defined: true,
    };
    ca.define_group(data_pb::DefineGroupRequest {
        group: Some(group.clone()),
    })
    .await
    .unwrap();
    let after = ca
        .write_points(write_request(data_key("HS:88"), &[("2017-01", 1.0)]))
        .await
        .unwrap()
        .into_inner();
    let listed = data_pb::ListGroupsRequest {
        name: "MY_PARTNERS".into(),
        as_of_year: 0,
    };
    let on_b = cb
        .list_groups(at_least(listed, after.sequence))
        .await
        .unwrap();
    let groups = on_b.into_inner().groups;
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].members.len(), 2);
    assert_eq!(groups[0].description, "Korea and Japan");

    // A sequence nobody wrote: UNAVAILABLE within the request's deadline, saying how far.
    let mut far = at_least(get.clone(), through_b.sequence + 1000);
    far.set_timeout(Duration::from_millis(300));
    let e = cb.get_series(far).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(
        e.message().contains("has applied the writes up to"),
        "{e:?}"
    );

    // B killed during an ingest through A, started again on its store: it catches up. A
    // answers reads throughout.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut reader = data_client(&a).await;
    let reads = tokio::spawn(async move {
        let mut n = 0u32;
        while !*stopped.borrow() {
            let values = reader
                .get_series(get.clone())
                .await
                .unwrap()
                .into_inner()
                .values;
            assert_eq!(values.len(), 3);
            n += 1;
        }
        n
    });
    let ingest = tokio::spawn(async move {
        let mut last = 0;
        for i in 0..40u32 {
            let values: Vec<(String, f64)> = (1..=12)
                .map(|m| (format!("{}-{m:02}", 1990 + i), f64::from(i * 100 + m)))
                .collect();
            let values: Vec<(&str, f64)> = values.iter().map(|(p, v)| (p.as_str(), *v)).collect();
            let product = format!("HS:{:04}", 8700 + i % 5);
            let w = ca
                .write_points(write_request(data_key(&product), &values))
                .await
                .unwrap()
                .into_inner();
            last = w.sequence;
        }
        (ca, last)
    });
    b.kill9();
    let (mut ca, last) = ingest.await.unwrap();
    let b = start_data_replica(&nats.urls(), &dir.path().join("b"));
    let mut cb = data_client(&b).await;
    let (on_a, on_b) = (
        everything(&mut ca, last).await,
        everything(&mut cb, last).await,
    );
    assert_eq!(on_a.len(), 4 + 40 * 12);
    assert_eq!(on_a, on_b);
    stop.send_replace(true);
    assert!(reads.await.unwrap() > 10, "A answered reads throughout");

    // A watch on B resumed from a sequence A answered: the write at it, by stream sequence,
    // then a live write through A.
    let watch = data_pb::WatchSeriesRequest {
        filter: Some(data_pb::SeriesFilter::default()),
        from_sequence: last,
        ..Default::default()
    };
    let mut watch = cb.watch_series(watch).await.unwrap().into_inner();
    let replayed = next_watched(&mut watch).await;
    assert_eq!(replayed.sequence, last);
    let live = ca
        .write_points(write_request(data_key("HS:99"), &[("2020-01", 9.0)]))
        .await
        .unwrap()
        .into_inner();
    let seen = next_watched(&mut watch).await;
    assert_eq!(
        (seen.sequence, seen.key.unwrap().product),
        (live.sequence, "HS:99".to_owned())
    );
}

async fn next_watched(
    watch: &mut tonic::Streaming<data_pb::WatchSeriesResponse>,
) -> data_pb::WatchSeriesResponse {
    tokio::time::timeout(Duration::from_secs(20), watch.message())
        .await
        .expect("the watch sends")
        .unwrap()
        .expect("the watch stays open")
}

/// The stream's leader killed during an ingest through one data node, then the JetStream meta
/// leader during another: every acknowledged write is on both nodes afterwards, each point
/// once (the same points, the same counts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_the_stream_leader_killed_during_an_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let a = start_data_replica(&nats.urls(), &dir.path().join("a"));
    let b = start_data_replica(&nats.urls(), &dir.path().join("b"));
    let (mut ca, mut cb) = (data_client(&a).await, data_client(&b).await);
    let first = ca
        .write_points(write_request(data_key("HS:01"), &[("2000-01", 1.0)]))
        .await
        .unwrap()
        .into_inner();
    let leader = nats.stream_leader("TRADEPACT_DATA").await;
    let ingest = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        for i in 0..60u32 {
            let product = format!("HS:{:02}", 10 + i % 7);
            let period = format!("{}-{:02}", 2000 + i / 12, i % 12 + 1);
            let request = write_request(data_key(&product), &[(period.as_str(), f64::from(i))]);
            // A write the cluster could not take in time is not acknowledged: not counted.
            if let Ok(w) = ca.write_points(request).await {
                acknowledged.push((product, period, f64::from(i), w.into_inner().sequence));
            }
        }
        (ca, acknowledged)
    });
    // Killed as the ingest runs (whatever point it has reached).
    tokio::task::yield_now().await;
    nats.nodes[leader].kill9();
    let (mut ca, acknowledged) = ingest.await.unwrap();
    assert!(
        acknowledged.len() >= 50,
        "{} of 60 acknowledged",
        acknowledged.len()
    );
    nats.nodes[leader].restart();
    let last = acknowledged
        .iter()
        .map(|w| w.3)
        .max()
        .unwrap()
        .max(first.sequence);
    let (on_a, on_b) = (
        everything(&mut ca, last).await,
        everything(&mut cb, last).await,
    );
    assert_eq!(on_a, on_b);
    for (product, period, value, _) in &acknowledged {
        let found = on_a
            .iter()
            .filter(|(p, q, _)| p == product && q == period)
            .collect::<Vec<_>>();
        assert_eq!(found.len(), 1, "{product} {period}");
        assert_eq!(found[0].2, *value, "{product} {period}");
    }

    // The meta leader (the cluster's own Raft leader) killed during another ingest: the same.
    let meta = nats.meta_leader();
    let ingest = tokio::spawn(async move {
        let mut last = 0;
        for i in 0..30u32 {
            let request = write_request(
                data_key("HS:77"),
                &[(&format!("1980-{:02}", i % 12 + 1), f64::from(i))],
            );
            if let Ok(w) = ca.write_points(request).await {
                last = w.into_inner().sequence;
            }
        }
        (ca, last)
    });
    tokio::task::yield_now().await;
    nats.nodes[meta].kill9();
    let (mut ca, last) = ingest.await.unwrap();
    assert!(last > 0, "no write acknowledged with the meta leader gone");
    nats.nodes[meta].restart();
    assert_eq!(
        everything(&mut ca, last).await,
        everything(&mut cb, last).await
    );
}

/// One NATS node stopped (SIGSTOP; not the stream's leader, whose loss the kill test covers):
/// writes go on. Two stopped: a data write and an offer fail with UNAVAILABLE within their
/// deadline (4 s), while reads of what the nodes hold answer, the data node telling how far it
/// has applied. Both continued: writes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_a_quorum_and_reads_answer_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let a = start_data_replica(&nats.urls(), &dir.path().join("a"));
    let mut ca = data_client(&a).await;
    let r = start_negotiation_replica(&nats.urls(), &a.url());
    let mut cr = negotiation_client(&r).await;
    let created = cr.create_negotiation(create()).await.unwrap().into_inner();
    let id = created.negotiation.unwrap().id;
    let write = |period: &str| {
        let mut r = tonic::Request::new(write_request(data_key("HS:87"), &[(period, 1.0)]));
        r.set_timeout(Duration::from_secs(25));
        r
    };
    let before = ca
        .write_points(write("2017-01"))
        .await
        .unwrap()
        .into_inner();
    // The stream leader stays: the leader lost is the kill test's; here, the quorum.
    let leader = nats.stream_leader("TRADEPACT_DATA").await;
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();

    nats.nodes[others[0]].signal("STOP");
    let one_stopped = ca
        .write_points(write("2017-02"))
        .await
        .unwrap()
        .into_inner();
    assert!(one_stopped.sequence > before.sequence);

    // Without a quorum: UNAVAILABLE within the call's deadline (the node gives up at three
    // quarters of it, in time to say why).
    nats.nodes[others[1]].signal("STOP");
    let started = std::time::Instant::now();
    let mut lost = write("2017-03");
    lost.set_timeout(Duration::from_secs(4));
    let e = ca.write_points(lost).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // So is an offer, and a negotiation read answers.
    let started = std::time::Instant::now();
    let mut lost = tonic::Request::new(offer(&id, "US", "cut", "high"));
    lost.set_timeout(Duration::from_secs(4));
    let e = cr.submit_offer(lost).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let read = pb::GetNegotiationRequest {
        id: id.clone(),
        include_positions: false,
    };
    let held = cr.get_negotiation(read).await.unwrap().into_inner();
    assert_eq!(held.negotiation.unwrap().title, "replicated");
    let get = data_pb::GetSeriesRequest {
        key: Some(data_key("HS:87")),
        ..Default::default()
    };
    let read = ca.get_series(get).await.unwrap();
    let applied: u64 = read
        .metadata()
        .get("tradepact-applied-sequence")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(applied >= one_stopped.sequence, "{applied}");
    let values: Vec<String> = read
        .into_inner()
        .values
        .into_iter()
        .map(|v| v.period)
        .collect();
    assert!(
        values.starts_with(&["2017-01".to_owned(), "2017-02".to_owned()]),
        "{values:?}"
    );

    nats.nodes[others[0]].signal("CONT");
    nats.nodes[others[1]].signal("CONT");
    let after = ca
        .write_points(write("2017-04"))
        .await
        .unwrap()
        .into_inner();
    assert!(after.sequence > one_stopped.sequence);
}

/// A negotiation larger than the NATS servers' largest message is refused with
/// RESOURCE_EXHAUSTED, naming both sizes, and nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negotiation_larger_than_a_nats_message_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // The later max_payload wins: 64 kB.
    let nats = NatsCluster::start_with(&dir.path().join("nats"), 1, "max_payload: 65536");
    let data = start_data(&dir.path().join("data"));
    let replica =
        start_negotiation_replica_with(&nats.urls(), &data.url(), &["--nats-replicas", "1"]);
    let mut c = negotiation_client(&replica).await;
    let mut big = create();
    big.issues[0].label = "L".repeat(200);
    for o in 0..400 {
        big.issues[0].options.push(pb::IssueOption {
            id: format!("o{o}"),
            label: "x".repeat(200),
            trade_effects: vec![],
        });
    }
    let e = c.create_negotiation(big).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("65536 bytes"), "{e:?}");
    let listed = c
        .list_negotiations(pb::ListNegotiationsRequest::default())
        .await
        .unwrap();
    assert!(listed.into_inner().negotiations.is_empty());
    // A small one still goes in.
    c.create_negotiation(create()).await.unwrap();
}

/// `n` writes of two years of monthly points to product `HS:7xxx` series through `c`; the
/// last write's sequence.
async fn ingest(c: &mut DataClient, writes: std::ops::Range<u32>) -> u64 {
    let mut last = 0;
    for i in writes {
        let values: Vec<(String, f64)> = (0..24)
            .map(|m| {
                (
                    format!("{}-{:02}", 2000 + m / 12, m % 12 + 1),
                    f64::from(i * 100 + m),
                )
            })
            .collect();
        let values: Vec<(&str, f64)> = values.iter().map(|(p, v)| (p.as_str(), *v)).collect();
        let product = format!("HS:{:04}", 7000 + i);
        let w = c.write_points(write_request(data_key(&product), &values));
        last = w.await.unwrap().into_inner().sequence;
    }
    last
}

/// A new data node starts from the newest snapshot in the JetStream object store and the
/// messages after it; a later snapshot cuts the stream (the messages up to the snapshot
/// before it are removed), and still a new node ends with every point. A node whose store
/// ends before the stream's first message sets it aside at start and restores the snapshot in
/// its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_data_node_starts_from_the_newest_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let urls = nats.urls();
    // A takes a snapshot whenever it has applied a write since the last (about 100 bytes);
    // B none (the default is every 256 MiB).
    let every = ["--snapshot-every-mib", "0.0001"];
    let a = start_data_replica_with(&urls, &dir.path().join("a"), &every);
    let b = start_data_replica(&urls, &dir.path().join("b"));
    let (mut ca, mut cb) = (data_client(&a).await, data_client(&b).await);
    let first = ingest(&mut ca, 0..1).await;
    assert_eq!(everything(&mut cb, first).await.len(), 24);
    b.kill9();

    // Two ingests, each followed by a snapshot at its last write: after the second, the
    // stream begins after the first's.
    let client = async_nats::connect(urls.split(',').next().unwrap())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let snapshot_at = || async {
        let bucket = js.get_object_store("TRADEPACT_DATA_SNAPSHOTS").await.ok()?;
        let info = bucket.info("store").await.ok()?;
        info.metadata["sequence"].parse::<u64>().ok()
    };
    let mut lasts = Vec::new();
    for writes in [1..60, 60..120] {
        let last = ingest(&mut ca, writes).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while snapshot_at().await != Some(last) {
            assert!(
                std::time::Instant::now() < deadline,
                "no snapshot at {last}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        lasts.push(last);
    }
    let mut stream = js.get_stream("TRADEPACT_DATA").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let cut = loop {
        let first = stream.info().await.unwrap().state.first_sequence;
        if first > lasts[0] {
            break first;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream was not cut"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        cut <= lasts[1],
        "cut at {cut}, past the newest snapshot {}",
        lasts[1]
    );
    assert!(a.log().contains("cut the stream"), "{}", a.log());

    // C, on an empty directory: the newest snapshot, then the stream after it.
    let c = start_data_replica(&urls, &dir.path().join("c"));
    c.wait_for_log("restored the newest snapshot", Duration::from_secs(5));
    assert!(
        c.log().contains(&format!("sequence={}", lasts[1])),
        "{}",
        c.log()
    );
    let mut cc = data_client(&c).await;
    let last = ingest(&mut ca, 120..130).await;
    let (on_a, on_c) = (
        everything(&mut ca, last).await,
        everything(&mut cc, last).await,
    );
    assert_eq!(on_a.len(), 130 * 24);
    assert_eq!(on_a, on_c);

    // B's store ends before the stream's first message: set aside, the snapshot restored.
    let b = start_data_replica(&urls, &dir.path().join("b"));
    b.wait_for_log("set aside", Duration::from_secs(5));
    let mut cb = data_client(&b).await;
    assert_eq!(everything(&mut cb, last).await, on_a);
    // Named by the last message its store had made durable (0 or the first write: a node in
    // cluster mode does not fsync each message, the stream holds it).
    let aside =
        ["b.behind-0".to_owned(), format!("b.behind-{first}")].map(|name| dir.path().join(name));
    assert!(aside.iter().any(|a| a.join("conf").exists()), "{}", b.log());
}

/// `tradepact up --cluster`: three NATS nodes, two data nodes and two negotiation replicas in
/// one command; a write through the first data node is read on the second at its sequence, the
/// KORUS sample among what both hold; a negotiation created on one replica is read on the
/// other; SIGTERM stops everything, the NATS servers included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tradepact_up_cluster_runs_every_node_on_this_machine() {
    let home = tempfile::tempdir().unwrap();
    let up = tradepact_tests::Process::start(
        "tradepact",
        &[
            "up",
            "--cluster",
            "--home",
            home.path().to_str().unwrap(),
            "--data-listen",
            "127.0.0.1:0",
            "--negotiation-listen",
            "127.0.0.1:0",
        ],
    );
    up.wait_for_log("ready: NATS JetStream on", Duration::from_secs(60));
    let log = up.log();
    let ready = log.lines().find(|l| l.contains("ready: NATS")).unwrap();
    let urls: Vec<&str> = ready
        .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
        .filter(|w| w.starts_with("http://") || w.starts_with("nats://"))
        .collect();
    assert_eq!(urls.len(), 7, "{ready}");
    let (nats, data, negotiation) = (&urls[..3], &urls[3..5], &urls[5..]);

    let mut d0 = tradepact_client::data::connect(data[0]).await.unwrap();
    let mut d1 = tradepact_client::data::connect(data[1]).await.unwrap();
    let w = d0
        .write_points(write_request(data_key("HS:87"), &[("2017-01", 1.0)]))
        .await
        .unwrap()
        .into_inner();
    let list = data_pb::ListSeriesRequest {
        page_size: 1000,
        ..Default::default()
    };
    let on_0 = d0.list_series(at_least(list.clone(), w.sequence)).await;
    let on_1 = d1.list_series(at_least(list, w.sequence)).await;
    let (on_0, on_1) = (on_0.unwrap().into_inner(), on_1.unwrap().into_inner());
    assert!(
        on_0.series.len() > 10,
        "the KORUS sample: {}",
        on_0.series.len()
    );
    assert_eq!(on_0.series, on_1.series);

    let mut n0 = tradepact_client::negotiation::connect(negotiation[0])
        .await
        .unwrap();
    let mut n1 = tradepact_client::negotiation::connect(negotiation[1])
        .await
        .unwrap();
    let created = n0.create_negotiation(create()).await.unwrap().into_inner();
    let id = created.negotiation.unwrap().id;
    let read = pb::GetNegotiationRequest {
        id,
        include_positions: false,
    };
    let on_1 = n1.get_negotiation(read).await.unwrap().into_inner();
    assert_eq!(on_1.negotiation.unwrap().title, "replicated");

    assert!(up.terminate(Duration::from_secs(30)).success());
    for url in nats {
        let addr = url.trim_start_matches("nats://");
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "NATS still listening on {addr}"
        );
    }
}

/// A negotiation replica follows the stream through the loss of the NATS node its consumer
/// lived on: the stream's leader stopped (SIGSTOP), an offer recorded through the other
/// replica reaches a watcher of the first once the stream has a new leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_goes_on_after_the_stream_leader_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let data = start_data(&dir.path().join("data"));
    let a = start_negotiation_replica(&nats.urls(), &data.url());
    let b = start_negotiation_replica(&nats.urls(), &data.url());
    let (mut ca, mut cb) = (negotiation_client(&a).await, negotiation_client(&b).await);
    let created = ca.create_negotiation(create()).await.unwrap().into_inner();
    let id = created.negotiation.unwrap().id;
    let request = pb::WatchNegotiationRequest {
        id: id.clone(),
        from_event: 0,
        include_positions: false,
    };
    let mut watch = cb.watch_negotiation(request).await.unwrap().into_inner();
    assert_eq!(next_event(&mut watch).await.event_number, 0);

    let leader = nats.stream_leader("TRADEPACT_NEGOTIATIONS").await;
    nats.nodes[leader].signal("STOP");
    let mut offer_request = tonic::Request::new(offer(&id, "US", "cut", "high"));
    offer_request.set_timeout(Duration::from_secs(30));
    ca.submit_offer(offer_request).await.unwrap();
    let told = next_event(&mut watch).await;
    assert_eq!(told.event_number, 1);
    assert!(told.json.contains("offer_made"), "{}", told.json);
    nats.nodes[leader].signal("CONT");
}

async fn next_event(
    watch: &mut tonic::Streaming<pb::WatchNegotiationResponse>,
) -> pb::WatchNegotiationResponse {
    tokio::time::timeout(Duration::from_secs(40), watch.next())
        .await
        .expect("the follower tells the event")
        .expect("the watch stays open")
        .unwrap()
}

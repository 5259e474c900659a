//! WatchSeries delivers matching writes as they happen; SIGTERM ends open watches and the
//! server exits cleanly.

use std::time::Duration;

use tokio_stream::StreamExt;
use tradepact_proto::data_v1 as pb;
use tradepact_tests::{data_client, key, start_data, write_request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_see_matching_writes_and_sigterm_ends_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let mut client = data_client(&server).await;

    // The call returns once the server has subscribed, so no write can slip past it.
    let mut watch = client
        .watch_series(pb::WatchSeriesRequest {
            filter: Some(pb::SeriesFilter {
                partner: "KOR".into(),
                ..Default::default()
            }),
            from_sequence: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let kor = key(
        "USA",
        "KOR",
        pb::Flow::Export,
        pb::TradeKind::Goods,
        "TOTAL",
        pb::Frequency::Annual,
    );
    let jpn = key(
        "USA",
        "JPN",
        pb::Flow::Export,
        pb::TradeKind::Goods,
        "TOTAL",
        pb::Frequency::Annual,
    );
    client
        .write_points(write_request(jpn, &[("2016", 5.0)]))
        .await
        .unwrap();
    client
        .write_points(write_request(kor.clone(), &[("2016", 42.3e9)]))
        .await
        .unwrap();

    let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("an event within 10 s")
        .expect("stream open")
        .unwrap();
    assert_eq!(event.key, Some(kor));
    assert_eq!(event.points.len(), 1);
    assert_eq!(
        (event.points[0].period.as_str(), event.points[0].value_usd),
        ("2016", 42.3e9)
    );
    assert_eq!(event.points[0].source, "e2e test");

    // SIGTERM: the open watch ends instead of holding the shutdown up.
    let terminated = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(8)));
    let end = tokio::time::timeout(Duration::from_secs(8), watch.next())
        .await
        .expect("stream ends");
    assert!(end.is_none() || end.unwrap().is_err());
    drop(client);
    let status = terminated.await.unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_from_a_write_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let mut client = data_client(&server).await;
    let kor = key(
        "USA",
        "KOR",
        pb::Flow::Export,
        pb::TradeKind::Goods,
        "TOTAL",
        pb::Frequency::Annual,
    );
    let mut sequences = Vec::new();
    for (year, value) in [("2014", 1.0), ("2015", 2.0), ("2016", 3.0)] {
        let r = client
            .write_points(write_request(kor.clone(), &[(year, value)]))
            .await
            .unwrap();
        sequences.push(r.into_inner().sequence);
    }
    assert_eq!(sequences, vec![1, 2, 3]);
    // 2015 is revised after the fact: a resumed watch replays current values.
    client
        .write_points(write_request(kor.clone(), &[("2015", 2.5)]))
        .await
        .unwrap();

    let mut watch = client
        .watch_series(pb::WatchSeriesRequest {
            filter: None,
            from_sequence: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let replayed: Vec<(u64, String, f64)> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            let e = tokio::time::timeout(Duration::from_secs(10), watch.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            v.push((
                e.sequence,
                e.points[0].period.clone(),
                e.points[0].value_usd,
            ));
        }
        v
    };
    assert_eq!(
        replayed,
        vec![
            (2, "2015".into(), 2.5),
            (3, "2016".into(), 3.0),
            (4, "2015".into(), 2.5)
        ]
    );
    // Then live writes, once each.
    client
        .write_points(write_request(kor.clone(), &[("2017", 4.0)]))
        .await
        .unwrap();
    let live = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((live.sequence, live.points[0].period.as_str()), (5, "2017"));
}

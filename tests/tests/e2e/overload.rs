//! Overload: past the global concurrency limit calls are refused at once with
//! RESOURCE_EXHAUSTED, and a watcher that does not read neither stalls writers nor other
//! watchers; it is told it fell behind.

use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use tonic::Code;
use tradepact_proto::data_v1 as pb;
use tradepact_tests::{data_client, key, write_request, Process};

const WRITES: u32 = 3000;

fn hs(code: &str) -> pb::SeriesKey {
    key(
        "USA",
        "KOR",
        pb::Flow::Import,
        pb::TradeKind::Goods,
        code,
        pb::Frequency::Annual,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_the_global_limit_are_shed_fast_and_served_again_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(
        "tradepact-data",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--max-concurrent-calls",
            "2",
        ],
    );
    let client = data_client(&server).await;
    // Two client streams that stay open hold both slots (a call holds one until it answers).
    let mut senders = Vec::new();
    let mut held = Vec::new();
    // A stream takes its slot when its first batch arrives: a read polling for it may have
    // the slot at that moment, and the stream is then refused; it is opened again.
    let open = |product: &str| {
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::StreamWritePointsRequest>(1);
        let mut c = client.clone();
        let call = tokio::spawn(async move {
            c.stream_write_points(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
        });
        let batch = write_request(hs(product), &[("2016", 1.0)]).series;
        tx.try_send(pb::StreamWritePointsRequest {
            series: batch,
            ..Default::default()
        })
        .unwrap();
        (tx, call)
    };
    for product in ["HS:87", "HS:88"] {
        let (tx, call) = open(product);
        held.push(call);
        senders.push(tx);
        // Its first batch is applied (readable), so it is being served, before the next call
        // starts. Once both streams hold their slot, the reads that poll for it are shed.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let read = client
                .clone()
                .get_series(pb::GetSeriesRequest {
                    key: Some(hs(product)),
                    ..Default::default()
                })
                .await;
            match read {
                Ok(_) => break,
                Err(e) if e.code() == Code::ResourceExhausted && product == "HS:88" => break,
                Err(e) if e.code() == Code::NotFound => {}
                Err(e) => panic!("{e:?}"),
            }
            if held.last().is_some_and(|h| h.is_finished()) {
                let refused = held.pop().unwrap().await.unwrap().unwrap_err();
                assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
                let (tx, call) = open(product);
                held.push(call);
                *senders.last_mut().unwrap() = tx;
            }
            assert!(Instant::now() < deadline, "the stream is not served");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // A third call is refused, fast.
    let start = Instant::now();
    let err = client
        .clone()
        .list_series(pb::ListSeriesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::ResourceExhausted,
        "{err:?}\n{}",
        server.log()
    );
    assert!(
        err.message().contains("maximum of 2 calls"),
        "{}",
        err.message()
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "shedding took {:?}",
        start.elapsed()
    );
    // The held calls finish normally, and the server serves again.
    drop(senders);
    for h in held {
        let summary = h.await.unwrap().unwrap().into_inner();
        assert_eq!(summary.batches, 1);
    }
    client
        .clone()
        .list_series(pb::ListSeriesRequest::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_does_not_read_stalls_nobody_and_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let server = tradepact_tests::start_data(dir.path());
    let mut client = data_client(&server).await;
    let filter = || pb::WatchSeriesRequest {
        filter: Some(pb::SeriesFilter {
            partner: "KOR".into(),
            ..Default::default()
        }),
        from_sequence: 0,
        ..Default::default()
    };
    // Each subscriber on its own connection, as separate clients are: on one HTTP/2
    // connection an unread stream would exhaust the shared flow-control window.
    // The slow subscriber's client buffers little (a 16 kB HTTP/2 window), as a slow
    // consumer on a constrained link would.
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .initial_stream_window_size(Some(16 * 1024))
        .connect()
        .await
        .unwrap();
    let mut slow_client = tradepact_client::data::client(channel);
    let mut fast_client = data_client(&server).await;
    let mut slow = slow_client
        .watch_series(filter())
        .await
        .unwrap()
        .into_inner();
    let mut fast = fast_client
        .watch_series(filter())
        .await
        .unwrap()
        .into_inner();
    let reader = tokio::spawn(async move {
        let mut seen = 0u32;
        while let Some(Ok(_)) = fast.next().await {
            seen += 1;
            if seen == WRITES {
                break;
            }
        }
        seen
    });
    // 3000 writes: well past the watch buffer (1024) and the slow client's window, while the
    // slow watcher reads nothing.
    let start = Instant::now();
    for i in 0..WRITES {
        let year = format!("{}", 1000 + i);
        client
            .write_points(write_request(hs("HS:87"), &[(year.as_str(), 1.0)]))
            .await
            .unwrap();
    }
    let writing = start.elapsed();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .unwrap()
            .unwrap(),
        WRITES
    );
    // The slow watcher gets what fit in its buffers, then the news that it was dropped.
    let mut received = 0;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.next())
            .await
            .unwrap()
        {
            Some(Ok(_)) => received += 1,
            Some(Err(e)) => break e,
            None => panic!("the stream ended without saying why after {received} events"),
        }
    };
    assert_eq!(
        end.code(),
        Code::ResourceExhausted,
        "{end:?} after {received}\n{}",
        server
            .log()
            .lines()
            .filter(|l| !l.contains("WritePoints"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        end.message().contains("fell"),
        "{} after {received}\n{}",
        end.message(),
        server
            .log()
            .lines()
            .filter(|l| !l.contains("WritePoints"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        received < WRITES,
        "the slow watcher got everything ({received})"
    );
    // It resumes from the sequence the message names: the writes it missed come again.
    let from: u64 = end
        .message()
        .rsplit("from_sequence = ")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no position in {:?}", end.message()));
    let mut resumed = data_client(&server)
        .await
        .watch_series(pb::WatchSeriesRequest {
            from_sequence: from,
            ..filter()
        })
        .await
        .unwrap()
        .into_inner();
    let first = resumed.next().await.unwrap().unwrap();
    assert_eq!(first.sequence, from);
    eprintln!("3000 durable writes in {writing:?} beside a stalled watcher; it got {received} events before being dropped");
}

/// Many watchers that never read: each is dropped once its queue holds 256 KiB, long before
/// it falls 1024 writes behind (an outside test left 2,000 such watchers in place after 72
/// writes, and the server at 162 MB); every write is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_that_never_read_are_dropped_by_the_bytes_they_hold() {
    const WATCHERS: usize = 100;
    const WRITES: u32 = 600;
    let dir = tempfile::tempdir().unwrap();
    let server = tradepact_tests::start_data(dir.path());
    let mut client = data_client(&server).await;
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS / 10 {
        // Ten watchers a connection, each with a small HTTP/2 window.
        let channel = tonic::transport::Endpoint::from_shared(server.url())
            .unwrap()
            .initial_stream_window_size(Some(16 * 1024))
            .initial_connection_window_size(Some(160 * 1024))
            .connect()
            .await
            .unwrap();
        for _ in 0..10 {
            let stream = tradepact_client::data::client(channel.clone())
                .watch_series(pb::WatchSeriesRequest::default())
                .await
                .unwrap()
                .into_inner();
            watchers.push(stream);
        }
    }
    // Writes of about 1.1 kB each (a 1000-byte source), none read by the watchers.
    let source = "s".repeat(1000);
    for i in 0..WRITES {
        let mut request = write_request(hs("HS:87"), &[(format!("{}", 1000 + i).as_str(), 1.0)]);
        request.series[0].source = source.clone();
        client.write_points(request).await.unwrap();
    }
    // Each watcher got part, then the news that it was dropped, with where to resume.
    for (n, mut w) in watchers.into_iter().enumerate() {
        let mut received = 0u32;
        let end = loop {
            match tokio::time::timeout(Duration::from_secs(10), w.next())
                .await
                .unwrap()
            {
                Some(Ok(_)) => received += 1,
                Some(Err(e)) => break e,
                None => panic!("watcher {n} ended without saying why after {received}"),
            }
        };
        assert_eq!(end.code(), Code::ResourceExhausted, "{end:?}");
        assert!(end.message().contains("queue is full"), "{}", end.message());
        assert!(
            end.message().contains("from_sequence = "),
            "{}",
            end.message()
        );
        assert!(received < WRITES, "watcher {n} got all {received}");
    }
}

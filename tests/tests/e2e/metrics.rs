//! Prometheus metrics: both services with `--metrics-listen 127.0.0.1:0` count and time every
//! call by method and status, gauge calls in flight and watchers open, the data service counts
//! the points it wrote and gauges its store's size, the negotiation service gauges its
//! negotiations and its analysis cache against its budget; the endpoint answers `GET /metrics`
//! (anything else 404), scraped over a real socket.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tradepact_proto::data_v1 as pb;
use tradepact_proto::negotiation_v1 as npb;
use tradepact_tests::{
    binary, data_client, key, negotiation_client, write_request, Process, READY_TIMEOUT,
};

/// The address of a process's `metrics on ADDR` line.
fn metrics_addr(p: &Process) -> String {
    p.wait_for_log("metrics on ", READY_TIMEOUT);
    let log = p.log();
    let line = log.lines().find(|l| l.contains("metrics on ")).unwrap();
    let addr = line.rsplit("metrics on ").next().unwrap();
    addr.split_whitespace().next().unwrap().to_owned()
}

/// `GET path` over HTTP/1.1: (status line, body).
async fn get(addr: &str, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// The value of the sample whose line names `metric` and every one of `labels`.
fn sample(body: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) || l.starts_with(&format!("{metric} ")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_services_count_and_time_every_call_by_method_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("trade");
    let data = Process::start(
        "tradepact-data",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            store.to_str().unwrap(),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let scrape = metrics_addr(&data);
    let mut client = data_client(&data).await;
    let series = key(
        "USA",
        "KOR",
        pb::Flow::Export,
        pb::TradeKind::Goods,
        "TOTAL",
        pb::Frequency::Annual,
    );
    let write = write_request(series.clone(), &[("2015", 1e9), ("2016", 2e9)]);
    client.write_points(write.clone()).await.unwrap();
    client.write_points(write).await.unwrap();
    let missing = pb::GetSeriesRequest {
        key: Some(key(
            "USA",
            "JPN",
            pb::Flow::Export,
            pb::TradeKind::Goods,
            "TOTAL",
            pb::Frequency::Annual,
        )),
        ..Default::default()
    };
    let status = client.get_series(missing).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);

    // Paths of methods the server does not serve, chosen by the caller, share one label: 300
    // of them do not push the real methods out of the metrics.
    let mut grpc = tonic::client::Grpc::new(tradepact_client::channel(&data.url()).await.unwrap());
    for i in 0..300 {
        grpc.ready().await.unwrap();
        let path = http::uri::PathAndQuery::try_from(format!("/x.Made{i}/Up")).unwrap();
        let answer: Result<tonic::Response<()>, _> = grpc
            .unary(
                tonic::Request::new(()),
                path,
                tonic_prost::ProstCodec::<(), ()>::default(),
            )
            .await;
        assert_eq!(answer.unwrap_err().code(), tonic::Code::Unimplemented);
    }

    let (line, body) = get(&scrape, "/metrics").await;
    assert!(line.contains("200"), "{line}");
    let requests = "tradepact_rpc_requests_total";
    let write_ok = [
        "method=\"/tradepact.data.v1.TradeDataService/WritePoints\"",
        "status=\"Ok\"",
    ];
    assert_eq!(sample(&body, requests, &write_ok), Some(2.0), "{body}");
    let read_missing = [
        "method=\"/tradepact.data.v1.TradeDataService/GetSeries\"",
        "status=\"NotFound\"",
    ];
    assert_eq!(sample(&body, requests, &read_missing), Some(1.0), "{body}");
    let unknown = ["method=\"unknown\"", "status=\"Unimplemented\""];
    assert_eq!(sample(&body, requests, &unknown), Some(300.0), "{body}");
    assert!(
        !body.contains("Made1"),
        "an unknown path became a label: {body}"
    );
    let latency = "tradepact_rpc_latency_seconds_count";
    let write_method = ["method=\"/tradepact.data.v1.TradeDataService/WritePoints\""];
    assert_eq!(sample(&body, latency, &write_method), Some(2.0), "{body}");
    let written = "tradepact_points_written_total";
    assert_eq!(
        sample(&body, written, &["kind=\"inserted\""]),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, written, &["kind=\"updated\""]),
        Some(2.0),
        "{body}"
    );
    // No call in flight now; the store's size is gauged (at start, when this new store is
    // still empty, then every 10 s).
    assert_eq!(
        sample(&body, "tradepact_rpc_in_flight", &[]),
        Some(0.0),
        "{body}"
    );
    let bytes = sample(&body, "tradepact_store_bytes", &[]);
    assert!(bytes.is_some_and(|b| b >= 0.0), "{body}");
    let (line, _) = get(&scrape, "/").await;
    assert!(line.contains("404"), "{line}");

    // A watch open is counted while it lasts.
    let watch = client
        .watch_series(pb::WatchSeriesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (_, body) = get(&scrape, "/metrics").await;
    assert_eq!(
        sample(&body, "tradepact_watchers", &[]),
        Some(1.0),
        "{body}"
    );
    // Its lag is observed each time it is sent a live write: three writes, three samples, each
    // at most the three messages it may not have read yet.
    let more = write_request(series.clone(), &[("2017", 3e9)]);
    for _ in 0..3 {
        client.write_points(more.clone()).await.unwrap();
    }
    let lag = "tradepact_watcher_lag_messages";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let body = loop {
        let (_, body) = get(&scrape, "/metrics").await;
        let count = sample(&body, &format!("{lag}_count"), &[]);
        if count == Some(3.0) || std::time::Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        sample(&body, &format!("{lag}_count"), &[]),
        Some(3.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, &format!("{lag}_bucket"), &["le=\"4\""]),
        Some(3.0),
        "{body}"
    );
    drop(watch);

    let negotiation = Process::start(
        "tradepact-negotiation",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().join("negotiations").to_str().unwrap(),
            "--data-service",
            &data.url(),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let scrape = metrics_addr(&negotiation);
    let mut n = negotiation_client(&negotiation).await;
    n.list_negotiations(npb::ListNegotiationsRequest::default())
        .await
        .unwrap();
    let (_, body) = get(&scrape, "/metrics").await;
    assert_eq!(
        sample(&body, "tradepact_negotiations", &[]),
        Some(0.0),
        "{body}"
    );
    let budget = "tradepact_analysis_cache_budget_points";
    assert_eq!(sample(&body, budget, &[]), Some(1e6), "{body}");
    // A negotiation loaded and analysed: counted, and its analysis kept against the budget.
    let loaded = std::process::Command::new(binary("tradepact"))
        .args(["scenario", "load", "korus-2018", "--negotiation-service"])
        .arg(negotiation.url())
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{loaded:?}");
    n.analyze_negotiation(npb::AnalyzeNegotiationRequest {
        id: "neg-000001".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let (_, body) = get(&scrape, "/metrics").await;
    assert_eq!(
        sample(&body, "tradepact_negotiations", &[]),
        Some(1.0),
        "{body}"
    );
    let kept = sample(&body, "tradepact_analysis_cache_points", &[]);
    assert!(kept.is_some_and(|p| p > 0.0), "{body}");
    let listed = [
        "method=\"/tradepact.negotiation.v1.NegotiationService/ListNegotiations\"",
        "status=\"Ok\"",
    ];
    assert_eq!(sample(&body, requests, &listed), Some(1.0), "{body}");
}

/// `tradepact up --metrics-listen`: one endpoint counts both services' calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_one_endpoint_for_both_services() {
    let home = tempfile::tempdir().unwrap();
    let up = Process::start(
        "tradepact",
        &[
            "up",
            "--home",
            home.path().to_str().unwrap(),
            "--data-listen",
            "127.0.0.1:0",
            "--negotiation-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    up.wait_for_log("ready:", READY_TIMEOUT);
    let scrape = metrics_addr(&up);
    let data = format!(
        "http://{}",
        up.addr_of("tradepact.data.v1.TradeDataService")
    );
    let negotiation = format!(
        "http://{}",
        up.addr_of("tradepact.negotiation.v1.NegotiationService")
    );
    let mut d = tradepact_client::data::connect(&data).await.unwrap();
    d.list_series(pb::ListSeriesRequest::default())
        .await
        .unwrap();
    let mut n = tradepact_client::negotiation::connect(&negotiation)
        .await
        .unwrap();
    n.list_negotiations(npb::ListNegotiationsRequest::default())
        .await
        .unwrap();
    let (_, body) = get(&scrape, "/metrics").await;
    let requests = "tradepact_rpc_requests_total";
    let data_call = [
        "/tradepact.data.v1.TradeDataService/ListSeries\"",
        "status=\"Ok\"",
    ];
    let negotiation_call = [
        "/tradepact.negotiation.v1.NegotiationService/ListNegotiations\"",
        "status=\"Ok\"",
    ];
    assert_eq!(sample(&body, requests, &data_call), Some(1.0), "{body}");
    assert_eq!(
        sample(&body, requests, &negotiation_call),
        Some(1.0),
        "{body}"
    );
}

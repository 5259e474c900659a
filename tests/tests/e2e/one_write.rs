//! A small unary response leaves in one write: headers, message and trailers together.
//!
//! The servers tell h2 their TCP stream has no vectored writes and cut 1–12 KiB messages into
//! frames under 1 KiB (`crates/rpc/src/frames.rs`), which h2 then copies into one buffer. That
//! relies on h2 internals (measured at +25 % req/s); this test pins it, so that an h2 upgrade
//! that undoes it fails here. Counted with strace on the real binary: the write calls on its
//! client sockets while it answers GetSeries (20 values) and a 20-year GetTradeBalance (2 kB).

use std::collections::HashSet;

use tradepact_proto::data_v1 as pb;
use tradepact_tests::{key, write_request, Process};

const CALLS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_unary_response_leaves_in_one_write() {
    let can_trace = std::process::Command::new("strace")
        .args(["-f", "-o", "/dev/null", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !can_trace {
        eprintln!("strace is missing or may not trace here (scripts/test.sh installs it): not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let data_dir = dir.path().join("d");
    let trace_arg = trace.to_str().unwrap().to_owned();
    let server = Process::start_under(
        &[
            "strace",
            "-f",
            "-e",
            "trace=accept,accept4,write,writev,sendto,sendmsg",
            "-o",
            &trace_arg,
        ],
        "tradepact-data",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        // No per-call log lines, which would be writes too (to stderr).
        &[("RUST_LOG", "warn,tradepact_rpc::server=info")],
    );
    let mut client = tradepact_client::data::connect(&server.url())
        .await
        .unwrap();
    let years: Vec<(String, f64)> = (1997..2017).map(|y| (y.to_string(), 1e9)).collect();
    let values: Vec<(&str, f64)> = years.iter().map(|(y, v)| (y.as_str(), *v)).collect();
    for (flow, kind) in [
        (pb::Flow::Export, pb::TradeKind::Goods),
        (pb::Flow::Import, pb::TradeKind::Goods),
        (pb::Flow::Export, pb::TradeKind::Services),
        (pb::Flow::Import, pb::TradeKind::Services),
    ] {
        let k = key("USA", "JPN", flow, kind, "TOTAL", pb::Frequency::Annual);
        client
            .write_points(write_request(k, &values))
            .await
            .unwrap();
    }
    let series = key(
        "USA",
        "JPN",
        pb::Flow::Export,
        pb::TradeKind::Goods,
        "TOTAL",
        pb::Frequency::Annual,
    );
    for _ in 0..CALLS {
        let got = client
            .get_series(pb::GetSeriesRequest {
                key: Some(series.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.values.len(), 20);
        let balance = client
            .get_trade_balance(pb::GetTradeBalanceRequest {
                reporter: "USA".into(),
                partner: "JPN".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            prost::Message::encoded_len(&balance) > 1024,
            "a multi-frame response"
        );
    }
    drop(client);
    // SIGTERM to the server itself (strace does not pass signals on); strace ends with it.
    let pid = std::fs::read_to_string(&trace)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status =
        tokio::task::spawn_blocking(move || server.wait(std::time::Duration::from_secs(10)))
            .await
            .unwrap();
    assert!(status.success(), "{status:?}");
    let log = std::fs::read_to_string(&trace).unwrap();
    // Sockets the server accepted, then every write call on them.
    let mut sockets = HashSet::new();
    let mut writes = 0usize;
    for line in log.lines() {
        let call = line
            .split_once(' ')
            .map_or(line, |(_, rest)| rest.trim_start());
        if call.starts_with("accept") {
            if let Some(fd) = call
                .rsplit("= ")
                .next()
                .and_then(|n| n.trim().parse::<i64>().ok())
            {
                sockets.insert(fd);
            }
        } else if let Some((name, args)) = call.split_once('(') {
            let fd = args
                .split(',')
                .next()
                .and_then(|f| f.trim().parse::<i64>().ok());
            if ["write", "writev", "sendto", "sendmsg"].contains(&name)
                && fd.is_some_and(|fd| sockets.contains(&fd))
            {
                writes += 1;
            }
        }
    }
    let responses = 2 * CALLS + 4; // and the four writes
    assert!(
        writes <= responses + 10,
        "{writes} write calls for {responses} small responses (one each is the target)"
    );
    assert!(
        writes >= responses,
        "strace saw {writes} writes for {responses} responses"
    );
}

//! Load benchmark of small unary reads: requests per second and p50/p99 latency at
//! concurrency 1 and 16, for tradepact's `GetSeries` (a 20-point annual series) and
//! `GetTradeBalance` (one pair over 20 years), beside a plain tonic server's trivial unary RPC
//! measured in the same run (the framework's ceiling). Client: the generated Rust stubs, one
//! HTTP/2 connection per concurrent caller.
//!
//! ```sh
//! cargo build --release -p tradepact-data -p tradepact-bench && target/release/load-bench
//! ```

use std::time::{Duration, Instant};

use clap::Parser;
use tradepact_bench::Server;
use tradepact_proto::data_v1 as pb;

#[derive(Parser)]
#[command(about = "tradepact unary load benchmark (beside a plain tonic server, same run)")]
struct Args {
    /// Seconds of load per measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
}

/// One call of a workload on a channel; true when the response checked out.
type Workload = Box<
    dyn Fn(
            tonic::transport::Channel,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
        + Send
        + Sync,
>;

struct Measured {
    requests: usize,
    rps: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs `call` from `concurrency` tasks, each on its own connection, for `seconds`.
async fn load<F, Fut>(
    url: &str,
    concurrency: usize,
    seconds: f64,
    call: F,
) -> anyhow::Result<Measured>
where
    F: Fn(tonic::transport::Channel) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let mut channels = Vec::new();
    for _ in 0..concurrency {
        channels.push(tradepact_client::channel(url).await?);
    }
    // Warm-up.
    for c in &channels {
        anyhow::ensure!(call(c.clone()).await, "the call fails");
    }
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = channels
        .into_iter()
        .map(|channel| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if !call(channel.clone()).await {
                        return Err(anyhow::anyhow!("a call failed under load"));
                    }
                    latencies.push(t.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Ok(Measured {
        requests: all.len(),
        rps: all.len() as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let plain = Server::start_sibling("plain-server", &[])?;
    let data = Server::start_sibling(
        "tradepact-data",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().expect("utf-8 path"),
        ],
    )?;

    // 20 years of goods and services, both ways, USA-KOR.
    let mut client = tradepact_client::data::connect(&data.url).await?;
    let key = |flow: pb::Flow, kind: pb::TradeKind| pb::SeriesKey {
        reporter: "USA".into(),
        partner: "KOR".into(),
        flow: flow.into(),
        kind: kind.into(),
        product: "TOTAL".into(),
        frequency: pb::Frequency::Annual.into(),
    };
    let mut series = Vec::new();
    for flow in [pb::Flow::Export, pb::Flow::Import] {
        for kind in [pb::TradeKind::Goods, pb::TradeKind::Services] {
            series.push(pb::SeriesPoints {
                key: Some(key(flow, kind)),
                source: "load bench".into(),
                points: (2000..2020)
                    .map(|y| pb::Point {
                        period: y.to_string(),
                        value_usd: f64::from(y) * 1e6,
                        source: String::new(),
                    })
                    .collect(),
            });
        }
    }
    client
        .write_points(pb::WritePointsRequest { series })
        .await?;

    let goods_exports = key(pb::Flow::Export, pb::TradeKind::Goods);
    let workloads: Vec<(&str, &str, Workload)> = vec![
        (
            "plain tonic: Health/Check (baseline)",
            "plain",
            Box::new(|c| {
                Box::pin(async move {
                    let mut h = tonic_health::pb::health_client::HealthClient::new(c);
                    h.check(tonic_health::pb::HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .is_ok()
                })
            }),
        ),
        (
            "tradepact: GetSeries, 20 annual points",
            "data",
            Box::new(move |c| {
                let k = goods_exports.clone();
                Box::pin(async move {
                    let mut d = tradepact_client::data::client(c);
                    d.get_series(pb::GetSeriesRequest {
                        key: Some(k),
                        ..Default::default()
                    })
                    .await
                    .is_ok_and(|r| r.get_ref().values.len() == 20)
                })
            }),
        ),
        (
            "tradepact: GetTradeBalance, USA-KOR, 20 years",
            "data",
            Box::new(|c| {
                Box::pin(async move {
                    let mut d = tradepact_client::data::client(c);
                    d.get_trade_balance(pb::GetTradeBalanceRequest {
                        reporter: "USA".into(),
                        partner: "KOR".into(),
                        ..Default::default()
                    })
                    .await
                    .is_ok_and(|r| r.get_ref().rows.len() == 20)
                })
            }),
        ),
    ];
    let workloads: Vec<_> = workloads
        .into_iter()
        .map(|(n, s, f)| (n, s, std::sync::Arc::new(f)))
        .collect();

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("### Unary load benchmark\n");
    println!(
        "Machine: {cores} cores (client and servers share them). Command: `target/release/load-bench` ({} s per measurement, one HTTP/2 connection per concurrent caller, Rust client on the generated stubs; every response checked).\n",
        args.seconds
    );
    println!("| workload | concurrency | requests | req/s | p50 | p99 | vs plain tonic |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for &c in &args.concurrency {
        let mut baseline = None;
        for (name, server, f) in &workloads {
            let url = if *server == "plain" {
                &plain.url
            } else {
                &data.url
            };
            let f = f.clone();
            let r = load(url, c, args.seconds, move |ch| f(ch)).await?;
            let base = *baseline.get_or_insert(r.rps);
            println!(
                "| {name} | {c} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.0} % |",
                r.requests,
                r.rps,
                r.p50.as_secs_f64() * 1e3,
                r.p99.as_secs_f64() * 1e3,
                100.0 * r.rps / base
            );
        }
    }
    Ok(())
}

//! Load benchmark of unary calls: requests per second and p50/p99 latency at concurrency 1 and
//! 16, for tradepact's `GetSeries` (a 20-point annual series) and `GetTradeBalance` (one pair
//! over 20 years), `AnalyzeNegotiation` (the KORUS scenario, and a random 10^6-outcome space)
//! and `EstimateImpact` (the KORUS Nash package, its baselines read from the data service over
//! gRPC), beside a plain tonic server's trivial unary RPC measured in the same run (the
//! framework's ceiling). Client: the generated Rust stubs, one HTTP/2 connection per
//! concurrent caller. `--h2load` also drives the unary reads with h2load (nghttp2-client).
//!
//! ```sh
//! cargo build --release -p tradepact -p tradepact-data -p tradepact-negotiation -p tradepact-bench
//! target/release/load-bench
//! ```

use std::time::{Duration, Instant};

use clap::Parser;
use tradepact_bench::Server;
use tradepact_client::TlsFiles;
use tradepact_proto::data_v1 as pb;
use tradepact_proto::negotiation_v1 as npb;

mod h2load;

/// Partner of the synthetic 20-year series of the unary read workloads.
const PARTNER: &str = "JPN";

#[derive(Parser)]
#[command(about = "tradepact unary load benchmark (beside a plain tonic server, same run)")]
struct Args {
    /// Seconds of load per measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Also load the unary reads with h2load (from Debian's nghttp2-client), checking each
    /// workload's `grpc-status: 0` with nghttp and every response's length.
    #[arg(long)]
    h2load: bool,
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

/// GetSeries of `key`, checked to answer its 20 values.
fn get_series_20(key: pb::SeriesKey) -> Workload {
    Box::new(move |c| {
        let key = key.clone();
        Box::pin(async move {
            let mut d = tradepact_client::data::client(c);
            d.get_series(pb::GetSeriesRequest {
                key: Some(key),
                ..Default::default()
            })
            .await
            .is_ok_and(|r| r.get_ref().values.len() == 20)
        })
    })
}

/// A CA and a server certificate for localhost in `dir`: the server's certificate and key
/// files, and what a client needs to trust it.
fn tls_files(dir: &std::path::Path) -> anyhow::Result<(String, String, TlsFiles)> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["localhost".to_owned()])?.signed_by(&key, &issuer)?;
    let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert_path, cert.pem())?;
    std::fs::write(&key_path, key.serialize_pem())?;
    let path = |p: std::path::PathBuf| p.to_str().map(str::to_owned).expect("utf-8 path");
    Ok((
        path(cert_path),
        path(key_path),
        TlsFiles {
            ca: ca.pem().into_bytes(),
            identity: None,
            domain: Some("localhost".into()),
        },
    ))
}

/// Runs `call` from `concurrency` tasks, each on its own connection (over TLS when `tls` is
/// given), for `seconds`.
async fn load<F, Fut>(
    url: &str,
    tls: Option<&TlsFiles>,
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
        channels.push(tradepact_client::channel_with(url, tls).await?);
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

    // 20 years of goods and services, both ways, USA-JPN (a pair the KORUS sample loaded below
    // does not touch, so the reads return exactly these points).
    let mut client = tradepact_client::data::connect(&data.url).await?;
    let key = |flow: pb::Flow, kind: pb::TradeKind| pb::SeriesKey {
        reporter: "USA".into(),
        partner: PARTNER.into(),
        flow: flow.into(),
        kind: kind.into(),
        product: "TOTAL".into(),
        frequency: pb::Frequency::Annual.into(),
        ..Default::default()
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
        .write_points(pb::WritePointsRequest {
            series: series.clone(),
            ..Default::default()
        })
        .await?;

    // The same data service and series over TLS (rustls, a certificate for localhost).
    let tls_dir = tempfile::tempdir()?;
    let (cert, tls_key, tls) = tls_files(tls_dir.path())?;
    let data_tls = Server::start_sibling(
        "tradepact-data",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            tls_dir.path().join("data").to_str().expect("utf-8 path"),
            "--tls-cert",
            &cert,
            "--tls-key",
            &tls_key,
        ],
    )?;
    let data_tls_url = data_tls.url.replacen("http://", "https://", 1);
    tradepact_client::data::client(
        tradepact_client::channel_with(&data_tls_url, Some(&tls)).await?,
    )
    .write_points(pb::WritePointsRequest {
        series,
        ..Default::default()
    })
    .await?;

    // The negotiation service, reading from that data service: the KORUS sample data and
    // scenario (through the `tradepact` tool), and a random space of 10^6 outcomes.
    let neg_dir = tempfile::tempdir()?;
    let neg = Server::start_sibling(
        "tradepact-negotiation",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            neg_dir.path().to_str().expect("utf-8 path"),
            "--data-service",
            &data.url,
        ],
    )?;
    let korus = load_korus(&data.url, &neg.url)?;
    let korus_impact = korus.clone();
    let mut nc = tradepact_client::negotiation::connect(&neg.url).await?;
    let analysis = nc
        .analyze_negotiation(npb::AnalyzeNegotiationRequest {
            id: korus.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let korus_outcomes = analysis.outcome_count;
    let nash = analysis
        .nash
        .and_then(|s| s.points.into_iter().next())
        .and_then(|p| p.packages.into_iter().next())
        .ok_or_else(|| anyhow::anyhow!("no Nash package for KORUS"))?;
    let million = create_random(&mut nc, 6, 10, 7).await?;

    let goods_exports = key(pb::Flow::Export, pb::TradeKind::Goods);
    let h2load_table = if args.h2load {
        Some(h2load::run(&plain.url, &data.url, &goods_exports).await?)
    } else {
        None
    };
    let workloads: Vec<(String, &str, Workload)> = vec![
        (
            "plain tonic: Health/Check (baseline)".into(),
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
            "tradepact: GetSeries, 20 annual points".into(),
            "data",
            get_series_20(goods_exports.clone()),
        ),
        (
            "tradepact over TLS: GetSeries, 20 annual points".into(),
            "data-tls",
            get_series_20(goods_exports),
        ),
        (
            "tradepact: GetTradeBalance, USA-JPN, 20 years".into(),
            "data",
            Box::new(|c| {
                Box::pin(async move {
                    let mut d = tradepact_client::data::client(c);
                    d.get_trade_balance(pb::GetTradeBalanceRequest {
                        reporter: "USA".into(),
                        partner: PARTNER.into(),
                        ..Default::default()
                    })
                    .await
                    .is_ok_and(|r| r.get_ref().rows.len() == 20)
                })
            }),
        ),
        (
            format!("tradepact: AnalyzeNegotiation, KORUS 2018 ({korus_outcomes} outcomes)"),
            "negotiation",
            Box::new(move |c| {
                let id = korus.clone();
                Box::pin(async move {
                    let mut n = tradepact_client::negotiation::client(c);
                    n.analyze_negotiation(npb::AnalyzeNegotiationRequest {
                        id: id.clone(),
                        ..Default::default()
                    })
                    .await
                    .is_ok_and(|r| r.get_ref().nash.is_some())
                })
            }),
        ),
        (
            "tradepact: AnalyzeNegotiation, 10^6 outcomes (random, 6 issues × 10 options)".into(),
            "negotiation",
            Box::new(move |c| {
                let id = million.clone();
                Box::pin(async move {
                    let mut n = tradepact_client::negotiation::client(c);
                    n.analyze_negotiation(npb::AnalyzeNegotiationRequest {
                        id,
                        ..Default::default()
                    })
                    .await
                    .is_ok_and(|r| r.get_ref().outcome_count == 1e6)
                })
            }),
        ),
        (
            "tradepact: EstimateImpact, KORUS Nash package (baselines over gRPC)".into(),
            "negotiation",
            Box::new(move |c| {
                let (id, package) = (korus_impact.clone(), nash.clone());
                Box::pin(async move {
                    let mut n = tradepact_client::negotiation::client(c);
                    n.estimate_impact(npb::EstimateImpactRequest {
                        id,
                        package: Some(package),
                        skip_missing_baselines: true,
                        ..Default::default()
                    })
                    .await
                    .is_ok_and(|r| !r.get_ref().effects.is_empty())
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
            let (url, over_tls) = match *server {
                "plain" => (&plain.url, None),
                "data" => (&data.url, None),
                "data-tls" => (&data_tls_url, Some(&tls)),
                _ => (&neg.url, None),
            };
            let f = f.clone();
            let r = load(url, over_tls, c, args.seconds, move |ch| f(ch)).await?;
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
    if let Some(table) = h2load_table {
        println!("\n{table}");
    }
    Ok(())
}

/// Imports the KORUS sample into the data service and loads the KORUS scenario into the
/// negotiation service with the `tradepact` tool next to this binary; returns the scenario's id.
fn load_korus(data_url: &str, negotiation_url: &str) -> anyhow::Result<String> {
    let tool = std::env::current_exe()?.with_file_name("tradepact");
    let csv = concat!(env!("CARGO_MANIFEST_DIR"), "/../datasets/korus_trade.csv");
    let run = |args: &[&str]| -> anyhow::Result<String> {
        let out = std::process::Command::new(&tool).args(args).output()?;
        anyhow::ensure!(
            out.status.success(),
            "tradepact {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    };
    run(&["import", csv, "--data-service", data_url])?;
    run(&[
        "scenario",
        "load",
        "korus-2018",
        "--negotiation-service",
        negotiation_url,
    ])
}

/// Creates a bilateral negotiation over `issues` issues of `options` options each, with
/// random weights and option values (seeded), and returns its id.
async fn create_random(
    client: &mut tradepact_client::negotiation::NegotiationClient,
    issues: usize,
    options: usize,
    seed: u64,
) -> anyhow::Result<String> {
    let mut state = seed;
    let mut next = move || {
        // SplitMix64, to a value in [0, 1).
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let issue_ids: Vec<String> = (0..issues).map(|i| format!("i{i}")).collect();
    let option_ids: Vec<String> = (0..options).map(|o| format!("o{o}")).collect();
    let created = client
        .create_negotiation(npb::CreateNegotiationRequest {
            title: format!("random {issues} issues × {options} options"),
            agreement: "load benchmark".into(),
            parties: vec!["A".into(), "B".into()],
            issues: issue_ids
                .iter()
                .map(|id| npb::Issue {
                    id: id.clone(),
                    label: id.clone(),
                    options: option_ids
                        .iter()
                        .map(|o| npb::IssueOption {
                            id: o.clone(),
                            label: o.clone(),
                            trade_effects: vec![],
                        })
                        .collect(),
                })
                .collect(),
            deadline_rounds: 100,
            ..Default::default()
        })
        .await?
        .into_inner()
        .negotiation
        .ok_or_else(|| anyhow::anyhow!("no negotiation created"))?;
    for party in ["A", "B"] {
        let position = npb::Position {
            weights: issue_ids
                .iter()
                .map(|i| (i.clone(), next() + 0.01))
                .collect(),
            values: issue_ids
                .iter()
                .map(|i| {
                    let values = option_ids.iter().map(|o| (o.clone(), next())).collect();
                    (i.clone(), npb::OptionValues { values })
                })
                .collect(),
            reservation_value: 0.0,
        };
        client
            .set_position(npb::SetPositionRequest {
                negotiation_id: created.id.clone(),
                party: party.into(),
                position: Some(position),
            })
            .await?;
    }
    Ok(created.id)
}

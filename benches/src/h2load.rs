//! The unary reads under h2load (Debian's `nghttp2-client`), beside the plain tonic server.
//!
//! A gRPC unary request body is the 5-byte prefix (compression flag, big-endian length) and
//! the encoded message; h2load POSTs it with `content-type: application/grpc`. h2load reads
//! HTTP status codes, not gRPC trailers, so before each workload `nghttp` sends the same body
//! once and its `grpc-status: 0` trailer is checked, and after the load the response bytes
//! h2load received must be exactly the successful requests times the length of a good response
//! (an error is a trailers-only response with no body).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use prost::Message;
use tradepact_proto::data_v1 as pb;

/// Connections × streams per connection, and requests, per level.
const LEVELS: [(usize, usize, usize); 3] = [(1, 1, 20_000), (16, 1, 100_000), (16, 32, 200_000)];

fn grpc_body(message: &impl Message) -> Vec<u8> {
    let encoded = message.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    body.extend_from_slice(&encoded);
    body
}

const HEADERS: [&str; 4] = ["-H", "content-type: application/grpc", "-H", "te: trailers"];

/// Sends `body` once with nghttp; checks the trailer `grpc-status: 0`.
fn check_status(url: &str, body: &Path) -> anyhow::Result<()> {
    let out = Command::new("nghttp")
        .args(["-v", "-H", ":method: POST"])
        .args(HEADERS)
        .arg("-d")
        .arg(body)
        .arg(url)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        text.lines()
            .any(|l| l.trim_end().ends_with("grpc-status: 0")),
        "{url}: no grpc-status 0 in nghttp's output:\n{text}"
    );
    Ok(())
}

struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
}

/// One h2load run; checks that every request succeeded with a full response.
fn h2load(
    url: &str,
    body: &Path,
    (connections, streams, requests): (usize, usize, usize),
    response_len: usize,
    log: &Path,
) -> anyhow::Result<Run> {
    // h2load appends to its log file.
    let _ = std::fs::remove_file(log);
    let out = Command::new("h2load")
        .args(["-n", &requests.to_string()])
        .args(["-c", &connections.to_string()])
        .args(["-m", &streams.to_string()])
        .arg("-d")
        .arg(body)
        .args(HEADERS)
        .arg(format!("--log-file={}", log.display()))
        .arg(url)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(out.status.success(), "h2load failed:\n{text}");
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no {prefix:?} line in h2load's output:\n{text}"))
    };
    let number_before = |l: &str, word: &str| -> anyhow::Result<f64> {
        let words: Vec<&str> = l.split([' ', ',']).filter(|w| !w.is_empty()).collect();
        let i = words
            .iter()
            .position(|w| *w == word)
            .ok_or_else(|| anyhow::anyhow!("no {word:?} in {l:?}"))?;
        let n = words[i.checked_sub(1).ok_or_else(|| anyhow::anyhow!("{l:?}"))?];
        Ok(n.trim_matches(|c| c == '(' || c == ')').parse()?)
    };
    let finished = line("finished in")?;
    let rps = number_before(&finished, "req/s")?;
    let succeeded = number_before(&line("requests:")?, "succeeded")? as usize;
    anyhow::ensure!(
        succeeded == requests,
        "{url}: {succeeded} of {requests} succeeded"
    );
    // "traffic: 1.2MB (1234) total, … headers (…), 70000 (70000) data"
    let data = number_before(&line("traffic:")?, "data")? as usize;
    anyhow::ensure!(
        data == requests * response_len,
        "{url}: {data} response bytes, expected {requests} × {response_len}"
    );
    let mut latencies: Vec<u64> = std::fs::read_to_string(log)?
        .lines()
        .filter_map(|l| l.split('\t').nth(2)?.trim().parse().ok())
        .collect();
    anyhow::ensure!(
        latencies.len() == requests,
        "h2load logged {}",
        latencies.len()
    );
    latencies.sort_unstable();
    let pct = |p: f64| {
        Duration::from_micros(latencies[((requests as f64 * p) as usize).min(requests - 1)])
    };
    Ok(Run {
        rps,
        p50: pct(0.50),
        p99: pct(0.99),
    })
}

/// Runs the plain server's Health/Check, GetSeries and GetTradeBalance under h2load at each
/// level; returns a markdown table.
pub async fn run(
    plain_url: &str,
    data_url: &str,
    series: &pb::SeriesKey,
) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let mut client = tradepact_client::data::connect(data_url).await?;
    let get_series = pb::GetSeriesRequest {
        key: Some(series.clone()),
        ..Default::default()
    };
    let balance = pb::GetTradeBalanceRequest {
        reporter: "USA".into(),
        partner: crate::PARTNER.into(),
        ..Default::default()
    };
    // Lengths of good responses, from the Rust client.
    let series_len = client
        .get_series(get_series.clone())
        .await?
        .into_inner()
        .encoded_len();
    let balance_len = client
        .get_trade_balance(balance.clone())
        .await?
        .into_inner()
        .encoded_len();
    // A KORUS sample series, as imported: its points carry source texts of about 100
    // characters.
    let korus = pb::GetSeriesRequest {
        key: Some(pb::SeriesKey {
            partner: "KOR".into(),
            flow: pb::Flow::Import.into(),
            ..series.clone()
        }),
        ..Default::default()
    };
    let korus_len = client
        .get_series(korus.clone())
        .await?
        .into_inner()
        .encoded_len();
    let health_len = tonic_health::pb::HealthCheckResponse {
        status: tonic_health::pb::health_check_response::ServingStatus::Serving.into(),
    }
    .encoded_len();
    let korus_name =
        format!("tradepact: GetSeries, KORUS goods imports ({korus_len}-byte response)");
    let workloads = [
        (
            "plain tonic: Health/Check (baseline)",
            format!("{plain_url}/grpc.health.v1.Health/Check"),
            grpc_body(&tonic_health::pb::HealthCheckRequest::default()),
            5 + health_len,
        ),
        (
            "tradepact: GetSeries, 20 annual points",
            format!("{data_url}/tradepact.data.v1.TradeDataService/GetSeries"),
            grpc_body(&get_series),
            5 + series_len,
        ),
        (
            &korus_name,
            format!("{data_url}/tradepact.data.v1.TradeDataService/GetSeries"),
            grpc_body(&korus),
            5 + korus_len,
        ),
        (
            "tradepact: GetTradeBalance, USA-JPN, 20 years",
            format!("{data_url}/tradepact.data.v1.TradeDataService/GetTradeBalance"),
            grpc_body(&balance),
            5 + balance_len,
        ),
    ];
    let version = Command::new("h2load")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .map_err(|e| anyhow::anyhow!("h2load not found ({e}); apt-get install nghttp2-client"))?;
    let mut table = format!(
        "### Unary reads under h2load\n\n{version}; every workload's `grpc-status: 0` checked with nghttp, every response's length checked. Client and servers share the machine's cores.\n\n\
         | workload | connections × streams | requests | req/s | p50 | p99 | vs plain tonic |\n|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for level in LEVELS {
        let mut baseline = None;
        for (i, (name, url, body, response_len)) in workloads.iter().enumerate() {
            let body_file = dir.path().join(format!("body-{i}.bin"));
            std::fs::write(&body_file, body)?;
            check_status(url, &body_file)?;
            let log = dir.path().join(format!("log-{i}.tsv"));
            let r = h2load(url, &body_file, level, *response_len, &log)?;
            let base = *baseline.get_or_insert(r.rps);
            table.push_str(&format!(
                "| {name} | {} × {} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.0} % |\n",
                level.0,
                level.1,
                level.2,
                r.rps,
                r.p50.as_secs_f64() * 1e3,
                r.p99.as_secs_f64() * 1e3,
                100.0 * r.rps / base
            ));
        }
    }
    Ok(table)
}

//! The browser side: gRPC-Web through a gRPC-Web client library (Connect's, from Node) and
//! from a page in headless Chromium under CORS. The Node packages and the ES modules of the
//! protos are installed into tests/web by the test command (scripts/test.sh).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use tradepact_client::{with_deadline, DEFAULT_DEADLINE};
use tradepact_proto::data_v1 as pb;
use tradepact_tests::{key, start_up, workspace, Process, READY_TIMEOUT};

/// `node tests/web/SCRIPT`, checked to be installed.
pub(crate) fn node(script: &str) -> Command {
    let web = workspace().join("tests/web");
    assert!(
        web.join("node_modules").is_dir() && web.join("gen").is_dir(),
        "tests/web is not set up: run scripts/test.sh (npm ci and buf generate there)"
    );
    let mut cmd = Command::new("node");
    cmd.arg(web.join(script));
    cmd
}

pub(crate) fn json_of(out: std::process::Output, what: &str) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{what} printed no JSON ({e}): {text}"))
}

/// `[[period, number or null], …]` as pairs.
fn pairs(json: &serde_json::Value) -> Vec<(String, Option<f64>)> {
    json.as_array()
        .unwrap_or_else(|| panic!("not an array: {json}"))
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_f64()))
        .collect()
}

/// Connect's gRPC-Web transport over HTTP/1.1 gets the answers gRPC gets: a unary call, a
/// server stream, and an INVALID_ARGUMENT with its field violation in the status details.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_web_client_library_gets_what_grpc_gets() {
    let home = tempfile::tempdir().unwrap();
    let up = start_up(home.path());
    up.wait_for_log("ready:", READY_TIMEOUT);
    let data = format!(
        "http://{}",
        up.addr_of("tradepact.data.v1.TradeDataService")
    );
    let web = json_of(
        node("grpc_web.mjs").arg(&data).output().unwrap(),
        "grpc_web.mjs",
    );

    let mut client = tradepact_client::data::connect(&data).await.unwrap();
    let rows = client
        .get_trade_balance(with_deadline(
            pb::GetTradeBalanceRequest {
                reporter: "USA".into(),
                partner: "KOR".into(),
                start_period: "2011".into(),
                end_period: "2016".into(),
                ..Default::default()
            },
            DEFAULT_DEADLINE,
        ))
        .await
        .unwrap()
        .into_inner()
        .rows;
    let expected: Vec<(String, Option<f64>)> = rows
        .iter()
        .map(|r| {
            (
                r.period.clone(),
                r.goods.as_ref().and_then(|g| g.balance_usd),
            )
        })
        .collect();
    assert_eq!(pairs(&web["goods_balance"]), expected);
    // The 2016 deficit, so that an empty answer on both sides cannot pass.
    assert_eq!(expected.last(), Some(&("2016".to_owned(), Some(-27.6e9))));

    let series = client
        .get_series(with_deadline(
            pb::GetSeriesRequest {
                key: Some(key(
                    "USA",
                    "KOR",
                    pb::Flow::Import,
                    pb::TradeKind::Goods,
                    "TOTAL",
                    pb::Frequency::Annual,
                )),
                ..Default::default()
            },
            DEFAULT_DEADLINE,
        ))
        .await
        .unwrap()
        .into_inner();
    let streamed: Vec<(String, Option<f64>)> = web["streamed"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(pairs)
        .collect();
    let expected: Vec<(String, Option<f64>)> = series
        .values
        .iter()
        .map(|v| (v.period.clone(), Some(v.value_usd)))
        .collect();
    assert!(expected.len() >= 5, "the sample has US imports from Korea");
    assert_eq!(streamed, expected);

    assert_eq!(web["refused"]["code"], 3, "INVALID_ARGUMENT: {web}");
    assert_eq!(web["refused"]["fields"], serde_json::json!(["reporter"]));
    assert!(web["refused"]["message"]
        .as_str()
        .unwrap()
        .contains("ISO 3166-1 alpha-3"));
}

/// A page of an allowed origin calls the data service from Chromium: the preflight of a call
/// that carries a token is answered without one, the call with a reader's token is served and
/// one without a token is UNAUTHENTICATED (its status readable by the page); a page of another
/// origin cannot read any answer. No console errors on the allowed page.
#[test]
fn a_browser_page_calls_under_cors_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let hash = crate::security::tradepact_rpc_hash("web-reader-secret");
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("{hash} web-page data:read\n")).unwrap();

    let mut page = node("cors.mjs")
        .arg("web-reader-secret")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(page.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let origin = first
        .trim()
        .strip_prefix("origin ")
        .unwrap_or_else(|| panic!("cors.mjs printed {first:?}"))
        .to_owned();

    let store = dir.path().join("store");
    let data = Process::start(
        "tradepact-data",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            store.to_str().unwrap(),
            "--tokens-file",
            tokens.to_str().unwrap(),
            "--cors-origin",
            &origin,
        ],
    );
    writeln!(page.stdin.take().unwrap(), "{}", data.url()).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = page.wait_with_output().unwrap();
    let seen = json_of(
        std::process::Output {
            stdout: rest.into_bytes(),
            ..out
        },
        "cors.mjs",
    );

    let allowed = &seen["allowed"];
    assert_eq!(allowed["fetched"], true, "{seen}");
    assert_eq!(allowed["grpc_status"], 0, "{seen}");
    assert_eq!(allowed["messages"], 1, "{seen}");
    assert!(
        allowed["message_bytes"].as_u64().unwrap() > 5_000,
        "the list of countries: {seen}"
    );
    assert_eq!(seen["allowed_without_token"]["grpc_status"], 16, "{seen}");
    assert_eq!(seen["refused"]["fetched"], false, "{seen}");
    assert_eq!(seen["console_errors"], serde_json::json!([]), "{seen}");
    // Only the allowed page's calls reached a method: the refused origin's preflight got no
    // CORS grant, so Chromium never sent its call.
    let log = data.log();
    let calls = log
        .lines()
        .filter(|l| {
            l.contains("ListCountries") && (l.contains("rpc finished") || l.contains("rpc failed"))
        })
        .count();
    assert_eq!(calls, 2, "two calls from the allowed page:\n{log}");
}

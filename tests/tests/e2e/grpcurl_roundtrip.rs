//! Writing and reading back through grpcurl, and a decoded BadRequest on bad input.

use tradepact_tests::{grpcurl, start_data};

const KEY: &str = r#""key":{"reporter":"USA","partner":"KOR","flow":"FLOW_IMPORT","kind":"TRADE_KIND_GOODS","product":"HS:87","frequency":"FREQUENCY_QUARTERLY"}"#;

#[test]
fn grpcurl_writes_then_reads_back_and_sees_field_violations() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());

    let write = format!(
        r#"{{"series":[{{{KEY},"source":"grpcurl","points":[{{"period":"2016-Q1","value_usd":1.5e9}},{{"period":"2016-Q2","value_usd":2.5e9}}]}}]}}"#
    );
    let (ok, out, err) = grpcurl(
        &server.addr,
        &[
            "-d",
            &write,
            "--",
            "tradepact.data.v1.TradeDataService/WritePoints",
        ],
    );
    assert!(ok, "write failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["inserted"], "2");

    let read = format!(r#"{{{KEY},"aggregate_to":"FREQUENCY_ANNUAL"}}"#);
    let (ok, out, err) = grpcurl(
        &server.addr,
        &[
            "-d",
            &read,
            "--",
            "tradepact.data.v1.TradeDataService/GetSeries",
        ],
    );
    assert!(ok, "read failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let value = &v["values"][0];
    assert_eq!(value["period"], "2016");
    assert_eq!(value["valueUsd"], 4e9);
    assert_eq!(value["inputCount"], 2);
    assert_eq!(value["expectedInputCount"], 4);
    assert_eq!(value["source"], "grpcurl");

    let bad = r#"{"series":[{"key":{"reporter":"usa","partner":"KOR","flow":"FLOW_IMPORT","kind":"TRADE_KIND_GOODS","product":"TOTAL","frequency":"FREQUENCY_ANNUAL"},"points":[{"period":"2016","value_usd":1}]}]}"#;
    let (ok, out, err) = grpcurl(
        &server.addr,
        &[
            "-d",
            bad,
            "--",
            "tradepact.data.v1.TradeDataService/WritePoints",
        ],
    );
    assert!(!ok, "bad write succeeded: {out}");
    assert!(err.contains("InvalidArgument"), "{err}");
    assert!(
        err.contains("google.rpc.BadRequest"),
        "details not decoded: {err}"
    );
    assert!(err.contains("series[0].key.reporter"), "{err}");
}

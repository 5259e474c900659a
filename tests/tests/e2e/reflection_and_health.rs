//! grpcurl sees the service, health and reflection, and describes documented RPCs.

use tradepact_tests::{grpcurl, start_data};

#[test]
fn grpcurl_lists_describes_and_checks_health() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());

    let (ok, out, err) = grpcurl(&server.addr, &["list"]);
    assert!(ok, "grpcurl list failed: {err}");
    for service in [
        "tradepact.data.v1.TradeDataService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            out.lines().any(|l| l == service),
            "{service} not in:\n{out}"
        );
    }

    let (ok, out, err) = grpcurl(
        &server.addr,
        &["describe", "tradepact.data.v1.TradeDataService"],
    );
    assert!(ok, "describe failed: {err}");
    for rpc in [
        "WritePoints",
        "StreamWritePoints",
        "GetSeries",
        "StreamSeries",
        "StreamSeriesColumns",
        "ListSeries",
        "DeleteSeries",
        "GetTradeBalance",
        "GetChange",
        "WatchSeries",
    ] {
        assert!(
            out.contains(&format!("rpc {rpc} (")),
            "{rpc} missing:\n{out}"
        );
    }
    // The proto comments travel through reflection.
    assert!(
        out.contains("// Upserts a batch of points"),
        "no doc comments:\n{out}"
    );

    let (ok, out, _) = grpcurl(&server.addr, &["describe", "tradepact.data.v1.SeriesKey"]);
    assert!(ok && out.contains("ISO 3166-1 alpha-3"), "{out}");

    for name in ["", "tradepact.data.v1.TradeDataService"] {
        let body = format!("{{\"service\":\"{name}\"}}");
        let (ok, out, err) = grpcurl(
            &server.addr,
            &["-d", &body, "--", "grpc.health.v1.Health/Check"],
        );
        assert!(ok, "health check failed: {err}");
        assert!(out.contains("\"SERVING\""), "{name:?}: {out}");
    }
}

#[test]
fn grpcurl_lists_describes_and_calls_the_negotiation_service() {
    let dir = tempfile::tempdir().unwrap();
    let data = start_data(&dir.path().join("data"));
    let server = tradepact_tests::start_negotiation(&dir.path().join("neg"), &data.url());

    let (ok, out, err) = grpcurl(&server.addr, &["list"]);
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l == "tradepact.negotiation.v1.NegotiationService"),
        "{out}"
    );
    let (ok, out, err) = grpcurl(
        &server.addr,
        &["describe", "tradepact.negotiation.v1.NegotiationService"],
    );
    assert!(ok, "{err}");
    for rpc in [
        "CreateNegotiation",
        "GetNegotiation",
        "ListNegotiations",
        "SetPosition",
        "SubmitOffer",
        "RespondToOffer",
        "BreakOff",
        "AnalyzeNegotiation",
        "SimulateNegotiation",
        "ForkNegotiation",
        "WatchNegotiation",
        "EstimateImpact",
    ] {
        assert!(
            out.contains(&format!("rpc {rpc} (")),
            "{rpc} missing:\n{out}"
        );
    }
    assert!(
        out.contains("// Estimates what a package does to trade flows"),
        "{out}"
    );

    let body = r#"{"title":"via grpcurl","agreement":"test","parties":["US","KOR"],"deadline_rounds":3,"issues":[{"id":"tariff","options":[{"id":"keep"},{"id":"cut"}]}]}"#;
    let (ok, out, err) = grpcurl(
        &server.addr,
        &[
            "-d",
            body,
            "--",
            "tradepact.negotiation.v1.NegotiationService/CreateNegotiation",
        ],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["negotiation"]["id"], "neg-000001");
    assert_eq!(v["negotiation"]["status"], "NEGOTIATION_STATUS_OPEN");
    assert_eq!(v["negotiation"]["nextProposer"], "US");

    let body = r#"{"service":"tradepact.negotiation.v1.NegotiationService"}"#;
    let (ok, out, _) = grpcurl(
        &server.addr,
        &["-d", body, "--", "grpc.health.v1.Health/Check"],
    );
    assert!(ok && out.contains("\"SERVING\""), "{out}");
}

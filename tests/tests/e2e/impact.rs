//! EstimateImpact reads its baselines from the real data service over gRPC: numbers checked
//! by hand; UNAVAILABLE, quickly, while the data service is down (every other call still
//! works); and back to normal, without a restart, when it returns.

use std::time::{Duration, Instant};

use tonic::Code;
use tradepact_proto::data_v1 as data_pb;
use tradepact_proto::negotiation_v1 as pb;
use tradepact_tests::{
    data_client, key, negotiation_client, start_negotiation, write_request, Process,
};

fn cut_option() -> pb::IssueOption {
    pb::IssueOption {
        id: "cut".into(),
        label: "cut the 8 % tariff on HS 87 from Korea to zero".into(),
        trade_effects: vec![pb::TradeEffect {
            reporter: "USA".into(),
            partner: "KOR".into(),
            flow: data_pb::Flow::Import.into(),
            product: "HS:87".into(),
            base_tariff_percent: 8.0,
            tariff_change_points: -8.0,
            import_demand_elasticity: None,
            substitution_elasticity: None,
            note: "test effect".into(),
            ..Default::default()
        }],
    }
}

/// A bilateral negotiation with one issue, the US tariff on Korean cars: keep it, or cut it.
pub(crate) async fn create_autos(
    c: &mut tradepact_client::negotiation::NegotiationClient,
) -> String {
    c.create_negotiation(pb::CreateNegotiationRequest {
        title: "autos".into(),
        agreement: "test".into(),
        parties: vec!["US".into(), "KOR".into()],
        issues: vec![pb::Issue {
            id: "auto_tariff".into(),
            label: "US tariff on Korean cars".into(),
            options: vec![
                pb::IssueOption {
                    id: "keep".into(),
                    label: "keep".into(),
                    trade_effects: vec![],
                },
                cut_option(),
            ],
        }],
        deadline_rounds: 3,
    })
    .await
    .unwrap()
    .into_inner()
    .negotiation
    .unwrap()
    .id
}

/// The impact of cutting the tariff, on `baseline`.
pub(crate) fn cut_request(id: &str, baseline: Option<pb::Baseline>) -> pb::EstimateImpactRequest {
    pb::EstimateImpactRequest {
        id: id.to_owned(),
        package: Some(pb::Package {
            choices: vec![pb::Choice {
                issue_id: "auto_tariff".into(),
                option_id: "cut".into(),
            }],
        }),
        baseline,
        skip_missing_baselines: false,
    }
}

fn start_data_at(dir: &std::path::Path, listen: &str) -> Process {
    Process::start(
        "tradepact-data",
        &["--listen", listen, "--data-dir", dir.to_str().unwrap()],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impact_from_the_data_service_and_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data = start_data_at(&data_dir, "127.0.0.1:0");
    let data_addr = data.addr.clone();
    let mut d = data_client(&data).await;
    let hs87 = |partner| {
        key(
            "USA",
            partner,
            data_pb::Flow::Import,
            data_pb::TradeKind::Goods,
            "HS:87",
            data_pb::Frequency::Annual,
        )
    };
    d.write_points(write_request(
        hs87("KOR"),
        &[("2015", 900.0), ("2016", 1000.0)],
    ))
    .await
    .unwrap();
    d.write_points(write_request(
        hs87("WLD"),
        &[("2015", 4900.0), ("2016", 5000.0)],
    ))
    .await
    .unwrap();
    drop(d);

    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let mut c = negotiation_client(&server).await;
    let id = create_autos(&mut c).await;
    let request = |year: &str| {
        cut_request(
            &id,
            Some(pb::Baseline {
                period: Some(pb::baseline::Period::Year(year.into())),
            }),
        )
    };

    // By hand, M = 1000 (2016), M_row = 5000 − 1000 = 4000, t = 0.08, Δt = −0.08, ε = −1, σ = 1.5:
    // creation = 1000 · (−1) · (−0.08) / 1.08 = 74.074; r = −0.074074;
    // diversion = 1000 · 4000 · 1.5 · 0.074074 / (5000 + 1000 · 1.5 · 0.074074) = 86.957.
    let r = c
        .estimate_impact(request("2016"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.effects.len(), 1);
    let e = &r.effects[0];
    assert_eq!(
        (
            e.baseline_usd,
            e.rest_of_world_usd,
            e.baseline_period.as_str()
        ),
        (1000.0, Some(4000.0), "2016")
    );
    assert!((e.trade_creation_usd - 74.074_074).abs() < 1e-3, "{e:?}");
    assert!((e.trade_diversion_usd - 86.956_522).abs() < 1e-3, "{e:?}");
    assert!((r.imports_change_usd - 161.030_596).abs() < 1e-3);
    assert!((r.bilateral_balance_change_usd + 161.030_596).abs() < 1e-3);
    assert!((r.overall_balance_change_usd + 74.074_074).abs() < 1e-3);
    assert!(e.assumptions.iter().any(|a| a.contains("trade diversion")));

    // A missing baseline names the series.
    let e = c.estimate_impact(request("2010")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("USA->KOR GOODS IMPORT HS:87 ANNUAL"),
        "{}",
        e.message()
    );

    // The data service goes away: UNAVAILABLE within the inner deadline, other calls fine.
    data.kill9();
    let start = Instant::now();
    let e = c.estimate_impact(request("2016")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    c.get_negotiation(pb::GetNegotiationRequest {
        id: id.clone(),
        include_positions: false,
    })
    .await
    .unwrap();

    // It comes back on the same address: estimates work again without restarting anything.
    let data = start_data_at(&data_dir, &data_addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    // The caller's W3C trace context travels with the inner call: the data service logs the
    // same trace id.
    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    let traced = || {
        let mut r = tonic::Request::new(request("2016"));
        let tp = format!("00-{TRACE}-b7ad6b7169203331-01");
        r.metadata_mut().insert("traceparent", tp.parse().unwrap());
        r
    };
    let recovered = loop {
        match c.estimate_impact(traced()).await {
            Ok(r) => break r.into_inner(),
            Err(e) if e.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery: {e:?}"),
        }
    };
    assert!((recovered.imports_change_usd - 161.030_596).abs() < 1e-3);
    data.wait_for_log(&format!("trace_id={TRACE}"), Duration::from_secs(10));
    server.wait_for_log(&format!("trace_id={TRACE}"), Duration::from_secs(10));
    drop(data);
}

// The server's own bound on a call (`--request-timeout-secs`) ends it with DEADLINE_EXCEEDED,
// naming the limit: here EstimateImpact waits on a data service that accepts connections and
// never answers, longer (3 s) than the 1 s bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_time_limit_ends_a_call_with_deadline_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let server = Process::start(
        "tradepact-negotiation",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--data-service",
            &silent_url,
            "--data-service-timeout-ms",
            "3000",
            "--request-timeout-secs",
            "1",
        ],
    );
    let mut c = negotiation_client(&server).await;
    let id = create_autos(&mut c).await;
    let err = c.estimate_impact(cut_request(&id, None)).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    // (Without the bound, the data service's 3 s timeout would answer UNAVAILABLE.)
    assert!(err.message().contains("--request-timeout-secs"), "{err:?}");
    // The server goes on answering.
    c.list_negotiations(pb::ListNegotiationsRequest::default())
        .await
        .unwrap();
    drop(silent);
}

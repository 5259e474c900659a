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
        ..Default::default()
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

/// An effect on HS6 tariff lines: the base tariffs (preferential, else MFN) and the trade come
/// from the data service; a line without trade of its own is merged into its chapter. Every
/// SMART output worked by hand, per line and in total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_effect_on_tariff_lines_reads_rates_and_trade_and_gives_every_smart_output() {
    let dir = tempfile::tempdir().unwrap();
    let data = start_data_at(&dir.path().join("data"), "127.0.0.1:0");
    let mut d = data_client(&data).await;
    let imports = |partner: &str, product: &str| {
        key(
            "USA",
            partner,
            data_pb::Flow::Import,
            data_pb::TradeKind::Goods,
            product,
            data_pb::Frequency::Annual,
        )
    };
    let rate = |partner: &str, product: &str| data_pb::SeriesKey {
        measure: data_pb::Measure::TariffRatePercent.into(),
        ..imports(partner, product)
    };
    // Trade of 870421 from Korea and the world; none of 870431, only its chapter's.
    for (k, v) in [
        (imports("KOR", "HS:870421"), 1000.0),
        (imports("WLD", "HS:870421"), 5000.0),
        (imports("KOR", "HS:87"), 20_000.0),
        (imports("WLD", "HS:87"), 100_000.0),
        // 25 % MFN on both lines; Korea's own 25 % on 870421 (a preferential schedule).
        (rate("WLD", "HS:870421"), 25.0),
        (rate("KOR", "HS:870421"), 25.0),
        (rate("WLD", "HS:870431"), 25.0),
        // Steel: rates and trade at chapter level only (Section 232's 25 %, Korea's exemption).
        (imports("KOR", "HS:72"), 3000.0),
        (imports("WLD", "HS:72"), 30_000.0),
        (rate("WLD", "HS:72"), 25.0),
        (rate("KOR", "HS:72"), 0.0),
    ] {
        let period = if k.measure == 0 { "2016" } else { "2012" };
        d.write_points(write_request(k, &[(period, v)]))
            .await
            .unwrap();
    }
    let server = start_negotiation(&dir.path().join("neg"), &data.url());
    let mut c = negotiation_client(&server).await;
    let trucks = pb::TradeEffect {
        reporter: "USA".into(),
        partner: "KOR".into(),
        flow: data_pb::Flow::Import.into(),
        product: "HS:87".into(),
        lines: vec!["HS:870421".into(), "HS:870431".into()],
        new_tariff_percent: Some(0.0),
        note: "phase out the light-truck tariff".into(),
        ..Default::default()
    };
    let id = c
        .create_negotiation(pb::CreateNegotiationRequest {
            title: "trucks".into(),
            agreement: "test".into(),
            parties: vec!["US".into(), "KOR".into()],
            issues: vec![pb::Issue {
                id: "trucks".into(),
                label: "light trucks".into(),
                options: vec![
                    pb::IssueOption {
                        id: "keep".into(),
                        label: "keep".into(),
                        trade_effects: vec![],
                    },
                    pb::IssueOption {
                        id: "phase_out".into(),
                        label: "phase out".into(),
                        trade_effects: vec![trucks.clone()],
                    },
                ],
            }],
            deadline_rounds: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .negotiation
        .unwrap()
        .id;
    let r = c
        .estimate_impact(pb::EstimateImpactRequest {
            id: id.clone(),
            package: Some(pb::Package {
                choices: vec![pb::Choice {
                    issue_id: "trucks".into(),
                    option_id: "phase_out".into(),
                }],
            }),
            baseline: Some(pb::Baseline {
                period: Some(pb::baseline::Period::Year("2016".into())),
            }),
            skip_missing_baselines: false,
        })
        .await
        .unwrap()
        .into_inner();
    let e = &r.effects[0];
    let close = |a: f64, b: f64| (a - b).abs() < 1e-3;
    assert_eq!(e.lines.len(), 2, "{e:#?}");

    // 870421 on its own trade: M = 1000, M_row = 4000, t = t_r = 25 % (Korea's rate read,
    // the MFN rate for the rest), cut to 0 for Korea only:
    // TC = 1000 · 0.25 / 1.25 = 200; r = 1 / 1.25 − 1 = −0.2;
    // TD = 1000 · 4000 · 1.5 · 0.2 / (5000 + 300) = 226.415;
    // TR: 0.25 · 1000 + 0.25 · 4000 = 1250 → 0.25 · (4000 − 226.415) = 943.396;
    // W = ½ · 0.25 · 200 = 25; CS = 0.25 · (1000 + ½ · 426.415) = 303.302.
    let line = &e.lines[0];
    assert_eq!(line.line, "HS:870421");
    assert_eq!(line.base_tariff_source, "preferential (KOR)");
    assert_eq!(
        (line.base_tariff_percent, line.new_tariff_percent),
        (25.0, 0.0)
    );
    assert_eq!(
        (line.baseline_usd, line.rest_of_world_usd),
        (1000.0, Some(4000.0))
    );
    assert!(close(line.trade_creation_usd, 200.0), "{line:?}");
    assert!(close(line.trade_diversion_usd, 226.415_094), "{line:?}");
    assert!(
        close(line.tariff_revenue_change_usd, 943.396_226 - 1250.0),
        "{line:?}"
    );
    assert!(close(line.welfare_change_usd, 25.0), "{line:?}");
    assert!(
        close(line.consumer_surplus_change_usd, 303.301_887),
        "{line:?}"
    );
    assert!(close(line.bilateral_balance_change_usd, -426.415_094));
    assert!(close(line.overall_balance_change_usd, -200.0));

    // 870431 has no trade of its own: its chapter's (HS 87: 20,000 of 100,000) at its MFN 25 %:
    // TC = 20,000 · 0.25 / 1.25 = 4000; TD = 20,000 · 80,000 · 1.5 · 0.2 / 106,000 = 4528.302.
    let chapter = &e.lines[1];
    assert_eq!(
        (
            chapter.line.as_str(),
            chapter.lines.as_slice(),
            chapter.product_used.as_str()
        ),
        ("HS:87", &["HS:870431".to_owned()][..], "HS:87")
    );
    assert_eq!(chapter.base_tariff_source, "MFN");
    assert!(close(chapter.trade_creation_usd, 4000.0), "{chapter:?}");
    assert!(
        close(chapter.trade_diversion_usd, 4_528.301_887),
        "{chapter:?}"
    );
    assert!(e
        .assumptions
        .iter()
        .any(|a| a.contains("no HS6 trade in the data for HS:870431")));

    // The effect and the package are the sums of the lines, output by output.
    let sum = |f: fn(&pb::LineImpact) -> f64| e.lines.iter().map(f).sum::<f64>();
    assert_eq!(e.trade_creation_usd, sum(|l| l.trade_creation_usd));
    assert_eq!(e.trade_diversion_usd, sum(|l| l.trade_diversion_usd));
    assert_eq!(
        e.tariff_revenue_change_usd,
        sum(|l| l.tariff_revenue_change_usd)
    );
    assert_eq!(e.welfare_change_usd, sum(|l| l.welfare_change_usd));
    assert_eq!(
        e.consumer_surplus_change_usd,
        sum(|l| l.consumer_surplus_change_usd)
    );
    assert_eq!(
        e.bilateral_balance_change_usd,
        sum(|l| l.bilateral_balance_change_usd)
    );
    assert_eq!(r.tariff_revenue_change_usd, e.tariff_revenue_change_usd);
    assert_eq!(r.welfare_change_usd, e.welfare_change_usd);
    assert_eq!(r.overall_balance_change_usd, e.overall_balance_change_usd);
    assert!(close(r.overall_balance_change_usd, -4200.0));

    // A line whose rates are stored for its chapter only reads them there (and says so):
    // Section 232's 25 % applied to Korea on HS 720851, from its 0 % exemption, on the
    // chapter's trade: creation 3000 · (−1) · 0.25 / 1 = −750.
    let mut steel = trucks.clone();
    steel.lines = vec!["HS:720851".into()];
    steel.new_tariff_percent = Some(25.0);
    let steel_id = one_effect(&mut c, steel).await.unwrap();
    let r = estimate_one(&mut c, &steel_id, Some("2016")).await.unwrap();
    let line = &r.effects[0].lines[0];
    assert_eq!(
        line.base_tariff_source,
        "preferential (KOR, the rate of HS:72)"
    );
    assert_eq!(line.rest_of_world_base_tariff_percent, 25.0);
    assert_eq!(
        (line.base_tariff_percent, line.new_tariff_percent),
        (0.0, 25.0)
    );
    assert_eq!(line.product_used, "HS:72");
    assert!(close(line.trade_creation_usd, -750.0), "{line:?}");

    // No tariff stored for a line: FAILED_PRECONDITION naming it.
    let mut missing = trucks;
    missing.lines = vec!["HS:870110".into()];
    let created = one_effect(&mut c, missing).await.unwrap();
    let err = estimate_one(&mut c, &created, None).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    // (Its chapter has trade, so the missing piece is the tariff.)
    assert!(
        err.message().contains("no tariff") && err.message().contains("HS:870110"),
        "{}",
        err.message()
    );

    // A line that is not an HS6 subheading is refused with its field.
    let bad = one_effect(
        &mut c,
        pb::TradeEffect {
            reporter: "USA".into(),
            partner: "KOR".into(),
            flow: data_pb::Flow::Import.into(),
            product: "HS:87".into(),
            lines: vec!["HS:8704".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message()
            .contains("issues[0].options[0].trade_effects[0].lines[0]"),
        "{}",
        bad.message()
    );
}

/// A negotiation of one issue "t" whose one option "o" carries `effect`: its id.
async fn one_effect(
    c: &mut tradepact_client::negotiation::NegotiationClient,
    effect: pb::TradeEffect,
) -> Result<String, tonic::Status> {
    let created = c
        .create_negotiation(pb::CreateNegotiationRequest {
            title: "one effect".into(),
            agreement: "test".into(),
            parties: vec!["US".into(), "KOR".into()],
            issues: vec![pb::Issue {
                id: "t".into(),
                label: "t".into(),
                options: vec![pb::IssueOption {
                    id: "o".into(),
                    label: "o".into(),
                    trade_effects: vec![effect],
                }],
            }],
            deadline_rounds: 3,
            ..Default::default()
        })
        .await?;
    Ok(created.into_inner().negotiation.unwrap().id)
}

/// The impact of `one_effect`'s option, on `year`'s baselines (`None`: the latest).
async fn estimate_one(
    c: &mut tradepact_client::negotiation::NegotiationClient,
    id: &str,
    year: Option<&str>,
) -> Result<pb::EstimateImpactResponse, tonic::Status> {
    let r = c
        .estimate_impact(pb::EstimateImpactRequest {
            id: id.to_owned(),
            package: Some(pb::Package {
                choices: vec![pb::Choice {
                    issue_id: "t".into(),
                    option_id: "o".into(),
                }],
            }),
            baseline: year.map(|y| pb::Baseline {
                period: Some(pb::baseline::Period::Year(y.into())),
            }),
            skip_missing_baselines: false,
        })
        .await?;
    Ok(r.into_inner())
}

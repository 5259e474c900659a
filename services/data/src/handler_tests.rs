//! The handlers and the application called in process, on a temporary store: no binary, no
//! socket. What needs a process (signals, crashes, TLS, grpcurl, the server's limits) is in
//! the end-to-end suite.

use std::sync::Arc;

use tokio_stream::StreamExt;
use tonic::{Code, Request};
use tradepact_proto::data_v1 as pb;
use tradepact_proto::data_v1::trade_data_service_server::TradeDataService;
use tradepact_store::Store;

use crate::app::Trade;
use crate::DataService;

fn service() -> (DataService, crate::app::watch::Closer) {
    let (app, closer) = Trade::new(Arc::new(Store::temporary().unwrap()));
    (DataService::new(app), closer)
}

fn key(partner: &str, flow: pb::Flow) -> pb::SeriesKey {
    pb::SeriesKey {
        reporter: "USA".into(),
        partner: partner.into(),
        flow: flow.into(),
        kind: pb::TradeKind::Goods.into(),
        product: "TOTAL".into(),
        frequency: pb::Frequency::Annual.into(),
        ..Default::default()
    }
}

fn write(key: pb::SeriesKey, points: &[(&str, f64)]) -> Request<pb::WritePointsRequest> {
    Request::new(pb::WritePointsRequest {
        series: vec![pb::SeriesPoints {
            key: Some(key),
            points: points
                .iter()
                .map(|(period, value)| pb::Point {
                    period: (*period).into(),
                    value_usd: *value,
                    source: String::new(),
                })
                .collect(),
            source: "test".into(),
        }],
        ..Default::default()
    })
}

#[tokio::test]
async fn writes_page_balance_and_delete_in_process() {
    let (svc, _closer) = service();
    let years = [
        ("2012", 1.0),
        ("2013", 2.0),
        ("2014", 3.0),
        ("2015", 4.0),
        ("2016", 5.0),
    ];
    let exports = key("KOR", pb::Flow::Export);
    let written = svc.write_points(write(exports.clone(), &years)).await;
    assert_eq!(written.unwrap().into_inner().inserted, 5);
    let imports = key("KOR", pb::Flow::Import);
    let imported = years.map(|(y, v)| (y, v * 3.0));
    svc.write_points(write(imports, &imported)).await.unwrap();
    // Pages of two cover the series once, in order.
    let (mut token, mut values) = (String::new(), Vec::new());
    loop {
        let page = svc.get_series(Request::new(pb::GetSeriesRequest {
            key: Some(exports.clone()),
            page_size: 2,
            page_token: token,
            ..Default::default()
        }));
        let page = page.await.unwrap().into_inner();
        assert!(page.values.len() <= 2);
        values.extend(page.values.into_iter().map(|v| v.value_usd));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(values, [1.0, 2.0, 3.0, 4.0, 5.0]);
    // The balance of exports and imports, period by period.
    let balance = svc.get_trade_balance(Request::new(pb::GetTradeBalanceRequest {
        reporter: "USA".into(),
        partner: "KOR".into(),
        frequency: pb::Frequency::Annual.into(),
        ..Default::default()
    }));
    let rows = balance.await.unwrap().into_inner().rows;
    assert_eq!(rows.len(), 5);
    let goods = rows[4].goods.as_ref().unwrap();
    assert_eq!(goods.balance_usd, Some(5.0 - 15.0));
    // Deleted, then unknown.
    let deleted = svc.delete_series(Request::new(pb::DeleteSeriesRequest {
        key: Some(exports.clone()),
    }));
    assert_eq!(deleted.await.unwrap().into_inner().deleted_points, 5);
    let gone = svc.get_series(Request::new(pb::GetSeriesRequest {
        key: Some(exports),
        ..Default::default()
    }));
    assert_eq!(gone.await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test]
async fn bad_requests_name_every_field_and_write_nothing() {
    let (svc, _closer) = service();
    let mut bad = key("K0R", pb::Flow::Unspecified);
    bad.frequency = 42;
    let refused = svc.write_points(write(bad, &[("2016", f64::NAN)])).await;
    let status = refused.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    for field in [
        "series[0].key.partner",
        "series[0].key.flow",
        "series[0].key.frequency",
    ] {
        assert!(status.message().contains(field), "{field}: {status:?}");
    }
    let listed = svc.list_series(Request::new(pb::ListSeriesRequest {
        page_size: -1,
        ..Default::default()
    }));
    let status = listed.await.unwrap_err();
    assert!(status.message().contains("page_size"), "{status:?}");
    let all = svc.list_series(Request::new(pb::ListSeriesRequest::default()));
    assert!(all.await.unwrap().into_inner().series.is_empty());
}

#[tokio::test]
async fn a_watch_replays_from_a_sequence_then_follows_durable_writes() {
    let (svc, _closer) = service();
    let kor = key("KOR", pb::Flow::Export);
    let first = svc.write_points(write(kor.clone(), &[("2015", 1.0)])).await;
    let first = first.unwrap().into_inner().sequence;
    svc.write_points(write(key("JPN", pb::Flow::Export), &[("2015", 9.0)]))
        .await
        .unwrap();
    let watch = svc.watch_series(Request::new(pb::WatchSeriesRequest {
        filter: Some(pb::SeriesFilter {
            partner: "KOR".into(),
            ..Default::default()
        }),
        from_sequence: first,
        ..Default::default()
    }));
    let mut stream = watch.await.unwrap().into_inner();
    let replayed = stream.next().await.unwrap().unwrap();
    assert_eq!(replayed.sequence, first);
    assert_eq!(replayed.points[0].value_usd, 1.0);
    let live = svc.write_points(write(kor, &[("2016", 2.0)])).await;
    let live = live.unwrap().into_inner().sequence;
    let next = stream.next().await.unwrap().unwrap();
    assert_eq!((next.sequence, next.points[0].value_usd), (live, 2.0));
}

#[tokio::test]
async fn measures_are_series_of_their_own_and_old_requests_see_values_only() {
    let (svc, _closer) = service();
    let usd = key("KOR", pb::Flow::Import);
    let cif = pb::SeriesKey {
        measure: pb::Measure::CifUsd.into(),
        ..usd.clone()
    };
    let cars = pb::SeriesKey {
        measure: pb::Measure::Quantity.into(),
        quantity_unit: "u".into(),
        ..usd.clone()
    };
    let mut tariff = pb::SeriesKey {
        measure: pb::Measure::TariffRatePercent.into(),
        ..usd.clone()
    };
    tariff.frequency = pb::Frequency::Monthly.into();
    svc.write_points(write(usd.clone(), &[("2018", 10.0)]))
        .await
        .unwrap();
    svc.write_points(write(cif.clone(), &[("2018", 11.0)]))
        .await
        .unwrap();
    svc.write_points(write(cars.clone(), &[("2018", 1234.0)]))
        .await
        .unwrap();
    svc.write_points(write(tariff.clone(), &[("2018-01", 2.5)]))
        .await
        .unwrap();
    let read = |key: pb::SeriesKey| {
        svc.get_series(Request::new(pb::GetSeriesRequest {
            key: Some(key),
            ..Default::default()
        }))
    };
    let values =
        |r: pb::GetSeriesResponse| r.values.iter().map(|v| v.value_usd).collect::<Vec<_>>();
    assert_eq!(values(read(usd).await.unwrap().into_inner()), [10.0]);
    assert_eq!(values(read(cif).await.unwrap().into_inner()), [11.0]);
    let quantity = read(cars).await.unwrap().into_inner();
    let echoed = quantity.key.clone().unwrap();
    assert_eq!(
        (echoed.measure(), echoed.quantity_unit.as_str()),
        (pb::Measure::Quantity, "u")
    );
    assert_eq!(values(quantity), [1234.0]);
    // A listing without a measure shows values only; MEASURE_ANY shows all four.
    let list = |measure: pb::Measure| {
        svc.list_series(Request::new(pb::ListSeriesRequest {
            filter: Some(pb::SeriesFilter {
                measure: measure.into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
    };
    let listed = list(pb::Measure::Unspecified)
        .await
        .unwrap()
        .into_inner()
        .series;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        list(pb::Measure::Any)
            .await
            .unwrap()
            .into_inner()
            .series
            .len(),
        4
    );
    // A rate is not summed into years.
    let summed = svc.get_series(Request::new(pb::GetSeriesRequest {
        key: Some(tariff),
        aggregate_to: pb::Frequency::Annual.into(),
        ..Default::default()
    }));
    let status = summed.await.unwrap_err();
    assert!(status.message().contains("not summed"), "{status:?}");
    // A unit only with a quantity; MEASURE_ANY is for filters.
    let bad = pb::SeriesKey {
        quantity_unit: "kg".into(),
        ..key("KOR", pb::Flow::Export)
    };
    let status = svc
        .write_points(write(bad, &[("2018", 1.0)]))
        .await
        .unwrap_err();
    assert!(status.message().contains("quantity_unit"), "{status:?}");
}

#[tokio::test]
async fn reference_data_answers_countries_groups_over_time_and_products() {
    let (svc, _closer) = service();
    let countries = |search: &str, kind: pb::CountryKind| {
        svc.list_countries(Request::new(pb::ListCountriesRequest {
            search: search.into(),
            kind: kind.into(),
        }))
    };
    let korea = countries("korea", pb::CountryKind::Unspecified)
        .await
        .unwrap();
    let codes: Vec<String> = korea
        .into_inner()
        .countries
        .into_iter()
        .map(|c| c.code)
        .collect();
    assert_eq!(codes, ["KOR", "PRK"]);
    let former = countries("yugoslavia", pb::CountryKind::Former)
        .await
        .unwrap();
    let yug = &former.into_inner().countries[0];
    assert_eq!(
        (yug.code.as_str(), yug.m49, yug.until_year),
        ("YUG", 891, 2003)
    );

    let eu_in = |year: u32| {
        svc.list_groups(Request::new(pb::ListGroupsRequest {
            name: "EU".into(),
            as_of_year: year,
        }))
    };
    let members = |r: pb::ListGroupsResponse| r.groups[0].members.len();
    assert_eq!(members(eu_in(2019).await.unwrap().into_inner()), 28);
    assert_eq!(members(eu_in(2020).await.unwrap().into_inner()), 27);
    let define = |name: &str| {
        svc.define_group(Request::new(pb::DefineGroupRequest {
            group: Some(pb::Group {
                name: name.into(),
                description: "FTA partners of the USA in Asia".into(),
                members: vec![pb::GroupMember {
                    code: "KOR".into(),
                    from_year: 2012,
                    until_year: 0,
                }],
                user_defined: false,
            }),
        }))
    };
    define("US_ASIA_FTA").await.unwrap();
    let status = define("EU").await.unwrap_err();
    assert!(status.message().contains("shipped group"), "{status:?}");
    let all = svc
        .list_groups(Request::new(pb::ListGroupsRequest::default()))
        .await;
    let all = all.unwrap().into_inner().groups;
    let mine = all.iter().find(|g| g.name == "US_ASIA_FTA").unwrap();
    assert!(mine.user_defined);
    assert_eq!(mine.members[0].from_year, 2012);

    let products = |search: &str, parent: &str, size: i32, token: String| {
        svc.list_products(Request::new(pb::ListProductsRequest {
            search: search.into(),
            parent: parent.into(),
            page_size: size,
            page_token: token,
        }))
    };
    let found = products("motor cars", "", 0, String::new()).await.unwrap();
    let found = found.into_inner().products;
    assert!(found.iter().any(|p| p.code == "HS2022:8703"), "{found:?}");
    let under_87 = products("", "HS2022:87", 0, String::new()).await.unwrap();
    let under_87 = under_87.into_inner().products;
    assert!(under_87
        .iter()
        .all(|p| p.parent == "HS2022:87" && p.level == 4));
    assert!(under_87.iter().any(|p| p.code == "HS2022:8703"));
    // Pages of 3 of the codes under 8703 cover them once.
    let (mut token, mut codes) = (String::new(), Vec::new());
    loop {
        let page = products("8703", "", 3, token).await.unwrap().into_inner();
        codes.extend(page.products.into_iter().map(|p| p.code));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert!(codes.len() > 10 && codes[0] == "HS2022:8703", "{codes:?}");
    let mut unique = codes.clone();
    unique.dedup();
    assert_eq!(unique, codes);
}

#[tokio::test]
async fn a_reported_balance_is_shown_beside_the_computed_one() {
    let (svc, _closer) = service();
    let reported = |kind: pb::TradeKind| pb::SeriesKey {
        kind: kind.into(),
        measure: pb::Measure::ReportedBalanceUsd.into(),
        ..key("KOR", pb::Flow::Export)
    };
    svc.write_points(write(key("KOR", pb::Flow::Export), &[("2016", 42.3e9)]))
        .await
        .unwrap();
    svc.write_points(write(key("KOR", pb::Flow::Import), &[("2016", 69.9e9)]))
        .await
        .unwrap();
    let goods = reported(pb::TradeKind::Goods);
    svc.write_points(write(goods, &[("2006", -13.4e9), ("2016", -27.57e9)]))
        .await
        .unwrap();
    let total = reported(pb::TradeKind::GoodsAndServices);
    svc.write_points(write(total, &[("2016", -17.0e9)]))
        .await
        .unwrap();
    let rows = svc.get_trade_balance(Request::new(pb::GetTradeBalanceRequest {
        reporter: "USA".into(),
        partner: "KOR".into(),
        ..Default::default()
    }));
    let rows = rows.await.unwrap().into_inner().rows;
    assert_eq!(rows.len(), 2, "2006 has a published balance only");
    let g2006 = rows[0].goods.clone().unwrap();
    assert_eq!(
        (g2006.balance_usd, g2006.reported_balance_usd),
        (None, Some(-13.4e9))
    );
    let g2016 = rows[1].goods.clone().unwrap();
    assert_eq!(g2016.reported_balance_usd, Some(-27.57e9));
    assert!(
        (g2016.balance_usd.unwrap() + 27.6e9).abs() < 1e3,
        "computed, not replaced"
    );
    assert_eq!(
        rows[1].total.clone().unwrap().reported_balance_usd,
        Some(-17.0e9)
    );
    // The kind of a total is for published balances only.
    let value = pb::SeriesKey {
        kind: pb::TradeKind::GoodsAndServices.into(),
        ..key("KOR", pb::Flow::Export)
    };
    let status = svc
        .write_points(write(value, &[("2016", 1.0)]))
        .await
        .unwrap_err();
    assert!(
        status.message().contains("only for a reported balance"),
        "{status:?}"
    );
}

async fn query(
    svc: &DataService,
    req: pb::QueryTradeRequest,
) -> Result<Vec<pb::QueryCell>, tonic::Status> {
    let mut stream = svc.query_trade(Request::new(req)).await?.into_inner();
    let mut cells = Vec::new();
    while let Some(message) = stream.next().await {
        cells.extend(message?.cells);
    }
    Ok(cells)
}

#[tokio::test]
async fn questions_across_partners_groups_and_products() {
    let (svc, _closer) = service();
    let trade = [
        ("KOR", 42.3, 69.9),
        ("CHN", 115.6, 462.6),
        ("JPN", 63.3, 132.2),
        ("DEU", 49.4, 114.2),
        ("FRA", 31.1, 46.8),
    ];
    for (partner, x, m) in trade {
        svc.write_points(write(key(partner, pb::Flow::Export), &[("2016", x * 1e9)]))
            .await
            .unwrap();
        svc.write_points(write(key(partner, pb::Flow::Import), &[("2016", m * 1e9)]))
            .await
            .unwrap();
    }
    let base = pb::QueryTradeRequest {
        reporters: vec!["USA".into()],
        start_period: "2016".into(),
        end_period: "2016".into(),
        ..Default::default()
    };
    // Top 2 deficits by partner.
    let top = query(
        &svc,
        pb::QueryTradeRequest {
            group_by: vec![pb::Dimension::Partner.into()],
            balance: true,
            order: pb::QueryOrder::Ascending.into(),
            limit: 2,
            ..base.clone()
        },
    )
    .await
    .unwrap();
    let names: Vec<&str> = top.iter().map(|c| c.group[0].as_str()).collect();
    assert_eq!(names, ["CHN", "JPN"]);
    assert_eq!(top[0].input_count, 2);
    // Imports from the world minus China: a sum over the other four.
    let rest = query(
        &svc,
        pb::QueryTradeRequest {
            flows: vec![pb::Flow::Import.into()],
            exclude_partners: vec!["CHN".into()],
            ..base.clone()
        },
    )
    .await
    .unwrap();
    assert!((rest[0].value.unwrap() - (69.9 + 132.2 + 114.2 + 46.8) * 1e9).abs() < 1.0);
    assert_eq!(rest[0].input_count, 4);
    // The EU of 2016 as partners: Germany and France.
    let eu = query(
        &svc,
        pb::QueryTradeRequest {
            partner_groups: vec!["EU".into()],
            flows: vec![pb::Flow::Export.into()],
            ..base.clone()
        },
    )
    .await
    .unwrap();
    assert!((eu[0].value.unwrap() - (49.4 + 31.1) * 1e9).abs() < 1.0);
    // A year with no data: no value, and every selected series names its gap.
    let gap = query(
        &svc,
        pb::QueryTradeRequest {
            start_period: "2015".into(),
            end_period: "2015".into(),
            ..base.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!((gap[0].value, gap[0].missing_input_count), (None, 10));
    assert_eq!(gap[0].missing_inputs.len(), 10);
    // Bad questions name the field.
    let status = query(
        &svc,
        pb::QueryTradeRequest {
            start_period: String::new(),
            ..base.clone()
        },
    )
    .await
    .unwrap_err();
    assert!(status.message().contains("start_period"), "{status:?}");
    let status = query(
        &svc,
        pb::QueryTradeRequest {
            measure: pb::Measure::TariffRatePercent.into(),
            ..base.clone()
        },
    )
    .await
    .unwrap_err();
    assert!(status.message().contains("not summed"), "{status:?}");
    let status = query(
        &svc,
        pb::QueryTradeRequest {
            partner_groups: vec!["NOPE".into()],
            ..base
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn mirror_statistics_set_a_figure_beside_the_partners() {
    let (svc, _closer) = service();
    let us_imports = key("KOR", pb::Flow::Import);
    let kor_exports = pb::SeriesKey {
        reporter: "KOR".into(),
        partner: "USA".into(),
        flow: pb::Flow::Export.into(),
        ..us_imports.clone()
    };
    svc.write_points(write(
        us_imports.clone(),
        &[("2016", 69.9e9), ("2017", 71.4e9)],
    ))
    .await
    .unwrap();
    svc.write_points(write(kor_exports, &[("2016", 66.5e9), ("2015", 69.8e9)]))
        .await
        .unwrap();
    let mirror = svc.get_mirror(Request::new(pb::GetMirrorRequest {
        key: Some(us_imports),
        ..Default::default()
    }));
    let m = mirror.await.unwrap().into_inner();
    assert_eq!(m.mirror_key.as_ref().unwrap().reporter, "KOR");
    assert_eq!(m.mirror_key.as_ref().unwrap().flow(), pb::Flow::Export);
    assert!(m.reported_basis.starts_with("CIF") && m.mirror_basis.starts_with("FOB"));
    let periods: Vec<&str> = m.rows.iter().map(|r| r.period.as_str()).collect();
    assert_eq!(periods, ["2015", "2016", "2017"]);
    assert_eq!((m.rows[0].reported, m.rows[0].mirror), (None, Some(69.8e9)));
    assert!((m.rows[1].difference.unwrap() - 3.4e9).abs() < 1.0);
    assert!((m.rows[1].percent.unwrap() - 100.0 * 3.4 / 66.5).abs() < 1e-9);
    assert_eq!(
        m.rows[2].difference, None,
        "no mirror for 2017: no difference"
    );
}

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

//! Bad input gets INVALID_ARGUMENT with field violations (or NOT_FOUND), and writes nothing.

use tonic::Code;
use tonic_types::StatusExt;
use tradepact_proto::data_v1 as pb;
use tradepact_tests::{data_client, key, start_data, write_request};

fn goods(flow: pb::Flow) -> pb::SeriesKey {
    key(
        "USA",
        "KOR",
        flow,
        pb::TradeKind::Goods,
        "TOTAL",
        pb::Frequency::Annual,
    )
}

fn violated_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("google.rpc.BadRequest in the details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

#[tokio::test]
async fn bad_points_are_refused_with_their_field_paths_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let mut client = data_client(&server).await;

    let mut request = write_request(
        goods(pb::Flow::Export),
        &[
            ("2016", 1.0),
            ("2017", f64::NAN),
            ("2018", -5.0),
            ("2019-01", 1.0),
            ("2016", 2.0),
            ("99999", 1.0),
        ],
    );
    request.series.push(pb::SeriesPoints {
        key: Some(pb::SeriesKey {
            flow: 7,
            kind: 0,
            product: "HS:8".into(),
            reporter: "ÜSA".into(),
            partner: String::new(),
            frequency: pb::Frequency::Annual.into(),
            ..Default::default()
        }),
        points: tradepact_tests::points(&[("2016", 1.0)]),
        source: "x".repeat(5000),
    });
    let status = client.write_points(request).await.unwrap_err();
    let fields = violated_fields(&status);
    for expected in [
        "series[0].points[1].value_usd",
        "series[0].points[2].value_usd",
        "series[0].points[3].period",
        "series[0].points[4].period",
        "series[0].points[5].period",
        "series[1].key.reporter",
        "series[1].key.partner",
        "series[1].key.flow",
        "series[1].key.kind",
        "series[1].key.product",
        "series[1].source",
    ] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected} not in {fields:?}"
        );
    }
    // The valid point of the same request was not written either.
    let err = client
        .get_series(pb::GetSeriesRequest {
            key: Some(goods(pb::Flow::Export)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let empty = client
        .write_points(pb::WritePointsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&empty), vec!["series"]);
}

#[tokio::test]
async fn bad_queries_name_the_field_and_unknown_series_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let mut client = data_client(&server).await;
    client
        .write_points(write_request(
            goods(pb::Flow::Import),
            &[("2016", 1.0), ("2017", 2.0)],
        ))
        .await
        .unwrap();

    let bad_page = client
        .get_series(pb::GetSeriesRequest {
            key: Some(goods(pb::Flow::Import)),
            page_size: -1,
            page_token: "not-a-token".into(),
            start_period: "2016-01".into(),
            aggregate_to: pb::Frequency::Monthly.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let fields = violated_fields(&bad_page);
    assert!(fields.contains(&"page_size".to_owned()), "{fields:?}");
    assert!(fields.contains(&"page_token".to_owned()), "{fields:?}");
    assert!(fields.contains(&"aggregate_to".to_owned()), "{fields:?}");

    // A token from one request is refused on another.
    let page = client
        .get_series(pb::GetSeriesRequest {
            key: Some(goods(pb::Flow::Import)),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!page.next_page_token.is_empty());
    let reused = client
        .get_series(pb::GetSeriesRequest {
            key: Some(goods(pb::Flow::Import)),
            page_size: 1,
            end_period: "2016".into(),
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&reused), vec!["page_token"]);

    let reversed = client
        .get_trade_balance(pb::GetTradeBalanceRequest {
            reporter: "USA".into(),
            partner: "KOR".into(),
            start_period: "2017".into(),
            end_period: "2016".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&reversed), vec!["end_period"]);

    let no_target = client
        .get_change(pb::GetChangeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&no_target), vec!["target"]);

    let missing_period = client
        .get_change(pb::GetChangeRequest {
            target: Some(pb::get_change_request::Target::Series(goods(
                pb::Flow::Import,
            ))),
            from_period: "2010".into(),
            to_period: "2017".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing_period.code(), Code::NotFound);
    assert!(
        missing_period.message().contains("2010"),
        "{}",
        missing_period.message()
    );

    for status in [
        client
            .delete_series(pb::DeleteSeriesRequest {
                key: Some(goods(pb::Flow::Export)),
            })
            .await
            .unwrap_err(),
        client
            .stream_series(pb::StreamSeriesRequest {
                key: Some(goods(pb::Flow::Export)),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
}

#[tokio::test]
async fn an_invalid_batch_in_a_stream_stops_it_and_keeps_the_batches_before() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let mut client = data_client(&server).await;
    let good = pb::StreamWritePointsRequest {
        series: write_request(goods(pb::Flow::Export), &[("2016", 1.0)]).series,
        ..Default::default()
    };
    let bad = pb::StreamWritePointsRequest {
        series: write_request(goods(pb::Flow::Export), &[("2016", -1.0)]).series,
        ..Default::default()
    };
    let status = client
        .stream_write_points(tokio_stream::iter(vec![good, bad]))
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("batch 2:"),
        "{}",
        status.message()
    );
    assert!(
        status
            .message()
            .contains("the 1 batches before it were applied"),
        "{}",
        status.message()
    );
    assert_eq!(
        violated_fields(&status),
        vec!["series[0].points[0].value_usd"]
    );
    let kept = client
        .get_series(pb::GetSeriesRequest {
            key: Some(goods(pb::Flow::Export)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.values.len(), 1);
}

/// The same in columns: rows written through `StreamWriteColumns` read back as written, and a
/// bad message stops the call naming the column and row, the messages before it kept.
#[tokio::test]
async fn a_stream_of_columns_writes_its_rows_and_an_invalid_message_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let mut client = data_client(&server).await;
    let columns = |points: &[(&str, f64)]| {
        tradepact_client::data::columns_of(pb::StreamWritePointsRequest {
            series: write_request(goods(pb::Flow::Export), points).series,
            ..Default::default()
        })
    };
    let written = client
        .stream_write_columns(tokio_stream::iter(vec![
            columns(&[("2015", 1.0), ("2016", 2.0)]),
            columns(&[("2016", 3.0)]),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (written.batches, written.inserted, written.updated),
        (2, 2, 1)
    );
    let status = client
        .stream_write_columns(tokio_stream::iter(vec![
            columns(&[("2017", 4.0)]),
            columns(&[("2018", -1.0)]),
        ]))
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("batch 2:"),
        "{}",
        status.message()
    );
    assert_eq!(violated_fields(&status), vec!["value[0]"]);
    let kept = client
        .get_series(pb::GetSeriesRequest {
            key: Some(goods(pb::Flow::Export)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let values: Vec<(String, f64)> = kept
        .values
        .into_iter()
        .map(|p| (p.period, p.value_usd))
        .collect();
    assert_eq!(
        values,
        [
            ("2015".into(), 1.0),
            ("2016".into(), 3.0),
            ("2017".into(), 4.0)
        ]
    );
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_with_the_limit_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let mut client = data_client(&server).await;
    // ~20 MB of source text in one request; the server accepts 16 MiB.
    let mut request = write_request(goods(pb::Flow::Export), &[("2016", 1.0)]);
    request.series[0].points[0].source = "x".repeat(1000);
    let one = request.series[0].clone();
    request.series = vec![one; 20_000];
    let err = client.write_points(request).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{err:?}"
    );
    assert!(err.message().contains("16777216"), "{}", err.message());
    // Nothing was written, and the server is fine.
    let e = client
        .get_series(pb::GetSeriesRequest {
            key: Some(goods(pb::Flow::Export)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

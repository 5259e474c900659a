//! Long series: GetSeries pages, StreamSeries, StreamSeriesColumns, aggregation and ListSeries
//! pages agree.

use tokio_stream::StreamExt;
use tradepact_proto::data_v1 as pb;
use tradepact_tests::{data_client, key, start_data};

fn month(i: u32) -> String {
    format!("{:04}-{:02}", 1900 + i / 12, i % 12 + 1)
}

fn monthly(product: &str) -> pb::SeriesKey {
    key(
        "USA",
        "WLD",
        pb::Flow::Import,
        pb::TradeKind::Goods,
        product,
        pb::Frequency::Monthly,
    )
}

#[tokio::test]
async fn pages_streams_and_aggregates_cover_the_series_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let mut client = data_client(&server).await;
    const N: u32 = 2500;
    let points: Vec<pb::Point> = (0..N)
        .map(|i| pb::Point {
            period: month(i),
            value_usd: f64::from(i),
            source: String::new(),
        })
        .collect();
    client
        .write_points(pb::WritePointsRequest {
            series: vec![pb::SeriesPoints {
                key: Some(monthly("HS:87")),
                points,
                source: "s".into(),
            }],
            ..Default::default()
        })
        .await
        .unwrap();

    // GetSeries in pages of 1000: 1000 + 1000 + 500, in order, no overlap.
    let mut token = String::new();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = client
            .get_series(pb::GetSeriesRequest {
                key: Some(monthly("HS:87")),
                page_size: 1000,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(page.values.into_iter().map(|v| v.value_usd as u32));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..N).collect::<Vec<_>>());

    // StreamSeries over a window delivers exactly that window.
    let mut stream = client
        .stream_series(pb::StreamSeriesRequest {
            key: Some(monthly("HS:87")),
            start_period: month(100),
            end_period: month(2099),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut streamed = Vec::new();
    while let Some(msg) = stream.next().await {
        streamed.extend(msg.unwrap().values.into_iter().map(|v| v.value_usd as u32));
    }
    assert_eq!(streamed, (100..2100).collect::<Vec<_>>());

    // Annual sums, paged by two years; the range is in the returned (annual) frequency.
    let years = client
        .get_series(pb::GetSeriesRequest {
            key: Some(monthly("HS:87")),
            aggregate_to: pb::Frequency::Annual.into(),
            start_period: "1901".into(),
            end_period: "1902".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let sums: Vec<(String, f64, u32)> = years
        .values
        .iter()
        .map(|v| (v.period.clone(), v.value_usd, v.input_count))
        .collect();
    let sum = |from: u32| f64::from((from..from + 12).sum::<u32>());
    assert_eq!(
        sums,
        vec![("1901".into(), sum(12), 12), ("1902".into(), sum(24), 12)]
    );
}

#[tokio::test]
async fn list_series_pages_through_a_filtered_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let mut client = data_client(&server).await;
    let series = (1..=25)
        .map(|ch| pb::SeriesPoints {
            key: Some(monthly(&format!("HS:{ch:02}"))),
            points: vec![pb::Point {
                period: "2016-01".into(),
                value_usd: 1.0,
                source: String::new(),
            }],
            source: "s".into(),
        })
        .chain(std::iter::once(pb::SeriesPoints {
            key: Some(key(
                "KOR",
                "USA",
                pb::Flow::Export,
                pb::TradeKind::Goods,
                "HS:01",
                pb::Frequency::Annual,
            )),
            points: vec![pb::Point {
                period: "2016".into(),
                value_usd: 1.0,
                source: String::new(),
            }],
            source: "s".into(),
        }))
        .collect();
    client
        .write_points(pb::WritePointsRequest {
            series,
            ..Default::default()
        })
        .await
        .unwrap();

    let filter = pb::SeriesFilter {
        reporter: "USA".into(),
        product: "HS:*".into(),
        ..Default::default()
    };
    let mut token = String::new();
    let mut products = Vec::new();
    loop {
        let page = client
            .list_series(pb::ListSeriesRequest {
                filter: Some(filter.clone()),
                page_size: 10,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.series.len() <= 10);
        for s in page.series {
            assert_eq!((s.point_count, s.first_period.as_str()), (1, "2016-01"));
            products.push(s.key.unwrap().product);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<String> = (1..=25).map(|ch| format!("HS:{ch:02}")).collect();
    assert_eq!(products, expected);
}

/// Reads a whole `StreamSeriesColumns` call as (period, value, source, input count).
async fn read_columns(
    client: &mut tradepact_client::data::DataClient,
    request: pb::StreamSeriesColumnsRequest,
) -> Result<(Vec<(String, f64, String, u32)>, usize), tonic::Status> {
    use tradepact_client::data::{column_values, period_text};
    let mut stream = client.stream_series_columns(request).await?.into_inner();
    let (mut got, mut messages) = (Vec::new(), 0);
    while let Some(msg) = stream.next().await {
        let msg = msg?;
        messages += 1;
        assert!(
            msg.values_usd.len() <= 8192,
            "a message holds at most 8192 values"
        );
        assert_eq!(msg.period_deltas.len(), msg.values_usd.len());
        assert!(msg.source_indexes.is_empty() == (msg.sources.len() == 1));
        for v in column_values(&msg) {
            let period = period_text(msg.frequency(), v.ordinal).unwrap();
            got.push((period, v.value_usd, v.source.to_owned(), v.input_count));
        }
    }
    Ok((got, messages))
}

#[tokio::test]
async fn columns_carry_what_the_value_stream_carries() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let mut client = data_client(&server).await;
    // 20,000 months (three messages), the source changing every 5,000 points.
    const N: u32 = 20_000;
    let source = |i: u32| format!("source {}", i / 5000);
    let points: Vec<pb::Point> = (0..N)
        .map(|i| pb::Point {
            period: month(i),
            value_usd: f64::from(i) * 1.5,
            source: source(i),
        })
        .collect();
    client
        .write_points(pb::WritePointsRequest {
            series: vec![pb::SeriesPoints {
                key: Some(monthly("HS:87")),
                points,
                source: String::new(),
            }],
            ..Default::default()
        })
        .await
        .unwrap();

    let (all, messages) = read_columns(
        &mut client,
        pb::StreamSeriesColumnsRequest {
            key: Some(monthly("HS:87")),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(messages, 3);
    let expected: Vec<(String, f64, String, u32)> = (0..N)
        .map(|i| (month(i), f64::from(i) * 1.5, source(i), 1))
        .collect();
    assert_eq!(all, expected);

    // A window, aggregated to years, equals StreamSeries on the same request.
    let (years, _) = read_columns(
        &mut client,
        pb::StreamSeriesColumnsRequest {
            key: Some(monthly("HS:87")),
            start_period: "2200".into(),
            end_period: "2300".into(),
            aggregate_to: pb::Frequency::Annual.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut stream = client
        .stream_series(pb::StreamSeriesRequest {
            key: Some(monthly("HS:87")),
            start_period: "2200".into(),
            end_period: "2300".into(),
            aggregate_to: pb::Frequency::Annual.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut values = Vec::new();
    while let Some(msg) = stream.next().await {
        for v in msg.unwrap().values {
            values.push((v.period, v.value_usd, v.source, v.input_count));
        }
    }
    assert_eq!(years.len(), 101);
    assert_eq!(years, values);

    // An unknown series is NOT_FOUND, a bad period INVALID_ARGUMENT naming the field.
    let missing = read_columns(
        &mut client,
        pb::StreamSeriesColumnsRequest {
            key: Some(monthly("HS:88")),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let bad = read_columns(
        &mut client,
        pb::StreamSeriesColumnsRequest {
            key: Some(monthly("HS:87")),
            start_period: "2016".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("start_period"), "{}", bad.message());
}

// A time-major bulk ingest: 300 batches, each 10 months of the same 20 series, half of them
// rewriting the months of the batch before. Whether the server applies waiting batches one
// by one or together (a debug build of the server combined 34 writes in one run), the counts
// are exact and the last value written wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_major_stream_counts_every_point_once_and_keeps_the_last_value() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let mut client = data_client(&server).await;
    const SERIES: u32 = 20;
    const BATCHES: u32 = 300;
    const MONTHS: u32 = 10;
    // Batch b covers months 5b..5b+10: each batch rewrites the 5 newest months of the last.
    let value = |b: u32, s: u32, m: u32| f64::from(b * 1_000_000 + s * 10_000 + m);
    let batches: Vec<pb::StreamWritePointsRequest> = (0..BATCHES)
        .map(|b| pb::StreamWritePointsRequest {
            series: (0..SERIES)
                .map(|s| pb::SeriesPoints {
                    key: Some(monthly(&format!("HS:{:02}", s + 1))),
                    source: format!("batch {b}"),
                    points: (5 * b..5 * b + MONTHS)
                        .map(|m| pb::Point {
                            period: month(m),
                            value_usd: value(b, s, m),
                            source: String::new(),
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let summary = client
        .stream_write_points(tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    let months = 5 * (BATCHES - 1) + MONTHS;
    assert_eq!(summary.batches, u64::from(BATCHES));
    assert_eq!(summary.inserted, u64::from(SERIES * months));
    assert_eq!(
        summary.updated,
        u64::from(SERIES * (BATCHES * MONTHS - months))
    );
    for s in [0, SERIES - 1] {
        let got = client
            .get_series(pb::GetSeriesRequest {
                key: Some(monthly(&format!("HS:{:02}", s + 1))),
                page_size: 10_000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .values;
        assert_eq!(got.len() as u32, months);
        for (m, v) in got.iter().enumerate() {
            let m = m as u32;
            // The last batch that wrote month m: the one starting at or before it, latest.
            let b = (m / 5).min(BATCHES - 1);
            assert_eq!(v.value_usd, value(b, s, m), "series {s}, month {m}");
            assert_eq!(v.source, format!("batch {b}"), "series {s}, month {m}");
        }
    }
}

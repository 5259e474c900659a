//! Acknowledged writes survive SIGKILL: the server has no chance to flush on the way out.

use tokio_stream::StreamExt;
use tradepact_proto::data_v1 as pb;
use tradepact_tests::{data_client, key, start_data, write_request};

fn monthly_key(product: &str) -> pb::SeriesKey {
    key(
        "KOR",
        "USA",
        pb::Flow::Export,
        pb::TradeKind::Goods,
        product,
        pb::Frequency::Monthly,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_and_the_store_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let mut client = data_client(&server).await;

    // A unary write...
    let unary = client
        .write_points(write_request(
            monthly_key("HS:87"),
            &[("2017-01", 1.0), ("2017-02", 2.0)],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unary.inserted, 2);

    // ...and a streamed bulk write of 3 batches × 500 months each.
    let batches: Vec<pb::StreamWritePointsRequest> = (0..3)
        .map(|b| pb::StreamWritePointsRequest {
            series: vec![pb::SeriesPoints {
                key: Some(monthly_key("HS:8703")),
                source: "bulk".into(),
                points: (0..500)
                    .map(|i| {
                        let m = b * 500 + i;
                        pb::Point {
                            period: format!("{:04}-{:02}", 1900 + m / 12, m % 12 + 1),
                            value_usd: f64::from(m),
                            source: String::new(),
                        }
                    })
                    .collect(),
            }],
            ..Default::default()
        })
        .collect();
    let summary = client
        .stream_write_points(tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((summary.batches, summary.inserted), (3, 1500));

    // Kill right after the acknowledgements.
    drop(client);
    server.kill9();

    let server = start_data(dir.path());
    let mut client = data_client(&server).await;
    let cars = client
        .get_series(pb::GetSeriesRequest {
            key: Some(monthly_key("HS:87")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let got: Vec<(String, f64)> = cars
        .values
        .into_iter()
        .map(|v| (v.period, v.value_usd))
        .collect();
    assert_eq!(
        got,
        vec![("2017-01".to_owned(), 1.0), ("2017-02".to_owned(), 2.0)]
    );

    let mut stream = client
        .stream_series(pb::StreamSeriesRequest {
            key: Some(monthly_key("HS:8703")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0u32;
    while let Some(msg) = stream.next().await {
        for v in msg.unwrap().values {
            assert_eq!(v.value_usd, f64::from(n), "month {n}");
            n += 1;
        }
    }
    assert_eq!(n, 1500);
}

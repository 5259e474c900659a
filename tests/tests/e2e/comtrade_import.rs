//! A UN Comtrade file in its published layout (`tests/fixtures/comtrade`, its README says
//! what each row tests) through `tradepact import` and `StreamWritePoints` into a running data
//! service, read back value by value; the gzip-compressed TSV of the same rows writes the same
//! values again (updates, no new points).

use tradepact_proto::data_v1 as pb;
use tradepact_tests::{data_client, key, start_data, workspace};

fn import(url: &str, file: &str) -> (String, String) {
    let path = workspace().join("tests/fixtures/comtrade").join(file);
    let out = std::process::Command::new(tradepact_tests::binary("tradepact"))
        .args(["import", "--data-service", url, path.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stderr}");
    (stdout, stderr)
}

/// A series of the fixture, as the import keys it.
fn series(partner: &str, flow: pb::Flow, kind: pb::TradeKind, product: &str) -> pb::SeriesKey {
    key("USA", partner, flow, kind, product, pb::Frequency::Annual)
}

#[tokio::test]
async fn a_comtrade_file_goes_in_value_by_value_totals_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let (stdout, stderr) = import(&server.url(), "usa_kor_2018.csv");
    for said in [
        "6 rows imported (10 new points",
        "1 bad rows skipped; 11 rows in all",
        "1 breakdowns by customs procedure",
        "1 breakdowns by mode of transport",
        "1 breakdowns by second partner",
        "1 of flow \"DX\"",
    ] {
        assert!(stdout.contains(said), "{said:?} not in {stdout}");
    }
    assert!(
        stderr.contains("usa_kor_2018.csv:11: partnerCode \"9999\""),
        "{stderr}"
    );

    let cars = series("KOR", pb::Flow::Import, pb::TradeKind::Goods, "HS2017:8703");
    let with = |measure: pb::Measure, unit: &str| pb::SeriesKey {
        measure: measure.into(),
        quantity_unit: unit.into(),
        ..cars.clone()
    };
    let expected = [
        // The total, not a breakdown (100, 200 and 300 were the breakdowns).
        (cars.clone(), 16.2e9),
        (with(pb::Measure::CifUsd, ""), 16.25e9),
        (with(pb::Measure::FobUsd, ""), 16.0e9),
        (with(pb::Measure::NetWeightKg, ""), 2.0e9),
        (with(pb::Measure::Quantity, "u"), 1.3e6),
        (
            series("KOR", pb::Flow::Import, pb::TradeKind::Goods, "SITC4:7812"),
            5.0e9,
        ),
        (
            series("KOR", pb::Flow::ReExport, pb::TradeKind::Goods, "TOTAL"),
            1.5e9,
        ),
        (
            series("KOR", pb::Flow::Export, pb::TradeKind::Goods, "TOTAL"),
            56.3e9,
        ),
        (
            series("WLD", pb::Flow::Import, pb::TradeKind::Goods, "HS2017:8703"),
            179.0e9,
        ),
        (
            series(
                "KOR",
                pb::Flow::Import,
                pb::TradeKind::Services,
                "EBOPS2010:SF",
            ),
            7.0e9,
        ),
    ];
    let mut client = data_client(&server).await;
    for (key, value) in &expected {
        let read = client
            .get_series(pb::GetSeriesRequest {
                key: Some(key.clone()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("{key:?}: {s:?}"))
            .into_inner();
        let got: Vec<(&str, f64)> = read
            .values
            .iter()
            .map(|v| (v.period.as_str(), v.value_usd))
            .collect();
        assert_eq!(got, [("2018", *value)], "{key:?}");
    }
    // An HS code is not an SITC code of the same digits.
    let hs_7812 = series("KOR", pb::Flow::Import, pb::TradeKind::Goods, "HS:7812");
    let status = client
        .get_series(pb::GetSeriesRequest {
            key: Some(hs_7812),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    // Every measure is listed with MEASURE_ANY; values only without it.
    let list = |measure: pb::Measure| pb::ListSeriesRequest {
        filter: Some(pb::SeriesFilter {
            measure: measure.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let all = client.list_series(list(pb::Measure::Any)).await.unwrap();
    assert_eq!(all.into_inner().series.len(), expected.len());
    let values = client.list_series(list(pb::Measure::Unspecified)).await;
    assert_eq!(
        values.unwrap().into_inner().series.len(),
        expected.len() - 4
    );

    // The same rows, gzip-compressed TSV: every point again, as updates.
    let (stdout, _) = import(&server.url(), "usa_kor_2018.tsv.gz");
    assert!(
        stdout.contains("6 rows imported (0 new points, 10 updated"),
        "{stdout}"
    );
}

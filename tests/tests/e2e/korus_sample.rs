//! The KORUS sample: `tradepact up` loads it into an empty store (and only then), and
//! `tradepact import` streams the CSV into a running data service; both give the 2016 goods
//! balance USTR reported: exports 42.3 bn − imports 69.9 bn = −27.6 bn USD.

use std::time::Duration;

use tradepact_client::{with_deadline, DEFAULT_DEADLINE};
use tradepact_proto::data_v1 as pb;
use tradepact_tests::{data_client, start_data, start_up, workspace, READY_TIMEOUT};

async fn goods_2016(url: &str) -> pb::BalanceFigures {
    let mut client = tradepact_client::data::connect(url).await.unwrap();
    let request = pb::GetTradeBalanceRequest {
        reporter: "USA".into(),
        partner: "KOR".into(),
        start_period: "2016".into(),
        end_period: "2016".into(),
        ..Default::default()
    };
    let rows = client
        .get_trade_balance(with_deadline(request, DEFAULT_DEADLINE))
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.period, "2016");
    assert!(row.complete, "2016 has goods and services inputs: {row:?}");
    // Services surplus 21.6 − 10.9 = 10.7 bn; goods and services −16.9 bn.
    let services = row.services.clone().unwrap();
    assert!((services.balance_usd.unwrap() - 10.7e9).abs() < 1e3);
    assert!((row.total.clone().unwrap().balance_usd.unwrap() + 16.9e9).abs() < 1e3);
    row.goods.clone().unwrap()
}

fn assert_korus_2016(goods: &pb::BalanceFigures) {
    assert_eq!(goods.exports_usd, Some(42.3e9));
    assert_eq!(goods.imports_usd, Some(69.9e9));
    assert!(
        (goods.balance_usd.unwrap() + 27.6e9).abs() < 1e3,
        "{goods:?}"
    );
    assert!(goods.missing_inputs.is_empty());
}

// Multi-threaded, so that the clients' connections answer the server's GOAWAY while this
// thread waits for the process to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_loads_the_sample_into_an_empty_store_only() {
    let home = tempfile::tempdir().unwrap();
    let up = start_up(home.path());
    up.wait_for_log("loaded the KORUS sample dataset", READY_TIMEOUT);
    let data_url = format!(
        "http://{}",
        up.addr_of("tradepact.data.v1.TradeDataService")
    );
    assert_korus_2016(&goods_2016(&data_url).await);

    // Delete one series, restart: the store is not empty, so the sample is not reloaded.
    let mut client = tradepact_client::data::connect(&data_url).await.unwrap();
    let gone = pb::SeriesKey {
        reporter: "USA".into(),
        partner: "KOR".into(),
        flow: pb::Flow::Export.into(),
        kind: pb::TradeKind::Goods.into(),
        product: "HS:84".into(),
        frequency: pb::Frequency::Annual.into(),
        ..Default::default()
    };
    client
        .delete_series(pb::DeleteSeriesRequest {
            key: Some(gone.clone()),
        })
        .await
        .unwrap();
    drop(client);
    assert!(up.terminate(Duration::from_secs(30)).success());

    let up = start_up(home.path());
    up.wait_for_log("ready:", READY_TIMEOUT);
    assert!(
        !up.log().contains("loaded the KORUS sample"),
        "{}",
        up.log()
    );
    let data_url = format!(
        "http://{}",
        up.addr_of("tradepact.data.v1.TradeDataService")
    );
    let mut client = tradepact_client::data::connect(&data_url).await.unwrap();
    let err = client
        .get_series(pb::GetSeriesRequest {
            key: Some(gone),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn import_streams_the_csv_and_reports_bad_rows_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let csv = dir.path().join("korus_with_bad_rows.csv");
    let mut text = std::fs::read_to_string(workspace().join("datasets/korus_trade.csv")).unwrap();
    text.push_str("USA,KOR,EXPORT,GOODS,TOTAL,20x6,1,bad period\n");
    text.push_str("USA,KOR,EXPORT,GOODS,TOTAL,2020,NaN,bad value\n");
    std::fs::write(&csv, text).unwrap();

    let out = std::process::Command::new(tradepact_tests::binary("tradepact"))
        .args([
            "import",
            "--data-service",
            &server.url(),
            csv.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("66 rows imported (66 new points"),
        "{stdout}"
    );
    assert!(stdout.contains("2 bad rows skipped"), "{stdout}");
    assert!(
        stderr.contains("korus_with_bad_rows.csv:68: period"),
        "{stderr}"
    );
    assert!(stderr.contains("korus_with_bad_rows.csv:69:"), "{stderr}");

    assert_korus_2016(&goods_2016(&server.url()).await);

    // The goods deficit grew from 20.67 bn (2013) to 27.6 bn (2016).
    let mut client = data_client(&server).await;
    let change = client
        .get_change(pb::GetChangeRequest {
            target: Some(pb::get_change_request::Target::Balance(pb::BalanceTarget {
                reporter: "USA".into(),
                partner: "KOR".into(),
                kind: pb::TradeKind::Goods.into(),
                ..Default::default()
            })),
            from_period: "2013".into(),
            to_period: "2016".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!((change.from_value_usd + 20.67e9).abs() < 1e3, "{change:?}");
    assert!(
        (change.absolute_change_usd + 6.93e9).abs() < 1e3,
        "{change:?}"
    );
    assert_eq!(change.years, 3.0);
    let cagr = change.cagr.unwrap();
    assert!(
        (cagr - ((27.6f64 / 20.67).powf(1.0 / 3.0) - 1.0)).abs() < 1e-9,
        "{cagr}"
    );
}

/// `tradepact chart balance` draws the sample's balances as SVG: a point for every figure the
/// service has (goods 4, services 4, total 3 between 2011 and 2017), none for a missing one,
/// every year on the axis, the releases cited; the same chart as PNG, its text set (in the
/// built-in font); any other format is refused.
#[test]
fn the_balance_chart_draws_every_figure_and_no_missing_one() {
    let home = tempfile::tempdir().unwrap();
    let up = start_up(home.path());
    up.wait_for_log("ready:", READY_TIMEOUT);
    let url = format!(
        "http://{}",
        up.addr_of("tradepact.data.v1.TradeDataService")
    );
    let chart = |out: &std::path::Path| {
        std::process::Command::new(tradepact_tests::binary("tradepact"))
            .args([
                "chart", "balance", "USA", "KOR", "--from", "2011", "--to", "2017",
            ])
            .args(["--data-service", &url, "--out"])
            .arg(out)
            .output()
            .unwrap()
    };
    let out = home.path().join("balance.svg");
    let drawn = chart(&out);
    assert!(
        drawn.status.success(),
        "{}",
        String::from_utf8_lossy(&drawn.stderr)
    );
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.contains("USA trade balance with KOR, bn USD"), "{svg}");
    assert_eq!(svg.matches("<circle").count(), 4 + 4 + 3, "{svg}");
    for year in 2011..=2017 {
        assert!(
            svg.contains(&format!("\n{year}\n")),
            "no {year} on the axis"
        );
    }
    assert!(
        svg.contains("Release ustr-trade-facts-2016 (2017-03-07)"),
        "{svg}"
    );
    let png = home.path().join("balance.png");
    let drawn = chart(&png);
    assert!(
        drawn.status.success(),
        "{}",
        String::from_utf8_lossy(&drawn.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(&png).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    // 900 wide, the SVG's height (480 for the plot, 18 per caption line: the gap note and
    // one per release cited).
    let caption_lines = 1 + svg.matches("Release ").count() as u32;
    assert_eq!((frame.width, frame.height), (900, 480 + 18 * caption_lines));
    let channels = frame.line_size / frame.width as usize;
    let dark_in_rows = |rows: std::ops::Range<u32>| {
        rows.flat_map(|y| (0..frame.width).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let at = y as usize * frame.line_size + x as usize * channels;
                pixels[at..at + 3].iter().all(|&c| c < 128)
            })
            .count()
    };
    // The caption's text under the plot, and the title.
    assert!(dark_in_rows(480..frame.height) > 500, "no caption text");
    assert!(dark_in_rows(0..40) > 200, "no title");
    let refused = chart(&home.path().join("balance.jpg"));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains(".svg or a .png"));
}

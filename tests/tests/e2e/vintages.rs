//! Releases (vintages) through the real binaries: `tradepact up` loads the KORUS figures as each
//! source published them (`datasets/korus_releases.csv`); the 2011 and 2016 goods deficits read
//! as of each release, through gRPC, grpcurl and the CLI; what changed between two releases;
//! watchers see a revision with its release, and a resumed watch replays as of a release; bad
//! release input is refused and writes nothing.

use std::process::Command;

use tokio_stream::StreamExt;
use tonic::Code;
use tonic_types::StatusExt;
use tradepact_proto::data_v1 as pb;
use tradepact_tests::{
    binary, data_client, grpcurl, key, start_data, start_up, write_request, READY_TIMEOUT,
};

type Client = tradepact_client::data::DataClient;

/// The goods figures of `year` as of a release (`""`: the latest), with the row's releases.
async fn goods(
    client: &mut Client,
    year: &str,
    release: &str,
) -> Option<(pb::BalanceFigures, Vec<String>)> {
    let rows = client
        .get_trade_balance(pb::GetTradeBalanceRequest {
            reporter: "USA".into(),
            partner: "KOR".into(),
            start_period: year.into(),
            end_period: year.into(),
            as_of_release: release.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    rows.into_iter()
        .next()
        .map(|r| (r.goods.unwrap(), r.releases))
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_korus_deficits_read_as_of_each_release() {
    let home = tempfile::tempdir().unwrap();
    let up = start_up(home.path());
    up.wait_for_log("ready:", READY_TIMEOUT);
    let addr = up.addr_of("tradepact.data.v1.TradeDataService");
    let url = format!("http://{addr}");
    let mut client = tradepact_client::data::connect(&url).await.unwrap();

    // 2011: 13.5 bn from the archived USTR page's exports and imports; 13.2 bn as Lighthizer
    // reported it in July 2017 (not yet published as of the 2012 page).
    let (g, releases) = goods(&mut client, "2011", "ustr-korea-2012").await.unwrap();
    assert!(close(g.balance_usd, -13.5e9), "{g:?}");
    assert_eq!(g.reported_balance_usd, None, "{g:?}");
    assert_eq!(releases, ["ustr-korea-2012"]);
    let (g, _) = goods(&mut client, "2011", "ustr-lighthizer-2017-07")
        .await
        .unwrap();
    assert!(close(g.balance_usd, -13.5e9) && close(g.reported_balance_usd, -13.2e9));
    // 2016: not published as of 2012; then 27.7 (Trade Facts), 27.6 (Lighthizer), 27.57
    // (Commerce, February 2018, the latest).
    assert!(goods(&mut client, "2016", "ustr-korea-2012")
        .await
        .is_none());
    for (release, reported) in [
        ("ustr-trade-facts-2016", -27.7e9),
        ("ustr-lighthizer-2017-07", -27.6e9),
        ("commerce-2018-02", -27.57e9),
        ("", -27.57e9),
    ] {
        let (g, releases) = goods(&mut client, "2016", release).await.unwrap();
        assert!(close(g.balance_usd, -27.6e9), "{release}: {g:?}");
        assert!(close(g.reported_balance_usd, reported), "{release}: {g:?}");
        assert!(
            releases.contains(&"ustr-trade-facts-2016".to_owned()),
            "{releases:?}"
        );
    }
    // As of a day: what had been published by then (Lighthizer's July statement, not yet
    // Commerce's February data).
    let by_day = client
        .get_trade_balance(pb::GetTradeBalanceRequest {
            reporter: "USA".into(),
            partner: "KOR".into(),
            start_period: "2016".into(),
            end_period: "2016".into(),
            as_of_date: "2017-12-31".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    let g = by_day[0].goods.clone().unwrap();
    assert!(close(g.reported_balance_usd, -27.6e9), "{g:?}");

    // The releases, in date order, counted for the US series.
    let listed = client
        .list_releases(pb::ListReleasesRequest {
            filter: Some(pb::SeriesFilter {
                reporter: "USA".into(),
                measure: pb::Measure::Any.into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .releases;
    let labels: Vec<_> = listed
        .iter()
        .map(|r| r.release.as_ref().unwrap().label.as_str())
        .collect();
    assert_eq!(
        labels,
        [
            "ustr-korea-2012",
            "ustr-trade-facts-2016",
            "ustr-lighthizer-2017-07",
            "commerce-2018-02",
            "whitehouse-2018-09-24",
            "ustr-trade-facts-2017"
        ]
    );
    assert_eq!(listed.iter().map(|r| r.values).sum::<u64>(), 26);

    // What changed from Trade Facts 2016 to Commerce 2018-02: the 2016 goods balance as
    // reported, −27.7 → −27.57 bn (+0.13 bn, +0.47 %), among the new 2017 figures.
    let diff = client
        .diff_releases(pb::DiffReleasesRequest {
            filter: Some(pb::SeriesFilter {
                reporter: "USA".into(),
                partner: "KOR".into(),
                measure: pb::Measure::Any.into(),
                ..Default::default()
            }),
            from_release: "ustr-trade-facts-2016".into(),
            to_release: "commerce-2018-02".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!diff.truncated);
    let revised: Vec<_> = diff
        .revisions
        .iter()
        .filter(|r| r.old_value.is_some())
        .collect();
    assert_eq!(revised.len(), 1, "{:?}", diff.revisions);
    let r = revised[0];
    assert_eq!(
        (r.period.as_str(), r.release.as_str()),
        ("2016", "commerce-2018-02")
    );
    assert!(close(r.change, 0.13e9) && (r.percent.unwrap() - 0.4693).abs() < 1e-3);
    assert_eq!(diff.revisions.len(), 5, "{:?}", diff.revisions);

    // The CLI and grpcurl say the same.
    let cli = |args: &[&str]| {
        let out = Command::new(binary("tradepact"))
            .args(args)
            .env("TRADEPACT_DATA_SERVICE_URL", &url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let revisions = cli(&[
        "revisions",
        "USA",
        "KOR",
        "--from",
        "ustr-trade-facts-2016",
        "--to",
        "commerce-2018-02",
    ]);
    assert!(
        revisions.contains("-27.700   -27.570     0.130    +0.47"),
        "{revisions}"
    );
    let balance = cli(&[
        "balance",
        "USA",
        "KOR",
        "--from",
        "2011",
        "--to",
        "2011",
        "--as-of",
        "ustr-lighthizer-2017-07",
    ]);
    assert!(
        balance.contains("-13.5") && balance.contains("-13.20"),
        "{balance}"
    );
    let (ok, out, err) = grpcurl(
        &addr,
        &[
            "-d",
            r#"{"reporter":"USA","partner":"KOR","start_period":"2016","end_period":"2016","as_of_release":"ustr-trade-facts-2016"}"#,
            "--",
            "tradepact.data.v1.TradeDataService/GetTradeBalance",
        ],
    );
    assert!(
        ok && out.contains("\"reportedBalanceUsd\": -2.77e+10"),
        "{out}{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_are_watched_with_their_release_and_bad_releases_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_data(dir.path());
    let mut client = data_client(&server).await;
    let exports = key(
        "USA",
        "KOR",
        pb::Flow::Export,
        pb::TradeKind::Goods,
        "TOTAL",
        pb::Frequency::Annual,
    );
    let release = |label: &str, date: &str| pb::Release {
        label: label.into(),
        date: date.into(),
        source: format!("{label} source"),
    };
    let mut first = write_request(exports.clone(), &[("2016", 42.3e9)]);
    first.release = Some(release("a-2017", "2017-03-07"));
    first.series[0].source = String::new(); // the release's source is the points'
    let from = client
        .write_points(first)
        .await
        .unwrap()
        .into_inner()
        .sequence;

    let mut watch = client
        .watch_series(pb::WatchSeriesRequest {
            filter: Some(pb::SeriesFilter {
                partner: "KOR".into(),
                ..Default::default()
            }),
            from_sequence: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut second = write_request(exports.clone(), &[("2016", 42.0e9)]);
    second.release = Some(release("b-2018", "2018-02-12"));
    client.write_points(second).await.unwrap();
    let seen = watch.next().await.unwrap().unwrap();
    assert_eq!(seen.release, "b-2018");
    assert_eq!(seen.points[0].value_usd, 42.0e9);

    // A resumed watch replays both writes with the values as of a release, or the current ones.
    let resume = |release: &str| pb::WatchSeriesRequest {
        filter: Some(pb::SeriesFilter {
            partner: "KOR".into(),
            ..Default::default()
        }),
        from_sequence: from,
        as_of_release: release.into(),
        ..Default::default()
    };
    for (as_of, value) in [("a-2017", 42.3e9), ("", 42.0e9)] {
        let mut replay = client
            .watch_series(resume(as_of))
            .await
            .unwrap()
            .into_inner();
        for release in ["a-2017", "b-2018"] {
            let m = replay.next().await.unwrap().unwrap();
            let got = (m.release.as_str(), m.points.len(), m.points[0].value_usd);
            assert_eq!(got, (release, 1, value), "replay as of {as_of:?}");
        }
    }
    let status = client.watch_series(resume("c-2019")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // Reads: the latest, and as of the first release with its source.
    let read = |release: &str| pb::GetSeriesRequest {
        key: Some(exports.clone()),
        as_of_release: release.into(),
        ..Default::default()
    };
    let latest = client
        .get_series(read(""))
        .await
        .unwrap()
        .into_inner()
        .values;
    assert_eq!(
        (latest[0].value_usd, latest[0].release.as_str()),
        (42.0e9, "b-2018")
    );
    let old = client
        .get_series(read("a-2017"))
        .await
        .unwrap()
        .into_inner()
        .values;
    assert_eq!(old[0].value_usd, 42.3e9);
    assert_eq!(old[0].source, "a-2017 source");

    // A release keeps its date; unknown releases are NOT_FOUND; one of release or date.
    let mut moved = write_request(exports.clone(), &[("2017", 1.0)]);
    moved.release = Some(release("a-2017", "2017-03-08"));
    let status = client.write_points(moved).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let fields: Vec<_> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["release.date"]);
    let mut bad = write_request(exports.clone(), &[("2017", 1.0)]);
    bad.release = Some(release("no spaces", "2017-02-30"));
    let status = client.write_points(bad).await.unwrap_err();
    let fields: Vec<_> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["release.label", "release.date"]);
    let unknown = client.get_series(read("c-2019")).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let mut both = read("a-2017");
    both.as_of_date = "2018-01-01".into();
    let status = client.get_series(both).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // Nothing of the refused writes is there: 2016 only.
    let all = client
        .get_series(read(""))
        .await
        .unwrap()
        .into_inner()
        .values;
    assert_eq!(all.len(), 1, "{all:?}");

    // A stream writes one release: a later batch naming another is refused.
    let batches = vec![
        pb::StreamWritePointsRequest {
            series: write_request(exports.clone(), &[("2018", 1.0)]).series,
            release: Some(release("b-2018", "2018-02-12")),
        },
        pb::StreamWritePointsRequest {
            series: write_request(exports.clone(), &[("2019", 1.0)]).series,
            release: Some(release("a-2017", "2017-03-07")),
        },
    ];
    let status = client
        .stream_write_points(tokio_stream::iter(batches))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("batch 2:"), "{status:?}");
}

//! Stores written by older tradepacts (formats 1–3, `tests/fixtures/store-format-N`): the
//! data service refuses each at start with a message naming the command that migrates it, and
//! after `tradepact migrate-store` it serves the same figures; the old store is kept beside it.
//! And a store whose chunk no longer verifies names what is lost.

use tradepact_proto::data_v1 as pb;
use tradepact_tests::{binary, data_client, start_data, workspace};

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_format_1_store_is_refused_then_migrated_and_read_back() {
    refused_then_migrated_and_read_back(1).await;
}

#[tokio::test]
async fn a_format_2_store_is_refused_then_migrated_and_read_back() {
    refused_then_migrated_and_read_back(2).await;
}

#[tokio::test]
async fn a_format_3_store_is_refused_then_migrated_and_read_back() {
    refused_then_migrated_and_read_back(3).await;
}

async fn refused_then_migrated_and_read_back(format: u32) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("trade");
    copy_dir(
        &workspace().join(format!("tests/fixtures/store-format-{format}/trade")),
        &store,
    );
    let store_arg = store.to_str().unwrap();

    let refused = std::process::Command::new(binary("tradepact-data"))
        .args(["--listen", "127.0.0.1:0", "--data-dir", store_arg])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("tradepact migrate-store {store_arg}")),
        "{stderr}"
    );

    let migrated = std::process::Command::new(binary("tradepact"))
        .args(["migrate-store", store_arg])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&migrated.stdout);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(
        stdout.contains(&format!("from format {format} to 4")),
        "{stdout}"
    );
    assert!(dir.path().join(format!("trade.format-{format}")).exists());

    let server = start_data(&store);
    let mut client = data_client(&server).await;
    let rows = client
        .get_trade_balance(pb::GetTradeBalanceRequest {
            reporter: "USA".into(),
            partner: "KOR".into(),
            start_period: "2016".into(),
            end_period: "2016".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    let goods = rows[0].goods.clone().unwrap();
    assert_eq!(
        (goods.exports_usd, goods.imports_usd),
        (Some(42.3e9), Some(69.9e9))
    );
    let listed = client
        .list_series(pb::ListSeriesRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .series;
    let points: u64 = listed.iter().map(|s| s.point_count).sum();
    // Format 3's store also holds the sample's releases (9 reported-balance points).
    let expected = if format == 3 { 75 } else { 66 };
    assert_eq!(points, expected, "every point of the sample");
    // Migrating again finds nothing to do.
    drop(client);
    drop(server);
    let again = std::process::Command::new(binary("tradepact"))
        .args(["migrate-store", store_arg])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
}

/// A flipped byte in a stored chunk (inside a page sled itself still accepts): reading that
/// series answers `DATA_LOSS` naming the series and its periods, other series still read, and
/// `tradepact verify-store` lists it and fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_chunk_is_data_loss_naming_the_series_and_verify_store_lists_it() {
    use tradepact_tests::{key, write_request};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("trade");
    let series = |partner: &str| {
        key(
            "USA",
            partner,
            pb::Flow::Export,
            pb::TradeKind::Goods,
            "TOTAL",
            pb::Frequency::Annual,
        )
    };
    let server = start_data(&store);
    let mut client = data_client(&server).await;
    for partner in ["JPN", "KOR"] {
        let request = write_request(series(partner), &[("2015", 1e9), ("2016", 2e9)]);
        client.write_points(request).await.unwrap();
    }
    drop(client);
    assert!(server
        .terminate(std::time::Duration::from_secs(10))
        .success());

    // Keys sort by reporter and partner: the first series entry (`K` + key) is USA-JPN, whose
    // chunk (one block) ends its entry.
    {
        let db = sled::open(&store).unwrap();
        let tree = db.open_tree("series").unwrap();
        let (entry, value) = tree.scan_prefix(b"K").next().unwrap().unwrap();
        let mut bytes = value.to_vec();
        let at = bytes.len() - 7;
        bytes[at] ^= 0x40;
        tree.insert(entry, bytes).unwrap();
        db.flush().unwrap();
    }

    let server = start_data(&store);
    let mut client = data_client(&server).await;
    let read = |partner: &str| pb::GetSeriesRequest {
        key: Some(series(partner)),
        ..Default::default()
    };
    let status = client.get_series(read("JPN")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::DataLoss, "{status:?}");
    let message = status.message();
    assert!(
        message.contains("USA") && message.contains("JPN") && message.contains("checksum"),
        "{message}"
    );
    assert!(message.contains("periods"), "{message}");
    let kor = client.get_series(read("KOR")).await.unwrap().into_inner();
    assert_eq!(kor.values.len(), 2);
    drop(client);
    assert!(server
        .terminate(std::time::Duration::from_secs(10))
        .success());

    let verified = std::process::Command::new(binary("tradepact"))
        .arg("verify-store")
        .arg(&store)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&verified.stdout);
    assert!(!verified.status.success(), "{out}");
    assert!(out.contains("; 1 corrupt"), "{out}");
    let corrupt = out.lines().find(|l| l.starts_with("corrupt:")).unwrap();
    assert!(corrupt.contains("JPN"), "{out}");
}

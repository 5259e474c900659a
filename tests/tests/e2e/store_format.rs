//! Stores written by older tradepacts (formats 1–3, `tests/fixtures/store-format-N`): the
//! data service refuses each at start with a message naming the command that migrates it, and
//! after `tradepact migrate-store` it serves the same figures; the old store is kept beside it.

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

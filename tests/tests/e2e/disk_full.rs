//! A full disk: writes fail with UNAVAILABLE and a clear log line, reads keep working, a
//! restart on the full disk fails at start with a clear message, and once there is room again
//! the store opens with every acknowledged write.
//!
//! Needs a small tmpfs mount (root, as in CI); where mounting is not allowed the test says so
//! and does nothing.

use std::process::Command;

use tonic::Code;
use tradepact_proto::data_v1 as pb;
use tradepact_tests::{binary, data_client, key, start_data, write_request, READY_TIMEOUT};

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn series(i: u32) -> pb::SeriesKey {
    key(
        "USA",
        "KOR",
        pb::Flow::Import,
        pb::TradeKind::Goods,
        &format!("HS:{:02}", i % 90 + 10),
        pb::Frequency::Annual,
    )
}

/// `n` characters that do not compress, different for each `seed`.
fn noise(seed: u32, n: usize) -> String {
    let mut x = u64::from(seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_and_corrupts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(dir.path(), "3m") else {
        eprintln!("cannot mount a tmpfs here (needs root); the full-disk test did not run");
        return;
    };
    let store = dir.path().join("store");
    let server = start_data(&store);
    let mut client = data_client(&server).await;
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..2000u32 {
        let year = format!("{}", 1000 + i);
        let mut request = write_request(series(i), &[(year.as_str(), f64::from(i))]);
        // Incompressible (the store compresses its pages): 1000 pseudo-random characters.
        request.series[0].source = noise(i, 1000);
        match client.write_points(request).await {
            Ok(_) => acked.push((i, year)),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("3 MB filled up");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    // The server logs the cause before it answers; its log reaches the test a little later.
    server.wait_for_log("No space left on device", READY_TIMEOUT);
    // Reads still work.
    let (i, year) = acked.last().unwrap().clone();
    let read = client
        .get_series(pb::GetSeriesRequest {
            key: Some(series(i)),
            start_period: year.clone(),
            end_period: year.clone(),
            ..Default::default()
        })
        .await
        // The server's log with it, so that a failure here says which I/O error it was.
        .unwrap_or_else(|s| {
            panic!(
                "a read after the disk filled failed: {s:?}; the server's log:\n{}",
                server.log()
            )
        })
        .into_inner();
    assert_eq!(read.values[0].value_usd, f64::from(i));
    drop(client);
    server.kill9();

    // A restart on the full disk either starts or says why it cannot.
    let mut child = Command::new(binary("tradepact-data"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            store.to_str().unwrap(),
        ])
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut text = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line.unwrap();
        text.push_str(&line);
        text.push('\n');
        if line.contains("listening on") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        text.contains("listening on") || text.contains("No space left on device"),
        "unclear failure on a full disk:\n{text}"
    );

    // Room again: the store opens cleanly and holds every acknowledged write.
    fs.resize("64m");
    let server = start_data(&store);
    let mut client = data_client(&server).await;
    for (i, year) in &acked {
        let read = client
            .get_series(pb::GetSeriesRequest {
                key: Some(series(*i)),
                start_period: year.clone(),
                end_period: year.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(read.values.len(), 1, "acknowledged write {i} lost");
        assert_eq!(read.values[0].value_usd, f64::from(*i));
    }
    eprintln!(
        "full disk after {} acknowledged writes; all of them there after the restart",
        acked.len()
    );
    drop(client);
    drop(server);
}

#[test]
fn a_read_only_data_directory_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,ro", "tmpfs"])
        .arg(dir.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("cannot mount a read-only tmpfs here (needs root); the test did not run");
        return;
    }
    let _mounted = Tmpfs(dir.path().to_path_buf());
    let out = Command::new(binary("tradepact-data"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("store"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert!(stderr.contains("cannot create data directory"), "{stderr}");
}

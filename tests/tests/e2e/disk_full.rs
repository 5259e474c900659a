//! A full disk: writes fail with UNAVAILABLE and a clear log line, reads keep working, a
//! restart on the full disk fails at start with a clear message, and once there is room again
//! the store opens with every acknowledged write. A failed write is never read (the store
//! reopens before it is answered), health says when writes cannot be made durable, and writes
//! resume by themselves within 10 s of room on disk.
//!
//! Needs a small tmpfs mount (root, as in CI); where mounting is not allowed the test says so
//! and does nothing.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

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
    let Some(fs) = Tmpfs::mount(dir.path(), "6m") else {
        eprintln!("cannot mount a tmpfs here (needs root); the full-disk test did not run");
        return;
    };
    let store = dir.path().join("store");
    let server = start_reserving(&store);
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
    // The server logs the cause before it answers (the disk nearly full, or a write that
    // failed); its log reaches the test a little later.
    server.wait_for_log("writes are refused until", READY_TIMEOUT);
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

/// The health of `service` on `server`.
async fn health(server: &tradepact_tests::Process, service: &str) -> i32 {
    let channel = tradepact_client::channel(&server.url()).await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

/// Waits until `server`'s health for `service` is `want`, for up to `within`.
async fn until_health(
    server: &tradepact_tests::Process,
    service: &str,
    want: i32,
    within: Duration,
) {
    let started = Instant::now();
    while health(server, service).await != want {
        assert!(
            started.elapsed() < within,
            "health of {service} is not {want} after {within:?}: {}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
const NOT_SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;
const WRITES: &str = "tradepact.data.v1.TradeDataService.writes";
const NEGOTIATION_WRITES: &str = "tradepact.negotiation.v1.NegotiationService.writes";

/// The values of `series(i)` for each `i` of `keys`, by year.
async fn read_all(
    client: &mut tradepact_client::data::DataClient,
    keys: &[u32],
) -> HashMap<(u32, String), f64> {
    let mut out = HashMap::new();
    for &i in keys {
        let read = client
            .get_series(pb::GetSeriesRequest {
                key: Some(series_of(i)),
                start_period: "1000".into(),
                end_period: "3000".into(),
                ..Default::default()
            })
            .await;
        let read = match read {
            Err(s) if s.code() == Code::NotFound => continue,
            read => read
                .unwrap_or_else(|s| panic!("read of series {i}: {s:?}"))
                .into_inner(),
        };
        for v in read.values {
            out.insert((i, v.period), v.value_usd);
        }
    }
    out
}

/// Series `i` of the failed-write test: one per product and partner.
fn series_of(i: u32) -> pb::SeriesKey {
    let partners = ["KOR", "JPN", "CHN", "DEU", "MEX", "CAN", "FRA", "GBR"];
    key(
        "USA",
        partners[(i / 90) as usize % partners.len()],
        pb::Flow::Import,
        pb::TradeKind::Goods,
        &format!("HS:{:02}", i % 90 + 10),
        pb::Frequency::Annual,
    )
}

/// The outside test's sequence: fill the disk with writes that also update earlier points,
/// then read every point (no value of a failed call), free space (writes resume within 10 s,
/// no restart), verify the store, restart, same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_is_never_read_and_writes_resume_when_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(dir.path(), "8m") else {
        eprintln!("cannot mount a tmpfs here (needs root); the failed-write test did not run");
        return;
    };
    let store = dir.path().join("store");
    let server = start_reserving(&store);
    let mut client = data_client(&server).await;
    // The base: 40 series with a value in 2000.
    let base: Vec<u32> = (0..40).collect();
    let mut acked: HashMap<(u32, String), f64> = HashMap::new();
    for &i in &base {
        client
            .write_points(write_request(series_of(i), &[("2000", f64::from(i))]))
            .await
            .unwrap();
        acked.insert((i, "2000".into()), f64::from(i));
    }
    // Fill: each write adds an incompressible point to a new series and updates a base point.
    let mut failed: Vec<(u32, f64)> = Vec::new();
    let mut filler = 40u32;
    let mut attempt = 0u32;
    while failed.len() < 40 {
        attempt += 1;
        assert!(attempt < 20_000, "4 MB did not fill");
        let j = attempt % 40;
        let value = 1e6 + f64::from(attempt);
        let mut request = write_request(series_of(j), &[("2000", value)]);
        // 720 series (partners × products), each with years from 1000 on.
        let (series, year) = (filler % 720, format!("{}", 1000 + filler / 720));
        let mut fill = write_request(series_of(series), &[(&year, f64::from(filler))]).series;
        fill[0].source = noise(attempt, 1000);
        request.series.extend(fill);
        match client.write_points(request).await {
            Ok(_) => {
                acked.insert((j, "2000".into()), value);
                acked.insert((series, year), f64::from(filler));
                filler += 1;
            }
            Err(e) => {
                assert_eq!(e.code(), Code::Unavailable, "{e:?}");
                failed.push((j, value));
            }
        }
    }
    eprintln!("{} writes acknowledged, then 40 refused", attempt - 40);
    // Health follows within a tenth of a second.
    let started = Instant::now();
    while health(&server, WRITES).await != NOT_SERVING {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "writes' health stays SERVING; the server's log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        health(&server, "tradepact.data.v1.TradeDataService").await,
        SERVING
    );

    // Every point reads as acknowledged; no value of a failed call.
    let keys: Vec<u32> = (0..filler.min(720)).collect();
    let read = read_all(&mut client, &keys).await;
    for (point, value) in &acked {
        assert_eq!(
            read.get(point),
            Some(value),
            "point {point:?}: {:?}",
            read.get(point)
        );
    }
    for (j, value) in &failed {
        assert_ne!(
            read.get(&(*j, "2000".to_owned())),
            Some(value),
            "a failed write of series {j} was read"
        );
    }
    assert_eq!(
        read.len(),
        acked.len(),
        "points read that were never acknowledged"
    );

    // Room again: writes resume within 10 s, without a restart.
    fs.resize("64m");
    let freed = Instant::now();
    loop {
        let probe = client
            .write_points(write_request(series_of(0), &[("2001", 1.0)]))
            .await;
        if probe.is_ok() {
            break;
        }
        assert!(
            freed.elapsed() < Duration::from_secs(10),
            "writes did not resume within 10 s: {probe:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("writes resumed {:?} after space was freed", freed.elapsed());
    acked.insert((0, "2001".into()), 1.0);
    let started = Instant::now();
    while health(&server, WRITES).await != SERVING {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "writes' health stays NOT_SERVING"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read_all(&mut client, &keys).await, acked);
    drop(client);
    let exit = server.terminate(Duration::from_secs(30));
    assert!(exit.success(), "SIGTERM after recovery: {exit:?}");

    // The store verifies clean, and a restart answers the same.
    let verified = Command::new(binary("tradepact"))
        .args(["verify-store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "verify-store: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    let server = start_reserving(&store);
    let mut client = data_client(&server).await;
    assert_eq!(read_all(&mut client, &keys).await, acked);
}

/// `tradepact-data` on `store` with a reserve of 2 MiB (the default 16 would not fit).
fn start_reserving(store: &std::path::Path) -> tradepact_tests::Process {
    tradepact_tests::Process::start(
        "tradepact-data",
        &[
            "--listen",
            "127.0.0.1:0",
            "--store-reserve-mib",
            "2",
            "--data-dir",
            store.to_str().unwrap(),
        ],
    )
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

/// Fills `dir`'s filesystem with a file `name` until `keep` bytes are left free.
fn fill_up(dir: &std::path::Path, name: &str, keep: u64) {
    use std::io::Write;
    let mut file = std::fs::File::create(dir.join(name)).unwrap();
    let block = vec![7u8; 64 * 1024];
    while fs2_free(dir) > keep + block.len() as u64 {
        if file.write_all(&block).is_err() {
            break;
        }
    }
    file.sync_all().unwrap();
}

/// Bytes free on `dir`'s filesystem (`df`).
fn fs2_free(dir: &std::path::Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The disk filled at once, by another file and one large write: sled fails the write, the
/// store reopens itself on its reserve's space before answering, the write is never read,
/// reads go on, and writes resume when the other file is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_meets_a_full_disk_is_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_fs) = Tmpfs::mount(dir.path(), "16m") else {
        eprintln!("cannot mount a tmpfs here (needs root); the test did not run");
        return;
    };
    let store = dir.path().join("store");
    let server = start_reserving(&store);
    let mut client = data_client(&server).await;
    for i in 0..40 {
        client
            .write_points(write_request(series_of(i), &[("2000", f64::from(i))]))
            .await
            .unwrap();
    }
    // 1.5 MiB free: above the low watermark (half the 2 MiB reserve), below the next write.
    fill_up(dir.path(), "other", 1536 * 1024);
    let mut big = write_request(series_of(0), &[("2000", 999.0)]);
    for i in 0..3000u32 {
        let (series, year) = (i % 720, format!("{}", 1100 + i / 720));
        let mut more = write_request(series_of(series), &[(&year, 5.0)]).series;
        more[0].source = noise(i, 1000);
        big.series.extend(more);
    }
    let refused = client.write_points(big).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    server.wait_for_log("store reopened after a failed write", READY_TIMEOUT);
    let read = read_all(&mut client, &(0..720).collect::<Vec<_>>()).await;
    let expected: HashMap<(u32, String), f64> = (0..40)
        .map(|i| ((i, "2000".to_owned()), f64::from(i)))
        .collect();
    assert_eq!(read, expected, "a value of the failed write was read");

    std::fs::remove_file(dir.path().join("other")).unwrap();
    let freed = Instant::now();
    while client
        .write_points(write_request(series_of(1), &[("2001", 1.0)]))
        .await
        .is_err()
    {
        assert!(
            freed.elapsed() < Duration::from_secs(10),
            "writes did not resume"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(client);
    assert!(server.terminate(Duration::from_secs(30)).success());
    let server = start_reserving(&store);
    let mut client = data_client(&server).await;
    let mut expected = expected;
    expected.insert((1, "2001".to_owned()), 1.0);
    assert_eq!(
        read_all(&mut client, &(0..720).collect::<Vec<_>>()).await,
        expected
    );
}

/// A negotiation of 2 issues × 500 options with long labels (about 40 kB in the log).
fn bulky_negotiation(n: u32) -> tradepact_proto::negotiation_v1::CreateNegotiationRequest {
    negotiation_of(n, 500, 40)
}

/// A negotiation of 2 issues × `options` options with labels of `label` bytes.
fn negotiation_of(
    n: u32,
    options: u32,
    label: usize,
) -> tradepact_proto::negotiation_v1::CreateNegotiationRequest {
    use tradepact_proto::negotiation_v1 as npb;
    let issue = |id: &str| npb::Issue {
        id: id.into(),
        label: id.into(),
        options: (0..options)
            .map(|o| npb::IssueOption {
                id: format!("o{o}"),
                label: noise(n * 1000 + o, label),
                trade_effects: vec![],
            })
            .collect(),
    };
    npb::CreateNegotiationRequest {
        title: format!("bulky {n}"),
        agreement: "a test".into(),
        parties: vec!["US".into(), "KOR".into()],
        issues: vec![issue("tariff"), issue("quota")],
        deadline_rounds: 5,
        ..Default::default()
    }
}

/// Every negotiation's id, by listing.
async fn listed(client: &mut tradepact_client::negotiation::NegotiationClient) -> Vec<String> {
    use tradepact_proto::negotiation_v1 as npb;
    let (mut ids, mut token) = (Vec::new(), String::new());
    loop {
        let page = client
            .list_negotiations(npb::ListNegotiationsRequest {
                page_size: 500,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        ids.extend(page.negotiations.into_iter().map(|n| n.id));
        if page.next_page_token.is_empty() {
            ids.sort();
            return ids;
        }
        token = page.next_page_token;
    }
}

/// `tradepact-negotiation` over `log` with a reserve of `mib` MiB.
fn start_negotiation_reserving(
    log: &std::path::Path,
    data: &str,
    mib: &str,
) -> tradepact_tests::Process {
    tradepact_tests::Process::start(
        "tradepact-negotiation",
        &[
            "--listen",
            "127.0.0.1:0",
            "--log-reserve-mib",
            mib,
            "--data-dir",
            log.to_str().unwrap(),
            "--data-service",
            data,
        ],
    )
}

/// The same for the negotiation service's event log: a creation refused on a full disk is
/// never listed, health says so, creations resume within 10 s of room, SIGTERM exits 0, a
/// restart lists the same. Then the disk filled at once by another program: a creation larger
/// than what is left meets ENOSPC, is cut off the log (never listed, before or after a
/// restart), and creations resume once the other file is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_negotiation_write_is_never_read_and_writes_resume() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(dir.path(), "12m") else {
        eprintln!("cannot mount a tmpfs here (needs root); the event-log test did not run");
        return;
    };
    let log = dir.path().join("log");
    let data = tempfile::tempdir().unwrap();
    let data = start_data(data.path());
    let server = start_negotiation_reserving(&log, &data.url(), "4");
    let mut client = tradepact_tests::negotiation_client(&server).await;
    let (mut acked, mut refused) = (Vec::new(), 0);
    for n in 0..2000 {
        match client.create_negotiation(bulky_negotiation(n)).await {
            Ok(created) => acked.push(created.into_inner().negotiation.unwrap().id),
            Err(e) => {
                assert_eq!(e.code(), Code::Unavailable, "{e:?}: {}", server.log());
                refused += 1;
                if refused == 10 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused, 10, "12 MB did not fill");
    server.wait_for_log("the disk is nearly full", READY_TIMEOUT);
    eprintln!("{} negotiations created, then 10 refused", acked.len());
    until_health(
        &server,
        NEGOTIATION_WRITES,
        NOT_SERVING,
        Duration::from_secs(2),
    )
    .await;
    acked.sort();
    assert_eq!(
        listed(&mut client).await,
        acked,
        "a refused creation is listed"
    );

    // Room, then the disk filled at once by another file: a creation meets ENOSPC.
    fs.resize("64m");
    let creator = client.clone();
    let server_log = || {
        let log = server.log();
        log.lines()
            .filter(|l| !l.contains("rpc f"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    let create_when_room = |n| {
        let mut client = creator.clone();
        async move {
            let freed = Instant::now();
            loop {
                match client.create_negotiation(bulky_negotiation(n)).await {
                    Ok(created) => return created.into_inner().negotiation.unwrap().id,
                    Err(e) => assert!(
                        freed.elapsed() < Duration::from_secs(10),
                        "creations did not resume within 10 s: {e:?}\n{}",
                        server_log()
                    ),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    acked.push(create_when_room(7000).await);
    acked.sort();
    assert_eq!(listed(&mut client).await, acked);

    drop(client);
    let exit = server.terminate(Duration::from_secs(30));
    assert!(exit.success(), "SIGTERM after recovery: {exit:?}");
    let server = start_negotiation_reserving(&log, &data.url(), "4");
    let mut client = tradepact_tests::negotiation_client(&server).await;
    assert_eq!(listed(&mut client).await, acked);

    // The disk filled at once by another program, then a creation larger than what is left
    // but above the low watermark (a 1 MiB reserve: 512 kB): it meets ENOSPC.
    drop(client);
    assert!(server.terminate(Duration::from_secs(30)).success());
    std::fs::remove_file(log.join("reserve")).unwrap();
    let server = start_negotiation_reserving(&log, &data.url(), "1");
    let mut client = tradepact_tests::negotiation_client(&server).await;
    fill_up(dir.path(), "other", 640 * 1024);
    let failed = client
        .create_negotiation(negotiation_of(8000, 1000, 420))
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Code::Unavailable, "{failed:?}");
    assert!(
        failed.message().contains("nothing was recorded"),
        "{failed:?}"
    );
    server.wait_for_log("an event log write failed", READY_TIMEOUT);
    until_health(
        &server,
        NEGOTIATION_WRITES,
        NOT_SERVING,
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(
        listed(&mut client).await,
        acked,
        "a creation that met a full disk is listed"
    );
    std::fs::remove_file(dir.path().join("other")).unwrap();
    let freed = Instant::now();
    let id = loop {
        match client.create_negotiation(bulky_negotiation(8001)).await {
            Ok(created) => break created.into_inner().negotiation.unwrap().id,
            Err(e) => assert!(
                freed.elapsed() < Duration::from_secs(10),
                "creations did not resume within 10 s: {e:?}\n{}",
                server.log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    acked.push(id);
    acked.sort();
    assert_eq!(listed(&mut client).await, acked);
    drop(client);
    assert!(server.terminate(Duration::from_secs(30)).success());
    let server = start_negotiation_reserving(&log, &data.url(), "1");
    let mut client = tradepact_tests::negotiation_client(&server).await;
    assert_eq!(listed(&mut client).await, acked, "after a restart");
}

/// A cluster node whose store cannot apply the stream (its disk filled by another program)
/// stops applying without skipping, says so in health, refuses writes through it before they
/// are published (nothing written), serves reads of what it holds, and applies what it missed
/// once there is room; the other node writes on throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_that_cannot_apply_catches_up_when_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let Some(_fs) = Tmpfs::mount(&small, "16m") else {
        eprintln!("cannot mount a tmpfs here (needs root); the test did not run");
        return;
    };
    let nats = tradepact_tests::NatsCluster::start(&dir.path().join("nats"), 1);
    let node = |dir: &std::path::Path| {
        tradepact_tests::start_data_replica_with(
            &nats.urls(),
            dir,
            &["--nats-replicas", "1", "--store-reserve-mib", "2"],
        )
    };
    let (a, b) = (node(&small.join("a")), node(&dir.path().join("b")));
    let (mut ca, mut cb) = (data_client(&a).await, data_client(&b).await);
    let write = |i: u32, value: f64| write_request(series_of(i), &[("2000", value)]);
    let first = ca.write_points(write(0, 1.0)).await.unwrap().into_inner();
    let read_at = |sequence: u64| {
        let mut request = tonic::Request::new(pb::GetSeriesRequest {
            key: Some(series_of(0)),
            ..Default::default()
        });
        let value = sequence.to_string().parse().unwrap();
        request
            .metadata_mut()
            .insert("tradepact-min-sequence", value);
        request
    };
    let value = |r: tonic::Response<pb::GetSeriesResponse>| r.into_inner().values[0].value_usd;
    assert_eq!(
        value(cb.get_series(read_at(first.sequence)).await.unwrap()),
        1.0
    );

    // 0.5 MiB left: below node a's low watermark (half its 2 MiB reserve).
    fill_up(&small, "other", 512 * 1024);
    let second = cb.write_points(write(0, 2.0)).await.unwrap().into_inner();
    until_health(&a, WRITES, NOT_SERVING, Duration::from_secs(5)).await;
    assert_eq!(health(&b, WRITES).await, SERVING);
    let refused = ca.write_points(write(0, 3.0)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("nothing was written"),
        "{refused:?}"
    );
    // What node a holds is read; what it has not applied is not claimed.
    assert_eq!(
        value(ca.get_series(read_at(first.sequence)).await.unwrap()),
        1.0
    );
    let mut request = read_at(second.sequence);
    request.set_timeout(Duration::from_secs(2));
    let behind = ca.get_series(request).await.unwrap_err();
    assert_eq!(behind.code(), Code::Unavailable, "{behind:?}");

    std::fs::remove_file(small.join("other")).unwrap();
    let freed = Instant::now();
    loop {
        match ca.get_series(read_at(second.sequence)).await {
            Ok(r) => {
                assert_eq!(value(r), 2.0, "the write through node b, applied on a");
                break;
            }
            Err(e) => assert!(
                freed.elapsed() < Duration::from_secs(10),
                "node a did not catch up within 10 s: {e:?}\n{}",
                a.log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until_health(&a, WRITES, SERVING, Duration::from_secs(5)).await;
    let third = ca.write_points(write(0, 4.0)).await.unwrap().into_inner();
    for c in [&mut ca, &mut cb] {
        assert_eq!(
            value(c.get_series(read_at(third.sequence)).await.unwrap()),
            4.0,
            "the refused write (3.0) is never read"
        );
    }
    drop((ca, cb));
    let log = a.log();
    assert!(a.terminate(Duration::from_secs(30)).success(), "{log}");
}

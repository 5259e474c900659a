//! Cluster-mode benchmark: a three-node NATS JetStream cluster (nats-server 2.15 on PATH,
//! `sync_interval: always`) and two data nodes on loopback, beside a single-node data service
//! (sled alone) in the same run. Measures:
//! - ingest through one node: points per second, writes of 50 annual series × 20 points (the
//!   short-series shape of trade data), one write in flight and four, single node vs cluster;
//! - apply lag: from a write's answer on node A to its arrival at a `WatchSeries` on node B
//!   (p50, p99), one small write at a time;
//! - reads: `GetSeries` (20 points) per second at 16 callers, from one node and from two;
//! - negotiation replicas: creations per second, memory of the creator, a follower and a
//!   replica started afterwards;
//! - catch-up of a new data node at 10^7 points: applying the whole stream, or restoring the
//!   newest snapshot (JetStream object store) and applying the stream after it; and the time
//!   to take that snapshot (including up to 2 s until the node looks whether one is due).
//!
//! Every process shares the machine's cores: the cluster's figures include three NATS servers
//! and two data nodes on the same two cores as the client.
//!
//! ```sh
//! cargo build --release -p tradepact-data -p tradepact-negotiation -p tradepact-bench && target/release/cluster-bench
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use tradepact_bench::Server;
use tradepact_client::data::DataClient;
use tradepact_proto::data_v1 as pb;
use tradepact_proto::negotiation_v1 as npb;

#[derive(Parser)]
#[command(about = "tradepact cluster-mode benchmark (beside a single node, same run)")]
struct Args {
    /// Writes per ingest measurement (each 1000 points).
    #[arg(long, default_value_t = 200)]
    writes: usize,
    /// Writes timed for the apply lag.
    #[arg(long, default_value_t = 300)]
    lag_writes: usize,
    /// Seconds of reads per measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Negotiations created through a negotiation replica (0: that part is skipped).
    #[arg(long, default_value_t = 100_000)]
    negotiations: usize,
    /// The negotiation replicas' memory budget (`--negotiation-memory-mib`).
    #[arg(long, default_value_t = 256)]
    negotiation_memory_mib: usize,
    /// Points ingested before a new data node catches up from the stream (0: skipped).
    #[arg(long, default_value_t = 10_000_000)]
    catch_up_points: usize,
}

fn key(partner: usize, product: usize) -> pb::SeriesKey {
    pb::SeriesKey {
        reporter: "USA".into(),
        partner: ["KOR", "JPN", "DEU", "CHN", "MEX", "CAN", "FRA", "GBR"][partner % 8].into(),
        flow: pb::Flow::Import.into(),
        kind: pb::TradeKind::Goods.into(),
        product: format!("HS:{:04}", 100 + product),
        frequency: pb::Frequency::Annual.into(),
        ..Default::default()
    }
}

/// Write `n` of an ingest: 50 series × 20 annual points.
fn write(n: usize) -> pb::WritePointsRequest {
    pb::WritePointsRequest {
        series: (0..50)
            .map(|s| pb::SeriesPoints {
                key: Some(key(n, (n * 50 + s) % 9000)),
                source: "bench".into(),
                points: (0..20)
                    .map(|y| pb::Point {
                        period: (2000 + y).to_string(),
                        value_usd: (n * 1000 + s * 20 + y) as f64,
                        source: String::new(),
                    })
                    .collect(),
            })
            .collect(),
        release: None,
    }
}

/// Write `n` of the catch-up ingest: 50 series × 20 points, every series new (6-digit
/// products), so that `n` writes hold `n` × 1000 distinct points.
fn write_wide(n: usize) -> pb::WritePointsRequest {
    let mut w = write(n);
    for (s, series) in w.series.iter_mut().enumerate() {
        let key = series.key.as_mut().expect("a key");
        key.partner = "BRA".into();
        key.product = format!("HS:{:06}", 100_000 + n * 50 + s);
    }
    w
}

/// Points per second of `writes` writes through `url`, `in_flight` at a time.
async fn ingest(url: &str, writes: usize, in_flight: usize, offset: usize) -> anyhow::Result<f64> {
    ingest_with(url, writes, in_flight, offset, write).await
}

async fn ingest_with(
    url: &str,
    writes: usize,
    in_flight: usize,
    offset: usize,
    make: fn(usize) -> pb::WritePointsRequest,
) -> anyhow::Result<f64> {
    let next = Arc::new(Mutex::new(0usize));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let mut client = tradepact_client::data::connect(url).await?;
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let n = {
                    let mut next = next.lock().unwrap();
                    let n = *next;
                    *next += 1;
                    n
                };
                if n >= writes {
                    return Ok::<_, tonic::Status>(());
                }
                client.write_points(make(offset + n)).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((writes * 1000) as f64 / start.elapsed().as_secs_f64())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Apply lag: writes on `a` answered, then seen by a watch on `b`.
async fn lag(a: &str, b: &str, writes: usize) -> anyhow::Result<(Duration, Duration)> {
    let mut ca = tradepact_client::data::connect(a).await?;
    let mut cb = tradepact_client::data::connect(b).await?;
    let request = pb::WatchSeriesRequest {
        filter: Some(pb::SeriesFilter::default()),
        ..Default::default()
    };
    let mut watch = cb.watch_series(request).await?.into_inner();
    let seen: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let recorder = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(m)) = watch.message().await {
                seen.lock()
                    .unwrap()
                    .entry(m.sequence)
                    .or_insert_with(Instant::now);
            }
        })
    };
    let mut answered = Vec::new();
    for n in 0..writes {
        let small = pb::WritePointsRequest {
            series: vec![pb::SeriesPoints {
                key: Some(key(n, 9500)),
                source: "lag".into(),
                points: vec![pb::Point {
                    period: (1900 + n % 100).to_string(),
                    value_usd: n as f64,
                    source: String::new(),
                }],
            }],
            release: None,
        };
        let w = ca.write_points(small).await?.into_inner();
        answered.push((w.sequence, Instant::now()));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < writes && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    recorder.abort();
    let seen = seen.lock().unwrap();
    let mut lags: Vec<Duration> = (answered.iter())
        .filter_map(|(seq, at)| Some(seen.get(seq)?.saturating_duration_since(*at)))
        .collect();
    anyhow::ensure!(
        lags.len() == writes,
        "{} of {writes} writes seen on B",
        lags.len()
    );
    lags.sort();
    Ok((percentile(&lags, 0.5), percentile(&lags, 0.99)))
}

/// A small negotiation (two parties, two issues of two options).
fn negotiation() -> npb::CreateNegotiationRequest {
    let issue = |id: &str| npb::Issue {
        id: id.into(),
        label: id.into(),
        options: ["a", "b"]
            .map(|o| npb::IssueOption {
                id: o.into(),
                label: o.into(),
                trade_effects: vec![],
            })
            .to_vec(),
    };
    npb::CreateNegotiationRequest {
        title: "bench".into(),
        agreement: "bench".into(),
        parties: vec!["US".into(), "KOR".into()],
        issues: vec![issue("tariff"), issue("quota")],
        deadline_rounds: 10,
        ..Default::default()
    }
}

/// Creates `n` negotiations through `url`, 16 at a time; creations per second.
async fn create_negotiations(url: &str, n: usize) -> anyhow::Result<f64> {
    let next = Arc::new(Mutex::new(0usize));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let mut client = tradepact_client::negotiation::connect(url).await?;
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                {
                    let mut next = next.lock().unwrap();
                    if *next >= n {
                        return Ok::<_, tonic::Status>(());
                    }
                    *next += 1;
                }
                client.create_negotiation(negotiation()).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// GetSeries per second with `callers` callers spread over `urls`, of the first series of
/// the writes `offset..offset + writes` (every node has them).
async fn reads(
    urls: &[&str],
    callers: usize,
    seconds: f64,
    (offset, writes): (usize, usize),
) -> anyhow::Result<f64> {
    let stop = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for c in 0..callers {
        let mut client: DataClient = tradepact_client::data::connect(urls[c % urls.len()]).await?;
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            while Instant::now() < stop {
                let w = offset + (c * 7 + n) % writes;
                let request = pb::GetSeriesRequest {
                    key: Some(key(w, w * 50 % 9000)),
                    ..Default::default()
                };
                let got = client.get_series(request).await?.into_inner();
                if got.values.len() == 20 {
                    n += 1;
                }
            }
            Ok::<_, tonic::Status>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / seconds)
}

/// Starts a data node on `dir` in cluster mode (snapshots every `snapshot_mib` MiB) and
/// waits until it has applied message `last`.
async fn data_node(
    dir: &std::path::Path,
    nats: &str,
    snapshot_mib: &str,
    last: u64,
) -> anyhow::Result<Server> {
    let start = Instant::now();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.to_str().expect("utf-8"),
        "--nats",
        nats,
        "--snapshot-every-mib",
        snapshot_mib,
    ];
    let node = Server::start_sibling("tradepact-data", &args)?;
    let mut c = tradepact_client::data::connect(&node.url).await?;
    // Asked again until it has applied the last write (each ask waits up to 10 s).
    loop {
        let mut request = tonic::Request::new(pb::ListSeriesRequest {
            page_size: 1,
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("tradepact-min-sequence", last.to_string().parse()?);
        if c.list_series(request).await.is_ok() {
            return Ok(node);
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(600),
            "no catch-up in 10 minutes"
        );
    }
}

/// Waits until the object store holds a snapshot at `sequence` or later; its bytes.
async fn snapshot_at(nats: &str, sequence: u64) -> anyhow::Result<usize> {
    let client = async_nats::connect(nats.split(',').next().unwrap_or_default()).await?;
    let js = async_nats::jetstream::new(client);
    let start = Instant::now();
    loop {
        if let Ok(bucket) = js.get_object_store("TRADEPACT_DATA_SNAPSHOTS").await {
            if let Ok(info) = bucket.info("store").await {
                let at: u64 = info
                    .metadata
                    .get("sequence")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if at >= sequence {
                    return Ok(info.size);
                }
            }
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(600),
            "no snapshot in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let nats = tradepact_rpc::nats::LocalCluster::start(&dir.path().join("nats"))?;
    let data = |name: &str, cluster: bool| {
        let dir = dir.path().join(name);
        let dir = dir.to_str().expect("utf-8").to_owned();
        let mut a = vec!["--listen", "127.0.0.1:0", "--data-dir"]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        a.push(dir);
        if cluster {
            a.extend(["--nats".to_owned(), nats.urls.clone()]);
            // No snapshots: the catch-up measures a new node with and without one.
            a.extend(["--snapshot-every-mib".to_owned(), "0".to_owned()]);
        }
        let path = std::env::current_exe()?.with_file_name("tradepact-data");
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        Server::start(&path, &refs)
    };
    let single = data("single", false)?;
    let (a, b) = (data("a", true)?, data("b", true)?);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("### Cluster mode (three NATS nodes, two data nodes) beside a single node\n");
    println!(
        "Machine: {cores} cores shared by the client, three nats-server 2.15 processes (sync_interval: always, stream replicas 3) and the data nodes. Command: `target/release/cluster-bench`. Writes of 50 annual series × 20 points.\n"
    );
    println!("| workload | single node (sled) | cluster (through node A) | ratio |");
    println!("|---|---:|---:|---:|");
    for in_flight in [1, 4] {
        let offset = in_flight * 100_000;
        let s = ingest(&single.url, args.writes, in_flight, offset).await?;
        let c = ingest(&a.url, args.writes, in_flight, offset).await?;
        println!(
            "| ingest, {in_flight} write(s) in flight, {} writes | {:.0} points/s | {:.0} points/s | {:.2} |",
            args.writes,
            s,
            c,
            c / s
        );
    }
    // The reads need the series on both nodes: B has applied everything A answered.
    let (p50, p99) = lag(&a.url, &b.url, args.lag_writes).await?;
    let written = (100_000, args.writes);
    let one = reads(&[&a.url], 16, args.seconds, written).await?;
    let two = reads(&[&a.url, &b.url], 16, args.seconds, written).await?;
    let single_reads = reads(&[&single.url], 16, args.seconds, written).await?;
    println!(
        "| GetSeries (20 points), 16 callers | {single_reads:.0}/s | {one:.0}/s from node A; {two:.0}/s from A and B | {:.2} (two nodes / one) |",
        two / one
    );
    println!(
        "\nApply lag, from a write's answer on node A to its arrival at a WatchSeries on node B, {} writes one at a time: p50 {:.2} ms, p99 {:.2} ms.",
        args.lag_writes,
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    if args.negotiations > 0 {
        let budget = args.negotiation_memory_mib.to_string();
        let replica = |nats: &str| {
            let path = std::env::current_exe()?.with_file_name("tradepact-negotiation");
            let memory = ["--negotiation-memory-mib", &budget];
            Server::start(
                &path,
                &[&["--listen", "127.0.0.1:0", "--nats", nats][..], &memory].concat(),
            )
        };
        let first = replica(&nats.urls)?;
        let follower = replica(&nats.urls)?;
        let idle = first.memory_mb().1;
        let rate = create_negotiations(&first.url, args.negotiations).await?;
        let (created_on, followed_by) = (first.memory_mb().1, follower.memory_mb().1);
        let log_mb = {
            let client = async_nats::connect(nats.urls.split(',').next().unwrap_or_default());
            let js = async_nats::jetstream::new(client.await?);
            let mut stream = js.get_stream("TRADEPACT_NEGOTIATIONS").await?;
            stream.info().await?.state.bytes as f64 / 1e6
        };
        let start = Instant::now();
        let fresh = replica(&nats.urls)?;
        let started = start.elapsed();
        let listed = {
            let mut c = tradepact_client::negotiation::connect(&fresh.url).await?;
            let request = npb::ListNegotiationsRequest {
                page_size: 1,
                ..Default::default()
            };
            c.list_negotiations(request)
                .await?
                .into_inner()
                .negotiations
                .len()
        };
        anyhow::ensure!(
            listed == 1,
            "a replica started on the stream lists its negotiations"
        );
        println!(
            "\n{} negotiations created through one negotiation replica (16 callers, memory budget {} MiB; the log {log_mb:.0} MB in the stream): {rate:.0} creations/s. Resident memory: the replica that created them {created_on:.0} MB (idle before: {idle:.0} MB), a replica that followed them {followed_by:.0} MB, a replica started afterwards {:.0} MB after reading them all back from the stream in {:.1} s.",
            args.negotiations,
            args.negotiation_memory_mib,
            fresh.memory_mb().1,
            started.as_secs_f64()
        );
    }
    if args.catch_up_points >= 1000 {
        let writes = args.catch_up_points / 1000;
        let rate = ingest_with(&a.url, writes, 4, 0, write_wide).await?;
        let mut ca = tradepact_client::data::connect(&a.url).await?;
        let last = ca
            .write_points(write_wide(writes))
            .await?
            .into_inner()
            .sequence;
        let points = (writes + 1) * 1000;
        // No snapshot yet: a new node applies the whole stream.
        let start = Instant::now();
        let replayed = data_node(&dir.path().join("c"), &nats.urls, "0", last).await?;
        let (replay, replay_mb, messages) = (start.elapsed(), replayed.memory_mb().1, last);
        // Node C, started again to take a snapshot after its next message; then a new node
        // starts from it.
        drop(replayed);
        let _c = data_node(&dir.path().join("c"), &nats.urls, "0.000001", last).await?;
        let start = Instant::now();
        let last = ca.write_points(write(7)).await?.into_inner().sequence;
        let snapshot_bytes = snapshot_at(&nats.urls, last).await?;
        let taken = start.elapsed();
        let start = Instant::now();
        let restored = data_node(&dir.path().join("d"), &nats.urls, "0", last).await?;
        let (restore, restore_mb) = (start.elapsed(), restored.memory_mb().1);
        println!(
            "\nCatch-up: {points} points ingested through node A (4 writes in flight, {rate:.0} points/s). A new data node started on an empty directory, until it has applied the last write:\n"
        );
        println!("| from | time | points/s | resident memory at the end |");
        println!("|---|---:|---:|---:|");
        for (from, took, mb) in [
            (
                format!("the whole stream ({messages} messages)"),
                replay,
                replay_mb,
            ),
            (
                format!(
                    "the newest snapshot ({:.0} MB), then the stream after it",
                    snapshot_bytes as f64 / 1e6
                ),
                restore,
                restore_mb,
            ),
        ] {
            println!(
                "| {from} | {:.1} s | {:.0} | {mb:.0} MB |",
                took.as_secs_f64(),
                points as f64 / took.as_secs_f64()
            );
        }
        println!(
            "\nTaking that snapshot (a node writing its store to a file under the write lock, then uploading it to the object store, replicas 3): {:.1} s.",
            taken.as_secs_f64()
        );
    }
    drop((a, b, single, nats));
    Ok(())
}

//! Data service benchmark: durable bulk ingest and a long range read, through gRPC to the
//! real `tradepact-data` binary, beside the same work on raw sled with the same chunk layout
//! (and on the store crate in-process), measured in one run.
//!
//! ```sh
//! cargo build --release -p tradepact-data -p tradepact-bench
//! target/release/data-bench            # prints a markdown table
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio_stream::StreamExt;
use tradepact_bench::{postgres, Server};
use tradepact_proto::data_v1 as pb;
use tradepact_store::chunk::{Chunk, BLOCK};
use tradepact_store::{
    Flow, Frequency, Kind, Period, Point, Product, SeriesKey, SeriesPoints, Store,
};

#[derive(Parser)]
#[command(about = "tradepact data service benchmark (gRPC vs raw sled, same run)")]
struct Args {
    /// Series in the ingest workload.
    #[arg(long, default_value_t = 500)]
    series: u32,
    /// Monthly periods per series in the ingest workload.
    #[arg(long, default_value_t = 10_000)]
    periods: u32,
    /// Points per batch (per StreamWritePoints message).
    #[arg(long, default_value_t = 10_000)]
    batch_points: usize,
    /// Points in the range-read series.
    #[arg(long, default_value_t = 100_000)]
    range_points: u32,
    /// Repetitions of each read (the median is reported).
    #[arg(long, default_value_t = 7)]
    repeat: usize,
    /// Repetitions of each ingest (the median is reported).
    #[arg(long, default_value_t = 3)]
    ingest_repeat: usize,
    /// Batches between two flushes (group commit), as the server does.
    #[arg(long, default_value_t = 64)]
    flush_every: usize,
    /// The data service binary (default: next to this one).
    #[arg(long)]
    data_bin: Option<PathBuf>,
    /// Also measure PostgreSQL 15 (started on loopback in a temporary directory) on the same
    /// data: COPY ingest and an indexed range query.
    #[arg(long)]
    postgres: bool,
    /// Order the ingest time-major, as a panel download often is: each batch holds the same
    /// few periods of every series (batch points / series periods each), so every batch
    /// updates a chunk of every series.
    #[arg(long)]
    time_major: bool,
    /// Only stream the ingest workload to a running data service at this URL (for profiling
    /// the server), then exit.
    #[arg(long)]
    ingest_to: Option<String>,
}

const FIRST_MONTH: u32 = 1000 * 12;

fn series_key(i: u32) -> SeriesKey {
    // A reporter × partner × HS-chapter panel.
    // Real codes: the services accept only the reference list's.
    let code = |n: u32| {
        let countries = tradepact_store::model::reference::countries();
        countries[n as usize % countries.len()].code
    };
    SeriesKey {
        reporter: code(i / 2500),
        partner: code(i / 50 % 50),
        flow: Flow::Import,
        kind: Kind::Goods,
        product: Product::parse(&format!("HS:{:02}", i % 50 + 1)).unwrap(),
        frequency: Frequency::Monthly,
        measure: Default::default(),
    }
}

/// Batches, series-major: each batch holds consecutive periods of one series (or several
/// whole series when they are short).
fn batches(series: u32, periods: u32, batch_points: usize) -> Vec<Vec<SeriesPoints>> {
    let mut out = Vec::new();
    let mut current: Vec<SeriesPoints> = Vec::new();
    let mut n = 0usize;
    for s in 0..series {
        let key = series_key(s);
        let mut points = Vec::new();
        for p in 0..periods {
            points.push(Point {
                ordinal: FIRST_MONTH + p,
                value: f64::from(s) * 1e6 + f64::from(p),
                source: "bench".into(),
            });
            n += 1;
            if n == batch_points {
                current.push(SeriesPoints {
                    key: key.clone(),
                    points: std::mem::take(&mut points),
                });
                out.push(std::mem::take(&mut current));
                n = 0;
            }
        }
        if !points.is_empty() {
            current.push(SeriesPoints { key, points });
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Batches, time-major: each batch holds the same `batch_points / series` consecutive periods
/// of every series.
fn time_major_batches(series: u32, periods: u32, batch_points: usize) -> Vec<Vec<SeriesPoints>> {
    let per_series = (batch_points / series as usize).max(1) as u32;
    let keys: Vec<SeriesKey> = (0..series).map(series_key).collect();
    (0..periods)
        .step_by(per_series as usize)
        .map(|first| {
            keys.iter()
                .enumerate()
                .map(|(s, key)| SeriesPoints {
                    key: key.clone(),
                    points: (first..(first + per_series).min(periods))
                        .map(|p| Point {
                            ordinal: FIRST_MONTH + p,
                            value: s as f64 * 1e6 + f64::from(p),
                            source: "bench".into(),
                        })
                        .collect(),
                })
                .collect()
        })
        .collect()
}

fn to_proto(batch: &[SeriesPoints]) -> pb::StreamWritePointsRequest {
    pb::StreamWritePointsRequest {
        series: batch
            .iter()
            .map(|s| pb::SeriesPoints {
                key: Some(key_pb(&s.key)),
                source: "bench".into(),
                points: s
                    .points
                    .iter()
                    .map(|p| pb::Point {
                        period: Period {
                            frequency: s.key.frequency,
                            ordinal: p.ordinal,
                        }
                        .to_string(),
                        value_usd: p.value,
                        source: String::new(),
                    })
                    .collect(),
            })
            .collect(),
        ..Default::default()
    }
}

fn key_pb(k: &SeriesKey) -> pb::SeriesKey {
    pb::SeriesKey {
        reporter: k.reporter.to_string(),
        partner: k.partner.to_string(),
        flow: pb::Flow::Import.into(),
        kind: pb::TradeKind::Goods.into(),
        product: k.product.to_string(),
        frequency: pb::Frequency::Monthly.into(),
        ..Default::default()
    }
}

fn raw_key(id: u64, block: u32) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = b'C';
    k[1..9].copy_from_slice(&id.to_be_bytes());
    k[9..13].copy_from_slice(&block.to_be_bytes());
    k
}

/// Raw sled: the same chunk keys and encoding, one sled batch per request-sized batch,
/// no catalog, no validation, no RPC.
fn raw_ingest(
    dir: &Path,
    batches: &[Vec<SeriesPoints>],
    flush_every: Option<usize>,
) -> anyhow::Result<(Duration, sled::Tree)> {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(64 * 1024 * 1024)
        .open()?;
    let tree = db.open_tree("series")?;
    // Series ids in order of first appearance, as the store assigns them.
    let mut ids: std::collections::HashMap<&SeriesKey, u64> = std::collections::HashMap::new();
    for s in batches.iter().flatten() {
        let next = ids.len() as u64;
        ids.entry(&s.key).or_insert(next);
    }
    let start = Instant::now();
    for (i, batch) in batches.iter().enumerate() {
        let mut ops = sled::Batch::default();
        for s in batch {
            let id = ids[&s.key];
            let mut block = u32::MAX;
            let mut chunk = Chunk::default();
            for p in &s.points {
                if p.ordinal / BLOCK != block {
                    if !chunk.is_empty() {
                        ops.insert(&raw_key(id, block)[..], chunk.encode());
                    }
                    block = p.ordinal / BLOCK;
                    chunk = match tree.get(raw_key(id, block))? {
                        Some(v) => Chunk::decode(&v)?,
                        None => Chunk::default(),
                    };
                }
                chunk.upsert((p.ordinal % BLOCK) as u8, p.value, &p.source);
            }
            if !chunk.is_empty() {
                ops.insert(&raw_key(id, block)[..], chunk.encode());
            }
        }
        tree.apply_batch(ops)?;
        if flush_every.is_some_and(|n| (i + 1) % n == 0) {
            db.flush()?;
        }
    }
    if flush_every.is_some() {
        db.flush()?;
    }
    Ok((start.elapsed(), tree))
}

fn store_ingest(
    dir: &Path,
    batches: &[Vec<SeriesPoints>],
    flush_every: usize,
) -> anyhow::Result<Duration> {
    let store = Store::open(dir)?;
    let start = Instant::now();
    for (i, batch) in batches.iter().enumerate() {
        store.write(batch)?;
        if (i + 1) % flush_every == 0 {
            store.flush()?;
        }
    }
    store.flush()?;
    Ok(start.elapsed())
}

fn median(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("{cores} cores, {cpu}; commit {commit}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let data_bin = match args.data_bin.clone() {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("tradepact-data"),
    };
    let total = u64::from(args.series) * u64::from(args.periods);
    eprintln!(
        "generating {total} points ({} series × {} months)…",
        args.series, args.periods
    );
    let batches = match args.time_major {
        true => time_major_batches(args.series, args.periods, args.batch_points),
        false => batches(args.series, args.periods, args.batch_points),
    };
    let messages: Vec<pb::StreamWritePointsRequest> = batches.iter().map(|b| to_proto(b)).collect();
    let wire_mb = messages
        .iter()
        .map(prost::Message::encoded_len)
        .sum::<usize>() as f64
        / 1e6;
    if let Some(url) = &args.ingest_to {
        let mut client = tradepact_client::data::connect(url).await?;
        let start = Instant::now();
        client
            .stream_write_points(tokio_stream::iter(messages))
            .await?;
        println!(
            "ingested {total} points in {:.2} s",
            start.elapsed().as_secs_f64()
        );
        return Ok(());
    }

    // 1. Ingest. A discarded warm-up run first, so that the baseline does not pay for the
    // process's first page faults and disk allocation.
    eprintln!("warm-up…");
    raw_ingest(
        tempfile::tempdir()?.path(),
        &batches,
        Some(args.flush_every),
    )?;
    // Rounds interleave the variants, so that drift of the machine hits them alike.
    let (mut raw_durable, mut raw_volatile, mut store_time, mut grpc_time) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut rss_idle, mut rss_after, mut peak_ingest) = (0f64, 0f64, 0f64);
    let mut kept = None;
    for round in 1..=args.ingest_repeat {
        eprintln!(
            "ingest round {round}/{}: raw sled durable, not flushed, store crate, gRPC…",
            args.ingest_repeat
        );
        raw_durable.push(
            raw_ingest(
                tempfile::tempdir()?.path(),
                &batches,
                Some(args.flush_every),
            )?
            .0,
        );
        raw_volatile.push(raw_ingest(tempfile::tempdir()?.path(), &batches, None)?.0);
        store_time.push(store_ingest(
            tempfile::tempdir()?.path(),
            &batches,
            args.flush_every,
        )?);

        let grpc_dir = tempfile::tempdir()?;
        let dir_arg = grpc_dir.path().to_str().expect("utf-8 path");
        let server = Server::start(
            &data_bin,
            &["--listen", "127.0.0.1:0", "--data-dir", dir_arg],
        )?;
        let mut client = tradepact_client::data::connect(&server.url).await?;
        rss_idle = rss_idle.max(server.memory_mb().1);
        let round_messages = messages.clone();
        let start = Instant::now();
        let summary = client
            .stream_write_points(tokio_stream::iter(round_messages))
            .await?
            .into_inner();
        grpc_time.push(start.elapsed());
        anyhow::ensure!(
            summary.inserted == total,
            "server inserted {} of {total}",
            summary.inserted
        );
        let (peak, after) = server.memory_mb();
        peak_ingest = peak_ingest.max(peak);
        rss_after = rss_after.max(after);
        kept = Some((grpc_dir, server, client));
    }
    let (_grpc_dir, server, mut client) =
        kept.ok_or_else(|| anyhow::anyhow!("--ingest-repeat must be at least 1"))?;

    // 2. Range read of one long series.
    eprintln!("range read of {} points…", args.range_points);
    let long = SeriesPoints {
        key: series_key(999_999),
        points: (0..args.range_points)
            .map(|p| Point {
                ordinal: FIRST_MONTH + p,
                value: f64::from(p),
                source: "bench".into(),
            })
            .collect(),
    };
    let long_batches: Vec<Vec<SeriesPoints>> = long
        .points
        .chunks(args.batch_points)
        .map(|c| {
            vec![SeriesPoints {
                key: long.key.clone(),
                points: c.to_vec(),
            }]
        })
        .collect();
    let raw_long_dir = tempfile::tempdir()?;
    let (_, raw_tree) = raw_ingest(raw_long_dir.path(), &long_batches, Some(args.flush_every))?;
    let store_long_dir = tempfile::tempdir()?;
    let long_store = Store::open(store_long_dir.path())?;
    for batch in &long_batches {
        long_store.write(batch)?;
    }
    let long_plan = tradepact_store::aggregate::ReadPlan::new(long.key.frequency, None)
        .map_err(anyhow::Error::msg)?;
    client
        .stream_write_points(tokio_stream::iter(
            long_batches.iter().map(|b| to_proto(b)).collect::<Vec<_>>(),
        ))
        .await?;
    let long_key = key_pb(&long.key);

    let mut raw_reads = Vec::new();
    let mut stream_reads = Vec::new();
    let mut column_reads = Vec::new();
    let mut store_column_reads = Vec::new();
    let mut paged_reads = Vec::new();
    for _ in 0..args.repeat {
        let start = Instant::now();
        let mut n = 0u32;
        for item in raw_tree.range(raw_key(0, 0)..=raw_key(0, u32::MAX)) {
            let (_, v) = item?;
            n += Chunk::decode(&v)?.len() as u32;
        }
        raw_reads.push(start.elapsed());
        anyhow::ensure!(n == args.range_points, "raw read {n}");

        let start = Instant::now();
        let mut stream = client
            .stream_series(pb::StreamSeriesRequest {
                key: Some(long_key.clone()),
                ..Default::default()
            })
            .await?
            .into_inner();
        let mut n = 0u32;
        while let Some(msg) = stream.next().await {
            n += msg?.values.len() as u32;
        }
        stream_reads.push(start.elapsed());
        anyhow::ensure!(n == args.range_points, "streamed {n}");

        let start = Instant::now();
        let mut n = 0u32;
        let blocks = tradepact_store::columns::columns(
            &long_store,
            &long.key,
            long_plan,
            0,
            u32::MAX,
            8192,
        )?;
        for block in blocks {
            n += block?.len() as u32;
        }
        store_column_reads.push(start.elapsed());
        anyhow::ensure!(n == args.range_points, "store columns {n}");

        // Columns, each value decoded to (ordinal, value, source) by the client.
        let start = Instant::now();
        let mut stream = client
            .stream_series_columns(pb::StreamSeriesColumnsRequest {
                key: Some(long_key.clone()),
                ..Default::default()
            })
            .await?
            .into_inner();
        let (mut n, mut sum, mut last) = (0u32, 0.0, 0);
        while let Some(msg) = stream.next().await {
            let msg = msg?;
            for v in tradepact_client::data::column_values(&msg) {
                anyhow::ensure!(v.ordinal > last && !v.source.is_empty(), "column order");
                (n, sum, last) = (n + 1, sum + v.value_usd, v.ordinal);
            }
        }
        column_reads.push(start.elapsed());
        anyhow::ensure!(n == args.range_points && sum > 0.0, "columns {n}");

        let start = Instant::now();
        let mut token = String::new();
        let mut n = 0u32;
        loop {
            let page = client
                .get_series(pb::GetSeriesRequest {
                    key: Some(long_key.clone()),
                    page_size: 10_000,
                    page_token: token,
                    ..Default::default()
                })
                .await?
                .into_inner();
            n += page.values.len() as u32;
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        paged_reads.push(start.elapsed());
        anyhow::ensure!(n == args.range_points, "paged {n}");
    }
    let (peak_all, _) = server.memory_mb();

    // PostgreSQL on the same data, when asked.
    let pg = if args.postgres {
        eprintln!("PostgreSQL: COPY of {total} rows, then the range read…");
        let pg = postgres::Postgres::start()?;
        let client = pg.connect().await?;
        postgres::create_table(&client).await?;
        let mut ids: std::collections::HashMap<&SeriesKey, u32> = std::collections::HashMap::new();
        for s in batches.iter().flatten() {
            let next = ids.len() as u32;
            ids.entry(&s.key).or_insert(next);
        }
        let rows = batches
            .iter()
            .flatten()
            .flat_map(|s| s.points.iter().map(|p| (ids[&s.key], p.ordinal, p.value)));
        let copy = postgres::copy_in(&client, rows).await?;
        let long_rows = long.points.iter().map(|p| (999_999u32, p.ordinal, p.value));
        postgres::copy_in(&client, long_rows).await?;
        client.batch_execute("ANALYZE points").await?;
        let mut reads = Vec::new();
        for _ in 0..args.repeat {
            let (n, d) = postgres::range(
                &client,
                999_999,
                FIRST_MONTH,
                FIRST_MONTH + args.range_points,
            )
            .await?;
            anyhow::ensure!(n == args.range_points as usize, "PostgreSQL read {n}");
            reads.push(d);
        }
        Some((copy, median(reads)))
    } else {
        None
    };
    drop(client);
    drop(server);

    let rate = |d: Duration| total as f64 / d.as_secs_f64() / 1e6;
    println!("### Data service benchmark\n");
    println!("Machine: {}. Command: `target/release/data-bench` ({} series × {} monthly periods = {total} points, batches of {} points, {}, flush every {} batches and at the end; range read of {} points; medians of {} ingests and {} reads).\n",
        machine(), args.series, args.periods, args.batch_points, if args.time_major { "time-major" } else { "series-major" }, args.flush_every, args.range_points, args.ingest_repeat, args.repeat);
    println!(
        "| ingest of {total} points | median | min | max | M points/s | vs raw sled durable |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let (raw_med, _, _) = median(raw_durable.clone());
    for (name, times) in [
        ("raw sled, same chunks, not flushed", raw_volatile),
        ("raw sled, same chunks, durable (baseline)", raw_durable),
        ("store crate in-process, durable", store_time),
        (
            "gRPC `StreamWritePoints` to `tradepact-data`, durable",
            grpc_time,
        ),
    ] {
        let (med, min, max) = median(times);
        println!(
            "| {name} | {:.2} s | {:.2} s | {:.2} s | {:.2} | {:.0} % |",
            med.as_secs_f64(),
            min.as_secs_f64(),
            max.as_secs_f64(),
            rate(med),
            100.0 * raw_med.as_secs_f64() / med.as_secs_f64()
        );
    }
    if let Some((copy, _)) = &pg {
        println!(
            "| PostgreSQL 15 `COPY` into a table keyed by (series, period), durable (one run) | {:.2} s | – | – | {:.2} | {:.0} % |",
            copy.as_secs_f64(),
            rate(*copy),
            100.0 * raw_med.as_secs_f64() / copy.as_secs_f64()
        );
    }
    println!("\nProtobuf sent: {wire_mb:.0} MB. Server resident memory: {rss_idle:.0} MB idle, {rss_after:.0} MB after ingest, peak {peak_ingest:.0} MB during ingest, peak {peak_all:.0} MB for the last server over its ingest and the reads.\n");
    println!(
        "| range read of {} points | median | min | max | vs raw sled |",
        args.range_points
    );
    println!("|---|---:|---:|---:|---:|");
    let (raw_med, raw_min, raw_max) = median(raw_reads);
    for (name, (med, min, max)) in [
        (
            "raw sled range scan + chunk decode (baseline)",
            (raw_med, raw_min, raw_max),
        ),
        (
            "store crate `columns`, in-process",
            median(store_column_reads),
        ),
        (
            "gRPC `StreamSeries`, decoded by the client",
            median(stream_reads),
        ),
        (
            "gRPC `StreamSeriesColumns`, decoded by the client",
            median(column_reads),
        ),
        (
            &*format!(
                "gRPC `GetSeries`, pages of 10,000 ({} pages)",
                args.range_points.div_ceil(10_000)
            ),
            median(paged_reads),
        ),
    ] {
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} ms | {:.1}× |",
            ms(med),
            ms(min),
            ms(max),
            med.as_secs_f64() / raw_med.as_secs_f64()
        );
    }
    if let Some((_, (med, min, max))) = pg {
        println!(
            "| PostgreSQL 15 indexed range query, rows to the client | {:.2} ms | {:.2} ms | {:.2} ms | {:.1}× |",
            ms(med),
            ms(min),
            ms(max),
            med.as_secs_f64() / raw_med.as_secs_f64()
        );
    }
    Ok(())
}

//! Column blocks at the shape of the trade matrix (issue #27, the first measurement before the
//! store uses them): the generated matrix of `matrix-bench`, grouped into blocks of one
//! reporter and year, encoded with Pcodec and with zstd; bytes a point per column, the time
//! to encode, and the time of one cross-section over the blocks (everyone's imports by product
//! in one year: the columns it needs decoded, summed in a loop) — beside a Parquet file (zstd)
//! of the same rows that DuckDB writes in the same run, in the file's order and sorted by
//! reporter and period, and DuckDB's answer to the same question from that file. Then the
//! same rows loaded into the matrix engine (`tradepact_store::matrix`) in process: its load
//! time, its merges and what sled's files take on disk.
//!
//! `block-sizes --points 10000000` (DuckDB from PyPI: `pip install duckdb`).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::{Duration, Instant};

use clap::Parser;
use tradepact_bench::matrix::{Matrix, FIRST_YEAR};
use tradepact_bench::median;
use tradepact_store::block::{self, Block, Codec, Column, Rows, COLUMNS};

#[derive(Parser)]
struct Args {
    /// Points to generate (about).
    #[arg(long, default_value_t = 10_000_000)]
    points: u64,
    /// Reporters.
    #[arg(long, default_value_t = 40)]
    reporters: usize,
    /// Runs of the cross-section (the median is printed).
    #[arg(long, default_value_t = 7)]
    repeat: usize,
    /// Only load the matrix engine and print its line (for profiling it).
    #[arg(long)]
    engine_only: bool,
    /// Rows of a row group in the engine's part files.
    #[arg(long, default_value_t = tradepact_store::matrix::GROUP_ROWS)]
    group_rows: usize,
}

const YEAR: u32 = 2016;
const IMPORT: u32 = 1;

/// Everyone's imports by product in `YEAR` over `blocks` (one per reporter of that year): the
/// total of each product id.
fn imports_by_product(blocks: &[&[u8]], products: usize) -> anyhow::Result<Vec<f64>> {
    let mut totals = vec![0.0; products];
    for bytes in blocks {
        let block = Block::open(bytes)?;
        let flags = block.column(Column::Flags)?;
        let product = block.column(Column::Product)?;
        let value = block.values()?;
        for i in 0..block.rows() {
            if flags[i] == block::flags(IMPORT as u8, 0) {
                totals[product[i] as usize] += value[i];
            }
        }
    }
    Ok(totals)
}

/// What loading the matrix engine took.
struct Engine {
    /// Points loaded.
    points: u64,
    /// Rows of a row group.
    group_rows: usize,
    /// One series' 25 years read after the merges: p50 and p99.
    series_read: (Duration, Duration),
    load: Duration,
    /// Preparing writes (sorting, the inserted/updated look, the write-log record), committing
    /// them (the append, the head), syncing.
    steps: [Duration; 3],
    head_flushes: Duration,
    merge: Duration,
    bytes: u64,
    parts: usize,
    peak_rss_mb: u64,
}

impl Engine {
    /// What loading it took, as a sentence.
    fn line(&self) -> String {
        let (engine, points) = (self, self.points);
        format!(
            "The matrix engine (`tradepact_store::matrix`, in-process, no gRPC): the same rows in batches of 10,000 in the generator's order (series after series), each a write-log record, synced every 64 batches and at the end, the head written as a part file (row groups of {} rows) past {} rows (part files merged by size tiers of 4), then all merged into one: loaded in {:.2} s ({:.2} M points/s; preparing writes {:.2} s of it, committing them {:.2} s, syncing {:.2} s, head flushes and merges {:.2} s), merged in {:.2} s, {:.2} bytes a point on disk after the merges (every file of the engine), {} part files; one series' 25 years read in {:.2} ms (p50; p99 {:.2} ms; in each period the one or two row groups that may hold it decoded); peak RSS {} MB (the engine's, with the generator's set of series; measured before anything else).",
        engine.group_rows,
        tradepact_store::matrix::HEAD_ROWS,
        engine.load.as_secs_f64(),
        points as f64 / engine.load.as_secs_f64() / 1e6,
        engine.steps[0].as_secs_f64(),
        engine.steps[1].as_secs_f64(),
        engine.steps[2].as_secs_f64(),
        engine.head_flushes.as_secs_f64(),
        engine.merge.as_secs_f64(),
        engine.bytes as f64 / points as f64,
        engine.parts,
        engine.series_read.0.as_secs_f64() * 1e3,
        engine.series_read.1.as_secs_f64() * 1e3,
        engine.peak_rss_mb,
        )
    }
}

/// Bytes of the files under `dir`.
fn du(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => du(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// Loads the generated matrix (again, from the same seed) into a matrix engine in `dir`.
fn load_engine(args: &Args, dir: &std::path::Path) -> anyhow::Result<Engine> {
    use tradepact_store::matrix::{self as engine, Dictionary, NewRow, Partition, HEAD_ROWS};
    let path = dir.join("engine");
    let matrix = engine::Matrix::open_with(&path, HEAD_ROWS, args.group_rows)?;
    let measure = matrix.id(Dictionary::Measure, &[0]);
    let source = matrix.id(Dictionary::Source, b"gen");
    let mut generator = Matrix::new(args.reporters);
    let mut batch: Vec<NewRow> = Vec::with_capacity(10_000);
    let (mut seq, mut head_flushes, mut failed) = (0u64, Duration::ZERO, None);
    let mut times = [Duration::ZERO; 3];
    let started = Instant::now();
    let mut write = |batch: &mut Vec<NewRow>, seq: &mut u64| -> anyhow::Result<()> {
        *seq += 1;
        let t = Instant::now();
        let prepared = matrix.prepare(*seq, batch)?;
        times[0] += t.elapsed();
        let t = Instant::now();
        matrix.commit(prepared)?;
        times[1] += t.elapsed();
        let t = Instant::now();
        if seq.is_multiple_of(64) {
            matrix.sync()?;
        }
        times[2] += t.elapsed();
        if matrix.head_full() {
            let started = Instant::now();
            matrix.flush_head()?;
            matrix.compact_tiers()?;
            head_flushes += started.elapsed();
        }
        batch.clear();
        Ok(())
    };
    let loaded = generator.generate(args.points, |p| {
        if failed.is_some() {
            return;
        }
        let mut reporter = [0u8; 3];
        reporter.copy_from_slice(p.reporter.as_bytes());
        let mut partner = [0u8; 4];
        partner[1..].copy_from_slice(p.partner.as_bytes());
        batch.push(NewRow {
            partition: Partition {
                reporter,
                frequency: 1,
                period: p.year,
            },
            key: (
                u32::from_be_bytes(partner),
                block::flags(u8::from(p.flow == "IMPORT") + 1, 1),
                measure,
                matrix.id(Dictionary::Product, p.product.as_bytes()),
                0,
            ),
            source,
            value: p.value,
        });
        if batch.len() == 10_000 {
            if let Err(e) = write(&mut batch, &mut seq) {
                failed = Some(e);
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    if !batch.is_empty() {
        write(&mut batch, &mut seq)?;
    }
    matrix.sync()?;
    let load = started.elapsed();
    let started = Instant::now();
    matrix.flush_head()?;
    matrix.compact(2)?;
    let merge = started.elapsed();
    // Single series, 25 years each: a thousand of the first partition's series, read whole.
    let first = *matrix
        .partitions()
        .first()
        .ok_or_else(|| anyhow::anyhow!("an empty matrix"))?;
    let rows = matrix.partition(&first)?;
    let mut reads = Vec::new();
    for i in (0..rows.len())
        .step_by((rows.len() / 1000).max(1))
        .take(1000)
    {
        let (p, f, m, pr, _) = rows.key(i);
        let started = Instant::now();
        let periods = matrix.series(first.reporter, first.frequency, 1995..=2019, (p, f, m, pr))?;
        reads.push(started.elapsed());
        anyhow::ensure!(!periods.is_empty(), "a series read nothing");
    }
    reads.sort();
    let series_read = (reads[reads.len() / 2], reads[reads.len() * 99 / 100]);
    let parts = matrix.parts();
    drop(matrix);
    Ok(Engine {
        points: loaded,
        group_rows: args.group_rows,
        series_read,
        load,
        steps: times,
        head_flushes,
        merge,
        bytes: du(&path),
        parts,
        peak_rss_mb: peak_rss_mb(),
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    // First, while the process holds nothing else: its peak RSS is the engine's (and the
    // generator's set of the series it made).
    let engine = load_engine(&args, dir.path())?;
    if args.engine_only {
        println!("{}", engine.line());
        return Ok(());
    }
    let csv = dir.path().join("matrix.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv)?);
    writeln!(out, "reporter,partner,flow,product,period,value_usd")?;
    let mut matrix = Matrix::new(args.reporters);
    let (mut partners, mut products) = (HashMap::new(), HashMap::new());
    let mut rows: BTreeMap<(u32, u32), Rows> = BTreeMap::new();
    let mut reporters = HashMap::new();
    let started = Instant::now();
    let mut written = Ok(());
    let points = matrix.generate(args.points, |p| {
        let next = partners.len() as u32;
        let partner = *partners.entry(p.partner.to_owned()).or_insert(next);
        let next = products.len() as u32;
        let product = *products.entry(p.product.to_owned()).or_insert(next);
        let next = reporters.len() as u32;
        let reporter = *reporters.entry(p.reporter.to_owned()).or_insert(next);
        let flow = u8::from(p.flow == "IMPORT");
        rows.entry((reporter, p.year)).or_default().push(
            (partner, block::flags(flow, 0), 0, product, 0),
            0,
            p.value,
        );
        if written.is_ok() {
            written = writeln!(
                out,
                "{},{},{},{},{},{}",
                p.reporter, p.partner, p.flow, p.product, p.year, p.value
            );
        }
    });
    written?;
    out.flush()?;
    drop(out);
    eprintln!(
        "generated {points} points in {} series, {} blocks, in {:.1?}",
        matrix.series(),
        rows.len(),
        started.elapsed()
    );
    // Product ids in code order, as the store's dictionary gives them.
    let mut codes: Vec<(&String, u32)> = products.iter().map(|(c, &id)| (c, id)).collect();
    codes.sort();
    let renumber: HashMap<u32, u32> = codes
        .iter()
        .enumerate()
        .map(|(n, &(_, id))| (id, n as u32))
        .collect();
    for block in rows.values_mut() {
        for id in &mut block.product {
            *id = renumber[id];
        }
        block.sort();
    }

    println!("### Column blocks at the shape of the trade matrix\n");
    println!(
        "Machine: {} cores. Command: `block-sizes --points {}`: {points} points in {} series ({} reporters × {} years = {} blocks of {} rows on average).\n",
        std::thread::available_parallelism().map_or(0, usize::from),
        args.points,
        matrix.series(),
        args.reporters,
        rows.keys().map(|&(_, y)| y).max().unwrap_or(FIRST_YEAR) - FIRST_YEAR + 1,
        rows.len(),
        points as usize / rows.len().max(1),
    );
    println!("| codec | bytes a point | partner | flags | measure | product | release | source | value | encode | imports by product, {YEAR} |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut answers = Vec::new();
    for (codec, level) in [
        (Codec::Pco, 8),
        (Codec::Pco, 4),
        (Codec::Pco, 2),
        (Codec::Pco, 0),
        (Codec::Zstd, 0),
    ] {
        let started = Instant::now();
        let encoded: BTreeMap<(u32, u32), Vec<u8>> = rows
            .iter()
            .map(|(&k, r)| Ok((k, block::encode_at(r, codec, level)?)))
            .collect::<anyhow::Result<_>>()?;
        let encode = started.elapsed();
        let mut per_column = [0usize; COLUMNS.len()];
        let mut total = 0;
        for bytes in encoded.values() {
            total += bytes.len();
            let b = Block::open(bytes)?;
            for (n, column) in COLUMNS.iter().enumerate() {
                per_column[n] += b.column_bytes(*column);
            }
        }
        let year: Vec<&[u8]> = encoded
            .iter()
            .filter(|((_, y), _)| *y == YEAR)
            .map(|(_, b)| b.as_slice())
            .collect();
        let mut times = Vec::new();
        let mut answer = Vec::new();
        for _ in 0..args.repeat {
            let started = Instant::now();
            answer = imports_by_product(&year, products.len())?;
            times.push(started.elapsed());
        }
        answers.push(answer);
        let per = |b: usize| format!("{:.2}", b as f64 / points as f64);
        let name = match codec {
            Codec::Pco => format!("Pcodec, level {level}"),
            Codec::Zstd => "zstd, level 3".to_owned(),
        };
        println!(
            "| {name} | {} | {} | {:.1} s | {:.1} ms |",
            per(total),
            per_column.map(per).join(" | "),
            encode.as_secs_f64(),
            median(times).as_secs_f64() * 1e3
        );
    }
    anyhow::ensure!(
        answers.iter().all(|a| *a == answers[0]),
        "the codecs' answers differ"
    );

    println!("\n{}", engine.line());

    let script = format!(
        r#"
import duckdb, os, time, statistics, json
c = duckdb.connect()
c.execute('SET enable_progress_bar = false')
src = "read_csv('{csv}', header=true, columns={{'reporter':'VARCHAR','partner':'VARCHAR','flow':'VARCHAR','product':'VARCHAR','period':'INTEGER','value_usd':'DOUBLE'}})"
sizes = []
for name, order in [('file', ''), ('sorted', 'ORDER BY reporter, period')]:
    path = '{dir}/' + name + '.parquet'
    c.execute(f"COPY (SELECT * FROM {{src}} {{order}}) TO '{{path}}' (FORMAT PARQUET, COMPRESSION ZSTD)")
    sizes.append(os.path.getsize(path))
c.execute("CREATE TABLE t AS SELECT * FROM '{dir}/sorted.parquet'")
q = "SELECT product, sum(value_usd) FROM t WHERE flow = 'IMPORT' AND period = {YEAR} GROUP BY product"
times = []
for _ in range({repeat}):
    t = time.perf_counter(); rows = c.execute(q).fetchall(); times.append(time.perf_counter() - t)
print(json.dumps([sizes, statistics.median(times), {{r[0]: r[1] for r in rows}}]))
"#,
        csv = csv.display(),
        dir = dir.path().display(),
        repeat = args.repeat,
    );
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "DuckDB (pip install duckdb): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (sizes, query, duck): (Vec<u64>, f64, HashMap<String, f64>) =
        serde_json::from_slice(&output.stdout)?;
    for (code, id) in &codes {
        let ours = answers[0][renumber[id] as usize];
        let theirs = duck.get(*code).copied().unwrap_or(0.0);
        anyhow::ensure!(
            (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
            "imports of {code}: blocks {ours}, DuckDB {theirs}"
        );
    }
    println!(
        "\nParquet (zstd, written by DuckDB in the same run): {:.2} bytes a point in the file's order (series after series), {:.2} sorted by reporter and period. DuckDB's imports by product in {YEAR} from the sorted table: {:.1} ms (the answers equal the blocks').",
        sizes[0] as f64 / points as f64,
        sizes[1] as f64 / points as f64,
        query * 1e3
    );
    Ok(())
}

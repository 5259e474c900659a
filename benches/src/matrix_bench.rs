//! The matrix at the shape of real trade data: many short, sparse series (reporter × partner ×
//! flow × HS6 product, 25 annual periods, most pairs trading few products, Zipf-like values),
//! written once as a CSV file that tradepact (`tradepact import` → `StreamWritePoints`) and
//! DuckDB both load, then the same cross-sectional questions asked of both: one reporter's
//! imports by partner in a year (top 10), everyone's imports by product in a year, and one
//! reporter's top 10 partners by deficit. The answers are compared (the benchmark fails if
//! they differ), the times printed as a markdown table.
//!
//! `matrix-bench --points 1000000` (DuckDB from PyPI: `pip install duckdb`).

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use tradepact_bench::matrix::{Matrix, YEARS};
use tradepact_bench::median;
use tradepact_bench::Server;
use tradepact_proto::data_v1 as pb;

#[derive(Parser)]
struct Args {
    /// Points to generate (about; 20 per series on average).
    #[arg(long, default_value_t = 1_000_000)]
    points: u64,
    /// Reporters.
    #[arg(long, default_value_t = 40)]
    reporters: usize,
    /// Runs of each query (the median is printed).
    #[arg(long, default_value_t = 7)]
    repeat: usize,
    /// Also load the file into PostgreSQL 15 (`COPY`, durable, a primary key on the series and
    /// period) and ask it the same questions.
    #[arg(long)]
    postgres: bool,
}

const YEAR: u32 = 2016;

/// Writes the file; the reporter asked about, the rows and the series written.
fn generate(path: &Path, args: &Args) -> anyhow::Result<(String, u64, usize)> {
    let mut matrix = Matrix::new(args.reporters);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        "reporter,partner,flow,kind,product,period,value_usd,source"
    )?;
    let mut written = Ok(());
    let rows = matrix.generate(args.points, |p| {
        if written.is_ok() {
            written = writeln!(
                out,
                "{},{},{},GOODS,HS2022:{},{},{},gen",
                p.reporter, p.partner, p.flow, p.product, p.year, p.value
            );
        }
    });
    written?;
    out.flush()?;
    Ok((matrix.reporters()[0].clone(), rows, matrix.series()))
}

/// An answer: (group, value rounded to dollars) in order.
type Answer = Vec<(String, i64)>;

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The three questions in SQL (DuckDB and PostgreSQL alike), on a table `t` of the file's
/// columns.
fn sql(reporter: &str) -> [String; 3] {
    let both = "HAVING sum(CASE WHEN flow='EXPORT' THEN 1 ELSE 0 END) > 0 AND sum(CASE WHEN flow='IMPORT' THEN 1 ELSE 0 END) > 0";
    [
        format!("SELECT partner, sum(value_usd) v FROM t WHERE reporter='{reporter}' AND flow='IMPORT' AND period={YEAR} GROUP BY partner ORDER BY v DESC LIMIT 10"),
        format!("SELECT product, sum(value_usd) v FROM t WHERE flow='IMPORT' AND period={YEAR} GROUP BY product ORDER BY product"),
        format!("SELECT partner, sum(CASE WHEN flow='EXPORT' THEN value_usd ELSE -value_usd END) v FROM t WHERE reporter='{reporter}' AND period={YEAR} GROUP BY partner {both} ORDER BY v ASC LIMIT 10"),
    ]
}

/// The file into PostgreSQL and the three questions: load time, then per query its median
/// time and its answer.
async fn postgres(
    path: &Path,
    reporter: &str,
    repeat: usize,
) -> anyhow::Result<(Duration, Vec<(Duration, Answer)>)> {
    use futures_util::SinkExt;
    let pg = tradepact_bench::postgres::Postgres::start()?;
    let client = pg.connect().await?;
    client
        .batch_execute(
            "CREATE TABLE t (reporter text, partner text, flow text, kind text, product text, period integer,
                             value_usd double precision, source text,
                             PRIMARY KEY (reporter, partner, flow, kind, product, period))",
        )
        .await?;
    let started = Instant::now();
    let sink = client
        .copy_in("COPY t FROM STDIN WITH (FORMAT csv, HEADER true)")
        .await?;
    futures_util::pin_mut!(sink);
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        sink.send(bytes::Bytes::copy_from_slice(&buf[..n])).await?;
    }
    sink.finish().await?;
    let load = started.elapsed();
    let mut out = Vec::new();
    for q in sql(reporter) {
        let mut times = Vec::new();
        let mut answer = Vec::new();
        for _ in 0..repeat {
            let t = Instant::now();
            let rows = client.query(q.as_str(), &[]).await?;
            times.push(t.elapsed());
            answer = rows
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, f64>(1).round() as i64))
                .collect();
        }
        out.push((median(times), answer));
    }
    Ok((load, out))
}

/// The three questions as DuckDB answers them: load time, then per query its median time and
/// its answer (group, value) rounded to dollars.
fn duckdb(
    path: &Path,
    reporter: &str,
    repeat: usize,
) -> anyhow::Result<(Duration, Vec<(Duration, Answer)>)> {
    let script = format!(
        r#"
import duckdb, json, time, statistics
c = duckdb.connect()
c.execute('SET enable_progress_bar = false')
t = time.perf_counter()
c.execute("CREATE TABLE t AS SELECT * FROM read_csv('{path}', header=true, columns={{'reporter':'VARCHAR','partner':'VARCHAR','flow':'VARCHAR','kind':'VARCHAR','product':'VARCHAR','period':'INTEGER','value_usd':'DOUBLE','source':'VARCHAR'}})")
load = time.perf_counter() - t
qs = {queries}
out = []
for q in qs:
  times = []
  for _ in range({repeat}):
    t = time.perf_counter(); rows = c.execute(q).fetchall(); times.append(time.perf_counter() - t)
  out.append([statistics.median(times), [[r[0], round(r[1])] for r in rows]])
print(json.dumps([load, out]))
"#,
        path = path.display(),
        queries = serde_json::to_string(&sql(reporter))?
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
    let (load, queries): (f64, Vec<(f64, Answer)>) = serde_json::from_slice(&output.stdout)?;
    Ok((
        Duration::from_secs_f64(load),
        queries
            .into_iter()
            .map(|(t, rows)| (Duration::from_secs_f64(t), rows))
            .collect(),
    ))
}

/// The three questions as `QueryTrade` requests.
fn questions(reporter: &str) -> Vec<pb::QueryTradeRequest> {
    let year = YEAR.to_string();
    let base = pb::QueryTradeRequest {
        product_level: 6,
        start_period: year.clone(),
        end_period: year,
        ..Default::default()
    };
    vec![
        pb::QueryTradeRequest {
            reporters: vec![reporter.to_owned()],
            flows: vec![pb::Flow::Import.into()],
            group_by: vec![pb::Dimension::Partner.into()],
            order: pb::QueryOrder::Descending.into(),
            limit: 10,
            ..base.clone()
        },
        pb::QueryTradeRequest {
            flows: vec![pb::Flow::Import.into()],
            group_by: vec![pb::Dimension::Product.into()],
            ..base.clone()
        },
        pb::QueryTradeRequest {
            reporters: vec![reporter.to_owned()],
            balance: true,
            group_by: vec![pb::Dimension::Partner.into()],
            order: pb::QueryOrder::Ascending.into(),
            limit: 10,
            ..base
        },
    ]
}

async fn ask(
    client: &mut tradepact_client::data::DataClient,
    q: &pb::QueryTradeRequest,
) -> anyhow::Result<Answer> {
    let mut stream = client.query_trade(q.clone()).await?.into_inner();
    let mut out = Vec::new();
    while let Some(message) = stream.message().await? {
        for cell in message.cells {
            if let Some(v) = cell.value {
                out.push((cell.group.join(" "), v.round() as i64));
            }
        }
    }
    Ok(out)
}

fn du(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => du(&e.path()),
                    _ => e.metadata().map_or(0, |m| m.blocks() * 512),
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("matrix.csv");
    let started = Instant::now();
    let (reporter, rows, series) = generate(&file, &args)?;
    let generated = started.elapsed();
    eprintln!("generated {rows} points in {series} series in {generated:.1?}");

    let store = dir.path().join("store");
    let server = Server::start_sibling(
        "tradepact-data",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            store.to_str().unwrap(),
        ],
    )?;
    let tool = std::env::current_exe()?.with_file_name("tradepact");
    let started = Instant::now();
    let import = std::process::Command::new(&tool)
        .args([
            "import",
            "--data-service",
            &server.url,
            file.to_str().unwrap(),
        ])
        .output()?;
    let ingest = started.elapsed();
    anyhow::ensure!(
        import.status.success(),
        "import: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let (peak, _) = server.memory_mb();
    let disk = du(&store);
    eprintln!("tradepact: loaded in {ingest:.2?}, peak RSS {peak} MB, {disk} bytes on disk");
    let files: Vec<_> = std::fs::read_dir(&store)?
        .flatten()
        .map(|e| {
            (
                e.file_name(),
                e.metadata().map(|m| (m.len(), m.blocks() * 512)).ok(),
            )
        })
        .collect();
    eprintln!("tradepact: files {files:?}");

    let mut client = tradepact_client::data::connect(&server.url).await?;
    let mut ours = Vec::new();
    for q in questions(&reporter) {
        let answer = ask(&mut client, &q).await?;
        let mut times = Vec::new();
        for _ in 0..args.repeat {
            let t = Instant::now();
            ask(&mut client, &q).await?;
            times.push(t.elapsed());
        }
        eprintln!(
            "tradepact: question {}: {:.1?}",
            ours.len() + 1,
            median(times.clone())
        );
        ours.push((median(times), answer));
    }
    drop(client);
    drop(server);
    eprintln!(
        "tradepact: after the server stopped: {} bytes on disk",
        du(&store)
    );
    let (duck_load, theirs) = duckdb(&file, &reporter, args.repeat)?;
    eprintln!("DuckDB: loaded in {duck_load:.2?}");
    for (i, ((_, a), (_, b))) in ours.iter().zip(&theirs).enumerate() {
        anyhow::ensure!(
            a == b,
            "question {} differs: tradepact {a:?}, DuckDB {b:?}",
            i + 1
        );
    }
    let pg = match args.postgres {
        true => Some(postgres(&file, &reporter, args.repeat).await?),
        false => None,
    };
    if let Some((_, answers)) = &pg {
        for (i, ((_, a), (_, b))) in ours.iter().zip(answers).enumerate() {
            anyhow::ensure!(
                a == b,
                "question {} differs: tradepact {a:?}, PostgreSQL {b:?}",
                i + 1
            );
        }
    }

    println!(
        "Machine: {} cores. Command: `matrix-bench --points {}{}`: {rows} points in {series} series ({} reporters, every country a partner, HS6 products, {YEARS} years, a fifth missing), a {:.0} MB CSV generated in {:.1} s; questions about reporter {reporter} in {YEAR}; medians of {} runs; tradepact's answers equal DuckDB's{}.",
        std::thread::available_parallelism()?.get(),
        args.points,
        if args.postgres { " --postgres" } else { "" },
        args.reporters,
        std::fs::metadata(&file)?.len() as f64 / 1e6,
        generated.as_secs_f64(),
        args.repeat,
        if pg.is_some() { " and PostgreSQL's" } else { "" }
    );
    println!();
    let pg_cell = |i: Option<usize>| match (&pg, i) {
        (None, _) => String::new(),
        (Some((load, _)), None) => format!(" {:.2} s |", load.as_secs_f64()),
        (Some((_, answers)), Some(i)) => format!(" {} |", ms(answers[i].0)),
    };
    let pg_head = if pg.is_some() { " PostgreSQL 15 |" } else { "" };
    let pg_rule = if pg.is_some() { "---:|" } else { "" };
    println!("| | tradepact (gRPC) | DuckDB (in process) | tradepact ÷ DuckDB |{pg_head}");
    println!("|---|---:|---:|---:|{pg_rule}");
    let ratio = |a: Duration, b: Duration| format!("{:.1}×", a.as_secs_f64() / b.as_secs_f64());
    println!(
        "| load the file (durable for tradepact and PostgreSQL) | {:.2} s ({:.2} M points/s) | {:.2} s | {} |{}",
        ingest.as_secs_f64(),
        rows as f64 / ingest.as_secs_f64() / 1e6,
        duck_load.as_secs_f64(),
        ratio(ingest, duck_load),
        pg_cell(None)
    );
    let names = [
        "one reporter's imports by partner, top 10",
        "everyone's imports by product (HS6)",
        "one reporter's top 10 partners by deficit",
    ];
    for (i, ((name, (a, _)), (b, _))) in names.iter().zip(&ours).zip(&theirs).enumerate() {
        println!(
            "| {name} | {} | {} | {} |{}",
            ms(*a),
            ms(*b),
            ratio(*a, *b),
            pg_cell(Some(i))
        );
    }
    println!();
    println!(
        "tradepact server peak RSS {peak:.0} MB; store {:.0} MB on disk ({:.1} bytes per point).",
        disk as f64 / 1e6,
        disk as f64 / rows as f64
    );
    Ok(())
}

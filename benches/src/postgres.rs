//! PostgreSQL as the baseline a user would pick instead: a server started on loopback in a
//! temporary directory (as the `postgres` user when run as root), a table keyed by series and
//! period, `COPY` ingest and an indexed range query.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;

/// A running PostgreSQL server, stopped when dropped.
pub struct Postgres {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
}

fn as_postgres_user(program: &str) -> Command {
    // PostgreSQL refuses to run as root.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Postgres {
    /// Initialises a cluster and starts it (durable: fsync on, the defaults).
    pub fn start() -> anyhow::Result<Postgres> {
        let dir = tempfile::Builder::new().prefix("tradepact-pg").tempdir()?;
        let data: PathBuf = dir.path().join("data");
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        let init = as_postgres_user("initdb")
            .args(["-A", "trust", "-U", "bench", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| {
                anyhow::anyhow!("initdb not found ({e}); apt-get install postgresql-15")
            })?;
        anyhow::ensure!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = free_port()?;
        let child = as_postgres_user("postgres")
            .arg("-D")
            .arg(&data)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-k",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Postgres {
            child,
            _dir: dir,
            port,
        })
    }

    /// Connects, waiting for the server to accept connections.
    pub async fn connect(&self) -> anyhow::Result<tokio_postgres::Client> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let config = format!(
                "host=127.0.0.1 port={} user=bench dbname=postgres",
                self.port
            );
            match tokio_postgres::connect(&config, tokio_postgres::NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(connection);
                    return Ok(client);
                }
                // Not accepting connections yet.
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates the table (dropping a previous one).
pub async fn create_table(client: &tokio_postgres::Client) -> anyhow::Result<()> {
    client
        .batch_execute(
            "DROP TABLE IF EXISTS points;
             CREATE TABLE points (series integer, period integer, value double precision, source text,
                                  PRIMARY KEY (series, period));",
        )
        .await?;
    Ok(())
}

/// `COPY` of (series, period, value, source) rows, in chunks of text.
pub async fn copy_in(
    client: &tokio_postgres::Client,
    rows: impl Iterator<Item = (u32, u32, f64)>,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let sink = client
        .copy_in("COPY points (series, period, value, source) FROM STDIN")
        .await?;
    futures_util::pin_mut!(sink);
    let mut buf = String::with_capacity(1 << 20);
    for (s, p, v) in rows {
        use std::fmt::Write;
        let _ = writeln!(buf, "{s}\t{p}\t{v}\tbench");
        if buf.len() > (1 << 20) - 64 {
            sink.send(Bytes::from(std::mem::take(&mut buf))).await?;
        }
    }
    if !buf.is_empty() {
        sink.send(Bytes::from(buf)).await?;
    }
    sink.finish().await?;
    Ok(start.elapsed())
}

/// The rows of one series in a period range, read by the client.
pub async fn range(
    client: &tokio_postgres::Client,
    series: u32,
    from: u32,
    to: u32,
) -> anyhow::Result<(usize, Duration)> {
    let start = Instant::now();
    let rows = client
        .query(
            "SELECT period, value FROM points WHERE series = $1 AND period BETWEEN $2 AND $3 ORDER BY period",
            &[&(series as i32), &(from as i32), &(to as i32)],
        )
        .await?;
    let n = rows
        .iter()
        .map(|r| r.get::<_, f64>(1))
        .filter(|v| v.is_finite())
        .count();
    Ok((n, start.elapsed()))
}

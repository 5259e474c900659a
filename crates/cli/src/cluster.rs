//! `tradepact up --cluster`: cluster mode on one machine, to try it. A three-node NATS
//! JetStream cluster (`nats-server` 2.15 from the PATH, as child processes, each message
//! fsynced before it counts), two data nodes (each sled store a view of the data stream) and
//! two negotiation replicas (the event log a stream, reading the first data node), all on
//! loopback; the KORUS sample loaded through the first data node when the stream is empty.
//! State under `HOME/cluster`; Ctrl-C stops everything. `scripts/cluster.sh` does the same
//! with one process per node.

use std::path::Path;

use crate::up::UpArgs;

/// Runs the cluster until SIGINT or SIGTERM.
pub async fn run(args: UpArgs, home: &Path) -> anyhow::Result<()> {
    let home = home.join("cluster");
    let nats = tradepact_rpc::nats::LocalCluster::start(&home.join("nats"))?;
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

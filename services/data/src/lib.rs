//! The tradepact trade data service: `tradepact.data.v1.TradeDataService` over the sled
//! time-series store of `tradepact-store`. Handlers validate ([`convert`]) and call the
//! application ([`app`]: writes through its write log, ingest, watch, reads); no storage
//! logic lives here.

pub mod app;
pub mod at_least;
mod columns;
pub mod convert;
mod feed;
mod query;
mod reference;
pub mod service;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tradepact_proto::data_v1::trade_data_service_server::TradeDataServiceServer;
use tradepact_rpc::Limits;
use tradepact_store::Store;

pub use service::DataService;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// The scope each RPC needs, checked on the request headers (see `tradepact_rpc::auth`).
pub const SCOPES: tradepact_rpc::auth::Policy = {
    use tradepact_rpc::auth::Requirement::Scopes;
    const READ: tradepact_rpc::auth::Requirement = Scopes(&["data:read"]);
    const WRITE: tradepact_rpc::auth::Requirement = Scopes(&["data:write"]);
    &[
        ("WritePoints", WRITE),
        ("StreamWritePoints", WRITE),
        ("StreamWriteColumns", WRITE),
        ("DeleteSeries", WRITE),
        ("GetSeries", READ),
        ("StreamSeries", READ),
        ("StreamSeriesColumns", READ),
        ("ListSeries", READ),
        ("GetTradeBalance", READ),
        ("GetChange", READ),
        ("WatchSeries", READ),
        ("ListCountries", READ),
        ("ListGroups", READ),
        ("DefineGroup", WRITE),
        ("ListProducts", READ),
        ("QueryTrade", READ),
        ("GetMirror", READ),
        ("ListReleases", READ),
        ("DiffReleases", READ),
    ]
};

/// Command-line and environment configuration of `tradepact-data`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "tradepact-data",
    version,
    about = "The tradepact trade data service (gRPC)"
)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (logged as "listening on ADDR").
    #[arg(long, env = "TRADEPACT_DATA_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// Directory of the sled store; created if missing.
    #[arg(long, env = "TRADEPACT_DATA_DIR", default_value = "data/trade")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub log: tradepact_rpc::LogArgs,
    #[command(flatten)]
    pub metrics: tradepact_rpc::MetricsArgs,
    #[command(flatten)]
    pub limits: tradepact_rpc::LimitArgs,
    #[command(flatten)]
    pub security: tradepact_rpc::SecurityArgs,
    #[command(flatten)]
    pub nats: tradepact_rpc::nats::NatsArgs,
    #[command(flatten)]
    pub snapshots: SnapshotArgs,
}

/// How a cluster node takes snapshots of its store (see [`app::snapshot`]).
#[derive(Clone, Debug, clap::Args)]
pub struct SnapshotArgs {
    /// Cluster mode: take a snapshot of the store for new nodes (kept in the JetStream object
    /// store) once this many MiB of messages have been applied here since the newest one; 0:
    /// never. A new node on an empty directory starts from the newest snapshot.
    #[arg(long, env = "TRADEPACT_SNAPSHOT_EVERY_MIB", default_value_t = 256.0)]
    pub snapshot_every_mib: f64,
    /// Cluster mode: after taking a snapshot, remove from the stream the messages up to the
    /// snapshot before it (once the new one reads back whole), so that the stream keeps about
    /// two snapshots' worth of messages; false: keep every message.
    #[arg(long, env = "TRADEPACT_CUT_STREAM", default_value_t = true, action = clap::ArgAction::Set)]
    pub cut_stream: bool,
}

/// MiB of the store's reserve file by default (sled reopens a store of 10^7 points in less:
/// see docs/architecture.md).
pub const RESERVE_MIB: u64 = 16;

/// How the store uses memory and disk.
#[derive(Clone, Debug, clap::Args)]
pub struct StoreArgs {
    /// MiB of the store's page cache: with the data being written or read, what bounds the
    /// service's memory (a 10^7-point load peaks under 200 MB with the default).
    #[arg(long, env = "TRADEPACT_STORE_CACHE_MIB", default_value_t = 64)]
    pub store_cache_mib: u64,
    /// Whether a new store compresses its pages (zstd): at 10^7 points 2.4 times less disk,
    /// 1.6 times the ingest time, a third more memory. An existing store keeps the setting it
    /// was created with.
    #[arg(long, env = "TRADEPACT_STORE_COMPRESSION", default_value_t = false, action = clap::ArgAction::Set)]
    pub store_compression: bool,
    /// MiB held back in the data directory (the file `reserve`) so that the store can still
    /// reopen itself when the disk fills; given back when a write fails, taken again before
    /// writes resume. 0: none (a full disk then stops reads too until there is room).
    #[arg(long, env = "TRADEPACT_STORE_RESERVE_MIB", default_value_t = RESERVE_MIB)]
    pub store_reserve_mib: u64,
}

impl Default for StoreArgs {
    fn default() -> Self {
        let options = tradepact_store::StoreOptions::default();
        StoreArgs {
            store_cache_mib: options.cache_bytes / (1024 * 1024),
            store_compression: options.compression,
            store_reserve_mib: RESERVE_MIB,
        }
    }
}

impl StoreArgs {
    /// The store's options.
    pub fn options(&self) -> tradepact_store::StoreOptions {
        tradepact_store::StoreOptions {
            cache_bytes: self.store_cache_mib.max(1) * 1024 * 1024,
            compression: self.store_compression,
            reserve_bytes: self.store_reserve_mib * 1024 * 1024,
        }
    }
}

/// Opens the store in `dir` with the default options, with an error that names the directory.
pub fn open_store(dir: &Path) -> anyhow::Result<Arc<Store>> {
    open_store_with(dir, &StoreArgs::default())
}

/// Opens the store in `dir`, with an error that names the directory.
pub fn open_store_with(dir: &Path, args: &StoreArgs) -> anyhow::Result<Arc<Store>> {
    let options = args.options();
    let open = |dir: &Path| Store::open_with(dir, options);
    let store = tradepact_rpc::server::open_dir(dir, "the store", "tradepact-data", open)?;
    Ok(Arc::new(store))
}

/// Migrates the store in `dir` to the current format (`tradepact migrate-store DIR`); says
/// what it did. The service must not be running on it.
pub fn migrate_store(dir: &Path) -> anyhow::Result<String> {
    let migrated = tradepact_store::migrate(dir)
        .map_err(|e| anyhow::anyhow!("cannot migrate the store in {}: {e}", dir.display()))?;
    Ok(match migrated {
        None => format!(
            "the store in {} is in format {} already; nothing to do",
            dir.display(),
            tradepact_store::FORMAT
        ),
        Some(m) => format!(
            "migrated the store in {} from format {} to {}: {} series, {} entries; the old store is kept in {} (delete it when satisfied)",
            dir.display(),
            m.from,
            tradepact_store::FORMAT,
            m.series,
            m.entries,
            m.kept.display()
        ),
    })
}

/// Serves `store` on `listener` until `shutdown` completes, then flushes the store.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    limits: Limits,
    security: tradepact_rpc::Security,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (app, watchers) = app::Trade::new(store.clone());
    serve_trade(
        listener,
        store,
        (app, watchers, None),
        limits,
        security,
        shutdown,
    )
    .await
}

/// How a cluster node takes snapshots (see [`app::snapshot`]).
pub struct Snapshotting {
    /// The bucket.
    pub snapshots: app::snapshot::Snapshots,
    /// Bytes of messages applied between two snapshots; 0: none taken.
    pub every_bytes: u64,
    /// The file a snapshot is written to before it is uploaded.
    pub scratch: PathBuf,
}

/// Serves `store` as a view of the cluster's data stream (cluster mode; see
/// [`app::cluster`]) on `listener` until `shutdown` completes.
pub async fn serve_clustered(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    (nats, snapshotting): (&tradepact_rpc::nats::NatsConfig, Snapshotting),
    limits: Limits,
    security: tradepact_rpc::Security,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let log = app::cluster::ClusterLog::open(nats, store.clone(), limits.max_message_bytes).await?;
    let applied = log.applied();
    let snapshots = (snapshotting.every_bytes > 0).then(|| {
        let Snapshotting {
            snapshots,
            every_bytes,
            scratch,
        } = snapshotting;
        let taking =
            snapshots.keep_taking(store.clone(), log.applied_bytes(), every_bytes, scratch);
        tokio::spawn(taking).abort_handle()
    });
    let (app, watchers) = app::Trade::clustered(store.clone(), log);
    let served = serve_trade(
        listener,
        store,
        (app, watchers, Some(applied)),
        limits,
        security,
        shutdown,
    )
    .await;
    if let Some(taking) = snapshots {
        taking.abort();
    }
    served
}

type Served = (
    app::Trade,
    app::watch::Closer,
    Option<tokio::sync::watch::Receiver<u64>>,
);

async fn serve_trade(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    (app, watchers, applied): Served,
    limits: Limits,
    security: tradepact_rpc::Security,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if tradepact_rpc::metrics::enabled() {
        // Known before the first call (a cheap look at the files), then every 10 s.
        if let Ok(bytes) = store.size_on_disk() {
            metrics::gauge!(STORE_BYTES).set(bytes as f64);
        }
        tokio::spawn(store_size(Arc::downgrade(&store)));
    }
    let service = DataService::new(app);
    let server = TradeDataServiceServer::new(service)
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    let shutdown = async move {
        shutdown.await;
        watchers.close();
    };
    let (writable, writes) = tokio::sync::watch::channel(true);
    let recovering = tokio::spawn(tradepact_rpc::writable::keep_writable(
        Arc::new(app::StoreWrites(store.clone())),
        writable,
        app::WRITES_FAILING,
    ));
    let names = vec![(WRITES_HEALTH.to_owned(), writes)];
    let served = match applied {
        Some(applied) => {
            let server = at_least::AtLeast::new(server, applied);
            tradepact_rpc::serve_with_health(
                listener, server, SCOPES, limits, security, shutdown, names,
            )
            .await
        }
        None => {
            tradepact_rpc::serve_with_health(
                listener, server, SCOPES, limits, security, shutdown, names,
            )
            .await
        }
    };
    recovering.abort();
    let flushed = tokio::task::spawn_blocking(move || match store.failing() {
        // Writes were refused since the last one failed: memory holds nothing unwritten.
        true => Err(tradepact_store::Error::Unavailable(
            "the store could not write when the service stopped".to_owned(),
        )),
        false => store.flush(),
    })
    .await?;
    match flushed {
        Ok(_) => tracing::info!("store flushed"),
        // Every acknowledged write is on disk already; nothing else is owed.
        Err(e) => {
            tracing::warn!(error = %e, "the store could not flush at shutdown; every acknowledged write was flushed when it was acknowledged")
        }
    }
    served
}

/// The gRPC health name that says whether writes can be made durable (`NOT_SERVING` while
/// the store refuses writes after an I/O error; reads go on under the service's own name).
pub const WRITES_HEALTH: &str = "tradepact.data.v1.TradeDataService.writes";

/// The store's files, in bytes (a gauge).
const STORE_BYTES: &str = "tradepact_store_bytes";

/// Keeps [`STORE_BYTES`] current (every 10 s) while the store is open.
async fn store_size(store: std::sync::Weak<Store>) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        let Some(store) = store.upgrade() else { return };
        let size = tokio::task::spawn_blocking(move || store.size_on_disk()).await;
        if let Ok(Ok(bytes)) = size {
            metrics::gauge!(STORE_BYTES).set(bytes as f64);
        }
    }
}

/// Runs the service as configured until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let security = tradepact_rpc::Security::load(&config.security)?;
    tradepact_rpc::metrics::start(&config.metrics).await?;
    let limits = Limits::from(&config.limits);
    let shutdown = tradepact_rpc::server::shutdown_signal();
    match config.nats.config() {
        Some(nats) => {
            tracing::info!(nats = %nats.url, replicas = nats.replicas, "cluster mode: the store is a view of the data stream");
            let (store, snapshotting) = open_node(
                &nats,
                &config.data_dir,
                (&config.store, &config.snapshots),
                limits.max_message_bytes,
            )
            .await?;
            tracing::info!(data_dir = %config.data_dir.display(), "store open");
            let listener = tradepact_rpc::server::bind(&config.listen).await?;
            let cluster = (&nats, snapshotting);
            serve_clustered(listener, store, cluster, limits, security, shutdown).await
        }
        None => {
            let store = open_store_with(&config.data_dir, &config.store)?;
            tracing::info!(data_dir = %config.data_dir.display(), "store open");
            let listener = tradepact_rpc::server::bind(&config.listen).await?;
            serve(listener, store, limits, security, shutdown).await
        }
    }
}

/// Opens the store in `dir` as a node of the cluster at `nats` (restored from the newest
/// snapshot when new or behind the stream: see [`app::snapshot`]), and how it takes
/// snapshots; for [`serve_clustered`].
pub async fn open_node(
    nats: &tradepact_rpc::nats::NatsConfig,
    dir: &Path,
    (store, snapshots): (&StoreArgs, &SnapshotArgs),
    max_message_bytes: usize,
) -> anyhow::Result<(Arc<Store>, Snapshotting)> {
    let cut = snapshots.cut_stream;
    let bucket = app::snapshot::Snapshots::open(nats, max_message_bytes, cut).await?;
    let opened = bucket.open_store(dir, store).await?;
    let mut scratch = dir.file_name().unwrap_or_default().to_owned();
    scratch.push(".snapshot");
    let snapshotting = Snapshotting {
        snapshots: bucket,
        every_bytes: (snapshots.snapshot_every_mib.max(0.0) * 1024.0 * 1024.0) as u64,
        scratch: dir.with_file_name(scratch),
    };
    Ok((opened, snapshotting))
}

#[cfg(test)]
mod handler_tests;

#[cfg(test)]
mod tests {
    use tradepact_proto::data_v1::trade_data_service_server::SERVICE_NAME;

    #[test]
    fn every_rpc_has_a_scope() {
        tradepact_rpc::auth::check_policy(SERVICE_NAME, super::SCOPES).unwrap();
    }
}

//! The tradepact negotiation service: `tradepact.negotiation.v1.NegotiationService` over the
//! bargaining engine of `tradepact-bargain`. Every negotiation's events are appended to one
//! event log file ([`app::log`]; a JetStream stream in cluster mode), replayed at start;
//! commands on one negotiation are serialised by a lock, so concurrent offers cannot corrupt it
//! (the loser gets `FAILED_PRECONDITION`). Impact estimates read baselines from the data
//! service over gRPC, with a deadline, so that the service keeps working when the data
//! service is down.

pub mod app;
mod convert;
mod data_source;
mod present;
pub mod service;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tradepact_proto::negotiation_v1::negotiation_service_server::NegotiationServiceServer;
use tradepact_rpc::Limits;

use app::log::EventStore;

pub use app::{heavy, log};
pub use service::NegotiationSvc;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50052";
/// Default data service URL.
pub const DEFAULT_DATA_SERVICE: &str = "http://127.0.0.1:50051";

/// What each RPC needs of a token, checked on the request headers (see
/// `tradepact_rpc::auth`). The handlers check the rest before they read or write: acting for
/// a party needs that party's position scope, and an analysis or a simulation needs every
/// party's (or `negotiation:all-parties`); what an answer shows of utilities depends on the
/// positions the caller may see.
pub const SCOPES: tradepact_rpc::auth::Policy = {
    use tradepact_rpc::auth::Requirement::{Scopes, SomeParty};
    const READ: tradepact_rpc::auth::Requirement = Scopes(&["negotiation:read"]);
    const WRITE: tradepact_rpc::auth::Requirement = Scopes(&["negotiation:write"]);
    &[
        ("CreateNegotiation", WRITE),
        // And the position scope of every party it sets (checked in the handler).
        ("ImportScenario", WRITE),
        ("ExportScenario", READ),
        ("GetNegotiation", READ),
        ("ListNegotiations", READ),
        ("SetPosition", SomeParty),
        ("SubmitOffer", SomeParty),
        ("RespondToOffer", SomeParty),
        ("BreakOff", SomeParty),
        ("AnalyzeNegotiation", READ),
        ("AnalyzeRobustness", READ),
        ("SimulateMediation", READ),
        ("SimulateNegotiation", READ),
        // And the position scope of the seat's party (checked in the handler).
        ("TakeSeat", Scopes(&["negotiation:read"])),
        ("ForkNegotiation", WRITE),
        ("WatchNegotiation", READ),
        // Its answer carries values read from the data service.
        ("EstimateImpact", Scopes(&["negotiation:read", "data:read"])),
    ]
};

/// Command-line and environment configuration of `tradepact-negotiation`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "tradepact-negotiation",
    version,
    about = "The tradepact negotiation service (gRPC)"
)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (logged as "listening on ADDR").
    #[arg(long, env = "TRADEPACT_NEGOTIATION_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// Directory of the event log (`events.log`); created if missing.
    #[arg(
        long,
        env = "TRADEPACT_NEGOTIATION_DIR",
        default_value = "data/negotiation"
    )]
    pub data_dir: PathBuf,
    /// MiB held back in the event log's directory (the file `reserve`) so that the log can
    /// still reopen itself when the disk fills; appends are refused while less than half of it
    /// is free beside it. 0: none.
    #[arg(long, env = "TRADEPACT_LOG_RESERVE_MIB", default_value_t = RESERVE_MIB)]
    pub log_reserve_mib: u64,
    /// URL of the data service, for impact estimates.
    #[arg(long, env = "TRADEPACT_DATA_SERVICE_URL", default_value = DEFAULT_DATA_SERVICE)]
    pub data_service: String,
    /// Deadline of each call to the data service, in milliseconds.
    #[arg(
        long,
        env = "TRADEPACT_DATA_SERVICE_TIMEOUT_MS",
        default_value_t = 2000
    )]
    pub data_service_timeout_ms: u64,
    #[command(flatten)]
    pub log: tradepact_rpc::LogArgs,
    #[command(flatten)]
    pub metrics: tradepact_rpc::MetricsArgs,
    /// PEM CA certificate of the data service's TLS certificate (use an https:// URL).
    #[arg(long, env = "TRADEPACT_DATA_SERVICE_CA")]
    pub data_service_ca: Option<PathBuf>,
    /// PEM client certificate for mutual TLS with the data service.
    #[arg(
        long,
        env = "TRADEPACT_DATA_SERVICE_CERT",
        requires = "data_service_key"
    )]
    pub data_service_cert: Option<PathBuf>,
    /// PEM key of --data-service-cert.
    #[arg(
        long,
        env = "TRADEPACT_DATA_SERVICE_KEY",
        requires = "data_service_cert"
    )]
    pub data_service_key: Option<PathBuf>,
    /// Bearer token for the data service (needs the data:read scope).
    #[arg(long, env = "TRADEPACT_DATA_SERVICE_TOKEN", hide_env_values = true)]
    pub data_service_token: Option<String>,
    #[command(flatten)]
    pub limits: tradepact_rpc::LimitArgs,
    #[command(flatten)]
    pub heavy: NegotiationLimits,
    #[command(flatten)]
    pub security: tradepact_rpc::SecurityArgs,
    #[command(flatten)]
    pub nats: tradepact_rpc::nats::NatsArgs,
}

/// Where the negotiations are recorded: the event log file, or a JetStream stream (with the
/// messages to follow).
pub struct Log {
    store: Arc<dyn EventStore>,
    followed: Option<tokio::sync::mpsc::Receiver<app::jetstream::Followed>>,
    /// The log file, which may refuse writes after an I/O error until one succeeds.
    writes: Option<Arc<log::EventLog>>,
}

/// MiB of the event log's reserve file by default.
pub const RESERVE_MIB: u64 = 16;

/// The event log file as [`tradepact_rpc::writable`] sees it.
struct LogWrites(Arc<log::EventLog>);

impl tradepact_rpc::writable::Writable for LogWrites {
    fn failing(&self) -> bool {
        self.0.failing()
    }

    fn probe(&self) -> Result<(), String> {
        self.0.probe().map_err(|e| e.to_string())
    }
}

/// The gRPC health name that says whether the event log takes writes (`NOT_SERVING` while it
/// refuses them: a full disk; reads of what is in memory go on).
pub const WRITES_HEALTH: &str = "tradepact.negotiation.v1.NegotiationService.writes";

/// 1 while the event log refuses writes after an I/O error or on a full disk, else 0.
const WRITES_FAILING: &str = "tradepact_event_log_writes_failing";

impl Log {
    /// The event log file in `dir`, keeping a reserve of `reserve_mib` MiB there (see
    /// [`log::EventLog::open_with`]).
    pub fn local(dir: &Path, reserve_mib: u64) -> anyhow::Result<Log> {
        let log = open_log(dir, reserve_mib)?;
        Ok(Log {
            store: log.clone(),
            followed: None,
            writes: Some(log),
        })
    }

    /// The JetStream event log of a cluster, followed from now on.
    pub async fn jetstream(config: &tradepact_rpc::nats::NatsConfig) -> anyhow::Result<Log> {
        let log = Arc::new(app::jetstream::JetStreamLog::open(config).await?);
        let followed = Some(log.follow().await?);
        Ok(Log {
            store: log,
            followed,
            writes: None,
        })
    }
}

/// Bounds on heavy computations (frontiers, ZOPA counts, simulations: see [`heavy`]) and on
/// the negotiations kept in memory.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct NegotiationLimits {
    /// Heavy computations at once (0: the number of cores); more wait 0.5 s, then get
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "TRADEPACT_MAX_HEAVY_CALLS", default_value_t = 0)]
    pub max_heavy_calls: usize,
    /// Longest a heavy computation may run, in seconds; past it DEADLINE_EXCEEDED.
    #[arg(long, env = "TRADEPACT_HEAVY_CALL_TIMEOUT_SECS", default_value_t = 30)]
    pub heavy_call_timeout_secs: u64,
    /// MiB of negotiations kept in memory, counted as the heap bytes each holds (measured by
    /// the counting allocator; its kept analysis included); the least recently used are
    /// evicted past it and read again from the log when needed. Every negotiation's summary
    /// stays in memory besides (under 1 kB each); the event log keeps 16 bytes an event.
    #[arg(
        long = "negotiation-memory-mib",
        env = "TRADEPACT_NEGOTIATION_MEMORY_MIB",
        default_value_t = 256
    )]
    pub memory_mib: usize,
    /// Seats (`TakeSeat`) one token may hold at once (with --tokens-file); past it
    /// RESOURCE_EXHAUSTED. All tokens together hold at most 64.
    #[arg(long, env = "TRADEPACT_MAX_SEATS_PER_TOKEN", default_value_t = app::seat::DEFAULT_SEATS_PER_TOKEN)]
    pub max_seats_per_token: usize,
}

impl Default for NegotiationLimits {
    fn default() -> Self {
        NegotiationLimits {
            max_heavy_calls: 0,
            heavy_call_timeout_secs: 30,
            memory_mib: 256,
            max_seats_per_token: app::seat::DEFAULT_SEATS_PER_TOKEN,
        }
    }
}

impl NegotiationLimits {
    fn runner(&self) -> (heavy::Heavy, heavy::HeavyShutdown) {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let max = if self.max_heavy_calls == 0 {
            cores
        } else {
            self.max_heavy_calls
        };
        heavy::Heavy::new(
            max,
            Duration::from_secs(self.heavy_call_timeout_secs.max(1)),
        )
    }
}

/// How this service reaches the data service.
#[derive(Clone, Debug)]
pub struct DataServiceConfig {
    /// URL (`http://` or, with TLS, `https://`).
    pub url: String,
    /// Deadline of each call.
    pub timeout: Duration,
    /// TLS, when the data service serves it.
    pub tls: Option<tradepact_client::TlsFiles>,
    /// Bearer token, when the data service requires one.
    pub token: Option<String>,
}

impl DataServiceConfig {
    /// Plaintext, no token, 2 s deadline.
    pub fn plain(url: &str) -> DataServiceConfig {
        DataServiceConfig {
            url: url.to_owned(),
            timeout: Duration::from_secs(2),
            tls: None,
            token: None,
        }
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

impl Config {
    fn data_service_config(&self) -> anyhow::Result<DataServiceConfig> {
        let tls = match &self.data_service_ca {
            Some(ca) => Some(tradepact_client::TlsFiles {
                ca: read(ca)?,
                identity: match (&self.data_service_cert, &self.data_service_key) {
                    (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
                    _ => None,
                },
                domain: None,
            }),
            None => None,
        };
        Ok(DataServiceConfig {
            url: self.data_service.clone(),
            timeout: Duration::from_millis(self.data_service_timeout_ms),
            tls,
            token: self.data_service_token.clone(),
        })
    }
}

/// Opens the event log in `dir`, with an error that names the directory.
pub fn open_log(dir: &Path, reserve_mib: u64) -> anyhow::Result<Arc<log::EventLog>> {
    let open = |dir: &Path| log::EventLog::open_with(dir, reserve_mib * 1024 * 1024);
    let log = tradepact_rpc::server::open_dir(dir, "the event log", "tradepact-negotiation", open)?;
    Ok(Arc::new(log))
}

/// The service over `log`: its handlers, the application behind them, and what closes its
/// watches and heavy computations at shutdown (what [`serve`] serves, and what in-process
/// tests call).
pub fn service(
    log: Log,
    data_service: DataServiceConfig,
    heavy: NegotiationLimits,
    cache: app::cache::AnalysisCache,
) -> anyhow::Result<(NegotiationSvc, Arc<app::Negotiations>, app::Closer)> {
    // Lazy: the service starts without the data service and reconnects when it returns.
    let channel =
        tradepact_client::lazy_channel_with(&data_service.url, data_service.tls.as_ref())?;
    let data = data_source::DataSource {
        client: tradepact_client::data::client(channel),
        timeout: data_service.timeout,
        token: data_service.token,
    };
    let (app, closer) = app::Negotiations::load(
        log.store,
        data,
        heavy.runner(),
        heavy.memory_mib.saturating_mul(1 << 20),
        cache,
        app::seat::Seats::new(heavy.max_seats_per_token),
        present::summary_of,
    )?;
    let app = Arc::new(app);
    if let Some(followed) = log.followed {
        tokio::spawn(app.clone().follow(followed));
    }
    Ok((NegotiationSvc::new(app.clone()), app, closer))
}

/// Serves the negotiations of `log` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    log: Log,
    data_service: DataServiceConfig,
    limits: Limits,
    heavy: NegotiationLimits,
    security: tradepact_rpc::Security,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let cache = app::cache::AnalysisCache::default();
    let store = log.store.clone();
    let (writable, writes_health) = tokio::sync::watch::channel(true);
    let recovering = log.writes.clone().map(|writes| {
        let writes: Arc<dyn tradepact_rpc::writable::Writable> = Arc::new(LogWrites(writes));
        tokio::spawn(tradepact_rpc::writable::keep_writable(
            writes,
            writable,
            WRITES_FAILING,
        ))
    });
    let names = match recovering {
        Some(_) => vec![(WRITES_HEALTH.to_owned(), writes_health)],
        None => Vec::new(),
    };
    // Replaying the log may read a cluster: off the async workers.
    let (service, _, watchers) =
        tokio::task::block_in_place(|| service(log, data_service, heavy, cache))?;
    let server = NegotiationServiceServer::new(service)
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    let shutdown = async move {
        shutdown.await;
        watchers.close();
    };
    let served = tradepact_rpc::serve_with_health(
        listener, server, SCOPES, limits, security, shutdown, names,
    )
    .await;
    if let Some(recovering) = recovering {
        recovering.abort();
    }
    let flushed = tokio::task::spawn_blocking(move || store.flush()).await?;
    flushed.map_err(|e| anyhow::anyhow!("final flush failed: {e}"))?;
    served
}

/// Runs the service as configured until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let security = tradepact_rpc::Security::load(&config.security)?;
    tradepact_rpc::metrics::start(&config.metrics).await?;
    let data_service = config.data_service_config()?;
    let log = match config.nats.config() {
        Some(nats) => {
            let log = Log::jetstream(&nats).await?;
            tracing::info!(nats = %nats.url, replicas = nats.replicas, data_service = %config.data_service, "event log open in JetStream");
            log
        }
        None => {
            let log = Log::local(&config.data_dir, config.log_reserve_mib)?;
            tracing::info!(data_dir = %config.data_dir.display(), data_service = %config.data_service, "event log open");
            log
        }
    };
    let listener = tradepact_rpc::server::bind(&config.listen).await?;
    serve(
        listener,
        log,
        data_service,
        Limits::from(&config.limits),
        config.heavy,
        security,
        tradepact_rpc::server::shutdown_signal(),
    )
    .await
}

#[cfg(test)]
mod handler_tests;

#[cfg(test)]
mod tests {
    use tradepact_proto::negotiation_v1::negotiation_service_server::SERVICE_NAME;

    #[test]
    fn every_rpc_has_a_scope() {
        tradepact_rpc::auth::check_policy(SERVICE_NAME, super::SCOPES).unwrap();
    }
}

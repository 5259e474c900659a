//! One server builder for every tradepact service.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_stream::StreamExt;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::server::{Connected, TcpIncoming};
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::telemetry::rpc_trace_layer;

/// TLS and authentication of a server.
#[derive(Clone, Default)]
pub struct Security {
    /// TLS identity (and client CA for mutual TLS); `None`: plaintext.
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// Known bearer tokens; `None`: authentication off.
    pub tokens: Option<std::sync::Arc<crate::auth::TokenStore>>,
    /// Origins whose web pages may call the server (gRPC-Web with CORS); empty: CORS off
    /// (a browser page from another origin cannot read any answer).
    pub cors_origins: Vec<http::HeaderValue>,
}

/// Security flags shared by every server binary.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct SecurityArgs {
    /// PEM certificate chain: serve TLS only (with --tls-key).
    #[arg(long, env = "TRADEPACT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "TRADEPACT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// PEM CA certificate: require clients to present a certificate it signed (mutual TLS).
    #[arg(long, env = "TRADEPACT_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<std::path::PathBuf>,
    /// Tokens file (SHA-256 of each token, a name and its scopes per line); without one,
    /// authentication is off.
    #[arg(long, env = "TRADEPACT_TOKENS_FILE")]
    pub tokens_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub cors: CorsArgs,
}

/// The browser flag shared by every server binary (and `tradepact up`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct CorsArgs {
    /// An origin (scheme://host[:port]) whose pages may call the server with gRPC-Web;
    /// repeat the flag, or separate origins with commas in the variable. Without it, CORS is
    /// off. Preflight (OPTIONS) requests from these origins are answered without a token.
    #[arg(
        long = "cors-origin",
        env = "TRADEPACT_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub origins: Vec<String>,
}

impl CorsArgs {
    /// The origins as header values; an origin that is not `scheme://host[:port]` is refused.
    pub fn header_values(&self) -> anyhow::Result<Vec<http::HeaderValue>> {
        self.origins
            .iter()
            .map(|origin| {
                let uri: http::Uri = origin.parse().map_err(|e| {
                    anyhow::anyhow!("--cors-origin {origin:?} is not an origin: {e}")
                })?;
                let well_formed = matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some()
                    && uri.path_and_query().is_none_or(|p| p.as_str() == "/")
                    && !origin.ends_with('/');
                anyhow::ensure!(
                    well_formed,
                    "--cors-origin {origin:?} is not an origin: give scheme://host[:port], with no path (e.g. https://analysis.example.org)"
                );
                Ok(http::HeaderValue::from_str(origin)?)
            })
            .collect()
    }
}

fn read(path: &std::path::Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("cannot read the {what} {}: {e}", path.display()))
}

impl Security {
    /// Loads certificates and tokens named by `args`.
    pub fn load(args: &SecurityArgs) -> anyhow::Result<Security> {
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let identity = tonic::transport::Identity::from_pem(
                    read(cert, "TLS certificate")?,
                    read(key, "TLS key")?,
                );
                let mut config = tonic::transport::ServerTlsConfig::new().identity(identity);
                if let Some(ca) = &args.tls_client_ca {
                    config = config.client_ca_root(tonic::transport::Certificate::from_pem(read(
                        ca,
                        "client CA certificate",
                    )?));
                }
                Some(config)
            }
            _ => None,
        };
        let tokens = match &args.tokens_file {
            Some(path) => Some(std::sync::Arc::new(crate::auth::TokenStore::load(path)?)),
            None => None,
        };
        Ok(Security {
            tls,
            tokens,
            cors_origins: args.cors.header_values()?,
        })
    }
}

/// Limits applied to every service of a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message a server accepts or sends, in bytes.
    pub max_message_bytes: usize,
    /// Concurrent calls on one connection; more wait (no unbounded queue: HTTP/2 flow control).
    pub concurrency_per_connection: usize,
    /// Upper bound on any unary call; the client's `grpc-timeout` applies when shorter.
    /// `None`: only the client's deadline.
    pub request_timeout: Option<Duration>,
    /// How long a shutdown waits for in-flight calls (and unresponsive peers) before it
    /// closes their connections.
    pub shutdown_grace: Duration,
    /// Calls handled at once across all connections; more are refused at once with
    /// `RESOURCE_EXHAUSTED` (load shedding) instead of queueing. A call counts from its first
    /// message until it has answered (a streaming call: until its response starts).
    pub max_concurrent_calls: usize,
    /// Calls one token may have handled at once (with authentication on).
    pub max_calls_per_token: usize,
    /// How long a request's first message may take to arrive (streams included).
    pub first_message_timeout: Duration,
    /// Connections open at once; at the limit a new one closes the longest idle (see
    /// [`crate::conn`]), and is itself refused only when all have a call in progress.
    pub max_connections: usize,
    /// Connections open at once from one IP address; `None`: the default for the address the
    /// server binds ([`DEFAULT_MAX_CONNECTIONS_PER_ADDRESS`] off loopback, no limit on
    /// loopback); `Some(0)`: no limit.
    pub max_connections_per_address: Option<usize>,
    /// A connection with no call in progress for this long is closed.
    pub idle_timeout: Duration,
    /// A new connection that has made no call for this long is closed.
    pub new_connection_idle: Duration,
}

/// Connections from one address when the server binds a non-loopback address and
/// `--max-connections-per-address` is not given.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;

impl Limits {
    /// The connection limits on a listener bound to `addr`.
    pub fn connections(&self, addr: std::net::SocketAddr) -> crate::conn::ConnLimits {
        let max_per_address = match self.max_connections_per_address {
            Some(0) => None,
            Some(n) => Some(n),
            None if addr.ip().is_loopback() => None,
            None => Some(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS),
        };
        crate::conn::ConnLimits {
            max_connections: self.max_connections,
            max_per_address,
            idle: self.idle_timeout,
            first_call: self.new_connection_idle,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 16 * 1024 * 1024,
            concurrency_per_connection: 256,
            request_timeout: Some(Duration::from_secs(30)),
            shutdown_grace: Duration::from_secs(10),
            max_concurrent_calls: 1024,
            max_calls_per_token: 256,
            first_message_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_address: None,
            idle_timeout: Duration::from_secs(300),
            new_connection_idle: Duration::from_secs(10),
        }
    }
}

/// Limit flags shared by every binary.
#[derive(Clone, Debug, clap::Args)]
pub struct LimitArgs {
    /// Largest request or response message, in bytes.
    #[arg(long, env = "TRADEPACT_MAX_MESSAGE_BYTES", default_value_t = Limits::default().max_message_bytes)]
    pub max_message_bytes: usize,
    /// Concurrent calls per connection.
    #[arg(long, env = "TRADEPACT_CONCURRENCY_PER_CONNECTION", default_value_t = Limits::default().concurrency_per_connection)]
    pub concurrency_per_connection: usize,
    /// Server-side deadline for each call, in seconds (0: only the client's deadline).
    /// Server-streaming calls are bounded only until their response starts; calls that
    /// stream their requests (StreamWritePoints) are not bounded by it.
    #[arg(long, env = "TRADEPACT_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Seconds a shutdown waits for in-flight calls before closing their connections.
    #[arg(long, env = "TRADEPACT_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Calls handled at once across all connections; more get RESOURCE_EXHAUSTED at once.
    #[arg(long, env = "TRADEPACT_MAX_CONCURRENT_CALLS", default_value_t = Limits::default().max_concurrent_calls)]
    pub max_concurrent_calls: usize,
    /// Calls one token may have handled at once (with --tokens-file); more get
    /// RESOURCE_EXHAUSTED at once.
    #[arg(long, env = "TRADEPACT_MAX_CALLS_PER_TOKEN", default_value_t = Limits::default().max_calls_per_token)]
    pub max_calls_per_token: usize,
    /// Seconds a request's first message may take to arrive; then DEADLINE_EXCEEDED.
    #[arg(
        long,
        env = "TRADEPACT_FIRST_MESSAGE_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub first_message_timeout_secs: u64,
    /// Connections open at once. At the limit a new connection closes the one idle longest
    /// (first those that have made no call yet); it is refused only when every connection has
    /// a call in progress.
    #[arg(long, env = "TRADEPACT_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Connections open at once from one IP address (past it, the address's longest-idle
    /// connection is closed, or the new one refused); 0: no limit. Default: 256 when the
    /// server listens on a non-loopback address, no limit on loopback.
    #[arg(long, env = "TRADEPACT_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
    /// Seconds a connection may stay open with no call in progress.
    #[arg(long, env = "TRADEPACT_IDLE_TIMEOUT_SECS", default_value_t = 300)]
    pub idle_timeout_secs: u64,
    /// Seconds a new connection may stay open without making a call (an HTTP/1.1 request
    /// whose headers never end and a TLS handshake not finished count as no call).
    #[arg(long, env = "TRADEPACT_NEW_CONNECTION_IDLE_SECS", default_value_t = 10)]
    pub new_connection_idle_secs: u64,
}

impl From<&LimitArgs> for Limits {
    fn from(a: &LimitArgs) -> Self {
        Limits {
            max_message_bytes: a.max_message_bytes,
            concurrency_per_connection: a.concurrency_per_connection.max(1),
            request_timeout: (a.request_timeout_secs > 0)
                .then(|| Duration::from_secs(a.request_timeout_secs)),
            shutdown_grace: Duration::from_secs(a.shutdown_grace_secs),
            max_concurrent_calls: a.max_concurrent_calls.max(1),
            max_calls_per_token: a.max_calls_per_token.max(1),
            first_message_timeout: Duration::from_secs(a.first_message_timeout_secs.max(1)),
            max_connections: a.max_connections.max(1),
            max_connections_per_address: a.max_connections_per_address,
            idle_timeout: Duration::from_secs(a.idle_timeout_secs.max(1)),
            new_connection_idle: Duration::from_secs(a.new_connection_idle_secs.max(1)),
        }
    }
}

fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tradepact_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// Serves `service` as [`serve_with_health`] does, with no health names of its own.
pub async fn serve<S>(
    listener: tokio::net::TcpListener,
    service: S,
    policy: crate::auth::Policy,
    limits: Limits,
    security: Security,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    serve_with_health(
        listener,
        service,
        policy,
        limits,
        security,
        shutdown,
        Vec::new(),
    )
    .await
}

/// Health names a service reports besides its own, each `SERVING` while its receiver says
/// `true` (e.g. `tradepact.data.v1.TradeDataService.writes`, whether writes can be made
/// durable).
pub type HealthNames = Vec<(String, tokio::sync::watch::Receiver<bool>)>;

/// Serves `service` on `listener` with health, reflection v1 and v1alpha, per-RPC tracing
/// and `limits`, until `shutdown` completes; then health turns `NOT_SERVING`, the listener
/// closes and in-flight calls finish. `policy` states the scopes each method of `service`
/// needs (checked on the headers when `security` has tokens).
///
/// Logs `listening on ADDR` once the listener accepts calls (the readiness line operators
/// and tests wait for).
pub async fn serve_with_health<S>(
    listener: tokio::net::TcpListener,
    service: S,
    policy: crate::auth::Policy,
    limits: Limits,
    security: Security,
    shutdown: impl Future<Output = ()> + Send + 'static,
    names: HealthNames,
) -> anyhow::Result<()>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    crate::auth::check_policy(S::NAME, policy)?;
    let addr = listener.local_addr()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<S>().await;
    let mut followed = Vec::new();
    for (name, mut serving) in names {
        let health = health.clone();
        followed.push((
            name.clone(),
            tokio::spawn(async move {
                loop {
                    let status = match *serving.borrow_and_update() {
                        true => ServingStatus::Serving,
                        false => ServingStatus::NotServing,
                    };
                    health.set_service_status(&name, status).await;
                    if serving.changed().await.is_err() {
                        return;
                    }
                }
            }),
        ));
    }

    let routes = Routes::new(health_service)
        .add_service(reflection_builder().build_v1()?)
        .add_service(reflection_builder().build_v1alpha()?)
        .add_service(service);

    let mut builder = Server::builder()
        .concurrency_limit_per_connection(limits.concurrency_per_connection)
        .tcp_nodelay(true)
        // Pings find dead peers; a live one that answers is closed when idle (crate::conn).
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT));
    if let Some(tls) = security.tls.clone() {
        builder = builder.tls_config(tls.timeout(TLS_HANDSHAKE_TIMEOUT))?;
    }
    if !addr.ip().is_loopback() && (security.tls.is_none() || security.tokens.is_none()) {
        tracing::warn!(
            tls = security.tls.is_some(),
            authentication = security.tokens.is_some(),
            "listening on a non-loopback address without TLS and bearer-token authentication: anyone who can reach {addr} can call every RPC"
        );
    }
    let connections = crate::conn::Registry::new(limits.connections(addr));
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .filter_map(move |conn| match conn {
            Err(e) => Some(Err(e)),
            Ok(tcp) => {
                let info = tcp.connect_info();
                match connections.accept(UnvectoredTcp(tcp), info) {
                    Ok(conn) => Some(Ok(conn)),
                    Err(refusal) => {
                        refused_connection(refusal);
                        None
                    }
                }
            }
        });
    let (fired, fired_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new calls, finishing the ones in flight");
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health.set_not_serving::<S>().await;
        for (name, following) in followed {
            following.abort();
            health
                .set_service_status(&name, ServingStatus::NotServing)
                .await;
        }
        let _ = fired.send(());
    };
    tracing::info!(
        service = S::NAME,
        tls = security.tls.is_some(),
        authentication = security.tokens.is_some(),
        "listening on {addr}"
    );
    let server = builder
        // gRPC-Web (HTTP/1.1 or HTTP/2) beside gRPC; CORS outermost, so that a preflight is
        // answered before authentication (it carries no token) and a refused origin gets no
        // CORS headers. The per-call layers below see plain gRPC either way.
        .accept_http1(true)
        .layer(tower::util::option_layer(cors_layer(
            &security.cors_origins,
        )))
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(rpc_trace_layer())
        .layer(crate::conn::TrackCallsLayer)
        // Authentication and the method's scope first: a caller without them takes no slot.
        .layer(crate::auth::AuthLayer::new(
            security.tokens.clone(),
            S::NAME,
            policy,
        ))
        .layer(crate::shed::ShedLayer::new(crate::shed::Admission {
            max_calls: limits.max_concurrent_calls,
            max_calls_per_token: limits.max_calls_per_token,
            first_message: limits.first_message_timeout,
        }))
        // tonic answers a request that fails to decode with INTERNAL; it is the caller's.
        .layer(tower::util::MapResponseLayer::new(
            crate::status::map_decode_error,
        ))
        .layer(crate::deadline::DeadlineLayer::new(
            limits.request_timeout,
            S::NAME,
        ))
        // Only on plain TCP: rustls does vectored writes, so h2 would chain the cut frames.
        .layer(tower::util::option_layer(security.tls.is_none().then(
            || tower::util::MapResponseLayer::new(crate::frames::SmallFrames::wrap),
        )))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, signal);
    let grace_over = async move {
        match fired_rx.await {
            Ok(()) => tokio::time::sleep(limits.shutdown_grace).await,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        served = server => served?,
        () = grace_over => tracing::warn!(
            grace = ?limits.shutdown_grace,
            "calls still in flight after the shutdown grace period; closing their connections"
        ),
    }
    tracing::info!("server stopped");
    Ok(())
}

/// The CORS policy of gRPC-Web calls from `origins`; `None` (CORS off) when there are none.
fn cors_layer(origins: &[http::HeaderValue]) -> Option<tower_http::cors::CorsLayer> {
    use http::header::{HeaderName, AUTHORIZATION, CONTENT_TYPE};
    if origins.is_empty() {
        return None;
    }
    let names = |names: &[&'static str]| -> Vec<HeaderName> {
        names.iter().map(|n| HeaderName::from_static(n)).collect()
    };
    let mut allowed = names(&[
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
        "grpc-accept-encoding",
        "traceparent",
        "tracestate",
    ]);
    allowed.extend([CONTENT_TYPE, AUTHORIZATION]);
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(tower_http::cors::AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([http::Method::POST])
            .allow_headers(allowed)
            .expose_headers(names(&[
                "grpc-status",
                "grpc-message",
                "grpc-status-details-bin",
                "grpc-encoding",
            ]))
            .max_age(Duration::from_secs(24 * 3600)),
    )
}

/// Counts and logs (at most once a second) a connection refused as it arrived.
fn refused_connection(refusal: crate::conn::Refusal) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static TOTAL: AtomicU64 = AtomicU64::new(0);
    static LOGGED: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    let total = TOTAL.fetch_add(1, Ordering::Relaxed) + 1;
    metrics::counter!(crate::metrics::CONNECTIONS_REFUSED).increment(1);
    let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    if logged.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
        return;
    }
    *logged = Some(std::time::Instant::now());
    let why = match refusal {
        crate::conn::Refusal::AllBusy => {
            "every open connection has a call in progress (--max-connections)"
        }
        crate::conn::Refusal::AllBusyFromAddress => {
            "every connection from its address has a call in progress (--max-connections-per-address)"
        }
        crate::conn::Refusal::ClosingBacklog => {
            "twice --max-connections are open, those being closed included (--max-connections)"
        }
    };
    tracing::warn!(refused_total = total, "closing a new connection: {why}");
}

/// Interval of the HTTP/2 pings the server sends.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// How long a ping may go unanswered before the connection is closed.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP connection that tells HTTP/2 it does not do vectored writes. h2 then copies DATA
/// payloads under 1 KiB into its write buffer (with vectored writes it chains any payload of
/// 256 bytes or more, and must write it out before it can buffer the next frame), so a small
/// unary response (headers, message, trailers) leaves in one `write` instead of two; larger
/// messages are cut to fit by [`crate::frames::SmallFrames`]. Seen with strace on a 20-value
/// GetSeries (690 bytes): 2 → 1 writes per response.
struct UnvectoredTcp(tokio::net::TcpStream);

impl AsyncRead for UnvectoredTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for UnvectoredTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Connected for UnvectoredTcp {
    type ConnectInfo = <tokio::net::TcpStream as Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.connect_info()
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
///
/// The handlers are installed when this is called, not when the future is first polled: a
/// signal that arrives after the call (say, right after the readiness line) is not missed.
/// Must be called inside a Tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let listen = |kind: SignalKind, name: &'static str| {
            let installed = signal(kind);
            async move {
                match installed {
                    Ok(mut s) => {
                        s.recv().await;
                        tracing::info!("received {name}");
                    }
                    Err(e) => {
                        tracing::error!("cannot listen for {name}: {e}");
                        std::future::pending::<()>().await;
                    }
                }
            }
        };
        let interrupt = listen(SignalKind::interrupt(), "SIGINT");
        let terminate = listen(SignalKind::terminate(), "SIGTERM");
        async move {
            tokio::select! {
                () = interrupt => {}
                () = terminate => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
        tracing::info!("received Ctrl-C");
    }
}

/// Opens `what` (e.g. "the store") in `dir` with `open`, creating the directory first; the
/// error names the directory, and says when another `binary` may hold its lock.
pub fn open_dir<T, E: std::fmt::Display>(
    dir: &std::path::Path,
    what: &str,
    binary: &str,
    open: impl FnOnce(&std::path::Path) -> Result<T, E>,
) -> anyhow::Result<T> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", dir.display()))?;
    open(dir).map_err(|e| {
        let text = e.to_string();
        let hint = if text.contains("lock") {
            format!(" (is another {binary} using it?)")
        } else {
            String::new()
        };
        anyhow::anyhow!("cannot open {what} in {}{hint}: {text}", dir.display())
    })
}

/// Binds `addr`, reporting which address failed.
pub async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_scheme_host_and_port_only() {
        let parse = |origins: &[&str]| {
            CorsArgs {
                origins: origins.iter().map(|o| o.to_string()).collect(),
            }
            .header_values()
        };
        let ok = parse(&["http://localhost:5173", "https://analysis.example.org"]).unwrap();
        assert_eq!(ok[1], "https://analysis.example.org");
        for bad in [
            "localhost:5173",
            "*",
            "http://a.example.org/",
            "http://a.example.org/app",
            "ftp://a.example.org",
            "",
        ] {
            let e = parse(&[bad]).unwrap_err().to_string();
            assert!(e.contains("is not an origin"), "{bad:?}: {e}");
        }
        assert!(cors_layer(&[]).is_none(), "no origin: CORS off");
    }

    // Regression: `tradepact up` once missed a SIGTERM that arrived after its readiness line
    // because a server's handler was only installed when its future was first polled. Here
    // the signal arrives before the first poll; without the handler, it would kill the test.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_signal_after_the_call_and_before_the_first_poll_is_not_missed() {
        let shutdown = shutdown_signal();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(10), shutdown)
            .await
            .expect("the SIGTERM sent before the first poll completes the shutdown");
    }
}

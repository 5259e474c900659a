//! Prometheus metrics on their own address (`--metrics-listen`, off by default): `GET /metrics`
//! answers the text exposition format, anything else 404.
//!
//! The figures are recorded with the `metrics` crate and rendered by
//! `metrics-exporter-prometheus`. The per-RPC figures come from the per-RPC telemetry
//! ([`crate::telemetry`]): the `rpc finished` / `rpc failed` line of each call is also counted
//! (`tradepact_rpc_requests_total{method, status}`) and timed
//! (`tradepact_rpc_latency_seconds{method}`), so the log and the metrics cannot disagree. The
//! server kit adds calls in flight, calls shed, watchers open, dropped and their lag; the services their
//! own (points written and the store's size on disk; calls to the data service).
//!
//! The endpoint is served with hyper's HTTP/1.1 server (the exporter's own listener cannot
//! report the port it bound, and tests bind port 0): one connection at a time is cheap, each is
//! bounded to 10 s, and there are at most 16 at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::Semaphore;

/// Requests answered, by method and gRPC status.
pub const REQUESTS: &str = "tradepact_rpc_requests_total";
/// Latency of answered requests (to the last message of a stream), by method.
pub const LATENCY: &str = "tradepact_rpc_latency_seconds";

/// Calls admitted and not yet answered (streams: until their response starts).
pub const IN_FLIGHT: &str = "tradepact_rpc_in_flight";
/// Calls refused at admission (`RESOURCE_EXHAUSTED`: the server's or a token's limit).
pub const SHED: &str = "tradepact_rpc_shed_total";
/// Connections open (those being closed included).
pub const CONNECTIONS_OPEN: &str = "tradepact_connections_open";
/// Connections the server closed, by `reason` (see [`crate::conn::CloseReason::label`]).
pub const CONNECTIONS_CLOSED: &str = "tradepact_connections_closed_total";
/// New connections refused because every open one had a call in progress.
pub const CONNECTIONS_REFUSED: &str = "tradepact_connections_refused_total";
/// Watch streams open.
pub const WATCHERS: &str = "tradepact_watchers";
/// Watchers dropped for falling behind.
pub const WATCHERS_DROPPED: &str = "tradepact_watchers_dropped_total";
/// How far behind a watcher is, in messages (queued for the client and updates not yet
/// read), observed each time it is sent live updates; a watcher is dropped past
/// [`crate::outbox::MAX_MESSAGES`].
pub const WATCHER_LAG: &str = "tradepact_watcher_lag_messages";

/// Whether the metrics endpoint runs (for figures that cost something to gather).
pub fn enabled() -> bool {
    crate::telemetry::METRICS_ON.load(std::sync::atomic::Ordering::Relaxed)
}

/// Connections the metrics endpoint serves at once.
const CONNECTIONS: usize = 16;
/// How long one metrics connection may last.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The metrics flag shared by the servers.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct MetricsArgs {
    /// Address of the Prometheus endpoint (`GET /metrics`); port 0 picks one, logged as
    /// "metrics on ADDR". Off when unset.
    #[arg(long, env = "TRADEPACT_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
}

/// Installs the process's metrics recorder and serves it on `--metrics-listen`, when set.
/// Returns the address bound.
pub async fn start(args: &MetricsArgs) -> anyhow::Result<Option<SocketAddr>> {
    let Some(listen) = &args.metrics_listen else {
        return Ok(None);
    };
    let handle = install()?;
    crate::telemetry::METRICS_ON.store(true, std::sync::atomic::Ordering::Relaxed);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    tracing::info!("metrics on {addr}");
    tokio::spawn(serve(listener, handle));
    Ok(Some(addr))
}

/// The process's recorder (installed once; a second call gives the same handle).
fn install() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(LATENCY.to_owned()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ],
        )?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(WATCHER_LAG.to_owned()),
            &[
                0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ],
        )?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| anyhow::anyhow!("a metrics recorder is already installed: {e}"))?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

async fn serve(listener: tokio::net::TcpListener, handle: PrometheusHandle) {
    let slots = Arc::new(Semaphore::new(CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let handle = handle.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&req, &handle)) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            drop(permit);
        });
    }
}

fn answer<B>(req: &hyper::Request<B>, handle: &PrometheusHandle) -> hyper::Response<Full<Bytes>> {
    let response = hyper::Response::builder();
    match (req.method(), req.uri().path()) {
        (&hyper::Method::GET, "/metrics") => response
            .header("content-type", "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(handle.render()))),
        _ => response
            .status(hyper::StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"try GET /metrics\n"))),
    }
    .unwrap_or_default()
}

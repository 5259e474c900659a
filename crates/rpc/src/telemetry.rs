//! Logging and per-RPC tracing.

use std::time::Duration;

use http::{HeaderMap, Request, Response};
use tower_http::classify::{GrpcCode, GrpcErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::Span;
use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging flags shared by every binary.
#[derive(Clone, Debug, clap::Args)]
pub struct LogArgs {
    /// Log format on stderr; the level filter comes from RUST_LOG (default "info").
    #[arg(long, env = "TRADEPACT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Installs the global subscriber: stderr, `RUST_LOG` filter (default `info`).
/// Calling it twice is harmless (the second call does nothing).
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn grpc_status(headers: Option<&HeaderMap>) -> Option<i32> {
    headers?.get("grpc-status")?.to_str().ok()?.parse().ok()
}

fn log_finished(code: i32, latency: Duration) {
    let latency_ms = latency.as_secs_f64() * 1e3;
    let status = format!("{:?}", tonic::Code::from_i32(code));
    if code == 0 {
        tracing::info!(grpc.status = %status, latency_ms, "rpc finished");
    } else {
        tracing::warn!(grpc.status = %status, grpc.code = code, latency_ms, "rpc failed");
    }
}

/// Span per RPC named `rpc` with the method path; logs one line when the call ends, with
/// its gRPC status and latency (from the trailers, or the headers of a trailers-only error).
pub type RpcTraceLayer = TraceLayer<
    SharedClassifier<GrpcErrorsAsFailures>,
    fn(&Request<tonic::body::Body>) -> Span,
    (),
    fn(&Response<tonic::body::Body>, Duration, &Span),
    (),
    fn(Option<&HeaderMap>, Duration, &Span),
    (),
>;

/// The per-RPC tracing layer (see [`RpcTraceLayer`]).
pub fn rpc_trace_layer() -> RpcTraceLayer {
    TraceLayer::new_for_grpc()
        .make_span_with(make_span as fn(&Request<tonic::body::Body>) -> Span)
        .on_request(())
        .on_response(on_response as fn(&Response<tonic::body::Body>, Duration, &Span))
        .on_body_chunk(())
        .on_eos(on_eos as fn(Option<&HeaderMap>, Duration, &Span))
        .on_failure(())
}

/// The trace id of a W3C `traceparent` header (`00-TRACEID-SPANID-FLAGS`), so that the
/// lines of one request can be followed across services.
fn trace_id(req: &Request<tonic::body::Body>) -> &str {
    req.headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|tp| tp.split('-').nth(1))
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or("-")
}

fn make_span(req: &Request<tonic::body::Body>) -> Span {
    tracing::info_span!("rpc", method = %req.uri().path(), trace_id = %trace_id(req))
}

fn on_response(res: &Response<tonic::body::Body>, latency: Duration, _: &Span) {
    // A trailers-only response (most errors) carries grpc-status in its headers; otherwise
    // the status arrives with the trailers and on_eos logs it.
    if let Some(code) = grpc_status(Some(res.headers())) {
        log_finished(code, latency);
    }
}

fn on_eos(trailers: Option<&HeaderMap>, stream_duration: Duration, _: &Span) {
    // GrpcCode::Ok is 0; a missing status is an internal error on the wire.
    let code = grpc_status(trailers).unwrap_or(GrpcCode::Internal as i32);
    log_finished(code, stream_duration);
}

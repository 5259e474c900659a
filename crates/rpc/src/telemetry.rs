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

/// Installs the global subscriber: stderr, `RUST_LOG` filter (default `info`), and the
/// per-RPC metrics (counted from each call's last line whatever the filter, once
/// [`crate::metrics`] serves them). Calling it twice is harmless (the second call does nothing).
pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let lines = match format {
        LogFormat::Text => lines.with_filter(filter).boxed(),
        LogFormat::Json => lines.json().with_filter(filter).boxed(),
    };
    let rpc = tracing_subscriber::filter::Targets::new()
        .with_target(module_path!(), tracing::Level::INFO);
    let _ = tracing_subscriber::registry()
        .with(lines)
        .with(RpcMetrics.with_filter(rpc))
        .try_init();
}

/// Whether [`RpcMetrics`] records (set when the metrics endpoint starts).
pub(crate) static METRICS_ON: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Distinct method labels at most (a caller chooses the path of an unknown method; past this
/// they count as `other`, so that labels stay bounded).
const METHOD_LABELS: usize = 256;

/// Counts and times every call from its `rpc` span (the method) and its last line (status and
/// latency): see [`crate::metrics`].
struct RpcMetrics;

/// The method of an `rpc` span, kept in its extensions.
struct Method(String);

/// Reads the fields the metrics need from a span or an event.
#[derive(Default)]
struct Fields {
    method: Option<String>,
    status: Option<String>,
    latency_ms: Option<f64>,
}

impl tracing::field::Visit for Fields {
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if field.name() == "latency_ms" {
            self.latency_ms = Some(value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "method" => self.method = Some(format!("{value:?}")),
            "grpc.status" => self.status = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

fn method_label(method: &str) -> String {
    static SEEN: std::sync::Mutex<Option<std::collections::HashSet<String>>> =
        std::sync::Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let seen = seen.get_or_insert_with(Default::default);
    if seen.contains(method) {
        return method.to_owned();
    }
    if seen.len() < METHOD_LABELS {
        seen.insert(method.to_owned());
        return method.to_owned();
    }
    "other".to_owned()
}

impl<S> tracing_subscriber::Layer<S> for RpcMetrics
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if !METRICS_ON.load(std::sync::atomic::Ordering::Relaxed)
            || attrs.metadata().name() != "rpc"
        {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(span), Some(method)) = (ctx.span(id), fields.method) {
            span.extensions_mut().insert(Method(method));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if !METRICS_ON.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let (Some(status), Some(latency_ms)) = (fields.status, fields.latency_ms) else {
            return;
        };
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let Some(method) = span
            .extensions()
            .get::<Method>()
            .map(|m| method_label(&m.0))
        else {
            return;
        };
        metrics::counter!(crate::metrics::REQUESTS, "method" => method.clone(), "status" => status)
            .increment(1);
        metrics::histogram!(crate::metrics::LATENCY, "method" => method).record(latency_ms / 1e3);
    }
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

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

/// Logging and tracing flags shared by every binary.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct LogArgs {
    /// Log format on stderr; the level filter comes from RUST_LOG (default "info").
    #[arg(long, env = "TRADEPACT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// OpenTelemetry collector to export spans to over OTLP/gRPC, e.g. http://127.0.0.1:4317
    /// (one span per call, a child span per call to another service; parents taken from
    /// the caller's W3C `traceparent`). Off without it.
    #[arg(long, env = "TRADEPACT_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
}

/// What [`init_tracing`] started; dropping it flushes the spans not yet exported (up to 5 s).
#[must_use = "spans are flushed when this is dropped: keep it until the program ends"]
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown_with_timeout(Duration::from_secs(5)) {
                eprintln!("tradepact: spans not exported at exit: {e}");
            }
        }
    }
}

/// Installs the global subscriber: stderr, `RUST_LOG` filter (default `info`), the per-RPC
/// metrics (counted from each call's last line whatever the filter, once [`crate::metrics`]
/// serves them) and, with `--otlp-endpoint`, span export as `service` (the OpenTelemetry
/// service name). Calling it twice is harmless (the second call installs nothing).
pub fn init_tracing(args: &LogArgs, service: &'static str) -> anyhow::Result<Telemetry> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let lines = match args.log_format {
        LogFormat::Text => lines.with_filter(filter).boxed(),
        LogFormat::Json => lines.json().with_filter(filter).boxed(),
    };
    let rpc = tracing_subscriber::filter::Targets::new()
        .with_target(module_path!(), tracing::Level::INFO);
    let (provider, spans) = match &args.otlp_endpoint {
        Some(endpoint) => {
            let provider = otlp_provider(endpoint, service)?;
            let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "tradepact");
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
            (Some(provider), Some(layer))
        }
        None => (None, None),
    };
    let installed = tracing_subscriber::registry()
        .with(lines)
        .with(RpcMetrics.with_filter(rpc))
        .with(spans)
        .try_init()
        .is_ok();
    if installed && provider.is_some() {
        OTEL_ON.store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            endpoint = args.otlp_endpoint.as_deref().unwrap_or_default(),
            service,
            "exporting spans over OTLP"
        );
    }
    Ok(Telemetry {
        provider: provider.filter(|_| installed),
    })
}

#[cfg(feature = "otlp")]
fn otlp_provider(
    endpoint: &str,
    service: &'static str,
) -> anyhow::Result<opentelemetry_sdk::trace::SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| anyhow::anyhow!("--otlp-endpoint {endpoint}: {e}"))?;
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build())
}

#[cfg(not(feature = "otlp"))]
fn otlp_provider(
    endpoint: &str,
    _service: &'static str,
) -> anyhow::Result<opentelemetry_sdk::trace::SdkTracerProvider> {
    anyhow::bail!(
        "--otlp-endpoint {endpoint}: this binary was built without span export (cargo feature `otlp`)"
    )
}

/// Whether spans are exported (the OpenTelemetry layer is installed).
static OTEL_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A span for a call this process makes to another service (`method`: its gRPC path without
/// the leading slash), a child of the current one; see [`traceparent_of`].
pub fn client_span(method: &str) -> Span {
    tracing::info_span!("call", otel.name = method, otel.kind = "client")
}

/// The W3C `traceparent` to send with a call made in `span`: the span's own when spans are
/// exported (so the callee's span is its child), else `fallback` (the caller's, forwarded).
pub fn traceparent_of(span: &Span, fallback: &str) -> String {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !OTEL_ON.load(std::sync::atomic::Ordering::Relaxed) {
        return fallback.to_owned();
    }
    let cx = span.context();
    let span_ref = cx.span();
    let sc = span_ref.span_context();
    if !sc.is_valid() {
        return fallback.to_owned();
    }
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    )
}

/// A new W3C `traceparent` (sampled), with ids from OpenTelemetry's random id generator: for
/// a call that arrived without one.
pub fn new_traceparent() -> String {
    use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
    let ids = RandomIdGenerator::default();
    format!("00-{}-{}-01", ids.new_trace_id(), ids.new_span_id())
}

/// Whether [`RpcMetrics`] records (set when the metrics endpoint starts).
pub(crate) static METRICS_ON: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The label of a call's method: its path when it is a method of the descriptor sets the
/// servers serve (tradepact's, health's and reflection's), otherwise `unknown` — a caller
/// chooses the path it sends, so labels taken from arbitrary paths could fill the label space
/// and push real methods out of it.
pub const UNKNOWN_METHOD: &str = "unknown";

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
    if served_methods().contains(method) {
        method.to_owned()
    } else {
        UNKNOWN_METHOD.to_owned()
    }
}

/// Every method path (`/package.Service/Method`) of the descriptor sets the servers serve.
fn served_methods() -> &'static std::collections::HashSet<String> {
    static METHODS: std::sync::OnceLock<std::collections::HashSet<String>> =
        std::sync::OnceLock::new();
    METHODS.get_or_init(|| {
        use prost::Message;
        let mut methods = std::collections::HashSet::new();
        for encoded in [
            tradepact_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            let set = prost_types::FileDescriptorSet::decode(encoded)
                .expect("the descriptor sets built into this binary decode");
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let service_name = service.name.unwrap_or_default();
                    for method in service.method {
                        methods.insert(format!(
                            "/{package}.{service_name}/{}",
                            method.name.unwrap_or_default()
                        ));
                    }
                }
            }
        }
        methods
    })
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

fn log_finished(code: i32, latency: Duration, span: &Span) {
    if OTEL_ON.load(std::sync::atomic::Ordering::Relaxed) {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        span.set_attribute("rpc.grpc.status_code", i64::from(code));
        if code != 0 {
            span.set_status(opentelemetry::trace::Status::error(format!(
                "{:?}",
                tonic::Code::from_i32(code)
            )));
        }
    }
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
    let path = req.uri().path();
    if !OTEL_ON.load(std::sync::atomic::Ordering::Relaxed) {
        return tracing::info_span!("rpc", method = %path, trace_id = %trace_id(req));
    }
    // Exported: named by the method, a server span, its parent the caller's `traceparent`.
    use opentelemetry::propagation::TextMapPropagator;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let span = tracing::info_span!(
        "rpc",
        method = %path,
        trace_id = %trace_id(req),
        otel.name = path.trim_start_matches('/'),
        otel.kind = "server",
    );
    span.set_attribute("rpc.system", "grpc");
    let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract(&HeaderExtractor(req.headers()));
    let _ = span.set_parent(parent);
    span
}

/// The headers of a request, as OpenTelemetry's propagators read them.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

fn on_response(res: &Response<tonic::body::Body>, latency: Duration, span: &Span) {
    // A trailers-only response (most errors) carries grpc-status in its headers; otherwise
    // the status arrives with the trailers and on_eos logs it.
    if let Some(code) = grpc_status(Some(res.headers())) {
        log_finished(code, latency, span);
    }
}

fn on_eos(trailers: Option<&HeaderMap>, stream_duration: Duration, span: &Span) {
    // GrpcCode::Ok is 0; a missing status is an internal error on the wire.
    let code = grpc_status(trailers).unwrap_or(GrpcCode::Internal as i32);
    log_finished(code, stream_duration, span);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_served_methods_get_their_own_metric_label() {
        for served in [
            "/tradepact.data.v1.TradeDataService/GetSeries",
            "/tradepact.negotiation.v1.NegotiationService/CreateNegotiation",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert_eq!(method_label(served), served);
        }
        for unknown in [
            "/tradepact.data.v1.TradeDataService/NoSuchMethod",
            "/x.Y/Z",
            "/",
            "/tradepact.data.v1.TradeDataService/GetSeries/",
        ] {
            assert_eq!(method_label(unknown), UNKNOWN_METHOD, "{unknown}");
        }
    }
}

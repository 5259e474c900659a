//! What every tradepact gRPC server shares, so both services behave alike:
//!
//! - [`telemetry`]: `tracing` set-up (human or JSON, `RUST_LOG` filter) and one span per RPC
//!   with its method, gRPC status and latency;
//! - [`server`]: one builder that adds gRPC health, server reflection (v1 and v1alpha, so every
//!   grpcurl version works), limits and graceful shutdown on SIGINT/SIGTERM;
//! - [`status`]: the mapping of field violations to `INVALID_ARGUMENT` with `google.rpc.BadRequest`,
//!   bounded whatever the input, and of undecodable requests to `INVALID_ARGUMENT`;
//! - [`auth`]: bearer tokens, scopes per method checked on the headers, party scopes;
//! - [`shed`]: admission — the global and per-token call limits, taken when a request's first
//!   message arrives, and the first-message timeout;
//! - [`conn`]: the connection limit and the idle-connection timeout;
//! - [`deadline`]: the server's own bound on each call;
//! - [`outbox`]: watch queues bounded in messages and bytes; [`watch`]: a catch-up then live
//!   updates through one, a watcher that falls behind dropped with where to resume;
//! - [`frames`]: small unary responses in one write;
//! - [`metrics`]: Prometheus metrics on their own address (per-RPC counts and latencies);
//! - [`paging`]: page sizes and page tokens, checked against the query they belong to;
//! - [`status::of`]: the one mapping of the application layers' `Failure` to gRPC codes.

pub mod alloc;
pub mod auth;
pub mod conn;
pub mod deadline;
pub mod frames;
pub mod metrics;
pub mod nats;
pub mod outbox;
pub mod paging;
pub mod server;
pub mod shed;
pub mod status;
pub mod telemetry;
pub mod watch;
pub mod writable;

pub use server::{serve, serve_with_health, CorsArgs, LimitArgs, Limits, Security, SecurityArgs};

/// Whether `path` (an HTTP/2 `:path`) calls a tradepact service, as opposed to health or
/// reflection, which stay open and are not counted against the limits.
pub fn is_tradepact_call(path: &str) -> bool {
    path.starts_with("/tradepact.")
}
pub use metrics::MetricsArgs;
pub use telemetry::{init_tracing, LogArgs, LogFormat, Telemetry};

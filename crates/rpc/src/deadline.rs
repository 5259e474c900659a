//! The server's own bound on each call (`--request-timeout-secs`, 30 s by default).
//!
//! Calls whose requests are streams (`StreamWritePoints`) are not bounded by it: a long
//! ingest is not a slow call (they are bounded by the first-message timeout of
//! [`crate::shed`] and by HTTP/2 flow control).
//!
//! A call that has not answered within the bound is ended with `DEADLINE_EXCEEDED`, naming the
//! limit (tonic's built-in server timeout would answer `CANCELLED`). As with any deadline, work
//! the call had already handed to a blocking thread (a write) may still complete. A streaming
//! call is bounded until its response starts, not for the life of the stream. The client's own
//! deadline (`grpc-timeout`) is enforced by tonic as well, and by the client.

use std::future::Future;
use std::time::{Duration, Instant};

use http::Response;
use tonic::body::Body;
use tonic::Status;

/// When a call must have answered by (`None`: no deadline), for work that waits on others
/// (a cluster write) to give up in time to say why.
pub type Deadline = Option<Instant>;

/// Three quarters of the time left to `deadline` (the answer must reach the caller in time),
/// at most `cap`.
pub fn budget(deadline: Deadline, cap: Duration) -> Duration {
    deadline.map_or(cap, |d| {
        (d.saturating_duration_since(Instant::now()) * 3 / 4).min(cap)
    })
}

tokio::task_local! {
    /// When the current call must have answered by.
    static CALL_DEADLINE: Instant;
}

/// When the call being served must have answered by (the server's limit or the client's
/// `grpc-timeout`, the sooner), if it has a deadline: for work that retries (a cluster write
/// waiting for a quorum) to give up in time to say why. Read on the call's task; work handed
/// to a blocking thread takes it along.
pub fn call_deadline() -> Deadline {
    CALL_DEADLINE.try_with(|d| *d).ok()
}

/// The client's deadline from a request's `grpc-timeout` header, if it states one that reads.
pub fn requested(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A call's response future, bounded by `limit` (`None`: as it is). Used with
/// `tower::util::MapFutureLayer`, so the service's error type is kept.
pub async fn bound<E>(
    limit: Option<Duration>,
    call: impl Future<Output = Result<Response<Body>, E>>,
) -> Result<Response<Body>, E> {
    let Some(limit) = limit else {
        return call.await;
    };
    match tokio::time::timeout(limit, call).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(?limit, "call ended at the server's time limit");
            Ok(Status::deadline_exceeded(format!(
                "the call did not finish within the server's limit of {} s per call (--request-timeout-secs)",
                limit.as_secs_f64()
            ))
            .into_http())
        }
    }
}

/// Tower layer applying [`bound`] to every method but the `exempt` ones (full paths).
#[derive(Clone, Debug)]
pub struct DeadlineLayer {
    limit: Option<Duration>,
    exempt: std::sync::Arc<Vec<String>>,
}

impl DeadlineLayer {
    /// `limit` for every method of `service` whose requests are not streams.
    pub fn new(limit: Option<Duration>, service: &str) -> DeadlineLayer {
        let exempt = tradepact_proto::client_streaming_methods(service)
            .into_iter()
            .map(|m| format!("/{service}/{m}"))
            .collect();
        DeadlineLayer {
            limit,
            exempt: std::sync::Arc::new(exempt),
        }
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> DeadlineService<S> {
        DeadlineService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`DeadlineLayer`] makes.
#[derive(Clone, Debug)]
pub struct DeadlineService<S> {
    inner: S,
    layer: DeadlineLayer,
}

impl<S> tower::Service<http::Request<Body>> for DeadlineService<S>
where
    S: tower::Service<http::Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path();
        let limit = self
            .layer
            .limit
            .filter(|_| !self.layer.exempt.iter().any(|e| e == path));
        let within = match (limit, requested(request.headers())) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let call = bound(limit, self.inner.call(request));
        match within.and_then(|d| Instant::now().checked_add(d)) {
            Some(deadline) => Box::pin(CALL_DEADLINE.scope(deadline, call)),
            None => Box::pin(call),
        }
    }
}

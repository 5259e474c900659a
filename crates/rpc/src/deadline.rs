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
use std::time::Duration;

use http::Response;
use tonic::body::Body;
use tonic::Status;

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
        Box::pin(bound(limit, self.inner.call(request)))
    }
}

//! The server's own bound on each call (`--request-timeout-secs`).
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

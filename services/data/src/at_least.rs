//! Read-your-writes across nodes in cluster mode: a request that carries the header
//! `tradepact-min-sequence: N` (the sequence a write answered, on any node) is served once
//! this node has applied the stream up to `N`, waiting up to three quarters of the request's
//! deadline (at most [`MAX_WAIT`]); past it the call answers `UNAVAILABLE`, saying how far
//! this node is. Every answer carries `tradepact-applied-sequence`, the last write this node
//! has applied (how far behind a read without the header may be).
//!
//! Hand-written as a tower service around the generated server, because the wait is async and
//! applies to every RPC alike (an interceptor cannot wait).

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::watch;
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;

/// The header a read asks for a sequence with.
pub const HEADER: &str = "tradepact-min-sequence";
/// The header every answer tells the node's applied sequence in.
pub const APPLIED_HEADER: &str = "tradepact-applied-sequence";
/// Longest a request waits for this node to catch up.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// The generated server `S`, waiting for the sequence a request asks for.
#[derive(Clone)]
pub struct AtLeast<S> {
    inner: S,
    applied: watch::Receiver<u64>,
}

impl<S> AtLeast<S> {
    /// Wraps `inner`; `applied` is the last sequence this node applied.
    pub fn new(inner: S, applied: watch::Receiver<u64>) -> AtLeast<S> {
        AtLeast { inner, applied }
    }
}

impl<S: NamedService> NamedService for AtLeast<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for AtLeast<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        // The clone is not ready; the ready one serves this call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let header = req
            .headers()
            .get(HEADER)
            .map(|v| v.to_str().map(str::parse::<u64>));
        let mut applied = self.applied.clone();
        // Three quarters of the caller's deadline: the answer must reach it in time.
        let wait = tradepact_rpc::deadline::requested(req.headers())
            .map_or(MAX_WAIT, |d| d * 3 / 4)
            .min(MAX_WAIT);
        Box::pin(async move {
            let min = match header {
                None => None,
                Some(Ok(Ok(n))) => Some(n),
                Some(_) => {
                    let status = tonic::Status::invalid_argument(format!(
                        "the {HEADER} header must be a write sequence (a number)"
                    ));
                    return Ok(status.into_http());
                }
            };
            if let Some(min) = min {
                let reached = matches!(
                    tokio::time::timeout(wait, applied.wait_for(|a| *a >= min)).await,
                    Ok(Ok(_))
                );
                if !reached {
                    let now = *applied.borrow();
                    let status = tonic::Status::unavailable(format!(
                        "this node has applied the writes up to sequence {now}, not yet {min}: retry, or read from another node"
                    ));
                    return Ok(status.into_http());
                }
            }
            let mut response = inner.call(req).await?;
            // How far this node is, on every answer: a read without the header may be behind.
            let now = *applied.borrow();
            if let Ok(value) = now.to_string().parse() {
                response.headers_mut().insert(APPLIED_HEADER, value);
            }
            Ok(response)
        })
    }
}

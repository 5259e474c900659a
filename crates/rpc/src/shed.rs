//! Load shedding: a global limit on the calls to tradepact services handled at once.
//!
//! A call past the limit is refused at once with `RESOURCE_EXHAUSTED` rather than queued, so
//! an overloaded server answers fast instead of hanging or growing memory. The slot is held
//! until the handler has answered (a streaming call: until its response starts). Health and
//! reflection are not counted, so probes keep answering under load.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tokio::sync::Semaphore;
use tonic::body::Body;
use tonic::Status;

/// Tower layer for [`ShedService`].
#[derive(Clone, Debug)]
pub struct ShedLayer {
    slots: Arc<Semaphore>,
    limit: usize,
}

impl ShedLayer {
    /// At most `limit` calls at once.
    pub fn new(limit: usize) -> ShedLayer {
        ShedLayer {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl<S> tower::Layer<S> for ShedLayer {
    type Service = ShedService<S>;

    fn layer(&self, inner: S) -> ShedService<S> {
        ShedService {
            inner,
            slots: self.slots.clone(),
            limit: self.limit,
        }
    }
}

/// The service [`ShedLayer`] makes.
#[derive(Clone, Debug)]
pub struct ShedService<S> {
    inner: S,
    slots: Arc<Semaphore>,
    limit: usize,
}

type BoxFuture<T, E> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

impl<S> tower::Service<Request<Body>> for ShedService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Response<Body>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !crate::is_tradepact_call(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        match self.slots.clone().try_acquire_owned() {
            Ok(slot) => Box::pin(async move {
                let response = inner.call(request).await;
                drop(slot);
                response
            }),
            Err(_) => {
                let limit = self.limit;
                tracing::warn!(
                    limit,
                    "shedding a call: the server is at its concurrency limit"
                );
                let status = Status::resource_exhausted(format!(
                    "the server is handling its maximum of {limit} calls; retry with backoff"
                ));
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

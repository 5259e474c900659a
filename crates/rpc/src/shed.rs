//! Admission: a global limit on the calls to tradepact services handled at once, a limit per
//! token, and a bound on how long a request's first message may take to arrive.
//!
//! A call takes its slot when its first message has arrived (or its request stream ended
//! empty), not when its headers do: a client that opens streams and sends nothing, or two
//! bytes, holds no slot, and is ended with `DEADLINE_EXCEEDED` once `first_message` passes
//! from when the server first asks for the body (a layer that waits before the handler reads
//! it — a cluster node catching up to a read's sequence — does not count against the client).
//! Past the limits a call is refused at once with `RESOURCE_EXHAUSTED` rather than queued, so
//! an overloaded server answers fast instead of hanging or growing memory; shed calls are
//! counted and logged. The slot is held until the handler has answered (a streaming call:
//! until its response starts). Health and reflection are not counted, so probes keep
//! answering under load (and health stays `SERVING`: `NOT_SERVING` means shutting down).
//!
//! Hand-written (rather than `tower::limit`): the slot must be taken inside the request body,
//! where the first message is seen, and released with the response.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic::Status;

use crate::auth::Principal;

/// The limits [`ShedLayer`] enforces.
#[derive(Clone, Copy, Debug)]
pub struct Admission {
    /// Calls handled at once, over all connections.
    pub max_calls: usize,
    /// Calls one token may have handled at once (with authentication on).
    pub max_calls_per_token: usize,
    /// How long a request's first message may take to arrive.
    pub first_message: Duration,
}

/// Tower layer for [`ShedService`].
#[derive(Clone, Debug)]
pub struct ShedLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    slots: Arc<Semaphore>,
    limits: Admission,
    shed: AtomicU64,
}

impl ShedLayer {
    /// With `limits`.
    pub fn new(limits: Admission) -> ShedLayer {
        ShedLayer {
            shared: Arc::new(Shared {
                slots: Arc::new(Semaphore::new(limits.max_calls)),
                limits,
                shed: AtomicU64::new(0),
            }),
        }
    }

    /// Calls shed so far.
    pub fn shed_count(&self) -> u64 {
        self.shared.shed.load(Ordering::Relaxed)
    }
}

impl<S> tower::Layer<S> for ShedLayer {
    type Service = ShedService<S>;

    fn layer(&self, inner: S) -> ShedService<S> {
        ShedService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`ShedLayer`] makes.
#[derive(Clone, Debug)]
pub struct ShedService<S> {
    inner: S,
    shared: Arc<Shared>,
}

type BoxFuture<T, E> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

/// A call's admission: the slot (and its token's count) once taken, and the signal that it was.
struct Ticket {
    shared: Arc<Shared>,
    principal: Option<Arc<Principal>>,
    held: Mutex<Option<Held>>,
    admitted: Notify,
    /// Told when the server first asks for the request body (the first message's clock).
    asked: Notify,
}

/// What an admitted call holds until it has answered.
struct Held {
    _slot: OwnedSemaphorePermit,
    token: Option<Arc<Principal>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::IN_FLIGHT).decrement(1.0);
        if let Some(p) = &self.token {
            p.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Ticket {
    /// Takes a slot (and one of the token's), or says why not.
    fn admit(&self) -> Result<(), Status> {
        let limits = self.shared.limits;
        let token = self.principal.clone().filter(|p| p.is_token());
        if let Some(p) = &token {
            let taken = p
                .in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < limits.max_calls_per_token).then_some(n + 1)
                });
            if taken.is_err() {
                return Err(self.shed(format!(
                    "the token {:?} has its maximum of {} calls in progress; retry with backoff",
                    p.name, limits.max_calls_per_token
                )));
            }
        }
        match self.shared.slots.clone().try_acquire_owned() {
            Ok(slot) => {
                metrics::gauge!(crate::metrics::IN_FLIGHT).increment(1.0);
                *self.held.lock().expect("ticket lock") = Some(Held { _slot: slot, token });
                self.admitted.notify_one();
                Ok(())
            }
            Err(_) => {
                if let Some(p) = &token {
                    p.in_flight.fetch_sub(1, Ordering::AcqRel);
                }
                Err(self.shed(format!(
                    "the server is handling its maximum of {} calls; retry with backoff",
                    limits.max_calls
                )))
            }
        }
    }

    fn shed(&self, why: String) -> Status {
        metrics::counter!(crate::metrics::SHED).increment(1);
        let total = self.shared.shed.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(shed_total = total, "shedding a call: {why}");
        Status::resource_exhausted(why)
    }
}

impl<S> tower::Service<Request<Body>> for ShedService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
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
        let ticket = Arc::new(Ticket {
            shared: self.shared.clone(),
            principal: request.extensions().get::<Arc<Principal>>().cloned(),
            held: Mutex::new(None),
            admitted: Notify::new(),
            asked: Notify::new(),
        });
        let request = request.map(|body| {
            Body::new(FirstMessage {
                inner: body,
                ticket: Some(ticket.clone()),
                need: Need::Header(5),
                header: Vec::with_capacity(5),
            })
        });
        let first_message = self.shared.limits.first_message;
        Box::pin(async move {
            let call = inner.call(request);
            tokio::pin!(call);
            let admitted = tokio::select! {
                response = &mut call => Some(response),
                () = ticket.admitted.notified() => None,
                () = async {
                    ticket.asked.notified().await;
                    tokio::time::sleep(first_message).await
                } => {
                    tracing::warn!(?first_message, "ending a call whose first message did not arrive in time");
                    Some(Ok(Status::deadline_exceeded(format!(
                        "the request's first message did not arrive within {} s (--first-message-timeout-secs)",
                        first_message.as_secs_f64()
                    ))
                    .into_http()))
                }
            };
            let response = match admitted {
                Some(response) => response,
                None => call.await,
            };
            // The slot is given back once the handler has answered.
            drop(ticket.held.lock().expect("ticket lock").take());
            response
        })
    }
}

/// Where the request body stands in its first gRPC message.
enum Need {
    /// Bytes of the 5-byte message prefix still to come.
    Header(usize),
    /// Bytes of the message itself still to come.
    Message(u64),
    /// Admitted.
    Done,
}

/// A request body that takes the call's slot once its first message has arrived.
struct FirstMessage {
    inner: Body,
    ticket: Option<Arc<Ticket>>,
    need: Need,
    header: Vec<u8>,
}

impl FirstMessage {
    /// Follows `data` through the first message; `true` once it is complete.
    fn track(&mut self, mut data: &[u8]) -> bool {
        loop {
            match self.need {
                Need::Done => return true,
                Need::Header(n) => {
                    let take = n.min(data.len());
                    self.header.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if take < n {
                        self.need = Need::Header(n - take);
                        return false;
                    }
                    let len = u32::from_be_bytes(self.header[1..5].try_into().expect("5 bytes"));
                    self.need = Need::Message(u64::from(len));
                }
                Need::Message(n) => {
                    let take = (n as usize).min(data.len()) as u64;
                    data = &data[take as usize..];
                    if take < n {
                        self.need = Need::Message(n - take);
                        return false;
                    }
                    self.need = Need::Done;
                }
            }
        }
    }

    fn admit(&mut self) -> Result<(), Status> {
        self.need = Need::Done;
        match self.ticket.take() {
            Some(ticket) => ticket.admit(),
            None => Ok(()),
        }
    }
}

impl HttpBody for FirstMessage {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let (Some(ticket), Need::Header(5)) = (&self.ticket, &self.need) {
            // Stored as a permit when nobody waits yet; asking again changes nothing.
            ticket.asked.notify_one();
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(frame) => frame,
        };
        if self.ticket.is_some() {
            let complete = match &frame {
                Some(Ok(f)) => f
                    .data_ref()
                    .map_or(f.is_trailers(), |d| self.track(d.chunk())),
                // The end of the request (or its failure) admits it: tonic answers it then.
                None | Some(Err(_)) => true,
            };
            if complete {
                if let Err(status) = self.admit() {
                    return Poll::Ready(Some(Err(status)));
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> FirstMessage {
        FirstMessage {
            inner: Body::empty(),
            ticket: None,
            need: Need::Header(5),
            header: Vec::new(),
        }
    }

    #[test]
    fn the_first_message_is_complete_after_its_prefix_and_length() {
        let mut b = body();
        assert!(!b.track(&[0, 0]), "two bytes");
        assert!(!b.track(&[0, 0, 3, b'a']), "prefix and one of three bytes");
        assert!(
            b.track(&[b'b', b'c', 0, 0]),
            "the rest, and the next message's start"
        );
        let mut empty = body();
        assert!(empty.track(&[0, 0, 0, 0, 0]), "an empty message");
    }
}

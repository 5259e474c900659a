//! Connections: at most `max_connections` open at once, and one with no call in progress for
//! `idle_timeout` is closed (HTTP/2 keepalive pings, which keep a connection busy at the TCP
//! level, do not count as calls).
//!
//! Hand-written because tonic (0.14) and hyper have no idle timeout for HTTP/2 server
//! connections: each accepted connection is wrapped ([`Conn`]) with a count of its calls in
//! progress, which a layer ([`TrackCallsLayer`]) keeps from the request to the end of the
//! response body; the wrapper's reads fail with `TimedOut` once the connection has been idle
//! long enough, and hyper closes it.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};
use tonic::body::Body;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// A connection's calls in progress, and when that last changed.
#[derive(Debug)]
struct State {
    calls: AtomicUsize,
    changed: Mutex<Instant>,
}

impl State {
    fn touch(&self) {
        *self.changed.lock().expect("connection state") = Instant::now();
    }
}

/// What tonic attaches to each request of a connection: the TCP addresses and the
/// connection's call count.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// Local and remote addresses.
    pub tcp: TcpConnectInfo,
    state: Arc<State>,
}

/// An accepted connection, holding its place among the open ones.
pub struct Conn<IO> {
    io: IO,
    tcp: TcpConnectInfo,
    state: Arc<State>,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    _place: OwnedSemaphorePermit,
}

impl<IO> Conn<IO> {
    /// Wraps `io` (whose addresses are `tcp`), closed after `idle` without a call.
    pub fn new(io: IO, tcp: TcpConnectInfo, idle: Duration, place: OwnedSemaphorePermit) -> Self {
        Conn {
            io,
            tcp,
            state: Arc::new(State {
                calls: AtomicUsize::new(0),
                changed: Mutex::new(Instant::now()),
            }),
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            _place: place,
        }
    }

    /// `Err(TimedOut)` once the connection has had no call for `idle`; otherwise arms the
    /// timer for the next check.
    fn check_idle(&mut self, cx: &mut Context<'_>) -> std::io::Result<()> {
        loop {
            let busy = self.state.calls.load(Ordering::Acquire) > 0;
            let since = *self.state.changed.lock().expect("connection state");
            let deadline = if busy {
                Instant::now() + self.idle
            } else {
                since + self.idle
            };
            if !busy && deadline <= Instant::now() {
                tracing::debug!(idle = ?self.idle, "closing an idle connection");
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connection idle",
                ));
            }
            if self.timer.deadline() != deadline {
                self.timer.as_mut().reset(deadline);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
        }
    }
}

use std::future::Future;

impl<IO: AsyncRead + Unpin> AsyncRead for Conn<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Err(e) = self.check_idle(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Conn<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<IO> Connected for Conn<IO> {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        ConnInfo {
            tcp: self.tcp.clone(),
            state: self.state.clone(),
        }
    }
}

/// Tower layer for [`TrackCalls`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TrackCallsLayer;

impl<S> tower::Layer<S> for TrackCallsLayer {
    type Service = TrackCalls<S>;

    fn layer(&self, inner: S) -> TrackCalls<S> {
        TrackCalls { inner }
    }
}

/// Counts each call against its connection from the request to the end of its response.
#[derive(Clone, Debug)]
pub struct TrackCalls<S> {
    inner: S,
}

/// One call in progress on a connection.
struct Call(Arc<State>);

impl Call {
    fn start(state: &Arc<State>) -> Call {
        state.calls.fetch_add(1, Ordering::AcqRel);
        state.touch();
        Call(state.clone())
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.0.touch();
        self.0.calls.fetch_sub(1, Ordering::AcqRel);
    }
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> tower::Service<Request<Body>> for TrackCalls<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Response<Body>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let call = request
            .extensions()
            .get::<ConnInfo>()
            .map(|c| Call::start(&c.state));
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(match call {
                Some(call) => response.map(|body| {
                    Body::new(Tracked {
                        inner: body,
                        _call: call,
                    })
                }),
                None => response,
            })
        })
    }
}

/// A response body that keeps its call counted until it ends.
struct Tracked {
    inner: Body,
    _call: Call,
}

impl HttpBody for Tracked {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

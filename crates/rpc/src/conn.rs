//! Connections, bounded by what they do rather than by their count alone.
//!
//! Holding a connection open costs a client almost nothing, so a slot is not given to whoever
//! came first:
//! - at `--max-connections`, a new connection closes the one that has been idle longest (no
//!   call in progress) — first those that have made no call yet, oldest first, then those
//!   idle longest since their last call; only when every connection has a call in progress is
//!   the new one refused;
//! - past `--max-connections-per-address` from one IP address (on by default off loopback) the
//!   same happens among that address's connections, so one address cannot fill the server with
//!   busy connections either (say, 1,024 watch streams);
//! - a connection that has made no call within `--new-connection-idle-secs` of being accepted
//!   is closed (an HTTP/2 client that only answers pings, an HTTP/1.1 request whose headers
//!   never end, a TLS handshake never finished: all make no call);
//! - one with no call in progress for `--idle-timeout-secs` after its last call is closed;
//! - with tokens on, a connection whose calls all failed authentication is closed once its
//!   first refused call has been answered.
//!
//! HTTP/2 keepalive pings do not count as calls. A connection is closed by ending its input
//! (hyper then says GOAWAY, flushes what it has written and closes); one that has not closed
//! [`CLOSE_GRACE`] later (a peer that does not read) has its reads and writes fail.
//!
//! Hand-written because tonic (0.14) and hyper have no idle timeout for HTTP/2 server
//! connections and no way to close an accepted connection from outside: each accepted
//! connection is wrapped ([`Conn`]) with a shared state (its calls in progress, when that last
//! changed, whether a close was asked), which a layer ([`TrackCallsLayer`]) keeps from the
//! request to the end of the response body, and which the [`Registry`] of open connections
//! scans when a new one arrives.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tonic::body::Body;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How long a connection asked to close may take to flush and go before its reads and writes
/// fail.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long after its last call ended a connection asked to close keeps its input open, so
/// that the connection writes that call's answer first.
const LINGER: Duration = Duration::from_millis(100);

/// Connections open, those being closed included, are at most this many times
/// `max_connections`: past it new ones are refused until the closing ones have gone.
const CLOSING_ALLOWANCE: usize = 2;

/// Connections open at once in total, and per client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections open at once (not counting those being closed).
    pub max_connections: usize,
    /// Connections open at once from one IP address; `None`: no per-address limit.
    pub max_per_address: Option<usize>,
    /// A connection with no call in progress for this long after a call is closed.
    pub idle: Duration,
    /// A connection that has made no call this long after it was accepted is closed.
    pub first_call: Duration,
}

/// Why a connection was closed by the server (the `reason` label of
/// [`crate::metrics::CONNECTIONS_CLOSED`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CloseReason {
    /// No call within `--new-connection-idle-secs` of being accepted.
    NoFirstCall = 1,
    /// No call in progress for `--idle-timeout-secs`.
    Idle = 2,
    /// Closed for a new connection at `--max-connections` (it was the longest idle).
    MaxConnections = 3,
    /// Closed for a new connection from its address at `--max-connections-per-address`.
    MaxPerAddress = 4,
    /// Its calls failed authentication.
    Unauthenticated = 5,
}

impl CloseReason {
    const ALL: [CloseReason; 5] = [
        CloseReason::NoFirstCall,
        CloseReason::Idle,
        CloseReason::MaxConnections,
        CloseReason::MaxPerAddress,
        CloseReason::Unauthenticated,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::NoFirstCall => "no_first_call",
            CloseReason::Idle => "idle",
            CloseReason::MaxConnections => "max_connections",
            CloseReason::MaxPerAddress => "max_connections_per_address",
            CloseReason::Unauthenticated => "unauthenticated",
        }
    }
}

/// Why a new connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Every open connection has a call in progress.
    AllBusy,
    /// Every connection from its address has a call in progress.
    AllBusyFromAddress,
    /// Too many connections are still closing.
    ClosingBacklog,
}

/// The moment timestamps kept in atomics count from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` in nanoseconds since [`epoch`].
fn nanos(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// The moment `nanos` after [`epoch`].
fn instant(nanos: u64) -> Instant {
    epoch() + Duration::from_nanos(nanos)
}

/// One open connection, as the registry, its wrapper and its calls see it.
#[derive(Debug)]
struct State {
    ip: IpAddr,
    opened: u64,
    calls: AtomicUsize,
    /// Calls ended.
    ended: AtomicU64,
    /// Calls ended before the start of the last flush that completed.
    flushed: AtomicU64,
    /// When a call last started or ended (or when the connection was accepted).
    changed: AtomicU64,
    called: AtomicBool,
    authenticated: AtomicBool,
    refused: AtomicBool,
    /// When a close was asked (0: not asked).
    close_asked: AtomicU64,
    waker: Mutex<Option<Waker>>,
}

impl State {
    fn new(ip: IpAddr) -> State {
        let now = nanos(Instant::now()).max(1);
        State {
            ip,
            opened: now,
            calls: AtomicUsize::new(0),
            ended: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            changed: AtomicU64::new(now),
            called: AtomicBool::new(false),
            authenticated: AtomicBool::new(false),
            refused: AtomicBool::new(false),
            close_asked: AtomicU64::new(0),
            waker: Mutex::new(None),
        }
    }

    fn touch(&self) {
        self.changed.store(nanos(Instant::now()), Ordering::Release);
    }

    fn closing(&self) -> bool {
        self.close_asked.load(Ordering::Acquire) != 0
    }

    fn idle(&self) -> bool {
        self.calls.load(Ordering::Acquire) == 0
    }

    /// Asks the connection to close (once: later asks are ignored) and wakes it.
    fn close(&self, reason: CloseReason) {
        let now = nanos(Instant::now()).max(1);
        if self
            .close_asked
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        closed(reason, self.ip);
        self.wake();
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            waker.wake();
        }
    }

    fn register(&self, waker: &Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(|e| e.into_inner());
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }
}

/// Counts (and now and then logs) a close.
fn closed(reason: CloseReason, ip: IpAddr) {
    static TOTALS: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
    static LOGGED: AtomicU64 = AtomicU64::new(0);
    TOTALS[reason as usize].fetch_add(1, Ordering::Relaxed);
    metrics::counter!(crate::metrics::CONNECTIONS_CLOSED, "reason" => reason.label()).increment(1);
    tracing::debug!(%ip, reason = reason.label(), "closing a connection");
    // At most one line a second: an attack closes thousands.
    let now = nanos(Instant::now());
    let last = LOGGED.load(Ordering::Relaxed);
    if (last == 0 || now.saturating_sub(last) >= 1_000_000_000)
        && LOGGED
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let totals: Vec<String> = CloseReason::ALL
            .iter()
            .map(|r| {
                format!(
                    "{}={}",
                    r.label(),
                    TOTALS[*r as usize].load(Ordering::Relaxed)
                )
            })
            .collect();
        tracing::info!(
            latest = reason.label(),
            %ip,
            "closed connections since start: {}",
            totals.join(" ")
        );
    }
}

/// The open connections of one server.
#[derive(Debug)]
pub struct Registry {
    limits: ConnLimits,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    next: u64,
    states: HashMap<u64, Arc<State>>,
}

impl Registry {
    /// An empty registry enforcing `limits`.
    pub fn new(limits: ConnLimits) -> Arc<Registry> {
        Arc::new(Registry {
            limits,
            open: Mutex::new(Open::default()),
        })
    }

    /// Admits a new connection from `ip`, closing the longest-idle one (of its address, at
    /// the per-address limit) when the limit is reached; refused only when every candidate
    /// has a call in progress.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<(u64, Arc<State>), Refusal> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let cap = self.limits.max_connections;
        if open.states.len() >= cap.saturating_mul(CLOSING_ALLOWANCE) {
            return Err(Refusal::ClosingBacklog);
        }
        // Rank of an idle connection as the one to close: lower goes first.
        let rank = |s: &State| {
            (
                s.called.load(Ordering::Acquire),
                s.changed.load(Ordering::Acquire),
            )
        };
        let (mut active, mut from_ip) = (0usize, 0usize);
        let mut any: Option<(&Arc<State>, (bool, u64))> = None;
        let mut same: Option<(&Arc<State>, (bool, u64))> = None;
        for s in open.states.values() {
            if s.closing() {
                continue;
            }
            active += 1;
            let here = s.ip == ip;
            from_ip += usize::from(here);
            if !s.idle() {
                continue;
            }
            let r = rank(s);
            if any.is_none_or(|(_, best)| r < best) {
                any = Some((s, r));
            }
            if here && same.is_none_or(|(_, best)| r < best) {
                same = Some((s, r));
            }
        }
        if self
            .limits
            .max_per_address
            .is_some_and(|max| from_ip >= max)
        {
            let (victim, _) = same.ok_or(Refusal::AllBusyFromAddress)?;
            victim.close(CloseReason::MaxPerAddress);
        } else if active >= cap {
            let (victim, _) = any.ok_or(Refusal::AllBusy)?;
            victim.close(CloseReason::MaxConnections);
        }
        let state = Arc::new(State::new(ip));
        open.next += 1;
        let id = open.next;
        open.states.insert(id, state.clone());
        metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).set(open.states.len() as f64);
        Ok((id, state))
    }

    fn remove(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.states.remove(&id);
        metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).set(open.states.len() as f64);
    }

    /// Wraps an accepted connection `io` (whose addresses are `tcp`), or says why it is
    /// refused (the caller drops it, which closes it).
    pub fn accept<IO>(self: &Arc<Self>, io: IO, tcp: TcpConnectInfo) -> Result<Conn<IO>, Refusal> {
        let ip = tcp
            .remote_addr()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let (id, state) = self.admit(ip)?;
        let first = instant(state.opened) + self.limits.first_call;
        Ok(Conn {
            io,
            tcp,
            state,
            id,
            registry: self.clone(),
            limits: self.limits,
            timer: Box::pin(tokio::time::sleep_until(first)),
        })
    }
}

/// What tonic attaches to each request of a connection: the TCP addresses and the
/// connection's state.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// Local and remote addresses.
    pub tcp: TcpConnectInfo,
    state: Arc<State>,
}

impl ConnInfo {
    /// A call of this connection presented a known token.
    pub fn authenticated(&self) {
        self.state.authenticated.store(true, Ordering::Release);
    }

    /// A call of this connection failed authentication: unless another presented a known
    /// token, the connection is closed once its calls are answered.
    pub fn refused_authentication(&self) {
        self.state.refused.store(true, Ordering::Release);
    }
}

/// An accepted connection, holding its place among the open ones.
pub struct Conn<IO> {
    io: IO,
    tcp: TcpConnectInfo,
    state: Arc<State>,
    id: u64,
    registry: Arc<Registry>,
    limits: ConnLimits,
    timer: Pin<Box<Sleep>>,
}

/// What a connection's reads and writes do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Open,
    /// Asked to close: reads end (so hyper closes it gracefully), writes go on.
    Closing,
    /// Closing for longer than [`CLOSE_GRACE`]: reads and writes fail.
    Dead,
}

impl<IO> Conn<IO> {
    /// Arms the timer for `at`; `true` if that moment has come.
    fn due(&mut self, at: Instant, cx: &mut Context<'_>) -> bool {
        if self.timer.deadline() != at {
            self.timer.as_mut().reset(at);
        }
        self.timer.as_mut().poll(cx).is_ready()
    }

    /// Where the connection stands, closing it when its time has come; registers `cx` to be
    /// woken when that changes.
    fn phase(&mut self, cx: &mut Context<'_>) -> Phase {
        self.state.register(cx.waker());
        loop {
            let asked = self.state.close_asked.load(Ordering::Acquire);
            if asked != 0 {
                // Input ends only once the answers of the calls that ended are written out
                // (h2 drops what it has not written when its input ends): after a flush
                // that began after the last call ended, and LINGER after it ended.
                let hard = instant(asked) + CLOSE_GRACE;
                let written = self.state.flushed.load(Ordering::Acquire)
                    >= self.state.ended.load(Ordering::Acquire);
                let quiet = instant(self.state.changed.load(Ordering::Acquire)) + LINGER;
                let next = if written { quiet.min(hard) } else { hard };
                if self.due(next, cx) {
                    if Instant::now() >= hard {
                        return Phase::Dead;
                    }
                    if self.state.idle() {
                        return Phase::Closing;
                    }
                    // A call started as the close was asked: it has until the grace ends.
                    self.timer.as_mut().reset(hard);
                    let _ = self.timer.as_mut().poll(cx);
                }
                // Waiting for the flush (which wakes the connection) or the quiet moment.
                return Phase::Open;
            }
            if !self.state.idle() {
                // The call's end wakes the connection.
                return Phase::Open;
            }
            if self.state.refused.load(Ordering::Acquire)
                && !self.state.authenticated.load(Ordering::Acquire)
            {
                self.state.close(CloseReason::Unauthenticated);
                continue;
            }
            let (deadline, reason) = if self.state.called.load(Ordering::Acquire) {
                let last = self.state.changed.load(Ordering::Acquire);
                (instant(last) + self.limits.idle, CloseReason::Idle)
            } else {
                (
                    instant(self.state.opened) + self.limits.first_call,
                    CloseReason::NoFirstCall,
                )
            };
            if !self.due(deadline, cx) {
                return Phase::Open;
            }
            // Checked again: a call may have started meanwhile.
            if self.state.idle() {
                self.state.close(reason);
            }
        }
    }
}

impl<IO> Drop for Conn<IO> {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

fn dead() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "connection closed by the server",
    )
}

impl<IO: AsyncRead + Unpin> AsyncRead for Conn<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.phase(cx) {
            Phase::Open => Pin::new(&mut self.io).poll_read(cx, buf),
            // End of input: nothing read.
            Phase::Closing => Poll::Ready(Ok(())),
            Phase::Dead => Poll::Ready(Err(dead())),
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Conn<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.phase(cx) == Phase::Dead {
            return Poll::Ready(Err(dead()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.phase(cx) == Phase::Dead {
            return Poll::Ready(Err(dead()));
        }
        let ended = self.state.ended.load(Ordering::Acquire);
        let flushed = Pin::new(&mut self.io).poll_flush(cx);
        if matches!(flushed, Poll::Ready(Ok(()))) {
            self.state.flushed.fetch_max(ended, Ordering::AcqRel);
            if self.state.closing() {
                // Its answers are out: the connection may end its input now.
                cx.waker().wake_by_ref();
            }
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.phase(cx) == Phase::Dead {
            return Poll::Ready(Ok(()));
        }
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
        state.called.store(true, Ordering::Release);
        state.touch();
        Call(state.clone())
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.0.ended.fetch_add(1, Ordering::AcqRel);
        self.0.touch();
        if self.0.calls.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Idle now: the connection arms its idle timer (or closes, after a refusal).
            self.0.wake();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(max: usize, per_address: Option<usize>) -> Arc<Registry> {
        Registry::new(ConnLimits {
            max_connections: max,
            max_per_address: per_address,
            idle: Duration::from_secs(300),
            first_call: Duration::from_secs(10),
        })
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

    #[tokio::test]
    async fn at_the_limit_the_longest_idle_goes_never_the_new_one() {
        let r = registry(3, None);
        let (_, first) = r.admit(A).unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let (_, second) = r.admit(A).unwrap();
        let (_, third) = r.admit(B).unwrap();
        // The first made a call long ago, the second none yet: the one without a call goes.
        let _call = Call::start(&third);
        drop(Call::start(&first));
        let (_, fourth) = r.admit(B).unwrap();
        assert!(second.closing() && !first.closing() && !third.closing());
        // Then the one idle longest since its last call; the busy one stays.
        tokio::time::sleep(Duration::from_millis(2)).await;
        drop(Call::start(&fourth));
        let (_, _fifth) = r.admit(A).unwrap();
        assert!(first.closing() && !third.closing() && !fourth.closing());
    }

    #[tokio::test]
    async fn a_new_connection_is_refused_only_when_all_are_busy() {
        let r = registry(2, None);
        let (_, a) = r.admit(A).unwrap();
        let (_, b) = r.admit(B).unwrap();
        let _calls = (Call::start(&a), Call::start(&b));
        assert_eq!(r.admit(A).unwrap_err(), Refusal::AllBusy);
        assert!(!a.closing() && !b.closing());
    }

    #[tokio::test]
    async fn one_address_cannot_take_more_than_its_share() {
        let r = registry(10, Some(2));
        let (_, a1) = r.admit(A).unwrap();
        let (_, a2) = r.admit(A).unwrap();
        let (_, b1) = r.admit(B).unwrap();
        let _calls = (Call::start(&a1), Call::start(&a2));
        assert_eq!(r.admit(A).unwrap_err(), Refusal::AllBusyFromAddress);
        // Another address is let in; an idle connection of A would have been closed instead.
        r.admit(B).unwrap();
        assert!(!b1.closing(), "B is under its cap: nothing of B closes");
        drop(_calls);
        r.admit(A).unwrap();
        assert!(a1.closing() || a2.closing());
    }

    #[tokio::test]
    async fn closing_connections_are_bounded_too() {
        let r = registry(2, None);
        let mut kept = Vec::new();
        for _ in 0..4 {
            kept.push(r.admit(A).unwrap());
        }
        assert_eq!(r.admit(A).unwrap_err(), Refusal::ClosingBacklog);
        r.remove(kept[0].0);
        r.admit(A).unwrap();
    }
}

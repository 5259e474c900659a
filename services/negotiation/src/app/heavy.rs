//! Heavy computations (frontier, ZOPA count, simulation) off the async workers, bounded.
//!
//! - At most `max_calls` run at once, each on Tokio's blocking pool; a call that finds none
//!   free waits up to [`SLOT_WAIT`], then gets `RESOURCE_EXHAUSTED`.
//! - Each runs in a [`Cancel`] scope whose flag is set when its caller goes away (the future
//!   is dropped: the client disconnected or its deadline passed), when the server's own bound
//!   passes (`DEADLINE_EXCEEDED` naming it) or when shutdown begins (`UNAVAILABLE`); the
//!   domain's loops check it every few milliseconds at most, and the slot is given back only
//!   once the computation has really stopped.
//! - They compute on a snapshot: the caller holds no lock while they run.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Semaphore};
use tradepact_bargain::cancel::{Cancel, Reason};
use tradepact_bargain::{Analysis, Negotiation};
use tradepact_model::{Failure, Outcome};

/// How long a heavy call waits for a free slot before `RESOURCE_EXHAUSTED`.
pub const SLOT_WAIT: Duration = Duration::from_millis(500);

/// The bounded runner of heavy computations.
#[derive(Clone)]
pub struct Heavy {
    slots: Arc<Semaphore>,
    max_calls: usize,
    bound: Duration,
    shutdown: watch::Receiver<bool>,
}

/// Starts the shutdown of every heavy computation.
pub struct HeavyShutdown(watch::Sender<bool>);

impl HeavyShutdown {
    /// Stops every running heavy computation and refuses new ones.
    pub fn shut_down(&self) {
        let _ = self.0.send(true);
    }
}

/// Sets the flag when dropped, unless the computation finished.
struct CancelOnDrop(Option<Cancel>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.cancel(Reason::CallerGone);
        }
    }
}

impl Heavy {
    /// At most `max_calls` at once, each bounded by `bound`.
    pub fn new(max_calls: usize, bound: Duration) -> (Heavy, HeavyShutdown) {
        let (tx, rx) = watch::channel(false);
        let max_calls = max_calls.max(1);
        (
            Heavy {
                slots: Arc::new(Semaphore::new(max_calls)),
                max_calls,
                bound,
                shutdown: rx,
            },
            HeavyShutdown(tx),
        )
    }

    /// Runs `work` (`what` names it in errors) on the blocking pool within the bounds.
    pub async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce() -> Result<T, tradepact_bargain::Error> + Send + 'static,
    ) -> Outcome<T> {
        let mut shutdown = self.shutdown.clone();
        if *shutdown.borrow() {
            return Err(shutting_down(what));
        }
        let slot = tokio::time::timeout(SLOT_WAIT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                tracing::warn!(what, limit = self.max_calls, "shedding a heavy call");
                Failure::ResourceExhausted(format!(
                    "{what}: the server runs its maximum of {} heavy computations at once (--max-heavy-calls); retry with backoff",
                    self.max_calls
                ))
            })?
            .map_err(|_| shutting_down(what))?;
        let flag = Cancel::new();
        let mut guard = CancelOnDrop(Some(flag.clone()));
        let inner = flag.clone();
        let mut task = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            inner.scope(work)
        });
        let bound = tokio::time::sleep(self.bound);
        tokio::pin!(bound);
        let result = loop {
            let reason = tokio::select! {
                done = &mut task => break done,
                () = &mut bound => Reason::Deadline,
                changed = shutdown.changed() => match changed {
                    Ok(()) if !*shutdown.borrow() => continue,
                    _ => Reason::Shutdown,
                },
            };
            // The computation checks the flag every few milliseconds at most.
            flag.cancel(reason);
            break (&mut task).await;
        };
        guard.0 = None;
        let result = result.map_err(|e| Failure::internal(what, &e))?;
        result.map_err(|e| match e {
            tradepact_bargain::Error::Cancelled(Reason::Deadline) => {
                Failure::DeadlineExceeded(format!(
                    "{what} took longer than the server's bound of {} s for heavy computations (--heavy-call-timeout-secs)",
                    self.bound.as_secs_f64()
                ))
            }
            tradepact_bargain::Error::Cancelled(Reason::Shutdown) => shutting_down(what),
            tradepact_bargain::Error::Cancelled(Reason::CallerGone) => {
                Failure::Cancelled(format!("{what} was cancelled"))
            }
            other => super::failure(other),
        })
    }
}

/// The heavy job behind offer evaluations ([`Negotiation::solve_for_offers`]); a frontier
/// beyond the limits is kept as "no evaluation", a cancellation ends the call.
pub(crate) fn evaluation_job(
    space: tradepact_bargain::OutcomeSpace,
    positions: Vec<tradepact_bargain::Position>,
) -> impl FnOnce() -> Result<tradepact_bargain::Result<Arc<Analysis>>, tradepact_bargain::Error>
       + Send
       + 'static {
    move || {
        let refs: Vec<&tradepact_bargain::Position> = positions.iter().collect();
        match Negotiation::solve_for_offers(&space, &refs) {
            Err(e @ tradepact_bargain::Error::Cancelled(_)) => Err(e),
            other => Ok(other.map(Arc::new)),
        }
    }
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The answer of a heavy call run as its own task.
pub(crate) fn joined(done: Result<Outcome<()>, tokio::task::JoinError>) -> Outcome<()> {
    done.map_err(|e| Failure::internal("simulation task", &e))?
}

/// Sends `item` from a blocking computation, waking every millisecond while the channel is
/// full to see whether the computation was cancelled (a reader that stops reading must not
/// hold it past its bounds).
pub(crate) fn send_checking<T>(
    tx: &mpsc::Sender<T>,
    mut item: T,
) -> Result<(), tradepact_bargain::Error> {
    loop {
        match tx.try_send(item) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(back)) => {
                tradepact_bargain::cancel::check()?;
                item = back;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(tradepact_bargain::Error::Cancelled(
                    tradepact_bargain::cancel::Reason::CallerGone,
                ))
            }
        }
    }
}

fn shutting_down(what: &str) -> Failure {
    Failure::Unavailable(format!("{what}: the server is shutting down"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Spins until cancelled, checking like the domain's loops do; records that it stopped.
    fn spin(stopped: Arc<AtomicBool>) -> impl FnOnce() -> Result<(), tradepact_bargain::Error> {
        move || loop {
            if let Err(e) = tradepact_bargain::cancel::check() {
                stopped.store(true, Ordering::SeqCst);
                return Err(e);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    async fn eventually(flag: &AtomicBool) {
        for _ in 0..1000 {
            if flag.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("the computation did not stop");
    }

    #[tokio::test]
    async fn the_servers_bound_ends_a_computation_with_deadline_exceeded() {
        let (heavy, _shutdown) = Heavy::new(1, Duration::from_millis(50));
        let stopped = Arc::new(AtomicBool::new(false));
        let status = heavy
            .run("an analysis", spin(stopped.clone()))
            .await
            .unwrap_err();
        assert!(
            matches!(&status, Failure::DeadlineExceeded(m) if m.contains("--heavy-call-timeout-secs")),
            "{status:?}"
        );
        assert!(stopped.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_stops_its_computation_and_frees_the_slot() {
        let (heavy, _shutdown) = Heavy::new(1, Duration::from_secs(60));
        let stopped = Arc::new(AtomicBool::new(false));
        let call = heavy.run("an analysis", spin(stopped.clone()));
        // The caller gives up after 30 ms: the future is dropped.
        assert!(tokio::time::timeout(Duration::from_millis(30), call)
            .await
            .is_err());
        eventually(&stopped).await;
        // The slot is free again.
        assert_eq!(heavy.run("next", || Ok(7)).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn shutdown_stops_running_computations_and_refuses_new_ones() {
        let (heavy, shutdown) = Heavy::new(2, Duration::from_secs(60));
        let stopped = Arc::new(AtomicBool::new(false));
        let running = tokio::spawn({
            let heavy = heavy.clone();
            let stopped = stopped.clone();
            async move { heavy.run("a simulation", spin(stopped)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        shutdown.shut_down();
        let status = running.await.unwrap().unwrap_err();
        assert!(matches!(status, Failure::Unavailable(_)), "{status:?}");
        assert!(stopped.load(Ordering::SeqCst));
        assert!(matches!(
            heavy.run("later", || Ok(())).await.unwrap_err(),
            Failure::Unavailable(_)
        ));
    }

    #[tokio::test]
    async fn past_the_limit_a_call_waits_briefly_then_is_refused() {
        let (heavy, _shutdown) = Heavy::new(1, Duration::from_secs(60));
        let stopped = Arc::new(AtomicBool::new(false));
        let busy = tokio::spawn({
            let heavy = heavy.clone();
            let stopped = stopped.clone();
            async move { heavy.run("first", spin(stopped)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let status = heavy.run("second", || Ok(())).await.unwrap_err();
        assert!(
            matches!(&status, Failure::ResourceExhausted(m) if m.contains("--max-heavy-calls")),
            "{status:?}"
        );
        busy.abort();
        eventually(&stopped).await;
    }
}

//! `QueryTrade`'s work: a question across the matrix (`tradepact_store::query`) run off the
//! async workers, bounded: at most [`MAX_QUERIES`] at once (a caller that finds none free
//! waits [`SLOT_WAIT`], then `RESOURCE_EXHAUSTED`), at most [`QUERY_TIME`] each, and stopped
//! when its caller goes away (the future is dropped); the store bounds the series read and
//! the groups held.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tradepact_model::{Country, Failure, Outcome};
use tradepact_store::query::{self, Cell, Query};

use super::{failure, join_failure, Trade};

/// Queries run at once.
pub const MAX_QUERIES: usize = 2;
/// How long a query waits for a slot.
pub const SLOT_WAIT: Duration = Duration::from_millis(500);
/// Longest a query runs.
pub const QUERY_TIME: Duration = Duration::from_secs(30);

/// The slots queries run in.
#[derive(Clone)]
pub struct QuerySlots(Arc<Semaphore>);

impl Default for QuerySlots {
    fn default() -> Self {
        QuerySlots(Arc::new(Semaphore::new(MAX_QUERIES)))
    }
}

/// Sets the flag when dropped (the caller went away, or the call ended).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Trade {
    /// The members of the groups `names` in `year` (shipped or the users').
    pub async fn members(&self, names: &[String], year: u16) -> Outcome<Vec<Country>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        // Every group once (the users' are read from the store), then the names looked up.
        let groups = self.groups("", Some(year)).await?;
        let mut out = Vec::new();
        for name in names {
            let group = groups.iter().find(|g| &g.name == name).ok_or_else(|| {
                Failure::invalid(
                    "partner_groups",
                    format!("no group {}", tradepact_model::echo(name)),
                )
            })?;
            out.extend(group.members.iter().map(|m| m.code));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Answers `q` within the bounds.
    pub async fn query(&self, q: Query) -> Outcome<Vec<Cell>> {
        q.check().map_err(|e| Failure::invalid("", e))?;
        self.heavy(move |this, stop| query::run_until(&this.store, &q, stop))
            .await
    }

    /// Runs a heavy read (a query, a diff of releases) within the bounds: one of the
    /// [`MAX_QUERIES`] slots, at most [`QUERY_TIME`], on the blocking pool, stopped when the
    /// caller goes away; `f` is given the check that says stop.
    pub(super) async fn heavy<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Trade, &(dyn Fn() -> bool + Sync)) -> tradepact_store::Result<T>
            + Send
            + 'static,
    ) -> Outcome<T> {
        let slot = tokio::time::timeout(SLOT_WAIT, self.query_slots.0.clone().acquire_owned())
            .await
            .map_err(|_| {
                Failure::ResourceExhausted(format!(
                    "the server runs its maximum of {MAX_QUERIES} queries at once; retry with backoff"
                ))
            })?
            .map_err(|_| Failure::Unavailable("the server is shutting down".to_owned()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let _guard = StopOnDrop(stop.clone());
        let started = Instant::now();
        let this = self.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            f(&this, &|| {
                stop.load(Ordering::Relaxed) || started.elapsed() > QUERY_TIME
            })
        })
        .await
        .map_err(join_failure)?;
        answer.map_err(|e| match e {
            tradepact_store::Error::OutOfRange(m) if m.contains("stopped") => {
                Failure::DeadlineExceeded(format!(
                    "the call took longer than the server's bound of {} s; narrow it",
                    QUERY_TIME.as_secs()
                ))
            }
            other => failure(other),
        })
    }
}

/// The last year of a range of `years`, for group membership.
pub fn membership_year(last_period_year: u32) -> u16 {
    u16::try_from(last_period_year).unwrap_or(u16::MAX)
}

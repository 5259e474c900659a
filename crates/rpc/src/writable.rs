//! Recovery from failed writes, shared by both services: while a store refuses writes after
//! an I/O error (a full disk), a write is tried again with backoff, and a health name and a
//! gauge say so, until one succeeds — the store then takes writes again, with no restart.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// How often the store's state is looked at while it writes.
const CHECK: Duration = Duration::from_millis(100);
/// The first wait between tries while it cannot write, doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between tries: writes resume within about this long of room on disk.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A store that may refuse writes after an I/O error.
pub trait Writable: Send + Sync + 'static {
    /// Whether it refuses writes now.
    fn failing(&self) -> bool;
    /// Tries a write (blocking); `Ok` when it succeeded and writes are taken again.
    fn probe(&self) -> Result<(), String>;
}

/// Keeps `writable` saying whether `store` takes writes (and `gauge` 1 while it does not),
/// trying a write with backoff while it does not; until aborted.
pub async fn keep_writable(
    store: Arc<dyn Writable>,
    writable: watch::Sender<bool>,
    gauge: &'static str,
) {
    metrics::gauge!(gauge).set(0.0);
    let mut backoff = MIN_BACKOFF;
    loop {
        let failing = store.failing();
        if writable.send_if_modified(|w| std::mem::replace(w, !failing) == failing) {
            metrics::gauge!(gauge).set(f64::from(u8::from(failing)));
            match failing {
                true => tracing::warn!(
                    "writes are refused until one succeeds again: their health NOT_SERVING"
                ),
                false => tracing::info!("writes succeed again: their health SERVING"),
            }
        }
        if !failing {
            backoff = MIN_BACKOFF;
            tokio::time::sleep(CHECK).await;
            continue;
        }
        tokio::time::sleep(backoff).await;
        let tried = store.clone();
        match tokio::task::spawn_blocking(move || tried.probe()).await {
            Ok(Ok(())) => backoff = MIN_BACKOFF,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, ?backoff, "a write still fails");
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(_) => return, // the runtime is shutting down
        }
    }
}

//! Recovery from failed writes: while the store refuses writes after an I/O error (see
//! [`Store::failing`]), a write is tried again with backoff, and the service's writes health
//! name and a gauge say so, until one succeeds — the store then takes writes again, with no
//! restart.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tradepact_store::Store;

/// How often the store's state is looked at while it writes.
const CHECK: Duration = Duration::from_millis(100);
/// The first wait between tries while it cannot write, doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between tries: writes resume within about this long of room on disk.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// 1 while the store refuses writes after an I/O error, else 0.
pub const WRITES_FAILING: &str = "tradepact_store_writes_failing";

/// Keeps `writable` saying whether the store takes writes, and tries a write (with backoff)
/// while it does not; until aborted.
pub async fn keep_writable(store: Arc<Store>, writable: watch::Sender<bool>) {
    metrics::gauge!(WRITES_FAILING).set(0.0);
    let mut backoff = MIN_BACKOFF;
    loop {
        let failing = store.failing();
        if writable.send_if_modified(|w| std::mem::replace(w, !failing) == failing) {
            metrics::gauge!(WRITES_FAILING).set(f64::from(u8::from(failing)));
            match failing {
                true => tracing::warn!(
                    "writes are refused until one succeeds again: health of writes NOT_SERVING"
                ),
                false => tracing::info!("writes succeed again: health of writes SERVING"),
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

//! Cooperative cancellation of long computations.
//!
//! The frontier merge, the ZOPA count and a simulation can run for seconds or, on a space
//! whose utilities are nearly opposed, far longer. A caller that stops waiting (its client went
//! away, a deadline passed, the server shuts down) sets a [`Cancel`] flag; the computation,
//! run inside [`Cancel::scope`] on the same thread, checks it ([`check`]) in each of its loops
//! — every few microseconds to milliseconds of work — and ends with [`Error::Cancelled`].
//!
//! The flag is ambient (thread-local) rather than a parameter so that the domain's signatures
//! (and the many callers that never cancel) stay as they are; outside a scope, [`check`] never
//! fails.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::{Error, Result};

/// Why a computation was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Nobody waits for the answer any more (the client went away).
    CallerGone,
    /// A time bound passed.
    Deadline,
    /// The server is shutting down.
    Shutdown,
}

impl Reason {
    fn code(self) -> u8 {
        match self {
            Reason::CallerGone => 1,
            Reason::Deadline => 2,
            Reason::Shutdown => 3,
        }
    }

    fn of(code: u8) -> Option<Reason> {
        match code {
            1 => Some(Reason::CallerGone),
            2 => Some(Reason::Deadline),
            3 => Some(Reason::Shutdown),
            _ => None,
        }
    }
}

/// A flag that stops the computations running in its [`Cancel::scope`].
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicU8>);

thread_local! {
    static CURRENT: RefCell<Option<Cancel>> = const { RefCell::new(None) };
}

impl Cancel {
    /// A flag not set.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Stops the computations in scope, for `reason` (the first reason given is kept).
    pub fn cancel(&self, reason: Reason) {
        let _ = self
            .0
            .compare_exchange(0, reason.code(), Ordering::AcqRel, Ordering::Acquire);
    }

    /// Why it was cancelled, if it was.
    pub fn reason(&self) -> Option<Reason> {
        Reason::of(self.0.load(Ordering::Acquire))
    }

    /// Runs `f` on this thread with this flag as the one [`check`] reads.
    pub fn scope<T>(&self, f: impl FnOnce() -> T) -> T {
        struct Restore(Option<Cancel>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = previous);
            }
        }
        let previous = CURRENT.with(|c| c.borrow_mut().replace(self.clone()));
        let _restore = Restore(previous);
        f()
    }
}

/// `Err(Error::Cancelled)` when the flag of the current [`Cancel::scope`] is set.
pub fn check() -> Result<()> {
    CURRENT.with(|c| match c.borrow().as_ref().and_then(Cancel::reason) {
        None => Ok(()),
        Some(reason) => Err(Error::Cancelled(reason)),
    })
}

/// Whether the flag of the current scope is set (for loops that cannot return an error).
pub fn is_cancelled() -> bool {
    check().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_fails_only_inside_a_cancelled_scope() {
        assert!(check().is_ok());
        let flag = Cancel::new();
        flag.scope(|| assert!(check().is_ok()));
        flag.cancel(Reason::Deadline);
        flag.cancel(Reason::Shutdown);
        assert_eq!(
            flag.reason(),
            Some(Reason::Deadline),
            "the first reason is kept"
        );
        flag.scope(|| {
            assert_eq!(check(), Err(Error::Cancelled(Reason::Deadline)));
            // Nested scopes restore the outer flag.
            Cancel::new().scope(|| assert!(check().is_ok()));
            assert!(check().is_err());
        });
        assert!(check().is_ok(), "outside the scope again");
    }
}

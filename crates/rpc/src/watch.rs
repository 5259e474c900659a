//! A watch stream, as both services serve one: a catch-up (what the client asked to resume
//! from), then live updates from a broadcast, through a bounded [`outbox`](crate::outbox).
//!
//! A watcher that falls behind (its queue full, or the broadcast lagging past it) is dropped
//! with `RESOURCE_EXHAUSTED` naming where to resume; no writer and no other watcher waits for
//! it. It ends when its [`Feed`] says so (shutdown), when the broadcast closes, or when the
//! client goes away.

use tokio::sync::broadcast;
use tonic::Status;

use crate::outbox::{outbox, OutStream, Refused, MAX_BYTES, MAX_MESSAGES};

/// What one live update means to a watcher.
pub enum Step<T> {
    /// Nothing for this watcher.
    Skip,
    /// These messages, in order.
    Send(Vec<T>),
    /// The watch ends (the server is going away).
    End,
}

/// Turns a service's live updates into one watcher's messages, and says where it would
/// resume.
pub trait Feed: Send + 'static {
    /// What the service broadcasts.
    type Update: Clone + Send + 'static;
    /// What the watcher is sent.
    type Message: prost::Message + Send + 'static;
    /// The messages `update` means to this watcher.
    fn step(&mut self, update: Self::Update) -> Step<Self::Message>;
    /// Every message of the last [`Step::Send`] was queued.
    fn sent(&mut self);
    /// What the client sets to resume after what it was sent, e.g. `from_event = 7`.
    fn resume_from(&self) -> String;
}

/// Serves `past`, then the updates of `live` through `feed`, as a bounded stream.
pub fn watch<F: Feed>(
    past: Vec<F::Message>,
    mut live: broadcast::Receiver<F::Update>,
    mut feed: F,
) -> OutStream<F::Message> {
    let (out, stream) = outbox(MAX_MESSAGES, MAX_BYTES);
    let counted = Watching::start(); // before the stream is answered
    tokio::spawn(async move {
        let _counted = counted;
        // The catch-up may wait for room: it delays only this watch.
        for message in past {
            if out.send(message).await.is_err() {
                return;
            }
        }
        let behind = |feed: &F, why: &str| {
            metrics::counter!(crate::metrics::WATCHERS_DROPPED).increment(1);
            Status::resource_exhausted(format!(
                "watcher {why} and was dropped; resume with {}",
                feed.resume_from()
            ))
        };
        loop {
            let update = tokio::select! {
                update = live.recv() => update,
                () = out.closed() => return, // the client went away
            };
            let messages = match update {
                Ok(update) => match feed.step(update) {
                    Step::Skip => continue,
                    Step::End => return,
                    Step::Send(messages) => messages,
                },
                Err(broadcast::error::RecvError::Closed) => return,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    out.fail(behind(&feed, &format!("fell {n} updates behind")));
                    return;
                }
            };
            for message in messages {
                match out.try_send(message) {
                    Ok(()) => {}
                    Err(Refused::Closed) => return,
                    Err(Refused::Full) => {
                        let why = "fell behind (its queue is full: it did not read its stream)";
                        out.fail(behind(&feed, why));
                        return;
                    }
                }
            }
            feed.sent();
            if crate::metrics::enabled() {
                // How far behind the live updates this watcher is: messages waiting for the
                // client to read them, and updates not yet turned into messages.
                let lag = out.queued() + live.len();
                metrics::histogram!(crate::metrics::WATCHER_LAG).record(lag as f64);
            }
        }
    });
    stream
}

/// A watch counted in [`crate::metrics::WATCHERS`] while it lasts.
struct Watching;

impl Watching {
    fn start() -> Watching {
        metrics::gauge!(crate::metrics::WATCHERS).increment(1.0);
        Watching
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::WATCHERS).decrement(1.0);
    }
}

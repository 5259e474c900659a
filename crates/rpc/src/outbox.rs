//! The outgoing queue of a watch stream, bounded in messages and bytes.
//!
//! A watch's task pushes messages without waiting ([`Outbox::try_send`]): when the client
//! reads too slowly and the queue is full, the watch is dropped (with a status that says where
//! to resume), so that no writer and no other watcher ever waits for it and its memory stays
//! bounded. A catch-up (replaying what the client asked to resume from) may wait for room
//! ([`Outbox::send`]): it only delays its own watch. The final status always fits.

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_stream::{Stream, StreamExt};
use tonic::Status;

/// Messages a watcher's queue holds at most.
pub const MAX_MESSAGES: usize = 1024;
/// Bytes a watcher's queue holds at most (encoded messages).
pub const MAX_BYTES: usize = 256 * 1024;

type Item<T> = (Result<T, Status>, Option<Room>);

/// Room taken in a queue, given back when the client has taken the message.
struct Room {
    _messages: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

/// The sending side of a watch stream.
pub struct Outbox<T> {
    tx: mpsc::UnboundedSender<Item<T>>,
    messages: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    max_messages: usize,
    max_bytes: usize,
}

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The client is behind: the queue is full.
    Full,
    /// The client went away.
    Closed,
}

/// The stream a handler returns.
pub type OutStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A queue of at most `max_messages` and `max_bytes`, and the stream that drains it.
pub fn outbox<T: prost::Message + Send + 'static>(
    max_messages: usize,
    max_bytes: usize,
) -> (Outbox<T>, OutStream<T>) {
    let (tx, rx) = mpsc::unbounded_channel::<Item<T>>();
    let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(|(item, room)| {
        drop(room);
        item
    });
    (
        Outbox {
            tx,
            messages: Arc::new(Semaphore::new(max_messages.max(1))),
            bytes: Arc::new(Semaphore::new(max_bytes.max(1))),
            max_messages: max_messages.max(1),
            max_bytes: max_bytes.max(1),
        },
        Box::pin(stream),
    )
}

impl<T: prost::Message> Outbox<T> {
    /// Bytes `message` takes in the queue; one larger than the whole queue is queued alone.
    fn cost(&self, message: &T) -> u32 {
        message
            .encoded_len()
            .clamp(1, self.max_bytes)
            .try_into()
            .unwrap_or(u32::MAX)
    }

    /// Messages queued that the client has not taken yet.
    pub fn queued(&self) -> usize {
        self.max_messages - self.messages.available_permits()
    }

    /// Queues `message` if there is room now.
    pub fn try_send(&self, message: T) -> Result<(), Refused> {
        if self.tx.is_closed() {
            return Err(Refused::Closed);
        }
        let messages = self
            .messages
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Full)?;
        let bytes = self
            .bytes
            .clone()
            .try_acquire_many_owned(self.cost(&message))
            .map_err(|_| Refused::Full)?;
        let room = Room {
            _messages: messages,
            _bytes: bytes,
        };
        self.tx
            .send((Ok(message), Some(room)))
            .map_err(|_| Refused::Closed)
    }

    /// Queues `message`, waiting for room; `Err` once the client went away.
    pub async fn send(&self, message: T) -> Result<(), Refused> {
        let cost = self.cost(&message);
        let take = async {
            let messages = self.messages.clone().acquire_owned().await.ok()?;
            let bytes = self.bytes.clone().acquire_many_owned(cost).await.ok()?;
            Some(Room {
                _messages: messages,
                _bytes: bytes,
            })
        };
        let room = tokio::select! {
            room = take => room.ok_or(Refused::Closed)?,
            () = self.tx.closed() => return Err(Refused::Closed),
        };
        self.tx
            .send((Ok(message), Some(room)))
            .map_err(|_| Refused::Closed)
    }

    /// Ends the stream with `status` (always queued).
    pub fn fail(&self, status: Status) {
        let _ = self.tx.send((Err(status), None));
    }

    /// Completes when the client has gone away.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_and_the_final_status_still_arrives() {
        let (out, mut stream) = outbox::<String>(3, MAX_BYTES);
        for i in 0..3 {
            out.try_send(format!("m{i}")).unwrap();
        }
        assert_eq!(out.try_send("m3".into()), Err(Refused::Full));
        out.fail(Status::resource_exhausted("behind"));
        // Taking a message gives its room back.
        assert_eq!(stream.next().await.unwrap().unwrap(), "m0");
        out.try_send("m4".into()).unwrap();
        let rest: Vec<_> = stream.take(4).collect().await;
        assert!(rest[2].as_ref().is_err_and(|s| s.message() == "behind"));
    }

    #[tokio::test]
    async fn bytes_bound_the_queue_too() {
        let (out, _stream) = outbox::<String>(1000, 100);
        // Each message costs its encoded length (a 40-byte string: 42 bytes).
        out.try_send("x".repeat(40)).unwrap();
        out.try_send("x".repeat(40)).unwrap();
        assert_eq!(out.try_send("x".repeat(40)), Err(Refused::Full));
    }

    #[tokio::test]
    async fn a_gone_client_is_closed() {
        let (out, stream) = outbox::<String>(10, 100);
        drop(stream);
        assert_eq!(out.try_send("x".into()), Err(Refused::Closed));
        assert_eq!(out.send("x".into()).await, Err(Refused::Closed));
    }
}

//! `StreamWritePoints`' writer: batches applied in order while the next ones are decoded.
//!
//! The caller decodes and validates batches and [`Ingest::push`]es them, up to
//! [`READ_AHEAD_POINTS`] ahead of the writer (each batch travels with its share of a
//! semaphore, released once it is applied). Batches waiting when the writer is ready are
//! applied together, up to [`COMBINE_POINTS`], as one atomic write when they are of the same
//! release: each batch is still applied whole or not at all, and in order. Writes are flushed every
//! [`GROUP_COMMIT_BATCHES`] batches and at the end, whether or not the stream ended well.

use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tradepact_model::{Failure, Outcome};
use tradepact_store::WriteSummary;

use super::{join_failure, Batch, Trade};

/// Batches of a `StreamWritePoints` call between two flushes.
pub const GROUP_COMMIT_BATCHES: u64 = 64;
/// Points of a `StreamWritePoints` call decoded ahead of the writer (a larger batch waits
/// until the writer has applied everything before it).
pub const READ_AHEAD_POINTS: usize = 131_072;
/// Points up to which batches waiting for the writer are applied together, as one write: a
/// chunk that several of them touch (a time-major ingest) is then read and written once.
pub const COMBINE_POINTS: usize = 65_536;

type Queued = (Batch, OwnedSemaphorePermit);

/// What an ingest applied, and why it stopped early if it did.
pub struct Ingested {
    /// Batches applied (all durable).
    pub batches: u64,
    /// Points inserted and updated, and the last sequence.
    pub total: WriteSummary,
    /// The failure of the batch after the last one applied.
    pub failure: Option<Failure>,
}

/// One bulk ingest in progress.
pub struct Ingest {
    trade: Trade,
    read_ahead: Arc<Semaphore>,
    to_writer: mpsc::UnboundedSender<Queued>,
    writer: tokio::task::JoinHandle<Written>,
}

impl Trade {
    /// Starts a bulk ingest.
    pub fn ingest(&self) -> Ingest {
        let (to_writer, batches_in) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_all(self.clone(), batches_in));
        Ingest {
            trade: self.clone(),
            read_ahead: Arc::new(Semaphore::new(READ_AHEAD_POINTS)),
            to_writer,
            writer,
        }
    }
}

impl Ingest {
    /// Queues a validated batch, waiting while the writer is too far behind; `false` once
    /// the writer has stopped on a failure ([`Ingest::finish`] says which).
    pub async fn push(&self, batch: Batch) -> bool {
        let points = batch.points();
        let share = points.clamp(1, READ_AHEAD_POINTS) as u32;
        let Ok(permit) = self.read_ahead.clone().acquire_many_owned(share).await else {
            return false; // never closed
        };
        self.to_writer.send((batch, permit)).is_ok()
    }

    /// Waits for the writer to apply what was queued, then makes it durable: what is, and
    /// the failure that stopped the rest.
    pub async fn finish(self) -> Outcome<Ingested> {
        drop(self.to_writer);
        let written = self.writer.await.map_err(join_failure)?;
        let summaries = written.unsettled.iter().map(|(_, s)| *s).collect();
        let (durable, unsettled) = self.trade.settle(summaries).await;
        let mut ingested = written.durable;
        for (batches, summary) in &written.unsettled[..durable] {
            ingested.batches += batches;
            ingested.total += *summary;
        }
        // A write applied but lost in a failed flush comes before the writer's failure.
        ingested.failure = match durable < written.unsettled.len() {
            true => unsettled.or(written.failure),
            false => written.failure,
        };
        Ok(ingested)
    }
}

/// What the writer did: the batches durable at its last flush, those applied since (each
/// write's batches and summary) and the failure that stopped it.
struct Written {
    durable: Ingested,
    unsettled: Vec<(u64, WriteSummary)>,
    failure: Option<Failure>,
}

async fn write_all(trade: Trade, mut batches_in: mpsc::UnboundedReceiver<Queued>) -> Written {
    let mut durable = Ingested {
        batches: 0,
        total: WriteSummary::default(),
        failure: None,
    };
    let mut unsettled: Vec<(u64, WriteSummary)> = Vec::new();
    let mut applied = 0u64;
    // A batch received while combining, of another release: the next write's first.
    let mut carried: Option<Queued> = None;
    loop {
        let next = match carried.take() {
            Some(queued) => Some(queued),
            None => batches_in.recv().await,
        };
        let Some((mut batch, permit)) = next else {
            break;
        };
        let mut permits: Vec<OwnedSemaphorePermit> = vec![permit];
        let mut points = batch.points();
        while points < COMBINE_POINTS {
            let Ok((next, permit)) = batches_in.try_recv() else {
                break;
            };
            if next.release != batch.release {
                carried = Some((next, permit));
                break;
            }
            points += next.points();
            batch.series.extend(next.series);
            permits.push(permit);
        }
        let count = permits.len() as u64;
        if count > 1 {
            tracing::debug!(
                batches = count,
                points,
                "applying waiting batches as one write"
            );
        }
        // Flush when the write crosses a group-commit boundary.
        let flush = applied / GROUP_COMMIT_BATCHES != (applied + count) / GROUP_COMMIT_BATCHES;
        let written = trade.write(batch, flush).await;
        drop(permits);
        match written {
            // Flushed: this write and every one before it are durable.
            Ok(s) if flush => {
                for (batches, summary) in unsettled.drain(..) {
                    durable.batches += batches;
                    durable.total += summary;
                }
                durable.batches += count;
                durable.total += s;
            }
            Ok(s) => unsettled.push((count, s)),
            Err(failure) => {
                return Written {
                    durable,
                    unsettled,
                    failure: Some(failure),
                }
            }
        }
        applied += count;
    }
    Written {
        durable,
        unsettled,
        failure: None,
    }
}

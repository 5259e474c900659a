//! `WatchSeries`' work: writes told to watchers once durable, in write order (a watcher
//! never sees a write that a crash could still undo), and the replay of what was written
//! since a sequence.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tradepact_model::Outcome;
use tradepact_store::{Error, Point, SeriesFilter, SeriesKey, View};

use super::{Batch, Trade};

/// Messages a `WatchSeries` subscriber may fall behind before it is dropped.
pub const WATCH_BUFFER: usize = 1024;

/// What watchers are told.
#[derive(Clone, Debug)]
pub enum Written {
    /// Write `sequence` is durable: these series and points (of this release).
    Durable(u64, Arc<Batch>),
    /// The server is going away.
    Shutdown,
}

/// Tells watchers of writes once they are durable, in write order.
pub struct Watchers {
    sender: broadcast::Sender<Written>,
    /// Writes applied while somebody watched and not yet flushed, in write order: the
    /// store's opening each was applied to, its sequence and batch.
    pending: Mutex<VecDeque<Pending>>,
}

type Pending = (u64, u64, Arc<Batch>);

/// Ends the `WatchSeries` streams, so that a graceful shutdown does not wait for them.
#[derive(Clone)]
pub struct Closer(broadcast::Sender<Written>);

impl Closer {
    /// Tells every watcher that the server is going away.
    pub fn close(&self) {
        let _ = self.0.send(Written::Shutdown);
    }
}

impl Default for Watchers {
    fn default() -> Self {
        Watchers {
            sender: broadcast::channel(WATCH_BUFFER).0,
            pending: Mutex::new(VecDeque::new()),
        }
    }
}

impl Watchers {
    /// The handle that ends every watch.
    pub fn closer(&self) -> Closer {
        Closer(self.sender.clone())
    }

    /// Called as write `seq` is applied to opening `generation` of the store, while writes
    /// are serialised (so in order).
    pub fn applied(&self, generation: u64, seq: u64, batch: &Arc<Batch>) {
        if self.sender.receiver_count() > 0 {
            self.pending().push_back((generation, seq, batch.clone()));
        }
    }

    /// Called after a flush of opening `generation` made every write of it up to `upto`
    /// durable: sends those writes. Writes of earlier openings (the store was reopened after
    /// a failed write) are sent when `kept(generation, seq)` says the reopening found them,
    /// else dropped (sequences are given again after a reopening).
    pub fn durable(&self, generation: u64, upto: u64, kept: impl Fn(u64, u64) -> bool) {
        let mut pending = self.pending();
        while let Some((g, seq, _)) = pending.front() {
            let send = match g.cmp(&generation) {
                std::cmp::Ordering::Less => kept(*g, *seq),
                std::cmp::Ordering::Equal if *seq <= upto => true,
                _ => break,
            };
            if let Some((_, seq, batch)) = pending.pop_front() {
                if send {
                    let _ = self.sender.send(Written::Durable(seq, batch));
                }
            }
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A watch: what was written since the sequence asked for, then the live writes.
pub struct Watch {
    /// The writes replayed: sequence, series, its points in the written range as the watch's
    /// view sees them (current values by default) and the label of the release the write
    /// named.
    pub past: Vec<(u64, SeriesKey, Vec<Point>, Option<String>)>,
    /// The last sequence the replay covers (live writes up to it are skipped).
    pub replayed_until: u64,
    /// The durable writes from now on.
    pub live: broadcast::Receiver<Written>,
}

impl Trade {
    /// Watches the series `filter` matches, replaying the writes from `from_sequence` (0:
    /// none) with their points as `view` sees them.
    pub async fn watch(
        &self,
        filter: SeriesFilter,
        from_sequence: u64,
        view: View,
    ) -> Outcome<Watch> {
        // Subscribe first, then read what was written since `from_sequence`: nothing falls
        // between the two, and live writes already replayed are skipped.
        let live = self.watch.sender.subscribe();
        if from_sequence == 0 {
            let (past, replayed_until) = (Vec::new(), self.sequence());
            return Ok(Watch {
                past,
                replayed_until,
                live,
            });
        }
        let (past, replayed_until) = self
            .blocking(move |this| {
                let (changes, current) = this.store.changes_since(from_sequence)?;
                // The replay may include writes not yet flushed: make them durable first.
                this.flush_now()?;
                let mut past = Vec::new();
                for change in changes {
                    for (key, first, last) in change.series {
                        if !filter.matches(&key) {
                            continue;
                        }
                        // A series deleted since has nothing to replay.
                        let points = match this.store.scan(&key, first.ordinal, last.ordinal, view)
                        {
                            Err(Error::NotFound(_)) => continue,
                            scan => scan?
                                .map(|p| {
                                    p.map(|p| Point {
                                        ordinal: p.period.ordinal,
                                        value: p.value,
                                        source: p.source,
                                    })
                                })
                                .collect::<Result<Vec<_>, _>>()?,
                        };
                        if points.is_empty() {
                            continue;
                        }
                        let release = change.release.as_ref().map(|r| r.label.clone());
                        past.push((change.sequence, key, points, release));
                    }
                }
                Ok((past, current))
            })
            .await?;
        Ok(Watch {
            past,
            replayed_until,
            live,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradepact_store::{Country, Flow, Frequency, Kind, Product, SeriesPoints, Store};

    fn batch(year: u32) -> Batch {
        Batch::unnamed(vec![SeriesPoints {
            key: SeriesKey {
                reporter: Country::parse("USA").unwrap(),
                partner: Country::parse("KOR").unwrap(),
                flow: Flow::Export,
                kind: Kind::Goods,
                product: Product::total(),
                frequency: Frequency::Annual,
                measure: Default::default(),
            },
            points: vec![Point {
                ordinal: year,
                value: 1e9,
                source: "test".into(),
            }],
        }])
    }

    fn write(store: &Store, watch: &Watchers, year: u32) -> u64 {
        let batch = Arc::new(batch(year));
        store
            .write_then(&batch.series, None, |seq| watch.applied(0, seq, &batch))
            .unwrap()
            .sequence
    }

    fn received(rx: &mut broadcast::Receiver<Written>) -> Vec<u64> {
        let mut out = Vec::new();
        while let Ok(msg) = rx.try_recv() {
            if let Written::Durable(seq, _) = msg {
                out.push(seq);
            }
        }
        out
    }

    #[test]
    fn watchers_see_writes_only_once_flushed_and_in_write_order() {
        let store = Store::temporary().unwrap();
        let watch = Watchers::default();
        let mut rx = watch.sender.subscribe();
        let (a, b) = (write(&store, &watch, 2016), write(&store, &watch, 2017));
        assert!(a < b);
        assert_eq!(
            received(&mut rx),
            Vec::<u64>::new(),
            "applied, not yet durable"
        );
        watch.durable(0, a, |_, _| false);
        assert_eq!(received(&mut rx), vec![a]);
        let c = write(&store, &watch, 2018);
        watch.durable(0, store.flush().unwrap(), |_, _| false);
        assert_eq!(received(&mut rx), vec![b, c]);
    }

    #[test]
    fn nothing_is_held_for_writes_nobody_watches() {
        let store = Store::temporary().unwrap();
        let watch = Watchers::default();
        write(&store, &watch, 2016);
        assert!(watch.pending().is_empty());
    }
}

//! The data application: what the service does, with no gRPC in it. The handlers
//! (`service.rs`) validate a request ([`crate::convert`]), call one method here and convert
//! its answer; failures are [`Failure`]s, mapped to statuses in one place
//! (`tradepact_rpc::status::of`).
//!
//! Writes go through the [`WriteLog`] seam (append a batch → its sequence; fulfilled by the
//! sled store today, a replicated log later); reads go to the store. [`ingest`] is the
//! batch-merging writer of a bulk load, [`watch`] the fan-out of durable writes to watchers.

pub mod cluster;
pub mod failure;
pub mod ingest;
pub mod query;
pub mod reference;
pub mod snapshot;
pub mod watch;

use std::sync::Arc;

use tradepact_model::reference::GroupInfo;
use tradepact_model::{Failure, Outcome, Release};
use tradepact_rpc::deadline::Deadline;
use tradepact_store::aggregate::{self, ReadPlan, Value};
use tradepact_store::analysis::{self, BalanceQuery, BalanceRow, Change, ChangeTarget};
use tradepact_store::columns::{self, Columns};
use tradepact_store::revisions::{self, Revision};
use tradepact_store::{
    AsOf, Period, ReleaseInfo, SeriesFilter, SeriesInfo, SeriesKey, SeriesPoints, Store, View,
    WriteSummary,
};

pub use failure::{failure, join_failure};
use watch::Watchers;

/// One write: series and their points, of a release or of the unnamed one.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// The series and points.
    pub series: Vec<SeriesPoints>,
    /// The release they belong to; `None`: the unnamed release (values replaced).
    pub release: Option<Release>,
}

impl Batch {
    /// Points in all.
    pub fn points(&self) -> usize {
        self.series.iter().map(|s| s.points.len()).sum()
    }

    /// A write of the unnamed release.
    pub fn unnamed(series: Vec<SeriesPoints>) -> Batch {
        Batch {
            series,
            release: None,
        }
    }
}

/// Where writes go: the sled store, or in cluster mode a JetStream stream ([`cluster`]).
/// Writes are applied in sequence order; a write is durable once [`WriteLog::flush`] has
/// returned a sequence at least its.
pub trait WriteLog: Send + Sync + 'static {
    /// Applies `batch` atomically; `applied` is told its sequence while writes are still
    /// serialised (so in sequence order).
    fn append(
        &self,
        batch: &Batch,
        applied: &mut dyn FnMut(u64),
        deadline: Deadline,
    ) -> tradepact_store::Result<WriteSummary>;
    /// Deletes a series (a write too); the points it held.
    fn delete(&self, key: &SeriesKey, deadline: Deadline) -> tradepact_store::Result<u64>;
    /// Makes every write so far durable; the last sequence it covers.
    fn flush(&self) -> tradepact_store::Result<u64>;
    /// Makes every write so far durable: how many of `writes` (in write order) are durable
    /// now, and the last sequence the flush covers or its error.
    fn settle(&self, writes: &[WriteSummary]) -> (usize, tradepact_store::Result<u64>) {
        match self.flush() {
            Ok(upto) => (writes.len(), Ok(upto)),
            Err(e) => (0, Err(e)),
        }
    }
    /// The opening of the store writes go to now (see [`Store::settle`]; 0 when it is not
    /// reopened, as in cluster mode).
    fn generation(&self) -> u64 {
        0
    }
    /// Stores a user's country group (replacing one of its name), durably.
    fn define_group(&self, group: &GroupInfo, deadline: Deadline) -> tradepact_store::Result<()>;
}

/// A local store's writes take what they take (bounded by the disk, not by others).
impl WriteLog for Store {
    fn append(
        &self,
        batch: &Batch,
        applied: &mut dyn FnMut(u64),
        _: Deadline,
    ) -> tradepact_store::Result<WriteSummary> {
        self.write_then(&batch.series, batch.release.as_ref(), applied)
    }

    fn delete(&self, key: &SeriesKey, _: Deadline) -> tradepact_store::Result<u64> {
        Store::delete(self, key)
    }

    fn flush(&self) -> tradepact_store::Result<u64> {
        Store::flush(self)
    }

    fn settle(&self, writes: &[WriteSummary]) -> (usize, tradepact_store::Result<u64>) {
        Store::settle(self, writes)
    }

    fn generation(&self) -> u64 {
        Store::generation(self)
    }

    fn define_group(&self, group: &GroupInfo, _: Deadline) -> tradepact_store::Result<()> {
        Store::define_group(self, group)
    }
}

/// The store as [`tradepact_rpc::writable`] sees it: refusing writes after an I/O error
/// until a probe write succeeds.
pub struct StoreWrites(pub Arc<Store>);

impl tradepact_rpc::writable::Writable for StoreWrites {
    fn failing(&self) -> bool {
        self.0.failing()
    }

    fn probe(&self) -> Result<(), String> {
        self.0.probe().map_err(|e| e.to_string())
    }
}

/// 1 while the store refuses writes after an I/O error, else 0.
pub const WRITES_FAILING: &str = "tradepact_store_writes_failing";

/// Blocking iterators a stream is served from.
pub type Items<T> = Box<dyn Iterator<Item = Outcome<T>> + Send + 'static>;

/// The trade data of one service.
#[derive(Clone)]
pub struct Trade {
    store: Arc<Store>,
    log: Arc<dyn WriteLog>,
    watch: Arc<Watchers>,
    query_slots: query::QuerySlots,
}

impl Trade {
    /// The application over `store` (its reads and, today, its write log), with the handle
    /// that closes its watches.
    pub fn new(store: Arc<Store>) -> (Trade, watch::Closer) {
        let watch = Arc::new(Watchers::default());
        let closer = watch.closer();
        let log: Arc<dyn WriteLog> = store.clone();
        let query_slots = query::QuerySlots::default();
        (
            Trade {
                store,
                log,
                watch,
                query_slots,
            },
            closer,
        )
    }

    /// The application in cluster mode: writes through `log` (a JetStream stream), which
    /// this node applies to `store` in stream order (a task started here tells watchers).
    pub fn clustered(store: Arc<Store>, log: Arc<cluster::ClusterLog>) -> (Trade, watch::Closer) {
        let (mut trade, closer) = Trade::new(store);
        tokio::spawn(log.clone().apply_stream(trade.watch.clone()));
        trade.log = log;
        (trade, closer)
    }

    /// Runs a bounded read on the calling task: sled reads of a page or a few series take
    /// microseconds, less than a hand-off to the blocking pool (measured: the hand-off halved
    /// unary read throughput under load). Unbounded work (writes with their fsync, streams)
    /// goes through [`Trade::blocking`].
    fn inline<T>(&self, f: impl FnOnce(&Store) -> tradepact_store::Result<T>) -> Outcome<T> {
        f(&self.store).map_err(failure)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Trade) -> tradepact_store::Result<T> + Send + 'static,
    ) -> Outcome<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(join_failure)?
            .map_err(failure)
    }

    /// Applies a batch; durable only when `flush`. Watchers are told once it is durable.
    pub async fn write(&self, batch: Batch, flush: bool) -> Outcome<WriteSummary> {
        let deadline = tradepact_rpc::deadline::call_deadline();
        self.blocking(move |this| {
            let batch = Arc::new(batch);
            let generation = || this.log.generation();
            let applied = &mut |seq| this.watch.applied(generation(), seq, &batch);
            let summary = this.log.append(&batch, applied, deadline)?;
            if flush {
                if let (0, Err(e)) = this.settle_now(&[summary]) {
                    return Err(e);
                }
            }
            metrics::counter!("tradepact_points_written_total", "kind" => "inserted")
                .increment(summary.inserted);
            metrics::counter!("tradepact_points_written_total", "kind" => "updated")
                .increment(summary.updated);
            Ok(summary)
        })
        .await
    }

    /// Makes every write durable and tells watchers of them.
    pub async fn flush(&self) -> Outcome<()> {
        self.blocking(|this| this.flush_now()).await
    }

    fn flush_now(&self) -> tradepact_store::Result<()> {
        self.settle_now(&[]).1.map(|_| ())
    }

    /// Makes every write so far durable and tells watchers of those that are: how many of
    /// `writes` (in write order) are durable, and the flush's error.
    fn settle_now(&self, writes: &[WriteSummary]) -> (usize, tradepact_store::Result<u64>) {
        let (durable, settled) = self.log.settle(writes);
        // Writes of an earlier opening are sent when the reopening found them.
        let kept = |generation, seq| self.store.decided(generation, seq) == Some(true);
        let upto = *settled.as_ref().unwrap_or(&0);
        self.watch.durable(self.log.generation(), upto, kept);
        (durable, settled)
    }

    /// Makes every write so far durable: how many of `writes` (in write order) are, and the
    /// failure that stopped the others.
    pub async fn settle(&self, writes: Vec<WriteSummary>) -> (usize, Option<Failure>) {
        let settled = self
            .blocking(move |this| {
                let (durable, settled) = this.settle_now(&writes);
                Ok((durable, settled.err().map(failure)))
            })
            .await;
        settled.unwrap_or_else(|e| (0, Some(e)))
    }

    /// Deletes series `key`, durably; the points it held.
    pub async fn delete(&self, key: SeriesKey) -> Outcome<u64> {
        let deadline = tradepact_rpc::deadline::call_deadline();
        self.blocking(move |this| {
            let n = this.log.delete(&key, deadline)?;
            match this.flush_now() {
                Ok(()) => Ok(n),
                // The store was reopened: the delete is durable when its files lack the series.
                Err(e) => match this.store.info(&key) {
                    Err(tradepact_store::Error::NotFound(_)) => Ok(n),
                    _ => Err(e),
                },
            }
        })
        .await
    }

    /// Up to `size` values of `key` in `[from, to]` read as `plan` says, and the period
    /// ordinal the next page starts at.
    pub fn values_page(
        &self,
        key: &SeriesKey,
        plan: ReadPlan,
        (from, to): (u32, u32),
        size: usize,
    ) -> Outcome<(Vec<Value>, Option<u32>)> {
        self.inline(|store| {
            let mut values = Vec::with_capacity(size.min(1024));
            for value in aggregate::values(store, key, plan, from, to)? {
                let value = value?;
                if values.len() == size {
                    return Ok((values, Some(value.period.ordinal)));
                }
                values.push(value);
            }
            Ok((values, None))
        })
    }

    /// Every value of `key` in `[from, to]` read as `plan` says, from the blocking pool (an
    /// unknown series fails here, not in the iteration).
    pub async fn values(
        &self,
        key: SeriesKey,
        plan: ReadPlan,
        (from, to): (u32, u32),
    ) -> Outcome<Items<Value>> {
        let values = self
            .blocking(move |this| aggregate::values(&this.store, &key, plan, from, to))
            .await?;
        Ok(Box::new(values.map(|v| v.map_err(failure))))
    }

    /// The values of `key` in `[from, to]` as column blocks of at most `chunk` values.
    pub async fn columns(
        &self,
        key: SeriesKey,
        plan: ReadPlan,
        (from, to): (u32, u32),
        chunk: usize,
    ) -> Outcome<Items<Columns>> {
        let blocks = self
            .blocking(move |this| columns::columns(&this.store, &key, plan, from, to, chunk))
            .await?;
        Ok(Box::new(blocks.map(|b| b.map_err(failure))))
    }

    /// Up to `size` series `filter` matches, after the key `after`; the key to go on after.
    pub fn list(
        &self,
        filter: &SeriesFilter,
        after: Option<&[u8]>,
        size: usize,
    ) -> Outcome<(Vec<SeriesInfo>, Option<Vec<u8>>)> {
        self.inline(|store| store.list(filter, after, size))
    }

    /// Exports, imports and balance of `query` for each period in `[from, to]`.
    pub fn balance(
        &self,
        query: &BalanceQuery,
        (from, to): (u32, u32),
    ) -> Outcome<Vec<BalanceRow>> {
        self.inline(|store| analysis::trade_balance(store, query, from, to))
    }

    /// `key` beside the partner's figures for the opposite flow: the mirror's key and rows.
    pub fn mirror(
        &self,
        key: &SeriesKey,
        (from, to): (u32, u32),
        view: View,
    ) -> Outcome<(SeriesKey, Vec<analysis::MirrorRow>)> {
        let rows = self.inline(|store| analysis::mirror(store, key, from, to, view))?;
        Ok((analysis::mirror_key(key), rows))
    }

    /// How `target` changed from `from` to `to`.
    pub fn change(
        &self,
        target: &ChangeTarget,
        from: Period,
        to: Period,
        view: View,
    ) -> Outcome<Change> {
        self.inline(|store| analysis::change(store, target, from, to, view))
    }

    /// The figures a read asked for; `NotFound` for an unknown release.
    pub fn view(&self, as_of: &AsOf) -> Outcome<View> {
        self.inline(|store| store.view(as_of))
    }

    /// The label of release `id`; empty for the unnamed release (or an unknown id).
    pub fn release_label(&self, id: u32) -> String {
        match id {
            0 => String::new(),
            id => self
                .store
                .release_info(id)
                .map(|r| r.release.label)
                .unwrap_or_default(),
        }
    }

    /// Every release of the store (`None`), or those the series `filter` selects have values
    /// of, counted; in release order.
    pub async fn releases(&self, filter: Option<SeriesFilter>) -> Outcome<Vec<(ReleaseInfo, u64)>> {
        let Some(filter) = filter else {
            let mut all: Vec<_> = self.store.releases().into_iter().map(|r| (r, 0)).collect();
            all.sort_by_key(|(r, _)| r.rank());
            return Ok(all);
        };
        self.heavy(move |this, stop| revisions::releases_of(&this.store, &filter, stop))
            .await
    }

    /// The points `filter` selects whose values differ between `from` and `to`, at most
    /// `limit`, and whether more do.
    pub async fn revisions(
        &self,
        filter: SeriesFilter,
        (from, to): (AsOf, AsOf),
        limit: usize,
    ) -> Outcome<(Vec<Revision>, bool)> {
        let (from, to) = (self.view(&from)?, self.view(&to)?);
        self.heavy(move |this, stop| {
            revisions::revisions(&this.store, &filter, from, to, limit, stop)
        })
        .await
    }

    /// The last write's sequence.
    pub fn sequence(&self) -> u64 {
        self.store.sequence()
    }
}

/// `Failure::Invalid` unless `v` is empty; else the value (`None` only on a bug: every
/// `None` comes with a violation).
pub fn validated<T>(
    v: tradepact_model::Violations,
    value: impl FnOnce() -> Option<T>,
) -> Outcome<T> {
    let value = v.into_result(value).map_err(Failure::Invalid)?;
    value.ok_or_else(|| Failure::invalid("", "invalid request"))
}

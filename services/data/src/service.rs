//! `tradepact.data.v1.TradeDataService`: validate, call the store, map the result.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use tradepact_proto::data_v1 as pb;
use tradepact_proto::data_v1::trade_data_service_server::TradeDataService;
use tradepact_rpc::paging::{self as cursor, Fingerprint};
use tradepact_store::aggregate::{self, ReadPlan};
use tradepact_store::analysis;
use tradepact_store::columns;
use tradepact_store::{
    Period, SeriesFilter, SeriesKey, SeriesPoints, Store, Violations, WriteSummary,
};

use crate::convert;
use crate::error::{join_error, to_status};

/// Values per `StreamSeries` message.
pub const STREAM_CHUNK: usize = 4096;
/// Values per `StreamSeriesColumns` message (about 80 kB of doubles and deltas).
pub const COLUMNS_CHUNK: usize = 8192;
/// Default and largest `GetSeries` page.
pub const SERIES_PAGE: (usize, usize) = (1000, 10_000);
/// Default and largest `ListSeries` page.
pub const LIST_PAGE: (usize, usize) = (100, 1000);
/// Batches of a `StreamWritePoints` call between two flushes.
pub const GROUP_COMMIT_BATCHES: u64 = 64;
/// Points of a `StreamWritePoints` call decoded ahead of the writer (a larger batch waits
/// until the writer has applied everything before it).
pub const READ_AHEAD_POINTS: usize = 131_072;
/// Points up to which batches waiting for the writer are applied together, as one write: a
/// chunk that several of them touch (a time-major ingest) is then read and written once.
pub const COMBINE_POINTS: usize = 65_536;
/// Messages a `WatchSeries` subscriber may fall behind before it is dropped.
pub const WATCH_BUFFER: usize = 1024;

#[derive(Clone, Debug)]
enum WatchMsg {
    Written(u64, Arc<Vec<SeriesPoints>>),
    Shutdown,
}

/// Tells `WatchSeries` subscribers of writes once they are durable, in write order: a
/// watcher never sees a write that a crash could still undo.
struct Watchers {
    sender: broadcast::Sender<WatchMsg>,
    /// Writes applied while somebody watched and not yet flushed, in sequence order.
    pending: Mutex<VecDeque<(u64, Arc<Vec<SeriesPoints>>)>>,
}

impl Watchers {
    fn new() -> Watchers {
        Watchers {
            sender: broadcast::channel(WATCH_BUFFER).0,
            pending: Mutex::new(VecDeque::new()),
        }
    }

    /// Called as write `seq` is applied, under the store's write lock (so in order).
    fn applied(&self, seq: u64, batch: &Arc<Vec<SeriesPoints>>) {
        if self.sender.receiver_count() > 0 {
            self.pending().push_back((seq, batch.clone()));
        }
    }

    /// Called after a flush made every write up to `upto` durable: sends those writes.
    fn durable(&self, upto: u64) {
        let mut pending = self.pending();
        while pending.front().is_some_and(|(seq, _)| *seq <= upto) {
            if let Some((seq, batch)) = pending.pop_front() {
                let _ = self.sender.send(WatchMsg::Written(seq, batch));
            }
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, Arc<Vec<SeriesPoints>>)>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Flushes `store`, then sends what became durable.
    fn flush(&self, store: &Store) -> tradepact_store::Result<()> {
        let upto = store.flush()?;
        self.durable(upto);
        Ok(())
    }
}

/// The data service over one store.
#[derive(Clone)]
pub struct DataService {
    store: Arc<Store>,
    watch: Arc<Watchers>,
}

/// Ends the `WatchSeries` streams, so that a graceful shutdown does not wait for them.
#[derive(Clone)]
pub struct WatchCloser(broadcast::Sender<WatchMsg>);

impl WatchCloser {
    /// Tells every watcher that the server is going away.
    pub fn close(&self) {
        let _ = self.0.send(WatchMsg::Shutdown);
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Sends what a blocking iterator yields as a server stream, from the blocking pool; stops
/// after the first error or when the client goes away.
fn forward<T: Send + 'static>(
    items: impl Iterator<Item = Result<T, Status>> + Send + 'static,
) -> BoxStream<T> {
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        for item in items {
            let last = item.is_err();
            if tx.blocking_send(item).is_err() || last {
                return;
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

/// The validated series, read plan and period range of a StreamSeries-like request.
fn read_range(
    key: Option<&pb::SeriesKey>,
    start_period: &str,
    end_period: &str,
    aggregate_to: i32,
) -> Result<(SeriesKey, ReadPlan, u32, u32), Status> {
    let mut v = Violations::default();
    let key = convert::series_key(key, "key", &mut v);
    let plan = key
        .as_ref()
        .and_then(|k| convert::read_plan(k, aggregate_to, &mut v));
    let (from, to) = match plan {
        Some(p) => convert::period_range(start_period, end_period, p.frequency, &mut v),
        None => (0, 0),
    };
    let (key, plan) = validated(v, || key.zip(plan))?;
    Ok((key, plan, from, to))
}

fn validated<T>(v: Violations, value: impl FnOnce() -> Option<T>) -> Result<T, Status> {
    let value = v
        .into_result(value)
        .map_err(|v| to_status(tradepact_store::Error::Invalid(v)))?;
    // Every None above comes with a violation, so this is only reached on a bug.
    value.ok_or_else(|| Status::invalid_argument("invalid request"))
}

impl DataService {
    /// A service over `store`, with the handle that closes its watch streams.
    pub fn new(store: Arc<Store>) -> (DataService, WatchCloser) {
        let watch = Arc::new(Watchers::new());
        let closer = WatchCloser(watch.sender.clone());
        (DataService { store, watch }, closer)
    }

    /// Runs a bounded read on the calling task: sled reads of a page or a few series take
    /// microseconds, less than a hand-off to the blocking pool (measured: the hand-off halved
    /// unary read throughput under load). Unbounded work (writes with their fsync, streams)
    /// goes through [`DataService::blocking`].
    fn inline<T>(&self, f: impl FnOnce(&Store) -> tradepact_store::Result<T>) -> Result<T, Status> {
        f(&self.store).map_err(to_status)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> tradepact_store::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(join_error)?
            .map_err(to_status)
    }

    /// Applies a batch; durable only when `flush`. Watchers are told once it is durable.
    async fn apply(&self, batch: Vec<SeriesPoints>, flush: bool) -> Result<WriteSummary, Status> {
        let watch = self.watch.clone();
        self.blocking(move |store| {
            let batch = Arc::new(batch);
            let summary = store.write_then(&batch, |seq| watch.applied(seq, &batch))?;
            if flush {
                watch.flush(store)?;
            }
            Ok(summary)
        })
        .await
    }

    async fn flush(&self) -> Result<(), Status> {
        let watch = self.watch.clone();
        self.blocking(move |store| watch.flush(store)).await
    }
}

#[tonic::async_trait]
impl TradeDataService for DataService {
    async fn write_points(
        &self,
        request: Request<pb::WritePointsRequest>,
    ) -> Result<Response<pb::WritePointsResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let batch = convert::write_batch(&req.series, &mut v);
        let batch = validated(v, || Some(batch))?;
        let s = self.apply(batch, true).await?;
        Ok(Response::new(pb::WritePointsResponse {
            inserted: s.inserted,
            updated: s.updated,
            sequence: s.sequence,
        }))
    }

    async fn stream_write_points(
        &self,
        request: Request<Streaming<pb::StreamWritePointsRequest>>,
    ) -> Result<Response<pb::StreamWritePointsResponse>, Status> {
        let mut stream = request.into_inner();
        // Decoding and validating the next batches overlaps with writing: a writer task
        // applies batches in order while this loop reads ahead, up to READ_AHEAD_POINTS (each
        // batch travels with its share of a semaphore, released once it is applied). Batches
        // waiting when the writer is ready are applied together, up to COMBINE_POINTS, as one
        // atomic write: each batch is still applied whole or not at all, and in order.
        let read_ahead = Arc::new(Semaphore::new(READ_AHEAD_POINTS));
        let (to_writer, mut batches_in) = mpsc::unbounded_channel::<(Vec<SeriesPoints>, _)>();
        let this = self.clone();
        let writer = tokio::spawn(async move {
            let (mut applied, mut total) = (0u64, WriteSummary::default());
            while let Some((mut batch, permit)) = batches_in.recv().await {
                let mut permits: Vec<OwnedSemaphorePermit> = vec![permit];
                let mut count = 1;
                let mut points: usize = batch.iter().map(|s| s.points.len()).sum();
                while points < COMBINE_POINTS {
                    let Ok((next, permit)) = batches_in.try_recv() else {
                        break;
                    };
                    points += next.iter().map(|s| s.points.len()).sum::<usize>();
                    batch.extend(next);
                    permits.push(permit);
                    count += 1;
                }
                if count > 1 {
                    tracing::debug!(
                        batches = count,
                        points,
                        "applying waiting batches as one write"
                    );
                }
                // Flush when the write crosses a group-commit boundary.
                let flush =
                    applied / GROUP_COMMIT_BATCHES != (applied + count) / GROUP_COMMIT_BATCHES;
                let written = this.apply(batch, flush).await;
                drop(permits);
                match written {
                    Ok(s) => total += s,
                    Err(e) => return (applied, total, Some(e)),
                }
                applied += count;
            }
            (applied, total, None)
        });
        let read_failure = loop {
            let msg = match stream.message().await {
                Ok(Some(msg)) => msg,
                Ok(None) => break None,
                Err(e) => break Some(tradepact_rpc::status::request_decode(e)),
            };
            let mut v = Violations::default();
            let batch = convert::write_batch(&msg.series, &mut v);
            let batch = match validated(v, || Some(batch)) {
                Ok(b) => b,
                Err(e) => break Some(e),
            };
            let points: usize = batch.iter().map(|s| s.points.len()).sum();
            let share = points.clamp(1, READ_AHEAD_POINTS) as u32;
            let Ok(permit) = read_ahead.clone().acquire_many_owned(share).await else {
                break None; // never closed
            };
            if to_writer.send((batch, permit)).is_err() {
                break None; // the writer stopped on an error, reported below
            }
        };
        drop(to_writer);
        let (batches, total, write_failure) = writer.await.map_err(join_error)?;
        // The writer's error comes first: it is about an earlier batch.
        let failure = write_failure.or(read_failure);
        // What was applied is made durable whether or not the stream ended well.
        self.flush().await?;
        if let Some(e) = failure {
            // Keep the details (field violations) of an invalid batch.
            return Err(Status::with_details(
                e.code(),
                format!(
                    "batch {}: {} (the {batches} batches before it were applied and are durable)",
                    batches + 1,
                    e.message()
                ),
                e.details().to_vec().into(),
            ));
        }
        Ok(Response::new(pb::StreamWritePointsResponse {
            batches,
            inserted: total.inserted,
            updated: total.updated,
            last_sequence: total.sequence,
        }))
    }

    async fn get_series(
        &self,
        request: Request<pb::GetSeriesRequest>,
    ) -> Result<Response<pb::GetSeriesResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let key = convert::series_key(req.key.as_ref(), "key", &mut v);
        let size = convert::page_size(req.page_size, SERIES_PAGE.0, SERIES_PAGE.1, &mut v);
        let plan = key
            .as_ref()
            .and_then(|k| convert::read_plan(k, req.aggregate_to, &mut v));
        let (mut from, to) = match plan {
            Some(p) => {
                convert::period_range(&req.start_period, &req.end_period, p.frequency, &mut v)
            }
            None => (0, 0),
        };
        let fingerprint = Fingerprint::of(&[
            &key.as_ref().map(SeriesKey::encode).unwrap_or_default(),
            req.start_period.as_bytes(),
            req.end_period.as_bytes(),
            &req.aggregate_to.to_be_bytes(),
        ]);
        if !req.page_token.is_empty() {
            match cursor::decode(&req.page_token, fingerprint) {
                Ok(pos) if pos.len() == 4 => {
                    from = from.max(u32::from_be_bytes([pos[0], pos[1], pos[2], pos[3]]));
                }
                Ok(_) => v.add("page_token", "is not a page token of GetSeries"),
                Err(e) => v.add("page_token", e),
            }
        }
        let (key, plan) = validated(v, || key.zip(plan))?;
        let read_key = key.clone();
        let (values, next) = self.inline(move |store| {
            let mut values = Vec::with_capacity(size.min(1024));
            let mut next = None;
            for value in aggregate::values(store, &read_key, plan, from, to)? {
                let value = value?;
                if values.len() == size {
                    next = Some(value.period.ordinal);
                    break;
                }
                values.push(convert::series_value(value));
            }
            Ok((values, next))
        })?;
        Ok(Response::new(pb::GetSeriesResponse {
            key: Some(convert::series_key_pb(&key)),
            values,
            next_page_token: next
                .map(|n| cursor::encode(fingerprint, &n.to_be_bytes()))
                .unwrap_or_default(),
        }))
    }

    type StreamSeriesStream = BoxStream<pb::StreamSeriesResponse>;

    async fn stream_series(
        &self,
        request: Request<pb::StreamSeriesRequest>,
    ) -> Result<Response<Self::StreamSeriesStream>, Status> {
        let req = request.into_inner();
        let (key, plan, from, to) = read_range(
            req.key.as_ref(),
            &req.start_period,
            &req.end_period,
            req.aggregate_to,
        )?;
        // Open the scan first so that an unknown series is NOT_FOUND, not an empty stream.
        let mut values = self
            .blocking(move |store| aggregate::values(store, &key, plan, from, to))
            .await?;
        let messages = std::iter::from_fn(move || {
            let mut chunk = Vec::with_capacity(STREAM_CHUNK);
            for value in values.by_ref() {
                match value {
                    Ok(value) => chunk.push(convert::series_value(value)),
                    Err(e) => return Some(Err(to_status(e))),
                }
                if chunk.len() == STREAM_CHUNK {
                    break;
                }
            }
            (!chunk.is_empty()).then_some(Ok(pb::StreamSeriesResponse { values: chunk }))
        });
        Ok(Response::new(forward(messages)))
    }

    type StreamSeriesColumnsStream = BoxStream<pb::StreamSeriesColumnsResponse>;

    async fn stream_series_columns(
        &self,
        request: Request<pb::StreamSeriesColumnsRequest>,
    ) -> Result<Response<Self::StreamSeriesColumnsStream>, Status> {
        let req = request.into_inner();
        let (key, plan, from, to) = read_range(
            req.key.as_ref(),
            &req.start_period,
            &req.end_period,
            req.aggregate_to,
        )?;
        let blocks = self
            .blocking(move |store| columns::columns(store, &key, plan, from, to, COLUMNS_CHUNK))
            .await?;
        Ok(Response::new(forward(blocks.map(|block| {
            block.map(convert::columns).map_err(to_status)
        }))))
    }

    async fn list_series(
        &self,
        request: Request<pb::ListSeriesRequest>,
    ) -> Result<Response<pb::ListSeriesResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let filter = convert::filter(req.filter.as_ref(), &mut v);
        let size = convert::page_size(req.page_size, LIST_PAGE.0, LIST_PAGE.1, &mut v);
        let fingerprint = Fingerprint::of(&[format!("{filter:?}").as_bytes()]);
        let after = if req.page_token.is_empty() {
            None
        } else {
            v.check("page_token", cursor::decode(&req.page_token, fingerprint))
        };
        validated(v, || Some(()))?;
        let (infos, next) =
            self.inline(move |store| store.list(&filter, after.as_deref(), size))?;
        Ok(Response::new(pb::ListSeriesResponse {
            series: infos.into_iter().map(convert::series_info).collect(),
            next_page_token: next
                .map(|n| cursor::encode(fingerprint, &n))
                .unwrap_or_default(),
        }))
    }

    async fn delete_series(
        &self,
        request: Request<pb::DeleteSeriesRequest>,
    ) -> Result<Response<pb::DeleteSeriesResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let key = convert::series_key(req.key.as_ref(), "key", &mut v);
        let key = validated(v, || key)?;
        let watch = self.watch.clone();
        let deleted_points = self
            .blocking(move |store| {
                let n = store.delete(&key)?;
                watch.flush(store)?;
                Ok(n)
            })
            .await?;
        Ok(Response::new(pb::DeleteSeriesResponse { deleted_points }))
    }

    async fn get_trade_balance(
        &self,
        request: Request<pb::GetTradeBalanceRequest>,
    ) -> Result<Response<pb::GetTradeBalanceResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let query = convert::balance_query(
            &req.reporter,
            &req.partner,
            &req.product,
            req.frequency,
            "",
            &mut v,
        );
        let (from, to) = match &query {
            Some(q) => {
                convert::period_range(&req.start_period, &req.end_period, q.frequency, &mut v)
            }
            None => (0, 0),
        };
        let query = validated(v, || query)?;
        let rows = self.inline(move |store| analysis::trade_balance(store, &query, from, to))?;
        Ok(Response::new(pb::GetTradeBalanceResponse {
            rows: rows.into_iter().map(convert::balance_row).collect(),
        }))
    }

    async fn get_change(
        &self,
        request: Request<pb::GetChangeRequest>,
    ) -> Result<Response<pb::GetChangeResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let target = convert::change_target(req.target.as_ref(), &mut v);
        let periods = target.as_ref().map(|t| {
            let f = t.frequency();
            (
                v.check("from_period", Period::parse(&req.from_period, f)),
                v.check("to_period", Period::parse(&req.to_period, f)),
            )
        });
        let (target, (from, to)) = validated(v, || {
            let (from, to) = periods?;
            Some((target?, (from?, to?)))
        })?;
        let change = self.inline(move |store| analysis::change(store, &target, from, to))?;
        Ok(Response::new(convert::change(change)))
    }

    type WatchSeriesStream = BoxStream<pb::WatchSeriesResponse>;

    async fn watch_series(
        &self,
        request: Request<pb::WatchSeriesRequest>,
    ) -> Result<Response<Self::WatchSeriesStream>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let filter: SeriesFilter = convert::filter(req.filter.as_ref(), &mut v);
        validated(v, || Some(()))?;
        // Subscribe first, then read what was written since `from_sequence`: nothing falls
        // between the two, and live writes already replayed are skipped.
        let mut written = self.watch.sender.subscribe();
        let replay = if req.from_sequence > 0 {
            let (from, replay_filter, watch) =
                (req.from_sequence, filter.clone(), self.watch.clone());
            self.blocking(move |store| {
                let (changes, current) = store.changes_since(from)?;
                // The replay may include writes not yet flushed: make them durable first.
                watch.flush(store)?;
                let mut out = Vec::new();
                for change in changes {
                    for (key, first, last) in change.series {
                        if !replay_filter.matches(&key) {
                            continue;
                        }
                        let points: Vec<tradepact_store::Point> = store
                            .read(&key, first.ordinal, last.ordinal)?
                            .into_iter()
                            .map(|p| tradepact_store::Point {
                                ordinal: p.period.ordinal,
                                value: p.value,
                                source: p.source,
                            })
                            .collect();
                        out.push(pb::WatchSeriesResponse {
                            key: Some(convert::series_key_pb(&key)),
                            points: convert::points_pb(&points, key.frequency),
                            sequence: change.sequence,
                        });
                    }
                }
                Ok((out, current))
            })
            .await?
        } else {
            (Vec::new(), self.store.sequence())
        };
        // A bounded queue: a watcher that falls behind is dropped (it resumes from its
        // sequence); no writer and no other watcher waits for it.
        let (out, stream) = tradepact_rpc::outbox::outbox(
            tradepact_rpc::outbox::MAX_MESSAGES,
            tradepact_rpc::outbox::MAX_BYTES,
        );
        tokio::spawn(async move {
            let (replayed, replayed_until) = replay;
            let mut delivered = replayed_until;
            // The catch-up may wait for room: it delays only this watch.
            for response in replayed {
                if out.send(response).await.is_err() {
                    return;
                }
            }
            let behind = |delivered: u64, why: &str| {
                Status::resource_exhausted(format!(
                    "watcher {why} and was dropped; watch again with from_sequence = {}",
                    delivered + 1
                ))
            };
            loop {
                let msg = tokio::select! {
                    msg = written.recv() => msg,
                    () = out.closed() => return, // the client went away
                };
                match msg {
                    Ok(WatchMsg::Written(seq, _)) if seq <= replayed_until => {}
                    Ok(WatchMsg::Written(seq, batch)) => {
                        for s in batch.iter().filter(|s| filter.matches(&s.key)) {
                            let response = pb::WatchSeriesResponse {
                                key: Some(convert::series_key_pb(&s.key)),
                                points: convert::points_pb(&s.points, s.key.frequency),
                                sequence: seq,
                            };
                            match out.try_send(response) {
                                Ok(()) => {}
                                Err(tradepact_rpc::outbox::Refused::Closed) => return,
                                Err(tradepact_rpc::outbox::Refused::Full) => {
                                    out.fail(behind(delivered, "fell behind (its queue is full: it did not read its stream)"));
                                    return;
                                }
                            }
                        }
                        delivered = seq;
                    }
                    Ok(WatchMsg::Shutdown) | Err(broadcast::error::RecvError::Closed) => return,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        out.fail(behind(delivered, &format!("fell {n} writes behind")));
                        return;
                    }
                }
            }
        });
        Ok(Response::new(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradepact_store::{Country, Flow, Frequency, Kind, Point, Product};

    fn batch(year: u32) -> Vec<SeriesPoints> {
        vec![SeriesPoints {
            key: SeriesKey {
                reporter: Country::parse("USA").unwrap(),
                partner: Country::parse("KOR").unwrap(),
                flow: Flow::Export,
                kind: Kind::Goods,
                product: Product::total(),
                frequency: Frequency::Annual,
            },
            points: vec![Point {
                ordinal: year,
                value: 1e9,
                source: "test".into(),
            }],
        }]
    }

    fn write(store: &Store, watch: &Watchers, year: u32) -> u64 {
        let batch = Arc::new(batch(year));
        store
            .write_then(&batch, |seq| watch.applied(seq, &batch))
            .unwrap()
            .sequence
    }

    fn received(rx: &mut broadcast::Receiver<WatchMsg>) -> Vec<u64> {
        let mut out = Vec::new();
        while let Ok(msg) = rx.try_recv() {
            if let WatchMsg::Written(seq, _) = msg {
                out.push(seq);
            }
        }
        out
    }

    #[test]
    fn watchers_see_writes_only_once_flushed_and_in_write_order() {
        let store = Store::temporary().unwrap();
        let watch = Watchers::new();
        let mut rx = watch.sender.subscribe();
        let (a, b) = (write(&store, &watch, 2016), write(&store, &watch, 2017));
        assert!(a < b);
        assert_eq!(
            received(&mut rx),
            Vec::<u64>::new(),
            "applied, not yet durable"
        );
        watch.durable(a);
        assert_eq!(received(&mut rx), vec![a]);
        let c = write(&store, &watch, 2018);
        watch.flush(&store).unwrap();
        assert_eq!(received(&mut rx), vec![b, c]);
    }

    #[test]
    fn nothing_is_held_for_writes_nobody_watches() {
        let store = Store::temporary().unwrap();
        let watch = Watchers::new();
        write(&store, &watch, 2016);
        assert!(watch.pending().is_empty());
    }
}

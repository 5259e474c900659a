//! Cluster mode's [`WriteLog`]: the log of record is a NATS JetStream stream
//! (`TRADEPACT_DATA`, one subject, file storage, replicated on a quorum), and this node's sled
//! store is a view of it.
//!
//! A write is published to the stream as one message (one request stays one atomic message:
//! the stream's largest message is the service's largest request, and a write that encodes
//! larger is refused before it is published, saying so) and answered once JetStream has
//! acknowledged it **and** this node has applied it, so the counts it answers are true and a
//! read on this node after it sees it. Every node applies the stream in order: one message
//! at a time, with its stream sequence recorded as the store's sequence in the same atomic
//! batch ([`Store::write_at`]), so that after a crash the node resumes after the last message
//! it applied, never applying one twice nor skipping one. Write sequences (answered by
//! writes, resumed from by `WatchSeries`) are stream sequences; watchers are told of a write
//! once it is applied here (it is durable in the stream by then).
//!
//! A read may ask to see at least a sequence (header `tradepact-min-sequence`, see
//! [`crate::at_least`]): read-your-writes across nodes. A new node starts from the newest
//! snapshot ([`super::snapshot`]) rather than the stream's first message; a store that ends
//! before the stream's first message (the messages before a snapshot removed) cannot catch up
//! by applying, and says so.
//!
//! Messages, binary (the store's own key encoding for series keys): `W` then the release
//! (`0`, or `1` and label, date and source), a table of the batch's sources, and each series
//! with its points (period ordinal, value, source index); `D` then a series key (a delete);
//! `G` then a user's country group (name, description, members with their years).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use tokio::sync::watch;
use tradepact_model::reference::{GroupInfo, Membership};
use tradepact_model::{Country, Release};
use tradepact_rpc::deadline::Deadline;
use tradepact_rpc::nats::{until_ready, NatsConfig, Published};
use tradepact_store::{Error, Point, SeriesKey, SeriesPoints, Store, WriteSummary};

use super::watch::Watchers;
use super::{Batch, WriteLog};

/// The stream's name.
pub const STREAM: &str = "TRADEPACT_DATA";
/// Its one subject.
const SUBJECT: &str = "tradepact.data";
/// How long a write may wait for JetStream (retries while the cluster elects leaders
/// included) and then for this node to apply it, at most (less when its call's deadline is
/// sooner).
const CALL: Duration = Duration::from_secs(20);
/// A quiet follower checks after this long whether the stream went on without it.
const IDLE_CHECK: Duration = Duration::from_secs(2);
/// Results of applied messages kept for the writers waiting on them.
const KEPT_RESULTS: usize = 4096;

/// What applying a message gave.
#[derive(Clone, Debug)]
enum Applied {
    Write(WriteSummary),
    Delete(u64),
    Group,
    Failed(String),
}

/// The data stream's configuration: messages up to the service's largest request.
pub(crate) fn stream_config(
    config: &NatsConfig,
    max_message_bytes: usize,
    max_payload: usize,
) -> stream::Config {
    stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![SUBJECT.to_owned()],
        storage: stream::StorageType::File,
        num_replicas: config.replicas.max(1),
        max_message_size: i32::try_from(max_message_bytes.max(max_payload)).unwrap_or(i32::MAX),
        ..Default::default()
    }
}

/// The data log in JetStream; see the module doc.
pub struct ClusterLog {
    handle: tokio::runtime::Handle,
    js: jetstream::Context,
    stream: stream::Stream,
    store: Arc<Store>,
    /// The last stream sequence this node has applied.
    applied: watch::Sender<u64>,
    results: Mutex<HashMap<u64, Applied>>,
    /// The largest message the servers take.
    max_payload: usize,
    instance: u64,
    nonce: AtomicU64,
    /// Bytes of the messages applied since this node started (what a snapshot would spare).
    applied_bytes: Arc<AtomicU64>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("{what}: {e}"))
}

impl ClusterLog {
    /// Connects, opens (or creates) the stream with messages up to `max_message_bytes`.
    pub async fn open(
        config: &NatsConfig,
        store: Arc<Store>,
        max_message_bytes: usize,
    ) -> anyhow::Result<Arc<ClusterLog>> {
        let client = tradepact_rpc::nats::connect(config, "tradepact-data").await?;
        let max_payload = client.server_info().max_payload;
        let mut js = jetstream::new(client);
        // An acknowledgement lost with a node is asked for again soon (retried within CALL).
        js.set_timeout(tradepact_rpc::nats::REQUEST_TIMEOUT);
        let stream_config = stream_config(config, max_message_bytes, max_payload);
        let (mut stream, last) = tradepact_rpc::nats::open_stream(&js, stream_config).await?;
        // A store that has applied more than the stream holds was not made by this stream (a
        // single node's store, say): applying the stream to it would skip writes.
        anyhow::ensure!(
            store.sequence() <= last,
            "the store has writes up to sequence {} but the stream {STREAM} ends at {last}: start a cluster node on an empty data directory or on one this cluster made",
            store.sequence()
        );
        // Nor can a store catch up that ends before the stream's first message (the messages
        // before a snapshot removed).
        let first = stream.info().await?.state.first_sequence;
        anyhow::ensure!(
            store.sequence() + 1 >= first,
            "the store has writes up to sequence {} but the stream {STREAM} begins at {first} (the messages before a snapshot were removed): start this node again, which sets its store aside and restores the newest snapshot",
            store.sequence()
        );
        let (applied, _) = watch::channel(store.sequence());
        Ok(Arc::new(ClusterLog {
            handle: tokio::runtime::Handle::current(),
            js,
            stream,
            store,
            applied,
            results: Mutex::new(HashMap::new()),
            max_payload,
            instance: tradepact_rpc::nats::instance_id(),
            nonce: AtomicU64::new(0),
            applied_bytes: Arc::default(),
        }))
    }

    /// Bytes of the messages applied since this node started, as they grow.
    pub fn applied_bytes(&self) -> Arc<AtomicU64> {
        self.applied_bytes.clone()
    }

    /// The last sequence applied here, as it changes.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Applies the stream from the message after the store's sequence on, for ever (telling
    /// `watchers` of each write).
    pub async fn apply_stream(self: Arc<Self>, watchers: Arc<Watchers>) {
        loop {
            let from = self.store.sequence() + 1;
            let config = consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                },
                ..Default::default()
            };
            let messages = until_ready("following the data stream", || async {
                let consumer = self.stream.create_consumer(config.clone()).await?;
                Ok(consumer.messages().await?)
            })
            .await;
            let mut messages = match messages {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = %e, "cannot follow the data stream; retrying");
                    continue;
                }
            };
            loop {
                let message = match tokio::time::timeout(IDLE_CHECK, messages.next()).await {
                    Ok(Some(Ok(m))) => m,
                    Ok(Some(Err(e))) => {
                        tracing::warn!(error = %e, "following the data stream");
                        continue;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        // Quiet: is the stream ahead of this node (a consumer lost with a node
                        // that stopped)? Then follow it again from the store's sequence.
                        let mut stream = self.stream.clone();
                        match stream.info().await {
                            Ok(info) if info.state.last_sequence > self.store.sequence() => {
                                tracing::info!(
                                    "the data stream is ahead of this node: following it again"
                                );
                                break;
                            }
                            _ => continue,
                        }
                    }
                };
                let Ok(info) = message.info() else { continue };
                let seq = info.stream_sequence;
                if seq > self.store.sequence() + 1 {
                    // The messages between were removed from the stream (after a snapshot):
                    // applying this one would skip them.
                    tracing::error!(
                        applied = self.store.sequence(),
                        next = seq,
                        "the data stream no longer holds the messages this node needs next (removed after a snapshot): restart the node, which sets its store aside and restores the newest snapshot"
                    );
                    tokio::time::sleep(IDLE_CHECK).await;
                    break;
                }
                let this = self.clone();
                let watchers = watchers.clone();
                let payload = message.payload.clone();
                let applied =
                    tokio::task::spawn_blocking(move || this.apply(seq, &payload, &watchers)).await;
                if !matches!(applied, Ok(true)) {
                    // Not applied (a full disk): never skipped; tried again from it after a
                    // pause, the node reporting itself behind meanwhile.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }

    /// Applies message `seq` to the store (once: a message at or below the store's sequence
    /// was applied before a crash or by another path); whether it is applied.
    fn apply(&self, seq: u64, payload: &[u8], watchers: &Watchers) -> bool {
        self.applied_bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        let applied = match decode(payload) {
            Ok(Message::Write(batch)) => {
                let batch = Arc::new(batch);
                let written =
                    self.store
                        .write_at(&batch.series, batch.release.as_ref(), seq, |s| {
                            watchers.applied(0, s, &batch)
                        });
                watchers.durable(0, seq, |_, _| false);
                match written {
                    Ok(summary) => Applied::Write(summary),
                    Err(e) => Applied::Failed(e.to_string()),
                }
            }
            Ok(Message::Delete(key)) => match self.store.delete_at(&key, seq) {
                Ok(n) => Applied::Delete(n),
                Err(e) => Applied::Failed(e.to_string()),
            },
            // Groups live apart from the series: stored, then the sequence (a crash between
            // stores the same group again, which changes nothing).
            Ok(Message::Group(group)) => match self
                .store
                .define_group(&group)
                .and_then(|()| self.store.write_at(&[], None, seq, |_| {}))
            {
                Ok(_) => Applied::Group,
                Err(e) => Applied::Failed(e.to_string()),
            },
            Err(e) => {
                tracing::error!(seq, error = %e, "a data message that does not decode: skipped");
                let _ = self.store.write_at(&[], None, seq, |_| {});
                Applied::Failed(e)
            }
        };
        let done = !matches!(applied, Applied::Failed(_)) || self.store.sequence() >= seq;
        if let Applied::Failed(e) = &applied {
            // The store refused what the stream holds (a full disk): not skipped.
            tracing::error!(seq, error = %e, "applying a data message failed; will retry");
        }
        {
            let mut results = self.results.lock().unwrap_or_else(|p| p.into_inner());
            results.insert(seq, applied);
            if results.len() > KEPT_RESULTS {
                let oldest = seq.saturating_sub(KEPT_RESULTS as u64);
                results.retain(|s, _| *s > oldest);
            }
        }
        // Wakes the writers waiting, failed or not.
        self.applied.send_replace(self.store.sequence());
        done
    }

    /// Publishes `payload`, retried while the cluster recovers under one message id (stored
    /// once) for up to `budget`; its stream sequence.
    async fn publish(&self, payload: Vec<u8>, budget: Duration) -> Result<u64, Error> {
        if payload.len() > self.max_payload {
            return Err(Error::Invalid(vec![tradepact_model::Violation {
                field: "series".to_owned(),
                description: format!(
                    "this write takes {} bytes, more than the cluster's largest message ({} bytes): split it into several writes",
                    payload.len(),
                    self.max_payload
                ),
            }]));
        }
        let nonce = self.nonce.fetch_add(1, Ordering::Relaxed);
        let mut headers = async_nats::HeaderMap::new();
        let msg_id = format!("{:x}-{nonce}", self.instance);
        headers.insert("Nats-Msg-Id", msg_id.as_str());
        let published = tradepact_rpc::nats::publish(
            &self.js,
            SUBJECT.to_owned(),
            headers,
            payload.into(),
            budget,
        );
        match published.await {
            Published::At(seq) => Ok(seq),
            Published::Refused(e) => Err(unavailable("writing to JetStream", e)),
            Published::WrongLastSequence => Err(unavailable("writing to JetStream", "refused")),
            Published::Unknown(e) => Err(unavailable(
                "writing to JetStream (the write may or may not be recorded: read before retrying)",
                e,
            )),
        }
    }

    /// Publishes `payload` (unless this node's store refuses writes now) and waits until this
    /// node has applied it: what applying gave. Gives up with `UNAVAILABLE` at three quarters
    /// of the time to `deadline` (the answer must reach the caller in time), or after [`CALL`].
    async fn record(&self, payload: Vec<u8>, deadline: Deadline) -> Result<Applied, Error> {
        // A node that cannot apply (a full disk) does not publish what it could not answer
        // for: the caller is told nothing was written, and may write through another node.
        self.store.refuse_while_failing()?;
        let budget = tradepact_rpc::deadline::budget(deadline, CALL);
        let until = tokio::time::Instant::now() + budget;
        let seq = self.publish(payload, budget).await?;
        let result = || {
            let results = self.results.lock().unwrap_or_else(|p| p.into_inner());
            results.get(&seq).cloned()
        };
        let mut applied = self.applied();
        let failed = || matches!(result(), Some(Applied::Failed(_)));
        let waited = applied.wait_for(|a| *a >= seq || failed());
        let reached = matches!(tokio::time::timeout_at(until, waited).await, Ok(Ok(_)));
        if !reached {
            return Err(unavailable(
                "applying a write",
                format!("write {seq} is in the stream but this node has not applied it in time; it will"),
            ));
        }
        Ok(result().unwrap_or(Applied::Write(WriteSummary {
            sequence: seq,
            ..Default::default()
        })))
    }

    fn wait<F: std::future::Future>(&self, f: F) -> F::Output {
        tokio::task::block_in_place(|| self.handle.block_on(f))
    }
}

impl WriteLog for ClusterLog {
    fn append(
        &self,
        batch: &Batch,
        _applied: &mut dyn FnMut(u64),
        deadline: Deadline,
    ) -> tradepact_store::Result<WriteSummary> {
        // Watchers are told by the node's applier, of every node's writes.
        match self.wait(self.record(encode_write(batch), deadline))? {
            Applied::Write(summary) => Ok(summary),
            Applied::Delete(_) | Applied::Group => {
                Err(Error::Corrupt("a write applied as something else".into()))
            }
            Applied::Failed(e) => Err(unavailable(
                "applying a write",
                format!("it is recorded in the stream, but this node could not apply it ({e}); it will retry"),
            )),
        }
    }

    fn delete(&self, key: &SeriesKey, deadline: Deadline) -> tradepact_store::Result<u64> {
        // Recorded even when this node does not hold the series yet; a series with no points
        // when the stream reaches the delete did not exist.
        match self.wait(self.record(encode_delete(key), deadline))? {
            Applied::Delete(0) => Err(Error::NotFound(format!("no series {key}"))),
            Applied::Delete(n) => Ok(n),
            Applied::Write(_) | Applied::Group => {
                Err(Error::Corrupt("a delete applied as something else".into()))
            }
            Applied::Failed(e) => Err(unavailable(
                "applying a delete",
                format!("it is recorded in the stream, but this node could not apply it ({e}); it will retry"),
            )),
        }
    }

    fn flush(&self) -> tradepact_store::Result<u64> {
        // What is applied is in the stream (stored by a quorum, fsynced): durable.
        Ok(*self.applied.borrow())
    }

    fn define_group(&self, group: &GroupInfo, deadline: Deadline) -> tradepact_store::Result<()> {
        match self.wait(self.record(encode_group(group), deadline))? {
            Applied::Group => Ok(()),
            Applied::Failed(e) => Err(unavailable(
                "applying a group",
                format!("it is recorded in the stream, but this node could not apply it ({e}); it will retry"),
            )),
            _ => Err(Error::Corrupt("a group applied as something else".into())),
        }
    }
}

/// A message of the stream.
enum Message {
    Write(Batch),
    Delete(SeriesKey),
    Group(GroupInfo),
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn encode_write(batch: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + batch.points() * 18);
    out.push(b'W');
    match &batch.release {
        None => out.push(0),
        Some(r) => {
            out.push(1);
            put_bytes(&mut out, r.label.as_bytes());
            put_bytes(&mut out, r.date.to_string().as_bytes());
            put_bytes(&mut out, r.source.as_bytes());
        }
    }
    let mut sources: Vec<&str> = Vec::new();
    let mut index: HashMap<&str, u32> = HashMap::new();
    for p in batch.series.iter().flat_map(|s| &s.points) {
        index.entry(&p.source).or_insert_with(|| {
            sources.push(&p.source);
            sources.len() as u32 - 1
        });
    }
    out.extend_from_slice(&(sources.len() as u32).to_be_bytes());
    for s in &sources {
        put_bytes(&mut out, s.as_bytes());
    }
    out.extend_from_slice(&(batch.series.len() as u32).to_be_bytes());
    for series in &batch.series {
        put_bytes(&mut out, &series.key.encode());
        out.extend_from_slice(&(series.points.len() as u32).to_be_bytes());
        for p in &series.points {
            out.extend_from_slice(&p.ordinal.to_be_bytes());
            out.extend_from_slice(&p.value.to_bits().to_be_bytes());
            out.extend_from_slice(&index[&*p.source].to_be_bytes());
        }
    }
    out
}

fn encode_group(group: &GroupInfo) -> Vec<u8> {
    let mut out = vec![b'G'];
    put_bytes(&mut out, group.name.as_bytes());
    put_bytes(&mut out, group.description.as_bytes());
    out.extend_from_slice(&(group.members.len() as u32).to_be_bytes());
    for m in &group.members {
        put_bytes(&mut out, m.code.as_str().as_bytes());
        out.extend_from_slice(&m.from.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&m.until.unwrap_or(0).to_be_bytes());
    }
    out
}

fn encode_delete(key: &SeriesKey) -> Vec<u8> {
    let mut out = vec![b'D'];
    put_bytes(&mut out, &key.encode());
    out
}

/// Reads a message back (each part checked: a message that does not decode is an error).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("a data message ends early".to_owned());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b: [u8; 2] = self.take(2)?.try_into().map_err(|_| "u16")?;
        Ok(u16::from_be_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| "u32")?;
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| "u64")?;
        Ok(u64::from_be_bytes(b))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn text(&mut self) -> Result<&'a str, String> {
        std::str::from_utf8(self.bytes()?).map_err(|e| e.to_string())
    }

    fn key(&mut self) -> Result<SeriesKey, String> {
        SeriesKey::decode(self.bytes()?).ok_or_else(|| "a series key that does not decode".into())
    }
}

fn decode(payload: &[u8]) -> Result<Message, String> {
    let mut r = Reader(payload);
    match r.u8()? {
        b'D' => Ok(Message::Delete(r.key()?)),
        b'G' => {
            let name = r.text()?.to_owned();
            let description = r.text()?.to_owned();
            let members = (0..r.u32()?)
                .map(|_| {
                    let code = r.text()?;
                    let code = Country::of_shape(code).ok_or("a member code of the wrong shape")?;
                    let year = |y: u16| (y != 0).then_some(y);
                    Ok(Membership {
                        code,
                        from: year(r.u16()?),
                        until: year(r.u16()?),
                    })
                })
                .collect::<Result<_, String>>()?;
            Ok(Message::Group(GroupInfo {
                name,
                description,
                members,
                user_defined: true,
            }))
        }
        b'W' => {
            let release = match r.u8()? {
                0 => None,
                _ => {
                    let label = r.text()?.to_owned();
                    let date = tradepact_model::release::parse_date(r.text()?)?;
                    let source = r.text()?.to_owned();
                    Some(Release {
                        label,
                        date,
                        source,
                    })
                }
            };
            let sources: Vec<Arc<str>> = (0..r.u32()?)
                .map(|_| r.text().map(Arc::from))
                .collect::<Result<_, _>>()?;
            let mut series = Vec::new();
            for _ in 0..r.u32()? {
                let key = r.key()?;
                let points = (0..r.u32()?)
                    .map(|_| {
                        let ordinal = r.u32()?;
                        let value = f64::from_bits(r.u64()?);
                        let source = sources
                            .get(r.u32()? as usize)
                            .ok_or("a point's source outside the table")?
                            .clone();
                        Ok(Point {
                            ordinal,
                            value,
                            source,
                        })
                    })
                    .collect::<Result<_, String>>()?;
                series.push(SeriesPoints { key, points });
            }
            Ok(Message::Write(Batch { series, release }))
        }
        other => Err(format!("a data message of unknown kind {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradepact_store::model::{Country, Flow, Frequency, Kind, Product};

    #[test]
    fn messages_read_back_as_written() {
        let key = SeriesKey {
            reporter: Country::parse("USA").unwrap(),
            partner: Country::parse("KOR").unwrap(),
            flow: Flow::Export,
            kind: Kind::Goods,
            product: Product::total(),
            frequency: Frequency::Annual,
            measure: Default::default(),
        };
        let point = |ordinal, value: f64, source: &str| Point {
            ordinal,
            value,
            source: source.into(),
        };
        let batch = Batch {
            series: vec![SeriesPoints {
                key: key.clone(),
                points: vec![
                    point(2016, 1.5e9, "a"),
                    point(2017, -0.0, "b"),
                    point(2018, 2.0, "a"),
                ],
            }],
            release: Some(Release {
                label: "census-2019".into(),
                date: tradepact_model::release::parse_date("2019-02-06").unwrap(),
                source: "FT-900".into(),
            }),
        };
        match decode(&encode_write(&batch)).unwrap() {
            Message::Write(back) => assert_eq!(back, batch),
            _ => panic!("a write"),
        }
        match decode(&encode_delete(&key)).unwrap() {
            Message::Delete(back) => assert_eq!(back, key),
            _ => panic!("a delete"),
        }
        let group = GroupInfo {
            name: "MINE".into(),
            description: "two".into(),
            members: vec![
                Membership {
                    code: Country::of_shape("KOR").unwrap(),
                    from: Some(2012),
                    until: None,
                },
                Membership {
                    code: Country::of_shape("JPN").unwrap(),
                    from: None,
                    until: Some(2020),
                },
            ],
            user_defined: true,
        };
        match decode(&encode_group(&group)).unwrap() {
            Message::Group(back) => assert_eq!(back, group),
            _ => panic!("a group"),
        }
        let whole = encode_write(&batch);
        for cut in 0..whole.len() {
            assert!(decode(&whole[..cut]).is_err(), "cut at {cut}");
        }
    }
}

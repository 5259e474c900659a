//! The event log in a NATS JetStream stream: cluster mode's [`EventStore`].
//!
//! One stream (`TRADEPACT_NEGOTIATIONS`, file storage, replicated on a quorum of the cluster),
//! one subject per negotiation (`tradepact.neg.<id>`), one message per creation or append, so
//! that what one call records is one atomic message:
//! `{"meta": …, "first": 0, "events": […]}` for a creation, `{"first": n, "events": […]}` for
//! an append of events `n..`.
//!
//! Concurrency between replicas is JetStream's subject-level optimistic concurrency: every
//! publish carries `Nats-Expected-Last-Subject-Sequence`, the stream sequence of the last
//! message this replica has seen on the subject (0 for a creation). A replica that has not seen
//! another's append is refused ([`LogError::Conflict`], answered `ABORTED`): exactly one of two
//! concurrent appends to one negotiation is recorded. Ids come from the same check: a creation
//! takes the next id this replica knows to be free, and a creation refused because another
//! replica took that id takes the next one.
//!
//! What acknowledged means: JetStream acknowledges a publish once a quorum of the stream's
//! replicas has stored it; the servers are to run with `sync_interval: always` (each stored
//! message fsynced before it counts), as the cluster script configures them, so that an
//! acknowledged event survives the loss of power of every node (the single-node promise is
//! the same: fsync before the answer).
//!
//! Replicas follow the stream: [`JetStreamLog::follow`] delivers every message recorded after
//! the log opened (by any replica, this one included), for the application to apply to the
//! negotiations it holds and to tell its watchers.
//!
//! The [`EventStore`] methods are synchronous (the application calls them on the blocking
//! pool); they run the client's futures on the runtime the log was opened in.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tradepact_bargain::Event;
use tradepact_rpc::deadline::Deadline;

use tradepact_rpc::nats::{until_ready, NatsConfig, Published};

use super::log::{public_id, stored_size, EventStore, LogError, Meta};

/// The stream's name.
pub const STREAM: &str = "TRADEPACT_NEGOTIATIONS";
/// The subjects' prefix: negotiation `id` is `tradepact.neg.<id>`.
const PREFIX: &str = "tradepact.neg.";
/// Most bytes one message may take (one creation or append; the service bounds a negotiation's
/// creation to 1 MiB and its whole log to 16 MiB).
pub const MAX_MESSAGE_BYTES: i32 = 8 << 20;
/// Message ends remembered per negotiation (see [`JetStreamLog::saw`]).
const KEPT_ENDS: usize = 16;
/// How long one call to JetStream may take, retries included (a stopped leader is replaced
/// in seconds).
const CALL: Duration = Duration::from_secs(20);
/// A quiet follower checks after this long whether the stream went on without it.
const IDLE_CHECK: Duration = Duration::from_secs(2);
/// Pause between read retries while the cluster recovers (a leader election takes seconds).
const RETRY: Duration = Duration::from_millis(200);

/// One message of the stream.
#[derive(Serialize, Deserialize)]
struct Record {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    meta: Option<Meta>,
    first: u64,
    events: Vec<Event>,
}

/// A message recorded on the stream, as followers receive it.
pub struct Followed {
    /// The negotiation.
    pub id: u64,
    /// Its metadata, for a creation.
    pub meta: Option<Meta>,
    /// The number of its first event.
    pub first: u64,
    /// The events.
    pub events: Vec<Event>,
}

/// The event log in JetStream.
pub struct JetStreamLog {
    handle: tokio::runtime::Handle,
    js: jetstream::Context,
    stream: stream::Stream,
    /// Per negotiation, the stream sequences of the last messages seen on its subject, by the
    /// number of events the negotiation has after each: an append after event `n` expects
    /// the message that ended at `n` to be the subject's last.
    ends: Mutex<HashMap<u64, BTreeMap<u64, u64>>>,
    /// The highest id known.
    last_id: AtomicU64,
    /// The stream's last sequence when the log opened: following starts after it.
    opened_at: u64,
    /// The largest message the servers take.
    max_payload: usize,
    /// A random number of this log instance, and a counter: message ids.
    instance: u64,
    nonce: AtomicU64,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(format!("{what}: {e}"))
}

fn subject(id: u64) -> String {
    format!("{PREFIX}{id}")
}

fn id_of(subject: &str) -> Option<u64> {
    subject.strip_prefix(PREFIX)?.parse().ok()
}

impl JetStreamLog {
    /// Connects to the cluster and opens (or creates) the stream. Creating it is retried for
    /// a while: a new cluster elects its JetStream leader a few seconds after it starts.
    pub async fn open(config: &NatsConfig) -> anyhow::Result<JetStreamLog> {
        let client = tradepact_rpc::nats::connect(config, "tradepact-negotiation").await?;
        let max_payload = client.server_info().max_payload;
        let mut js = jetstream::new(client);
        // An acknowledgement lost with a node is asked for again soon (retried within CALL).
        js.set_timeout(tradepact_rpc::nats::REQUEST_TIMEOUT);
        let stream_config = stream::Config {
            name: STREAM.to_owned(),
            subjects: vec![format!("{PREFIX}*")],
            storage: stream::StorageType::File,
            num_replicas: config.replicas.max(1),
            max_message_size: MAX_MESSAGE_BYTES,
            allow_direct: true,
            ..Default::default()
        };
        // The stream, and its last sequence: taken before the listing, so that a message
        // recorded in between is followed, not lost.
        let (stream, opened_at) = tradepact_rpc::nats::open_stream(&js, stream_config).await?;
        let log = JetStreamLog {
            handle: tokio::runtime::Handle::current(),
            js,
            stream,
            ends: Mutex::new(HashMap::new()),
            last_id: AtomicU64::new(0),
            opened_at,
            max_payload,
            instance: tradepact_rpc::nats::instance_id(),
            nonce: AtomicU64::new(0),
        };
        // The highest id is learnt as the service reads the log back (`for_each`) and follows it.
        Ok(log)
    }

    /// Every negotiation's id and message count.
    async fn subjects(&self) -> Result<HashMap<u64, usize>, LogError> {
        let stream = self.stream.clone();
        let mut subjects = (stream.info_with_subjects(format!("{PREFIX}*")).await)
            .map_err(|e| unavailable("listing negotiations", e))?;
        let mut out = HashMap::new();
        while let Some(item) = subjects.next().await {
            let (subject, count) = item.map_err(|e| unavailable("listing negotiations", e))?;
            if let Some(id) = id_of(&subject) {
                out.insert(id, count);
            }
        }
        Ok(out)
    }

    /// Records that message `seq` of negotiation `id` left it with `end` events.
    fn saw(&self, id: u64, end: u64, seq: u64) {
        let mut ends = self.ends.lock().unwrap_or_else(|p| p.into_inner());
        let known = ends.entry(id).or_default();
        known.insert(end, seq);
        // An append follows one of the last states a replica can hold: a few are enough.
        while known.len() > KEPT_ENDS {
            known.pop_first();
        }
        self.last_id.fetch_max(id, Ordering::AcqRel);
    }

    /// The sequence of the message after which negotiation `id` had `end` events (0 for none:
    /// a creation), if this replica saw it.
    fn sequence_at(&self, id: u64, end: u64) -> Option<u64> {
        if end == 0 {
            return Some(0);
        }
        let ends = self.ends.lock().unwrap_or_else(|p| p.into_inner());
        ends.get(&id)?.get(&end).copied()
    }

    /// Publishes one message expecting the subject's last to be `expected`; retried while the
    /// cluster elects a leader or the connection moves to another node (within `budget`, at
    /// most [`CALL`]), under one message id, so that JetStream stores a retried message once.
    async fn publish(
        &self,
        id: u64,
        expected: u64,
        end: u64,
        payload: Vec<u8>,
        budget: Duration,
    ) -> Result<u64, LogError> {
        if payload.len() > self.max_payload {
            return Err(LogError::TooLarge(format!(
                "these events take {} bytes, more than the cluster's largest message ({} bytes)",
                payload.len(),
                self.max_payload
            )));
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            expected.to_string().as_str(),
        );
        // Unique to this publish (not only to the event numbers: another replica's message
        // for the same events must not pass for this one's duplicate).
        let nonce = self.nonce.fetch_add(1, Ordering::Relaxed);
        let msg_id = format!("{id}-{end}-{:x}-{nonce}", self.instance);
        headers.insert("Nats-Msg-Id", msg_id.as_str());
        let published =
            tradepact_rpc::nats::publish(&self.js, subject(id), headers, payload.into(), budget);
        match published.await {
            Published::At(seq) => {
                self.saw(id, end, seq);
                Ok(seq)
            }
            Published::WrongLastSequence => Err(LogError::Conflict(format!(
                "{} was changed by another replica; read it again and retry",
                public_id(id)
            ))),
            Published::Refused(e) | Published::Unknown(e) => {
                Err(unavailable("recording in JetStream", e))
            }
        }
    }

    /// Reads a negotiation, retried like [`Self::publish`] while the cluster recovers.
    async fn read_retrying(&self, id: u64) -> Result<(Meta, Vec<Event>, usize), LogError> {
        let deadline = tokio::time::Instant::now() + CALL;
        loop {
            match self.read(id).await {
                Err(LogError::Unavailable(e)) if tokio::time::Instant::now() + RETRY < deadline => {
                    tracing::debug!(error = %e, "JetStream read; retrying");
                    tokio::time::sleep(RETRY).await;
                }
                done => return done,
            }
        }
    }

    /// Reads a negotiation's messages one by one through the stream's leader (so that a
    /// replica that lags behind it cannot hide the newest; a consumer would need the cluster's
    /// meta leader too).
    async fn read(&self, id: u64) -> Result<(Meta, Vec<Event>, usize), LogError> {
        let (mut meta, mut events) = (None, Vec::new());
        let mut next = 1;
        loop {
            let request = (self.stream.raw_message_builder())
                .next_by_subject(subject(id))
                .sequence(next);
            let message = match tokio::time::timeout(CALL, request.send()).await {
                Ok(Ok(m)) => m,
                Ok(Err(e)) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => break,
                Ok(Err(e)) => return Err(unavailable("reading a negotiation", e)),
                Err(_) => return Err(unavailable("reading a negotiation", "no answer in time")),
            };
            next = message.sequence + 1;
            let record: Record = serde_json::from_slice(&message.payload)
                .map_err(|e| LogError::Corrupt(e.to_string()))?;
            if record.first != events.len() as u64 || (record.meta.is_some() != events.is_empty()) {
                return Err(LogError::Corrupt(format!(
                    "{}: a message starts at event {} after {} events",
                    public_id(id),
                    record.first,
                    events.len()
                )));
            }
            self.saw(
                id,
                record.first + record.events.len() as u64,
                message.sequence,
            );
            if let Some(m) = record.meta {
                meta = Some(m);
            }
            events.extend(record.events);
        }
        let Some(meta) = meta else {
            return Err(LogError::Missing(id));
        };
        let bytes = stored_size(Some(&meta), &events);
        Ok((meta, events, bytes))
    }

    /// Every message recorded since the log opened, by any replica, in order (a bounded
    /// channel: a follower that falls behind slows the delivery, not the writers).
    pub async fn follow(self: &std::sync::Arc<Self>) -> anyhow::Result<mpsc::Receiver<Followed>> {
        // Started here, so that a cluster that cannot be followed stops the service at start.
        let first = self.messages_from(self.opened_at + 1).await?;
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(self.clone().follow_from(first, tx));
        Ok(rx)
    }

    /// An ordered consumer of every negotiation's messages from stream sequence `start`.
    async fn messages_from(&self, start: u64) -> anyhow::Result<consumer::pull::Ordered> {
        let config = consumer::pull::OrderedConfig {
            filter_subject: format!("{PREFIX}*"),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        };
        until_ready("following the stream", || async {
            let consumer = self.stream.create_consumer(config.clone()).await?;
            Ok(consumer.messages().await?)
        })
        .await
    }

    /// Sends what `messages` delivers to `tx`; when they end, or stay quiet while the stream
    /// went on (a consumer lost with a node), follows again from after the last one sent.
    async fn follow_from(
        self: std::sync::Arc<Self>,
        mut messages: consumer::pull::Ordered,
        tx: mpsc::Sender<Followed>,
    ) {
        let mut last = self.opened_at;
        loop {
            let message = match tokio::time::timeout(IDLE_CHECK, messages.next()).await {
                Ok(Some(Ok(m))) => Some(m),
                Ok(Some(Err(e))) => {
                    tracing::warn!(error = %e, "following the JetStream log");
                    continue;
                }
                // The consumer ended: follow again.
                Ok(None) => None,
                // Quiet: has the stream gone on without this replica?
                Err(_) => {
                    let mut stream = self.stream.clone();
                    match stream.info().await {
                        Ok(info) if info.state.last_sequence > last => None,
                        _ => continue,
                    }
                }
            };
            let Some(message) = message else {
                tracing::info!("following the JetStream log again from {}", last + 1);
                match self.messages_from(last + 1).await {
                    Ok(m) => messages = m,
                    Err(e) => tracing::error!(error = %e, "cannot follow the JetStream log"),
                }
                continue;
            };
            let Ok(info) = message.info() else { continue };
            let seq = info.stream_sequence;
            last = last.max(seq);
            let Some(id) = id_of(&message.subject) else {
                continue;
            };
            let record: Record = match serde_json::from_slice(&message.payload) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, id = %public_id(id), "a message that does not decode");
                    continue;
                }
            };
            self.saw(id, record.first + record.events.len() as u64, seq);
            let followed = Followed {
                id,
                meta: record.meta,
                first: record.first,
                events: record.events,
            };
            if tx.send(followed).await.is_err() {
                return;
            }
        }
    }

    /// Runs `f` to completion from the blocking pool or a worker thread.
    fn wait<F: std::future::Future>(&self, f: F) -> F::Output {
        tokio::task::block_in_place(|| self.handle.block_on(f))
    }
}

impl JetStreamLog {
    /// Every negotiation recorded up to the sequence the log opened at, read in one pass over
    /// the stream (one request a negotiation would take minutes at 10^5).
    /// Every message of every negotiation up to the stream's end at opening, by id, as
    /// received: checked for order (each starts where the one before ended) but not decoded,
    /// so that the pass holds the log's bytes, not its events (a quarter of the memory).
    async fn read_all(&self) -> Result<BTreeMap<u64, Vec<bytes::Bytes>>, LogError> {
        let mut all: BTreeMap<u64, (u64, Vec<bytes::Bytes>)> = BTreeMap::new();
        if self.opened_at == 0 {
            return Ok(BTreeMap::new());
        }
        let config = consumer::pull::OrderedConfig {
            filter_subject: format!("{PREFIX}*"),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        };
        let mut messages = until_ready("reading the stream", || async {
            let consumer = self.stream.create_consumer(config.clone()).await?;
            Ok(consumer.messages().await?)
        })
        .await
        .map_err(|e| unavailable("reading the stream", e))?;
        loop {
            let message = match tokio::time::timeout(CALL, messages.next()).await {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(unavailable("reading the stream", e)),
                Ok(None) | Err(_) => return Err(unavailable("reading the stream", "it stopped")),
            };
            let info = message
                .info()
                .map_err(|e| unavailable("reading the stream", e))?;
            let seq = info.stream_sequence;
            if let Some(id) = id_of(&message.subject) {
                let extent: Extent = serde_json::from_slice(&message.payload)
                    .map_err(|e| LogError::Corrupt(e.to_string()))?;
                let (end, payloads) = all.entry(id).or_default();
                if extent.first != *end {
                    return Err(LogError::Corrupt(format!(
                        "{}: a message starts at event {} after {} events",
                        public_id(id),
                        extent.first,
                        end
                    )));
                }
                *end += extent.events.0;
                self.saw(id, *end, seq);
                payloads.push(message.payload.clone());
            }
            if seq >= self.opened_at {
                return Ok(all.into_iter().map(|(id, (_, p))| (id, p)).collect());
            }
        }
    }
}

/// Where a record's events go, without decoding them: the first's number and how many.
#[derive(Deserialize)]
struct Extent {
    first: u64,
    events: Count,
}

/// The length of a JSON array, its elements skipped.
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        struct Counter;
        impl<'de> serde::de::Visitor<'de> for Counter {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of events")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Count, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
        }
        d.deserialize_seq(Counter)
    }
}

impl EventStore for JetStreamLog {
    fn for_each(
        &self,
        f: &mut dyn FnMut(u64, Meta, Vec<Event>, usize) -> Result<(), LogError>,
    ) -> Result<(), LogError> {
        // One negotiation decoded at a time.
        for (id, payloads) in self.wait(self.read_all())? {
            let (mut meta, mut events) = (None, Vec::new());
            for payload in payloads {
                let record: Record = serde_json::from_slice(&payload)
                    .map_err(|e| LogError::Corrupt(e.to_string()))?;
                if record.meta.is_some() {
                    meta = record.meta;
                }
                events.extend(record.events);
            }
            let meta =
                meta.ok_or_else(|| LogError::Corrupt(format!("no creation of {}", public_id(id))))?;
            let bytes = stored_size(Some(&meta), &events);
            f(id, meta, events, bytes)?;
        }
        Ok(())
    }

    fn ids(&self) -> Result<Vec<u64>, LogError> {
        let mut ids: Vec<u64> = self.wait(self.subjects())?.into_keys().collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn load_one(&self, id: u64) -> Result<(Meta, Vec<Event>, usize), LogError> {
        self.wait(self.read_retrying(id))
    }

    fn next_id(&self) -> Result<u64, LogError> {
        Ok(self.last_id.fetch_add(1, Ordering::AcqRel) + 1)
    }

    fn create(&self, meta: &Meta, events: &[Event], deadline: Deadline) -> Result<(), LogError> {
        let record = Record {
            meta: Some(meta.clone()),
            first: 0,
            events: events.to_vec(),
        };
        let payload = serde_json::to_vec(&record).expect("events and metadata serialise");
        let end = events.len() as u64;
        let budget = tradepact_rpc::deadline::budget(deadline, CALL);
        self.wait(self.publish(meta.id, 0, end, payload, budget))
            .map(|_| ())
    }

    fn append(
        &self,
        id: u64,
        first: u64,
        encoded: Vec<Vec<u8>>,
        deadline: Deadline,
    ) -> Result<(), LogError> {
        // The events as encoded (what they cost), inside one record.
        let mut payload = format!("{{\"first\":{first},\"events\":[").into_bytes();
        for (i, e) in encoded.iter().enumerate() {
            if i > 0 {
                payload.push(b',');
            }
            payload.extend_from_slice(e);
        }
        payload.extend_from_slice(b"]}");
        // The message that left the negotiation as the caller holds it must be the last:
        // unknown here (this replica never saw that state), the caller's copy is stale.
        let Some(expected) = self.sequence_at(id, first) else {
            return Err(LogError::Conflict(format!(
                "{} has changed since this replica read it",
                public_id(id)
            )));
        };
        let end = first + encoded.len() as u64;
        let budget = tradepact_rpc::deadline::budget(deadline, CALL);
        self.wait(self.publish(id, expected, end, payload, budget))
            .map(|_| ())
    }

    fn flush(&self) -> Result<(), LogError> {
        // Acknowledged publishes are stored by a quorum already.
        Ok(())
    }
}

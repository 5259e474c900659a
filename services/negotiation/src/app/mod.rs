//! The negotiation application: what the service does, with no gRPC in it. The handlers
//! (`service.rs`) convert a request, call one method here and convert its answer; failures
//! are [`Failure`]s, mapped to statuses in one place (`tradepact_rpc::status::of`).
//!
//! - [`Negotiations`]: the registry of negotiations (replayed from the [`log`], kept in memory
//!   within a budget), their creation and forks, and every command: decide (domain) → append
//!   to the event log with the expected event number → apply → tell watchers;
//! - [`analyze`]: the analysis of a negotiation through the one analysis [`cache`];
//! - [`simulate`]: simulations between strategies, and their recording as branches;
//! - [`watch`]: a negotiation's past events and live ones;
//! - [`impact`]: the trade impact of a package, from baselines the data service gives;
//! - [`heavy`]: the bounded runner of frontier, ZOPA and simulation computations;
//! - [`caller`]: what a caller may do and see of the parties' positions.

pub mod analyze;
pub mod cache;
pub mod caller;
pub mod heavy;
pub mod impact;
pub mod jetstream;
pub mod log;
pub mod mediate;
pub mod registry;
pub mod robust;
pub mod scenario;
pub mod seat;
pub mod simulate;
pub mod watch;

use std::sync::Arc;

use tokio::sync::{broadcast, Mutex, OwnedMutexGuard};
use tradepact_bargain::{Command, Event, Negotiation, OutcomeSpace, Package, PositionSpec};
use tradepact_model::{Failure, Outcome};
use tradepact_proto::negotiation_v1 as pb;

use cache::{AnalysisCache, Charge};
use heavy::{evaluation_job, Heavy, HeavyShutdown};
use log::{parse_id, EventStore, LogError, Meta};
use registry::Registry;

/// Most bytes a negotiation's creation may take (issues, options, labels, trade effects).
pub const MAX_CREATION_BYTES: usize = 1 << 20;
/// Most bytes a negotiation's log may grow to (its creation, positions, offers, responses).
pub const MAX_NEGOTIATION_BYTES: usize = 16 << 20;
/// Events a `WatchNegotiation` subscriber may fall behind before it is dropped.
pub const WATCH_BUFFER: usize = 1024;

/// One negotiation: its state, its events and what the log keeps besides.
pub struct Entry {
    /// The state, replayed from the events (with the one analysis kept of it, if any).
    pub negotiation: Negotiation,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// What the log keeps besides the events.
    pub meta: Meta,
    /// Bytes its metadata and events take (bounded by [`MAX_NEGOTIATION_BYTES`]).
    pub bytes: usize,
    /// Heap bytes its state, events and metadata hold (measured: see [`Entry::memory`]).
    pub(crate) resident: usize,
    /// What the negotiation's kept analysis holds of the cache's budget.
    pub(crate) charge: Option<Charge>,
}

/// Heap bytes per byte of the log when they cannot be measured (no counting allocator: library
/// tests), as measured for small negotiations.
const RESIDENT_PER_LOGGED_BYTE: usize = 4;

impl Entry {
    /// A negotiation as replayed from its events.
    pub fn new(meta: Meta, events: Vec<Event>, bytes: usize) -> Outcome<Entry> {
        let mut entry = Entry::unmeasured(meta, events, bytes)?;
        entry.resident = entry.measured();
        Ok(entry)
    }

    /// [`Entry::new`] without measuring its memory (replayed at start for its summary only,
    /// not kept).
    pub(crate) fn unmeasured(meta: Meta, events: Vec<Event>, bytes: usize) -> Outcome<Entry> {
        let negotiation = Negotiation::replay(&events).map_err(failure)?;
        Ok(Entry {
            negotiation,
            events,
            meta,
            bytes,
            resident: 0,
            charge: None,
        })
    }

    /// Heap bytes its state, events and metadata hold: measured by what a copy of each
    /// allocates (with the counting allocator), else estimated from its log bytes.
    fn measured(&self) -> usize {
        use tradepact_rpc::alloc::heap_bytes_of;
        let parts = heap_bytes_of(&self.negotiation)
            .zip(heap_bytes_of(&self.events))
            .zip(heap_bytes_of(&self.meta));
        std::mem::size_of::<Entry>()
            + match parts {
                Some(((state, events), meta)) => state + events + meta,
                None => self.bytes * RESIDENT_PER_LOGGED_BYTE,
            }
    }

    /// The memory the negotiation holds, what the registry's budget counts: its state,
    /// events and metadata, and its kept analysis.
    pub fn memory(&self) -> usize {
        self.resident + self.charge.as_ref().map_or(0, Charge::bytes)
    }

    /// Each party's position as it was last set (`None` for a party without one).
    pub fn position_specs(&self) -> Vec<Option<PositionSpec>> {
        let mut specs = vec![None; self.negotiation.parties.len()];
        for e in &self.events {
            if let Event::PositionSet { party, position } = e {
                if let Some(i) = self.negotiation.parties.iter().position(|p| p == party) {
                    specs[i] = Some(position.clone());
                }
            }
        }
        specs
    }
}

/// What the service tells watchers.
#[derive(Clone, Debug)]
pub enum Published {
    /// Event `number` of negotiation `id` was recorded.
    Event {
        /// Numeric id of the negotiation.
        id: u64,
        /// The event's number in its negotiation.
        number: u64,
        /// The event.
        event: Arc<Event>,
    },
    /// The server is going away.
    Shutdown,
}

/// Domain errors as failures: invalid input, illegal move, beyond a limit, stopped.
pub fn failure(e: tradepact_bargain::Error) -> Failure {
    use tradepact_bargain::Error;
    match e {
        Error::Invalid { field, description } => Failure::invalid(field, description),
        Error::Illegal(why) => Failure::FailedPrecondition(why),
        Error::TooLarge(why) => Failure::ResourceExhausted(why),
        Error::Cancelled(_) => Failure::Cancelled("the computation was stopped".to_owned()),
    }
}

/// Event-log errors as failures: a lost race is `Aborted`, an I/O error `Unavailable`.
pub fn log_failure(e: LogError) -> Failure {
    match e {
        LogError::Conflict(why) => Failure::Aborted(format!(
            "{why}: the negotiation changed meanwhile; read it again and retry"
        )),
        LogError::Storage(io) => {
            tracing::error!(error = %io, "event log I/O error");
            Failure::Unavailable("the event log is unavailable (I/O error logged on the server); nothing was recorded".to_owned())
        }
        LogError::TooLarge(why) => Failure::ResourceExhausted(format!(
            "{why}: nothing was recorded (raise the NATS servers' max_payload, or record less at once)"
        )),
        LogError::Unavailable(why) => {
            tracing::warn!(%why, "event log unavailable");
            Failure::Unavailable(format!(
                "{why}; it may not have been recorded: read the negotiation again before retrying"
            ))
        }
        LogError::Refused(why) => Failure::Unavailable(why),
        other => Failure::internal("event log", &other),
    }
}

/// Runs `f` on the blocking pool (event-log I/O with its fsync).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Outcome<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure::internal("event log task", &e))?
        .map_err(log_failure)
}

/// The negotiations of one service.
pub struct Negotiations {
    log: Arc<dyn EventStore>,
    registry: Registry,
    published: broadcast::Sender<Published>,
    /// The one budget of the analyses kept with the negotiations.
    pub(crate) cache: AnalysisCache,
    /// Runs the frontier, ZOPA and simulation computations, bounded.
    pub(crate) heavy: Heavy,
    /// Where impact estimates read their baselines.
    pub(crate) data: crate::data_source::DataSource,
    /// The seats that may be taken at once (`TakeSeat`), in all and by token.
    pub(crate) seats: seat::Seats,
}

/// Ends the `WatchNegotiation` streams and stops the heavy computations at shutdown.
#[derive(Clone)]
pub struct Closer(broadcast::Sender<Published>, Arc<HeavyShutdown>);

impl Closer {
    /// Tells every watcher the server is going away; stops every heavy computation.
    pub fn close(&self) {
        let _ = self.0.send(Published::Shutdown);
        self.1.shut_down();
    }
}

/// A negotiation as a call holds it, locked.
pub type Held = OwnedMutexGuard<Entry>;

impl Negotiations {
    /// Loads every negotiation of `log` (replaying its events), keeping at most
    /// `memory_budget` bytes of them in memory and `cache` for their analyses.
    pub fn load(
        log: Arc<dyn EventStore>,
        data: crate::data_source::DataSource,
        heavy: (Heavy, HeavyShutdown),
        memory_budget: usize,
        cache: AnalysisCache,
        seats: seat::Seats,
        summary: fn(&Entry) -> pb::Negotiation,
    ) -> anyhow::Result<(Negotiations, Closer)> {
        let registry = Registry::load(log.clone(), memory_budget, summary)?;
        let (published, _) = broadcast::channel(WATCH_BUFFER);
        let app = Negotiations {
            log,
            registry,
            published: published.clone(),
            data,
            cache,
            heavy: heavy.0,
            seats,
        };
        Ok((app, Closer(published, Arc::new(heavy.1))))
    }

    /// The negotiation with public id `id` and its numeric id.
    pub async fn entry(&self, id: &str) -> Outcome<(u64, Arc<Mutex<Entry>>)> {
        let n = parse_id(id)
            .ok_or_else(|| Failure::invalid("id", "is not a negotiation id (neg-NNNNNN)"))?;
        Ok((n, self.registry.get(n, id).await?))
    }

    /// The negotiations in memory now.
    pub async fn loaded(&self) -> Vec<Arc<Mutex<Entry>>> {
        self.registry.loaded().await
    }

    /// The negotiation `id`, locked.
    pub async fn get(&self, id: &str) -> Outcome<Held> {
        Ok(self.entry(id).await?.1.lock_owned().await)
    }

    /// Up to `size` summaries of negotiations with ids below `before` that `matches` keeps,
    /// newest first, within `max_bytes` (at least one), and the id to continue below.
    pub async fn list(
        &self,
        before: u64,
        size: usize,
        max_bytes: usize,
        matches: impl Fn(&pb::Negotiation) -> bool,
    ) -> (Vec<pb::Negotiation>, Option<u64>) {
        let (mut out, mut next, mut bytes) = (Vec::new(), None, 0usize);
        self.registry
            .summaries(before, |id, summary| {
                if !matches(summary) {
                    return true;
                }
                if out.len() == size || (bytes >= max_bytes && !out.is_empty()) {
                    next = Some(id + 1);
                    return false;
                }
                bytes += prost::Message::encoded_len(summary);
                out.push(summary.clone());
                true
            })
            .await;
        (out, next)
    }

    /// Creates a negotiation from its first event and what the log keeps besides.
    pub async fn create(&self, created: Event, meta: Meta) -> Outcome<Held> {
        let size = log::stored_size(Some(&meta), std::slice::from_ref(&created));
        if size > MAX_CREATION_BYTES {
            return Err(Failure::invalid(
                "issues",
                format!(
                    "the negotiation would take {size} bytes; at most {} MiB (titles, issues, options, labels and trade effects)",
                    MAX_CREATION_BYTES >> 20
                ),
            ));
        }
        self.record(vec![created], meta).await
    }

    /// A new negotiation with `id`'s events up to `after_round`, titled `title` (or
    /// "… (what-if)").
    pub async fn fork(&self, id: &str, after_round: u32, title: &str) -> Outcome<Held> {
        let (number, entry) = self.entry(id).await?;
        let entry = entry.lock().await;
        let mut events = events_until_round(&entry, after_round);
        if let Some(Event::Created { title: t, .. }) = events.first_mut() {
            *t = if title.is_empty() {
                format!("{t} (what-if)")
            } else {
                title.to_owned()
            };
        }
        let meta = Meta {
            id: 0,
            effects: entry.meta.effects.clone(),
            forked_from: Some(log::public_id(number)),
            forked_after_round: after_round,
        };
        drop(entry);
        self.record(events, meta).await
    }

    /// Records a new negotiation from its first events.
    pub(crate) async fn record(&self, events: Vec<Event>, mut meta: Meta) -> Outcome<Held> {
        let bytes = log::stored_size(Some(&meta), &events);
        // An id another replica took meanwhile is refused by the log: the next one, a few
        // times.
        let mut attempts = 0;
        loop {
            meta.id = self.log.next_id().map_err(log_failure)?;
            let log = self.log.clone();
            let (m, e) = (meta.clone(), events.clone());
            let deadline = tradepact_rpc::deadline::call_deadline();
            match blocking(move || log.create(&m, &e, deadline)).await {
                Err(Failure::Aborted(_)) if attempts < 16 => attempts += 1,
                done => break done?,
            }
        }
        let entry = Entry::new(meta, events, bytes)?;
        Ok(self.registry.insert(entry).await.lock_owned().await)
    }

    /// Takes what another replica (or this one) recorded, as the cluster's log delivers it:
    /// applies it to the negotiation (read from the log if this replica holds it not, or
    /// holds an older state than the message follows), updates its summary and tells
    /// watchers (who skip what they have seen).
    pub async fn follow(
        self: Arc<Self>,
        mut followed: tokio::sync::mpsc::Receiver<jetstream::Followed>,
    ) {
        while let Some(f) = followed.recv().await {
            if let Err(e) = self.take(f).await {
                tracing::warn!(error = %e, "following the event log");
            }
        }
    }

    async fn take(&self, f: jetstream::Followed) -> Outcome<()> {
        // Read from the log if this replica does not know it yet (created by another).
        let entry = self.registry.get(f.id, &log::public_id(f.id)).await?;
        let mut entry = entry.lock().await;
        let (have, end) = (entry.events.len() as u64, f.first + f.events.len() as u64);
        if have == f.first {
            entry.bytes += log::stored_size(None, &f.events);
            let applied = self.apply_recorded(&mut entry, f.first, &f.events);
            self.cache.settle(&mut entry);
            applied?;
        } else if have < f.first {
            self.registry.reread(&mut entry).await?;
        }
        self.registry.changed(&entry).await;
        // Every event this replica had not held, from the message or read again (a gap
        // included): watchers see each once, in order.
        if have < end {
            for (n, e) in entry.events.iter().enumerate().skip(have as usize) {
                let _ = self.published.send(Published::Event {
                    id: f.id,
                    number: n as u64,
                    event: Arc::new(e.clone()),
                });
            }
        }
        Ok(())
    }

    /// Runs `command` on negotiation `id`.
    pub async fn command(&self, id: &str, command: Command) -> Outcome<Held> {
        let mut entry = self.get(id).await?;
        self.execute(&mut entry, command).await?;
        Ok(entry)
    }

    /// `party` offers the package `package` reads in the negotiation's space; the offer is
    /// evaluated against the negotiation's analysis (computed first if none is kept).
    pub async fn offer(
        &self,
        id: &str,
        party: String,
        package: impl FnOnce(&OutcomeSpace) -> Outcome<Package>,
    ) -> Outcome<Held> {
        let (_, entry) = self.entry(id).await?;
        let mut entry = self.with_evaluation(entry).await?;
        let package = package(&entry.negotiation.space)?;
        self.execute(&mut entry, Command::Offer { party, package })
            .await?;
        Ok(entry)
    }

    /// Locks `entry` with the analysis that offers are evaluated against in place. The
    /// frontier behind it can take long on a large space: it is computed as a heavy call on a
    /// snapshot, without the lock, then installed if no position changed meanwhile.
    async fn with_evaluation(&self, entry: Arc<Mutex<Entry>>) -> Outcome<Held> {
        for _ in 0..3 {
            let (version, space, positions) = {
                let locked = entry.clone().lock_owned().await;
                let n = &locked.negotiation;
                if !n.needs_analysis() {
                    return Ok(locked);
                }
                let positions: Vec<tradepact_bargain::Position> =
                    n.all_positions().into_iter().flatten().cloned().collect();
                (n.version, n.space.clone(), positions)
            };
            let solved = self
                .heavy
                .run("an offer's evaluation", evaluation_job(space, positions))
                .await?;
            let mut locked = entry.clone().lock_owned().await;
            if locked.negotiation.install_analysis(version, solved) {
                return Ok(locked);
            }
        }
        Err(Failure::Aborted(
            "the positions kept changing while the offer was being evaluated; retry".to_owned(),
        ))
    }

    /// Decides `command`, records its events durably (expecting to append right after the
    /// events this entry holds), applies them, tells watchers.
    pub(crate) async fn execute(&self, entry: &mut Entry, command: Command) -> Outcome<Vec<Event>> {
        let decided = entry.negotiation.decide(&command).map_err(failure);
        let events = match decided {
            Ok(events) => events,
            Err(e) => {
                self.cache.settle(entry);
                return Err(e);
            }
        };
        // Encoded once: what they cost is what the log stores.
        let encoded = log::encode(&events);
        let bytes: usize = encoded.iter().map(Vec::len).sum();
        if entry.bytes + bytes > MAX_NEGOTIATION_BYTES {
            return Err(Failure::ResourceExhausted(format!(
                "the negotiation has reached its size limit of {} MiB; fork it from an earlier round or start a new one",
                MAX_NEGOTIATION_BYTES >> 20
            )));
        }
        let first = entry.events.len() as u64;
        let (log, id) = (self.log.clone(), entry.meta.id);
        let deadline = tradepact_rpc::deadline::call_deadline();
        if let Err(failure) = blocking(move || log.append(id, first, encoded, deadline)).await {
            if matches!(failure, Failure::Aborted(_)) {
                // Another replica recorded first: hold what it recorded, for the retry.
                self.registry.reread(entry).await?;
                self.registry.changed(entry).await;
            }
            self.cache.settle(entry);
            return Err(failure);
        }
        entry.bytes += bytes;
        let applied = self.apply_recorded(entry, first, &events);
        self.cache.settle(entry);
        self.registry.changed(entry).await;
        applied?;
        Ok(events)
    }

    /// Applies events just recorded to `entry` and tells watchers.
    fn apply_recorded(&self, entry: &mut Entry, first: u64, events: &[Event]) -> Outcome<()> {
        let id = entry.meta.id;
        for (i, e) in events.iter().enumerate() {
            // What the state and the kept event grow by (the analysis is counted apart).
            let (applied, grown) = tradepact_rpc::alloc::measure(|| {
                entry.negotiation.apply(e).map_err(failure)?;
                entry.events.push(e.clone());
                Ok::<_, Failure>(())
            });
            let grown = grown.unwrap_or(
                (log::stored_size(None, std::slice::from_ref(e)) * RESIDENT_PER_LOGGED_BYTE)
                    as isize,
            );
            entry.resident = entry.resident.saturating_add_signed(grown);
            applied?;
            let _ = self.published.send(Published::Event {
                id,
                number: first + i as u64,
                event: Arc::new(e.clone()),
            });
        }
        Ok(())
    }
}

/// The events of `entry` up to the end of `round` (0: creation and positions only).
pub fn events_until_round(entry: &Entry, round: u32) -> Vec<Event> {
    let parties = entry.negotiation.parties.len();
    let mut offers = 0usize;
    let mut out = Vec::new();
    for e in &entry.events {
        if let Event::OfferMade { .. } = e {
            if offers / parties + 1 > round as usize {
                break;
            }
            offers += 1;
        }
        out.push(e.clone());
    }
    out
}

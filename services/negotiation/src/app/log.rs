//! The event log: every negotiation's events, append-only, in sled.
//!
//! One tree with prefixed keys, so that creating a negotiation (its metadata and first
//! events) is one atomic batch:
//! - `M` + id (u64 BE) → [`Meta`] as JSON;
//! - `E` + id + event number (u64 BE each) → [`Event`] as JSON.
//!
//! Appends are flushed (fsync) before they are acknowledged. An append names the number its
//! first event must get: if the log holds that event already, or not the one before it, the
//! append is refused as a [`LogError::Conflict`] (answered `ABORTED`), so that two writers of
//! one negotiation (replicas over a shared log, later) cannot both record event `n`.
//!
//! [`EventStore`] is the seam the application writes through; [`EventLog`] (sled) fulfils it.
//!
//! Ids are dense: the next id is one more than the highest recorded (found at open), so
//! `neg-000001`, `neg-000002`, … also across restarts and crashes. A creation that fails (a
//! full disk) leaves its id unused; one that was never acknowledged (a crash before its
//! flush) gives its id to the next creation.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tradepact_bargain::Event;
use tradepact_rpc::deadline::Deadline;

/// A trade effect as stored with its option.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EffectSpec {
    /// Reporting country.
    pub reporter: String,
    /// Partner country.
    pub partner: String,
    /// Import (the reporter's barrier) or export side (the partner's barrier).
    pub side: tradepact_impact::Side,
    /// Product code.
    pub product: String,
    /// Tariff before, percent.
    pub base_tariff_percent: f64,
    /// Change, percentage points.
    pub tariff_change_points: f64,
    /// Import-demand elasticity, if not the default.
    pub import_demand_elasticity: Option<f64>,
    /// Substitution elasticity, if not the default.
    pub substitution_elasticity: Option<f64>,
    /// What it stands for.
    pub note: String,
    /// HS6 lines whose tariffs change (base tariffs and trade read from the data service).
    #[serde(default)]
    pub lines: Vec<String>,
    /// The new tariff on every line, percent.
    #[serde(default)]
    pub new_tariff_percent: Option<f64>,
    /// The change as a percentage of each line's base tariff.
    #[serde(default)]
    pub tariff_change_percent_of_base: Option<f64>,
    /// Export-supply elasticity; `None`: infinite.
    #[serde(default)]
    pub export_supply_elasticity: Option<f64>,
    /// An MFN change (everyone else's tariff changes too).
    #[serde(default)]
    pub applies_to_all: bool,
}

impl EffectSpec {
    /// The tariff after the change, as a fraction, from `base` (a fraction): the new tariff,
    /// else the base changed by a percentage of itself, else by points.
    pub fn new_tariff(&self, base: f64) -> f64 {
        let new = match (self.new_tariff_percent, self.tariff_change_percent_of_base) {
            (Some(p), _) => p / 100.0,
            (None, Some(pct)) => base * (1.0 + pct / 100.0),
            (None, None) => base + self.tariff_change_points / 100.0,
        };
        new.max(0.0)
    }
}

/// What the log keeps about a negotiation besides its events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Numeric id (the public id is `neg-` and this, zero-padded).
    pub id: u64,
    /// Trade effects per issue and option.
    pub effects: Vec<Vec<Vec<EffectSpec>>>,
    /// The negotiation this one was forked from.
    pub forked_from: Option<String>,
    /// The round it was forked after.
    pub forked_after_round: u32,
}

impl Meta {
    /// The metadata of a new negotiation with `effects` (its id is given when recorded).
    pub fn new(effects: Vec<Vec<Vec<EffectSpec>>>) -> Meta {
        Meta {
            id: 0,
            effects,
            forked_from: None,
            forked_after_round: 0,
        }
    }
}

/// Public id of a numeric id.
pub fn public_id(id: u64) -> String {
    format!("neg-{id:06}")
}

/// Numeric id of a public id.
pub fn parse_id(id: &str) -> Option<u64> {
    id.strip_prefix("neg-")?.parse().ok()
}

fn meta_key(id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'M';
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

fn event_key(id: u64, n: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = b'E';
    k[1..9].copy_from_slice(&id.to_be_bytes());
    k[9..].copy_from_slice(&n.to_be_bytes());
    k
}

/// What can go wrong in the log.
#[derive(Debug)]
pub enum LogError {
    /// sled failed.
    Storage(sled::Error),
    /// A stored record does not decode.
    Corrupt(String),
    /// An append did not follow the last recorded event.
    Conflict(String),
    /// The log cannot be reached (a cluster without a quorum, a call that timed out): what
    /// was to be recorded may or may not have been.
    Unavailable(String),
    /// The log refuses writes for now (a full disk): nothing was recorded.
    Refused(String),
    /// The log holds no negotiation with this id.
    Missing(u64),
    /// What is to be recorded is larger than the log takes in one message (nothing recorded).
    TooLarge(String),
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::Storage(e) => write!(f, "storage: {e}"),
            LogError::Corrupt(e) => write!(f, "corrupt event log: {e}"),
            LogError::Conflict(e) => f.write_str(e),
            LogError::Unavailable(e) => write!(f, "event log unavailable: {e}"),
            LogError::Refused(e) => f.write_str(e),
            LogError::Missing(id) => write!(f, "no negotiation {}", public_id(*id)),
            LogError::TooLarge(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for LogError {}

impl From<sled::Error> for LogError {
    fn from(e: sled::Error) -> Self {
        LogError::Storage(e)
    }
}

/// Where negotiations' events are recorded: the seam between the application and its log.
pub trait EventStore: Send + Sync + 'static {
    /// The ids of every negotiation, in order.
    fn ids(&self) -> Result<Vec<u64>, LogError>;
    /// One negotiation's metadata and events, and the bytes they take in the log.
    fn load_one(&self, id: u64) -> Result<(Meta, Vec<Event>, usize), LogError>;
    /// A fresh numeric id.
    fn next_id(&self) -> Result<u64, LogError>;
    /// Records a new negotiation (metadata and first events) atomically and durably, or
    /// says why not by `deadline` (a log that waits on others; a local one takes its time).
    fn create(&self, meta: &Meta, events: &[Event], deadline: Deadline) -> Result<(), LogError>;
    /// Appends events encoded by [`encode`] as numbers `first..`, atomically and durably;
    /// [`LogError::Conflict`] unless event `first - 1` is the last recorded.
    fn append(
        &self,
        id: u64,
        first: u64,
        encoded: Vec<Vec<u8>>,
        deadline: Deadline,
    ) -> Result<(), LogError>;
    /// Makes everything durable (at shutdown).
    fn flush(&self) -> Result<(), LogError>;
    /// Every negotiation, in id order: its id, metadata, events and bytes (at start, for the
    /// summaries). One by one by default; a log that reads faster in one pass says so.
    fn for_each(
        &self,
        f: &mut dyn FnMut(u64, Meta, Vec<Event>, usize) -> Result<(), LogError>,
    ) -> Result<(), LogError> {
        for id in self.ids()? {
            let (meta, events, bytes) = self.load_one(id)?;
            f(id, meta, events, bytes)?;
        }
        Ok(())
    }
}

/// `events` as the log stores them (their lengths are what they cost).
pub fn encode(events: &[Event]) -> Vec<Vec<u8>> {
    events.iter().map(json).collect()
}

/// The event log in sled.
///
/// After an append fails with an I/O error (a full disk) sled refuses every later write until
/// it is reopened, and its memory may hold the failed events: the log reopens itself before
/// the append is answered (an append its files hold after all is answered as done), and
/// refuses appends at once until a probe write succeeds ([`EventLog::probe`]). It keeps a
/// reserve and refuses appends below a low watermark as the data store does
/// ([`tradepact_store::reserve`]).
pub struct EventLog {
    dir: std::path::PathBuf,
    /// Bytes of the reserve file kept in `dir` (0: none).
    reserve: u64,
    /// sled's handles; `None` while the log cannot be reopened.
    open: std::sync::RwLock<Option<Arc<Handles>>>,
    /// Whether appends are refused since one failed with an I/O error or the disk filled.
    failing: std::sync::atomic::AtomicBool,
    /// The highest id handed out.
    last_id: std::sync::atomic::AtomicU64,
    /// Reopenings so far (the current opening's generation).
    reopenings: std::sync::atomic::AtomicU64,
}

/// The sled handles of one opening of the log.
struct Handles {
    /// Which opening (one more at each reopening).
    generation: u64,
    db: sled::Db,
    tree: sled::Tree,
}

/// Bytes of sled's page cache for the event log.
const LOG_CACHE_BYTES: u64 = 16 << 20;

/// How long a reopening waits for reads in progress to let the old files go.
const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn io(e: std::io::Error) -> LogError {
    LogError::Storage(sled::Error::Io(e))
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("events and metadata serialise")
}

/// Bytes a negotiation's metadata and `events` take in the log (and, about, in memory).
pub fn stored_size(meta: Option<&Meta>, events: &[Event]) -> usize {
    meta.map_or(0, |m| json(m).len()) + events.iter().map(|e| json(e).len()).sum::<usize>()
}

impl EventLog {
    /// Opens (or creates) the log in `dir`, without a reserve.
    pub fn open(dir: &Path) -> Result<EventLog, LogError> {
        EventLog::open_with(dir, 0)
    }

    /// Opens (or creates) the log in `dir`, keeping a reserve of `reserve` bytes there. On a
    /// full disk it opens on the reserve's space and refuses appends until there is room.
    pub fn open_with(dir: &Path, reserve: u64) -> Result<EventLog, LogError> {
        let (db, tree) = match Self::open_db(dir) {
            Err(LogError::Storage(sled::Error::Io(e)))
                if e.kind() == std::io::ErrorKind::StorageFull
                    && tradepact_store::reserve::release(dir) =>
            {
                tracing::error!(error = %e, "the disk is full: the event log opens on its reserve's space and refuses appends until there is room");
                Self::open_db(dir)?
            }
            opened => opened?,
        };
        let last_id = match tree.scan_prefix([b'M']).next_back() {
            Some(item) => {
                let (key, _) = item?;
                let bytes: [u8; 8] = key[1..]
                    .try_into()
                    .map_err(|_| LogError::Corrupt("a metadata key of the wrong size".into()))?;
                u64::from_be_bytes(bytes)
            }
            None => 0,
        };
        let log = EventLog {
            dir: dir.to_path_buf(),
            reserve,
            open: std::sync::RwLock::new(Some(Arc::new(Handles {
                generation: 0,
                db,
                tree,
            }))),
            failing: Default::default(),
            last_id: std::sync::atomic::AtomicU64::new(last_id),
            reopenings: Default::default(),
        };
        if let Err(e) = tradepact_store::reserve::hold(dir, reserve) {
            tracing::error!(error = %e, "cannot hold the event log's reserve (a full disk?): appends are refused until there is room");
            log.failing
                .store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(log)
    }

    fn open_db(dir: &Path) -> Result<(sled::Db, sled::Tree), LogError> {
        // The log is read at start and when an evicted negotiation is needed again: sled's
        // page cache (1 GiB by default) would hold what the registry's budget has evicted.
        // (sled keeps what it wrote this session in memory regardless: see docs/benchmarks.md.)
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(LOG_CACHE_BYTES)
            .open()?;
        let tree = db.open_tree("negotiations")?;
        Ok((db, tree))
    }

    /// sled's handles; `Unavailable` while the log cannot be reopened.
    fn h(&self) -> Result<Arc<Handles>, LogError> {
        self.open
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                LogError::Refused(
                    "the event log is being reopened after a failed write (a full disk?); nothing was recorded by this call".into(),
                )
            })
    }

    /// Whether appends are refused since one failed with an I/O error or the disk filled.
    pub fn failing(&self) -> bool {
        self.failing.load(std::sync::atomic::Ordering::Acquire)
    }

    fn refuse_while_failing(&self) -> Result<(), LogError> {
        if let Err(low) = tradepact_store::reserve::room_to_write(&self.dir, self.reserve) {
            if !self.failing.swap(true, std::sync::atomic::Ordering::AcqRel) {
                tracing::error!("{low}: appends to the event log are refused until there is room");
            }
        }
        match self.failing() {
            false => Ok(()),
            true => Err(LogError::Refused(
                "the event log cannot write (the disk is full, or its last write failed with an I/O error, logged on the server); writes resume by themselves once one succeeds; nothing was recorded by this call".into(),
            )),
        }
    }

    /// After `e`, an error of a write of opening `generation`: for an I/O error, marks the log
    /// failing, gives back the reserve and reopens the log (unless another caller did since);
    /// `e`.
    fn failed(&self, generation: u64, e: LogError) -> LogError {
        if !matches!(e, LogError::Storage(sled::Error::Io(_))) {
            return e;
        }
        if !self.failing.swap(true, std::sync::atomic::Ordering::AcqRel) {
            tracing::error!(error = %e, "an event log write failed: appends are refused until one succeeds again");
        }
        let mut open = self.open.write().unwrap_or_else(|e| e.into_inner());
        if open.as_ref().is_none_or(|h| h.generation == generation) {
            tradepact_store::reserve::release(&self.dir);
            if let Err(again) = self.reopen(&mut open) {
                tracing::error!(error = %again, "the event log could not be reopened; it is retried");
            }
        }
        e
    }

    /// Drops sled's handles in `open` and opens the log's files again (the next opening),
    /// waiting up to 10 s for reads in progress to let the old ones go.
    fn reopen(&self, open: &mut Option<Arc<Handles>>) -> Result<(), LogError> {
        // Dropped apart: sled flushes as its handles drop, and after some failures (a value
        // written to a blob file of its own) that flush never returns.
        let old = open.take();
        std::thread::spawn(move || drop(old));
        let started = std::time::Instant::now();
        let (db, tree) = loop {
            match Self::open_db(&self.dir) {
                Ok(opened) => break opened,
                Err(LogError::Storage(sled::Error::Io(e)))
                    if e.to_string().contains("could not acquire lock")
                        && started.elapsed() < REOPEN_WAIT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        };
        let generation = self
            .reopenings
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
            + 1;
        *open = Some(Arc::new(Handles {
            generation,
            db,
            tree,
        }));
        tracing::warn!(
            generation,
            "event log reopened after a failed write: it holds what its files hold"
        );
        Ok(())
    }

    /// Applies `write` to the log and flushes it; on an I/O error the log is reopened, and
    /// the write counts as done when `kept` finds it in the files.
    fn durably(
        &self,
        write: impl FnOnce(&sled::Tree) -> Result<(), LogError>,
        kept: impl FnOnce(&sled::Tree) -> bool,
    ) -> Result<(), LogError> {
        self.refuse_while_failing()?;
        let h = self.h()?;
        let written = write(&h.tree).and_then(|()| Ok(h.db.flush().map(|_| ())?));
        let Err(e) = written else { return Ok(()) };
        let generation = h.generation;
        drop(h);
        let e = self.failed(generation, e);
        match self.h() {
            Ok(h) if h.generation != generation && kept(&h.tree) => Ok(()),
            _ => Err(e),
        }
    }

    /// Takes the reserve again and, with room beyond it, reopens the log if it is closed and
    /// tries a write (a probe key) and its flush; on success appends are taken again.
    pub fn probe(&self) -> Result<(), LogError> {
        tradepact_store::reserve::hold(&self.dir, self.reserve).map_err(io)?;
        tradepact_store::reserve::room_to_resume(&self.dir, self.reserve)
            .map_err(LogError::Refused)?;
        let h = match self.h() {
            Ok(h) => h,
            Err(_) => {
                let mut open = self.open.write().unwrap_or_else(|e| e.into_inner());
                if open.is_none() {
                    self.reopen(&mut open)?;
                }
                drop(open);
                self.h()?
            }
        };
        let tried = h
            .tree
            .insert(b"P", &[][..])
            .and_then(|_| h.db.flush())
            .map_err(LogError::from);
        match tried {
            Ok(_) => {
                if self
                    .failing
                    .swap(false, std::sync::atomic::Ordering::AcqRel)
                {
                    tracing::info!("an event log write succeeded again: appends are taken");
                }
                Ok(())
            }
            Err(e) => {
                let generation = h.generation;
                drop(h);
                Err(self.failed(generation, e))
            }
        }
    }
}

impl EventStore for EventLog {
    /// The ids of every negotiation, in order.
    fn ids(&self) -> Result<Vec<u64>, LogError> {
        self.h()?
            .tree
            .scan_prefix([b'M'])
            .keys()
            .map(|k| {
                let k = k?;
                let bytes: [u8; 8] = k[1..]
                    .try_into()
                    .map_err(|_| LogError::Corrupt("a metadata key of the wrong size".into()))?;
                Ok(u64::from_be_bytes(bytes))
            })
            .collect()
    }

    /// One negotiation's metadata and events, and the bytes they take in the log.
    fn load_one(&self, id: u64) -> Result<(Meta, Vec<Event>, usize), LogError> {
        let h = self.h()?;
        let meta = h.tree.get(meta_key(id))?.ok_or(LogError::Missing(id))?;
        let mut bytes = meta.len();
        let meta: Meta =
            serde_json::from_slice(&meta).map_err(|e| LogError::Corrupt(e.to_string()))?;
        let mut events = Vec::new();
        let mut prefix = vec![b'E'];
        prefix.extend_from_slice(&id.to_be_bytes());
        for item in h.tree.scan_prefix(&prefix) {
            let (_, v) = item?;
            bytes += v.len();
            events.push(serde_json::from_slice(&v).map_err(|e| LogError::Corrupt(e.to_string()))?);
        }
        Ok((meta, events, bytes))
    }

    /// A fresh numeric id: one more than the last.
    fn next_id(&self) -> Result<u64, LogError> {
        Ok(self
            .last_id
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
            + 1)
    }

    /// Records a new negotiation (metadata and first events) atomically and durably.
    fn create(&self, meta: &Meta, events: &[Event], _: Deadline) -> Result<(), LogError> {
        let mut batch = sled::Batch::default();
        let meta_json = json(meta);
        batch.insert(&meta_key(meta.id)[..], meta_json.as_slice());
        for (n, e) in events.iter().enumerate() {
            batch.insert(&event_key(meta.id, n as u64)[..], json(e));
        }
        let last = event_key(meta.id, events.len().saturating_sub(1) as u64);
        self.durably(
            |tree| Ok(tree.apply_batch(batch)?),
            // The batch is atomic: its metadata and last event tell.
            |tree| {
                let stored = tree.get(meta_key(meta.id)).ok().flatten();
                stored.as_deref() == Some(meta_json.as_slice())
                    && (events.is_empty() || tree.get(last).ok().flatten().is_some())
            },
        )
    }

    fn append(
        &self,
        id: u64,
        first: u64,
        encoded: Vec<Vec<u8>>,
        _: Deadline,
    ) -> Result<(), LogError> {
        let keys: Vec<[u8; 17]> = (0..encoded.len() as u64)
            .map(|i| event_key(id, first + i))
            .collect();
        let write = |tree: &sled::Tree| {
            let outcome = tree.transaction(|tx| {
                let follows = first == 0 || tx.get(event_key(id, first - 1))?.is_some();
                if !follows || tx.get(event_key(id, first))?.is_some() {
                    return sled::transaction::abort(format!(
                        "event {first} of {} does not follow the last recorded one",
                        public_id(id)
                    ));
                }
                for (key, e) in keys.iter().zip(&encoded) {
                    tx.insert(&key[..], &e[..])?;
                }
                Ok(())
            });
            match outcome {
                Ok(()) => Ok(()),
                Err(sled::transaction::TransactionError::Abort(why)) => {
                    Err(LogError::Conflict(why))
                }
                Err(sled::transaction::TransactionError::Storage(e)) => Err(e.into()),
            }
        };
        // The transaction is atomic: its last event tells.
        let kept = |tree: &sled::Tree| match (keys.last(), encoded.last()) {
            (Some(key), Some(event)) => {
                tree.get(key).ok().flatten().as_deref() == Some(event.as_slice())
            }
            _ => true,
        };
        self.durably(write, kept)
    }

    fn flush(&self) -> Result<(), LogError> {
        if self.failing() {
            // Appends were refused since the last one failed: nothing unwritten is owed.
            return Ok(());
        }
        self.h()?.db.flush()?;
        Ok(())
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: u64) -> Meta {
        Meta {
            id,
            effects: Vec::new(),
            forked_from: None,
            forked_after_round: 0,
        }
    }

    #[test]
    fn ids_are_dense_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = EventLog::open(dir.path()).unwrap();
            for want in 1..=3 {
                let id = log.next_id().unwrap();
                assert_eq!(id, want);
                log.create(&meta(id), &[], None).unwrap();
            }
            // Handed out, never recorded (a crash before the flush): given out again.
            assert_eq!(log.next_id().unwrap(), 4);
        }
        let log = (0..100)
            .find_map(|_| {
                EventLog::open(dir.path()).ok().or_else(|| {
                    // sled releases its lock a moment after the last handle is dropped.
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    None
                })
            })
            .expect("reopen");
        assert_eq!(log.next_id().unwrap(), 4);
    }
}

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
    /// The log cannot be reached (a cluster without a quorum, a call that timed out).
    Unavailable(String),
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
pub struct EventLog {
    db: sled::Db,
    tree: sled::Tree,
    /// The highest id handed out.
    last_id: std::sync::atomic::AtomicU64,
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("events and metadata serialise")
}

/// Bytes a negotiation's metadata and `events` take in the log (and, about, in memory).
pub fn stored_size(meta: Option<&Meta>, events: &[Event]) -> usize {
    meta.map_or(0, |m| json(m).len()) + events.iter().map(|e| json(e).len()).sum::<usize>()
}

impl EventLog {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path) -> Result<EventLog, LogError> {
        let db = sled::Config::new().path(dir).open()?;
        let tree = db.open_tree("negotiations")?;
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
        Ok(EventLog {
            db,
            tree,
            last_id: std::sync::atomic::AtomicU64::new(last_id),
        })
    }
}

impl EventStore for EventLog {
    /// The ids of every negotiation, in order.
    fn ids(&self) -> Result<Vec<u64>, LogError> {
        self.tree
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
        let meta = self.tree.get(meta_key(id))?.ok_or(LogError::Missing(id))?;
        let mut bytes = meta.len();
        let meta: Meta =
            serde_json::from_slice(&meta).map_err(|e| LogError::Corrupt(e.to_string()))?;
        let mut events = Vec::new();
        let mut prefix = vec![b'E'];
        prefix.extend_from_slice(&id.to_be_bytes());
        for item in self.tree.scan_prefix(&prefix) {
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
        batch.insert(&meta_key(meta.id)[..], json(meta));
        for (n, e) in events.iter().enumerate() {
            batch.insert(&event_key(meta.id, n as u64)[..], json(e));
        }
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
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
        let outcome = self.tree.transaction(|tx| {
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
            Ok(()) => {}
            Err(sled::transaction::TransactionError::Abort(why)) => {
                return Err(LogError::Conflict(why))
            }
            Err(sled::transaction::TransactionError::Storage(e)) => return Err(e.into()),
        }
        self.db.flush()?;
        Ok(())
    }

    fn flush(&self) -> Result<(), LogError> {
        self.db.flush()?;
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

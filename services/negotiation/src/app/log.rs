//! The event log: every negotiation's metadata and events, append-only, in a file of its own
//! ([`EventLog`]; its format and failure rules there).
//!
//! Appends are synced before they are acknowledged. An append names the number its first
//! event must get: if the log holds that event already, or not the one before it, the append
//! is refused as a [`LogError::Conflict`] (answered `ABORTED`), so that two writers of one
//! negotiation (replicas over a shared log) cannot both record event `n`.
//!
//! [`EventStore`] is the seam the application writes through; [`EventLog`] (one machine) and
//! the JetStream log of a cluster (`app::jetstream`) fulfil it.
//!
//! Ids are dense: the next id is one more than the highest recorded (found at open), so
//! `neg-000001`, `neg-000002`, … also across restarts and crashes. A creation that fails (a
//! full disk) leaves its id unused; one that was never acknowledged (a crash before its
//! sync) gives its id to the next creation.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

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

/// What can go wrong in the log.
#[derive(Debug)]
pub enum LogError {
    /// The log's file could not be read or written.
    Storage(std::io::Error),
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

/// The event log in a file of its own, `events.log` in its directory, only ever appended to.
///
/// Each creation or append is one record, written at the end of the file and synced
/// (`fdatasync`) before it is acknowledged:
///
/// ```text
/// [body length u32 LE] [crc32c of the body u32 LE] body
/// body: [kind u8: C creation, A append, P probe] [id u64 LE] [first event number u64 LE]
///       [count u32 LE] (C only: [length u32 LE] metadata JSON) count × ([length u32 LE] event JSON)
/// ```
///
/// In memory the log keeps where each negotiation's metadata and events are in the file
/// (16 bytes an event), never the records: what it wrote stays in the kernel's page cache,
/// not in the process, so the registry's memory budget bounds the service's memory. (The log
/// was a sled tree until 2026-12; sled keeps what it wrote during a session in memory whatever
/// its cache size — 200 creations of 1 MiB: 212 MB resident, docs/benchmarks.md — and a
/// failed write of a large value could leave its handles unable to drop.)
///
/// - **A failed write is never read.** On an I/O error (a full disk) the bytes written past
///   the last acknowledged record are cut off the file (`set_len`, synced) before the call is
///   answered; appends are then refused until a probe record can be written and synced
///   ([`EventLog::probe`]). If even the cut fails, the record's header is overwritten with
///   zeros, and the cut is retried before anything else is written.
/// - **A crash loses nothing acknowledged.** It can leave only the last record torn (every
///   record is synced before the next is written): opening cuts a last record that is short,
///   does not check, or is followed by nothing but zeros. A record that does not check
///   anywhere else is damage: the log does not open (DATA_LOSS naming its offset).
/// - **Reserve and low watermark** as the data store ([`tradepact_store::reserve`]).
/// - **One process at a time**: it holds a lock on `events.lock` while open.
/// - **The sled log of earlier versions** found in the directory is copied into `events.log`
///   at the first open (into a temporary file, synced, then renamed), and sled's files are
///   moved to `sled-log-before-migration/`, which may be deleted once the copy is checked.
pub struct EventLog {
    dir: PathBuf,
    /// Bytes of the reserve file kept in `dir` (0: none).
    reserve: u64,
    /// The file's end and the index (appends take it in turn).
    tail: Mutex<Tail>,
    /// The file, for reads by offset (which need no lock).
    reader: File,
    /// Whether appends are refused since one failed with an I/O error or the disk filled.
    failing: AtomicBool,
    /// The highest id handed out.
    last_id: AtomicU64,
    /// Held while the log is open (unlocked as it drops).
    _lock: File,
}

/// The writing end of the log and where each negotiation is in it.
struct Tail {
    file: File,
    /// Bytes of the file that hold acknowledged records.
    end: u64,
    /// Whether bytes of a failed write may lie past `end` (cutting them off failed too).
    cut_pending: bool,
    index: BTreeMap<u64, Indexed>,
}

/// Where a negotiation's metadata and events are in the file.
struct Indexed {
    meta: Span,
    events: Vec<Span>,
}

/// Bytes `len` at offset `at` of the file.
#[derive(Clone, Copy, Debug)]
struct Span {
    at: u64,
    len: u32,
}

/// The log's file in its directory.
pub const LOG_FILE: &str = "events.log";
/// The file locked while the log is open.
const LOCK_FILE: &str = "events.lock";
/// The copy of a sled log being made (renamed to [`LOG_FILE`] when whole).
const MIGRATING_FILE: &str = "events.log.migrating";
/// Where sled's files go once copied.
const SLED_ASIDE: &str = "sled-log-before-migration";
/// A record's length and checksum.
const HEADER: usize = 8;
/// The largest record body (a longer length in a header is damage).
const MAX_RECORD: usize = 1 << 30;
/// Bytes of sled's page cache while a sled log is copied.
const SLED_CACHE_BYTES: u64 = 16 << 20;

const CREATE: u8 = b'C';
const APPEND: u8 = b'A';
const PROBE: u8 = b'P';

fn io(e: std::io::Error) -> LogError {
    LogError::Storage(e)
}

fn sled_error(e: sled::Error) -> LogError {
    match e {
        sled::Error::Io(e) => LogError::Storage(e),
        other => LogError::Corrupt(format!("the sled log being migrated: {other}")),
    }
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("events and metadata serialise")
}

/// Bytes a negotiation's metadata and `events` take in the log (and, about, in memory).
pub fn stored_size(meta: Option<&Meta>, events: &[Event]) -> usize {
    meta.map_or(0, |m| json(m).len()) + events.iter().map(|e| json(e).len()).sum::<usize>()
}

/// A record: `kind`, negotiation `id`, its events from number `first`, the metadata of a
/// creation. `TooLarge` past [`MAX_RECORD`].
fn record(
    kind: u8,
    id: u64,
    first: u64,
    meta: Option<&[u8]>,
    events: &[impl AsRef<[u8]>],
) -> Result<Vec<u8>, LogError> {
    let body = 1
        + 8
        + 8
        + 4
        + meta.map_or(0, |m| 4 + m.len())
        + events.iter().map(|e| 4 + e.as_ref().len()).sum::<usize>();
    if body > MAX_RECORD {
        return Err(LogError::TooLarge(format!(
            "{body} bytes in one record of the event log, more than {MAX_RECORD}"
        )));
    }
    let mut out = Vec::with_capacity(HEADER + body);
    out.extend_from_slice(&[0; HEADER]);
    out.push(kind);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&first.to_le_bytes());
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for part in meta.into_iter().chain(events.iter().map(AsRef::as_ref)) {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
        out.extend_from_slice(part);
    }
    let crc = crc32c::crc32c(&out[HEADER..]);
    out[..4].copy_from_slice(&(body as u32).to_le_bytes());
    out[4..HEADER].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A record's body as read: what it records and where its parts are in the file.
struct Parsed {
    kind: u8,
    id: u64,
    first: u64,
    meta: Option<Span>,
    events: Vec<Span>,
}

/// Bytes `n` of `body` at `*pos`, moving past them.
fn take<'a>(body: &'a [u8], pos: &mut usize, n: usize) -> Option<&'a [u8]> {
    let part = body.get(*pos..pos.checked_add(n)?)?;
    *pos += n;
    Some(part)
}

fn take_u32(body: &[u8], pos: &mut usize) -> Option<u32> {
    Some(u32::from_le_bytes(take(body, pos, 4)?.try_into().ok()?))
}

fn take_u64(body: &[u8], pos: &mut usize) -> Option<u64> {
    Some(u64::from_le_bytes(take(body, pos, 8)?.try_into().ok()?))
}

/// A length-prefixed part of `body` at `*pos` (`body` starts at byte `at` of the file).
fn take_part(body: &[u8], pos: &mut usize, at: u64) -> Option<Span> {
    let len = take_u32(body, pos)?;
    let start = *pos;
    take(body, pos, len as usize)?;
    Some(Span {
        at: at + start as u64,
        len,
    })
}

/// Parses `body`, which starts at byte `at` of the file; `None` if it is malformed.
fn parse(body: &[u8], at: u64) -> Option<Parsed> {
    let mut pos = 0;
    let kind = take(body, &mut pos, 1)?[0];
    let id = take_u64(body, &mut pos)?;
    let first = take_u64(body, &mut pos)?;
    let count = take_u32(body, &mut pos)?;
    let meta = match kind {
        CREATE => Some(take_part(body, &mut pos, at)?),
        APPEND | PROBE => None,
        _ => return None,
    };
    let events = (0..count)
        .map(|_| take_part(body, &mut pos, at))
        .collect::<Option<Vec<_>>>()?;
    (pos == body.len()).then_some(Parsed {
        kind,
        id,
        first,
        meta,
        events,
    })
}

/// Why `record` cannot follow what `index` holds (a creation of a recorded id, an append
/// that does not follow its negotiation's last event), if it cannot.
fn refusal(index: &BTreeMap<u64, Indexed>, record: &Parsed) -> Option<String> {
    match (record.kind, index.get(&record.id)) {
        (CREATE, Some(_)) => Some(format!("{} is recorded already", public_id(record.id))),
        (CREATE, None) if record.first != 0 => Some(format!(
            "the creation of {} starts at event {}",
            public_id(record.id),
            record.first
        )),
        (APPEND, None) => Some(format!("no negotiation {}", public_id(record.id))),
        (APPEND, Some(n)) if n.events.len() as u64 != record.first => Some(format!(
            "event {} of {} does not follow the last recorded one",
            record.first,
            public_id(record.id)
        )),
        _ => None,
    }
}

/// Adds `record` (admitted by [`refusal`]) to `index`.
fn apply(index: &mut BTreeMap<u64, Indexed>, record: Parsed) {
    match (record.kind, record.meta) {
        (CREATE, Some(meta)) => {
            index.insert(
                record.id,
                Indexed {
                    meta,
                    events: record.events,
                },
            );
        }
        (APPEND, _) => {
            if let Some(n) = index.get_mut(&record.id) {
                n.events.extend(record.events);
            }
        }
        _ => {}
    }
}

/// What opening found in the file: the end of its last whole record, and the index.
struct Scanned {
    end: u64,
    index: BTreeMap<u64, Indexed>,
}

/// Reads every record of `file` (at `path`), checking each. A last record that is torn (by a
/// crash) ends the log at the record before it; damage anywhere else is `Corrupt`.
fn scan(file: &File, path: &Path) -> Result<Scanned, LogError> {
    let len = file.metadata().map_err(io)?.len();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let (mut at, mut index, mut body) = (0u64, BTreeMap::new(), Vec::new());
    let damaged = |at: u64, what: &str| {
        LogError::Corrupt(format!(
            "{what} at byte {at} of {} (the log is damaged: restore it from a copy)",
            path.display()
        ))
    };
    while at < len {
        let mut header = [0u8; HEADER];
        if len - at < HEADER as u64 {
            break;
        }
        reader.read_exact(&mut header).map_err(io)?;
        let size = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let end = at + (HEADER + size) as u64;
        if size == 0 || size > MAX_RECORD || end > len {
            break;
        }
        body.resize(size, 0);
        reader.read_exact(&mut body).map_err(io)?;
        if crc32c::crc32c(&body) != crc {
            if end == len {
                // The last record, torn (its length written, not all its bytes).
                break;
            }
            return Err(damaged(at, "a record that does not check"));
        }
        let parsed = parse(&body, at + HEADER as u64)
            .ok_or_else(|| damaged(at, "a record that does not parse"))?;
        if let Some(why) = refusal(&index, &parsed) {
            return Err(damaged(at, &why));
        }
        apply(&mut index, parsed);
        at = end;
    }
    if at < len && !zeros(file, at, len).map_err(io)? {
        // What follows the last whole record is a torn record only if it is the last one: a
        // length past the end of the file, or nothing but zeros (a file extended by a crash).
        let mut header = [0u8; 4];
        let size = match file.read_exact_at(&mut header, at) {
            Ok(()) => u32::from_le_bytes(header) as u64,
            Err(_) => 0,
        };
        if len - at >= HEADER as u64 && at + HEADER as u64 + size <= len {
            return Err(damaged(at, "a record that does not check"));
        }
    }
    Ok(Scanned { end: at, index })
}

/// Whether bytes `from..to` of `file` are all zero.
fn zeros(file: &File, from: u64, to: u64) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 64 << 10];
    let mut at = from;
    while at < to {
        let n = buf.len().min((to - at) as usize);
        file.read_exact_at(&mut buf[..n], at)?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// Syncs directory `dir` (a file created or renamed in it).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl EventLog {
    /// Opens (or creates) the log in `dir`, without a reserve.
    pub fn open(dir: &Path) -> Result<EventLog, LogError> {
        EventLog::open_with(dir, 0)
    }

    /// Opens (or creates) the log in `dir`, keeping a reserve of `reserve` bytes there (on a
    /// full disk it opens, and refuses appends until there is room). A sled log of an earlier
    /// version is migrated first.
    pub fn open_with(dir: &Path, reserve: u64) -> Result<EventLog, LogError> {
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(io)?;
        lock.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => io(std::io::Error::other(
                "could not acquire lock on the event log: another process holds it",
            )),
            std::fs::TryLockError::Error(e) => io(e),
        })?;
        migrate_sled(dir)?;
        let path = dir.join(LOG_FILE);
        let created = !path.exists();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        if created {
            sync_dir(dir).map_err(io)?;
        }
        let Scanned { end, index } = scan(&file, &path)?;
        let len = file.metadata().map_err(io)?.len();
        if end < len {
            tracing::warn!(
                bytes = len - end,
                at = end,
                "the event log ends with a torn record (a crash while it was written, never acknowledged): cut off"
            );
            file.set_len(end)
                .and_then(|()| file.sync_all())
                .map_err(io)?;
        }
        let last_id = index.keys().next_back().copied().unwrap_or(0);
        let log = EventLog {
            dir: dir.to_path_buf(),
            reserve,
            reader: file.try_clone().map_err(io)?,
            tail: Mutex::new(Tail {
                file,
                end,
                cut_pending: false,
                index,
            }),
            failing: Default::default(),
            last_id: AtomicU64::new(last_id),
            _lock: lock,
        };
        if let Err(e) = tradepact_store::reserve::hold(dir, reserve) {
            tracing::error!(error = %e, "cannot hold the event log's reserve (a full disk?): appends are refused until there is room");
            log.failing.store(true, Ordering::Release);
        }
        Ok(log)
    }

    /// Whether appends are refused since one failed with an I/O error or the disk filled.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    fn tail(&self) -> std::sync::MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn refuse_while_failing(&self) -> Result<(), LogError> {
        if let Err(low) = tradepact_store::reserve::room_to_write(&self.dir, self.reserve) {
            if !self.failing.swap(true, Ordering::AcqRel) {
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

    /// Writes `record` at the end of the file and syncs it. On an error, marks the log failing,
    /// gives back the reserve and cuts what was written off the file, so that nothing of it is
    /// read; the error.
    fn write_synced(&self, tail: &mut Tail, record: &[u8]) -> Result<(), LogError> {
        if tail.cut_pending {
            self.cut(tail)?;
        }
        let written = tail
            .file
            .write_all_at(record, tail.end)
            .and_then(|()| tail.file.sync_data());
        let Err(e) = written else {
            tail.end += record.len() as u64;
            return Ok(());
        };
        if !self.failing.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %e, "an event log write failed: appends are refused until one succeeds again");
        }
        tradepact_store::reserve::release(&self.dir);
        if let Err(again) = self.cut(tail) {
            tracing::error!(error = %again, "the failed write could not be cut off the event log yet; retried before the next write");
        }
        Err(io(e))
    }

    /// Cuts the file back to its last acknowledged record; if that fails, zeroes the header
    /// after it (so that no later opening reads what follows) and leaves the cut pending.
    fn cut(&self, tail: &mut Tail) -> Result<(), LogError> {
        let cut = tail
            .file
            .set_len(tail.end)
            .and_then(|()| tail.file.sync_all());
        match cut {
            Ok(()) => {
                tail.cut_pending = false;
                Ok(())
            }
            Err(e) => {
                tail.cut_pending = true;
                let _ = tail
                    .file
                    .write_all_at(&[0; HEADER], tail.end)
                    .and_then(|()| tail.file.sync_data());
                Err(io(e))
            }
        }
    }

    /// Records `record` (encoded by [`record`]) unless it conflicts with what the log holds.
    fn append_record(&self, record: Vec<u8>) -> Result<(), LogError> {
        self.refuse_while_failing()?;
        let mut tail = self.tail();
        let at = tail.end + HEADER as u64;
        let parsed = parse(&record[HEADER..], at).expect("a record this log encoded parses");
        if let Some(why) = refusal(&tail.index, &parsed) {
            return Err(LogError::Conflict(why));
        }
        self.write_synced(&mut tail, &record)?;
        apply(&mut tail.index, parsed);
        Ok(())
    }

    /// Takes the reserve again and, with room beyond it, writes a probe record and syncs it;
    /// on success appends are taken again.
    pub fn probe(&self) -> Result<(), LogError> {
        tradepact_store::reserve::hold(&self.dir, self.reserve).map_err(io)?;
        tradepact_store::reserve::room_to_resume(&self.dir, self.reserve)
            .map_err(LogError::Refused)?;
        let probe = record(PROBE, 0, 0, None, &[] as &[&[u8]])?;
        self.write_synced(&mut self.tail(), &probe)?;
        if self.failing.swap(false, Ordering::AcqRel) {
            tracing::info!("an event log write succeeded again: appends are taken");
        }
        Ok(())
    }

    /// What `span` of the file holds for negotiation `id`, decoded.
    fn decode<T: serde::de::DeserializeOwned>(&self, id: u64, span: Span) -> Result<T, LogError> {
        serde_json::from_slice(&self.read(span)?)
            .map_err(|e| LogError::Corrupt(format!("{} at byte {}: {e}", public_id(id), span.at)))
    }

    /// Bytes at `span` of the file.
    fn read(&self, span: Span) -> Result<Vec<u8>, LogError> {
        let mut buf = vec![0u8; span.len as usize];
        self.reader.read_exact_at(&mut buf, span.at).map_err(io)?;
        Ok(buf)
    }
}

/// Copies the sled log of an earlier version in `dir`, if there is one, into [`LOG_FILE`] (one
/// creation record per negotiation, its events included), then moves sled's files aside.
fn migrate_sled(dir: &Path) -> Result<(), LogError> {
    let is_sled = |name: &str| matches!(name, "conf" | "db" | "blobs") || name.starts_with("snap.");
    if !dir.join("conf").exists() || !dir.join("db").exists() {
        return Ok(());
    }
    if !dir.join(LOG_FILE).exists() {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(SLED_CACHE_BYTES)
            .open()
            .map_err(sled_error)?;
        if !db.tree_names().iter().any(|n| &n[..] == b"negotiations") {
            return Err(LogError::Corrupt(format!(
                "{} holds a sled database without the event log's tree (another program's store?): left as it is",
                dir.display()
            )));
        }
        let tree = db.open_tree("negotiations").map_err(sled_error)?;
        let copy = dir.join(MIGRATING_FILE);
        let mut out = std::io::BufWriter::new(File::create(&copy).map_err(io)?);
        let mut copied = 0u64;
        for item in tree.scan_prefix([b'M']) {
            let (key, meta) = item.map_err(sled_error)?;
            let id = key
                .get(1..9)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| LogError::Corrupt("a metadata key of the wrong size".into()))?;
            let mut prefix = vec![b'E'];
            prefix.extend_from_slice(&id.to_be_bytes());
            let mut events = Vec::new();
            for item in tree.scan_prefix(&prefix) {
                let (key, event) = item.map_err(sled_error)?;
                let n = key
                    .get(9..17)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes);
                if n != Some(events.len() as u64) {
                    return Err(LogError::Corrupt(format!(
                        "the sled log's events of {} are not numbered 0, 1, …",
                        public_id(id)
                    )));
                }
                events.push(event);
            }
            out.write_all(&record(CREATE, id, 0, Some(&meta), &events)?)
                .map_err(io)?;
            copied += 1;
        }
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        drop(tree);
        drop(db);
        std::fs::rename(&copy, dir.join(LOG_FILE)).map_err(io)?;
        sync_dir(dir).map_err(io)?;
        tracing::info!(
            negotiations = copied,
            "the sled event log of an earlier version was copied into {LOG_FILE}"
        );
    }
    let aside = dir.join(SLED_ASIDE);
    std::fs::create_dir_all(&aside).map_err(io)?;
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        if name.to_str().is_some_and(is_sled) {
            std::fs::rename(entry.path(), aside.join(&name)).map_err(io)?;
        }
    }
    sync_dir(dir).map_err(io)?;
    tracing::warn!(
        "sled's files of the old event log were moved to {}: delete it once the migrated log is checked",
        aside.display()
    );
    Ok(())
}

impl EventStore for EventLog {
    /// The ids of every negotiation, in order.
    fn ids(&self) -> Result<Vec<u64>, LogError> {
        Ok(self.tail().index.keys().copied().collect())
    }

    /// One negotiation's metadata and events, and the bytes they take in the log.
    fn load_one(&self, id: u64) -> Result<(Meta, Vec<Event>, usize), LogError> {
        let (meta, spans) = {
            let tail = self.tail();
            let n = tail.index.get(&id).ok_or(LogError::Missing(id))?;
            (n.meta, n.events.clone())
        };
        let bytes = meta.len as usize + spans.iter().map(|s| s.len as usize).sum::<usize>();
        let meta = self.decode(id, meta)?;
        let events = spans
            .into_iter()
            .map(|span| self.decode(id, span))
            .collect::<Result<_, _>>()?;
        Ok((meta, events, bytes))
    }

    /// A fresh numeric id: one more than the last.
    fn next_id(&self) -> Result<u64, LogError> {
        Ok(self.last_id.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// Records a new negotiation (metadata and first events) atomically and durably.
    fn create(&self, meta: &Meta, events: &[Event], _: Deadline) -> Result<(), LogError> {
        let record = record(CREATE, meta.id, 0, Some(&json(meta)), &encode(events))?;
        self.append_record(record)
    }

    fn append(
        &self,
        id: u64,
        first: u64,
        encoded: Vec<Vec<u8>>,
        _: Deadline,
    ) -> Result<(), LogError> {
        self.append_record(record(APPEND, id, first, None, &encoded)?)
    }

    fn flush(&self) -> Result<(), LogError> {
        if self.failing() {
            // Appends were refused since the last one failed: nothing unwritten is owed.
            return Ok(());
        }
        self.tail().file.sync_all().map_err(io)
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

    /// `n` events that differ.
    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| match i % 2 {
                0 => Event::DeadlineReached,
                _ => Event::OfferRejected {
                    party: format!("p{i}"),
                    offer: i as u32,
                },
            })
            .collect()
    }

    /// Every negotiation in `log`: id, metadata, events.
    fn contents(log: &EventLog) -> Vec<(u64, Meta, Vec<Event>)> {
        log.ids()
            .unwrap()
            .into_iter()
            .map(|id| {
                let (meta, events, _) = log.load_one(id).unwrap();
                (id, meta, events)
            })
            .collect()
    }

    /// Three negotiations with 2, 0 and 5 events (the last in three appends).
    fn fill(log: &EventLog) {
        for (id, first) in [(1, 2), (2, 0), (3, 1)] {
            assert_eq!(log.next_id().unwrap(), id);
            log.create(&meta(id), &events(first), None).unwrap();
        }
        log.append(3, 1, encode(&events(3)[1..]), None).unwrap();
        log.append(3, 3, encode(&events(5)[3..]), None).unwrap();
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
            // Handed out, never recorded (a crash before the sync): given out again.
            assert_eq!(log.next_id().unwrap(), 4);
        }
        let log = EventLog::open(dir.path()).unwrap();
        assert_eq!(log.next_id().unwrap(), 4);
    }

    #[test]
    fn what_is_appended_reads_back_the_same_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        fill(&log);
        let before = contents(&log);
        assert_eq!(before.len(), 3);
        assert_eq!(before[2].2, events(5));
        let (_, _, bytes) = log.load_one(3).unwrap();
        assert_eq!(bytes, stored_size(Some(&meta(3)), &events(5)));
        drop(log);
        assert_eq!(contents(&EventLog::open(dir.path()).unwrap()), before);
    }

    #[test]
    fn a_second_process_cannot_open_the_log_while_it_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        let Err(again) = EventLog::open(dir.path()) else {
            panic!("opened twice")
        };
        assert!(again.to_string().contains("lock"), "{again}");
        drop(log);
        EventLog::open(dir.path()).unwrap();
    }

    /// A crash while the last record was written leaves part of it: every cut of the last
    /// record (and a file extended with zeros) opens as the log before it, and takes appends.
    #[test]
    fn a_torn_last_record_is_cut_off_and_nothing_before_it_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        fill(&log);
        let before = contents(&log);
        drop(log);
        let path = dir.path().join(LOG_FILE);
        let whole = std::fs::read(&path).unwrap();
        let extra = record(APPEND, 3, 5, None, &encode(&events(7)[5..])).unwrap();
        let torn_ways: Vec<Vec<u8>> = (1..extra.len())
            .map(|n| extra[..n].to_vec())
            .chain([vec![0; 4096]])
            .collect();
        for torn in torn_ways {
            let mut bytes = whole.clone();
            bytes.extend_from_slice(&torn);
            std::fs::write(&path, &bytes).unwrap();
            let log = EventLog::open(dir.path()).unwrap();
            assert_eq!(contents(&log), before, "{} torn bytes", torn.len());
            assert_eq!(std::fs::metadata(&path).unwrap().len(), whole.len() as u64);
            log.append(3, 5, encode(&events(6)[5..]), None).unwrap();
            drop(log);
            std::fs::write(&path, &whole).unwrap();
        }
    }

    /// A flipped byte anywhere but in the last record is damage: the log does not open, and
    /// says where.
    #[test]
    fn damage_before_the_last_record_keeps_the_log_from_opening() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        fill(&log);
        drop(log);
        let path = dir.path().join(LOG_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + 3] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let Err(e) = EventLog::open(dir.path()) else {
            panic!("a damaged log opened")
        };
        assert!(matches!(e, LogError::Corrupt(_)), "{e}");
        assert!(e.to_string().contains("at byte 0 of"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing is cut");
    }

    #[test]
    fn appends_that_do_not_follow_are_conflicts_and_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        fill(&log);
        let len = std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
        for (id, first) in [(3, 4), (3, 6), (9, 0)] {
            let e = log.append(id, first, encode(&events(1)), None).unwrap_err();
            assert!(matches!(e, LogError::Conflict(_)), "{e}");
        }
        let e = log.create(&meta(2), &[], None).unwrap_err();
        assert!(matches!(e, LogError::Conflict(_)), "{e}");
        assert_eq!(
            std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len(),
            len
        );
    }

    /// The sled log of earlier versions (its keys as they were written: `M` + id → metadata,
    /// `E` + id + number → event) is copied at the first open; sled's files are moved aside.
    #[test]
    fn a_sled_log_of_an_earlier_version_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let written: Vec<(u64, Meta, Vec<Event>)> = [(1, 3), (2, 0), (4, 6)] // id 3 was handed out and never recorded
            .into_iter()
            .map(|(id, n)| (id, meta(id), events(n)))
            .collect();
        {
            let db = sled::open(dir.path()).unwrap();
            let tree = db.open_tree("negotiations").unwrap();
            for (id, meta, events) in &written {
                let mut key = vec![b'M'];
                key.extend_from_slice(&id.to_be_bytes());
                tree.insert(key, json(meta)).unwrap();
                for (n, event) in events.iter().enumerate() {
                    let mut key = vec![b'E'];
                    key.extend_from_slice(&id.to_be_bytes());
                    key.extend_from_slice(&(n as u64).to_be_bytes());
                    tree.insert(key, json(event)).unwrap();
                }
            }
            tree.insert(b"P", &[][..]).unwrap();
            db.flush().unwrap();
        }
        let log = (0..100)
            .find_map(|_| match EventLog::open(dir.path()) {
                Ok(log) => Some(log),
                // sled releases its lock a moment after its last handle is dropped.
                Err(e) if e.to_string().contains("lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    None
                }
                Err(e) => panic!("{e}"),
            })
            .expect("migrated");
        assert_eq!(contents(&log), written);
        assert_eq!(log.next_id().unwrap(), 5);
        assert!(!dir.path().join("db").exists(), "sled's files are moved");
        assert!(dir.path().join(SLED_ASIDE).join("db").exists());
        log.append(4, 6, encode(&events(7)[6..]), None).unwrap();
        drop(log);
        let log = EventLog::open(dir.path()).unwrap();
        assert_eq!(log.load_one(4).unwrap().1, events(7));
    }

    /// A directory holding another sled database (the data store's) is left as it is.
    #[test]
    fn another_sled_database_is_not_migrated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.open_tree("series").unwrap().insert(b"k", b"v").unwrap();
            db.flush().unwrap();
        }
        let e = loop {
            match EventLog::open(dir.path()) {
                Err(e) if e.to_string().contains("lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(e) => break e,
                Ok(_) => panic!("opened over a data store"),
            }
        };
        assert!(
            e.to_string().contains("without the event log's tree"),
            "{e}"
        );
        assert!(dir.path().join("db").exists());
        assert!(!dir.path().join(LOG_FILE).exists());
    }
}

use std::collections::hash_map::Entry;
use std::collections::{btree_map, BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::chunk::{Chunk, ChunkView, Upsert, BLOCK};
use crate::model::reference::{GroupInfo, Membership};
use crate::model::{Country, Period, Release, SeriesFilter, SeriesKey, SeriesPoints};
use crate::release::{AsOf, Rank, ReleaseInfo, Releases, View};
use crate::{Error, Result};

/// `K` + encoded key → the series' entry ([`Meta`], and its chunk when inline).
pub(crate) const INDEX: u8 = b'K';
/// `C` + encoded key + 0x00 + block (u32 BE) → a chunk of a series spanning several blocks.
pub(crate) const CHUNK: u8 = b'C';
/// `N` + label → release id (u32 BE).
pub(crate) const RELEASE_LABEL: u8 = b'N';
/// `R` + release id (u32 BE) → the release ([`ReleaseInfo::encode`]).
pub(crate) const RELEASE: u8 = b'R';
/// `L` + sequence (u64 BE) → what a write touched: its release (u32), then for each series
/// its encoded key (u16 length, bytes) and the first and last period written (u32 each).
pub(crate) const CHANGES: u8 = b'L';
/// The last sequence number given to a write.
pub(crate) const SEQUENCE: &[u8] = b"Q";
/// The format of the layout (u32 BE).
pub(crate) const FORMAT_KEY: &[u8] = b"V";
/// The layout this version reads and writes: 4 since a series is found by its key alone, its
/// chunk inline in its entry when its points fall in one block (3: chunks checksummed and
/// keeping every release, reached through a series id and a separate catalog entry; 2: chunks
/// without checksums or releases; 1: series keys without a measure).
pub const FORMAT: u32 = 4;

/// Writes whose change record is kept, for watchers that resume.
pub const RETAINED_CHANGES: u64 = 100_000;
/// Reads spanning fewer blocks than this look each chunk up by key instead of iterating.
const POINT_GET_BLOCKS: u32 = 4;

/// A point as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPoint {
    /// The period.
    pub period: Period,
    /// Value in US dollars.
    pub value: f64,
    /// Where the figure comes from.
    pub source: std::sync::Arc<str>,
    /// The release of the value (0: unnamed; see [`Store::release_info`]).
    pub release: u32,
}

/// What a write did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Points whose period was new to their series.
    pub inserted: u64,
    /// Points that replaced a value.
    pub updated: u64,
    /// Sequence number of the write (the last one, for sums); 0 for a write of nothing.
    pub sequence: u64,
    /// The opening of the store it was applied to (see [`Store::settle`]).
    pub generation: u64,
}

impl std::ops::AddAssign for WriteSummary {
    fn add_assign(&mut self, rhs: Self) {
        self.inserted += rhs.inserted;
        self.updated += rhs.updated;
        self.sequence = self.sequence.max(rhs.sequence);
        self.generation = self.generation.max(rhs.generation);
    }
}

/// The series and periods one write touched.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The write's sequence number.
    pub sequence: u64,
    /// The release the write named, if any.
    pub release: Option<Release>,
    /// Each series written, with the first and last period written.
    pub series: Vec<(SeriesKey, Period, Period)>,
}

fn changes_key(seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = CHANGES;
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// What [`Store::verify`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verified {
    /// Series in the catalog.
    pub series: u64,
    /// Chunks read.
    pub chunks: u64,
    /// Latest points in the sound chunks.
    pub points: u64,
    /// Superseded values (of earlier releases) in the sound chunks.
    pub history: u64,
    /// Bytes of the series' keys and values (entries and chunks) as stored, before sled's
    /// own overhead and the space it has yet to reclaim.
    pub bytes: u64,
    /// What does not read, each naming the series and periods.
    pub corrupt: Vec<String>,
}

/// A series and what it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesInfo {
    /// The series.
    pub key: SeriesKey,
    /// Stored points.
    pub point_count: u64,
    /// Earliest period.
    pub first: Period,
    /// Latest period.
    pub last: Period,
}

/// A series' counts, at the head of its entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) count: u32,
    pub(crate) first: u32,
    pub(crate) last: u32,
}

impl Meta {
    const NEW: Meta = Meta {
        count: 0,
        first: u32::MAX,
        last: 0,
    };

    /// Whether every point falls in one block (the chunk is then kept in the entry).
    fn one_block(&self) -> bool {
        self.first / BLOCK == self.last / BLOCK
    }
}

/// Bytes of an entry before its inline chunk: flags, count, first, last, block.
const ENTRY_HEAD: usize = 17;

/// A series' entry: `[flags u8: 1 = inline chunk] [count u32] [first u32] [last u32]`, then,
/// when inline, `[block u32] [chunk]` (integers big-endian).
pub(crate) fn encode_entry(meta: &Meta, inline: Option<(u32, &[u8])>) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENTRY_HEAD + inline.map_or(0, |(_, c)| c.len()));
    out.push(u8::from(inline.is_some()));
    out.extend_from_slice(&meta.count.to_be_bytes());
    out.extend_from_slice(&meta.first.to_be_bytes());
    out.extend_from_slice(&meta.last.to_be_bytes());
    if let Some((block, chunk)) = inline {
        out.extend_from_slice(&block.to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// Where an entry's inline chunk is: its block and its bytes in the entry.
pub(crate) type Inline = Option<(u32, std::ops::Range<usize>)>;

/// An entry's counts, and the block and byte range of its inline chunk.
pub(crate) fn decode_entry(v: &[u8]) -> Result<(Meta, Inline)> {
    let corrupt = || Error::Corrupt("a series entry does not decode".to_owned());
    let int = |at: usize| -> Result<u32> {
        Ok(u32::from_be_bytes(
            v.get(at..at + 4)
                .ok_or_else(corrupt)?
                .try_into()
                .map_err(|_| corrupt())?,
        ))
    };
    let meta = Meta {
        count: int(1)?,
        first: int(5)?,
        last: int(9)?,
    };
    match v.first() {
        Some(0) if v.len() == 13 => Ok((meta, None)),
        Some(1) if v.len() > ENTRY_HEAD => Ok((meta, Some((int(13)?, ENTRY_HEAD..v.len())))),
        _ => Err(corrupt()),
    }
}

fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + rest.len());
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

/// `C` + encoded key + 0x00: the prefix of a series' chunks (no key is the prefix of another
/// followed by 0x00: keys end with a product code of printable ASCII).
pub(crate) fn chunk_prefix(encoded: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(encoded.len() + 6);
    k.push(CHUNK);
    k.extend_from_slice(encoded);
    k.push(0);
    k
}

pub(crate) fn chunk_key(encoded: &[u8], block: u32) -> Vec<u8> {
    let mut k = chunk_prefix(encoded);
    k.extend_from_slice(&block.to_be_bytes());
    k
}

/// The block of a chunk key.
fn block_of(chunk_key: &[u8]) -> u32 {
    chunk_key
        .len()
        .checked_sub(4)
        .and_then(|at| chunk_key[at..].try_into().ok())
        .map_or(u32::MAX, u32::from_be_bytes)
}

/// A chunk as read: its block and bytes, or its block and what stopped the read.
pub(crate) type RawChunk = std::result::Result<(u32, sled::IVec), (u32, Error)>;

/// A chunk read for `key` as `view` sees it, or an error naming the series and periods.
fn checked(
    key: &SeriesKey,
    item: RawChunk,
    view: View,
    releases: &RwLock<Releases>,
) -> Result<(u32, sled::IVec)> {
    checked_with(key, item, |bytes, parsed| {
        Ok(match view {
            View::Latest => bytes.clone(),
            // Unnamed values only: nothing was published.
            View::AsOf(_) if !parsed.has_releases() => sled::IVec::from(Chunk::default().encode()),
            View::AsOf(cutoff) => {
                let releases = releases.read().unwrap_or_else(|e| e.into_inner());
                let chunk = Chunk::of_view(&parsed, true);
                sled::IVec::from(chunk.as_of(cutoff, &|id| releases.rank(id)).encode())
            }
        })
    })
}

/// A chunk read for `key` as `view` sees it, decoded (parsed and checked once).
fn checked_chunk(
    key: &SeriesKey,
    item: RawChunk,
    view: View,
    releases: &RwLock<Releases>,
) -> Result<(u32, Chunk)> {
    checked_with(key, item, |_, parsed| {
        Ok(match view {
            View::Latest => Chunk::of_view(&parsed, false),
            View::AsOf(_) if !parsed.has_releases() => Chunk::default(),
            View::AsOf(cutoff) => {
                let releases = releases.read().unwrap_or_else(|e| e.into_inner());
                Chunk::of_view(&parsed, true).as_of(cutoff, &|id| releases.rank(id))
            }
        })
    })
}

/// A raw chunk checked (its checksum and layout), then given to `then` with its parsed view;
/// a chunk that does not read is an error naming the series and periods.
fn checked_with<T>(
    key: &SeriesKey,
    item: RawChunk,
    then: impl FnOnce(&sled::IVec, ChunkView<'_>) -> Result<T>,
) -> Result<(u32, T)> {
    let (block, bytes) = match item {
        Ok(found) => found,
        Err((block, Error::Storage(sled::Error::Corruption { .. }))) => {
            return Err(corrupt_chunk(key, block, "sled reports corruption"))
        }
        Err((block, Error::Corrupt(what))) => return Err(corrupt_chunk(key, block, &what)),
        Err((_, e)) => return Err(e),
    };
    let parsed = match ChunkView::parse(&bytes) {
        Ok(parsed) => parsed,
        Err(e) => return Err(corrupt_chunk(key, block, &e.detail())),
    };
    Ok((block * BLOCK, then(&bytes, parsed)?))
}

/// The error of a chunk that does not read: the series, the periods it holds, what failed.
pub(crate) fn corrupt_chunk(key: &SeriesKey, block: u32, what: &str) -> Error {
    if block == u32::MAX {
        return Error::Corrupt(format!("series {key}: {what}"));
    }
    let period = |ordinal| Period {
        frequency: key.frequency,
        ordinal,
    };
    Error::Corrupt(format!(
        "series {key}, periods {} to {}: {what}",
        period(block * BLOCK),
        period(block * BLOCK + BLOCK - 1)
    ))
}

/// A series' catalog entry from its key and counts.
fn info_of(key: SeriesKey, meta: Meta) -> SeriesInfo {
    let period = |ordinal| Period {
        frequency: key.frequency,
        ordinal,
    };
    SeriesInfo {
        point_count: u64::from(meta.count),
        first: period(meta.first),
        last: period(meta.last),
        key,
    }
}

/// The format `tree` was written in: `None` for a new (empty) store, 1 for a store from
/// before formats were recorded.
pub(crate) fn format_of(tree: &sled::Tree) -> Result<Option<u32>> {
    match tree.get(FORMAT_KEY)? {
        Some(v) => {
            let bytes: [u8; 4] = v[..]
                .try_into()
                .map_err(|_| Error::Corrupt("format".to_owned()))?;
            Ok(Some(u32::from_be_bytes(bytes)))
        }
        None if tree.is_empty() => Ok(None),
        None => Ok(Some(1)),
    }
}

fn decode_id(v: &[u8]) -> Result<u64> {
    v.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| Error::Corrupt("series id".to_owned()))
}

/// The time-series store.
///
/// After a write fails with an I/O error (a full disk), sled refuses every later write until
/// it is reopened, and its memory may hold values that never reached the disk. The store then
/// reopens itself in-process ([`Store::reopen`]) before the failed write is answered: the
/// handles are dropped, sled recovers what its files hold, and the sequence and releases are
/// read again. Until a write succeeds again ([`Store::probe`]) the store is *failing*: writes
/// are refused at once, without touching memory, so no reader sees values of a write that is
/// answered with an error.
pub struct Store {
    /// sled's handles; `None` while the store is reopened.
    open: RwLock<Option<Arc<Handles>>>,
    /// Where the store lives and how it was opened (`None`: a temporary store).
    origin: Option<(std::path::PathBuf, StoreOptions)>,
    /// Guards writes; holds the last sequence number given.
    write_lock: Mutex<u64>,
    /// The last sequence number given, readable while a write (or a snapshot) holds the lock.
    last: AtomicU64,
    /// The named releases (added under the write lock).
    releases: Arc<RwLock<Releases>>,
    /// Whether writes are refused since one failed with an I/O error.
    failing: std::sync::atomic::AtomicBool,
    /// For each reopening: the generation it ended and the last sequence its files held
    /// (the newest [`REOPENINGS_KEPT`]).
    reopened: Mutex<std::collections::VecDeque<(u64, u64)>>,
}

/// Reopenings whose outcome a late writer can still look up.
const REOPENINGS_KEPT: usize = 1024;

/// How long a reopening waits for reads in progress to let the old files go.
const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The sled handles of one opening of the store.
struct Handles {
    /// Which opening (0 the first, one more at each reopening).
    generation: u64,
    db: sled::Db,
    tree: sled::Tree,
    /// User-defined country groups, by name (see [`Store::define_group`]).
    groups: sled::Tree,
}

/// What a store's files hold besides the series: its sequence and releases.
struct Loaded {
    tree: sled::Tree,
    groups: sled::Tree,
    last: u64,
    releases: Releases,
}

fn release_key(id: u32) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = RELEASE;
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

/// How a store uses memory and disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Bytes of sled's page cache (what a store holds in memory beyond its working set).
    pub cache_bytes: u64,
    /// Whether a new store compresses its pages (zstd, level 1): at 10^7 points of trade
    /// data 2.4 times less disk, 1.6 times the time to ingest and a third more memory. An
    /// existing store keeps the setting it was created with.
    pub compression: bool,
    /// Bytes of the reserve file kept in the store's directory (see [`crate::reserve`]); 0:
    /// none.
    pub reserve_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_bytes: 64 * 1024 * 1024,
            compression: false,
            reserve_bytes: 0,
        }
    }
}

/// Whether the store in `dir` was created compressed (`None`: no store there yet).
pub(crate) fn created_compressed(dir: &Path) -> Option<bool> {
    // Text lines, then a binary checksum.
    let conf = std::fs::read(dir.join("conf")).ok()?;
    String::from_utf8_lossy(&conf)
        .lines()
        .find_map(|l| l.strip_prefix("use_compression: "))
        .map(|v| v.trim() == "true")
}

impl Store {
    /// Opens (or creates) the store in `dir`, with the default [`StoreOptions`].
    pub fn open(dir: &Path) -> Result<Store> {
        Store::open_with(dir, StoreOptions::default())
    }

    /// Opens (or creates) the store in `dir`.
    ///
    /// On a full disk it opens by giving back the reserve file's space and starts
    /// [failing](Store::failing) (reads work, writes resume once there is room again).
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Store> {
        let db = match Self::open_db(dir, options) {
            Err(Error::Storage(sled::Error::Io(e)))
                if e.kind() == std::io::ErrorKind::StorageFull && crate::reserve::release(dir) =>
            {
                tracing::error!(error = %e, "the disk is full: the store opens on its reserve's space and refuses writes until there is room");
                Self::open_db(dir, options)?
            }
            opened => opened?,
        };
        let mut store = Self::from_db(db, &dir.display().to_string())?;
        store.origin = Some((dir.to_path_buf(), options));
        if let Err(e) = crate::reserve::hold(dir, options.reserve_bytes) {
            tracing::error!(error = %e, "cannot hold the store's reserve (a full disk?): writes are refused until there is room");
            store.failing.store(true, Ordering::Release);
        }
        Ok(store)
    }

    fn open_db(dir: &Path, options: StoreOptions) -> Result<sled::Db> {
        let compression = created_compressed(dir).unwrap_or(options.compression);
        Ok(sled::Config::new()
            .path(dir)
            .cache_capacity(options.cache_bytes)
            .use_compression(compression)
            .compression_factor(1)
            .open()?)
    }

    /// Opens a store that lives only in memory (tests, benchmarks).
    pub fn temporary() -> Result<Store> {
        Self::from_db(sled::Config::new().temporary(true).open()?, "(temporary)")
    }

    fn from_db(db: sled::Db, dir: &str) -> Result<Store> {
        let loaded = Self::load(&db, dir)?;
        Ok(Store {
            open: RwLock::new(Some(Arc::new(Handles {
                generation: 0,
                db,
                tree: loaded.tree,
                groups: loaded.groups,
            }))),
            origin: None,
            write_lock: Mutex::new(loaded.last),
            last: AtomicU64::new(loaded.last),
            releases: Arc::new(RwLock::new(loaded.releases)),
            failing: Default::default(),
            reopened: Default::default(),
        })
    }

    fn load(db: &sled::Db, dir: &str) -> Result<Loaded> {
        let tree = db.open_tree("series")?;
        match format_of(&tree)? {
            Some(FORMAT) => {}
            None => {
                tree.insert(FORMAT_KEY, &FORMAT.to_be_bytes())?;
            }
            Some(old @ 1..FORMAT) => {
                let before = match old {
                    1 => "before series had a measure",
                    2 => "before chunks had checksums and releases",
                    _ => "before series were found by their key alone",
                };
                return Err(Error::Format(format!(
                    "the store was written in format {old} ({before}); this version reads format {FORMAT}: migrate it with `tradepact migrate-store {dir}` (the old store is kept beside it)"
                )));
            }
            Some(other) => {
                return Err(Error::Format(format!(
                    "the store was written in format {other} by a newer tradepact; this version reads format {FORMAT}"
                )))
            }
        }
        let last = match tree.get(SEQUENCE)? {
            Some(v) => decode_id(&v)?,
            None => 0,
        };
        let groups = db.open_tree("groups")?;
        let mut releases = Releases::default();
        for item in tree.scan_prefix([RELEASE]) {
            let (k, v) = item?;
            let id = k[1..]
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| Error::Corrupt("release key".to_owned()))?;
            if id != releases.next_id() {
                return Err(Error::Corrupt(format!("release {id} out of order")));
            }
            releases.add(ReleaseInfo::decode(id, &v)?);
        }
        Ok(Loaded {
            tree,
            groups,
            last,
            releases,
        })
    }

    /// sled's handles; `Unavailable` while the store is reopened.
    fn h(&self) -> Result<Arc<Handles>> {
        self.open
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                Error::Unavailable(
                    "the store is being reopened after a failed write; try again shortly"
                        .to_owned(),
                )
            })
    }

    /// Which opening of the store this is (one more at each [`Store::reopen`]).
    pub fn generation(&self) -> u64 {
        self.h().map_or(u64::MAX, |h| h.generation)
    }

    /// Whether writes are refused since one failed with an I/O error (until
    /// [`Store::probe`] succeeds).
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// `Unavailable` while the store is failing (or below its low watermark): a write refused
    /// before it touches anything. A cluster node asks before it publishes a write it could not
    /// apply.
    pub fn refuse_while_failing(&self) -> Result<()> {
        if let Some((dir, options)) = &self.origin {
            if let Err(low) = crate::reserve::room_to_write(dir, options.reserve_bytes) {
                if !self.failing.swap(true, Ordering::AcqRel) {
                    tracing::error!("{low}: writes are refused until there is room");
                }
            }
        }
        match self.failing() {
            false => Ok(()),
            true => Err(Error::Unavailable(
                "the store cannot write now (the disk is full or nearly, or its last write failed with an I/O error: logged on the server); writes resume by themselves once there is room; nothing was written by this call".to_owned(),
            )),
        }
    }

    /// After `e`, an error of a write or flush of opening `generation`: for an I/O error,
    /// marks the store failing and reopens it (unless another caller did since); `e`.
    fn failed(&self, generation: u64, e: Error) -> Error {
        if !matches!(e, Error::Storage(sled::Error::Io(_))) {
            return e;
        }
        let mut last = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.failed_locked(generation, e, &mut last)
    }

    /// [`Store::failed`] with the write lock held.
    fn failed_locked(&self, generation: u64, e: Error, last: &mut MutexGuard<'_, u64>) -> Error {
        if !matches!(e, Error::Storage(sled::Error::Io(_))) {
            return e;
        }
        if !self.failing.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %e, "a write failed: writes are refused until one succeeds again");
        }
        let current = self.open.read().unwrap_or_else(|e| e.into_inner()).clone();
        if current.is_none_or(|h| h.generation == generation) {
            if let Some((dir, _)) = &self.origin {
                // Room for sled to open again (it writes as it opens).
                crate::reserve::release(dir);
            }
            if let Err(again) = self.reopen_locked(last) {
                tracing::error!(error = %again, "the store could not be reopened after a failed write; it is retried");
            }
        }
        e
    }

    /// Drops sled's handles and opens the store's files again: what they hold becomes the
    /// store (writes applied in memory but never written are gone), its sequence and releases
    /// read again. Waits up to 10 s for reads in progress to let the old handles go (calls
    /// meanwhile are `Unavailable`); on an error the store stays closed until a later call.
    /// The last sequence the files hold.
    pub fn reopen(&self) -> Result<u64> {
        let mut last = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.reopen_locked(&mut last)
    }

    fn reopen_locked(&self, last: &mut MutexGuard<'_, u64>) -> Result<u64> {
        let Some((dir, options)) = &self.origin else {
            return Err(Error::Unavailable(
                "a temporary store cannot be reopened".to_owned(),
            ));
        };
        let old = self.open.write().unwrap_or_else(|e| e.into_inner()).take();
        let generation = match &old {
            Some(h) => h.generation,
            // Closed by an earlier attempt: the generation it ended is the last recorded + 1.
            None => self.reopened_generation(),
        };
        // Dropped apart: sled flushes as its handles drop, and after some failures (a value
        // written to a blob file of its own, say) that flush never returns.
        std::thread::spawn(move || drop(old));
        let started = std::time::Instant::now();
        let db = loop {
            match Self::open_db(dir, *options) {
                Ok(db) => break db,
                // The old handles live on in reads in progress: their file lock with them.
                Err(Error::Storage(sled::Error::Io(e)))
                    if (e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("could not acquire lock"))
                        && started.elapsed() < REOPEN_WAIT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        };
        let loaded = Self::load(&db, &dir.display().to_string())?;
        *self.releases.write().unwrap_or_else(|e| e.into_inner()) = loaded.releases;
        self.set_last(last, loaded.last);
        let mut reopened = self.reopened.lock().unwrap_or_else(|e| e.into_inner());
        if reopened.len() == REOPENINGS_KEPT {
            reopened.pop_front();
        }
        reopened.push_back((generation, loaded.last));
        drop(reopened);
        *self.open.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(Handles {
            generation: generation + 1,
            db,
            tree: loaded.tree,
            groups: loaded.groups,
        }));
        tracing::warn!(
            generation = generation + 1,
            sequence = loaded.last,
            "store reopened after a failed write: it holds what its files hold"
        );
        Ok(loaded.last)
    }

    /// The generation the next reopening starts from when the store is closed.
    fn reopened_generation(&self) -> u64 {
        let reopened = self.reopened.lock().unwrap_or_else(|e| e.into_inner());
        reopened.back().map_or(0, |(g, _)| g + 1)
    }

    /// Whether write `sequence` of opening `generation` is durable, when a reopening has
    /// decided it (`None` while that opening is current: flush to know).
    pub fn decided(&self, generation: u64, sequence: u64) -> Option<bool> {
        if self.h().is_ok_and(|h| h.generation == generation) {
            return None;
        }
        let reopened = self.reopened.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            reopened
                .iter()
                .find(|(g, _)| *g == generation)
                .is_some_and(|(_, kept)| sequence <= *kept),
        )
    }

    /// Makes every write so far durable: how many of `writes` (in write order) are durable
    /// now, and the sequence up to which writes of the current opening are, or the error of
    /// the flush (after which the store was reopened: a write is durable when its files held
    /// it).
    pub fn settle(&self, writes: &[WriteSummary]) -> (usize, Result<u64>) {
        let durable_in = |generation: Option<u64>| {
            writes
                .iter()
                .take_while(|w| {
                    w.sequence == 0
                        || Some(w.generation) == generation
                        || self.decided(w.generation, w.sequence) == Some(true)
                })
                .count()
        };
        let h = match self.h() {
            Ok(h) => h,
            Err(e) => return (durable_in(None), Err(e)),
        };
        let upto = self.sequence();
        match h.db.flush() {
            Ok(_) => (durable_in(Some(h.generation)), Ok(upto)),
            Err(e) => {
                let generation = h.generation;
                drop(h);
                let e = self.failed(generation, e.into());
                (durable_in(None), Err(e))
            }
        }
    }

    /// Writes the reserve file again, then tries a write of nothing new (the sequence as it
    /// is) and its flush; on success the store writes again, on an I/O error it is reopened
    /// and stays failing. Whether writes succeed now.
    pub fn probe(&self) -> Result<()> {
        let mut last = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((dir, options)) = &self.origin {
            // Writes resume only with the reserve held again (room for the next failure).
            crate::reserve::hold(dir, options.reserve_bytes)
                .map_err(|e| Error::Storage(sled::Error::Io(e)))?;
            // And room beyond it (else the write now would take the space just given back).
            crate::reserve::room_to_resume(dir, options.reserve_bytes)
                .map_err(Error::Unavailable)?;
        }
        let h = match self.h() {
            Ok(h) => h,
            Err(_) => {
                self.reopen_locked(&mut last)?;
                self.h()?
            }
        };
        let generation = h.generation;
        let tried = h
            .tree
            .insert(SEQUENCE, last.to_be_bytes().to_vec())
            .and_then(|_| h.db.flush())
            .map_err(Error::from);
        drop(h);
        match tried {
            Ok(_) => {
                if self.failing.swap(false, Ordering::AcqRel) {
                    tracing::info!("a write succeeded again: the store takes writes");
                }
                Ok(())
            }
            Err(e) => Err(self.failed_locked(generation, e, &mut last)),
        }
    }

    /// Stores (or replaces) a user-defined country group, durably; the caller has checked it
    /// ([`GroupInfo::check`]).
    pub fn define_group(&self, group: &GroupInfo) -> Result<()> {
        let mut value = Vec::with_capacity(4 + group.description.len() + 7 * group.members.len());
        value.extend_from_slice(&(group.description.len() as u32).to_be_bytes());
        value.extend_from_slice(group.description.as_bytes());
        for m in &group.members {
            value.extend_from_slice(m.code.as_str().as_bytes());
            value.extend_from_slice(&m.from.unwrap_or(0).to_be_bytes());
            value.extend_from_slice(&m.until.unwrap_or(0).to_be_bytes());
        }
        self.refuse_while_failing()?;
        let h = self.h()?;
        let written = h.groups.insert(group.name.as_bytes(), value.as_slice());
        match written.and_then(|_| h.db.flush()) {
            Ok(_) => Ok(()),
            Err(e) => {
                let generation = h.generation;
                drop(h);
                let e = self.failed(generation, e.into());
                // Reopened: stored after all when the files hold it.
                let h = self.h()?;
                match h.groups.get(group.name.as_bytes()) {
                    Ok(Some(kept)) if kept == value.as_slice() => Ok(()),
                    _ => Err(e),
                }
            }
        }
    }

    /// The user-defined country groups, by name.
    pub fn user_groups(&self) -> Result<Vec<GroupInfo>> {
        let corrupt = || Error::Corrupt("a user-defined group".to_owned());
        let mut out = Vec::new();
        for item in self.h()?.groups.iter() {
            let (name, v) = item?;
            let len = v.get(..4).ok_or_else(corrupt)?;
            let len = u32::from_be_bytes(len.try_into().map_err(|_| corrupt())?) as usize;
            let description = v.get(4..4 + len).ok_or_else(corrupt)?;
            let members = v[4 + len..]
                .chunks(7)
                .map(|m| {
                    let code = std::str::from_utf8(m.get(..3)?).ok()?;
                    let year = |b: &[u8]| {
                        let y = u16::from_be_bytes(b.try_into().ok()?);
                        Some((y != 0).then_some(y))
                    };
                    Some(Membership {
                        code: Country::of_shape(code)?,
                        from: year(m.get(3..5)?)?,
                        until: year(m.get(5..7)?)?,
                    })
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(corrupt)?;
            out.push(GroupInfo {
                name: String::from_utf8_lossy(&name).into_owned(),
                description: String::from_utf8_lossy(description).into_owned(),
                members,
                user_defined: true,
            });
        }
        Ok(out)
    }

    /// Bytes the store's files take (sled's count, including space not yet reclaimed).
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.h()?.db.size_on_disk()?)
    }

    /// Makes every write applied so far durable (fsync) and returns the sequence number up
    /// to which all writes are now durable. Concurrent callers share the work.
    pub fn flush(&self) -> Result<u64> {
        let h = self.h()?;
        let upto = self.sequence();
        match h.db.flush() {
            Ok(_) => Ok(upto),
            Err(e) => {
                let generation = h.generation;
                drop(h);
                Err(self.failed(generation, e.into()))
            }
        }
    }

    /// Whether no series is stored.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self
            .h()?
            .tree
            .scan_prefix([INDEX])
            .next()
            .transpose()?
            .is_none())
    }

    /// The entry of series `key`, if stored.
    fn entry(&self, key: &SeriesKey) -> Result<Option<sled::IVec>> {
        Ok(self.h()?.tree.get(prefixed(INDEX, &key.encode()))?)
    }

    /// Upserts the points of every series in `batch`, atomically. Not durable until
    /// [`Store::flush`] returns.
    pub fn write(&self, batch: &[SeriesPoints]) -> Result<WriteSummary> {
        self.write_then(batch, None, |_| {})
    }

    /// [`Store::write`] of the values of `release` (see [`crate::release`]).
    pub fn write_release(&self, batch: &[SeriesPoints], release: &Release) -> Result<WriteSummary> {
        self.write_then(batch, Some(release), |_| {})
    }

    /// The id of `release`, adding it to `ops` when new. `Invalid` when a release of that
    /// label was written with another date (a release's rank never changes).
    fn release_id(&self, release: &Release, ops: &mut sled::Batch) -> Result<(u32, bool)> {
        let releases = self.releases.read().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = releases.by_label(&release.label) {
            if known.release.date != release.date {
                return Err(Error::Invalid(vec![crate::Violation {
                    field: "release.date".to_owned(),
                    description: format!(
                        "release {} was published on {}; a release keeps its date (name a new release for other figures)",
                        release.label, known.release.date
                    ),
                }]));
            }
            return Ok((known.id, false));
        }
        let info = ReleaseInfo {
            id: releases.next_id(),
            release: release.clone(),
        };
        ops.insert(
            prefixed(RELEASE_LABEL, release.label.as_bytes()),
            info.id.to_be_bytes().to_vec(),
        );
        ops.insert(release_key(info.id).to_vec(), info.encode());
        Ok((info.id, true))
    }

    /// [`Store::write`] (of the values of `release`, when named), then `applied(sequence)`
    /// while writes are still serialised, so that whatever it does (telling watchers) happens
    /// in sequence order.
    pub fn write_then(
        &self,
        batch: &[SeriesPoints],
        release: Option<&Release>,
        applied: impl FnOnce(u64),
    ) -> Result<WriteSummary> {
        self.write_inner(batch, release, None, applied)
    }

    /// [`Store::write_then`] as write number `at` of a log this store is a view of (cluster
    /// mode: the stream sequence of the message), recorded as the store's sequence in the same
    /// atomic batch, so that the store knows, after any crash, the last message it applied. A
    /// write at or below the store's sequence was applied already: nothing is written and the
    /// summary is empty. A write without points still records its sequence.
    pub fn write_at(
        &self,
        batch: &[SeriesPoints],
        release: Option<&Release>,
        at: u64,
        applied: impl FnOnce(u64),
    ) -> Result<WriteSummary> {
        self.write_inner(batch, release, Some(at), applied)
    }

    fn write_inner(
        &self,
        batch: &[SeriesPoints],
        release: Option<&Release>,
        at: Option<u64>,
        applied: impl FnOnce(u64),
    ) -> Result<WriteSummary> {
        let mut last = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        if at.is_some_and(|at| at <= *last) {
            return Ok(WriteSummary::default());
        }
        self.refuse_while_failing()?;
        let h = self.h()?;
        let mut ops = sled::Batch::default();
        let (release_id, new_release) = match release {
            Some(r) => self.release_id(r, &mut ops)?,
            None => (0, false),
        };
        let ranks = self.releases.read().unwrap_or_else(|e| e.into_inner());
        let rank = |id: u32| match (id == release_id, release) {
            (true, Some(r)) if new_release => Rank::on(r.date).with_order(id),
            _ => ranks.rank(id),
        };
        let mut summary = WriteSummary::default();
        // Each series written, by key: its encoded key, counts, whether its chunks live apart
        // (else inline, or new), the chunks read or written, and the periods written.
        struct Written {
            encoded: Vec<u8>,
            meta: Meta,
            apart: bool,
            chunks: BTreeMap<u32, Chunk>,
            touched: (u32, u32),
        }
        let mut written: HashMap<&SeriesKey, Written> = HashMap::new();
        for series in batch {
            if series.points.is_empty() {
                continue;
            }
            let w = match written.entry(&series.key) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let encoded = series.key.encode();
                    let mut w = Written {
                        meta: Meta::NEW,
                        apart: false,
                        chunks: BTreeMap::new(),
                        touched: (u32::MAX, 0),
                        encoded,
                    };
                    if let Some(raw) = h.tree.get(prefixed(INDEX, &w.encoded))? {
                        let (meta, inline) = decode_entry(&raw)?;
                        w.meta = meta;
                        match inline {
                            Some((block, at)) => {
                                let chunk = Chunk::decode(&raw[at])
                                    .map_err(|e| corrupt_chunk(&series.key, block, &e.detail()))?;
                                w.chunks.insert(block, chunk);
                            }
                            None => w.apart = true,
                        }
                    }
                    e.insert(w)
                }
            };
            for p in &series.points {
                w.touched = (w.touched.0.min(p.ordinal), w.touched.1.max(p.ordinal));
                let block = p.ordinal / BLOCK;
                let chunk = match w.chunks.entry(block) {
                    btree_map::Entry::Occupied(e) => e.into_mut(),
                    btree_map::Entry::Vacant(e) => {
                        let stored = match w.apart {
                            true => h.tree.get(chunk_key(&w.encoded, block))?,
                            false => None,
                        };
                        let chunk = match stored {
                            Some(raw) => Chunk::decode(&raw)
                                .map_err(|e| corrupt_chunk(&series.key, block, &e.detail()))?,
                            None => Chunk::default(),
                        };
                        e.insert(chunk)
                    }
                };
                let offset = (p.ordinal % BLOCK) as u8;
                match chunk.upsert_release(offset, p.value, &p.source, release_id, &rank) {
                    Upsert::Inserted => {
                        summary.inserted += 1;
                        w.meta.count += 1;
                        w.meta.first = w.meta.first.min(p.ordinal);
                        w.meta.last = w.meta.last.max(p.ordinal);
                    }
                    Upsert::Updated => summary.updated += 1,
                }
            }
        }
        if written.is_empty() {
            if let Some(at) = at {
                // Nothing to store, but the log's message is applied.
                ops.insert(SEQUENCE, at.to_be_bytes().to_vec());
                drop(ranks);
                if let Err(e) = h.tree.apply_batch(ops) {
                    let generation = h.generation;
                    drop(h);
                    return Err(self.failed_locked(generation, e.into(), &mut last));
                }
                self.set_last(&mut last, at);
                summary.sequence = at;
                summary.generation = h.generation;
                applied(at);
            }
            return Ok(summary);
        }
        let seq = at.unwrap_or(*last + 1);
        let mut record = Vec::with_capacity(4 + written.len() * 32);
        record.extend_from_slice(&release_id.to_be_bytes());
        for w in written.values() {
            if w.meta.one_block() {
                // Every point in one block: the chunk goes in the entry (the only one read).
                let (block, chunk) = w.chunks.iter().next().ok_or_else(|| {
                    Error::Corrupt("a series in one block without its chunk".to_owned())
                })?;
                let chunk = chunk.encode();
                ops.insert(
                    prefixed(INDEX, &w.encoded),
                    encode_entry(&w.meta, Some((*block, &chunk))),
                );
            } else {
                // Several blocks: each chunk apart (an inline one moves out with them).
                ops.insert(prefixed(INDEX, &w.encoded), encode_entry(&w.meta, None));
                for (block, chunk) in &w.chunks {
                    ops.insert(chunk_key(&w.encoded, *block), chunk.encode());
                }
            }
            record.extend_from_slice(&(w.encoded.len() as u16).to_be_bytes());
            record.extend_from_slice(&w.encoded);
            record.extend_from_slice(&w.touched.0.to_be_bytes());
            record.extend_from_slice(&w.touched.1.to_be_bytes());
        }
        ops.insert(changes_key(seq).to_vec(), record);
        ops.insert(SEQUENCE, seq.to_be_bytes().to_vec());
        if seq > RETAINED_CHANGES {
            ops.remove(changes_key(seq - RETAINED_CHANGES).to_vec());
        }
        drop(ranks);
        if let Err(e) = h.tree.apply_batch(ops) {
            let generation = h.generation;
            drop(h);
            return Err(self.failed_locked(generation, e.into(), &mut last));
        }
        if let (true, Some(r)) = (new_release, release) {
            let mut releases = self.releases.write().unwrap_or_else(|e| e.into_inner());
            releases.add(ReleaseInfo {
                id: release_id,
                release: r.clone(),
            });
        }
        self.set_last(&mut last, seq);
        summary.sequence = seq;
        summary.generation = h.generation;
        applied(seq);
        Ok(summary)
    }

    /// The sequence number of the last write (without waiting for one in progress).
    pub fn sequence(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }

    /// Records `seq` as the last sequence given (the write lock held).
    fn set_last(&self, last: &mut MutexGuard<'_, u64>, seq: u64) {
        **last = seq;
        self.last.store(seq, Ordering::Release);
    }

    /// The writes from sequence `from` on, oldest first, with what each touched (series
    /// deleted since are left out). `Err(OutOfRange)` when `from` is older than the changes
    /// kept ([`RETAINED_CHANGES`]).
    pub fn changes_since(&self, from: u64) -> Result<(Vec<Change>, u64)> {
        let current = *self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = match self.h()?.tree.scan_prefix([CHANGES]).next().transpose()? {
            Some((k, _)) => decode_id(&k[1..])?,
            None => current + 1,
        };
        if from < oldest && from <= current {
            return Err(Error::OutOfRange(format!(
                "writes before sequence {oldest} are no longer kept; re-read with GetSeries and watch from the current sequence {current}"
            )));
        }
        let mut out = Vec::new();
        for item in self
            .h()?
            .tree
            .range(changes_key(from)..=changes_key(current))
        {
            let (k, v) = item?;
            let sequence = decode_id(&k[1..])?;
            let corrupt = || Error::Corrupt("change record".into());
            let (release, v) = v.split_at_checked(4).ok_or_else(corrupt)?;
            let release = u32::from_be_bytes(release.try_into().map_err(|_| corrupt())?);
            let release = (release != 0)
                .then(|| self.release_info(release).map(|r| r.release))
                .transpose()?;
            let mut series = Vec::new();
            let mut rest = v;
            while !rest.is_empty() {
                let (len, tail) = rest.split_at_checked(2).ok_or_else(corrupt)?;
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                let (encoded, tail) = tail.split_at_checked(len).ok_or_else(corrupt)?;
                let (range, tail) = tail.split_at_checked(8).ok_or_else(corrupt)?;
                rest = tail;
                let key = SeriesKey::decode(encoded).ok_or_else(corrupt)?;
                if self.h()?.tree.get(prefixed(INDEX, encoded))?.is_none() {
                    continue; // deleted since
                }
                let ordinal =
                    |b: &[u8]| b.try_into().map(u32::from_be_bytes).map_err(|_| corrupt());
                let period = |ordinal| Period {
                    frequency: key.frequency,
                    ordinal,
                };
                let (first, last) = (period(ordinal(&range[..4])?), period(ordinal(&range[4..])?));
                series.push((key, first, last));
            }
            out.push(Change {
                sequence,
                release,
                series,
            });
        }
        Ok((out, current))
    }

    /// Release `id`, or `NotFound`.
    pub fn release_info(&self, id: u32) -> Result<ReleaseInfo> {
        let releases = self.releases.read().unwrap_or_else(|e| e.into_inner());
        releases
            .by_id(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no release {id}")))
    }

    /// The release labelled `label`, or `NotFound`.
    pub fn release_named(&self, label: &str) -> Result<ReleaseInfo> {
        let releases = self.releases.read().unwrap_or_else(|e| e.into_inner());
        releases
            .by_label(label)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no release {label:?} in the store")))
    }

    /// Every named release, in the order first written.
    pub fn releases(&self) -> Vec<ReleaseInfo> {
        let releases = self.releases.read().unwrap_or_else(|e| e.into_inner());
        releases.all().to_vec()
    }

    /// The view a read asked for; `NotFound` for an unknown release.
    pub fn view(&self, as_of: &AsOf) -> Result<View> {
        Ok(match as_of {
            AsOf::Latest => View::Latest,
            AsOf::Release(label) => View::AsOf(self.release_named(label)?.rank()),
            AsOf::Date(date) => View::AsOf(Rank::on(*date)),
        })
    }

    /// The releases, shared with lazy readers.
    pub(crate) fn releases_handle(&self) -> Arc<RwLock<Releases>> {
        self.releases.clone()
    }

    /// The rank of release `id` (the unnamed release's for 0 or an unknown id).
    pub fn rank(&self, id: u32) -> Rank {
        let releases = self.releases.read().unwrap_or_else(|e| e.into_inner());
        releases.rank(id)
    }

    /// The series' catalog entry, or `NotFound`.
    pub fn info(&self, key: &SeriesKey) -> Result<SeriesInfo> {
        let raw = self
            .entry(key)?
            .ok_or_else(|| Error::NotFound(format!("no series {key}")))?;
        Ok(info_of(key.clone(), decode_entry(&raw)?.0))
    }

    /// The stored chunks of `key` that hold periods in `from..=to`, in period order, lazily,
    /// each with the ordinal of its block's first period, undecoded but checked (see
    /// [`crate::chunk::ChunkView`]); a chunk's entries may fall outside the range at both
    /// ends. `NotFound` when the series does not exist.
    pub fn scan_chunk_bytes(
        &self,
        key: &SeriesKey,
        from: u32,
        to: u32,
    ) -> Result<impl Iterator<Item = Result<(u32, sled::IVec)>> + Send + 'static> {
        self.scan_chunk_bytes_at(key, from, to, View::Latest)
    }

    /// [`Store::scan_chunk_bytes`] as seen by `view`: a latest read passes chunks as stored;
    /// an as-of read re-packs a chunk with values of named releases as it stood then (and
    /// sees nothing of unnamed values). A chunk that fails its checksum or its checks is an error naming
    /// the series and its periods.
    pub fn scan_chunk_bytes_at(
        &self,
        key: &SeriesKey,
        from: u32,
        to: u32,
        view: View,
    ) -> Result<impl Iterator<Item = Result<(u32, sled::IVec)>> + Send + 'static> {
        let encoded = key.encode();
        let raw = self
            .h()?
            .tree
            .get(prefixed(INDEX, &encoded))?
            .ok_or_else(|| Error::NotFound(format!("no series {key}")))?;
        Ok(self.chunks_of(key, &encoded, &raw, from, to, view))
    }
    /// The chunks of series `key` (`encoded`, whose entry is `entry`) that hold periods in
    /// `from..=to`, as [`Store::scan_chunk_bytes_at`] gives them: the inline chunk, or the
    /// chunks apart (looked up one by one for a short range, else one range scan).
    pub(crate) fn chunks_of(
        &self,
        key: &SeriesKey,
        encoded: &[u8],
        entry: &sled::IVec,
        from: u32,
        to: u32,
        view: View,
    ) -> impl Iterator<Item = Result<(u32, sled::IVec)>> + Send + 'static {
        let (key, releases) = (key.clone(), self.releases.clone());
        self.raw_chunks_of(encoded, entry, from, to)
            .map(move |item| checked(&key, item, view, &releases))
    }

    /// The chunks [`Store::chunks_of`] reads, unchecked: each with its block, or the block and
    /// the error that stopped its read.
    pub(crate) fn raw_chunks_of(
        &self,
        encoded: &[u8],
        entry: &sled::IVec,
        from: u32,
        to: u32,
    ) -> impl Iterator<Item = RawChunk> + Send + 'static {
        let (mut gets, mut range) = (Vec::new(), None);
        let h = match self.h() {
            Ok(h) => h,
            Err(e) => {
                gets.push(Err((u32::MAX, e)));
                return gets.into_iter().chain(range.into_iter().flatten());
            }
        };
        match decode_entry(entry) {
            Err(e) => gets.push(Err((u32::MAX, e))),
            Ok((meta, inline)) => {
                // Only the blocks the series has points in.
                let (from, to) = (from.max(meta.first), to.min(meta.last));
                match inline {
                    _ if from > to => {}
                    Some((block, at)) => {
                        gets.push(Ok((block, entry.subslice(at.start, at.len()))));
                    }
                    None => {
                        let blocks = from / BLOCK..=to / BLOCK;
                        if blocks.end() - blocks.start() < POINT_GET_BLOCKS {
                            // A short read: point lookups, cheaper in sled than an iterator,
                            // which copies the leaf node it starts in.
                            for block in blocks {
                                match h.tree.get(chunk_key(encoded, block)) {
                                    Ok(Some(v)) => gets.push(Ok((block, v))),
                                    Ok(None) => {}
                                    Err(e) => gets.push(Err((block, e.into()))),
                                }
                            }
                        } else {
                            let (a, b) = (
                                chunk_key(encoded, *blocks.start()),
                                chunk_key(encoded, *blocks.end()),
                            );
                            range = Some(h.tree.range(a..=b).map(|item| {
                                let (k, v) = item.map_err(|e| (u32::MAX, e.into()))?;
                                Ok((block_of(&k), v))
                            }));
                        }
                    }
                }
            }
        }
        gets.into_iter().chain(range.into_iter().flatten())
    }

    /// A chunk [`Store::raw_chunks_of`] read, checked and as `view` sees it, or an error
    /// naming `key` and the chunk's periods.
    pub(crate) fn check_chunk(
        &self,
        key: &SeriesKey,
        item: RawChunk,
        view: View,
    ) -> Result<(u32, sled::IVec)> {
        checked(key, item, view, &self.releases)
    }

    /// The entries whose encoded key starts with `prefix`, in key order: each series' encoded
    /// key and entry, lazily (for questions across many series).
    pub(crate) fn catalog(
        &self,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> + Send + 'static {
        let (open, closed) = match self.h() {
            Ok(h) => (Some(h.tree.scan_prefix(prefixed(INDEX, prefix))), None),
            Err(e) => (None, Some(Err(e))),
        };
        closed
            .into_iter()
            .chain(open.into_iter().flatten().map(|item| {
                let (k, v) = item?;
                Ok((k.subslice(1, k.len() - 1), v))
            }))
    }

    /// Like [`Store::scan_chunk_bytes`], each chunk decoded.
    pub fn scan_chunks(
        &self,
        key: &SeriesKey,
        from: u32,
        to: u32,
        view: View,
    ) -> Result<impl Iterator<Item = Result<(u32, Chunk)>> + Send + 'static> {
        Ok(self
            .scan_chunk_bytes_at(key, from, to, view)?
            .map(|item| item.and_then(|(base, bytes)| Ok((base, Chunk::decode(&bytes)?)))))
    }

    /// The points of `key` with `from <= ordinal <= to`, as `view` sees them, in period
    /// order, lazily. `NotFound` when the series does not exist.
    pub fn scan(
        &self,
        key: &SeriesKey,
        from: u32,
        to: u32,
        view: View,
    ) -> Result<impl Iterator<Item = Result<StoredPoint>> + Send + 'static> {
        let frequency = key.frequency;
        let encoded = key.encode();
        let entry = (self.h()?.tree.get(prefixed(INDEX, &encoded))?)
            .ok_or_else(|| Error::NotFound(format!("no series {key}")))?;
        let (key, releases) = (key.clone(), self.releases.clone());
        // Each chunk parsed and checked once, decoded without its history.
        let chunks = (self.raw_chunks_of(&encoded, &entry, from, to))
            .map(move |item| checked_chunk(&key, item, view, &releases));
        Ok(chunks.flat_map(move |chunk| {
            let points: Vec<Result<StoredPoint>> = match chunk {
                Err(e) => vec![Err(e)],
                Ok((base, chunk)) => chunk
                    .entries()
                    .iter()
                    .map(|e| (base + u32::from(e.offset), e))
                    .filter(|(ordinal, _)| (from..=to).contains(ordinal))
                    .map(|(ordinal, e)| {
                        Ok(StoredPoint {
                            period: Period { frequency, ordinal },
                            value: e.value,
                            source: e.source.clone(),
                            release: e.release,
                        })
                    })
                    .collect(),
            };
            points
        }))
    }

    /// All latest points of `key` in `[from, to]`, or `NotFound`.
    pub fn read(&self, key: &SeriesKey, from: u32, to: u32) -> Result<Vec<StoredPoint>> {
        self.scan(key, from, to, View::Latest)?.collect()
    }

    /// The `(ordinal, value)` pairs of `key` in `[from, to]` as `view` sees them, read from
    /// the chunks in place (no sources); a missing series reads as empty.
    pub fn values_or_empty(
        &self,
        key: &SeriesKey,
        from: u32,
        to: u32,
        view: View,
    ) -> Result<Vec<(u32, f64)>> {
        Ok(self
            .released_values(key, from, to, view)?
            .into_iter()
            .map(|(ordinal, value, _)| (ordinal, value))
            .collect())
    }

    /// [`Store::values_or_empty`] with the release of each value.
    pub fn released_values(
        &self,
        key: &SeriesKey,
        from: u32,
        to: u32,
        view: View,
    ) -> Result<Vec<(u32, f64, u32)>> {
        let chunks = match self.scan_chunk_bytes_at(key, from, to, view) {
            Err(Error::NotFound(_)) => return Ok(Vec::new()),
            other => other?,
        };
        let mut out = Vec::new();
        for chunk in chunks {
            let (base, bytes) = chunk?;
            let view = ChunkView::parse(&bytes)?;
            for i in 0..view.len() {
                let ordinal = base + u32::from(view.offset(i));
                if (from..=to).contains(&ordinal) {
                    out.push((ordinal, view.value(i), view.release(i)));
                }
            }
        }
        Ok(out)
    }

    /// Series matching `filter` in key order, starting after the encoded key `after`,
    /// at most `limit`; also returns the encoded key to continue after, if more match.
    pub fn list(
        &self,
        filter: &SeriesFilter,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<SeriesInfo>, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        for prefix in self.prefixes(filter.reporter, filter.partner.as_slice(), false)? {
            let prefix = prefixed(INDEX, &prefix);
            let start = match after {
                // The smallest key greater than `after`.
                Some(a) => {
                    let mut k = prefixed(INDEX, a);
                    k.push(0);
                    k.max(prefix.clone())
                }
                None => prefix.clone(),
            };
            for item in self.h()?.tree.range(start..) {
                let (k, v) = item?;
                if !k.starts_with(&prefix) {
                    break;
                }
                let key = SeriesKey::decode(&k[1..])
                    .ok_or_else(|| Error::Corrupt("series index key".to_owned()))?;
                if !filter.matches(&key) {
                    continue;
                }
                if out.len() >= limit.max(1) {
                    let next = out.last().map(|last: &SeriesInfo| last.key.encode());
                    return Ok((out, next));
                }
                out.push(info_of(key, decode_entry(&v)?.0));
            }
        }
        Ok((out, None))
    }

    /// The encoded-key prefixes that hold every series of `reporter` (any when `None`) with
    /// one of `partners` (any when empty), in key order, one per reporter when `split`: keys
    /// begin with the reporter, then the partner, so a partner without a reporter is found by
    /// skipping from reporter to reporter (two lookups per reporter stored) instead of reading
    /// every entry.
    pub(crate) fn prefixes(
        &self,
        reporter: Option<Country>,
        partners: &[Country],
        split: bool,
    ) -> Result<Vec<Vec<u8>>> {
        let mut partners: Vec<[u8; 3]> = partners.iter().map(|p| p.bytes()).collect();
        partners.sort();
        partners.dedup();
        let reporters: Vec<[u8; 3]> = match (reporter, partners.is_empty()) {
            (Some(r), _) => vec![r.bytes()],
            (None, true) if !split => return Ok(vec![Vec::new()]),
            (None, _) => {
                let mut found = Vec::new();
                let mut from = vec![INDEX];
                while let Some(item) = self.h()?.tree.range(from.clone()..).next() {
                    let (k, _) = item?;
                    let Some(r) = k.get(1..4).filter(|_| k[0] == INDEX) else {
                        break;
                    };
                    let r: [u8; 3] = [r[0], r[1], r[2]];
                    found.push(r);
                    // Past every key of this reporter (codes are ASCII: no overflow).
                    from = vec![INDEX, r[0], r[1], r[2].saturating_add(1)];
                }
                found
            }
        };
        Ok(match partners.is_empty() {
            true => reporters.iter().map(|r| r.to_vec()).collect(),
            false => reporters
                .iter()
                .flat_map(|r| partners.iter().map(move |p| [*r, *p].concat()))
                .collect(),
        })
    }

    /// Reads every series' catalog entry and chunks, checking each chunk's checksum and
    /// layout and each series' point count: what an operator runs after a disk fault.
    /// Stops (`OutOfRange`) when `stop()` says so.
    pub fn verify(&self, stop: impl Fn() -> bool) -> Result<Verified> {
        let mut out = Verified::default();
        for item in self.h()?.tree.scan_prefix([INDEX]) {
            if stop() {
                return Err(Error::OutOfRange("the verification was stopped".to_owned()));
            }
            let (k, v) = match item {
                Ok(found) => found,
                Err(e) => {
                    out.corrupt.push(format!("the catalog stops reading: {e}"));
                    break;
                }
            };
            let Some(key) = SeriesKey::decode(&k[1..]) else {
                out.corrupt
                    .push(format!("a catalog key does not decode: {:?}", &k[1..]));
                continue;
            };
            out.series += 1;
            out.bytes += (k.len() + v.len()) as u64;
            let (meta, inline) = match decode_entry(&v) {
                Ok(found) => found,
                Err(e) => {
                    out.corrupt.push(format!("series {key}: {e}"));
                    continue;
                }
            };
            let (mut points, mut sound) = (0u64, true);
            let mut check = |block: u32, bytes: &[u8], out: &mut Verified| {
                out.chunks += 1;
                match ChunkView::parse(bytes) {
                    Ok(view) => {
                        points += view.len() as u64;
                        out.history += view.history_len() as u64;
                    }
                    Err(e) => {
                        out.corrupt
                            .push(corrupt_chunk(&key, block, &e.detail()).to_string());
                        sound = false;
                    }
                }
            };
            match inline {
                Some((block, at)) => check(block, &v[at], &mut out),
                None => {
                    for item in self.h()?.tree.scan_prefix(chunk_prefix(&k[1..])) {
                        match item {
                            Ok((ck, bytes)) => {
                                out.bytes += (ck.len() + bytes.len()) as u64;
                                check(block_of(&ck), &bytes, &mut out)
                            }
                            Err(e) => {
                                out.corrupt
                                    .push(format!("series {key}: its chunks stop reading: {e}"));
                                sound = false;
                                break;
                            }
                        }
                    }
                }
            }
            out.points += points;
            if sound && points != u64::from(meta.count) {
                out.corrupt.push(format!(
                    "series {key}: the catalog counts {} points, its chunks hold {points}",
                    meta.count
                ));
            }
        }
        Ok(out)
    }

    /// Removes a series and its points, atomically; returns how many points it held.
    /// Not durable until [`Store::flush`] returns.
    pub fn delete(&self, key: &SeriesKey) -> Result<u64> {
        self.delete_inner(key, None)
    }

    /// [`Store::delete`] as write number `at` of a log this store is a view of (see
    /// [`Store::write_at`]): recorded as the store's sequence in the same batch; at or below
    /// the store's sequence, applied already (0 points); a series that is not there deletes
    /// nothing and still records the sequence.
    pub fn delete_at(&self, key: &SeriesKey, at: u64) -> Result<u64> {
        self.delete_inner(key, Some(at))
    }

    fn delete_inner(&self, key: &SeriesKey, at: Option<u64>) -> Result<u64> {
        let mut last = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        if at.is_some_and(|at| at <= *last) {
            return Ok(0);
        }
        self.refuse_while_failing()?;
        let h = self.h()?;
        let generation = h.generation;
        if let (Some(at), None) = (at, h.tree.get(prefixed(INDEX, &key.encode()))?) {
            if let Err(e) = h.tree.insert(SEQUENCE, at.to_be_bytes().to_vec()) {
                drop(h);
                return Err(self.failed_locked(generation, e.into(), &mut last));
            }
            self.set_last(&mut last, at);
            return Ok(0);
        }
        let encoded = key.encode();
        let raw = h
            .tree
            .get(prefixed(INDEX, &encoded))?
            .ok_or_else(|| Error::NotFound(format!("no series {key}")))?;
        let (meta, _) = decode_entry(&raw)?;
        let mut ops = sled::Batch::default();
        ops.remove(prefixed(INDEX, &encoded));
        for item in h.tree.scan_prefix(chunk_prefix(&encoded)) {
            ops.remove(item?.0);
        }
        if let Some(at) = at {
            ops.insert(SEQUENCE, at.to_be_bytes().to_vec());
        }
        if let Err(e) = h.tree.apply_batch(ops) {
            drop(h);
            return Err(self.failed_locked(generation, e.into(), &mut last));
        }
        if let Some(at) = at {
            self.set_last(&mut last, at);
        }
        Ok(u64::from(meta.count))
    }
}

pub mod snapshot;

#[cfg(test)]
mod releases_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_support;

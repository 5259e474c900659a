use std::collections::hash_map::Entry;
use std::collections::{btree_map, BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use crate::chunk::{Chunk, ChunkView, Upsert, BLOCK};
use crate::model::reference::{GroupInfo, Membership};
use crate::model::{Country, Period, Release, SeriesFilter, SeriesKey, SeriesPoints};
use crate::release::{AsOf, Rank, ReleaseInfo, Releases, View};
use crate::{Error, Result};

pub(crate) const INDEX: u8 = b'K';
pub(crate) const META: u8 = b'M';
pub(crate) const CHUNK: u8 = b'C';
/// `N` + label → release id (u32 BE).
const RELEASE_LABEL: u8 = b'N';
/// `R` + release id (u32 BE) → the release ([`ReleaseInfo::encode`]).
pub(crate) const RELEASE: u8 = b'R';
/// `L` + sequence (u64 BE) → what a write touched: (series id, first, last period) each.
pub(crate) const CHANGES: u8 = b'L';
/// The last sequence number given to a write.
const SEQUENCE: &[u8] = b"Q";
/// The format of the layout (u32 BE).
pub(crate) const FORMAT_KEY: &[u8] = b"V";
/// The layout this version reads and writes: 3 since chunks are checksummed and keep the
/// values of every release (2: chunks without either; 1: series keys without a measure).
pub const FORMAT: u32 = 3;

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
}

impl std::ops::AddAssign for WriteSummary {
    fn add_assign(&mut self, rhs: Self) {
        self.inserted += rhs.inserted;
        self.updated += rhs.updated;
        self.sequence = self.sequence.max(rhs.sequence);
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

#[derive(Clone, Copy, Debug)]
struct Meta {
    count: u64,
    first: u32,
    last: u32,
}

impl Meta {
    fn encode(&self, key: &SeriesKey) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.first.to_be_bytes());
        out.extend_from_slice(&self.last.to_be_bytes());
        out.extend_from_slice(&key.encode());
        out
    }

    fn decode(b: &[u8]) -> Result<(Meta, SeriesKey)> {
        let meta = Meta::decode_counts(b)?;
        let key = SeriesKey::decode(&b[16..])
            .ok_or_else(|| Error::Corrupt("series metadata".to_owned()))?;
        Ok((meta, key))
    }

    /// The counts alone, without the key.
    fn decode_counts(b: &[u8]) -> Result<Meta> {
        let corrupt = || Error::Corrupt("series metadata".to_owned());
        if b.len() < 16 {
            return Err(corrupt());
        }
        Ok(Meta {
            count: u64::from_be_bytes(b[0..8].try_into().map_err(|_| corrupt())?),
            first: u32::from_be_bytes(b[8..12].try_into().map_err(|_| corrupt())?),
            last: u32::from_be_bytes(b[12..16].try_into().map_err(|_| corrupt())?),
        })
    }
}

fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + rest.len());
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

pub(crate) fn chunk_key(id: u64, block: u32) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = CHUNK;
    k[1..9].copy_from_slice(&id.to_be_bytes());
    k[9..13].copy_from_slice(&block.to_be_bytes());
    k
}

pub(crate) fn meta_key(id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = META;
    k[1..9].copy_from_slice(&id.to_be_bytes());
    k
}

/// A chunk read for `key` as `view` sees it, or an error naming the series and periods.
fn checked(
    key: &SeriesKey,
    item: std::result::Result<(u32, sled::IVec), (u32, sled::Error)>,
    view: View,
    releases: &RwLock<Releases>,
) -> Result<(u32, sled::IVec)> {
    let (block, bytes) = match item {
        Ok(found) => found,
        Err((block, sled::Error::Corruption { .. })) => {
            return Err(corrupt_chunk(key, block, "sled reports corruption"))
        }
        Err((_, e)) => return Err(e.into()),
    };
    let parsed = match ChunkView::parse(&bytes) {
        Ok(parsed) => parsed,
        Err(e) => return Err(corrupt_chunk(key, block, &e.to_string())),
    };
    let bytes = match view {
        View::Latest => bytes,
        // Unnamed values only: nothing was published.
        View::AsOf(_) if !parsed.has_releases() => sled::IVec::from(Chunk::default().encode()),
        View::AsOf(cutoff) => {
            let releases = releases.read().unwrap_or_else(|e| e.into_inner());
            let chunk = Chunk::decode(&bytes)?;
            sled::IVec::from(chunk.as_of(cutoff, &|id| releases.rank(id)).encode())
        }
    };
    Ok((block * BLOCK, bytes))
}

/// The error of a chunk that does not read: the series, the periods it holds, what failed.
pub(crate) fn corrupt_chunk(key: &SeriesKey, block: u32, what: &str) -> Error {
    if block == u32::MAX {
        return Error::Corrupt(format!(
            "series {key}: a chunk's key does not decode: {what}"
        ));
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
pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    /// User-defined country groups, by name (see [`Store::define_group`]).
    groups: sled::Tree,
    /// Guards writes; holds the last sequence number given.
    write_lock: Mutex<u64>,
    /// The named releases (added under the write lock).
    releases: Arc<RwLock<Releases>>,
}

fn release_key(id: u32) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[0] = RELEASE;
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(64 * 1024 * 1024)
            .open()?;
        Self::from_db(db, &dir.display().to_string())
    }

    /// Opens a store that lives only in memory (tests, benchmarks).
    pub fn temporary() -> Result<Store> {
        Self::from_db(sled::Config::new().temporary(true).open()?, "(temporary)")
    }

    fn from_db(db: sled::Db, dir: &str) -> Result<Store> {
        let tree = db.open_tree("series")?;
        match format_of(&tree)? {
            Some(FORMAT) => {}
            None => {
                tree.insert(FORMAT_KEY, &FORMAT.to_be_bytes())?;
            }
            Some(old @ (1 | 2)) => {
                return Err(Error::Format(format!(
                    "the store was written in format {old} ({}); this version reads format {FORMAT}: migrate it with `tradepact migrate-store {dir}` (the old store is kept beside it)",
                    if old == 1 { "before series had a measure" } else { "before chunks had checksums and releases" }
                )))
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
        Ok(Store {
            db,
            tree,
            groups,
            write_lock: Mutex::new(last),
            releases: Arc::new(RwLock::new(releases)),
        })
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
        self.groups.insert(group.name.as_bytes(), value)?;
        self.db.flush()?;
        Ok(())
    }

    /// The user-defined country groups, by name.
    pub fn user_groups(&self) -> Result<Vec<GroupInfo>> {
        let corrupt = || Error::Corrupt("a user-defined group".to_owned());
        let mut out = Vec::new();
        for item in self.groups.iter() {
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

    /// Makes every write applied so far durable (fsync) and returns the sequence number up
    /// to which all writes are now durable. Concurrent callers share the work.
    pub fn flush(&self) -> Result<u64> {
        let upto = self.sequence();
        self.db.flush()?;
        Ok(upto)
    }

    /// Whether no series is stored.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.tree.scan_prefix([INDEX]).next().transpose()?.is_none())
    }

    fn series_id(&self, key: &SeriesKey) -> Result<Option<u64>> {
        self.tree
            .get(prefixed(INDEX, &key.encode()))?
            .map(|v| decode_id(&v))
            .transpose()
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
        let mut last = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
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
        let mut touched: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
        let mut metas: HashMap<u64, (Meta, &SeriesKey)> = HashMap::new();
        let mut chunks: BTreeMap<(u64, u32), Chunk> = BTreeMap::new();
        let mut new_ids: HashMap<&SeriesKey, u64> = HashMap::new();

        for series in batch {
            if series.points.is_empty() {
                continue;
            }
            let id = match new_ids.get(&series.key) {
                Some(id) => *id,
                None => match self.series_id(&series.key)? {
                    Some(id) => id,
                    None => {
                        let id = self.db.generate_id()?;
                        ops.insert(
                            prefixed(INDEX, &series.key.encode()),
                            id.to_be_bytes().to_vec(),
                        );
                        new_ids.insert(&series.key, id);
                        metas.insert(
                            id,
                            (
                                Meta {
                                    count: 0,
                                    first: u32::MAX,
                                    last: 0,
                                },
                                &series.key,
                            ),
                        );
                        id
                    }
                },
            };
            let meta = match metas.entry(id) {
                Entry::Occupied(e) => &mut e.into_mut().0,
                Entry::Vacant(e) => {
                    let raw = self
                        .tree
                        .get(meta_key(id))?
                        .ok_or_else(|| Error::Corrupt(format!("series {id} has no metadata")))?;
                    &mut e.insert((Meta::decode(&raw)?.0, &series.key)).0
                }
            };
            for p in &series.points {
                let range = touched.entry(id).or_insert((p.ordinal, p.ordinal));
                *range = (range.0.min(p.ordinal), range.1.max(p.ordinal));
                let block = p.ordinal / BLOCK;
                let chunk = match chunks.entry((id, block)) {
                    btree_map::Entry::Occupied(e) => e.into_mut(),
                    btree_map::Entry::Vacant(e) => {
                        let existing = match self.tree.get(chunk_key(id, block))? {
                            Some(raw) => Chunk::decode(&raw)?,
                            None => Chunk::default(),
                        };
                        e.insert(existing)
                    }
                };
                let offset = (p.ordinal % BLOCK) as u8;
                match chunk.upsert_release(offset, p.value, &p.source, release_id, &rank) {
                    Upsert::Inserted => {
                        summary.inserted += 1;
                        meta.count += 1;
                        meta.first = meta.first.min(p.ordinal);
                        meta.last = meta.last.max(p.ordinal);
                    }
                    Upsert::Updated => summary.updated += 1,
                }
            }
        }
        for ((id, block), chunk) in &chunks {
            ops.insert(chunk_key(*id, *block).to_vec(), chunk.encode());
        }
        for (id, (meta, key)) in &metas {
            ops.insert(meta_key(*id).to_vec(), meta.encode(key));
        }
        if touched.is_empty() {
            return Ok(summary);
        }
        let seq = *last + 1;
        let mut record = Vec::with_capacity(4 + touched.len() * 16);
        record.extend_from_slice(&release_id.to_be_bytes());
        for (id, (first, last)) in &touched {
            record.extend_from_slice(&id.to_be_bytes());
            record.extend_from_slice(&first.to_be_bytes());
            record.extend_from_slice(&last.to_be_bytes());
        }
        ops.insert(changes_key(seq).to_vec(), record);
        ops.insert(SEQUENCE, seq.to_be_bytes().to_vec());
        if seq > RETAINED_CHANGES {
            ops.remove(changes_key(seq - RETAINED_CHANGES).to_vec());
        }
        drop(ranks);
        self.tree.apply_batch(ops)?;
        if let (true, Some(r)) = (new_release, release) {
            let mut releases = self.releases.write().unwrap_or_else(|e| e.into_inner());
            releases.add(ReleaseInfo {
                id: release_id,
                release: r.clone(),
            });
        }
        *last = seq;
        summary.sequence = seq;
        applied(seq);
        Ok(summary)
    }

    /// The sequence number of the last write.
    pub fn sequence(&self) -> u64 {
        *self.write_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writes from sequence `from` on, oldest first, with what each touched (series
    /// deleted since are left out). `Err(OutOfRange)` when `from` is older than the changes
    /// kept ([`RETAINED_CHANGES`]).
    pub fn changes_since(&self, from: u64) -> Result<(Vec<Change>, u64)> {
        let current = *self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = match self.tree.scan_prefix([CHANGES]).next().transpose()? {
            Some((k, _)) => decode_id(&k[1..])?,
            None => current + 1,
        };
        if from < oldest && from <= current {
            return Err(Error::OutOfRange(format!(
                "writes before sequence {oldest} are no longer kept; re-read with GetSeries and watch from the current sequence {current}"
            )));
        }
        let mut out = Vec::new();
        for item in self.tree.range(changes_key(from)..=changes_key(current)) {
            let (k, v) = item?;
            let sequence = decode_id(&k[1..])?;
            let corrupt = || Error::Corrupt("change record".into());
            let (release, v) = v.split_at_checked(4).ok_or_else(corrupt)?;
            let release = u32::from_be_bytes(release.try_into().map_err(|_| corrupt())?);
            let release = (release != 0)
                .then(|| self.release_info(release).map(|r| r.release))
                .transpose()?;
            let mut series = Vec::new();
            for rec in v.chunks_exact(16) {
                let id = u64::from_be_bytes(
                    rec[0..8]
                        .try_into()
                        .map_err(|_| Error::Corrupt("change record".into()))?,
                );
                let first = u32::from_be_bytes(
                    rec[8..12]
                        .try_into()
                        .map_err(|_| Error::Corrupt("change record".into()))?,
                );
                let last = u32::from_be_bytes(
                    rec[12..16]
                        .try_into()
                        .map_err(|_| Error::Corrupt("change record".into()))?,
                );
                if self.tree.get(meta_key(id))?.is_none() {
                    continue; // deleted since
                }
                let key = self.info_by_id(id)?.key;
                let period = |ordinal| Period {
                    frequency: key.frequency,
                    ordinal,
                };
                series.push((key.clone(), period(first), period(last)));
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
        let id = self
            .series_id(key)?
            .ok_or_else(|| Error::NotFound(format!("no series {key}")))?;
        self.info_by_id(id)
    }

    fn info_by_id(&self, id: u64) -> Result<SeriesInfo> {
        let raw = self
            .tree
            .get(meta_key(id))?
            .ok_or_else(|| Error::Corrupt(format!("series {id} has no metadata")))?;
        let (meta, key) = Meta::decode(&raw)?;
        let period = |ordinal| Period {
            frequency: key.frequency,
            ordinal,
        };
        Ok(SeriesInfo {
            point_count: meta.count,
            first: period(meta.first),
            last: period(meta.last),
            key,
        })
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
        let id = self
            .series_id(key)?
            .ok_or_else(|| Error::NotFound(format!("no series {key}")))?;
        let raw = self
            .tree
            .get(meta_key(id))?
            .ok_or_else(|| Error::Corrupt(format!("series {key} has no metadata")))?;
        let meta = Meta::decode_counts(&raw)?;
        // Only the blocks the series has points in (an open range ends at its first and last).
        let (from, to) = (from.max(meta.first), to.min(meta.last));
        Ok(self.chunks_of(key, id, from, to, view))
    }

    /// The chunks of series `id` (whose key is `key`) that hold periods in `from..=to`, as
    /// [`Store::scan_chunk_bytes_at`] gives them, without reading the catalog.
    pub(crate) fn chunks_of(
        &self,
        key: &SeriesKey,
        id: u64,
        from: u32,
        to: u32,
        view: View,
    ) -> impl Iterator<Item = Result<(u32, sled::IVec)>> + Send + 'static {
        let (mut gets, mut range) = (Vec::new(), None);
        if from <= to {
            let blocks = from / BLOCK..=to / BLOCK;
            if blocks.end() - blocks.start() < POINT_GET_BLOCKS {
                // A short read (the usual annual or quarterly series): point lookups, cheaper
                // in sled than an iterator, which copies the leaf node it starts in.
                for block in blocks {
                    match self.tree.get(chunk_key(id, block)) {
                        Ok(Some(v)) => gets.push(Ok((block, v))),
                        Ok(None) => {}
                        Err(e) => gets.push(Err((block, e))),
                    }
                }
            } else {
                range = Some(
                    self.tree
                        .range(chunk_key(id, *blocks.start())..=chunk_key(id, *blocks.end()))
                        .map(|item| {
                            let (k, v) = item.map_err(|e| (u32::MAX, e))?;
                            let block = k[9..13].try_into().map(u32::from_be_bytes);
                            Ok((block.unwrap_or(u32::MAX), v))
                        }),
                );
            }
        }
        let (key, releases) = (key.clone(), self.releases.clone());
        gets.into_iter()
            .chain(range.into_iter().flatten())
            .map(move |item| checked(&key, item, view, &releases))
    }

    /// The catalog entries whose encoded key starts with `prefix`, in key order: each series'
    /// encoded key and id, lazily (for questions across many series, which need no counts).
    pub(crate) fn catalog(
        &self,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(sled::IVec, u64)>> + Send + 'static {
        self.tree.scan_prefix(prefixed(INDEX, prefix)).map(|item| {
            let (k, v) = item?;
            Ok((k.subslice(1, k.len() - 1), decode_id(&v)?))
        })
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
        Ok(self
            .scan_chunks(key, from, to, view)?
            .flat_map(move |chunk| {
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
        let prefix = prefixed(INDEX, &filter.key_prefix());
        let start = match after {
            // The smallest key greater than `after`.
            Some(a) => {
                let mut k = prefixed(INDEX, a);
                k.push(0);
                k.max(prefix.clone())
            }
            None => prefix.clone(),
        };
        let mut out = Vec::new();
        for item in self.tree.range(start..) {
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
            out.push(self.info_by_id(decode_id(&v)?)?);
        }
        Ok((out, None))
    }

    /// Reads every series' catalog entry and chunks, checking each chunk's checksum and
    /// layout and each series' point count: what an operator runs after a disk fault.
    /// Stops (`OutOfRange`) when `stop()` says so.
    pub fn verify(&self, stop: impl Fn() -> bool) -> Result<Verified> {
        let mut out = Verified::default();
        for item in self.tree.scan_prefix([INDEX]) {
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
            let meta = decode_id(&v).and_then(|id| {
                let raw = self
                    .tree
                    .get(meta_key(id))?
                    .ok_or_else(|| Error::Corrupt("no catalog entry".to_owned()))?;
                match Meta::decode(&raw)? {
                    (meta, named) if named == key => Ok((id, meta)),
                    (_, named) => Err(Error::Corrupt(format!("its catalog entry names {named}"))),
                }
            });
            let (id, meta) = match meta {
                Ok(found) => found,
                Err(e) => {
                    out.corrupt.push(format!("series {key}: {e}"));
                    continue;
                }
            };
            let (mut points, mut sound) = (0u64, true);
            for item in self.tree.range(chunk_key(id, 0)..=chunk_key(id, u32::MAX)) {
                let (ck, bytes) = match item {
                    Ok(found) => found,
                    Err(e) => {
                        out.corrupt
                            .push(format!("series {key}: its chunks stop reading: {e}"));
                        sound = false;
                        break;
                    }
                };
                let block = ck[9..13].try_into().map_or(u32::MAX, u32::from_be_bytes);
                out.chunks += 1;
                match ChunkView::parse(&bytes) {
                    Ok(view) => {
                        points += view.len() as u64;
                        out.history += view.history_len() as u64;
                    }
                    Err(e) => {
                        out.corrupt
                            .push(corrupt_chunk(&key, block, &e.to_string()).to_string());
                        sound = false;
                    }
                }
            }
            out.points += points;
            if sound && points != meta.count {
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
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let id = self
            .series_id(key)?
            .ok_or_else(|| Error::NotFound(format!("no series {key}")))?;
        let info = self.info_by_id(id)?;
        let mut ops = sled::Batch::default();
        ops.remove(prefixed(INDEX, &key.encode()));
        ops.remove(meta_key(id).to_vec());
        for item in self.tree.range(chunk_key(id, 0)..=chunk_key(id, u32::MAX)) {
            ops.remove(item?.0);
        }
        self.tree.apply_batch(ops)?;
        Ok(info.point_count)
    }
}

#[cfg(test)]
mod releases_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_support;

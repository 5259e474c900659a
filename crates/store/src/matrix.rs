//! The matrix engine (format 5, issue #27; not yet used by [`crate::Store`]): the rows of
//! annual series kept in column blocks of one reporter, frequency and period (a *partition*),
//! written through an in-memory head and a write log, made into immutable parts, and merged.
//!
//! - **A write** ([`Matrix::prepare`]) adds to the caller's sled batch one write-log record
//!   (`W` + sequence: the write's rows, a block per partition) and the dictionary entries of
//!   names it saw first; once the caller has applied and flushed that batch it hands the write
//!   back ([`Matrix::applied`]) and the rows join the head, readable. A write whose batch failed
//!   is dropped: nothing of it is read.
//! - **The head** holds the rows of the writes since its last flush, by partition. When it is
//!   past its budget ([`Matrix::head_full`]), [`Matrix::flush_head`] turns each partition's head
//!   rows into a part (`P` + partition + the last sequence it holds → a block) and removes the
//!   write-log records, in one batch: after a crash either the records (replayed into the head
//!   at open) or the parts hold the rows, never both and never neither.
//! - **Merges** ([`Matrix::merge`]): a partition's parts laid over each other in sequence order
//!   ([`block::merge`]) become one part, swapped in with one batch (a crash leaves the old parts
//!   or the new one).
//! - **Reads** ([`Matrix::partition`]): the parts in sequence order, then the head, the newer
//!   row of a key replacing the older.
//! - **Dictionaries**: measures (their key bytes), products and sources as store-wide ids
//!   (`D` + kind + id → name), ids in the order names were first written. An id given to a
//!   write whose batch failed is written again with the next batch, until one succeeds.
//!
//! A row is a series (partner, flow and kind, measure, product — the partition gives the
//! reporter, frequency and period) and a release, with its value and source: the model of a
//! chunk, where each period keeps one value per release ([`crate::chunk`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use crate::block::{self, Block, Codec, RowKey, Rows};
use crate::{Error, Result};

/// `D` + kind + id (u32 BE) → a name of a dictionary.
const DICT: u8 = b'D';
/// `W` + sequence (u64 BE) → a write-log record.
const WRITE_LOG: u8 = b'W';
/// `P` + partition (8 bytes) + sequence (u64 BE) → a part (a block).
const PART: u8 = b'P';

/// Rows the head holds before it is made into parts, by default.
pub const HEAD_ROWS: usize = 1 << 19;

/// One reporter's rows of one frequency and period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    /// The reporter's code.
    pub reporter: [u8; 3],
    /// The frequency's byte in the key encoding.
    pub frequency: u8,
    /// The period's ordinal.
    pub period: u32,
}

impl Partition {
    fn encode(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..3].copy_from_slice(&self.reporter);
        out[3] = self.frequency;
        out[4..].copy_from_slice(&self.period.to_be_bytes());
        out
    }

    fn decode(b: &[u8]) -> Option<Partition> {
        Some(Partition {
            reporter: b.get(..3)?.try_into().ok()?,
            frequency: *b.get(3)?,
            period: u32::from_be_bytes(b.get(4..8)?.try_into().ok()?),
        })
    }
}

/// The dictionaries a row's names are ids of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dictionary {
    /// A measure's key bytes.
    Measure = 0,
    /// A product code.
    Product = 1,
    /// A source.
    Source = 2,
}

const DICTIONARIES: [Dictionary; 3] =
    [Dictionary::Measure, Dictionary::Product, Dictionary::Source];

#[derive(Default)]
struct Dict {
    names: Vec<Arc<[u8]>>,
    ids: HashMap<Arc<[u8]>, u32>,
    /// Names `..persisted` are on disk; the others go with every batch until one succeeds.
    persisted: usize,
}

fn dict_key(kind: Dictionary, id: u32) -> [u8; 6] {
    let mut k = [0u8; 6];
    k[0] = DICT;
    k[1] = kind as u8;
    k[2..].copy_from_slice(&id.to_be_bytes());
    k
}

fn log_key(seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = WRITE_LOG;
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn part_key(partition: &Partition, seq: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = PART;
    k[1..9].copy_from_slice(&partition.encode());
    k[9..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// A row to write: its partition, key, source id and value.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRow {
    /// Where it goes.
    pub partition: Partition,
    /// Its series and release.
    pub key: RowKey,
    /// Its source's id ([`Matrix::id`]).
    pub source: u32,
    /// Its value.
    pub value: f64,
}

/// A write prepared into a batch, to hand back once the batch is durable.
#[must_use = "hand it back to Matrix::applied once its batch is applied"]
pub struct Prepared {
    seq: u64,
    rows: BTreeMap<Partition, Rows>,
    dicts: [usize; 3],
    /// Rows whose series had no value for their period before (the others replaced one).
    pub inserted: u64,
    /// Rows that replaced a value, or added a release's value to a period that had one.
    pub updated: u64,
}

struct State {
    /// Each partition's head rows, in write order (the last of a key wins).
    head: BTreeMap<Partition, Rows>,
    head_rows: usize,
    /// The write-log records the head holds.
    logged: Vec<u64>,
    /// The series of each partition's head rows.
    head_keys: HashMap<Partition, HashSet<SeriesId>>,
    /// Each partition's parts, by sequence.
    parts: BTreeMap<Partition, Vec<u64>>,
    /// The series each reporter and frequency has held.
    series: HashMap<([u8; 3], u8), SeriesFilter>,
}

impl State {
    /// Adds `rows` of `partition` to the head.
    fn push(&mut self, partition: Partition, rows: &Rows) {
        self.head_rows += rows.len();
        let head = self.head.entry(partition).or_default();
        let keys = self.head_keys.entry(partition).or_default();
        let filter = self
            .series
            .entry((partition.reporter, partition.frequency))
            .or_default();
        for i in 0..rows.len() {
            head.push(rows.key(i), rows.source[i], rows.value[i]);
            let series = series_of(rows.key(i));
            if keys.insert(series) {
                filter.insert(&series);
            }
        }
    }
}

/// The matrix in one sled tree of its own.
pub struct Matrix {
    tree: sled::Tree,
    dicts: RwLock<[Dict; 3]>,
    state: Mutex<State>,
    head_budget: usize,
    codec: Codec,
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("the matrix: {what}"))
}

/// A write-log record: its partitions with their row counts, then one block of every row,
/// partition after partition (each partition's rows sorted).
fn encode_record(rows: &BTreeMap<Partition, Rows>, codec: Codec) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4 + rows.len() * 12);
    out.extend_from_slice(&(rows.len() as u32).to_be_bytes());
    let mut all = Rows::default();
    for (partition, rows) in rows {
        out.extend_from_slice(&partition.encode());
        out.extend_from_slice(&(rows.len() as u32).to_be_bytes());
        for i in 0..rows.len() {
            all.push(rows.key(i), rows.source[i], rows.value[i]);
        }
    }
    out.extend_from_slice(&block::encode(&all, codec)?);
    Ok(out)
}

fn decode_record(bytes: &[u8]) -> Result<Vec<(Partition, Rows)>> {
    let cut = || corrupt("a write-log record cut short");
    let count = bytes
        .get(..4)
        .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or_else(cut)?;
    let table = bytes.get(4..4 + count * 12).ok_or_else(cut)?;
    let all = Block::open(&bytes[4 + count * 12..])?.decode()?;
    let mut out = Vec::with_capacity(count);
    let mut at = 0;
    for entry in table.chunks_exact(12) {
        let partition = Partition::decode(entry).ok_or_else(cut)?;
        let n = u32::from_be_bytes(entry[8..12].try_into().expect("4 bytes")) as usize;
        if at + n > all.len() {
            return Err(cut());
        }
        let mut rows = Rows::default();
        for i in at..at + n {
            rows.push(all.key(i), all.source[i], all.value[i]);
        }
        at += n;
        out.push((partition, rows));
    }
    Ok(out)
}

/// A series of a partition: partner, flags, measure, product.
type SeriesId = (u32, u32, u32, u32);

fn series_of(key: RowKey) -> SeriesId {
    (key.0, key.1, key.2, key.3)
}

/// The series a reporter and frequency has held (in any period): a Bloom filter that grows
/// (a filter of twice the size is added when the last is full), so that a write of series
/// never seen — a load — needs no look at the parts.
#[derive(Default)]
struct SeriesFilter {
    filters: Vec<(fastbloom::BloomFilter, usize, usize)>,
}

/// Series the first filter of a reporter holds before the next is added.
const FIRST_FILTER: usize = 4096;
/// The first filter's false-positive rate (each false positive a look at a partition's
/// parts); each next filter's is half the one before, so that all together stay under twice
/// the first's (a scalable Bloom filter).
const FALSE_POSITIVES: f64 = 0.0005;

impl SeriesFilter {
    fn insert(&mut self, series: &SeriesId) {
        let full = self.filters.last().is_none_or(|(_, n, cap)| n >= cap);
        if full {
            let cap = self.filters.last().map_or(FIRST_FILTER, |(_, _, c)| c * 2);
            let rate = FALSE_POSITIVES / f64::from(1u32 << self.filters.len().min(20));
            let filter = fastbloom::BloomFilter::with_false_pos(rate)
                .seed(&0x7a7e)
                .expected_items(cap);
            self.filters.push((filter, 0, cap));
        }
        let (filter, n, _) = self.filters.last_mut().expect("a filter");
        if !filter.contains(series) {
            filter.insert(series);
            *n += 1;
        }
    }

    fn may_hold(&self, series: &SeriesId) -> bool {
        self.filters.iter().any(|(f, _, _)| f.contains(series))
    }
}

impl Matrix {
    /// The matrix in `tree`: its dictionaries read, its parts listed, its write log replayed
    /// into the head. The head is made into parts past `head_budget` rows.
    pub fn open(tree: sled::Tree, head_budget: usize) -> Result<Matrix> {
        let mut dicts: [Dict; 3] = Default::default();
        for item in tree.scan_prefix([DICT]) {
            let (key, name) = item?;
            let (kind, id) = match (key.get(1), key.get(2..6)) {
                (Some(&kind), Some(id)) if (kind as usize) < DICTIONARIES.len() => (
                    kind as usize,
                    u32::from_be_bytes(id.try_into().expect("4 bytes")),
                ),
                _ => return Err(corrupt("a dictionary key of the wrong shape")),
            };
            let dict = &mut dicts[kind];
            if id as usize != dict.names.len() {
                return Err(corrupt(format_args!(
                    "dictionary {kind} skips from {} to id {id}",
                    dict.names.len()
                )));
            }
            let name: Arc<[u8]> = Arc::from(&name[..]);
            dict.ids.insert(name.clone(), id);
            dict.names.push(name);
            dict.persisted += 1;
        }
        let mut parts: BTreeMap<Partition, Vec<u64>> = BTreeMap::new();
        for key in tree.scan_prefix([PART]).keys() {
            let key = key?;
            let partition = Partition::decode(&key[1..])
                .ok_or_else(|| corrupt("a part key of the wrong shape"))?;
            let seq = key
                .get(9..17)
                .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
                .ok_or_else(|| corrupt("a part key of the wrong shape"))?;
            parts.entry(partition).or_default().push(seq);
        }
        let mut state = State {
            head: BTreeMap::new(),
            head_rows: 0,
            logged: Vec::new(),
            head_keys: HashMap::new(),
            parts,
            series: HashMap::new(),
        };
        // The series filters, from every part's series (each part's key columns decoded).
        for item in tree.scan_prefix([PART]) {
            let (key, bytes) = item?;
            let partition = Partition::decode(&key[1..])
                .ok_or_else(|| corrupt("a part key of the wrong shape"))?;
            let part = Block::open(&bytes)?;
            let partner = part.column(block::Column::Partner)?;
            let flags = part.column(block::Column::Flags)?;
            let measure = part.column(block::Column::Measure)?;
            let product = part.column(block::Column::Product)?;
            let filter = state
                .series
                .entry((partition.reporter, partition.frequency))
                .or_default();
            for (((p, f), m), pr) in partner.into_iter().zip(flags).zip(measure).zip(product) {
                filter.insert(&(p, f, m, pr));
            }
        }
        for item in tree.scan_prefix([WRITE_LOG]) {
            let (key, record) = item?;
            let seq = u64::from_be_bytes(
                key[1..]
                    .try_into()
                    .map_err(|_| corrupt("a write-log key of the wrong shape"))?,
            );
            for (partition, rows) in decode_record(&record)? {
                let flushed = state
                    .parts
                    .get(&partition)
                    .is_some_and(|seqs| seqs.iter().any(|&s| s >= seq));
                if !flushed {
                    state.push(partition, &rows);
                }
            }
            state.logged.push(seq);
        }
        Ok(Matrix {
            tree,
            dicts: RwLock::new(dicts),
            state: Mutex::new(state),
            head_budget,
            codec: Codec::Pco,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The id of `name` in `dictionary`, given now if it has none (written with the next
    /// prepared write).
    pub fn id(&self, dictionary: Dictionary, name: &[u8]) -> u32 {
        if let Some(&id) = self.dicts.read().unwrap_or_else(|e| e.into_inner())[dictionary as usize]
            .ids
            .get(name)
        {
            return id;
        }
        let mut dicts = self.dicts.write().unwrap_or_else(|e| e.into_inner());
        let dict = &mut dicts[dictionary as usize];
        if let Some(&id) = dict.ids.get(name) {
            return id;
        }
        let id = dict.names.len() as u32;
        let name: Arc<[u8]> = Arc::from(name);
        dict.ids.insert(name.clone(), id);
        dict.names.push(name);
        id
    }

    /// The name of `id` in `dictionary`.
    pub fn name(&self, dictionary: Dictionary, id: u32) -> Result<Arc<[u8]>> {
        self.dicts.read().unwrap_or_else(|e| e.into_inner())[dictionary as usize]
            .names
            .get(id as usize)
            .cloned()
            .ok_or_else(|| corrupt(format_args!("no name {id} in dictionary {dictionary:?}")))
    }

    /// Prepares write `seq` of `rows` into `ops`: its write-log record and the dictionary
    /// names not yet on disk; counts what it inserts and updates. The rows are read once the
    /// caller hands the write back to [`Matrix::applied`] after applying `ops`.
    pub fn prepare(&self, seq: u64, rows: &[NewRow], ops: &mut sled::Batch) -> Result<Prepared> {
        let mut by_partition: BTreeMap<Partition, Rows> = BTreeMap::new();
        for row in rows {
            by_partition
                .entry(row.partition)
                .or_default()
                .push(row.key, row.source, row.value);
        }
        // A point is new when its series had no value of any release for the period, in the
        // matrix or earlier in this write. A series the reporter's filter has never seen is
        // new in every period; else the partition's head, then its parts, are looked at.
        let (mut inserted, mut updated) = (0, 0);
        for (partition, new) in &by_partition {
            let mut seen = HashSet::new();
            let mut stored: Option<HashSet<SeriesId>> = None;
            for i in 0..new.len() {
                let series = series_of(new.key(i));
                if !seen.insert(series) {
                    updated += 1;
                    continue;
                }
                let held = {
                    let state = self.state();
                    let may = state
                        .series
                        .get(&(partition.reporter, partition.frequency))
                        .is_some_and(|f| f.may_hold(&series));
                    match may {
                        false => Some(false),
                        true if state
                            .head_keys
                            .get(partition)
                            .is_some_and(|k| k.contains(&series)) =>
                        {
                            Some(true)
                        }
                        true if !state.parts.contains_key(partition) => Some(false),
                        true => None,
                    }
                };
                let held = match held {
                    Some(held) => held,
                    None => {
                        if stored.is_none() {
                            let seqs = self.state().parts.get(partition).cloned();
                            let rows = self.parts_merged(partition, &seqs.unwrap_or_default())?;
                            stored =
                                Some((0..rows.len()).map(|i| series_of(rows.key(i))).collect());
                        }
                        stored.as_ref().is_some_and(|s| s.contains(&series))
                    }
                };
                match held {
                    true => updated += 1,
                    false => inserted += 1,
                }
            }
        }
        let mut sorted = by_partition.clone();
        for rows in sorted.values_mut() {
            rows.sort();
        }
        ops.insert(&log_key(seq)[..], encode_record(&sorted, self.codec)?);
        let dicts = self.dicts.read().unwrap_or_else(|e| e.into_inner());
        let mut lengths = [0; 3];
        for kind in DICTIONARIES {
            let dict = &dicts[kind as usize];
            for id in dict.persisted..dict.names.len() {
                ops.insert(&dict_key(kind, id as u32)[..], &dict.names[id][..]);
            }
            lengths[kind as usize] = dict.names.len();
        }
        Ok(Prepared {
            seq,
            rows: by_partition,
            dicts: lengths,
            inserted,
            updated,
        })
    }

    /// Makes a prepared write's rows readable, its batch applied (and its dictionary names
    /// with it).
    pub fn applied(&self, prepared: Prepared) {
        {
            let mut dicts = self.dicts.write().unwrap_or_else(|e| e.into_inner());
            for kind in DICTIONARIES {
                let dict = &mut dicts[kind as usize];
                dict.persisted = dict.persisted.max(prepared.dicts[kind as usize]);
            }
        }
        let mut state = self.state();
        for (partition, rows) in &prepared.rows {
            state.push(*partition, rows);
        }
        state.logged.push(prepared.seq);
    }

    /// Whether the head holds more rows than its budget (time to [`Matrix::flush_head`]).
    pub fn head_full(&self) -> bool {
        self.state().head_rows > self.head_budget
    }

    /// Rows in the head.
    pub fn head_rows(&self) -> usize {
        self.state().head_rows
    }

    /// Turns the head into parts, in one batch with the removal of the write-log records it
    /// held, applied here; the head is emptied once the batch is. Writes are the caller's to
    /// hold off meanwhile (the store's write lock).
    pub fn flush_head(&self) -> Result<()> {
        let (head, logged) = {
            let state = self.state();
            (state.head.clone(), state.logged.clone())
        };
        let Some(&last) = logged.iter().max() else {
            return Ok(());
        };
        let mut ops = sled::Batch::default();
        for (partition, rows) in &head {
            let mut rows = rows.clone();
            rows.sort();
            ops.insert(
                &part_key(partition, last)[..],
                block::encode(&rows, self.codec)?,
            );
        }
        for seq in &logged {
            ops.remove(&log_key(*seq)[..]);
        }
        self.tree.apply_batch(ops)?;
        let mut state = self.state();
        for partition in head.keys() {
            let parts = state.parts.entry(*partition).or_default();
            if !parts.contains(&last) {
                parts.push(last);
            }
            state.head.remove(partition);
            state.head_keys.remove(partition);
        }
        state.logged.retain(|s| !logged.contains(s));
        state.head_rows = state.head.values().map(Rows::len).sum();
        Ok(())
    }

    /// The partitions with at least `parts` parts (to [`Matrix::merge`]).
    pub fn to_merge(&self, parts: usize) -> Vec<Partition> {
        self.state()
            .parts
            .iter()
            .filter(|(_, seqs)| seqs.len() >= parts)
            .map(|(p, _)| *p)
            .collect()
    }

    /// Merges `partition`'s parts into one (keyed by the last sequence they hold), swapped in
    /// with one batch.
    pub fn merge(&self, partition: &Partition) -> Result<()> {
        let seqs = self
            .state()
            .parts
            .get(partition)
            .cloned()
            .unwrap_or_default();
        if seqs.len() < 2 {
            return Ok(());
        }
        let merged = self.parts_merged(partition, &seqs)?;
        let last = *seqs.iter().max().expect("two parts");
        let mut ops = sled::Batch::default();
        ops.insert(
            &part_key(partition, last)[..],
            block::encode(&merged, self.codec)?,
        );
        for &seq in seqs.iter().filter(|&&s| s != last) {
            ops.remove(&part_key(partition, seq)[..]);
        }
        self.tree.apply_batch(ops)?;
        let mut state = self.state();
        if let Some(parts) = state.parts.get_mut(partition) {
            parts.retain(|s| !seqs.contains(s) || *s == last);
        }
        Ok(())
    }

    /// The parts `seqs` of `partition`, laid over each other in sequence order.
    fn parts_merged(&self, partition: &Partition, seqs: &[u64]) -> Result<Rows> {
        let mut seqs = seqs.to_vec();
        seqs.sort_unstable();
        let mut rows = Rows::default();
        for seq in seqs {
            let bytes = self
                .tree
                .get(part_key(partition, seq))?
                .ok_or_else(|| corrupt(format_args!("part {seq} of {partition:?} is missing")))?;
            let part = Block::open(&bytes)?.decode()?;
            rows = match rows.is_empty() {
                true => part,
                false => block::merge(&rows, &part),
            };
        }
        Ok(rows)
    }

    /// Every row of `partition` (parts, then the head, the newer row of a key replacing the
    /// older), sorted by key.
    pub fn partition(&self, partition: &Partition) -> Result<Rows> {
        let (seqs, head) = {
            let state = self.state();
            (
                state.parts.get(partition).cloned().unwrap_or_default(),
                state.head.get(partition).cloned(),
            )
        };
        let rows = self.parts_merged(partition, &seqs)?;
        Ok(match head {
            None => rows,
            Some(mut head) => {
                head.sort();
                block::merge(&rows, &head)
            }
        })
    }

    /// The partitions holding rows (in parts or the head), in order.
    pub fn partitions(&self) -> Vec<Partition> {
        let state = self.state();
        let mut all: Vec<Partition> = state
            .parts
            .keys()
            .chain(state.head.keys())
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Parts on disk (all partitions).
    pub fn parts(&self) -> usize {
        self.state().parts.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEAD: usize = 40;

    fn partition(n: u32) -> Partition {
        Partition {
            reporter: *[b"KOR", b"USA", b"JPN"][n as usize % 3],
            frequency: 1,
            period: 2000 + n / 3,
        }
    }

    /// A step of a session with the matrix.
    #[derive(Clone, Debug)]
    enum Step {
        /// A write of rows (partition, partner, product, release, value).
        Write(Vec<(u32, u32, u32, u32, f64)>),
        /// A write whose batch is never applied (a failed write).
        Failed(Vec<(u32, u32, u32, u32, f64)>),
        Flush,
        Merge,
        /// Close and open again (the head replayed from the write log).
        Reopen,
    }

    fn step() -> impl Strategy<Value = Step> {
        let rows = prop::collection::vec(
            (
                0u32..6,
                0u32..4,
                0u32..5,
                0u32..3,
                (0i32..1000).prop_map(f64::from),
            ),
            1..30,
        );
        prop_oneof![
            6 => rows.clone().prop_map(Step::Write),
            1 => rows.prop_map(Step::Failed),
            1 => Just(Step::Flush),
            1 => Just(Step::Merge),
            1 => Just(Step::Reopen),
        ]
    }

    type Model = BTreeMap<(Partition, RowKey), (u32, f64)>;

    fn new_rows(matrix: &Matrix, rows: &[(u32, u32, u32, u32, f64)]) -> Vec<NewRow> {
        rows.iter()
            .map(|&(p, partner, product, release, value)| NewRow {
                partition: partition(p),
                key: (
                    partner,
                    block::flags(1, 1),
                    matrix.id(Dictionary::Measure, &[0]),
                    matrix.id(Dictionary::Product, format!("HS:{product:02}").as_bytes()),
                    release,
                ),
                source: matrix.id(Dictionary::Source, b"test"),
                value,
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever the order of writes, failed writes, head flushes, merges and reopenings,
        /// every partition reads as a map of the applied writes, and the counts of inserted and
        /// updated points are the map's.
        #[test]
        fn the_matrix_reads_as_a_map_of_its_applied_writes(steps in prop::collection::vec(step(), 1..40)) {
            let db = sled::Config::new().temporary(true).open().unwrap();
            let tree = || db.open_tree("matrix").unwrap();
            let mut matrix = Matrix::open(tree(), HEAD).unwrap();
            let mut model: Model = BTreeMap::new();
            let mut seq = 0;
            for step in steps {
                match step {
                    Step::Write(rows) => {
                        seq += 1;
                        let new = new_rows(&matrix, &rows);
                        let mut ops = sled::Batch::default();
                        let prepared = matrix.prepare(seq, &new, &mut ops).unwrap();
                        let mut points: HashSet<(Partition, u32, u32, u32, u32)> = model
                            .keys()
                            .map(|(p, (a, b, c, d, _))| (*p, *a, *b, *c, *d))
                            .collect();
                        let (mut inserted, mut updated) = (0, 0);
                        for row in &new {
                            let (a, b, c, d, _) = row.key;
                            match points.insert((row.partition, a, b, c, d)) {
                                true => inserted += 1,
                                false => updated += 1,
                            }
                            model.insert((row.partition, row.key), (row.source, row.value));
                        }
                        prop_assert_eq!((prepared.inserted, prepared.updated), (inserted, updated));
                        tree().apply_batch(ops).unwrap();
                        matrix.applied(prepared);
                        if matrix.head_full() {
                            matrix.flush_head().unwrap();
                        }
                    }
                    Step::Failed(rows) => {
                        seq += 1;
                        let new = new_rows(&matrix, &rows);
                        let mut ops = sled::Batch::default();
                        drop(matrix.prepare(seq, &new, &mut ops).unwrap());
                    }
                    Step::Flush => {
                        matrix.flush_head().unwrap();
                        prop_assert_eq!(matrix.head_rows(), 0);
                        prop_assert_eq!(tree().scan_prefix([WRITE_LOG]).count(), 0, "the log's records go with the flush");
                    }
                    Step::Merge => {
                        for p in matrix.to_merge(2) {
                            matrix.merge(&p).unwrap();
                        }
                        prop_assert!(matrix.to_merge(2).is_empty());
                    }
                    Step::Reopen => {
                        drop(matrix);
                        matrix = Matrix::open(tree(), HEAD).unwrap();
                    }
                }
                for n in 0..6 {
                    let p = partition(n);
                    let rows = matrix.partition(&p).unwrap();
                    let want: Vec<_> = model
                        .range((p, (0, 0, 0, 0, 0))..=(p, (u32::MAX, u32::MAX, u32::MAX, u32::MAX, u32::MAX)))
                        .map(|((_, k), v)| (*k, *v))
                        .collect();
                    let got: Vec<_> = (0..rows.len())
                        .map(|i| (rows.key(i), (rows.source[i], rows.value[i])))
                        .collect();
                    prop_assert_eq!(got, want);
                }
            }
            // The names read back after a reopening are the names given.
            drop(matrix);
            let matrix = Matrix::open(tree(), HEAD).unwrap();
            for ((_, (_, _, measure, product, _)), (source, _)) in &model {
                prop_assert_eq!(&matrix.name(Dictionary::Measure, *measure).unwrap()[..], &[0u8][..]);
                prop_assert!(matrix.name(Dictionary::Product, *product).unwrap().starts_with(b"HS:"));
                prop_assert_eq!(&matrix.name(Dictionary::Source, *source).unwrap()[..], &b"test"[..]);
            }
        }
    }
}

//! Column blocks: the rows of the trade matrix for one reporter, frequency and period, kept as
//! columns of numbers (the first piece of store format 5, issue #27; not yet used by the
//! store).
//!
//! Trade data is tens of millions of short series, published and revised per reporter and
//! period and asked about across partners and products for one period. A block holds one
//! reporter's rows of one period: each row a series (partner, flow, kind, measure, product —
//! the rest of the key is the block's) with one value of one release. Every column is a column
//! of integers ids from the store's dictionaries (partner, measure, product, source), flags
//! and release ids — or the values, and each is compressed with Pcodec ([`pco`], the state of
//! the art for numerical columns: it finds the deltas of sorted ids, the few distinct values
//! of a flag column, the integers among floats) or, for comparison, zstd over the column's
//! little-endian bytes ([`Codec`]).
//!
//! Rows are sorted by key (partner, flags, measure, product) and release, unique on both: the
//! ids of a sorted column delta-code to a few bits, and a series is found by binary search. A
//! reader decodes only the columns a question needs ([`Block::column`]).
//!
//! Layout (little-endian):
//!
//! ```text
//! [version u8 = 1] [rows u32] [max release u32]
//! 7 × [codec u8] [bytes u32]            (partner, flags, measure, product, release, source, value)
//! the columns' bytes, in that order
//! [crc32c u32 of every byte before it]
//! ```

use crate::{Error, Result};

/// The columns of a block, in their order in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// The partner's id.
    Partner,
    /// Flow and kind, packed ([`flags`]).
    Flags,
    /// The measure's id.
    Measure,
    /// The product's id.
    Product,
    /// The release's id.
    Release,
    /// The source's id.
    Source,
    /// The value (`f64`).
    Value,
}

/// Every column, in order.
pub const COLUMNS: [Column; 7] = [
    Column::Partner,
    Column::Flags,
    Column::Measure,
    Column::Product,
    Column::Release,
    Column::Source,
    Column::Value,
];

/// How a column's numbers are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Pcodec.
    Pco,
    /// zstd (level 3) over the little-endian bytes.
    Zstd,
}

impl Codec {
    fn tag(self) -> u8 {
        match self {
            Codec::Pco => 1,
            Codec::Zstd => 2,
        }
    }

    fn of(tag: u8) -> Option<Codec> {
        match tag {
            1 => Some(Codec::Pco),
            2 => Some(Codec::Zstd),
            _ => None,
        }
    }
}

const VERSION: u8 = 1;
const HEADER: usize = 1 + 4 + 4 + COLUMNS.len() * 5;
/// zstd's level for columns.
const ZSTD_LEVEL: i32 = 3;

/// Flow and kind of a row as one number: `flow * 4 + kind` (their ids in the store's key
/// encoding), so that a filter on either is one comparison per row.
pub fn flags(flow: u8, kind: u8) -> u32 {
    u32::from(flow) * 4 + u32::from(kind)
}

/// A block's rows as columns (every vector as long as the others).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    /// Partner ids.
    pub partner: Vec<u32>,
    /// Flow and kind ([`flags`]).
    pub flags: Vec<u32>,
    /// Measure ids.
    pub measure: Vec<u32>,
    /// Product ids.
    pub product: Vec<u32>,
    /// Release ids.
    pub release: Vec<u32>,
    /// Source ids.
    pub source: Vec<u32>,
    /// Values.
    pub value: Vec<f64>,
}

/// What orders rows: the series (partner, flags, measure, product), then the release.
pub type RowKey = (u32, u32, u32, u32, u32);

impl Rows {
    /// Rows.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// Row `i`'s key.
    pub fn key(&self, i: usize) -> RowKey {
        (
            self.partner[i],
            self.flags[i],
            self.measure[i],
            self.product[i],
            self.release[i],
        )
    }

    /// Appends a row.
    pub fn push(&mut self, key: RowKey, source: u32, value: f64) {
        let (partner, flags, measure, product, release) = key;
        self.partner.push(partner);
        self.flags.push(flags);
        self.measure.push(measure);
        self.product.push(product);
        self.release.push(release);
        self.source.push(source);
        self.value.push(value);
    }

    /// Appends row `i` of `other`.
    fn push_from(&mut self, other: &Rows, i: usize) {
        self.push(other.key(i), other.source[i], other.value[i]);
    }

    /// Sorts the rows by key; of rows with the same key the last pushed is kept.
    pub fn sort(&mut self) {
        if self.is_sorted() {
            return;
        }
        // Keys with their positions, sorted by value: rows of one key stay in the order
        // pushed, and the last is kept.
        let mut order: Vec<(RowKey, u32)> =
            (0..self.len()).map(|i| (self.key(i), i as u32)).collect();
        order.sort_unstable();
        let mut sorted = Rows::with_capacity(order.len());
        for (n, &(key, i)) in order.iter().enumerate() {
            if order.get(n + 1).is_some_and(|&(next, _)| next == key) {
                continue;
            }
            sorted.push_from(self, i as usize);
        }
        *self = sorted;
    }

    /// Appends every row of `other`.
    pub fn append(&mut self, other: &Rows) {
        self.partner.extend_from_slice(&other.partner);
        self.flags.extend_from_slice(&other.flags);
        self.measure.extend_from_slice(&other.measure);
        self.product.extend_from_slice(&other.product);
        self.release.extend_from_slice(&other.release);
        self.source.extend_from_slice(&other.source);
        self.value.extend_from_slice(&other.value);
    }

    /// No rows, room for `n`.
    pub fn with_capacity(n: usize) -> Rows {
        Rows {
            partner: Vec::with_capacity(n),
            flags: Vec::with_capacity(n),
            measure: Vec::with_capacity(n),
            product: Vec::with_capacity(n),
            release: Vec::with_capacity(n),
            source: Vec::with_capacity(n),
            value: Vec::with_capacity(n),
        }
    }

    /// Whether the rows are sorted by key, each key once.
    pub fn is_sorted(&self) -> bool {
        (1..self.len()).all(|i| self.key(i - 1) < self.key(i))
    }

    fn column(&self, column: Column) -> Option<&[u32]> {
        match column {
            Column::Partner => Some(&self.partner),
            Column::Flags => Some(&self.flags),
            Column::Measure => Some(&self.measure),
            Column::Product => Some(&self.product),
            Column::Release => Some(&self.release),
            Column::Source => Some(&self.source),
            Column::Value => None,
        }
    }
}

/// `older` and `newer` (each sorted, [`Rows::is_sorted`]) as one sorted set of rows: a row of
/// `newer` replaces the row of `older` with the same key.
pub fn merge(older: &Rows, newer: &Rows) -> Rows {
    let mut out = Rows::default();
    let (mut i, mut j) = (0, 0);
    while i < older.len() || j < newer.len() {
        let take_newer = match (i < older.len(), j < newer.len()) {
            (true, true) => match older.key(i).cmp(&newer.key(j)) {
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => {
                    i += 1;
                    true
                }
            },
            (false, _) => true,
            (true, false) => false,
        };
        if take_newer {
            out.push_from(newer, j);
            j += 1;
        } else {
            out.push_from(older, i);
            i += 1;
        }
    }
    out
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("a column block {what}"))
}

/// Pcodec's settings for `column`: the delta encoding each column's order calls for, named
/// rather than found (Pcodec's search for it took most of the time of encoding a block of a
/// few hundred rows: `perf` on `block-sizes`).
fn pco_config(column: Column, level: usize) -> pco::ChunkConfig {
    let delta = match column {
        // Sorted: partners; flags within a partner, measures within those, products within
        // those.
        Column::Partner | Column::Flags | Column::Measure | Column::Product => {
            pco::DeltaSpec::TryConsecutive(1)
        }
        Column::Release | Column::Source | Column::Value => pco::DeltaSpec::NoOp,
    };
    pco::ChunkConfig::default()
        .with_compression_level(level)
        .with_delta_spec(delta)
}

fn compress_u32(values: &[u32], column: Column, codec: Codec, level: usize) -> Result<Vec<u8>> {
    match codec {
        Codec::Pco => pco::standalone::simple_compress(values, &pco_config(column, level))
            .map_err(|e| corrupt(format_args!("column could not be compressed: {e}"))),
        Codec::Zstd => {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            zstd(&bytes)
        }
    }
}

fn compress_f64(values: &[f64], codec: Codec, level: usize) -> Result<Vec<u8>> {
    match codec {
        Codec::Pco => pco::standalone::simple_compress(values, &pco_config(Column::Value, level))
            .map_err(|e| corrupt(format_args!("column could not be compressed: {e}"))),
        Codec::Zstd => {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            zstd(&bytes)
        }
    }
}

fn zstd(bytes: &[u8]) -> Result<Vec<u8>> {
    zstd::block::compress(bytes, ZSTD_LEVEL)
        .map_err(|e| corrupt(format_args!("column could not be compressed: {e}")))
}

/// `rows` as a block, each column compressed with `codec`. A block's rows are sorted
/// ([`Rows::is_sorted`]; a write-log record's are sorted within each partition's run).
pub fn encode(rows: &Rows, codec: Codec) -> Result<Vec<u8>> {
    encode_at(rows, codec, PCO_LEVEL)
}

/// Pcodec's compression level for blocks (0–12; its default is 8: see docs/benchmarks.md,
/// "Column blocks", for what each costs and saves here).
pub const PCO_LEVEL: usize = pco::DEFAULT_COMPRESSION_LEVEL;

/// [`encode`] at Pcodec's compression `level` (ignored by zstd).
pub fn encode_at(rows: &Rows, codec: Codec, level: usize) -> Result<Vec<u8>> {
    let count = u32::try_from(rows.len()).map_err(|_| corrupt("of more than 2^32 rows"))?;
    let mut columns = Vec::with_capacity(COLUMNS.len());
    for column in COLUMNS {
        columns.push(match rows.column(column) {
            Some(ids) => compress_u32(ids, column, codec, level)?,
            None => compress_f64(&rows.value, codec, level)?,
        });
    }
    let body: usize = columns.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(HEADER + body + 4);
    out.push(VERSION);
    out.extend_from_slice(&count.to_le_bytes());
    let max_release = rows.release.iter().copied().max().unwrap_or(0);
    out.extend_from_slice(&max_release.to_le_bytes());
    for column in &columns {
        out.push(codec.tag());
        out.extend_from_slice(&(column.len() as u32).to_le_bytes());
    }
    for column in &columns {
        out.extend_from_slice(column);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A block as stored, checked (its checksum and header), its columns decoded on demand.
#[derive(Debug)]
pub struct Block<'a> {
    rows: u32,
    max_release: u32,
    columns: [(Codec, &'a [u8]); COLUMNS.len()],
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

impl<'a> Block<'a> {
    /// Checks `bytes` (`DATA_LOSS`-worthy [`Error::Corrupt`] if they do not check).
    pub fn open(bytes: &'a [u8]) -> Result<Block<'a>> {
        if bytes.len() < HEADER + 4 {
            return Err(corrupt(format_args!("of {} bytes, too short", bytes.len())));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != u32_at(crc, 0) {
            return Err(corrupt("does not match its checksum"));
        }
        if body[0] != VERSION {
            return Err(corrupt(format_args!("of version {}", body[0])));
        }
        let mut columns = [(Codec::Pco, &body[..0]); COLUMNS.len()];
        let mut at = HEADER;
        for (n, column) in columns.iter_mut().enumerate() {
            let entry = 9 + n * 5;
            let codec = Codec::of(body[entry])
                .ok_or_else(|| corrupt(format_args!("with codec {}", body[entry])))?;
            let len = u32_at(body, entry + 1) as usize;
            let bytes = body
                .get(at..at + len)
                .ok_or_else(|| corrupt("whose columns run past its end"))?;
            *column = (codec, bytes);
            at += len;
        }
        if at != body.len() {
            return Err(corrupt("with bytes after its columns"));
        }
        Ok(Block {
            rows: u32_at(body, 1),
            max_release: u32_at(body, 5),
            columns,
        })
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows as usize
    }

    /// The highest release id of its rows (a read as of an earlier release may skip it).
    pub fn max_release(&self) -> u32 {
        self.max_release
    }

    /// Bytes of `column` as stored.
    pub fn column_bytes(&self, column: Column) -> usize {
        self.columns[column as usize].1.len()
    }

    /// The ids of `column` (not [`Column::Value`]).
    pub fn column(&self, column: Column) -> Result<Vec<u32>> {
        debug_assert!(column != Column::Value, "values are read by Block::values");
        let (codec, bytes) = self.columns[column as usize];
        let ids = match codec {
            Codec::Pco => pco::standalone::simple_decompress::<u32>(bytes)
                .map_err(|e| corrupt(format_args!("column that does not decode: {e}")))?,
            Codec::Zstd => unzstd(bytes, self.rows(), 4)?
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect(),
        };
        self.check_len(ids.len())?;
        Ok(ids)
    }

    /// The values.
    pub fn values(&self) -> Result<Vec<f64>> {
        let (codec, bytes) = self.columns[Column::Value as usize];
        let values = match codec {
            Codec::Pco => pco::standalone::simple_decompress::<f64>(bytes)
                .map_err(|e| corrupt(format_args!("column that does not decode: {e}")))?,
            Codec::Zstd => unzstd(bytes, self.rows(), 8)?
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect(),
        };
        self.check_len(values.len())?;
        Ok(values)
    }

    fn check_len(&self, len: usize) -> Result<()> {
        match len == self.rows() {
            true => Ok(()),
            false => Err(corrupt(format_args!(
                "column of {len} rows in a block of {}",
                self.rows
            ))),
        }
    }

    /// Every column.
    pub fn decode(&self) -> Result<Rows> {
        Ok(Rows {
            partner: self.column(Column::Partner)?,
            flags: self.column(Column::Flags)?,
            measure: self.column(Column::Measure)?,
            product: self.column(Column::Product)?,
            release: self.column(Column::Release)?,
            source: self.column(Column::Source)?,
            value: self.values()?,
        })
    }
}

fn unzstd(bytes: &[u8], rows: usize, width: usize) -> Result<Vec<u8>> {
    let out = zstd::block::decompress(bytes, rows * width)
        .map_err(|e| corrupt(format_args!("column that does not decode: {e}")))?;
    match out.len() == rows * width {
        true => Ok(out),
        false => Err(corrupt("column of the wrong length")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn rows_of(map: &BTreeMap<RowKey, (u32, f64)>) -> Rows {
        let mut rows = Rows::default();
        for (&key, &(source, value)) in map {
            rows.push(key, source, value);
        }
        rows
    }

    fn arbitrary_rows() -> impl Strategy<Value = Vec<(RowKey, u32, f64)>> {
        let key = (0u32..300, 0u32..12, 0u32..3, 0u32..6000, 0u32..4);
        let value = prop_oneof![
            (0i64..1 << 40).prop_map(|v| v as f64),
            any::<f64>().prop_filter("not NaN", |v| !v.is_nan()),
        ];
        prop::collection::vec((key, 0u32..5, value), 0..400)
    }

    proptest! {
        /// Sorting keeps the last row pushed of each key, as a map would; a block gives back
        /// exactly what was encoded, in either codec.
        #[test]
        fn rows_round_trip_through_a_block(pushed in arbitrary_rows()) {
            let mut model = BTreeMap::new();
            let mut rows = Rows::default();
            for &(key, source, value) in &pushed {
                model.insert(key, (source, value));
                rows.push(key, source, value);
            }
            rows.sort();
            prop_assert!(rows.is_sorted());
            prop_assert_eq!(&rows, &rows_of(&model));
            for codec in [Codec::Pco, Codec::Zstd] {
                let bytes = encode(&rows, codec).unwrap();
                let block = Block::open(&bytes).unwrap();
                prop_assert_eq!(block.rows(), rows.len());
                prop_assert_eq!(block.max_release(), rows.release.iter().copied().max().unwrap_or(0));
                prop_assert_eq!(&block.decode().unwrap(), &rows);
            }
        }

        /// A merge is the newer rows laid over the older, as maps.
        #[test]
        fn a_merge_lays_the_newer_rows_over_the_older(older in arbitrary_rows(), newer in arbitrary_rows()) {
            let mut model = BTreeMap::new();
            let (mut a, mut b) = (Rows::default(), Rows::default());
            for &(key, source, value) in &older {
                model.insert(key, (source, value));
                a.push(key, source, value);
            }
            for &(key, source, value) in &newer {
                model.insert(key, (source, value));
                b.push(key, source, value);
            }
            a.sort();
            b.sort();
            prop_assert_eq!(merge(&a, &b), rows_of(&model));
        }
    }

    /// Every flipped byte of a block is found: by its checksum, or by the header it breaks.
    #[test]
    fn a_flipped_byte_is_found() {
        let mut rows = Rows::default();
        for i in 0..200u32 {
            rows.push((i / 20, 2, 0, i * 7, 0), 0, f64::from(i) * 1000.0);
        }
        let bytes = encode(&rows, Codec::Pco).unwrap();
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            let opened = Block::open(&bad).and_then(|b| b.decode());
            assert!(
                matches!(opened, Err(Error::Corrupt(_))),
                "byte {at}: {opened:?}"
            );
        }
        assert_eq!(Block::open(&bytes).unwrap().decode().unwrap(), rows);
        assert!(Block::open(&bytes[..10]).is_err());
    }
}

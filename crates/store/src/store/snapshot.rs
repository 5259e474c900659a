//! A store's snapshot: every tree's entries at one sequence, as one stream of bytes (cluster
//! mode keeps one in the JetStream object store, so that a new node starts from it and the
//! messages after it instead of replaying the whole log).
//!
//! Layout (integers big-endian): `TPSNAP` and version 1 (u16), the store's [`FORMAT`] (u32)
//! and sequence (u64); then, for each tree, `T`, its name (u16 length, bytes) and its entries,
//! each `E`, key (u32 length, bytes), value (u32 length, bytes); then `Z`, the number of entries
//! (u64) and the CRC32C of every byte before it (u32). A snapshot is taken under the write
//! lock, so it is the store at exactly its sequence (writes wait; reads do not); it is restored
//! into a staging directory renamed into place once the checksum matched, so a node never
//! opens half a snapshot.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::{Store, FORMAT};
use crate::{Error, Result, StoreOptions};

const MAGIC: &[u8; 6] = b"TPSNAP";
const VERSION: u16 = 1;
/// Bytes of entries restored per batch (larger batches make sled hold far more memory: 8 MB
/// batches peaked near 1 GB restoring 10^7 points, these at about 110 MB, no slower).
const BATCH_BYTES: usize = 256 << 10;
/// The longest key or value a snapshot may hold (a write's change record, the largest
/// value, stays below the largest request).
const MAX_ITEM: usize = 1 << 30;
/// sled's tree of its own, not ours.
const SLED_DEFAULT: &[u8] = b"__sled__default";

/// What a snapshot holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The store's sequence: the last write it holds.
    pub sequence: u64,
    /// Entries of every tree.
    pub entries: u64,
    /// Bytes of the snapshot.
    pub bytes: u64,
}

/// A writer that counts and checksums what passes.
struct Summed<W> {
    inner: W,
    crc: u32,
    bytes: u64,
}

impl<W: Write> Summed<W> {
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.bytes += b.len() as u64;
        self.inner.write_all(b)
    }
}

fn io(e: std::io::Error) -> Error {
    Error::Storage(sled::Error::Io(e))
}

impl Store {
    /// Writes the store, as of its current sequence, to `out`. Holds the write lock while it
    /// reads (writes wait, reads go on); `out` should be fast (a local file), not a network.
    pub fn snapshot(&self, out: impl Write) -> Result<SnapshotInfo> {
        let last = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let sequence = *last;
        let mut out = Summed {
            inner: BufWriter::with_capacity(1 << 20, out),
            crc: 0,
            bytes: 0,
        };
        let mut entries = 0u64;
        let mut head = Vec::with_capacity(20);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&VERSION.to_be_bytes());
        head.extend_from_slice(&FORMAT.to_be_bytes());
        head.extend_from_slice(&sequence.to_be_bytes());
        out.put(&head).map_err(io)?;
        for name in self.h()?.db.tree_names() {
            if name == SLED_DEFAULT {
                continue;
            }
            out.put(b"T").map_err(io)?;
            out.put(&(name.len() as u16).to_be_bytes()).map_err(io)?;
            out.put(&name).map_err(io)?;
            for item in self.h()?.db.open_tree(&name)?.iter() {
                let (k, v) = item?;
                out.put(b"E").map_err(io)?;
                out.put(&(k.len() as u32).to_be_bytes()).map_err(io)?;
                out.put(&k).map_err(io)?;
                out.put(&(v.len() as u32).to_be_bytes()).map_err(io)?;
                out.put(&v).map_err(io)?;
                entries += 1;
            }
        }
        drop(last);
        out.put(b"Z").map_err(io)?;
        out.put(&entries.to_be_bytes()).map_err(io)?;
        let crc = out.crc;
        out.inner.write_all(&crc.to_be_bytes()).map_err(io)?;
        out.inner.flush().map_err(io)?;
        Ok(SnapshotInfo {
            sequence,
            entries,
            bytes: out.bytes + 4,
        })
    }
}

/// A reader that checksums what passes.
struct Checked<R> {
    inner: R,
    crc: u32,
}

impl<R: Read> Checked<R> {
    fn take(&mut self, n: usize) -> Result<Vec<u8>> {
        // Grown as bytes arrive: a damaged length costs no more memory than the bytes there.
        let mut buf = Vec::new();
        (&mut self.inner)
            .take(n as u64)
            .read_to_end(&mut buf)
            .map_err(io)?;
        if buf.len() < n {
            return Err(truncated(std::io::ErrorKind::UnexpectedEof.into()));
        }
        self.crc = crc32c::crc32c_append(self.crc, &buf);
        Ok(buf)
    }

    fn int<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut buf = [0; N];
        self.inner.read_exact(&mut buf).map_err(truncated)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf);
        Ok(buf)
    }

    fn sized(&mut self) -> Result<Vec<u8>> {
        let n = u32::from_be_bytes(self.int()?) as usize;
        if n > MAX_ITEM {
            return Err(Error::Corrupt(format!("snapshot: an item of {n} bytes")));
        }
        self.take(n)
    }
}

fn truncated(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Error::Corrupt("snapshot: it ends early".to_owned())
    } else {
        io(e)
    }
}

/// The directory a restore into `dir` is staged in.
fn staging(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_owned();
    name.push(".restoring");
    dir.with_file_name(name)
}

/// Whether `dir` holds nothing (or does not exist): a directory a snapshot may be restored
/// into.
pub fn is_blank(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(e)),
    }
}

/// Restores the snapshot read from `input` into `dir`, which must be blank ([`is_blank`]):
/// staged beside it and renamed into place once complete and checked (a restore cut short
/// leaves no store in `dir`, and is started again from nothing). The store is not opened.
pub fn restore(dir: &Path, options: StoreOptions, input: impl Read) -> Result<SnapshotInfo> {
    if !is_blank(dir)? {
        return Err(Error::Invalid(vec![crate::Violation {
            field: "dir".to_owned(),
            description: format!(
                "{} is not empty: a snapshot is restored into an empty directory",
                dir.display()
            ),
        }]));
    }
    let stage = staging(dir);
    if stage.exists() {
        std::fs::remove_dir_all(&stage).map_err(io)?;
    }
    let restored = restore_into(&stage, options, input);
    if restored.is_err() {
        let _ = std::fs::remove_dir_all(&stage);
        return restored;
    }
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(io)?;
    }
    std::fs::rename(&stage, dir).map_err(io)?;
    restored
}

/// What a snapshot holds, in order.
enum Item {
    Tree(Vec<u8>),
    Entry(Vec<u8>, Vec<u8>),
}

/// Reads a snapshot from `input`, giving each tree and entry to `sink`, and checks its
/// format, entry count and checksum (the last, once every item has been given).
fn read(input: impl Read, mut sink: impl FnMut(Item) -> Result<()>) -> Result<SnapshotInfo> {
    let mut input = Checked {
        inner: std::io::BufReader::with_capacity(1 << 20, input),
        crc: 0,
    };
    let head: [u8; 20] = input.int()?;
    if &head[..6] != MAGIC {
        return Err(Error::Corrupt(
            "snapshot: not a tradepact snapshot".to_owned(),
        ));
    }
    let version = u16::from_be_bytes([head[6], head[7]]);
    let format = u32::from_be_bytes(head[8..12].try_into().expect("4 bytes"));
    let sequence = u64::from_be_bytes(head[12..20].try_into().expect("8 bytes"));
    if version != VERSION || format != FORMAT {
        return Err(Error::Format(format!(
            "the snapshot is of version {version} and store format {format}; this tradepact reads version {VERSION} of format {FORMAT}"
        )));
    }
    let (mut entries, mut bytes, mut in_tree) = (0u64, 20u64, false);
    loop {
        let [tag] = input.int()?;
        bytes += 1;
        match tag {
            b'T' => {
                let n = u16::from_be_bytes(input.int()?) as usize;
                let name = input.take(n)?;
                bytes += 2 + n as u64;
                in_tree = true;
                sink(Item::Tree(name))?;
            }
            b'E' if in_tree => {
                let (k, v) = (input.sized()?, input.sized()?);
                bytes += 8 + (k.len() + v.len()) as u64;
                entries += 1;
                sink(Item::Entry(k, v))?;
            }
            b'Z' => {
                let count = u64::from_be_bytes(input.int()?);
                let expected = input.crc;
                let mut crc = [0u8; 4];
                input.inner.read_exact(&mut crc).map_err(truncated)?;
                if count != entries || u32::from_be_bytes(crc) != expected {
                    return Err(Error::Corrupt(
                        "snapshot: its checksum or entry count does not match".to_owned(),
                    ));
                }
                return Ok(SnapshotInfo {
                    sequence,
                    entries,
                    bytes: bytes + 12,
                });
            }
            other => {
                return Err(Error::Corrupt(format!(
                    "snapshot: unexpected byte {other:#04x}"
                )))
            }
        }
    }
}

/// Reads the snapshot from `input` through, checking it whole (format, entry count,
/// checksum) without storing it.
pub fn check(input: impl Read) -> Result<SnapshotInfo> {
    read(input, |_| Ok(()))
}

fn restore_into(stage: &Path, options: StoreOptions, input: impl Read) -> Result<SnapshotInfo> {
    // Nothing is read before the staging directory is opened: a snapshot of another format
    // is refused by `read` before the first entry.
    let db = sled::Config::new()
        .path(stage)
        .cache_capacity(options.cache_bytes)
        .use_compression(options.compression)
        .compression_factor(1)
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(None)
        .open()?;
    let mut tree: Option<sled::Tree> = None;
    let (mut batch, mut batched) = (sled::Batch::default(), 0usize);
    let info = read(input, |item| {
        match item {
            Item::Tree(name) => {
                if let Some(t) = &tree {
                    t.apply_batch(std::mem::take(&mut batch))?;
                    batched = 0;
                }
                tree = Some(db.open_tree(name)?);
            }
            Item::Entry(k, v) => {
                batched += k.len() + v.len();
                batch.insert(k, v);
                if batched >= BATCH_BYTES {
                    let t = tree.as_ref().expect("an entry follows its tree");
                    t.apply_batch(std::mem::take(&mut batch))?;
                    batched = 0;
                }
            }
        }
        Ok(())
    })?;
    if let Some(t) = &tree {
        t.apply_batch(batch)?;
    }
    db.flush()?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{annual, points, reopen};
    use super::*;
    use crate::model::reference::{GroupInfo, Membership};
    use crate::model::{Country, Flow, Kind, Release, SeriesKey};
    use proptest::prelude::*;

    /// A tree's name and its entries.
    type Tree = (Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>);
    /// A write: the series' partner (an index), its (period, value) points, whether released.
    type TestWrite = (u8, Vec<(u32, f64)>, bool);

    /// Every entry of every tree but sled's own, by tree.
    fn contents(dir: &Path) -> Vec<Tree> {
        // sled's flusher may hold the directory's lock a moment after a store is dropped.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let db = loop {
            match sled::open(dir) {
                Ok(db) => break db,
                Err(e) if std::time::Instant::now() < deadline => {
                    assert!(e.to_string().contains("lock"), "{e}");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("{e}"),
            }
        };
        let mut out = Vec::new();
        for name in db.tree_names() {
            if name == SLED_DEFAULT {
                continue;
            }
            let tree = db.open_tree(&name).unwrap();
            let entries = tree
                .iter()
                .map(|i| i.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
                .collect();
            out.push((name.to_vec(), entries));
        }
        out
    }

    /// A store with `writes` (series partner index, periods, release?) at sequences 1…, a
    /// group and a delete among them.
    fn fill(store: &Store, writes: &[TestWrite]) {
        let mut seq = 0;
        for (partner, values, released) in writes {
            seq += 1;
            let key = SeriesKey {
                partner: Country::parse(["KOR", "JPN", "CHN", "MEX"][*partner as usize % 4])
                    .unwrap(),
                ..annual(Flow::Import, Kind::Goods)
            };
            let release = released.then(|| Release {
                label: format!("r{}", seq % 3),
                date: time::Date::from_ordinal_date(2020, 1 + (seq % 3) as u16).unwrap(),
                source: "test".into(),
            });
            store
                .write_at(&[points(&key, values)], release.as_ref(), seq, |_| {})
                .unwrap();
            if partner % 5 == 4 {
                seq += 1;
                store.delete_at(&key, seq).unwrap();
            }
        }
        store
            .define_group(&GroupInfo {
                name: "pacific".into(),
                description: "a test group".into(),
                members: vec![Membership {
                    code: Country::parse("KOR").unwrap(),
                    from: Some(2007),
                    until: None,
                }],
                user_defined: true,
            })
            .unwrap();
        store.flush().unwrap();
    }

    fn writes() -> impl Strategy<Value = Vec<TestWrite>> {
        prop::collection::vec(
            (
                0u8..10,
                prop::collection::vec((1990u32..2030, -1e12f64..1e12), 1..12),
                any::<bool>(),
            ),
            1..20,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// A restored store holds every entry of every tree as the snapshot's store did, and
        /// the same next write makes both the same again.
        #[test]
        fn a_restored_store_is_the_store_byte_for_byte(writes in writes()) {
            let tmp = tempfile::tempdir().unwrap();
            let (from, into) = (tmp.path().join("from"), tmp.path().join("into"));
            let store = Store::open(&from).unwrap();
            fill(&store, &writes);
            let mut bytes = Vec::new();
            let taken = store.snapshot(&mut bytes).unwrap();
            prop_assert_eq!(taken.sequence, store.sequence());
            prop_assert_eq!(taken.bytes, bytes.len() as u64);
            prop_assert_eq!(check(&bytes[..]).unwrap(), taken);
            let restored = restore(&into, StoreOptions::default(), &bytes[..]).unwrap();
            prop_assert_eq!(restored, taken);
            let next = [points(&annual(Flow::Export, Kind::Goods), &[(2024, 1.5)])];
            store.write_at(&next, None, taken.sequence + 1, |_| {}).unwrap();
            store.flush().unwrap();
            drop(store);
            let copy = reopen(&into);
            prop_assert_eq!(copy.sequence(), taken.sequence);
            copy.write_at(&next, None, taken.sequence + 1, |_| {}).unwrap();
            copy.flush().unwrap();
            drop(copy);
            prop_assert_eq!(contents(&into), contents(&from));
        }
    }

    /// A snapshot damaged anywhere (one byte changed, or cut short) is refused and leaves
    /// the directory without a store.
    #[test]
    fn a_damaged_snapshot_is_refused_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("from")).unwrap();
        fill(&store, &[(0, vec![(2016, 27.6e9), (2011, 13.2e9)], true)]);
        let mut bytes = Vec::new();
        store.snapshot(&mut bytes).unwrap();
        let into = tmp.path().join("into");
        let step = (bytes.len() / 97).max(1);
        for at in (0..bytes.len()).step_by(step) {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x40;
            assert!(check(&flipped[..]).is_err(), "byte {at}");
            let e = restore(&into, StoreOptions::default(), &flipped[..]).unwrap_err();
            assert!(
                matches!(e, Error::Corrupt(_) | Error::Format(_)),
                "byte {at}: {e}"
            );
            assert!(is_blank(&into).unwrap() && !staging(&into).exists());
            let e = restore(&into, StoreOptions::default(), &bytes[..at]).unwrap_err();
            assert!(matches!(e, Error::Corrupt(_)), "cut at {at}: {e}");
            assert!(is_blank(&into).unwrap());
        }
        // Into a directory holding something: refused, the directory untouched.
        std::fs::create_dir_all(&into).unwrap();
        std::fs::write(into.join("keep"), "x").unwrap();
        let e = restore(&into, StoreOptions::default(), &bytes[..]).unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
        assert_eq!(std::fs::read(into.join("keep")).unwrap(), b"x");
    }
}

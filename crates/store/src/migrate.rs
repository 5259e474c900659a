//! Bringing a store of an older format to the current one ([`crate::FORMAT`]).
//!
//! - Format 1 had no measure in series keys; format 2 added one byte (and a quantity's unit)
//!   after the frequency.
//! - Format 3 checksummed every chunk and kept the values of every release (chunk version 2).
//! - Format 4 finds a series by its key alone: its entry holds its counts and, when its points
//!   fall in one block, its chunk; other chunks are keyed by the series key.
//!
//! Formats 1–3 reached a series through an id (`K` + key → id, `M` + id → counts and key,
//! `C` + id + block → chunk). The migration reads each series that way, re-packs chunks of
//! version 1 (their values become the unnamed release's, see [`crate::release`]) and writes
//! it as format 4 does; releases, the sequence number and user groups are copied. The change
//! records of the old store are not: a watch resuming from before the migration is told to
//! re-read (`OUT_OF_RANGE`).
//!
//! The migration writes a new store beside the old one (`DIR.migrating`), makes it durable,
//! then renames the old one to `DIR.format-N` (kept: delete it when satisfied) and the new one
//! to `DIR`. A crash before the renames leaves the old store untouched (the next run starts
//! again); a crash between them is finished by the next run.

use std::path::{Path, PathBuf};

use crate::chunk::{self, Chunk, BLOCK};
use crate::model::SeriesKey;
use crate::store::{
    chunk_key, created_compressed, encode_entry, format_of, Meta, FORMAT_KEY, INDEX, RELEASE,
    RELEASE_LABEL, SEQUENCE,
};
use crate::{Error, Result, FORMAT};

/// Entries written per batch while copying.
const BATCH: usize = 10_000;
/// Formats 1–3: `M` + id (u64 BE) → count (u64), first, last (u32), encoded key.
const OLD_META: u8 = b'M';
/// Formats 1–3: `C` + id (u64 BE) + block (u32 BE) → chunk.
const OLD_CHUNK: u8 = b'C';

/// What a migration did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migrated {
    /// The format the store was in.
    pub from: u32,
    /// Series migrated.
    pub series: u64,
    /// Entries copied in all.
    pub entries: u64,
    /// Where the old store is kept.
    pub kept: PathBuf,
}

fn beside(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(format!(".{suffix}"));
    PathBuf::from(name)
}

fn corrupt(what: &str, from: u32) -> Error {
    Error::Corrupt(format!("{what} does not decode as format {from}"))
}

fn old_key(prefix: u8, id: u64, block: Option<u32>) -> Vec<u8> {
    let mut k = vec![prefix];
    k.extend_from_slice(&id.to_be_bytes());
    if let Some(block) = block {
        k.extend_from_slice(&block.to_be_bytes());
    }
    k
}

/// Migrates the store in `dir` to the current format; `Ok(None)` when it is already in it
/// (or empty).
pub fn migrate(dir: &Path) -> Result<Option<Migrated>> {
    let staging = beside(dir, "migrating");
    let olds = (1..FORMAT).map(|f| (f, beside(dir, &format!("format-{f}"))));
    if !dir.exists() && staging.exists() {
        if let Some((from, kept)) = olds.clone().find(|(_, kept)| kept.exists()) {
            // Interrupted between the two renames.
            std::fs::rename(&staging, dir).map_err(io)?;
            return Ok(Some(Migrated {
                from,
                series: 0,
                entries: 0,
                kept,
            }));
        }
    }
    if !dir.exists() {
        return Err(Error::NotFound(format!("no store in {}", dir.display())));
    }
    let compressed = created_compressed(dir).unwrap_or(false);
    let old = sled::Config::new()
        .path(dir)
        .use_compression(compressed)
        .open()?;
    let tree = old.open_tree("series")?;
    let from = match format_of(&tree)? {
        None => return Ok(None),
        Some(FORMAT) => return Ok(None),
        Some(from) if from < FORMAT => from,
        Some(other) => {
            return Err(Error::Format(format!(
                "format {other} is not one this version migrates (it reads {FORMAT})"
            )))
        }
    };
    let kept = beside(dir, &format!("format-{from}"));
    if kept.exists() {
        return Err(Error::Format(format!(
            "{} exists from an earlier migration; move it away first",
            kept.display()
        )));
    }
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io)?;
    }
    // The migrated store keeps the compression the old one was created with.
    let new = sled::Config::new()
        .path(&staging)
        .use_compression(compressed)
        .compression_factor(1)
        .open()?;
    let out = new.open_tree("series")?;
    let (mut series, mut entries) = (0u64, 0u64);
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    let mut put = |k: Vec<u8>, v: Vec<u8>, batch: &mut sled::Batch| -> Result<()> {
        batch.insert(k, v);
        entries += 1;
        in_batch += 1;
        if in_batch == BATCH {
            out.apply_batch(std::mem::take(batch))?;
            in_batch = 0;
        }
        Ok(())
    };
    for item in tree.scan_prefix([INDEX]) {
        let (k, v) = item?;
        let key = match from {
            1 => SeriesKey::decode_format_1(&k[1..]),
            _ => SeriesKey::decode(&k[1..]),
        }
        .ok_or_else(|| corrupt("a catalog key", from))?;
        let id = v[..]
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| corrupt("a series id", from))?;
        let raw = tree
            .get(old_key(OLD_META, id, None))?
            .ok_or_else(|| corrupt("a catalog entry", from))?;
        let int = |at: usize| raw.get(at..at + 4).and_then(|b| b.try_into().ok());
        let meta = Meta {
            count: raw
                .get(4..8)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| corrupt("a catalog entry", from))?,
            first: int(8)
                .map(u32::from_be_bytes)
                .ok_or_else(|| corrupt("a catalog entry", from))?,
            last: int(12)
                .map(u32::from_be_bytes)
                .ok_or_else(|| corrupt("a catalog entry", from))?,
        };
        let mut chunks = Vec::new();
        let range = old_key(OLD_CHUNK, id, Some(0))..=old_key(OLD_CHUNK, id, Some(u32::MAX));
        for item in tree.range(range) {
            let (ck, bytes) = item?;
            let block = ck[9..13]
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| corrupt("a chunk key", from))?;
            let chunk = match from {
                1 | 2 => chunk::decode_version_1(&bytes)?,
                _ => Chunk::decode(&bytes)?,
            };
            chunks.push((block, chunk.encode()));
        }
        let encoded = key.encode();
        match chunks.as_slice() {
            [(block, chunk)] if meta.first / BLOCK == meta.last / BLOCK => {
                let entry = encode_entry(&meta, Some((*block, chunk)));
                put(prefixed(INDEX, &encoded), entry, &mut batch)?;
            }
            _ => {
                put(
                    prefixed(INDEX, &encoded),
                    encode_entry(&meta, None),
                    &mut batch,
                )?;
                for (block, chunk) in chunks {
                    put(chunk_key(&encoded, block), chunk, &mut batch)?;
                }
            }
        }
        series += 1;
    }
    for prefix in [RELEASE_LABEL, RELEASE] {
        for item in tree.scan_prefix([prefix]) {
            let (k, v) = item?;
            put(k.to_vec(), v.to_vec(), &mut batch)?;
        }
    }
    if let Some(seq) = tree.get(SEQUENCE)? {
        put(SEQUENCE.to_vec(), seq.to_vec(), &mut batch)?;
    }
    batch.insert(FORMAT_KEY, &FORMAT.to_be_bytes());
    out.apply_batch(batch)?;
    for name in old.tree_names() {
        if name != "series" && name != "__sled__default" {
            let (from_tree, to_tree) = (old.open_tree(&name)?, new.open_tree(&name)?);
            for item in from_tree.iter() {
                let (k, v) = item?;
                to_tree.insert(k, v)?;
            }
        }
    }
    new.flush()?;
    drop((out, new, tree, old));
    std::fs::rename(dir, &kept).map_err(io)?;
    std::fs::rename(&staging, dir).map_err(io)?;
    Ok(Some(Migrated {
        from,
        series,
        entries,
        kept,
    }))
}

fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = vec![prefix];
    k.extend_from_slice(rest);
    k
}

fn io(e: std::io::Error) -> Error {
    Error::Storage(sled::Error::Io(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Country, Flow, Frequency, Kind, Measure, Product};
    use crate::Store;

    /// `f`, again while sled has not yet released the lock of a store just closed (it does
    /// so a moment after the last handle is dropped).
    fn retry<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
        for _ in 0..200 {
            match f() {
                Err(Error::Storage(sled::Error::Io(e))) if e.to_string().contains("lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                other => return other,
            }
        }
        f()
    }

    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                continue; // sled's empty `blobs`
            }
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }

    /// The stores the earlier formats' versions wrote (`tests/fixtures/store-format-N`: the
    /// KORUS sample, 66 points) are refused, then migrated with every point.
    #[test]
    fn stores_of_earlier_formats_are_refused_then_migrated_with_every_point() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let goods_exports = SeriesKey {
            reporter: Country::parse("USA").unwrap(),
            partner: Country::parse("KOR").unwrap(),
            flow: Flow::Export,
            kind: Kind::Goods,
            product: Product::total(),
            frequency: Frequency::Annual,
            measure: Measure::ValueUsd,
        };
        for from in 1..FORMAT {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("trade");
            copy(&fixtures.join(format!("store-format-{from}/trade")), &dir);
            let refused = match retry(|| Store::open(&dir)) {
                Err(Error::Format(why)) => why,
                other => panic!("format {from} must be refused, got {:?}", other.map(|_| ())),
            };
            assert!(refused.contains("tradepact migrate-store"), "{refused}");
            let migrated = retry(|| migrate(&dir)).unwrap().unwrap();
            assert_eq!(migrated.from, from);
            assert!(migrated.series > 0 && migrated.kept.exists());
            let store = retry(|| Store::open(&dir)).unwrap();
            let (all, _) = store.list(&Default::default(), None, 1000).unwrap();
            let points: u64 = all.iter().map(|s| s.point_count).sum();
            // Format 3's store also holds the sample's releases (reported balances).
            let expected = if from == 3 { 75 } else { 66 };
            assert_eq!(points, expected, "format {from}");
            if from == 3 {
                assert_eq!(store.releases().len(), 6);
                let reported = SeriesKey {
                    measure: Measure::ReportedBalanceUsd,
                    ..goods_exports.clone()
                };
                let facts = store.release_named("ustr-trade-facts-2016").unwrap();
                let as_of: Vec<f64> = store
                    .scan(&reported, 2016, 2016, crate::View::AsOf(facts.rank()))
                    .unwrap()
                    .map(|p| p.unwrap().value)
                    .collect();
                assert_eq!(as_of, [-27.7e9]);
                assert_eq!(
                    store.read(&reported, 2016, 2016).unwrap()[0].value,
                    -27.57e9
                );
                assert!(store.verify(|| false).unwrap().history > 0);
            }
            let exports = store.read(&goods_exports, 2016, 2016).unwrap();
            assert_eq!(exports.len(), 1);
            assert!(exports[0].value > 4.0e10, "{:?}", exports[0]);
            assert!(store.verify(|| false).unwrap().corrupt.is_empty());
            drop(store);
            assert_eq!(retry(|| migrate(&dir)).unwrap(), None, "already current");
        }
    }
}

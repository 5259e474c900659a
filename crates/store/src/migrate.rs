//! Bringing a store of an older format to the current one ([`crate::FORMAT`]).
//!
//! - Format 1 had no measure in series keys; format 2 added one byte (and a quantity's unit)
//!   after the frequency: the catalog's keys change (`K` + key, and the key inside each `M`).
//! - Format 3 checksums every chunk and keeps the values of every release: each chunk is
//!   re-packed (its values become the unnamed release's, see [`crate::release`]), and each
//!   change record gains the release of its write (none).
//!
//! Everything else (ids, sequence numbers, groups) is copied as it is. The migration writes a
//! new store beside the old one (`DIR.migrating`), makes it durable, then renames the old one
//! to `DIR.format-N` (kept: delete it when satisfied) and the new one to `DIR`. A crash before
//! the renames leaves the old store untouched (the next run starts again); a crash between
//! them is finished by the next run.

use std::path::{Path, PathBuf};

use crate::chunk;
use crate::model::SeriesKey;
use crate::store::{format_of, CHANGES, CHUNK, FORMAT_KEY, INDEX, META};
use crate::{Error, Result, FORMAT};

/// Entries written per batch while copying.
const BATCH: usize = 10_000;

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
    let old = sled::Config::new().path(dir).open()?;
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
    let new = sled::Config::new().path(&staging).open()?;
    let out = new.open_tree("series")?;
    let (mut series, mut entries) = (0u64, 0u64);
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    let key_of = |b: &[u8]| {
        if from == 1 {
            SeriesKey::decode_format_1(b)
        } else {
            SeriesKey::decode(b)
        }
    };
    for item in tree.iter() {
        let (k, v) = item?;
        let (key, value) = match k.first() {
            Some(&INDEX) => {
                let series_key = key_of(&k[1..]).ok_or_else(|| corrupt("a catalog key", from))?;
                let mut key = vec![INDEX];
                key.extend_from_slice(&series_key.encode());
                series += 1;
                (key, v.to_vec())
            }
            Some(&META) if k.len() == 9 => {
                let series_key = v
                    .get(16..)
                    .and_then(key_of)
                    .ok_or_else(|| corrupt("a catalog entry", from))?;
                let mut value = v[..16].to_vec();
                value.extend_from_slice(&series_key.encode());
                (k.to_vec(), value)
            }
            Some(&CHUNK) if k.len() == 13 => (k.to_vec(), chunk::decode_version_1(&v)?.encode()),
            Some(&CHANGES) if k.len() == 9 => {
                let mut record = 0u32.to_be_bytes().to_vec(); // no release
                record.extend_from_slice(&v);
                (k.to_vec(), record)
            }
            _ => (k.to_vec(), v.to_vec()),
        };
        batch.insert(key, value);
        entries += 1;
        in_batch += 1;
        if in_batch == BATCH {
            out.apply_batch(std::mem::take(&mut batch))?;
            in_batch = 0;
        }
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
            assert_eq!(points, 66, "format {from}");
            let exports = store.read(&goods_exports, 2016, 2016).unwrap();
            assert_eq!(exports.len(), 1);
            assert!(exports[0].value > 4.0e10, "{:?}", exports[0]);
            assert!(store.verify(|| false).unwrap().corrupt.is_empty());
            drop(store);
            assert_eq!(retry(|| migrate(&dir)).unwrap(), None, "already current");
        }
    }
}

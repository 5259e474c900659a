//! Bringing a store of an older format to the current one ([`crate::FORMAT`]).
//!
//! Format 1 had no measure in series keys; format 2 adds one byte (and a quantity's unit)
//! after the frequency. Only the catalog's keys change (`K` + key, and the key inside each
//! `M` entry): chunks, change records and sequence numbers refer to series by id and are
//! copied as they are.
//!
//! The migration writes a new store beside the old one (`DIR.migrating`), makes it durable,
//! then renames the old one to `DIR.format-1` (kept: delete it when satisfied) and the new one
//! to `DIR`. A crash before the renames leaves the old store untouched (the next run starts
//! again); a crash between them is finished by the next run.

use std::path::{Path, PathBuf};

use crate::model::SeriesKey;
use crate::store::{format_of, FORMAT_KEY, INDEX, META};
use crate::{Error, Result, FORMAT};

/// Entries written per batch while copying.
const BATCH: usize = 10_000;

/// What a migration did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migrated {
    /// The format the store was in.
    pub from: u32,
    /// Series whose keys were rewritten.
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

fn corrupt(what: &str) -> Error {
    Error::Corrupt(format!("{what} does not decode as format 1"))
}

/// Migrates the store in `dir` to the current format; `Ok(None)` when it is already in it
/// (or empty).
pub fn migrate(dir: &Path) -> Result<Option<Migrated>> {
    let (staging, kept) = (beside(dir, "migrating"), beside(dir, "format-1"));
    if !dir.exists() && staging.exists() && kept.exists() {
        // Interrupted between the two renames.
        std::fs::rename(&staging, dir).map_err(io)?;
        return Ok(Some(Migrated {
            from: 1,
            series: 0,
            entries: 0,
            kept,
        }));
    }
    if !dir.exists() {
        return Err(Error::NotFound(format!("no store in {}", dir.display())));
    }
    let old = sled::Config::new().path(dir).open()?;
    let tree = old.open_tree("series")?;
    match format_of(&tree)? {
        None => return Ok(None),
        Some(FORMAT) => return Ok(None),
        Some(1) if kept.exists() => {
            return Err(Error::Format(format!(
                "{} exists from an earlier migration; move it away first",
                kept.display()
            )))
        }
        Some(1) => {}
        Some(other) => {
            return Err(Error::Format(format!(
                "format {other} is not one this version migrates (it reads {FORMAT})"
            )))
        }
    }
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io)?;
    }
    let new = sled::Config::new().path(&staging).open()?;
    let out = new.open_tree("series")?;
    let (mut series, mut entries) = (0u64, 0u64);
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    for item in tree.iter() {
        let (k, v) = item?;
        let (key, value) = match k.first() {
            Some(&INDEX) => {
                let series_key =
                    SeriesKey::decode_format_1(&k[1..]).ok_or_else(|| corrupt("a catalog key"))?;
                let mut key = vec![INDEX];
                key.extend_from_slice(&series_key.encode());
                series += 1;
                (key, v.to_vec())
            }
            Some(&META) if k.len() == 9 => {
                if v.len() < 16 {
                    return Err(corrupt("a catalog entry"));
                }
                let series_key = SeriesKey::decode_format_1(&v[16..])
                    .ok_or_else(|| corrupt("a catalog entry"))?;
                let mut value = v[..16].to_vec();
                value.extend_from_slice(&series_key.encode());
                (k.to_vec(), value)
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
    new.flush()?;
    drop((out, new, tree, old));
    std::fs::rename(dir, &kept).map_err(io)?;
    std::fs::rename(&staging, dir).map_err(io)?;
    Ok(Some(Migrated {
        from: 1,
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
    use crate::model::{Country, Flow, Frequency, Kind, Measure, Point, Product, SeriesPoints};
    use crate::Store;

    fn key(partner: &str) -> SeriesKey {
        SeriesKey {
            reporter: Country::parse("USA").unwrap(),
            partner: Country::parse(partner).unwrap(),
            flow: Flow::Import,
            kind: Kind::Goods,
            product: Product::parse("HS:8703").unwrap(),
            frequency: Frequency::Annual,
            measure: Measure::ValueUsd,
        }
    }

    /// Rewrites a current store's catalog as format 1 wrote it, and removes its format.
    fn make_format_1(dir: &Path) {
        let db = retry(|| Ok(sled::Config::new().path(dir).open()?)).unwrap();
        let tree = db.open_tree("series").unwrap();
        let entries: Vec<_> = tree.iter().map(Result::unwrap).collect();
        for (k, v) in entries {
            let old = |key: &SeriesKey| {
                let mut b = key.encode();
                b.remove(9); // the measure byte (a value in US dollars)
                b
            };
            match k[0] {
                INDEX => {
                    let key = SeriesKey::decode(&k[1..]).unwrap();
                    tree.remove(&k).unwrap();
                    let mut nk = vec![INDEX];
                    nk.extend(old(&key));
                    tree.insert(nk, v).unwrap();
                }
                META if k.len() == 9 => {
                    let key = SeriesKey::decode(&v[16..]).unwrap();
                    let mut nv = v[..16].to_vec();
                    nv.extend(old(&key));
                    tree.insert(k, nv).unwrap();
                }
                _ => {}
            }
        }
        tree.remove(FORMAT_KEY).unwrap();
        db.flush().unwrap();
    }

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

    #[test]
    fn a_format_1_store_is_refused_then_migrated_with_every_point() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("trade");
        {
            let store = Store::open(&dir).unwrap();
            for (i, partner) in ["KOR", "JPN", "DEU"].iter().enumerate() {
                let points = (2000..2020)
                    .map(|y| Point {
                        ordinal: y,
                        value: f64::from(y) * (i as f64 + 1.0),
                        source: "test".into(),
                    })
                    .collect();
                store
                    .write(&[SeriesPoints {
                        key: key(partner),
                        points,
                    }])
                    .unwrap();
            }
            store.flush().unwrap();
        }
        make_format_1(&dir);
        let refused = match retry(|| Store::open(&dir)) {
            Err(Error::Format(why)) => why,
            other => panic!(
                "a format-1 store must be refused, got {:?}",
                other.map(|_| ())
            ),
        };
        assert!(refused.contains("tradepact migrate-store"), "{refused}");
        let migrated = retry(|| migrate(&dir)).unwrap().unwrap();
        assert_eq!((migrated.from, migrated.series), (1, 3));
        assert!(migrated.kept.exists());
        let store = retry(|| Store::open(&dir)).unwrap();
        for (i, partner) in ["KOR", "JPN", "DEU"].iter().enumerate() {
            let points = store.read(&key(partner), 2000, 2019).unwrap();
            assert_eq!(points.len(), 20);
            assert_eq!(points[5].value, 2005.0 * (i as f64 + 1.0));
        }
        assert_eq!(
            store.list(&Default::default(), None, 10).unwrap().0.len(),
            3
        );
        drop(store);
        assert_eq!(retry(|| migrate(&dir)).unwrap(), None, "already current");
    }
}

//! What the releases hold: which releases a set of series has values of, and what changed
//! between two releases (the points whose value as of one differs from their value as of the
//! other, see [`crate::release`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::chunk::Chunk;
use crate::model::{Period, SeriesFilter, SeriesKey};
use crate::release::{ReleaseInfo, View};
use crate::{Error, Result, Store};

/// Series read at most by one call.
pub const MAX_SERIES: usize = crate::query::MAX_SERIES;

/// One point whose value differs between two views.
#[derive(Clone, Debug, PartialEq)]
pub struct Revision {
    /// The series.
    pub key: SeriesKey,
    /// The period.
    pub period: Period,
    /// Its value as of the first view, if it had one.
    pub old: Option<f64>,
    /// Its value as of the second view, if it has one.
    pub new: Option<f64>,
    /// The release of the new value (of the old one when there is no new one).
    pub release: u32,
}

impl Revision {
    /// New minus old, when both exist.
    pub fn change(&self) -> Option<f64> {
        Some(self.new? - self.old?)
    }

    /// The change in percent of the old value, when both exist and the old is not zero.
    pub fn percent(&self) -> Option<f64> {
        let (old, change) = (self.old?, self.change()?);
        (old != 0.0).then(|| 100.0 * change / old.abs())
    }
}

/// The series `filter` selects, in key order, each with its chunks (latest and history),
/// until `each` says stop (returns `false`).
fn each_series(
    store: &Store,
    filter: &SeriesFilter,
    stop: &impl Fn() -> bool,
    mut each: impl FnMut(&SeriesKey, Vec<(u32, Chunk)>) -> Result<bool>,
) -> Result<()> {
    let (mut after, mut read) = (None::<Vec<u8>>, 0usize);
    loop {
        let (page, next) = store.list(filter, after.as_deref(), 10_000)?;
        for info in &page {
            read += 1;
            if stop() {
                return Err(Error::OutOfRange("the call was stopped".to_owned()));
            }
            if read > MAX_SERIES {
                return Err(Error::OutOfRange(format!(
                    "more than {MAX_SERIES} series match; narrow the filter"
                )));
            }
            let chunks = store
                .scan_chunks(&info.key, 0, u32::MAX, View::Latest)?
                .collect::<Result<Vec<_>>>()?;
            if !each(&info.key, chunks)? {
                return Ok(());
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok(()),
        }
    }
}

/// The named releases the series `filter` selects have values of, each with the number of
/// values (latest or superseded), in release order (date, then first written).
pub fn releases_of(
    store: &Store,
    filter: &SeriesFilter,
    stop: impl Fn() -> bool,
) -> Result<Vec<(ReleaseInfo, u64)>> {
    let mut counts: BTreeMap<u32, u64> = BTreeMap::new();
    each_series(store, filter, &stop, |_, chunks| {
        for (_, chunk) in &chunks {
            for e in chunk.entries().iter().chain(chunk.history()) {
                if e.release != 0 {
                    *counts.entry(e.release).or_default() += 1;
                }
            }
        }
        Ok(true)
    })?;
    let mut out = counts
        .into_iter()
        .map(|(id, n)| Ok((store.release_info(id)?, n)))
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|(info, _)| info.rank());
    Ok(out)
}

/// The points of the series `filter` selects whose value as `from` sees it differs from the
/// value as `to` sees it (appeared, changed or gone), in series and period order, at most
/// `limit` (`true` with them when more differ).
pub fn revisions(
    store: &Store,
    filter: &SeriesFilter,
    from: View,
    to: View,
    limit: usize,
    stop: impl Fn() -> bool,
) -> Result<(Vec<Revision>, bool)> {
    let rank = |id| store.rank(id);
    let as_seen = |chunk: &Chunk, view: View| match view {
        View::Latest => chunk.entries().to_vec(),
        View::AsOf(cutoff) => chunk.as_of(cutoff, &rank).entries().to_vec(),
    };
    let (mut out, mut more) = (Vec::new(), false);
    each_series(store, filter, &stop, |key, chunks| {
        for (base, chunk) in &chunks {
            let unnamed = chunk.entries().iter().all(|e| e.release == 0);
            let as_of = |v| matches!(v, View::AsOf(_));
            if from == to || (unnamed && as_of(from) && as_of(to)) {
                continue; // both views see the same (nothing, for unnamed values as of both)
            }
            let side = |view| -> BTreeMap<u8, (f64, u32)> {
                (as_seen(chunk, view).iter())
                    .map(|e| (e.offset, (e.value, e.release)))
                    .collect()
            };
            let (old, new) = (side(from), side(to));
            let offsets: BTreeSet<u8> = old.keys().chain(new.keys()).copied().collect();
            for offset in offsets {
                let (o, n) = (old.get(&offset), new.get(&offset));
                if o.map(|v| v.0) == n.map(|v| v.0) {
                    continue;
                }
                if out.len() == limit {
                    more = true;
                    return Ok(false);
                }
                out.push(Revision {
                    key: key.clone(),
                    period: Period {
                        frequency: key.frequency,
                        ordinal: base + u32::from(offset),
                    },
                    old: o.map(|v| v.0),
                    new: n.map(|v| v.0),
                    release: n.or(o).map_or(0, |v| v.1),
                });
            }
        }
        Ok(true)
    })?;
    Ok((out, more))
}

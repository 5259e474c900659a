//! Releases: as-of reads and revisions against a model that keeps every write; checksums.

use std::collections::{BTreeMap, HashMap};

use super::tests_support::*;
use super::*;
use crate::model::{Flow, Kind, Release};
use crate::release::View;
use crate::revisions;
use proptest::prelude::*;

/// Four releases, two on the same day (ranked by the order first written).
fn release(i: usize) -> Release {
    let (label, date) = [
        ("census-2018-02", "2018-02-06"),
        ("ustr-2017", "2017-03-01"),
        ("census-2018-06", "2018-06-05"),
        ("ustr-facts", "2018-02-06"),
    ][i];
    Release {
        label: label.to_owned(),
        date: crate::model::release::parse_date(date).unwrap(),
        source: format!("source of {label}"),
    }
}

/// Every write kept: per (series, period), per release label ("" unnamed), the value.
#[derive(Default)]
struct Model {
    values: BTreeMap<(usize, u32), HashMap<String, f64>>,
    /// Labels in the order first written, with their dates.
    order: Vec<(String, time::Date)>,
}

impl Model {
    fn write(&mut self, release: Option<&Release>, series: usize, period: u32, value: f64) {
        let label = release.map_or(String::new(), |r| r.label.clone());
        if let Some(r) = release {
            if !self.order.iter().any(|(l, _)| *l == r.label) {
                self.order.push((r.label.clone(), r.date));
            }
        }
        self.values
            .entry((series, period))
            .or_default()
            .insert(label, value);
    }

    /// (date, order) of a label; the unnamed release below all.
    fn rank(&self, label: &str) -> (i32, u32) {
        match self.order.iter().position(|(l, _)| l == label) {
            Some(i) => (self.order[i].1.to_julian_day(), i as u32 + 1),
            None => (i32::MIN, 0),
        }
    }

    /// The value each period has at or below `cutoff` (None: latest; unnamed values only in
    /// the latest).
    fn read(&self, series: usize, cutoff: Option<(i32, u32)>) -> Vec<(u32, f64)> {
        self.values
            .range((series, 0)..=(series, u32::MAX))
            .filter_map(|(&(_, period), versions)| {
                versions
                    .iter()
                    .filter(|(l, _)| cutoff.is_none_or(|c| !l.is_empty() && self.rank(l) <= c))
                    .max_by_key(|(l, _)| self.rank(l))
                    .map(|(_, &v)| (period, v))
            })
            .collect()
    }
}

fn series(i: usize) -> SeriesKey {
    annual([Flow::Export, Flow::Import][i], Kind::Goods)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn as_of_reads_and_revisions_agree_with_a_model_that_keeps_every_write(
        writes in proptest::collection::vec(
            (proptest::option::of(0usize..4), 0usize..2, 2010u32..2016, 1u32..1000),
            1..40,
        ),
    ) {
        let store = Store::temporary().unwrap();
        let mut model = Model::default();
        for &(r, s, period, value) in &writes {
            let release = r.map(release);
            let batch = [points(&series(s), &[(period, f64::from(value))])];
            match &release {
                Some(rel) => store.write_release(&batch, rel).unwrap(),
                None => store.write(&batch).unwrap(),
            };
            model.write(release.as_ref(), s, period, f64::from(value));
        }
        // The views: latest, each release, each release's date and the day before it.
        let mut views = vec![(View::Latest, None)];
        for info in store.releases() {
            let (label, date) = (&info.release.label, info.release.date);
            views.push((View::AsOf(info.rank()), Some(model.rank(label))));
            views.push((View::AsOf(Rank::on(date)), Some((date.to_julian_day(), u32::MAX))));
            let before = date.previous_day().unwrap();
            views.push((View::AsOf(Rank::on(before)), Some((before.to_julian_day(), u32::MAX))));
        }
        for (view, cutoff) in &views {
            for s in 0..2 {
                let read: Vec<(u32, f64)> = match store.scan(&series(s), 0, u32::MAX, *view) {
                    Ok(points) => points.map(|p| p.map(|p| (p.period.ordinal, p.value))).collect::<Result<_>>().unwrap(),
                    Err(Error::NotFound(_)) => Vec::new(),
                    Err(e) => panic!("{e}"),
                };
                prop_assert_eq!(&read, &model.read(s, *cutoff), "series {} as {:?}", s, view);
            }
        }
        // Revisions between every two views are the model's differences.
        for (a, ca) in &views {
            for (b, cb) in &views {
                let (found, more) = revisions::revisions(&store, &Default::default(), *a, *b, usize::MAX, || false).unwrap();
                prop_assert!(!more);
                let mut expected = Vec::new();
                for s in 0..2 {
                    let (old, new): (BTreeMap<u32, f64>, BTreeMap<u32, f64>) =
                        (model.read(s, *ca).into_iter().collect(), model.read(s, *cb).into_iter().collect());
                    let periods: std::collections::BTreeSet<u32> = old.keys().chain(new.keys()).copied().collect();
                    for p in periods {
                        if old.get(&p) != new.get(&p) {
                            expected.push((series(s), p, old.get(&p).copied(), new.get(&p).copied()));
                        }
                    }
                }
                expected.sort_by_key(|x| (x.0.encode(), x.1));
                let found: Vec<_> = found.into_iter().map(|r| (r.key, r.period.ordinal, r.old, r.new)).collect();
                prop_assert_eq!(found, expected, "{:?} → {:?}", a, b);
            }
        }
        // A store with no named release has no history, and every point's count is right.
        let verified = store.verify(|| false).unwrap();
        prop_assert!(verified.corrupt.is_empty(), "{:?}", verified.corrupt);
        let periods: usize = (0..2).map(|s| model.read(s, None).len()).sum();
        prop_assert_eq!(verified.points, periods as u64);
    }
}

#[test]
fn a_release_keeps_its_date_and_survives_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let key = series(0);
    {
        let store = Store::open(tmp.path()).unwrap();
        store
            .write_release(&[points(&key, &[(2016, 1.0)])], &release(1))
            .unwrap();
        store
            .write_release(&[points(&key, &[(2016, 2.0)])], &release(0))
            .unwrap();
        let mut moved = release(0);
        moved.date = moved.date.next_day().unwrap();
        match store.write_release(&[points(&key, &[(2016, 3.0)])], &moved) {
            Err(Error::Invalid(v)) => assert_eq!(v[0].field, "release.date"),
            other => panic!("a release's date cannot change: {other:?}"),
        }
        store.flush().unwrap();
    }
    let store = reopen(tmp.path());
    let labels: Vec<String> = store
        .releases()
        .into_iter()
        .map(|r| r.release.label)
        .collect();
    assert_eq!(labels, ["ustr-2017", "census-2018-02"]);
    assert_eq!(store.read(&key, 2016, 2016).unwrap()[0].value, 2.0);
    let ustr = store.release_named("ustr-2017").unwrap();
    let old: Vec<f64> = store
        .scan(&key, 2016, 2016, View::AsOf(ustr.rank()))
        .unwrap()
        .map(|p| p.unwrap().value)
        .collect();
    assert_eq!(old, [1.0]);
    let (changes, _) = store.changes_since(1).unwrap();
    assert_eq!(
        changes[1].release.as_ref().map(|r| r.label.as_str()),
        Some("census-2018-02")
    );
}

#[test]
fn a_flipped_byte_is_an_error_naming_the_series_and_periods_and_verify_lists_it() {
    let store = Store::temporary().unwrap();
    let (good, bad) = (series(0), series(1));
    store
        .write(&[
            points(&good, &[(2015, 1.0), (2016, 2.0)]),
            points(&bad, &[(2015, 3.0), (2016, 4.0)]),
        ])
        .unwrap();
    // One block: the chunk is the tail of the series' entry.
    let entry = prefixed(INDEX, &bad.encode());
    let mut bytes = store
        .h()
        .unwrap()
        .tree
        .get(&entry)
        .unwrap()
        .unwrap()
        .to_vec();
    let last = bytes.len() - 7;
    bytes[last] ^= 0x40; // a byte of the chunk: its checksum no longer holds
    store.h().unwrap().tree.insert(&entry, bytes).unwrap();

    let err = store.read(&bad, 0, u32::MAX).unwrap_err().to_string();
    assert!(err.contains(&bad.to_string()), "{err}");
    assert!(
        err.contains("periods 1920 to 2047") && err.contains("checksum"),
        "{err}"
    );
    assert_eq!(store.read(&good, 0, u32::MAX).unwrap().len(), 2);
    let verified = store.verify(|| false).unwrap();
    assert_eq!(verified.corrupt.len(), 1, "{:?}", verified.corrupt);
    assert!(verified.corrupt[0].contains(&bad.to_string()));
    assert_eq!(
        (verified.series, verified.chunks, verified.points),
        (2, 2, 2)
    );
}

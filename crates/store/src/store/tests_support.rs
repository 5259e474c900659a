//! Helpers of the store's tests.

use super::*;
use crate::model::{Country, Flow, Frequency, Kind, Point, Product};

pub(super) fn key(flow: Flow, kind: Kind, frequency: Frequency) -> SeriesKey {
    SeriesKey {
        reporter: Country::parse("USA").unwrap(),
        partner: Country::parse("KOR").unwrap(),
        flow,
        kind,
        product: Product::total(),
        frequency,
        measure: Default::default(),
    }
}

/// Opens a store just closed. sled's background flusher can hold the directory's lock for a
/// moment after the last handle is dropped, so a lock error is retried (for up to 10 s).
pub(super) fn reopen(dir: &std::path::Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match Store::open(dir) {
            Ok(store) => return store,
            Err(e) if e.to_string().contains("lock") && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("reopen: {e}"),
        }
    }
}

pub(super) fn annual(flow: Flow, kind: Kind) -> SeriesKey {
    key(flow, kind, Frequency::Annual)
}

pub(super) fn points(key: &SeriesKey, values: &[(u32, f64)]) -> SeriesPoints {
    SeriesPoints {
        key: key.clone(),
        points: values
            .iter()
            .map(|&(ordinal, value)| Point {
                ordinal,
                value,
                source: "test".into(),
            })
            .collect(),
    }
}

pub(super) fn values(store: &Store, key: &SeriesKey, from: u32, to: u32) -> Vec<(u32, f64)> {
    store
        .read(key, from, to)
        .unwrap()
        .into_iter()
        .map(|p| (p.period.ordinal, p.value))
        .collect()
}

use super::*;
use crate::analysis::{self, BalanceQuery, ChangeTarget};
use crate::model::{Country, Flow, Frequency, Kind, Product};
use proptest::prelude::*;

use tests_support::*;

#[test]
fn upsert_counts_inserts_and_updates_and_new_value_wins() {
    let store = Store::temporary().unwrap();
    let k = annual(Flow::Export, Kind::Goods);
    let s = store
        .write(&[points(&k, &[(2015, 1.0), (2016, 2.0)])])
        .unwrap();
    assert_eq!((s.inserted, s.updated), (2, 0));
    let s = store
        .write(&[points(&k, &[(2016, 5.0), (2017, 3.0)])])
        .unwrap();
    assert_eq!((s.inserted, s.updated), (1, 1));
    assert_eq!(
        values(&store, &k, 0, u32::MAX),
        vec![(2015, 1.0), (2016, 5.0), (2017, 3.0)]
    );
    let info = store.info(&k).unwrap();
    assert_eq!(
        (info.point_count, info.first.ordinal, info.last.ordinal),
        (3, 2015, 2017)
    );
}

#[test]
fn range_edges_are_inclusive_and_cross_chunk_boundaries() {
    let store = Store::temporary().unwrap();
    let k = key(Flow::Import, Kind::Goods, Frequency::Monthly);
    // 1000 consecutive months span 8+ chunks of 128.
    let base = 2000 * 12;
    let all: Vec<(u32, f64)> = (0..1000).map(|i| (base + i, f64::from(i))).collect();
    store.write(&[points(&k, &all)]).unwrap();
    assert_eq!(
        values(&store, &k, base + 127, base + 128),
        vec![(base + 127, 127.0), (base + 128, 128.0)]
    );
    assert_eq!(
        values(&store, &k, base + 5, base + 5),
        vec![(base + 5, 5.0)]
    );
    assert_eq!(values(&store, &k, 0, u32::MAX).len(), 1000);
    assert!(values(&store, &k, base + 2000, u32::MAX).is_empty());
    assert!(values(&store, &k, base + 10, base + 9).is_empty());
}

#[test]
fn reading_an_unknown_series_is_not_found() {
    let store = Store::temporary().unwrap();
    let err = store
        .read(&annual(Flow::Export, Kind::Goods), 0, u32::MAX)
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}

#[test]
fn delete_removes_series_points_and_catalog_entry() {
    let store = Store::temporary().unwrap();
    let k = annual(Flow::Export, Kind::Goods);
    let other = annual(Flow::Import, Kind::Goods);
    store
        .write(&[
            points(&k, &[(2015, 1.0), (2016, 2.0)]),
            points(&other, &[(2016, 9.0)]),
        ])
        .unwrap();
    assert_eq!(store.delete(&k).unwrap(), 2);
    assert!(matches!(
        store.read(&k, 0, u32::MAX),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(store.delete(&k), Err(Error::NotFound(_))));
    assert_eq!(values(&store, &other, 0, u32::MAX), vec![(2016, 9.0)]);
    let (listed, _) = store.list(&SeriesFilter::default(), None, 10).unwrap();
    assert_eq!(listed.len(), 1);
    // Writing again after delete starts a fresh series.
    store.write(&[points(&k, &[(2020, 4.0)])]).unwrap();
    assert_eq!(values(&store, &k, 0, u32::MAX), vec![(2020, 4.0)]);
    assert_eq!(store.info(&k).unwrap().point_count, 1);
}

#[test]
fn list_filters_and_paginates_in_key_order() {
    let store = Store::temporary().unwrap();
    let mut keys = Vec::new();
    for flow in [Flow::Export, Flow::Import] {
        for kind in [Kind::Goods, Kind::Services] {
            let k = annual(flow, kind);
            store.write(&[points(&k, &[(2016, 1.0)])]).unwrap();
            keys.push(k);
        }
    }
    let goods = SeriesFilter {
        kind: Some(Kind::Goods),
        ..Default::default()
    };
    let (page1, next) = store.list(&goods, None, 1).unwrap();
    assert_eq!(page1.len(), 1);
    let (page2, next2) = store.list(&goods, next.as_deref(), 1).unwrap();
    assert_eq!(page2.len(), 1);
    assert_eq!(next2, None);
    assert_eq!(page1[0].key.flow, Flow::Export);
    assert_eq!(page2[0].key.flow, Flow::Import);
    let (all, none) = store.list(&SeriesFilter::default(), None, 100).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(none, None);
    let nobody = SeriesFilter {
        reporter: Some(Country::parse("KOR").unwrap()),
        ..Default::default()
    };
    assert!(store.list(&nobody, None, 10).unwrap().0.is_empty());
}

#[test]
fn reopen_after_close_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(Flow::Export, Kind::Services, Frequency::Quarterly);
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .write(&[points(&k, &[(8064, 1.5), (8065, 2.5)])])
            .unwrap();
        store.flush().unwrap();
    }
    let store = reopen(dir.path());
    assert!(!store.is_empty().unwrap());
    assert_eq!(
        values(&store, &k, 0, u32::MAX),
        vec![(8064, 1.5), (8065, 2.5)]
    );
    assert_eq!(store.info(&k).unwrap().point_count, 2);
}

#[test]
fn balance_flags_gaps_instead_of_treating_them_as_zero() {
    let store = Store::temporary().unwrap();
    store
        .write(&[
            points(
                &annual(Flow::Export, Kind::Goods),
                &[(2011, 43.5e9), (2016, 42.3e9)],
            ),
            points(&annual(Flow::Import, Kind::Goods), &[(2016, 69.9e9)]),
            points(&annual(Flow::Export, Kind::Services), &[(2016, 21.6e9)]),
            points(&annual(Flow::Import, Kind::Services), &[(2016, 10.9e9)]),
        ])
        .unwrap();
    let q = BalanceQuery {
        reporter: Country::parse("USA").unwrap(),
        partner: Country::parse("KOR").unwrap(),
        product: Product::total(),
        frequency: Frequency::Annual,
        view: Default::default(),
    };
    let rows = analysis::trade_balance(&store, &q, 0, u32::MAX).unwrap();
    assert_eq!(rows.len(), 2);
    let r2011 = &rows[0];
    assert_eq!(r2011.goods.exports, Some(43.5e9));
    assert_eq!(r2011.goods.balance, None);
    assert!(r2011.goods.missing.contains(&"GOODS IMPORT".to_owned()));
    assert!(!r2011.complete());
    let r2016 = &rows[1];
    assert!(r2016.complete());
    assert!((r2016.goods.balance.unwrap() + 27.6e9).abs() < 1.0);
    assert!((r2016.services.balance.unwrap() - 10.7e9).abs() < 1.0);
    assert!((r2016.total.balance.unwrap() + 16.9e9).abs() < 1.0);

    let missing = analysis::change(
        &store,
        &ChangeTarget::Balance(q.clone(), Some(Kind::Goods)),
        Period {
            frequency: Frequency::Annual,
            ordinal: 2011,
        },
        Period {
            frequency: Frequency::Annual,
            ordinal: 2016,
        },
        View::Latest,
    )
    .unwrap_err();
    assert!(missing.to_string().contains("GOODS IMPORT"), "{missing}");
}

proptest! {
    #[test]
    fn key_encoding_order_is_period_order(a in 0u32..5_000_000, b in 0u32..5_000_000, code in "[0-9]{2}") {
        let key = SeriesKey { product: Product::parse(&format!("HS:{code}")).unwrap(), ..annual(Flow::Export, Kind::Goods) };
        let encoded = key.encode();
        let (ka, kb) = (chunk_key(&encoded, a / BLOCK), chunk_key(&encoded, b / BLOCK));
        prop_assert_eq!(ka.cmp(&kb), (a / BLOCK).cmp(&(b / BLOCK)));
        // A longer code's chunks are never inside this series' chunk range.
        let longer = SeriesKey { product: Product::parse(&format!("HS:{code}00")).unwrap(), ..key };
        let prefix = chunk_prefix(&encoded);
        prop_assert!(!chunk_key(&longer.encode(), a / BLOCK).starts_with(&prefix));
    }

    #[test]
    fn period_text_round_trips_and_orders(year in 1000u32..=9998, sub in 0u32..12) {
        for (f, n) in [(Frequency::Annual, 1), (Frequency::Quarterly, 4), (Frequency::Monthly, 12)] {
            let p = Period { frequency: f, ordinal: year * n + sub % n };
            let text = p.to_string();
            prop_assert_eq!(Period::parse(&text, f).unwrap(), p);
            let next = Period { frequency: f, ordinal: p.ordinal + 1 };
            // String order of the canonical text agrees with ordinal order.
            prop_assert!(text < next.to_string());
        }
    }

    #[test]
    fn store_agrees_with_a_btreemap_model(
        ops in proptest::collection::vec(proptest::collection::vec((0u32..600, 0.0f64..1e12), 1..40), 1..8),
        (lo, len) in (0u32..700, 0u32..700),
    ) {
        let store = Store::temporary().unwrap();
        let k = key(Flow::Export, Kind::Goods, Frequency::Monthly);
        let base = 2000 * 12;
        let mut model = BTreeMap::new();
        for batch in &ops {
            let mut seen = BTreeMap::new();
            for (o, v) in batch { seen.insert(base + o, *v); }
            let pts: Vec<(u32, f64)> = seen.into_iter().collect();
            let before = model.len() as u64;
            let s = store.write(&[points(&k, &pts)]).unwrap();
            for (o, v) in &pts { model.insert(*o, *v); }
            prop_assert_eq!(s.inserted, model.len() as u64 - before);
            prop_assert_eq!(s.inserted + s.updated, pts.len() as u64);
        }
        // A sub-range: short ones are read by point lookups, long ones by iteration.
        let (from, to) = (base + lo, base + lo + len);
        let got = values(&store, &k, from, to);
        let want: Vec<(u32, f64)> = model.range(from..=to).map(|(o, v)| (*o, *v)).collect();
        prop_assert_eq!(got, want);
        let got = values(&store, &k, 0, u32::MAX);
        let want: Vec<(u32, f64)> = model.into_iter().collect();
        prop_assert_eq!(store.info(&k).unwrap().point_count, want.len() as u64);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn series_key_encoding_round_trips(r in 0..250usize, p in 0..250usize, code in "[0-9]{2}") {
        let countries = crate::model::reference::countries();
        let k = SeriesKey {
            reporter: countries[r % countries.len()].code,
            partner: countries[p % countries.len()].code,
            flow: Flow::Import,
            kind: Kind::Goods,
            product: Product::parse(&format!("HS:{code}")).unwrap(),
            frequency: Frequency::Quarterly,
            measure: Default::default(),
        };
        prop_assert_eq!(SeriesKey::decode(&k.encode()), Some(k));
    }
}

#[test]
fn writes_at_a_log_sequence_apply_once_and_remember_the_last_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(Flow::Export, Kind::Goods, Frequency::Monthly);
    {
        let store = Store::open(dir.path()).unwrap();
        let mut told = Vec::new();
        let s = store
            .write_at(&[points(&k, &[(24000, 1.0)])], None, 5, |q| told.push(q))
            .unwrap();
        assert_eq!((s.inserted, s.sequence, store.sequence()), (1, 5, 5));
        // The same message again (a crash between applying and acknowledging): nothing.
        let again = store
            .write_at(&[points(&k, &[(24000, 9.0)])], None, 5, |q| told.push(q))
            .unwrap();
        assert_eq!((again.inserted, again.updated, again.sequence), (0, 0, 0));
        assert_eq!(values(&store, &k, 0, u32::MAX), vec![(24000, 1.0)]);
        // A message without points still counts as applied.
        assert_eq!(
            store
                .write_at(&[], None, 6, |q| told.push(q))
                .unwrap()
                .sequence,
            6
        );
        assert_eq!(told, vec![5, 6]);
        // Deletes too: of a series there, and of one that is not.
        let other = key(Flow::Import, Kind::Goods, Frequency::Monthly);
        assert_eq!(store.delete_at(&other, 7).unwrap(), 0);
        assert_eq!(store.delete_at(&k, 8).unwrap(), 1);
        assert_eq!(store.delete_at(&k, 8).unwrap(), 0);
        store.flush().unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(store.sequence(), 8);
    assert!(store.is_empty().unwrap());
    let s = store
        .write_at(&[points(&k, &[(24000, 2.0)])], None, 9, |_| {})
        .unwrap();
    assert_eq!(s.sequence, 9);
}

#[test]
fn writes_get_sequences_that_survive_reopen_and_changes_list_what_they_touched() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(Flow::Export, Kind::Goods, Frequency::Monthly);
    let other = key(Flow::Import, Kind::Goods, Frequency::Monthly);
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.sequence(), 0);
        let a = store
            .write(&[points(&k, &[(24000, 1.0), (24005, 2.0)])])
            .unwrap();
        let b = store
            .write(&[points(&other, &[(24010, 3.0)]), points(&k, &[(24001, 4.0)])])
            .unwrap();
        assert_eq!((a.sequence, b.sequence), (1, 2));
        // A write of nothing gets no sequence.
        assert_eq!(store.write(&[]).unwrap().sequence, 0);
        store.flush().unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(store.sequence(), 2);
    assert_eq!(
        store
            .write(&[points(&k, &[(24002, 5.0)])])
            .unwrap()
            .sequence,
        3
    );
    let (changes, current) = store.changes_since(2).unwrap();
    assert_eq!(current, 3);
    assert_eq!(
        changes.iter().map(|c| c.sequence).collect::<Vec<_>>(),
        vec![2, 3]
    );
    let second: Vec<(u32, u32)> = changes[0]
        .series
        .iter()
        .map(|(_, a, b)| (a.ordinal, b.ordinal))
        .collect();
    assert!(
        second.contains(&(24010, 24010)) && second.contains(&(24001, 24001)),
        "{second:?}"
    );
    // Deleted series drop out of the changes; a future position gives nothing.
    store.delete(&other).unwrap();
    let (changes, _) = store.changes_since(2).unwrap();
    assert_eq!(changes[0].series.len(), 1);
    assert!(store.changes_since(10).unwrap().0.is_empty());
}

#[test]
fn user_groups_are_kept_by_name_and_replaced() {
    use crate::model::reference::{GroupInfo, Membership};
    let store = Store::temporary().unwrap();
    let code = |s: &str| Country::parse(s).unwrap();
    let mut group = GroupInfo {
        name: "MY_PARTNERS".into(),
        description: "Korea since the FTA, and Japan".into(),
        members: vec![
            Membership {
                code: code("KOR"),
                from: Some(2012),
                until: None,
            },
            Membership {
                code: code("JPN"),
                from: None,
                until: Some(2030),
            },
        ],
        user_defined: true,
    };
    store.define_group(&group).unwrap();
    assert_eq!(store.user_groups().unwrap(), vec![group.clone()]);
    group.members.pop();
    store.define_group(&group).unwrap();
    assert_eq!(store.user_groups().unwrap(), vec![group]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A partner without a reporter is found by skipping from reporter to reporter: the pages
    /// hold exactly what a filter over every series holds, in key order.
    #[test]
    fn a_partner_alone_lists_what_a_full_scan_finds(
        pairs in proptest::collection::btree_set((0..6usize, 0..6usize, any::<bool>()), 1..30),
        partner in 0..6usize,
        page in 1..5usize,
    ) {
        const CODES: [&str; 6] = ["CHN", "DEU", "JPN", "KOR", "MEX", "USA"];
        let store = Store::temporary().unwrap();
        for &(r, p, export) in &pairs {
            let key = SeriesKey {
                reporter: Country::parse(CODES[r]).unwrap(),
                partner: Country::parse(CODES[p]).unwrap(),
                ..annual(if export { Flow::Export } else { Flow::Import }, Kind::Goods)
            };
            store.write(&[points(&key, &[(2016, 1.0)])]).unwrap();
        }
        let filter = SeriesFilter {
            partner: Some(Country::parse(CODES[partner]).unwrap()),
            ..Default::default()
        };
        let (all, _) = store.list(&SeriesFilter::default(), None, 1000).unwrap();
        let expected: Vec<SeriesKey> = all.into_iter().map(|i| i.key).filter(|k| filter.matches(k)).collect();
        let (mut got, mut after) = (Vec::new(), None::<Vec<u8>>);
        loop {
            let (infos, next) = store.list(&filter, after.as_deref(), page).unwrap();
            got.extend(infos.into_iter().map(|i| i.key));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn a_store_keeps_the_compression_it_was_created_with() {
    for created in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let key = annual(Flow::Export, Kind::Goods);
        {
            let options = StoreOptions {
                compression: created,
                ..Default::default()
            };
            let store = Store::open_with(tmp.path(), options).unwrap();
            store.write(&[points(&key, &[(2016, 1.0)])]).unwrap();
            store.flush().unwrap();
        }
        // Opened with the other setting: sled refuses a mismatch, so the store's own is used.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let store = loop {
            let options = StoreOptions {
                compression: !created,
                ..Default::default()
            };
            match Store::open_with(tmp.path(), options) {
                Ok(store) => break store,
                Err(e)
                    if e.to_string().contains("lock") && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => panic!("created compressed {created}: {e}"),
            }
        };
        assert_eq!(values(&store, &key, 0, u32::MAX), [(2016, 1.0)]);
    }
}

#[test]
fn a_reopened_store_holds_what_its_files_hold_and_says_which_writes_are_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_with(tmp.path(), StoreOptions::default()).unwrap();
    let k = annual(Flow::Export, Kind::Goods);
    let a = store.write(&[points(&k, &[(2016, 1.0)])]).unwrap();
    assert_eq!(store.settle(&[a]).0, 1);
    let release = Release {
        label: "late".into(),
        date: crate::model::release::parse_date("2017-01-01").unwrap(),
        source: "a test".into(),
    };
    let b = store
        .write_release(&[points(&k, &[(2016, 2.0)])], &release)
        .unwrap();
    assert_eq!(store.generation(), 0);
    // A read in progress holds the old handles for a while: the reopening waits for it.
    let held = store.scan(&k, 0, u32::MAX, View::Latest).unwrap();
    let reader = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        held.count()
    });
    let kept = store.reopen().unwrap();
    assert_eq!(reader.join().unwrap(), 1);
    assert_eq!(store.generation(), 1);
    assert_eq!(store.sequence(), kept);
    // `b` was never flushed: sled's own flusher may have written it or not. Either way the
    // store's answer and what it reads agree.
    let durable = store.settle(&[a, b]).0;
    let read = values(&store, &k, 0, u32::MAX);
    match durable {
        2 => {
            assert_eq!(read, vec![(2016, 2.0)]);
            assert!(store.release_named("late").is_ok());
        }
        1 => {
            assert_eq!(read, vec![(2016, 1.0)]);
            assert!(
                store.release_named("late").is_err(),
                "a lost write's release is gone"
            );
        }
        n => panic!("{n} of 2 writes durable"),
    }
    assert_eq!(store.decided(0, a.sequence), Some(true));
    assert_eq!(
        store.decided(1, a.sequence),
        None,
        "the current opening: flush to know"
    );
    // Writes go on, numbered after what the files hold.
    let c = store.write(&[points(&k, &[(2017, 3.0)])]).unwrap();
    assert_eq!((c.sequence, c.generation), (kept + 1, 1));
    let (durable, upto) = store.settle(&[c]);
    assert_eq!((durable, upto.unwrap()), (1, c.sequence));
}

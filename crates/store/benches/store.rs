//! Criterion benches of the store without gRPC: a 100,000-point batch write (not flushed, so
//! the figure is the chunk work, not the disk), a 100,000-point range read three ways (points,
//! columns from the chunks in place, summed to annual), a chunk's encode/decode, a 20-year
//! goods-and-services balance, and reads of series with and without revisions (latest and as
//! of a release). `cargo bench -p tradepact-store`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tradepact_store::aggregate::{self, ReadPlan};
use tradepact_store::analysis::{self, BalanceQuery};
use tradepact_store::chunk::{Chunk, ChunkView, BLOCK};
use tradepact_store::columns;
use tradepact_store::{
    Country, Flow, Frequency, Kind, Point, Product, SeriesKey, SeriesPoints, Store,
};

/// Points of the range-read series (monthly, from year 1000 on).
const RANGE_POINTS: u32 = 100_000;
const FIRST_MONTH: u32 = 1000 * 12;

fn key(flow: Flow, kind: Kind, frequency: Frequency) -> SeriesKey {
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

fn monthly_series(points: u32) -> SeriesPoints {
    let source: Arc<str> = "bench".into();
    SeriesPoints {
        key: key(Flow::Import, Kind::Goods, Frequency::Monthly),
        points: (0..points)
            .map(|i| Point {
                ordinal: FIRST_MONTH + i,
                value: f64::from(i) * 1.5e6,
                source: source.clone(),
            })
            .collect(),
    }
}

fn write(c: &mut Criterion) {
    let batch = vec![monthly_series(RANGE_POINTS)];
    let mut group = c.benchmark_group("write");
    group.throughput(Throughput::Elements(u64::from(RANGE_POINTS)));
    group.sample_size(20);
    group.bench_function("100k_points_new_series", |b| {
        b.iter_batched(
            || Store::temporary().unwrap(),
            |store| store.write(&batch).unwrap(),
            BatchSize::PerIteration,
        );
    });
    let store = Store::temporary().unwrap();
    store.write(&batch).unwrap();
    group.bench_function("100k_points_upsert", |b| {
        b.iter(|| store.write(&batch).unwrap());
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let store = Store::temporary().unwrap();
    let series = monthly_series(RANGE_POINTS);
    let key = series.key.clone();
    store.write(&[series]).unwrap();
    let (from, to) = (FIRST_MONTH, FIRST_MONTH + RANGE_POINTS - 1);
    let as_stored = ReadPlan::new(Frequency::Monthly, None).unwrap();
    let annual = ReadPlan::new(Frequency::Monthly, Some(Frequency::Annual)).unwrap();

    let mut group = c.benchmark_group("read_100k");
    group.throughput(Throughput::Elements(u64::from(RANGE_POINTS)));
    group.bench_function("points", |b| {
        b.iter(|| black_box(store.read(&key, from, to).unwrap().len()));
    });
    group.bench_function("columns", |b| {
        b.iter(|| {
            let mut n = 0;
            for block in columns::columns(&store, &key, as_stored, from, to, 8192).unwrap() {
                n += block.unwrap().len();
            }
            black_box(n)
        });
    });
    group.bench_function("summed_to_annual", |b| {
        b.iter(|| {
            let (afrom, ato) = (FIRST_MONTH / 12, (FIRST_MONTH + RANGE_POINTS - 1) / 12);
            let values = aggregate::values(&store, &key, annual, afrom, ato).unwrap();
            black_box(values.map(|v| v.unwrap().value).sum::<f64>())
        });
    });
    group.finish();
}

fn chunk(c: &mut Criterion) {
    let source: Arc<str> = "bench".into();
    let mut full = Chunk::default();
    for offset in 0..BLOCK {
        full.upsert(offset as u8, f64::from(offset) * 1.5e6, &source);
    }
    let bytes = full.encode();
    let mut group = c.benchmark_group("chunk_of_128");
    group.bench_function("encode", |b| b.iter(|| black_box(full.encode())));
    group.bench_function("decode", |b| {
        b.iter(|| black_box(Chunk::decode(&bytes).unwrap()))
    });
    group.bench_function("view_sum", |b| {
        b.iter(|| {
            let view = ChunkView::parse(&bytes).unwrap();
            black_box((0..view.len()).map(|i| view.value(i)).sum::<f64>())
        });
    });
    group.finish();
}

fn balance(c: &mut Criterion) {
    let store = Store::temporary().unwrap();
    let source: Arc<str> = "bench".into();
    let years = 1998..2018u32;
    let batch: Vec<SeriesPoints> = [
        (Kind::Goods, Flow::Export, 40e9),
        (Kind::Goods, Flow::Import, 65e9),
        (Kind::Services, Flow::Export, 20e9),
        (Kind::Services, Flow::Import, 9e9),
    ]
    .into_iter()
    .map(|(kind, flow, base)| SeriesPoints {
        key: key(flow, kind, Frequency::Annual),
        points: years
            .clone()
            .map(|y| Point {
                ordinal: y,
                value: base + f64::from(y - 1998) * 1e9,
                source: source.clone(),
            })
            .collect(),
    })
    .collect();
    store.write(&batch).unwrap();
    let query = BalanceQuery {
        reporter: Country::parse("USA").unwrap(),
        partner: Country::parse("KOR").unwrap(),
        product: Product::total(),
        frequency: Frequency::Annual,
        view: Default::default(),
    };
    c.bench_function("trade_balance_20_years", |b| {
        b.iter(|| black_box(analysis::trade_balance(&store, &query, 1998, 2017).unwrap()));
    });
}

/// A 25-year annual series (the shape of trade data) read whole: latest with no release, and,
/// after three releases revised every year, latest and as of the middle release; the same for
/// the 100,000-month series. What history costs a read.
fn vintages(c: &mut Criterion) {
    let annual = key(Flow::Export, Kind::Goods, Frequency::Annual);
    let years = |bump: f64| SeriesPoints {
        key: annual.clone(),
        points: (1995..2020u32)
            .map(|y| Point {
                ordinal: y,
                value: f64::from(y) * 1e6 + bump,
                source: "bench".into(),
            })
            .collect(),
    };
    let release = |i: u32| tradepact_store::Release {
        label: format!("r{i}"),
        date: time::Date::from_calendar_date(2018, time::Month::January, 1 + i as u8).unwrap(),
        source: String::new(),
    };
    let plain = Store::temporary().unwrap();
    plain.write(&[years(0.0)]).unwrap();
    let revised = Store::temporary().unwrap();
    let long = monthly_series(RANGE_POINTS);
    let long_key = long.key.clone();
    for i in 0..3 {
        revised
            .write_release(&[years(f64::from(i))], &release(i))
            .unwrap();
        let mut long = long.clone();
        long.points.iter_mut().for_each(|p| p.value += f64::from(i));
        revised.write_release(&[long], &release(i)).unwrap();
    }
    let middle = tradepact_store::View::AsOf(revised.release_named("r1").unwrap().rank());
    let count =
        |store: &Store, key: &SeriesKey, view| store.scan(key, 0, u32::MAX, view).unwrap().count();
    let latest = tradepact_store::View::Latest;
    let mut group = c.benchmark_group("vintages");
    group.bench_function("annual_25_latest_no_releases", |b| {
        b.iter(|| black_box(count(&plain, &annual, latest)))
    });
    group.bench_function("annual_25_latest_3_releases", |b| {
        b.iter(|| black_box(count(&revised, &annual, latest)))
    });
    group.bench_function("annual_25_as_of_3_releases", |b| {
        b.iter(|| black_box(count(&revised, &annual, middle)))
    });
    group.throughput(Throughput::Elements(u64::from(RANGE_POINTS)));
    group.bench_function("monthly_100k_latest_3_releases", |b| {
        b.iter(|| black_box(count(&revised, &long_key, latest)))
    });
    group.bench_function("monthly_100k_as_of_3_releases", |b| {
        b.iter(|| black_box(count(&revised, &long_key, middle)))
    });
    group.finish();
}

criterion_group!(benches, write, read, chunk, balance, vintages);
criterion_main!(benches);

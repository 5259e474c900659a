//! Criterion benches of the store without gRPC: a 100,000-point batch write (not flushed, so
//! the figure is the chunk work, not the disk), a 100,000-point range read three ways (points,
//! columns from the chunks in place, summed to annual), a chunk's encode/decode, and a
//! 20-year goods-and-services balance. `cargo bench -p tradepact-store`.

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

criterion_group!(benches, write, read, chunk, balance);
criterion_main!(benches);

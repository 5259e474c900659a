//! Proto ⇄ domain conversions of the data service. Every request field is validated here;
//! violations carry the field's path in the request (e.g. `series[0].points[3].period`).
//! Model values as messages (`pb::SeriesKey::from(&key)`) are in `tradepact-proto`, for
//! every client.

use std::sync::Arc;

use tradepact_proto::data_v1 as pb;
use tradepact_store::aggregate::{ReadPlan, Value};
use tradepact_store::analysis::{BalanceQuery, BalanceRow, Change, ChangeTarget, Figures};
use tradepact_store::columns::Columns;
use tradepact_store::model::release;
use tradepact_store::model::{check_source, check_value_of};
use tradepact_store::model::{Measure, Unit};
use tradepact_store::revisions::Revision;
use tradepact_store::{
    AsOf, Country, Flow, Frequency, Kind, Period, Point, Product, Release, SeriesFilter,
    SeriesInfo, SeriesKey, SeriesPoints, Violations,
};

use crate::app::Batch;

/// Most violations reported for one request; the rest are summarised.
pub(crate) const MAX_VIOLATIONS: usize = 50;

pub(crate) fn flow(v: i32, required: bool) -> Result<Option<Flow>, String> {
    match pb::Flow::try_from(v) {
        Ok(pb::Flow::Export) => Ok(Some(Flow::Export)),
        Ok(pb::Flow::Import) => Ok(Some(Flow::Import)),
        Ok(pb::Flow::ReExport) => Ok(Some(Flow::ReExport)),
        Ok(pb::Flow::ReImport) => Ok(Some(Flow::ReImport)),
        Ok(pb::Flow::Unspecified) if !required => Ok(None),
        Ok(pb::Flow::Unspecified) => Err(
            "is required: FLOW_EXPORT, FLOW_IMPORT, FLOW_RE_EXPORT or FLOW_RE_IMPORT".to_owned(),
        ),
        Err(_) => Err(format!("unknown flow value {v}")),
    }
}

pub(crate) fn kind(v: i32, required: bool) -> Result<Option<Kind>, String> {
    match pb::TradeKind::try_from(v) {
        Ok(pb::TradeKind::Goods) => Ok(Some(Kind::Goods)),
        Ok(pb::TradeKind::Services) => Ok(Some(Kind::Services)),
        Ok(pb::TradeKind::GoodsAndServices) => Ok(Some(Kind::GoodsAndServices)),
        Ok(pb::TradeKind::Unspecified) if !required => Ok(None),
        Ok(pb::TradeKind::Unspecified) => {
            Err("is required: TRADE_KIND_GOODS or TRADE_KIND_SERVICES".to_owned())
        }
        Err(_) => Err(format!("unknown trade kind value {v}")),
    }
}

pub(crate) fn frequency(v: i32, required: bool) -> Result<Option<Frequency>, String> {
    match pb::Frequency::try_from(v) {
        Ok(pb::Frequency::Annual) => Ok(Some(Frequency::Annual)),
        Ok(pb::Frequency::Quarterly) => Ok(Some(Frequency::Quarterly)),
        Ok(pb::Frequency::Monthly) => Ok(Some(Frequency::Monthly)),
        Ok(pb::Frequency::Unspecified) if !required => Ok(None),
        Ok(pb::Frequency::Unspecified) => Err(
            "is required: FREQUENCY_ANNUAL, FREQUENCY_QUARTERLY or FREQUENCY_MONTHLY".to_owned(),
        ),
        Err(_) => Err(format!("unknown frequency value {v}")),
    }
}

/// The measure of a key (`any`: `MEASURE_ANY` allowed, as in filters: `None`) at `field`
/// (`measure` and `quantity_unit` under it).
pub(crate) fn measure(
    value: i32,
    unit: &str,
    any: bool,
    field: &str,
    v: &mut Violations,
) -> Option<Option<Measure>> {
    let at = |name: &str| {
        if field.is_empty() {
            name.to_owned()
        } else {
            format!("{field}.{name}")
        }
    };
    let kind = match pb::Measure::try_from(value) {
        Ok(m) => m,
        Err(_) => {
            v.add(at("measure"), format!("unknown measure value {value}"));
            return None;
        }
    };
    if kind != pb::Measure::Quantity && !unit.is_empty() {
        v.add(at("quantity_unit"), "is only set with MEASURE_QUANTITY");
        return None;
    }
    Some(Some(match kind {
        pb::Measure::Unspecified => Measure::ValueUsd,
        pb::Measure::CifUsd => Measure::CifUsd,
        pb::Measure::FobUsd => Measure::FobUsd,
        pb::Measure::NetWeightKg => Measure::NetWeightKg,
        pb::Measure::Quantity => {
            let unit = v.check(at("quantity_unit"), Unit::parse(unit))?;
            Measure::Quantity(unit)
        }
        pb::Measure::TariffRatePercent => Measure::TariffRatePercent,
        pb::Measure::ReportedBalanceUsd => Measure::ReportedBalanceUsd,
        pb::Measure::Any if any => return Some(None),
        pb::Measure::Any => {
            v.add(
                at("measure"),
                "MEASURE_ANY is for filters; a series has one measure",
            );
            return None;
        }
    }))
}

/// Validates a required series key at `field`.
pub(crate) fn series_key(
    key: Option<&pb::SeriesKey>,
    field: &str,
    v: &mut Violations,
) -> Option<SeriesKey> {
    let Some(key) = key else {
        v.add(field, "is required");
        return None;
    };
    let reporter = v.check(format!("{field}.reporter"), Country::parse(&key.reporter));
    let partner = v.check(format!("{field}.partner"), Country::parse(&key.partner));
    let flow = v.check(format!("{field}.flow"), flow(key.flow, true));
    let kind = v.check(format!("{field}.kind"), kind(key.kind, true));
    let product = v.check(format!("{field}.product"), Product::parse(&key.product));
    let frequency = v.check(format!("{field}.frequency"), frequency(key.frequency, true));
    let measure = measure(key.measure, &key.quantity_unit, false, field, v);
    if kind == Some(Some(Kind::GoodsAndServices))
        && measure != Some(Some(Measure::ReportedBalanceUsd))
    {
        v.add(
            format!("{field}.kind"),
            "TRADE_KIND_GOODS_AND_SERVICES is only for a reported balance (MEASURE_REPORTED_BALANCE_USD): the total of goods and services is computed",
        );
        return None;
    }
    Some(SeriesKey {
        reporter: reporter?,
        partner: partner?,
        flow: flow??,
        kind: kind??,
        product: product?,
        frequency: frequency??,
        measure: measure??,
    })
}

/// Validates a write batch: keys, periods matching each series' frequency, values, sources,
/// and no period twice in one `SeriesPoints`. Field paths are only built for violations:
/// this runs for every point of a bulk ingest.
pub(crate) fn write_batch(series: &[pb::SeriesPoints], v: &mut Violations) -> Vec<SeriesPoints> {
    if series.iter().all(|s| s.points.is_empty()) {
        v.add("series", "must hold at least one point");
    }
    let mut out = Vec::with_capacity(series.len());
    for (i, s) in series.iter().enumerate() {
        if v.0.len() >= MAX_VIOLATIONS {
            break;
        }
        let key = series_key(s.key.as_ref(), &format!("series[{i}].key"), v);
        v.check_lazy(|| format!("series[{i}].source"), check_source(&s.source));
        let Some(key) = key else { continue };
        let batch_source: Arc<str> = Arc::from(s.source.as_str());
        let mut last_source = batch_source.clone();
        let mut points = Vec::with_capacity(s.points.len());
        let mut request_index = Vec::with_capacity(s.points.len());
        for (j, p) in s.points.iter().enumerate() {
            if v.0.len() >= MAX_VIOLATIONS {
                break;
            }
            let field = |name: &str| format!("series[{i}].points[{j}].{name}");
            let period = v.check_lazy(|| field("period"), Period::parse(&p.period, key.frequency));
            let value = v.check_lazy(
                || field("value_usd"),
                check_value_of(key.measure, p.value_usd),
            );
            v.check_lazy(|| field("source"), check_source(&p.source));
            let (Some(period), Some(value)) = (period, value) else {
                continue;
            };
            let source = if p.source.is_empty() {
                batch_source.clone()
            } else {
                if *last_source != *p.source {
                    last_source = Arc::from(p.source.as_str());
                }
                last_source.clone()
            };
            points.push(Point {
                ordinal: period.ordinal,
                value,
                source,
            });
            request_index.push(j);
        }
        check_distinct_periods(&points, &request_index, key.frequency, i, v);
        out.push(SeriesPoints { key, points });
    }
    if v.0.len() >= MAX_VIOLATIONS {
        v.add(
            "series",
            format!("more than {MAX_VIOLATIONS} violations; the rest were not checked"),
        );
    }
    out
}

/// A period may appear once per `SeriesPoints`. Points usually arrive in order, so one pass
/// settles it; otherwise sort a copy of the periods.
fn check_distinct_periods(
    points: &[Point],
    request_index: &[usize],
    frequency: Frequency,
    i: usize,
    v: &mut Violations,
) {
    if points.windows(2).all(|w| w[0].ordinal < w[1].ordinal) {
        return;
    }
    let mut ordinals: Vec<(u32, usize)> = points
        .iter()
        .map(|p| p.ordinal)
        .zip(request_index.iter().copied())
        .collect();
    ordinals.sort_unstable();
    for w in ordinals.windows(2) {
        if w[0].0 == w[1].0 {
            let period = Period {
                frequency,
                ordinal: w[0].0,
            };
            v.add(
                format!("series[{i}].points[{}].period", w[1].1),
                format!("period {period} appears more than once in this series"),
            );
            return;
        }
    }
}

/// The figures a read asks for: as of a release (`{prefix}release`) or a date
/// (`{prefix}date`), at most one; the latest when neither.
pub(crate) fn as_of(release: &str, date: &str, prefix: &str, v: &mut Violations) -> AsOf {
    match (release.is_empty(), date.is_empty()) {
        (true, true) => AsOf::Latest,
        (false, true) => v
            .check(format!("{prefix}release"), Release::parse_label(release))
            .map_or(AsOf::Latest, AsOf::Release),
        (true, false) => v
            .check(format!("{prefix}date"), release::parse_date(date))
            .map_or(AsOf::Latest, AsOf::Date),
        (false, false) => {
            v.add(
                format!("{prefix}date"),
                format!("set {prefix}release or {prefix}date, not both"),
            );
            AsOf::Latest
        }
    }
}

/// A write's release (`None` when unset: the unnamed release).
pub(crate) fn release_in(
    r: Option<&pb::Release>,
    field: &str,
    v: &mut Violations,
) -> Option<Release> {
    let r = r?;
    Release::parse(&r.label, &r.date, &r.source, field, v)
}

/// A validated write: the series of `series` of `release`; points with no source of their
/// own or their series' take the release's.
pub(crate) fn write(
    series: &[pb::SeriesPoints],
    release: Option<&pb::Release>,
    v: &mut Violations,
) -> Batch {
    let release = release_in(release, "release", v);
    let series = write_batch(series, v);
    released(series, release)
}

/// `series` written as `release` (its source the default of points without one).
pub(crate) fn released(mut series: Vec<SeriesPoints>, release: Option<Release>) -> Batch {
    if let Some(r) = release.as_ref().filter(|r| !r.source.is_empty()) {
        let source: Arc<str> = Arc::from(r.source.as_str());
        for p in series.iter_mut().flat_map(|s| s.points.iter_mut()) {
            if p.source.is_empty() {
                p.source = source.clone();
            }
        }
    }
    Batch { series, release }
}

/// A revision as a message, with the label of its release.
pub(crate) fn revision(r: Revision, release: String) -> pb::Revision {
    pb::Revision {
        key: Some(pb::SeriesKey::from(&r.key)),
        period: r.period.to_string(),
        old_value: r.old,
        new_value: r.new,
        change: r.change(),
        percent: r.percent(),
        release,
    }
}

/// A release as a message.
pub(crate) fn release_out(r: &Release) -> pb::Release {
    pb::Release {
        label: r.label.clone(),
        date: r.date.to_string(),
        source: r.source.clone(),
    }
}

/// Parses an optional inclusive period range; empty bounds are open.
pub(crate) fn period_range(
    start: &str,
    end: &str,
    frequency: Frequency,
    v: &mut Violations,
) -> (u32, u32) {
    let parse = |s: &str, field: &str, v: &mut Violations, open: u32| {
        if s.is_empty() {
            open
        } else {
            v.check(field, Period::parse(s, frequency))
                .map_or(open, |p| p.ordinal)
        }
    };
    let from = parse(start, "start_period", v, 0);
    let to = parse(end, "end_period", v, u32::MAX);
    if from > to {
        v.add(
            "end_period",
            format!("must not be before start_period {start:?}"),
        );
    }
    (from, to)
}

/// Validates `page_size`: 0 means `default`, negative is invalid, larger than `max` is capped.
pub(crate) fn read_plan(
    key: &SeriesKey,
    aggregate_to: i32,
    v: &mut Violations,
) -> Option<ReadPlan> {
    let target = v.check("aggregate_to", frequency(aggregate_to, false))?;
    let plan = v.check("aggregate_to", ReadPlan::new(key.frequency, target))?;
    if plan.factor() > 1 && !key.measure.sums() {
        v.add(
            "aggregate_to",
            format!(
                "a {} series is not summed over periods; read it at its own frequency",
                key.measure
            ),
        );
        return None;
    }
    Some(plan)
}

pub(crate) fn series_value(value: Value) -> pb::SeriesValue {
    pb::SeriesValue {
        period: value.period.to_string(),
        value_usd: value.value,
        source: value.source,
        input_count: value.input_count,
        expected_input_count: value.expected_input_count,
        release: value.release,
    }
}

/// A block of columns as a `StreamSeriesColumns` message: ordinals delta-encoded, the source
/// indexes left out when the block has one source.
pub(crate) fn columns(block: Columns) -> pb::StreamSeriesColumnsResponse {
    let mut previous = 0;
    let period_deltas = block
        .ordinals
        .iter()
        .map(|&o| {
            let delta = o - previous;
            previous = o;
            delta
        })
        .collect();
    let single_source = block.sources.len() == 1;
    pb::StreamSeriesColumnsResponse {
        frequency: pb::Frequency::from(block.frequency).into(),
        period_deltas,
        values_usd: block.values,
        sources: block.sources,
        source_indexes: if single_source {
            Vec::new()
        } else {
            block.source_indexes
        },
        input_counts: block.input_counts,
        expected_input_count: block.expected_input_count,
    }
}

pub(crate) fn filter(f: Option<&pb::SeriesFilter>, v: &mut Violations) -> SeriesFilter {
    let Some(f) = f else {
        return SeriesFilter::default();
    };
    let country = |s: &str, field: &str, v: &mut Violations| {
        if s.is_empty() {
            None
        } else {
            v.check(field, Country::parse(s))
        }
    };
    let (product, product_prefix) = if f.product.is_empty() {
        (None, false)
    } else {
        v.check("filter.product", SeriesFilter::parse_product(&f.product))
            .map_or((None, false), |(p, prefix)| (Some(p), prefix))
    };
    SeriesFilter {
        reporter: country(&f.reporter, "filter.reporter", v),
        partner: country(&f.partner, "filter.partner", v),
        flow: v.check("filter.flow", flow(f.flow, false)).flatten(),
        kind: v.check("filter.kind", kind(f.kind, false)).flatten(),
        frequency: v
            .check("filter.frequency", frequency(f.frequency, false))
            .flatten(),
        product,
        product_prefix,
        measure: measure(f.measure, &f.quantity_unit, true, "filter", v).flatten(),
    }
}

pub(crate) fn series_info(info: SeriesInfo) -> pb::SeriesInfo {
    pb::SeriesInfo {
        key: Some(pb::SeriesKey::from(&info.key)),
        point_count: info.point_count,
        first_period: info.first.to_string(),
        last_period: info.last.to_string(),
    }
}

/// A balance query from its parts, at `prefix` (`""` or `"balance."`).
pub(crate) fn balance_query(
    reporter: &str,
    partner: &str,
    product: &str,
    freq: i32,
    prefix: &str,
    v: &mut Violations,
) -> Option<BalanceQuery> {
    let reporter = v.check(format!("{prefix}reporter"), Country::parse(reporter));
    let partner = v.check(format!("{prefix}partner"), Country::parse(partner));
    let product = if product.is_empty() {
        Some(Product::total())
    } else {
        v.check(format!("{prefix}product"), Product::parse(product))
    };
    let frequency = v.check(format!("{prefix}frequency"), frequency(freq, false));
    Some(BalanceQuery {
        reporter: reporter?,
        partner: partner?,
        product: product?,
        frequency: frequency?.unwrap_or(Frequency::Annual),
        view: Default::default(),
    })
}

fn figures(f: Figures) -> pb::BalanceFigures {
    pb::BalanceFigures {
        exports_usd: f.exports,
        imports_usd: f.imports,
        balance_usd: f.balance,
        missing_inputs: f.missing,
        reported_balance_usd: f.reported,
    }
}

pub(crate) fn mirror_row(row: tradepact_store::analysis::MirrorRow) -> pb::MirrorRow {
    pb::MirrorRow {
        period: row.period.to_string(),
        reported: row.reported,
        mirror: row.mirror,
        difference: row.difference,
        percent: row.percent,
    }
}

/// A balance row, its releases named by `label`.
pub(crate) fn balance_row(row: BalanceRow, label: impl Fn(u32) -> String) -> pb::BalanceRow {
    pb::BalanceRow {
        period: row.period.to_string(),
        complete: row.complete(),
        releases: row.releases.iter().map(|&id| label(id)).collect(),
        goods: Some(figures(row.goods)),
        services: Some(figures(row.services)),
        total: Some(figures(row.total)),
    }
}

pub(crate) fn change_target(
    target: Option<&pb::get_change_request::Target>,
    v: &mut Violations,
) -> Option<ChangeTarget> {
    use pb::get_change_request::Target;
    match target {
        None => {
            v.add("target", "is required: set series or balance");
            None
        }
        Some(Target::Series(key)) => series_key(Some(key), "series", v).map(ChangeTarget::Series),
        Some(Target::Balance(b)) => {
            let k = v.check("balance.kind", kind(b.kind, false));
            let q = balance_query(
                &b.reporter,
                &b.partner,
                &b.product,
                b.frequency,
                "balance.",
                v,
            );
            Some(ChangeTarget::Balance(q?, k?))
        }
    }
}

pub(crate) fn change(c: Change) -> pb::GetChangeResponse {
    pb::GetChangeResponse {
        from_value_usd: c.from,
        to_value_usd: c.to,
        absolute_change_usd: c.absolute,
        percent_change: c.percent,
        years: c.years,
        cagr: c.cagr,
    }
}

pub(crate) fn points_pb(points: &[Point], frequency: Frequency) -> Vec<pb::Point> {
    points
        .iter()
        .map(|p| pb::Point {
            period: Period {
                frequency,
                ordinal: p.ordinal,
            }
            .to_string(),
            value_usd: p.value,
            source: p.source.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod fuzz {
    //! Arbitrary requests through the validation layer: nothing panics, and whatever passes
    //! validation is well formed.
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[A-Z]{0,4}",
            "(HS|HS2017|HS2031|SITC4|SITC|EBOPS2010|USITC):[0-9A-Z_]{0,8}",
            "[0-9]{0,5}(-(Q[0-9]|[0-9]{1,2}))?",
        ]
    }

    fn key() -> impl Strategy<Value = pb::SeriesKey> {
        let measure = (-1i32..9, "[a-z0-9_]{0,14}");
        (
            text(),
            text(),
            any::<i32>(),
            -1i32..4,
            text(),
            -1i32..5,
            measure,
        )
            .prop_map(
                |(reporter, partner, flow, kind, product, frequency, (measure, unit))| {
                    pb::SeriesKey {
                        reporter,
                        partner,
                        flow: flow % 6,
                        kind,
                        product,
                        frequency,
                        measure,
                        quantity_unit: unit,
                    }
                },
            )
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            0.0..1e15
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn write_batches_never_panic(series in proptest::collection::vec(
            (proptest::option::of(key()), proptest::collection::vec((text(), value(), text()), 0..8), text()),
            0..4,
        )) {
            let req: Vec<pb::SeriesPoints> = series
                .into_iter()
                .map(|(key, points, source)| pb::SeriesPoints {
                    key,
                    points: points
                        .into_iter()
                        .map(|(period, value_usd, source)| pb::Point { period, value_usd, source })
                        .collect(),
                    source,
                })
                .collect();
            let mut v = Violations::default();
            let batch = write_batch(&req, &mut v);
            if v.is_empty() {
                for s in &batch {
                    for p in &s.points {
                        prop_assert!(p.value.is_finite() && p.value >= 0.0);
                    }
                }
            } else {
                prop_assert!(v.0.iter().all(|x| !x.field.is_empty() && !x.description.is_empty()));
            }
        }

        #[test]
        fn filters_ranges_and_keys_never_panic(
            k in key(), start in text(), end in text(), size in any::<i32>(), agg in any::<i32>(),
            f in (text(), text(), any::<i32>(), any::<i32>(), text(), any::<i32>(), -1..9i32, "[a-z0-9]{0,14}"),
        ) {
            let mut v = Violations::default();
            if let Some(key) = series_key(Some(&k), "key", &mut v) {
                let _ = read_plan(&key, agg, &mut v);
                let _ = period_range(&start, &end, key.frequency, &mut v);
            }
            let _ = v.check("page_size", tradepact_rpc::paging::size(size, (10, 100)));
            let filter_pb = pb::SeriesFilter { reporter: f.0, partner: f.1, flow: f.2, kind: f.3, product: f.4, frequency: f.5, measure: f.6, quantity_unit: f.7 };
            let _ = filter(Some(&filter_pb), &mut v);
        }
    }
}

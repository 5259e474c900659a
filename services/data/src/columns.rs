//! `StreamWriteColumns` messages as batches: the rows of a message grouped by series, each
//! distinct key and period checked once (with the checks `convert` gives `StreamWritePoints`),
//! violations naming the column and row.

use std::sync::Arc;

use tradepact_proto::data_v1 as pb;
use tradepact_store::model::{check_source, check_value_of};
use tradepact_store::{Period, Point, SeriesPoints, Violations};

use crate::app::Batch;
use crate::convert::{release_in, released, series_key, MAX_VIOLATIONS};

/// A `StreamWriteColumns` message as a batch: its rows grouped by series (in the order each
/// series first appears), each distinct key and period checked once; violations name the
/// column and row (`period[12]`), at most [`MAX_VIOLATIONS`] of them.
pub(crate) fn write(
    msg: &pb::StreamWriteColumnsRequest,
    release: Option<&pb::Release>,
    v: &mut Violations,
) -> Batch {
    let release = release_in(release, "release", v);
    let rows = msg.value.len();
    if rows == 0 {
        v.add("value", "must hold at least one row");
    }
    let required: [(&str, usize); 7] = [
        ("reporter", msg.reporter.len()),
        ("partner", msg.partner.len()),
        ("flow", msg.flow.len()),
        ("kind", msg.kind.len()),
        ("product", msg.product.len()),
        ("frequency", msg.frequency.len()),
        ("period", msg.period.len()),
    ];
    for (column, len) in required {
        if len != rows {
            v.add(
                column,
                format!("has {len} rows; every column has as many as value ({rows})"),
            );
        }
    }
    for (column, len) in [
        ("measure", msg.measure.len()),
        ("quantity_unit", msg.quantity_unit.len()),
        ("source", msg.source.len()),
    ] {
        if len != 0 && len != rows {
            v.add(
                column,
                format!("has {len} rows; it is empty or has as many as value ({rows})"),
            );
        }
    }
    for (column, indexes) in [
        ("reporter", &msg.reporter),
        ("partner", &msg.partner),
        ("product", &msg.product),
        ("quantity_unit", &msg.quantity_unit),
        ("period", &msg.period),
        ("source", &msg.source),
    ] {
        if let Some(row) = indexes
            .iter()
            .position(|&i| i as usize >= msg.strings.len())
        {
            v.add(
                format!("{column}[{row}]"),
                format!(
                    "index {} is past the message's {} strings",
                    indexes[row],
                    msg.strings.len()
                ),
            );
        }
    }
    if !v.is_empty() {
        return Batch {
            series: Vec::new(),
            release: None,
        };
    }
    let text = |i: u32| msg.strings[i as usize].as_str();
    // Each distinct key (its columns' values) checked once: its series' slot, or None.
    type KeyColumns = (u32, u32, i32, i32, u32, i32, i32, u32);
    let mut slots: std::collections::HashMap<KeyColumns, Option<usize>> = Default::default();
    let mut periods: std::collections::HashMap<(u32, i32), Option<u32>> = Default::default();
    let mut sources: std::collections::HashMap<u32, Arc<str>> = Default::default();
    let mut series: Vec<SeriesPoints> = Vec::new();
    let mut seen: std::collections::HashSet<(usize, u32)> = Default::default();
    for row in 0..rows {
        if v.0.len() >= MAX_VIOLATIONS {
            v.add(
                "value",
                format!("more than {MAX_VIOLATIONS} violations; the rest were not checked"),
            );
            break;
        }
        let columns: KeyColumns = (
            msg.reporter[row],
            msg.partner[row],
            msg.flow[row],
            msg.kind[row],
            msg.product[row],
            msg.frequency[row],
            msg.measure.get(row).copied().unwrap_or(0),
            msg.quantity_unit.get(row).copied().unwrap_or(u32::MAX),
        );
        let slot = *slots.entry(columns).or_insert_with(|| {
            let key = pb::SeriesKey {
                reporter: text(columns.0).to_owned(),
                partner: text(columns.1).to_owned(),
                flow: columns.2,
                kind: columns.3,
                product: text(columns.4).to_owned(),
                frequency: columns.5,
                measure: columns.6,
                quantity_unit: match columns.7 {
                    u32::MAX => String::new(),
                    i => text(i).to_owned(),
                },
            };
            series_key(Some(&key), &format!("rows[{row}].key"), v).map(|key| {
                series.push(SeriesPoints {
                    key,
                    points: Vec::new(),
                });
                series.len() - 1
            })
        });
        let Some(slot) = slot else { continue };
        let frequency = series[slot].key.frequency;
        let period = *periods
            .entry((msg.period[row], columns.5))
            .or_insert_with(|| {
                v.check(
                    format!("period[{row}]"),
                    Period::parse(text(msg.period[row]), frequency),
                )
                .map(|p| p.ordinal)
            });
        let value = v.check_lazy(
            || format!("value[{row}]"),
            check_value_of(series[slot].key.measure, msg.value[row]),
        );
        let source = match msg.source.get(row) {
            None => Arc::from(""),
            Some(&i) => sources
                .entry(i)
                .or_insert_with(|| {
                    v.check_lazy(|| format!("source[{row}]"), check_source(text(i)));
                    Arc::from(text(i))
                })
                .clone(),
        };
        let (Some(ordinal), Some(value)) = (period, value) else {
            continue;
        };
        if !seen.insert((slot, ordinal)) {
            v.add(
                format!("period[{row}]"),
                format!(
                    "{} appears twice for {} in this message",
                    text(msg.period[row]),
                    series[slot].key
                ),
            );
            continue;
        }
        series[slot].points.push(Point {
            ordinal,
            value,
            source,
        });
    }
    released(series, release)
}

#[cfg(test)]
mod tests {
    //! `StreamWriteColumns` reads as `StreamWritePoints` does: the same rows, as columns, make
    //! the same batch; bad columns are named with their row.
    use super::*;
    use proptest::prelude::*;
    use tradepact_client::data::columns_of;

    fn batch() -> impl Strategy<Value = pb::StreamWritePointsRequest> {
        let key = (0usize..3, 0usize..3, 1i32..3, 0usize..5, prop::bool::ANY);
        let points = prop::collection::btree_map(
            1990u32..2020,
            (0u32..1_000_000, prop_oneof![Just(""), Just("a"), Just("b")]),
            1..6,
        );
        prop::collection::btree_map(key, (points, prop_oneof![Just(""), Just("s")]), 1..8).prop_map(
            |series| pb::StreamWritePointsRequest {
                series: series
                    .into_iter()
                    .map(
                        |((r, p, flow, product, weight), (points, source))| pb::SeriesPoints {
                            key: Some(pb::SeriesKey {
                                reporter: ["USA", "KOR", "JPN"][r].into(),
                                partner: ["CHN", "DEU", "MEX"][p].into(),
                                flow,
                                kind: pb::TradeKind::Goods as i32,
                                product: format!("HS:0{product}"),
                                frequency: pb::Frequency::Annual as i32,
                                measure: if weight {
                                    pb::Measure::NetWeightKg as i32
                                } else {
                                    0
                                },
                                quantity_unit: String::new(),
                            }),
                            points: points
                                .into_iter()
                                .map(|(year, (value, source))| pb::Point {
                                    period: year.to_string(),
                                    value_usd: f64::from(value),
                                    source: source.into(),
                                })
                                .collect(),
                            source: source.into(),
                        },
                    )
                    .collect(),
                release: None,
            },
        )
    }

    proptest! {
        #[test]
        fn columns_make_the_batch_points_make(request in batch()) {
            let release = pb::Release {
                label: "r1".into(),
                date: "2020-01-02".into(),
                source: "the release".into(),
            };
            for release in [None, Some(&release)] {
                let mut v = Violations::default();
                let points = crate::convert::write(&request.series, release, &mut v);
                prop_assert!(v.is_empty(), "{:?}", v.0);
                let columns = columns_of(request.clone());
                let mut v = Violations::default();
                let from_columns = write(&columns, release, &mut v);
                prop_assert!(v.is_empty(), "{:?}", v.0);
                prop_assert_eq!(from_columns, points);
            }
        }
    }

    fn one_row() -> pb::StreamWriteColumnsRequest {
        pb::StreamWriteColumnsRequest {
            strings: vec!["USA".into(), "KOR".into(), "TOTAL".into(), "2016".into()],
            reporter: vec![0, 0],
            partner: vec![1, 1],
            flow: vec![pb::Flow::Export as i32; 2],
            kind: vec![pb::TradeKind::Goods as i32; 2],
            product: vec![2, 2],
            frequency: vec![pb::Frequency::Annual as i32; 2],
            period: vec![3, 3],
            value: vec![1.0, 2.0],
            ..Default::default()
        }
    }

    fn fields(msg: &pb::StreamWriteColumnsRequest) -> Vec<String> {
        let mut v = Violations::default();
        let _ = write(msg, None, &mut v);
        v.0.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn bad_columns_are_named_with_their_row() {
        // The same series and period twice in one message.
        assert_eq!(fields(&one_row()), ["period[1]"]);
        let mut short = one_row();
        short.partner.pop();
        assert_eq!(fields(&short), ["partner"]);
        let mut past = one_row();
        past.product[1] = 9;
        assert_eq!(fields(&past), ["product[1]"]);
        let mut optional = one_row();
        optional.source = vec![0];
        assert_eq!(fields(&optional), ["source"]);
        let mut bad = one_row();
        bad.strings.push("20X6".into());
        bad.period[1] = 4;
        bad.value[0] = -1.0;
        assert_eq!(fields(&bad), ["value[0]", "period[1]"]);
        let mut bad_key = one_row();
        bad_key.strings[1] = "XXQ".into();
        assert_eq!(fields(&bad_key), ["rows[0].key.partner"]);
        assert_eq!(fields(&pb::StreamWriteColumnsRequest::default()), ["value"]);
    }
}

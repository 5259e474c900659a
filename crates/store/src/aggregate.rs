//! Reading a series as values, optionally summed to a coarser frequency.
//!
//! Monthly → quarterly sums 3 months, monthly → annual 12, quarterly → annual 4. An aggregate
//! says how many inputs it had and how many a complete one needs, so a partial year is
//! visible as such rather than passing for a full one.

use crate::model::{Frequency, Period, SeriesKey};
use crate::release::{Releases, View};
use crate::store::StoredPoint;
use crate::{Error, Result, Store};

/// One value as read back: a stored point, or the sum of the points of a coarser period.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// Period in the returned frequency.
    pub period: Period,
    /// Value, or sum of values, in US dollars.
    pub value: f64,
    /// Source; for aggregates, the distinct sources joined with "; ".
    pub source: String,
    /// Stored points that make up the value.
    pub input_count: u32,
    /// Stored points a complete value needs.
    pub expected_input_count: u32,
    /// The label of the release of the value; for aggregates the distinct ones joined with
    /// "; "; empty for the unnamed release.
    pub release: String,
}

/// How to read a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadPlan {
    /// Frequency of the returned values (the series' own, or coarser).
    pub frequency: Frequency,
    /// Periods per returned value.
    factor: u32,
    /// Which release's figures to read.
    pub view: View,
}

impl ReadPlan {
    /// Plans a read of a `series` frequency returned as `target` (`None`: as stored).
    pub fn new(series: Frequency, target: Option<Frequency>) -> Result<ReadPlan, String> {
        let target = target.unwrap_or(series);
        let factor = series.factor_to(target).ok_or_else(|| {
            format!("cannot aggregate a {series} series to the finer {target} frequency")
        })?;
        Ok(ReadPlan {
            frequency: target,
            factor,
            view: View::Latest,
        })
    }

    /// The plan reading the figures `view` sees.
    pub fn at(self, view: View) -> ReadPlan {
        ReadPlan { view, ..self }
    }

    /// Stored periods per returned value (1 when not aggregating).
    pub fn factor(&self) -> u32 {
        self.factor
    }

    /// The stored ordinals covered by returned periods `from..=to` (in the returned frequency).
    pub fn stored_range(&self, from: u32, to: u32) -> (u32, u32) {
        (
            from.saturating_mul(self.factor),
            to.saturating_mul(self.factor)
                .saturating_add(self.factor - 1),
        )
    }
}

/// Values of `key` for returned periods `from..=to` (ordinals in `plan.frequency`), lazily.
pub fn values(
    store: &Store,
    key: &SeriesKey,
    plan: ReadPlan,
    from: u32,
    to: u32,
) -> Result<impl Iterator<Item = Result<Value>> + Send + 'static> {
    let (lo, hi) = plan.stored_range(from, to);
    Ok(Grouped {
        points: store.scan(key, lo, hi, plan.view)?.peekable(),
        plan,
        releases: store.releases_handle(),
    })
}

struct Grouped<I: Iterator<Item = Result<StoredPoint>>> {
    points: std::iter::Peekable<I>,
    plan: ReadPlan,
    releases: std::sync::Arc<std::sync::RwLock<Releases>>,
}

impl<I: Iterator<Item = Result<StoredPoint>>> Grouped<I> {
    /// Adds the label of release `id` to `labels` unless there.
    fn add_release(&self, labels: &mut String, id: u32) {
        if id == 0 {
            return;
        }
        let releases = self.releases.read().unwrap_or_else(|e| e.into_inner());
        let Some(info) = releases.by_id(id) else {
            return;
        };
        let label = info.release.label.as_str();
        if !labels.split("; ").any(|l| l == label) {
            if !labels.is_empty() {
                labels.push_str("; ");
            }
            labels.push_str(label);
        }
    }
}

impl<I: Iterator<Item = Result<StoredPoint>>> Iterator for Grouped<I> {
    type Item = Result<Value>;

    fn next(&mut self) -> Option<Result<Value>> {
        let first = match self.points.next()? {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let factor = self.plan.factor;
        let period = Period {
            frequency: self.plan.frequency,
            ordinal: first.period.ordinal / factor,
        };
        let mut value = Value {
            period,
            value: first.value,
            source: first.source.to_string(),
            input_count: 1,
            expected_input_count: factor,
            release: String::new(),
        };
        let mut release = String::new();
        self.add_release(&mut release, first.release);
        while let Some(Ok(next)) = self.points.peek() {
            if next.period.ordinal / factor != period.ordinal {
                break;
            }
            let next = match self.points.next() {
                Some(Ok(p)) => p,
                _ => return Some(Err(Error::Corrupt("point vanished".to_owned()))),
            };
            value.value += next.value;
            value.input_count += 1;
            self.add_release(&mut release, next.release);
            if !value.source.split("; ").any(|s| s == &*next.source) {
                value.source.push_str("; ");
                value.source.push_str(&next.source);
            }
        }
        value.release = release;
        Some(Ok(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Country, Flow, Kind, Point, Product, SeriesPoints};

    #[test]
    fn months_sum_to_quarters_and_partial_quarters_say_so() {
        let store = Store::temporary().unwrap();
        let key = SeriesKey {
            reporter: Country::parse("USA").unwrap(),
            partner: Country::parse("KOR").unwrap(),
            flow: Flow::Import,
            kind: Kind::Goods,
            product: Product::parse("HS:87").unwrap(),
            frequency: Frequency::Monthly,
            measure: Default::default(),
        };
        // Jan..Apr 2016: Q1 complete, Q2 has one month.
        let points = (0..4)
            .map(|m| Point {
                ordinal: 2016 * 12 + m,
                value: f64::from(m + 1),
                source: if m == 0 { "a" } else { "b" }.into(),
            })
            .collect();
        store
            .write(&[SeriesPoints {
                key: key.clone(),
                points,
            }])
            .unwrap();

        let plan = ReadPlan::new(Frequency::Monthly, Some(Frequency::Quarterly)).unwrap();
        let got: Vec<Value> = values(&store, &key, plan, 0, u32::MAX)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].period.to_string(), "2016-Q1");
        assert_eq!(
            (
                got[0].value,
                got[0].input_count,
                got[0].expected_input_count
            ),
            (6.0, 3, 3)
        );
        assert_eq!(got[0].source, "a; b");
        assert_eq!((got[1].value, got[1].input_count), (4.0, 1));

        let annual = ReadPlan::new(Frequency::Monthly, Some(Frequency::Annual)).unwrap();
        let year: Vec<Value> = values(&store, &key, annual, 2016, 2016)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            (
                year[0].value,
                year[0].input_count,
                year[0].expected_input_count
            ),
            (10.0, 4, 12)
        );

        assert!(ReadPlan::new(Frequency::Annual, Some(Frequency::Monthly)).is_err());
    }
}

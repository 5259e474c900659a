//! Reading a series as columns: periods, values and sources as parallel arrays in blocks of
//! at most `max_values`, for clients that read long ranges (one array of doubles instead of a
//! message per value; a source written once per block instead of once per value).
//!
//! Unaggregated reads go from the stored chunks straight into the columns, with no value
//! allocated on the way; aggregated reads sum as [`crate::aggregate::values`] does.

use std::collections::HashMap;

use crate::aggregate::{self, ReadPlan, Value};
use crate::chunk::ChunkView;
use crate::model::{Frequency, SeriesKey};
use crate::{Result, Store};

/// A block of values of one series, in period order.
#[derive(Clone, Debug, PartialEq)]
pub struct Columns {
    /// Frequency of the ordinals.
    pub frequency: Frequency,
    /// Period ordinals (see [`crate::Period`]), ascending.
    pub ordinals: Vec<u32>,
    /// Values (or sums) in US dollars, one per ordinal.
    pub values: Vec<f64>,
    /// The distinct sources of the block, in order of first use.
    pub sources: Vec<String>,
    /// For each value, its source's index in `sources`.
    pub source_indexes: Vec<u32>,
    /// For aggregated reads, the stored points summed into each value; empty otherwise.
    pub input_counts: Vec<u32>,
    /// Stored points a complete value needs (1 when not aggregated).
    pub expected_input_count: u32,
}

impl Columns {
    fn new(plan: ReadPlan, capacity: usize) -> Columns {
        Columns {
            frequency: plan.frequency,
            ordinals: Vec::with_capacity(capacity),
            values: Vec::with_capacity(capacity),
            sources: Vec::new(),
            source_indexes: Vec::with_capacity(capacity),
            input_counts: Vec::new(),
            expected_input_count: plan.factor(),
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the block holds no value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Values of `key` for returned periods `from..=to` (ordinals in `plan.frequency`), in blocks
/// of at most `max_values` (at least 1), lazily. `NotFound` when the series does not exist.
pub fn columns(
    store: &Store,
    key: &SeriesKey,
    plan: ReadPlan,
    from: u32,
    to: u32,
    max_values: usize,
) -> Result<Box<dyn Iterator<Item = Result<Columns>> + Send>> {
    let max = max_values.max(1);
    if plan.factor() == 1 {
        Ok(Box::new(FromChunks {
            chunks: store.scan_chunk_bytes_at(key, from, to, plan.view)?,
            current: None,
            from,
            to,
            max,
            plan,
            done: false,
        }))
    } else {
        Ok(Box::new(FromValues {
            values: aggregate::values(store, key, plan, from, to)?,
            max,
            plan,
        }))
    }
}

/// Source indexes of one block: the previous value's source is checked first (runs of one
/// source are the common case), then a map.
#[derive(Default)]
struct Dictionary {
    last: Option<u32>,
    seen: HashMap<String, u32>,
}

impl Dictionary {
    fn index(&mut self, source: &str, sources: &mut Vec<String>) -> u32 {
        if let Some(last) = self.last {
            if sources[last as usize] == source {
                return last;
            }
        }
        let i = match self.seen.get(source) {
            Some(&i) => i,
            None => {
                sources.push(source.to_owned());
                let i = u32::try_from(sources.len() - 1).unwrap_or(u32::MAX);
                self.seen.insert(source.to_owned(), i);
                i
            }
        };
        self.last = Some(i);
        i
    }
}

struct FromChunks<I> {
    chunks: I,
    /// The chunk being read: its first ordinal, its bytes, the next entry.
    current: Option<(u32, sled::IVec, usize)>,
    from: u32,
    to: u32,
    max: usize,
    plan: ReadPlan,
    done: bool,
}

impl<I: Iterator<Item = Result<(u32, sled::IVec)>>> Iterator for FromChunks<I> {
    type Item = Result<Columns>;

    fn next(&mut self) -> Option<Result<Columns>> {
        if self.done {
            return None;
        }
        let mut out = Columns::new(self.plan, self.max.min(8192));
        let mut dictionary = Dictionary::default();
        'blocks: while out.len() < self.max {
            let Some((base, bytes, next)) = self.current.as_mut() else {
                match self.chunks.next() {
                    Some(Ok((base, bytes))) => self.current = Some((base, bytes, 0)),
                    Some(Err(e)) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    None => {
                        self.done = true;
                        break;
                    }
                }
                continue;
            };
            let view = match ChunkView::parse(bytes) {
                Ok(view) => view,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            while *next < view.len() && out.len() < self.max {
                let i = *next;
                *next += 1;
                let ordinal = *base + u32::from(view.offset(i));
                if ordinal < self.from {
                    continue;
                }
                if ordinal > self.to {
                    self.done = true;
                    break 'blocks;
                }
                out.ordinals.push(ordinal);
                out.values.push(view.value(i));
                let index = dictionary.index(view.source(i), &mut out.sources);
                out.source_indexes.push(index);
            }
            if *next == view.len() {
                self.current = None;
            }
        }
        (!out.is_empty()).then_some(Ok(out))
    }
}

struct FromValues<I> {
    values: I,
    max: usize,
    plan: ReadPlan,
}

impl<I: Iterator<Item = Result<Value>>> Iterator for FromValues<I> {
    type Item = Result<Columns>;

    fn next(&mut self) -> Option<Result<Columns>> {
        let mut out = Columns::new(self.plan, self.max.min(8192));
        let mut dictionary = Dictionary::default();
        while out.len() < self.max {
            let value = match self.values.next() {
                Some(Ok(value)) => value,
                Some(Err(e)) => return Some(Err(e)),
                None => break,
            };
            out.ordinals.push(value.period.ordinal);
            out.values.push(value.value);
            out.input_counts.push(value.input_count);
            let index = dictionary.index(&value.source, &mut out.sources);
            out.source_indexes.push(index);
        }
        (!out.is_empty()).then_some(Ok(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Country, Flow, Kind, Point, Product, SeriesPoints};
    use proptest::prelude::*;

    fn monthly_key() -> SeriesKey {
        SeriesKey {
            reporter: Country::parse("USA").unwrap(),
            partner: Country::parse("KOR").unwrap(),
            flow: Flow::Import,
            kind: Kind::Goods,
            product: Product::parse("HS:87").unwrap(),
            frequency: Frequency::Monthly,
            measure: Default::default(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The columns, concatenated, are exactly the values read one by one, in blocks of at
        /// most `max`, for sparse series spanning several chunks, any range and any plan.
        #[test]
        fn columns_are_the_values_in_blocks(
            points in proptest::collection::btree_map(0u32..700, (0.0f64..1e12, 0usize..3), 1..300),
            from in 0u32..700,
            len in 0u32..800,
            max in 1usize..200,
            target in prop_oneof![Just(None), Just(Some(Frequency::Quarterly)), Just(Some(Frequency::Annual))],
        ) {
            let store = Store::temporary().unwrap();
            let key = monthly_key();
            let base = 2000 * 12;
            let sources = ["Census", "KITA", "BEA"];
            store.write(&[SeriesPoints {
                key: key.clone(),
                points: points
                    .iter()
                    .map(|(o, (v, s))| Point { ordinal: base + o, value: *v, source: sources[*s].into() })
                    .collect(),
            }]).unwrap();
            let plan = ReadPlan::new(Frequency::Monthly, target).unwrap();
            let factor = plan.factor();
            let (from, to) = ((base + from) / factor, (base + from + len) / factor);

            let expected: Vec<Value> =
                aggregate::values(&store, &key, plan, from, to).unwrap().collect::<Result<_>>().unwrap();
            let blocks: Vec<Columns> =
                columns(&store, &key, plan, from, to, max).unwrap().collect::<Result<_>>().unwrap();
            let mut got = Vec::new();
            for block in &blocks {
                prop_assert!(!block.is_empty() && block.len() <= max);
                prop_assert_eq!(block.ordinals.len(), block.len());
                prop_assert_eq!(block.source_indexes.len(), block.len());
                prop_assert_eq!(block.expected_input_count, factor);
                prop_assert_eq!(block.input_counts.len(), if factor == 1 { 0 } else { block.len() });
                let mut distinct = block.sources.clone();
                distinct.sort();
                distinct.dedup();
                prop_assert_eq!(distinct.len(), block.sources.len());
                for i in 0..block.len() {
                    got.push(Value {
                        period: crate::Period { frequency: block.frequency, ordinal: block.ordinals[i] },
                        value: block.values[i],
                        source: block.sources[block.source_indexes[i] as usize].clone(),
                        input_count: block.input_counts.get(i).copied().unwrap_or(1),
                        expected_input_count: block.expected_input_count,
                        release: String::new(),
                    });
                }
            }
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn an_unknown_series_is_not_found() {
        let store = Store::temporary().unwrap();
        let plan = ReadPlan::new(Frequency::Monthly, None).unwrap();
        assert!(matches!(
            columns(&store, &monthly_key(), plan, 0, u32::MAX, 10),
            Err(crate::Error::NotFound(_))
        ));
    }
}

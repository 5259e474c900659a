//! Questions across the matrix: figures summed over the series a filter selects, grouped by
//! any of reporter, partner, product (at an HS level), flow, kind and period, ordered by value
//! with a limit (top-N), or as balances (exports − imports) per group.
//!
//! Sparse data is the rule, and a gap is never a zero:
//! - a series that does not exist contributes nothing;
//! - a series that exists contributes, for every stored period in the range, either its value
//!   (an *input*) or nothing (a *missing input*, counted, the first ten named per group);
//! - products are summed at one level only: the filter chooses `TOTAL` (the default), a list
//!   of codes, a prefix or an HS level (codes with exactly that many digits), so that a
//!   chapter and its headings are never added together;
//! - rates and reported balances are not summed ([`crate::model::Measure::sums`]).
//!
//! The engine visits the series entries the filter can select in key order (a reporter narrows
//! the scan to its keys; partners without a reporter skip from reporter to reporter, see
//! `Store::prefixes`), looks at each key's countries, flow, kind and frequency before decoding
//! it, and reads the chunks of the series it keeps in place, two threads split by reporter.
//! Every figure is checked against a brute-force sum in the tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::aggregate::ReadPlan;
use crate::chunk::ChunkView;
use crate::model::{Country, Flow, Frequency, Kind, Measure, Period, Product, SeriesKey};
use crate::{Error, Result, Store};

/// Missing inputs named per group (the rest are counted).
pub const MISSING_NAMED: usize = 10;
/// Series a query reads at most (beyond it: `OutOfRange`, narrow the filter): the whole
/// matrix at 10^8 points is about 5 million series. What bounds a query's time is its
/// deadline, its memory [`MAX_CELLS`]; this catches a filter that selects far more than meant.
pub const MAX_SERIES: usize = 10_000_000;
/// Periods a query spans at most (a century of months).
pub const MAX_PERIODS: u32 = 1200;
/// Groups a query may hold while it sums (its memory bound).
pub const MAX_CELLS: usize = 1_000_000;

/// Which products a query sums.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Products {
    /// The `TOTAL` series.
    #[default]
    Total,
    /// These codes.
    Codes(Vec<Product>),
    /// Codes starting with this (`HS2017:87`).
    Prefix(String),
    /// Codes of exactly this many digits (2, 4 or 6), any scheme.
    Level(u8),
}

/// What a query groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    /// The reporter.
    Reporter,
    /// The partner.
    Partner,
    /// The product, cut to this many digits (0: as stored).
    Product(u8),
    /// The flow.
    Flow,
    /// Goods or services.
    Kind,
    /// The period (in the query's frequency).
    Period,
}

/// How cells are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// By group.
    #[default]
    Group,
    /// Largest value first.
    Descending,
    /// Smallest value first (the deepest deficits of a balance).
    Ascending,
}

/// A question across the matrix.
/// A key's countries, flow, kind and frequency ([`SeriesKey::peek`]).
pub type Head = (Country, Country, Flow, Kind, Frequency);

#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// Reporters; empty for any.
    pub reporters: Vec<Country>,
    /// Partners; empty for any.
    pub partners: Vec<Country>,
    /// Partners left out ("the world minus China": partners empty, CHN excluded).
    pub exclude_partners: Vec<Country>,
    /// Flows; empty for any (a balance uses exports and imports).
    pub flows: Vec<Flow>,
    /// Kinds; empty for any.
    pub kinds: Vec<Kind>,
    /// Products.
    pub products: Products,
    /// The frequency of the series read.
    pub frequency: Frequency,
    /// The measure summed.
    pub measure: Measure,
    /// How the series are read (their frequency, or coarser); periods are in its frequency.
    pub plan: ReadPlan,
    /// First and last period, as ordinals in the plan's frequency.
    pub periods: (u32, u32),
    /// Dimensions of the groups (none: one cell).
    pub group_by: Vec<Dimension>,
    /// Exports minus imports per group instead of a sum.
    pub balance: bool,
    /// Order of the cells.
    pub order: Order,
    /// Cells returned at most (0: all).
    pub limit: usize,
}

/// One figure of an answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// The group's values, one per dimension of `group_by`.
    pub group: Vec<String>,
    /// The sum (or exports − imports) of its inputs; `None` without inputs (or, for a
    /// balance, without inputs on one side): a gap is never a zero.
    pub value: Option<f64>,
    /// Stored points summed.
    pub inputs: u64,
    /// Stored periods in range that a selected series lacks.
    pub missing: u64,
    /// The first [`MISSING_NAMED`] of them (`USA->KOR … 2016`).
    pub missing_named: Vec<String>,
}

impl Query {
    /// Whether `key` is one of the series the query reads.
    pub fn selects(&self, key: &SeriesKey) -> bool {
        let any_or = |list: &[Country], c: Country| list.is_empty() || list.contains(&c);
        let flows_ok = if self.balance {
            matches!(key.flow, Flow::Export | Flow::Import)
        } else {
            self.flows.is_empty() || self.flows.contains(&key.flow)
        };
        any_or(&self.reporters, key.reporter)
            && any_or(&self.partners, key.partner)
            && !self.exclude_partners.contains(&key.partner)
            && flows_ok
            && (self.kinds.is_empty() || self.kinds.contains(&key.kind))
            && key.frequency == self.frequency
            && key.measure == self.measure
            && match &self.products {
                Products::Total => key.product == Product::total(),
                Products::Codes(codes) => codes.contains(&key.product),
                Products::Prefix(p) => key.product.as_str().starts_with(p.as_str()),
                Products::Level(l) => key.product.split().is_some_and(|(_, c)| {
                    c.len() == usize::from(*l) && c.bytes().all(|b| b.is_ascii_digit())
                }),
            }
    }

    /// What [`Query::selects`] asks of a key's countries, flow, kind and frequency
    /// ([`SeriesKey::peek`]): `false` rules the series out.
    pub fn admits(&self, (reporter, partner, flow, kind, frequency): Head) -> bool {
        let any_or = |list: &[Country], c: Country| list.is_empty() || list.contains(&c);
        let flows_ok = if self.balance {
            matches!(flow, Flow::Export | Flow::Import)
        } else {
            self.flows.is_empty() || self.flows.contains(&flow)
        };
        any_or(&self.reporters, reporter)
            && any_or(&self.partners, partner)
            && !self.exclude_partners.contains(&partner)
            && flows_ok
            && (self.kinds.is_empty() || self.kinds.contains(&kind))
            && frequency == self.frequency
    }

    /// The group of `key`'s value in `period`.
    pub fn group_of(&self, key: &SeriesKey, period: Period) -> Vec<String> {
        self.group_by
            .iter()
            .map(|d| match d {
                Dimension::Reporter => key.reporter.to_string(),
                Dimension::Partner => key.partner.to_string(),
                Dimension::Product(level) => product_at(&key.product, *level),
                Dimension::Flow => key.flow.to_string(),
                Dimension::Kind => key.kind.to_string(),
                Dimension::Period => period.to_string(),
            })
            .collect()
    }

    /// Checks what a store cannot answer whatever it holds.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !self.measure.sums() {
            return Err(format!(
                "a {} is not summed; query it series by series",
                self.measure
            ));
        }
        if self.balance && self.group_by.contains(&Dimension::Flow) {
            return Err(
                "a balance is exports minus imports: it cannot be grouped by flow".to_owned(),
            );
        }
        let (from, to) = self.periods;
        if from > to || to - from >= MAX_PERIODS {
            return Err(format!(
                "the period range must hold 1 to {MAX_PERIODS} periods"
            ));
        }
        Ok(())
    }
}

/// `product` cut to `level` digits when it is a longer all-digit code.
pub fn product_at(product: &Product, level: u8) -> String {
    match product.split() {
        Some((scheme, code))
            if level > 0
                && code.len() > usize::from(level)
                && code.bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{scheme}:{}", &code[..usize::from(level)])
        }
        _ => product.to_string(),
    }
}

/// A cell being summed: its figure, and for a balance the inputs of each side.
struct Sum {
    cell: Cell,
    total: f64,
    sides: [u64; 2],
}

impl Sum {
    fn new(group: Vec<String>) -> Sum {
        Sum {
            cell: Cell {
                group,
                value: None,
                inputs: 0,
                missing: 0,
                missing_named: Vec::new(),
            },
            total: 0.0,
            sides: [0, 0],
        }
    }

    /// Adds `inputs` points worth `value` of `key`, and `missing` points it lacks in `period`.
    fn add(&mut self, key: &SeriesKey, period: Period, value: f64, inputs: u64, missing: u64) {
        self.total += value;
        self.cell.inputs += inputs;
        self.sides[usize::from(key.flow == Flow::Import)] += inputs;
        if missing > 0 {
            self.cell.missing += missing;
            if self.cell.missing_named.len() < MISSING_NAMED {
                self.cell.missing_named.push(format!("{key} {period}"));
            }
        }
    }

    /// Adds another thread's sum of the same group.
    fn merge(&mut self, other: Sum) {
        self.total += other.total;
        self.cell.inputs += other.cell.inputs;
        self.cell.missing += other.cell.missing;
        let room = MISSING_NAMED.saturating_sub(self.cell.missing_named.len());
        (self.cell.missing_named).extend(other.cell.missing_named.into_iter().take(room));
        self.sides[0] += other.sides[0];
        self.sides[1] += other.sides[1];
    }

    fn finish(mut self, balance: bool) -> Cell {
        let complete = if balance {
            self.sides.iter().all(|&n| n > 0)
        } else {
            self.cell.inputs > 0
        };
        self.cell.value = complete.then_some(self.total);
        self.cell
    }
}

/// The narrowest catalog scans that cover the query's series.
/// Appends the group of `key` in the dimensions other than the period to `out`, as bytes that
/// tell groups apart (fixed widths, products ended by 0xFF): a lookup key, not for display.
fn group_bytes(q: &Query, key: &SeriesKey, out: &mut Vec<u8>) {
    for d in &q.group_by {
        match d {
            Dimension::Reporter => out.extend_from_slice(&key.reporter.bytes()),
            Dimension::Partner => out.extend_from_slice(&key.partner.bytes()),
            Dimension::Product(level) => {
                let product = key.product.as_str();
                match key.product.split() {
                    Some((scheme, code))
                        if *level > 0
                            && code.len() > usize::from(*level)
                            && code.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        out.extend_from_slice(scheme.as_bytes());
                        out.push(b':');
                        out.extend_from_slice(&code.as_bytes()[..usize::from(*level)]);
                    }
                    _ => out.extend_from_slice(product.as_bytes()),
                }
                out.push(0xFF);
            }
            Dimension::Flow => out.push(key.flow as u8),
            Dimension::Kind => out.push(key.kind as u8),
            Dimension::Period => {}
        }
    }
}

/// Runs `q`.
pub fn run(store: &Store, q: &Query) -> Result<Vec<Cell>> {
    run_until(store, q, || false)
}

/// Runs `q`, checking `stop` before each series (`OutOfRange` when it says stop).
///
/// One pass over the catalog entries the reporters (and partners) select, in key order, split
/// by reporter over [`THREADS`] threads: each series the filter selects is read in place
/// ([`crate::chunk::ChunkView`]) — a short series from its entry, a long one's blocks of the
/// range —, its values summed per returned period into a scratch row, then added to their
/// groups, found by a byte key without allocating (a group's display form is built once, when
/// it first appears). The threads' groups are merged at the end.
pub fn run_until(store: &Store, q: &Query, stop: impl Fn() -> bool + Sync) -> Result<Vec<Cell>> {
    q.check().map_err(|e| {
        Error::Invalid(vec![crate::Violation {
            field: String::new(),
            description: e,
        }])
    })?;
    // One prefix per reporter (found by skipping through the catalog when none is asked),
    // each with the partners asked for.
    let mut prefixes = Vec::new();
    match q.reporters.is_empty() {
        true => prefixes = store.prefixes(None, &q.partners, true)?,
        false => {
            for reporter in &q.reporters {
                prefixes.extend(store.prefixes(Some(*reporter), &q.partners, true)?);
            }
        }
    }
    let read = AtomicUsize::new(0);
    let threads = THREADS.min(prefixes.len()).max(1);
    let shares: Vec<Result<HashMap<Vec<u8>, Sum>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (prefixes, read, stop) = (&prefixes, &read, &stop);
                scope.spawn(move || {
                    let share = prefixes.iter().skip(t).step_by(threads);
                    sum_prefixes(store, q, share, read, stop)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(Error::Corrupt("a query thread panicked".to_owned())))
            })
            .collect()
    });
    let mut cells: HashMap<Vec<u8>, Sum> = HashMap::new();
    for share in shares {
        for (group, sum) in share? {
            match cells.entry(group) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(sum),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(sum);
                }
            }
        }
        if cells.len() > MAX_CELLS {
            return Err(too_many_cells());
        }
    }
    let mut out: Vec<Cell> = cells.into_values().map(|s| s.finish(q.balance)).collect();
    out.sort_by(|a, b| a.group.cmp(&b.group));
    // Cells without a value come last whatever the order.
    let value = |c: &Cell, sign: f64| c.value.map_or(f64::INFINITY, |v| sign * v);
    match q.order {
        Order::Group => {}
        Order::Descending => out.sort_by(|a, b| value(a, -1.0).total_cmp(&value(b, -1.0))),
        Order::Ascending => out.sort_by(|a, b| value(a, 1.0).total_cmp(&value(b, 1.0))),
    }
    if q.limit > 0 {
        out.truncate(q.limit);
    }
    Ok(out)
}

/// Threads one query reads with (the machines this runs on have 2 cores or more; queries
/// themselves are bounded in number by the service).
pub const THREADS: usize = 2;

fn too_many_cells() -> Error {
    Error::OutOfRange(format!(
        "the query makes more than {MAX_CELLS} groups; group by fewer dimensions or narrow it"
    ))
}

/// The groups of the series under `prefixes` (one thread's share).
fn sum_prefixes<'a>(
    store: &Store,
    q: &Query,
    prefixes: impl Iterator<Item = &'a Vec<u8>>,
    read: &AtomicUsize,
    stop: &(impl Fn() -> bool + Sync),
) -> Result<HashMap<Vec<u8>, Sum>> {
    let (from, to) = q.periods;
    let factor = q.plan.factor();
    let (lo, hi) = q.plan.stored_range(from, to);
    let by_period = q.group_by.contains(&Dimension::Period);
    let mut cells: HashMap<Vec<u8>, Sum> = HashMap::new();
    // Per returned period of the series being read: sum and inputs.
    let mut row: Vec<(f64, u32)> = vec![(0.0, 0); (to - from + 1) as usize];
    let mut group = Vec::with_capacity(64);
    for prefix in prefixes {
        for entry in store.catalog(prefix) {
            let (encoded, entry) = entry?;
            // The countries, flow, kind and frequency first, without decoding the product.
            let head = SeriesKey::peek(&encoded)
                .ok_or_else(|| Error::Corrupt("series index key".to_owned()))?;
            if !q.admits(head) {
                continue;
            }
            let key = SeriesKey::decode(&encoded)
                .ok_or_else(|| Error::Corrupt("series index key".to_owned()))?;
            if !q.selects(&key) {
                continue;
            }
            if stop() {
                return Err(Error::OutOfRange("the query was stopped".to_owned()));
            }
            if read.fetch_add(1, Ordering::Relaxed) >= MAX_SERIES {
                return Err(Error::OutOfRange(format!(
                    "the query selects more than {MAX_SERIES} series; narrow it (reporters, partners, products)"
                )));
            }
            row.iter_mut().for_each(|r| *r = (0.0, 0));
            for chunk in store.raw_chunks_of(&encoded, &entry, lo, hi) {
                let (base, bytes) = store.check_chunk(&key, chunk, q.plan.view)?;
                let view = ChunkView::parse(&bytes)?;
                for i in 0..view.len() {
                    let ordinal = base + u32::from(view.offset(i));
                    if (lo..=hi).contains(&ordinal) {
                        let slot = &mut row[(ordinal / factor - from) as usize];
                        slot.0 += view.value(i);
                        slot.1 += 1;
                    }
                }
            }
            let sign = if q.balance && key.flow == Flow::Import {
                -1.0
            } else {
                1.0
            };
            group.clear();
            group_bytes(q, &key, &mut group);
            let fixed = group.len();
            for (i, &(value, inputs)) in row.iter().enumerate() {
                let period = Period {
                    frequency: q.plan.frequency,
                    ordinal: from + i as u32,
                };
                group.truncate(fixed);
                if by_period {
                    group.extend_from_slice(&period.ordinal.to_be_bytes());
                }
                let sum = match cells.get_mut(group.as_slice()) {
                    Some(sum) => sum,
                    None => {
                        if cells.len() >= MAX_CELLS {
                            return Err(too_many_cells());
                        }
                        cells
                            .entry(group.clone())
                            .or_insert_with(|| Sum::new(q.group_of(&key, period)))
                    }
                };
                let inputs = u64::from(inputs);
                sum.add(
                    &key,
                    period,
                    sign * value,
                    inputs,
                    u64::from(factor) - inputs,
                );
            }
        }
    }
    Ok(cells)
}

#[cfg(test)]
mod tests;

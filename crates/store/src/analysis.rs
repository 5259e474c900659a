//! Derived figures, computed at query time: trade balances and changes between periods.
//!
//! - balance = exports − imports, per kind (goods, services) and for their total; a balance
//!   as published (the `ReportedBalanceUsd` measure, under the export flow) is shown beside
//!   the computed one, never mixed into it;
//! - a figure is present only when all of its inputs are; the missing inputs are named;
//! - percent change = 100 · (to − from) / |from| (so a deficit that deepens from −10 to −15
//!   is a −50 % change), absent when `from` is zero;
//! - CAGR is the compound growth of the magnitude, (|to| / |from|)^(1/years) − 1, defined
//!   only when both values are non-zero with the same sign and `years > 0`.

use std::collections::BTreeSet;

use crate::model::{Country, Flow, Frequency, Kind, Measure, Period, Product, SeriesKey};
use crate::release::View;
use crate::{Error, Result, Store};

/// Exports, imports and balance of one kind of trade in one period.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Exports in US dollars, if known.
    pub exports: Option<f64>,
    /// Imports in US dollars, if known.
    pub imports: Option<f64>,
    /// Exports − imports, when both are known.
    pub balance: Option<f64>,
    /// Inputs that are missing, e.g. `GOODS IMPORT`.
    pub missing: Vec<String>,
    /// The balance as published, when a reported balance is stored for the period.
    pub reported: Option<f64>,
}

impl Figures {
    fn new(kind: &str, exports: Option<f64>, imports: Option<f64>) -> Figures {
        let mut missing = Vec::new();
        if exports.is_none() {
            missing.push(format!("{kind} EXPORT"));
        }
        if imports.is_none() {
            missing.push(format!("{kind} IMPORT"));
        }
        Figures {
            exports,
            imports,
            balance: exports.zip(imports).map(|(x, m)| x - m),
            missing,
            reported: None,
        }
    }

    fn sum(a: &Figures, b: &Figures) -> Figures {
        let add = |x: Option<f64>, y: Option<f64>| x.zip(y).map(|(x, y)| x + y);
        let exports = add(a.exports, b.exports);
        let imports = add(a.imports, b.imports);
        Figures {
            exports,
            imports,
            balance: exports.zip(imports).map(|(x, m)| x - m),
            missing: a.missing.iter().chain(&b.missing).cloned().collect(),
            // A sum of published balances is not a published figure.
            reported: None,
        }
    }
}

/// One period of a trade balance.
#[derive(Clone, Debug, PartialEq)]
pub struct BalanceRow {
    /// The period.
    pub period: Period,
    /// Merchandise.
    pub goods: Figures,
    /// Services.
    pub services: Figures,
    /// Goods plus services.
    pub total: Figures,
    /// The named releases of the figures of the period (ids, in rank order; none when every
    /// figure is of the unnamed release).
    pub releases: Vec<u32>,
}

impl BalanceRow {
    /// Whether every input of the period is present.
    pub fn complete(&self) -> bool {
        self.total.missing.is_empty()
    }
}

/// Which balance to compute.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BalanceQuery {
    /// Reporting country.
    pub reporter: Country,
    /// Partner country.
    pub partner: Country,
    /// Product code (the same for goods and services).
    pub product: Product,
    /// Frequency of the series used.
    pub frequency: Frequency,
    /// Which release's figures to use.
    pub view: View,
}

impl BalanceQuery {
    fn key(&self, kind: Kind, flow: Flow, measure: Measure) -> SeriesKey {
        SeriesKey {
            reporter: self.reporter,
            partner: self.partner,
            flow,
            kind,
            product: self.product.clone(),
            frequency: self.frequency,
            measure,
        }
    }
}

/// Balance rows for every period in `[from, to]` that has at least one input.
pub fn trade_balance(
    store: &Store,
    query: &BalanceQuery,
    from: u32,
    to: u32,
) -> Result<Vec<BalanceRow>> {
    let mut used: std::collections::BTreeMap<u32, BTreeSet<u32>> = Default::default();
    let mut read = |kind, flow, measure| -> Result<std::collections::BTreeMap<u32, f64>> {
        let key = query.key(kind, flow, measure);
        let values = store.released_values(&key, from, to, query.view)?;
        for &(ordinal, _, release) in values.iter().filter(|v| v.2 != 0) {
            used.entry(ordinal).or_default().insert(release);
        }
        Ok(values.into_iter().map(|(o, v, _)| (o, v)).collect())
    };
    let value = Measure::ValueUsd;
    let gx = read(Kind::Goods, Flow::Export, value)?;
    let gm = read(Kind::Goods, Flow::Import, value)?;
    let sx = read(Kind::Services, Flow::Export, value)?;
    let sm = read(Kind::Services, Flow::Import, value)?;
    let reported = Measure::ReportedBalanceUsd;
    let gr = read(Kind::Goods, Flow::Export, reported)?;
    let sr = read(Kind::Services, Flow::Export, reported)?;
    let tr = read(Kind::GoodsAndServices, Flow::Export, reported)?;
    let periods: BTreeSet<u32> = [&gx, &gm, &sx, &sm, &gr, &sr, &tr]
        .iter()
        .flat_map(|m| m.keys().copied())
        .collect();
    Ok(periods
        .into_iter()
        .map(|ordinal| {
            let mut goods = Figures::new(
                "GOODS",
                gx.get(&ordinal).copied(),
                gm.get(&ordinal).copied(),
            );
            goods.reported = gr.get(&ordinal).copied();
            let mut services = Figures::new(
                "SERVICES",
                sx.get(&ordinal).copied(),
                sm.get(&ordinal).copied(),
            );
            services.reported = sr.get(&ordinal).copied();
            let mut total = Figures::sum(&goods, &services);
            total.reported = tr.get(&ordinal).copied();
            let mut releases: Vec<u32> = used.remove(&ordinal).into_iter().flatten().collect();
            releases.sort_by_key(|&id| store.rank(id));
            BalanceRow {
                releases,
                period: Period {
                    frequency: query.frequency,
                    ordinal,
                },
                total,
                goods,
                services,
            }
        })
        .collect())
}

/// What a change is measured on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeTarget {
    /// A stored series.
    Series(SeriesKey),
    /// A balance; `kind` `None` is goods plus services.
    Balance(BalanceQuery, Option<Kind>),
}

impl ChangeTarget {
    /// The frequency periods must be given in.
    pub fn frequency(&self) -> Frequency {
        match self {
            ChangeTarget::Series(k) => k.frequency,
            ChangeTarget::Balance(q, _) => q.frequency,
        }
    }
}

/// The change between two values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Change {
    /// Value in the base period.
    pub from: f64,
    /// Value in the compared period.
    pub to: f64,
    /// to − from.
    pub absolute: f64,
    /// 100 · (to − from) / |from|, when from ≠ 0.
    pub percent: Option<f64>,
    /// Years between the periods.
    pub years: f64,
    /// Compound annual growth of the magnitude, as a fraction.
    pub cagr: Option<f64>,
}

impl Change {
    /// Computes the change from `from` to `to` over `years`.
    pub fn between(from: f64, to: f64, years: f64) -> Change {
        let same_sign = (from > 0.0 && to > 0.0) || (from < 0.0 && to < 0.0);
        Change {
            from,
            to,
            absolute: to - from,
            percent: (from != 0.0).then(|| 100.0 * (to - from) / from.abs()),
            years,
            cagr: (same_sign && years > 0.0)
                .then(|| (to.abs() / from.abs()).powf(1.0 / years) - 1.0),
        }
    }
}

fn value_at(store: &Store, target: &ChangeTarget, period: Period, view: View) -> Result<f64> {
    match target {
        ChangeTarget::Series(key) => store
            .values_or_empty(key, period.ordinal, period.ordinal, view)?
            .first()
            .map(|p| p.1)
            .ok_or_else(|| Error::NotFound(format!("series {key} has no value for {period}"))),
        ChangeTarget::Balance(query, kind) => {
            let query = &BalanceQuery {
                view,
                ..query.clone()
            };
            let row = trade_balance(store, query, period.ordinal, period.ordinal)?.pop();
            let figures = row.map(|r| match kind {
                Some(Kind::Goods) => r.goods,
                Some(Kind::Services) => r.services,
                Some(Kind::GoodsAndServices) | None => r.total,
            });
            let what = match kind {
                Some(Kind::GoodsAndServices) | None => "goods and services balance".to_owned(),
                Some(k) => format!("{k} balance"),
            };
            match figures {
                Some(Figures {
                    balance: Some(b), ..
                }) => Ok(b),
                Some(f) => Err(Error::NotFound(format!(
                    "the {what} of {}->{} {} for {period} is missing inputs: {}",
                    query.reporter,
                    query.partner,
                    query.product,
                    f.missing.join(", ")
                ))),
                None => Err(Error::NotFound(format!(
                    "no {what} data for {}->{} {} in {period}",
                    query.reporter, query.partner, query.product
                ))),
            }
        }
    }
}

/// The change of `target` from period `from` to period `to`.
pub fn change(
    store: &Store,
    target: &ChangeTarget,
    from: Period,
    to: Period,
    view: View,
) -> Result<Change> {
    let a = value_at(store, target, from, view)?;
    let b = value_at(store, target, to, view)?;
    Ok(Change::between(a, b, from.years_until(&to)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deficit_deepening_is_a_negative_percent_and_positive_cagr_of_magnitude() {
        // KORUS: goods balance −13.2 bn (2011) → −27.6 bn (2016).
        let c = Change::between(-13.2e9, -27.6e9, 5.0);
        assert!((c.absolute + 14.4e9).abs() < 1.0);
        assert!((c.percent.unwrap() + 109.0909).abs() < 1e-3);
        assert!((c.cagr.unwrap() - 0.15898).abs() < 1e-4);
    }

    #[test]
    fn sign_change_and_zero_have_no_cagr_or_percent() {
        assert_eq!(Change::between(-1.0, 1.0, 2.0).cagr, None);
        assert_eq!(Change::between(0.0, 1.0, 2.0).percent, None);
        assert_eq!(Change::between(1.0, 2.0, 0.0).cagr, None);
    }
}

/// A figure beside its mirror: what the reporter reported for a flow with a partner, and what
/// the partner reported for the opposite flow with the reporter (US imports from Korea beside
/// Korea's exports to the US).
#[derive(Clone, Debug, PartialEq)]
pub struct MirrorRow {
    /// The period.
    pub period: Period,
    /// The reporter's figure.
    pub reported: Option<f64>,
    /// The partner's figure for the opposite flow.
    pub mirror: Option<f64>,
    /// reported − mirror, when both are there.
    pub difference: Option<f64>,
    /// 100 · difference / mirror, when both are there and the mirror is not zero.
    pub percent: Option<f64>,
}

/// The flow the partner reports for what the reporter reports as `flow`.
pub fn mirror_flow(flow: Flow) -> Flow {
    match flow {
        Flow::Export => Flow::Import,
        Flow::Import => Flow::Export,
        Flow::ReExport => Flow::ReImport,
        Flow::ReImport => Flow::ReExport,
    }
}

/// How a flow's values are usually valued: imports at the border with insurance and freight
/// (CIF), exports free on board (FOB). A reporter may differ (the US reports imports FOB as
/// customs value); the CIF and FOB measures, where stored, say it exactly.
pub fn basis(flow: Flow) -> &'static str {
    match flow {
        Flow::Import | Flow::ReImport => "CIF (usual basis of imports)",
        Flow::Export | Flow::ReExport => "FOB (usual basis of exports)",
    }
}

/// The series the partner reports for what `key` reports.
pub fn mirror_key(key: &SeriesKey) -> SeriesKey {
    SeriesKey {
        reporter: key.partner,
        partner: key.reporter,
        flow: mirror_flow(key.flow),
        ..key.clone()
    }
}

/// `key` beside its mirror for every period in `[from, to]` where either has a value.
pub fn mirror(
    store: &Store,
    key: &SeriesKey,
    from: u32,
    to: u32,
    view: View,
) -> Result<Vec<MirrorRow>> {
    let other = mirror_key(key);
    let reported: std::collections::BTreeMap<u32, f64> = store
        .values_or_empty(key, from, to, view)?
        .into_iter()
        .collect();
    let mirrored: std::collections::BTreeMap<u32, f64> = store
        .values_or_empty(&other, from, to, view)?
        .into_iter()
        .collect();
    let periods: BTreeSet<u32> = reported.keys().chain(mirrored.keys()).copied().collect();
    Ok(periods
        .into_iter()
        .map(|ordinal| {
            let (r, m) = (
                reported.get(&ordinal).copied(),
                mirrored.get(&ordinal).copied(),
            );
            let difference = r.zip(m).map(|(r, m)| r - m);
            MirrorRow {
                period: Period {
                    frequency: key.frequency,
                    ordinal,
                },
                reported: r,
                mirror: m,
                difference,
                percent: difference
                    .zip(m)
                    .and_then(|(d, m)| (m != 0.0).then(|| 100.0 * d / m)),
            }
        })
        .collect())
}

//! Trade impact of a tariff (or tariff-equivalent) change, SMART-style partial equilibrium
//! (the World Bank's WITS/SMART model; Laird and Yeats 1986; Jammes and Olarreaga 2005), for
//! one tariff line (or one product) of one bilateral flow, with every output SMART reports.
//!
//! Notation, all tariffs as fractions and trade in US dollars at world prices (before duty):
//! `M` the importer's imports from the exporter, `M_row` its imports of the same goods from
//! everyone else; `t` the tariff on the exporter's goods before, `Δt` its change; `t_r`,
//! `Δt_r` the tariff on everyone else's (MFN) and its change (0 for a preferential change,
//! `Δt` for one that applies to all); `ε ≤ 0` the import-demand elasticity, `σ ≥ 0` the
//! elasticity of substitution between suppliers, `ε_x > 0` the export-supply elasticity
//! (infinite by default, as in SMART: world prices fixed).
//!
//! - **Pass-through** `k = ε_x / (ε_x − ε)` (1 when `ε_x` is infinite): the share of a
//!   tariff change that reaches the domestic price; the rest moves the world price.
//! - **Trade creation** `TC = M · ε · k · Δt / (1 + t)`: the change in the quantity imported
//!   from the exporter (at the old world price) as its goods get cheaper or dearer.
//! - **Price effect** `PE = M · π`, `π = (k − 1) · Δt / (1 + t) = ε / (ε_x − ε) · Δt / (1 + t)`:
//!   the change in the value of the exporter's sales from the change in its world price (zero
//!   with infinite `ε_x`; a cut raises the world price, an increase lowers it).
//! - **Trade diversion**: the exporter's price relative to everyone else's changes by
//!   `r = k · ((1 + t + Δt) / (1 + t) · (1 + t_r) / (1 + t_r + Δt_r) − 1)`, which shifts
//!   `TD = M · M_row · σ · (−r) / (M + M_row + M · σ · (−r))` from the rest of the world to the
//!   exporter (away from it when `r > 0`: a preference eroded by an MFN cut, say).
//! - **Total trade effect** on the exporter's sales `TC + TD + PE`. Diversion moves trade
//!   between suppliers; the importer's total imports change by `TC + PE` plus the rest of the
//!   world's own creation and price effect when `Δt_r ≠ 0` (`TC_r = M_row · ε · k · Δt_r /
//!   (1 + t_r)`, `PE_r = M_row · (k − 1) · Δt_r / (1 + t_r)`).
//! - **Tariff revenue** change `TR₁ − TR₀`, `TR₀ = t · M + t_r · M_row`, `TR₁ = (t + Δt) · M₁ +
//!   (t_r + Δt_r) · M_row₁`, with `M₁ = M + TC + TD + PE` and `M_row₁ = M_row + TC_r + PE_r − TD`.
//! - **Welfare** change, SMART's: the fall in the dead-weight loss of the tariff,
//!   `W = ½ · (t + (t + Δt)) · TC + ½ · (t_r + (t_r + Δt_r)) · TC_r` (for linear demand; it is
//!   SMART's `½ · t · ΔM` when a tariff is removed; negative for an increase). Terms-of-trade
//!   gains or losses are in the price effect, not here.
//! - **Consumer surplus** change `ΔCS = −Σ Δp · (Q + ½ · ΔQ)` over the exporter's and the rest
//!   of the world's goods, with `Δp = Δt + π · (1 + t + Δt)` the change in the domestic price
//!   (per dollar at the old world price) and `ΔQ` the quantity change (`TC + TD`, `TC_r − TD`).
//!
//! Bounds: the formulae are linear approximations for moderate changes. Imports cannot fall
//! below zero, so creation is bounded below by −M (and −M_row); the diversion formula changes
//! sign when a large increase drives its denominator to zero, so diversion away from the
//! exporter is bounded by what it still sells, and a fall in the world price by what is left.
//! Each bound is named in the assumptions when it applies. No trade before the change (a zero
//! baseline) gives no effect: SMART creates no trade from nothing, which the answer says.
//!
//! Seen from the reporter of the series:
//! - [`Side::Import`] (the reporter changes its barrier on imports from the partner): its
//!   bilateral imports change by the total trade effect, its total imports by
//!   `TC + PE + TC_r + PE_r`; bilateral balance −(total trade effect), overall balance
//!   −(total imports change); revenue, welfare and consumer surplus are the reporter's;
//! - [`Side::Export`] (the partner changes its barrier on the reporter's exports): the
//!   reporter's exports change by the total trade effect (diversion takes sales from third
//!   countries), so both its bilateral and its overall balance change by that much; revenue,
//!   welfare and consumer surplus are the partner's (the importer's).
//!
//! Defaults: ε = −1.0 (unit-elastic import demand, a common middle value of the estimates
//! SMART draws on), σ = 1.5 (SMART's default), ε_x infinite (SMART's default), `t_r = t` and
//! `Δt_r = 0` (the exporter paid what everyone pays, and only its tariff changes). All can be
//! set per effect.

use serde::{Deserialize, Serialize};

/// Default import-demand elasticity.
pub const DEFAULT_IMPORT_DEMAND_ELASTICITY: f64 = -1.0;
/// Default elasticity of substitution between suppliers (SMART's default).
pub const DEFAULT_SUBSTITUTION_ELASTICITY: f64 = 1.5;

/// Which side of the reporter's trade the barrier is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// The reporter changes its barrier on imports from the partner.
    Import,
    /// The partner changes its barrier on the reporter's exports.
    Export,
}

/// A barrier change on one flow (one tariff line, or one product).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// Which side of the reporter's trade it is on.
    pub side: Side,
    /// Tariff on the exporter's goods before the change, as a fraction (0.08 for 8 %).
    pub base_tariff: f64,
    /// Change of that tariff, as a fraction (−0.08 for a cut of 8 points).
    pub tariff_change: f64,
    /// Import-demand elasticity (≤ 0).
    pub import_demand_elasticity: f64,
    /// Elasticity of substitution between suppliers (≥ 0).
    pub substitution_elasticity: f64,
    /// Export-supply elasticity (> 0); `None`: infinite (world prices fixed).
    pub export_supply_elasticity: Option<f64>,
    /// Tariff on everyone else's goods before the change; `None`: the same as `base_tariff`.
    pub rest_of_world_base_tariff: Option<f64>,
    /// Change of the tariff on everyone else's goods (0: a preferential change).
    pub rest_of_world_tariff_change: f64,
}

impl Effect {
    /// A change of the exporter's tariff only, with the default elasticities.
    pub fn preferential(side: Side, base_tariff: f64, tariff_change: f64) -> Effect {
        Effect {
            side,
            base_tariff,
            tariff_change,
            import_demand_elasticity: DEFAULT_IMPORT_DEMAND_ELASTICITY,
            substitution_elasticity: DEFAULT_SUBSTITUTION_ELASTICITY,
            export_supply_elasticity: None,
            rest_of_world_base_tariff: None,
            rest_of_world_tariff_change: 0.0,
        }
    }
}

/// Baseline trade the effect applies to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baseline {
    /// Bilateral imports of the importing country from the exporting one (US dollars).
    pub bilateral: f64,
    /// The importing country's imports from everyone else; `None` when unknown (no diversion
    /// and no rest-of-world effect is computed then).
    pub rest_of_world: Option<f64>,
}

/// What the effect does, in US dollars, seen from the reporter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Impact {
    /// Trade creation `TC`.
    pub creation: f64,
    /// Trade diversion towards the exporter (negative: away from it).
    pub diversion: f64,
    /// Price effect `PE` on the exporter's sales (zero with infinite export supply).
    pub price_effect: f64,
    /// Total trade effect on the exporter's sales: `TC + TD + PE`.
    pub total_trade_effect: f64,
    /// Trade creation with the rest of the world (an MFN change).
    pub rest_of_world_creation: f64,
    /// Price effect on the rest of the world's sales (an MFN change, finite export supply).
    pub rest_of_world_price_effect: f64,
    /// Change in the importer's tariff revenue.
    pub tariff_revenue_change: f64,
    /// Change in the importer's consumer surplus.
    pub consumer_surplus_change: f64,
    /// Change in the importer's welfare (the fall in the tariff's dead-weight loss).
    pub welfare_change: f64,
    /// Change in the reporter's exports to the partner.
    pub exports_change: f64,
    /// Change in the reporter's imports from the partner.
    pub imports_change: f64,
    /// Change in the reporter's bilateral balance with the partner.
    pub bilateral_balance_change: f64,
    /// Change in the reporter's overall balance.
    pub overall_balance_change: f64,
    /// The formulae and values used, in words.
    pub assumptions: Vec<String>,
}

/// The sum of several impacts (the lines of an option, the options of a package).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    /// Trade creation.
    pub creation: f64,
    /// Trade diversion.
    pub diversion: f64,
    /// Price effect.
    pub price_effect: f64,
    /// Total trade effect.
    pub total_trade_effect: f64,
    /// Tariff revenue change.
    pub tariff_revenue_change: f64,
    /// Consumer surplus change.
    pub consumer_surplus_change: f64,
    /// Welfare change.
    pub welfare_change: f64,
    /// Exports change.
    pub exports_change: f64,
    /// Imports change.
    pub imports_change: f64,
    /// Bilateral balance change.
    pub bilateral_balance_change: f64,
    /// Overall balance change.
    pub overall_balance_change: f64,
}

impl Totals {
    /// Adds `i`.
    pub fn add(&mut self, i: &Impact) {
        self.creation += i.creation;
        self.diversion += i.diversion;
        self.price_effect += i.price_effect;
        self.total_trade_effect += i.total_trade_effect;
        self.tariff_revenue_change += i.tariff_revenue_change;
        self.consumer_surplus_change += i.consumer_surplus_change;
        self.welfare_change += i.welfare_change;
        self.exports_change += i.exports_change;
        self.imports_change += i.imports_change;
        self.bilateral_balance_change += i.bilateral_balance_change;
        self.overall_balance_change += i.overall_balance_change;
    }

    /// The sum of `impacts`.
    pub fn of<'a>(impacts: impl IntoIterator<Item = &'a Impact>) -> Totals {
        let mut t = Totals::default();
        for i in impacts {
            t.add(i);
        }
        t
    }
}

/// Invalid model inputs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {description}")]
pub struct Error {
    /// The offending input.
    pub field: &'static str,
    /// What is wrong.
    pub description: String,
}

fn check(ok: bool, field: &'static str, description: impl FnOnce() -> String) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error {
            field,
            description: description(),
        })
    }
}

/// Checks a tariff and its change.
fn check_tariff(
    base: f64,
    change: f64,
    base_field: &'static str,
    change_field: &'static str,
) -> Result<(), Error> {
    check(base.is_finite() && base >= 0.0, base_field, || {
        format!("must be a finite, non-negative rate, got {base}")
    })?;
    check(change.is_finite(), change_field, || {
        format!("must be finite, got {change}")
    })?;
    check(base + change >= -1e-12, change_field, || {
        format!("would take the tariff below zero ({base} + {change})")
    })
}

/// Checks an effect's parameters.
pub fn validate(e: &Effect) -> Result<(), Error> {
    check_tariff(
        e.base_tariff,
        e.tariff_change,
        "base_tariff",
        "tariff_change",
    )?;
    check_tariff(
        e.rest_of_world_base_tariff.unwrap_or(e.base_tariff),
        e.rest_of_world_tariff_change,
        "rest_of_world_base_tariff",
        "rest_of_world_tariff_change",
    )?;
    check(
        e.import_demand_elasticity.is_finite() && e.import_demand_elasticity <= 0.0,
        "import_demand_elasticity",
        || {
            format!(
                "must be zero or negative, got {}",
                e.import_demand_elasticity
            )
        },
    )?;
    check(
        e.substitution_elasticity.is_finite() && e.substitution_elasticity >= 0.0,
        "substitution_elasticity",
        || {
            format!(
                "must be zero or positive, got {}",
                e.substitution_elasticity
            )
        },
    )?;
    check(
        e.export_supply_elasticity
            .is_none_or(|x| x.is_finite() && x > 0.0),
        "export_supply_elasticity",
        || {
            format!(
                "must be positive (unset: infinite), got {:?}",
                e.export_supply_elasticity
            )
        },
    )
}

/// Estimates the impact of `effect` on `baseline`.
pub fn estimate(effect: &Effect, baseline: Baseline) -> Result<Impact, Error> {
    validate(effect)?;
    let finite = |v: f64| v.is_finite() && v >= 0.0;
    check(finite(baseline.bilateral), "baseline", || {
        format!(
            "bilateral trade must be finite and non-negative, got {}",
            baseline.bilateral
        )
    })?;
    check(
        baseline.rest_of_world.is_none_or(finite),
        "baseline",
        || {
            format!(
                "rest-of-world trade must be finite and non-negative, got {:?}",
                baseline.rest_of_world
            )
        },
    )?;
    let m = baseline.bilateral;
    let (t, dt) = (effect.base_tariff, effect.tariff_change);
    let t_r = effect.rest_of_world_base_tariff.unwrap_or(t);
    let dt_r = effect.rest_of_world_tariff_change;
    let (eps, sigma) = (
        effect.import_demand_elasticity,
        effect.substitution_elasticity,
    );
    let mut assumptions = Vec::new();
    let k = match effect.export_supply_elasticity {
        None => 1.0,
        Some(x) => {
            let k = x / (x - eps);
            assumptions.push(format!(
                "export supply elasticity ε_x = {x}: pass-through k = ε_x / (ε_x − ε) = {k:.6}; the rest moves world prices (price effect)"
            ));
            k
        }
    };
    if m == 0.0 {
        assumptions.push(
            "no trade from the exporter before the change: the model creates none from nothing (SMART's limit), so its effects are zero"
                .to_owned(),
        );
    }

    // The exporter's goods.
    let linear_creation = m * eps * k * dt / (1.0 + t);
    let creation = linear_creation.max(-m);
    assumptions.push(format!(
        "trade creation = M · ε · k · Δt / (1 + t) = {m:.0} · {eps} · {k:.6} · {dt} / (1 + {t}) = {linear_creation:.0}"
    ));
    if creation != linear_creation {
        assumptions.push(format!(
            "trade creation bounded at −M = {creation:.0}: imports cannot fall below zero"
        ));
    }
    let pi = (k - 1.0) * dt / (1.0 + t);
    let linear_price_effect = m * pi;
    let price_effect = linear_price_effect.max(-(m + creation));
    if k != 1.0 {
        assumptions.push(format!(
            "price effect = M · (k − 1) · Δt / (1 + t) = {linear_price_effect:.0} (world price change {:.4} %)",
            pi * 100.0
        ));
    }

    // Everyone else's goods: their own creation and price effect when their tariff changes.
    let row = baseline.rest_of_world.unwrap_or(0.0);
    let pi_r = (k - 1.0) * dt_r / (1.0 + t_r);
    let (row_creation, row_price_effect) = if dt_r != 0.0 && baseline.rest_of_world.is_some() {
        let c = (row * eps * k * dt_r / (1.0 + t_r)).max(-row);
        let p = (row * pi_r).max(-(row + c));
        assumptions.push(format!(
            "the change applies to everyone else too (t_r = {t_r}, Δt_r = {dt_r}): rest-of-world creation = M_row · ε · k · Δt_r / (1 + t_r) = {c:.0}, price effect {p:.0}"
        ));
        (c, p)
    } else {
        (0.0, 0.0)
    };

    // Diversion between the exporter and everyone else.
    let r = k * ((1.0 + t + dt) / (1.0 + t) * (1.0 + t_r) / (1.0 + t_r + dt_r) - 1.0);
    let diversion = match baseline.rest_of_world {
        Some(row) if row > 0.0 && m > 0.0 && r != 0.0 => {
            let denominator = m + row + m * sigma * (-r);
            // The linear SMART formula is meant for moderate changes: past the point where its
            // denominator vanishes (a large increase) it would change sign. Diversion away from
            // the exporter is bounded by what it still sells after creation and price effect;
            // diversion towards it by what everyone else still sells.
            let formula = if denominator > 0.0 {
                m * row * sigma * (-r) / denominator
            } else {
                f64::NEG_INFINITY
            };
            let d = formula
                .max(-(m + creation + price_effect))
                .min(row + row_creation + row_price_effect);
            assumptions.push(format!(
                "trade diversion = M · M_row · σ · (−r) / (M + M_row + M · σ · (−r)), r = k · ((1 + t + Δt) / (1 + t) · (1 + t_r) / (1 + t_r + Δt_r) − 1) = {r:.6}, M_row = {row:.0}, σ = {sigma}: {d:.0}"
            ));
            if d != formula {
                assumptions.push(
                    "trade diversion bounded by what the losing suppliers still sell (a change too large for the linear formula)"
                        .to_owned(),
                );
            }
            d
        }
        Some(_) => {
            if m > 0.0 && r != 0.0 {
                assumptions.push("no trade diversion: no rest-of-world trade to shift".to_owned());
            }
            0.0
        }
        None => {
            assumptions.push(
                "no trade diversion or rest-of-world effect computed: the importer's imports from the world are not in the data"
                    .to_owned(),
            );
            0.0
        }
    };
    let total_trade_effect = creation + diversion + price_effect;

    // Revenue, welfare and consumer surplus of the importer.
    let m1 = m + total_trade_effect;
    let row1 = row + row_creation + row_price_effect - diversion;
    let revenue_before = t * m + t_r * row;
    let revenue_after = (t + dt) * m1 + (t_r + dt_r) * row1;
    let tariff_revenue_change = revenue_after - revenue_before;
    let welfare_change = 0.5 * (2.0 * t + dt) * creation + 0.5 * (2.0 * t_r + dt_r) * row_creation;
    let price_change = dt + pi * (1.0 + t + dt);
    let row_price_change = dt_r + pi_r * (1.0 + t_r + dt_r);
    let consumer_surplus_change = -price_change * (m + 0.5 * (creation + diversion))
        - row_price_change * (row + 0.5 * (row_creation - diversion));
    assumptions.push(format!(
        "tariff revenue {revenue_before:.0} → {revenue_after:.0}; welfare = ½ · (t₀ + t₁) · TC (+ the same for the rest of the world) = {welfare_change:.0}; consumer surplus = −Σ Δp · (Q + ½ · ΔQ) = {consumer_surplus_change:.0}"
    ));

    let imports_total = creation + price_effect + row_creation + row_price_effect;
    let impact = Impact {
        creation,
        diversion,
        price_effect,
        total_trade_effect,
        rest_of_world_creation: row_creation,
        rest_of_world_price_effect: row_price_effect,
        tariff_revenue_change,
        consumer_surplus_change,
        welfare_change,
        assumptions,
        ..Impact::default()
    };
    Ok(match effect.side {
        Side::Import => Impact {
            imports_change: total_trade_effect,
            bilateral_balance_change: -total_trade_effect,
            overall_balance_change: -imports_total,
            ..impact
        },
        Side::Export => Impact {
            exports_change: total_trade_effect,
            bilateral_balance_change: total_trade_effect,
            overall_balance_change: total_trade_effect,
            ..impact
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn effect(side: Side, t: f64, dt: f64) -> Effect {
        Effect::preferential(side, t, dt)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-3
    }

    fn with_row(m: f64, row: f64) -> Baseline {
        Baseline {
            bilateral: m,
            rest_of_world: Some(row),
        }
    }

    #[test]
    fn a_preferential_cut_by_hand() {
        // M = 1000, M_row = 4000, t = t_r = 8 %, the exporter's cut to 0: r = −0.08 / 1.08.
        // TC = 1000 · (−1) · (−0.08) / 1.08 = 74.074
        // TD = 1000 · 4000 · 1.5 · 0.074074 / (5000 + 1000 · 1.5 · 0.074074) = 86.957
        // TR: 0.08 · 1000 + 0.08 · 4000 = 400 → 0 · 1161.031 + 0.08 · 3913.043 = 313.043
        // W = ½ · (0.08 + 0) · 74.074 = 2.963
        // CS = 0.08 · (1000 + ½ · 161.031) = 86.441 (the rest of the world's price is unchanged)
        let i = estimate(&effect(Side::Import, 0.08, -0.08), with_row(1000.0, 4000.0)).unwrap();
        assert!(close(i.creation, 74.074_074), "{i:?}");
        assert!(close(i.diversion, 86.956_522), "{i:?}");
        assert_eq!(i.price_effect, 0.0);
        assert!(close(i.total_trade_effect, 161.030_596));
        assert!(close(i.imports_change, 161.030_596));
        assert!(close(i.bilateral_balance_change, -161.030_596));
        assert!(close(i.overall_balance_change, -74.074_074));
        assert!(close(i.tariff_revenue_change, 313.043_478 - 400.0), "{i:?}");
        assert!(close(i.welfare_change, 2.962_963), "{i:?}");
        assert!(close(i.consumer_surplus_change, 86.441_224), "{i:?}");
        // The bilateral balance moves more than the overall one.
        assert!(i.bilateral_balance_change.abs() > i.overall_balance_change.abs());
    }

    #[test]
    fn a_tariff_increase_by_hand() {
        // The light-truck case: 0 → 25 % on the exporter only, t_r = 0, M = 1000, M_row = 4000.
        // TC = 1000 · (−1) · 0.25 / 1 = −250; r = 0.25
        // TD = 1000 · 4000 · 1.5 · (−0.25) / (5000 − 375) = −324.324
        // TR: 0 → 0.25 · (1000 − 250 − 324.324) = 106.419
        // W = ½ · (0 + 0.25) · (−250) = −31.25
        // CS = −0.25 · (1000 + ½ · (−574.324)) = −178.209
        let i = estimate(&effect(Side::Import, 0.0, 0.25), with_row(1000.0, 4000.0)).unwrap();
        assert!(close(i.creation, -250.0), "{i:?}");
        assert!(close(i.diversion, -324.324_324), "{i:?}");
        assert!(close(i.tariff_revenue_change, 106.418_919), "{i:?}");
        assert!(close(i.welfare_change, -31.25), "{i:?}");
        assert!(close(i.consumer_surplus_change, -178.209_459), "{i:?}");
        assert!(close(i.overall_balance_change, 250.0));
    }

    #[test]
    fn preference_erosion_by_hand() {
        // The exporter keeps its 0 % preference; the MFN rate on everyone else falls 2.5 % → 0.
        // TC = 0; r = (1 / 1) · (1.025 / 1) − 1 = 0.025
        // TD = 1000 · 4000 · 1.5 · (−0.025) / (5000 − 37.5) = −30.227 (away from the exporter)
        // TC_r = 4000 · (−1) · (−0.025) / 1.025 = 97.561
        // TR: 0 · 1000 + 0.025 · 4000 = 100 → 0; W = ½ · 0.025 · 97.561 = 1.220
        // CS = 0.025 · (4000 + ½ · (97.561 + 30.227)) = 101.597
        let e = Effect {
            rest_of_world_base_tariff: Some(0.025),
            rest_of_world_tariff_change: -0.025,
            ..effect(Side::Import, 0.0, 0.0)
        };
        let i = estimate(&e, with_row(1000.0, 4000.0)).unwrap();
        assert_eq!(i.creation, 0.0);
        assert!(close(i.diversion, -30.226_700), "{i:?}");
        assert!(close(i.rest_of_world_creation, 97.560_976), "{i:?}");
        assert!(close(i.imports_change, -30.226_700));
        // The bilateral balance improves while the overall balance worsens.
        assert!(close(i.bilateral_balance_change, 30.226_700));
        assert!(close(i.overall_balance_change, -97.560_976));
        assert!(close(i.tariff_revenue_change, -100.0), "{i:?}");
        assert!(close(i.welfare_change, 1.219_512), "{i:?}");
        assert!(close(i.consumer_surplus_change, 101.597_35), "{i:?}");
    }

    #[test]
    fn a_zero_baseline_has_no_effect_and_says_why() {
        // Nothing imported from the exporter (a prohibitive tariff, say): cutting it creates
        // nothing in SMART, diverts nothing; the rest of the world keeps its revenue.
        let i = estimate(&effect(Side::Import, 0.25, -0.25), with_row(0.0, 4000.0)).unwrap();
        assert_eq!(
            (
                i.creation,
                i.diversion,
                i.total_trade_effect,
                i.welfare_change
            ),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert!(close(i.tariff_revenue_change, 0.0));
        assert!(i
            .assumptions
            .iter()
            .any(|a| a.contains("creates none from nothing")));
    }

    #[test]
    fn a_finite_export_supply_moves_world_prices_by_hand() {
        // ε_x = 2, ε = −1: k = 2 / 3. M = 1000, t = 10 %, cut to 0, no rest-of-world data.
        // TC = 1000 · (−1) · (2/3) · (−0.1) / 1.1 = 60.606
        // π = (−1/3) · (−0.1) / 1.1 = 0.030303: PE = 30.303, total 90.909
        // TR: 100 → 0; W = ½ · 0.1 · 60.606 = 3.030
        // Δp = −0.1 + 0.030303 · 1.0 = −0.069697: CS = 0.069697 · (1000 + ½ · 60.606) = 71.809
        let e = Effect {
            export_supply_elasticity: Some(2.0),
            ..effect(Side::Import, 0.1, -0.1)
        };
        let i = estimate(
            &e,
            Baseline {
                bilateral: 1000.0,
                rest_of_world: None,
            },
        )
        .unwrap();
        assert!(close(i.creation, 60.606_061), "{i:?}");
        assert!(close(i.price_effect, 30.303_030), "{i:?}");
        assert!(close(i.total_trade_effect, 90.909_091));
        assert!(close(i.tariff_revenue_change, -100.0), "{i:?}");
        assert!(close(i.welfare_change, 3.030_303), "{i:?}");
        assert!(close(i.consumer_surplus_change, 71.808_999), "{i:?}");
        // Infinite supply elasticity is the limit: a very large one gives SMART's default.
        let large = Effect {
            export_supply_elasticity: Some(1e12),
            ..e.clone()
        };
        let limit = estimate(
            &large,
            Baseline {
                bilateral: 1000.0,
                rest_of_world: None,
            },
        )
        .unwrap();
        assert!(close(limit.creation, 90.909_091) && limit.price_effect.abs() < 1e-6);
    }

    #[test]
    fn a_barrier_abroad_on_exports_moves_exports_and_both_balances() {
        // A 25-point tariff abroad: creation = 1000 · (−1) · 0.25 / 1 = −250.
        let i = estimate(
            &effect(Side::Export, 0.0, 0.25),
            Baseline {
                bilateral: 1000.0,
                rest_of_world: None,
            },
        )
        .unwrap();
        assert!((i.creation + 250.0).abs() < 1e-9);
        assert_eq!(i.diversion, 0.0);
        assert_eq!(i.exports_change, i.creation);
        assert_eq!(i.bilateral_balance_change, i.overall_balance_change);
        assert!(i.assumptions.iter().any(|a| a.contains("not in the data")));
        // The revenue is the partner's: 25 % of what it still imports.
        assert!(close(i.tariff_revenue_change, 0.25 * 750.0));
    }

    #[test]
    fn invalid_parameters_are_refused() {
        let bad = |e: Effect| {
            estimate(
                &e,
                Baseline {
                    bilateral: 1.0,
                    rest_of_world: None,
                },
            )
            .unwrap_err()
            .field
        };
        assert_eq!(bad(effect(Side::Import, -0.1, 0.0)), "base_tariff");
        assert_eq!(bad(effect(Side::Import, 0.05, -0.1)), "tariff_change");
        assert_eq!(
            bad(Effect {
                import_demand_elasticity: 1.0,
                ..effect(Side::Import, 0.0, 0.1)
            }),
            "import_demand_elasticity"
        );
        assert_eq!(
            bad(Effect {
                substitution_elasticity: f64::NAN,
                ..effect(Side::Import, 0.0, 0.1)
            }),
            "substitution_elasticity"
        );
        assert_eq!(
            bad(Effect {
                export_supply_elasticity: Some(0.0),
                ..effect(Side::Import, 0.0, 0.1)
            }),
            "export_supply_elasticity"
        );
        assert_eq!(
            bad(Effect {
                rest_of_world_base_tariff: Some(0.02),
                rest_of_world_tariff_change: -0.05,
                ..effect(Side::Import, 0.0, 0.0)
            }),
            "rest_of_world_tariff_change"
        );
    }

    fn any_effect() -> impl Strategy<Value = (Effect, Baseline)> {
        (
            (0.0f64..1e12, proptest::option::of(0.0f64..1e12)),
            (
                0.0f64..1.0,
                0.0f64..3.0,
                proptest::option::of(0.0f64..1.0),
                any::<bool>(),
            ),
            (
                -3.0f64..=0.0,
                0.0f64..5.0,
                proptest::option::of(0.05f64..20.0),
            ),
            any::<bool>(),
        )
            .prop_map(
                |((m, row), (t, new_t, t_r, mfn), (eps, sigma, x), import)| {
                    let dt = new_t - t;
                    let t_r_base = t_r.unwrap_or(t);
                    let e = Effect {
                        side: if import { Side::Import } else { Side::Export },
                        base_tariff: t,
                        tariff_change: dt,
                        import_demand_elasticity: eps,
                        substitution_elasticity: sigma,
                        export_supply_elasticity: x,
                        rest_of_world_base_tariff: t_r,
                        // An MFN change moves everyone else's tariff to the same new rate.
                        rest_of_world_tariff_change: if mfn { new_t - t_r_base } else { 0.0 },
                    };
                    (
                        e,
                        Baseline {
                            bilateral: m,
                            rest_of_world: row,
                        },
                    )
                },
            )
    }

    proptest! {
        #[test]
        fn diversion_never_exceeds_what_can_move_and_signs_follow_the_change(
            m in 0.0f64..1e12, row in 0.0f64..1e12, t in 0.0f64..1.0, new_t in 0.0f64..3.0,
            eps in -3.0f64..=0.0, sigma in 0.0f64..5.0,
        ) {
            let dt = new_t - t;
            let e = Effect { import_demand_elasticity: eps, substitution_elasticity: sigma, ..effect(Side::Import, t, dt) };
            let i = estimate(&e, with_row(m, row)).unwrap();
            // Imports fall when the tariff rises, and rise when it falls.
            prop_assert!(i.creation * dt <= 0.0);
            prop_assert!(i.diversion * dt <= 0.0);
            // A cut cannot divert more than the rest of the world sells, and the exporter
            // cannot end up selling less than nothing.
            if dt < 0.0 { prop_assert!(i.diversion <= row + 1e-6); }
            prop_assert!(m + i.creation + i.diversion >= -1e-6 * m.max(1.0));
            prop_assert!(i.diversion.is_finite() && i.creation.is_finite());
            // The exporter's tariff alone: a cut raises welfare and consumer surplus.
            if dt < 0.0 { prop_assert!(i.welfare_change >= 0.0 && i.consumer_surplus_change >= -1e-6); }
        }

        #[test]
        fn every_output_is_finite_no_import_goes_negative_and_totals_add_up(
            lines in proptest::collection::vec(any_effect(), 1..8),
        ) {
            let impacts: Vec<Impact> = lines.iter().map(|(e, b)| estimate(e, *b).unwrap()).collect();
            for ((_, b), i) in lines.iter().zip(&impacts) {
                for v in [i.creation, i.diversion, i.price_effect, i.tariff_revenue_change,
                          i.consumer_surplus_change, i.welfare_change, i.overall_balance_change] {
                    prop_assert!(v.is_finite(), "{i:?}");
                }
                let scale = b.bilateral.max(b.rest_of_world.unwrap_or(0.0)).max(1.0);
                prop_assert!(b.bilateral + i.total_trade_effect >= -1e-9 * scale, "{i:?}");
                let row = b.rest_of_world.unwrap_or(0.0);
                prop_assert!(row + i.rest_of_world_creation + i.rest_of_world_price_effect - i.diversion >= -1e-6 * scale, "{i:?}");
            }
            // The totals of a package are the sums of its lines, output by output.
            let totals = Totals::of(&impacts);
            let sum = |f: fn(&Impact) -> f64| impacts.iter().map(f).sum::<f64>();
            prop_assert_eq!(totals.creation, sum(|i| i.creation));
            prop_assert_eq!(totals.diversion, sum(|i| i.diversion));
            prop_assert_eq!(totals.price_effect, sum(|i| i.price_effect));
            prop_assert_eq!(totals.total_trade_effect, sum(|i| i.total_trade_effect));
            prop_assert_eq!(totals.tariff_revenue_change, sum(|i| i.tariff_revenue_change));
            prop_assert_eq!(totals.consumer_surplus_change, sum(|i| i.consumer_surplus_change));
            prop_assert_eq!(totals.welfare_change, sum(|i| i.welfare_change));
            prop_assert_eq!(totals.bilateral_balance_change, sum(|i| i.bilateral_balance_change));
            prop_assert_eq!(totals.overall_balance_change, sum(|i| i.overall_balance_change));
        }
    }
}

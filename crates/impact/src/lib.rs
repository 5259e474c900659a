//! Trade impact of a tariff (or tariff-equivalent) change, SMART-style partial equilibrium
//! (the World Bank's WITS/SMART model; Laird and Yeats 1986), for one bilateral flow.
//!
//! With `M` the importer's imports from the exporter before the change, `t` the tariff
//! before, `Δt` its change (both as fractions), `ε` the import-demand elasticity (negative)
//! and `σ` the elasticity of substitution between suppliers:
//! - **trade creation** ΔM_c = M · ε · Δt / (1 + t): cheaper imports are bought more;
//! - **trade diversion**: the exporter's price relative to other suppliers changes by
//!   r = Δt / (1 + t), which shifts D = M · M_row · σ · (−r) / (M + M_row + M · σ · (−r))
//!   from the rest of the world `M_row` to the exporter (from the exporter when r > 0).
//!   Diversion moves trade between suppliers: the importer's total imports change only by
//!   the creation.
//!
//! Bounds: the formulae are linear approximations for moderate changes. Imports cannot fall
//! below zero, so creation is bounded below by −M; and the diversion formula changes sign
//! when a large increase drives its denominator to zero, so diversion away from the exporter
//! is bounded by what it still sells. Either bound is named in the assumptions when it applies.
//!
//! Seen from the reporter of the series:
//! - [`Side::Import`] (the reporter changes its barrier on imports from the partner): its
//!   bilateral imports change by creation + diversion, its total imports by the creation;
//!   bilateral balance −(creation + diversion), overall balance −creation;
//! - [`Side::Export`] (the partner changes its barrier on the reporter's goods): the
//!   reporter's exports change by creation + diversion (diversion takes sales from third
//!   countries), so both its bilateral and its overall balance change by that much.
//!
//! Defaults: ε = −1.0 (unit-elastic import demand, a common middle value of the estimates
//! SMART draws on), σ = 1.5 (SMART's default). Both can be set per effect.

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

/// A barrier change on one flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// Which side of the reporter's trade it is on.
    pub side: Side,
    /// Tariff before the change, as a fraction (0.08 for 8 %).
    pub base_tariff: f64,
    /// Change of the tariff, as a fraction (−0.08 for a cut of 8 points).
    pub tariff_change: f64,
    /// Import-demand elasticity (≤ 0).
    pub import_demand_elasticity: f64,
    /// Elasticity of substitution between suppliers (≥ 0).
    pub substitution_elasticity: f64,
}

/// Baseline trade the effect applies to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baseline {
    /// Bilateral imports of the importing country from the exporting one (US dollars).
    pub bilateral: f64,
    /// The importing country's imports from everyone else; `None` when unknown (no diversion
    /// is computed then).
    pub rest_of_world: Option<f64>,
}

/// What the effect does, in US dollars, seen from the reporter.
#[derive(Clone, Debug, PartialEq)]
pub struct Impact {
    /// Trade creation ΔM_c.
    pub creation: f64,
    /// Trade diversion towards the exporter (negative: away from it).
    pub diversion: f64,
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

/// Checks an effect's parameters.
pub fn validate(e: &Effect) -> Result<(), Error> {
    check(
        e.base_tariff.is_finite() && e.base_tariff >= 0.0,
        "base_tariff",
        || format!("must be a finite, non-negative rate, got {}", e.base_tariff),
    )?;
    check(e.tariff_change.is_finite(), "tariff_change", || {
        format!("must be finite, got {}", e.tariff_change)
    })?;
    check(
        e.base_tariff + e.tariff_change >= -1e-12,
        "tariff_change",
        || {
            format!(
                "would take the tariff below zero ({} + {})",
                e.base_tariff, e.tariff_change
            )
        },
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
    )
}

/// Estimates the impact of `effect` on `baseline`.
pub fn estimate(effect: &Effect, baseline: Baseline) -> Result<Impact, Error> {
    validate(effect)?;
    check(
        baseline.bilateral.is_finite() && baseline.bilateral >= 0.0,
        "baseline",
        || {
            format!(
                "bilateral trade must be finite and non-negative, got {}",
                baseline.bilateral
            )
        },
    )?;
    let m = baseline.bilateral;
    let (t, dt) = (effect.base_tariff, effect.tariff_change);
    let (eps, sigma) = (
        effect.import_demand_elasticity,
        effect.substitution_elasticity,
    );
    let linear_creation = m * eps * dt / (1.0 + t);
    // Imports cannot fall below zero: a large increase with a high elasticity saturates.
    let creation = linear_creation.max(-m);
    let r = dt / (1.0 + t);
    let mut assumptions = vec![format!(
        "trade creation = M · ε · Δt / (1 + t) = {m:.0} · {eps} · {dt} / (1 + {t}) = {linear_creation:.0}"
    )];
    if creation != linear_creation {
        assumptions.push(format!(
            "trade creation bounded at −M = {creation:.0}: imports cannot fall below zero"
        ));
    }
    let diversion = match baseline.rest_of_world {
        Some(row) if row > 0.0 && m > 0.0 => {
            let denominator = m + row + m * sigma * (-r);
            // The linear SMART formula is meant for moderate changes: past the point where its
            // denominator vanishes (a large increase) it would change sign. Diversion away from
            // the exporter is bounded by what it still sells after the creation effect.
            let formula = if denominator > 0.0 {
                m * row * sigma * (-r) / denominator
            } else {
                f64::NEG_INFINITY
            };
            let d = formula.max(-(m + creation));
            assumptions.push(format!(
                "trade diversion = M · M_row · σ · (−r) / (M + M_row + M · σ · (−r)), r = Δt / (1 + t) = {r:.6}, M_row = {row:.0}, σ = {sigma}: {d:.0}"
            ));
            if d != formula {
                assumptions.push(
                    "trade diversion bounded by the exporter's remaining sales (a change too large for the linear formula)"
                        .to_owned(),
                );
            }
            d
        }
        Some(_) => {
            assumptions.push(
                "no trade diversion: no bilateral or rest-of-world trade to shift".to_owned(),
            );
            0.0
        }
        None => {
            assumptions.push(
                "no trade diversion computed: the importer's imports from the world are not in the data"
                    .to_owned(),
            );
            0.0
        }
    };
    let bilateral = creation + diversion;
    let impact = match effect.side {
        Side::Import => Impact {
            creation,
            diversion,
            exports_change: 0.0,
            imports_change: bilateral,
            bilateral_balance_change: -bilateral,
            overall_balance_change: -creation,
            assumptions,
        },
        Side::Export => Impact {
            creation,
            diversion,
            exports_change: bilateral,
            imports_change: 0.0,
            bilateral_balance_change: bilateral,
            overall_balance_change: bilateral,
            assumptions,
        },
    };
    Ok(impact)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn effect(side: Side, t: f64, dt: f64) -> Effect {
        Effect {
            side,
            base_tariff: t,
            tariff_change: dt,
            import_demand_elasticity: DEFAULT_IMPORT_DEMAND_ELASTICITY,
            substitution_elasticity: DEFAULT_SUBSTITUTION_ELASTICITY,
        }
    }

    #[test]
    fn a_tariff_cut_creates_and_diverts_trade_by_hand() {
        // M = 1000, M_row = 4000, t = 8 %, cut to 0: r = −0.08 / 1.08 = −0.074074.
        // creation = 1000 · (−1) · (−0.08) / 1.08 = 74.074
        // diversion = 1000 · 4000 · 1.5 · 0.074074 / (5000 + 1000 · 1.5 · 0.074074)
        //           = 444444.4 / 5111.11 = 86.957
        let i = estimate(
            &effect(Side::Import, 0.08, -0.08),
            Baseline {
                bilateral: 1000.0,
                rest_of_world: Some(4000.0),
            },
        )
        .unwrap();
        assert!((i.creation - 74.074_074).abs() < 1e-3, "{i:?}");
        assert!((i.diversion - 86.956_522).abs() < 1e-3, "{i:?}");
        assert!((i.imports_change - 161.030_596).abs() < 1e-3);
        assert!((i.bilateral_balance_change + 161.030_596).abs() < 1e-3);
        assert!((i.overall_balance_change + 74.074_074).abs() < 1e-3);
        // The bilateral balance moves more than the overall one.
        assert!(i.bilateral_balance_change.abs() > i.overall_balance_change.abs());
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
    }

    proptest! {
        #[test]
        fn diversion_never_exceeds_what_can_move_and_signs_follow_the_change(
            m in 0.0f64..1e12, row in 0.0f64..1e12, t in 0.0f64..1.0, new_t in 0.0f64..3.0,
            eps in -3.0f64..=0.0, sigma in 0.0f64..5.0,
        ) {
            let dt = new_t - t;
            let e = Effect { import_demand_elasticity: eps, substitution_elasticity: sigma, ..effect(Side::Import, t, dt) };
            let i = estimate(&e, Baseline { bilateral: m, rest_of_world: Some(row) }).unwrap();
            // Imports fall when the tariff rises, and rise when it falls.
            prop_assert!(i.creation * dt <= 0.0);
            prop_assert!(i.diversion * dt <= 0.0);
            // A cut cannot divert more than the rest of the world sells, and the exporter
            // cannot end up selling less than nothing.
            if dt < 0.0 { prop_assert!(i.diversion <= row + 1e-6); }
            prop_assert!(m + i.creation + i.diversion >= -1e-6 * m.max(1.0));
            prop_assert!(i.diversion.is_finite() && i.creation.is_finite());
        }
    }
}

//! Positions: a party's private evaluation of the outcome space, and its utility.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::space::{OutcomeSpace, Package};
use crate::{Error, Result};

/// Fixed-point scale of utilities: 1.0 is `SCALE` units. Utilities are compared as integers,
/// so sums do not depend on the order of additions (see the crate docs on ties).
pub const SCALE: f64 = 1e9;

/// A position as a caller states it: weights and option values by id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PositionSpec {
    /// Weight per issue id; non-negative, normalised to sum 1. Missing issues weigh 0.
    pub weights: HashMap<String, f64>,
    /// Value in [0, 1] per issue id and option id. Every option of every weighted issue needs one.
    pub values: HashMap<String, HashMap<String, f64>>,
    /// Utility of no agreement (BATNA), in [0, 1].
    pub reservation: f64,
}

/// A validated position: weights normalised to sum 1, one value per option, reservation value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Position {
    weights: Vec<f64>,
    values: Vec<Vec<f64>>,
    reservation: f64,
    /// `round(weight · value · SCALE)` per issue and option.
    contributions: Vec<Vec<i64>>,
}

fn unit(v: f64) -> bool {
    v.is_finite() && (0.0..=1.0).contains(&v)
}

impl Position {
    /// Validates `spec` against `space`.
    pub fn new(space: &OutcomeSpace, spec: &PositionSpec) -> Result<Position> {
        for (issue, w) in &spec.weights {
            if space.issue_index(issue).is_none() {
                return Err(Error::invalid(format!("weights.{issue}"), "unknown issue"));
            }
            if !w.is_finite() || *w < 0.0 {
                return Err(Error::invalid(
                    format!("weights.{issue}"),
                    format!("must be a finite, non-negative number, got {w}"),
                ));
            }
        }
        for (issue, options) in &spec.values {
            let Some(i) = space.issue_index(issue) else {
                return Err(Error::invalid(format!("values.{issue}"), "unknown issue"));
            };
            for (option, v) in options {
                if space.option_index(i, option).is_none() {
                    return Err(Error::invalid(
                        format!("values.{issue}.{option}"),
                        "unknown option",
                    ));
                }
                if !unit(*v) {
                    return Err(Error::invalid(
                        format!("values.{issue}.{option}"),
                        format!("must be between 0 and 1, got {v}"),
                    ));
                }
            }
        }
        if !unit(spec.reservation) {
            return Err(Error::invalid(
                "reservation",
                format!("must be between 0 and 1, got {}", spec.reservation),
            ));
        }
        let total: f64 = spec.weights.values().sum();
        if !(total > 0.0 && total.is_finite()) {
            return Err(Error::invalid(
                "weights",
                "at least one issue needs a positive weight",
            ));
        }
        let mut weights = Vec::with_capacity(space.issues().len());
        let mut values = Vec::with_capacity(space.issues().len());
        for issue in space.issues() {
            let w = spec.weights.get(&issue.id).copied().unwrap_or(0.0) / total;
            let given = spec.values.get(&issue.id);
            let mut row = Vec::with_capacity(issue.options.len());
            for o in &issue.options {
                match given.and_then(|g| g.get(&o.id)) {
                    Some(v) => row.push(*v),
                    None if w == 0.0 => row.push(0.0),
                    None => {
                        return Err(Error::invalid(
                            format!("values.{}.{}", issue.id, o.id),
                            "missing: every option of a weighted issue needs a value",
                        ))
                    }
                }
            }
            weights.push(w);
            values.push(row);
        }
        Ok(Self::from_parts(weights, values, spec.reservation))
    }

    /// A position from normalised weights and values by index (callers have validated them).
    pub(crate) fn from_parts(
        weights: Vec<f64>,
        values: Vec<Vec<f64>>,
        reservation: f64,
    ) -> Position {
        let contributions = weights
            .iter()
            .zip(&values)
            .map(|(w, row)| row.iter().map(|v| (w * v * SCALE).round() as i64).collect())
            .collect();
        Position {
            weights,
            values,
            reservation,
            contributions,
        }
    }

    /// Normalised weight of each issue.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Value of each option of each issue.
    pub fn values(&self) -> &[Vec<f64>] {
        &self.values
    }

    /// Reservation value.
    pub fn reservation(&self) -> f64 {
        self.reservation
    }

    /// Reservation value in fixed-point units.
    pub fn reservation_units(&self) -> i64 {
        (self.reservation * SCALE).round() as i64
    }

    /// Contribution of each option of each issue, in fixed-point units.
    pub fn contributions(&self) -> &[Vec<i64>] {
        &self.contributions
    }

    /// Utility of `package` in fixed-point units.
    pub fn utility_units(&self, package: &Package) -> i64 {
        package
            .0
            .iter()
            .zip(&self.contributions)
            .map(|(&o, row)| row[usize::from(o)])
            .sum()
    }

    /// Utility of `package`, Σ weight · value, in [0, 1].
    pub fn utility(&self, package: &Package) -> f64 {
        self.utility_units(package) as f64 / SCALE
    }

    /// Highest utility over the whole space, in units.
    pub fn best_units(&self) -> i64 {
        self.contributions
            .iter()
            .map(|r| r.iter().copied().max().unwrap_or(0))
            .sum()
    }

    /// Lowest utility over the whole space, in units.
    pub fn worst_units(&self) -> i64 {
        self.contributions
            .iter()
            .map(|r| r.iter().copied().min().unwrap_or(0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Issue, OptionDef};

    fn space() -> OutcomeSpace {
        let issue = |id: &str| Issue {
            id: id.into(),
            label: id.into(),
            options: ["A", "B"]
                .iter()
                .map(|o| OptionDef {
                    id: (*o).into(),
                    label: (*o).into(),
                })
                .collect(),
        };
        OutcomeSpace::new(vec![issue("x"), issue("y")]).unwrap()
    }

    fn spec(wx: f64, wy: f64) -> PositionSpec {
        let mut values = HashMap::new();
        for i in ["x", "y"] {
            values.insert(
                i.to_owned(),
                HashMap::from([("A".to_owned(), 1.0), ("B".to_owned(), 0.0)]),
            );
        }
        PositionSpec {
            weights: HashMap::from([("x".to_owned(), wx), ("y".to_owned(), wy)]),
            values,
            reservation: 0.2,
        }
    }

    #[test]
    fn weights_are_normalised_and_utility_is_additive() {
        let s = space();
        let p = Position::new(&s, &spec(3.0, 1.0)).unwrap();
        assert_eq!(p.weights(), &[0.75, 0.25]);
        let pkg = s.package([("x", "A"), ("y", "B")]).unwrap();
        assert_eq!(p.utility(&pkg), 0.75);
        assert_eq!(p.best_units(), 1_000_000_000);
    }

    #[test]
    fn invalid_positions_name_the_problem() {
        let s = space();
        let err = |spec: PositionSpec| Position::new(&s, &spec).unwrap_err().to_string();
        assert!(err(spec(0.0, 0.0)).contains("positive weight"));
        assert!(err(spec(f64::NAN, 1.0)).contains("weights.x"));
        let mut bad = spec(1.0, 1.0);
        bad.values.get_mut("x").unwrap().insert("A".into(), 1.5);
        assert!(err(bad).contains("values.x.A"));
        let mut unknown = spec(1.0, 1.0);
        unknown.weights.insert("z".into(), 1.0);
        assert!(err(unknown).contains("weights.z"));
        let mut missing = spec(1.0, 1.0);
        missing.values.get_mut("y").unwrap().remove("B");
        assert!(err(missing).contains("values.y.B"));
        let mut res = spec(1.0, 1.0);
        res.reservation = -0.1;
        assert!(err(res).contains("reservation"));
    }
}

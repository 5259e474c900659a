//! NegMAS scenarios, both ways: a folder with one outcome-space file (its `type` ends in
//! `OutcomeSpace`) and one utility-function file per party, in YAML (`.yml`, `.yaml`, as
//! NegMAS's `Scenario.dumpas(folder, type="yml")` writes them) or JSON (`type="json"`).
//!
//! Reading follows NegMAS's semantics, which differ from GENIUS's: a party's utility is
//! `Σ wᵢ · fᵢ(xᵢ) (+ bias)` on the raw numbers of the file, nothing divided by a largest
//! evaluation, and its `reserved_value` is on the same scale. Issues:
//! - categorical, ordinal and cardinal issues with listed `values` become one option per value
//!   (its id the value as Python prints it: `Red`, `5`, `0.5`);
//! - a `ContiguousIssue` (`values: [low, high]`) becomes one option per integer (at most
//!   [`MAX_INTEGER_OPTIONS`]);
//! - a continuous issue is refused, naming it (discretise it in NegMAS first).
//!
//! Utility functions: `LinearAdditiveUtilityFunction` (weights and one value function per
//! issue, by position or by issue name), `LinearUtilityFunction` / `AffineUtilityFunction`
//! (the issue's number times its weight) and those two wrapped in a discounted utility
//! (`ExpDiscountedUFun`, `LinDiscountedUFun`: the discount is not modelled and is said in a
//! note). Value functions: `TableFun`, `IdentityFun`, `LinearFun`, `AffineFun`, `ConstFun`,
//! `QuadraticFun`; anything else is refused, naming it.
//!
//! tradepact's model holds values in [0, 1] and weights summing to 1. A utility that already
//! has that shape (non-negative weights, every value in [0, 1], no bias) is taken as given (the
//! reserved value divided by the weights' sum, as the weights are). Any other is rescaled to
//! [0, 1] by a positive affine map, `u' = (u − b) / (H − b)` with `H` its highest utility and
//! `b` its lowest, or its reserved value when that is lower (then each issue's values are
//! shifted up by an equal share of the difference, so that the reserved value maps to 0
//! exactly), and its reserved value with it: the rational outcomes, the Pareto set and the
//! Nash and Kalai–Smorodinsky packages do not change under such a map; the egalitarian and
//! welfare-maximising packages are those of the rescaled utilities. Each rescaling is said in
//! a note, as is a reserved value above the highest utility (read as the highest) and no
//! reserved value (`-.inf` or none in NegMAS: read as the lowest utility).
//!
//! Writing produces a `DiscreteCartesianOutcomeSpace` of categorical issues (option ids) and
//! a `LinearAdditiveUtilityFunction` of `TableFun`s per party, weights normalised to sum 1:
//! on NegMAS's raw scale the utilities are tradepact's, so reading the files back gives the
//! same positions.

use std::collections::HashMap;

use serde_norway::{Mapping, Value};

use crate::genius::{Scenario, MAX_INTEGER_OPTIONS};
use crate::position::PositionSpec;
use crate::space::{Issue, OptionDef};
use crate::{Error, Result};

/// What a NegMAS scenario file holds, by its `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// An outcome space (the domain).
    Domain,
    /// A utility function (a party).
    Utility,
    /// Anything else (NegMAS's `_info.yaml`, `_stats.yaml`, unreadable text).
    Other,
}

/// The kind of a file's text, as NegMAS sorts a folder: `…OutcomeSpace` is the domain, a type
/// with `fun` in it a utility function.
pub fn kind(text: &str) -> FileKind {
    let Ok(v) = serde_norway::from_str::<Value>(text) else {
        return FileKind::Other;
    };
    match type_of(&v) {
        Some(t) if t.contains("OutcomeSpace") => FileKind::Domain,
        Some(t) if t.to_lowercase().contains("fun") => FileKind::Utility,
        _ => FileKind::Other,
    }
}

fn invalid(file: &str, what: impl Into<String>) -> Error {
    Error::invalid(file, what.into())
}

fn parse(file: &str, text: &str) -> Result<Value> {
    serde_norway::from_str(text).map_err(|e| invalid(file, format!("not YAML or JSON: {e}")))
}

/// A NegMAS object's type: `type`, or the last part of `__python_class__`.
fn type_of(v: &Value) -> Option<&str> {
    v.get("type").and_then(Value::as_str).or_else(|| {
        (v.get("__python_class__").and_then(Value::as_str)).and_then(|c| c.rsplit('.').next())
    })
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_i64().map(|i| i as f64))
}

/// One value of an issue: its id (as Python prints it) and its number, if it is one.
#[derive(Clone, Debug)]
struct Scalar {
    id: String,
    number: Option<f64>,
}

impl Scalar {
    fn of(v: &Value) -> Option<Scalar> {
        match v {
            Value::String(s) => Some(Scalar {
                id: s.clone(),
                number: None,
            }),
            Value::Bool(b) => Some(Scalar {
                id: if *b { "True" } else { "False" }.to_owned(),
                number: Some(f64::from(u8::from(*b))),
            }),
            Value::Number(n) => {
                let x = number(v)?;
                let id = match n.as_i64() {
                    Some(i) => i.to_string(),
                    None if x.fract() == 0.0 && x.abs() < 1e16 => format!("{x:.1}"),
                    None => x.to_string(),
                };
                Some(Scalar {
                    id,
                    number: Some(x),
                })
            }
            _ => None,
        }
    }

    /// Whether a table's key names this value: numbers by number, text by text.
    fn is(&self, key: &Scalar) -> bool {
        match (self.number, key.number) {
            (Some(a), Some(b)) => a == b,
            _ => self.id == key.id,
        }
    }
}

struct DomainIssue {
    issue: Issue,
    values: Vec<Scalar>,
}

fn domain_issues(file: &str, doc: &Value) -> Result<Vec<DomainIssue>> {
    let issues = doc
        .get("issues")
        .and_then(Value::as_sequence)
        .ok_or_else(|| invalid(file, "the outcome space has no list of issues"))?;
    let mut out = Vec::new();
    for (k, node) in issues.iter().enumerate() {
        let name = match node.get("name") {
            Some(n) => Scalar::of(n).map(|s| s.id),
            None => Some(format!("i{k}")),
        }
        .ok_or_else(|| invalid(file, format!("issue {k}'s name is not text")))?;
        let kind = type_of(node).unwrap_or("CategoricalIssue");
        let listed = node.get("values").and_then(Value::as_sequence);
        let values: Vec<Scalar> = match kind {
            "ContiguousIssue" => {
                let bounds = listed
                    .filter(|b| b.len() == 2)
                    .and_then(|b| Some((b[0].as_i64()?, b[1].as_i64()?)));
                let Some((low, high)) = bounds else {
                    return Err(invalid(
                        file,
                        format!("issue {name:?} (ContiguousIssue) needs values: [low, high] as integers"),
                    ));
                };
                if high < low || high - low + 1 > MAX_INTEGER_OPTIONS {
                    return Err(invalid(
                        file,
                        format!("issue {name:?}: bounds {low}..{high} must give 1 to {MAX_INTEGER_OPTIONS} options"),
                    ));
                }
                (low..=high)
                    .map(|x| Scalar {
                        id: x.to_string(),
                        number: Some(x as f64),
                    })
                    .collect()
            }
            k if k.contains("Continuous") || k.contains("Infinite") => {
                return Err(invalid(
                    file,
                    format!("issue {name:?} is {k}: only issues with listed or integer values can be imported (discretise it in NegMAS first)"),
                ))
            }
            k if k.ends_with("Issue") => listed
                .ok_or_else(|| invalid(file, format!("issue {name:?} ({k}) lists no values")))?
                .iter()
                .map(|v| {
                    Scalar::of(v).ok_or_else(|| {
                        invalid(file, format!("issue {name:?} has a value that is not a scalar"))
                    })
                })
                .collect::<Result<_>>()?,
            other => {
                return Err(invalid(
                    file,
                    format!("issue {name:?} has an unknown type {other:?}"),
                ))
            }
        };
        let options = (values.iter())
            .map(|s| OptionDef {
                id: s.id.clone(),
                label: s.id.clone(),
            })
            .collect();
        out.push(DomainIssue {
            issue: Issue {
                id: name.clone(),
                label: name,
                options,
            },
            values,
        });
    }
    if out.is_empty() {
        return Err(invalid(file, "the outcome space has no issues"));
    }
    Ok(out)
}

/// A value function of one issue, evaluated on each of its values.
fn evaluate(file: &str, issue: &DomainIssue, fun: &Value) -> Result<Vec<f64>> {
    let id = &issue.issue.id;
    let kind = match type_of(fun) {
        Some(k) => k,
        // A bare mapping is a table.
        None if fun.is_mapping() => "TableFun",
        None => {
            return Err(invalid(
                file,
                format!("issue {id:?}'s value function has no type"),
            ))
        }
    };
    let param = |name: &str| -> Result<f64> {
        match fun.get(name) {
            None => Ok(0.0),
            Some(v) => number(v).filter(|x| x.is_finite()).ok_or_else(|| {
                invalid(
                    file,
                    format!("issue {id:?}: {kind}'s {name} is not a number"),
                )
            }),
        }
    };
    let numeric = |s: &Scalar| {
        s.number.ok_or_else(|| {
            invalid(
                file,
                format!(
                    "issue {id:?}: {kind} needs numbers, but {:?} is not one",
                    s.id
                ),
            )
        })
    };
    let values = &issue.values;
    match kind {
        "TableFun" => {
            let table = match fun.get("mapping") {
                Some(m) => m,
                None => fun,
            };
            let table = table.as_mapping().ok_or_else(|| {
                invalid(file, format!("issue {id:?}: the TableFun has no mapping"))
            })?;
            let entries: Vec<(Scalar, &Value)> = table
                .iter()
                .filter_map(|(k, v)| Some((Scalar::of(k)?, v)))
                .collect();
            values
                .iter()
                .map(|s| {
                    let v = entries.iter().find(|(k, _)| s.is(k)).map(|(_, v)| *v);
                    v.and_then(number).filter(|x| x.is_finite()).ok_or_else(|| {
                        invalid(file, format!("issue {id:?} has no numeric value of {:?}", s.id))
                    })
                })
                .collect()
        }
        "IdentityFun" => values.iter().map(numeric).collect(),
        "LinearFun" => {
            let slope = param("slope")?;
            values.iter().map(|s| Ok(slope * numeric(s)?)).collect()
        }
        "AffineFun" => {
            let (slope, bias) = (param("slope")?, param("bias")?);
            values.iter().map(|s| Ok(slope * numeric(s)? + bias)).collect()
        }
        "ConstFun" => {
            let bias = param("bias")?;
            Ok(vec![bias; values.len()])
        }
        "QuadraticFun" => {
            let (a2, a1, bias) = (param("a2")?, param("a1")?, param("bias")?);
            (values.iter())
                .map(|s| numeric(s).map(|x| a2 * x * x + a1 * x + bias))
                .collect()
        }
        other => Err(invalid(
            file,
            format!("issue {id:?}: value function {other} is not supported (TableFun, IdentityFun, LinearFun, AffineFun, ConstFun, QuadraticFun are)"),
        )),
    }
}

/// An entry per issue from a list (by position) or a mapping (by issue name).
fn per_issue<'a>(
    file: &str,
    what: &str,
    v: &'a Value,
    issues: &[DomainIssue],
) -> Result<Vec<Option<&'a Value>>> {
    match v {
        Value::Sequence(s) if s.len() == issues.len() => Ok(s.iter().map(Some).collect()),
        Value::Sequence(s) => Err(invalid(
            file,
            format!("{} {what} for {} issues", s.len(), issues.len()),
        )),
        Value::Mapping(m) => Ok(issues.iter().map(|d| m.get(d.issue.id.as_str())).collect()),
        _ => Err(invalid(
            file,
            format!("{what} are neither a list nor a mapping"),
        )),
    }
}

/// One party's utility function: per issue, its weighted values (`wᵢ · fᵢ`); its bias; its
/// reserved value (`None` for none, or −∞).
struct Utility {
    terms: Vec<Vec<f64>>,
    weights_as_given: Option<Vec<f64>>,
    bias: f64,
    reserved: Option<f64>,
}

fn utility(
    party: &str,
    file: &str,
    doc: &Value,
    issues: &[DomainIssue],
    notes: &mut Vec<String>,
) -> Result<Utility> {
    let kind = type_of(doc).unwrap_or_default();
    if kind.contains("Discounted") {
        let inner = doc
            .get("ufun")
            .ok_or_else(|| invalid(file, format!("{kind} wraps no utility function (ufun)")))?;
        let discount = doc.get("discount").and_then(number);
        notes.push(format!(
            "{party}'s discount ({kind}{}) is not modelled (tradepact has no time discounting)",
            discount.map_or(String::new(), |d| format!(", {d}"))
        ));
        return utility(party, file, inner, issues, notes);
    }
    let weights: Vec<f64> = match doc.get("weights") {
        None | Some(Value::Null) => vec![1.0; issues.len()],
        Some(w) => per_issue(file, "weights", w, issues)?
            .into_iter()
            .zip(issues)
            .map(|(w, d)| {
                let w = w.map_or(Some(0.0), number).filter(|x| x.is_finite());
                w.ok_or_else(|| {
                    invalid(
                        file,
                        format!("issue {:?}'s weight is not a number", d.issue.id),
                    )
                })
            })
            .collect::<Result<_>>()?,
    };
    let functions: Vec<Vec<f64>> = match kind {
        "LinearAdditiveUtilityFunction" => {
            let values = doc.get("values").ok_or_else(|| {
                invalid(file, "a LinearAdditiveUtilityFunction needs values (one function per issue)")
            })?;
            per_issue(file, "value functions", values, issues)?
                .into_iter()
                .zip(issues)
                .map(|(f, d)| match f {
                    Some(f) => evaluate(file, d, f),
                    None => Ok(vec![0.0; d.values.len()]),
                })
                .collect::<Result<_>>()?
        }
        "LinearUtilityFunction" | "AffineUtilityFunction" => (issues.iter())
            .map(|d| evaluate(file, d, &identity()))
            .collect::<Result<_>>()?,
        other => {
            return Err(invalid(
                file,
                format!("utility function {other:?} is not supported (LinearAdditiveUtilityFunction, LinearUtilityFunction, AffineUtilityFunction, and those discounted, are)"),
            ))
        }
    };
    let bias = match doc.get("bias") {
        None | Some(Value::Null) => 0.0,
        Some(b) => number(b)
            .filter(|x| x.is_finite())
            .ok_or_else(|| invalid(file, "bias is not a number"))?,
    };
    let reserved = match doc.get("reserved_value") {
        None | Some(Value::Null) => None,
        Some(r) => match number(r) {
            Some(x) if x == f64::NEG_INFINITY => None,
            Some(x) if x.is_finite() => Some(x),
            _ => {
                return Err(invalid(
                    file,
                    "reserved_value must be a number (or -.inf for none)",
                ))
            }
        },
    };
    if doc.get("reserved_outcome").is_some_and(|o| !o.is_null()) {
        notes.push(format!(
            "{party}'s reserved_outcome is not carried over (its reserved_value is)"
        ));
    }
    let in_unit = functions.iter().flatten().all(|v| (0.0..=1.0).contains(v));
    let weights_as_given =
        (in_unit && bias == 0.0 && weights.iter().all(|w| *w >= 0.0)).then(|| weights.clone());
    let terms = (weights.iter().zip(functions))
        .map(|(w, f)| f.into_iter().map(|v| w * v).collect())
        .collect();
    Ok(Utility {
        terms,
        weights_as_given,
        bias,
        reserved,
    })
}

fn identity() -> Value {
    let mut m = Mapping::new();
    m.insert("type".into(), "IdentityFun".into());
    Value::Mapping(m)
}

/// The position of a utility function (see the module doc for the two ways).
fn position(
    party: &str,
    file: &str,
    u: &Utility,
    issues: &[DomainIssue],
    notes: &mut Vec<String>,
) -> Result<PositionSpec> {
    let mut spec = PositionSpec::default();
    if let Some(weights) = &u.weights_as_given {
        let total: f64 = weights.iter().sum();
        let reservation = u.reserved.map(|r| r / total);
        if total > 0.0 && reservation.is_none_or(|r| (0.0..=1.0).contains(&r)) {
            for ((d, w), terms) in issues.iter().zip(weights).zip(&u.terms) {
                let values = (d.values.iter().zip(terms))
                    .map(|(s, t)| (s.id.clone(), if *w > 0.0 { t / w } else { 0.0 }))
                    .collect();
                spec.weights.insert(d.issue.id.clone(), *w);
                spec.values.insert(d.issue.id.clone(), values);
            }
            spec.reservation = reservation.unwrap_or_else(|| {
                notes.push(format!(
                    "{party} has no reserved value: read as its lowest utility"
                ));
                0.0
            });
            return Ok(spec);
        }
    }
    // u' = (u − base) / (high − base): base the lowest utility, or the reserved value when it
    // is lower (the disagreement point kept exactly: each issue's values shifted up by an
    // equal share of the difference).
    let lows: Vec<f64> = (u.terms.iter())
        .map(|t| t.iter().copied().fold(f64::INFINITY, f64::min))
        .collect();
    let spreads: Vec<f64> = (u.terms.iter().zip(&lows))
        .map(|(t, low)| t.iter().copied().fold(f64::NEG_INFINITY, f64::max) - low)
        .collect();
    let low = u.bias + lows.iter().sum::<f64>();
    let high = low + spreads.iter().sum::<f64>();
    if !(high > low && high.is_finite()) {
        return Err(invalid(
            file,
            "the utility is the same for every outcome: it says nothing to negotiate on",
        ));
    }
    let base = match u.reserved {
        Some(r) if r < low => r,
        _ => low,
    };
    let shift = (low - base) / issues.len() as f64;
    for (((d, terms), min), spread) in issues.iter().zip(&u.terms).zip(&lows).zip(&spreads) {
        let weight = spread + shift;
        let values: HashMap<String, f64> = (d.values.iter().zip(terms))
            .map(|(s, t)| {
                let v = if weight > 0.0 {
                    (t - min + shift) / weight
                } else {
                    0.0
                };
                (s.id.clone(), v.clamp(0.0, 1.0))
            })
            .collect();
        spec.weights.insert(d.issue.id.clone(), weight);
        spec.values.insert(d.issue.id.clone(), values);
    }
    notes.push(format!(
        "{party}'s utilities are rescaled to [0, 1]: u' = (u − {base}) / {} (Pareto set, Nash and Kalai–Smorodinsky packages unchanged)",
        high - base
    ));
    spec.reservation = match u.reserved {
        None => {
            notes.push(format!(
                "{party} has no reserved value: read as its lowest utility"
            ));
            0.0
        }
        Some(r) if r > high => {
            notes.push(format!(
                "{party}'s reserved value {r} is above its highest utility {high}: read as the highest"
            ));
            1.0
        }
        Some(r) => ((r - base) / (high - base)).clamp(0.0, 1.0),
    };
    Ok(spec)
}

/// Reads an outcome space and the utility functions of its parties (name, file name, text).
pub fn read(
    domain_file: &str,
    domain: &str,
    profiles: &[(String, String, String)],
) -> Result<Scenario> {
    let doc = parse(domain_file, domain)?;
    if !type_of(&doc).is_some_and(|t| t.contains("OutcomeSpace")) {
        return Err(invalid(
            domain_file,
            "not a NegMAS outcome space (its type should end in OutcomeSpace)",
        ));
    }
    let issues = domain_issues(domain_file, &doc)?;
    let name = (doc.get("name").and_then(Value::as_str))
        .unwrap_or("NegMAS scenario")
        .to_owned();
    let mut positions = Vec::new();
    let mut notes = Vec::new();
    for (party, file, text) in profiles {
        let doc = parse(file, text)?;
        let u = utility(party, file, &doc, &issues, &mut notes)?;
        positions.push((
            party.clone(),
            position(party, file, &u, &issues, &mut notes)?,
        ));
    }
    Ok(Scenario {
        name,
        discount_factors: vec![1.0; positions.len()],
        issues: issues.into_iter().map(|d| d.issue).collect(),
        positions,
        notes,
    })
}

fn mapping<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Mapping(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// Writes an outcome-space file and one utility-function file per position, in YAML.
pub fn write(name: &str, issues: &[Issue], positions: &[&PositionSpec]) -> (String, Vec<String>) {
    let ids = |i: &Issue| -> Value {
        Value::Sequence(i.options.iter().map(|o| o.id.as_str().into()).collect())
    };
    let domain = mapping([
        (
            "issues",
            Value::Sequence(
                (issues.iter())
                    .map(|i| {
                        mapping([
                            ("name", i.id.as_str().into()),
                            ("type", "CategoricalIssue".into()),
                            ("values", ids(i)),
                        ])
                    })
                    .collect(),
            ),
        ),
        ("name", name.into()),
        ("type", "DiscreteCartesianOutcomeSpace".into()),
    ]);
    let utilities = positions
        .iter()
        .map(|p| {
            let total: f64 = issues
                .iter()
                .map(|i| p.weights.get(&i.id).copied().unwrap_or(0.0))
                .sum();
            let weight = |i: &Issue| {
                let w = p.weights.get(&i.id).copied().unwrap_or(0.0);
                if total > 0.0 {
                    w / total
                } else {
                    0.0
                }
            };
            let table = |i: &Issue| {
                let given = p.values.get(&i.id);
                let entries = (i.options.iter())
                    .map(|o| {
                        let v = given.and_then(|g| g.get(&o.id)).copied().unwrap_or(0.0);
                        (Value::from(o.id.as_str()), Value::from(v))
                    })
                    .collect();
                mapping([
                    ("mapping", Value::Mapping(entries)),
                    ("type", "TableFun".into()),
                ])
            };
            let u = mapping([
                ("reserved_value", p.reservation.into()),
                ("type", "LinearAdditiveUtilityFunction".into()),
                (
                    "values",
                    Value::Sequence(issues.iter().map(table).collect()),
                ),
                (
                    "weights",
                    Value::Sequence(issues.iter().map(|i| weight(i).into()).collect()),
                ),
            ]);
            serde_norway::to_string(&u).expect("a mapping of text and numbers serialises")
        })
        .collect();
    let domain = serde_norway::to_string(&domain).expect("a mapping of text serialises");
    (domain, utilities)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_one(domain: &str, utility: &str) -> Result<Scenario> {
        read(
            "d.yml",
            domain,
            &[
                ("a".into(), "a.yml".into(), utility.into()),
                ("b".into(), "b.yml".into(), utility.into()),
            ],
        )
    }

    const DOMAIN: &str = "type: DiscreteCartesianOutcomeSpace\nname: shop\nissues:\n- {name: Price, type: ContiguousIssue, values: [1, 3]}\n- {name: Colour, type: CategoricalIssue, values: [Red, Blue]}\n";

    #[test]
    fn raw_utilities_are_rescaled_with_their_reserved_value() {
        let u = "type: LinearAdditiveUtilityFunction\nweights: [2, 1]\nreserved_value: 5\nvalues:\n- {type: AffineFun, slope: 1, bias: 1}\n- {type: TableFun, mapping: {Red: 3, Blue: 1}}\n";
        let s = read_one(DOMAIN, u).unwrap();
        let p = &s.positions[0].1;
        // u = 2·(x + 1) + colour: Price 4..8 (spread 4), Colour 1..3 (spread 2); L = 5, S = 6.
        assert_eq!(p.weights["Price"], 4.0);
        assert_eq!(p.weights["Colour"], 2.0);
        assert_eq!(p.values["Price"]["2"], 0.5);
        assert_eq!(p.values["Colour"]["Red"], 1.0);
        assert_eq!(p.reservation, 0.0);
        assert!(s.notes[0].contains("(u − 5) / 6"), "{:?}", s.notes);
        // A reserved value below the lowest utility stays the disagreement point: u = 2 maps
        // to 0, each issue's values shifted up by (5 − 2) / 2.
        let low = u.replace("reserved_value: 5", "reserved_value: 2");
        let s = read_one(DOMAIN, &low).unwrap();
        let p = &s.positions[0].1;
        assert_eq!((p.weights["Price"], p.weights["Colour"]), (5.5, 3.5));
        assert_eq!(p.values["Price"]["1"], 1.5 / 5.5);
        assert_eq!(p.reservation, 0.0);
    }

    #[test]
    fn unit_utilities_are_taken_as_given_and_written_back_alike() {
        let u = "type: LinearAdditiveUtilityFunction\nweights: {Price: 0.5, Colour: 0.25}\nreserved_value: 0.3\nvalues:\n  Price: {type: TableFun, mapping: {1: 1.0, 2: 0.5, 3: 0.0}}\n  Colour: {Red: 0.2, Blue: 0.9}\n";
        let s = read_one(DOMAIN, u).unwrap();
        let p = &s.positions[0].1;
        assert_eq!((p.weights["Price"], p.values["Colour"]["Blue"]), (0.5, 0.9));
        assert!((p.reservation - 0.4).abs() < 1e-12, "{}", p.reservation);
        assert!(s.notes.is_empty(), "{:?}", s.notes);

        let (domain, utilities) = write("shop", &s.issues, &[p, &s.positions[1].1]);
        let profiles: Vec<_> = (utilities.into_iter().zip(["a", "b"]))
            .map(|(text, party)| (party.to_owned(), format!("{party}.yml"), text))
            .collect();
        let again = read("d.yml", &domain, &profiles).unwrap();
        assert_eq!(again.issues, s.issues);
        let q = &again.positions[0].1;
        assert_eq!(q.values, p.values);
        assert!((q.weights["Price"] - 2.0 / 3.0).abs() < 1e-12);
        assert!((q.reservation - p.reservation).abs() < 1e-12);
        assert_eq!(kind(&domain), FileKind::Domain);
        assert_eq!(kind(&profiles[0].2), FileKind::Utility);
        assert_eq!(kind("a: [1"), FileKind::Other);
    }

    #[test]
    fn what_cannot_be_read_is_refused_naming_it() {
        let continuous = "type: CartesianOutcomeSpace\nissues:\n- {name: t, type: ContinuousIssue, values: [0.0, 1.0]}\n";
        let e = read_one(continuous, "").unwrap_err().to_string();
        assert!(
            e.contains("ContinuousIssue") && e.contains("discretise"),
            "{e}"
        );
        let u = "type: LinearAdditiveUtilityFunction\nvalues:\n- {type: GaussianFun}\n- {type: IdentityFun}\n";
        let e = read_one(DOMAIN, u).unwrap_err().to_string();
        assert!(e.contains("GaussianFun"), "{e}");
        let u = "type: LinearAdditiveUtilityFunction\nvalues:\n- {type: IdentityFun}\n- {type: IdentityFun}\n";
        let e = read_one(DOMAIN, u).unwrap_err().to_string();
        assert!(e.contains("\"Red\" is not one"), "{e}");
        let flat = "type: LinearAdditiveUtilityFunction\nvalues:\n- {type: ConstFun, bias: 1}\n- {type: ConstFun, bias: 2}\n";
        let e = read_one(DOMAIN, flat).unwrap_err().to_string();
        assert!(e.contains("same for every outcome"), "{e}");
        let e = read_one("type: LinearAdditiveUtilityFunction\n", "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a NegMAS outcome space"), "{e}");
        let wide = "type: DiscreteCartesianOutcomeSpace\nissues:\n- {name: n, type: ContiguousIssue, values: [0, 100000]}\n";
        assert!(read_one(wide, "").is_err());
    }
}

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
//!   [`MAX_INTEGER_OPTIONS`](crate::genius::MAX_INTEGER_OPTIONS));
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
//! [0, 1] by a positive affine map, `u' = (u − L) / (H − L)` with `L` its lowest and `H` its
//! highest utility, and its reserved value with it: the rational outcomes, the Pareto set and
//! the Nash and Kalai–Smorodinsky packages do not change under such a map; the egalitarian and
//! welfare-maximising packages are those of the rescaled utilities. A reserved value below the
//! lowest utility, or none (`-.inf`), is read as the lowest utility, as NegMAS's own
//! `nash_points` reads it (so the disagreement point is NegMAS's); one above the highest as
//! the highest. Each of these is said in a note.
//!
//! Writing produces a `DiscreteCartesianOutcomeSpace` of categorical issues (option ids) and
//! a `LinearAdditiveUtilityFunction` of `TableFun`s per party, weights normalised to sum 1:
//! on NegMAS's raw scale the utilities are tradepact's, so reading the files back gives the
//! same positions.

use std::collections::HashMap;

use serde_norway::{Mapping, Value};

use crate::genius::{integer_range, Scenario};
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
                integer_range(file, &name, low, high)?
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
        if total > 0.0 {
            for ((d, w), terms) in issues.iter().zip(weights).zip(&u.terms) {
                let values = (d.values.iter().zip(terms))
                    .map(|(s, t)| (s.id.clone(), if *w > 0.0 { t / w } else { 0.0 }))
                    .collect();
                spec.weights.insert(d.issue.id.clone(), *w);
                spec.values.insert(d.issue.id.clone(), values);
            }
            // As given, a utility is measured from 0 (its lowest is 0 or more).
            let lowest = (u.terms.iter())
                .map(|t| t.iter().copied().fold(f64::INFINITY, f64::min))
                .sum();
            spec.reservation = reservation(party, u.reserved, lowest, 0.0, total, notes);
            return Ok(spec);
        }
    }
    // u' = (u − low) / (high − low).
    let lows: Vec<f64> = (u.terms.iter())
        .map(|t| t.iter().copied().fold(f64::INFINITY, f64::min))
        .collect();
    let spreads: Vec<f64> = (u.terms.iter().zip(&lows))
        .map(|(t, low)| t.iter().copied().fold(f64::NEG_INFINITY, f64::max) - low)
        .collect();
    let low = u.bias + lows.iter().sum::<f64>();
    let span: f64 = spreads.iter().sum();
    if !(span > 0.0 && span.is_finite()) {
        return Err(invalid(
            file,
            "the utility is the same for every outcome: it says nothing to negotiate on",
        ));
    }
    for (((d, terms), min), spread) in issues.iter().zip(&u.terms).zip(&lows).zip(&spreads) {
        let values: HashMap<String, f64> = (d.values.iter().zip(terms))
            .map(|(s, t)| {
                let v = if *spread > 0.0 {
                    (t - min) / spread
                } else {
                    0.0
                };
                (s.id.clone(), v.clamp(0.0, 1.0))
            })
            .collect();
        spec.weights.insert(d.issue.id.clone(), *spread);
        spec.values.insert(d.issue.id.clone(), values);
    }
    notes.push(format!(
        "{party}'s utilities are rescaled to [0, 1]: u' = (u − {low}) / {span} (Pareto set, Nash and Kalai–Smorodinsky packages unchanged)"
    ));
    spec.reservation = reservation(party, u.reserved, low, low, span, notes);
    Ok(spec)
}

/// A reserved value on the model's scale, `(r − zero) / span`, with `lowest` the lowest
/// utility. Below the lowest utility, or none, it is read as the lowest: NegMAS's own solutions
/// (`nash_points`) measure from the lowest utility when the reserved value is below it or
/// missing. Above the highest utility it is read as the highest.
fn reservation(
    party: &str,
    r: Option<f64>,
    lowest: f64,
    zero: f64,
    span: f64,
    notes: &mut Vec<String>,
) -> f64 {
    let r = match r {
        None => {
            notes.push(format!(
                "{party} has no reserved value: read as its lowest utility"
            ));
            lowest
        }
        Some(r) if r < lowest => {
            notes.push(format!(
                "{party}'s reserved value {r} is below its lowest utility {lowest}: read as the lowest (as NegMAS's solutions read it)"
            ));
            lowest
        }
        Some(r) => r,
    };
    let scaled = (r - zero) / span;
    if scaled > 1.0 {
        notes.push(format!(
            "{party}'s reserved value {r} is above its highest utility {}: read as the highest",
            zero + span
        ));
    }
    scaled.clamp(0.0, 1.0)
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

/// Block YAML that YAML 1.1 readers (NegMAS reads with PyYAML) read as written: every text
/// double-quoted (a JSON string, which YAML's double quotes read alike), so that an option
/// `No` or `1` stays text, which `serde_norway`'s YAML 1.2 output leaves bare (PyYAML reads
/// bare `No` as false); numbers in decimal notation (Rust's `Display`, never an exponent,
/// which PyYAML would read as text without a dot); keys bare when they are plain words.
fn yaml(v: &Value) -> String {
    fn scalar(v: &Value) -> String {
        match v {
            Value::String(s) => serde_json::to_string(s).expect("text serialises"),
            Value::Number(n) => match n.as_f64() {
                Some(x) if n.is_f64() => x.to_string(),
                _ => n.to_string(),
            },
            Value::Bool(b) => b.to_string(),
            _ => "null".to_owned(),
        }
    }
    fn key(k: &Value) -> String {
        match k.as_str() {
            Some(k) if !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_') => {
                k.to_owned()
            }
            _ => scalar(k),
        }
    }
    fn block(v: &Value, pad: usize, out: &mut String) {
        let indent = " ".repeat(pad);
        match v {
            Value::Mapping(m) => {
                for (k, v) in m {
                    out.push_str(&format!("{indent}{}:", key(k)));
                    match v {
                        Value::Mapping(inner) if !inner.is_empty() => {
                            out.push('\n');
                            block(v, pad + 2, out);
                        }
                        Value::Sequence(items) if !items.is_empty() => {
                            out.push('\n');
                            block(v, pad, out);
                        }
                        Value::Mapping(_) => out.push_str(" {}\n"),
                        Value::Sequence(_) => out.push_str(" []\n"),
                        v => out.push_str(&format!(" {}\n", scalar(v))),
                    }
                }
            }
            Value::Sequence(items) => {
                for item in items {
                    match item {
                        Value::Mapping(m) if !m.is_empty() => {
                            // The first entry after the dash, the others under it.
                            let mut inner = String::new();
                            block(item, pad + 2, &mut inner);
                            out.push_str(&format!("{indent}- {}", &inner[pad + 2..]));
                        }
                        v => out.push_str(&format!("{indent}- {}\n", scalar(v))),
                    }
                }
            }
            v => out.push_str(&format!("{indent}{}\n", scalar(v))),
        }
    }
    let mut out = String::new();
    block(v, 0, &mut out);
    out
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
            yaml(&u)
        })
        .collect();
    let domain = yaml(&domain);
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
        // A reserved value below the lowest utility is read as the lowest, as NegMAS's
        // nash_points reads it.
        let low = u.replace("reserved_value: 5", "reserved_value: 2");
        let s = read_one(DOMAIN, &low).unwrap();
        assert_eq!(s.positions[0].1.reservation, 0.0);
        assert!(
            s.notes[1].contains("below its lowest utility 5"),
            "{:?}",
            s.notes
        );
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
    fn written_text_reads_the_same_in_yaml_1_1() {
        let issue = Issue {
            id: "Forum".into(),
            label: "Forum".into(),
            options: ["No", "1", "yes"]
                .map(|o| OptionDef {
                    id: o.into(),
                    label: o.into(),
                })
                .to_vec(),
        };
        let spec = PositionSpec {
            weights: HashMap::from([("Forum".into(), 1.0)]),
            values: HashMap::from([(
                "Forum".into(),
                HashMap::from([("No".into(), 1e-7), ("1".into(), 1.0), ("yes".into(), 0.5)]),
            )]),
            reservation: 0.25,
        };
        let (domain, utilities) = write("t", std::slice::from_ref(&issue), &[&spec]);
        // PyYAML would read a bare No as false, 1 as a number, 1e-07 as text.
        assert!(
            domain.contains("  - \"No\"\n  - \"1\"\n  - \"yes\"\n"),
            "{domain}"
        );
        assert!(
            utilities[0].contains("\"No\": 0.0000001\n"),
            "{}",
            utilities[0]
        );
        let again = read_one(&domain, &utilities[0]).unwrap();
        assert_eq!(again.issues, vec![issue]);
        assert_eq!(again.positions[0].1, spec);
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

//! GENIUS scenarios, both ways: a domain file (`<negotiation_template>`) and one utility-space
//! file (`<utility_space>`) per party, as the GENIUS negotiation environment and the ANAC
//! competitions publish them.
//!
//! Reading follows GENIUS's semantics:
//! - a **discrete** issue's options are its items, by value; a party's value of an option is
//!   the item's `evaluation` over the issue's largest evaluation (GENIUS's
//!   `EvaluatorDiscrete`), so values lie in [0, 1];
//! - an **integer** issue (`lowerbound`, `upperbound`) becomes one option per integer; its
//!   evaluator is linear, given either as `slope` and `offset` (the evaluation is
//!   `offset + slope · x`, over its largest on the range) or as the utilities at the bounds
//!   (`utilityLowestValue`, `utilityHighestValue`, interpolated); at most [`MAX_INTEGER_OPTIONS`]
//!   integers;
//! - evaluations must be finite numbers (otherwise refused, naming the value); GENIUS's
//!   division by an issue's largest evaluation is said in a note when that largest is not 1
//!   (the file's numbers are not the values used). A negative evaluation (GENIUS refuses
//!   them; an integer issue's line may go below 0 on its range) takes the utility out of
//!   [0, 1]: it is then rescaled as the NegMAS reader rescales a utility outside the model's
//!   shape, `u' = (u − L) / (H − L)` over the whole utility with its reservation value
//!   (clamped to [0, 1]), with a note, so the Pareto set and the Nash and Kalai–Smorodinsky
//!   packages are the file's; an issue whose evaluations are all 0 or less, some below, is
//!   refused (there is no largest to divide by);
//! - a **real** issue is refused, naming it (discretise it in GENIUS first);
//! - weights are taken as given (`<weight index=… value=…>`, by issue index) and normalised to
//!   sum 1 by the model, as GENIUS does; the `reservation` value is kept; the
//!   `discount_factor` has no counterpart in tradepact's model (no time discounting) and is
//!   returned for the caller to report; one that is not a number (ANAC 2011's
//!   `IS_BT_Acquisition_IS_20.xml` says `value="s"`) is ignored with a note rather than
//!   refusing a scenario over a field the model does not use.
//!
//! Issue and option ids are GENIUS's names and values. Writing produces the same two kinds of
//! file, every option an item with its value scaled to an integer-free evaluation (the value
//! itself: GENIUS normalises by the largest).

use std::collections::HashMap;

use crate::position::PositionSpec;
use crate::space::{Issue, OptionDef};
use crate::{Error, Result};

/// Most options an integer issue may expand to.
pub const MAX_INTEGER_OPTIONS: i64 = 1000;

/// A scenario read from GENIUS files.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The domain's name (its objective's).
    pub name: String,
    /// The issues.
    pub issues: Vec<Issue>,
    /// Each party's name and position, in the order given.
    pub positions: Vec<(String, PositionSpec)>,
    /// Each party's discount factor (1 when absent or unreadable), not used by the model.
    pub discount_factors: Vec<f64>,
    /// What was read but not carried over, one sentence each (an unreadable discount factor).
    pub notes: Vec<String>,
}

impl Scenario {
    /// What the import could not carry over, one sentence each: the notes of reading, and each
    /// party's discount factor other than 1 (tradepact has no time discounting).
    pub fn not_carried_over(&self) -> Vec<String> {
        let discounted = (self.positions.iter().zip(&self.discount_factors))
            .filter(|(_, d)| **d != 1.0)
            .map(|((party, _), d)| {
                format!("{party}'s discount factor {d} is not modelled (tradepact has no time discounting)")
            });
        self.notes.iter().cloned().chain(discounted).collect()
    }
}

/// The integers of an integer issue's bounds, at most [`MAX_INTEGER_OPTIONS`] of them (GENIUS's
/// and NegMAS's integer issues alike).
pub(crate) fn integer_range(
    file: &str,
    name: &str,
    low: i64,
    high: i64,
) -> Result<std::ops::RangeInclusive<i64>> {
    if high < low || high - low + 1 > MAX_INTEGER_OPTIONS {
        return Err(invalid(
            file,
            format!("integer issue {name:?}: bounds {low}..{high} must give 1 to {MAX_INTEGER_OPTIONS} options"),
        ));
    }
    Ok(low..=high)
}

fn invalid(file: &str, what: impl Into<String>) -> Error {
    Error::invalid(file, what.into())
}

fn parse<'a>(file: &str, xml: &'a str) -> Result<roxmltree::Document<'a>> {
    roxmltree::Document::parse(xml).map_err(|e| invalid(file, format!("not XML: {e}")))
}

fn attr<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attribute(name)
}

fn number(file: &str, node: roxmltree::Node<'_, '_>, name: &str) -> Result<f64> {
    let text = attr(node, name)
        .ok_or_else(|| invalid(file, format!("<{}> has no {name}", node.tag_name().name())))?;
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| invalid(file, format!("{name}={text:?} is not a number")))
}

/// The issue nodes of a file, wherever its objective puts them.
fn issue_nodes<'a, 'b>(doc: &'b roxmltree::Document<'a>) -> Vec<roxmltree::Node<'a, 'b>> {
    doc.descendants()
        .filter(|n| n.has_tag_name("issue"))
        .collect()
}

/// One issue of the domain: its options (ids) and, for integer issues, the integers.
struct DomainIssue {
    index: String,
    issue: Issue,
    integers: Option<(i64, i64)>,
}

fn domain_issues(file: &str, doc: &roxmltree::Document<'_>) -> Result<Vec<DomainIssue>> {
    let mut out = Vec::new();
    for node in issue_nodes(doc) {
        let name = attr(node, "name")
            .ok_or_else(|| invalid(file, "an <issue> has no name"))?
            .to_owned();
        let index = attr(node, "index").unwrap_or_default().to_owned();
        let kind = attr(node, "type")
            .or_else(|| attr(node, "etype"))
            .unwrap_or("discrete");
        let (options, integers) = match kind {
            "discrete" => {
                let items: Vec<OptionDef> = node
                    .children()
                    .filter(|c| c.has_tag_name("item"))
                    .map(|item| {
                        let value = attr(item, "value").unwrap_or_default().to_owned();
                        OptionDef {
                            id: value.clone(),
                            label: attr(item, "description")
                                .filter(|d| !d.is_empty())
                                .unwrap_or(&value)
                                .to_owned(),
                        }
                    })
                    .collect();
                (items, None)
            }
            "integer" => {
                let (low, high) = (
                    number(file, node, "lowerbound")? as i64,
                    number(file, node, "upperbound")? as i64,
                );
                let options = integer_range(file, &name, low, high)?
                    .map(|x| OptionDef {
                        id: x.to_string(),
                        label: x.to_string(),
                    })
                    .collect();
                (options, Some((low, high)))
            }
            other => {
                return Err(invalid(
                    file,
                    format!("issue {name:?} is {other}: only discrete and integer issues can be imported (discretise a real-valued issue in GENIUS first)"),
                ))
            }
        };
        out.push(DomainIssue {
            index,
            issue: Issue {
                id: name.clone(),
                label: name,
                options,
            },
            integers,
        });
    }
    if out.is_empty() {
        return Err(invalid(file, "no <issue> in the domain"));
    }
    Ok(out)
}

/// Reads a domain and the utility spaces of its parties (name, file name, XML).
pub fn read(
    domain_file: &str,
    domain: &str,
    profiles: &[(String, String, String)],
) -> Result<Scenario> {
    let doc = parse(domain_file, domain)?;
    let issues = domain_issues(domain_file, &doc)?;
    let name = doc
        .descendants()
        .find(|n| n.has_tag_name("objective"))
        .and_then(|o| attr(o, "name"))
        .unwrap_or("GENIUS domain")
        .to_owned();
    let mut positions = Vec::new();
    let mut discount_factors = Vec::new();
    let mut notes = Vec::new();
    for (party, file, xml) in profiles {
        let doc = parse(file, xml)?;
        let by_name: HashMap<&str, roxmltree::Node<'_, '_>> = issue_nodes(&doc)
            .into_iter()
            .filter_map(|n| attr(n, "name").map(|name| (name, n)))
            .collect();
        let weights: HashMap<&str, f64> = doc
            .descendants()
            .filter(|n| n.has_tag_name("weight"))
            .map(|w| {
                Ok((
                    attr(w, "index").unwrap_or_default(),
                    number(file, w, "value")?,
                ))
            })
            .collect::<Result<_>>()?;
        let mut spec = PositionSpec::default();
        // Issues whose evaluations were divided by a largest other than 1, and whether any
        // evaluation was negative (see `in_shape`).
        let mut divided = Vec::new();
        let mut negative = false;
        for d in &issues {
            let id = &d.issue.id;
            let node = by_name.get(id.as_str()).copied().ok_or_else(|| {
                invalid(
                    file,
                    format!("the utility space has no issue {id:?} of the domain"),
                )
            })?;
            let index = attr(node, "index").unwrap_or(&d.index);
            let weight = weights.get(index).copied().ok_or_else(|| {
                invalid(
                    file,
                    format!("no <weight index=\"{index}\"> for issue {id:?}"),
                )
            })?;
            if weight < 0.0 {
                return Err(invalid(
                    file,
                    format!("issue {id:?} has a negative weight {weight}"),
                ));
            }
            spec.weights.insert(id.clone(), weight);
            let evaluations = match d.integers {
                None => discrete_evaluations(file, node, &d.issue)?,
                Some((low, high)) => integer_evaluations(file, node, id, low, high)?,
            };
            let top = evaluations
                .iter()
                .map(|(_, e)| *e)
                .fold(f64::NEG_INFINITY, f64::max);
            if evaluations.iter().any(|(_, e)| *e < 0.0) {
                if top <= 0.0 {
                    return Err(invalid(
                        file,
                        format!("issue {id:?}: every evaluation is 0 or less, some below; GENIUS divides by the largest, which must be positive"),
                    ));
                }
                negative = true;
            }
            if top > 0.0 && top != 1.0 {
                divided.push(format!("{id} (largest {top})"));
            }
            let values = evaluations
                .into_iter()
                .map(|(option, e)| (option, if top > 0.0 { e / top } else { 0.0 }))
                .collect();
            spec.values.insert(id.clone(), values);
        }
        let child_value = |tag: &str| -> Result<Option<f64>> {
            doc.descendants()
                .find(|n| n.has_tag_name(tag))
                .map(|n| number(file, n, "value"))
                .transpose()
        };
        spec.reservation = child_value("reservation")?.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&spec.reservation) {
            return Err(invalid(
                file,
                format!(
                    "reservation value {} is not between 0 and 1",
                    spec.reservation
                ),
            ));
        }
        if !divided.is_empty() {
            let shown = divided.len().min(5);
            notes.push(format!(
                "{party}'s evaluations are divided by each issue's largest, as GENIUS does: {}{}",
                divided[..shown].join(", "),
                if divided.len() > shown {
                    format!(" and {} more", divided.len() - shown)
                } else {
                    String::new()
                }
            ));
        }
        if negative {
            in_shape(file, party, &mut spec, &mut notes)?;
        }
        // Absent: 1. Not a number: 1, with a note (see the module doc).
        let discount = doc
            .descendants()
            .find(|n| n.has_tag_name("discount_factor") && attr(*n, "value").is_some());
        discount_factors.push(match discount.map(|n| number(file, n, "value")) {
            None => 1.0,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                notes.push(format!("{e}: the discount factor is ignored"));
                1.0
            }
        });
        positions.push((party.clone(), spec));
    }
    Ok(Scenario {
        name,
        issues: issues.into_iter().map(|d| d.issue).collect(),
        positions,
        discount_factors,
        notes,
    })
}

/// Rescales a utility with negative values (from negative evaluations) to [0, 1] by a positive
/// affine map of the whole utility, `u' = (u − L) / (H − L)`, its reservation value with it
/// (clamped to [0, 1]), with a note: the rule the NegMAS reader applies to utilities outside
/// the model's shape (`crate::negmas`), so the Pareto set and the Nash and Kalai–Smorodinsky
/// packages are those of the file's utilities.
fn in_shape(
    file: &str,
    party: &str,
    spec: &mut PositionSpec,
    notes: &mut Vec<String>,
) -> Result<()> {
    let total: f64 = spec.weights.values().sum();
    if total <= 0.0 || !total.is_finite() {
        return Ok(());
    }
    let (mut low, mut span) = (0.0, 0.0);
    for (id, values) in spec.values.iter_mut() {
        let w = spec.weights.get(id).copied().unwrap_or(0.0) / total;
        let min = values.values().copied().fold(f64::INFINITY, f64::min);
        let max = values.values().copied().fold(f64::NEG_INFINITY, f64::max);
        let spread = max - min;
        low += w * min;
        span += w * spread;
        for v in values.values_mut() {
            *v = if spread > 0.0 {
                (*v - min) / spread
            } else {
                0.0
            };
        }
        spec.weights.insert(id.clone(), w * spread);
    }
    if !(span > 0.0 && span.is_finite()) {
        return Err(invalid(
            file,
            "the utility is the same for every outcome: it says nothing to negotiate on",
        ));
    }
    let reservation = ((spec.reservation - low) / span).clamp(0.0, 1.0);
    notes.push(format!(
        "{party}'s utilities are rescaled to [0, 1] (negative evaluations): u' = (u − {low}) / {span}, reservation {} → {reservation} (Pareto set, Nash and Kalai–Smorodinsky packages unchanged)",
        spec.reservation
    ));
    spec.reservation = reservation;
    Ok(())
}

fn discrete_evaluations(
    file: &str,
    node: roxmltree::Node<'_, '_>,
    issue: &Issue,
) -> Result<Vec<(String, f64)>> {
    let given: HashMap<&str, f64> = node
        .children()
        .filter(|c| c.has_tag_name("item"))
        .map(|item| {
            let e = match attr(item, "evaluation") {
                Some(_) => number(file, item, "evaluation")?,
                None => 0.0,
            };
            Ok((attr(item, "value").unwrap_or_default(), e))
        })
        .collect::<Result<_>>()?;
    issue
        .options
        .iter()
        .map(|o| {
            let e = given.get(o.id.as_str()).copied().ok_or_else(|| {
                invalid(
                    file,
                    format!("issue {:?} has no evaluation of {:?}", issue.id, o.id),
                )
            })?;
            Ok((o.id.clone(), e))
        })
        .collect()
}

fn integer_evaluations(
    file: &str,
    node: roxmltree::Node<'_, '_>,
    id: &str,
    low: i64,
    high: i64,
) -> Result<Vec<(String, f64)>> {
    let evaluator = node.children().find(|c| c.has_tag_name("evaluator"));
    let of = |n: Option<roxmltree::Node<'_, '_>>, name: &str| -> Option<f64> {
        n.and_then(|n| attr(n, name))
            .and_then(|v| v.trim().parse().ok())
    };
    let line: Box<dyn Fn(i64) -> f64> = match (
        of(evaluator, "slope"),
        of(evaluator, "offset"),
        of(Some(node), "utilityLowestValue").or(of(evaluator, "utilityLowestValue")),
        of(Some(node), "utilityHighestValue").or(of(evaluator, "utilityHighestValue")),
    ) {
        (Some(slope), offset, _, _) => {
            let offset = offset.unwrap_or(0.0);
            Box::new(move |x| offset + slope * x as f64)
        }
        (None, _, Some(lo), Some(hi)) => Box::new(move |x| {
            if high == low {
                hi
            } else {
                lo + (hi - lo) * (x - low) as f64 / (high - low) as f64
            }
        }),
        _ => {
            return Err(invalid(
                file,
                format!("integer issue {id:?}: a linear evaluator needs slope (and offset) or utilityLowestValue and utilityHighestValue"),
            ))
        }
    };
    Ok((low..=high).map(|x| (x.to_string(), line(x))).collect())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes a domain file and one utility-space file per position (discrete issues; values as
/// evaluations).
pub fn write(name: &str, issues: &[Issue], positions: &[&PositionSpec]) -> (String, Vec<String>) {
    let issue_xml = |with: Option<&PositionSpec>| {
        let mut out = String::new();
        for (k, issue) in issues.iter().enumerate() {
            out.push_str(&format!(
                "<issue index=\"{}\" name=\"{}\" vtype=\"discrete\" type=\"discrete\" etype=\"discrete\">\n",
                k + 1,
                escape(&issue.id)
            ));
            for (j, o) in issue.options.iter().enumerate() {
                let evaluation = with.map_or(String::new(), |p| {
                    let v = p
                        .values
                        .get(&issue.id)
                        .and_then(|v| v.get(&o.id))
                        .copied()
                        .unwrap_or(0.0);
                    format!(" evaluation=\"{v}\"")
                });
                out.push_str(&format!(
                    "<item index=\"{}\" value=\"{}\" description=\"{}\"{evaluation}>\n</item>\n",
                    j + 1,
                    escape(&o.id),
                    escape(&o.label)
                ));
            }
            out.push_str("</issue>\n");
        }
        out
    };
    let objective = |inner: String| {
        format!(
            "<objective index=\"0\" description=\"\" name=\"{}\" type=\"objective\" etype=\"objective\">\n{inner}</objective>\n",
            escape(name)
        )
    };
    let domain = format!(
        "<negotiation_template>\n<utility_space number_of_issues=\"{}\">\n{}</utility_space>\n</negotiation_template>\n",
        issues.len(),
        objective(issue_xml(None))
    );
    let profiles = positions
        .iter()
        .map(|p| {
            let mut inner = issue_xml(Some(p));
            for (k, issue) in issues.iter().enumerate() {
                let w = p.weights.get(&issue.id).copied().unwrap_or(0.0);
                inner.push_str(&format!("<weight index=\"{}\" value=\"{w}\">\n</weight>\n", k + 1));
            }
            format!(
                "<utility_space>\n{}<discount_factor value=\"1.0\">\n</discount_factor>\n<reservation value=\"{}\">\n</reservation>\n</utility_space>\n",
                objective(inner),
                p.reservation
            )
        })
        .collect();
    (domain, profiles)
}

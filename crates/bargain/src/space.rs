//! Outcome spaces: issues with discrete options, and packages (one option per issue).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One choice on an issue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionDef {
    /// Identifier, unique within the issue (e.g. `"A"`).
    pub id: String,
    /// Human-readable label.
    pub label: String,
}

/// A negotiated issue and its options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Identifier, unique within the negotiation (e.g. `"light_truck_tariff"`).
    pub id: String,
    /// Human-readable label.
    pub label: String,
    /// The options, at least two... or one for a settled issue.
    pub options: Vec<OptionDef>,
}

/// Most options an issue may have.
pub const MAX_OPTIONS: usize = 1000;
/// Most issues a negotiation may have.
pub const MAX_ISSUES: usize = 64;

/// The issues of a negotiation; every package picks one option of each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeSpace {
    issues: Vec<Issue>,
}

/// A complete package: the index of the chosen option, per issue, in issue order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package(pub Vec<u16>);

impl OutcomeSpace {
    /// Checks ids (non-empty, unique) and option counts (1..=[`MAX_OPTIONS`]).
    pub fn new(issues: Vec<Issue>) -> Result<OutcomeSpace> {
        if issues.is_empty() {
            return Err(Error::invalid("issues", "at least one issue is required"));
        }
        if issues.len() > MAX_ISSUES {
            return Err(Error::invalid(
                "issues",
                format!("at most {MAX_ISSUES} issues, got {}", issues.len()),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, issue) in issues.iter().enumerate() {
            if issue.id.is_empty() {
                return Err(Error::invalid(
                    format!("issues[{i}].id"),
                    "must not be empty",
                ));
            }
            if !seen.insert(issue.id.as_str()) {
                return Err(Error::invalid(
                    format!("issues[{i}].id"),
                    format!("issue {:?} appears twice", issue.id),
                ));
            }
            if issue.options.is_empty() || issue.options.len() > MAX_OPTIONS {
                return Err(Error::invalid(
                    format!("issues[{i}].options"),
                    format!(
                        "an issue needs 1 to {MAX_OPTIONS} options, got {}",
                        issue.options.len()
                    ),
                ));
            }
            let mut ids = std::collections::HashSet::new();
            for (j, o) in issue.options.iter().enumerate() {
                if o.id.is_empty() || !ids.insert(o.id.as_str()) {
                    return Err(Error::invalid(
                        format!("issues[{i}].options[{j}].id"),
                        format!(
                            "option ids must be non-empty and unique within issue {:?}",
                            issue.id
                        ),
                    ));
                }
            }
        }
        Ok(OutcomeSpace { issues })
    }

    /// The issues, in order.
    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }

    /// Number of packages, as a float (it can exceed any integer type for large spaces).
    pub fn size(&self) -> f64 {
        self.issues.iter().map(|i| i.options.len() as f64).product()
    }

    /// Number of packages, when it fits in a `u64`.
    pub fn size_exact(&self) -> Option<u64> {
        self.issues
            .iter()
            .try_fold(1u64, |acc, i| acc.checked_mul(i.options.len() as u64))
    }

    /// Index of the issue with `id`.
    pub fn issue_index(&self, id: &str) -> Option<usize> {
        self.issues.iter().position(|i| i.id == id)
    }

    /// Index of option `option` of issue `issue`.
    pub fn option_index(&self, issue: usize, option: &str) -> Option<u16> {
        self.issues
            .get(issue)?
            .options
            .iter()
            .position(|o| o.id == option)
            .map(|i| i as u16)
    }

    /// A package from (issue id, option id) pairs; every issue exactly once.
    pub fn package<'a>(
        &self,
        choices: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Package> {
        let mut chosen: Vec<Option<u16>> = vec![None; self.issues.len()];
        for (issue_id, option_id) in choices {
            let i = self
                .issue_index(issue_id)
                .ok_or_else(|| Error::invalid("package", format!("unknown issue {issue_id:?}")))?;
            let o = self.option_index(i, option_id).ok_or_else(|| {
                Error::invalid(
                    "package",
                    format!("issue {issue_id:?} has no option {option_id:?}"),
                )
            })?;
            if chosen[i].replace(o).is_some() {
                return Err(Error::invalid(
                    "package",
                    format!("issue {issue_id:?} is chosen twice"),
                ));
            }
        }
        let missing: Vec<&str> = chosen
            .iter()
            .zip(&self.issues)
            .filter(|(c, _)| c.is_none())
            .map(|(_, i)| i.id.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Error::invalid(
                "package",
                format!(
                    "a package chooses an option of every issue; missing: {}",
                    missing.join(", ")
                ),
            ));
        }
        Ok(Package(
            chosen.into_iter().map(|c| c.unwrap_or(0)).collect(),
        ))
    }

    /// Checks that a package fits this space.
    pub fn check(&self, package: &Package) -> Result<()> {
        if package.0.len() != self.issues.len() {
            return Err(Error::invalid(
                "package",
                format!(
                    "has {} choices for {} issues",
                    package.0.len(),
                    self.issues.len()
                ),
            ));
        }
        for (i, (&o, issue)) in package.0.iter().zip(&self.issues).enumerate() {
            if usize::from(o) >= issue.options.len() {
                return Err(Error::invalid(
                    format!("package[{i}]"),
                    format!("issue {:?} has no option #{o}", issue.id),
                ));
            }
        }
        Ok(())
    }

    /// The package as (issue id, option id) pairs.
    pub fn describe(&self, package: &Package) -> Vec<(String, String)> {
        package
            .0
            .iter()
            .zip(&self.issues)
            .map(|(&o, issue)| {
                let option = issue
                    .options
                    .get(usize::from(o))
                    .map_or("?", |x| x.id.as_str());
                (issue.id.clone(), option.to_owned())
            })
            .collect()
    }

    /// The package numbered `number` in the lexicographic order of [`OutcomeSpace::packages`].
    pub fn package_at(&self, mut number: u64) -> Package {
        let mut choices = vec![0u16; self.issues.len()];
        for (c, issue) in choices.iter_mut().zip(&self.issues).rev() {
            let n = issue.options.len() as u64;
            *c = (number % n) as u16;
            number /= n;
        }
        Package(choices)
    }

    /// Every package, in lexicographic order (only for small spaces).
    pub fn packages(&self) -> impl Iterator<Item = Package> + '_ {
        let sizes: Vec<u16> = self.issues.iter().map(|i| i.options.len() as u16).collect();
        let mut next = Some(vec![0u16; sizes.len()]);
        std::iter::from_fn(move || {
            let current = next.take()?;
            let mut n = current.clone();
            for i in (0..n.len()).rev() {
                n[i] += 1;
                if n[i] < sizes[i] {
                    next = Some(n);
                    break;
                }
                n[i] = 0;
            }
            Some(Package(current))
        })
    }
}

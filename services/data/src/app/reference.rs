//! Reference data: countries and areas, groups (shipped and user-defined) and the HS
//! nomenclature (`tradepact_model::reference`), searched and filtered.

use tradepact_model::reference::{self, CountryInfo, CountryKind, GroupInfo, HsEntry};
use tradepact_model::{Failure, Outcome, Violation};

use super::Trade;

/// Whether `text` contains every word of `search` (case-insensitive).
fn matches(text: &str, search: &str) -> bool {
    let text = text.to_lowercase();
    search
        .split_whitespace()
        .all(|w| text.contains(&w.to_lowercase()))
}

impl Trade {
    /// The countries and areas whose code or name holds every word of `search`, of `kind`.
    pub fn countries(&self, search: &str, kind: Option<CountryKind>) -> Vec<&'static CountryInfo> {
        reference::countries()
            .iter()
            .filter(|c| kind.is_none_or(|k| c.kind == k))
            .filter(|c| matches(&format!("{} {}", c.code, c.name), search))
            .collect()
    }

    /// The groups (shipped, then the users'), or the one named `name`; with `as_of`, each
    /// with the members of that year only.
    pub async fn groups(&self, name: &str, as_of: Option<u16>) -> Outcome<Vec<GroupInfo>> {
        let mine = self.blocking(|this| this.store.user_groups()).await?;
        let mut out: Vec<GroupInfo> = reference::groups().iter().cloned().chain(mine).collect();
        out.retain(|g| name.is_empty() || g.name == name);
        if out.is_empty() && !name.is_empty() {
            return Err(Failure::NotFound(format!(
                "no group {}",
                tradepact_model::echo(name)
            )));
        }
        if let Some(year) = as_of {
            for g in &mut out {
                g.members.retain(|m| m.in_year(year));
            }
        }
        Ok(out)
    }

    /// Stores a user's group, checked.
    pub async fn define_group(&self, group: GroupInfo) -> Outcome<GroupInfo> {
        group.check().map_err(|errors| {
            Failure::Invalid(
                errors
                    .into_iter()
                    .map(|(field, description)| Violation { field, description })
                    .collect(),
            )
        })?;
        let stored = group.clone();
        let deadline = tradepact_rpc::deadline::call_deadline();
        self.blocking(move |this| this.log.define_group(&stored, deadline))
            .await?;
        Ok(group)
    }

    /// Up to `size` products of the nomenclature from `offset` on, under `parent` (a code of
    /// the shipped edition, or empty) and matching `search` (words of the description, or a
    /// code prefix); the offset of the next page.
    pub fn products(
        &self,
        search: &str,
        parent: &str,
        offset: usize,
        size: usize,
    ) -> Outcome<(Vec<&'static HsEntry>, Option<usize>)> {
        let parent = match parent.split_once(':') {
            None if parent.is_empty() => None,
            Some((reference::HS_NOMENCLATURE | "HS", code)) => Some(code),
            _ => {
                return Err(Failure::invalid(
                    "parent",
                    format!(
                        "a product of the shipped nomenclature ({}:CODE), got {}",
                        reference::HS_NOMENCLATURE,
                        tradepact_model::echo(parent)
                    ),
                ))
            }
        };
        let search = search.trim();
        let by_code = !search.is_empty() && search.bytes().all(|b| b.is_ascii_digit());
        let mut found = reference::hs2022()
            .iter()
            .filter(|e| parent.is_none_or(|p| e.parent == p))
            .filter(|e| {
                if by_code {
                    e.code.starts_with(search)
                } else {
                    matches(e.description, search)
                }
            })
            .skip(offset);
        let page: Vec<&HsEntry> = found.by_ref().take(size).collect();
        let next = found.next().map(|_| offset + page.len());
        Ok((page, next))
    }
}

//! Reference data as messages, and groups from requests.

use tradepact_model::reference::{CountryInfo, CountryKind, GroupInfo, HsEntry, Membership};
use tradepact_model::{Country, Violations};
use tradepact_proto::data_v1 as pb;

pub(crate) fn kind_in(kind: i32) -> Result<Option<CountryKind>, String> {
    match pb::CountryKind::try_from(kind) {
        Ok(pb::CountryKind::Unspecified) => Ok(None),
        Ok(pb::CountryKind::Country) => Ok(Some(CountryKind::Country)),
        Ok(pb::CountryKind::Former) => Ok(Some(CountryKind::Former)),
        Ok(pb::CountryKind::Area) => Ok(Some(CountryKind::Area)),
        Err(_) => Err(format!("unknown country kind value {kind}")),
    }
}

pub(crate) fn country_out(c: &CountryInfo) -> pb::Country {
    pb::Country {
        code: c.code.to_string(),
        m49: c.m49.into(),
        name: c.name.to_owned(),
        kind: match c.kind {
            CountryKind::Country => pb::CountryKind::Country,
            CountryKind::Former => pb::CountryKind::Former,
            CountryKind::Area => pb::CountryKind::Area,
        }
        .into(),
        until_year: c.until.map_or(0, u32::from),
    }
}

pub(crate) fn group_out(g: GroupInfo) -> pb::Group {
    pb::Group {
        name: g.name,
        description: g.description,
        members: g
            .members
            .iter()
            .map(|m| pb::GroupMember {
                code: m.code.to_string(),
                from_year: m.from.map_or(0, u32::from),
                until_year: m.until.map_or(0, u32::from),
            })
            .collect(),
        user_defined: g.user_defined,
    }
}

/// A year of a request: 0 is none; beyond u16 is a violation.
fn year(y: u32, field: impl FnOnce() -> String, v: &mut Violations) -> Option<u16> {
    match u16::try_from(y) {
        Ok(0) => None,
        Ok(y) => Some(y),
        Err(_) => {
            v.add(field(), format!("{y} is not a year"));
            None
        }
    }
}

/// The year of `as_of_year`.
pub(crate) fn as_of(y: u32, v: &mut Violations) -> Option<u16> {
    year(y, || "as_of_year".to_owned(), v)
}

/// A user's group from a `DefineGroup` request (its rules are checked by the application).
pub(crate) fn group_in(g: Option<&pb::Group>, v: &mut Violations) -> Option<GroupInfo> {
    let Some(g) = g else {
        v.add("group", "is required");
        return None;
    };
    let members = g
        .members
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let code = v.check(format!("group.members[{i}].code"), Country::parse(&m.code));
            let from = year(m.from_year, || format!("group.members[{i}].from_year"), v);
            let until = year(m.until_year, || format!("group.members[{i}].until_year"), v);
            Some(Membership {
                code: code?,
                from,
                until,
            })
        })
        .collect();
    Some(GroupInfo {
        name: g.name.clone(),
        description: g.description.clone(),
        members,
        user_defined: true,
    })
}

pub(crate) fn product_out(e: &HsEntry) -> pb::ProductInfo {
    let scheme = tradepact_model::reference::HS_NOMENCLATURE;
    pb::ProductInfo {
        code: format!("{scheme}:{}", e.code),
        description: e.description.to_owned(),
        parent: if e.parent.is_empty() {
            String::new()
        } else {
            format!("{scheme}:{}", e.parent)
        },
        section: e.section.to_owned(),
        level: e.code.len() as u32,
    }
}

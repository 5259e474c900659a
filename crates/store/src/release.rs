//! Releases (vintages): which value of a period a read sees.
//!
//! Every value belongs to a release: a named one ([`Release`]: a label, a publication date, a
//! source) or the *unnamed* one (id 0) of writes that name none. Releases are ranked by date,
//! ties by the order they were first written; the unnamed release ranks below every named
//! one. A period's *latest* value is the one of its highest-ranked release; a read *as of* a
//! release or a date sees, for each period, the value of the highest-ranked *named* release at
//! or below it ([`View::AsOf`]), and periods with none are absent: unnamed values were never
//! published, so no as-of read sees them.
//!
//! So a store whose writes name no release behaves as before releases: a write replaces the
//! value. An unnamed write to a period that has named values replaces only its unnamed value
//! (a working figure never hides a published one).
//!
//! History is kept whole (every release's value of every period, see [`crate::chunk`]);
//! deleting a series deletes its history with it.

use std::collections::HashMap;

use crate::model::Release;
use crate::{Error, Result};

/// Where a release stands in the order of releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rank {
    /// Publication date (Julian day).
    date: i32,
    /// Order of first write (the release id).
    order: u32,
}

impl Rank {
    /// The unnamed release's rank: below every named one.
    pub const UNNAMED: Rank = Rank {
        date: i32::MIN,
        order: 0,
    };

    /// The rank of release `id` published on `date`.
    pub(crate) fn with_order(self, order: u32) -> Rank {
        Rank { order, ..self }
    }

    /// Every release published on or before `date`.
    pub fn on(date: time::Date) -> Rank {
        Rank {
            date: date.to_julian_day(),
            order: u32::MAX,
        }
    }
}

/// Which values a read sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum View {
    /// The latest value of each period.
    #[default]
    Latest,
    /// The values as they stood at a rank ([`Rank::on`] a date, or a release's own rank).
    AsOf(Rank),
}

/// A read's choice of figures as asked, resolved against the store's releases by
/// [`crate::Store::view`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum AsOf {
    /// The latest figures.
    #[default]
    Latest,
    /// As of the release of this label.
    Release(String),
    /// As of the releases published on or before this day.
    Date(time::Date),
}

/// A stored release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// Its id in the store (1, 2, … in the order first written).
    pub id: u32,
    /// The release.
    pub release: Release,
}

impl ReleaseInfo {
    /// Its rank.
    pub fn rank(&self) -> Rank {
        Rank {
            date: self.release.date.to_julian_day(),
            order: self.id,
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let r = &self.release;
        let mut out = Vec::with_capacity(8 + r.label.len() + r.source.len());
        out.extend_from_slice(&r.date.to_julian_day().to_be_bytes());
        out.extend_from_slice(&(r.label.len() as u16).to_be_bytes());
        out.extend_from_slice(r.label.as_bytes());
        out.extend_from_slice(r.source.as_bytes());
        out
    }

    pub(crate) fn decode(id: u32, b: &[u8]) -> Result<ReleaseInfo> {
        let corrupt = || Error::Corrupt(format!("release {id}"));
        let day = i32::from_be_bytes(
            b.get(0..4)
                .ok_or_else(corrupt)?
                .try_into()
                .map_err(|_| corrupt())?,
        );
        let len = u16::from_be_bytes(
            b.get(4..6)
                .ok_or_else(corrupt)?
                .try_into()
                .map_err(|_| corrupt())?,
        );
        let label = b.get(6..6 + usize::from(len)).ok_or_else(corrupt)?;
        let source = &b[6 + usize::from(len)..];
        Ok(ReleaseInfo {
            id,
            release: Release {
                label: String::from_utf8(label.to_vec()).map_err(|_| corrupt())?,
                date: time::Date::from_julian_day(day).map_err(|_| corrupt())?,
                source: String::from_utf8(source.to_vec()).map_err(|_| corrupt())?,
            },
        })
    }
}

/// The releases of a store, in memory (they are few: one per publication).
#[derive(Debug, Default)]
pub(crate) struct Releases {
    /// By id − 1.
    all: Vec<ReleaseInfo>,
    by_label: HashMap<String, u32>,
}

impl Releases {
    pub(crate) fn add(&mut self, info: ReleaseInfo) {
        self.by_label.insert(info.release.label.clone(), info.id);
        self.all.push(info);
    }

    pub(crate) fn next_id(&self) -> u32 {
        self.all.len() as u32 + 1
    }

    pub(crate) fn rank(&self, id: u32) -> Rank {
        match id.checked_sub(1).and_then(|i| self.all.get(i as usize)) {
            Some(info) => info.rank(),
            None => Rank::UNNAMED,
        }
    }

    pub(crate) fn by_label(&self, label: &str) -> Option<&ReleaseInfo> {
        self.by_label
            .get(label)
            .map(|&id| &self.all[id as usize - 1])
    }

    pub(crate) fn by_id(&self, id: u32) -> Option<&ReleaseInfo> {
        id.checked_sub(1).and_then(|i| self.all.get(i as usize))
    }

    pub(crate) fn all(&self) -> &[ReleaseInfo] {
        &self.all
    }
}

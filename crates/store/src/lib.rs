//! The trade-flow time-series store: sled underneath, chunks of periods on top.
//!
//! # Model
//! A *series* is identified by a [`SeriesKey`] (reporter, partner, flow, kind, product,
//! frequency, measure). Its *points* are (period, value in the series' measure, source). A period is held as an
//! ordinal in its frequency (`year`, `year·4 + quarter − 1`, `year·12 + month − 1`), so integer
//! order is time order. Writing a period again replaces its value (upsert) — unless the write
//! names a *release* ([`release`]): then the values of other releases are kept beside it, and
//! reads may ask for the figures as of a release or a date ([`View`]).
//!
//! # Layout
//! One sled tree, with one-byte prefixes so that one [`sled::Batch`] makes a write atomic.
//! Trade data is millions of short series (a few dozen annual periods each) beside some long
//! ones, so a series is found by its key alone and a short one is one entry:
//! - `K` + encoded key → the series' entry: its point count, first and last period, and, when
//!   all its points fall in one block of [`chunk::BLOCK`] periods, its chunk
//!   ([`chunk::Chunk`]) inline. A read of a short series is one lookup; a question across the
//!   matrix is one ordered scan of these entries; listing needs nothing else.
//! - `C` + encoded key + 0x00 + block (u32 BE) → the chunks of a series whose points span
//!   several blocks (the inline chunk moves out when a write crosses into a second block).
//!   Big-endian blocks make byte order time order, so a range read is one sled range scan.
//!   Chunks are checksummed (CRC32C) and keep the values earlier releases gave their periods
//!   after the latest ones.
//! - `N` + label → release id (u32 BE), and `R` + id → the release (date, label, source):
//!   written in the same batch as the first values of the release.
//! - `L` + sequence (u64 BE) → the release and the series (encoded keys) and period range each
//!   write touched, for the last [`RETAINED_CHANGES`] writes, and `Q` → the last sequence
//!   number: every write gets the next number, in the same atomic batch, so a watcher can
//!   resume from a position.
//! - `V` → the format of the layout ([`FORMAT`], u32 BE). A store of another format is
//!   refused at open ([`Error::Format`]), never read wrongly; [`migrate()`] brings a store of
//!   formats 1–3 to the current one (`tradepact migrate-store DIR`).
//!
//! A chunk that fails its checksum is an error naming the series and its periods;
//! [`Store::verify`] reads every chunk and lists the corrupt ones (`tradepact verify-store`).
//!
//! Writes are serialised by a mutex (read-modify-write of chunks) and made durable by
//! [`Store::flush`] before they are acknowledged; concurrent flushes share one fsync.
//!
//! Derived figures ([`analysis`]) are computed at query time and name missing inputs
//! instead of treating gaps as zero.

pub mod aggregate;
pub mod analysis;
pub mod block;
pub mod chunk;
pub mod columns;
pub(crate) mod framed;
pub mod matrix;
mod migrate;
pub(crate) mod part;
pub mod query;
pub mod release;
pub mod reserve;
pub mod revisions;
mod store;

pub use migrate::{migrate, Migrated};
pub use release::{AsOf, Rank, ReleaseInfo, View};
pub use store::snapshot::{self, SnapshotInfo};
pub use store::{
    Change, SeriesInfo, Store, StoreOptions, StoredPoint, Verified, WriteSummary, FORMAT,
    RETAINED_CHANGES,
};
/// The value types, from `tradepact-model`.
pub use tradepact_model as model;
pub use tradepact_model::{
    Country, Flow, Frequency, Kind, Period, Point, Product, Release, SeriesFilter, SeriesKey,
    SeriesPoints, Violation, Violations,
};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is invalid; each violation names its field.
    #[error("invalid input: {}", .0.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Violation>),
    /// A series or a value does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The underlying database failed.
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    /// Stored bytes do not decode.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// A position is outside what is kept (e.g. a watch resuming from a write too old).
    #[error("{0}")]
    OutOfRange(String),
    /// The store was written in another format (see [`FORMAT`]).
    #[error("{0}")]
    Format(String),
    /// The log the store is a view of cannot be reached or did not answer in time (cluster
    /// mode); the message says whether the write may still be applied.
    #[error("{0}")]
    Unavailable(String),
}

impl Error {
    /// What went wrong, without the kind's prefix for a corrupt store (for messages that
    /// name the kind themselves).
    pub fn detail(&self) -> String {
        match self {
            Error::Corrupt(what) => what.clone(),
            other => other.to_string(),
        }
    }
}

/// Result with the store's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! A chunk: the points of one series in one block of [`BLOCK`] consecutive periods,
//! packed as columns, with the values of earlier releases kept beside the latest.
//!
//! Layout (version 2, store format 3):
//! ```text
//! [2u8] [crc32c u32 LE of every byte after it]
//! [n u8] [n × offset u8] [n × value f64 LE] [s u8] [s × (len u16 LE, utf-8)] [n × source u8]
//! [r u16 LE] [r × release id u32 LE] [n × release u16 LE, only when r > 0]
//! [h u32 LE] [h × (offset u8, value f64 LE, source u8, release u16 LE)]
//! ```
//! The first line's columns are the *latest* value of each period (the one of the release
//! ranked highest, see [`crate::release`]): a read of the latest figures never looks at the
//! rest. `offset` is the period's place in the block (ascending), sources and releases are
//! small per-chunk dictionaries; `r = 0` says every value is of the unnamed release (a store
//! without releases pays three bytes per chunk for them). The `h` *history* entries are the
//! values the latest ones superseded, sorted by offset then release, at most one per period
//! and release. The checksum makes a flipped byte a named error instead of a wrong figure.

use std::sync::Arc;

use crate::release::Rank;
use crate::{Error, Result};

/// Periods per chunk.
pub const BLOCK: u32 = 128;

const VERSION: u8 = 2;
/// Version byte and checksum.
const HEADER: usize = 5;

/// One decoded value of a chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Offset of the period inside the block, `0..BLOCK`.
    pub offset: u8,
    /// Value in the series' measure.
    pub value: f64,
    /// Source text (shared: most points of a chunk have the same one).
    pub source: Arc<str>,
    /// The release the value belongs to (0: unnamed).
    pub release: u32,
}

/// The points of one block: the latest value of each period, sorted by offset with no
/// duplicates, and the superseded values of other releases.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chunk {
    entries: Vec<Entry>,
    history: Vec<Entry>,
}

/// What an upsert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsert {
    /// The period was new.
    Inserted,
    /// The period had a value (of this or another release).
    Updated,
}

impl Chunk {
    /// The latest entries in period order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The superseded values, by offset then release.
    pub fn history(&self) -> &[Entry] {
        &self.history
    }

    /// Number of periods.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the chunk holds no point.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Inserts or replaces the value at `offset`, of the unnamed release.
    pub fn upsert(&mut self, offset: u8, value: f64, source: &Arc<str>) -> Upsert {
        self.upsert_release(offset, value, source, 0, &|_| Rank::UNNAMED)
    }

    /// Inserts or replaces the value of `release` at `offset`: it becomes the latest when its
    /// release ranks at least as high as the latest one's (`rank`), else it is kept as history.
    pub fn upsert_release(
        &mut self,
        offset: u8,
        value: f64,
        source: &Arc<str>,
        release: u32,
        rank: &impl Fn(u32) -> Rank,
    ) -> Upsert {
        debug_assert!(u32::from(offset) < BLOCK);
        let entry = Entry {
            offset,
            value,
            source: source.clone(),
            release,
        };
        // Points mostly arrive in period order: appending is the common case.
        if self.entries.last().is_none_or(|e| e.offset < offset) {
            self.entries.push(entry);
            return Upsert::Inserted;
        }
        match self.entries.binary_search_by_key(&offset, |e| e.offset) {
            Ok(i) => {
                let latest = &mut self.entries[i];
                if latest.release == release {
                    latest.value = value;
                    if !Arc::ptr_eq(&latest.source, source) {
                        latest.source = source.clone();
                    }
                } else if rank(release) > rank(latest.release) {
                    let superseded = std::mem::replace(latest, entry);
                    self.keep(superseded);
                } else {
                    self.keep(entry);
                }
                Upsert::Updated
            }
            Err(i) => {
                self.entries.insert(i, entry);
                Upsert::Inserted
            }
        }
    }

    /// Adds (or replaces) a superseded value.
    fn keep(&mut self, entry: Entry) {
        match self
            .history
            .binary_search_by_key(&(entry.offset, entry.release), |e| (e.offset, e.release))
        {
            Ok(i) => self.history[i] = entry,
            Err(i) => self.history.insert(i, entry),
        }
    }

    /// The chunk as it stood at `cutoff`: for each period, the value of the named release
    /// ranked highest among those ranked at or below `cutoff`; periods with none are left out
    /// (unnamed values, never published, are not seen as of anything). No history.
    pub fn as_of(&self, cutoff: Rank, rank: &impl Fn(u32) -> Rank) -> Chunk {
        let entries = self
            .entries
            .iter()
            .filter_map(|latest| {
                if latest.release != 0 && rank(latest.release) <= cutoff {
                    return Some(latest.clone());
                }
                let start = self.history.partition_point(|e| e.offset < latest.offset);
                self.history[start..]
                    .iter()
                    .take_while(|e| e.offset == latest.offset)
                    .filter(|e| e.release != 0 && rank(e.release) <= cutoff)
                    .max_by_key(|e| rank(e.release))
                    .cloned()
            })
            .collect();
        Chunk {
            entries,
            history: Vec::new(),
        }
    }

    /// Packs the chunk into its stored form.
    pub fn encode(&self) -> Vec<u8> {
        let n = self.entries.len();
        let all = || self.entries.iter().chain(&self.history);
        let mut sources: Vec<&str> = Vec::new();
        let mut releases: Vec<u32> = Vec::new();
        for e in all() {
            if !sources.contains(&&*e.source) {
                sources.push(&e.source);
            }
            if !releases.contains(&e.release) {
                releases.push(e.release);
            }
        }
        if releases == [0] {
            releases.clear();
        }
        let source_of =
            |e: &Entry| sources.iter().position(|s| *s == &*e.source).unwrap_or(0) as u8;
        let release_of =
            |e: &Entry| releases.iter().position(|r| *r == e.release).unwrap_or(0) as u16;
        let source_bytes: usize = sources.iter().map(|s| 2 + s.len()).sum();
        let mut out = Vec::with_capacity(
            HEADER + 8 + n * 12 + source_bytes + releases.len() * 4 + self.history.len() * 12,
        );
        out.push(VERSION);
        out.extend_from_slice(&[0; 4]);
        out.push(n as u8);
        out.extend(self.entries.iter().map(|e| e.offset));
        for e in &self.entries {
            out.extend_from_slice(&e.value.to_le_bytes());
        }
        out.push(sources.len() as u8);
        for s in &sources {
            out.extend_from_slice(&(s.len() as u16).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out.extend(self.entries.iter().map(source_of));
        out.extend_from_slice(&(releases.len() as u16).to_le_bytes());
        for r in &releases {
            out.extend_from_slice(&r.to_le_bytes());
        }
        if !releases.is_empty() {
            for e in &self.entries {
                out.extend_from_slice(&release_of(e).to_le_bytes());
            }
        }
        out.extend_from_slice(&(self.history.len() as u32).to_le_bytes());
        for e in &self.history {
            out.push(e.offset);
            out.extend_from_slice(&e.value.to_le_bytes());
            out.push(source_of(e));
            out.extend_from_slice(&release_of(e).to_le_bytes());
        }
        let crc = crc32c::crc32c(&out[HEADER..]);
        out[1..HEADER].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Unpacks a stored chunk, checking its checksum, every length and every invariant.
    pub fn decode(bytes: &[u8]) -> Result<Chunk> {
        Ok(Chunk::of_view(&ChunkView::parse(bytes)?, true))
    }

    /// A checked chunk's values as owned entries: the latest, and its history when `history`
    /// (a read of the latest figures leaves it out).
    pub fn of_view(view: &ChunkView<'_>, history: bool) -> Chunk {
        let sources: Vec<Arc<str>> = view.sources.iter().map(|s| Arc::from(*s)).collect();
        let entries = (0..view.len())
            .map(|i| Entry {
                offset: view.offsets[i],
                value: view.value(i),
                source: sources[usize::from(view.index[i])].clone(),
                release: view.release(i),
            })
            .collect();
        let history = match history {
            false => Vec::new(),
            true => (view.history.chunks_exact(HISTORY_ENTRY))
                .map(|h| Entry {
                    offset: h[0],
                    value: f64::from_le_bytes(h[1..9].try_into().unwrap_or_default()),
                    source: sources[usize::from(h[9])].clone(),
                    release: view.releases[usize::from(u16::from_le_bytes([h[10], h[11]]))],
                })
                .collect(),
        };
        Chunk { entries, history }
    }
}

/// Unpacks a chunk of store formats 1 and 2 (chunk version 1: no checksum, no releases):
/// `[1u8] [n u8] [n × offset u8] [n × value f64 LE] [s u8] [s × (len u16 LE, utf-8)]
/// [n × source u8]`; for [`crate::migrate()`].
pub(crate) fn decode_version_1(bytes: &[u8]) -> Result<Chunk> {
    let corrupt = |what: &str| Error::Corrupt(format!("chunk of format 2: {what}"));
    let mut r = Reader(bytes);
    if r.u8() != Some(1) {
        return Err(corrupt("unknown version"));
    }
    let n = usize::from(r.u8().ok_or_else(|| corrupt("no count"))?);
    let offsets = r.take(n).ok_or_else(|| corrupt("short offsets"))?;
    let values = r.take(n * 8).ok_or_else(|| corrupt("short values"))?;
    let s = usize::from(r.u8().ok_or_else(|| corrupt("no source count"))?);
    let mut sources: Vec<Arc<str>> = Vec::with_capacity(s);
    for _ in 0..s {
        let len = r.take(2).ok_or_else(|| corrupt("short source length"))?;
        let text = r
            .take(usize::from(u16::from_le_bytes([len[0], len[1]])))
            .ok_or_else(|| corrupt("short source"))?;
        sources.push(Arc::from(
            std::str::from_utf8(text).map_err(|_| corrupt("source not utf-8"))?,
        ));
    }
    let index = r.take(n).ok_or_else(|| corrupt("short source index"))?;
    if !r.0.is_empty()
        || offsets.iter().any(|&o| u32::from(o) >= BLOCK)
        || offsets.windows(2).any(|w| w[0] >= w[1])
        || index.iter().any(|&i| usize::from(i) >= s)
    {
        return Err(corrupt("bad layout"));
    }
    let entries = (0..n)
        .map(|i| Entry {
            offset: offsets[i],
            value: f64::from_le_bytes(values[i * 8..i * 8 + 8].try_into().unwrap_or_default()),
            source: sources[usize::from(index[i])].clone(),
            release: 0,
        })
        .collect();
    Ok(Chunk {
        entries,
        history: Vec::new(),
    })
}

/// Bytes of one history entry.
const HISTORY_ENTRY: usize = 12;

/// A stored chunk read in place: checksum, every length and invariant checked once, then each
/// latest entry read straight from the bytes (no allocation per entry).
#[derive(Clone, Debug)]
pub struct ChunkView<'a> {
    offsets: &'a [u8],
    values: &'a [u8],
    sources: Vec<&'a str>,
    index: &'a [u8],
    releases: Vec<u32>,
    release_index: &'a [u8],
    history: &'a [u8],
}

impl<'a> ChunkView<'a> {
    /// Checks a stored chunk (the same checks as [`Chunk::decode`]).
    pub fn parse(bytes: &'a [u8]) -> Result<ChunkView<'a>> {
        let corrupt = |what: &str| Error::Corrupt(format!("chunk: {what}"));
        let mut r = Reader(bytes);
        if r.u8().ok_or_else(|| corrupt("empty"))? != VERSION {
            return Err(corrupt("unknown version"));
        }
        let crc = r.take(4).ok_or_else(|| corrupt("no checksum"))?;
        if crc32c::crc32c(r.0) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(corrupt("checksum mismatch"));
        }
        let n = usize::from(r.u8().ok_or_else(|| corrupt("no count"))?);
        let offsets = r.take(n).ok_or_else(|| corrupt("short offsets"))?;
        let values = r.take(n * 8).ok_or_else(|| corrupt("short values"))?;
        let s = usize::from(r.u8().ok_or_else(|| corrupt("no source count"))?);
        let mut sources = Vec::with_capacity(s);
        for _ in 0..s {
            let len = r.take(2).ok_or_else(|| corrupt("short source length"))?;
            let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
            let text = r.take(len).ok_or_else(|| corrupt("short source"))?;
            sources.push(std::str::from_utf8(text).map_err(|_| corrupt("source not utf-8"))?);
        }
        let index = r.take(n).ok_or_else(|| corrupt("short source index"))?;
        let count = r.take(2).ok_or_else(|| corrupt("no release count"))?;
        let rc = usize::from(u16::from_le_bytes([count[0], count[1]]));
        let releases = r
            .take(rc * 4)
            .ok_or_else(|| corrupt("short releases"))?
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect::<Vec<_>>();
        let release_index = if rc > 0 {
            r.take(n * 2)
                .ok_or_else(|| corrupt("short release index"))?
        } else {
            &[]
        };
        let h = r.take(4).ok_or_else(|| corrupt("no history count"))?;
        let h = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let history = r
            .take(h.saturating_mul(HISTORY_ENTRY))
            .ok_or_else(|| corrupt("short history"))?;
        if !r.0.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        if offsets.iter().any(|&o| u32::from(o) >= BLOCK)
            || offsets.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(corrupt("offsets out of order"));
        }
        if index.iter().any(|&i| usize::from(i) >= s) {
            return Err(corrupt("source index out of range"));
        }
        let release_at = |b: &[u8]| usize::from(u16::from_le_bytes([b[0], b[1]]));
        if release_index.chunks_exact(2).any(|b| release_at(b) >= rc) {
            return Err(corrupt("release index out of range"));
        }
        if h > 0 && rc == 0 {
            return Err(corrupt("history without releases"));
        }
        let mut previous: Option<(u8, u32)> = None;
        for e in history.chunks_exact(HISTORY_ENTRY) {
            if usize::from(e[9]) >= s || release_at(&e[10..12]) >= rc {
                return Err(corrupt("history index out of range"));
            }
            let at = (e[0], releases[release_at(&e[10..12])]);
            if u32::from(at.0) >= BLOCK || previous.is_some_and(|p| p >= at) {
                return Err(corrupt("history out of order"));
            }
            if offsets.binary_search(&at.0).is_err() {
                return Err(corrupt("history of a period with no value"));
            }
            previous = Some(at);
        }
        Ok(ChunkView {
            offsets,
            values,
            sources,
            index,
            releases,
            release_index,
            history,
        })
    }

    /// Number of periods.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether the chunk holds no point.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Whether any value belongs to a named release (an as-of read must then decode it).
    pub fn has_releases(&self) -> bool {
        !self.releases.is_empty()
    }

    /// Number of superseded values kept.
    pub fn history_len(&self) -> usize {
        self.history.len() / HISTORY_ENTRY
    }

    /// Offset of point `i` in the block. Panics when `i >= len()`.
    pub fn offset(&self, i: usize) -> u8 {
        self.offsets[i]
    }

    /// Value of point `i`. Panics when `i >= len()`.
    pub fn value(&self, i: usize) -> f64 {
        let mut v = [0u8; 8];
        v.copy_from_slice(&self.values[i * 8..i * 8 + 8]);
        f64::from_le_bytes(v)
    }

    /// Source of point `i`. Panics when `i >= len()`.
    pub fn source(&self, i: usize) -> &'a str {
        self.sources[usize::from(self.index[i])]
    }

    /// Release of point `i` (0: unnamed). Panics when `i >= len()`.
    pub fn release(&self, i: usize) -> u32 {
        if self.releases.is_empty() {
            return 0;
        }
        let b = &self.release_index[i * 2..i * 2 + 2];
        self.releases[usize::from(u16::from_le_bytes([b[0], b[1]]))]
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn upsert_reports_insert_then_update_and_keeps_order() {
        let mut c = Chunk::default();
        assert_eq!(c.upsert(5, 1.0, &"a".into()), Upsert::Inserted);
        assert_eq!(c.upsert(2, 2.0, &"b".into()), Upsert::Inserted);
        assert_eq!(c.upsert(5, 3.0, &"c".into()), Upsert::Updated);
        let offsets: Vec<u8> = c.entries().iter().map(|e| e.offset).collect();
        assert_eq!(offsets, vec![2, 5]);
        assert_eq!(c.entries()[1].value, 3.0);
        assert_eq!(&*c.entries()[1].source, "c");
    }

    #[test]
    fn decode_rejects_truncated_and_garbage_bytes() {
        let mut c = Chunk::default();
        c.upsert(1, 1.0, &"src".into());
        let bytes = c.encode();
        for cut in 0..bytes.len() {
            assert!(Chunk::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Chunk::decode(&[1, 1, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(points in proptest::collection::btree_map(0u8..128, (0.0f64..1e15, "[a-z ]{0,12}"), 0..128)) {
            let mut c = Chunk::default();
            for (offset, (value, source)) in &points {
                c.upsert(*offset, *value, &Arc::from(source.as_str()));
            }
            let back = Chunk::decode(&c.encode()).unwrap();
            prop_assert_eq!(back, c);
        }

        #[test]
        fn the_latest_of_a_view_is_decode_without_history(revisions in proptest::collection::vec((0u8..128, 0.0f64..1e15, 1u32..4), 0..64)) {
            let mut c = Chunk::default();
            for (offset, value, release) in &revisions {
                c.upsert_release(*offset, *value, &Arc::from("s"), *release, &|id| Rank::UNNAMED.with_order(id));
            }
            let bytes = c.encode();
            let latest = Chunk::of_view(&ChunkView::parse(&bytes).unwrap(), false);
            let whole = Chunk::decode(&bytes).unwrap();
            prop_assert_eq!(latest.entries(), whole.entries());
            prop_assert!(latest.history().is_empty());
        }

        #[test]
        fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Chunk::decode(&bytes);
        }
    }
}

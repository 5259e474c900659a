//! A chunk: the points of one series in one block of [`BLOCK`] consecutive periods,
//! packed as columns.
//!
//! Layout (version 1):
//! `[1u8] [n u8] [n × offset u8] [n × value f64 LE] [s u8] [s × (len u16 LE, utf-8)] [n × source index u8]`
//! where `offset` is the period's place in the block (periods are stored as deltas from the
//! block's first period, ascending), and sources are a small per-chunk dictionary.

use std::sync::Arc;

use crate::{Error, Result};

/// Periods per chunk.
pub const BLOCK: u32 = 128;

const VERSION: u8 = 1;

/// One decoded point of a chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Offset of the period inside the block, `0..BLOCK`.
    pub offset: u8,
    /// Value in US dollars.
    pub value: f64,
    /// Source text (shared: most points of a chunk have the same one).
    pub source: Arc<str>,
}

/// The points of one block, sorted by offset with no duplicates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chunk {
    entries: Vec<Entry>,
}

/// What an upsert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsert {
    /// The period was new.
    Inserted,
    /// The period had a value, now replaced.
    Updated,
}

impl Chunk {
    /// The entries in period order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the chunk holds no point.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Inserts or replaces the value at `offset`.
    pub fn upsert(&mut self, offset: u8, value: f64, source: &Arc<str>) -> Upsert {
        debug_assert!(u32::from(offset) < BLOCK);
        // Points mostly arrive in period order: appending is the common case.
        if self.entries.last().is_none_or(|e| e.offset < offset) {
            self.entries.push(Entry {
                offset,
                value,
                source: source.clone(),
            });
            return Upsert::Inserted;
        }
        match self.entries.binary_search_by_key(&offset, |e| e.offset) {
            Ok(i) => {
                let e = &mut self.entries[i];
                e.value = value;
                if !Arc::ptr_eq(&e.source, source) {
                    e.source = source.clone();
                }
                Upsert::Updated
            }
            Err(i) => {
                self.entries.insert(
                    i,
                    Entry {
                        offset,
                        value,
                        source: source.clone(),
                    },
                );
                Upsert::Inserted
            }
        }
    }

    /// Packs the chunk into its stored form.
    pub fn encode(&self) -> Vec<u8> {
        let n = self.entries.len();
        let mut sources: Vec<&str> = Vec::new();
        let mut source_index = Vec::with_capacity(n);
        for e in &self.entries {
            let i = match sources.iter().position(|s| *s == &*e.source) {
                Some(i) => i,
                None => {
                    sources.push(&e.source);
                    sources.len() - 1
                }
            };
            source_index.push(i as u8);
        }
        let source_bytes: usize = sources.iter().map(|s| 2 + s.len()).sum();
        let mut out = Vec::with_capacity(3 + n * 10 + source_bytes);
        out.push(VERSION);
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
        out.extend_from_slice(&source_index);
        out
    }

    /// Unpacks a stored chunk, checking every length and invariant.
    pub fn decode(bytes: &[u8]) -> Result<Chunk> {
        let view = ChunkView::parse(bytes)?;
        let sources: Vec<Arc<str>> = view.sources.iter().map(|s| Arc::from(*s)).collect();
        let entries = (0..view.len())
            .map(|i| Entry {
                offset: view.offsets[i],
                value: view.value(i),
                source: sources[usize::from(view.index[i])].clone(),
            })
            .collect();
        Ok(Chunk { entries })
    }
}

/// A stored chunk read in place: every length and invariant checked once, then each entry
/// read straight from the bytes (no allocation per entry).
#[derive(Clone, Debug)]
pub struct ChunkView<'a> {
    offsets: &'a [u8],
    values: &'a [u8],
    sources: Vec<&'a str>,
    index: &'a [u8],
}

impl<'a> ChunkView<'a> {
    /// Checks a stored chunk (the same checks as [`Chunk::decode`]).
    pub fn parse(bytes: &'a [u8]) -> Result<ChunkView<'a>> {
        let corrupt = |what: &str| Error::Corrupt(format!("chunk: {what}"));
        let mut r = Reader(bytes);
        if r.u8().ok_or_else(|| corrupt("empty"))? != VERSION {
            return Err(corrupt("unknown version"));
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
        Ok(ChunkView {
            offsets,
            values,
            sources,
            index,
        })
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether the chunk holds no point.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
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
        fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Chunk::decode(&bytes);
        }
    }
}

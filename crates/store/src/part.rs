//! Part files of the matrix: immutable files, each holding the rows of each partition of the
//! writes whose sequences it covers (`low..=high`) as column blocks of at most a group's rows
//! (*row groups*, in key order), written once (a temporary name, synced, renamed, the
//! directory synced) and read by offset. The index names each group's first series, so that
//! a read of one series decodes only the groups that may hold it.
//!
//! ```text
//! ["TPPART02"] blocks…
//! index: [groups u32 LE] groups × ([partition 8 bytes] [first series: 4 × u32 LE]
//!        [offset u64 LE] [length u32 LE])
//! footer: [index offset u64] [index length u32] [low u64] [high u64] [crc32c u32 of the index,
//!         low and high] ["TPPART01"]
//! ```
//!
//! Each block has its own checksum ([`crate::block`]). A merge writes the union of several
//! files as one, covering their sequences, then deletes them: a file whose sequences another
//! covers is left over from a merge a crash interrupted, and is deleted at open
//! ([`superseded`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::framed::io;
use crate::matrix::{Partition, SeriesId};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"TPPART02";
/// Bytes of an index entry.
const ENTRY: usize = 8 + 16 + 8 + 4;
const FOOTER: usize = 8 + 4 + 8 + 8 + 4 + 8;

/// A part file, open.
pub(crate) struct PartFile {
    pub(crate) path: PathBuf,
    /// The first write sequence it covers.
    pub(crate) low: u64,
    /// The last.
    pub(crate) high: u64,
    file: File,
    /// Each partition's row groups, in key order (looked up on every write's path: hashed).
    index: HashMap<Partition, Vec<Group>, foldhash::fast::RandomState>,
    /// The partitions, in order.
    partitions: Vec<Partition>,
    bytes: u64,
}

/// A row group: its first series, and where its block is.
#[derive(Clone, Copy, Debug)]
struct Group {
    first: SeriesId,
    offset: u64,
    len: u32,
}

fn corrupt(path: &Path, what: &str) -> Error {
    Error::Corrupt(format!("part file {}: {what}", path.display()))
}

/// The name of the part file covering `low..=high`.
pub(crate) fn name(low: u64, high: u64) -> String {
    format!("part-{high:016x}-{low:016x}.tpp")
}

impl PartFile {
    /// Writes the part file covering `low..=high` in `dir` from `groups` (a partition's in key
    /// order: each its first series and block), durably.
    pub(crate) fn write(
        dir: &Path,
        low: u64,
        high: u64,
        groups: impl IntoIterator<Item = Result<(Partition, SeriesId, Vec<u8>)>>,
    ) -> Result<PartFile> {
        let path = dir.join(name(low, high));
        let tmp = path.with_extension("tmp");
        let written = (|| {
            let mut out = std::io::BufWriter::new(File::create(&tmp).map_err(io)?);
            out.write_all(MAGIC).map_err(io)?;
            let mut at = MAGIC.len() as u64;
            let mut index = Vec::new();
            for group in groups {
                let (partition, first, bytes) = group?;
                out.write_all(&bytes).map_err(io)?;
                index.extend_from_slice(&partition.encode());
                for part in [first.0, first.1, first.2, first.3] {
                    index.extend_from_slice(&part.to_le_bytes());
                }
                index.extend_from_slice(&at.to_le_bytes());
                index.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                at += bytes.len() as u64;
            }
            let mut tail = Vec::with_capacity(4 + index.len() + FOOTER);
            tail.extend_from_slice(&((index.len() / ENTRY) as u32).to_le_bytes());
            tail.extend_from_slice(&index);
            let index_len = tail.len() as u32;
            let mut checked = tail.clone();
            checked.extend_from_slice(&low.to_le_bytes());
            checked.extend_from_slice(&high.to_le_bytes());
            tail.extend_from_slice(&at.to_le_bytes());
            tail.extend_from_slice(&index_len.to_le_bytes());
            tail.extend_from_slice(&low.to_le_bytes());
            tail.extend_from_slice(&high.to_le_bytes());
            tail.extend_from_slice(&crc32c::crc32c(&checked).to_le_bytes());
            tail.extend_from_slice(MAGIC);
            out.write_all(&tail).map_err(io)?;
            let file = out.into_inner().map_err(|e| io(e.into_error()))?;
            file.sync_all().map_err(io)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        PartFile::open(&path)
    }

    /// Opens the part file at `path`, checking its footer and index.
    pub(crate) fn open(path: &Path) -> Result<PartFile> {
        let file = File::open(path).map_err(io)?;
        let bytes = file.metadata().map_err(io)?.len();
        if bytes < (MAGIC.len() + FOOTER) as u64 {
            return Err(corrupt(path, "shorter than its footer"));
        }
        let mut footer = [0u8; FOOTER];
        file.read_exact_at(&mut footer, bytes - FOOTER as u64)
            .map_err(io)?;
        if &footer[FOOTER - 8..] != MAGIC {
            return Err(corrupt(path, "no footer"));
        }
        let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
        let index_at = u64_at(&footer, 0);
        let index_len = u32::from_le_bytes(footer[8..12].try_into().expect("4")) as usize;
        let (low, high) = (u64_at(&footer, 12), u64_at(&footer, 20));
        let crc = u32::from_le_bytes(footer[28..32].try_into().expect("4"));
        if index_at + index_len as u64 + FOOTER as u64 != bytes {
            return Err(corrupt(path, "an index that does not end at its footer"));
        }
        let mut checked = vec![0u8; index_len];
        file.read_exact_at(&mut checked, index_at).map_err(io)?;
        checked.extend_from_slice(&footer[12..28]);
        if crc32c::crc32c(&checked) != crc {
            return Err(corrupt(path, "an index that does not match its checksum"));
        }
        let count = u32::from_le_bytes(checked[..4].try_into().expect("4")) as usize;
        if 4 + count * ENTRY != index_len {
            return Err(corrupt(path, "an index of the wrong length"));
        }
        let mut index: HashMap<Partition, Vec<Group>, foldhash::fast::RandomState> =
            HashMap::default();
        for entry in checked[4..index_len].chunks_exact(ENTRY) {
            let partition = Partition::decode(entry).ok_or_else(|| corrupt(path, "a partition"))?;
            let u32_at = |at: usize| u32::from_le_bytes(entry[at..at + 4].try_into().expect("4"));
            let first = (u32_at(8), u32_at(12), u32_at(16), u32_at(20));
            let offset = u64_at(entry, 24);
            let len = u32_at(32);
            if offset + u64::from(len) > index_at {
                return Err(corrupt(path, "a block past the index"));
            }
            let groups = index.entry(partition).or_default();
            if groups.last().is_some_and(|g| g.first > first) {
                return Err(corrupt(path, "row groups out of order"));
            }
            groups.push(Group { first, offset, len });
        }
        let mut partitions: Vec<Partition> = index.keys().copied().collect();
        partitions.sort_unstable();
        Ok(PartFile {
            path: path.to_path_buf(),
            low,
            high,
            file,
            index,
            partitions,
            bytes,
        })
    }

    /// The blocks of `partition`'s row groups, in key order (none if it holds none).
    pub(crate) fn blocks(&self, partition: &Partition) -> Result<Vec<Vec<u8>>> {
        let groups = self.index.get(partition).map_or(&[][..], Vec::as_slice);
        groups.iter().map(|g| self.read(g)).collect()
    }

    /// The blocks of the row groups of `partition` that may hold `series`: from the last group
    /// beginning before it to the last beginning at or before it (a series' rows may cross
    /// from one group into the next).
    pub(crate) fn blocks_of(
        &self,
        partition: &Partition,
        series: SeriesId,
    ) -> Result<Vec<Vec<u8>>> {
        let groups = self.index.get(partition).map_or(&[][..], Vec::as_slice);
        let from = groups
            .partition_point(|g| g.first < series)
            .saturating_sub(1);
        let to = groups.partition_point(|g| g.first <= series);
        groups[from..to.max(from)]
            .iter()
            .map(|g| self.read(g))
            .collect()
    }

    fn read(&self, group: &Group) -> Result<Vec<u8>> {
        let mut bytes = vec![0u8; group.len as usize];
        self.file
            .read_exact_at(&mut bytes, group.offset)
            .map_err(io)?;
        Ok(bytes)
    }

    /// The partitions it holds.
    pub(crate) fn partitions(&self) -> impl Iterator<Item = &Partition> {
        self.partitions.iter()
    }

    /// Whether it holds `partition`.
    pub(crate) fn holds(&self, partition: &Partition) -> bool {
        self.index.contains_key(partition)
    }

    /// Its size in bytes.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// Of part files' sequence ranges, those another covers (left over from an interrupted merge).
pub(crate) fn superseded(ranges: &[(u64, u64)]) -> Vec<usize> {
    (0..ranges.len())
        .filter(|&i| {
            let (low, high) = ranges[i];
            ranges
                .iter()
                .enumerate()
                .any(|(j, &(l, h))| j != i && l <= low && high <= h && (l, h) != (low, high))
        })
        .collect()
}

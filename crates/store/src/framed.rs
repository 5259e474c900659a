//! Append-only files of framed records (the matrix's write log and dictionary): each record
//! `[body length u32 LE] [crc32c of the body u32 LE] body`, appended at the file's known end.
//!
//! - Opening reads every record. A crash can leave only the last record torn (records are
//!   synced before the writes they hold are acknowledged, and none is written past a torn one):
//!   a last record that is short or does not check, or a tail of zeros, is cut off; a record
//!   that does not check anywhere else is damage (`Corrupt`, naming the file and offset).
//! - A failed append is cut off the file before the error is returned, so nothing of it is read
//!   later; if even the cut fails, the next append retries it first.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

const HEADER: usize = 8;

pub(crate) fn io(e: std::io::Error) -> Error {
    Error::Storage(sled::Error::Io(e))
}

/// An append-only file of records.
pub(crate) struct Appender {
    path: PathBuf,
    file: File,
    /// Bytes of the file holding whole records.
    end: u64,
    /// Whether a failed append may have left bytes past `end`.
    cut_pending: bool,
}

impl Appender {
    /// Opens (or creates) the file at `path`: it, and the bodies of its records in order.
    pub(crate) fn open(path: &Path) -> Result<(Appender, Vec<Vec<u8>>)> {
        let created = !path.exists();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        if created {
            if let Some(dir) = path.parent() {
                File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
            }
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let (records, end) = records(&bytes, path)?;
        if end < bytes.len() as u64 {
            tracing::warn!(
                file = %path.display(),
                bytes = bytes.len() as u64 - end,
                "a torn last record (a crash while it was written, never acknowledged): cut off"
            );
            file.set_len(end)
                .and_then(|()| file.sync_all())
                .map_err(io)?;
        }
        let appender = Appender {
            path: path.to_path_buf(),
            file,
            end,
            cut_pending: false,
        };
        Ok((appender, records))
    }

    /// Appends a record of `body`, which is not empty (written, not synced:
    /// [`Appender::sync`]).
    pub(crate) fn append(&mut self, body: &[u8]) -> Result<()> {
        debug_assert!(!body.is_empty(), "records are never empty");
        if self.cut_pending {
            self.cut()?;
        }
        let mut record = Vec::with_capacity(HEADER + body.len());
        record.extend_from_slice(&(body.len() as u32).to_le_bytes());
        record.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
        record.extend_from_slice(body);
        match self.file.write_all_at(&record, self.end) {
            Ok(()) => {
                self.end += record.len() as u64;
                Ok(())
            }
            Err(e) => {
                if let Err(again) = self.cut() {
                    tracing::error!(file = %self.path.display(), error = %again, "a failed append could not be cut off yet; retried before the next");
                }
                Err(io(e))
            }
        }
    }

    /// Makes every record appended so far durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(io)
    }

    /// Empties the file (its records are held elsewhere now), durably.
    pub(crate) fn clear(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_all())
            .map_err(io)?;
        self.end = 0;
        self.cut_pending = false;
        Ok(())
    }

    /// Cuts the file back to its last whole record; if that fails, zeroes the header after it.
    fn cut(&mut self) -> Result<()> {
        match self
            .file
            .set_len(self.end)
            .and_then(|()| self.file.sync_all())
        {
            Ok(()) => {
                self.cut_pending = false;
                Ok(())
            }
            Err(e) => {
                self.cut_pending = true;
                let _ = self
                    .file
                    .write_all_at(&[0; HEADER], self.end)
                    .and_then(|()| self.file.sync_data());
                Err(io(e))
            }
        }
    }
}

/// The records' bodies in `bytes` (the file at `path`) and the end of the last whole one.
fn records(bytes: &[u8], path: &Path) -> Result<(Vec<Vec<u8>>, u64)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while bytes.len() - at >= HEADER {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        let Some(body) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        // No record is empty: a length of 0 is a tail of zeros, or damage.
        if len == 0 || crc32c::crc32c(body) != crc {
            let last = at + HEADER + len == bytes.len();
            if last || bytes[at..].iter().all(|&b| b == 0) {
                break;
            }
            return Err(Error::Corrupt(format!(
                "a record that does not check at byte {at} of {} (the file is damaged)",
                path.display()
            )));
        }
        out.push(body.to_vec());
        at += HEADER + len;
    }
    Ok((out, at as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_and_a_torn_last_one_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let bodies: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10 + i as usize]).collect();
        {
            let (mut a, read) = Appender::open(&path).unwrap();
            assert!(read.is_empty());
            for b in &bodies {
                a.append(b).unwrap();
            }
            a.sync().unwrap();
        }
        let whole = std::fs::read(&path).unwrap();
        for extra in [vec![9u8; 3], vec![20, 0, 0, 0, 1, 2, 3, 4, 5], vec![0; 100]] {
            let mut bytes = whole.clone();
            bytes.extend_from_slice(&extra);
            std::fs::write(&path, &bytes).unwrap();
            let (mut a, read) = Appender::open(&path).unwrap();
            assert_eq!(read, bodies);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), whole.len() as u64);
            a.append(b"more").unwrap();
            drop(a);
            let (_, read) = Appender::open(&path).unwrap();
            assert_eq!(read.last().unwrap(), b"more");
            std::fs::write(&path, &whole).unwrap();
        }
        let mut damaged = whole.clone();
        damaged[HEADER + 2] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        assert!(matches!(Appender::open(&path), Err(Error::Corrupt(_))));
    }
}

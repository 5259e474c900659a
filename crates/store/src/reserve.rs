//! Room on disk for a sled store (the data store, the negotiation event log).
//!
//! A full disk is worse for sled than a refused write: after a write fails with `ENOSPC`,
//! sled refuses every later write until it is reopened, it writes as it opens (so on a full
//! disk it cannot), and after some failures (a value too large for a log buffer, written to a
//! blob file of its own) its handles never finish dropping. So a store keeps
//! - a **reserve**: a file of `bytes` real blocks in its directory ([`RESERVE_FILE`]), given
//!   back ([`release`]) when a write fails so that sled can reopen, and taken again ([`hold`])
//!   before writes resume;
//! - a **low watermark**: writes are refused, before they reach sled, while less than half
//!   the reserve is free beside it ([`room_to_write`]), and resume once the reserve is held and
//!   as much again is free ([`room_to_resume`]). A disk that fills slowly (the store's own
//!   writes) is then met by refusals, not by a failed write; one filled at once by someone
//!   else still fails a write, and the reserve lets the store reopen.

use std::io::Write;
use std::path::Path;

/// The reserve file in a store's directory.
pub const RESERVE_FILE: &str = "reserve";

/// Writes the reserve file in `dir` up to `bytes` (real blocks, not a sparse file); `Ok` at
/// once when it is whole or `bytes` is 0. On an error the partial file is deleted.
pub fn hold(dir: &Path, bytes: u64) -> std::io::Result<()> {
    let path = dir.join(RESERVE_FILE);
    if bytes == 0 || std::fs::metadata(&path).is_ok_and(|m| m.len() >= bytes) {
        return Ok(());
    }
    let written = (|| {
        let mut file = std::fs::File::create(&path)?;
        let block = vec![0u8; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            file.write_all(&block[..n])?;
            left -= n as u64;
        }
        file.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    written
}

/// Deletes the reserve file in `dir`, giving its space back; whether there was one.
pub fn release(dir: &Path) -> bool {
    std::fs::remove_file(dir.join(RESERVE_FILE)).is_ok()
}

/// `Err` saying why, while less than half of a reserve of `bytes` is free beside it (0:
/// never). A filesystem that cannot say counts as having room.
pub fn room_to_write(dir: &Path, bytes: u64) -> Result<(), String> {
    match fs2::available_space(dir) {
        Ok(free) if bytes > 0 && free < bytes / 2 => Err(format!(
            "the disk is nearly full ({free} bytes free beside the store's reserve of {bytes})"
        )),
        _ => Ok(()),
    }
}

/// `Err` saying why, unless a reserve of `bytes` is free beside the one held (writes resume).
pub fn room_to_resume(dir: &Path, bytes: u64) -> Result<(), String> {
    let free = fs2::available_space(dir).map_err(|e| e.to_string())?;
    match free < bytes {
        true => Err(format!(
            "{free} bytes free beside the store's reserve; writes resume with at least {bytes}"
        )),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_is_real_blocks_held_once_and_given_back() {
        let dir = tempfile::tempdir().unwrap();
        hold(dir.path(), 3 << 20).unwrap();
        let meta = std::fs::metadata(dir.path().join(RESERVE_FILE)).unwrap();
        assert_eq!(meta.len(), 3 << 20);
        // Not sparse: its blocks are allocated.
        use std::os::unix::fs::MetadataExt;
        assert!(meta.blocks() * 512 >= 3 << 20, "{} blocks", meta.blocks());
        hold(dir.path(), 3 << 20).unwrap();
        assert!(release(dir.path()));
        assert!(!release(dir.path()));
        hold(dir.path(), 0).unwrap();
        assert!(!dir.path().join(RESERVE_FILE).exists());
    }

    #[test]
    fn the_watermarks_follow_the_free_space() {
        let dir = tempfile::tempdir().unwrap();
        let free = fs2::available_space(dir.path()).unwrap();
        assert!(room_to_write(dir.path(), 0).is_ok());
        assert!(
            room_to_write(dir.path(), free).is_ok(),
            "half of it is free"
        );
        assert!(room_to_write(dir.path(), free * 4).is_err());
        assert!(room_to_resume(dir.path(), free / 2).is_ok());
        assert!(room_to_resume(dir.path(), free * 2).is_err());
    }
}

//! The page cache, asked about and warned ahead: whether a file's bytes are
//! in memory already, and reading bytes ahead of need without waiting for
//! them. A fragmented film's scan reads one moof box a few hundred
//! kilobytes apart from the next; from a disk, each would be a wait of its
//! own, while asked for all at once they become one batch the disk can order.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Whether the byte at `offset` of `file` is in the page cache: a read that
/// must not wait on the disk (`preadv2` with `RWF_NOWAIT`) gets it, or fails
/// with EAGAIN. A kernel without `RWF_NOWAIT` (before 4.14) answers false,
/// so the caller reads ahead as if the file were cold.
pub fn is_cached(file: &File, offset: u64) -> bool {
    let Ok(offset) = libc::off_t::try_from(offset) else {
        return false;
    };
    let mut byte = [0u8; 1];
    let slice = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: byte.len(),
    };
    // SAFETY: the one iovec points at a live one-byte buffer that nothing
    // else uses during the call; the kernel writes at most that byte.
    let read = unsafe { libc::preadv2(file.as_raw_fd(), &slice, 1, offset, libc::RWF_NOWAIT) };
    read == 1
}

/// Asks the kernel to start reading `len` bytes at `offset` of `file` into
/// the page cache and returns without waiting (`posix_fadvise` with
/// `POSIX_FADV_WILLNEED`). Only a hint: an error is ignored, since the bytes
/// are read for real later all the same.
pub fn read_ahead(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: posix_fadvise takes a descriptor and numbers and touches no
    // memory of ours; the descriptor is the open file we borrow.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_WILLNEED);
    }
}

/// Drops `file`'s clean pages from the page cache (`POSIX_FADV_DONTNEED`), so
/// that the next reads come from the disk: what the benchmarks and tests of a
/// cold file need.
pub fn forget(file: &File) {
    // SAFETY: as for `read_ahead`.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_just_written_is_cached_and_forgotten_once_synced() {
        let path = std::env::temp_dir().join(format!("loomiere-page-cache-{}", std::process::id()));
        let mut file = File::create(&path).expect("create");
        file.write_all(&vec![7u8; 1 << 20]).expect("write");
        file.sync_all().expect("sync");
        let file = File::open(&path).expect("open");
        assert!(is_cached(&file, 4096), "a file just written is in memory");
        forget(&file);
        // Dropping pages is best effort (another process may map them), so
        // only the way back is checked: read ahead, and the bytes come back.
        read_ahead(&file, 0, 1 << 20);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !is_cached(&file, 512 * 1024) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            is_cached(&file, 512 * 1024),
            "read ahead brought the bytes back"
        );
        assert!(!is_cached(&file, 2 << 20), "nothing past the end is cached");
        std::fs::remove_file(&path).expect("remove");
    }
}

//! Read-ahead over a file for the scans of many small records (FLV tags,
//! the top-level boxes and fragments of an MP4): one system call per
//! window instead of one per record, when the records lie close together.

use super::ReadAt;

/// Below this mean distance between the records asked for, reading ahead
/// pays: copying the bytes between them costs less than a system call per
/// record (about 0.5 µs, what copying 4 KB from the page cache takes).
const DENSE_GAP_BYTES: u64 = 4096;

/// When the records are far apart (a fragmented film's moof boxes between
/// their mdat payloads), a read takes what is asked and this much more: the
/// box header that usually follows, never the payload that is skipped.
const SPARSE_EXTRA_BYTES: usize = 2048;

/// Sequential reads through a window, so a scan of many small records costs
/// few system calls and copies few bytes it does not use.
pub struct Window<'a, R: ReadAt + ?Sized> {
    source: &'a R,
    start: u64,
    bytes: Vec<u8>,
    /// Bytes read ahead at a time while the records are dense.
    ahead: usize,
    /// Where the last record asked for ended, and the running mean of the
    /// bytes skipped between records (what reading ahead would copy for
    /// nothing).
    last_end: u64,
    mean_gap: u64,
}

impl<'a, R: ReadAt + ?Sized> Window<'a, R> {
    /// A window reading up to `ahead` bytes at a time.
    pub fn new(source: &'a R, ahead: usize) -> Self {
        Window {
            source,
            start: 0,
            bytes: Vec::new(),
            ahead,
            last_end: 0,
            mean_gap: 0,
        }
    }

    /// Up to `len` bytes at `offset` (fewer at the end of the file).
    pub fn get(&mut self, offset: u64, len: usize) -> std::io::Result<&[u8]> {
        let end = offset.saturating_add(len as u64);
        let gap = offset.saturating_sub(self.last_end);
        self.mean_gap = (self.mean_gap * 3 + gap) / 4;
        self.last_end = end;
        if offset < self.start || end > self.start + self.bytes.len() as u64 {
            // Never more than the file holds: a small file (or a fuzzer's
            // input) is not worth zeroing a whole window for.
            let left =
                usize::try_from(self.source.size().saturating_sub(offset)).unwrap_or(usize::MAX);
            let ahead = if self.mean_gap < DENSE_GAP_BYTES {
                self.ahead
            } else {
                len.saturating_add(SPARSE_EXTRA_BYTES).min(self.ahead)
            };
            let want = ahead.min(left).max(len);
            self.bytes.resize(want, 0);
            let mut filled = 0;
            while filled < want {
                let n = self
                    .source
                    .read_at(offset + filled as u64, &mut self.bytes[filled..])?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            self.bytes.truncate(filled);
            self.start = offset;
        }
        let from = (offset - self.start) as usize;
        let to = (from + len).min(self.bytes.len());
        Ok(&self.bytes[from.min(to)..to])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A file of `size` bytes (byte i = i mod 251) that records each read.
    struct Counted {
        size: u64,
        reads: RefCell<Vec<(u64, usize)>>,
    }

    impl ReadAt for Counted {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.size.saturating_sub(offset) as usize);
            for (i, byte) in buf[..n].iter_mut().enumerate() {
                *byte = ((offset + i as u64) % 251) as u8;
            }
            self.reads.borrow_mut().push((offset, n));
            Ok(n)
        }
        fn size(&self) -> u64 {
            self.size
        }
    }

    fn scan(records: impl Iterator<Item = u64>, len: usize) -> (usize, usize) {
        let file = Counted {
            size: 10 << 20,
            reads: RefCell::new(Vec::new()),
        };
        let mut window = Window::new(&file, 64 * 1024);
        for offset in records {
            let got = window.get(offset, len).expect("read");
            assert_eq!(got.len(), len);
            assert_eq!(got[0], (offset % 251) as u8, "the bytes at {offset}");
        }
        let reads = file.reads.borrow();
        (reads.len(), reads.iter().map(|r| r.1).sum())
    }

    #[test]
    fn close_records_share_a_read_and_far_ones_copy_no_gap() {
        // Records 1 KB apart: one read per 64 KB window.
        let (reads, _) = scan((0..1000).map(|i| i * 1024), 16);
        assert!(reads <= 20, "{reads} reads for records 1 KB apart");
        // Records 10 KB apart (moofs between mdat payloads): a small read
        // each, never the payloads.
        let (reads, copied) = scan((0..500).map(|i| i * 10_240), 16);
        assert!(reads <= 520, "{reads} reads");
        assert!(copied < 500 * 4096, "{copied} bytes copied for 500 records");
    }
}

//! Read-ahead over a file for the scans of many small records (FLV tags,
//! the top-level boxes and fragments of an MP4): one system call per
//! window instead of one per record.

use super::ReadAt;

/// Sequential reads through a window, so a scan of many small records costs few system calls.
pub struct Window<'a, R: ReadAt + ?Sized> {
    source: &'a R,
    start: u64,
    bytes: Vec<u8>,
    /// Bytes read ahead at a time.
    ahead: usize,
}

impl<'a, R: ReadAt + ?Sized> Window<'a, R> {
    /// A window reading `ahead` bytes at a time.
    pub fn new(source: &'a R, ahead: usize) -> Self {
        Window {
            source,
            start: 0,
            bytes: Vec::new(),
            ahead,
        }
    }

    /// Up to `len` bytes at `offset` (fewer at the end of the file).
    pub fn get(&mut self, offset: u64, len: usize) -> std::io::Result<&[u8]> {
        let end = offset + len as u64;
        if offset < self.start || end > self.start + self.bytes.len() as u64 {
            // Never more than the file holds: a small file (or a fuzzer's
            // input) is not worth zeroing a whole window for.
            let left =
                usize::try_from(self.source.size().saturating_sub(offset)).unwrap_or(usize::MAX);
            let want = self.ahead.min(left).max(len);
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

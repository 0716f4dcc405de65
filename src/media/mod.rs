//! Media files: indexes of FLV and MP4 files and the preparation of seeked
//! responses (`?start=…&stop=…`).
//!
//! Layer: pure parsing and rewriting; imports nothing of the crate (no
//! cache, no routes, no counters, no options): the worker decides what a
//! media error answers, the cache keeps what is parsed.
//!
//! Parsers are pure functions over bytes or over a positioned reader
//! ([`ReadAt`]), bounded in memory and time on any input. A seek yields a
//! [`Prepared`] response: bytes generated before the body (the rewritten
//! header), one byte range of the file, and the [`Timeline`] that maps play
//! time to body bytes.

pub mod amf;
pub mod flv;
pub mod mp4;
pub mod query;
pub mod subtitles;

pub mod timeline;
pub mod window;

use std::fmt;
use std::io;

pub use query::{Seek, Units};
pub use timeline::Timeline;

/// The seekable formats, decided by the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Flv,
    Mp4,
}

impl MediaKind {
    /// The kind of a path by its extension, or None for files that are never seeked.
    pub fn of_path(path: &[u8]) -> Option<MediaKind> {
        let name = path.rsplit(|&b| b == b'/').next()?;
        let dot = name.iter().rposition(|&b| b == b'.')?;
        let ext = name[dot + 1..].to_ascii_lowercase();
        match ext.as_slice() {
            b"flv" => Some(MediaKind::Flv),
            b"mp4" | b"m4v" | b"m4a" | b"mov" | b"3gp" | b"3g2" | b"f4v" | b"f4a" => {
                Some(MediaKind::Mp4)
            }
            _ => None,
        }
    }
}

/// How an MP4 seek treats the frames between the keyframe and `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SeekMode {
    /// Start at the keyframe at or before `start`; the duration grows by the distance back to it.
    Keyframe,
    /// Decode from the keyframe but hide the frames before `start` with an edit list.
    Exact,
}

/// Why a media response could not be prepared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaError {
    /// The file is damaged or not what its extension says (logged; 500).
    Broken(String),
    /// The file is valid but cannot be seeked (fragmented, compressed moov; 501).
    Unsupported(String),
    /// The seek does not fit the media, e.g. `start` past the end (400).
    BadSeek(String),
    /// Reading the file failed (500).
    Io(String),
    /// A part of a packaged presentation that does not exist, such as a
    /// segment past the last (404).
    NotFound(String),
    /// Files that cannot be packaged together, such as renditions of a set
    /// that do not share their keyframes (409).
    Conflict(String),
}

impl fmt::Display for MediaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaError::Broken(m)
            | MediaError::Unsupported(m)
            | MediaError::BadSeek(m)
            | MediaError::Io(m)
            | MediaError::NotFound(m)
            | MediaError::Conflict(m) => f.write_str(m),
        }
    }
}

impl From<io::Error> for MediaError {
    fn from(e: io::Error) -> Self {
        MediaError::Io(format!("read error: {e}"))
    }
}

/// Shorthand for a damaged-file error.
pub fn broken(message: impl Into<String>) -> MediaError {
    MediaError::Broken(message.into())
}

/// Positioned reads, so parsers work on files and on byte slices alike.
pub trait ReadAt {
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    fn size(&self) -> u64;

    /// Whether the byte at `offset` is in memory, so reading it will not
    /// wait on a disk. Sources in memory always are.
    fn is_cached(&self, _offset: u64) -> bool {
        true
    }

    /// A hint that `len` bytes at `offset` will be read soon: a file starts
    /// reading them from its disk now, without waiting. Sources in memory
    /// ignore it.
    fn read_ahead(&self, _offset: u64, _len: u64) {}

    /// Reads exactly `len` bytes at `offset`, or fails naming what was short.
    fn read_exact_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            let n = self.read_at(offset + filled as u64, &mut buf[filled..])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file ends early",
                ));
            }
            filled += n;
        }
        Ok(buf)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.len() as u64
    }
}

/// A file with its size fixed at open time (the size its identity was taken with).
pub struct FileSource<'a> {
    pub file: &'a std::fs::File,
    pub size: u64,
    /// The file's path, for log lines about it.
    pub name: &'a str,
}

impl ReadAt for FileSource<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        if offset >= self.size {
            return Ok(0);
        }
        let len = buf.len().min((self.size - offset) as usize);
        loop {
            match self.file.read_at(&mut buf[..len], offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn is_cached(&self, offset: u64) -> bool {
        crate::sys::page_cache::is_cached(self.file, offset)
    }

    fn read_ahead(&self, offset: u64, len: u64) {
        crate::sys::page_cache::read_ahead(self.file, offset, len);
    }
}

/// The generated bytes that precede the file range in a seeked body.
pub enum Prefix {
    /// Small headers built whole (FLV).
    Bytes(Vec<u8>),
    /// An MP4 header described by pieces; only the bytes a request reads are generated.
    Mp4(mp4::Header),
}

impl Prefix {
    pub fn len(&self) -> u64 {
        match self {
            Prefix::Bytes(bytes) => bytes.len() as u64,
            Prefix::Mp4(header) => header.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends bytes `[from, to)` of the prefix to `out`.
    pub fn write(&self, from: u64, to: u64, out: &mut Vec<u8>) {
        let to = to.min(self.len());
        if from >= to {
            return;
        }
        match self {
            Prefix::Bytes(bytes) => out.extend_from_slice(&bytes[from as usize..to as usize]),
            Prefix::Mp4(header) => header.write(from, to, out),
        }
    }

    /// Bytes of memory held, for the cache's budget.
    pub fn weight(&self) -> usize {
        match self {
            Prefix::Bytes(bytes) => bytes.capacity(),
            Prefix::Mp4(header) => header.weight(),
        }
    }
}

/// A seeked response, ready to send: `prefix`, then the file's `[file_start, file_end)`.
pub struct Prepared {
    pub prefix: Prefix,
    pub file_start: u64,
    pub file_end: u64,
    pub timeline: Timeline,
}

impl Prepared {
    /// Length of the whole (virtual) body.
    pub fn len(&self) -> u64 {
        self.prefix.len() + (self.file_end - self.file_start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the prefix bytes of body range `[from, to)` to `out` and returns
    /// the file range that carries the rest.
    pub fn split(&self, from: u64, to: u64, out: &mut Vec<u8>) -> (u64, u64) {
        let prefix_len = self.prefix.len();
        self.prefix.write(from, to, out);
        let file_from = self.file_start + from.max(prefix_len) - prefix_len;
        let file_to = self.file_start + to.max(prefix_len) - prefix_len;
        (file_from.min(self.file_end), file_to.min(self.file_end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_extension() {
        assert_eq!(MediaKind::of_path(b"a/b.FLV"), Some(MediaKind::Flv));
        assert_eq!(MediaKind::of_path(b"x.m4a"), Some(MediaKind::Mp4));
        assert_eq!(MediaKind::of_path(b"x.mp3"), None);
        assert_eq!(MediaKind::of_path(b"mp4"), None);
    }

    #[test]
    fn split_maps_body_ranges_to_prefix_and_file() {
        let points = timeline::monotonic([]);
        let prepared = Prepared {
            prefix: Prefix::Bytes(b"HEADER".to_vec()),
            file_start: 100,
            file_end: 200,
            timeline: Timeline::new(points, 0.0, 1.0, 6, 100, 200),
        };
        assert_eq!(prepared.len(), 106);
        let mut out = Vec::new();
        assert_eq!(prepared.split(2, 10, &mut out), (100, 104));
        assert_eq!(out, b"ADER");
        out.clear();
        assert_eq!(prepared.split(50, 106, &mut out), (144, 200));
        assert!(out.is_empty());
    }
}

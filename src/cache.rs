//! The per-worker media cache: parsed indexes, prepared seeks and packaged
//! answers (segment plans, playlists, segments), in one LRU bounded by
//! `options.cache` megabytes counted in real bytes.
//!
//! Layer: above `media`, `package`, `stats` and `sys`; knows nothing of
//! hosts, routes, options or connections.
//!
//! Keys include the file's identity (device, inode, size, modification time),
//! so a file changed on disk is a new key and output is never stale.

use std::hash::Hash;
use std::rc::Rc;

use lru::LruCache;

use crate::media::flv::{self, FlvIndex};
use crate::media::mp4::{self, Mp4Index};
use crate::media::query::SeekKey;
use crate::media::{FileSource, MediaError, MediaKind, Prepared, Seek, SeekMode, Timeline};
use crate::package::{Output, PackageKey};
use crate::stats::StatsSlot;
use crate::sys::FileIdentity;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Index(FileIdentity),
    /// An FLV seek, by its arguments.
    Seek(FileIdentity, SeekKey),
    /// An MP4 seek, by where it lands: every `start` within a GOP shares it.
    Landing(FileIdentity, mp4::seek::Landing),
    /// A packaged presentation's plan, playlist or segment.
    Package(FileIdentity, PackageKey),
}

#[derive(Clone)]
enum Entry {
    Flv(Rc<FlvIndex>),
    Mp4(Rc<Mp4Index>),
    /// A file that could not be indexed: remembered so it is not parsed again on every request.
    Failed(MediaError),
    Prepared(Rc<Prepared>),
    Package(Output),
}

pub struct MediaCache {
    entries: LruCache<Key, (Entry, usize)>,
    used: usize,
    budget: usize,
    /// Files whose indexing was logged (what it left out, or that their
    /// index is over the budget), so a file rebuilt on every request is
    /// logged once, not on every request.
    logged: LruCache<FileIdentity, ()>,
}

/// Files remembered as logged.
const LOGGED_FILES: std::num::NonZeroUsize = std::num::NonZeroUsize::MIN.saturating_add(255);

impl MediaCache {
    /// A cache of at most `megabytes` MiB (0 disables caching).
    pub fn new(megabytes: u64) -> MediaCache {
        MediaCache {
            entries: LruCache::unbounded(),
            used: 0,
            budget: (megabytes as usize).saturating_mul(1 << 20),
            logged: LruCache::new(LOGGED_FILES),
        }
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn insert(&mut self, key: Key, entry: Entry, weight: usize) {
        if weight > self.budget {
            return;
        }
        if let Some((_, old)) = self.entries.put(key, (entry, weight)) {
            self.used -= old;
        }
        self.used += weight;
        while self.used > self.budget {
            match self.entries.pop_lru() {
                Some((_, (_, weight))) => self.used -= weight,
                None => break,
            }
        }
    }

    /// The index of a file, from the cache or built (a failure is remembered
    /// too, except a read error, which may pass).
    fn index(
        &mut self,
        source: &FileSource,
        identity: FileIdentity,
        kind: MediaKind,
        stats: &StatsSlot,
    ) -> Entry {
        let index_key = Key::Index(identity);
        if let Some((entry, _)) = self.entries.get(&index_key) {
            StatsSlot::add(&stats.cache_hits, 1);
            return entry.clone();
        }
        StatsSlot::add(&stats.cache_misses, 1);
        let (entry, weight) = match kind {
            MediaKind::Flv => match contained(|| flv::index(source)) {
                Ok(index) => {
                    let weight = index.weight();
                    (Entry::Flv(Rc::new(index)), weight)
                }
                Err(e) => (Entry::Failed(e), 256),
            },
            MediaKind::Mp4 => match contained(|| mp4::index_within(source, &self.index_limits())) {
                Ok(index) => {
                    let weight = index.weight();
                    self.log_indexing(source.name, identity, &index.notes, weight);
                    (Entry::Mp4(Rc::new(index)), weight)
                }
                Err(e) => (Entry::Failed(e), 256),
            },
        };
        if !matches!(entry, Entry::Failed(MediaError::Io(_))) {
            self.insert(index_key, entry.clone(), weight);
        }
        entry
    }

    /// The guards of an MP4's indexing, as large as this cache: a file whose
    /// index it could hold is never refused.
    fn index_limits(&self) -> mp4::IndexLimits {
        mp4::IndexLimits::for_cache(self.budget as u64)
    }

    /// Logs, once per file, what its indexing left out and whether its
    /// index is too big to keep (it is then built for each request).
    fn log_indexing(
        &mut self,
        name: &str,
        identity: FileIdentity,
        notes: &[String],
        weight: usize,
    ) {
        let oversized = self.budget > 0 && weight > self.budget;
        if (notes.is_empty() && !oversized) || self.logged.put(identity, ()).is_some() {
            return;
        }
        for note in notes {
            log::warn!("{name}: {note}");
        }
        if oversized {
            log::warn!(
                "{name}: its index takes {} MB, more than options.cache ({} MB), so it is built for every request; raise options.cache to keep it",
                weight.div_ceil(1 << 20),
                self.budget >> 20
            );
        }
    }

    /// The timeline of a whole file for a plain request, with the first
    /// offset from which it is honest (see [`Mp4Index::whole_file_timeline`]);
    /// None when the file cannot be indexed (it is then sent unpaced).
    pub fn whole_file_timeline(
        &mut self,
        source: &FileSource,
        identity: FileIdentity,
        kind: MediaKind,
        stats: &StatsSlot,
    ) -> Option<(Timeline, u64)> {
        match self.index(source, identity, kind, stats) {
            Entry::Flv(index) => Some((index.whole_file_timeline(), 0)),
            Entry::Mp4(index) => index.whole_file_timeline(),
            Entry::Failed(_) | Entry::Prepared(_) | Entry::Package(_) => None,
        }
    }

    /// The prepared response for `seek` on a file, from the cache or built
    /// (indexing the file first when its index is not cached either).
    pub fn prepare(
        &mut self,
        source: &FileSource,
        identity: FileIdentity,
        kind: MediaKind,
        seek: &Seek,
        mode: SeekMode,
        stats: &StatsSlot,
    ) -> Result<Rc<Prepared>, MediaError> {
        let index = self.index(source, identity, kind, stats);
        let (key, build): (Key, Box<dyn FnOnce() -> Result<Prepared, MediaError>>) = match index {
            Entry::Flv(index) => (
                Key::Seek(identity, seek.key()),
                Box::new(move || flv::prepare(&index, seek)),
            ),
            Entry::Mp4(index) => {
                let landing = mp4::seek::land(&index, seek, mode)?;
                (
                    Key::Landing(identity, landing),
                    Box::new(move || mp4::seek::prepare_landing(&index, &landing)),
                )
            }
            Entry::Failed(e) => return Err(e),
            Entry::Prepared(_) | Entry::Package(_) => {
                return Err(MediaError::Broken("cache entry of the wrong kind".into()));
            }
        };
        // Hits and misses count whether the file had to be parsed, once per request.
        if let Some((Entry::Prepared(prepared), _)) = self.entries.get(&key) {
            return Ok(Rc::clone(prepared));
        }
        let prepared = Rc::new(contained(build)?);
        let weight = std::mem::size_of::<Prepared>() + prepared.prefix.weight();
        self.insert(key, Entry::Prepared(Rc::clone(&prepared)), weight);
        Ok(prepared)
    }
}

impl MediaCache {
    /// The index of an MP4-family file, from the cache or built.
    pub fn mp4_index(
        &mut self,
        source: &FileSource,
        identity: FileIdentity,
        stats: &StatsSlot,
    ) -> Result<Rc<Mp4Index>, MediaError> {
        match self.index(source, identity, MediaKind::Mp4, stats) {
            Entry::Mp4(index) => Ok(index),
            Entry::Failed(e) => Err(e),
            _ => Err(MediaError::Broken("cache entry of the wrong kind".into())),
        }
    }

    /// A packaged answer for a file, from the cache or made by `build`.
    pub fn packaged(
        &mut self,
        identity: FileIdentity,
        key: PackageKey,
        build: impl FnOnce() -> Result<Output, MediaError>,
    ) -> Result<Output, MediaError> {
        let key = Key::Package(identity, key);
        if let Some((Entry::Package(output), _)) = self.entries.get(&key) {
            return Ok(output.clone());
        }
        let output = contained(build)?;
        let weight = output.weight();
        self.insert(key, Entry::Package(output.clone()), weight);
        Ok(output)
    }
}

/// Runs a parser so that a bug it hits on some file (a panic) becomes an
/// error for that request: a logged 500, not a dropped connection.
fn contained<T>(parse: impl FnOnce() -> Result<T, MediaError>) -> Result<T, MediaError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("unknown");
        Err(MediaError::Broken(format!(
            "the parser failed on this file ({what}); please report it"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_guards_follow_the_budget() {
        assert_eq!(
            MediaCache::new(64).index_limits(),
            mp4::IndexLimits::DEFAULT
        );
        let large = MediaCache::new(1024).index_limits();
        assert_eq!(large, mp4::IndexLimits::for_cache(1 << 30));
        assert_eq!(large.moov_bytes, 1 << 30);
    }
}

//! Player hints: players report where they are (`/.hint?key=&t=&paused=`)
//! and the worker streaming to them follows the real play head instead of
//! guessing it from the wall clock, and sends nothing while they are paused.
//!
//! The reports arrive at any worker, so they meet the streams in a table in
//! shared memory: fixed size, open addressing on a keyed hash of the stream
//! key, atomics only. The worker serving `/film.mp4?hint=<key>` registers
//! the stream (a later request with the same key, such as a seek, takes the
//! entry over); a report writes the position; the owning worker reads it
//! when the stream's next slice is due. An entry lives 60 s after its last
//! report or registration, or until its stream ends.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::stats::StatsSlot;
use crate::sys::SharedRegion;

/// Entries in the table (a power of two): one per hinted stream.
pub const TABLE_ENTRIES: usize = 1 << 17;
/// Entries tried from a key's home position before the table counts as full.
const MAX_PROBES: usize = 32;
/// An entry with no report or registration for this long is free again.
pub const ENTRY_LIFETIME_MS: u64 = 60_000;
/// A report older than this no longer steers the stream (the wall clock does).
pub const REPORT_FRESH_MS: u64 = 10_000;
/// Stream keys are 16 to 64 characters of `[A-Za-z0-9_-]`.
pub const KEY_MIN_LEN: usize = 16;
pub const KEY_MAX_LEN: usize = 64;
/// Positions are kept in milliseconds in 40 bits (about 35 years of media).
const POSITION_MAX_MS: u64 = (1 << 40) - 1;

/// Whether `key` is a valid stream key.
pub fn is_valid_key(key: &str) -> bool {
    (KEY_MIN_LEN..=KEY_MAX_LEN).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One entry: four words, each read and written whole.
#[derive(bytemuck::Zeroable)]
#[repr(C)]
struct Entry {
    /// The key's hash (never 0); 0 = never used.
    key: AtomicU64,
    /// The stream owning it (see [`Owner`]); 0 = none.
    owner: AtomicU64,
    /// The last report: position in ms (high 40 bits), paused (bit 0); 0 = none yet.
    report: AtomicU64,
    /// CLOCK_MONOTONIC ms of the last report or registration; 0 = ended.
    touched_ms: AtomicU64,
}

/// The shared table, mapped by the master before it forks.
pub struct HintTable {
    entries: SharedRegion<(), Entry>,
    hasher: RandomState,
}

/// What a report said, as the owner reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Report {
    /// The player's position, seconds of the media it plays.
    pub position: f64,
    pub paused: bool,
    /// How old the report is, seconds.
    pub age: f64,
    /// Tells reports apart (the time it was written, ms).
    pub stamp: u64,
}

/// Why a report was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportError {
    /// No live stream has this key.
    Unknown,
    /// No live stream has this key, and the table has no room where it would
    /// be registered: the stream runs unhinted.
    Full,
}

/// A stream's place in the table: which entry, under which key and owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registration {
    index: usize,
    key: u64,
    owner: u64,
}

impl HintTable {
    pub fn new() -> io::Result<HintTable> {
        Ok(HintTable {
            entries: SharedRegion::new_sparse(TABLE_ENTRIES)?,
            hasher: RandomState::new(),
        })
    }

    fn entry(&self, index: usize) -> &Entry {
        // Masked into range (TABLE_ENTRIES is a power of two), so always found.
        match self.entries.get(index & (TABLE_ENTRIES - 1)) {
            Some(entry) => entry,
            None => unreachable!("a masked hint-table index is in range"),
        }
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key) | 1
    }

    fn is_live(entry: &Entry, now_ms: u64) -> bool {
        let touched = entry.touched_ms.load(Ordering::Acquire);
        touched != 0 && now_ms.saturating_sub(touched) < ENTRY_LIFETIME_MS
    }

    /// Registers the stream `owner` (see [`owner_tag`]) under `key`, taking
    /// over a live entry of the same key. None when the table is full there.
    pub fn register(&self, key: &str, owner: u64, now_ms: u64) -> Option<Registration> {
        let hash = self.hash(key);
        let home = hash as usize;
        let mut free = None;
        for probe in 0..MAX_PROBES {
            let index = (home + probe) & (TABLE_ENTRIES - 1);
            let entry = self.entry(index);
            let seen = entry.key.load(Ordering::Acquire);
            if seen == hash {
                // The same key: a seek or a reload of the page's player.
                return Some(self.claim(index, hash, owner, now_ms));
            }
            if free.is_none() && (seen == 0 || !Self::is_live(entry, now_ms)) {
                free = Some((index, seen));
            }
            if seen == 0 {
                break;
            }
        }
        let (index, seen) = free?;
        // Another worker may claim the same free entry at once: one wins.
        self.entry(index)
            .key
            .compare_exchange(seen, hash, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        Some(self.claim(index, hash, owner, now_ms))
    }

    fn claim(&self, index: usize, key: u64, owner: u64, now_ms: u64) -> Registration {
        let entry = self.entry(index);
        // A new stream starts without a report: an old one described the
        // previous request's play head.
        entry.report.store(0, Ordering::Release);
        entry.touched_ms.store(now_ms.max(1), Ordering::Release);
        entry.owner.store(owner, Ordering::Release);
        Registration { index, key, owner }
    }

    /// Records a player's report for `key`.
    pub fn report(
        &self,
        key: &str,
        position: f64,
        paused: bool,
        now_ms: u64,
    ) -> Result<(), ReportError> {
        let hash = self.hash(key);
        let home = hash as usize;
        let mut live = 0;
        for probe in 0..MAX_PROBES {
            let entry = self.entry(home + probe);
            let seen = entry.key.load(Ordering::Acquire);
            if seen == 0 {
                break;
            }
            let is_live = Self::is_live(entry, now_ms);
            live += usize::from(is_live);
            if seen == hash && is_live && entry.owner.load(Ordering::Acquire) != 0 {
                let ms = ((position * 1000.0) as u64).min(POSITION_MAX_MS);
                // The time first: an owner that sees the new report sees its time.
                entry.touched_ms.store(now_ms.max(1), Ordering::Release);
                entry
                    .report
                    .store((ms << 24) | u64::from(paused) | 2, Ordering::Release);
                return Ok(());
            }
        }
        Err(if live == MAX_PROBES {
            ReportError::Full
        } else {
            ReportError::Unknown
        })
    }

    /// The fresh report of a registered stream, if any; None also when the
    /// stream lost its entry (expired, or taken over by a newer request).
    pub fn read(&self, registration: &Registration, now_ms: u64) -> Option<Report> {
        let entry = self.entry(registration.index);
        if entry.key.load(Ordering::Acquire) != registration.key
            || entry.owner.load(Ordering::Acquire) != registration.owner
        {
            return None;
        }
        let report = entry.report.load(Ordering::Acquire);
        if report == 0 {
            return None;
        }
        let stamp = entry.touched_ms.load(Ordering::Acquire);
        let age_ms = now_ms.saturating_sub(stamp);
        (age_ms < REPORT_FRESH_MS).then(|| Report {
            position: (report >> 24) as f64 / 1000.0,
            paused: report & 1 == 1,
            age: age_ms as f64 / 1000.0,
            stamp,
        })
    }

    /// Ends a stream's registration (its entry is free again), unless a newer
    /// request took it over.
    pub fn release(&self, registration: &Registration) {
        let entry = self.entry(registration.index);
        if entry.key.load(Ordering::Acquire) == registration.key
            && entry
                .owner
                .compare_exchange(registration.owner, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            entry.touched_ms.store(0, Ordering::Release);
        }
    }
}

/// The owner tag of stream `serial` of the worker with process id `pid`
/// (never 0, which means "no owner").
pub fn owner_tag(pid: u32, serial: u64) -> u64 {
    (1 << 63) | (u64::from(pid) << 32) | (serial & 0xffff_ffff)
}

/// A hinted stream's link to the table, and what it adds to the counters.
pub struct Hint {
    pub table: &'static HintTable,
    pub registration: Registration,
    pub slot: &'static StatsSlot,
    /// Whether the stream counts as paused now, and the bytes it holds back.
    paused: bool,
    held: u64,
    /// The report last applied, and the media time received when it was.
    applied: Option<(u64, f64)>,
}

impl Hint {
    pub fn new(
        table: &'static HintTable,
        registration: Registration,
        slot: &'static StatsSlot,
    ) -> Hint {
        slot.hinted_streams.fetch_add(1, Ordering::Relaxed);
        Hint {
            table,
            registration,
            slot,
            paused: false,
            held: 0,
            applied: None,
        }
    }

    /// The media time the player had received when `report` was first
    /// applied (`received_now` if that is now): what bounds the report.
    pub fn received_at_report(&mut self, report: &Report, received_now: f64) -> f64 {
        match self.applied {
            Some((stamp, received)) if stamp == report.stamp => received,
            _ => {
                self.applied = Some((report.stamp, received_now));
                received_now
            }
        }
    }

    /// Updates the paused gauge and the bytes held back by a pause (what the
    /// wall-clock rule would allow beyond what the player's report allows).
    pub fn account(&mut self, paused: bool, held: u64) {
        let held = if paused { held } else { 0 };
        if paused != self.paused {
            if paused {
                self.slot.hinted_paused.fetch_add(1, Ordering::Relaxed);
            } else {
                self.slot.hinted_paused.fetch_sub(1, Ordering::Relaxed);
            }
            self.paused = paused;
        }
        if held != self.held {
            self.slot.hint_held_bytes.fetch_add(held, Ordering::Relaxed);
            self.slot
                .hint_held_bytes
                .fetch_sub(self.held, Ordering::Relaxed);
            self.held = held;
        }
    }
}

impl Drop for Hint {
    fn drop(&mut self) {
        self.table.release(&self.registration);
        // A stream that ends paused never sends what it held back.
        self.slot
            .hint_held_total
            .fetch_add(self.held, Ordering::Relaxed);
        self.account(false, 0);
        self.slot.hinted_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdefghijklmnop";

    #[test]
    fn keys_are_checked() {
        assert!(is_valid_key(KEY));
        assert!(is_valid_key(&"A-_9".repeat(16)));
        assert!(!is_valid_key("short"));
        assert!(!is_valid_key(&"a".repeat(65)));
        assert!(!is_valid_key("abcdefghijklmno!"));
    }

    #[test]
    fn reports_reach_the_owner_until_they_are_stale() {
        let table = HintTable::new().expect("mmap");
        assert_eq!(
            table.report(KEY, 1.0, false, 1000),
            Err(ReportError::Unknown)
        );
        let first = table.register(KEY, owner_tag(0, 1), 1000).expect("room");
        assert_eq!(table.read(&first, 1000), None, "no report yet");
        assert_eq!(table.report(KEY, 12.5, true, 2000), Ok(()));
        let report = table.read(&first, 3000).expect("fresh");
        assert_eq!(
            (report.position, report.paused, report.age, report.stamp),
            (12.5, true, 1.0, 2000)
        );
        assert_eq!(table.read(&first, 2000 + REPORT_FRESH_MS), None, "stale");
        // A seek: the new request takes the key over, without the old report.
        let second = table.register(KEY, owner_tag(1, 7), 4000).expect("room");
        assert_eq!(second.index, first.index);
        assert_eq!(table.read(&second, 4000), None);
        assert_eq!(table.report(KEY, 30.0, false, 4500), Ok(()));
        assert_eq!(
            table.read(&first, 4600),
            None,
            "the old stream lost the key"
        );
        assert!(table.read(&second, 4600).is_some());
        table.release(&first);
        assert!(
            table.read(&second, 4600).is_some(),
            "releasing the old one changes nothing"
        );
        table.release(&second);
        assert_eq!(
            table.report(KEY, 31.0, false, 4700),
            Err(ReportError::Unknown)
        );
    }

    #[test]
    fn entries_expire_and_a_crowded_neighbourhood_is_full() {
        let table = HintTable::new().expect("mmap");
        table.register(KEY, owner_tag(0, 1), 1000).expect("room");
        assert_eq!(
            table.report(KEY, 1.0, false, 1000 + ENTRY_LIFETIME_MS),
            Err(ReportError::Unknown),
            "expired"
        );
        // Fill every entry of a key's neighbourhood with live streams.
        let later = 2 * ENTRY_LIFETIME_MS;
        let hash = table.hash(KEY) as usize;
        let mut crowd = 0;
        for n in 0..2_000_000u64 {
            let other = format!("crowd-key-{n:012}");
            let home = table.hash(&other) as usize & (TABLE_ENTRIES - 1);
            let distance = home.wrapping_sub(hash) & (TABLE_ENTRIES - 1);
            if distance < MAX_PROBES && table.register(&other, owner_tag(0, n), later).is_some() {
                crowd += 1;
            }
            if (0..MAX_PROBES).all(|p| HintTable::is_live(table.entry(hash + p), later)) {
                break;
            }
        }
        assert!(crowd >= MAX_PROBES, "{crowd}");
        assert_eq!(table.register(KEY, owner_tag(0, 9), later), None);
        assert_eq!(table.report(KEY, 1.0, false, later), Err(ReportError::Full));
    }
}

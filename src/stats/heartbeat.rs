//! A process's sign of life in the shared region, for the master's watchdog.
//!
//! A worker (or the monitor) stamps the time each time its loop turns, and
//! notes what it is doing before work that could take long (a route
//! function). The master reads the stamp once a second; a stamp older than
//! `stall_timeout` means the loop is stuck, and the note says where.
//!
//! Only the owner writes; the master reads. The note is read only once the
//! owner has stopped turning, so it is not being written while it is read.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes a note can hold; a longer one is cut at a character boundary.
pub const NOTE_BYTES: usize = 240;
const NOTE_WORDS: usize = NOTE_BYTES / 8;

#[derive(bytemuck::Zeroable)]
#[repr(C)]
pub struct Heartbeat {
    /// CLOCK_MONOTONIC microseconds of the loop's last turn; 0 = none yet.
    beat_micros: AtomicU64,
    /// Bytes of `note` in use; 0 = nothing noted.
    note_len: AtomicU64,
    note: [AtomicU64; NOTE_WORDS],
}

impl Heartbeat {
    /// Records a turn of the loop at `micros` (`sys::monotonic_micros`).
    pub fn beat(&self, micros: u64) {
        self.beat_micros.store(micros, Ordering::Relaxed);
    }

    /// When the loop last turned, or None if it has not yet.
    pub fn last_beat(&self) -> Option<u64> {
        match self.beat_micros.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(micros),
        }
    }

    /// Notes what the process is about to do.
    pub fn note(&self, doing: &str) {
        let mut len = doing.len().min(NOTE_BYTES);
        while !doing.is_char_boundary(len) {
            len -= 1;
        }
        let bytes = &doing.as_bytes()[..len];
        for (word, chunk) in self.note.iter().zip(bytes.chunks(8)) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            word.store(u64::from_le_bytes(buf), Ordering::Relaxed);
        }
        self.note_len.store(len as u64, Ordering::Release);
    }

    /// Clears the note: the work is done.
    pub fn clear_note(&self) {
        self.note_len.store(0, Ordering::Release);
    }

    /// What the process noted last, if it has not cleared it.
    pub fn read_note(&self) -> Option<String> {
        let len = (self.note_len.load(Ordering::Acquire) as usize).min(NOTE_BYTES);
        if len == 0 {
            return None;
        }
        let mut bytes = Vec::with_capacity(NOTE_BYTES);
        for word in &self.note {
            bytes.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        bytes.truncate(len);
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Forgets the previous owner's beat and note, for a new process.
    pub fn reset(&self) {
        self.beat_micros.store(0, Ordering::Relaxed);
        self.note_len.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeroed() -> Heartbeat {
        Heartbeat {
            beat_micros: AtomicU64::new(0),
            note_len: AtomicU64::new(0),
            note: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    #[test]
    fn a_note_is_read_back_until_cleared_and_cut_at_a_character() {
        let heartbeat = zeroed();
        assert_eq!(heartbeat.last_beat(), None);
        heartbeat.beat(42);
        assert_eq!(heartbeat.last_beat(), Some(42));
        heartbeat.note("hosts['a'].routes[2] (call) for /film.mp4");
        assert_eq!(
            heartbeat.read_note().as_deref(),
            Some("hosts['a'].routes[2] (call) for /film.mp4")
        );
        heartbeat.clear_note();
        assert_eq!(heartbeat.read_note(), None);
        let long = "é".repeat(200);
        heartbeat.note(&long);
        let read = heartbeat.read_note().expect("noted");
        assert!(read.len() <= NOTE_BYTES && read.chars().all(|c| c == 'é'));
        heartbeat.reset();
        assert_eq!((heartbeat.last_beat(), heartbeat.read_note()), (None, None));
    }
}

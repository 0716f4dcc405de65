//! Counters shared by every process through one anonymous MAP_SHARED region.
//!
//! The master maps the region before forking, so workers and the monitor see
//! the same memory. Each worker owns one cache-line-aligned slot and is its
//! only writer (no false sharing); the monitor sums the slots. A few globals
//! (the clients count) are shared by all workers.

pub mod monitor;

use std::io;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use crate::sys::SharedMapping;

/// How many slots the region holds: enough for a full set of workers plus a
/// full set still draining after a reload, with room to spare.
pub const SLOT_COUNT: usize = 1100;

/// Counters of one worker process. Totals survive the worker: a replacement
/// reusing the slot keeps adding to them.
#[repr(C, align(128))]
#[derive(Default)]
pub struct StatsSlot {
    /// Process id of the worker using the slot; 0 when free.
    pub pid: AtomicU32,
    pub connections_active: AtomicU64,
    pub connections_total: AtomicU64,
    pub requests_total: AtomicU64,
    /// Responses by status class: index 0 = 1xx … 4 = 5xx.
    pub responses: [AtomicU64; 5],
    pub bytes_sent: AtomicU64,
    /// Connections refused with 503 because `clients` was reached.
    pub overloads: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
}

impl StatsSlot {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn count_response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// Values shared by every process.
#[repr(C, align(128))]
#[derive(Default)]
pub struct Globals {
    /// Open client connections over all workers, for the `clients` cap.
    pub clients_active: AtomicI64,
    /// When the master started, Unix seconds.
    pub started: AtomicI64,
    pub reloads: AtomicU64,
    pub worker_restarts: AtomicU64,
    /// Settings the monitor reports (the monitor's own copy of the options may be older).
    pub workers: AtomicU64,
    pub clients_limit: AtomicU64,
}

/// The shared region: globals then `SLOT_COUNT` slots.
pub struct StatsRegion {
    mapping: SharedMapping,
}

impl StatsRegion {
    pub fn new() -> io::Result<StatsRegion> {
        let len = std::mem::size_of::<Globals>() + SLOT_COUNT * std::mem::size_of::<StatsSlot>();
        let mapping = SharedMapping::new(len)?;
        Ok(StatsRegion { mapping })
    }

    pub fn globals(&self) -> &Globals {
        // SAFETY: the mapping is at least this large, page-aligned (so aligned
        // for Globals), zero-filled (a valid Globals of atomics), and only ever
        // accessed through these atomics.
        unsafe { &*(self.mapping.as_ptr() as *const Globals) }
    }

    pub fn slot(&self, index: usize) -> &StatsSlot {
        assert!(index < SLOT_COUNT, "stats slot {index} out of range");
        // SAFETY: as for `globals`; slots follow the globals, each 128-byte
        // aligned because Globals' size is a multiple of 128.
        unsafe {
            let base =
                self.mapping.as_ptr().add(std::mem::size_of::<Globals>()) as *const StatsSlot;
            &*base.add(index)
        }
    }

    /// Slots currently or previously used, for summing.
    pub fn slots(&self) -> impl Iterator<Item = &StatsSlot> {
        (0..SLOT_COUNT).map(|i| self.slot(i))
    }

    pub fn len(&self) -> usize {
        self.mapping.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mapping.len() == 0
    }
}

/// The sum of every slot, for the monitor.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub workers_running: u64,
    pub connections_active: u64,
    pub connections_total: u64,
    pub requests_total: u64,
    pub responses: [u64; 5],
    pub bytes_sent: u64,
    pub overloads: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
}

impl Totals {
    pub fn sum(region: &StatsRegion) -> Totals {
        let mut totals = Totals::default();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for slot in region.slots() {
            if slot.pid.load(Ordering::Relaxed) != 0 {
                totals.workers_running += 1;
            }
            totals.connections_active += load(&slot.connections_active);
            totals.connections_total += load(&slot.connections_total);
            totals.requests_total += load(&slot.requests_total);
            for (sum, class) in totals.responses.iter_mut().zip(&slot.responses) {
                *sum += load(class);
            }
            totals.bytes_sent += load(&slot.bytes_sent);
            totals.overloads += load(&slot.overloads);
            totals.cache_hits += load(&slot.cache_hits);
            totals.cache_misses += load(&slot.cache_misses);
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_cache_line_aligned_and_summed() {
        assert_eq!(std::mem::size_of::<StatsSlot>() % 128, 0);
        assert_eq!(std::mem::size_of::<Globals>() % 128, 0);
        let region = StatsRegion::new().expect("mmap");
        region.slot(0).pid.store(1, Ordering::Relaxed);
        StatsSlot::add(&region.slot(0).bytes_sent, 10);
        StatsSlot::add(&region.slot(SLOT_COUNT - 1).bytes_sent, 5);
        region.slot(3).count_response(404);
        let totals = Totals::sum(&region);
        assert_eq!(totals.bytes_sent, 15);
        assert_eq!(totals.responses, [0, 0, 0, 1, 0]);
        assert_eq!(totals.workers_running, 1);
        assert_eq!(region.slot(7) as *const _ as usize % 128, 0);
    }
}

//! Counters shared by every process through one anonymous MAP_SHARED region.
//!
//! Layer: imports only `sys`. Host and folder names come in as strings;
//! its readers (the monitor) and writers (the workers) sit above it.
//!
//! The master maps the region before forking, so workers and the monitor see
//! the same memory. Each worker owns one cache-line-aligned slot and is its
//! only writer (no false sharing); the monitor sums the slots. A few globals
//! (the clients count) are shared by all workers.

pub mod columns;
pub mod heartbeat;

use std::io;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytemuck::Zeroable;

use crate::sys::SharedRegion;
use columns::{CODE_COLUMNS, Directory, FOLDER_COLUMNS, HOST_COLUMNS, code_column};
use heartbeat::Heartbeat;

/// How many slots the region holds: enough for a full set of workers plus a
/// full set still draining after a reload, with room to spare.
pub const SLOT_COUNT: usize = 1100;

/// Why a request or response failed, for `net:failures`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The request head could not be parsed (400, 414, 431).
    Malformed = 0,
    /// The head did not arrive in time (408), or a response made no progress.
    TimedOut = 1,
    /// The client left before its response body was sent.
    Dropped = 2,
}

/// Counters of one worker process. Totals survive the worker: a replacement
/// reusing the slot keeps adding to them. The region is zero-filled, which
/// is a valid slot of zeros.
#[derive(Zeroable)]
#[repr(C, align(128))]
pub struct StatsSlot {
    /// Process id of the worker using the slot; 0 when free.
    pub pid: AtomicU32,
    /// The worker's sign of life, for the master's watchdog.
    pub heartbeat: Heartbeat,
    pub connections_active: AtomicU64,
    pub connections_total: AtomicU64,
    pub requests_total: AtomicU64,
    /// Responses by status class: index 0 = 1xx … 4 = 5xx.
    pub responses: [AtomicU64; 5],
    pub bytes_sent: AtomicU64,
    /// Connections refused with 503 because `clients` was reached.
    pub overloads: AtomicU64,
    /// Connections refused (429) or closed (floods) by `options.limits`.
    pub limited: AtomicU64,
    /// Streams registered with a player-hint key now (gauge).
    pub hinted_streams: AtomicU64,
    /// Of those, streams whose player reports a pause now (gauge).
    pub hinted_paused: AtomicU64,
    /// Bytes the wall-clock rule would have sent by now that paused players'
    /// reports hold back (gauge).
    pub hint_held_bytes: AtomicU64,
    /// Bytes held back by a pause when the stream ended (never sent).
    pub hint_held_total: AtomicU64,
    /// Player reports received (`/.hint`).
    pub hint_reports: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    /// Response bodies in flight now (gauge).
    pub streams_active: AtomicU64,
    /// Of those, throttled streams asleep on the timer wheel now (gauge).
    pub streams_throttled: AtomicU64,
    /// Body bytes handed to sockets (heads not counted).
    pub body_bytes_sent: AtomicU64,
    /// Body bytes never sent because the response ended first (the player
    /// left, or a time-out): what throttling saved.
    pub bytes_saved: AtomicU64,
    pub slice_lag: SliceLag,
    /// Failures by [`Failure`].
    pub failures: [AtomicU64; 3],
    /// Packaged answers (HLS/DASH) by kind: playlists and manifests, init
    /// segments, media segments; and their body bytes sent.
    pub packaged: [AtomicU64; 3],
    pub packaged_bytes: [AtomicU64; 3],
    /// Of those, the answers of rendition sets (`….urlset/…`), by kind.
    pub set_requests: [AtomicU64; 3],
    /// TLS connections open now (gauge) and accepted in all.
    pub tls_active: AtomicU64,
    pub tls_total: AtomicU64,
    /// Completed TLS handshakes: full, and resumed from a ticket.
    pub tls_handshakes_full: AtomicU64,
    pub tls_handshakes_resumed: AtomicU64,
    /// Failed handshakes by reason (see `TLS_FAILURES`).
    pub tls_handshake_failures: [AtomicU64; TLS_FAILURES],
    /// TLS connections whose bodies went to kernel TLS.
    pub tls_kernel: AtomicU64,
    /// The media cache's size and entries now (gauges).
    pub cache_bytes: AtomicU64,
    pub cache_items: AtomicU64,
    /// Requests by virtual-host column (see [`columns`]).
    pub host_requests: [AtomicU64; HOST_COLUMNS],
    /// Responses by virtual-host column and status-code column.
    pub host_responses: [[AtomicU64; CODE_COLUMNS]; HOST_COLUMNS],
    /// Requests answered from each folder column, and their body bytes.
    pub folder_requests: [AtomicU64; FOLDER_COLUMNS],
    pub folder_bytes: [AtomicU64; FOLDER_COLUMNS],
}

/// Columns of failed TLS handshakes by reason.
pub const TLS_FAILURES: usize = 5;

/// Seconds over which the slice lag's mean and maximum are reported.
pub const LAG_WINDOW_SECS: usize = 10;
/// Histogram buckets: one per millisecond below 24 ms, then doubling.
pub const LAG_BUCKETS: usize = 32;
const LAG_LINEAR_MS: u64 = 24;

/// How late throttled slices go out after their due time: per-second windows
/// for the recent mean and maximum, and a histogram since start for percentiles.
#[derive(Zeroable)]
#[repr(C)]
pub struct SliceLag {
    windows: [LagWindow; LAG_WINDOW_SECS],
    histogram: [AtomicU64; LAG_BUCKETS],
    /// Every slice's lag added up since start, for the histogram's sum.
    total_us: AtomicU64,
}

#[derive(Zeroable)]
#[repr(C)]
struct LagWindow {
    /// The Unix second this window holds.
    second: AtomicI64,
    count: AtomicU64,
    total_us: AtomicU64,
    max_us: AtomicU64,
}

/// The histogram bucket of a lag.
pub fn lag_bucket(lag: Duration) -> usize {
    let ms = lag.as_millis() as u64;
    if ms < LAG_LINEAR_MS {
        return ms as usize;
    }
    let doublings = (ms / LAG_LINEAR_MS).ilog2() as usize;
    (LAG_LINEAR_MS as usize + doublings).min(LAG_BUCKETS - 1)
}

/// The upper bound of a histogram bucket, in milliseconds.
pub fn lag_bucket_upper_ms(bucket: usize) -> u64 {
    if bucket < LAG_LINEAR_MS as usize {
        bucket as u64 + 1
    } else if bucket == LAG_BUCKETS - 1 {
        u64::MAX
    } else {
        LAG_LINEAR_MS << (bucket - LAG_LINEAR_MS as usize + 1)
    }
}

impl StatsSlot {
    /// Records how late a throttled slice went out (`now` in Unix seconds).
    pub fn record_slice_lag(&self, lag: Duration, now: i64) {
        let lag_us = lag.as_micros().min(u128::from(u64::MAX)) as u64;
        let window = &self.slice_lag.windows[now.rem_euclid(LAG_WINDOW_SECS as i64) as usize];
        if window.second.load(Ordering::Relaxed) != now {
            // Only this worker writes its slot, so the reset cannot race a writer.
            window.count.store(0, Ordering::Relaxed);
            window.total_us.store(0, Ordering::Relaxed);
            window.max_us.store(0, Ordering::Relaxed);
            window.second.store(now, Ordering::Relaxed);
        }
        window.count.fetch_add(1, Ordering::Relaxed);
        window.total_us.fetch_add(lag_us, Ordering::Relaxed);
        window.max_us.fetch_max(lag_us, Ordering::Relaxed);
        self.slice_lag.histogram[lag_bucket(lag)].fetch_add(1, Ordering::Relaxed);
        self.slice_lag.total_us.fetch_add(lag_us, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a response of `status` for the host in column `host`.
    pub fn count_response(&self, host: usize, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
        if let Some(row) = self.host_responses.get(host) {
            row[code_column(status)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a request for the host in column `host`.
    pub fn count_request(&self, host: usize) {
        self.requests_total.fetch_add(1, Ordering::Relaxed);
        if let Some(counter) = self.host_requests.get(host) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a completed TLS handshake.
    pub fn count_handshake(&self, resumed: bool) {
        let counter = if resumed {
            &self.tls_handshakes_resumed
        } else {
            &self.tls_handshakes_full
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a TLS connection handed to kernel TLS.
    pub fn count_kernel_tls(&self) {
        self.tls_kernel.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed TLS handshake; `reason` indexes `TLS_FAILURES`'s
    /// columns (the TLS layer names them).
    pub fn count_handshake_failure(&self, reason: usize) {
        if let Some(counter) = self.tls_handshake_failures.get(reason) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn count_failure(&self, failure: Failure) {
        self.failures[failure as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request answered from folder column `folder` with `bytes` of body.
    pub fn count_folder(&self, folder: usize, bytes: u64) {
        if let (Some(requests), Some(sent)) = (
            self.folder_requests.get(folder),
            self.folder_bytes.get(folder),
        ) {
            requests.fetch_add(1, Ordering::Relaxed);
            sent.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

/// Values shared by every process.
#[derive(Zeroable)]
#[repr(C, align(128))]
pub struct Globals {
    /// Open client connections over all workers, for the `clients` cap.
    pub clients_active: AtomicI64,
    /// When the master started, Unix seconds.
    pub started: AtomicI64,
    pub reloads: AtomicU64,
    pub worker_restarts: AtomicU64,
    /// Workers and monitors the watchdog killed because their loop stopped turning.
    pub worker_stalls: AtomicU64,
    /// The monitor's sign of life, for the master's watchdog.
    pub monitor: Heartbeat,
    /// Settings the monitor reports (the monitor's own copy of the options may be older).
    pub workers: AtomicU64,
    pub clients_limit: AtomicU64,
    /// One past the highest slot ever given to a worker: the monitor sums
    /// only these (each slot is about 13 KB; the region holds 1 100).
    pub slots_used: AtomicU64,
    /// The names of the host and folder columns.
    pub hosts: Directory<HOST_COLUMNS>,
    pub folders: Directory<FOLDER_COLUMNS>,
}

/// The shared region: globals then `SLOT_COUNT` slots.
pub struct StatsRegion {
    region: SharedRegion<Globals, StatsSlot>,
}

impl StatsRegion {
    pub fn new() -> io::Result<StatsRegion> {
        let region = StatsRegion {
            region: SharedRegion::new(SLOT_COUNT)?,
        };
        region
            .globals()
            .hosts
            .reserve(columns::UNKNOWN_HOST, "unknown");
        Ok(region)
    }

    pub fn globals(&self) -> &Globals {
        self.region.header()
    }

    /// Slot `index`; the master hands out indices below `SLOT_COUNT` only.
    pub fn slot(&self, index: usize) -> &StatsSlot {
        match self.region.get(index) {
            Some(slot) => slot,
            None => panic!("stats slot {index} out of range"),
        }
    }

    /// Slots currently or previously used, for summing.
    pub fn slots(&self) -> impl Iterator<Item = &StatsSlot> {
        (0..self.slots_used()).map(|i| self.slot(i))
    }

    /// How many slots have ever been given to a worker: a prefix of the
    /// region, since the master hands out freed slots before new ones.
    pub fn slots_used(&self) -> usize {
        (self.globals().slots_used.load(Ordering::Relaxed) as usize).min(SLOT_COUNT)
    }

    /// Records that slot `index` is given to a worker.
    pub fn mark_used(&self, index: usize) {
        self.globals()
            .slots_used
            .fetch_max(index as u64 + 1, Ordering::Relaxed);
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
    pub limited: u64,
    pub hinted_streams: u64,
    pub hinted_paused: u64,
    pub hint_held_bytes: u64,
    pub hint_held_total: u64,
    pub hint_reports: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub streams_active: u64,
    pub streams_throttled: u64,
    pub body_bytes_sent: u64,
    pub bytes_saved: u64,
    /// Slices sent in the last `LAG_WINDOW_SECS` seconds, their total and largest lag.
    pub lag_count: u64,
    pub lag_total_us: u64,
    pub lag_max_us: u64,
    pub lag_histogram: [u64; LAG_BUCKETS],
    /// Every slice's lag since start, added up.
    pub lag_all_us: u64,
    pub failures: [u64; 3],
    pub packaged: [u64; 3],
    pub packaged_bytes: [u64; 3],
    pub set_requests: [u64; 3],
    pub cache_bytes: u64,
    pub cache_items: u64,
    pub tls_active: u64,
    pub tls_total: u64,
    pub tls_handshakes_full: u64,
    pub tls_handshakes_resumed: u64,
    pub tls_handshake_failures: [u64; TLS_FAILURES],
    pub tls_kernel: u64,
    pub host_requests: Vec<u64>,
    /// By host column, then code column.
    pub host_responses: Vec<[u64; CODE_COLUMNS]>,
    pub folder_requests: Vec<u64>,
    pub folder_bytes: Vec<u64>,
}

impl Totals {
    /// Mean slice lag over the window, in milliseconds.
    pub fn lag_mean_ms(&self) -> f64 {
        if self.lag_count == 0 {
            0.0
        } else {
            self.lag_total_us as f64 / self.lag_count as f64 / 1000.0
        }
    }

    pub fn sum(region: &StatsRegion) -> Totals {
        Totals::sum_at(region, crate::sys::unix_now())
    }

    /// The sum of every slot, with lag windows read as of Unix second `now`.
    pub fn sum_at(region: &StatsRegion, now: i64) -> Totals {
        let mut totals = Totals {
            host_requests: vec![0; HOST_COLUMNS],
            host_responses: vec![[0; CODE_COLUMNS]; HOST_COLUMNS],
            folder_requests: vec![0; FOLDER_COLUMNS],
            folder_bytes: vec![0; FOLDER_COLUMNS],
            ..Totals::default()
        };
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
            totals.limited += load(&slot.limited);
            totals.hinted_streams += load(&slot.hinted_streams);
            totals.hinted_paused += load(&slot.hinted_paused);
            totals.hint_held_bytes += load(&slot.hint_held_bytes);
            totals.hint_held_total += load(&slot.hint_held_total);
            totals.hint_reports += load(&slot.hint_reports);
            totals.tls_active += load(&slot.tls_active);
            totals.tls_total += load(&slot.tls_total);
            totals.tls_handshakes_full += load(&slot.tls_handshakes_full);
            totals.tls_handshakes_resumed += load(&slot.tls_handshakes_resumed);
            for (sum, reason) in totals
                .tls_handshake_failures
                .iter_mut()
                .zip(&slot.tls_handshake_failures)
            {
                *sum += load(reason);
            }
            totals.tls_kernel += load(&slot.tls_kernel);
            totals.cache_hits += load(&slot.cache_hits);
            totals.cache_misses += load(&slot.cache_misses);
            totals.streams_active += load(&slot.streams_active);
            totals.streams_throttled += load(&slot.streams_throttled);
            totals.body_bytes_sent += load(&slot.body_bytes_sent);
            totals.bytes_saved += load(&slot.bytes_saved);
            for window in &slot.slice_lag.windows {
                let second = window.second.load(Ordering::Relaxed);
                if second > now - LAG_WINDOW_SECS as i64 && second <= now {
                    totals.lag_count += load(&window.count);
                    totals.lag_total_us += load(&window.total_us);
                    totals.lag_max_us = totals.lag_max_us.max(load(&window.max_us));
                }
            }
            for (sum, bucket) in totals
                .lag_histogram
                .iter_mut()
                .zip(&slot.slice_lag.histogram)
            {
                *sum += load(bucket);
            }
            for (sum, failures) in totals.failures.iter_mut().zip(&slot.failures) {
                *sum += load(failures);
            }
            for (sum, count) in totals.packaged.iter_mut().zip(&slot.packaged) {
                *sum += load(count);
            }
            for (sum, bytes) in totals.packaged_bytes.iter_mut().zip(&slot.packaged_bytes) {
                *sum += load(bytes);
            }
            for (sum, count) in totals.set_requests.iter_mut().zip(&slot.set_requests) {
                *sum += load(count);
            }
            totals.lag_all_us += load(&slot.slice_lag.total_us);
            totals.cache_bytes += load(&slot.cache_bytes);
            totals.cache_items += load(&slot.cache_items);
            add_all(&mut totals.host_requests, &slot.host_requests);
            for (sums, row) in totals.host_responses.iter_mut().zip(&slot.host_responses) {
                add_all(sums, row);
            }
            add_all(&mut totals.folder_requests, &slot.folder_requests);
            add_all(&mut totals.folder_bytes, &slot.folder_bytes);
        }
        totals
    }
}

fn add_all(sums: &mut [u64], counters: &[AtomicU64]) {
    for (sum, counter) in sums.iter_mut().zip(counters) {
        *sum += counter.load(Ordering::Relaxed);
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
        region.mark_used(SLOT_COUNT - 1);
        region.slot(0).pid.store(1, Ordering::Relaxed);
        StatsSlot::add(&region.slot(0).bytes_sent, 10);
        StatsSlot::add(&region.slot(SLOT_COUNT - 1).bytes_sent, 5);
        region.slot(3).count_response(5, 404);
        region.slot(4).count_response(5, 404);
        region.slot(4).count_response(5, 418);
        let totals = Totals::sum(&region);
        assert_eq!(totals.bytes_sent, 15);
        assert_eq!(totals.responses, [0, 0, 0, 3, 0]);
        assert_eq!(totals.host_responses[5][code_column(404)], 2);
        assert_eq!(totals.host_responses[5][CODE_COLUMNS - 1], 1);
        assert_eq!(
            region
                .globals()
                .hosts
                .name(columns::UNKNOWN_HOST)
                .as_deref(),
            Some("unknown")
        );
        assert_eq!(totals.workers_running, 1);
        assert_eq!(region.slot(7) as *const _ as usize % 128, 0);
    }

    #[test]
    fn column_names_are_kept_across_assignments() {
        let region = StatsRegion::new().expect("mmap");
        let hosts = &region.globals().hosts;
        let a = hosts.assign("a.example", 1);
        let b = hosts.assign("my-site.com", 1);
        assert_eq!((a, b), (1, 2));
        assert_eq!(hosts.assign("my-site.com", 1), 2, "a name keeps its column");
        for n in 0..100 {
            hosts.assign(&format!("h{n}"), 1);
        }
        assert_eq!(hosts.assign("late", 1), HOST_COLUMNS - 1);
        assert_eq!(hosts.name(HOST_COLUMNS - 1).as_deref(), Some("(other)"));
    }

    #[test]
    fn slice_lag_keeps_ten_seconds_and_a_histogram() {
        let region = StatsRegion::new().expect("mmap");
        region.mark_used(2);
        let slot = region.slot(2);
        slot.record_slice_lag(Duration::from_millis(20), 100);
        slot.record_slice_lag(Duration::from_micros(1500), 105);
        slot.record_slice_lag(Duration::from_micros(500), 109);
        let totals = Totals::sum_at(&region, 109);
        assert_eq!(totals.lag_count, 3);
        assert_eq!(totals.lag_max_us, 20_000);
        assert!((totals.lag_mean_ms() - 22.0 / 3.0).abs() < 1e-9);
        let later = Totals::sum_at(&region, 111);
        assert_eq!((later.lag_count, later.lag_max_us), (2, 1500));
        assert_eq!(later.lag_histogram[0], 1);
        assert_eq!(later.lag_histogram[1], 1);
        assert_eq!(later.lag_histogram[20], 1);
        assert_eq!(lag_bucket(Duration::from_millis(30)), 24);
        assert_eq!(lag_bucket_upper_ms(24), 48);
        assert_eq!(lag_bucket(Duration::from_millis(50)), 25);
        assert_eq!(lag_bucket(Duration::from_secs(3600)), LAG_BUCKETS - 1);
    }
}

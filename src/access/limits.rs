//! `options.limits`: per-client connection limits over all workers, counted
//! in shared memory with count-min sketches of atomic counters.
//!
//! A count-min sketch keeps `SKETCH_ROWS` rows of counters; a client's count
//! is added to one counter per row (chosen by a keyed hash of its address),
//! and read back as the smallest of them. Another client hashed to the same
//! counter only ever adds to it, so every counter holds at least the true
//! count and so does their minimum: the error is one-sided. A limit may
//! refuse a client slightly early when the sketch is crowded (every row
//! collided), but never lets one past its limit. The hash key is random per
//! master, so a client cannot pick addresses that collide with a victim's.
//!
//! - Concurrency: each worker counts its own connections in its own sketch
//!   (so that the master can forget a dead worker's connections by zeroing
//!   its sketch), and a new connection is admitted when the sum over workers
//!   stays within `per_ip`. A worker adds first and reads after, so two
//!   workers admitting at once both see both connections.
//! - Rate: one shared sketch of GCRA "theoretical arrival times" (a token
//!   bucket of `burst` connections refilled at `rate` per second): a
//!   counter's time only moves forward with every connection admitted
//!   through it, so the minimum is never earlier than the client's own.
//! - Floods: one shared sketch of arrivals in the current second; past ten
//!   times the rate, connections are closed at accept without a response.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use super::cidr::{CidrList, subscriber};
use crate::options::{LimitOptions, OptionsError};
use crate::stats::SLOT_COUNT;
use crate::sys::SharedRegion;

/// Rows of each sketch: the error needs every row to collide.
pub const SKETCH_ROWS: usize = 4;
/// Counters per row (a power of two). At 10 000 connections in one worker
/// a counter holds 0.6 other clients on average, and all four rows of a
/// client collide about 4 % of the time, adding one connection.
pub const SKETCH_COLUMNS: usize = 16_384;
/// Past this many times the rate, arrivals are a flood.
const FLOOD_FACTOR: f64 = 10.0;
/// Retry-After of a 429 for too many concurrent connections.
const CONCURRENCY_RETRY_SECS: u32 = 5;

/// One worker's connection counts.
#[derive(bytemuck::Zeroable)]
#[repr(C)]
struct ConcurrencySketch {
    cells: [[AtomicU16; SKETCH_COLUMNS]; SKETCH_ROWS],
}

/// The shared rate state.
#[derive(bytemuck::Zeroable)]
#[repr(C)]
struct RateSketch {
    /// GCRA theoretical arrival time, microseconds of CLOCK_MONOTONIC.
    arrival_time_us: [[AtomicU64; SKETCH_COLUMNS]; SKETCH_ROWS],
    /// Arrivals this second: the second (high 32 bits) and the count (low 32 bits).
    arrivals: [[AtomicU64; SKETCH_COLUMNS]; SKETCH_ROWS],
}

/// `options.limits`, compiled.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitSettings {
    per_ip: u32,
    /// Microseconds between connections at the steady rate; 0 = no rate limit.
    interval_us: u64,
    burst: u32,
    rate: f64,
    exempt: CidrList,
}

impl LimitSettings {
    pub fn compile(options: &LimitOptions) -> Result<LimitSettings, OptionsError> {
        let exempt = CidrList::parse(&options.exempt, "limits.exempt")
            .map_err(|(name, e)| OptionsError::option(&name, e))?;
        let interval_us = if options.rate > 0.0 {
            (1e6 / options.rate) as u64
        } else {
            0
        };
        Ok(LimitSettings {
            per_ip: options.per_ip,
            interval_us,
            burst: options.burst.max(1),
            rate: options.rate,
            exempt,
        })
    }
}

/// Which counters a client uses, one per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientKey {
    columns: [u16; SKETCH_ROWS],
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    /// Over `per_ip` concurrent connections.
    Concurrency,
    /// Over `rate` (after `burst`); retry after this many seconds.
    Rate { retry_after: u32 },
}

impl Limited {
    pub fn retry_after(self) -> u32 {
        match self {
            Limited::Concurrency => CONCURRENCY_RETRY_SECS,
            Limited::Rate { retry_after } => retry_after,
        }
    }
}

/// What happens to a new connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Not limited (exempt, or no per-IP concurrency limit).
    Free,
    /// Admitted and counted: give the key back with `release` when it closes.
    Counted(ClientKey),
    /// Answer 429 and close.
    Refused(Limited),
    /// Close without a response.
    Flood,
}

/// The sketches, in one anonymous shared mapping made by the master before
/// it forks: the rate sketch, then one concurrency sketch per stats slot.
pub struct LimitsRegion {
    region: SharedRegion<RateSketch, ConcurrencySketch>,
    hasher: RandomState,
}

impl LimitsRegion {
    pub fn new() -> io::Result<LimitsRegion> {
        // Pages are only backed once touched: a worker touches its own sketch.
        Ok(LimitsRegion {
            region: SharedRegion::new_sparse(SLOT_COUNT)?,
            hasher: RandomState::new(),
        })
    }

    fn rate(&self) -> &RateSketch {
        self.region.header()
    }

    /// The sketch of stats slot `slot` (always below `SLOT_COUNT`).
    fn concurrency(&self, slot: usize) -> &ConcurrencySketch {
        match self.region.get(slot) {
            Some(sketch) => sketch,
            None => panic!("limits slot {slot} out of range"),
        }
    }

    fn key(&self, ip: IpAddr) -> ClientKey {
        let address = subscriber(ip);
        let first = self.hasher.hash_one(address);
        // Odd, so the rows' columns differ (double hashing).
        let step = self.hasher.hash_one((address, 1u8)) | 1;
        let mut columns = [0u16; SKETCH_ROWS];
        for (row, column) in columns.iter_mut().enumerate() {
            let hash = first.wrapping_add((row as u64).wrapping_mul(step));
            *column = (hash % SKETCH_COLUMNS as u64) as u16;
        }
        ClientKey { columns }
    }

    /// Decides on a connection from `ip` accepted by the worker in `slot`,
    /// `now_us` being CLOCK_MONOTONIC in microseconds and `slots_used` the
    /// number of stats slots ever given to workers.
    pub fn admit(
        &self,
        settings: &LimitSettings,
        slot: usize,
        slots_used: usize,
        ip: IpAddr,
        now_us: u64,
    ) -> Admission {
        if settings.exempt.contains(ip) {
            return Admission::Free;
        }
        let key = self.key(ip);
        if settings.interval_us > 0 {
            if self.count_arrival(&key, now_us) as f64
                > (settings.rate * FLOOD_FACTOR).max(f64::from(settings.burst) + settings.rate)
            {
                return Admission::Flood;
            }
            if let Err(limited) = self.take_rate_token(settings, &key, now_us) {
                return Admission::Refused(limited);
            }
        }
        if settings.per_ip == 0 {
            return Admission::Free;
        }
        let own = self.concurrency(slot);
        for (row, &column) in key.columns.iter().enumerate() {
            let cell = &own.cells[row][usize::from(column)];
            if cell
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_add(1))
                .is_err()
            {
                // A full counter: undo the rows already counted and refuse.
                self.uncount(slot, &key, row);
                return Admission::Refused(Limited::Concurrency);
            }
        }
        if self.connections_of(&key, slots_used) > u64::from(settings.per_ip) {
            self.release(slot, key);
            return Admission::Refused(Limited::Concurrency);
        }
        Admission::Counted(key)
    }

    /// Takes back the first `rows` rows of a count.
    fn uncount(&self, slot: usize, key: &ClientKey, rows: usize) {
        let own = self.concurrency(slot);
        for (row, &column) in key.columns.iter().enumerate().take(rows) {
            own.cells[row][usize::from(column)].fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Gives back a connection counted by `admit` in `slot`.
    pub fn release(&self, slot: usize, key: ClientKey) {
        self.uncount(slot, &key, SKETCH_ROWS);
    }

    /// The client's connections over all workers: each worker's smallest
    /// row, added up (each is at least that worker's true count).
    fn connections_of(&self, key: &ClientKey, slots_used: usize) -> u64 {
        (0..slots_used.min(SLOT_COUNT))
            .map(|slot| {
                let sketch = self.concurrency(slot);
                key.columns
                    .iter()
                    .enumerate()
                    .map(|(row, &column)| {
                        u64::from(sketch.cells[row][usize::from(column)].load(Ordering::SeqCst))
                    })
                    .min()
                    .unwrap_or(0)
            })
            .sum()
    }

    /// Counts an arrival in the current second; returns the estimate.
    fn count_arrival(&self, key: &ClientKey, now_us: u64) -> u64 {
        let second = now_us / 1_000_000;
        let rate = self.rate();
        key.columns
            .iter()
            .enumerate()
            .map(|(row, &column)| {
                let cell = &rate.arrivals[row][usize::from(column)];
                let update = |packed: u64| {
                    Some(if packed >> 32 == second & 0xffff_ffff {
                        packed.saturating_add(1).min(packed | 0xffff_ffff)
                    } else {
                        (second << 32) | 1
                    })
                };
                let before = cell
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, update)
                    .unwrap_or(0);
                update(before).map_or(0, |after| after & 0xffff_ffff)
            })
            .min()
            .unwrap_or(0)
    }

    /// GCRA: admits when the client's next arrival time is within `burst`
    /// intervals of now, and moves every row's time on by one interval.
    fn take_rate_token(
        &self,
        settings: &LimitSettings,
        key: &ClientKey,
        now_us: u64,
    ) -> Result<(), Limited> {
        let rate = self.rate();
        let cell = |row: usize, column: u16| &rate.arrival_time_us[row][usize::from(column)];
        let estimate = key
            .columns
            .iter()
            .enumerate()
            .map(|(row, &column)| cell(row, column).load(Ordering::Acquire))
            .min()
            .unwrap_or(0);
        let interval = settings.interval_us;
        let next = estimate.max(now_us) + interval;
        let tolerance = interval * u64::from(settings.burst);
        if next - now_us > tolerance {
            let wait_us = next - now_us - tolerance;
            return Err(Limited::Rate {
                retry_after: wait_us.div_ceil(1_000_000).max(1) as u32,
            });
        }
        for (row, &column) in key.columns.iter().enumerate() {
            let _ = cell(row, column).fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.max(now_us) + interval)
            });
        }
        Ok(())
    }

    /// Forgets the connections of the worker that had `slot` (it died).
    pub fn clear_slot(&self, slot: usize) {
        for row in &self.concurrency(slot).cells {
            for cell in row {
                cell.store(0, Ordering::SeqCst);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_ip: u32, rate: f64, burst: u32, exempt: &[&str]) -> LimitSettings {
        LimitSettings::compile(&LimitOptions {
            per_ip,
            rate,
            burst,
            exempt: exempt.iter().map(|s| s.to_string()).collect(),
        })
        .expect("valid")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn concurrency_is_summed_over_workers_and_released() {
        let region = LimitsRegion::new().expect("mmap");
        let limits = settings(3, 0.0, 0, &[]);
        let client = ip("192.0.2.1");
        let mut keys = Vec::new();
        for slot in [0, 1, 0] {
            match region.admit(&limits, slot, 2, client, 0) {
                Admission::Counted(key) => keys.push((slot, key)),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            region.admit(&limits, 1, 2, client, 0),
            Admission::Refused(Limited::Concurrency)
        );
        assert!(matches!(
            region.admit(&limits, 1, 2, ip("192.0.2.2"), 0),
            Admission::Counted(_)
        ));
        let (slot, key) = keys.pop().expect("key");
        region.release(slot, key);
        assert!(matches!(
            region.admit(&limits, 1, 2, client, 0),
            Admission::Counted(_)
        ));
        region.clear_slot(1);
        assert!(matches!(
            region.admit(&limits, 0, 2, client, 0),
            Admission::Counted(_)
        ));
    }

    #[test]
    fn rate_allows_a_burst_then_the_rate_then_calls_a_flood() {
        let region = LimitsRegion::new().expect("mmap");
        let limits = settings(0, 2.0, 3, &["10.0.0.0/8"]);
        let client = ip("2001:db8::1");
        let start = 1_000_000_000;
        for _ in 0..3 {
            assert_eq!(region.admit(&limits, 0, 1, client, start), Admission::Free);
        }
        assert_eq!(
            region.admit(&limits, 0, 1, ip("2001:db8::2"), start),
            Admission::Refused(Limited::Rate { retry_after: 1 }),
            "the same /64"
        );
        assert_eq!(
            region.admit(&limits, 0, 1, client, start + 500_000),
            Admission::Free
        );
        assert_eq!(
            region.admit(&limits, 0, 1, ip("10.1.1.1"), start),
            Admission::Free
        );
        let mut flooded = false;
        for _ in 0..30 {
            flooded |= region.admit(&limits, 0, 1, client, start + 600_000) == Admission::Flood;
        }
        assert!(flooded);
    }
}

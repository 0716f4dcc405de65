//! The master's watchdog: a child whose loop has not turned for
//! `stall_timeout` is stuck (a bug, a C library call that never returns, a
//! process stopped with SIGSTOP) and still holds its share of the listening
//! port, so the kernel keeps handing it connections that then hang. The
//! master kills it and starts another.
//!
//! A busy child is never mistaken for a stuck one: one turn of a worker's
//! loop does only non-blocking I/O for at most one batch of events, at most
//! one route function per request (stopped at `lua_instructions` or half of
//! `stall_timeout`, whichever comes first) and at most one index parse on a
//! cache miss (milliseconds for a film of hours); an idle loop wakes every
//! second. The monitor stamps its beat while it waits on a slow admin
//! client, too.

use std::time::Duration;

use crate::stats::heartbeat::Heartbeat;

/// What the watchdog found out about a stuck child.
#[derive(Debug, Clone, PartialEq)]
pub struct Stall {
    /// How long its loop has not turned.
    pub stuck_for: Duration,
    /// What it noted it was doing, if anything.
    pub doing: Option<String>,
}

impl Stall {
    /// "running hosts['x'].routes[2] (call) for /a.mp4", or what a loop
    /// without a note was doing.
    pub fn describe(&self) -> String {
        self.doing
            .clone()
            .unwrap_or_else(|| "in its event loop, running no route function".to_string())
    }
}

/// Whether the child behind `heartbeat`, started at `started_micros`, has
/// stalled at `now_micros` (all CLOCK_MONOTONIC microseconds).
pub fn check(
    heartbeat: &Heartbeat,
    started_micros: u64,
    now_micros: u64,
    timeout: Duration,
) -> Option<Stall> {
    // Before its first beat, a child is measured from its start.
    let since = heartbeat
        .last_beat()
        .unwrap_or(started_micros)
        .max(started_micros);
    let stuck_for = Duration::from_micros(now_micros.saturating_sub(since));
    (stuck_for > timeout).then(|| Stall {
        stuck_for,
        doing: heartbeat.read_note(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::StatsRegion;

    const SECOND: u64 = 1_000_000;

    #[test]
    fn a_child_is_stuck_only_past_the_timeout_since_its_last_beat() {
        let region = StatsRegion::new().expect("mmap");
        let heartbeat = &region.slot(0).heartbeat;
        let timeout = Duration::from_secs(10);
        // Not yet beaten: measured from its start.
        assert_eq!(check(heartbeat, 100 * SECOND, 109 * SECOND, timeout), None);
        assert!(check(heartbeat, 100 * SECOND, 111 * SECOND, timeout).is_some());
        heartbeat.beat(110 * SECOND);
        assert_eq!(check(heartbeat, 100 * SECOND, 119 * SECOND, timeout), None);
        heartbeat.note("running hosts[''].routes[1] (call) for /loop");
        let stall = check(heartbeat, 100 * SECOND, 121 * SECOND, timeout).expect("stuck");
        assert_eq!(stall.stuck_for, Duration::from_secs(11));
        assert_eq!(
            stall.describe(),
            "running hosts[''].routes[1] (call) for /loop"
        );
        heartbeat.clear_note();
        let stall = check(heartbeat, 100 * SECOND, 121 * SECOND, timeout).expect("stuck");
        assert!(stall.describe().contains("event loop"));
        // A beat left by a previous child of the slot does not count.
        assert_eq!(check(heartbeat, 200 * SECOND, 205 * SECOND, timeout), None);
    }
}

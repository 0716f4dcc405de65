//! The throttle schedule as pure functions: given where a body stands and how
//! long it has been streaming, how many of its bytes may have been sent, and
//! when that allowance next grows.
//!
//! The media rule (after the original, with its defects fixed): a body that
//! starts at media time `s` may hold, `elapsed` after its generated prefix was
//! handed to the socket, at most `body_offset_at(s + elapsed + lead)` bytes,
//! clamped to the body's end. The constant rate is nginx's `limit_rate` with
//! `limit_rate_after`. Both grow on the stream's `period` boundaries, so it
//! sleeps a whole period between slices. Each stream's boundaries are shifted
//! by its own `phase` (a fraction of the period), so that streams started
//! together (a burst of arrivals) do not all wake in the same timer tick.

use std::time::Duration;

use crate::media::Timeline;

/// How far a body may go now, and when it may go further.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Allowance {
    /// One past the last body byte that may be sent by now (never past the body's end).
    pub until: u64,
    /// Time since the stream started when the allowance next grows; None once
    /// it covers the whole body.
    pub next: Option<Duration>,
}

/// The allowance of a body paced on its media timeline.
///
/// `first` and `end` are the body offsets the response covers (a Range
/// request covers part of the body), `start_seconds` the media time `first`
/// reaches (from [`Timeline::seconds_at`]), `lead` the `throttle` setting.
pub fn media_allowance(
    timeline: &Timeline,
    start_seconds: f64,
    lead: f64,
    (period, phase): (f64, f64),
    elapsed: Duration,
    end: u64,
) -> Allowance {
    let play_head = start_seconds + elapsed.as_secs_f64() + lead;
    let until = timeline.body_offset_at(play_head).min(end);
    let next = (until < end).then(|| next_boundary(elapsed, period, phase));
    Allowance { until, next }
}

/// The allowance of a body paced by its player's reports (see `hints`):
/// `lead` seconds ahead of where the player is, which is the reported
/// `position` (moved on by the report's `age` while playing), but never past
/// `received`, the media time the player had received when the report was
/// first applied: a player cannot be playing what it does not have, so a
/// lying report gains at most one lead. While paused the allowance does not
/// grow at all.
pub fn hinted_allowance(
    timeline: &Timeline,
    report: &super::hints::Report,
    (received, lead): (f64, f64),
    (period, phase): (f64, f64),
    elapsed: Duration,
    end: u64,
) -> Allowance {
    let playing_at = if report.paused {
        report.position
    } else {
        report.position + report.age
    };
    let play_head = playing_at.min(received);
    let until = timeline.body_offset_at(play_head + lead).min(end);
    let next = (until < end).then(|| next_boundary(elapsed, period, phase));
    Allowance { until, next }
}

/// The allowance of a body sent at `bytes_per_second` after its first
/// `after` bytes; `first` is the body offset the response starts at.
pub fn rate_allowance(
    bytes_per_second: u64,
    after: u64,
    (period, phase): (f64, f64),
    elapsed: Duration,
    first: u64,
    end: u64,
) -> Allowance {
    let earned = (bytes_per_second as f64 * elapsed.as_secs_f64()) as u64;
    let until = first.saturating_add(after).saturating_add(earned).min(end);
    let next = (until < end).then(|| next_boundary(elapsed, period, phase));
    Allowance { until, next }
}

/// The boundary a stream wakes at when a slice is worth sending only once
/// `enough(boundary)` holds: the first such boundary from `next` on, but no
/// later than the last boundary within `bound` of `next` (`next` itself
/// when none falls within it). Sending fewer, larger slices saves a wake-up
/// and a system call each time, while the bound keeps the player's lead.
pub fn stretched_wake(
    next: Duration,
    bound: Duration,
    (period, phase): (f64, f64),
    enough: impl Fn(Duration) -> bool,
) -> Duration {
    let last = next + bound;
    let mut wake = next;
    loop {
        if enough(wake) {
            return wake;
        }
        let later = next_boundary(wake, period, phase);
        if later > last {
            return wake;
        }
        wake = later;
    }
}

/// The first boundary `phase + k × period` strictly after `elapsed`
/// (`phase` in seconds, below `period`).
pub fn next_boundary(elapsed: Duration, period: f64, phase: f64) -> Duration {
    let period = period.max(crate::options::MIN_PERIOD_SECS);
    let phase = phase.clamp(0.0, period);
    let periods = ((elapsed.as_secs_f64() - phase) / period).floor() + 1.0;
    let next = Duration::from_secs_f64(phase + periods.max(0.0) * period);
    // 0.95 / 0.05 is 18.999…: rounding can land on `elapsed` itself, which
    // would wake the stream again at once for nothing.
    if next <= elapsed {
        next + Duration::from_secs_f64(period)
    } else {
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::timeline::{TimePoint, monotonic};

    /// Variable bitrate: 1 000 bytes a second for 10 s, then 10 000 a second for 10 s.
    fn vbr() -> Timeline {
        let mut points = Vec::new();
        let mut offset = 0;
        for second in 0..=20u64 {
            points.push(TimePoint {
                seconds: second as f64,
                offset,
            });
            offset += if second < 10 { 1_000 } else { 10_000 };
        }
        let end = points.last().map_or(0, |p| p.offset);
        Timeline::new(monotonic(points), 0.0, 20.0, 0, 0, end)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn hints_follow_the_player_and_hold_still_while_paused() {
        use crate::stream::hints::Report;
        let timeline = vbr();
        let end = timeline.body_offset_at(99.0);
        let at = |position: f64, paused: bool, age: f64, sent: u64| {
            let report = Report {
                position,
                paused,
                age,
                stamp: 1,
            };
            let received = timeline.seconds_at(sent);
            hinted_allowance(&timeline, &report, (received, 3.0), (1.0, 0.0), ms(0), end).until
        };
        assert_eq!(at(2.0, false, 0.0, 6_000), 5_000, "2 s + 3 s of lead");
        assert_eq!(at(2.0, false, 1.0, 6_000), 6_000, "moved on by its age");
        assert_eq!(at(2.0, true, 5.0, 6_000), 5_000, "paused: no growth");
        assert_eq!(
            at(500.0, false, 0.0, 4_000),
            7_000,
            "a lie gains one lead past what was sent"
        );
        assert_eq!(at(500.0, false, 0.0, end), end);
    }

    #[test]
    fn the_next_boundary_is_always_ahead() {
        // Found by fuzz/fuzz_targets/schedule.rs.
        assert_eq!(next_boundary(ms(950), 0.05, 0.0), ms(1000));
        assert_eq!(next_boundary(ms(0), 1.0, 0.0), ms(1000));
        assert_eq!(next_boundary(ms(100), 1.0, 0.25), ms(250));
    }

    #[test]
    fn the_first_burst_carries_the_lead() {
        let timeline = vbr();
        let end = timeline.body_offset_at(99.0);
        let a = media_allowance(&timeline, 0.0, 3.0, (1.0, 0.0), ms(0), end);
        assert_eq!(a.until, 3_000);
        assert_eq!(a.next, Some(ms(1000)));
    }

    #[test]
    fn slices_follow_the_bitrate_not_the_mean() {
        let timeline = vbr();
        let end = timeline.body_offset_at(99.0);
        let slice = |from: u64, to: u64| {
            media_allowance(&timeline, 0.0, 3.0, (1.0, 0.0), ms(to), end).until
                - media_allowance(&timeline, 0.0, 3.0, (1.0, 0.0), ms(from), end).until
        };
        assert_eq!(slice(2_000, 3_000), 1_000, "still scene");
        assert_eq!(slice(9_000, 10_000), 10_000, "busy scene");
    }

    #[test]
    fn the_allowance_is_clamped_to_the_body_end() {
        let timeline = vbr();
        // A Range request ending inside the file: never past its last byte.
        let a = media_allowance(&timeline, 5.0, 20.0, (1.0, 0.0), ms(0), 50_000);
        assert_eq!(a.until, 50_000);
        assert_eq!(a.next, None);
        let whole = timeline.body_offset_at(99.0);
        let b = media_allowance(&timeline, 0.0, 3.0, (1.0, 0.0), ms(30_000), whole);
        assert_eq!((b.until, b.next), (whole, None));
    }

    #[test]
    fn a_range_starts_at_the_media_time_of_its_first_byte() {
        let timeline = vbr();
        let first = 12_000; // inside the busy scene: 10 s + 2 000 / 10 000 s
        let start = timeline.seconds_at(first);
        assert!((start - 10.2).abs() < 1e-9);
        let end = timeline.body_offset_at(99.0);
        let a = media_allowance(&timeline, start, 1.0, (0.25, 0.0), ms(0), end);
        assert_eq!(a.until, first + 10_000);
        assert_eq!(a.next, Some(ms(250)));
    }

    #[test]
    fn wake_ups_fall_on_period_boundaries() {
        assert_eq!(next_boundary(ms(0), 0.25, 0.0), ms(250));
        assert_eq!(next_boundary(ms(250), 0.25, 0.0), ms(500));
        assert_eq!(next_boundary(ms(1_260), 0.25, 0.0), ms(1_500));
        assert_eq!(
            next_boundary(ms(10), 0.0, 0.0),
            ms(50),
            "at least the minimum period"
        );
    }

    #[test]
    fn a_phase_shifts_every_boundary_of_a_stream() {
        assert_eq!(next_boundary(ms(0), 1.0, 0.3), ms(300));
        assert_eq!(next_boundary(ms(300), 1.0, 0.3), ms(1_300));
        assert_eq!(next_boundary(ms(2_999), 1.0, 0.3), ms(3_300));
    }

    #[test]
    fn a_small_slice_waits_for_more_boundaries_within_the_bound() {
        let timeline = vbr();
        let end = timeline.body_offset_at(99.0);
        let boundaries = (1.0, 0.0);
        let wake = |sent: u64, next: u64, wanted: u64, bound: u64| {
            stretched_wake(ms(next), ms(bound), boundaries, |elapsed| {
                media_allowance(&timeline, 0.0, 3.0, boundaries, elapsed, end).until
                    >= (sent + wanted).min(end)
            })
        };
        // The still scene grows 1 000 bytes a second: 3 000 wanted is 3 s on.
        assert_eq!(wake(3_000, 1_000, 3_000, 5_000), ms(3_000));
        // Bounded: at most 2 s past the first boundary.
        assert_eq!(wake(3_000, 1_000, 50_000, 2_000), ms(3_000));
        // Nothing wanted, or a busy scene: the next boundary itself.
        assert_eq!(wake(3_000, 1_000, 0, 5_000), ms(1_000));
        assert_eq!(wake(12_000, 8_000, 5_000, 5_000), ms(8_000));
        // A bound shorter than a period keeps the next boundary.
        assert_eq!(wake(3_000, 1_000, 50_000, 500), ms(1_000));
        // The body's end is enough, however small the last slice.
        assert_eq!(wake(end - 10, 19_000, 50_000, 5_000), ms(19_000));
    }

    #[test]
    fn a_constant_rate_starts_after_its_free_bytes() {
        let a = rate_allowance(200_000, 100_000, (1.0, 0.0), ms(0), 0, 2_000_000);
        assert_eq!((a.until, a.next), (100_000, Some(ms(1000))));
        let b = rate_allowance(200_000, 100_000, (1.0, 0.0), ms(2_000), 0, 2_000_000);
        assert_eq!(b.until, 500_000);
        let c = rate_allowance(200_000, 100_000, (1.0, 0.0), ms(9_500), 0, 2_000_000);
        assert_eq!((c.until, c.next), (2_000_000, None));
        // A Range request counts from its first byte.
        let d = rate_allowance(1_000, 0, (1.0, 0.0), ms(1_000), 5_000, 9_000);
        assert_eq!(d.until, 6_000);
    }
}

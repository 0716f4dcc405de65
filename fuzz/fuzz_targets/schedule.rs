//! The throttle schedule on any timeline and settings: allowances never
//! shrink as time passes, never pass the body's end, and the next wake-up
//! is always ahead; a stretched wake-up stays within its bound.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use loomiere::media::Timeline;
use loomiere::media::timeline::{TimePoint, monotonic};
use loomiere::stream::hints::Report;
use loomiere::stream::schedule::{
    hinted_allowance, media_allowance, next_boundary, rate_allowance, stretched_wake,
};

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let byte = |i: usize| f64::from(data[i]);
    let lead = byte(0) / 4.0;
    let period = 0.05 + byte(1) / 16.0;
    let phase = period * byte(2) / 256.0;
    let mut points = Vec::new();
    let (mut seconds, mut offset) = (0.0, 0u64);
    for pair in data[16..].chunks(2) {
        seconds += f64::from(pair[0]) / 8.0;
        offset += u64::from(*pair.get(1).unwrap_or(&0)) * 997;
        points.push(TimePoint { seconds, offset });
    }
    let end_offset = offset + u64::from(data[3]);
    let timeline = Timeline::new(monotonic(points), 0.0, seconds, u64::from(data[4]), 0, end_offset);
    let end = timeline.body_offset_at(f64::INFINITY).max(1);
    let start = timeline.seconds_at(u64::from(data[5]) * 13);
    let mut last = (0, 0, 0);
    for step in 0..64u64 {
        let elapsed = Duration::from_millis(step * (1 + u64::from(data[6])));
        let media = media_allowance(&timeline, start, lead, (period, phase), elapsed, end);
        let rate = rate_allowance(u64::from(data[7]) * 1000, u64::from(data[8]), (period, phase), elapsed, 0, end);
        let report = Report { position: byte(9), paused: data[10] & 1 == 1, age: byte(11) / 32.0, stamp: 1 };
        let received = timeline.seconds_at(media.until);
        let hinted = hinted_allowance(&timeline, &report, (received, lead), (period, phase), elapsed, end);
        for allowance in [media, rate, hinted] {
            assert!(allowance.until <= end);
            if let Some(next) = allowance.next {
                assert!(next > elapsed, "{next:?} not after {elapsed:?}");
            }
        }
        assert!(media.until >= last.0 && rate.until >= last.1, "allowances shrank");
        if !report.paused && report.age == 0.0 {
            assert!(hinted.until >= last.2.min(hinted.until));
        }
        last = (media.until, rate.until, hinted.until);
        if let Some(next) = media.next {
            let bound = Duration::from_millis(u64::from(data[12]) * 40);
            let wanted = media.until.saturating_add(u64::from(data[13]) * 500).min(end);
            let enough = |at: Duration| {
                media_allowance(&timeline, start, lead, (period, phase), at, end).until >= wanted
            };
            let wake = stretched_wake(next, bound, (period, phase), enough);
            assert!(wake >= next && wake <= next + bound, "{wake:?} outside {next:?} + {bound:?}");
            // It stopped at the first boundary that was enough, or at the bound.
            if !enough(wake) {
                assert!(next_boundary(wake, period, phase) > next + bound);
            }
        }
    }
});

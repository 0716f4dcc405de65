//! The timeline of a prepared response: a monotonic map between media time
//! and byte offset in the response body, built from the real keyframe or
//! sample positions so that it follows variable bitrate.

use std::rc::Rc;

/// A point of a file's timeline: media time (seconds) and file offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimePoint {
    pub seconds: f64,
    pub offset: u64,
}

/// Builds a file-level point list, forcing both coordinates to be non-decreasing
/// (interleaving can put a later sample at a lower offset).
pub fn monotonic(points: impl IntoIterator<Item = TimePoint>) -> Rc<[TimePoint]> {
    let mut result: Vec<TimePoint> = Vec::new();
    for point in points {
        if !point.seconds.is_finite() {
            continue;
        }
        match result.last() {
            Some(last) if point.seconds < last.seconds => continue,
            Some(last) => result.push(TimePoint {
                seconds: point.seconds,
                offset: point.offset.max(last.offset),
            }),
            None => result.push(point),
        }
    }
    result.into()
}

/// The finest resolution of [`from_sample_ends`]: a player is never more
/// than one step of media short of what a timeline promises.
pub const TIMELINE_STEP_SECS: f64 = 0.1;

/// Most steps a timeline spans: 0.1 s steps up to an hour, then longer ones,
/// so that a ten-hour film's timeline (1 s steps) takes no more memory than
/// an hour's, and never more than a fraction of its sample tables.
pub const TIMELINE_STEPS_MAX: f64 = 36_000.0;

/// The step of the timeline of a film of `duration` seconds.
pub fn timeline_step(duration: f64) -> f64 {
    let step = duration / TIMELINE_STEPS_MAX;
    if step.is_finite() && step > TIMELINE_STEP_SECS {
        step
    } else {
        TIMELINE_STEP_SECS
    }
}

/// The honest timeline of a file from the end offset of each of its samples
/// (or tags), given as `(step index, end offset)` with step index =
/// `floor(decode time / step)`: at time `k × step`, the offset
/// that holds every sample decoded before `(k + 1) × step`. Sending that many
/// bytes lets a player decode everything up to the time, however the tracks
/// are interleaved and whatever the bitrate; it errs by at most one step on
/// the generous side. `duration` (seconds) ends the timeline.
pub fn from_sample_ends(mut ends: Vec<(u64, u64)>, duration: f64, step: f64) -> Rc<[TimePoint]> {
    // Each track (or an FLV's tags) gives its entries in time order: the
    // stable sort finds those runs and merges them in linear time, where an
    // unstable sort would start over (a tenth of indexing a one-hour film).
    ends.sort();
    let mut points = Vec::new();
    let mut reached = 0u64;
    let mut at = 0;
    while at < ends.len() {
        let step_index = ends[at].0;
        while at < ends.len() && ends[at].0 == step_index {
            reached = reached.max(ends[at].1);
            at += 1;
        }
        points.push(TimePoint {
            seconds: step_index as f64 * step,
            offset: reached,
        });
    }
    if let Some(last) = points.last().copied() {
        // Holding everything means the player can play to the end.
        points.push(TimePoint {
            seconds: duration.max(last.seconds + step),
            offset: last.offset,
        });
    }
    monotonic(points)
}

/// Gathers the `(step index, end offset)` entries of [`from_sample_ends`]
/// into one slot per step of time when the steps are few against the
/// entries (the case of every real file: 8 bytes per step, 288 KB for an
/// hour or longer), so that a long film's timeline needs no list of entries and no
/// sort; a file whose duration is out of proportion to its samples (a
/// hostile one) keeps the list, so memory never exceeds what the list takes.
pub struct StepReach {
    /// Furthest end offset + 1 of each step; 0 = no sample in that step.
    slots: Vec<u64>,
    /// Entries past the slots (or all of them, without slots).
    rest: Vec<(u64, u64)>,
    duration: f64,
    /// Seconds per step ([`timeline_step`] of the duration).
    step: f64,
}

impl StepReach {
    /// `duration` in seconds ends the timeline; `entries` bounds how many
    /// distinct (track, step) entries will be added.
    pub fn new(duration: f64, entries: u64) -> Self {
        let step = timeline_step(duration);
        let steps = duration / step + 2.0;
        // A slot takes 8 bytes, a listed entry 16.
        let dense = steps.is_finite() && steps >= 0.0 && steps <= 2.0 * entries as f64 + 1024.0;
        let slots = if dense {
            vec![0; steps as usize]
        } else {
            Vec::new()
        };
        StepReach {
            slots,
            rest: Vec::new(),
            duration,
            step,
        }
    }

    /// Seconds per step: entries are added as `floor(decode time / step)`.
    pub fn step(&self) -> f64 {
        self.step
    }

    pub fn add(&mut self, step: u64, end: u64) {
        match usize::try_from(step)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
        {
            Some(slot) => *slot = (*slot).max(end.saturating_add(1)),
            None => self.rest.push((step, end)),
        }
    }

    /// The timeline [`from_sample_ends`] builds from the same entries.
    pub fn finish(self) -> Rc<[TimePoint]> {
        let filled = self.slots.iter().enumerate().filter(|&(_, &slot)| slot > 0);
        if !self.rest.is_empty() {
            let mut ends = self.rest;
            ends.extend(filled.map(|(step, &slot)| (step as u64, slot - 1)));
            return from_sample_ends(ends, self.duration, self.step);
        }
        // Built straight into the shared slice (an exact-length iterator:
        // one allocation, no Vec to copy from, for a list of 36 000 points an
        // hour), once a first pass has counted the steps and found the last.
        let (mut count, mut last_step, mut last_offset) = (0usize, 0usize, 0u64);
        for (step, &slot) in filled.clone() {
            (count, last_step, last_offset) = (count + 1, step, last_offset.max(slot - 1));
        }
        if count == 0 {
            return Rc::from([]);
        }
        let last_seconds = last_step as f64 * self.step;
        let end = TimePoint {
            seconds: self.duration.max(last_seconds + self.step),
            offset: last_offset,
        };
        let mut reached = 0u64;
        let mut steps = filled;
        // Times increase by whole steps and offsets never decrease: already
        // what `monotonic` would make of them.
        (0..count)
            .map(|_| {
                let (step, &slot) = steps.next().unwrap_or((last_step, &0));
                reached = reached.max(slot.saturating_sub(1));
                TimePoint {
                    seconds: step as f64 * self.step,
                    offset: reached,
                }
            })
            .chain(std::iter::once(end))
            .collect()
    }
}

/// The timeline of one response body: `prefix_len` generated bytes (headers),
/// then the file's bytes `[file_start, file_end)`.
#[derive(Clone, Debug)]
pub struct Timeline {
    points: Rc<[TimePoint]>,
    /// Media time at the first byte of the body.
    start_seconds: f64,
    /// Media time at the end of the body.
    end_seconds: f64,
    prefix_len: u64,
    file_start: u64,
    file_end: u64,
}

impl Timeline {
    pub fn new(
        points: Rc<[TimePoint]>,
        start_seconds: f64,
        end_seconds: f64,
        prefix_len: u64,
        file_start: u64,
        file_end: u64,
    ) -> Timeline {
        Timeline {
            points,
            start_seconds,
            end_seconds,
            prefix_len,
            file_start,
            file_end,
        }
    }

    fn body_len(&self) -> u64 {
        self.prefix_len + (self.file_end - self.file_start)
    }

    /// Seconds of media the body covers.
    pub fn duration(&self) -> f64 {
        (self.end_seconds - self.start_seconds).max(0.0)
    }

    /// How many body bytes a player needs to play `seconds` from the start of
    /// the body (the header always counts in full).
    pub fn body_offset_at(&self, seconds: f64) -> u64 {
        if seconds >= self.duration() {
            return self.body_len();
        }
        let media = self.start_seconds + seconds.max(0.0);
        let file_offset =
            interpolate(&self.points, media, |p| p.seconds, |p| p.offset as f64).ceil() as u64;
        self.prefix_len + file_offset.clamp(self.file_start, self.file_end) - self.file_start
    }

    /// The play time (seconds from the start of the body) that `body_offset`
    /// bytes reach.
    pub fn seconds_at(&self, body_offset: u64) -> f64 {
        if body_offset >= self.body_len() {
            return self.duration();
        }
        if body_offset <= self.prefix_len {
            return 0.0;
        }
        let file_offset = (self.file_start + body_offset - self.prefix_len) as f64;
        let media = interpolate(
            &self.points,
            file_offset,
            |p| p.offset as f64,
            |p| p.seconds,
        );
        (media - self.start_seconds).clamp(0.0, self.duration())
    }
}

/// Linear interpolation over points sorted by `x`; clamps outside the range.
fn interpolate(
    points: &[TimePoint],
    at: f64,
    x: impl Fn(&TimePoint) -> f64,
    y: impl Fn(&TimePoint) -> f64,
) -> f64 {
    let Some(first) = points.first() else {
        return 0.0;
    };
    let after = points.partition_point(|p| x(p) <= at);
    if after == 0 {
        return y(first);
    }
    let a = &points[after - 1];
    let Some(b) = points.get(after) else {
        return y(a);
    };
    let span = x(b) - x(a);
    if span <= 0.0 {
        return y(a);
    }
    y(a) + (at - x(a)) / span * (y(b) - y(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points() -> Rc<[TimePoint]> {
        // Variable bitrate: 100 bytes in the first second, 1000 in the second.
        monotonic([
            TimePoint {
                seconds: 0.0,
                offset: 1000,
            },
            TimePoint {
                seconds: 1.0,
                offset: 1100,
            },
            TimePoint {
                seconds: 2.0,
                offset: 2100,
            },
            TimePoint {
                seconds: 3.0,
                offset: 2200,
            },
        ])
    }

    #[test]
    fn maps_time_to_body_bytes_and_back() {
        let timeline = Timeline::new(points(), 1.0, 3.0, 50, 1100, 2200);
        assert_eq!(timeline.body_offset_at(0.0), 50);
        assert_eq!(timeline.body_offset_at(0.5), 50 + 500);
        assert_eq!(timeline.body_offset_at(1.0), 50 + 1000);
        assert_eq!(timeline.body_offset_at(9.0), 50 + 1100);
        assert!((timeline.seconds_at(50 + 500) - 0.5).abs() < 1e-9);
        assert_eq!(timeline.seconds_at(10), 0.0);
        assert_eq!(timeline.seconds_at(5000), 2.0);
    }

    #[test]
    fn sample_ends_give_what_a_player_needs_by_each_step() {
        // Video and audio interleaved: audio of 0.05 s stored after video of 0.1 s.
        let ends = vec![(0, 500), (1, 900), (0, 700), (3, 2000), (1, 1000)];
        let points = from_sample_ends(ends, 0.4, TIMELINE_STEP_SECS);
        let offsets: Vec<_> = points.iter().map(|p| (p.seconds, p.offset)).collect();
        assert_eq!(
            offsets,
            [
                (0.0, 700),
                (TIMELINE_STEP_SECS, 1000),
                (3.0 * TIMELINE_STEP_SECS, 2000),
                (0.4, 2000)
            ]
        );
        let timeline = Timeline::new(points, 0.0, 0.4, 0, 0, 2000);
        // Never less than what the samples decoded by a time need.
        assert!(timeline.body_offset_at(0.0) >= 700);
        assert!(timeline.body_offset_at(0.1) >= 1000);
        assert!(timeline.body_offset_at(0.31) >= 2000);
    }

    #[test]
    fn step_slots_and_the_entry_list_give_the_same_timeline() {
        let ends = vec![
            (0, 500),
            (1, 900),
            (0, 700),
            (3, 2000),
            (1, 1000),
            (3, 1500),
        ];
        // Slots for every step, for some (the rest listed), and none.
        for (duration, entries) in [(0.4, 6), (0.15, 0), (1e12, 6)] {
            let mut reach = StepReach::new(duration, entries);
            let expected = from_sample_ends(ends.clone(), 0.4, reach.step());
            for &(step, end) in &ends {
                reach.add(step, end);
            }
            let mut got = reach.finish().to_vec();
            let last = got.pop().map(|p| p.offset);
            assert_eq!(got, expected[..expected.len() - 1], "duration {duration}");
            assert_eq!(last, expected.last().map(|p| p.offset));
        }
        assert!(
            StepReach::new(1e12, 6).slots.is_empty(),
            "a hostile duration gets no slots"
        );
    }

    #[test]
    fn a_long_film_gets_longer_steps_and_no_more_points_than_an_hour() {
        assert_eq!(timeline_step(600.0), TIMELINE_STEP_SECS);
        assert_eq!(timeline_step(3600.0), TIMELINE_STEP_SECS);
        assert!((timeline_step(36_000.0) - 1.0).abs() < 1e-12);
        assert_eq!(timeline_step(f64::NAN), TIMELINE_STEP_SECS);
        // Ten hours of 25 fps video, one entry per frame.
        let duration = 36_000.0;
        let mut reach = StepReach::new(duration, 900_000);
        let step = reach.step();
        for frame in 0..900_000u64 {
            let seconds = frame as f64 / 25.0;
            reach.add((seconds / step) as u64, frame * 100 + 99);
        }
        let points = reach.finish();
        assert!(points.len() <= 36_001, "{} points", points.len());
        // Still honest: by each point's time, every frame decoded before
        // the next step is held.
        for point in points.iter().take(points.len() - 1) {
            let frames_by_next_step = ((point.seconds + step) * 25.0).ceil() as u64;
            assert!(point.offset + 1 >= (frames_by_next_step.min(900_000)) * 100);
        }
    }

    #[test]
    fn monotonic_drops_backward_points() {
        let p = monotonic([
            TimePoint {
                seconds: 0.0,
                offset: 10,
            },
            TimePoint {
                seconds: 1.0,
                offset: 5,
            },
            TimePoint {
                seconds: 0.5,
                offset: 50,
            },
            TimePoint {
                seconds: f64::NAN,
                offset: 1,
            },
        ]);
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].offset, 10);
    }
}

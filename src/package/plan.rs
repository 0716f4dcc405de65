//! Where the segments of a packaged MP4 begin and end: sample ranges of each
//! track, cut on the leading track's keyframes.
//!
//! The leading track is the video (the index's reference track), or the main
//! audio of an audio-only file. Segment n begins at the first sync sample at
//! or after n × `segment_seconds` from the presentation's start; the other
//! tracks are cut at the same instants (their first sample at or after it),
//! so every segment holds the same stretch of time in each track.

use std::ops::Range;

use crate::media::mp4::Mp4Index;
use crate::media::mp4::tables::Track;
use crate::media::{MediaError, broken};

/// The part of the file a presentation covers (`start`/`stop` clipping), in
/// seconds; `stop` 0 means to the end.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Clip {
    pub start: f64,
    pub stop: f64,
}

/// Which tracks of the file play which part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roles {
    /// The tracks of the main segments, in their traf order: the video and
    /// the first audio track, or the audio alone.
    pub main: Vec<usize>,
    /// Further audio tracks, each its own rendition (`audio-<n>`, n from 1).
    pub extra_audio: Vec<usize>,
}

impl Roles {
    /// The roles of `index`'s tracks; an error when nothing can be packaged.
    pub fn of(index: &Mp4Index) -> Result<Roles, MediaError> {
        // Alternative audio tracks are usually disabled (only the default
        // one is enabled): they are renditions all the same.
        let video = index
            .tracks
            .iter()
            .position(|t| t.enabled && t.sample_count > 0 && t.is_video());
        let mut audio: Vec<usize> = (0..index.tracks.len())
            .filter(|&i| index.tracks[i].sample_count > 0 && &index.tracks[i].handler == b"soun")
            .collect();
        // The enabled one first: it plays with the video.
        audio.sort_by_key(|&i| !index.tracks[i].enabled);
        let mut main: Vec<usize> = video.into_iter().collect();
        main.extend(audio.first());
        if main.is_empty() {
            return Err(MediaError::Unsupported(
                "the file has no video or audio track to package".into(),
            ));
        }
        Ok(Roles {
            main,
            extra_audio: audio.into_iter().skip(1).collect(),
        })
    }
}

/// The segments of one presentation.
#[derive(Debug)]
pub struct Plan {
    pub roles: Roles,
    /// Per main segment, the sample range of each main track (as in `roles.main`).
    pub main: Vec<Vec<Range<u64>>>,
    /// Per extra audio track, the sample range of each of its segments.
    pub extra: Vec<Vec<Range<u64>>>,
    /// Seconds each main segment lasts on the leading track.
    pub durations: Vec<f64>,
    /// Media bytes of each main segment (all its tracks).
    pub main_bytes: Vec<u64>,
    /// Per extra audio track, seconds and media bytes of each segment.
    pub extra_durations: Vec<Vec<f64>>,
    pub extra_bytes: Vec<Vec<u64>>,
}

impl Plan {
    /// Cuts the presentation `clip` of `index` into segments of about
    /// `segment_seconds`.
    pub fn build(index: &Mp4Index, clip: Clip, segment_seconds: f64) -> Result<Plan, MediaError> {
        if let Some(reason) = &index.unsupported {
            return Err(MediaError::Unsupported(reason.clone()));
        }
        let roles = Roles::of(index)?;
        let lead = &index.tracks[roles.main[0]];
        let boundaries = lead_boundaries(lead, clip, segment_seconds)?;
        let times: Vec<f64> = boundaries.iter().map(|&s| seconds(lead, s)).collect();
        let clipped_end = clip.stop > 0.0;
        let following = |track: &Track| follow(track, &times, clipped_end);
        let mut per_track: Vec<Vec<Range<u64>>> = Vec::new();
        for (position, &track) in roles.main.iter().enumerate() {
            if position == 0 {
                per_track.push(boundaries.windows(2).map(|w| w[0]..w[1]).collect());
            } else {
                per_track.push(following(&index.tracks[track]));
            }
        }
        let segments = boundaries.len() - 1;
        let main: Vec<Vec<Range<u64>>> = (0..segments)
            .map(|n| per_track.iter().map(|ranges| ranges[n].clone()).collect())
            .collect();
        let mut durations: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        // Unclipped, the last segment holds every track to its end: it lasts
        // until the longest one ends (a 10 s video with 20 s of audio).
        if let (false, Some(last), Some(&start)) =
            (clipped_end, durations.last_mut(), times.get(segments - 1))
        {
            let end = roles
                .main
                .iter()
                .zip(&per_track)
                .filter_map(|(&t, ranges)| ranges.last().map(|r| seconds(&index.tracks[t], r.end)))
                .fold(start + *last, f64::max);
            *last = end - start;
        }
        let main_bytes = main
            .iter()
            .map(|ranges| {
                ranges
                    .iter()
                    .zip(&roles.main)
                    .map(|(r, &t)| bytes_of(&index.tracks[t], r))
                    .sum()
            })
            .collect();
        let extra: Vec<Vec<Range<u64>>> = roles
            .extra_audio
            .iter()
            .map(|&t| following(&index.tracks[t]))
            .collect();
        let extra_durations = extra
            .iter()
            .zip(&roles.extra_audio)
            .map(|(ranges, &t)| {
                let track = &index.tracks[t];
                ranges
                    .iter()
                    .map(|r| seconds(track, r.end) - seconds(track, r.start))
                    .collect()
            })
            .collect();
        let extra_bytes = extra
            .iter()
            .zip(&roles.extra_audio)
            .map(|(ranges, &t)| {
                ranges
                    .iter()
                    .map(|r| bytes_of(&index.tracks[t], r))
                    .collect()
            })
            .collect();
        Ok(Plan {
            roles,
            main,
            extra,
            durations,
            main_bytes,
            extra_durations,
            extra_bytes,
        })
    }

    pub fn segment_count(&self) -> usize {
        self.main.len()
    }

    /// The whole presentation's length in seconds.
    pub fn duration(&self) -> f64 {
        self.durations.iter().sum()
    }

    /// Memory held, for the cache's budget.
    pub fn weight(&self) -> usize {
        let ranges: usize = self.main.iter().map(Vec::len).sum::<usize>()
            + self.extra.iter().map(Vec::len).sum::<usize>();
        std::mem::size_of::<Plan>() + ranges * 16 + self.durations.len() * 40
    }
}

/// A following track's sample range in each segment: segment i runs from
/// its first sample at or after `times[i]` (seconds) to the next one's; the
/// last runs to the track's end unless the presentation is `clipped_end`.
pub fn follow(track: &Track, times: &[f64], clipped_end: bool) -> Vec<Range<u64>> {
    let at = |t: f64, last: bool| {
        if last && !clipped_end {
            track.sample_count
        } else {
            track.sample_from(ticks(track, t))
        }
    };
    let count = times.len().saturating_sub(1);
    (0..count)
        .map(|i| at(times[i], false)..at(times[i + 1], i + 1 == count))
        .map(|r| r.start..r.end.max(r.start))
        .collect()
}

/// Seconds of decode time at sample `s` of `track`.
pub fn seconds(track: &Track, s: u64) -> f64 {
    track.time_of(s) as f64 / f64::from(track.timescale.max(1))
}

/// Ticks of `track`'s timescale at `t` seconds.
pub fn ticks(track: &Track, t: f64) -> u64 {
    (t * f64::from(track.timescale)).round().max(0.0) as u64
}

/// Media bytes of samples `range` of `track`.
pub fn bytes_of(track: &Track, range: &Range<u64>) -> u64 {
    range.clone().map(|s| track.size_of(s)).sum()
}

/// The leading track's segment boundaries (sample numbers, the last one the
/// end), for `clip`.
fn lead_boundaries(
    track: &Track,
    clip: Clip,
    segment_seconds: f64,
) -> Result<Vec<u64>, MediaError> {
    if !(segment_seconds.is_finite() && segment_seconds > 0.0) {
        return Err(broken("segment_seconds must be positive"));
    }
    if ticks(track, clip.start) >= track.duration() {
        return Err(MediaError::BadSeek(
            "start is at or past the end of the presentation".into(),
        ));
    }
    let mut first = track.sample_at(ticks(track, clip.start));
    if track.is_video() {
        first = track.sync_at_or_before(first);
    }
    let end = if clip.stop > 0.0 {
        track.sample_from(ticks(track, clip.stop))
    } else {
        track.sample_count
    };
    if first >= end {
        return Err(MediaError::BadSeek(
            "start is at or past the end of the presentation".into(),
        ));
    }
    let origin = track.time_of(first);
    let step = segment_seconds * f64::from(track.timescale);
    let mut boundaries = vec![first];
    // A candidate becomes the next boundary when it lies at or after
    // origin + k × step, k the lowest step not yet reached.
    let mut k = 1u64;
    let consider = |s: u64, k: &mut u64, boundaries: &mut Vec<u64>| -> bool {
        let since = track.time_of(s).saturating_sub(origin) as f64;
        let due = since + 0.5 >= *k as f64 * step;
        if due {
            boundaries.push(s);
            *k = (since / step).floor() as u64 + 1;
        }
        due
    };
    match (&track.sync, track.is_video()) {
        (Some(sync), true) => {
            for index in track.sync_range(first + 1, end) {
                let s = u64::from(sync[index]) - 1;
                if s > first && s < end {
                    consider(s, &mut k, &mut boundaries);
                }
            }
        }
        // Every sample starts cleanly: the first sample at or after each step.
        _ => loop {
            let target = origin + (k as f64 * step).round() as u64;
            let s = track.sample_from(target);
            if s >= end {
                break;
            }
            if s <= boundaries[boundaries.len() - 1] || !consider(s, &mut k, &mut boundaries) {
                k += 1;
            }
        },
    }
    boundaries.push(end);
    Ok(boundaries)
}

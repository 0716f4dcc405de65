//! A rendition set's presentation: the video of every file as one
//! rendition, switched only at shared segment boundaries, and the audio
//! taken once, from the first file that has any.
//!
//! The boundaries come from the first file (segment n starts at its first
//! keyframe at or after n × `segment_seconds`, as for a single file); every
//! other file must have a keyframe at each boundary, within one frame, and
//! last as long within a segment. A ladder that does not is refused with
//! the file and the first boundary that fails: a playlist whose renditions
//! cut at different instants makes players glitch at every switch.

use std::ops::Range;

use super::plan::{self, Clip, Plan};
use crate::media::MediaError;
use crate::media::mp4::Mp4Index;
use crate::media::mp4::tables::Track;

/// One track of one file, cut into the set's segments.
#[derive(Debug)]
pub struct Rendition {
    /// Which of the set's files (in the URL's order).
    pub file: usize,
    /// The track in that file's index.
    pub track: usize,
    /// Its sample range in each segment.
    pub ranges: Vec<Range<u64>>,
    /// Media bytes and seconds of each segment.
    pub bytes: Vec<u64>,
    pub durations: Vec<f64>,
}

impl Rendition {
    fn new(indexes: &[&Mp4Index], file: usize, track: usize, ranges: Vec<Range<u64>>) -> Rendition {
        let t = &indexes[file].tracks[track];
        Rendition {
            file,
            track,
            bytes: ranges.iter().map(|r| plan::bytes_of(t, r)).collect(),
            durations: ranges
                .iter()
                .map(|r| plan::seconds(t, r.end) - plan::seconds(t, r.start))
                .collect(),
            ranges,
        }
    }

    /// Frames a second (0 for a track without samples).
    pub fn frame_rate(&self, indexes: &[&Mp4Index]) -> f64 {
        let t = &indexes[self.file].tracks[self.track];
        let seconds = plan::seconds(t, t.sample_count);
        if seconds > 0.0 {
            t.sample_count as f64 / seconds
        } else {
            0.0
        }
    }
}

/// The set's renditions, cut on the same boundaries.
#[derive(Debug)]
pub struct Ladder {
    /// One video rendition a file, in the URL's order.
    pub videos: Vec<Rendition>,
    /// The audio tracks of the first file that has audio, the enabled one first.
    pub audios: Vec<Rendition>,
}

impl Ladder {
    pub fn segment_count(&self) -> usize {
        self.videos.first().map_or(0, |v| v.ranges.len())
    }

    /// The presentation's length: its longest rendition's.
    pub fn duration(&self) -> f64 {
        self.videos
            .iter()
            .chain(&self.audios)
            .map(|r| r.durations.iter().sum::<f64>())
            .fold(0.0, f64::max)
    }

    /// Memory held, for the cache's budget.
    pub fn weight(&self) -> usize {
        let per_segment = 16 + 8 + 8;
        std::mem::size_of::<Ladder>()
            + (self.videos.len() + self.audios.len())
                * (std::mem::size_of::<Rendition>() + self.segment_count() * per_segment)
    }
}

/// Why a set cannot be packaged, and which file says so.
#[derive(Debug)]
pub enum LadderError {
    /// The file cannot be indexed or cut (damaged: 500; unsupported: 501;
    /// a clip past its end: 400).
    File(usize, MediaError),
    /// The file does not fit the set (409): no video, a keyframe missing at
    /// a boundary, a different length.
    Conflict(usize, String),
}

/// The first enabled video track with samples.
fn video_track(index: &Mp4Index) -> Option<usize> {
    index
        .tracks
        .iter()
        .position(|t| t.enabled && t.sample_count > 0 && t.is_video())
}

/// Whether sample `s` is a sync sample.
fn is_sync(track: &Track, s: u64) -> bool {
    track.sync_at_or_before(s) == s
}

/// The keyframe of `track` within one frame of `seconds`, if there is one.
fn keyframe_near(track: &Track, seconds: f64) -> Option<u64> {
    let target = plan::ticks(track, seconds);
    let playing = track
        .sample_at(target)
        .min(track.sample_count.saturating_sub(1));
    (playing.saturating_sub(1)..(playing + 2).min(track.sample_count))
        .filter(|&s| is_sync(track, s))
        .filter(|&s| {
            let frame = track.time_of(s + 1).saturating_sub(track.time_of(s)).max(1);
            track.time_of(s).abs_diff(target) <= frame
        })
        .min_by_key(|&s| track.time_of(s).abs_diff(target))
}

/// Cuts the set of `indexes` (its files, in the URL's order) for `clip`.
pub fn build(
    indexes: &[&Mp4Index],
    clip: Clip,
    segment_seconds: f64,
) -> Result<Ladder, LadderError> {
    for (file, index) in indexes.iter().enumerate() {
        if let Some(reason) = &index.unsupported {
            return Err(LadderError::File(
                file,
                MediaError::Unsupported(reason.clone()),
            ));
        }
    }
    let first = indexes
        .first()
        .ok_or_else(|| LadderError::Conflict(0, "a set needs at least one file".into()))?;
    let lead_track =
        video_track(first).ok_or_else(|| LadderError::Conflict(0, "has no video track".into()))?;
    let lead_plan =
        Plan::build(first, clip, segment_seconds).map_err(|e| LadderError::File(0, e))?;
    let lead = &first.tracks[lead_track];
    let lead_ranges: Vec<Range<u64>> = lead_plan.main.iter().map(|r| r[0].clone()).collect();
    let mut times: Vec<f64> = lead_ranges
        .iter()
        .map(|r| plan::seconds(lead, r.start))
        .collect();
    times.extend(lead_ranges.last().map(|r| plan::seconds(lead, r.end)));
    let clipped_end = clip.stop > 0.0;
    let lead_length = plan::seconds(lead, lead.sample_count);

    let mut videos = vec![Rendition::new(indexes, 0, lead_track, lead_ranges)];
    for (file, index) in indexes.iter().enumerate().skip(1) {
        let v = video_track(index)
            .ok_or_else(|| LadderError::Conflict(file, "has no video track".into()))?;
        let track = &index.tracks[v];
        let length = plan::seconds(track, track.sample_count);
        if (length - lead_length).abs() > segment_seconds {
            return Err(LadderError::Conflict(
                file,
                format!(
                    "lasts {length:.3} s against the first file's {lead_length:.3} s: more than a segment apart"
                ),
            ));
        }
        let segments = times.len() - 1;
        let mut starts = Vec::with_capacity(times.len());
        for (n, &t) in times[..segments].iter().enumerate() {
            let s = keyframe_near(track, t).ok_or_else(|| {
                LadderError::Conflict(
                    file,
                    format!(
                        "has no keyframe at {t:.3} s, where segment {n} starts in the first file: \
                         the renditions of a set must share their keyframes (encode them with the same GOP)"
                    ),
                )
            })?;
            starts.push(s);
        }
        starts.push(if clipped_end {
            track.sample_from(plan::ticks(track, times[segments]))
        } else {
            track.sample_count
        });
        let ranges = starts.windows(2).map(|w| w[0]..w[1].max(w[0])).collect();
        videos.push(Rendition::new(indexes, file, v, ranges));
    }

    let audios = match indexes.iter().enumerate().find_map(|(file, index)| {
        let tracks = audio_tracks(index);
        (!tracks.is_empty()).then_some((file, tracks))
    }) {
        Some((file, tracks)) => tracks
            .into_iter()
            .map(|a| {
                let ranges = plan::follow(&indexes[file].tracks[a], &times, clipped_end);
                Rendition::new(indexes, file, a, ranges)
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(Ladder { videos, audios })
}

/// A file's audio tracks with samples, the enabled one first (it plays with
/// the video; alternative languages are usually disabled).
fn audio_tracks(index: &Mp4Index) -> Vec<usize> {
    let mut audio: Vec<usize> = (0..index.tracks.len())
        .filter(|&i| index.tracks[i].sample_count > 0 && &index.tracks[i].handler == b"soun")
        .collect();
    audio.sort_by_key(|&i| !index.tracks[i].enabled);
    audio
}

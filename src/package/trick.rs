//! I-frame renditions for trick play (HLS `EXT-X-I-FRAME-STREAM-INF`):
//! every keyframe of a video rendition is a fragment of its own, one sample
//! in a moof and an mdat, made like a media segment (a small generated head,
//! then the keyframe's bytes sent with sendfile). Players that scrub or
//! fast-forward (AVPlayer, ExoPlayer, Shaka) fetch only these.
//!
//! Each entry lasts until the next keyframe, as RFC 8216bis asks of an
//! I-frame playlist, and its bitrate is its fragment's size over that
//! duration.

use std::fmt::Write;
use std::ops::Range;

use super::fmp4::{self, Segment};
use super::plan;
use crate::media::mp4::Mp4Index;
use crate::media::mp4::tables::Track;

/// The keyframes of a video rendition's segments.
#[derive(Debug, Clone, PartialEq)]
pub struct IFrames {
    /// Sample numbers (from 0), in order.
    pub samples: Vec<u64>,
    /// Seconds from each keyframe to the next (the last: to the end).
    pub durations: Vec<f64>,
    /// Bytes of each keyframe.
    pub bytes: Vec<u64>,
}

impl IFrames {
    /// The keyframes of `track` within its segments' sample `ranges`. A
    /// track without a sync sample table has only keyframes: then each
    /// segment's first sample stands for its stretch, rather than every
    /// frame of the film.
    pub fn of(track: &Track, ranges: &[Range<u64>]) -> IFrames {
        let mut samples = Vec::new();
        for range in ranges {
            match &track.sync {
                Some(sync) => samples.extend(
                    track
                        .sync_range(range.start, range.end)
                        .map(|i| u64::from(sync[i]).saturating_sub(1))
                        .filter(|s| range.contains(s)),
                ),
                None if !range.is_empty() => samples.push(range.start),
                None => {}
            }
        }
        samples.dedup();
        let end = ranges.last().map_or(0, |r| r.end);
        let durations = samples
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let next = samples.get(i + 1).copied().unwrap_or(end);
                (plan::seconds(track, next) - plan::seconds(track, s)).max(0.0)
            })
            .collect();
        let bytes = samples.iter().map(|&s| track.size_of(s)).collect();
        IFrames {
            samples,
            durations,
            bytes,
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Fragment `n` (from 0) of track `track` of `index`: its keyframe alone.
    pub fn fragment(&self, index: &Mp4Index, track: usize, n: usize) -> Option<Segment> {
        let s = *self.samples.get(n)?;
        let keyframe = Range {
            start: s,
            end: s + 1,
        };
        Some(fmp4::media_segment(
            index,
            &[track],
            std::slice::from_ref(&keyframe),
            (n + 1) as u32,
        ))
    }
}

/// The generated head's size of track `track`'s fragments.
pub fn head_bytes(index: &Mp4Index, track: usize, frames: &IFrames) -> u64 {
    frames
        .fragment(index, track, 0)
        .map_or(0, |f| f.head.len() as u64)
}

/// The I-frame media playlist: `init` is the EXT-X-MAP URI, entry n's URI
/// is `fragment(n)`; `query` ("" or "?…") goes on every URI.
pub fn playlist(
    frames: &IFrames,
    init: &str,
    fragment: impl Fn(usize) -> String,
    query: &str,
) -> String {
    let target = frames
        .durations
        .iter()
        .map(|d| d.round() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut out = String::with_capacity(200 + frames.len() * 40);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-I-FRAMES-ONLY\n#EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-MAP:URI=\"{init}{query}\"\n"
    );
    for (n, duration) in frames.durations.iter().enumerate() {
        let _ = writeln!(out, "#EXTINF:{duration:.6},\n{}{query}", fragment(n));
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> IFrames {
        IFrames {
            samples: vec![0, 25, 50],
            durations: vec![1.0, 1.0, 0.4],
            bytes: vec![1000, 2000, 500],
        }
    }

    #[test]
    fn the_playlist_lists_every_keyframe_until_the_next() {
        let text = playlist(
            &frames(),
            "init-v.mp4",
            |n| format!("iframe-{n}.m4s"),
            "?t=1",
        );
        assert!(text.contains("#EXT-X-I-FRAMES-ONLY\n"), "{text}");
        assert!(
            text.contains("#EXT-X-MAP:URI=\"init-v.mp4?t=1\"\n"),
            "{text}"
        );
        assert!(text.contains("#EXT-X-TARGETDURATION:1\n"), "{text}");
        assert!(
            text.contains("#EXTINF:0.400000,\niframe-2.m4s?t=1\n#EXT-X-ENDLIST\n"),
            "{text}"
        );
        assert_eq!(text.matches("#EXTINF").count(), 3);
    }
}

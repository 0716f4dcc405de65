//! The DASH manifest (ISO/IEC 23009-1, static, isoff-live profile) over the
//! same segments as the HLS playlists: a SegmentTemplate with a
//! SegmentTimeline per adaptation set.

use std::fmt::Write;

use super::codecs::TrackInfo;
use super::hls::bitrates;

/// One adaptation set: a track group and its segments' timing.
pub struct Set<'a> {
    pub infos: &'a [TrackInfo],
    /// Timescale of the times below (the set's leading track).
    pub timescale: u32,
    /// Start time of each segment and the end of the last, in `timescale` ticks.
    pub times: Vec<u64>,
    pub bytes: &'a [u64],
    pub durations: &'a [f64],
    pub init: String,
    /// The media URI template, with `$Number$`.
    pub media: String,
}

/// Escapes text for an XML attribute.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `PT…S` with millisecond precision.
fn duration(seconds: f64) -> String {
    format!("PT{:.3}S", seconds.max(0.0))
}

/// The MPD of a presentation lasting `total` seconds.
pub fn manifest(sets: &[Set], total: f64) -> String {
    let longest = sets
        .iter()
        .flat_map(|s| s.durations.iter())
        .fold(0.0f64, |a, &b| a.max(b));
    let mut out = String::with_capacity(1024);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" \
         type=\"static\" mediaPresentationDuration=\"{}\" minBufferTime=\"{}\">\n  <Period id=\"0\" start=\"PT0S\">\n",
        duration(total),
        duration(longest.ceil())
    );
    for (id, set) in sets.iter().enumerate() {
        let video = set.infos.iter().find(|i| i.width > 0);
        let audio = set.infos.iter().find(|i| i.width == 0);
        let (mime, content) = if video.is_some() {
            ("video/mp4", "video")
        } else {
            ("audio/mp4", "audio")
        };
        let codecs: Vec<&str> = set.infos.iter().map(|i| i.codec.as_str()).collect();
        let _ = write!(
            out,
            "    <AdaptationSet id=\"{id}\" contentType=\"{content}\" mimeType=\"{mime}\" segmentAlignment=\"true\" startWithSAP=\"1\""
        );
        if let Some(audio) = audio.filter(|_| video.is_none()) {
            let _ = write!(out, " lang=\"{}\"", xml(&audio.language));
        }
        out.push_str(">\n");
        let (peak, _) = bitrates(set.bytes, set.durations);
        let _ = write!(
            out,
            "      <Representation id=\"{id}\" codecs=\"{}\" bandwidth=\"{peak}\"",
            xml(&codecs.join(","))
        );
        if let Some(video) = video {
            let _ = write!(
                out,
                " width=\"{}\" height=\"{}\"",
                video.width, video.height
            );
        }
        if let Some(audio) = audio.filter(|a| a.sample_rate > 0) {
            let _ = write!(out, " audioSamplingRate=\"{}\"", audio.sample_rate);
        }
        out.push_str(">\n");
        if let Some(audio) = audio.filter(|a| a.channels > 0) {
            let _ = writeln!(
                out,
                "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{}\"/>",
                audio.channels
            );
        }
        let first = set.times.first().copied().unwrap_or(0);
        let _ = write!(
            out,
            "        <SegmentTemplate timescale=\"{}\" presentationTimeOffset=\"{first}\" startNumber=\"0\" initialization=\"{}\" media=\"{}\">\n          <SegmentTimeline>\n",
            set.timescale,
            xml(&set.init),
            xml(&set.media)
        );
        timeline(&set.times, &mut out);
        out.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n    </AdaptationSet>\n");
    }
    out.push_str("  </Period>\n</MPD>\n");
    out
}

/// `<S t d r>` entries, runs of equal durations folded into `r`.
fn timeline(times: &[u64], out: &mut String) {
    let mut i = 0;
    while i + 1 < times.len() {
        let d = times[i + 1] - times[i];
        let mut repeat = 0;
        while i + repeat + 2 < times.len() && times[i + repeat + 2] - times[i + repeat + 1] == d {
            repeat += 1;
        }
        if i == 0 {
            let _ = write!(out, "            <S t=\"{}\" d=\"{d}\"", times[0]);
        } else {
            let _ = write!(out, "            <S d=\"{d}\"");
        }
        if repeat > 0 {
            let _ = write!(out, " r=\"{repeat}\"");
        }
        out.push_str("/>\n");
        i += repeat + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_durations_fold_into_repeats() {
        let mut out = String::new();
        timeline(&[0, 6, 12, 18, 20], &mut out);
        assert_eq!(
            out,
            "            <S t=\"0\" d=\"6\" r=\"2\"/>\n            <S d=\"2\"/>\n"
        );
    }

    #[test]
    fn attributes_are_escaped() {
        assert_eq!(
            xml("seg-$Number$.m4s?a=1&b=\"2\""),
            "seg-$Number$.m4s?a=1&amp;b=&quot;2&quot;"
        );
    }
}

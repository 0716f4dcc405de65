//! The DASH manifest (ISO/IEC 23009-1, static, isoff-live profile) over the
//! same segments as the HLS playlists: a SegmentTemplate with a
//! SegmentTimeline per adaptation set.

use std::fmt::Write;

use super::codecs::TrackInfo;
use super::hls::bitrates;
use super::text::{self, TextTrack};

/// One representation: a track group and its segments' timing.
pub struct Representation<'a> {
    /// Unique in the manifest.
    pub id: String,
    pub infos: &'a [TrackInfo],
    /// Timescale of the times below (the representation's leading track).
    pub timescale: u32,
    /// Start time of each segment and the end of the last, in `timescale` ticks.
    pub times: Vec<u64>,
    pub bytes: &'a [u64],
    pub durations: &'a [f64],
    /// Frames a second, for video.
    pub frame_rate: Option<f64>,
    pub init: String,
    /// The media URI template, with `$Number$`.
    pub media: String,
}

/// One adaptation set: representations a player may switch between (all
/// cut on the same boundaries).
pub struct Set<'a> {
    pub representations: Vec<Representation<'a>>,
    /// The set's `lang`, for audio.
    pub lang: Option<String>,
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

/// DASH's frame rate: a whole number, or a fraction for the NTSC rates
/// (29.97 → `30000/1001`).
fn frame_rate(rate: f64) -> String {
    let whole = rate.round();
    if (rate - whole).abs() < 0.01 {
        return format!("{whole:.0}");
    }
    let ntsc = (rate * 1.001).round();
    if (rate * 1.001 - ntsc).abs() < 0.01 {
        return format!("{:.0}/1001", ntsc * 1000.0);
    }
    format!("{:.0}/1000", rate * 1000.0)
}

/// The MPD of a presentation lasting `total` seconds.
pub fn manifest(sets: &[Set], texts: &[TextTrack], query: &str, total: f64) -> String {
    let longest = sets
        .iter()
        .flat_map(|s| &s.representations)
        .flat_map(|r| r.durations.iter())
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
        let Some(first) = set.representations.first() else {
            continue;
        };
        let (mime, content) = if first.infos.iter().any(|i| i.width > 0) {
            ("video/mp4", "video")
        } else {
            ("audio/mp4", "audio")
        };
        let _ = write!(
            out,
            "    <AdaptationSet id=\"{id}\" contentType=\"{content}\" mimeType=\"{mime}\" segmentAlignment=\"true\" startWithSAP=\"1\""
        );
        if let Some(lang) = &set.lang {
            let _ = write!(out, " lang=\"{}\"", xml(lang));
        }
        out.push_str(">\n");
        for representation in &set.representations {
            write_representation(representation, &mut out);
        }
        out.push_str("    </AdaptationSet>\n");
    }
    text::dash_sets(texts, sets.len(), query, xml, &mut out);
    out.push_str("  </Period>\n</MPD>\n");
    out
}

fn write_representation(rep: &Representation, out: &mut String) {
    let video = rep.infos.iter().find(|i| i.width > 0);
    let audio = rep.infos.iter().find(|i| i.width == 0);
    let codecs: Vec<&str> = rep.infos.iter().map(|i| i.codec.as_str()).collect();
    let (peak, _) = bitrates(rep.bytes, rep.durations);
    let _ = write!(
        out,
        "      <Representation id=\"{}\" codecs=\"{}\" bandwidth=\"{peak}\"",
        xml(&rep.id),
        xml(&codecs.join(","))
    );
    if let Some(video) = video {
        let _ = write!(
            out,
            " width=\"{}\" height=\"{}\"",
            video.width, video.height
        );
    }
    if let Some(rate) = rep.frame_rate.filter(|r| *r > 0.0) {
        let _ = write!(out, " frameRate=\"{}\"", frame_rate(rate));
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
    let first = rep.times.first().copied().unwrap_or(0);
    let _ = write!(
        out,
        "        <SegmentTemplate timescale=\"{}\" presentationTimeOffset=\"{first}\" startNumber=\"0\" initialization=\"{}\" media=\"{}\">\n          <SegmentTimeline>\n",
        rep.timescale,
        xml(&rep.init),
        xml(&rep.media)
    );
    timeline(&rep.times, out);
    out.push_str(
        "          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n",
    );
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
    fn frame_rates_are_whole_or_ntsc_fractions() {
        assert_eq!(frame_rate(25.0), "25");
        assert_eq!(frame_rate(29.97003), "30000/1001");
        assert_eq!(frame_rate(23.976), "24000/1001");
        assert_eq!(frame_rate(12.5), "12500/1000");
    }

    #[test]
    fn attributes_are_escaped() {
        assert_eq!(
            xml("seg-$Number$.m4s?a=1&b=\"2\""),
            "seg-$Number$.m4s?a=1&amp;b=&quot;2&quot;"
        );
    }
}

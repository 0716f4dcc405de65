//! HLS playlists (RFC 8216bis, version 7: fMP4 segments with EXT-X-MAP)
//! over a segment plan.

use std::fmt::Write;

use super::attributes::{UniqueNames, quoted};
use super::codecs::TrackInfo;
use super::plan::Plan;
use super::text::{self, TextTrack};
use super::trick::IFrames;

/// Bits per second of `bytes` over `seconds`, rounded up.
fn bitrate(bytes: u64, seconds: f64) -> u64 {
    if seconds <= 0.0 {
        return 0;
    }
    (bytes as f64 * 8.0 / seconds).ceil() as u64
}

/// Peak and average bitrate of segments of these sizes and durations.
pub fn bitrates(bytes: &[u64], durations: &[f64]) -> (u64, u64) {
    let peak = bytes
        .iter()
        .zip(durations)
        .map(|(&b, &d)| bitrate(b, d))
        .max()
        .unwrap_or(0);
    let total: f64 = durations.iter().sum();
    (peak, bitrate(bytes.iter().sum(), total))
}

/// The multivariant playlist: one variant (video with the main audio),
/// each further audio track as an EXT-X-MEDIA rendition, the subtitles and
/// the video's I-frame rendition. `query` ("" or "?…") is carried into
/// every URI.
pub fn master(
    plan: &Plan,
    (infos, extra_infos): (&[TrackInfo], &[TrackInfo]),
    (texts, iframes): (&[TextTrack], &[IFrameVariant]),
    query: &str,
) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    text::hls_media(texts, query, &mut out);
    let (mut peak, mut average) = bitrates(&plan.main_bytes, &plan.durations);
    let has_renditions = !extra_infos.is_empty();
    if has_renditions {
        let main_audio = infos.iter().find(|i| i.width == 0);
        let mut names = UniqueNames::default();
        let mut name_for = |language: &str| names.name(language);
        if let Some(audio) = main_audio {
            // The main audio plays from the variant's own segments: no URI.
            let _ = writeln!(
                out,
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",LANGUAGE={},NAME={},DEFAULT=YES,AUTOSELECT=YES",
                quoted(&audio.language),
                quoted(&name_for(&audio.language))
            );
        }
        let mut extra_peak = 0;
        let mut extra_average = 0;
        for (k, info) in extra_infos.iter().enumerate() {
            let (p, a) = bitrates(&plan.extra_bytes[k], &plan.extra_durations[k]);
            extra_peak = extra_peak.max(p);
            extra_average = extra_average.max(a);
            let _ = writeln!(
                out,
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",LANGUAGE={},NAME={},DEFAULT=NO,AUTOSELECT=YES,URI=\"audio-{}.m3u8{query}\"",
                quoted(&info.language),
                quoted(&name_for(&info.language)),
                k + 1
            );
        }
        peak += extra_peak;
        average += extra_average;
    }
    let codecs: Vec<&str> = infos.iter().map(|i| i.codec.as_str()).collect();
    let _ = write!(
        out,
        "#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},CODECS={}",
        quoted(&codecs.join(","))
    );
    if let Some(video) = infos.iter().find(|i| i.width > 0) {
        let _ = write!(out, ",RESOLUTION={}x{}", video.width, video.height);
    }
    if has_renditions {
        out.push_str(",AUDIO=\"audio\"");
    }
    if !texts.is_empty() {
        let _ = write!(out, ",SUBTITLES=\"{}\"", text::GROUP);
    }
    let _ = writeln!(out, "\nindex.m3u8{query}");
    for iframe in iframes {
        iframe.write(&mut out);
    }
    out
}

/// What a multivariant playlist says of one I-frame rendition.
pub struct IFrameVariant<'a> {
    pub video: &'a TrackInfo,
    pub frames: &'a IFrames,
    /// The size of a fragment's generated head (the same for every
    /// fragment of a track: one sample each).
    pub head: u64,
    /// Its I-frame playlist's URI (with the carried query).
    pub uri: String,
}

impl IFrameVariant<'_> {
    /// The `EXT-X-I-FRAME-STREAM-INF` line.
    pub fn write(&self, out: &mut String) {
        if self.frames.is_empty() {
            return;
        }
        let sizes: Vec<u64> = self.frames.bytes.iter().map(|b| b + self.head).collect();
        let (peak, average) = bitrates(&sizes, &self.frames.durations);
        let _ = write!(
            out,
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},CODECS={}",
            quoted(&self.video.codec)
        );
        if self.video.width > 0 {
            let _ = write!(
                out,
                ",RESOLUTION={}x{}",
                self.video.width, self.video.height
            );
        }
        let _ = writeln!(out, ",URI={}", quoted(&self.uri));
    }
}

/// A video rendition of a set, as its multivariant playlist lists it.
pub struct Variant<'a> {
    pub video: &'a TrackInfo,
    /// Peak and average segment bitrate of the video alone.
    pub peak: u64,
    pub average: u64,
    pub frame_rate: f64,
    /// Its media playlist's URI (with the carried query).
    pub uri: String,
}

/// An audio rendition of a set's audio group.
pub struct AudioMember<'a> {
    pub info: &'a TrackInfo,
    pub peak: u64,
    pub average: u64,
    /// BCP 47 tag and the name players show.
    pub language: String,
    pub name: String,
    pub default: bool,
    pub uri: String,
}

/// A set's multivariant playlist: the audio group (`EXT-X-MEDIA`, one
/// member per audio track), then one `EXT-X-STREAM-INF` per video
/// rendition, lowest bandwidth first. A variant's `BANDWIDTH` is its video's
/// peak segment bitrate plus the group's highest, its `CODECS` the video's
/// and every audio codec of the group. The video renditions' I-frame
/// renditions follow, in the same order.
pub fn multivariant(
    variants: &[Variant],
    audios: &[AudioMember],
    (texts, iframes): (&[TextTrack], &[IFrameVariant]),
    query: &str,
) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    text::hls_media(texts, query, &mut out);
    let mut names = UniqueNames::default();
    for audio in audios {
        let name = names.name(&audio.name);
        let _ = write!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",LANGUAGE={},NAME={},DEFAULT={},AUTOSELECT=YES",
            quoted(&audio.language),
            quoted(&name),
            if audio.default { "YES" } else { "NO" }
        );
        if audio.info.channels > 0 {
            let _ = write!(out, ",CHANNELS=\"{}\"", audio.info.channels);
        }
        let _ = writeln!(out, ",URI={}", quoted(&audio.uri));
    }
    let audio_peak = audios.iter().map(|a| a.peak).max().unwrap_or(0);
    let audio_average = audios.iter().map(|a| a.average).max().unwrap_or(0);
    let mut audio_codecs: Vec<&str> = Vec::new();
    for audio in audios {
        if !audio_codecs.contains(&audio.info.codec.as_str()) {
            audio_codecs.push(&audio.info.codec);
        }
    }
    let mut order: Vec<usize> = (0..variants.len()).collect();
    order.sort_by_key(|&v| variants[v].peak);
    for &v in &order {
        let variant = &variants[v];
        let codecs: Vec<&str> = std::iter::once(variant.video.codec.as_str())
            .chain(audio_codecs.iter().copied())
            .collect();
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},FRAME-RATE={:.3},CODECS={}",
            variant.peak + audio_peak,
            variant.average + audio_average,
            variant.video.width,
            variant.video.height,
            variant.frame_rate,
            quoted(&codecs.join(","))
        );
        if !audios.is_empty() {
            out.push_str(",AUDIO=\"audio\"");
        }
        if !texts.is_empty() {
            let _ = write!(out, ",SUBTITLES=\"{}\"", text::GROUP);
        }
        let _ = writeln!(out, "\n{}", variant.uri);
    }
    for &v in &order {
        if let Some(iframe) = iframes.get(v) {
            iframe.write(&mut out);
        }
    }
    out
}

/// A media playlist: `init` is the EXT-X-MAP URI, segment n's URI is
/// `segment(n)`.
pub fn media(
    durations: &[f64],
    init: &str,
    segment: impl Fn(usize) -> String,
    query: &str,
) -> String {
    // EXTINF durations rounded to the nearest integer must not exceed it.
    let target = durations
        .iter()
        .map(|d| d.round() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut out = String::with_capacity(200 + durations.len() * 40);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{init}{query}\"\n"
    );
    for (n, duration) in durations.iter().enumerate() {
        let _ = writeln!(out, "#EXTINF:{duration:.6},\n{}{query}", segment(n));
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_duration_covers_every_rounded_extinf() {
        let text = media(
            &[6.0, 6.4, 2.5],
            "init.mp4",
            |n| format!("seg-{n}.m4s"),
            "?a=1",
        );
        assert!(text.contains("#EXT-X-TARGETDURATION:6\n"), "{text}");
        assert!(
            text.contains("#EXTINF:6.400000,\nseg-1.m4s?a=1\n"),
            "{text}"
        );
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4?a=1\""), "{text}");
        assert!(text.ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn peak_and_average_bitrates() {
        assert_eq!(bitrates(&[1000, 3000], &[1.0, 1.0]), (24000, 16000));
        assert_eq!(bitrates(&[], &[]), (0, 0));
    }

    fn iframes() -> IFrames {
        IFrames {
            samples: vec![0, 25, 50],
            durations: vec![1.0, 1.0, 0.4],
            bytes: vec![1000, 2000, 500],
        }
    }

    #[test]
    fn the_stream_inf_counts_each_fragment_over_its_duration() {
        let info = TrackInfo {
            codec: "avc1.64001e".into(),
            width: 640,
            height: 360,
            ..TrackInfo::default()
        };
        let frames = iframes();
        let mut out = String::new();
        IFrameVariant {
            video: &info,
            frames: &frames,
            head: 100,
            uri: "iframes.m3u8".into(),
        }
        .write(&mut out);
        // Peak: (2 000 + 100) bytes over 1 s; average: 3 800 bytes over 2.4 s.
        assert_eq!(
            out,
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=16800,AVERAGE-BANDWIDTH=12667,\
             CODECS=\"avc1.64001e\",RESOLUTION=640x360,URI=\"iframes.m3u8\"\n"
        );
    }
}

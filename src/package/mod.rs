//! Adaptive-streaming packaging on the fly: any MP4-family file the host
//! serves is also an HLS presentation and a DASH one, at URLs beneath it
//! (`/film.mp4/master.m3u8`, `/film.mp4/seg-3.m4s`, …), built from the
//! sample tables the media cache already holds. Segments are a generated
//! head followed by ranges of the original file, sent with sendfile(2).
//!
//! Layer: imports only `media`; plans and writes are pure, and the cache and
//! the worker hold and send what is built here.

mod attributes;
pub mod codecs;
pub mod dash;
pub mod fmp4;
pub mod hls;
mod kind;
pub mod ladder;
pub mod language;
pub mod plan;
pub mod set_parts;
pub mod text;
pub mod trick;
pub mod urlset;

use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::rc::Rc;

use crate::media::mp4::Mp4Index;
use crate::media::mp4::tables::Track;
use crate::media::query;
use crate::media::{MediaError, MediaKind};
use codecs::TrackInfo;
use fmp4::Segment;
pub use kind::Kind;
use kind::number;
use plan::{Clip, Plan};
use text::TextTrack;

/// What a packaged URL names, after the media file's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Name {
    /// `master.m3u8`
    Master,
    /// `index.m3u8`: the main rendition's media playlist.
    Media,
    /// `audio-<n>.m3u8`: extra audio track n (from 1).
    AudioMedia(u32),
    /// `manifest.mpd`
    Manifest,
    /// `init.mp4`
    Init,
    /// `init-a<k>.mp4`: extra audio track k (from 1), or with k = 0 the
    /// main audio alone (DASH lists the main tracks apart).
    AudioInit(u32),
    /// `init-v.mp4`: the video alone.
    VideoInit,
    /// `seg-<n>.m4s` (from 0)
    Segment(u32),
    /// `seg-a<k>-<n>.m4s`
    AudioSegment(u32, u32),
    /// `seg-v-<n>.m4s`
    VideoSegment(u32),
    /// `index-s<k>.m3u8`: subtitle rendition k (from 1).
    SubtitleMedia(u32),
    /// `sub-s<k>.vtt`: its WebVTT text, whole.
    Subtitle(u32),
    /// `iframes.m3u8`: the video's I-frame playlist.
    IFrames,
    /// `iframe-<n>.m4s` (from 0): its keyframe n alone.
    IFrame(u32),
}

/// `index-s<k>.m3u8` and `sub-s<k>.vtt` (k from 1, no leading zero), for
/// single files and sets alike.
/// Whether `name` is a subtitle playlist (true) or file (false), and which.
pub fn subtitle_name(name: &str) -> Option<(bool, u32)> {
    let ordinal = |k: &str| number(k).filter(|&n| n > 0 && !k.starts_with('0'));
    if let Some(k) = name
        .strip_prefix("index-s")
        .and_then(|r| r.strip_suffix(".m3u8"))
    {
        return ordinal(k).map(|k| (true, k));
    }
    let k = name.strip_prefix("sub-s")?.strip_suffix(".vtt")?;
    ordinal(k).map(|k| (false, k))
}

impl Name {
    pub fn parse(name: &str) -> Option<Name> {
        if let Some((playlist, k)) = subtitle_name(name) {
            return Some(if playlist {
                Name::SubtitleMedia(k)
            } else {
                Name::Subtitle(k)
            });
        }
        match name {
            "master.m3u8" => return Some(Name::Master),
            "index.m3u8" => return Some(Name::Media),
            "manifest.mpd" => return Some(Name::Manifest),
            "init.mp4" => return Some(Name::Init),
            "init-v.mp4" => return Some(Name::VideoInit),
            "iframes.m3u8" => return Some(Name::IFrames),
            _ => {}
        }
        if let Some(n) = name
            .strip_prefix("iframe-")
            .and_then(|r| r.strip_suffix(".m4s"))
        {
            return number(n).map(Name::IFrame);
        }
        if let Some(n) = name
            .strip_prefix("audio-")
            .and_then(|r| r.strip_suffix(".m3u8"))
        {
            return number(n).filter(|&n| n > 0).map(Name::AudioMedia);
        }
        if let Some(n) = name
            .strip_prefix("init-a")
            .and_then(|r| r.strip_suffix(".mp4"))
        {
            return number(n).map(Name::AudioInit);
        }
        let segment = name.strip_prefix("seg-")?.strip_suffix(".m4s")?;
        if let Some(n) = segment.strip_prefix("v-") {
            return number(n).map(Name::VideoSegment);
        }
        if let Some(rest) = segment.strip_prefix('a') {
            let (k, n) = rest.split_once('-')?;
            return Some(Name::AudioSegment(number(k)?, number(n)?));
        }
        number(segment).map(Name::Segment)
    }

    /// The Content-Type of the answer (`audio` for a file without video).
    pub fn content_type(&self, audio_only: bool) -> &'static str {
        match self {
            Name::Master
            | Name::Media
            | Name::AudioMedia(_)
            | Name::SubtitleMedia(_)
            | Name::IFrames => "application/vnd.apple.mpegurl",
            Name::Subtitle(_) => "text/vtt",
            Name::Manifest => "application/dash+xml",
            Name::Init if !audio_only => "video/mp4",
            Name::VideoInit => "video/mp4",
            Name::Init | Name::AudioInit(_) => "audio/mp4",
            Name::Segment(_) | Name::AudioSegment(..) | Name::VideoSegment(_) | Name::IFrame(_) => {
                "video/iso.segment"
            }
        }
    }

    /// Whether the answer is a media segment (sent from the file) rather
    /// than a generated document.
    pub fn is_segment(&self) -> bool {
        matches!(
            self,
            Name::Segment(_) | Name::AudioSegment(..) | Name::VideoSegment(_) | Name::IFrame(_)
        )
    }

    /// Whether the answer lists or is a subtitle rendition (so the
    /// sidecar files are looked for).
    pub fn lists_subtitles(&self) -> bool {
        matches!(
            self,
            Name::Master | Name::Manifest | Name::SubtitleMedia(_) | Name::Subtitle(_)
        )
    }

    /// Whether the answer is an initialisation segment.
    pub fn is_init(&self) -> bool {
        matches!(self, Name::Init | Name::AudioInit(_) | Name::VideoInit)
    }

    /// For the counters: playlist or manifest, init segment, media segment.
    pub fn kind(&self) -> Kind {
        match self {
            Name::Master
            | Name::Media
            | Name::AudioMedia(_)
            | Name::Manifest
            | Name::SubtitleMedia(_)
            | Name::IFrames => Kind::Playlist,
            Name::Init | Name::AudioInit(_) | Name::VideoInit => Kind::Init,
            Name::Segment(_)
            | Name::AudioSegment(..)
            | Name::VideoSegment(_)
            | Name::IFrame(_)
            | Name::Subtitle(_) => Kind::Segment,
        }
    }
}

/// Splits a packaged URL's path into the media file's path and the name
/// after it: `/films/a.mp4/seg-3.m4s` → (`/films/a.mp4`, Segment(3)). None
/// for any other path.
pub fn split_path(path: &str) -> Option<(&str, Name)> {
    let (media, name) = path.rsplit_once('/')?;
    let name = Name::parse(name)?;
    (!media.is_empty() && MediaKind::of_path(media.as_bytes()) == Some(MediaKind::Mp4))
        .then_some((media, name))
}

/// The path of the presentation `path` is beneath, a media file's or a
/// rendition set's (`/film.mp4/seg-3.m4s` → `/film.mp4`), for a signed link
/// to it, which admits everything beneath.
pub fn presentation_path(path: &str) -> Option<&str> {
    split_path(path)
        .map(|(media, _)| media)
        .or_else(|| urlset::set_path_of(path))
}

/// How a presentation is cut: its clip and segment length.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cut {
    pub clip: Clip,
    pub segment_seconds: f64,
}

impl Cut {
    /// The cut a request asks for: `start`/`stop` from its query, always in
    /// seconds (a presentation cannot be clipped in bytes: `units=bytes` is
    /// refused, and a large whole number is not taken for a byte offset as
    /// a seek's would be), and the host's segment length.
    pub fn of_query(query: Option<&str>, segment_seconds: f64) -> Result<Cut, MediaError> {
        let in_bytes = query.is_some_and(|q| {
            q.split('&')
                .filter_map(|pair| pair.strip_prefix("units="))
                .any(|units| units.starts_with(['b', 'B']))
        });
        if in_bytes {
            return Err(MediaError::BadSeek(
                "A presentation is clipped in seconds, not bytes.".into(),
            ));
        }
        let clip = match query.map(query::parse).transpose() {
            Err(e) => return Err(MediaError::BadSeek(e.0)),
            Ok(Some(Some(seek))) => Clip {
                start: seek.start,
                stop: seek.stop,
            },
            Ok(_) => Clip::default(),
        };
        Ok(Cut {
            clip,
            segment_seconds,
        })
    }

    /// The cut as a hashable key (milliseconds).
    pub fn key(&self) -> CutKey {
        let ms = |s: f64| (s * 1000.0).round() as u64;
        CutKey {
            start_ms: ms(self.clip.start),
            stop_ms: ms(self.clip.stop),
            segment_ms: ms(self.segment_seconds),
        }
    }
}

/// `Cut` in a hashable form: the cache's and the ETag's idea of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CutKey {
    pub start_ms: u64,
    pub stop_ms: u64,
    pub segment_ms: u64,
}

/// What the media cache keeps for packaged answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PackageKey {
    Plan(CutKey),
    /// A playlist or manifest, by the query carried into its URIs.
    Document(CutKey, Name, u64),
    Segment(CutKey, Name),
    /// A rendition set's ladder, by a hash of its files' identities.
    Ladder(u64, CutKey),
    /// A part of a set; playlists also by the query they carry.
    SetPart(u64, CutKey, urlset::SetName, u64),
    /// A sidecar subtitle file as served (WebVTT), by its own identity.
    Subtitle,
}

/// A built packaged answer.
#[derive(Clone)]
pub enum Output {
    Plan(Rc<Plan>),
    Document(Rc<[u8]>),
    Segment(Rc<Segment>),
    Ladder(Rc<ladder::Ladder>),
}

impl Output {
    /// Memory held, for the cache's budget.
    pub fn weight(&self) -> usize {
        match self {
            Output::Plan(plan) => plan.weight(),
            Output::Document(bytes) => bytes.len() + 64,
            Output::Segment(segment) => segment.weight(),
            Output::Ladder(ladder) => ladder.weight(),
        }
    }
}

/// A hash of the query a playlist carries into its URIs, for its cache key.
pub fn query_hash(carried: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    carried.hash(&mut hasher);
    hasher.finish()
}

fn not_found(what: &str) -> MediaError {
    MediaError::NotFound(format!("This presentation has no {what}."))
}

/// A track served on its own: the video or the main audio taken apart from
/// the main segments (DASH players want them apart), or an extra audio track.
#[derive(Clone, Copy)]
enum Alone {
    Video,
    /// 0: the main audio; k ≥ 1: extra audio track k.
    Audio(u32),
}

/// The track `which` names, and its sample range in each segment.
fn alone(plan: &Plan, which: Alone) -> Result<(usize, Vec<Range<u64>>), MediaError> {
    let muxed = plan.roles.main.len() == 2;
    let (track, position) = match which {
        Alone::Video if muxed => (plan.roles.main[0], 0),
        Alone::Audio(0) if muxed => (plan.roles.main[1], 1),
        Alone::Audio(k) if k > 0 => {
            let track = plan
                .roles
                .extra_audio
                .get(k as usize - 1)
                .copied()
                .ok_or_else(|| not_found("such audio track"))?;
            return Ok((track, plan.extra[k as usize - 1].clone()));
        }
        _ => return Err(not_found("such track")),
    };
    Ok((
        track,
        plan.main.iter().map(|r| r[position].clone()).collect(),
    ))
}

/// Builds the answer `name` of `index` cut by `plan`. `carried` ("" or
/// "?…") is appended to every URI a playlist lists.
pub fn build(
    index: &Mp4Index,
    plan: &Plan,
    (name, texts): (Name, &[TextTrack]),
    carried: &str,
) -> Result<Output, MediaError> {
    let infos = |tracks: &[usize]| -> Vec<TrackInfo> {
        tracks.iter().map(|&t| TrackInfo::of(index, t)).collect()
    };
    let document = |text: String| Output::Document(Rc::from(text.into_bytes().into_boxed_slice()));
    let segment_of = |tracks: &[usize], ranges: &[Range<u64>], n: u32| {
        Output::Segment(Rc::new(fmp4::media_segment(index, tracks, ranges, n + 1)))
    };
    let nth = |ranges: &[Range<u64>], n: u32| {
        ranges
            .get(n as usize)
            .cloned()
            .ok_or_else(|| not_found("such segment"))
    };
    match name {
        Name::Master => {
            let extra = infos(&plan.roles.extra_audio);
            let trick = video_iframes(index, plan);
            let video_info = trick.as_ref().map(|(t, ..)| TrackInfo::of(index, *t));
            let iframes: Vec<hls::IFrameVariant> = trick
                .iter()
                .zip(&video_info)
                .map(|((track, _, frames), video)| hls::IFrameVariant {
                    video,
                    frames,
                    head: trick::head_bytes(index, *track, frames),
                    uri: format!("iframes.m3u8{carried}"),
                })
                .collect();
            Ok(document(hls::master(
                plan,
                (&infos(&plan.roles.main), &extra),
                (texts, &iframes),
                carried,
            )))
        }
        Name::IFrames => {
            let (_, init, frames) = video_iframes(index, plan).ok_or_else(|| not_found("video"))?;
            Ok(document(trick::playlist(
                &frames,
                init,
                |n| format!("iframe-{n}.m4s"),
                carried,
            )))
        }
        Name::IFrame(n) => {
            let (track, _, frames) =
                video_iframes(index, plan).ok_or_else(|| not_found("video"))?;
            let fragment = frames
                .fragment(index, track, n as usize)
                .ok_or_else(|| not_found("such keyframe"))?;
            Ok(Output::Segment(Rc::new(fragment)))
        }
        Name::Media => Ok(document(hls::media(
            &plan.durations,
            "init.mp4",
            |n| format!("seg-{n}.m4s"),
            carried,
        ))),
        Name::AudioMedia(k) => {
            alone(plan, Alone::Audio(k))?;
            Ok(document(hls::media(
                &plan.extra_durations[k as usize - 1],
                &format!("init-a{k}.mp4"),
                |n| format!("seg-a{k}-{n}.m4s"),
                carried,
            )))
        }
        Name::Manifest => Ok(document(manifest(index, plan, texts, carried)?)),
        Name::SubtitleMedia(k) => {
            if k as usize > texts.len() {
                return Err(not_found("such subtitle track"));
            }
            Ok(document(text::hls_playlist(
                k as usize,
                plan.duration(),
                carried,
            )))
        }
        // The worker answers with the file itself.
        Name::Subtitle(_) => Err(not_found("such subtitle track")),
        Name::Init => Ok(document_bytes(fmp4::init_segment(index, &plan.roles.main))),
        Name::AudioInit(k) => {
            let (track, _) = alone(plan, Alone::Audio(k))?;
            Ok(document_bytes(fmp4::init_segment(index, &[track])))
        }
        Name::VideoInit => {
            let (track, _) = alone(plan, Alone::Video)?;
            Ok(document_bytes(fmp4::init_segment(index, &[track])))
        }
        Name::Segment(n) => {
            let ranges = plan
                .main
                .get(n as usize)
                .ok_or_else(|| not_found("such segment"))?;
            Ok(segment_of(&plan.roles.main, ranges, n))
        }
        Name::AudioSegment(k, n) => {
            let (track, ranges) = alone(plan, Alone::Audio(k))?;
            Ok(segment_of(&[track], &[nth(&ranges, n)?], n))
        }
        Name::VideoSegment(n) => {
            let (track, ranges) = alone(plan, Alone::Video)?;
            Ok(segment_of(&[track], &[nth(&ranges, n)?], n))
        }
    }
}

/// The video track, the init segment that holds it alone, and its
/// keyframes; None for a file without video.
fn video_iframes(index: &Mp4Index, plan: &Plan) -> Option<(usize, &'static str, trick::IFrames)> {
    let lead = plan.roles.main[0];
    if !index.tracks[lead].is_video() {
        return None;
    }
    let (init, ranges): (_, Vec<Range<u64>>) = if plan.roles.main.len() == 2 {
        ("init-v.mp4", alone(plan, Alone::Video).ok()?.1)
    } else {
        ("init.mp4", plan.main.iter().map(|r| r[0].clone()).collect())
    };
    Some((lead, init, trick::IFrames::of(&index.tracks[lead], &ranges)))
}

fn document_bytes(bytes: Vec<u8>) -> Output {
    Output::Document(Rc::from(bytes.into_boxed_slice()))
}

/// What an adaptation set needs to know of one track's segments.
struct SetTiming {
    times: Vec<u64>,
    bytes: Vec<u64>,
    durations: Vec<f64>,
}

fn set_timing(track: &Track, ranges: &[Range<u64>]) -> SetTiming {
    let mut times: Vec<u64> = ranges.iter().map(|r| track.time_of(r.start)).collect();
    times.extend(ranges.last().map(|r| track.time_of(r.end)));
    SetTiming {
        times,
        bytes: ranges.iter().map(|r| plan::bytes_of(track, r)).collect(),
        durations: ranges
            .iter()
            .map(|r| plan::seconds(track, r.end) - plan::seconds(track, r.start))
            .collect(),
    }
}

/// The DASH manifest over the same segment boundaries as the playlists.
/// DASH players (and ffmpeg's reader) take one track per representation, so
/// a file with video and audio lists them apart (`init-v.mp4`,
/// `seg-v-<n>.m4s`; `init-a0.mp4`, `seg-a0-<n>.m4s`); each extra audio track
/// is another adaptation set over the HLS renditions' segments.
fn manifest(
    index: &Mp4Index,
    plan: &Plan,
    texts: &[TextTrack],
    carried: &str,
) -> Result<String, MediaError> {
    // (selection, track, names' stem, init name)
    let mut parts: Vec<(usize, Vec<Range<u64>>, String, String)> = Vec::new();
    if plan.roles.main.len() == 2 {
        let (video, ranges) = alone(plan, Alone::Video)?;
        parts.push((video, ranges, "seg-v-".into(), "init-v.mp4".into()));
        let (audio, ranges) = alone(plan, Alone::Audio(0))?;
        parts.push((audio, ranges, "seg-a0-".into(), "init-a0.mp4".into()));
    } else {
        let ranges = plan.main.iter().map(|r| r[0].clone()).collect();
        parts.push((plan.roles.main[0], ranges, "seg-".into(), "init.mp4".into()));
    }
    for k in 1..=plan.roles.extra_audio.len() as u32 {
        let (audio, ranges) = alone(plan, Alone::Audio(k))?;
        parts.push((
            audio,
            ranges,
            format!("seg-a{k}-"),
            format!("init-a{k}.mp4"),
        ));
    }
    let infos: Vec<Vec<TrackInfo>> = parts
        .iter()
        .map(|(t, ..)| vec![TrackInfo::of(index, *t)])
        .collect();
    let timings: Vec<SetTiming> = parts
        .iter()
        .map(|(t, ranges, ..)| set_timing(&index.tracks[*t], ranges))
        .collect();
    let sets: Vec<dash::Set> = parts
        .iter()
        .zip(&infos)
        .zip(&timings)
        .enumerate()
        .map(|(id, (((t, _, stem, init), infos), timing))| dash::Set {
            lang: infos
                .iter()
                .find(|_| !index.tracks[*t].is_video())
                .map(|audio| audio.language.clone()),
            representations: vec![dash::Representation {
                id: id.to_string(),
                infos,
                timescale: index.tracks[*t].timescale,
                times: timing.times.clone(),
                bytes: &timing.bytes,
                durations: &timing.durations,
                frame_rate: None,
                init: format!("{init}{carried}"),
                media: format!("{stem}$Number$.m4s{carried}"),
            }],
        })
        .collect();
    Ok(dash::manifest(&sets, texts, carried, plan.duration()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_exactly() {
        assert_eq!(Name::parse("master.m3u8"), Some(Name::Master));
        assert_eq!(Name::parse("audio-2.m3u8"), Some(Name::AudioMedia(2)));
        assert_eq!(Name::parse("init-a1.mp4"), Some(Name::AudioInit(1)));
        assert_eq!(Name::parse("seg-0.m4s"), Some(Name::Segment(0)));
        assert_eq!(
            Name::parse("seg-a2-17.m4s"),
            Some(Name::AudioSegment(2, 17))
        );
        assert_eq!(Name::parse("seg-a0-3.m4s"), Some(Name::AudioSegment(0, 3)));
        assert_eq!(Name::parse("seg-v-4.m4s"), Some(Name::VideoSegment(4)));
        assert_eq!(Name::parse("init-v.mp4"), Some(Name::VideoInit));
        assert_eq!(Name::parse("iframes.m3u8"), Some(Name::IFrames));
        assert_eq!(Name::parse("iframe-12.m4s"), Some(Name::IFrame(12)));
        for bad in [
            "audio-0.m3u8",
            "init-v1.mp4",
            "seg-v1.m4s",
            "seg--1.m4s",
            "seg-+1.m4s",
            "seg-1.m4s.m4s",
            "seg-a-1.m4s",
            "seg-1234567890.m4s",
            "Master.m3u8",
            "init-a.mp4",
            "iframe--1.m4s",
            "iframes-1.m3u8",
        ] {
            assert_eq!(Name::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn clips_are_in_seconds_whatever_their_size() {
        let cut = Cut::of_query(Some("start=4000&stop=5000"), 6.0).expect("valid");
        assert_eq!((cut.clip.start, cut.clip.stop), (4000.0, 5000.0));
        assert!(Cut::of_query(Some("start=10&units=bytes"), 6.0).is_err());
        assert!(Cut::of_query(Some("start=-1"), 6.0).is_err());
        assert_eq!(
            Cut::of_query(None, 4.0).expect("valid").clip,
            Clip::default()
        );
    }

    #[test]
    fn only_paths_under_mp4_files_are_packaged() {
        assert_eq!(
            split_path("/a/film.mp4/index.m3u8"),
            Some(("/a/film.mp4", Name::Media))
        );
        assert_eq!(
            split_path("/film.m4a/init.mp4"),
            Some(("/film.m4a", Name::Init))
        );
        assert_eq!(split_path("/film.flv/index.m3u8"), None);
        assert_eq!(split_path("/dir/index.m3u8"), None);
        assert_eq!(split_path("/film.mp4/other.txt"), None);
    }
}

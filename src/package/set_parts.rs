//! The parts of a rendition set's presentation (see `urlset` for their
//! names): the multivariant playlist and the DASH manifest over every
//! rendition, a media playlist, an init segment and media segments for each
//! video rendition and each audio member. Video and audio are segmented
//! apart, so any video rendition plays with any audio member.

use std::rc::Rc;

use super::codecs::TrackInfo;
use super::hls::IFrameVariant;
use super::ladder::{Ladder, Rendition};
use super::text::{self, TextTrack};
use super::trick::{self, IFrames};
use super::urlset::SetName;
use super::{Output, dash, fmp4, hls, language, not_found, set_timing};
use crate::media::MediaError;
use crate::media::mp4::Mp4Index;

/// Which of the set's files a part's bytes come from, and the rendition.
fn rendition(ladder: &Ladder, name: SetName) -> Result<&Rendition, MediaError> {
    let (list, ordinal, what) = match name {
        SetName::VideoMedia(r)
        | SetName::VideoInit(r)
        | SetName::VideoSegment(r, _)
        | SetName::IFrames(r)
        | SetName::IFrame(r, _) => (&ladder.videos, r, "such video rendition"),
        SetName::AudioMedia(k) | SetName::AudioInit(k) | SetName::AudioSegment(k, _) => {
            (&ladder.audios, k, "such audio track")
        }
        SetName::Master | SetName::Manifest | SetName::SubtitleMedia(_) | SetName::Subtitle(_) => {
            return Err(not_found("such part"));
        }
    };
    (ordinal as usize)
        .checked_sub(1)
        .and_then(|i| list.get(i))
        .ok_or_else(|| not_found(what))
}

/// The file whose bytes the part `name` sends (its init or media segment),
/// if it is one.
pub fn file_of(ladder: &Ladder, name: SetName) -> Option<usize> {
    rendition(ladder, name).ok().map(|r| r.file)
}

/// An audio member's BCP 47 tag and name.
fn language_of(info: &TrackInfo) -> (String, String) {
    let tag = language::tag_of_iso639_2(&info.language);
    let name = language::name_of(&tag);
    (tag, name)
}

fn info_of(indexes: &[&Mp4Index], rendition: &Rendition) -> TrackInfo {
    TrackInfo::of(indexes[rendition.file], rendition.track)
}

/// Builds the part `name` of the set of `indexes` cut by `ladder`;
/// `carried` ("" or "?…") goes on every URI a playlist lists.
pub fn build(
    indexes: &[&Mp4Index],
    ladder: &Ladder,
    (name, texts): (SetName, &[TextTrack]),
    carried: &str,
) -> Result<Output, MediaError> {
    let document = |text: String| Output::Document(Rc::from(text.into_bytes().into_boxed_slice()));
    match name {
        SetName::Master => Ok(document(master(indexes, ladder, texts, carried))),
        SetName::Manifest => Ok(document(manifest(indexes, ladder, texts, carried))),
        SetName::SubtitleMedia(k) => {
            if k as usize > texts.len() {
                return Err(not_found("such subtitle track"));
            }
            Ok(document(text::hls_playlist(
                k as usize,
                ladder.duration(),
                carried,
            )))
        }
        // The worker answers with the file itself.
        SetName::Subtitle(_) => Err(not_found("such subtitle track")),
        SetName::VideoMedia(r) => {
            let video = rendition(ladder, name)?;
            Ok(document(hls::media(
                &video.durations,
                &format!("init-v{r}.mp4"),
                |n| format!("seg-v{r}-{n}.m4s"),
                carried,
            )))
        }
        SetName::AudioMedia(k) => {
            let audio = rendition(ladder, name)?;
            Ok(document(hls::media(
                &audio.durations,
                &format!("init-a{k}.mp4"),
                |n| format!("seg-a{k}-{n}.m4s"),
                carried,
            )))
        }
        SetName::IFrames(r) => {
            let video = rendition(ladder, name)?;
            Ok(document(trick::playlist(
                &iframes_of(indexes, video),
                &format!("init-v{r}.mp4"),
                |n| format!("iframe-v{r}-{n}.m4s"),
                carried,
            )))
        }
        SetName::IFrame(_, n) => {
            let video = rendition(ladder, name)?;
            let fragment = iframes_of(indexes, video)
                .fragment(indexes[video.file], video.track, n as usize)
                .ok_or_else(|| not_found("such keyframe"))?;
            Ok(Output::Segment(Rc::new(fragment)))
        }
        SetName::VideoInit(_) | SetName::AudioInit(_) => {
            let part = rendition(ladder, name)?;
            let bytes = fmp4::init_segment(indexes[part.file], &[part.track]);
            Ok(Output::Document(Rc::from(bytes.into_boxed_slice())))
        }
        SetName::VideoSegment(_, n) | SetName::AudioSegment(_, n) => {
            let part = rendition(ladder, name)?;
            let range = part
                .ranges
                .get(n as usize)
                .cloned()
                .ok_or_else(|| not_found("such segment"))?;
            Ok(Output::Segment(Rc::new(fmp4::media_segment(
                indexes[part.file],
                &[part.track],
                &[range],
                n + 1,
            ))))
        }
    }
}

fn iframes_of(indexes: &[&Mp4Index], video: &Rendition) -> IFrames {
    IFrames::of(&indexes[video.file].tracks[video.track], &video.ranges)
}

fn master(indexes: &[&Mp4Index], ladder: &Ladder, texts: &[TextTrack], carried: &str) -> String {
    let video_infos: Vec<TrackInfo> = ladder.videos.iter().map(|v| info_of(indexes, v)).collect();
    let audio_infos: Vec<TrackInfo> = ladder.audios.iter().map(|a| info_of(indexes, a)).collect();
    let variants: Vec<hls::Variant> = ladder
        .videos
        .iter()
        .zip(&video_infos)
        .enumerate()
        .map(|(i, (video, info))| {
            let (peak, average) = hls::bitrates(&video.bytes, &video.durations);
            hls::Variant {
                video: info,
                peak,
                average,
                frame_rate: video.frame_rate(indexes),
                uri: format!("index-v{}.m3u8{carried}", i + 1),
            }
        })
        .collect();
    let audios: Vec<hls::AudioMember> = ladder
        .audios
        .iter()
        .zip(&audio_infos)
        .enumerate()
        .map(|(k, (audio, info))| {
            let (peak, average) = hls::bitrates(&audio.bytes, &audio.durations);
            let (language, name) = language_of(info);
            hls::AudioMember {
                info,
                peak,
                average,
                language,
                name,
                default: k == 0,
                uri: format!("index-a{}.m3u8{carried}", k + 1),
            }
        })
        .collect();
    let frames: Vec<IFrames> = ladder
        .videos
        .iter()
        .map(|v| iframes_of(indexes, v))
        .collect();
    let iframes: Vec<IFrameVariant> = ladder
        .videos
        .iter()
        .zip(&video_infos)
        .zip(&frames)
        .enumerate()
        .map(|(i, ((video, info), frames))| IFrameVariant {
            video: info,
            frames,
            head: trick::head_bytes(indexes[video.file], video.track, frames),
            uri: format!("iframes-v{}.m3u8{carried}", i + 1),
        })
        .collect();
    hls::multivariant(&variants, &audios, (texts, &iframes), carried)
}

/// One video adaptation set with a representation per rendition, and an
/// audio adaptation set per audio member (each with its language).
fn manifest(indexes: &[&Mp4Index], ladder: &Ladder, texts: &[TextTrack], carried: &str) -> String {
    let infos: Vec<Vec<TrackInfo>> = ladder
        .videos
        .iter()
        .chain(&ladder.audios)
        .map(|r| vec![info_of(indexes, r)])
        .collect();
    let timings: Vec<_> = ladder
        .videos
        .iter()
        .chain(&ladder.audios)
        .map(|r| set_timing(&indexes[r.file].tracks[r.track], &r.ranges))
        .collect();
    let representation = |i: usize, rendition: &Rendition, id: String, stem: String| {
        let timing = &timings[i];
        dash::Representation {
            id,
            infos: &infos[i],
            timescale: indexes[rendition.file].tracks[rendition.track].timescale,
            times: timing.times.clone(),
            bytes: &timing.bytes,
            durations: &timing.durations,
            frame_rate: indexes[rendition.file].tracks[rendition.track]
                .is_video()
                .then(|| rendition.frame_rate(indexes)),
            init: format!("init-{stem}.mp4{carried}"),
            media: format!("seg-{stem}-$Number$.m4s{carried}"),
        }
    };
    let mut sets = vec![dash::Set {
        lang: None,
        representations: ladder
            .videos
            .iter()
            .enumerate()
            .map(|(r, video)| {
                representation(r, video, format!("v{}", r + 1), format!("v{}", r + 1))
            })
            .collect(),
    }];
    let videos = ladder.videos.len();
    for (k, audio) in ladder.audios.iter().enumerate() {
        sets.push(dash::Set {
            lang: Some(language_of(&infos[videos + k][0]).0),
            representations: vec![representation(
                videos + k,
                audio,
                format!("a{}", k + 1),
                format!("a{}", k + 1),
            )],
        });
    }
    dash::manifest(&sets, texts, carried, ladder.duration())
}

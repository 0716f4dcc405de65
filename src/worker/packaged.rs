//! The content phase for packaged URLs (`/film.mp4/master.m3u8`,
//! `/film.mp4/seg-3.m4s`, …): the media file is opened and indexed as for
//! a seek, its presentation planned (cached), then the playlist, manifest or
//! init segment is answered from memory and a media segment from the file.

use std::rc::Rc;

use super::context::{Context, Reply};
use super::packaged_answer::{self, PackagedAnswer, answer, logged_refusal};
use super::subtitle_files;
use crate::access::Grant;
use crate::http::Refusal;
use crate::http::target::Target;
use crate::media::{FileSource, MediaError};
use crate::package::plan::Plan;
use crate::package::text::TextTrack;
use crate::package::{self, Cut, Name, Output, PackageKey};
use crate::route::{self, VirtualHost};

/// Answers `name` of the MP4 file at `media_path` (the routed `target`
/// names both).
pub fn serve(
    context: &mut Context,
    vhost: &VirtualHost,
    (target, media_path, name): (Target, &str, Name),
    grant: &Grant,
) -> Result<Reply, Refusal> {
    let site = context.site;
    let slot = context.slot;
    let file = route::open_target(
        &mut context.caches.open_files,
        &site.mimes,
        vhost,
        media_path,
    )?;
    let opened = &file.opened;
    let texts = if name.lists_subtitles() {
        subtitle_files::load(context, vhost, opened.folder, &file.relative)
    } else {
        Vec::new()
    };
    if let Name::Subtitle(k) = name {
        return subtitle_files::answer(context, vhost, grant, &texts, k);
    }
    let caches = &mut *context.caches;
    let folder = &vhost.folders[opened.folder].path;
    let file_path = format!(
        "{}/{}",
        folder.display(),
        String::from_utf8_lossy(&file.relative)
    );
    let failed = |e: MediaError| logged_refusal(&file_path, &e);
    let cut = Cut::of_query(target.query, vhost.segment_seconds).map_err(&failed)?;
    let source = FileSource {
        file: &opened.handle,
        size: opened.identity.size,
        name: &file_path,
    };
    let identity = opened.identity;
    let index = caches
        .media
        .mp4_index(&source, identity, slot)
        .map_err(&failed)?;
    let plan = match caches
        .media
        .packaged(identity, PackageKey::Plan(cut.key()), || {
            Plan::build(&index, cut.clip, cut.segment_seconds).map(|p| Output::Plan(Rc::new(p)))
        })
        .map_err(&failed)?
    {
        Output::Plan(plan) => plan,
        _ => {
            return Err(failed(MediaError::Broken(
                "cache entry of the wrong kind".into(),
            )));
        }
    };
    // Playlists carry the request's own arguments (a signed link's token,
    // the clip) into every URI they list.
    let carried = packaged_answer::carried_query(context.target.query);
    let key = if name.is_segment() || name.is_init() {
        PackageKey::Segment(cut.key(), name)
    } else {
        PackageKey::Document(
            cut.key(),
            name,
            subtitle_files::documents_hash(&carried, &texts),
        )
    };
    let tracks: Vec<TextTrack> = texts.iter().map(|t| t.track.clone()).collect();
    let output = caches
        .media
        .packaged(identity, key, || {
            package::build(&index, &plan, (name, &tracks), &carried)
        })
        .map_err(&failed)?;
    let audio_only = !index.tracks[plan.roles.main[0]].is_video();
    // The ETag: the file's, then what was cut from it and how; a playlist's
    // also depends on the arguments it carries.
    let cut_key = cut.key();
    let carried_tag = match key {
        PackageKey::Document(_, _, hash) => format!("-q{hash:x}"),
        _ => String::new(),
    };
    let etag = format!(
        "{}-{}-{}-{}-{}{carried_tag}\"",
        opened.etag.trim_end_matches('"'),
        name_tag(name),
        cut_key.start_ms,
        cut_key.stop_ms,
        cut_key.segment_ms
    );
    answer(
        context,
        vhost,
        grant,
        PackagedAnswer {
            validators: opened,
            source: opened,
            etag: &etag,
            content_type: name.content_type(audio_only),
            kind: name.kind(),
            output,
        },
    )
}

/// The part of an ETag that tells a presentation's answers apart.
fn name_tag(name: Name) -> String {
    match name {
        Name::Master => "master".into(),
        Name::Media => "index".into(),
        Name::AudioMedia(k) => format!("audio{k}"),
        Name::Manifest => "mpd".into(),
        Name::Init => "init".into(),
        Name::AudioInit(k) => format!("init{k}"),
        Name::Segment(n) => format!("s{n}"),
        Name::AudioSegment(k, n) => format!("a{k}s{n}"),
        Name::VideoInit => "initv".into(),
        Name::VideoSegment(n) => format!("vs{n}"),
        Name::SubtitleMedia(k) => format!("is{k}"),
        Name::Subtitle(k) => format!("t{k}"),
        Name::IFrames => "iframes".into(),
        Name::IFrame(n) => format!("f{n}"),
    }
}

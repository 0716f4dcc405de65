//! The content phase for packaged URLs (`/film.mp4/master.m3u8`,
//! `/film.mp4/seg-3.m4s`, …): the media file is opened and indexed as for
//! a seek, its presentation planned (cached), then the playlist, manifest or
//! init segment is answered from memory and a media segment from the file.

use std::rc::Rc;

use super::context::{Context, Reply};
use super::file_head::{FileAnswer, Head, answer_head};
use super::representation::refusal_of;
use crate::access::Grant;
use crate::files::OpenFile;
use crate::http::target::Target;
use crate::http::{Refusal, Status};
use crate::media::{FileSource, MediaError};
use crate::package::plan::Plan;
use crate::package::{self, Cut, Kind, Name, Output, PackageKey};
use crate::route::{self, VirtualHost};
use crate::stats::StatsSlot;
use crate::stream::Stream;

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
    let caches = &mut *context.caches;
    let file = route::open_target(&mut caches.open_files, &site.mimes, vhost, media_path)?;
    let opened = &file.opened;
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
    let carried = context
        .target
        .query
        .filter(|q| !q.is_empty())
        .map_or_else(String::new, |q| format!("?{q}"));
    let key = if name.is_segment() || name.is_init() {
        PackageKey::Segment(cut.key(), name)
    } else {
        PackageKey::Document(cut.key(), name, package::query_hash(&carried))
    };
    let output = caches
        .media
        .packaged(identity, key, || {
            package::build(&index, &plan, name, &carried)
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

/// A packaged answer ready to go out.
pub struct PackagedAnswer<'a> {
    /// The file whose Last-Modified the answer carries.
    pub validators: &'a Rc<OpenFile>,
    /// The file a media segment's bytes come from.
    pub source: &'a Rc<OpenFile>,
    pub etag: &'a str,
    pub content_type: &'static str,
    pub kind: Kind,
    pub output: Output,
}

/// The headers phase and the body of a packaged answer: a document from
/// memory (the Range asked of it), a media segment from its file. Counts it
/// by kind.
pub fn answer(
    context: &mut Context,
    vhost: &VirtualHost,
    grant: &Grant,
    answer: PackagedAnswer,
) -> Result<Reply, Refusal> {
    let slot = context.slot;
    let kind = answer.kind as usize;
    let size = match &answer.output {
        Output::Document(bytes) => bytes.len() as u64,
        Output::Segment(segment) => segment.len(),
        Output::Plan(_) | Output::Ladder(_) => 0,
    };
    StatsSlot::add(&slot.packaged[kind], 1);
    let head = answer_head(
        context,
        vhost,
        grant,
        FileAnswer {
            opened: answer.validators,
            etag: answer.etag,
            content_type: answer.content_type,
            size,
        },
    )?;
    let (status, first, end) = match head {
        Head::Done(status) => return Ok(context.bodiless(status)),
        Head::Body { status, first, end } => (status, first, end),
    };
    let keep_alive = context.keep_alive;
    match answer.output {
        Output::Document(bytes) => {
            context
                .out
                .extend_from_slice(&bytes[first as usize..end as usize]);
            StatsSlot::add(&slot.packaged_bytes[kind], end - first);
            Ok(Reply {
                status,
                body: None,
                keep_alive,
            })
        }
        Output::Segment(segment) => Ok(Reply {
            status,
            body: Some(Stream::segment(
                Rc::clone(answer.source),
                segment,
                first,
                end,
                &vhost.pacing,
            )),
            keep_alive,
        }),
        Output::Plan(_) | Output::Ladder(_) => Err(Refusal::new(
            Status::INTERNAL_ERROR,
            "The presentation could not be built.",
        )),
    }
}

/// Logs what a packaging failure's status calls for (a damaged file as an
/// error, a set that does not fit as a warning) and returns its refusal.
pub fn logged_refusal(what: &dyn std::fmt::Display, e: &MediaError) -> Refusal {
    let refusal = refusal_of(e);
    if refusal.status == Status::INTERNAL_ERROR {
        log::error!("{what}: {e}");
    } else if refusal.status == Status::CONFLICT {
        log::warn!("{what}: {e}");
    }
    refusal
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
    }
}

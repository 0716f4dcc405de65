//! The content phase for a rendition set's URLs
//! (`/films/film_,360,720,.mp4.urlset/master.m3u8`, see `package::urlset`):
//! each file the set names is opened through the sandbox like a plain
//! request's and indexed (cached), the set cut into a ladder (cached, by the
//! files' identities), then a playlist, the manifest or an init segment is
//! answered from memory and a media segment from its file by sendfile.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::rc::Rc;

use super::context::{Context, Reply};
use super::packaged_answer::{self, PackagedAnswer, logged_refusal};
use super::representation::refusal_of;
use super::subtitle_files;
use crate::access::Grant;
use crate::files::OpenFile;
use crate::http::target::Target;
use crate::http::{Refusal, Status};
use crate::media::mp4::Mp4Index;
use crate::media::{FileSource, MediaError, MediaKind};
use crate::package::ladder::{self, LadderError};
use crate::package::text::TextTrack;
use crate::package::urlset::{SetName, UrlSet};
use crate::package::{Cut, Output, PackageKey, set_parts};
use crate::route::{self, VirtualHost};
use crate::stats::StatsSlot;

/// One file of the set: what the sandbox opened and its index.
struct Member {
    path: String,
    /// Its path relative to its folder.
    relative: Vec<u8>,
    opened: Rc<OpenFile>,
    index: Rc<Mp4Index>,
}

/// Answers `name` of the set `set` (the routed `target` names both).
pub fn serve(
    context: &mut Context,
    vhost: &VirtualHost,
    (target, set, name): (Target, UrlSet, SetName),
    grant: &Grant,
) -> Result<Reply, Refusal> {
    let slot = context.slot;
    let members = open_members(context, vhost, &set)?;
    // Subtitles lie beside the first file, named after it.
    let texts = if name.lists_subtitles() {
        let first = &members[0];
        subtitle_files::load(context, vhost, first.opened.folder, &first.relative)
    } else {
        Vec::new()
    };
    if let SetName::Subtitle(k) = name {
        return subtitle_files::answer(context, vhost, grant, &texts, k);
    }
    let caches = &mut *context.caches;
    let cut = Cut::of_query(target.query, vhost.segment_seconds).map_err(|e| refusal_of(&e))?;
    let set_hash = identity_hash(&members);
    let first = members[0].opened.identity;
    let indexes: Vec<&Mp4Index> = members.iter().map(|m| &*m.index).collect();
    let failed = |e: MediaError| logged_refusal(&set.path, &e);
    let ladder = match caches
        .media
        .packaged(first, PackageKey::Ladder(set_hash, cut.key()), || {
            ladder::build(&indexes, cut.clip, cut.segment_seconds)
                .map(|l| Output::Ladder(Rc::new(l)))
                .map_err(|e| named(e, &members))
        })
        .map_err(&failed)?
    {
        Output::Ladder(ladder) => ladder,
        _ => {
            return Err(failed(MediaError::Broken(
                "cache entry of the wrong kind".into(),
            )));
        }
    };
    // Playlists carry the request's own arguments (a signed link's token,
    // the clip) into every URI they list.
    let carried = packaged_answer::carried_query(context.target.query);
    let query_hash = if name.is_media() {
        0
    } else {
        subtitle_files::documents_hash(&carried, &texts)
    };
    let tracks: Vec<TextTrack> = texts.iter().map(|t| t.track.clone()).collect();
    let key = PackageKey::SetPart(set_hash, cut.key(), name, query_hash);
    let output = caches
        .media
        .packaged(first, key, || {
            set_parts::build(&indexes, &ladder, (name, &tracks), &carried)
        })
        .map_err(&failed)?;
    let cut_key = cut.key();
    let carried_tag = if name.is_media() {
        String::new()
    } else {
        format!("-q{query_hash:x}")
    };
    let etag = format!(
        "\"set{set_hash:x}-{}-{}-{}-{}{carried_tag}\"",
        name.tag(),
        cut_key.start_ms,
        cut_key.stop_ms,
        cut_key.segment_ms
    );
    StatsSlot::add(&slot.set_requests[name.kind() as usize], 1);
    // Validators: the set changes when any file does; Last-Modified is
    // the newest file's.
    let newest = members
        .iter()
        .max_by_key(|m| (m.opened.identity.modified, m.opened.identity.modified_nanos))
        .map_or(&members[0].opened, |m| &m.opened);
    // A media segment's bytes come from its rendition's file.
    let source = set_parts::file_of(&ladder, name)
        .and_then(|f| members.get(f))
        .map_or(newest, |m| &m.opened);
    packaged_answer::answer(
        context,
        vhost,
        grant,
        PackagedAnswer {
            validators: newest,
            source,
            etag: &etag,
            content_type: name.content_type(),
            kind: name.kind(),
            output,
        },
    )
}

/// Opens and indexes every file of the set, in order: the first refusal
/// (a path the sandbox refuses, a missing file, one that is no MP4, one
/// that cannot be indexed) answers for the set, naming the file.
fn open_members(
    context: &mut Context,
    vhost: &VirtualHost,
    set: &UrlSet,
) -> Result<Vec<Member>, Refusal> {
    let site = context.site;
    let slot = context.slot;
    let caches = &mut *context.caches;
    let mut members = Vec::with_capacity(set.parts.len());
    for path in set.file_paths() {
        let naming =
            |refusal: Refusal| Refusal::new(refusal.status, format!("{} ({path})", refusal.detail));
        if MediaKind::of_path(path.as_bytes()) != Some(MediaKind::Mp4) {
            return Err(Refusal::new(
                Status::NOT_FOUND,
                format!("A set's files are MP4 files ({path})."),
            ));
        }
        let file = route::open_target(&mut caches.open_files, &site.mimes, vhost, &path)
            .map_err(naming)?;
        let opened = file.opened;
        let file_path = format!(
            "{}/{}",
            vhost.folders[opened.folder].path.display(),
            String::from_utf8_lossy(&file.relative)
        );
        let source = FileSource {
            file: &opened.handle,
            size: opened.identity.size,
            name: &file_path,
        };
        let index = caches
            .media
            .mp4_index(&source, opened.identity, slot)
            .map_err(|e| naming(logged_refusal(&file_path, &e)))?;
        members.push(Member {
            path,
            relative: file.relative,
            opened,
            index,
        });
    }
    Ok(members)
}

/// A set's cache key: its files' identities, in order.
fn identity_hash(members: &[Member]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for member in members {
        member.opened.identity.hash(&mut hasher);
    }
    hasher.finish()
}

/// A ladder's error as a media error whose message names the file.
fn named(error: LadderError, members: &[Member]) -> MediaError {
    let path = |file: usize| members.get(file).map_or("?", |m| m.path.as_str());
    match error {
        LadderError::Conflict(file, reason) => {
            MediaError::Conflict(format!("{} {reason}.", path(file)))
        }
        LadderError::File(file, e) => {
            let message = format!("{}: {e}", path(file));
            match e {
                MediaError::Broken(_) => MediaError::Broken(message),
                MediaError::Unsupported(_) => MediaError::Unsupported(message),
                MediaError::BadSeek(_) => MediaError::BadSeek(message),
                MediaError::Io(_) => MediaError::Io(message),
                MediaError::NotFound(_) => MediaError::NotFound(message),
                MediaError::Conflict(_) => MediaError::Conflict(message),
            }
        }
    }
}

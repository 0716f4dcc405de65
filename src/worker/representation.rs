//! The content phase's media step: what a file request is served as — the
//! file itself, or, with seek arguments on an FLV or MP4 file, the prepared
//! body of the seek (from the worker's media cache).

use std::borrow::Cow;
use std::path::Path;
use std::rc::Rc;

use crate::cache::MediaCache;
use crate::files::OpenFile;
use crate::http::Status;
use crate::http::refusal::Refusal;
use crate::media::{FileSource, MediaError, MediaKind, Prepared, SeekMode, query};
use crate::stats::StatsSlot;

/// The body a response is about.
pub struct Representation<'a> {
    /// The file's ETag, or for a seek the file's with the arguments appended.
    pub etag: Cow<'a, str>,
    /// The seek's prepared body, when seek arguments were given.
    pub prepared: Option<Rc<Prepared>>,
    /// Length of the whole body.
    pub size: u64,
}

/// What `relative` (opened as `file`, in `folder`) is served as, given the
/// request's `query`. Bad seek arguments are 400, unseekable files 501, and
/// damaged ones a logged 500.
pub fn prepare<'a>(
    cache: &mut MediaCache,
    file: &'a OpenFile,
    relative: &[u8],
    query: Option<&str>,
    mode: SeekMode,
    slot: &StatsSlot,
    folder: &Path,
) -> Result<Representation<'a>, Refusal> {
    let plain = Representation {
        etag: Cow::Borrowed(file.etag.as_str()),
        prepared: None,
        size: file.identity.size,
    };
    let Some((query, kind)) = query.zip(MediaKind::of_path(relative)) else {
        return Ok(plain);
    };
    let seek = match query::parse(query) {
        Ok(Some(seek)) => seek,
        Ok(None) => return Ok(plain),
        Err(e) => return Err(Refusal::new(Status::BAD_REQUEST, e.0)),
    };
    let name = format!("{}/{}", folder.display(), String::from_utf8_lossy(relative));
    let source = FileSource {
        file: &file.handle,
        size: file.identity.size,
        name: &name,
    };
    match cache.prepare(&source, file.identity, kind, &seek, mode, slot) {
        // The seek arguments are part of the representation's identity.
        Ok(prepared) => Ok(Representation {
            etag: Cow::Owned(format!("{}-{seek}\"", file.etag.trim_end_matches('"'))),
            size: prepared.len(),
            prepared: Some(prepared),
        }),
        Err(e) => {
            let refusal = refusal_of(&e);
            if refusal.status == Status::INTERNAL_ERROR {
                log::error!("{name}: {e}");
            }
            Err(refusal)
        }
    }
}

/// The status and page text for a media error. Damage is logged by the
/// caller with the file's path; the client gets no internals.
pub fn refusal_of(error: &MediaError) -> Refusal {
    match error {
        MediaError::NotFound(message) => Refusal::new(Status::NOT_FOUND, message.clone()),
        MediaError::Conflict(message) => Refusal::new(Status::CONFLICT, message.clone()),
        MediaError::BadSeek(message) => Refusal::new(Status::BAD_REQUEST, message.clone()),
        MediaError::Unsupported(message) => Refusal::new(
            Status::NOT_IMPLEMENTED,
            format!("This file cannot be seeked: {message}."),
        ),
        MediaError::Broken(_) | MediaError::Io(_) => Refusal::new(
            Status::INTERNAL_ERROR,
            "The media file is damaged or unreadable, so it cannot be seeked; the server log says why.",
        ),
    }
}

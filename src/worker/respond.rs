//! Turns a parsed request into a response: the head bytes and, for files, the
//! byte range to send. Decides every status; does no socket I/O.

use std::borrow::Cow;
use std::rc::Rc;

use crate::cache::MediaCache;
use crate::http::conditional::{self, Validators};
use crate::http::range::{self, RangeOutcome};
use crate::http::response::{self, ALLOWED_METHODS};
use crate::http::{Method, Request, Status};
use crate::media::{FileSource, MediaError, MediaKind, Prepared, query};
use crate::options::{MimeTable, Options};
use crate::route::open_files::{OpenFile, OpenFiles};
use crate::route::vhost::VirtualHost;
use crate::route::{VirtualHosts, sandbox};
use crate::stats::StatsSlot;
use crate::stats::columns::UNKNOWN_HOST;
use crate::stream::{Pace, Stream};

/// What a worker serves: the validated options and what was compiled from them.
pub struct Site {
    pub options: Options,
    pub vhosts: VirtualHosts,
    pub mimes: MimeTable,
    /// The counters' column of each virtual host and of its folder, by host
    /// index (named in the shared region by the master).
    pub host_columns: Vec<usize>,
    pub folder_columns: Vec<usize>,
}

/// Where a request went, for the counters: its host's and folder's columns.
#[derive(Clone, Copy, Debug, Default)]
pub struct Routed {
    pub host: usize,
    /// Set when a file of the folder answered (200, 206, 304, 416).
    pub folder: Option<usize>,
}

/// What a worker keeps between requests.
pub struct Caches {
    pub open_files: OpenFiles,
    pub media: MediaCache,
}

/// The decisions about a response; its head is already in the output buffer.
pub struct Reply {
    pub status: Status,
    pub body: Option<Stream>,
    /// Whether the connection stays open afterwards (as the head says).
    pub keep_alive: bool,
}

/// Builds the response to `request` into `out`. `keep_alive` is whether the
/// connection may stay open (the client's wish, unless we are draining).
#[allow(clippy::too_many_arguments)]
pub fn respond(
    site: &Site,
    caches: &mut Caches,
    slot: &StatsSlot,
    request: &Request,
    keep_alive: bool,
    date: &str,
    out: &mut Vec<u8>,
    routed: &mut Routed,
) -> Reply {
    // Server selection comes first, so that every answer counts for its host.
    let host = request.host.as_deref().unwrap_or("");
    let selected = site.vhosts.select(host);
    if let Some(vhost) = selected {
        routed.host = site
            .host_columns
            .get(vhost.index)
            .copied()
            .unwrap_or(UNKNOWN_HOST);
    }
    let head_only = match request.method() {
        Method::Get => false,
        Method::Head => true,
        Method::Options => {
            response::start(out, Status::OK, date);
            response::header(out, "Allow", ALLOWED_METHODS);
            response::header(out, "Content-Length", 0);
            response::finish(out, keep_alive, request.minor_version);
            return Reply {
                status: Status::OK,
                body: None,
                keep_alive,
            };
        }
        Method::Other(_) => {
            return error(
                out,
                date,
                request,
                keep_alive,
                Status::METHOD_NOT_ALLOWED,
                "This method is not allowed.",
            );
        }
    };
    let err = |out: &mut Vec<u8>, status: Status, detail: &str| {
        let mut reply = error(out, date, request, keep_alive, status, detail);
        if head_only {
            // HEAD gets GET's headers without the page.
            let body_start = out
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(out.len(), |p| p + 4);
            out.truncate(body_start);
            reply.body = None;
        }
        reply
    };
    let Some(vhost) = selected else {
        return err(
            out,
            Status::NOT_FOUND,
            &format!("Host \"{host}\" is unknown."),
        );
    };
    let folder = site.folder_columns.get(vhost.index).copied();
    let relative = match sandbox::relative_path(sandbox::path_of(&request.target)) {
        Ok(relative) => relative,
        Err(refusal) => return err(out, refusal.status, refusal.detail),
    };
    let opened = match caches.open_files.open(vhost, &relative) {
        Ok(opened) => opened,
        Err(refusal) => return err(out, refusal.status, refusal.detail),
    };
    let Some(content_type) = site.mimes.lookup(&relative) else {
        return err(out, Status::NOT_FOUND, "Files of this type are not served.");
    };
    // A media file with seek arguments is served as the prepared (virtual) body.
    let seek = match sandbox::query_of(&request.target).zip(MediaKind::of_path(&relative)) {
        Some((query, kind)) => match query::parse(query) {
            Ok(seek) => seek.map(|seek| (kind, seek)),
            Err(e) => return err(out, Status::BAD_REQUEST, &e.0),
        },
        None => None,
    };
    let (etag, prepared) = match seek {
        None => (Cow::Borrowed(opened.etag.as_str()), None),
        Some((kind, seek)) => {
            let source = FileSource {
                file: &opened.handle,
                size: opened.identity.size,
            };
            match caches.media.prepare(
                &source,
                opened.identity,
                kind,
                &seek,
                site.options.seek,
                slot,
            ) {
                // The seek arguments are part of the representation's identity.
                Ok(prepared) => (
                    Cow::Owned(format!("{}-{seek}\"", opened.etag.trim_end_matches('"'))),
                    Some(prepared),
                ),
                Err(e) => {
                    let (status, detail) = media_error_status(&e);
                    if status == Status::INTERNAL_ERROR {
                        log::error!(
                            "{}/{}: {e}",
                            vhost.folder.display(),
                            String::from_utf8_lossy(&relative)
                        );
                    }
                    return err(out, status, &detail);
                }
            }
        }
    };
    // From here on a file of the folder answers.
    routed.folder = folder;
    let validators = Validators {
        etag: &etag,
        modified: opened.identity.modified,
    };
    if conditional::is_not_modified(
        request.if_none_match.as_deref(),
        request.if_modified_since.as_deref(),
        &validators,
    ) {
        response::start(out, Status::NOT_MODIFIED, date);
        response::header(out, "Last-Modified", &opened.last_modified);
        response::header(out, "ETag", &etag);
        response::finish(out, keep_alive, request.minor_version);
        return Reply {
            status: Status::NOT_MODIFIED,
            body: None,
            keep_alive,
        };
    }
    let size = prepared.as_ref().map_or(opened.identity.size, |p| p.len());
    let wanted = match &request.range {
        Some(range)
            if request
                .if_range
                .as_deref()
                .is_none_or(|v| conditional::if_range_matches(v, &validators)) =>
        {
            range::evaluate(range, size)
        }
        _ => RangeOutcome::Full,
    };
    let (status, first, end) = match wanted {
        RangeOutcome::Full => (Status::OK, 0, size),
        RangeOutcome::Partial { first, last } => (Status::PARTIAL_CONTENT, first, last + 1),
        RangeOutcome::Unsatisfiable => {
            let page = response::error_page(
                Status::RANGE_NOT_SATISFIABLE,
                &request.target,
                "The range is outside the file.",
            );
            response::start(out, Status::RANGE_NOT_SATISFIABLE, date);
            response::header(out, "Content-Type", "text/html; charset=utf-8");
            response::header(out, "Content-Length", page.len());
            response::header(out, "Content-Range", format_args!("bytes */{size}"));
            response::finish(out, keep_alive, request.minor_version);
            if !head_only {
                out.extend_from_slice(page.as_bytes());
            }
            return Reply {
                status: Status::RANGE_NOT_SATISFIABLE,
                body: None,
                keep_alive,
            };
        }
    };
    response::start(out, status, date);
    response::header(out, "Content-Type", content_type);
    response::header(out, "Content-Length", end - first);
    if status == Status::PARTIAL_CONTENT {
        response::header(
            out,
            "Content-Range",
            format_args!("bytes {first}-{}/{size}", end - 1),
        );
    }
    response::header(out, "Last-Modified", &opened.last_modified);
    response::header(out, "ETag", &etag);
    response::header(out, "Accept-Ranges", "bytes");
    response::finish(out, keep_alive, request.minor_version);
    if head_only || first == end {
        return Reply {
            status,
            body: None,
            keep_alive,
        };
    }
    let body = Some(stream_of(
        vhost, caches, slot, &relative, opened, prepared, first, end,
    ));
    Reply {
        status,
        body,
        keep_alive,
    }
}

/// The body of a response covering bytes `[first, end)`, with its pace:
/// on the media timeline when the body has an honest one and is long enough,
/// else at the host's constant rate, if any.
#[allow(clippy::too_many_arguments)]
fn stream_of(
    vhost: &VirtualHost,
    caches: &mut Caches,
    slot: &StatsSlot,
    relative: &[u8],
    opened: Rc<OpenFile>,
    prepared: Option<Rc<Prepared>>,
    first: u64,
    end: u64,
) -> Stream {
    let pacing = &vhost.pacing;
    let wants_timeline = Pace::wants_timeline(pacing, end - first);
    match prepared {
        Some(prepared) => {
            let timeline = wants_timeline.then(|| prepared.timeline.clone());
            let pace = Pace::choose(pacing, timeline, first, end);
            Stream::prepared(opened, prepared, first, end, pace, pacing)
        }
        None => {
            // A plain media file is indexed (once; the cache keeps it) to be paced.
            let timeline = MediaKind::of_path(relative)
                .filter(|_| wants_timeline)
                .and_then(|kind| {
                    let source = FileSource {
                        file: &opened.handle,
                        size: opened.identity.size,
                    };
                    caches
                        .media
                        .whole_file_timeline(&source, opened.identity, kind, slot)
                })
                .filter(|(_, honest_from)| first >= *honest_from)
                .map(|(timeline, _)| timeline);
            let pace = Pace::choose(pacing, timeline, first, end);
            Stream::plain(opened, first, end, pace, pacing)
        }
    }
}

/// The status and page text for a media error. Damage is logged by the caller
/// with the file's path; the client gets no internals.
fn media_error_status(error: &MediaError) -> (Status, String) {
    match error {
        MediaError::BadSeek(message) => (Status::BAD_REQUEST, message.clone()),
        MediaError::Unsupported(message) => (Status::NOT_IMPLEMENTED, format!("This file cannot be seeked: {message}.")),
        MediaError::Broken(_) | MediaError::Io(_) => (
            Status::INTERNAL_ERROR,
            "The media file is damaged or unreadable, so it cannot be seeked; the server log says why.".to_string(),
        ),
    }
}

/// An error response with a small HTML page.
pub fn error(
    out: &mut Vec<u8>,
    date: &str,
    request: &Request,
    keep_alive: bool,
    status: Status,
    detail: &str,
) -> Reply {
    error_page_reply(
        out,
        date,
        &request.target,
        keep_alive,
        request.minor_version,
        status,
        detail,
    )
}

/// An error response for a request that could not be parsed (so it has no target or version).
pub fn error_page_reply(
    out: &mut Vec<u8>,
    date: &str,
    target: &str,
    keep_alive: bool,
    minor_version: u8,
    status: Status,
    detail: &str,
) -> Reply {
    let page = response::error_page(status, target, detail);
    response::start(out, status, date);
    response::header(out, "Content-Type", "text/html; charset=utf-8");
    response::header(out, "Content-Length", page.len());
    if status == Status::METHOD_NOT_ALLOWED {
        response::header(out, "Allow", ALLOWED_METHODS);
    }
    if status == Status::SERVICE_UNAVAILABLE {
        response::header(out, "Retry-After", RETRY_AFTER_SECS);
    }
    response::finish(out, keep_alive, minor_version);
    out.extend_from_slice(page.as_bytes());
    Reply {
        status,
        body: None,
        keep_alive,
    }
}

/// The Retry-After of a 503 for a full server.
pub const RETRY_AFTER_SECS: u32 = 5;

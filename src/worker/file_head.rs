//! The headers phase of an answer from a file (the file itself, a seek
//! into it, or something packaged from it): caching headers, 304 for a
//! fresh validator, the range, and the head written into the context's
//! output.

use std::rc::Rc;

use super::context::Context;
use crate::access::Grant;
use crate::files::OpenFile;
use crate::http::conditional::{self, Validators};
use crate::http::range;
use crate::http::response::{self, FileHead};
use crate::http::{Refusal, Status};
use crate::route::VirtualHost;

/// What a file-backed answer is about, for its head.
pub struct FileAnswer<'a> {
    pub opened: &'a Rc<OpenFile>,
    pub etag: &'a str,
    pub content_type: &'a str,
    /// Length of the whole representation.
    pub size: u64,
}

/// After [`answer_head`]: the answer is complete (with this status and no
/// body), or its body range follows.
pub enum Head {
    Done(Status),
    Body {
        status: Status,
        first: u64,
        end: u64,
    },
}

/// Writes the head of `file`'s answer from `vhost` into `context.out`.
pub fn answer_head(
    context: &mut Context,
    vhost: &VirtualHost,
    grant: &Grant,
    file: FileAnswer,
) -> Result<Head, Refusal> {
    let request = context.request;
    let opened = file.opened;
    // From here on a file of the folder answers.
    context.routed.folder = context.site.folder_column(vhost, opened.folder);
    let validators = Validators {
        etag: file.etag,
        modified: opened.identity.modified,
    };
    let keep_alive = context.keep_alive;
    let now = context.now;
    // The headers phase: CORS (already in the context's headers) and caching.
    let mut extra_headers = context.extra_headers.clone();
    context.site.access_of(vhost).expires.write_headers(
        file.content_type,
        grant.signed,
        now.unix,
        &mut extra_headers,
    );
    let out = &mut *context.out;
    if conditional::is_not_modified(
        request.if_none_match.as_deref(),
        request.if_modified_since.as_deref(),
        &validators,
    ) {
        response::start(out, Status::NOT_MODIFIED, now.date);
        response::header(out, "Last-Modified", &opened.last_modified);
        response::header(out, "ETag", file.etag);
        out.extend_from_slice(&extra_headers);
        response::finish(out, keep_alive, request.minor_version);
        return Ok(Head::Done(Status::NOT_MODIFIED));
    }
    let (status, first, end) = range::select(request, &validators, file.size)?;
    FileHead {
        status,
        date: now.date,
        content_type: file.content_type,
        first,
        end,
        size: file.size,
        last_modified: &opened.last_modified,
        etag: file.etag,
        keep_alive,
        minor_version: request.minor_version,
        extra_headers: &extra_headers,
    }
    .write(out);
    if context.head_only || first == end {
        return Ok(Head::Done(status));
    }
    Ok(Head::Body { status, first, end })
}

//! The request being answered, as one value every phase is handed (what
//! nginx calls `ngx_http_request_t`): the site, the worker's caches, the
//! parsed request, its client, its time, the output buffer the head is
//! written into, and what it has been routed to so far. Also the reply a
//! phase ends with, and the answers that need no file (refusals,
//! redirects, bodiless heads).

use crate::access::Client;
use crate::cache::MediaCache;
use crate::files::OpenFiles;
use crate::http::response::{self, ALLOWED_METHODS};
use crate::http::target::Target;
use crate::http::{Refusal, Request, Status};
use crate::stats::StatsSlot;
use crate::stream::Stream;

use super::site::Site;

/// The time a response is made at: Unix seconds and as an HTTP date.
#[derive(Clone, Copy)]
pub struct Now<'a> {
    pub unix: i64,
    pub date: &'a str,
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
    /// Numbers this worker's hinted streams, for their owner tags.
    pub stream_serial: u64,
}

/// The decisions about a response; its head is already in the output buffer.
pub struct Reply {
    pub status: Status,
    pub body: Option<Stream>,
    /// Whether the connection stays open afterwards (as the head says).
    pub keep_alive: bool,
}

/// What a request's TLS connection was made with.
#[derive(Clone, Copy, Debug)]
pub struct TlsInfo {
    /// The index of the certificate its SNI chose (see `tls::TlsSite`).
    pub certificate: usize,
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: &'static str,
}

/// One request being answered.
pub struct Context<'a> {
    pub site: &'a Site,
    pub caches: &'a mut Caches,
    pub slot: &'static StatsSlot,
    pub request: &'a Request,
    /// The request's own target, split into path and query once.
    pub target: Target<'a>,
    pub client: Client,
    /// Set when the request came over HTTPS.
    pub tls: Option<TlsInfo>,
    pub now: Now<'a>,
    /// Where the head (and a body made in memory) is written.
    pub out: &'a mut Vec<u8>,
    pub routed: Routed,
    /// Whether the connection may stay open after this answer.
    pub keep_alive: bool,
    /// HEAD: the answer's head only.
    pub head_only: bool,
    /// Header lines the host adds to every answer (CORS).
    pub extra_headers: Vec<u8>,
}

impl Context<'_> {
    /// The reply for an answer whose head says it all.
    pub fn bodiless(&self, status: Status) -> Reply {
        Reply {
            status,
            body: None,
            keep_alive: self.keep_alive,
        }
    }

    /// A redirect to `location`, with a short page pointing there.
    pub fn redirect(&mut self, status: Status, location: &str) -> Reply {
        let page = response::error_page(status, location, "The resource is at this address.");
        let out = &mut *self.out;
        response::start(out, status, self.now.date);
        response::header(out, "Location", location);
        response::header(out, "Content-Type", "text/html; charset=utf-8");
        response::header(out, "Content-Length", page.len());
        out.extend_from_slice(&self.extra_headers);
        response::finish(out, self.keep_alive, self.request.minor_version);
        if !self.head_only {
            out.extend_from_slice(page.as_bytes());
        }
        self.bodiless(status)
    }

    /// The error page of a refusal (HEAD: its head only).
    pub fn refuse(&mut self, refusal: Refusal) -> Reply {
        let request = self.request;
        let page = response::error_page(refusal.status, &request.target, &refusal.detail);
        let out = &mut *self.out;
        response::start(out, refusal.status, self.now.date);
        response::header(out, "Content-Type", "text/html; charset=utf-8");
        response::header(out, "Content-Length", page.len());
        if let Some(size) = refusal.unsatisfied_size {
            response::header(out, "Content-Range", format_args!("bytes */{size}"));
        }
        if refusal.status == Status::METHOD_NOT_ALLOWED {
            response::header(out, "Allow", ALLOWED_METHODS);
        }
        if let Some(seconds) = refusal.retry_after {
            response::header(out, "Retry-After", seconds);
        }
        out.extend_from_slice(&self.extra_headers);
        response::finish(out, self.keep_alive, request.minor_version);
        if !self.head_only {
            out.extend_from_slice(page.as_bytes());
        }
        self.bodiless(refusal.status)
    }
}

/// An error response for a request that could not be parsed (so it has no
/// target or version of its own).
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

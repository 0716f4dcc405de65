//! Turns a parsed request into a response: the head bytes and, for files, the
//! byte range to send. Decides every status; does no socket I/O.

use std::rc::Rc;

use super::packaged;
use crate::access::geoip::GeoIp;
use crate::access::limits::LimitSettings;
use crate::access::{Client, Grant};
use crate::cache::MediaCache;
use crate::http::conditional::{self, Validators};
use crate::http::range;
use crate::http::response::{self, ALLOWED_METHODS, FileHead};
use crate::http::target;
use crate::http::{Method, Refusal, Request, Status};
use crate::media::representation;
use crate::options::{MimeTable, Options};
use crate::package;
use crate::route::lua::RouteLua;
use crate::route::open_files::{OpenFile, OpenFiles};
use crate::route::rewrite::{self, Routing};
use crate::route::{self, VirtualHost, VirtualHosts, sandbox};
use crate::stats::StatsSlot;
use crate::stats::columns::UNKNOWN_HOST;
use crate::stream::Stream;
use crate::stream::hints::{self, Hint, HintTable, ReportError};

/// What a worker serves: the validated options and what was compiled from them.
pub struct Site {
    pub options: Options,
    pub vhosts: VirtualHosts,
    pub mimes: MimeTable,
    /// The counters' column of each virtual host and of its folder, by host
    /// index (named in the shared region by the master).
    pub host_columns: Vec<usize>,
    /// The route functions' Lua state, when any host has one.
    pub route_lua: Option<RouteLua>,
    /// By host index, then folder index.
    pub folder_columns: Vec<Vec<usize>>,
    /// The country database (`options.geoip`), mapped by the master.
    pub geoip: Option<Rc<GeoIp>>,
    /// `options.limits`, compiled; None = no per-client limits.
    pub limits: Option<LimitSettings>,
    /// Where players' reports meet their streams (shared by all workers).
    pub hint_table: &'static HintTable,
}

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

/// Builds the response to `request` into `out`: the phases in nginx's order,
/// server selection → access → rewrite (routes) → content (sandbox and
/// open, media, conditional, range) → headers → body. Each phase passes the
/// request on or refuses it; a refusal becomes an error page. `keep_alive`
/// is whether the connection may stay open (the client's wish, unless we
/// are draining).
#[allow(clippy::too_many_arguments)]
pub fn respond(
    site: &Site,
    caches: &mut Caches,
    slot: &'static StatsSlot,
    request: &Request,
    keep_alive: bool,
    now: Now,
    out: &mut Vec<u8>,
    routed: &mut Routed,
    client: Client,
) -> Reply {
    // Server selection comes first, so that every answer counts for its host.
    let selected = route::select_host(&site.vhosts, request);
    if let Ok(vhost) = &selected {
        routed.host = site
            .host_columns
            .get(vhost.index)
            .copied()
            .unwrap_or(UNKNOWN_HOST);
    }
    // A connection refused by the limits is closed after its answer.
    let keep_alive = keep_alive && client.limited.is_none();
    let mut answer = Answer {
        now,
        request,
        keep_alive,
        head_only: false,
        extra_headers: Vec::new(),
    };
    answer.head_only = *request.method() == Method::Head;
    let vhost = match selected {
        Ok(vhost) => vhost,
        Err(_) if *request.method() == Method::Options => {
            return options_reply(out, &answer, &[]);
        }
        Err(refusal) => return answer.refuse(out, refusal),
    };
    // The headers phase's CORS part goes on every answer of the host, errors
    // included, so that a page on another origin can read why it failed.
    if let Some(cors) = &vhost.access.cors {
        cors.write_response_headers(request.origin.as_deref(), &mut answer.extra_headers);
    }
    // Player hints' own URLs (reports also come by POST, from sendBeacon).
    if vhost.hints {
        match sandbox::path_of(&request.target) {
            HINT_REPORT_PATH => return hint_report(site, slot, vhost, &client, &answer, out),
            HINT_SCRIPT_PATH => return hint_script(vhost, &client, &answer, out),
            _ => {}
        }
    }
    match request.method() {
        Method::Get | Method::Head => {}
        Method::Options => return preflight(vhost, &client, &answer, out),
        Method::Other(_) => {
            return answer.refuse(
                out,
                Refusal::new(Status::METHOD_NOT_ALLOWED, "This method is not allowed."),
            );
        }
    }
    // The access phase.
    let grant = match vhost
        .access
        .check(request, &client, site.geoip.as_deref(), now.unix)
    {
        Ok(grant) => grant,
        Err(refusal) => return answer.refuse(out, refusal),
    };
    // A player's stream key is the server's business, not the routes'.
    let hint_key = target::argument(&grant.target, HINT_ARGUMENT)
        .filter(|key| vhost.hints && hints::is_valid_key(key));
    let routed_target = if vhost.hints {
        target::without_arguments(&grant.target, &[HINT_ARGUMENT])
    } else {
        std::borrow::Cow::Borrowed(&*grant.target)
    };
    // The rewrite phase: the host's routes may rewrite, redirect or refuse,
    // or hand the decision to a Lua function.
    let mut routing = rewrite::rewrite(&vhost.routes, &routed_target);
    if let Routing::Call { route, key } = routing {
        routing = match &site.route_lua {
            Some(lua) => lua.call(
                (vhost.index, &vhost.pattern_text),
                (route, key),
                &routed_target,
                request,
                client.peer,
            ),
            None => Routing::Error {
                status: Status::INTERNAL_ERROR,
                message: "The route function is not loaded.".into(),
            },
        };
    }
    let target = match routing {
        Routing::Serve(target) => target,
        Routing::Call { .. } => {
            return answer.refuse(
                out,
                Refusal::new(Status::INTERNAL_ERROR, "A route function chose another."),
            );
        }
        Routing::Redirect { status, location } => {
            return answer.redirect(out, status, &location);
        }
        Routing::Error { status, message } => {
            let detail = if message.is_empty() {
                status.reason().to_string()
            } else {
                message
            };
            return answer.refuse(out, Refusal::new(status, detail));
        }
    };
    serve_file(
        site,
        caches,
        slot,
        vhost,
        (&target, &grant, hint_key),
        &answer,
        routed,
        out,
    )
    .unwrap_or_else(|refusal| answer.refuse(out, refusal))
}

/// What every phase needs to write an answer.
pub(super) struct Answer<'a> {
    pub now: Now<'a>,
    pub request: &'a Request,
    pub keep_alive: bool,
    pub head_only: bool,
    /// Header lines the host adds to every answer (CORS).
    pub extra_headers: Vec<u8>,
}

impl Answer<'_> {
    /// The reply for an answer whose head says it all.
    pub(super) fn bodiless(&self, status: Status) -> Reply {
        Reply {
            status,
            body: None,
            keep_alive: self.keep_alive,
        }
    }

    /// A redirect to `location`, with a short page pointing there.
    fn redirect(&self, out: &mut Vec<u8>, status: Status, location: &str) -> Reply {
        let page = response::error_page(status, location, "The resource is at this address.");
        response::start(out, status, self.now.date);
        response::header(out, "Location", location);
        response::header(out, "Content-Type", "text/html; charset=utf-8");
        response::header(out, "Content-Length", page.len());
        out.extend_from_slice(&self.extra_headers);
        response::finish(out, self.keep_alive, self.request.minor_version);
        if !self.head_only {
            out.extend_from_slice(page.as_bytes());
        }
        Reply {
            status,
            body: None,
            keep_alive: self.keep_alive,
        }
    }

    /// The error page of a refusal (HEAD: its head only).
    pub(super) fn refuse(&self, out: &mut Vec<u8>, refusal: Refusal) -> Reply {
        let request = self.request;
        let page = response::error_page(refusal.status, &request.target, &refusal.detail);
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
        Reply {
            status: refusal.status,
            body: None,
            keep_alive: self.keep_alive,
        }
    }
}

/// The content phases for the file `target` (the request's, or its rewrite)
/// names in `vhost`'s folder.
#[allow(clippy::too_many_arguments)]
fn serve_file(
    site: &Site,
    caches: &mut Caches,
    slot: &'static StatsSlot,
    vhost: &VirtualHost,
    (target, grant, hint_key): (&str, &Grant, Option<&str>),
    answer: &Answer,
    routed: &mut Routed,
    out: &mut Vec<u8>,
) -> Result<Reply, Refusal> {
    // A path beneath an MP4 file names something packaged from it.
    if let Some((media_path, name)) = package::split_path(sandbox::path_of(target)) {
        return packaged::serve(
            site,
            caches,
            slot,
            vhost,
            (target, media_path, name),
            grant,
            answer,
            routed,
            out,
        );
    }
    let file = route::open_target(&mut caches.open_files, &site.mimes, vhost, target)?;
    let opened = &file.opened;
    let body = representation::prepare(
        &mut caches.media,
        opened,
        &file.relative,
        sandbox::query_of(target),
        site.options.seek,
        slot,
        &vhost.folders[opened.folder].path,
    )?;
    let (status, first, end) = match answer_head(
        site,
        vhost,
        grant,
        answer,
        routed,
        FileAnswer {
            opened,
            etag: &body.etag,
            content_type: file.content_type,
            size: body.size,
        },
        out,
    )? {
        Head::Done(status) => return Ok(answer.bodiless(status)),
        Head::Body { status, first, end } => (status, first, end),
    };
    let keep_alive = answer.keep_alive;
    let prepared = body.prepared;
    let mut stream = Stream::for_response(
        &vhost.pacing,
        &mut caches.media,
        slot,
        &file.relative,
        Rc::clone(opened),
        prepared,
        first,
        end,
    );
    if let Some(key) = hint_key.filter(|_| stream.is_media_paced()) {
        caches.stream_serial += 1;
        let owner = hints::owner_tag(std::process::id(), caches.stream_serial);
        let now_ms = crate::sys::monotonic_micros() / 1000;
        match site.hint_table.register(key, owner, now_ms) {
            Some(registration) => {
                stream.attach_hint(Hint::new(site.hint_table, registration, slot));
            }
            None => log::debug!("the hint table is full; {target} streams unhinted"),
        }
    }
    Ok(Reply {
        status,
        body: Some(stream),
        keep_alive,
    })
}

/// What a file-backed answer is about, for its head.
pub(super) struct FileAnswer<'a> {
    pub opened: &'a Rc<OpenFile>,
    pub etag: &'a str,
    pub content_type: &'a str,
    /// Length of the whole representation.
    pub size: u64,
}

/// After [`answer_head`]: the answer is complete (with this status and no
/// body), or its body range follows.
pub(super) enum Head {
    Done(Status),
    Body {
        status: Status,
        first: u64,
        end: u64,
    },
}

/// The headers phase and the head of an answer from a file of `vhost`
/// (the file itself, a seek into it, or something packaged from it):
/// caching headers, 304 for a fresh validator, the range, the head.
pub(super) fn answer_head(
    site: &Site,
    vhost: &VirtualHost,
    grant: &Grant,
    answer: &Answer,
    routed: &mut Routed,
    file: FileAnswer,
    out: &mut Vec<u8>,
) -> Result<Head, Refusal> {
    let request = answer.request;
    let opened = file.opened;
    // From here on a file of the folder answers.
    routed.folder = site
        .folder_columns
        .get(vhost.index)
        .and_then(|columns| columns.get(opened.folder))
        .copied();
    let validators = Validators {
        etag: file.etag,
        modified: opened.identity.modified,
    };
    let keep_alive = answer.keep_alive;
    // The headers phase: CORS (already in the answer's headers) and caching.
    let mut extra_headers = answer.extra_headers.clone();
    vhost.access.expires.write_headers(
        file.content_type,
        grant.signed,
        answer.now.unix,
        &mut extra_headers,
    );
    if conditional::is_not_modified(
        request.if_none_match.as_deref(),
        request.if_modified_since.as_deref(),
        &validators,
    ) {
        response::start(out, Status::NOT_MODIFIED, answer.now.date);
        response::header(out, "Last-Modified", &opened.last_modified);
        response::header(out, "ETag", file.etag);
        out.extend_from_slice(&extra_headers);
        response::finish(out, keep_alive, request.minor_version);
        return Ok(Head::Done(Status::NOT_MODIFIED));
    }
    let (status, first, end) = range::select(request, &validators, file.size)?;
    FileHead {
        status,
        date: answer.now.date,
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
    if answer.head_only || first == end {
        return Ok(Head::Done(status));
    }
    Ok(Head::Body { status, first, end })
}

/// Where players report (`hints = true` hosts).
const HINT_REPORT_PATH: &str = "/.hint";
/// Where the host serves the players' script.
const HINT_SCRIPT_PATH: &str = "/.hint.js";
/// The media URL argument carrying a stream key.
const HINT_ARGUMENT: &str = "hint";
/// The browser side of player hints (also installed as /usr/share/loomiere/hint.js).
const HINT_SCRIPT: &str = include_str!("../../etc/loomiere/hint.js");

/// The address rules and limits, which even the hint URLs obey.
fn check_client(vhost: &VirtualHost, client: &Client) -> Result<(), Refusal> {
    vhost.access.check_address(client.ip()).and_then(|()| {
        client
            .limited
            .map_or(Ok(()), |l| Err(crate::access::too_many(l)))
    })
}

/// `/.hint?key=<key>&t=<seconds>&paused=0|1` (GET or POST): a player's
/// report, written into the shared table for the worker owning the stream.
fn hint_report(
    site: &Site,
    slot: &StatsSlot,
    vhost: &VirtualHost,
    client: &Client,
    answer: &Answer,
    out: &mut Vec<u8>,
) -> Reply {
    let request = answer.request;
    let report = check_client(vhost, client)
        .and_then(|()| match request.method() {
            Method::Get | Method::Head => Ok(()),
            Method::Other(name) if name == "POST" => Ok(()),
            _ => Err(Refusal::new(
                Status::METHOD_NOT_ALLOWED,
                "Reports are sent with GET or POST.",
            )),
        })
        .and_then(|()| parse_report(&request.target));
    let (key, position, paused) = match report {
        Ok(report) => report,
        Err(refusal) => return answer.refuse(out, refusal),
    };
    let now_ms = crate::sys::monotonic_micros() / 1000;
    let refusal = match site.hint_table.report(key, position, paused, now_ms) {
        Ok(()) => {
            StatsSlot::add(&slot.hint_reports, 1);
            response::start(out, Status::NO_CONTENT, answer.now.date);
            // Like the media, the report may come from a page on another origin.
            if vhost.access.cors.is_none() {
                response::header(out, "Access-Control-Allow-Origin", "*");
            }
            out.extend_from_slice(&answer.extra_headers);
            response::finish(out, answer.keep_alive, request.minor_version);
            return Reply {
                status: Status::NO_CONTENT,
                body: None,
                keep_alive: answer.keep_alive,
            };
        }
        Err(ReportError::Unknown) => Refusal::new(
            Status::NOT_FOUND,
            "No stream has this key now (it ended, or its reports stopped).",
        ),
        Err(ReportError::Full) => Refusal::new(
            Status::SERVICE_UNAVAILABLE,
            "The server follows too many players now; this one plays unhinted.",
        ),
    };
    answer.refuse(out, refusal)
}

/// The key, position and pause flag of a report; 400 when malformed.
fn parse_report(target_text: &str) -> Result<(&str, f64, bool), Refusal> {
    let bad = |detail: &'static str| Refusal::new(Status::BAD_REQUEST, detail);
    let key = target::argument(target_text, "key")
        .filter(|key| hints::is_valid_key(key))
        .ok_or_else(|| bad("The key must be 16 to 64 letters, digits, '-' or '_'."))?;
    let position = target::argument(target_text, "t")
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t >= 0.0)
        .ok_or_else(|| bad("t must be the player's position in seconds."))?;
    let paused = match target::argument(target_text, "paused") {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => return Err(bad("paused must be 0 or 1.")),
    };
    Ok((key, position, paused))
}

/// `/.hint.js`: the script a page includes to report its players' positions.
fn hint_script(vhost: &VirtualHost, client: &Client, answer: &Answer, out: &mut Vec<u8>) -> Reply {
    let request = answer.request;
    if let Err(refusal) = check_client(vhost, client) {
        return answer.refuse(out, refusal);
    }
    if !matches!(request.method(), Method::Get | Method::Head) {
        return answer.refuse(
            out,
            Refusal::new(Status::METHOD_NOT_ALLOWED, "This method is not allowed."),
        );
    }
    response::start(out, Status::OK, answer.now.date);
    response::header(out, "Content-Type", "text/javascript; charset=utf-8");
    response::header(out, "Content-Length", HINT_SCRIPT.len());
    response::header(out, "Cache-Control", "public, max-age=3600");
    out.extend_from_slice(&answer.extra_headers);
    response::finish(out, answer.keep_alive, request.minor_version);
    if !answer.head_only {
        out.extend_from_slice(HINT_SCRIPT.as_bytes());
    }
    Reply {
        status: Status::OK,
        body: None,
        keep_alive: answer.keep_alive,
    }
}

/// OPTIONS: the methods this server knows, and `extra_headers`.
fn options_reply(out: &mut Vec<u8>, answer: &Answer, extra_headers: &[u8]) -> Reply {
    let status = if extra_headers.is_empty() {
        Status::OK
    } else {
        Status::NO_CONTENT
    };
    response::start(out, status, answer.now.date);
    response::header(out, "Allow", ALLOWED_METHODS);
    if status == Status::OK {
        response::header(out, "Content-Length", 0);
    }
    out.extend_from_slice(extra_headers);
    response::finish(out, answer.keep_alive, answer.request.minor_version);
    Reply {
        status,
        body: None,
        keep_alive: answer.keep_alive,
    }
}

/// OPTIONS on a host: a CORS preflight (204 with the host's CORS answer)
/// when the host has `cors`, else the plain OPTIONS answer. The address
/// rules and limits apply; referers and signed links do not, since a
/// browser sends a preflight without the page's credentials.
fn preflight(vhost: &VirtualHost, client: &Client, answer: &Answer, out: &mut Vec<u8>) -> Reply {
    if let Err(refusal) = check_client(vhost, client) {
        return answer.refuse(out, refusal);
    }
    let mut headers = Vec::new();
    if let Some(cors) = &vhost.access.cors {
        // A refused origin gets no CORS headers, and the browser stops there.
        cors.write_preflight_headers(answer.request.origin.as_deref(), &mut headers);
    }
    options_reply(out, answer, &headers)
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

//! Turns a parsed request into a response: the head bytes and, for files, the
//! byte range to send. Decides every status; does no socket I/O.

use std::borrow::Cow;
use std::rc::Rc;

use super::context::{Context, Reply};
use super::file_head::{FileAnswer, Head, answer_head};
use super::hint_urls::{self, HINT_ARGUMENT, HINT_REPORT_PATH, HINT_SCRIPT_PATH};
use super::{https, packaged, packaged_set, representation};
use crate::access::Grant;
use crate::http::response::{self, ALLOWED_METHODS};
use crate::http::target::{self, Target};
use crate::http::{Method, Refusal, Status};
use crate::package;
use crate::route::rewrite::{self, Routing};
use crate::route::{self, VirtualHost};
use crate::stats::columns::UNKNOWN_HOST;
use crate::stream::hints::{self, Hint};
use crate::stream::{Body, Stream};

/// Builds the response to `context.request` into `context.out`: the phases
/// in nginx's order, server selection → access → rewrite (routes) → content
/// (sandbox and open, media, conditional, range) → headers → body. Each
/// phase passes the request on or refuses it; a refusal becomes an error
/// page.
pub fn respond(context: &mut Context) -> Reply {
    let site = context.site;
    let request = context.request;
    // Server selection comes first, so that every answer counts for its host.
    let selected = route::select_host(&site.vhosts, request);
    context.routed.host = match &selected {
        Ok(vhost) => site.host_column(vhost),
        Err(_) => UNKNOWN_HOST,
    };
    // A connection refused by the limits is closed after its answer.
    context.keep_alive = context.keep_alive && context.client.limited.is_none();
    context.head_only = *request.method() == Method::Head;
    let vhost = match selected {
        Ok(vhost) => vhost,
        Err(_) if *request.method() == Method::Options => {
            return options_reply(context, &[]);
        }
        Err(refusal) => return context.refuse(refusal),
    };
    let access = site.access_of(vhost);
    // The headers phase's CORS part goes on every answer of the host, errors
    // included, so that a page on another origin can read why it failed.
    if let Some(cors) = &access.cors {
        cors.write_response_headers(request.origin.as_deref(), &mut context.extra_headers);
    }
    // HTTPS: a misdirected request, the redirect to HTTPS, HSTS.
    if let Some(reply) = https::check(context, vhost) {
        return reply;
    }
    // Player hints' own URLs (reports also come by POST, from sendBeacon).
    if vhost.hints {
        match context.target.path {
            HINT_REPORT_PATH => return hint_urls::hint_report(context, vhost),
            HINT_SCRIPT_PATH => return hint_urls::hint_script(context, vhost),
            _ => {}
        }
    }
    match request.method() {
        Method::Get | Method::Head => {}
        Method::Options => return preflight(context, vhost),
        Method::Other(_) => {
            return context.refuse(Refusal::new(
                Status::METHOD_NOT_ALLOWED,
                "This method is not allowed.",
            ));
        }
    }
    // The access phase.
    let grant = match access.check(
        request,
        &context.client,
        site.geoip.as_deref(),
        context.now.unix,
    ) {
        Ok(grant) => grant,
        Err(refusal) => return context.refuse(refusal),
    };
    // A player's stream key is the server's business, not the routes'.
    let hint_key = target::argument(&grant.target, HINT_ARGUMENT)
        .filter(|key| vhost.hints && hints::is_valid_key(key));
    let routed_target = if vhost.hints {
        target::without_arguments(&grant.target, &[HINT_ARGUMENT])
    } else {
        Cow::Borrowed(&*grant.target)
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
                context.client.peer,
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
            return context.refuse(Refusal::new(
                Status::INTERNAL_ERROR,
                "A route function chose another.",
            ));
        }
        Routing::Redirect { status, location } => {
            return context.redirect(status, &location);
        }
        Routing::Error { status, message } => {
            let detail = if message.is_empty() {
                status.reason().to_string()
            } else {
                message
            };
            return context.refuse(Refusal::new(status, detail));
        }
    };
    serve_file(context, vhost, &target, &grant, hint_key)
        .unwrap_or_else(|refusal| context.refuse(refusal))
}

/// The content phases for the file `target` (the request's, or its rewrite)
/// names in `vhost`'s folders.
fn serve_file(
    context: &mut Context,
    vhost: &VirtualHost,
    target: &str,
    grant: &Grant,
    hint_key: Option<&str>,
) -> Result<Reply, Refusal> {
    let site = context.site;
    let slot = context.slot;
    let split = Target::split(target);
    // A path beneath a rendition set names a part of its presentation.
    if let Some(set) = package::urlset::split_set_path(split.path) {
        let (set, name) = set.map_err(|bad| Refusal::new(Status::BAD_REQUEST, bad.0))?;
        return packaged_set::serve(context, vhost, (split, set, name), grant);
    }
    // A path beneath an MP4 file names something packaged from it.
    if let Some((media_path, name)) = package::split_path(split.path) {
        return packaged::serve(context, vhost, (split, media_path, name), grant);
    }
    let caches = &mut *context.caches;
    let file = route::open_target(&mut caches.open_files, &site.mimes, vhost, split.path)?;
    let opened = &file.opened;
    let body = representation::prepare(
        &mut caches.media,
        opened,
        &file.relative,
        split.query,
        site.options.seek,
        slot,
        &vhost.folders[opened.folder].path,
    )?;
    let head = answer_head(
        context,
        vhost,
        grant,
        FileAnswer {
            opened,
            etag: &body.etag,
            content_type: file.content_type,
            size: body.size,
        },
    )?;
    let (status, first, end) = match head {
        Head::Done(status) => return Ok(context.bodiless(status)),
        Head::Body { status, first, end } => (status, first, end),
    };
    let caches = &mut *context.caches;
    let mut stream = Stream::for_response(
        &vhost.pacing,
        &mut caches.media,
        slot,
        Body {
            relative: &file.relative,
            file: Rc::clone(opened),
            prepared: body.prepared,
            first,
            end,
        },
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
        keep_alive: context.keep_alive,
    })
}

/// OPTIONS: the methods this server knows, and `extra_headers`.
fn options_reply(context: &mut Context, extra_headers: &[u8]) -> Reply {
    let status = if extra_headers.is_empty() {
        Status::OK
    } else {
        Status::NO_CONTENT
    };
    let out = &mut *context.out;
    response::start(out, status, context.now.date);
    response::header(out, "Allow", ALLOWED_METHODS);
    if status == Status::OK {
        response::header(out, "Content-Length", 0);
    }
    out.extend_from_slice(extra_headers);
    response::finish(out, context.keep_alive, context.request.minor_version);
    context.bodiless(status)
}

/// OPTIONS on a host: a CORS preflight (204 with the host's CORS answer)
/// when the host has `cors`, else the plain OPTIONS answer. The address
/// rules and limits apply; referers and signed links do not, since a
/// browser sends a preflight without the page's credentials.
fn preflight(context: &mut Context, vhost: &VirtualHost) -> Reply {
    if let Err(refusal) = hint_urls::check_client(context, vhost) {
        return context.refuse(refusal);
    }
    let mut headers = Vec::new();
    if let Some(cors) = &context.site.access_of(vhost).cors {
        // A refused origin gets no CORS headers, and the browser stops there.
        cors.write_preflight_headers(context.request.origin.as_deref(), &mut headers);
    }
    options_reply(context, &headers)
}

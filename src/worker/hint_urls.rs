//! Player hints' own URLs on a `hints = true` host: `/.hint`, where players
//! report their positions, and `/.hint.js`, the script that reports them.

use super::context::{Context, Reply};
use crate::http::response;
use crate::http::target;
use crate::http::{Method, Refusal, Status};
use crate::route::VirtualHost;
use crate::stats::StatsSlot;
use crate::stream::hints::{self, ReportError};

/// Where players report (`hints = true` hosts).
pub const HINT_REPORT_PATH: &str = "/.hint";
/// Where the host serves the players' script.
pub const HINT_SCRIPT_PATH: &str = "/.hint.js";
/// The media URL argument carrying a stream key.
pub const HINT_ARGUMENT: &str = "hint";
/// The browser side of player hints (also installed as /usr/share/loomiere/hint.js).
const HINT_SCRIPT: &str = include_str!("../../etc/loomiere/hint.js");

/// The address rules and limits, which even the hint URLs obey.
pub fn check_client(context: &Context, vhost: &VirtualHost) -> Result<(), Refusal> {
    let client = &context.client;
    context
        .site
        .access_of(vhost)
        .check_address(client.ip())
        .and_then(|()| {
            client
                .limited
                .map_or(Ok(()), |l| Err(crate::access::too_many(l)))
        })
}

/// `/.hint?key=<key>&t=<seconds>&paused=0|1` (GET or POST): a player's
/// report, written into the shared table for the worker owning the stream.
pub fn hint_report(context: &mut Context, vhost: &VirtualHost) -> Reply {
    let request = context.request;
    let report = check_client(context, vhost)
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
        Err(refusal) => return context.refuse(refusal),
    };
    let now_ms = crate::sys::monotonic_micros() / 1000;
    let refusal = match context
        .site
        .hint_table
        .report(key, position, paused, now_ms)
    {
        Ok(()) => {
            StatsSlot::add(&context.slot.hint_reports, 1);
            let out = &mut *context.out;
            response::start(out, Status::NO_CONTENT, context.now.date);
            // Like the media, the report may come from a page on another origin.
            if context.site.access_of(vhost).cors.is_none() {
                response::header(out, "Access-Control-Allow-Origin", "*");
            }
            out.extend_from_slice(&context.extra_headers);
            response::finish(out, context.keep_alive, request.minor_version);
            return context.bodiless(Status::NO_CONTENT);
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
    context.refuse(refusal)
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
pub fn hint_script(context: &mut Context, vhost: &VirtualHost) -> Reply {
    let request = context.request;
    if let Err(refusal) = check_client(context, vhost) {
        return context.refuse(refusal);
    }
    if !matches!(request.method(), Method::Get | Method::Head) {
        return context.refuse(Refusal::new(
            Status::METHOD_NOT_ALLOWED,
            "This method is not allowed.",
        ));
    }
    let out = &mut *context.out;
    response::start(out, Status::OK, context.now.date);
    response::header(out, "Content-Type", "text/javascript; charset=utf-8");
    response::header(out, "Content-Length", HINT_SCRIPT.len());
    response::header(out, "Cache-Control", "public, max-age=3600");
    out.extend_from_slice(&context.extra_headers);
    response::finish(out, context.keep_alive, request.minor_version);
    if !context.head_only {
        out.extend_from_slice(HINT_SCRIPT.as_bytes());
    }
    context.bodiless(Status::OK)
}

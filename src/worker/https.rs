//! The HTTPS phase, right after server selection: a request over TLS whose
//! host has another certificate than its connection was made with is
//! misdirected (421, so the browser opens a connection for that name); a
//! plain-HTTP request to a `https = 'redirect'` host is sent to HTTPS (308,
//! which keeps the method) except ACME HTTP-01 challenges, which certbot's
//! webroot mode fetches over plain HTTP; HTTPS answers of a host with
//! `hsts` carry Strict-Transport-Security.

use super::context::{Context, Reply};
use crate::http::response;
use crate::http::target::ACME_CHALLENGE_PREFIX;
use crate::http::{Refusal, Status};
use crate::route::VirtualHost;

/// Ends the request with a 421 or a 308, or adds HSTS and lets it go on.
pub fn check(context: &mut Context, vhost: &VirtualHost) -> Option<Reply> {
    let site = context.site;
    let host_tls = site.host_tls(vhost);
    match context.tls {
        Some(tls) => {
            if tls.certificate != site.host_certificate(vhost) {
                return Some(context.refuse(Refusal::new(
                    Status::MISDIRECTED_REQUEST,
                    "This connection was made for another host's certificate; connect again for this one.",
                )));
            }
            if let Some(max_age) = host_tls.hsts {
                response::header(
                    &mut context.extra_headers,
                    "Strict-Transport-Security",
                    format_args!("max-age={max_age}"),
                );
            }
            None
        }
        None if host_tls.redirect && !context.target.path.starts_with(ACME_CHALLENGE_PREFIX) => {
            let location = https_location(context, site.https_port)?;
            Some(context.redirect(Status::PERMANENT_REDIRECT, &location))
        }
        None => None,
    }
}

/// The request's URL on HTTPS: its Host without the plain port, the HTTPS
/// port unless it is 443, then its path and query. None without a Host.
fn https_location(context: &Context, https_port: u16) -> Option<String> {
    let host = context.request.host.as_deref()?.trim();
    let name = match host.strip_prefix('[') {
        // An IPv6 literal: the port, if any, follows the bracket.
        Some(rest) => &host[..rest.find(']').map_or(host.len(), |end| end + 2)],
        None => host.split(':').next().unwrap_or(host),
    };
    if name.is_empty() {
        return None;
    }
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let query = context
        .target
        .query
        .map_or_else(String::new, |query| format!("?{query}"));
    Some(format!(
        "https://{name}{port}{}{query}",
        context.target.path
    ))
}

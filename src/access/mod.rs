//! The access phase of the request pipeline, and the headers phase's CORS
//! and caching headers: who may fetch a host's files.
//!
//! Layer: compiles its rules from `options`' plain settings; imports
//! neither `route` (its peer) nor `worker`.
//!
//! The checks run in a fixed order, each refusing with its own status and a
//! sentence that gives nothing away (no list, no secret): the host's
//! `deny`/`allow` (403) → `options.limits` (429, decided when the connection
//! was accepted) → `countries` (403) → `referers` (403) → a signed link
//! (403, or 410 once expired). Routes and files come after.

pub mod cidr;
pub mod geoip;
pub mod headers;
pub mod limits;
pub mod referer;
pub mod signed;

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use pcre2::bytes::{Regex, RegexBuilder};

use crate::http::{Refusal, Request, Status};
use crate::options::{AccessOptions, CountryOptions, OptionsError};
use cidr::{CidrList, client_ip};
use geoip::GeoIp;
use headers::{Cors, Expires};
use limits::Limited;
use signed::Signing;

/// The client of a request, as the access phase sees it.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    pub peer: SocketAddr,
    /// Set when `options.limits` refused the connection at accept.
    pub limited: Option<Limited>,
}

impl Client {
    /// The client's address (IPv4 for an IPv4-mapped one).
    pub fn ip(&self) -> IpAddr {
        client_ip(self.peer.ip())
    }
}

/// A host's access rules and response headers, compiled.
pub struct HostAccess {
    deny: CidrList,
    allow: CidrList,
    referers: Vec<Regex>,
    referers_empty: bool,
    signing: Option<Signing>,
    countries: Option<CountryOptions>,
    pub cors: Option<Cors>,
    pub expires: Expires,
}

/// A request the access phase let through.
pub struct Grant<'a> {
    /// The target without the signed link's arguments.
    pub target: Cow<'a, str>,
    /// Whether it came through a signed link (its response is `private`).
    pub signed: bool,
}

impl HostAccess {
    /// Checks and compiles a host's rules; errors name the host and key.
    pub fn compile(pattern: &str, options: &AccessOptions) -> Result<HostAccess, OptionsError> {
        let name = |key: &str| format!("hosts['{pattern}'].{key}");
        let cidrs = |key: &str, entries: &[String]| {
            CidrList::parse(entries, &name(key)).map_err(|(name, e)| OptionsError::option(&name, e))
        };
        let referers = options
            .referers
            .iter()
            .enumerate()
            .map(|(i, pattern)| {
                RegexBuilder::new()
                    .caseless(true)
                    .jit_if_available(true)
                    .build(pattern)
                    .map_err(|e| {
                        OptionsError::option(
                            &format!("{}[{}]", name("referers"), i + 1),
                            format!("does not compile: {e}"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(short) = options.secrets.iter().find(|s| s.len() < 16) {
            return Err(OptionsError::option(
                &name(if options.secrets.len() > 1 {
                    "secrets"
                } else {
                    "secret"
                }),
                format!(
                    "must be at least 16 characters (one is {}); a short key can be guessed",
                    short.len()
                ),
            ));
        }
        Ok(HostAccess {
            deny: cidrs("deny", &options.deny)?,
            allow: cidrs("allow", &options.allow)?,
            referers,
            referers_empty: options.referers_empty,
            signing: Signing::new(&options.secrets, options.token_ip),
            countries: options.countries.clone(),
            cors: options.cors.as_ref().map(Cors::compile),
            expires: Expires::new(&options.expires),
        })
    }

    /// The address rules alone: `deny` first, then a non-empty `allow`.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.deny.contains(ip) || (!self.allow.is_empty() && !self.allow.contains(ip)) {
            return Err(Refusal::new(
                Status::FORBIDDEN,
                "Access from your address is not allowed.",
            ));
        }
        Ok(())
    }

    /// Every check, in order, for `request` from `client` at Unix second `now`.
    pub fn check<'a>(
        &self,
        request: &'a Request,
        client: &Client,
        geoip: Option<&GeoIp>,
        now: i64,
    ) -> Result<Grant<'a>, Refusal> {
        let ip = client.ip();
        self.check_address(ip)?;
        if let Some(limited) = client.limited {
            return Err(too_many(limited));
        }
        if let Some(countries) = &self.countries {
            check_country(countries, geoip.and_then(|db| db.country(ip)))?;
        }
        self.check_referer(request.referer.as_deref())?;
        let target = request.target.as_str();
        let Some(signing) = &self.signing else {
            return Ok(Grant {
                target: Cow::Borrowed(target),
                signed: false,
            });
        };
        signing.verify(target, ip, now)?;
        Ok(Grant {
            target: signed::without_link_arguments(target),
            signed: true,
        })
    }

    fn check_referer(&self, referer: Option<&str>) -> Result<(), Refusal> {
        if self.referers.is_empty() {
            return Ok(());
        }
        let refused = || {
            Refusal::new(
                Status::FORBIDDEN,
                "This content may only be played from the sites that publish it.",
            )
        };
        let referer = referer.filter(|r| !r.trim().is_empty());
        let Some(referer) = referer else {
            return if self.referers_empty {
                Ok(())
            } else {
                Err(refused())
            };
        };
        let host = referer::referer_host(referer).ok_or_else(refused)?;
        let matches = self
            .referers
            .iter()
            .any(|pattern| pattern.is_match(host.as_bytes()).unwrap_or(false));
        if matches { Ok(()) } else { Err(refused()) }
    }
}

/// The 429 of a connection `options.limits` refused.
pub fn too_many(limited: Limited) -> Refusal {
    let mut refusal = Refusal::new(
        Status::TOO_MANY_REQUESTS,
        "Too many connections from your address; please retry later.",
    );
    refusal.retry_after = Some(limited.retry_after());
    refusal
}

fn check_country(rule: &CountryOptions, country: Option<String>) -> Result<(), Refusal> {
    let allowed = match country {
        None => rule.unknown,
        Some(code) => rule.codes.contains(&code) == rule.allow,
    };
    if allowed {
        Ok(())
    } else {
        Err(Refusal::new(
            Status::FORBIDDEN,
            "This content is not available in your country.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(options: AccessOptions) -> HostAccess {
        HostAccess::compile("h", &options).expect("compiles")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn deny_is_checked_before_allow() {
        let rules = access(AccessOptions {
            allow: vec!["10.0.0.0/8".into()],
            deny: vec!["10.0.0.7".into()],
            ..AccessOptions::default()
        });
        assert!(rules.check_address(ip("10.0.0.1")).is_ok());
        assert!(rules.check_address(ip("10.0.0.7")).is_err());
        assert!(rules.check_address(ip("192.0.2.1")).is_err());
        assert!(
            access(AccessOptions::default())
                .check_address(ip("::1"))
                .is_ok()
        );
    }

    #[test]
    fn referers_match_the_host_or_fall_back_to_referers_empty() {
        let mut options = AccessOptions {
            referers: vec![r"(^|\.)example\.com$".into()],
            ..AccessOptions::default()
        };
        let rules = access(options.clone());
        assert!(
            rules
                .check_referer(Some("https://www.EXAMPLE.com/p"))
                .is_ok()
        );
        assert!(
            rules
                .check_referer(Some("https://example.com.evil.net/"))
                .is_err()
        );
        assert!(rules.check_referer(Some("not a url")).is_err());
        assert!(rules.check_referer(None).is_ok());
        options.referers_empty = false;
        assert!(access(options).check_referer(None).is_err());
    }

    #[test]
    fn countries_allow_deny_and_unknown() {
        let rule = CountryOptions {
            allow: true,
            codes: vec!["RO".into()],
            unknown: true,
        };
        assert!(check_country(&rule, Some("RO".into())).is_ok());
        assert!(check_country(&rule, Some("DE".into())).is_err());
        assert!(check_country(&rule, None).is_ok());
        let deny = CountryOptions {
            allow: false,
            codes: vec!["RO".into()],
            unknown: false,
        };
        assert!(check_country(&deny, Some("RO".into())).is_err());
        assert!(check_country(&deny, Some("DE".into())).is_ok());
        assert!(check_country(&deny, None).is_err());
    }

    #[test]
    fn short_secrets_and_bad_blocks_are_named() {
        let error = HostAccess::compile(
            "v",
            &AccessOptions {
                secrets: vec!["short".into()],
                ..AccessOptions::default()
            },
        )
        .err()
        .map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("hosts['v'].secret")));
        let error = HostAccess::compile(
            "v",
            &AccessOptions {
                allow: vec!["10.0.0.0/8".into(), "nope".into()],
                ..AccessOptions::default()
            },
        )
        .err()
        .map(|e| e.to_string());
        assert!(
            error.is_some_and(|e| e.contains("hosts['v'].allow[2]")),
            "names the entry"
        );
    }
}

//! Expiring signed links, like nginx's secure_link: a URL carries
//! `expires=<unix seconds>&token=<hex HMAC-SHA256(secret, path .. expires [.. ip])>`,
//! where `path` is the percent-decoded path without the query, `expires` the
//! decimal text as sent, and `ip` the client's address as text (with
//! `token_ip`). Several secrets may be valid at once, for key rotation.

use std::borrow::Cow;
use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::cidr::client_ip;
use crate::http::target::{Target, percent_decode};
use crate::http::{Refusal, Status};

/// The query arguments of a signed link.
pub const EXPIRES_ARGUMENT: &str = "expires";
pub const TOKEN_ARGUMENT: &str = "token";

/// A host's signing keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signing {
    /// Newest first; any of them signs a valid link.
    secrets: Vec<Vec<u8>>,
    token_ip: bool,
}

/// The bytes a token signs.
pub fn signed_data(path: &[u8], expires: &str, ip: Option<IpAddr>) -> Vec<u8> {
    let mut data = Vec::with_capacity(path.len() + expires.len() + 40);
    data.extend_from_slice(path);
    data.extend_from_slice(expires.as_bytes());
    if let Some(ip) = ip {
        data.extend_from_slice(client_ip(ip).to_string().as_bytes());
    }
    data
}

fn mac(secret: &[u8], data: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(data);
    mac
}

/// The hex token of `data` under `secret`.
pub fn token(secret: &[u8], data: &[u8]) -> String {
    crate::lua::helpers::hex(&mac(secret, data).finalize().into_bytes())
}

impl Signing {
    /// None when the host has no secret (its links are not signed).
    pub fn new(secrets: &[String], token_ip: bool) -> Option<Signing> {
        (!secrets.is_empty()).then(|| Signing {
            secrets: secrets.iter().map(|s| s.as_bytes().to_vec()).collect(),
            token_ip,
        })
    }

    /// Checks the link `target` fetched by `client` at Unix second `now`:
    /// a missing or wrong token is 403, a valid one past its time 410.
    pub fn verify(&self, target: &str, client: IpAddr, now: i64) -> Result<(), Refusal> {
        let refused = || Refusal::new(Status::FORBIDDEN, "This link is not valid.");
        let target = Target::split(target);
        let query = target.query.unwrap_or("");
        let (mut expires, mut token) = (None, None);
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some((EXPIRES_ARGUMENT, value)) => expires = Some(value),
                Some((TOKEN_ARGUMENT, value)) => token = Some(value),
                _ => {}
            }
        }
        let (Some(expires), Some(token)) = (expires, token) else {
            return Err(refused());
        };
        let Some(token) = decode_hex(token) else {
            return Err(refused());
        };
        if expires.is_empty() || expires.len() > 20 || !expires.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(refused());
        }
        let raw_path = target.path;
        let path = percent_decode(raw_path.as_bytes()).ok_or_else(refused)?;
        // A link to a film (or a rendition set) also admits what is packaged
        // from it (`/film.mp4/master.m3u8`, its segments): players fetch those with
        // the playlist's arguments, which carry the film's token.
        let media_path = crate::package::presentation_path(raw_path)
            .and_then(|media| percent_decode(media.as_bytes()));
        let client = self.token_ip.then_some(client);
        // verify_slice compares in constant time, so a wrong token tells an
        // attacker nothing about how close it was.
        let valid = std::iter::once(&path)
            .chain(media_path.as_ref())
            .map(|path| signed_data(path, expires, client))
            .any(|data| {
                self.secrets
                    .iter()
                    .any(|secret| mac(secret, &data).verify_slice(&token).is_ok())
            });
        if !valid {
            return Err(refused());
        }
        match expires.parse::<i64>() {
            Ok(deadline) if deadline >= now => Ok(()),
            _ => Err(Refusal::new(Status::GONE, "This link has expired.")),
        }
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digits = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(digits, 16).ok()
        })
        .collect()
}

/// `target` without its `expires` and `token` arguments, so that routes and
/// seeking never see them (and the ETag cannot depend on them).
pub fn without_link_arguments(target: &str) -> Cow<'_, str> {
    crate::http::target::without_arguments(target, &[EXPIRES_ARGUMENT, TOKEN_ARGUMENT])
}

/// The signed URL (path and query) of `path` (as a file path, not encoded),
/// valid until Unix second `expires`, for `loomiere --sign`. `path` may
/// carry a query of its own after `?`, which is kept and not signed.
pub fn sign_url(secret: &str, path: &str, expires: i64, ip: Option<IpAddr>) -> String {
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let expires = expires.to_string();
    let token = token(
        secret.as_bytes(),
        &signed_data(path.as_bytes(), &expires, ip),
    );
    let encoded: String = path
        .split('/')
        .map(|segment| crate::lua::helpers::escape(segment.as_bytes()))
        .collect::<Vec<_>>()
        .join("/");
    match query {
        Some(query) if !query.is_empty() => {
            format!("{encoded}?{query}&{EXPIRES_ARGUMENT}={expires}&{TOKEN_ARGUMENT}={token}")
        }
        _ => format!("{encoded}?{EXPIRES_ARGUMENT}={expires}&{TOKEN_ARGUMENT}={token}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn a_signed_url_verifies_until_it_expires() {
        let signing = Signing::new(&["s3cret".into()], false).expect("signing");
        let url = sign_url("s3cret", "/films/a b.mp4", 1000, None);
        assert!(
            url.starts_with("/films/a%20b.mp4?expires=1000&token="),
            "{url}"
        );
        assert_eq!(signing.verify(&url, ip("1.2.3.4"), 999), Ok(()));
        assert_eq!(signing.verify(&url, ip("1.2.3.4"), 1000), Ok(()));
        assert_eq!(
            signing
                .verify(&url, ip("1.2.3.4"), 1001)
                .map_err(|r| r.status),
            Err(Status::GONE)
        );
        let forged = url.replace("expires=1000", "expires=2000");
        assert_eq!(
            signing
                .verify(&forged, ip("1.2.3.4"), 999)
                .map_err(|r| r.status),
            Err(Status::FORBIDDEN)
        );
        let other_path = url.replace("a%20b", "c");
        assert!(signing.verify(&other_path, ip("1.2.3.4"), 999).is_err());
        assert!(
            signing
                .verify("/films/a%20b.mp4", ip("1.2.3.4"), 999)
                .is_err()
        );
    }

    #[test]
    fn rotated_keys_and_address_binding() {
        let signing = Signing::new(&["new".into(), "old".into()], true).expect("signing");
        let old = sign_url("old", "/a.mp4", 50, Some(ip("10.0.0.1")));
        assert_eq!(signing.verify(&old, ip("::ffff:10.0.0.1"), 10), Ok(()));
        assert!(signing.verify(&old, ip("10.0.0.2"), 10).is_err());
        let retired = sign_url("older", "/a.mp4", 50, Some(ip("10.0.0.1")));
        assert!(signing.verify(&retired, ip("10.0.0.1"), 10).is_err());
    }

    #[test]
    fn link_arguments_are_removed_and_others_kept() {
        assert_eq!(without_link_arguments("/a.mp4"), "/a.mp4");
        assert_eq!(
            without_link_arguments("/a.mp4?start=5&expires=9&token=ab"),
            "/a.mp4?start=5"
        );
        assert_eq!(
            without_link_arguments("/a.mp4?expires=9&token=ab"),
            "/a.mp4"
        );
        assert_eq!(
            sign_url("k", "/a.mp4?start=5", 9, None)
                .split("&expires")
                .next(),
            Some("/a.mp4?start=5")
        );
    }
}

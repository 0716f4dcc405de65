//! A request target taken apart: its path and its query, split once
//! ([`Target::split`]), percent-decoding, and the query arguments the server
//! itself consumes (a signed link's `expires` and `token`, a player's `hint`
//! key): read them, and take them out before routes and seeking see the
//! target.

use std::borrow::Cow;

/// Where ACME HTTP-01 challenges live (RFC 8555 §8.3): files without an
/// extension that certbot's webroot mode writes, served as text/plain
/// whatever the mime table says, and over plain HTTP even on a host that
/// redirects to HTTPS.
pub const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// A request target's path (without the scheme and authority of an
/// absolute-form target) and its query (after `?`, without the fragment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    pub path: &'a str,
    pub query: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn split(target: &'a str) -> Target<'a> {
        Target {
            path: path_of(target),
            query: query_of(target),
        }
    }
}

/// The path part of a request target: without the query, and without the
/// scheme and authority of an absolute-form target.
fn path_of(target: &str) -> &str {
    let target = target.split(['?', '#']).next().unwrap_or("");
    if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        return rest.find('/').map_or("/", |slash| &rest[slash..]);
    }
    target
}

/// The query part of a request target (after `?`), if any.
fn query_of(target: &str) -> Option<&str> {
    target
        .split_once('?')
        .map(|(_, query)| query.split('#').next().unwrap_or(""))
}

/// Decodes `%XX` escapes; None for a malformed escape.
pub fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut output = Vec::with_capacity(input.len());
    let mut bytes = input.iter();
    while let Some(&byte) = bytes.next() {
        if byte == b'%' {
            let high = hex_value(*bytes.next()?)?;
            let low = hex_value(*bytes.next()?)?;
            output.push(high << 4 | low);
        } else {
            output.push(byte);
        }
    }
    Some(output)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// The value of the first argument `name` in the target's query.
pub fn argument<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    // A fragment starts at the first '#', and a query only before it.
    let before_fragment = target.split('#').next()?;
    let query = before_fragment.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((n, value)) if n == name => Some(value),
            None if pair == name => Some(""),
            _ => None,
        })
}

/// `target` without its arguments called one of `names` (borrowed when it
/// has none of them).
pub fn without_arguments<'a>(target: &'a str, names: &[&str]) -> Cow<'a, str> {
    // A fragment starts at the first '#' (and is kept as is); a query only before it.
    let (before_fragment, fragment) = match target.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (target, None),
    };
    let Some((path, query)) = before_fragment.split_once('?') else {
        return Cow::Borrowed(target);
    };
    let is_named = |pair: &&str| {
        let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
        names.contains(&name)
    };
    if !query.split('&').any(|pair| is_named(&pair)) {
        return Cow::Borrowed(target);
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !is_named(pair))
        .collect();
    let mut result = path.to_string();
    if !kept.is_empty() {
        result.push('?');
        result.push_str(&kept.join("&"));
    }
    if let Some(fragment) = fragment {
        result.push('#');
        result.push_str(fragment);
    }
    Cow::Owned(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_targets() {
        let split = Target::split("http://host/a.mp4?start=1#t");
        assert_eq!((split.path, split.query), ("/a.mp4", Some("start=1")));
        assert_eq!(path_of("/a/b.mp4?start=1"), "/a/b.mp4");
        assert_eq!(path_of("http://host:80/x?y"), "/x");
        assert_eq!(path_of("http://host"), "/");
        assert_eq!(query_of("/a?start=1&b"), Some("start=1&b"));
        assert_eq!(query_of("/a"), None);
    }

    #[test]
    fn arguments_are_found_and_removed() {
        assert_eq!(argument("/a.mp4?start=5&hint=abc", "hint"), Some("abc"));
        assert_eq!(argument("/a.mp4?hints=abc", "hint"), None);
        assert_eq!(argument("/a.mp4", "hint"), None);
        assert_eq!(without_arguments("/a.mp4", &["hint"]), "/a.mp4");
        assert_eq!(
            without_arguments("/a.mp4?start=5&expires=9&token=ab", &["expires", "token"]),
            "/a.mp4?start=5"
        );
        assert_eq!(without_arguments("/a.mp4?hint=k", &["hint"]), "/a.mp4");
        assert!(matches!(
            without_arguments("/a.mp4?start=1", &["hint"]),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_fragment_ends_the_query_for_both() {
        // Found by fuzz/fuzz_targets/range_query.rs: the two disagreed on '#'.
        let target = "/a?&hint=p=&hint#p=3&hint=,a";
        let without = without_arguments(target, &["hint"]);
        assert_eq!(without, "/a#p=3&hint=,a");
        assert_eq!(argument(&without, "hint"), None);
        assert_eq!(argument("/a?x=1#hint=2", "hint"), None);
        let question_in_fragment = "/a?&hint=p=#s?&hint=q";
        let without = without_arguments(question_in_fragment, &["hint"]);
        assert_eq!(without, "/a#s?&hint=q");
        assert_eq!(argument(&without, "hint"), None);
    }
}

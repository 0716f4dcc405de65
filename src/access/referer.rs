//! Domain identity for embedded players: the host part of a Referer.

/// The host of a Referer URL (`scheme://[user@]host[:port]/…`), lower-cased;
/// None when the value is not an absolute URL.
pub fn referer_host(referer: &str) -> Option<String> {
    let (scheme, rest) = referer.trim().split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_taken_from_absolute_urls_only() {
        assert_eq!(
            referer_host("https://WWW.Example.com:8443/page?x=1").as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            referer_host("http://user:pw@evil.example@good.example/").as_deref(),
            Some("good.example")
        );
        assert_eq!(
            referer_host("http://[2001:db8::1]:80/").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(referer_host("example.com/page"), None);
        assert_eq!(referer_host("https:///path"), None);
        assert_eq!(referer_host(""), None);
    }
}

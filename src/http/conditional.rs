//! Conditional requests (RFC 9110 §13): If-None-Match, If-Modified-Since, If-Range.

use super::date;

/// The validators of a representation.
pub struct Validators<'a> {
    /// Strong entity tag, quotes included.
    pub etag: &'a str,
    /// Last modification, Unix seconds.
    pub modified: i64,
}

/// Whether a GET/HEAD with these headers should be answered 304 Not Modified.
pub fn is_not_modified(
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
    v: &Validators,
) -> bool {
    if let Some(list) = if_none_match {
        // If-None-Match takes precedence and uses the weak comparison.
        return list
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || weak_tag(tag) == weak_tag(v.etag));
    }
    match if_modified_since.and_then(date::parse) {
        Some(since) => v.modified <= since,
        None => false,
    }
}

/// Whether an If-Range validator still matches, so the Range applies.
pub fn if_range_matches(if_range: &str, v: &Validators) -> bool {
    let if_range = if_range.trim();
    if if_range.starts_with("W/") {
        return false; // weak tags never match in If-Range
    }
    if if_range.starts_with('"') {
        return if_range == v.etag;
    }
    date::parse(if_range) == Some(v.modified)
}

fn weak_tag(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// The strong entity tag of a file, as nginx builds it: `"<mtime hex>-<size hex>"`.
pub fn file_etag(modified: i64, size: u64) -> String {
    format!("\"{modified:x}-{size:x}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Validators = Validators {
        etag: "\"5f-64\"",
        modified: 95,
    };

    #[test]
    fn if_none_match_wins_over_if_modified_since() {
        assert!(is_not_modified(Some("\"5f-64\""), None, &V));
        assert!(is_not_modified(Some("\"x\", W/\"5f-64\""), None, &V));
        assert!(is_not_modified(Some("*"), None, &V));
        assert!(!is_not_modified(
            Some("\"other\""),
            Some("Thu, 01 Jan 2099 00:00:00 GMT"),
            &V
        ));
    }

    #[test]
    fn if_modified_since_compares_seconds() {
        assert!(is_not_modified(
            None,
            Some("Thu, 01 Jan 1970 00:01:35 GMT"),
            &V
        ));
        assert!(!is_not_modified(
            None,
            Some("Thu, 01 Jan 1970 00:01:34 GMT"),
            &V
        ));
        assert!(!is_not_modified(None, Some("garbage"), &V));
    }

    #[test]
    fn if_range_uses_strong_comparison() {
        assert!(if_range_matches("\"5f-64\"", &V));
        assert!(!if_range_matches("W/\"5f-64\"", &V));
        assert!(if_range_matches("Thu, 01 Jan 1970 00:01:35 GMT", &V));
        assert!(!if_range_matches("Thu, 01 Jan 1970 00:01:36 GMT", &V));
        assert_eq!(file_etag(95, 100), "\"5f-64\"");
    }
}

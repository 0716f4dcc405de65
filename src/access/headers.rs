//! The headers phase: CORS (`cors`) and caching (`expires`) headers a host
//! adds to its responses, and the answer to a CORS preflight.

use crate::http::response;
use crate::options::CorsOptions;

/// What a cross-origin page may read of a media response (players read
/// Content-Range to learn the total size).
const EXPOSED_HEADERS: &str = "Content-Range, Content-Length, Accept-Ranges";
/// How long a browser may cache a preflight answer, seconds.
pub const PREFLIGHT_MAX_AGE_SECS: u32 = 86_400;

/// A host's `cors` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cors {
    Any,
    /// Origins as `scheme://host[:port]`, lower-case, without a trailing slash.
    Origins(Vec<String>),
}

fn normalise_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl Cors {
    pub fn compile(options: &CorsOptions) -> Cors {
        match options {
            CorsOptions::Any => Cors::Any,
            CorsOptions::Origins(list) if list.iter().any(|o| o == "*") => Cors::Any,
            CorsOptions::Origins(list) => {
                Cors::Origins(list.iter().map(|o| normalise_origin(o)).collect())
            }
        }
    }

    /// The Access-Control-Allow-Origin value for a request from `origin`.
    fn allowed_origin<'a>(&self, origin: Option<&'a str>) -> Option<&'a str> {
        match self {
            Cors::Any => Some("*"),
            Cors::Origins(list) => {
                origin.filter(|origin| list.iter().any(|o| *o == normalise_origin(origin)))
            }
        }
    }

    /// Adds the CORS headers of an actual response to `out`.
    pub fn write_response_headers(&self, origin: Option<&str>, out: &mut Vec<u8>) {
        if let Cors::Origins(_) = self {
            // The answer depends on the Origin, so caches must key on it.
            response::header(out, "Vary", "Origin");
        }
        if let Some(allowed) = self.allowed_origin(origin) {
            response::header(out, "Access-Control-Allow-Origin", allowed);
            response::header(out, "Access-Control-Expose-Headers", EXPOSED_HEADERS);
        }
    }

    /// Adds the headers that answer a preflight from `origin`; false when the
    /// origin is not allowed (the answer then carries no CORS headers, and
    /// the browser refuses the actual request).
    pub fn write_preflight_headers(&self, origin: Option<&str>, out: &mut Vec<u8>) -> bool {
        if let Cors::Origins(_) = self {
            response::header(out, "Vary", "Origin");
        }
        let Some(allowed) = self.allowed_origin(origin) else {
            return false;
        };
        response::header(out, "Access-Control-Allow-Origin", allowed);
        response::header(out, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
        response::header(out, "Access-Control-Allow-Headers", "Range");
        response::header(out, "Access-Control-Max-Age", PREFLIGHT_MAX_AGE_SECS);
        true
    }
}

/// A host's `expires` table, most specific pattern first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expires {
    entries: Vec<(String, u64)>,
}

impl Expires {
    pub fn new(entries: &[(String, u64)]) -> Expires {
        Expires {
            entries: entries.to_vec(),
        }
    }

    /// The max-age of `mime` (its parameters ignored), if a pattern matches.
    pub fn max_age(&self, mime: &str) -> Option<u64> {
        let essence = mime
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let kind = essence.split('/').next().unwrap_or("");
        self.entries.iter().find_map(|(pattern, seconds)| {
            let matches = pattern == "*"
                || *pattern == essence
                || pattern
                    .strip_suffix("/*")
                    .is_some_and(|pattern_kind| pattern_kind == kind);
            matches.then_some(*seconds)
        })
    }

    /// Adds `Cache-Control` and `Expires` for a response of `mime` sent at
    /// Unix second `now`; `private` for signed links, which must not be
    /// served from a shared cache to someone without the link.
    pub fn write_headers(&self, mime: &str, private: bool, now: i64, out: &mut Vec<u8>) {
        let Some(seconds) = self.max_age(mime) else {
            return;
        };
        let scope = if private { "private" } else { "public" };
        response::header(
            out,
            "Cache-Control",
            format_args!("{scope}, max-age={seconds}"),
        );
        let until = now.saturating_add(seconds as i64);
        response::header(out, "Expires", crate::http::date::format(until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(out: &[u8]) -> String {
        String::from_utf8_lossy(out).into_owned()
    }

    #[test]
    fn the_most_specific_mime_pattern_wins() {
        let expires = Expires::new(&[
            ("video/mp4".into(), 60),
            ("video/*".into(), 3600),
            ("*".into(), 0),
        ]);
        assert_eq!(expires.max_age("video/mp4"), Some(60));
        assert_eq!(expires.max_age("video/x-flv"), Some(3600));
        assert_eq!(expires.max_age("text/html; charset=utf-8"), Some(0));
        assert_eq!(Expires::default().max_age("video/mp4"), None);
        let mut out = Vec::new();
        expires.write_headers("video/x-flv", true, 0, &mut out);
        let head = text(&out);
        assert!(
            head.contains("Cache-Control: private, max-age=3600\r\n"),
            "{head}"
        );
        assert!(
            head.contains("Expires: Thu, 01 Jan 1970 01:00:00 GMT\r\n"),
            "{head}"
        );
    }

    #[test]
    fn listed_origins_are_echoed_and_vary() {
        let cors = Cors::compile(&CorsOptions::Origins(vec!["https://A.example/".into()]));
        let mut out = Vec::new();
        cors.write_response_headers(Some("https://a.example"), &mut out);
        let head = text(&out);
        assert!(head.contains("Access-Control-Allow-Origin: https://a.example\r\n"));
        assert!(head.contains("Vary: Origin\r\n"));
        let mut out = Vec::new();
        cors.write_response_headers(Some("https://b.example"), &mut out);
        assert_eq!(text(&out), "Vary: Origin\r\n");
        let mut out = Vec::new();
        assert!(!cors.write_preflight_headers(None, &mut out));
        let any = Cors::compile(&CorsOptions::Any);
        let mut out = Vec::new();
        assert!(any.write_preflight_headers(Some("https://x"), &mut out));
        assert!(text(&out).contains("Access-Control-Allow-Headers: Range\r\n"));
    }
}

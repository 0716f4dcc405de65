//! Request heads: parsing with httparse under the server's limits.

use super::status::Status;

/// Longest request head accepted (request line + headers + blank line).
pub const HEAD_LIMIT_BYTES: usize = 8 * 1024;
/// Longest request line accepted.
pub const REQUEST_LINE_LIMIT_BYTES: usize = 4 * 1024;
/// Most header fields accepted in one request.
pub const HEADER_COUNT_LIMIT: usize = 100;
/// Largest request body read and discarded (no resource here takes a
/// body); past it the answer is 413 and the connection closes.
pub const BODY_DISCARD_LIMIT_BYTES: u64 = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Options,
    Other(String),
}

impl Method {
    fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Other(token) => token,
        }
    }
}

/// The parts of a request head the server acts on, owned so the read buffer can move on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: Option<Method>,
    /// The request target exactly as sent (origin form, or absolute form for proxies).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The Host header without its port.
    pub host: Option<String>,
    /// Whether the client wants the connection kept open after this response.
    pub keep_alive: bool,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub referer: Option<String>,
    /// The Origin header (CORS).
    pub origin: Option<String>,
    pub user_agent: Option<String>,
    /// The Authorization header (the admin port's token).
    pub authorization: Option<String>,
    /// The whole head as received, for route functions that read any header;
    /// kept by the worker only when some host has route functions.
    pub raw_head: Box<[u8]>,
    /// Bytes of body that follow the head (its Content-Length): the
    /// connection reads and discards them before the next request.
    pub body_length: u64,
}

impl Request {
    /// Every header field, names lower-cased, in order (for route functions).
    pub fn header_fields(&self) -> Vec<(String, String)> {
        let mut fields = [httparse::EMPTY_HEADER; HEADER_COUNT_LIMIT];
        let mut parsed = httparse::Request::new(&mut fields);
        if parsed.parse(&self.raw_head).is_err() {
            return Vec::new();
        }
        parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).trim().to_string(),
                )
            })
            .collect()
    }

    pub fn method(&self) -> &Method {
        self.method.as_ref().unwrap_or(&Method::Get)
    }

    /// The request line for the access log, e.g. `GET /a.mp4 HTTP/1.1`.
    pub fn line(&self) -> String {
        format!(
            "{} {} HTTP/1.{}",
            self.method().as_str(),
            self.target,
            self.minor_version
        )
    }
}

/// What a buffer holds so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole head, and how many bytes of the buffer it used.
    Complete(Box<Request>, usize),
    /// More bytes are needed.
    Partial,
    /// The head is invalid; answer with this status and close.
    Invalid(Status, &'static str),
}

/// Parses one request head at the start of `buf` under the server's limits.
pub fn parse(buf: &[u8]) -> Parsed {
    let line_end = buf.iter().position(|&b| b == b'\n');
    if line_end.map_or(buf.len(), |end| end) > REQUEST_LINE_LIMIT_BYTES {
        return Parsed::Invalid(Status::URI_TOO_LONG, "The request line is too long.");
    }
    let mut headers = [httparse::EMPTY_HEADER; HEADER_COUNT_LIMIT];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= HEAD_LIMIT_BYTES {
                return Parsed::Invalid(
                    Status::HEADERS_TOO_LARGE,
                    "The request head is too large.",
                );
            }
            return Parsed::Partial;
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Invalid(
                Status::HEADERS_TOO_LARGE,
                "The request has too many header fields.",
            );
        }
        Err(httparse::Error::Version) if names_another_http_version(buf) => {
            return Parsed::Invalid(
                Status::VERSION_NOT_SUPPORTED,
                "The request does not use HTTP/1.0 or HTTP/1.1.",
            );
        }
        Err(_) => return Parsed::Invalid(Status::BAD_REQUEST, "The request is malformed."),
    };
    if head_len > HEAD_LIMIT_BYTES {
        return Parsed::Invalid(Status::HEADERS_TOO_LARGE, "The request head is too large.");
    }
    let (Some(method), Some(path), Some(minor_version)) =
        (parsed.method, parsed.path, parsed.version)
    else {
        return Parsed::Invalid(Status::BAD_REQUEST, "The request line is incomplete.");
    };
    let mut request = Request {
        method: Some(Method::from_token(method)),
        target: path.to_string(),
        minor_version,
        keep_alive: minor_version >= 1,
        ..Request::default()
    };
    let mut content_length: Option<u64> = None;
    let mut host_count = 0;
    for header in parsed.headers.iter() {
        let Ok(value) = std::str::from_utf8(header.value) else {
            // Only fields we read need to be text; others may carry obs-text.
            if is_one_of(
                header.name,
                &[
                    "host",
                    "range",
                    "if-range",
                    "if-none-match",
                    "if-modified-since",
                    "authorization",
                ],
            ) {
                return Parsed::Invalid(Status::BAD_REQUEST, "A header field is not valid text.");
            }
            continue;
        };
        let value = value.trim();
        let name = header.name;
        if name.eq_ignore_ascii_case("host") {
            host_count += 1;
            if !is_valid_host(value) {
                return Parsed::Invalid(Status::BAD_REQUEST, "The Host header is not a host name.");
            }
            request.host = Some(strip_port(value).to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    request.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && minor_version == 0 {
                    request.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("range") {
            request.range = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("if-range") {
            request.if_range = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("if-none-match") {
            request.if_none_match = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("if-modified-since") {
            request.if_modified_since = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("referer") {
            request.referer = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("origin") {
            request.origin = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("user-agent") {
            request.user_agent = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("authorization") {
            request.authorization = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // RFC 9112 §6: no resource here takes a body, and a chunked one
            // cannot be skipped safely without reading it: refuse and close
            // rather than risk reading its bytes as the next request.
            return Parsed::Invalid(
                Status::BAD_REQUEST,
                "Request bodies with Transfer-Encoding are not accepted.",
            );
        } else if name.eq_ignore_ascii_case("content-length") {
            for element in value.split(',').map(str::trim) {
                let Some(length) = plain_decimal(element) else {
                    return Parsed::Invalid(
                        Status::BAD_REQUEST,
                        "The Content-Length is not a plain decimal number.",
                    );
                };
                if content_length.is_some_and(|earlier| earlier != length) {
                    return Parsed::Invalid(
                        Status::BAD_REQUEST,
                        "The request has conflicting Content-Length values.",
                    );
                }
                content_length = Some(length);
            }
        }
    }
    if host_count > 1 {
        return Parsed::Invalid(
            Status::BAD_REQUEST,
            "The request has more than one Host header.",
        );
    }
    if minor_version >= 1 && host_count == 0 {
        return Parsed::Invalid(
            Status::BAD_REQUEST,
            "HTTP/1.1 requests must have a Host header.",
        );
    }
    if let Some(host) = absolute_form_host(&request.target) {
        // RFC 9112 §3.2.2: the target's authority wins over the Host header.
        request.host = Some(host);
    }
    request.body_length = content_length.unwrap_or(0);
    if request.body_length > BODY_DISCARD_LIMIT_BYTES {
        return Parsed::Invalid(Status::CONTENT_TOO_LARGE, "The request body is too large.");
    }
    Parsed::Complete(Box::new(request), head_len)
}

/// A Content-Length value: 1 to 18 ASCII digits (no sign, no spaces).
fn plain_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Whether a Host value is `host[:port]`: a registered name or IPv4 address
/// (RFC 3986 reg-name characters), or an IPv6 literal in brackets; no
/// spaces, `@`, `/` or other delimiters. Empty is allowed (RFC 9112 §3.2).
fn is_valid_host(value: &str) -> bool {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let Some((literal, after)) = rest.split_once(']') else {
            return false;
        };
        if !literal
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => ("", None),
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match value.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        }
    };
    let host_ok = host.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            )
    });
    let port_ok = port.is_none_or(|p| p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// Whether the request line ends in a well-formed `HTTP/x.y` other than
/// 1.0 and 1.1 (505), rather than in something that is not HTTP (400).
fn names_another_http_version(buf: &[u8]) -> bool {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or(buf);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or(b"");
    matches!(version, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
        if major.is_ascii_digit() && minor.is_ascii_digit())
}

fn is_one_of(name: &str, names: &[&str]) -> bool {
    names.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `[::1]`.
/// The host of an absolute-form target (`http://host:port/path`), without
/// port or user information, lower-cased.
fn absolute_form_host(target: &str) -> Option<String> {
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    Some(strip_port(host).to_ascii_lowercase())
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absolute_form_target_names_the_host() {
        let (request, _) = complete(
            b"GET http://User@Video.Example:8080/a.mp4?start=1 HTTP/1.1\r\nHost: other\r\n\r\n",
        );
        assert_eq!(request.host.as_deref(), Some("video.example"));
        let (plain, _) = complete(b"GET /a.mp4 HTTP/1.1\r\nHost: Other:80\r\n\r\n");
        assert_eq!(plain.host.as_deref(), Some("other"));
    }

    fn complete(buf: &[u8]) -> (Request, usize) {
        match parse(buf) {
            Parsed::Complete(request, len) => (*request, len),
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_simple_get() {
        let (request, len) = complete(b"GET /a.mp4?start=1 HTTP/1.1\r\nHost: Example.com:8080\r\nRange: bytes=0-9\r\n\r\nNEXT");
        assert_eq!(len, 73);
        assert_eq!(request.method(), &Method::Get);
        assert_eq!(request.target, "/a.mp4?start=1");
        assert_eq!(request.host.as_deref(), Some("example.com"));
        assert_eq!(request.range.as_deref(), Some("bytes=0-9"));
        assert!(request.keep_alive);
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(
            complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(
            !complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                .0
                .keep_alive
        );
        let (with_body, _) = complete(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
        assert!(
            with_body.keep_alive,
            "a body is discarded, the connection kept"
        );
        assert_eq!(with_body.body_length, 5);
    }

    fn status_of(buf: &[u8]) -> Option<Status> {
        match parse(buf) {
            Parsed::Invalid(status, _) => Some(status),
            _ => None,
        }
    }

    #[test]
    fn framing_that_could_smuggle_a_request_is_refused() {
        let bad = Some(Status::BAD_REQUEST);
        for head in [
            &b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 00000000000000000001\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\tfolded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / FOO/1.1\r\nHost: a\r\n\r\n",
        ] {
            assert_eq!(status_of(head), bad, "{}", String::from_utf8_lossy(head));
        }
        let unsupported = Some(Status::VERSION_NOT_SUPPORTED);
        assert_eq!(status_of(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"), unsupported);
        assert_eq!(status_of(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"), unsupported);
        assert_eq!(status_of(b"GET / HTTP/0.9\r\nHost: a\r\n\r\n"), unsupported);
        assert_eq!(
            status_of(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 65537\r\n\r\n"),
            Some(Status::CONTENT_TOO_LARGE)
        );
        for good in [
            &b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: my-site.example:80\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        ] {
            assert_eq!(status_of(good), None, "{}", String::from_utf8_lossy(good));
        }
    }

    #[test]
    fn limits_give_the_right_status() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n"), Parsed::Partial);
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\n\r\n"),
            Parsed::Invalid(Status::BAD_REQUEST, _)
        ));
        assert!(matches!(
            parse(b"GARBAGE\r\n\r\n"),
            Parsed::Invalid(Status::BAD_REQUEST, _)
        ));
        let long_line = format!("GET /{} HTTP/1.1\r\n", "a".repeat(5000));
        assert!(matches!(
            parse(long_line.as_bytes()),
            Parsed::Invalid(Status::URI_TOO_LONG, _)
        ));
        let big_head = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n", "b".repeat(9000));
        assert!(matches!(
            parse(big_head.as_bytes()),
            Parsed::Invalid(Status::HEADERS_TOO_LARGE, _)
        ));
        let many: String = (0..101).map(|i| format!("X{i}: y\r\n")).collect();
        let head = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
        assert!(matches!(
            parse(head.as_bytes()),
            Parsed::Invalid(Status::HEADERS_TOO_LARGE, _)
        ));
    }

    #[test]
    fn strips_ports_from_hosts() {
        assert_eq!(strip_port("a.b:80"), "a.b");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("a.b"), "a.b");
    }
}

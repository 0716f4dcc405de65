//! Every status the core server sends, with its exact headers.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{Response, Server, TempDir, options_file, pattern_bytes};

fn site() -> (TempDir, Server) {
    let dir = TempDir::new("status");
    dir.write("clip.mp4", &pattern_bytes(1000, 1));
    dir.write("notes.txt", b"hello\n");
    dir.write("sub/inner.flv", b"FLV");
    dir.write("unknown.xyz", b"?");
    let server = Server::start(&["-f", dir.path().to_str().expect("utf8"), "-w", "1"]);
    (dir, server)
}

fn names(response: &Response) -> Vec<&str> {
    response.header_names()
}

#[test]
fn ok_200_has_exactly_the_file_headers() {
    let (dir, server) = site();
    let response = server.get("/clip.mp4", &[]);
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(
        names(&response),
        [
            "Server",
            "Date",
            "Content-Type",
            "Content-Length",
            "Last-Modified",
            "ETag",
            "Accept-Ranges",
            "Connection"
        ]
    );
    assert!(
        response
            .header("Server")
            .expect("server")
            .starts_with("Loomiere/")
    );
    assert_eq!(response.header("Content-Type"), Some("video/mp4"));
    assert_eq!(response.header("Content-Length"), Some("1000"));
    assert_eq!(response.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(response.header("Connection"), Some("close"));
    let meta = std::fs::metadata(dir.path().join("clip.mp4")).expect("meta");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        response.header("ETag"),
        Some(format!("\"{:x}-{:x}\"", meta.mtime(), meta.size()).as_str())
    );
    assert!(response.header("Date").expect("date").ends_with(" GMT"));
    assert!(
        response
            .header("Last-Modified")
            .expect("lm")
            .ends_with(" GMT")
    );
    assert_eq!(response.body, pattern_bytes(1000, 1));
}

#[test]
fn partial_206_has_content_range() {
    let (_dir, server) = site();
    let response = server.get("/clip.mp4", &["Range: bytes=10-19"]);
    assert_eq!(response.status_line, "HTTP/1.1 206 Partial Content");
    assert_eq!(response.header("Content-Range"), Some("bytes 10-19/1000"));
    assert_eq!(response.header("Content-Length"), Some("10"));
    assert_eq!(response.body, pattern_bytes(1000, 1)[10..20].to_vec());
    let suffix = server.get("/clip.mp4", &["Range: bytes=-5"]);
    assert_eq!(suffix.header("Content-Range"), Some("bytes 995-999/1000"));
    let open = server.get("/clip.mp4", &["Range: bytes=990-"]);
    assert_eq!(open.header("Content-Range"), Some("bytes 990-999/1000"));
    assert_eq!(open.body.len(), 10);
}

#[test]
fn several_ranges_or_a_stale_if_range_give_the_whole_file() {
    let (_dir, server) = site();
    let multi = server.get("/clip.mp4", &["Range: bytes=0-1,5-6"]);
    assert_eq!(multi.status, 200);
    assert_eq!(multi.body.len(), 1000);
    let etag = multi.header("ETag").expect("etag").to_string();
    let stale = server.get("/clip.mp4", &["Range: bytes=0-1", "If-Range: \"other\""]);
    assert_eq!(stale.status, 200);
    let fresh = server.get(
        "/clip.mp4",
        &["Range: bytes=0-1", &format!("If-Range: {etag}")],
    );
    assert_eq!(fresh.status, 206);
}

#[test]
fn not_modified_304_for_matching_validators() {
    let (_dir, server) = site();
    let first = server.get("/clip.mp4", &[]);
    let etag = first.header("ETag").expect("etag").to_string();
    let modified = first.header("Last-Modified").expect("lm").to_string();
    for header in [
        format!("If-None-Match: {etag}"),
        format!("If-Modified-Since: {modified}"),
    ] {
        let response = server.get("/clip.mp4", &[&header]);
        assert_eq!(response.status_line, "HTTP/1.1 304 Not Modified");
        assert_eq!(
            names(&response),
            ["Server", "Date", "Last-Modified", "ETag", "Connection"]
        );
        assert!(response.body.is_empty());
    }
    let changed = server.get("/clip.mp4", &["If-None-Match: \"nope\""]);
    assert_eq!(changed.status, 200);
}

fn assert_error(response: &Response, status: u16, reason: &str) {
    assert_eq!(response.status_line, format!("HTTP/1.1 {status} {reason}"));
    assert_eq!(
        response.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let length: usize = response
        .header("Content-Length")
        .expect("length")
        .parse()
        .expect("number");
    assert_eq!(response.body.len(), length);
    assert!(String::from_utf8_lossy(&response.body).contains(&format!("{status} {reason}")));
}

#[test]
fn bad_request_400_closes_the_connection() {
    let (_dir, server) = site();
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET /clip.mp4 HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
    ] {
        let response = Response::parse(&server.raw(raw), false).expect("response");
        assert_error(&response, 400, "Bad Request");
        assert_eq!(response.header("Connection"), Some("close"));
        assert!(response.rest.is_empty());
    }
}

#[test]
fn forbidden_403_for_directories_and_unreadable_files() {
    let (dir, server) = site();
    assert_error(&server.get("/sub", &[]), 403, "Forbidden");
    assert_error(&server.get("/sub/", &[]), 403, "Forbidden");
    assert_error(&server.get("/", &[]), 403, "Forbidden");
    let secret = dir.write("secret.mp4", b"secret");
    common::set_mode(&secret, 0o000);
    // Root reads anything; the test only means something when the worker is not root.
    let response = server.get("/secret.mp4", &[]);
    let worker_is_root = server.children().iter().any(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
            })
            .unwrap_or(false)
    });
    if !worker_is_root {
        assert_error(&response, 403, "Forbidden");
    }
}

#[test]
fn not_found_404_for_missing_files_unknown_types_and_hosts() {
    let (_dir, server) = site();
    assert_error(&server.get("/missing.mp4", &[]), 404, "Not Found");
    assert_error(&server.get("/unknown.xyz", &[]), 404, "Not Found");
    let escaped = server.get("/missing<script>.mp4", &[]);
    assert!(!String::from_utf8_lossy(&escaped.body).contains("<script>"));
}

#[test]
fn method_not_allowed_405_lists_the_allowed_methods() {
    let (_dir, server) = site();
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let response = server.request(method, "/clip.mp4", &[]);
        assert_error(&response, 405, "Method Not Allowed");
        assert_eq!(response.header("Allow"), Some("GET, HEAD, OPTIONS"));
    }
    let options = server.request("OPTIONS", "/clip.mp4", &[]);
    assert_eq!(options.status, 200);
    assert_eq!(options.header("Allow"), Some("GET, HEAD, OPTIONS"));
    assert_eq!(options.header("Content-Length"), Some("0"));
}

#[test]
fn request_timeout_408_when_the_head_is_slow() {
    let dir = TempDir::new("timeout");
    dir.write("a.txt", b"a");
    let options = options_file(
        &dir,
        &format!(
            "options.header_timeout = 1\noptions.hosts[''] = {{ folder = '{}' }}\n",
            dir.path().display()
        ),
    );
    let server = Server::start(&["-o", options.to_str().expect("utf8"), "-w", "1"]);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /a.txt HTTP/1.1\r\nHost: a\r\n")
        .expect("partial head");
    let started = Instant::now();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).expect("read");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let response = Response::parse(&bytes, false).expect("response");
    assert_error(&response, 408, "Request Timeout");
    assert_eq!(response.header("Connection"), Some("close"));
}

#[test]
fn a_silent_connection_is_closed_after_the_deferred_accept_and_header_timeout() {
    let dir = TempDir::new("silent");
    dir.write("a.txt", b"a");
    let options = options_file(
        &dir,
        &format!(
            "options.header_timeout = 1\noptions.hosts[''] = {{ folder = '{}' }}\n",
            dir.path().display()
        ),
    );
    let server = Server::start(&["-o", options.to_str().expect("utf8"), "-w", "1"]);
    // The client port defers accept() until the first bytes (TCP_DEFER_ACCEPT,
    // 1 s): a client that says nothing is taken in at the handshake's first
    // retransmission, and then has its header_timeout like any other.
    let mut silent = server.connect();
    let started = Instant::now();
    assert_eq!(
        server.get("/a.txt", &[]).body,
        b"a",
        "others are served meanwhile"
    );
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut bytes = Vec::new();
    let _ = silent.read_to_end(&mut bytes);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(6),
        "closed after {waited:?}"
    );
    assert!(
        bytes.is_empty() || bytes.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
}

#[test]
fn uri_too_long_414() {
    let (_dir, server) = site();
    let request = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(5000));
    let response = Response::parse(&server.raw(request.as_bytes()), false).expect("response");
    assert_error(&response, 414, "URI Too Long");
    assert_eq!(response.header("Connection"), Some("close"));
}

#[test]
fn range_not_satisfiable_416_names_the_size() {
    let (_dir, server) = site();
    let response = server.get("/clip.mp4", &["Range: bytes=1000-"]);
    assert_error(&response, 416, "Range Not Satisfiable");
    assert_eq!(response.header("Content-Range"), Some("bytes */1000"));
}

#[test]
fn headers_too_large_431() {
    let (_dir, server) = site();
    let big = format!(
        "GET /clip.mp4 HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "b".repeat(9000)
    );
    let response = Response::parse(&server.raw(big.as_bytes()), false).expect("response");
    assert_error(&response, 431, "Request Header Fields Too Large");
    let many: String = (0..120).map(|i| format!("X-{i}: y\r\n")).collect();
    let request = format!("GET /clip.mp4 HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    let response = Response::parse(&server.raw(request.as_bytes()), false).expect("response");
    assert_error(&response, 431, "Request Header Fields Too Large");
}

#[test]
fn service_unavailable_503_past_the_clients_cap() {
    let dir = TempDir::new("cap");
    dir.write("a.txt", b"a");
    let server = Server::start(&[
        "-f",
        dir.path().to_str().expect("utf8"),
        "-w",
        "1",
        "--clients",
        "2",
    ]);
    // The harness's readiness probe has closed; hold two connections open.
    let mut held = vec![server.connect(), server.connect()];
    for stream in &mut held {
        stream
            .write_all(b"GET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n")
            .expect("send");
        let response = common::read_response(stream, false);
        assert_eq!(response.status, 200);
    }
    let response = server.get("/a.txt", &[]);
    assert_error(&response, 503, "Service Unavailable");
    assert_eq!(response.header("Retry-After"), Some("5"));
    assert_eq!(response.header("Connection"), Some("close"));
    drop(held);
    // Once they close, the slots are free again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if server.get("/a.txt", &[]).status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slots were never released");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn head_sends_exactly_the_headers_of_get() {
    let (_dir, server) = site();
    for path in ["/clip.mp4", "/missing.mp4", "/sub"] {
        let get = server.get(path, &["Range: bytes=0-9"]);
        let head = server.request("HEAD", path, &["Range: bytes=0-9"]);
        let strip = |r: &Response| {
            r.headers
                .iter()
                .filter(|(n, _)| n != "Date")
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&get), strip(&head), "{path}");
        assert_eq!(get.status_line, head.status_line);
        assert!(
            head.body.is_empty() && head.rest.is_empty(),
            "HEAD sent a body for {path}"
        );
    }
}

#[test]
fn http10_closes_unless_asked_to_keep_alive() {
    let (_dir, server) = site();
    let closing =
        Response::parse(&server.raw(b"GET /notes.txt HTTP/1.0\r\n\r\n"), false).expect("response");
    assert_eq!(closing.status, 200);
    assert_eq!(closing.header("Connection"), Some("close"));
    let mut stream = server.connect();
    stream
        .write_all(b"GET /notes.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .expect("send");
    let kept = common::read_response(&mut stream, false);
    assert_eq!(kept.header("Connection"), Some("keep-alive"));
    stream
        .write_all(b"GET /notes.txt HTTP/1.0\r\n\r\n")
        .expect("second request on the same connection");
    assert_eq!(common::read_response(&mut stream, false).body, b"hello\n");
}

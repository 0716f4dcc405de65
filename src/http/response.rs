//! Response heads and error pages, encoded into byte buffers.

use std::fmt::Display;
use std::io::Write;

use super::status::Status;

/// The `Server` header value.
pub const SERVER: &str = concat!("Loomiere/", env!("CARGO_PKG_VERSION"));

/// The methods every resource supports, for `Allow`.
pub const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

/// Writes the status line and the headers every response has (Server, Date).
/// Responses always say HTTP/1.1, the highest version we speak (RFC 9110 §6.2).
pub fn start(buf: &mut Vec<u8>, status: Status, date: &str) {
    // Writing to a Vec cannot fail.
    let _ = write!(
        buf,
        "HTTP/1.1 {} {}\r\nServer: {SERVER}\r\nDate: {date}\r\n",
        status.code(),
        status.reason()
    );
}

/// Writes one header line.
pub fn header(buf: &mut Vec<u8>, name: &str, value: impl Display) {
    let _ = write!(buf, "{name}: {value}\r\n");
}

/// Writes the Connection header if needed and the blank line that ends the head.
/// HTTP/1.1 keeps connections open by default; HTTP/1.0 only when told.
pub fn finish(buf: &mut Vec<u8>, keep_alive: bool, minor_version: u8) {
    if !keep_alive {
        buf.extend_from_slice(b"Connection: close\r\n");
    } else if minor_version == 0 {
        buf.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    buf.extend_from_slice(b"\r\n");
}

/// Escapes text for HTML content and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c if c.is_control() => escaped.push_str("&#xFFFD;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The head of a file response: 200 for the whole body, 206 for a range.
pub struct FileHead<'a> {
    pub status: Status,
    pub date: &'a str,
    pub content_type: &'a str,
    /// The bytes `[first, end)` of a body of `size` bytes.
    pub first: u64,
    pub end: u64,
    pub size: u64,
    pub last_modified: &'a str,
    pub etag: &'a str,
    pub keep_alive: bool,
    pub minor_version: u8,
    /// Header lines the host adds (CORS, caching), each ending in CRLF.
    pub extra_headers: &'a [u8],
}

impl FileHead<'_> {
    pub fn write(&self, out: &mut Vec<u8>) {
        start(out, self.status, self.date);
        header(out, "Content-Type", self.content_type);
        header(out, "Content-Length", self.end - self.first);
        if self.status == Status::PARTIAL_CONTENT {
            header(
                out,
                "Content-Range",
                format_args!("bytes {}-{}/{}", self.first, self.end - 1, self.size),
            );
        }
        header(out, "Last-Modified", self.last_modified);
        header(out, "ETag", self.etag);
        header(out, "Accept-Ranges", "bytes");
        out.extend_from_slice(self.extra_headers);
        finish(out, self.keep_alive, self.minor_version);
    }
}

/// The small HTML page sent with an error status. `target` and `detail` may
/// hold client-supplied text, so both are escaped.
pub fn error_page(status: Status, target: &str, detail: &str) -> String {
    let title = format!("{} {}", status.code(), status.reason());
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body><h1>{title}</h1>\n<p>{}</p>\n<p><code>{}</code></p>\n<hr><address>{SERVER}</address></body></html>\n",
        html_escape(detail),
        html_escape(target),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_head_says_which_bytes_of_how_many() {
        let mut out = Vec::new();
        FileHead {
            status: Status::PARTIAL_CONTENT,
            date: "Thu, 01 Jan 1970 00:00:00 GMT",
            content_type: "video/mp4",
            first: 10,
            end: 20,
            size: 100,
            last_modified: "Thu, 01 Jan 1970 00:00:00 GMT",
            etag: "\"a-b\"",
            keep_alive: true,
            minor_version: 1,
            extra_headers: b"Vary: Origin\r\n",
        }
        .write(&mut out);
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 206 Partial Content\r\n"));
        assert!(text.contains("\r\nContent-Length: 10\r\nContent-Range: bytes 10-19/100\r\n"));
        assert!(text.contains("\r\nETag: \"a-b\"\r\nAccept-Ranges: bytes\r\nVary: Origin\r\n\r\n"));
    }

    #[test]
    fn heads_end_with_crlf_and_say_when_they_close() {
        let mut buf = Vec::new();
        start(&mut buf, Status::NOT_FOUND, "Thu, 01 Jan 1970 00:00:00 GMT");
        header(&mut buf, "Content-Length", 5);
        finish(&mut buf, false, 1);
        let text = String::from_utf8(buf).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\nServer: Loomiere/"));
        assert!(text.ends_with("Content-Length: 5\r\nConnection: close\r\n\r\n"));
        assert!(!text.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn error_pages_escape_what_the_client_sent() {
        let page = error_page(
            Status::NOT_FOUND,
            "/<script>alert('x')</script>",
            "File \"a&b\" not found.",
        );
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(page.contains("File &quot;a&amp;b&quot; not found."));
    }
}

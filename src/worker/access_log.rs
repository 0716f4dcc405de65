//! The access log: one Combined Log Format line per response, plus the
//! response time, and for HTTPS the TLS version (`TLSv1.3`), on stderr.
//!
//! Lines are buffered and written once per loop turn, in writes of whole lines
//! no larger than PIPE_BUF, so lines from several workers never interleave in
//! the pipe svlogd reads.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Instant;

use super::Env;
use crate::http::{Request, date};

/// Writes to a pipe up to this size are atomic (POSIX PIPE_BUF on Linux).
const PIPE_ATOMIC_BYTES: usize = 4096;

/// One request/response exchange, as the access log needs it.
pub struct Exchange {
    started: Instant,
    peer: SocketAddr,
    line: String,
    referer: String,
    user_agent: String,
    pub status: u16,
    pub body_bytes: u64,
    /// The host and folder columns it counts in.
    pub routed: super::context::Routed,
    /// The TLS version of an HTTPS request; None over plain HTTP.
    pub tls: Option<&'static str>,
}

impl Exchange {
    pub fn new(started: Instant, peer: SocketAddr, request: Option<&Request>) -> Exchange {
        Exchange {
            started,
            peer,
            line: request.map(Request::line).unwrap_or_default(),
            referer: request.and_then(|r| r.referer.clone()).unwrap_or_default(),
            user_agent: request
                .and_then(|r| r.user_agent.clone())
                .unwrap_or_default(),
            status: 0,
            body_bytes: 0,
            routed: super::context::Routed::default(),
            tls: None,
        }
    }

    /// Appends the log line to the worker's buffer. An unfinished response is
    /// logged with the bytes that did go out, as nginx does.
    pub fn log(&self, env: &mut Env) {
        if !env.site.options.access_log {
            return;
        }
        let elapsed = env
            .now
            .saturating_duration_since(self.started)
            .as_secs_f64();
        let (year, month, day, hour, minute, second, _) = date::utc_parts(env.unix_now);
        let ip = match self.peer {
            SocketAddr::V6(v6) => v6
                .ip()
                .to_ipv4_mapped()
                .map_or_else(|| v6.ip().to_string(), |v4| v4.to_string()),
            SocketAddr::V4(v4) => v4.ip().to_string(),
        };
        let _ = writeln!(
            env.access_log,
            "{ip} - - [{day:02}/{}/{year}:{hour:02}:{minute:02}:{second:02} +0000] \"{}\" {} {} \"{}\" \"{}\" {elapsed:.3}{}{}",
            date::month_name(month),
            escape(if self.line.is_empty() {
                "-"
            } else {
                &self.line
            }),
            self.status,
            self.body_bytes,
            escape(if self.referer.is_empty() {
                "-"
            } else {
                &self.referer
            }),
            escape(if self.user_agent.is_empty() {
                "-"
            } else {
                &self.user_agent
            }),
            if self.tls.is_some() { " " } else { "" },
            self.tls.unwrap_or(""),
        );
    }
}

/// Escapes quotes, backslashes and control bytes the way nginx does (`\x22`).
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte == b'"' || byte == b'\\' || !(0x20..0x7f).contains(&byte) {
            escaped.push_str(&format!("\\x{byte:02X}"));
        } else {
            escaped.push(byte as char);
        }
    }
    escaped
}

/// Writes buffered lines to stderr in whole-line chunks of at most PIPE_BUF bytes.
pub fn flush(buffer: &mut Vec<u8>) {
    let mut stderr = std::io::stderr().lock();
    let mut rest: &[u8] = buffer;
    while !rest.is_empty() {
        let mut cut = rest.len().min(PIPE_ATOMIC_BYTES);
        if cut < rest.len() {
            // End the chunk after the last newline that fits (a longer line goes whole).
            cut = rest[..cut]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(cut, |p| p + 1);
        }
        if stderr.write_all(&rest[..cut]).is_err() {
            break;
        }
        rest = &rest[cut..];
    }
    buffer.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_nginx() {
        assert_eq!(escape("GET /a\"b HTTP/1.1"), "GET /a\\x22b HTTP/1.1");
        assert_eq!(escape("x\ny"), "x\\x0Ay");
    }
}

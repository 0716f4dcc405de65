//! The monitor process: serves the summed counters on the admin port, and
//! samples them once a second into its own memory (for rates).
//!
//! Layer: a process of its own, reading `stats` and answering with `http`;
//! imports neither the worker nor the request pipeline (`access`, `route`).
//!
//! Admin traffic is rare and local, so the monitor answers one connection at
//! a time with blocking I/O under short time-outs, between samples; it never
//! touches client traffic. It stamps its heartbeat each turn and while it
//! waits on a slow admin client, for the master's watchdog, and exits on the
//! signals that stop or retire a worker (its answers are synchronous, so none
//! is in flight when it reads them), including its master's death.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signalfd::{SfdFlags, SignalFd};

pub mod dashboard;
pub mod history;
pub mod metrics;
pub mod report;
pub mod space;

use crate::http::target::{Target, percent_decode};
use crate::http::{self, Method, Parsed, Status, date};
use crate::options::Options;
use crate::stats::heartbeat::Heartbeat;
use crate::stats::{StatsRegion, Totals};
use crate::sys::signals;
use history::{History, Sample};

/// How long an admin client may take to send its request or read the answer.
const ADMIN_IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the totals are sampled (and at least how often the loop turns).
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Longest a blocking read or write waits before the heartbeat is stamped again.
const IO_SLICE: Duration = Duration::from_millis(500);
const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);

/// Serves the admin port until the process is told to stop.
pub fn serve(listener: TcpListener, region: &StatsRegion, options: &Options) -> ! {
    let mut monitor = Monitor {
        region,
        options,
        history: History::default(),
    };
    if let Err(e) = monitor.run(listener) {
        log::error!("monitor: {e}; exiting (the master starts a new one)");
    }
    std::process::exit(1)
}

struct Monitor<'a> {
    region: &'a StatsRegion,
    options: &'a Options,
    history: History,
}

impl Monitor<'_> {
    fn run(&mut self, listener: TcpListener) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        let mut listener = mio::net::TcpListener::from_std(listener);
        let mut poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let signals = SignalFd::with_flags(
            &signals::handled_set(),
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        )
        .map_err(std::io::Error::from)?;
        poll.registry().register(
            &mut SourceFd(&signals.as_raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )?;
        let mut events = Events::with_capacity(16);
        let mut next_sample = Instant::now();
        loop {
            self.beat();
            while let Ok(Some(info)) = signals.read_signal() {
                if info.ssi_signo as libc::c_int != libc::SIGCHLD {
                    log::debug!(
                        "monitor: {} received; exiting",
                        signals::name(info.ssi_signo as libc::c_int)
                    );
                    std::process::exit(0);
                }
            }
            let now = Instant::now();
            if now >= next_sample {
                self.sample();
                next_sample = now + SAMPLE_EVERY;
            }
            if let Err(e) = poll.poll(
                &mut events,
                Some(next_sample.saturating_duration_since(now)),
            ) && e.kind() != std::io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let stream = TcpStream::from(std::os::fd::OwnedFd::from(stream));
                        if let Err(e) = self.answer(stream) {
                            log::debug!("monitor: connection failed: {e}");
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        log::warn!("monitor: accept failed: {e}");
                        break;
                    }
                }
            }
        }
    }

    fn beat(&self) {
        self.region
            .globals()
            .monitor
            .beat(crate::sys::monotonic_micros());
    }

    /// Whether the request carries the admin token (always, when none is set).
    fn authorized(&self, authorization: Option<&str>) -> bool {
        let token = &self.options.root_token;
        if token.is_empty() {
            return true;
        }
        let given = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        constant_time_eq(given.as_bytes(), token.as_bytes())
    }

    /// `/space?path=…`: 403 outside the configured folders.
    fn space(
        &self,
        stream: &mut AdminStream,
        query: &str,
        json: bool,
        head_only: bool,
    ) -> std::io::Result<()> {
        let path = query
            .split('&')
            .find_map(|arg| arg.strip_prefix("path="))
            .and_then(|raw| percent_decode(raw.as_bytes()))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let (status, detail) = match space::measure(&path, self.options) {
            Ok(space) => {
                let (body, content_type) = if json {
                    (space.to_json(), "application/json")
                } else {
                    (space.to_text(), "text/plain; charset=utf-8")
                };
                return reply(stream, Status::OK, content_type, &body, head_only);
            }
            Err(space::Refused::Outside) => (
                Status::FORBIDDEN,
                "Only paths inside a served folder can be measured.".to_string(),
            ),
            Err(space::Refused::Missing(why)) => (Status::NOT_FOUND, why),
        };
        error_reply(stream, status, "/space", &detail, head_only)
    }

    fn current(&self, totals: &Totals) -> Sample {
        Sample {
            at: crate::sys::unix_now(),
            bytes_sent: totals.bytes_sent,
            bytes_saved: totals.bytes_saved,
            streams: totals.streams_active,
            throttled: totals.streams_throttled,
            requests: totals.requests_total,
            responses: totals.responses,
        }
    }

    fn sample(&mut self) {
        let totals = Totals::sum(self.region);
        let sample = self.current(&totals);
        self.history.record(sample);
    }

    fn answer(&mut self, stream: TcpStream) -> std::io::Result<()> {
        stream.set_nonblocking(false)?;
        let mut stream = AdminStream {
            stream,
            heartbeat: &self.region.globals().monitor,
        };
        // The client port's limit: the whole head within header_timeout, so a
        // slow client cannot hold this one-at-a-time server.
        let deadline = Instant::now() + Duration::from_secs_f64(self.options.header_timeout);
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 2048];
        let request = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return error_reply(
                    &mut stream,
                    Status::REQUEST_TIMEOUT,
                    "",
                    "The request head did not arrive in time.",
                    false,
                );
            }
            self.beat();
            stream.stream.set_read_timeout(Some(left.min(IO_SLICE)))?;
            let n = match stream.stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            match http::request::parse(&buf) {
                Parsed::Complete(request, _) => break request,
                Parsed::Partial => continue,
                Parsed::Invalid(status, detail) => {
                    return error_reply(&mut stream, status, "", detail, false);
                }
            }
        };
        let head_only = request.method() == &Method::Head;
        if !matches!(request.method(), Method::Get | Method::Head) {
            return error_reply(
                &mut stream,
                Status::METHOD_NOT_ALLOWED,
                &request.target,
                "Use GET.",
                head_only,
            );
        }
        if !self.authorized(request.authorization.as_deref()) {
            let page = http::response::error_page(
                Status::UNAUTHORIZED,
                &request.target,
                "The admin port needs the token of options.root_token.",
            );
            return reply_with(
                &mut stream,
                Status::UNAUTHORIZED,
                "text/html; charset=utf-8",
                &page,
                head_only,
                &[("WWW-Authenticate", "Bearer realm=\"loomiere\"")],
            );
        }
        let target = Target::split(&request.target);
        let (path, query) = (target.path, target.query.unwrap_or(""));
        let has = |arg: &str| query.split('&').any(|a| a == arg);
        if path == "/space" {
            return self.space(&mut stream, query, has("format=json"), head_only);
        }
        if path == "/metrics" {
            let totals = Totals::sum(self.region);
            let body = metrics::render(self.region, &totals);
            return reply(
                &mut stream,
                Status::OK,
                metrics::CONTENT_TYPE,
                &body,
                head_only,
            );
        }
        if path == "/" || (path == "/monitor" && has("format=html")) {
            let totals = Totals::sum(self.region);
            let now = self.current(&totals);
            let body = dashboard::render(self.region, &totals, &self.history, &now);
            return reply(
                &mut stream,
                Status::OK,
                "text/html; charset=utf-8",
                &body,
                head_only,
            );
        }
        if path != "/monitor" {
            return error_reply(
                &mut stream,
                Status::NOT_FOUND,
                &request.target,
                "The admin port serves /, /monitor, /metrics and /space.",
                head_only,
            );
        }
        let totals = Totals::sum(self.region);
        let now = self.current(&totals);
        let lines = report::lines(self.region, &totals, self.options, &self.history, &now);
        let (body, content_type) = if has("format=json") {
            (report::render_json(&lines, &totals), "application/json")
        } else if has("terse=true") {
            (report::render_terse(&lines), "text/plain; charset=utf-8")
        } else {
            (report::render_text(&lines), "text/plain; charset=utf-8")
        };
        reply(&mut stream, Status::OK, content_type, &body, head_only)
    }
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guess was right.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut difference = given.len() ^ expected.len();
    for i in 0..given.len().max(expected.len()) {
        let a = given.get(i).copied().unwrap_or(0);
        let b = expected.get(i).copied().unwrap_or(0);
        difference |= usize::from(a ^ b);
    }
    difference == 0
}

/// An error page for `target`.
fn error_reply(
    stream: &mut AdminStream,
    status: Status,
    target: &str,
    detail: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let page = http::response::error_page(status, target, detail);
    reply(stream, status, "text/html; charset=utf-8", &page, head_only)
}

fn reply(
    stream: &mut AdminStream,
    status: Status,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    reply_with(stream, status, content_type, body, head_only, &[])
}

fn reply_with(
    stream: &mut AdminStream,
    status: Status,
    content_type: &str,
    body: &str,
    head_only: bool,
    extra: &[(&str, &str)],
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(256 + body.len());
    http::response::start(&mut out, status, &date::format(crate::sys::unix_now()));
    http::response::header(&mut out, "Content-Type", content_type);
    http::response::header(&mut out, "Content-Length", body.len());
    http::response::header(&mut out, "Cache-Control", "no-store");
    for (name, value) in extra {
        http::response::header(&mut out, name, value);
    }
    http::response::finish(&mut out, false, 1);
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all_within(&out)
}

/// An admin connection. Its answer must be written within
/// `ADMIN_IO_TIMEOUT`; while it waits on the client, the monitor's
/// heartbeat is stamped, so the watchdog sees it busy, not stuck.
struct AdminStream<'a> {
    stream: TcpStream,
    heartbeat: &'a Heartbeat,
}

impl AdminStream<'_> {
    fn write_all_within(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let deadline = Instant::now() + ADMIN_IO_TIMEOUT;
        self.stream.set_write_timeout(Some(IO_SLICE))?;
        let mut rest = bytes;
        while !rest.is_empty() {
            self.heartbeat.beat(crate::sys::monotonic_micros());
            if Instant::now() >= deadline {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            match self.stream.write(rest) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = &rest[n..],
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

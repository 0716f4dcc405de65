//! The monitor process: serves the summed counters on the admin port, and
//! samples them once a second into its own memory (for rates).
//!
//! Admin traffic is rare and local, so the monitor answers one connection at
//! a time with blocking I/O under short time-outs, between samples; it never
//! touches client traffic.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::history::{History, Sample};
use super::{StatsRegion, Totals, metrics, report};
use crate::http::{self, Method, Parsed, Status, date};
use crate::options::Options;
use crate::route::sandbox;

/// How long an admin client may take to send its request or read the answer.
const ADMIN_IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the totals are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
const LISTENER: Token = Token(0);

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
        let mut events = Events::with_capacity(16);
        let mut next_sample = Instant::now();
        loop {
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

    fn current(&self, totals: &Totals) -> Sample {
        Sample {
            at: crate::sys::unix_now(),
            bytes_sent: totals.bytes_sent,
            bytes_saved: totals.bytes_saved,
            streams: totals.streams_active,
            requests: totals.requests_total,
        }
    }

    fn sample(&mut self) {
        let totals = Totals::sum(self.region);
        let sample = self.current(&totals);
        self.history.record(sample);
    }

    fn answer(&mut self, mut stream: TcpStream) -> std::io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(ADMIN_IO_TIMEOUT))?;
        stream.set_write_timeout(Some(ADMIN_IO_TIMEOUT))?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 2048];
        let request = loop {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            match http::request::parse(&buf) {
                Parsed::Complete(request, _) => break request,
                Parsed::Partial => continue,
                Parsed::Invalid(status, detail) => {
                    let page = http::response::error_page(status, "", detail);
                    return reply(
                        &mut stream,
                        status,
                        "text/html; charset=utf-8",
                        &page,
                        false,
                    );
                }
            }
        };
        let head_only = request.method() == &Method::Head;
        if !matches!(request.method(), Method::Get | Method::Head) {
            let page =
                http::response::error_page(Status::METHOD_NOT_ALLOWED, &request.target, "Use GET.");
            return reply(
                &mut stream,
                Status::METHOD_NOT_ALLOWED,
                "text/html; charset=utf-8",
                &page,
                head_only,
            );
        }
        let path = sandbox::path_of(&request.target);
        let query = sandbox::query_of(&request.target).unwrap_or("");
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
        if path != "/monitor" {
            let page = http::response::error_page(
                Status::NOT_FOUND,
                &request.target,
                "The admin port serves /monitor and /metrics.",
            );
            return reply(
                &mut stream,
                Status::NOT_FOUND,
                "text/html; charset=utf-8",
                &page,
                head_only,
            );
        }
        let totals = Totals::sum(self.region);
        let now = self.current(&totals);
        let lines = report::lines(self.region, &totals, self.options, &self.history, &now);
        let has = |arg: &str| query.split('&').any(|a| a == arg);
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

fn reply(
    stream: &mut TcpStream,
    status: Status,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(256 + body.len());
    http::response::start(&mut out, status, &date::format(crate::sys::unix_now()));
    http::response::header(&mut out, "Content-Type", content_type);
    http::response::header(&mut out, "Content-Length", body.len());
    http::response::header(&mut out, "Cache-Control", "no-store");
    http::response::finish(&mut out, false, 1);
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&out)
}

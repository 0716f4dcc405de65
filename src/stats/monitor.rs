//! The monitor process: serves the summed counters on the admin port.
//!
//! Admin traffic is rare and local, so the monitor serves one connection at a
//! time with blocking I/O under short time-outs; it never touches client traffic.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{LAG_WINDOW_SECS, StatsRegion, Totals, lag_bucket_upper_ms};
use crate::http::{self, Method, Parsed, Status, date};
use crate::options::Options;
use crate::route::sandbox;

/// How long an admin client may take to send its request or read the answer.
const ADMIN_IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the admin port until the process is told to stop.
pub fn serve(listener: TcpListener, region: &StatsRegion, options: &Options) -> ! {
    if let Err(e) = listener.set_nonblocking(false) {
        log::error!("monitor: cannot make the admin socket blocking: {e}");
    }
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = answer(stream, region, options) {
                    log::debug!("monitor: connection failed: {e}");
                }
            }
            Err(e) => {
                log::warn!("monitor: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn answer(mut stream: TcpStream, region: &StatsRegion, options: &Options) -> std::io::Result<()> {
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
                return reply(
                    &mut stream,
                    status,
                    "text/html; charset=utf-8",
                    &http::response::error_page(status, "", detail),
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
    if path != "/monitor" {
        let page = http::response::error_page(
            Status::NOT_FOUND,
            &request.target,
            "The admin port serves /monitor.",
        );
        return reply(
            &mut stream,
            Status::NOT_FOUND,
            "text/html; charset=utf-8",
            &page,
            head_only,
        );
    }
    let totals = Totals::sum(region);
    let (body, content_type) = if query.split('&').any(|arg| arg == "format=json") {
        (render_json(region, &totals, options), "application/json")
    } else {
        (
            render_text(region, &totals, options),
            "text/plain; charset=utf-8",
        )
    };
    reply(&mut stream, Status::OK, content_type, &body, head_only)
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

fn uptime(seconds: i64) -> String {
    let s = seconds.max(0);
    format!(
        "{}d:{}h:{}m:{}s",
        s / 86_400,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60
    )
}

/// The plain-text report, in the original's `name = value` layout.
pub fn render_text(region: &StatsRegion, totals: &Totals, options: &Options) -> String {
    let globals = region.globals();
    let now = crate::sys::unix_now();
    let started = globals.started.load(Ordering::Relaxed);
    let mb = |bytes: u64| bytes as f64 / 1_048_576.0;
    let lines = [
        "# Identification:".to_string(),
        "server = Loomiere".to_string(),
        format!("version = {}", env!("CARGO_PKG_VERSION")),
        "details = HTTP streaming server".to_string(),
        String::new(),
        "# Configuration:".to_string(),
        format!("workers = {}", globals.workers.load(Ordering::Relaxed)),
        format!("throttle = {}", options.throttle),
        format!("period = {}", options.period),
        String::new(),
        "# Run-time:".to_string(),
        format!("start = {}", date::format(started)),
        format!("date = {}", date::format(now)),
        format!("uptime = {}", uptime(now - started)),
        format!("reloads = {}", globals.reloads.load(Ordering::Relaxed)),
        format!("workers:running = {}", totals.workers_running),
        format!(
            "workers:restarts = {}",
            globals.worker_restarts.load(Ordering::Relaxed)
        ),
        String::new(),
        "# Cache:".to_string(),
        format!("cache:limit = {:.1} MB", options.cache as f64),
        format!("cache:hits = {}", totals.cache_hits),
        format!("cache:misses = {}", totals.cache_misses),
        String::new(),
        "# Networking:".to_string(),
        format!("net:connections = {}", totals.connections_total),
        format!("net:requests = {}", totals.requests_total),
        format!("net:responses:1xx = {}", totals.responses[0]),
        format!("net:responses:2xx = {}", totals.responses[1]),
        format!("net:responses:3xx = {}", totals.responses[2]),
        format!("net:responses:4xx = {}", totals.responses[3]),
        format!("net:responses:5xx = {}", totals.responses[4]),
        format!("net:overload = {}", totals.overloads),
        String::new(),
        "# Streaming:".to_string(),
        format!(
            "clients:limit = {}",
            globals.clients_limit.load(Ordering::Relaxed)
        ),
        format!(
            "clients:active = {}",
            globals.clients_active.load(Ordering::Relaxed).max(0)
        ),
        format!("streams:active = {}", totals.streams_active),
        format!("streams:throttled = {}", totals.streams_throttled),
        format!("data:sent = {:.1} MB", mb(totals.bytes_sent)),
        format!("data:body = {:.1} MB", mb(totals.body_bytes_sent)),
        format!("data:saved = {:.1} MB", mb(totals.bytes_saved)),
        format!("data:delay = {:.2} ms", totals.lag_mean_ms()),
        format!(
            "data:delay:max = {:.2} ms",
            totals.lag_max_us as f64 / 1000.0
        ),
    ];
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The same figures as JSON (`/monitor?format=json`).
pub fn render_json(region: &StatsRegion, totals: &Totals, options: &Options) -> String {
    let globals = region.globals();
    let now = crate::sys::unix_now();
    format!(
        "{{\"server\":\"Loomiere\",\"version\":\"{}\",\"workers\":{},\"throttle\":{},\"start\":{},\"date\":{},\
         \"reloads\":{},\"workers_running\":{},\"worker_restarts\":{},\"cache\":{{\"limit_mb\":{},\"hits\":{},\"misses\":{}}},\
         \"net\":{{\"connections\":{},\"requests\":{},\"responses\":{{\"1xx\":{},\"2xx\":{},\"3xx\":{},\"4xx\":{},\"5xx\":{}}},\"overload\":{}}},\
         \"clients\":{{\"limit\":{},\"active\":{}}},\"bytes_sent\":{},\
         \"streams\":{{\"active\":{},\"throttled\":{}}},\"body_bytes_sent\":{},\"bytes_saved\":{},\
         \"slice_lag\":{{\"window_seconds\":{},\"slices\":{},\"mean_ms\":{:.3},\"max_ms\":{:.3},\"histogram\":[{}]}}}}\n",
        env!("CARGO_PKG_VERSION"),
        globals.workers.load(Ordering::Relaxed),
        options.throttle,
        globals.started.load(Ordering::Relaxed),
        now,
        globals.reloads.load(Ordering::Relaxed),
        totals.workers_running,
        globals.worker_restarts.load(Ordering::Relaxed),
        options.cache,
        totals.cache_hits,
        totals.cache_misses,
        totals.connections_total,
        totals.requests_total,
        totals.responses[0],
        totals.responses[1],
        totals.responses[2],
        totals.responses[3],
        totals.responses[4],
        totals.overloads,
        globals.clients_limit.load(Ordering::Relaxed),
        globals.clients_active.load(Ordering::Relaxed).max(0),
        totals.bytes_sent,
        totals.streams_active,
        totals.streams_throttled,
        totals.body_bytes_sent,
        totals.bytes_saved,
        LAG_WINDOW_SECS,
        totals.lag_count,
        totals.lag_mean_ms(),
        totals.lag_max_us as f64 / 1000.0,
        lag_histogram_json(totals),
    )
}

/// The slice-lag histogram as `{"le_ms":N,"count":N}` objects, upper bounds
/// increasing (the last one unbounded, shown as null), empty buckets left out.
fn lag_histogram_json(totals: &Totals) -> String {
    let mut parts = Vec::new();
    for (bucket, &count) in totals.lag_histogram.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let upper = lag_bucket_upper_ms(bucket);
        let le = if upper == u64::MAX {
            "null".to_string()
        } else {
            upper.to_string()
        };
        parts.push(format!("{{\"le_ms\":{le},\"count\":{count}}}"));
    }
    parts.join(",")
}

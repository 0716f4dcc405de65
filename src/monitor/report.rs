//! The monitor's report: one list of `name = value` lines built from the
//! summed counters, rendered as the original's text page (sections, units),
//! as terse lines (numbers only, for Munin and scripts), or as one flat JSON
//! object keyed by the same names.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::history::{History, Sample};
use crate::http::date;
use crate::options::Options;
use crate::stats::columns::{CODE_COLUMNS, FOLDER_COLUMNS, HOST_COLUMNS, clean_name, code_label};
use crate::stats::{LAG_WINDOW_SECS, StatsRegion, Totals, lag_bucket_upper_ms};
use crate::tls::session::HandshakeFailure;

const MIB: f64 = 1_048_576.0;

/// A value with the unit the text page shows after it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Count(u64),
    Number(f64, &'static str),
    Text(String),
}

/// A line of the report, or a section heading.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    Section(&'static str),
    Pair(String, Value),
}

fn pair(name: impl Into<String>, value: Value) -> Line {
    Line::Pair(name.into(), value)
}

/// Everything the monitor reports, in page order.
pub fn lines(
    region: &StatsRegion,
    totals: &Totals,
    options: &Options,
    history: &History,
    now: &Sample,
) -> Vec<Line> {
    let globals = region.globals();
    let started = globals.started.load(Ordering::Relaxed);
    let count = |n: u64| Value::Count(n);
    let mut out = vec![
        Line::Section("Identification"),
        pair("server", Value::Text("Loomiere".into())),
        pair("version", Value::Text(env!("CARGO_PKG_VERSION").into())),
        pair("details", Value::Text("HTTP streaming server".into())),
        Line::Section("Configuration"),
        pair("workers", count(globals.workers.load(Ordering::Relaxed))),
        pair("throttle", Value::Number(options.throttle, "seconds")),
        pair("period", Value::Number(options.period, "seconds")),
        Line::Section("Run-time"),
        pair("start", Value::Text(date::format(started))),
        pair("date", Value::Text(date::format(now.at))),
        pair("uptime", Value::Text(uptime(now.at - started))),
        pair("reloads", count(globals.reloads.load(Ordering::Relaxed))),
        pair("workers:running", count(totals.workers_running)),
        pair(
            "workers:restarts",
            count(globals.worker_restarts.load(Ordering::Relaxed)),
        ),
        pair(
            "workers:stalled",
            count(globals.worker_stalls.load(Ordering::Relaxed)),
        ),
        Line::Section("Cache"),
        pair("cache:limit", Value::Number(options.cache as f64, "MB")),
        pair(
            "cache:used",
            Value::Number(totals.cache_bytes as f64 / MIB, "MB"),
        ),
        pair("cache:items", count(totals.cache_items)),
        pair("cache:hits", count(totals.cache_hits)),
        pair("cache:misses", count(totals.cache_misses)),
        Line::Section("Networking"),
    ];
    let mut net = net_lines(region, totals);
    net.sort_by(|a, b| match (a, b) {
        (Line::Pair(x, _), Line::Pair(y, _)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    });
    out.extend(net);
    out.extend([
        Line::Section("Streaming"),
        pair(
            "clients:limit",
            count(globals.clients_limit.load(Ordering::Relaxed)),
        ),
        pair(
            "clients:active",
            count(globals.clients_active.load(Ordering::Relaxed).max(0) as u64),
        ),
        pair("streams:active", count(totals.streams_active)),
        pair("streams:throttled", count(totals.streams_throttled)),
        pair("hints:streams", count(totals.hinted_streams)),
        pair("hints:paused", count(totals.hinted_paused)),
        pair("hints:reports", count(totals.hint_reports)),
        pair("hints:held:bytes", count(totals.hint_held_bytes)),
        pair("hints:held:total:bytes", count(totals.hint_held_total)),
        pair("packaging:playlists", count(totals.packaged[0])),
        pair("packaging:inits", count(totals.packaged[1])),
        pair("packaging:segments", count(totals.packaged[2])),
        pair("packaging:playlists:bytes", count(totals.packaged_bytes[0])),
        pair("packaging:inits:bytes", count(totals.packaged_bytes[1])),
        pair("packaging:segments:bytes", count(totals.packaged_bytes[2])),
        pair("packaging:sets:playlists", count(totals.set_requests[0])),
        pair("packaging:sets:inits", count(totals.set_requests[1])),
        pair("packaging:sets:segments", count(totals.set_requests[2])),
        pair(
            "data:total",
            Value::Number(totals.bytes_sent as f64 / MIB, "MiB"),
        ),
        pair("data:total:bytes", count(totals.bytes_sent)),
        pair("data:body:bytes", count(totals.body_bytes_sent)),
        pair(
            "data:rate",
            Value::Number(
                history.rate(now, LAG_WINDOW_SECS as i64, |s| s.bytes_sent) / MIB,
                "MiB/s",
            ),
        ),
        pair(
            "data:saved",
            Value::Number(totals.bytes_saved as f64 / MIB, "MiB"),
        ),
        pair("data:saved:bytes", count(totals.bytes_saved)),
        pair(
            "data:delay",
            Value::Number(totals.lag_mean_ms() / 1000.0, "seconds"),
        ),
        pair(
            "data:delay:max",
            Value::Number(totals.lag_max_us as f64 / 1e6, "seconds"),
        ),
    ]);
    for folder in 0..FOLDER_COLUMNS {
        if let Some(name) = globals.folders.name(folder) {
            let name = clean_name(&name);
            out.push(pair(
                format!("folder:{name}:requests"),
                count(totals.folder_requests[folder]),
            ));
            out.push(pair(
                format!("folder:{name}:bytes"),
                count(totals.folder_bytes[folder]),
            ));
        }
    }
    out
}

/// `net:` lines: totals always, per host and per code once counted.
fn net_lines(region: &StatsRegion, totals: &Totals) -> Vec<Line> {
    let hosts = &region.globals().hosts;
    let outgoing: u64 = totals.responses.iter().sum();
    let failures: u64 = totals.failures.iter().sum();
    let mut net = vec![
        pair("net:connections", Value::Count(totals.connections_total)),
        pair(
            "net:connections:open",
            Value::Count(totals.connections_active),
        ),
        pair("net:incoming", Value::Count(totals.requests_total)),
        pair("net:outgoing", Value::Count(outgoing)),
        pair("net:failures", Value::Count(failures)),
        pair("net:failures:malformed", Value::Count(totals.failures[0])),
        pair("net:failures:timed-out", Value::Count(totals.failures[1])),
        pair("net:failures:dropped", Value::Count(totals.failures[2])),
        pair("net:overload", Value::Count(totals.overloads)),
        pair("net:limited", Value::Count(totals.limited)),
        pair("net:tls:connections", Value::Count(totals.tls_total)),
        pair("net:tls:connections:open", Value::Count(totals.tls_active)),
        pair("net:tls:kernel", Value::Count(totals.tls_kernel)),
        pair(
            "net:tls:handshakes:full",
            Value::Count(totals.tls_handshakes_full),
        ),
        pair(
            "net:tls:handshakes:resumed",
            Value::Count(totals.tls_handshakes_resumed),
        ),
    ];
    for (reason, n) in HandshakeFailure::ALL
        .iter()
        .zip(totals.tls_handshake_failures)
    {
        net.push(pair(
            format!("net:tls:handshakes:failed:{}", reason.label()),
            Value::Count(n),
        ));
    }
    for host in 0..HOST_COLUMNS {
        let Some(name) = hosts.name(host) else {
            continue;
        };
        let name = clean_name(&name);
        let incoming = totals.host_requests[host];
        let codes = &totals.host_responses[host];
        let host_outgoing: u64 = codes.iter().sum();
        if incoming > 0 {
            net.push(pair(format!("net:incoming:{name}"), Value::Count(incoming)));
        }
        if host_outgoing > 0 {
            net.push(pair(
                format!("net:outgoing:{name}"),
                Value::Count(host_outgoing),
            ));
        }
        for (code, &n) in codes.iter().enumerate().take(CODE_COLUMNS) {
            if n > 0 {
                net.push(pair(
                    format!("net:outgoing:{name}:{}", code_label(code)),
                    Value::Count(n),
                ));
            }
        }
    }
    net
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

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

/// The original's page: sections, `name = value unit` lines.
pub fn render_text(lines: &[Line]) -> String {
    let mut text = String::new();
    for line in lines {
        match line {
            Line::Section(title) => {
                if !text.is_empty() {
                    text.push('\n');
                }
                let _ = writeln!(text, "# {title}:");
            }
            Line::Pair(name, Value::Count(n)) => {
                let _ = writeln!(text, "{name} = {n}");
            }
            Line::Pair(name, Value::Number(x, unit)) => {
                let _ = writeln!(text, "{name} = {} {unit}", number(*x));
            }
            Line::Pair(name, Value::Text(t)) => {
                let _ = writeln!(text, "{name} = {t}");
            }
        }
    }
    text
}

/// Only the numeric `name = value` lines, without units.
pub fn render_terse(lines: &[Line]) -> String {
    let mut text = String::new();
    for line in lines {
        match line {
            Line::Pair(name, Value::Count(n)) => {
                let _ = writeln!(text, "{name} = {n}");
            }
            Line::Pair(name, Value::Number(x, _)) => {
                let _ = writeln!(text, "{name} = {}", number(*x));
            }
            _ => {}
        }
    }
    text
}

/// One flat JSON object keyed by the line names, numbers as numbers, plus
/// the slice-delay histogram.
pub fn render_json(lines: &[Line], totals: &Totals) -> String {
    let mut json = String::from("{");
    for line in lines {
        let Line::Pair(name, value) = line else {
            continue;
        };
        if json.len() > 1 {
            json.push(',');
        }
        json.push_str(&json_string(name));
        json.push(':');
        match value {
            Value::Count(n) => {
                let _ = write!(json, "{n}");
            }
            Value::Number(x, _) if x.is_finite() => json.push_str(&number(*x)),
            Value::Number(..) => json.push_str("null"),
            Value::Text(t) => json.push_str(&json_string(t)),
        }
    }
    json.push_str(",\"data:delay:histogram\":[");
    let mut first = true;
    for (bucket, &count) in totals.lag_histogram.iter().enumerate() {
        if count == 0 {
            continue;
        }
        if !first {
            json.push(',');
        }
        first = false;
        let upper = lag_bucket_upper_ms(bucket);
        let le = if upper == u64::MAX {
            "null".to_string()
        } else {
            upper.to_string()
        };
        let _ = write!(json, "{{\"le_ms\":{le},\"count\":{count}}}");
    }
    json.push_str("]}\n");
    json
}

/// A JSON string literal.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_carry_the_same_lines() {
        let lines = vec![
            Line::Section("Streaming"),
            pair("data:total", Value::Number(1.5, "MiB")),
            pair("net:incoming", Value::Count(7)),
            pair("server", Value::Text("Loomiere \"x\"".into())),
        ];
        assert_eq!(
            render_text(&lines),
            "# Streaming:\ndata:total = 1.500 MiB\nnet:incoming = 7\nserver = Loomiere \"x\"\n"
        );
        assert_eq!(
            render_terse(&lines),
            "data:total = 1.500\nnet:incoming = 7\n"
        );
        let json = render_json(&lines, &Totals::default());
        assert_eq!(
            json,
            "{\"data:total\":1.500,\"net:incoming\":7,\"server\":\"Loomiere \\\"x\\\"\",\"data:delay:histogram\":[]}\n"
        );
    }
}

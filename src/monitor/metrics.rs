//! `GET /metrics`: the counters in Prometheus' text exposition format
//! (version 0.0.4): a `loomiere_` prefix, HELP and TYPE on every family,
//! counters ending in `_total`, bytes in `_bytes`, labels `host`, `code`,
//! `worker` and `folder`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::stats::columns::{CODE_COLUMNS, FOLDER_COLUMNS, HOST_COLUMNS, code_label};
use crate::stats::{LAG_BUCKETS, StatsRegion, Totals, lag_bucket_upper_ms};
use crate::tls::session::HandshakeFailure;

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes one metric family: HELP, TYPE, then its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn start<'a>(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP loomiere_{name} {help}");
        let _ = writeln!(out, "# TYPE loomiere_{name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.out, "loomiere_{name}");
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, text)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape(text));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// A label value with backslash, quote and newline escaped.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One family with a single unlabelled sample.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    Family::start(out, name, kind, help).sample(name, &[], value);
}

/// The whole exposition.
pub fn render(region: &StatsRegion, totals: &Totals) -> String {
    let globals = region.globals();
    let mut out = String::with_capacity(16 * 1024);
    let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);

    single(
        &mut out,
        "start_time_seconds",
        "gauge",
        "When the master process started, in Unix seconds.",
        globals.started.load(Ordering::Relaxed),
    );
    single(
        &mut out,
        "workers",
        "gauge",
        "Worker processes running.",
        totals.workers_running,
    );
    single(
        &mut out,
        "worker_restarts_total",
        "counter",
        "Workers replaced after they died.",
        load(&globals.worker_restarts),
    );
    single(
        &mut out,
        "worker_stalls_total",
        "counter",
        "Workers and monitors killed by the watchdog because their loop stopped turning for stall_timeout.",
        load(&globals.worker_stalls),
    );
    single(
        &mut out,
        "reloads_total",
        "counter",
        "Configuration reloads (SIGHUP) that took effect.",
        load(&globals.reloads),
    );
    single(
        &mut out,
        "clients",
        "gauge",
        "Client connections open now, over all workers.",
        globals.clients_active.load(Ordering::Relaxed).max(0),
    );
    single(
        &mut out,
        "clients_limit",
        "gauge",
        "The 'clients' option: most concurrent connections.",
        load(&globals.clients_limit),
    );
    single(
        &mut out,
        "connections_total",
        "counter",
        "Client connections accepted.",
        totals.connections_total,
    );
    single(
        &mut out,
        "overloads_total",
        "counter",
        "Connections refused with 503 because 'clients' was reached.",
        totals.overloads,
    );
    single(
        &mut out,
        "limited_total",
        "counter",
        "Connections refused with 429, or closed under a flood, by options.limits.",
        totals.limited,
    );

    let hosts = &globals.hosts;
    let host_names: Vec<(usize, String)> = (0..HOST_COLUMNS)
        .filter_map(|column| hosts.name(column).map(|name| (column, name)))
        .collect();
    let mut family = Family::start(
        &mut out,
        "requests_total",
        "counter",
        "Requests received, by virtual host ('unknown': no host matched).",
    );
    for (column, name) in &host_names {
        family.sample(
            "requests_total",
            &[("host", name)],
            totals.host_requests[*column],
        );
    }
    let mut family = Family::start(
        &mut out,
        "responses_total",
        "counter",
        "Responses sent, by virtual host and status code.",
    );
    for (column, name) in &host_names {
        for code in 0..CODE_COLUMNS {
            let n = totals.host_responses[*column][code];
            if n > 0 {
                family.sample(
                    "responses_total",
                    &[("host", name), ("code", &code_label(code))],
                    n,
                );
            }
        }
    }
    let mut family = Family::start(
        &mut out,
        "failures_total",
        "counter",
        "Failed exchanges: malformed requests, time-outs, clients that left mid-body.",
    );
    for (kind, n) in ["malformed", "timed_out", "dropped"]
        .iter()
        .zip(totals.failures)
    {
        family.sample("failures_total", &[("kind", kind)], n);
    }
    let mut family = Family::start(
        &mut out,
        "tls_handshakes_total",
        "counter",
        "Completed TLS handshakes: full, or resumed from a session ticket.",
    );
    for (kind, n) in [
        ("full", totals.tls_handshakes_full),
        ("resumed", totals.tls_handshakes_resumed),
    ] {
        family.sample("tls_handshakes_total", &[("kind", kind)], n);
    }
    let mut family = Family::start(
        &mut out,
        "tls_handshake_failures_total",
        "counter",
        "Failed TLS handshakes, by reason.",
    );
    for (reason, n) in HandshakeFailure::ALL
        .iter()
        .zip(totals.tls_handshake_failures)
    {
        family.sample(
            "tls_handshake_failures_total",
            &[("reason", reason.label())],
            n,
        );
    }
    let packaged_kinds = ["playlist", "init", "segment"];
    let mut family = Family::start(
        &mut out,
        "packaged_responses_total",
        "counter",
        "HLS and DASH answers packaged on the fly: playlists and manifests, init segments, media segments.",
    );
    for (kind, n) in packaged_kinds.iter().zip(totals.packaged) {
        family.sample("packaged_responses_total", &[("kind", kind)], n);
    }
    let mut family = Family::start(
        &mut out,
        "packaged_sent_bytes_total",
        "counter",
        "Body bytes of packaged answers sent, by kind (segments are never throttled).",
    );
    for (kind, n) in packaged_kinds.iter().zip(totals.packaged_bytes) {
        family.sample("packaged_sent_bytes_total", &[("kind", kind)], n);
    }
    let mut family = Family::start(
        &mut out,
        "packaged_set_responses_total",
        "counter",
        "Of the packaged answers, those of rendition sets (….urlset/…), by kind.",
    );
    for (kind, n) in packaged_kinds.iter().zip(totals.set_requests) {
        family.sample("packaged_set_responses_total", &[("kind", kind)], n);
    }

    single(
        &mut out,
        "sent_bytes_total",
        "counter",
        "Bytes sent to clients, heads included.",
        totals.bytes_sent,
    );
    single(
        &mut out,
        "body_sent_bytes_total",
        "counter",
        "Response body bytes sent to clients.",
        totals.body_bytes_sent,
    );
    single(
        &mut out,
        "saved_bytes_total",
        "counter",
        "Body bytes never sent because the response ended first (what throttling saved).",
        totals.bytes_saved,
    );
    single(
        &mut out,
        "streams",
        "gauge",
        "Response bodies in flight now.",
        totals.streams_active,
    );
    single(
        &mut out,
        "throttled_streams",
        "gauge",
        "Throttled streams asleep between slices now.",
        totals.streams_throttled,
    );
    for (name, kind, help, value) in [
        (
            "tls_connections",
            "gauge",
            "HTTPS connections open now.",
            totals.tls_active,
        ),
        (
            "tls_connections_total",
            "counter",
            "HTTPS connections accepted.",
            totals.tls_total,
        ),
        (
            "tls_kernel_connections_total",
            "counter",
            "HTTPS connections whose bodies kernel TLS encrypted.",
            totals.tls_kernel,
        ),
        (
            "hinted_streams",
            "gauge",
            "Streams registered with a player-hint key now.",
            totals.hinted_streams,
        ),
        (
            "hinted_paused_streams",
            "gauge",
            "Hinted streams whose player reports a pause now.",
            totals.hinted_paused,
        ),
        (
            "hint_reports_total",
            "counter",
            "Player reports received on /.hint.",
            totals.hint_reports,
        ),
        (
            "hint_held_bytes",
            "gauge",
            "Bytes paused players' reports hold back now (the wall clock would have sent them).",
            totals.hint_held_bytes,
        ),
        (
            "hint_held_bytes_total",
            "counter",
            "Bytes held back by a pause when their stream ended: never sent.",
            totals.hint_held_total,
        ),
    ] {
        single(&mut out, name, kind, help, value);
    }

    let mut family = Family::start(
        &mut out,
        "slice_lag_seconds",
        "histogram",
        "How late throttled slices went out after their due time.",
    );
    let mut cumulative = 0u64;
    for bucket in 0..LAG_BUCKETS {
        cumulative += totals.lag_histogram[bucket];
        let upper = lag_bucket_upper_ms(bucket);
        if upper == u64::MAX {
            continue;
        }
        let le = format!("{}", upper as f64 / 1000.0);
        family.sample("slice_lag_seconds_bucket", &[("le", &le)], cumulative);
    }
    family.sample("slice_lag_seconds_bucket", &[("le", "+Inf")], cumulative);
    family.sample("slice_lag_seconds_sum", &[], totals.lag_all_us as f64 / 1e6);
    family.sample("slice_lag_seconds_count", &[], cumulative);

    single(
        &mut out,
        "cache_hits_total",
        "counter",
        "Media index cache hits.",
        totals.cache_hits,
    );
    single(
        &mut out,
        "cache_misses_total",
        "counter",
        "Media index cache misses (files indexed).",
        totals.cache_misses,
    );
    single(
        &mut out,
        "cache_bytes",
        "gauge",
        "Memory held by the media caches of all workers.",
        totals.cache_bytes,
    );
    single(
        &mut out,
        "cache_items",
        "gauge",
        "Entries in the media caches of all workers.",
        totals.cache_items,
    );

    let folders: Vec<(usize, String)> = (0..FOLDER_COLUMNS)
        .filter_map(|column| globals.folders.name(column).map(|name| (column, name)))
        .collect();
    let mut family = Family::start(
        &mut out,
        "folder_requests_total",
        "counter",
        "Requests answered from each folder.",
    );
    for (column, name) in &folders {
        family.sample(
            "folder_requests_total",
            &[("folder", name)],
            totals.folder_requests[*column],
        );
    }
    let mut family = Family::start(
        &mut out,
        "folder_body_sent_bytes_total",
        "counter",
        "Body bytes sent from each folder.",
    );
    for (column, name) in &folders {
        family.sample(
            "folder_body_sent_bytes_total",
            &[("folder", name)],
            totals.folder_bytes[*column],
        );
    }

    let slots: Vec<(usize, &crate::stats::StatsSlot)> = (0..region.slots_used())
        .map(|i| (i, region.slot(i)))
        .filter(|(_, slot)| {
            slot.pid.load(Ordering::Relaxed) != 0 || load(&slot.connections_total) > 0
        })
        .collect();
    type SlotCounter = fn(&crate::stats::StatsSlot) -> u64;
    let per_worker: [(&str, &str, &str, SlotCounter); 6] = [
        (
            "worker_requests_total",
            "counter",
            "Requests received, by worker slot (a replaced worker keeps its slot).",
            |slot| slot.requests_total.load(Ordering::Relaxed),
        ),
        (
            "worker_sent_bytes_total",
            "counter",
            "Bytes sent, by worker slot.",
            |slot| slot.bytes_sent.load(Ordering::Relaxed),
        ),
        (
            "worker_connections",
            "gauge",
            "Client connections open now, by worker slot.",
            |slot| slot.connections_active.load(Ordering::Relaxed),
        ),
        (
            "worker_tls_connections",
            "gauge",
            "HTTPS connections open now, by worker slot.",
            |slot| slot.tls_active.load(Ordering::Relaxed),
        ),
        (
            "worker_tls_handshakes_total",
            "counter",
            "Completed TLS handshakes (full and resumed), by worker slot.",
            |slot| {
                slot.tls_handshakes_full.load(Ordering::Relaxed)
                    + slot.tls_handshakes_resumed.load(Ordering::Relaxed)
            },
        ),
        (
            "worker_tls_handshake_failures_total",
            "counter",
            "Failed TLS handshakes, by worker slot.",
            |slot| {
                slot.tls_handshake_failures
                    .iter()
                    .map(|n| n.load(Ordering::Relaxed))
                    .sum()
            },
        ),
    ];
    for (name, kind, help, counter) in per_worker {
        let mut family = Family::start(&mut out, name, kind, help);
        for (index, slot) in &slots {
            family.sample(name, &[("worker", &index.to_string())], counter(slot));
        }
    }
    out
}

//! `GET /` on the admin port: a page an operator leaves open, like HAProxy's
//! stats page. Streams, bandwidth out and saved, requests per second by
//! status class, cache hit rate, per-host, per-folder and per-worker tables,
//! and charts of the last hour drawn as inline SVG from the monitor's
//! per-second history. Self-contained (no script, no external resource; many
//! operators' networks have no internet), refreshing itself every 5 seconds,
//! and narrow enough for a phone.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::history::{History, Sample};
use crate::http::date;
use crate::http::response::html_escape as escape;
use crate::stats::columns::{CODE_COLUMNS, FOLDER_COLUMNS, HOST_COLUMNS, code_label};
use crate::stats::{LAG_WINDOW_SECS, StatsRegion, Totals};

const REFRESH_SECS: u32 = 5;
const CHART_WIDTH: f64 = 600.0;
const CHART_HEIGHT: f64 = 120.0;

/// The whole page.
pub fn render(region: &StatsRegion, totals: &Totals, history: &History, now: &Sample) -> String {
    let globals = region.globals();
    let window = LAG_WINDOW_SECS as i64;
    let rate = |pick: fn(&Sample) -> u64| history.rate(now, window, pick);
    let started = globals.started.load(Ordering::Relaxed);
    let mut page = String::with_capacity(32 * 1024);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <link rel=\"icon\" href=\"data:,\"><title>Loomiere monitor</title><style>{STYLE}</style></head><body>\
         <header><h1>Loomiere</h1><p>version {} · up {} · {} workers running · {} restarts · {} stalled · {} reloads · {}</p></header>",
        env!("CARGO_PKG_VERSION"),
        uptime(now.at - started),
        totals.workers_running,
        globals.worker_restarts.load(Ordering::Relaxed),
        globals.worker_stalls.load(Ordering::Relaxed),
        globals.reloads.load(Ordering::Relaxed),
        escape(&date::format(now.at)),
    );
    let lookups = totals.cache_hits + totals.cache_misses;
    let hit_rate = if lookups == 0 {
        "–".to_string()
    } else {
        format!("{:.1} %", totals.cache_hits as f64 * 100.0 / lookups as f64)
    };
    let per_class: Vec<String> = (1..5)
        .map(|class| format!("{:.1}", history.rate(now, window, |s| s.responses[class])))
        .collect();
    page.push_str("<section class=\"tiles\">");
    tile(
        &mut page,
        "streams",
        "Streams now",
        &totals.streams_active.to_string(),
    );
    tile(
        &mut page,
        "throttled",
        "Throttled now",
        &totals.streams_throttled.to_string(),
    );
    tile(
        &mut page,
        "bandwidth",
        "Bandwidth out",
        &bits_per_second(rate(|s| s.bytes_sent)),
    );
    tile(
        &mut page,
        "saved",
        "Bandwidth saved",
        &bits_per_second(rate(|s| s.bytes_saved)),
    );
    tile(
        &mut page,
        "requests",
        "Requests/s",
        &format!("{:.1}", rate(|s| s.requests)),
    );
    tile(
        &mut page,
        "classes",
        "Responses/s 2xx · 3xx · 4xx · 5xx",
        &per_class.join(" · "),
    );
    tile(&mut page, "cache", "Cache hit rate", &hit_rate);
    // The HTTPS share: of the connections open now, and of all accepted.
    let share = |part: u64, whole: u64| {
        if whole == 0 {
            "–".to_string()
        } else {
            format!("{:.0} %", part as f64 * 100.0 / whole as f64)
        }
    };
    tile(
        &mut page,
        "https",
        "HTTPS share, open · all",
        &format!(
            "{} · {}",
            share(totals.tls_active, totals.connections_active),
            share(totals.tls_total, totals.connections_total)
        ),
    );
    tile(
        &mut page,
        "delay",
        "Slice delay (10 s)",
        &format!(
            "{:.1} ms mean · {:.1} ms max",
            totals.lag_mean_ms(),
            totals.lag_max_us as f64 / 1000.0
        ),
    );
    tile(&mut page, "sent", "Sent in all", &bytes(totals.bytes_sent));
    tile(
        &mut page,
        "saved-total",
        "Saved in all",
        &bytes(totals.bytes_saved),
    );
    page.push_str("</section>");

    let samples: Vec<&Sample> = history.samples().collect();
    let per_second = |pick: fn(&Sample) -> u64| -> Vec<(i64, f64)> {
        samples
            .windows(2)
            .map(|w| {
                let span = (w[1].at - w[0].at).max(1) as f64;
                (
                    w[1].at,
                    pick(w[1]).saturating_sub(pick(w[0])) as f64 * 8.0 / span,
                )
            })
            .collect()
    };
    page.push_str("<section class=\"charts\">");
    chart(
        &mut page,
        "Bandwidth out, last hour",
        &per_second(|s| s.bytes_sent),
        now.at,
        bits_per_second_short,
    );
    chart(
        &mut page,
        "Bandwidth saved, last hour",
        &per_second(|s| s.bytes_saved),
        now.at,
        bits_per_second_short,
    );
    let streams: Vec<(i64, f64)> = samples.iter().map(|s| (s.at, s.streams as f64)).collect();
    chart(&mut page, "Streams, last hour", &streams, now.at, |v| {
        format!("{v:.0}")
    });
    page.push_str("</section>");

    hosts_table(&mut page, region, totals);
    folders_table(&mut page, region, totals);
    workers_table(&mut page, region);
    page.push_str(
        "<footer>Also: <a href=\"/monitor\">text</a> · <a href=\"/monitor?format=json\">JSON</a> · \
         <a href=\"/metrics\">Prometheus</a></footer></body></html>\n",
    );
    page
}

const STYLE: &str = "body{font:15px/1.4 system-ui,sans-serif;margin:0;padding:12px;background:#f6f7f9;color:#1d2330}\
h1{font-size:20px;margin:0}header p{margin:4px 0 12px;color:#566}\
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:8px;align-items:start}\
.tile{background:#fff;border-radius:6px;padding:8px 10px;box-shadow:0 1px 2px #0002}\
.tile b{display:block;font-size:18px}.tile span{color:#566;font-size:13px}\
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:8px;margin-top:12px}\
figure{margin:0;background:#fff;border-radius:6px;padding:8px;box-shadow:0 1px 2px #0002}\
figcaption{font-size:13px;color:#566}svg{width:100%;height:auto}\
table{border-collapse:collapse;background:#fff;margin-top:12px;width:100%;font-size:13px}\
th,td{padding:4px 8px;border-bottom:1px solid #e3e6ea;text-align:right}th:first-child,td:first-child{text-align:left;word-break:break-all}\
h2{font-size:16px;margin:16px 0 0}.wrap{overflow-x:auto}footer{margin-top:16px;font-size:13px;color:#566}";

fn tile(page: &mut String, id: &str, label: &str, value: &str) {
    let _ = write!(
        page,
        "<div class=\"tile\" id=\"{id}\"><span>{}</span><b>{}</b></div>",
        escape(label),
        escape(value)
    );
}

/// A line chart of `points` (Unix second, value) over the hour before `now`.
fn chart(
    page: &mut String,
    title: &str,
    points: &[(i64, f64)],
    now: i64,
    label: fn(f64) -> String,
) {
    let span = super::history::HISTORY_SECS as f64;
    let top = points.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1.0);
    let mut path = String::new();
    for (at, value) in points {
        let x = CHART_WIDTH - (now - at) as f64 / span * CHART_WIDTH;
        let y = CHART_HEIGHT - value / top * (CHART_HEIGHT - 4.0);
        let _ = write!(path, "{:.1},{:.1} ", x.clamp(0.0, CHART_WIDTH), y);
    }
    let _ = write!(
        page,
        "<figure><figcaption>{} (peak {})</figcaption>\
         <svg viewBox=\"0 0 {CHART_WIDTH} {h}\" role=\"img\" aria-label=\"{}\">\
         <rect width=\"{CHART_WIDTH}\" height=\"{CHART_HEIGHT}\" fill=\"#fbfcfd\"/>\
         <polyline fill=\"none\" stroke=\"#2f6fdf\" stroke-width=\"1.5\" points=\"{}\"/>\
         <text x=\"2\" y=\"{t}\" font-size=\"11\" fill=\"#566\">−60 min</text>\
         <text x=\"{r}\" y=\"{t}\" font-size=\"11\" fill=\"#566\" text-anchor=\"end\">now</text></svg></figure>",
        escape(title),
        escape(&label(top)),
        escape(title),
        path.trim_end(),
        h = CHART_HEIGHT + 14.0,
        t = CHART_HEIGHT + 12.0,
        r = CHART_WIDTH - 2.0,
    );
}

fn hosts_table(page: &mut String, region: &StatsRegion, totals: &Totals) {
    page.push_str(
        "<h2>Hosts</h2><div class=\"wrap\"><table id=\"hosts\"><tr><th>host</th><th>requests</th>\
         <th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>codes</th></tr>",
    );
    for column in 0..HOST_COLUMNS {
        let Some(name) = region.globals().hosts.name(column) else {
            continue;
        };
        let codes = &totals.host_responses[column];
        let class = |digit: u16| -> u64 {
            (0..CODE_COLUMNS)
                .filter(|&c| {
                    code_label(c)
                        .parse::<u16>()
                        .is_ok_and(|code| code / 100 == digit)
                })
                .map(|c| codes[c])
                .sum()
        };
        let detail: Vec<String> = (0..CODE_COLUMNS)
            .filter(|&c| codes[c] > 0)
            .map(|c| format!("{}: {}", code_label(c), codes[c]))
            .collect();
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&name),
            totals.host_requests[column],
            class(2),
            class(3),
            class(4),
            class(5),
            escape(&detail.join(", "))
        );
    }
    page.push_str("</table></div>");
}

fn folders_table(page: &mut String, region: &StatsRegion, totals: &Totals) {
    page.push_str("<h2>Folders</h2><div class=\"wrap\"><table id=\"folders\"><tr><th>folder</th><th>requests</th><th>sent</th></tr>");
    for column in 0..FOLDER_COLUMNS {
        if let Some(name) = region.globals().folders.name(column) {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&name),
                totals.folder_requests[column],
                bytes(totals.folder_bytes[column])
            );
        }
    }
    page.push_str("</table></div>");
}

fn workers_table(page: &mut String, region: &StatsRegion) {
    page.push_str(
        "<h2>Workers</h2><div class=\"wrap\"><table id=\"workers\"><tr><th>slot</th><th>pid</th>\
         <th>connections</th><th>streams</th><th>requests</th><th>sent</th></tr>",
    );
    let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
    for index in 0..region.slots_used() {
        let slot = region.slot(index);
        let pid = slot.pid.load(Ordering::Relaxed);
        if pid == 0 {
            continue;
        }
        let _ = write!(
            page,
            "<tr><td>{index}</td><td>{pid}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            load(&slot.connections_active),
            load(&slot.streams_active),
            load(&slot.requests_total),
            bytes(load(&slot.bytes_sent))
        );
    }
    page.push_str("</table></div>");
}

fn bits_per_second(bytes_per_second: f64) -> String {
    bits_per_second_short(bytes_per_second * 8.0)
}

fn bits_per_second_short(bits: f64) -> String {
    match bits {
        b if b >= 1e9 => format!("{:.2} Gbit/s", b / 1e9),
        b if b >= 1e6 => format!("{:.2} Mbit/s", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kbit/s", b / 1e3),
        b => format!("{b:.0} bit/s"),
    }
}

fn bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        b if b >= 1_099_511_627_776.0 => format!("{:.2} TiB", b / 1_099_511_627_776.0),
        b if b >= 1_073_741_824.0 => format!("{:.2} GiB", b / 1_073_741_824.0),
        b if b >= 1_048_576.0 => format!("{:.1} MiB", b / 1_048_576.0),
        b if b >= 1024.0 => format!("{:.1} KiB", b / 1024.0),
        b => format!("{b:.0} B"),
    }
}

fn uptime(seconds: i64) -> String {
    let s = seconds.max(0);
    format!("{}d {}h {}m", s / 86_400, s / 3600 % 24, s / 60 % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_well() {
        assert_eq!(bits_per_second(125_000.0), "1.00 Mbit/s");
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}

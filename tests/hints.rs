//! Player hints: `?hint=<key>` streams follow the play head players report
//! on `/.hint` (through any worker), hold still while paused, top up on
//! resume, bound a lying report to one lead, fall back to the wall clock
//! without fresh reports, and hand the key to a newer request (a seek).
//! Byte assertions are against the media's own curve (ffprobe), with a slice
//! and a socket buffer of tolerance.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::curve::{NeedCurve, Reader};
use common::{
    Response, Server, TempDir, admin_get, ensure_fixtures, free_port, json_number, media_folder,
    options_file,
};

const LEAD: f64 = 3.0;
const PERIOD: f64 = 0.25;
const SOCKET_BUFFER: u64 = 128 * 1024;

/// Two workers, `throttle = 3`, `period = 0.25`, hints on for every host but
/// `plain` (and `fast`, unthrottled, for reference bodies).
fn server(extra_folder: Option<&std::path::Path>) -> (Server, u16) {
    ensure_fixtures();
    let dir = TempDir::new("hints");
    let media = media_folder().join("generated");
    let folders = match extra_folder {
        Some(extra) => format!(
            "folders = {{ '{}', '{}' }}",
            extra.display(),
            media.display()
        ),
        None => format!("folder = '{}'", media.display()),
    };
    let admin = free_port();
    let path = options_file(
        &dir,
        &format!(
            "options.throttle = {LEAD}\noptions.period = {PERIOD}\noptions.workers = 2\n\
             options.hosts['^fast$'] = {{ folder = '{0}', throttle = 0 }}\n\
             options.hosts['^plain$'] = {{ folder = '{0}' }}\n\
             options.hosts[''] = {{ {folders}, hints = true }}\n",
            media.display()
        ),
    );
    let server = Server::start(&["-o", path.to_str().expect("utf8"), "-r", &admin.to_string()]);
    std::mem::forget(dir);
    (server, admin)
}

/// Sends one request on a fresh connection (so reports spread over the
/// workers) and reads the answer.
fn send(port: u16, method: &str, target: &str, host: &str) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    Response::parse(&bytes, method == "HEAD").expect("a response")
}

fn report(port: u16, key: &str, position: f64, paused: bool) -> u16 {
    let target = format!(
        "/.hint?key={key}&t={position:.3}&paused={}",
        u8::from(paused)
    );
    send(port, "POST", &target, "localhost").status
}

/// Requests per worker slot, from /metrics.
fn requests_by_worker(admin: u16) -> Vec<u64> {
    common::worker_metric(admin, "loomiere_worker_requests_total")
        .into_values()
        .collect()
}

#[test]
fn reports_steer_the_stream_through_any_worker_and_a_pause_holds_it() {
    let (server, admin) = server(None);
    let port = server.port;
    let curve = NeedCurve::probe(&media_folder().join("generated/vbr60.mp4"));
    let key = "reports-steer-the-stream-0123";
    let before = requests_by_worker(admin);
    let reader = Reader::get(port, &format!("/vbr60.mp4?hint={key}"), &[]);
    assert_eq!(reader.status, 200);
    let started = Instant::now();
    let elapsed = || started.elapsed().as_secs_f64();
    // Playing from 0 to 4 s, reporting twice a second.
    while elapsed() < 4.0 {
        assert_eq!(report(port, key, elapsed(), false), 204);
        std::thread::sleep(Duration::from_millis(500));
    }
    let at_pause = reader.held();
    assert!(
        at_pause <= curve.needed(4.2 + LEAD) + SOCKET_BUFFER,
        "{at_pause}"
    );
    // Paused at 4 s for 8 s: nothing beyond one slice more.
    let pause_started = elapsed();
    let mut counters_seen = false;
    while elapsed() < 12.0 {
        assert_eq!(report(port, key, 4.0, true), 204);
        if elapsed() > 8.0 && !counters_seen {
            let json = admin_get(admin, "/monitor?format=json");
            assert_eq!(json_number(&json, "hints:streams"), 1.0, "{json}");
            assert_eq!(json_number(&json, "hints:paused"), 1.0, "{json}");
            let held_back = json_number(&json, "hints:held:bytes") as u64;
            let wall_clock_more = curve.needed(elapsed() - 0.5 + LEAD) - curve.needed(4.0 + LEAD);
            assert!(
                held_back + SOCKET_BUFFER >= wall_clock_more,
                "held back {held_back}, the wall clock would have sent {wall_clock_more} more"
            );
            counters_seen = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(counters_seen);
    let after_pause = reader.held();
    let slice = curve.needed(4.0 + LEAD + PERIOD) - curve.needed(4.0 + LEAD);
    assert!(
        after_pause <= at_pause + slice + SOCKET_BUFFER,
        "{} bytes arrived during an {:.1} s pause",
        after_pause - at_pause,
        elapsed() - pause_started
    );
    let wall_clock = curve.needed(elapsed() + LEAD);
    assert!(
        wall_clock > after_pause + 4 * SOCKET_BUFFER,
        "the test must tell hints from the wall clock: {wall_clock} vs {after_pause}"
    );
    // Resumed at 12 s from 4 s: the stream follows 4 + (elapsed - 12) + lead.
    let resumed = elapsed();
    while elapsed() < 16.0 {
        let position = 4.0 + elapsed() - resumed;
        assert_eq!(report(port, key, position, false), 204);
        std::thread::sleep(Duration::from_millis(500));
        let play_head = 4.0 + elapsed() - resumed;
        let held = reader.held();
        assert!(
            held <= curve.needed(play_head + LEAD + PERIOD) + SOCKET_BUFFER,
            "{held} bytes at play head {play_head:.2}: more than lead + slice"
        );
        if elapsed() - resumed > 1.5 {
            assert!(
                held + SOCKET_BUFFER >= curve.needed(play_head - 1.0 + LEAD),
                "{held} bytes at play head {play_head:.2}: the stream fell behind"
            );
        }
    }
    // A report far ahead of what was sent gains at most one lead.
    let before_lie = reader.held();
    let received = curve.time_at(before_lie + SOCKET_BUFFER);
    assert_eq!(report(port, key, 55.0, false), 204);
    std::thread::sleep(Duration::from_millis(1500));
    let after_lie = reader.held();
    assert!(
        after_lie <= curve.needed(received + LEAD + PERIOD) + SOCKET_BUFFER,
        "a lie got {after_lie} bytes; one lead past {received:.2} s is {}",
        curve.needed(received + LEAD)
    );
    assert!(after_lie < reader.content_length / 2);
    // Both workers took reports, and the owner heard them all.
    let after = requests_by_worker(admin);
    let grew = after
        .iter()
        .zip(before.iter().chain(std::iter::repeat(&0)))
        .filter(|(a, b)| a > b)
        .count();
    assert_eq!(
        grew, 2,
        "reports reached both workers: {before:?} → {after:?}"
    );
    reader.hang_up();
    // The stream ended: its key is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while report(port, key, 20.0, false) != 404 {
        assert!(Instant::now() < deadline, "the key outlived its stream");
        std::thread::sleep(Duration::from_millis(50));
    }
    let json = admin_get(admin, "/monitor?format=json");
    assert_eq!(json_number(&json, "hints:streams"), 0.0, "{json}");
    assert!(json_number(&json, "hints:reports") >= 30.0, "{json}");
}

#[test]
fn a_seek_takes_the_key_over_and_the_old_stream_keeps_the_wall_clock() {
    let (server, _) = server(None);
    let port = server.port;
    let curve = NeedCurve::probe(&media_folder().join("generated/vbr60.mp4"));
    let key = "taken-over-by-a-seek-4567";
    // The old request plays from the start; the new one seeks to 21 s.
    let old = Reader::get(port, &format!("/vbr60.mp4?hint={key}"), &[]);
    std::thread::sleep(Duration::from_millis(300));
    let new = Reader::get(port, &format!("/vbr60.mp4?start=21&hint={key}"), &[]);
    assert_eq!(new.status, 200);
    assert_eq!(report(port, key, 0.0, true), 204);
    std::thread::sleep(Duration::from_millis(1000));
    let (old_early, new_early) = (old.held(), new.held());
    for _ in 0..6 {
        assert_eq!(report(port, key, 0.0, true), 204);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (old_late, new_late) = (old.held(), new.held());
    assert!(
        new_late <= new_early + SOCKET_BUFFER,
        "the paused new stream grew by {}",
        new_late - new_early
    );
    let elapsed = old.elapsed();
    assert!(
        old_late + SOCKET_BUFFER >= curve.needed(elapsed - 1.0 + LEAD),
        "the old stream lost its key and follows the wall clock ({old_late} after {elapsed:.1} s, {old_early} before)"
    );
}

#[test]
fn without_fresh_reports_the_wall_clock_rules_again() {
    let (server, _) = server(None);
    let port = server.port;
    let curve = NeedCurve::probe(&media_folder().join("generated/vbr60.mp4"));
    let key = "stale-reports-fall-back-89";
    let reader = Reader::get(port, &format!("/vbr60.mp4?hint={key}"), &[]);
    assert_eq!(report(port, key, 0.0, true), 204);
    std::thread::sleep(Duration::from_secs(5));
    let paused = reader.held();
    assert!(
        paused <= curve.needed(LEAD + PERIOD) + SOCKET_BUFFER,
        "{paused} bytes while the one report says paused at 0"
    );
    // The report is 10 s old at about 10 s: the wall clock takes over.
    reader.wait_until(13.0);
    let later = reader.held();
    assert!(
        later + SOCKET_BUFFER >= curve.needed(12.0 + LEAD),
        "{later} bytes at 13 s: the stale report still held the stream"
    );
}

#[test]
fn malformed_reports_are_400_unknown_keys_404_and_the_script_is_served() {
    let (server, _) = server(None);
    let port = server.port;
    for target in [
        "/.hint?key=short&t=1",
        "/.hint?key=bad!key-0123456789&t=1",
        "/.hint?key=a-well-formed-key-000&t=abc",
        "/.hint?key=a-well-formed-key-000&t=-1",
        "/.hint?key=a-well-formed-key-000&t=inf",
        "/.hint?key=a-well-formed-key-000",
        "/.hint?key=a-well-formed-key-000&t=1&paused=2",
        "/.hint?t=1",
    ] {
        assert_eq!(
            send(port, "GET", target, "localhost").status,
            400,
            "{target}"
        );
    }
    let unknown = send(
        port,
        "GET",
        "/.hint?key=a-well-formed-key-000&t=1",
        "localhost",
    );
    assert_eq!(unknown.status, 404);
    assert_eq!(
        send(
            port,
            "PUT",
            "/.hint?key=a-well-formed-key-000&t=1",
            "localhost"
        )
        .status,
        405
    );
    assert_eq!(
        send(port, "GET", "/.hint?key=a-well-formed-key-000&t=1", "plain").status,
        404,
        "a host without hints has no /.hint"
    );
    // A registered key: 204 by GET and POST, open to other origins.
    let reader = Reader::get(port, "/vbr60.mp4?hint=a-registered-key-0001", &[]);
    let ok = send(
        port,
        "GET",
        "/.hint?key=a-registered-key-0001&t=0.5",
        "localhost",
    );
    assert_eq!(ok.status, 204);
    assert_eq!(ok.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(ok.header("Content-Length"), None);
    let posted = send(
        port,
        "POST",
        "/.hint?key=a-registered-key-0001&t=1&paused=1",
        "localhost",
    );
    assert_eq!(posted.status, 204);
    drop(reader);
    // The hint argument is not part of the representation.
    let with = send(
        port,
        "HEAD",
        "/vbr60.mp4?start=10&hint=a-registered-key-0002",
        "localhost",
    );
    let without = send(port, "HEAD", "/vbr60.mp4?start=10", "localhost");
    assert_eq!(with.header("ETag"), without.header("ETag"));
    let script = send(port, "GET", "/.hint.js", "localhost");
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("Content-Type"),
        Some("text/javascript; charset=utf-8")
    );
    let shipped = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/loomiere/hint.js"),
    )
    .expect("hint.js");
    assert_eq!(script.body, shipped);
}

/// The page a real browser plays: hint.js on a `<video data-loomiere>`,
/// three seconds of play, a 15 s pause, four seconds more; then it reports
/// what it saw by fetching `/done?…` (a 404 the test finds in the access log).
const PAGE: &str = r#"<!DOCTYPE html>
<html><body>
<video data-loomiere src="/vbr60.mp4" muted playsinline preload="auto"></video>
<script src="/.hint.js"></script>
<script>
var video = document.querySelector('video');
var phase = 'loading', resumedAt = 0, waitingAfterResume = 0, errors = [];
function finish() {
  fetch('/done?phase=' + phase + '&t0=' + resumedAt.toFixed(3) + '&t1=' + video.currentTime.toFixed(3) +
        '&waiting=' + waitingAfterResume + '&errors=' + encodeURIComponent(errors.join(',')) +
        '&hinted=' + (video.currentSrc.indexOf('hint=') > 0 ? 1 : 0));
}
video.addEventListener('error', function () { errors.push('media-error-' + (video.error && video.error.code)); finish(); });
video.addEventListener('waiting', function () { if (phase === 'resumed') waitingAfterResume++; });
video.addEventListener('playing', function first() {
  video.removeEventListener('playing', first);
  phase = 'playing';
  setTimeout(function () {
    video.pause();
    phase = 'paused';
    setTimeout(function () {
      resumedAt = video.currentTime;
      phase = 'resumed';
      video.play();
      setTimeout(finish, 4000);
    }, 15000);
  }, 3000);
});
video.play().catch(function (e) { errors.push('play-' + e.name); finish(); });
</script>
</body></html>
"#;

#[test]
fn a_browser_player_pauses_without_downloading_and_resumes_without_waiting() {
    let pages = TempDir::new("hints-page");
    pages.write("hint-test.html", PAGE.as_bytes());
    let (server, admin) = server(Some(pages.path()));
    let profile = TempDir::new("hints-chromium");
    let mut browser = common::headless_chromium(
        &format!("http://127.0.0.1:{}/hint-test.html", server.port),
        &profile,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut most_paused, mut most_held) = (0.0f64, 0.0f64);
    let done = loop {
        let json = admin_get(admin, "/monitor?format=json");
        most_paused = most_paused.max(json_number(&json, "hints:paused"));
        most_held = most_held.max(json_number(&json, "hints:held:bytes"));
        if let Some(line) = server.log_line("GET /done?") {
            break line;
        }
        if Instant::now() > deadline {
            let _ = browser.kill();
            panic!("the page never finished:\n{}", server.log_text());
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = browser.kill();
    let _ = browser.wait();
    let value = |name: &str| -> String {
        done.split(&format!("{name}="))
            .nth(1)
            .and_then(|rest| rest.split(['&', ' ']).next())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(value("errors"), "", "{done}");
    assert_eq!(value("phase"), "resumed", "{done}");
    assert_eq!(value("hinted"), "1", "hint.js rewrote the source: {done}");
    let (t0, t1): (f64, f64) = (
        value("t0").parse().expect("t0"),
        value("t1").parse().expect("t1"),
    );
    assert!(
        t1 - t0 >= 2.5,
        "the video advanced {:.2} s after resuming: {done}",
        t1 - t0
    );
    assert_eq!(value("waiting"), "0", "it waited after resuming: {done}");
    assert_eq!(most_paused, 1.0, "the server saw the pause");
    assert!(
        most_held > 100_000.0,
        "bytes held back by the pause: {most_held}"
    );
    let json = admin_get(admin, "/monitor?format=json");
    assert!(json_number(&json, "hints:reports") >= 10.0, "{json}");
}

/// A film whose download ends long before its playback: hint.js must stop
/// reporting once the rest is buffered (the server follows no stream for the
/// key then, so every later report would be a 404). The 4 s clip arrives in
/// about a second with a 3 s lead; the page plays it twice.
const DOWNLOADED_PAGE: &str = r#"<!DOCTYPE html>
<html><body>
<video data-loomiere src="/clip.mp4" muted playsinline preload="auto"></video>
<script src="/.hint.js"></script>
<script>
var video = document.querySelector('video');
var rounds = 0, buffered = 0, errors = [];
function finish() {
  fetch('/done?rounds=' + rounds + '&buffered=' + buffered + '&errors=' + encodeURIComponent(errors.join(',')));
}
function all() {
  var r = video.buffered;
  return r.length > 0 && r.start(0) <= 0.1 && r.end(r.length - 1) >= video.duration - 0.1;
}
video.addEventListener('error', function () { errors.push('media-error-' + (video.error && video.error.code)); finish(); });
video.addEventListener('ended', function () {
  rounds++;
  if (all()) buffered++;
  if (rounds === 2) { finish(); return; }
  video.currentTime = 0;
  video.play();
});
video.play().catch(function (e) { errors.push('play-' + e.name); finish(); });
</script>
</body></html>
"#;

#[test]
fn a_browser_player_stops_reporting_once_the_film_is_downloaded() {
    let pages = TempDir::new("hints-downloaded");
    pages.write("downloaded.html", DOWNLOADED_PAGE.as_bytes());
    pages.write(
        "clip.mp4",
        &std::fs::read(media_folder().join("sample.mp4")).expect("sample.mp4"),
    );
    let (server, _admin) = server(Some(pages.path()));
    let profile = TempDir::new("hints-downloaded-chromium");
    let mut browser = common::headless_chromium(
        &format!("http://127.0.0.1:{}/downloaded.html", server.port),
        &profile,
    );
    let found = server.wait_for_log("GET /done?", Duration::from_secs(60));
    let _ = browser.kill();
    let _ = browser.wait();
    assert!(found, "the page never finished:\n{}", server.log_text());
    let done = server.log_line("GET /done?").unwrap_or_default();
    assert!(done.contains("rounds=2&buffered=2&errors= "), "{done}");
    // A report answered 404 came when the server had no stream for the key:
    // at the start, before the media request (the play event comes first),
    // or after the stream ended. One may slip into the moment between the
    // last byte leaving the server and the browser buffering it; without the
    // check there is one a second of playback.
    let log = server.log_text();
    let reports: Vec<&str> = log.lines().filter(|l| l.contains("/.hint?key=")).collect();
    let position = |line: &str| -> f64 {
        line.split("&t=")
            .nth(1)
            .and_then(|rest| rest.split('&').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or(0.0)
    };
    let late = reports
        .iter()
        .filter(|l| l.contains("\" 404 ") && position(l) >= 0.5)
        .count();
    assert!(
        late <= 1,
        "{late} reports after the download ended:\n{}",
        reports.join("\n")
    );
}

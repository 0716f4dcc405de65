//! The reason HTTPS exists, pinned in a real browser: headless Chromium
//! loads an HTTPS page from one host that embeds a `<video data-loomiere>`
//! (with hint.js) and an hls.js player from another HTTPS host, both served
//! by Loomiere with a certificate from a test CA (trusted by its key's hash,
//! `--ignore-certificate-errors-spki-list`). The film plays, the hint
//! reports arrive, hls.js plays — and the same page pointing at the
//! plain-HTTP URL of the film fails to load it.

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    Server, TempDir, admin_get, ensure_fixtures, free_port, json_number, media_folder, options_file,
};
use pki::Pki;

/// The base64 SHA-256 of a certificate's public key, as Chromium's
/// `--ignore-certificate-errors-spki-list` takes it.
fn spki_hash(cert: &Path) -> String {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | openssl base64 -A",
            cert.display()
        ))
        .output()
        .expect("openssl");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The page: a hinted `<video>` from the media host over HTTPS, an hls.js
/// player of the same film, and the film's plain-HTTP URL, which a secure
/// page must not load; it reports to `/done?…` on its own host.
fn page(media: &str, plain: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html><body>
<video id="direct" data-loomiere src="{media}/vbr60.mp4" muted playsinline preload="auto"></video>
<video id="hls" muted playsinline></video>
<video id="plain" src="{plain}/vbr60.mp4" muted playsinline preload="auto"></video>
<script src="{media}/.hint.js"></script>
<script src="hls.min.js"></script>
<script>
var result = {{ direct: 0, hls: 0, plain: 'pending', hinted: 0, errors: [] }};
var reported = false;
function finish() {{
  if (reported) return;
  reported = true;
  var direct = document.getElementById('direct');
  result.hinted = direct.currentSrc.indexOf('hint=') > 0 ? 1 : 0;
  fetch('/done?direct=' + result.direct.toFixed(2) + '&hls=' + result.hls.toFixed(2) +
        '&plain=' + result.plain + '&plainready=' + document.getElementById('plain').readyState +
        '&hinted=' + result.hinted +
        '&errors=' + encodeURIComponent(result.errors.join(',')));
}}
function watch(video, key) {{
  video.addEventListener('timeupdate', function () {{ result[key] = video.currentTime; }});
  video.addEventListener('error', function () {{ result.errors.push(key + '-' + (video.error && video.error.code)); }});
  video.play().catch(function (e) {{ result.errors.push(key + '-play-' + e.name); }});
}}
watch(document.getElementById('direct'), 'direct');
var hlsVideo = document.getElementById('hls');
if (Hls.isSupported()) {{
  var hls = new Hls();
  hls.loadSource('{media}/vbr60.mp4/master.m3u8');
  hls.attachMedia(hlsVideo);
  hls.on(Hls.Events.ERROR, function (event, data) {{ if (data.fatal) result.errors.push('hls-' + data.details); }});
  hls.on(Hls.Events.MANIFEST_PARSED, function () {{ watch(hlsVideo, 'hls'); }});
}} else {{
  result.errors.push('hls-unsupported');
}}
var plain = document.getElementById('plain');
plain.addEventListener('error', function () {{ result.plain = 'failed'; }});
plain.addEventListener('loadeddata', function () {{ result.plain = 'loaded'; }});
plain.play().catch(function () {{}});
setTimeout(finish, 12000);
</script>
</body></html>
"#
    )
}

#[test]
fn an_https_page_plays_loomiere_films_over_https_and_not_over_plain_http() {
    ensure_fixtures();
    let pki = Pki::new();
    let (cert, key) = pki.issue("browser", &["page.test", "media.test"], None);
    let libraries = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/players/fetch.sh"
    ))
    .output()
    .expect("tests/players/fetch.sh");
    assert!(
        libraries.status.success(),
        "{}",
        String::from_utf8_lossy(&libraries.stderr)
    );
    let libraries = String::from_utf8(libraries.stdout).expect("utf8");
    let site = TempDir::new("https-browser-site");
    let hls = std::fs::read(Path::new(libraries.trim()).join("hls.min.js")).expect("hls.min.js");
    site.write("hls.min.js", &hls);
    let admin = free_port();
    let dir = TempDir::new("https-browser");
    let options = options_file(
        &dir,
        &format!(
            "options.tls = {{ port = 0, cert = '{}', key = '{}' }}\n\
             options.hosts['^media\\\\.test'] = {{ folder = '{}', hints = true, cors = '*' }}\n\
             options.hosts['^page\\\\.test'] = {{ folder = '{}' }}\n",
            cert.display(),
            key.display(),
            media_folder().join("generated").display(),
            site.path().display()
        ),
    );
    let admin_arg = admin.to_string();
    let server = Server::start(&["-o", options.to_str().expect("utf8"), "-r", &admin_arg]);
    // The start-up line is stored a moment after the port it names is read.
    assert!(server.wait_for_log("https://", Duration::from_secs(10)));
    let line = server.log_line("https://").expect("the HTTPS address");
    let port: u16 = line
        .split("https://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|address| address.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .expect("the HTTPS port");
    site.write(
        "page.html",
        page(
            &format!("https://media.test:{port}"),
            &format!("http://media.test:{}", server.port),
        )
        .as_bytes(),
    );
    let profile = TempDir::new("https-browser-chromium");
    let mut browser = common::headless_chromium_with(
        &format!("https://page.test:{port}/page.html"),
        &profile,
        &[
            "--host-resolver-rules=MAP page.test 127.0.0.1, MAP media.test 127.0.0.1".to_string(),
            format!("--ignore-certificate-errors-spki-list={}", spki_hash(&cert)),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        if let Some(line) = server.log_line("GET /done?") {
            break line;
        }
        if Instant::now() > deadline {
            let _ = browser.kill();
            panic!("the page never reported:\n{}", server.log_text());
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
    let direct: f64 = value("direct").parse().expect("direct");
    let hls_time: f64 = value("hls").parse().expect("hls");
    assert!(
        direct >= 3.0,
        "the HTTPS film did not play (currentTime {direct}): {done}"
    );
    assert_eq!(
        value("hinted"),
        "1",
        "hint.js did not hint the HTTPS film: {done}"
    );
    assert!(
        hls_time >= 3.0,
        "hls.js did not play over HTTPS ({hls_time}): {done}"
    );
    // Chromium blocks (or upgrades to HTTPS, which the plain port does not
    // speak) the plain-HTTP film: it never gets a frame of it.
    assert_ne!(
        value("plain"),
        "loaded",
        "the plain-HTTP film loaded in an HTTPS page: {done}"
    );
    assert_eq!(
        value("plainready"),
        "0",
        "the plain-HTTP film has data: {done}"
    );
    let errors = value("errors");
    assert!(
        errors
            .split("%2C")
            .all(|e| e.is_empty() || e.starts_with("plain")),
        "errors besides the plain URL's: {done}"
    );
    let log = server.log_text();
    let film_lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("\"GET /vbr60.mp4"))
        .collect();
    // (The hinted stream is still going, so it has no log line yet; the
    // report count below shows it.)
    assert!(!film_lines.is_empty(), "the film was fetched: {log}");
    assert!(
        film_lines.iter().all(|line| line.ends_with(" TLSv1.3")),
        "the film was fetched over plain HTTP: {film_lines:?}"
    );
    assert!(
        log.contains("GET /vbr60.mp4/seg-"),
        "hls.js fetched segments: {log}"
    );
    let json = admin_get(admin, "/monitor?format=json");
    assert!(
        json_number(&json, "hints:reports") >= 1.0,
        "no hint report arrived: {json}"
    );
    assert!(
        json_number(&json, "net:tls:handshakes:full") >= 1.0,
        "{json}"
    );
}

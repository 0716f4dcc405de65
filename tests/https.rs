//! HTTPS against the real binary with real clients: curl, `openssl
//! s_client`, ffprobe and a rustls client, all trusting a test CA made here
//! with rcgen. Files, ranges, seeks, keep-alive, a throttled body's pacing
//! and HLS over TLS; certificates by SNI, 421, the redirect to HTTPS and
//! its ACME exception, HSTS; protocol versions, ALPN, resumption on any
//! worker; handshakes that stop or are not TLS; `-t` on bad certificates.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::curve::NeedCurve;
use common::{
    BINARY, Server, TempDir, admin_get, ensure_fixtures, free_port, media_folder, options_file,
    sha256_bytes, sha256_file,
};
#[path = "common/https.rs"]
mod https;
#[path = "common/pki.rs"]
mod pki;

use https::{curl, https_port, line_value, path_str, s_client, server_and_admin, server_with};
use pki::Pki;

#[test]
fn files_ranges_seeks_and_keep_alive_work_over_https() {
    let pki = Pki::new();
    let (server, port, _dir) = server_with(&pki, "options.throttle = 0");
    let film = media_folder().join("generated/vbr60.mp4");
    let out = TempDir::new("https-out");
    let whole = out.path().join("whole.mp4");
    let (_, info) = curl(
        &pki,
        "localhost",
        port,
        &[
            "-o",
            path_str(&whole),
            "-w",
            "%{http_code} %{ssl_verify_result}",
            &format!("https://localhost:{port}/vbr60.mp4"),
        ],
    );
    assert_eq!(info, "200 0");
    assert_eq!(sha256_file(&whole), sha256_file(&film), "the body differs");
    // HEAD: the head only, with the length.
    let (head, _) = curl(
        &pki,
        "localhost",
        port,
        &["-I", &format!("https://localhost:{port}/vbr60.mp4")],
    );
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let size = std::fs::metadata(&film).expect("fixture").len();
    assert!(head.contains(&format!("content-length: {size}")), "{head}");
    // A range: exactly those bytes.
    let (range, _) = curl(
        &pki,
        "localhost",
        port,
        &[
            "-r",
            "1000-50999",
            &format!("https://localhost:{port}/vbr60.mp4"),
        ],
    );
    let original = std::fs::read(&film).expect("fixture");
    assert_eq!(sha256_bytes(&range), sha256_bytes(&original[1000..51000]));
    // Two requests on one connection (keep-alive), then a seek ffprobe accepts.
    let seeked = out.path().join("seeked.mp4");
    let (_, info) = curl(
        &pki,
        "localhost",
        port,
        &[
            "-o",
            "/dev/null",
            "-o",
            path_str(&seeked),
            "-w",
            "%{num_connects} ",
            &format!("https://localhost:{port}/vbr60.mp4"),
            &format!("https://localhost:{port}/vbr60.mp4?start=20"),
        ],
    );
    assert_eq!(info.split_whitespace().collect::<Vec<_>>(), ["1", "0"]);
    let probe = common::probe(path_str(&seeked)).expect("ffprobe reads the seek");
    // The seek snaps back to the keyframe at or before 20 s.
    assert!(
        (39.0..46.0).contains(&probe.span()),
        "a seek to 20 s of a 60 s film lasts {} s",
        probe.span()
    );
    // The access log says it was HTTPS.
    assert!(server.wait_for_log(
        "\"GET /vbr60.mp4?start=20 HTTP/1.1\" 200",
        Duration::from_secs(5)
    ));
    let line = server
        .log_line("GET /vbr60.mp4?start=20")
        .expect("a log line");
    assert!(line.ends_with(" TLSv1.3"), "{line}");
}

#[test]
fn hls_and_a_seek_are_read_by_ffprobe_over_https() {
    let pki = Pki::new();
    let (_server, port, _dir) = server_with(&pki, "");
    for url in [
        format!("https://localhost:{port}/vbr60.mp4/master.m3u8"),
        format!("https://localhost:{port}/vbr60.mp4?start=30"),
    ] {
        let output = Command::new("ffprobe")
            .args(["-v", "error", "-tls_verify", "1", "-ca_file"])
            .arg(pki.ca())
            .args(["-show_entries", "format=duration", "-of", "csv=p=0"])
            .arg(&url)
            .output()
            .expect("run ffprobe");
        let duration: f64 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                panic!("ffprobe {url}: {}", String::from_utf8_lossy(&output.stderr))
            });
        assert!(duration > 25.0, "{url}: {duration} s");
    }
}

/// A rustls client trusting the test CA.
fn client_config(pki: &Pki) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(pki.ca()).expect("CA");
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("CA PEM")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

use rustls::pki_types::pem::PemObject;

#[test]
fn a_throttled_body_over_https_follows_the_media_timeline() {
    const LEAD: f64 = 3.0;
    const PERIOD: f64 = 0.25;
    // A socket buffer in flight, and rustls's queue of records.
    const SLACK: u64 = 128 * 1024 + 64 * 1024;
    let pki = Pki::new();
    let (_server, port, _dir) = server_with(
        &pki,
        &format!("options.throttle = {LEAD}\noptions.period = {PERIOD}"),
    );
    let curve = NeedCurve::probe(&media_folder().join("generated/vbr60.mp4"));
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let connection =
        rustls::ClientConnection::new(client_config(&pki), name).expect("client connection");
    let socket = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(connection, socket);
    tls.write_all(b"GET /vbr60.mp4 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tls.read_exact(&mut byte).expect("head");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
    let started = Instant::now();
    let held = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&held);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = tls.read(&mut buf) {
            if n == 0 {
                break;
            }
            counter.fetch_add(n as u64, Ordering::Release);
        }
    });
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_millis(100));
        samples.push((
            started.elapsed().as_secs_f64(),
            held.load(Ordering::Acquire),
        ));
    }
    let (at, first) = samples[4];
    assert!(
        first >= curve.needed(LEAD),
        "{first} bytes after {at:.2} s, fewer than the lead needs"
    );
    for &(elapsed, bytes) in &samples {
        let most = curve.needed(LEAD + elapsed + PERIOD) + SLACK;
        assert!(
            bytes <= most,
            "{bytes} bytes after {elapsed:.2} s, more than {most}"
        );
        if elapsed >= 1.0 {
            let least = curve.needed(LEAD + elapsed - 1.0).saturating_sub(SLACK);
            assert!(
                bytes >= least,
                "{bytes} bytes after {elapsed:.2} s: fell behind"
            );
        }
    }
}

#[test]
fn certificates_follow_sni_and_a_misdirected_request_gets_421() {
    let pki = Pki::new();
    let (b_cert, b_key) = pki.issue("b", &["b.test"], None);
    let (server, port, _dir) = server_with(
        &pki,
        &format!(
            "options.hosts['^b\\\\.test$'] = {{ folder = '{}', cert = '{}', key = '{}' }}",
            media_folder().join("generated").display(),
            path_str(&b_cert),
            path_str(&b_key)
        ),
    );
    let subject = |name: &str| {
        let text = s_client(
            port,
            &["-servername", name, "-CAfile", path_str(&pki.ca())],
            "",
        );
        let subject = text
            .lines()
            .find(|l| l.starts_with("subject="))
            .unwrap_or("")
            .to_string();
        (subject, text.contains("Verify return code: 0 (ok)"))
    };
    let (a, a_ok) = subject("a.test");
    assert!(a.contains("localhost") && a_ok, "{a}");
    let (b, b_ok) = subject("b.test");
    assert!(b.contains("b.test") && b_ok, "{b}");
    // No SNI: the listener's certificate.
    let text = s_client(port, &["-noservername"], "");
    assert!(
        text.contains("CN = localhost") || text.contains("CN=localhost"),
        "{text}"
    );
    // Each host by its own name works...
    let (_, info) = curl(
        &pki,
        "b.test",
        port,
        &[
            "-r",
            "0-99",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("https://b.test:{port}/vbr60.mp4"),
        ],
    );
    assert_eq!(info, "206");
    // ...but a connection made for a.test asking for b.test is misdirected.
    let (body, info) = curl(
        &pki,
        "a.test",
        port,
        &[
            "-H",
            "Host: b.test",
            "-r",
            "0-99",
            "-w",
            "\n%{http_code}",
            &format!("https://a.test:{port}/vbr60.mp4"),
        ],
    );
    assert_eq!(info, "421", "{}", String::from_utf8_lossy(&body));
    assert!(server.wait_for_log("421", Duration::from_secs(5)));
}

#[test]
fn plain_http_redirects_to_https_except_acme_and_hsts_is_only_on_https() {
    let pki = Pki::new();
    let folder = TempDir::new("https-acme");
    folder.write(
        ".well-known/acme-challenge/token123",
        b"token123.thumbprint",
    );
    folder.write("page.txt", b"hello");
    let (server, port, _dir) = server_with(
        &pki,
        &format!(
            "options.mimes['text/plain'] = 'txt'\n\
             options.hosts['^secure\\\\.test'] = {{ folder = '{}', https = 'redirect', hsts = 31536000 }}",
            folder.path().display()
        ),
    );
    let plain = common::Response::parse(
        &server.raw(
            b"GET /page.txt?x=1 HTTP/1.1\r\nHost: secure.test:8080\r\nConnection: close\r\n\r\n",
        ),
        false,
    )
    .expect("a response");
    assert_eq!(plain.status, 308);
    assert_eq!(
        plain.header("location"),
        Some(format!("https://secure.test:{port}/page.txt?x=1").as_str())
    );
    assert!(plain.header("strict-transport-security").is_none());
    // The ACME challenge stays on plain HTTP, without HSTS.
    let acme = common::Response::parse(
        &server.raw(b"GET /.well-known/acme-challenge/token123 HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n"),
        false,
    )
    .expect("a response");
    assert_eq!(acme.status, 200, "{:?}", acme.body);
    assert_eq!(acme.body, b"token123.thumbprint");
    assert!(acme.header("strict-transport-security").is_none());
    // Over HTTPS: the page, with HSTS (also on an error).
    let (head, _) = curl(
        &pki,
        "secure.test",
        port,
        &["-k", "-i", &format!("https://secure.test:{port}/page.txt")],
    );
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    assert!(head.ends_with("hello"), "{head}");
    let (missing, _) = curl(
        &pki,
        "secure.test",
        port,
        &["-k", "-i", &format!("https://secure.test:{port}/none.txt")],
    );
    let missing = String::from_utf8_lossy(&missing).to_ascii_lowercase();
    assert!(missing.starts_with("http/1.1 404"), "{missing}");
    assert!(missing.contains("strict-transport-security: max-age=31536000"));
    // Other hosts are not redirected.
    assert_eq!(server.get("/vbr60.mp4", &["Range: bytes=0-9"]).status, 206);
}

#[test]
fn tls_1_3_and_1_2_negotiate_older_versions_are_refused_and_alpn_is_http_1_1() {
    let pki = Pki::new();
    let (_server, port, _dir) = server_with(&pki, "");
    let ca = pki.ca();
    let common = ["-servername", "localhost", "-CAfile", path_str(&ca)];
    let tls13 = s_client(
        port,
        &[&common[..], &["-tls1_3", "-alpn", "h2,http/1.1"]].concat(),
        "",
    );
    assert!(tls13.contains("TLSv1.3"), "{tls13}");
    assert!(tls13.contains("ALPN protocol: http/1.1"), "{tls13}");
    assert!(tls13.contains("Verify return code: 0 (ok)"), "{tls13}");
    let tls12 = s_client(port, &[&common[..], &["-tls1_2"]].concat(), "");
    assert!(tls12.contains("Protocol  : TLSv1.2"), "{tls12}");
    assert!(tls12.contains("ECDHE"), "forward secrecy: {tls12}");
    for old in ["-tls1_1", "-tls1"] {
        let text = s_client(
            port,
            &[&common[..], &[old, "-cipher", "DEFAULT@SECLEVEL=0"]].concat(),
            "",
        );
        assert!(
            text.contains("Cipher is (NONE)") || text.contains("no protocols available"),
            "{old} was accepted: {text}"
        );
    }
    // A client that only speaks h2 is refused, not answered in HTTP/1.1.
    let h2 = s_client(port, &[&common[..], &["-alpn", "h2"]].concat(), "");
    assert!(
        h2.contains("no application protocol") || h2.contains("Cipher is (NONE)"),
        "{h2}"
    );
}

#[test]
fn stalled_and_garbage_handshakes_are_cut_and_others_are_served() {
    let pki = Pki::new();
    let (_server, port, admin, _dir) = server_and_admin(&pki, "options.header_timeout = 1");
    // Not TLS at all: closed at once, counted as malformed.
    let mut garbage = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    garbage
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 512];
    let started = Instant::now();
    while let Ok(n) = garbage.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "garbage was not closed"
    );
    // Half a ClientHello, then silence: cut by header_timeout.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .expect("write");
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let started = Instant::now();
    let closed = matches!(stalled.read(&mut buf), Ok(0));
    assert!(closed, "the stalled handshake was not closed");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "cut after {waited:?}, not header_timeout"
    );
    // Two thousand abandoned handshakes leave the others served.
    let idle: Vec<TcpStream> = (0..2000)
        .filter_map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
            s.write_all(&[0x16, 0x03, 0x01]).ok()?;
            Some(s)
        })
        .collect();
    let (_, info) = curl(
        &pki,
        "localhost",
        port,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("https://localhost:{port}/vbr60.mp4?start=50"),
        ],
    );
    assert_eq!(info, "200");
    drop(idle);
    let monitor = admin_get(admin, "/monitor?terse=true");
    assert!(
        line_value(&monitor, "net:tls:handshakes:failed:malformed") >= 1,
        "{monitor}"
    );
    assert!(
        line_value(&monitor, "net:tls:handshakes:failed:timeout_or_abandoned") >= 1,
        "{monitor}"
    );
    assert!(
        line_value(&monitor, "net:tls:handshakes:full") >= 1,
        "{monitor}"
    );
    let metrics = admin_get(admin, "/metrics");
    assert!(
        metrics.contains("loomiere_tls_handshake_failures_total{reason=\"malformed\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("loomiere_worker_tls_handshakes_total{worker="),
        "{metrics}"
    );
    // The dashboard shows the HTTPS share: every connection here was HTTPS.
    let page = admin_get(admin, "/");
    assert!(
        page.contains("id=\"https\"><span>HTTPS share, open · all</span><b>")
            && page.contains("· 100 %</b>"),
        "{page}"
    );
}

/// `loomiere -t` on `options`; (success, stderr).
fn check(options: &Path) -> (bool, String) {
    let output = Command::new(BINARY)
        .args(["-t", "-o", path_str(options)])
        .output()
        .expect("run loomiere -t");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout),
    )
}

#[test]
fn the_check_refuses_bad_certificates_with_the_file_and_reason() {
    let pki = Pki::new();
    let (cert, key) = pki.issue("good", &["localhost"], None);
    let (_, other_key) = pki.issue("other", &["localhost"], None);
    let now = time::OffsetDateTime::now_utc();
    let (expired, expired_key) = pki.issue(
        "expired",
        &["localhost"],
        Some(now - time::Duration::days(1)),
    );
    let (soon, soon_key) = pki.issue("soon", &["localhost"], Some(now + time::Duration::days(5)));
    let dir = TempDir::new("https-check");
    let folder = dir.path().display().to_string();
    let options = |cert: &Path, key: &Path, extra: &str| {
        options_file(
            &dir,
            &format!(
                "options.port = {}\noptions.tls = {{ port = {}, cert = '{}', key = '{}' }}\n\
                 options.hosts[''] = {{ folder = '{folder}' }}\n{extra}",
                free_port(),
                free_port(),
                path_str(cert),
                path_str(key)
            ),
        )
    };
    let (ok, text) = check(&options(&cert, &key, ""));
    assert!(ok, "{text}");
    let (ok, text) = check(&options(&cert, &other_key, ""));
    assert!(
        !ok && text.contains("other.key") && text.contains("does not match"),
        "{text}"
    );
    let missing = dir.path().join("missing.pem");
    let (ok, text) = check(&options(&missing, &key, ""));
    assert!(
        !ok && text.contains("missing.pem") && text.contains("cannot be read"),
        "{text}"
    );
    let (ok, text) = check(&options(&expired, &expired_key, ""));
    assert!(
        !ok && text.contains("expired.pem") && text.contains("expired on"),
        "{text}"
    );
    let (ok, text) = check(&options(&soon, &soon_key, ""));
    assert!(
        ok && text.contains("soon.pem") && text.contains("expires on"),
        "{text}"
    );
    // A host's certificate without options.tls, and half a pair.
    let bare = options_file(
        &dir,
        &format!(
            "options.hosts['x'] = {{ folder = '{folder}', cert = '{}', key = '{}' }}\n\
             options.hosts[''] = {{ folder = '{folder}' }}",
            path_str(&cert),
            path_str(&key)
        ),
    );
    let (ok, text) = check(&bare);
    assert!(
        !ok && text.contains("hosts['x'].cert") && text.contains("needs options.tls"),
        "{text}"
    );
    let (ok, text) = check(&options(
        &cert,
        &key,
        &format!(
            "options.hosts['y'] = {{ folder = '{folder}', cert = '{}' }}",
            path_str(&cert)
        ),
    ));
    assert!(!ok && text.contains("hosts['y'].key"), "{text}");
    // session_timeout and kernel take what the manual says, and nothing else.
    for (value, accepted) in [
        ("1", true),
        ("604800", true),
        ("0", false),
        ("604801", false),
        ("1.5", false),
        ("'6h'", false),
    ] {
        let (ok, text) = check(&options(
            &cert,
            &key,
            &format!("options.tls.session_timeout = {value}"),
        ));
        assert_eq!(ok, accepted, "session_timeout = {value}: {text}");
        if !accepted {
            assert!(
                text.contains("tls.session_timeout") && text.contains("from 1 to 604800"),
                "{text}"
            );
        }
    }
    let (ok, text) = check(&options(&cert, &key, "options.tls.kernel = 'on'"));
    assert!(
        !ok && text.contains("tls.kernel") && text.contains("'auto' or 'off'"),
        "{text}"
    );
}

#[test]
fn testssl_finds_no_vulnerability_no_old_protocol_and_forward_secrecy() {
    let pki = Pki::new();
    let (_server, port, dir) = server_with(&pki, "");
    let json = dir.path().join("testssl.json");
    let output = Command::new("testssl")
        .args(["--quiet", "--color", "0", "--warnings", "off"])
        .args(["--protocols", "--fs", "--vulnerable", "--jsonfile-pretty"])
        .arg(&json)
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .expect("run testssl (Debian package testssl.sh)");
    let summary = String::from_utf8_lossy(&output.stdout).into_owned();
    // The summary stays in the build's folder, as the test's log.
    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/testssl.txt");
    let _ = std::fs::write(&kept, &summary);
    println!("{summary}");
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{e}: {summary}"));
    let findings = json_findings(&text);
    assert!(
        findings.len() > 20,
        "testssl reported too little: {summary}"
    );
    for (id, severity, finding) in &findings {
        assert!(
            matches!(severity.as_str(), "OK" | "INFO"),
            "testssl: {id} is {severity}: {finding}"
        );
        if ["SSLv2", "SSLv3", "TLS1", "TLS1_1"].contains(&id.as_str()) {
            assert!(finding.starts_with("not offered"), "{id}: {finding}");
        }
    }
    let offered = |id: &str| {
        findings
            .iter()
            .any(|(i, _, finding)| i == id && finding.starts_with("offered"))
    };
    assert!(offered("TLS1_2") && offered("TLS1_3"), "{summary}");
    assert!(
        summary.contains("forward secrecy")
            || summary.contains("PFS is offered (OK)")
            || summary.contains("FS is offered (OK)"),
        "{summary}"
    );
}

/// (id, severity, finding) of every entry of testssl's pretty JSON.
fn json_findings(text: &str) -> Vec<(String, String, String)> {
    let field = |entry: &str, name: &str| {
        let key = format!("\"{name}\"");
        let at = entry.find(&key)? + key.len();
        let rest = entry[at..].trim_start().strip_prefix(':')?.trim_start();
        let rest = rest.strip_prefix('"')?;
        Some(rest[..rest.find('"')?].to_string())
    };
    text.split('{')
        .filter_map(|entry| {
            Some((
                field(entry, "id")?,
                field(entry, "severity")?,
                field(entry, "finding").unwrap_or_default(),
            ))
        })
        .collect()
}

/// Opens a throttled HTTPS stream of `target` and counts what arrives, on
/// a thread of its own; the counter ends at u64::MAX if the stream fails
/// before its end.
fn tls_stream(config: &Arc<rustls::ClientConfig>, port: u16, target: &str) -> Arc<AtomicU64> {
    let held = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&held);
    let config = Arc::clone(config);
    let request = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    std::thread::spawn(move || {
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let Ok(connection) = rustls::ClientConnection::new(config, name) else {
            counter.store(u64::MAX, Ordering::Release);
            return;
        };
        let Ok(socket) = TcpStream::connect(("127.0.0.1", port)) else {
            counter.store(u64::MAX, Ordering::Release);
            return;
        };
        let _ = socket.set_read_timeout(Some(Duration::from_secs(30)));
        let mut tls = rustls::StreamOwned::new(connection, socket);
        if tls.write_all(request.as_bytes()).is_err() {
            counter.store(u64::MAX, Ordering::Release);
            return;
        }
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match tls.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    counter.fetch_add(n as u64, Ordering::AcqRel);
                }
                Err(_) => {
                    counter.store(u64::MAX, Ordering::Release);
                    return;
                }
            }
        }
    });
    held
}

#[test]
fn a_certificate_renewed_by_sighup_reaches_new_connections_and_cuts_no_stream() {
    let pki = Pki::new();
    ensure_fixtures();
    let dir = TempDir::new("https-rotate");
    let (old_cert, old_key) = pki.issue("old", &["localhost"], None);
    let live_cert = dir.path().join("fullchain.pem");
    let live_key = dir.path().join("privkey.pem");
    std::fs::copy(&old_cert, &live_cert).expect("copy");
    std::fs::copy(&old_key, &live_key).expect("copy");
    let options = options_file(
        &dir,
        &format!(
            "options.throttle = 3\noptions.tls = {{ port = 0, cert = '{}', key = '{}' }}\n\
             options.hosts[''] = {{ folder = '{}' }}\n",
            path_str(&live_cert),
            path_str(&live_key),
            media_folder().join("generated").display()
        ),
    );
    let server = Server::start(&["-o", path_str(&options)]);
    let port = https_port(&server);
    let config = client_config(&pki);
    let streams: Vec<Arc<AtomicU64>> = (0..500)
        .map(|_| tls_stream(&config, port, "/vbr60.mp4"))
        .collect();
    // Every stream has its lead before the renewal.
    let deadline = Instant::now() + Duration::from_secs(30);
    while streams
        .iter()
        .any(|s| s.load(Ordering::Acquire) < 256 * 1024)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let before: Vec<u64> = streams.iter().map(|s| s.load(Ordering::Acquire)).collect();
    assert!(
        before.iter().all(|&n| n != u64::MAX && n >= 256 * 1024),
        "streams did not start: {:?}",
        &before[..10]
    );
    // certbot's way: new files renamed over the old ones, then a reload.
    let (new_cert, new_key) = pki.issue("new", &["localhost", "renewed.test"], None);
    std::fs::copy(&new_cert, dir.path().join("next.pem")).expect("copy");
    std::fs::copy(&new_key, dir.path().join("next.key")).expect("copy");
    std::fs::rename(dir.path().join("next.pem"), &live_cert).expect("rename");
    std::fs::rename(dir.path().join("next.key"), &live_key).expect("rename");
    server.signal(libc::SIGHUP);
    assert!(server.wait_for_log("reloading", Duration::from_secs(5)));
    // A new connection gets the renewed certificate (its extra name shows
    // it) once the new workers take new connections.
    let names_served = || {
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo | openssl s_client -connect 127.0.0.1:{port} -servername localhost 2>/dev/null \
                 | openssl x509 -noout -ext subjectAltName"
            ))
            .output()
            .expect("openssl x509");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut names = names_served();
    while !names.contains("renewed.test") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        names = names_served();
    }
    assert!(
        names.contains("renewed.test"),
        "new connections still get the old certificate: {names}"
    );
    // Every stream goes on: none failed, each received more after the renewal.
    std::thread::sleep(Duration::from_secs(3));
    for (i, stream) in streams.iter().enumerate() {
        let now = stream.load(Ordering::Acquire);
        assert!(now != u64::MAX, "stream {i} was cut by the reload");
        assert!(
            now > before[i],
            "stream {i} stalled after the reload: {now} bytes"
        );
    }
}

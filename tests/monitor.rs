//! The monitor's counters after a scripted mix of requests: every form (text,
//! terse, JSON, Prometheus) shows exactly the expected counts, which survive
//! `kill -9` of a worker and a reload; `promtool check metrics` accepts the
//! exposition.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::curve::Reader;
use common::{Server, TempDir, admin_get, ensure_fixtures, free_port, media_folder, options_file};

/// The two hosts: one with a hyphen (the original lost those), one for media.
/// (As Lua source: `\\.` is a backslash and a dot, a literal dot in PCRE2.)
const SITE: &str = r"^my-site\\.test$";
const MEDIA: &str = r"^media\\.test$";
/// How the text forms name them (runs outside [A-Za-z0-9.+-] become `_`).
const SITE_NAME: &str = "_my-site_.test_";
const MEDIA_NAME: &str = "_media_.test_";

/// One worker: the cache hit must land in the worker that indexed the file.
fn options(dir: &TempDir, site: &TempDir, extra: &str) -> std::path::PathBuf {
    options_file(
        dir,
        &format!(
            "options.throttle = 3\noptions.workers = 1\n\
             options.hosts['{SITE}'] = {{ folder = '{}' }}\n\
             options.hosts['{MEDIA}'] = {{ folder = '{}' }}\n{extra}",
            site.path().display(),
            media_folder().join("generated").display()
        ),
    )
}

/// The scripted mix.
fn make_traffic(server: &Server) {
    let get = |host: &str, path: &str, headers: &[&str]| {
        let mut all = vec![format!("Host: {host}")];
        all.extend(headers.iter().map(|h| h.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut text = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
        for header in refs {
            text.push_str(header);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        common::Response::parse(&server.raw(text.as_bytes()), false).expect("response")
    };
    for _ in 0..3 {
        assert_eq!(get("my-site.test", "/a.txt", &[]).status, 200);
    }
    let etag = get("my-site.test", "/a.txt", &[])
        .header("etag")
        .expect("etag")
        .to_string();
    assert_eq!(
        get("my-site.test", "/a.txt", &["Range: bytes=0-0"]).status,
        206
    );
    let inm = format!("If-None-Match: {etag}");
    assert_eq!(get("my-site.test", "/a.txt", &[&inm]).status, 304);
    assert_eq!(get("my-site.test", "/missing", &[]).status, 404);
    assert_eq!(get("my-site.test", "/missing", &[]).status, 404);
    assert_eq!(get("my-site.test", "/sub", &[]).status, 403);
    // A throttled stream cut short (the index is built: a cache miss) ...
    let stream = Reader::get(server.port, "/vbr60.mp4", &["Host: media.test"]);
    stream.wait_until(0.5);
    stream.hang_up();
    // ... then a seek into the same file (the index is reused: a cache hit).
    assert_eq!(
        get("media.test", "/vbr60.mp4?start=10", &["Range: bytes=0-99"]).status,
        206
    );
    // A malformed request: no host.
    let garbage = server.raw(b"GARBAGE\r\n\r\n");
    assert!(garbage.starts_with(b"HTTP/1.1 400"));
}

/// The counts the mix must show, as (name, value) in the text forms.
fn expected() -> Vec<(String, u64)> {
    let mut lines = vec![
        (format!("net:incoming:{SITE_NAME}"), 9),
        (format!("net:outgoing:{SITE_NAME}"), 9),
        (format!("net:outgoing:{SITE_NAME}:200"), 4),
        (format!("net:outgoing:{SITE_NAME}:206"), 1),
        (format!("net:outgoing:{SITE_NAME}:304"), 1),
        (format!("net:outgoing:{SITE_NAME}:404"), 2),
        (format!("net:outgoing:{SITE_NAME}:403"), 1),
        (format!("net:incoming:{MEDIA_NAME}"), 2),
        (format!("net:outgoing:{MEDIA_NAME}:200"), 1),
        (format!("net:outgoing:{MEDIA_NAME}:206"), 1),
        ("net:failures:malformed".to_string(), 1),
        ("net:failures:dropped".to_string(), 1),
        ("net:failures:timed-out".to_string(), 0),
        ("cache:hits".to_string(), 1),
        ("cache:misses".to_string(), 1),
    ];
    lines.sort();
    lines
}

/// Checks every expected count on the text, terse, JSON and metrics forms.
fn check_all_forms(admin: u16) {
    let text = admin_get(admin, "/monitor");
    let terse = admin_get(admin, "/monitor?terse=true");
    let json = admin_get(admin, "/monitor?format=json");
    for (name, value) in expected() {
        let line = format!("\n{name} = {value}\n");
        assert!(text.contains(&line), "text lacks {line:?}:\n{text}");
        assert!(
            format!("\n{terse}").contains(&line),
            "terse lacks {line:?}:\n{terse}"
        );
        let key = format!("\"{name}\":{value},");
        assert!(json.contains(&key), "JSON lacks {key}:\n{json}");
    }
    assert!(
        text.contains("\nnet:connections = ") && text.contains("\nnet:connections:open = "),
        "{text}"
    );
    // 400 for the malformed request, counted under "unknown".
    assert!(text.contains("\nnet:outgoing:unknown:400 = 1\n"), "{text}");
    let metrics = admin_get(admin, "/metrics");
    for line in [
        r#"loomiere_requests_total{host="^my-site\\.test$"} 9"#,
        r#"loomiere_responses_total{host="^my-site\\.test$",code="200"} 4"#,
        r#"loomiere_responses_total{host="^my-site\\.test$",code="304"} 1"#,
        r#"loomiere_responses_total{host="^media\\.test$",code="206"} 1"#,
        r#"loomiere_responses_total{host="unknown",code="400"} 1"#,
        r#"loomiere_failures_total{kind="malformed"} 1"#,
        r#"loomiere_failures_total{kind="dropped"} 1"#,
        "loomiere_cache_hits_total 1",
        "loomiere_cache_misses_total 1",
    ] {
        assert!(
            metrics.contains(&format!("{line}\n")),
            "metrics lack {line}:\n{metrics}"
        );
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("feed promtool");
    let checked = promtool.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// Waits until the saved bytes and the dropped stream are counted.
fn wait_for_stream_end(admin: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !admin_get(admin, "/monitor?terse=true").contains("\nstreams:active = 0\n") {
        assert!(Instant::now() < deadline, "the cut stream never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_form_shows_exact_counts_that_survive_a_killed_worker_and_a_reload() {
    ensure_fixtures();
    let dir = TempDir::new("monitor-counts");
    let site = TempDir::new("monitor-site");
    site.write("a.txt", b"hello\n");
    std::fs::create_dir_all(site.path().join("sub")).expect("dir");
    let path = options(&dir, &site, "");
    let admin = free_port();
    let server = Server::start(&["-o", path.to_str().expect("utf8"), "-r", &admin.to_string()]);
    make_traffic(&server);
    wait_for_stream_end(admin);
    check_all_forms(admin);
    let saved: u64 = admin_get(admin, "/monitor?terse=true")
        .lines()
        .find_map(|l| l.strip_prefix("data:saved:bytes = "))
        .and_then(|v| v.parse().ok())
        .expect("data:saved:bytes");
    assert!(saved > 0, "the cut stream saved nothing");

    // kill -9 a worker: its replacement keeps the slot and the totals.
    let mut children = server.children();
    children.sort();
    let monitor = children.pop().expect("the monitor is forked last");
    let worker = children[0];
    assert_ne!(worker, monitor);
    // SAFETY: kill takes integers only.
    unsafe {
        libc::kill(worker, libc::SIGKILL);
    }
    assert!(server.wait_for_log("was killed by SIGKILL", Duration::from_secs(5)));
    assert!(server.wait_for_log("starting a new one", Duration::from_secs(5)));
    check_all_forms(admin);

    // A reload that adds a host keeps the columns of those that remain.
    let other = TempDir::new("monitor-other");
    options(
        &dir,
        &site,
        &format!(
            "options.hosts['^new\\\\.test$'] = {{ folder = '{}' }}\n",
            other.path().display()
        ),
    );
    server.signal(libc::SIGHUP);
    assert!(server.wait_for_log("of the previous configuration", Duration::from_secs(10)));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // The new monitor answers once it has started.
        let text = admin_get(admin, "/monitor");
        if text.contains("reloads = 1\n") {
            break;
        }
        assert!(Instant::now() < deadline, "the reload never showed: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    check_all_forms(admin);
}

/// GET on the admin port with extra header lines; the whole response.
fn admin_request(admin: u16, path: &str, headers: &[&str]) -> common::Response {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", admin)).expect("admin port");
    let mut text = format!("GET {path} HTTP/1.1\r\nHost: admin\r\n");
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).expect("send");
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    common::Response::parse(&bytes, false).expect("response")
}

#[test]
fn the_admin_token_is_required_on_every_endpoint() {
    let dir = TempDir::new("monitor-token");
    let token = "s3cret-token-of-24-chars";
    let path = options_file(
        &dir,
        &format!(
            "options.root_token = '{token}'\noptions.hosts[''] = {{ folder = '{}' }}\n",
            dir.path().display()
        ),
    );
    let admin = free_port();
    let _server = Server::start(&["-o", path.to_str().expect("utf8"), "-r", &admin.to_string()]);
    let space = format!("/space?path={}", dir.path().display());
    let good = format!("Authorization: Bearer {token}");
    for endpoint in [
        "/monitor",
        "/monitor?terse=true",
        "/monitor?format=json",
        "/metrics",
        space.as_str(),
        "/elsewhere",
    ] {
        for refused in [
            vec![],
            vec!["Authorization: Bearer wrong"],
            vec!["Authorization: Basic czNjcmV0"],
        ] {
            let response = admin_request(admin, endpoint, &refused);
            assert_eq!(response.status, 401, "{endpoint} with {refused:?}");
            assert_eq!(
                response.header("WWW-Authenticate"),
                Some("Bearer realm=\"loomiere\"")
            );
        }
        let allowed = admin_request(admin, endpoint, &[&good]);
        let expected = if endpoint == "/elsewhere" { 404 } else { 200 };
        assert_eq!(allowed.status, expected, "{endpoint} with the token");
    }
}

#[test]
fn space_is_measured_only_inside_served_folders() {
    let dir = TempDir::new("monitor-space");
    std::fs::create_dir_all(dir.path().join("inner")).expect("dir");
    let path = options_file(
        &dir,
        &format!(
            "options.hosts[''] = {{ folder = '{}' }}\n",
            dir.path().display()
        ),
    );
    let admin = free_port();
    let _server = Server::start(&["-o", path.to_str().expect("utf8"), "-r", &admin.to_string()]);
    let inside = format!("/space?path={}/inner", dir.path().display());
    let text = admin_get(admin, &inside);
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert!(value("space:total") > 0);
    assert!(value("space:used") <= value("space:total"));
    assert!(value("space:free") <= value("space:total"));
    assert!(value("space:inodes:total") >= value("space:inodes:free"));
    let json = admin_get(admin, &format!("{inside}&format=json"));
    assert!(json.contains("\"space:total\":"), "{json}");
    for outside in [
        "/space?path=/etc".to_string(),
        format!("/space?path={}/inner/../..", dir.path().display()),
    ] {
        assert_eq!(admin_request(admin, &outside, &[]).status, 403, "{outside}");
    }
    let missing = format!("/space?path={}/no-such-thing", dir.path().display());
    assert_eq!(admin_request(admin, &missing, &[]).status, 404);
}

#[test]
fn the_munin_plugin_configures_and_fetches_every_graph() {
    let dir = TempDir::new("munin");
    let token = "munin-token-0123456789";
    let path = options_file(
        &dir,
        &format!(
            "options.root_token = '{token}'\noptions.hosts[''] = {{ folder = '{}' }}\n",
            dir.path().display()
        ),
    );
    let admin = free_port();
    let _server = Server::start(&["-o", path.to_str().expect("utf8"), "-r", &admin.to_string()]);
    let plugin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/munin/loomiere_");
    let run = |name: &str, argument: Option<&str>| {
        let link = dir.path().join(name);
        let _ = std::os::unix::fs::symlink(&plugin, &link);
        let output = Command::new(&link)
            .args(argument)
            .env(
                "url",
                format!("http://127.0.0.1:{admin}/monitor?terse=true"),
            )
            .env("token", token)
            .output()
            .expect("run the plugin");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    assert_eq!(
        run("loomiere_requests", Some("autoconf")),
        (true, "yes\n".to_string())
    );
    assert_eq!(
        run("loomiere_requests", Some("suggest")).1,
        "requests\nbandwidth\nstreams\n"
    );
    for graph in ["requests", "bandwidth", "streams"] {
        let name = format!("loomiere_{graph}");
        let (ok, config) = run(&name, Some("config"));
        assert!(ok && config.contains("graph_title Loomiere"), "{config}");
        let fields: Vec<&str> = config
            .lines()
            .filter_map(|l| l.split_once(".label ").map(|(field, _)| field))
            .collect();
        assert!(!fields.is_empty(), "{config}");
        let (ok, values) = run(&name, None);
        assert!(ok, "{name} fetch failed");
        for field in &fields {
            let value = values
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{field}.value ")))
                .unwrap_or_else(|| panic!("{name}: no {field}.value in {values}"));
            assert!(
                value.parse::<u64>().is_ok(),
                "{name}: {field}.value {value}"
            );
        }
        assert_eq!(values.lines().count(), fields.len(), "{values}");
    }
    let (ok, _) = run("loomiere_other", None);
    assert!(!ok, "an unknown graph name fails");
}

#[test]
fn the_admin_port_keeps_the_client_limits_and_a_killed_monitor_comes_back() {
    use std::io::Read;
    let dir = TempDir::new("monitor-limits");
    let path = options_file(
        &dir,
        &format!(
            "options.header_timeout = 1\noptions.hosts[''] = {{ folder = '{}' }}\n",
            dir.path().display()
        ),
    );
    let admin = free_port();
    let server = Server::start(&["-o", path.to_str().expect("utf8"), "-r", &admin.to_string()]);
    // A head that never ends: 408 after header_timeout, and the monitor serves on.
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", admin)).expect("admin");
    slow.write_all(b"GET /monitor HTTP/1.1\r\n").expect("send");
    let mut answer = Vec::new();
    let started = Instant::now();
    let _ = slow.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // A head over 8 KiB: 431, as on the client port.
    let huge = format!(
        "GET /monitor HTTP/1.1\r\nX-Filler: {}\r\n\r\n",
        "x".repeat(9000)
    );
    let mut big = std::net::TcpStream::connect(("127.0.0.1", admin)).expect("admin");
    big.write_all(huge.as_bytes()).expect("send");
    let mut answer = Vec::new();
    let _ = big.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // kill -9 the monitor (forked last): the master starts a new one.
    let monitor = *server.children().iter().max().expect("children");
    // SAFETY: kill takes integers only.
    unsafe {
        libc::kill(monitor, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if admin_get(admin, "/monitor").starts_with("# Identification:") {
            break;
        }
        assert!(Instant::now() < deadline, "no monitor after kill -9");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.wait_for_log("was killed by SIGKILL", Duration::from_secs(2)));
}

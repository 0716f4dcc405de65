//! Access control per host: allow/deny by address (IPv4, IPv6, IPv4-mapped),
//! referers, signed links (and `loomiere --sign`), countries from a MaxMind
//! DB, CORS, caching headers, refusals counted and logged, and a reload
//! changing an allow list. Clients are told apart by binding to 127.0.0.x
//! and ::1.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{
    BINARY, Server, TempDir, admin_get, country_database, free_port, get_from, media_folder,
    options_file,
};

const SECRET: &str = "the-current-signing-key";
const OLD_SECRET: &str = "the-previous-signing-key";

fn start(dir: &TempDir, hosts: &str) -> (Server, u16, std::path::PathBuf) {
    let admin = free_port();
    let path = options_file(
        dir,
        &format!(
            "local media = '{}'\noptions.geoip = '{}'\n{hosts}",
            media_folder().display(),
            country_database().display()
        ),
    );
    let server = Server::start(&["-o", path.to_str().expect("utf8"), "-r", &admin.to_string()]);
    (server, admin, path)
}

fn status(server: &Server, from: &str, host: &str, target: &str) -> u16 {
    get_from(server.port, from, host, target, &[]).status
}

#[test]
fn deny_comes_first_and_allow_refuses_everything_it_does_not_list() {
    let dir = TempDir::new("access-ip");
    let (server, admin, _) = start(
        &dir,
        "options.hosts['^inside$'] = { folder = media, allow = { '127.0.0.0/24', '::1' }, deny = { '127.0.0.2' } }\n\
         options.hosts['^v6$'] = { folder = media, deny = { '::1/128' } }\n\
         options.hosts['^one$'] = { folder = media, allow = { '127.0.0.3' } }\n",
    );
    assert_eq!(status(&server, "127.0.0.1", "inside", "/sample.mp4"), 200);
    assert_eq!(status(&server, "127.0.0.2", "inside", "/sample.mp4"), 403);
    assert_eq!(status(&server, "::1", "inside", "/sample.mp4"), 200);
    assert_eq!(status(&server, "::1", "v6", "/sample.mp4"), 403);
    assert_eq!(
        status(&server, "127.0.0.1", "v6", "/sample.mp4"),
        200,
        "an IPv4 client (mapped on the dual-stack socket) is not ::1"
    );
    assert_eq!(status(&server, "127.0.0.1", "one", "/sample.mp4"), 403);
    assert_eq!(status(&server, "127.0.0.3", "one", "/sample.mp4"), 200);
    assert_eq!(status(&server, "::1", "one", "/sample.mp4"), 403);

    // The page says why without naming the list; the refusal is counted by
    // host and code, and logged with its status.
    let refused = get_from(server.port, "127.0.0.2", "inside", "/sample.mp4", &[]);
    let page = String::from_utf8_lossy(&refused.body);
    assert!(
        page.contains("Access from your address is not allowed."),
        "{page}"
    );
    assert!(!page.contains("127.0.0"), "{page}");
    let monitor = admin_get(admin, "/monitor");
    assert!(
        monitor.contains("net:outgoing:_inside_:403 = 2"),
        "{monitor}"
    );
    assert!(server.wait_for_log("\"GET /sample.mp4 HTTP/1.1\" 403", Duration::from_secs(5)));
}

#[test]
fn referers_are_matched_on_the_referer_host_and_referers_empty_decides_without_one() {
    let dir = TempDir::new("access-referer");
    let (server, _, _) = start(
        &dir,
        "options.hosts['^open$'] = { folder = media, referers = { '(^|\\\\.)example\\\\.com$' } }\n\
         options.hosts['^strict$'] = { folder = media, referers = { '^player\\\\.example$' }, referers_empty = false }\n",
    );
    let with = |host: &str, referer: Option<&str>| {
        let header = referer.map(|r| format!("Referer: {r}"));
        let headers: Vec<&str> = header.iter().map(String::as_str).collect();
        get_from(server.port, "127.0.0.1", host, "/sample.mp4", &headers).status
    };
    assert_eq!(with("open", Some("https://www.Example.com/watch?v=1")), 200);
    assert_eq!(with("open", Some("https://example.com:8443/")), 200);
    assert_eq!(with("open", Some("https://example.com.evil.test/")), 403);
    assert_eq!(with("open", Some("https://evil.test/?example.com")), 403);
    assert_eq!(with("open", Some("not a url")), 403);
    assert_eq!(with("open", None), 200);
    assert_eq!(with("strict", Some("http://player.example/embed")), 200);
    assert_eq!(with("strict", None), 403);
}

fn sign(path: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new(BINARY)
        .args(["-o", path.to_str().expect("utf8"), "--sign"])
        .args(args)
        .output()
        .expect("run --sign");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

/// Replaces the value of query argument `name` in `url`.
fn with_argument(url: &str, name: &str, value: &str) -> String {
    let (path, query) = url.split_once('?').expect("query");
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((n, _)) if n == name => format!("{n}={value}"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

#[test]
fn signed_links_are_checked_for_token_path_time_address_and_key() {
    let dir = TempDir::new("access-signed");
    let (server, _, path) = start(
        &dir,
        &format!(
            "options.hosts['^signed$'] = {{ folder = media, secrets = {{ '{SECRET}', '{OLD_SECRET}' }}, expires = {{ ['*'] = 600 }} }}\n\
             options.hosts['^bound$'] = {{ folder = media, secret = '{SECRET}', token_ip = true }}\n\
             options.hosts['^plain$'] = {{ folder = media }}\n"
        ),
    );
    let get = |host: &str, from: &str, target: &str| get_from(server.port, from, host, target, &[]);
    let good = sign(
        &path,
        &["/sample.mp4", "--expires", "300", "--host", "signed"],
    );
    assert!(good.starts_with("/sample.mp4?expires="), "{good}");
    let served = get("signed", "127.0.0.1", &good);
    assert_eq!(served.status, 200);
    assert_eq!(served.header("Cache-Control"), Some("private, max-age=600"));
    let plain = get("plain", "127.0.0.1", "/sample.mp4");
    assert_eq!(
        served.header("ETag"),
        plain.header("ETag"),
        "the link's arguments are not part of the ETag"
    );
    assert_eq!(served.body, plain.body);

    let token = good.split("token=").nth(1).expect("token");
    let expires = good
        .split("expires=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("expires");
    let wrong = with_argument(&good, "token", &"0".repeat(64));
    assert_eq!(get("signed", "127.0.0.1", &wrong).status, 403);
    let tampered_path = good.replace("/sample.mp4", "/sample.flv");
    assert_eq!(get("signed", "127.0.0.1", &tampered_path).status, 403);
    let later = (expires.parse::<i64>().expect("number") + 3600).to_string();
    let tampered_expires = with_argument(&good, "expires", &later);
    assert_eq!(get("signed", "127.0.0.1", &tampered_expires).status, 403);
    assert_eq!(get("signed", "127.0.0.1", "/sample.mp4").status, 403);
    assert_eq!(
        get("signed", "127.0.0.1", &format!("/sample.mp4?token={token}")).status,
        403
    );

    // A link that has expired, correctly signed: 410.
    let stale_expires = "1000000000";
    let stale_token = hmac_hex(SECRET, &format!("/sample.mp4{stale_expires}"));
    let stale = format!("/sample.mp4?expires={stale_expires}&token={stale_token}");
    let gone = get("signed", "127.0.0.1", &stale);
    assert_eq!(gone.status, 410);
    assert!(String::from_utf8_lossy(&gone.body).contains("This link has expired."));

    // The retired key still signs valid links while it is listed.
    let future = "4000000000";
    let old = format!(
        "/sample.mp4?expires={future}&token={}",
        hmac_hex(OLD_SECRET, &format!("/sample.mp4{future}"))
    );
    assert_eq!(get("signed", "127.0.0.1", &old).status, 200);
    let unknown_key = format!(
        "/sample.mp4?expires={future}&token={}",
        hmac_hex("some-other-long-secret", &format!("/sample.mp4{future}"))
    );
    assert_eq!(get("signed", "127.0.0.1", &unknown_key).status, 403);

    // Seek arguments beside the link's: the seek applies.
    let seeking = sign(
        &path,
        &[
            "/sample.mp4?start=2",
            "--expires",
            "300",
            "--host",
            "signed",
        ],
    );
    let seeked = get("signed", "127.0.0.1", &seeking);
    assert_eq!(seeked.status, 200);
    assert!(seeked.body.len() < plain.body.len(), "the seek was applied");

    // Bound to an address: valid from it, refused from another.
    let bound = sign(
        &path,
        &[
            "/sample.mp4",
            "--expires",
            "300",
            "--host",
            "bound",
            "--ip",
            "127.0.0.2",
        ],
    );
    assert_eq!(get("bound", "127.0.0.2", &bound).status, 200);
    assert_eq!(get("bound", "127.0.0.3", &bound).status, 403);
    let v6 = sign(
        &path,
        &[
            "/sample.mp4",
            "--expires",
            "300",
            "--host",
            "bound",
            "--ip",
            "::1",
        ],
    );
    assert_eq!(get("bound", "::1", &v6).status, 200);
}

/// HMAC-SHA256 in hex, computed by Python's standard library: the operator's
/// side of a signed link, written independently of the server's code.
fn hmac_hex(secret: &str, data: &str) -> String {
    let output = Command::new("python3")
        .args([
            "-c",
            "import hmac, hashlib, sys; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())",
            secret,
            data,
        ])
        .output()
        .expect("python3");
    String::from_utf8(output.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

#[test]
fn countries_come_from_the_maxmind_database() {
    let dir = TempDir::new("access-countries");
    let (server, _, _) = start(
        &dir,
        "options.hosts['^ro$'] = { folder = media, countries = { allow = { 'RO' } } }\n\
         options.hosts['^not-ro$'] = { folder = media, countries = { deny = { 'ro' }, unknown = false } }\n\
         options.hosts['^lua$'] = { folder = media, routes = {\n\
           { match = '^/where', call = function(url, headers, ip) return 302, '/in/' .. tostring(loomiere.country(ip)) end },\n\
         } }\n",
    );
    // 127.0.0.2 is in RO, 127.0.0.3 in DE, ::1 in US, 127.0.0.1 unknown.
    assert_eq!(status(&server, "127.0.0.2", "ro", "/sample.mp4"), 200);
    assert_eq!(status(&server, "127.0.0.3", "ro", "/sample.mp4"), 403);
    assert_eq!(status(&server, "::1", "ro", "/sample.mp4"), 403);
    assert_eq!(status(&server, "127.0.0.1", "ro", "/sample.mp4"), 200);
    assert_eq!(status(&server, "127.0.0.2", "not-ro", "/sample.mp4"), 403);
    assert_eq!(status(&server, "127.0.0.3", "not-ro", "/sample.mp4"), 200);
    assert_eq!(status(&server, "127.0.0.1", "not-ro", "/sample.mp4"), 403);
    let refused = get_from(server.port, "127.0.0.3", "ro", "/sample.mp4", &[]);
    assert!(
        String::from_utf8_lossy(&refused.body)
            .contains("This content is not available in your country.")
    );
    for (from, country) in [("127.0.0.3", "DE"), ("::1", "US"), ("127.0.0.1", "nil")] {
        let answer = get_from(server.port, from, "lua", "/where", &[]);
        let expected = format!("/in/{country}");
        assert_eq!(answer.header("Location"), Some(expected.as_str()), "{from}");
    }
}

#[test]
fn a_reload_reopens_the_country_database() {
    let dir = TempDir::new("access-geoip-reload");
    let database = dir.path().join("country.mmdb");
    std::fs::copy(country_database(), &database).expect("copy");
    let path = options_file(
        &dir,
        &format!(
            "options.geoip = '{}'\noptions.hosts[''] = {{ folder = '{}', countries = {{ allow = {{ 'RO' }} }} }}\n",
            database.display(),
            media_folder().display()
        ),
    );
    let server = Server::start(&["-o", path.to_str().expect("utf8")]);
    assert_eq!(status(&server, "127.0.0.2", "x", "/sample.mp4"), 200);
    // A newer database moves 127.0.0.2 to DE; it replaces the file by
    // rename, as geoipupdate does.
    let moved = country_database().with_file_name("country-moved.mmdb");
    let staged = dir.path().join("country.mmdb.new");
    std::fs::copy(moved, &staged).expect("copy");
    std::fs::rename(&staged, &database).expect("rename");
    assert_eq!(
        status(&server, "127.0.0.2", "x", "/sample.mp4"),
        200,
        "the mapped database is kept until a reload"
    );
    server.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while status(&server, "127.0.0.2", "x", "/sample.mp4") != 403 {
        assert!(
            std::time::Instant::now() < deadline,
            "the reload kept the old database"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn cors_preflights_and_responses_carry_the_headers_players_need() {
    let dir = TempDir::new("access-cors");
    let (server, _, _) = start(
        &dir,
        "options.hosts['^any$'] = { folder = media, cors = '*' }\n\
         options.hosts['^listed$'] = { folder = media, cors = { 'https://a.example', 'https://b.example' } }\n\
         options.hosts['^none$'] = { folder = media }\n",
    );
    let request = |method: &str, host: &str, headers: &[&str]| {
        let mut stream = common::connect_from("127.0.0.1".parse().expect("ip"), server.port);
        let mut text = format!("{method} /sample.mp4 HTTP/1.1\r\nHost: {host}\r\n");
        for header in headers {
            text.push_str(header);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        common::exchange(&mut stream, &text, method != "GET")
    };
    let preflight = [
        "Origin: https://a.example",
        "Access-Control-Request-Method: GET",
        "Access-Control-Request-Headers: range",
    ];
    let answer = request("OPTIONS", "listed", &preflight);
    assert_eq!(answer.status, 204);
    assert_eq!(
        answer.header("Access-Control-Allow-Origin"),
        Some("https://a.example")
    );
    assert_eq!(
        answer.header("Access-Control-Allow-Methods"),
        Some("GET, HEAD, OPTIONS")
    );
    assert_eq!(answer.header("Access-Control-Allow-Headers"), Some("Range"));
    assert_eq!(answer.header("Access-Control-Max-Age"), Some("86400"));
    assert_eq!(answer.header("Vary"), Some("Origin"));
    let other = request(
        "OPTIONS",
        "listed",
        &[
            "Origin: https://evil.example",
            "Access-Control-Request-Method: GET",
        ],
    );
    assert_eq!(other.header("Access-Control-Allow-Origin"), None);
    let none = request("OPTIONS", "none", &preflight);
    assert_eq!(
        (none.status, none.header("Access-Control-Allow-Origin")),
        (200, None)
    );

    let ranged = request(
        "GET",
        "listed",
        &["Origin: https://b.example", "Range: bytes=0-99"],
    );
    assert_eq!(ranged.status, 206);
    assert_eq!(
        ranged.header("Access-Control-Allow-Origin"),
        Some("https://b.example")
    );
    assert_eq!(
        ranged.header("Access-Control-Expose-Headers"),
        Some("Content-Range, Content-Length, Accept-Ranges")
    );
    let any = request("GET", "any", &["Origin: https://x.example"]);
    assert_eq!(any.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(any.header("Vary"), None);
    let missing = common::get_from(server.port, "127.0.0.1", "any", "/nothing.mp4", &[]);
    assert_eq!(
        (
            missing.status,
            missing.header("Access-Control-Allow-Origin")
        ),
        (404, Some("*")),
        "errors carry CORS headers, so the page can read the status"
    );
    let plain = request("GET", "none", &["Origin: https://a.example"]);
    assert_eq!(plain.header("Access-Control-Allow-Origin"), None);
}

#[test]
fn expires_sets_cache_control_and_expires_by_mime_type() {
    let dir = TempDir::new("access-expires");
    let (server, _, _) = start(
        &dir,
        "options.hosts['^cached$'] = { folder = media, expires = { ['video/mp4'] = 60, ['video/*'] = 3600, ['*'] = 0 } }\n\
         options.hosts['^plain$'] = { folder = media }\n",
    );
    let get = |host: &str, target: &str, headers: &[&str]| {
        get_from(server.port, "127.0.0.1", host, target, headers)
    };
    let mp4 = get("cached", "/sample.mp4", &[]);
    assert_eq!(mp4.header("Cache-Control"), Some("public, max-age=60"));
    let date = mp4.header("Date").expect("date").to_string();
    let expires = mp4.header("Expires").expect("expires").to_string();
    assert_ne!(date, expires);
    let flv = get("cached", "/sample.flv", &[]);
    assert_eq!(flv.header("Cache-Control"), Some("public, max-age=3600"));
    let etag = mp4.header("ETag").expect("etag").to_string();
    let revalidated = get(
        "cached",
        "/sample.mp4",
        &[&format!("If-None-Match: {etag}")],
    );
    assert_eq!(revalidated.status, 304);
    assert_eq!(
        revalidated.header("Cache-Control"),
        Some("public, max-age=60")
    );
    assert_eq!(
        get("plain", "/sample.mp4", &[]).header("Cache-Control"),
        None
    );
    assert_eq!(
        get("cached", "/nothing.mp4", &[]).header("Cache-Control"),
        None,
        "errors are not cached by these rules"
    );
}

#[test]
fn a_reload_changes_an_allow_list() {
    let dir = TempDir::new("access-reload");
    let (server, _, path) = start(
        &dir,
        "options.hosts[''] = { folder = media, allow = { '127.0.0.2' } }\n",
    );
    assert_eq!(status(&server, "127.0.0.1", "x", "/sample.mp4"), 403);
    assert_eq!(status(&server, "127.0.0.2", "x", "/sample.mp4"), 200);
    let text = std::fs::read_to_string(&path)
        .expect("read")
        .replace("'127.0.0.2'", "'127.0.0.1'");
    std::fs::write(&path, text).expect("write");
    server.signal(libc::SIGHUP);
    // New workers start before the old ones hear that they are retired, so
    // for a moment a connection may still meet the old list (as with nginx);
    // after that every one meets the new list.
    let new_list = || {
        status(&server, "127.0.0.1", "x", "/sample.mp4") == 200
            && status(&server, "127.0.0.2", "x", "/sample.mp4") == 403
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !new_list() {
        assert!(
            std::time::Instant::now() < deadline,
            "the reload never applied"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..20 {
        assert!(
            new_list(),
            "a connection met the old allow list after the reload"
        );
    }
}

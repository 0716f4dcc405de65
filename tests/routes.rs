//! URL routes in options.hosts[...].routes: rewrite (captures, named groups,
//! a rewrite that seeks), redirect with its status, error with its message,
//! the original's alter/route/moved, first match wins, and `-t` messages for
//! bad routes.

mod common;

use std::process::Command;

use common::{BINARY, Server, TempDir, media_folder, options_file, sha256_bytes};

fn server(routes: &str) -> (Server, TempDir) {
    let dir = TempDir::new("routes");
    let path = options_file(
        &dir,
        &format!(
            "options.hosts['^video\\\\.test$'] = {{ folder = '{}', routes = {{\n{routes}\n}} }}\n",
            media_folder().display()
        ),
    );
    let server = Server::start(&["-o", path.to_str().expect("utf8")]);
    (server, dir)
}

fn get(server: &Server, target: &str) -> common::Response {
    let text =
        format!("GET {target} HTTP/1.1\r\nHost: Video.Test:8080\r\nConnection: close\r\n\r\n");
    common::Response::parse(&server.raw(text.as_bytes()), false).expect("response")
}

const ROUTES: &str = r#"
  { match = '^/gone/', error = 410, message = 'This <film> was withdrawn.' },
  { match = '^/seek/(\\d+)/(?<name>[^/]+)$', rewrite = '/${name}?start=$1' },
  { match = '^/cdn/(.*)$', redirect = 'https://cdn.example/$1', status = 308 },
  { match = '^/old/(.*)$', moved = '/%1' },
  { match = '^/tmp/(.*)$', route = '/new/$1' },
  { match = '_', alter = '' },
  { match = '^/(.*)\\.flv$', redirect = '/$1.mp4' },
  { match = '^/', error = 403 },
"#;

#[test]
fn each_action_and_alias_answers_as_configured() {
    let (server, _dir) = server(ROUTES);
    let gone = get(&server, "/gone/x.mp4");
    assert_eq!(gone.status, 410);
    let page = String::from_utf8_lossy(&gone.body);
    assert!(page.contains("This &lt;film&gt; was withdrawn."), "{page}");

    let cdn = get(&server, "/cdn/a/b.mp4?start=3");
    assert_eq!(cdn.status, 308);
    assert_eq!(
        cdn.header("Location"),
        Some("https://cdn.example/a/b.mp4?start=3")
    );
    let moved = get(&server, "/old/sample.mp4");
    assert_eq!(
        (moved.status, moved.header("Location")),
        (301, Some("/sample.mp4"))
    );
    let routed = get(&server, "/tmp/x");
    assert_eq!(
        (routed.status, routed.header("Location")),
        (302, Some("/new/x"))
    );
    // The first match decides: /sample.flv redirects before the catch-all 403.
    let flv = get(&server, "/sample.flv");
    assert_eq!(
        (flv.status, flv.header("Location")),
        (302, Some("/sample.mp4"))
    );
    assert_eq!(get(&server, "/sample.mp4").status, 403);
}

#[test]
fn a_rewrite_serves_the_new_target_and_its_query_seeks() {
    let (server, _dir) = server(ROUTES);
    let rewritten = get(&server, "/seek/2/sample.mp4");
    assert_eq!(rewritten.status, 200);
    // The same bytes as the seek asked directly (on a host without routes).
    let dir = TempDir::new("routes-plain");
    let path = options_file(
        &dir,
        &format!(
            "options.hosts[''] = {{ folder = '{}' }}\n",
            media_folder().display()
        ),
    );
    let plain = Server::start(&["-o", path.to_str().expect("utf8")]);
    let direct = plain.get("/sample.mp4?start=2", &[]);
    assert_eq!(direct.status, 200);
    assert_eq!(sha256_bytes(&rewritten.body), sha256_bytes(&direct.body));
    // alter replaces every match: /s_a_mple.mp4 → /sample.mp4, then no more routing.
    let altered = get(&server, "/sa_m_ple.mp4");
    assert_eq!(
        altered.status, 200,
        "a rewrite is served without routing again"
    );
    assert_eq!(
        sha256_bytes(&altered.body),
        sha256_bytes(&std::fs::read(media_folder().join("sample.mp4")).expect("fixture"))
    );
}

#[test]
fn an_unknown_host_is_404_and_host_matching_ignores_port_and_case() {
    let (server, _dir) = server("{ match = '^/x$', error = 404 }");
    let unknown =
        server.raw(b"GET /sample.mp4 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n");
    let unknown = common::Response::parse(&unknown, false).expect("response");
    assert_eq!(unknown.status, 404);
    assert!(String::from_utf8_lossy(&unknown.body).contains("other.test"));
    assert_eq!(
        get(&server, "/sample.mp4").status,
        200,
        "Host: Video.Test:8080 matches"
    );
    // An absolute-form target's host wins over the Host header (RFC 9112 §3.2.2).
    let absolute = server.raw(
        b"GET http://VIDEO.test:8080/sample.mp4 HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
    );
    assert!(absolute.starts_with(b"HTTP/1.1 200"));
}

#[test]
fn bad_routes_are_refused_by_dash_t_with_their_place() {
    let dir = TempDir::new("routes-check");
    let folder = dir.path().display().to_string();
    let cases = [
        (
            "{ match = '(', rewrite = '/' }",
            "option 'hosts['h'].routes[1].match' does not compile",
        ),
        (
            "{ match = '^/(a)$', rewrite = '/$2' }",
            "option 'hosts['h'].routes[1].rewrite' '/$2' refers to group $2, but the pattern has 1 group",
        ),
        (
            "{ match = '^/a', rewrite = '/b', error = 403 }",
            "option 'hosts['h'].routes[1]' has several actions (rewrite, error); give exactly one",
        ),
        (
            "{ match = '^/a' }",
            "option 'hosts['h'].routes[1]' has no action",
        ),
        (
            "{ rewrite = '/b' }",
            "option 'hosts['h'].routes[1].match' is missing",
        ),
        (
            "{ match = '^/a', redirect = '/b', status = 200 }",
            "option 'hosts['h'].routes[1].status' must be 301, 302, 303, 307 or 308, not 200",
        ),
        (
            "{ match = '^/a', error = 302 }",
            "option 'hosts['h'].routes[1].error' must be a status from 400 to 599, not 302",
        ),
        (
            "{ match = '^/a', rewrite = '/b', status = 301 }",
            "option 'hosts['h'].routes[1].status' only goes with redirect, not with rewrite",
        ),
        (
            "{ match = '^/a', rewrite = '/b', colour = 'red' }",
            "option 'hosts['h'].routes[1]' has an unknown key",
        ),
        (
            "{ match = '^/a', rewrite = '/b' }, { match = '^/c', redirect = 5 }",
            "option 'hosts['h'].routes[2].redirect' must be a string, not a integer",
        ),
    ];
    for (routes, expected) in cases {
        let path = options_file(
            &dir,
            &format!("options.hosts['h'] = {{ folder = '{folder}', routes = {{ {routes} }} }}\n"),
        );
        let output = Command::new(BINARY)
            .args(["-t", "-o", path.to_str().expect("utf8")])
            .output()
            .expect("run loomiere -t");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{routes}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{routes}:\n{stderr}\nexpected: {expected}"
        );
    }
}

#[test]
fn folders_are_tried_in_order_and_count_their_own_requests() {
    let dir = TempDir::new("folders");
    let first = TempDir::new("folders-a");
    let second = TempDir::new("folders-b");
    first.write("both.txt", b"from a\n");
    second.write("both.txt", b"from b, longer\n");
    second.write("only-b.txt", b"only in b\n");
    std::fs::create_dir_all(first.path().join("d")).expect("dir");
    second.write("d", b"a file in b\n");
    let path = options_file(
        &dir,
        &format!(
            "options.workers = 1\noptions.hosts[''] = {{ folders = {{ '{}', '{}' }} }}\n",
            first.path().display(),
            second.path().display()
        ),
    );
    let admin = common::free_port();
    let server = Server::start(&["-o", path.to_str().expect("utf8"), "-r", &admin.to_string()]);
    assert_eq!(server.get("/both.txt", &[]).body, b"from a\n");
    assert_eq!(server.get("/only-b.txt", &[]).body, b"only in b\n");
    assert_eq!(
        server.get("/d", &[]).status,
        403,
        "the first folder has it: it decides"
    );
    assert_eq!(server.get("/nowhere.txt", &[]).status, 404);
    // A file appearing in an earlier folder wins at once (the cache notices).
    first.write("only-b.txt", b"now in a\n");
    assert_eq!(server.get("/only-b.txt", &[]).body, b"now in a\n");
    let terse = common::admin_get(admin, "/monitor?terse=true");
    let count = |folder: &TempDir, what: &str| -> u64 {
        let name = loomiere::stats::columns::clean_name(
            &folder
                .path()
                .canonicalize()
                .expect("path")
                .to_string_lossy(),
        );
        terse
            .lines()
            .find_map(|l| l.strip_prefix(&format!("folder:{name}:{what} = ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no folder:{name}:{what} in {terse}"))
    };
    // Files answered from each folder (the 403 and the 404 were no file's).
    assert_eq!(count(&first, "requests"), 2);
    assert_eq!(count(&first, "bytes"), 7 + 9);
    assert_eq!(count(&second, "requests"), 1);
    assert_eq!(count(&second, "bytes"), 10);
}

#[test]
fn a_reload_changes_a_route_without_breaking_streams() {
    use common::curve::Reader;
    use std::time::{Duration, Instant};
    common::ensure_fixtures();
    let dir = TempDir::new("routes-reload");
    let folder = media_folder().join("generated");
    let write = |route: &str| {
        options_file(
            &dir,
            &format!(
                "options.throttle = 3\noptions.period = 0.25\noptions.throttle_from = 0\n\
                 options.hosts['^fast$'] = {{ folder = '{0}', throttle = 0 }}\n\
                 options.hosts[''] = {{ folder = '{0}', routes = {{ {route} }} }}\n",
                folder.display()
            ),
        )
    };
    let path = write("{ match = '^/alias/(.*)$', rewrite = '/$1' }");
    let server = Server::start(&["-o", path.to_str().expect("utf8")]);
    let expected =
        sha256_bytes(&Reader::get(server.port, "/vbr60.mp4?start=58", &["Host: fast"]).finish());
    let streams: Vec<Reader> = (0..50)
        .map(|_| Reader::get(server.port, "/alias/vbr60.mp4?start=58", &[]))
        .collect();
    assert!(streams.iter().all(|s| s.status == 200));
    write("{ match = '^/alias/', error = 410, message = 'The alias is gone.' }");
    server.signal(libc::SIGHUP);
    for (n, stream) in streams.into_iter().enumerate() {
        let length = stream.content_length;
        let body = stream.finish();
        assert_eq!(
            body.len() as u64,
            length,
            "stream {n} was cut by the reload"
        );
        assert_eq!(sha256_bytes(&body), expected, "stream {n} differs");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while get_plain(&server, "/alias/vbr60.mp4?start=58") != 410 {
        assert!(Instant::now() < deadline, "the new route never took effect");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn get_plain(server: &Server, target: &str) -> u16 {
    let text = format!("HEAD {target} HTTP/1.1\r\nHost: any\r\nConnection: close\r\n\r\n");
    common::Response::parse(&server.raw(text.as_bytes()), true).map_or(0, |r| r.status)
}

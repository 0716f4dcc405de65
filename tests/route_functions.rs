//! Lua route functions: each return form, the request's headers, address
//! and port, closures, the helpers, the sandbox, and failures (an error, an
//! endless loop, a huge allocation, a loop in a coroutine, a pattern that
//! backtracks for ever) answered 500 while the worker goes on.

mod common;

use std::time::{Duration, Instant};

use common::{Server, TempDir, media_folder, options_file};

const ROUTES: &str = r#"
options.lua_instructions = 200000
options.lua_memory = '4m'
local served = 0
options.hosts[''] = { folder = FOLDER, routes = {
  { match = '^/ok/', call = function(url) return 200, (url:gsub('^/ok', '')) end },
  { match = '^/sample%.mp4%?as%-is', call = function() return 200 end },
  { match = '^/sample%.mp4%?nothing', call = function() end },
  { match = '^/go/', call = function(url) return 307, 'https://x.example' .. url end },
  { match = '^/gone', call = function() return 410 end },
  { match = '^/keyed', call = function(url, headers)
      if headers['x-key'] == 'yes' then return 200, '/sample.mp4' end
      return 403
    end },
  { match = '^/peer', call = function(url, headers, ip, port)
      if ip == '127.0.0.1' and port > 0 then return 200, '/sample.mp4' end
      return 400
    end },
  { match = '^/count', call = function() served = served + 1; return 200, '/sample.mp4?n=' .. served end },
  { match = '^/sandbox', call = function()
      if io == nil and os.execute == nil and require == nil and loadstring == nil and dofile == nil
         and type(os.time()) == 'number' then
        return 200, '/sample.mp4'
      end
      return 500
    end },
  { match = '^/helpers', call = function()
      local mac = loomiere.hmac_sha256('key', 'The quick brown fox jumps over the lazy dog')
      if mac == 'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8'
         and loomiere.md5('') == 'd41d8cd98f00b204e9800998ecf8427e'
         and loomiere.escape('a b/c') == 'a%20b%2Fc' and loomiere.unescape('a%20b') == 'a b'
         and loomiere.time() > 1e9 then
        return 200, '/sample.mp4'
      end
      return 500
    end },
  { match = '^/old/(.*)$', moved = function(target) return '/new' .. target end },
  { match = '^/boom', call = function() error('kaboom') end },
  { match = '^/badtype', call = function() return 'two hundred' end },
  { match = '^/loop', call = function() while true do end end },
  { match = '^/hog', call = function()
      local t, big = {}, string.rep('x', 100000)
      for i = 1, 1e8 do t[i] = big .. i end
    end },
  { match = '^/co/create', call = function()
      local co = coroutine.create(function() while true do end end); coroutine.resume(co); return 200
    end },
  { match = '^/co/wrap', call = function() coroutine.wrap(function() while true do end end)() end },
  { match = '^/co/nested', call = function()
      coroutine.wrap(function() coroutine.wrap(function() while true do end end)() end)()
    end },
  { match = '^/pat/find', call = function()
      string.find(string.rep('a', 30000), string.rep('a?', 30000) .. string.rep('a', 30000)) return 200
    end },
  { match = '^/pat/match', call = function()
      return 200, string.match(string.rep('a', 5000), string.rep('.-', 12) .. 'x')
    end },
  { match = '^/pat/gsub', call = function() string.gsub(string.rep('a', 5000), string.rep('a*', 15) .. 'b', '') end },
  { match = '^/pat/gmatch', call = function()
      for w in string.gmatch(string.rep('a', 5000), string.rep('a-', 12) .. 'b') do end
    end },
  { match = '^/pat/caught', call = function()
      while true do pcall(string.find, string.rep('a', 5000), string.rep('.-', 12) .. 'x') end
    end },
  { match = '^/pat/fine', call = function(url)
      local name = url:match('^/pat/fine/(.-)%.mp4$')
      return 200, '/' .. name:gsub('%W', '') .. '.mp4'
    end },
} }
"#;

fn server() -> (Server, TempDir) {
    let dir = TempDir::new("route-functions");
    let script = ROUTES.replace("FOLDER", &format!("'{}'", media_folder().display()));
    let path = options_file(&dir, &script);
    (
        Server::start(&["-o", path.to_str().expect("utf8"), "-w", "1"]),
        dir,
    )
}

fn get(server: &Server, target: &str, headers: &[&str]) -> common::Response {
    server.get(target, headers)
}

#[test]
fn each_return_form_serves_rewrites_redirects_or_refuses() {
    let (server, _dir) = server();
    let sample = std::fs::read(media_folder().join("sample.mp4")).expect("fixture");
    assert_eq!(
        get(&server, "/ok/sample.mp4", &[]).body,
        sample,
        "200 with a URL rewrites"
    );
    assert_eq!(
        get(&server, "/sample.mp4?as-is", &[]).status,
        200,
        "200 alone serves as is"
    );
    assert_eq!(
        get(&server, "/sample.mp4?nothing", &[]).status,
        200,
        "no value serves as is"
    );
    let go = get(&server, "/go/a.mp4", &[]);
    assert_eq!(
        (go.status, go.header("Location")),
        (307, Some("https://x.example/go/a.mp4"))
    );
    assert_eq!(get(&server, "/gone", &[]).status, 410);
    assert_eq!(get(&server, "/keyed", &[]).status, 403);
    assert_eq!(
        get(&server, "/keyed", &["X-Key: yes"]).status,
        200,
        "headers by lower-case name"
    );
    assert_eq!(
        get(&server, "/peer", &[]).status,
        200,
        "the client's address and port"
    );
    let moved = get(&server, "/old/x", &[]);
    assert_eq!(
        (moved.status, moved.header("Location")),
        (301, Some("/new/old/x"))
    );
    assert_eq!(
        get(&server, "/sandbox", &[]).status,
        200,
        "no io, os.execute, require, load*"
    );
    assert_eq!(
        get(&server, "/helpers", &[]).status,
        200,
        "loomiere.* helpers"
    );
    // A closure keeps its upvalue between calls (one worker).
    assert_eq!(get(&server, "/count", &[]).status, 200);
    assert_eq!(get(&server, "/count", &[]).status, 200);
}

#[test]
fn failures_answer_500_and_the_worker_serves_on() {
    let (server, _dir) = server();
    let boom = get(&server, "/boom", &[]);
    assert_eq!(boom.status, 500);
    assert!(server.wait_for_log("routes[12] (call) failed", Duration::from_secs(2)));
    assert!(
        server.wait_for_log("kaboom", Duration::from_secs(2)),
        "{}",
        server.log_text()
    );
    assert!(
        server.wait_for_log("stack traceback", Duration::from_secs(2)),
        "the traceback is logged"
    );
    assert_eq!(get(&server, "/badtype", &[]).status, 500);
    assert_eq!(
        get(&server, "/sample.mp4?as-is", &[]).status,
        200,
        "the next request is served"
    );
    // The allocation first: what it leaves behind must not starve the loop's call.
    for endless in ["/hog", "/loop"] {
        let started = Instant::now();
        assert_eq!(get(&server, endless, &[]).status, 500, "{endless}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{endless} took {:?}",
            started.elapsed()
        );
        assert_eq!(
            get(&server, "/sample.mp4?as-is", &[]).status,
            200,
            "after {endless}"
        );
    }
    // The log arrives through a pipe read by another thread: wait for the lines.
    assert!(
        server.wait_for_log("instruction limit", Duration::from_secs(5)),
        "the loop was cut by the instruction limit: {}",
        server.log_text()
    );
    assert!(
        server.wait_for_log("memory", Duration::from_secs(5)),
        "the allocation was cut by the memory limit: {}",
        server.log_text()
    );
    let log = server.log_text();
    assert!(
        !log.contains("was killed") && !log.contains("starting a new one"),
        "no worker died: {log}"
    );
}

#[test]
fn coroutines_and_runaway_patterns_answer_500_and_the_same_worker_serves_on() {
    let (server, _dir) = server();
    let workers = server.children();
    for (target, reason) in [
        ("/co/create", "attempt to index global 'coroutine'"),
        ("/co/wrap", "attempt to index global 'coroutine'"),
        ("/co/nested", "attempt to index global 'coroutine'"),
        ("/pat/find", "pattern too complex"),
        (
            "/pat/match",
            "instruction limit (options.lua_instructions) was reached while matching a pattern",
        ),
        (
            "/pat/gsub",
            "instruction limit (options.lua_instructions) was reached while matching a pattern",
        ),
        (
            "/pat/gmatch",
            "instruction limit (options.lua_instructions) was reached while matching a pattern",
        ),
        (
            "/pat/caught",
            "instruction limit (options.lua_instructions) was reached",
        ),
    ] {
        let started = Instant::now();
        assert_eq!(get(&server, target, &[]).status, 500, "{target}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{target} took {:?}",
            started.elapsed()
        );
        assert!(
            server.wait_for_log(&format!("failed for {target}: "), Duration::from_secs(2)),
            "{target}: {}",
            server.log_text()
        );
        let line = server
            .log_line(&format!("failed for {target}: "))
            .expect("logged");
        assert!(line.contains(reason), "{target}: {line}");
        assert_eq!(
            get(&server, "/sample.mp4?as-is", &[]).status,
            200,
            "after {target}"
        );
    }
    // A pattern that is merely used still works.
    let sample = std::fs::read(media_folder().join("sample.mp4")).expect("fixture");
    assert_eq!(get(&server, "/pat/fine/sam-ple.mp4", &[]).body, sample);
    assert_eq!(
        server.children(),
        workers,
        "the same worker and monitor serve on"
    );
    let log = server.log_text();
    assert!(
        !log.contains("was killed")
            && !log.contains("starting a new one")
            && !log.contains("is stuck"),
        "no worker died or stalled: {log}"
    );
}

#[test]
fn dash_t_accepts_functions_and_refuses_a_call_that_is_not_one() {
    let dir = TempDir::new("route-functions-check");
    let folder = dir.path().display().to_string();
    let good = options_file(
        &dir,
        &format!(
            "options.hosts[''] = {{ folder = '{folder}', routes = {{ {{ match = '.', call = function() end }} }} }}\n"
        ),
    );
    let ok = std::process::Command::new(common::BINARY)
        .args(["-t", "-o", good.to_str().expect("utf8")])
        .output()
        .expect("loomiere -t");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = options_file(
        &dir,
        &format!(
            "options.hosts[''] = {{ folder = '{folder}', routes = {{ {{ match = '.', call = 5 }} }} }}\n"
        ),
    );
    let refused = std::process::Command::new(common::BINARY)
        .args(["-t", "-o", bad.to_str().expect("utf8")])
        .output()
        .expect("loomiere -t");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("option 'hosts[''].routes[1].call' must be a function, not a"),
        "{stderr}"
    );
}

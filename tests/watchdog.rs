//! The master's watchdog and the children's tie to their master: a worker or
//! monitor whose loop stops turning is killed and replaced within
//! `stall_timeout`, a fully loaded worker never is, and after `kill -9` of
//! the master no child of it is left and a new master serves alone.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, TempDir, admin_get, free_port, media_folder, options_file};

const STALL_TIMEOUT_SECS: u64 = 3;

fn options(dir: &TempDir, extra: &str) -> String {
    let script = format!(
        "options.stall_timeout = {STALL_TIMEOUT_SECS}\noptions.drain_timeout = 2\n{extra}\n\
         options.hosts[''] = {{ folder = '{}', routes = {{\n\
           {{ match = '^/lua/(.*)$', call = function(url) return 200, '/' .. url:match('^/lua/(.*)$') end }},\n\
         }} }}\n",
        media_folder().display()
    );
    options_file(dir, &script).display().to_string()
}

/// Whether process `pid` still runs (a zombie has exited).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn stop(pid: i32) {
    // SAFETY: kill takes integers only.
    unsafe {
        libc::kill(pid, libc::SIGSTOP);
    }
}

/// The master's children once all `count` of them are forked.
fn all_children(server: &Server, count: usize) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let children = server.children();
        if children.len() == count || Instant::now() > deadline {
            assert_eq!(children.len(), count, "{children:?}");
            return children;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the master has a child that is not one of `old`; returns it.
fn new_child(server: &Server, old: &[i32], timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(pid) = server.children().into_iter().find(|p| !old.contains(p)) {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn a_stopped_worker_is_killed_and_replaced_within_stall_timeout() {
    let dir = TempDir::new("watchdog-worker");
    let admin = free_port();
    let path = options(&dir, "");
    let admin_text = admin.to_string();
    let server = Server::start(&["-o", &path, "-w", "1", "-r", &admin_text]);
    // Workers are forked before the monitor.
    let children = all_children(&server, 2);
    let worker = children[0];
    let stopped = Instant::now();
    stop(worker);
    let replacement = new_child(
        &server,
        &children,
        Duration::from_secs(STALL_TIMEOUT_SECS + 2),
    )
    .expect("a new worker within stall_timeout + 2 s");
    let took = stopped.elapsed();
    assert!(
        took >= Duration::from_secs(STALL_TIMEOUT_SECS - 1),
        "killed before its stall_timeout: {took:?}"
    );
    assert!(!running(worker) || server.children().len() == 2);
    assert_eq!(server.get("/lua/sample.mp4", &[]).status, 200);
    assert!(server.children().contains(&replacement));
    let line = server
        .log_line(&format!("worker #0 {worker} is stuck"))
        .unwrap_or_else(|| panic!("no watchdog line: {}", server.log_text()));
    assert!(
        line.contains("its loop has not turned for")
            && line.contains("options.stall_timeout = 3")
            && line.contains("running no route function")
            && line.contains("SIGKILL"),
        "{line}"
    );
    assert!(line.contains("ERROR"), "logged at error: {line}");
    let monitor = admin_get(admin, "/monitor");
    assert!(monitor.contains("workers:stalled = 1"), "{monitor}");
    assert!(monitor.contains("workers:restarts = 1"), "{monitor}");
    let metrics = admin_get(admin, "/metrics");
    assert!(
        metrics.contains("\nloomiere_worker_stalls_total 1\n"),
        "{metrics}"
    );
    let json = admin_get(admin, "/monitor?format=json");
    assert_eq!(common::json_number(&json, "workers:stalled"), 1.0, "{json}");
}

#[test]
fn a_stopped_monitor_is_killed_and_replaced() {
    let dir = TempDir::new("watchdog-monitor");
    let admin = free_port();
    let path = options(&dir, "");
    let admin_text = admin.to_string();
    let server = Server::start(&["-o", &path, "-w", "1", "-r", &admin_text]);
    let children = all_children(&server, 2);
    let monitor = children[1];
    stop(monitor);
    new_child(
        &server,
        &children,
        Duration::from_secs(STALL_TIMEOUT_SECS + 2),
    )
    .expect("a new monitor within stall_timeout + 2 s");
    assert!(
        server.wait_for_log(
            &format!("monitor {monitor} is stuck"),
            Duration::from_secs(1)
        ),
        "{}",
        server.log_text()
    );
    // The admin socket is shared, so the new monitor answers on it.
    let text = admin_get(admin, "/monitor");
    assert!(text.contains("workers:stalled = 1"), "{text}");
    assert_eq!(server.get("/sample.mp4", &[]).status, 200);
}

#[test]
fn a_fully_loaded_worker_is_never_killed() {
    let dir = TempDir::new("watchdog-load");
    let admin = free_port();
    // The shortest stall_timeout there is, under wrk at full speed.
    let path = options(&dir, "options.stall_timeout = 2");
    let admin_text = admin.to_string();
    let server = Server::start(&["-o", &path, "-w", "2", "-r", &admin_text]);
    let children = all_children(&server, 3);
    let url = format!("http://127.0.0.1:{}/lua/sample.mp4", server.port);
    let output = Command::new("wrk")
        .args(["-t", "2", "-c", "64", "-d", "30s", &url])
        .output()
        .expect("wrk (Debian package wrk)");
    let report = String::from_utf8_lossy(&output.stdout);
    let requests: u64 = report
        .lines()
        .find_map(|line| line.trim().split(" requests in ").next()?.parse().ok())
        .unwrap_or_else(|| panic!("no request count in {report}"));
    assert!(
        requests > 10_000,
        "wrk ran only {requests} requests: {report}"
    );
    assert!(!report.contains("Non-2xx"), "{report}");
    assert_eq!(server.children(), children, "no child was replaced");
    let log = server.log_text();
    assert!(!log.contains("is stuck"), "{log}");
    assert!(admin_get(admin, "/monitor").contains("workers:stalled = 0"));
}

#[test]
fn children_die_with_a_killed_master_and_a_new_master_serves_alone() {
    let dir = TempDir::new("watchdog-master");
    let port = free_port().to_string();
    let admin = free_port();
    let admin_text = admin.to_string();
    // Each configuration answers /who with its own status.
    let old = options(
        &dir,
        "options.hosts['^old$'] = { folder = '/', routes = {} }",
    );
    let old_path = dir.path().join("old.lua");
    std::fs::rename(&old, &old_path).expect("rename");
    let old_text = std::fs::read_to_string(&old_path).expect("read").replace(
        "routes = {\n",
        "routes = {\n{ match = '^/who', error = 410 },\n",
    );
    std::fs::write(&old_path, &old_text).expect("write");
    let new_path = dir.path().join("new.lua");
    std::fs::write(&new_path, old_text.replace("error = 410", "error = 418")).expect("write");
    let old_path = old_path.display().to_string();
    let new_path = new_path.display().to_string();
    let old_server = Server::start(&["-o", &old_path, "-w", "2", "-p", &port, "-r", &admin_text]);
    assert_eq!(old_server.get("/who", &[]).status, 410);
    // Two workers and the monitor.
    let children = all_children(&old_server, 3);
    let killed = Instant::now();
    old_server.signal(libc::SIGKILL);
    // Started right away, as runit would: it waits for the port to be free.
    let new_server = Server::start(&["-o", &new_path, "-w", "2", "-p", &port, "-r", &admin_text]);
    for _ in 0..50 {
        assert_eq!(
            new_server.get("/who", &[]).status,
            418,
            "only the new master's workers answer"
        );
    }
    let deadline = killed + Duration::from_secs(2 + 2);
    while children.iter().any(|&pid| running(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<i32> = children.into_iter().filter(|&pid| running(pid)).collect();
    assert!(
        left.is_empty(),
        "still running after drain_timeout + 2 s: {left:?}"
    );
    assert!(
        old_server.wait_for_log("the master process is gone", Duration::from_secs(1)),
        "{}",
        old_server.log_text()
    );
    let monitor = admin_get(admin, "/monitor");
    assert!(monitor.contains("workers:running = 2"), "{monitor}");
}

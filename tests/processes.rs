//! The master's process management: reload, graceful stop, worker restarts.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, TempDir, options_file, pattern_bytes, sha256_bytes, sha256_file};

#[test]
fn sighup_with_a_broken_file_keeps_serving_and_a_good_one_takes_over() {
    let dir = TempDir::new("reload");
    let old = TempDir::new("reload-old");
    let new = TempDir::new("reload-new");
    old.write("which.txt", b"old\n");
    new.write("which.txt", b"new\n");
    let path = options_file(
        &dir,
        &format!(
            "options.hosts[''] = {{ folder = '{}' }}\n",
            old.path().display()
        ),
    );
    let server = Server::start(&["-o", path.to_str().expect("utf8"), "-w", "2"]);
    assert_eq!(server.get("/which.txt", &[]).body, b"old\n");
    let workers_before = server.children();

    options_file(&dir, "options.port = \n");
    server.signal(libc::SIGHUP);
    assert!(server.wait_for_log(
        "reload failed, keeping the running configuration",
        Duration::from_secs(5)
    ));
    assert!(
        server.wait_for_log(&format!("{}:2:", path.display()), Duration::from_secs(2)),
        "the error names file and line"
    );
    for _ in 0..20 {
        assert_eq!(server.get("/which.txt", &[]).body, b"old\n");
    }
    assert_eq!(
        server.children(),
        workers_before,
        "the old workers keep running"
    );

    options_file(
        &dir,
        &format!(
            "options.hosts[''] = {{ folder = '{}' }}\n",
            new.path().display()
        ),
    );
    server.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.get("/which.txt", &[]).body != b"new\n" {
        assert!(
            Instant::now() < deadline,
            "the new configuration never took over"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.wait_for_log("of the previous configuration", Duration::from_secs(5)),
        "old workers drained and exited"
    );
    // Once the old generation is gone, every request sees the new folder.
    for _ in 0..20 {
        assert_eq!(server.get("/which.txt", &[]).body, b"new\n");
    }
}

#[test]
fn sigterm_lets_a_50_mb_transfer_finish_then_exits_0() {
    let dir = TempDir::new("drain");
    let path = dir.write("big.mp4", &pattern_bytes(50 * 1024 * 1024, 9));
    let mut server = Server::start(&["-f", dir.path().to_str().expect("utf8"), "-w", "1"]);
    let mut stream = server.connect();
    use std::io::Write;
    stream
        .write_all(b"GET /big.mp4 HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("send");
    let mut received = vec![0u8; 1024 * 1024];
    stream.read_exact(&mut received).expect("first megabyte");

    server.signal(libc::SIGTERM);
    assert!(server.wait_for_log("stopping: no new connections", Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "new connections are refused while draining"
    );

    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("the rest of the transfer");
    received.extend_from_slice(&rest);
    let head_end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head")
        + 4;
    assert_eq!(received.len() - head_end, 50 * 1024 * 1024);
    assert_eq!(sha256_bytes(&received[head_end..]), sha256_file(&path));
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_killed_worker_is_replaced_within_a_second() {
    let dir = TempDir::new("restart");
    dir.write("a.txt", b"alive\n");
    let server = Server::start(&["-f", dir.path().to_str().expect("utf8"), "-w", "1"]);
    let before = server.children();
    assert_eq!(before.len(), 1, "one worker, no monitor");
    // Let the worker live past the quick-death back-off window.
    std::thread::sleep(Duration::from_millis(2200));
    // SAFETY: kill takes integers only.
    unsafe {
        libc::kill(before[0], libc::SIGKILL);
    }
    let killed = Instant::now();
    loop {
        let served = TcpStream::connect(("127.0.0.1", server.port)).is_ok()
            && server.get("/a.txt", &[]).status == 200;
        let replaced = server.children().iter().any(|pid| !before.contains(pid));
        if served && replaced {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(1),
            "no new worker served within 1 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(server.wait_for_log("was killed by SIGKILL", Duration::from_secs(2)));
}

#[test]
fn sigquit_exits_at_once() {
    let dir = TempDir::new("quit");
    let mut server = Server::start(&["-f", dir.path().to_str().expect("utf8"), "-w", "2"]);
    let children = server.children();
    server.signal(libc::SIGQUIT);
    assert_eq!(server.wait_exit(Duration::from_secs(2)), Some(0));
    std::thread::sleep(Duration::from_millis(200));
    for pid in children {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains(") Z "),
            "child {pid} still running: {state}"
        );
    }
}

#[test]
fn the_monitor_reports_counters_on_the_admin_port() {
    let dir = TempDir::new("monitor");
    dir.write("a.txt", b"a");
    let admin = common::free_port();
    let server = Server::start(&[
        "-f",
        dir.path().to_str().expect("utf8"),
        "-w",
        "2",
        "-r",
        &admin.to_string(),
    ]);
    for _ in 0..5 {
        assert_eq!(server.get("/a.txt", &[]).status, 200);
    }
    assert_eq!(server.get("/missing.txt", &[]).status, 404);
    let raw = |request: &str| {
        let mut stream = TcpStream::connect(("127.0.0.1", admin)).expect("admin port");
        use std::io::Write;
        stream.write_all(request.as_bytes()).expect("send");
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).expect("read");
        common::Response::parse(&bytes, false).expect("response")
    };
    let text = raw("GET /monitor HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(text.status, 200);
    assert_eq!(
        text.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    let body = String::from_utf8_lossy(&text.body).to_string();
    assert!(body.starts_with("# Identification:\n"), "{body}");
    assert!(body.contains("workers = 2\n"));
    assert!(body.contains("net:outgoing:default:404 = 1\n"), "{body}");
    assert!(body.contains("clients:limit = 10000\n"));
    let json = raw("GET /monitor?format=json HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(json.header("Content-Type"), Some("application/json"));
    let json = String::from_utf8_lossy(&json.body).to_string();
    assert!(json.contains("\"net:outgoing:default:404\":1,"), "{json}");
    let terse =
        String::from_utf8_lossy(&raw("GET /monitor?terse=true HTTP/1.1\r\nHost: a\r\n\r\n").body)
            .to_string();
    assert!(terse.contains("net:outgoing:default:404 = 1\n"), "{terse}");
    assert!(
        !terse.contains('#') && !terse.contains("server = "),
        "{terse}"
    );
    assert_eq!(raw("GET /other HTTP/1.1\r\nHost: a\r\n\r\n").status, 404);
}

#[test]
fn no_request_is_lost_across_reloads() {
    let dir = TempDir::new("reload-load");
    dir.write("a.txt", b"a\n");
    let path = options_file(
        &dir,
        &format!(
            "options.hosts[''] = {{ folder = '{}' }}\n",
            dir.path().display()
        ),
    );
    let server = Server::start(&["-o", path.to_str().expect("utf8"), "-w", "2"]);
    let port = server.port;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished = std::sync::Arc::clone(&done);
    let client = std::thread::spawn(move || {
        let mut statuses = Vec::new();
        for _ in 0..400 {
            use std::io::Write;
            let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            // The request follows the connection a little later, as over a real network.
            std::thread::sleep(Duration::from_millis(3));
            stream
                .write_all(b"GET /a.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                .expect("send");
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            statuses.push(common::Response::parse(&bytes, false).map_or(0, |r| r.status));
        }
        finished.store(true, std::sync::atomic::Ordering::Relaxed);
        statuses
    });
    let mut reloads = 0;
    while !done.load(std::sync::atomic::Ordering::Relaxed) && reloads < 40 {
        std::thread::sleep(Duration::from_millis(40));
        server.signal(libc::SIGHUP);
        reloads += 1;
    }
    let statuses = client.join().expect("client");
    let lost = statuses.iter().filter(|&&s| s != 200).count();
    assert_eq!(
        lost,
        0,
        "{lost} of {} requests got no 200 across {reloads} reloads",
        statuses.len()
    );
}

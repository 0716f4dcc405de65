//! Signals and crashes during 500 throttled streams: a killed worker takes
//! only its own streams with it and is replaced within a second, a reload
//! breaks none, and a stop cuts them only at `drain_timeout`, each with its
//! access-log line.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, TempDir, admin_get, ensure_fixtures, free_port, json_number, media_folder};

const STREAMS: usize = 500;

/// Many streams read by one thread over non-blocking sockets.
struct Swarm {
    sockets: Vec<TcpStream>,
    /// Bytes received by each (head included), and whether it was closed.
    received: Vec<u64>,
    closed: Vec<bool>,
}

impl Swarm {
    fn start(port: u16, target: &str, count: usize) -> Swarm {
        let sockets: Vec<TcpStream> = (0..count)
            .map(|_| {
                let mut socket = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                socket
                    .write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                    .expect("send");
                socket.set_nonblocking(true).expect("non-blocking");
                socket
            })
            .collect();
        Swarm {
            received: vec![0; count],
            closed: vec![false; count],
            sockets,
        }
    }

    /// Reads whatever has arrived, for `span`.
    fn pump(&mut self, span: Duration) {
        let until = Instant::now() + span;
        let mut buf = vec![0u8; 256 * 1024];
        while Instant::now() < until {
            for (i, socket) in self.sockets.iter_mut().enumerate() {
                while !self.closed[i] {
                    match socket.read(&mut buf) {
                        Ok(0) => self.closed[i] = true,
                        Ok(n) => self.received[i] += n as u64,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => self.closed[i] = true,
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn closed(&self) -> usize {
        self.closed.iter().filter(|c| **c).count()
    }

    fn snapshot(&self) -> Vec<u64> {
        self.received.clone()
    }
}

fn start(dir: &TempDir, extra: &str) -> (Server, u16, std::path::PathBuf) {
    ensure_fixtures();
    let admin = free_port();
    let path = common::options_file(
        dir,
        &format!(
            "options.throttle = 3\noptions.period = 0.25\noptions.throttle_from = 0\noptions.workers = 2\n{extra}\n\
             options.hosts[''] = {{ folder = '{}' }}\n",
            media_folder().join("generated").display()
        ),
    );
    let server = Server::start(&["-o", path.to_str().expect("utf8"), "-r", &admin.to_string()]);
    (server, admin, path)
}

#[test]
fn a_killed_worker_takes_only_its_own_streams_and_is_replaced_within_a_second() {
    let dir = TempDir::new("live-kill");
    let (server, admin, _) = start(&dir, "");
    let mut swarm = Swarm::start(server.port, "/small30.mp4", STREAMS);
    swarm.pump(Duration::from_millis(1500));
    assert_eq!(swarm.closed(), 0);
    let by_worker = common::worker_metric(admin, "loomiere_worker_connections");
    let requests_before = json_number(&admin_get(admin, "/monitor?format=json"), "net:incoming");
    let workers = server.children();
    let victim = *workers.iter().min().expect("a worker");
    // SAFETY: kill takes integers only.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    let killed_at = Instant::now();
    // A new worker serves within a second.
    loop {
        let response = server.request("HEAD", "/small30.mp4", &[]);
        if response.status == 200 && server.log_text().contains("was killed by SIGKILL") {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(1),
            "no worker served again in 1 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = swarm.snapshot();
    swarm.pump(Duration::from_millis(1500));
    let cut = swarm.closed();
    assert!(
        by_worker.values().any(|&n| n as usize == cut),
        "{cut} streams ended; the workers held {by_worker:?}"
    );
    assert!(cut > 0 && cut < STREAMS, "{cut}");
    let stalled = (0..STREAMS)
        .filter(|&i| !swarm.closed[i] && swarm.received[i] == before[i])
        .count();
    assert_eq!(stalled, 0, "streams of the other worker stopped");
    let requests_after = json_number(&admin_get(admin, "/monitor?format=json"), "net:incoming");
    assert!(requests_after >= requests_before, "totals were lost");
}

#[test]
fn a_reload_breaks_no_stream_and_new_requests_get_the_new_options() {
    let dir = TempDir::new("live-reload");
    let (server, _, path) = start(&dir, "");
    let mut swarm = Swarm::start(server.port, "/small30.mp4", STREAMS);
    swarm.pump(Duration::from_millis(1000));
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        text.replace(
            "options.hosts[''] = {",
            "options.hosts[''] = { expires = { ['*'] = 60 },",
        ),
    )
    .expect("write");
    server.signal(libc::SIGHUP);
    assert!(server.wait_for_log("SIGHUP", Duration::from_secs(5)));
    swarm.pump(Duration::from_millis(3000));
    assert_eq!(swarm.closed(), 0, "a reload broke streams");
    let fresh = server.request("HEAD", "/small30.mp4", &[]);
    assert_eq!(fresh.header("Cache-Control"), Some("public, max-age=60"));
}

#[test]
fn a_stop_cuts_streams_only_at_drain_timeout_and_logs_each() {
    let dir = TempDir::new("live-stop");
    let (mut server, _, _) = start(&dir, "options.drain_timeout = 2");
    let mut swarm = Swarm::start(server.port, "/small30.mp4", STREAMS);
    swarm.pump(Duration::from_millis(1000));
    let port = server.port;
    server.signal(libc::SIGTERM);
    let stopped_at = Instant::now();
    swarm.pump(Duration::from_millis(1200));
    assert_eq!(swarm.closed(), 0, "streams were cut before drain_timeout");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err()
            || server.log_text().contains("no new connections"),
        "new connections are still taken"
    );
    swarm.pump(Duration::from_millis(2000));
    assert_eq!(swarm.closed(), STREAMS, "streams outlived drain_timeout");
    assert!(stopped_at.elapsed() < Duration::from_secs(4));
    assert_eq!(server.wait_exit(Duration::from_secs(5)), Some(0));
    let logged = server
        .log_text()
        .lines()
        .filter(|line| line.contains("\"GET /small30.mp4 HTTP/1.1\" 200"))
        .count();
    assert_eq!(logged, STREAMS, "each cut stream has its access-log line");
}

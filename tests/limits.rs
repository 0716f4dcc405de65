//! `options.limits`: concurrent connections per client address counted over
//! every worker, new connections per second with a burst, exempt addresses,
//! floods closed without an answer, and a killed worker's connections
//! forgotten. Clients are told apart by binding to 127.0.0.x.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{
    Response, Server, TempDir, admin_get, connect_from, exchange, free_port, media_folder,
    options_file, worker_metric,
};

fn start(dir: &TempDir, limits: &str, workers: usize) -> (Server, u16) {
    let admin = free_port();
    let path = options_file(
        dir,
        &format!(
            "options.limits = {limits}\noptions.hosts[''] = {{ folder = '{}' }}\n",
            media_folder().display()
        ),
    );
    let server = Server::start(&[
        "-o",
        path.to_str().expect("utf8"),
        "-r",
        &admin.to_string(),
        "-w",
        &workers.to_string(),
    ]);
    (server, admin)
}

const HEAD_KEEP_ALIVE: &str = "HEAD /sample.mp4 HTTP/1.1\r\nHost: x\r\n\r\n";

/// A connection from `from` that has been answered and stays open.
fn held_connection(port: u16, from: &str) -> (TcpStream, Response) {
    let mut stream = connect_from(from.parse().expect("ip"), port);
    let response = exchange(&mut stream, HEAD_KEEP_ALIVE, true);
    (stream, response)
}

/// Open client connections by worker slot, from /metrics.
fn connections_by_worker(admin: u16) -> BTreeMap<String, u64> {
    worker_metric(admin, "loomiere_worker_connections")
}

/// Requests by worker slot, from /metrics.
fn requests_by_worker(admin: u16) -> BTreeMap<String, u64> {
    worker_metric(admin, "loomiere_worker_requests_total")
}

/// The worker whose count went up between two readings.
fn grown(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Option<String> {
    after
        .iter()
        .find(|(worker, count)| before.get(*worker).copied().unwrap_or(0) < **count)
        .map(|(worker, _)| worker.clone())
}

/// Waits until /metrics shows `total` open connections.
fn settle(admin: u16, total: u64) -> BTreeMap<String, u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let counts = connections_by_worker(admin);
        if counts.values().sum::<u64>() == total || Instant::now() > deadline {
            return counts;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_per_ip_limit_counts_connections_on_every_worker() {
    const LIMIT: usize = 4;
    let dir = TempDir::new("limits-concurrency");
    let (server, admin) = start(&dir, &format!("{{ per_ip = {LIMIT} }}"), 2);
    // Hold LIMIT connections with at least one on each worker (the kernel
    // spreads connections over the workers' sockets by a hash of the ports:
    // a connection that would put them all on one worker is replaced).
    let mut held: Vec<(TcpStream, String)> = Vec::new();
    let mut before = settle(admin, 0);
    while held.len() < LIMIT {
        let (stream, response) = held_connection(server.port, "127.0.0.1");
        assert_eq!(response.status, 200);
        let after = settle(admin, held.len() as u64 + 1);
        let worker = grown(&before, &after).expect("a worker took it");
        let all_on_one = held.len() == LIMIT - 1 && held.iter().all(|(_, w)| *w == worker);
        if all_on_one {
            drop(stream);
            before = settle(admin, held.len() as u64);
            continue;
        }
        held.push((stream, worker));
        before = after;
    }
    // Every further connection is refused, whichever worker accepts it.
    let mut refused_by = std::collections::BTreeSet::new();
    let mut requests = requests_by_worker(admin);
    for _ in 0..60 {
        let mut stream = connect_from("127.0.0.1".parse().expect("ip"), server.port);
        let response = exchange(&mut stream, HEAD_KEEP_ALIVE, true);
        assert_eq!(response.status, 429);
        assert_eq!(response.header("Retry-After"), Some("5"));
        assert_eq!(response.header("Connection"), Some("close"));
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        assert!(rest.is_empty(), "closed after the 429");
        let now = requests_by_worker(admin);
        refused_by.insert(grown(&requests, &now).expect("a worker answered"));
        requests = now;
        if refused_by.len() == 2 {
            break;
        }
    }
    assert_eq!(refused_by.len(), 2, "both workers refused");
    // Another address is not affected.
    let (_, other) = held_connection(server.port, "127.0.0.2");
    assert_eq!(other.status, 200);
    // Closing one frees a place (once the worker has seen it close: the
    // 127.0.0.2 connection above is closed too, so LIMIT - 1 stay open).
    held.pop();
    settle(admin, LIMIT as u64 - 1);
    let (_, again) = held_connection(server.port, "127.0.0.1");
    assert_eq!(again.status, 200);
    let monitor = admin_get(admin, "/monitor");
    assert!(monitor.contains("net:limited = "), "{monitor}");
    assert!(!monitor.contains("net:limited = 0\n"), "{monitor}");
}

#[test]
fn the_rate_limit_allows_a_burst_then_the_rate() {
    let dir = TempDir::new("limits-rate");
    let (server, _) = start(&dir, "{ rate = 2, burst = 3 }", 2);
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(held_connection(server.port, "127.0.0.3").1.status, 200);
    }
    let (_, refused) = held_connection(server.port, "127.0.0.3");
    if started.elapsed() < Duration::from_millis(400) {
        assert_eq!(refused.status, 429, "the burst is used up");
        assert_eq!(refused.header("Retry-After"), Some("1"));
    }
    assert_eq!(held_connection(server.port, "127.0.0.4").1.status, 200);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        held_connection(server.port, "127.0.0.3").1.status,
        200,
        "half a second at 2 per second gives one more"
    );
}

#[test]
fn exempt_addresses_are_not_limited() {
    let dir = TempDir::new("limits-exempt");
    let (server, _) = start(
        &dir,
        "{ per_ip = 1, rate = 1, burst = 1, exempt = { '127.0.0.1/32', '::1' } }",
        1,
    );
    let held: Vec<_> = (0..5)
        .map(|_| held_connection(server.port, "127.0.0.1"))
        .collect();
    assert!(held.iter().all(|(_, r)| r.status == 200));
    let v6: Vec<_> = (0..3)
        .map(|_| held_connection(server.port, "::1"))
        .collect();
    assert!(v6.iter().all(|(_, r)| r.status == 200));
    let (_kept, first) = held_connection(server.port, "127.0.0.5");
    assert_eq!(first.status, 200);
    assert_eq!(held_connection(server.port, "127.0.0.5").1.status, 429);
}

#[test]
fn a_flood_is_closed_at_accept_without_an_answer() {
    let dir = TempDir::new("limits-flood");
    let (server, admin) = start(&dir, "{ rate = 2, burst = 2 }", 1);
    let (mut answered, mut refused, mut closed) = (0, 0, 0);
    for _ in 0..80 {
        let mut stream = connect_from("127.0.0.6".parse().expect("ip"), server.port);
        let _ = std::io::Write::write_all(
            &mut stream,
            b"HEAD /sample.mp4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        match bytes.get(9..12) {
            Some(b"200") => answered += 1,
            Some(b"429") => refused += 1,
            None => closed += 1,
            Some(other) => panic!("unexpected {:?}", String::from_utf8_lossy(other)),
        }
    }
    assert!((2..=4).contains(&answered), "{answered} answered");
    assert!(refused >= 10, "{refused} refused with 429");
    assert!(closed >= 20, "{closed} closed without an answer");
    let limited = common::json_number(&admin_get(admin, "/monitor?format=json"), "net:limited");
    assert_eq!(limited as u64, (refused + closed) as u64);
    // Another address is served meanwhile.
    assert_eq!(held_connection(server.port, "127.0.0.7").1.status, 200);
}

#[test]
fn a_killed_workers_connections_no_longer_count() {
    let dir = TempDir::new("limits-killed");
    let (server, _) = start(&dir, "{ per_ip = 2 }", 1);
    let held: Vec<_> = (0..2)
        .map(|_| held_connection(server.port, "127.0.0.8"))
        .collect();
    assert_eq!(held_connection(server.port, "127.0.0.8").1.status, 429);
    let workers_before = server.children();
    let worker = *workers_before.iter().min().expect("a worker");
    // SAFETY: kill takes integers only.
    unsafe { libc::kill(worker, libc::SIGKILL) };
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut stream) =
            std::panic::catch_unwind(|| connect_from("127.0.0.9".parse().expect("ip"), server.port))
            && exchange(&mut stream, HEAD_KEEP_ALIVE, true).status == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "no worker came back");
        std::thread::sleep(Duration::from_millis(50));
    }
    let fresh: Vec<_> = (0..2)
        .map(|_| held_connection(server.port, "127.0.0.8").1.status)
        .collect();
    assert_eq!(fresh, [200, 200], "the dead worker's counts were forgotten");
}

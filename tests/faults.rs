//! Faults under live streams: a file truncated or replaced while it
//! streams, clients dribbling their heads (slowloris), and a server out of
//! file descriptors. The server must neither crash nor spin, must end what
//! it cannot finish cleanly, and must serve again at once.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::curve::Reader;
use common::{Server, TempDir, ensure_fixtures, media_folder, options_file, sha256_bytes};

fn start(dir: &TempDir, options: &str) -> Server {
    let path = options_file(
        dir,
        &format!(
            "{options}\noptions.hosts[''] = {{ folder = '{}' }}\n",
            dir.path().display()
        ),
    );
    Server::start(&["-o", path.to_str().expect("utf8")])
}

fn content_length(server: &Server, target: &str) -> u64 {
    server
        .request("HEAD", target, &[])
        .header("Content-Length")
        .and_then(|v| v.parse().ok())
        .expect("a length")
}

#[test]
fn a_file_truncated_while_it_streams_ends_that_stream_and_nothing_else() {
    ensure_fixtures();
    let dir = TempDir::new("faults-truncate");
    let film = dir.path().join("film.mp4");
    std::fs::copy(media_folder().join("generated/vbr60.mp4"), &film).expect("copy");
    let server = start(&dir, "options.throttle = 3\noptions.period = 0.25");
    let whole = content_length(&server, "/film.mp4");
    let reader = Reader::get(server.port, "/film.mp4", &[]);
    assert_eq!(reader.content_length, whole);
    reader.wait_until(1.0);
    let cut = reader.held() + 64 * 1024;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&film)
        .and_then(|f| f.set_len(cut))
        .expect("truncate");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_done() {
        assert!(Instant::now() < deadline, "the stream outlived its file");
        std::thread::sleep(Duration::from_millis(50));
    }
    let received = reader.finish();
    assert!(
        (received.len() as u64) < whole,
        "a truncated file cannot be sent whole"
    );
    // The worker lives, and a new request sees the new size, not a cached one.
    assert_eq!(content_length(&server, "/film.mp4"), cut);
    let seek = server.get("/film.mp4?start=1", &[]);
    assert!(
        seek.status == 200 || (400..600).contains(&seek.status),
        "{}",
        seek.status
    );
    if seek.status == 200 {
        assert!(seek.body.len() as u64 <= cut + 1024 * 1024);
    }
}

#[test]
fn a_file_replaced_by_rename_mid_stream_streams_the_old_one_to_its_end() {
    ensure_fixtures();
    let dir = TempDir::new("faults-rename");
    let film = dir.path().join("film.mp4");
    let original = std::fs::read(media_folder().join("generated/small30.mp4")).expect("fixture");
    std::fs::write(&film, &original).expect("write");
    // A constant 200 KB/s: the 585 KB film takes about three seconds.
    let server = start(&dir, "options.throttle = 0\noptions.rate = '200k'");
    let reader = Reader::get(server.port, "/film.mp4", &[]);
    reader.wait_until(0.5);
    let staged = dir.path().join("film.mp4.new");
    std::fs::copy(media_folder().join("generated/vbr.mp4"), &staged).expect("copy");
    std::fs::rename(&staged, &film).expect("rename");
    let replacement = std::fs::read(&film).expect("read");
    let received = reader.finish();
    assert_eq!(
        sha256_bytes(&received),
        sha256_bytes(&original),
        "the old stream went on to its end, byte-identical"
    );
    let fresh = server.get("/film.mp4", &[]);
    assert_eq!(fresh.body.len(), replacement.len());
}

#[test]
fn dribbling_clients_are_cut_by_the_head_deadline_while_others_are_served() {
    const DRIBBLERS: usize = 2000;
    let dir = TempDir::new("faults-slowloris");
    std::fs::copy(media_folder().join("sample.mp4"), dir.path().join("a.mp4")).expect("copy");
    let server = start(&dir, "options.header_timeout = 3");
    let idle = latencies(&server, 40);
    let mut dribblers: Vec<TcpStream> = (0..DRIBBLERS)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).expect("connect"))
        .collect();
    let started = Instant::now();
    let mut busy = Vec::new();
    let mut byte = 0;
    let mut last_byte: Option<Instant> = None;
    while started.elapsed() < Duration::from_secs(5) {
        // One header byte each, every second: never a whole head.
        if last_byte.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            let head = b"GET /a.mp4 HTTP/1.1\r\nX-Slow: aaaa";
            for stream in &mut dribblers {
                let _ = stream.write_all(&head[byte..byte + 1]);
            }
            byte += 1;
            last_byte = Some(Instant::now());
        }
        busy.extend(latencies(&server, 10));
    }
    // Every dribbler was answered 408 or closed by the 3 s head deadline.
    let mut cut = 0;
    for stream in &mut dribblers {
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut buf = Vec::new();
        if stream.read_to_end(&mut buf).is_ok() {
            cut += 1;
            assert!(
                buf.is_empty() || buf.starts_with(b"HTTP/1.1 408"),
                "{buf:?}"
            );
        }
    }
    assert_eq!(cut, DRIBBLERS, "dribblers left open");
    let p99 = |mut list: Vec<Duration>| {
        list.sort();
        list[(list.len() * 99 / 100).min(list.len() - 1)]
    };
    let (idle_p99, busy_p99) = (p99(idle), p99(busy.clone()));
    println!(
        "p99 latency of a normal client: {idle_p99:?} idle, {busy_p99:?} among {DRIBBLERS} dribblers ({} requests)",
        busy.len()
    );
}

/// `count` GETs of a small file, each on its own connection; every one must
/// succeed. Returns their latencies.
fn latencies(server: &Server, count: usize) -> Vec<Duration> {
    (0..count)
        .map(|_| {
            let started = Instant::now();
            let response = server.get("/a.mp4", &[]);
            assert_eq!(response.status, 200);
            started.elapsed()
        })
        .collect()
}

#[test]
fn out_of_descriptors_the_server_neither_spins_nor_dies() {
    let dir = TempDir::new("faults-fds");
    std::fs::copy(media_folder().join("sample.mp4"), dir.path().join("a.mp4")).expect("copy");
    let path = options_file(
        &dir,
        &format!(
            "options.workers = 1\noptions.hosts[''] = {{ folder = '{}' }}\n",
            dir.path().display()
        ),
    );
    // Started with a low open-files limit the server cannot raise.
    let server = Server::start_with_limit(&["-o", path.to_str().expect("utf8")], 64);
    let clients: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", server.port)).ok())
        .collect();
    assert!(clients.len() > 100);
    assert!(
        server.wait_for_log("raise the open files limit", Duration::from_secs(5)),
        "the server never ran out of descriptors: {}",
        server.log_text()
    );
    let worker = *server.children().iter().min().expect("a worker");
    let ticks = || {
        std::fs::read_to_string(format!("/proc/{worker}/stat"))
            .ok()
            .and_then(|s| {
                let fields: Vec<String> = s
                    .rsplit(')')
                    .next()?
                    .split_whitespace()
                    .map(String::from)
                    .collect();
                Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
            })
            .expect("worker stat")
    };
    let before = ticks();
    std::thread::sleep(Duration::from_secs(2));
    let used = ticks() - before;
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    assert!(
        used * 100 / (2 * hz) < 20,
        "the worker used {used} ticks in 2 s while out of descriptors: it spins"
    );
    drop(clients);
    std::thread::sleep(Duration::from_millis(300));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut stream = server.connect();
        let _ = stream.write_all(b"HEAD /a.mp4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf);
        if buf.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the server never served again");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.children().contains(&worker), "the worker died");
}

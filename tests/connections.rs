//! Keep-alive, pipelining, concurrency and large bodies.

mod common;

use std::io::{Read, Write};
use std::process::Command;

use common::{Server, TempDir, pattern_bytes, read_response, sha256_bytes, sha256_file};

fn site() -> (TempDir, Server) {
    let dir = TempDir::new("conn");
    for i in 0..10 {
        dir.write(
            &format!("f{i}.txt"),
            format!("file number {i}\n").as_bytes(),
        );
    }
    dir.write("small.mp4", &pattern_bytes(10_240, 7));
    let server = Server::start(&["-f", dir.path().to_str().expect("utf8"), "-w", "2"]);
    (dir, server)
}

#[test]
fn a_hundred_sequential_requests_share_one_connection() {
    let (_dir, server) = site();
    let mut stream = server.connect();
    for i in 0..100 {
        let path = format!("/f{}.txt", i % 10);
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
            .expect("send");
        let response = read_response(&mut stream, false);
        assert_eq!(response.status, 200, "request {i}");
        assert_eq!(response.header("Connection"), None);
        assert_eq!(
            response.body,
            format!("file number {}\n", i % 10).into_bytes()
        );
    }
}

#[test]
fn ten_pipelined_requests_are_answered_in_order() {
    let (_dir, server) = site();
    let mut stream = server.connect();
    let mut batch = String::new();
    for i in 0..10 {
        let method = if i == 4 { "HEAD" } else { "GET" };
        batch.push_str(&format!("{method} /f{i}.txt HTTP/1.1\r\nHost: a\r\n\r\n"));
    }
    stream.write_all(batch.as_bytes()).expect("one write");
    for i in 0..10 {
        let response = read_response(&mut stream, i == 4);
        assert_eq!(response.status, 200);
        if i != 4 {
            assert_eq!(response.body, format!("file number {i}\n").into_bytes());
        }
    }
    // The connection is still usable after the batch.
    stream
        .write_all(b"GET /f9.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .expect("send");
    let last = read_response(&mut stream, false);
    assert_eq!(last.header("Connection"), Some("close"));
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("closed");
    assert!(rest.is_empty());
}

#[test]
fn two_hundred_concurrent_connections_are_all_served() {
    let (_dir, server) = site();
    let expected = pattern_bytes(10_240, 7);
    let mut streams: Vec<_> = (0..200).map(|_| server.connect()).collect();
    for stream in &mut streams {
        stream
            .write_all(b"GET /small.mp4 HTTP/1.1\r\nHost: a\r\n\r\n")
            .expect("send");
    }
    for stream in &mut streams {
        let response = read_response(stream, false);
        assert_eq!(response.status, 200);
        assert_eq!(response.body, expected);
    }
}

fn big_site() -> (TempDir, Server, std::path::PathBuf) {
    let dir = TempDir::new("big");
    let path = dir.write("big.mp4", &pattern_bytes(50 * 1024 * 1024, 42));
    let server = Server::start(&["-f", dir.path().to_str().expect("utf8"), "-w", "2"]);
    (dir, server, path)
}

#[test]
fn a_50_mb_file_arrives_byte_identical() {
    let (_dir, server, path) = big_site();
    let response = server.get("/big.mp4", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), 50 * 1024 * 1024);
    assert_eq!(sha256_bytes(&response.body), sha256_file(&path));
    let tail = server.get("/big.mp4", &["Range: bytes=52000000-"]);
    assert_eq!(tail.body.len(), 50 * 1024 * 1024 - 52_000_000);
}

#[test]
fn a_50_mb_file_arrives_byte_identical_through_curl() {
    let (dir, server, path) = big_site();
    let output = dir.path().join("download.bin");
    let status = Command::new("curl")
        .args(["-sS", "--fail", "-o"])
        .arg(&output)
        .arg(format!("http://127.0.0.1:{}/big.mp4", server.port))
        .status()
        .expect("curl runs (the test command installs it)");
    assert!(status.success());
    assert_eq!(sha256_file(&output), sha256_file(&path));
}

#[test]
fn each_response_gets_a_combined_log_line_with_its_time() {
    let (_dir, server) = site();
    let response = server.get(
        "/f1.txt",
        &[
            "Referer: http://example.com/page",
            "User-Agent: Test \"Agent\"/1.0",
        ],
    );
    assert_eq!(response.status, 200);
    assert_eq!(server.get("/missing.txt", &[]).status, 404);
    assert!(server.wait_for_log(
        "\"GET /missing.txt HTTP/1.1\" 404",
        std::time::Duration::from_secs(5)
    ));
    let log = server.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("GET /f1.txt"))
        .expect("a log line for the request");
    // 127.0.0.1 - - [24/Nov/2026:23:18:47 +0000] "GET /f1.txt HTTP/1.1" 200 14 "http://example.com/page" "Test \x22Agent\x22/1.0" 0.000
    let (prefix, rest) = line.split_once(" [").expect("timestamp");
    assert_eq!(prefix, "127.0.0.1 - -");
    let (stamp, rest) = rest.split_once("] ").expect("timestamp end");
    assert_eq!(stamp.len(), "24/Nov/2026:23:18:47 +0000".len(), "{stamp}");
    assert!(stamp.ends_with(" +0000"));
    let (fields, seconds) = rest.rsplit_once(' ').expect("response time");
    assert_eq!(
        fields,
        "\"GET /f1.txt HTTP/1.1\" 200 14 \"http://example.com/page\" \"Test \\x22Agent\\x22/1.0\""
    );
    let seconds: f64 = seconds.parse().expect("seconds");
    assert!((0.0..5.0).contains(&seconds));
}

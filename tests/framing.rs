//! Request framing (RFC 9112 §6) as an attacker or a confused proxy would
//! try it: every head that could be read two ways is refused and the
//! connection closed, a body with a valid Content-Length is read and thrown
//! away, and a request pipelined behind any of them is either answered
//! correctly or never read. Then a corpus of malformed requests, each of
//! which gets a complete error response or a clean close.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Response, Server};

const NEXT: &[u8] = b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\n\r\n";

fn server() -> Server {
    Server::start(&["-f", common::media_folder().to_str().expect("utf8")])
}

/// Sends `bytes` on one connection and reads until the server closes it
/// (or goes quiet for a second): every response, parsed in order.
fn exchange_all(server: &Server, bytes: &[u8]) -> (Vec<Response>, Vec<u8>) {
    let mut stream = server.connect();
    stream
        .set_read_timeout(Some(Duration::from_millis(400)))
        .expect("timeout");
    stream.write_all(bytes).expect("send");
    let mut received = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
    (split_responses(&received), received)
}

/// Splits a byte stream into responses, using each head's Content-Length.
fn split_responses(mut bytes: &[u8]) -> Vec<Response> {
    let mut responses = Vec::new();
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = Response::parse(&bytes[..end + 4], true).expect("a head");
        let length: usize = head
            .header("Content-Length")
            .map_or(0, |v| v.parse().expect("length"));
        let total = (end + 4 + length).min(bytes.len());
        responses.push(Response::parse(&bytes[..total], false).expect("a response"));
        bytes = &bytes[total..];
    }
    assert!(
        bytes.is_empty(),
        "trailing bytes: {:?}",
        String::from_utf8_lossy(bytes)
    );
    responses
}

#[test]
fn ambiguous_framing_is_400_and_nothing_after_it_is_read() {
    let server = server();
    let cases: &[(&[u8], u16)] = &[
        (b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
        (b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", 400),
        (b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
        (b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        (b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 38\r\n\r\n", 400),
        (b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"HEAD /sample.mp4 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n26\r\n", 400),
        (b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n b\r\n\r\n", 400),
        (b"GET /sample.mp4 HTTP/1.1\r\nHost: x y\r\n\r\n", 400),
        (b"GET /sample.mp4 HTTP/1.1\r\nHost: evil@x\r\n\r\n", 400),
        (b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
        (b"GET /sample.mp4 HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /sample.mp4 HTTP/1.7\r\nHost: x\r\n\r\n", 505),
        (b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", 413),
    ];
    for (head, status) in cases {
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(NEXT);
        let (responses, raw) = exchange_all(&server, &bytes);
        let shown = String::from_utf8_lossy(head);
        assert_eq!(
            responses.len(),
            1,
            "{shown}: {:?}",
            String::from_utf8_lossy(&raw)
        );
        assert_eq!(responses[0].status, *status, "{shown}");
        assert_eq!(responses[0].header("Connection"), Some("close"), "{shown}");
    }
}

#[test]
fn a_body_with_a_valid_length_is_read_and_discarded() {
    let server = server();
    // Whole, in one write, with the next request behind it.
    let body = b"GET /sample.flv HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut bytes = format!(
        "GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body); // a body that looks like a request
    bytes.extend_from_slice(b"HEAD /sample.mp4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (responses, _) = exchange_all(&server, &bytes);
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200], "the body was not read as a request");
    assert_eq!(responses[0].header("Content-Type"), Some("video/mp4"));
    assert_eq!(responses[1].header("Content-Type"), Some("video/mp4"));

    // In pieces, the body arriving after the answer.
    let mut stream: TcpStream = server.connect();
    stream
        .write_all(b"HEAD /sample.flv HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nGET /")
        .expect("send");
    let first = common::read_response(&mut stream, true);
    assert_eq!(first.status, 200);
    std::thread::sleep(Duration::from_millis(200));
    stream
        .write_all(b"nope\r\nHEAD /sample.mp4 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let second = common::read_response(&mut stream, true);
    assert_eq!(
        (second.status, second.header("Content-Type")),
        (200, Some("video/mp4"))
    );
}

/// Malformed requests of every kind: each gets a complete 4xx/5xx response
/// or a clean close, and the server serves on.
#[test]
fn a_corpus_of_malformed_requests_gets_errors_or_clean_closes() {
    let server = server();
    let long = "a".repeat(9000);
    let mut corpus: Vec<Vec<u8>> = vec![
        b"GET\r\n\r\n".to_vec(),
        b"GET /\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n".to_vec(),
        b" GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /sample%00.mp4 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /%4 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /% HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /a\\..\\b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET sample.mp4 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET * HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /sample.mp4?start=abc HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /sample.mp4?start=1e999 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /sample.mp4?start=-5 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /sample.mp4?start=5&stop=1 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /sample.mp4?start=nan HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=99999999-\r\n\r\n".to_vec(),
        b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=5-1\r\n\r\n".to_vec(),
        b"DELETE /sample.mp4 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"PUT /sample.mp4 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
        b"POST /sample.mp4 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
        b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        b"get / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nNo-Colon\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nRange: \xff\xfe\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\nHost: x\n\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r".to_vec(),
        b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: yesterday\r\n\r\n".to_vec(),
        b"GET /sample.mp4 HTTP/1.1\r\nHost: x\r\nIf-Range: garbage\r\nRange: bytes=0-1\r\n\r\n"
            .to_vec(),
        b"GET /<script>alert(1)</script> HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /sample.mp4?start=<b> HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: <script>\r\n\r\n".to_vec(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), // a TLS ClientHello
        b"\x00\x00\x00\x00\x00\x00\x00\x00".to_vec(),
        b"\r\n\r\n\r\n\r\n".to_vec(),
        b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(),
        format!("GET /{long} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
        format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {long}\r\n\r\n").into_bytes(),
        format!("GET / HTTP/1.1\r\nHost: {long}\r\n\r\n").into_bytes(),
        (0..150)
            .map(|i| format!("X-H{i}: v\r\n"))
            .fold(b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec(), |mut acc, h| {
                acc.extend_from_slice(h.as_bytes());
                acc
            })
            .into_iter()
            .chain(b"\r\n".iter().copied())
            .collect(),
    ];
    // Random bytes, reproducibly.
    for seed in 1..=12u64 {
        corpus.push(common::pattern_bytes(200 + seed as usize * 37, seed));
    }
    assert!(corpus.len() >= 60, "{} requests", corpus.len());
    for request in &corpus {
        let (responses, raw) = exchange_all(&server, request);
        let shown = String::from_utf8_lossy(&request[..request.len().min(80)]).into_owned();
        // Either nothing at all (a clean close) or whole responses, the last
        // of them an error or a complete answer.
        for response in &responses {
            assert!(
                (200..600).contains(&response.status),
                "{shown}: {:?}",
                String::from_utf8_lossy(&raw)
            );
            let page = String::from_utf8_lossy(&response.body);
            assert!(!page.contains("<script>"), "{shown}: unescaped in {page}");
        }
        if let Some(last) = responses.last() {
            assert!(
                last.status >= 400 || last.status < 300,
                "{shown}: {}",
                last.status
            );
        }
    }
    // And the server still serves.
    let response = server.get("/sample.mp4", &[]);
    assert_eq!(response.status, 200);
}

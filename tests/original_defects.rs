//! The original's failures (SPEC-original.md §10), each shown not to be
//! ours: boxes of size 0 and below 8 (an infinite loop there), `start=abc`
//! (a dead master there), reflected XSS in error pages (host, path, query),
//! `options.root = nil`, a host name with `-` on the monitor, the header
//! terminator split across reads, and CRLF heads with a Date.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Server, TempDir, admin_get, free_port, media_folder, options_file};

fn server_with(dir: &TempDir, extra: &str) -> (Server, u16) {
    let admin = free_port();
    let path = options_file(
        dir,
        &format!(
            "{extra}\noptions.hosts['^my-site\\\\.example$'] = {{ folder = '{0}' }}\n\
             options.hosts[''] = {{ folder = '{0}' }}\n",
            dir.path().display()
        ),
    );
    let server = Server::start(&["-o", path.to_str().expect("utf8"), "-r", &admin.to_string()]);
    (server, admin)
}

#[test]
fn boxes_of_size_zero_or_below_eight_are_errors_not_loops() {
    let dir = TempDir::new("defects-boxes");
    let sample = std::fs::read(media_folder().join("sample.mp4")).expect("fixture");
    // A top-level box claiming 4 bytes (less than its own header), and one
    // claiming 0 (to the end of the file) in front of the moov.
    let mut tiny = b"\x00\x00\x00\x04free".to_vec();
    tiny.extend_from_slice(&sample);
    dir.write("tiny.mp4", &tiny);
    let mut zero = sample[..32].to_vec();
    zero.extend_from_slice(b"\x00\x00\x00\x00free");
    zero.extend_from_slice(&sample[32..]);
    dir.write("zero.mp4", &zero);
    let (server, _) = server_with(&dir, "");
    for name in ["tiny.mp4", "zero.mp4"] {
        let seek = server.get(&format!("/{name}?start=1"), &[]);
        assert!(
            (400..600).contains(&seek.status),
            "{name}: {} for a broken box",
            seek.status
        );
    }
    // The worker lives and serves.
    assert_eq!(server.get("/tiny.mp4", &[]).status, 200);
}

#[test]
fn a_non_numeric_start_is_400_and_the_server_lives() {
    let dir = TempDir::new("defects-start");
    std::fs::copy(media_folder().join("sample.mp4"), dir.path().join("a.mp4")).expect("copy");
    std::fs::copy(media_folder().join("sample.flv"), dir.path().join("a.flv")).expect("copy");
    let (server, _) = server_with(&dir, "");
    for target in [
        "/a.mp4?start=abc",
        "/a.flv?start=abc",
        "/a.mp4?stop=x",
        "/a.flv?start=1e400",
    ] {
        assert_eq!(server.get(target, &[]).status, 400, "{target}");
    }
    assert_eq!(server.get("/a.flv?start=1", &[]).status, 200);
}

#[test]
fn error_pages_escape_the_host_the_path_and_the_query() {
    let dir = TempDir::new("defects-xss");
    std::fs::copy(media_folder().join("sample.mp4"), dir.path().join("a.mp4")).expect("copy");
    let (server, _) = server_with(&dir, "");
    let payload = "<script>alert(1)</script>";
    let encoded = "%3Cscript%3Ealert(1)%3C/script%3E";
    let pages = [
        server.raw(
            format!("GET /{payload}.mp4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        ),
        server.raw(
            format!("GET /{encoded}.mp4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        ),
        server.raw(
            format!("GET /a.mp4?start={payload} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        ),
        server.raw(
            format!(
                "GET /a.mp4?start=1&stop={encoded} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        ),
        server.raw(
            format!("GET /a.mp4 HTTP/1.1\r\nHost: {payload}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        ),
        server.raw(
            format!("GET http://{payload}/a.mp4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        ),
        server.raw(
            format!("POST /{payload} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        ),
    ];
    for page in &pages {
        let text = String::from_utf8_lossy(page);
        assert!(text.starts_with("HTTP/1.1 4"), "{text}");
        assert!(!text.contains("<script>"), "unescaped: {text}");
    }
}

#[test]
fn root_nil_disables_the_admin_port() {
    let dir = TempDir::new("defects-root");
    let path = options_file(
        &dir,
        &format!(
            "options.root = nil\noptions.hosts[''] = {{ folder = '{}' }}\n",
            dir.path().display()
        ),
    );
    let output = std::process::Command::new(common::BINARY)
        .args(["-t", "-o", path.to_str().expect("utf8")])
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Started without -r, so that only the file decides the admin port.
    let mut child = std::process::Command::new(common::BINARY)
        .args(["-o", path.to_str().expect("utf8"), "-p", "0"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start");
    let stderr = child.stderr.take().expect("stderr");
    let mut first = String::new();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    for line in lines.by_ref().take(20) {
        let line = line.expect("log");
        if line.contains("listening on") {
            first = line;
            break;
        }
    }
    // SAFETY: kill takes integers only.
    unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
    let _ = child.wait();
    assert!(first.contains("admin: disabled"), "{first}");
}

#[test]
fn a_host_name_with_a_hyphen_is_counted_under_its_own_name() {
    let dir = TempDir::new("defects-hyphen");
    std::fs::copy(media_folder().join("sample.mp4"), dir.path().join("a.mp4")).expect("copy");
    let (server, admin) = server_with(&dir, "");
    let response =
        server.raw(b"GET /a.mp4 HTTP/1.1\r\nHost: my-site.example\r\nConnection: close\r\n\r\n");
    assert!(response.starts_with(b"HTTP/1.1 200"));
    let monitor = admin_get(admin, "/monitor");
    assert!(
        monitor
            .lines()
            .any(|l| l.contains("my-site") && l.ends_with(":200 = 1")),
        "{monitor}"
    );
}

#[test]
fn a_head_terminator_split_across_reads_is_parsed_and_answered_in_crlf() {
    let dir = TempDir::new("defects-split");
    std::fs::copy(media_folder().join("sample.mp4"), dir.path().join("a.mp4")).expect("copy");
    let (server, _) = server_with(&dir, "");
    let mut stream = server.connect();
    for piece in [
        &b"HEAD /a.mp4 HTTP/1.1\r\nHost: x\r"[..],
        b"\n",
        b"\r",
        b"\n",
    ] {
        stream.write_all(piece).expect("send");
        std::thread::sleep(Duration::from_millis(100));
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).expect("read"), 1, "closed early");
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\nDate: "), "{text}");
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "every line ends in CRLF: {text:?}"
    );
}

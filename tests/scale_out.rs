//! Two nodes behind HAProxy (Debian package haproxy) on loopback, as the
//! README's "Scaling out" describes: `balance uri` sends each file (and its
//! seeks) to one node, whose index cache stays warm; health checks on the
//! admin port take a stopped node out, and the survivor serves everything,
//! seeks included.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, TempDir, ensure_fixtures, free_port, media_folder, options_file};

const FILES: [&str; 6] = [
    "/small30.mp4",
    "/vbr.mp4",
    "/v10a20.mp4",
    "/faststart.mp4",
    "/indexed.flv",
    "/spark.flv",
];

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node(dir: &TempDir, name: &str) -> (Server, u16) {
    let admin = free_port();
    let path = dir.write(
        &format!("{name}.lua"),
        format!(
            "options.hosts[''] = {{ folder = '{}' }}\n",
            media_folder().join("generated").display()
        )
        .as_bytes(),
    );
    let server = Server::start(&["-o", path.to_str().expect("utf8"), "-r", &admin.to_string()]);
    (server, admin)
}

/// GET through the proxy; the status and the body.
fn fetch(port: u16, target: &str) -> (u16, Vec<u8>) {
    let output = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{port}{target}"))
        .output()
        .expect("curl");
    let mut body = output.stdout;
    let split = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
    let status = String::from_utf8_lossy(&body[split + 1..])
        .trim()
        .parse()
        .unwrap_or(0);
    body.truncate(split);
    (status, body)
}

/// How many times a node's access log shows `target`.
fn served(node: &Server, target: &str) -> usize {
    let needle = format!("\"GET {target} HTTP/1.1\" ");
    node.log_text()
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

#[test]
fn haproxy_hashes_files_to_nodes_and_the_survivor_serves_when_one_stops() {
    ensure_fixtures();
    let dir = TempDir::new("scale-out");
    let (a, admin_a) = node(&dir, "a");
    let (b, admin_b) = node(&dir, "b");
    let front = free_port();
    let config = options_file(
        &dir,
        &format!(
            "global\n    maxconn 2000\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n\
             frontend media\n    bind 127.0.0.1:{front}\n    default_backend nodes\n\
             backend nodes\n    balance uri\n    hash-type consistent\n\
             \x20   option httpchk GET /monitor?terse=true\n    http-check expect status 200\n\
             \x20   server a 127.0.0.1:{} check port {admin_a} inter 300ms fall 2 rise 1\n\
             \x20   server b 127.0.0.1:{} check port {admin_b} inter 300ms fall 2 rise 1\n",
            a.port, b.port
        ),
    );
    let proxy = Proxy(
        Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy (Debian package haproxy)"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while fetch(front, FILES[0]).0 != 200 {
        assert!(Instant::now() < deadline, "haproxy never served");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each file, and its seeks, always on the same node; both nodes used.
    for file in FILES {
        for target in [file.to_string(), format!("{file}?start=1")] {
            for _ in 0..3 {
                assert_eq!(fetch(front, &target).0, 200, "{target}");
            }
        }
    }
    // Many paths spread over both nodes (missing files are hashed too).
    let spread: Vec<String> = (0..20).map(|n| format!("/spread-{n}.mp4")).collect();
    for target in &spread {
        assert_eq!(fetch(front, target).0, 404);
    }
    let on_a = spread.iter().filter(|t| served(&a, t) > 0).count();
    let on_b = spread.iter().filter(|t| served(&b, t) > 0).count();
    assert_eq!(on_a + on_b, spread.len());
    assert!(
        on_a > 0 && on_b > 0,
        "one node took every path: {on_a} and {on_b}"
    );
    for file in FILES {
        let (from_a, from_b) = (served(&a, file), served(&b, file));
        assert!(
            (from_a == 0) != (from_b == 0),
            "{file} was served by both nodes ({from_a} and {from_b})"
        );
        let seeks = format!("{file}?start=1");
        assert_eq!(
            served(&a, &seeks) > 0,
            from_a > 0,
            "{file}'s seeks went to another node than the file"
        );
    }

    // Node a stops; the health checks take it out and b serves everything.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    'settle: loop {
        for file in FILES {
            if fetch(front, file).0 != 200 {
                assert!(Instant::now() < deadline, "the survivor never took over");
                std::thread::sleep(Duration::from_millis(200));
                continue 'settle;
            }
        }
        break;
    }
    for file in FILES {
        assert_eq!(fetch(front, file).0, 200, "{file}");
        assert!(served(&b, file) > 0, "{file} not served by the survivor");
    }
    let (status, seeked) = fetch(front, "/small30.mp4?start=10");
    assert_eq!(status, 200);
    let path = dir.write("seeked.mp4", &seeked);
    common::decode_cleanly(path.to_str().expect("utf8")).expect("the survivor's seek decodes");
    drop(proxy);
}

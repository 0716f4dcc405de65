//! HTTPS session resumption against the real binary with `openssl
//! s_client -sess_out/-sess_in`: a ticket made by one worker resumes on
//! any; the master replaces the ticket key every `session_timeout`
//! seconds, a ticket still opens under the next key and no longer under
//! the one after; a reload (certbot's deploy hook) ends no session.

mod common;
#[path = "common/https.rs"]
mod https;
#[path = "common/pki.rs"]
mod pki;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::admin_get;
use https::{line_value, path_str, s_client, server_and_admin};
use pki::Pki;

/// The request each connection sends: it closes the connection, so
/// s_client reads everything the server sends (the tickets come first)
/// before it saves the session.
const REQUEST: &str =
    "GET /vbr60.mp4 HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-0\r\nConnection: close\r\n\r\n";

/// A new TLS 1.3 session, saved to `file`.
fn new_session(port: u16, file: &Path) {
    let out = s_client(
        port,
        &[
            "-ign_eof",
            "-tls1_3",
            "-servername",
            "localhost",
            "-sess_out",
            path_str(file),
        ],
        REQUEST,
    );
    assert!(out.contains("HTTP/1.1 206"), "{out}");
    assert!(out.contains("New, TLSv1.3"), "{out}");
}

/// Whether the session in `file` resumed.
fn resumes(port: u16, file: &Path) -> bool {
    let out = s_client(
        port,
        &[
            "-ign_eof",
            "-tls1_3",
            "-servername",
            "localhost",
            "-sess_in",
            path_str(file),
        ],
        REQUEST,
    );
    assert!(out.contains("HTTP/1.1 206"), "{out}");
    out.contains("Reused, TLSv1.3")
}

/// The saved session's ticket: (the id of the key that sealed it, its
/// first four bytes; the lifetime hint, seconds).
fn ticket(file: &Path) -> (u32, u64) {
    let output = Command::new("openssl")
        .args(["sess_id", "-noout", "-text", "-in", path_str(file)])
        .output()
        .expect("run openssl sess_id");
    let text = String::from_utf8_lossy(&output.stdout);
    let hint = text
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("TLS session ticket lifetime hint:")
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no lifetime hint in {text}"));
    let first_line = text
        .lines()
        .skip_while(|line| !line.trim().starts_with("TLS session ticket:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no ticket in {text}"));
    // "    0000 - 00 00 00 01 6e ..."
    let bytes: Vec<u8> = first_line
        .split(" - ")
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .take(4)
        .filter_map(|b| u8::from_str_radix(b.trim_end_matches('-'), 16).ok())
        .collect();
    let id = u32::from_be_bytes(bytes.try_into().unwrap_or_else(|_| panic!("{text}")));
    (id, hint)
}

#[test]
fn a_session_resumes_on_any_worker() {
    let pki = Pki::new();
    let (_server, port, admin, dir) = server_and_admin(&pki, "options.workers = 2");
    let session = dir.path().join("session.pem");
    new_session(port, &session);
    assert_eq!(ticket(&session).1, 21600, "the default lifetime");
    // SO_REUSEPORT spreads new connections over both workers: every one
    // resumes, including on the worker that has issued no ticket yet.
    for attempt in 0..8 {
        assert!(resumes(port, &session), "attempt {attempt}");
    }
    let monitor = admin_get(admin, "/monitor?terse=true");
    let resumed = line_value(&monitor, "net:tls:handshakes:resumed");
    assert!(resumed >= 8, "{monitor}");
}

/// Makes new sessions until one is sealed with a key newer than `after`;
/// returns that key's id, a moment after the master made it.
fn wait_for_key_after(port: u16, file: &Path, after: u32, within: Duration) -> u32 {
    let deadline = Instant::now() + within;
    loop {
        new_session(port, file);
        let (id, _) = ticket(file);
        if id > after {
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "no new ticket key within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ticket_keys_rotate_on_every_worker_and_an_old_ticket_expires() {
    const TIMEOUT: u64 = 3;
    let pki = Pki::new();
    let (server, port, _, dir) = server_and_admin(
        &pki,
        &format!("options.workers = 2\noptions.tls.session_timeout = {TIMEOUT}"),
    );
    let probe = dir.path().join("probe.pem");
    let session = dir.path().join("session.pem");
    new_session(port, &probe);
    let (first, hint) = ticket(&probe);
    assert_eq!(hint, TIMEOUT, "the lifetime hint is the timeout");
    // Catch a rotation as it happens: the key of `session` was made just now.
    let key = wait_for_key_after(port, &session, first, Duration::from_secs(TIMEOUT + 2));
    let made = Instant::now();
    for attempt in 0..4 {
        assert!(resumes(port, &session), "fresh, attempt {attempt}");
    }
    // After the next rotation the ticket still opens, on either worker.
    let next = wait_for_key_after(port, &probe, key, Duration::from_secs(TIMEOUT + 2));
    assert_eq!(next, key + 1);
    assert!(
        made.elapsed() >= Duration::from_secs(TIMEOUT - 1),
        "{:?}",
        made.elapsed()
    );
    for attempt in 0..4 {
        assert!(
            resumes(port, &session),
            "one rotation later, attempt {attempt}"
        );
    }
    // A reload keeps the keys: a session made before it resumes after it.
    let before_reload = dir.path().join("before-reload.pem");
    new_session(port, &before_reload);
    server.signal(libc::SIGHUP);
    assert!(server.wait_for_log("SIGHUP: reloading", Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(500));
    for attempt in 0..4 {
        assert!(
            resumes(port, &before_reload),
            "after the reload, attempt {attempt}"
        );
    }
    // After the rotation after that, the ticket's key is gone: a full handshake.
    wait_for_key_after(port, &probe, next, Duration::from_secs(TIMEOUT + 2));
    for attempt in 0..4 {
        assert!(
            !resumes(port, &session),
            "two rotations later, attempt {attempt}"
        );
    }
}

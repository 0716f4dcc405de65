//! What the HTTPS tests share: a server with HTTPS on a test certificate,
//! its HTTPS port from the start-up line, `openssl s_client`, and a counter
//! read from /monitor.
#![allow(dead_code)] // each test binary uses its own part of it

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{Server, TempDir, ensure_fixtures, free_port, media_folder, options_file};
use crate::pki::Pki;

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf8 path")
}

/// The HTTPS port from the server's start-up line.
pub fn https_port(server: &Server) -> u16 {
    // The start-up line is stored a moment after the port it names is read.
    assert!(server.wait_for_log("https://", Duration::from_secs(10)));
    let line = server
        .log_line("https://")
        .expect("the start-up line names the HTTPS address");
    let address = line
        .split("https://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address");
    address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("a port")
}

/// A server over the generated fixtures with HTTPS on the default
/// certificate (`localhost`, `a.test`) and `extra` options.
pub fn server_with(pki: &Pki, extra: &str) -> (Server, u16, TempDir) {
    let (server, port, _, dir) = server_and_admin(pki, extra);
    (server, port, dir)
}

/// Like `server_with`, with the admin port on; returns it too.
pub fn server_and_admin(pki: &Pki, extra: &str) -> (Server, u16, u16, TempDir) {
    ensure_fixtures();
    let (cert, key) = pki.issue("default", &["localhost", "a.test"], None);
    let dir = TempDir::new("https");
    let folder = media_folder().join("generated");
    let options = options_file(
        &dir,
        &format!(
            "options.tls = {{ port = 0, cert = '{}', key = '{}' }}\n{extra}\n\
             options.hosts[''] = {{ folder = '{}' }}\n",
            path_str(&cert),
            path_str(&key),
            folder.display()
        ),
    );
    let admin = free_port();
    let admin_arg = admin.to_string();
    let server = Server::start(&["-o", path_str(&options), "-r", &admin_arg]);
    let port = https_port(&server);
    (server, port, admin, dir)
}

/// `openssl s_client` with `args`, its stdin closed after `input`.
pub fn s_client(port: u16, args: &[&str], input: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run openssl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write");
    // Closing stdin makes s_client end the connection (after a moment for
    // the answer, which -ign_eof waits for).
    drop(stdin);
    let output = child.wait_with_output().expect("openssl output");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The value of `name` in a /monitor text.
pub fn line_value(monitor: &str, name: &str) -> u64 {
    monitor
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once('=').or_else(|| line.split_once(' '))?;
            (key.trim() == name)
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no {name} in {monitor}"))
}

/// curl over HTTPS, trusting the test CA, `name` resolved to 127.0.0.1.
/// Returns (stdout, the `-w` line).
pub fn curl(pki: &Pki, name: &str, port: u16, args: &[&str]) -> (Vec<u8>, String) {
    let output = Command::new("curl")
        .args(["-sS", "--http1.1", "--max-time", "20", "--cacert"])
        .arg(pki.ca())
        .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let info = text.lines().last().unwrap_or("").to_string();
    (output.stdout, info)
}

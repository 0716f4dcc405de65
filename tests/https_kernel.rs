//! Kernel TLS (`options.tls.kernel`): where the kernel has the `tls`
//! module, HTTPS bodies go to it after the handshake (files, ranges,
//! keep-alive, a TLS 1.3 KeyUpdate, TLS 1.2) and `net:tls:kernel` counts
//! them; where it has not, the same requests are encrypted in user space and
//! the kernel-only test says plainly that it was skipped and why.
//! `kernel = 'off'` never offloads.

mod common;
#[path = "common/https.rs"]
mod https;
#[path = "common/pki.rs"]
mod pki;

use std::time::Duration;

use common::{admin_get, media_folder, sha256_bytes, sha256_file};
use https::{curl, line_value, s_client, server_and_admin};
use pki::Pki;

const ULP_LIST: &str = "/proc/sys/net/ipv4/tcp_available_ulp";

/// Whether this kernel offers kernel TLS, and what it lists.
fn kernel_tls() -> (bool, String) {
    let list = std::fs::read_to_string(ULP_LIST).unwrap_or_default();
    let has = list.split_whitespace().any(|ulp| ulp == "tls");
    (has, list.trim().to_string())
}

fn fetch_and_check(pki: &Pki, port: u16) {
    let file = media_folder().join("generated/vbr60.mp4");
    let url = format!("https://localhost:{port}/vbr60.mp4");
    let (body, _) = curl(pki, "localhost", port, &[&url]);
    assert_eq!(sha256_bytes(&body), sha256_file(&file), "the whole file");
    let (part, info) = curl(
        pki,
        "localhost",
        port,
        &["-r", "1000-1999", "-w", "\n%{http_code}", &url],
    );
    assert!(info.ends_with("206"), "{info}");
    let whole = std::fs::read(&file).expect("fixture");
    assert_eq!(&part[..1000], &whole[1000..2000], "the range");
}

#[test]
fn the_log_says_who_encrypts_and_off_never_offloads() {
    let (has, list) = kernel_tls();
    let pki = Pki::new();
    let (server, port, admin, _dir) = server_and_admin(&pki, "options.throttle = 0");
    let expected = if has {
        "kernel TLS on"
    } else {
        "kernel TLS unavailable"
    };
    assert!(server.wait_for_log(expected, Duration::from_secs(5)));
    fetch_and_check(&pki, port);
    let monitor = admin_get(admin, "/monitor?terse=true");
    let offloaded = line_value(&monitor, "net:tls:kernel");
    if has {
        assert!(offloaded >= 2, "{monitor}");
    } else {
        assert_eq!(offloaded, 0, "{monitor}");
        eprintln!(
            "kernel TLS not offered here ({ULP_LIST} lists '{list}'): the user-space fallback served these requests"
        );
    }
    let (server, port, admin, _dir) =
        server_and_admin(&pki, "options.throttle = 0\noptions.tls.kernel = 'off'");
    assert!(server.wait_for_log("kernel TLS off", Duration::from_secs(5)));
    fetch_and_check(&pki, port);
    let monitor = admin_get(admin, "/monitor?terse=true");
    assert_eq!(line_value(&monitor, "net:tls:kernel"), 0, "{monitor}");
}

#[test]
fn over_kernel_tls_files_key_updates_and_tls_1_2_work() {
    let (has, list) = kernel_tls();
    if !has {
        eprintln!(
            "SKIPPED over_kernel_tls_files_key_updates_and_tls_1_2_work: this kernel has no tls ULP ({ULP_LIST} lists '{list}'; needs CONFIG_TLS and `modprobe tls`)"
        );
        return;
    }
    let pki = Pki::new();
    let (_server, port, admin, _dir) =
        server_and_admin(&pki, "options.workers = 1\noptions.throttle = 0");
    fetch_and_check(&pki, port);
    // Keep-alive: two requests on one connection.
    let url = format!("https://localhost:{port}/vbr60.mp4");
    let (_, info) = curl(
        &pki,
        "localhost",
        port,
        &["-I", "-w", "%{num_connects}\n", &url, &url],
    );
    assert!(
        info.ends_with('0'),
        "the second request reused the connection: {info}"
    );
    // A KeyUpdate the client requests an answer to ('K'), then a request.
    let request = "GET /vbr60.mp4 HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-99\r\nConnection: close\r\n\r\n";
    let out = s_client(
        port,
        &["-ign_eof", "-tls1_3", "-servername", "localhost"],
        &format!("K\n{request}"),
    );
    assert!(out.contains("KEYUPDATE"), "{out}");
    assert!(out.contains("HTTP/1.1 206"), "{out}");
    // TLS 1.2 goes to the kernel too.
    let out = s_client(
        port,
        &["-ign_eof", "-tls1_2", "-servername", "localhost"],
        request,
    );
    assert!(out.contains("HTTP/1.1 206"), "{out}");
    let monitor = admin_get(admin, "/monitor?terse=true");
    assert!(line_value(&monitor, "net:tls:kernel") >= 6, "{monitor}");
}

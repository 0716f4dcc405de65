//! The dashboard (`GET /` on the admin port) in a real browser: headless
//! Chromium renders it with its numbers and logs no console message; a
//! screenshot is kept in target/dashboard.png.

mod common;

use std::process::Command;

use common::{Server, TempDir, admin_get, free_port, media_folder, options_file};

/// Runs headless Chromium on `url` with `action` (`--dump-dom` or
/// `--screenshot=…`); returns (stdout, stderr).
fn chromium(url: &str, action: &str) -> (String, String) {
    let profile = TempDir::new("chromium-profile");
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,1400",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(action)
        .arg(url)
        .output()
        .expect("chromium (Debian package chromium)");
    assert!(output.status.success(), "chromium failed");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_dashboard_renders_its_numbers_in_chromium_without_console_errors() {
    let dir = TempDir::new("dashboard");
    let path = options_file(
        &dir,
        &format!(
            "options.workers = 1\noptions.hosts['^my-site\\\\.test$'] = {{ folder = '{}' }}\n",
            media_folder().display()
        ),
    );
    let admin = free_port();
    let server = Server::start(&["-o", path.to_str().expect("utf8"), "-r", &admin.to_string()]);
    for _ in 0..3 {
        let mut text =
            b"GET /sample.mp4 HTTP/1.1\r\nHost: my-site.test\r\nConnection: close\r\n\r\n".to_vec();
        assert!(server.raw(&text).starts_with(b"HTTP/1.1 200"));
        text.clear();
    }
    assert!(
        server
            .raw(b"GET /none HTTP/1.1\r\nHost: my-site.test\r\nConnection: close\r\n\r\n")
            .starts_with(b"HTTP/1.1 404")
    );
    let html = admin_get(admin, "/");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    let same_page = admin_get(admin, "/monitor?format=html");
    assert!(
        same_page.starts_with("<!DOCTYPE html>") && same_page.contains("id=\"hosts\""),
        "/monitor?format=html is the dashboard too"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("<script"),
        "the page must be self-contained"
    );
    let url = format!("http://127.0.0.1:{admin}/");
    let (dom, log) = chromium(&url, "--dump-dom");
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    // The host's row: 4 requests, 3 answered 200 and 1 404.
    let row = "<td>^my-site\\.test$</td><td>4</td><td>3</td><td>0</td><td>1</td><td>0</td><td>200: 3, 404: 1</td>";
    assert!(dom.contains(row), "no host row {row} in {dom}");
    assert!(dom.contains("id=\"streams\""), "{dom}");
    assert!(dom.contains("<svg"), "charts are missing");
    let screenshot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard.png");
    let (_, log) = chromium(&url, &format!("--screenshot={}", screenshot.display()));
    assert!(!log.lines().any(|l| l.contains(":CONSOLE")), "{log}");
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
}

//! Browser players in tests: a site with hls.js and Shaka Player (from the
//! npm registry, served by Loomiere itself) beside the media fixtures, and
//! a page run in headless Chromium until it reports by fetching `/done?…`.

use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

/// Runs `page` in headless Chromium against `server`; returns the /done line.
pub fn play(server: &Server, page: &str) -> String {
    play_within(server, page, Duration::from_secs(70))
}

/// [`play`] for a page that takes up to `limit` to report.
pub fn play_within(server: &Server, page: &str, limit: Duration) -> String {
    let profile = TempDir::new("packaging-chromium");
    let mut browser = headless_chromium(
        &format!("http://127.0.0.1:{}/{page}", server.port),
        &profile,
    );
    let deadline = Instant::now() + limit;
    let done = loop {
        if let Some(line) = server.log_line("GET /done?") {
            break line;
        }
        if Instant::now() > deadline {
            let _ = browser.kill();
            panic!("{page} never finished:\n{}", server.log_text());
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = browser.kill();
    let _ = browser.wait();
    done
}

pub fn value(done: &str, name: &str) -> String {
    done.split(&format!("{name}="))
        .nth(1)
        .and_then(|rest| rest.split(['&', ' ']).next())
        .unwrap_or_default()
        .to_string()
}

/// A server with the player pages and libraries in one folder and the media
/// fixtures in another; `host_keys` (", key = value…") go in the host's
/// table.
pub fn server_with(pages: &[(&str, String)], host_keys: &str) -> (Server, TempDir) {
    ensure_fixtures();
    let libraries = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/players/fetch.sh"
    ))
    .output()
    .expect("tests/players/fetch.sh");
    assert!(
        libraries.status.success(),
        "{}",
        String::from_utf8_lossy(&libraries.stderr)
    );
    let libraries = String::from_utf8(libraries.stdout).expect("utf8");
    let site = TempDir::new("packaging-site");
    for name in ["hls.min.js", "shaka-player.compiled.js"] {
        let bytes = std::fs::read(std::path::Path::new(libraries.trim()).join(name)).expect(name);
        site.write(name, &bytes);
    }
    for (name, text) in pages {
        site.write(name, text.as_bytes());
    }
    let options = options_file(
        &site,
        &format!(
            "options.workers = 2\noptions.hosts[''] = {{ folders = {{ '{}', '{}' }}{host_keys} }}\n",
            site.path().display(),
            media_folder().join("generated").display()
        ),
    );
    (
        Server::start(&["-o", options.to_str().expect("utf8")]),
        site,
    )
}

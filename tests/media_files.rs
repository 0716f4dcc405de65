//! The committed media fixtures, served whole, are accepted by ffprobe/ffmpeg
//! (which seek with Range requests to reach a moov at the end of the file).

mod common;

use std::process::Command;

use common::Server;

fn media_folder() -> String {
    format!("{}/tests/media", env!("CARGO_MANIFEST_DIR"))
}

fn probe_duration(url: &str) -> f64 {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            url,
        ])
        .output()
        .expect("ffprobe runs (the test command installs ffmpeg)");
    assert!(
        output.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a duration")
}

#[test]
fn whole_media_files_probe_and_decode_cleanly() {
    let server = Server::start(&["-f", &media_folder(), "-w", "2"]);
    for name in ["sample.mp4", "sample.flv"] {
        let url = format!("http://127.0.0.1:{}/{name}", server.port);
        let duration = probe_duration(&url);
        assert!((duration - 4.0).abs() < 0.1, "{name}: {duration}");
        let decode = Command::new("ffmpeg")
            .args(["-v", "error", "-i", &url, "-f", "null", "-"])
            .output()
            .expect("ffmpeg runs");
        assert!(decode.status.success());
        assert!(
            decode.stderr.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&decode.stderr)
        );
    }
    assert!(
        server.wait_for_log(
            "\"GET /sample.mp4 HTTP/1.1\" 206",
            std::time::Duration::from_secs(2)
        ),
        "ffmpeg used a Range request"
    );
}

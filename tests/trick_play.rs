//! I-frame playlists (trick play): every video rendition of a file or a set
//! has an `EXT-X-I-FRAME-STREAM-INF` whose playlist lists each keyframe as a
//! one-sample fragment; ffmpeg decodes them, and the bitrates the master
//! playlist states are those of the fragments served.

mod common;

use std::process::Command;

use common::playlists::{attribute, extinfs};
use common::*;

const LADDER: &str = "/generated/ladder_,180,360,720,.mp4.urlset";

fn server() -> Server {
    ensure_fixtures();
    let dir = TempDir::new("trick");
    let options = options_file(
        &dir,
        &format!(
            "options.workers = 1\noptions.hosts[''] = {{ folder = '{}' }}\n",
            media_folder().display()
        ),
    );
    let server = Server::start(&["-o", options.to_str().expect("utf8")]);
    std::mem::forget(dir);
    server
}

fn text(server: &Server, path: &str) -> String {
    let response = server.get(path, &[]);
    assert_eq!(response.status, 200, "{path}: {}", response.status_line);
    String::from_utf8(response.body).expect("utf8")
}

/// The presentation time of every frame ffprobe decodes from `input` and
/// whether it is a keyframe; `keys_only` asks ffprobe to skip the others.
fn frames(input: &str, keys_only: bool) -> Vec<(f64, bool)> {
    let mut args = vec!["-v", "error", "-select_streams", "v:0"];
    if keys_only {
        args.extend(["-skip_frame", "nokey"]);
    }
    args.extend([
        "-show_entries",
        "frame=key_frame,pts_time",
        "-of",
        "csv=p=0",
        input,
    ]);
    let output = Command::new("ffprobe")
        .args(&args)
        .output()
        .expect("ffprobe");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{input}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut fields = line.split(',');
            let key = fields.next() == Some("1");
            let time = fields
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(f64::NAN);
            (time, key)
        })
        .collect()
}

/// Checks the I-frame playlist at `base/playlist` against the stream-inf
/// line that names it: one entry per keyframe, every fragment a keyframe
/// ffmpeg decodes at the entry's time, BANDWIDTH and AVERAGE-BANDWIDTH
/// those of the fragments served. Returns the entries' count.
fn check_iframe_playlist(server: &Server, base: &str, line: &str, init: &str) -> usize {
    let uri = attribute(line, "URI").expect("a URI");
    let playlist = text(server, &format!("{base}/{uri}"));
    assert!(playlist.contains("\n#EXT-X-I-FRAMES-ONLY\n"), "{playlist}");
    assert!(
        playlist.contains(&format!("\n#EXT-X-MAP:URI=\"{init}\"\n")),
        "{playlist}"
    );
    let durations = extinfs(&playlist);
    let fragments: Vec<&str> = playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(fragments.len(), durations.len());
    let mut peak = 0u64;
    let mut total = 0u64;
    for (fragment, duration) in fragments.iter().zip(&durations) {
        let response = server.get(&format!("{base}/{fragment}"), &[]);
        assert_eq!(response.status, 200, "{fragment}");
        assert_eq!(response.header("content-type"), Some("video/iso.segment"));
        let bytes = response.body.len() as u64;
        peak = peak.max((bytes as f64 * 8.0 / duration).ceil() as u64);
        total += bytes;
    }
    let seconds: f64 = durations.iter().sum();
    let average = (total as f64 * 8.0 / seconds).ceil() as u64;
    // EXTINF is printed to the microsecond: allow that rounding.
    let near = |stated: &str, actual: u64| {
        let stated: u64 = stated.parse().expect("a number");
        stated.abs_diff(actual) <= actual / 10_000 + 1
    };
    assert!(
        near(attribute(line, "BANDWIDTH").expect("BANDWIDTH"), peak),
        "{line}: peak {peak}"
    );
    assert!(
        near(
            attribute(line, "AVERAGE-BANDWIDTH").expect("AVERAGE"),
            average
        ),
        "{line}: average {average}"
    );
    // ffmpeg plays the playlist: each entry one keyframe, at the entry's time.
    let decoded = frames(
        &format!("http://127.0.0.1:{}{base}/{uri}", server.port),
        false,
    );
    assert_eq!(decoded.len(), durations.len(), "{uri}: {decoded:?}");
    let mut at = decoded[0].0;
    for ((time, key), duration) in decoded.iter().zip(&durations) {
        assert!(key, "{uri}: a fragment that is not a keyframe");
        assert!(
            (time - at).abs() < 0.002,
            "{uri}: frame at {time}, entry at {at}"
        );
        at += duration;
    }
    durations.len()
}

#[test]
fn every_rendition_of_a_set_has_an_iframe_playlist_of_its_keyframes() {
    let server = server();
    let master = text(&server, &format!("{LADDER}/master.m3u8"));
    let lines: Vec<&str> = master.lines().collect();
    let variants: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("#EXT-X-STREAM-INF:"))
        .map(|(i, l)| (i, *l))
        .collect();
    let iframes: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("#EXT-X-I-FRAME-STREAM-INF:"))
        .map(|(i, l)| (i, *l))
        .collect();
    assert_eq!(iframes.len(), 3, "{master}");
    // After the variants, in their order, each with its video's codec and size.
    assert!(iframes[0].0 > variants[2].0 + 1, "{master}");
    for ((_, variant), (_, iframe)) in variants.iter().zip(&iframes) {
        let codecs = attribute(variant, "CODECS").expect("CODECS");
        let video_codec = codecs.split(',').next().expect("a video codec");
        assert_eq!(attribute(iframe, "CODECS"), Some(video_codec), "{iframe}");
        assert_eq!(
            attribute(iframe, "RESOLUTION"),
            attribute(variant, "RESOLUTION")
        );
    }
    for (r, (_, line)) in iframes.iter().enumerate() {
        let uri = format!("iframes-v{}.m3u8", r + 1);
        assert_eq!(attribute(line, "URI"), Some(uri.as_str()));
        // 12 s with a keyframe every second.
        let entries = check_iframe_playlist(&server, LADDER, line, &format!("init-v{}.mp4", r + 1));
        assert_eq!(entries, 12, "{line}");
    }
    // Past the last keyframe, another rendition, and a fragment's Range.
    assert_eq!(
        server
            .get(&format!("{LADDER}/iframe-v1-12.m4s"), &[])
            .status,
        404
    );
    assert_eq!(
        server.get(&format!("{LADDER}/iframes-v4.m3u8"), &[]).status,
        404
    );
    let whole = server.get(&format!("{LADDER}/iframe-v2-3.m4s"), &[]);
    let part = server.get(&format!("{LADDER}/iframe-v2-3.m4s"), &["Range: bytes=8-99"]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole.body[8..100]);
}

#[test]
fn a_file_has_an_iframe_playlist_of_every_keyframe_it_holds() {
    let server = server();
    let base = "/generated/vbr60.mp4";
    let master = text(&server, &format!("{base}/master.m3u8"));
    let line = master
        .lines()
        .find(|l| l.starts_with("#EXT-X-I-FRAME-STREAM-INF:"))
        .expect("an I-frame rendition");
    assert_eq!(attribute(line, "URI"), Some("iframes.m3u8"));
    assert_eq!(attribute(line, "RESOLUTION"), Some("320x180"), "{line}");
    assert!(
        attribute(line, "CODECS").is_some_and(|c| c.starts_with("avc1.") && !c.contains(',')),
        "{line}"
    );
    let entries = check_iframe_playlist(&server, base, line, "init-v.mp4");
    let file = media_folder().join("generated/vbr60.mp4");
    let keyframes = frames(file.to_str().expect("utf8"), true);
    assert_eq!(entries, keyframes.len());

    // A clip's keyframes, its arguments carried into every URI.
    let clipped = text(&server, &format!("{base}/iframes.m3u8?start=10&stop=20"));
    let inside = keyframes
        .iter()
        .filter(|(t, _)| *t >= 10.0 - 1e-3 && *t < 20.0 - 1e-3)
        .count();
    assert!(extinfs(&clipped).len().abs_diff(inside) <= 1, "{clipped}");
    assert!(
        clipped.contains("iframe-0.m4s?start=10&stop=20\n"),
        "{clipped}"
    );
    assert!(
        clipped.contains("init-v.mp4?start=10&stop=20\""),
        "{clipped}"
    );
}

#[test]
fn audio_has_no_iframe_rendition() {
    let server = server();
    let master = text(&server, "/generated/audio.m4a/master.m3u8");
    assert!(!master.contains("I-FRAME"), "{master}");
    let response = server.get("/generated/audio.m4a/iframes.m3u8", &[]);
    assert_eq!(response.status, 404);
    assert_eq!(
        server.get("/generated/audio.m4a/iframe-0.m4s", &[]).status,
        404
    );
}

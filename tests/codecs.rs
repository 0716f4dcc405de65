//! The codec matrix of packaging: HEVC (hvc1 and hev1, with the
//! profile/tier/level string Apple's players check), AV1, VP9, H.264 as
//! avc3, with E-AC-3, AC-3, Opus, FLAC and AAC: each ffmpeg-made file's
//! `CODECS` and `codecs` strings, its init segments' sample entries, and
//! ffmpeg reading and decoding its HLS, DASH and I-frame URLs end to end.

mod common;

use std::process::Command;

use common::playlists::attribute;
use common::*;

/// File, its video and audio sample entries, and the RFC 6381 strings.
const MATRIX: [(&str, &str, &str, &str, &str); 5] = [
    ("codec_hvc1", "hvc1", "ec-3", "hvc1.1.6.L60.90", "ec-3"),
    ("codec_hev1", "hev1", "ac-3", "hev1.1.6.L60.90", "ac-3"),
    ("codec_av1", "av01", "Opus", "av01.0.00M.08", "opus"),
    ("codec_vp9", "vp09", "fLaC", "vp09.00.11.08", "flac"),
    ("codec_avc3", "avc3", "mp4a", "avc3.64000c", "mp4a.40.2"),
];

fn server() -> Server {
    ensure_fixtures();
    let dir = TempDir::new("codecs");
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

/// ffprobe's `codec_name,codec_tag_string` of each stream of `input`.
fn codec_tags(input: &str) -> Vec<(String, String)> {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,codec_tag_string",
            "-of",
            "csv=p=0",
            input,
        ])
        .output()
        .expect("ffprobe");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{input}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut streams: Vec<(String, String)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| {
            // Side data may add empty fields after the two asked for.
            let mut fields = l.split(',');
            Some((fields.next()?.to_string(), fields.next()?.to_string()))
        })
        .collect();
    // An HLS input lists its streams once per program too.
    streams.dedup();
    streams.sort();
    streams.dedup();
    streams
}

fn decodes_cleanly(input: &str) {
    let output = Command::new("ffmpeg")
        .args([
            "-v", "error", "-nostdin", "-i", input, "-map", "0", "-f", "null", "-",
        ])
        .output()
        .expect("ffmpeg");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{input}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn playlists_and_manifests_signal_every_codec_exactly() {
    let server = server();
    for (file, _, _, video, audio) in MATRIX {
        let master = server.get(&format!("/generated/{file}.mp4/master.m3u8"), &[]);
        assert_eq!(master.status, 200, "{file}");
        let master = String::from_utf8(master.body).expect("utf8");
        let variant = master
            .lines()
            .find(|l| l.starts_with("#EXT-X-STREAM-INF:"))
            .expect("a variant");
        assert_eq!(
            attribute(variant, "CODECS"),
            Some(format!("{video},{audio}").as_str()),
            "{file}: {variant}"
        );
        assert_eq!(attribute(variant, "RESOLUTION"), Some("320x180"));
        let iframe = master
            .lines()
            .find(|l| l.starts_with("#EXT-X-I-FRAME-STREAM-INF:"))
            .expect("an I-frame rendition");
        assert_eq!(attribute(iframe, "CODECS"), Some(video), "{file}");

        let mpd = server.get(&format!("/generated/{file}.mp4/manifest.mpd"), &[]);
        let mpd = String::from_utf8(mpd.body).expect("utf8");
        assert!(
            mpd.contains(&format!("codecs=\"{video}\"")),
            "{file}: {mpd}"
        );
        assert!(
            mpd.contains(&format!("codecs=\"{audio}\"")),
            "{file}: {mpd}"
        );
    }
}

#[test]
fn init_segments_keep_each_sample_entry_and_ffmpeg_decodes_every_url() {
    let server = server();
    for (file, video_entry, audio_entry, ..) in MATRIX {
        let base = format!("http://127.0.0.1:{}/generated/{file}.mp4", server.port);
        let source = media_folder().join(format!("generated/{file}.mp4"));
        let source_tags = codec_tags(source.to_str().expect("utf8"));
        // The init segments carry the file's own sample entries (and their
        // configuration boxes), video and audio apart.
        let video_init = codec_tags(&format!("{base}/init-v.mp4"));
        let audio_init = codec_tags(&format!("{base}/init-a0.mp4"));
        assert_eq!(video_init.len(), 1, "{file}: {video_init:?}");
        assert_eq!(video_init[0].1, video_entry, "{file}");
        assert_eq!(audio_init[0].1, audio_entry, "{file}");
        let mut both: Vec<_> = video_init.iter().chain(&audio_init).cloned().collect();
        both.sort();
        assert_eq!(both, source_tags, "{file}");
        // HLS, DASH and the I-frame playlist: every stream listed, decoded
        // end to end without a single error.
        for url in ["master.m3u8", "manifest.mpd"] {
            let names: Vec<String> = codec_tags(&format!("{base}/{url}"))
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            let expected: Vec<String> = source_tags.iter().map(|(n, _)| n.clone()).collect();
            assert_eq!(names, expected, "{file}/{url}");
            decodes_cleanly(&format!("{base}/{url}"));
        }
        decodes_cleanly(&format!("{base}/iframes.m3u8"));
    }
}

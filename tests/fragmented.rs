//! Fragmented MP4 (issue 24): files made by ffmpeg's fragmenting muxers
//! (frag_keyframe, frag_every_frame, dash with a sidx, fragments that start
//! between keyframes, CMAF, negative composition offsets, samples in the moov
//! and in fragments, two audio tracks, each track in moofs of its own in no
//! fixed order, audio only) seeked, served whole,
//! packaged and put in a rendition set; cut short, damaged and encrypted
//! files answered clearly.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, TempDir, ensure_fixtures, media_folder, options_file, probe, sha256_bytes};

const FILMS: [&str; 9] = common::FRAGMENTED_FILMS;

fn server() -> Server {
    server_with("")
}

/// [`server`] with more options.
fn server_with(extra: &str) -> Server {
    ensure_fixtures();
    let dir = TempDir::new("fragmented");
    let path = options_file(
        &dir,
        &format!(
            "{extra}\noptions.hosts[''] = {{ folder = '{}' }}\n",
            media_folder().join("generated").display()
        ),
    );
    let server = Server::start(&["-o", path.to_str().expect("utf8"), "-w", "1"]);
    std::mem::forget(dir);
    server
}

fn url(server: &Server, path: &str) -> String {
    format!("http://127.0.0.1:{}/{path}", server.port)
}

/// Decodes every stream of `input`; Ok when ffmpeg reports nothing but the
/// repeated decode times ffmpeg's own frag_every_frame muxer writes for
/// audio (zero-duration samples, which it reads the same way from the
/// source file).
fn decodes(input: &str) -> Result<(), String> {
    common::decode_every_stream(input, &["non monotonically increasing dts to muxer"])
}

/// The video frames' hashes (ffmpeg's framemd5, without timestamps).
fn frame_hashes(input: &str, stream: &str) -> Vec<String> {
    let output = Command::new("ffmpeg")
        .args([
            "-v", "error", "-nostdin", "-i", input, "-map", stream, "-f", "framemd5", "-",
        ])
        .output()
        .expect("ffmpeg");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

/// Ten start points in (0, 18), the same on every run.
fn start_points() -> Vec<f64> {
    let mut state = 0x2545_f491_u64;
    (0..10)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            0.1 + (state >> 33) as f64 / (1u64 << 31) as f64 * 17.8
        })
        .collect()
}

#[test]
fn every_fragmented_film_seeks_to_the_keyframe_at_or_before_start() {
    let server = server();
    for film in FILMS {
        let whole = probe(&url(&server, film)).expect("probe the film");
        let video_length = whole.stream("video").expect("video").1;
        for start in start_points() {
            let target = format!("{film}?start={start:.2}");
            let response = server.get(&format!("/{target}"), &[]);
            assert_eq!(response.status, 200, "{target}");
            let seeked = probe(&url(&server, &target)).expect("probe");
            // A keyframe every second: the video starts at floor(start).
            let kept = seeked.stream("video").expect("video").1;
            let expected = video_length - start.floor();
            assert!(
                (kept - expected).abs() < 0.1,
                "{target}: {kept:.3} s of video, expected {expected:.3}"
            );
            // Timestamps start at the seek, not where it was in the film:
            // at 0, or the film's own B-frame delay (0.08 s) where ffmpeg
            // fragmented it without an edit list.
            for (kind, _, first) in &seeked.streams {
                assert!(
                    (-0.01..0.1).contains(first),
                    "{target}: {kind} starts at {first}"
                );
            }
            decodes(&url(&server, &target)).unwrap_or_else(|e| panic!("{target}: {e}"));
        }
    }
}

#[test]
fn a_fragmented_audio_file_seeks_to_the_frame() {
    let server = server();
    let whole = probe(&url(&server, "frag_audio.m4a"))
        .expect("probe")
        .duration;
    for start in [0.5, 1.7, 2.9, 3.3, 4.65, 5.8, 7.77, 8.9, 10.2, 11.0] {
        let target = format!("frag_audio.m4a?start={start}");
        let seeked = probe(&url(&server, &target)).expect("probe");
        assert!(
            (seeked.duration - (whole - start)).abs() < 0.05,
            "{target}: {:.3} s",
            seeked.duration
        );
        decodes(&url(&server, &target)).unwrap_or_else(|e| panic!("{target}: {e}"));
    }
}

#[test]
fn a_fragmented_seek_gives_the_frames_of_the_same_seek_on_the_regular_file() {
    let server = server();
    for start in ["3.5", "7.5", "12", "19.2"] {
        let regular = frame_hashes(&url(&server, &format!("regular.mp4?start={start}")), "0:v");
        assert!(regular.len() > 10, "start={start}");
        for film in FILMS {
            let source = if film == "frag_two_audio.mp4" {
                "two-audio.mp4"
            } else {
                "regular.mp4"
            };
            let regular = frame_hashes(&url(&server, &format!("{source}?start={start}")), "0:v");
            let target = url(&server, &format!("{film}?start={start}"));
            assert_eq!(
                frame_hashes(&target, "0:v"),
                regular,
                "{film}?start={start}: video"
            );
        }
        // Audio against the same file made regular by ffmpeg -c copy (the
        // original's edit list, which hides the AAC encoder's priming frame,
        // is not in a fragmented file).
        for stream in ["0:v", "0:a"] {
            let regular = url(&server, &format!("unfragmented.mp4?start={start}"));
            let target = url(&server, &format!("frag_keyframe.mp4?start={start}"));
            assert_eq!(
                frame_hashes(&target, stream),
                frame_hashes(&regular, stream),
                "start={start}: {stream}"
            );
        }
    }
}

/// Fragments of uneven length (keyframes 0.4 s to 4.5 s apart, a fragment
/// each): a seek starts at the keyframe at or before `start`, with the
/// frames the same seek gives in the file before it was fragmented.
#[test]
fn fragments_of_uneven_length_seek_to_their_keyframes() {
    // Forced at 7.9 and 15.5 s, they fall on the frames at 7.92 and 15.52 s.
    const KEYFRAMES: [f64; 10] = [0.0, 0.4, 2.6, 3.0, 7.2, 7.92, 11.0, 15.52, 16.0, 19.0];
    let server = server();
    let whole = probe(&url(&server, "frag_uneven.mp4")).expect("probe the film");
    let video_length = whole.stream("video").expect("video").1;
    for start in start_points() {
        let keyframe = KEYFRAMES
            .into_iter()
            .filter(|&k| k <= start)
            .fold(0.0, f64::max);
        let target = format!("frag_uneven.mp4?start={start:.2}");
        let seeked = probe(&url(&server, &target)).unwrap_or_else(|e| panic!("{target}: {e}"));
        let kept = seeked.stream("video").expect("video").1;
        assert!(
            (kept - (video_length - keyframe)).abs() < 0.1,
            "{target}: {kept:.3} s of video, expected {:.3} (from {keyframe})",
            video_length - keyframe
        );
        let source = url(&server, &format!("uneven.mp4?start={start:.2}"));
        assert_eq!(
            frame_hashes(&url(&server, &target), "0:v"),
            frame_hashes(&source, "0:v"),
            "{target}"
        );
        decodes(&url(&server, &target)).unwrap_or_else(|e| panic!("{target}: {e}"));
    }
}

/// `start` and `stop` together, in both seek modes: the video kept runs
/// from the keyframe at or before `start` (from `start` itself in exact
/// mode, the frames before it hidden by an edit list) to `stop`.
#[test]
fn start_and_stop_cut_every_fragmented_film_in_both_seek_modes() {
    let cuts = [(2.5, 9.0), (6.0, 13.3), (11.7, 17.0)];
    for (mode, options) in [("keyframe", ""), ("exact", "options.seek = 'exact'")] {
        let server = server_with(options);
        for film in FILMS {
            for (start, stop) in cuts {
                let target = format!("{film}?start={start}&stop={stop}");
                let probed =
                    probe(&url(&server, &target)).unwrap_or_else(|e| panic!("{target}: {e}"));
                let shown = probed.stream("video").expect("video").1;
                let from = if mode == "exact" {
                    start
                } else {
                    f64::floor(start)
                };
                assert!(
                    (shown - (stop - from)).abs() < 0.12,
                    "{mode} {target}: {shown:.3} s of video, expected {:.3}",
                    stop - from
                );
                decodes(&url(&server, &target)).unwrap_or_else(|e| panic!("{mode} {target}: {e}"));
            }
        }
        // The same cut of the regular file gives the same frames. Where it
        // ends may differ by the two frames of B-frame delay: ffmpeg wrote
        // the regular file's decode times that much earlier, hidden by an
        // edit list a fragmented file lacks, and `stop` counts decode time.
        if mode == "keyframe" {
            let regular = frame_hashes(&url(&server, "regular.mp4?start=6&stop=13.3"), "0:v");
            let fragmented =
                frame_hashes(&url(&server, "frag_keyframe.mp4?start=6&stop=13.3"), "0:v");
            let common = regular.len().min(fragmented.len());
            assert!(common > 150 && fragmented.len().abs_diff(regular.len()) <= 2);
            assert_eq!(fragmented[..common], regular[..common]);
        }
    }
}

#[test]
fn a_plain_request_is_the_file_byte_for_byte() {
    let server = server();
    for film in FILMS {
        let file = std::fs::read(media_folder().join("generated").join(film)).expect("fixture");
        let response = server.get(&format!("/{film}"), &[]);
        assert_eq!(response.status, 200);
        assert_eq!(sha256_bytes(&response.body), sha256_bytes(&file), "{film}");
    }
}

#[test]
fn fragmented_films_are_packaged_and_put_in_sets() {
    let server = server();
    // Every layout, and the file cut short (its whole fragments).
    for film in FILMS.into_iter().chain(["frag_cut.mp4"]) {
        for name in ["master.m3u8", "manifest.mpd"] {
            let target = url(&server, &format!("{film}/{name}"));
            let probed = probe(&target).unwrap_or_else(|e| panic!("{target}: {e}"));
            let audio = probed.streams.iter().filter(|s| s.0 == "audio").count();
            assert!(probed.stream("video").is_some(), "{target}");
            let tracks = if film == "frag_two_audio.mp4" { 2 } else { 1 };
            // ffprobe lists a stream again for each program it is in.
            assert!(audio >= tracks, "{target}: {audio} audio streams");
            decodes(&target).unwrap_or_else(|e| panic!("{target}: {e}"));
        }
        let (start, stop) = if film == "frag_cut.mp4" {
            (1, 4)
        } else {
            (5, 11)
        };
        let clipped = url(
            &server,
            &format!("{film}/master.m3u8?start={start}&stop={stop}"),
        );
        let probed = probe(&clipped).expect("probe");
        assert!(
            (probed.duration - f64::from(stop - start)).abs() < 0.2,
            "{clipped}: {}",
            probed.duration
        );
    }
    // Audio only: an audio presentation as long as the file.
    let whole = probe(&url(&server, "frag_audio.m4a"))
        .expect("probe")
        .duration;
    for name in ["master.m3u8", "manifest.mpd"] {
        let target = url(&server, &format!("frag_audio.m4a/{name}"));
        let probed = probe(&target).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert!(probed.stream("video").is_none(), "{target}");
        assert!(probed.stream("audio").is_some(), "{target}");
        assert!(
            (probed.duration - whole).abs() < 0.1,
            "{target}: {} s, the file {whole} s",
            probed.duration
        );
        decodes(&target).unwrap_or_else(|e| panic!("{target}: {e}"));
    }
    // Two layouts of the same film share their keyframes: a rendition set.
    let master = server.get("/frag_,keyframe,cmaf,.mp4.urlset/master.m3u8", &[]);
    assert_eq!(master.status, 200);
    let variants = String::from_utf8_lossy(&master.body)
        .matches("#EXT-X-STREAM-INF:")
        .count();
    assert_eq!(variants, 2);
    let set = url(&server, "frag_,keyframe,cmaf,.mp4.urlset/master.m3u8");
    decodes(&set).unwrap_or_else(|e| panic!("{set}: {e}"));
}

#[test]
fn a_file_cut_short_seeks_anywhere_in_its_whole_fragments() {
    let server = server();
    // Five whole fragments of a second each are left before the cut.
    for start in start_points().into_iter().map(|s| s * 4.9 / 17.9) {
        let target = format!("frag_cut.mp4?start={start:.2}");
        let seeked = probe(&url(&server, &target)).unwrap_or_else(|e| panic!("{target}: {e}"));
        let kept = seeked.stream("video").expect("video").1;
        let expected = 5.0 - start.floor();
        assert!(
            (kept - expected).abs() < 0.15,
            "{target}: {kept:.3} s of video, expected {expected:.3}"
        );
        decodes(&url(&server, &target)).unwrap_or_else(|e| panic!("{target}: {e}"));
    }
}

#[test]
fn cut_short_and_damaged_fragments_serve_what_comes_before_them() {
    let server = server();
    // Cut in the sixth fragment: five whole seconds are left.
    for (film, seconds, logged) in [
        ("frag_cut.mp4", 5.0, "runs past the end of the file"),
        ("frag_bad_count.mp4", 3.0, "claims 100000 samples"),
        ("frag_bad_offset.mp4", 3.0, "runs past the end of the file"),
        ("frag_unknown_track.mp4", 3.0, "track 77"),
    ] {
        let target = format!("{film}?start=1");
        let response = server.get(&format!("/{target}"), &[]);
        assert_eq!(response.status, 200, "{target}");
        let probed = probe(&url(&server, &target)).expect("probe");
        let video = probed.stream("video").expect("video").1;
        assert!(
            (video - (seconds - 1.0)).abs() < 0.15,
            "{target}: {video:.3} s of video, expected about {}",
            seconds - 1.0
        );
        decodes(&url(&server, &target)).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert!(
            server.wait_for_log(&format!("{film}: "), Duration::from_secs(5))
                && server.log_text().contains(logged),
            "{film}: no log line saying what was left out ({logged})"
        );
        // Past what is left: a clear 400, as past the end of any film.
        assert_eq!(server.get(&format!("/{film}?start=9"), &[]).status, 400);
    }
    // Damage in the first fragment leaves nothing to serve: a logged 500.
    let response = server.get("/frag_bad_first.mp4?start=1", &[]);
    assert_eq!(response.status, 500);
    assert!(server.wait_for_log(
        "frag_bad_first.mp4: fragment at offset",
        Duration::from_secs(5)
    ));
    // Encrypted samples cannot be cut: 501, and the file is still served whole.
    let response = server.get("/frag_encrypted.mp4?start=1", &[]);
    assert_eq!(response.status, 501);
    assert!(String::from_utf8_lossy(&response.body).contains("encrypted"));
    assert_eq!(server.get("/frag_encrypted.mp4", &[]).status, 200);
    assert_eq!(
        server.get("/frag_encrypted.mp4/master.m3u8", &[]).status,
        501
    );
    assert!(!server.log_text().contains("panicked"));
}

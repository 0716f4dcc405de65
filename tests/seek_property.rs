//! Property test: 200 random start/stop pairs on each fixture all decode
//! cleanly and cover the expected time within one GOP.

mod common;

use common::{Server, TempDir, decode_cleanly, ensure_fixtures, media_folder, probe};

/// Cases per fixture.
const CASES: usize = 200;
/// Slack for audio frame boundaries and timestamp rounding, seconds.
const TOLERANCE: f64 = 0.12;

struct Random(u64);

impl Random {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Seeks `path` at random and checks every response; `gop` is the keyframe
/// interval, `flv` whether `stop` snaps back to a keyframe too.
fn check_fixture(path: &str, gop: f64, flv: bool, seed: u64) {
    ensure_fixtures();
    let server = Server::start(&["-f", media_folder().to_str().expect("utf8"), "-w", "1"]);
    let whole = probe(&media_folder().join(path).to_string_lossy()).expect("probe the fixture");
    let duration = whole.span();
    let scratch = TempDir::new("property");
    let file = scratch.path().join(path.rsplit('/').next().expect("name"));
    let file_name = file.to_string_lossy().to_string();
    let mut random = Random(seed);
    let mut failures = Vec::new();
    for case in 0..CASES {
        let start = (random.next() * (duration - 0.2) * 100.0).round() / 100.0;
        let stop = if random.next() < 0.4 {
            0.0
        } else {
            let stop = start + 0.3 + random.next() * (duration - start + 1.0);
            (stop * 100.0).round() / 100.0
        };
        let query = if stop > 0.0 {
            format!("start={start}&stop={stop}")
        } else {
            format!("start={start}")
        };
        let response = server.get(&format!("/{path}?{query}"), &[]);
        if response.status != 200 {
            failures.push(format!("{query}: status {}", response.status));
            continue;
        }
        std::fs::write(&file, &response.body).expect("write the response");
        if let Err(e) = decode_cleanly(&file_name) {
            failures.push(format!("{query}: decode: {e}"));
            continue;
        }
        let span = match probe(&file_name) {
            Ok(p) => p.span(),
            Err(e) => {
                failures.push(format!("{query}: probe: {e}"));
                continue;
            }
        };
        let end = if stop > 0.0 {
            stop.min(duration)
        } else {
            duration
        };
        let wanted = end - start;
        let (low, high) = if flv && stop > 0.0 {
            (wanted - gop - TOLERANCE, wanted + gop + TOLERANCE)
        } else {
            (wanted - TOLERANCE, wanted + gop + TOLERANCE)
        };
        if !(low..=high).contains(&span) {
            failures.push(format!(
                "case {case} {query}: covers {span:.3} s, expected {wanted:.3} s within one GOP"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{path}: {} of {CASES} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn random_seeks_on_mp4_with_moov_at_the_end() {
    check_fixture("sample.mp4", 1.0, false, 1);
}

#[test]
fn random_seeks_on_fast_start_mp4() {
    check_fixture("generated/faststart.mp4", 1.0, false, 2);
}

#[test]
fn random_seeks_on_mp4_with_a_short_video_track() {
    check_fixture("generated/v10a20.mp4", 1.0, false, 3);
}

#[test]
fn random_seeks_on_vbr_mp4() {
    check_fixture("generated/vbr.mp4", 1.0, false, 4);
}

#[test]
fn random_seeks_on_audio_only_m4a() {
    check_fixture("generated/audio.m4a", 0.03, false, 5);
}

#[test]
fn random_seeks_on_h264_flv_without_metadata() {
    check_fixture("sample.flv", 1.0, true, 6);
}

#[test]
fn random_seeks_on_h264_flv_with_metadata() {
    check_fixture("generated/indexed.flv", 1.0, true, 7);
}

#[test]
fn random_seeks_on_sorenson_flv() {
    check_fixture("generated/spark.flv", 1.0, true, 8);
}

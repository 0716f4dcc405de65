//! Bandwidth conservation: a paced body holds `throttle` seconds of play
//! ahead of the player and no more, on the media's own byte curve (taken
//! with ffprobe, not our parsers), for plain, seeked and Range requests, MP4
//! and FLV. Assertions are on bytes against the curve, with tolerances of a
//! slice plus a socket buffer, never on the machine's speed.

mod common;

use common::curve::{NeedCurve, Reader};
use common::{Server, TempDir, ensure_fixtures, media_folder, options_file, sha256_bytes};

const LEAD: f64 = 3.0;
const PERIOD: f64 = 0.25;
/// One socket buffer (Linux's default receive buffer): bytes that may be in
/// flight or sampled a moment late.
const SOCKET_BUFFER: u64 = 128 * 1024;

/// A server with `throttle = 3`, `period = 0.25` on the generated fixtures,
/// and a host `fast` that does not throttle (to fetch reference bodies).
fn server() -> Server {
    server_with("")
}

/// [`server`] with more options.
fn server_with(extra: &str) -> Server {
    ensure_fixtures();
    let dir = TempDir::new("throttle");
    let folder = media_folder().join("generated");
    let path = options_file(
        &dir,
        &format!(
            "options.throttle = {LEAD}\noptions.period = {PERIOD}\n{extra}\n\
             options.hosts['^fast'] = {{ folder = '{0}', throttle = 0 }}\n\
             options.hosts[''] = {{ folder = '{0}' }}\n",
            folder.display()
        ),
    );
    let server = Server::start(&["-o", path.to_str().expect("utf8")]);
    std::mem::forget(dir); // the options file must outlive the server's reloads
    server
}

/// Fetches a body unthrottled (host `fast`) and probes it as sent.
fn reference(server: &Server, target: &str) -> (Vec<u8>, NeedCurve) {
    let body = Reader::get(server.port, target, &["Host: fast"]).finish();
    let dir = TempDir::new("reference");
    let path = dir.write("body.bin", &body);
    let curve = NeedCurve::probe(&path);
    (body, curve)
}

/// Reads `target` (from body offset `first` when given, by a Range request)
/// for 10 s and checks the bytes held against the curve every 100 ms.
/// Returns the samples.
fn check_follows_curve(
    server: &Server,
    target: &str,
    first: Option<u64>,
    curve: &NeedCurve,
) -> Vec<(f64, u64)> {
    check_follows_curve_for(server, target, first, curve, 10.0)
}

/// [`check_follows_curve`] for `span` seconds (less than the body lasts
/// past its lead, so a paced body is still going at the end).
fn check_follows_curve_for(
    server: &Server,
    target: &str,
    first: Option<u64>,
    curve: &NeedCurve,
    span: f64,
) -> Vec<(f64, u64)> {
    let range = first.map(|f| format!("Range: bytes={f}-"));
    let headers: Vec<&str> = range.iter().map(String::as_str).collect();
    let reader = Reader::get(server.port, target, &headers);
    assert_eq!(reader.status, if first.is_some() { 206 } else { 200 });
    let first = first.unwrap_or(0);
    let start = if first == 0 {
        0.0
    } else {
        curve.time_at(first)
    };
    let samples = reader.sample(0.1, span);
    let need = |seconds: f64| curve.needed(start + seconds).saturating_sub(first);
    let (at, held) = samples[4];
    assert!(
        held >= need(LEAD),
        "{target}: {held} bytes after {at:.2} s, fewer than the {} that {LEAD} s of play need",
        need(LEAD)
    );
    for &(elapsed, held) in &samples {
        let most = need(LEAD + elapsed + PERIOD) + SOCKET_BUFFER;
        assert!(
            held <= most,
            "{target}: {held} bytes after {elapsed:.2} s, more than {most} (lead + elapsed + period)"
        );
        if elapsed >= 1.0 {
            // Loose, since the client shares the machine: a second late at most.
            let least = need(LEAD + elapsed - 1.0).saturating_sub(SOCKET_BUFFER);
            assert!(
                held >= least,
                "{target}: {held} bytes after {elapsed:.2} s, fewer than {least}: the stream fell behind"
            );
        }
    }
    let (_, last) = samples[samples.len() - 1];
    assert!(
        last < reader.content_length,
        "{target}: the whole body went out within 10 s"
    );
    samples
}

/// Bytes received between two elapsed times, from samples.
fn received_between(samples: &[(f64, u64)], from: f64, to: f64) -> u64 {
    let at = |t: f64| samples.iter().rev().find(|s| s.0 <= t).map_or(0, |s| s.1);
    at(to) - at(from)
}

/// A plain request for `film` (one of the 64 s throttling films) follows
/// its curve and its scenes' bitrates.
fn follows_its_variable_bitrate(film: &str) {
    let server = server();
    let curve = NeedCurve::probe(&media_folder().join("generated").join(film));
    let samples = check_follows_curve(&server, &format!("/{film}"), None, &curve);
    // Play head at elapsed + 3 s: a still scene from 4 s to 8 s, noise from 8 s to 12 s.
    let still = received_between(&samples, 1.5, 4.5);
    let noisy = received_between(&samples, 5.5, 8.5);
    assert!(
        noisy > 10 * still,
        "{film}: noise scene got {noisy} bytes, still scene {still}: not following the bitrate"
    );
}

#[test]
fn a_plain_mp4_follows_its_variable_bitrate() {
    follows_its_variable_bitrate("vbr60.mp4");
}

#[test]
fn a_plain_fragmented_mp4_is_paced_from_its_start() {
    follows_its_variable_bitrate("frag_vbr60.mp4");
}

/// Every fragmented fixture (each of ffmpeg's fragmenting muxers, tracks in
/// moofs of their own in no fixed order, fragments of uneven length, audio
/// only) is paced on its own
/// media curve from its start, all at once.
#[test]
fn every_fragmented_fixture_is_paced_on_its_media_curve() {
    // The fixtures are under the 1 MB below which bodies go unpaced.
    let server = server_with("options.throttle_from = 0");
    let films = common::FRAGMENTED_FILMS.map(|film| (film, 10.0));
    // The 12 s audio file would be whole within 10 s of lead and play;
    // fragments of uneven length too.
    let audio = [("frag_audio.m4a", 6.0), ("frag_uneven.mp4", 10.0)];
    std::thread::scope(|scope| {
        for (film, span) in films.into_iter().chain(audio) {
            let server = &server;
            scope.spawn(move || {
                let curve = NeedCurve::probe(&media_folder().join("generated").join(film));
                check_follows_curve_for(server, &format!("/{film}"), None, &curve, span);
            });
        }
    });
}

#[test]
fn a_range_into_a_fragmented_mp4_is_paced_from_its_media_time() {
    let server = server();
    let curve = NeedCurve::probe(&media_folder().join("generated/frag_vbr60.mp4"));
    check_follows_curve(&server, "/frag_vbr60.mp4", Some(curve.size / 2), &curve);
}

#[test]
fn a_seek_is_paced_from_where_it_starts() {
    let server = server();
    let (body, curve) = reference(&server, "/vbr60.mp4?start=30");
    let samples = check_follows_curve(&server, "/vbr60.mp4?start=30", None, &curve);
    assert!(samples[samples.len() - 1].1 < body.len() as u64 / 2);
}

#[test]
fn a_range_in_the_middle_of_a_plain_file_is_paced_from_its_media_time() {
    let server = server();
    let curve = NeedCurve::probe(&media_folder().join("generated/vbr60.mp4"));
    check_follows_curve(&server, "/vbr60.mp4", Some(curve.size / 2), &curve);
}

#[test]
fn a_range_in_a_seeked_body_is_paced() {
    let server = server();
    let (body, curve) = reference(&server, "/vbr60.mp4?start=20");
    check_follows_curve(
        &server,
        "/vbr60.mp4?start=20",
        Some(body.len() as u64 / 3),
        &curve,
    );
}

#[test]
fn an_flv_with_a_keyframe_index_is_paced() {
    let server = server();
    let curve = NeedCurve::probe(&media_folder().join("generated/vbr60.flv"));
    check_follows_curve(&server, "/vbr60.flv", None, &curve);
}

#[test]
fn an_flv_without_a_keyframe_index_is_paced() {
    let server = server();
    let curve = NeedCurve::probe(&media_folder().join("generated/vbr60-no-index.flv"));
    check_follows_curve(&server, "/vbr60-no-index.flv", None, &curve);
}

#[test]
fn a_moov_at_end_file_goes_whole_but_a_range_inside_its_samples_is_paced() {
    let server = server();
    let path = media_folder().join("generated/vbr60-moov-at-end.mp4");
    let size = std::fs::metadata(&path).expect("fixture").len();
    // A player needs the moov at the end before anything plays: nothing to hold back.
    let whole = Reader::get(server.port, "/vbr60-moov-at-end.mp4", &[]);
    assert_eq!(whole.content_length, size);
    assert_eq!(whole.finish().len() as u64, size);
    let curve = NeedCurve::probe(&path);
    check_follows_curve(
        &server,
        "/vbr60-moov-at-end.mp4",
        Some(curve.size / 4),
        &curve,
    );
}

#[test]
fn a_stop_ends_exactly_at_content_length_and_keep_alive_goes_on() {
    use std::io::Write;
    ensure_fixtures();
    let dir = TempDir::new("throttle-stop");
    let folder = media_folder().join("generated");
    let path = options_file(
        &dir,
        &format!(
            "options.throttle = 1\noptions.period = 0.1\noptions.throttle_from = 0\n\
             options.hosts[''] = {{ folder = '{}' }}\n",
            folder.display()
        ),
    );
    let server = Server::start(&["-o", path.to_str().expect("utf8")]);
    let mut stream = server.connect();
    let started = std::time::Instant::now();
    stream
        .write_all(
            b"GET /vbr60.mp4?start=8&stop=11 HTTP/1.1\r\nHost: a\r\n\r\n\
              GET /vbr60.mp4?start=8&stop=11 HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        .expect("send");
    let first = common::read_response(&mut stream, false);
    let paced_for = started.elapsed();
    assert_eq!(first.status, 200);
    let second = common::read_response(&mut stream, false);
    assert_eq!(second.status, 200, "the keep-alive request after it");
    assert_eq!(
        sha256_bytes(&first.body),
        sha256_bytes(&second.body),
        "no byte past Content-Length shifted the next response"
    );
    // 3 s of media with a 1 s lead: the body took about 2 s, so it was paced.
    assert!(
        paced_for.as_secs_f64() > 1.0,
        "the stop body was not throttled ({paced_for:?})"
    );
    common::probe(&format!(
        "http://127.0.0.1:{}/vbr60.mp4?start=8&stop=11",
        server.port
    ))
    .expect("the paced body is a valid file");
}

//! HLS and DASH in a real browser: headless Chromium plays the packaged
//! presentations with hls.js and Shaka Player (from the npm registry, served
//! by Loomiere itself), seeks once, and plays to the end without an error;
//! so does a fragmented copy of the same film.

mod common;

use common::players::{play, server_with, value};

/// The page's common part: plays, seeks to 8 s before the end once 2 s
/// have played, then reports what happened by fetching `/done?…` (a 404
/// the test finds in the access log).
const PLAY_AND_SEEK: &str = r#"
var video = document.querySelector('video');
var errors = [], seeked = 0, reported = false;
function finish(why) {
  if (reported) return;
  reported = true;
  fetch('/done?why=' + why + '&t=' + video.currentTime.toFixed(3) + '&d=' + (video.duration || 0).toFixed(3) +
        '&seeked=' + seeked + '&errors=' + encodeURIComponent(errors.join(',')));
}
video.addEventListener('error', function () { errors.push('media-' + (video.error && video.error.code)); finish('error'); });
video.addEventListener('seeked', function () { seeked++; });
video.addEventListener('ended', function () { finish('ended'); });
video.addEventListener('playing', function first() {
  video.removeEventListener('playing', first);
  setTimeout(function () { video.currentTime = video.duration - 8; }, 2000);
});
setTimeout(function () { finish('timeout'); }, 50000);
function start() { video.play().catch(function (e) { errors.push('play-' + e.name); finish('error'); }); }
"#;

fn hls_page(source: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html><body><video muted playsinline></video>
<script src="/hls.min.js"></script>
<script>{PLAY_AND_SEEK}
var hls = new Hls();
hls.on(Hls.Events.ERROR, function (event, data) {{ if (data.fatal) {{ errors.push('hls-' + data.details); finish('error'); }} }});
hls.on(Hls.Events.MANIFEST_PARSED, start);
hls.loadSource('{source}');
hls.attachMedia(video);
</script></body></html>"#
    )
}

fn dash_page(source: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html><body><video muted playsinline></video>
<script src="/shaka-player.compiled.js"></script>
<script>{PLAY_AND_SEEK}
shaka.polyfill.installAll();
var player = new shaka.Player();
player.addEventListener('error', function (event) {{ errors.push('shaka-' + event.detail.code); finish('error'); }});
player.attach(video).then(function () {{ return player.load('{source}'); }}).then(start)
  .catch(function (e) {{ errors.push('shaka-' + (e.code || e)); finish('error'); }});
</script></body></html>"#
    )
}

fn assert_played_to_the_end(done: &str) {
    assert_eq!(value(done, "errors"), "", "{done}");
    assert_eq!(value(done, "why"), "ended", "{done}");
    assert!(
        value(done, "seeked").parse::<u32>().unwrap_or(0) >= 1,
        "it seeked: {done}"
    );
    let (t, d): (f64, f64) = (
        value(done, "t").parse().expect("t"),
        value(done, "d").parse().expect("d"),
    );
    assert!((d - 64.0).abs() < 0.5, "duration {d}: {done}");
    assert!(t >= d - 0.5, "ended at {t} of {d}: {done}");
}

#[test]
fn hls_js_plays_the_hls_presentation_seeks_and_reaches_the_end() {
    let (server, _site) = server_with(&[("hls.html", hls_page("/vbr60.mp4/master.m3u8"))], "");
    let done = play(&server, "hls.html");
    assert_played_to_the_end(&done);
    // hls.js fetched segments, never the whole file.
    let log = server.log_text();
    assert!(log.contains("GET /vbr60.mp4/seg-"), "{log}");
    assert!(!log.contains("GET /vbr60.mp4 "), "{log}");
}

#[test]
fn shaka_player_plays_the_dash_presentation_seeks_and_reaches_the_end() {
    let (server, _site) = server_with(&[("dash.html", dash_page("/vbr60.mp4/manifest.mpd"))], "");
    let done = play(&server, "dash.html");
    assert_played_to_the_end(&done);
    let log = server.log_text();
    assert!(log.contains("GET /vbr60.mp4/seg-v-"), "{log}");
    assert!(log.contains("GET /vbr60.mp4/seg-a0-"), "{log}");
}

/// The same film fragmented by ffmpeg (frag_keyframe+empty_moov, issue 24):
/// packaged from its moof boxes, it plays, seeks and ends as the regular one.
#[test]
fn hls_js_plays_a_fragmented_file_seeks_and_reaches_the_end() {
    let (server, _site) = server_with(&[("hls.html", hls_page("/frag_vbr60.mp4/master.m3u8"))], "");
    let done = play(&server, "hls.html");
    assert_played_to_the_end(&done);
    let log = server.log_text();
    assert!(log.contains("GET /frag_vbr60.mp4/seg-"), "{log}");
    assert!(!log.contains("GET /frag_vbr60.mp4 "), "{log}");
}

#[test]
fn shaka_player_plays_a_fragmented_file_seeks_and_reaches_the_end() {
    let (server, _site) = server_with(
        &[("dash.html", dash_page("/frag_vbr60.mp4/manifest.mpd"))],
        "",
    );
    let done = play(&server, "dash.html");
    assert_played_to_the_end(&done);
    let log = server.log_text();
    assert!(log.contains("GET /frag_vbr60.mp4/seg-v-"), "{log}");
    assert!(log.contains("GET /frag_vbr60.mp4/seg-a0-"), "{log}");
}

//! HLS and DASH in a real browser: headless Chromium plays the packaged
//! presentations with hls.js and Shaka Player (from the npm registry, served
//! by Loomiere itself), seeks once, and plays to the end without an error;
//! so does a fragmented copy of the same film, and hls.js plays every
//! fragmented fixture.

mod common;

use std::time::Duration;

use common::players::{play, play_within, server_with, value};

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

/// Plays each of `FILMS` in turn with a new hls.js on the same video
/// element: plays, seeks to 4 s before the end, plays to the end at twice
/// the speed; then reports every film's result in one /done.
const PLAY_EACH_WITH_HLS_JS: &str = r#"
var video = document.querySelector('video');
var results = [];
video.defaultPlaybackRate = 2;
function next(i) {
  if (i >= FILMS.length) {
    fetch('/done?results=' + encodeURIComponent(results.join(';')));
    return;
  }
  var film = FILMS[i], hls = new Hls(), errors = [], seeked = 0, over = false;
  var timer = setTimeout(function () { finish('timeout'); }, 30000);
  function finish(why) {
    if (over) return;
    over = true;
    clearTimeout(timer);
    results.push([film, why, video.currentTime.toFixed(3), (video.duration || 0).toFixed(3), seeked,
                  errors.join('|')].join(','));
    video.onerror = video.onseeked = video.onended = video.onplaying = null;
    hls.destroy();
    setTimeout(function () { next(i + 1); }, 100);
  }
  video.onerror = function () { errors.push('media-' + (video.error && video.error.code)); finish('error'); };
  video.onseeked = function () { seeked++; };
  video.onended = function () { finish('ended'); };
  video.onplaying = function () {
    video.onplaying = null;
    setTimeout(function () { video.currentTime = video.duration - 4; }, 500);
  };
  hls.on(Hls.Events.ERROR, function (event, data) { if (data.fatal) { errors.push('hls-' + data.details); finish('error'); } });
  hls.on(Hls.Events.MANIFEST_PARSED, function () {
    video.playbackRate = 2;
    video.play().catch(function (e) { errors.push('play-' + e.name); finish('error'); });
  });
  hls.loadSource('/' + film + '/master.m3u8');
  hls.attachMedia(video);
}
next(0);
"#;

/// Every fragmented fixture (issue 24: each of ffmpeg's fragmenting muxers,
/// tracks in moofs of their own in no fixed order, fragments of uneven
/// length, audio only, a file cut short) packaged from its moofs plays in hls.js, seeks and ends.
#[test]
fn hls_js_plays_every_fragmented_fixture_seeks_and_reaches_the_end() {
    let mut films: Vec<(&str, f64)> = common::FRAGMENTED_FILMS
        .iter()
        .map(|&f| (f, 20.0))
        .collect();
    // The cut file keeps its five whole fragments; the audio, what ffprobe says.
    films.push(("frag_uneven.mp4", 20.0));
    films.push(("frag_cut.mp4", 5.0));
    let audio = common::probe(
        &common::media_folder()
            .join("generated/frag_audio.m4a")
            .display()
            .to_string(),
    )
    .expect("probe the audio file")
    .duration;
    films.push(("frag_audio.m4a", audio));
    let list: Vec<String> = films.iter().map(|(f, _)| format!("'{f}'")).collect();
    let page = format!(
        r#"<!DOCTYPE html><html><body><video muted playsinline></video>
<script src="/hls.min.js"></script>
<script>var FILMS = [{}];{PLAY_EACH_WITH_HLS_JS}</script></body></html>"#,
        list.join(", ")
    );
    let (server, _site) = server_with(&[("each.html", page)], "");
    let done = play_within(&server, "each.html", Duration::from_secs(240));
    let results = value(&done, "results")
        .replace("%3B", ";")
        .replace("%2C", ",")
        .replace("%7C", "|");
    let results: Vec<&str> = results.split(';').collect();
    assert_eq!(results.len(), films.len(), "{done}");
    for ((film, length), result) in films.iter().zip(&results) {
        let fields: Vec<&str> = result.split(',').collect();
        assert_eq!(fields.len(), 6, "{result}");
        assert_eq!(
            (fields[0], fields[1], fields[5]),
            (*film, "ended", ""),
            "{result}"
        );
        let (t, d): (f64, f64) = (fields[2].parse().expect("t"), fields[3].parse().expect("d"));
        assert!(
            (d - length).abs() < 0.5,
            "{film}: duration {d}, expected {length}: {result}"
        );
        assert!(t >= d - 0.5, "{film}: ended at {t} of {d}: {result}");
        assert!(
            fields[4].parse::<u32>().unwrap_or(0) >= 1,
            "{film} seeked: {result}"
        );
    }
    let log = server.log_text();
    for (film, _) in &films {
        assert!(log.contains(&format!("GET /{film}/seg-")), "{film}: {log}");
        assert!(!log.contains(&format!("GET /{film} ")), "{film}: {log}");
    }
}

//! Rendition sets and the codec matrix in a real browser: hls.js in headless
//! Chromium is forced to switch level twice mid-play and shows the subtitle
//! cues; Shaka Player plays the set's DASH manifest, switches representation
//! and lists the text tracks; both play the codecs Chromium decodes.

mod common;

use common::players::{play, server_with, value};

const LADDER: &str = "/ladder_,180,360,720,.mp4.urlset";

/// One-second segments, so a switch lands well inside the 12 s film.
const ONE_SECOND_SEGMENTS: &str = ", segment_seconds = 1";

/// What every page reports: errors, the picture heights the video element
/// went through (`resize`), stalls (`waiting` after playback began), and
/// how playback ended.
const REPORTING: &str = r#"
var video = document.querySelector('video');
var errors = [], heights = [], stalls = 0, playing = false, reported = false, extra = {};
function finish(why) {
  if (reported) return;
  reported = true;
  var fields = 'why=' + why + '&t=' + video.currentTime.toFixed(3) + '&d=' + (video.duration || 0).toFixed(3) +
      '&heights=' + heights.join('.') + '&stalls=' + stalls + '&errors=' + encodeURIComponent(errors.join(','));
  for (var k in extra) fields += '&' + k + '=' + encodeURIComponent(extra[k]);
  fetch('/done?' + fields);
}
video.addEventListener('error', function () { errors.push('media-' + (video.error && video.error.code)); finish('error'); });
video.addEventListener('resize', function () {
  if (heights[heights.length - 1] !== video.videoHeight) heights.push(video.videoHeight);
});
video.addEventListener('playing', function () { playing = true; });
video.addEventListener('waiting', function () { if (playing && !video.seeking) stalls++; });
var whenEnded = function () { finish('ended'); };
video.addEventListener('ended', function () { whenEnded(); });
setTimeout(function () { finish('timeout'); }, 50000);
function start() { video.play().catch(function (e) { errors.push('play-' + e.name); finish('error'); }); }
"#;

/// hls.js plays the set from its lowest level; 1.5 s into playback it is
/// sent to the highest (`hls.nextLevel`), and once there, back to the
/// lowest. The first subtitle track is shown; its cues are reported.
fn hls_switch_page() -> String {
    format!(
        r#"<!DOCTYPE html><html><body><video muted playsinline></video>
<script src="/hls.min.js"></script>
<script>{REPORTING}
var hls = new Hls({{ startLevel: 0, maxBufferLength: 3, maxMaxBufferLength: 4 }});
var switched = [];
hls.on(Hls.Events.ERROR, function (event, data) {{
  if (data.details === 'bufferStalledError') stalls++;
  if (data.fatal) {{ errors.push('hls-' + data.details); finish('error'); }}
}});
hls.on(Hls.Events.MANIFEST_PARSED, function () {{
  extra.levels = hls.levels.map(function (l) {{ return l.height; }}).join('.');
  start();
}});
// No subtitle is DEFAULT: the page picks the first once hls.js lists them.
hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, function (event, data) {{
  extra.subtitles = data.subtitleTracks.map(function (t) {{ return t.lang; }}).join('.');
}});
hls.on(Hls.Events.SUBTITLE_TRACK_LOADED, function (event, data) {{ extra.subtitleLoaded = data.id; }});
hls.on(Hls.Events.LEVEL_SWITCHED, function (event, data) {{
  switched.push(data.level);
  extra.switched = switched.join('.');
  if (data.level === hls.levels.length - 1 && switched.indexOf(0) === 0) {{
    setTimeout(function () {{ hls.nextLevel = 0; }}, 1500);
  }}
}});
video.addEventListener('playing', function first() {{
  video.removeEventListener('playing', first);
  hls.subtitleDisplay = true;
  hls.subtitleTrack = 0;
  setTimeout(function () {{ hls.nextLevel = hls.levels.length - 1; }}, 1500);
}});
video.addEventListener('timeupdate', function () {{
  var texts = [];
  for (var i = 0; i < video.textTracks.length; i++) {{
    var track = video.textTracks[i];
    for (var j = 0; track.cues && j < track.cues.length; j++) {{
      var cue = track.cues[j];
      texts.push(track.language + ':' + cue.startTime.toFixed(1) + ':' + cue.text);
    }}
  }}
  extra.cues = texts.join('|');
}});
hls.loadSource('{LADDER}/master.m3u8');
hls.attachMedia(video);
</script></body></html>"#
    )
}

/// Shaka plays the set's manifest with adaptation off, selects the highest
/// variant 1.5 s in, the lowest once there, and lists the text tracks.
fn shaka_switch_page() -> String {
    format!(
        r#"<!DOCTYPE html><html><body><video muted playsinline></video>
<script src="/shaka-player.compiled.js"></script>
<script>{REPORTING}
shaka.polyfill.installAll();
var player = new shaka.Player();
player.configure({{ abr: {{ enabled: false }}, streaming: {{ bufferingGoal: 3 }} }});
player.addEventListener('error', function (event) {{ errors.push('shaka-' + event.detail.code); finish('error'); }});
function pick(height) {{
  var tracks = player.getVariantTracks().filter(function (t) {{ return t.height === height; }});
  player.selectVariantTrack(tracks[0], true);
}}
video.addEventListener('playing', function first() {{
  video.removeEventListener('playing', first);
  var variants = player.getVariantTracks();
  extra.variants = variants.map(function (t) {{ return t.height + t.language; }}).sort().join('.');
  extra.texts = player.getTextTracks().map(function (t) {{ return t.language + '/' + t.mimeType; }}).sort().join('.');
  setTimeout(function () {{ pick(720); }}, 1500);
}});
video.addEventListener('resize', function () {{
  if (video.videoHeight === 720 && heights.indexOf(180) === 0) setTimeout(function () {{ pick(180); }}, 1500);
}});
player.attach(video).then(function () {{ return player.load('{LADDER}/manifest.mpd'); }})
  .then(function () {{ pick(180); start(); }})
  .catch(function (e) {{ errors.push('shaka-' + (e.code || e)); finish('error'); }});
</script></body></html>"#
    )
}

/// A page that plays `sources` one after another to their ends with
/// `player` ('hls' or 'shaka'), reporting each one's end as `r<i>`.
fn codecs_page(player: &str, sources: &[&str]) -> String {
    let list: Vec<String> = sources.iter().map(|s| format!("'{s}'")).collect();
    format!(
        r#"<!DOCTYPE html><html><body><video muted playsinline></video>
<script src="/hls.min.js"></script><script src="/shaka-player.compiled.js"></script>
<script>{REPORTING}
var sources = [{}], at = 0, current = null;
whenEnded = function () {{
  extra['r' + at] = 'ended@' + video.currentTime.toFixed(2);
  at++;
  if (at < sources.length) load(); else finish('ended');
}};
function load() {{
  var source = sources[at];
  if ('{player}' === 'hls') {{
    if (current) current.destroy();
    current = new Hls();
    current.on(Hls.Events.ERROR, function (e, data) {{ if (data.fatal) {{ errors.push(source + '-' + data.details); finish('error'); }} }});
    current.on(Hls.Events.MANIFEST_PARSED, start);
    current.loadSource(source);
    current.attachMedia(video);
  }} else {{
    if (!current) {{ shaka.polyfill.installAll(); current = new shaka.Player(); current.attach(video);
      current.addEventListener('error', function (e) {{ errors.push(sources[at] + '-' + e.detail.code); finish('error'); }}); }}
    current.load(source).then(start).catch(function (e) {{ errors.push(source + '-' + (e.code || e)); finish('error'); }});
  }}
}}
load();
</script></body></html>"#,
        list.join(",")
    )
}

fn number(done: &str, name: &str) -> f64 {
    value(done, name).parse().unwrap_or(f64::NAN)
}

fn decoded(done: &str, name: &str) -> String {
    let text = value(done, name);
    let mut out = String::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(byte as char);
            i += 3;
            continue;
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

#[test]
fn hls_js_switches_level_twice_without_a_stall_and_shows_subtitles() {
    let (server, _site) = server_with(&[("hls.html", hls_switch_page())], ONE_SECOND_SEGMENTS);
    let done = play(&server, "hls.html");
    assert_eq!(decoded(&done, "errors"), "", "{done}");
    assert_eq!(value(&done, "why"), "ended", "{done}");
    assert!((number(&done, "d") - 12.0).abs() < 0.3, "{done}");
    assert_eq!(value(&done, "levels"), "180.360.720", "{done}");
    // Lowest, forced to the highest, forced back: the picture followed.
    let switched = decoded(&done, "switched");
    assert!(
        switched.starts_with("0.") && switched.contains(".2") && switched.ends_with(".0"),
        "{done}"
    );
    let heights = value(&done, "heights");
    assert!(
        heights.starts_with("180.") && heights.contains(".720.") && heights.ends_with(".180"),
        "{done}"
    );
    assert_eq!(value(&done, "stalls"), "0", "{done}");
    let log = server.log_text();
    for rendition in ["seg-v1-", "seg-v3-"] {
        assert!(
            log.contains(&format!("{LADDER}/{rendition}")),
            "{rendition}: {log}"
        );
    }
    // The English track's cues, at their times (hls.js maps the WebVTT's
    // X-TIMESTAMP-MAP onto the media's timeline).
    let cues = decoded(&done, "cues");
    let subtitle_requests: Vec<&str> = log.lines().filter(|l| l.contains("-s1")).collect();
    assert!(
        cues.contains("en:0.5:Hello from the ladder"),
        "{done}\n{subtitle_requests:?}"
    );
    assert!(cues.contains("en:6.0:A second cue"), "{done}");
    assert_eq!(value(&done, "subtitles"), "en.fr", "{done}");
}

#[test]
fn shaka_switches_representation_and_lists_the_text_tracks() {
    let (server, _site) = server_with(&[("dash.html", shaka_switch_page())], ONE_SECOND_SEGMENTS);
    let done = play(&server, "dash.html");
    assert_eq!(decoded(&done, "errors"), "", "{done}");
    assert_eq!(value(&done, "why"), "ended", "{done}");
    assert_eq!(
        decoded(&done, "variants"),
        "180en.180fr.360en.360fr.720en.720fr",
        "{done}"
    );
    assert_eq!(decoded(&done, "texts"), "en/text/vtt.fr/text/vtt", "{done}");
    let heights = value(&done, "heights");
    assert!(
        heights.starts_with("180.") && heights.contains(".720.") && heights.ends_with(".180"),
        "{done}"
    );
    assert_eq!(value(&done, "stalls"), "0", "{done}");
}

#[test]
fn both_players_play_every_codec_chromium_decodes() {
    // AV1 with Opus, VP9 with FLAC, H.264 (avc3) with AAC.
    let files = ["codec_av1.mp4", "codec_vp9.mp4", "codec_avc3.mp4"];
    for (player, url) in [("hls", "master.m3u8"), ("shaka", "manifest.mpd")] {
        let sources: Vec<String> = files.iter().map(|f| format!("/{f}/{url}")).collect();
        let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
        let page = format!("{player}.html");
        let (server, _site) = server_with(&[(&page, codecs_page(player, &sources))], "");
        let done = play(&server, &page);
        assert_eq!(decoded(&done, "errors"), "", "{player}: {done}");
        for (r, file) in files.iter().enumerate() {
            let ended = decoded(&done, &format!("r{r}"));
            let at: f64 = ended
                .strip_prefix("ended@")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0.0);
            assert!(at > 3.5, "{player} {file}: {done}");
        }
    }
}

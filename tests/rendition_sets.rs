//! Rendition sets (`/…/ladder_,180,360,720,.mp4.urlset/master.m3u8`, in
//! nginx-vod-module's URL form): one adaptive presentation from a ladder of
//! files, read by ffprobe and ffmpeg over HTTP; misfit ladders refused.

mod common;

use std::process::Command;

use common::playlists::{attribute, extinfs};
use common::*;

const LADDER: &str = "/generated/ladder_,180,360,720,.mp4.urlset";

fn server() -> Server {
    ensure_fixtures();
    let media = media_folder();
    let dir = TempDir::new("sets");
    let options = options_file(
        &dir,
        &format!(
            "options.workers = 2\n\
             options.hosts[''] = {{ folder = '{}', routes = {{\n\
               {{ match = '^/films/ladder/([^?]*)(.*)$',\n\
                  rewrite = '/generated/ladder_,180,360,720,.mp4.urlset/$1$2' }} }} }}\n",
            media.display()
        ),
    );
    let server = Server::start(&["-o", options.to_str().expect("utf8")]);
    std::mem::forget(dir);
    server
}

fn url(server: &Server, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", server.port)
}

fn text(server: &Server, path: &str) -> String {
    let response = server.get(path, &[]);
    assert_eq!(response.status, 200, "{path}: {}", response.status_line);
    String::from_utf8(response.body).expect("utf8")
}

/// The streams ffprobe finds: (codec type, width × height).
fn streams(input: &str) -> Vec<(String, String)> {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,width,height",
            "-of",
            "csv=p=0",
            input,
        ])
        .output()
        .expect("ffprobe");
    assert!(
        output.status.success(),
        "{input}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let mut fields = line.split(',');
            let kind = fields.next().unwrap_or("").to_string();
            let size: Vec<&str> = fields.filter(|f| !f.is_empty()).collect();
            (kind, size.join("x"))
        })
        .collect()
}

#[test]
fn the_multivariant_playlist_lists_every_rendition_and_the_audio_group() {
    let server = server();
    let master = text(&server, &format!("{LADDER}/master.m3u8"));
    let lines: Vec<&str> = master.lines().collect();
    assert_eq!(
        &lines[..3],
        ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    );
    let media: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
        .collect();
    assert_eq!(media.len(), 2, "{master}");
    let expect = [
        ("en", "English", "YES", "index-a1.m3u8"),
        ("fr", "French", "NO", "index-a2.m3u8"),
    ];
    for (line, (language, name, default, uri)) in media.iter().zip(expect) {
        assert_eq!(attribute(line, "TYPE"), Some("AUDIO"));
        assert_eq!(attribute(line, "GROUP-ID"), Some("audio"));
        assert_eq!(attribute(line, "LANGUAGE"), Some(language), "{line}");
        assert_eq!(attribute(line, "NAME"), Some(name), "{line}");
        assert_eq!(attribute(line, "DEFAULT"), Some(default), "{line}");
        assert_eq!(attribute(line, "AUTOSELECT"), Some("YES"));
        assert_eq!(attribute(line, "CHANNELS"), Some("1"));
        assert_eq!(attribute(line, "URI"), Some(uri));
    }
    let variants: Vec<(&str, &str)> = lines
        .windows(2)
        .filter(|w| w[0].starts_with("#EXT-X-STREAM-INF:"))
        .map(|w| (w[0], w[1]))
        .collect();
    assert_eq!(variants.len(), 3, "{master}");
    let mut last_bandwidth = 0;
    for ((line, uri), (resolution, playlist)) in variants.iter().zip([
        ("320x180", "index-v1.m3u8"),
        ("640x360", "index-v2.m3u8"),
        ("1280x720", "index-v3.m3u8"),
    ]) {
        assert_eq!(attribute(line, "RESOLUTION"), Some(resolution), "{line}");
        assert_eq!(*uri, playlist);
        assert_eq!(attribute(line, "FRAME-RATE"), Some("25.000"));
        assert_eq!(attribute(line, "AUDIO"), Some("audio"));
        let codecs = attribute(line, "CODECS").expect("CODECS");
        let codecs: Vec<&str> = codecs.split(',').collect();
        assert_eq!(codecs.len(), 2, "{line}");
        assert!(codecs[0].starts_with("avc1.4d"), "{line}");
        assert_eq!(codecs[1], "mp4a.40.2");
        let bandwidth: u64 = attribute(line, "BANDWIDTH")
            .expect("BANDWIDTH")
            .parse()
            .expect("n");
        let average: u64 = attribute(line, "AVERAGE-BANDWIDTH")
            .expect("AVERAGE-BANDWIDTH")
            .parse()
            .expect("n");
        assert!(average <= bandwidth && bandwidth > last_bandwidth, "{line}");
        last_bandwidth = bandwidth;
    }
    // The renditions cut at the same instants.
    let durations: Vec<Vec<f64>> = (1..=3)
        .map(|r| extinfs(&text(&server, &format!("{LADDER}/index-v{r}.m3u8"))))
        .collect();
    assert_eq!(durations[0].len(), 2, "{durations:?}");
    for other in &durations[1..] {
        assert_eq!(other.len(), durations[0].len());
        for (a, b) in other.iter().zip(&durations[0]) {
            assert!((a - b).abs() <= 0.04, "{durations:?}");
        }
    }
    let audio = extinfs(&text(&server, &format!("{LADDER}/index-a2.m3u8")));
    assert_eq!(audio.len(), durations[0].len());
}

#[test]
fn ffmpeg_reads_and_decodes_every_rendition_of_hls_and_dash() {
    let server = server();
    for name in ["master.m3u8", "manifest.mpd"] {
        let input = url(&server, &format!("{LADDER}/{name}"));
        let found = streams(&input);
        for size in ["320x180", "640x360", "1280x720"] {
            assert!(
                found.iter().any(|(kind, s)| kind == "video" && s == size),
                "{input}: {found:?}"
            );
        }
        assert!(
            found.iter().filter(|(kind, _)| kind == "audio").count() >= 2,
            "{input}: {found:?}"
        );
        if name == "manifest.mpd" {
            let subtitles = found.iter().filter(|(kind, _)| kind == "subtitle").count();
            // (ffprobe lists the streams once per program too.)
            assert!(subtitles >= 2, "{input}: {found:?}");
        }
        // Subtitles are read (DASH's text sets), but the null muxer cannot
        // take them: every picture and sound is decoded.
        let output = Command::new("ffmpeg")
            .args([
                "-v", "error", "-nostdin", "-i", &input, "-map", "0:v", "-map", "0:a", "-f",
                "null", "-",
            ])
            .output()
            .expect("ffmpeg");
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "{input}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let probed = probe(&input).expect("probe");
        assert!(
            (probed.duration - 12.0).abs() <= 0.1,
            "{input}: {}",
            probed.duration
        );
    }
}

#[test]
fn the_manifest_has_one_video_set_with_a_representation_per_rendition() {
    let server = server();
    let mpd = text(&server, &format!("{LADDER}/manifest.mpd"));
    let sets: Vec<&str> = mpd.split("<AdaptationSet ").skip(1).collect();
    // Video, two audio languages, two subtitle files.
    assert_eq!(sets.len(), 5, "{mpd}");
    assert!(
        sets[0].contains("contentType=\"video\"") && sets[0].contains("segmentAlignment=\"true\"")
    );
    let representations: Vec<&str> = sets[0].split("<Representation ").skip(1).collect();
    assert_eq!(representations.len(), 3, "{mpd}");
    for (rep, (width, height)) in representations
        .iter()
        .zip([(320, 180), (640, 360), (1280, 720)])
    {
        assert!(
            rep.contains(&format!("width=\"{width}\" height=\"{height}\"")),
            "{rep}"
        );
        assert!(rep.contains("frameRate=\"25\""), "{rep}");
        assert!(rep.contains("codecs=\"avc1.4d"), "{rep}");
        assert!(rep.contains("bandwidth=\""), "{rep}");
    }
    assert!(
        sets[1].contains("contentType=\"audio\"") && sets[1].contains("lang=\"en\""),
        "{mpd}"
    );
    assert!(sets[2].contains("lang=\"fr\""), "{mpd}");
}

#[test]
fn misfit_ladders_and_bad_set_urls_get_clear_refusals() {
    let server = server();
    for (path, status, says) in [
        (
            "/generated/ladder_,180,misaligned,.mp4.urlset/master.m3u8",
            409,
            "ladder_misaligned.mp4 has no keyframe at",
        ),
        (
            "/generated/ladder_,360,long,.mp4.urlset/index-v1.m3u8",
            409,
            "ladder_long.mp4 lasts",
        ),
        (
            "/generated/ladder_,180,999,.mp4.urlset/master.m3u8",
            404,
            "ladder_999.mp4",
        ),
        (
            "/generated/,ladder_180.mp4,bad-stco.mp4,.urlset/master.m3u8",
            500,
            "bad-stco.mp4",
        ),
        (
            "/generated/,ladder_180.mp4,vbr60.flv,.urlset/master.m3u8",
            404,
            "vbr60.flv",
        ),
        ("/generated/ladder_180.mp4.urlset/master.m3u8", 400, ""),
        (
            "/generated/ladder_,180,,360,.mp4.urlset/master.m3u8",
            400,
            "",
        ),
        ("/generated/ladder_,180,360,.mp4.urlset/other.m3u8", 400, ""),
        (
            "/generated/ladder_,180,360,.mp4.urlset/index-v3.m3u8",
            404,
            "",
        ),
        (
            "/generated/ladder_,180,360,.mp4.urlset/index-a3.m3u8",
            404,
            "",
        ),
        (
            "/generated/ladder_,180,360,.mp4.urlset/seg-v1-2.m4s",
            404,
            "",
        ),
        (
            "/generated/ladder_,180,360,.mp4.urlset/master.m3u8?start=100",
            400,
            "",
        ),
    ] {
        let response = server.get(path, &[]);
        assert_eq!(response.status, status, "{path}: {}", response.status_line);
        let body = String::from_utf8_lossy(&response.body);
        assert!(body.contains(says), "{path}: {body}");
    }
    // A component that leaves the folder is refused as the same path alone is.
    let alone = server
        .get("/generated/ladder_/../../../etc/passwd.mp4", &[])
        .status;
    let in_set = server
        .get(
            "/generated/ladder_,180,/../../../etc/passwd,.mp4.urlset/master.m3u8",
            &[],
        )
        .status;
    assert!(matches!(in_set, 400 | 403 | 404), "{in_set}");
    assert_eq!(in_set, alone);
    // A set of one file is a presentation too.
    let one = "/generated/ladder_,360,.mp4.urlset/master.m3u8";
    assert_eq!(server.get(one, &[]).status, 200);
    // Nothing crashed: the ladder still plays.
    assert_eq!(
        server.get(&format!("{LADDER}/master.m3u8"), &[]).status,
        200
    );
}

#[test]
fn segments_are_the_renditions_own_and_take_ranges_and_validators() {
    let server = server();
    for (part, kind) in [
        ("init-v2.mp4", "video/mp4"),
        ("init-a1.mp4", "audio/mp4"),
        ("seg-v3-1.m4s", "video/iso.segment"),
        ("seg-a2-0.m4s", "video/iso.segment"),
    ] {
        let path = format!("{LADDER}/{part}");
        let whole = server.get(&path, &[]);
        assert_eq!(whole.status, 200, "{path}");
        assert_eq!(whole.header("content-type"), Some(kind), "{path}");
        let etag = whole.header("etag").expect("an ETag");
        let conditional = format!("If-None-Match: {etag}");
        assert_eq!(server.get(&path, &[conditional.as_str()]).status, 304);
        let part = server.get(&path, &["Range: bytes=10-99"]);
        assert_eq!(part.status, 206);
        assert_eq!(part.body, whole.body[10..100]);
    }
    // Each video segment holds one track: its rendition's picture size
    // decodes from its own init segment.
    let init = server.get(&format!("{LADDER}/init-v3.mp4"), &[]).body;
    let segment = server.get(&format!("{LADDER}/seg-v3-0.m4s"), &[]).body;
    let dir = TempDir::new("sets-segment");
    let file = dir.path().join("v3.mp4");
    std::fs::write(&file, [init, segment].concat()).expect("write");
    let found = streams(file.to_str().expect("utf8"));
    assert_eq!(found, [("video".to_string(), "1280x720".to_string())]);
}

#[test]
fn routes_rewrite_friendly_urls_to_a_set_and_clips_travel_into_every_uri() {
    let server = server();
    let master = text(&server, "/films/ladder/master.m3u8?start=6");
    assert!(master.contains("index-v1.m3u8?start=6"), "{master}");
    let playlist = text(&server, "/films/ladder/index-v2.m3u8?start=6");
    assert_eq!(extinfs(&playlist).len(), 1, "{playlist}");
    assert!(playlist.contains("seg-v2-0.m4s?start=6"), "{playlist}");
    assert_eq!(
        server.get("/films/ladder/seg-v2-0.m4s?start=6", &[]).status,
        200
    );
}

#[test]
fn a_signed_link_to_the_set_admits_its_parts_and_the_monitor_counts_them() {
    ensure_fixtures();
    let dir = TempDir::new("sets-signed");
    let admin = free_port();
    let options = options_file(
        &dir,
        &format!(
            "options.workers = 1\n\
             options.hosts[''] = {{ folder = '{}', secret = 'a-secret-of-the-cms-0123456789' }}\n",
            media_folder().display()
        ),
    );
    let config = options.to_str().expect("utf8");
    let server = Server::start(&["-o", config, "-r", &admin.to_string()]);
    let output = Command::new(BINARY)
        .args(["-o", config, "--sign", LADDER, "--expires", "600"])
        .output()
        .expect("--sign");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let link = String::from_utf8(output.stdout).expect("utf8");
    let (_, query) = link.trim().split_once('?').expect("a query");
    let master = server.get(&format!("{LADDER}/master.m3u8?{query}"), &[]);
    assert_eq!(master.status, 200, "{}", master.status_line);
    let master = String::from_utf8(master.body).expect("utf8");
    assert!(
        master.contains(&format!("index-v1.m3u8?{query}")),
        "{master}"
    );
    assert_eq!(
        server
            .get(&format!("{LADDER}/seg-v1-0.m4s?{query}"), &[])
            .status,
        200
    );
    assert_eq!(
        server
            .get(&format!("{LADDER}/init-a1.mp4?{query}"), &[])
            .status,
        200
    );
    assert_eq!(
        server.get(&format!("{LADDER}/seg-v1-0.m4s"), &[]).status,
        403
    );
    // The token is the set's: it opens neither another set nor a file of it.
    let other = "/generated/ladder_,180,360,.mp4.urlset/master.m3u8";
    assert_eq!(server.get(&format!("{other}?{query}"), &[]).status, 403);
    assert_eq!(
        server
            .get(&format!("/generated/ladder_180.mp4?{query}"), &[])
            .status,
        403
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    let json = admin_get(admin, "/monitor?format=json");
    assert_eq!(
        json_number(&json, "packaging:sets:playlists"),
        1.0,
        "{json}"
    );
    assert_eq!(json_number(&json, "packaging:sets:inits"), 1.0, "{json}");
    assert_eq!(json_number(&json, "packaging:sets:segments"), 1.0, "{json}");
    let metrics = admin_get(admin, "/metrics");
    assert!(
        metrics.contains("loomiere_packaged_set_responses_total{kind=\"segment\"} 1"),
        "{metrics}"
    );
}

#[test]
fn sidecar_subtitles_become_renditions_of_sets_and_files() {
    let server = server();
    for master_path in [
        format!("{LADDER}/master.m3u8"),
        "/generated/ladder_180.mp4/master.m3u8".to_string(),
    ] {
        let master = text(&server, &master_path);
        let subtitles: Vec<&str> = master
            .lines()
            .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=SUBTITLES"))
            .collect();
        assert_eq!(subtitles.len(), 2, "{master}");
        for (line, (language, name, uri)) in subtitles.iter().zip([
            ("en", "English", "index-s1.m3u8"),
            ("fr", "French", "index-s2.m3u8"),
        ]) {
            assert_eq!(attribute(line, "GROUP-ID"), Some("subs"));
            assert_eq!(attribute(line, "LANGUAGE"), Some(language), "{line}");
            assert_eq!(attribute(line, "NAME"), Some(name), "{line}");
            assert_eq!(attribute(line, "DEFAULT"), Some("NO"), "{line}");
            assert_eq!(attribute(line, "URI"), Some(uri), "{line}");
        }
        for variant in master
            .lines()
            .filter(|l| l.starts_with("#EXT-X-STREAM-INF:"))
        {
            assert_eq!(attribute(variant, "SUBTITLES"), Some("subs"), "{variant}");
        }
        assert!(!master.contains("\"de\""), "{master}");
    }
    // The file that is not subtitles is left out, and the log says where
    // (the worker's stderr reaches the harness a moment after the answer).
    server.wait_for_log(
        "ladder_180.de.srt: line 1:",
        std::time::Duration::from_secs(5),
    );
    let logged = server
        .log_line("ladder_180.de.srt: line 1:")
        .expect("a log line for the broken subtitle file");
    assert!(logged.contains("left out of the presentation"), "{logged}");

    let playlist = text(&server, &format!("{LADDER}/index-s2.m3u8"));
    assert_eq!(extinfs(&playlist).len(), 1, "{playlist}");
    assert!((extinfs(&playlist)[0] - 12.0).abs() < 0.1, "{playlist}");
    assert!(playlist.contains("\nsub-s2.vtt\n"), "{playlist}");
    let vtt = server.get(&format!("{LADDER}/sub-s2.vtt"), &[]);
    assert_eq!(vtt.status, 200);
    assert_eq!(vtt.header("content-type"), Some("text/vtt"));
    let vtt = String::from_utf8(vtt.body).expect("utf8");
    assert!(
        vtt.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n"),
        "{vtt}"
    );
    assert!(
        vtt.contains("00:00:07.000 --> 00:00:10.500\nDeuxième réplique\n"),
        "{vtt}"
    );
    assert!(vtt.contains("Bonjour <i>tout le monde</i>"), "{vtt}");
    let english = text(&server, "/generated/ladder_180.mp4/sub-s1.vtt");
    assert!(
        english.contains("00:00:00.500 --> 00:00:04.000\nHello from the ladder"),
        "{english}"
    );
    assert_eq!(server.get(&format!("{LADDER}/sub-s3.vtt"), &[]).status, 404);
    assert_eq!(
        server.get(&format!("{LADDER}/index-s3.m3u8"), &[]).status,
        404
    );

    let mpd = text(&server, &format!("{LADDER}/manifest.mpd"));
    let texts: Vec<&str> = mpd
        .split("<AdaptationSet ")
        .filter(|set| set.contains("mimeType=\"text/vtt\""))
        .collect();
    assert_eq!(texts.len(), 2, "{mpd}");
    assert!(
        texts[0].contains("lang=\"en\"") && texts[0].contains("<BaseURL>sub-s1.vtt</BaseURL>"),
        "{mpd}"
    );
    assert!(texts[1].contains("lang=\"fr\""), "{mpd}");
}

#[test]
fn a_host_names_the_default_subtitle_language_and_overrides_names() {
    ensure_fixtures();
    let dir = TempDir::new("sets-subtitles");
    let options = options_file(
        &dir,
        &format!(
            "options.workers = 1\n\
             options.hosts[''] = {{ folder = '{}', subtitle_default = 'fr',\n\
               subtitle_names = {{ fr = 'Français' }} }}\n",
            media_folder().display()
        ),
    );
    let server = Server::start(&["-o", options.to_str().expect("utf8")]);
    let master = text(&server, &format!("{LADDER}/master.m3u8"));
    let french = master
        .lines()
        .find(|l| l.starts_with("#EXT-X-MEDIA:TYPE=SUBTITLES") && l.contains("LANGUAGE=\"fr\""))
        .expect("French subtitles");
    assert_eq!(attribute(french, "DEFAULT"), Some("YES"), "{master}");
    assert_eq!(attribute(french, "NAME"), Some("Français"), "{master}");
    let english = master
        .lines()
        .find(|l| l.starts_with("#EXT-X-MEDIA:TYPE=SUBTITLES") && l.contains("LANGUAGE=\"en\""))
        .expect("English subtitles");
    assert_eq!(attribute(english, "DEFAULT"), Some("NO"));
}

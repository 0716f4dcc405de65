//! HLS and DASH packaged on the fly from MP4 files: ffmpeg and ffprobe read
//! the playlists and manifests over HTTP, segments are checked box by box
//! against the playlists and the original file.

mod common;

use std::process::Command;

use common::*;

fn server() -> Server {
    ensure_fixtures();
    let media = media_folder();
    let dir = TempDir::new("packaging");
    let options = options_file(
        &dir,
        &format!(
            "options.workers = 2\n\
             options.hosts['^cors$'] = {{ folder = '{}', cors = '*', segment_seconds = 4,\n\
             expires = {{ ['application/*'] = 60, ['video/*'] = 3600 }} }}\n\
             options.hosts[''] = {{ folder = '{}' }}\n",
            media.display(),
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

/// Decodes every stream of `input` with ffmpeg; Ok when it reports nothing.
fn decode_all(input: &str) -> Result<(), String> {
    common::decode_every_stream(input, &[])
}

fn text(server: &Server, path: &str) -> String {
    let response = server.get(path, &[]);
    assert_eq!(response.status, 200, "{path}: {}", response.status_line);
    String::from_utf8(response.body).expect("utf8")
}

/// The EXTINF durations of a media playlist, with their URIs.
fn extinfs(playlist: &str) -> Vec<(f64, String)> {
    let lines: Vec<&str> = playlist.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| {
            let seconds = line.strip_prefix("#EXTINF:")?.trim_end_matches(',');
            Some((seconds.parse().expect("EXTINF"), lines[i + 1].to_string()))
        })
        .collect()
}

/// A box: (kind, payload).
fn boxes(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= data.len() {
        let mut size = u32::from_be_bytes(data[at..at + 4].try_into().expect("4")) as usize;
        let mut header = 8;
        if size == 1 {
            size = u64::from_be_bytes(data[at + 8..at + 16].try_into().expect("8")) as usize;
            header = 16;
        }
        assert!(
            size >= header && at + size <= data.len(),
            "box at {at} overruns"
        );
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().expect("4");
        out.push((kind, &data[at + header..at + size]));
        at += size;
    }
    assert_eq!(at, data.len(), "boxes do not add up");
    out
}

fn child<'a>(payload: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(payload)
        .into_iter()
        .find(|(k, _)| k == kind)
        .map(|(_, p)| p)
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4"))
}

/// Track id → timescale, from an init segment.
fn timescales(init: &[u8]) -> Vec<(u32, u32)> {
    let moov = child(init, b"moov").expect("moov");
    boxes(moov)
        .into_iter()
        .filter(|(k, _)| k == b"trak")
        .map(|(_, trak)| {
            let tkhd = child(trak, b"tkhd").expect("tkhd");
            let id = if tkhd[0] == 1 {
                be32(tkhd, 20)
            } else {
                be32(tkhd, 12)
            };
            let mdhd = child(child(trak, b"mdia").expect("mdia"), b"mdhd").expect("mdhd");
            let scale = if mdhd[0] == 1 {
                be32(mdhd, 20)
            } else {
                be32(mdhd, 12)
            };
            (id, scale)
        })
        .collect()
}

/// One traf of a segment: track id, tfdt, summed sample durations, first
/// sample's flags, sample count.
#[derive(Debug)]
struct Traf {
    id: u32,
    decode_time: u64,
    duration: u64,
    first_flags: u32,
    samples: u32,
}

/// The trafs of a media segment; checks every trun's data lies inside the mdat.
fn trafs(segment: &[u8]) -> Vec<Traf> {
    let top = boxes(segment);
    assert_eq!(&top[0].0, b"styp");
    let moof_at = 8 + top[0].1.len();
    let (_, moof) = top.iter().find(|(k, _)| k == b"moof").expect("moof");
    let (_, mdat) = top.iter().find(|(k, _)| k == b"mdat").expect("mdat");
    let mdat_start = segment.len() - mdat.len() - moof_at;
    let mut found = Vec::new();
    for (kind, traf) in boxes(moof) {
        if &kind != b"traf" {
            continue;
        }
        let tfhd = child(traf, b"tfhd").expect("tfhd");
        let tfdt = child(traf, b"tfdt").expect("tfdt");
        let mut result = Traf {
            id: be32(tfhd, 4),
            decode_time: if tfdt[0] == 1 {
                u64::from_be_bytes(tfdt[4..12].try_into().expect("8"))
            } else {
                u64::from(be32(tfdt, 4))
            },
            duration: 0,
            first_flags: u32::MAX,
            samples: 0,
        };
        for (kind, trun) in boxes(traf) {
            if &kind != b"trun" {
                continue;
            }
            let flags = be32(trun, 0) & 0xff_ffff;
            assert_eq!(
                flags & 0x0701,
                0x0701,
                "data offset, duration, size and flags per sample"
            );
            let count = be32(trun, 4);
            let offset = be32(trun, 8) as usize;
            let per_sample = if flags & 0x800 != 0 { 16 } else { 12 };
            let mut bytes = 0usize;
            for i in 0..count as usize {
                let at = 12 + i * per_sample;
                result.duration += u64::from(be32(trun, at));
                bytes += be32(trun, at + 4) as usize;
                if result.first_flags == u32::MAX {
                    result.first_flags = be32(trun, at + 8);
                }
            }
            assert!(
                offset >= mdat_start && offset + bytes <= mdat_start + mdat.len(),
                "trun data outside the mdat"
            );
            result.samples += count;
        }
        found.push(result);
    }
    found
}

#[test]
fn hls_and_dash_decode_cleanly_and_last_as_long_as_the_file() {
    let server = server();
    for (file, streams) in [
        ("generated/vbr60.mp4", 2),
        ("generated/vbr60-moov-at-end.mp4", 2),
        ("sample.mp4", 2),
        ("generated/v10a20.mp4", 2),
        ("generated/audio.m4a", 1),
        ("generated/two-audio.mp4", 3),
    ] {
        let original = probe(media_folder().join(file).to_str().expect("utf8")).expect("probe");
        for name in ["master.m3u8", "manifest.mpd"] {
            let input = url(&server, &format!("/{file}/{name}"));
            decode_all(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            let packaged = probe(&input).expect("probe packaged");
            let kinds: Vec<&str> = packaged
                .streams
                .iter()
                .map(|s| s.0.as_str())
                .filter(|k| *k == "video" || *k == "audio")
                .collect();
            // ffprobe lists the HLS and DASH streams once per program too.
            assert!(kinds.len() >= streams, "{input}: {kinds:?}");
            // Within one video frame (40 ms) and one audio frame (23 ms).
            assert!(
                (packaged.duration - original.duration).abs() <= 0.064,
                "{input}: {} s, the file {} s",
                packaged.duration,
                original.duration
            );
        }
    }
}

#[test]
fn extinfs_are_the_segments_durations_and_segments_start_on_synchronised_keyframes() {
    let server = server();
    let base = "/generated/vbr60.mp4";
    let playlist = text(&server, &format!("{base}/index.m3u8"));
    assert!(
        playlist.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n"),
        "{playlist}"
    );
    for tag in [
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "#EXT-X-MAP:URI=\"init.mp4\"",
        "#EXT-X-TARGETDURATION:6",
        "#EXT-X-ENDLIST",
    ] {
        assert!(playlist.contains(tag), "{tag} missing:\n{playlist}");
    }
    let init = server.get(&format!("{base}/init.mp4"), &[]).body;
    let scales = timescales(&init);
    assert_eq!(scales.len(), 2);
    let scale_of = |id: u32| scales.iter().find(|(i, _)| *i == id).expect("track").1;
    let segments = extinfs(&playlist);
    assert_eq!(segments.len(), 11, "64 s in 6 s segments");
    let mut total = 0.0;
    for (n, (extinf, uri)) in segments.iter().enumerate() {
        assert_eq!(uri, &format!("seg-{n}.m4s"));
        let segment = server.get(&format!("{base}/{uri}"), &[]);
        assert_eq!(segment.status, 200);
        assert_eq!(segment.header("Content-Type"), Some("video/iso.segment"));
        let trafs = trafs(&segment.body);
        assert_eq!(trafs.len(), 2, "video and audio in one segment");
        let (video, audio) = (&trafs[0], &trafs[1]);
        let video_seconds = video.duration as f64 / f64::from(scale_of(video.id));
        assert!(
            (video_seconds - extinf).abs() < 1e-6 || n == segments.len() - 1,
            "segment {n}: EXTINF {extinf}, video {video_seconds}"
        );
        assert_eq!(
            video.first_flags & 0x0001_0000,
            0,
            "segment {n} starts on a sync sample"
        );
        assert_eq!(
            video.first_flags >> 24 & 3,
            2,
            "segment {n}'s first frame depends on none"
        );
        // The original's timestamps: keyframes every second at 25 fps, cut every 6 s.
        assert_eq!(
            video.decode_time,
            n as u64 * 6 * u64::from(scale_of(video.id))
        );
        let video_start = video.decode_time as f64 / f64::from(scale_of(video.id));
        let audio_start = audio.decode_time as f64 / f64::from(scale_of(audio.id));
        assert!(
            audio_start >= video_start && audio_start - video_start < 1024.0 / 44100.0 + 1e-9,
            "segment {n}: video at {video_start} s, audio at {audio_start} s"
        );
        // ffprobe agrees the first video packet is a keyframe.
        let dir = TempDir::new("segment");
        let mut file = init.clone();
        file.extend_from_slice(&segment.body);
        let path = dir.write("s.mp4", &file);
        let output = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v",
                "-show_entries",
                "packet=flags",
                "-of",
                "csv=p=0",
            ])
            .arg(&path)
            .output()
            .expect("ffprobe");
        let flags = String::from_utf8_lossy(&output.stdout);
        assert!(
            flags.lines().next().is_some_and(|f| f.starts_with('K')),
            "segment {n}: {flags}"
        );
        total += extinf;
    }
    assert!((total - 64.0).abs() < 0.05, "{total}");
}

/// One trun's samples: track id, decode time of the first, and each
/// sample's offset in the segment and size.
struct TrunSamples {
    id: u32,
    time: u64,
    spans: Vec<(usize, usize)>,
}

fn sample_spans(segment: &[u8]) -> Vec<TrunSamples> {
    let top = boxes(segment);
    let moof_at = 8 + top[0].1.len();
    let (_, moof) = top.iter().find(|(k, _)| k == b"moof").expect("moof");
    let mut found = Vec::new();
    for (kind, traf) in boxes(moof) {
        if &kind != b"traf" {
            continue;
        }
        let id = be32(child(traf, b"tfhd").expect("tfhd"), 4);
        let tfdt = child(traf, b"tfdt").expect("tfdt");
        let mut time = u64::from_be_bytes(tfdt[4..12].try_into().expect("8"));
        for (kind, trun) in boxes(traf) {
            if &kind != b"trun" {
                continue;
            }
            let per_sample = if be32(trun, 0) & 0x800 != 0 { 16 } else { 12 };
            let mut at = moof_at + be32(trun, 8) as usize;
            let mut spans = Vec::new();
            let first_time = time;
            for i in 0..be32(trun, 4) as usize {
                let size = be32(trun, 12 + i * per_sample + 4) as usize;
                time += u64::from(be32(trun, 12 + i * per_sample));
                spans.push((at, size));
                at += size;
            }
            found.push(TrunSamples {
                id,
                time: first_time,
                spans,
            });
        }
    }
    found
}

#[test]
fn every_segment_sample_is_the_films_own_bytes() {
    use loomiere::media::{FileSource, mp4};
    let server = server();
    for file in ["generated/vbr60.mp4", "generated/vbr60-moov-at-end.mp4"] {
        let original = std::fs::read(media_folder().join(file)).expect("film");
        let handle = std::fs::File::open(media_folder().join(file)).expect("open");
        let index = mp4::index(&FileSource {
            file: &handle,
            size: original.len() as u64,
            name: "test",
        })
        .expect("index");
        let base = format!("/{file}");
        let playlist = text(&server, &format!("{base}/index.m3u8"));
        let (mut samples, mut mdat_bytes, mut sample_bytes) = (0usize, 0usize, 0usize);
        for (n, (_, uri)) in extinfs(&playlist).iter().enumerate() {
            let segment = server.get(&format!("{base}/{uri}"), &[]).body;
            let top = boxes(&segment);
            mdat_bytes += top
                .iter()
                .find(|(k, _)| k == b"mdat")
                .expect("mdat")
                .1
                .len();
            for TrunSamples { id, time, spans } in sample_spans(&segment) {
                let track = index.tracks.iter().find(|t| t.id == id).expect("track");
                let first = track.sample_from(time);
                assert_eq!(
                    track.time_of(first),
                    time,
                    "{file} segment {n}: a sample starts at {time}"
                );
                for (i, &(at, size)) in spans.iter().enumerate() {
                    let s = first + i as u64;
                    let from = track.offset_of(s) as usize;
                    assert_eq!(
                        size as u64,
                        track.size_of(s),
                        "{file} segment {n}: size of sample {s}"
                    );
                    assert!(
                        segment[at..at + size] == original[from..from + size],
                        "{file} segment {n}: track {id} sample {s} is not the film's"
                    );
                    samples += 1;
                    sample_bytes += size;
                }
            }
        }
        let all: u64 = index.tracks.iter().map(|t| t.sample_count).sum();
        assert_eq!(samples as u64, all, "{file}: every sample once");
        // Small gaps between a segment's ranges travel as unreferenced bytes
        // (fewer sendfile calls); they stay a sliver of what is sent.
        assert!(mdat_bytes >= sample_bytes, "{file}");
        assert!(
            (mdat_bytes - sample_bytes) * 100 < sample_bytes,
            "{file}: {mdat_bytes} bytes in the mdats for {sample_bytes} of samples"
        );
    }
}

#[test]
fn two_audio_tracks_become_renditions_with_their_languages() {
    let server = server();
    let base = "/generated/two-audio.mp4";
    let master = text(&server, &format!("{base}/master.m3u8"));
    assert!(master.contains("LANGUAGE=\"eng\""), "{master}");
    assert!(master.contains("LANGUAGE=\"fra\""), "{master}");
    assert!(master.contains("URI=\"audio-1.m3u8\""), "{master}");
    assert!(master.contains("AUDIO=\"audio\""), "{master}");
    assert!(
        master.contains("CODECS=\"avc1.4d400c,mp4a.40.2\""),
        "{master}"
    );
    assert!(master.contains("RESOLUTION=160x90"), "{master}");
    let rendition = text(&server, &format!("{base}/audio-1.m3u8"));
    assert!(
        rendition.contains("#EXT-X-MAP:URI=\"init-a1.mp4\""),
        "{rendition}"
    );
    assert!(rendition.contains("seg-a1-0.m4s"), "{rendition}");
    decode_all(&url(&server, &format!("{base}/audio-1.m3u8"))).expect("French decodes");
    let probe = probe(&url(&server, &format!("{base}/manifest.mpd"))).expect("probe");
    let audio = probe.streams.iter().filter(|s| s.0 == "audio").count();
    assert!(audio >= 2, "{:?}", probe.streams);
    let mpd = text(&server, &format!("{base}/manifest.mpd"));
    assert!(
        mpd.contains("lang=\"fra\"") && mpd.contains("lang=\"eng\""),
        "{mpd}"
    );
    assert_eq!(server.get(&format!("{base}/audio-2.m3u8"), &[]).status, 404);
    assert_eq!(server.get(&format!("{base}/seg-a2-0.m4s"), &[]).status, 404);
}

#[test]
fn start_and_stop_clip_the_presentation_and_travel_into_every_uri() {
    let server = server();
    let base = "/generated/vbr60.mp4";
    let master = text(&server, &format!("{base}/master.m3u8?start=10&stop=30"));
    assert!(master.contains("index.m3u8?start=10&stop=30"), "{master}");
    let playlist = text(&server, &format!("{base}/index.m3u8?start=10&stop=30"));
    assert!(playlist.contains("init.mp4?start=10&stop=30"), "{playlist}");
    let segments = extinfs(&playlist);
    assert!(
        segments
            .iter()
            .all(|(_, uri)| uri.ends_with("?start=10&stop=30"))
    );
    let total: f64 = segments.iter().map(|(d, _)| d).sum();
    assert!((total - 20.0).abs() < 0.05, "{total}");
    let input = url(&server, &format!("{base}/master.m3u8?start=10&stop=30"));
    decode_all(&input).expect("decodes");
    let clipped = probe(&input).expect("probe");
    assert!(
        (clipped.duration - 20.0).abs() < 0.1,
        "{}",
        clipped.duration
    );
    let mpd = url(&server, &format!("{base}/manifest.mpd?start=10&stop=30"));
    decode_all(&mpd).expect("DASH decodes");
}

#[test]
fn bad_requests_and_files_get_clear_answers() {
    let server = server();
    for (path, status) in [
        ("/generated/frag_encrypted.mp4/master.m3u8", 501),
        ("/generated/bad-stco.mp4/index.m3u8", 500),
        ("/generated/vbr60.mp4/seg-11.m4s", 404),
        ("/generated/vbr60.mp4/seg-a1-0.m4s", 404),
        ("/generated/audio.m4a/init-v.mp4", 404),
        ("/generated/vbr60.mp4/index.m3u8?start=abc", 400),
        ("/generated/vbr60.mp4/index.m3u8?start=100", 400),
        ("/generated/vbr60.mp4/index.m3u8?start=10&units=bytes", 400),
        ("/generated/missing.mp4/index.m3u8", 404),
        ("/generated/vbr60.flv/index.m3u8", 404),
        ("/generated/vbr60.mp4/other.m3u8", 404),
    ] {
        let response = server.get(path, &[]);
        assert_eq!(response.status, status, "{path}: {}", response.status_line);
    }
    assert!(server.wait_for_log("bad-stco.mp4", std::time::Duration::from_secs(5)));
    // The worker lives on.
    assert_eq!(
        server.get("/generated/vbr60.mp4/seg-0.m4s", &[]).status,
        200
    );
}

#[test]
fn ranges_and_validators_work_on_segments_and_playlists() {
    let server = server();
    let base = "/generated/vbr60.mp4";
    for name in ["seg-2.m4s", "index.m3u8", "init.mp4", "manifest.mpd"] {
        let path = format!("{base}/{name}");
        let whole = server.get(&path, &[]);
        assert_eq!(whole.status, 200);
        let etag = whole.header("ETag").expect("ETag").to_string();
        let part = server.get(&path, &["Range: bytes=100-199"]);
        assert_eq!(part.status, 206, "{name}");
        assert_eq!(part.body, whole.body[100..200], "{name}");
        let again = server.get(&path, &[&format!("If-None-Match: {etag}")]);
        assert_eq!(again.status, 304, "{name}");
    }
    let a = server.get(&format!("{base}/seg-1.m4s"), &[]);
    let b = server.get(&format!("{base}/seg-2.m4s"), &[]);
    assert_ne!(a.header("ETag"), b.header("ETag"));
    // HEAD gives the length without the body.
    let head = server.request("HEAD", &format!("{base}/seg-2.m4s"), &[]);
    assert_eq!(
        head.header("Content-Length").map(str::to_string),
        b.header("Content-Length").map(str::to_string)
    );
}

#[test]
fn cors_caching_headers_and_the_hosts_segment_length_apply() {
    let server = server();
    let get = |path: &str| {
        get_from(
            server.port,
            "127.0.0.1",
            "cors",
            path,
            &["Origin: https://player.example"],
        )
    };
    let playlist = get("/generated/vbr60.mp4/index.m3u8");
    assert_eq!(playlist.status, 200);
    assert_eq!(playlist.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(
        playlist.header("Content-Type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert!(
        playlist
            .header("Cache-Control")
            .is_some_and(|v| v.contains("max-age=60"))
    );
    let text = String::from_utf8(playlist.body).expect("utf8");
    assert!(text.contains("#EXT-X-TARGETDURATION:4"), "{text}");
    let segment = get("/generated/vbr60.mp4/seg-0.m4s");
    assert_eq!(segment.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(
        segment
            .header("Cache-Control")
            .is_some_and(|v| v.contains("max-age=3600"))
    );
    let mpd = get("/generated/vbr60.mp4/manifest.mpd");
    assert_eq!(mpd.header("Content-Type"), Some("application/dash+xml"));
}

#[test]
fn a_signed_link_to_the_film_admits_its_playlists_and_segments() {
    ensure_fixtures();
    let dir = TempDir::new("packaging-signed");
    let options = options_file(
        &dir,
        &format!(
            "options.workers = 1\n\
             options.hosts['^signed$'] = {{ folder = '{}', secret = 'a-secret-of-the-cms-0123456789' }}\n",
            media_folder().display()
        ),
    );
    let server = Server::start(&["-o", options.to_str().expect("utf8")]);
    let output = Command::new(BINARY)
        .args([
            "-o",
            options.to_str().expect("utf8"),
            "--sign",
            "/generated/vbr60.mp4",
        ])
        .args(["--expires", "600", "--host", "signed"])
        .output()
        .expect("--sign");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let link = String::from_utf8(output.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    let (_, query) = link.split_once('?').expect("a query");
    let get = |target: &str| get_from(server.port, "127.0.0.1", "signed", target, &[]);
    let master = get(&format!("/generated/vbr60.mp4/master.m3u8?{query}"));
    assert_eq!(master.status, 200, "{}", master.status_line);
    let text = String::from_utf8(master.body).expect("utf8");
    assert!(text.contains(&format!("index.m3u8?{query}")), "{text}");
    let playlist = get(&format!("/generated/vbr60.mp4/index.m3u8?{query}"));
    let text = String::from_utf8(playlist.body).expect("utf8");
    let (_, first) = extinfs(&text)[0].clone();
    assert_eq!(get(&format!("/generated/vbr60.mp4/{first}")).status, 200);
    assert_eq!(get("/generated/vbr60.mp4/seg-0.m4s").status, 403);
    // The token is the film's: it does not open another film's segments.
    assert_eq!(get(&format!("/sample.mp4/seg-0.m4s?{query}")).status, 403);
}

#[test]
fn the_monitor_counts_packaged_answers_and_their_bytes_by_kind() {
    ensure_fixtures();
    let dir = TempDir::new("packaging-monitor");
    let admin = free_port();
    let options = options_file(
        &dir,
        &format!(
            "options.workers = 1\noptions.hosts[''] = {{ folder = '{}' }}\n",
            media_folder().display()
        ),
    );
    let server = Server::start(&[
        "-o",
        options.to_str().expect("utf8"),
        "-r",
        &admin.to_string(),
    ]);
    let base = "/generated/vbr60.mp4";
    let master = server.get(&format!("{base}/master.m3u8"), &[]).body.len();
    let index = server.get(&format!("{base}/index.m3u8"), &[]).body.len();
    let init = server.get(&format!("{base}/init.mp4"), &[]).body.len();
    let segments: usize = (0..3)
        .map(|n| server.get(&format!("{base}/seg-{n}.m4s"), &[]).body.len())
        .sum();
    // The counters are written after each answer; the monitor reads them at once.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let json = admin_get(admin, "/monitor?format=json");
    assert_eq!(json_number(&json, "packaging:playlists"), 2.0, "{json}");
    assert_eq!(json_number(&json, "packaging:inits"), 1.0);
    assert_eq!(json_number(&json, "packaging:segments"), 3.0);
    assert_eq!(
        json_number(&json, "packaging:playlists:bytes"),
        (master + index) as f64
    );
    assert_eq!(json_number(&json, "packaging:inits:bytes"), init as f64);
    assert_eq!(
        json_number(&json, "packaging:segments:bytes"),
        segments as f64
    );
    let metrics = admin_get(admin, "/metrics");
    assert!(
        metrics.contains("loomiere_packaged_responses_total{kind=\"segment\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "loomiere_packaged_sent_bytes_total{{kind=\"segment\"}} {segments}"
    )));
}

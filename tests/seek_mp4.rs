//! Seeking into MP4: nginx's test cases adapted to the keyframe rule, exact
//! mode, every track kept, damaged and unseekable files, Range, HEAD, ETag.

mod common;

use common::{Server, TempDir, decode_cleanly, ensure_fixtures, media_folder, options_file, probe};

fn server() -> Server {
    ensure_fixtures();
    Server::start(&["-f", media_folder().to_str().expect("utf8"), "-w", "2"])
}

fn url(server: &Server, path: &str) -> String {
    format!("http://127.0.0.1:{}/{path}", server.port)
}

fn close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 0.05,
        "{what}: {actual} is not {expected}"
    );
}

#[test]
fn nginx_cases_snap_to_the_keyframe() {
    let server = server();
    // 10 s video and 20 s audio, a keyframe every second.
    let p = probe(&url(&server, "generated/v10a20.mp4?start=2")).expect("probe");
    close(
        p.stream("video").expect("video").1,
        8.0,
        "video after start=2",
    );
    close(
        p.stream("audio").expect("audio").1,
        18.0,
        "audio after start=2",
    );
    close(
        probe(&url(&server, "generated/v10a20.mp4?start=6&end=9"))
            .expect("probe")
            .duration,
        3.0,
        "start=6&end=9",
    );
    let p = probe(&url(&server, "generated/v10a20.mp4?end=9")).expect("probe");
    close(p.stream("video").expect("video").1, 9.0, "end=9");
    // start between keyframes snaps back: start=2.5 begins at 2.0.
    let p = probe(&url(&server, "generated/v10a20.mp4?start=2.5")).expect("probe");
    close(
        p.stream("video").expect("video").1,
        8.0,
        "start=2.5 snaps to 2.0",
    );
    for query in [
        "end=11",
        "end=21",
        "start=11",
        "start=2",
        "start=6&end=9",
        "start=0.5&stop=1.5",
    ] {
        let target = url(&server, &format!("generated/v10a20.mp4?{query}"));
        let response = server.get(&format!("/generated/v10a20.mp4?{query}"), &[]);
        assert_eq!(response.status, 200, "{query}");
        decode_cleanly(&target).unwrap_or_else(|e| panic!("{query} does not decode: {e}"));
    }
    let past = server.get("/generated/v10a20.mp4?start=21", &[]);
    assert_eq!(past.status, 400);
    assert!(String::from_utf8_lossy(&past.body).contains("past the end of the media"));
    // A byte start past the end is refused alike, whether named as bytes or
    // read as bytes by the original's rule (a whole number above 3600).
    let size = std::fs::metadata(media_folder().join("generated/v10a20.mp4"))
        .expect("fixture")
        .len();
    for query in [
        "start=99999999999999999999&units=bytes".to_string(),
        "start=99999999999999999999".to_string(),
        format!("start={}&units=bytes", size + 1),
        format!("start={size}"),
    ] {
        let past = server.get(&format!("/generated/v10a20.mp4?{query}"), &[]);
        assert_eq!(past.status, 400, "{query}");
        assert!(
            String::from_utf8_lossy(&past.body).contains("past the end of the media"),
            "{query}"
        );
    }
}

#[test]
fn exact_mode_hides_the_frames_before_start() {
    ensure_fixtures();
    let dir = TempDir::new("exact");
    let options = options_file(
        &dir,
        &format!(
            "options.seek = 'exact'\noptions.hosts[''] = {{ folder = '{}' }}\n",
            media_folder().display()
        ),
    );
    let server = Server::start(&["-o", options.to_str().expect("utf8"), "-w", "1"]);
    let target = url(&server, "generated/v10a20.mp4?start=2.1&end=4.0");
    let p = probe(&target).expect("probe");
    close(
        p.stream("video").expect("video").1,
        1.9,
        "exact start=2.1&end=4.0",
    );
    decode_cleanly(&target).expect("decodes");
}

#[test]
fn every_kind_of_mp4_seeks_and_decodes_with_all_its_tracks() {
    let server = server();
    for (path, tracks, duration) in [
        ("sample.mp4?start=1", 2, 3.0),
        ("generated/faststart.mp4?start=2", 2, 2.0),
        ("generated/audio.m4a?start=3", 1, 9.0),
        ("generated/vbr.mp4?start=5&end=13", 2, 8.0),
        ("generated/v10a20.mp4?start=3", 2, 17.0),
    ] {
        let target = url(&server, path);
        let p = probe(&target).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(p.streams.len(), tracks, "{path} keeps every track");
        assert!(
            (p.duration - duration).abs() < 0.1,
            "{path}: {} is not {duration}",
            p.duration
        );
        for (kind, _, start) in &p.streams {
            assert!(start.abs() < 0.05, "{path}: {kind} starts at {start}");
        }
        decode_cleanly(&target).unwrap_or_else(|e| panic!("{path} does not decode: {e}"));
    }
}

#[test]
fn output_is_fast_start_with_exact_lengths() {
    let server = server();
    let response = server.get("/sample.mp4?start=1", &[]);
    assert_eq!(response.status, 200);
    let body = &response.body;
    assert_eq!(
        response
            .header("Content-Length")
            .and_then(|v| v.parse::<usize>().ok()),
        Some(body.len())
    );
    let first_size = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
    assert_eq!(&body[4..8], b"ftyp");
    assert_eq!(&body[first_size + 4..first_size + 8], b"moov");
    let moov_size = u32::from_be_bytes(
        body[first_size..first_size + 4]
            .try_into()
            .expect("4 bytes"),
    ) as usize;
    let mdat_at = first_size + moov_size;
    assert_eq!(&body[mdat_at + 4..mdat_at + 8], b"mdat");
    let mdat_size =
        u32::from_be_bytes(body[mdat_at..mdat_at + 4].try_into().expect("4 bytes")) as usize;
    assert_eq!(
        mdat_at + mdat_size,
        body.len(),
        "mdat runs exactly to the end of the body"
    );
}

#[test]
fn range_and_head_apply_to_the_seeked_body() {
    let server = server();
    let full = server.get("/generated/v10a20.mp4?start=2", &[]);
    let length = full.body.len();
    let etag = full.header("ETag").expect("etag").to_string();
    let first = server.get("/generated/v10a20.mp4?start=2", &["Range: bytes=0-9"]);
    assert_eq!(first.status, 206);
    assert_eq!(
        first.header("Content-Range"),
        Some(format!("bytes 0-9/{length}").as_str())
    );
    assert_eq!(first.body, full.body[..10].to_vec());
    // A range across the end of the rewritten header and into the samples.
    let moov_end = 2000;
    let middle = server.get(
        "/generated/v10a20.mp4?start=2",
        &[&format!(
            "Range: bytes={}-{}",
            moov_end - 700,
            moov_end + 3000
        )],
    );
    assert_eq!(
        middle.body,
        full.body[moov_end - 700..moov_end + 3001].to_vec()
    );
    let tail = server.get("/generated/v10a20.mp4?start=2", &["Range: bytes=-100"]);
    assert_eq!(tail.body, full.body[length - 100..].to_vec());
    let past = server.get(
        "/generated/v10a20.mp4?start=2",
        &[&format!("Range: bytes={length}-")],
    );
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("Content-Range"),
        Some(format!("bytes */{length}").as_str())
    );
    let head = server.request("HEAD", "/generated/v10a20.mp4?start=2", &[]);
    let strip = |r: &common::Response| {
        r.headers
            .iter()
            .filter(|(n, _)| n != "Date")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&head), strip(&full));
    assert!(head.body.is_empty());
    // The ETag names the seek, and revalidates.
    let plain = server.get("/generated/v10a20.mp4", &[]);
    assert_ne!(plain.header("ETag"), Some(etag.as_str()));
    assert!(etag.contains("s2"), "{etag}");
    let again = server.get(
        "/generated/v10a20.mp4?start=2",
        &[&format!("If-None-Match: {etag}")],
    );
    assert_eq!(again.status, 304);
    let other = server.get(
        "/generated/v10a20.mp4?start=3",
        &[&format!("If-None-Match: {etag}")],
    );
    assert_eq!(other.status, 200);
}

#[test]
fn without_seek_arguments_a_media_file_is_served_as_it_is() {
    let server = server();
    let file = std::fs::read(media_folder().join("sample.mp4")).expect("fixture");
    for path in [
        "/sample.mp4",
        "/sample.mp4?start=0",
        "/sample.mp4?other=1",
        "/sample.mp4?start=0&stop=0",
    ] {
        let response = server.get(path, &[]);
        assert_eq!(response.status, 200);
        assert_eq!(response.body, file, "{path}");
    }
    let range = server.get("/sample.mp4", &["Range: bytes=100-199"]);
    assert_eq!(range.body, file[100..200].to_vec());
}

#[test]
fn bad_arguments_are_400_with_a_message() {
    let server = server();
    for (query, message) in [
        ("start=abc", "start=abc is not a non-negative number"),
        ("start=-1", "start=-1 is not a non-negative number"),
        ("start=NaN", "start=NaN is not a non-negative number"),
        ("start=5&end=2", "stop (2) must be after start (5)"),
    ] {
        let response = server.get(&format!("/sample.mp4?{query}"), &[]);
        assert_eq!(response.status, 400, "{query}");
        assert!(
            String::from_utf8_lossy(&response.body).contains(message),
            "{query}"
        );
    }
}

#[test]
fn damaged_and_unseekable_files_get_complete_errors() {
    let server = server();
    let encrypted = server.get("/generated/frag_encrypted.mp4?start=1", &[]);
    assert_eq!(encrypted.status, 501);
    assert!(String::from_utf8_lossy(&encrypted.body).contains("encrypted samples"));
    // Unseeked, the same file is just a file.
    assert_eq!(server.get("/generated/frag_encrypted.mp4", &[]).status, 200);
    for (name, logged) in [
        ("truncated.mp4", "track 1: chunk"),
        ("no-moov.mp4", "box 'moov' at offset"),
        ("size0.mp4", "no moov box in the file"),
        ("oversized-box.mp4", "box 'moov' at offset 32"),
        ("bad-stco.mp4", "track 1: chunk 1 at offset 4294967040"),
    ] {
        let response = server.get(&format!("/generated/{name}?start=1"), &[]);
        assert_eq!(response.status, 500, "{name}");
        assert_eq!(
            response
                .header("Content-Length")
                .and_then(|v| v.parse().ok()),
            Some(response.body.len())
        );
        assert!(
            server.wait_for_log(
                &format!("{name}: {logged}"),
                std::time::Duration::from_secs(5)
            ),
            "{name}: no log line naming the file and the damage"
        );
    }
    // The workers are still there and still seek.
    assert_eq!(server.get("/sample.mp4?start=1", &[]).status, 200);
    assert!(!server.log_text().contains("panicked"));
}

#[test]
fn the_cache_counts_hits_and_never_serves_a_changed_file() {
    ensure_fixtures();
    let dir = TempDir::new("seek-cache");
    let path = dir.path().join("film.mp4");
    std::fs::copy(media_folder().join("generated/v10a20.mp4"), &path).expect("copy");
    let admin = common::free_port();
    let server = Server::start(&[
        "-f",
        dir.path().to_str().expect("utf8"),
        "-w",
        "1",
        "-r",
        &admin.to_string(),
    ]);
    let first = server.get("/film.mp4?start=2", &[]);
    let second = server.get("/film.mp4?start=2", &[]);
    assert_eq!(first.body, second.body);
    let monitor = {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", admin)).expect("admin");
        stream
            .write_all(b"GET /monitor HTTP/1.0\r\n\r\n")
            .expect("send");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read");
        text
    };
    assert!(monitor.contains("cache:hits = 1\n"), "{monitor}");
    assert!(monitor.contains("cache:misses = 1\n"), "{monitor}");
    // Replace the file: the next seek reflects the new content.
    let staged = dir.path().join("staged.tmp");
    std::fs::copy(media_folder().join("generated/vbr.mp4"), &staged).expect("copy");
    std::fs::rename(&staged, &path).expect("rename");
    let target = url(&server, "film.mp4?start=2");
    let p = probe(&target).expect("probe");
    close(p.duration, 14.0, "the new file, seeked");
}

#[test]
fn the_timeline_follows_variable_bitrate() {
    use loomiere::media::{FileSource, Seek, SeekMode, Units, mp4};
    ensure_fixtures();
    // vbr.mp4 alternates 2 s of noise (expensive) and 2 s of a still picture (cheap).
    let path = media_folder().join("generated/vbr.mp4");
    let file = std::fs::File::open(&path).expect("fixture");
    let size = file.metadata().expect("stat").len();
    let index = std::rc::Rc::new(
        mp4::index(&FileSource {
            file: &file,
            size,
            name: "test",
        })
        .expect("index"),
    );
    let prepared = mp4::prepare(
        &index,
        &Seek {
            start: 4.0,
            stop: 0.0,
            units: Units::Seconds,
        },
        SeekMode::Keyframe,
    )
    .expect("seek");
    let timeline = &prepared.timeline;
    let bytes_in = |from: f64, to: f64| timeline.body_offset_at(to) - timeline.body_offset_at(from);
    // From 4 s: noise for 2 s, then still for 2 s.
    let noisy = bytes_in(0.0, 2.0);
    let still = bytes_in(2.0, 4.0);
    assert!(
        noisy > 4 * still,
        "noisy seconds cost {noisy} bytes, still ones {still}"
    );
    // The header comes first, then what the first tenth of a second needs.
    let at_start = timeline.body_offset_at(0.0);
    assert!(
        at_start > prepared.prefix.len() && at_start < prepared.prefix.len() + noisy / 10,
        "{at_start} bytes to start playing"
    );
    assert_eq!(timeline.body_offset_at(1000.0), prepared.len());
    let half = timeline.body_offset_at(1.0);
    assert!((timeline.seconds_at(half) - 1.0).abs() <= 0.1);
}

/// The guards against hostile files (moov size, samples a track) stand at
/// their defaults for a small cache and grow with `options.cache`: a file
/// the cache could hold is never refused, and a refusal says what raises it.
#[test]
fn the_index_guards_grow_with_the_cache() {
    use loomiere::media::mp4::{self, IndexLimits};
    let film = std::fs::read(media_folder().join("sample.mp4")).expect("fixture");
    let tight = IndexLimits {
        moov_bytes: 1000,
        ..IndexLimits::DEFAULT
    };
    let error = mp4::index_within(&film[..], &tight).expect_err("a moov over the limit");
    assert!(
        error.to_string().contains("options.cache raises it"),
        "{error}"
    );
    let few = IndexLimits {
        track_samples: 50,
        ..IndexLimits::DEFAULT
    };
    let error = mp4::index_within(&film[..], &few).expect_err("a track over the limit");
    assert!(error.to_string().contains("more than the 50"), "{error}");
    assert!(
        error.to_string().contains("options.cache raises it"),
        "{error}"
    );
    // The defaults and a gigabyte cache's limits take it.
    assert!(mp4::index_within(&film[..], &IndexLimits::DEFAULT).is_ok());
    let large = IndexLimits::for_cache(1 << 30);
    assert!(large.moov_bytes > IndexLimits::DEFAULT.moov_bytes);
    assert!(large.track_samples > IndexLimits::DEFAULT.track_samples);
    assert!(mp4::index_within(&film[..], &large).is_ok());
}

//! A ten-hour film (issue 24): 900 000 video frames and a 22 MB moov at the
//! end (what nginx's mp4 module refuses as too large), and the same film
//! fragmented into 18 000 moofs. Seeks in its tenth hour start at the right
//! keyframe and decode to the same frames as ffmpeg's own seek in the
//! original; with `options.seek = 'exact'` the first frame shown is the one
//! at `start`; the index the cache keeps stays under 16 bytes a sample.
//! A film of 6 000 000 short samples whose moov takes 71 MB is indexed and
//! seeked the same way, and served from an index built for each request
//! when its index is larger than `options.cache`.

mod common;

use std::process::Command;

use common::{
    Server, TempDir, admin_get, decode_cleanly, ensure_fixtures, free_port, media_folder,
    options_file, probe,
};

const REGULAR: &str = "ten_hours.mp4";
const FRAGMENTED: &str = "ten_hours_frag.mp4";
/// Where the tenth hour's seeks start: away from keyframes (every 2 s), so
/// that the keyframe before each is not a matter of rounding.
const STARTS: [f64; 3] = [32_401.3, 35_000.9, 35_987.5];
/// 6 000 000 frames of 4 ms and a 71 MB moov (tests/media/generate.sh).
const BIG_MOOV: &str = "big_moov.mp4";
/// In its last hour, off its keyframes (every 2 s).
const BIG_MOOV_STARTS: [f64; 2] = [22_000.3, 23_977.9];

struct Running {
    server: Server,
    admin: u16,
    _dir: TempDir,
}

fn server(extra: &str) -> Running {
    ensure_fixtures();
    let dir = TempDir::new("long-films");
    let path = options_file(
        &dir,
        &format!(
            // Unthrottled: ffmpeg decodes the rest of the film at once.
            "options.throttle = 0\n{extra}\noptions.hosts[''] = {{ folder = '{}' }}\n",
            media_folder().join("generated").display()
        ),
    );
    let admin = free_port();
    let server = Server::start(&[
        "-o",
        path.to_str().expect("utf8"),
        "-w",
        "1",
        "-r",
        &admin.to_string(),
    ]);
    Running {
        server,
        admin,
        _dir: dir,
    }
}

fn url(server: &Server, path: &str) -> String {
    format!("http://127.0.0.1:{}/{path}", server.port)
}

fn original(name: &str) -> String {
    media_folder()
        .join("generated")
        .join(name)
        .display()
        .to_string()
}

/// The presentation time of the last video keyframe at or before `t` in the
/// original file, as ffprobe reads its packets (not Loomiere's parser).
fn keyframe_before(film: &str, t: f64) -> f64 {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-read_intervals",
            &format!("{}%{}", t - 6.0, t + 0.5),
            "-show_entries",
            "packet=pts_time,flags",
            "-of",
            "csv=p=0",
            &original(film),
        ])
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains('K'))
        .filter_map(|line| line.split(',').next()?.parse::<f64>().ok())
        .filter(|&pts| pts <= t)
        .fold(f64::NAN, f64::max)
}

/// The md5 of the first `frames` video frames of `input` decoded from
/// `from` seconds (ffmpeg's accurate seek: the first frame at or after it).
fn frame_hashes(input: &str, from: Option<f64>, frames: usize) -> Vec<String> {
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-nostdin"]);
    if let Some(from) = from {
        command.args(["-ss", &format!("{from:.6}")]);
    }
    let output = command
        .args(["-i", input, "-map", "0:v", "-frames:v", &frames.to_string()])
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

/// Where the film's video starts and ends as ffmpeg presents the original.
/// ffmpeg's concat delays the copy's video by the AAC priming it turns into
/// audio samples (46 ms); `start` is media time from the first frame, as
/// the file's own tables count it, so ffmpeg's times are that much later.
fn video_span(film: &str) -> (f64, f64) {
    let probed = probe(&original(film)).expect("probe the original");
    let (_, length, start) = probed.stream("video").expect("video").clone();
    (start, start + length)
}

/// Checks that `film?start=` keeps the video from the keyframe at or before
/// `start` in `source` (the same film, regular) to its end, and that its
/// first 50 frames are the ones ffmpeg's own seek decodes there. `span` is
/// where the original's video starts and ends as ffmpeg presents it.
fn check_keyframe_seek(server: &Server, film: &str, source: &str, start: f64, span: (f64, f64)) {
    let (first, end) = span;
    let keyframe = keyframe_before(source, first + start);
    assert!(start - keyframe < 2.1, "keyframe {keyframe} for {start}");
    let target = format!("{film}?start={start}");
    let seeked = url(server, &target);
    let probed = probe(&seeked).unwrap_or_else(|e| panic!("{target}: {e}"));
    let kept = probed.stream("video").expect("video").1;
    // An hour or ten minutes off (a wrapped counter, a wrong chunk) would
    // keep a very different length of video.
    assert!(
        (kept - (end - keyframe)).abs() < 0.05,
        "{target}: {kept:.3} s of video, expected {:.3} (from the keyframe at {keyframe})",
        end - keyframe
    );
    assert_eq!(
        frame_hashes(&seeked, None, 50),
        frame_hashes(&original(source), Some(keyframe), 50),
        "{target}: the first 50 frames differ from the original's at {keyframe}"
    );
}

#[test]
fn tenth_hour_seeks_start_at_the_keyframe_and_decode_to_the_original_frames() {
    let running = server("");
    let (first, end) = video_span(REGULAR);
    for film in [REGULAR, FRAGMENTED] {
        for start in STARTS {
            check_keyframe_seek(&running.server, film, REGULAR, start, (first, end));
        }
        let last = url(&running.server, &format!("{film}?start={}", STARTS[2]));
        decode_cleanly(&last).unwrap_or_else(|e| panic!("{last}: {e}"));
    }
}

#[test]
fn exact_seeks_in_the_tenth_hour_show_the_frame_at_start_first() {
    let running = server("options.seek = 'exact'");
    let (first, end) = video_span(REGULAR);
    // On a frame (frame n at n / 25 s of media time): no rounding decides
    // which frame is first. ffmpeg fragmented the copy without an edit
    // list, so there every frame is presented two frames (its B-frame
    // delay, 0.08 s) later, and the same frame is asked for that much later.
    for (film, delay) in [(REGULAR, 0.0), (FRAGMENTED, 0.08)] {
        for frame in [875_033u64, 899_000] {
            let start = frame as f64 / 25.0;
            let target = format!("{film}?start={:.2}", start + delay);
            let seeked = url(&running.server, &target);
            let probed = probe(&seeked).unwrap_or_else(|e| panic!("{target}: {e}"));
            let shown = probed.stream("video").expect("video").1;
            let expected = end - first - start;
            assert!(
                (shown - expected).abs() < 0.02,
                "{target}: {shown:.3} s of video shown, expected {expected:.3}"
            );
            assert_eq!(
                frame_hashes(&seeked, None, 10),
                frame_hashes(&original(REGULAR), Some(first + start), 10),
                "{target}: the first frames shown are not the original's frame {frame} on"
            );
            decode_cleanly(&seeked).unwrap_or_else(|e| panic!("{target}: {e}"));
        }
    }
}

#[test]
fn the_index_of_a_ten_hour_film_keeps_under_16_bytes_a_sample() {
    let samples = sample_count(REGULAR);
    assert!(samples > 1_600_000, "{samples} samples");
    for film in [REGULAR, FRAGMENTED] {
        // A fresh server for each: the gauge then holds this film's index.
        let running = server("");
        let response = running
            .server
            .get(&format!("/{film}?start=35000.5"), &["Range: bytes=0-65535"]);
        assert_eq!(response.status, 206, "{film}");
        let bytes = cache_bytes(running.admin);
        let per_sample = bytes as f64 / samples as f64;
        eprintln!("{film}: the cache holds {bytes} bytes, {per_sample:.1} a sample");
        assert!(per_sample < 16.0, "{film}: {per_sample:.1} bytes a sample");
        // Seeks and the index's lookups read nothing but the cached index:
        // a second seek costs no new index.
        let again = running
            .server
            .get(&format!("/{film}?start=1.5"), &["Range: bytes=0-65535"]);
        assert_eq!(again.status, 206);
        let metrics = admin_get(running.admin, "/metrics");
        assert!(
            metrics.contains("loomiere_cache_misses_total 1\n"),
            "{metrics}"
        );
    }
}

/// The samples of every track of a film, as ffprobe counts them.
fn sample_count(film: &str) -> u64 {
    let probed = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=nb_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(original(film))
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&probed.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .sum()
}

/// The size of a file's moov box, read from its top-level box headers.
fn moov_size(film: &str) -> u64 {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(original(film)).expect("open the film");
    let size = file.metadata().expect("stat").len();
    let mut offset = 0;
    while offset + 8 <= size {
        let mut header = [0u8; 16];
        file.seek(SeekFrom::Start(offset)).expect("seek");
        file.read_exact(&mut header[..8]).expect("a box header");
        let mut length = u64::from(u32::from_be_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        if length == 1 {
            file.read_exact(&mut header[8..]).expect("a 64-bit size");
            length = u64::from_be_bytes(header[8..16].try_into().expect("8 bytes"));
        }
        if &header[4..8] == b"moov" {
            return length;
        }
        assert!(length >= 8, "a box of {length} bytes at {offset}");
        offset += length;
    }
    panic!("{film} has no moov");
}

#[test]
fn a_moov_over_64_mb_is_cached_under_16_bytes_a_sample_and_seeks_to_the_frame() {
    let moov = moov_size(BIG_MOOV);
    assert!(moov > 64 << 20, "the moov takes {moov} bytes");
    let samples = sample_count(BIG_MOOV);
    assert!(samples >= 6_000_000, "{samples} samples");
    let running = server("options.cache = 256");
    let (first, end) = video_span(BIG_MOOV);
    for (n, start) in BIG_MOOV_STARTS.into_iter().enumerate() {
        check_keyframe_seek(&running.server, BIG_MOOV, BIG_MOOV, start, (first, end));
        if n == 0 {
            let bytes = cache_bytes(running.admin);
            let per_sample = bytes as f64 / samples as f64;
            eprintln!("{BIG_MOOV}: the cache holds {bytes} bytes, {per_sample:.1} a sample");
            assert!(per_sample < 16.0, "{per_sample:.1} bytes a sample");
        }
    }
    let last = url(
        &running.server,
        &format!("{BIG_MOOV}?start={}", BIG_MOOV_STARTS[1]),
    );
    decode_cleanly(&last).unwrap_or_else(|e| panic!("{last}: {e}"));
    // Every seek was answered from the one index built first.
    let metrics = admin_get(running.admin, "/metrics");
    assert!(
        metrics.contains("loomiere_cache_misses_total 1\n"),
        "{metrics}"
    );
}

#[test]
fn an_index_larger_than_options_cache_is_built_for_each_request_and_logged_once() {
    // The index of the 71 MB moov does not fit the default 64 MB: it is
    // served all the same, from an index built for the request and dropped.
    let running = server("options.cache = 64");
    for start in BIG_MOOV_STARTS {
        let target = format!("/{BIG_MOOV}?start={start}");
        let response = running.server.get(&target, &["Range: bytes=0-65535"]);
        assert_eq!(response.status, 206, "{target}");
        assert_eq!(response.body.len(), 65_536, "{target}");
        assert_eq!(&response.body[4..8], b"ftyp", "{target}");
    }
    let metrics = admin_get(running.admin, "/metrics");
    assert!(
        metrics.contains("loomiere_cache_misses_total 2\n"),
        "{metrics}"
    );
    let seeked = url(
        &running.server,
        &format!("{BIG_MOOV}?start={}", BIG_MOOV_STARTS[1]),
    );
    decode_cleanly(&seeked).unwrap_or_else(|e| panic!("{seeked}: {e}"));
    let said = running
        .server
        .log_text()
        .matches("more than options.cache (64 MB), so it is built for every request; raise options.cache to keep it")
        .count();
    assert_eq!(said, 1, "{}", running.server.log_text());
}

/// The cache gauge of /metrics, once the workers have published it.
fn cache_bytes(admin: u16) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let metrics = admin_get(admin, "/metrics");
        let bytes = metrics
            .lines()
            .find_map(|l| l.strip_prefix("loomiere_cache_bytes "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if bytes > 0 || std::time::Instant::now() > deadline {
            return bytes;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

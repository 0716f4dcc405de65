//! A throttled stream's life: a real player keeps up, small and non-media
//! bodies go at full speed or at a constant rate, a client that stops reading
//! is dropped after `send_timeout` (but a sleeping stream is not stalled),
//! what a departed player never got counts as saved, a reload does not cut
//! streams, and a host's own `throttle` wins.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::curve::{NeedCurve, Reader};
use common::{
    Server, TempDir, admin_get, ensure_fixtures, free_port, json_number, media_folder,
    options_file, pattern_bytes, sha256_bytes,
};

/// Starts a server on the generated fixtures (and `extra`'s files) with the
/// given option lines and an admin port; returns it with the admin port.
fn start(lines: &str, dir: &TempDir) -> (Server, u16) {
    ensure_fixtures();
    let folder = media_folder().join("generated");
    let path = options_file(
        dir,
        &format!(
            "{lines}\noptions.hosts[''] = {{ folder = '{}' }}\n",
            folder.display()
        ),
    );
    let admin = free_port();
    let server = Server::start(&["-o", path.to_str().expect("utf8"), "-r", &admin.to_string()]);
    (server, admin)
}

/// Waits until no stream is in flight (the server noticed a client left).
fn wait_for_no_streams(admin: u16, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let json = admin_get(admin, "/monitor?format=json");
        if json.contains("\"streams:active\":0,") || Instant::now() > deadline {
            return json;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_real_player_plays_30_seconds_without_stalling_on_far_less_than_the_file() {
    let dir = TempDir::new("player");
    let (server, admin) = start("options.throttle = 5", &dir);
    let size = std::fs::metadata(media_folder().join("generated/vbr60.mp4"))
        .expect("fixture")
        .len();
    let started = Instant::now();
    let output = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-re", "-i"])
        .arg(format!("http://127.0.0.1:{}/vbr60.mp4", server.port))
        .args(["-t", "30", "-c", "copy", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let wall = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // -re plays at the media's own speed: a stall would make it take longer.
    assert!(
        (29.0..34.0).contains(&wall),
        "30 s of media took {wall:.1} s to play"
    );
    let json = wait_for_no_streams(admin, Duration::from_secs(5));
    let sent = json_number(&json, "data:body:bytes") as u64;
    let saved = json_number(&json, "data:saved:bytes") as u64;
    assert!(
        sent < size * 3 / 4,
        "sent {sent} bytes of a {size}-byte file to a player that stopped at 30 s of 64"
    );
    assert_eq!(sent + saved, size, "every byte is either sent or saved");
}

#[test]
fn small_media_and_images_go_at_full_speed() {
    let dir = TempDir::new("full-speed");
    let (server, _) = start("options.throttle = 3", &dir);
    // 585 KB of 30 s media: below throttle_from (1 MiB), so not held back.
    let small = Reader::get(server.port, "/small30.mp4", &[]);
    let length = small.content_length;
    small.wait_until(2.0);
    assert_eq!(small.held(), length, "a short media file was throttled");
    // A 6 MB JPEG has no timeline.
    let images = TempDir::new("images");
    images.write("big.jpg", &pattern_bytes(6_000_000, 3));
    let (plain, _) = start(
        &format!(
            "options.throttle = 3\noptions.hosts['^img'] = {{ folder = '{}' }}",
            images.path().display()
        ),
        &TempDir::new("images-options"),
    );
    let image = Reader::get(plain.port, "/big.jpg", &["Host: img"]);
    image.wait_until(2.0);
    assert_eq!(image.held(), 6_000_000, "an image was throttled");
}

#[test]
fn a_constant_rate_paces_any_body_after_its_free_bytes() {
    let dir = TempDir::new("rate");
    let files = TempDir::new("rate-files");
    let data = pattern_bytes(2 << 20, 9);
    files.write("data.txt", &data);
    let (server, _) = start(
        &format!(
            "options.rate = '200k'\noptions.rate_after = '100k'\n\
             options.hosts['^files'] = {{ folder = '{}' }}",
            files.path().display()
        ),
        &dir,
    );
    let reader = Reader::get(server.port, "/data.txt", &["Host: files"]);
    let started = reader.started;
    let samples = reader.sample(0.5, 3.0);
    // (2 MiB − 100 KiB) at 200 KiB/s: about 9.7 s; at 3 s, about 700 KiB.
    let (_, at_3s) = samples[samples.len() - 1];
    assert!(
        (500_000..1_000_000).contains(&at_3s),
        "{at_3s} bytes after 3 s at 200k/s after 100k"
    );
    let body = reader.finish();
    let took = started.elapsed().as_secs_f64();
    assert_eq!(sha256_bytes(&body), sha256_bytes(&data), "byte-identical");
    assert!(
        (8.0..14.0).contains(&took),
        "took {took:.1} s, expected about 9.7"
    );
}

/// Slices sent so far (the slice-lag histogram's count on /metrics).
fn slices_sent(admin: u16) -> u64 {
    admin_get(admin, "/metrics")
        .lines()
        .find_map(|line| line.strip_prefix("loomiere_slice_lag_seconds_count "))
        .and_then(|value| value.trim().parse().ok())
        .expect("loomiere_slice_lag_seconds_count on /metrics")
}

#[test]
fn a_slow_stream_goes_in_slices_of_min_slice_at_the_same_mean_rate() {
    // 2 KiB a period at 8k/s and period 0.25: 24 KiB take 3 s either way, in
    // a dozen slices without a minimum and in about three of 8 KiB with one.
    let files = TempDir::new("min-slice-files");
    let data = pattern_bytes(24 << 10, 5);
    files.write("slow.txt", &data);
    let serve = |min_slice: &str| {
        let dir = TempDir::new("min-slice");
        let (server, admin) = start(
            &format!(
                "options.rate = '8k'\noptions.period = 0.25\noptions.min_slice = {min_slice}\n\
                 options.hosts['^files'] = {{ folder = '{}' }}",
                files.path().display()
            ),
            &dir,
        );
        let before = slices_sent(admin);
        let started = Instant::now();
        let body = Reader::get(server.port, "/slow.txt", &["Host: files"]).finish();
        let took = started.elapsed().as_secs_f64();
        assert_eq!(sha256_bytes(&body), sha256_bytes(&data), "byte-identical");
        // The histogram is written right after each slice: give it a moment.
        std::thread::sleep(Duration::from_millis(100));
        (slices_sent(admin) - before, took)
    };
    // Both at once: the test takes one stream's time.
    let ((unstretched, took_unstretched), (stretched, took)) = std::thread::scope(|scope| {
        let every_period = scope.spawn(|| serve("0"));
        let stretched = serve("'8k'");
        (every_period.join().expect("thread"), stretched)
    });
    assert!(
        (9..=14).contains(&unstretched),
        "{unstretched} slices without a minimum (one per 2 KiB period expected)"
    );
    assert!(
        (2..=5).contains(&stretched),
        "{stretched} slices with min_slice = 8k (about three expected)"
    );
    for (took, what) in [(took, "stretched"), (took_unstretched, "every period")] {
        assert!(
            (2.0..5.0).contains(&took),
            "{what}: 24 KiB at 8 KiB/s took {took:.1} s"
        );
    }
}

#[test]
fn a_client_that_stops_reading_is_dropped_after_send_timeout_even_when_throttled() {
    let dir = TempDir::new("stalled");
    let (server, admin) = start(
        "options.throttle = 3\noptions.period = 0.25\noptions.send_timeout = 2",
        &dir,
    );
    let mut stream = server.connect();
    // A fixed receive buffer, as a real player's socket has: this machine's
    // tcp_rmem lets an autotuned loopback socket grow to 32 MB, which would
    // swallow the whole film before the server ever saw it stall.
    let size: libc::c_int = 256 * 1024;
    // SAFETY: a valid socket, an option of its documented type and length.
    let set = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&stream),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "SO_RCVBUF");
    stream
        .write_all(b"GET /vbr60.mp4 HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("send");
    // Read the first burst, then stop reading while the stream is throttled.
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0;
    let reading_until = Instant::now() + Duration::from_millis(800);
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    while Instant::now() < reading_until {
        if let Ok(n) = stream.read(&mut buf) {
            got += n;
        }
    }
    assert!(got > 1_000_000, "the burst arrived ({got} bytes)");
    let stopped = Instant::now();
    let json = wait_for_no_streams(admin, Duration::from_secs(40));
    let closed_after = stopped.elapsed();
    assert!(
        json.contains("\"streams:active\":0,"),
        "still streaming to a client that reads nothing: {json}"
    );
    assert!(
        closed_after >= Duration::from_secs(2),
        "closed after {closed_after:?}, before send_timeout"
    );
    assert!(server.wait_for_log("no progress for 2s", Duration::from_secs(1)));
}

#[test]
fn a_stream_asleep_longer_than_send_timeout_is_not_stalled() {
    let dir = TempDir::new("asleep");
    // Slices every 2 s, send_timeout 1 s: sleeping must not count as a stall.
    let (server, _) = start(
        "options.throttle = 1\noptions.period = 2\noptions.send_timeout = 1\noptions.throttle_from = 0",
        &dir,
    );
    let reader = Reader::get(server.port, "/small30.mp4?start=20&stop=27", &[]);
    let length = reader.content_length;
    let started = reader.started;
    let body = reader.finish();
    assert_eq!(body.len() as u64, length, "the stream was cut while asleep");
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "7 s of media with a 1 s lead went out in {:?}: not throttled",
        started.elapsed()
    );
}

#[test]
fn a_player_that_leaves_early_adds_what_it_never_got_to_bytes_saved() {
    let dir = TempDir::new("saved");
    let (server, admin) = start("options.throttle = 3\noptions.period = 0.25", &dir);
    let reader = Reader::get(server.port, "/vbr60.mp4?start=10", &[]);
    let length = reader.content_length;
    reader.wait_until(1.0);
    let received = reader.hang_up();
    let json = wait_for_no_streams(admin, Duration::from_secs(5));
    let sent = json_number(&json, "data:body:bytes") as u64;
    let saved = json_number(&json, "data:saved:bytes") as u64;
    assert!(
        received <= sent && sent < length / 2,
        "sent {sent} of {length}"
    );
    assert_eq!(
        saved,
        length - sent,
        "saved = body length − bytes sent, exactly"
    );
}

#[test]
fn a_reload_does_not_cut_throttled_streams() {
    let dir = TempDir::new("reload-streams");
    let folder = media_folder().join("generated");
    let host = |throttle: &str| {
        format!(
            "options.throttle = {throttle}\noptions.period = 0.25\noptions.throttle_from = 0\n\
             options.hosts['^fast'] = {{ folder = '{0}', throttle = 0 }}\n\
             options.hosts[''] = {{ folder = '{0}' }}\n",
            folder.display()
        )
    };
    ensure_fixtures();
    let path = options_file(&dir, &host("3"));
    let admin = free_port();
    let server = Server::start(&["-o", path.to_str().expect("utf8"), "-r", &admin.to_string()]);
    // Near the end: 6 s of media, so each stream lasts about 3 s.
    let target = "/vbr60.mp4?start=58";
    let expected = sha256_bytes(&Reader::get(server.port, target, &["Host: fast"]).finish());
    let readers: Vec<Reader> = (0..50)
        .map(|_| Reader::get(server.port, target, &[]))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let throttled = json_number(
        &admin_get(admin, "/monitor?format=json"),
        "streams:throttled",
    );
    assert!(throttled > 0.0, "no stream asleep before the reload");
    // The new options throttle nothing: a new request must show it.
    options_file(&dir, &host("0"));
    server.signal(libc::SIGHUP);
    assert!(server.wait_for_log("SIGHUP", Duration::from_secs(5)));
    for (n, reader) in readers.into_iter().enumerate() {
        let length = reader.content_length;
        let body = reader.finish();
        assert_eq!(
            body.len() as u64,
            length,
            "stream {n} was cut by the reload"
        );
        assert_eq!(sha256_bytes(&body), expected, "stream {n} differs");
    }
    // A new request sees throttle = 0: the whole body at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fresh = Reader::get(server.port, "/vbr60.mp4", &[]);
        let length = fresh.content_length;
        fresh.wait_until(1.5);
        if fresh.held() == length {
            break;
        }
        assert!(Instant::now() < deadline, "the new options never took over");
    }
}

#[test]
fn a_hosts_own_throttle_wins_over_the_global_one() {
    let dir = TempDir::new("host-throttle");
    let folder = media_folder().join("generated");
    let (server, _) = start(
        &format!(
            "options.throttle = 20\noptions.period = 0.25\n\
             options.hosts['^short'] = {{ folder = '{}', throttle = 3 }}",
            folder.display()
        ),
        &dir,
    );
    let curve = NeedCurve::probe(&folder.join("vbr60.mp4"));
    let short = Reader::get(server.port, "/vbr60.mp4", &["Host: short"]);
    let global = Reader::get(server.port, "/vbr60.mp4", &["Host: other"]);
    short.wait_until(1.0);
    global.wait_until(1.0);
    let (short_held, global_held) = (short.held(), global.held());
    assert!(
        short_held <= curve.needed(3.0 + 1.0 + 0.25) + 128 * 1024,
        "the host's throttle = 3 was not applied: {short_held} bytes"
    );
    assert!(
        global_held >= curve.needed(20.0),
        "the global throttle = 20 was not applied elsewhere: {global_held} bytes"
    );
}

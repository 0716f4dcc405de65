//! Test harness: starts the real `loomiere` binary on free ports and talks to
//! it over real sockets.
#![allow(dead_code)]

pub mod curve;
pub mod players;
pub mod playlists;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_loomiere");

/// A fresh, empty folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "loomiere-test-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        set_mode(&path, 0o755);
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, contents).expect("write file");
        set_mode(&path, if path.is_dir() { 0o755 } else { 0o644 });
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Deterministic pseudo-random bytes (xorshift), so large files need no fixture.
pub fn pattern_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A running server; killed (SIGQUIT, at once) when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `loomiere` with `args` plus `-p 0` (a free port) unless a port is given,
    /// and waits until it listens.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_limit(args, 0)
    }

    /// Like `start`, with the open-files limit (soft and hard) set to
    /// `open_files` when it is not 0.
    pub fn start_with_limit(args: &[&str], open_files: u64) -> Server {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if !args.iter().any(|a| *a == "-o" || *a == "--options") {
            // Built-in defaults, whatever /etc/loomiere/options.lua this machine has.
            all.extend(["-o".to_string(), "/dev/null".to_string()]);
        }
        if !args.iter().any(|a| *a == "-p" || *a == "--port") {
            all.extend(["-p".to_string(), "0".to_string()]);
        }
        if !args.iter().any(|a| *a == "-r" || *a == "--root") {
            all.extend(["-r".to_string(), "0".to_string()]);
        }
        let mut command = Command::new(BINARY);
        command
            .args(&all)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if open_files > 0 {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches only the
            // child's own limits between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: open_files,
                        rlim_max: open_files,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("start loomiere");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut port_tx = Some(port_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(tx) = &port_tx
                    && let Some(rest) = line.split("listening on http://").nth(1)
                    && let Ok(addr) = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .parse::<SocketAddr>()
                {
                    let _ = tx.send(addr.port());
                    port_tx = None;
                }
                sink.lock().expect("log lock").push(line);
            }
        });
        let port = match port_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start: {:?}",
                    log.lock().expect("log").clone()
                );
            }
        };
        let server = Server { child, port, log };
        server.wait_until_serving();
        server
    }

    fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                if stream.write_all(b"OPTIONS * HTTP/1.0\r\n\r\n").is_ok() {
                    let mut buf = [0u8; 12];
                    if stream.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1") {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server never answered");
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill takes integers only.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// The worker and monitor processes of the master.
    pub fn children(&self) -> Vec<i32> {
        let path = format!("/proc/{0}/task/{0}/children", self.pid());
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    /// The first log line that contains `needle`, if one has arrived.
    pub fn log_line(&self, needle: &str) -> Option<String> {
        self.log
            .lock()
            .expect("log")
            .iter()
            .find(|l| l.contains(needle))
            .cloned()
    }

    /// Waits until some log line contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .log
                .lock()
                .expect("log")
                .iter()
                .any(|l| l.contains(needle))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits for the master to exit and returns its status code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream
    }

    /// Sends raw bytes on a new connection and reads until the server closes it.
    pub fn raw(&self, request: &[u8]) -> Vec<u8> {
        let mut stream = self.connect();
        stream.write_all(request).expect("send");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        response
    }

    /// GET `path` with extra header lines; the connection is closed after.
    pub fn get(&self, path: &str, headers: &[&str]) -> Response {
        self.request("GET", path, headers)
    }

    pub fn request(&self, method: &str, path: &str, headers: &[&str]) -> Response {
        let mut text =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for header in headers {
            text.push_str(header);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        Response::parse(&self.raw(text.as_bytes()), method == "HEAD").expect("a response")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.signal(libc::SIGQUIT);
        if self.wait_exit(Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub status_line: String,
    /// Header lines in order, as (name, value).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Bytes after this response (pipelined responses, or junk).
    pub rest: Vec<u8>,
}

impl Response {
    /// Parses one response from the start of `bytes`. Every line must end in CRLF.
    pub fn parse(bytes: &[u8], head_only: bool) -> Option<Response> {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&bytes[..end]).ok()?;
        assert!(
            !head.replace("\r\n", "").contains('\n'),
            "bare LF in head: {head:?}"
        );
        let mut lines = head.split("\r\n");
        let status_line = lines.next()?.to_string();
        let status = status_line.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header line has a colon");
                (n.to_string(), v.trim().to_string())
            })
            .collect();
        let body_start = end + 4;
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse::<usize>().expect("numeric length"));
        let body_len = if head_only || status == 304 {
            0
        } else {
            length.unwrap_or(bytes.len() - body_start)
        };
        let body_end = (body_start + body_len).min(bytes.len());
        Some(Response {
            status,
            status_line,
            headers,
            body: bytes[body_start..body_end].to_vec(),
            rest: bytes[body_end..].to_vec(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// Reads exactly one response (head and Content-Length body) from a keep-alive stream.
pub fn read_response(stream: &mut TcpStream, head_only: bool) -> Response {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read head");
        assert!(
            n > 0,
            "connection closed mid-head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let response = Response::parse(&buf, true).expect("head");
    let length: usize = response
        .header("content-length")
        .map_or(0, |v| v.parse().expect("length"));
    if !head_only && response.status != 304 {
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).expect("read body");
        buf.extend_from_slice(&body);
    }
    Response::parse(&buf, head_only).expect("response")
}

/// Writes an options.lua into `dir` and returns its path.
pub fn options_file(dir: &TempDir, text: &str) -> PathBuf {
    dir.write("options.lua", text.as_bytes())
}

/// sha256 of a file or of bytes, through coreutils' sha256sum.
pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

pub fn sha256_bytes(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = bytes.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("sha256sum output");
    let _ = writer.join();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// The fragmented fixtures of one 20 s film (a keyframe every second) as
/// tests/media/generate.sh makes them with ffmpeg's fragmenting muxers
/// (issue 24): frag_keyframe, frag_every_frame, dash with a sidx, fragments
/// between keyframes, CMAF, negative composition offsets, samples in the
/// moov and in fragments, two audio tracks, each track in moofs of its own.
pub const FRAGMENTED_FILMS: [&str; 9] = [
    "frag_keyframe.mp4",
    "frag_every_frame.mp4",
    "frag_dash.mp4",
    "frag_duration.mp4",
    "frag_cmaf.mp4",
    "frag_negative_cts.mp4",
    "frag_moov_samples.mp4",
    "frag_two_audio.mp4",
    "frag_separate.mp4",
];

/// The repository's media folder (committed fixtures, and `generated/`).
pub fn media_folder() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/media"))
}

/// Makes sure the generated fixtures exist (the script is a no-op when they do).
pub fn ensure_fixtures() {
    static GENERATED: std::sync::Once = std::sync::Once::new();
    GENERATED.call_once(|| {
        let status = Command::new(media_folder().join("generate.sh"))
            .status()
            .expect("run tests/media/generate.sh");
        assert!(status.success(), "tests/media/generate.sh failed");
    });
}

/// What ffprobe says of a file or URL.
#[derive(Debug, Default)]
pub struct Probe {
    pub duration: f64,
    /// The container's first timestamp (a seeked FLV keeps its timestamps).
    pub start: f64,
    /// (codec_type, duration, start_time) per stream; NaN where ffprobe says N/A.
    pub streams: Vec<(String, f64, f64)>,
}

impl Probe {
    /// Seconds of media covered: from the first timestamp to the end.
    pub fn span(&self) -> f64 {
        self.duration
            - if self.start.is_finite() {
                self.start
            } else {
                0.0
            }
    }

    pub fn stream(&self, kind: &str) -> Option<&(String, f64, f64)> {
        self.streams.iter().find(|(k, _, _)| k == kind)
    }
}

pub fn probe(input: &str) -> Result<Probe, String> {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration,start_time:stream=codec_type,duration,start_time",
            "-of",
            "compact",
            input,
        ])
        .output()
        .map_err(|e| format!("ffprobe: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).to_string());
    }
    let mut probe = Probe::default();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let mut fields = line.split('|');
        let section = fields.next().unwrap_or("");
        let values: Vec<(&str, &str)> = fields.filter_map(|f| f.split_once('=')).collect();
        let get = |name: &str| {
            values
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        match section {
            "format" => {
                probe.duration = get("duration");
                probe.start = get("start_time");
            }
            "stream" => {
                let kind = values
                    .iter()
                    .find(|(n, _)| *n == "codec_type")
                    .map_or("", |(_, v)| v)
                    .to_string();
                probe
                    .streams
                    .push((kind, get("duration"), get("start_time")));
            }
            _ => {}
        }
    }
    Ok(probe)
}

/// Decodes every stream of `input` (`-map 0`) with ffmpeg; Ok when it
/// reports nothing but lines containing one of `tolerated`.
pub fn decode_every_stream(input: &str, tolerated: &[&str]) -> Result<(), String> {
    let output = Command::new("ffmpeg")
        .args([
            "-v", "error", "-nostdin", "-i", input, "-map", "0", "-f", "null", "-",
        ])
        .output()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    let errors: Vec<&str> = std::str::from_utf8(&output.stderr)
        .unwrap_or("(not UTF-8)")
        .lines()
        .filter(|line| !tolerated.iter().any(|t| line.contains(t)))
        .collect();
    if output.status.success() && errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Decodes every frame with ffmpeg; Ok when it reports nothing at all.
pub fn decode_cleanly(input: &str) -> Result<(), String> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i", input, "-f", "null", "-"])
        .output()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    if output.status.success() && output.stderr.is_empty() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).to_string())
    }
}

/// GET `path` on the admin port and return the body.
pub fn admin_get(admin_port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", admin_port)).expect("admin port");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .expect("send");
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    Response::parse(&bytes, false)
        .map(|r| String::from_utf8_lossy(&r.body).to_string())
        .unwrap_or_default()
}

/// The first number after `"key":` in a JSON text (keys are unique enough
/// in /monitor?format=json for tests).
pub fn json_number(json: &str, key: &str) -> f64 {
    let needle = format!("\"{key}\":");
    let at = json
        .find(&needle)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + needle.len();
    json[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

/// A connection to `server` from the local address `from` (127.0.0.2 and
/// the like are all loopback on Linux, so tests can be several clients).
pub fn connect_from(from: std::net::IpAddr, port: u16) -> TcpStream {
    use std::os::fd::FromRawFd;
    let target: SocketAddr = match from {
        std::net::IpAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1], port)),
        std::net::IpAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
    };
    let (domain, local, remote) = match (from, target) {
        (std::net::IpAddr::V4(ip), SocketAddr::V4(remote)) => {
            let local = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from(ip).to_be(),
                },
                sin_zero: [0; 8],
            };
            let remote = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: remote.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*remote.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in is plain old data; the byte copies are its size.
            let bytes = |a: &libc::sockaddr_in| unsafe {
                std::slice::from_raw_parts(
                    (a as *const libc::sockaddr_in).cast::<u8>(),
                    std::mem::size_of::<libc::sockaddr_in>(),
                )
                .to_vec()
            };
            (libc::AF_INET, bytes(&local), bytes(&remote))
        }
        (std::net::IpAddr::V6(ip), SocketAddr::V6(remote)) => {
            let make = |ip: std::net::Ipv6Addr, port: u16| libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: port.to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: ip.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_in6 is plain old data; the byte copies are its size.
            let bytes = |a: &libc::sockaddr_in6| unsafe {
                std::slice::from_raw_parts(
                    (a as *const libc::sockaddr_in6).cast::<u8>(),
                    std::mem::size_of::<libc::sockaddr_in6>(),
                )
                .to_vec()
            };
            (
                libc::AF_INET6,
                bytes(&make(ip, 0)),
                bytes(&make(*remote.ip(), remote.port())),
            )
        }
        _ => unreachable!("the target has the family of `from`"),
    };
    // SAFETY: plain socket calls on a descriptor this function owns; the
    // address buffers are valid sockaddrs of the lengths given.
    unsafe {
        let fd = libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket");
        let stream = TcpStream::from_raw_fd(fd);
        assert_eq!(
            libc::bind(fd, local.as_ptr().cast(), local.len() as libc::socklen_t),
            0,
            "bind to {from}: {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(
            libc::connect(fd, remote.as_ptr().cast(), remote.len() as libc::socklen_t),
            0,
            "connect from {from}: {}",
            std::io::Error::last_os_error()
        );
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream
    }
}

/// Sends `request` (a whole head) on `stream` and reads one response.
pub fn exchange(stream: &mut TcpStream, request: &str, head_only: bool) -> Response {
    stream.write_all(request.as_bytes()).expect("send");
    read_response(stream, head_only)
}

/// GET `target` with `Host: host` from the local address `from`, on a connection closed after.
pub fn get_from(port: u16, from: &str, host: &str, target: &str, headers: &[&str]) -> Response {
    let mut stream = connect_from(from.parse().expect("address"), port);
    let mut text = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).expect("send");
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    Response::parse(&bytes, false).expect("a response")
}

/// Builds the test country database (tests/geoip/generate.sh) and returns its path.
pub fn country_database() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(root.join("tests/geoip/generate.sh"))
        .status()
        .expect("run tests/geoip/generate.sh");
    assert!(status.success(), "tests/geoip/generate.sh failed");
    root.join("tests/geoip/generated/country.mmdb")
}

/// One per-worker family of /metrics (`loomiere_worker_requests_total`,
/// `loomiere_worker_connections`): value by labels, in slot order.
pub fn worker_metric(admin: u16, family: &str) -> std::collections::BTreeMap<String, u64> {
    let prefix = format!("{family}{{");
    admin_get(admin, "/metrics")
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| {
            let (labels, value) = line.rsplit_once(' ')?;
            Some((labels.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Headless Chromium (Debian package `chromium`) on `url`, kept running after
/// the page loads (until killed), with autoplay allowed and its profile in
/// `profile`.
pub fn headless_chromium(url: &str, profile: &TempDir) -> Child {
    headless_chromium_with(url, profile, &[])
}

/// Like `headless_chromium`, with `extra` flags (host mappings, a trusted
/// certificate's key hash).
pub fn headless_chromium_with(url: &str, profile: &TempDir, extra: &[String]) -> Child {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--autoplay-policy=no-user-gesture-required",
            // Keeps the browser running after the page loads.
            "--remote-debugging-port=0",
        ])
        .args(extra)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium (Debian package chromium)")
}

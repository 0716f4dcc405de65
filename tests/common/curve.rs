//! What a player needs and what it got: the byte curve of a media file taken
//! independently of our parsers (ffprobe's packet times and positions), and a
//! client that reads a response as fast as it can while sampling how many
//! body bytes it holds.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bytes a player needs by each media time: (seconds from the first packet,
/// end offset of every packet decoded by then), from `ffprobe -show_packets`.
pub struct NeedCurve {
    points: Vec<(f64, u64)>,
    pub size: u64,
}

impl NeedCurve {
    /// Probes the file at `path` (which must be the body as sent: a seeked
    /// response saved to disk, or the file itself).
    pub fn probe(path: &std::path::Path) -> NeedCurve {
        let output = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "packet=dts_time,pts_time,pos,size",
                "-of",
                "compact=p=0",
            ])
            .arg(path)
            .output()
            .expect("ffprobe");
        assert!(output.status.success(), "ffprobe failed on {path:?}");
        let mut packets: Vec<(f64, u64)> = Vec::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let field = |name: &str| {
                line.split('|')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            };
            let time = field("dts_time")
                .and_then(|v| v.parse::<f64>().ok())
                .or_else(|| field("pts_time").and_then(|v| v.parse::<f64>().ok()));
            let pos = field("pos").and_then(|v| v.parse::<u64>().ok());
            let size = field("size").and_then(|v| v.parse::<u64>().ok());
            if let (Some(time), Some(pos), Some(size)) = (time, pos, size) {
                packets.push((time, pos + size));
            }
        }
        assert!(!packets.is_empty(), "no packets in {path:?}");
        let first = packets.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        packets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut points = Vec::with_capacity(packets.len());
        let mut reached = 0;
        for (time, end) in packets {
            reached = reached.max(end);
            points.push((time - first, reached));
        }
        let size = std::fs::metadata(path).expect("stat").len();
        NeedCurve { points, size }
    }

    /// Bytes needed to play up to `seconds` (the whole file past the end).
    pub fn needed(&self, seconds: f64) -> u64 {
        let after = self.points.partition_point(|p| p.0 <= seconds);
        if after == self.points.len() {
            return self.size;
        }
        after.checked_sub(1).map_or(0, |i| self.points[i].1)
    }

    /// The media time a byte offset reaches: the first time whose need covers it.
    pub fn time_at(&self, offset: u64) -> f64 {
        self.points
            .iter()
            .find(|p| p.1 >= offset)
            .map_or_else(|| self.duration(), |p| p.0)
    }

    pub fn duration(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.0)
    }
}

/// A response being read as fast as the network gives it, in a thread.
pub struct Reader {
    pub status: u16,
    pub content_length: u64,
    /// When the head arrived (the client's view of the stream's start).
    pub started: Instant,
    held: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    socket: TcpStream,
    thread: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Reader {
    /// Sends `GET target` with `headers` to port `port` and starts reading.
    pub fn get(port: u16, target: &str, headers: &[&str]) -> Reader {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut request = format!("GET {target} HTTP/1.1\r\nConnection: close\r\n");
        if !headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("host:"))
        {
            request.push_str("Host: localhost\r\n");
        }
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).expect("send");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).expect("read head");
            assert!(n > 0, "closed mid-head");
            head.push(byte[0]);
        }
        let started = Instant::now();
        let response = super::Response::parse(&head, true).expect("head");
        let content_length = response
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let held = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (counter, finished) = (Arc::clone(&held), Arc::clone(&done));
        let socket = stream.try_clone().expect("clone socket");
        let thread = std::thread::spawn(move || {
            let mut body = Vec::with_capacity(content_length as usize);
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        body.extend_from_slice(&buf[..n]);
                        counter.fetch_add(n as u64, Ordering::Release);
                    }
                }
            }
            finished.store(true, Ordering::Release);
            body
        });
        Reader {
            status: response.status,
            content_length,
            started,
            held,
            done,
            socket,
            thread: Some(thread),
        }
    }

    /// Body bytes received so far.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }

    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Seconds since the head arrived.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Waits until `seconds` after the head arrived.
    pub fn wait_until(&self, seconds: f64) {
        let at = self.started + Duration::from_secs_f64(seconds);
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }

    /// Samples what the client holds every `step` for `span` seconds:
    /// (elapsed seconds, bytes held).
    pub fn sample(&self, step: f64, span: f64) -> Vec<(f64, u64)> {
        let mut samples = Vec::new();
        let mut at = step;
        while at <= span + 1e-9 {
            self.wait_until(at);
            samples.push((self.elapsed(), self.held()));
            at += step;
        }
        samples
    }

    /// Leaves like a player that quits: closes the connection mid-body.
    /// Returns the bytes received.
    pub fn hang_up(mut self) -> u64 {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.held()
    }

    /// Reads to the end and returns the whole body.
    pub fn finish(mut self) -> Vec<u8> {
        self.thread
            .take()
            .expect("reader thread")
            .join()
            .expect("reader")
    }
}

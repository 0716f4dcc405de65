//! Simulated players for the bandwidth benchmark (`benches/players.sh`).
//!
//! Opens `--count` connections to one URL, each behaving like a media
//! player: it reads whatever the network gives into its buffer and plays it
//! out at the media's own rate, using a map of media time to the bytes needed
//! to play up to it (taken with ffprobe, never from the server). It starts
//! playing once `--startup` seconds are buffered, stalls when the play head
//! reaches bytes it does not hold yet, and resumes once a second more is in.
//! Players numbered below `--quitters` leave after `--quit-after` seconds.
//! The last `--pausers` players pause once, `--pause-at` seconds after they
//! connect, for `--pause-for` seconds. With `--hints 1` every player adds a
//! stream key to its URL and reports its position to `/.hint` as Loomiere's
//! hint.js does (once a second playing, every 5 s paused, at once on pause
//! and resume), through a reporter thread.
//! At the end it prints one `key value` line per figure, for the script to sum.
//!
//!   players --port P --path /film.mp4 --curve need.txt --count N
//!           [--quit-after 60 --quitters N] [--run-for 90] [--startup 2]
//!           [--pausers N --pause-at 20 --pause-for 60] [--hints 1]
//!           [--source 127.0.0.N] [--connect-rate N]
//!
//! `--source` binds every player's socket to that local address first: one
//! address has one ephemeral-port range (about 28 000 ports), so the scale
//! benchmark gives each process its own address in 127.0.0.0/8.
//! `--connect-rate` opens at most that many connections a second (default:
//! a few hundred per loop turn): each new player takes a lead's burst, and
//! 100 000 of them at once overflow the listen queues and the kernel's TCP
//! memory, which is not what a server meets when viewers arrive.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Media time played once a stall ends: a player rebuffers a little before going on.
const RESUME_SECS: f64 = 1.0;
/// How often every player's play head is re-evaluated between reads.
const TICK: Duration = Duration::from_millis(100);
/// Connections opened per loop turn while ramping up, so the listen queues keep up.
const CONNECTS_PER_TURN: usize = 200;

struct Settings {
    port: u16,
    path: String,
    curve: Curve,
    count: usize,
    quitters: usize,
    quit_after: f64,
    run_for: f64,
    startup: f64,
    pausers: usize,
    pause_at: f64,
    pause_for: f64,
    hints: bool,
    /// The local address players connect from; None lets the kernel choose.
    source: Option<std::net::IpAddr>,
    /// Most new connections a second; 0 = `CONNECTS_PER_TURN` each turn.
    connect_rate: f64,
}

/// Reports while playing and while paused, as hint.js sends them.
const REPORT_PLAYING: Duration = Duration::from_secs(1);
const REPORT_PAUSED: Duration = Duration::from_secs(5);

/// Where a pausing player is in its one pause.
#[derive(Clone, Copy, PartialEq)]
enum Pause {
    Never,
    Before,
    Since(Instant),
    After,
}

/// Media seconds → bytes needed to play up to them.
struct Curve {
    points: Vec<(f64, u64)>,
}

impl Curve {
    fn load(path: &str) -> io::Result<Curve> {
        let text = std::fs::read_to_string(path)?;
        let mut points: Vec<(f64, u64)> = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
            })
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        if points.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "empty curve"));
        }
        Ok(Curve { points })
    }

    fn needed(&self, seconds: f64) -> u64 {
        let after = self.points.partition_point(|p| p.0 <= seconds);
        after.checked_sub(1).map_or(0, |i| self.points[i].1)
    }

    /// The furthest media time that `bytes` let a player reach.
    fn reach(&self, bytes: u64) -> f64 {
        let after = self.points.partition_point(|p| p.1 <= bytes);
        match self.points.get(after) {
            Some(point) => point.0,
            None => f64::INFINITY,
        }
    }

    fn duration(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.0)
    }
}

#[derive(PartialEq)]
enum State {
    Connecting,
    Head,
    /// Buffering before playback starts.
    Starting,
    Playing,
    Stalled,
    Done,
}

struct Player {
    stream: TcpStream,
    state: State,
    head: Vec<u8>,
    body_length: Option<u64>,
    received: u64,
    started: Instant,
    /// Media time played and the wall time it was last advanced.
    position: f64,
    advanced_at: Instant,
    stalled_since: Option<Instant>,
    stalls: u64,
    stalled_for: Duration,
    quits: bool,
    pause: Pause,
    /// Stalls after the pause ended: what a hinted stream must not cause.
    stalls_after_pause: u64,
    /// The stream key (with --hints) and when the last report went.
    key: Option<String>,
    reported_at: Option<Instant>,
}

impl Player {
    fn all_in(&self) -> bool {
        self.body_length
            .is_some_and(|length| self.received >= length)
    }

    /// Moves the play head to `now`; starts, stalls and resumes.
    fn play(&mut self, now: Instant, curve: &Curve, startup: f64) {
        if let Pause::Since(_) = self.pause {
            // Paused: the play head holds still.
            self.advanced_at = now;
            return;
        }
        match self.state {
            State::Starting if self.all_in() || self.received >= curve.needed(startup) => {
                self.state = State::Playing;
                self.advanced_at = now;
            }
            State::Playing => {
                let wanted = self.position + (now - self.advanced_at).as_secs_f64();
                let reach = if self.all_in() {
                    f64::INFINITY
                } else {
                    curve.reach(self.received)
                };
                if wanted <= reach || wanted >= curve.duration() {
                    self.position = wanted.min(curve.duration());
                    self.advanced_at = now;
                } else {
                    // The data ran out at `reach`: the stall began then.
                    let ran_out = self.advanced_at
                        + Duration::from_secs_f64((reach - self.position).max(0.0));
                    self.position = reach.max(self.position);
                    self.state = State::Stalled;
                    self.stalls += 1;
                    if self.pause == Pause::After {
                        self.stalls_after_pause += 1;
                    }
                    self.stalled_since = Some(ran_out.min(now));
                }
            }
            State::Stalled
                if self.all_in() || self.received >= curve.needed(self.position + RESUME_SECS) =>
            {
                if let Some(since) = self.stalled_since.take() {
                    self.stalled_for += now.saturating_duration_since(since);
                }
                self.state = State::Playing;
                self.advanced_at = now;
            }
            _ => {}
        }
    }

    /// Ends an open stall at `now` (for the report).
    fn close_stall(&mut self, now: Instant) {
        if let Some(since) = self.stalled_since.take() {
            self.stalled_for += now.saturating_duration_since(since);
        }
    }
}

fn main() {
    let settings = match parse_args() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("players: {message}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&settings) {
        eprintln!("players: {e}");
        std::process::exit(1);
    }
}

fn parse_args() -> Result<Settings, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut values: HashMap<String, String> = HashMap::new();
    for pair in args.chunks(2) {
        match pair {
            [flag, value] if flag.starts_with("--") => {
                values.insert(flag[2..].to_string(), value.clone());
            }
            _ => return Err(format!("unexpected arguments {pair:?}")),
        }
    }
    let get = |name: &str| values.get(name).cloned();
    let number = |name: &str, default: f64| -> Result<f64, String> {
        get(name).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("--{name}: not a number"))
        })
    };
    let curve_path = get("curve").ok_or("--curve is required")?;
    Ok(Settings {
        port: number("port", 0.0)? as u16,
        path: get("path").ok_or("--path is required")?,
        curve: Curve::load(&curve_path).map_err(|e| format!("{curve_path}: {e}"))?,
        count: number("count", 1.0)? as usize,
        quitters: number("quitters", 0.0)? as usize,
        quit_after: number("quit-after", f64::INFINITY)?,
        run_for: number("run-for", 60.0)?,
        startup: number("startup", 2.0)?,
        pausers: number("pausers", 0.0)? as usize,
        pause_at: number("pause-at", 20.0)?,
        pause_for: number("pause-for", 60.0)?,
        hints: number("hints", 0.0)? != 0.0,
        connect_rate: number("connect-rate", 0.0)?,
        source: get("source")
            .map(|v| v.parse().map_err(|_| format!("--source: not an IP address: {v}")))
            .transpose()?,
    })
}

fn run(settings: &Settings) -> io::Result<()> {
    let address: SocketAddr = ([127, 0, 0, 1], settings.port).into();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(4096);
    let mut players: Vec<Player> = Vec::with_capacity(settings.count);
    let (reports, reporter) = start_reporter(address);
    let began = Instant::now();
    let end = began + Duration::from_secs_f64(settings.run_for);
    let mut scratch = vec![0u8; 256 * 1024];
    let mut next_tick = began + TICK;
    let mut refused = 0u64;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        // Ramp up a few hundred connections per turn.
        let due = if settings.connect_rate > 0.0 {
            ((now - began).as_secs_f64() * settings.connect_rate) as usize + 1
        } else {
            usize::MAX
        };
        for _ in 0..CONNECTS_PER_TURN {
            if players.len() >= settings.count.min(due) {
                break;
            }
            let mut stream = connect(address, settings.source)?;
            let index = players.len();
            let token = Token(index);
            poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            )?;
            players.push(Player {
                stream,
                state: State::Connecting,
                head: Vec::new(),
                body_length: None,
                received: 0,
                started: now,
                position: 0.0,
                advanced_at: now,
                stalled_since: None,
                stalls: 0,
                stalled_for: Duration::ZERO,
                quits: index < settings.quitters,
                pause: if index + settings.pausers >= settings.count {
                    Pause::Before
                } else {
                    Pause::Never
                },
                stalls_after_pause: 0,
                key: settings
                    .hints
                    .then(|| format!("bench-{:08}-{index:08}", std::process::id())),
                reported_at: None,
            });
        }
        let mut wait = next_tick.saturating_duration_since(now).min(end - now);
        if settings.connect_rate > 0.0 && players.len() < settings.count {
            wait = wait.min(Duration::from_millis(10)); // ramp smoothly
        }
        poll.poll(&mut events, Some(wait))?;
        let now = Instant::now();
        for event in events.iter() {
            let Some(player) = players.get_mut(event.token().0) else {
                continue;
            };
            if player.state == State::Connecting && event.is_writable() {
                if player.stream.peer_addr().is_err() {
                    refused += 1;
                    player.state = State::Done;
                    continue;
                }
                let target = match &player.key {
                    Some(key) => format!("{}?hint={key}", settings.path),
                    None => settings.path.clone(),
                };
                let request = format!(
                    "GET {target} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: loomiere-players\r\n\r\n"
                );
                player.stream.write_all(request.as_bytes())?;
                player.state = State::Head;
            }
            if event.is_readable() || event.is_read_closed() {
                read_all(player, &mut scratch, now, settings);
            }
        }
        if now >= next_tick {
            next_tick = now + TICK;
            for player in &mut players {
                if player.quits
                    && player.state != State::Done
                    && (now - player.started).as_secs_f64() >= settings.quit_after
                {
                    player.close_stall(now);
                    player.state = State::Done;
                    let _ = poll.registry().deregister(&mut player.stream);
                    let _ = player.stream.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                pause_or_resume(player, now, settings);
                player.play(now, &settings.curve, settings.startup);
                send_report(player, now, &reports);
            }
        }
    }
    let now = Instant::now();
    drop(reports);
    let (reports_ok, reports_failed) = reporter.join().unwrap_or((0, 0));
    report(&mut players, settings, now, refused);
    println!("reports_ok {reports_ok}");
    println!("reports_failed {reports_failed}");
    Ok(())
}

/// Starts or ends a pausing player's pause.
fn pause_or_resume(player: &mut Player, now: Instant, settings: &Settings) {
    match player.pause {
        Pause::Before
            if player.state == State::Playing
                && (now - player.started).as_secs_f64() >= settings.pause_at =>
        {
            player.play(now, &settings.curve, settings.startup);
            player.pause = Pause::Since(now);
            player.reported_at = None;
        }
        Pause::Since(since) if (now - since).as_secs_f64() >= settings.pause_for => {
            player.pause = Pause::After;
            player.advanced_at = now;
            player.reported_at = None;
        }
        _ => {}
    }
}

/// Queues a report when one is due (never before playback starts).
fn send_report(player: &mut Player, now: Instant, reports: &mpsc::Sender<String>) {
    let Some(key) = &player.key else { return };
    let paused = matches!(player.pause, Pause::Since(_));
    let playing = matches!(player.state, State::Playing | State::Stalled);
    // As hint.js does, no reports once the whole body has arrived: the
    // server follows no stream for the key then.
    if player.state == State::Done || !(playing || paused) || player.all_in() {
        return;
    }
    let every = if paused { REPORT_PAUSED } else { REPORT_PLAYING };
    if player.reported_at.is_some_and(|at| now - at < every) {
        return;
    }
    player.reported_at = Some(now);
    let _ = reports.send(format!(
        "/.hint?key={key}&t={:.3}&paused={}",
        player.position,
        u8::from(paused)
    ));
}

/// A non-blocking connection to `address`, from `source` when given.
fn connect(address: SocketAddr, source: Option<std::net::IpAddr>) -> io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(address);
    };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    match socket.connect(&address.into()) {
        Ok(()) => {}
        // EINPROGRESS (115 on Linux): the handshake goes on; poll says when it is done.
        Err(e) if e.raw_os_error() == Some(115) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// A thread that sends the reports over one keep-alive connection, as fast
/// as they come; it returns how many were answered 204 and how many not.
fn start_reporter(
    address: SocketAddr,
) -> (mpsc::Sender<String>, std::thread::JoinHandle<(u64, u64)>) {
    let (sender, receiver) = mpsc::channel::<String>();
    let thread = std::thread::spawn(move || {
        let (mut ok, mut failed) = (0u64, 0u64);
        let mut connection: Option<std::io::BufReader<std::net::TcpStream>> = None;
        for target in receiver {
            let answered = (|| -> io::Result<bool> {
                if connection.is_none() {
                    let stream = std::net::TcpStream::connect(address)?;
                    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                    connection = Some(std::io::BufReader::new(stream));
                }
                let Some(reader) = connection.as_mut() else {
                    return Ok(false);
                };
                reader.get_mut().write_all(
                    format!("POST {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
                        .as_bytes(),
                )?;
                let mut status = 0;
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if io::BufRead::read_line(reader, &mut line)? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(rest) = line.strip_prefix("HTTP/1.1 ") {
                        status = rest.get(..3).and_then(|s| s.parse().ok()).unwrap_or(0);
                    } else if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body)?;
                Ok(status == 204)
            })();
            match answered {
                Ok(true) => ok += 1,
                Ok(false) => failed += 1,
                Err(_) => {
                    failed += 1;
                    connection = None;
                }
            }
        }
        (ok, failed)
    });
    (sender, thread)
}

/// Reads everything the socket holds; the bytes themselves are discarded.
fn read_all(player: &mut Player, scratch: &mut [u8], now: Instant, settings: &Settings) {
    loop {
        match player.stream.read(scratch) {
            Ok(0) => {
                player.close_stall(now);
                if player.state != State::Done && !player.all_in() {
                    player.stalls += 1; // cut off before the end of the body
                }
                player.state = State::Done;
                return;
            }
            Ok(n) => {
                let mut body = &scratch[..n];
                if player.state == State::Head {
                    player.head.extend_from_slice(body);
                    let Some(end) = player.head.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    player.body_length = content_length(&player.head[..end]);
                    let extra = player.head.len() - end - 4;
                    player.received = extra as u64;
                    player.head = Vec::new();
                    player.state = State::Starting;
                    body = &[];
                }
                player.received += body.len() as u64;
                player.play(now, &settings.curve, settings.startup);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                player.close_stall(now);
                if !player.all_in() {
                    player.stalls += 1; // reset before the end of the body
                }
                player.state = State::Done;
                return;
            }
        }
    }
}

fn content_length(head: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(head);
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
}

fn report(players: &mut [Player], settings: &Settings, now: Instant, refused: u64) {
    for player in players.iter_mut() {
        player.play(now, &settings.curve, settings.startup);
        player.close_stall(now);
    }
    let stayed: Vec<&Player> = players.iter().filter(|p| !p.quits).collect();
    let quit: Vec<&Player> = players.iter().filter(|p| p.quits).collect();
    let sum = |list: &[&Player]| list.iter().map(|p| p.received).sum::<u64>();
    let max = |list: &[&Player]| list.iter().map(|p| p.received).max().unwrap_or(0);
    println!("players {}", players.len());
    println!("refused {refused}");
    println!(
        "never_started {}",
        players
            .iter()
            .filter(|p| matches!(p.state, State::Connecting | State::Head | State::Starting))
            .count()
    );
    println!(
        "held {}",
        players
            .iter()
            .filter(|p| matches!(p.state, State::Playing | State::Stalled))
            .count()
    );
    println!("stalls {}", players.iter().map(|p| p.stalls).sum::<u64>());
    println!(
        "stalled_players {}",
        players.iter().filter(|p| p.stalls > 0).count()
    );
    println!(
        "stall_seconds {:.3}",
        players
            .iter()
            .map(|p| p.stalled_for.as_secs_f64())
            .sum::<f64>()
    );
    println!("stayed {}", stayed.len());
    println!("stayed_bytes {}", sum(&stayed));
    println!("stayed_bytes_max {}", max(&stayed));
    println!("quit {}", quit.len());
    println!("quit_bytes {}", sum(&quit));
    println!("quit_bytes_max {}", max(&quit));
    println!(
        "position_seconds {:.3}",
        players.iter().map(|p| p.position).sum::<f64>()
    );
    let pausers: Vec<&Player> = players.iter().filter(|p| p.pause != Pause::Never).collect();
    println!("pausers {}", pausers.len());
    println!("pauser_bytes {}", sum(&pausers));
    println!(
        "pausers_resumed {}",
        pausers.iter().filter(|p| p.pause == Pause::After).count()
    );
    println!(
        "stalls_after_pause {}",
        pausers.iter().map(|p| p.stalls_after_pause).sum::<u64>()
    );
}

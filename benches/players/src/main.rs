//! Simulated players for the bandwidth benchmark (`benches/players.sh`).
//!
//! Opens `--count` connections to one URL, each behaving like a media
//! player: it reads whatever the network gives into its buffer and plays it
//! out at the media's own rate, using a map of media time to the bytes needed
//! to play up to it (taken with ffprobe, never from the server). It starts
//! playing once `--startup` seconds are buffered, stalls when the play head
//! reaches bytes it does not hold yet, and resumes once a second more is in.
//! Players numbered below `--quitters` leave after `--quit-after` seconds.
//! At the end it prints one `key value` line per figure, for the script to sum.
//!
//!   players --port P --path /film.mp4 --curve need.txt --count N
//!           [--quit-after 60 --quitters N] [--run-for 90] [--startup 2]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
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
}

impl Player {
    fn all_in(&self) -> bool {
        self.body_length
            .is_some_and(|length| self.received >= length)
    }

    /// Moves the play head to `now`; starts, stalls and resumes.
    fn play(&mut self, now: Instant, curve: &Curve, startup: f64) {
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
    })
}

fn run(settings: &Settings) -> io::Result<()> {
    let address: SocketAddr = ([127, 0, 0, 1], settings.port).into();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(4096);
    let mut players: Vec<Player> = Vec::with_capacity(settings.count);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: loomiere-players\r\n\r\n",
        settings.path
    );
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
        for _ in 0..CONNECTS_PER_TURN {
            if players.len() >= settings.count {
                break;
            }
            let mut stream = TcpStream::connect(address)?;
            let token = Token(players.len());
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
                quits: players.len() < settings.quitters,
            });
        }
        let wait = next_tick.saturating_duration_since(now).min(end - now);
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
                player.play(now, &settings.curve, settings.startup);
            }
        }
    }
    let now = Instant::now();
    report(&mut players, settings, now, refused);
    Ok(())
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
}

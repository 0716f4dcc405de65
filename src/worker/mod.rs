//! A worker process: one mio readiness loop over its listening socket, its
//! connections, its signals and its timer wheel. Nothing in it blocks.
//!
//! Layer: the request pipeline over every module below it; imports neither
//! `master` nor `monitor`.

mod access_log;
pub mod connection;
pub mod context;
mod file_head;
mod hint_urls;
mod https;
mod packaged;
mod packaged_answer;
mod packaged_set;
mod representation;
pub mod respond;
pub mod site;
mod subtitle_files;
pub mod timer_wheel;
mod transport;

use std::cell::Cell;
use std::io;
use std::net::TcpListener as StdTcpListener;
use std::os::fd::AsRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::access::limits::{Admission, LimitsRegion};
use crate::cache::MediaCache;
use crate::files::OpenFiles;
use crate::http::date::DateCache;
use crate::options::KernelTls;
use crate::stats::{Globals, StatsSlot};
use crate::sys::signals;
use crate::tls::TlsSession;
use connection::{Connection, Next};
use context::Caches;
pub use site::Site;
use timer_wheel::TimerWheel;
use transport::Transport;

/// The plain-HTTP listener's token; the HTTPS one's is the next.
const LISTENER: Token = Token(0);
const TLS_LISTENER: Token = Token(1);
const SIGNALS: Token = Token(2);
/// Connection tokens start here; token = index + FIRST_CONNECTION.
const FIRST_CONNECTION: usize = 3;
/// The worker's buffer for file bytes on their way into TLS records.
const TLS_BUFFER_BYTES: usize = 64 * 1024;
/// Timer key that resumes accepting after running out of file descriptors.
const RESUME_ACCEPT: usize = usize::MAX;
/// Timer key that cuts what is still streaming when `drain_timeout` ends.
const DRAIN_DEADLINE: usize = usize::MAX - 1;
/// How long to stop accepting when the process has no descriptor left.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Size of the read scratch buffer shared by every connection of a worker.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Longest sleep of an idle loop: each turn stamps the heartbeat the
/// master's watchdog reads, so even an idle worker turns this often.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// The shared memory a worker writes into.
pub struct Shared {
    /// The index of `slot`, which also names its sketch in `limits`.
    pub slot_index: usize,
    pub slot: &'static StatsSlot,
    pub globals: &'static Globals,
    pub limits: &'static LimitsRegion,
    /// The master's process id, to tell its death from an ordinary SIGTERM.
    pub master: libc::pid_t,
}

/// Time-outs, read once from the options.
pub struct Timeouts {
    pub header: Duration,
    pub keepalive: Duration,
    pub send: Duration,
}

/// What connections share inside one worker: configuration, clocks, buffers, counters.
pub struct Env {
    pub site: Site,
    pub timeouts: Timeouts,
    pub slot: &'static StatsSlot,
    pub globals: &'static Globals,
    pub limits: &'static LimitsRegion,
    pub slot_index: usize,
    pub now: Instant,
    pub unix_now: i64,
    pub dates: DateCache,
    pub scratch: Box<[u8]>,
    /// File bytes on their way into TLS records (empty without HTTPS).
    pub tls_buffer: Box<[u8]>,
    /// Whether new HTTPS connections go to kernel TLS after their handshake
    /// (`options.tls.kernel = 'auto'` and the kernel has the `tls` module;
    /// off for good once the kernel refuses a connection's keys).
    pub kernel_tls: Cell<bool>,
    pub access_log: Vec<u8>,
    pub draining: bool,
    pub caches: Caches,
    /// Connections that stopped to let others run and want another turn.
    pub ready: Vec<usize>,
    /// The last stream's phase (see `next_phase`).
    phase: f64,
}

impl Env {
    /// Where in its period the next stream wakes, from 0 to 1: the golden-ratio
    /// sequence, so that however many streams start at once, their wake-ups
    /// spread evenly over the period instead of landing in one timer tick.
    pub fn next_phase(&mut self) -> f64 {
        const GOLDEN_RATIO_FRACTION: f64 = 0.618_033_988_749_894_9;
        self.phase = (self.phase + GOLDEN_RATIO_FRACTION).fract();
        self.phase
    }
}

/// The loop and everything it owns.
struct Worker {
    poll: Poll,
    /// The plain-HTTP and the HTTPS listener (by token), while accepting.
    listeners: [Option<TcpListener>; 2],
    signals: SignalFd,
    connections: Vec<Option<Connection>>,
    free: Vec<usize>,
    wheel: TimerWheel,
    env: Env,
    open: usize,
    master: libc::pid_t,
}

/// A worker's listening sockets: plain HTTP, HTTPS, or both.
pub struct Listeners {
    pub plain: Option<StdTcpListener>,
    pub tls: Option<StdTcpListener>,
}

/// Runs a worker until it has drained after SIGTERM (returns 0) or is told to quit.
pub fn run(listeners: Listeners, mut site: Site, shared: Shared) -> io::Result<i32> {
    if let Some(route_lua) = site.route_lua.as_mut() {
        route_lua.report_to(&shared.slot.heartbeat);
    }
    let poll = Poll::new()?;
    let mut watched = [None, None];
    for (token, listener) in [(LISTENER, listeners.plain), (TLS_LISTENER, listeners.tls)] {
        if let Some(listener) = listener {
            let mut listener = TcpListener::from_std(listener);
            poll.registry()
                .register(&mut listener, token, Interest::READABLE)?;
            watched[token.0] = Some(listener);
        }
    }
    let tls_buffer_bytes = if site.tls.is_some() {
        TLS_BUFFER_BYTES
    } else {
        0
    };
    let kernel_tls = site
        .tls
        .as_ref()
        .is_some_and(|tls| tls.kernel == KernelTls::Auto)
        && crate::sys::ktls::available();
    let signals = SignalFd::with_flags(
        &signals::handled_set(),
        SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    poll.registry().register(
        &mut SourceFd(&signals.as_raw_fd()),
        SIGNALS,
        Interest::READABLE,
    )?;
    let now = Instant::now();
    let options = &site.options;
    let cache_mb = options.cache;
    let timeouts = Timeouts {
        header: Duration::from_secs_f64(options.header_timeout),
        keepalive: Duration::from_secs_f64(options.keepalive_timeout),
        send: Duration::from_secs_f64(options.send_timeout),
    };
    let mut worker = Worker {
        poll,
        listeners: watched,
        signals,
        connections: Vec::new(),
        free: Vec::new(),
        wheel: TimerWheel::new(now),
        env: Env {
            site,
            timeouts,
            slot: shared.slot,
            globals: shared.globals,
            limits: shared.limits,
            slot_index: shared.slot_index,
            now,
            unix_now: crate::sys::unix_now(),
            dates: DateCache::default(),
            scratch: vec![0u8; READ_CHUNK_BYTES].into_boxed_slice(),
            tls_buffer: vec![0u8; tls_buffer_bytes].into_boxed_slice(),
            kernel_tls: Cell::new(kernel_tls),
            access_log: Vec::with_capacity(64 * 1024),
            draining: false,
            caches: Caches {
                open_files: OpenFiles::default(),
                media: MediaCache::new(cache_mb),
                stream_serial: 0,
            },
            ready: Vec::new(),
            phase: 0.0,
        },
        open: 0,
        master: shared.master,
    };
    worker.run()
}

impl Worker {
    fn run(&mut self) -> io::Result<i32> {
        let mut events = Events::with_capacity(1024);
        let mut due = Vec::new();
        let mut ready = Vec::new();
        loop {
            let timeout = if self.env.ready.is_empty() {
                self.wheel
                    .next_wait(Instant::now())
                    .map_or(HEARTBEAT_EVERY, |wait| wait.min(HEARTBEAT_EVERY))
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(e);
            }
            // One turn of the loop handles at most `events`' capacity of
            // events, each with non-blocking I/O, at most one route function
            // per request (bounded by its own limits) and at most one index
            // parse; so a turn is short and the beat fresh (see the watchdog).
            self.env.slot.heartbeat.beat(crate::sys::monotonic_micros());
            self.env.now = Instant::now();
            self.env.unix_now = crate::sys::unix_now();
            for event in events.iter() {
                match event.token() {
                    LISTENER | TLS_LISTENER => self.accept_all(event.token()),
                    SIGNALS => {
                        if let Some(code) = self.take_signals() {
                            access_log::flush(&mut self.env.access_log);
                            return Ok(code);
                        }
                    }
                    Token(token) => {
                        let index = token - FIRST_CONNECTION;
                        if (event.is_readable() || event.is_read_closed() || event.is_error())
                            && let Some(Some(connection)) = self.connections.get_mut(index)
                        {
                            connection.readable();
                        }
                        self.drive(index);
                    }
                }
            }
            std::mem::swap(&mut ready, &mut self.env.ready);
            for index in ready.drain(..) {
                self.drive(index);
            }
            self.wheel.expire(self.env.now, &mut due);
            for key in due.drain(..) {
                self.on_timer(key);
            }
            if !self.env.access_log.is_empty() {
                access_log::flush(&mut self.env.access_log);
            }
            if self.env.draining && self.open == 0 {
                return Ok(0);
            }
        }
    }

    fn accept_all(&mut self, listener: Token) {
        loop {
            let Some(Some(socket)) = self.listeners.get(listener.0) else {
                return;
            };
            match socket.accept() {
                Ok((stream, peer)) => self.admit(stream, peer, listener == TLS_LISTENER),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOMEM)
                    ) =>
                {
                    // The pending connection stays queued; edge-triggered readiness will not
                    // report it again, so a timer retries.
                    log::warn!(
                        "accept: {e}; retrying in {ACCEPT_PAUSE:?} (raise the open files limit or lower 'clients')"
                    );
                    self.wheel
                        .insert(self.env.now + ACCEPT_PAUSE, RESUME_ACCEPT);
                    return;
                }
                Err(e) => {
                    log::warn!("accept: {e}");
                    return;
                }
            }
        }
    }

    /// Takes a new connection in, or answers 503 when `clients` is reached,
    /// or 429 (or nothing, under a flood) past `options.limits`.
    fn admit(&mut self, stream: mio::net::TcpStream, peer: std::net::SocketAddr, tls: bool) {
        let admission = match &self.env.site.limits {
            Some(settings) => self.env.limits.admit(
                settings,
                self.env.slot_index,
                self.env.globals.slots_used.load(Ordering::Relaxed) as usize,
                peer.ip(),
                crate::sys::monotonic_micros(),
            ),
            None => Admission::Free,
        };
        if admission == Admission::Flood {
            StatsSlot::add(&self.env.slot.limited, 1);
            // Dropping the socket closes it: no answer, no log line.
            return;
        }
        // TCP_NODELAY comes from the listening socket (see sys::socket::listen).
        let transport = if tls {
            let session = self.env.site.tls.as_ref().map(|site| {
                if self.env.kernel_tls.get() {
                    TlsSession::new_kernel(&site.config)
                } else {
                    TlsSession::new(&site.config)
                }
            });
            match session {
                Some(Ok(session)) => Transport::tls(stream, session),
                failed => {
                    if let Some(Err(e)) = failed {
                        log::warn!("cannot start a TLS session: {e}");
                    }
                    if let Admission::Counted(key) = admission {
                        self.env.limits.release(self.env.slot_index, key);
                    }
                    return;
                }
            }
        } else {
            Transport::plain(stream)
        };
        let limit = self.env.site.options.clients as i64;
        let active = self
            .env
            .globals
            .clients_active
            .fetch_add(1, Ordering::AcqRel);
        let connection = if active >= limit {
            self.env
                .globals
                .clients_active
                .fetch_sub(1, Ordering::AcqRel);
            if let Admission::Counted(key) = admission {
                self.env.limits.release(self.env.slot_index, key);
            }
            StatsSlot::add(&self.env.slot.overloads, 1);
            if tls {
                // A 503 cannot be sent before a handshake: the socket just closes.
                return;
            }
            Connection::overloaded(transport, peer, &mut self.env)
        } else {
            if transport.session().is_some() {
                StatsSlot::add(&self.env.slot.tls_total, 1);
                StatsSlot::add(&self.env.slot.tls_active, 1);
            }
            StatsSlot::add(&self.env.slot.connections_total, 1);
            StatsSlot::add(&self.env.slot.connections_active, 1);
            match admission {
                Admission::Refused(limited) => {
                    StatsSlot::add(&self.env.slot.limited, 1);
                    Connection::limited(transport, peer, limited, &self.env)
                }
                Admission::Counted(key) => {
                    let mut connection = Connection::new(transport, peer, &self.env);
                    connection.client_key = Some(key);
                    connection
                }
                Admission::Free | Admission::Flood => Connection::new(transport, peer, &self.env),
            }
        };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.connections.push(None);
                self.connections.len() - 1
            }
        };
        self.connections[index] = Some(connection);
        self.open += 1;
        // With TCP_DEFER_ACCEPT the request is usually here already: it is
        // answered before the socket is watched, so a connection done in this
        // turn (a request with `Connection: close`) never costs an epoll_ctl.
        // Edge-triggered epoll reports what is ready when a socket is added,
        // so nothing that arrives in between is missed.
        self.drive(index);
        let Some(Some(connection)) = self.connections.get_mut(index) else {
            return; // closed already
        };
        let token = Token(index + FIRST_CONNECTION);
        if let Err(e) = self.poll.registry().register(
            &mut connection.transport.socket,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log::warn!("cannot watch a new connection: {e}");
            self.close(index);
        }
    }

    /// Runs a connection's state machine and acts on the result.
    fn drive(&mut self, index: usize) {
        let Some(Some(connection)) = self.connections.get_mut(index) else {
            return;
        };
        // A bug in one request must not take the worker's other connections
        // down with it: the panicking connection is closed, the loop goes on.
        let env = &mut self.env;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| connection.drive(index, env)));
        match outcome {
            Ok(Next::Wait) => self.arm_timer(index),
            Ok(Next::Close) => self.close(index),
            Err(_) => {
                log::error!(
                    "a request handler panicked; its connection was closed (please report this bug)"
                );
                self.close(index);
            }
        }
    }

    fn on_timer(&mut self, key: usize) {
        if key == RESUME_ACCEPT {
            self.accept_all(LISTENER);
            self.accept_all(TLS_LISTENER);
            return;
        }
        if key == DRAIN_DEADLINE {
            self.cut_all();
            return;
        }
        let Some(Some(connection)) = self.connections.get_mut(key) else {
            return;
        };
        connection.timer = None;
        if connection.deadline > self.env.now {
            self.arm_timer(key);
            return;
        }
        match connection.on_deadline(key, &mut self.env) {
            Next::Wait => self.arm_timer(key),
            Next::Close => self.close(key),
        }
    }

    /// Makes sure the connection's timer matches its current deadline.
    fn arm_timer(&mut self, index: usize) {
        let Some(Some(connection)) = self.connections.get_mut(index) else {
            return;
        };
        match connection.timer {
            Some((_, armed)) if armed == connection.deadline => {}
            Some((id, _)) => {
                self.wheel.cancel(id);
                connection.timer = Some((
                    self.wheel.insert(connection.deadline, index),
                    connection.deadline,
                ));
            }
            None => {
                connection.timer = Some((
                    self.wheel.insert(connection.deadline, index),
                    connection.deadline,
                ))
            }
        }
    }

    fn close(&mut self, index: usize) {
        let Some(slot) = self.connections.get_mut(index) else {
            return;
        };
        let Some(mut connection) = slot.take() else {
            return;
        };
        if let Some((id, _)) = connection.timer.take() {
            self.wheel.cancel(id);
        }
        // No epoll_ctl(DEL): closing the socket (dropped with the
        // connection below, never duplicated) takes it out of the epoll set.
        connection.end_stream(self.env.slot);
        self.release(connection);
        self.free.push(index);
        self.open -= 1;
    }

    /// The drain deadline: every response still in flight is cut, logged as
    /// it stands, and the worker exits once they are closed.
    fn cut_all(&mut self) {
        let open: Vec<usize> = (0..self.connections.len())
            .filter(|&i| self.connections[i].is_some())
            .collect();
        if !open.is_empty() {
            log::info!(
                "worker {}: drain_timeout reached; cutting {} connections",
                std::process::id(),
                open.len()
            );
        }
        for index in open {
            if let Some(Some(connection)) = self.connections.get_mut(index) {
                connection.cut(&mut self.env);
            }
            self.close(index);
        }
    }

    /// Gives back what a connection held in the shared counters.
    fn release(&mut self, connection: Connection) {
        if connection.transport.session().is_some() {
            self.env.slot.tls_active.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(key) = connection.client_key {
            self.env.limits.release(self.env.slot_index, key);
        }
        if connection.counted {
            self.env
                .globals
                .clients_active
                .fetch_sub(1, Ordering::AcqRel);
            self.env
                .slot
                .connections_active
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Reads pending signals. Returns an exit code when the worker must stop now.
    fn take_signals(&mut self) -> Option<i32> {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match info.ssi_signo as libc::c_int {
                // Stopping: in-flight responses get drain_timeout, then are cut.
                libc::SIGTERM | libc::SIGINT => {
                    if !crate::sys::parent_is(self.master) {
                        log::warn!(
                            "worker {}: the master process is gone; no new connections, in-flight responses finish, then it exits",
                            std::process::id()
                        );
                    }
                    let grace = self.env.site.options.drain_timeout;
                    self.start_draining(Some(Duration::from_secs_f64(grace)));
                }
                // Retired by a reload: streams go on to their end.
                libc::SIGHUP => self.start_draining(None),
                libc::SIGQUIT => return Some(0),
                _ => {}
            }
        }
        None
    }

    /// Stops accepting and lets in-flight responses finish (until `deadline`
    /// from now, when given); idle connections close now.
    fn start_draining(&mut self, deadline: Option<Duration>) {
        if let Some(deadline) = deadline {
            // A retired worker told to stop later gets its deadline then.
            self.wheel.insert(self.env.now + deadline, DRAIN_DEADLINE);
        }
        if self.env.draining {
            return;
        }
        self.env.draining = true;
        for listener in &mut self.listeners {
            if let Some(mut socket) = listener.take() {
                let _ = self.poll.registry().deregister(&mut socket);
            }
        }
        let idle: Vec<usize> = self
            .connections
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().filter(|c| c.is_idle()).map(|_| i))
            .collect();
        for index in idle {
            self.close(index);
        }
        log::debug!(
            "worker {} draining: {} connections in flight",
            std::process::id(),
            self.open
        );
    }
}

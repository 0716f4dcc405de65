//! One client connection as an explicit state machine:
//! reading head → writing head → writing prefix (a seek's generated header) →
//! sending body ⇄ sleeping (a throttled stream between slices) →
//! (keep-alive: reading head) or lingering close.
//!
//! Sockets are registered edge-triggered for both directions once, so each
//! handler runs until the kernel says "would block" and then returns `Wait`.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Env;
use super::access_log::Exchange;
use super::context::{Context, Now, Routed, TlsInfo, error_page_reply};
use super::respond;
use super::timer_wheel::TimerId;
use super::transport::Transport;
use crate::access::Client;
use crate::access::limits::{ClientKey, Limited};
use crate::http::target::Target;
use crate::http::{self, Parsed, Status};
use crate::package::Kind;
use crate::stats::columns::UNKNOWN_HOST;
use crate::stats::{Failure, StatsSlot};
use crate::stream::{Progress, Stream};
use crate::tls::session::{HandshakeFailure, failure_of};

/// Most body bytes one connection may send per loop turn before others get theirs.
const FAIR_SHARE_BYTES: u64 = 4 * 1024 * 1024;
/// How long to keep reading (and discarding) after a closing response, so that
/// unread request bytes do not make the kernel reset the connection under it.
const LINGERING_TIMEOUT: Duration = Duration::from_secs(2);
/// A prefix buffer above this is released once the prefix is out.
const IDLE_BUFFER_KEEP_BYTES: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    ReadingHead,
    WritingHead,
    /// Writing the generated prefix of a seeked body, a piece at a time.
    WritingPrefix,
    /// Sending file bytes up to the stream's allowance.
    SendingBody,
    /// A throttled stream asleep on the timer wheel until `deadline`, when its
    /// allowance grows. Not stalled: the send time-out does not run.
    Sleeping,
    /// Response done, write side shut down, discarding input until the peer closes.
    Lingering,
}

/// What the event loop should do with a connection after driving it.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// It waits for readiness or a timer.
    Wait,
    /// It is finished: deregister and drop it.
    Close,
}

enum Step {
    Continue,
    Wait,
    Close,
}

pub struct Connection {
    pub transport: Transport,
    peer: SocketAddr,
    phase: Phase,
    /// Bytes received and not yet parsed (may hold pipelined requests).
    input: Vec<u8>,
    /// Response head (and small in-memory bodies) to write.
    output: Vec<u8>,
    written: usize,
    /// Bytes of the body's generated prefix sent in `output` behind the head.
    prefix_in_head: u64,
    /// Boxed, like `exchange`: an idle keep-alive connection then holds two
    /// pointers rather than both structures (about 420 bytes) inline.
    body: Option<Box<Stream>>,
    keep_alive: bool,
    /// The request being answered asked to close (`Connection: close`, or
    /// HTTP/1.0 without keep-alive): nothing more is to come from the client.
    client_closes: bool,
    exchange: Option<Box<Exchange>>,
    /// Requests answered on this connection.
    served: u64,
    /// Whether this connection counts against `clients` (a 503 does not).
    pub counted: bool,
    /// Its count in `options.limits`' concurrency sketch, given back at close.
    pub client_key: Option<ClientKey>,
    /// Set when `options.limits` refused it: its request gets a 429.
    limited: Option<Limited>,
    /// Body bytes of the last request still to read and throw away before
    /// the next request head (no resource takes a body).
    body_to_discard: u64,
    /// When the current phase times out (send phases re-check progress first).
    pub deadline: Instant,
    /// The timer armed for `armed_deadline`.
    pub timer: Option<(TimerId, Instant)>,
    last_progress: Instant,
    /// Whether unread bytes may wait in the socket (false after a read that
    /// returned less than asked, until the next readable event).
    may_have_input: bool,
    /// Whether the response was cut by the send time-out (counted as such,
    /// not also as dropped).
    timed_out: bool,
}

impl Connection {
    pub fn new(transport: Transport, peer: SocketAddr, env: &Env) -> Connection {
        Connection {
            transport,
            peer,
            phase: Phase::ReadingHead,
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
            prefix_in_head: 0,
            body: None,
            keep_alive: true,
            client_closes: false,
            exchange: None,
            served: 0,
            counted: true,
            client_key: None,
            limited: None,
            body_to_discard: 0,
            deadline: env.now + env.timeouts.header,
            timer: None,
            last_progress: env.now,
            may_have_input: true,
            timed_out: false,
        }
    }

    /// A connection that only gets a 503 because the server is full.
    pub fn overloaded(transport: Transport, peer: SocketAddr, env: &mut Env) -> Connection {
        let mut connection = Connection::new(transport, peer, env);
        connection.counted = false;
        connection.exchange = Some(Box::new(Exchange::new(env.now, peer, None)));
        let reply = error_page_reply(
            &mut connection.output,
            env.dates.get(env.unix_now),
            "",
            false,
            1,
            Status::SERVICE_UNAVAILABLE,
            "The server is at its connection limit; please retry in a few seconds.",
        );
        connection.start_writing(reply.status, None, false, env);
        connection
    }

    /// A connection that `options.limits` refused: its first request is
    /// answered 429 (after the host's address rules), then it closes.
    pub fn limited(
        transport: Transport,
        peer: SocketAddr,
        limited: Limited,
        env: &Env,
    ) -> Connection {
        let mut connection = Connection::new(transport, peer, env);
        connection.limited = Some(limited);
        connection
    }

    /// Whether the connection is an idle keep-alive one (a response sent,
    /// nothing of the next request received): it can be closed at once when
    /// draining. A freshly accepted connection is not idle: its request may
    /// already be on its way.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::ReadingHead && self.input.is_empty() && self.served > 0
    }

    /// Runs the state machine until it must wait for the socket or is finished.
    pub fn drive(&mut self, index: usize, env: &mut Env) -> Next {
        let mut budget = FAIR_SHARE_BYTES;
        // Records TLS queued for a socket that was full go out first, in
        // every phase (a sleeping stream's included).
        if self.transport.flush().is_err() {
            self.log_unfinished(env);
            return Next::Close;
        }
        loop {
            let step = match self.phase {
                Phase::ReadingHead => self.read_head(env),
                Phase::WritingHead => self.write_head(env),
                Phase::WritingPrefix => self.write_prefix(env),
                Phase::SendingBody => self.send_body(env, &mut budget, index),
                Phase::Sleeping => Step::Wait,
                Phase::Lingering => self.linger(env),
            };
            match step {
                Step::Continue => continue,
                Step::Wait => {
                    // Records TLS held back to share a write with the next
                    // ones (a head before its body) leave before any wait.
                    if self.transport.flush().is_err() {
                        self.log_unfinished(env);
                        return Next::Close;
                    }
                    return Next::Wait;
                }
                Step::Close => {
                    self.log_unfinished(env);
                    return Next::Close;
                }
            }
        }
    }

    fn read_head(&mut self, env: &mut Env) -> Step {
        loop {
            if self.body_to_discard > 0 && !self.input.is_empty() {
                let skipped = self.body_to_discard.min(self.input.len() as u64);
                self.input.drain(..skipped as usize);
                self.body_to_discard -= skipped;
            }
            if self.body_to_discard == 0 && !self.input.is_empty() {
                match http::request::parse(&self.input) {
                    Parsed::Complete(mut request, head_len) => {
                        if env.site.route_lua.is_some() {
                            // Only route functions read every header: keep the head for them.
                            request.raw_head = self.input[..head_len].into();
                        }
                        self.input.drain(..head_len);
                        // Its body is read and dropped before the next head is parsed.
                        self.body_to_discard = request.body_length;
                        self.answer(request, env);
                        return Step::Continue;
                    }
                    Parsed::Invalid(status, detail) => {
                        self.answer_invalid(status, detail, env);
                        return Step::Continue;
                    }
                    Parsed::Partial => {}
                }
            } else if self.input.is_empty() && env.draining && self.served > 0 {
                // An idle keep-alive connection may end now; a fresh one still
                // gets its first request answered (it was accepted before the drain).
                return Step::Close;
            }
            if !self.may_have_input {
                // The last read emptied the socket; edge-triggered epoll reports new data.
                return Step::Wait;
            }
            let read = self.transport.read(&mut env.scratch[..]);
            self.note_handshake(&read, env);
            match read {
                Ok(0) => return Step::Close,
                Ok(n) => {
                    // A short read means the receive queue is empty now.
                    self.may_have_input =
                        n == env.scratch.len() || !self.transport.short_read_drains();
                    if self.input.is_empty() {
                        // The first byte of a request starts its header time-out.
                        self.deadline = env.now + env.timeouts.header;
                    }
                    self.input.extend_from_slice(&env.scratch[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.may_have_input = false;
                    return Step::Wait;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Step::Close,
            }
        }
    }

    /// Called on a readable event: the socket has new bytes (or news of a close).
    pub fn readable(&mut self) {
        self.may_have_input = true;
    }

    /// Counts a TLS handshake once it completes, or once it fails.
    fn note_handshake(&mut self, read: &io::Result<usize>, env: &Env) {
        let Some(session) = self.transport.session_mut() else {
            return;
        };
        if let Some(reason) = session.take_kernel_refusal() {
            log::warn!(
                "kernel TLS refused a connection's keys ({reason}); new HTTPS connections of this worker are encrypted in user space"
            );
            env.kernel_tls.set(false);
        }
        if let Some(resumed) = session.newly_established() {
            env.slot.count_handshake(resumed);
            if session.is_kernel() {
                env.slot.count_kernel_tls();
            }
            let chosen = env
                .site
                .tls
                .as_ref()
                .map_or(0, |tls| tls.resolver.choose(session.server_name()));
            session.set_certificate(chosen);
            return;
        }
        if !session.is_handshaking() {
            return;
        }
        let failure = match read {
            Ok(0) => HandshakeFailure::Abandoned,
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => failure_of(e),
            _ => return,
        };
        env.slot.count_handshake_failure(failure as usize);
    }

    fn answer(&mut self, request: Box<http::Request>, env: &mut Env) {
        let keep_alive = request.keep_alive && !env.draining;
        // The request's strings are only copied when they will be logged.
        let logged = Some(&*request).filter(|_| env.site.options.access_log);
        let mut exchange = Exchange::new(env.now, self.peer, logged);
        exchange.tls = self.transport.session().map(|session| session.version());
        self.exchange = Some(Box::new(exchange));
        self.output.clear();
        let mut context = Context {
            site: &env.site,
            caches: &mut env.caches,
            slot: env.slot,
            request: &request,
            target: Target::split(&request.target),
            client: Client {
                peer: self.peer,
                limited: self.limited,
            },
            tls: self.transport.session().map(|session| TlsInfo {
                certificate: session.certificate(),
                version: session.version(),
            }),
            now: Now {
                unix: env.unix_now,
                date: env.dates.get(env.unix_now),
            },
            out: &mut self.output,
            routed: Routed::default(),
            keep_alive,
            head_only: false,
            extra_headers: Vec::new(),
        };
        let reply = respond::respond(&mut context);
        let routed = context.routed;
        env.slot.count_request(routed.host);
        let media = &env.caches.media;
        env.slot
            .cache_bytes
            .store(media.used() as u64, Ordering::Relaxed);
        env.slot
            .cache_items
            .store(media.len() as u64, Ordering::Relaxed);
        if let Some(exchange) = &mut self.exchange {
            exchange.routed = routed;
        }
        self.start_writing(reply.status, reply.body, reply.keep_alive, env);
        self.client_closes = !request.keep_alive;
    }

    fn answer_invalid(&mut self, status: Status, detail: &str, env: &mut Env) {
        env.slot.count_request(UNKNOWN_HOST);
        env.slot.count_failure(Failure::Malformed);
        self.input.clear();
        self.exchange = Some(Box::new(Exchange::new(env.now, self.peer, None)));
        self.output.clear();
        let date = env.dates.get(env.unix_now);
        let reply = error_page_reply(&mut self.output, date, "", false, 1, status, detail);
        self.start_writing(reply.status, None, false, env);
    }

    /// Answers 408 when the head did not arrive in time.
    pub fn time_out_head(&mut self, env: &mut Env) {
        env.slot.count_failure(Failure::TimedOut);
        self.exchange = Some(Box::new(Exchange::new(env.now, self.peer, None)));
        self.output.clear();
        let date = env.dates.get(env.unix_now);
        let reply = error_page_reply(
            &mut self.output,
            date,
            "",
            false,
            1,
            Status::REQUEST_TIMEOUT,
            "The request head did not arrive in time.",
        );
        self.start_writing(reply.status, None, false, env);
    }

    fn start_writing(&mut self, status: Status, body: Option<Stream>, keep_alive: bool, env: &Env) {
        self.client_closes = false;
        if let Some(exchange) = &mut self.exchange {
            exchange.status = status.code();
        }
        if body.is_some() {
            StatsSlot::add(&env.slot.streams_active, 1);
        }
        self.written = 0;
        self.body = body.map(Box::new);
        self.timed_out = false;
        self.keep_alive = keep_alive;
        self.phase = Phase::WritingHead;
        self.last_progress = env.now;
        self.deadline = env.now + self.send_timeout(env);
    }

    /// How long the current response may make no progress.
    fn send_timeout(&self, env: &Env) -> Duration {
        self.body
            .as_ref()
            .map_or(env.timeouts.send, |stream| stream.send_timeout)
    }

    /// Writes what is left of `output`; None once it is all written, else
    /// what the state machine should do.
    fn flush_output(&mut self, more: bool, env: &mut Env) -> Option<Step> {
        while self.written < self.output.len() {
            match self.transport.send(&self.output[self.written..], more) {
                Ok(n) => {
                    self.written += n;
                    self.last_progress = env.now;
                    StatsSlot::add(&env.slot.bytes_sent, n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(Step::Wait),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Some(Step::Close),
            }
        }
        None
    }

    fn write_head(&mut self, env: &mut Env) -> Step {
        // MSG_MORE lets the head share a packet with the body's first bytes;
        // a paced body may not follow at once, so its head goes out alone.
        // An unpaced body's first piece of prefix (a seek's moov, a
        // segment's moof) joins the head: one send for both.
        if let Some(stream) = self.body.as_mut().filter(|s| !s.is_throttled())
            && self.written == 0
            && self.prefix_in_head == 0
        {
            self.prefix_in_head = stream.fill_prefix(&mut self.output);
        }
        // ...and then more follows at once only if the body goes on.
        let more = self
            .body
            .as_ref()
            .is_some_and(|s| !s.is_throttled() && (self.prefix_in_head == 0 || s.unsent() > 0));
        if let Some(step) = self.flush_output(more, env) {
            return step;
        }
        let joined = std::mem::take(&mut self.prefix_in_head);
        self.count_prefix_bytes(joined, env);
        let Some(stream) = &self.body else {
            // Only body bytes count in the access log, like nginx's $body_bytes_sent.
            if let Some(exchange) = &mut self.exchange {
                exchange.body_bytes = body_len_of(&self.output);
            }
            return self.finish_exchange(env);
        };
        if stream.is_throttled() {
            // A paced stream lives long and mostly sleeps: it keeps no buffers.
            self.output = Vec::new();
            if self.input.is_empty() {
                self.input = Vec::new();
            }
        }
        self.output.clear();
        self.written = 0;
        self.phase = Phase::WritingPrefix;
        Step::Continue
    }

    /// Writes the generated prefix in pieces of at most 64 KiB, then starts
    /// the stream's pacing clock: the prefix is never throttled.
    fn write_prefix(&mut self, env: &mut Env) -> Step {
        loop {
            // More follows at once unless this is the end or a paced body.
            let more = self
                .body
                .as_ref()
                .is_some_and(|s| s.unsent() > 0 && !s.is_throttled());
            if let Some(step) = self.flush_output(more, env) {
                return step;
            }
            let pending = self.output.len() as u64;
            if self.body.is_none() {
                return self.finish_exchange(env);
            }
            self.count_prefix_bytes(pending, env);
            self.output.clear();
            self.written = 0;
            let output = &mut self.output;
            if self.body.as_mut().map_or(0, |s| s.fill_prefix(output)) == 0 {
                break;
            }
        }
        if self.output.capacity() > IDLE_BUFFER_KEEP_BYTES {
            self.output = Vec::new();
        }
        if let Some(stream) = &mut self.body {
            stream.start(env.now, env.next_phase());
            if stream.is_throttled() {
                // Slices go out as full segments; the last partial one waits
                // (at most 200 ms) for the next slice instead of its own packet.
                self.transport.set_cork(true);
            }
        }
        self.phase = Phase::SendingBody;
        Step::Continue
    }

    /// Counts `n` bytes of generated prefix sent as body bytes.
    fn count_prefix_bytes(&mut self, n: u64, env: &Env) {
        if n == 0 {
            return;
        }
        if let Some(exchange) = &mut self.exchange {
            exchange.body_bytes += n;
        }
        StatsSlot::add(&env.slot.body_bytes_sent, n);
        if self.body.as_ref().is_some_and(|s| s.is_segment()) {
            StatsSlot::add(&env.slot.packaged_bytes[Kind::Segment as usize], n);
        }
    }

    fn send_body(&mut self, env: &mut Env, budget: &mut u64, index: usize) -> Step {
        let Some(stream) = &mut self.body else {
            return self.finish_exchange(env);
        };
        let mut sent = 0u64;
        let now = env.now;
        let mut sink = self.transport.sink(&mut env.tls_buffer);
        let progress = stream.send(&mut sink, now, budget, |n| sent += n);
        if sent > 0 {
            self.last_progress = env.now;
            StatsSlot::add(&env.slot.bytes_sent, sent);
            StatsSlot::add(&env.slot.body_bytes_sent, sent);
            if stream.is_segment() {
                StatsSlot::add(&env.slot.packaged_bytes[Kind::Segment as usize], sent);
            }
            if let Some(exchange) = &mut self.exchange {
                exchange.body_bytes += sent;
            }
        }
        match progress {
            Progress::Finished => {
                if stream.is_throttled() {
                    // The body's tail goes out now, not after the cork's 200 ms.
                    self.transport.set_cork(false);
                }
                self.finish_exchange(env)
            }
            Progress::Sleep(until) => {
                StatsSlot::add(&env.slot.streams_throttled, 1);
                self.phase = Phase::Sleeping;
                self.deadline = until;
                Step::Wait
            }
            Progress::Blocked => {
                self.deadline = self.last_progress + self.send_timeout(env);
                Step::Wait
            }
            Progress::Yield => {
                // Edge-triggered: no new event will come, so ask for another turn.
                env.ready.push(index);
                Step::Wait
            }
            Progress::FileShrank => {
                log::error!(
                    "a file shrank while being sent to {} ({} bytes short); closing",
                    self.peer,
                    stream.unsent()
                );
                Step::Close
            }
            Progress::Failed(_) => Step::Close,
        }
    }

    /// Ends the stream in flight, if any, in the counters: a body that did
    /// not go out whole adds what it never sent to the bytes saved.
    pub fn end_stream(&mut self, slot: &StatsSlot) {
        let Some(stream) = self.body.take() else {
            return;
        };
        slot.streams_active.fetch_sub(1, Ordering::Relaxed);
        if self.phase == Phase::Sleeping {
            slot.streams_throttled.fetch_sub(1, Ordering::Relaxed);
        }
        let mut unsent = stream.unsent();
        if self.phase == Phase::WritingPrefix {
            unsent += (self.output.len() - self.written) as u64;
        }
        StatsSlot::add(&slot.bytes_saved, unsent);
        if unsent > 0 && !self.timed_out {
            slot.count_failure(Failure::Dropped);
        }
    }

    fn finish_exchange(&mut self, env: &mut Env) -> Step {
        self.count_exchange(env);
        self.end_stream(env.slot);
        self.output.clear();
        self.written = 0;
        self.served += 1;
        if !self.keep_alive || env.draining {
            // The client asked to close, sent its whole request and nothing
            // after it: close now, as nginx does, rather than a lingering
            // close (shutdown, then reads until its FIN) that guards against
            // a reset destroying an answer the client is still receiving
            // while it sends more. Over TLS close_notify goes first, so it lingers.
            if self.client_closes
                && self.input.is_empty()
                && self.body_to_discard == 0
                && self.transport.session().is_none()
            {
                return Step::Close;
            }
            self.transport.shutdown_write();
            self.phase = Phase::Lingering;
            self.input = Vec::new();
            self.deadline = env.now + LINGERING_TIMEOUT;
            return Step::Continue;
        }
        self.phase = Phase::ReadingHead;
        self.deadline = env.now
            + if self.input.is_empty() {
                env.timeouts.keepalive
            } else {
                env.timeouts.header
            };
        // Waiting for the next request, it holds no buffers (as nginx frees
        // its own): a page left open costs only the connection itself, and a
        // small allocation per request is cheaper than idle memory × viewers.
        if self.input.is_empty() {
            self.input = Vec::new();
        }
        self.output = Vec::new();
        Step::Continue
    }

    fn linger(&mut self, env: &mut Env) -> Step {
        loop {
            match self.transport.discard(&mut env.scratch[..]) {
                Ok(0) => return Step::Close,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Step::Close,
            }
        }
    }

    /// Called when `deadline` has passed. Returns what the loop should do.
    pub fn on_deadline(&mut self, index: usize, env: &mut Env) -> Next {
        match self.phase {
            Phase::ReadingHead => {
                if self.input.is_empty() && self.served > 0 {
                    return Next::Close; // an idle keep-alive connection just ends
                }
                if self.transport.session().is_some_and(|s| s.is_handshaking()) {
                    // No answer can be sent before the handshake ends.
                    env.slot
                        .count_handshake_failure(HandshakeFailure::Abandoned as usize);
                    return Next::Close;
                }
                self.time_out_head(env);
                self.drive(index, env)
            }
            Phase::Sleeping => {
                // How late the slice is: the wheel's tick, and a loop kept busy.
                let late = Instant::now().saturating_duration_since(self.deadline);
                env.slot.record_slice_lag(late, env.unix_now);
                env.slot.streams_throttled.fetch_sub(1, Ordering::Relaxed);
                // The sleep was not a stall: the send time-out starts now.
                self.last_progress = env.now;
                self.deadline = env.now + self.send_timeout(env);
                self.phase = Phase::SendingBody;
                self.drive(index, env)
            }
            Phase::WritingHead | Phase::WritingPrefix | Phase::SendingBody => {
                let send_timeout = self.send_timeout(env);
                let quiet_until = self.last_progress + send_timeout;
                if quiet_until > env.now {
                    self.deadline = quiet_until;
                    return Next::Wait;
                }
                log::info!(
                    "closing the connection of {}: no progress for {:?}",
                    self.peer,
                    send_timeout
                );
                env.slot.count_failure(Failure::TimedOut);
                self.timed_out = true;
                self.log_unfinished(env);
                Next::Close
            }
            Phase::Lingering => Next::Close,
        }
    }

    /// Logs a response that could not be completed (the client left, a time-out).
    /// Ends the connection where it stands (the drain deadline): its
    /// response is counted and logged with the bytes that went out.
    pub fn cut(&mut self, env: &mut Env) {
        self.log_unfinished(env);
    }

    fn log_unfinished(&mut self, env: &mut Env) {
        self.count_exchange(env);
    }

    /// Counts the response in flight by host, code and folder, and logs it.
    fn count_exchange(&mut self, env: &mut Env) {
        if let Some(exchange) = self.exchange.take() {
            env.slot
                .count_response(exchange.routed.host, exchange.status);
            if let Some(folder) = exchange.routed.folder {
                env.slot.count_folder(folder, exchange.body_bytes);
            }
            exchange.log(env);
        }
    }
}

/// The length of the in-memory body after the head in `output`.
fn body_len_of(output: &[u8]) -> u64 {
    output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| (output.len() - p - 4) as u64)
}

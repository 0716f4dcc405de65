//! One client connection as an explicit state machine:
//! reading head → writing head → sending body → (keep-alive: reading head) or
//! lingering close.
//!
//! Sockets are registered edge-triggered for both directions once, so each
//! handler runs until the kernel says "would block" and then returns `Wait`.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::Env;
use super::access_log::Exchange;
use super::respond::{self, FileBody};
use super::timer_wheel::TimerId;
use crate::http::{self, Parsed, Status};
use crate::stats::StatsSlot;
use crate::sys;

/// Most bytes one sendfile call may move, so one fast client cannot hold the loop.
const SENDFILE_CHUNK_BYTES: usize = 512 * 1024;
/// Most body bytes one connection may send per loop turn before others get theirs.
const FAIR_SHARE_BYTES: u64 = 4 * 1024 * 1024;
/// How long to keep reading (and discarding) after a closing response, so that
/// unread request bytes do not make the kernel reset the connection under it.
const LINGERING_TIMEOUT: Duration = Duration::from_secs(2);
/// Read buffers above this are released when idle.
const IDLE_BUFFER_KEEP_BYTES: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    ReadingHead,
    WritingHead,
    SendingBody,
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
    pub stream: TcpStream,
    peer: SocketAddr,
    phase: Phase,
    /// Bytes received and not yet parsed (may hold pipelined requests).
    input: Vec<u8>,
    /// Response head (and small in-memory bodies) to write.
    output: Vec<u8>,
    written: usize,
    body: Option<FileBody>,
    keep_alive: bool,
    exchange: Option<Exchange>,
    /// Requests answered on this connection.
    served: u64,
    /// Whether this connection counts against `clients` (a 503 does not).
    pub counted: bool,
    /// When the current phase times out (send phases re-check progress first).
    pub deadline: Instant,
    /// The timer armed for `armed_deadline`.
    pub timer: Option<(TimerId, Instant)>,
    last_progress: Instant,
    /// Whether unread bytes may wait in the socket (false after a read that
    /// returned less than asked, until the next readable event).
    may_have_input: bool,
}

impl Connection {
    pub fn new(stream: TcpStream, peer: SocketAddr, env: &Env) -> Connection {
        Connection {
            stream,
            peer,
            phase: Phase::ReadingHead,
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
            body: None,
            keep_alive: true,
            exchange: None,
            served: 0,
            counted: true,
            deadline: env.now + env.timeouts.header,
            timer: None,
            last_progress: env.now,
            may_have_input: true,
        }
    }

    /// A connection that only gets a 503 because the server is full.
    pub fn overloaded(stream: TcpStream, peer: SocketAddr, env: &mut Env) -> Connection {
        let mut connection = Connection::new(stream, peer, env);
        connection.counted = false;
        connection.exchange = Some(Exchange::new(env.now, peer, None));
        let reply = respond::error_page_reply(
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

    /// Whether the connection is an idle keep-alive one (a response sent,
    /// nothing of the next request received): it can be closed at once when
    /// draining. A freshly accepted connection is not idle: its request may
    /// already be on its way.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::ReadingHead && self.input.is_empty() && self.served > 0
    }

    /// Runs the state machine until it must wait for the socket or is finished.
    pub fn drive(&mut self, index: usize, env: &mut Env) -> Next {
        let mut sent_this_turn = 0u64;
        loop {
            let step = match self.phase {
                Phase::ReadingHead => self.read_head(env),
                Phase::WritingHead => self.write_head(env),
                Phase::SendingBody => self.send_body(env, &mut sent_this_turn, index),
                Phase::Lingering => self.linger(env),
            };
            match step {
                Step::Continue => continue,
                Step::Wait => return Next::Wait,
                Step::Close => {
                    self.log_unfinished(env);
                    return Next::Close;
                }
            }
        }
    }

    fn read_head(&mut self, env: &mut Env) -> Step {
        loop {
            if !self.input.is_empty() {
                match http::request::parse(&self.input) {
                    Parsed::Complete(request, head_len) => {
                        self.input.drain(..head_len);
                        self.answer(request, env);
                        return Step::Continue;
                    }
                    Parsed::Invalid(status, detail) => {
                        self.answer_invalid(status, detail, env);
                        return Step::Continue;
                    }
                    Parsed::Partial => {}
                }
            } else if env.draining && self.served > 0 {
                // An idle keep-alive connection may end now; a fresh one still
                // gets its first request answered (it was accepted before the drain).
                return Step::Close;
            }
            if !self.may_have_input {
                // The last read emptied the socket; edge-triggered epoll reports new data.
                return Step::Wait;
            }
            match self.stream.read(&mut env.scratch[..]) {
                Ok(0) => return Step::Close,
                Ok(n) => {
                    // A short read means the receive queue is empty now.
                    self.may_have_input = n == env.scratch.len();
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

    fn answer(&mut self, request: Box<http::Request>, env: &mut Env) {
        StatsSlot::add(&env.slot.requests_total, 1);
        let keep_alive = request.keep_alive && !env.draining;
        // The request's strings are only copied when they will be logged.
        let logged = Some(&*request).filter(|_| env.site.options.access_log);
        self.exchange = Some(Exchange::new(env.now, self.peer, logged));
        self.output.clear();
        let date = env.dates.get(env.unix_now);
        let reply = respond::respond(
            &env.site,
            &mut env.caches,
            env.slot,
            &request,
            keep_alive,
            date,
            &mut self.output,
        );
        self.start_writing(reply.status, reply.body, reply.keep_alive, env);
    }

    fn answer_invalid(&mut self, status: Status, detail: &str, env: &mut Env) {
        StatsSlot::add(&env.slot.requests_total, 1);
        self.input.clear();
        self.exchange = Some(Exchange::new(env.now, self.peer, None));
        self.output.clear();
        let date = env.dates.get(env.unix_now);
        let reply = respond::error_page_reply(&mut self.output, date, "", false, 1, status, detail);
        self.start_writing(reply.status, None, false, env);
    }

    /// Answers 408 when the head did not arrive in time.
    pub fn time_out_head(&mut self, env: &mut Env) {
        self.exchange = Some(Exchange::new(env.now, self.peer, None));
        self.output.clear();
        let date = env.dates.get(env.unix_now);
        let reply = respond::error_page_reply(
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

    fn start_writing(
        &mut self,
        status: Status,
        body: Option<FileBody>,
        keep_alive: bool,
        env: &Env,
    ) {
        if let Some(exchange) = &mut self.exchange {
            exchange.status = status.code();
        }
        self.written = 0;
        self.body = body;
        self.keep_alive = keep_alive;
        self.phase = Phase::WritingHead;
        self.last_progress = env.now;
        self.deadline = env.now + env.timeouts.send;
    }

    fn write_head(&mut self, env: &mut Env) -> Step {
        let more = self.body.is_some();
        while self.written < self.output.len() {
            match sys::send(self.stream.as_raw_fd(), &self.output[self.written..], more) {
                Ok(n) => {
                    self.written += n;
                    self.last_progress = env.now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Step::Close,
            }
        }
        StatsSlot::add(&env.slot.bytes_sent, self.output.len() as u64);
        // Only body bytes count in the access log, like nginx's $body_bytes_sent;
        // the output may hold a generated body part (error page, seek header).
        if let Some(exchange) = &mut self.exchange {
            exchange.body_bytes = body_len_of(&self.output);
        }
        if self.body.is_some() {
            self.phase = Phase::SendingBody;
            Step::Continue
        } else {
            self.finish_exchange(env)
        }
    }

    fn send_body(&mut self, env: &mut Env, sent_this_turn: &mut u64, index: usize) -> Step {
        let Some(body) = &mut self.body else {
            return self.finish_exchange(env);
        };
        while body.offset < body.end {
            if *sent_this_turn >= FAIR_SHARE_BYTES {
                // Edge-triggered: no new event will come, so ask for another turn.
                env.ready.push(index);
                return Step::Wait;
            }
            let count = (body.end - body.offset).min(SENDFILE_CHUNK_BYTES as u64) as usize;
            match sys::sendfile(
                self.stream.as_raw_fd(),
                body.file.handle.as_raw_fd(),
                &mut body.offset,
                count,
            ) {
                Ok(0) => {
                    log::error!(
                        "file shrank while being sent to {} (at byte {}, expected {}); closing",
                        self.peer,
                        body.offset,
                        body.end
                    );
                    return Step::Close;
                }
                Ok(n) => {
                    *sent_this_turn += n as u64;
                    self.last_progress = env.now;
                    StatsSlot::add(&env.slot.bytes_sent, n as u64);
                    if let Some(exchange) = &mut self.exchange {
                        exchange.body_bytes += n as u64;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Step::Close,
            }
        }
        self.finish_exchange(env)
    }

    fn finish_exchange(&mut self, env: &mut Env) -> Step {
        if let Some(exchange) = self.exchange.take() {
            env.slot.count_response(exchange.status);
            exchange.log(env);
        }
        self.body = None;
        self.output.clear();
        self.written = 0;
        self.served += 1;
        if !self.keep_alive || env.draining {
            let _ = self.stream.shutdown(Shutdown::Write);
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
        if self.input.is_empty() && self.input.capacity() > IDLE_BUFFER_KEEP_BYTES {
            self.input = Vec::new();
        }
        if self.output.capacity() > IDLE_BUFFER_KEEP_BYTES {
            self.output = Vec::new();
        }
        Step::Continue
    }

    fn linger(&mut self, env: &mut Env) -> Step {
        loop {
            match self.stream.read(&mut env.scratch[..]) {
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
                self.time_out_head(env);
                self.drive(index, env)
            }
            Phase::WritingHead | Phase::SendingBody => {
                let quiet_until = self.last_progress + env.timeouts.send;
                if quiet_until > env.now {
                    self.deadline = quiet_until;
                    return Next::Wait;
                }
                log::info!(
                    "closing the connection of {}: no progress for {:?}",
                    self.peer,
                    env.timeouts.send
                );
                self.log_unfinished(env);
                Next::Close
            }
            Phase::Lingering => Next::Close,
        }
    }

    /// Logs a response that could not be completed (the client left, a time-out).
    fn log_unfinished(&mut self, env: &mut Env) {
        if let Some(exchange) = self.exchange.take() {
            env.slot.count_response(exchange.status);
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

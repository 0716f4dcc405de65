//! A connection's transport: the plain TCP socket, or TLS over it. The
//! connection's state machine reads plaintext, writes plaintext and hands
//! file ranges to a [`Sink`] without knowing which it has: over plain TCP
//! and kernel TLS bodies go by `sendfile(2)`, over user-space TLS they are
//! read into the worker's one buffer and encrypted.

use std::fs::File;
use std::io::{self, Read};
use std::net::Shutdown;
use std::os::fd::AsRawFd;

use mio::net::TcpStream;

use crate::stream::{Sink, SocketSink};
use crate::sys;
use crate::tls::TlsSession;

pub struct Transport {
    pub socket: TcpStream,
    /// Boxed: rustls's state is a few kilobytes, which plain connections
    /// should not carry.
    tls: Option<Box<TlsSession>>,
}

impl Transport {
    pub fn plain(socket: TcpStream) -> Transport {
        Transport { socket, tls: None }
    }

    pub fn tls(socket: TcpStream, session: TlsSession) -> Transport {
        Transport {
            socket,
            tls: Some(Box::new(session)),
        }
    }

    pub fn session(&self) -> Option<&TlsSession> {
        self.tls.as_deref()
    }

    pub fn session_mut(&mut self) -> Option<&mut TlsSession> {
        self.tls.as_deref_mut()
    }

    /// Reads plaintext (see [`TlsSession::read`] for TLS).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.socket.read(buf),
            Some(session) => session.read(&mut self.socket, buf),
        }
    }

    /// Whether a read shorter than asked means the socket is empty (true
    /// for TCP; over TLS a record can end anywhere, so only WouldBlock says so).
    pub fn short_read_drains(&self) -> bool {
        self.tls.is_none()
    }

    /// Writes plaintext; `more` tells TCP that more follows (MSG_MORE).
    /// Returns what was taken.
    pub fn send(&mut self, buf: &[u8], more: bool) -> io::Result<usize> {
        match &mut self.tls {
            None => sys::send(self.socket.as_raw_fd(), buf, more),
            Some(session) => session.write(&mut self.socket, buf, more),
        }
    }

    /// Writes what TLS has queued; Ok(true) when nothing waits.
    pub fn flush(&mut self) -> io::Result<bool> {
        match &mut self.tls {
            None => Ok(true),
            Some(session) => session.flush(&mut self.socket),
        }
    }

    /// Ends the write side: close_notify first over TLS.
    pub fn shutdown_write(&mut self) {
        if let Some(session) = &mut self.tls {
            session.close();
            let _ = session.flush(&mut self.socket);
        }
        let _ = self.socket.shutdown(Shutdown::Write);
    }

    /// Reads and drops what the peer still sends (a lingering close).
    pub fn discard(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Encrypted or not, nothing of it is read: no need to decrypt.
        self.socket.read(buf)
    }

    pub fn set_cork(&self, on: bool) {
        let _ = sys::socket::set_cork(self.socket.as_raw_fd(), on);
    }

    /// Where a stream's file bytes go; `buffer` is the worker's, used over TLS.
    pub fn sink<'a>(&'a mut self, buffer: &'a mut [u8]) -> TransportSink<'a> {
        match &mut self.tls {
            None => TransportSink::Plain(SocketSink(self.socket.as_raw_fd())),
            Some(session) => TransportSink::Tls {
                session,
                socket: &mut self.socket,
                buffer,
            },
        }
    }
}

pub enum TransportSink<'a> {
    Plain(SocketSink),
    Tls {
        session: &'a mut TlsSession,
        socket: &'a mut TcpStream,
        buffer: &'a mut [u8],
    },
}

impl Sink for TransportSink<'_> {
    fn send_file(&mut self, file: &File, offset: &mut u64, count: usize) -> io::Result<usize> {
        match self {
            TransportSink::Plain(sink) => sink.send_file(file, offset, count),
            TransportSink::Tls {
                session,
                socket,
                buffer,
            } => session.write_file(*socket, file, offset, count, buffer),
        }
    }
}

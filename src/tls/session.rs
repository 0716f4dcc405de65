//! One TLS connection over a non-blocking socket, driven from the worker's
//! readiness loop (rustls is sans-I/O: it is handed bytes and asked for
//! bytes). Reads give plaintext; writes take plaintext and encrypt it into
//! rustls's queue of records, which goes to the socket as it accepts it.
//!
//! Memory stays bounded: rustls's buffer limit (`PENDING_LIMIT_BYTES`)
//! caps the records waiting for the socket, so a writer that outruns its
//! client is told "would block" rather than buffering; between throttled
//! slices the queue is empty and its chunks freed.
//!
//! With kernel TLS ([`kernel`](super::kernel)) the same session runs the
//! handshake on rustls's unbuffered connection, then hands the keys to the
//! socket: reads, writes and `sendfile` then go to the kernel, which
//! encrypts and decrypts.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use rustls::{HandshakeKind, ProtocolVersion, ServerConfig, ServerConnection};

use super::kernel::{self, Facts};

/// Most encrypted bytes a connection queues for a socket that does not take
/// them: four full records.
pub const PENDING_LIMIT_BYTES: usize = 64 * 1024;

/// Why a handshake failed, for the counters (its value is the column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum HandshakeFailure {
    /// No protocol version, cipher suite, group or ALPN protocol in common.
    NoSharedCipher,
    /// The client's SNI name could not be used.
    BadServerName,
    /// The client rejected our certificate (unknown CA, bad certificate…).
    CertificateRejected,
    /// The client sent something that is not TLS, or broke the protocol.
    Malformed,
    /// The client left or went quiet mid-handshake.
    Abandoned,
}

impl HandshakeFailure {
    pub const ALL: [HandshakeFailure; crate::stats::TLS_FAILURES] = [
        HandshakeFailure::NoSharedCipher,
        HandshakeFailure::BadServerName,
        HandshakeFailure::CertificateRejected,
        HandshakeFailure::Malformed,
        HandshakeFailure::Abandoned,
    ];

    /// Its name in /monitor and /metrics.
    pub fn label(self) -> &'static str {
        match self {
            HandshakeFailure::NoSharedCipher => "no_shared_cipher",
            HandshakeFailure::BadServerName => "bad_sni",
            HandshakeFailure::CertificateRejected => "certificate_rejected",
            HandshakeFailure::Malformed => "malformed",
            HandshakeFailure::Abandoned => "timeout_or_abandoned",
        }
    }
}

pub struct TlsSession {
    engine: Engine,
    /// Set once the handshake completed (counted once).
    established: bool,
    /// The certificate its SNI chose (see `TlsSite`), noted once the
    /// handshake completes rather than matched again for every request.
    certificate: usize,
    /// What a kernel-TLS handshake saw (rustls's buffered connection keeps
    /// it itself).
    facts: Option<Facts>,
    /// Why the kernel refused this connection's keys, until the worker asks.
    kernel_refusal: Option<String>,
    /// Records written with `more` wait in the queue for the body's first.
    held: bool,
}

/// Who encrypts. (The session is boxed by its transport, so the size of
/// the common, user-space variant costs no space in plain connections.)
#[allow(clippy::large_enum_variant)]
enum Engine {
    /// rustls, in user space.
    User(ServerConnection),
    /// rustls's unbuffered handshake, before the keys go to the kernel.
    KernelHandshake(Box<kernel::Handshake>),
    /// The kernel.
    Kernel(kernel::Established),
    /// A switch to the kernel that failed: the connection ends.
    Broken,
}

fn broken() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the TLS session ended")
}

impl TlsSession {
    /// A session encrypted by rustls in user space.
    pub fn new(config: &Arc<ServerConfig>) -> Result<TlsSession, rustls::Error> {
        let mut connection = ServerConnection::new(Arc::clone(config))?;
        connection.set_buffer_limit(Some(PENDING_LIMIT_BYTES));
        Ok(Self::with(Engine::User(connection)))
    }

    /// A session whose records go to kernel TLS after the handshake.
    pub fn new_kernel(config: &Arc<ServerConfig>) -> Result<TlsSession, rustls::Error> {
        let handshake = kernel::Handshake::new(config)?;
        Ok(Self::with(Engine::KernelHandshake(Box::new(handshake))))
    }

    fn with(engine: Engine) -> TlsSession {
        TlsSession {
            engine,
            established: false,
            certificate: 0,
            facts: None,
            kernel_refusal: None,
            held: false,
        }
    }

    /// Whether the kernel encrypts this connection.
    pub fn is_kernel(&self) -> bool {
        matches!(self.engine, Engine::Kernel(_))
    }

    /// Why the kernel refused this connection's keys (once).
    pub fn take_kernel_refusal(&mut self) -> Option<String> {
        self.kernel_refusal.take()
    }

    /// Runs a kernel-TLS handshake on, and switches to the kernel when it
    /// completes. Ok(()) once the kernel has the connection.
    fn advance_kernel(&mut self, socket: &impl AsRawFd) -> io::Result<()> {
        let Engine::KernelHandshake(handshake) = &mut self.engine else {
            return Ok(());
        };
        handshake.advance(socket.as_raw_fd())?;
        let Engine::KernelHandshake(handshake) =
            std::mem::replace(&mut self.engine, Engine::Broken)
        else {
            return Err(broken());
        };
        match handshake.into_kernel(socket.as_raw_fd()) {
            Ok((established, facts)) => {
                self.engine = Engine::Kernel(established);
                self.facts = Some(facts);
                Ok(())
            }
            Err(e) => {
                self.kernel_refusal = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Reads plaintext into `buf`. Ok(0) is the end (close_notify or the
    /// socket's end); WouldBlock means no plaintext yet (mid-handshake, or
    /// a partial record). Handshake replies are written as they arise.
    pub fn read<S: Read + Write + AsRawFd>(
        &mut self,
        socket: &mut S,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        self.advance_kernel(socket)?;
        let connection = match &mut self.engine {
            Engine::User(connection) => connection,
            Engine::Kernel(kernel) => return kernel.read(socket.as_raw_fd(), buf),
            Engine::KernelHandshake(_) | Engine::Broken => return Err(broken()),
        };
        loop {
            match connection.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed without close_notify: the same as an end.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match connection.read_tls(socket) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // What the handshake still has to say goes out now.
                    flush_user(connection, socket)?;
                    return Err(e);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(error) = connection.process_new_packets() {
                // rustls queued the alert that says why; send it, then fail.
                let _ = flush_user(connection, socket);
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
            flush_user(connection, socket)?;
        }
    }

    /// Encrypts as much of `plaintext` as the queue takes and writes what
    /// the socket accepts (with kernel TLS: writes it, `more` as MSG_MORE).
    /// Returns the plaintext bytes taken; WouldBlock when none could be
    /// (the queue is full and the socket is too).
    pub fn write<S: Write + AsRawFd>(
        &mut self,
        socket: &mut S,
        plaintext: &[u8],
        more: bool,
    ) -> io::Result<usize> {
        let connection = match &mut self.engine {
            Engine::User(connection) => connection,
            Engine::Kernel(kernel) => return kernel.send(socket.as_raw_fd(), plaintext, more),
            // Nothing is written before the handshake ends.
            Engine::KernelHandshake(_) => return Err(io::ErrorKind::WouldBlock.into()),
            Engine::Broken => return Err(broken()),
        };
        if more {
            // The body follows at once: these records wait in the queue and
            // leave with its first ones in one write (the connection flushes
            // before it waits for anything).
            let taken = connection.writer().write(plaintext)?;
            if taken > 0 {
                self.held = true;
                return Ok(taken);
            }
        }
        let mut taken = 0;
        loop {
            if taken < plaintext.len() {
                taken += connection.writer().write(&plaintext[taken..])?;
            }
            match flush_user(connection, socket) {
                Ok(true) if taken < plaintext.len() => continue,
                Ok(_) => return Ok(taken),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && taken > 0 => return Ok(taken),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends up to `count` bytes of `file` from `*offset` (advanced by what
    /// was taken), through `buffer` (the worker's, shared by every
    /// connection: nothing of the file stays here after the call).
    pub fn write_file<S: Write + AsRawFd>(
        &mut self,
        socket: &mut S,
        file: &File,
        offset: &mut u64,
        count: usize,
        buffer: &mut [u8],
    ) -> io::Result<usize> {
        if let Engine::Kernel(kernel) = &mut self.engine {
            // Zero-copy: the kernel encrypts what sendfile hands it.
            return kernel.send_file(socket.as_raw_fd(), file, offset, count);
        }
        // Queued records first: no more plaintext until the socket takes
        // them — unless they are a head held back to share this write.
        if !std::mem::take(&mut self.held) && !self.flush(socket)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let want = count.min(buffer.len());
        let read = file.read_at(&mut buffer[..want], *offset)?;
        if read == 0 {
            return Ok(0);
        }
        let taken = self.write(socket, &buffer[..read], false)?;
        *offset += taken as u64;
        Ok(taken)
    }

    /// Writes queued records; Ok(true) once none is left.
    pub fn flush<S: Write + AsRawFd>(&mut self, socket: &mut S) -> io::Result<bool> {
        match &mut self.engine {
            Engine::User(connection) => {
                let done = flush_user(connection, socket)?;
                self.held &= !done;
                Ok(done)
            }
            Engine::KernelHandshake(handshake) => handshake.flush(socket.as_raw_fd()),
            Engine::Kernel(kernel) => kernel.flush(socket.as_raw_fd()),
            Engine::Broken => Err(broken()),
        }
    }

    /// Queues the close_notify alert (written by the next flush).
    pub fn close(&mut self) {
        match &mut self.engine {
            Engine::User(connection) => connection.send_close_notify(),
            Engine::Kernel(kernel) => kernel.close(),
            Engine::KernelHandshake(_) | Engine::Broken => {}
        }
    }

    /// Whether the handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        match &self.engine {
            Engine::User(connection) => connection.is_handshaking(),
            Engine::KernelHandshake(_) => true,
            Engine::Kernel(_) | Engine::Broken => false,
        }
    }

    /// The first time the handshake is seen complete: whether it resumed a
    /// session. None before, and after the first call.
    pub fn newly_established(&mut self) -> Option<bool> {
        if self.established || self.is_handshaking() || matches!(self.engine, Engine::Broken) {
            return None;
        }
        self.established = true;
        Some(match (&self.engine, &self.facts) {
            (Engine::User(connection), _) => {
                connection.handshake_kind() == Some(HandshakeKind::Resumed)
            }
            (_, Some(facts)) => facts.resumed,
            _ => false,
        })
    }

    /// The index of the certificate the handshake was made with.
    pub fn certificate(&self) -> usize {
        self.certificate
    }

    pub fn set_certificate(&mut self, certificate: usize) {
        self.certificate = certificate;
    }

    /// The SNI name the client sent.
    pub fn server_name(&self) -> Option<&str> {
        match (&self.engine, &self.facts) {
            (Engine::User(connection), _) => connection.server_name(),
            (_, Some(facts)) => facts.server_name.as_deref(),
            _ => None,
        }
    }

    /// `TLSv1.3` or `TLSv1.2`, for the access log.
    pub fn version(&self) -> &'static str {
        let version = match (&self.engine, &self.facts) {
            (Engine::User(connection), _) => connection.protocol_version(),
            (_, Some(facts)) => Some(facts.version),
            _ => None,
        };
        match version {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        }
    }
}

/// Writes rustls's queued records; Ok(true) once none is left.
fn flush_user(connection: &mut ServerConnection, socket: &mut impl Write) -> io::Result<bool> {
    while connection.wants_write() {
        match connection.write_tls(socket) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// What a failed handshake's error says about why.
pub fn failure_of(error: &io::Error) -> HandshakeFailure {
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return HandshakeFailure::Abandoned;
    };
    use rustls::{AlertDescription, Error, PeerIncompatible, PeerMisbehaved};
    match tls {
        Error::PeerIncompatible(
            PeerIncompatible::NoCipherSuitesInCommon
            | PeerIncompatible::NoKxGroupsInCommon
            | PeerIncompatible::NoSignatureSchemesInCommon
            | PeerIncompatible::Tls12NotOfferedOrEnabled
            | PeerIncompatible::SupportedVersionsExtensionRequired,
        )
        | Error::NoApplicationProtocol => HandshakeFailure::NoSharedCipher,
        Error::PeerMisbehaved(PeerMisbehaved::ServerNameMustContainOneHostName)
        | Error::PeerMisbehaved(PeerMisbehaved::ServerNameDifferedOnRetry) => {
            HandshakeFailure::BadServerName
        }
        Error::AlertReceived(
            AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::UnsupportedCertificate,
        ) => HandshakeFailure::CertificateRejected,
        _ => HandshakeFailure::Malformed,
    }
}

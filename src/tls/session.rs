//! One TLS connection over a non-blocking socket, driven from the worker's
//! readiness loop (rustls is sans-I/O: it is handed bytes and asked for
//! bytes). Reads give plaintext; writes take plaintext and encrypt it into
//! rustls's queue of records, which goes to the socket as it accepts it.
//!
//! Memory stays bounded: rustls's buffer limit (`PENDING_LIMIT_BYTES`)
//! caps the records waiting for the socket, so a writer that outruns its
//! client is told "would block" rather than buffering; between throttled
//! slices the queue is empty and its chunks freed.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use rustls::{HandshakeKind, ProtocolVersion, ServerConfig, ServerConnection};

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
    connection: ServerConnection,
    /// Set once the handshake completed (counted once).
    established: bool,
    /// The certificate its SNI chose (see `TlsSite`), noted once the
    /// handshake completes rather than matched again for every request.
    certificate: usize,
}

impl TlsSession {
    pub fn new(config: &Arc<ServerConfig>) -> Result<TlsSession, rustls::Error> {
        let mut connection = ServerConnection::new(Arc::clone(config))?;
        connection.set_buffer_limit(Some(PENDING_LIMIT_BYTES));
        Ok(TlsSession {
            connection,
            established: false,
            certificate: 0,
        })
    }

    /// Reads plaintext into `buf`. Ok(0) is the end (close_notify or the
    /// socket's end); WouldBlock means no plaintext yet (mid-handshake, or
    /// a partial record). Handshake replies are written as they arise.
    pub fn read(&mut self, socket: &mut (impl Read + Write), buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.connection.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed without close_notify: the same as an end.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match self.connection.read_tls(socket) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // What the handshake still has to say goes out now.
                    self.flush(socket)?;
                    return Err(e);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(error) = self.connection.process_new_packets() {
                // rustls queued the alert that says why; send it, then fail.
                let _ = self.flush(socket);
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
            self.flush(socket)?;
        }
    }

    /// Encrypts as much of `plaintext` as the queue takes and writes what
    /// the socket accepts. Returns the plaintext bytes taken; WouldBlock
    /// when none could be (the queue is full and the socket is too).
    pub fn write(&mut self, socket: &mut impl Write, plaintext: &[u8]) -> io::Result<usize> {
        let mut taken = 0;
        loop {
            if taken < plaintext.len() {
                taken += self.connection.writer().write(&plaintext[taken..])?;
            }
            match self.flush(socket) {
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
    pub fn write_file(
        &mut self,
        socket: &mut impl Write,
        file: &File,
        offset: &mut u64,
        count: usize,
        buffer: &mut [u8],
    ) -> io::Result<usize> {
        // Queued records first: no more plaintext until the socket takes them.
        if !self.flush(socket)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let want = count.min(buffer.len());
        let read = file.read_at(&mut buffer[..want], *offset)?;
        if read == 0 {
            return Ok(0);
        }
        let taken = self.write(socket, &buffer[..read])?;
        *offset += taken as u64;
        Ok(taken)
    }

    /// Writes queued records; Ok(true) once none is left.
    pub fn flush(&mut self, socket: &mut impl Write) -> io::Result<bool> {
        while self.connection.wants_write() {
            match self.connection.write_tls(socket) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Whether encrypted bytes wait for the socket.
    pub fn has_pending(&self) -> bool {
        self.connection.wants_write()
    }

    /// Queues the close_notify alert (written by the next flush).
    pub fn close(&mut self) {
        self.connection.send_close_notify();
    }

    /// Whether the handshake is still running.
    pub fn is_handshaking(&self) -> bool {
        self.connection.is_handshaking()
    }

    /// The first time the handshake is seen complete: whether it resumed a
    /// session. None before, and after the first call.
    pub fn newly_established(&mut self) -> Option<bool> {
        if self.established || self.connection.is_handshaking() {
            return None;
        }
        self.established = true;
        Some(self.connection.handshake_kind() == Some(HandshakeKind::Resumed))
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
        self.connection.server_name()
    }

    /// `TLSv1.3` or `TLSv1.2`, for the access log.
    pub fn version(&self) -> &'static str {
        match self.connection.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        }
    }
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

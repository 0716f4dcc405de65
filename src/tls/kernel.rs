//! A TLS connection whose records the kernel protects (`options.tls.kernel
//! = 'auto'` on a kernel with the `tls` module): rustls runs the handshake
//! (its unbuffered connection, driven here), then its kernel-connection API
//! exports the traffic secrets, and `sys::ktls` hands them to the socket.
//! From there on bodies go by `sendfile(2)` as over plain TCP.
//!
//! What the kernel path needs besides the keys:
//! - **No record read too far.** The kernel can only decrypt records still
//!   in the socket, so during the handshake records are read one at a time
//!   (the header peeked, then exactly that record): the first record after
//!   the handshake stays for the kernel.
//! - **Records rustls made before the switch** (TLS 1.3's session tickets)
//!   leave as they are before the transmit key is installed; until then
//!   nothing else is sent. The receive key is installed at once.
//! - **Control records.** An alert from the client ends the connection
//!   (close_notify cleanly); a TLS 1.3 KeyUpdate gets a new receive key and,
//!   when the client asks, our own KeyUpdate and a new transmit key; other
//!   post-handshake messages (TLS 1.2 renegotiation) end it. close_notify
//!   goes out as an alert record.
//! - **Key lifetime.** The kernel does not count records; this does (an
//!   over-estimate), and replaces the transmit key (TLS 1.3) or ends the
//!   connection (TLS 1.2) at half the cipher's confidentiality limit.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use rustls::kernel::KernelConnection;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, UnbufferedStatus};
use rustls::{
    ConnectionTrafficSecrets, HandshakeKind, ProtocolVersion, ServerConfig, SupportedCipherSuite,
};

use super::client_hello::{self, Sni};
use crate::sys;
use crate::sys::ktls::{self, Cipher, Direction, Received, RecordKeys};

/// TLS record header: content type, version, length.
const RECORD_HEADER: usize = 5;
/// Largest record a peer may send (16 KB of plaintext plus expansion).
const RECORD_MAX: usize = 16_384 + 2_048;
const HANDSHAKE: u8 = 22;
const ALERT: u8 = 21;
/// Handshake message type of KeyUpdate (TLS 1.3).
const KEY_UPDATE: u8 = 24;
/// The largest record the kernel makes: its plaintext.
const RECORD_PLAINTEXT: u64 = 16_384;

/// What the handshake saw, kept for the connection's life.
pub struct Facts {
    pub server_name: Option<String>,
    pub resumed: bool,
    pub version: ProtocolVersion,
}

/// A connection's handshake, over records read one at a time.
pub struct Handshake {
    connection: UnbufferedServerConnection,
    /// Received bytes rustls has not discarded yet.
    incoming: Vec<u8>,
    /// Bytes of the record being read that are still in the socket.
    record_left: usize,
    /// Records rustls made that the socket has not taken yet.
    outgoing: Vec<u8>,
    /// The ClientHello's bytes, until its SNI name is read.
    hello: Option<Vec<u8>>,
    /// The record being read, while the ClientHello is.
    record: Vec<u8>,
    server_name: Option<String>,
}

fn failed(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

impl Handshake {
    pub fn new(config: &Arc<ServerConfig>) -> Result<Handshake, rustls::Error> {
        Ok(Handshake {
            connection: UnbufferedServerConnection::new(Arc::clone(config))?,
            incoming: Vec::new(),
            record_left: 0,
            outgoing: Vec::new(),
            hello: Some(Vec::new()),
            record: Vec::new(),
            server_name: None,
        })
    }

    /// Runs the handshake as far as the socket allows: Ok(true) once it is
    /// complete (the connection may switch to the kernel), WouldBlock when
    /// the client has to send more.
    pub fn advance(&mut self, socket: RawFd) -> io::Result<bool> {
        loop {
            // What rustls made goes out as soon as the socket takes it; the
            // handshake does not wait for it (the switch does, see `Established`).
            self.flush(socket)?;
            let UnbufferedStatus { discard, state } =
                self.connection.process_tls_records(&mut self.incoming);
            let mut need_input = false;
            let mut complete = false;
            let state = match state {
                Ok(state) => state,
                Err(error) => {
                    self.send_alert(socket);
                    return Err(failed(error));
                }
            };
            match state {
                ConnectionState::EncodeTlsData(mut encoder) => {
                    let mut room = 4096;
                    loop {
                        let start = self.outgoing.len();
                        self.outgoing.resize(start + room, 0);
                        match encoder.encode(&mut self.outgoing[start..]) {
                            Ok(written) => {
                                self.outgoing.truncate(start + written);
                                break;
                            }
                            Err(EncodeError::InsufficientSize(size)) => {
                                self.outgoing.truncate(start);
                                room = size.required_size;
                            }
                            Err(e) => return Err(io::Error::other(e.to_string())),
                        }
                    }
                }
                // Kept in `outgoing` until the socket takes it.
                ConnectionState::TransmitTlsData(transmit) => transmit.done(),
                ConnectionState::BlockedHandshake => need_input = true,
                ConnectionState::WriteTraffic(_) => complete = true,
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                // Application data before the handshake ends, or early data
                // (not enabled): not a client this server speaks with.
                _ => {
                    return Err(failed(rustls::Error::General(
                        "data before the handshake completed".into(),
                    )));
                }
            }
            self.incoming.drain(..discard);
            if complete {
                return Ok(true);
            }
            if need_input {
                self.read_record(socket)?;
            }
        }
    }

    /// After a failure, the alert rustls queued that says why, if the
    /// socket takes it at once.
    fn send_alert(&mut self, socket: RawFd) {
        self.incoming.clear();
        if let Ok(ConnectionState::EncodeTlsData(mut encoder)) =
            self.connection.process_tls_records(&mut []).state
        {
            let mut alert = [0u8; 64];
            if let Ok(n) = encoder.encode(&mut alert) {
                self.outgoing.extend_from_slice(&alert[..n]);
            }
        }
        let _ = self.flush(socket);
    }

    /// Reads from the socket, never past the end of the record being read.
    fn read_record(&mut self, socket: RawFd) -> io::Result<()> {
        if self.record_left == 0 {
            let mut header = [0u8; RECORD_HEADER];
            let peeked = sys::socket::receive(socket, &mut header, true)?;
            if peeked == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if peeked < RECORD_HEADER {
                // The rest of the header is on its way: its arrival wakes us.
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            if len > RECORD_MAX {
                return Err(failed(rustls::Error::General("a record too long".into())));
            }
            self.record_left = RECORD_HEADER + len;
        }
        let start = self.incoming.len();
        self.incoming.resize(start + self.record_left, 0);
        let read = sys::socket::receive(socket, &mut self.incoming[start..], false);
        let taken = *read.as_ref().unwrap_or(&0);
        self.incoming.truncate(start + taken);
        match read? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                self.record_left -= n;
                if self.hello.is_some() {
                    self.note_hello(start, n);
                }
                Ok(())
            }
        }
    }

    /// Collects the ClientHello's bytes (the payloads of the first
    /// handshake records) until its SNI name can be read.
    fn note_hello(&mut self, start: usize, n: usize) {
        let Some(hello) = &mut self.hello else {
            return;
        };
        self.record
            .extend_from_slice(&self.incoming[start..start + n]);
        if self.record_left > 0 {
            return;
        }
        // A whole plaintext record: its header, then a handshake payload.
        if self.record.first() != Some(&HANDSHAKE) {
            self.hello = None;
            self.record = Vec::new();
            return;
        }
        hello.extend_from_slice(&self.record[RECORD_HEADER.min(self.record.len())..]);
        self.record.clear();
        if let Sni::Done(name) = client_hello::server_name(hello) {
            self.server_name = name;
            self.hello = None;
            self.record = Vec::new();
        }
    }

    /// Writes what waits; Ok(true) when nothing does.
    pub fn flush(&mut self, socket: RawFd) -> io::Result<bool> {
        flush_bytes(socket, &mut self.outgoing)
    }

    /// Turns the completed handshake into a kernel-TLS connection: the ULP
    /// attached, the receive key installed; the transmit key follows once
    /// the records still in `outgoing` are sent (see `Established::flush`).
    pub fn into_kernel(self, socket: RawFd) -> io::Result<(Established, Facts)> {
        let facts = Facts {
            server_name: self.server_name,
            resumed: self.connection.handshake_kind() == Some(HandshakeKind::Resumed),
            version: self
                .connection
                .protocol_version()
                .unwrap_or(ProtocolVersion::TLSv1_3),
        };
        let (secrets, connection) = self
            .connection
            .dangerous_into_kernel_connection()
            .map_err(failed)?;
        let suite = connection.negotiated_cipher_suite();
        let tls13 = facts.version == ProtocolVersion::TLSv1_3;
        ktls::attach(socket)?;
        install(
            socket,
            Direction::Receive,
            tls13,
            secrets.rx.0,
            &secrets.rx.1,
        )?;
        let mut established = Established {
            connection,
            tls13,
            records: 0,
            record_limit: confidentiality_limit(suite) / 2,
            unsent: self.outgoing,
            transmit: Some(secrets.tx),
            control: None,
            ended: false,
        };
        established.flush(socket)?;
        Ok((established, facts))
    }
}

fn confidentiality_limit(suite: SupportedCipherSuite) -> u64 {
    match suite {
        SupportedCipherSuite::Tls13(suite) => suite.common.confidentiality_limit,
        SupportedCipherSuite::Tls12(suite) => suite.common.confidentiality_limit,
    }
}

/// Hands one direction's secrets to the kernel.
fn install(
    socket: RawFd,
    direction: Direction,
    tls13: bool,
    sequence: u64,
    secrets: &ConnectionTrafficSecrets,
) -> io::Result<()> {
    let (cipher, key, iv) = match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (Cipher::Aes128Gcm, key, iv),
        ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (Cipher::Aes256Gcm, key, iv),
        ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
            (Cipher::Chacha20Poly1305, key, iv)
        }
        _ => return Err(io::Error::other("a cipher kernel TLS does not offer")),
    };
    ktls::set_keys(
        socket,
        direction,
        &RecordKeys {
            tls13,
            cipher,
            key: key.as_ref(),
            iv: iv.as_ref(),
            sequence,
        },
    )
}

/// Writes `bytes` from the front; Ok(true) once all are gone.
fn flush_bytes(socket: RawFd, bytes: &mut Vec<u8>) -> io::Result<bool> {
    while !bytes.is_empty() {
        match sys::send(socket, bytes, false) {
            Ok(n) => {
                bytes.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    *bytes = Vec::new();
    Ok(true)
}

/// A control record waiting for the socket.
struct Control {
    content_type: u8,
    payload: Vec<u8>,
    /// A KeyUpdate of ours: once it is sent, the transmit key changes.
    then_new_key: bool,
}

/// A connection the kernel encrypts.
pub struct Established {
    connection: KernelConnection<ServerConnectionData>,
    tls13: bool,
    /// Records the kernel may have made under the current transmit key (an
    /// over-estimate: every send counts its full records plus two).
    records: u64,
    record_limit: u64,
    /// rustls's last records (session tickets), sent before the transmit key goes in.
    unsent: Vec<u8>,
    /// The transmit secrets, until they are installed.
    transmit: Option<(u64, ConnectionTrafficSecrets)>,
    control: Option<Control>,
    /// close_notify sent: nothing more goes out.
    ended: bool,
}

impl Established {
    /// Sends what must precede new data: rustls's last records, then the
    /// transmit key, then a waiting control record. Ok(true) once done.
    pub fn flush(&mut self, socket: RawFd) -> io::Result<bool> {
        if !flush_bytes(socket, &mut self.unsent)? {
            return Ok(false);
        }
        if let Some((sequence, secrets)) = self.transmit.take() {
            install(socket, Direction::Transmit, self.tls13, sequence, &secrets)?;
        }
        if let Some(control) = &self.control {
            match ktls::send_control(socket, control.content_type, &control.payload) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
            let then_new_key = control.then_new_key;
            self.control = None;
            if then_new_key {
                let (sequence, secrets) = self.connection.update_tx_secret().map_err(failed)?;
                install(socket, Direction::Transmit, true, sequence, &secrets)?;
                self.records = 0;
            }
        }
        Ok(true)
    }

    /// Counts what a send of `bytes` may have made, and plans a new key
    /// (or the end) at half the cipher's limit.
    fn count(&mut self, bytes: usize) -> io::Result<()> {
        self.records += bytes as u64 / RECORD_PLAINTEXT + 2;
        if self.records < self.record_limit || self.control.is_some() {
            return Ok(());
        }
        if !self.tls13 {
            return Err(io::Error::other(
                "the TLS 1.2 key has protected as many records as it safely may",
            ));
        }
        self.control = Some(key_update(false));
        Ok(())
    }

    /// Writes plaintext (the kernel encrypts); WouldBlock while something must go first.
    pub fn send(&mut self, socket: RawFd, buf: &[u8], more: bool) -> io::Result<usize> {
        if !self.flush(socket)? || self.ended {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let sent = sys::send(socket, buf, more)?;
        self.count(sent)?;
        Ok(sent)
    }

    /// Sends file bytes by sendfile(2); the kernel encrypts them.
    pub fn send_file(
        &mut self,
        socket: RawFd,
        file: &File,
        offset: &mut u64,
        count: usize,
    ) -> io::Result<usize> {
        if !self.flush(socket)? || self.ended {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let sent = sys::sendfile(socket, file.as_raw_fd(), offset, count)?;
        self.count(sent)?;
        Ok(sent)
    }

    /// Reads decrypted application data; Ok(0) at the end (close_notify or
    /// the TCP end). Control records are handled on the way.
    pub fn read(&mut self, socket: RawFd, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match ktls::receive(socket, buf)? {
                Received::Data(n) => return Ok(n),
                Received::Control { content_type, len } => {
                    let record = &buf[..len];
                    match content_type {
                        ALERT => return alert(record),
                        HANDSHAKE => self.post_handshake(socket, record)?,
                        _ => {
                            return Err(failed(rustls::Error::General(format!(
                                "an unexpected record of type {content_type}"
                            ))));
                        }
                    }
                }
            }
        }
    }

    /// TLS 1.3 messages after the handshake: KeyUpdate is the only one a
    /// client may send to this server.
    fn post_handshake(&mut self, socket: RawFd, mut messages: &[u8]) -> io::Result<()> {
        while !messages.is_empty() {
            let (kind, body, rest) = match messages {
                [kind, a, b, c, rest @ ..] => {
                    let len = u32::from_be_bytes([0, *a, *b, *c]) as usize;
                    if rest.len() < len {
                        return Err(failed(rustls::Error::General(
                            "a cut handshake message".into(),
                        )));
                    }
                    let (body, rest) = rest.split_at(len);
                    (*kind, body, rest)
                }
                _ => {
                    return Err(failed(rustls::Error::General(
                        "a cut handshake message".into(),
                    )));
                }
            };
            messages = rest;
            if !self.tls13 || kind != KEY_UPDATE || body.len() != 1 || body[0] > 1 {
                // TLS 1.2 renegotiation, or a message a client may not send.
                return Err(failed(rustls::Error::General(format!(
                    "a handshake message of type {kind} after the handshake"
                ))));
            }
            let (sequence, secrets) = self.connection.update_rx_secret().map_err(failed)?;
            install(socket, Direction::Receive, true, sequence, &secrets)?;
            if body[0] == 1 && self.control.is_none() {
                // update_requested: ours goes out before any more data.
                self.control = Some(key_update(false));
            }
        }
        Ok(())
    }

    /// Queues close_notify (sent by the next flush); nothing else follows it.
    pub fn close(&mut self) {
        if self.control.is_none() && !self.ended {
            self.control = Some(Control {
                content_type: ALERT,
                payload: vec![1, 0],
                then_new_key: false,
            });
        }
        self.ended = true;
    }
}

/// Our KeyUpdate message (update_not_requested unless `request`).
fn key_update(request: bool) -> Control {
    Control {
        content_type: HANDSHAKE,
        payload: vec![KEY_UPDATE, 0, 0, 1, u8::from(request)],
        then_new_key: true,
    }
}

/// An alert from the client: close_notify is the end, any other an error.
fn alert(record: &[u8]) -> io::Result<usize> {
    match record {
        [_, 0] => Ok(0),
        [_, description] => Err(failed(rustls::Error::AlertReceived(
            rustls::AlertDescription::from(*description),
        ))),
        _ => Err(failed(rustls::Error::General("a malformed alert".into()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_end_the_connection_cleanly_only_for_close_notify() {
        assert_eq!(alert(&[1, 0]).ok(), Some(0));
        assert!(alert(&[2, 40]).is_err());
        assert!(alert(&[1]).is_err());
    }

    #[test]
    fn our_key_update_is_a_five_byte_message() {
        let control = key_update(false);
        assert_eq!(control.payload, [24, 0, 0, 1, 0]);
        assert_eq!(control.content_type, 22);
        assert!(control.then_new_key);
        assert_eq!(key_update(true).payload[4], 1);
    }
}

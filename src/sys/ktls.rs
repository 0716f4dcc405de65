//! Kernel TLS: once a handshake is done in user space, the connection's
//! record keys go to the kernel's `tls` upper-layer protocol, which then
//! encrypts what `write(2)` and `sendfile(2)` put on the socket and
//! decrypts what comes in, so bodies stay zero-copy over HTTPS.
//!
//! What the kernel hands back that is not application data (alerts,
//! TLS 1.3 post-handshake messages such as KeyUpdate) arrives as a record
//! of its own with its content type in a control message; what we send
//! that is not application data (close_notify, our KeyUpdate) goes the
//! same way. The structures are the kernel's (`linux/tls.h`, from libc).

use std::io;
use std::os::fd::RawFd;

/// Where the kernel lists the upper-layer protocols it has loaded.
const AVAILABLE_ULP: &str = "/proc/sys/net/ipv4/tcp_available_ulp";

/// TLS content type of application data; any other arrives as a control record.
pub const APPLICATION_DATA: u8 = 23;

/// Whether this kernel offers kernel TLS now (the `tls` module is loaded).
pub fn available() -> bool {
    std::fs::read_to_string(AVAILABLE_ULP)
        .map(|list| list.split_whitespace().any(|ulp| ulp == "tls"))
        .unwrap_or(false)
}

/// The record protection the handshake agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
}

/// One direction's keys, as TLS derives them: the AEAD key, the 12-byte
/// IV (salt and explicit part together) and the next record's sequence number.
pub struct RecordKeys<'a> {
    pub tls13: bool,
    pub cipher: Cipher,
    pub key: &'a [u8],
    pub iv: &'a [u8],
    pub sequence: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Transmit,
    Receive,
}

/// The kernel's description of one direction's keys.
enum CryptoInfo {
    Aes128Gcm(libc::tls12_crypto_info_aes_gcm_128),
    Aes256Gcm(libc::tls12_crypto_info_aes_gcm_256),
    Chacha20Poly1305(libc::tls12_crypto_info_chacha20_poly1305),
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

/// Copies `from` into `to`, which must be exactly as long.
fn fill(to: &mut [u8], from: &[u8]) -> io::Result<()> {
    if to.len() != from.len() {
        return Err(invalid("a key or IV of the wrong length for its cipher"));
    }
    to.copy_from_slice(from);
    Ok(())
}

impl CryptoInfo {
    fn new(keys: &RecordKeys) -> io::Result<CryptoInfo> {
        let version = if keys.tls13 {
            libc::TLS_1_3_VERSION
        } else {
            libc::TLS_1_2_VERSION
        };
        let sequence = keys.sequence.to_be_bytes();
        if keys.iv.len() != 12 {
            return Err(invalid("an IV that is not 12 bytes"));
        }
        // For AES-GCM the kernel takes the IV's first 4 bytes as the salt
        // and the other 8 as the IV; ChaCha20-Poly1305 takes all 12 as IV.
        let (salt, explicit) = keys.iv.split_at(4);
        Ok(match keys.cipher {
            Cipher::Aes128Gcm => {
                let mut info = libc::tls12_crypto_info_aes_gcm_128 {
                    info: libc::tls_crypto_info {
                        version,
                        cipher_type: libc::TLS_CIPHER_AES_GCM_128,
                    },
                    iv: [0; 8],
                    key: [0; 16],
                    salt: [0; 4],
                    rec_seq: sequence,
                };
                fill(&mut info.iv, explicit)?;
                fill(&mut info.key, keys.key)?;
                fill(&mut info.salt, salt)?;
                CryptoInfo::Aes128Gcm(info)
            }
            Cipher::Aes256Gcm => {
                let mut info = libc::tls12_crypto_info_aes_gcm_256 {
                    info: libc::tls_crypto_info {
                        version,
                        cipher_type: libc::TLS_CIPHER_AES_GCM_256,
                    },
                    iv: [0; 8],
                    key: [0; 32],
                    salt: [0; 4],
                    rec_seq: sequence,
                };
                fill(&mut info.iv, explicit)?;
                fill(&mut info.key, keys.key)?;
                fill(&mut info.salt, salt)?;
                CryptoInfo::Aes256Gcm(info)
            }
            Cipher::Chacha20Poly1305 => {
                let mut info = libc::tls12_crypto_info_chacha20_poly1305 {
                    info: libc::tls_crypto_info {
                        version,
                        cipher_type: libc::TLS_CIPHER_CHACHA20_POLY1305,
                    },
                    iv: [0; 12],
                    key: [0; 32],
                    salt: [0; 0],
                    rec_seq: sequence,
                };
                fill(&mut info.iv, keys.iv)?;
                fill(&mut info.key, keys.key)?;
                CryptoInfo::Chacha20Poly1305(info)
            }
        })
    }

    /// The structure's address and size, for setsockopt.
    fn as_raw(&self) -> (*const libc::c_void, libc::socklen_t) {
        fn raw<T>(value: &T) -> (*const libc::c_void, libc::socklen_t) {
            (
                (value as *const T).cast(),
                std::mem::size_of::<T>() as libc::socklen_t,
            )
        }
        match self {
            CryptoInfo::Aes128Gcm(info) => raw(info),
            CryptoInfo::Aes256Gcm(info) => raw(info),
            CryptoInfo::Chacha20Poly1305(info) => raw(info),
        }
    }
}

impl Drop for CryptoInfo {
    /// The key material does not outlive the call that handed it over.
    fn drop(&mut self) {
        match self {
            CryptoInfo::Aes128Gcm(info) => info.key.fill(0),
            CryptoInfo::Aes256Gcm(info) => info.key.fill(0),
            CryptoInfo::Chacha20Poly1305(info) => info.key.fill(0),
        }
    }
}

/// Puts the `tls` upper-layer protocol on a connected TCP socket.
pub fn attach(socket: RawFd) -> io::Result<()> {
    let name = b"tls";
    // SAFETY: the option value is a valid byte string of the given length.
    let ret = unsafe {
        libc::setsockopt(
            socket,
            libc::SOL_TCP,
            libc::TCP_ULP,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Hands one direction's keys to the kernel (again after a TLS 1.3 key update).
pub fn set_keys(socket: RawFd, direction: Direction, keys: &RecordKeys) -> io::Result<()> {
    let info = CryptoInfo::new(keys)?;
    let (value, len) = info.as_raw();
    let option = match direction {
        Direction::Transmit => libc::TLS_TX,
        Direction::Receive => libc::TLS_RX,
    };
    // SAFETY: `value` points at a live, fully initialised crypto_info
    // structure of `len` bytes (`info` lives until the end of the function).
    let ret = unsafe { libc::setsockopt(socket, libc::SOL_TLS, option, value, len) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What one receive on a kernel-TLS socket gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Application data (0 = the peer closed the TCP connection).
    Data(usize),
    /// A whole record of another content type (alert, handshake), its
    /// plaintext in the buffer.
    Control { content_type: u8, len: usize },
}

/// Room for one control message carrying one byte.
const CONTROL_SPACE: usize = 32;

/// Reads decrypted bytes into `buf`, telling application data from other records.
pub fn receive(socket: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut control = [0u64; CONTROL_SPACE / 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr is valid (null pointers, zero lengths).
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = CONTROL_SPACE as _;
    // SAFETY: the iovec and control buffer are valid for the whole call.
    let n = unsafe { libc::recvmsg(socket, &mut message, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = n as usize;
    // SAFETY: the kernel filled `message` and its control buffer; the CMSG
    // macros walk only within msg_controllen.
    let mut header = unsafe { libc::CMSG_FIRSTHDR(&message) };
    while !header.is_null() {
        // SAFETY: `header` points at a control message inside `control`.
        let (level, kind) = unsafe { ((*header).cmsg_level, (*header).cmsg_type) };
        if level == libc::SOL_TLS && kind == libc::TLS_GET_RECORD_TYPE {
            // SAFETY: this message's data is the record type, one byte.
            let content_type = unsafe { *libc::CMSG_DATA(header) };
            if content_type != APPLICATION_DATA {
                return Ok(Received::Control { content_type, len });
            }
        }
        // SAFETY: as above.
        header = unsafe { libc::CMSG_NXTHDR(&message, header) };
    }
    Ok(Received::Data(len))
}

/// Sends `payload` as one record of `content_type` (an alert, a handshake
/// message); returns the bytes taken (all or, on a full socket, an error).
pub fn send_control(socket: RawFd, content_type: u8, payload: &[u8]) -> io::Result<usize> {
    let mut control = [0u64; CONTROL_SPACE / 8];
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr().cast_mut().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: a zeroed msghdr is valid (null pointers, zero lengths).
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE/LEN are arithmetic on the given length.
    message.msg_controllen = unsafe { libc::CMSG_SPACE(1) } as _;
    // SAFETY: the control buffer holds CMSG_SPACE(1) bytes (≤ CONTROL_SPACE),
    // so the first header and its one data byte lie inside it; sendmsg
    // only reads the iovec (the kernel does not write to `payload`).
    let n = unsafe {
        let header = libc::CMSG_FIRSTHDR(&message);
        (*header).cmsg_level = libc::SOL_TLS;
        (*header).cmsg_type = libc::TLS_SET_RECORD_TYPE;
        (*header).cmsg_len = libc::CMSG_LEN(1) as _;
        *libc::CMSG_DATA(header) = content_type;
        libc::sendmsg(socket, &message, libc::MSG_NOSIGNAL)
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(cipher: Cipher, key: &[u8]) -> RecordKeys<'_> {
        RecordKeys {
            tls13: true,
            cipher,
            key,
            iv: &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
            sequence: 0x0102_0304_0506_0708,
        }
    }

    #[test]
    fn gcm_splits_the_iv_into_salt_and_explicit_part() {
        let key = [9u8; 16];
        let made = CryptoInfo::new(&keys(Cipher::Aes128Gcm, &key)).expect("built");
        assert_eq!(made.as_raw().1 as usize, 40, "the kernel's size");
        let CryptoInfo::Aes128Gcm(info) = &made else {
            panic!("an AES-128-GCM structure");
        };
        assert_eq!(info.info.version, 0x0304);
        assert_eq!(info.info.cipher_type, 51);
        assert_eq!(info.salt, [1, 2, 3, 4]);
        assert_eq!(info.iv, [5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(info.key, key);
        assert_eq!(info.rec_seq, [1, 2, 3, 4, 5, 6, 7, 8], "big-endian");
    }

    #[test]
    fn chacha_takes_the_whole_iv_and_tls_1_2_its_version() {
        let key = [7u8; 32];
        let mut twelve = keys(Cipher::Chacha20Poly1305, &key);
        twelve.tls13 = false;
        let made = CryptoInfo::new(&twelve).expect("built");
        assert_eq!(made.as_raw().1 as usize, 56);
        let CryptoInfo::Chacha20Poly1305(info) = &made else {
            panic!("a ChaCha20-Poly1305 structure");
        };
        assert_eq!(info.info.version, 0x0303);
        assert_eq!(info.info.cipher_type, 54);
        assert_eq!(info.iv, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let made = CryptoInfo::new(&keys(Cipher::Aes256Gcm, &key)).expect("built");
        assert_eq!(made.as_raw().1 as usize, 56);
        let CryptoInfo::Aes256Gcm(info) = &made else {
            panic!("an AES-256-GCM structure");
        };
        assert_eq!(info.info.cipher_type, 52);
    }

    #[test]
    fn keys_of_the_wrong_length_are_refused() {
        assert!(CryptoInfo::new(&keys(Cipher::Aes128Gcm, &[0; 32])).is_err());
        assert!(CryptoInfo::new(&keys(Cipher::Aes256Gcm, &[0; 16])).is_err());
        let mut short_iv = keys(Cipher::Aes128Gcm, &[0; 16]);
        short_iv.iv = &[0; 8];
        assert!(CryptoInfo::new(&short_iv).is_err());
    }

    #[test]
    fn a_plain_socket_refuses_record_keys_and_the_ulp_follows_the_kernel() {
        use std::net::{TcpListener, TcpStream};
        use std::os::fd::AsRawFd;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let key = [0u8; 16];
        // Without the ULP, SOL_TLS options do not exist on a TCP socket.
        assert!(
            set_keys(
                client.as_raw_fd(),
                Direction::Transmit,
                &keys(Cipher::Aes128Gcm, &key)
            )
            .is_err()
        );
        match attach(client.as_raw_fd()) {
            Ok(()) => {
                assert!(available(), "the ULP attached, so the kernel lists it");
                set_keys(
                    client.as_raw_fd(),
                    Direction::Transmit,
                    &keys(Cipher::Aes128Gcm, &key),
                )
                .expect("TLS_TX on a tls socket");
            }
            Err(e) => {
                assert!(!available(), "{e}, yet the kernel lists tls");
                eprintln!("kernel TLS skipped: this kernel has no tls ULP ({e})");
            }
        }
    }
}

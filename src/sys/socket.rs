//! Listening sockets with the options the server needs (SO_REUSEPORT,
//! TCP_DEFER_ACCEPT, dual-stack IPv6, backlog), TCP_CORK, and reads that may peek.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use super::check;

/// How many connections the kernel may queue before the worker accepts them.
pub const LISTEN_BACKLOG: libc::c_int = 4096;
/// How long a client port waits for a connection's first bytes before
/// handing it to accept() anyway (TCP_DEFER_ACCEPT, in seconds).
const DEFER_ACCEPT_SECS: libc::c_int = 1;

fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` lives for the call and its exact size is passed.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    } as libc::c_long)?;
    Ok(())
}

/// Turns TCP_CORK on or off. While on, TCP sends only full segments (a
/// partial one waits at most 200 ms, or until the cork is removed, which
/// sends it at once).
pub fn set_cork(fd: RawFd, on: bool) -> io::Result<()> {
    set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_CORK, libc::c_int::from(on))
}

/// Reads into `buf` from a connected socket; with `peek`, leaves the bytes
/// in the socket (MSG_PEEK).
pub fn receive(fd: RawFd, buf: &mut [u8], peek: bool) -> io::Result<usize> {
    let flags = if peek { libc::MSG_PEEK } else { 0 };
    // SAFETY: `buf` is a valid, exclusively borrowed slice for the whole call.
    let n = check(
        unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) } as libc::c_long,
    )?;
    Ok(n as usize)
}

/// Creates a non-blocking listening socket on `addr`. A client port
/// (`client_port`) gets SO_REUSEPORT, so several sockets can be bound to the
/// same address and the kernel spreads new connections over them (one per
/// worker: no thundering herd), and TCP_DEFER_ACCEPT (below). An IPv6
/// wildcard address also accepts IPv4 (dual-stack).
pub fn listen(addr: SocketAddr, client_port: bool) -> io::Result<TcpListener> {
    let listener = bind(addr, client_port)?;
    // Accepted sockets inherit TCP_NODELAY from their listener (Linux
    // copies it): one setsockopt per port, not one per connection.
    set_int_option(
        listener.as_raw_fd(),
        libc::IPPROTO_TCP,
        libc::TCP_NODELAY,
        1,
    )?;
    if client_port {
        // A connection is handed to accept() only once its first bytes have
        // arrived (HTTP and TLS clients speak first), so a worker accepts and
        // reads it in one turn instead of waking twice: 16 % less CPU per
        // connection (benches/PROFILE.md). A client silent for a second is
        // accepted anyway, at the handshake's first retransmission, and its
        // header_timeout starts then. nginx's `listen … deferred`.
        set_int_option(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            DEFER_ACCEPT_SECS,
        )?;
    }
    // SAFETY: plain call on our descriptor.
    check(unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) } as libc::c_long)?;
    Ok(listener)
}

/// Fails with EADDRINUSE when another socket (even one with SO_REUSEPORT,
/// which would otherwise share the port with us silently) holds `addr`.
/// Binds without listening, so no connection can land on the probe.
pub fn check_unused(addr: SocketAddr) -> io::Result<()> {
    bind(addr, false).map(drop)
}

fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let (family, ipv6) = match addr {
        SocketAddr::V4(_) => (libc::AF_INET, false),
        SocketAddr::V6(_) => (libc::AF_INET6, true),
    };
    // SAFETY: socket() takes integers only.
    let fd = check(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    } as libc::c_long)? as RawFd;
    // SAFETY: the descriptor was just created and is owned by nobody else; the
    // listener closes it on every error path below.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if reuse_port {
        set_int_option(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    }
    if ipv6 {
        set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0)?;
    }
    let (storage, len) = socket_address(addr);
    // SAFETY: `storage` holds a sockaddr of `len` valid bytes.
    check(
        unsafe { libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) }
            as libc::c_long,
    )?;
    Ok(listener)
}

fn socket_address(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

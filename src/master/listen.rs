//! The master's listening sockets: one SO_REUSEPORT socket per worker, and
//! waiting for a port that a dead master's children are still closing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use crate::sys;

/// How long a starting master waits for a port a previous one's children
/// still hold.
const PORT_WAIT: Duration = Duration::from_secs(2);

/// Tries `bind` until it stops failing with EADDRINUSE, for up to
/// `PORT_WAIT`: the children of a master that died (killed, then restarted
/// by runit) close their listening sockets a moment after it.
pub(super) fn when_free<T>(
    address: SocketAddr,
    mut bind: impl FnMut() -> std::io::Result<T>,
) -> std::io::Result<T> {
    let deadline = Instant::now() + PORT_WAIT;
    loop {
        match bind() {
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) && Instant::now() < deadline => {
                log::debug!("{address} is in use; trying again");
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Binds `count` sockets on `address` with SO_REUSEPORT. Port 0 picks a free
/// port for the first and binds the rest to the same one. A wildcard IPv6
/// address falls back to IPv4 on machines without IPv6.
pub(super) fn bind_listeners(
    address: SocketAddr,
    count: usize,
) -> std::io::Result<(Vec<TcpListener>, SocketAddr)> {
    if address.port() != 0
        && let Err(e) = when_free(address, || sys::socket::check_unused(address))
        && e.raw_os_error() == Some(libc::EADDRINUSE)
    {
        return Err(e);
    }
    let first = match sys::socket::listen(address, true) {
        Ok(listener) => listener,
        Err(e)
            if address.ip() == IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED)
                && matches!(
                    e.raw_os_error(),
                    Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL)
                ) =>
        {
            sys::socket::listen(
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), address.port()),
                true,
            )?
        }
        Err(e) => return Err(e),
    };
    let bound = first.local_addr()?;
    let mut listeners = vec![first];
    while listeners.len() < count {
        listeners.push(sys::socket::listen(bound, true)?);
    }
    Ok((listeners, bound))
}

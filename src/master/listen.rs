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

/// One listening port of the current generation: a socket per worker.
pub(super) struct Port {
    pub sockets: Vec<TcpListener>,
    /// The address bound (with the port the kernel picked for port 0).
    pub address: SocketAddr,
}

impl Port {
    pub fn bind(requested: SocketAddr, count: usize) -> std::io::Result<Port> {
        let (sockets, address) = bind_listeners(requested, count)?;
        Ok(Port { sockets, address })
    }

    /// Whether `requested` names the address this port is bound to (port 0
    /// and the wildcards included).
    fn serves(&self, requested: SocketAddr) -> bool {
        requested == self.address
            || (requested.port() == 0 && requested.ip() == self.address.ip())
            || (requested.port() == self.address.port()
                && requested.ip().is_unspecified()
                && self.address.ip().is_unspecified())
    }
}

/// A port made for a reload, and whether it took the running one's sockets
/// (which must go back if the reload fails).
pub(super) struct Reloaded {
    pub port: Option<Port>,
    pub took_running: bool,
}

/// The sockets of the next generation's `count` workers on `requested`
/// (None = the port is off): the running port's own when the address is
/// unchanged, so no queued connection is lost, else new ones. On failure
/// the running port is left as it was.
pub(super) fn reload_port(
    running: &mut Option<Port>,
    requested: Option<SocketAddr>,
    count: usize,
) -> Result<Reloaded, String> {
    let Some(requested) = requested else {
        return Ok(Reloaded {
            port: None,
            took_running: false,
        });
    };
    let Some(mut port) = running.take_if(|port| port.serves(requested)) else {
        let port = Port::bind(requested, count)
            .map_err(|e| format!("cannot listen on {requested}: {e}"))?;
        return Ok(Reloaded {
            port: Some(port),
            took_running: false,
        });
    };
    let running_count = port.sockets.len();
    // Sockets beyond the running count are dropped again on failure: a
    // socket of the SO_REUSEPORT group that no worker accepts on would
    // strand the connections the kernel hands it.
    while port.sockets.len() < count {
        match sys::socket::listen(port.address, true)
            .or_else(|_| bind_listeners(port.address, 1).map(|(mut l, _)| l.remove(0)))
        {
            Ok(socket) => port.sockets.push(socket),
            Err(e) => {
                let message = format!("cannot listen on {}: {e}", port.address);
                port.sockets.truncate(running_count);
                *running = Some(port);
                return Err(message);
            }
        }
    }
    port.sockets.truncate(count);
    Ok(Reloaded {
        port: Some(port),
        took_running: true,
    })
}

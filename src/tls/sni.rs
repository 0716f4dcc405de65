//! Choosing a certificate by the client's SNI name: the hosts' patterns are
//! tried in their order, as for the Host header; the first host that
//! matches decides, with its own certificate or the listener's. Clients
//! without SNI get the listener's certificate.

use std::fmt;
use std::sync::Arc;

use pcre2::bytes::Regex;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificates of a site: index 0 is the listener's, then the hosts'.
pub struct SniResolver {
    certificates: Vec<Arc<CertifiedKey>>,
    /// Each host's pattern (None matches everything) and its certificate's
    /// index in `certificates`.
    hosts: Vec<(Option<Regex>, usize)>,
}

impl SniResolver {
    pub fn new(certificates: Vec<Arc<CertifiedKey>>, hosts: Vec<(Option<Regex>, usize)>) -> Self {
        SniResolver {
            certificates,
            hosts,
        }
    }

    /// The index of the certificate a handshake naming `server_name` gets.
    pub fn choose(&self, server_name: Option<&str>) -> usize {
        let Some(name) = server_name else {
            return 0;
        };
        self.hosts
            .iter()
            .find(|(pattern, _)| match pattern {
                None => true,
                // A matching error (resource limits) counts as no match.
                Some(regex) => regex.is_match(name.as_bytes()).unwrap_or(false),
            })
            .map_or(0, |(_, certificate)| *certificate)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let index = self.choose(client_hello.server_name());
        self.certificates.get(index).cloned()
    }
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SniResolver({} certificates, {} hosts)",
            self.certificates.len(),
            self.hosts.len()
        )
    }
}

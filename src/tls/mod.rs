//! HTTPS: the rustls server configuration every worker's TLS connections
//! share — TLS 1.3 and 1.2 only, rustls's safe default suites (AES-GCM
//! first, then ChaCha20-Poly1305), ALPN `http/1.1`, no renegotiation, no
//! compression, session tickets sealed with one key the master makes and
//! rotates (so a session resumes on any worker, [`tickets`]) — with
//! certificates chosen by SNI ([`sni`]), loaded by the master (as root) at
//! start and on each reload ([`certs`]); and one connection's encryption
//! over a non-blocking socket ([`session`]).
//!
//! Layer: beside `stream`, above `options`; imports neither `access`,
//! `route` nor `worker` (host patterns come in compiled).
//!
//! The crypto provider is *ring*: it builds with a C compiler alone (no
//! cmake or Go, which aws-lc-rs may need), quickly — the test command builds
//! the crate several times — and its AES-GCM, ChaCha20-Poly1305, X25519 and
//! P-256 code is BoringSSL's assembly, as fast as OpenSSL's on x86-64.

pub mod certs;
mod client_hello;
pub mod kernel;
pub mod session;
pub mod sni;
pub mod tickets;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use pcre2::bytes::Regex;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;

use crate::options::OptionsError;
use crate::options::tls::{HostTlsOptions, KernelTls, TlsOptions};
pub use session::TlsSession;
use sni::SniResolver;
use tickets::{SharedTicketer, TicketKeys};

/// What the workers' TLS connections are made with.
pub struct TlsSite {
    pub config: Arc<ServerConfig>,
    pub resolver: Arc<SniResolver>,
    /// The index of each host's certificate (0 = the listener's), by host
    /// index: a request whose host has another than its connection's is
    /// misdirected (421).
    pub host_certificates: Vec<usize>,
    /// Whether bodies may go to kernel TLS (`options.tls.kernel`).
    pub kernel: KernelTls,
}

/// One host as the TLS configuration sees it.
pub struct TlsHost<'a> {
    pub pattern: &'a str,
    /// Its compiled pattern (None for the empty one, which matches all).
    pub regex: Option<Regex>,
    pub tls: &'a HostTlsOptions,
}

impl TlsSite {
    /// Loads every certificate and builds the configuration. `now` is Unix
    /// seconds; certificates expiring within 14 days are returned as warnings.
    pub fn compile(
        options: &TlsOptions,
        hosts: Vec<TlsHost>,
        now: i64,
    ) -> Result<(TlsSite, Vec<String>), OptionsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut warnings = Vec::new();
        let mut certificates = Vec::new();
        let mut loaded: HashMap<(PathBuf, PathBuf), usize> = HashMap::new();
        let mut load = |option: &str, cert: &PathBuf, key: &PathBuf| {
            if let Some(&index) = loaded.get(&(cert.clone(), key.clone())) {
                return Ok::<usize, OptionsError>(index);
            }
            let certificate = certs::load(option, cert, key, &provider, now)?;
            if certificate.not_after - now < certs::EXPIRY_WARNING_SECS {
                warnings.push(format!(
                    "option '{option}': {} ('{}') expires on {}",
                    cert.display(),
                    certificate.subject,
                    crate::http::date::format(certificate.not_after)
                ));
            }
            certificates.push(certificate.key);
            loaded.insert((cert.clone(), key.clone()), certificates.len() - 1);
            Ok(certificates.len() - 1)
        };
        load("tls.cert", &options.cert, &options.key)?;
        let mut host_certificates = Vec::with_capacity(hosts.len());
        let mut patterns = Vec::with_capacity(hosts.len());
        for host in hosts {
            let index = match (&host.tls.cert, &host.tls.key) {
                (Some(cert), Some(key)) => {
                    load(&format!("hosts['{}'].cert", host.pattern), cert, key)?
                }
                _ => 0,
            };
            host_certificates.push(index);
            patterns.push((host.regex, index));
        }
        let resolver = Arc::new(SniResolver::new(certificates, patterns));
        let config = server_config(provider, Arc::clone(&resolver), options.session_timeout)?;
        Ok((
            TlsSite {
                config,
                resolver,
                host_certificates,
                kernel: options.kernel,
            },
            warnings,
        ))
    }
}

fn server_config(
    provider: Arc<CryptoProvider>,
    resolver: Arc<SniResolver>,
    session_timeout: u64,
) -> Result<Arc<ServerConfig>, OptionsError> {
    let fail = |e: rustls::Error| OptionsError::option("tls", e);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(fail)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // One key for every worker, made and rotated by the master (see
    // `tickets`): a client resumes its session on whichever worker it
    // reaches, and across reloads.
    let keys = TicketKeys::shared().map_err(|e| {
        OptionsError::option("tls", format!("cannot map the session ticket keys: {e}"))
    })?;
    config.ticketer = Arc::new(SharedTicketer::new(keys, session_timeout));
    Ok(Arc::new(config))
}

//! HTTPS settings as options.lua writes them: the TLS listener
//! (`options.tls`) and each host's certificate, redirect and HSTS. Plain
//! values only; `crate::tls` loads the files and builds the configuration.

use std::path::PathBuf;

use mlua::{Table, Value};

use super::OptionsError;

/// `options.tls = { port = 8443, bind = '*', cert = '…', key = '…', kernel = 'auto',
/// session_timeout = 21600 }`.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsOptions {
    /// Listen address of the HTTPS port; `*` = every IPv4 and IPv6 address.
    pub bind: String,
    pub port: u16,
    /// The default certificate chain (PEM), for names no host's own covers
    /// and for clients that send no SNI.
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: PathBuf,
    /// Whether bodies may be handed to kernel TLS (`'auto'`) or are always
    /// encrypted in user space (`'off'`).
    pub kernel: KernelTls,
    /// Seconds a session may be resumed: the ticket key is replaced this
    /// often, and a ticket opens under the current key and the previous one.
    pub session_timeout: u64,
}

/// `options.tls.kernel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelTls {
    /// Offload to the kernel's `tls` ULP when it is there.
    Auto,
    Off,
}

/// A host's HTTPS settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostTlsOptions {
    /// The host's own certificate chain and key, chosen when the client's
    /// SNI name selects this host.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// `https = 'redirect'`: plain-HTTP requests get a 308 to HTTPS (except
    /// ACME HTTP-01 challenges).
    pub redirect: bool,
    /// `hsts = SECONDS`: Strict-Transport-Security on HTTPS answers.
    pub hsts: Option<u64>,
}

/// The default HTTPS port.
pub const DEFAULT_TLS_PORT: u16 = 8443;

/// The keys of `options.tls`.
pub const TLS_KEYS: &[&str] = &["port", "bind", "cert", "key", "kernel", "session_timeout"];

/// The default `session_timeout`: six hours, as rustls's own ticketer.
pub const DEFAULT_SESSION_TIMEOUT_SECS: u64 = 6 * 3600;

/// Longest `session_timeout`: seven days, the most TLS 1.3 lets a ticket live.
const SESSION_TIMEOUT_MAX_SECS: u64 = 7 * 24 * 3600;

/// The keys a host may set for HTTPS, and their Lua types.
pub const HOST_TLS_TYPES: &[(&str, &str)] = &[
    ("cert", "string"),
    ("key", "string"),
    ("https", "string"),
    ("hsts", "number"),
];

/// Longest `hsts` accepted: two years, what browsers' preload lists ask for.
const HSTS_MAX_SECS: f64 = 63_072_000.0;

/// `options.tls`: None when absent or `false`.
pub fn read_tls(value: Value) -> Result<Option<TlsOptions>, OptionsError> {
    let table = match value {
        Value::Nil | Value::Boolean(false) => return Ok(None),
        Value::Table(table) => table,
        _ => {
            return Err(OptionsError::option(
                "tls",
                "must be a table like { port = 8443, cert = '/etc/loomiere/tls/fullchain.pem', key = '/etc/loomiere/tls/privkey.pem' }",
            ));
        }
    };
    let mut tls = TlsOptions {
        bind: "*".to_string(),
        port: DEFAULT_TLS_PORT,
        cert: PathBuf::new(),
        key: PathBuf::new(),
        kernel: KernelTls::Auto,
        session_timeout: DEFAULT_SESSION_TIMEOUT_SECS,
    };
    for pair in table.pairs::<Value, Value>() {
        let (key, value) = pair.map_err(|e| OptionsError::option("tls", e))?;
        let Value::String(key) = key else {
            return Err(OptionsError::option(
                "tls",
                format!("has a key of type {}", key.type_name()),
            ));
        };
        let key = key.to_string_lossy();
        let name = format!("tls.{key}");
        let text = |value: &Value| match value {
            Value::String(s) => Ok(s.to_string_lossy()),
            other => Err(OptionsError::option(
                &name,
                format!("must be a string, not a {}", other.type_name()),
            )),
        };
        match key.as_str() {
            "port" => {
                tls.port = match value {
                    Value::Integer(n) if (0..=65_535).contains(&n) => n as u16,
                    Value::Number(n) if n.fract() == 0.0 && (0.0..=65_535.0).contains(&n) => {
                        n as u16
                    }
                    other => {
                        return Err(OptionsError::option(
                            &name,
                            format!(
                                "must be a whole number from 0 to 65535, not {}",
                                describe(&other)
                            ),
                        ));
                    }
                }
            }
            "bind" => tls.bind = text(&value)?,
            "cert" => tls.cert = PathBuf::from(text(&value)?),
            "key" => tls.key = PathBuf::from(text(&value)?),
            "kernel" => {
                tls.kernel = match text(&value)?.as_str() {
                    "auto" => KernelTls::Auto,
                    "off" => KernelTls::Off,
                    other => {
                        return Err(OptionsError::option(
                            &name,
                            format!("must be 'auto' or 'off', not '{other}'"),
                        ));
                    }
                }
            }
            "session_timeout" => {
                tls.session_timeout = match value {
                    Value::Integer(n) if (1..=SESSION_TIMEOUT_MAX_SECS as i64).contains(&n) => {
                        n as u64
                    }
                    Value::Number(n)
                        if n.fract() == 0.0
                            && (1.0..=SESSION_TIMEOUT_MAX_SECS as f64).contains(&n) =>
                    {
                        n as u64
                    }
                    other => {
                        return Err(OptionsError::option(
                            &name,
                            format!(
                                "must be a whole number of seconds from 1 to {SESSION_TIMEOUT_MAX_SECS}, not {}",
                                describe(&other)
                            ),
                        ));
                    }
                }
            }
            other => {
                return Err(OptionsError::option(
                    "tls",
                    format!(
                        "has an unknown key '{other}'; it takes {}",
                        TLS_KEYS.join(", ")
                    ),
                ));
            }
        }
    }
    for (key, path) in [("cert", &tls.cert), ("key", &tls.key)] {
        if path.as_os_str().is_empty() {
            return Err(OptionsError::option(
                &format!("tls.{key}"),
                "is needed: the path of a PEM file",
            ));
        }
    }
    Ok(Some(tls))
}

/// A host's `cert`, `key`, `https` and `hsts` (their Lua types are checked
/// when assigned).
pub fn read_host(host: &Table, pattern: &str) -> Result<HostTlsOptions, OptionsError> {
    let option = |key: &str| format!("hosts['{pattern}'].{key}");
    let lua = |key: &str, e: mlua::Error| OptionsError::option(&option(key), e);
    let cert = host
        .get::<Option<String>>("cert")
        .map_err(|e| lua("cert", e))?
        .map(PathBuf::from);
    let key = host
        .get::<Option<String>>("key")
        .map_err(|e| lua("key", e))?
        .map(PathBuf::from);
    if cert.is_some() != key.is_some() {
        return Err(OptionsError::option(
            &option(if cert.is_some() { "key" } else { "cert" }),
            "is needed too: a host's certificate comes with its key",
        ));
    }
    let redirect = match host
        .get::<Option<String>>("https")
        .map_err(|e| lua("https", e))?
        .as_deref()
    {
        None => false,
        Some("redirect") => true,
        Some(other) => {
            return Err(OptionsError::option(
                &option("https"),
                format!("must be 'redirect', not '{other}'"),
            ));
        }
    };
    let hsts = match host
        .get::<Option<f64>>("hsts")
        .map_err(|e| lua("hsts", e))?
    {
        None => None,
        Some(seconds) if seconds.fract() == 0.0 && (0.0..=HSTS_MAX_SECS).contains(&seconds) => {
            Some(seconds as u64)
        }
        Some(seconds) => {
            return Err(OptionsError::option(
                &option("hsts"),
                format!(
                    "must be a whole number of seconds from 0 to {HSTS_MAX_SECS}, not {seconds}"
                ),
            ));
        }
    };
    Ok(HostTlsOptions {
        cert,
        key,
        redirect,
        hsts,
    })
}

fn describe(value: &Value) -> String {
    match value {
        Value::Integer(n) => n.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{}'", s.to_string_lossy()),
        other => format!("a {}", other.type_name()),
    }
}

//! The server's configuration: built-in defaults, `options.lua`, command-line
//! overrides, and validation into plain Rust values.
//!
//! Layer: plain settings only, above `lua` and `media`; it compiles nothing.
//! The concerns that serve requests (`access`, `route`, `worker::Site`)
//! compile their parts from these values and must not be imported here.
//!
//! Every error names the option (and, for Lua errors, the file and line) so
//! that an operator knows what to change.

pub mod access;
mod hosts;
pub mod lua;
pub mod mime;
mod read;
pub mod size;
pub mod tls;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

pub use access::{AccessOptions, CorsOptions, CountryOptions, LimitOptions};
pub use mime::MimeTable;
pub use tls::{HostTlsOptions, KernelTls, TlsOptions};

use crate::media::SeekMode;

/// Where the packaged configuration lives; used when `--options` is not given.
pub const DEFAULT_OPTIONS_FILE: &str = "/etc/loomiere/options.lua";

/// The account the server switches to after binding when started as root.
pub const DEFAULT_USER: &str = "loomiere";
/// The fallback when the default account does not exist on this machine.
pub const FALLBACK_USER: &str = "nobody";

/// One virtual host: requests whose Host matches `pattern` (PCRE2, unanchored,
/// empty = everything) are served from `folders`, tried in order for each file.
#[derive(Clone, Debug, PartialEq)]
pub struct HostOptions {
    pub pattern: String,
    /// `folder = '…'`, or `folders = { '…', '…' }`: the first that has a file serves it.
    pub folders: Vec<PathBuf>,
    /// Pacing settings this host overrides.
    pub pacing: PacingOverrides,
    /// URL routes, tried in order (see `route::rewrite`).
    pub routes: Vec<RouteOptions>,
    /// Who may fetch the host's files, and its caching headers (see `crate::access`).
    pub access: AccessOptions,
    /// Whether players may steer their streams with reports (`/.hint`).
    pub hints: bool,
    /// The HLS/DASH segment length this host overrides.
    pub segment_seconds: Option<f64>,
    /// The subtitle language players show unasked (`subtitle_default = 'en'`).
    pub subtitle_default: Option<String>,
    /// Names shown for subtitle languages, over the built-in table
    /// (`subtitle_names = { ['pt-BR'] = 'Português (Brasil)' }`).
    pub subtitle_names: Vec<(String, String)>,
    /// Its certificate for HTTPS, the redirect to HTTPS and HSTS.
    pub tls: HostTlsOptions,
}

/// One route: a PCRE2 pattern searched in the request target, and what to do.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteOptions {
    pub pattern: String,
    pub action: RouteAction,
}

/// What a route does when its pattern matches.
#[derive(Clone, Debug, PartialEq)]
pub enum RouteAction {
    /// `rewrite = '/new/$1'`: the matched part replaced by the template.
    Rewrite(String),
    /// The original's `alter = '/new/%1'`: every match replaced.
    Alter(String),
    /// `redirect` (with `status`), or the original's `route` (302) and
    /// `moved` (301); `key` is the name used, for messages.
    Redirect {
        template: String,
        status: u16,
        key: &'static str,
    },
    /// `error = 403` with an optional `message`.
    Error { status: u16, message: String },
    /// A Lua function: `call`, or a function as the value of the original's
    /// `alter`, `route` or `moved` (`key`). It runs in the worker's Lua state.
    Function { key: &'static str },
}

impl HostOptions {
    /// A host with no overrides.
    pub fn new(pattern: impl Into<String>, folder: impl Into<PathBuf>) -> HostOptions {
        HostOptions {
            pattern: pattern.into(),
            folders: vec![folder.into()],
            pacing: PacingOverrides::default(),
            routes: Vec::new(),
            access: AccessOptions::default(),
            hints: false,
            segment_seconds: None,
            subtitle_default: None,
            subtitle_names: Vec::new(),
            tls: HostTlsOptions::default(),
        }
    }
}

/// The shortest `period` accepted: slices closer together would only cost CPU.
pub const MIN_PERIOD_SECS: f64 = 0.05;
/// The largest `min_slice` accepted: past a few megabytes a slice is the
/// whole stretch of a quarter lead anyway.
pub const MAX_MIN_SLICE: u64 = 4 << 20;
/// The pacing settings of one virtual host (the global options, overridden
/// per host), as `stream` applies them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pacing {
    /// Seconds of play time sent ahead of the player; 0 turns the media throttle off.
    pub throttle: f64,
    /// Seconds between slices.
    pub period: f64,
    /// Bodies shorter than this many bytes are not throttled on their timeline.
    pub throttle_from: u64,
    /// Constant rate in bytes per second for bodies without a timeline; 0 = none.
    pub rate: u64,
    /// Bytes sent at full speed before `rate` applies.
    pub rate_after: u64,
    /// The smallest slice worth a wake-up: a stream whose period's worth is
    /// less waits more periods (within a quarter of its lead); 0 = every period.
    pub min_slice: u64,
    /// Seconds a response may make no progress before the connection is closed.
    pub send_timeout: f64,
}

impl Pacing {
    pub const DEFAULT: Pacing = Pacing {
        throttle: 20.0,
        period: 1.0,
        throttle_from: 1 << 20,
        rate: 0,
        rate_after: 0,
        min_slice: 32 << 10,
        send_timeout: 60.0,
    };
}

/// Per-host values of the pacing options; None keeps the global value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PacingOverrides {
    pub throttle: Option<f64>,
    pub period: Option<f64>,
    pub throttle_from: Option<u64>,
    pub rate: Option<u64>,
    pub rate_after: Option<u64>,
    pub min_slice: Option<u64>,
    pub send_timeout: Option<f64>,
}

/// The account setting and whether the operator chose it (which decides
/// whether a missing account is fatal).
#[derive(Clone, Debug, PartialEq)]
pub struct UserOption {
    pub name: String,
    pub explicit: bool,
}

/// Every setting, validated. Field names follow the options.lua names.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The file these came from, if any.
    pub source: Option<PathBuf>,
    /// Listen address for the client port; `*` = every IPv4 and IPv6 address.
    pub bind: String,
    pub port: u16,
    /// Whether the plain-HTTP port is served (`options.port = false` turns
    /// it off, for an HTTPS-only server).
    pub plain_http: bool,
    /// The HTTPS listener and its default certificate; None = no HTTPS.
    pub tls: Option<TlsOptions>,
    /// Admin port (/monitor); 0 disables it.
    pub root: u16,
    /// Listen address for the admin port.
    pub root_bind: String,
    /// When not empty, every admin request needs `Authorization: Bearer <token>`.
    pub root_token: String,
    pub workers: usize,
    /// Maximum concurrent client connections over all workers.
    pub clients: u64,
    /// Seconds of play time sent ahead of the player (0 = no media throttle).
    pub throttle: f64,
    /// Seconds between throttled slices.
    pub period: f64,
    /// Bodies shorter than this (bytes) are not throttled on their timeline.
    pub throttle_from: u64,
    /// Constant rate (bytes/s) for bodies the timeline does not pace; 0 = none.
    pub rate: u64,
    /// Bytes sent at full speed before `rate` applies.
    pub rate_after: u64,
    /// The smallest throttled slice worth a wake-up, bytes (0 = one every period).
    pub min_slice: u64,
    /// Cache size in MiB, per worker.
    pub cache: u64,
    pub user: UserOption,
    pub hosts: Vec<HostOptions>,
    pub mimes: MimeTable,
    /// Seconds a client has to send a complete request head.
    pub header_timeout: f64,
    /// Seconds an idle keep-alive connection is kept open.
    pub keepalive_timeout: f64,
    /// Seconds a response may make no progress before the connection is closed.
    pub send_timeout: f64,
    /// Seconds in-flight responses get to finish on SIGTERM or reload.
    pub drain_timeout: f64,
    /// Seconds a worker's or the monitor's loop may go without turning
    /// before the master kills and replaces it.
    pub stall_timeout: f64,
    /// Whether to write one access-log line per response on stderr.
    pub access_log: bool,
    /// Seconds per HLS/DASH segment (cut at the next keyframe); hosts may override it.
    pub segment_seconds: f64,
    /// How MP4 seeks treat the frames between the keyframe and `start`.
    pub seek: SeekMode,
    /// Most Lua instructions one route function call may run.
    pub lua_instructions: u64,
    /// Most memory the Lua state of route functions may hold, bytes.
    pub lua_memory: u64,
    /// A MaxMind DB of countries, for hosts' `countries` and `loomiere.country`.
    pub geoip: Option<PathBuf>,
    /// Per-client-address connection limits over all workers.
    pub limits: Option<LimitOptions>,
}

/// `stall_timeout`'s default and bounds, in seconds. An idle loop still
/// turns once a second (its heartbeat), so less than two would kill idle workers.
pub const STALL_TIMEOUT_DEFAULT_SECS: f64 = 10.0;
pub const STALL_TIMEOUT_MIN_SECS: f64 = 2.0;
pub const STALL_TIMEOUT_MAX_SECS: f64 = 3600.0;

/// The number of CPUs this process may run on (`options.cpus`).
pub fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl Options {
    /// The built-in configuration, used when there is no options file.
    pub fn defaults() -> Options {
        let folder = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Options {
            source: None,
            bind: "*".to_string(),
            port: 8080,
            plain_http: true,
            tls: None,
            root: 8081,
            root_bind: "127.0.0.1".to_string(),
            root_token: String::new(),
            workers: cpu_count(),
            clients: 10_000,
            throttle: Pacing::DEFAULT.throttle,
            period: Pacing::DEFAULT.period,
            throttle_from: Pacing::DEFAULT.throttle_from,
            rate: Pacing::DEFAULT.rate,
            rate_after: Pacing::DEFAULT.rate_after,
            min_slice: Pacing::DEFAULT.min_slice,
            cache: 64,
            user: UserOption {
                name: DEFAULT_USER.to_string(),
                explicit: false,
            },
            hosts: vec![HostOptions::new("", folder)],
            mimes: MimeTable::defaults(),
            header_timeout: 10.0,
            keepalive_timeout: 15.0,
            send_timeout: Pacing::DEFAULT.send_timeout,
            drain_timeout: 30.0,
            stall_timeout: STALL_TIMEOUT_DEFAULT_SECS,
            segment_seconds: 6.0,
            access_log: true,
            seek: SeekMode::Keyframe,
            lua_instructions: 1_000_000,
            lua_memory: 16 << 20,
            geoip: None,
            limits: None,
        }
    }

    /// Loads `path` on top of the defaults. The error names the file and line
    /// for Lua errors and the option for invalid values.
    pub fn load(path: &Path) -> Result<Options, OptionsError> {
        let source = std::fs::read(path)
            .map_err(|e| OptionsError::new(format!("cannot read {}: {e}", path.display())))?;
        let mut options = lua::evaluate(path, &source)?;
        options.source = Some(path.to_path_buf());
        Ok(options)
    }

    /// Applies command-line overrides (which win over the file).
    pub fn apply(&mut self, overrides: &Overrides) {
        if let Some(bind) = &overrides.bind {
            self.bind = bind.clone();
        }
        if let Some(port) = overrides.port {
            self.port = port;
        }
        if let Some(root) = overrides.root {
            self.root = root;
        }
        if let Some(workers) = overrides.workers {
            self.workers = workers;
        }
        if let Some(throttle) = overrides.throttle {
            self.throttle = throttle;
        }
        if let Some(cache) = overrides.cache {
            self.cache = cache;
        }
        if let Some(clients) = overrides.clients {
            self.clients = clients;
        }
        if let Some(folder) = &overrides.folder {
            match self.hosts.iter_mut().find(|h| h.pattern.is_empty()) {
                Some(catch_all) => catch_all.folders = vec![folder.clone()],
                None => self.hosts.push(HostOptions::new("", folder.clone())),
            }
        }
    }

    /// Checks what can only be checked against the machine: folders exist,
    /// numbers are in range, addresses parse. Folders are made absolute and
    /// canonical. (Patterns, routes, access rules, the country database and
    /// the limits are checked by compiling them, where they are served:
    /// `worker::Site::check`.)
    pub fn validate(&mut self) -> Result<(), OptionsError> {
        if self.workers == 0 || self.workers > 512 {
            return Err(OptionsError::option(
                "workers",
                format!("must be between 1 and 512, not {}", self.workers),
            ));
        }
        if self.clients == 0 {
            return Err(OptionsError::option("clients", "must be at least 1"));
        }
        for (name, value) in [
            ("header_timeout", self.header_timeout),
            ("keepalive_timeout", self.keepalive_timeout),
            ("send_timeout", self.send_timeout),
            ("drain_timeout", self.drain_timeout),
        ] {
            if !(0.0..=86_400.0).contains(&value) {
                return Err(OptionsError::option(
                    name,
                    format!("must be a number of seconds from 0 to 86400, not {value}"),
                ));
            }
        }
        for (name, value) in [("header_timeout", self.header_timeout)] {
            if value < 0.1 {
                return Err(OptionsError::option(name, "must be at least 0.1 seconds"));
            }
        }
        if !(STALL_TIMEOUT_MIN_SECS..=STALL_TIMEOUT_MAX_SECS).contains(&self.stall_timeout) {
            return Err(OptionsError::option(
                "stall_timeout",
                format!(
                    "must be a number of seconds from {STALL_TIMEOUT_MIN_SECS} to {STALL_TIMEOUT_MAX_SECS}, not {}",
                    self.stall_timeout
                ),
            ));
        }
        if self.cache > 1 << 20 {
            return Err(OptionsError::option(
                "cache",
                format!("{} MB is more than 1 TB", self.cache),
            ));
        }
        self.listen_addresses()
            .map_err(|e| OptionsError::option("bind", e))?;
        if let Some(tls) = &self.tls {
            parse_bind(&tls.bind, tls.port).map_err(|e| OptionsError::option("tls.bind", e))?;
        } else if !self.plain_http {
            return Err(OptionsError::option(
                "port",
                "is off and options.tls is not set, so nothing would be served",
            ));
        }
        if self.root != 0 {
            parse_bind(&self.root_bind, self.root)
                .map_err(|e| OptionsError::option("root_bind", e))?;
        }
        if !self.root_token.is_empty()
            && (self.root_token.len() < 16
                || !self.root_token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(OptionsError::option(
                "root_token",
                "must be at least 16 printable characters without spaces (or '' for none)",
            ));
        }
        if self.hosts.is_empty() {
            return Err(OptionsError::option(
                "hosts",
                "no virtual host is defined; add at least options.hosts[''] = { folder = '/var/www' }",
            ));
        }
        validate_pacing("", &self.pacing_of(&HostOptions::new("", "")))?;
        validate_segment_seconds("segment_seconds", self.segment_seconds)?;
        for host in &self.hosts {
            validate_pacing(
                &format!("hosts['{}'].", host.pattern),
                &self.pacing_of(host),
            )?;
            if let Some(seconds) = host.segment_seconds {
                validate_segment_seconds(
                    &format!("hosts['{}'].segment_seconds", host.pattern),
                    seconds,
                )?;
            }
            if self.tls.is_none() {
                let https = [
                    ("cert", host.tls.cert.is_some()),
                    ("https", host.tls.redirect),
                    ("hsts", host.tls.hsts.is_some()),
                ];
                if let Some((key, _)) = https.iter().find(|(_, set)| *set) {
                    return Err(OptionsError::option(
                        &format!("hosts['{}'].{key}", host.pattern),
                        "needs options.tls, the HTTPS listener",
                    ));
                }
            }
            if host.tls.redirect && !self.plain_http {
                return Err(OptionsError::option(
                    &format!("hosts['{}'].https", host.pattern),
                    "redirects plain HTTP, but options.port is off",
                ));
            }
            if host.access.countries.is_some() && self.geoip.is_none() {
                return Err(OptionsError::option(
                    &format!("hosts['{}'].countries", host.pattern),
                    "needs options.geoip, the path of a MaxMind country database",
                ));
            }
        }
        for host in &mut self.hosts {
            let option = format!("hosts['{}']", host.pattern);
            for folder in &mut host.folders {
                let canonical = folder.canonicalize().map_err(|e| {
                    OptionsError::option(
                        &option,
                        format!("folder {} cannot be used: {e}", folder.display()),
                    )
                })?;
                if !canonical.is_dir() {
                    return Err(OptionsError::option(
                        &option,
                        format!("folder {} is not a directory", canonical.display()),
                    ));
                }
                *folder = canonical;
            }
        }
        if self.mimes.is_empty() {
            return Err(OptionsError::option(
                "mimes",
                "the table is empty, so every file would be refused",
            ));
        }
        Ok(())
    }

    /// The pacing settings of `host`: its overrides, else the global values.
    pub fn pacing_of(&self, host: &HostOptions) -> Pacing {
        let own = &host.pacing;
        Pacing {
            throttle: own.throttle.unwrap_or(self.throttle),
            period: own.period.unwrap_or(self.period),
            throttle_from: own.throttle_from.unwrap_or(self.throttle_from),
            rate: own.rate.unwrap_or(self.rate),
            rate_after: own.rate_after.unwrap_or(self.rate_after),
            min_slice: own.min_slice.unwrap_or(self.min_slice),
            send_timeout: own.send_timeout.unwrap_or(self.send_timeout),
        }
    }

    /// The client-port addresses to bind: `*` gives the IPv6 wildcard (which is
    /// dual-stack) with an IPv4 fallback, decided when binding.
    pub fn listen_addresses(&self) -> Result<SocketAddr, String> {
        parse_bind(&self.bind, self.port)
    }

    /// The HTTPS address to bind, when HTTPS is on (see `listen_addresses`).
    pub fn tls_address(&self) -> Option<SocketAddr> {
        self.tls
            .as_ref()
            .and_then(|tls| parse_bind(&tls.bind, tls.port).ok())
    }

    /// The admin address, or None when the admin port is disabled.
    pub fn admin_address(&self) -> Option<SocketAddr> {
        if self.root == 0 {
            None
        } else {
            parse_bind(&self.root_bind, self.root).ok()
        }
    }
}

/// Checks one host's (or the global) pacing values; `prefix` is `''` or
/// `"hosts['pattern']."`, so the error names the option as it was written.
/// Segments from half a second (low latency is not this server's business)
/// to a minute (a player must buffer a whole one).
fn validate_segment_seconds(option: &str, seconds: f64) -> Result<(), OptionsError> {
    if !(0.5..=60.0).contains(&seconds) {
        return Err(OptionsError::option(
            option,
            format!("must be a number of seconds from 0.5 to 60, not {seconds}"),
        ));
    }
    Ok(())
}

fn validate_pacing(prefix: &str, pacing: &Pacing) -> Result<(), OptionsError> {
    let name = |option: &str| format!("{prefix}{option}");
    if !(0.0..=86_400.0).contains(&pacing.throttle) {
        return Err(OptionsError::option(
            &name("throttle"),
            format!(
                "must be a number of seconds from 0 (off) to 86400, not {}",
                pacing.throttle
            ),
        ));
    }
    if !(MIN_PERIOD_SECS..=60.0).contains(&pacing.period) {
        return Err(OptionsError::option(
            &name("period"),
            format!(
                "must be a number of seconds from {MIN_PERIOD_SECS} to 60, not {}",
                pacing.period
            ),
        ));
    }
    if !(0.1..=86_400.0).contains(&pacing.send_timeout) {
        return Err(OptionsError::option(
            &name("send_timeout"),
            format!(
                "must be a number of seconds from 0.1 to 86400, not {}",
                pacing.send_timeout
            ),
        ));
    }
    if pacing.rate > 0 && pacing.rate < 1024 {
        return Err(OptionsError::option(
            &name("rate"),
            format!(
                "must be 0 (off) or at least 1k bytes per second, not {}",
                pacing.rate
            ),
        ));
    }
    if pacing.min_slice > MAX_MIN_SLICE {
        return Err(OptionsError::option(
            &name("min_slice"),
            format!(
                "must be a size from 0 (a slice every period) to 4m, not {}",
                pacing.min_slice
            ),
        ));
    }
    Ok(())
}

/// `*` → `[::]`; anything else must be an IP address literal (no DNS: start-up
/// must not depend on a resolver).
fn parse_bind(bind: &str, port: u16) -> Result<SocketAddr, String> {
    let ip = match bind.trim() {
        "*" | "" | "::" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        "0.0.0.0" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        other => other
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .map_err(|_| format!("'{other}' is not '*' or an IP address"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// Command-line values that override the options file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub bind: Option<String>,
    pub port: Option<u16>,
    pub root: Option<u16>,
    pub workers: Option<usize>,
    pub folder: Option<PathBuf>,
    pub throttle: Option<f64>,
    pub cache: Option<u64>,
    pub clients: Option<u64>,
}

/// A configuration error, with the option or file:line it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionsError {
    message: String,
}

impl OptionsError {
    pub fn new(message: impl Into<String>) -> OptionsError {
        OptionsError {
            message: message.into(),
        }
    }

    pub fn option(name: &str, message: impl fmt::Display) -> OptionsError {
        OptionsError {
            message: format!("option '{name}' {message}"),
        }
    }
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OptionsError {}

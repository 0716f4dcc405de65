//! Loomiere: an HTTP pseudo-streaming server for FLV and MP4.
//!
//! Layer: the top: the command line, over the library's `master`.
//!
//! This file holds the command line: it reads the flags, loads the options
//! and hands over to the master process.

use std::io::Write;
use std::path::{Path, PathBuf};

use std::net::IpAddr;

use getopts::Matches;
use loomiere::access::signed;
use loomiere::options::{DEFAULT_OPTIONS_FILE, Options, Overrides};
use loomiere::route::VirtualHosts;
use loomiere::{http, master, sys};

/// Exit status for a command line that cannot be understood.
const EXIT_USAGE: i32 = 2;

fn command_line() -> getopts::Options {
    let mut spec = getopts::Options::new();
    spec.optopt(
        "o",
        "options",
        "options file (default /etc/loomiere/options.lua if it exists)",
        "FILE",
    );
    spec.optflag("t", "test", "check the options and exit");
    spec.optopt(
        "b",
        "bind",
        "listen address ('*' = all IPv4 and IPv6)",
        "ADDR",
    );
    spec.optopt("p", "port", "client port (0 = any free port)", "N");
    spec.optopt("r", "root", "admin port for /monitor (0 disables it)", "N");
    spec.optopt("w", "workers", "number of worker processes", "N");
    spec.optopt("f", "folder", "folder served by the catch-all host", "DIR");
    spec.optopt(
        "",
        "throttle",
        "seconds of play time sent ahead of the player",
        "SECS",
    );
    spec.optopt("", "cache", "index cache size per worker, in MB", "MB");
    spec.optopt("", "clients", "most concurrent client connections", "N");
    spec.optopt(
        "",
        "log-level",
        "error, warn, info, debug or trace (default: RUST_LOG, else info)",
        "LEVEL",
    );
    spec.optopt(
        "",
        "sign",
        "print a signed link to PATH for a host's secret, and exit",
        "PATH",
    );
    spec.optopt(
        "",
        "expires",
        "with --sign: seconds from now the link stays valid",
        "SECONDS",
    );
    spec.optopt(
        "",
        "ip",
        "with --sign: the client address the link is bound to (token_ip)",
        "ADDR",
    );
    spec.optopt(
        "",
        "host",
        "with --sign: the Host name whose secret signs (default: the only host with one)",
        "NAME",
    );
    spec.optflag("h", "help", "print this help");
    spec.optflag("V", "version", "print the version");
    spec
}

fn usage(spec: &getopts::Options) -> String {
    spec.usage("Usage: loomiere [options]\n\nServes FLV and MP4 files over HTTP, sending only a few seconds ahead of each player.")
}

fn parse_number<T: std::str::FromStr>(matches: &Matches, name: &str) -> Result<Option<T>, String> {
    match matches.opt_str(name) {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("--{name}: '{text}' is not a valid number")),
    }
}

fn overrides(matches: &Matches) -> Result<Overrides, String> {
    let throttle: Option<f64> = parse_number(matches, "throttle")?;
    if throttle.is_some_and(|t| !t.is_finite()) {
        return Err("--throttle: must be a finite number of seconds".to_string());
    }
    Ok(Overrides {
        bind: matches.opt_str("bind"),
        port: parse_number(matches, "port")?,
        root: parse_number(matches, "root")?,
        workers: parse_number(matches, "workers")?,
        folder: matches.opt_str("folder").map(PathBuf::from),
        throttle,
        cache: parse_number(matches, "cache")?,
        clients: parse_number(matches, "clients")?,
    })
}

/// `--sign PATH --expires SECONDS [--ip ADDR] [--host NAME]`: the signed
/// link (path and query) that the chosen host accepts.
fn signed_link(options: &Options, path: &str, matches: &Matches) -> Result<String, String> {
    let lifetime: i64 = parse_number(matches, "expires")?
        .ok_or("--expires SECONDS is required: how long the link stays valid")?;
    if lifetime <= 0 {
        return Err("--expires must be a positive number of seconds".into());
    }
    if !path.starts_with('/') {
        return Err(format!("'{path}' must be a path starting with /"));
    }
    let ip = match matches.opt_str("ip") {
        Some(text) => Some(
            text.parse::<IpAddr>()
                .map_err(|_| format!("--ip: '{text}' is not an IP address"))?,
        ),
        None => None,
    };
    let hosts = &options.hosts;
    let host = match matches.opt_str("host") {
        Some(name) => {
            let vhosts = VirtualHosts::compile(options).map_err(|e| e.to_string())?;
            let index = vhosts
                .select(&name.to_ascii_lowercase())
                .map(|vhost| vhost.index)
                .ok_or_else(|| format!("no host serves '{name}'"))?;
            &hosts[index]
        }
        None => {
            let mut signing = hosts.iter().filter(|h| !h.access.secrets.is_empty());
            match (signing.next(), signing.next()) {
                (Some(host), None) => host,
                (None, _) => return Err("no host has a secret (see hosts[...].secret)".into()),
                (Some(_), Some(_)) => {
                    return Err("several hosts have a secret; choose one with --host NAME".into());
                }
            }
        }
    };
    let secret = host
        .access
        .secrets
        .first()
        .ok_or_else(|| format!("hosts['{}'] has no secret", host.pattern))?;
    if host.access.token_ip && ip.is_none() {
        return Err(format!(
            "hosts['{}'] binds links to the client's address (token_ip); give --ip ADDR",
            host.pattern
        ));
    }
    let ip = ip.filter(|_| host.access.token_ip);
    let expires = sys::unix_now().saturating_add(lifetime);
    Ok(signed::sign_url(secret, path, expires, ip))
}

fn init_logging(level: Option<&str>) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(log::LevelFilter::Info);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    if let Some(level) = level {
        builder.parse_filters(level);
    }
    builder.format(|out, record| {
        let now = sys::unix_now();
        let (y, mo, d, h, mi, s, _) = http::date::utc_parts(now);
        writeln!(
            out,
            "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} {} [{}] {}",
            record.level(),
            std::process::id(),
            record.args()
        )
    });
    builder.init();
}

fn main() {
    let spec = command_line();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let matches = match spec.parse(&args) {
        Ok(matches) if matches.free.is_empty() => matches,
        Ok(matches) => {
            eprintln!(
                "loomiere: unexpected argument '{}'\n\n{}",
                matches.free[0],
                usage(&spec)
            );
            std::process::exit(EXIT_USAGE);
        }
        Err(e) => {
            eprintln!("loomiere: {e}\n\n{}", usage(&spec));
            std::process::exit(EXIT_USAGE);
        }
    };
    if matches.opt_present("help") {
        print!("{}", usage(&spec));
        return;
    }
    if matches.opt_present("version") {
        println!("loomiere {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let overrides = match overrides(&matches) {
        Ok(overrides) => overrides,
        Err(e) => {
            eprintln!("loomiere: {e}\n\n{}", usage(&spec));
            std::process::exit(EXIT_USAGE);
        }
    };
    init_logging(matches.opt_str("log-level").as_deref());
    let options_path = match matches.opt_str("options") {
        Some(path) => Some(PathBuf::from(path)),
        None => Some(PathBuf::from(DEFAULT_OPTIONS_FILE)).filter(|p| p.exists()),
    };
    let shown = options_path
        .as_deref()
        .map_or("(built-in defaults)".to_string(), |p: &Path| {
            p.display().to_string()
        });
    let options = match master::load_options(options_path.as_deref(), &overrides) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("options {shown}: {e}");
            std::process::exit(1);
        }
    };
    if matches.opt_present("test") {
        println!("options {shown}: ok");
        return;
    }
    if let Some(path) = matches.opt_str("sign") {
        match signed_link(&options, &path, &matches) {
            Ok(url) => println!("{url}"),
            Err(e) => {
                eprintln!("loomiere --sign: {e}");
                std::process::exit(EXIT_USAGE);
            }
        }
        return;
    }
    std::process::exit(master::run(options, options_path, overrides));
}

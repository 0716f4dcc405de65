//! The access-control options: a host's `allow`, `deny`, `referers`,
//! `secret(s)`, `token_ip`, `countries`, `cors` and `expires`, and the global
//! `limits` and `geoip`. Read from the Lua tables here; checked and compiled
//! by the `access` module.

use mlua::{Table, Value};

use super::OptionsError;

/// A host's access rules and caching headers, as written in options.lua.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessOptions {
    /// CIDR blocks or addresses refused (checked first).
    pub deny: Vec<String>,
    /// When not empty, only these CIDR blocks or addresses are served.
    pub allow: Vec<String>,
    /// PCRE2 patterns searched in the Referer's host; empty = no check.
    pub referers: Vec<String>,
    /// Whether a request without a Referer passes when `referers` is set.
    pub referers_empty: bool,
    /// Keys of signed links, newest first; empty = links are not signed.
    pub secrets: Vec<String>,
    /// Whether a signed link is bound to the client's address.
    pub token_ip: bool,
    pub countries: Option<CountryOptions>,
    pub cors: Option<CorsOptions>,
    /// `Cache-Control: max-age` seconds by mime pattern (`video/mp4`, `video/*`, `*`).
    pub expires: Vec<(String, u64)>,
}

impl Default for AccessOptions {
    fn default() -> AccessOptions {
        AccessOptions {
            deny: Vec::new(),
            allow: Vec::new(),
            referers: Vec::new(),
            referers_empty: true,
            secrets: Vec::new(),
            token_ip: false,
            countries: None,
            cors: None,
            expires: Vec::new(),
        }
    }
}

/// `countries = { allow = { 'RO' } }` or `{ deny = { ... } }`, with `unknown`.
#[derive(Clone, Debug, PartialEq)]
pub struct CountryOptions {
    /// True for an `allow` list, false for a `deny` list.
    pub allow: bool,
    /// ISO 3166-1 alpha-2 codes, upper-case.
    pub codes: Vec<String>,
    /// Whether a client whose country is unknown is served.
    pub unknown: bool,
}

/// `cors = '*'` or a list of origins.
#[derive(Clone, Debug, PartialEq)]
pub enum CorsOptions {
    Any,
    Origins(Vec<String>),
}

/// `options.limits`: per-client-address limits over all workers.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitOptions {
    /// Most concurrent connections from one address (IPv6: one /64); 0 = no limit.
    pub per_ip: u32,
    /// New connections per second from one address; 0 = no limit.
    pub rate: f64,
    /// New connections one address may open at once before `rate` applies.
    pub burst: u32,
    /// CIDR blocks no limit applies to.
    pub exempt: Vec<String>,
}

/// The host keys this module reads, and their Lua types (for the prelude's checks).
pub const HOST_ACCESS_TYPES: &[(&str, &str)] = &[
    ("allow", "table"),
    ("deny", "table"),
    ("referers", "table"),
    ("referers_empty", "boolean"),
    ("secret", "string"),
    ("secrets", "table"),
    ("token_ip", "boolean"),
    ("countries", "table"),
    ("cors", "string|table"),
    ("expires", "table"),
];

/// The keys of `options.limits`.
pub const LIMITS_KEYS: &[&str] = &["per_ip", "rate", "burst", "exempt"];

/// The keys of a host's `countries`.
pub const COUNTRIES_KEYS: &[&str] = &["allow", "deny", "unknown"];

fn invalid(name: &str, message: impl std::fmt::Display) -> OptionsError {
    OptionsError::option(name, message)
}

/// A list of strings: `{ 'a', 'b' }`.
fn string_list(value: Value, name: &str, example: &str) -> Result<Vec<String>, OptionsError> {
    let Value::Table(table) = value else {
        return Err(invalid(name, format!("must be a list like {example}")));
    };
    let count = table.raw_len();
    if table.clone().pairs::<Value, Value>().count() != count {
        return Err(invalid(name, format!("must be a list like {example}")));
    }
    (1..=count)
        .map(|i| match table.raw_get::<Value>(i) {
            Ok(Value::String(text)) => Ok(text.to_string_lossy()),
            _ => Err(invalid(&format!("{name}[{i}]"), "must be a string")),
        })
        .collect()
}

fn lua_error(name: &str, e: mlua::Error) -> OptionsError {
    invalid(name, e)
}

/// Reads a host's access keys (the prelude has checked their Lua types).
pub fn read_host(host: &Table, pattern: &str) -> Result<AccessOptions, OptionsError> {
    let name = |key: &str| format!("hosts['{pattern}'].{key}");
    let get = |key: &str| host.get::<Value>(key).map_err(|e| lua_error(&name(key), e));
    let list = |key: &str, example: &str| -> Result<Vec<String>, OptionsError> {
        match get(key)? {
            Value::Nil => Ok(Vec::new()),
            value => string_list(value, &name(key), example),
        }
    };
    let flag = |key: &str, default: bool| -> Result<bool, OptionsError> {
        match get(key)? {
            Value::Boolean(value) => Ok(value),
            _ => Ok(default),
        }
    };
    let mut access = AccessOptions {
        deny: list("deny", "{ '192.0.2.0/24', '2001:db8::/32' }")?,
        allow: list("allow", "{ '10.0.0.0/8', '127.0.0.1' }")?,
        referers: list("referers", r"{ '(^|\.)example\.com$' }")?,
        referers_empty: flag("referers_empty", true)?,
        secrets: list("secrets", "{ 'new key', 'old key' }")?,
        token_ip: flag("token_ip", false)?,
        ..AccessOptions::default()
    };
    if let Value::String(secret) = get("secret")? {
        if !access.secrets.is_empty() {
            return Err(invalid(
                &name("secret"),
                "and secrets are both given; give one (secrets = { 'new', 'old' } rotates keys)",
            ));
        }
        access.secrets.push(secret.to_string_lossy());
    }
    if let Value::Table(countries) = get("countries")? {
        access.countries = Some(read_countries(&countries, &name("countries"))?);
    }
    access.cors = match get("cors")? {
        Value::Nil => None,
        Value::String(text) if text.to_string_lossy() == "*" => Some(CorsOptions::Any),
        Value::String(text) => Some(CorsOptions::Origins(vec![text.to_string_lossy()])),
        value => Some(CorsOptions::Origins(string_list(
            value,
            &name("cors"),
            "'*' or { 'https://a.example' }",
        )?)),
    };
    if let Value::Table(expires) = get("expires")? {
        access.expires = read_expires(&expires, &name("expires"))?;
    }
    Ok(access)
}

fn read_countries(table: &Table, name: &str) -> Result<CountryOptions, OptionsError> {
    let example = "{ allow = { 'RO', 'DE' } } or { deny = { 'XX' }, unknown = false }";
    let mut rule: Option<(bool, Vec<String>)> = None;
    let mut unknown = true;
    for pair in table.clone().pairs::<Value, Value>() {
        let (key, value) = pair.map_err(|e| lua_error(name, e))?;
        let key = match &key {
            Value::String(key) => key.to_string_lossy(),
            _ => return Err(invalid(name, format!("must look like {example}"))),
        };
        match key.as_str() {
            "allow" | "deny" => {
                if rule.is_some() {
                    return Err(invalid(name, "has both allow and deny; give one"));
                }
                let codes = string_list(value, &format!("{name}.{key}"), "{ 'RO', 'DE' }")?;
                let mut upper = Vec::with_capacity(codes.len());
                for code in codes {
                    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
                        return Err(invalid(
                            &format!("{name}.{key}"),
                            format!("'{code}' is not a two-letter ISO 3166 country code"),
                        ));
                    }
                    upper.push(code.to_ascii_uppercase());
                }
                rule = Some((key == "allow", upper));
            }
            "unknown" => match value {
                Value::Boolean(value) => unknown = value,
                _ => return Err(invalid(&format!("{name}.unknown"), "must be true or false")),
            },
            other => {
                return Err(invalid(
                    name,
                    format!("has an unknown key '{other}'; it takes allow or deny, and unknown"),
                ));
            }
        }
    }
    let Some((allow, codes)) = rule else {
        return Err(invalid(name, format!("needs allow or deny: {example}")));
    };
    Ok(CountryOptions {
        allow,
        codes,
        unknown,
    })
}

fn read_expires(table: &Table, name: &str) -> Result<Vec<(String, u64)>, OptionsError> {
    let mut entries = Vec::new();
    for pair in table.clone().pairs::<Value, Value>() {
        let (key, value) = pair.map_err(|e| lua_error(name, e))?;
        let Value::String(pattern) = key else {
            return Err(invalid(
                name,
                "must map mime patterns to seconds: { ['video/*'] = 3600, ['*'] = 0 }",
            ));
        };
        let pattern = pattern.to_string_lossy().to_ascii_lowercase();
        let entry = format!("{name}['{pattern}']");
        let seconds = match value {
            Value::Integer(n) => n as f64,
            Value::Number(n) => n,
            _ => return Err(invalid(&entry, "must be a number of seconds")),
        };
        if seconds.fract() != 0.0 || !(0.0..=315_360_000.0).contains(&seconds) {
            return Err(invalid(
                &entry,
                format!("must be whole seconds from 0 to 315360000 (ten years), not {seconds}"),
            ));
        }
        let valid = pattern == "*"
            || pattern
                .split_once('/')
                .is_some_and(|(kind, sub)| !kind.is_empty() && !sub.is_empty() && kind != "*");
        if !valid {
            return Err(invalid(
                &entry,
                "is not a mime pattern like 'video/mp4', 'video/*' or '*'",
            ));
        }
        entries.push((pattern, seconds as u64));
    }
    // Most specific first: exact types, then `type/*`, then `*`.
    entries.sort_by_key(|(pattern, _)| {
        (
            if pattern == "*" {
                2
            } else if pattern.ends_with("/*") {
                1
            } else {
                0
            },
            pattern.clone(),
        )
    });
    Ok(entries)
}

/// Reads `options.limits` (nil = none).
pub fn read_limits(value: Value) -> Result<Option<LimitOptions>, OptionsError> {
    let table = match value {
        Value::Nil | Value::Boolean(false) => return Ok(None),
        Value::Table(table) => table,
        _ => {
            return Err(invalid(
                "limits",
                "must be a table like { per_ip = 20, rate = 10, burst = 20 }",
            ));
        }
    };
    let mut limits = LimitOptions {
        per_ip: 0,
        rate: 0.0,
        burst: 0,
        exempt: Vec::new(),
    };
    let mut burst: Option<f64> = None;
    for pair in table.clone().pairs::<Value, Value>() {
        let (key, value) = pair.map_err(|e| lua_error("limits", e))?;
        let key = match &key {
            Value::String(key) => key.to_string_lossy(),
            other => {
                return Err(invalid(
                    "limits",
                    format!("has a key of type {}", other.type_name()),
                ));
            }
        };
        let name = format!("limits.{key}");
        let number = |value: &Value, max: f64| -> Result<f64, OptionsError> {
            let n = match value {
                Value::Integer(n) => *n as f64,
                Value::Number(n) => *n,
                _ => return Err(invalid(&name, "must be a number")),
            };
            if !(0.0..=max).contains(&n) {
                return Err(invalid(&name, format!("must be from 0 to {max}, not {n}")));
            }
            Ok(n)
        };
        match key.as_str() {
            "per_ip" => {
                let n = number(&value, 1_000_000.0)?;
                if n.fract() != 0.0 {
                    return Err(invalid(&name, "must be a whole number of connections"));
                }
                limits.per_ip = n as u32;
            }
            "rate" => limits.rate = number(&value, 1_000_000.0)?,
            "burst" => burst = Some(number(&value, 1_000_000.0)?),
            "exempt" => {
                limits.exempt = string_list(value, &name, "{ '127.0.0.0/8', '10.0.0.0/8' }")?
            }
            other => {
                return Err(invalid(
                    "limits",
                    format!(
                        "has an unknown key '{other}'; it takes per_ip, rate, burst and exempt"
                    ),
                ));
            }
        }
    }
    // A client may open one second's worth of connections at once by default.
    let burst = burst.unwrap_or(limits.rate.ceil()).max(1.0);
    if burst.fract() != 0.0 {
        return Err(invalid(
            "limits.burst",
            "must be a whole number of connections",
        ));
    }
    if limits.rate > 0.0 && limits.rate < 0.01 {
        return Err(invalid(
            "limits.rate",
            "must be 0 (off) or at least 0.01 connections per second",
        ));
    }
    limits.burst = burst as u32;
    Ok(Some(limits))
}

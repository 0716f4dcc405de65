//! The `loomiere` table of helpers that options.lua and route functions
//! may call: `log`, `hmac_sha256`, `md5`, `escape`, `unescape`, `time` and
//! `country`. Each is a bounded Rust function (see the list in the module
//! above); `hex` and `escape` are also used by signed links.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use mlua::{Lua, Table};
use sha2::Sha256;

use super::Sandbox;

impl Sandbox {
    /// The restricted state options.lua and route functions run in, with
    /// the `loomiere` table of helpers as a global.
    pub fn with_helpers() -> mlua::Result<Sandbox> {
        let sandbox = Sandbox::new()?;
        sandbox
            .lua
            .globals()
            .set("loomiere", helpers(&sandbox.lua)?)?;
        Ok(sandbox)
    }
}

/// Makes `loomiere.country(ip)` answer with `country` (the worker's country
/// database); without one it answers nil.
pub fn set_country(
    sandbox: &Sandbox,
    country: impl Fn(IpAddr) -> Option<String> + 'static,
) -> mlua::Result<()> {
    let lua = &sandbox.lua;
    let function =
        lua.create_function(move |_, ip: String| Ok(ip.trim().parse().ok().and_then(&country)))?;
    lua.globals()
        .get::<Table>("loomiere")
        .and_then(|helpers| helpers.set("country", function))
}

/// The `loomiere` table: helpers for options.lua and route functions.
fn helpers(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set(
        "log",
        lua.create_function(|_, (level, message): (String, String)| {
            match level.as_str() {
                "error" => log::error!("lua: {message}"),
                "warn" => log::warn!("lua: {message}"),
                "debug" => log::debug!("lua: {message}"),
                _ => log::info!("lua: {message}"),
            }
            Ok(())
        })?,
    )?;
    table.set(
        "hmac_sha256",
        lua.create_function(|_, (key, data): (mlua::String, mlua::String)| {
            let mut mac = Hmac::<Sha256>::new_from_slice(&key.as_bytes())
                .map_err(|e| mlua::Error::RuntimeError(e.to_string()))?;
            mac.update(&data.as_bytes());
            Ok(hex(&mac.finalize().into_bytes()))
        })?,
    )?;
    // Without options.geoip no country is known; `set_country` replaces this.
    table.set(
        "country",
        lua.create_function(|_, _ip: String| Ok(None::<String>))?,
    )?;
    table.set(
        "md5",
        lua.create_function(|_, data: mlua::String| Ok(hex(&Md5::digest(data.as_bytes()))))?,
    )?;
    table.set(
        "escape",
        lua.create_function(|_, text: mlua::String| Ok(escape(&text.as_bytes())))?,
    )?;
    table.set(
        "unescape",
        lua.create_function(|lua, text: mlua::String| {
            let bytes = crate::http::target::percent_decode(&text.as_bytes())
                .unwrap_or_else(|| text.as_bytes().to_vec());
            lua.create_string(bytes)
        })?,
    )?;
    table.set(
        "time",
        lua.create_function(|_, ()| {
            Ok(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()))
        })?,
    )?;
    Ok(table)
}

/// Lower-case hexadecimal digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Percent-encodes all but RFC 3986's unreserved characters.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

//! Runs options.lua (Lua 5.1 dialect) and reads the `options` table back.
//!
//! The script sees a predefined `options` table holding the defaults. It is a
//! proxy: assigning an unknown name or a value of the wrong type raises a Lua
//! error at the assignment, so the message carries the file and line.
//! `options.hosts` records the order hosts are defined in, because the first
//! matching host wins and Lua tables have no order of their own.

use std::path::{Path, PathBuf};

use mlua::{Lua, Table, Value};

use super::hosts::{ROUTE_ACTIONS, read_hosts};
use super::read::{ReadError, size};
use super::{MimeTable, Options, OptionsError, UserOption, cpu_count};
use super::{access, tls};
use crate::lua::Sandbox;
use crate::media::SeekMode;

/// Lua that builds the `options` proxy. It returns the table the values are
/// stored in, which the Rust side reads after the user's script has run.
const PRELUDE: &str = r#"
local types, host_types = ...
local store = {}
local assigned = {}

local function ordered_hosts()
  local order = {}
  return setmetatable({}, {
    __order = order,
    __newindex = function(t, pattern, host)
      if type(pattern) ~= 'string' then
        error("options.hosts: a host pattern must be a string, not a " .. type(pattern), 2)
      end
      if type(host) ~= 'table' then
        error("options.hosts['" .. pattern .. "'] must be a table like { folder = '/var/www' }, not a " .. type(host), 2)
      end
      for key, value in pairs(host) do
        if key == 'folder' then
          if type(value) ~= 'string' then
            error("options.hosts['" .. pattern .. "'].folder must be a string, not a " .. type(value), 2)
          end
        elseif key == 'folders' then
          if type(value) ~= 'table' or #value == 0 then
            error("options.hosts['" .. pattern .. "'].folders must be a list like { '/srv/a', '/srv/b' }", 2)
          end
          for i, folder in ipairs(value) do
            if type(folder) ~= 'string' then
              error("options.hosts['" .. pattern .. "'].folders[" .. i .. "] must be a string, not a " .. type(folder), 2)
            end
          end
        elseif key == 'routes' then
          if type(value) ~= 'table' then
            error("options.hosts['" .. pattern .. "'].routes must be a table, not a " .. type(value), 2)
          end
        elseif host_types[key] ~= nil then
          if not string.find(host_types[key], type(value), 1, true) then
            error("options.hosts['" .. pattern .. "']." .. key .. " must be a " .. host_types[key] .. ", not a " .. type(value), 2)
          end
        elseif key ~= 'match' then
          error("options.hosts['" .. pattern .. "']: unknown key '" .. tostring(key) .. "'", 2)
        end
      end
      if host.folder == nil and host.folders == nil then
        error("options.hosts['" .. pattern .. "'] has no folder", 2)
      end
      if host.folder ~= nil and host.folders ~= nil then
        error("options.hosts['" .. pattern .. "'] has both folder and folders; give one", 2)
      end
      if rawget(t, pattern) == nil then order[#order + 1] = pattern end
      rawset(t, pattern, host)
    end,
  })
end

local function copy_hosts(given)
  local hosts = ordered_hosts()
  local count = 0
  for _ in pairs(given) do count = count + 1 end
  if #given == count then
    -- an array of { match = 'pattern', folder = ... } keeps its order
    for _, host in ipairs(given) do
      if type(host) ~= 'table' or type(host.match) ~= 'string' then
        error("options.hosts: an array entry must be a table with a string 'match'", 3)
      end
      hosts[host.match] = host
    end
  elseif count > 1 then
    error("options.hosts: a table constructor loses the order of its hosts; assign them one by one, options.hosts['pattern'] = { ... }, or as an array of { match = 'pattern', ... }", 3)
  else
    for pattern, host in pairs(given) do hosts[pattern] = host end
  end
  return hosts
end

local function copy_mimes(given)
  local mimes = {}
  for mime, list in pairs(given) do
    if type(mime) ~= 'string' or type(list) ~= 'string' then
      error("options.mimes: entries must be mime = 'ext,ext', not " .. type(mime) .. " = " .. type(list), 3)
    end
    mimes[mime] = list
  end
  return mimes
end

options = setmetatable({}, {
  __index = store,
  __newindex = function(_, name, value)
    local want = types[name]
    if want == nil then
      error("unknown option '" .. tostring(name) .. "'", 2)
    end
    if want == 'readonly' then
      error("option '" .. name .. "' is read-only", 2)
    end
    -- `options.port = false` turns the plain port off; the port's type
    -- stays "number" in messages.
    local off = name == 'port' and value == false
    if not off and not string.find(want, type(value), 1, true) then
      error("option '" .. name .. "' must be a " .. want .. ", not a " .. type(value), 2)
    end
    if name == 'hosts' then value = copy_hosts(value) end
    if name == 'mimes' then value = copy_mimes(value) end
    assigned[name] = true
    store[name] = value
  end,
})
store.hosts = ordered_hosts()
return store, assigned
"#;

/// Each option and the Lua types it accepts.
const OPTION_TYPES: &[(&str, &str)] = &[
    ("bind", "string"),
    ("port", "number"),
    ("root", "number|boolean|nil"),
    ("root_bind", "string"),
    ("root_token", "string"),
    ("workers", "number"),
    ("clients", "number"),
    ("throttle", "number"),
    ("period", "number"),
    ("throttle_from", "number|string"),
    ("rate", "number|string"),
    ("rate_after", "number|string"),
    ("min_slice", "number|string"),
    ("cache", "number"),
    ("user", "string"),
    ("hosts", "table"),
    ("mimes", "table"),
    ("header_timeout", "number"),
    ("keepalive_timeout", "number"),
    ("send_timeout", "number"),
    ("drain_timeout", "number"),
    ("stall_timeout", "number"),
    ("access_log", "boolean"),
    ("seek", "string"),
    ("lua_instructions", "number"),
    ("lua_memory", "number|string"),
    ("geoip", "string"),
    ("limits", "table|boolean"),
    ("tls", "table|boolean"),
    ("segment_seconds", "number"),
    ("cpus", "readonly"),
];

/// The options a host may override, and their Lua types.
const HOST_OPTION_TYPES: &[(&str, &str)] = &[
    ("throttle", "number"),
    ("period", "number"),
    ("throttle_from", "number|string"),
    ("rate", "number|string"),
    ("rate_after", "number|string"),
    ("min_slice", "number|string"),
    ("send_timeout", "number"),
    ("hints", "boolean"),
    ("segment_seconds", "number"),
    ("subtitle_default", "string"),
    ("subtitle_names", "table"),
];

/// Every key options.lua accepts, with where it goes: `options`, `host`,
/// `route`, `limits` or `countries`. The manual's test checks that each is
/// documented.
pub fn accepted_keys() -> Vec<(&'static str, &'static str)> {
    let mut keys: Vec<(&str, &str)> = OPTION_TYPES.iter().map(|(k, _)| ("options", *k)).collect();
    for key in ["match", "folder", "folders", "routes"] {
        keys.push(("host", key));
    }
    for (key, _) in HOST_OPTION_TYPES
        .iter()
        .chain(access::HOST_ACCESS_TYPES)
        .chain(tls::HOST_TLS_TYPES)
    {
        keys.push(("host", key));
    }
    for key in ["match", "status", "message"]
        .iter()
        .chain(ROUTE_ACTIONS.iter())
    {
        keys.push(("route", key));
    }
    keys.extend(access::LIMITS_KEYS.iter().map(|k| ("limits", *k)));
    keys.extend(tls::TLS_KEYS.iter().map(|k| ("tls", *k)));
    keys.extend(access::COUNTRIES_KEYS.iter().map(|k| ("countries", *k)));
    keys
}

/// Runs the script at `path` (whose bytes are `source`) and returns the options it set.
pub fn evaluate(path: &Path, source: &[u8]) -> Result<Options, OptionsError> {
    let sandbox = Sandbox::with_helpers().map_err(|e| OptionsError::new(describe(&e)))?;
    evaluate_in(&sandbox, path, source).map(|(options, _)| options)
}

/// Runs the script in `sandbox`, under the options script's limits, and
/// returns the options and the table holding them (where route functions
/// are found).
pub fn evaluate_in(
    sandbox: &Sandbox,
    path: &Path,
    source: &[u8],
) -> Result<(Options, Table), OptionsError> {
    sandbox.start_options_script();
    let lua = &sandbox.lua;
    let (store, assigned) = prepare(lua).map_err(|e| OptionsError::new(describe(&e)))?;
    lua.load(source)
        .set_name(format!("@{}", path.display()))
        .exec()
        .map_err(|e| OptionsError::new(describe(&e)))?;
    let options = read_back(&store, &assigned).map_err(|e| match e {
        ReadError::Lua(e) => OptionsError::new(describe(&e)),
        ReadError::Invalid(e) => e,
    })?;
    Ok((options, store))
}

fn prepare(lua: &Lua) -> mlua::Result<(Table, Table)> {
    let types = lua.create_table()?;
    for (name, kind) in OPTION_TYPES {
        types.set(*name, *kind)?;
    }
    let host_types = lua.create_table()?;
    for (name, kind) in HOST_OPTION_TYPES
        .iter()
        .chain(access::HOST_ACCESS_TYPES)
        .chain(tls::HOST_TLS_TYPES)
    {
        host_types.set(*name, *kind)?;
    }
    let (store, assigned): (Table, Table) = lua
        .load(PRELUDE)
        .set_name("=prelude")
        .call((types, host_types))?;
    let defaults = Options::defaults();
    store.set("bind", defaults.bind)?;
    store.set("port", defaults.port)?;
    store.set("root", defaults.root)?;
    store.set("root_bind", defaults.root_bind)?;
    store.set("root_token", defaults.root_token)?;
    store.set("workers", defaults.workers)?;
    store.set("clients", defaults.clients)?;
    store.set("throttle", defaults.throttle)?;
    store.set("period", defaults.period)?;
    store.set("throttle_from", defaults.throttle_from)?;
    store.set("rate", defaults.rate)?;
    store.set("rate_after", defaults.rate_after)?;
    store.set("min_slice", defaults.min_slice)?;
    store.set("cache", defaults.cache)?;
    store.set("user", defaults.user.name)?;
    store.set("header_timeout", defaults.header_timeout)?;
    store.set("keepalive_timeout", defaults.keepalive_timeout)?;
    store.set("send_timeout", defaults.send_timeout)?;
    store.set("drain_timeout", defaults.drain_timeout)?;
    store.set("stall_timeout", defaults.stall_timeout)?;
    store.set("access_log", defaults.access_log)?;
    store.set("seek", "keyframe")?;
    store.set("segment_seconds", defaults.segment_seconds)?;
    store.set("lua_instructions", defaults.lua_instructions)?;
    store.set("lua_memory", defaults.lua_memory)?;
    store.set("cpus", cpu_count())?;
    let mimes = lua.create_table()?;
    for (mime, list) in super::mime::DEFAULT_MIMES {
        mimes.set(*mime, *list)?;
    }
    store.set("mimes", mimes)?;
    Ok((store, assigned))
}

fn read_back(store: &Table, assigned: &Table) -> Result<Options, ReadError> {
    let mut options = Options::defaults();
    options.bind = store.get("bind")?;
    match store.get::<Value>("port")? {
        Value::Boolean(false) => options.plain_http = false,
        Value::Boolean(true) => {
            return Err(OptionsError::option(
                "port",
                "must be a port number, or false to serve HTTPS only",
            )
            .into());
        }
        _ => options.port = integer(store, "port", 0, 65_535)? as u16,
    }
    options.root = match store.get::<Value>("root")? {
        Value::Boolean(false) | Value::Nil => 0,
        Value::Boolean(true) => {
            return Err(OptionsError::option(
                "root",
                "must be a port number, or false to disable the admin port",
            )
            .into());
        }
        _ => integer(store, "root", 0, 65_535)? as u16,
    };
    options.root_bind = store.get("root_bind")?;
    options.root_token = store.get("root_token")?;
    options.workers = integer(store, "workers", 1, 512)? as usize;
    options.clients = integer(store, "clients", 1, 10_000_000)? as u64;
    options.throttle = store.get("throttle")?;
    options.period = store.get("period")?;
    options.throttle_from = size(store.get("throttle_from")?, "throttle_from")?;
    options.rate = size(store.get("rate")?, "rate")?;
    options.rate_after = size(store.get("rate_after")?, "rate_after")?;
    options.min_slice = size(store.get("min_slice")?, "min_slice")?;
    options.cache = integer(store, "cache", 0, 1 << 20)? as u64;
    options.user = UserOption {
        name: store.get("user")?,
        explicit: assigned.get::<bool>("user").unwrap_or(false),
    };
    if options.user.name.is_empty() {
        return Err(OptionsError::option("user", "must name an account").into());
    }
    options.header_timeout = store.get("header_timeout")?;
    options.keepalive_timeout = store.get("keepalive_timeout")?;
    options.send_timeout = store.get("send_timeout")?;
    options.drain_timeout = store.get("drain_timeout")?;
    options.stall_timeout = store.get("stall_timeout")?;
    options.access_log = store.get("access_log")?;
    options.segment_seconds = store.get("segment_seconds")?;
    options.seek = match store.get::<String>("seek")?.as_str() {
        "keyframe" => SeekMode::Keyframe,
        "exact" => SeekMode::Exact,
        other => {
            return Err(OptionsError::option(
                "seek",
                format!("must be 'keyframe' or 'exact', not '{other}'"),
            )
            .into());
        }
    };
    options.lua_instructions = integer(store, "lua_instructions", 1000, 1_000_000_000)? as u64;
    options.lua_memory = size(store.get("lua_memory")?, "lua_memory")?;
    if options.lua_memory < 1 << 20 {
        return Err(OptionsError::option("lua_memory", "must be at least '1m'").into());
    }
    options.geoip = store
        .get::<Option<String>>("geoip")?
        .filter(|path| !path.is_empty())
        .map(PathBuf::from);
    options.limits = access::read_limits(store.get::<Value>("limits")?)?;
    options.tls = tls::read_tls(store.get::<Value>("tls")?)?;
    options.hosts = read_hosts(store)?;
    let mut mimes = MimeTable::default();
    for pair in store.get::<Table>("mimes")?.pairs::<String, String>() {
        let (mime, list) = pair?;
        mimes.insert_list(&mime, &list);
    }
    options.mimes = mimes;
    Ok(options)
}

/// A whole number within `[min, max]`, or an error naming the option.
fn integer(store: &Table, name: &str, min: i64, max: i64) -> Result<i64, ReadError> {
    let value: f64 = store.get(name)?;
    if value.fract() != 0.0 || value < min as f64 || value > max as f64 {
        return Err(OptionsError::option(
            name,
            format!("must be a whole number from {min} to {max}, not {value}"),
        )
        .into());
    }
    Ok(value as i64)
}

/// The message of a Lua error without mlua's decorations: "file:line: reason".
fn describe(error: &mlua::Error) -> String {
    match error {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(message) => {
            // mlua appends a traceback; the first line already names file:line.
            message
                .split("\nstack traceback:")
                .next()
                .unwrap_or(message)
                .to_string()
        }
        mlua::Error::CallbackError { cause, .. } => describe(cause),
        mlua::Error::FromLuaConversionError { from, to, message } => {
            format!(
                "expected a {to}, found a {from}{}",
                message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(script: &str) -> Result<Options, OptionsError> {
        evaluate(Path::new("t.lua"), script.as_bytes())
    }

    #[test]
    fn an_empty_script_gives_the_defaults() {
        let options = eval("").expect("defaults");
        let defaults = Options::defaults();
        assert_eq!(options.port, defaults.port);
        assert_eq!(options.hosts, defaults.hosts);
        assert!(!options.user.explicit);
    }

    #[test]
    fn values_and_host_order_are_read_back() {
        let options = eval(
            "options.port = 81\noptions.root = false\noptions.workers = options.cpus\n\
             options.hosts['^b$'] = { folder = '/b' }\noptions.hosts['^a$'] = { folder = '/a' }\n\
             options.hosts[''] = { folder = '/c', routes = {} }\noptions.user = 'www-data'\n\
             options.mimes['video/x-test'] = 'tst'",
        )
        .expect("valid");
        assert_eq!(options.port, 81);
        assert_eq!(options.root, 0);
        assert_eq!(options.workers, cpu_count());
        let patterns: Vec<_> = options.hosts.iter().map(|h| h.pattern.as_str()).collect();
        assert_eq!(patterns, ["^b$", "^a$", ""]);
        assert!(options.user.explicit);
        assert_eq!(options.mimes.lookup(b"x.tst"), Some("video/x-test"));
        assert_eq!(options.mimes.lookup(b"x.mp4"), Some("video/mp4"));
    }

    #[test]
    fn pacing_options_read_sizes_and_host_overrides() {
        let options = eval(
            "options.period = 0.25\noptions.rate = '200k'\noptions.rate_after = 1000\n\
             options.throttle_from = '2m'\n\
             options.hosts['^slow'] = { folder = '/s', throttle = 5, rate = '1m', send_timeout = 9 }\n\
             options.hosts[''] = { folder = '/c' }",
        )
        .expect("valid");
        assert_eq!(options.period, 0.25);
        assert_eq!(options.rate, 204_800);
        assert_eq!(options.rate_after, 1000);
        assert_eq!(options.throttle_from, 2 << 20);
        let slow = options.pacing_of(&options.hosts[0]);
        assert_eq!(
            (slow.throttle, slow.rate, slow.send_timeout, slow.period),
            (5.0, 1 << 20, 9.0, 0.25)
        );
        let other = options.pacing_of(&options.hosts[1]);
        assert_eq!((other.throttle, other.rate), (20.0, 204_800));
    }

    #[test]
    fn an_array_of_hosts_keeps_its_order() {
        let options = eval(
            "options.hosts = { { match = 'z', folder = '/z' }, { match = '', folder = '/y' } }",
        )
        .expect("valid");
        let patterns: Vec<_> = options.hosts.iter().map(|h| h.pattern.as_str()).collect();
        assert_eq!(patterns, ["z", ""]);
    }

    #[test]
    fn errors_name_the_file_line_and_option() {
        assert_eq!(
            eval("\noptions.prot = 80").unwrap_err().to_string(),
            "t.lua:2: unknown option 'prot'"
        );
        assert_eq!(
            eval("options.port = 'eighty'").unwrap_err().to_string(),
            "t.lua:1: option 'port' must be a number, not a string"
        );
        assert_eq!(
            eval("options.cpus = 3").unwrap_err().to_string(),
            "t.lua:1: option 'cpus' is read-only"
        );
        assert!(
            eval("options.port = ")
                .unwrap_err()
                .to_string()
                .starts_with("t.lua:1:")
        );
        assert_eq!(
            eval("options.port = 70000").unwrap_err().to_string(),
            "option 'port' must be a whole number from 0 to 65535, not 70000"
        );
        assert!(eval("options.hosts = { a = { folder = '/a' }, b = { folder = '/b' } }").is_err());
        assert_eq!(
            eval("options.rate = 'fast'").unwrap_err().to_string(),
            "option 'rate' 'fast' is not a size like 204800, '200k', '1m' or '2g'"
        );
        assert!(
            eval("options.hosts['x'] = { folder = '/x', period = 'slow' }")
                .unwrap_err()
                .to_string()
                .contains("period must be a number")
        );
        assert!(
            eval("options.hosts['x'] = { folder = 1 }")
                .unwrap_err()
                .to_string()
                .contains("folder must be a string")
        );
    }
}

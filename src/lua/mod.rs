//! The restricted Lua 5.1 environment that options.lua and route functions
//! run in, and its limits.
//!
//! Layer: above `http` only (for percent-decoding): both options.lua's
//! loader and the route functions use it, so it must import neither.
//!
//! What is left out: files, processes and the environment (`io`,
//! `os.execute` and friends), loading code (`load*`, `dofile`, `require`),
//! `debug`, `setfenv`/`getfenv`, `collectgarbage`, `newproxy`,
//! `string.dump`, and the `coroutine` library: Lua 5.1 hooks are per thread
//! and mlua keeps its hook on the main thread only, so code in a coroutine
//! would run with no instruction limit at all. Leaving coroutines out makes
//! every line of Lua run on the one hooked thread.
//!
//! What is left in, and why none of it can run unbounded or allocate past
//! the memory limit (every Lua allocation goes through the state's
//! allocator, which refuses past `lua_memory`; every Lua instruction is
//! counted by the hook, which also reads the clock every
//! [`limits::HOOK_EVERY`] instructions, and one instruction copies at most a
//! string the memory limit allows):
//!
//! - `assert`, `error`, `type`, `rawequal`, `rawget`, `rawset`, `next`,
//!   `getmetatable`, `setmetatable`, `_G`, `_VERSION`, `gcinfo`: constant work.
//!   `pairs`, `ipairs`: one step per call; the loop around them is Lua.
//! - `tostring`, `tonumber`: one pass over the value; a `__tostring`
//!   metamethod is Lua, counted.
//! - `select`, `unpack`, `string.byte`, `string.char`, `math.max`/`min`:
//!   as many values as their arguments, or as Lua's C stack holds
//!   (`unpack(t, 1, 1e9)` fails with "too many results to unpack").
//! - `pcall`, `xpcall`: wrapped, so that once a limit is reached they hand
//!   the error on instead of catching it (see [`limits`]); xpcall's handler
//!   runs after the stack is unwound, with the hook on (Lua 5.1 runs it with
//!   hooks off when the error came from a hook).
//! - `print`: writes one log line at `info`, never to standard output (a
//!   full pipe there would block the worker).
//! - `string.len`, `lower`, `upper`, `reverse`, `sub`, `format`: one pass
//!   over their arguments; `format`'s widths and precisions have at most two
//!   digits, so one conversion writes at most its argument or 512 bytes.
//! - `string.find`, `match`, `gmatch` (and `gfind`), `gsub`: Rust's bounded
//!   matcher ([`pattern`]), whose steps come out of the instruction budget;
//!   a gsub replacement function is Lua, counted.
//! - `string.rep`: Rust; a result larger than the memory limit is refused
//!   before it is built, and its bytes are charged to the budget.
//! - `table.concat`: one pass over `t[i..j]`, ending at the first element
//!   that is not a string or number (raw reads, no metamethods), so at most
//!   the table's length, which the memory limit bounds.
//! - `table.insert`, `table.remove`, `table.getn`, `table.maxn`: at most one
//!   pass over the table; `table.setn` always fails in 5.1; `table.foreach`,
//!   `foreachi` call Lua, counted.
//! - `table.sort`: quicksort, quadratic at worst; every comparison is a Lua
//!   function (the default comparator is Lua's `a < b`), so each is counted.
//! - `math.*`: constant work.
//! - `os.time`, `os.date`, `os.clock`, `os.difftime`: constant work, or one
//!   pass over the format string.
//! - `loomiere.*` (added by the options and route modules): one pass over
//!   their arguments (`hmac_sha256`, `md5`, `escape`, `unescape`, `log`), or a
//!   lookup in a tree of bounded depth (`country`), or constant (`time`).
//!   Their Rust buffers are at most three times an argument the memory limit
//!   already bounds.

pub mod helpers;
pub mod limits;
pub mod pattern;
mod strings;

use std::rc::Rc;
use std::time::Duration;

use mlua::{Lua, LuaOptions, StdLib};

use limits::{LimitNames, Limits};

/// Instructions options.lua may run when it is evaluated (at start-up, by
/// `-t` and on reload), so a script that loops forever stops with an error.
pub const OPTIONS_SCRIPT_INSTRUCTIONS: u64 = 100_000_000;
/// Time options.lua may take when it is evaluated.
pub const OPTIONS_SCRIPT_TIME: Duration = Duration::from_secs(10);
/// Memory options.lua may use when it is evaluated.
pub const OPTIONS_SCRIPT_MEMORY_BYTES: u64 = 256 << 20;

/// How the options script's limits are named in its errors.
pub const OPTIONS_SCRIPT_LIMITS: LimitNames = LimitNames {
    instructions: "100000000 instructions for options.lua",
    time: "for options.lua",
};

/// Lua run once in a new state: takes away what must not be there and
/// wraps what must not catch a reached limit.
const SANDBOX: &str = r#"
local limit_reached, log_line = ...
for _, name in ipairs({ 'execute', 'exit', 'remove', 'rename', 'tmpname', 'getenv', 'setlocale' }) do
  os[name] = nil
end
load, loadstring, loadfile, dofile, require, module = nil, nil, nil, nil, nil, nil
getfenv, setfenv, newproxy, collectgarbage = nil, nil, nil, nil
coroutine = nil
string.dump = nil

local raw_pcall, raw_sort, error = pcall, table.sort, error
local tostring, select, concat = tostring, select, table.concat
-- Once a limit is reached, an error passes through pcall and xpcall.
local function pass(ok, ...)
  if not ok and limit_reached() then error((...), 0) end
  return ok, ...
end
function pcall(...) return pass(raw_pcall(...)) end
-- Lua 5.1 runs an error handler with hooks off when the error came from a
-- hook, so a handler that loops would never be stopped: it runs here after
-- the stack is unwound instead (no debug library can tell the difference).
local function handled(handler, ok, ...)
  if ok then return true, ... end
  if limit_reached() then error((...), 0) end
  local handled_ok, value = raw_pcall(handler, (...))
  if not handled_ok then
    if limit_reached() then error(value, 0) end
    value = 'error in error handling'
  end
  return false, value
end
function xpcall(f, handler) return handled(handler, raw_pcall(f)) end

-- C's default comparison would run unhooked; a Lua one is counted.
local function less(a, b) return a < b end
function table.sort(t, comparator)
  if comparator == nil then comparator = less end
  return raw_sort(t, comparator)
end

function print(...)
  local parts = {}
  for i = 1, select('#', ...) do parts[i] = tostring((select(i, ...))) end
  log_line(concat(parts, '\t'))
end
"#;

/// A restricted Lua state and the limits of the run in progress in it.
pub struct Sandbox {
    pub lua: Lua,
    pub limits: Rc<Limits>,
}

impl Sandbox {
    /// A new state, running under the options script's limits until told otherwise.
    pub fn new() -> mlua::Result<Sandbox> {
        let lua = Lua::new_with(
            StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::OS,
            LuaOptions::new(),
        )?;
        let sandbox = Sandbox {
            lua,
            limits: Rc::new(Limits::new(OPTIONS_SCRIPT_LIMITS)),
        };
        sandbox.limit_memory(OPTIONS_SCRIPT_MEMORY_BYTES)?;
        sandbox.start_options_script();
        limits::install_hook(&sandbox.lua, Rc::clone(&sandbox.limits));
        let reached = {
            let limits = Rc::clone(&sandbox.limits);
            sandbox
                .lua
                .create_function(move |_, ()| Ok(limits.reached().is_some()))?
        };
        let log_line = sandbox.lua.create_function(|_, line: mlua::String| {
            log::info!("lua: {}", line.to_string_lossy());
            Ok(())
        })?;
        sandbox
            .lua
            .load(SANDBOX)
            .set_name("=sandbox")
            .call::<()>((reached, log_line))?;
        strings::install(&sandbox.lua, &sandbox.limits)?;
        Ok(sandbox)
    }

    /// Starts a run under the options script's limits.
    pub fn start_options_script(&self) {
        self.limits.start(
            OPTIONS_SCRIPT_INSTRUCTIONS,
            OPTIONS_SCRIPT_TIME,
            OPTIONS_SCRIPT_LIMITS,
        );
    }

    /// Limits the whole state to `bytes` of memory.
    pub fn limit_memory(&self, bytes: u64) -> mlua::Result<()> {
        self.lua
            .set_memory_limit(usize::try_from(bytes).unwrap_or(usize::MAX))?;
        self.limits.set_memory(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests;

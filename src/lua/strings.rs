//! The string functions that Lua 5.1 runs unbounded inside C, replaced by
//! ones that take their work from the run's [`Limits`]: the pattern
//! functions on [`super::pattern`], and `string.rep`, which could copy for
//! seconds with hardly an instruction (`string.rep('', 2^31)`, or many
//! large results in a loop).
//!
//! The argument handling and the find/match/gmatch/gsub loops are Lua
//! (`strings.lua`), so that errors are Lua strings with the caller's
//! position, and a gsub replacement function or table runs as plain Lua
//! under the instruction hook; the matching itself is Rust.

use std::rc::Rc;

use mlua::{Lua, MultiValue, Value};

use super::limits::{BYTES_PER_INSTRUCTION, Limits};
use super::pattern::{self, Capture};

const STRINGS_LUA: &str = include_str!("strings.lua");

/// Replaces the string library's unbounded functions in `lua`.
pub fn install(lua: &Lua, limits: &Rc<Limits>) -> mlua::Result<()> {
    let search = {
        let limits = Rc::clone(limits);
        lua.create_function(
            move |lua,
                  (subject, pattern, init, mode, plain): (
                mlua::String,
                mlua::String,
                usize,
                u8,
                Value,
            )| {
                let mode = Mode::from_number(mode)?;
                let plain = mode == Mode::Find && plain.as_boolean().unwrap_or(!plain.is_nil());
                search(
                    lua,
                    &limits,
                    &subject.as_bytes(),
                    &pattern.as_bytes(),
                    init,
                    mode,
                    plain,
                )
            },
        )?
    };
    let plain_find = lua.create_function(
        |_, (haystack, needle, init): (mlua::String, mlua::String, usize)| {
            Ok(pattern::find_plain(
                &haystack.as_bytes(),
                &needle.as_bytes(),
                init,
            ))
        },
    )?;
    let repeat = {
        let limits = Rc::clone(limits);
        lua.create_function(move |lua, (text, times): (mlua::String, f64)| {
            let text = text.as_bytes();
            if times < 1.0 || text.is_empty() {
                return Ok((Some(lua.create_string("")?), None));
            }
            let size = text.len() as f64 * times.floor();
            let most = limits.memory();
            if size > most as f64 {
                return Ok((
                    None,
                    Some(format!(
                        "not enough memory: string.rep would make {size:.0} bytes, more than the {most} the Lua state may use"
                    )),
                ));
            }
            if let Err(message) = limits.charge(size as u64 / BYTES_PER_INSTRUCTION) {
                return Ok((None, Some(message)));
            }
            Ok((Some(lua.create_string(text.repeat(times as usize))?), None))
        })?
    };
    lua.load(STRINGS_LUA)
        .set_name("=strings")
        .call::<()>((search, plain_find, repeat))
}

/// What strings.lua's `search` returns a match for (its FIND, MATCH,
/// GMATCH and RAW).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Find,
    Match,
    Gmatch,
    Raw,
}

impl Mode {
    fn from_number(n: u8) -> mlua::Result<Mode> {
        Ok(match n {
            0 => Mode::Find,
            1 => Mode::Match,
            2 => Mode::Gmatch,
            3 => Mode::Raw,
            _ => return Err(mlua::Error::RuntimeError(format!("search mode {n}"))),
        })
    }
}

fn failure(lua: &Lua, message: &str) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_iter([
        Value::Boolean(false),
        Value::String(lua.create_string(message)?),
    ]))
}

/// The `search` primitive of strings.lua: one match, and its results as
/// string.find, string.match, a gmatch step or gsub's loop wants them.
fn search(
    lua: &Lua,
    limits: &Limits,
    subject: &[u8],
    pattern: &[u8],
    init: usize,
    mode: Mode,
    plain: bool,
) -> mlua::Result<MultiValue> {
    if mode == Mode::Find && (plain || pattern::is_plain(pattern)) {
        return Ok(match pattern::find_plain(subject, pattern, init) {
            Some(at) => MultiValue::from_iter([
                Value::Integer(at as i64 + 1),
                Value::Integer((at + pattern.len()) as i64),
            ]),
            None => MultiValue::from_iter([Value::Nil]),
        });
    }
    // gmatch takes a leading '^' as a plain character, as Lua 5.1 does.
    let (pattern, anchored) = match pattern.strip_prefix(b"^") {
        Some(rest) if mode != Mode::Gmatch => (rest, true),
        _ => (pattern, false),
    };
    let mut budget = limits.pattern_budget();
    let result = pattern::search(subject, pattern, init, anchored, &mut budget);
    let over = limits.settle(&budget, result.as_ref().err());
    let found = match result {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(MultiValue::from_iter([Value::Nil])),
        Err(error) => {
            return match (over, error) {
                (Some(message), _) => failure(lua, &format!("{message} while matching a pattern")),
                (None, error) => failure(lua, &error.to_string()),
            };
        }
    };
    let mut values = Vec::with_capacity(3 + found.level());
    match mode {
        Mode::Find => {
            values.push(Value::Integer(found.start as i64 + 1));
            values.push(Value::Integer(found.end as i64));
        }
        Mode::Raw => {
            values.push(Value::Integer(found.start as i64));
            values.push(Value::Integer(found.end as i64));
        }
        // An empty match moves on by one, or the loop would find it forever.
        Mode::Gmatch => values.push(Value::Integer(
            (found.end + usize::from(found.end == found.start)) as i64,
        )),
        Mode::Match => {}
    }
    if found.level() == 0 && matches!(mode, Mode::Match | Mode::Gmatch) {
        values.push(Value::String(
            lua.create_string(&subject[found.start..found.end])?,
        ));
    }
    for index in 0..found.level() {
        values.push(match found.capture(index) {
            Capture::Text { start, end } => Value::String(lua.create_string(&subject[start..end])?),
            Capture::Position(at) => Value::Integer(at as i64),
            Capture::Unfinished if mode == Mode::Raw => Value::Boolean(false),
            Capture::Unfinished => return failure(lua, "unfinished capture"),
        });
    }
    Ok(MultiValue::from_iter(values))
}

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
use super::pattern::{self, Capture, PatternError};

const STRINGS_LUA: &str = include_str!("strings.lua");

/// Replaces the string library's unbounded functions in `lua`.
pub fn install(lua: &Lua, limits: &Rc<Limits>) -> mlua::Result<()> {
    let search = {
        let limits = Rc::clone(limits);
        lua.create_function(
            move |lua, (subject, pattern, init, anchored): (mlua::String, mlua::String, usize, bool)| {
                search(lua, &limits, &subject.as_bytes(), &pattern.as_bytes(), init, anchored)
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
    let is_plain =
        lua.create_function(|_, pattern: mlua::String| Ok(pattern::is_plain(&pattern.as_bytes())))?;
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
        .call::<()>((search, plain_find, is_plain, repeat))
}

/// The `search` primitive of strings.lua.
fn search(
    lua: &Lua,
    limits: &Limits,
    subject: &[u8],
    pattern: &[u8],
    init: usize,
    anchored: bool,
) -> mlua::Result<MultiValue> {
    let mut budget = limits.pattern_budget();
    let result = pattern::search(subject, pattern, init, anchored, &mut budget);
    let over = limits.settle(&budget, result.as_ref().err());
    let found = match result {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(MultiValue::from_iter([Value::Nil])),
        Err(error) => {
            let message = over.unwrap_or_else(|| error.to_string());
            let message = match error {
                PatternError::OutOfSteps | PatternError::OutOfTime => {
                    format!("{message} while matching a pattern")
                }
                _ => message,
            };
            return Ok(MultiValue::from_iter([
                Value::Boolean(false),
                Value::String(lua.create_string(message)?),
            ]));
        }
    };
    let mut values = Vec::with_capacity(2 + found.level());
    values.push(Value::Integer(found.start as i64));
    values.push(Value::Integer(found.end as i64));
    for index in 0..found.level() {
        values.push(match found.capture(index) {
            Capture::Text { start, end } => Value::String(lua.create_string(&subject[start..end])?),
            Capture::Position(at) => Value::Integer(at as i64),
            Capture::Unfinished => Value::Boolean(false),
        });
    }
    Ok(MultiValue::from_iter(values))
}

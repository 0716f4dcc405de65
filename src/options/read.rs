//! Reading options.lua's values back into Rust: the error of a read (a Lua
//! error, or a value the option does not take) and the readers that the
//! global options and the hosts' tables share.

use mlua::Value;

use super::OptionsError;

/// Why reading a value back failed: Lua raised an error, or the value is
/// not one the option takes (with the option named).
pub(super) enum ReadError {
    Lua(mlua::Error),
    Invalid(OptionsError),
}

impl From<mlua::Error> for ReadError {
    fn from(e: mlua::Error) -> Self {
        ReadError::Lua(e)
    }
}

impl From<OptionsError> for ReadError {
    fn from(e: OptionsError) -> Self {
        ReadError::Invalid(e)
    }
}

/// A size option: a number of bytes or a string like '200k'.
pub(super) fn size(value: Value, name: &str) -> Result<u64, ReadError> {
    let parsed = match &value {
        Value::Integer(n) => super::size::from_number(*n as f64),
        Value::Number(n) => super::size::from_number(*n),
        Value::String(text) => super::size::parse(&text.to_string_lossy()),
        other => Err(format!("must be a size, not a {}", other.type_name())),
    };
    parsed.map_err(|e| OptionsError::option(name, e).into())
}

//! The seek arguments of a media request: `start`, `stop` (alias `end`) and `units`.

use std::fmt;

/// How `start` and `stop` are measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Units {
    Seconds,
    Bytes,
}

/// A validated seek: where the response begins and ends in the media.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seek {
    /// 0 = from the beginning.
    pub start: f64,
    /// 0 = to the end.
    pub stop: f64,
    pub units: Units,
}

impl Seek {
    /// A key for caches and ETags that tells seeks apart exactly.
    pub fn key(&self) -> SeekKey {
        SeekKey {
            start_bits: self.start.to_bits(),
            stop_bits: self.stop.to_bits(),
            units: self.units,
        }
    }
}

/// `Seek` in a hashable form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeekKey {
    start_bits: u64,
    stop_bits: u64,
    units: Units,
}

impl fmt::Display for Seek {
    /// The form used in ETags: `s1.5-e0-t` (t = seconds, b = bytes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = match self.units {
            Units::Seconds => 't',
            Units::Bytes => 'b',
        };
        write!(f, "s{}-e{}-{units}", self.start, self.stop)
    }
}

/// Why the seek arguments were refused (answered 400).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError(pub String);

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads the seek arguments from a query string. `Ok(None)` when there is no
/// seek (no `start`/`stop`, or both 0): the file is then served as it is.
/// Unknown arguments are ignored; a repeated argument keeps its last value.
pub fn parse(query: &str) -> Result<Option<Seek>, QueryError> {
    let mut start: Option<(&str, f64)> = None;
    let mut stop: Option<(&str, f64)> = None;
    let mut units: Option<&str> = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "start" => start = Some((value, number("start", value)?)),
            "stop" | "end" => stop = Some((value, number(name, value)?)),
            "units" => units = Some(value),
            _ => {}
        }
    }
    let start_value = start.map_or(0.0, |(_, v)| v);
    let stop_value = stop.map_or(0.0, |(_, v)| v);
    if start_value == 0.0 && stop_value == 0.0 {
        return Ok(None);
    }
    let units = match units
        .and_then(|u| u.chars().next())
        .map(|c| c.to_ascii_lowercase())
    {
        Some('b') => Units::Bytes,
        Some('s') => Units::Seconds,
        _ => {
            // The original's rule: a whole number above 3600 can only be a byte offset.
            let largest = if start_value >= stop_value {
                start
            } else {
                stop
            };
            match largest {
                Some((text, value)) if value > 3600.0 && !text.contains(['.', 'e', 'E']) => {
                    Units::Bytes
                }
                _ => Units::Seconds,
            }
        }
    };
    if stop_value != 0.0 && stop_value <= start_value {
        return Err(QueryError(format!(
            "stop ({stop_value}) must be after start ({start_value})"
        )));
    }
    Ok(Some(Seek {
        start: start_value,
        stop: stop_value,
        units,
    }))
}

/// A non-negative finite number; an empty value counts as 0.
fn number(name: &str, text: &str) -> Result<f64, QueryError> {
    if text.is_empty() {
        return Ok(0.0);
    }
    let valid = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    match text.parse::<f64>() {
        Ok(value) if valid && value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(QueryError(format!(
            "{name}={text} is not a non-negative number"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seek(query: &str) -> Seek {
        parse(query).expect("valid").expect("a seek")
    }

    #[test]
    fn no_seek_when_absent_or_zero() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("a=1&b"), Ok(None));
        assert_eq!(parse("start=0"), Ok(None));
        assert_eq!(parse("start=&stop=0"), Ok(None));
    }

    #[test]
    fn units_follow_the_original_rule() {
        assert_eq!(seek("start=5000").units, Units::Bytes);
        assert_eq!(seek("start=5000.5").units, Units::Seconds);
        assert_eq!(seek("start=3600").units, Units::Seconds);
        assert_eq!(seek("start=120").units, Units::Seconds);
        assert_eq!(seek("start=10&units=bytes").units, Units::Bytes);
        assert_eq!(seek("start=5000&units=s").units, Units::Seconds);
        assert_eq!(seek("start=2&end=9000").units, Units::Bytes);
    }

    #[test]
    fn end_is_an_alias_of_stop_and_unknown_arguments_are_ignored() {
        let s = seek("x=1&start=6&end=9&foo");
        assert_eq!((s.start, s.stop), (6.0, 9.0));
        assert_eq!(seek("stop=9").start, 0.0);
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            "start=abc",
            "start=-1",
            "start=NaN",
            "start=inf",
            "stop=1e999",
            "start=5&stop=2",
            "start=0x10",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse("start=abc"),
            Err(QueryError("start=abc is not a non-negative number".into()))
        );
    }
}

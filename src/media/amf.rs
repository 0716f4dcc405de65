//! A small AMF0 decoder, enough for FLV `onMetaData` (Adobe AMF0 spec §2).
//!
//! Pure and bounded: nesting is limited and every element consumes input, so
//! any byte string decodes (or fails) in time linear in its length.

/// Deepest nesting of objects and arrays accepted.
const MAX_DEPTH: usize = 32;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Number(f64),
    Boolean(bool),
    String(String),
    /// Objects and ECMA arrays: named properties in order.
    Object(Vec<(String, Value)>),
    /// Strict arrays.
    Array(Vec<Value>),
    Date(f64),
    Null,
    Undefined,
}

impl Value {
    /// The property `name` of an object, if this is one and has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(properties) => properties.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The numbers of a strict array (non-numbers make it None).
    pub fn as_numbers(&self) -> Option<Vec<f64>> {
        match self {
            Value::Array(items) => items.iter().map(Value::as_number).collect(),
            _ => None,
        }
    }
}

/// Why a byte string is not valid AMF0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmfError(pub &'static str);

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AmfError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(AmfError("truncated value"))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, AmfError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, AmfError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, AmfError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, AmfError> {
        let b = self.take(8)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(b);
        Ok(f64::from_be_bytes(raw))
    }

    fn string(&mut self, len: usize) -> Result<String, AmfError> {
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn value(&mut self, depth: usize) -> Result<Value, AmfError> {
        if depth > MAX_DEPTH {
            return Err(AmfError("nesting too deep"));
        }
        match self.u8()? {
            0 => Ok(Value::Number(self.f64()?)),
            1 => Ok(Value::Boolean(self.u8()? != 0)),
            2 => {
                let len = self.u16()? as usize;
                Ok(Value::String(self.string(len)?))
            }
            3 => self.properties(depth),
            5 => Ok(Value::Null),
            6 => Ok(Value::Undefined),
            8 => {
                // The count is only a hint; the properties end with the object-end marker.
                self.u32()?;
                self.properties(depth)
            }
            10 => {
                let count = self.u32()? as usize;
                let mut items = Vec::new();
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            11 => {
                let millis = self.f64()?;
                self.take(2)?;
                Ok(Value::Date(millis))
            }
            12 | 15 => {
                let len = self.u32()? as usize;
                Ok(Value::String(self.string(len)?))
            }
            16 => {
                let len = self.u16()? as usize;
                self.take(len)?;
                self.properties(depth)
            }
            _ => Err(AmfError("unknown value type")),
        }
    }

    fn properties(&mut self, depth: usize) -> Result<Value, AmfError> {
        let mut properties = Vec::new();
        loop {
            let len = self.u16()? as usize;
            if len == 0 {
                if self.bytes.get(self.pos) == Some(&9) {
                    self.pos += 1;
                    return Ok(Value::Object(properties));
                }
                // Some writers end an ECMA array without the marker at the end of the data.
                if self.pos >= self.bytes.len() {
                    return Ok(Value::Object(properties));
                }
            }
            let name = self.string(len)?;
            let value = self.value(depth + 1)?;
            properties.push((name, value));
        }
    }
}

/// Decodes consecutive AMF0 values from `bytes` (a script tag's body holds a
/// name then a value). Stops at the first value that does not decode.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<Value>, AmfError> {
    let mut reader = Reader { bytes, pos: 0 };
    let mut values = Vec::new();
    while reader.pos < bytes.len() {
        values.push(reader.value(0)?);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Vec<u8> {
        let mut out = vec![2];
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
        out
    }

    fn number(n: f64) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&n.to_be_bytes());
        out
    }

    fn key(s: &str) -> Vec<u8> {
        let mut out = (s.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(s.as_bytes());
        out
    }

    #[test]
    fn decodes_on_metadata_with_keyframes() {
        let mut bytes = string("onMetaData");
        bytes.extend([8, 0, 0, 0, 2]);
        bytes.extend(key("duration"));
        bytes.extend(number(12.5));
        bytes.extend(key("keyframes"));
        bytes.push(3);
        bytes.extend(key("times"));
        bytes.extend([10, 0, 0, 0, 2]);
        bytes.extend(number(0.0));
        bytes.extend(number(2.0));
        bytes.extend(key("filepositions"));
        bytes.extend([10, 0, 0, 0, 2]);
        bytes.extend(number(400.0));
        bytes.extend(number(9000.0));
        bytes.extend([0, 0, 9]);
        bytes.extend([0, 0, 9]);
        let values = decode_all(&bytes).expect("valid");
        assert_eq!(values[0], Value::String("onMetaData".into()));
        let meta = &values[1];
        assert_eq!(meta.get("duration").and_then(Value::as_number), Some(12.5));
        let keyframes = meta.get("keyframes").expect("keyframes");
        assert_eq!(
            keyframes.get("times").and_then(Value::as_numbers),
            Some(vec![0.0, 2.0])
        );
        assert_eq!(
            keyframes.get("filepositions").and_then(Value::as_numbers),
            Some(vec![400.0, 9000.0])
        );
    }

    #[test]
    fn hostile_input_fails_cleanly() {
        assert!(decode_all(&[10, 255, 255, 255, 255]).is_err());
        assert!(decode_all(&[2, 0, 10, b'a']).is_err());
        assert!(decode_all(&[42]).is_err());
        let deep: Vec<u8> = std::iter::repeat_n([10u8, 0, 0, 0, 1], 100)
            .flatten()
            .collect();
        assert_eq!(decode_all(&deep), Err(AmfError("nesting too deep")));
    }
}

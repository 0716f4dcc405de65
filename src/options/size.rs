//! Byte sizes as operators write them in options.lua: `204800`, `'200k'`,
//! `'1.5m'`, `'2g'` (binary multiples, as nginx reads `limit_rate 200k`).

/// Parses a size: a whole number of bytes, or a number with a `k`, `m` or `g`
/// suffix (case-insensitive, 1024-based). The error says what was wrong.
pub fn parse(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let (number, multiplier) = match trimmed.char_indices().last() {
        Some((at, 'k' | 'K')) => (&trimmed[..at], 1u64 << 10),
        Some((at, 'm' | 'M')) => (&trimmed[..at], 1 << 20),
        Some((at, 'g' | 'G')) => (&trimmed[..at], 1 << 30),
        _ => (trimmed, 1),
    };
    let valid = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.chars().filter(|&c| c == '.').count() <= 1;
    let value: f64 = if valid { number.parse().ok() } else { None }
        .ok_or_else(|| format!("'{text}' is not a size like 204800, '200k', '1m' or '2g'"))?;
    from_number(value * multiplier as f64)
}

/// A size given as a Lua number: whole, not negative, and below 2^53.
pub fn from_number(value: f64) -> Result<u64, String> {
    if !value.is_finite() || value < 0.0 || value > (1u64 << 53) as f64 {
        return Err(format!("{value} is not a size in bytes"));
    }
    Ok(value.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_binary_multiples() {
        assert_eq!(parse("204800"), Ok(204_800));
        assert_eq!(parse("200k"), Ok(204_800));
        assert_eq!(parse("1M"), Ok(1_048_576));
        assert_eq!(parse("1.5m"), Ok(1_572_864));
        assert_eq!(parse(" 2g "), Ok(2_147_483_648));
        assert_eq!(parse("0"), Ok(0));
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in ["", "k", "-1", "1.2.3k", "10 kb", "1e3", "fast"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(from_number(-1.0).is_err());
        assert!(from_number(f64::NAN).is_err());
    }
}

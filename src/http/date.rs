//! HTTP dates (RFC 9110 §5.6.7): formatting IMF-fixdate and parsing all three
//! historical forms, without a calendar crate.

const DAY_NAMES: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date (inverse of `civil_from_days`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The broken-down UTC time of a Unix timestamp:
/// (year, month 1-12, day, hour, minute, second, weekday index into DAY_NAMES).
pub fn utc_parts(unix: i64) -> (i64, u32, u32, u32, u32, u32, usize) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    (
        year,
        month,
        day,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        days.rem_euclid(7) as usize,
    )
}

/// Formats `unix` as an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn format(unix: i64) -> String {
    let (year, month, day, hour, minute, second, weekday) = utc_parts(unix);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAY_NAMES[weekday],
        day,
        MONTH_NAMES[month as usize - 1],
        year,
        hour,
        minute,
        second
    )
}

/// The short month name for access-log timestamps.
pub fn month_name(month: u32) -> &'static str {
    MONTH_NAMES[(month as usize).clamp(1, 12) - 1]
}

/// Parses an HTTP date in any of its three forms (IMF-fixdate, RFC 850,
/// asctime) into a Unix timestamp. Anything else is None (and, per RFC
/// 9110, a conditional header with an invalid date is ignored).
pub fn parse(text: &str) -> Option<i64> {
    let text = text.trim();
    let (_, rest) = text.split_once([' ', ','])?;
    let fields: Vec<&str> = rest.split([' ', '-']).filter(|f| !f.is_empty()).collect();
    let (day, month, year, time) = match fields.as_slice() {
        // IMF-fixdate "06 Nov 1994 08:49:37 GMT" and RFC 850 "06-Nov-94 08:49:37 GMT"
        [day, month, year, time, "GMT"] => (*day, *month, *year, *time),
        // asctime "Nov  6 08:49:37 1994"
        [month, day, time, year] => (*day, *month, *year, *time),
        _ => return None,
    };
    let day: u32 = day.parse().ok()?;
    let month = MONTH_NAMES.iter().position(|m| *m == month)? as u32 + 1;
    let mut year: i64 = year.parse().ok()?;
    if year < 100 {
        year += if year < 70 { 2000 } else { 1900 };
    }
    let mut clock = time.split(':').map(|p| p.parse::<u32>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if clock.next().is_some() || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

/// The `Date` header value, formatted once per second rather than per response.
pub struct DateCache {
    second: i64,
    text: String,
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache {
            second: i64::MIN,
            text: String::new(),
        }
    }
}

impl DateCache {
    /// The IMF-fixdate of `unix`, reusing the last formatting within the same second.
    pub fn get(&mut self, unix: i64) -> &str {
        if unix != self.second {
            self.second = unix;
            self.text = format(unix);
        }
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_rfc_example() {
        assert_eq!(format(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(format(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(format(1_709_208_000), "Thu, 29 Feb 2024 12:00:00 GMT");
    }

    #[test]
    fn parses_all_three_forms() {
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse("Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse("Sun Nov  6 08:49:37 1994"), Some(784_111_777));
        assert_eq!(parse("yesterday"), None);
        assert_eq!(parse("Sun, 06 Nov 1994 25:49:37 GMT"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn round_trips_over_centuries() {
        for unix in (-5_000_000_000i64..5_000_000_000).step_by(86_399 * 97) {
            assert_eq!(parse(&format(unix)), Some(unix));
        }
    }
}

//! Byte ranges (RFC 9110 §14): one range is served as 206, several as a whole 200.

/// What a Range header asks of a body of a given size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Send the whole body (no header, a header we ignore, or several ranges).
    Full,
    /// Send bytes `first..=last`.
    Partial { first: u64, last: u64 },
    /// No byte of the body is in the range: 416.
    Unsatisfiable,
}

/// Evaluates a `Range` header value against a body of `size` bytes.
/// The part of a body of `size` bytes a request asks for: the status and
/// the byte range `[first, end)` to send, or 416. `Range` counts only when
/// `If-Range` (if any) matches the current validators.
pub fn select(
    request: &super::Request,
    validators: &super::conditional::Validators,
    size: u64,
) -> Result<(super::Status, u64, u64), super::Refusal> {
    let wanted = match &request.range {
        Some(range)
            if request
                .if_range
                .as_deref()
                .is_none_or(|v| super::conditional::if_range_matches(v, validators)) =>
        {
            evaluate(range, size)
        }
        _ => RangeOutcome::Full,
    };
    match wanted {
        RangeOutcome::Full => Ok((super::Status::OK, 0, size)),
        RangeOutcome::Partial { first, last } => {
            Ok((super::Status::PARTIAL_CONTENT, first, last + 1))
        }
        RangeOutcome::Unsatisfiable => Err(super::Refusal {
            unsatisfied_size: Some(size),
            ..super::Refusal::new(
                super::Status::RANGE_NOT_SATISFIABLE,
                "The range is outside the file.",
            )
        }),
    }
}

pub fn evaluate(header: &str, size: u64) -> RangeOutcome {
    let Some((unit, spec)) = header.split_once('=') else {
        return RangeOutcome::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeOutcome::Full;
    }
    let spec = spec.trim();
    if spec.contains(',') {
        // Several ranges would need multipart/byteranges; the whole body is a valid answer.
        return RangeOutcome::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeOutcome::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |text: &str| -> Option<u64> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Absurdly long numbers are still "past the end", not an error.
        Some(text.parse::<u64>().unwrap_or(u64::MAX))
    };
    if first.is_empty() {
        let Some(suffix) = number(last) else {
            return RangeOutcome::Full;
        };
        if suffix == 0 || size == 0 {
            return RangeOutcome::Unsatisfiable;
        }
        return RangeOutcome::Partial {
            first: size.saturating_sub(suffix),
            last: size - 1,
        };
    }
    let Some(first) = number(first) else {
        return RangeOutcome::Full;
    };
    let last = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(last) if last >= first => last,
            _ => return RangeOutcome::Full,
        }
    };
    if first >= size {
        return RangeOutcome::Unsatisfiable;
    }
    RangeOutcome::Partial {
        first,
        last: last.min(size - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::RangeOutcome::*;
    use super::*;

    #[test]
    fn select_gives_status_and_bounds_or_a_416_with_the_size() {
        use crate::http::conditional::Validators;
        use crate::http::{Request, Status};
        let validators = Validators {
            etag: "\"1-2\"",
            modified: 0,
        };
        let request = |range: &str, if_range: Option<&str>| Request {
            range: Some(range.to_string()),
            if_range: if_range.map(str::to_string),
            ..Request::default()
        };
        assert_eq!(
            select(&request("bytes=10-", None), &validators, 100),
            Ok((Status::PARTIAL_CONTENT, 10, 100))
        );
        assert_eq!(
            select(&request("bytes=10-", Some("\"other\"")), &validators, 100),
            Ok((Status::OK, 0, 100)),
            "an If-Range that does not match sends the whole body"
        );
        let refused = select(&request("bytes=200-", None), &validators, 100).err();
        assert_eq!(
            refused.map(|r| (r.status, r.unsatisfied_size)),
            Some((Status::RANGE_NOT_SATISFIABLE, Some(100)))
        );
    }

    #[test]
    fn single_ranges_of_each_form() {
        assert_eq!(evaluate("bytes=0-9", 100), Partial { first: 0, last: 9 });
        assert_eq!(
            evaluate("bytes=90-", 100),
            Partial {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            evaluate("bytes=-10", 100),
            Partial {
                first: 90,
                last: 99
            }
        );
        assert_eq!(evaluate("bytes=-1000", 100), Partial { first: 0, last: 99 });
        assert_eq!(
            evaluate("bytes=50-1000", 100),
            Partial {
                first: 50,
                last: 99
            }
        );
        assert_eq!(evaluate("Bytes = 1-1", 100), Partial { first: 1, last: 1 });
    }

    #[test]
    fn unsatisfiable_and_ignored_ranges() {
        assert_eq!(evaluate("bytes=100-", 100), Unsatisfiable);
        assert_eq!(evaluate("bytes=-0", 100), Unsatisfiable);
        assert_eq!(evaluate("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(
            evaluate("bytes=99999999999999999999999-", 100),
            Unsatisfiable
        );
        assert_eq!(evaluate("bytes=0-1,5-6", 100), Full);
        assert_eq!(evaluate("bytes=5-1", 100), Full);
        assert_eq!(evaluate("items=0-1", 100), Full);
        assert_eq!(evaluate("bytes=a-b", 100), Full);
        assert_eq!(evaluate("bytes", 100), Full);
    }
}

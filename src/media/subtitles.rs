//! Sidecar subtitles: SubRip (`.srt`) read into cues and written as WebVTT,
//! the one text format HLS and DASH players all take.
//!
//! SRT has no specification, only habits, so the reader accepts what real
//! files do: a UTF-8 byte-order mark, CRLF or CR line ends, cue numbers or
//! none, a missing blank line before the next cue, hours past 99, a period
//! instead of the comma, fewer than three millisecond digits, position
//! coordinates after the timing, overlapping cues (WebVTT allows them).
//! Text keeps `<b>`, `<i>`, `<u>` (WebVTT has them); `<font …>` and ASS
//! overrides such as `{\an8}` are dropped; `&`, `<` and `>` that are not
//! tags are escaped, and `-->` in text (which would end a WebVTT cue's text)
//! is broken up. Text after a stray blank line inside a cue stays with that
//! cue; files not in UTF-8 are read as Windows-1252. What is not subtitles —
//! a first cue without its timing line, an impossible time, an end before
//! its start, control characters, no cue at all — is an error naming the
//! line, and the caller leaves the file out.
//!
//! Pure functions over bytes, linear in the input.

use std::fmt;

/// One cue: from `start_ms` to `end_ms`, its text lines joined by `\n`
/// (already WebVTT cue text: escaped, known tags only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cue {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

/// Why a subtitle file was refused: the 1-based line and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubtitleError {
    pub line: usize,
    pub reason: &'static str,
}

impl fmt::Display for SubtitleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Longest time a cue may name: 10 000 hours, far past any film, and far
/// from overflowing.
const MAX_MS: u64 = 10_000 * 3_600_000;

/// The cues of an SRT file, in file order.
pub fn parse_srt(input: &[u8]) -> Result<Vec<Cue>, SubtitleError> {
    let text = decode(input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input));
    let lines: Vec<&str> = split_lines(&text);
    let binary = |index: usize| SubtitleError {
        line: index + 1,
        reason: "control characters: this is not a text file",
    };
    let mut cues: Vec<Cue> = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        if line.trim().is_empty() {
            index += 1;
            continue;
        }
        if has_controls(line) {
            return Err(binary(index));
        }
        // An optional cue number, then the timing line.
        let numbered = is_counter(line) && lines.get(index + 1).is_some_and(|l| l.contains("-->"));
        let timing_index = if numbered { index + 1 } else { index };
        let (start_ms, end_ms) = match parse_timing(lines[timing_index]) {
            Ok(times) => times,
            Err(reason) => match cues.last_mut() {
                // Text after a blank line inside a cue (a common slip):
                // it belongs to the cue before. A line with an arrow is a
                // broken timing line, though, not text.
                Some(last) if !line.contains("-->") => {
                    push_line(&mut last.text, line);
                    index += 1;
                    continue;
                }
                _ => {
                    return Err(SubtitleError {
                        line: timing_index + 1,
                        reason,
                    });
                }
            },
        };
        index = timing_index + 1;
        // Text until a blank line, or until the next cue's timing line (with
        // its number) when the blank line is missing.
        let mut text = String::new();
        while index < lines.len() && !lines[index].trim().is_empty() {
            let line = lines[index];
            if is_timing(line)
                || is_counter(line) && lines.get(index + 1).is_some_and(|l| is_timing(l))
            {
                break;
            }
            if has_controls(line) {
                return Err(binary(index));
            }
            push_line(&mut text, line);
            index += 1;
        }
        cues.push(Cue {
            start_ms,
            end_ms,
            text,
        });
    }
    if cues.is_empty() {
        return Err(SubtitleError {
            line: lines.len().max(1),
            reason: "no cue in the file",
        });
    }
    Ok(cues)
}

/// A WebVTT file of `cues`.
pub fn write_webvtt(cues: &[Cue], out: &mut String) {
    out.push_str("WEBVTT\n");
    for cue in cues {
        out.push('\n');
        push_timestamp(out, cue.start_ms);
        out.push_str(" --> ");
        push_timestamp(out, cue.end_ms);
        out.push('\n');
        if !cue.text.is_empty() {
            out.push_str(&cue.text);
            out.push('\n');
        }
    }
}

/// An SRT file converted to WebVTT.
pub fn srt_to_webvtt(input: &[u8]) -> Result<String, SubtitleError> {
    let cues = parse_srt(input)?;
    let mut out = String::with_capacity(input.len() + input.len() / 8 + 16);
    write_webvtt(&cues, &mut out);
    Ok(out)
}

/// A sidecar WebVTT file as served: UTF-8 without its byte-order mark,
/// starting with the `WEBVTT` signature; anything else is refused with the
/// line at fault.
pub fn check_webvtt(input: &[u8]) -> Result<String, SubtitleError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = std::str::from_utf8(input).map_err(|e| SubtitleError {
        line: 1 + input[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        reason: "not UTF-8, which WebVTT must be",
    })?;
    let first = text.lines().next().unwrap_or("");
    let signed = first
        .strip_prefix("WEBVTT")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
    if !signed {
        return Err(SubtitleError {
            line: 1,
            reason: "a WebVTT file starts with WEBVTT",
        });
    }
    if let Some(at) = text.find(|c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(SubtitleError {
            line: 1 + text[..at].matches('\n').count(),
            reason: "control characters: this is not a text file",
        });
    }
    Ok(text.to_string())
}

/// `vtt` with HLS's `X-TIMESTAMP-MAP` header (cue time 0 is media time 0,
/// where the packaged segments' decode times start), unless it has one.
pub fn with_timestamp_map(vtt: &str) -> String {
    let (first, rest) = vtt.split_once('\n').unwrap_or((vtt, ""));
    if rest
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .any(|l| l.starts_with("X-TIMESTAMP-MAP"))
    {
        return vtt.to_string();
    }
    format!(
        "{}\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n{rest}",
        first.trim_end_matches('\r')
    )
}

/// `HH:MM:SS.mmm`, hours with at least two digits (WebVTT takes more).
pub fn push_timestamp(out: &mut String, ms: u64) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    );
}

/// UTF-8, or else Windows-1252, which older SRT files are written in.
fn decode(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return text.into();
    }
    // 0x80..=0x9F differ from Latin-1; the five unassigned ones stay as they are.
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect::<String>()
        .into()
}

/// NUL and the other C0 controls but tab: binary data, not text.
fn has_controls(line: &str) -> bool {
    line.bytes().any(|b| b < 0x20 && b != b'\t')
}

/// Lines split at LF, CRLF or a lone CR.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    lines
}

fn is_counter(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && line.len() <= 12 && line.bytes().all(|b| b.is_ascii_digit())
}

fn is_timing(line: &str) -> bool {
    parse_timing(line).is_ok()
}

/// `start --> end [coordinates]`, in milliseconds.
fn parse_timing(line: &str) -> Result<(u64, u64), &'static str> {
    let Some((start, rest)) = line.split_once("-->") else {
        return Err("a cue must start with a timing line (start --> end)");
    };
    // Coordinates such as `X1:100 X2:600 Y1:20 Y2:50` may follow the end.
    let end = rest.split_whitespace().next().unwrap_or("");
    let start = parse_time(start.trim()).ok_or("the cue's start is not a time (HH:MM:SS,mmm)")?;
    let end = parse_time(end).ok_or("the cue's end is not a time (HH:MM:SS,mmm)")?;
    if end < start {
        return Err("the cue ends before it starts");
    }
    Ok((start, end))
}

/// `H+:MM:SS,mmm` (or `.mmm`, or one to three millisecond digits), also
/// `MM:SS,mmm`, in milliseconds.
fn parse_time(text: &str) -> Option<u64> {
    let (clock, fraction) = match text.find([',', '.']) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, ""),
    };
    let fields: Vec<&str> = clock.split(':').collect();
    let (hours, minutes, seconds) = match fields.as_slice() {
        [h, m, s] => (number(h, 6)?, number(m, 2)?, number(s, 2)?),
        [m, s] => (0, number(m, 2)?, number(s, 2)?),
        _ => return None,
    };
    if minutes > 59 || seconds > 59 {
        return None;
    }
    let millis = match fraction.len() {
        0 => 0,
        1..=3 => number(fraction, 3)? * [100, 10, 1][fraction.len() - 1],
        _ => return None,
    };
    let total = ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis;
    (total <= MAX_MS).then_some(total)
}

/// A run of 1 to `most` ASCII digits.
fn number(text: &str, most: usize) -> Option<u64> {
    if text.is_empty() || text.len() > most || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Adds a line of SRT text to a cue's text, unless nothing is left of it
/// (a line of dropped tags): an empty line would end the WebVTT cue.
fn push_line(text: &mut String, line: &str) {
    let line = cue_text(line);
    if line.is_empty() {
        return;
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&line);
}

/// One line of SRT text as WebVTT cue text.
fn cue_text(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => match rest.find('>').map(|end| &rest[..=end]) {
                Some(tag) if is_kept_tag(tag) => {
                    out.push_str(&tag.to_ascii_lowercase());
                    rest = &rest[tag.len()..];
                }
                Some(tag) if is_dropped_tag(tag) => rest = &rest[tag.len()..],
                _ => {
                    out.push_str("&lt;");
                    rest = &rest[1..];
                }
            },
            // ASS/SSA overrides some SRT writers leave in: `{\an8}`, `{\i1}`.
            '{' if rest.starts_with("{\\") && rest.contains('}') => {
                let end = rest.find('}').unwrap_or(0);
                rest = &rest[end + 1..];
            }
            '>' => {
                out.push_str("&gt;");
                rest = &rest[1..];
            }
            '&' => {
                out.push_str("&amp;");
                rest = &rest[1..];
            }
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    // `>` is escaped, so no `-->` survives; trailing blanks go.
    out.truncate(out.trim_end().len());
    out
}

/// `<b>`, `<i>`, `<u>` and their ends, any case: WebVTT has them too.
fn is_kept_tag(tag: &str) -> bool {
    matches!(
        tag.to_ascii_lowercase().as_str(),
        "<b>" | "</b>" | "<i>" | "<u>" | "</i>" | "</u>"
    )
}

/// `<font …>`, `</font>` and other SRT-only markup WebVTT does not know.
fn is_dropped_tag(tag: &str) -> bool {
    let lower = tag.to_ascii_lowercase();
    lower.starts_with("<font") || lower == "</font>" || lower == "<br>" || lower == "<br/>"
}

#[cfg(test)]
#[path = "subtitles_tests.rs"]
mod tests;

//! Lua 5.1's patterns (`string.find`, `match`, `gmatch`, `gsub`), matched
//! under a step budget.
//!
//! Lua's own matcher (`lstrlib.c`) backtracks inside C, where no instruction
//! hook runs: `string.rep('a?', 30000) .. string.rep('a', 30000)` against
//! 30 000 `a`s never ends, and its unbounded recursion can overflow the C
//! stack. This is the same algorithm step for step — the same items, classes,
//! captures, anchors, frontier and balance, the same errors raised at the same
//! moment — with two bounds added:
//!
//! - every step (an item tried, a character scanned, a byte compared) is taken
//!   from a [`Budget`], the route function's instructions, so a pathological
//!   pattern ends with an error within the call's limit;
//! - nesting (captures and quantified items, each a recursion) stops at
//!   [`MAX_DEPTH`], as Lua 5.2 and later do, so the stack stays small.
//!
//! A pattern ends at its first NUL byte, as in Lua 5.1 (use `%z` for a zero).

use std::time::Instant;

/// Most captures in one pattern (Lua's LUA_MAXCAPTURES).
pub const MAX_CAPTURES: usize = 32;
/// Deepest nesting of captures and quantified items (Lua 5.2's MAXCCALLS).
pub const MAX_DEPTH: usize = 200;
/// Steps between two looks at the clock.
const STEPS_PER_CLOCK_CHECK: u64 = 1 << 16;

/// Why a match could not be decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// The pattern is malformed; the text is Lua's own message.
    Malformed(&'static str),
    /// The budget's steps ran out.
    OutOfSteps,
    /// The budget's deadline passed.
    OutOfTime,
    /// Nesting went past [`MAX_DEPTH`].
    TooDeep,
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatternError::Malformed(message) => f.write_str(message),
            PatternError::OutOfSteps => f.write_str(
                "pattern too complex: matching it used up the call's instruction budget",
            ),
            PatternError::OutOfTime => {
                f.write_str("pattern too complex: matching it used up the call's time")
            }
            PatternError::TooDeep => write!(
                f,
                "pattern too complex: more than {MAX_DEPTH} nested captures and repetitions"
            ),
        }
    }
}

type Result<T> = std::result::Result<T, PatternError>;

/// How much matching may still do: steps, and optionally a deadline.
#[derive(Debug, Clone)]
pub struct Budget {
    pub steps: u64,
    pub deadline: Option<Instant>,
    until_clock_check: u64,
}

impl Budget {
    pub fn new(steps: u64, deadline: Option<Instant>) -> Budget {
        Budget {
            steps,
            deadline,
            until_clock_check: STEPS_PER_CLOCK_CHECK,
        }
    }

    fn charge(&mut self, steps: u64) -> Result<()> {
        if steps > self.steps {
            self.steps = 0;
            return Err(PatternError::OutOfSteps);
        }
        self.steps -= steps;
        if steps >= self.until_clock_check {
            self.until_clock_check = STEPS_PER_CLOCK_CHECK;
            if self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
            {
                return Err(PatternError::OutOfTime);
            }
        } else {
            self.until_clock_check -= steps;
        }
        Ok(())
    }
}

/// One capture of a successful match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// `(…)`: the subject's bytes `start..end`.
    Text { start: usize, end: usize },
    /// `()`: the position, counted from 1 as Lua does.
    Position(usize),
    /// A capture opened and never closed: Lua raises "unfinished capture"
    /// when such a capture is handed out, not when the match succeeds.
    Unfinished,
}

/// Capture lengths that mark an unfinished and a position capture.
const UNFINISHED: isize = -1;
const POSITION: isize = -2;

#[derive(Clone, Copy, Default)]
struct Slot {
    init: usize,
    len: isize,
}

/// A successful match: where it ends and what it captured.
pub struct Found {
    pub start: usize,
    pub end: usize,
    level: usize,
    slots: [Slot; MAX_CAPTURES],
}

impl Found {
    /// How many captures the pattern made (0 when it has none).
    pub fn level(&self) -> usize {
        self.level
    }

    /// Capture `index` (from 0).
    pub fn capture(&self, index: usize) -> Capture {
        let slot = self.slots[index.min(MAX_CAPTURES - 1)];
        match slot.len {
            UNFINISHED => Capture::Unfinished,
            POSITION => Capture::Position(slot.init + 1),
            len => Capture::Text {
                start: slot.init,
                end: slot.init + len as usize,
            },
        }
    }
}

/// Finds the first match of `pattern` in `subject` starting at byte `init`
/// or later (`anchored`: at `init` only), as Lua's find/match/gsub loops do.
/// The caller strips a leading `^` and says `anchored`.
pub fn search(
    subject: &[u8],
    pattern: &[u8],
    init: usize,
    anchored: bool,
    budget: &mut Budget,
) -> Result<Option<Found>> {
    let pattern = match pattern.iter().position(|&b| b == 0) {
        Some(nul) => &pattern[..nul],
        None => pattern,
    };
    let mut matcher = Matcher {
        src: subject,
        pat: pattern,
        level: 0,
        slots: [Slot::default(); MAX_CAPTURES],
        depth: 0,
        budget,
    };
    let mut start = init.min(subject.len());
    loop {
        matcher.level = 0;
        if let Some(end) = matcher.attempt(start, 0)? {
            return Ok(Some(Found {
                start,
                end,
                level: matcher.level,
                slots: matcher.slots,
            }));
        }
        if anchored || start >= subject.len() {
            return Ok(None);
        }
        start += 1;
    }
}

/// Whether `pattern` has none of the characters that make it a pattern
/// (then `string.find` searches for it as plain text). Like Lua 5.1, only
/// what comes before a NUL counts.
pub fn is_plain(pattern: &[u8]) -> bool {
    pattern
        .iter()
        .take_while(|&&b| b != 0)
        .all(|b| !b"^$*+?.([%-".contains(b))
}

/// Where `needle` first occurs in `haystack` at `init` or later.
pub fn find_plain(haystack: &[u8], needle: &[u8], init: usize) -> Option<usize> {
    let init = init.min(haystack.len());
    if needle.is_empty() {
        return Some(init);
    }
    haystack[init..]
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| at + init)
}

struct Matcher<'a, 'b> {
    src: &'a [u8],
    pat: &'a [u8],
    level: usize,
    slots: [Slot; MAX_CAPTURES],
    depth: usize,
    budget: &'b mut Budget,
}

impl Matcher<'_, '_> {
    /// The pattern's byte at `p`, with the C string's terminating NUL past its end.
    fn pc(&self, p: usize) -> u8 {
        self.pat.get(p).copied().unwrap_or(0)
    }

    /// The subject's byte at `s`, likewise (Lua strings end with a NUL).
    fn sc(&self, s: usize) -> u8 {
        self.src.get(s).copied().unwrap_or(0)
    }

    /// Matches the pattern from `p` against the subject from `s`; the end
    /// of the match, or None.
    fn attempt(&mut self, s: usize, p: usize) -> Result<Option<usize>> {
        if self.depth >= MAX_DEPTH {
            return Err(PatternError::TooDeep);
        }
        self.depth += 1;
        let result = self.match_here(s, p);
        self.depth -= 1;
        result
    }

    fn match_here(&mut self, mut s: usize, mut p: usize) -> Result<Option<usize>> {
        loop {
            self.budget.charge(1)?;
            match self.pc(p) {
                b'(' => {
                    return if self.pc(p + 1) == b')' {
                        self.start_capture(s, p + 2, POSITION)
                    } else {
                        self.start_capture(s, p + 1, UNFINISHED)
                    };
                }
                b')' => return self.end_capture(s, p + 1),
                b'%' if self.pc(p + 1) == b'b' => match self.match_balance(s, p + 2)? {
                    Some(end) => {
                        s = end;
                        p += 4;
                    }
                    None => return Ok(None),
                },
                b'%' if self.pc(p + 1) == b'f' => {
                    p += 2;
                    if self.pc(p) != b'[' {
                        return Err(PatternError::Malformed("missing '[' after '%f' in pattern"));
                    }
                    let ep = self.class_end(p)?;
                    let previous = if s == 0 { 0 } else { self.src[s - 1] };
                    if self.match_bracket_class(previous, p, ep - 1)?
                        || !self.match_bracket_class(self.sc(s), p, ep - 1)?
                    {
                        return Ok(None);
                    }
                    p = ep;
                }
                b'%' if self.pc(p + 1).is_ascii_digit() => {
                    match self.match_back_reference(s, self.pc(p + 1))? {
                        Some(end) => {
                            s = end;
                            p += 2;
                        }
                        None => return Ok(None),
                    }
                }
                0 => return Ok(Some(s)),
                b'$' if p + 1 == self.pat.len() => {
                    return Ok((s == self.src.len()).then_some(s));
                }
                _ => {
                    let ep = self.class_end(p)?;
                    let matched = s < self.src.len() && self.single_match(self.src[s], p, ep)?;
                    match self.pc(ep) {
                        b'?' => {
                            if matched && let Some(end) = self.attempt(s + 1, ep + 1)? {
                                return Ok(Some(end));
                            }
                            p = ep + 1;
                        }
                        b'*' => return self.max_expand(s, p, ep),
                        b'+' => {
                            return if matched {
                                self.max_expand(s + 1, p, ep)
                            } else {
                                Ok(None)
                            };
                        }
                        b'-' => return self.min_expand(s, p, ep),
                        _ => {
                            if !matched {
                                return Ok(None);
                            }
                            s += 1;
                            p = ep;
                        }
                    }
                }
            }
        }
    }

    /// Where the single-character class at `p` ends.
    fn class_end(&mut self, p: usize) -> Result<usize> {
        let first = self.pc(p);
        let mut p = p + 1;
        match first {
            b'%' => {
                if self.pc(p) == 0 {
                    return Err(PatternError::Malformed("malformed pattern (ends with '%')"));
                }
                Ok(p + 1)
            }
            b'[' => {
                let open = p;
                if self.pc(p) == b'^' {
                    p += 1;
                }
                loop {
                    if self.pc(p) == 0 {
                        return Err(PatternError::Malformed("malformed pattern (missing ']')"));
                    }
                    let c = self.pc(p);
                    p += 1;
                    if c == b'%' && self.pc(p) != 0 {
                        p += 1;
                    }
                    if self.pc(p) == b']' {
                        break;
                    }
                }
                self.budget.charge((p - open) as u64)?;
                Ok(p + 1)
            }
            _ => Ok(p),
        }
    }

    fn single_match(&mut self, c: u8, p: usize, ep: usize) -> Result<bool> {
        Ok(match self.pc(p) {
            b'.' => true,
            b'%' => match_class(c, self.pc(p + 1)),
            b'[' => self.match_bracket_class(c, p, ep - 1)?,
            literal => literal == c,
        })
    }

    /// Whether `c` is in the set `[…]` from `p` to its `]` at `ec`.
    fn match_bracket_class(&mut self, c: u8, p: usize, ec: usize) -> Result<bool> {
        self.budget.charge(ec.saturating_sub(p) as u64)?;
        let mut p = p;
        let mut inside = true;
        if self.pc(p + 1) == b'^' {
            inside = false;
            p += 1;
        }
        loop {
            p += 1;
            if p >= ec {
                return Ok(!inside);
            }
            let item = self.pc(p);
            if item == b'%' {
                p += 1;
                if match_class(c, self.pc(p)) {
                    return Ok(inside);
                }
            } else if self.pc(p + 1) == b'-' && p + 2 < ec {
                p += 2;
                if self.pc(p - 2) <= c && c <= self.pc(p) {
                    return Ok(inside);
                }
            } else if item == c {
                return Ok(inside);
            }
        }
    }

    /// `%bxy`: from an `x` to its balancing `y`.
    fn match_balance(&mut self, s: usize, p: usize) -> Result<Option<usize>> {
        if self.pc(p) == 0 || self.pc(p + 1) == 0 {
            return Err(PatternError::Malformed("unbalanced pattern"));
        }
        if self.sc(s) != self.pc(p) {
            return Ok(None);
        }
        let (open, close) = (self.pc(p), self.pc(p + 1));
        let mut depth = 1;
        let mut s = s;
        loop {
            s += 1;
            if s >= self.src.len() {
                return Ok(None);
            }
            self.budget.charge(1)?;
            let c = self.src[s];
            if c == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(Some(s + 1));
                }
            } else if c == open {
                depth += 1;
            }
        }
    }

    /// `x*` and `x+`: as many as possible, then fewer until the rest matches.
    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Result<Option<usize>> {
        let mut count = 0;
        while s + count < self.src.len() && self.single_match(self.src[s + count], p, ep)? {
            self.budget.charge(1)?;
            count += 1;
        }
        loop {
            if let Some(end) = self.attempt(s + count, ep + 1)? {
                return Ok(Some(end));
            }
            if count == 0 {
                return Ok(None);
            }
            count -= 1;
        }
    }

    /// `x-`: as few as possible, then more until the rest matches.
    fn min_expand(&mut self, mut s: usize, p: usize, ep: usize) -> Result<Option<usize>> {
        loop {
            if let Some(end) = self.attempt(s, ep + 1)? {
                return Ok(Some(end));
            }
            if s < self.src.len() && self.single_match(self.src[s], p, ep)? {
                s += 1;
            } else {
                return Ok(None);
            }
        }
    }

    fn start_capture(&mut self, s: usize, p: usize, what: isize) -> Result<Option<usize>> {
        let level = self.level;
        if level >= MAX_CAPTURES {
            return Err(PatternError::Malformed("too many captures"));
        }
        self.slots[level] = Slot { init: s, len: what };
        self.level = level + 1;
        let result = self.attempt(s, p)?;
        if result.is_none() {
            self.level -= 1;
        }
        Ok(result)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Result<Option<usize>> {
        let open = (0..self.level)
            .rev()
            .find(|&l| self.slots[l].len == UNFINISHED)
            .ok_or(PatternError::Malformed("invalid pattern capture"))?;
        self.slots[open].len = (s - self.slots[open].init) as isize;
        let result = self.attempt(s, p)?;
        if result.is_none() {
            self.slots[open].len = UNFINISHED;
        }
        Ok(result)
    }

    /// `%1`…`%9`: the same bytes as an earlier, closed capture.
    fn match_back_reference(&mut self, s: usize, digit: u8) -> Result<Option<usize>> {
        let index = digit as isize - b'1' as isize;
        if index < 0 || index as usize >= self.level || self.slots[index as usize].len == UNFINISHED
        {
            return Err(PatternError::Malformed("invalid capture index"));
        }
        let slot = self.slots[index as usize];
        // A position capture has no text: Lua compares a huge length and fails.
        if slot.len < 0 {
            return Ok(None);
        }
        let len = slot.len as usize;
        self.budget.charge(len as u64)?;
        if self.src.len() - s >= len && self.src[slot.init..slot.init + len] == self.src[s..s + len]
        {
            Ok(Some(s + len))
        } else {
            Ok(None)
        }
    }
}

/// `%a`, `%d`, … in the C locale; an upper-case letter is the complement;
/// any other character stands for itself.
fn match_class(c: u8, class: u8) -> bool {
    let is = match class.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        // C's isspace includes the vertical tab, Rust's is_ascii_whitespace does not.
        b's' => matches!(c, b' ' | b'\t'..=b'\r'),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        b'z' => c == 0,
        _ => return class == c,
    };
    if class.is_ascii_uppercase() { !is } else { is }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Budget {
        Budget::new(10_000_000, None)
    }

    /// (start, end, captures as text or positions) of the first match.
    fn first(subject: &str, pattern: &str) -> Option<(usize, usize, Vec<String>)> {
        let (pattern, anchored) = match pattern.strip_prefix('^') {
            Some(rest) => (rest, true),
            None => (pattern, false),
        };
        let found = search(
            subject.as_bytes(),
            pattern.as_bytes(),
            0,
            anchored,
            &mut budget(),
        )
        .expect("well-formed")?;
        let captures = (0..found.level())
            .map(|i| match found.capture(i) {
                Capture::Text { start, end } => subject[start..end].to_string(),
                Capture::Position(at) => format!("@{at}"),
                Capture::Unfinished => "unfinished".into(),
            })
            .collect();
        Some((found.start, found.end, captures))
    }

    #[test]
    fn items_classes_and_quantifiers_match_as_in_lua() {
        assert_eq!(first("hello world", "o w"), Some((4, 7, vec![])));
        assert_eq!(
            first("/films/a.mp4", "^/films/(.-)%.mp4$").map(|m| m.2),
            Some(vec!["a".into()])
        );
        assert_eq!(
            first("key = value", "(%w+)%s*=%s*(%w+)").map(|m| m.2),
            Some(vec!["key".into(), "value".into()])
        );
        assert_eq!(first("aaab", "a-b"), Some((0, 4, vec![])));
        assert_eq!(first("aaa", "^a?a?a?a$"), Some((0, 3, vec![])));
        assert_eq!(
            first("x = [[a]]", "%[(%b[])%]").map(|m| m.2),
            Some(vec!["[a]".into()])
        );
        assert_eq!(
            first("THE (quick) fox", "%f[%a]%a+%f[%A]"),
            Some((0, 3, vec![]))
        );
        assert_eq!(
            first("abcabc", "()(abc)%2()").map(|m| m.2),
            Some(vec!["@1".into(), "abc".into(), "@7".into()])
        );
        assert_eq!(first("a]b", "[]]"), Some((1, 2, vec![])));
        assert_eq!(first("a-b", "[a%-]+"), Some((0, 2, vec![])));
        assert_eq!(
            first("\u{b}", "%s"),
            Some((0, 1, vec![])),
            "C's isspace has the vertical tab"
        );
        assert_eq!(
            first("abc", "b$c"),
            None,
            "a $ inside the pattern is a literal"
        );
        assert_eq!(
            first("a", "a\0b"),
            Some((0, 1, vec![])),
            "a NUL ends the pattern"
        );
    }

    #[test]
    fn malformed_patterns_fail_only_when_the_matcher_reaches_the_fault() {
        let error = |subject: &str, pattern: &str| {
            search(
                subject.as_bytes(),
                pattern.as_bytes(),
                0,
                false,
                &mut budget(),
            )
            .err()
        };
        assert_eq!(
            error("a", "a["),
            Some(PatternError::Malformed("malformed pattern (missing ']')"))
        );
        assert_eq!(error("b", "a["), None, "never reached, as in Lua");
        assert_eq!(
            error("a", "%"),
            Some(PatternError::Malformed("malformed pattern (ends with '%')"))
        );
        assert_eq!(
            error("a", "%b"),
            Some(PatternError::Malformed("unbalanced pattern"))
        );
        assert_eq!(
            error("a", "%fx"),
            Some(PatternError::Malformed("missing '[' after '%f' in pattern"))
        );
        assert_eq!(
            error("a", "a)"),
            Some(PatternError::Malformed("invalid pattern capture"))
        );
        assert_eq!(
            error("a", "%1"),
            Some(PatternError::Malformed("invalid capture index"))
        );
        let many = "()".repeat(MAX_CAPTURES + 1);
        assert_eq!(
            error("a", &many),
            Some(PatternError::Malformed("too many captures"))
        );
    }

    #[test]
    fn a_backtracking_bomb_runs_out_of_steps_instead_of_hanging() {
        let subject = "a".repeat(30_000);
        let pattern = "a?".repeat(30_000) + &"a".repeat(30_000);
        let mut budget = Budget::new(1_000_000, None);
        let started = Instant::now();
        let result = search(
            subject.as_bytes(),
            pattern.as_bytes(),
            0,
            false,
            &mut budget,
        );
        assert!(
            matches!(
                result,
                Err(PatternError::TooDeep | PatternError::OutOfSteps)
            ),
            "{:?}",
            result.err()
        );
        // Nested minimal repetitions: polynomial of high degree, not deep.
        let pattern = ".-".repeat(12) + "x";
        let mut budget = Budget::new(1_000_000, None);
        let result = search(
            subject.as_bytes(),
            pattern.as_bytes(),
            0,
            false,
            &mut budget,
        );
        assert_eq!(result.err(), Some(PatternError::OutOfSteps));
        assert_eq!(budget.steps, 0);
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    }

    #[test]
    fn a_deadline_stops_a_match_whatever_steps_are_left() {
        let subject = "a".repeat(10_000);
        let pattern = ".-".repeat(12) + "x";
        let mut budget = Budget::new(u64::MAX, Some(Instant::now()));
        let result = search(
            subject.as_bytes(),
            pattern.as_bytes(),
            0,
            false,
            &mut budget,
        );
        assert_eq!(result.err(), Some(PatternError::OutOfTime));
    }

    #[test]
    fn plain_search_and_its_detection() {
        assert!(is_plain(b"abc/def"));
        assert!(!is_plain(b"a.c"));
        assert!(is_plain(b"ab\0.c"), "only what precedes a NUL counts");
        assert_eq!(find_plain(b"abcabc", b"ca", 0), Some(2));
        assert_eq!(find_plain(b"abc", b"", 9), Some(3));
        assert_eq!(find_plain(b"abc", b"abcd", 0), None);
    }
}

//! The sandbox's limits, and its string functions against Lua 5.1's own.

use std::time::{Duration, Instant};

use mlua::{Function, Lua};

use super::Sandbox;
use super::limits::LimitNames;

const NAMES: LimitNames = LimitNames {
    instructions: "options.lua_instructions",
    time: "half of options.stall_timeout",
};

/// Runs `kind` ("find", "match", "gmatch", "gsub", "rep") with the given
/// arguments and prints what it returned or the error it raised.
const PROBE: &str = r#"
local kind, s, p, x, y = ...
local function show(...)
  local parts = {}
  for i = 1, select('#', ...) do
    local v = select(i, ...)
    parts[#parts + 1] = type(v) .. ':' .. tostring(v)
  end
  return table.concat(parts, ',')
end
local function run()
  if kind == 'find' then return show(string.find(s, p, x, y)) end
  if kind == 'match' then return show(string.match(s, p, x)) end
  if kind == 'rep' then return show(string.rep(s, p)) end
  if kind == 'gsub' then
    if x == 'function' then
      x = function(...)
        local first = ...
        if first == 'a' then return nil end
        if first == 'b' then return false end
        return '<' .. table.concat({ ... }, '|') .. '>'
      end
    elseif x == 'table' then
      x = { a = 'A', b = 2, ['('] = true }
    end
    return show(string.gsub(s, p, x, y))
  end
  local out = {}
  local it = string.gmatch(s, p)
  local function step(...)
    if select('#', ...) == 0 or (...) == nil then return false end
    out[#out + 1] = show(...)
    return true
  end
  while #out < 50 and step(it()) do end
  return table.concat(out, ';')
end
local ok, result = pcall(run)
if ok then return result end
return 'error:' .. tostring(result)
"#;

/// Lua's error text without the "chunk:line: " it starts with.
fn without_position(text: String) -> String {
    let Some(rest) = text.strip_prefix("error:") else {
        return text;
    };
    let stripped = match rest.find(": ") {
        Some(at)
            if rest[..at]
                .rsplit(':')
                .next()
                .is_some_and(|line| line.parse::<u32>().is_ok()) =>
        {
            &rest[at + 2..]
        }
        _ => rest,
    };
    format!("error:{stripped}")
}

struct Pair {
    reference_lua: Lua,
    reference: Function,
    sandbox: Sandbox,
    bounded: Function,
}

impl Pair {
    fn new() -> Pair {
        let lua = Lua::new();
        let reference = lua.load(PROBE).into_function().expect("probe");
        let sandbox = Sandbox::new().expect("sandbox");
        let bounded = sandbox.lua.load(PROBE).into_function().expect("probe");
        Pair {
            reference_lua: lua,
            reference,
            sandbox,
            bounded,
        }
    }

    /// Both answers, or None when the bounded one gave up (a budget or depth
    /// error, where Lua 5.1 would go on).
    fn compare(&self, kind: &str, s: &[u8], p: &[u8], x: Option<&str>, y: Option<f64>) -> Outcome {
        self.sandbox
            .limits
            .start(1_000_000, Duration::from_secs(60), NAMES);
        let args = |lua: &Lua| {
            (
                kind.to_string(),
                lua.create_string(s).expect("s"),
                lua.create_string(p).expect("p"),
                x.map(str::to_string),
                y,
            )
        };
        // A reached limit passes through the probe's pcall, by design.
        let bounded: String = match self.bounded.call(args(&self.sandbox.lua)) {
            Ok(text) => text,
            Err(e) if e.to_string().contains("instruction limit") => return Outcome::GaveUp,
            Err(e) => panic!("bounded probe: {e}"),
        };
        if bounded.contains("pattern too complex") {
            return Outcome::GaveUp;
        }
        let reference: String = self
            .reference
            .call(args(&self.reference_lua))
            .expect("reference probe");
        let (bounded, reference) = (without_position(bounded), without_position(reference));
        assert_eq!(
            bounded,
            reference,
            "{kind}({:?}, {:?}, {x:?}, {y:?})",
            String::from_utf8_lossy(s),
            String::from_utf8_lossy(p)
        );
        if reference.starts_with("error:") {
            Outcome::SameError
        } else {
            Outcome::SameResult
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Outcome {
    SameResult,
    SameError,
    /// The bounded matcher stopped at its budget or depth.
    GaveUp,
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

const SUBJECT_BYTES: &[u8] = b"aab(b)[]%-.^$ 1x\0Z";
const PATTERN_TOKENS: &[&str] = &[
    "a", "b", "x", ".", "%a", "%d", "%s", "%w", "%p", "%u", "%z", "%%", "%(", "[ab]", "[^a]",
    "[a-c]", "[%a%d]", "[]]", "[^]]", "(", ")", "()", "%1", "%2", "*", "+", "-", "?", "^", "$",
    "%b()", "%b", "%f[%w]", "%f[%W]", "%fa", "[", "]", "%", "\0", " ", "-", "[%", "[a-]",
];

#[test]
fn the_bounded_string_functions_answer_exactly_as_lua_5_1() {
    let pair = Pair::new();
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut outcomes = std::collections::HashMap::new();
    for _ in 0..6000 {
        let subject: Vec<u8> = (0..random.below(12))
            .map(|_| SUBJECT_BYTES[random.below(SUBJECT_BYTES.len())])
            .collect();
        let pattern: Vec<u8> = (0..random.below(7))
            .flat_map(|_| PATTERN_TOKENS[random.below(PATTERN_TOKENS.len())].bytes())
            .collect();
        let init = [
            None,
            Some(1.0),
            Some(3.0),
            Some(-2.0),
            Some(40.0),
            Some(0.0),
        ][random.below(6)];
        for outcome in [
            pair.compare("find", &subject, &pattern, None, init),
            pair.compare("match", &subject, &pattern, None, init),
            pair.compare("gmatch", &subject, &pattern, None, None),
        ] {
            *outcomes.entry(outcome).or_insert(0) += 1;
        }
        let replacement = [
            "-", "%0", "%1", "<%2>", "%%", "x%", "function", "table", "%q",
        ][random.below(9)];
        let most = [None, Some(1.0), Some(0.0), Some(2.5)][random.below(4)];
        *outcomes
            .entry(pair.compare("gsub", &subject, &pattern, Some(replacement), most))
            .or_insert(0) += 1;
    }
    // The cases must exercise both results and errors, and hardly ever the budget.
    let count = |outcome| outcomes.get(&outcome).copied().unwrap_or(0);
    assert!(count(Outcome::SameResult) > 12_000, "{outcomes:?}");
    assert!(count(Outcome::SameError) > 2_000, "{outcomes:?}");
    assert!(count(Outcome::GaveUp) < 100, "{outcomes:?}");
}

#[test]
fn arguments_are_checked_and_converted_as_lua_5_1_does() {
    let pair = Pair::new();
    for (kind, s, p, x, y) in [
        ("find", "abc", "b", Some("2"), None),
        ("find", "abc", "b", Some("x"), None),
        ("find", "a.c", ".", None, Some(1.0)),
        ("find", "abc", "", Some("10"), None),
        ("find", "12345", "3", Some("-3"), None),
        ("match", "abc", "(b)(c)", Some("2.7"), None),
        ("rep", "ab", "3", None, None),
        ("rep", "ab", "-1", None, None),
        ("rep", "", "1000", None, None),
        ("rep", "ab", "x", None, None),
        ("gsub", "abc", "b", Some("%"), None),
        ("gsub", "hello world", "o", Some("0"), Some(1.0)),
        ("gsub", "abc", "", Some("-"), None),
        ("gsub", "abc", "^", Some("-"), None),
        ("gsub", "abc", "^a", Some("[%0]"), None),
        ("gsub", "abc", "%w", Some("%2"), None),
        ("gsub", "abc", "(%w", Some("-"), None),
        ("gsub", "abc", "(%w", Some("%1"), None),
    ] {
        assert_ne!(
            pair.compare(kind, s.as_bytes(), p.as_bytes(), x, y),
            Outcome::GaveUp
        );
    }
}

fn run(sandbox: &Sandbox, code: &str) -> mlua::Result<String> {
    sandbox.limits.start(200_000, Duration::from_secs(5), NAMES);
    sandbox.lua.load(code).eval::<String>()
}

#[test]
fn coroutines_are_not_in_the_sandbox() {
    let sandbox = Sandbox::new().expect("sandbox");
    assert_eq!(
        run(&sandbox, "return type(coroutine)").expect("runs"),
        "nil"
    );
    let error = run(
        &sandbox,
        "local co = coroutine.create(function() while true do end end); coroutine.resume(co); return 'x'",
    )
    .expect_err("no coroutine library");
    assert!(error.to_string().contains("coroutine"), "{error}");
}

#[test]
fn pathological_patterns_fail_within_the_budget() {
    let sandbox = Sandbox::new().expect("sandbox");
    for code in [
        "return tostring(string.find(string.rep('a', 30000), string.rep('a?', 30000) .. string.rep('a', 30000)))",
        "return tostring(string.match(string.rep('a', 5000), string.rep('.-', 12) .. 'x'))",
        "return tostring(string.gsub(string.rep('a', 5000), string.rep('a*', 15) .. 'b', ''))",
        "for w in string.gmatch(string.rep('a', 5000), string.rep('a-', 12) .. 'b') do end return 'x'",
        // A limit caught by pcall is raised again.
        "while true do pcall(string.find, string.rep('a', 5000), string.rep('.-', 12) .. 'x') end",
        "while true do pcall(function() while true do end end) end",
        "while true do xpcall(function() while true do end end, function() while true do end end) end",
        "string.gsub(string.rep('a', 100), '.', function() while true do end end) return 'x'",
        "table.sort({3, 2, 1}, function(a, b) while true do end end) return 'x'",
        "local s = string.rep('x', 1000) for i = 1, 1e9 do local t = string.rep(s, 1000) end return 'x'",
    ] {
        let started = Instant::now();
        let error = run(&sandbox, code).expect_err(code);
        let text = error.to_string();
        assert!(
            text.contains("pattern too complex") || text.contains("instruction limit"),
            "{code}: {text}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{code}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn the_time_limit_ends_a_run_whatever_its_instructions() {
    let sandbox = Sandbox::new().expect("sandbox");
    sandbox
        .limits
        .start(u64::MAX, Duration::from_millis(200), NAMES);
    let started = Instant::now();
    let error = sandbox
        .lua
        .load("while true do end")
        .exec()
        .expect_err("stopped");
    assert!(error.to_string().contains("time limit"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn string_rep_refuses_a_result_past_the_memory_limit() {
    let sandbox = Sandbox::new().expect("sandbox");
    sandbox.limit_memory(8 << 20).expect("limit");
    let error = run(&sandbox, "return string.rep('abcd', 1e9)").expect_err("too large");
    assert!(error.to_string().contains("not enough memory"), "{error}");
    assert_eq!(
        run(&sandbox, "return string.rep('', 2^31)").expect("empty"),
        ""
    );
    assert_eq!(
        run(&sandbox, "return ('ab'):rep(3)").expect("method"),
        "ababab"
    );
}

#[test]
fn the_library_left_in_still_works() {
    let sandbox = Sandbox::new().expect("sandbox");
    let code = r#"
        local t = { 5, 3, 9, 1 }
        table.sort(t)
        local ok, err = pcall(error, 'plain')
        local xok, handled = xpcall(function() error({ code = 7 }) end, function(e) return e.code end)
        assert(xok == false and handled == 7)
        assert(select(2, xpcall(function() error('x') end, function() error('again') end)) == 'error in error handling')
        local words = {}
        for w in ("one two  three"):gmatch('%a+') do words[#words + 1] = w end
        print('printed', 1, nil)
        return table.concat(t, ',') .. ' ' .. tostring(ok) .. ' ' .. err .. ' ' .. table.concat(words, '+')
            .. ' ' .. ("/films/a.mp4"):gsub('^/films/(.-)%.mp4$', '%1.flv') .. ' ' .. type(io) .. type(string.dump)
    "#;
    assert_eq!(
        run(&sandbox, code).expect("runs"),
        "1,3,5,9 false plain one+two+three a.flv nilnil"
    );
}

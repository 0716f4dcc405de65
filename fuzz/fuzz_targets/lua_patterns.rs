//! The bounded string functions of the Lua sandbox on any subject, pattern
//! and replacement: every call ends within its budget (a result, Lua's own
//! error, or "pattern too complex"), and whenever it ends with a result or
//! a pattern error, Lua 5.1's own string library gives exactly the same.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use loomiere::lua::Sandbox;
use loomiere::lua::limits::LimitNames;
use mlua::{Function, Lua};

const NAMES: LimitNames = LimitNames { instructions: "the fuzz budget", time: "the fuzz time" };
/// Instructions (and pattern steps) one call may take.
const BUDGET: u64 = 200_000;

const PROBE: &str = r#"
local kind, s, p, r, n = ...
local function show(...)
  local parts = {}
  for i = 1, select('#', ...) do
    local v = select(i, ...)
    parts[#parts + 1] = type(v) .. ':' .. tostring(v)
  end
  return table.concat(parts, ',')
end
local function run()
  if kind == 0 then return show(string.find(s, p, n)) end
  if kind == 1 then return show(string.find(s, p, n, true)) end
  if kind == 2 then return show(string.match(s, p, n)) end
  if kind == 3 then return show(string.gsub(s, p, r, n)) end
  if kind == 4 then
    return show(string.gsub(s, p, function(...) return table.concat({ ... }, '|') end, n))
  end
  local out, it = {}, string.gmatch(s, p)
  local function step(...)
    if select('#', ...) == 0 or (...) == nil then return false end
    out[#out + 1] = show(...)
    return true
  end
  while #out < 64 and step(it()) do end
  return table.concat(out, ';')
end
local ok, result = pcall(run)
if ok then return result end
return 'error:' .. tostring(result)
"#;

struct States {
    sandbox: Sandbox,
    bounded: Function,
    reference: Lua,
    reference_probe: Function,
}

thread_local! {
    static STATES: States = {
        let sandbox = Sandbox::new().expect("sandbox");
        let bounded = sandbox.lua.load(PROBE).into_function().expect("probe");
        let reference = Lua::new();
        let reference_probe = reference.load(PROBE).into_function().expect("probe");
        States { sandbox, bounded, reference, reference_probe }
    };
}

/// Lua's error text without the "chunk:line: " it may start with.
fn without_position(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("error:") else { return text };
    match rest.find(": ") {
        Some(at) if rest[..at].rsplit(':').next().is_some_and(|l| l.parse::<u32>().is_ok()) => {
            &rest[at + 2..]
        }
        _ => rest,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let mut parts = rest.splitn(3, |&b| b == 1);
    let (subject, pattern) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let replacement = parts.next().unwrap_or_default();
    let kind = selector % 6;
    let init = [None, Some(1.0), Some(2.0), Some(-3.0), Some(0.0), Some(100.0)]
        [usize::from(selector / 6) % 6];
    STATES.with(|states| {
        states.sandbox.limits.start(BUDGET, Duration::from_secs(5), NAMES);
        let started = Instant::now();
        let args = |lua: &Lua| {
            (
                kind,
                lua.create_string(subject).expect("s"),
                lua.create_string(pattern).expect("p"),
                lua.create_string(replacement).expect("r"),
                init,
            )
        };
        // A reached limit passes through the probe's pcall, by design.
        let bounded: mlua::String = match states.bounded.call(args(&states.sandbox.lua)) {
            Ok(text) => text,
            Err(e) if e.to_string().contains("the fuzz ") => return,
            Err(e) => panic!("probe: {e}"),
        };
        let bounded = String::from_utf8_lossy(&bounded.as_bytes()).into_owned();
        // Within the budget: 200 000 steps take milliseconds.
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        if bounded.contains("pattern too complex") || bounded.contains("the fuzz ") {
            return;
        }
        let reference: mlua::String =
            states.reference_probe.call(args(&states.reference)).expect("probe");
        let reference = String::from_utf8_lossy(&reference.as_bytes()).into_owned();
        assert_eq!(without_position(&bounded), without_position(&reference));
    });
});

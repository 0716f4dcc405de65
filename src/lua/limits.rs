//! The instruction and time budget of one run of Lua code: a route function
//! call, or the evaluation of options.lua.
//!
//! An instruction hook fires every [`HOOK_EVERY`] instructions and takes
//! them from the budget; the bounded string functions take their matching
//! steps and the bytes they build from the same budget. When the budget or
//! the time is used up, the run fails with an error, and from then on every
//! hook raises again and `pcall`/`xpcall` hand the error on instead of
//! catching it, so no Lua code can catch the limit and carry on.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mlua::{HookTriggers, Lua, VmState};

use super::pattern::{Budget, PatternError};

/// The hook runs every this many instructions. Between two runs a Lua
/// instruction copies at most what the memory limit lets a string hold, so
/// this also bounds how late the clock is read.
pub const HOOK_EVERY: u32 = 1000;

/// Which limit ended a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reached {
    Instructions,
    Time,
}

/// How the limits are named in error messages.
#[derive(Clone, Copy)]
pub struct LimitNames {
    /// What sets the instruction limit ("options.lua_instructions").
    pub instructions: &'static str,
    /// What sets the time limit ("half of options.stall_timeout").
    pub time: &'static str,
}

/// The budget of the run in progress. One per Lua state; shared by the
/// hook and the string functions.
pub struct Limits {
    /// Instructions (and pattern steps, and bytes / BYTES_PER_INSTRUCTION) left.
    left: Cell<u64>,
    deadline: Cell<Option<Instant>>,
    time: Cell<Duration>,
    reached: Cell<Option<Reached>>,
    names: Cell<LimitNames>,
    /// The state's memory limit, in bytes.
    memory: Cell<u64>,
}

/// Bytes a string function may build for the price of one instruction.
pub const BYTES_PER_INSTRUCTION: u64 = 64;

impl Limits {
    pub fn new(names: LimitNames) -> Limits {
        Limits {
            left: Cell::new(0),
            deadline: Cell::new(None),
            time: Cell::new(Duration::ZERO),
            reached: Cell::new(None),
            names: Cell::new(names),
            memory: Cell::new(0),
        }
    }

    /// Starts a run of at most `instructions` instructions and `time`.
    pub fn start(&self, instructions: u64, time: Duration, names: LimitNames) {
        self.left.set(instructions);
        self.time.set(time);
        self.deadline.set(Instant::now().checked_add(time));
        self.reached.set(None);
        self.names.set(names);
    }

    /// Records the state's memory limit (set with `Lua::set_memory_limit`),
    /// which no single string may exceed.
    pub fn set_memory(&self, bytes: u64) {
        self.memory.set(bytes);
    }

    pub fn memory(&self) -> u64 {
        self.memory.get()
    }

    /// Whether the run in progress has hit a limit.
    pub fn reached(&self) -> Option<Reached> {
        self.reached.get()
    }

    /// Instructions the run has left.
    pub fn left(&self) -> u64 {
        self.left.get()
    }

    /// The error message for `limit`.
    pub fn message(&self, limit: Reached) -> String {
        let names = self.names.get();
        match limit {
            Reached::Instructions => {
                format!("the instruction limit ({}) was reached", names.instructions)
            }
            Reached::Time => format!(
                "the time limit ({:.1} s, {}) was reached",
                self.time.get().as_secs_f64(),
                names.time
            ),
        }
    }

    fn fail(&self, limit: Reached) -> String {
        self.left.set(0);
        self.reached.set(Some(limit));
        self.message(limit)
    }

    /// Takes `instructions` from the budget and looks at the clock.
    pub fn charge(&self, instructions: u64) -> Result<(), String> {
        if let Some(limit) = self.reached.get() {
            return Err(self.message(limit));
        }
        let left = self.left.get();
        if instructions >= left {
            return Err(self.fail(Reached::Instructions));
        }
        self.left.set(left - instructions);
        if self.deadline.get().is_some_and(|d| Instant::now() >= d) {
            return Err(self.fail(Reached::Time));
        }
        Ok(())
    }

    /// What a pattern match may use: the instructions left, by the same deadline.
    pub fn pattern_budget(&self) -> Budget {
        let left = if self.reached.get().is_some() {
            0
        } else {
            self.left.get()
        };
        Budget::new(left, self.deadline.get())
    }

    /// Takes back what a pattern match left of its budget; for a match that
    /// ran out of it, the message the run fails with.
    pub fn settle(&self, budget: &Budget, error: Option<&PatternError>) -> Option<String> {
        self.left.set(budget.steps);
        match error {
            Some(PatternError::OutOfSteps) => Some(self.fail(Reached::Instructions)),
            Some(PatternError::OutOfTime) => Some(self.fail(Reached::Time)),
            _ => None,
        }
    }
}

/// Installs the hook that takes instructions from `limits` in `lua`'s main
/// thread (the sandbox has no coroutines, so no code runs in another).
pub fn install_hook(lua: &Lua, limits: Rc<Limits>) {
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |_, debug| match limits.charge(u64::from(HOOK_EVERY)) {
            Ok(()) => Ok(VmState::Continue),
            // Where the code was, as Lua's own errors say it.
            Err(message) => Err(mlua::Error::RuntimeError(
                match (debug.source().short_src, debug.curr_line()) {
                    (Some(source), line) if line > 0 => format!("{source}:{line}: {message}"),
                    _ => message,
                },
            )),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: LimitNames = LimitNames {
        instructions: "options.lua_instructions",
        time: "half of options.stall_timeout",
    };

    #[test]
    fn a_spent_budget_stays_spent_until_the_next_run() {
        let limits = Limits::new(NAMES);
        limits.start(2500, Duration::from_secs(60), NAMES);
        assert!(limits.charge(1000).is_ok());
        assert!(limits.charge(1000).is_ok());
        let message = limits.charge(1000).expect_err("over");
        assert!(message.contains("options.lua_instructions"), "{message}");
        assert_eq!(limits.reached(), Some(Reached::Instructions));
        assert!(limits.charge(1).is_err(), "a reached limit keeps failing");
        assert_eq!(limits.pattern_budget().steps, 0);
        limits.start(2500, Duration::from_secs(60), NAMES);
        assert_eq!(limits.reached(), None);
        assert!(limits.charge(1000).is_ok());
    }

    #[test]
    fn the_clock_ends_a_run_that_has_instructions_left() {
        let limits = Limits::new(NAMES);
        limits.start(u64::MAX, Duration::ZERO, NAMES);
        let message = limits.charge(1).expect_err("past the deadline");
        assert!(message.contains("time limit"), "{message}");
        assert_eq!(limits.reached(), Some(Reached::Time));
    }
}

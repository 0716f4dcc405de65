//! A hashed timer wheel: O(1) insert and cancel, a few milliseconds per tick.
//!
//! Each slot holds a doubly linked list of timers (nodes in one arena, linked
//! by index). A timer due more than one revolution ahead stays in its slot and
//! is skipped until its tick comes round.

use std::time::{Duration, Instant};

/// Length of one tick.
pub const TICK: Duration = Duration::from_millis(4);
/// Number of slots; one revolution is `TICK * SLOT_COUNT` (about 4 s).
const SLOT_COUNT: usize = 1024;
const NONE: usize = usize::MAX;

/// A handle to a scheduled timer, for cancelling it. Stale handles (of timers
/// that fired or were cancelled) are recognised and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerId {
    node: usize,
    generation: u64,
}

struct Node {
    due_tick: u64,
    key: usize,
    generation: u64,
    prev: usize,
    next: usize,
    live: bool,
}

pub struct TimerWheel {
    origin: Instant,
    /// Every tick before this one has been processed.
    next_tick: u64,
    heads: Vec<usize>,
    nodes: Vec<Node>,
    free: Vec<usize>,
    generation: u64,
    live: usize,
}

impl TimerWheel {
    pub fn new(now: Instant) -> TimerWheel {
        TimerWheel {
            origin: now,
            next_tick: 1,
            heads: vec![NONE; SLOT_COUNT],
            nodes: Vec::new(),
            free: Vec::new(),
            generation: 0,
            live: 0,
        }
    }

    fn tick_of(&self, at: Instant) -> u64 {
        let elapsed = at.saturating_duration_since(self.origin);
        (elapsed.as_nanos() / TICK.as_nanos()) as u64
    }

    /// Schedules `key` to be returned by `expire` once `due` has passed.
    pub fn insert(&mut self, due: Instant, key: usize) -> TimerId {
        // Round up so a timer never fires early, and never into a tick already processed.
        let due_tick = (self.tick_of(due) + 1).max(self.next_tick);
        self.generation += 1;
        let node = Node {
            due_tick,
            key,
            generation: self.generation,
            prev: NONE,
            next: NONE,
            live: true,
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.nodes[index] = node;
                index
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        let slot = (due_tick % SLOT_COUNT as u64) as usize;
        let head = self.heads[slot];
        self.nodes[index].next = head;
        if head != NONE {
            self.nodes[head].prev = index;
        }
        self.heads[slot] = index;
        self.live += 1;
        TimerId {
            node: index,
            generation: self.generation,
        }
    }

    /// Cancels a timer; does nothing if it already fired or was cancelled.
    pub fn cancel(&mut self, id: TimerId) {
        match self.nodes.get(id.node) {
            Some(node) if node.live && node.generation == id.generation => self.unlink(id.node),
            _ => {}
        }
    }

    fn unlink(&mut self, index: usize) {
        let (prev, next, slot) = {
            let node = &self.nodes[index];
            (
                node.prev,
                node.next,
                (node.due_tick % SLOT_COUNT as u64) as usize,
            )
        };
        if prev == NONE {
            self.heads[slot] = next;
        } else {
            self.nodes[prev].next = next;
        }
        if next != NONE {
            self.nodes[next].prev = prev;
        }
        self.nodes[index].live = false;
        self.free.push(index);
        self.live -= 1;
    }

    /// Moves the wheel to `now`, appending the keys of every timer that came due.
    pub fn expire(&mut self, now: Instant, due: &mut Vec<usize>) {
        let now_tick = self.tick_of(now);
        while self.next_tick <= now_tick {
            if self.live == 0 {
                self.next_tick = now_tick + 1;
                break;
            }
            let tick = self.next_tick;
            let mut index = self.heads[(tick % SLOT_COUNT as u64) as usize];
            while index != NONE {
                let next = self.nodes[index].next;
                if self.nodes[index].due_tick <= tick {
                    due.push(self.nodes[index].key);
                    self.unlink(index);
                }
                index = next;
            }
            self.next_tick += 1;
        }
    }

    /// How long the event loop may sleep before the next timer could come due,
    /// or None when no timer is scheduled.
    pub fn next_wait(&self, now: Instant) -> Option<Duration> {
        if self.live == 0 {
            return None;
        }
        // Look for the first non-empty slot ahead; a full revolution at most.
        let mut tick = self.next_tick;
        for _ in 0..SLOT_COUNT {
            if self.heads[(tick % SLOT_COUNT as u64) as usize] != NONE {
                break;
            }
            tick += 1;
        }
        let at = self.origin + TICK * (tick as u32);
        Some(at.saturating_duration_since(now))
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_their_tick_never_early() {
        let start = Instant::now();
        let mut wheel = TimerWheel::new(start);
        wheel.insert(start + Duration::from_millis(10), 1);
        wheel.insert(start + Duration::from_millis(30), 2);
        let mut due = Vec::new();
        wheel.expire(start + Duration::from_millis(9), &mut due);
        assert!(due.is_empty());
        wheel.expire(start + Duration::from_millis(16), &mut due);
        assert_eq!(due, [1]);
        wheel.expire(start + Duration::from_millis(40), &mut due);
        assert_eq!(due, [1, 2]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn cancel_is_exact_and_stale_ids_are_harmless() {
        let start = Instant::now();
        let mut wheel = TimerWheel::new(start);
        let a = wheel.insert(start + Duration::from_millis(10), 1);
        let b = wheel.insert(start + Duration::from_millis(10), 2);
        wheel.cancel(a);
        wheel.cancel(a);
        let c = wheel.insert(start + Duration::from_millis(10), 3); // reuses a's node
        wheel.cancel(a);
        let mut due = Vec::new();
        wheel.expire(start + Duration::from_millis(20), &mut due);
        due.sort();
        assert_eq!(due, [2, 3]);
        wheel.cancel(b);
        wheel.cancel(c);
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn timers_beyond_one_revolution_wait_their_turn() {
        let start = Instant::now();
        let mut wheel = TimerWheel::new(start);
        wheel.insert(start + Duration::from_secs(10), 7);
        let mut due = Vec::new();
        wheel.expire(start + Duration::from_secs(5), &mut due);
        assert!(due.is_empty());
        let wait = wheel
            .next_wait(start + Duration::from_secs(5))
            .expect("scheduled");
        assert!(wait <= Duration::from_secs(5));
        wheel.expire(start + Duration::from_millis(10_010), &mut due);
        assert_eq!(due, [7]);
    }
}

//! A hierarchical timer wheel: O(1) insert and cancel, 4 ms ticks, and a
//! loop that sleeps until the next timer is really due.
//!
//! Three levels of 1 024 slots: level 0 holds the timers due within the
//! next 1 024 ticks (4 s), one tick per slot; level 1 those due within 2^20
//! ticks (70 minutes), 1 024 ticks per slot; level 2 the rest (50 days,
//! further ones wait in its last slot and are placed again). When the wheel
//! reaches the start of a level-1 (or level-2) slot, its timers move down
//! ("cascade"). A bitmap per level says which slots hold timers, so finding
//! the next due tick, and jumping over empty ticks, costs a few word scans —
//! a worker whose only timers are keep-alive deadlines minutes away wakes
//! when one is due, not every tick (the flat wheel this replaces woke at
//! every slot that held a timer due some revolutions later).
//!
//! Each slot holds a doubly linked list of timers (nodes in one arena,
//! linked by index).

use std::time::{Duration, Instant};

/// Length of one tick.
pub const TICK: Duration = Duration::from_millis(4);
/// Slots per level, and bits of a tick number each level consumes.
const SLOT_BITS: u32 = 10;
const SLOTS: usize = 1 << SLOT_BITS;
const LEVELS: usize = 3;
const WORDS: usize = SLOTS / 64;
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
    /// Its list: level * SLOTS + slot.
    bucket: usize,
    prev: usize,
    next: usize,
    live: bool,
}

pub struct TimerWheel {
    origin: Instant,
    /// Every tick before this one has been processed.
    next_tick: u64,
    heads: Vec<usize>,
    /// Which slots of each level hold timers.
    occupied: [[u64; WORDS]; LEVELS],
    nodes: Vec<Node>,
    free: Vec<usize>,
    generation: u64,
    live: usize,
}

/// The first set bit of `bits` at or after `start`, going round: its
/// distance from `start` (0..SLOTS).
fn first_set_from(bits: &[u64; WORDS], start: usize) -> Option<usize> {
    for step in 0..=WORDS {
        let at = (start / 64 + step) % WORDS;
        let mut word = bits[at];
        if step == 0 {
            // Only bits at or after `start` in its own word.
            word &= !0u64 << (start % 64);
        } else if step == WORDS {
            // Round again to the start's own word, bits before `start`.
            word &= !(!0u64 << (start % 64));
        }
        if word != 0 {
            let slot = at * 64 + word.trailing_zeros() as usize;
            return Some((slot + SLOTS - start) % SLOTS);
        }
    }
    None
}

/// The first tick of level `level`'s slot numbered `index` (absolute: tick >> (level * SLOT_BITS)).
fn start_of(level: usize, index: u64) -> u64 {
    index << (level as u32 * SLOT_BITS)
}

impl TimerWheel {
    pub fn new(now: Instant) -> TimerWheel {
        TimerWheel {
            origin: now,
            next_tick: 1,
            heads: vec![NONE; SLOTS * LEVELS],
            occupied: [[0; WORDS]; LEVELS],
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

    /// The list a timer due at `due_tick` belongs in, seen from `next_tick`.
    fn bucket_of(&self, due_tick: u64) -> usize {
        let from = self.next_tick;
        let ahead = due_tick.saturating_sub(from);
        for level in 0..LEVELS - 1 {
            if ahead < 1 << ((level as u32 + 1) * SLOT_BITS) {
                let slot = (due_tick >> (level as u32 * SLOT_BITS)) as usize % SLOTS;
                return level * SLOTS + slot;
            }
        }
        // Level 2; beyond its reach, its furthest slot (placed again when reached).
        let top = 2 * SLOT_BITS;
        let reach = from + (1 << (3 * SLOT_BITS)) - 1;
        let slot = (due_tick.min(reach) >> top) as usize % SLOTS;
        (LEVELS - 1) * SLOTS + slot
    }

    fn link(&mut self, index: usize) {
        let bucket = self.bucket_of(self.nodes[index].due_tick);
        let head = self.heads[bucket];
        let node = &mut self.nodes[index];
        node.bucket = bucket;
        node.prev = NONE;
        node.next = head;
        if head != NONE {
            self.nodes[head].prev = index;
        }
        self.heads[bucket] = index;
        self.occupied[bucket / SLOTS][(bucket % SLOTS) / 64] |= 1 << (bucket % 64);
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
            bucket: 0,
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
        self.link(index);
        self.live += 1;
        TimerId {
            node: index,
            generation: self.generation,
        }
    }

    /// Cancels a timer; does nothing if it already fired or was cancelled.
    pub fn cancel(&mut self, id: TimerId) {
        match self.nodes.get(id.node) {
            Some(node) if node.live && node.generation == id.generation => {
                self.detach(id.node);
                self.nodes[id.node].live = false;
                self.free.push(id.node);
                self.live -= 1;
            }
            _ => {}
        }
    }

    /// Takes a node out of its list (it stays live).
    fn detach(&mut self, index: usize) {
        let (prev, next, bucket) = {
            let node = &self.nodes[index];
            (node.prev, node.next, node.bucket)
        };
        if prev == NONE {
            self.heads[bucket] = next;
            if next == NONE {
                self.occupied[bucket / SLOTS][(bucket % SLOTS) / 64] &= !(1 << (bucket % 64));
            }
        } else {
            self.nodes[prev].next = next;
        }
        if next != NONE {
            self.nodes[next].prev = prev;
        }
    }

    /// The next tick at or after `next_tick` at which something happens: a
    /// level-0 slot fires, or a higher level's slot cascades.
    fn next_event(&self) -> Option<u64> {
        if self.live == 0 {
            return None;
        }
        let from = self.next_tick;
        let mut best: Option<u64> = None;
        for level in 0..LEVELS {
            let shift = level as u32 * SLOT_BITS;
            // Level 0 starts at the next tick itself; a higher level at its
            // next slot (the current one has cascaded already, or holds nothing).
            let first = if level == 0 {
                from
            } else {
                ((from - 1) >> shift) + 1
            };
            let Some(distance) = first_set_from(&self.occupied[level], first as usize % SLOTS)
            else {
                continue;
            };
            let tick = if level == 0 {
                first + distance as u64
            } else {
                start_of(level, first + distance as u64)
            };
            best = Some(best.map_or(tick, |b| b.min(tick)));
        }
        best
    }

    /// Processes tick `tick`: cascades what starts there, then fires what
    /// is due.
    fn run_tick(&mut self, tick: u64, due: &mut Vec<usize>) {
        self.next_tick = tick;
        for level in (1..LEVELS).rev() {
            let shift = level as u32 * SLOT_BITS;
            if tick & ((1 << shift) - 1) != 0 {
                continue;
            }
            let bucket = level * SLOTS + (tick >> shift) as usize % SLOTS;
            let mut index = std::mem::replace(&mut self.heads[bucket], NONE);
            self.occupied[level][(bucket % SLOTS) / 64] &= !(1 << (bucket % 64));
            while index != NONE {
                let next = self.nodes[index].next;
                self.link(index);
                index = next;
            }
        }
        let bucket = tick as usize % SLOTS;
        let mut index = self.heads[bucket];
        while index != NONE {
            let next = self.nodes[index].next;
            if self.nodes[index].due_tick <= tick {
                due.push(self.nodes[index].key);
                self.cancel(TimerId {
                    node: index,
                    generation: self.nodes[index].generation,
                });
            }
            index = next;
        }
        self.next_tick = tick + 1;
    }

    /// Moves the wheel to `now`, appending the keys of every timer that came due.
    pub fn expire(&mut self, now: Instant, due: &mut Vec<usize>) {
        let now_tick = self.tick_of(now);
        while let Some(tick) = self.next_event().filter(|&tick| tick <= now_tick) {
            self.run_tick(tick, due);
        }
        self.next_tick = self.next_tick.max(now_tick + 1);
    }

    /// How long the event loop may sleep before the next timer could come due
    /// (or a far one moves closer), or None when no timer is scheduled.
    pub fn next_wait(&self, now: Instant) -> Option<Duration> {
        let tick = self.next_event()?;
        let at = self.origin + Duration::from_millis(tick.saturating_mul(TICK.as_millis() as u64));
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
    fn far_timers_let_the_loop_sleep_until_they_are_due() {
        let start = Instant::now();
        let mut wheel = TimerWheel::new(start);
        // 2 000 keep-alive deadlines two minutes away, one tick apart.
        for key in 0..2000 {
            wheel.insert(start + Duration::from_secs(120) + TICK * key as u32, key);
        }
        // The first wake is when the nearest one moves into level 0, within
        // 4 s of its due time, not the next tick.
        let wait = wheel.next_wait(start).expect("scheduled");
        assert!(wait > Duration::from_secs(110), "{wait:?}");
        let mut due = Vec::new();
        let mut wakes = 0;
        let mut now = start;
        while due.len() < 2000 {
            now += wheel.next_wait(now).expect("scheduled").max(TICK);
            wheel.expire(now, &mut due);
            wakes += 1;
            assert!(now < start + Duration::from_secs(130), "all fired by then");
        }
        assert!(wakes < 2100, "{wakes} wakes for 2 000 timers");
        assert!(now >= start + Duration::from_secs(120) + TICK * 1999);
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_wait(now), None);
    }

    /// A tiny deterministic generator for the model test.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Live timers of the model test: key -> (due, id, when inserted).
    type Model = std::collections::BTreeMap<usize, (Instant, TimerId, Instant)>;

    /// Sleeps as the loop would (`nap` shortens it), expires, and checks
    /// against the model: nothing fires early, twice or late, and the wait
    /// never passes a due timer. Counts what fired by the level it was
    /// inserted at (4 s, 70 min, beyond).
    fn step(
        wheel: &mut TimerWheel,
        model: &mut Model,
        now: &mut Instant,
        nap: Option<Duration>,
        fired_from: &mut [usize; 3],
    ) {
        let wait = wheel.next_wait(*now).unwrap_or(Duration::from_secs(1));
        if let Some(earliest) = model.values().map(|(at, _, _)| *at).min() {
            assert!(*now + wait <= earliest + TICK, "overslept");
        }
        *now += nap.map_or(wait, |nap| wait.min(nap));
        let mut due = Vec::new();
        wheel.expire(*now, &mut due);
        for k in &due {
            let (at, _, inserted) = model.remove(k).expect("a live timer fired once");
            assert!(at <= *now, "fired early");
            let level = match (at - inserted).as_secs() {
                0..4 => 0,
                4..4_000 => 1,
                _ => 2,
            };
            fired_from[level] += 1;
        }
        for (k, (at, _, _)) in model.iter() {
            assert!(*at + TICK > *now, "timer {k} late");
        }
    }

    #[test]
    fn the_wheel_fires_like_a_sorted_list_at_every_distance() {
        let start = Instant::now();
        let mut wheel = TimerWheel::new(start);
        let mut state = 0x9E37_79B9_7F4A_7C15;
        let mut model = Model::new();
        let mut fired_from = [0usize; 3];
        let mut now = start;
        for key in 0..20_000 {
            match next(&mut state) % 10 {
                // Insert at a distance from nothing to a few hours.
                0..=5 => {
                    let scale = [10, 5_000, 300_000, 20_000_000][(next(&mut state) % 4) as usize];
                    let at = now + Duration::from_millis(next(&mut state) % scale);
                    model.insert(key, (at, wheel.insert(at, key), now));
                }
                6 => {
                    if let Some((&k, &(_, id, _))) =
                        model.iter().nth((next(&mut state) % 7) as usize)
                    {
                        wheel.cancel(id);
                        model.remove(&k);
                    }
                }
                _ => {
                    let nap = next(&mut state)
                        .is_multiple_of(2)
                        .then(|| Duration::from_millis(next(&mut state) % 50));
                    step(&mut wheel, &mut model, &mut now, nap, &mut fired_from);
                }
            }
            assert_eq!(wheel.len(), model.len());
        }
        // Then everything left, hours ahead included.
        while !model.is_empty() {
            step(&mut wheel, &mut model, &mut now, None, &mut fired_from);
        }
        assert!(wheel.is_empty());
        assert!(
            fired_from.iter().all(|&n| n > 100),
            "every level cascaded: {fired_from:?}"
        );
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

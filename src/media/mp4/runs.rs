//! A run-length sample table (stts: durations, ctts: composition offsets)
//! read where the moov keeps it. The per-run lookups a seek needs (which
//! run holds a sample or a time) come from a checkpoint every
//! `CHECKPOINT_RUNS` runs and a short walk, not from a decoded copy of the
//! table: a film with B-frames has a ctts run for almost every sample, and
//! decoding it cost 16 bytes a run of fresh memory on every first index.

use super::boxes::MoovBytes;
use crate::media::{MediaError, broken};

/// A run of samples with the same duration (stts) or composition offset (ctts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub count: u32,
    pub value: u32,
}

/// Runs between two checkpoints: a lookup walks at most this many entries.
const CHECKPOINT_RUNS: usize = 32;

/// Where a run starts: its index, first sample and first time (the sum of
/// the runs before it, count × value: a decode time for stts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStart {
    pub index: usize,
    pub sample: u64,
    pub time: u64,
}

/// What a table's values are: durations add up to decode times, which must
/// not overflow; composition offsets do not add up to anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Values {
    Durations,
    Offsets,
}

/// `count` 8-byte entries (sample count, value) from moov offset `at`.
#[derive(Clone, Debug, Default)]
pub struct RunTable {
    moov: MoovBytes,
    /// Moov offset of the first entry (to copy runs as they are).
    pub at: usize,
    count: usize,
    /// The start of every `CHECKPOINT_RUNS`-th run.
    checkpoints: Vec<RunStart>,
}

impl RunTable {
    /// The table at `at` (its `count` entries checked to lie in the moov by
    /// the caller), with its checkpoints; errors when its totals overflow.
    pub fn new(
        moov: &MoovBytes,
        at: usize,
        count: usize,
        values: Values,
    ) -> Result<RunTable, MediaError> {
        let mut table = RunTable {
            moov: moov.clone(),
            at,
            count,
            checkpoints: Vec::new(),
        };
        let mut checkpoints = Vec::with_capacity(count.div_ceil(CHECKPOINT_RUNS));
        let mut start = RunStart::default();
        for (index, run) in table.iter_from(0).enumerate() {
            if index % CHECKPOINT_RUNS == 0 {
                checkpoints.push(RunStart { index, ..start });
            }
            let next = next_start(start, run);
            // Hostile tables can add up past 64 bits (found by
            // fuzz/fuzz_targets/mp4.rs); offsets add up to nothing that matters.
            let overflows = next.sample == u64::MAX || next.time == u64::MAX;
            if overflows && values == Values::Durations {
                return Err(broken("stts durations overflow"));
            }
            start = next;
        }
        table.checkpoints = checkpoints;
        Ok(table)
    }

    /// A table of the given runs (for tests and generated files).
    pub fn from_runs(runs: &[Run], values: Values) -> Result<RunTable, MediaError> {
        let bytes: Vec<u8> = runs
            .iter()
            .flat_map(|r| [r.count.to_be_bytes(), r.value.to_be_bytes()])
            .flatten()
            .collect();
        RunTable::new(&MoovBytes::new(bytes), 0, runs.len(), values)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Run `index`, if the table has it.
    #[inline]
    pub fn get(&self, index: usize) -> Option<Run> {
        (index < self.count)
            .then(|| self.entries(index..index + 1)[0])
            .map(decode)
    }

    /// The runs from `index` on.
    #[inline]
    pub fn iter_from(&self, index: usize) -> impl Iterator<Item = Run> + '_ {
        self.entries(index.min(self.count)..self.count)
            .iter()
            .copied()
            .map(decode)
    }

    /// The sum of all runs: total samples and total time.
    pub fn end(&self) -> RunStart {
        let Some(&last) = self.checkpoints.last() else {
            return RunStart::default();
        };
        let mut start = last;
        for run in self.iter_from(last.index) {
            start = next_start(start, run);
        }
        start
    }

    /// The last run that starts at or before sample `s` (how a lookup over
    /// every run's first sample would pick it: a run of no samples gives
    /// way to the one after it).
    pub fn run_of_sample(&self, s: u64) -> RunStart {
        self.last_start_where(|start| start.sample <= s)
    }

    /// The last run that starts at or before time `t`.
    pub fn run_of_time(&self, t: u64) -> RunStart {
        self.last_start_where(|start| start.time <= t)
    }

    /// Memory held beyond the moov, for the cache's budget.
    pub fn weight(&self) -> usize {
        self.checkpoints.capacity() * std::mem::size_of::<RunStart>()
    }

    /// Both a run's first sample and first time only grow with its index,
    /// so `before` holds for the runs up to some index and fails after.
    fn last_start_where(&self, before: impl Fn(&RunStart) -> bool) -> RunStart {
        let checkpoint = self.checkpoints.partition_point(&before).saturating_sub(1);
        let Some(&first) = self.checkpoints.get(checkpoint) else {
            return RunStart::default();
        };
        let mut found = first;
        for run in self.iter_from(first.index) {
            let next = next_start(found, run);
            if next.index >= self.count || !before(&next) {
                break;
            }
            found = next;
        }
        found
    }

    fn entries(&self, range: std::ops::Range<usize>) -> &[[u8; 8]] {
        self.moov
            .get(self.at + 8 * range.start..self.at + 8 * range.end)
            .map_or(&[][..], |bytes| bytes.as_chunks().0)
    }
}

fn decode(entry: [u8; 8]) -> Run {
    let [c0, c1, c2, c3, v0, v1, v2, v3] = entry;
    Run {
        count: u32::from_be_bytes([c0, c1, c2, c3]),
        value: u32::from_be_bytes([v0, v1, v2, v3]),
    }
}

/// The start of the run after `run`, which starts at `start` (sums held at
/// u64::MAX past 64 bits).
fn next_start(start: RunStart, run: Run) -> RunStart {
    let count = u64::from(run.count);
    RunStart {
        index: start.index + 1,
        sample: start.sample.saturating_add(count),
        time: start.time.saturating_add(count * u64::from(run.value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_pick_the_run_a_search_over_every_run_picks() {
        // Runs of no samples among others, over several checkpoints.
        let runs: Vec<Run> = (0..200u32)
            .map(|i| Run {
                count: if i % 7 == 3 { 0 } else { 1 + i % 5 },
                value: 10 + i % 3,
            })
            .collect();
        let table = RunTable::from_runs(&runs, Values::Durations).expect("table");
        let mut starts = Vec::new();
        let (mut sample, mut time) = (0u64, 0u64);
        for (index, run) in runs.iter().enumerate() {
            starts.push(RunStart {
                index,
                sample,
                time,
            });
            sample += u64::from(run.count);
            time += u64::from(run.count) * u64::from(run.value);
        }
        assert_eq!(
            table.end(),
            RunStart {
                index: runs.len(),
                sample,
                time
            }
        );
        for s in 0..=sample + 2 {
            let expected = starts[starts.partition_point(|r| r.sample <= s) - 1];
            assert_eq!(table.run_of_sample(s), expected, "sample {s}");
        }
        for t in 0..=time + 2 {
            let expected = starts[starts.partition_point(|r| r.time <= t) - 1];
            assert_eq!(table.run_of_time(t), expected, "time {t}");
        }
        assert_eq!(table.get(5), Some(runs[5]));
        assert_eq!(table.get(200), None);
        let tail: Vec<Run> = table.iter_from(190).collect();
        assert_eq!(tail, runs[190..]);
    }

    #[test]
    fn an_empty_table_and_an_overflowing_one() {
        let empty = RunTable::from_runs(&[], Values::Durations).expect("empty");
        assert_eq!(empty.run_of_sample(5), RunStart::default());
        assert_eq!(empty.end(), RunStart::default());
        let huge = Run {
            count: u32::MAX,
            value: u32::MAX,
        };
        assert!(RunTable::from_runs(&[huge; 1], Values::Durations).is_ok());
        assert!(RunTable::from_runs(&[huge; 2], Values::Durations).is_err());
        assert!(RunTable::from_runs(&[huge; 2], Values::Offsets).is_ok());
    }
}

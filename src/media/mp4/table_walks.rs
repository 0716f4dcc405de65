//! Walks over a track's tables in sample order: each starts with one
//! lookup and then steps, for the loops that visit every sample (the
//! timeline, a segment's moof) where a search per sample would dominate.

use super::{Run, RunTable, Sizes, Track};
use crate::media::{MediaError, broken};

impl Track {
    /// The duration of each sample from `s` on (what `time_of(n + 1) -
    /// time_of(n)` gives), walking the stts runs instead of searching them
    /// for every sample.
    pub fn durations_from(&self, s: u64) -> impl Iterator<Item = u32> + '_ {
        run_values(&self.stts, s)
    }

    /// The stored composition offset of each sample from `s` on (none
    /// without a ctts).
    pub fn composition_offsets_from(&self, s: u64) -> impl Iterator<Item = u32> + '_ {
        let runs = self.ctts.as_ref().map(|(_, runs)| runs);
        runs.into_iter().flat_map(move |runs| run_values(runs, s))
    }

    /// Whether each sample from `s` on is a sync sample (all are without an stss).
    pub fn sync_flags_from(&self, s: u64) -> impl Iterator<Item = bool> + '_ {
        let sync = self.sync.as_deref();
        // stss numbers samples from 1: the first entry at or after sample `s`.
        let mut next = sync.map_or(0, |list| list.partition_point(|&n| u64::from(n) < s + 1));
        (s..).map(move |sample| match sync {
            None => true,
            Some(list) => {
                let number = sample + 1;
                while next < list.len() && u64::from(list[next]) < number {
                    next += 1;
                }
                list.get(next).is_some_and(|&n| u64::from(n) == number)
            }
        })
    }

    /// Calls `visit(step, reach)` for each step of `step_ticks` decode-time
    /// ticks that holds samples, in time order: `step` = floor(decode time ÷
    /// `step_ticks`), `reach` the furthest end offset of its samples. One
    /// pass over the chunks and sizes, no search per sample: the timeline of
    /// a long film is built from this.
    ///
    /// The same pass checks that every chunk lies inside the file of
    /// `file_size` bytes (the error names the first that does not; the
    /// steps visited until then are to be dropped) and returns whether the
    /// chunks are stored in order. In order means each starts at or after
    /// the end of the one before: offsets that merely never decrease can
    /// still overlap, and then a range's first sample is not its lowest byte
    /// (found by fuzz/fuzz_targets/mp4.rs).
    pub fn walk_steps(
        &self,
        step_ticks: f64,
        file_size: u64,
        mut visit: impl FnMut(u64, u64),
    ) -> Result<bool, MediaError> {
        if self.sample_count == 0 {
            return Ok(true);
        }
        let mut walk = StepWalk::new(self.stts.iter_from(0), step_ticks);
        let (mut chunk, mut previous_end, mut in_order) = (0u64, 0u64, true);
        let mut past_the_end = None;
        self.for_each_chunk(|offset, sizes| {
            if past_the_end.is_some() {
                return;
            }
            chunk += 1;
            let mut end = offset;
            sizes.for_each(|size| {
                end = end.saturating_add(u64::from(size));
                walk.sample(end, &mut visit);
            });
            // Saturated, `end` is above any file size too.
            if end > file_size {
                past_the_end = Some((chunk, offset, sizes.sum()));
                return;
            }
            in_order &= offset >= previous_end;
            previous_end = end;
        });
        if let Some((chunk, offset, bytes)) = past_the_end {
            return Err(broken(format!(
                "track {}: chunk {chunk} at offset {offset} ({bytes} bytes) runs past the end of the file ({file_size} bytes)",
                self.id
            )));
        }
        walk.finish(&mut visit);
        Ok(in_order)
    }

    /// Walks the chunks in table order, their offsets and sample counts side
    /// by side with the sizes: `chunk(offset, sizes of its samples)`.
    #[inline(always)]
    fn for_each_chunk(&self, mut chunk: impl FnMut(u64, ChunkSizes<'_>)) {
        // (samples, file offset) per chunk, the last cut at the sample count.
        let mut left = self.sample_count;
        let mut done = false;
        let chunks = self
            .chunk_sample_counts()
            .map(|(_, samples)| samples)
            .zip(self.chunk_offsets_in(0..self.chunk_count()))
            .map_while(|(samples, offset)| {
                if done {
                    return None;
                }
                let n = samples.min(left);
                left -= n;
                done = left == 0;
                Some((n as usize, offset))
            });
        match &self.sizes {
            Sizes::Constant(size) => {
                chunks.for_each(|(n, offset)| chunk(offset, ChunkSizes::Constant(*size, n)));
            }
            Sizes::Stored { .. } => {
                let mut rest = self.stored_sizes(0..self.sample_count);
                for (n, offset) in chunks {
                    chunk(offset, ChunkSizes::Stored(take_front(&mut rest, n)));
                }
            }
            Sizes::Decoded(table) => {
                let mut rest = &table[..];
                for (n, offset) in chunks {
                    chunk(offset, ChunkSizes::Decoded(take_front(&mut rest, n)));
                }
            }
        }
    }

    /// Samples `range` cut where chunks end: `(first sample, count, file
    /// offset of the first)` for each chunk they touch, in decode order. One
    /// lookup for the first chunk, then a walk.
    pub fn chunk_pieces(
        &self,
        range: std::ops::Range<u64>,
    ) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        let (mut chunk, mut chunk_first) = if range.is_empty() {
            (0, 0)
        } else {
            self.chunk_of(range.start)
        };
        let mut run = self.stsc_run_of_chunk(chunk);
        let mut offset = if range.is_empty() {
            0
        } else {
            self.offset_of(range.start)
        };
        let mut s = range.start;
        std::iter::from_fn(move || {
            if s >= range.end {
                return None;
            }
            let per_chunk = self
                .stsc_run(run)
                .map_or(1, |r| u64::from(r.samples_per_chunk.max(1)));
            let chunk_end = (chunk_first + per_chunk).min(range.end).max(s + 1);
            let piece = (s, chunk_end - s, offset);
            s = chunk_end;
            chunk += 1;
            chunk_first += per_chunk;
            if self
                .stsc_run(run + 1)
                .is_some_and(|next| u64::from(next.first_chunk) <= chunk + 1)
            {
                run += 1;
            }
            offset = self.chunk_offset(chunk as usize);
            Some(piece)
        })
    }

    /// Every chunk (0-based) in table order with its number of samples,
    /// walking the stsc runs (checked by `index_and_check`) instead of
    /// looking each chunk's run up.
    pub(super) fn chunk_sample_counts(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        let chunks = self.chunk_count();
        let mut runs = self.stsc_runs().peekable();
        std::iter::from_fn(move || {
            let run = runs.next()?;
            let first = (run.first_chunk as usize).saturating_sub(1).min(chunks);
            let next = runs
                .peek()
                .map_or(chunks, |r| (r.first_chunk as usize).saturating_sub(1))
                .clamp(first, chunks);
            Some((first..next).map(move |chunk| (chunk, u64::from(run.samples_per_chunk))))
        })
        .flatten()
    }
}

/// The sizes of one chunk's samples, however the track keeps them.
#[derive(Clone, Copy)]
enum ChunkSizes<'t> {
    Constant(u32, usize),
    Stored(&'t [[u8; 4]]),
    Decoded(&'t [u32]),
}

impl ChunkSizes<'_> {
    #[inline(always)]
    fn for_each(self, mut each: impl FnMut(u32)) {
        match self {
            ChunkSizes::Constant(size, n) => (0..n).for_each(|_| each(size)),
            ChunkSizes::Stored(entries) => {
                entries.iter().for_each(|&e| each(u32::from_be_bytes(e)))
            }
            ChunkSizes::Decoded(sizes) => sizes.iter().for_each(|&n| each(n)),
        }
    }

    /// Wrapping adds cannot wrap (at most 20 million 32-bit sizes) and keep
    /// the sum free of overflow checks.
    #[inline(always)]
    fn sum(self) -> u64 {
        let mut sum = 0u64;
        self.for_each(|size| sum = sum.wrapping_add(u64::from(size)));
        sum
    }
}

/// The step walk of [`Track::walk_steps`]: fed the samples' end
/// offsets in decode order, it keeps their decode time from the stts runs.
struct StepWalk<R> {
    runs: R,
    left_in_run: u64,
    duration: u64,
    time: u64,
    step_ticks: f64,
    /// `step_ticks` when it is a whole number (every timescale that is a
    /// multiple of 10): then steps advance by addition.
    whole_ticks: Option<u64>,
    step: u64,
    step_ends_at: u64,
    reach: Option<u64>,
}

impl<R: Iterator<Item = Run>> StepWalk<R> {
    fn new(stts: R, step_ticks: f64) -> Self {
        let whole_ticks = (step_ticks >= 1.0 && step_ticks.fract() == 0.0 && step_ticks < 1e15)
            .then_some(step_ticks as u64);
        StepWalk {
            runs: stts,
            left_in_run: 0,
            duration: 0,
            time: 0,
            step_ticks,
            whole_ticks,
            step: 0,
            step_ends_at: whole_ticks.unwrap_or_else(|| step_ticks.ceil() as u64),
            reach: None,
        }
    }

    #[inline(always)]
    fn sample(&mut self, end: u64, visit: &mut impl FnMut(u64, u64)) {
        // Decode times only grow: the step changes every few samples, and
        // then almost always to the next one.
        if self.time >= self.step_ends_at {
            if let Some(reached) = self.reach.take() {
                visit(self.step, reached);
            }
            self.enter_step();
        }
        self.reach = Some(self.reach.map_or(end, |reached| reached.max(end)));
        while self.left_in_run == 0 {
            match self.runs.next() {
                Some(run) => {
                    (self.left_in_run, self.duration) = (run.count.into(), run.value.into())
                }
                None => {
                    self.duration = 0;
                    break;
                }
            }
        }
        self.left_in_run = self.left_in_run.saturating_sub(1);
        self.time = self.time.saturating_add(self.duration);
    }

    /// Moves to the step that holds `time`.
    fn enter_step(&mut self) {
        match self.whole_ticks {
            Some(ticks) if self.time - self.step_ends_at < ticks => {
                self.step += 1;
                self.step_ends_at = self.step_ends_at.saturating_add(ticks);
            }
            Some(ticks) => {
                self.step = self.time / ticks;
                self.step_ends_at = (self.step + 1).saturating_mul(ticks);
            }
            None => {
                self.step = (self.time as f64 / self.step_ticks) as u64;
                self.step_ends_at = ((self.step + 1) as f64 * self.step_ticks).ceil() as u64;
            }
        }
    }

    fn finish(self, visit: &mut impl FnMut(u64, u64)) {
        if let Some(reached) = self.reach {
            visit(self.step, reached);
        }
    }
}

/// The value of every sample of a run-length table (stts, ctts) from sample
/// `from` on.
fn run_values(runs: &RunTable, from: u64) -> impl Iterator<Item = u32> + '_ {
    let start = runs.run_of_sample(from);
    let into = from.saturating_sub(start.sample);
    let mut later = runs.iter_from(start.index);
    let current = later
        .next()
        .map(|r| std::iter::repeat_n(r.value, u64::from(r.count).saturating_sub(into) as usize));
    current
        .into_iter()
        .flatten()
        .chain(later.flat_map(|r| std::iter::repeat_n(r.value, r.count as usize)))
}

/// The first `n` items of `rest` (fewer if it is shorter), which keeps the
/// others.
fn take_front<'a, T>(rest: &mut &'a [T], n: usize) -> &'a [T] {
    let (front, back) = rest.split_at(n.min(rest.len()));
    *rest = back;
    front
}

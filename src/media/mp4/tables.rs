//! The sample tables of one track, decoded and checked, with the lookups a
//! seek needs: sample at a time, time of a sample, chunk and byte offset of a
//! sample, keyframe at or before a sample.

use super::boxes::{FourCc, MoovBytes, Node, name};
pub use super::runs::{Run, RunTable, Values};
use crate::media::{MediaError, broken};

/// Reads big-endian fields from a box payload, naming the box in errors.
pub struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
    kind: FourCc,
}

impl<'a> Fields<'a> {
    pub fn new(bytes: &'a [u8], kind: FourCc) -> Self {
        Fields {
            bytes,
            pos: 0,
            kind,
        }
    }

    fn short(&self) -> MediaError {
        broken(format!(
            "box '{}' is too short ({} bytes)",
            name(self.kind),
            self.bytes.len()
        ))
    }

    pub fn skip(&mut self, n: usize) -> Result<(), MediaError> {
        self.take(n).map(drop)
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], MediaError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| self.short())?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    pub fn u8(&mut self) -> Result<u8, MediaError> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, MediaError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, MediaError> {
        let b = self.take(8)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(b);
        Ok(u64::from_be_bytes(raw))
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    /// Reads a table entry count and checks that `count` entries of
    /// `entry_len` bytes fit in what is left (so no huge allocation on a lie).
    pub fn count(&mut self, entry_len: usize) -> Result<usize, MediaError> {
        let count = self.u32()? as usize;
        let left = self.bytes.len() - self.pos;
        if count.checked_mul(entry_len).is_none_or(|need| need > left) {
            return Err(broken(format!(
                "box '{}' claims {count} entries but holds {} bytes",
                name(self.kind),
                left
            )));
        }
        Ok(count)
    }

    /// A table's entry count and its entries of `entry_len` bytes, checked
    /// once for the whole table rather than once per field.
    pub fn entries(
        &mut self,
        entry_len: usize,
    ) -> Result<std::slice::ChunksExact<'a, u8>, MediaError> {
        let count = self.count(entry_len)?;
        Ok(self.take(count * entry_len)?.chunks_exact(entry_len.max(1)))
    }
}

/// The big-endian u32 at `at` of a table entry (whose length the caller chose).
fn be32(entry: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([entry[at], entry[at + 1], entry[at + 2], entry[at + 3]])
}

/// Movie/media header times: (timescale, duration, offset of the duration field, its width in bytes).
pub fn header_times(payload: &[u8], kind: FourCc) -> Result<(u32, u64, usize, usize), MediaError> {
    let mut f = Fields::new(payload, kind);
    let version = f.u8()?;
    f.skip(3)?;
    if version == 1 {
        f.skip(16)?;
        let timescale = f.u32()?;
        let at = f.position();
        Ok((timescale, f.u64()?, at, 8))
    } else {
        f.skip(8)?;
        let timescale = f.u32()?;
        let at = f.position();
        Ok((timescale, u64::from(f.u32()?), at, 4))
    }
}

/// Track header: (enabled, track id, offset of the duration field, its width).
pub fn track_header(payload: &[u8]) -> Result<(bool, u32, usize, usize), MediaError> {
    let mut f = Fields::new(payload, *b"tkhd");
    let version = f.u8()?;
    let flags = f.take(3)?;
    let enabled = flags[2] & 1 == 1;
    f.skip(if version == 1 { 16 } else { 8 })?;
    let id = f.u32()?;
    f.skip(4)?;
    let at = f.position();
    f.skip(if version == 1 { 8 } else { 4 })?;
    Ok((enabled, id, at, if version == 1 { 8 } else { 4 }))
}

/// How the edit list of a track maps media time to presentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// No edit list.
    None,
    /// One edit (possibly after an initial empty edit) starting at `media_time`
    /// at normal rate: the usual shift for B-frame composition offsets.
    Shift { media_time: i64 },
    /// Anything else; dropped from seeked output.
    Complex,
}

fn parse_edit(edts: &Node, moov: &[u8]) -> Result<Edit, MediaError> {
    let Some(elst) = edts.child(b"elst") else {
        return Ok(Edit::None);
    };
    let mut f = Fields::new(elst.payload(moov), *b"elst");
    let version = f.u8()?;
    f.skip(3)?;
    let entry_len = if version == 1 { 20 } else { 12 };
    let count = f.count(entry_len)?;
    let mut normal = Vec::new();
    for _ in 0..count {
        let (duration, media_time) = if version == 1 {
            (f.u64()?, f.u64()? as i64)
        } else {
            (u64::from(f.u32()?), i64::from(f.u32()? as i32))
        };
        let rate = f.u32()?;
        if media_time == -1 {
            continue; // an empty edit (a delay) means nothing once the start has moved
        }
        if rate != 0x0001_0000 {
            return Ok(Edit::Complex);
        }
        normal.push((duration, media_time));
    }
    match normal.as_slice() {
        [] => Ok(Edit::None),
        [(_, media_time)] => Ok(Edit::Shift {
            media_time: *media_time,
        }),
        _ => Ok(Edit::Complex),
    }
}

/// A stsc entry: from chunk `first_chunk` (1-based) on, `samples_per_chunk` samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkRun {
    pub first_chunk: u32,
    pub samples_per_chunk: u32,
    pub description: u32,
}

impl ChunkRun {
    /// The run an stsc entry as it lies in the moov describes.
    #[inline]
    fn of(entry: &[u8; 12]) -> ChunkRun {
        ChunkRun {
            first_chunk: be32(entry, 0),
            samples_per_chunk: be32(entry, 4),
            description: be32(entry, 8),
        }
    }
}

/// Where a track's stsc entries lie in the moov: `count` entries of 12
/// bytes from `at`, read as they are (an interleaved film has a run every
/// few chunks: 50 000 runs, 600 KB decoded, for an hour).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkRunsAt {
    pub at: usize,
    pub count: usize,
}

/// Where the per-sample sizes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sizes {
    Constant(u32),
    /// One size per sample: the stsz entries at this moov offset, read (and
    /// copied into a seek's moov) as they are.
    Stored {
        at: usize,
    },
    /// One size per sample, decoded from a compact stz2 table.
    Decoded(Vec<u32>),
}

/// Where a track's chunk offsets lie in the moov: `count` stco (32-bit) or
/// co64 (`wide`, 64-bit) entries from `at`, read as they are rather than
/// decoded (ffmpeg's interleaving keeps one video sample a chunk: 8 bytes a
/// sample decoded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkOffsets {
    pub at: usize,
    pub count: usize,
    pub wide: bool,
}

/// One track's tables and what identifies it.
#[derive(Clone, Debug)]
pub struct Track {
    pub id: u32,
    pub enabled: bool,
    pub handler: FourCc,
    pub timescale: u32,
    pub sample_count: u64,
    /// Sample durations.
    pub stts: RunTable,
    /// ctts version and composition offsets.
    pub ctts: Option<(u8, RunTable)>,
    /// Sync samples, 1-based, increasing; None = every sample is a sync sample.
    pub sync: Option<Vec<u32>>,
    pub stsc: ChunkRunsAt,
    /// First sample (0-based) of each stsc run.
    stsc_first_sample: Vec<u64>,
    pub sizes: Sizes,
    /// The moov the stored sizes are read from.
    pub moov: MoovBytes,
    pub chunk_offsets: ChunkOffsets,
    /// Moov offset of the sdtp per-sample bytes.
    pub sdtp_at: Option<usize>,
    /// Whether each chunk starts at or after the end of the one before (then
    /// a sample range's bytes run from its first sample to its last).
    pub chunks_in_order: bool,
    pub edit: Edit,
    /// Moov offsets of the duration fields to rewrite: (tkhd at, width), (mdhd at, width).
    pub tkhd_duration: (usize, usize),
    pub mdhd_duration: (usize, usize),
}

impl Track {
    pub fn is_video(&self) -> bool {
        &self.handler == b"vide"
    }

    /// Decode time of sample `s` (`sample_count` gives the total duration).
    pub fn time_of(&self, s: u64) -> u64 {
        let start = self.stts.run_of_sample(s);
        match self.stts.get(start.index) {
            Some(run) => start.time + (s - start.sample) * u64::from(run.value),
            None => 0,
        }
    }

    pub fn duration(&self) -> u64 {
        self.time_of(self.sample_count)
    }

    /// The sample playing at decode time `t` (`sample_count` when `t` is past the end).
    pub fn sample_at(&self, t: u64) -> u64 {
        if t >= self.duration() {
            return self.sample_count;
        }
        let start = self.stts.run_of_time(t);
        let Some(run) = self.stts.get(start.index) else {
            return self.sample_count;
        };
        let delta = u64::from(run.value.max(1));
        let within = ((t - start.time) / delta).min(u64::from(run.count).saturating_sub(1));
        (start.sample + within).min(self.sample_count)
    }

    /// The first sample whose decode time is at or after `t`.
    pub fn sample_from(&self, t: u64) -> u64 {
        let s = self.sample_at(t);
        if s < self.sample_count && self.time_of(s) < t {
            s + 1
        } else {
            s
        }
    }

    /// The last sync sample at or before `s` (0-based).
    pub fn sync_at_or_before(&self, s: u64) -> u64 {
        match &self.sync {
            None => s,
            Some(sync) => {
                let after = sync.partition_point(|&n| u64::from(n) <= s + 1);
                after.checked_sub(1).map_or(0, |i| u64::from(sync[i]) - 1)
            }
        }
    }

    /// Index range in `sync` of the sync samples in `[s0, s1)`.
    pub fn sync_range(&self, s0: u64, s1: u64) -> std::ops::Range<usize> {
        match &self.sync {
            None => 0..0,
            Some(sync) => {
                sync.partition_point(|&n| u64::from(n) <= s0)
                    ..sync.partition_point(|&n| u64::from(n) <= s1)
            }
        }
    }

    /// Index of the stts (or ctts) run holding sample `s`, and the run's first sample.
    pub fn stts_run(&self, s: u64) -> (usize, u64) {
        let start = self.stts.run_of_sample(s);
        (start.index, start.sample)
    }

    pub fn ctts_run(&self, s: u64) -> (usize, u64) {
        let start = self
            .ctts
            .as_ref()
            .map(|(_, table)| table.run_of_sample(s))
            .unwrap_or_default();
        (start.index, start.sample)
    }

    /// The stsc entries as they lie in the moov.
    #[inline]
    fn stsc_entries(&self) -> &[[u8; 12]] {
        let ChunkRunsAt { at, count } = self.stsc;
        let bytes = count
            .checked_mul(12)
            .and_then(|len| self.moov.get(at..at.checked_add(len)?))
            .unwrap_or(&[]);
        bytes.as_chunks::<12>().0
    }

    /// Number of stsc runs.
    pub fn stsc_len(&self) -> usize {
        self.stsc_entries().len()
    }

    /// stsc run `run` (None past the table).
    #[inline]
    pub fn stsc_run(&self, run: usize) -> Option<ChunkRun> {
        self.stsc_entries().get(run).map(ChunkRun::of)
    }

    /// The stsc runs in table order.
    pub fn stsc_runs(&self) -> impl ExactSizeIterator<Item = ChunkRun> + '_ {
        self.stsc_entries().iter().map(ChunkRun::of)
    }

    /// The stsc run holding chunk `chunk` (0-based).
    pub fn stsc_run_of_chunk(&self, chunk: u64) -> usize {
        self.stsc_entries()
            .partition_point(|e| u64::from(ChunkRun::of(e).first_chunk) <= chunk + 1)
            .saturating_sub(1)
    }

    /// The chunk (0-based) holding sample `s`, and the chunk's first sample.
    pub fn chunk_of(&self, s: u64) -> (u64, u64) {
        let run = self
            .stsc_first_sample
            .partition_point(|&first| first <= s)
            .saturating_sub(1);
        let entry = self.stsc_run(run).unwrap_or_default();
        let per_chunk = u64::from(entry.samples_per_chunk.max(1));
        let run_first = self.stsc_first_sample.get(run).copied().unwrap_or(0);
        let chunks_in = s.saturating_sub(run_first) / per_chunk;
        let chunk = u64::from(entry.first_chunk).saturating_sub(1) + chunks_in;
        (chunk, run_first + chunks_in * per_chunk)
    }

    /// Samples in chunk `chunk` (0-based); 0 when stsc is empty, which the
    /// validation allows only for a track without samples.
    pub fn samples_in_chunk(&self, chunk: u64) -> u64 {
        self.stsc_run(self.stsc_run_of_chunk(chunk))
            .map_or(0, |run| u64::from(run.samples_per_chunk))
    }

    /// Size of sample `s` (0 past the table). Inlined: a segment's moof
    /// asks it for every sample.
    #[inline]
    pub fn size_of(&self, s: u64) -> u64 {
        let Ok(s) = usize::try_from(s) else {
            return 0;
        };
        match &self.sizes {
            Sizes::Constant(size) => u64::from(*size),
            // The moov goes on after the stsz entries: past them is not a size.
            Sizes::Stored { .. } if s as u64 >= self.sample_count => 0,
            Sizes::Stored { at } => s
                .checked_mul(4)
                .and_then(|i| self.moov.get(at + i..at + i + 4))
                .and_then(|entry| entry.try_into().ok())
                .map_or(0, |entry| u64::from(u32::from_be_bytes(entry))),
            Sizes::Decoded(sizes) => sizes.get(s).map_or(0, |&n| u64::from(n)),
        }
    }

    /// Total size of samples `range` (those past the table count 0).
    /// Inlined: the index calls it for every chunk, and files interleaved
    /// by ffmpeg keep one video sample a chunk.
    #[inline]
    pub fn sizes_sum(&self, range: std::ops::Range<u64>) -> u64 {
        match &self.sizes {
            Sizes::Constant(size) => (range.end.saturating_sub(range.start)) * u64::from(*size),
            // Wrapping adds (which cannot wrap: at most 20 million 32-bit
            // sizes) keep the sum free of overflow checks, so it vectorises.
            Sizes::Stored { .. } => self.stored_sizes(range).iter().fold(0u64, |sum, &e| {
                sum.wrapping_add(u64::from(u32::from_be_bytes(e)))
            }),
            Sizes::Decoded(sizes) => {
                let (from, to) = (range.start as usize, range.end as usize);
                sizes
                    .get(from..to.min(sizes.len()))
                    .unwrap_or(&[])
                    .iter()
                    .fold(0u64, |sum, &n| sum.wrapping_add(u64::from(n)))
            }
        }
    }

    pub fn chunk_count(&self) -> usize {
        self.chunk_offsets.count
    }

    /// File offset of chunk `chunk` (0-based; 0 past the table).
    #[inline]
    pub fn chunk_offset(&self, chunk: usize) -> u64 {
        self.chunk_offsets_in(chunk..chunk.saturating_add(1))
            .next()
            .unwrap_or(0)
    }

    /// File offsets of chunks `range` (those past the table left out).
    #[inline]
    pub fn chunk_offsets_in(
        &self,
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = u64> + '_ {
        let ChunkOffsets { at, count, wide } = self.chunk_offsets;
        let width = if wide { 8 } else { 4 };
        let (from, to) = (
            range.start.min(count),
            range.end.min(count).max(range.start.min(count)),
        );
        let bytes = self
            .moov
            .get(at + from * width..at + to * width)
            .unwrap_or(&[]);
        let (narrow, wide_entries) = if wide {
            (&[][..], bytes.as_chunks::<8>().0)
        } else {
            (bytes.as_chunks::<4>().0, &[][..])
        };
        narrow
            .iter()
            .map(|&e| u64::from(u32::from_be_bytes(e)))
            .chain(wide_entries.iter().map(|&e| u64::from_be_bytes(e)))
    }

    /// The stsz entries of samples `range` as they lie in the moov (none
    /// past the table, or for sizes not stored that way).
    #[inline]
    pub(super) fn stored_sizes(&self, range: std::ops::Range<u64>) -> &[[u8; 4]] {
        let bytes = match self.sizes {
            Sizes::Stored { at } => usize::try_from(range.start)
                .ok()
                .zip(usize::try_from(range.end.min(self.sample_count)).ok())
                .and_then(|(from, to)| {
                    let from = from.checked_mul(4)?.checked_add(at)?;
                    let to = to.checked_mul(4)?.checked_add(at)?;
                    self.moov.get(from..to)
                }),
            _ => None,
        };
        bytes.unwrap_or(&[]).as_chunks().0
    }

    /// Byte offset of sample `s` in the file.
    pub fn offset_of(&self, s: u64) -> u64 {
        let (chunk, first) = self.chunk_of(s);
        let base = self.chunk_offset(chunk as usize);
        base + self.sizes_sum(first..s)
    }

    /// The bytes of the file that hold samples `[first, end)`: lowest offset
    /// and end of the highest sample. O(1) when chunks are stored in order (the
    /// normal case), else a walk over the chunks in between.
    pub fn byte_range(&self, first: u64, end: u64) -> (u64, u64) {
        let last = end - 1;
        if self.chunks_in_order {
            return (
                self.offset_of(first),
                self.offset_of(last) + self.size_of(last),
            );
        }
        let (mut low, mut high) = (u64::MAX, 0);
        let (mut s, (c1, _)) = (first, self.chunk_of(last));
        while s < end {
            let (chunk, chunk_first) = self.chunk_of(s);
            let chunk_end = (chunk_first + self.samples_in_chunk(chunk)).min(end);
            let start = self.offset_of(s);
            let bytes: u64 = (s..chunk_end).map(|n| self.size_of(n)).sum();
            low = low.min(start);
            high = high.max(start + bytes);
            if chunk >= c1 {
                break;
            }
            s = chunk_end;
        }
        (low, high)
    }

    /// Memory held, for the cache's budget.
    pub fn weight(&self) -> usize {
        // Stored sizes are the moov's bytes, counted once by the index.
        let sizes = match &self.sizes {
            Sizes::Decoded(sizes) => sizes.capacity() * 4,
            Sizes::Constant(_) | Sizes::Stored { .. } => 0,
        };
        std::mem::size_of::<Track>()
            + sizes
            + self.stts.weight()
            + self.ctts.as_ref().map_or(0, |(_, runs)| runs.weight())
            + self.sync.as_ref().map_or(0, |s| s.capacity() * 4)
            + self.stsc_first_sample.capacity() * 8
    }
}

/// The run table of a stts or ctts box, read where it lies.
fn run_table(node: &Node, moov: &MoovBytes, values: Values) -> Result<(RunTable, u8), MediaError> {
    let (mut f, version) = full_box(node, moov)?;
    let count = f.count(8)?;
    let at = node.header.payload_offset() as usize + f.position();
    Ok((RunTable::new(moov, at, count, values)?, version))
}

fn full_box<'a>(node: &Node, moov: &'a [u8]) -> Result<(Fields<'a>, u8), MediaError> {
    let mut f = Fields::new(node.payload(moov), node.kind());
    let version = f.u8()?;
    f.skip(3)?;
    Ok((f, version))
}

/// Decodes and checks the tables of one `trak`. `file_size` bounds the chunk offsets.
pub fn parse_track(trak: &Node, moov: &MoovBytes) -> Result<Track, MediaError> {
    let missing = |what: &str| {
        broken(format!(
            "trak at moov offset {}: no {what} box",
            trak.header.offset
        ))
    };
    let tkhd = trak.child(b"tkhd").ok_or_else(|| missing("tkhd"))?;
    let (enabled, id, tkhd_at, tkhd_width) = track_header(tkhd.payload(moov))?;
    let edit = match trak.child(b"edts") {
        Some(edts) => parse_edit(edts, moov)?,
        None => Edit::None,
    };
    let mdia = trak.child(b"mdia").ok_or_else(|| missing("mdia"))?;
    let mdhd = mdia.child(b"mdhd").ok_or_else(|| missing("mdhd"))?;
    let (timescale, _, mdhd_at, mdhd_width) = header_times(mdhd.payload(moov), *b"mdhd")?;
    if timescale == 0 {
        return Err(broken(format!("track {id}: mdhd timescale is 0")));
    }
    let handler = match mdia.child(b"hdlr") {
        Some(hdlr) => {
            let payload = hdlr.payload(moov);
            let mut kind = [0u8; 4];
            kind.copy_from_slice(
                payload
                    .get(8..12)
                    .ok_or_else(|| broken("hdlr box is too short"))?,
            );
            kind
        }
        None => *b"    ",
    };
    let stbl = mdia
        .child(b"minf")
        .and_then(|m| m.child(b"stbl"))
        .ok_or_else(|| missing("minf/stbl"))?;
    let table = |kind: &[u8; 4]| {
        stbl.child(kind)
            .ok_or_else(|| broken(format!("track {id}: no {} box", name(*kind))))
    };

    let (stts, _) = run_table(table(b"stts")?, moov, Values::Durations)
        .map_err(|e| broken(format!("track {id}: {e}")))?;
    let ctts = match stbl.child(b"ctts") {
        Some(node) => {
            let (runs, version) = run_table(node, moov, Values::Offsets)?;
            Some((version, runs))
        }
        None => None,
    };
    let sync = match stbl.child(b"stss") {
        Some(node) => {
            let (mut f, _) = full_box(node, moov)?;
            Some(f.entries(4)?.map(|e| be32(e, 0)).collect())
        }
        None => None,
    };
    let stsc_node = table(b"stsc")?;
    let (mut f, _) = full_box(stsc_node, moov)?;
    let stsc = ChunkRunsAt {
        count: f.count(12)?,
        at: stsc_node.header.payload_offset() as usize + f.position(),
    };
    let (sizes, sample_count) = if let Some(stsz) = stbl.child(b"stsz") {
        let (mut f, _) = full_box(stsz, moov)?;
        let constant = f.u32()?;
        let entries_at = stsz.header.payload_offset() as usize + 12;
        if constant != 0 {
            (Sizes::Constant(constant), u64::from(f.u32()?))
        } else {
            let count = f.entries(4)?.len();
            (Sizes::Stored { at: entries_at }, count as u64)
        }
    } else if let Some(stz2) = stbl.child(b"stz2") {
        let (mut f, _) = full_box(stz2, moov)?;
        f.skip(3)?;
        let field_bits = f.u8()?;
        let count = f.u32()? as usize;
        let bytes_needed = match field_bits {
            4 => count.div_ceil(2),
            8 => count,
            16 => count * 2,
            _ => {
                return Err(broken(format!(
                    "track {id}: stz2 field size {field_bits} is not 4, 8 or 16"
                )));
            }
        };
        let data = f.take(bytes_needed)?;
        let sizes = (0..count)
            .map(|i| match field_bits {
                4 => u32::from(if i % 2 == 0 {
                    data[i / 2] >> 4
                } else {
                    data[i / 2] & 0x0f
                }),
                8 => u32::from(data[i]),
                _ => u32::from(u16::from_be_bytes([data[2 * i], data[2 * i + 1]])),
            })
            .collect();
        (Sizes::Decoded(sizes), count as u64)
    } else {
        return Err(broken(format!("track {id}: no stsz or stz2 box")));
    };
    let chunk_offsets = if let Some(node) = stbl.child(b"stco").or_else(|| stbl.child(b"co64")) {
        let wide = &node.kind() == b"co64";
        let (mut f, _) = full_box(node, moov)?;
        let count = f.count(if wide { 8 } else { 4 })?;
        ChunkOffsets {
            at: node.header.payload_offset() as usize + f.position(),
            count,
            wide,
        }
    } else {
        return Err(broken(format!("track {id}: no stco or co64 box")));
    };
    let sdtp_at = stbl
        .child(b"sdtp")
        .filter(|node| node.header.size >= node.header.header_len + 4 + sample_count)
        .map(|node| node.header.payload_offset() as usize + 4);

    let mut track = Track {
        id,
        enabled,
        handler,
        timescale,
        sample_count,
        stts,
        ctts,
        sync,
        stsc,
        stsc_first_sample: Vec::new(),
        sizes,
        moov: moov.clone(),
        chunk_offsets,
        sdtp_at,
        chunks_in_order: true,
        edit,
        tkhd_duration: (tkhd.header.payload_offset() as usize + tkhd_at, tkhd_width),
        mdhd_duration: (mdhd.header.payload_offset() as usize + mdhd_at, mdhd_width),
    };
    index_and_check(&mut track)?;
    Ok(track)
}

/// Builds the cumulative lookups and checks that the tables agree with each
/// other, so that every later lookup stays in bounds. Whether the samples
/// lie inside the file is checked by the walk that builds the timeline
/// ([`Track::walk_steps`]), which visits every chunk anyway.
fn index_and_check(track: &mut Track) -> Result<(), MediaError> {
    let id = track.id;
    let covered = track.stts.end().sample;
    if covered < track.sample_count {
        return Err(broken(format!(
            "track {id}: stts covers {covered} samples, stsz has {}",
            track.sample_count
        )));
    }
    if let Some((_, runs)) = &track.ctts
        && runs.end().sample < track.sample_count
    {
        // A short ctts cannot be cut consistently; presentation falls back to decode order.
        track.ctts = None;
    }
    let sync_ok = track.sync.as_ref().is_none_or(|sync| {
        sync.windows(2).all(|w| w[0] < w[1]) && sync.first().is_none_or(|&n| n > 0)
    });
    if !sync_ok {
        return Err(broken(format!(
            "track {id}: stss sample numbers are not increasing from 1"
        )));
    }
    let chunks = track.chunk_count() as u64;
    let mut sample = 0u64;
    // Sized once: grown by doubling, an interleaved film's lookup moves
    // and faults in half as much again as it holds.
    let mut first_samples = Vec::with_capacity(track.stsc_len());
    let mut runs = track.stsc_runs().enumerate().peekable();
    while let Some((i, run)) = runs.next() {
        let first = u64::from(run.first_chunk);
        let next = runs
            .peek()
            .map_or(chunks + 1, |(_, r)| u64::from(r.first_chunk));
        if first == 0 || first > chunks || next <= first || (i == 0 && first != 1) {
            return Err(broken(format!(
                "track {id}: stsc entry {i} has first chunk {first} out of order"
            )));
        }
        if run.samples_per_chunk == 0 {
            return Err(broken(format!(
                "track {id}: stsc entry {i} has 0 samples per chunk"
            )));
        }
        first_samples.push(sample);
        sample += (next - first) * u64::from(run.samples_per_chunk);
    }
    drop(runs);
    track.stsc_first_sample = first_samples;
    if sample < track.sample_count {
        return Err(broken(format!(
            "track {id}: stsc covers {sample} samples, stsz has {}",
            track.sample_count
        )));
    }
    Ok(())
}

#[path = "table_walks.rs"]
mod walks;

#[cfg(test)]
#[path = "tables_tests.rs"]
mod tests;

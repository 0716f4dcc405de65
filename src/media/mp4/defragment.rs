//! A fragmented file seen as a regular one: the samples of the moov's own
//! tables and of every fragment after it, written as the sample tables of a
//! moov held in memory (without mvex), so the index, the seek planner and
//! the packager work on it unchanged. The samples' offsets stay those of
//! the original file, so bodies are still its bytes sent with sendfile; the
//! moof boxes between them are bytes no table points at.

use super::box_writer::{close, open, open_full, put32, put64};
use super::boxes::{MoovBytes, Node};
use super::fragments::{self, Sample, TrackFragment};
use super::tables::{self, Track};
use crate::media::{MediaError, broken};

/// The moov of a fragmented file rewritten with every sample in its tables,
/// and what was left out of it (for the log).
pub struct Defragmented {
    pub moov: Vec<u8>,
    pub notes: Vec<String>,
}

/// Reads the moof boxes at `fragments_at` (offset, size), whose bytes are
/// `moofs` one after the other (the moov is `moov`, parsed as `tree`), into
/// a regular moov. An encrypted fragment is `Unsupported`; a damaged
/// one ends the file there (logged), unless no sample came before it.
pub fn defragment(
    file_size: u64,
    fragments_at: &[(u64, u64)],
    moofs: &[u8],
    tree: &Node,
    moov: &MoovBytes,
    samples_limit: u64,
) -> Result<Defragmented, MediaError> {
    let defaults = match tree.child(b"mvex") {
        Some(mvex) => fragments::track_defaults(mvex, moov)?,
        None => Vec::new(),
    };
    let mut tables = Vec::new();
    for trak in tree.children.iter().filter(|c| &c.kind() == b"trak") {
        let track = tables::parse_track(trak, moov)?;
        tables.push(SampleTables::from_track(&track));
    }
    let mut notes = Vec::new();
    let mut next_moof = 0usize;
    for &(offset, size) in fragments_at {
        let moof = moofs.get(next_moof..next_moof.saturating_add(size as usize));
        next_moof = next_moof.saturating_add(size as usize);
        let read = moof
            .ok_or_else(|| broken(format!("moof at offset {offset}: its bytes were not read")))
            .and_then(|moof| fragments::read_moof(moof, offset, &defaults))
            .and_then(|found| check(found, &tables, file_size, samples_limit));
        match read {
            Ok(found) => {
                for fragment in found {
                    if let Some(table) = tables.iter_mut().find(|t| t.track_id == fragment.track_id)
                    {
                        table.append(&fragment);
                    }
                }
            }
            Err(MediaError::Unsupported(reason)) => return Err(MediaError::Unsupported(reason)),
            Err(e) if tables.iter().all(|t| t.sizes.is_empty()) => return Err(e),
            Err(e) => {
                notes.push(format!(
                    "{e}; the fragments from offset {offset} on are left out"
                ));
                break;
            }
        }
    }
    let mut out = Vec::with_capacity(moov.len() + tables.iter().map(|t| t.weight()).sum::<usize>());
    write_node(tree, moov, &mut tables, None, &mut out)?;
    Ok(Defragmented { moov: out, notes })
}

/// Checks a moof's track fragments before any is kept: every track known,
/// every sample inside the file, no track past `samples_limit` samples.
fn check(
    found: Vec<TrackFragment>,
    tables: &[SampleTables],
    file_size: u64,
    samples_limit: u64,
) -> Result<Vec<TrackFragment>, MediaError> {
    for fragment in &found {
        let table = tables
            .iter()
            .find(|t| t.track_id == fragment.track_id)
            .ok_or_else(|| {
                broken(format!(
                    "a fragment names track {}, which the moov has no trak for",
                    fragment.track_id
                ))
            })?;
        if let Some(sample) = fragment
            .samples
            .iter()
            .find(|s| s.offset + u64::from(s.size) > file_size)
        {
            return Err(broken(format!(
                "a sample of track {} at offset {} runs past the end of the file ({file_size} bytes)",
                fragment.track_id, sample.offset
            )));
        }
        if table.sizes.len() as u64 + fragment.samples.len() as u64 > samples_limit {
            return Err(broken(format!(
                "track {} has more than the {samples_limit} samples this server indexes",
                fragment.track_id
            )));
        }
    }
    Ok(found)
}

/// A track's samples as the tables of a regular moov, built one sample at
/// a time: runs of equal durations and composition offsets, sync sample
/// numbers, sizes, and chunks (a run of samples that follow each other in
/// the file with one description).
struct SampleTables {
    track_id: u32,
    /// stts: (sample count, duration).
    durations: Vec<(u32, u32)>,
    /// ctts: (sample count, offset), written when any offset is not 0.
    compositions: Vec<(u32, i32)>,
    /// stss: 1-based numbers of the sync samples.
    sync: Vec<u32>,
    sizes: Vec<u32>,
    chunk_offsets: Vec<u64>,
    /// stsc: (first chunk, samples per chunk, description).
    chunk_runs: Vec<(u32, u32, u32)>,
    /// The chunk being filled: where its next sample would start, its
    /// sample count and description.
    chunk: Option<(u64, u32, u32)>,
    /// Decode time after the last sample.
    decode_end: u64,
}

impl SampleTables {
    /// The tables of `track` as they are (a fragmented file may keep its
    /// first samples in the moov).
    fn from_track(track: &Track) -> SampleTables {
        let mut tables = SampleTables {
            track_id: track.id,
            durations: Vec::new(),
            compositions: Vec::new(),
            sync: Vec::new(),
            sizes: Vec::with_capacity(track.sample_count as usize),
            chunk_offsets: Vec::new(),
            chunk_runs: Vec::new(),
            chunk: None,
            decode_end: 0,
        };
        let mut compositions = track.composition_offsets_from(0);
        for s in 0..track.sample_count {
            let (chunk, _) = track.chunk_of(s);
            let description = track
                .stsc_run(track.stsc_run_of_chunk(chunk))
                .map_or(1, |run| run.description);
            tables.push(&Sample {
                duration: (track.time_of(s + 1) - track.time_of(s)) as u32,
                size: track.size_of(s) as u32,
                offset: track.offset_of(s),
                composition: compositions.next().unwrap_or(0) as i32,
                sync: track.sync_at_or_before(s) == s,
                description,
            });
        }
        tables
    }

    /// Adds a moof's samples of this track. A stated decode time past the
    /// end of the samples so far (a gap) lengthens the last sample, as a
    /// player holds it; one before it (an overlap) is not honoured.
    fn append(&mut self, fragment: &TrackFragment) {
        if let Some(time) = fragment.decode_time
            && time > self.decode_end
            && !self.sizes.is_empty()
        {
            let gap = time - self.decode_end;
            if let Some(last) = self.durations.last_mut()
                && let Ok(longer) = u32::try_from(u64::from(last.1) + gap)
            {
                if last.0 == 1 {
                    last.1 = longer;
                } else {
                    last.0 -= 1;
                    self.durations.push((1, longer));
                }
                self.decode_end = time;
            }
        }
        for sample in &fragment.samples {
            self.push(sample);
        }
    }

    fn push(&mut self, sample: &Sample) {
        add_to_runs(&mut self.durations, sample.duration);
        add_to_runs(&mut self.compositions, sample.composition);
        self.sizes.push(sample.size);
        let number = self.sizes.len() as u32;
        if sample.sync {
            self.sync.push(number);
        }
        let end = sample.offset + u64::from(sample.size);
        match &mut self.chunk {
            Some((next, count, description))
                if *next == sample.offset && *description == sample.description =>
            {
                *next = end;
                *count += 1;
            }
            _ => {
                self.close_chunk();
                self.chunk_offsets.push(sample.offset);
                self.chunk = Some((end, 1, sample.description));
            }
        }
        self.decode_end += u64::from(sample.duration);
    }

    /// Ends the chunk being filled: a new stsc run unless it continues the last.
    fn close_chunk(&mut self) {
        let Some((_, count, description)) = self.chunk.take() else {
            return;
        };
        let same = self
            .chunk_runs
            .last()
            .is_some_and(|&(_, per_chunk, d)| per_chunk == count && d == description);
        if !same {
            self.chunk_runs
                .push((self.chunk_offsets.len() as u32, count, description));
        }
    }

    fn weight(&self) -> usize {
        self.durations.len() * 8
            + self.compositions.len() * 8
            + self.sync.len() * 4
            + self.sizes.len() * 4
            + self.chunk_offsets.len() * 8
            + self.chunk_runs.len() * 12
            + 256
    }

    /// Writes stts, ctts, stss, stsc, stsz and stco (co64 past 4 GiB) after
    /// the stsd of the original stbl.
    fn write(&mut self, stsd: Option<&[u8]>, out: &mut Vec<u8>) {
        self.close_chunk();
        if let Some(stsd) = stsd {
            out.extend_from_slice(stsd);
        }
        let stts = open_full(out, b"stts", 0, 0);
        put32(out, self.durations.len() as u32);
        for &(count, duration) in &self.durations {
            put32(out, count);
            put32(out, duration);
        }
        close(out, stts);
        if self.compositions.iter().any(|&(_, offset)| offset != 0) {
            let negative = self.compositions.iter().any(|&(_, offset)| offset < 0);
            let ctts = open_full(out, b"ctts", u8::from(negative), 0);
            put32(out, self.compositions.len() as u32);
            for &(count, offset) in &self.compositions {
                put32(out, count);
                put32(out, offset as u32);
            }
            close(out, ctts);
        }
        if self.sync.len() < self.sizes.len() {
            let stss = open_full(out, b"stss", 0, 0);
            put32(out, self.sync.len() as u32);
            for &number in &self.sync {
                put32(out, number);
            }
            close(out, stss);
        }
        let stsc = open_full(out, b"stsc", 0, 0);
        put32(out, self.chunk_runs.len() as u32);
        for &(first, per_chunk, description) in &self.chunk_runs {
            put32(out, first);
            put32(out, per_chunk);
            put32(out, description);
        }
        close(out, stsc);
        let stsz = open_full(out, b"stsz", 0, 0);
        put32(out, 0);
        put32(out, self.sizes.len() as u32);
        for &size in &self.sizes {
            put32(out, size);
        }
        close(out, stsz);
        let wide = self
            .chunk_offsets
            .last()
            .is_some_and(|&o| o > u64::from(u32::MAX));
        let stco = open_full(out, if wide { b"co64" } else { b"stco" }, 0, 0);
        put32(out, self.chunk_offsets.len() as u32);
        for &offset in &self.chunk_offsets {
            if wide {
                put64(out, offset);
            } else {
                put32(out, offset as u32);
            }
        }
        close(out, stco);
    }
}

/// Adds one sample's value to run-length `runs`.
fn add_to_runs<T: PartialEq + Copy>(runs: &mut Vec<(u32, T)>, value: T) {
    match runs.last_mut() {
        Some((count, last)) if *last == value && *count < u32::MAX => *count += 1,
        _ => runs.push((1, value)),
    }
}

/// Writes `node` of the original moov with every stbl rebuilt from
/// `tables` and the mvex left out; `track_id` is that of the trak it is in.
fn write_node(
    node: &Node,
    moov: &[u8],
    tables: &mut [SampleTables],
    track_id: Option<u32>,
    out: &mut Vec<u8>,
) -> Result<(), MediaError> {
    match &node.kind() {
        b"mvex" => {}
        kind @ (b"moov" | b"trak" | b"mdia" | b"minf") => {
            let track_id = match (kind, node.child(b"tkhd")) {
                (b"trak", Some(tkhd)) => Some(tables::track_header(tkhd.payload(moov))?.1),
                _ => track_id,
            };
            let at = open(out, kind);
            for child in &node.children {
                write_node(child, moov, tables, track_id, out)?;
            }
            close(out, at);
        }
        b"stbl" => {
            let table = tables
                .iter_mut()
                .find(|t| Some(t.track_id) == track_id)
                .ok_or_else(|| broken("an stbl outside a trak"))?;
            let at = open(out, b"stbl");
            table.write(node.child(b"stsd").map(|stsd| stsd.bytes(moov)), out);
            close(out, at);
        }
        _ => out.extend_from_slice(node.bytes(moov)),
    }
    Ok(())
}

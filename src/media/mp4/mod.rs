//! MP4 / MOV / M4V / M4A / 3GP / F4V: the index of a file (its moov and
//! decoded sample tables) and seeked responses with a rewritten, fast-start
//! header.

pub mod box_writer;
pub mod boxes;
mod defragment;
pub mod fragment_map;
pub mod fragments;
pub mod header;
pub mod limits;
mod moov_writer;
pub mod runs;
pub mod seek;
pub mod tables;
pub mod top_level;

use std::rc::Rc;

pub use header::Header;
pub use seek::prepare;

use super::timeline::{self, TimePoint};
use super::{MediaError, ReadAt, Timeline, broken};
use boxes::Node;
pub use limits::IndexLimits;
use tables::Track;

/// Everything a seek needs to know about an MP4 file.
#[derive(Debug)]
pub struct Mp4Index {
    /// The original moov box, whole (its tracks read their sizes from it).
    pub moov: boxes::MoovBytes,
    pub tree: Node,
    pub ftyp: Option<Vec<u8>>,
    pub movie_timescale: u32,
    /// Moov offset and width of mvhd's duration field.
    pub mvhd_duration: (usize, usize),
    pub tracks: Vec<Track>,
    /// Position in `tree.children` of each track's trak box.
    pub trak_positions: Vec<usize>,
    /// The track whose keyframes decide where a seek starts.
    pub reference: usize,
    /// Reference-track keyframe times and file offsets, for byte seeks.
    pub points: Rc<[TimePoint]>,
    /// What a player needs: for each time, the file offset that holds every
    /// sample of every track decoded by then.
    pub timeline: Rc<[TimePoint]>,
    /// Where the moov box starts, and where the first sample starts: a plain
    /// file can be paced from `media_start` on only when the moov comes first.
    pub moov_offset: u64,
    pub media_start: u64,
    /// Longest track, in seconds.
    pub duration: f64,
    pub file_size: u64,
    /// Why seeks are refused for this file (compressed moov, encrypted
    /// fragments), if they are.
    pub unsupported: Option<String>,
    /// What indexing left out of a damaged or cut-short file, for the log.
    pub notes: Vec<String>,
}

impl Mp4Index {
    /// Memory held, for the cache's budget.
    pub fn weight(&self) -> usize {
        std::mem::size_of::<Mp4Index>()
            + self.moov.capacity()
            + self.tracks.iter().map(Track::weight).sum::<usize>()
            + (self.points.len() + self.timeline.len()) * std::mem::size_of::<TimePoint>()
            + self.tree.children.len() * 256
    }
}

impl Mp4Index {
    /// The timeline of the whole file for a plain (unseeked) request, and the
    /// first body offset from which it is honest: 0 when the moov comes before
    /// the samples (fast start); else the first sample's offset, because a
    /// player needs the moov at the end before it can play anything, while a
    /// Range request inside the samples comes from a player that has it.
    pub fn whole_file_timeline(&self) -> Option<(Timeline, u64)> {
        if self.timeline.is_empty() {
            return None;
        }
        let honest_from = if self.moov_offset < self.media_start {
            0
        } else {
            self.media_start
        };
        let timeline = Timeline::new(
            Rc::clone(&self.timeline),
            0.0,
            self.duration,
            0,
            0,
            self.file_size,
        );
        Some((timeline, honest_from))
    }
}

/// Builds the index of an MP4 file: the moov (wherever it is) and every track's tables.
pub fn index<R: ReadAt + ?Sized>(source: &R) -> Result<Mp4Index, MediaError> {
    index_within(source, &IndexLimits::DEFAULT)
}

/// [`index`] under `limits` (the cache's: see [`IndexLimits::for_cache`]).
pub fn index_within<R: ReadAt + ?Sized>(
    source: &R,
    limits: &IndexLimits,
) -> Result<Mp4Index, MediaError> {
    let file_size = source.size();
    let top = top_level::scan_top_level_within(source, limits)?;
    let mut notes = Vec::new();
    if let Some(cut) = top.cut_at {
        notes.push(format!(
            "the box at offset {cut} runs past the end of the file or is damaged (cut short?): it and what follows are left out"
        ));
    }
    if let Some(capped) = top.fragments_capped_at {
        notes.push(format!(
            "the fragments from offset {capped} on are left out: more than {} fragments or {} MB of moof boxes (options.cache raises both)",
            limits.fragments,
            limits.moov_bytes >> 20
        ));
    }
    let original = boxes::MoovBytes::new(top.moov);
    let original_tree = boxes::parse_tree(&original, top.moov_offset)?;
    let mut unsupported = encrypted_entry(&original_tree, &original).map(|kind| {
        format!(
            "encrypted samples (sample entry '{}') cannot be served",
            boxes::name(kind)
        )
    });
    // A fragmented file is indexed as the regular file it stands for.
    let fragmented = original_tree.child(b"mvex").is_some() || !top.fragments.is_empty();
    let (moov, tree) = if fragmented && unsupported.is_none() {
        match defragment::defragment(
            file_size,
            &top.fragments,
            &top.moofs,
            &original_tree,
            &original,
            limits.track_samples,
        ) {
            Ok(defragmented) => {
                notes.extend(defragmented.notes);
                let moov = boxes::MoovBytes::new(defragmented.moov);
                let tree = boxes::parse_tree(&moov, top.moov_offset)?;
                (moov, tree)
            }
            Err(MediaError::Unsupported(reason)) => {
                unsupported = Some(reason);
                (original, original_tree)
            }
            Err(e) => return Err(e),
        }
    } else {
        (original, original_tree)
    };
    if tree.child(b"cmov").is_some() {
        unsupported = Some("a compressed moov (cmov) cannot be seeked".to_string());
    }
    let mvhd = tree
        .child(b"mvhd")
        .ok_or_else(|| broken(format!("moov at offset {}: no mvhd box", top.moov_offset)))?;
    let (movie_timescale, _, at, width) = tables::header_times(mvhd.payload(&moov), *b"mvhd")?;
    if movie_timescale == 0 {
        return Err(broken("mvhd timescale is 0"));
    }
    let mvhd_duration = (mvhd.header.payload_offset() as usize + at, width);
    let mut tracks = Vec::new();
    let mut trak_positions = Vec::new();
    for (position, child) in tree.children.iter().enumerate() {
        if &child.kind() == b"trak" {
            if unsupported.is_some()
                && child
                    .child(b"mdia")
                    .and_then(|m| m.child(b"minf"))
                    .is_none()
            {
                continue;
            }
            match tables::parse_track(child, &moov) {
                Ok(track) => {
                    tracks.push(track);
                    trak_positions.push(position);
                }
                // A fragmented file's tracks have empty tables; that is not damage.
                Err(_) if unsupported.is_some() => {}
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(track) = tracks
        .iter()
        .find(|t| t.sample_count > limits.track_samples)
    {
        return Err(broken(format!(
            "track {} declares {} samples, more than the {} this server indexes (options.cache raises it)",
            track.id, track.sample_count, limits.track_samples
        )));
    }
    // The timeline's walk over every sample also checks that the samples lie
    // inside the file. In a file that cannot be seeked anyway, a track that
    // fails it is left out, as any damaged track of such a file is. With no
    // samples at all there is nothing to seek in (see `reference` below).
    let timeline = loop {
        if tracks.iter().all(|t| t.sample_count == 0) {
            break timeline::monotonic([]);
        }
        match needed_bytes(&mut tracks, file_size) {
            Ok(timeline) => break timeline,
            Err((position, _)) if unsupported.is_some() => {
                tracks.remove(position);
                trak_positions.remove(position);
            }
            Err((_, e)) => return Err(e),
        }
    };
    let reference = tracks
        .iter()
        .position(|t| t.enabled && t.is_video() && t.sample_count > 0)
        .or_else(|| tracks.iter().position(|t| t.sample_count > 0));
    let (reference, points) = match reference {
        Some(reference) => (reference, reference_points(&tracks[reference], file_size)),
        None => {
            // Nothing to seek in; the file is still served whole.
            unsupported
                .get_or_insert_with(|| "the file has no track with samples to seek in".to_string());
            (0, timeline::monotonic([]))
        }
    };
    let media_start = tracks
        .iter()
        .filter(|t| t.sample_count > 0)
        .map(|t| t.offset_of(0))
        .min()
        .unwrap_or(file_size);
    let duration = tracks
        .iter()
        .map(|t| t.duration() as f64 / f64::from(t.timescale))
        .fold(0.0, f64::max);
    Ok(Mp4Index {
        moov,
        tree,
        ftyp: top.ftyp,
        movie_timescale,
        mvhd_duration,
        tracks,
        trak_positions,
        reference,
        points,
        timeline,
        moov_offset: top.moov_offset,
        media_start,
        duration,
        file_size,
        unsupported,
        notes,
    })
}

/// The kind of the first encrypted sample entry (encv, enca: Common
/// Encryption) of any track, whose samples cannot be cut without the keys.
fn encrypted_entry(tree: &Node, moov: &[u8]) -> Option<boxes::FourCc> {
    tree.children
        .iter()
        .filter(|c| &c.kind() == b"trak")
        .filter_map(|trak| {
            let stbl = trak.child(b"mdia")?.child(b"minf")?.child(b"stbl")?;
            let entry = stbl.child(b"stsd")?.payload(moov).get(12..16)?;
            let kind: boxes::FourCc = entry.try_into().ok()?;
            matches!(&kind, b"encv" | b"enca").then_some(kind)
        })
        .next()
}

/// The honest timeline of a file from every sample of every track (see
/// [`timeline::from_sample_ends`]); each track contributes one entry per step
/// of time that holds samples, so memory follows the duration, not the
/// sample count. The same walk checks each track's samples against the
/// file and notes whether its chunks are in order; the error comes with
/// the position of the first track that fails.
fn needed_bytes(
    tracks: &mut [Track],
    file_size: u64,
) -> Result<Rc<[TimePoint]>, (usize, MediaError)> {
    let seconds = |track: &Track| track.duration() as f64 / f64::from(track.timescale);
    let duration = tracks.iter().map(seconds).fold(0.0, f64::max);
    let step = timeline::timeline_step(duration);
    let entries = tracks
        .iter()
        .map(|t| t.sample_count.min((seconds(t) / step) as u64 + 2))
        .fold(0u64, u64::saturating_add);
    let mut reach = timeline::StepReach::new(duration, entries);
    for (position, track) in tracks.iter_mut().enumerate() {
        // parse_track refuses a timescale of 0.
        let step_ticks = reach.step() * f64::from(track.timescale);
        track.chunks_in_order = track
            .walk_steps(step_ticks, file_size, |step, end| reach.add(step, end))
            .map_err(|e| (position, e))?;
    }
    Ok(reach.finish())
}

/// The reference track's keyframes (or, without stss, about one sample per
/// second) as (time, file offset), ending at the file's end.
fn reference_points(track: &Track, file_size: u64) -> Rc<[TimePoint]> {
    let timescale = f64::from(track.timescale);
    // A sample's offset sums the sizes before it in its chunk: the points
    // come in sample order, so each is found from the one before in the
    // same chunk, and a chunk of a million samples is walked once, not once
    // a keyframe.
    let mut cursor: Option<(u64, u64, u64)> = None;
    let mut point = |s: u64, time: u64| {
        let (chunk, _) = track.chunk_of(s);
        let offset = match cursor {
            Some((c, at, offset)) if c == chunk && at <= s => offset + track.sizes_sum(at..s),
            _ => track.offset_of(s),
        };
        cursor = Some((chunk, s, offset));
        TimePoint {
            seconds: time as f64 / timescale,
            offset,
        }
    };
    let mut points = Vec::new();
    match &track.sync {
        Some(sync) => {
            for s in sync.iter().map(|&n| u64::from(n) - 1) {
                if s < track.sample_count {
                    points.push(point(s, track.time_of(s)));
                }
            }
        }
        None => {
            // About one point a second, the decode times summed as walked.
            let (mut time, mut next_tick) = (0u64, 0u64);
            for (s, duration) in (0..track.sample_count).zip(track.durations_from(0)) {
                if time >= next_tick {
                    points.push(point(s, time));
                    next_tick =
                        (time / u64::from(track.timescale) + 1) * u64::from(track.timescale);
                }
                time = time.saturating_add(u64::from(duration));
            }
        }
    }
    let last = track.sample_count - 1;
    let end = (track.offset_of(last) + track.size_of(last)).min(file_size);
    points.push(TimePoint {
        seconds: track.duration() as f64 / timescale,
        offset: end,
    });
    timeline::monotonic(points)
}

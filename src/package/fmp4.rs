//! Fragmented MP4 (CMAF-style) output from a progressive MP4's index: the
//! initialisation segment (ftyp and a moov whose sample tables are empty,
//! with mvex/trex) and media segments as a generated head (styp, moof with
//! tfdt and trun, the mdat header) followed by ranges of the original file.
//!
//! The samples keep their file order inside the mdat, so a segment's bytes
//! are a few long ranges sent with sendfile(2); each trun's data offset
//! points at where its samples landed. Timestamps are the original ones.

use std::ops::Range;

use crate::media::mp4::Mp4Index;
use crate::media::mp4::box_writer::{close, open, open_full, put32, put64};
use crate::media::mp4::boxes::Node;
use crate::media::mp4::tables::Track;

/// Sample flags: a sync sample depends on no other.
const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// Sample flags: depends on others, not a sync sample.
const OTHER_SAMPLE_FLAGS: u32 = 0x0101_0000;
/// tfhd flag: data offsets count from the moof's first byte.
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// trun flags: data offset, then per sample duration, size, flags and
/// (when the track has them) composition offsets.
const TRUN_DATA_OFFSET: u32 = 0x0001;
const TRUN_SAMPLE_FIELDS: u32 = 0x0100 | 0x0200 | 0x0400;
const TRUN_COMPOSITION_OFFSETS: u32 = 0x0800;

/// A media segment: `head`, then the file's `ranges` in order.
#[derive(Debug)]
pub struct Segment {
    pub head: Vec<u8>,
    pub ranges: Vec<Range<u64>>,
}

impl Segment {
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.ranges.iter().map(|r| r.end - r.start).sum::<u64>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Memory held, for the cache's budget.
    pub fn weight(&self) -> usize {
        std::mem::size_of::<Segment>() + self.head.capacity() + self.ranges.capacity() * 16
    }
}

/// The initialisation segment of the tracks `tracks` (indexes into `index.tracks`).
pub fn init_segment(index: &Mp4Index, tracks: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2048);
    let ftyp = open(&mut out, b"ftyp");
    out.extend_from_slice(b"iso6");
    put32(&mut out, 0);
    for brand in [b"iso6", b"mp41", b"dash", b"msix"] {
        out.extend_from_slice(brand);
    }
    close(&mut out, ftyp);

    let moov = open(&mut out, b"moov");
    let mvhd = open_full(&mut out, b"mvhd", 0, 0);
    put32(&mut out, 0); // creation time
    put32(&mut out, 0); // modification time
    put32(&mut out, index.movie_timescale);
    put32(&mut out, 0); // duration: in mehd and the fragments
    put32(&mut out, 0x0001_0000); // rate 1.0
    out.extend_from_slice(&[0x01, 0x00]); // volume 1.0
    out.extend_from_slice(&[0; 10]);
    for value in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        put32(&mut out, value); // unity matrix
    }
    out.extend_from_slice(&[0; 24]);
    // A hostile file's track id may be u32::MAX (found by fuzz/fuzz_targets/segments.rs).
    let next_id = tracks
        .iter()
        .map(|&t| index.tracks[t].id)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    put32(&mut out, next_id);
    close(&mut out, mvhd);
    for &t in tracks {
        if let Some(trak) = index
            .trak_positions
            .get(t)
            .and_then(|&p| index.tree.children.get(p))
        {
            copy_without_samples(trak, &index.moov, &mut out);
        }
    }
    let mvex = open(&mut out, b"mvex");
    let mehd = open_full(&mut out, b"mehd", 1, 0);
    put64(
        &mut out,
        (index.duration * f64::from(index.movie_timescale)).round() as u64,
    );
    close(&mut out, mehd);
    for &t in tracks {
        let trex = open_full(&mut out, b"trex", 0, 0);
        put32(&mut out, index.tracks[t].id);
        put32(&mut out, 1); // sample description 1
        put32(&mut out, 0);
        put32(&mut out, 0);
        put32(&mut out, 0);
        close(&mut out, trex);
    }
    close(&mut out, mvex);
    close(&mut out, moov);
    out
}

/// Copies a trak (or one of its containers) with the sample tables emptied:
/// stbl keeps only stsd, and tref (which may name tracks left out) goes.
fn copy_without_samples(node: &Node, moov: &[u8], out: &mut Vec<u8>) {
    match &node.kind() {
        b"trak" | b"mdia" | b"minf" => {
            let at = open(out, &node.kind());
            for child in &node.children {
                copy_without_samples(child, moov, out);
            }
            close(out, at);
        }
        b"stbl" => {
            let at = open(out, b"stbl");
            if let Some(stsd) = node.child(b"stsd") {
                out.extend_from_slice(stsd.bytes(moov));
            }
            for kind in [b"stts", b"stsc", b"stco"] {
                let table = open_full(out, kind, 0, 0);
                put32(out, 0);
                close(out, table);
            }
            let stsz = open_full(out, b"stsz", 0, 0);
            put32(out, 0);
            put32(out, 0);
            close(out, stsz);
            close(out, at);
        }
        b"tref" => {}
        _ => out.extend_from_slice(node.bytes(moov)),
    }
}

/// The largest gap between two of a segment's file ranges sent rather than
/// skipped. The one-hour fixture's segments (6 s, 510 KB) have 3.4 gaps
/// each, half of them under 400 bytes: up to 4 KB, filling them adds 0.4 %
/// to the bytes sent and saves two of the segment's four sendfile calls.
pub const GAP_FILL_BYTES: u64 = 4096;

/// Samples of one track lying together in the file: one chunk's worth, or part of it.
#[derive(Clone, Copy, Debug)]
struct Piece {
    track: usize,
    first_sample: u64,
    count: u64,
    offset: u64,
    len: u64,
    /// Its number among the segment's pieces, in decode order per track.
    id: usize,
}

/// The pieces of samples `range` of `track` (numbered `track_position`), in
/// decode order.
fn pieces_of(track: &Track, track_position: usize, range: &Range<u64>, out: &mut Vec<Piece>) {
    let first_id = out.len();
    for (id, (first_sample, count, offset)) in (first_id..).zip(track.chunk_pieces(range.clone())) {
        let len = track.sizes_sum(first_sample..first_sample + count);
        out.push(Piece {
            track: track_position,
            first_sample,
            count,
            offset,
            len,
            id,
        });
    }
}

/// A trun: samples `first..first + count` of a track, `len` bytes at
/// `mdat_at` in the mdat.
struct Run {
    first: u64,
    count: u64,
    mdat_at: u64,
    len: u64,
}

/// Media segment number `sequence` (from 1) holding samples `ranges[i]` of
/// track `tracks[i]` of `index`.
pub fn media_segment(
    index: &Mp4Index,
    tracks: &[usize],
    ranges: &[Range<u64>],
    sequence: u32,
) -> Segment {
    // Every track's pieces in decode order, one after the other.
    let mut pieces = Vec::new();
    let mut track_pieces = Vec::with_capacity(tracks.len());
    for (position, (&t, range)) in tracks.iter().zip(ranges).enumerate() {
        let first = pieces.len();
        pieces_of(&index.tracks[t], position, range, &mut pieces);
        track_pieces.push(first..pieces.len());
    }
    // The mdat keeps the file's order, so its bytes are few long ranges.
    let mut file_order = pieces.clone();
    file_order.sort_by_key(|p| (p.offset, p.track));
    let mut mdat_at = vec![0u64; pieces.len()];
    let mut at = 0u64;
    let mut file_ranges: Vec<Range<u64>> = Vec::new();
    for piece in &file_order {
        match file_ranges.last_mut() {
            // A small gap (the other track's few frames that belong to the
            // segment before or after) goes out as unreferenced bytes in
            // the mdat: each trun has its own data offset, and sending them
            // costs less than another sendfile call.
            Some(last) if last.end <= piece.offset && piece.offset - last.end <= GAP_FILL_BYTES => {
                at += piece.offset - last.end;
                last.end = piece.offset + piece.len;
            }
            _ => file_ranges.push(piece.offset..piece.offset + piece.len),
        }
        mdat_at[piece.id] = at;
        at += piece.len;
    }
    let mdat_payload = at;
    // Each track's runs in decode order; a run continues while its next
    // piece directly follows it in the mdat.
    let runs: Vec<Vec<Run>> = track_pieces
        .iter()
        .map(|span| {
            let mut runs: Vec<Run> = Vec::new();
            for piece in &pieces[span.clone()] {
                let landed = mdat_at[piece.id];
                match runs.last_mut() {
                    Some(run) if run.mdat_at + run.len == landed => {
                        run.count += piece.count;
                        run.len += piece.len;
                    }
                    _ => runs.push(Run {
                        first: piece.first_sample,
                        count: piece.count,
                        mdat_at: landed,
                        len: piece.len,
                    }),
                }
            }
            runs
        })
        .collect();

    let mut head = Vec::with_capacity(4096);
    let styp = open(&mut head, b"styp");
    head.extend_from_slice(b"msdh");
    put32(&mut head, 0);
    head.extend_from_slice(b"msdh");
    head.extend_from_slice(b"msix");
    close(&mut head, styp);
    let moof_at = head.len();
    let mdat_header_len = if mdat_payload + 8 > u64::from(u32::MAX) {
        16
    } else {
        8
    };
    // Data offsets count from the moof's first byte to the mdat payload, so
    // they depend on the moof's own length: written as offsets into the
    // payload, then moved on by the moof and mdat headers once its length is known.
    let data_offsets = write_moof(index, tracks, ranges, &runs, sequence, &mut head);
    let payload_at = (head.len() - moof_at) as u64 + mdat_header_len;
    for at in data_offsets {
        let field: [u8; 4] = head[at..at + 4].try_into().unwrap_or([0; 4]);
        let moved = (u64::from(u32::from_be_bytes(field)) + payload_at) as u32;
        head[at..at + 4].copy_from_slice(&moved.to_be_bytes());
    }
    if mdat_header_len == 16 {
        put32(&mut head, 1);
        head.extend_from_slice(b"mdat");
        put64(&mut head, mdat_payload + 16);
    } else {
        put32(&mut head, (mdat_payload + 8) as u32);
        head.extend_from_slice(b"mdat");
    }
    Segment {
        head,
        ranges: file_ranges,
    }
}

/// Writes the moof into `out`, each trun's data offset as the run's offset
/// in the mdat payload; returns where in `out` those offsets are, for the
/// caller to move them on by the moof's and the mdat header's length.
fn write_moof(
    index: &Mp4Index,
    tracks: &[usize],
    ranges: &[Range<u64>],
    runs: &[Vec<Run>],
    sequence: u32,
    out: &mut Vec<u8>,
) -> Vec<usize> {
    let mut data_offsets = Vec::new();
    let moof = open(out, b"moof");
    let mfhd = open_full(out, b"mfhd", 0, 0);
    put32(out, sequence);
    close(out, mfhd);
    for (position, &t) in tracks.iter().enumerate() {
        let track = &index.tracks[t];
        let traf = open(out, b"traf");
        let tfhd = open_full(out, b"tfhd", 0, DEFAULT_BASE_IS_MOOF);
        put32(out, track.id);
        close(out, tfhd);
        let tfdt = open_full(out, b"tfdt", 1, 0);
        put64(out, track.time_of(ranges[position].start));
        close(out, tfdt);
        let (version, composition) = match &track.ctts {
            Some((version, _)) => (u8::from(*version == 1), true),
            None => (0, false),
        };
        let flags = TRUN_DATA_OFFSET
            | TRUN_SAMPLE_FIELDS
            | if composition {
                TRUN_COMPOSITION_OFFSETS
            } else {
                0
            };
        // The runs cover the track's samples in decode order from the
        // range's start: one walk of each table for them all, not a search
        // per sample (nor per run: an interleaved file has a run per chunk).
        let first = ranges[position].start;
        let mut durations = track.durations_from(first);
        let mut syncs = track.sync_flags_from(first);
        let mut offsets = track.composition_offsets_from(first);
        for run in &runs[position] {
            debug_assert!(run.first >= first);
            let trun = open_full(out, b"trun", version, flags);
            put32(out, run.count as u32);
            data_offsets.push(out.len());
            put32(out, run.mdat_at as u32);
            out.reserve(run.count as usize * if composition { 16 } else { 12 });
            for s in run.first..run.first + run.count {
                put32(out, durations.next().unwrap_or(0));
                put32(out, track.size_of(s) as u32);
                let sync = syncs.next().unwrap_or(false);
                put32(
                    out,
                    if sync {
                        SYNC_SAMPLE_FLAGS
                    } else {
                        OTHER_SAMPLE_FLAGS
                    },
                );
                if composition {
                    put32(out, offsets.next().unwrap_or(0));
                }
            }
            close(out, trun);
        }
        close(out, traf);
    }
    close(out, moof);
    data_offsets
}

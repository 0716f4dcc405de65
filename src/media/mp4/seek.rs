//! Planning an MP4 seek: which samples each track keeps, and the pieces of
//! the new header (ftyp, rewritten moov, mdat header) that describe them.
//!
//! Video snaps back to the keyframe at or before `start`; every other track
//! is cut at that same time. With `SeekMode::Exact` the frames before `start`
//! are kept for decoding but hidden by an edit list.

use std::rc::Rc;

use super::Mp4Index;
use super::boxes::{FourCc, Node};
use super::header::{Header, Piece};
use super::tables::{Edit, Sizes, Track};
use crate::media::query::{Seek, Units};
use crate::media::timeline::Timeline;
use crate::media::{MediaError, Prefix, Prepared, SeekMode};

/// The samples `[first, end)` a track keeps, and what follows from them.
#[derive(Clone, Copy, Debug)]
struct Cut {
    first: u64,
    end: u64,
    /// Media time (track timescale) hidden by the edit list in exact mode.
    skip: u64,
}

impl Cut {
    fn is_empty(&self) -> bool {
        self.first >= self.end
    }
}

/// Prepares the body for `seek` on an indexed MP4 file.
pub fn prepare(index: &Rc<Mp4Index>, seek: &Seek, mode: SeekMode) -> Result<Prepared, MediaError> {
    if let Some(reason) = &index.unsupported {
        return Err(MediaError::Unsupported(reason.clone()));
    }
    let (start, stop) = match seek.units {
        Units::Seconds => (seek.start, seek.stop),
        Units::Bytes => (
            seconds_at_offset(index, seek.start),
            if seek.stop > 0.0 {
                seconds_at_offset(index, seek.stop)
            } else {
                0.0
            },
        ),
    };
    if start >= index.duration {
        return Err(MediaError::BadSeek(format!(
            "start={} is past the end of the media ({:.3} s)",
            seek.start, index.duration
        )));
    }
    let reference = &index.tracks[index.reference];
    let ref_scale = f64::from(reference.timescale);
    let wanted = reference.sample_at((start * ref_scale) as u64);
    // Past the end of the reference track (video shorter than audio), there is
    // no keyframe to snap to: the other tracks start at `start` itself.
    let reference_ended = wanted >= reference.sample_count;
    let keyframe = if reference_ended {
        reference.sample_count
    } else {
        reference.sync_at_or_before(wanted)
    };
    let keyframe_seconds = if reference_ended {
        start
    } else {
        reference.time_of(keyframe) as f64 / ref_scale
    };
    // Where presentation starts: the keyframe, or exactly `start`.
    let shown_from = match mode {
        SeekMode::Keyframe => keyframe_seconds,
        SeekMode::Exact => start.max(keyframe_seconds),
    };
    let cuts: Vec<Cut> = index
        .tracks
        .iter()
        .enumerate()
        .map(|(i, track)| {
            let scale = f64::from(track.timescale);
            let first = if i == index.reference {
                keyframe
            } else {
                let s = track.sample_at((keyframe_seconds * scale) as u64);
                if s < track.sample_count {
                    track.sync_at_or_before(s)
                } else {
                    s
                }
            };
            let mut end = if stop > 0.0 {
                track.sample_from((stop * scale).ceil() as u64)
            } else {
                track.sample_count
            };
            if i == index.reference && end <= first && !reference_ended {
                end = (first + 1).min(track.sample_count);
            }
            let skip = match mode {
                SeekMode::Keyframe => 0,
                SeekMode::Exact if first < end => {
                    let hidden = (shown_from * scale) as u64;
                    hidden
                        .saturating_sub(track.time_of(first))
                        .min(track.time_of(end) - track.time_of(first))
                }
                SeekMode::Exact => 0,
            };
            Cut {
                first,
                end: end.max(first),
                skip,
            }
        })
        .collect();
    let kept: Vec<(usize, &Cut)> = cuts
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.is_empty())
        .collect();
    let file_start = kept
        .iter()
        .map(|(i, c)| index.tracks[*i].offset_of(c.first))
        .min();
    let file_end = kept
        .iter()
        .map(|(i, c)| {
            let track = &index.tracks[*i];
            track.offset_of(c.end - 1) + track.size_of(c.end - 1)
        })
        .max();
    let (Some(file_start), Some(file_end)) = (file_start, file_end) else {
        return Err(MediaError::BadSeek(format!(
            "start={} leaves no sample to send",
            seek.start
        )));
    };
    let span = file_end - file_start;

    // Offsets into the new mdat depend on the header's length, which depends on
    // whether offsets need 64 bits: plan narrow first, widen when they do not fit.
    let mut plan = Plan {
        index,
        cuts: &cuts,
        wide: false,
        shift: 0,
    };
    let mut pieces = plan.pieces(span);
    let mut header_len: u64 = pieces.iter().map(Piece::len).sum();
    if header_len + span > u64::from(u32::MAX) {
        plan.wide = true;
        pieces = plan.pieces(span);
        header_len = pieces.iter().map(Piece::len).sum();
    }
    plan.shift = header_len as i64 - file_start as i64;
    let pieces = plan.pieces(span);

    let end_seconds = if stop > 0.0 {
        stop.min(index.duration)
    } else {
        index.duration
    };
    let timeline = Timeline::new(
        Rc::clone(&index.points),
        keyframe_seconds,
        end_seconds,
        header_len,
        file_start,
        file_end,
    );
    Ok(Prepared {
        prefix: Prefix::Mp4(Header::new(Rc::clone(index), pieces)),
        file_start,
        file_end,
        timeline,
    })
}

/// The reference-track time reached at file offset `offset` (for `units=bytes`).
fn seconds_at_offset(index: &Mp4Index, offset: f64) -> f64 {
    let after = index
        .points
        .partition_point(|p| (p.offset as f64) <= offset);
    after
        .checked_sub(1)
        .map_or(0.0, |i| index.points[i].seconds)
}

/// A box header for a payload of `payload_len` bytes (64-bit form when needed).
fn box_header(kind: &FourCc, payload_len: u64) -> Vec<u8> {
    let size = payload_len + 8;
    if size <= u64::from(u32::MAX) {
        let mut out = (size as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out
    } else {
        let mut out = vec![0, 0, 0, 1];
        out.extend_from_slice(kind);
        out.extend_from_slice(&(size + 8).to_be_bytes());
        out
    }
}

/// Wraps `children` in a box of kind `kind`.
fn wrap(kind: &FourCc, mut children: Vec<Piece>) -> Vec<Piece> {
    let len: u64 = children.iter().map(Piece::len).sum();
    children.insert(0, Piece::Bytes(box_header(kind, len)));
    children
}

/// Writes `value` into a duration field of `width` bytes (saturating a 32-bit one).
fn patch_duration(bytes: &mut [u8], at: usize, width: usize, value: u64) {
    if width == 8 {
        bytes[at..at + 8].copy_from_slice(&value.to_be_bytes());
    } else {
        bytes[at..at + 4].copy_from_slice(&(value.min(u64::from(u32::MAX)) as u32).to_be_bytes());
    }
}

struct Plan<'a> {
    index: &'a Rc<Mp4Index>,
    cuts: &'a [Cut],
    wide: bool,
    /// Added to original file offsets to make them offsets in the new file.
    shift: i64,
}

impl Plan<'_> {
    fn moov_bytes(&self, node: &Node) -> Piece {
        Piece::Moov {
            from: node.header.offset as usize,
            len: node.header.size as usize,
        }
    }

    /// Media duration kept and presentation duration (movie timescale) of track `t`.
    fn durations(&self, t: usize) -> (u64, u64) {
        let (track, cut) = (&self.index.tracks[t], self.cuts[t]);
        if cut.is_empty() {
            return (0, 0);
        }
        let media = track.time_of(cut.end) - track.time_of(cut.first);
        let shown = media - cut.skip;
        let movie = (u128::from(shown) * u128::from(self.index.movie_timescale)
            / u128::from(track.timescale)) as u64;
        (media, movie)
    }

    fn pieces(&self, span: u64) -> Vec<Piece> {
        let index = self.index;
        let mut pieces = Vec::new();
        if let Some(ftyp) = &index.ftyp {
            pieces.push(Piece::Bytes(ftyp.clone()));
        }
        let mut moov_children = Vec::new();
        let movie_duration = (0..index.tracks.len())
            .map(|t| self.durations(t).1)
            .max()
            .unwrap_or(0);
        for (position, child) in index.tree.children.iter().enumerate() {
            match &child.kind() {
                b"mvhd" => {
                    let mut bytes = child.bytes(&index.moov).to_vec();
                    let (at, width) = index.mvhd_duration;
                    patch_duration(
                        &mut bytes,
                        at - child.header.offset as usize,
                        width,
                        movie_duration,
                    );
                    moov_children.push(Piece::Bytes(bytes));
                }
                b"trak" => {
                    // Tracks without usable tables (never in a seekable file) are left out.
                    // A track that ended before the start (audio longer than video) has
                    // nothing left; an empty track only confuses decoders, so it goes.
                    if let Some(t) = index.trak_positions.iter().position(|&p| p == position)
                        && !self.cuts[t].is_empty()
                    {
                        moov_children.extend(self.trak(child, t));
                    }
                }
                _ => moov_children.push(self.moov_bytes(child)),
            }
        }
        pieces.extend(wrap(b"moov", moov_children));
        let mdat_size = span + 8;
        if mdat_size <= u64::from(u32::MAX) {
            let mut header = (mdat_size as u32).to_be_bytes().to_vec();
            header.extend_from_slice(b"mdat");
            pieces.push(Piece::Bytes(header));
        } else {
            let mut header = vec![0, 0, 0, 1];
            header.extend_from_slice(b"mdat");
            header.extend_from_slice(&(span + 16).to_be_bytes());
            pieces.push(Piece::Bytes(header));
        }
        pieces
    }

    fn trak(&self, trak: &Node, t: usize) -> Vec<Piece> {
        let (media, movie) = self.durations(t);
        let mut children = Vec::new();
        for child in &trak.children {
            match &child.kind() {
                b"tkhd" => {
                    children.push(self.patched(child, self.index.tracks[t].tkhd_duration, movie));
                    if let Some(edts) = self.edit_list(t, movie) {
                        children.push(edts);
                    }
                }
                b"edts" => {} // replaced right after tkhd
                b"mdia" => children.extend(self.mdia(child, t, media)),
                _ => children.push(self.moov_bytes(child)),
            }
        }
        wrap(b"trak", children)
    }

    /// A copy of a small box with one duration field replaced.
    fn patched(&self, node: &Node, (at, width): (usize, usize), value: u64) -> Piece {
        let mut bytes = node.bytes(&self.index.moov).to_vec();
        patch_duration(&mut bytes, at - node.header.offset as usize, width, value);
        Piece::Bytes(bytes)
    }

    /// The new edts box: the original's composition shift, plus in exact mode
    /// the media time hidden before `start`.
    fn edit_list(&self, t: usize, movie_duration: u64) -> Option<Piece> {
        let (track, cut) = (&self.index.tracks[t], self.cuts[t]);
        let shift = match track.edit {
            Edit::Shift { media_time } => media_time,
            Edit::None if cut.skip > 0 => 0,
            Edit::None | Edit::Complex => return None,
        };
        if cut.is_empty() {
            return None;
        }
        let media_time = shift + cut.skip as i64;
        let mut elst = Vec::new();
        if movie_duration <= u64::from(u32::MAX) && media_time <= i64::from(i32::MAX) {
            elst.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
            elst.extend_from_slice(&(movie_duration as u32).to_be_bytes());
            elst.extend_from_slice(&(media_time as i32).to_be_bytes());
        } else {
            elst.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 1]);
            elst.extend_from_slice(&movie_duration.to_be_bytes());
            elst.extend_from_slice(&media_time.to_be_bytes());
        }
        elst.extend_from_slice(&[0, 1, 0, 0]);
        let mut edts = box_header(b"edts", elst.len() as u64 + 8);
        edts.extend(box_header(b"elst", elst.len() as u64));
        edts.extend(elst);
        Some(Piece::Bytes(edts))
    }

    fn mdia(&self, mdia: &Node, t: usize, media_duration: u64) -> Vec<Piece> {
        let mut children = Vec::new();
        for child in &mdia.children {
            match &child.kind() {
                b"mdhd" => children.push(self.patched(
                    child,
                    self.index.tracks[t].mdhd_duration,
                    media_duration,
                )),
                b"minf" => {
                    let mut minf = Vec::new();
                    for grandchild in &child.children {
                        if &grandchild.kind() == b"stbl" {
                            minf.extend(self.stbl(grandchild, t));
                        } else {
                            minf.push(self.moov_bytes(grandchild));
                        }
                    }
                    children.extend(wrap(b"minf", minf));
                }
                _ => children.push(self.moov_bytes(child)),
            }
        }
        wrap(b"mdia", children)
    }

    /// A full box: header, version and flags copied from the original, then `body`.
    fn table(&self, node: &Node, kind: &FourCc, fields: &[u8], body: Option<Piece>) -> Vec<Piece> {
        let body_len = body.as_ref().map_or(0, Piece::len);
        let original = node.payload(&self.index.moov);
        let mut head = box_header(kind, 4 + fields.len() as u64 + body_len);
        head.extend_from_slice(original.get(..4).unwrap_or(&[0; 4]));
        head.extend_from_slice(fields);
        let mut pieces = vec![Piece::Bytes(head)];
        pieces.extend(body.filter(|b| !b.is_empty()));
        pieces
    }

    fn stbl(&self, stbl: &Node, t: usize) -> Vec<Piece> {
        let (track, cut) = (&self.index.tracks[t], self.cuts[t]);
        let (s0, s1) = (cut.first, cut.end);
        let count = s1 - s0;
        let mut children = Vec::new();
        for child in &stbl.children {
            match &child.kind() {
                b"stsd" => children.push(self.moov_bytes(child)),
                kind @ (b"stts" | b"ctts") => {
                    let ctts = kind == b"ctts";
                    if ctts && track.ctts.is_none() {
                        continue;
                    }
                    let (entries, runs) = if count == 0 {
                        (0, None)
                    } else {
                        self.runs(track, t, ctts, s0, s1)
                    };
                    children.extend(self.table(child, kind, &(entries as u32).to_be_bytes(), runs));
                }
                b"stss" => {
                    let range = track.sync_range(s0, s1);
                    let body = Piece::Sync {
                        track: t,
                        first: range.start,
                        count: range.len(),
                        minus: s0 as u32,
                    };
                    children.extend(self.table(
                        child,
                        b"stss",
                        &(range.len() as u32).to_be_bytes(),
                        Some(body),
                    ));
                }
                b"stsc" => {
                    let body = if count == 0 {
                        None
                    } else {
                        Some(self.chunk_runs(track, t, s0, s1))
                    };
                    let entries = body.as_ref().map_or(0, Piece::chunk_run_count);
                    children.extend(self.table(
                        child,
                        b"stsc",
                        &(entries as u32).to_be_bytes(),
                        body,
                    ));
                }
                b"stsz" | b"stz2" => {
                    let mut fields = Vec::new();
                    let body = match &track.sizes {
                        Sizes::Constant(size) => {
                            fields.extend_from_slice(&size.to_be_bytes());
                            None
                        }
                        Sizes::Table {
                            raw_at: Some(at), ..
                        } => {
                            fields.extend_from_slice(&0u32.to_be_bytes());
                            Some(Piece::Moov {
                                from: at + 4 * s0 as usize,
                                len: 4 * count as usize,
                            })
                        }
                        Sizes::Table { raw_at: None, .. } => {
                            fields.extend_from_slice(&0u32.to_be_bytes());
                            Some(Piece::Sizes {
                                track: t,
                                first: s0,
                                count,
                            })
                        }
                    };
                    fields.extend_from_slice(&(count as u32).to_be_bytes());
                    let mut pieces = self.table(child, b"stsz", &fields, body);
                    if &child.kind() == b"stz2" {
                        // stz2 becomes a plain stsz: version and flags are 0.
                        if let Some(Piece::Bytes(head)) = pieces.first_mut() {
                            head[8..12].copy_from_slice(&[0; 4]);
                        }
                    }
                    children.extend(pieces);
                }
                b"stco" | b"co64" => {
                    let kind = if self.wide { b"co64" } else { b"stco" };
                    let body = if count == 0 {
                        None
                    } else {
                        let (c0, _) = track.chunk_of(s0);
                        let (c1, _) = track.chunk_of(s1 - 1);
                        Some(Piece::ChunkOffsets {
                            track: t,
                            c0,
                            count: c1 - c0 + 1,
                            first_offset: track.offset_of(s0),
                            shift: self.shift,
                            wide: self.wide,
                        })
                    };
                    let entries = match &body {
                        Some(Piece::ChunkOffsets { count, .. }) => *count,
                        _ => 0,
                    };
                    let mut pieces = self.table(child, kind, &(entries as u32).to_be_bytes(), body);
                    if let Some(Piece::Bytes(head)) = pieces.first_mut() {
                        head[8..12].copy_from_slice(&[0; 4]);
                    }
                    children.extend(pieces);
                }
                b"sdtp" => {
                    if let Some(at) = track.sdtp_at {
                        let body = Piece::Moov {
                            from: at + s0 as usize,
                            len: count as usize,
                        };
                        children.extend(self.table(child, b"sdtp", &[], Some(body)));
                    }
                }
                // Sample groups, subsample information and the like index samples
                // we have renumbered; players do without them.
                _ => {}
            }
        }
        wrap(b"stbl", children)
    }

    /// stts or ctts runs covering samples `[s0, s1)`: (entry count, piece).
    fn runs(
        &self,
        track: &Track,
        t: usize,
        ctts: bool,
        s0: u64,
        s1: u64,
    ) -> (usize, Option<Piece>) {
        let (runs, (a, a_first), (b, b_first)) = if ctts {
            let runs = track.ctts.as_ref().map_or(&[][..], |(_, r)| r);
            (runs, track.ctts_run(s0), track.ctts_run(s1 - 1))
        } else {
            (&track.stts[..], track.stts_run(s0), track.stts_run(s1 - 1))
        };
        let count = b - a + 1;
        let first_count = if a == b {
            s1 - s0
        } else {
            a_first + u64::from(runs[a].count) - s0
        };
        let last_count = s1 - b_first;
        let piece = Piece::Runs {
            track: t,
            ctts,
            first: a,
            count,
            first_count: first_count as u32,
            last_count: last_count as u32,
        };
        (count, Some(piece))
    }

    /// stsc entries for samples `[s0, s1)`, splitting the first and last chunks.
    fn chunk_runs(&self, track: &Track, t: usize, s0: u64, s1: u64) -> Piece {
        let (c0, c0_first) = track.chunk_of(s0);
        let (c1, c1_first) = track.chunk_of(s1 - 1);
        let first_samples = if c0 == c1 {
            s1 - s0
        } else {
            (c0_first + track.samples_in_chunk(c0)).min(track.sample_count) - s0
        };
        let middle = if c1 >= c0 + 2 {
            (
                track.stsc_run_of_chunk(c0 + 1),
                track.stsc_run_of_chunk(c1 - 1) + 1,
            )
        } else {
            (0, 0)
        };
        Piece::ChunkRuns {
            track: t,
            c0,
            c1,
            first_samples: first_samples as u32,
            last_samples: (s1 - c1_first) as u32,
            middle,
        }
    }
}

//! Writing the header of an MP4 seek: ftyp, the moov rewritten so that its
//! sample tables (stts, ctts, stss, stsc, stsz, stco/co64), durations and
//! edit lists describe only the samples each track keeps, and the mdat
//! header. Which samples are kept is decided by `seek`.

use std::rc::Rc;

use super::Mp4Index;
use super::boxes::{FourCc, Node};
use super::header::Piece;
use super::tables::{Edit, Run, RunTable, Sizes, Track};

/// The samples `[first, end)` a track keeps, and what follows from them.
#[derive(Clone, Copy, Debug)]
pub struct Cut {
    pub first: u64,
    pub end: u64,
    /// Media time (track timescale) hidden by the edit list in exact mode.
    pub skip: u64,
}

impl Cut {
    pub fn is_empty(&self) -> bool {
        self.first >= self.end
    }
}

/// A box header for a payload of `payload_len` bytes (64-bit form when needed).
pub(super) fn box_header(kind: &FourCc, payload_len: u64) -> Vec<u8> {
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

/// The new header's pieces for a seek's cuts.
pub(super) struct MoovWriter<'a> {
    pub index: &'a Rc<Mp4Index>,
    pub cuts: &'a [Cut],
    /// Whether chunk offsets need 64 bits (co64 instead of stco).
    pub wide: bool,
}

impl MoovWriter<'_> {
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
        let shown = media - cut.skip + self.presentation_delay(t);
        let movie = (u128::from(shown) * u128::from(self.index.movie_timescale)
            / u128::from(track.timescale)) as u64;
        (media, movie)
    }

    /// How much later than its edit's shift says the first kept sample of
    /// track `t` is presented (B-frames in a file without an edit list, as
    /// ffmpeg fragments them): the last frame ends that much later, and the
    /// edit must last that much longer to show it.
    fn presentation_delay(&self, t: usize) -> u64 {
        let (track, cut) = (&self.index.tracks[t], self.cuts[t]);
        let shift = match track.edit {
            Edit::Shift { media_time } => media_time,
            Edit::None | Edit::Complex => 0,
        };
        let Some(raw) = track.composition_offsets_from(cut.first).next() else {
            return 0;
        };
        let offset = match track.ctts {
            // Version 1 offsets are signed.
            Some((1, _)) => i64::from(raw as i32),
            _ => i64::from(raw),
        };
        u64::try_from(offset.saturating_sub(shift)).unwrap_or(0)
    }

    /// ftyp, the rewritten moov and the mdat header for `span` media bytes.
    pub fn pieces(&self, span: u64) -> Vec<Piece> {
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
                    moov_children.push(self.patched(child, index.mvhd_duration, movie_duration))
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
    /// A copy of a small box with its duration field (at moov offset `at`)
    /// replaced. A duplicate box (the field lies in the first one) is copied
    /// as it is.
    fn patched(&self, node: &Node, (at, width): (usize, usize), value: u64) -> Piece {
        let offset = node.header.offset as usize;
        if at < offset || at + width > node.header.end() as usize {
            return self.moov_bytes(node);
        }
        let mut bytes = node.bytes(&self.index.moov).to_vec();
        patch_duration(&mut bytes, at - offset, width, value);
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
    fn table(
        &self,
        node: &Node,
        kind: &FourCc,
        fields: &[u8],
        body: impl IntoIterator<Item = Piece>,
    ) -> Vec<Piece> {
        let body: Vec<Piece> = body.into_iter().collect();
        let body_len: u64 = body.iter().map(Piece::len).sum();
        let original = node.payload(&self.index.moov);
        let mut head = box_header(kind, 4 + fields.len() as u64 + body_len);
        head.extend_from_slice(original.get(..4).unwrap_or(&[0; 4]));
        head.extend_from_slice(fields);
        let mut pieces = vec![Piece::Bytes(head)];
        pieces.extend(body.into_iter().filter(|b| !b.is_empty()));
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
                        (0, Vec::new())
                    } else {
                        self.runs(track, ctts, s0, s1)
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
                        Sizes::Stored { at } => {
                            fields.extend_from_slice(&0u32.to_be_bytes());
                            Some(Piece::Moov {
                                from: *at + 4 * s0 as usize,
                                len: 4 * count as usize,
                            })
                        }
                        Sizes::Decoded(_) => {
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
                            shift: 0,
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

    /// stts or ctts runs covering samples `[s0, s1)`: (entry count, pieces).
    /// Only the first and last runs change; the ones between are copied as
    /// they are from the original moov.
    fn runs(&self, track: &Track, ctts: bool, s0: u64, s1: u64) -> (usize, Vec<Piece>) {
        let no_runs = RunTable::default();
        let (runs, (a, a_first), (b, b_first)) = if ctts {
            let runs = track.ctts.as_ref().map_or(&no_runs, |(_, r)| r);
            (runs, track.ctts_run(s0), track.ctts_run(s1 - 1))
        } else {
            (&track.stts, track.stts_run(s0), track.stts_run(s1 - 1))
        };
        let at = runs.at;
        let run = |i| runs.get(i).unwrap_or(Run { count: 0, value: 0 });
        let entry = |count: u64, value: u32| {
            let mut bytes = (count as u32).to_be_bytes().to_vec();
            bytes.extend_from_slice(&value.to_be_bytes());
            Piece::Bytes(bytes)
        };
        if a == b {
            return (1, vec![entry(s1 - s0, run(a).value)]);
        }
        let mut pieces = vec![entry(a_first + u64::from(run(a).count) - s0, run(a).value)];
        if b > a + 1 {
            pieces.push(Piece::Moov {
                from: at + 8 * (a + 1),
                len: 8 * (b - a - 1),
            });
        }
        pieces.push(entry(s1 - b_first, run(b).value));
        (b - a + 1, pieces)
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

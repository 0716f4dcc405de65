//! Where a fragmented file's moof boxes start, as its optional indexes say:
//! a `sidx` (segment index, written before the fragments by DASH packagers
//! and `ffmpeg -movflags dash`) or an `mfra` (movie fragment random access,
//! at the very end, found through the `mfro` box that closes it; ffmpeg
//! writes one to every fragmented file).
//!
//! Indexing never depends on them: the top-level scan still reads every box
//! header and every moof, and a map that lies costs nothing but a wasted
//! hint. What a map buys is speed on a file not in memory: the scan reads
//! one moof after another, each a wait on the disk, while the map lets the
//! kernel be asked for all of them at once, before the first wait
//! (ISO/IEC 14496-12, 8.16.3 and 8.8.10 to 8.8.11).

use super::boxes::{FourCc, parse_header};
use super::tables::Fields;
use crate::media::{MediaError, ReadAt};

/// Bytes read ahead at each fragment: its moof (a trun of a few hundred
/// samples) and the next box's header.
const MOOF_AHEAD_BYTES: u64 = 16 * 1024;
/// Largest sidx or mfra read for its map: about 300 000 fragments of two
/// tracks (a ten-hour film's mfra takes 684 KB). A larger map is not read;
/// the scan goes on without reading ahead.
const MAP_LIMIT_BYTES: u64 = 16 * 1024 * 1024;
/// The size of the mfro box that ends a file with an mfra.
const MFRO_BYTES: u64 = 16;

/// The file offsets of the media segments (moof, then mdat) a `sidx` box
/// names. `payload` is the box after its 8-byte header; `box_end` is the
/// file offset where the box ends, from which its first reference counts.
/// References to further sidx boxes (a hierarchy) are stepped over: those
/// boxes are met by the scan in their turn.
pub fn sidx_starts(payload: &[u8], box_end: u64) -> Result<Vec<u64>, MediaError> {
    const KIND: FourCc = *b"sidx";
    let mut f = Fields::new(payload, KIND);
    let version = f.u8()?;
    f.skip(3 + 4 + 4)?; // flags, reference_ID, timescale
    let first_offset = if version == 0 {
        f.skip(4)?; // earliest_presentation_time
        u64::from(f.u32()?)
    } else {
        f.skip(8)?;
        f.u64()?
    };
    f.skip(2)?; // reserved
    let count = usize::from(u16::from_be_bytes([f.u8()?, f.u8()?]));
    let mut starts = Vec::with_capacity(count.min(payload.len() / 12));
    let mut at = box_end.saturating_add(first_offset);
    for _ in 0..count {
        let reference = f.u32()?;
        f.skip(8)?; // subsegment_duration, SAP fields
        let is_index = reference >> 31 == 1;
        if !is_index {
            starts.push(at);
        }
        at = at.saturating_add(u64::from(reference & 0x7fff_ffff));
    }
    Ok(starts)
}

/// The moof offsets an `mfra` box's `tfra` boxes name, every track's.
/// `payload` is the mfra after its 8-byte header.
pub fn mfra_starts(payload: &[u8]) -> Result<Vec<u64>, MediaError> {
    let mut starts = Vec::new();
    let mut offset = 0u64;
    let limit = payload.len() as u64;
    while limit - offset >= 8 {
        let from = offset as usize;
        let header = parse_header(&payload[from..], 0, limit - offset, offset)?;
        if &header.kind == b"tfra" {
            let body = &payload[from + header.header_len as usize..from + header.size as usize];
            tfra_starts(body, &mut starts)?;
        }
        offset += header.size;
    }
    Ok(starts)
}

/// Appends the moof offsets of one `tfra` box (its payload).
fn tfra_starts(payload: &[u8], starts: &mut Vec<u64>) -> Result<(), MediaError> {
    let mut f = Fields::new(payload, *b"tfra");
    let version = f.u8()?;
    f.skip(3 + 4)?; // flags, track_ID
    let sizes = f.u32()?;
    // Each of traf_number, trun_number and sample_number takes 1 to 4 bytes.
    let numbers_len =
        ((sizes >> 4) & 3) as usize + ((sizes >> 2) & 3) as usize + (sizes & 3) as usize + 3;
    let times_len = if version == 1 { 16 } else { 8 };
    let count = f.count(times_len + numbers_len)?;
    starts.reserve(count);
    for _ in 0..count {
        let moof = if version == 1 {
            f.skip(8)?;
            f.u64()?
        } else {
            f.skip(4)?;
            u64::from(f.u32()?)
        };
        f.skip(numbers_len)?;
        starts.push(moof);
    }
    Ok(())
}

/// The moof offsets of the mfra at the end of `source`, if its last 16
/// bytes are an mfro naming one; None when there is none or it is damaged
/// (the scan then goes on without a map, as it would anyway).
pub fn mfra_of<R: ReadAt + ?Sized>(source: &R) -> Option<Vec<u64>> {
    let size = source.size();
    let mfro = source
        .read_exact_at(size.checked_sub(MFRO_BYTES)?, MFRO_BYTES as usize)
        .ok()?;
    if &mfro[4..8] != b"mfro" || u32::from_be_bytes([mfro[0], mfro[1], mfro[2], mfro[3]]) != 16 {
        return None;
    }
    let mfra_size = u64::from(u32::from_be_bytes([mfro[12], mfro[13], mfro[14], mfro[15]]));
    if !(MFRO_BYTES + 8..=MAP_LIMIT_BYTES.min(size)).contains(&mfra_size) {
        return None;
    }
    let mfra = source
        .read_exact_at(size - mfra_size, mfra_size as usize)
        .ok()?;
    let header = parse_header(&mfra, 0, mfra_size, size - mfra_size).ok()?;
    if &header.kind != b"mfra" || header.size != mfra_size {
        return None;
    }
    mfra_starts(&mfra[header.header_len as usize..]).ok()
}

/// Whether a sidx of `size` bytes is worth reading for its map.
pub fn is_readable_map(size: u64) -> bool {
    size <= MAP_LIMIT_BYTES
}

/// Asks `source` to read ahead every moof `starts` names from `from` on,
/// in one batch. Starts before `from` or past the end are dropped; nearby
/// ones are asked for as one range. Call it only when [`looks_cold`]: on a
/// file in memory the hints cost a system call a fragment for nothing.
pub fn read_ahead<R: ReadAt + ?Sized>(source: &R, mut starts: Vec<u64>, from: u64) {
    let size = source.size();
    starts.retain(|&start| start >= from && start < size);
    if starts.len() < 2 {
        return; // the scan is about to read it anyway
    }
    starts.sort_unstable();
    starts.dedup();
    for (offset, len) in ranges(&starts, size) {
        source.read_ahead(offset, len);
    }
}

/// Whether `source` looks cold from `from` on: its last byte or the byte
/// halfway there is not in memory (a file read whole lately has both).
pub fn looks_cold<R: ReadAt + ?Sized>(source: &R, from: u64) -> bool {
    let size = source.size();
    if size == 0 || from >= size {
        return false;
    }
    !(source.is_cached(size - 1) && source.is_cached(from + (size - from) / 2))
}

/// The byte ranges to read ahead for sorted fragment starts: each start
/// and [`MOOF_AHEAD_BYTES`] after it, merged where they touch.
fn ranges(starts: &[u64], size: u64) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &start in starts {
        let end = start.saturating_add(MOOF_AHEAD_BYTES).min(size);
        match ranges.last_mut() {
            Some((from, len)) if *from + *len >= start => *len = end.max(*from + *len) - *from,
            _ => ranges.push((start, end - start)),
        }
    }
    ranges
}

#[cfg(test)]
#[path = "fragment_map_tests.rs"]
mod tests;

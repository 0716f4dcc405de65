//! The movie fragments of a fragmented MP4 (the moof boxes after the moov):
//! each track fragment's samples — duration, size, file offset, sync flag,
//! composition offset — from its tfhd, tfdt and trun boxes with the
//! defaults of the moov's trex boxes (ISO/IEC 14496-12, 8.8). Only the moof
//! boxes are read, never the mdat payloads.

use super::boxes::{FourCc, Node, name, parse_header};
use super::tables::Fields;
use crate::media::{MediaError, broken};

/// The sample flag that marks a sample as not a sync sample.
const NON_SYNC: u32 = 0x0001_0000;

// tfhd flags.
const BASE_DATA_OFFSET: u32 = 0x1;
const DESCRIPTION_INDEX: u32 = 0x2;
const DEFAULT_DURATION: u32 = 0x8;
const DEFAULT_SIZE: u32 = 0x10;
const DEFAULT_FLAGS: u32 = 0x20;
const BASE_IS_MOOF: u32 = 0x2_0000;

// trun flags.
const DATA_OFFSET: u32 = 0x1;
const FIRST_SAMPLE_FLAGS: u32 = 0x4;
const SAMPLE_DURATION: u32 = 0x100;
const SAMPLE_SIZE: u32 = 0x200;
const SAMPLE_FLAGS: u32 = 0x400;
const SAMPLE_COMPOSITION: u32 = 0x800;

/// Most samples one trun may declare when it stores nothing per sample (a
/// hostile count would otherwise cost memory for nothing).
const RUN_SAMPLES_LIMIT: u32 = 1_000_000;

/// What a track's fragments inherit from its trex box.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackDefaults {
    pub track_id: u32,
    pub description: u32,
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
}

/// The trex defaults of every track the moov's mvex declares.
pub fn track_defaults(mvex: &Node, moov: &[u8]) -> Result<Vec<TrackDefaults>, MediaError> {
    let mut defaults = Vec::new();
    for (kind, payload, _) in children(mvex.payload(moov), mvex.header.payload_offset())? {
        if &kind == b"trex" {
            let mut f = Fields::new(payload, kind);
            f.skip(4)?;
            defaults.push(TrackDefaults {
                track_id: f.u32()?,
                description: f.u32()?,
                duration: f.u32()?,
                size: f.u32()?,
                flags: f.u32()?,
            });
        }
    }
    Ok(defaults)
}

/// One sample of a track fragment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub duration: u32,
    pub size: u32,
    /// Where its bytes start in the file.
    pub offset: u64,
    /// Presentation minus decode time, in the track's timescale.
    pub composition: i32,
    pub sync: bool,
    /// Its sample description (1-based, into stsd).
    pub description: u32,
}

/// A track's samples in one moof.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TrackFragment {
    pub track_id: u32,
    /// The decode time of its first sample (tfdt), when stated.
    pub decode_time: Option<u64>,
    pub samples: Vec<Sample>,
    /// Whether any run gave composition offsets (and in trun version 1,
    /// which allows them negative).
    pub has_composition: bool,
}

/// Reads the moof box `moof` (whole, header included) found at file offset
/// `moof_offset`, with each track's trex defaults.
pub fn read_moof(
    moof: &[u8],
    moof_offset: u64,
    defaults: &[TrackDefaults],
) -> Result<Vec<TrackFragment>, MediaError> {
    let at = |e: MediaError| broken(format!("fragment at offset {moof_offset}: {e}"));
    let header = parse_header(moof, 0, moof.len() as u64, moof_offset).map_err(at)?;
    let payload = &moof[header.header_len as usize..header.size as usize];
    let mut fragments = Vec::new();
    // A traf without a base offset of its own starts where the one before ended.
    let mut data_end = moof_offset;
    for (kind, traf, traf_at) in children(payload, moof_offset + header.header_len).map_err(at)? {
        if &kind != b"traf" {
            continue;
        }
        let fragment =
            read_traf(traf, traf_at, moof_offset, data_end, defaults).map_err(|e| match e {
                MediaError::Unsupported(_) => e,
                e => at(e),
            })?;
        if let Some(end) = fragment
            .samples
            .iter()
            .map(|s| s.offset + u64::from(s.size))
            .max()
        {
            data_end = end;
        }
        fragments.push(fragment);
    }
    Ok(fragments)
}

/// The tfhd fields a traf's runs use.
struct FragmentHeader {
    track: TrackDefaults,
    base: u64,
}

fn read_tfhd(
    payload: &[u8],
    moof_offset: u64,
    data_end: u64,
    defaults: &[TrackDefaults],
) -> Result<FragmentHeader, MediaError> {
    let mut f = Fields::new(payload, *b"tfhd");
    let flags = f.u32()? & 0x00ff_ffff;
    let track_id = f.u32()?;
    let mut track = *defaults
        .iter()
        .find(|d| d.track_id == track_id)
        .ok_or_else(|| broken(format!("tfhd names track {track_id}, which the moov lacks")))?;
    let base = if flags & BASE_DATA_OFFSET != 0 {
        f.u64()?
    } else if flags & BASE_IS_MOOF != 0 {
        moof_offset
    } else {
        data_end
    };
    if flags & DESCRIPTION_INDEX != 0 {
        track.description = f.u32()?;
    }
    if flags & DEFAULT_DURATION != 0 {
        track.duration = f.u32()?;
    }
    if flags & DEFAULT_SIZE != 0 {
        track.size = f.u32()?;
    }
    if flags & DEFAULT_FLAGS != 0 {
        track.flags = f.u32()?;
    }
    Ok(FragmentHeader { track, base })
}

fn read_traf(
    traf: &[u8],
    traf_at: u64,
    moof_offset: u64,
    data_end: u64,
    defaults: &[TrackDefaults],
) -> Result<TrackFragment, MediaError> {
    let boxes = children(traf, traf_at)?;
    let tfhd = boxes
        .iter()
        .find(|(kind, _, _)| kind == b"tfhd")
        .ok_or_else(|| broken(format!("traf at offset {traf_at} has no tfhd")))?;
    let header = read_tfhd(tfhd.1, moof_offset, data_end, defaults)?;
    let mut fragment = TrackFragment {
        track_id: header.track.track_id,
        ..TrackFragment::default()
    };
    let mut position = header.base;
    let mut sync_groups = None;
    for (kind, payload, _) in &boxes {
        match kind {
            b"tfdt" => {
                let mut f = Fields::new(payload, *kind);
                let version = f.u8()?;
                f.skip(3)?;
                fragment.decode_time = Some(if version == 1 {
                    f.u64()?
                } else {
                    u64::from(f.u32()?)
                });
            }
            b"trun" => {
                position = read_trun(payload, &header, position, &mut fragment)?;
            }
            b"senc" | b"saiz" | b"saio" => {
                return Err(MediaError::Unsupported(format!(
                    "encrypted samples ({} in the fragment at offset {moof_offset}) cannot be served",
                    name(*kind)
                )));
            }
            b"sbgp" => {
                if let Some(groups) = sync_group_counts(payload)? {
                    sync_groups = Some(groups);
                }
            }
            _ => {}
        }
    }
    // Samples a 'sync' sample group maps to an entry are sync samples too
    // (writers that mark keyframes that way leave the flags alone).
    if let Some(groups) = sync_groups {
        let mut samples = fragment.samples.iter_mut();
        for (count, in_group) in groups {
            for sample in samples.by_ref().take(count as usize) {
                sample.sync |= in_group;
            }
        }
    }
    Ok(fragment)
}

/// Reads one trun into `fragment`; its data starts at `position` unless it
/// says where. Returns where its data ends (the next run's default start).
fn read_trun(
    payload: &[u8],
    header: &FragmentHeader,
    position: u64,
    fragment: &mut TrackFragment,
) -> Result<u64, MediaError> {
    let mut f = Fields::new(payload, *b"trun");
    let version = f.u8()?;
    let flags = u32::from_be_bytes([0, f.u8()?, f.u8()?, f.u8()?]);
    let per_sample = [
        SAMPLE_DURATION,
        SAMPLE_SIZE,
        SAMPLE_FLAGS,
        SAMPLE_COMPOSITION,
    ]
    .iter()
    .filter(|&&bit| flags & bit != 0)
    .count()
        * 4;
    let count = f.u32()?;
    let mut offset = position;
    if flags & DATA_OFFSET != 0 {
        let data_offset = i64::from(f.u32()? as i32);
        offset = header
            .base
            .checked_add_signed(data_offset)
            .ok_or_else(|| broken(format!("trun data offset {data_offset} is before the file")))?;
    }
    let first_flags = if flags & FIRST_SAMPLE_FLAGS != 0 {
        Some(f.u32()?)
    } else {
        None
    };
    let left = payload.len() - f.position();
    let fits = if per_sample == 0 {
        count <= RUN_SAMPLES_LIMIT
    } else {
        (count as usize)
            .checked_mul(per_sample)
            .is_some_and(|n| n <= left)
    };
    if !fits {
        return Err(broken(format!(
            "trun claims {count} samples but holds {left} bytes of them"
        )));
    }
    let defaults = &header.track;
    fragment.has_composition |= flags & SAMPLE_COMPOSITION != 0;
    fragment.samples.reserve(count as usize);
    for i in 0..count {
        let mut field = |bit: u32, default: u32| -> Result<u32, MediaError> {
            if flags & bit != 0 {
                f.u32()
            } else {
                Ok(default)
            }
        };
        let duration = field(SAMPLE_DURATION, defaults.duration)?;
        let size = field(SAMPLE_SIZE, defaults.size)?;
        let sample_flags = field(SAMPLE_FLAGS, defaults.flags)?;
        let composition = field(SAMPLE_COMPOSITION, 0)?;
        let sample_flags = match first_flags {
            Some(first) if i == 0 => first,
            _ => sample_flags,
        };
        // Version 0 stores the offsets unsigned; no writer needs more
        // than 31 bits, and reading them signed keeps one representation.
        let composition = if version == 0 {
            composition.min(i32::MAX as u32) as i32
        } else {
            composition as i32
        };
        fragment.samples.push(Sample {
            duration,
            size,
            offset,
            composition,
            sync: sample_flags & NON_SYNC == 0,
            description: defaults.description,
        });
        offset = offset
            .checked_add(u64::from(size))
            .ok_or_else(|| broken("trun sample offsets overflow"))?;
    }
    Ok(offset)
}

/// A 'sync' sbgp's runs as (sample count, whether they are in a group);
/// None for any other grouping.
fn sync_group_counts(payload: &[u8]) -> Result<Option<Vec<(u32, bool)>>, MediaError> {
    let mut f = Fields::new(payload, *b"sbgp");
    let version = f.u8()?;
    f.skip(3)?;
    if f.take(4)? != b"sync" {
        return Ok(None);
    }
    if version == 1 {
        f.skip(4)?;
    }
    let runs = f
        .entries(8)?
        .map(|e| {
            let count = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            let group = u32::from_be_bytes([e[4], e[5], e[6], e[7]]);
            (count, group != 0)
        })
        .collect();
    Ok(Some(runs))
}

/// A box inside a moof: its kind, its payload and the payload's file offset.
type Child<'a> = (FourCc, &'a [u8], u64);

/// The boxes inside `payload` (which starts at file offset `at`).
fn children(payload: &[u8], at: u64) -> Result<Vec<Child<'_>>, MediaError> {
    let mut boxes = Vec::new();
    let mut offset = 0u64;
    let limit = payload.len() as u64;
    while limit - offset >= 8 {
        let from = offset as usize;
        let header = parse_header(&payload[from..], 0, limit - offset, at + offset)?;
        let start = from + header.header_len as usize;
        let end = from + header.size as usize;
        boxes.push((header.kind, &payload[start..end], at + start as u64));
        offset += header.size;
    }
    Ok(boxes)
}

#[cfg(test)]
#[path = "fragments_tests.rs"]
mod tests;

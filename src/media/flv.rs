//! FLV: the keyframe index (from `onMetaData` or a scan of the tags) and seeked
//! responses.
//!
//! A seeked body is a fresh 13-byte FLV header, the AVC/AAC sequence-header
//! tags of the file (an H.264 or AAC decoder cannot start without them; their
//! timestamps set to the keyframe's), then the file from the keyframe's tag.

use std::rc::Rc;

use super::amf::{self, Value};
use super::query::{Seek, Units};
use super::timeline::{self, TimePoint, Timeline};
use super::window::Window;
use super::{MediaError, Prefix, Prepared, ReadAt, broken};

const TAG_HEADER_BYTES: u64 = 11;
const PREVIOUS_TAG_SIZE_BYTES: u64 = 4;
const TAG_AUDIO: u8 = 8;
const TAG_VIDEO: u8 = 9;
const TAG_SCRIPT: u8 = 18;
const CODEC_AVC: u8 = 7;
const SOUND_AAC: u8 = 10;
const FRAME_KEY: u8 = 1;
/// Largest script tag decoded for onMetaData.
const METADATA_LIMIT_BYTES: u64 = 4 * 1024 * 1024;
/// Tags read after the first keyframe when metadata already gives the index.
const TAGS_AFTER_KEYFRAME: usize = 64;
/// Read-ahead window of the tag scan.
const SCAN_WINDOW_BYTES: usize = 1024 * 1024;

/// A place a seeked body may start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeekPoint {
    pub seconds: f64,
    /// File offset of the tag's first byte.
    pub offset: u64,
}

/// Everything a seek needs to know about an FLV file.
#[derive(Debug)]
pub struct FlvIndex {
    /// The audio/video flags byte of the file's header.
    pub header_flags: u8,
    pub file_size: u64,
    /// Offset of the first tag.
    pub first_tag: u64,
    /// Keyframes (or, in a file without video, every audio tag), by time.
    pub seek_points: Vec<SeekPoint>,
    /// The AVC and AAC sequence-header tags, each with its PreviousTagSize.
    pub sequence_headers: Vec<Vec<u8>>,
    pub duration: f64,
    /// Whether the seek points came from onMetaData (else from a scan).
    pub from_metadata: bool,
    points: Rc<[TimePoint]>,
}

impl FlvIndex {
    /// Memory held, for the cache's budget.
    pub fn weight(&self) -> usize {
        std::mem::size_of::<FlvIndex>()
            + self.seek_points.capacity() * std::mem::size_of::<SeekPoint>()
            + self.points.len() * std::mem::size_of::<TimePoint>()
            + self
                .sequence_headers
                .iter()
                .map(Vec::capacity)
                .sum::<usize>()
    }
}

/// One tag's header.
struct Tag {
    offset: u64,
    kind: u8,
    data_size: u64,
    timestamp_ms: u32,
    /// First two bytes of the data (codec and packet type), when present.
    first: [u8; 2],
}

impl Tag {
    fn end(&self) -> u64 {
        self.offset + TAG_HEADER_BYTES + self.data_size + PREVIOUS_TAG_SIZE_BYTES
    }

    fn is_keyframe(&self) -> bool {
        self.kind == TAG_VIDEO && self.first[0] >> 4 == FRAME_KEY && !self.is_avc_sequence_header()
    }

    fn is_avc_sequence_header(&self) -> bool {
        self.kind == TAG_VIDEO && self.first[0] & 0x0f == CODEC_AVC && self.first[1] == 0
    }

    fn is_aac_sequence_header(&self) -> bool {
        self.kind == TAG_AUDIO && self.first[0] >> 4 == SOUND_AAC && self.first[1] == 0
    }
}

/// The tag at `offset`, through the scan's read-ahead window.
fn read_tag<R: ReadAt + ?Sized>(
    window: &mut Window<'_, R>,
    offset: u64,
) -> std::io::Result<Option<Tag>> {
    let raw = window.get(offset, TAG_HEADER_BYTES as usize + 2)?;
    if raw.len() < TAG_HEADER_BYTES as usize {
        return Ok(None);
    }
    let data_size = u64::from(u32::from_be_bytes([0, raw[1], raw[2], raw[3]]));
    let timestamp_ms = u32::from_be_bytes([raw[7], raw[4], raw[5], raw[6]]);
    let first = [
        raw.get(11).copied().unwrap_or(0),
        raw.get(12).copied().unwrap_or(0),
    ];
    Ok(Some(Tag {
        offset,
        kind: raw[0] & 0x1f,
        data_size,
        timestamp_ms,
        first,
    }))
}

/// Builds the index of an FLV file.
pub fn index<R: ReadAt + ?Sized>(source: &R) -> Result<FlvIndex, MediaError> {
    let file_size = source.size();
    let header = source
        .read_exact_at(0, 9)
        .map_err(|_| broken("FLV header: the file is shorter than 9 bytes"))?;
    if &header[..3] != b"FLV" {
        return Err(broken("FLV header: no 'FLV' signature at offset 0"));
    }
    if header[3] != 1 {
        return Err(broken(format!(
            "FLV header: unknown version {} at offset 3",
            header[3]
        )));
    }
    let data_offset = u64::from(u32::from_be_bytes([
        header[5], header[6], header[7], header[8],
    ]));
    if data_offset < 9 || data_offset > file_size {
        return Err(broken(format!(
            "FLV header: data offset {data_offset} at offset 5 is invalid"
        )));
    }
    let first_tag = data_offset + PREVIOUS_TAG_SIZE_BYTES;
    let mut window = Window::new(source, SCAN_WINDOW_BYTES);
    let mut keyframes = Vec::new();
    let mut audio_points = Vec::new();
    let mut sequence_headers: Vec<Vec<u8>> = Vec::new();
    let (mut have_avc, mut have_aac) = (false, false);
    let mut metadata: Option<(Vec<SeekPoint>, f64)> = None;
    let mut last_timestamp = 0u32;
    let mut tags_after_keyframe = 0usize;
    let mut offset = first_tag;
    let mut tag_count = 0usize;
    // Every tag's end by time, for the timeline of a scanned file.
    let mut tag_ends: Vec<(u64, u64)> = Vec::new();
    while let Some(tag) = read_tag(&mut window, offset)? {
        if tag.end() > file_size + PREVIOUS_TAG_SIZE_BYTES {
            break; // truncated last tag: what came before is still usable
        }
        tag_count += 1;
        last_timestamp = last_timestamp.max(tag.timestamp_ms);
        let seconds = f64::from(tag.timestamp_ms) / 1000.0;
        if metadata.is_none() && tag.kind != TAG_SCRIPT {
            let step = (seconds / timeline::TIMELINE_STEP_SECS) as u64;
            tag_ends.push((step, tag.end().min(file_size)));
        }
        match tag.kind {
            TAG_SCRIPT if metadata.is_none() && tag.data_size <= METADATA_LIMIT_BYTES => {
                let data =
                    source.read_exact_at(tag.offset + TAG_HEADER_BYTES, tag.data_size as usize)?;
                metadata = metadata_index(&data, first_tag, file_size);
            }
            TAG_VIDEO if tag.is_avc_sequence_header() && !have_avc => {
                have_avc = true;
                sequence_headers
                    .push(source.read_exact_at(tag.offset, (tag.end() - tag.offset) as usize)?);
            }
            TAG_AUDIO if tag.is_aac_sequence_header() && !have_aac => {
                have_aac = true;
                sequence_headers
                    .push(source.read_exact_at(tag.offset, (tag.end() - tag.offset) as usize)?);
            }
            TAG_VIDEO if tag.is_keyframe() => keyframes.push(SeekPoint {
                seconds,
                offset: tag.offset,
            }),
            TAG_AUDIO if keyframes.is_empty() => audio_points.push(SeekPoint {
                seconds,
                offset: tag.offset,
            }),
            _ => {}
        }
        if metadata.is_some() && !keyframes.is_empty() {
            tags_after_keyframe += 1;
            if tags_after_keyframe > TAGS_AFTER_KEYFRAME {
                break; // the metadata gives the index; the start of the file gave the codec headers
            }
        }
        offset = tag.end();
    }
    if tag_count == 0 {
        return Err(broken(format!(
            "FLV: no complete tag after the header (first tag at offset {first_tag})"
        )));
    }
    let (seek_points, duration, from_metadata) = match metadata {
        Some((points, duration)) => (points, duration, true),
        None => {
            let points = if keyframes.is_empty() {
                audio_points
            } else {
                keyframes
            };
            (points, f64::from(last_timestamp) / 1000.0, false)
        }
    };
    if seek_points.is_empty() {
        return Err(broken("FLV: no keyframe and no audio tag to seek to"));
    }
    let end_seconds = duration.max(seek_points.last().map_or(0.0, |p| p.seconds));
    let points = if from_metadata {
        // Only the keyframes are known without reading the whole file: the
        // timeline interpolates between them, as the original did.
        let mut points: Vec<TimePoint> = seek_points
            .iter()
            .map(|p| TimePoint {
                seconds: p.seconds,
                offset: p.offset,
            })
            .collect();
        points.push(TimePoint {
            seconds: end_seconds,
            offset: file_size,
        });
        timeline::monotonic(points)
    } else {
        timeline::from_sample_ends(tag_ends, end_seconds, timeline::TIMELINE_STEP_SECS)
    };
    Ok(FlvIndex {
        header_flags: header[4],
        file_size,
        first_tag,
        seek_points,
        sequence_headers,
        duration: end_seconds,
        from_metadata,
        points,
    })
}

/// The keyframe index in an onMetaData script tag, when present and sane:
/// equal, non-empty arrays; times non-decreasing; positions increasing and inside the file.
fn metadata_index(data: &[u8], first_tag: u64, file_size: u64) -> Option<(Vec<SeekPoint>, f64)> {
    // A damaged tail still leaves the values decoded before it.
    let values = amf::decode_all(data).ok()?;
    let mut values = values.iter();
    if values.next()? != &Value::String("onMetaData".into()) {
        return None;
    }
    let meta = values.next()?;
    let keyframes = meta.get("keyframes")?;
    let times = keyframes.get("times")?.as_numbers()?;
    let positions = keyframes.get("filepositions")?.as_numbers()?;
    if times.is_empty() || times.len() != positions.len() {
        return None;
    }
    let mut points = Vec::with_capacity(times.len());
    for (&seconds, &position) in times.iter().zip(&positions) {
        let sane_time = seconds.is_finite()
            && seconds >= 0.0
            && points
                .last()
                .is_none_or(|p: &SeekPoint| seconds >= p.seconds);
        let sane_position = position.fract() == 0.0
            && position >= first_tag as f64
            && position < file_size as f64
            && points
                .last()
                .is_none_or(|p: &SeekPoint| position > p.offset as f64);
        if !sane_time || !sane_position {
            return None;
        }
        points.push(SeekPoint {
            seconds,
            offset: position as u64,
        });
    }
    let duration = meta
        .get("duration")
        .and_then(Value::as_number)
        .filter(|d| d.is_finite() && *d > 0.0);
    let last = points.last()?.seconds;
    Some((points, duration.unwrap_or(last).max(last)))
}

impl FlvIndex {
    /// The timeline of the whole file, for a plain (unseeked) request.
    pub fn whole_file_timeline(&self) -> Timeline {
        Timeline::new(
            Rc::clone(&self.points),
            0.0,
            self.duration,
            0,
            0,
            self.file_size,
        )
    }
}

/// Prepares the body for `seek` on an indexed FLV file.
pub fn prepare(index: &FlvIndex, seek: &Seek) -> Result<Prepared, MediaError> {
    let points = &index.seek_points;
    let position = |value: f64| -> usize {
        // The last seek point at or before `value` (the first one when `value` is before them all).
        let after = match seek.units {
            Units::Seconds => points.partition_point(|p| p.seconds <= value),
            Units::Bytes => points.partition_point(|p| (p.offset as f64) <= value),
        };
        after.saturating_sub(1)
    };
    match seek.units {
        Units::Seconds if seek.start >= index.duration && seek.start > 0.0 => {
            return Err(MediaError::BadSeek(format!(
                "start={} is past the end of the media ({:.3} s)",
                seek.start, index.duration
            )));
        }
        Units::Bytes if seek.start >= index.file_size as f64 => {
            return Err(MediaError::BadSeek(format!(
                "start={} is past the end of the file ({} bytes)",
                seek.start, index.file_size
            )));
        }
        _ => {}
    }
    let first = position(seek.start);
    let start = points[first];
    let (file_end, end_seconds) = if seek.stop > 0.0 {
        // End at the keyframe at or before stop, but keep at least the GOP that starts the body.
        let last = position(seek.stop).max(first + 1);
        match points.get(last) {
            Some(point) => (point.offset, point.seconds),
            None => (index.file_size, index.duration),
        }
    } else {
        (index.file_size, index.duration)
    };
    let timestamp_ms = (start.seconds * 1000.0)
        .round()
        .clamp(0.0, f64::from(u32::MAX)) as u32;
    let mut prefix =
        Vec::with_capacity(13 + index.sequence_headers.iter().map(Vec::len).sum::<usize>());
    prefix.extend_from_slice(b"FLV\x01");
    prefix.push(index.header_flags);
    prefix.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 0]);
    for tag in &index.sequence_headers {
        let at = prefix.len();
        prefix.extend_from_slice(tag);
        let ts = timestamp_ms.to_be_bytes();
        prefix[at + 4..at + 7].copy_from_slice(&ts[1..4]);
        prefix[at + 7] = ts[0];
    }
    let prefix_len = prefix.len() as u64;
    Ok(Prepared {
        timeline: Timeline::new(
            Rc::clone(&index.points),
            start.seconds,
            end_seconds,
            prefix_len,
            start.offset,
            file_end,
        ),
        prefix: Prefix::Bytes(prefix),
        file_start: start.offset,
        file_end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tag with its PreviousTagSize.
    fn tag(kind: u8, timestamp_ms: u32, data: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
        let ts = timestamp_ms.to_be_bytes();
        out.extend_from_slice(&[ts[1], ts[2], ts[3], ts[0], 0, 0, 0]);
        out.extend_from_slice(data);
        out.extend_from_slice(&(11 + data.len() as u32).to_be_bytes());
        out
    }

    /// H.264/AAC FLV without metadata: sequence headers, then a keyframe every second.
    fn avc_file() -> (Vec<u8>, Vec<u64>) {
        let mut file = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        file.extend(tag(TAG_VIDEO, 0, &[0x17, 0, 0, 0, 0, 1, 2, 3]));
        file.extend(tag(TAG_AUDIO, 0, &[0xaf, 0, 0x12, 0x10]));
        let mut keyframes = Vec::new();
        for second in 0..5u32 {
            keyframes.push(file.len() as u64);
            file.extend(tag(TAG_VIDEO, second * 1000, &[0x17, 1, 0, 0, 0, 9, 9]));
            file.extend(tag(TAG_AUDIO, second * 1000 + 10, &[0xaf, 1, 5, 5]));
            file.extend(tag(TAG_VIDEO, second * 1000 + 500, &[0x27, 1, 0, 0, 0, 8]));
        }
        (file, keyframes)
    }

    fn seek(start: f64, stop: f64, units: Units) -> Seek {
        Seek { start, stop, units }
    }

    #[test]
    fn scans_keyframes_and_sequence_headers() {
        let (file, keyframes) = avc_file();
        let index = index(file.as_slice()).expect("valid");
        assert!(!index.from_metadata);
        assert_eq!(
            index
                .seek_points
                .iter()
                .map(|p| p.offset)
                .collect::<Vec<_>>(),
            keyframes
        );
        assert_eq!(index.sequence_headers.len(), 2);
        assert_eq!(index.header_flags, 5);
    }

    #[test]
    fn seeks_resend_sequence_headers_with_the_keyframe_timestamp() {
        let (file, keyframes) = avc_file();
        let index = index(file.as_slice()).expect("valid");
        let prepared = prepare(&index, &seek(2.5, 0.0, Units::Seconds)).expect("seek");
        assert_eq!(prepared.file_start, keyframes[2]);
        assert_eq!(prepared.file_end, file.len() as u64);
        let Prefix::Bytes(prefix) = &prepared.prefix else {
            panic!("bytes")
        };
        assert_eq!(
            &prefix[..13],
            b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
        );
        assert_eq!(prefix[13], TAG_VIDEO);
        assert_eq!(
            &prefix[13 + 4..13 + 8],
            &[0, 0x07, 0xd0, 0],
            "timestamp 2000 ms"
        );
        assert_eq!(prefix.len(), 13 + 23 + 19);
        assert_eq!(
            prepared.len(),
            prefix.len() as u64 + file.len() as u64 - keyframes[2]
        );
    }

    #[test]
    fn byte_seeks_and_stops_snap_to_keyframes() {
        let (file, keyframes) = avc_file();
        let index = index(file.as_slice()).expect("valid");
        let by_bytes =
            prepare(&index, &seek(keyframes[3] as f64 + 5.0, 0.0, Units::Bytes)).expect("seek");
        assert_eq!(by_bytes.file_start, keyframes[3]);
        let window = prepare(&index, &seek(1.0, 3.5, Units::Seconds)).expect("seek");
        assert_eq!(
            (window.file_start, window.file_end),
            (keyframes[1], keyframes[3])
        );
        let early = prepare(&index, &seek(0.2, 0.4, Units::Seconds)).expect("seek");
        assert_eq!(
            (early.file_start, early.file_end),
            (keyframes[0], keyframes[1]),
            "at least one GOP"
        );
        assert!(matches!(
            prepare(&index, &seek(99.0, 0.0, Units::Seconds)),
            Err(MediaError::BadSeek(_))
        ));
    }

    #[test]
    fn audio_only_files_seek_on_tag_timestamps() {
        let mut file = b"FLV\x01\x04\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        let mut offsets = Vec::new();
        for i in 0..10u32 {
            offsets.push(file.len() as u64);
            file.extend(tag(TAG_AUDIO, i * 100, &[0x2f, 1, 2, 3]));
        }
        let index = index(file.as_slice()).expect("valid");
        assert!(index.sequence_headers.is_empty());
        let prepared = prepare(&index, &seek(0.45, 0.0, Units::Seconds)).expect("seek");
        assert_eq!(prepared.file_start, offsets[4]);
        assert_eq!(prepared.prefix.len(), 13);
    }

    #[test]
    fn broken_files_are_errors_not_panics() {
        assert!(index(&b"NOT AN FLV FILE"[..]).is_err());
        assert!(index(&b"FLV\x02\x05\x00\x00\x00\x09"[..]).is_err());
        assert!(index(&b"FLV\x01\x05\xff\xff\xff\xff\x00\x00\x00\x00"[..]).is_err());
        let (file, _) = avc_file();
        for cut in [13, 20, 40, file.len() - 3] {
            let _ = index(&file[..cut]);
        }
        let truncated = index(&file[..file.len() - 3]).expect("usable up to the cut");
        assert!(!truncated.seek_points.is_empty());
    }
}

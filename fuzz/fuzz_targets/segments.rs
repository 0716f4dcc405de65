//! The HLS/DASH segment planner and segment writer on any MP4 bytes, with a
//! random segment length and clip: every segment's file ranges lie inside
//! the file, and its truns describe the bytes of its mdat, each once, with
//! no hole longer than the gaps the writer fills (fmp4::GAP_FILL_BYTES).
#![no_main]

use libfuzzer_sys::fuzz_target;
use loomiere::media::mp4;
use loomiere::package::fmp4;
use loomiere::package::plan::{Clip, Plan};

/// Most segments checked per input, so that one input stays fast.
const SEGMENTS_CHECKED: usize = 40;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let segment_seconds = 0.5 + f64::from(data[0] % 120) / 2.0;
    let clip = Clip {
        start: f64::from(data[1]) / 16.0,
        stop: if data[2] == 0 { 0.0 } else { f64::from(data[1]) / 16.0 + f64::from(data[2]) / 8.0 },
    };
    let file = &data[3..];
    let Ok(index) = mp4::index(file) else { return };
    let Ok(plan) = Plan::build(&index, clip, segment_seconds) else { return };
    assert_eq!(plan.main.len(), plan.durations.len());
    for (n, ranges) in plan.main.iter().enumerate().take(SEGMENTS_CHECKED) {
        let segment = fmp4::media_segment(&index, &plan.roles.main, ranges, n as u32 + 1);
        check(&segment, file.len() as u64);
    }
    for (k, ranges) in plan.extra.iter().enumerate() {
        for range in ranges.iter().take(SEGMENTS_CHECKED) {
            let track = plan.roles.extra_audio[k];
            let segment = fmp4::media_segment(&index, &[track], std::slice::from_ref(range), 1);
            check(&segment, file.len() as u64);
        }
    }
    let _ = fmp4::init_segment(&index, &plan.roles.main);
});

/// The ranges stay inside the file; the head's mdat is as long as the
/// ranges; each trun's samples lie inside the mdat, no two truns share a
/// byte, and what no trun references is only small gaps between them.
fn check(segment: &fmp4::Segment, file_len: u64) {
    let mut payload = 0u64;
    for range in &segment.ranges {
        assert!(range.start <= range.end && range.end <= file_len, "{range:?} outside {file_len}");
        payload += range.end - range.start;
    }
    let head = &segment.head;
    let be32 = |at: usize| u32::from_be_bytes(head[at..at + 4].try_into().expect("4")) as u64;
    let styp = be32(0) as usize;
    let moof_at = styp;
    let moof_len = be32(moof_at) as usize;
    let mdat_at = moof_at + moof_len;
    let (mdat_header, mdat_size) = if be32(mdat_at) == 1 {
        (16u64, u64::from_be_bytes(head[mdat_at + 8..mdat_at + 16].try_into().expect("8")))
    } else {
        (8, be32(mdat_at))
    };
    assert_eq!(mdat_at + mdat_header as usize, head.len(), "the head ends with the mdat header");
    assert_eq!(mdat_size, mdat_header + payload, "the mdat holds exactly the ranges");
    // Walk moof → traf → trun.
    let payload_start = moof_len as u64 + mdat_header;
    let mut spans = Vec::new();
    let mut at = moof_at + 8;
    while at < mdat_at {
        let size = be32(at) as usize;
        if &head[at + 4..at + 8] == b"traf" {
            let mut inner = at + 8;
            while inner < at + size {
                let inner_size = be32(inner) as usize;
                if &head[inner + 4..inner + 8] == b"trun" {
                    let flags = be32(inner + 8) & 0xff_ffff;
                    let count = be32(inner + 12) as usize;
                    let offset = be32(inner + 16);
                    let per_sample = if flags & 0x800 != 0 { 16 } else { 12 };
                    let bytes: u64 = (0..count).map(|i| be32(inner + 20 + i * per_sample + 4)).sum();
                    assert!(
                        offset >= payload_start && offset + bytes <= payload_start + payload,
                        "a trun points outside the mdat"
                    );
                    spans.push((offset - payload_start, bytes));
                }
                inner += inner_size;
            }
        }
        at += size;
    }
    spans.sort_unstable();
    // Samples of no bytes mark their place too: the holes are between pieces.
    let mut covered: Option<u64> = None;
    for &(start, bytes) in &spans {
        let before = covered.unwrap_or(0);
        assert!(start >= before, "two truns share mdat bytes");
        assert!(
            start - before <= fmp4::GAP_FILL_BYTES && (covered.is_some() || start == 0),
            "{} unreferenced mdat bytes at {before}",
            start - before
        );
        covered = Some(start + bytes);
    }
    assert_eq!(covered.unwrap_or(0), payload, "the mdat ends with its last sample");
}

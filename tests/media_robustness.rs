//! Damaged media never panics and never runs away: thousands of random
//! mutations of real fixtures go through indexing, seeking and header
//! generation, which must each return a value or an error.

use std::rc::Rc;
use std::time::{Duration, Instant};

use loomiere::media::{Seek, SeekMode, Units, flv, mp4};
use loomiere::package::fmp4;
use loomiere::package::plan::{Clip, Plan};

struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/media/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

/// Flips bytes, writes hostile 32-bit values (sizes, counts, offsets) at box
/// boundaries, or truncates.
fn mutate(original: &[u8], random: &mut Random) -> Vec<u8> {
    let mut data = original.to_vec();
    for _ in 0..1 + random.below(4) {
        match random.below(4) {
            0 => {
                let at = random.below(data.len());
                data[at] ^= 1 << random.below(8);
            }
            1 => {
                let at = random.below(data.len().saturating_sub(4));
                let value = match random.below(5) {
                    0 => 0,
                    1 => 1,
                    2 => u32::MAX,
                    3 => 0x8000_0000,
                    _ => random.next() as u32,
                };
                data[at..at + 4].copy_from_slice(&value.to_be_bytes());
            }
            2 => data.truncate(random.below(data.len()) + 1),
            _ => {
                // Aim at a table: overwrite a u32 just after a known box name.
                for name in [
                    &b"stsc"[..],
                    b"stts",
                    b"stsz",
                    b"stco",
                    b"ctts",
                    b"stss",
                    b"elst",
                    b"mdhd",
                ] {
                    if let Some(at) = data.windows(4).position(|w| w == name) {
                        let target = at + 4 + 4 * random.below(4);
                        if target + 4 <= data.len() {
                            data[target..target + 4].copy_from_slice(
                                &(random.next() as u32 >> random.below(32)).to_be_bytes(),
                            );
                        }
                    }
                }
            }
        }
    }
    data
}

fn exercise_mp4(data: &[u8]) -> usize {
    let Ok(index) = mp4::index(data) else {
        return 0;
    };
    let mut prepared_count = 0;
    let index = Rc::new(index);
    for (start, stop) in [(0.5, 0.0), (1.7, 3.1), (0.0, 2.0), (3.9, 0.0)] {
        for mode in [SeekMode::Keyframe, SeekMode::Exact] {
            if let Ok(prepared) = mp4::prepare(
                &index,
                &Seek {
                    start,
                    stop,
                    units: Units::Seconds,
                },
                mode,
            ) {
                prepared_count += 1;
                let mut out = Vec::new();
                let len = prepared.prefix.len().min(4 << 20);
                prepared.prefix.write(0, len, &mut out);
                assert!(
                    prepared.file_start <= prepared.file_end
                        && prepared.file_end <= data.len() as u64
                );
                let _ = prepared.timeline.body_offset_at(1.0);
            }
        }
    }
    exercise_packaging(&index);
    prepared_count
}

/// HLS/DASH packaging of the same index: the plan, the init segment and the
/// first media segments are built without a panic.
fn exercise_packaging(index: &mp4::Mp4Index) {
    let whole = Clip {
        start: 0.0,
        stop: 0.0,
    };
    let Ok(plan) = Plan::build(index, whole, 6.0) else {
        return;
    };
    let _ = fmp4::init_segment(index, &plan.roles.main);
    for (n, ranges) in plan.main.iter().enumerate().take(8) {
        let _ = fmp4::media_segment(index, &plan.roles.main, ranges, n as u32 + 1);
    }
}

fn exercise_flv(data: &[u8]) -> usize {
    let Ok(index) = flv::index(data) else {
        return 0;
    };
    let mut prepared_count = 0;
    for (start, stop, units) in [
        (0.5, 0.0, Units::Seconds),
        (2.0, 3.5, Units::Seconds),
        (5000.0, 0.0, Units::Bytes),
    ] {
        if let Ok(prepared) = flv::prepare(&index, &Seek { start, stop, units }) {
            prepared_count += 1;
            assert!(
                prepared.file_start <= prepared.file_end && prepared.file_end <= data.len() as u64
            );
        }
    }
    prepared_count
}

#[test]
fn mutated_mp4_files_never_panic() {
    let original = fixture("sample.mp4");
    let mut random = Random(0x5eed);
    let started = Instant::now();
    let mut prepared = 0;
    for _ in 0..3000 {
        let data = mutate(&original, &mut random);
        prepared += exercise_mp4(&data);
    }
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "parsing is bounded in time"
    );
    // Many mutations leave a seekable file: the deep paths did run.
    assert!(prepared > 3000, "only {prepared} seeks were prepared");
}

#[test]
fn mutated_flv_files_never_panic() {
    let original = fixture("sample.flv");
    let mut random = Random(0xf1f1);
    let mut prepared = 0;
    for _ in 0..3000 {
        let data = mutate(&original, &mut random);
        prepared += exercise_flv(&data);
    }
    assert!(prepared > 3000, "only {prepared} seeks were prepared");
}

/// Inputs the fuzzers (fuzz/run.sh) once crashed on, kept so they never return.
#[test]
fn fuzzer_findings_stay_fixed() {
    let folder = format!("{}/tests/media/regressions", env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for entry in std::fs::read_dir(folder).expect("tests/media/regressions") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("read");
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("mp4-") {
            exercise_mp4(&data);
        } else if name.starts_with("flv-") {
            exercise_flv(&data);
        }
        count += 1;
    }
    assert!(count >= 2);
}

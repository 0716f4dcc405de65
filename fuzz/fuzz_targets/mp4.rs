//! MP4 indexing (box tree, sample tables) and seek preparation, with the
//! whole rewritten header generated, on any bytes.
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use loomiere::media::{Seek, SeekMode, Units, mp4};

fuzz_target!(|data: &[u8]| {
    let Ok(index) = mp4::index(data) else { return };
    let index = Rc::new(index);
    for (start, stop) in [(0.5, 0.0), (1.5, 2.5)] {
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
                assert!(prepared.file_start <= prepared.file_end);
                assert!(prepared.file_end <= data.len() as u64);
                let mut out = Vec::new();
                prepared
                    .prefix
                    .write(0, prepared.prefix.len().min(1 << 22), &mut out);
            }
        }
    }
});

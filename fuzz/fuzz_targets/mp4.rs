//! MP4 indexing (box tree, sample tables) and seek preparation, with the
//! whole rewritten header generated, on any bytes. The bytes pose as a file
//! not in memory, so a fragmented file's sidx or mfra is read for the moofs
//! to read ahead, and every range asked for must lie inside the file.
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use loomiere::media::{ReadAt, Seek, SeekMode, Units, mp4};

/// The input as a file none of whose bytes are in memory.
struct Cold<'a>(&'a [u8]);

impl ReadAt for Cold<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn is_cached(&self, _offset: u64) -> bool {
        false
    }
    fn read_ahead(&self, offset: u64, len: u64) {
        assert!(len > 0 && offset + len <= self.size(), "read ahead {len} at {offset}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(index) = mp4::index(&Cold(data)) else { return };
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

//! FLV indexing (tag scan, AMF0 metadata) and seek preparation on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loomiere::media::{Seek, Units, flv};

fuzz_target!(|data: &[u8]| {
    let Ok(index) = flv::index(data) else { return };
    for (start, stop, units) in [
        (0.5, 0.0, Units::Seconds),
        (2.0, 3.5, Units::Seconds),
        (100.0, 0.0, Units::Bytes),
    ] {
        if let Ok(prepared) = flv::prepare(&index, &Seek { start, stop, units }) {
            assert!(prepared.file_start <= prepared.file_end);
            assert!(prepared.file_end <= data.len() as u64);
        }
    }
});

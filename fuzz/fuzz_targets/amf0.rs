//! AMF0 values (FLV onMetaData) on any bytes: errors, never panics or
//! unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loomiere::media::amf;

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = amf::decode_all(data) {
        for value in &values {
            let _ = value.as_number();
            let _ = value.as_numbers();
            let _ = value.get("keyframes");
        }
    }
});

//! Range headers, seek arguments and the query helpers, on any text: no
//! panic, and every answer inside the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loomiere::http::range::{RangeOutcome, evaluate};
use loomiere::http::target;
use loomiere::media::query;

fuzz_target!(|data: &[u8]| {
    let (size_bytes, text) = data.split_at(data.len().min(8));
    let mut size = [0u8; 8];
    size[..size_bytes.len()].copy_from_slice(size_bytes);
    let size = u64::from_le_bytes(size) >> 16;
    let Ok(text) = std::str::from_utf8(text) else { return };
    if let RangeOutcome::Partial { first, last } = evaluate(text, size) {
        assert!(first <= last && last < size, "{text:?} of {size}: {first}-{last}");
    }
    if let Ok(Some(seek)) = query::parse(text) {
        assert!(seek.start.is_finite() && seek.start >= 0.0, "{text:?}");
        assert!(seek.stop.is_finite() && seek.stop >= 0.0, "{text:?}");
        assert!(seek.stop == 0.0 || seek.stop > seek.start, "{text:?}");
    }
    let without = target::without_arguments(text, &["hint", "token"]);
    assert!(target::argument(&without, "hint").is_none() || !text.contains('?'));
    assert!(without.len() <= text.len());
});

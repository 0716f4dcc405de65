//! Request heads, and the strings taken from them: Range values, seek
//! queries and paths through the sandbox's decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loomiere::http::{Parsed, range, request};
use loomiere::media::query;
use loomiere::route::sandbox;

fuzz_target!(|data: &[u8]| {
    if let Parsed::Complete(request, len) = request::parse(data) {
        assert!(len <= data.len());
        if let Some(value) = &request.range {
            if let range::RangeOutcome::Partial { first, last } = range::evaluate(value, 1_000_000)
            {
                assert!(first <= last && last < 1_000_000);
            }
        }
        if let Some(query) = sandbox::query_of(&request.target) {
            let _ = query::parse(query);
        }
        if let Ok(relative) = sandbox::relative_path(sandbox::path_of(&request.target)) {
            assert!(!relative.starts_with(b"/"));
            assert!(
                !relative
                    .split(|&b| b == b'/')
                    .any(|segment| segment == b"..")
            );
        }
    }
});

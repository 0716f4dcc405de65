//! Request heads, and the strings taken from them: Range values, seek
//! queries and paths through the sandbox's decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loomiere::http::{Parsed, range, request};
use loomiere::media::query;
use loomiere::files::sandbox;
use loomiere::http::target::Target;

fuzz_target!(|data: &[u8]| {
    if let Parsed::Complete(request, len) = request::parse(data) {
        assert!(len <= data.len());
        if let Some(value) = &request.range {
            if let range::RangeOutcome::Partial { first, last } = range::evaluate(value, 1_000_000)
            {
                assert!(first <= last && last < 1_000_000);
            }
        }
        let target = Target::split(&request.target);
        if let Some(query) = target.query {
            let _ = query::parse(query);
        }
        if let Ok(relative) = sandbox::relative_path(target.path) {
            assert!(!relative.starts_with(b"/"));
            assert!(
                !relative
                    .split(|&b| b == b'/')
                    .any(|segment| segment == b"..")
            );
        }
    }
});

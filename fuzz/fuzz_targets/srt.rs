//! SRT to WebVTT on any bytes: either a refusal naming a line of the input,
//! or a WebVTT file whose every block is one well-formed cue.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loomiere::media::subtitles;

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n' || b == b'\r').count().max(1);
    let vtt = match subtitles::srt_to_webvtt(data) {
        Ok(vtt) => vtt,
        Err(e) => {
            assert!(e.line >= 1 && e.line <= lines, "{e} of {lines} lines");
            return;
        }
    };
    let mut blocks = vtt.split("\n\n");
    assert_eq!(blocks.next(), Some("WEBVTT"));
    let mut cues = 0;
    for block in blocks {
        let block = block.strip_suffix('\n').unwrap_or(block);
        let mut block_lines = block.split('\n');
        let timing = block_lines.next().unwrap_or_default();
        let (start, end) = timing.split_once(" --> ").expect("a timing line");
        assert!(is_timestamp(start) && is_timestamp(end), "{timing:?}");
        assert!(start.len() < end.len() || start.len() == end.len() && start <= end);
        for line in block_lines {
            assert!(!line.is_empty(), "a blank line inside a cue");
            assert!(!line.contains("-->"), "an arrow in cue text: {line:?}");
            assert!(!line.contains('\r'));
        }
        cues += 1;
    }
    assert!(cues >= 1);
});

/// `H+H:MM:SS.mmm`
fn is_timestamp(text: &str) -> bool {
    let Some((clock, millis)) = text.split_once('.') else {
        return false;
    };
    let fields: Vec<&str> = clock.split(':').collect();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    fields.len() == 3
        && fields[0].len() >= 2
        && fields.iter().all(|f| digits(f))
        && fields[1].len() == 2
        && fields[2].len() == 2
        && millis.len() == 3
        && digits(millis)
}

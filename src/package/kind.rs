//! What the counters know of a packaged answer, and the numbers in the
//! names of its parts; shared by single files' names and rendition sets'.

/// What a packaged answer is, for the counters (the index of its column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Playlist = 0,
    Init = 1,
    Segment = 2,
}

/// A decimal number of at most 9 digits (no sign, no spaces).
pub fn number(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

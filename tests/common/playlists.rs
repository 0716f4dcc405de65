//! Reading HLS playlists in tests: attributes of a tag line, EXTINF
//! durations.

/// An attribute of an `#EXT-X-…:` line (quotes kept off).
pub fn attribute<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (_, attributes) = line.split_once(':')?;
    let mut rest = attributes;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        if key == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

/// The EXTINF durations of a media playlist.
pub fn extinfs(playlist: &str) -> Vec<f64> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse().expect("a duration"))
        .collect()
}

//! Sidecar subtitle files beside a media file: for `film.mp4`, `film.vtt`
//! (no language), `film.<lang>.vtt` and `film.<lang>.srt`, `<lang>` a BCP 47
//! tag (`en`, `pt-BR`). Found by listing the media file's directory beneath
//! its folder (so a sidecar can never be outside it), in a stable order:
//! by language, then WebVTT before SRT.
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::Folder;
use crate::package::language::is_tag;
use crate::sys;

/// The largest subtitle file read (a feature film's subtitles are ~100 KB).
pub const MAX_SIDECAR_BYTES: u64 = 8 * 1024 * 1024;

/// A subtitle file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubtitleFormat {
    WebVtt,
    Srt,
}

/// One sidecar subtitle file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sidecar {
    /// Its path relative to the folder.
    pub relative: Vec<u8>,
    /// The tag from its name (None for `film.vtt`).
    pub language: Option<String>,
    pub format: SubtitleFormat,
}

/// What the name `name` is, as a sidecar of the media file whose name
/// without its extension is `stem`, if it is one.
pub fn sidecar_of(stem: &[u8], name: &[u8]) -> Option<(Option<String>, SubtitleFormat)> {
    let rest = name.strip_prefix(stem)?.strip_prefix(b".")?;
    let rest = std::str::from_utf8(rest).ok()?;
    let (middle, format) = if let Some(m) = rest.strip_suffix("vtt") {
        (m, SubtitleFormat::WebVtt)
    } else if let Some(m) = rest.strip_suffix("srt") {
        (m, SubtitleFormat::Srt)
    } else {
        return None;
    };
    if middle.is_empty() {
        return Some((None, format));
    }
    let tag = middle.strip_suffix('.')?;
    is_tag(tag).then(|| (Some(tag.to_string()), format))
}

/// The sidecars of the media file `relative` in `folder`, sorted; none when
/// its directory cannot be listed.
pub fn sidecars(folder: &Folder, relative: &[u8]) -> Vec<Sidecar> {
    let (directory, name) = match relative.iter().rposition(|&b| b == b'/') {
        Some(slash) => (&relative[..slash], &relative[slash + 1..]),
        None => (&b""[..], relative),
    };
    let stem = match name.iter().rposition(|&b| b == b'.') {
        Some(dot) => &name[..dot],
        None => name,
    };
    let directory_path = Path::new(std::ffi::OsStr::from_bytes(directory));
    let Ok(names) = sys::list_beneath(&folder.dir, &folder.path, directory_path) else {
        return Vec::new();
    };
    let mut found: Vec<Sidecar> = names
        .iter()
        .filter_map(|entry| {
            let (language, format) = sidecar_of(stem, entry)?;
            let mut path = directory.to_vec();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(entry);
            Some(Sidecar {
                relative: path,
                language,
                format,
            })
        })
        .collect();
    found.sort_by(|a, b| {
        (&a.language, a.format == SubtitleFormat::Srt)
            .cmp(&(&b.language, b.format == SubtitleFormat::Srt))
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_names_are_read_exactly() {
        let of = |name: &str| sidecar_of(b"film", name.as_bytes());
        assert_eq!(of("film.vtt"), Some((None, SubtitleFormat::WebVtt)));
        assert_eq!(
            of("film.en.vtt"),
            Some((Some("en".into()), SubtitleFormat::WebVtt))
        );
        assert_eq!(
            of("film.pt-BR.srt"),
            Some((Some("pt-BR".into()), SubtitleFormat::Srt))
        );
        assert_eq!(of("film.srt"), Some((None, SubtitleFormat::Srt)));
        for other in [
            "film.mp4",
            "film2.en.vtt",
            "film.e.vtt",
            "film..vtt",
            "filmvtt",
            "film.en.txt",
            "film.envtt",
        ] {
            assert_eq!(of(other), None, "{other}");
        }
    }
}

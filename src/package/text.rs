//! Subtitle renditions: sidecar WebVTT files (SRT ones converted), each
//! served whole as the one segment of its subtitle playlist. One segment,
//! not one per media segment: hls.js, Shaka and AVPlayer all take it, a
//! player fetches a film's subtitles in one request, and no cue has to be
//! split or repeated across segment boundaries.

use std::fmt::Write;

use super::attributes::{UniqueNames, quoted};

/// A subtitle rendition as playlists and manifests describe it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TextTrack {
    /// BCP 47 tag (`und` when the file's name has none).
    pub language: String,
    /// What players show.
    pub name: String,
    /// Only when the host names this language as the default.
    pub default: bool,
}

/// The HLS group's name, for `EXT-X-MEDIA` and `EXT-X-STREAM-INF`.
pub const GROUP: &str = "subs";

/// The `EXT-X-MEDIA:TYPE=SUBTITLES` lines; track k's playlist is
/// `index-s<k>.m3u8` (k from 1) with `query`.
pub fn hls_media(tracks: &[TextTrack], query: &str, out: &mut String) {
    let mut names = UniqueNames::default();
    for (k, track) in tracks.iter().enumerate() {
        let name = names.name(&track.name);
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{GROUP}\",LANGUAGE={},NAME={},DEFAULT={},AUTOSELECT=YES,URI=\"index-s{}.m3u8{query}\"",
            quoted(&track.language),
            quoted(&name),
            if track.default { "YES" } else { "NO" },
            k + 1
        );
    }
}

/// A subtitle playlist: the whole file `sub-s<k>.vtt` as one segment as
/// long as the presentation.
pub fn hls_playlist(k: usize, duration: f64, query: &str) -> String {
    let target = duration.ceil().max(1.0) as u64;
    format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:{duration:.6},\nsub-s{k}.vtt{query}\n#EXT-X-ENDLIST\n"
    )
}

/// DASH adaptation sets of `text/vtt`, ids from `first_id`, track k's file
/// `sub-s<k>.vtt` with `query` (XML-escaped by `xml`).
pub fn dash_sets(
    tracks: &[TextTrack],
    first_id: usize,
    query: &str,
    xml: impl Fn(&str) -> String,
    out: &mut String,
) {
    for (k, track) in tracks.iter().enumerate() {
        let _ = write!(
            out,
            "    <AdaptationSet id=\"{}\" contentType=\"text\" mimeType=\"text/vtt\" lang=\"{}\">\n\
             \x20     <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"subtitle\"/>\n\
             \x20     <Label>{}</Label>\n\
             \x20     <Representation id=\"s{}\" bandwidth=\"256\">\n\
             \x20       <BaseURL>{}</BaseURL>\n\
             \x20     </Representation>\n    </AdaptationSet>\n",
            first_id + k,
            xml(&track.language),
            xml(&track.name),
            k + 1,
            xml(&format!("sub-s{}.vtt{query}", k + 1)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(language: &str, name: &str, default: bool) -> TextTrack {
        TextTrack {
            language: language.into(),
            name: name.into(),
            default,
        }
    }

    #[test]
    fn hls_lists_each_file_with_unique_names() {
        let mut out = String::new();
        hls_media(
            &[track("en", "English", false), track("en", "English", true)],
            "?t=1",
            &mut out,
        );
        assert_eq!(
            out,
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=NO,AUTOSELECT=YES,URI=\"index-s1.m3u8?t=1\"\n\
             #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English 2\",DEFAULT=YES,AUTOSELECT=YES,URI=\"index-s2.m3u8?t=1\"\n"
        );
        let playlist = hls_playlist(2, 12.02, "");
        assert!(
            playlist.contains("#EXT-X-TARGETDURATION:13\n"),
            "{playlist}"
        );
        assert!(
            playlist.contains("#EXTINF:12.020000,\nsub-s2.vtt\n"),
            "{playlist}"
        );
    }
}

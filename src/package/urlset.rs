//! Rendition sets named in a URL, in nginx-vod-module's multi-URL form, so
//! players, CMS integrations and CDN rules written for it keep working:
//! `/<prefix>,<a>,<b>,…,<suffix>.urlset/<name>` names the files
//! `<prefix><a><suffix>`, `<prefix><b><suffix>`, … — e.g.
//! `/films/film_,360,720,1080,.mp4.urlset/master.m3u8` names
//! `/films/film_360.mp4`, `/films/film_720.mp4` and `/films/film_1080.mp4`.
//!
//! What can be asked beneath a set (`r` a video rendition, `k` an audio
//! member, both from 1 in the URL's order; `n` a segment, from 0):
//! `master.m3u8`, `manifest.mpd`, `index-v<r>.m3u8`, `init-v<r>.mp4`,
//! `seg-v<r>-<n>.m4s`, `index-a<k>.m3u8`, `init-a<k>.mp4`, `seg-a<k>-<n>.m4s`.

use super::kind::{Kind, number};

/// The suffix that marks a set.
const URLSET: &str = ".urlset";

/// Most files a set may name (nginx-vod-module's own cap is 32).
pub const MAX_RENDITIONS: usize = 16;

/// A set's URL, split: the file paths are `prefix + part + suffix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlSet<'a> {
    /// The set's own path, up to and including `.urlset`.
    pub path: &'a str,
    pub prefix: &'a str,
    pub parts: Vec<&'a str>,
    pub suffix: &'a str,
}

impl UrlSet<'_> {
    /// The paths of the set's files, in the URL's order (each still to be
    /// checked by the sandbox like any request's path).
    pub fn file_paths(&self) -> Vec<String> {
        self.parts
            .iter()
            .map(|part| format!("{}{part}{}", self.prefix, self.suffix))
            .collect()
    }
}

/// What is wrong with a set's URL (answered 400).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadSet(pub String);

/// A part of a set's presentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetName {
    /// `master.m3u8`
    Master,
    /// `manifest.mpd`
    Manifest,
    /// `index-v<r>.m3u8`
    VideoMedia(u32),
    /// `init-v<r>.mp4`
    VideoInit(u32),
    /// `seg-v<r>-<n>.m4s`
    VideoSegment(u32, u32),
    /// `index-a<k>.m3u8`
    AudioMedia(u32),
    /// `init-a<k>.mp4`
    AudioInit(u32),
    /// `seg-a<k>-<n>.m4s`
    AudioSegment(u32, u32),
    /// `index-s<k>.m3u8`: subtitle rendition k.
    SubtitleMedia(u32),
    /// `sub-s<k>.vtt`
    Subtitle(u32),
    /// `iframes-v<r>.m3u8`: video rendition r's I-frame playlist.
    IFrames(u32),
    /// `iframe-v<r>-<n>.m4s`: its keyframe n alone.
    IFrame(u32, u32),
}

/// A rendition's or member's number: 1 to 999, no sign, no leading zero.
fn ordinal(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 3 || text.starts_with('0') {
        return None;
    }
    number(text)
}

/// `<r>-<n>`: a rendition's ordinal and a segment number.
fn ordinal_and_number(text: &str) -> Option<(u32, u32)> {
    let (r, n) = text.split_once('-')?;
    Some((ordinal(r)?, number(n)?))
}

impl SetName {
    pub fn parse(name: &str) -> Option<SetName> {
        if let Some((playlist, k)) = super::subtitle_name(name) {
            return Some(if playlist {
                SetName::SubtitleMedia(k)
            } else {
                SetName::Subtitle(k)
            });
        }
        match name {
            "master.m3u8" => return Some(SetName::Master),
            "manifest.mpd" => return Some(SetName::Manifest),
            _ => {}
        }
        if let Some(r) = name
            .strip_prefix("iframes-v")
            .and_then(|r| r.strip_suffix(".m3u8"))
        {
            return ordinal(r).map(SetName::IFrames);
        }
        if let Some(rn) = name
            .strip_prefix("iframe-v")
            .and_then(|r| r.strip_suffix(".m4s"))
        {
            return ordinal_and_number(rn).map(|(r, n)| SetName::IFrame(r, n));
        }
        if let Some(rest) = name
            .strip_prefix("index-")
            .and_then(|r| r.strip_suffix(".m3u8"))
        {
            return match rest.split_at_checked(1)? {
                ("v", r) => ordinal(r).map(SetName::VideoMedia),
                ("a", k) => ordinal(k).map(SetName::AudioMedia),
                _ => None,
            };
        }
        if let Some(rest) = name
            .strip_prefix("init-")
            .and_then(|r| r.strip_suffix(".mp4"))
        {
            return match rest.split_at_checked(1)? {
                ("v", r) => ordinal(r).map(SetName::VideoInit),
                ("a", k) => ordinal(k).map(SetName::AudioInit),
                _ => None,
            };
        }
        let rest = name.strip_prefix("seg-")?.strip_suffix(".m4s")?;
        match rest.split_at_checked(1)? {
            ("v", rn) => ordinal_and_number(rn).map(|(r, n)| SetName::VideoSegment(r, n)),
            ("a", kn) => ordinal_and_number(kn).map(|(k, n)| SetName::AudioSegment(k, n)),
            _ => None,
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            SetName::Master
            | SetName::VideoMedia(_)
            | SetName::AudioMedia(_)
            | SetName::SubtitleMedia(_)
            | SetName::IFrames(_) => "application/vnd.apple.mpegurl",
            SetName::Subtitle(_) => "text/vtt",
            SetName::Manifest => "application/dash+xml",
            SetName::VideoInit(_) => "video/mp4",
            SetName::AudioInit(_) => "audio/mp4",
            SetName::VideoSegment(..) | SetName::AudioSegment(..) | SetName::IFrame(..) => {
                "video/iso.segment"
            }
        }
    }

    /// Whether the answer lists or is a subtitle rendition.
    pub fn lists_subtitles(&self) -> bool {
        matches!(
            self,
            SetName::Master | SetName::Manifest | SetName::SubtitleMedia(_) | SetName::Subtitle(_)
        )
    }

    /// For the counters: playlist or manifest, init segment, media segment.
    pub fn kind(&self) -> Kind {
        match self {
            SetName::Master
            | SetName::Manifest
            | SetName::VideoMedia(_)
            | SetName::AudioMedia(_)
            | SetName::SubtitleMedia(_)
            | SetName::IFrames(_) => Kind::Playlist,
            SetName::VideoInit(_) | SetName::AudioInit(_) => Kind::Init,
            SetName::VideoSegment(..)
            | SetName::AudioSegment(..)
            | SetName::IFrame(..)
            | SetName::Subtitle(_) => Kind::Segment,
        }
    }

    /// Whether the answer is built once for every query (an init or media
    /// segment) rather than carrying the request's arguments (a playlist).
    pub fn is_media(&self) -> bool {
        self.kind() != Kind::Playlist
    }

    /// The part of an ETag that tells a set's answers apart.
    pub fn tag(&self) -> String {
        match self {
            SetName::Master => "master".into(),
            SetName::Manifest => "mpd".into(),
            SetName::VideoMedia(r) => format!("iv{r}"),
            SetName::VideoInit(r) => format!("nv{r}"),
            SetName::VideoSegment(r, n) => format!("sv{r}-{n}"),
            SetName::AudioMedia(k) => format!("ia{k}"),
            SetName::AudioInit(k) => format!("na{k}"),
            SetName::AudioSegment(k, n) => format!("sa{k}-{n}"),
            SetName::SubtitleMedia(k) => format!("is{k}"),
            SetName::Subtitle(k) => format!("t{k}"),
            SetName::IFrames(r) => format!("if{r}"),
            SetName::IFrame(r, n) => format!("f{r}-{n}"),
        }
    }
}

/// The set's path and the name beneath it, when `path` is
/// `…,….urlset/<name>`; None for any other path (a plain file's). A path
/// in the set's form with a name this server does not know, or a set with
/// no file or too many, is a `BadSet`.
pub fn split_set_path(path: &str) -> Option<Result<(UrlSet<'_>, SetName), BadSet>> {
    let (set_path, name) = path.rsplit_once('/')?;
    let stem = set_path.strip_suffix(URLSET)?;
    let mut pieces: Vec<&str> = stem.split(',').collect();
    if pieces.len() < 3 {
        return Some(Err(BadSet(
            "A set's URL names its files as <prefix>,<a>,<b>,…,<suffix>.urlset.".into(),
        )));
    }
    let suffix = pieces.pop().unwrap_or_default();
    let prefix = pieces.remove(0);
    if pieces.iter().any(|part| part.is_empty()) {
        return Some(Err(BadSet("A set names an empty file.".into())));
    }
    if pieces.len() > MAX_RENDITIONS {
        return Some(Err(BadSet(format!(
            "A set names at most {MAX_RENDITIONS} files."
        ))));
    }
    let Some(name) = SetName::parse(name) else {
        return Some(Err(BadSet("A set has no such part.".into())));
    };
    Some(Ok((
        UrlSet {
            path: set_path,
            prefix,
            parts: pieces,
            suffix,
        },
        name,
    )))
}

/// The set's own path when `path` is one beneath a set (for a signed link to
/// the set, which admits everything beneath it).
pub fn set_path_of(path: &str) -> Option<&str> {
    let (set_path, _) = path.rsplit_once('/')?;
    set_path.strip_suffix(URLSET).map(|_| set_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vod_module_form_names_its_files() {
        let (set, name) = split_set_path("/films/film_,360,720,1080,.mp4.urlset/master.m3u8")
            .expect("a set")
            .expect("valid");
        assert_eq!(name, SetName::Master);
        assert_eq!(set.path, "/films/film_,360,720,1080,.mp4.urlset");
        assert_eq!(
            set.file_paths(),
            [
                "/films/film_360.mp4",
                "/films/film_720.mp4",
                "/films/film_1080.mp4"
            ]
        );
        let (set, _) = split_set_path("/hls/,a.mp4,b/c.mp4,.urlset/manifest.mpd")
            .expect("a set")
            .expect("valid");
        assert_eq!(set.file_paths(), ["/hls/a.mp4", "/hls/b/c.mp4"]);
    }

    #[test]
    fn other_paths_are_not_sets_and_bad_sets_are_told_apart() {
        assert_eq!(split_set_path("/films/film.mp4/master.m3u8"), None);
        assert_eq!(split_set_path("/films/a,b,c.mp4"), None);
        assert_eq!(split_set_path("/x.urlset"), None);
        for bad in [
            "/film_,.mp4.urlset/master.m3u8",
            "/film_,360,,720,.mp4.urlset/master.m3u8",
            "/film_,360,.mp4.urlset/other.m3u8",
            "/film.mp4.urlset/master.m3u8",
        ] {
            assert!(matches!(split_set_path(bad), Some(Err(_))), "{bad}");
        }
        let many = format!("/f_,{}.mp4.urlset/master.m3u8", "1,".repeat(17));
        assert!(matches!(split_set_path(&many), Some(Err(_))));
        assert_eq!(
            set_path_of("/f_,1,2,.mp4.urlset/seg-v1-0.m4s"),
            Some("/f_,1,2,.mp4.urlset")
        );
        assert_eq!(set_path_of("/f.mp4/seg-0.m4s"), None);
    }

    #[test]
    fn names_parse_exactly() {
        assert_eq!(
            SetName::parse("index-v2.m3u8"),
            Some(SetName::VideoMedia(2))
        );
        assert_eq!(
            SetName::parse("index-a1.m3u8"),
            Some(SetName::AudioMedia(1))
        );
        assert_eq!(SetName::parse("init-v3.mp4"), Some(SetName::VideoInit(3)));
        assert_eq!(SetName::parse("iframes-v2.m3u8"), Some(SetName::IFrames(2)));
        assert_eq!(
            SetName::parse("iframe-v3-40.m4s"),
            Some(SetName::IFrame(3, 40))
        );
        assert_eq!(SetName::parse("init-a2.mp4"), Some(SetName::AudioInit(2)));
        assert_eq!(
            SetName::parse("seg-v1-17.m4s"),
            Some(SetName::VideoSegment(1, 17))
        );
        assert_eq!(
            SetName::parse("seg-a2-0.m4s"),
            Some(SetName::AudioSegment(2, 0))
        );
        for bad in [
            "index-v0.m3u8",
            "index-v01.m3u8",
            "index-x1.m3u8",
            "index.m3u8",
            "init-v.mp4",
            "seg-v1.m4s",
            "seg-v1--1.m4s",
            "seg-1.m4s",
            "seg-a1-+2.m4s",
            "seg-v1000-1.m4s",
            "Master.m3u8",
        ] {
            assert_eq!(SetName::parse(bad), None, "{bad}");
        }
    }
}

//! The mime table: file extension → Content-Type. The one place that knows it.

use std::collections::HashMap;

/// The built-in table: the original's entries plus today's common media and web types.
pub const DEFAULT_MIMES: &[(&str, &str)] = &[
    ("video/x-flv", "flv"),
    ("video/mp4", "mp4,m4v,f4v"),
    ("audio/mp4", "m4a,f4a"),
    ("video/quicktime", "mov"),
    ("video/3gpp", "3gp"),
    ("video/3gpp2", "3g2"),
    ("image/jpeg", "jpg,jpeg"),
    ("image/gif", "gif"),
    ("image/png", "png"),
    ("image/bmp", "bmp"),
    ("image/tiff", "tif,tiff"),
    ("image/webp", "webp"),
    ("image/svg+xml", "svg"),
    ("image/x-icon", "ico"),
    ("application/x-shockwave-flash", "swf"),
    ("audio/mpeg", "mp3"),
    ("audio/aac", "aac"),
    ("audio/ogg", "ogg,oga,opus"),
    ("video/ogg", "ogv"),
    ("video/webm", "webm"),
    ("audio/webm", "weba"),
    ("video/x-matroska", "mkv"),
    ("application/vnd.apple.mpegurl", "m3u8"),
    ("video/mp2t", "ts"),
    ("text/vtt", "vtt"),
    ("application/json", "json"),
    ("text/plain", "txt"),
    ("text/html", "html,htm"),
    ("text/css", "css"),
    ("text/javascript", "js"),
    ("application/xml", "xml"),
];

/// Extension (lower case, no dot) → Content-Type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MimeTable {
    by_extension: HashMap<String, String>,
}

impl MimeTable {
    /// Adds `mime` for each extension in `list` (commas and/or white space
    /// separate them, as in the original). A later entry for the same
    /// extension replaces an earlier one.
    pub fn insert_list(&mut self, mime: &str, list: &str) {
        let mime = mime.trim().to_ascii_lowercase();
        for ext in list.split(|c: char| c == ',' || c.is_whitespace()) {
            let ext = ext.trim().trim_start_matches('.');
            if !ext.is_empty() {
                self.by_extension
                    .insert(ext.to_ascii_lowercase(), mime.clone());
            }
        }
    }

    /// The built-in table.
    pub fn defaults() -> MimeTable {
        let mut table = MimeTable::default();
        for (mime, list) in DEFAULT_MIMES {
            table.insert_list(mime, list);
        }
        table
    }

    /// The Content-Type for a path's extension (the text after its last dot,
    /// case-insensitive), if the table knows it.
    pub fn lookup(&self, path: &[u8]) -> Option<&str> {
        let name = path.rsplit(|&b| b == b'/').next()?;
        let dot = name.iter().rposition(|&b| b == b'.')?;
        let ext = std::str::from_utf8(&name[dot + 1..]).ok()?;
        if ext.is_empty() || ext.len() > 16 {
            return None;
        }
        if ext.bytes().any(|b| b.is_ascii_uppercase()) {
            return self
                .by_extension
                .get(&ext.to_ascii_lowercase())
                .map(String::as_str);
        }
        self.by_extension.get(ext).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_extension.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_extension.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_the_last_extension_case_insensitively() {
        let table = MimeTable::defaults();
        assert_eq!(table.lookup(b"/a/b.tar.MP4"), Some("video/mp4"));
        assert_eq!(table.lookup(b"/film.flv"), Some("video/x-flv"));
        assert_eq!(table.lookup(b"/dir.mp4/noext"), None);
        assert_eq!(table.lookup(b"/trailingdot."), None);
    }

    #[test]
    fn lists_accept_commas_and_spaces() {
        let mut table = MimeTable::default();
        table.insert_list("Video/X-Test", "abc, DEF  .ghi");
        assert_eq!(table.lookup(b"x.def"), Some("video/x-test"));
        assert_eq!(table.lookup(b"x.ghi"), Some("video/x-test"));
        assert_eq!(table.len(), 3);
    }
}

//! `GET /space?path=…`: how full the file system holding a served folder is.

use std::path::{Path, PathBuf};

use super::report::json_string;
use crate::options::Options;

/// Sizes of one file system, from statvfs(3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    pub path: PathBuf,
    pub total_bytes: u64,
    pub used_bytes: u64,
    /// Free for an unprivileged user (what the server's account can use).
    pub free_bytes: u64,
    pub total_inodes: u64,
    pub used_inodes: u64,
    pub free_inodes: u64,
}

/// Why a path gets no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not inside a configured folder (403).
    Outside,
    /// The path does not exist or cannot be measured (404).
    Missing(String),
}

/// The space of the file system holding `path`, which must lie inside one of
/// the configured folders (after resolving symlinks and `..`).
pub fn measure(path: &str, options: &Options) -> Result<Space, Refused> {
    let canonical = Path::new(path)
        .canonicalize()
        .map_err(|e| Refused::Missing(e.to_string()))?;
    let inside = options
        .hosts
        .iter()
        .flat_map(|host| &host.folders)
        .any(|folder| canonical.starts_with(folder));
    if !inside {
        return Err(Refused::Outside);
    }
    let stats =
        nix::sys::statvfs::statvfs(&canonical).map_err(|e| Refused::Missing(e.to_string()))?;
    let fragment = stats.fragment_size() as u64;
    let blocks = stats.blocks() as u64;
    let free = stats.blocks_free() as u64;
    let available = stats.blocks_available() as u64;
    let files = stats.files() as u64;
    let files_free = stats.files_free() as u64;
    Ok(Space {
        path: canonical,
        total_bytes: blocks * fragment,
        used_bytes: blocks.saturating_sub(free) * fragment,
        free_bytes: available * fragment,
        total_inodes: files,
        used_inodes: files.saturating_sub(files_free),
        free_inodes: files_free,
    })
}

impl Space {
    /// The figures by their report names; text and JSON both list these.
    fn counts(&self) -> [(&'static str, u64); 6] {
        [
            ("space:total", self.total_bytes),
            ("space:used", self.used_bytes),
            ("space:free", self.free_bytes),
            ("space:inodes:total", self.total_inodes),
            ("space:inodes:used", self.used_inodes),
            ("space:inodes:free", self.free_inodes),
        ]
    }

    pub fn to_text(&self) -> String {
        let mut text = format!("space:path = {}\n", self.path.display());
        for (name, value) in self.counts() {
            text.push_str(&format!("{name} = {value}\n"));
        }
        text
    }

    pub fn to_json(&self) -> String {
        let mut json = format!(
            "{{\"space:path\":{}",
            json_string(&self.path.to_string_lossy())
        );
        for (name, value) in self.counts() {
            json.push_str(&format!(",\"{name}\":{value}"));
        }
        json.push_str("}\n");
        json
    }
}

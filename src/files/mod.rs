//! The files a host serves: its folders (held open), the sandbox that
//! resolves a relative path beneath a folder and refuses anything that could
//! reach outside it, and the per-worker cache of open files.
//!
//! Layer: imports only `sys` and `http` (statuses, validators, decoding);
//! owns no request, route or host logic: it is handed a host's index and
//! folders.

pub mod open_files;
pub mod sandbox;
pub mod sidecars;

use std::fs::File;
use std::path::PathBuf;

pub use open_files::{OpenFile, OpenFiles};

/// A folder of a host, held open so files are resolved beneath it
/// (openat2) without re-walking its path.
pub struct Folder {
    pub path: PathBuf,
    pub dir: File,
}

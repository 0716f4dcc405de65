//! The sandbox: turns a request's path into a file opened beneath one of
//! the host's folders, refusing anything that could reach outside it.

use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::http::Status;
use crate::http::target::percent_decode;
use crate::sys::{self, FileIdentity, FileKind};

/// Why a request target was refused, with the status and a message for the page.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: Status,
    pub detail: &'static str,
}

const fn refuse(status: Status, detail: &'static str) -> Refusal {
    Refusal { status, detail }
}

/// Percent-decodes `path` and checks it segment by segment. The result is
/// relative (no leading slash), with empty and `.` segments removed.
pub fn relative_path(path: &str) -> Result<Vec<u8>, Refusal> {
    if !path.starts_with('/') {
        return Err(refuse(
            Status::BAD_REQUEST,
            "The request target must be an absolute path.",
        ));
    }
    let decoded = percent_decode(path.as_bytes()).ok_or(refuse(
        Status::BAD_REQUEST,
        "The path has an invalid percent-encoding.",
    ))?;
    if decoded.contains(&0) {
        return Err(refuse(Status::BAD_REQUEST, "The path contains a NUL byte."));
    }
    if decoded.contains(&b'\\') {
        return Err(refuse(Status::FORBIDDEN, "The path contains a backslash."));
    }
    let mut relative = Vec::with_capacity(decoded.len());
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => continue,
            b".." => return Err(refuse(Status::FORBIDDEN, "The path leaves the folder.")),
            _ => {
                if !relative.is_empty() {
                    relative.push(b'/');
                }
                relative.extend_from_slice(segment);
            }
        }
    }
    Ok(relative)
}

/// A regular file opened for a response, with what its headers need.
pub struct OpenedFile {
    pub file: File,
    pub identity: FileIdentity,
}

/// Opens `relative` beneath `folder` and checks that it is a readable regular file.
pub fn open(folder_dir: &File, folder: &Path, relative: &[u8]) -> Result<OpenedFile, Refusal> {
    const LISTING: Refusal = refuse(Status::FORBIDDEN, "Directory listings are not allowed.");
    if relative.is_empty() {
        return Err(LISTING);
    }
    let path = Path::new(std::ffi::OsStr::from_bytes(relative));
    let file = sys::open_beneath(folder_dir, folder, path).map_err(|e| open_refusal(&e))?;
    let identity = sys::identity_of(&file).map_err(|e| open_refusal(&e))?;
    match identity.kind {
        FileKind::Regular => Ok(OpenedFile { file, identity }),
        FileKind::Directory => Err(LISTING),
        FileKind::Other => Err(refuse(Status::FORBIDDEN, "This is not a regular file.")),
    }
}

/// A file that is not there.
pub const NOT_FOUND: Refusal = refuse(Status::NOT_FOUND, "The requested file does not exist.");

fn open_refusal(error: &io::Error) -> Refusal {
    match error.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ENAMETOOLONG) => {
            refuse(Status::NOT_FOUND, "The requested file does not exist.")
        }
        // EXDEV: the path would leave the folder (openat2 RESOLVE_BENEATH); ELOOP: symlink loop.
        Some(libc::EXDEV) | Some(libc::ELOOP) => {
            refuse(Status::FORBIDDEN, "The path leaves the folder.")
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            refuse(Status::FORBIDDEN, "Access to the file is denied.")
        }
        _ => {
            log::error!("cannot open a requested file: {error}");
            refuse(Status::INTERNAL_ERROR, "The file cannot be opened.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_normalises() {
        assert_eq!(relative_path("/a%20b//./c.mp4").expect("ok"), b"a b/c.mp4");
        assert_eq!(relative_path("/").expect("ok"), b"");
    }

    #[test]
    fn refuses_traversal_in_every_spelling() {
        for bad in [
            "/../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/a/..%2f..%2fetc",
            "/..%5cetc",
            "/a%00.mp4",
            "/%zz",
            "x",
        ] {
            assert!(relative_path(bad).is_err(), "{bad} was accepted");
        }
    }
}

//! The content phase's first step: the request target resolved to an open
//! file beneath the host's folder (the sandbox), with its type.

use std::rc::Rc;

use super::VirtualHost;
use crate::files::{OpenFile, OpenFiles, sandbox};
use crate::http::Status;
use crate::http::refusal::Refusal;
use crate::http::target::ACME_CHALLENGE_PREFIX;
use crate::options::MimeTable;

/// A file a request names.
pub struct TargetFile<'a> {
    /// Its path relative to the folder, percent-decoded.
    pub relative: Vec<u8>,
    pub opened: Rc<OpenFile>,
    pub content_type: &'a str,
}

/// Opens the file `path` (a request target's path) names beneath `vhost`'s
/// folders: 400/403 for paths the sandbox refuses, 404 for missing files
/// and types not served.
pub fn open_target<'a>(
    open_files: &mut OpenFiles,
    mimes: &'a MimeTable,
    vhost: &VirtualHost,
    path: &str,
) -> Result<TargetFile<'a>, Refusal> {
    let relative = sandbox::relative_path(path).map_err(|r| Refusal::new(r.status, r.detail))?;
    let opened = open_files
        .open(vhost.index, &vhost.folders, &relative)
        .map_err(|r| Refusal::new(r.status, r.detail))?;
    let content_type = mimes
        .lookup(&relative)
        .or_else(|| {
            path.starts_with(ACME_CHALLENGE_PREFIX)
                .then_some("text/plain")
        })
        .ok_or_else(|| Refusal::new(Status::NOT_FOUND, "Files of this type are not served."))?;
    Ok(TargetFile {
        relative,
        opened,
        content_type,
    })
}

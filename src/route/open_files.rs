//! A per-worker cache of open files, so a popular file is not opened, stat'ed
//! and closed on every request.
//!
//! Unlike nginx's `open_file_cache`, a hit is never stale: it is confirmed by
//! one `stat` of the path, which must still name the same device, inode, size
//! and modification time. A changed, replaced or removed file is opened again
//! through the sandbox (or refused), so the cache can only save system calls.

use std::fs::File;
use std::num::NonZeroUsize;
use std::rc::Rc;

use lru::LruCache;

use super::sandbox::{self, Refusal};
use super::vhost::VirtualHost;
use crate::http::{conditional, date};
use crate::sys::{self, FileIdentity};

/// Most open files a worker keeps cached (each holds a descriptor).
pub const OPEN_FILE_CACHE_ENTRIES: usize = 512;

/// An open file with the response headers that depend only on it.
pub struct OpenFile {
    pub handle: File,
    pub identity: FileIdentity,
    pub etag: String,
    pub last_modified: String,
}

impl OpenFile {
    fn new(opened: sandbox::OpenedFile) -> OpenFile {
        let identity = opened.identity;
        OpenFile {
            handle: opened.file,
            etag: conditional::file_etag(identity.modified, identity.size),
            last_modified: date::format(identity.modified),
            identity,
        }
    }
}

pub struct OpenFiles {
    entries: LruCache<Vec<u8>, Rc<OpenFile>>,
    key: Vec<u8>,
}

impl Default for OpenFiles {
    fn default() -> Self {
        OpenFiles::with_capacity(OPEN_FILE_CACHE_ENTRIES)
    }
}

impl OpenFiles {
    pub fn with_capacity(entries: usize) -> OpenFiles {
        let capacity = NonZeroUsize::new(entries.max(1)).unwrap_or(NonZeroUsize::MIN);
        OpenFiles {
            entries: LruCache::new(capacity),
            key: Vec::new(),
        }
    }

    /// The file `relative` names under `host`'s folder, from the cache when
    /// the path still names the same file, else opened through the sandbox.
    pub fn open(&mut self, host: &VirtualHost, relative: &[u8]) -> Result<Rc<OpenFile>, Refusal> {
        self.key.clear();
        self.key.extend_from_slice(&host.index.to_le_bytes());
        self.key.extend_from_slice(relative);
        if let Some(cached) = self.entries.get(self.key.as_slice()) {
            match sys::identity_at(&host.folder_dir, relative) {
                Ok(now) if now == cached.identity => return Ok(Rc::clone(cached)),
                _ => {
                    self.entries.pop(self.key.as_slice());
                }
            }
        }
        let opened = Rc::new(OpenFile::new(sandbox::open(
            &host.folder_dir,
            &host.folder,
            relative,
        )?));
        self.entries.put(self.key.clone(), Rc::clone(&opened));
        Ok(opened)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

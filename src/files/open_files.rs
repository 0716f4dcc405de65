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

use super::Folder;
use super::sandbox::{self, Refusal};
use crate::http::{Status, conditional, date};
use crate::sys::{self, FileIdentity};

/// Most open files a worker keeps cached (each holds a descriptor).
pub const OPEN_FILE_CACHE_ENTRIES: usize = 512;

/// An open file with the response headers that depend only on it.
pub struct OpenFile {
    pub handle: File,
    /// Which of the host's folders it is in.
    pub folder: usize,
    pub identity: FileIdentity,
    pub etag: String,
    pub last_modified: String,
}

impl OpenFile {
    fn new(opened: sandbox::OpenedFile, folder: usize) -> OpenFile {
        let identity = opened.identity;
        OpenFile {
            handle: opened.file,
            folder,
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

    /// The file `relative` names in the first of `folders` (those of the
    /// host numbered `host`) that has it, from the cache when the path still
    /// names the same file (and no earlier folder has gained one), else
    /// opened through the sandbox. A
    /// folder that has the path but refuses it (403) decides; only a missing
    /// file moves on to the next folder.
    pub fn open(
        &mut self,
        host: usize,
        folders: &[Folder],
        relative: &[u8],
    ) -> Result<Rc<OpenFile>, Refusal> {
        self.key.clear();
        self.key.extend_from_slice(&host.to_le_bytes());
        self.key.extend_from_slice(relative);
        if let Some(cached) = self.entries.get(self.key.as_slice()) {
            let still_first = folders[..cached.folder]
                .iter()
                .all(|earlier| sys::identity_at(&earlier.dir, relative).is_err());
            match folders
                .get(cached.folder)
                .map(|f| sys::identity_at(&f.dir, relative))
            {
                Some(Ok(now)) if now == cached.identity && still_first => {
                    return Ok(Rc::clone(cached));
                }
                _ => {
                    self.entries.pop(self.key.as_slice());
                }
            }
        }
        let mut missing = None;
        for (index, folder) in folders.iter().enumerate() {
            match sandbox::open(&folder.dir, &folder.path, relative) {
                Ok(file) => {
                    let opened = Rc::new(OpenFile::new(file, index));
                    self.entries.put(self.key.clone(), Rc::clone(&opened));
                    return Ok(opened);
                }
                Err(refusal) if refusal.status == Status::NOT_FOUND => missing = Some(refusal),
                Err(refusal) => return Err(refusal),
            }
        }
        Err(missing.unwrap_or(sandbox::NOT_FOUND))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

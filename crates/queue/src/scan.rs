//! Listing the files of a queue.
//!
//! Postfix counterparts: `global/scan_dir.c`, and the checks of
//! `global/mail_open_ok.c` that decide which files a scanner may open.

use std::ffi::OsString;
use std::fs::{self, ReadDir};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::{Error, Queue, QueueId, is_ready};

/// One directory entry of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A committed queue file.
    Ready {
        /// Its id.
        id: QueueId,
        /// Its modification time: in `deferred/`, the next attempt time.
        modified: SystemTime,
    },
    /// A queue file still being written (no ready bit), or abandoned.
    NotReady {
        /// Its id.
        id: QueueId,
    },
    /// A name that should not be there; the caller logs it.
    Rejected {
        /// The file name.
        name: OsString,
        /// Why it was rejected.
        reason: Rejection,
    },
}

/// Why a directory entry is not a queue file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// The name is not a valid queue id.
    InvalidName,
    /// The file has more than one hard link (Postfix `mail_open_ok`).
    MultipleLinks,
    /// The entry is not a regular file (a directory, symbolic link, FIFO…).
    NotRegularFile,
}

/// Ids a scan leaves out; see [`Scan::skipping`].
type Skip<'a> = Box<dyn Fn(&QueueId) -> bool + 'a>;

/// Iterator over the entries of a queue; see [`scan`].
pub struct Scan<'a> {
    dir: PathBuf,
    entries: ReadDir,
    skip: Option<Skip<'a>>,
}

impl std::fmt::Debug for Scan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl<'a> Scan<'a> {
    /// Leaves out the files whose id `skip` names, without looking at
    /// them (no `lstat`): a queue manager's scan skips the messages it
    /// already has in hand.
    pub fn skipping(self, skip: impl Fn(&QueueId) -> bool + 'a) -> Scan<'a> {
        Scan {
            skip: Some(Box::new(skip)),
            ..self
        }
    }
}

/// Lists the entries of `queue` under the spool root `spool`.
///
/// Hidden names (starting with `.`) are skipped silently: they are the
/// temporary names of files being created. Entries that vanish while the
/// scan runs (moved by another process) are skipped too. The order is the
/// directory's; sort the ids to process the oldest first.
pub fn scan(spool: &Path, queue: Queue) -> Result<Scan<'static>, Error> {
    let dir = spool.join(queue.dir_name());
    let entries = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(Scan {
        dir,
        entries,
        skip: None,
    })
}

impl Iterator for Scan<'_> {
    type Item = Result<Entry, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let entry = match self.entries.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(Error::io(&self.dir, e))),
            };
            let name = entry.file_name();
            if name.as_encoded_bytes().first() == Some(&b'.') {
                continue;
            }
            let reject = |reason| {
                Some(Ok(Entry::Rejected {
                    name: name.clone(),
                    reason,
                }))
            };
            let Some(id) = name.to_str().and_then(|s| QueueId::parse(s).ok()) else {
                return reject(Rejection::InvalidName);
            };
            if self.skip.as_ref().is_some_and(|skip| skip(&id)) {
                continue;
            }
            // lstat: a symbolic link is reported, never followed.
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Some(Err(Error::io(&entry.path(), e))),
            };
            if !meta.file_type().is_file() {
                return reject(Rejection::NotRegularFile);
            }
            if meta.nlink() > 1 {
                return reject(Rejection::MultipleLinks);
            }
            if !is_ready(&meta) {
                return Some(Ok(Entry::NotReady { id }));
            }
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            return Some(Ok(Entry::Ready { id, modified }));
        }
    }
}

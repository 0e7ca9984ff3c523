//! File system helpers.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// fsyncs the directory `path`, so that the names created, renamed or
/// removed in it are on stable storage (a file's own fsync does not
/// cover its directory entry).
pub fn sync_dir(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(path)?
        .sync_all()
}

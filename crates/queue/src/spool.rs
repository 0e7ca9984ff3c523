//! Moving and removing queue files.
//!
//! Postfix counterparts: `mail_queue_rename` and `mail_queue_remove` in
//! `global/mail_queue.c`, and the deferred-queue time stamps of
//! `qmgr/qmgr_active.c`.

use std::fs::{self, File, FileTimes, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use crate::{Error, Queue, QueueId};

fn sync_dir(path: &Path) -> Result<(), Error> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// Moves the file `id` from queue `from` to queue `to` with rename(2), then
/// fsyncs both directories. Moving a file to the queue it is in does
/// nothing.
pub fn move_file(spool: &Path, id: &QueueId, from: Queue, to: Queue) -> Result<(), Error> {
    if from == to {
        return Ok(());
    }
    let old = id.path(spool, from);
    let new = id.path(spool, to);
    fs::rename(&old, &new).map_err(|e| Error::io(&old, e))?;
    sync_dir(&spool.join(to.dir_name()))?;
    sync_dir(&spool.join(from.dir_name()))
}

/// Removes the file `id` from `queue`, then fsyncs the directory.
pub fn remove(spool: &Path, id: &QueueId, queue: Queue) -> Result<(), Error> {
    let path = id.path(spool, queue);
    fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
    sync_dir(&spool.join(queue.dir_name()))
}

/// Sets the next delivery attempt of a deferred file, which is its
/// modification time.
pub fn set_next_attempt(file: &File, at: SystemTime) -> Result<(), Error> {
    file.set_times(FileTimes::new().set_modified(at).set_accessed(at))
        .map_err(|e| Error::Io {
            path: None,
            source: e,
        })
}

/// Whether a live process is writing the file at `path`: a
/// [`crate::QueueFileWriter`] holds an exclusive flock(2) on its file
/// until it commits or gives up, and the kernel drops it when the writer
/// dies. A file that is not ready and not in use was abandoned by a
/// crashed writer.
pub fn in_use(path: &Path) -> Result<bool, Error> {
    use nix::fcntl::{Flock, FlockArg};
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_) => Ok(false),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(true),
        Err((_, e)) => Err(Error::io(path, e.into())),
    }
}

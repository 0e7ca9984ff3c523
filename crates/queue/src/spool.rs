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

/// Moves the file `id` from queue `from` to queue `to` with rename(2).
/// Moving a file to the queue it is in does nothing.
///
/// No directory is fsynced, as in Postfix: a move lost in a crash leaves
/// the file in the queue it came from, and every queue a move can start
/// from (maildrop, incoming, active, deferred, hold) is scanned again when
/// the system starts, so the message is found and nothing is lost. What
/// must not be undone by a crash (the file's creation, a recipient's done
/// mark) is fsynced where it is written.
pub fn move_file(spool: &Path, id: &QueueId, from: Queue, to: Queue) -> Result<(), Error> {
    if from == to {
        return Ok(());
    }
    let old = id.path(spool, from);
    let new = id.path(spool, to);
    fs::rename(&old, &new).map_err(|e| Error::io(&old, e))
}

/// Removes the file `id` from `queue`.
///
/// The directory is not fsynced: the queue manager removes a file once
/// every recipient is done, and the done marks are on stable storage
/// ([`crate::mark_done`]), so a removal lost in a crash brings back a
/// file with nothing left to deliver, which the queue manager removes
/// again.
pub fn remove(spool: &Path, id: &QueueId, queue: Queue) -> Result<(), Error> {
    let path = id.path(spool, queue);
    fs::remove_file(&path).map_err(|e| Error::io(&path, e))
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

//! Moving and removing queue files.
//!
//! Postfix counterparts: `mail_queue_rename` and `mail_queue_remove` in
//! `global/mail_queue.c`, and the deferred-queue time stamps of
//! `qmgr/qmgr_active.c`.

use std::fs::{self, File, FileTimes, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use nix::fcntl::{Flock, FlockArg};

use crate::{Error, Queue, QueueId};

/// Moves the file `id` from queue `from` to queue `to` with rename(2).
/// Moving a file to the queue it is in does nothing.
///
/// No directory is fsynced, as in Postfix: a move lost in a crash leaves
/// the file in the queue it came from, and every queue a move can start
/// from (maildrop, incoming, active, deferred, hold) is scanned again when
/// the system starts, so the message is found and nothing is lost. What
/// must not be undone by a crash (the file's creation, its content) is
/// fsynced where it is written.
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
/// The directory is not fsynced, as in Postfix: the queue manager removes
/// a file once every recipient is done, so a removal lost in a system
/// crash brings back a file whose recipients are done (or, when their done
/// marks did not reach the disk either, see [`crate::mark_done`], are
/// delivered again): a message may be duplicated then, never lost.
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

/// Takes a shared `flock(2)` lock on an open queue file, as a delivery
/// agent does for the length of a request (Postfix `deliver_request.c`),
/// waiting while someone holds an exclusive one. The lock goes with the
/// returned handle (or the process).
pub fn lock_shared(file: File) -> Result<Flock<File>, Error> {
    Flock::lock(file, FlockArg::LockShared).map_err(|(_, e)| Error::Io {
        path: None,
        source: e.into(),
    })
}

/// Whether a live process holds a lock on the queue file at `path`:
/// - a [`crate::QueueFileWriter`] holds an exclusive lock until it commits
///   or gives up, so a file that is not ready and not in use was abandoned
///   by a crashed writer;
/// - a delivery agent holds a shared lock while it works on the file for
///   a queue manager that may have died since: the new queue manager must
///   not deliver the file again until that agent is done (it may be
///   between a mailbox write and marking the recipient done).
///
/// The kernel drops a lock when its holder dies.
pub fn in_use(path: &Path) -> Result<bool, Error> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        // Dropping the lock releases it at once.
        Ok(_lock) => Ok(false),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(true),
        Err((_, e)) => Err(Error::io(path, e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_locks_make_a_file_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"x").unwrap();
        assert!(!in_use(&p).unwrap());
        let held = lock_shared(File::open(&p).unwrap()).unwrap();
        let also = lock_shared(File::open(&p).unwrap()).unwrap();
        assert!(in_use(&p).unwrap());
        drop(held);
        assert!(in_use(&p).unwrap());
        drop(also);
        assert!(!in_use(&p).unwrap());
    }
}

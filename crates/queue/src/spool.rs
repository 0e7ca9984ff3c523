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

/// Whether a process holds a lock on the queue file at `path`: a delivery
/// agent still working on it for a queue manager that has died. The new
/// queue manager must not deliver the file again until that agent is done
/// (it may be between a mailbox write and marking the recipient done).
pub fn in_use(path: &Path) -> Result<bool, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
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

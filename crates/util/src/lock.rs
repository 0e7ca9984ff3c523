//! Exclusive pid-file locks (Postfix `myflock.c`, master's `master.pid`).
//!
//! The lock is an `flock(2)` on the open file, held for the life of the
//! [`PidLock`]; the kernel drops it when the process dies, so a stale pid
//! file never blocks a restart.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// Why a lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another live process holds it; its pid, when the file says.
    Held(Option<i32>),
    /// The file could not be opened or written.
    Io(io::Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held(Some(pid)) => write!(f, "locked by process {pid}"),
            LockError::Held(None) => write!(f, "locked by another process"),
            LockError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LockError {}

/// A held pid-file lock.
#[derive(Debug)]
pub struct PidLock {
    _file: Flock<File>,
    path: PathBuf,
}

impl PidLock {
    /// Opens (creating, mode 0644) and locks `path`, then writes our pid.
    pub fn acquire(path: &Path) -> Result<PidLock, LockError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(LockError::Io)?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(f) => f,
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held(text.trim().parse().ok()));
            }
            Err((_, e)) => return Err(LockError::Io(e.into())),
        };
        file.set_len(0).map_err(LockError::Io)?;
        file.seek(SeekFrom::Start(0)).map_err(LockError::Io)?;
        // Postfix writes the pid right-aligned in 10 columns.
        writeln!(file, "{:>10}", std::process::id()).map_err(LockError::Io)?;
        file.sync_all().map_err(LockError::Io)?;
        Ok(PidLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    /// The locked file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether some process holds the lock on `path`, without taking it or
/// changing the file: `Ok(Some(pid))` when it is held (pid 0 when the file
/// does not say), `Ok(None)` when the file is missing or not locked
/// (Postfix `master -t`, `postfix status`).
pub fn holder(path: &Path) -> io::Result<Option<i32>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_unlocked_on_drop) => Ok(None),
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Ok(Some(text.trim().parse().unwrap_or(0)))
        }
        Err((_, e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_with_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.pid");
        let held = PidLock::acquire(&path).unwrap();
        // flock locks belong to the open file description, so a second
        // open in the same process conflicts just like another process.
        match PidLock::acquire(&path) {
            Err(LockError::Held(Some(pid))) => assert_eq!(pid as u32, std::process::id()),
            other => panic!("expected Held, got {other:?}"),
        }
        assert_eq!(holder(&path).unwrap(), Some(std::process::id() as i32));
        drop(held);
        assert_eq!(holder(&path).unwrap(), None);
        assert_eq!(holder(&dir.path().join("missing")).unwrap(), None);
        PidLock::acquire(&path).unwrap();
    }
}

//! File system helpers.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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

/// An unnamed file (`O_TMPFILE`) in the directory `dir`, with `mode`,
/// opened for writing, when the system can give it a name later with
/// [`link_unnamed`] (through `/proc/self/fd`); `None` where it cannot
/// (no `/proc`, as in a chroot, or a file system without `O_TMPFILE`):
/// then the caller makes a named file as before.
///
/// Why: creating a named file holds the directory's lock while the file
/// system looks for a free inode (slow on ext4 without a journal, which
/// skips every recently freed one), so writers to one directory queue
/// behind each other; an unnamed file takes the lock only for its link,
/// and a crash before the link leaves nothing behind.
pub fn unnamed_file(dir: &Path, mode: u32) -> Option<File> {
    static PROC_FD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*PROC_FD.get_or_init(|| Path::new("/proc/self/fd").is_dir()) {
        return None;
    }
    // EOPNOTSUPP, or EISDIR from kernels that ignore the flag.
    OpenOptions::new()
        .write(true)
        .mode(mode)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
        .ok()
}

/// Gives the unnamed file `file` (from [`unnamed_file`]) the name `to`,
/// a path relative to the directory `dir` (or absolute, with `dir` the
/// current directory's handle); fails with `AlreadyExists` if `to` exists.
pub fn link_unnamed(file: &File, dir: &impl AsFd, to: &Path) -> io::Result<()> {
    let fd_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    nix::unistd::linkat(
        nix::fcntl::AT_FDCWD,
        &fd_path,
        dir,
        to,
        nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
    )
    .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_unnamed_file_gets_its_name_once() {
        let d = tempfile::tempdir().unwrap();
        let Some(mut file) = unnamed_file(d.path(), 0o600) else {
            // Nothing to test on a system without O_TMPFILE or /proc.
            return;
        };
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        file.write_all(b"hello").unwrap();
        let dir = File::open(d.path()).unwrap();
        link_unnamed(&file, &dir, Path::new("a")).unwrap();
        assert_eq!(std::fs::read(d.path().join("a")).unwrap(), b"hello");
        let again = link_unnamed(&file, &dir, Path::new("a")).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
    }
}

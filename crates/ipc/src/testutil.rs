//! Test helpers: a spool directory with a listening service socket.

use std::os::unix::net::UnixListener;

/// A temporary spool with `private/NAME` listening.
pub(crate) fn private_listener(name: &str) -> (tempfile::TempDir, UnixListener) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("private")).unwrap();
    let l = UnixListener::bind(dir.path().join("private").join(name)).unwrap();
    (dir, l)
}

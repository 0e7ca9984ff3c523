//! One-byte wakeup requests (Postfix `mail_trigger.c`).
//!
//! The sender never blocks: a trigger that cannot be delivered at once is
//! dropped, because the service also wakes up periodically (master's
//! `wakeup`) and scans everything then.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::service::{Class, socket_path};

/// Sends `request` (e.g. `b"I"`) to a trigger service.
pub fn send(queue_dir: &Path, service: (Class, &str), request: &[u8]) -> io::Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    let path = socket_path(queue_dir, service);
    // A non-blocking connect: when the service's backlog is full it is
    // busy and will scan anyway, so the request is dropped (EAGAIN) instead
    // of making the sender (cleanup, and through it an SMTP client) wait.
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &UnixAddr::new(&path)?)?;
    let mut s = UnixStream::from(fd);
    s.write_all(request)?;
    Ok(())
}

/// Sends `request` and waits up to `timeout` for the service to take the
/// connection (Postfix `mail_trigger` with `trigger_timeout`): for
/// requests a person waits on, such as `postqueue -f`, where a busy
/// service must not look like one that is down.
pub fn send_wait(
    queue_dir: &Path,
    service: (Class, &str),
    request: &[u8],
    timeout: std::time::Duration,
) -> io::Result<()> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, UnixAddr, connect, setsockopt, socket, sockopt,
    };
    use nix::sys::time::TimeVal;
    let path = socket_path(queue_dir, service);
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // A Unix stream connect to a full backlog waits for the send timeout.
    let tv = TimeVal::new(
        i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        i64::from(timeout.subsec_micros()),
    );
    setsockopt(&fd, sockopt::SendTimeout, &tv)?;
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &UnixAddr::new(&path)?)?;
    let mut s = UnixStream::from(fd);
    s.write_all(request)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    #[test]
    fn delivers_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("public")).unwrap();
        let l = UnixListener::bind(dir.path().join("public/qmgr")).unwrap();
        send(dir.path(), crate::service::QMGR, b"I").unwrap();
        let (mut c, _) = l.accept().unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"I");
        assert!(send(dir.path(), crate::service::PICKUP, b"W").is_err());
        let t = std::time::Duration::from_secs(5);
        send_wait(dir.path(), crate::service::QMGR, b"FAD", t).unwrap();
        let (mut c, _) = l.accept().unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"FAD");
        assert!(send_wait(dir.path(), crate::service::PICKUP, b"W", t).is_err());
    }
}

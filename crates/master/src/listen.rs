//! Opening the listening sockets master hands to its children (Postfix
//! `master_listen.c`).
//!
//! master opens every listener itself, before any child runs, so a daemon
//! never needs the privilege to bind port 25 and a reload can keep a
//! socket (and the connections waiting on it) open across the change.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};

/// Pending connections per listener before the kernel refuses more.
const BACKLOG: i32 = 1024;

/// Opens a non-blocking TCP listener on `addr`.
pub(crate) fn inet(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let sock = Socket::new(Domain::for_address(*addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // One socket per address family, like Postfix with inet_protocols.
        sock.set_only_v6(true)?;
    }
    sock.bind(&SockAddr::from(*addr))
        .map_err(|e| io::Error::new(e.kind(), format!("bind {addr}: {e}")))?;
    sock.listen(BACKLOG)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// Opens a non-blocking Unix stream listener at `path`, replacing a stale
/// socket left by an earlier run. Access is controlled by the directory
/// (`private` 0700, `public` 0710), so the socket itself is 0666 as in
/// Postfix.
pub(crate) fn unix(path: &Path) -> io::Result<OwnedFd> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => {
            return Err(io::Error::other(format!(
                "{} is a directory, not a socket",
                path.display()
            )));
        }
        Ok(_) => fs::remove_file(path)?,
        Err(_) => {}
    }
    let sock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    sock.bind(&SockAddr::unix(path)?)
        .map_err(|e| io::Error::new(e.kind(), format!("bind {}: {e}", path.display())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o666))?;
    sock.listen(BACKLOG)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// Writes a one-byte wakeup request to a trigger service's socket without
/// blocking (Postfix `master_wakeup.c`). A full backlog means the service
/// has requests waiting already, so a lost wakeup does no harm.
pub(crate) fn wakeup(path: &Path) -> io::Result<()> {
    let sock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    sock.set_nonblocking(true)?;
    sock.connect(&SockAddr::unix(path)?)?;
    sock.send(b"W")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    #[test]
    fn unix_listener_replaces_stale_socket_and_takes_wakeups() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("qmgr");
        drop(unix(&path).unwrap());
        let fd = unix(&path).unwrap();
        let l = UnixListener::from(fd);
        wakeup(&path).unwrap();
        l.set_nonblocking(false).unwrap();
        let (mut c, _) = l.accept().unwrap();
        let mut buf = Vec::new();
        c.read_to_end(&mut buf).unwrap();
        assert_eq!(buf, b"W");
    }

    #[test]
    fn inet_listener_binds_loopback() {
        let fd = inet(&"127.0.0.1:0".parse().unwrap()).unwrap();
        let l = std::net::TcpListener::from(fd);
        assert!(l.local_addr().unwrap().port() > 0);
    }
}

//! A client connection, whatever the listener type.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A connection handed to a service function.
#[derive(Debug)]
pub enum Conn {
    /// From an inet listener, or a passed TCP socket.
    Tcp(TcpStream),
    /// From a unix listener, or a passed Unix socket.
    Unix(UnixStream),
}

impl Conn {
    /// Wraps a passed descriptor, choosing the type from its address family.
    pub fn from_passed(fd: OwnedFd) -> io::Result<Conn> {
        use nix::sys::socket::{AddressFamily, SockaddrLike, SockaddrStorage, getsockname};
        let addr: SockaddrStorage = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
        Ok(match addr.family() {
            Some(AddressFamily::Inet) | Some(AddressFamily::Inet6) => {
                Conn::Tcp(TcpStream::from(fd))
            }
            _ => Conn::Unix(UnixStream::from(fd)),
        })
    }

    /// Sets both read and write timeouts.
    pub fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
            Conn::Unix(s) => {
                s.set_read_timeout(t)?;
                s.set_write_timeout(t)
            }
        }
    }

    /// The peer, for logs: `ip:port` or `unix`.
    pub fn peer(&self) -> String {
        match self {
            Conn::Tcp(s) => s
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "unknown".into()),
            Conn::Unix(_) => "unix".into(),
        }
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Conn::Tcp(s) => s.as_fd(),
            Conn::Unix(s) => s.as_fd(),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.flush(),
            Conn::Unix(s) => s.flush(),
        }
    }
}

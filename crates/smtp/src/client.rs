//! One connection to an SMTP or LMTP server: connect with a time limit,
//! send bytes, read replies with a time limit per command (Postfix
//! `smtp_connect.c`, `smtp_chat.c`). Parsing is the sans-I/O
//! [`ReplyParser`] of `postern_smtp_proto`.
//!
//! The byte stream is a [`Stream`] so that STARTTLS can swap a plain TCP
//! stream for a TLS one in place; the reply parser must then be replaced
//! too, so that no plaintext read before the handshake is trusted.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_smtp_proto::reply::DEFAULT_MAX_REPLY_SIZE;
use postern_smtp_proto::{Reply, ReplyParser};
use postern_tls::rustls::ClientConfig;
use postern_tls::rustls::pki_types::{CertificateDer, ServerName};
use postern_tls::{MaybeTls, TlsInfo};

/// Where a server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Addr {
    /// TCP.
    Inet(SocketAddr),
    /// A Unix-domain socket (LMTP).
    Unix(PathBuf),
}

/// One server to try: its name (MX host, or the next hop) and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The host name as found (MX exchange, `[host]` name, or the IP
    /// address text).
    pub(crate) host: String,
    /// Where to connect.
    pub(crate) addr: Addr,
}

impl Target {
    /// `host[ip]` as Postfix writes it in reasons.
    pub(crate) fn name_addr(&self) -> String {
        match &self.addr {
            Addr::Inet(a) => format!("{}[{}]", self.host, a.ip()),
            Addr::Unix(p) => format!("{}[{}]", self.host, p.display()),
        }
    }

    /// `host[ip]:port` as Postfix writes it in `relay=`.
    pub(crate) fn relay(&self) -> String {
        match &self.addr {
            Addr::Inet(a) => format!("{}[{}]:{}", self.host, a.ip(), a.port()),
            Addr::Unix(p) => format!("{}[{}]", self.host, p.display()),
        }
    }
}

/// The byte stream under a session.
#[derive(Debug)]
pub(crate) enum Stream {
    /// TCP, plain until STARTTLS.
    Tcp(MaybeTls<TcpStream>),
    /// A Unix-domain socket (LMTP), plain until STARTTLS.
    Unix(MaybeTls<UnixStream>),
    /// Nothing: a STARTTLS handshake failed and took the socket with it.
    Gone,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection gone")
}

impl Stream {
    fn set_read_timeout(&self, t: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.get_ref().set_read_timeout(Some(t)),
            Stream::Unix(s) => s.get_ref().set_read_timeout(Some(t)),
            Stream::Gone => Err(gone()),
        }
    }

    fn set_write_timeout(&self, t: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.get_ref().set_write_timeout(Some(t)),
            Stream::Unix(s) => s.get_ref().set_write_timeout(Some(t)),
            Stream::Gone => Err(gone()),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Gone => Err(gone()),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(buf).and_then(|()| s.flush()),
            Stream::Unix(s) => s.write_all(buf).and_then(|()| s.flush()),
            Stream::Gone => Err(gone()),
        }
    }
}

/// Why an exchange with the server failed below the reply level.
#[derive(Debug)]
pub(crate) enum IoFail {
    /// The time limit passed.
    Timeout,
    /// The server closed the connection, or the connection broke.
    Lost,
    /// The server sent something that is not a reply.
    Garbage(String),
}

/// A connected session.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: Stream,
    parser: ReplyParser,
}

/// Whether an I/O error is a timeout.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Zero means "the system's limit" for connect; for reads and writes
/// it would mean "block forever", which is never wanted.
fn nonzero(t: Duration) -> Duration {
    t.max(Duration::from_millis(1))
}

impl Conn {
    /// Connects within `timeout` (0: the system's limit). The error text
    /// is the system's ("Connection refused", "Connection timed out").
    pub(crate) fn connect(addr: &Addr, timeout: Duration) -> Result<Conn, String> {
        let describe = |e: io::Error| {
            if is_timeout(&e) {
                "Connection timed out".to_string()
            } else {
                let text = e.to_string();
                // "Connection refused (os error 111)" -> "Connection refused"
                text.split(" (os error").next().unwrap_or(&text).to_string()
            }
        };
        let stream = match addr {
            Addr::Inet(a) => {
                let s = if timeout.is_zero() {
                    TcpStream::connect(a)
                } else {
                    TcpStream::connect_timeout(a, timeout)
                }
                .map_err(describe)?;
                let _ = s.set_nodelay(true);
                Stream::Tcp(MaybeTls::Plain(s))
            }
            Addr::Unix(p) => {
                Stream::Unix(MaybeTls::Plain(UnixStream::connect(p).map_err(describe)?))
            }
        };
        Ok(Conn {
            stream,
            parser: ReplyParser::new(DEFAULT_MAX_REPLY_SIZE),
        })
    }

    /// Reads the next reply, all of it within `timeout`.
    pub(crate) fn read_reply(&mut self, timeout: Duration) -> Result<Reply, IoFail> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 8192];
        loop {
            match self.parser.next_reply() {
                Some(Ok(r)) => return Ok(r),
                Some(Err(e)) => return Err(IoFail::Garbage(e.to_string())),
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(IoFail::Timeout);
            }
            if self.stream.set_read_timeout(nonzero(left)).is_err() {
                return Err(IoFail::Lost);
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(IoFail::Lost),
                Ok(n) => self.parser.feed(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Err(IoFail::Timeout),
                Err(_) => return Err(IoFail::Lost),
            }
        }
    }

    /// Sends `bytes`, each write within `timeout`.
    pub(crate) fn send(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), IoFail> {
        if self.stream.set_write_timeout(nonzero(timeout)).is_err() {
            return Err(IoFail::Lost);
        }
        self.stream.write_all(bytes).map_err(|e| {
            if is_timeout(&e) {
                IoFail::Timeout
            } else {
                IoFail::Lost
            }
        })
    }

    /// STARTTLS after the server's `220`: the handshake within
    /// `timeout`, then a fresh reply parser. A server that sent more
    /// after its `220` is refused (those bytes would be read as if they
    /// had come through TLS, CVE-2011-0411 the other way round). On a
    /// failed handshake the connection is gone.
    pub(crate) fn starttls(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        timeout: Duration,
    ) -> io::Result<TlsInfo> {
        if self.parser.has_buffered() {
            self.stream = Stream::Gone;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "server sent plaintext after its reply to STARTTLS",
            ));
        }
        let t = Some(nonzero(timeout));
        let (stream, info) = match std::mem::replace(&mut self.stream, Stream::Gone) {
            Stream::Tcp(plain) => {
                plain.get_ref().set_read_timeout(t)?;
                plain.get_ref().set_write_timeout(t)?;
                let tls = plain.connect(config, name)?;
                let info = tls.info();
                (Stream::Tcp(tls), info)
            }
            Stream::Unix(plain) => {
                plain.get_ref().set_read_timeout(t)?;
                plain.get_ref().set_write_timeout(t)?;
                let tls = plain.connect(config, name)?;
                let info = tls.info();
                (Stream::Unix(tls), info)
            }
            Stream::Gone => return Err(gone()),
        };
        let info = info.ok_or_else(|| io::Error::other("TLS handshake incomplete"))?;
        self.stream = stream;
        self.parser = ReplyParser::new(DEFAULT_MAX_REPLY_SIZE);
        Ok(info)
    }

    /// The server's certificate chain, after STARTTLS.
    pub(crate) fn peer_chain(&self) -> Vec<CertificateDer<'static>> {
        match &self.stream {
            Stream::Tcp(s) => s.peer_certificates().map(<[_]>::to_vec).unwrap_or_default(),
            Stream::Unix(s) => s.peer_certificates().map(<[_]>::to_vec).unwrap_or_default(),
            Stream::Gone => Vec::new(),
        }
    }
}

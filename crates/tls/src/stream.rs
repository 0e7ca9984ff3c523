//! A blocking stream that starts in plaintext and may switch to TLS
//! (STARTTLS, RFC 3207), or starts in TLS (`smtpd_tls_wrappermode`,
//! port 465).
//!
//! The switch consumes the plain stream, so no byte read before the
//! handshake can be mistaken for one read after it. Callers that buffer
//! input must still throw their buffer away at the switch — the STARTTLS
//! command injection (CVE-2011-0411) is exactly a server that kept
//! plaintext pipelined behind `STARTTLS` and ran it as if it had come
//! through TLS. [`accept_buffered`] and [`connect_buffered`] do that for
//! a `BufReader`.

use std::io::{self, BufReader, ErrorKind, Read, Write};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection, StreamOwned};

use crate::describe::{TlsInfo, describe};

/// A plain or TLS stream over `S` (a `TcpStream`, usually).
#[derive(Debug)]
pub enum MaybeTls<S: Read + Write> {
    /// No TLS (yet).
    Plain(S),
    /// The server end of a TLS session.
    Server(Box<StreamOwned<ServerConnection, S>>),
    /// The client end of a TLS session.
    Client(Box<StreamOwned<ClientConnection, S>>),
}

fn already() -> io::Error {
    io::Error::new(ErrorKind::InvalidInput, "TLS already active")
}

impl<S: Read + Write> MaybeTls<S> {
    /// Runs the server side of the handshake to its end (errors, such as a
    /// client that does not like the certificate, show here rather than
    /// at the first read). The socket's timeouts bound the handshake.
    pub fn accept(self, config: Arc<ServerConfig>) -> io::Result<MaybeTls<S>> {
        let MaybeTls::Plain(mut sock) = self else {
            return Err(already());
        };
        let mut conn = ServerConnection::new(config).map_err(io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        Ok(MaybeTls::Server(Box::new(StreamOwned::new(conn, sock))))
    }

    /// Runs the client side of the handshake to its end; the verifier in
    /// `config` decides about the server's certificate and `name` is sent
    /// as SNI (unless it is an IP address) and given to the verifier.
    pub fn connect(
        self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<MaybeTls<S>> {
        let MaybeTls::Plain(mut sock) = self else {
            return Err(already());
        };
        let mut conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        Ok(MaybeTls::Client(Box::new(StreamOwned::new(conn, sock))))
    }

    /// Whether TLS is active.
    pub fn is_tls(&self) -> bool {
        !matches!(self, MaybeTls::Plain(_))
    }

    /// Protocol and cipher, when TLS is active.
    pub fn info(&self) -> Option<TlsInfo> {
        match self {
            MaybeTls::Plain(_) => None,
            MaybeTls::Server(s) => describe(&s.conn),
            MaybeTls::Client(s) => describe(&s.conn),
        }
    }

    /// The peer's certificate chain, when TLS is active and it sent one.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        match self {
            MaybeTls::Plain(_) => None,
            MaybeTls::Server(s) => s.conn.peer_certificates(),
            MaybeTls::Client(s) => s.conn.peer_certificates(),
        }
    }

    /// The underlying socket (for timeouts, addresses).
    pub fn get_ref(&self) -> &S {
        match self {
            MaybeTls::Plain(s) => s,
            MaybeTls::Server(s) => s.get_ref(),
            MaybeTls::Client(s) => s.get_ref(),
        }
    }

    /// Sends a TLS close_notify (nothing for a plain stream). Errors are
    /// of no interest at that point: the session is over either way.
    pub fn close_notify(&mut self) {
        match self {
            MaybeTls::Plain(_) => {}
            MaybeTls::Server(s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
            MaybeTls::Client(s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
        }
    }
}

impl<S: Read + Write> Read for MaybeTls<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = match self {
            MaybeTls::Plain(s) => s.read(buf),
            MaybeTls::Server(s) => s.read(buf),
            MaybeTls::Client(s) => s.read(buf),
        };
        match r {
            // A peer that closes the TCP connection without close_notify
            // is common in SMTP; treat it as the end of input like plain
            // TCP (SMTP has its own end markers, so no truncation attack
            // goes unnoticed).
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }
}

impl<S: Read + Write> Write for MaybeTls<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            MaybeTls::Plain(s) => s.write(buf),
            MaybeTls::Server(s) => s.write(buf),
            MaybeTls::Client(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            MaybeTls::Plain(s) => s.flush(),
            MaybeTls::Server(s) => s.flush(),
            MaybeTls::Client(s) => s.flush(),
        }
    }
}

/// Server side of STARTTLS for a buffered reader: throws away whatever
/// plaintext the client pipelined behind STARTTLS and handshakes. Returns
/// the new reader and how many plaintext bytes were discarded (Postfix
/// logs "improper command pipelining after STARTTLS" when that is not
/// zero).
pub fn accept_buffered<S: Read + Write>(
    reader: BufReader<MaybeTls<S>>,
    config: Arc<ServerConfig>,
) -> io::Result<(BufReader<MaybeTls<S>>, usize)> {
    let discarded = reader.buffer().len();
    let stream = reader.into_inner().accept(config)?;
    Ok((BufReader::new(stream), discarded))
}

/// Client side of STARTTLS for a buffered reader. A server that sent
/// anything after its `220` reply to STARTTLS is refused: those bytes
/// would otherwise be read as if they had come through TLS.
pub fn connect_buffered<S: Read + Write>(
    reader: BufReader<MaybeTls<S>>,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
) -> io::Result<BufReader<MaybeTls<S>>> {
    if !reader.buffer().is_empty() {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            "server sent plaintext after its reply to STARTTLS",
        ));
    }
    Ok(BufReader::new(reader.into_inner().connect(config, name)?))
}

/// The rustls error inside an I/O error from a handshake (for the log
/// and for [`crate::rpt::ResultType::from_tls_error`]); `None` for
/// plain I/O errors (timeouts, resets).
pub fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

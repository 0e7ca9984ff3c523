//! A record stream over a Unix socket, with timeouts and the handshake
//! (Postfix `attr_clnt.c`, `mail_connect.c`).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use postern_wire::attr::{AttrList, AttrReader, Mode};
use postern_wire::{Decoder, RecordType};

use crate::service::{Class, socket_path};

/// What can go wrong talking to a service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket could not be reached, read or written (including
    /// timeouts).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection.
    #[error("connection closed by peer")]
    Closed,
    /// The peer sent something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peer sent malformed records or attributes.
    #[error("bad data: {0}")]
    Wire(#[from] postern_wire::Error),
}

/// Largest record accepted from a peer (content lines are much shorter).
const MAX_RECORD: u32 = 1 << 20;
/// Buffered output is written out beyond this size.
const FLUSH_AT: usize = 32 * 1024;
/// The longest record head: type byte and length code.
const RECORD_HEAD_MAX: usize = 1 + postern_wire::varint::MAX_BYTES;

/// One connection to or from a service.
#[derive(Debug)]
pub struct Conn {
    stream: UnixStream,
    /// Read bytes are `inbuf[start..end]`; the rest of it is room for
    /// the next read (all initialized once, so reads go straight in).
    inbuf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    decoder: Decoder,
}

impl Conn {
    /// Connects to a service's socket; every read and write then times
    /// out after `timeout` (Postfix `ipc_timeout`).
    pub fn connect(
        queue_dir: &Path,
        service: (Class, &str),
        timeout: Duration,
    ) -> Result<Conn, Error> {
        let path = socket_path(queue_dir, service);
        // Postfix's text (mail_connect.c), which log readers such as
        // pflogsumm know: the service by class and name, then strerror
        // without Rust's "(os error N)" suffix, whose ')' would end the
        // reason in `status=deferred (...)` lines.
        let stream = UnixStream::connect(&path).map_err(|e| {
            let why = match e.raw_os_error() {
                Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
                None => e.to_string(),
            };
            io::Error::new(
                e.kind(),
                format!(
                    "connect to transport {}/{}: {why}",
                    service.0.dir(),
                    service.1
                ),
            )
        })?;
        Conn::new(stream, timeout)
    }

    /// Wraps an accepted or connected stream.
    pub fn new(stream: UnixStream, timeout: Duration) -> Result<Conn, Error> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Conn {
            stream,
            inbuf: spare::take_filled(&spare::INPUT, INBUF_START),
            start: 0,
            end: 0,
            out: spare::take(&spare::OUTPUT, FLUSH_AT),
            decoder: Decoder::with_max_len(MAX_RECORD),
        })
    }

    /// Queues one record for sending.
    pub fn send(&mut self, kind: RecordType, data: &[u8]) -> Result<(), Error> {
        // Flush before the buffer would grow past FLUSH_AT: a message
        // streamed to cleanup then never reallocates (and copies) it.
        if !self.out.is_empty() && self.out.len() + data.len() + RECORD_HEAD_MAX > FLUSH_AT {
            self.flush()?;
        }
        postern_wire::Encoder::new(&mut self.out).put(kind, data)?;
        if self.out.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Queues an attribute list (a `Q` record).
    pub fn send_attrs(&mut self, list: AttrList) -> Result<(), Error> {
        list.encode_record(&mut self.out)?;
        Ok(())
    }

    /// Writes out everything queued.
    pub fn flush(&mut self) -> Result<(), Error> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads the next record (flushing queued output first).
    pub fn recv(&mut self) -> Result<(RecordType, Vec<u8>), Error> {
        self.recv_ref().map(|(kind, data)| (kind, data.to_vec()))
    }

    /// [`Conn::recv`] without a copy: the payload is borrowed from the
    /// input buffer until the next call (cleanup reads one record per
    /// message line).
    pub fn recv_ref(&mut self) -> Result<(RecordType, &[u8]), Error> {
        self.flush()?;
        loop {
            let pending = self.inbuf.get(self.start..self.end).unwrap_or_default();
            if let Some((rec, used)) = self.decoder.feed(pending)? {
                let (kind, len) = (rec.kind, rec.data.len());
                // The payload is the last `len` bytes of the record.
                let begin = self.start + used - len;
                self.start += used;
                let data = self.inbuf.get(begin..self.start).unwrap_or_default();
                return Ok((kind, data));
            }
            self.make_room();
            let room = self.inbuf.get_mut(self.end..).unwrap_or_default();
            let n = match self.stream.read(room) {
                Ok(0) => return Err(Error::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.end += n;
        }
    }

    /// Makes at least [`READ_MIN`] bytes of room after the unread bytes:
    /// moves them to the front, and grows the buffer when a record is
    /// longer than it (up to [`MAX_RECORD`], which the decoder enforces).
    fn make_room(&mut self) {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        if self.inbuf.len() - self.end >= READ_MIN {
            return;
        }
        if self.start > 0 {
            self.inbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.inbuf.len() - self.end < READ_MIN {
            let want = (self.end + READ_MIN).max(self.inbuf.len() * 2);
            self.inbuf.resize(want, 0);
        }
    }

    /// Reads the next record, which must be an attribute list; returns its
    /// payload for an [`AttrReader`].
    pub fn recv_attrs(&mut self) -> Result<Vec<u8>, Error> {
        match self.recv()? {
            (RecordType::AttrList, data) => Ok(data),
            (kind, _) => Err(Error::Protocol(format!(
                "expected an attribute list, got a {} record",
                kind.name()
            ))),
        }
    }

    /// Server side: sends the greeting `protocol`, `version` and `extra`.
    pub fn greet(
        &mut self,
        protocol: &str,
        version: u64,
        extra: &[(&str, &str)],
    ) -> Result<(), Error> {
        let mut list = AttrList::new();
        list.put_str("protocol", protocol)
            .put_u64("version", version);
        for (name, value) in extra {
            list.put_str(name, value);
        }
        self.send_attrs(list)?;
        self.flush()
    }

    /// Client side: reads the greeting and checks protocol and version;
    /// returns the greeting payload for its other fields.
    pub fn expect_greeting(&mut self, protocol: &str, version: u64) -> Result<Vec<u8>, Error> {
        let payload = self.recv_attrs()?;
        let mut r = AttrReader::new(&payload, Mode::Lenient)?;
        let got = r.require_str("protocol")?;
        if got != protocol {
            return Err(Error::Protocol(format!(
                "expected protocol {protocol}, peer speaks {got}"
            )));
        }
        let v = r.require_u64("version")?;
        if v != version {
            return Err(Error::Protocol(format!(
                "{protocol} protocol version {v}, expected {version}"
            )));
        }
        Ok(payload)
    }

    /// Half-closes the sending side (the peer sees end-of-file).
    pub fn shutdown_write(&mut self) -> Result<(), Error> {
        self.flush()?;
        self.stream.shutdown(std::net::Shutdown::Write)?;
        Ok(())
    }
}

impl Drop for Conn {
    /// What is queued still goes out (an agent's last `final` waits to
    /// share a write with its next greeting), as far as the socket takes
    /// it at once: a peer that stopped reading never holds up the close.
    fn drop(&mut self) {
        if !self.out.is_empty() && self.stream.set_nonblocking(true).is_ok() {
            let _ = self.stream.write(&self.out);
        }
        spare::give(&spare::INPUT, std::mem::take(&mut self.inbuf));
        spare::give(&spare::OUTPUT, std::mem::take(&mut self.out));
    }
}

/// The first size of a connection's input buffer.
const INBUF_START: usize = 32 * 1024;

/// The least room a read gets (so a message streamed to cleanup comes in
/// a few large reads, not many small ones).
const READ_MIN: usize = 16 * 1024;

/// Buffers of closed connections, kept for the next ones in the same
/// thread: daemons make a connection per message (smtpd to cleanup, qmgr
/// to its agents), and a new 32 KiB output buffer each time cost a
/// malloc and a free of a chunk too large for malloc's fast bins (with a
/// `malloc_consolidate` each time: 3 % of smtpd with 64 KiB messages).
mod spare {
    use std::cell::RefCell;
    use std::thread::LocalKey;

    /// Buffers kept per kind and thread: more than the connections a
    /// thread holds at once.
    const KEEP: usize = 4;

    /// A buffer that grew past this (a long record) is freed instead.
    const KEEP_MAX: usize = 64 * 1024;

    type Pool = RefCell<Vec<Vec<u8>>>;

    thread_local! {
        pub(super) static INPUT: Pool = const { RefCell::new(Vec::new()) };
        pub(super) static OUTPUT: Pool = const { RefCell::new(Vec::new()) };
    }

    /// A kept buffer of at least `capacity` bytes, as it was left.
    fn reuse(pool: &'static LocalKey<Pool>, capacity: usize) -> Option<Vec<u8>> {
        pool.try_with(|p| p.borrow_mut().pop())
            .ok()
            .flatten()
            .filter(|b| b.capacity() >= capacity)
    }

    /// An empty buffer of at least `capacity` bytes.
    pub(super) fn take(pool: &'static LocalKey<Pool>, capacity: usize) -> Vec<u8> {
        let mut buf = reuse(pool, capacity).unwrap_or_else(|| Vec::with_capacity(capacity));
        buf.clear();
        buf
    }

    /// A buffer of at least `len` initialized bytes (their values are of
    /// no meaning): zeroed only when new.
    pub(super) fn take_filled(pool: &'static LocalKey<Pool>, len: usize) -> Vec<u8> {
        let mut buf = reuse(pool, len).unwrap_or_default();
        if buf.len() < len {
            buf.resize(len, 0);
        }
        buf
    }

    /// Keeps `buf` for a later connection of this thread (with what it
    /// holds: an output buffer is cleared when taken, an input buffer
    /// is written over).
    pub(super) fn give(pool: &'static LocalKey<Pool>, buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > KEEP_MAX {
            return;
        }
        let _ = pool.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < KEEP {
                p.push(buf);
            }
        });
    }
}

/// Server side, sans-I/O: takes the complete attribute-list records (of
/// at most `max_len` bytes) from the front of `input` and parses each
/// with `parse`; an incomplete record stays for the next read. Any other
/// record type is a protocol error.
pub fn take_records<T>(
    input: &mut Vec<u8>,
    max_len: u32,
    mut parse: impl FnMut(&[u8]) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let decoder = Decoder::with_max_len(max_len);
    let mut used = 0;
    let mut out = Vec::new();
    while let Some((rec, n)) = decoder.feed(&input[used..])? {
        if rec.kind != RecordType::AttrList {
            return Err(Error::Protocol(format!(
                "unexpected {} record",
                rec.kind.name()
            )));
        }
        out.push(parse(rec.data)?);
        used += n;
    }
    input.drain(..used);
    Ok(out)
}

/// A server's greeting record (`protocol`, `version`), encoded: what
/// [`Conn::greet`] sends, for servers that write their own bytes (the
/// multi-client ones).
pub fn greeting(protocol: &str, version: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut l = AttrList::new();
    l.put_str("protocol", protocol).put_u64("version", version);
    // Encoding a fixed, valid list cannot fail.
    let _ = l.encode_record(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_connections_buffers_serve_the_next_one_empty() {
        let mut b = spare::take(&spare::OUTPUT, FLUSH_AT);
        b.extend_from_slice(b"old bytes");
        let at = b.as_ptr();
        spare::give(&spare::OUTPUT, b);
        let again = spare::take(&spare::OUTPUT, FLUSH_AT);
        assert_eq!((again.as_ptr(), again.len()), (at, 0));
        // A grown one is freed; a small one does not serve a larger need.
        spare::give(&spare::OUTPUT, Vec::with_capacity(1 << 20));
        spare::give(&spare::OUTPUT, Vec::with_capacity(16));
        assert!(spare::take(&spare::OUTPUT, FLUSH_AT).capacity() >= FLUSH_AT);
    }

    #[test]
    fn connect_error_reads_like_postfix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("private")).unwrap();
        let e = Conn::connect(dir.path(), (Class::Private, "smtp"), Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "connect to transport private/smtp: No such file or directory"
        );
    }

    #[test]
    fn handshake_and_records_round_trip() {
        let (a, b) = UnixStream::pair().unwrap();
        let t = Duration::from_secs(5);
        let mut server = Conn::new(a, t).unwrap();
        let mut client = Conn::new(b, t).unwrap();
        server.greet("cleanup", 1, &[("queue_id", "4Ab")]).unwrap();
        let g = client.expect_greeting("cleanup", 1).unwrap();
        let mut r = AttrReader::new(&g, Mode::Lenient).unwrap();
        assert_eq!(r.take_str("queue_id").unwrap(), Some("4Ab"));
        let big = vec![b'x'; 100_000];
        client.send(RecordType::Normal, &big).unwrap();
        client.send(RecordType::End, b"").unwrap();
        client.flush().unwrap();
        assert_eq!(server.recv().unwrap(), (RecordType::Normal, big));
        assert_eq!(server.recv().unwrap().0, RecordType::End);
        drop(client);
        assert!(matches!(server.recv(), Err(Error::Closed)));
    }

    #[test]
    fn records_split_across_reads_come_whole_and_in_order() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut server = Conn::new(a, Duration::from_secs(5)).unwrap();
        // Lines of many lengths, as one byte stream written in pieces
        // that end anywhere: the reader moves and grows its buffer.
        let lines: Vec<Vec<u8>> = (0..3000)
            .map(|i| vec![b'a' + (i % 26) as u8; i * 7 % 997])
            .collect();
        let mut stream = Vec::new();
        for l in &lines {
            postern_wire::Encoder::new(&mut stream)
                .put(RecordType::Normal, l)
                .unwrap();
        }
        let writer = std::thread::spawn(move || {
            for piece in stream.chunks(4093) {
                b.write_all(piece).unwrap();
            }
        });
        for l in &lines {
            let (kind, data) = server.recv_ref().unwrap();
            assert_eq!((kind, data), (RecordType::Normal, &l[..]));
        }
        writer.join().unwrap();
        assert!(matches!(server.recv_ref(), Err(Error::Closed)));
    }

    #[test]
    fn wrong_protocol_or_version_is_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        let t = Duration::from_secs(5);
        let mut server = Conn::new(a, t).unwrap();
        let mut client = Conn::new(b, t).unwrap();
        server.greet("rewrite", 1, &[]).unwrap();
        let e = client.expect_greeting("cleanup", 1).unwrap_err();
        assert!(e.to_string().contains("peer speaks rewrite"), "{e}");
        server.greet("cleanup", 2, &[]).unwrap();
        let e = client.expect_greeting("cleanup", 1).unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
    }
}

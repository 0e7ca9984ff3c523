//! The queue listing protocol between showq(8) and postqueue(1) (Postfix
//! `showq.c` and `postqueue/showq_compat.c`, `showq_json.c`).
//!
//! showq speaks first with its greeting (`protocol=showq`, `version=1`),
//! then sends one attribute list per message: `queue_name`, `queue_id`,
//! `time` (arrival, seconds since the epoch), `size` (content bytes),
//! `force_expired` (0 or 1), `sender` (empty for `<>`) and `nrcpt`,
//! followed by exactly `nrcpt` attribute lists `recipient`, `reason` (the
//! latest deferral reason, empty when there is none). An `E` record ends
//! the listing; a connection that closes before it was cut short.
//!
//! The same stream is what `showq -S` writes to standard output, so
//! postqueue reads it the same way from a socket or from a pipe.

use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use postern_wire::attr::{AttrList, AttrReader, Mode};
use postern_wire::{Decoder, Encoder, RecordType};

use crate::conn::Error;
use crate::service::{SHOWQ, socket_path};

/// Protocol name in the greeting.
pub const PROTOCOL: &str = "showq";
/// Protocol version.
pub const VERSION: u64 = 1;
/// Largest record accepted (an address or a reason is far shorter).
const MAX_RECORD: u32 = 64 * 1024;
/// Most recipients accepted for one message (a queue file cannot hold
/// more than this many in practice; a larger count is a broken peer).
pub const MAX_RECIPIENTS: u64 = 10_000_000;

/// One recipient still to be delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipient {
    /// The address.
    pub address: String,
    /// Why the last attempt failed; empty if there was none.
    pub reason: String,
}

/// One queued message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The queue it is in (`active`, `deferred`, `hold`, ...).
    pub queue_name: String,
    /// Its queue id.
    pub queue_id: String,
    /// Arrival time, seconds since the epoch.
    pub arrival_time: u64,
    /// Content size in bytes.
    pub message_size: u64,
    /// Whether it was marked to expire (`postsuper -f`, Postfix 3.1).
    pub force_expired: bool,
    /// The envelope sender; empty for the null sender.
    pub sender: String,
    /// The recipients still to be delivered.
    pub recipients: Vec<Recipient>,
}

/// Server side: writes the greeting.
pub fn write_greeting(out: &mut impl Write) -> io::Result<()> {
    let mut l = AttrList::new();
    l.put_str("protocol", PROTOCOL).put_u64("version", VERSION);
    put_list(out, l)
}

fn put_list(out: &mut impl Write, l: AttrList) -> io::Result<()> {
    let mut buf = Vec::new();
    l.encode_record(&mut buf).map_err(io::Error::other)?;
    out.write_all(&buf)
}

/// Server side: writes one message.
pub fn write_message(out: &mut impl Write, m: &Message) -> io::Result<()> {
    let mut l = AttrList::new();
    l.put_str("queue_name", &m.queue_name)
        .put_str("queue_id", &m.queue_id)
        .put_u64("time", m.arrival_time)
        .put_u64("size", m.message_size)
        .put_u64("force_expired", u64::from(m.force_expired))
        .put_str("sender", &m.sender)
        .put_u64("nrcpt", m.recipients.len() as u64);
    put_list(out, l)?;
    for r in &m.recipients {
        let mut l = AttrList::new();
        l.put_str("recipient", &r.address)
            .put_str("reason", &r.reason);
        put_list(out, l)?;
    }
    Ok(())
}

/// Server side: writes the end of the listing.
pub fn write_end(out: &mut impl Write) -> io::Result<()> {
    let mut buf = Vec::new();
    Encoder::new(&mut buf)
        .put(RecordType::End, b"")
        .map_err(io::Error::other)?;
    out.write_all(&buf)
}

/// Client side: reads a listing from a socket or a pipe.
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    decoder: Decoder,
    greeted: bool,
    done: bool,
}

/// Connects to `public/showq` under `queue_dir`. Reads and writes time
/// out after `timeout`.
pub fn connect(
    queue_dir: &Path,
    timeout: Duration,
) -> io::Result<Reader<std::os::unix::net::UnixStream>> {
    let path = socket_path(queue_dir, SHOWQ);
    let s = std::os::unix::net::UnixStream::connect(&path)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(Reader::new(s))
}

impl<R: Read> Reader<R> {
    /// Reads the listing from `inner`.
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            buf: Vec::with_capacity(16384),
            start: 0,
            decoder: Decoder::with_max_len(MAX_RECORD),
            greeted: false,
            done: false,
        }
    }

    fn record(&mut self) -> Result<(RecordType, Vec<u8>), Error> {
        loop {
            if let Some((rec, used)) = self.decoder.feed(&self.buf[self.start..])? {
                let out = (rec.kind, rec.data.to_vec());
                self.start += used;
                return Ok(out);
            }
            self.buf.drain(..self.start);
            self.start = 0;
            let mut chunk = [0u8; 16384];
            let n = match self.inner.read(&mut chunk) {
                Ok(0) => return Err(Error::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn attrs(&mut self) -> Result<Option<Vec<u8>>, Error> {
        match self.record()? {
            (RecordType::AttrList, data) => Ok(Some(data)),
            (RecordType::End, _) => Ok(None),
            (kind, _) => Err(Error::Protocol(format!(
                "unexpected {} record",
                kind.name()
            ))),
        }
    }

    /// The next message, or `None` at the end of the listing.
    pub fn next_message(&mut self) -> Result<Option<Message>, Error> {
        if self.done {
            return Ok(None);
        }
        if !self.greeted {
            let g = self
                .attrs()?
                .ok_or_else(|| Error::Protocol("no greeting".into()))?;
            let mut r = AttrReader::new(&g, Mode::Lenient)?;
            let p = r.require_str("protocol")?;
            if p != PROTOCOL {
                return Err(Error::Protocol(format!(
                    "expected protocol {PROTOCOL}, peer speaks {p}"
                )));
            }
            let v = r.require_u64("version")?;
            if v != VERSION {
                return Err(Error::Protocol(format!(
                    "{PROTOCOL} protocol version {v}, expected {VERSION}"
                )));
            }
            self.greeted = true;
        }
        let Some(head) = self.attrs()? else {
            self.done = true;
            return Ok(None);
        };
        let mut r = AttrReader::new(&head, Mode::Lenient)?;
        let mut m = Message {
            queue_name: r.require_str("queue_name")?.to_string(),
            queue_id: r.require_str("queue_id")?.to_string(),
            arrival_time: r.require_u64("time")?,
            message_size: r.require_u64("size")?,
            force_expired: r.take_u64("force_expired")?.unwrap_or(0) != 0,
            sender: r.require_str("sender")?.to_string(),
            recipients: Vec::new(),
        };
        let n = r.require_u64("nrcpt")?;
        if n > MAX_RECIPIENTS {
            return Err(Error::Protocol(format!("{n} recipients in one message")));
        }
        for _ in 0..n {
            let data = self
                .attrs()?
                .ok_or_else(|| Error::Protocol("listing ends inside a message".into()))?;
            let mut r = AttrReader::new(&data, Mode::Lenient)?;
            m.recipients.push(Recipient {
                address: r.require_str("recipient")?.to_string(),
                reason: r.take_str("reason")?.unwrap_or_default().to_string(),
            });
        }
        Ok(Some(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Message> {
        vec![
            Message {
                queue_name: "deferred".into(),
                queue_id: "4Y5Lrq3yTsz1Qwm".into(),
                arrival_time: 1_700_000_000,
                message_size: 1234,
                force_expired: false,
                sender: "alice@example.org".into(),
                recipients: vec![
                    Recipient {
                        address: "bob@example.org".into(),
                        reason: "connect refused".into(),
                    },
                    Recipient {
                        address: "carol@example.org".into(),
                        reason: String::new(),
                    },
                ],
            },
            Message {
                queue_name: "hold".into(),
                queue_id: "4Y5Lrq3yTtz1Qwn".into(),
                sender: String::new(),
                ..Message::default()
            },
        ]
    }

    #[test]
    fn round_trip() {
        let mut out = Vec::new();
        write_greeting(&mut out).unwrap();
        for m in sample() {
            write_message(&mut out, &m).unwrap();
        }
        write_end(&mut out).unwrap();
        // Byte by byte: records split across reads.
        struct Slow<'a>(&'a [u8]);
        impl Read for Slow<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
        }
        let mut r = Reader::new(Slow(&out));
        let mut got = Vec::new();
        while let Some(m) = r.next_message().unwrap() {
            got.push(m);
        }
        assert_eq!(got, sample());
        assert!(r.next_message().unwrap().is_none());
    }

    #[test]
    fn truncated_or_foreign_streams_are_errors() {
        let mut out = Vec::new();
        write_greeting(&mut out).unwrap();
        write_message(&mut out, &sample()[0]).unwrap();
        let cut = &out[..out.len() - 3];
        let mut r = Reader::new(cut);
        assert!(r.next_message().is_err());
        let mut r = Reader::new(&out[..]);
        assert!(r.next_message().unwrap().is_some());
        assert!(matches!(r.next_message(), Err(Error::Closed)));
        let mut other = Vec::new();
        let mut l = AttrList::new();
        l.put_str("protocol", "cleanup").put_u64("version", 1);
        l.encode_record(&mut other).unwrap();
        let e = Reader::new(&other[..]).next_message().unwrap_err();
        assert!(e.to_string().contains("peer speaks cleanup"), "{e}");
        assert!(Reader::new(&b"\xff\xff"[..]).next_message().is_err());
    }
}

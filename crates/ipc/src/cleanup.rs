//! Handing a message to cleanup (Postfix `cleanup_user.h`,
//! `cleanup_strerror.c`, the client side of `cleanup.c`).
//!
//! 1. The client connects to `private/cleanup`; cleanup greets with
//!    `protocol=cleanup version=1 queue_id=ID` (it has created the queue
//!    file already).
//! 2. The client sends one attribute list with its `flags`, then the
//!    envelope (`S` sender, `A name=value`, per recipient optional `O`, `o`,
//!    `n` and then `R`), `M`, the content as `N`/`L` line records, `X`, and
//!    `E`.
//! 3. cleanup answers with `status` (bits below, 0 = the message is on
//!    stable storage) and `reason`, and closes.
//!
//! A client that sets [`flags::KEEP`] may send further messages over the
//! same connection: a reply with `keep=1` says cleanup waits for the next
//! request, which is the next message's `flags` list (sent at once, so
//! that cleanup creates the file while the client goes on); cleanup then
//! greets with the new queue ID and the message follows as above. The
//! client may close instead. smtpd keeps its connection this way while
//! its client sends message after message: no connect, accept and master
//! status updates per message, and no cleanup process restart every
//! `max_use` messages.
//!
//! smtpd streams DATA straight into this, so cleanup writes the queue file
//! while the client is still sending.

use std::path::Path;
use std::time::Duration;

use postern_wire::RecordType;
use postern_wire::attr::{AttrList, AttrReader, Mode};
use postern_wire::content::{DEFAULT_CHUNK, LineSplitter};

use crate::conn::{Conn, Error};
use crate::service::CLEANUP;

/// Protocol name in the greeting.
pub const PROTOCOL: &str = "cleanup";
/// Protocol version.
pub const VERSION: u64 = 1;

/// Request flags (Postfix `CLEANUP_FLAG_*`).
pub mod flags {
    /// Take recipients from `To:`, `Cc:` and `Bcc:` (`sendmail -t`).
    pub const EXTRACT_RECIPIENTS: u64 = 1 << 0;
    /// A local submission: add a missing `From:`, `Date:` and
    /// `Message-ID:`, rewrite addresses in the local context.
    pub const LOCAL: u64 = 1 << 1;
    /// Remove `Bcc:` headers (always together with `EXTRACT_RECIPIENTS`;
    /// Postfix removes them for every message).
    pub const DROP_BCC: u64 = 1 << 2;
    /// The client may send another message over this connection after
    /// the reply (see the module documentation).
    pub const KEEP: u64 = 1 << 3;
}

/// Reply status bits (Postfix `CLEANUP_STAT_*`).
pub mod status {
    /// Success: the queue file is on stable storage.
    pub const OK: u64 = 0;
    /// Internal or protocol error.
    pub const BAD: u64 = 1 << 0;
    /// Error writing the queue file.
    pub const WRITE: u64 = 1 << 1;
    /// Message too large (`message_size_limit`).
    pub const SIZE: u64 = 1 << 2;
    /// Content rejected (header/body checks).
    pub const CONT: u64 = 1 << 3;
    /// Too many `Received:` headers (`hop_count_limit`).
    pub const HOPS: u64 = 1 << 4;
    /// No recipients.
    pub const RCPT: u64 = 1 << 5;
    /// Temporarily rejected (a lookup table failed).
    pub const DEFER: u64 = 1 << 6;
    /// Discarded on purpose (a DISCARD action): accepted but not queued.
    pub const DISCARD: u64 = 1 << 7;
}

/// One recipient as the client hands it over.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recipient<'a> {
    /// The address to deliver to.
    pub address: &'a str,
    /// The address as the client gave it, before any rewriting.
    pub orcpt: Option<&'a str>,
    /// RCPT `ORCPT=` (`type;address`, xtext decoded).
    pub dsn_orcpt: Option<&'a str>,
    /// RCPT `NOTIFY=` bits: never 1, success 2, delay 4, failure 8;
    /// 0 = not given.
    pub notify: u8,
}

/// What cleanup said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The queue ID (also when the message was refused).
    pub queue_id: String,
    /// Status bits; [`status::OK`] means queued.
    pub status: u64,
    /// Text for the client (the header_checks REJECT text, ...).
    pub reason: String,
}

impl Outcome {
    /// Whether the message is on stable storage (or was discarded on
    /// purpose, which the client reports as success too).
    pub fn accepted(&self) -> bool {
        self.status == status::OK || self.status == status::DISCARD
    }

    /// The SMTP reply for this outcome (Postfix `cleanup_stat_detail`):
    /// `(code, enhanced status, text)`.
    pub fn smtp_reply(&self) -> (u16, &'static str, String) {
        let s = self.status;
        let text = |default: &str| {
            if self.reason.is_empty() {
                default.to_string()
            } else {
                self.reason.clone()
            }
        };
        if s == status::OK || s == status::DISCARD {
            (250, "2.0.0", format!("Ok: queued as {}", self.queue_id))
        } else if s & status::BAD != 0 {
            (451, "4.3.0", text("Error: internal error"))
        } else if s & status::WRITE != 0 {
            (451, "4.3.0", text("Error: queue file write error"))
        } else if s & status::DEFER != 0 {
            (451, "4.7.1", text("Error: temporary rejection"))
        } else if s & status::SIZE != 0 {
            (552, "5.3.4", text("Error: message file too big"))
        } else if s & status::HOPS != 0 {
            (554, "5.4.0", text("Error: too many hops"))
        } else if s & status::CONT != 0 {
            (550, "5.7.1", text("Error: content rejected"))
        } else if s & status::RCPT != 0 {
            (554, "5.5.1", text("Error: no valid recipients"))
        } else {
            (451, "4.3.0", text("Error: internal error"))
        }
    }
}

/// Client side: one message to cleanup.
#[derive(Debug)]
pub struct Client {
    conn: Conn,
    /// From cleanup's greeting; `None` until it is read (see
    /// [`Client::connect_lazy`]).
    queue_id: Option<String>,
    splitter: LineSplitter,
}

impl Client {
    /// Connects, reads the greeting and sends the request flags.
    pub fn connect(queue_dir: &Path, timeout: Duration, flags: u64) -> Result<Client, Error> {
        let conn = Conn::connect(queue_dir, CLEANUP, timeout)?;
        Client::start(conn, flags)
    }

    /// Connects and sends the request flags without waiting for the
    /// greeting: cleanup creates the queue file while the caller goes on
    /// (smtpd answers the first RCPT meanwhile). [`Client::greeting`]
    /// reads it; [`Client::finish`] does if nobody did.
    pub fn connect_lazy(queue_dir: &Path, timeout: Duration, flags: u64) -> Result<Client, Error> {
        Client::start_lazy(Conn::connect(queue_dir, CLEANUP, timeout)?, flags)
    }

    /// Like [`Client::connect_lazy`], over an existing connection. The
    /// flags go out with the first records that do (cleanup makes the
    /// file before it reads them: one wakeup less).
    pub fn start_lazy(mut conn: Conn, flags: u64) -> Result<Client, Error> {
        let mut list = AttrList::new();
        list.put_u64("flags", flags);
        conn.send_attrs(list)?;
        Ok(Client {
            conn,
            queue_id: None,
            splitter: LineSplitter::new(DEFAULT_CHUNK),
        })
    }

    /// Like [`Client::connect`], over an existing connection.
    pub fn start(mut conn: Conn, flags: u64) -> Result<Client, Error> {
        let queue_id = read_greeting(&mut conn)?;
        let mut client = Client::start_lazy(conn, flags)?;
        client.queue_id = Some(queue_id);
        Ok(client)
    }

    /// Reads cleanup's greeting unless it was read, and returns the queue
    /// ID it assigned.
    pub fn greeting(&mut self) -> Result<&str, Error> {
        if self.queue_id.is_none() {
            self.queue_id = Some(read_greeting(&mut self.conn)?);
        }
        Ok(self.queue_id.as_deref().unwrap_or_default())
    }

    /// The queue ID cleanup assigned; `NOQUEUE` while the greeting of a
    /// [`Client::connect_lazy`] connection is unread.
    pub fn queue_id(&self) -> &str {
        self.queue_id.as_deref().unwrap_or("NOQUEUE")
    }

    /// The envelope sender (empty for the null sender `<>`).
    pub fn sender(&mut self, address: &str) -> Result<(), Error> {
        self.conn.send(RecordType::Sender, address.as_bytes())
    }

    /// A named envelope attribute (`client_address`, `helo_name`,
    /// `protocol`, `envid`, `ret`, `sasl_username`, ...).
    pub fn attr(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let mut payload = Vec::with_capacity(name.len() + 1 + value.len());
        payload.extend_from_slice(name.as_bytes());
        payload.push(b'=');
        payload.extend_from_slice(value.as_bytes());
        self.conn.send(RecordType::Attr, &payload)
    }

    /// One recipient.
    pub fn recipient(&mut self, rcpt: &Recipient<'_>) -> Result<(), Error> {
        if let Some(o) = rcpt.orcpt {
            self.conn.send(RecordType::Orcpt, o.as_bytes())?;
        }
        if let Some(o) = rcpt.dsn_orcpt {
            self.conn.send(RecordType::DsnOrcpt, o.as_bytes())?;
        }
        if rcpt.notify != 0 {
            self.conn.send(RecordType::DsnNotify, &[rcpt.notify])?;
        }
        self.conn
            .send(RecordType::Recipient, rcpt.address.as_bytes())
    }

    /// Ends the envelope.
    pub fn begin_content(&mut self) -> Result<(), Error> {
        self.conn.send(RecordType::Message, b"")
    }

    /// Streams message content (any split; bytes are kept exactly).
    pub fn write_content(&mut self, data: &[u8]) -> Result<(), Error> {
        let conn = &mut self.conn;
        self.splitter.feed(data, |kind, line| conn.send(kind, line))
    }

    /// Ends the content.
    pub fn end_content(&mut self) -> Result<(), Error> {
        let conn = &mut self.conn;
        self.splitter.finish(|kind, line| conn.send(kind, line))?;
        self.conn.send(RecordType::Xtra, b"")
    }

    /// Sends `E` and waits for cleanup's verdict.
    pub fn finish(self) -> Result<Outcome, Error> {
        self.finish_keep().map(|(outcome, _)| outcome)
    }

    /// [`Client::finish`], also returning the connection when cleanup
    /// keeps it for another message (the request had [`flags::KEEP`]).
    pub fn finish_keep(mut self) -> Result<(Outcome, Option<Idle>), Error> {
        self.conn.send(RecordType::End, b"")?;
        self.greeting()?;
        let reply = self.conn.recv_attrs()?;
        let mut r = AttrReader::new(&reply, Mode::Lenient)?;
        let outcome = Outcome {
            queue_id: self.queue_id.take().unwrap_or_default(),
            status: r.require_u64("status")?,
            reason: r.take_str("reason")?.unwrap_or_default().to_string(),
        };
        let kept = r.take_u64("keep")?.unwrap_or(0) == 1;
        Ok((outcome, kept.then_some(Idle { conn: self.conn })))
    }
}

/// A connection that cleanup keeps for the client's next message.
/// Dropping it closes the connection, and cleanup goes back to its
/// other clients.
#[derive(Debug)]
pub struct Idle {
    conn: Conn,
}

impl Idle {
    /// Asks for the next message's queue file, with its request `flags`
    /// (sent at once: cleanup creates the file while the caller goes on,
    /// as after [`Client::connect_lazy`]).
    pub fn next(self, flags: u64) -> Result<Client, Error> {
        let mut client = Client::start_lazy(self.conn, flags)?;
        client.conn.flush()?;
        Ok(client)
    }
}

/// Reads cleanup's greeting and returns the queue ID in it.
fn read_greeting(conn: &mut Conn) -> Result<String, Error> {
    let greeting = conn.expect_greeting(PROTOCOL, VERSION)?;
    let mut r = AttrReader::new(&greeting, Mode::Lenient)?;
    Ok(r.require_str("queue_id")?.to_string())
}

/// Server side (cleanup): greets, reads the flags, then hands out records.
#[derive(Debug)]
pub struct Server {
    conn: Conn,
    /// The client's request flags.
    pub flags: u64,
}

/// What a client whose connection cleanup kept did next.
#[derive(Debug)]
pub enum Request {
    /// It asks for another message, with these flags: greet it with
    /// [`Server::accept_next`].
    Message(Conn, u64),
    /// It closed the connection.
    Closed,
}

fn read_flags(conn: &mut Conn) -> Result<u64, Error> {
    let payload = conn.recv_attrs()?;
    let mut r = AttrReader::new(&payload, Mode::Lenient)?;
    Ok(r.take_u64("flags")?.unwrap_or(0))
}

impl Server {
    /// Greets with `queue_id` and reads the client's flags.
    pub fn accept(conn: Conn, queue_id: &str) -> Result<Server, Error> {
        Server::accept_then(conn, queue_id, || {})
    }

    /// [`Server::accept`], doing `meanwhile` between the greeting and the
    /// flags: smtpd sends those with the envelope at DATA, so cleanup has
    /// time on its hands there.
    pub fn accept_then(
        mut conn: Conn,
        queue_id: &str,
        meanwhile: impl FnOnce(),
    ) -> Result<Server, Error> {
        conn.greet(PROTOCOL, VERSION, &[("queue_id", queue_id)])?;
        meanwhile();
        let flags = read_flags(&mut conn)?;
        Ok(Server { conn, flags })
    }

    /// The next message on a kept connection (see [`Server::wait_next`]):
    /// greets with `queue_id`, then does `meanwhile`.
    pub fn accept_next(
        mut conn: Conn,
        flags: u64,
        queue_id: &str,
        meanwhile: impl FnOnce(),
    ) -> Result<Server, Error> {
        conn.greet(PROTOCOL, VERSION, &[("queue_id", queue_id)])?;
        meanwhile();
        Ok(Server { conn, flags })
    }

    /// After [`Server::reply_keep`] with `keep`: waits for the client's
    /// next request or its close.
    pub fn wait_next(self) -> Result<Request, Error> {
        let mut conn = self.conn;
        match read_flags(&mut conn) {
            Ok(flags) => Ok(Request::Message(conn, flags)),
            Err(Error::Closed) => Ok(Request::Closed),
            Err(e) => Err(e),
        }
    }

    /// The next record from the client.
    pub fn next_record(&mut self) -> Result<(RecordType, Vec<u8>), Error> {
        self.conn.recv()
    }

    /// [`Server::next_record`] borrowed from the input buffer until the
    /// next call.
    pub fn next_record_ref(&mut self) -> Result<(RecordType, &[u8]), Error> {
        self.conn.recv_ref()
    }

    /// Sends the verdict.
    pub fn reply(&mut self, status: u64, reason: &str) -> Result<(), Error> {
        self.reply_keep(status, reason, false)
    }

    /// Sends the verdict, saying whether the connection stays open for
    /// another message (only when the client asked, [`flags::KEEP`]).
    pub fn reply_keep(&mut self, status: u64, reason: &str, keep: bool) -> Result<(), Error> {
        let mut list = AttrList::new();
        list.put_u64("status", status).put_str("reason", reason);
        if keep {
            list.put_u64("keep", 1);
        }
        self.conn.send_attrs(list)?;
        self.conn.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_message_round_trips_through_the_protocol() {
        let (a, b) = UnixStream::pair().unwrap();
        let t = Duration::from_secs(5);
        let server = std::thread::spawn(move || {
            let mut s = Server::accept(Conn::new(a, t).unwrap(), "4Yq7Zz1Abc").unwrap();
            assert_eq!(s.flags, flags::LOCAL);
            let mut got = Vec::new();
            let mut content = Vec::new();
            loop {
                let (kind, data) = s.next_record().unwrap();
                postern_wire::content::join(kind, &data, &mut content);
                got.push((kind, data));
                if kind == RecordType::End {
                    break;
                }
            }
            s.reply(status::OK, "").unwrap();
            (got, content)
        });
        let mut c = Client::start(Conn::new(b, t).unwrap(), flags::LOCAL).unwrap();
        assert_eq!(c.queue_id(), "4Yq7Zz1Abc");
        c.sender("a@example.test").unwrap();
        c.attr("client_address", "127.0.0.1").unwrap();
        c.recipient(&Recipient {
            address: "b@example.test",
            notify: 2 | 8,
            ..Default::default()
        })
        .unwrap();
        c.begin_content().unwrap();
        c.write_content(b"Subject: hi\r\n\r\nbo").unwrap();
        c.write_content(b"dy\r\n").unwrap();
        c.end_content().unwrap();
        let out = c.finish().unwrap();
        assert!(out.accepted());
        assert_eq!(out.smtp_reply().2, "Ok: queued as 4Yq7Zz1Abc");
        let (got, content) = server.join().unwrap();
        assert_eq!(content, b"Subject: hi\r\n\r\nbody\r\n");
        assert_eq!(got[0], (RecordType::Sender, b"a@example.test".to_vec()));
        assert_eq!(
            got[1],
            (RecordType::Attr, b"client_address=127.0.0.1".to_vec())
        );
        assert_eq!(got[2], (RecordType::DsnNotify, vec![10]));
        assert_eq!(got[3], (RecordType::Recipient, b"b@example.test".to_vec()));
    }

    #[test]
    fn a_lazy_client_reads_the_greeting_when_asked_or_at_the_end() {
        let t = Duration::from_secs(5);
        for ask in [false, true] {
            let (a, b) = UnixStream::pair().unwrap();
            let server = std::thread::spawn(move || {
                let mut s = Server::accept(Conn::new(a, t).unwrap(), "4Yq7Zz1Lzy").unwrap();
                assert_eq!(s.flags, flags::LOCAL);
                let mut kinds = Vec::new();
                loop {
                    let (kind, _) = s.next_record().unwrap();
                    kinds.push(kind);
                    if kind == RecordType::End {
                        break;
                    }
                }
                s.reply(status::OK, "").unwrap();
                kinds
            });
            let mut c = Client::start_lazy(Conn::new(b, t).unwrap(), flags::LOCAL).unwrap();
            assert_eq!(c.queue_id(), "NOQUEUE");
            c.sender("a@example.test").unwrap();
            c.recipient(&Recipient {
                address: "b@example.test",
                ..Default::default()
            })
            .unwrap();
            if ask {
                assert_eq!(c.greeting().unwrap(), "4Yq7Zz1Lzy");
                assert_eq!(c.queue_id(), "4Yq7Zz1Lzy");
            }
            c.begin_content().unwrap();
            c.write_content(b"Subject: hi\r\n\r\nbody\r\n").unwrap();
            c.end_content().unwrap();
            let out = c.finish().unwrap();
            assert_eq!(out.queue_id, "4Yq7Zz1Lzy");
            assert!(out.accepted());
            let kinds = server.join().unwrap();
            assert_eq!(kinds.first(), Some(&RecordType::Sender));
            assert_eq!(kinds.last(), Some(&RecordType::End));
        }
    }

    #[test]
    fn a_kept_connection_carries_message_after_message() {
        let (a, b) = UnixStream::pair().unwrap();
        let t = Duration::from_secs(5);
        let server = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut s = Server::accept(Conn::new(a, t).unwrap(), "ID0").unwrap();
            for n in 1.. {
                let mut content = Vec::new();
                loop {
                    let (kind, data) = s.next_record().unwrap();
                    postern_wire::content::join(kind, &data, &mut content);
                    if kind == RecordType::End {
                        break;
                    }
                }
                got.push((s.flags, content));
                // The third message is refused and still keeps it.
                let status = if n == 3 { status::CONT } else { status::OK };
                s.reply_keep(status, "", s.flags & flags::KEEP != 0)
                    .unwrap();
                if s.flags & flags::KEEP == 0 {
                    break;
                }
                match s.wait_next().unwrap() {
                    Request::Message(conn, f) => {
                        s = Server::accept_next(conn, f, &format!("ID{n}"), || {}).unwrap();
                    }
                    Request::Closed => break,
                }
            }
            got
        });
        let send = |mut c: Client, body: &str| {
            c.sender("a@example.test").unwrap();
            c.recipient(&Recipient {
                address: "b@example.test",
                ..Default::default()
            })
            .unwrap();
            c.begin_content().unwrap();
            c.write_content(body.as_bytes()).unwrap();
            c.end_content().unwrap();
            c.finish_keep().unwrap()
        };
        let c = Client::start_lazy(Conn::new(b, t).unwrap(), flags::KEEP).unwrap();
        let (out, idle) = send(c, "one\r\n");
        assert_eq!(out.queue_id, "ID0");
        let (out, idle) = send(idle.unwrap().next(flags::KEEP).unwrap(), "two\r\n");
        assert_eq!(out.queue_id, "ID1");
        assert!(out.accepted());
        let (out, idle) = send(idle.unwrap().next(flags::KEEP).unwrap(), "three\r\n");
        assert_eq!((out.queue_id.as_str(), out.accepted()), ("ID2", false));
        // A client that is done closes the kept connection.
        drop(idle.expect("kept after a refused message too"));
        let got = server.join().unwrap();
        let bodies: Vec<&[u8]> = got.iter().map(|(_, c)| c.as_slice()).collect();
        assert_eq!(bodies, [&b"one\r\n"[..], b"two\r\n", b"three\r\n"]);
        assert!(got.iter().all(|(f, _)| *f == flags::KEEP));

        // Without KEEP the reply says nothing of keeping.
        let (a, b) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            let mut s = Server::accept(Conn::new(a, t).unwrap(), "ID9").unwrap();
            while s.next_record().unwrap().0 != RecordType::End {}
            s.reply_keep(status::OK, "", s.flags & flags::KEEP != 0)
                .unwrap();
        });
        let c = Client::start_lazy(Conn::new(b, t).unwrap(), 0).unwrap();
        let (out, idle) = send(c, "x\r\n");
        assert!(out.accepted() && idle.is_none());
        server.join().unwrap();
    }

    #[test]
    fn failures_map_to_postfix_replies() {
        let o = |status, reason: &str| Outcome {
            queue_id: "X".into(),
            status,
            reason: reason.into(),
        };
        assert_eq!(o(status::SIZE, "").smtp_reply().0, 552);
        assert_eq!(
            o(status::CONT, "5.7.1 no spam").smtp_reply().2,
            "5.7.1 no spam"
        );
        assert_eq!(o(status::WRITE, "").smtp_reply().1, "4.3.0");
        assert!(o(status::DISCARD, "").accepted());
        assert!(!o(status::HOPS, "").accepted());
    }
}

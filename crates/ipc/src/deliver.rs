//! Delivery requests from qmgr to a delivery agent (Postfix
//! `deliver_request.c` on the agent side, `qmgr_deliver.c` on qmgr's).
//!
//! qmgr connects to `private/<transport>` (`local`, `virtual`, `smtp`,
//! ...). The agent greets (`protocol=deliver version=1`); qmgr sends one
//! request: a header attribute list (queue, message and client facts and
//! `rcpt_count`), then one attribute list per recipient. The agent delivers
//! and, **for each recipient**, first marks a delivered or bounced
//! recipient done in the queue file (`postern_queue::mark_done` at the
//! recipient's `offset`, so a restart never delivers it again) and then
//! reports a [`RcptStatus`]. A final list `final=1` ends the request. A
//! recipient without a report counts as deferred ("delivery agent
//! crashed" or "lost connection").
//!
//! The agent logs the Postfix delivery line for each recipient
//! (`ID: to=<a@b>, relay=local, delay=1.2, dsn=2.0.0, status=sent (...)`);
//! qmgr keeps the per-message defer and bounce logs and decides on retries
//! and bounces.

use std::path::Path;
use std::time::{Duration, SystemTime};

use postern_wire::attr::{AttrList, AttrReader, Mode};

use crate::conn::{Conn, Error};
use crate::service::Class;

/// Protocol name in the greeting.
pub const PROTOCOL: &str = "deliver";
/// Protocol version.
pub const VERSION: u64 = 1;
/// Most recipients in one request (qmgr splits larger groups).
pub const MAX_RECIPIENTS: u64 = 10_000;

/// Request flags (Postfix `DEL_REQ_FLAG_*`).
pub mod flags {
    /// The sender asked for success notification of some recipient
    /// (`NOTIFY=SUCCESS`): report `relayed`/`delivered` exactly.
    pub const RECORD_SUCCESS: u64 = 1 << 0;
    /// This is a bounce or other notification (null sender): agents must
    /// never bounce it again.
    pub const NOTIFICATION: u64 = 1 << 1;
}

/// One recipient of a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recipient {
    /// The address to deliver to (after rewriting and alias expansion by
    /// cleanup).
    pub address: String,
    /// The address as first received (for `Delivered-To`, DSN).
    pub orcpt: String,
    /// DSN `ORCPT=` (`rfc822;addr`), empty if none.
    pub dsn_orcpt: String,
    /// DSN `NOTIFY=` bits (never 1, success 2, delay 4, failure 8; 0 =
    /// default).
    pub notify: u8,
    /// Offset of the recipient's record in the queue file.
    pub offset: u64,
}

/// A delivery request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The queue the file is in (`active`).
    pub queue_name: String,
    /// The queue ID.
    pub queue_id: String,
    /// Arrival time, seconds since the epoch (for `delay=` in logs).
    pub arrival: u64,
    /// The microseconds of the arrival time (Postfix sends the arrival
    /// as a `timeval`): without them `delays=` is off by up to a second.
    pub arrival_usec: u32,
    /// Next hop as resolved by trivial-rewrite (domain, `[host]:port`,
    /// error text for `error`).
    pub nexthop: String,
    /// Envelope sender, empty for `<>`.
    pub sender: String,
    /// DSN `ENVID`, empty if none.
    pub envid: String,
    /// DSN `RET` (`FULL`/`HDRS`), empty if none.
    pub ret: String,
    /// [`flags`] bits.
    pub flags: u64,
    /// Named facts about the client and message that agents may use
    /// (`client_name`, `client_address`, `helo_name`, `protocol`,
    /// `encoding`, `smtputf8`, `sasl_username`).
    pub attrs: Vec<(String, String)>,
    /// The recipients.
    pub recipients: Vec<Recipient>,
}

impl Request {
    /// A named attribute, if present.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What happened to one recipient (RFC 3464 `Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Delivered to its final destination (mailbox, command, file).
    Delivered,
    /// Expanded into other addresses (alias, .forward) that were queued.
    Expanded,
    /// Could not be delivered: bounce (done in the queue file).
    Failed,
    /// Not delivered now: retry later.
    Delayed,
    /// Handed to a next hop that does not do DSN (or to another MTA).
    Relayed,
}

impl Action {
    /// RFC 3464 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Delivered => "delivered",
            Action::Expanded => "expanded",
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Relayed => "relayed",
        }
    }

    /// Parses the RFC 3464 spelling.
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "delivered" => Action::Delivered,
            "expanded" => Action::Expanded,
            "failed" => Action::Failed,
            "delayed" => Action::Delayed,
            "relayed" => Action::Relayed,
            _ => return None,
        })
    }

    /// Whether the recipient is finished (marked done in the queue file).
    pub fn is_final(self) -> bool {
        self != Action::Delayed
    }
}

/// The result for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptStatus {
    /// The recipient's queue file offset (identifies it).
    pub offset: u64,
    /// What happened.
    pub action: Action,
    /// RFC 3463 status, e.g. `2.0.0`, `4.2.2`, `5.1.1`.
    pub dsn: String,
    /// Human-readable reason (goes to logs and the DSN).
    pub reason: String,
    /// Remote diagnostic (`smtp; 550 5.1.1 ...`), empty if none.
    pub diagnostic: String,
    /// Remote MTA (`dns; mx.example.com`), empty if none.
    pub mta: String,
    /// The next hop offers DSN and got the recipient's NOTIFY, so it
    /// sends any success notice itself and this system sends no
    /// "relayed" one (RFC 3461 section 6.2.2, Postfix smtp_rcpt_done).
    /// Used inside the agent only; not sent to qmgr.
    pub notify_handed_on: bool,
}

/// Postfix's delay format: two significant digits, at most two decimals,
/// no trailing zeros (`0`, `0.01`, `0.19`, `1.2`, `14`).
pub fn fmt_delay(d: Duration) -> String {
    let s = d.as_secs_f64();
    let text = if s >= 10.0 {
        format!("{s:.0}")
    } else if s >= 1.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.2}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Logs an agent's result for one recipient in Postfix's shape:
/// `ID: to=<a>, orig_to=<o>, relay=RELAY, delay=1.2, delays=a/0/0/d,
/// dsn=2.0.0, status=sent (reason)`. `start` is when the agent got the
/// request.
pub fn log_status(req: &Request, rcpt: &Recipient, s: &RcptStatus, start: SystemTime, relay: &str) {
    let arrival = SystemTime::UNIX_EPOCH
        + Duration::from_secs(req.arrival)
        + Duration::from_micros(u64::from(req.arrival_usec.min(999_999)));
    let now = SystemTime::now();
    let before = start.duration_since(arrival).unwrap_or_default();
    let here = now.duration_since(start).unwrap_or_default();
    let total = now.duration_since(arrival).unwrap_or_default();
    let orig = if !rcpt.orcpt.is_empty() && rcpt.orcpt != rcpt.address {
        format!("orig_to=<{}>, ", rcpt.orcpt)
    } else {
        String::new()
    };
    let word = match s.action {
        Action::Delayed => "deferred",
        Action::Failed => "bounced",
        _ => "sent",
    };
    postern_util::info!(
        "{}: to=<{}>, {orig}relay={relay}, delay={}, delays={}/0/0/{}, dsn={}, status={word} ({})",
        req.queue_id,
        rcpt.address,
        fmt_delay(total),
        fmt_delay(before),
        fmt_delay(here),
        s.dsn,
        s.reason
    );
}

impl RcptStatus {
    /// A result without remote details; the offset is filled in by the
    /// caller that knows the recipient.
    pub fn new(action: Action, dsn: &str, reason: String) -> RcptStatus {
        RcptStatus {
            offset: 0,
            action,
            dsn: dsn.into(),
            reason,
            diagnostic: String::new(),
            mta: String::new(),
            notify_handed_on: false,
        }
    }
}

fn header(req: &Request) -> AttrList {
    let mut l = AttrList::new();
    l.put_str("queue_name", &req.queue_name)
        .put_str("queue_id", &req.queue_id)
        .put_u64("arrival", req.arrival)
        .put_u64("arrival_usec", u64::from(req.arrival_usec))
        .put_str("nexthop", &req.nexthop)
        .put_str("sender", &req.sender)
        .put_str("envid", &req.envid)
        .put_str("ret", &req.ret)
        .put_u64("flags", req.flags)
        .put_u64("rcpt_count", req.recipients.len() as u64);
    for (name, value) in &req.attrs {
        // Named facts travel with an `attr.` prefix so they never collide
        // with the fixed fields.
        l.put_str(&format!("attr.{name}"), value);
    }
    l
}

/// A connection to a delivery agent, kept by qmgr for its next request
/// to the same transport. An agent greets again when it has finished a
/// request, ready for the next on the same connection; qmgr reads that
/// greeting before it sends anything, so an agent that went away (end of
/// file instead of the greeting) never saw a request, and a new
/// connection takes it. Saves a connect, an accept and two status
/// messages to master per delivery.
#[derive(Debug)]
pub struct AgentConn {
    transport: String,
    conn: Conn,
    uses: u32,
}

impl AgentConn {
    /// The transport (`private/<transport>`) this connection goes to.
    pub fn transport(&self) -> &str {
        &self.transport
    }
}

/// How many requests one agent connection carries at most.
pub const MAX_REUSE: u32 = 100;

/// qmgr side: sends `req` to `private/<transport>` and collects one
/// status per reported recipient. Recipients the agent did not report
/// (it crashed or the connection broke) are missing from the result and
/// must be deferred by the caller; an `Err` means nothing was reported.
/// `cached` is a connection kept from an earlier request (used when it
/// is to `transport`, else closed) and holds this one's afterwards.
pub fn deliver(
    cached: &mut Option<AgentConn>,
    queue_dir: &Path,
    transport: &str,
    timeout: Duration,
    req: &Request,
) -> Result<Vec<RcptStatus>, (Error, Vec<RcptStatus>)> {
    let mut done = Vec::new();
    // An agent ready for another request, or a new connection.
    let reused = cached
        .take()
        .filter(|c| c.transport == transport)
        .and_then(|mut c| {
            c.conn.expect_greeting(PROTOCOL, VERSION).ok()?;
            Some(c)
        });
    let fresh = reused.is_none();
    let mut agent = match reused {
        Some(c) => c,
        None => match Conn::connect(queue_dir, (Class::Private, transport), timeout) {
            Ok(conn) => AgentConn {
                transport: transport.to_string(),
                conn,
                uses: 0,
            },
            Err(e) => return Err((e, done)),
        },
    };
    let conn = &mut agent.conn;
    let mut run = |done: &mut Vec<RcptStatus>| -> Result<(), Error> {
        // On a new connection the request goes out before the agent's
        // greeting is read: one wait for the agent instead of two (the
        // socket buffers hold it).
        conn.send_attrs(header(req))?;
        for r in &req.recipients {
            let mut l = AttrList::new();
            l.put_str("address", &r.address)
                .put_str("orcpt", &r.orcpt)
                .put_str("dsn_orcpt", &r.dsn_orcpt)
                .put_u64("notify", u64::from(r.notify))
                .put_u64("offset", r.offset);
            conn.send_attrs(l)?;
        }
        conn.flush()?;
        if fresh {
            conn.expect_greeting(PROTOCOL, VERSION)?;
        }
        loop {
            let payload = conn.recv_attrs()?;
            let mut a = AttrReader::new(&payload, Mode::Lenient)?;
            if a.take_u64("final")?.unwrap_or(0) == 1 {
                return Ok(());
            }
            let action = a.require_str("action")?;
            let action = Action::parse(action)
                .ok_or_else(|| Error::Protocol(format!("unknown action {action}")))?;
            done.push(RcptStatus {
                offset: a.require_u64("offset")?,
                action,
                dsn: a.require_str("dsn")?.to_string(),
                reason: a.take_str("reason")?.unwrap_or_default().to_string(),
                diagnostic: a.take_str("diagnostic")?.unwrap_or_default().to_string(),
                mta: a.take_str("mta")?.unwrap_or_default().to_string(),
                notify_handed_on: false,
            });
        }
    };
    match run(&mut done) {
        Ok(()) => {
            agent.uses += 1;
            if agent.uses < MAX_REUSE {
                *cached = Some(agent);
            }
            Ok(done)
        }
        Err(e) => Err((e, done)),
    }
}

/// Agent side of one request.
#[derive(Debug)]
pub struct Server {
    conn: Conn,
}

impl Server {
    /// Greets qmgr and reads the request.
    pub fn accept(mut conn: Conn) -> Result<(Server, Request), Error> {
        conn.greet(PROTOCOL, VERSION, &[])?;
        Server::read_request(conn)?.ok_or(Error::Closed)
    }

    /// After [`Server::finish`]: greets qmgr again, ready for another
    /// request on the same connection, and reads it; `None` when qmgr
    /// closed the connection instead.
    pub fn next(conn: Conn) -> Result<Option<(Server, Request)>, Error> {
        Server::accept(conn).map(Some).or_else(|e| match e {
            // qmgr closed it, before or after this greeting.
            Error::Closed => Ok(None),
            Error::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                Ok(None)
            }
            e => Err(e),
        })
    }

    fn read_request(mut conn: Conn) -> Result<Option<(Server, Request)>, Error> {
        let payload = conn.recv_attrs()?;
        let mut h = AttrReader::new(&payload, Mode::Lenient)?;
        let mut req = Request {
            queue_name: h.require_str("queue_name")?.to_string(),
            queue_id: h.require_str("queue_id")?.to_string(),
            arrival: h.take_u64("arrival")?.unwrap_or(0),
            arrival_usec: h
                .take_u64("arrival_usec")?
                .and_then(|u| u32::try_from(u).ok())
                .unwrap_or(0),
            nexthop: h.take_str("nexthop")?.unwrap_or_default().to_string(),
            sender: h.take_str("sender")?.unwrap_or_default().to_string(),
            envid: h.take_str("envid")?.unwrap_or_default().to_string(),
            ret: h.take_str("ret")?.unwrap_or_default().to_string(),
            flags: h.take_u64("flags")?.unwrap_or(0),
            ..Request::default()
        };
        let count = h.require_u64("rcpt_count")?;
        if count > MAX_RECIPIENTS {
            return Err(Error::Protocol(format!(
                "{count} recipients in one request"
            )));
        }
        req.attrs = h
            .iter()
            .filter_map(|(n, v)| {
                let name = n.strip_prefix("attr.")?;
                Some((name.to_string(), String::from_utf8_lossy(v).into_owned()))
            })
            .collect();
        for _ in 0..count {
            let payload = conn.recv_attrs()?;
            let mut r = AttrReader::new(&payload, Mode::Lenient)?;
            req.recipients.push(Recipient {
                address: r.require_str("address")?.to_string(),
                orcpt: r.take_str("orcpt")?.unwrap_or_default().to_string(),
                dsn_orcpt: r.take_str("dsn_orcpt")?.unwrap_or_default().to_string(),
                notify: u8::try_from(r.take_u64("notify")?.unwrap_or(0)).unwrap_or(0),
                offset: r.require_u64("offset")?,
            });
        }
        Ok(Some((Server { conn }, req)))
    }

    /// Reports one recipient (after marking it done when final); the
    /// report goes out with the next [`Server::flush`] or with the end of
    /// the request (one write and one wakeup of qmgr for a request's last
    /// report, its end and the next greeting).
    pub fn report(&mut self, s: &RcptStatus) -> Result<(), Error> {
        let mut l = AttrList::new();
        l.put_u64("offset", s.offset)
            .put_str("action", s.action.as_str())
            .put_str("dsn", &s.dsn)
            .put_str("reason", &s.reason)
            .put_str("diagnostic", &s.diagnostic)
            .put_str("mta", &s.mta);
        self.conn.send_attrs(l)
    }

    /// Sends the queued reports now (more recipients of the request are
    /// still to be delivered, which may take a while).
    pub fn flush(&mut self) -> Result<(), Error> {
        self.conn.flush()
    }

    /// Ends the request; returns the connection for [`Server::next`],
    /// which must follow: the end goes out with its greeting, in one
    /// write (one wakeup of qmgr instead of two).
    pub fn finish(mut self) -> Result<Conn, Error> {
        let mut l = AttrList::new();
        l.put_u64("final", 1);
        self.conn.send_attrs(l)?;
        Ok(self.conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_statuses_round_trip() {
        let (dir, l) = crate::testutil::private_listener("local");
        let t = Duration::from_secs(5);
        let agent = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let (mut srv, req) = Server::accept(Conn::new(s, t).unwrap()).unwrap();
            for r in &req.recipients {
                srv.report(&RcptStatus {
                    offset: r.offset,
                    action: if r.address.starts_with("ok") {
                        Action::Delivered
                    } else {
                        Action::Delayed
                    },
                    dsn: "2.0.0".into(),
                    reason: format!("delivered to {}", r.address),
                    diagnostic: String::new(),
                    notify_handed_on: false,
                    mta: String::new(),
                })
                .unwrap();
            }
            drop(srv.finish().unwrap());
            req
        });
        let req = Request {
            queue_name: "active".into(),
            queue_id: "4Abc".into(),
            arrival: 1_796_000_000,
            arrival_usec: 654_321,
            sender: "a@example.test".into(),
            attrs: vec![("client_address".into(), "127.0.0.1".into())],
            recipients: vec![
                Recipient {
                    address: "ok@example.test".into(),
                    offset: 120,
                    notify: 2,
                    ..Default::default()
                },
                Recipient {
                    address: "later@example.test".into(),
                    offset: 160,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let got = deliver(&mut None, dir.path(), "local", t, &req).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].action, Action::Delivered);
        assert_eq!(got[1].offset, 160);
        assert_eq!(agent.join().unwrap(), req);
    }

    #[test]
    fn a_crashed_agent_leaves_recipients_unreported() {
        let (dir, l) = crate::testutil::private_listener("local");
        let t = Duration::from_secs(5);
        let agent = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let (mut srv, req) = Server::accept(Conn::new(s, t).unwrap()).unwrap();
            srv.report(&RcptStatus {
                offset: req.recipients[0].offset,
                action: Action::Delivered,
                dsn: "2.0.0".into(),
                reason: "ok".into(),
                diagnostic: String::new(),
                mta: String::new(),
                notify_handed_on: false,
            })
            .unwrap();
            // Dies before the second recipient.
        });
        let req = Request {
            queue_name: "active".into(),
            queue_id: "X".into(),
            recipients: vec![
                Recipient {
                    address: "a@x".into(),
                    offset: 1,
                    ..Default::default()
                },
                Recipient {
                    address: "b@x".into(),
                    offset: 2,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let (err, partial) = deliver(&mut None, dir.path(), "local", t, &req).unwrap_err();
        agent.join().unwrap();
        assert!(matches!(err, Error::Closed), "{err}");
        assert_eq!(partial.len(), 1);
        assert!(deliver(&mut None, dir.path(), "nope", t, &req).is_err());
    }

    /// A kept connection carries the next request to the same agent; an
    /// agent that closed instead of greeting again costs nothing but a
    /// new connection; another transport never gets it.
    #[test]
    fn a_kept_connection_carries_the_next_request() {
        let (dir, l) = crate::testutil::private_listener("local");
        let t = Duration::from_secs(5);
        let ok = |srv: &mut Server, req: &Request| {
            for r in &req.recipients {
                srv.report(&RcptStatus::new(Action::Delivered, "2.0.0", "ok".into()))
                    .map(|()| r)
                    .unwrap();
            }
        };
        let agent = std::thread::spawn(move || {
            let mut ids = Vec::new();
            // First connection: two requests, then the agent leaves.
            let (s, _) = l.accept().unwrap();
            let (mut srv, req) = Server::accept(Conn::new(s, t).unwrap()).unwrap();
            ok(&mut srv, &req);
            ids.push(req.queue_id);
            let (mut srv, req) = Server::next(srv.finish().unwrap()).unwrap().unwrap();
            ok(&mut srv, &req);
            ids.push(req.queue_id);
            drop(srv.finish().unwrap());
            // Second connection: one request, then qmgr closes it.
            let (s, _) = l.accept().unwrap();
            let (mut srv, req) = Server::accept(Conn::new(s, t).unwrap()).unwrap();
            ok(&mut srv, &req);
            ids.push(req.queue_id);
            assert!(Server::next(srv.finish().unwrap()).unwrap().is_none());
            ids
        });
        let req = |id: &str| Request {
            queue_name: "active".into(),
            queue_id: id.into(),
            recipients: vec![Recipient {
                address: "a@x".into(),
                offset: 1,
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut kept = None;
        for id in ["A", "B", "C"] {
            let got = deliver(&mut kept, dir.path(), "local", t, &req(id)).unwrap();
            assert_eq!(got.len(), 1, "{id}");
            assert!(kept.is_some());
        }
        // Another transport: the kept connection is closed, not used.
        assert!(deliver(&mut kept, dir.path(), "nope", t, &req("D")).is_err());
        assert!(kept.is_none());
        assert_eq!(agent.join().unwrap(), ["A", "B", "C"]);
    }

    #[test]
    fn delay_format() {
        let f = |ms| fmt_delay(Duration::from_millis(ms));
        assert_eq!(f(0), "0");
        assert_eq!(f(4), "0");
        assert_eq!(f(10), "0.01");
        assert_eq!(f(190), "0.19");
        assert_eq!(f(500), "0.5");
        assert_eq!(f(1234), "1.2");
        assert_eq!(f(2000), "2");
        assert_eq!(f(14_400), "14");
    }
}

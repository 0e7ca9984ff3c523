//! Address rewriting and resolving by trivial-rewrite (Postfix
//! `rewrite_clnt.c`, `resolve_clnt.c`, `resolve_clnt.h`).
//!
//! One connection carries any number of requests. After the greeting
//! (`protocol=rewrite version=1`) the client sends attribute lists:
//! - `request=rewrite rule=local|remote address=A` → `flags address`:
//!   the canonical form (`user` → `user@$myorigin`, ...);
//! - `request=resolve sender=S address=A` → `flags transport nexthop
//!   recipient`: where the address goes.
//!
//! The client reconnects once when the connection broke (the server
//! process may have retired after `max_use` or `max_idle`).
//!
//! Like Postfix's clients, it remembers its last rewrite and its last
//! resolve answer for [`CACHE_TTL`]: mail comes in runs of the same
//! sender and recipients, and a repeated question then costs no round
//! trip. A table change reaches a client after at most that long, as in
//! Postfix.

use postern_util::cache::TtlCache;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postern_wire::attr::{AttrList, AttrReader, Mode};

use crate::conn::{Conn, Error};
use crate::service::REWRITE;

/// Protocol name in the greeting.
pub const PROTOCOL: &str = "rewrite";
/// Protocol version.
pub const VERSION: u64 = 1;

/// Resolve flags (Postfix `RESOLVE_FLAG_*` and `RESOLVE_CLASS_*`).
pub mod flags {
    /// The address is final: no more rewriting applies.
    pub const FINAL: u64 = 1 << 0;
    /// The address had a source route or `%`/`!` routing.
    pub const ROUTED: u64 = 1 << 1;
    /// The address is invalid: bounce it.
    pub const ERROR: u64 = 1 << 2;
    /// A lookup failed temporarily: defer.
    pub const FAIL: u64 = 1 << 3;
    /// Domain in `mydestination` (local delivery).
    pub const CLASS_LOCAL: u64 = 1 << 8;
    /// Domain in `virtual_alias_domains`.
    pub const CLASS_ALIAS: u64 = 1 << 9;
    /// Domain in `virtual_mailbox_domains`.
    pub const CLASS_VIRTUAL: u64 = 1 << 10;
    /// Domain in `relay_domains`.
    pub const CLASS_RELAY: u64 = 1 << 11;
    /// Any other domain.
    pub const CLASS_DEFAULT: u64 = 1 << 12;
    /// Every class bit.
    pub const CLASS_MASK: u64 =
        CLASS_LOCAL | CLASS_ALIAS | CLASS_VIRTUAL | CLASS_RELAY | CLASS_DEFAULT;
}

/// The address context for `rewrite` (Postfix `rewrite_clnt` rule names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Locally submitted mail: append `@$myorigin` to bare users.
    Local,
    /// Mail from the network: leave unqualified addresses as they are
    /// (Postfix `remote_header_rewrite_domain` empty).
    Remote,
}

impl Rule {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Local => "local",
            Rule::Remote => "remote",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Rule> {
        match s {
            "local" => Some(Rule::Local),
            "remote" => Some(Rule::Remote),
            _ => None,
        }
    }
}

/// Where an address goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    /// [`flags`] bits.
    pub flags: u64,
    /// Delivery transport (`local`, `virtual`, `smtp`, `error`, ...).
    pub transport: String,
    /// Next hop (a domain, `[host]:port`, or the error text for `error`).
    pub nexthop: String,
    /// The recipient as the transport should see it.
    pub recipient: String,
}

impl Resolved {
    /// The address class bits.
    pub fn class(&self) -> u64 {
        self.flags & flags::CLASS_MASK
    }
}

/// A request, as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Canonicalize an address.
    Rewrite {
        /// Context.
        rule: Rule,
        /// The address.
        address: String,
    },
    /// Find the transport for an address.
    Resolve {
        /// Envelope sender (for sender-dependent routing).
        sender: String,
        /// The address.
        address: String,
    },
}

/// How long a client trusts an answer. Postfix's `rewrite_clnt.c` and
/// `resolve_clnt.c` keep only the last one, for 30 seconds; this client
/// keeps many, so for a shorter time: a changed table (trivial-rewrite
/// rereads it within a second) is seen within two.
pub const CACHE_TTL: Duration = Duration::from_secs(1);

/// The most answers of each kind a client keeps (it starts over beyond).
/// Postfix keeps only the last one, which a caller that alternates
/// between two addresses (cleanup: sender, recipient) never hits.
const CACHE_MAX: usize = 256;

/// Client side, reconnecting on demand.
#[derive(Debug)]
pub struct Client {
    queue_dir: PathBuf,
    timeout: Duration,
    conn: Option<Conn>,
    /// (rule, address) → result.
    rewrites: TtlCache<(Rule, String), String>,
    /// (sender, address) → answer.
    resolves: TtlCache<(String, String), Resolved>,
}

impl Client {
    /// A client for the trivial-rewrite of `queue_dir`; connects lazily.
    pub fn new(queue_dir: &Path, timeout: Duration) -> Client {
        Client {
            queue_dir: queue_dir.to_path_buf(),
            timeout,
            conn: None,
            rewrites: TtlCache::new(CACHE_TTL, CACHE_MAX),
            resolves: TtlCache::new(CACHE_TTL, CACHE_MAX),
        }
    }

    /// Canonicalizes `address` in the context `rule`.
    pub fn rewrite(&mut self, rule: Rule, address: &str) -> Result<String, Error> {
        let key = (rule, address.to_string());
        if let Some(result) = self.rewrites.get(&key) {
            return Ok(result);
        }
        let reply = self.call(|l| {
            l.put_str("request", "rewrite")
                .put_str("rule", rule.as_str())
                .put_str("address", address);
        })?;
        let mut r = AttrReader::new(&reply, Mode::Lenient)?;
        let result = r.require_str("address")?.to_string();
        self.rewrites.put(key, result.clone());
        Ok(result)
    }

    /// Resolves `address` to a transport, next hop and recipient.
    pub fn resolve(&mut self, sender: &str, address: &str) -> Result<Resolved, Error> {
        let key = (sender.to_string(), address.to_string());
        if let Some(resolved) = self.resolves.get(&key) {
            return Ok(resolved);
        }
        let reply = self.call(|l| {
            l.put_str("request", "resolve")
                .put_str("sender", sender)
                .put_str("address", address);
        })?;
        let mut r = AttrReader::new(&reply, Mode::Lenient)?;
        let resolved = Resolved {
            flags: r.require_u64("flags")?,
            transport: r.require_str("transport")?.to_string(),
            nexthop: r.require_str("nexthop")?.to_string(),
            recipient: r.require_str("recipient")?.to_string(),
        };
        // A temporary failure is not remembered: the next question asks again.
        if resolved.flags & flags::FAIL == 0 {
            self.resolves.put(key, resolved.clone());
        }
        Ok(resolved)
    }

    fn call(&mut self, fill: impl Fn(&mut AttrList)) -> Result<Vec<u8>, Error> {
        let mut last = None;
        for _ in 0..2 {
            let conn = match self.conn.as_mut() {
                Some(c) => c,
                None => {
                    let mut c = Conn::connect(&self.queue_dir, REWRITE, self.timeout)?;
                    c.expect_greeting(PROTOCOL, VERSION)?;
                    self.conn.insert(c)
                }
            };
            let mut list = AttrList::new();
            fill(&mut list);
            let result = conn.send_attrs(list).and_then(|_| conn.recv_attrs());
            match result {
                Ok(reply) => return Ok(reply),
                // A retired server: try once more on a new connection.
                Err(e @ (Error::Closed | Error::Io(_))) => {
                    self.conn = None;
                    last = Some(e);
                }
                Err(e) => {
                    self.conn = None;
                    return Err(e);
                }
            }
        }
        Err(last.unwrap_or(Error::Closed))
    }
}

/// Server side (trivial-rewrite).
#[derive(Debug)]
pub struct Server {
    conn: Conn,
}

impl Server {
    /// Greets a new client.
    pub fn accept(mut conn: Conn) -> Result<Server, Error> {
        conn.greet(PROTOCOL, VERSION, &[])?;
        Ok(Server { conn })
    }

    /// The next request; `None` when the client closed the connection.
    pub fn next_request(&mut self) -> Result<Option<Request>, Error> {
        let payload = match self.conn.recv_attrs() {
            Ok(p) => p,
            Err(Error::Closed) => return Ok(None),
            Err(e) => return Err(e),
        };
        parse_request(&payload).map(Some)
    }

    /// Answers a rewrite request.
    pub fn reply_rewrite(&mut self, address: &str) -> Result<(), Error> {
        self.conn.send_attrs(rewrite_reply(address))?;
        self.conn.flush()
    }

    /// Answers a resolve request.
    pub fn reply_resolve(&mut self, r: &Resolved) -> Result<(), Error> {
        self.conn.send_attrs(resolve_reply(r))?;
        self.conn.flush()
    }
}

fn parse_request(payload: &[u8]) -> Result<Request, Error> {
    let mut r = AttrReader::new(payload, Mode::Lenient)?;
    let address = r.require_str("address")?.to_string();
    match r.require_str("request")? {
        "rewrite" => {
            let rule = r.require_str("rule")?;
            let rule = Rule::parse(rule)
                .ok_or_else(|| Error::Protocol(format!("unknown rewrite rule {rule}")))?;
            Ok(Request::Rewrite { rule, address })
        }
        "resolve" => {
            let sender = r.take_str("sender")?.unwrap_or_default().to_string();
            Ok(Request::Resolve { sender, address })
        }
        other => Err(Error::Protocol(format!("unknown request {other}"))),
    }
}

fn rewrite_reply(address: &str) -> AttrList {
    let mut l = AttrList::new();
    l.put_u64("flags", 0).put_str("address", address);
    l
}

fn resolve_reply(r: &Resolved) -> AttrList {
    let mut l = AttrList::new();
    l.put_u64("flags", r.flags)
        .put_str("transport", &r.transport)
        .put_str("nexthop", &r.nexthop)
        .put_str("recipient", &r.recipient);
    l
}

/// Sans-I/O server side, for a multi-client trivial-rewrite: the greeting
/// bytes, requests taken from a client's input buffer, encoded replies.
pub mod sans_io {
    use super::*;

    /// The greeting a new client gets.
    pub fn greeting() -> Vec<u8> {
        crate::conn::greeting(PROTOCOL, VERSION)
    }

    /// Takes the complete requests from the front of `input`.
    pub fn take_requests(input: &mut Vec<u8>) -> Result<Vec<Request>, Error> {
        crate::conn::take_records(input, 1 << 16, parse_request)
    }

    /// Appends the reply to a rewrite request.
    pub fn reply_rewrite(out: &mut Vec<u8>, address: &str) {
        let _ = rewrite_reply(address).encode_record(out);
    }

    /// Appends the reply to a resolve request.
    pub fn reply_resolve(out: &mut Vec<u8>, r: &Resolved) {
        let _ = resolve_reply(r).encode_record(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_reconnects_after_server_retires() {
        let (dir, l) = crate::testutil::private_listener("rewrite");
        let t = Duration::from_secs(5);
        let server = std::thread::spawn(move || {
            // Two connections of one request each: the first "retires".
            for _ in 0..2 {
                let (s, _) = l.accept().unwrap();
                let mut srv = Server::accept(Conn::new(s, t).unwrap()).unwrap();
                match srv.next_request().unwrap().unwrap() {
                    Request::Rewrite { rule, address } => {
                        assert_eq!(rule, Rule::Local);
                        srv.reply_rewrite(&format!("{address}@example.test"))
                            .unwrap();
                    }
                    Request::Resolve { address, .. } => {
                        srv.reply_resolve(&Resolved {
                            flags: flags::CLASS_LOCAL,
                            transport: "local".into(),
                            nexthop: "example.test".into(),
                            recipient: address,
                        })
                        .unwrap();
                    }
                }
                // The client's next request sees the close.
            }
        });
        let mut c = Client::new(dir.path(), t);
        assert_eq!(c.rewrite(Rule::Local, "joe").unwrap(), "joe@example.test");
        let r = c.resolve("", "joe@example.test").unwrap();
        assert_eq!(r.transport, "local");
        assert_eq!(r.class(), flags::CLASS_LOCAL);
        server.join().unwrap();
    }

    /// Answers are kept per address: a caller alternating between two
    /// addresses asks the server once for each.
    #[test]
    fn client_keeps_recent_answers_per_address() {
        let (dir, l) = crate::testutil::private_listener("rewrite");
        let t = Duration::from_secs(5);
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut srv = Server::accept(Conn::new(s, t).unwrap()).unwrap();
            let mut asked = Vec::new();
            while let Ok(Some(req)) = srv.next_request() {
                let Request::Rewrite { address, .. } = req else {
                    panic!("unexpected request");
                };
                srv.reply_rewrite(&format!("{address}@example.test"))
                    .unwrap();
                asked.push(address);
            }
            asked
        });
        let mut c = Client::new(dir.path(), t);
        for _ in 0..3 {
            assert_eq!(c.rewrite(Rule::Local, "a").unwrap(), "a@example.test");
            assert_eq!(c.rewrite(Rule::Local, "b").unwrap(), "b@example.test");
        }
        drop(c);
        assert_eq!(server.join().unwrap(), ["a", "b"]);
    }
}

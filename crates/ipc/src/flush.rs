//! Flushing one message or one site (Postfix `flush_clnt.c`, `flush(8)`).
//!
//! The flush service speaks first (`protocol=flush`, `version=1`); the
//! client sends one request, `request=send_file queue_id=ID` (postqueue
//! `-i`, sendmail `-qI`) or `request=send_site site=DOMAIN` (postqueue
//! `-s`, sendmail `-qR`), and gets `status` (see [`Status`]) and `count`,
//! the number of messages put back into play.

use std::path::Path;
use std::time::Duration;

use postern_wire::attr::{AttrList, AttrReader, Mode};

use crate::conn::{Conn, Error};
use crate::service::FLUSH;

/// Protocol name in the greeting.
pub const PROTOCOL: &str = "flush";
/// Protocol version.
pub const VERSION: u64 = 1;

/// A request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Deliver the message with this queue id now.
    SendFile(String),
    /// Deliver the mail queued for this site now.
    SendSite(String),
}

/// The outcome (Postfix `FLUSH_STAT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Done.
    Ok,
    /// The request was malformed (bad queue id or site name).
    Bad,
    /// The site is not eligible (`fast_flush_domains`).
    Deny,
    /// The service failed.
    Fail,
}

impl Status {
    fn code(self) -> u64 {
        match self {
            Status::Ok => 0,
            Status::Fail => 1,
            Status::Bad => 3,
            Status::Deny => 4,
        }
    }

    fn from_code(n: u64) -> Status {
        match n {
            0 => Status::Ok,
            3 => Status::Bad,
            4 => Status::Deny,
            _ => Status::Fail,
        }
    }
}

/// Whether `site` is a host name or an address literal `[ip]` (Postfix
/// `valid_hostname`, `valid_mailhost_literal`): what `send_site` accepts.
pub fn valid_site(site: &str) -> bool {
    if let Some(inner) = site.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let ip = inner.strip_prefix("IPv6:").unwrap_or(inner);
        return ip.parse::<std::net::IpAddr>().is_ok();
    }
    !site.is_empty()
        && site.len() <= 255
        && site.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Client side: sends `req` to `public/flush`; returns the status and the
/// number of messages flushed.
pub fn send(queue_dir: &Path, timeout: Duration, req: &Request) -> Result<(Status, u64), Error> {
    let mut conn = Conn::connect(queue_dir, FLUSH, timeout)?;
    conn.expect_greeting(PROTOCOL, VERSION)?;
    conn.send_attrs(encode_request(req))?;
    let reply = conn.recv_attrs()?;
    let mut r = AttrReader::new(&reply, Mode::Lenient)?;
    let status = Status::from_code(r.require_u64("status")?);
    let count = r.take_u64("count")?.unwrap_or(0);
    Ok((status, count))
}

fn encode_request(req: &Request) -> AttrList {
    let mut l = AttrList::new();
    match req {
        Request::SendFile(id) => l.put_str("request", "send_file").put_str("queue_id", id),
        Request::SendSite(site) => l.put_str("request", "send_site").put_str("site", site),
    };
    l
}

/// Server side: reads the request from a connection (after the greeting).
pub fn read_request(conn: &mut Conn) -> Result<Request, Error> {
    let data = conn.recv_attrs()?;
    let mut r = AttrReader::new(&data, Mode::Lenient)?;
    match r.require_str("request")? {
        "send_file" => Ok(Request::SendFile(r.require_str("queue_id")?.to_string())),
        "send_site" => Ok(Request::SendSite(r.require_str("site")?.to_string())),
        other => Err(Error::Protocol(format!("unknown request {other:?}"))),
    }
}

/// Server side: sends the reply.
pub fn send_reply(conn: &mut Conn, status: Status, count: u64) -> Result<(), Error> {
    let mut l = AttrList::new();
    l.put_u64("status", status.code()).put_u64("count", count);
    conn.send_attrs(l)?;
    conn.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn sites() {
        assert!(valid_site("example.org"));
        assert!(valid_site("[192.0.2.1]"));
        assert!(valid_site("[IPv6:2001:db8::1]"));
        assert!(!valid_site("exa mple.org"));
        assert!(!valid_site("[nonsense]"));
        assert!(!valid_site(""));
        assert!(!valid_site("-bad.org"));
    }

    #[test]
    fn request_and_reply() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("public")).unwrap();
        let l = UnixListener::bind(dir.path().join("public/flush")).unwrap();
        let server = std::thread::spawn(move || {
            let mut got = Vec::new();
            for _ in 0..2 {
                let (s, _) = l.accept().unwrap();
                let mut c = Conn::new(s, Duration::from_secs(5)).unwrap();
                c.greet(PROTOCOL, VERSION, &[]).unwrap();
                let req = read_request(&mut c).unwrap();
                let st = match &req {
                    Request::SendFile(_) => Status::Ok,
                    Request::SendSite(_) => Status::Deny,
                };
                send_reply(&mut c, st, 2).unwrap();
                got.push(req);
            }
            got
        });
        let t = Duration::from_secs(5);
        let file = Request::SendFile("4Y5Lrq3yTsz1Qwm".into());
        let site = Request::SendSite("example.org".into());
        assert_eq!(send(dir.path(), t, &file).unwrap(), (Status::Ok, 2));
        assert_eq!(send(dir.path(), t, &site).unwrap(), (Status::Deny, 2));
        assert_eq!(server.join().unwrap(), vec![file, site]);
    }
}

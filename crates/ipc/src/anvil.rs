//! Connection counting by anvil (Postfix `anvil_clnt.c`, `anvil(8)`).
//!
//! A server process registers each client it serves with anvil for the
//! whole session: `request=connect service=smtp ident=1.2.3.4` →
//! `count=N`, the number of sessions of that client now open, this one
//! included. Keeping the anvil connection open *is* the registration:
//! anvil forgets it when the connection closes, also when the process
//! crashed, so counts never leak.

use std::path::Path;
use std::time::Duration;

use postern_wire::attr::{AttrList, AttrReader, Mode};

use crate::conn::{Conn, Error};
use crate::service::ANVIL;

/// Protocol name in the greeting.
pub const PROTOCOL: &str = "anvil";
/// Protocol version.
pub const VERSION: u64 = 1;

/// A registration with anvil; dropping it ends the registration.
#[derive(Debug)]
pub struct Registration {
    _conn: Conn,
    /// Sessions of this client open now, this one included.
    pub count: u64,
}

/// Registers a session of `ident` (a client address) for `service`.
pub fn connect(
    queue_dir: &Path,
    timeout: Duration,
    service: &str,
    ident: &str,
) -> Result<Registration, Error> {
    let mut conn = Conn::connect(queue_dir, ANVIL, timeout)?;
    conn.expect_greeting(PROTOCOL, VERSION)?;
    let mut l = AttrList::new();
    l.put_str("request", "connect")
        .put_str("service", service)
        .put_str("ident", ident);
    conn.send_attrs(l)?;
    let reply = conn.recv_attrs()?;
    let mut r = AttrReader::new(&reply, Mode::Lenient)?;
    let count = r.require_u64("count")?;
    Ok(Registration { _conn: conn, count })
}

/// Server side: encodes the greeting.
pub fn greeting() -> Vec<u8> {
    crate::conn::greeting(PROTOCOL, VERSION)
}

/// Server side: takes complete requests from the front of `input`;
/// returns `(service, ident)` per request, or an error for bad input.
pub fn take_requests(input: &mut Vec<u8>) -> Result<Vec<(String, String)>, Error> {
    crate::conn::take_records(input, 4096, |data| {
        let mut r = AttrReader::new(data, Mode::Lenient)?;
        let request = r.require_str("request")?;
        if request != "connect" {
            return Err(Error::Protocol(format!("unknown request {request}")));
        }
        Ok((
            r.require_str("service")?.to_string(),
            r.require_str("ident")?.to_string(),
        ))
    })
}

/// Server side: encodes a reply.
pub fn reply(count: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut l = AttrList::new();
    l.put_u64("count", count);
    let _ = l.encode_record(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_split_anywhere_are_taken_whole() {
        let mut wire = Vec::new();
        for ip in ["1.2.3.4", "::1"] {
            let mut l = AttrList::new();
            l.put_str("request", "connect")
                .put_str("service", "smtp")
                .put_str("ident", ip);
            l.encode_record(&mut wire).unwrap();
        }
        for cut in 0..wire.len() {
            let mut input = wire[..cut].to_vec();
            let mut got = take_requests(&mut input).unwrap();
            input.extend_from_slice(&wire[cut..]);
            got.extend(take_requests(&mut input).unwrap());
            assert!(input.is_empty());
            assert_eq!(got.len(), 2, "cut {cut}");
            assert_eq!(got[1], ("smtp".to_string(), "::1".to_string()));
        }
        let mut bad = b"garbage!".to_vec();
        assert!(take_requests(&mut bad).is_err());
    }
}

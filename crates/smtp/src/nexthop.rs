//! The next hop as qmgr passes it (from trivial-rewrite: the recipient
//! domain, `relayhost`, or a `transport_maps` entry), taken apart
//! (Postfix `smtp_connect.c`, `smtp_parse_destination`).
//!
//! SMTP: `domain` and `domain:port` mean an MX lookup; `[host]` and
//! `[host]:port` mean "this host, no MX lookup" (the host may be a name
//! or an IP address, IPv6 as `[ipv6:2001:db8::1]` or `[2001:db8::1]`).
//! Several destinations may be given, separated by commas or spaces
//! (Postfix 3.5 and later); they are tried in order.
//!
//! LMTP: `unix:/path` (a Unix-domain socket), `inet:host:port`,
//! `inet:[host]:port`, or a bare host (`inet:` is the default); LMTP never
//! looks up MX records. A missing port is `smtp_tcp_port` or
//! `lmtp_tcp_port`.

use std::path::PathBuf;

/// Where to connect for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dest {
    /// Look up the MX records of the domain.
    Mx {
        /// The domain, lower case.
        domain: String,
        /// The TCP port.
        port: u16,
    },
    /// This host (name or address), no MX lookup.
    Host {
        /// The host name or IP address text.
        host: String,
        /// The TCP port.
        port: u16,
    },
    /// A Unix-domain socket (LMTP).
    Unix(PathBuf),
}

/// A port number or one of the service names mail uses.
pub(crate) fn parse_port(text: &str) -> Option<u16> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().ok().filter(|&p| p > 0);
    }
    match t.to_ascii_lowercase().as_str() {
        "smtp" => Some(25),
        "lmtp" => Some(24),
        "submission" => Some(587),
        "smtps" | "submissions" => Some(465),
        _ => None,
    }
}

/// Splits `host[:port]` or `[host][:port]`; returns (host, bracketed,
/// port text).
fn split_host_port(text: &str) -> Option<(String, bool, Option<&str>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        let inner = inner
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("ipv6:"))
            .map_or(inner, |_| &inner[5..]);
        if inner.is_empty() {
            return None;
        }
        return Some((inner.to_string(), true, port));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (text, None),
    };
    if host.is_empty() || host.contains(':') {
        return None;
    }
    Some((host.to_ascii_lowercase(), false, port))
}

/// Parses an SMTP next hop list; `default_port` is `smtp_tcp_port`.
/// Returns an error text naming the bad part.
pub(crate) fn parse_smtp(nexthop: &str, default_port: u16) -> Result<Vec<Dest>, String> {
    let mut out = Vec::new();
    for item in nexthop
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|s| !s.is_empty())
    {
        let bad = || format!("bad next-hop destination syntax: \"{item}\"");
        let (host, bracketed, port) = split_host_port(item).ok_or_else(bad)?;
        let port = match port {
            Some(p) => parse_port(p).ok_or_else(bad)?,
            None => default_port,
        };
        out.push(if bracketed {
            Dest::Host { host, port }
        } else {
            Dest::Mx { domain: host, port }
        });
    }
    if out.is_empty() {
        return Err("empty next-hop destination".into());
    }
    Ok(out)
}

/// Parses an LMTP next hop list; `default_port` is `lmtp_tcp_port`.
pub(crate) fn parse_lmtp(nexthop: &str, default_port: u16) -> Result<Vec<Dest>, String> {
    let mut out = Vec::new();
    for item in nexthop
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|s| !s.is_empty())
    {
        let bad = || format!("bad next-hop destination syntax: \"{item}\"");
        if let Some(path) = item.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad());
            }
            out.push(Dest::Unix(PathBuf::from(path)));
            continue;
        }
        let rest = item.strip_prefix("inet:").unwrap_or(item);
        let (host, _, port) = split_host_port(rest).ok_or_else(bad)?;
        let port = match port {
            Some(p) => parse_port(p).ok_or_else(bad)?,
            None => default_port,
        };
        out.push(Dest::Host { host, port });
    }
    if out.is_empty() {
        return Err("empty next-hop destination".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mx(d: &str, port: u16) -> Dest {
        Dest::Mx {
            domain: d.into(),
            port,
        }
    }

    fn host(h: &str, port: u16) -> Dest {
        Dest::Host {
            host: h.into(),
            port,
        }
    }

    #[test]
    fn smtp_forms() {
        assert_eq!(
            parse_smtp("Example.COM", 25).unwrap(),
            [mx("example.com", 25)]
        );
        assert_eq!(
            parse_smtp("example.com:2525", 25).unwrap(),
            [mx("example.com", 2525)]
        );
        assert_eq!(
            parse_smtp("[mail.example.com]", 25).unwrap(),
            [host("mail.example.com", 25)]
        );
        assert_eq!(
            parse_smtp("[127.0.0.1]:submission", 25).unwrap(),
            [host("127.0.0.1", 587)]
        );
        assert_eq!(
            parse_smtp("[ipv6:2001:db8::1]:26", 25).unwrap(),
            [host("2001:db8::1", 26)]
        );
        assert_eq!(parse_smtp("[::1]", 25).unwrap(), [host("::1", 25)]);
        assert_eq!(
            parse_smtp("[a.example]:26, b.example", 25).unwrap(),
            [host("a.example", 26), mx("b.example", 25)]
        );
        for bad in [
            "", "[]", "[x", "x:", "x:0", "x:70000", "x:nope", "[x]y", "::1",
        ] {
            assert!(parse_smtp(bad, 25).is_err(), "{bad}");
        }
    }

    #[test]
    fn lmtp_forms() {
        assert_eq!(
            parse_lmtp("unix:/run/dovecot/lmtp", 24).unwrap(),
            [Dest::Unix("/run/dovecot/lmtp".into())]
        );
        assert_eq!(
            parse_lmtp("inet:localhost:2003", 24).unwrap(),
            [host("localhost", 2003)]
        );
        assert_eq!(
            parse_lmtp("inet:[127.0.0.1]", 24).unwrap(),
            [host("127.0.0.1", 24)]
        );
        assert_eq!(
            parse_lmtp("mailstore", 24).unwrap(),
            [host("mailstore", 24)]
        );
        assert!(parse_lmtp("unix:", 24).is_err());
        assert!(parse_lmtp("", 24).is_err());
    }
}

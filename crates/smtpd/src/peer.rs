//! The client at the other end and its host name (Postfix
//! `smtpd_peer.c`).
//!
//! With `smtpd_peername_lookup = yes` the address is looked up in the
//! DNS: PTR for the address, then A (IPv4 client) or AAAA (IPv6 client)
//! for the first name found. The name is the client's *name* only when
//! one of those addresses is the client's ("forward-confirmed"); the PTR
//! name alone is its *reverse name*. Whatever fails leaves `unknown`,
//! with a status that says whether the failure was temporary (for
//! `reject_unknown_client_hostname` and
//! `reject_unknown_reverse_client_hostname`). Each query stops at the
//! resolver's limit ([`DNS_LIMIT`]), and a failure never ends a session.
//!
//! Postfix asks the system resolver (`getnameinfo`), so `/etc/hosts`
//! counts there; Postern asks `/etc/hosts` first too ([`FilesThenDns`],
//! nsswitch's usual `files dns`), so 127.0.0.1 is `localhost` without a
//! DNS query on every loopback connection.

use std::net::IpAddr;
use std::time::Duration;

use postern_dns::{Dns, Error, Hosts};
use postern_util::warn;

/// The most time one DNS query may take (PTR, then A or AAAA: at most
/// twice this before the greeting).
pub(crate) const DNS_LIMIT: Duration = Duration::from_secs(5);

/// The name of a client whose name is not known.
pub(crate) const UNKNOWN: &str = "unknown";

/// How a name came out (Postfix `SMTPD_PEER_CODE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Found (and for the name: forward-confirmed).
    Ok,
    /// A lookup failed for now.
    Temp,
    /// A lookup failed for good (or lookups are off).
    Perm,
    /// The PTR name does not resolve to the client's address.
    Forged,
}

/// The client at the other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peer {
    /// The verified host name, or `unknown`.
    pub(crate) name: String,
    /// The PTR name, not verified, or `unknown`.
    pub(crate) reverse_name: String,
    /// How `name` came out.
    pub(crate) name_status: Status,
    /// How `reverse_name` came out.
    pub(crate) reverse_name_status: Status,
    /// Printable address.
    pub(crate) addr: String,
    /// The address, for `mynetworks`.
    pub(crate) ip: Option<IpAddr>,
    /// Client port.
    pub(crate) port: u16,
}

impl Peer {
    /// A TCP client whose name is not looked up (Postfix with
    /// `smtpd_peername_lookup = no`); see [`Peer::with_names`].
    pub(crate) fn inet(ip: IpAddr, port: u16) -> Peer {
        let ip = ip.to_canonical();
        Peer {
            name: UNKNOWN.into(),
            reverse_name: UNKNOWN.into(),
            name_status: Status::Perm,
            reverse_name_status: Status::Perm,
            addr: ip.to_string(),
            ip: Some(ip),
            port,
        }
    }

    /// A client on a non-IP socket: Postfix calls it `localhost`,
    /// `127.0.0.1`.
    pub(crate) fn local() -> Peer {
        Peer {
            name: "localhost".into(),
            reverse_name: "localhost".into(),
            name_status: Status::Ok,
            reverse_name_status: Status::Ok,
            addr: "127.0.0.1".into(),
            ip: Some(IpAddr::from([127, 0, 0, 1])),
            port: 0,
        }
    }

    /// The client with the names `lookup` found.
    pub(crate) fn with_names(self, names: Names) -> Peer {
        Peer {
            name: names.name,
            reverse_name: names.reverse_name,
            name_status: names.name_status,
            reverse_name_status: names.reverse_name_status,
            ..self
        }
    }

    /// `name[addr]`, as in every log line.
    pub(crate) fn namaddr(&self) -> String {
        format!("{}[{}]", self.name, self.addr)
    }

    /// The address as written in `Received:` (`IPv6:` prefix for IPv6).
    pub(crate) fn rfc_addr(&self) -> String {
        match self.ip {
            Some(IpAddr::V6(_)) => format!("IPv6:{}", self.addr),
            _ => self.addr.clone(),
        }
    }
}

/// What [`lookup`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    /// The forward-confirmed name, or `unknown`.
    pub(crate) name: String,
    /// The PTR name, or `unknown`.
    pub(crate) reverse_name: String,
    /// How `name` came out.
    pub(crate) name_status: Status,
    /// How `reverse_name` came out.
    pub(crate) reverse_name_status: Status,
}

impl Names {
    fn unknown(status: Status) -> Names {
        Names {
            name: UNKNOWN.into(),
            reverse_name: UNKNOWN.into(),
            name_status: status,
            reverse_name_status: status,
        }
    }
}

/// The DNS side of [`lookup`], so that the logic can be tested without a
/// server.
pub(crate) trait Resolve {
    /// PTR names of `ip`, first one first.
    fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, Error>;
    /// A (for an IPv4 `family`) or AAAA records of `name`.
    fn addresses(&self, name: &str, family: IpAddr) -> Result<Vec<IpAddr>, Error>;
}

impl Resolve for Dns {
    fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, Error> {
        Dns::ptr(self, ip).map(|a| a.records)
    }

    fn addresses(&self, name: &str, family: IpAddr) -> Result<Vec<IpAddr>, Error> {
        let answer = match family {
            IpAddr::V4(_) => self.a(name),
            IpAddr::V6(_) => self.aaaa(name),
        };
        answer.map(|a| a.records)
    }
}

/// The system resolver's order (`hosts: files dns`): the hosts file,
/// then the DNS when there is a resolver.
pub(crate) struct FilesThenDns<'a> {
    pub(crate) hosts: &'a Hosts,
    pub(crate) dns: Option<&'a Dns>,
}

impl FilesThenDns<'_> {
    fn dns(&self) -> Result<&Dns, Error> {
        self.dns
            .ok_or_else(|| Error::Temporary("no DNS resolver".into()))
    }
}

impl Resolve for FilesThenDns<'_> {
    fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, Error> {
        let names = self.hosts.names(ip);
        if !names.is_empty() {
            return Ok(names);
        }
        Resolve::ptr(self.dns()?, ip)
    }

    fn addresses(&self, name: &str, family: IpAddr) -> Result<Vec<IpAddr>, Error> {
        let same = |a: &IpAddr| a.is_ipv4() == family.is_ipv4();
        let listed: Vec<IpAddr> = self
            .hosts
            .addresses(name)
            .into_iter()
            .filter(same)
            .collect();
        if !listed.is_empty() {
            return Ok(listed);
        }
        Resolve::addresses(self.dns()?, name, family)
    }
}

/// Postfix `smtpd_peer_sockaddr_to_hostname`: the names of `ip`, with the
/// same warnings. `None` is a resolver that could not be set up (a
/// temporary failure for every client).
pub(crate) fn lookup(dns: Option<&dyn Resolve>, ip: IpAddr) -> Names {
    let Some(dns) = dns else {
        return Names::unknown(Status::Temp);
    };
    let addr = ip.to_string();
    let failed = |e: &Error, permanent: Status| {
        if e.is_temporary() {
            Status::Temp
        } else {
            permanent
        }
    };
    // getnameinfo(3) gives the first name; Postfix takes that one.
    let reverse = match dns.ptr(ip).map(|names| names.into_iter().next()) {
        Ok(Some(name)) => name,
        Ok(None) => return Names::unknown(Status::Perm),
        Err(e) => return Names::unknown(failed(&e, Status::Perm)),
    };
    // Postfix myaddrinfo.c: numeric and malformed names are refused, so
    // that a PTR record cannot pose as an address in access checks.
    if reverse.parse::<IpAddr>().is_ok() {
        warn!("numeric hostname: {reverse}");
        return Names::unknown(Status::Perm);
    }
    if !valid_hostname(&reverse) {
        warn!(
            "valid_hostname: malformed hostname: {}",
            printable(&reverse)
        );
        return Names::unknown(Status::Perm);
    }
    let mut names = Names {
        name: reverse.clone(),
        reverse_name: reverse,
        name_status: Status::Ok,
        reverse_name_status: Status::Ok,
    };
    let mut forged = |status: Status| {
        names.name = UNKNOWN.into();
        names.name_status = status;
    };
    match dns.addresses(&names.reverse_name, ip) {
        Ok(addrs) if addrs.iter().any(|a| a.to_canonical() == ip) => {}
        Ok(_) => {
            warn!(
                "hostname {} does not resolve to address {addr}",
                names.reverse_name
            );
            forged(Status::Forged);
        }
        Err(e) => {
            warn!(
                "hostname {} does not resolve to address {addr}: {}",
                names.reverse_name,
                gai_text(&e)
            );
            forged(failed(&e, Status::Forged));
        }
    }
    names
}

/// The getaddrinfo(3) text Postfix logs for a failed forward lookup.
fn gai_text(e: &Error) -> &'static str {
    match e {
        Error::NotFound | Error::BadName(_) => "Name or service not known",
        Error::NoData => "No address associated with hostname",
        Error::Temporary(_) => "Temporary failure in name resolution",
    }
}

/// Postfix `valid_hostname()`: labels of letters, digits, `-` and `_`,
/// not starting or ending with `-`, at most 63 bytes each and 255 in all,
/// and not all digits in the last label.
fn valid_hostname(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|l| !l.bytes().all(|b| b.is_ascii_digit()))
}

/// A name from the DNS made safe for a log line.
fn printable(name: &str) -> String {
    name.chars()
        .take(255)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn the_hosts_file_answers_before_the_dns() {
        let hosts = Hosts::parse("127.0.0.1 localhost vm\n127.0.1.1 fake.example\n");
        let files = FilesThenDns {
            hosts: &hosts,
            dns: None,
        };
        let names = lookup(Some(&files), "127.0.0.1".parse().unwrap());
        assert_eq!(
            (names.name.as_str(), names.name_status),
            ("localhost", Status::Ok)
        );
        // Not in the file, and no resolver: unknown, for now.
        let names = lookup(Some(&files), "127.0.0.2".parse().unwrap());
        assert_eq!(
            (names.name.as_str(), names.name_status),
            (UNKNOWN, Status::Temp)
        );
    }

    /// A zone in memory: PTR and address records, and names that fail.
    #[derive(Default)]
    struct Zone {
        ptr: HashMap<IpAddr, Result<Vec<String>, Error>>,
        addrs: HashMap<String, Result<Vec<IpAddr>, Error>>,
    }

    impl Resolve for Zone {
        fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, Error> {
            self.ptr.get(&ip).cloned().unwrap_or(Err(Error::NotFound))
        }
        fn addresses(&self, name: &str, family: IpAddr) -> Result<Vec<IpAddr>, Error> {
            let all = self
                .addrs
                .get(name)
                .cloned()
                .unwrap_or(Err(Error::NotFound))?;
            let same: Vec<IpAddr> = all
                .into_iter()
                .filter(|a| a.is_ipv4() == family.is_ipv4())
                .collect();
            if same.is_empty() {
                return Err(Error::NoData);
            }
            Ok(same)
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn zone() -> Zone {
        let mut z = Zone::default();
        let names = |n: &[&str]| Ok(n.iter().map(|s| s.to_string()).collect());
        z.ptr
            .insert(ip("192.0.2.1"), names(&["good.test", "other.test"]));
        z.ptr.insert(ip("192.0.2.2"), names(&["liar.test"]));
        z.ptr.insert(ip("192.0.2.3"), names(&["gone.test"]));
        z.ptr
            .insert(ip("192.0.2.4"), Err(Error::Temporary("SERVFAIL".into())));
        z.ptr.insert(ip("192.0.2.5"), names(&["slow.test"]));
        z.ptr.insert(ip("192.0.2.6"), names(&["192.0.2.6"]));
        z.ptr.insert(ip("192.0.2.7"), names(&["bad name.test"]));
        z.ptr.insert(ip("192.0.2.8"), Err(Error::NoData));
        z.ptr.insert(ip("2001:db8::1"), names(&["good.test"]));
        z.addrs.insert(
            "good.test".into(),
            Ok(vec![ip("192.0.2.9"), ip("192.0.2.1"), ip("2001:db8::1")]),
        );
        z.addrs
            .insert("liar.test".into(), Ok(vec![ip("192.0.2.99")]));
        z.addrs
            .insert("slow.test".into(), Err(Error::Temporary("timeout".into())));
        z
    }

    fn names(name: &str, ns: Status, reverse: &str, rs: Status) -> Names {
        Names {
            name: name.into(),
            reverse_name: reverse.into(),
            name_status: ns,
            reverse_name_status: rs,
        }
    }

    #[test]
    fn forward_confirmed_names_only() {
        let z = zone();
        let l = |a: &str| lookup(Some(&z), ip(a));
        use Status::*;
        assert_eq!(l("192.0.2.1"), names("good.test", Ok, "good.test", Ok));
        assert_eq!(l("2001:db8::1"), names("good.test", Ok, "good.test", Ok));
        assert_eq!(l("192.0.2.2"), names("unknown", Forged, "liar.test", Ok));
        assert_eq!(l("192.0.2.3"), names("unknown", Forged, "gone.test", Ok));
        assert_eq!(l("192.0.2.5"), names("unknown", Temp, "slow.test", Ok));
        assert_eq!(l("192.0.2.4"), names("unknown", Temp, "unknown", Temp));
        assert_eq!(l("192.0.2.8"), names("unknown", Perm, "unknown", Perm));
        assert_eq!(l("192.0.2.200"), names("unknown", Perm, "unknown", Perm));
        // A PTR that looks like an address, or is not a host name.
        assert_eq!(l("192.0.2.6"), names("unknown", Perm, "unknown", Perm));
        assert_eq!(l("192.0.2.7"), names("unknown", Perm, "unknown", Perm));
        // No resolver at all.
        assert_eq!(
            lookup(None, ip("192.0.2.1")),
            names("unknown", Temp, "unknown", Temp)
        );
    }

    #[test]
    fn hostname_syntax() {
        for ok in ["a.example", "mail-1.example.org", "x_y.test", "localhost"] {
            assert!(valid_hostname(ok), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "a..b",
            ".a",
            "-a.test",
            "a-.test",
            "a b.test",
            "1.2.3",
            long.as_str(),
        ] {
            assert!(!valid_hostname(bad), "{bad}");
        }
    }

    #[test]
    fn peers() {
        let p = Peer::inet(ip("::ffff:192.0.2.1"), 25);
        assert_eq!(p.namaddr(), "unknown[192.0.2.1]");
        assert_eq!(p.name_status, Status::Perm);
        let p = p.with_names(names("good.test", Status::Ok, "good.test", Status::Ok));
        assert_eq!(p.namaddr(), "good.test[192.0.2.1]");
        assert_eq!(p.rfc_addr(), "192.0.2.1");
        assert_eq!(
            Peer::inet(ip("2001:db8::1"), 1).rfc_addr(),
            "IPv6:2001:db8::1"
        );
        assert_eq!(Peer::local().namaddr(), "localhost[127.0.0.1]");
    }
}

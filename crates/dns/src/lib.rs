//! DNS lookups for Postern's daemons: MX, host addresses (A/AAAA), PTR
//! and TLSA, with a blocking API (Postfix `global/dns_lookup.c`, which does
//! blocking `res_query` in smtp and smtpd the same way).
//!
//! Underneath is hickory-resolver on a **current-thread** tokio runtime:
//! it starts no threads, and its I/O runs only inside each call, so a
//! daemon stays one process with one thread as Postfix's model wants.
//! Create one [`Dns`] per process (it keeps hickory's cache) and reuse
//! it; create it before any chroot, since by default it reads
//! `/etc/resolv.conf`.
//!
//! Every answer carries the AD bit of the response ([`Answer::authentic`]),
//! which is what DANE trusts when the resolver is a local validating one
//! (Postfix `smtp_dns_support_level = dnssec`). A validating resolver
//! sets AD only for queries that ask for it (AD or DO set, RFC 6840
//! §5.7), and hickory's resolver sends neither unless it validates
//! itself, so [`Dns::tlsa`] does not go through it: it sends its own
//! query (hickory-proto message, AD and EDNS DO set, UDP then TCP when
//! truncated) to the same servers. MX and address answers through the
//! resolver report AD as the server gave it (normally false).
//!
//! Errors are classified the way a mail system needs them ([`Error`]):
//! the name does not exist (NXDOMAIN: bounce), it exists without records
//! of the type (NODATA: for MX, use the host's addresses), or the lookup
//! failed for now (SERVFAIL, REFUSED, timeouts, network errors: defer).
//!
//! Names are looked up as fully qualified (a trailing dot is added): no
//! search list, no `ndots` (Postfix turns `RES_DEFNAMES`/`RES_DNSRCH` off
//! for mail routing for the same reason), and `/etc/hosts` is never
//! consulted.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod hosts;

pub use hosts::Hosts;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::{Edns, Message, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use thiserror::Error;

/// Most records of one answer that are kept (a hostile zone can return
/// many; Postfix caps MX hosts with `smtp_mx_address_limit` later).
pub const MAX_RECORDS: usize = 100;

/// Why a lookup gave no records.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The name does not exist (NXDOMAIN): a permanent condition.
    #[error("Host not found")]
    NotFound,
    /// The name exists but has no records of this type (NODATA).
    #[error("No address associated with hostname")]
    NoData,
    /// The lookup failed for now (SERVFAIL, REFUSED, timeout, network
    /// error): try again later. The text says what happened.
    #[error("Host not found, try again ({0})")]
    Temporary(String),
    /// The name is not a valid domain name.
    #[error("malformed domain name: {0}")]
    BadName(String),
}

impl Error {
    /// Whether a retry later may succeed.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Error::Temporary(_))
    }
}

/// Records of one answer and whether the response had the AD bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<T> {
    /// The records.
    pub records: Vec<T>,
    /// The AD (authentic data) bit of the response.
    pub authentic: bool,
}

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    /// Lower is preferred.
    pub preference: u16,
    /// The exchange host, lower case, without the trailing dot; empty
    /// for the RFC 7505 null MX (`0 .`).
    pub exchange: String,
}

/// One TLSA record (RFC 6698).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    /// Certificate usage (0-3; DANE-TA is 2, DANE-EE 3).
    pub usage: u8,
    /// Selector (0 full certificate, 1 SubjectPublicKeyInfo).
    pub selector: u8,
    /// Matching type (0 exact, 1 SHA-256, 2 SHA-512).
    pub matching: u8,
    /// Certificate association data.
    pub data: Vec<u8>,
}

/// Which address families [`Dns::addresses`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    /// A records.
    pub ipv4: bool,
    /// AAAA records.
    pub ipv6: bool,
}

impl Families {
    /// Both families.
    pub const ALL: Families = Families {
        ipv4: true,
        ipv6: true,
    };
}

/// Parses a resolver address: `ip`, `ip:port`, `[ip]` or `[ip]:port`
/// (port 53 when not given).
pub fn parse_server(text: &str) -> Option<SocketAddr> {
    let t = text.trim();
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    if let Some(inner) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        return inner.parse().ok().map(|ip| SocketAddr::new(ip, 53));
    }
    t.parse::<SocketAddr>().ok()
}

/// A blocking resolver; see the crate documentation.
pub struct Dns {
    rt: tokio::runtime::Runtime,
    resolver: TokioResolver,
    limit: Duration,
    /// The servers, for queries sent directly ([`Dns::tlsa`]).
    servers: Vec<SocketAddr>,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns").field("limit", &self.limit).finish()
    }
}

impl Dns {
    /// A resolver that asks `servers` (UDP, then TCP when truncated), or
    /// the servers of `/etc/resolv.conf` when `servers` is empty. One
    /// lookup takes at most `limit` in all.
    pub fn new(servers: &[SocketAddr], limit: Duration) -> std::io::Result<Dns> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let provider = TokioRuntimeProvider::default();
        let mut direct = servers.to_vec();
        let mut builder = if servers.is_empty() {
            let b = Resolver::builder(provider).map_err(std::io::Error::other)?;
            let (config, _) =
                hickory_resolver::system_conf::read_system_conf().map_err(std::io::Error::other)?;
            for ns in config.name_servers() {
                if let Some(c) = ns.connections.first() {
                    direct.push(SocketAddr::new(ns.ip, c.port));
                }
            }
            b
        } else {
            let name_servers = servers
                .iter()
                .map(|s| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = s.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = s.port();
                    NameServerConfig::new(s.ip(), true, vec![udp, tcp])
                })
                .collect();
            Resolver::builder_with_config(ResolverConfig::from_name_servers(name_servers), provider)
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        // Each server gets a share of the limit; the outer timeout is
        // what the caller relies on.
        opts.timeout = (limit / 2).max(Duration::from_millis(200));
        opts.attempts = 2;
        // Answers in 127.0.0.0/8 matter (DNSBLs, test zones).
        opts.deny_answers.clear();
        let resolver = builder.build().map_err(std::io::Error::other)?;
        Ok(Dns {
            rt,
            resolver,
            limit,
            servers: direct,
        })
    }

    /// Runs one lookup of `rtype` for `name` and maps each answer record
    /// of that type with `f`.
    fn lookup<T>(
        &self,
        name: &str,
        rtype: RecordType,
        f: impl Fn(&RData) -> Option<T>,
    ) -> Result<Answer<T>, Error> {
        let fqdn = fully_qualified(name)?;
        let result = self.rt.block_on(async {
            tokio::time::timeout(self.limit, self.resolver.lookup(fqdn.as_str(), rtype)).await
        });
        let lookup = match result {
            Err(_) => return Err(Error::Temporary("timeout".into())),
            Ok(Err(e)) => return Err(classify(&e)),
            Ok(Ok(l)) => l,
        };
        let records: Vec<T> = lookup
            .answers()
            .iter()
            .filter(|r| r.record_type() == rtype)
            .filter_map(|r| f(&r.data))
            .take(MAX_RECORDS)
            .collect();
        if records.is_empty() {
            return Err(Error::NoData);
        }
        Ok(Answer {
            records,
            authentic: lookup.message().metadata.authentic_data,
        })
    }

    /// The MX records of `domain`, in the order received (the caller
    /// sorts by preference). A null MX comes back as an exchange of `""`.
    pub fn mx(&self, domain: &str) -> Result<Answer<Mx>, Error> {
        self.lookup(domain, RecordType::MX, |d| match d {
            RData::MX(mx) => Some(Mx {
                preference: mx.preference,
                exchange: mx
                    .exchange
                    .to_ascii()
                    .trim_end_matches('.')
                    .to_ascii_lowercase(),
            }),
            _ => None,
        })
    }

    /// The IPv4 addresses of `host` (A records).
    pub fn a(&self, host: &str) -> Result<Answer<IpAddr>, Error> {
        self.lookup(host, RecordType::A, |d| match d {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
    }

    /// The IPv6 addresses of `host` (AAAA records).
    pub fn aaaa(&self, host: &str) -> Result<Answer<IpAddr>, Error> {
        self.lookup(host, RecordType::AAAA, |d| match d {
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
    }

    /// The addresses of `host` in the families asked for, IPv6 first
    /// when both are (Postfix `smtp_address_preference = any` keeps the
    /// resolver's order; here the order is fixed). One family failing
    /// temporarily while the other has addresses is ignored, like
    /// Postfix; the answer is authentic only when every part was.
    pub fn addresses(&self, host: &str, families: Families) -> Result<Answer<IpAddr>, Error> {
        let mut out = Answer {
            records: Vec::new(),
            authentic: true,
        };
        let mut first_err: Option<Error> = None;
        let mut parts = Vec::new();
        if families.ipv6 {
            parts.push(self.aaaa(host));
        }
        if families.ipv4 {
            parts.push(self.a(host));
        }
        for part in parts {
            match part {
                Ok(a) => {
                    out.authentic &= a.authentic;
                    out.records.extend(a.records);
                }
                Err(e) => {
                    // Keep the most telling error: temporary beats
                    // NoData beats NotFound (one family may be NXDOMAIN
                    // through a broken server while the other is fine).
                    let keep = match (&first_err, &e) {
                        (None, _) => true,
                        (Some(Error::Temporary(_)), _) => false,
                        (_, Error::Temporary(_)) => true,
                        (Some(Error::NotFound), Error::NoData) => true,
                        _ => false,
                    };
                    if keep {
                        first_err = Some(e);
                    }
                }
            }
        }
        if out.records.is_empty() {
            return Err(first_err.unwrap_or(Error::NoData));
        }
        out.records.truncate(MAX_RECORDS);
        Ok(out)
    }

    /// The host names of `ip` (PTR records of its `in-addr.arpa` or
    /// `ip6.arpa` name, RFC 1035 §3.5, RFC 3596 §2.5), in the order
    /// received, lower case, without the trailing dot. The caller checks their syntax and whether they resolve
    /// back to `ip` (smtpd's client name, Postfix `smtpd_peer.c`).
    ///
    /// The query goes to the servers directly, like [`Dns::tlsa`]'s:
    /// hickory's resolver answers every PTR query under
    /// `127.in-addr.arpa` and for `::1` itself with `localhost` (its
    /// RFC 6761 handling), which would hide what the DNS says about
    /// loopback clients.
    pub fn ptr(&self, ip: IpAddr) -> Result<Answer<String>, Error> {
        let fqdn = format!("{}.", reverse_name(ip));
        let response = self.found_direct(&fqdn, RecordType::PTR)?;
        // A classless delegation (RFC 2317) answers with a CNAME and the
        // PTR records at its target: every PTR in the answer counts.
        let records: Vec<String> = response
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(p) => Some(p.0.to_ascii().trim_end_matches('.').to_ascii_lowercase()),
                _ => None,
            })
            .take(MAX_RECORDS)
            .collect();
        if records.is_empty() {
            return Err(Error::NoData);
        }
        Ok(Answer {
            records,
            authentic: response.metadata.authentic_data,
        })
    }

    /// The TXT records of `name`, each record's strings joined (RFC 7208
    /// §3.3, RFC 8461 §3.1 read them that way); records that are not
    /// UTF-8 are skipped.
    pub fn txt(&self, name: &str) -> Result<Answer<String>, Error> {
        self.lookup(name, RecordType::TXT, |d| match d {
            RData::TXT(t) => {
                let bytes: Vec<u8> = t.txt_data.iter().flat_map(|s| s.iter().copied()).collect();
                String::from_utf8(bytes).ok()
            }
            _ => None,
        })
    }

    /// Whether the `rtype` (`MX`, `A`, `AAAA`) records of `name` are
    /// DNSSEC-signed, by the AD bit of a query sent with AD and DO set
    /// (the resolver path does not ask for AD, so a validating resolver
    /// would never set it there). A name without records of the type
    /// counts as secure when the denial carries the AD bit. Postfix asks
    /// the same of the MX RRset before it looks for TLSA records
    /// (RFC 7672 §2.2.1).
    pub fn is_secure(&self, name: &str, rtype: &str) -> Result<bool, Error> {
        let rtype = match rtype {
            "MX" => RecordType::MX,
            "A" => RecordType::A,
            "AAAA" => RecordType::AAAA,
            other => return Err(Error::BadName(format!("record type {other}"))),
        };
        let fqdn = fully_qualified(name)?;
        let qname = Name::from_ascii(&fqdn).map_err(|_| Error::BadName(fqdn.clone()))?;
        let response = self.query_direct(&qname, rtype)?;
        match response.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => Ok(response.metadata.authentic_data),
            other => Err(Error::Temporary(format!("{other}"))),
        }
    }

    /// The TLSA records of `name` (`_25._tcp.mx.example.com`), asked
    /// with AD and DO set so that a validating resolver says whether the
    /// answer is authentic.
    pub fn tlsa(&self, name: &str) -> Result<Answer<Tlsa>, Error> {
        let response = self.found_direct(&fully_qualified(name)?, RecordType::TLSA)?;
        let records: Vec<Tlsa> = response
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TLSA(t) => Some(Tlsa {
                    usage: u8::from(t.cert_usage),
                    selector: u8::from(t.selector),
                    matching: u8::from(t.matching),
                    data: t.cert_data.clone(),
                }),
                _ => None,
            })
            .take(MAX_RECORDS)
            .collect();
        if records.is_empty() {
            return Err(Error::NoData);
        }
        Ok(Answer {
            records,
            authentic: response.metadata.authentic_data,
        })
    }

    /// [`Dns::query_direct`] for the fully qualified `fqdn`: NXDOMAIN is
    /// [`Error::NotFound`], any other failure code temporary.
    fn found_direct(&self, fqdn: &str, rtype: RecordType) -> Result<Message, Error> {
        let qname = Name::from_ascii(fqdn).map_err(|_| Error::BadName(fqdn.to_string()))?;
        let response = self.query_direct(&qname, rtype)?;
        match response.metadata.response_code {
            ResponseCode::NoError => Ok(response),
            ResponseCode::NXDomain => Err(Error::NotFound),
            other => Err(Error::Temporary(format!("{other}"))),
        }
    }

    /// One query with AD and DO set, to each server in turn until one
    /// answers, within the lookup limit: UDP, then TCP when truncated.
    fn query_direct(&self, name: &Name, rtype: RecordType) -> Result<Message, Error> {
        let deadline = Instant::now() + self.limit;
        let mut q = Message::query();
        q.metadata.recursion_desired = true;
        q.metadata.authentic_data = true;
        q.add_query(Query::query(name.clone(), rtype));
        let mut edns = Edns::new();
        edns.set_max_payload(1232).set_dnssec_ok(true);
        q.set_edns(edns);
        let bytes = q.to_vec().map_err(|e| Error::Temporary(e.to_string()))?;
        let mut last = Error::Temporary("no DNS server".into());
        for server in &self.servers {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Temporary("timeout".into()));
            }
            let per_server = (left / 2).max(Duration::from_millis(200)).min(left);
            match udp_exchange(*server, &bytes, q.metadata.id, per_server) {
                Ok(r) if r.metadata.truncation => {
                    match tcp_exchange(*server, &bytes, q.metadata.id, per_server) {
                        Ok(r) => return Ok(r),
                        Err(e) => last = e,
                    }
                }
                Ok(r)
                    if r.metadata.response_code == ResponseCode::ServFail
                        || r.metadata.response_code == ResponseCode::Refused =>
                {
                    last = Error::Temporary(format!("{}", r.metadata.response_code));
                }
                Ok(r) => return Ok(r),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// Sends one UDP query and waits for the matching response.
fn udp_exchange(server: SocketAddr, query: &[u8], id: u16, t: Duration) -> Result<Message, Error> {
    let tmp = |e: std::io::Error| Error::Temporary(e.to_string());
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let sock = UdpSocket::bind(bind).map_err(tmp)?;
    sock.connect(server).map_err(tmp)?;
    sock.send(query).map_err(tmp)?;
    let deadline = Instant::now() + t;
    let mut buf = vec![0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Temporary("timeout".into()));
        }
        sock.set_read_timeout(Some(left)).map_err(tmp)?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Error::Temporary("timeout".into()));
            }
            Err(e) => return Err(tmp(e)),
        };
        // Anything else (a late answer to an earlier query, junk) is
        // ignored.
        if let Ok(m) = Message::from_vec(&buf[..n])
            && m.metadata.id == id
        {
            return Ok(m);
        }
    }
}

/// Sends one query over TCP (two-octet length prefix, RFC 1035 §4.2.2).
fn tcp_exchange(server: SocketAddr, query: &[u8], id: u16, t: Duration) -> Result<Message, Error> {
    let tmp = |e: std::io::Error| Error::Temporary(e.to_string());
    let mut s = TcpStream::connect_timeout(&server, t).map_err(tmp)?;
    s.set_read_timeout(Some(t)).map_err(tmp)?;
    s.set_write_timeout(Some(t)).map_err(tmp)?;
    let len = u16::try_from(query.len()).map_err(|_| Error::Temporary("query too long".into()))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(query);
    s.write_all(&out).map_err(tmp)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).map_err(tmp)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).map_err(tmp)?;
    match Message::from_vec(&buf) {
        Ok(m) if m.metadata.id == id => Ok(m),
        Ok(_) => Err(Error::Temporary("mismatched DNS response".into())),
        Err(e) => Err(Error::Temporary(e.to_string())),
    }
}

/// The name under which the PTR records of `ip` are found:
/// `4.3.2.1.in-addr.arpa` for 1.2.3.4, and for IPv6 the 32 nibbles in
/// reverse order under `ip6.arpa`. An IPv4-mapped IPv6 address is looked
/// up as the IPv4 address.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

/// `name` with a trailing dot, checked for length and empty labels.
fn fully_qualified(name: &str) -> Result<String, Error> {
    let bare = name.trim_end_matches('.');
    if bare.is_empty()
        || bare.len() > 253
        || bare
            .split('.')
            .any(|l| l.is_empty() || l.len() > 63 || l.bytes().any(|b| b <= b' ' || b >= 0x7f))
    {
        return Err(Error::BadName(name.chars().take(300).collect()));
    }
    Ok(format!("{bare}."))
}

/// Maps hickory's error to ours.
fn classify(e: &NetError) -> Error {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(nr)) => match nr.response_code {
            ResponseCode::NXDomain => Error::NotFound,
            ResponseCode::NoError => Error::NoData,
            other => Error::Temporary(format!("{other}")),
        },
        NetError::Dns(DnsError::ResponseCode(code)) => Error::Temporary(format!("{code}")),
        NetError::Timeout => Error::Temporary("timeout".into()),
        other => Error::Temporary(other.to_string()),
    }
}

#[cfg(test)]
mod tests;

//! From a destination to the servers to try, in order (Postfix
//! `smtp_addr.c`: `smtp_domain_addr`, `smtp_host_addr`, `smtp_find_self`).
//!
//! - An MX destination: the MX records sorted by preference, equal
//!   preferences in random order; each exchange's addresses. No MX
//!   records: the domain's own addresses (implicit MX, RFC 5321 §5.1). A
//!   null MX (RFC 7505, `0 .`): bounce at once. NXDOMAIN: bounce. Any
//!   temporary failure: defer.
//! - Mail loops (MX destinations and domains without MX, not `[host]`):
//!   a server address that is one of this host's own
//!   (`inet_interfaces`, or every interface address for `all`), or an
//!   exchange named `$myhostname`, is dropped with every MX of the same or
//!   a worse preference; if nothing is left, "mail for X loops back to
//!   myself" (5.4.6).
//! - `smtp_host_lookup`: `dns` (A/AAAA through [`Dns`]), `native` (the
//!   system resolver, `/etc/hosts` included, no MX), or both in order.
//! - At most `smtp_mx_address_limit` addresses.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use postern_dns::{Dns, Error as DnsError, Families};

use crate::client::{Addr, Target};
use crate::nexthop::Dest;

/// Why there is no server to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// RFC 3463 status.
    pub(crate) dsn: String,
    /// The reason, in Postfix's words.
    pub(crate) reason: String,
}

impl Failure {
    fn new(dsn: &str, reason: String) -> Failure {
        Failure {
            dsn: dsn.into(),
            reason,
        }
    }

    /// Whether the failure is permanent (bounce).
    pub(crate) fn is_permanent(&self) -> bool {
        self.dsn.starts_with('5')
    }
}

/// How host addresses are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lookup {
    /// Through the DNS (MX, A/AAAA).
    pub(crate) dns: bool,
    /// Through the system resolver.
    pub(crate) native: bool,
}

/// What routing needs to know.
#[derive(Debug)]
pub(crate) struct Router<'a> {
    /// The resolver (absent when `smtp_host_lookup` has no `dns`).
    pub(crate) dns: Option<&'a Dns>,
    /// `smtp_host_lookup`.
    pub(crate) lookup: Lookup,
    /// `inet_protocols`.
    pub(crate) families: Families,
    /// `myhostname`, lower case.
    pub(crate) myhostname: String,
    /// This host's addresses.
    pub(crate) own: Vec<IpAddr>,
    /// `smtp_mx_address_limit` (0: none).
    pub(crate) address_limit: usize,
}

/// A small random number without a dependency: std's hasher keys are
/// random per process and per `RandomState`.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish()
}

/// Sorts MX records by preference, shuffling equal preferences
/// (Fisher-Yates within each run).
pub(crate) fn order_mx(
    mut mx: Vec<(u16, String)>,
    mut rand: impl FnMut() -> u64,
) -> Vec<(u16, String)> {
    mx.sort_by_key(|m| m.0);
    let mut start = 0;
    while start < mx.len() {
        let mut end = start + 1;
        while end < mx.len() && mx[end].0 == mx[start].0 {
            end += 1;
        }
        for i in (start + 1..end).rev() {
            let j = start + (rand() % (i - start + 1) as u64) as usize;
            mx.swap(i, j);
        }
        start = end;
    }
    mx
}

fn dns_text(name: &str, rtype: &str, e: &DnsError) -> String {
    format!("Host or domain name not found. Name service error for name={name} type={rtype}: {e}")
}

fn dns_failure(name: &str, rtype: &str, e: &DnsError) -> Failure {
    let dsn = if e.is_temporary() { "4.4.3" } else { "5.4.4" };
    Failure::new(dsn, dns_text(name, rtype, e))
}

impl Router<'_> {
    /// The servers for `dest`, in order.
    pub(crate) fn targets(&self, dest: &Dest) -> Result<Vec<Target>, Failure> {
        let mut out = match dest {
            Dest::Unix(path) => {
                return Ok(vec![Target {
                    host: self.myhostname.clone(),
                    addr: Addr::Unix(PathBuf::from(path)),
                }]);
            }
            // Postfix smtp_host_addr: a [host] the administrator named
            // (a content filter on 127.0.0.1:10025, a relayhost) is used
            // even when it is this machine; the greeting check still
            // catches a server that is Postern itself.
            Dest::Host { host, port } => self.host_targets(host, *port, false)?,
            Dest::Mx { domain, port } => {
                if self.lookup.dns && domain.parse::<IpAddr>().is_err() {
                    self.mx_targets(domain, *port)?
                } else {
                    self.host_targets(domain, *port, true)?
                }
            }
        };
        if self.address_limit > 0 {
            out.truncate(self.address_limit);
        }
        Ok(out)
    }

    fn is_self(&self, host: &str, ip: IpAddr) -> bool {
        host.eq_ignore_ascii_case(&self.myhostname) || self.own.contains(&ip)
    }

    /// A host's addresses, no MX; with `drop_own` (a domain without MX
    /// records), this machine's own addresses are left out, and all of
    /// them our own is a loop (Postfix `smtp_find_self`).
    fn host_targets(&self, host: &str, port: u16, drop_own: bool) -> Result<Vec<Target>, Failure> {
        let ips = self.addresses(host)?;
        let targets: Vec<Target> = ips
            .iter()
            .filter(|ip| !drop_own || !self.own.contains(ip))
            .map(|ip| Target {
                host: host.to_string(),
                addr: Addr::Inet(SocketAddr::new(*ip, port)),
            })
            .collect();
        if targets.is_empty() {
            return Err(Failure::new(
                "5.4.6",
                format!("mail for {host} loops back to myself"),
            ));
        }
        Ok(targets)
    }

    /// The addresses of one host, by `smtp_host_lookup`.
    fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, Failure> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let mut failure = None;
        if self.lookup.dns && self.dns.is_none() {
            failure = Some(Failure::new(
                "4.3.5",
                format!("cannot look up {host}: DNS resolver unavailable"),
            ));
        }
        if self.lookup.dns
            && let Some(dns) = self.dns
        {
            match dns.addresses(host, self.families) {
                Ok(a) => return Ok(a.records),
                Err(e) => {
                    let rtype = if self.families.ipv4 { "A" } else { "AAAA" };
                    failure = Some(dns_failure(host, rtype, &e));
                }
            }
        }
        if self.lookup.native {
            match (host, 0u16).to_socket_addrs() {
                Ok(addrs) => {
                    let ips: Vec<IpAddr> = addrs
                        .map(|a| a.ip())
                        .filter(|ip| {
                            (ip.is_ipv4() && self.families.ipv4)
                                || (ip.is_ipv6() && self.families.ipv6)
                        })
                        .collect();
                    if !ips.is_empty() {
                        return Ok(ips);
                    }
                    failure = Some(Failure::new(
                        "5.4.4",
                        format!(
                            "Host or domain name not found. Name service error for name={host} type=A: No address associated with hostname"
                        ),
                    ));
                }
                Err(e) => {
                    failure = Some(Failure::new(
                        "4.4.3",
                        format!(
                            "Host or domain name not found. Name service error for name={host} type=A: {e}"
                        ),
                    ));
                }
            }
        }
        Err(failure.unwrap_or_else(|| {
            Failure::new("4.3.5", "smtp_host_lookup names no lookup method".into())
        }))
    }

    fn mx_targets(&self, domain: &str, port: u16) -> Result<Vec<Target>, Failure> {
        let Some(dns) = self.dns else {
            if self.lookup.native {
                return self.host_targets(domain, port, true);
            }
            return Err(Failure::new(
                "4.3.5",
                format!("cannot look up {domain}: DNS resolver unavailable"),
            ));
        };
        let records = match dns.mx(domain) {
            Ok(a) => a.records,
            // No MX records: the domain itself is the mail server.
            Err(DnsError::NoData) => {
                return self.implicit_mx(domain, port);
            }
            Err(e) => return Err(dns_failure(domain, "MX", &e)),
        };
        if records.iter().any(|m| m.exchange.is_empty()) {
            return Err(Failure::new(
                "5.1.0",
                format!("Domain {domain} does not accept mail (nullMX)"),
            ));
        }
        let mx = order_mx(
            records
                .into_iter()
                .map(|m| (m.preference, m.exchange))
                .collect(),
            random,
        );
        let mut targets: Vec<(u16, Target)> = Vec::new();
        let mut last_failure: Option<Failure> = None;
        // The preference of the first MX that is this host: it and every
        // MX not better than it are dropped.
        let mut self_pref: Option<u16> = None;
        for (pref, host) in &mx {
            if self_pref.is_some_and(|p| *pref >= p) {
                break;
            }
            if host.eq_ignore_ascii_case(&self.myhostname) {
                self_pref = Some(*pref);
                break;
            }
            match self.addresses(host) {
                Ok(ips) => {
                    if ips.iter().any(|ip| self.is_self(host, *ip)) {
                        self_pref = Some(*pref);
                        break;
                    }
                    targets.extend(ips.into_iter().map(|ip| {
                        (
                            *pref,
                            Target {
                                host: host.clone(),
                                addr: Addr::Inet(SocketAddr::new(ip, port)),
                            },
                        )
                    }));
                }
                Err(f) => {
                    // A temporary failure outweighs a permanent one.
                    if last_failure
                        .as_ref()
                        .is_none_or(|l| l.is_permanent() || !f.is_permanent())
                    {
                        last_failure = Some(f);
                    }
                }
            }
        }
        if let Some(p) = self_pref {
            targets.retain(|(pref, _)| *pref < p);
            if targets.is_empty() {
                return Err(Failure::new(
                    "5.4.6",
                    format!("mail for {domain} loops back to myself"),
                ));
            }
        }
        if targets.is_empty() {
            return Err(last_failure.unwrap_or_else(|| {
                Failure::new("4.4.3", format!("no usable MX host for {domain}"))
            }));
        }
        Ok(targets.into_iter().map(|(_, t)| t).collect())
    }

    fn implicit_mx(&self, domain: &str, port: u16) -> Result<Vec<Target>, Failure> {
        let ips = self.addresses(domain)?;
        if ips.iter().any(|ip| self.is_self(domain, *ip)) {
            return Err(Failure::new(
                "5.4.6",
                format!("mail for {domain} loops back to myself"),
            ));
        }
        Ok(ips
            .into_iter()
            .map(|ip| Target {
                host: domain.to_string(),
                addr: Addr::Inet(SocketAddr::new(ip, port)),
            })
            .collect())
    }
}

/// This host's addresses for loop detection: those `inet_interfaces`
/// names, with `all` meaning every address of every interface (the
/// whole loopback network is not "ours": other programs listen there).
pub(crate) fn own_addresses(interfaces: &[IpAddr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = interfaces
        .iter()
        .copied()
        .filter(|ip| !ip.is_unspecified())
        .collect();
    if interfaces.iter().any(IpAddr::is_unspecified)
        && let Ok(addrs) = nix::ifaddrs::getifaddrs()
    {
        for ifa in addrs {
            let Some(a) = ifa.address else { continue };
            let ip = if let Some(v4) = a.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else if let Some(v6) = a.as_sockaddr_in6() {
                IpAddr::V6(v6.ip())
            } else {
                continue;
            };
            if interfaces
                .iter()
                .any(|i| i.is_unspecified() && i.is_ipv4() == ip.is_ipv4())
                && !out.contains(&ip)
            {
                out.push(ip);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mx_order_is_by_preference_and_shuffled_within() {
        let mx = vec![
            (20, "c".to_string()),
            (10, "a".to_string()),
            (10, "b".to_string()),
            (30, "d".to_string()),
        ];
        let mut seen_first = std::collections::BTreeSet::new();
        let mut n = 0u64;
        for _ in 0..50 {
            let got = order_mx(mx.clone(), || {
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                n >> 33
            });
            let prefs: Vec<u16> = got.iter().map(|m| m.0).collect();
            assert_eq!(prefs, [10, 10, 20, 30]);
            assert_eq!(got[2].1, "c");
            seen_first.insert(got[0].1.clone());
        }
        assert_eq!(seen_first.len(), 2, "equal preferences are shuffled");
    }

    #[test]
    fn own_addresses_of_specific_interfaces() {
        let ips: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
        assert_eq!(own_addresses(&ips), ips);
        let all = own_addresses(&["0.0.0.0".parse().unwrap()]);
        assert!(all.contains(&"127.0.0.1".parse().unwrap()), "{all:?}");
        assert!(!all.contains(&"127.0.0.2".parse().unwrap()));
    }
}

//! Where an address goes (Postfix `trivial-rewrite/resolve.c`,
//! `resolve_local.c`).
//!
//! First the address is taken apart, repeating until nothing changes:
//! - a trailing dot on the domain is dropped; the null address becomes
//!   `postmaster` (then canonical: `postmaster@$myorigin`);
//! - `@domain` is stripped when the domain is local (empty, in
//!   `mydestination`, or an `[address]` literal of this machine per
//!   `inet_interfaces`);
//! - what remains is canonicalized again when it still has `@`, `!`
//!   (`swap_bangpath`) or `%` (`allow_percent_hack`), so that
//!   `user%remote@local` becomes `user@remote`.
//!
//! Then the class, transport and next hop:
//! - local domain → `CLASS_LOCAL`, `local_transport`, next hop
//!   `$myhostname`;
//! - `virtual_alias_domains` → `CLASS_ALIAS`, `error`, "5.1.1 User unknown
//!   in virtual alias table" (cleanup should have rewritten every valid
//!   address; `transport_maps` does not apply);
//! - `virtual_mailbox_domains` → `CLASS_VIRTUAL`, `virtual_transport`,
//!   next hop the domain;
//! - `relay_domains` → `CLASS_RELAY`, `relay_transport`; anything else →
//!   `CLASS_DEFAULT`, `default_transport`; next hop `relayhost` if set,
//!   else the domain;
//! - a `transport:nexthop` setting overrides the next hop when it has
//!   one; then `transport_maps` overrides either part (`transport.rs`).
//!
//! Flags: `ERROR` for bad syntax (empty local part with a domain, bad
//! characters in the domain, an `[address]` literal that is not an IP
//! address), with transport `error` and "5.1.3 bad address syntax";
//! `ROUTED` when a remote address still has `@`, `!` or `%` in its local
//! part; `FAIL` when a table lookup failed (or a transport parameter is
//! empty): the caller defers, and transport and next hop are empty.
//!
//! DEVIATIONS: no sender-dependent transports or relay hosts (the sender
//! is ignored); no `proxy_interfaces`; quoted local parts are kept as they
//! are rather than opened up for routing operators.

use std::net::{IpAddr, UdpSocket};

use postern_config::Config;
use postern_ipc::rewrite::{Resolved, Rule, flags};
use postern_maps::{DomainList, Error, Maps, Syntax};
use postern_util::warn;

use crate::{addr, rewrite, transport};

/// The tables resolving consults, opened once per process.
#[derive(Debug)]
pub(crate) struct Tables {
    mydestination: DomainList,
    virtual_alias_domains: DomainList,
    virtual_mailbox_domains: DomainList,
    relay_domains: DomainList,
    transport_maps: Maps,
    transport_parent_style: bool,
}

impl Tables {
    /// Opens every list and table named by `config`.
    pub(crate) fn open(config: &Config) -> Result<Tables, Error> {
        let parent = config.list("parent_domain_matches_subdomains");
        let is_parent = |name: &str| parent.iter().any(|p| p.eq_ignore_ascii_case(name));
        let list = |name: &str| DomainList::open(name, &config.list(name), is_parent(name));
        Ok(Tables {
            mydestination: list("mydestination")?,
            virtual_alias_domains: list("virtual_alias_domains")?,
            virtual_mailbox_domains: list("virtual_mailbox_domains")?,
            relay_domains: list("relay_domains")?,
            transport_maps: Maps::open(&config.list("transport_maps"), Syntax::Postmap)?,
            transport_parent_style: is_parent("transport_maps"),
        })
    }
}

/// Bounds the take-apart loop (each round normally shortens the address).
const MAX_ROUNDS: usize = 100;

const BAD_SYNTAX: &str = "5.1.3 bad address syntax";
const ALIAS_UNKNOWN: &str = "5.1.1 User unknown in virtual alias table";

/// Resolves `address`. Lookup failures are logged and give `FAIL`.
pub(crate) fn resolve(config: &Config, tables: &Tables, address: &str) -> Resolved {
    match resolve_addr(config, tables, address) {
        Ok(r) => r,
        Err(e) => {
            warn!("{e}: cannot resolve <{address}>");
            Resolved {
                flags: flags::FAIL,
                transport: String::new(),
                nexthop: String::new(),
                recipient: address.to_owned(),
            }
        }
    }
}

fn resolve_addr(config: &Config, tables: &Tables, address: &str) -> Result<Resolved, Error> {
    let mut fl = 0;
    let mut addr = address.to_owned();
    // The local domain that was stripped last, to put back afterwards.
    let mut saved_domain: Option<String> = None;
    // The remote domain, when the loop ends at one.
    let mut remote: Option<String> = None;
    let swap = config.bool("swap_bangpath");
    let percent = config.bool("allow_percent_hack");
    for _ in 0..MAX_ROUNDS {
        addr::strip_trailing_dot(&mut addr);
        if addr.is_empty() {
            addr = rewrite::rewrite(config, Rule::Local, "postmaster");
        }
        if let Some(at) = addr::rfind(&addr, '@') {
            let domain = addr[at + 1..].to_lowercase();
            if (at == 0 && !domain.is_empty()) || !valid_domain(&domain) {
                fl |= flags::ERROR;
            }
            if at > 0 && is_local(config, tables, &domain)? {
                addr.truncate(at);
                saved_domain = Some(domain);
            } else {
                addr.truncate(at);
                remote = Some(domain);
                break;
            }
        }
        if addr::rfind(&addr, '@').is_some()
            || (swap && addr::find(&addr, '!').is_some())
            || (percent && addr::find(&addr, '%').is_some())
        {
            addr = rewrite::rewrite(config, Rule::Local, &addr);
            saved_domain = None;
            continue;
        }
        break;
    }

    let myhostname = config.str("myhostname");
    let (recipient, channel, mut nexthop, blame);
    match &remote {
        Some(domain) => {
            if ['@', '!', '%']
                .iter()
                .any(|&op| addr::find(&addr, op).is_some())
            {
                fl |= flags::ROUTED;
            }
            recipient = format!("{addr}@{domain}");
            if fl & flags::ERROR != 0 {
                return Ok(Resolved {
                    flags: fl | flags::CLASS_DEFAULT,
                    transport: "error".into(),
                    nexthop: BAD_SYNTAX.into(),
                    recipient,
                });
            }
            if tables.virtual_alias_domains.matches(domain)? {
                return Ok(Resolved {
                    flags: fl | flags::CLASS_ALIAS,
                    transport: "error".into(),
                    nexthop: ALIAS_UNKNOWN.into(),
                    recipient,
                });
            }
            if tables.virtual_mailbox_domains.matches(domain)? {
                fl |= flags::CLASS_VIRTUAL;
                blame = "virtual_transport";
                nexthop = domain.clone();
            } else {
                if tables.relay_domains.matches(domain)? {
                    fl |= flags::CLASS_RELAY;
                    blame = "relay_transport";
                } else {
                    fl |= flags::CLASS_DEFAULT;
                    blame = "default_transport";
                }
                let relayhost = config.str("relayhost");
                nexthop = if relayhost.is_empty() {
                    domain.clone()
                } else {
                    relayhost
                };
            }
        }
        None => {
            let domain = saved_domain.filter(|d| !d.is_empty());
            recipient = format!("{addr}@{}", domain.as_deref().unwrap_or(&myhostname));
            if fl & flags::ERROR != 0 {
                return Ok(Resolved {
                    flags: fl | flags::CLASS_LOCAL,
                    transport: "error".into(),
                    nexthop: BAD_SYNTAX.into(),
                    recipient,
                });
            }
            fl |= flags::CLASS_LOCAL;
            blame = "local_transport";
            nexthop = myhostname;
        }
    }
    channel = config.str(blame);
    let (mut transport, hop) = match channel.split_once(':') {
        Some((t, h)) => (t.trim().to_owned(), h.trim()),
        None => (channel.trim().to_owned(), ""),
    };
    if !hop.is_empty() {
        nexthop = hop.to_owned();
    }
    if transport.is_empty() {
        warn!("parameter {blame}: null transport is not allowed");
        return Ok(Resolved {
            flags: fl | flags::FAIL,
            transport: String::new(),
            nexthop: String::new(),
            recipient,
        });
    }
    let rcpt_domain = recipient
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or_default();
    if let Some(entry) = transport::lookup(
        &tables.transport_maps,
        &recipient,
        rcpt_domain,
        &config.str("recipient_delimiter"),
        tables.transport_parent_style,
    )? {
        if !entry.transport.is_empty() {
            transport = entry.transport;
        }
        if !entry.nexthop.is_empty() {
            nexthop = entry.nexthop;
        }
    }
    Ok(Resolved {
        flags: fl,
        transport,
        nexthop,
        recipient,
    })
}

/// Whether `domain` (lowercase, no trailing dot) is this machine's
/// (Postfix `resolve_local()`).
fn is_local(config: &Config, tables: &Tables, domain: &str) -> Result<bool, Error> {
    if domain.is_empty() {
        return Ok(true);
    }
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        return Ok(literal_ip(literal).is_some_and(|ip| own_address(config, ip)));
    }
    tables.mydestination.matches(domain)
}

/// The IP address of an address literal's contents (`1.2.3.4`,
/// `IPv6:2001:db8::1`).
fn literal_ip(literal: &str) -> Option<IpAddr> {
    if let Some(v6) = literal
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("ipv6:"))
        .map(|_| &literal[5..])
    {
        return v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    literal.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Whether `ip` is one of the addresses `inet_interfaces` names; with
/// `all`, whether it is an address of this machine at all (it can be
/// bound to).
fn own_address(config: &Config, ip: IpAddr) -> bool {
    let interfaces = config.inet_interfaces();
    if interfaces.contains(&ip) {
        return true;
    }
    let wildcard = interfaces
        .iter()
        .any(|a| a.is_unspecified() && a.is_ipv4() == ip.is_ipv4());
    wildcard && !ip.is_unspecified() && UdpSocket::bind((ip, 0)).is_ok()
}

/// Whether a domain is acceptable: empty (handled as local), an address
/// literal with an IP address inside, digits and dots only, or a valid
/// host name (Postfix `valid_hostname()`: labels of letters, digits,
/// `-` and `_`, not starting or ending with `-`, at most 63 characters;
/// non-ASCII letters are allowed for SMTPUTF8 domains).
fn valid_domain(domain: &str) -> bool {
    if domain.is_empty() {
        return true;
    }
    if domain.starts_with('[') || domain.ends_with(']') {
        return domain
            .strip_prefix('[')
            .and_then(|d| d.strip_suffix(']'))
            .and_then(literal_ip)
            .is_some();
    }
    if domain.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return true;
    }
    domain.len() <= 255
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &[&str]) -> Config {
        let mut o = vec![
            "myhostname=mail.example.com".to_string(),
            "mydomain=example.com".to_string(),
            "inet_interfaces=loopback-only".to_string(),
        ];
        o.extend(extra.iter().map(|s| s.to_string()));
        Config::defaults().with_overrides(&o).unwrap()
    }

    fn run(extra: &[&str], address: &str) -> Resolved {
        let c = config(extra);
        let t = Tables::open(&c).unwrap();
        resolve(&c, &t, address)
    }

    fn r(fl: u64, transport: &str, nexthop: &str, recipient: &str) -> Resolved {
        Resolved {
            flags: fl,
            transport: transport.into(),
            nexthop: nexthop.into(),
            recipient: recipient.into(),
        }
    }

    #[test]
    fn local_domains() {
        let want = r(
            flags::CLASS_LOCAL,
            "local",
            "mail.example.com",
            "joe@mail.example.com",
        );
        assert_eq!(run(&[], "joe@mail.example.com"), want);
        assert_eq!(run(&[], "joe@MAIL.example.com."), want);
        // A bare user is local, on $myhostname.
        assert_eq!(run(&[], "joe"), want);
        assert_eq!(
            run(&[], "joe@localhost"),
            r(
                flags::CLASS_LOCAL,
                "local",
                "mail.example.com",
                "joe@localhost"
            )
        );
        assert_eq!(
            run(&[], "joe@localhost.example.com").class(),
            flags::CLASS_LOCAL
        );
        // The null address is the postmaster.
        assert_eq!(
            run(&[], ""),
            r(
                flags::CLASS_LOCAL,
                "local",
                "mail.example.com",
                "postmaster@mail.example.com"
            )
        );
        // Our own address literal.
        assert_eq!(
            run(&[], "joe@[127.0.0.1]"),
            r(
                flags::CLASS_LOCAL,
                "local",
                "mail.example.com",
                "joe@[127.0.0.1]"
            )
        );
        assert_eq!(run(&[], "joe@[IPv6:::1]").class(), flags::CLASS_LOCAL);
        assert_eq!(run(&[], "joe@[192.0.2.1]").class(), flags::CLASS_DEFAULT);
    }

    #[test]
    fn local_transport_setting() {
        assert_eq!(
            run(&["local_transport=maildrop"], "joe"),
            r(
                flags::CLASS_LOCAL,
                "maildrop",
                "mail.example.com",
                "joe@mail.example.com"
            )
        );
        assert_eq!(
            run(&["local_transport=lmtp:unix:/run/lmtp"], "joe").nexthop,
            "unix:/run/lmtp"
        );
        let bad = run(&["local_transport=:x"], "joe");
        assert_eq!(bad.flags & flags::FAIL, flags::FAIL);
    }

    #[test]
    fn remote_domains() {
        assert_eq!(
            run(&[], "Joe@Remote.ORG"),
            r(flags::CLASS_DEFAULT, "smtp", "remote.org", "Joe@remote.org")
        );
        assert_eq!(
            run(&["relayhost=[smart.example]:587"], "joe@remote.org"),
            r(
                flags::CLASS_DEFAULT,
                "smtp",
                "[smart.example]:587",
                "joe@remote.org"
            )
        );
        assert_eq!(
            run(&["relay_domains=remote.org"], "joe@remote.org"),
            r(flags::CLASS_RELAY, "relay", "remote.org", "joe@remote.org")
        );
        // relay_domains matches subdomains (parent_domain_matches_subdomains).
        assert_eq!(
            run(&["relay_domains=remote.org"], "joe@a.remote.org").class(),
            flags::CLASS_RELAY
        );
        assert_eq!(
            run(
                &[
                    "relay_domains=remote.org",
                    "parent_domain_matches_subdomains="
                ],
                "joe@a.remote.org"
            )
            .class(),
            flags::CLASS_DEFAULT
        );
    }

    #[test]
    fn virtual_domains() {
        assert_eq!(
            run(
                &["virtual_mailbox_domains=virt.example"],
                "joe@virt.example"
            ),
            r(
                flags::CLASS_VIRTUAL,
                "virtual",
                "virt.example",
                "joe@virt.example"
            )
        );
        assert_eq!(
            run(
                &["virtual_alias_domains=alias.example"],
                "joe@alias.example"
            ),
            r(
                flags::CLASS_ALIAS,
                "error",
                ALIAS_UNKNOWN,
                "joe@alias.example"
            )
        );
        // virtual_alias_domains defaults to the domains in
        // virtual_alias_maps; transport_maps does not override the class.
        let got = run(
            &[
                "virtual_alias_maps=inline:{ alias.example=x, joe@alias.example=bob }",
                "transport_maps=inline:{ alias.example=smtp:elsewhere }",
            ],
            "joe@alias.example",
        );
        assert_eq!(got.class(), flags::CLASS_ALIAS);
        assert_eq!(got.transport, "error");
    }

    #[test]
    fn routing_operators() {
        // The local domain is stripped, then the percent hack applies.
        assert_eq!(
            run(&[], "joe%remote.org@mail.example.com"),
            r(flags::CLASS_DEFAULT, "smtp", "remote.org", "joe@remote.org")
        );
        assert_eq!(
            run(&[], "remote.org!joe@mail.example.com").recipient,
            "joe@remote.org"
        );
        assert_eq!(
            run(&[], "joe%localhost@mail.example.com"),
            r(
                flags::CLASS_LOCAL,
                "local",
                "mail.example.com",
                "joe@localhost"
            )
        );
        // A source route is for rewrite to strip (as in Postfix, resolve
        // takes the address as canonical); here it only marks it routed.
        let routed = run(&[], "@hop.org:joe@remote.org");
        assert_eq!(routed.recipient, "@hop.org:joe@remote.org");
        assert_eq!(routed.flags & flags::ROUTED, flags::ROUTED);
        // Operators left in a remote local part mark the address routed.
        let routed = run(&[], "joe%other.org@remote.org");
        assert_eq!(routed.flags, flags::CLASS_DEFAULT | flags::ROUTED);
        assert_eq!(routed.recipient, "joe%other.org@remote.org");
        // Without the percent hack, '%' is just a character.
        assert_eq!(
            run(
                &["allow_percent_hack=no"],
                "joe%remote.org@mail.example.com"
            ),
            r(
                flags::CLASS_LOCAL,
                "local",
                "mail.example.com",
                "joe%remote.org@mail.example.com"
            )
        );
    }

    #[test]
    fn bad_syntax() {
        for a in [
            "@remote.org",
            "joe@bad_domain-.org",
            "joe@exa mple.org",
            "joe@[300.1.1.1]",
            "joe@[not-an-ip]",
            "joe@-x.org",
        ] {
            let got = run(&[], a);
            assert_eq!(got.flags & flags::ERROR, flags::ERROR, "{a}");
            assert_eq!(got.transport, "error", "{a}");
            assert_eq!(got.nexthop, BAD_SYNTAX, "{a}");
        }
        assert_eq!(run(&[], "joe@under_score.org").flags & flags::ERROR, 0);
    }

    #[test]
    fn transport_maps_override() {
        let maps = "transport_maps=inline:{ remote.org=relay:[gw.example], \
                    .remote.org=:[sub.gw], joe@mail.example.com=lmtp:, \
                    { bad.org = error:5.7.1 go away } }";
        assert_eq!(
            run(&[maps], "joe@remote.org"),
            r(
                flags::CLASS_DEFAULT,
                "relay",
                "[gw.example]",
                "joe@remote.org"
            )
        );
        assert_eq!(
            run(&[maps], "joe@a.remote.org"),
            r(flags::CLASS_DEFAULT, "smtp", "[sub.gw]", "joe@a.remote.org")
        );
        // Empty nexthop keeps the class default.
        assert_eq!(
            run(&[maps], "joe"),
            r(
                flags::CLASS_LOCAL,
                "lmtp",
                "mail.example.com",
                "joe@mail.example.com"
            )
        );
        // error: is an ordinary transport here, not a syntax error.
        assert_eq!(
            run(&[maps], "x@bad.org"),
            r(flags::CLASS_DEFAULT, "error", "5.7.1 go away", "x@bad.org")
        );
        // recipient_delimiter: joe+ext finds joe's entry.
        assert_eq!(
            run(&[maps, "recipient_delimiter=+"], "joe+ext").transport,
            "lmtp"
        );
    }

    #[test]
    fn lookup_failures_set_fail() {
        for setting in [
            "transport_maps=fail:t",
            "mydestination=fail:t",
            "relay_domains=fail:t",
            "virtual_alias_domains=fail:t",
            "virtual_mailbox_domains=fail:t",
        ] {
            let got = run(&[setting], "joe@remote.org");
            assert_eq!(got.flags & flags::FAIL, flags::FAIL, "{setting}");
            assert_eq!(got.transport, "", "{setting}");
        }
    }

    #[test]
    fn domain_lists_with_tables() {
        let dir = std::env::temp_dir().join(format!("postern-tr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("relay");
        std::fs::write(&f, "partner.example OK\n").unwrap();
        let setting = format!("relay_domains=hash:{}", f.display());
        assert_eq!(
            run(&[&setting], "joe@partner.example").class(),
            flags::CLASS_RELAY
        );
        // With parent matching (relay_domains is in the default list),
        // parent domains are looked up as keys too.
        assert_eq!(
            run(&[&setting], "joe@sub.partner.example").class(),
            flags::CLASS_RELAY
        );
        assert_eq!(
            run(&[&setting], "joe@other.example").class(),
            flags::CLASS_DEFAULT
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn validity() {
        assert!(valid_domain("example.com"));
        assert!(valid_domain("1.2.3.4"));
        assert!(valid_domain("[1.2.3.4]"));
        assert!(valid_domain("[ipv6:2001:db8::1]"));
        assert!(valid_domain("bücher.example"));
        assert!(!valid_domain("a..b"));
        assert!(!valid_domain("[1.2.3.4"));
        assert!(!valid_domain(&format!("{}.com", "a".repeat(64))));
    }
}

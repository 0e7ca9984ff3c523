//! The hosts file (`/etc/hosts`, hosts(5)): what the system resolver
//! answers before it asks the DNS (`hosts: files dns` in nsswitch.conf).
//! Postfix's smtpd gets client names through getnameinfo(3), so
//! `127.0.0.1` is `localhost` there without a DNS query; Postern's smtpd
//! asks this table first for the same answers.

use std::net::IpAddr;
use std::path::Path;

/// Lines longer than this are ignored (hosts(5) has no limit; this is a
/// guard, not a format rule).
const MAX_LINE: usize = 4096;

/// The entries of a hosts file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    entries: Vec<(IpAddr, Vec<String>)>,
}

impl Hosts {
    /// Parses hosts(5) text: `address name [alias...]` per line, `#`
    /// comments; lines with a bad address or without a name are skipped.
    pub fn parse(text: &str) -> Hosts {
        let mut entries = Vec::new();
        for line in text.lines() {
            if line.len() > MAX_LINE {
                continue;
            }
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let Some(Ok(ip)) = words.next().map(|w| w.parse::<IpAddr>()) else {
                continue;
            };
            let names: Vec<String> = words.map(|w| w.trim_end_matches('.').to_string()).collect();
            if !names.is_empty() {
                entries.push((ip.to_canonical(), names));
            }
        }
        Hosts { entries }
    }

    /// Reads `path`; a missing or unreadable file is an empty table.
    pub fn load(path: &Path) -> Hosts {
        std::fs::read_to_string(path)
            .map(|t| Hosts::parse(&t))
            .unwrap_or_default()
    }

    /// The names of `ip`, canonical name of the first line first (what
    /// getnameinfo(3) returns first).
    pub fn names(&self, ip: IpAddr) -> Vec<String> {
        let ip = ip.to_canonical();
        self.entries
            .iter()
            .filter(|(a, _)| *a == ip)
            .flat_map(|(_, names)| names.iter().cloned())
            .collect()
    }

    /// The addresses listed for `name` (any of its names, case-insensitive).
    pub fn addresses(&self, name: &str) -> Vec<IpAddr> {
        let name = name.trim_end_matches('.');
        self.entries
            .iter()
            .filter(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            .map(|(a, _)| *a)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# comment
127.0.0.1\tlocalhost  runsc # trailing comment
127.0.1.1 mail.example.test mail
::1 localhost ip6-localhost ip6-loopback
not-an-address foo
10.0.0.1
192.0.2.7 Other.Example.
";

    #[test]
    fn names_and_addresses() {
        let h = Hosts::parse(FILE);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(h.names(ip("127.0.0.1")), ["localhost", "runsc"]);
        assert_eq!(h.names(ip("::ffff:127.0.0.1")), ["localhost", "runsc"]);
        assert_eq!(h.names(ip("::1"))[0], "localhost");
        assert!(h.names(ip("10.0.0.1")).is_empty(), "a line without a name");
        assert!(h.names(ip("127.0.0.2")).is_empty());
        assert_eq!(h.addresses("LOCALHOST"), [ip("127.0.0.1"), ip("::1")]);
        assert_eq!(h.addresses("mail"), [ip("127.0.1.1")]);
        assert_eq!(h.addresses("other.example."), [ip("192.0.2.7")]);
        assert!(h.addresses("foo").is_empty());
    }

    #[test]
    fn junk_never_panics() {
        for text in ["", "\n\n", "#", "::", "1.2.3.4 \u{0}", &"x".repeat(10_000)] {
            let h = Hosts::parse(text);
            let _ = h.names("1.2.3.4".parse().unwrap());
        }
        assert_eq!(
            Hosts::load(Path::new("/nonexistent/hosts")),
            Hosts::default()
        );
    }
}

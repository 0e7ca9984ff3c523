//! `transport_maps` lookups (Postfix `trivial-rewrite/transport.c`,
//! `transport(5)`).
//!
//! Keys, in order: the full recipient `user+ext@domain` (every table),
//! then in fixed-string tables only: `user@domain` (when
//! `recipient_delimiter` splits off an extension), the domain, its parent
//! domains as `.parent` (or `parent`, when `transport_maps` is in
//! `parent_domain_matches_subdomains`), and last the wildcard `*`.
//!
//! A result is `transport:nexthop`; an empty part keeps the default that
//! the address class gave (`:[relay.example]` changes only the next hop,
//! `smtp:` only the transport).

use postern_maps::{Error, Maps, split_extension};

/// A transport table entry, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) transport: String,
    pub(crate) nexthop: String,
}

impl Entry {
    fn parse(value: &str) -> Entry {
        let value = value.trim();
        let (transport, nexthop) = value.split_once(':').unwrap_or((value, ""));
        Entry {
            transport: transport.trim().to_owned(),
            nexthop: nexthop.trim().to_owned(),
        }
    }
}

/// The entry for `recipient` (whose domain is `domain`), if any.
pub(crate) fn lookup(
    maps: &Maps,
    recipient: &str,
    domain: &str,
    delimiter: &str,
    parent_style: bool,
) -> Result<Option<Entry>, Error> {
    if maps.is_empty() {
        return Ok(None);
    }
    if let Some(v) = maps.lookup(recipient)? {
        return Ok(Some(Entry::parse(&v)));
    }
    if let Some(at) = recipient.rfind('@')
        && let Some((user, _)) = split_extension(&recipient[..at], delimiter)
        && let Some(v) = maps.lookup_fixed(&format!("{user}{}", &recipient[at..]))?
    {
        return Ok(Some(Entry::parse(&v)));
    }
    if !domain.is_empty() {
        if let Some(v) = maps.lookup_fixed(domain)? {
            return Ok(Some(Entry::parse(&v)));
        }
        if !domain.starts_with('[') {
            let mut rest = domain;
            while let Some(dot) = rest.find('.') {
                let (with_dot, without) = (&rest[dot..], &rest[dot + 1..]);
                if without.is_empty() {
                    break;
                }
                let key = if parent_style { without } else { with_dot };
                if let Some(v) = maps.lookup_fixed(key)? {
                    return Ok(Some(Entry::parse(&v)));
                }
                rest = without;
            }
        }
    }
    Ok(maps.lookup_fixed("*")?.map(|v| Entry::parse(&v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use postern_maps::Syntax;

    fn maps(entries: &str) -> Maps {
        Maps::open(&[format!("inline:{{ {entries} }}")], Syntax::Postmap).unwrap()
    }

    fn get(m: &Maps, rcpt: &str, parent: bool) -> Option<(String, String)> {
        let domain = rcpt.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        lookup(m, rcpt, domain, "+", parent)
            .unwrap()
            .map(|e| (e.transport, e.nexthop))
    }

    fn pair(t: &str, n: &str) -> Option<(String, String)> {
        Some((t.into(), n.into()))
    }

    #[test]
    fn key_order() {
        let mut entries = vec![
            ("joe+x@a.example.com", "full:"),
            ("joe@a.example.com", "noext:"),
            ("a.example.com", "domain:"),
            (".example.com", "parent:"),
            (".com", "tld:"),
            ("*", "wild:"),
        ];
        while !entries.is_empty() {
            let body: Vec<String> = entries.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let m = maps(&body.join(", "));
            let want = entries[0].1.trim_end_matches(':');
            assert_eq!(get(&m, "joe+x@a.example.com", false), pair(want, ""));
            entries.remove(0);
        }
        assert_eq!(get(&maps(""), "joe@a.example.com", false), None);
    }

    #[test]
    fn parent_style_uses_bare_parents() {
        let m = maps("example.com=p:, .example.com=dot:");
        assert_eq!(get(&m, "joe@a.example.com", false), pair("dot", ""));
        assert_eq!(get(&m, "joe@a.example.com", true), pair("p", ""));
    }

    #[test]
    fn results_split_at_the_first_colon() {
        let m = maps(
            "a.org=smtp:[relay.example]:2525, b.org=:[x.example], c.org=relay, \
             { d.org = error:5.1.1 no: such user }",
        );
        assert_eq!(
            get(&m, "u@a.org", false),
            pair("smtp", "[relay.example]:2525")
        );
        assert_eq!(get(&m, "u@b.org", false), pair("", "[x.example]"));
        assert_eq!(get(&m, "u@c.org", false), pair("relay", ""));
        assert_eq!(
            get(&m, "u@d.org", false),
            pair("error", "5.1.1 no: such user")
        );
    }

    #[test]
    fn literal_domains_have_no_parents() {
        let m = maps(".0.0.1]=x:");
        assert_eq!(get(&m, "u@[10.0.0.1]", false), None);
    }

    #[test]
    fn failures_propagate() {
        let m = Maps::open(&["fail:t".to_string()], Syntax::Postmap).unwrap();
        assert!(lookup(&m, "u@d", "d", "+", false).is_err());
    }
}

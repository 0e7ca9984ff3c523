//! Address canonicalization (Postfix `trivial-rewrite/rewrite.c`,
//! `rewrite_tree()`).
//!
//! In order:
//! - the null address, and a lone `@`, stay (or become) empty;
//! - a source route is stripped: `@a,@b:user@domain` → `user@domain`;
//! - an address without `@` is qualified: `site!user` → `user@site`
//!   (`swap_bangpath`), else `user%domain` → `user@domain`
//!   (`allow_percent_hack`), else, in the local context, `user` →
//!   `user@$myorigin`. The remote context leaves a bare `user` alone
//!   (Postfix with `remote_header_rewrite_domain` empty);
//! - in the local context, with `append_dot_mydomain = yes`, a domain
//!   without a dot (and not an `[address]` literal) gets `.$mydomain`;
//! - a trailing dot is stripped from the domain, and the domain is
//!   lowercased.
//!
//! The percent hack applies here only to addresses without `@`;
//! `user%domain@local.domain` is taken apart by the resolver, which
//! strips the local domain first (`resolve.rs`).

use postern_config::Config;
use postern_ipc::rewrite::Rule;

use crate::addr;

/// The canonical form of `address` in the context `rule`.
pub(crate) fn rewrite(config: &Config, rule: Rule, address: &str) -> String {
    if address.is_empty() || address == "@" {
        return String::new();
    }
    let mut addr = strip_source_route(address).to_owned();
    if addr::rfind(&addr, '@').is_none() {
        if config.bool("swap_bangpath")
            && let Some(bang) = addr::find(&addr, '!')
        {
            addr = format!("{}@{}", &addr[bang + 1..], &addr[..bang]);
        } else if config.bool("allow_percent_hack")
            && let Some(pct) = addr::rfind(&addr, '%')
        {
            addr.replace_range(pct..pct + 1, "@");
        } else if rule == Rule::Local {
            let origin = config.str("myorigin");
            if !origin.is_empty() {
                addr.push('@');
                addr.push_str(&origin);
            }
        }
    }
    if let Some(at) = addr::rfind(&addr, '@') {
        let domain = &addr[at + 1..];
        let mydomain = config.str("mydomain");
        if rule == Rule::Local
            && !domain.is_empty()
            && !domain.contains('.')
            && !domain.starts_with('[')
            && !mydomain.is_empty()
            && config.bool("append_dot_mydomain")
        {
            addr.push('.');
            addr.push_str(&mydomain);
        }
        addr::strip_trailing_dot(&mut addr);
        addr::lowercase_domain(&mut addr);
    }
    addr
}

/// `@a,@b:user@domain` → `user@domain`; anything else as it is.
fn strip_source_route(addr: &str) -> &str {
    if !addr.starts_with('@') {
        return addr;
    }
    match addr::find(addr, ':') {
        Some(colon) if colon + 1 < addr.len() => &addr[colon + 1..],
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &[&str]) -> Config {
        let mut o = vec![
            "myhostname=mail.example.com".to_string(),
            "mydomain=example.com".to_string(),
        ];
        o.extend(extra.iter().map(|s| s.to_string()));
        Config::defaults().with_overrides(&o).unwrap()
    }

    fn local(c: &Config, a: &str) -> String {
        rewrite(c, Rule::Local, a)
    }

    #[test]
    fn local_context_qualifies_bare_users() {
        let c = config(&[]);
        // myorigin defaults to $myhostname.
        assert_eq!(local(&c, "joe"), "joe@mail.example.com");
        let c = config(&["myorigin=$mydomain"]);
        assert_eq!(local(&c, "joe"), "joe@example.com");
        assert_eq!(local(&c, "Joe@Example.COM"), "Joe@example.com");
    }

    #[test]
    fn remote_context_leaves_bare_users_alone() {
        let c = config(&["append_dot_mydomain=yes"]);
        assert_eq!(rewrite(&c, Rule::Remote, "joe"), "joe");
        assert_eq!(rewrite(&c, Rule::Remote, "joe@host"), "joe@host");
        assert_eq!(rewrite(&c, Rule::Remote, "joe@HOST."), "joe@host");
        assert_eq!(rewrite(&c, Rule::Remote, "@a,@b:joe@x.org"), "joe@x.org");
        assert_eq!(rewrite(&c, Rule::Remote, "x!joe"), "joe@x");
    }

    #[test]
    fn null_address_stays_empty() {
        let c = config(&[]);
        assert_eq!(local(&c, ""), "");
        assert_eq!(local(&c, "@"), "");
        assert_eq!(rewrite(&c, Rule::Remote, ""), "");
    }

    #[test]
    fn source_routes_are_stripped() {
        let c = config(&[]);
        assert_eq!(local(&c, "@a.org,@b.org:joe@c.org"), "joe@c.org");
        assert_eq!(local(&c, "@a.org:joe@c.org"), "joe@c.org");
    }

    #[test]
    fn bang_paths_and_percent_hack() {
        let c = config(&[]);
        assert_eq!(local(&c, "site!joe"), "joe@site");
        assert_eq!(local(&c, "a!b!joe"), "b!joe@a");
        assert_eq!(local(&c, "joe%remote.org"), "joe@remote.org");
        assert_eq!(local(&c, "joe%a%b.org"), "joe%a@b.org");
        // With '@' present, nothing changes here (the resolver handles it).
        assert_eq!(
            local(&c, "joe%remote.org@example.com"),
            "joe%remote.org@example.com"
        );

        let off = config(&["swap_bangpath=no", "allow_percent_hack=no"]);
        assert_eq!(local(&off, "site!joe"), "site!joe@mail.example.com");
        assert_eq!(local(&off, "joe%x"), "joe%x@mail.example.com");
    }

    #[test]
    fn append_dot_mydomain() {
        let c = config(&["append_dot_mydomain=yes"]);
        assert_eq!(local(&c, "joe@host"), "joe@host.example.com");
        assert_eq!(local(&c, "joe@host.dom"), "joe@host.dom");
        assert_eq!(local(&c, "joe@[10.0.0.1]"), "joe@[10.0.0.1]");
        let c = config(&[]);
        assert_eq!(local(&c, "joe@host"), "joe@host");
    }

    #[test]
    fn trailing_dot_and_case() {
        let c = config(&[]);
        assert_eq!(local(&c, "Joe@Example.ORG."), "Joe@example.org");
        assert_eq!(local(&c, "joe@example.org.."), "joe@example.org..");
        assert_eq!(local(&c, "\"A@B\"@X.ORG"), "\"A@B\"@x.org");
    }
}

//! Domain lists such as `mydestination` or `relay_domains` (Postfix
//! `global/domain_list.c`, `util/match_list.c`, `util/match_ops.c:
//! match_hostname()`).
//!
//! A list holds, in order:
//! - `domain.tld`: that domain; with parent matching (the parameter is
//!   in `parent_domain_matches_subdomains`) also its subdomains;
//! - `.domain.tld`: subdomains of `domain.tld`;
//! - `type:table`: a table that has the domain as a key (the value is
//!   ignored); then, for each parent domain, the key `.parent` (or
//!   `parent` with parent matching), in fixed-string tables only;
//! - `/file/name`: the patterns in that file (whitespace or comma
//!   separated, `#` comments);
//! - `!pattern`: a domain that matches `pattern` is not in the list.
//!
//! The first pattern that matches decides. `$name` references are
//! expanded by the configuration before the list gets here.

use std::path::Path;

use crate::error::Error;
use crate::{Maps, Syntax};

#[derive(Debug, Clone)]
enum Pattern {
    Domain(String),
    Table(Maps),
}

/// An opened domain list.
#[derive(Debug, Clone)]
pub struct DomainList {
    name: String,
    parent: bool,
    patterns: Vec<(bool, Pattern)>,
}

impl DomainList {
    /// Opens the list `entries` of parameter `name` (for messages), as
    /// from `Config::list(name)`. `parent_matches_subdomains` is whether
    /// `name` is in `parent_domain_matches_subdomains`. Tables are opened
    /// now; a table or file that cannot be opened is an error.
    pub fn open(
        name: &str,
        entries: &[String],
        parent_matches_subdomains: bool,
    ) -> Result<DomainList, Error> {
        let mut patterns = Vec::new();
        add_patterns(name, entries, &mut patterns, 0)?;
        Ok(DomainList {
            name: name.to_owned(),
            parent: parent_matches_subdomains,
            patterns,
        })
    }

    /// Whether the list has no patterns (it then matches nothing).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The parameter name the list was opened for.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `domain` is in the list. A trailing dot is ignored and
    /// case does not matter. A failed table lookup is an error (defer).
    pub fn matches(&self, domain: &str) -> Result<bool, Error> {
        let domain = domain.strip_suffix('.').unwrap_or(domain).to_lowercase();
        if domain.is_empty() {
            return Ok(false);
        }
        for (negate, pattern) in &self.patterns {
            let hit = match pattern {
                Pattern::Domain(p) => self.match_name(&domain, p),
                Pattern::Table(maps) => self.match_table(&domain, maps)?,
            };
            if hit {
                return Ok(!negate);
            }
        }
        Ok(false)
    }

    fn match_name(&self, domain: &str, pattern: &str) -> bool {
        if domain == pattern {
            return true;
        }
        if let Some(parent) = pattern.strip_prefix('.') {
            return domain
                .strip_suffix(parent)
                .is_some_and(|head| head.ends_with('.') && head.len() > 1);
        }
        self.parent
            && domain
                .strip_suffix(pattern)
                .is_some_and(|head| head.ends_with('.') && head.len() > 1)
    }

    fn match_table(&self, domain: &str, maps: &Maps) -> Result<bool, Error> {
        if maps.lookup(domain)?.is_some() {
            return Ok(true);
        }
        let mut rest = domain;
        while let Some(dot) = rest.find('.') {
            let (with_dot, without) = (&rest[dot..], &rest[dot + 1..]);
            if without.is_empty() {
                break;
            }
            let key = if self.parent { without } else { with_dot };
            if maps.lookup_fixed(key)?.is_some() {
                return Ok(true);
            }
            rest = without;
        }
        Ok(false)
    }
}

/// Nesting limit for `/file/name` patterns that name files.
const MAX_DEPTH: usize = 10;

fn add_patterns(
    name: &str,
    entries: &[String],
    out: &mut Vec<(bool, Pattern)>,
    depth: usize,
) -> Result<(), Error> {
    for entry in entries {
        let (negate, item) = match entry.strip_prefix('!') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, entry.as_str()),
        };
        if item.is_empty() {
            continue;
        }
        if item.starts_with('/') {
            if depth >= MAX_DEPTH {
                return Err(Error::new(name, format!("{item}: files nested too deeply")));
            }
            let text = std::fs::read_to_string(Path::new(item))
                .map_err(|e| Error::new(name, format!("open {item}: {e}")))?;
            let words: Vec<String> = text
                .lines()
                .map(|l| l.split('#').next().unwrap_or(""))
                .flat_map(|l| l.split([',', ' ', '\t', '\r']))
                .filter(|w| !w.is_empty())
                .map(|w| {
                    if negate {
                        format!("!{w}")
                    } else {
                        w.to_owned()
                    }
                })
                .collect();
            add_patterns(name, &words, out, depth + 1)?;
        } else if item.contains(':') && !item.starts_with('[') {
            out.push((
                negate,
                Pattern::Table(Maps::open(&[item.to_owned()], Syntax::Postmap)?),
            ));
        } else {
            let item = item.strip_suffix('.').unwrap_or(item);
            out.push((negate, Pattern::Domain(item.to_lowercase())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str], parent: bool) -> DomainList {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        DomainList::open("test_domains", &entries, parent).unwrap()
    }

    #[test]
    fn exact_and_dot_patterns() {
        let l = list(&["Example.com", ".sub.example.org"], false);
        assert!(l.matches("example.COM").unwrap());
        assert!(l.matches("example.com.").unwrap());
        assert!(!l.matches("a.example.com").unwrap());
        assert!(!l.matches("sub.example.org").unwrap());
        assert!(l.matches("x.sub.example.org").unwrap());
        assert!(!l.matches("xsub.example.org").unwrap());
        assert!(!l.matches("").unwrap());
    }

    #[test]
    fn parent_matching() {
        let l = list(&["example.com"], true);
        assert!(l.matches("example.com").unwrap());
        assert!(l.matches("a.b.example.com").unwrap());
        assert!(!l.matches("badexample.com").unwrap());
    }

    #[test]
    fn negation_first_match_wins() {
        let l = list(&["!private.example.com", ".example.com"], false);
        assert!(l.matches("www.example.com").unwrap());
        assert!(!l.matches("private.example.com").unwrap());
    }

    #[test]
    fn tables_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("domains");
        std::fs::write(&t, "listed.example  x\n.wild.example x\n").unwrap();
        let f = dir.path().join("list");
        std::fs::write(&f, "# domains\nfile.example, other.example\n").unwrap();
        let l = list(
            &[&format!("hash:{}", t.display()), &f.display().to_string()],
            false,
        );
        assert!(l.matches("Listed.Example").unwrap());
        assert!(!l.matches("a.listed.example").unwrap());
        assert!(l.matches("a.b.wild.example").unwrap());
        assert!(!l.matches("wild.example").unwrap());
        assert!(l.matches("other.example").unwrap());
        let p = list(&[&format!("hash:{}", t.display())], true);
        assert!(p.matches("a.listed.example").unwrap());
        assert!(!l.is_empty());
        assert!(list(&[], false).is_empty());
    }

    #[test]
    fn table_failure_is_an_error() {
        let l = list(&["fail:x"], false);
        assert!(l.matches("example.com").is_err());
        let e =
            DomainList::open("relay_domains", &["/nonexistent/postern".into()], false).unwrap_err();
        assert_eq!(e.table(), "relay_domains");
    }
}

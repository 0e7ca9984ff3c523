//! One lookup table: opening a `type:name` specification and looking a key
//! up (Postfix `dict_open.c`, `dict_ht.c`, `dict_thash.c`, `dict_inline.c`,
//! `dict_static.c`, `dict_unix.c`, `dict_fail.c`, `dict_proxy.c`).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use postern_util::cache::TtlCache;

use crate::Syntax;
use crate::cidr::{self, CidrTable};
use crate::error::Error;
use crate::regexp::{self, Flavor, RegexpTable};
use crate::source::FileTable;
use crate::text;

enum Dict {
    /// `hash:`, `btree:`, `texthash:` and their synonyms: a source file
    /// indexed in memory.
    Indexed(FileTable<HashMap<String, String>>),
    Regexp(FileTable<RegexpTable>),
    Cidr(FileTable<CidrTable>),
    Inline(HashMap<String, String>),
    Static(String),
    UnixPasswd(NssCache),
    UnixGroup(NssCache),
    Fail,
}

/// Recent answers of the system's user or group database. Each lookup
/// walks every NSS source (`files systemd` on Debian: some forty system
/// calls for a name that is not there), and smtpd asks for every local
/// recipient; an answer is kept for [`NSS_TTL`], so a new or removed
/// account is seen that much later by a process that asked before.
struct NssCache(std::sync::Mutex<TtlCache<String, Option<String>>>);

impl Default for NssCache {
    fn default() -> Self {
        NssCache(std::sync::Mutex::new(TtlCache::new(NSS_TTL, NSS_CACHE_MAX)))
    }
}

/// How long an answer of the user or group database is kept.
const NSS_TTL: Duration = Duration::from_secs(2);

/// The most answers kept (the cache starts over beyond).
const NSS_CACHE_MAX: usize = 4096;

impl NssCache {
    fn get(
        &self,
        key: &str,
        ask: impl FnOnce(&str) -> nix::Result<Option<String>>,
    ) -> nix::Result<Option<String>> {
        if let Some(answer) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return Ok(answer);
        }
        // Failures are not kept: the next lookup asks again.
        let answer = ask(key)?;
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key.to_owned(), answer.clone());
        Ok(answer)
    }
}

/// An open table.
pub(crate) struct Table {
    spec: String,
    dict: Dict,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Table").field(&self.spec).finish()
    }
}

/// The table types that [`crate::Maps::open`] knows (for `postconf -m`).
pub const TYPES: &[&str] = &[
    "btree", "cdb", "cidr", "fail", "hash", "inline", "lmdb", "pcre", "proxy", "regexp", "static",
    "texthash", "unix",
];

impl Table {
    /// Opens `spec` (`type:name`). File tables are read now; a file that
    /// cannot be read is an error.
    pub(crate) fn open(spec: &str, syntax: Syntax, recheck: Duration) -> Result<Table, Error> {
        let err = |m: String| Error::new(spec, m);
        let (kind, name) = split_spec(spec)?;
        let path = Path::new(name);
        let dict = match kind.as_str() {
            // "The fast indexed form" of a source file is built in memory;
            // lmdb and cdb are accepted for the same source files, so that
            // Postfix main.cf settings carry over.
            "hash" | "btree" | "texthash" | "lmdb" | "cdb" => Dict::Indexed(FileTable::open_with(
                spec,
                path,
                Box::new(move |t, o| text::parse(t, o, syntax)),
                recheck,
            )?),
            "regexp" => Dict::Regexp(FileTable::open_with(
                spec,
                path,
                Box::new(|t, o| regexp::parse(t, o, Flavor::Regexp)),
                recheck,
            )?),
            "pcre" => Dict::Regexp(FileTable::open_with(
                spec,
                path,
                Box::new(|t, o| regexp::parse(t, o, Flavor::Pcre)),
                recheck,
            )?),
            "cidr" => Dict::Cidr(FileTable::open_with(
                spec,
                path,
                Box::new(cidr::parse),
                recheck,
            )?),
            "inline" => Dict::Inline(parse_inline(name).map_err(err)?),
            "static" => Dict::Static(strip_braces(name).unwrap_or(name).to_owned()),
            "unix" => match name {
                "passwd.byname" => Dict::UnixPasswd(NssCache::default()),
                "group.byname" => Dict::UnixGroup(NssCache::default()),
                _ => return Err(err(format!("unknown table: unix:{name}"))),
            },
            "fail" => Dict::Fail,
            _ => return Err(err(format!("unsupported dictionary type: {kind}"))),
        };
        Ok(Table {
            spec: spec.to_owned(),
            dict,
        })
    }

    /// The specification the table was opened with.
    pub(crate) fn spec(&self) -> &str {
        &self.spec
    }

    /// Whether this is a pattern table (regexp, pcre, cidr): those see
    /// only the full lookup key, never the partial keys of an address
    /// lookup, and get the key without case folding.
    pub(crate) fn is_pattern(&self) -> bool {
        matches!(self.dict, Dict::Regexp(_) | Dict::Cidr(_))
    }

    /// Looks `key` up; fixed-string tables fold it to lower case.
    pub(crate) fn lookup(&self, key: &str) -> Result<Option<String>, Error> {
        let folded = || key.to_lowercase();
        Ok(match &self.dict {
            Dict::Indexed(t) => {
                let key = folded();
                t.with(|m| m.get(&key).cloned())
            }
            Dict::Regexp(t) => t.with(|r| r.lookup(key)),
            Dict::Cidr(t) => t.with(|c| c.lookup(key)),
            Dict::Inline(m) => m.get(&folded()).cloned(),
            Dict::Static(v) => Some(v.clone()),
            // An address lookup also asks for user@domain and @domain;
            // no account name has an '@' (useradd and adduser refuse it),
            // and each miss costs a walk through every NSS source (with
            // systemd's, some forty system calls).
            Dict::UnixPasswd(_) | Dict::UnixGroup(_) if key.is_empty() || key.contains('@') => None,
            Dict::UnixPasswd(cache) => cache
                .get(&folded(), |k| {
                    nix::unistd::User::from_name(k).map(|u| u.map(|u| u.name))
                })
                .map_err(|e| Error::new(&self.spec, format!("getpwnam: {e}")))?,
            Dict::UnixGroup(cache) => cache
                .get(&folded(), |k| {
                    nix::unistd::Group::from_name(k).map(|g| g.map(|g| g.name))
                })
                .map_err(|e| Error::new(&self.spec, format!("getgrnam: {e}")))?,
            Dict::Fail => return Err(Error::new(&self.spec, "table lookup failed")),
        })
    }
}

/// `type:name` → (lower-case type, name), with `proxy:` prefixes removed.
fn split_spec(spec: &str) -> Result<(String, &str), Error> {
    let mut inner = spec.trim();
    // proxy:X is X: there is no proxymap process to go through.
    while let Some(rest) = inner.strip_prefix("proxy:") {
        inner = rest;
    }
    let Some((kind, name)) = inner.split_once(':') else {
        return Err(Error::new(
            spec,
            format!("expecting \"type:name\" table form instead of \"{inner}\""),
        ));
    };
    let kind = kind.to_ascii_lowercase();
    if name.is_empty() && kind != "static" {
        return Err(Error::new(spec, "missing table name after the type"));
    }
    Ok((kind, name))
}

/// What [`check`] found in a table's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// One line per problem, `FILE, line N: ...` (the lines that a daemon
    /// would log as warnings and skip).
    pub problems: Vec<String>,
    /// Every key and value, sorted by key, for the tables that can be
    /// listed (`hash:`-like and `inline:`); `None` for pattern tables.
    pub entries: Option<Vec<(String, String)>>,
}

/// Reads and parses the source of table `spec` the way a daemon does when
/// it opens it, but collects the problems instead of logging them
/// (`postmap`/`postalias` without `-q`, `newaliases`). Tables without a
/// source (`static:`, `unix:`, `fail:`) are an error: there is nothing
/// to check.
pub fn check(spec: &str, syntax: Syntax) -> Result<Checked, Error> {
    let (kind, name) = split_spec(spec)?;
    let read = |path: &str| {
        crate::source::read(Path::new(path))
            .map(|(text, _)| text)
            .map_err(|m| Error::new(spec, m))
    };
    let sorted = |map: HashMap<String, String>| {
        let mut entries: Vec<(String, String)> = map.into_iter().collect();
        entries.sort();
        entries
    };
    let (problems, entries) = match kind.as_str() {
        "hash" | "btree" | "texthash" | "lmdb" | "cdb" => {
            let (map, problems) = text::parse(&read(name)?, name, syntax);
            (problems, Some(sorted(map)))
        }
        "regexp" | "pcre" => {
            let flavor = if kind == "pcre" {
                Flavor::Pcre
            } else {
                Flavor::Regexp
            };
            (regexp::parse(&read(name)?, name, flavor).1, None)
        }
        "cidr" => (cidr::parse(&read(name)?, name).1, None),
        "inline" => (
            Vec::new(),
            Some(sorted(parse_inline(name).map_err(|m| Error::new(spec, m))?)),
        ),
        "static" | "unix" | "fail" => {
            return Err(Error::new(
                spec,
                format!("a {kind}: table has no source file to check or list"),
            ));
        }
        _ => {
            return Err(Error::new(
                spec,
                format!("unsupported dictionary type: {kind}"),
            ));
        }
    };
    Ok(Checked { problems, entries })
}

/// `{ text }` → `text`, trimmed.
fn strip_braces(text: &str) -> Option<&str> {
    text.trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .map(str::trim)
}

/// Splits at commas and whitespace outside `{ }`, like Postfix
/// `mystrtokq()`.
fn split_outside_braces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = None;
    for (i, c) in text.char_indices() {
        match c {
            '{' => {
                depth += 1;
                start.get_or_insert(i);
            }
            '}' => {
                depth = depth.saturating_sub(1);
                start.get_or_insert(i);
            }
            ',' | ' ' | '\t' | '\r' | '\n' if depth == 0 => {
                if let Some(s) = start.take() {
                    out.push(&text[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

/// `{ key=value, { key = value with spaces }, ... }` (Postfix
/// `dict_inline.c`). Keys are folded to lower case.
fn parse_inline(name: &str) -> Result<HashMap<String, String>, String> {
    let body = strip_braces(name).ok_or_else(|| {
        format!("syntax error: expected inline:{{ key=value ... }}, got \"{name}\"")
    })?;
    let mut map = HashMap::new();
    for item in split_outside_braces(body) {
        let item = strip_braces(item).unwrap_or(item);
        let Some((key, value)) = item.split_once('=') else {
            return Err(format!("syntax error: missing '=' in \"{item}\""));
        };
        let key = key.trim().to_lowercase();
        if key.is_empty() {
            return Err(format!("syntax error: missing key in \"{item}\""));
        }
        map.entry(key).or_insert_with(|| value.trim().to_owned());
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_tables() {
        let m =
            parse_inline("{ Joe=joe@example.com, bob=b, { long = text, with comma } }").unwrap();
        assert_eq!(m["joe"], "joe@example.com");
        assert_eq!(m["bob"], "b");
        assert_eq!(m["long"], "text, with comma");
        assert_eq!(m.len(), 3);
        assert!(parse_inline("a=b").is_err());
        // Whitespace around "=" needs braces, as in Postfix.
        assert!(parse_inline("{ bob = b }").is_err());
        assert!(parse_inline("{ novalue }").is_err());
        assert!(parse_inline("{ }").unwrap().is_empty());
    }
}

//! Postfix lookup tables (Postfix `util/dict*.c`, `global/maps.c`,
//! `global/mail_addr_find.c`, `global/split_addr.c`; manuals
//! DATABASE_README, `postmap(1)`, `aliases(5)`, `regexp_table(5)`,
//! `pcre_table(5)`, `cidr_table(5)`).
//!
//! A parameter such as `alias_maps = hash:/etc/aliases, regexp:/etc/x`
//! names a list of tables; [`Maps`] opens them and searches them in order:
//!
//! ```no_run
//! use postern_maps::{Maps, Syntax};
//!
//! let specs = vec!["hash:/etc/postern/transport".to_string()];
//! let maps = Maps::open(&specs, Syntax::Postmap)?;
//! match maps.lookup_address("joe+list@example.com", "+", false)? {
//!     Some(value) => println!("found {value}"),
//!     None => println!("no entry"),
//! }
//! # Ok::<(), postern_maps::Error>(())
//! ```
//!
//! Table types ([`TYPES`]):
//! - `hash:PATH`, `btree:PATH`, `texthash:PATH` (and `lmdb:`, `cdb:`):
//!   the *source* text file PATH, in `postmap(1)` format (`key value`) or,
//!   with [`Syntax::Aliases`], `aliases(5)` format (`name: value, ...`).
//!   Postfix would read PATH.db built by `postmap`; Postern builds the
//!   index in memory, so no `.db` file is needed or read;
//! - `regexp:PATH`, `pcre:PATH`: regular-expression tables;
//! - `cidr:PATH`: network blocks;
//! - `inline:{ key=value, key2=value2 }`, `static:VALUE`
//!   (`static:{ text with spaces }`);
//! - `unix:passwd.byname`, `unix:group.byname`: the system user and group
//!   databases; the value is the entry's name; a name with `@` is never
//!   looked up, and answers are kept for two seconds;
//! - `proxy:TYPE:NAME`: the same as `TYPE:NAME` (there is no proxymap);
//! - `fail:NAME`: every lookup fails (to test the defer paths).
//!
//! [`DomainList`] matches domains against lists such as `mydestination`
//! (domains, `.domain`, `type:table`, `/file/name`, `!negation`).
//!
//! Lookups fold the key to lower case, except in pattern tables (regexp,
//! pcre: those match case-insensitively unless told otherwise, and
//! `$1` substitutions keep the case of the input).
//!
//! File tables are reloaded when the file changes: a lookup compares the
//! file's identity (inode, size, modification time) with the loaded
//! version at most once a second. Postfix daemons instead exit and are
//! restarted by master when a table changes; the effect is the same.
//!
//! DIAGNOSTICS: a table that cannot be opened is an [`Error`] from
//! [`Maps::open`] (Postfix: fatal). Bad lines in a table file are logged
//! as warnings with file name and line number and skipped, as Postfix
//! does. A file that cannot be read again when it changed keeps its old
//! contents, with a warning. A failed lookup is an [`Error`], which means
//! "defer", never "not found".
#![deny(missing_docs)]

mod action;
mod cidr;
mod dict;
mod domain_list;
mod error;
mod regexp;
mod source;
mod text;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use action::Action;
pub use dict::{Checked, TYPES, check};
pub use domain_list::DomainList;
pub use error::Error;

use dict::Table;

/// The format of `hash:`/`btree:`/`texthash:` source files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Syntax {
    /// `key whitespace value` (`postmap(1)` input).
    #[default]
    Postmap,
    /// `name: value, value, ...` (`aliases(5)`, `postalias(1)` input);
    /// the value is the raw right-hand side.
    Aliases,
}

/// The tables of one parameter, searched in order.
///
/// Cloning is cheap and the clones share the tables (and their reloads).
#[derive(Clone, Debug)]
pub struct Maps {
    tables: Arc<Vec<Table>>,
}

impl fmt::Display for Maps {
    /// The table specifications, comma-separated, as in a parameter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.tables.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(t.spec())?;
        }
        Ok(())
    }
}

impl Maps {
    /// Opens every table in `specs` (as from `Config::list()`); no specs
    /// means no tables. `syntax` applies to the `hash:`-like tables.
    pub fn open(specs: &[String], syntax: Syntax) -> Result<Maps, Error> {
        Maps::open_with(specs, syntax, source::RECHECK)
    }

    fn open_with(specs: &[String], syntax: Syntax, recheck: Duration) -> Result<Maps, Error> {
        let tables = specs
            .iter()
            .map(|s| Table::open(s, syntax, recheck))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Maps {
            tables: Arc::new(tables),
        })
    }

    /// Whether there are no tables.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The value of `key` in the first table that has it. Stops at the
    /// first table whose lookup fails.
    pub fn lookup(&self, key: &str) -> Result<Option<String>, Error> {
        self.find(key, false)
    }

    /// Like [`Maps::lookup`], but only in fixed-string tables: pattern
    /// tables (regexp, pcre, cidr) are skipped (Postfix
    /// `DICT_FLAG_FIXED`). For partial keys such as parent domains, which
    /// a pattern table would see as a different string.
    pub fn lookup_fixed(&self, key: &str) -> Result<Option<String>, Error> {
        self.find(key, true)
    }

    /// Looks up an address the way Postfix `mail_addr_find()` does, and
    /// returns the first value found:
    /// 1. `user+ext@domain`, in every table;
    /// 2. `user@domain`, when `delimiter` is not empty and the address has
    ///    an extension;
    /// 3. when `local_domain` (the domain is one of this machine's):
    ///    `user+ext`, then `user`;
    /// 4. `@domain`.
    ///
    /// Only the first key goes to pattern tables (regexp, pcre, cidr),
    /// which see the address as given. `delimiter` is
    /// `recipient_delimiter`: each of its characters separates a user from
    /// an extension (see [`split_extension`]).
    pub fn lookup_address(
        &self,
        address: &str,
        delimiter: &str,
        local_domain: bool,
    ) -> Result<Option<String>, Error> {
        if let Some(v) = self.find(address, false)? {
            return Ok(Some(v));
        }
        let (local, domain) = match address.rfind('@') {
            Some(at) => (&address[..at], Some(&address[at + 1..])),
            None => (address, None),
        };
        let user = split_extension(local, delimiter).map(|(user, _)| user);
        if let Some(user) = user {
            let key = match domain {
                Some(d) => format!("{user}@{d}"),
                None => user.to_owned(),
            };
            if let Some(v) = self.find(&key, true)? {
                return Ok(Some(v));
            }
        }
        let Some(domain) = domain else {
            return Ok(None);
        };
        if local_domain && !local.is_empty() {
            for key in [Some(local), user].into_iter().flatten() {
                if let Some(v) = self.find(key, true)? {
                    return Ok(Some(v));
                }
            }
        }
        self.find(&format!("@{domain}"), true)
    }

    fn find(&self, key: &str, fixed_only: bool) -> Result<Option<String>, Error> {
        for table in self.tables.iter() {
            if fixed_only && table.is_pattern() {
                continue;
            }
            if let Some(v) = table.lookup(key)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

/// Splits an address local part into the user and the extension, at the
/// first character that is in `delimiter` (Postfix `split_addr()`).
/// Returns `(user, rest)` where `rest` starts with the delimiter
/// character (`"joe+list"` → `("joe", "+list")`), or `None` when there is
/// nothing to split: no delimiter, the local part starts with one, or it
/// is `postmaster`, `mailer-daemon` or `double-bounce`; with `-` among the
/// delimiters, `owner-foo` and `foo-request` are not split either.
pub fn split_extension<'a>(localpart: &'a str, delimiter: &str) -> Option<(&'a str, &'a str)> {
    if delimiter.is_empty() {
        return None;
    }
    if ["postmaster", "mailer-daemon", "double-bounce"]
        .iter()
        .any(|n| localpart.eq_ignore_ascii_case(n))
    {
        return None;
    }
    if delimiter.contains('-') {
        let lower = localpart.to_ascii_lowercase();
        if lower.starts_with("owner-") || (lower.len() > 8 && lower.ends_with("-request")) {
            return None;
        }
    }
    let at = localpart.find(|c| delimiter.contains(c))?;
    (at > 0).then(|| localpart.split_at(at))
}

#[cfg(test)]
mod tests;

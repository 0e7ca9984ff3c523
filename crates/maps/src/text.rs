//! `key value` files (Postfix `postmap(1)` input) and `name: value` files
//! (`postalias(1)` input, `aliases(5)`), parsed into an in-memory hash
//! index: the Postern form of `hash:`, `btree:` and `texthash:` tables.
//!
//! Keys are folded to lower case, as `postmap` and `postalias` do without
//! `-f`. A key that appears twice keeps its first value (Postfix
//! `DICT_FLAG_DUP_WARN`: "duplicate entry", ignored).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::Syntax;
use crate::source::logical_lines;

/// Parses a whole file in `syntax`; warnings are `ORIGIN, line N: ...`.
pub(crate) fn parse(
    text: &str,
    origin: &str,
    syntax: Syntax,
) -> (HashMap<String, String>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut map = HashMap::new();
    for line in logical_lines(text, origin, &mut warnings) {
        let parsed = match syntax {
            Syntax::Postmap => postmap_line(&line.text),
            Syntax::Aliases => alias_line(&line.text),
        };
        let (key, value, note) = match parsed {
            Ok(entry) => entry,
            Err(message) => {
                warnings.push(format!("{origin}, line {}: {message}", line.number));
                continue;
            }
        };
        if let Some(note) = note {
            warnings.push(format!("{origin}, line {}: {note}", line.number));
        }
        match map.entry(key.to_lowercase()) {
            Entry::Occupied(e) => warnings.push(format!(
                "{origin}, line {}: duplicate entry: \"{}\"; ignoring it",
                line.number,
                e.key()
            )),
            Entry::Vacant(e) => {
                e.insert(value);
            }
        }
    }
    (map, warnings)
}

/// A parsed line: key, value, and an optional warning about a line that
/// is still used.
type Parsed = (String, String, Option<String>);

/// `key whitespace value`; the key may be `"quoted"` (Postfix 3.2), with
/// `\"` and `\\` escapes, to contain whitespace.
fn postmap_line(line: &str) -> Result<Parsed, String> {
    const FORMAT: &str = "expected format: key whitespace value";
    let (key, rest, quoted) = if let Some(body) = line.strip_prefix('"') {
        let mut key = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e)) => key.push(e),
                    None => break,
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                _ => key.push(c),
            }
        }
        let end = end.ok_or("missing closing double quote in key")?;
        let rest = &body[end..];
        if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
            return Err(format!("{FORMAT} (no whitespace after the quoted key)"));
        }
        (key, rest, true)
    } else {
        match line.find([' ', '\t']) {
            Some(at) => (line[..at].to_owned(), &line[at..], false),
            None => (line.to_owned(), "", false),
        }
    };
    let value = rest.trim();
    if value.is_empty() {
        return Err(FORMAT.to_owned());
    }
    let note = (!quoted && key.ends_with(':'))
        .then(|| "record is in \"key: value\" format; is this an alias file?".to_owned());
    Ok((key, value.to_owned(), note))
}

/// `name: value, value, ...`. The name ends at the first `:` outside
/// double quotes; a quoted name loses its quotes. The value is kept as
/// written (continuation lines joined), for the caller to split.
fn alias_line(line: &str) -> Result<Parsed, String> {
    const FORMAT: &str = "need name:value pair";
    let mut name = String::new();
    let mut in_quotes = false;
    let mut colon = None;
    let mut chars = line.char_indices();
    let mut unquoted_special = false;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => name.push(e),
                None => break,
            },
            '"' => in_quotes = !in_quotes,
            ':' if !in_quotes => {
                colon = Some(i);
                break;
            }
            _ => {
                if !in_quotes && matches!(c, '@' | '%' | ',') {
                    unquoted_special = true;
                }
                name.push(c);
            }
        }
    }
    let colon = colon.ok_or(FORMAT)?;
    let name = name.trim();
    let value = line[colon + 1..].trim();
    if name.is_empty() || value.is_empty() {
        return Err(FORMAT.to_owned());
    }
    if unquoted_special {
        return Err(format!("name must be local: \"{name}\""));
    }
    Ok((name.to_owned(), value.to_owned(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str, syntax: Syntax) -> (HashMap<String, String>, Vec<String>) {
        parse(text, "/etc/t", syntax)
    }

    #[test]
    fn postmap_entries() {
        let (m, w) = p(
            "Example.COM  smtp:[relay.example]:25\n\
             # comment\n\
             joe@Example.com   first\n  second\n\
             \"key with space\"  v\n\
             \"q\\\"uote\"\tx\n",
            Syntax::Postmap,
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(m["example.com"], "smtp:[relay.example]:25");
        assert_eq!(m["joe@example.com"], "first  second");
        assert_eq!(m["key with space"], "v");
        assert_eq!(m["q\"uote"], "x");
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn postmap_bad_lines_are_reported_and_skipped() {
        let (m, w) = p(
            "good value\nlonely\n\"open quote value\nalias: value\ngood other\n",
            Syntax::Postmap,
        );
        assert_eq!(m["good"], "value");
        // The alias-looking line is used, with a warning.
        assert_eq!(m["alias:"], "value");
        assert_eq!(m.len(), 2);
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(w[0].starts_with("/etc/t, line 2: expected format"), "{w:?}");
        assert!(w[1].starts_with("/etc/t, line 3: missing closing"), "{w:?}");
        assert!(w[2].starts_with("/etc/t, line 4: record is in"), "{w:?}");
        assert!(
            w[3].starts_with("/etc/t, line 5: duplicate entry: \"good\""),
            "{w:?}"
        );
    }

    #[test]
    fn aliases_entries() {
        let (m, w) = p(
            "# aliases\n\
             Postmaster: root\n\
             list: a, b,\n\tc@example.com, \"|/usr/bin/cmd arg\", /var/log/file,\n\t:include:/etc/list\n\
             \"odd name\": x\n\
             MAILER-DAEMON:postmaster\n",
            Syntax::Aliases,
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(m["postmaster"], "root");
        assert_eq!(
            m["list"],
            "a, b,\tc@example.com, \"|/usr/bin/cmd arg\", /var/log/file,\t:include:/etc/list"
        );
        assert_eq!(m["odd name"], "x");
        assert_eq!(m["mailer-daemon"], "postmaster");
    }

    #[test]
    fn aliases_bad_lines_are_reported_and_skipped() {
        let (m, w) = p(
            "root: admin\nno colon here\nempty:\nuser@remote: x\n: novalue\nroot: again\n",
            Syntax::Aliases,
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m["root"], "admin");
        let lines: Vec<&str> = w
            .iter()
            .map(|w| w.split(':').next().unwrap_or(""))
            .collect();
        assert_eq!(
            lines,
            [
                "/etc/t, line 2",
                "/etc/t, line 3",
                "/etc/t, line 4",
                "/etc/t, line 5",
                "/etc/t, line 6"
            ]
        );
        assert!(w[2].contains("name must be local"), "{w:?}");
        assert!(w[4].contains("duplicate entry"), "{w:?}");
    }
}

//! `regexp:` and `pcre:` tables (Postfix `dict_regexp.c`, `dict_pcre.c`,
//! `regexp_table(5)`, `pcre_table(5)`), on the `regex` crate.
//!
//! A table is a list of rules, tried in order; the first that matches
//! gives the result:
//! - `/pattern/flags result`: the key matches `pattern`;
//! - `!/pattern/flags result`: the key does not match;
//! - `/pattern1/flags!/pattern2/flags result`: matches the first and not
//!   the second (`regexp:` only in Postfix; accepted for both here);
//! - `if /pattern/flags` ... `endif` (or `if !/pattern/`): the rules in
//!   between are tried only when the key matches (nesting allowed).
//!
//! The delimiter need not be `/`: it is the first character of the
//! pattern. Matching is case-insensitive unless the `i` flag toggles it
//! off. `regexp:` flags: `i`, `m` (multi-line), `x` (toggling it would ask
//! for POSIX basic syntax, which is not supported: such a rule is
//! rejected). `pcre:` flags: `i`, `m`, `s` (dot matches newline), `x`
//! (ignore whitespace), `U` (ungreedy), `A` (anchored at the start), and
//! `E`, `X`, which have no effect here (`$` already means the end only).
//! The result may use `$1`, `${1}` or `$(1)` for the text a capture group
//! matched (empty when it did not take part) and `$$` for `$`.
//!
//! DEVIATIONS: the `regex` crate's syntax is close to both POSIX ERE and
//! PCRE but has no back-references or look-around; a pattern that uses
//! them is reported when the table is loaded and its rule skipped.

use regex::{Captures, Regex, RegexBuilder};

use crate::source::logical_lines;

/// Which flavour of table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Regexp,
    Pcre,
}

#[derive(Debug)]
struct Pattern {
    re: Regex,
    negate: bool,
}

impl Pattern {
    fn matches(&self, key: &str) -> bool {
        self.re.is_match(key) != self.negate
    }
}

/// A piece of a result template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Group(usize),
}

#[derive(Debug)]
enum Rule {
    Match {
        first: Pattern,
        second: Option<Pattern>,
        result: Vec<Part>,
    },
    /// The index of the matching `Endif` (or the number of rules when it
    /// is missing).
    If {
        pattern: Pattern,
        endif: usize,
    },
    Endif,
}

/// A parsed table.
#[derive(Debug, Default)]
pub(crate) struct RegexpTable {
    rules: Vec<Rule>,
}

impl RegexpTable {
    /// The result of the first rule that matches `key`.
    pub(crate) fn lookup(&self, key: &str) -> Option<String> {
        let mut i = 0;
        while let Some(rule) = self.rules.get(i) {
            match rule {
                Rule::If { pattern, endif } => {
                    if !pattern.matches(key) {
                        i = *endif;
                    }
                }
                Rule::Endif => {}
                Rule::Match {
                    first,
                    second,
                    result,
                } => {
                    let hit = if first.negate {
                        (!first.re.is_match(key)).then_some(None)
                    } else {
                        first.re.captures(key).map(Some)
                    };
                    if let Some(caps) = hit
                        && second.as_ref().is_none_or(|p| p.matches(key))
                    {
                        return Some(expand(result, caps.as_ref()));
                    }
                }
            }
            i += 1;
        }
        None
    }
}

fn expand(parts: &[Part], caps: Option<&Captures<'_>>) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Group(n) => {
                if let Some(m) = caps.and_then(|c| c.get(*n)) {
                    out.push_str(m.as_str());
                }
            }
        }
    }
    out
}

/// Parses a whole table; warnings are `ORIGIN, line N: ...`.
pub(crate) fn parse(text: &str, origin: &str, flavor: Flavor) -> (RegexpTable, Vec<String>) {
    let mut warnings = Vec::new();
    let mut rules = Vec::new();
    // Indexes (into `rules`) of the open `if`s, with their line numbers.
    let mut open_ifs: Vec<(usize, usize)> = Vec::new();
    for line in logical_lines(text, origin, &mut warnings) {
        let at = |m: String| format!("{origin}, line {}: {m}", line.number);
        match parse_rule(&line.text, flavor) {
            Ok(Parsed::Match(rule)) => rules.push(rule),
            Ok(Parsed::If(pattern)) => {
                open_ifs.push((rules.len(), line.number));
                rules.push(Rule::If { pattern, endif: 0 });
            }
            Ok(Parsed::Endif) => match open_ifs.pop() {
                Some((index, _)) => {
                    let endif = rules.len();
                    if let Some(Rule::If { endif: e, .. }) = rules.get_mut(index) {
                        *e = endif;
                    }
                    rules.push(Rule::Endif);
                }
                None => warnings.push(at("ignoring ENDIF without matching IF".into())),
            },
            Err(message) => warnings.push(at(message)),
        }
    }
    let end = rules.len();
    for (index, number) in open_ifs {
        warnings.push(format!("{origin}, line {number}: IF has no matching ENDIF"));
        if let Some(Rule::If { endif, .. }) = rules.get_mut(index) {
            *endif = end;
        }
    }
    (RegexpTable { rules }, warnings)
}

enum Parsed {
    Match(Rule),
    If(Pattern),
    Endif,
}

/// Whether `line` starts with the keyword `word` (any case) followed by
/// whitespace or the end; returns what follows.
fn keyword<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let head = line.get(..word.len())?;
    let rest = &line[word.len()..];
    (head.eq_ignore_ascii_case(word) && (rest.is_empty() || rest.starts_with([' ', '\t'])))
        .then_some(rest)
}

fn parse_rule(line: &str, flavor: Flavor) -> Result<Parsed, String> {
    let line = line.trim();
    if let Some(rest) = keyword(line, "endif") {
        if !rest.trim().is_empty() {
            return Err("ignoring extra text after ENDIF".into());
        }
        return Ok(Parsed::Endif);
    }
    if let Some(rest) = keyword(line, "if") {
        let (pattern, rest) = parse_pattern(rest.trim_start(), flavor)?;
        if !rest.trim().is_empty() {
            return Err("ignoring extra text after IF pattern".into());
        }
        return Ok(Parsed::If(pattern));
    }
    let (first, rest) = parse_pattern(line, flavor)?;
    let (second, rest) = if rest.starts_with('!') {
        let (p, r) = parse_pattern(rest, flavor)?;
        (Some(p), r)
    } else {
        (None, rest)
    };
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return Err(format!("unexpected text after pattern: \"{rest}\""));
    }
    let result = parse_result(rest.trim(), &first)?;
    Ok(Parsed::Match(Rule::Match {
        first,
        second,
        result,
    }))
}

/// `[!]DELIM pattern DELIM flags`; returns the pattern and what follows
/// the flags.
fn parse_pattern(text: &str, flavor: Flavor) -> Result<(Pattern, &str), String> {
    let (negate, text) = match text.strip_prefix('!') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, text),
    };
    let mut chars = text.char_indices();
    let delim = match chars.next() {
        Some((_, c)) if !c.is_alphanumeric() && !c.is_whitespace() && c != '\\' => c,
        _ => return Err("expected /pattern/ at start of line".into()),
    };
    let mut source = String::new();
    let mut close = None;
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            match chars.next() {
                // An escaped delimiter stands for itself; every other
                // escape goes to the regex engine as written.
                Some((_, e)) if e == delim && !is_meta(e) => source.push(e),
                Some((_, e)) => {
                    source.push('\\');
                    source.push(e);
                }
                None => break,
            }
        } else if c == delim {
            close = Some(i + c.len_utf8());
            break;
        } else {
            source.push(c);
        }
    }
    let close = close.ok_or_else(|| format!("missing closing delimiter {delim}"))?;
    let after = &text[close..];
    let flag_len = after
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(after.len());
    let (flags, rest) = after.split_at(flag_len);
    let re = build(&source, flags, flavor)?;
    Ok((Pattern { re, negate }, rest))
}

fn is_meta(c: char) -> bool {
    regex::escape(&c.to_string()).len() > c.len_utf8()
}

fn build(source: &str, flags: &str, flavor: Flavor) -> Result<Regex, String> {
    let mut icase = true;
    let mut multi = false;
    let mut dotall = false;
    let mut extended = false;
    let mut ungreedy = false;
    let mut anchored = false;
    for f in flags.chars() {
        match (flavor, f) {
            (_, 'i') => icase = !icase,
            (_, 'm') => multi = !multi,
            (Flavor::Regexp, 'x') => {
                return Err("flag x (POSIX basic regular expressions) is not supported".into());
            }
            (Flavor::Pcre, 's') => dotall = !dotall,
            (Flavor::Pcre, 'x') => extended = !extended,
            (Flavor::Pcre, 'U') => ungreedy = !ungreedy,
            (Flavor::Pcre, 'A') => anchored = true,
            (Flavor::Pcre, 'E' | 'X') => {}
            _ => return Err(format!("unknown regexp option \"{f}\"")),
        }
    }
    let source = if anchored {
        format!(r"\A(?:{source})")
    } else {
        source.to_owned()
    };
    RegexBuilder::new(&source)
        .case_insensitive(icase)
        .multi_line(multi)
        .dot_matches_new_line(dotall)
        .ignore_whitespace(extended)
        .swap_greed(ungreedy)
        .build()
        .map_err(|e| {
            let detail = e.to_string();
            let last = detail.lines().last().unwrap_or("").trim();
            format!("bad regular expression \"{source}\": {last}")
        })
}

/// Splits a result into text and `$n` references, checking the numbers.
fn parse_result(text: &str, first: &Pattern) -> Result<Vec<Part>, String> {
    let groups = first.re.captures_len() - 1;
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        lit.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, consumed) = if let Some(b) = after.strip_prefix('$') {
            lit.push('$');
            rest = b;
            continue;
        } else if let Some(close) = after.strip_prefix(['{', '(']) {
            let end = if after.starts_with('{') { '}' } else { ')' };
            match close.find(end) {
                Some(e) => (&close[..e], e + 2),
                None => return Err(format!("missing '{end}' in \"{text}\"")),
            }
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..len], len)
        };
        if name.is_empty() {
            // A lone `$` stays as it is.
            lit.push('$');
            rest = after;
            continue;
        }
        let n: usize = name
            .parse()
            .map_err(|_| format!("non-numeric replacement index \"{name}\""))?;
        if first.negate {
            return Err(format!("${n} found in negative match replacement text"));
        }
        if n > groups {
            return Err(format!("out of range replacement index \"{n}\""));
        }
        if !lit.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut lit)));
        }
        parts.push(Part::Group(n));
        rest = &after[consumed..];
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        parts.push(Part::Text(lit));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str, flavor: Flavor) -> RegexpTable {
        let (t, w) = parse(text, "/etc/re", flavor);
        assert!(w.is_empty(), "unexpected warnings: {w:?}");
        t
    }

    #[test]
    fn first_match_wins_case_insensitive_by_default() {
        let t = table(
            "/^(.*)@example\\.com$/ $1@example.net\n\
             /^Subject: .*viagra/ REJECT no spam\n\
             /^X-Case: Exact/i WARN exact\n\
             /.*/ fallback\n",
            Flavor::Regexp,
        );
        assert_eq!(
            t.lookup("Joe@EXAMPLE.com").as_deref(),
            Some("Joe@example.net")
        );
        assert_eq!(
            t.lookup("subject: buy VIAGRA").as_deref(),
            Some("REJECT no spam")
        );
        assert_eq!(t.lookup("X-Case: Exact").as_deref(), Some("WARN exact"));
        assert_eq!(t.lookup("x-case: exact").as_deref(), Some("fallback"));
    }

    #[test]
    fn negation_and_double_patterns() {
        let t = table(
            "!/^[a-z]+$/ not-lowercase\n\
             /^a/!/b$/ a-not-b\n\
             /^a/ a-and-b\n",
            Flavor::Regexp,
        );
        assert_eq!(t.lookup("ab1").as_deref(), Some("not-lowercase"));
        assert_eq!(t.lookup("aaa").as_deref(), Some("a-not-b"));
        assert_eq!(t.lookup("aab").as_deref(), Some("a-and-b"));
        assert_eq!(t.lookup("zzz"), None);
    }

    #[test]
    fn if_endif_nest() {
        let t = table(
            "if /@example\\.com$/\n\
             if !/^postmaster@/\n\
             /^(.+)@/ user $1\n\
             endif\n\
             /^postmaster@/ pm\n\
             endif\n\
             /^(.*)$/ other ${1}/$(1) $$5\n",
            Flavor::Regexp,
        );
        assert_eq!(t.lookup("joe@example.com").as_deref(), Some("user joe"));
        assert_eq!(t.lookup("postmaster@example.com").as_deref(), Some("pm"));
        assert_eq!(
            t.lookup("joe@else.org").as_deref(),
            Some("other joe@else.org/joe@else.org $5")
        );
    }

    #[test]
    fn other_delimiters_and_escapes() {
        let t = table(
            "%^/var/(.*)% path $1\n/a\\/b/ slash\n/x\\.y/ dot\n",
            Flavor::Regexp,
        );
        assert_eq!(t.lookup("/var/spool").as_deref(), Some("path spool"));
        assert_eq!(t.lookup("a/b").as_deref(), Some("slash"));
        assert_eq!(t.lookup("x.y").as_deref(), Some("dot"));
        assert_eq!(t.lookup("xzy"), None);
    }

    #[test]
    fn unmatched_optional_group_is_empty() {
        let t = table("/^(a)?(b)$/ [$1][$2]\n", Flavor::Regexp);
        assert_eq!(t.lookup("b").as_deref(), Some("[][b]"));
    }

    #[test]
    fn pcre_flags() {
        let t = table(
            "/^a.b$/s dotall\n/^ x y $/x spaced\n/<(.+)>/U lazy $1\n/b/A anchored\n",
            Flavor::Pcre,
        );
        assert_eq!(t.lookup("a\nb").as_deref(), Some("dotall"));
        assert_eq!(t.lookup("xy").as_deref(), Some("spaced"));
        assert_eq!(t.lookup("<a><b>").as_deref(), Some("lazy a"));
        assert_eq!(t.lookup("bc").as_deref(), Some("anchored"));
        assert_eq!(t.lookup("cb"), None);
    }

    #[test]
    fn bad_lines_are_reported_and_skipped() {
        let (t, w) = parse(
            "/ok/ fine\n\
             /(unclosed/ x\n\
             /a/ $2\n\
             !/b(c)/ $1\n\
             /a/q x\n\
             /no-end x\n\
             endif\n\
             plain text\n\
             /a/x basic\n\
             /$(x)/ $name\n\
             if /z/\n",
            "/etc/re",
            Flavor::Regexp,
        );
        assert_eq!(t.lookup("ok").as_deref(), Some("fine"));
        let expect = [
            (2, "bad regular expression"),
            (3, "out of range replacement index"),
            (4, "negative match replacement"),
            (5, "unknown regexp option"),
            (6, "missing closing delimiter"),
            (7, "ENDIF without matching IF"),
            (8, "expected /pattern/"),
            (9, "flag x"),
            (10, "non-numeric replacement index"),
            (11, "IF has no matching ENDIF"),
        ];
        assert_eq!(w.len(), expect.len(), "{w:?}");
        for (w, (line, text)) in w.iter().zip(expect) {
            assert!(
                w.starts_with(&format!("/etc/re, line {line}: ")) && w.contains(text),
                "{w} (expected line {line}: {text})"
            );
        }
    }
}

//! Small address helpers that respect quoting: an operator inside `"..."`
//! or after a backslash is not an operator (a string-level stand-in for
//! Postfix's `tok822` tokenizer).

/// Byte offsets of the unquoted, unescaped occurrences of `op`.
fn positions(addr: &str, op: char) -> impl Iterator<Item = usize> + '_ {
    let mut quoted = false;
    let mut escaped = false;
    addr.char_indices().filter_map(move |(i, c)| {
        if escaped {
            escaped = false;
            return None;
        }
        match c {
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            _ if c == op && !quoted => return Some(i),
            _ => {}
        }
        None
    })
}

/// The first unquoted `op`.
pub(crate) fn find(addr: &str, op: char) -> Option<usize> {
    positions(addr, op).next()
}

/// The last unquoted `op`.
pub(crate) fn rfind(addr: &str, op: char) -> Option<usize> {
    positions(addr, op).last()
}

/// Removes one trailing dot from the domain, but not from `..` or `@.`
/// (Postfix: "strip trailing dot at end of domain, but not dot-dot or
/// @-dot").
pub(crate) fn strip_trailing_dot(addr: &mut String) {
    if rfind(addr, '@').is_some()
        && addr.ends_with('.')
        && !addr.ends_with("..")
        && !addr.ends_with("@.")
    {
        addr.pop();
    }
}

/// Lowercases the part after the last unquoted `@`.
pub(crate) fn lowercase_domain(addr: &mut String) {
    if let Some(at) = rfind(addr, '@') {
        let domain = addr[at + 1..].to_lowercase();
        addr.truncate(at + 1);
        addr.push_str(&domain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_operators_are_not_operators() {
        assert_eq!(rfind("\"a@b\"@c", '@'), Some(5));
        assert_eq!(find("\"a@b\"@c", '@'), Some(5));
        assert_eq!(find("a\\@b", '@'), None);
        assert_eq!(find("a!b!c", '!'), Some(1));
        assert_eq!(rfind("a%b%c", '%'), Some(3));
    }

    #[test]
    fn trailing_dots() {
        for (a, b) in [
            ("u@d.", "u@d"),
            ("u@d..", "u@d.."),
            ("u@.", "u@."),
            ("u.", "u."),
        ] {
            let mut s = a.to_string();
            strip_trailing_dot(&mut s);
            assert_eq!(s, b);
        }
    }
}

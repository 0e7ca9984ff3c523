//! Addresses on the command line, read the way Postfix `sendmail.c` reads
//! them: each argument is parsed like the value of an RFC 822 address
//! header (`tok822_parse`), so that `"Joe <joe@example.org>"`, comma
//! separated lists and comments work, and each address is turned into
//! Postfix's *internal* form, with quotes removed (`"joe user"@x` becomes
//! `joe user@x`).
//!
//! Words separated by white space outside `<...>` are separate addresses
//! (`sendmail "a@x b@y"` mails both), as sendmail users expect.

/// One token of an address list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Text outside quotes, comments and angle brackets (no white space).
    Atom(String),
    /// A quoted string, unquoted.
    Quoted(String),
    /// The contents of `<...>`, in internal form.
    Angle(String),
    /// White space or a comment: separates words.
    Space,
    /// `,` at the top level.
    Comma,
}

fn tokenize(input: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    let mut atom = String::new();
    let flush = |atom: &mut String, out: &mut Vec<Token>| {
        if !atom.is_empty() {
            out.push(Token::Atom(std::mem::take(atom)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                flush(&mut atom, &mut out);
                let mut q = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                q.push(n);
                            }
                        }
                        _ => q.push(c),
                    }
                }
                out.push(Token::Quoted(q));
            }
            '(' => {
                flush(&mut atom, &mut out);
                let mut depth = 1;
                while let Some(c) = chars.next() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        '\\' => {
                            chars.next();
                        }
                        _ => {}
                    }
                }
                out.push(Token::Space);
            }
            '<' => {
                flush(&mut atom, &mut out);
                let mut inner = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '>' => break,
                        '"' => {
                            while let Some(c) = chars.next() {
                                match c {
                                    '"' => break,
                                    '\\' => {
                                        if let Some(n) = chars.next() {
                                            inner.push(n);
                                        }
                                    }
                                    _ => inner.push(c),
                                }
                            }
                        }
                        c if c.is_whitespace() => {}
                        _ => inner.push(c),
                    }
                }
                out.push(Token::Angle(strip_route(&inner)));
            }
            ',' => {
                flush(&mut atom, &mut out);
                out.push(Token::Comma);
            }
            c if c.is_whitespace() => {
                flush(&mut atom, &mut out);
                out.push(Token::Space);
            }
            _ => atom.push(c),
        }
    }
    flush(&mut atom, &mut out);
    out
}

/// Drops an RFC 822 source route (`@a,@b:user@c` → `user@c`).
fn strip_route(inner: &str) -> String {
    if inner.starts_with('@')
        && let Some((_, rest)) = inner.split_once(':')
    {
        return rest.to_string();
    }
    inner.to_string()
}

/// One comma-separated group: its angle address if it has one (the
/// display name is ignored), else each white-space separated word.
fn group_addresses(group: &[Token], out: &mut Vec<String>) {
    if let Some(angle) = group.iter().find_map(|t| match t {
        Token::Angle(a) => Some(a.clone()),
        _ => None,
    }) {
        out.push(angle);
        return;
    }
    let mut word = String::new();
    let mut quoted = false;
    for token in group {
        match token {
            Token::Atom(a) => word.push_str(a),
            Token::Quoted(q) => {
                word.push_str(q);
                quoted = true;
            }
            Token::Space => {
                if !word.is_empty() || quoted {
                    out.push(std::mem::take(&mut word));
                }
                quoted = false;
            }
            Token::Angle(_) | Token::Comma => {}
        }
    }
    if !word.is_empty() || quoted {
        out.push(word);
    }
}

/// Every address in `input`, in internal form, in order; `<>` gives an
/// empty address.
pub(crate) fn parse_list(input: &str) -> Vec<String> {
    let tokens = tokenize(input);
    let mut out = Vec::new();
    for group in tokens.split(|t| *t == Token::Comma) {
        group_addresses(group, &mut out);
    }
    out
}

/// Recipients from the command line: empty addresses are dropped.
pub(crate) fn recipients(args: &[String]) -> Vec<String> {
    args.iter()
        .flat_map(|a| parse_list(a))
        .filter(|a| !a.is_empty())
        .collect()
}

/// The `-f` sender: the first address, `""` for `<>` or nothing; the flag
/// says whether more than one address was given (Postfix warns "-f option
/// specified malformed sender").
pub(crate) fn sender(input: &str) -> (String, bool) {
    let mut all = parse_list(input);
    let several = all.len() > 1;
    let first = if all.is_empty() {
        String::new()
    } else {
        all.swap_remove(0)
    };
    (first, several)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_listed_addresses() {
        assert_eq!(parse_list("bob@example.org"), ["bob@example.org"]);
        assert_eq!(parse_list("a@x, b@y,c@z"), ["a@x", "b@y", "c@z"]);
        assert_eq!(parse_list("a@x b@y"), ["a@x", "b@y"]);
        assert_eq!(parse_list("  local  "), ["local"]);
        assert!(parse_list("").is_empty());
        assert!(parse_list(" , ").is_empty());
    }

    #[test]
    fn display_names_comments_and_quotes() {
        assert_eq!(
            parse_list("Joe Bloggs <joe@example.org>, \"Doe, Jane\" <jane@x>"),
            ["joe@example.org", "jane@x"]
        );
        assert_eq!(
            parse_list("joe@example.org (Joe Bloggs)"),
            ["joe@example.org"]
        );
        assert_eq!(
            parse_list("\"joe user\"@example.org"),
            ["joe user@example.org"]
        );
        assert_eq!(parse_list("<\"a b\"@x>"), ["a b@x"]);
        assert_eq!(parse_list("<@relay.example:user@x>"), ["user@x"]);
        assert_eq!(parse_list("<>"), [""]);
    }

    #[test]
    fn command_line_recipients_and_sender() {
        let args = vec!["a@x, b@y".to_string(), "<>".into(), "c".into()];
        assert_eq!(recipients(&args), ["a@x", "b@y", "c"]);
        assert_eq!(sender("<>"), (String::new(), false));
        assert_eq!(sender(""), (String::new(), false));
        assert_eq!(sender("Me <me@x>"), ("me@x".to_string(), false));
        assert_eq!(sender("a@x, b@y"), ("a@x".to_string(), true));
    }
}

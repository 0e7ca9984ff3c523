//! Alias and `.forward` right-hand sides (Postfix `aliases(5)`,
//! `tok822`-style splitting in `local/token.c`).

/// One delivery target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// An address to forward to.
    Address(String),
    /// `|command`.
    Command(String),
    /// `/file/name` (mbox) or `/dir/` (Maildir).
    File(String),
    /// `:include:/path`.
    Include(String),
    /// `\user`: the user's mailbox, no alias or `.forward` processing.
    Mailbox(String),
}

/// Splits `text` at commas and newlines outside double quotes; `#` at the
/// start of a line begins a comment.
pub(crate) fn parse(text: &str) -> Vec<Target> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for line in text.lines() {
        if !quoted && line.trim_start().starts_with('#') {
            continue;
        }
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => quoted = !quoted,
                '\\' if quoted => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                ',' if !quoted => {
                    items.push(std::mem::take(&mut cur));
                }
                c => cur.push(c),
            }
        }
        if quoted {
            cur.push('\n');
        } else {
            items.push(std::mem::take(&mut cur));
        }
    }
    items.push(cur);
    items
        .into_iter()
        .filter_map(|s| classify(s.trim()))
        .collect()
}

fn classify(s: &str) -> Option<Target> {
    if s.is_empty() {
        return None;
    }
    Some(if let Some(c) = s.strip_prefix('|') {
        Target::Command(c.trim_start().to_string())
    } else if s.starts_with('/') {
        Target::File(s.to_string())
    } else if let Some(p) = s.strip_prefix(":include:") {
        Target::Include(p.trim().to_string())
    } else if let Some(u) = s.strip_prefix('\\') {
        Target::Mailbox(u.to_lowercase())
    } else {
        let a = s
            .strip_prefix('<')
            .and_then(|a| a.strip_suffix('>'))
            .unwrap_or(s);
        Target::Address(a.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_kinds() {
        let t =
            parse("a@b, \"|cmd -x, y\" , /var/x,\n# comment\n:include:/etc/list\n\\joe, <c@d>,,");
        assert_eq!(
            t,
            vec![
                Target::Address("a@b".into()),
                Target::Command("cmd -x, y".into()),
                Target::File("/var/x".into()),
                Target::Include("/etc/list".into()),
                Target::Mailbox("joe".into()),
                Target::Address("c@d".into()),
            ]
        );
    }
}

//! `cidr:` tables (Postfix `dict_cidr.c`, `cidr_table(5)`): network
//! blocks matched against an IP address key, first match wins.
//!
//! - `address/prefix result`, or `address result` for one host; IPv6
//!   addresses may be written in `[ ]`;
//! - `if address/prefix` ... `endif`, `if !address/prefix` ... `endif`
//!   (nesting allowed): the rules in between apply only to addresses
//!   inside (or, with `!`, outside) the block.
//!
//! A block with bits set beyond its prefix (`10.1.2.3/8`) is reported and
//! skipped, as in Postfix. A key that is not an IP address matches
//! nothing.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::source::logical_lines;

#[derive(Debug, Clone, Copy)]
struct Block {
    net: IpNet,
    negate: bool,
}

impl Block {
    fn matches(&self, addr: IpAddr) -> bool {
        self.net.contains(&addr) != self.negate
    }
}

#[derive(Debug)]
enum Rule {
    Match { block: Block, result: String },
    If { block: Block, endif: usize },
    Endif,
}

/// A parsed table.
#[derive(Debug, Default)]
pub(crate) struct CidrTable {
    rules: Vec<Rule>,
}

impl CidrTable {
    /// The result of the first block that contains `key`.
    pub(crate) fn lookup(&self, key: &str) -> Option<String> {
        let key = key.trim();
        let key = key
            .strip_prefix('[')
            .and_then(|k| k.strip_suffix(']'))
            .unwrap_or(key);
        let addr: IpAddr = key.parse().ok()?;
        let mut i = 0;
        while let Some(rule) = self.rules.get(i) {
            match rule {
                Rule::If { block, endif } => {
                    if !block.matches(addr) {
                        i = *endif;
                    }
                }
                Rule::Endif => {}
                Rule::Match { block, result } => {
                    if block.matches(addr) {
                        return Some(result.clone());
                    }
                }
            }
            i += 1;
        }
        None
    }
}

/// Parses `address[/prefix]`, with optional `[ ]` around the address.
fn parse_block(text: &str) -> Result<Block, String> {
    let (negate, text) = match text.strip_prefix('!') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, text),
    };
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("bad address pattern: \"{text}\""))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match prefix {
        None => max,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("bad net/mask pattern: \"{text}\""))?,
    };
    let net = IpNet::new(ip, len).map_err(|_| format!("bad net/mask pattern: \"{text}\""))?;
    if net.network() != ip {
        return Err(format!(
            "non-null host address bits in \"{text}\", perhaps you should use \"{}/{len}\" instead; skipping this rule",
            net.network()
        ));
    }
    Ok(Block { net, negate })
}

/// Parses a whole table; warnings are `ORIGIN, line N: ...`.
pub(crate) fn parse(text: &str, origin: &str) -> (CidrTable, Vec<String>) {
    let mut warnings = Vec::new();
    let mut rules = Vec::new();
    let mut open_ifs: Vec<(usize, usize)> = Vec::new();
    for line in logical_lines(text, origin, &mut warnings) {
        let at = |m: String| format!("{origin}, line {}: {m}", line.number);
        let text = line.text.trim();
        let (word, rest) = match text.find([' ', '\t']) {
            Some(i) => (&text[..i], text[i..].trim()),
            None => (text, ""),
        };
        if word.eq_ignore_ascii_case("endif") {
            if !rest.is_empty() {
                warnings.push(at("ignoring extra text after ENDIF".into()));
                continue;
            }
            match open_ifs.pop() {
                Some((index, _)) => {
                    let endif = rules.len();
                    if let Some(Rule::If { endif: e, .. }) = rules.get_mut(index) {
                        *e = endif;
                    }
                    rules.push(Rule::Endif);
                }
                None => warnings.push(at("ignoring ENDIF without matching IF".into())),
            }
            continue;
        }
        if word.eq_ignore_ascii_case("if") {
            match parse_block(rest) {
                Ok(block) => {
                    open_ifs.push((rules.len(), line.number));
                    rules.push(Rule::If { block, endif: 0 });
                }
                Err(m) => warnings.push(at(m)),
            }
            continue;
        }
        if word.starts_with('!') {
            warnings.push(at("negation is allowed only after IF".into()));
            continue;
        }
        if rest.is_empty() {
            warnings.push(at("no lookup result".into()));
            continue;
        }
        match parse_block(word) {
            Ok(block) => rules.push(Rule::Match {
                block,
                result: rest.to_owned(),
            }),
            Err(m) => warnings.push(at(m)),
        }
    }
    let end = rules.len();
    for (index, number) in open_ifs {
        warnings.push(format!("{origin}, line {number}: IF has no matching ENDIF"));
        if let Some(Rule::If { endif, .. }) = rules.get_mut(index) {
            *endif = end;
        }
    }
    (CidrTable { rules }, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_wins() {
        let (t, w) = parse(
            "# blocks\n\
             192.168.1.1       host\n\
             192.168.0.0/16    lan\n\
             [2001:db8::]/32   doc6\n\
             2001:db8::1       never\n\
             0.0.0.0/0         any4\n",
            "/etc/c",
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(t.lookup("192.168.1.1").as_deref(), Some("host"));
        assert_eq!(t.lookup("192.168.7.7").as_deref(), Some("lan"));
        assert_eq!(t.lookup("2001:DB8::1").as_deref(), Some("doc6"));
        assert_eq!(t.lookup("[2001:db8::5]").as_deref(), Some("doc6"));
        assert_eq!(t.lookup("10.0.0.1").as_deref(), Some("any4"));
        assert_eq!(t.lookup("::1"), None);
        assert_eq!(t.lookup("not-an-address"), None);
    }

    #[test]
    fn if_blocks() {
        let (t, w) = parse(
            "if 10.0.0.0/8\nif !10.1.0.0/16\n10.0.0.0/8 outer\nendif\n10.1.0.0/16 inner\nendif\n",
            "/etc/c",
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(t.lookup("10.2.3.4").as_deref(), Some("outer"));
        assert_eq!(t.lookup("10.1.3.4").as_deref(), Some("inner"));
        assert_eq!(t.lookup("11.1.3.4"), None);
    }

    #[test]
    fn bad_lines_are_reported_and_skipped() {
        let (t, w) = parse(
            "10.1.2.3/8 bad-bits\n\
             10.0.0.0/33 bad-len\n\
             nonsense x\n\
             10.0.0.0/8\n\
             !10.0.0.0/8 x\n\
             endif\n\
             10.0.0.0/8 good\n",
            "/etc/c",
        );
        assert_eq!(t.lookup("10.9.9.9").as_deref(), Some("good"));
        let expect = [
            (1, "non-null host address bits"),
            (2, "bad net/mask"),
            (3, "bad address pattern"),
            (4, "no lookup result"),
            (5, "negation"),
            (6, "ENDIF without matching IF"),
        ];
        assert_eq!(w.len(), expect.len(), "{w:?}");
        for (w, (line, text)) in w.iter().zip(expect) {
            assert!(
                w.starts_with(&format!("/etc/c, line {line}: ")) && w.contains(text),
                "{w}"
            );
        }
    }
}

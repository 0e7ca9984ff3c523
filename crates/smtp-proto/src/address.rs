//! Envelope addresses: RFC 5321 §4.1.2 `Path`/`Mailbox` syntax, with the
//! RFC 6531 (SMTPUTF8) extensions.
//!
//! ```text
//! Reverse-path   = Path / "<>"
//! Forward-path   = Path
//! Path           = "<" [ A-d-l ":" ] Mailbox ">"
//! A-d-l          = At-domain *( "," At-domain )   ; source route, ignored
//! Mailbox        = Local-part "@" ( Domain / address-literal )
//! Local-part     = Dot-string / Quoted-string
//! ```
//!
//! Parsed values are kept in *internal* form: the local part is unquoted
//! (`"a b"@c` is stored as `a b`), and [`fmt::Display`] quotes it again
//! where needed, like Postfix `quote_821_local`.
//!
//! Leniency, and why it is harmless (Postfix `extract_addr`/`tok822` accept
//! the same):
//! - empty atoms in a dot-string (`a..b@c`, `a.@c`) are accepted; such local
//!   parts are re-quoted on output;
//! - `_` is accepted in domain labels;
//! - local parts up to [`MAX_LOCAL_PART`] octets (RFC 5321 says 64; VERP and
//!   SRS addresses exceed that in practice and Postfix has no limit).
//!
//! Strict where it matters: no control characters, no unbalanced quotes or
//! brackets, DNS label and name length limits, no 8-bit octets unless the
//! caller says SMTPUTF8 is in effect, and no trailing garbage.
//!
//! Postfix counterpart: `smtpd.c:extract_addr`, `global/quote_821_local.c`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// Longest local part accepted, in octets.
pub const MAX_LOCAL_PART: usize = 256;
/// Longest domain accepted, in octets (the DNS limit).
pub const MAX_DOMAIN: usize = 255;
/// Longest path (text between `<` and `>`) accepted, in octets: twice the
/// 256 of RFC 5321 §4.5.3.1.3.
pub const MAX_PATH: usize = 512;
const MAX_LABEL: usize = 63;

/// Why an address was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AddressError {
    /// No address where one was required.
    #[error("empty address")]
    Empty,
    /// Longer than [`MAX_PATH`], [`MAX_LOCAL_PART`] or [`MAX_DOMAIN`].
    #[error("address too long")]
    TooLong,
    /// The local part is not a dot-string or quoted string.
    #[error("bad local part")]
    BadLocalPart,
    /// The domain is not a valid domain name.
    #[error("bad domain")]
    BadDomain,
    /// The address literal in `[...]` is malformed.
    #[error("bad address literal")]
    BadLiteral,
    /// Only a local part, where `local@domain` is required.
    #[error("missing domain")]
    MissingDomain,
    /// The source route (`@a,@b:`) is malformed.
    #[error("bad source route")]
    BadRoute,
    /// Missing `<` or `>`, or text after the `>`.
    #[error("bad path syntax")]
    BadPath,
    /// Non-ASCII text without SMTPUTF8 in effect (RFC 6531).
    #[error("UTF-8 address without SMTPUTF8")]
    Utf8NotAllowed,
}

/// A domain name, checked against RFC 5321 `Domain` syntax (plus U-labels
/// when SMTPUTF8 is in effect).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Domain(String);

impl Domain {
    /// Parses a domain. `utf8` permits non-ASCII labels (RFC 6531 U-labels).
    pub fn parse(input: &str, utf8: bool) -> Result<Self, AddressError> {
        if input.is_empty() {
            return Err(AddressError::BadDomain);
        }
        if input.len() > MAX_DOMAIN {
            return Err(AddressError::TooLong);
        }
        for label in input.split('.') {
            check_label(label, utf8)?;
        }
        Ok(Self(input.to_owned()))
    }

    /// The domain as received (case preserved).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the domain is all ASCII (no U-labels).
    pub fn is_ascii(&self) -> bool {
        self.0.is_ascii()
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_label(label: &str, utf8: bool) -> Result<(), AddressError> {
    let bytes = label.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return Err(AddressError::BadDomain);
    };
    if first == b'-' || last == b'-' {
        return Err(AddressError::BadDomain);
    }
    let mut ascii = true;
    for &b in bytes {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => {}
            0x80.. if utf8 => ascii = false,
            0x80.. => return Err(AddressError::Utf8NotAllowed),
            _ => return Err(AddressError::BadDomain),
        }
    }
    // U-labels are limited by their A-label form, which we don't compute.
    if ascii && bytes.len() > MAX_LABEL {
        return Err(AddressError::BadDomain);
    }
    Ok(())
}

/// An RFC 5321 address literal: `[1.2.3.4]`, `[IPv6:...]` or
/// `[tag:content]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AddressLiteral {
    /// `[General-address-literal]`: a standardized tag other than IPv6.
    General {
        /// The tag before the colon.
        tag: String,
        /// The text after the colon.
        content: String,
    },
    /// `[d.d.d.d]`
    Ipv4(Ipv4Addr),
    /// `[IPv6:...]`
    Ipv6(Ipv6Addr),
}

impl AddressLiteral {
    /// Parses a literal including its square brackets.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let inner = input
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .ok_or(AddressError::BadLiteral)?;
        let Some((tag, content)) = inner.split_once(':') else {
            return parse_ipv4(inner)
                .map(Self::Ipv4)
                .ok_or(AddressError::BadLiteral);
        };
        if tag.eq_ignore_ascii_case("IPv6") {
            // std accepts exactly the RFC 4291 text forms that RFC 5321
            // IPv6-addr lists (full, compressed, with embedded IPv4).
            return content
                .parse::<Ipv6Addr>()
                .map(Self::Ipv6)
                .map_err(|_| AddressError::BadLiteral);
        }
        let tag_ok = !tag.is_empty()
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !tag.ends_with('-')
            && !tag.starts_with('-');
        // dcontent = %d33-90 / %d94-126
        let content_ok =
            !content.is_empty() && content.bytes().all(|b| matches!(b, 33..=90 | 94..=126));
        if tag_ok && content_ok {
            Ok(Self::General {
                tag: tag.to_owned(),
                content: content.to_owned(),
            })
        } else {
            Err(AddressError::BadLiteral)
        }
    }
}

/// RFC 5321 `IPv4-address-literal`: four `Snum`s of 1-3 digits, each at
/// most 255. Leading zeros are legal here (unlike `Ipv4Addr::from_str`).
fn parse_ipv4(input: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = input.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

impl fmt::Display for AddressLiteral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::General { tag, content } => write!(f, "[{tag}:{content}]"),
            Self::Ipv4(a) => write!(f, "[{a}]"),
            Self::Ipv6(a) => write!(f, "[IPv6:{a}]"),
        }
    }
}

/// The part of a mailbox after the `@`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name.
    Domain(Domain),
    /// An address literal.
    Literal(AddressLiteral),
}

impl Host {
    /// Parses a domain or a bracketed address literal.
    pub fn parse(input: &str, utf8: bool) -> Result<Self, AddressError> {
        if input.starts_with('[') {
            AddressLiteral::parse(input).map(Self::Literal)
        } else {
            Domain::parse(input, utf8).map(Self::Domain)
        }
    }

    /// Whether the host is all ASCII.
    pub fn is_ascii(&self) -> bool {
        match self {
            Self::Domain(d) => d.is_ascii(),
            Self::Literal(_) => true,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(d) => d.fmt(f),
            Self::Literal(l) => l.fmt(f),
        }
    }
}

/// A mailbox (`local-part@domain`), in internal (unquoted) form.
///
/// The domain is `None` only for unqualified addresses, which the command
/// parser produces for `RCPT TO:<Postmaster>` (RFC 5321 §4.1.1.3) and, when
/// asked, for other unqualified addresses (Postfix appends `$myorigin`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mailbox {
    local_part: String,
    domain: Option<Host>,
}

impl Mailbox {
    /// Parses `local@domain` (no angle brackets). `utf8` permits non-ASCII
    /// text (SMTPUTF8). An unqualified address is rejected with
    /// [`AddressError::MissingDomain`].
    pub fn parse(input: &str, utf8: bool) -> Result<Self, AddressError> {
        let mailbox = parse_mailbox(input, utf8)?;
        if mailbox.domain.is_none() {
            return Err(AddressError::MissingDomain);
        }
        Ok(mailbox)
    }

    /// Builds a mailbox from parts that were checked elsewhere.
    ///
    /// The local part is checked for control characters, emptiness and
    /// length; anything else is representable through quoting.
    pub fn new(local_part: &str, domain: Option<Host>) -> Result<Self, AddressError> {
        if local_part.is_empty() {
            return Err(AddressError::BadLocalPart);
        }
        if local_part.len() > MAX_LOCAL_PART {
            return Err(AddressError::TooLong);
        }
        if local_part.chars().any(char::is_control) {
            return Err(AddressError::BadLocalPart);
        }
        Ok(Self {
            local_part: local_part.to_owned(),
            domain,
        })
    }

    /// The local part, unquoted.
    pub fn local_part(&self) -> &str {
        &self.local_part
    }

    /// The domain or address literal; `None` for an unqualified address.
    pub fn domain(&self) -> Option<&Host> {
        self.domain.as_ref()
    }

    /// Whether the whole address is ASCII (no SMTPUTF8 needed to relay it).
    pub fn is_ascii(&self) -> bool {
        self.local_part.is_ascii() && self.domain.as_ref().is_none_or(Host::is_ascii)
    }

    /// The internal form, as the queue keeps addresses: the local part
    /// unquoted, `@`, the domain (just the local part when unqualified).
    pub fn internal(&self) -> String {
        match &self.domain {
            Some(d) => format!("{}@{d}", self.local_part),
            None => self.local_part.clone(),
        }
    }

    /// Whether this is the special unqualified `Postmaster` recipient.
    pub fn is_bare_postmaster(&self) -> bool {
        self.domain.is_none() && self.local_part.eq_ignore_ascii_case("postmaster")
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_dot_string(&self.local_part) {
            f.write_str(&self.local_part)?;
        } else {
            f.write_str("\"")?;
            for c in self.local_part.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
        }
        if let Some(domain) = &self.domain {
            write!(f, "@{domain}")?;
        }
        Ok(())
    }
}

/// A reverse-path: the null sender `<>` or a mailbox.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// A mailbox.
    Mailbox(Mailbox),
    /// The null reverse-path `<>`, used for bounces.
    Null,
}

impl Path {
    /// The mailbox, unless this is the null path.
    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            Self::Mailbox(m) => Some(m),
            Self::Null => None,
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mailbox(m) => write!(f, "<{m}>"),
            Self::Null => f.write_str("<>"),
        }
    }
}

/// RFC 5322 `atext`, plus UTF-8 octets (the input is known-valid UTF-8).
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b) || b >= 0x80
}

/// A strict RFC 5321 dot-string: non-empty atoms separated by single dots.
fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(is_atext))
}

/// Splits `<...>` off the start of `input`, honouring quoted strings (a `>`
/// inside a quoted local part does not end the path). Returns the text
/// inside the brackets and the rest after `>`.
pub(crate) fn split_bracketed(input: &str) -> Result<(&str, &str), AddressError> {
    let bytes = input.as_bytes();
    if bytes.first() != Some(&b'<') {
        return Err(AddressError::BadPath);
    }
    let mut in_quote = false;
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quote => i += 1,
            b'"' => in_quote = !in_quote,
            b'>' if !in_quote => return Ok((&input[1..i], &input[i + 1..])),
            _ => {}
        }
        i += 1;
    }
    Err(AddressError::BadPath)
}

/// Parses the text between `<` and `>`: an optional source route (checked,
/// then dropped) and a mailbox, which may be unqualified. The empty string
/// is [`AddressError::Empty`]; callers decide whether `<>` is allowed.
pub(crate) fn parse_path_inner(inner: &str, utf8: bool) -> Result<Mailbox, AddressError> {
    if inner.is_empty() {
        return Err(AddressError::Empty);
    }
    if inner.len() > MAX_PATH {
        return Err(AddressError::TooLong);
    }
    let mailbox = if inner.starts_with('@') {
        strip_route(inner, utf8)?
    } else {
        inner
    };
    parse_mailbox(mailbox, utf8)
}

/// Checks an `A-d-l ":"` prefix and returns what follows the colon.
fn strip_route(input: &str, utf8: bool) -> Result<&str, AddressError> {
    let mut rest = input;
    loop {
        rest = rest.strip_prefix('@').ok_or(AddressError::BadRoute)?;
        // An IPv6 literal contains colons, so find the end of the host first.
        let end = if rest.starts_with('[') {
            rest.find(']')
                .map(|i| i + 1)
                .ok_or(AddressError::BadRoute)?
        } else {
            rest.find([',', ':']).ok_or(AddressError::BadRoute)?
        };
        Host::parse(&rest[..end], utf8).map_err(|e| match e {
            AddressError::Utf8NotAllowed => e,
            _ => AddressError::BadRoute,
        })?;
        rest = &rest[end..];
        if let Some(after) = rest.strip_prefix(':') {
            return Ok(after);
        }
        rest = rest.strip_prefix(',').ok_or(AddressError::BadRoute)?;
    }
}

fn parse_mailbox(input: &str, utf8: bool) -> Result<Mailbox, AddressError> {
    if input.is_empty() {
        return Err(AddressError::Empty);
    }
    if !utf8 && !input.is_ascii() {
        return Err(AddressError::Utf8NotAllowed);
    }
    let bytes = input.as_bytes();
    let mut local = Vec::with_capacity(bytes.len());
    let mut i;
    if bytes[0] == b'"' {
        i = 1;
        loop {
            let Some(&b) = bytes.get(i) else {
                return Err(AddressError::BadLocalPart);
            };
            match b {
                b'"' => {
                    i += 1;
                    break;
                }
                // quoted-pairSMTP = %d92 %d32-126
                b'\\' => match bytes.get(i + 1) {
                    Some(&q @ 32..=126) => {
                        local.push(q);
                        i += 2;
                    }
                    _ => return Err(AddressError::BadLocalPart),
                },
                // qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF-8
                32..=126 | 0x80.. => {
                    local.push(b);
                    i += 1;
                }
                _ => return Err(AddressError::BadLocalPart),
            }
        }
    } else {
        i = 0;
        while let Some(&b) = bytes.get(i) {
            if b == b'@' {
                break;
            }
            if !(is_atext(b) || b == b'.') {
                return Err(AddressError::BadLocalPart);
            }
            local.push(b);
            i += 1;
        }
    }
    if local.is_empty() {
        return Err(AddressError::BadLocalPart);
    }
    if local.len() > MAX_LOCAL_PART {
        return Err(AddressError::TooLong);
    }
    let local_part = String::from_utf8(local).map_err(|_| AddressError::BadLocalPart)?;
    let rest = &input[i..];
    let domain = if rest.is_empty() {
        None
    } else {
        let host = rest.strip_prefix('@').ok_or(AddressError::BadLocalPart)?;
        Some(Host::parse(host, utf8)?)
    };
    Ok(Mailbox { local_part, domain })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbox(s: &str) -> Result<Mailbox, AddressError> {
        Mailbox::parse(s, false)
    }

    #[test]
    fn plain_and_quoted() {
        let m = mbox("user@example.com").unwrap();
        assert_eq!(m.local_part(), "user");
        assert_eq!(m.to_string(), "user@example.com");
        let m = mbox("\"john doe\"@example.com").unwrap();
        assert_eq!(m.local_part(), "john doe");
        assert_eq!(m.to_string(), "\"john doe\"@example.com");
        let m = mbox(r#""a\"b\\c"@x.org"#).unwrap();
        assert_eq!(m.local_part(), r#"a"b\c"#);
        assert_eq!(m.to_string(), r#""a\"b\\c"@x.org"#);
        // Quoting that isn't needed is dropped.
        assert_eq!(mbox("\"abc\"@x.org").unwrap().to_string(), "abc@x.org");
    }

    #[test]
    fn lenient_dots_are_requoted() {
        let m = mbox("a..b@example.com").unwrap();
        assert_eq!(m.to_string(), "\"a..b\"@example.com");
        assert_eq!(Mailbox::parse(&m.to_string(), false).unwrap(), m);
    }

    #[test]
    fn literals() {
        let m = mbox("u@[192.0.2.1]").unwrap();
        assert_eq!(
            m.domain(),
            Some(&Host::Literal(AddressLiteral::Ipv4(Ipv4Addr::new(
                192, 0, 2, 1
            ))))
        );
        let m = mbox("u@[IPv6:2001:db8::1]").unwrap();
        assert_eq!(m.to_string(), "u@[IPv6:2001:db8::1]");
        assert!(mbox("u@[ipv6:::ffff:1.2.3.4]").is_ok());
        assert!(mbox("u@[x-tag:stuff]").is_ok());
        assert_eq!(mbox("u@[010.0.0.1]").unwrap().to_string(), "u@[10.0.0.1]");
        for bad in [
            "u@[256.0.0.1]",
            "u@[1.2.3]",
            "u@[IPv6:zz]",
            "u@[1.2.3.4",
            "u@[]",
        ] {
            assert_eq!(mbox(bad), Err(AddressError::BadLiteral), "{bad}");
        }
    }

    #[test]
    fn bad_addresses() {
        assert_eq!(mbox("user"), Err(AddressError::MissingDomain));
        assert_eq!(mbox("@example.com"), Err(AddressError::BadLocalPart));
        assert_eq!(mbox("a b@example.com"), Err(AddressError::BadLocalPart));
        assert_eq!(mbox("a@b@c"), Err(AddressError::BadDomain));
        assert_eq!(mbox("a@-b.com"), Err(AddressError::BadDomain));
        assert_eq!(mbox("a@b..com"), Err(AddressError::BadDomain));
        assert_eq!(mbox("a@b.com."), Err(AddressError::BadDomain));
        assert_eq!(mbox("\"a@b.com"), Err(AddressError::BadLocalPart));
        assert_eq!(mbox("\"a\"x@b.com"), Err(AddressError::BadLocalPart));
        assert_eq!(mbox("a\u{1}@b.com"), Err(AddressError::BadLocalPart));
        let long_label = format!("a@{}.com", "x".repeat(64));
        assert_eq!(mbox(&long_label), Err(AddressError::BadDomain));
        let long_domain = format!("a@{}", ["abc"; 65].join("."));
        assert_eq!(mbox(&long_domain), Err(AddressError::TooLong));
    }

    #[test]
    fn utf8_only_when_allowed() {
        assert_eq!(
            mbox("jos\u{e9}@example.com"),
            Err(AddressError::Utf8NotAllowed)
        );
        assert_eq!(mbox("a@b\u{fc}cher.de"), Err(AddressError::Utf8NotAllowed));
        let m = Mailbox::parse("jos\u{e9}@b\u{fc}cher.de", true).unwrap();
        assert!(!m.is_ascii());
        assert_eq!(m.to_string(), "jos\u{e9}@b\u{fc}cher.de");
    }

    #[test]
    fn source_routes_are_stripped() {
        let m = parse_path_inner("@a.example,@[1.2.3.4]:user@c.example", false).unwrap();
        assert_eq!(m.to_string(), "user@c.example");
        let m = parse_path_inner("@[IPv6:::1]:user@c.example", false).unwrap();
        assert_eq!(m.to_string(), "user@c.example");
        for bad in ["@a.example:", "@:u@c", "@a..b:u@c", "@a,b:u@c", "@a"] {
            assert!(parse_path_inner(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn brackets_respect_quotes() {
        assert_eq!(
            split_bracketed("<\"a>b\"@c> SIZE=1").unwrap(),
            ("\"a>b\"@c", " SIZE=1")
        );
        assert_eq!(split_bracketed("<a@b"), Err(AddressError::BadPath));
        assert_eq!(split_bracketed("a@b>"), Err(AddressError::BadPath));
    }
}

//! Looking at header lines: syntax, names, the headers cleanup adds, and
//! the addresses of `To:`/`Cc:`/`Bcc:` (Postfix `global/is_header.c`,
//! `global/header_opts.c`, `global/mail_date.c`, and the address parsing
//! of `cleanup_message.c`).
//!
//! mail-parser only *inspects* here: a header is handed to it to read the
//! addresses out, never to produce the bytes that are queued.

use std::time::SystemTime;

use mail_parser::MessageParser;

/// The headers cleanup treats specially (Postfix `HDR_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bcc,
    Cc,
    Date,
    From,
    MessageId,
    Received,
    ResentBcc,
    ResentCc,
    ResentDate,
    ResentFrom,
    ResentMessageId,
    /// Any other `Resent-` header.
    ResentOther,
    ResentTo,
    To,
    Other,
}

impl Kind {
    /// The kind of a header with this name (any case).
    pub(crate) fn of(name: &[u8]) -> Kind {
        let lower = name.to_ascii_lowercase();
        match lower.as_slice() {
            b"bcc" => Kind::Bcc,
            b"cc" => Kind::Cc,
            b"date" => Kind::Date,
            b"from" => Kind::From,
            b"message-id" => Kind::MessageId,
            b"received" => Kind::Received,
            b"resent-bcc" => Kind::ResentBcc,
            b"resent-cc" => Kind::ResentCc,
            b"resent-date" => Kind::ResentDate,
            b"resent-from" => Kind::ResentFrom,
            b"resent-message-id" => Kind::ResentMessageId,
            b"resent-to" => Kind::ResentTo,
            b"to" => Kind::To,
            other if other.starts_with(b"resent-") => Kind::ResentOther,
            _ => Kind::Other,
        }
    }

    /// Whether this is a `Resent-` header.
    pub(crate) fn is_resent(self) -> bool {
        matches!(
            self,
            Kind::ResentBcc
                | Kind::ResentCc
                | Kind::ResentDate
                | Kind::ResentFrom
                | Kind::ResentMessageId
                | Kind::ResentOther
                | Kind::ResentTo
        )
    }

    /// Whether `sendmail -t` takes recipients from this header.
    pub(crate) fn has_recipients(self) -> bool {
        matches!(
            self,
            Kind::To | Kind::Cc | Kind::Bcc | Kind::ResentTo | Kind::ResentCc | Kind::ResentBcc
        )
    }
}

/// The name of a header line: the bytes before the colon, or `None` if the
/// line is not a header (Postfix `is_header_buf`: one or more printable
/// ASCII characters other than the colon, optional blanks, a colon).
pub(crate) fn name(line: &[u8]) -> Option<&[u8]> {
    let end = line
        .iter()
        .position(|&b| !(33..=126).contains(&b) || b == b':')?;
    if end == 0 {
        return None;
    }
    let (name, rest) = line.split_at(end);
    let rest = rest.trim_ascii_start();
    (rest.first() == Some(&b':')).then_some(name)
}

/// Whether a line continues the header before it.
pub(crate) fn is_continuation(line: &[u8]) -> bool {
    matches!(line.first(), Some(b' ' | b'\t'))
}

/// The value of a logical header: after the colon, unfolded and trimmed.
pub(crate) fn value(header: &[u8]) -> String {
    let after = header
        .iter()
        .position(|&b| b == b':')
        .and_then(|i| header.get(i + 1..))
        .unwrap_or_default();
    let text = String::from_utf8_lossy(after);
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The addresses of an address-list header (`To: a, "B" <b@x>, group: c;`).
pub(crate) fn addresses(header: &[u8]) -> Vec<String> {
    // mail-parser parses by header name: present the value as a `To:`
    // header of an otherwise empty message.
    let after = header
        .iter()
        .position(|&b| b == b':')
        .and_then(|i| header.get(i + 1..))
        .unwrap_or_default();
    let mut raw = Vec::with_capacity(after.len() + 8);
    raw.extend_from_slice(b"To:");
    raw.extend_from_slice(after);
    raw.extend_from_slice(b"\n\n");
    let Some(message) = MessageParser::default().parse_headers(&raw) else {
        return Vec::new();
    };
    let Some(list) = message.to() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|a| match (a.address.as_deref(), a.name.as_deref()) {
            (Some(addr), _) => Some(addr),
            // A bare `user` comes back as a name.
            (None, Some(name)) if !name.trim().contains(char::is_whitespace) => Some(name),
            _ => None,
        })
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

/// A date for `Date:` in RFC 5322 form, in the local time zone (a jiff `ZonedDateTime`),
/// with the zone abbreviation as a comment like Postfix `mail_date`:
/// `Tue, 24 Nov 2026 10:00:00 +0100 (CET)`.
pub(crate) fn date(at: SystemTime) -> String {
    let ts = jiff::Timestamp::try_from(at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let zoned = ts.to_zoned_datetime(postern_util::time::local_zone());
    let main = zoned.strftime("%a, %d %b %Y %H:%M:%S %z").to_string();
    let abbrev = zoned.strftime("%Z").to_string();
    if abbrev.is_empty() || abbrev.starts_with(['+', '-']) {
        main
    } else {
        format!("{main} ({abbrev})")
    }
}

/// `Full Name <addr>` for a `From:` header (Postfix `hfrom_format =
/// standard`); the name is quoted when it has characters outside RFC 5322
/// atoms.
pub(crate) fn from_value(addr: &str, full_name: Option<&str>) -> String {
    let addr = if addr.is_empty() {
        "MAILER-DAEMON"
    } else {
        addr
    };
    let Some(name) = full_name.map(str::trim).filter(|n| !n.is_empty()) else {
        return addr.to_string();
    };
    // No line breaks from a submitter's full name into a header.
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    let atom = |c: char| c.is_ascii_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c);
    if name.chars().all(atom) {
        format!("{name} <{addr}>")
    } else {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\" <{addr}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names() {
        assert_eq!(name(b"Subject: hi"), Some(&b"Subject"[..]));
        assert_eq!(name(b"X-Odd :x"), Some(&b"X-Odd"[..]));
        assert_eq!(name(b"Subject"), None);
        assert_eq!(name(b": x"), None);
        assert_eq!(name(b" folded: x"), None);
        assert_eq!(name(b"two words: x"), None);
        assert_eq!(name(b""), None);
    }

    #[test]
    fn values_are_unfolded() {
        assert_eq!(value(b"Message-ID:\n <a@b>"), "<a@b>");
        assert_eq!(value(b"Subject: one\n\ttwo"), "one two");
    }

    #[test]
    fn address_lists() {
        assert_eq!(
            addresses(b"To: a@x.test, \"B, b\" <b@y.test>,\n\tfriends: c@z.test;, joe"),
            ["a@x.test", "b@y.test", "c@z.test", "joe"]
        );
        assert!(addresses(b"To: undisclosed-recipients:;").is_empty());
    }

    #[test]
    fn from_values() {
        assert_eq!(from_value("u@x", None), "u@x");
        assert_eq!(from_value("u@x", Some("Joe User")), "Joe User <u@x>");
        assert_eq!(
            from_value("u@x", Some("Joe Q. User")),
            "\"Joe Q. User\" <u@x>"
        );
        assert_eq!(from_value("", None), "MAILER-DAEMON");
    }

    #[test]
    fn date_has_rfc5322_shape() {
        let d = date(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86400 * 365));
        // "Fri, 01 Jan 1971 00:00:00 +0000" in UTC; the zone varies.
        assert!(d.len() >= 31, "{d}");
        assert_eq!(d.as_bytes().get(3), Some(&b','), "{d}");
    }
}

//! SMTP replies: the [`Reply`] value, its encoder, a streaming
//! [`ReplyParser`] for the client side, the EHLO response builder and
//! parser ([`ehlo`], [`Capabilities`]), and Postfix's standard replies
//! ([`standard`]).
//!
//! Postfix counterparts: `smtpd_chat.c:smtpd_chat_reply` (server side),
//! `smtp/smtp_chat.c:smtp_chat_resp` (client side), `global/dsn_util.c`.

mod ehlo;
mod parser;
pub mod standard;

use std::fmt;

use thiserror::Error;

pub use ehlo::{Capabilities, Extension, ehlo};
pub use parser::{DEFAULT_MAX_REPLY_SIZE, ReplyParser};

/// Longest reply line we emit, including the code and CRLF
/// (RFC 5321 §4.5.3.1.5).
pub const MAX_REPLY_LINE: usize = 512;

/// An RFC 3463 enhanced status code, `class.subject.detail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnhancedStatus {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent).
    pub class: u8,
    /// Subject, 0-999.
    pub subject: u16,
    /// Detail, 0-999.
    pub detail: u16,
}

impl EnhancedStatus {
    /// Builds `class.subject.detail`.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Self {
        Self {
            class,
            subject,
            detail,
        }
    }

    /// Parses `c.s.d` at the very start of `text`, followed by a space or
    /// the end of the text. Returns the code and the length it took
    /// (including one following space).
    pub fn parse_prefix(text: &str) -> Option<(Self, usize)> {
        let bytes = text.as_bytes();
        let class = match bytes.first() {
            Some(&c @ (b'2' | b'4' | b'5')) => c - b'0',
            _ => return None,
        };
        if bytes.get(1) != Some(&b'.') {
            return None;
        }
        let (subject, n1) = digits(&bytes[2..])?;
        let after_subject = 2 + n1;
        if bytes.get(after_subject) != Some(&b'.') {
            return None;
        }
        let (detail, n2) = digits(&bytes[after_subject + 1..])?;
        let end = after_subject + 1 + n2;
        match bytes.get(end) {
            None => Some((Self::new(class, subject, detail), end)),
            Some(b' ') => Some((Self::new(class, subject, detail), end + 1)),
            Some(_) => None,
        }
    }
}

/// One to three ASCII digits.
fn digits(bytes: &[u8]) -> Option<(u16, usize)> {
    let n = bytes
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n == 0 || n > 3 {
        return None;
    }
    let value = bytes[..n]
        .iter()
        .fold(0u16, |acc, &b| acc * 10 + u16::from(b - b'0'));
    Some((value, n))
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// What the first digit of a reply code says (RFC 5321 §4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// 3yz: send more (354, 334).
    Intermediate,
    /// 5yz: do not retry.
    PermanentFailure,
    /// 2yz: done.
    Positive,
    /// 4yz: try again later.
    TransientFailure,
}

/// An SMTP reply: a code, an optional enhanced status code, and one or
/// more lines of text.
///
/// The enhanced status code, when present, is written at the start of
/// every line (RFC 2034 ENHANCEDSTATUSCODES); `lines` hold the text after
/// it. An empty `lines` encodes like a single empty line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reply {
    /// Three-digit reply code, 200-599.
    pub code: u16,
    /// RFC 3463 status code, written on every line.
    pub enhanced: Option<EnhancedStatus>,
    /// Text lines, without code, status code or CRLF.
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: u16, enhanced: Option<EnhancedStatus>, text: impl Into<String>) -> Self {
        Self {
            code,
            enhanced,
            lines: vec![text.into()],
        }
    }

    /// A one-line reply with an enhanced status code.
    pub fn with_status(code: u16, status: EnhancedStatus, text: impl Into<String>) -> Self {
        Self::new(code, Some(status), text)
    }

    /// Appends a line (builder style).
    #[must_use]
    pub fn line(mut self, text: impl Into<String>) -> Self {
        self.lines.push(text.into());
        self
    }

    /// What the reply code class means.
    pub fn severity(&self) -> Severity {
        match self.code / 100 {
            2 => Severity::Positive,
            3 => Severity::Intermediate,
            4 => Severity::TransientFailure,
            _ => Severity::PermanentFailure,
        }
    }

    /// Whether the server closes the connection after sending this reply
    /// (221, 421, 521).
    pub fn closes_connection(&self) -> bool {
        matches!(self.code, 221 | 421 | 521)
    }

    /// The text of all lines joined by a space, for logs (Postfix logs
    /// multi-line replies this way).
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }

    /// Appends the wire form to `out`: `250-...` continuation lines, a
    /// final `250 ...` line, each ending in CRLF, each with the enhanced
    /// status code.
    ///
    /// Control characters in the text are replaced with `?` (Postfix
    /// `printable()`), so a reply can never inject a line break, and each
    /// line is cut to [`MAX_REPLY_LINE`] octets at a character boundary.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let empty = [String::new()];
        let lines: &[String] = if self.lines.is_empty() {
            &empty
        } else {
            &self.lines
        };
        let code = self.code.min(999);
        for (i, text) in lines.iter().enumerate() {
            let start = out.len();
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.extend_from_slice(format!("{code:03}").as_bytes());
            let mut wrote_sep = false;
            if let Some(status) = self.enhanced {
                out.push(sep as u8);
                wrote_sep = true;
                out.extend_from_slice(status.to_string().as_bytes());
            }
            if !text.is_empty() {
                out.push(if wrote_sep { b' ' } else { sep as u8 });
                wrote_sep = true;
                let budget = MAX_REPLY_LINE.saturating_sub(out.len() - start + 2);
                push_printable(out, text, budget);
            }
            if !wrote_sep && sep == '-' {
                out.push(b'-');
            }
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Parses exactly one complete reply (all lines, CRLF-terminated).
    pub fn parse(input: &[u8]) -> Result<Self, ReplyError> {
        let mut parser = ReplyParser::new(DEFAULT_MAX_REPLY_SIZE);
        parser.feed(input);
        let reply = parser.next_reply().ok_or(ReplyError::Incomplete)??;
        if parser.has_buffered() {
            return Err(ReplyError::TrailingData);
        }
        Ok(reply)
    }
}

/// Copies `text` with control characters replaced by `?`, stopping before
/// `budget` octets would be exceeded.
fn push_printable(out: &mut Vec<u8>, text: &str, budget: usize) {
    let mut used = 0;
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let c = if c.is_control() { '?' } else { c };
        let encoded = c.encode_utf8(&mut buf).as_bytes();
        if used + encoded.len() > budget {
            break;
        }
        used += encoded.len();
        out.extend_from_slice(encoded);
    }
}

impl fmt::Display for Reply {
    /// `550 5.1.1 text` with multi-line text joined by spaces (log form).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.code)?;
        if let Some(status) = self.enhanced {
            write!(f, " {status}")?;
        }
        let text = self.text();
        if !text.is_empty() {
            write!(f, " {text}")?;
        }
        Ok(())
    }
}

/// Why server reply bytes could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The input ended before the last line of the reply.
    #[error("incomplete reply")]
    Incomplete,
    /// Lines of one multi-line reply carry different codes.
    #[error("inconsistent reply codes in multi-line reply")]
    InconsistentCode,
    /// A line does not start with a valid three-digit code followed by
    /// space, hyphen or end of line.
    #[error("malformed reply line")]
    Malformed,
    /// More bytes followed the complete reply.
    #[error("data after reply")]
    TrailingData,
    /// A line or the whole reply exceeded the configured limit.
    #[error("reply too long")]
    TooLong,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_multiline_with_status_on_every_line() {
        let r = Reply::with_status(250, EnhancedStatus::new(2, 0, 0), "first")
            .line("second")
            .line("third");
        assert_eq!(
            r.to_bytes(),
            b"250-2.0.0 first\r\n250-2.0.0 second\r\n250 2.0.0 third\r\n"
        );
        assert_eq!(r.to_string(), "250 2.0.0 first second third");
    }

    #[test]
    fn encodes_without_status_and_empty_text() {
        assert_eq!(
            Reply::new(220, None, "mx ESMTP").to_bytes(),
            b"220 mx ESMTP\r\n"
        );
        assert_eq!(Reply::new(250, None, "").to_bytes(), b"250\r\n");
        assert_eq!(
            Reply::with_status(250, EnhancedStatus::new(2, 0, 0), "").to_bytes(),
            b"250 2.0.0\r\n"
        );
        let r = Reply {
            code: 250,
            enhanced: None,
            lines: vec![String::new(), String::new()],
        };
        assert_eq!(r.to_bytes(), b"250-\r\n250\r\n");
    }

    #[test]
    fn encoder_neuters_control_characters_and_long_lines() {
        let r = Reply::new(550, None, "a\r\nMAIL FROM:<x>");
        assert_eq!(r.to_bytes(), b"550 a??MAIL FROM:<x>\r\n");
        let r = Reply::with_status(550, EnhancedStatus::new(5, 0, 0), "\u{e9}".repeat(600));
        let bytes = r.to_bytes();
        assert!(bytes.len() <= MAX_REPLY_LINE);
        assert!(bytes.ends_with(b"\r\n"));
        assert!(std::str::from_utf8(&bytes).is_ok());
    }

    #[test]
    fn enhanced_prefix() {
        assert_eq!(
            EnhancedStatus::parse_prefix("5.1.1 <a>: x"),
            Some((EnhancedStatus::new(5, 1, 1), 6))
        );
        assert_eq!(
            EnhancedStatus::parse_prefix("2.0.0"),
            Some((EnhancedStatus::new(2, 0, 0), 5))
        );
        assert_eq!(
            EnhancedStatus::parse_prefix("4.7.27 x"),
            Some((EnhancedStatus::new(4, 7, 27), 7))
        );
        for bad in ["3.0.0 x", "5.1 x", "5.1.1x", "5.1234.1 x", "x", ""] {
            assert_eq!(EnhancedStatus::parse_prefix(bad), None, "{bad}");
        }
    }

    #[test]
    fn parse_one() {
        let r = Reply::parse(b"250-mx.example\r\n250 PIPELINING\r\n").unwrap();
        assert_eq!(r.lines, ["mx.example", "PIPELINING"]);
        assert_eq!(Reply::parse(b"250 ok"), Err(ReplyError::Incomplete));
        assert_eq!(
            Reply::parse(b"250 ok\r\n250 again\r\n"),
            Err(ReplyError::TrailingData)
        );
    }
}

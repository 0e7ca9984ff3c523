//! Streaming parser for server replies (the SMTP/LMTP client side).
//!
//! Feed bytes as they arrive; take complete replies one at a time, which
//! also works for pipelined replies that arrive in one read. Lines may end
//! in CRLF or, leniently, a bare LF (Postfix `smtp_get` accepts both).
//!
//! Checks: every line starts with the same three-digit code (first digit
//! 2-5), followed by `-` (more lines follow), a space, or the end of the
//! line. A line longer than the line limit or a reply larger than the size
//! limit is an error; after any error the rest of the broken reply is
//! skipped line by line, so the next reply can still be read, although a
//! client will normally give up on the session.
//!
//! The enhanced status code is taken from the first line when its class
//! matches the reply code's first digit (RFC 3463 §2), and stripped from
//! every line that carries the same code.

use super::{EnhancedStatus, Reply, ReplyError};
use crate::framing::{Framed, LineBuffer};

/// Default cap on the size of one reply (all lines), in octets.
pub const DEFAULT_MAX_REPLY_SIZE: usize = 64 * 1024;
/// Longest reply line accepted, excluding CRLF. RFC 5321 says 512
/// including CRLF; real servers exceed that, Postfix reads up to 2048.
const MAX_LINE: usize = 2048;

/// Streaming reply parser; see the module documentation.
#[derive(Debug)]
pub struct ReplyParser {
    lines: LineBuffer,
    max_size: usize,
    code: Option<u16>,
    size: usize,
    texts: Vec<String>,
    /// Skipping the remaining lines of a reply that failed.
    skipping: bool,
}

impl ReplyParser {
    /// A parser that rejects replies larger than `max_size` octets.
    pub fn new(max_size: usize) -> Self {
        Self {
            lines: LineBuffer::new(MAX_LINE.min(max_size)),
            max_size,
            code: None,
            size: 0,
            texts: Vec::new(),
            skipping: false,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.lines.feed(bytes);
    }

    /// Whether unparsed bytes (a partial line, or lines of a reply not yet
    /// complete) are buffered. After a final reply such as the one to
    /// QUIT, buffered bytes mean the server sent more than it should.
    pub fn has_buffered(&self) -> bool {
        !self.lines.buffered().is_empty() || self.code.is_some() || self.lines.is_draining()
    }

    /// The next complete reply, an error, or `None` if more bytes are
    /// needed.
    pub fn next_reply(&mut self) -> Option<Result<Reply, ReplyError>> {
        loop {
            let line = match self.lines.next_line()? {
                Framed::Line(line, _) => line,
                Framed::TooLong => {
                    if self.skipping {
                        continue;
                    }
                    self.reset(false);
                    return Some(Err(ReplyError::TooLong));
                }
            };
            let parsed = parse_line(line);
            if self.skipping {
                // Resynchronise after the last line of the broken reply.
                if !matches!(parsed, Some((_, true, _))) {
                    self.skipping = false;
                }
                continue;
            }
            let Some((code, more, text)) = parsed else {
                self.reset(false);
                return Some(Err(ReplyError::Malformed));
            };
            if self.code.is_some_and(|c| c != code) {
                self.reset(more);
                return Some(Err(ReplyError::InconsistentCode));
            }
            self.size += line.len() + 2;
            if self.size > self.max_size {
                self.reset(more);
                return Some(Err(ReplyError::TooLong));
            }
            self.code = Some(code);
            self.texts.push(printable(text));
            if !more {
                return Some(Ok(self.finish(code)));
            }
        }
    }

    /// Drops the partial reply. `skip_rest` says the failing line was a
    /// continuation line, so the rest of that reply must be skipped.
    fn reset(&mut self, skip_rest: bool) {
        self.skipping = skip_rest;
        self.code = None;
        self.size = 0;
        self.texts.clear();
    }

    fn finish(&mut self, code: u16) -> Reply {
        let mut lines = std::mem::take(&mut self.texts);
        self.code = None;
        self.size = 0;
        let class = u8::try_from(code / 100).unwrap_or(0);
        let enhanced = lines
            .first()
            .and_then(|first| EnhancedStatus::parse_prefix(first))
            .filter(|(status, _)| status.class == class)
            .map(|(status, _)| status);
        if let Some(status) = enhanced {
            for line in &mut lines {
                if let Some((s, len)) = EnhancedStatus::parse_prefix(line)
                    && s == status
                {
                    line.drain(..len);
                }
            }
        }
        Reply {
            code,
            enhanced,
            lines,
        }
    }
}

/// Splits `250-text` into (250, true, "text").
fn parse_line(line: &[u8]) -> Option<(u16, bool, &[u8])> {
    let code = match line.get(..3)? {
        &[a @ b'2'..=b'5', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return None,
    };
    match line.get(3) {
        None => Some((code, false, &[])),
        Some(b' ') => Some((code, false, &line[4..])),
        Some(b'-') => Some((code, true, &line[4..])),
        Some(_) => None,
    }
}

/// Lossy UTF-8 with control characters replaced by `?`.
fn printable(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Vec<Result<Reply, ReplyError>> {
        let mut p = ReplyParser::new(DEFAULT_MAX_REPLY_SIZE);
        p.feed(input);
        std::iter::from_fn(|| p.next_reply()).collect()
    }

    #[test]
    fn rfc5321_ehlo_example() {
        // RFC 5321 §D.1 style EHLO response.
        let r = parse_all(
            b"250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n",
        );
        let r = r[0].as_ref().unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.enhanced, None);
        assert_eq!(r.lines.len(), 5);
        assert_eq!(r.lines[0], "foo.com greets bar.com");
    }

    #[test]
    fn extracts_enhanced_status() {
        let r = parse_all(
            b"550-5.1.1 <x@y>: Recipient address rejected:\r\n550 5.1.1 User unknown\r\n",
        );
        let r = r[0].as_ref().unwrap();
        assert_eq!(r.enhanced, Some(EnhancedStatus::new(5, 1, 1)));
        assert_eq!(
            r.lines,
            ["<x@y>: Recipient address rejected:", "User unknown"]
        );
        // A status of the wrong class is text, not a status code.
        let r = parse_all(b"250 5.0.0 odd\r\n");
        assert_eq!(r[0].as_ref().unwrap().enhanced, None);
        assert_eq!(r[0].as_ref().unwrap().lines, ["5.0.0 odd"]);
    }

    #[test]
    fn pipelined_replies_split_anywhere() {
        let input: &[u8] = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\n";
        for split in 0..input.len() {
            let mut p = ReplyParser::new(DEFAULT_MAX_REPLY_SIZE);
            let mut got = Vec::new();
            for part in [&input[..split], &input[split..]] {
                p.feed(part);
                while let Some(r) = p.next_reply() {
                    got.push(r.unwrap().code);
                }
            }
            assert_eq!(got, [250, 250, 354]);
            assert!(!p.has_buffered());
        }
    }

    #[test]
    fn errors_and_resynchronisation() {
        let r = parse_all(b"250-a\r\n251 b\r\n220 ok\r\n");
        assert_eq!(r[0], Err(ReplyError::InconsistentCode));
        assert_eq!(r[1].as_ref().unwrap().code, 220);
        let r = parse_all(b"hello\r\n250 ok\r\n");
        assert_eq!(r[0], Err(ReplyError::Malformed));
        assert_eq!(r[1].as_ref().unwrap().code, 250);
        assert_eq!(parse_all(b"25x ok\r\n")[0], Err(ReplyError::Malformed));
        assert_eq!(parse_all(b"199 ok\r\n")[0], Err(ReplyError::Malformed));
        assert_eq!(parse_all(b"250+ok\r\n")[0], Err(ReplyError::Malformed));
        // "250" alone is a valid last line with no text.
        assert_eq!(parse_all(b"250\r\n")[0].as_ref().unwrap().lines, [""]);
    }

    #[test]
    fn size_limits() {
        let mut p = ReplyParser::new(100);
        let mut input = Vec::new();
        for _ in 0..20 {
            input.extend_from_slice(b"250-0123456789\r\n");
        }
        input.extend_from_slice(b"250 end\r\n221 bye\r\n");
        p.feed(&input);
        assert_eq!(p.next_reply(), Some(Err(ReplyError::TooLong)));
        assert_eq!(p.next_reply().unwrap().unwrap().code, 221);
        assert_eq!(p.next_reply(), None);

        let mut p = ReplyParser::new(DEFAULT_MAX_REPLY_SIZE);
        p.feed(&[b'x'; 5000]);
        assert_eq!(p.next_reply(), None);
        p.feed(b"\r\n250 ok\r\n");
        assert_eq!(p.next_reply(), Some(Err(ReplyError::TooLong)));
        assert_eq!(p.next_reply().unwrap().unwrap().code, 250);
    }
}

//! Line framing shared by the command receiver and the reply parser.
//!
//! Bytes are appended with [`LineBuffer::feed`] and complete lines taken
//! with [`LineBuffer::next_line`]. A line longer than the limit is dropped
//! and the rest of it is drained up to its LF without being stored, so the
//! framing survives (Stalwart `DummyLineReceiver`, imap-codec "poisoned"
//! messages); the caller then gets a single [`Framed::TooLong`] in the
//! position of that line.

use memchr::memchr;

/// How a line ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LineEnding {
    /// A bare `<LF>` without `<CR>` before it (non-standard; see Postfix
    /// `smtpd_forbid_bare_newline`).
    BareLf,
    /// The standard `<CR><LF>`.
    Crlf,
}

/// One framing result.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Framed<'a> {
    /// A complete line without its line ending.
    Line(&'a [u8], LineEnding),
    /// A line longer than the limit was dropped.
    TooLong,
}

#[derive(Debug)]
pub(crate) struct LineBuffer {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes.
    pos: usize,
    /// Bytes in `buf[pos..scanned]` are known to contain no LF.
    scanned: usize,
    /// Longest line content accepted, excluding the line ending.
    limit: usize,
    /// Dropping an overlong line until its LF arrives.
    draining: bool,
    /// An overlong line has ended and must be reported.
    report_too_long: bool,
}

impl LineBuffer {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            limit,
            draining: false,
            report_too_long: false,
        }
    }

    pub(crate) fn feed(&mut self, mut input: &[u8]) {
        if self.draining {
            let Some(lf) = memchr(b'\n', input) else {
                return;
            };
            self.draining = false;
            self.report_too_long = true;
            input = &input[lf + 1..];
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.scanned -= self.pos;
            self.pos = 0;
        }
        self.buf.extend_from_slice(input);
    }

    pub(crate) fn next_line(&mut self) -> Option<Framed<'_>> {
        if self.report_too_long {
            self.report_too_long = false;
            return Some(Framed::TooLong);
        }
        let Some(offset) = memchr(b'\n', &self.buf[self.scanned..]) else {
            self.scanned = self.buf.len();
            // Room for `limit` octets plus a CR that may precede the LF.
            if self.buf.len() - self.pos > self.limit.saturating_add(1) {
                self.buf.truncate(self.pos);
                self.scanned = self.pos;
                self.draining = true;
            }
            return None;
        };
        let lf = self.scanned + offset;
        let start = self.pos;
        self.pos = lf + 1;
        self.scanned = self.pos;
        let (end, ending) = if lf > start && self.buf[lf - 1] == b'\r' {
            (lf - 1, LineEnding::Crlf)
        } else {
            (lf, LineEnding::BareLf)
        };
        if end - start > self.limit {
            return Some(Framed::TooLong);
        }
        Some(Framed::Line(&self.buf[start..end], ending))
    }

    /// Bytes received but not yet returned as lines.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Takes the unconsumed bytes out (for a switch to DATA or BDAT).
    pub(crate) fn take_buffered(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.pos);
        self.clear();
        rest
    }

    /// Forgets all buffered input and any pending state.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.scanned = 0;
        self.draining = false;
        self.report_too_long = false;
    }

    /// Whether an overlong line is being drained or reported.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining || self.report_too_long
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_reports_endings() {
        let mut lb = LineBuffer::new(10);
        lb.feed(b"ab\r\ncd\nef");
        assert_eq!(lb.next_line(), Some(Framed::Line(b"ab", LineEnding::Crlf)));
        assert_eq!(
            lb.next_line(),
            Some(Framed::Line(b"cd", LineEnding::BareLf))
        );
        assert_eq!(lb.next_line(), None);
        lb.feed(b"\r");
        assert_eq!(lb.next_line(), None);
        lb.feed(b"\n");
        assert_eq!(lb.next_line(), Some(Framed::Line(b"ef", LineEnding::Crlf)));
        assert_eq!(lb.buffered(), b"");
    }

    #[test]
    fn limit_is_exclusive_of_line_ending() {
        let mut lb = LineBuffer::new(3);
        lb.feed(b"abc\r\nabcd\r\nxy\n");
        assert_eq!(lb.next_line(), Some(Framed::Line(b"abc", LineEnding::Crlf)));
        assert_eq!(lb.next_line(), Some(Framed::TooLong));
        assert_eq!(
            lb.next_line(),
            Some(Framed::Line(b"xy", LineEnding::BareLf))
        );
    }

    #[test]
    fn overlong_line_is_drained_across_feeds() {
        let mut lb = LineBuffer::new(4);
        lb.feed(b"ok\r\n0123456");
        assert_eq!(lb.next_line(), Some(Framed::Line(b"ok", LineEnding::Crlf)));
        assert_eq!(lb.next_line(), None);
        assert!(lb.is_draining());
        lb.feed(b"789".repeat(1000).as_slice());
        assert_eq!(lb.buffered(), b"");
        lb.feed(b"x\r\nQUIT\r\n");
        assert_eq!(lb.next_line(), Some(Framed::TooLong));
        assert_eq!(
            lb.next_line(),
            Some(Framed::Line(b"QUIT", LineEnding::Crlf))
        );
        assert_eq!(lb.next_line(), None);
    }

    #[test]
    fn take_buffered_hands_over_the_rest() {
        let mut lb = LineBuffer::new(100);
        lb.feed(b"DATA\r\nSubject: x\r\n");
        assert_eq!(
            lb.next_line(),
            Some(Framed::Line(b"DATA", LineEnding::Crlf))
        );
        assert_eq!(lb.take_buffered(), b"Subject: x\r\n");
        assert_eq!(lb.next_line(), None);
    }
}

//! Command line framing (Postfix `smtp_get` for commands, Stalwart
//! `RequestReceiver`).

use memchr::memchr;
use thiserror::Error;

use crate::framing::LineEnding;
use crate::framing::{Framed, LineBuffer};
use crate::reply::{Reply, standard};
use crate::request::{Command, CommandError, ParseOptions};

/// Default command line limit: Postfix `line_length_limit` (2048 octets,
/// excluding the line ending). RFC 5321's minimum is 512 octets including
/// CRLF, i.e. 510 here.
pub const DEFAULT_LINE_LIMIT: usize = 2048;

/// A complete command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line without its line ending.
    pub bytes: &'a [u8],
    /// How the line ended. A bare LF is accepted, as Postfix does; with
    /// `smtpd_forbid_bare_newline = reject` the caller answers
    /// [`standard::bare_lf`] instead of running the command.
    pub ending: LineEnding,
}

impl Line<'_> {
    /// Parses the line as a command.
    pub fn parse(&self, opts: &ParseOptions) -> Result<Command, CommandError> {
        Command::parse_with(self.bytes, opts)
    }
}

/// A command line that was consumed but cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LineError {
    /// The line contained a NUL octet.
    #[error("NUL in command line")]
    Nul,
    /// The line exceeded the limit; it was drained up to its end.
    #[error("command line too long")]
    TooLong,
}

impl LineError {
    /// The reply to send: `500 5.5.2 Error: bad syntax` or
    /// `500 5.5.2 Error: line too long`.
    pub fn reply(&self) -> Reply {
        match self {
            Self::Nul => standard::bad_syntax(),
            Self::TooLong => standard::line_too_long(),
        }
    }
}

/// Frames command lines out of a byte stream.
///
/// Call [`feed`](Self::feed) with each chunk read from the client, then
/// [`next_line`](Self::next_line) until it returns `None`. Memory use is
/// bounded by the line limit plus the size of one chunk, as long as lines
/// are taken after every feed. A line over the limit is dropped, the rest
/// of it drained without being stored, and reported as
/// [`LineError::TooLong`] in its place in the command sequence.
#[derive(Debug)]
pub struct RequestReceiver {
    lines: LineBuffer,
}

impl Default for RequestReceiver {
    fn default() -> Self {
        Self::new(DEFAULT_LINE_LIMIT)
    }
}

impl RequestReceiver {
    /// A receiver accepting lines of up to `line_limit` octets, excluding
    /// the line ending.
    pub fn new(line_limit: usize) -> Self {
        Self {
            lines: LineBuffer::new(line_limit),
        }
    }

    /// Appends bytes read from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.lines.feed(bytes);
    }

    /// The next complete line, an unusable line, or `None` when more input
    /// is needed.
    pub fn next_line(&mut self) -> Option<Result<Line<'_>, LineError>> {
        match self.lines.next_line()? {
            Framed::Line(bytes, ending) => {
                if memchr(0, bytes).is_some() {
                    Some(Err(LineError::Nul))
                } else {
                    Some(Ok(Line { bytes, ending }))
                }
            }
            Framed::TooLong => Some(Err(LineError::TooLong)),
        }
    }

    /// Bytes received after the last line taken.
    pub fn buffered(&self) -> &[u8] {
        self.lines.buffered()
    }

    /// Whether any input is pending: a partial line, unread lines, or an
    /// overlong line being drained. After STARTTLS is accepted this must
    /// be false, or the plaintext must be thrown away with
    /// [`clear`](Self::clear) (Postfix: "At this point there must not be
    /// any pending plaintext"; CVE-2011-0411).
    pub fn has_buffered(&self) -> bool {
        !self.lines.buffered().is_empty() || self.lines.is_draining()
    }

    /// Takes the bytes after the last line taken, for the DATA or BDAT
    /// receiver. The receiver is left empty.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.lines.take_buffered()
    }

    /// Throws away all buffered input (STARTTLS).
    pub fn clear(&mut self) {
        self.lines.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(r: &mut RequestReceiver) -> Vec<Result<(Vec<u8>, LineEnding), LineError>> {
        std::iter::from_fn(|| {
            r.next_line()
                .map(|l| l.map(|l| (l.bytes.to_vec(), l.ending)))
        })
        .collect()
    }

    #[test]
    fn pipelined_commands_come_out_one_by_one() {
        let mut r = RequestReceiver::default();
        r.feed(b"MAIL FROM:<a@b.c>\r\nRCPT TO:<d@e.f>\r\nDATA\r\nSubj");
        let got = collect(&mut r);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], Ok((b"DATA".to_vec(), LineEnding::Crlf)));
        assert_eq!(r.buffered(), b"Subj");
        assert!(r.has_buffered());
    }

    #[test]
    fn bare_lf_is_reported_not_rejected() {
        let mut r = RequestReceiver::default();
        r.feed(b"NOOP\nQUIT\r\n");
        let got = collect(&mut r);
        assert_eq!(got[0], Ok((b"NOOP".to_vec(), LineEnding::BareLf)));
        assert_eq!(got[1], Ok((b"QUIT".to_vec(), LineEnding::Crlf)));
    }

    #[test]
    fn nul_is_rejected_and_framing_kept() {
        let mut r = RequestReceiver::default();
        r.feed(b"NO\0OP\r\nQUIT\r\n");
        let got = collect(&mut r);
        assert_eq!(got[0], Err(LineError::Nul));
        assert_eq!(got[1], Ok((b"QUIT".to_vec(), LineEnding::Crlf)));
        assert_eq!(LineError::Nul.reply().code, 500);
    }

    #[test]
    fn overlong_line_drained_with_framing_kept() {
        let mut r = RequestReceiver::new(512);
        r.feed(b"NOOP\r\nMAIL FROM:<");
        for _ in 0..100 {
            r.feed(&[b'a'; 1000]);
            while r.next_line().is_some() {}
            assert!(r.buffered().len() <= 513);
        }
        r.feed(b"@b.c>\r\nRSET\r\n");
        let got = collect(&mut r);
        assert_eq!(
            got,
            [
                Err(LineError::TooLong),
                Ok((b"RSET".to_vec(), LineEnding::Crlf))
            ]
        );
        assert_eq!(
            LineError::TooLong.reply().to_bytes(),
            b"500 5.5.2 Error: line too long\r\n"
        );
    }

    #[test]
    fn every_split_gives_same_lines() {
        let input: &[u8] = b"EHLO x\r\nMAIL FROM:<a@b.c>\nRCPT TO:<d@e.f>\r\n\r\nQUIT\r\n";
        let mut whole = RequestReceiver::default();
        whole.feed(input);
        let want = collect(&mut whole);
        for split in 0..=input.len() {
            let mut r = RequestReceiver::default();
            let mut got = Vec::new();
            for part in [&input[..split], &input[split..]] {
                r.feed(part);
                got.extend(collect(&mut r));
            }
            assert_eq!(got, want, "split at {split}");
        }
    }
}

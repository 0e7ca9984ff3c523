//! DATA content: dot-unstuffing and the end-of-data sequence
//! (RFC 5321 §4.5.2, §4.1.1.4), safe against SMTP smuggling.
//!
//! The only end of data is `<CR><LF>.<CR><LF>`, where the first CRLF may
//! be the one that ended the DATA command (so content starting with
//! `.<CR><LF>` is empty). `<LF>.<LF>`, `<CR>.<CR><LF>`, `<LF>.<CR><LF>`,
//! `<CR><LF>.<LF>` and every other variant are content, in every
//! [`BareNewline`] mode (CVE-2023-51764 and relatives). A line is a
//! "line" for dot-unstuffing only after a real CRLF: after a bare LF a
//! leading dot is content.
//!
//! The message goes into a caller-supplied `Vec<u8>` in the stored form:
//! line endings as on the wire (CRLF, except bare newlines kept by
//! [`BareNewline::Allow`]/[`BareNewline::Reject`]), without dot-stuffing,
//! including the CRLF that ends the last line, excluding the terminating
//! `.<CR><LF>`. The caller may drain the vector between feeds to stream
//! the message on (Postfix writes records to cleanup as it goes). Content
//! is copied in runs found with `memchr`, not byte by byte.
//!
//! Postfix counterparts: `smtpd.c:data_cmd`, `global/smtp_stream.c`
//! (`smtp_get` with `smtpd_forbid_bare_newline`).

use memchr::memchr2;
use thiserror::Error;

use super::stats::{ContentStats, Scanner};
use crate::reply::{Reply, standard};

/// Postfix's default `message_size_limit`.
pub const DEFAULT_MESSAGE_SIZE_LIMIT: u64 = 10_240_000;

/// What to do with a bare `<LF>` (or `<CR>`) in DATA content, after
/// Postfix `smtpd_forbid_bare_newline`.
///
/// In no mode does a bare newline take part in the end-of-data sequence.
/// A bare `<CR>` is always passed through and only reported in
/// [`ContentStats::bare_cr`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BareNewline {
    /// Store bare LF as received. Unlike Postfix's `no`, end of data still
    /// requires `<CR><LF>.<CR><LF>`.
    Allow,
    /// Store a bare LF as CRLF (Postfix `normalize`, the default since
    /// Postfix 3.9).
    #[default]
    Normalize,
    /// Read to the end of data as with `Allow`, then report
    /// [`DataError::BareLf`] so the whole message is rejected with
    /// `550 5.5.2 Error: bare <LF> received` (Postfix `reject`).
    Reject,
}

/// DATA receiver settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DataOptions {
    /// Bare newline handling.
    pub bare_newline: BareNewline,
    /// Postfix `message_size_limit`: the most content octets stored;
    /// 0 means no limit.
    pub size_limit: u64,
}

impl Default for DataOptions {
    fn default() -> Self {
        Self {
            bare_newline: BareNewline::default(),
            size_limit: DEFAULT_MESSAGE_SIZE_LIMIT,
        }
    }
}

/// Why a message that was read to its end must be rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DataError {
    /// A bare LF with [`BareNewline::Reject`].
    #[error("bare <LF> received")]
    BareLf,
    /// The content exceeded the size limit. What the sink holds is a
    /// truncated prefix and must be discarded.
    #[error("message size exceeds fixed limit")]
    MessageTooBig,
}

impl DataError {
    /// `550 5.5.2 Error: bare <LF> received` or
    /// `552 5.3.4 Message size exceeds fixed limit`.
    pub fn reply(&self) -> Reply {
        match self {
            Self::BareLf => standard::bare_lf(),
            Self::MessageTooBig => standard::message_too_big(),
        }
    }
}

/// The end of DATA was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataEnd {
    /// Octets of the last input slice consumed, up to and including the
    /// terminator. The rest of that slice is the next command.
    pub consumed: usize,
    /// Why to reject the message, if at all.
    pub error: Option<DataError>,
    /// What the content contained.
    pub stats: ContentStats,
}

/// Result of one [`DataReceiver::feed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataProgress {
    /// The end of data was found.
    Done(DataEnd),
    /// All input consumed; the end of data has not been seen yet.
    NeedMore,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A `<CR>` was seen and not yet emitted.
    Cr,
    /// The terminator was found.
    Done,
    /// `.` at the start of a line.
    Dot,
    /// `.<CR>` at the start of a line.
    DotCr,
    /// Inside a line.
    InLine,
    /// Just after `<CR><LF>`, or at the start of the content.
    LineStart,
}

/// Reads DATA content; see the module documentation.
#[derive(Clone, Debug)]
pub struct DataReceiver {
    opts: DataOptions,
    state: State,
    scanner: Scanner,
    stored: u64,
    too_big: bool,
    consumed_total: u64,
}

impl DataReceiver {
    /// A receiver for one message, positioned just after the CRLF that
    /// ended the DATA command.
    pub fn new(opts: DataOptions) -> Self {
        Self {
            opts,
            state: State::LineStart,
            scanner: Scanner::new(),
            stored: 0,
            too_big: false,
            consumed_total: 0,
        }
    }

    /// Octets read from the wire so far, terminator included (for logs
    /// such as Postfix's "lost connection after DATA (n bytes)").
    pub fn wire_bytes(&self) -> u64 {
        self.consumed_total
    }

    /// Processes `input`, appending content to `out`. After
    /// [`DataProgress::Done`] further calls consume nothing and report
    /// `Done` again.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> DataProgress {
        if self.state == State::Done {
            return DataProgress::Done(self.end(0));
        }
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::InLine => match memchr2(b'\r', b'\n', &input[i..]) {
                    None => {
                        self.emit(&input[i..], out);
                        i = input.len();
                    }
                    Some(offset) => {
                        let at = i + offset;
                        if input[at] == b'\n' {
                            self.emit(&input[i..at], out);
                            self.bare_lf(out);
                            i = at + 1;
                        } else if input.get(at + 1) == Some(&b'\n') {
                            self.emit(&input[i..at + 2], out);
                            self.state = State::LineStart;
                            i = at + 2;
                        } else {
                            self.emit(&input[i..at], out);
                            self.state = State::Cr;
                            i = at + 1;
                        }
                    }
                },
                State::Cr => {
                    if input[i] == b'\n' {
                        self.emit(b"\r\n", out);
                        self.state = State::LineStart;
                        i += 1;
                    } else {
                        // Bare CR: content. The current octet is looked at
                        // again in the InLine state.
                        self.emit(b"\r", out);
                        self.state = State::InLine;
                    }
                }
                State::LineStart => {
                    if input[i] == b'.' {
                        self.state = State::Dot;
                        i += 1;
                    } else {
                        self.state = State::InLine;
                    }
                }
                State::Dot => {
                    if input[i] == b'\r' {
                        self.state = State::DotCr;
                        i += 1;
                    } else {
                        // A stuffed dot: drop it, keep the rest of the line.
                        self.state = State::InLine;
                    }
                }
                State::DotCr => {
                    if input[i] == b'\n' {
                        self.state = State::Done;
                        i += 1;
                        self.consumed_total += i as u64;
                        return DataProgress::Done(self.end(i));
                    }
                    // `.<CR>x`: the dot was stuffing, the CR is pending.
                    self.state = State::Cr;
                }
                State::Done => break,
            }
        }
        self.consumed_total += i as u64;
        DataProgress::NeedMore
    }

    fn bare_lf(&mut self, out: &mut Vec<u8>) {
        if self.opts.bare_newline == BareNewline::Normalize {
            self.scanner.note_bare_lf();
            self.emit(b"\r\n", out);
        } else {
            self.emit(b"\n", out);
        }
    }

    fn emit(&mut self, run: &[u8], out: &mut Vec<u8>) {
        self.scanner.scan(run);
        if self.too_big {
            return;
        }
        let len = run.len() as u64;
        let limit = self.opts.size_limit;
        if limit > 0 && self.stored + len > limit {
            let room = usize::try_from(limit - self.stored).unwrap_or(run.len());
            out.extend_from_slice(&run[..room.min(run.len())]);
            self.stored = limit;
            self.too_big = true;
        } else {
            out.extend_from_slice(run);
            self.stored += len;
        }
    }

    fn end(&self, consumed: usize) -> DataEnd {
        let stats = self.scanner.finished();
        let error = if self.opts.bare_newline == BareNewline::Reject && stats.bare_lf {
            Some(DataError::BareLf)
        } else if self.too_big {
            Some(DataError::MessageTooBig)
        } else {
            None
        };
        DataEnd {
            consumed,
            error,
            stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(opts: DataOptions, parts: &[&[u8]]) -> (Vec<u8>, Option<DataEnd>) {
        let mut r = DataReceiver::new(opts);
        let mut out = Vec::new();
        for part in parts {
            if let DataProgress::Done(end) = r.feed(part, &mut out) {
                return (out, Some(end));
            }
        }
        (out, None)
    }

    fn all(input: &[u8]) -> (Vec<u8>, Option<DataEnd>) {
        run(DataOptions::default(), &[input])
    }

    #[test]
    fn dot_unstuffing() {
        let (out, end) = all(b"hi\r\n..\r\n.a\r\n...b\r\n\r\n.\r\nNEXT");
        assert_eq!(out, b"hi\r\n.\r\na\r\n..b\r\n\r\n");
        assert_eq!(end.unwrap().consumed, 23);
    }

    #[test]
    fn terminator_right_after_data_command() {
        let (out, end) = all(b".\r\nQUIT\r\n");
        assert_eq!(out, b"");
        assert_eq!(end.unwrap().consumed, 3);
    }

    #[test]
    fn dot_at_start_of_content_is_unstuffed() {
        let (out, _) = all(b"..x\r\n.\r\n");
        assert_eq!(out, b".x\r\n");
    }

    /// Every smuggling variant, split at every position across two feeds,
    /// must stay content; the real terminator that follows must end it.
    #[test]
    fn smuggling_variants_never_end_data() {
        let variants: [&[u8]; 12] = [
            b"\n.\n",
            b"\r.\r",
            b"\r\n.\n",
            b"\n.\r\n",
            b"\r\n.\r",
            b"\r.\r\n",
            b"\n.\r",
            b"\r.\n",
            b"\r\n.\r\r\n",
            b"\r\n.\n\r\n",
            b"\r\r\n.\n",
            b"\n\r.\r\n",
        ];
        let smuggled: &[u8] =
            b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n";
        for mode in [
            BareNewline::Allow,
            BareNewline::Normalize,
            BareNewline::Reject,
        ] {
            let opts = DataOptions {
                bare_newline: mode,
                ..DataOptions::default()
            };
            for v in variants {
                let mut input = b"Subject: x\r\n\r\nbody".to_vec();
                input.extend_from_slice(v);
                input.extend_from_slice(smuggled);
                let real_end = input.len() + 5;
                input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
                for split in 0..=input.len() {
                    let (out, end) = run(opts, &[&input[..split], &input[split..]]);
                    let end = end.unwrap_or_else(|| panic!("{mode:?} {v:?} split {split}: no end"));
                    let consumed = if split < real_end {
                        real_end - split
                    } else {
                        real_end
                    };
                    assert_eq!(end.consumed, consumed, "{mode:?} {v:?} split {split}");
                    assert!(
                        out.windows(smuggled.len()).any(|w| w == smuggled),
                        "{mode:?} {v:?} split {split}: smuggled commands must be content"
                    );
                }
            }
        }
    }

    #[test]
    fn real_terminator_split_everywhere() {
        let input: &[u8] = b"a\r\n.\r\nRSET\r\n";
        for split in 0..=input.len() {
            let (out, end) = run(DataOptions::default(), &[&input[..split], &input[split..]]);
            assert_eq!(out, b"a\r\n");
            let end = end.unwrap();
            assert_eq!(end.consumed, if split < 6 { 6 - split } else { 6 });
        }
    }

    #[test]
    fn bare_newline_modes() {
        let input: &[u8] = b"a\nb\r\n.\r\n";
        let mode = |m| DataOptions {
            bare_newline: m,
            ..DataOptions::default()
        };
        let (out, end) = run(mode(BareNewline::Allow), &[input]);
        assert_eq!(out, b"a\nb\r\n");
        assert_eq!(end.as_ref().unwrap().error, None);
        assert!(end.unwrap().stats.bare_lf);
        let (out, end) = run(mode(BareNewline::Normalize), &[input]);
        assert_eq!(out, b"a\r\nb\r\n");
        assert!(end.unwrap().stats.bare_lf);
        let (_, end) = run(mode(BareNewline::Reject), &[input]);
        let err = end.unwrap().error.unwrap();
        assert_eq!(err, DataError::BareLf);
        assert_eq!(
            err.reply().to_bytes(),
            b"550 5.5.2 Error: bare <LF> received\r\n"
        );
        // A dot after a bare LF is content, not stuffing.
        let (out, _) = run(mode(BareNewline::Normalize), &[b"x\n..y\r\n.\r\n"]);
        assert_eq!(out, b"x\r\n..y\r\n");
        // Bare CR passes through in every mode.
        let (out, end) = run(mode(BareNewline::Normalize), &[b"x\ry\r\n.\r\n"]);
        assert_eq!(out, b"x\ry\r\n");
        assert!(end.unwrap().stats.bare_cr);
    }

    #[test]
    fn size_limit_drains_to_terminator() {
        let opts = DataOptions {
            size_limit: 10,
            ..DataOptions::default()
        };
        let mut r = DataReceiver::new(opts);
        let mut out = Vec::new();
        for _ in 0..1000 {
            assert_eq!(
                r.feed(b"0123456789abcdef\r\n", &mut out),
                DataProgress::NeedMore
            );
        }
        assert_eq!(out.len(), 10);
        let DataProgress::Done(end) = r.feed(b".\r\nQUIT\r\n", &mut out) else {
            panic!()
        };
        assert_eq!(end.consumed, 3);
        assert_eq!(end.error, Some(DataError::MessageTooBig));
        assert_eq!(end.stats.size, 18_000);
        assert_eq!(
            end.error.unwrap().reply().to_bytes(),
            b"552 5.3.4 Message size exceeds fixed limit\r\n"
        );
        assert_eq!(r.wire_bytes(), 18_003);
        // Exactly at the limit is fine.
        let opts = DataOptions {
            size_limit: 3,
            ..DataOptions::default()
        };
        let (out, end) = run(opts, &[b"a\r\n.\r\n"]);
        assert_eq!(out, b"a\r\n");
        assert_eq!(end.unwrap().error, None);
    }

    #[test]
    fn stats_and_done_is_sticky() {
        let mut r = DataReceiver::new(DataOptions::default());
        let mut out = Vec::new();
        let DataProgress::Done(end) = r.feed(b"H: \xc3\xa9\0\r\n\r\nbody\r\n.\r\n", &mut out)
        else {
            panic!()
        };
        assert!(end.stats.eight_bit && end.stats.nul_in_header && !end.stats.nul_in_body);
        assert_eq!(end.stats.max_line_length, 6);
        let DataProgress::Done(again) = r.feed(b"more", &mut out) else {
            panic!()
        };
        assert_eq!(again.consumed, 0);
    }
}

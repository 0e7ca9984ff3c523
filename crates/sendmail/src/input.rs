//! Reading the message from standard input into content records, the way
//! Postfix `sendmail.c` does (`rec_streamlf_get` plus its loop):
//!
//! - a line ending in `<LF>` becomes an `N` record without the `<LF>`; a
//!   line longer than `line_length_limit` is cut into `L` pieces; input
//!   that does not end in `<LF>` ends with an `L` record;
//! - `From ` lines (also `>From `) at the very start are dropped, for the
//!   benefit of programs that pass an mbox message;
//! - `<CR>` before `<LF>` is removed as `sendmail_fix_line_endings` says
//!   (`always`, `strict` = only if the first line ends in `<CR><LF>`,
//!   `never`);
//! - a line with only `.` ends the message unless `-i`/`-oi` was given.

use std::io::{self, BufRead};

use postern_wire::RecordType;

/// `sendmail_fix_line_endings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FixEol {
    /// Strip `<CR>` before `<LF>` on every line.
    Always,
    /// Decide on the first line.
    Strict,
    /// Keep `<CR>`.
    Never,
}

impl FixEol {
    /// Parses the parameter value.
    pub(crate) fn parse(text: &str) -> Option<FixEol> {
        match text {
            "always" => Some(FixEol::Always),
            "strict" => Some(FixEol::Strict),
            "never" => Some(FixEol::Never),
            _ => None,
        }
    }
}

/// Reads content records from a message on a byte stream.
#[derive(Debug)]
pub(crate) struct ContentReader<R> {
    input: R,
    max_line: usize,
    strip_cr: Option<bool>,
    dot_ends: bool,
    skip_from: bool,
    prev_cont: bool,
    done: bool,
}

impl<R: BufRead> ContentReader<R> {
    /// A reader cutting lines at `max_line` bytes (at least 1).
    pub(crate) fn new(input: R, max_line: usize, fix: FixEol, dot_ends: bool) -> Self {
        ContentReader {
            input,
            max_line: max_line.max(1),
            strip_cr: match fix {
                FixEol::Always => Some(true),
                FixEol::Never => Some(false),
                FixEol::Strict => None,
            },
            dot_ends,
            skip_from: true,
            prev_cont: false,
            done: false,
        }
    }

    /// One raw piece: `(Normal, line)` for a line that ended in `<LF>`,
    /// `(Cont, piece)` otherwise; `None` at the end of input.
    fn raw(&mut self) -> io::Result<Option<(RecordType, Vec<u8>)>> {
        let mut line = Vec::new();
        loop {
            let buf = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok((!line.is_empty()).then_some((RecordType::Cont, line)));
            }
            let room = self.max_line - line.len();
            let window = buf.get(..room.min(buf.len())).unwrap_or_default();
            if let Some(end) = window.iter().position(|&b| b == b'\n') {
                line.extend_from_slice(window.get(..end).unwrap_or_default());
                self.input.consume(end + 1);
                return Ok(Some((RecordType::Normal, line)));
            }
            let taken = window.len();
            line.extend_from_slice(window);
            self.input.consume(taken);
            if line.len() >= self.max_line {
                // A full piece ends its line only if a line feed follows.
                let next = self.input.fill_buf()?;
                if next.first() == Some(&b'\n') {
                    self.input.consume(1);
                    return Ok(Some((RecordType::Normal, line)));
                }
                return Ok(Some((RecordType::Cont, line)));
            }
        }
    }

    /// The next content record, or `None` at the end of the message.
    pub(crate) fn next_record(&mut self) -> io::Result<Option<(RecordType, Vec<u8>)>> {
        if self.done {
            return Ok(None);
        }
        loop {
            let Some((kind, mut data)) = self.raw()? else {
                self.done = true;
                return Ok(None);
            };
            if kind == RecordType::Normal && self.strip_cr.is_none() {
                self.strip_cr = Some(data.last() == Some(&b'\r'));
            }
            if self.skip_from {
                if kind == RecordType::Normal {
                    let start = data.iter().take_while(|&&b| b == b'>').count();
                    if data.get(start..).is_some_and(|d| d.starts_with(b"From ")) {
                        continue;
                    }
                }
                self.skip_from = false;
            }
            if kind == RecordType::Normal && self.strip_cr == Some(true) {
                while data.last() == Some(&b'\r') {
                    data.pop();
                }
            }
            if self.dot_ends && !self.prev_cont && data == b"." {
                self.done = true;
                return Ok(None);
            }
            self.prev_cont = kind == RecordType::Cont;
            return Ok(Some((kind, data)));
        }
    }
}

/// Header names whose addresses `-t` takes (Postfix `HDR_OPT_EXTRACT`).
const RECIPIENT_HEADERS: &[&str] = &["to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"];

/// Whether the header block in `records` (the start of a message) has a
/// recipient header with something in it. `complete` says the records
/// hold the whole header block; if not, the answer is `true` (unknown).
pub(crate) fn has_recipient_header(records: &[(RecordType, Vec<u8>)], complete: bool) -> bool {
    if !complete {
        return true;
    }
    let mut current: Option<bool> = None;
    let mut found = false;
    for (_, line) in records {
        if line.is_empty() {
            break;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if continuation {
            if current == Some(true) && line.iter().any(|b| !b.is_ascii_whitespace()) {
                found = true;
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            break;
        };
        let name = String::from_utf8_lossy(line.get(..colon).unwrap_or_default())
            .trim_end()
            .to_ascii_lowercase();
        let is_rcpt = RECIPIENT_HEADERS.contains(&name.as_str());
        current = Some(is_rcpt);
        if is_rcpt
            && line
                .get(colon + 1..)
                .is_some_and(|v| v.iter().any(|b| !b.is_ascii_whitespace()))
        {
            found = true;
        }
    }
    found
}

/// Whether a content line ends the header block: an empty line, or a
/// line that is neither a header nor a continuation.
pub(crate) fn ends_headers(line: &[u8]) -> bool {
    if line.is_empty() {
        return true;
    }
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return false;
    }
    match line.iter().position(|&b| b == b':') {
        Some(colon) => !line
            .get(..colon)
            .is_some_and(|name| !name.is_empty() && name.iter().all(|b| b.is_ascii_graphic())),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8], max: usize, fix: FixEol, dot: bool) -> Vec<(RecordType, Vec<u8>)> {
        let mut r = ContentReader::new(input, max, fix, dot);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push(rec);
        }
        out
    }

    fn n(s: &str) -> (RecordType, Vec<u8>) {
        (RecordType::Normal, s.as_bytes().to_vec())
    }

    fn l(s: &str) -> (RecordType, Vec<u8>) {
        (RecordType::Cont, s.as_bytes().to_vec())
    }

    #[test]
    fn lines_pieces_and_a_last_line_without_newline() {
        assert_eq!(
            read(b"Subject: x\n\nabcdefgh\nend", 4, FixEol::Always, true),
            vec![
                l("Subj"),
                l("ect:"),
                n(" x"),
                n(""),
                l("abcd"),
                n("efgh"),
                l("end"),
            ]
        );
        assert!(read(b"", 10, FixEol::Always, true).is_empty());
    }

    #[test]
    fn a_lone_dot_ends_input_unless_told_otherwise() {
        let msg = b"a\n.\nb\n";
        assert_eq!(read(msg, 100, FixEol::Always, true), vec![n("a")]);
        assert_eq!(
            read(msg, 100, FixEol::Always, false),
            vec![n("a"), n("."), n("b")]
        );
        // "." with CRLF ends too (after the CR is stripped)...
        assert_eq!(
            read(b"a\r\n.\r\nb\r\n", 100, FixEol::Always, true),
            vec![n("a")]
        );
        // ... but the tail of a long line is not a lone dot.
        assert_eq!(
            read(b"abc.\nx\n", 3, FixEol::Always, true),
            vec![l("abc"), n("."), n("x")]
        );
        // ".." is data.
        assert_eq!(read(b"..\n", 100, FixEol::Always, true), vec![n("..")]);
    }

    #[test]
    fn carriage_returns() {
        let msg = b"a\r\nb\r\r\nc\n";
        assert_eq!(
            read(msg, 100, FixEol::Always, false),
            vec![n("a"), n("b"), n("c")]
        );
        assert_eq!(
            read(msg, 100, FixEol::Never, false),
            vec![n("a\r"), n("b\r\r"), n("c")]
        );
        assert_eq!(
            read(msg, 100, FixEol::Strict, false),
            vec![n("a"), n("b"), n("c")]
        );
        assert_eq!(
            read(b"a\nb\r\n", 100, FixEol::Strict, false),
            vec![n("a"), n("b\r")]
        );
    }

    #[test]
    fn leading_from_lines_are_dropped() {
        assert_eq!(
            read(
                b"From me Mon Jan 1\n>From x\nSubject: s\n\nFrom here\n",
                100,
                FixEol::Always,
                true
            ),
            vec![n("Subject: s"), n(""), n("From here")]
        );
    }

    #[test]
    fn recipient_headers() {
        let recs = |lines: &[&str]| lines.iter().map(|s| n(s)).collect::<Vec<_>>();
        assert!(has_recipient_header(&recs(&["To: a@b", ""]), true));
        assert!(has_recipient_header(&recs(&["BCC : a@b"]), true));
        assert!(has_recipient_header(&recs(&["Cc:", " a@b", ""]), true));
        assert!(!has_recipient_header(
            &recs(&["To:  ", "Subject: x", ""]),
            true
        ));
        assert!(!has_recipient_header(
            &recs(&["Subject: x", "", "To: a@b"]),
            true
        ));
        assert!(has_recipient_header(&recs(&["Subject: x"]), false));
        assert!(ends_headers(b""));
        assert!(ends_headers(b"no colon here"));
        assert!(ends_headers(b"bad name: x"));
        assert!(!ends_headers(b"To: x"));
        assert!(!ends_headers(b"  continued"));
    }
}

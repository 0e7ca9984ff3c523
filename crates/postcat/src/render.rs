//! Printing a queue file in Postfix `postcat` shape (the record loop of
//! Postfix `postcat.c`), sans-I/O: bytes in, text out.
//!
//! ```text
//! *** ENVELOPE RECORDS incoming/4Yq7Zz1AbcDEF ***
//! message_size:              24             180               1               0             204
//! message_arrival_time: Tue Nov 14 22:13:20 2023
//! sender: alice@example.org
//! named_attribute: rewrite_context=local
//! original_recipient: Bob@Example.org
//! recipient: bob@example.org
//! *** MESSAGE CONTENTS incoming/4Yq7Zz1AbcDEF ***
//! Subject: hi
//!
//! hello
//! *** HEADER EXTRACTED incoming/4Yq7Zz1AbcDEF ***
//! *** MESSAGE FILE END incoming/4Yq7Zz1AbcDEF ***
//! ```
//!
//! The size record shows Postern's five fields: content length, data
//! offset, recipient count, queue manager flags, extracted offset. The
//! header record (format magic and version) is checked, not printed.
//! Record names are Postfix's (`rec_type_name`), so scripts written for
//! Postfix postcat keep working.
//!
//! The file is printed record by record; the first damage found ends the
//! output with an [`Error`] naming the offset, so that what can be read of
//! a damaged file is still shown.

use std::time::{Duration, SystemTime};

use jiff::tz::TimeZone;
use postern_queue::MAGIC;
use postern_wire::{DEFAULT_MAX_RECORD_LEN, Decoder, RecordType, Rules, Sequence};

/// What to print (Postfix postcat flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    /// `-e`: envelope records and segment markers.
    pub(crate) envelope: bool,
    /// `-h`: the message header.
    pub(crate) header: bool,
    /// `-b`: the message body.
    pub(crate) body: bool,
    /// `-o`: the offset of each record.
    pub(crate) offsets: bool,
    /// `-d`: the decimal type of each record.
    pub(crate) decimal: bool,
    /// `-v`: name content records too.
    pub(crate) verbose: bool,
    /// `-s`: start at this offset.
    pub(crate) start: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            envelope: true,
            header: true,
            body: true,
            offsets: false,
            decimal: false,
            verbose: false,
            start: 0,
        }
    }
}

/// Why printing stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error {
    /// Where the damage is.
    pub(crate) offset: u64,
    /// What it is.
    pub(crate) reason: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "corrupt queue file at offset {}: {}",
            self.offset, self.reason
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Envelope,
    Header,
    Body,
}

/// asctime(3) in the given zone: `Tue Nov 14 22:13:20 2023`.
pub(crate) fn asctime(at: SystemTime, tz: &TimeZone) -> String {
    match jiff::Timestamp::try_from(at) {
        Ok(ts) => ts
            .to_zoned_datetime(tz.clone())
            .strftime("%a %b %e %H:%M:%S %Y")
            .to_string(),
        Err(_) => "(time out of range)".into(),
    }
}

fn le_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Postfix `is_header`: a name of printable non-space characters, then
/// optional white space and a colon.
fn is_header(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = line.get(..colon).unwrap_or_default();
    let trimmed = name
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(&[][..], |end| name.get(..=end).unwrap_or_default());
    !trimmed.is_empty() && trimmed.len() == name.iter().take_while(|b| b.is_ascii_graphic()).count()
}

/// Prints `bytes` (a whole queue file, or from `opts.start` on) named
/// `name` into `out`. On damage, `out` holds everything up to it.
pub(crate) fn render(
    bytes: &[u8],
    name: &str,
    opts: &Options,
    tz: &TimeZone,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let start = usize::try_from(opts.start).unwrap_or(usize::MAX);
    if start > bytes.len() {
        return Err(Error {
            offset: opts.start,
            reason: "offset beyond the end of the file".into(),
        });
    }
    let decoder = Decoder::with_max_len(DEFAULT_MAX_RECORD_LEN);
    let mut pos = start;
    let at = |pos: usize| u64::try_from(pos).unwrap_or(u64::MAX);
    let fail = |pos: usize, reason: String| Error {
        offset: at(pos),
        reason,
    };
    let prefix = |out: &mut Vec<u8>, pos: usize, kind: u8| {
        if opts.offsets {
            out.extend_from_slice(format!("{:9} ", at(pos)).as_bytes());
        }
        if opts.decimal {
            out.extend_from_slice(format!("{:3} ", kind).as_bytes());
        }
    };
    let marker = |out: &mut Vec<u8>, pos: usize, kind: u8, text: &str| {
        prefix(out, pos, kind);
        out.extend_from_slice(format!("*** {text} {name} ***\n").as_bytes());
    };
    if start == 0 {
        let header = decoder.feed(bytes).ok().flatten();
        let valid = header
            .is_some_and(|(rec, _)| rec.kind == RecordType::Header && rec.data.starts_with(MAGIC));
        if !valid {
            return Err(fail(0, "input is not a valid queue file".into()));
        }
        if opts.envelope {
            out.extend_from_slice(format!("*** ENVELOPE RECORDS {name} ***\n").as_bytes());
        }
    }
    // Segment order is checked only when reading from the start.
    let mut seq = (start == 0).then(|| Sequence::new(Rules::Queue));
    let mut state = State::Envelope;
    let mut print = opts.envelope;
    let mut prev_cont = false;
    let mut ended = false;
    while pos < bytes.len() {
        let rest = bytes.get(pos..).unwrap_or_default();
        let (rec, used) = match decoder.feed(rest) {
            Ok(Some(found)) => found,
            Ok(None) => return Err(fail(pos, "file ends inside a record".into())),
            Err(e) => return Err(fail(pos, e.to_string())),
        };
        let kind = rec.kind.as_byte();
        let data = rec.data;
        let here = pos;
        pos += used;
        if !matches!(rec.kind, RecordType::Header | RecordType::Size)
            && let Some(seq) = seq.as_mut()
        {
            seq.accept(rec.kind)
                .map_err(|e| fail(here, e.to_string()))?;
        }
        match rec.kind {
            RecordType::Header => {
                if here != 0 {
                    return Err(fail(here, "header record after the start".into()));
                }
            }
            RecordType::Message => {
                if opts.envelope {
                    marker(out, here, kind, "MESSAGE CONTENTS");
                }
                state = State::Header;
                print = opts.header;
                prev_cont = false;
            }
            RecordType::Xtra => {
                if print && prev_cont {
                    out.push(b'\n');
                }
                if opts.envelope {
                    marker(out, here, kind, "HEADER EXTRACTED");
                }
                state = State::Envelope;
                print = opts.envelope;
                prev_cont = false;
            }
            RecordType::End => {
                if opts.envelope {
                    marker(out, here, kind, "MESSAGE FILE END");
                }
                ended = true;
                break;
            }
            RecordType::Normal | RecordType::Cont => {
                if state == State::Header
                    && !prev_cont
                    && !(is_header(data) || matches!(data.first(), Some(b' ' | b'\t')))
                {
                    state = State::Body;
                    print = opts.body;
                }
                if print {
                    prefix(out, here, kind);
                    let newline = rec.kind == RecordType::Normal || opts.verbose || opts.offsets;
                    if opts.verbose {
                        out.extend_from_slice(if rec.kind == RecordType::Normal {
                            b"regular_text: "
                        } else {
                            b"unterminated_text: "
                        });
                    }
                    out.extend_from_slice(data);
                    if newline {
                        out.push(b'\n');
                    }
                    prev_cont = !newline;
                } else {
                    prev_cont = rec.kind == RecordType::Cont;
                }
            }
            _ => {
                if print {
                    prefix(out, here, kind);
                    let line = envelope_line(rec.kind, data, tz).map_err(|r| fail(here, r))?;
                    out.extend_from_slice(&line);
                    out.push(b'\n');
                }
            }
        }
    }
    if !ended {
        return Err(fail(pos, "file ends before the end record".into()));
    }
    if pos < bytes.len() {
        return Err(fail(pos, "data after the end record".into()));
    }
    Ok(())
}

/// One envelope record as `name: value`.
fn envelope_line(kind: RecordType, data: &[u8], tz: &TimeZone) -> Result<Vec<u8>, String> {
    let text = |label: &str| {
        let mut line = format!("{label}: ").into_bytes();
        line.extend_from_slice(data);
        line
    };
    let line = match kind {
        RecordType::Size => {
            if data.len() < 40 || !data.len().is_multiple_of(8) {
                return Err(format!("size record has length {}", data.len()));
            }
            let fields: Vec<String> = data
                .chunks_exact(8)
                .take(5)
                .map(|c| format!("{:15}", le_u64(c).unwrap_or(0)))
                .collect();
            format!("message_size: {}", fields.join(" ")).into_bytes()
        }
        RecordType::Time => {
            let secs = data.get(..8).and_then(le_u64);
            let (Some(secs), 12) = (secs, data.len()) else {
                return Err(format!("time record has length {}", data.len()));
            };
            let at = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs));
            let when = at.map_or_else(|| "(time out of range)".into(), |t| asctime(t, tz));
            format!("message_arrival_time: {when}").into_bytes()
        }
        RecordType::Warn => {
            let Some(secs) = le_u64(data) else {
                return Err(format!("warning time record has length {}", data.len()));
            };
            let at = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs));
            let when = at.map_or_else(|| "(time out of range)".into(), |t| asctime(t, tz));
            format!("warning_message_time: {when}").into_bytes()
        }
        RecordType::Sender => text("sender"),
        RecordType::Attr => text("named_attribute"),
        RecordType::Orcpt => text("original_recipient"),
        RecordType::DsnOrcpt => text("dsn_original_recipient"),
        RecordType::DsnNotify => match data {
            [bits] => format!("dsn_notify_flags: {bits}").into_bytes(),
            _ => return Err("malformed DSN notify record".into()),
        },
        RecordType::Recipient => text("recipient"),
        RecordType::Done => text("done_recipient"),
        other => format!("{}: (unexpected record)", other.name()).into_bytes(),
    };
    Ok(line)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use postern_queue::{NewRecipient, Notify, Queue, QueueFile, QueueFileWriter};

    use super::*;

    /// The queue file behind `tests/data/queue/basic.ref`: every envelope
    /// record type, a folded header, a body, a long line split into
    /// pieces, a done recipient, and content without a final newline.
    pub(crate) fn golden_file(spool: &Path) -> PathBuf {
        std::fs::create_dir_all(spool.join("incoming")).unwrap();
        let mut w = QueueFileWriter::create(spool, Queue::Incoming).unwrap();
        w.set_line_chunk(40).unwrap();
        w.time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .unwrap();
        w.sender("alice@example.org").unwrap();
        w.attr("rewrite_context", b"local").unwrap();
        w.attr("full_name", b"Alice Example").unwrap();
        w.recipient(&NewRecipient {
            orcpt: Some("Bob@Example.org"),
            dsn_orcpt: Some("rfc822;Bob@Example.org"),
            notify: Notify::from_bits(10),
            ..NewRecipient::new("bob@example.org")
        })
        .unwrap();
        let done = w
            .recipient(&NewRecipient::new("carol@example.org"))
            .unwrap();
        w.warn(Some(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_014_400),
        ))
        .unwrap();
        w.begin_content().unwrap();
        w.write_content(
            b"Received: from localhost\n\tby mail.example.org\nSubject: golden\n\
              From: Alice <alice@example.org>\n\nHello Bob,\n\
              this line is much longer than forty bytes, so it is split.\n\n\
              Bye\nno final newline",
        )
        .unwrap();
        w.end_content().unwrap();
        w.attr("sendmail_t", b"1").unwrap();
        w.recipient(&NewRecipient::new("dave@example.org")).unwrap();
        let path = w.path().to_path_buf();
        w.finish().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        postern_queue::mark_done(&file, done).unwrap();
        QueueFile::open(&path).unwrap();
        path
    }

    fn ref_path(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/queue")
            .join(name)
    }

    fn show(bytes: &[u8], opts: &Options) -> (String, Result<(), Error>) {
        let mut out = Vec::new();
        let r = render(bytes, "test-queue-file", opts, &TimeZone::UTC, &mut out);
        (String::from_utf8(out).unwrap(), r)
    }

    /// Compares with a `.ref` file; `POSTERN_BLESS=1` rewrites it.
    fn golden(name: &str, got: &str) {
        let path = ref_path(name);
        if std::env::var_os("POSTERN_BLESS").is_some() {
            std::fs::write(&path, got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap();
        assert_eq!(got, want, "output differs from {}", path.display());
    }

    #[test]
    fn golden_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(golden_file(dir.path())).unwrap();
        let (all, r) = show(&bytes, &Options::default());
        r.unwrap();
        golden("basic.ref", &all);
        let only = |envelope, header, body, offsets| Options {
            envelope,
            header,
            body,
            offsets,
            ..Options::default()
        };
        let (text, r) = show(&bytes, &only(false, true, false, false));
        r.unwrap();
        golden("basic-h.ref", &text);
        let (text, r) = show(&bytes, &only(false, false, true, false));
        r.unwrap();
        golden("basic-b.ref", &text);
        let (text, r) = show(&bytes, &only(true, false, false, true));
        r.unwrap();
        golden("basic-eo.ref", &text);
    }

    #[test]
    fn damaged_files_print_what_they_can_then_fail() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(golden_file(dir.path())).unwrap();
        // Cut inside the content: everything before the cut is printed.
        let cut = bytes.len() - 30;
        let (text, r) = show(&bytes[..cut], &Options::default());
        let err = r.unwrap_err();
        assert!(text.contains("*** MESSAGE CONTENTS test-queue-file ***"));
        assert!(!text.contains("MESSAGE FILE END"));
        assert!(err.offset as usize <= cut, "{err}");
        // Every prefix fails cleanly, never panics.
        for len in 0..bytes.len() {
            let (_, r) = show(&bytes[..len], &Options::default());
            assert!(r.is_err(), "prefix of {len} bytes accepted");
        }
        // Garbage and a wrong magic.
        let (text, r) = show(b"hello world", &Options::default());
        assert!(text.is_empty());
        assert_eq!(r.unwrap_err().reason, "input is not a valid queue file");
        let mut other = bytes.clone();
        other[2] = b'X';
        assert!(show(&other, &Options::default()).1.is_err());
        // Trailing garbage after the end record.
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(b"S\x01x");
        let (text, r) = show(&trailing, &Options::default());
        assert!(text.contains("MESSAGE FILE END"));
        assert!(r.unwrap_err().reason.contains("after the end record"));
        // An unknown record type byte.
        let mut bad = bytes.clone();
        let at = bytes.len() - 2;
        bad[at] = b'Z';
        assert!(show(&bad, &Options::default()).1.is_err());
    }

    #[test]
    fn a_maildrop_file_reads_too() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("maildrop")).unwrap();
        let mut w = QueueFileWriter::create(dir.path(), Queue::Maildrop).unwrap();
        w.time(SystemTime::UNIX_EPOCH).unwrap();
        w.sender("").unwrap();
        w.recipient(&NewRecipient::new("x")).unwrap();
        let path = w.path().to_path_buf();
        w.finish().unwrap();
        let (text, r) = show(&std::fs::read(path).unwrap(), &Options::default());
        r.unwrap();
        assert!(
            text.contains("message_arrival_time: Thu Jan  1 00:00:00 1970\n"),
            "{text}"
        );
        assert!(text.contains("\nsender: \n"));
    }

    #[test]
    fn header_detection() {
        assert!(is_header(b"Subject: x"));
        assert!(is_header(b"X-Thing :x"));
        assert!(!is_header(b"not a header: x"));
        assert!(!is_header(b": x"));
        assert!(!is_header(b"plain text"));
    }

    #[test]
    fn start_offset() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(golden_file(dir.path())).unwrap();
        let qf = QueueFile::read(&bytes).unwrap();
        let opts = Options {
            start: qf.size().data_offset,
            ..Options::default()
        };
        let (text, r) = show(&bytes, &opts);
        r.unwrap();
        assert!(text.starts_with("Received: from localhost\n"), "{text}");
        assert!(
            show(
                &bytes,
                &Options {
                    start: 1 << 40,
                    ..Options::default()
                }
            )
            .1
            .is_err()
        );
    }
}

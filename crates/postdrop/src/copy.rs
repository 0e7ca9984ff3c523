//! Copying a submitter's record stream into a maildrop file, checking every
//! record on the way (the copy loop of Postfix `postdrop.c`).
//!
//! The submitter is not trusted: the stream must follow
//! [`Rules::Post`](postern_wire::Rules::Post) record by record, addresses
//! must be UTF-8 text without control characters, every record is capped
//! in length before it is buffered, and the whole stream is capped by
//! `message_size_limit`. Named attributes pass only when their name is in
//! the short list a submitter may set ([`check_attr`]) and their value is
//! well formed; any other attribute is dropped with a warning, as Postfix
//! does, so that a submitter can never forge what postdrop itself records
//! (the `uid` and `login` of the submitting user).

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use postern_queue::{NewRecipient, Notify, QueueFileWriter};
use postern_util::warn;
use postern_wire::{Decoder, Record, RecordType, Rules, Segment, Sequence};

/// Limits applied to the input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The longest record payload accepted.
    pub(crate) max_record: u32,
    /// The most input bytes accepted (envelope and content); 0 = no limit.
    pub(crate) max_input: u64,
}

/// Why a submission was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The input is not an acceptable submission.
    Data(String),
    /// The input exceeds `message_size_limit`.
    TooBig,
    /// Reading the input or writing the file failed.
    Io(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Data(text) | Failure::Io(text) => f.write_str(text),
            Failure::TooBig => f.write_str("message file too big"),
        }
    }
}

/// What the copied message held, for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// The envelope sender.
    pub(crate) sender: String,
    /// Number of recipient records.
    pub(crate) recipients: usize,
    /// Input bytes read.
    pub(crate) bytes: u64,
}

/// What to do with a named attribute from the submitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Copy it.
    Keep,
    /// Drop it, with this reason in the warning.
    Ignore(&'static str),
}

/// Whether a submitter may set attribute `name` to `value`.
///
/// Allowed: `full_name` (no control characters, so that cleanup can put it
/// in a `From:` header), `extract_recipients` (`0` or `1`, sendmail `-t`),
/// `envid` (DSN envelope id, printable ASCII, at most 100 bytes, sendmail
/// `-V`), `ret` (`FULL` or `HDRS`), `encoding` (`7bit` or `8bit`, sendmail
/// `-B`) and `rewrite_context` (`local` or `remote`, sendmail `-G`).
pub(crate) fn check_attr(name: &[u8], value: &[u8]) -> Verdict {
    let one_of = |allowed: &[&str]| {
        if allowed
            .iter()
            .any(|a| a.as_bytes().eq_ignore_ascii_case(value))
        {
            Verdict::Keep
        } else {
            Verdict::Ignore("bad value")
        }
    };
    match name {
        b"full_name" => {
            if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                Verdict::Ignore("control characters in value")
            } else {
                Verdict::Keep
            }
        }
        b"extract_recipients" => one_of(&["0", "1"]),
        b"envid" => {
            if value.len() > 100 || !value.iter().all(|b| (0x20..0x7f).contains(b)) {
                Verdict::Ignore("bad value")
            } else {
                Verdict::Keep
            }
        }
        b"ret" => one_of(&["FULL", "HDRS"]),
        b"encoding" => one_of(&["7bit", "8bit"]),
        b"rewrite_context" => one_of(&["local", "remote"]),
        _ => Verdict::Ignore("not allowed from a submitter"),
    }
}

/// Checks an address from the submitter: UTF-8, no control characters,
/// not longer than `max`, and not empty unless `empty_ok`.
pub(crate) fn check_address<'a>(
    what: &str,
    data: &'a [u8],
    max: usize,
    empty_ok: bool,
) -> Result<&'a str, Failure> {
    if data.is_empty() && !empty_ok {
        return Err(Failure::Data(format!("empty {what} address")));
    }
    if data.len() > max {
        return Err(Failure::Data(format!(
            "{what} address longer than {max} bytes"
        )));
    }
    let text = std::str::from_utf8(data)
        .map_err(|_| Failure::Data(format!("{what} address is not UTF-8")))?;
    if text.chars().any(char::is_control) {
        return Err(Failure::Data(format!(
            "control characters in {what} address"
        )));
    }
    Ok(text)
}

fn queue_failure(e: postern_queue::Error) -> Failure {
    match e {
        postern_queue::Error::Io { .. } => Failure::Io(e.to_string()),
        other => Failure::Data(other.to_string()),
    }
}

/// Per-message state of the copy.
struct Copy<'w> {
    writer: &'w mut QueueFileWriter,
    uid: u32,
    max_address: usize,
    pending_notify: Option<Notify>,
    have_sender: bool,
    summary: Summary,
}

impl Copy<'_> {
    fn record(&mut self, rec: Record<'_>, segment: Segment) -> Result<(), Failure> {
        let w = &mut *self.writer;
        match rec.kind {
            // postdrop writes the arrival time itself.
            RecordType::Time => {}
            RecordType::Sender => {
                if self.have_sender {
                    return Err(Failure::Data("more than one sender record".into()));
                }
                let sender = check_address("sender", rec.data, self.max_address, true)?;
                w.sender(sender).map_err(queue_failure)?;
                self.have_sender = true;
                self.summary.sender = sender.to_string();
            }
            RecordType::Attr => {
                let Some(eq) = rec.data.iter().position(|&b| b == b'=') else {
                    return Err(Failure::Data("malformed attribute record".into()));
                };
                let (name, value) = rec.data.split_at(eq);
                let value = value.get(1..).unwrap_or_default();
                match check_attr(name, value) {
                    Verdict::Keep => {
                        let name = std::str::from_utf8(name).unwrap_or_default();
                        w.attr(name, value).map_err(queue_failure)?;
                    }
                    Verdict::Ignore(why) => warn!(
                        "uid={}: ignoring attribute record in {segment} segment: {}: {why}",
                        self.uid,
                        printable(name, 64),
                    ),
                }
            }
            RecordType::DsnNotify => {
                if self.pending_notify.is_some() {
                    return Err(Failure::Data("two DSN notify records in a row".into()));
                }
                let notify = match rec.data {
                    [bits] => Notify::from_bits(*bits),
                    _ => None,
                };
                let notify =
                    notify.ok_or_else(|| Failure::Data("malformed DSN notify record".into()))?;
                self.pending_notify = Some(notify);
            }
            RecordType::Recipient => {
                let address = check_address("recipient", rec.data, self.max_address, false)?;
                let rcpt = NewRecipient {
                    notify: self.pending_notify.take(),
                    ..NewRecipient::new(address)
                };
                w.recipient(&rcpt).map_err(queue_failure)?;
                self.summary.recipients += 1;
            }
            RecordType::Message => {
                if self.pending_notify.is_some() {
                    return Err(Failure::Data(
                        "DSN notify record without a recipient".into(),
                    ));
                }
                if !self.have_sender {
                    return Err(Failure::Data("no sender record".into()));
                }
                w.begin_content().map_err(queue_failure)?;
            }
            RecordType::Normal => {
                w.write_content(rec.data).map_err(queue_failure)?;
                w.write_content(b"\n").map_err(queue_failure)?;
            }
            RecordType::Cont => w.write_content(rec.data).map_err(queue_failure)?,
            RecordType::Xtra => w.end_content().map_err(queue_failure)?,
            RecordType::End => {}
            other => {
                // The sequence rules admit nothing else.
                return Err(Failure::Data(format!("unexpected record type {other}")));
            }
        }
        Ok(())
    }
}

/// A name for a warning: at most `max` bytes, non-printable bytes as `?`.
fn printable(bytes: &[u8], max: usize) -> String {
    bytes
        .iter()
        .take(max)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

/// Copies the record stream on `input` into `writer` (whose arrival time
/// and own attributes are already written) up to and including the end
/// record. Nothing may follow the end record.
///
/// `stop` is set by a signal handler (SIGINT, SIGHUP, SIGQUIT, SIGTERM):
/// the copy then fails after the read in progress, so the caller drops
/// the writer and no file is left behind.
pub(crate) fn copy<R: Read>(
    mut input: R,
    writer: &mut QueueFileWriter,
    uid: u32,
    limits: Limits,
    stop: &AtomicBool,
) -> Result<Summary, Failure> {
    let decoder = Decoder::with_max_len(limits.max_record);
    let mut seq = Sequence::new(Rules::Post);
    let mut state = Copy {
        writer,
        uid,
        max_address: usize::try_from(limits.max_record).unwrap_or(usize::MAX),
        pending_notify: None,
        have_sender: false,
        summary: Summary::default(),
    };
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let mut start = 0;
        while !seq.is_finished() {
            let rest = buf.get(start..).unwrap_or_default();
            let (rec, used) = match decoder.feed(rest) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(e) => return Err(Failure::Data(format!("malformed input: {e}"))),
            };
            total = total.saturating_add(u64::try_from(used).unwrap_or(u64::MAX));
            if limits.max_input > 0 && total > limits.max_input {
                return Err(Failure::TooBig);
            }
            let segment = seq
                .accept(rec.kind)
                .map_err(|e| Failure::Data(format!("malformed input: {e}")))?;
            state.record(rec, segment)?;
            start += used;
        }
        if seq.is_finished() && start < buf.len() {
            return Err(Failure::Data("data after the end record".into()));
        }
        buf.drain(..start);
        // A record larger than the limit is refused by the decoder before
        // it is complete, so the buffer stays below max_record + chunk.
        let n = loop {
            match input.read(&mut chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Failure::Io(format!("read input: {e}"))),
            }
        };
        if stop.load(Ordering::Relaxed) {
            return Err(Failure::Io("interrupted by a signal".into()));
        }
        let Some(read) = chunk.get(..n) else {
            return Err(Failure::Io("read input: bad length".into()));
        };
        if n == 0 {
            if seq.is_finished() {
                break;
            }
            return Err(Failure::Data(if buf.is_empty() && total == 0 {
                "no input".into()
            } else {
                "premature end of input".into()
            }));
        }
        if seq.is_finished() {
            return Err(Failure::Data("data after the end record".into()));
        }
        buf.extend_from_slice(read);
    }
    state.summary.bytes = total;
    Ok(state.summary)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use postern_queue::{Queue, QueueFile, ReadOptions, RecipientStatus};
    use postern_wire::Encoder;

    use super::*;

    const LIMITS: Limits = Limits {
        max_record: 2048,
        max_input: 1_000_000,
    };

    fn spool() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("maildrop")).unwrap();
        dir
    }

    fn stream(records: &[(RecordType, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out);
        for (kind, data) in records {
            enc.put(*kind, data).unwrap();
        }
        out
    }

    /// A typical sendmail stream with `content` records between M and X.
    fn basic(content: &[(RecordType, &[u8])]) -> Vec<u8> {
        let mut records: Vec<(RecordType, &[u8])> = vec![
            (RecordType::Attr, b"rewrite_context=local"),
            (RecordType::Attr, b"full_name=Alice Example"),
            (RecordType::Sender, b"alice"),
            (RecordType::Attr, b"extract_recipients=1"),
            (RecordType::DsnNotify, &[10]),
            (RecordType::Recipient, b"bob@example.test"),
            (RecordType::Recipient, b"carol"),
            (RecordType::Message, b""),
        ];
        records.extend_from_slice(content);
        records.push((RecordType::Xtra, b""));
        records.push((RecordType::End, b""));
        stream(&records)
    }

    /// Runs a copy into a fresh maildrop file; on success commits it and
    /// reads it back, on failure checks that no file is left.
    fn run(input: &[u8], limits: Limits) -> Result<QueueFile, Failure> {
        let dir = spool();
        let mut w = QueueFileWriter::create(dir.path(), Queue::Maildrop).unwrap();
        w.time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .unwrap();
        w.attr("uid", b"1000").unwrap();
        let result = copy(input, &mut w, 1000, limits, &AtomicBool::new(false));
        match result {
            Ok(_) => {
                let id = w.finish().unwrap();
                let path = id.path(dir.path(), Queue::Maildrop);
                let opts = ReadOptions {
                    rules: Rules::Post,
                    ..ReadOptions::default()
                };
                Ok(QueueFile::open_with(&path, &opts).unwrap())
            }
            Err(e) => {
                drop(w);
                let left: Vec<_> = std::fs::read_dir(dir.path().join("maildrop"))
                    .unwrap()
                    .collect();
                assert!(left.is_empty(), "file left behind after {e:?}");
                Err(e)
            }
        }
    }

    #[test]
    fn copies_a_submission_exactly() {
        let input = basic(&[
            (RecordType::Normal, b"Subject: hi"),
            (RecordType::Normal, b""),
            (RecordType::Cont, b"long "),
            (RecordType::Normal, b"line"),
            (RecordType::Cont, b"no newline"),
        ]);
        let qf = run(&input, LIMITS).unwrap();
        assert_eq!(qf.sender(), "alice");
        assert_eq!(qf.attr("full_name"), Some(&b"Alice Example"[..]));
        assert_eq!(qf.attr("extract_recipients"), Some(&b"1"[..]));
        assert_eq!(qf.attr("rewrite_context"), Some(&b"local"[..]));
        assert_eq!(qf.attr("uid"), Some(&b"1000"[..]));
        let rcpts = qf.recipients();
        assert_eq!(rcpts.len(), 2);
        assert_eq!(rcpts[0].address, "bob@example.test");
        assert_eq!(rcpts[0].notify.map(|n| n.bits()), Some(10));
        assert_eq!(rcpts[0].status, RecipientStatus::Pending);
        assert_eq!(rcpts[1].address, "carol");
        assert_eq!(rcpts[1].notify, None);
        assert_eq!(qf.content_to_vec(), b"Subject: hi\n\nlong line\nno newline");
    }

    #[test]
    fn input_split_anywhere_gives_the_same_file() {
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(out.len()).min(3);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let input = basic(&[(RecordType::Normal, b"body")]);
        let dir = spool();
        let mut w = QueueFileWriter::create(dir.path(), Queue::Maildrop).unwrap();
        w.time(SystemTime::now()).unwrap();
        let summary = copy(Dribble(&input), &mut w, 7, LIMITS, &AtomicBool::new(false)).unwrap();
        assert_eq!(summary.recipients, 2);
        assert_eq!(summary.sender, "alice");
        assert_eq!(summary.bytes, input.len() as u64);
        w.finish().unwrap();
    }

    #[test]
    fn forged_and_unknown_attributes_are_dropped() {
        let input = stream(&[
            (RecordType::Attr, b"uid=0"),
            (RecordType::Attr, b"login=root"),
            (RecordType::Attr, b"full_name=Evil\nBcc: x@y"),
            (RecordType::Attr, b"envid=ok-envid"),
            (RecordType::Attr, b"ret=hdrs"),
            (RecordType::Attr, b"something=else"),
            (RecordType::Sender, b""),
            (RecordType::Recipient, b"bob"),
            (RecordType::Message, b""),
            (RecordType::Xtra, b""),
            (RecordType::End, b""),
        ]);
        let qf = run(&input, LIMITS).unwrap();
        assert_eq!(qf.attr("uid"), Some(&b"1000"[..]), "postdrop's own uid");
        assert_eq!(qf.attr("login"), None);
        assert_eq!(qf.attr("full_name"), None);
        assert_eq!(qf.attr("something"), None);
        assert_eq!(qf.attr("envid"), Some(&b"ok-envid"[..]));
        assert_eq!(qf.attr("ret"), Some(&b"hdrs"[..]));
        assert_eq!(qf.sender(), "");
    }

    #[test]
    fn records_a_submitter_may_not_send_are_refused() {
        for kind in [
            RecordType::Done,
            RecordType::Warn,
            RecordType::Orcpt,
            RecordType::DsnOrcpt,
            RecordType::Header,
            RecordType::Size,
            RecordType::AttrList,
        ] {
            let input = stream(&[
                (RecordType::Sender, b"a"),
                (kind, b"x"),
                (RecordType::Message, b""),
                (RecordType::Xtra, b""),
                (RecordType::End, b""),
            ]);
            let err = run(&input, LIMITS).unwrap_err();
            assert!(matches!(err, Failure::Data(_)), "{kind:?}: {err:?}");
        }
    }

    #[test]
    fn bad_input_leaves_no_file() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "no input"),
            (
                stream(&[(RecordType::Sender, b"a"), (RecordType::Message, b"")]),
                "premature end of input",
            ),
            (
                {
                    let mut v = basic(&[]);
                    v.pop();
                    v
                },
                "premature end of input",
            ),
            (
                {
                    let mut v = basic(&[]);
                    v.extend_from_slice(b"S\x01x");
                    v
                },
                "data after the end record",
            ),
            (b"Z\x00".to_vec(), "malformed input"),
            (
                stream(&[(RecordType::Sender, b"a"), (RecordType::Sender, b"b")]),
                "more than one sender",
            ),
            (
                stream(&[(RecordType::Recipient, b"b"), (RecordType::Message, b"")]),
                "no sender record",
            ),
            (
                stream(&[(RecordType::Sender, b"a"), (RecordType::Recipient, b"")]),
                "empty recipient",
            ),
            (
                stream(&[
                    (RecordType::Sender, b"a"),
                    (RecordType::Recipient, b"b\r\nc"),
                ]),
                "control characters",
            ),
            (stream(&[(RecordType::Sender, b"\xff")]), "not UTF-8"),
            (
                stream(&[
                    (RecordType::Sender, b"a"),
                    (RecordType::DsnNotify, &[10]),
                    (RecordType::Message, b""),
                ]),
                "without a recipient",
            ),
            (
                stream(&[(RecordType::Sender, b"a"), (RecordType::DsnNotify, &[0])]),
                "malformed DSN notify",
            ),
            (
                stream(&[(RecordType::Sender, b"a"), (RecordType::Attr, b"noequals")]),
                "malformed attribute",
            ),
            (
                stream(&[
                    (RecordType::Sender, b"a"),
                    (RecordType::Attr, b"envid=x"),
                    (RecordType::Attr, b"envid=y"),
                ]),
                "duplicate attribute",
            ),
        ];
        for (input, want) in cases {
            let err = run(&input, LIMITS).unwrap_err();
            assert!(err.to_string().contains(want), "want {want:?}, got {err:?}");
        }
    }

    #[test]
    fn limits_are_enforced_before_buffering() {
        let long = vec![b'x'; 3000];
        let input = basic(&[(RecordType::Normal, &long)]);
        let err = run(&input, LIMITS).unwrap_err();
        assert!(err.to_string().contains("malformed input"), "{err}");
        let err = run(
            &basic(&[(RecordType::Normal, &[b'y'; 1000])]),
            Limits {
                max_record: 2048,
                max_input: 500,
            },
        )
        .unwrap_err();
        assert_eq!(err, Failure::TooBig);
        // No limit at all.
        run(
            &basic(&[(RecordType::Normal, &[b'y'; 1000])]),
            Limits {
                max_record: 2048,
                max_input: 0,
            },
        )
        .unwrap();
        let long_rcpt = vec![b'r'; 2049];
        let err = run(
            &stream(&[
                (RecordType::Sender, b"a"),
                (RecordType::Recipient, &long_rcpt),
            ]),
            LIMITS,
        )
        .unwrap_err();
        assert!(err.to_string().contains("malformed input"), "{err}");
    }

    #[test]
    fn a_signal_stops_the_copy() {
        let dir = spool();
        let mut w = QueueFileWriter::create(dir.path(), Queue::Maildrop).unwrap();
        w.time(SystemTime::now()).unwrap();
        let input = basic(&[(RecordType::Normal, b"body")]);
        let err = copy(&input[..], &mut w, 7, LIMITS, &AtomicBool::new(true)).unwrap_err();
        assert!(matches!(err, Failure::Io(_)), "{err:?}");
        drop(w);
        assert_eq!(
            std::fs::read_dir(dir.path().join("maildrop"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn attribute_rules() {
        assert_eq!(check_attr(b"full_name", b"A B\tC"), Verdict::Keep);
        assert!(matches!(
            check_attr(b"full_name", b"A\rB"),
            Verdict::Ignore(_)
        ));
        assert_eq!(check_attr(b"extract_recipients", b"1"), Verdict::Keep);
        assert!(matches!(
            check_attr(b"extract_recipients", b"yes"),
            Verdict::Ignore(_)
        ));
        assert_eq!(check_attr(b"encoding", b"8BIT"), Verdict::Keep);
        assert_eq!(check_attr(b"rewrite_context", b"remote"), Verdict::Keep);
        assert!(matches!(
            check_attr(b"rewrite_context", b"other"),
            Verdict::Ignore(_)
        ));
        assert!(matches!(
            check_attr(b"envid", &[b'a'; 101]),
            Verdict::Ignore(_)
        ));
        assert!(matches!(check_attr(b"uid", b"0"), Verdict::Ignore(_)));
        assert!(matches!(check_attr(b"login", b"root"), Verdict::Ignore(_)));
    }
}

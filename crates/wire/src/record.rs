//! Typed records: the one framing for queue files and IPC streams.
//!
//! Postfix counterparts: `global/rec_type.h` (the record types and the
//! per-segment sets) and `global/record.c` (the framing).
//!
//! A record is one type byte, a [length code](crate::varint), and that many
//! bytes of payload:
//!
//! ```text
//! +------+----------------+------------------+
//! | type | length (1..=5) | payload (length) |
//! +------+----------------+------------------+
//! ```
//!
//! The payload is opaque to this module; what it means depends on the type
//! (see each [`RecordType`] variant). A type byte that is not a
//! [`RecordType`] is an error: readers never skip what they do not know,
//! because a skipped record could be one that changes the meaning of the
//! rest.
//!
//! # Segments
//!
//! A mail message, in a queue file or on its way to cleanup, is three
//! [`Segment`]s in a fixed order, each ended by its own terminator record:
//!
//! 1. [`Segment::Envelope`]: time, sender, attributes, recipients; ended by
//!    [`RecordType::Message`];
//! 2. [`Segment::Content`]: the message as [`RecordType::Normal`] and
//!    [`RecordType::Cont`] line records; ended by [`RecordType::Xtra`];
//! 3. [`Segment::Extracted`]: recipients and attributes taken from headers;
//!    ended by the required [`RecordType::End`].
//!
//! Each segment allows a set of record types ([`Segment::allowed`]); input
//! from an unprivileged submitter (postdrop, and pickup reading `maildrop/`)
//! gets narrower sets ([`Rules::Post`], Postfix `REC_TYPE_POST_*`).
//! [`Sequence`] checks a stream of record types against these rules.
//!
//! The queue-file prologue ([`RecordType::Header`] and [`RecordType::Size`])
//! comes before the envelope and is checked by the queue reader; it is not
//! part of any segment, and IPC streams never carry it.
//!
//! # Decoding
//!
//! [`Decoder::feed`] is sans-I/O: the caller keeps a buffer, offers it, and
//! gets a record borrowed from it with the number of bytes it used, `None`
//! when the buffer ends inside a record, or an [`Error`] as soon as the bytes
//! seen prove the stream bad. The length limit is checked before the caller
//! needs to read or allocate the payload.

use std::fmt;

use crate::Error;
use crate::varint;

/// The default maximum payload length of one record (1 MiB).
///
/// Content lines are split well below this (Postfix `line_length_limit`), so
/// only unusually large attributes or addresses come near it.
pub const DEFAULT_MAX_RECORD_LEN: u32 = 1 << 20;

/// The type of a record: the first byte of its framing.
///
/// Letters follow Postfix `rec_type.h` where Postfix has the same record.
/// Every value is distinct (Postfix's `FILT`/`CONT` collision on `'L'` is not
/// repeated: Postern has no `FILT`). Variants are listed in the order they
/// appear in a queue file. Fixed-width numbers are unsigned little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[non_exhaustive]
pub enum RecordType {
    /// `H`: queue file header, always the first record: the magic bytes
    /// `POSTERN` followed by the format version as a `u32`. Postern only;
    /// Postfix has no header record.
    Header = b'H',
    /// `C`: fixed-width size record, always the second record of a queue
    /// file: `u64` fields patched in place (Postfix `REC_TYPE_SIZE`). The
    /// queue crate defines the fields; new fields are only appended.
    Size = b'C',
    /// `T`: arrival time, `u64` seconds and `u32` microseconds since the
    /// epoch (Postfix `REC_TYPE_TIME`).
    Time = b'T',
    /// `S`: envelope sender, empty for the null sender `<>` (Postfix
    /// `REC_TYPE_FROM`).
    Sender = b'S',
    /// `A`: a named attribute as `name=value` (Postfix `REC_TYPE_ATTR`);
    /// the name is never empty and has no `=`, the value is any bytes.
    Attr = b'A',
    /// `O`: original recipient, as given before address rewriting; applies
    /// to the next `R`/`D` record (Postfix `REC_TYPE_ORCP`).
    Orcpt = b'O',
    /// `o`: DSN original recipient (RFC 3461 `ORCPT`, `type;address`);
    /// applies to the next `R`/`D` record (Postfix `REC_TYPE_DSN_ORCPT`).
    DsnOrcpt = b'o',
    /// `n`: DSN notify flags as one byte; applies to the next `R`/`D`
    /// record (Postfix `REC_TYPE_DSN_NOTIFY`).
    DsnNotify = b'n',
    /// `R`: a recipient still to be delivered (Postfix `REC_TYPE_RCPT`).
    Recipient = b'R',
    /// `D`: a recipient that is done. Written only by patching the type byte
    /// of an `R` record in place, so both have the same length (Postfix
    /// `REC_TYPE_DONE`).
    Done = b'D',
    /// `W`: fixed-width time of the next "delayed mail" warning, `u64`
    /// seconds since the epoch, 0 for none; patched in place (Postfix
    /// `REC_TYPE_WARN`).
    Warn = b'W',
    /// `M`: start of content; ends the envelope segment (Postfix
    /// `REC_TYPE_MESG`). Empty payload.
    Message = b'M',
    /// `N`: a content line, without its line feed (Postfix `REC_TYPE_NORM`).
    Normal = b'N',
    /// `L`: a piece of a content line that continues in the next record:
    /// a line longer than the chunk limit, or the final bytes of content
    /// that does not end in a line feed (Postfix `REC_TYPE_CONT`).
    Cont = b'L',
    /// `X`: end of content, start of the extracted segment (Postfix
    /// `REC_TYPE_XTRA`). Empty payload.
    Xtra = b'X',
    /// `E`: end of the message; required, and always the last record
    /// (Postfix `REC_TYPE_END`). Empty payload.
    End = b'E',
    /// `Q`: an IPC attribute list ([`crate::attr`]): one request or reply.
    /// Postern only; never part of a queue file segment.
    AttrList = b'Q',
}

impl RecordType {
    /// Every record type, in queue-file order.
    pub const ALL: [RecordType; 17] = [
        RecordType::Header,
        RecordType::Size,
        RecordType::Time,
        RecordType::Sender,
        RecordType::Attr,
        RecordType::Orcpt,
        RecordType::DsnOrcpt,
        RecordType::DsnNotify,
        RecordType::Recipient,
        RecordType::Done,
        RecordType::Warn,
        RecordType::Message,
        RecordType::Normal,
        RecordType::Cont,
        RecordType::Xtra,
        RecordType::End,
        RecordType::AttrList,
    ];

    /// The record type for a type byte, or `None` for an unknown byte.
    pub const fn from_byte(byte: u8) -> Option<RecordType> {
        Some(match byte {
            b'H' => RecordType::Header,
            b'C' => RecordType::Size,
            b'T' => RecordType::Time,
            b'S' => RecordType::Sender,
            b'A' => RecordType::Attr,
            b'O' => RecordType::Orcpt,
            b'o' => RecordType::DsnOrcpt,
            b'n' => RecordType::DsnNotify,
            b'R' => RecordType::Recipient,
            b'D' => RecordType::Done,
            b'W' => RecordType::Warn,
            b'M' => RecordType::Message,
            b'N' => RecordType::Normal,
            b'L' => RecordType::Cont,
            b'X' => RecordType::Xtra,
            b'E' => RecordType::End,
            b'Q' => RecordType::AttrList,
            _ => return None,
        })
    }

    /// The type byte.
    pub const fn as_byte(self) -> u8 {
        self as u8
    }

    /// A short lower-case name, for logs and `postcat`.
    pub const fn name(self) -> &'static str {
        match self {
            RecordType::Header => "header",
            RecordType::Size => "size",
            RecordType::Time => "time",
            RecordType::Sender => "sender",
            RecordType::Attr => "named_attribute",
            RecordType::Orcpt => "original_recipient",
            RecordType::DsnOrcpt => "dsn_orig_rcpt",
            RecordType::DsnNotify => "dsn_notify",
            RecordType::Recipient => "recipient",
            RecordType::Done => "done",
            RecordType::Warn => "warning_time",
            RecordType::Message => "message_content",
            RecordType::Normal => "regular_text",
            RecordType::Cont => "pointer_text",
            RecordType::Xtra => "message_extracted",
            RecordType::End => "message_end",
            RecordType::AttrList => "attribute_list",
        }
    }
}

impl TryFrom<u8> for RecordType {
    type Error = Error;

    fn try_from(byte: u8) -> Result<Self, Error> {
        RecordType::from_byte(byte).ok_or(Error::UnknownRecordType { byte })
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", char::from(self.as_byte()), self.name())
    }
}

/// One record: a type and its payload, borrowed from the input or the
/// caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record type.
    pub kind: RecordType,
    /// The payload.
    pub data: &'a [u8],
}

impl<'a> Record<'a> {
    /// A record of type `kind` with payload `data`.
    pub const fn new(kind: RecordType, data: &'a [u8]) -> Record<'a> {
        Record { kind, data }
    }

    /// The number of bytes this record takes when encoded, or `None` if the
    /// payload is longer than `u32::MAX` and cannot be encoded.
    pub fn encoded_len(&self) -> Option<usize> {
        let len = u32::try_from(self.data.len()).ok()?;
        1usize
            .checked_add(varint::encoded_len(len))?
            .checked_add(self.data.len())
    }
}

/// Appends records to a byte vector.
///
/// ```
/// use postern_wire::{Decoder, Encoder, RecordType};
///
/// let mut buf = Vec::new();
/// let mut enc = Encoder::new(&mut buf);
/// enc.put(RecordType::Sender, b"alice@example.org").unwrap();
/// enc.put(RecordType::End, b"").unwrap();
///
/// let dec = Decoder::new();
/// let (rec, used) = dec.feed(&buf).unwrap().unwrap();
/// assert_eq!(rec.kind, RecordType::Sender);
/// assert_eq!(rec.data, b"alice@example.org");
/// assert_eq!(used, 19);
/// ```
#[derive(Debug)]
pub struct Encoder<'o> {
    out: &'o mut Vec<u8>,
}

impl<'o> Encoder<'o> {
    /// An encoder that appends to `out`.
    pub fn new(out: &'o mut Vec<u8>) -> Encoder<'o> {
        Encoder { out }
    }

    /// Appends one record and returns the offset of its type byte in the
    /// output vector.
    ///
    /// Fails only if `data` is longer than `u32::MAX` bytes; nothing is
    /// written then.
    pub fn put(&mut self, kind: RecordType, data: &[u8]) -> Result<usize, Error> {
        let len =
            u32::try_from(data.len()).map_err(|_| Error::PayloadTooLong { len: data.len() })?;
        let offset = self.out.len();
        self.out.push(kind.as_byte());
        varint::encode(len, self.out);
        self.out.extend_from_slice(data);
        Ok(offset)
    }

    /// Appends `record`; see [`Encoder::put`].
    pub fn put_record(&mut self, record: Record<'_>) -> Result<usize, Error> {
        self.put(record.kind, record.data)
    }
}

/// Encodes one record into a new vector; see [`Encoder::put`].
pub fn encode(kind: RecordType, data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(data.len().saturating_add(6));
    Encoder::new(&mut out).put(kind, data)?;
    Ok(out)
}

/// A sans-I/O record decoder with a payload length limit.
///
/// The decoder holds no state besides its limit: the caller owns the buffer,
/// calls [`Decoder::feed`] with everything not yet consumed, drops the
/// returned number of bytes after using the record, and reads more input
/// when `feed` returns `Ok(None)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    max_len: u32,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with [`DEFAULT_MAX_RECORD_LEN`].
    pub const fn new() -> Decoder {
        Decoder {
            max_len: DEFAULT_MAX_RECORD_LEN,
        }
    }

    /// A decoder that rejects payloads longer than `max_len` bytes.
    pub const fn with_max_len(max_len: u32) -> Decoder {
        Decoder { max_len }
    }

    /// The payload length limit.
    pub const fn max_len(&self) -> u32 {
        self.max_len
    }

    /// Decodes the record at the start of `input`.
    ///
    /// - `Ok(Some((record, used)))`: a whole record; `used` bytes of `input`
    ///   belong to it.
    /// - `Ok(None)`: `input` ends inside a record; offer it again with more
    ///   bytes appended.
    /// - `Err(_)`: the stream is malformed (an unknown type byte, or a bad or
    ///   too large length). The decision is made from the bytes seen, so the
    ///   same stream fed in pieces fails at the same point.
    pub fn feed<'a>(&self, input: &'a [u8]) -> Result<Option<(Record<'a>, usize)>, Error> {
        let Some((&type_byte, rest)) = input.split_first() else {
            return Ok(None);
        };
        let kind = RecordType::try_from(type_byte)?;
        let Some((len, len_bytes)) = varint::decode(rest, self.max_len)? else {
            return Ok(None);
        };
        let len = usize::try_from(len).map_err(|_| Error::PayloadTooLong { len: usize::MAX })?;
        let Some(rest) = rest.get(len_bytes..) else {
            return Ok(None);
        };
        let Some(data) = rest.get(..len) else {
            return Ok(None);
        };
        let used = 1 + len_bytes + len;
        Ok(Some((Record { kind, data }, used)))
    }

    /// Iterates over the records of a complete buffer.
    ///
    /// The iterator yields `Err` once and stops on a malformed record; if the
    /// buffer ends inside a record it yields [`Error::Truncated`].
    pub fn records<'a>(&self, input: &'a [u8]) -> Records<'a> {
        Records {
            decoder: *self,
            input,
            offset: 0,
            failed: false,
        }
    }
}

/// Iterator over the records of a complete buffer; see [`Decoder::records`].
#[derive(Debug, Clone)]
pub struct Records<'a> {
    decoder: Decoder,
    input: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Records<'a> {
    /// The offset of the next record in the input (after an error: of the
    /// record that failed).
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<(usize, Record<'a>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.input.get(self.offset..)?;
        if rest.is_empty() {
            return None;
        }
        match self.decoder.feed(rest) {
            Ok(Some((record, used))) => {
                let at = self.offset;
                self.offset = self.offset.saturating_add(used);
                Some(Ok((at, record)))
            }
            Ok(None) => {
                self.failed = true;
                Some(Err(Error::Truncated))
            }
            Err(err) => {
                self.failed = true;
                Some(Err(err))
            }
        }
    }
}

/// The three parts of a mail message, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Envelope: arrival time, sender, attributes, recipients. Ends with
    /// [`RecordType::Message`].
    Envelope,
    /// Message content. Ends with [`RecordType::Xtra`].
    Content,
    /// Information extracted from the headers by cleanup. Ends with
    /// [`RecordType::End`].
    Extracted,
}

/// Which record types a stream may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Rules {
    /// Input from an unprivileged submitter: what postdrop accepts from
    /// sendmail and pickup accepts from `maildrop/` (Postfix
    /// `REC_TYPE_POST_*`). No done recipients, no warning time, no DSN
    /// original recipient and no pre-rewrite original recipient.
    Post,
    /// Queue files and trusted IPC (Postfix `REC_TYPE_ENVELOPE`,
    /// `REC_TYPE_CONTENT`, `REC_TYPE_EXTRACT`).
    #[default]
    Queue,
}

const QUEUE_ENVELOPE: &[RecordType] = &[
    RecordType::Time,
    RecordType::Sender,
    RecordType::Attr,
    RecordType::Orcpt,
    RecordType::DsnOrcpt,
    RecordType::DsnNotify,
    RecordType::Recipient,
    RecordType::Done,
    RecordType::Warn,
    RecordType::Message,
];
const QUEUE_CONTENT: &[RecordType] = &[RecordType::Normal, RecordType::Cont, RecordType::Xtra];
const QUEUE_EXTRACTED: &[RecordType] = &[
    RecordType::Attr,
    RecordType::Orcpt,
    RecordType::DsnOrcpt,
    RecordType::DsnNotify,
    RecordType::Recipient,
    RecordType::Done,
    RecordType::End,
];
// XXX: Time is allowed because postdrop writes the arrival time itself;
// cleanup must not trust a time record that came from a submitter.
const POST_ENVELOPE: &[RecordType] = &[
    RecordType::Time,
    RecordType::Sender,
    RecordType::Attr,
    RecordType::DsnNotify,
    RecordType::Recipient,
    RecordType::Message,
];
const POST_CONTENT: &[RecordType] = QUEUE_CONTENT;
const POST_EXTRACTED: &[RecordType] = &[RecordType::Attr, RecordType::Recipient, RecordType::End];

impl Segment {
    /// The record type that ends this segment.
    pub const fn terminator(self) -> RecordType {
        match self {
            Segment::Envelope => RecordType::Message,
            Segment::Content => RecordType::Xtra,
            Segment::Extracted => RecordType::End,
        }
    }

    /// The segment after this one, or `None` after [`Segment::Extracted`].
    pub const fn next(self) -> Option<Segment> {
        match self {
            Segment::Envelope => Some(Segment::Content),
            Segment::Content => Some(Segment::Extracted),
            Segment::Extracted => None,
        }
    }

    /// The record types allowed in this segment under `rules`, including
    /// the terminator.
    pub const fn allowed(self, rules: Rules) -> &'static [RecordType] {
        match (rules, self) {
            (Rules::Queue, Segment::Envelope) => QUEUE_ENVELOPE,
            (Rules::Queue, Segment::Content) => QUEUE_CONTENT,
            (Rules::Queue, Segment::Extracted) => QUEUE_EXTRACTED,
            (Rules::Post, Segment::Envelope) => POST_ENVELOPE,
            (Rules::Post, Segment::Content) => POST_CONTENT,
            (Rules::Post, Segment::Extracted) => POST_EXTRACTED,
        }
    }

    /// Whether `kind` may appear in this segment under `rules`.
    pub fn allows(self, rules: Rules, kind: RecordType) -> bool {
        self.allowed(rules).contains(&kind)
    }

    /// A lower-case name for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Segment::Envelope => "envelope",
            Segment::Content => "content",
            Segment::Extracted => "extracted",
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks that record types arrive in segment order under a set of
/// [`Rules`] (the record-type state machine of Postfix cleanup and pickup).
///
/// ```
/// use postern_wire::{RecordType, Rules, Segment, Sequence};
///
/// let mut seq = Sequence::new(Rules::Post);
/// assert_eq!(seq.accept(RecordType::Sender).unwrap(), Segment::Envelope);
/// assert!(seq.accept(RecordType::Done).is_err()); // not from a submitter
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    rules: Rules,
    segment: Option<Segment>,
}

impl Sequence {
    /// A checker positioned at the start of the envelope.
    pub const fn new(rules: Rules) -> Sequence {
        Sequence {
            rules,
            segment: Some(Segment::Envelope),
        }
    }

    /// The segment the next record belongs to, or `None` after
    /// [`RecordType::End`].
    pub const fn segment(&self) -> Option<Segment> {
        self.segment
    }

    /// Whether [`RecordType::End`] has been accepted.
    pub const fn is_finished(&self) -> bool {
        self.segment.is_none()
    }

    /// Accepts the next record type and returns the segment it belongs to
    /// (a terminator belongs to the segment it ends).
    ///
    /// After an error the checker is unchanged, so a caller that wants to
    /// keep reading to the end (as cleanup does, to report errors only when
    /// the client is ready to listen) can do so.
    pub fn accept(&mut self, kind: RecordType) -> Result<Segment, Error> {
        let Some(segment) = self.segment else {
            return Err(Error::RecordAfterEnd { got: kind });
        };
        if !segment.allows(self.rules, kind) {
            return Err(Error::UnexpectedRecord { segment, got: kind });
        }
        if kind == segment.terminator() {
            self.segment = segment.next();
        }
        Ok(segment)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::varint::LengthError;

    #[test]
    fn type_bytes_are_distinct_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for kind in RecordType::ALL {
            assert!(seen.insert(kind.as_byte()), "duplicate byte for {kind:?}");
            assert_eq!(RecordType::from_byte(kind.as_byte()), Some(kind));
        }
        let known = (0..=255u8).filter(|b| RecordType::from_byte(*b).is_some());
        assert_eq!(known.count(), RecordType::ALL.len());
    }

    #[test]
    fn done_and_recipient_differ_only_in_type() {
        let r = encode(RecordType::Recipient, b"bob@example.org").unwrap();
        let d = encode(RecordType::Done, b"bob@example.org").unwrap();
        assert_eq!(r.len(), d.len());
        assert_eq!(r[1..], d[1..]);
    }

    #[test]
    fn known_answer() {
        let bytes = encode(RecordType::Sender, b"a@b").unwrap();
        assert_eq!(bytes, b"S\x03a@b");
        let long = vec![b'x'; 300];
        let bytes = encode(RecordType::Normal, &long).unwrap();
        assert_eq!(&bytes[..3], b"N\xac\x02");
    }

    #[test]
    fn unknown_type_is_an_error() {
        assert_eq!(
            Decoder::new().feed(b"Z\x00"),
            Err(Error::UnknownRecordType { byte: b'Z' })
        );
        // Decided from the first byte alone.
        assert_eq!(
            Decoder::new().feed(b"\x00"),
            Err(Error::UnknownRecordType { byte: 0 })
        );
    }

    #[test]
    fn needs_more() {
        let dec = Decoder::new();
        assert_eq!(dec.feed(b""), Ok(None));
        assert_eq!(dec.feed(b"S"), Ok(None));
        assert_eq!(dec.feed(b"S\x03a@"), Ok(None));
        assert_eq!(dec.feed(b"S\x80"), Ok(None));
    }

    #[test]
    fn limit_checked_before_payload() {
        let dec = Decoder::with_max_len(10);
        assert_eq!(
            dec.feed(b"N\x0b"),
            Err(Error::Length(LengthError::ExceedsLimit {
                at_least: 11,
                max: 10
            }))
        );
        assert!(dec.feed(b"N\x0a").unwrap().is_none());
    }

    #[test]
    fn records_iterator_reports_truncation() {
        let mut buf = encode(RecordType::Time, b"x").unwrap();
        buf.extend_from_slice(b"S\x05ab");
        let all: Vec<_> = Decoder::new().records(&buf).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], Ok((0, Record::new(RecordType::Time, b"x"))));
        assert_eq!(all[1], Err(Error::Truncated));
    }

    #[test]
    fn sequence_queue_rules() {
        let mut seq = Sequence::new(Rules::Queue);
        for kind in [
            RecordType::Time,
            RecordType::Sender,
            RecordType::Recipient,
            RecordType::Message,
        ] {
            assert_eq!(seq.accept(kind), Ok(Segment::Envelope));
        }
        assert_eq!(
            seq.accept(RecordType::Recipient),
            Err(Error::UnexpectedRecord {
                segment: Segment::Content,
                got: RecordType::Recipient
            })
        );
        assert_eq!(seq.accept(RecordType::Normal), Ok(Segment::Content));
        assert_eq!(seq.accept(RecordType::Xtra), Ok(Segment::Content));
        assert_eq!(seq.accept(RecordType::Recipient), Ok(Segment::Extracted));
        assert!(!seq.is_finished());
        assert_eq!(seq.accept(RecordType::End), Ok(Segment::Extracted));
        assert!(seq.is_finished());
        assert_eq!(
            seq.accept(RecordType::End),
            Err(Error::RecordAfterEnd {
                got: RecordType::End
            })
        );
    }

    #[test]
    fn prologue_and_ipc_records_belong_to_no_segment() {
        for segment in [Segment::Envelope, Segment::Content, Segment::Extracted] {
            for rules in [Rules::Queue, Rules::Post] {
                for kind in [RecordType::Header, RecordType::Size, RecordType::AttrList] {
                    assert!(!segment.allows(rules, kind));
                }
            }
        }
    }

    #[test]
    fn post_rules_are_a_subset() {
        for segment in [Segment::Envelope, Segment::Content, Segment::Extracted] {
            for kind in segment.allowed(Rules::Post) {
                assert!(segment.allows(Rules::Queue, *kind), "{segment} {kind}");
            }
            assert!(segment.allows(Rules::Post, segment.terminator()));
        }
        assert!(!Segment::Envelope.allows(Rules::Post, RecordType::Done));
        assert!(!Segment::Envelope.allows(Rules::Post, RecordType::Warn));
    }

    fn record_type() -> impl Strategy<Value = RecordType> {
        proptest::sample::select(RecordType::ALL.to_vec())
    }

    fn records() -> impl Strategy<Value = Vec<(RecordType, Vec<u8>)>> {
        proptest::collection::vec(
            (
                record_type(),
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..8),
                    proptest::collection::vec(any::<u8>(), 100..400),
                ],
            ),
            0..12,
        )
    }

    /// Decodes `input` as a stream that arrives in chunks of the given
    /// sizes, the way a socket reader would use the decoder.
    fn decode_chunked(
        dec: Decoder,
        input: &[u8],
        chunks: &[usize],
    ) -> (Vec<(RecordType, Vec<u8>)>, Option<Error>) {
        let mut buf: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut pos = 0;
        let mut sizes = chunks.iter().copied().cycle();
        while pos < input.len() {
            let n = sizes.next().unwrap_or(1).max(1);
            let end = (pos + n).min(input.len());
            buf.extend_from_slice(&input[pos..end]);
            pos = end;
            loop {
                match dec.feed(&buf) {
                    Ok(Some((rec, used))) => {
                        out.push((rec.kind, rec.data.to_vec()));
                        buf.drain(..used);
                    }
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        let err = if buf.is_empty() {
            None
        } else {
            Some(Error::Truncated)
        };
        (out, err)
    }

    proptest! {
        #[test]
        fn encode_decode_identity(recs in records()) {
            let mut buf = Vec::new();
            let mut enc = Encoder::new(&mut buf);
            for (kind, data) in &recs {
                enc.put(*kind, data).unwrap();
            }
            let decoded: Vec<_> = Decoder::new()
                .records(&buf)
                .map(|r| r.map(|(_, rec)| (rec.kind, rec.data.to_vec())))
                .collect::<Result<_, _>>()
                .unwrap();
            prop_assert_eq!(decoded, recs);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_reencode(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            max in 0u32..100,
        ) {
            let dec = Decoder::with_max_len(max);
            let mut reencoded = Vec::new();
            let mut consumed = 0;
            for item in dec.records(&bytes) {
                match item {
                    Ok((at, rec)) => {
                        prop_assert_eq!(at, consumed);
                        prop_assert!(rec.data.len() <= max as usize);
                        Encoder::new(&mut reencoded).put_record(rec).unwrap();
                        consumed = reencoded.len();
                    }
                    Err(_) => break,
                }
            }
            // decode -> encode gives back exactly the bytes consumed.
            prop_assert_eq!(&bytes[..consumed], reencoded.as_slice());
        }

        #[test]
        fn split_feeding_gives_same_result(
            recs in records(),
            garbage in proptest::collection::vec(any::<u8>(), 0..16),
            chunks in proptest::collection::vec(1usize..40, 1..8),
            max in prop_oneof![Just(DEFAULT_MAX_RECORD_LEN), 0u32..300],
        ) {
            let mut buf = Vec::new();
            let mut enc = Encoder::new(&mut buf);
            for (kind, data) in &recs {
                enc.put(*kind, data).unwrap();
            }
            buf.extend_from_slice(&garbage);
            let dec = Decoder::with_max_len(max);
            let whole = decode_chunked(dec, &buf, &[buf.len().max(1)]);
            let pieces = decode_chunked(dec, &buf, &chunks);
            prop_assert_eq!(&whole, &pieces);
            let bytewise = decode_chunked(dec, &buf, &[1]);
            prop_assert_eq!(&whole, &bytewise);
        }
    }

    #[test]
    fn split_at_every_boundary() {
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf);
        enc.put(RecordType::Sender, b"a@example.org").unwrap();
        enc.put(RecordType::Normal, &[b'x'; 200]).unwrap();
        enc.put(RecordType::End, b"").unwrap();
        let dec = Decoder::new();
        let whole = decode_chunked(dec, &buf, &[buf.len()]);
        for split in 1..buf.len() {
            let split_result = decode_chunked(dec, &buf, &[split, buf.len()]);
            assert_eq!(whole, split_result, "split at {split}");
        }
    }
}

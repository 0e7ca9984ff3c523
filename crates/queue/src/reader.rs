//! Reading and checking a queue file.
//!
//! Postfix counterparts: the record loops of `qmgr/qmgr_message.c` and
//! `postcat/postcat.c`, and `global/mail_open_ok.c` for [`is_ready`].
//!
//! The reader checks everything it can: the header and format version,
//! the size record against what the file really holds, the allowed record
//! types of each segment ([`postern_wire::Sequence`]), fixed widths, UTF-8
//! in addresses, and the required `E` record with nothing after it. Any
//! failure is [`Error::Corrupt`] with the offset of the offending record;
//! none panics.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::SystemTime;

use postern_wire::attr::is_valid_name;
use postern_wire::{DEFAULT_MAX_RECORD_LEN, Decoder, Record, RecordType, Records, Rules, Segment};

use crate::format::{
    self, FORMAT_VERSION, HEADER_PAYLOAD_LEN, MAGIC, SIZE_RECORD_OFFSET, SizeRecord,
    TIME_PAYLOAD_LEN, WARN_PAYLOAD_LEN,
};
use crate::{Corruption, Error, Notify};

/// The default largest queue file the reader loads (1 GiB).
pub const DEFAULT_MAX_FILE_LEN: u64 = 1 << 30;

/// What [`QueueFile::open_envelope`] reads at once from a file's start:
/// all of a small message's file.
const ENVELOPE_READ: u64 = 4096;

/// How to read a queue file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Record types allowed per segment: [`Rules::Queue`] for queue files,
    /// [`Rules::Post`] for files from `maildrop/`.
    pub rules: Rules,
    /// The longest record payload accepted.
    pub max_record_len: u32,
    /// The largest file accepted.
    pub max_file_len: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            rules: Rules::Queue,
            max_record_len: DEFAULT_MAX_RECORD_LEN,
            max_file_len: DEFAULT_MAX_FILE_LEN,
        }
    }
}

/// A named attribute (`A` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// The name.
    pub name: String,
    /// The value.
    pub value: Vec<u8>,
    /// The segment it was found in.
    pub segment: Segment,
}

/// Whether a recipient still needs delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipientStatus {
    /// Crossed off (`D` record).
    Done,
    /// Still to be delivered (`R` record).
    Pending,
}

/// A recipient and the records that qualify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The address.
    pub address: String,
    /// The original address before rewriting (`O`).
    pub orcpt: Option<String>,
    /// The DSN original recipient (`o`).
    pub dsn_orcpt: Option<String>,
    /// The DSN notify flags (`n`).
    pub notify: Option<Notify>,
    /// Done or pending.
    pub status: RecipientStatus,
    /// The offset of the `R`/`D` record, for [`crate::mark_done`].
    pub offset: u64,
    /// The segment it was found in.
    pub segment: Segment,
}

/// The "delayed mail" warning time (`W` record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarnTime {
    /// When to warn, or `None` if no warning is due.
    pub at: Option<SystemTime>,
    /// The offset of the record, for [`crate::set_warn_time`].
    pub offset: u64,
}

/// A parsed and checked queue file.
#[derive(Debug, Clone)]
pub struct QueueFile {
    bytes: Vec<u8>,
    version: u32,
    size: SizeRecord,
    arrival: SystemTime,
    sender: String,
    attrs: Vec<Attr>,
    recipients: Vec<Recipient>,
    warn: Option<WarnTime>,
    max_record_len: u32,
}

/// Whether a file's mode says it is committed: a regular file with the
/// owner-execute bit (Postfix `MAIL_QUEUE_STAT_READY`).
pub fn is_ready(meta: &Metadata) -> bool {
    meta.file_type().is_file() && meta.mode() & 0o100 != 0
}

impl QueueFile {
    /// Opens and reads the queue file at `path` with default options.
    ///
    /// The path must be a regular file; symbolic links are not followed.
    pub fn open(path: &Path) -> Result<QueueFile, Error> {
        QueueFile::open_with(path, &ReadOptions::default())
    }

    /// Opens and reads the queue file at `path`.
    pub fn open_with(path: &Path, opts: &ReadOptions) -> Result<QueueFile, Error> {
        let corrupt = |kind| Error::Corrupt {
            path: Some(path.to_owned()),
            offset: 0,
            kind,
        };
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => corrupt(Corruption::NotRegularFile),
                _ => Error::io(path, e),
            })?;
        QueueFile::from_file(&file, path, opts)
    }

    /// Reads the queue file open as `file` (from its current offset: the
    /// start, for a file just opened); `path` is for messages. A delivery
    /// agent reads the file it has locked this way, without opening it a
    /// second time.
    pub fn from_file(file: &File, path: &Path, opts: &ReadOptions) -> Result<QueueFile, Error> {
        let corrupt = |kind| Error::Corrupt {
            path: Some(path.to_owned()),
            offset: 0,
            kind,
        };
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if !meta.file_type().is_file() {
            return Err(corrupt(Corruption::NotRegularFile));
        }
        if meta.len() > opts.max_file_len {
            return Err(corrupt(Corruption::TooLarge {
                len: meta.len(),
                max: opts.max_file_len,
            }));
        }
        let capacity = usize::try_from(meta.len()).unwrap_or(0);
        let mut bytes = Vec::with_capacity(capacity);
        file.take(opts.max_file_len.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(path, e))?;
        QueueFile::from_vec(bytes, opts).map_err(|e| match e {
            Error::Corrupt { offset, kind, .. } => Error::Corrupt {
                path: Some(path.to_owned()),
                offset,
                kind,
            },
            other => other,
        })
    }

    /// Reads a queue file from memory with default options.
    pub fn read(bytes: &[u8]) -> Result<QueueFile, Error> {
        QueueFile::read_with(bytes, &ReadOptions::default())
    }

    /// Reads a queue file from memory.
    pub fn read_with(bytes: &[u8], opts: &ReadOptions) -> Result<QueueFile, Error> {
        QueueFile::from_vec(bytes.to_vec(), opts)
    }

    /// Reads a queue file from memory, keeping the buffer.
    pub fn from_vec(bytes: Vec<u8>, opts: &ReadOptions) -> Result<QueueFile, Error> {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if len > opts.max_file_len {
            return Err(Error::Corrupt {
                path: None,
                offset: 0,
                kind: Corruption::TooLarge {
                    len,
                    max: opts.max_file_len,
                },
            });
        }
        let parsed = parse(&bytes, opts).map_err(|(offset, kind)| Error::Corrupt {
            path: None,
            offset,
            kind,
        })?;
        Ok(QueueFile {
            bytes,
            version: parsed.version,
            size: parsed.size,
            arrival: parsed.arrival,
            sender: parsed.sender,
            attrs: parsed.attrs,
            recipients: parsed.recipients,
            warn: parsed.warn,
            max_record_len: opts.max_record_len,
        })
    }

    /// The format version from the header.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The size record.
    pub fn size(&self) -> &SizeRecord {
        &self.size
    }

    /// The arrival time (`T`).
    pub fn arrival(&self) -> SystemTime {
        self.arrival
    }

    /// The envelope sender (`S`); empty for `<>`.
    pub fn sender(&self) -> &str {
        &self.sender
    }

    /// Every attribute, envelope first, in file order.
    pub fn attrs(&self) -> &[Attr] {
        &self.attrs
    }

    /// The value of the envelope attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&[u8]> {
        envelope_attr(&self.attrs, name)
    }

    /// Every recipient, envelope first, in file order.
    pub fn recipients(&self) -> &[Recipient] {
        &self.recipients
    }

    /// The warning time record, if the file has one.
    pub fn warn(&self) -> Option<WarnTime> {
        self.warn
    }

    /// The whole file as read.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The message content, as pieces whose concatenation is exactly the
    /// bytes given to the writer.
    pub fn content(&self) -> Content<'_> {
        let start = usize::try_from(self.size.data_offset).unwrap_or(usize::MAX);
        let input = self.bytes.get(start..).unwrap_or_default();
        Content {
            records: Decoder::with_max_len(self.max_record_len).records(input),
            newline_due: false,
        }
    }

    /// The message content in one buffer.
    pub fn content_to_vec(&self) -> Vec<u8> {
        let capacity = usize::try_from(self.size.content_length).unwrap_or(0);
        let mut out = Vec::with_capacity(capacity);
        for piece in self.content() {
            out.extend_from_slice(piece);
        }
        out
    }

    /// Writes the message content to `out` and returns the number of bytes.
    pub fn write_content<W: Write>(&self, out: &mut W) -> io::Result<u64> {
        let mut total = 0u64;
        for piece in self.content() {
            out.write_all(piece)?;
            total = total.saturating_add(u64::try_from(piece.len()).unwrap_or(u64::MAX));
        }
        Ok(total)
    }
}

/// A queue file's envelope, read without its content; see
/// [`QueueFile::open_envelope`].
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The size record.
    pub size: SizeRecord,
    /// The arrival time.
    pub arrival: SystemTime,
    /// The sender (empty for the null sender).
    pub sender: String,
    /// The attributes, envelope and extracted.
    pub attrs: Vec<Attr>,
    /// The recipients, envelope and extracted, with their file offsets.
    pub recipients: Vec<Recipient>,
    /// The warning time.
    pub warn: Option<WarnTime>,
}

/// The value of the envelope attribute `name` among `attrs`.
fn envelope_attr<'a>(attrs: &'a [Attr], name: &str) -> Option<&'a [u8]> {
    attrs
        .iter()
        .find(|a| a.segment == Segment::Envelope && a.name == name)
        .map(|a| a.value.as_slice())
}

impl Envelope {
    /// The value of the envelope attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&[u8]> {
        envelope_attr(&self.attrs, name)
    }
}

impl QueueFile {
    /// Reads the envelope and extracted segments of the queue file at
    /// `path`, skipping the content (Postfix showq and qmgr read only the
    /// envelope and jump over the message with the size record's
    /// offsets). Everything read is checked as [`QueueFile::open_with`]
    /// checks it, except the content itself, whose length is taken from
    /// the size record.
    pub fn open_envelope(path: &Path, opts: &ReadOptions) -> Result<Envelope, Error> {
        let corrupt = |offset, kind| Error::Corrupt {
            path: Some(path.to_owned()),
            offset,
            kind,
        };
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => corrupt(0, Corruption::NotRegularFile),
                _ => Error::io(path, e),
            })?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if !meta.file_type().is_file() {
            return Err(corrupt(0, Corruption::NotRegularFile));
        }
        let len = meta.len();
        if len > opts.max_file_len {
            return Err(corrupt(
                0,
                Corruption::TooLarge {
                    len,
                    max: opts.max_file_len,
                },
            ));
        }
        // One read of the file's start holds the header, the size record
        // and, for most messages, the envelope and the extracted segment
        // at the end too; what it does not hold is read where it lies.
        let truncated = |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof => corrupt(0, Corruption::Truncated),
            _ => Error::io(path, e),
        };
        let first = usize::try_from(len.min(ENVELOPE_READ)).unwrap_or(0);
        let mut start = vec![0u8; first];
        file.read_exact_at(&mut start, 0).map_err(truncated)?;
        // The header and size records are fixed, so the size record's
        // payload is at a known place.
        let payload_at = usize::try_from(format::SIZE_PAYLOAD_OFFSET).unwrap_or(usize::MAX);
        let head_len = payload_at.saturating_add(format::SIZE_PAYLOAD_LEN);
        if start.len() < head_len {
            return Err(corrupt(0, Corruption::Truncated));
        }
        let size = start
            .get(payload_at..head_len)
            .and_then(SizeRecord::decode)
            .ok_or(corrupt(SIZE_RECORD_OFFSET, Corruption::BadSizeRecord))?;
        let (data, extracted) = (size.data_offset, size.extracted_offset);
        if data < at(head_len) || extracted < data || extracted > len {
            return Err(corrupt(SIZE_RECORD_OFFSET, Corruption::BadSizeRecord));
        }
        let data_len = usize::try_from(data).unwrap_or(usize::MAX);
        let ext_at = usize::try_from(extracted).unwrap_or(usize::MAX);
        let tail_len = usize::try_from(len - extracted).unwrap_or(usize::MAX);
        let mut bytes = Vec::with_capacity(data_len.saturating_add(tail_len));
        match start.get(..data_len) {
            Some(envelope) => bytes.extend_from_slice(envelope),
            None => {
                bytes.extend_from_slice(&start);
                bytes.resize(data_len, 0);
                file.read_exact_at(&mut bytes[first..], at(first))
                    .map_err(truncated)?;
            }
        }
        match start.get(ext_at..ext_at.saturating_add(tail_len)) {
            Some(tail) => bytes.extend_from_slice(tail),
            None => {
                bytes.resize(data_len.saturating_add(tail_len), 0);
                file.read_exact_at(&mut bytes[data_len..], extracted)
                    .map_err(truncated)?;
            }
        }
        let cut = Cut {
            at: data_len,
            skipped: extracted - data,
        };
        let p =
            parse_cut(&bytes, opts, Some(cut)).map_err(|(offset, kind)| corrupt(offset, kind))?;
        Ok(Envelope {
            size: p.size,
            arrival: p.arrival,
            sender: p.sender,
            attrs: p.attrs,
            recipients: p.recipients,
            warn: p.warn,
        })
    }
}

/// The pieces of a message's content; see [`QueueFile::content`].
#[derive(Debug, Clone)]
pub struct Content<'a> {
    records: Records<'a>,
    newline_due: bool,
}

impl<'a> Iterator for Content<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.newline_due {
            self.newline_due = false;
            return Some(b"\n");
        }
        loop {
            // The records were checked when the file was read, so an error
            // here cannot happen; it would end the content.
            let (_, record) = self.records.next()?.ok()?;
            match record.kind {
                RecordType::Normal if record.data.is_empty() => return Some(b"\n"),
                RecordType::Normal => {
                    self.newline_due = true;
                    return Some(record.data);
                }
                RecordType::Cont if record.data.is_empty() => {}
                RecordType::Cont => return Some(record.data),
                _ => return None,
            }
        }
    }
}

struct Parsed {
    version: u32,
    size: SizeRecord,
    arrival: SystemTime,
    sender: String,
    attrs: Vec<Attr>,
    recipients: Vec<Recipient>,
    warn: Option<WarnTime>,
}

type Failure = (u64, Corruption);

#[derive(Default)]
struct PendingRecipient {
    orcpt: Option<String>,
    dsn_orcpt: Option<String>,
    notify: Option<Notify>,
    first: Option<RecordType>,
}

impl PendingRecipient {
    fn note(&mut self, kind: RecordType) {
        self.first.get_or_insert(kind);
    }
}

fn at(offset: usize) -> u64 {
    u64::try_from(offset).unwrap_or(u64::MAX)
}

fn next_record<'a>(
    dec: &Decoder,
    bytes: &'a [u8],
    pos: usize,
) -> Result<(Record<'a>, usize), Failure> {
    let rest = bytes.get(pos..).unwrap_or_default();
    match dec.feed(rest) {
        Ok(Some((record, used))) => Ok((record, pos.saturating_add(used))),
        Ok(None) => Err((at(pos), Corruption::Truncated)),
        Err(e) => Err((at(pos), Corruption::Record(e))),
    }
}

fn utf8(kind: RecordType, data: &[u8], offset: u64) -> Result<String, Failure> {
    String::from_utf8(data.to_vec()).map_err(|_| (offset, Corruption::NotUtf8 { kind }))
}

/// Where [`QueueFile::open_envelope`] cut the content out: the position
/// in the buffer, and how many bytes of the file are missing there.
#[derive(Clone, Copy)]
struct Cut {
    at: usize,
    skipped: u64,
}

fn parse(bytes: &[u8], opts: &ReadOptions) -> Result<Parsed, Failure> {
    parse_cut(bytes, opts, None)
}

fn parse_cut(bytes: &[u8], opts: &ReadOptions, cut: Option<Cut>) -> Result<Parsed, Failure> {
    // The file offset of buffer position `p`.
    let shift = |p: usize| match cut {
        Some(c) if p >= c.at => at(p).saturating_add(c.skipped),
        _ => at(p),
    };
    let dec = Decoder::with_max_len(opts.max_record_len);

    // Prologue: header, then size.
    let (header, pos) = next_record(&dec, bytes, 0).map_err(|(offset, kind)| match kind {
        Corruption::Truncated => (offset, kind),
        _ => (offset, Corruption::BadHeader),
    })?;
    if header.kind != RecordType::Header
        || header.data.len() != HEADER_PAYLOAD_LEN
        || !header.data.starts_with(MAGIC)
    {
        return Err((0, Corruption::BadHeader));
    }
    let version = header
        .data
        .get(MAGIC.len()..)
        .and_then(format::le_u32)
        .ok_or((0, Corruption::BadHeader))?;
    if version != FORMAT_VERSION {
        return Err((0, Corruption::UnsupportedVersion { version }));
    }
    let (size_rec, mut pos) = next_record(&dec, bytes, pos)?;
    if size_rec.kind != RecordType::Size {
        return Err((SIZE_RECORD_OFFSET, Corruption::BadSizeRecord));
    }
    let size =
        SizeRecord::decode(size_rec.data).ok_or((SIZE_RECORD_OFFSET, Corruption::BadSizeRecord))?;

    let mut seq = postern_wire::Sequence::new(opts.rules);
    let mut arrival = None;
    let mut sender = None;
    let mut warn = None;
    let mut attrs: Vec<Attr> = Vec::new();
    let mut segment_attrs_from = 0;
    let mut recipients = Vec::new();
    let mut pending = PendingRecipient::default();
    let mut content_length: u64 = 0;
    let mut data_offset = None;
    let mut extracted_offset = None;
    let mut message_offset = 0;

    while !seq.is_finished() {
        let offset = shift(pos);
        let (rec, next) = next_record(&dec, bytes, pos).map_err(|(_, kind)| (shift(pos), kind))?;
        let segment = seq
            .accept(rec.kind)
            .map_err(|e| (offset, Corruption::Record(e)))?;
        let fail = |kind| (offset, kind);
        match rec.kind {
            RecordType::Time => {
                if arrival.is_some() {
                    return Err(fail(Corruption::Duplicate { kind: rec.kind }));
                }
                if rec.data.len() != TIME_PAYLOAD_LEN {
                    return Err(fail(Corruption::BadLength {
                        kind: rec.kind,
                        len: rec.data.len(),
                    }));
                }
                let time = format::decode_time(rec.data)
                    .ok_or(fail(Corruption::BadTime { kind: rec.kind }))?;
                arrival = Some(time);
            }
            RecordType::Sender => {
                if sender.is_some() {
                    return Err(fail(Corruption::Duplicate { kind: rec.kind }));
                }
                sender = Some(utf8(rec.kind, rec.data, offset)?);
            }
            RecordType::Attr => {
                let eq = memchr::memchr(b'=', rec.data).ok_or(fail(Corruption::BadAttr))?;
                let (name, value) = rec.data.split_at(eq);
                if !is_valid_name(name) {
                    return Err(fail(Corruption::BadAttr));
                }
                let name = utf8(rec.kind, name, offset)?;
                let value = value.get(1..).unwrap_or_default().to_vec();
                let same_segment = attrs.get(segment_attrs_from..).unwrap_or_default();
                if same_segment.iter().any(|a| a.name == name) {
                    return Err(fail(Corruption::DuplicateAttr { name }));
                }
                attrs.push(Attr {
                    name,
                    value,
                    segment,
                });
            }
            RecordType::Orcpt => {
                if pending.orcpt.is_some() {
                    return Err(fail(Corruption::Duplicate { kind: rec.kind }));
                }
                pending.orcpt = Some(utf8(rec.kind, rec.data, offset)?);
                pending.note(rec.kind);
            }
            RecordType::DsnOrcpt => {
                if pending.dsn_orcpt.is_some() {
                    return Err(fail(Corruption::Duplicate { kind: rec.kind }));
                }
                pending.dsn_orcpt = Some(utf8(rec.kind, rec.data, offset)?);
                pending.note(rec.kind);
            }
            RecordType::DsnNotify => {
                if pending.notify.is_some() {
                    return Err(fail(Corruption::Duplicate { kind: rec.kind }));
                }
                let &[bits] = rec.data else {
                    return Err(fail(Corruption::BadLength {
                        kind: rec.kind,
                        len: rec.data.len(),
                    }));
                };
                let notify = Notify::from_bits(bits).ok_or(fail(Corruption::BadNotify { bits }))?;
                pending.notify = Some(notify);
                pending.note(rec.kind);
            }
            RecordType::Recipient | RecordType::Done => {
                let fields = std::mem::take(&mut pending);
                recipients.push(Recipient {
                    address: utf8(rec.kind, rec.data, offset)?,
                    orcpt: fields.orcpt,
                    dsn_orcpt: fields.dsn_orcpt,
                    notify: fields.notify,
                    status: if rec.kind == RecordType::Done {
                        RecipientStatus::Done
                    } else {
                        RecipientStatus::Pending
                    },
                    offset,
                    segment,
                });
            }
            RecordType::Warn => {
                if warn.is_some() {
                    return Err(fail(Corruption::Duplicate { kind: rec.kind }));
                }
                if rec.data.len() != WARN_PAYLOAD_LEN {
                    return Err(fail(Corruption::BadLength {
                        kind: rec.kind,
                        len: rec.data.len(),
                    }));
                }
                let when = format::decode_warn(rec.data)
                    .ok_or(fail(Corruption::BadTime { kind: rec.kind }))?;
                warn = Some(WarnTime { at: when, offset });
            }
            RecordType::Message | RecordType::Xtra | RecordType::End => {
                if !rec.data.is_empty() {
                    return Err(fail(Corruption::BadLength {
                        kind: rec.kind,
                        len: rec.data.len(),
                    }));
                }
                if let Some(kind) = pending.first {
                    return Err(fail(Corruption::DanglingRecipientField { kind }));
                }
                match rec.kind {
                    RecordType::Message => {
                        message_offset = offset;
                        data_offset = Some(at(next));
                    }
                    RecordType::Xtra => {
                        extracted_offset = Some(offset);
                        segment_attrs_from = attrs.len();
                    }
                    _ => {}
                }
            }
            RecordType::Normal => {
                let len = at(rec.data.len());
                content_length = content_length.saturating_add(len).saturating_add(1);
            }
            RecordType::Cont => {
                content_length = content_length.saturating_add(at(rec.data.len()));
            }
            // The sequence rules admit no other type in any segment.
            other => {
                return Err(fail(Corruption::Record(
                    postern_wire::Error::UnexpectedRecord {
                        segment,
                        got: other,
                    },
                )));
            }
        }
        if pending.first.is_some()
            && !matches!(
                rec.kind,
                RecordType::Orcpt | RecordType::DsnOrcpt | RecordType::DsnNotify
            )
        {
            return Err(fail(Corruption::DanglingRecipientField {
                kind: pending.first.unwrap_or(rec.kind),
            }));
        }
        pos = next;
    }
    if pos != bytes.len() {
        return Err((shift(pos), Corruption::TrailingData));
    }

    let arrival = arrival.ok_or((
        message_offset,
        Corruption::Missing {
            kind: RecordType::Time,
        },
    ))?;
    let sender = sender.ok_or((
        message_offset,
        Corruption::Missing {
            kind: RecordType::Sender,
        },
    ))?;
    let checks = [
        (
            "content_length",
            size.content_length,
            // Not read: taken on trust from the size record.
            if cut.is_some() {
                size.content_length
            } else {
                content_length
            },
        ),
        ("data_offset", size.data_offset, data_offset.unwrap_or(0)),
        (
            "extracted_offset",
            size.extracted_offset,
            extracted_offset.unwrap_or(0),
        ),
        (
            "recipient_count",
            size.recipient_count,
            at(recipients.len()),
        ),
    ];
    for (field, recorded, actual) in checks {
        if recorded != actual {
            return Err((
                SIZE_RECORD_OFFSET,
                Corruption::SizeMismatch {
                    field,
                    recorded,
                    actual,
                },
            ));
        }
    }
    Ok(Parsed {
        version,
        size,
        arrival,
        sender,
        attrs,
        recipients,
        warn,
    })
}

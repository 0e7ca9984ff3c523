//! Sans-I/O codecs shared by Postern queue files and IPC.
//!
//! This crate is the Postern counterpart of Postfix's `global/record.c`,
//! `global/rec_type.h` and `util/attr_*.c`: the byte formats that every
//! other crate reads and writes. It does no I/O at all; callers own the
//! buffers and the file descriptors (see the rustls and imap-codec notes in
//! the style guide).
//!
//! # Brief overview
//!
//! - [`varint`]: record lengths in 7-bit groups, capped before allocation.
//! - [`record`]: [`RecordType`], [`Record`], the [`Encoder`] and the
//!   streaming [`Decoder`], and the per-[`Segment`] rules that a
//!   [`Sequence`] enforces.
//! - [`attr`]: named attribute lists for IPC, read in
//!   [`Mode::Lenient`](attr::Mode::Lenient) or
//!   [`Mode::Strict`](attr::Mode::Strict).
//! - [`trigger`]: the one-byte queue manager requests and their collapsing.
//!
//! # Example
//!
//! Decoding records from a stream that arrives in pieces:
//!
//! ```
//! use postern_wire::{Decoder, Encoder, RecordType};
//!
//! let mut wire = Vec::new();
//! let mut enc = Encoder::new(&mut wire);
//! enc.put(RecordType::Sender, b"alice@example.org").unwrap();
//! enc.put(RecordType::Recipient, b"bob@example.org").unwrap();
//!
//! let decoder = Decoder::new();
//! let mut buf = Vec::new();
//! let mut got = Vec::new();
//! for piece in wire.chunks(5) {
//!     buf.extend_from_slice(piece);
//!     while let Some((rec, used)) = decoder.feed(&buf).unwrap() {
//!         got.push((rec.kind, rec.data.to_vec()));
//!         buf.drain(..used);
//!     }
//! }
//! assert_eq!(got[1], (RecordType::Recipient, b"bob@example.org".to_vec()));
//! ```
//!
//! # Robustness
//!
//! Every decoder here takes hostile bytes: none of them panics, indexes
//! unchecked or allocates on a length it has not checked against a limit,
//! and each is covered by property tests (encode → decode identity,
//! arbitrary input, and input split at every boundary).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod attr;
pub mod content;
pub mod record;
pub mod trigger;
pub mod varint;

pub use attr::{AttrList, AttrReader};
pub use record::{
    DEFAULT_MAX_RECORD_LEN, Decoder, Encoder, Record, RecordType, Records, Rules, Segment, Sequence,
};
pub use trigger::Trigger;

/// Everything that can be wrong with bytes handed to this crate.
///
/// Variants name what the input did wrong; none is a bug in the caller
/// except [`Error::PayloadTooLong`] and the builder errors of
/// [`AttrList`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An attribute list ends inside a length or a field.
    #[error("attribute list is truncated")]
    AttrTruncated,
    /// An attribute name appears twice in one list.
    #[error("duplicate attribute {name:?}")]
    DuplicateAttribute {
        /// The repeated name.
        name: String,
    },
    /// An attribute name is empty, too long, or has a forbidden byte.
    #[error("invalid attribute name {name:?}")]
    InvalidAttrName {
        /// The name, made printable and cut short.
        name: String,
    },
    /// An attribute value does not have the requested type.
    #[error("attribute {name:?} is not a valid {expected}")]
    InvalidAttrValue {
        /// The attribute name.
        name: String,
        /// What the caller asked for.
        expected: &'static str,
    },
    /// A length code is malformed or exceeds the limit.
    #[error("bad record length: {0}")]
    Length(#[from] varint::LengthError),
    /// A required attribute is missing.
    #[error("missing attribute {name:?}")]
    MissingAttribute {
        /// The attribute name.
        name: String,
    },
    /// An attribute list was expected, but another record type came.
    #[error("expected an attribute list, got record type {got}")]
    NotAnAttrList {
        /// The record type received.
        got: RecordType,
    },
    /// A payload is too long to encode (more than `u32::MAX` bytes).
    #[error("payload of {len} bytes is too long to encode")]
    PayloadTooLong {
        /// The payload length.
        len: usize,
    },
    /// A record follows the end record.
    #[error("record type {got} after end of message")]
    RecordAfterEnd {
        /// The record type received.
        got: RecordType,
    },
    /// An attribute list has more than [`attr::MAX_ATTRS`] attributes.
    #[error("more than {max} attributes")]
    TooManyAttributes {
        /// The limit.
        max: usize,
    },
    /// A complete buffer ends inside a record.
    #[error("input ends inside a record")]
    Truncated,
    /// In [`attr::Mode::Strict`], an attribute was not taken by the reader.
    #[error("unexpected attribute {name:?}")]
    UnexpectedAttribute {
        /// The attribute name.
        name: String,
    },
    /// A record type is not allowed at this point of the message.
    #[error("record type {got} not allowed in {segment} segment")]
    UnexpectedRecord {
        /// The segment being read.
        segment: Segment,
        /// The record type received.
        got: RecordType,
    },
    /// A type byte is not a known [`RecordType`].
    #[error("unknown record type byte 0x{byte:02x}")]
    UnknownRecordType {
        /// The byte.
        byte: u8,
    },
}

impl Error {
    /// Whether the error is in the record framing itself (an unknown type,
    /// a bad length, or a cut-off record), after which the rest of the
    /// stream cannot be trusted.
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Error::Length(_) | Error::Truncated | Error::UnknownRecordType { .. }
        )
    }
}

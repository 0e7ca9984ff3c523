//! Attribute lists: named, typed fields for IPC requests and replies.
//!
//! Postfix counterparts: `util/attr_print0.c` and `util/attr_scan0.c` (and
//! their `64` and `plain` siblings), `util/attr.h`.
//!
//! An attribute list is the payload of one [`RecordType::AttrList`] record:
//! a sequence of pairs, each a [length code](crate::varint) and the name,
//! then a length code and the value.
//!
//! ```text
//! +-----+------+-----+-------+-----+------+-----+-------+
//! | len | name | len | value | len | name | len | value | ...
//! +-----+------+-----+-------+-----+------+-----+-------+
//! ```
//!
//! This is binary-safe, so Postfix's NUL-terminator and base64 variants are
//! not needed, and the list ends where the record ends, so there is no empty
//! terminator name. Nested `{ … }` groups are not supported: a list of
//! things (recipients, say) is sent as one record per thing.
//!
//! Names are 1 to [`MAX_NAME_LEN`] bytes of ASCII letters, digits, `_`, `-`
//! and `.` ([`is_valid_name`]); by convention they are the lower snake case
//! words of Postfix `mail_proto.h` (`queue_id`, `sender`, `nexthop`). A name
//! appears at most once per list. Values are bytes; [`AttrList::put_u64`]
//! writes decimal digits, so lists stay readable in `postcat` output.
//!
//! # Reading
//!
//! [`AttrReader`] checks the framing up front, then hands out values by name
//! ([`AttrReader::take_str`] and friends). In [`Mode::Lenient`] attributes
//! that nobody took are ignored, which lets a protocol grow new optional
//! attributes without a version bump (the default in Postfix
//! `attr_scan0.c`). In [`Mode::Strict`], [`AttrReader::finish`] fails on any
//! attribute that was not taken (Postfix `ATTR_FLAG_STRICT`). In both modes a
//! missing attribute is `None` from `take_*` and an error from
//! `require_*`.
//!
//! ```
//! use postern_wire::attr::{AttrList, AttrReader, Mode};
//!
//! let mut list = AttrList::new();
//! list.put_str("queue_id", "4Y5Lrq3yTsz1Qwm").put_u64("offset", 1234);
//! let payload = list.finish().unwrap();
//!
//! let mut reader = AttrReader::new(&payload, Mode::Strict).unwrap();
//! assert_eq!(reader.require_str("queue_id").unwrap(), "4Y5Lrq3yTsz1Qwm");
//! assert_eq!(reader.take_u64("offset").unwrap(), Some(1234));
//! assert_eq!(reader.take_str("nexthop").unwrap(), None);
//! reader.finish().unwrap();
//! ```
//!
//! [`RecordType::AttrList`]: crate::RecordType::AttrList

use crate::Error;
use crate::record::{Encoder, RecordType};
use crate::varint;

/// The longest attribute name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// The most attributes one list may hold.
pub const MAX_ATTRS: usize = 4096;

/// Whether `name` is a valid attribute name: 1 to [`MAX_NAME_LEN`] bytes of
/// ASCII letters, digits, `_`, `-` and `.`.
///
/// Queue-file [`RecordType::Attr`] records use the same rule, which also
/// keeps `=` out of names.
pub fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// How an [`AttrReader`] treats attributes that the caller did not ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Ignore them (Postfix default).
    #[default]
    Lenient,
    /// Make [`AttrReader::finish`] fail (Postfix `ATTR_FLAG_STRICT`).
    Strict,
}

/// Builds an attribute list.
///
/// The `put_*` methods chain and never fail; the first problem (an invalid
/// or repeated name, or a value too long to frame) is kept and reported by
/// [`AttrList::finish`], so that building a message stays one expression.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttrList {
    buf: Vec<u8>,
    names: Vec<String>,
    error: Option<Error>,
}

impl AttrList {
    /// An empty list.
    pub fn new() -> AttrList {
        AttrList::default()
    }

    /// Adds a text attribute.
    pub fn put_str(&mut self, name: &str, value: &str) -> &mut AttrList {
        self.put_bytes(name, value.as_bytes())
    }

    /// Adds a number, written in decimal.
    pub fn put_u64(&mut self, name: &str, value: u64) -> &mut AttrList {
        self.put_bytes(name, value.to_string().as_bytes())
    }

    /// Adds a binary attribute.
    pub fn put_bytes(&mut self, name: &str, value: &[u8]) -> &mut AttrList {
        if self.error.is_some() {
            return self;
        }
        if !is_valid_name(name.as_bytes()) {
            self.error = Some(Error::InvalidAttrName {
                name: lossy(name.as_bytes()),
            });
            return self;
        }
        if self.names.iter().any(|n| n == name) {
            self.error = Some(Error::DuplicateAttribute {
                name: name.to_owned(),
            });
            return self;
        }
        if self.names.len() >= MAX_ATTRS {
            self.error = Some(Error::TooManyAttributes { max: MAX_ATTRS });
            return self;
        }
        let Ok(value_len) = u32::try_from(value.len()) else {
            self.error = Some(Error::PayloadTooLong { len: value.len() });
            return self;
        };
        // The name is at most MAX_NAME_LEN bytes, so this cannot fail.
        let name_len = u32::try_from(name.len()).unwrap_or(u32::MAX);
        varint::encode(name_len, &mut self.buf);
        self.buf.extend_from_slice(name.as_bytes());
        varint::encode(value_len, &mut self.buf);
        self.buf.extend_from_slice(value);
        self.names.push(name.to_owned());
        self
    }

    /// The number of attributes added so far.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no attribute has been added.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The encoded list: the payload of an [`RecordType::AttrList`] record.
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        match self.error {
            Some(err) => Err(err),
            None => Ok(self.buf),
        }
    }

    /// Appends the list to `out` as one [`RecordType::AttrList`] record and
    /// returns the offset of the record.
    pub fn encode_record(self, out: &mut Vec<u8>) -> Result<usize, Error> {
        let payload = self.finish()?;
        Encoder::new(out).put(RecordType::AttrList, &payload)
    }
}

#[derive(Debug, Clone)]
struct Entry<'a> {
    name: &'a str,
    value: &'a [u8],
    taken: bool,
}

/// Reads an attribute list; see the [module documentation](self).
#[derive(Debug, Clone)]
#[must_use = "call finish() to enforce Strict mode"]
pub struct AttrReader<'a> {
    mode: Mode,
    entries: Vec<Entry<'a>>,
}

impl<'a> AttrReader<'a> {
    /// Parses the framing of `payload`, checks every name, and rejects
    /// repeated names.
    pub fn new(payload: &'a [u8], mode: Mode) -> Result<AttrReader<'a>, Error> {
        let mut entries = Vec::new();
        let mut rest = payload;
        while !rest.is_empty() {
            if entries.len() >= MAX_ATTRS {
                return Err(Error::TooManyAttributes { max: MAX_ATTRS });
            }
            let name = take_field(&mut rest)?;
            if !is_valid_name(name) {
                return Err(Error::InvalidAttrName { name: lossy(name) });
            }
            let name = std::str::from_utf8(name)
                .map_err(|_| Error::InvalidAttrName { name: lossy(name) })?;
            let value = take_field(&mut rest)?;
            entries.push(Entry {
                name,
                value,
                taken: false,
            });
        }
        let mut names: Vec<&str> = entries.iter().map(|e| e.name).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w.first() == w.last()) {
            let name = pair.first().copied().unwrap_or_default();
            return Err(Error::DuplicateAttribute {
                name: name.to_owned(),
            });
        }
        Ok(AttrReader { mode, entries })
    }

    /// Reads the payload of an [`RecordType::AttrList`] record; any other
    /// record type is an error.
    pub fn from_record(record: crate::Record<'a>, mode: Mode) -> Result<AttrReader<'a>, Error> {
        if record.kind != RecordType::AttrList {
            return Err(Error::NotAnAttrList { got: record.kind });
        }
        AttrReader::new(record.data, mode)
    }

    /// The mode given to [`AttrReader::new`].
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The number of attributes in the list.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All attributes in input order, taken or not.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        self.entries.iter().map(|e| (e.name, e.value))
    }

    /// Takes a binary attribute, or `None` if the list has no such name.
    pub fn take_bytes(&mut self, name: &str) -> Option<&'a [u8]> {
        let entry = self.entries.iter_mut().find(|e| e.name == name)?;
        entry.taken = true;
        Some(entry.value)
    }

    /// Takes a text attribute; a value that is not UTF-8 is an error.
    pub fn take_str(&mut self, name: &str) -> Result<Option<&'a str>, Error> {
        self.take_bytes(name)
            .map(|value| {
                std::str::from_utf8(value).map_err(|_| Error::InvalidAttrValue {
                    name: name.to_owned(),
                    expected: "UTF-8 text",
                })
            })
            .transpose()
    }

    /// Takes a number written in decimal (digits only, no sign, no leading
    /// zeros).
    pub fn take_u64(&mut self, name: &str) -> Result<Option<u64>, Error> {
        self.take_bytes(name)
            .map(|value| {
                parse_u64(value).ok_or_else(|| Error::InvalidAttrValue {
                    name: name.to_owned(),
                    expected: "decimal number",
                })
            })
            .transpose()
    }

    /// Like [`AttrReader::take_bytes`], but a missing name is an error.
    pub fn require_bytes(&mut self, name: &str) -> Result<&'a [u8], Error> {
        self.take_bytes(name).ok_or_else(|| missing(name))
    }

    /// Like [`AttrReader::take_str`], but a missing name is an error.
    pub fn require_str(&mut self, name: &str) -> Result<&'a str, Error> {
        self.take_str(name)?.ok_or_else(|| missing(name))
    }

    /// Like [`AttrReader::take_u64`], but a missing name is an error.
    pub fn require_u64(&mut self, name: &str) -> Result<u64, Error> {
        self.take_u64(name)?.ok_or_else(|| missing(name))
    }

    /// Ends reading. In [`Mode::Strict`], fails on the first attribute that
    /// was not taken.
    pub fn finish(self) -> Result<(), Error> {
        if self.mode == Mode::Strict
            && let Some(entry) = self.entries.iter().find(|e| !e.taken)
        {
            return Err(Error::UnexpectedAttribute {
                name: entry.name.to_owned(),
            });
        }
        Ok(())
    }
}

fn missing(name: &str) -> Error {
    Error::MissingAttribute {
        name: name.to_owned(),
    }
}

/// Splits one length-prefixed field off the front of `rest`.
fn take_field<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], Error> {
    let available = u32::try_from(rest.len()).unwrap_or(u32::MAX);
    let (len, used) = match varint::decode(rest, available) {
        Ok(Some(found)) => found,
        // A length that runs past the end, or claims more than is left.
        Ok(None) | Err(varint::LengthError::ExceedsLimit { .. }) => {
            return Err(Error::AttrTruncated);
        }
        Err(err) => return Err(Error::Length(err)),
    };
    let after_len = rest.get(used..).ok_or(Error::AttrTruncated)?;
    let len = usize::try_from(len).map_err(|_| Error::AttrTruncated)?;
    let field = after_len.get(..len).ok_or(Error::AttrTruncated)?;
    *rest = after_len.get(len..).ok_or(Error::AttrTruncated)?;
    Ok(field)
}

fn parse_u64(value: &[u8]) -> Option<u64> {
    match value {
        [] => None,
        [b'0'] => Some(0),
        [b'0', ..] => None,
        digits => digits.iter().try_fold(0u64, |acc, &b| {
            if !b.is_ascii_digit() {
                return None;
            }
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        }),
    }
}

/// A printable rendering of a hostile name for error messages, cut short.
fn lossy(bytes: &[u8]) -> String {
    let cut = bytes.get(..MAX_NAME_LEN).unwrap_or(bytes);
    String::from_utf8_lossy(cut).into_owned()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn known_answer() {
        let mut list = AttrList::new();
        list.put_str("sender", "a@b").put_u64("size", 42);
        let payload = list.finish().unwrap();
        assert_eq!(payload, b"\x06sender\x03a@b\x04size\x0242");
    }

    #[test]
    fn lenient_skips_unknown_and_reports_missing_as_none() {
        let mut list = AttrList::new();
        list.put_str("queue_id", "x").put_str("future", "y");
        let payload = list.finish().unwrap();
        let mut r = AttrReader::new(&payload, Mode::Lenient).unwrap();
        assert_eq!(r.take_str("queue_id").unwrap(), Some("x"));
        assert_eq!(r.take_str("nexthop").unwrap(), None);
        assert!(matches!(
            r.require_str("nexthop"),
            Err(Error::MissingAttribute { .. })
        ));
        r.finish().unwrap();
    }

    #[test]
    fn strict_rejects_unknown() {
        let mut list = AttrList::new();
        list.put_str("queue_id", "x").put_str("future", "y");
        let payload = list.finish().unwrap();
        let mut r = AttrReader::new(&payload, Mode::Strict).unwrap();
        assert_eq!(r.take_str("queue_id").unwrap(), Some("x"));
        assert_eq!(
            r.finish(),
            Err(Error::UnexpectedAttribute {
                name: "future".into()
            })
        );
    }

    #[test]
    fn builder_reports_first_error() {
        let mut list = AttrList::new();
        list.put_str("a", "1")
            .put_str("a", "2")
            .put_str("bad name", "3");
        assert_eq!(
            list.finish(),
            Err(Error::DuplicateAttribute { name: "a".into() })
        );
        let mut list = AttrList::new();
        list.put_str("a=b", "1");
        assert!(matches!(list.finish(), Err(Error::InvalidAttrName { .. })));
        let mut list = AttrList::new();
        list.put_str("", "1");
        assert!(matches!(list.finish(), Err(Error::InvalidAttrName { .. })));
    }

    #[test]
    fn reader_rejects_bad_framing() {
        assert_eq!(
            AttrReader::new(b"\x05ab", Mode::Lenient).err(),
            Some(Error::AttrTruncated)
        );
        assert_eq!(
            AttrReader::new(b"\x01a", Mode::Lenient).err(),
            Some(Error::AttrTruncated)
        );
        assert_eq!(
            AttrReader::new(b"\x01a\x80", Mode::Lenient).err(),
            Some(Error::AttrTruncated)
        );
        assert!(matches!(
            AttrReader::new(b"\x00\x00", Mode::Lenient),
            Err(Error::InvalidAttrName { .. })
        ));
        assert!(matches!(
            AttrReader::new(b"\x01a\x00\x01a\x00", Mode::Lenient),
            Err(Error::DuplicateAttribute { .. })
        ));
    }

    #[test]
    fn typed_values() {
        let payload = b"\x01n\x03007\x01m\x01x\x01z\x1418446744073709551616";
        let mut r = AttrReader::new(payload, Mode::Lenient).unwrap();
        assert!(r.take_u64("n").is_err());
        assert!(r.take_u64("m").is_err());
        assert!(r.take_u64("z").is_err());
        let mut list = AttrList::new();
        list.put_u64("max", u64::MAX)
            .put_u64("zero", 0)
            .put_bytes("bin", b"\xff\x00");
        let payload = list.finish().unwrap();
        let mut r = AttrReader::new(&payload, Mode::Strict).unwrap();
        assert_eq!(r.require_u64("max").unwrap(), u64::MAX);
        assert_eq!(r.require_u64("zero").unwrap(), 0);
        assert!(r.take_str("bin").is_err());
        assert_eq!(r.take_bytes("bin"), Some(&b"\xff\x00"[..]));
        r.finish().unwrap();
    }

    #[test]
    fn record_wrapping() {
        let mut out = Vec::new();
        let mut list = AttrList::new();
        list.put_str("protocol", "cleanup_protocol");
        list.encode_record(&mut out).unwrap();
        let (rec, used) = crate::Decoder::new().feed(&out).unwrap().unwrap();
        assert_eq!(used, out.len());
        let mut r = AttrReader::from_record(rec, Mode::Strict).unwrap();
        assert_eq!(r.require_str("protocol").unwrap(), "cleanup_protocol");
        r.finish().unwrap();
        let other = crate::Record::new(RecordType::Sender, b"");
        assert!(AttrReader::from_record(other, Mode::Lenient).is_err());
    }

    fn name() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            proptest::sample::select(
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.".to_vec(),
            ),
            1..20,
        )
        .prop_map(|bytes| String::from_utf8(bytes).unwrap_or_default())
    }

    proptest! {
        #[test]
        fn round_trip(
            attrs in proptest::collection::btree_map(
                name(),
                proptest::collection::vec(any::<u8>(), 0..300),
                0..10,
            )
        ) {
            let mut list = AttrList::new();
            for (n, v) in &attrs {
                list.put_bytes(n, v);
            }
            let payload = list.finish().unwrap();
            let mut r = AttrReader::new(&payload, Mode::Strict).unwrap();
            let got: Vec<_> = r.iter().map(|(n, v)| (n.to_owned(), v.to_vec())).collect();
            let want: Vec<_> = attrs.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
            prop_assert_eq!(got, want);
            for (n, v) in &attrs {
                prop_assert_eq!(r.take_bytes(n), Some(v.as_slice()));
            }
            prop_assert!(r.finish().is_ok());
        }

        #[test]
        fn numbers_round_trip(n in any::<u64>()) {
            let mut list = AttrList::new();
            list.put_u64("n", n);
            let payload = list.finish().unwrap();
            let mut r = AttrReader::new(&payload, Mode::Strict).unwrap();
            prop_assert_eq!(r.require_u64("n").unwrap(), n);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(mut r) = AttrReader::new(&bytes, Mode::Strict) {
                let names: Vec<String> = r.iter().map(|(n, _)| n.to_owned()).collect();
                // Re-encoding what was read gives back the input.
                let mut list = AttrList::new();
                for (n, v) in r.iter() {
                    list.put_bytes(n, v);
                }
                prop_assert_eq!(list.finish().unwrap(), bytes.clone());
                for n in &names {
                    let _ = r.take_u64(n);
                    let _ = r.take_str(n);
                }
                prop_assert!(r.finish().is_ok());
            }
        }
    }
}

//! The fixed parts of the queue file format, shared by the writer, the
//! reader and the patcher.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The magic bytes at the start of the header record payload.
pub const MAGIC: &[u8; 7] = b"POSTERN";

/// The queue file format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Header payload: magic + `u32` version.
pub(crate) const HEADER_PAYLOAD_LEN: usize = 11;
/// The header record: type byte, one length byte, payload.
pub(crate) const HEADER_RECORD_LEN: u64 = 13;
/// Offset of the size record's type byte.
pub(crate) const SIZE_RECORD_OFFSET: u64 = HEADER_RECORD_LEN;
/// Offset of the size record's payload.
pub(crate) const SIZE_PAYLOAD_OFFSET: u64 = SIZE_RECORD_OFFSET + 2;
/// Size payload written by format version 1: five `u64` fields.
pub(crate) const SIZE_PAYLOAD_LEN: usize = 40;
/// Index of the queue manager flags among the size fields.
pub(crate) const SIZE_FLAGS_INDEX: u64 = 3;

/// `T` payload: `u64` seconds and `u32` microseconds.
pub(crate) const TIME_PAYLOAD_LEN: usize = 12;
/// `W` payload: `u64` seconds.
pub(crate) const WARN_PAYLOAD_LEN: usize = 8;

/// The header record payload.
pub(crate) fn header_payload() -> [u8; HEADER_PAYLOAD_LEN] {
    let mut out = [0u8; HEADER_PAYLOAD_LEN];
    let (magic, version) = out.split_at_mut(MAGIC.len());
    magic.copy_from_slice(MAGIC);
    version.copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out
}

/// The fixed-width size record (Postfix `REC_TYPE_SIZE`): the second
/// record of every queue file, rewritten in place.
///
/// The payload is five little-endian `u64`s in this order; future format
/// versions only append fields, and readers accept (and ignore) a longer
/// payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SizeRecord {
    /// Bytes of message content, exactly as the reader gives them back.
    pub content_length: u64,
    /// File offset of the first content record (just after `M`).
    pub data_offset: u64,
    /// Number of recipient records (`R` and `D`) in the file.
    pub recipient_count: u64,
    /// Queue manager flags; opaque to this crate (Postfix `qmgr_user.h`).
    pub qmgr_flags: u64,
    /// File offset of the `X` record that starts the extracted segment, so
    /// a reader can skip the content.
    pub extracted_offset: u64,
}

impl SizeRecord {
    pub(crate) fn encode(&self) -> [u8; SIZE_PAYLOAD_LEN] {
        let fields = [
            self.content_length,
            self.data_offset,
            self.recipient_count,
            self.qmgr_flags,
            self.extracted_offset,
        ];
        let mut out = [0u8; SIZE_PAYLOAD_LEN];
        for (chunk, field) in out.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&field.to_le_bytes());
        }
        out
    }

    pub(crate) fn decode(data: &[u8]) -> Option<SizeRecord> {
        if data.len() < SIZE_PAYLOAD_LEN || !data.len().is_multiple_of(8) {
            return None;
        }
        let field = |i: usize| -> Option<u64> { le_u64(data.get(i * 8..i * 8 + 8)?) };
        Some(SizeRecord {
            content_length: field(0)?,
            data_offset: field(1)?,
            recipient_count: field(2)?,
            qmgr_flags: field(3)?,
            extracted_offset: field(4)?,
        })
    }
}

/// DSN notification flags of a recipient (RFC 3461 `NOTIFY`; Postfix
/// `DSN_NOTIFY_*`, same bit values). Stored as one byte in the `n` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Notify(u8);

impl Notify {
    /// `NOTIFY=NEVER`; excludes every other flag.
    pub const NEVER: Notify = Notify(1);
    /// `NOTIFY=SUCCESS`.
    pub const SUCCESS: Notify = Notify(2);
    /// `NOTIFY=DELAY`.
    pub const DELAY: Notify = Notify(4);
    /// `NOTIFY=FAILURE`.
    pub const FAILURE: Notify = Notify(8);

    /// The flags for `bits`, or `None` if `bits` is zero, has unknown bits,
    /// or combines NEVER with another flag.
    pub const fn from_bits(bits: u8) -> Option<Notify> {
        if bits == 0 || bits & !0x0f != 0 || (bits & 1 != 0 && bits != 1) {
            None
        } else {
            Some(Notify(bits))
        }
    }

    /// The bit value.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Both sets of flags; `None` if that would combine NEVER with another.
    pub const fn union(self, other: Notify) -> Option<Notify> {
        Notify::from_bits(self.0 | other.0)
    }

    /// Whether every flag in `other` is set in `self`.
    pub const fn contains(self, other: Notify) -> bool {
        self.0 & other.0 == other.0
    }
}

pub(crate) fn le_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

pub(crate) fn le_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// Seconds and microseconds since the epoch, or `None` before it.
pub(crate) fn to_epoch(time: SystemTime) -> Option<(u64, u32)> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    Some((since.as_secs(), since.subsec_micros()))
}

pub(crate) fn from_epoch(secs: u64, micros: u32) -> Option<SystemTime> {
    if micros >= 1_000_000 {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::new(secs, micros.checked_mul(1000)?))
}

pub(crate) fn encode_time(time: SystemTime) -> Option<[u8; TIME_PAYLOAD_LEN]> {
    let (secs, micros) = to_epoch(time)?;
    let mut out = [0u8; TIME_PAYLOAD_LEN];
    let (s, m) = out.split_at_mut(8);
    s.copy_from_slice(&secs.to_le_bytes());
    m.copy_from_slice(&micros.to_le_bytes());
    Some(out)
}

pub(crate) fn decode_time(data: &[u8]) -> Option<SystemTime> {
    if data.len() != TIME_PAYLOAD_LEN {
        return None;
    }
    let secs = le_u64(data.get(..8)?)?;
    let micros = le_u32(data.get(8..)?)?;
    from_epoch(secs, micros)
}

/// The `W` payload: whole seconds, 0 for "no warning due".
pub(crate) fn encode_warn(at: Option<SystemTime>) -> Option<[u8; WARN_PAYLOAD_LEN]> {
    let secs = match at {
        None => 0,
        Some(t) => to_epoch(t)?.0,
    };
    Some(secs.to_le_bytes())
}

pub(crate) fn decode_warn(data: &[u8]) -> Option<Option<SystemTime>> {
    let secs = le_u64(data)?;
    if secs == 0 {
        return Some(None);
    }
    Some(Some(from_epoch(secs, 0)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_record_round_trip_and_growth() {
        let size = SizeRecord {
            content_length: 1,
            data_offset: 2,
            recipient_count: 3,
            qmgr_flags: 4,
            extracted_offset: 5,
        };
        let bytes = size.encode();
        assert_eq!(SizeRecord::decode(&bytes), Some(size));
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(&[9; 8]);
        assert_eq!(SizeRecord::decode(&longer), Some(size));
        assert_eq!(SizeRecord::decode(&bytes[..32]), None);
        assert_eq!(SizeRecord::decode(&longer[..44]), None);
    }

    #[test]
    fn notify_rules() {
        assert_eq!(Notify::from_bits(0), None);
        assert_eq!(Notify::from_bits(3), None);
        assert_eq!(Notify::from_bits(16), None);
        let both = Notify::SUCCESS.union(Notify::FAILURE).unwrap();
        assert!(both.contains(Notify::FAILURE));
        assert!(!both.contains(Notify::DELAY));
        assert_eq!(Notify::NEVER.union(Notify::DELAY), None);
    }

    #[test]
    fn times() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let back = decode_time(&encode_time(t).unwrap()).unwrap();
        assert_eq!(back, UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_000));
        assert_eq!(encode_time(UNIX_EPOCH - Duration::from_secs(1)), None);
        let mut bad = encode_time(t).unwrap();
        bad[8..].copy_from_slice(&1_000_000u32.to_le_bytes());
        assert_eq!(decode_time(&bad), None);
        assert_eq!(decode_warn(&encode_warn(None).unwrap()), Some(None));
    }
}

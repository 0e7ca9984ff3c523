//! Queue ids: the name of a queue file, unique and time-ordered.
//!
//! Postfix counterpart: the long queue id of `global/mail_queue.h`
//! (`MQID_LG_*`, `enable_long_queue_ids = yes`) and `mail_queue_id_ok`.
//!
//! An id is, in Postfix's "safe" alphabet of digits and consonants
//! (`0-9`, `BCDFGHJKLMNPQRSTVWXYZ`, `bcdfghjklmnpqrstvwxyz`, in ASCII order):
//!
//! 1. the arrival time in seconds, base 52, at least six digits
//!    (zero-padded);
//! 2. the microseconds, base 52, exactly four digits;
//! 3. the separator `z`;
//! 4. the inode number of the file, base 51 (the alphabet without `z`, so
//!    the last `z` is always the separator), no padding.
//!
//! For example `4Y5Lrq3yTsz1Qwm`. Ids sort by arrival time as plain strings
//! (the alphabet is in ASCII order) until the seconds need a seventh digit,
//! in the year 2595. An id is unique while its file exists, because no two
//! files share an inode at the same microsecond; [`crate::QueueFileWriter`]
//! also makes the time strictly increasing within one process.
//!
//! Queues are flat directories (Postfix `hash_queue_depth = 0`), so the
//! path of a queue file is `<spool>/<queue>/<id>`, and [`QueueId::path`] is
//! the only place that builds it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Error, Queue};

const ALPHABET: &[u8; 52] = b"0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
const TIME_BASE: u64 = 52;
const INODE_BASE: u64 = 51;
const SEC_PAD: usize = 6;
const USEC_PAD: usize = 4;
const SEPARATOR: u8 = b'z';
const MICROS_PER_SEC: u32 = 1_000_000;

/// The shortest valid id: six second digits, four microsecond digits, the
/// separator and one inode digit.
pub const MIN_LEN: usize = SEC_PAD + USEC_PAD + 2;
/// The longest valid id: `u64` seconds and inode take at most 12 digits
/// each.
pub const MAX_LEN: usize = 12 + USEC_PAD + 1 + 12;

/// A validated queue id: the name of a queue file (Postfix long queue id,
/// `MQID_LG_*` in `mail_queue.h`).
///
/// In Postfix's "safe" alphabet of digits and consonants (in ASCII order),
/// an id is the arrival time in seconds (base 52, at least six digits), the
/// microseconds (base 52, exactly four digits), the separator `z`, and the
/// file's inode number (base 51, so it never contains `z`). For example
/// `4Y5Lrq3yTsz1Qwm`. Ids sort by time as plain strings until the year
/// 2595. [`QueueId::parse`] accepts only that canonical form, so a valid id
/// is also a safe file name.
///
/// Queues are flat (Postfix `hash_queue_depth = 0`): the file is
/// `<spool>/<queue>/<id>`, built only by [`QueueId::path`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(String);

impl QueueId {
    /// The id for a file with inode number `inode` created at `time`.
    /// Times before the epoch count as the epoch.
    pub fn generate(time: SystemTime, inode: u64) -> QueueId {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        QueueId::from_parts(since.as_secs(), since.subsec_micros(), inode)
    }

    /// The id for `secs` seconds and `micros` microseconds after the epoch
    /// and inode `inode`; `micros` above 999 999 are clamped.
    pub fn from_parts(secs: u64, micros: u32, inode: u64) -> QueueId {
        let micros = micros.min(MICROS_PER_SEC - 1);
        let mut id = String::with_capacity(MAX_LEN);
        push_digits(&mut id, secs, TIME_BASE, SEC_PAD);
        push_digits(&mut id, u64::from(micros), TIME_BASE, USEC_PAD);
        id.push(char::from(SEPARATOR));
        push_digits(&mut id, inode, INODE_BASE, 1);
        QueueId(id)
    }

    /// Parses and validates an id, as found in a directory listing or a
    /// request from a client. Only the canonical form that
    /// [`QueueId::generate`] writes is accepted.
    pub fn parse(name: &str) -> Result<QueueId, Error> {
        let invalid = || Error::InvalidQueueId {
            name: name.chars().take(MAX_LEN + 8).collect(),
        };
        let (secs, micros, inode) = split(name).ok_or_else(invalid)?;
        let canonical = QueueId::from_parts(secs, micros, inode);
        if canonical.0 != name {
            return Err(invalid());
        }
        Ok(canonical)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The time encoded in the id: the moment the file was named.
    pub fn time(&self) -> SystemTime {
        let (secs, micros, _) = split(&self.0).unwrap_or_default();
        UNIX_EPOCH
            .checked_add(Duration::new(secs, micros.saturating_mul(1000)))
            .unwrap_or(UNIX_EPOCH)
    }

    /// The inode number encoded in the id.
    pub fn inode(&self) -> u64 {
        split(&self.0)
            .map(|(_, _, inode)| inode)
            .unwrap_or_default()
    }

    /// The path of this id's file in `queue` under the spool root `spool`.
    pub fn path(&self, spool: &Path, queue: Queue) -> PathBuf {
        spool.join(queue.dir_name()).join(&self.0)
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for QueueId {
    type Err = Error;

    fn from_str(s: &str) -> Result<QueueId, Error> {
        QueueId::parse(s)
    }
}

impl AsRef<str> for QueueId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Appends `value` in `base` (most significant digit first), zero-padded to
/// at least `pad` digits.
fn push_digits(out: &mut String, mut value: u64, base: u64, pad: usize) {
    let mut digits = [b'0'; 16];
    let mut used = 0;
    while value > 0 || used == 0 {
        let Some(slot) = digits.get_mut(used) else {
            break;
        };
        let index = usize::try_from(value % base).unwrap_or_default();
        *slot = ALPHABET.get(index).copied().unwrap_or(b'0');
        value /= base;
        used += 1;
    }
    for _ in used..pad {
        out.push('0');
    }
    for &d in digits.iter().take(used).rev() {
        out.push(char::from(d));
    }
}

/// The value of a digit string in `base`, or `None` for an empty string, a
/// foreign character, or overflow.
fn parse_digits(digits: &[u8], base: u64) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &c| {
        let digit = u64::try_from(ALPHABET.iter().position(|&a| a == c)?).ok()?;
        if digit >= base {
            return None;
        }
        acc.checked_mul(base)?.checked_add(digit)
    })
}

/// Splits an id into seconds, microseconds and inode, checking lengths,
/// alphabet and ranges but not canonical form.
fn split(name: &str) -> Option<(u64, u32, u64)> {
    let bytes = name.as_bytes();
    if bytes.len() < MIN_LEN || bytes.len() > MAX_LEN {
        return None;
    }
    let sep = bytes.iter().rposition(|&b| b == SEPARATOR)?;
    let time = bytes.get(..sep)?;
    let inode = bytes.get(sep.checked_add(1)?..)?;
    let usec_start = time.len().checked_sub(USEC_PAD)?;
    if usec_start < SEC_PAD {
        return None;
    }
    let secs = parse_digits(time.get(..usec_start)?, TIME_BASE)?;
    let micros = parse_digits(time.get(usec_start..)?, TIME_BASE)?;
    let micros = u32::try_from(micros).ok().filter(|m| *m < MICROS_PER_SEC)?;
    let inode = parse_digits(inode, INODE_BASE)?;
    Some((secs, micros, inode))
}

static LAST_TIME: Mutex<(u64, u32)> = Mutex::new((0, 0));

/// The current time for a new id, made strictly increasing within this
/// process so that ids stay unique even when the file system reuses an
/// inode within the same microsecond.
pub(crate) fn unique_time(now: SystemTime) -> (u64, u32) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut time = (since.as_secs(), since.subsec_micros());
    let mut last = LAST_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    if time <= *last {
        let (secs, micros) = *last;
        time = if micros + 1 >= MICROS_PER_SEC {
            (secs.saturating_add(1), 0)
        } else {
            (secs, micros + 1)
        };
    }
    *last = time;
    time
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn shape_matches_postfix() {
        // 2024-01-01T00:00:00.123456Z, inode 123456.
        let id = QueueId::from_parts(1_704_067_200, 123_456, 123_456);
        let s = id.as_str();
        assert!(s.len() >= MIN_LEN);
        let sep = s.rfind('z').unwrap();
        assert_eq!(sep, 10);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(!s.bytes().any(|b| b"AEIOUaeiou".contains(&b)));
        assert_eq!(QueueId::parse(s).unwrap(), id);
        assert_eq!(id.inode(), 123_456);
        assert_eq!(
            id.time(),
            UNIX_EPOCH + Duration::new(1_704_067_200, 123_456_000)
        );
    }

    #[test]
    fn known_answer() {
        // Decoded by hand with the safe alphabet: digits 0-9 are 0-9,
        // B=10 ... Z=30, b=31 ... z=51.
        let id = QueueId::from_parts(52u64.pow(5), 1, 51);
        assert_eq!(id.as_str(), "1000000001z10");
        assert_eq!(QueueId::from_parts(0, 0, 0).as_str(), "0000000000z0");
    }

    #[test]
    fn postfix_example_parses() {
        let id = QueueId::parse("4Y5Lrq3yTsz1Qwm").unwrap();
        assert_eq!(id.to_string(), "4Y5Lrq3yTsz1Qwm");
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "",
            "short",
            "4Y5Lrq3yTs",           // no separator
            "4Y5Lrq3yTsz",          // no inode
            "4Y5Lr3yTsz1Qwm",       // time part too short
            "4Y5Lrq3yTsz1Qwz",      // inode uses z? (last z is separator: empty inode)
            "4Y5Lrq3yTsz01Qwm",     // leading zero in inode
            "04Y5Lrq3yTsz1Qwm",     // leading zero in seconds beyond the pad
            "4Y5Lrq3yTaz1Qwm",      // vowel
            "4Y5Lrq3yTsz1Qw-",      // punctuation
            "4Y5Lrq3yTsz1Qw\u{e9}", // non-ASCII
            "4Y5Lrqzzzzz1",         // microseconds out of range
            "../../etc/passwd",
            "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        ] {
            assert!(QueueId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unique_time_is_strictly_increasing() {
        let now = SystemTime::now();
        let a = unique_time(now);
        let b = unique_time(now);
        let c = unique_time(UNIX_EPOCH);
        assert!(a < b && b < c);
    }

    #[test]
    fn sorts_by_time() {
        let a = QueueId::from_parts(1_700_000_000, 999_999, 7);
        let b = QueueId::from_parts(1_700_000_001, 0, 3);
        assert!(a < b);
    }

    proptest! {
        #[test]
        fn parse_format_round_trip(secs in any::<u64>(), micros in 0u32..1_000_000, inode in any::<u64>()) {
            let id = QueueId::from_parts(secs, micros, inode);
            prop_assert!(id.as_str().len() <= MAX_LEN);
            let parsed = QueueId::parse(id.as_str()).unwrap();
            prop_assert_eq!(&parsed, &id);
            prop_assert_eq!(parsed.inode(), inode);
            prop_assert_eq!(split(id.as_str()), Some((secs, micros, inode)));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            if let Ok(id) = QueueId::parse(&s) {
                prop_assert_eq!(id.as_str(), s.as_str());
            }
        }
    }
}

//! Record lengths in 7-bit groups.
//!
//! Postfix counterpart: the length code in `global/record.c` (`rec_put` and
//! `rec_get_raw`). A length is written low group first, seven bits per byte;
//! the high bit of a byte says that another byte follows.
//!
//! | length      | bytes        |
//! |-------------|--------------|
//! | 0           | `00`         |
//! | 127         | `7f`         |
//! | 128         | `80 01`      |
//! | 300         | `ac 02`      |
//! | `u32::MAX`  | `ff ff ff ff 0f` |
//!
//! Decoding is strict where Postfix is lenient, so that every accepted
//! encoding re-encodes to the same bytes:
//!
//! - a length never exceeds `u32::MAX`, so it never takes more than
//!   [`MAX_BYTES`] bytes;
//! - the encoding must be the shortest one (no trailing zero groups);
//! - the caller gives a maximum, and a length above it is rejected as soon
//!   as the bytes seen so far prove it, before the caller allocates or waits
//!   for the payload.

/// The most bytes a length can take: `u32::MAX` needs five 7-bit groups.
pub const MAX_BYTES: usize = 5;

/// Why a length code was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LengthError {
    /// The length is, or will be once complete, larger than the limit the
    /// caller set.
    #[error("length of at least {at_least} bytes exceeds the limit of {max}")]
    ExceedsLimit {
        /// The smallest value the length can have, given the bytes seen.
        at_least: u64,
        /// The limit given by the caller.
        max: u32,
    },
    /// The length ends in a zero group, so it is not in its shortest form.
    #[error("length code is not in its shortest form")]
    NonCanonical,
    /// The length does not fit in 32 bits.
    #[error("length code does not fit in 32 bits")]
    Overflow,
}

/// Appends the length code for `len` to `out`.
pub fn encode(len: u32, out: &mut Vec<u8>) {
    let (code, n) = encode_array(len);
    out.extend_from_slice(code.get(..n).unwrap_or_default());
}

/// The length code for `len` in a fixed array, with how many of its bytes
/// are used (for writers that should not allocate per record).
pub fn encode_array(len: u32) -> ([u8; MAX_BYTES], usize) {
    let mut code = [0u8; MAX_BYTES];
    let mut n = 0;
    let mut rest = len;
    for slot in code.iter_mut() {
        // Truncation is intended: the mask keeps the low seven bits.
        let mut byte = (rest & 0x7f) as u8;
        rest >>= 7;
        if rest != 0 {
            byte |= 0x80;
        }
        *slot = byte;
        n += 1;
        if rest == 0 {
            break;
        }
    }
    (code, n)
}

/// The number of bytes [`encode`] writes for `len`.
pub const fn encoded_len(len: u32) -> usize {
    match len {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x001f_ffff => 3,
        0x0020_0000..=0x0fff_ffff => 4,
        _ => 5,
    }
}

/// Decodes a length code at the start of `input`.
///
/// Returns `Ok(Some((len, used)))` with the number of bytes the code took,
/// `Ok(None)` when `input` ends inside the code, or an error as soon as the
/// bytes seen so far make the length invalid or larger than `max`. The
/// outcome depends only on the bytes up to the point of decision, so feeding
/// the input in pieces gives the same answer as feeding it whole.
pub fn decode(input: &[u8], max: u32) -> Result<Option<(u32, usize)>, LengthError> {
    let mut value: u64 = 0;
    for (index, &byte) in input.iter().take(MAX_BYTES).enumerate() {
        let group = u64::from(byte & 0x7f);
        // index < 5, so shift <= 28 and `group << shift` < 2^35.
        let shift = 7 * index as u32;
        value |= group << shift;
        if value > u64::from(u32::MAX) {
            return Err(LengthError::Overflow);
        }
        if byte & 0x80 == 0 {
            if index > 0 && group == 0 {
                return Err(LengthError::NonCanonical);
            }
            let len = u32::try_from(value).map_err(|_| LengthError::Overflow)?;
            if len > max {
                return Err(LengthError::ExceedsLimit {
                    at_least: value,
                    max,
                });
            }
            return Ok(Some((len, index + 1)));
        }
        // Another group follows, and in the shortest form the last group is
        // not zero, so the length is at least this much.
        let at_least = value + (1u64 << (shift + 7));
        if at_least > u64::from(u32::MAX) {
            return Err(LengthError::Overflow);
        }
        if at_least > u64::from(max) {
            return Err(LengthError::ExceedsLimit { at_least, max });
        }
    }
    // Only reachable with fewer than MAX_BYTES bytes: a fifth byte either
    // ends the code or overflows above.
    Ok(None)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn enc(len: u32) -> Vec<u8> {
        let mut out = Vec::new();
        encode(len, &mut out);
        out
    }

    #[test]
    fn known_answers() {
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(128), [0x80, 0x01]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(u32::MAX), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(decode(&[0xac, 0x02], u32::MAX), Ok(Some((300, 2))));
    }

    #[test]
    fn incomplete_needs_more() {
        assert_eq!(decode(&[], 10), Ok(None));
        assert_eq!(decode(&[0x80], u32::MAX), Ok(None));
        assert_eq!(decode(&[0xff, 0xff, 0xff, 0xff], u32::MAX), Ok(None));
    }

    #[test]
    fn rejects_overflow_and_long_codes() {
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff, 0x10], u32::MAX),
            Err(LengthError::Overflow)
        );
        assert_eq!(
            decode(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], u32::MAX),
            Err(LengthError::Overflow)
        );
    }

    #[test]
    fn rejects_non_canonical() {
        assert_eq!(decode(&[0x80, 0x00], 1000), Err(LengthError::NonCanonical));
        assert_eq!(decode(&[0x81, 0x00], 1000), Err(LengthError::NonCanonical));
    }

    #[test]
    fn rejects_over_limit_early() {
        // 0x80 alone already proves len >= 128.
        assert_eq!(
            decode(&[0x80], 100),
            Err(LengthError::ExceedsLimit {
                at_least: 128,
                max: 100
            })
        );
        assert_eq!(
            decode(&[101], 100),
            Err(LengthError::ExceedsLimit {
                at_least: 101,
                max: 100
            })
        );
        assert_eq!(decode(&[100], 100), Ok(Some((100, 1))));
    }

    proptest! {
        #[test]
        fn round_trip(len in any::<u32>()) {
            let bytes = enc(len);
            prop_assert_eq!(bytes.len(), encoded_len(len));
            prop_assert_eq!(decode(&bytes, u32::MAX), Ok(Some((len, bytes.len()))));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..8), max in any::<u32>()) {
            if let Ok(Some((len, used))) = decode(&bytes, max) {
                prop_assert!(len <= max);
                let slice = bytes.get(..used).unwrap_or_default();
                let again = enc(len);
                prop_assert_eq!(again.as_slice(), slice);
            }
        }
    }
}

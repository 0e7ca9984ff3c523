//! xtext encoding (RFC 3461 §4), used by ENVID, ORCPT and AUTH=.
//!
//! ```text
//! xtext   = *( xchar / hexchar )
//! xchar   = any ASCII CHAR between "!" (33) and "~" (126) inclusive,
//!           except for "+" and "="
//! hexchar = "+" 2(%x30-39 / %x41-46)   ; "+" and two upper-case hex digits
//! ```
//!
//! Decoding is lenient in one harmless way: lower-case hex digits are
//! accepted after `+` (Postfix `xtext_unquote` does the same). Encoding
//! always produces upper-case hex.
//!
//! Postfix counterpart: `src/util/xtext.c`.

use thiserror::Error;

/// Why an xtext string could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum XtextError {
    /// A `+` was not followed by two hex digits.
    #[error("bad hexchar escape in xtext")]
    BadEscape,
    /// A byte outside `!`..`~`, or a literal `=`.
    #[error("invalid character in xtext")]
    InvalidChar,
}

/// Decodes xtext into raw bytes.
pub fn decode(input: &str) -> Result<Vec<u8>, XtextError> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'+' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(XtextError::BadEscape),
                }
                i += 3;
            }
            b'=' => return Err(XtextError::InvalidChar),
            b'!'..=b'~' => {
                out.push(b);
                i += 1;
            }
            _ => return Err(XtextError::InvalidChar),
        }
    }
    Ok(out)
}

/// Encodes raw bytes as xtext.
pub fn encode(input: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(input.len());
    for &b in input {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push('+');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3461_examples() {
        // RFC 3461 §4.2 ORCPT example: "Bob+20Smith@example.com"-style escapes.
        assert_eq!(decode("QQ+2B+3Dfoo").unwrap(), b"QQ+=foo");
        assert_eq!(encode(b"a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(decode("+e9").unwrap(), [0xe9]);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(decode("a+2"), Err(XtextError::BadEscape));
        assert_eq!(decode("a+zz"), Err(XtextError::BadEscape));
        assert_eq!(decode("a=b"), Err(XtextError::InvalidChar));
        assert_eq!(decode("a b"), Err(XtextError::InvalidChar));
        assert_eq!(decode("\u{e9}"), Err(XtextError::InvalidChar));
    }

    #[test]
    fn round_trip_all_bytes() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)).unwrap(), all);
    }
}

//! The client side of DATA: dot-stuffing outgoing message content.
//!
//! [`DataEncoder`] is the inverse of [`DataReceiver`](crate::DataReceiver):
//! it inserts a `.` before every line that starts with one (RFC 5321
//! §4.5.2), makes sure the content ends with CRLF, and appends the
//! `.<CR><LF>` terminator.
//!
//! Every bare CR and bare LF is sent as CRLF (RFC 5321 §2.3.8: they must
//! not occur alone). Postfix's smtp client does the same in effect, since
//! its queue file stores lines. This also means no receiver, however
//! lenient, can find an end of data inside our output (SMTP smuggling
//! relies on a sender that passes bare newlines through).
//!
//! Postfix counterpart: `smtp/smtp_proto.c` (`smtp_text_out`).

use memchr::memchr2;

/// Streaming dot-stuffer; see the module documentation.
#[derive(Clone, Debug)]
pub struct DataEncoder {
    line_start: bool,
    pending_cr: bool,
}

impl Default for DataEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DataEncoder {
    /// An encoder at the start of the content.
    pub fn new() -> Self {
        Self {
            line_start: true,
            pending_cr: false,
        }
    }

    /// Encodes the next piece of content into `out`.
    pub fn encode(&mut self, content: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < content.len() {
            if self.pending_cr {
                self.pending_cr = false;
                out.extend_from_slice(b"\r\n");
                self.line_start = true;
                if content[i] == b'\n' {
                    i += 1;
                }
                continue;
            }
            if self.line_start && content[i] == b'.' {
                out.push(b'.');
            }
            self.line_start = false;
            match memchr2(b'\r', b'\n', &content[i..]) {
                None => {
                    out.extend_from_slice(&content[i..]);
                    i = content.len();
                }
                Some(offset) => {
                    let at = i + offset;
                    out.extend_from_slice(&content[i..at]);
                    if content[at] == b'\n' {
                        out.extend_from_slice(b"\r\n");
                        self.line_start = true;
                    } else {
                        self.pending_cr = true;
                    }
                    i = at + 1;
                }
            }
        }
    }

    /// Ends the content: a final CRLF if the last line lacks one, then the
    /// `.<CR><LF>` terminator.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            self.line_start = true;
        }
        if !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }

    /// Encodes complete content in one call.
    pub fn encode_all(content: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(content.len() + content.len() / 64 + 5);
        let mut encoder = Self::new();
        encoder.encode(content, &mut out);
        encoder.finish(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffs_and_terminates() {
        assert_eq!(DataEncoder::encode_all(b""), b".\r\n");
        assert_eq!(DataEncoder::encode_all(b"a\r\n"), b"a\r\n.\r\n");
        assert_eq!(DataEncoder::encode_all(b"a"), b"a\r\n.\r\n");
        assert_eq!(
            DataEncoder::encode_all(b".start\r\n.\r\nmid.dle\r\n..\r\n"),
            b"..start\r\n..\r\nmid.dle\r\n...\r\n.\r\n"
        );
    }

    #[test]
    fn normalises_bare_newlines() {
        assert_eq!(
            DataEncoder::encode_all(b"a\n.\nb\r.\rc\r"),
            b"a\r\n..\r\nb\r\n..\r\nc\r\n.\r\n"
        );
    }

    #[test]
    fn any_split_same_output() {
        let content: &[u8] = b".a\r\n\r\n.\n\r.b\rc\r\n.";
        let want = DataEncoder::encode_all(content);
        for split in 0..=content.len() {
            let mut e = DataEncoder::new();
            let mut out = Vec::new();
            e.encode(&content[..split], &mut out);
            e.encode(&content[split..], &mut out);
            e.finish(&mut out);
            assert_eq!(out, want, "split {split}");
        }
    }
}

//! BDAT chunks (RFC 3030 CHUNKING): exact octet counts, no dot-stuffing,
//! no newline rewriting (binary-safe for BINARYMIME), and nothing inside a
//! chunk is ever read as a command.
//!
//! One [`BdatReceiver`] serves a whole transaction: the message is the
//! concatenation of its chunks, so the size limit and [`ContentStats`]
//! span chunks. A chunk whose BDAT command was refused (bad sequence, or a
//! transaction already failed) must still be read off the wire:
//! [`BdatReceiver::skip_chunk`] drains it without storing or counting.
//!
//! Postfix counterpart: `smtpd.c:bdat_cmd`.

use super::data::DataError;
use super::stats::{ContentStats, Scanner};

/// A chunk has been read completely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkEnd {
    /// Octets of the last input slice consumed. The rest of that slice is
    /// the next command.
    pub consumed: usize,
    /// [`DataError::MessageTooBig`] once the message (all chunks so far)
    /// is over the limit; reply [`crate::reply::standard::chunk_too_big`].
    pub error: Option<DataError>,
    /// This was the `LAST` chunk (always `false` for a skipped chunk).
    pub last: bool,
    /// The chunk's size as given on the BDAT command.
    pub size: u64,
}

/// Result of one [`BdatReceiver::feed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkProgress {
    /// The chunk is complete.
    Done(ChunkEnd),
    /// All input consumed; more of the chunk is expected.
    NeedMore,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Store the chunk.
    Keep,
    /// Read and discard the chunk.
    Skip,
}

/// Reads BDAT chunks for one transaction; see the module documentation.
#[derive(Clone, Debug)]
pub struct BdatReceiver {
    size_limit: u64,
    stored: u64,
    too_big: bool,
    scanner: Scanner,
    /// Octets of the current chunk still to read.
    left: u64,
    size: u64,
    last: bool,
    mode: Mode,
    complete: bool,
}

impl BdatReceiver {
    /// A receiver for one message; `size_limit` as Postfix
    /// `message_size_limit` (0: no limit).
    pub fn new(size_limit: u64) -> Self {
        Self {
            size_limit,
            stored: 0,
            too_big: false,
            scanner: Scanner::new(),
            left: 0,
            size: 0,
            last: false,
            mode: Mode::Skip,
            complete: false,
        }
    }

    /// Starts reading an accepted chunk of `size` octets. Call
    /// [`feed`](Self::feed) next, even with an empty slice: a zero-size
    /// chunk (`BDAT 0 LAST`) completes at once.
    pub fn start_chunk(&mut self, size: u64, last: bool) {
        self.left = size;
        self.size = size;
        self.last = last;
        self.mode = Mode::Keep;
    }

    /// Starts draining a refused chunk of `size` octets: nothing is stored
    /// or counted.
    pub fn skip_chunk(&mut self, size: u64) {
        self.left = size;
        self.size = size;
        self.last = false;
        self.mode = Mode::Skip;
    }

    /// Octets of the current chunk still expected.
    pub fn remaining(&self) -> u64 {
        self.left
    }

    /// Whether the message is over the size limit.
    pub fn is_too_big(&self) -> bool {
        self.too_big
    }

    /// Whether the `LAST` chunk has been read.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Forgets the message (RSET, or after LAST): a new transaction
    /// starts with the same size limit.
    pub fn reset(&mut self) {
        *self = Self::new(self.size_limit);
    }

    /// Statistics over all accepted chunks so far. Once the `LAST` chunk
    /// is read, a trailing CR counts as bare.
    pub fn stats(&self) -> ContentStats {
        if self.complete {
            self.scanner.finished()
        } else {
            // A trailing CR may yet be followed by an LF in the next chunk.
            self.scanner.current()
        }
    }

    /// Reads from `input` up to the end of the current chunk, appending
    /// accepted content to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> ChunkProgress {
        let take = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(input.len());
        let chunk = &input[..take];
        self.left -= take as u64;
        if self.mode == Mode::Keep {
            self.store(chunk, out);
        }
        if self.left > 0 {
            return ChunkProgress::NeedMore;
        }
        let last = self.mode == Mode::Keep && self.last;
        if last {
            self.complete = true;
        }
        let error = (self.mode == Mode::Keep && self.too_big).then_some(DataError::MessageTooBig);
        // Further feeds without a new chunk consume nothing.
        self.mode = Mode::Skip;
        ChunkProgress::Done(ChunkEnd {
            consumed: take,
            error,
            last,
            size: self.size,
        })
    }

    fn store(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.scanner.scan(chunk);
        if self.too_big {
            return;
        }
        let len = chunk.len() as u64;
        if self.size_limit > 0 && self.stored + len > self.size_limit {
            let room = usize::try_from(self.size_limit - self.stored).unwrap_or(chunk.len());
            out.extend_from_slice(&chunk[..room.min(chunk.len())]);
            self.stored = self.size_limit;
            self.too_big = true;
        } else {
            out.extend_from_slice(chunk);
            self.stored += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_split_across_feeds_and_commands_not_interpreted() {
        let mut r = BdatReceiver::new(0);
        let mut out = Vec::new();
        r.start_chunk(20, false);
        assert_eq!(r.feed(b"QUIT\r\n.\r\n", &mut out), ChunkProgress::NeedMore);
        assert_eq!(r.remaining(), 11);
        let ChunkProgress::Done(end) = r.feed(b"RSET\r\n\nab\0xBDAT 5 LAST\r\n", &mut out) else {
            panic!()
        };
        assert_eq!(end.consumed, 11);
        assert!(!end.last);
        assert_eq!(out, b"QUIT\r\n.\r\nRSET\r\n\nab\0x");
        r.start_chunk(3, true);
        let ChunkProgress::Done(end) = r.feed(b"\r\nzNOOP", &mut out) else {
            panic!()
        };
        assert_eq!((end.consumed, end.last, end.error), (3, true, None));
        assert!(r.is_complete());
        let stats = r.stats();
        assert_eq!(stats.size, 23);
        assert!(stats.bare_lf && stats.nul_in_body);
    }

    #[test]
    fn every_split_same_result() {
        let input: &[u8] = b"0123456789ABC";
        for split in 0..=input.len() {
            let mut r = BdatReceiver::new(0);
            let mut out = Vec::new();
            r.start_chunk(10, true);
            let mut consumed = None;
            for (base, part) in [(0, &input[..split]), (split, &input[split..])] {
                if let ChunkProgress::Done(end) = r.feed(part, &mut out) {
                    consumed = Some(base + end.consumed);
                    break;
                }
            }
            assert_eq!(consumed, Some(10));
            assert_eq!(out, b"0123456789");
        }
    }

    #[test]
    fn zero_size_last_chunk() {
        let mut r = BdatReceiver::new(0);
        let mut out = Vec::new();
        r.start_chunk(0, true);
        let ChunkProgress::Done(end) = r.feed(&[], &mut out) else {
            panic!()
        };
        assert!(end.last && end.consumed == 0);
    }

    #[test]
    fn size_limit_spans_chunks_and_drains() {
        let mut r = BdatReceiver::new(15);
        let mut out = Vec::new();
        r.start_chunk(10, false);
        let ChunkProgress::Done(end) = r.feed(&[b'a'; 10], &mut out) else {
            panic!()
        };
        assert_eq!(end.error, None);
        r.start_chunk(10, false);
        let ChunkProgress::Done(end) = r.feed(&[b'b'; 12], &mut out) else {
            panic!()
        };
        assert_eq!(end.consumed, 10);
        assert_eq!(end.error, Some(DataError::MessageTooBig));
        assert_eq!(out.len(), 15);
        r.start_chunk(5, true);
        let ChunkProgress::Done(end) = r.feed(&[b'c'; 5], &mut out) else {
            panic!()
        };
        assert_eq!(end.error, Some(DataError::MessageTooBig));
        assert_eq!(out.len(), 15);
        assert_eq!(r.stats().size, 25);
    }

    #[test]
    fn skipped_chunk_is_drained_not_stored() {
        let mut r = BdatReceiver::new(0);
        let mut out = Vec::new();
        r.skip_chunk(4);
        assert_eq!(r.feed(b"MA", &mut out), ChunkProgress::NeedMore);
        let ChunkProgress::Done(end) = r.feed(b"ILRSET\r\n", &mut out) else {
            panic!()
        };
        assert_eq!((end.consumed, end.last, end.error), (2, false, None));
        assert!(out.is_empty());
        assert_eq!(r.stats().size, 0);
    }

    #[test]
    fn trailing_cr_is_bare_only_at_the_end() {
        let mut r = BdatReceiver::new(0);
        let mut out = Vec::new();
        r.start_chunk(2, false);
        let _ = r.feed(b"a\r", &mut out);
        assert!(!r.stats().bare_cr);
        r.start_chunk(1, true);
        let _ = r.feed(b"\n", &mut out);
        assert!(!r.stats().bare_cr);
        let mut r = BdatReceiver::new(0);
        r.start_chunk(2, true);
        let _ = r.feed(b"a\r", &mut out);
        assert!(r.stats().bare_cr);
    }
}

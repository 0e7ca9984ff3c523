//! Splitting message content into line records (Postfix `rec_streamlf.c`).
//!
//! Content travels as one `N` record per line (without its line feed);
//! a line longer than the chunk size is cut into `L` pieces, and content
//! that does not end in a line feed ends with an `L` record. Joining the
//! records back (`N` adds a line feed, `L` does not) gives the exact bytes,
//! however the content was fed in. Queue files and the cleanup protocol
//! both use this.

use crate::record::RecordType;

/// Default longest record payload for content (Postfix `line_length_limit`).
pub const DEFAULT_CHUNK: usize = 2048;

/// Incremental line splitter: feed bytes, get `(RecordType, payload)`.
#[derive(Debug, Clone)]
pub struct LineSplitter {
    chunk: usize,
    pending: Vec<u8>,
}

impl LineSplitter {
    /// A splitter cutting lines into pieces of at most `chunk` bytes
    /// (at least 1).
    pub fn new(chunk: usize) -> LineSplitter {
        LineSplitter {
            chunk: chunk.max(1),
            pending: Vec::new(),
        }
    }

    /// Feeds content; `emit` is called for each complete record, in order.
    /// Returns the number of content bytes consumed (always all of them)
    /// or the first error of `emit`.
    pub fn feed<E>(
        &mut self,
        mut data: &[u8],
        mut emit: impl FnMut(RecordType, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(&first) = data.first() {
            if self.pending.len() >= self.chunk {
                // A full piece: it ends its line only if a line feed follows.
                if first == b'\n' {
                    emit(RecordType::Normal, &self.pending)?;
                    self.pending.clear();
                    data = data.get(1..).unwrap_or_default();
                } else {
                    emit(RecordType::Cont, &self.pending)?;
                    self.pending.clear();
                }
                continue;
            }
            let room = self.chunk - self.pending.len();
            let take = room.min(data.len());
            let (window, _) = data.split_at(take);
            match memchr::memchr(b'\n', window) {
                Some(end) => {
                    let line = window.get(..end).unwrap_or_default();
                    if self.pending.is_empty() {
                        emit(RecordType::Normal, line)?;
                    } else {
                        self.pending.extend_from_slice(line);
                        emit(RecordType::Normal, &self.pending)?;
                        self.pending.clear();
                    }
                    data = data.get(end + 1..).unwrap_or_default();
                }
                None => {
                    self.pending.extend_from_slice(window);
                    data = data.get(take..).unwrap_or_default();
                }
            }
        }
        Ok(())
    }

    /// Ends the content: a last line without a line feed becomes an `L`
    /// record.
    pub fn finish<E>(
        &mut self,
        mut emit: impl FnMut(RecordType, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if !self.pending.is_empty() {
            emit(RecordType::Cont, &self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }
}

/// Appends a content record's bytes to `out` as they were before
/// splitting; other record types add nothing.
pub fn join(kind: RecordType, data: &[u8], out: &mut Vec<u8>) {
    match kind {
        RecordType::Normal => {
            out.extend_from_slice(data);
            out.push(b'\n');
        }
        RecordType::Cont => out.extend_from_slice(data),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &[u8], chunk: usize, step: usize) -> Vec<(RecordType, Vec<u8>)> {
        let mut s = LineSplitter::new(chunk);
        let mut out = Vec::new();
        let mut push = |k: RecordType, d: &[u8]| -> Result<(), ()> {
            out.push((k, d.to_vec()));
            Ok(())
        };
        for piece in input.chunks(step.max(1)) {
            s.feed(piece, &mut push).unwrap();
        }
        s.finish(&mut push).unwrap();
        out
    }

    #[test]
    fn any_feeding_gives_the_same_records_and_joins_back() {
        let inputs: [&[u8]; 6] = [
            b"",
            b"a\r\nb\n",
            b"no newline",
            b"\n\n\n",
            b"0123456789abcdef\nxy",
            b"exactly8\nexactly8",
        ];
        for input in inputs {
            let whole = split(input, 8, input.len().max(1));
            for step in 1..=input.len().max(1) {
                assert_eq!(split(input, 8, step), whole, "{input:?} step {step}");
            }
            let mut back = Vec::new();
            for (k, d) in &whole {
                assert!(d.len() <= 8);
                join(*k, d, &mut back);
            }
            assert_eq!(back, input);
        }
    }

    #[test]
    fn long_line_is_cut_into_cont_pieces() {
        let got = split(b"0123456789\n", 4, 3);
        let kinds: Vec<RecordType> = got.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [RecordType::Cont, RecordType::Cont, RecordType::Normal]
        );
        assert_eq!(got[2].1, b"89");
    }
}

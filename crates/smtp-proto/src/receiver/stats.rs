//! Facts about message content gathered while it streams past, for policy
//! (8BITMIME downgrade, `smtpd_forbid_bare_newline`, header NUL checks,
//! `line_length_limit`).

use memchr::{memchr, memchr2_iter};

/// What was seen in a message's content.
///
/// Counted over the content as delivered to the sink (after
/// dot-unstuffing and newline normalisation) and over the whole message,
/// also past the size limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ContentStats {
    /// A `<CR>` not followed by `<LF>`.
    pub bare_cr: bool,
    /// An `<LF>` not preceded by `<CR>`. For DATA this is judged on the
    /// wire, so it is also set when the newline was normalised.
    pub bare_lf: bool,
    /// Any octet with the high bit set.
    pub eight_bit: bool,
    /// The longest line, in octets, excluding its line ending. Lines end
    /// at any `<LF>`. Compare with `line_length_limit` or RFC 5321's 998.
    pub max_line_length: u64,
    /// A NUL octet in the body (after the first empty line).
    pub nul_in_body: bool,
    /// A NUL octet in the header (before the first empty line).
    pub nul_in_header: bool,
    /// Content size in octets.
    pub size: u64,
}

/// Incremental scanner behind [`ContentStats`]; runs of content may be
/// split anywhere.
#[derive(Clone, Debug)]
pub(crate) struct Scanner {
    stats: ContentStats,
    in_header: bool,
    /// Octets since the last LF, including any CR.
    line_len: u64,
    /// The last octet scanned was a CR.
    last_cr: bool,
}

impl Scanner {
    pub(crate) fn new() -> Self {
        Self {
            stats: ContentStats::default(),
            in_header: true,
            line_len: 0,
            last_cr: false,
        }
    }

    pub(crate) fn scan(&mut self, run: &[u8]) {
        let Some(&last) = run.last() else {
            return;
        };
        let s = &mut self.stats;
        s.size += run.len() as u64;
        if !s.eight_bit && !run.is_ascii() {
            s.eight_bit = true;
        }
        if self.last_cr && run[0] != b'\n' {
            s.bare_cr = true;
        }
        let mut line_start = 0;
        let mut body_from = (!self.in_header).then_some(0);
        for i in memchr2_iter(b'\r', b'\n', run) {
            if run[i] == b'\r' {
                if run.get(i + 1).is_some_and(|&b| b != b'\n') {
                    s.bare_cr = true;
                }
                continue;
            }
            let cr_before = if i > 0 {
                run[i - 1] == b'\r'
            } else {
                self.last_cr
            };
            if !cr_before {
                s.bare_lf = true;
            }
            let len = self.line_len + (i - line_start) as u64 - u64::from(cr_before);
            s.max_line_length = s.max_line_length.max(len);
            if self.in_header {
                if !s.nul_in_header && memchr(0, &run[line_start..i]).is_some() {
                    s.nul_in_header = true;
                }
                if len == 0 {
                    self.in_header = false;
                    body_from = Some(i + 1);
                }
            }
            self.line_len = 0;
            line_start = i + 1;
        }
        match body_from {
            Some(from) => {
                if !s.nul_in_body && memchr(0, &run[from..]).is_some() {
                    s.nul_in_body = true;
                }
            }
            None => {
                if !s.nul_in_header && memchr(0, &run[line_start..]).is_some() {
                    s.nul_in_header = true;
                }
            }
        }
        self.line_len += (run.len() - line_start) as u64;
        self.last_cr = last == b'\r';
        let open_line = self.line_len - u64::from(self.last_cr);
        s.max_line_length = s.max_line_length.max(open_line);
    }

    /// Marks a bare LF that was seen on the wire but normalised away.
    pub(crate) fn note_bare_lf(&mut self) {
        self.stats.bare_lf = true;
    }

    /// The statistics so far; a trailing CR is not judged yet.
    pub(crate) fn current(&self) -> ContentStats {
        self.stats.clone()
    }

    /// The statistics, treating the content as complete (a trailing CR is
    /// bare).
    pub(crate) fn finished(&self) -> ContentStats {
        let mut stats = self.stats.clone();
        if self.last_cr {
            stats.bare_cr = true;
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_split(input: &[u8], split: usize) -> ContentStats {
        let mut s = Scanner::new();
        s.scan(&input[..split]);
        s.scan(&input[split..]);
        s.finished()
    }

    #[test]
    fn same_stats_for_any_split() {
        let input: &[u8] =
            b"Subject: a\0b\r\nX: \xc3\xa9\r\n\r\nbody\rline\nlonger line here\r\n\0\r\n";
        let want = scan_split(input, 0);
        assert_eq!(
            want,
            ContentStats {
                bare_cr: true,
                bare_lf: true,
                eight_bit: true,
                max_line_length: 16,
                nul_in_body: true,
                nul_in_header: true,
                size: input.len() as u64,
            }
        );
        for split in 0..=input.len() {
            assert_eq!(scan_split(input, split), want, "split {split}");
        }
    }

    #[test]
    fn clean_message() {
        let input: &[u8] = b"From: a\r\n\r\nhello\r\n";
        let stats = scan_split(input, 3);
        assert!(!stats.bare_cr && !stats.bare_lf && !stats.eight_bit);
        assert!(!stats.nul_in_body && !stats.nul_in_header);
        assert_eq!(stats.max_line_length, 7);
        // A CR at the very end of the content is bare.
        assert!(scan_split(b"abc\r", 2).bare_cr);
        // NUL after the header only counts for the body.
        let stats = scan_split(b"A: b\r\n\r\n\0", 7);
        assert!(stats.nul_in_body && !stats.nul_in_header);
    }
}

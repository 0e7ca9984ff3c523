//! The message content: headers, then body (Postfix `cleanup_message.c`,
//! `global/header_body_checks.c`).
//!
//! Content arrives as `N` (a line) and `L` (a piece of a longer line)
//! records. cleanup reassembles lines and stores them as LF-terminated
//! lines: a carriage return before the line feed is removed (the SMTP
//! client puts CRLF back on the wire); a last line without a line feed
//! gets one. Any other byte is kept as it came.
//!
//! Headers are processed one logical header at a time (a header line and
//! its continuation lines, joined with `\n`), at most `header_size_limit`
//! bytes of it are kept. Each goes through `header_checks`, is inspected
//! (hop count, `Message-ID`, `Bcc`, recipients for `sendmail -t`), and is
//! written out with its original bytes. At the end of the header block the
//! missing `Message-ID:`, `Date:` and `From:` of local submissions are
//! added. Body lines go through `body_checks` in pieces of at most
//! `line_length_limit` bytes, like Postfix's records.

use postern_ipc::cleanup::{flags, status};
use postern_maps::Action;
use postern_util::warn;
use postern_wire::RecordType;

use crate::header::{self, Kind};
use crate::state::{Phase, State};

/// Header and body state of one message.
#[derive(Debug, Default)]
pub(crate) struct Content {
    /// The physical line being assembled from `L` pieces.
    line: Vec<u8>,
    /// A carriage return held back from the end of an `L` piece.
    held_cr: bool,
    /// A body piece without its line feed went out last.
    mid_line: bool,
    /// The logical header being assembled.
    header: Option<Vec<u8>>,
    hop_count: u64,
    seen_from: bool,
    seen_date: bool,
    seen_message_id: bool,
    seen_resent: bool,
    seen_resent_from: bool,
    seen_resent_date: bool,
    seen_resent_message_id: bool,
    /// Recipients from `To:`, `Cc:`, `Bcc:` (for `sendmail -t`).
    to_cc_bcc: Vec<String>,
    /// Recipients from `Resent-To:`, `Resent-Cc:`, `Resent-Bcc:`.
    resent_to_cc_bcc: Vec<String>,
    /// Header lines cleanup added itself.
    added_headers: bool,
    /// The `Message-ID` value, for the log.
    pub(crate) message_id: Option<String>,
    /// Recipients taken from the headers, for the extracted segment.
    pub(crate) extracted: Vec<String>,
}

/// Whether a check said to drop or keep the line.
enum Verdict {
    /// Keep the text as it is.
    Keep,
    /// Keep this text instead (REPLACE).
    Replace(Vec<u8>),
    Drop,
}

impl State<'_> {
    /// One `N` or `L` record.
    pub(crate) fn content_record(&mut self, kind: RecordType, data: &[u8]) {
        if !self.ok() {
            // Discarded: nothing more to look at (the size was counted).
            return;
        }
        // A line feed inside a record (no client of ours sends one) ends a
        // line there, so the stored content stays made of lines.
        let mut parts = data.split(|&b| b == b'\n').peekable();
        while let Some(part) = parts.next() {
            let kind = if parts.peek().is_some() {
                RecordType::Normal
            } else {
                kind
            };
            self.content_piece(kind, part);
        }
    }

    fn content_piece(&mut self, kind: RecordType, data: &[u8]) {
        if std::mem::take(&mut self.content.held_cr) {
            if kind == RecordType::Normal && data.is_empty() {
                // "...\r" + "" + line feed: the CR ended the line.
                return self.line_done();
            }
            self.content.line.push(b'\r');
        }
        // XXX: in the header block a physical line is cut at
        // header_size_limit before it is known to be a header; a first body
        // line that long with no blank line before it is cut too.
        let cap = match self.phase {
            Phase::Headers => self.cx.settings.header_size_limit,
            _ => usize::MAX,
        };
        let room = cap.saturating_sub(self.content.line.len());
        let take = data.len().min(room);
        self.content
            .line
            .extend_from_slice(data.get(..take).unwrap_or_default());
        if kind == RecordType::Normal {
            return self.line_done();
        }
        if self.content.line.last() == Some(&b'\r') {
            self.content.line.pop();
            self.content.held_cr = true;
        }
        if self.phase == Phase::Body {
            let limit = self.cx.settings.line_length_limit;
            while self.content.line.len() > limit && self.ok() {
                let mut line = std::mem::take(&mut self.content.line);
                self.body_piece(line.get(..limit).unwrap_or_default(), false);
                line.drain(..limit);
                self.content.line = line;
            }
        }
    }

    /// A physical line is complete.
    fn line_done(&mut self) {
        let mut line = std::mem::take(&mut self.content.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        match self.phase {
            Phase::Headers => self.header_line(line),
            _ => {
                self.body_line(&line);
                // The buffer serves the next line: no allocation per line.
                line.clear();
                self.content.line = line;
            }
        }
    }

    /// A whole body line, checked in pieces of `line_length_limit`.
    fn body_line(&mut self, line: &[u8]) {
        let limit = self.cx.settings.line_length_limit;
        let mut rest = line;
        while rest.len() > limit && self.ok() {
            let (piece, tail) = rest.split_at(limit);
            self.body_piece(piece, false);
            rest = tail;
        }
        self.body_piece(rest, true);
    }

    /// `X`: a last line without a line feed still counts as a line (and
    /// gets one).
    pub(crate) fn finish_content(&mut self) {
        // A carriage return at the very end is a line ending too: the line
        // gets a line feed instead.
        let held = std::mem::take(&mut self.content.held_cr);
        if !self.content.line.is_empty() || self.content.mid_line || held {
            let line = std::mem::take(&mut self.content.line);
            match self.phase {
                Phase::Headers => self.header_line(line),
                _ => self.body_line(&line),
            }
        }
        if self.phase == Phase::Headers {
            self.end_headers();
            self.phase = Phase::Body;
        }
    }

    fn header_line(&mut self, line: Vec<u8>) {
        if header::is_continuation(&line)
            && let Some(h) = self.content.header.as_mut()
        {
            let cap = self.cx.settings.header_size_limit;
            let room = cap.saturating_sub(h.len() + 1);
            if room > 0 {
                h.push(b'\n');
                h.extend_from_slice(line.get(..room.min(line.len())).unwrap_or_default());
            }
            return;
        }
        if let Some(h) = self.content.header.take() {
            self.header(h);
        }
        if header::name(&line).is_some() {
            self.content.header = Some(line);
            return;
        }
        // The end of the header block: an empty line, or a line that is no
        // header (then it is the first body line).
        self.end_headers();
        self.phase = Phase::Body;
        if line.is_empty() {
            self.out(b"\n");
        } else {
            if self.content.added_headers {
                // Keep the body from reading as part of an added header.
                self.out(b"\n");
            }
            self.body_line(&line);
        }
    }

    /// One logical header (Postfix `cleanup_header_callback`).
    fn header(&mut self, mut text: Vec<u8>) {
        if !self.ok() {
            return;
        }
        if self.filter {
            match self.check(true, &text) {
                Verdict::Keep => {}
                Verdict::Replace(t) => text = t,
                Verdict::Drop => return,
            }
            if !self.ok() {
                return;
            }
        }
        let kind = header::name(&text).map_or(Kind::Other, Kind::of);
        if kind.is_resent() {
            self.content.seen_resent = true;
        }
        match kind {
            Kind::Received => {
                self.content.hop_count += 1;
                if self.content.hop_count >= self.cx.settings.hop_count_limit {
                    warn!("{}: message rejected: hopcount exceeded", self.id);
                    self.fail(status::HOPS, "Error: too many hops");
                    return;
                }
            }
            Kind::From => self.content.seen_from = true,
            Kind::Date => self.content.seen_date = true,
            Kind::MessageId => {
                self.content.seen_message_id = true;
                if self.content.message_id.is_none() {
                    // Postfix `printable()`: no control characters in logs.
                    let value: String = header::value(&text)
                        .chars()
                        .map(|c| if c.is_control() { '?' } else { c })
                        .collect();
                    self.content.message_id = Some(value);
                }
            }
            Kind::ResentFrom => self.content.seen_resent_from = true,
            Kind::ResentDate => self.content.seen_resent_date = true,
            Kind::ResentMessageId => self.content.seen_resent_message_id = true,
            _ => {}
        }
        if kind.has_recipients() && self.flags & flags::EXTRACT_RECIPIENTS != 0 {
            let list = header::addresses(&text);
            if kind.is_resent() {
                self.content.resent_to_cc_bcc.extend(list);
            } else {
                self.content.to_cc_bcc.extend(list);
            }
        }
        if matches!(kind, Kind::Bcc | Kind::ResentBcc)
            && self.flags & (flags::DROP_BCC | flags::EXTRACT_RECIPIENTS | flags::LOCAL) != 0
        {
            return;
        }
        text.push(b'\n');
        self.out(&text);
    }

    /// The end of the header block (Postfix
    /// `cleanup_header_done_callback`): add what a local submission lacks,
    /// and choose the recipients for `sendmail -t`.
    fn end_headers(&mut self) {
        if let Some(h) = self.content.header.take() {
            self.header(h);
        }
        if !self.ok() {
            return;
        }
        let add = self.flags & flags::LOCAL != 0 || self.cx.settings.always_add_missing_headers;
        if add {
            let c = &self.content;
            let (prefix, have_id, have_date, have_from) = if c.seen_resent {
                (
                    "Resent-",
                    c.seen_resent_message_id,
                    c.seen_resent_date,
                    c.seen_resent_from,
                )
            } else {
                ("", c.seen_message_id, c.seen_date, c.seen_from)
            };
            if !have_id {
                let value = format!("<{}@{}>", self.id, self.cx.settings.myhostname);
                self.add_header(&format!("{prefix}Message-ID: {value}"));
                if prefix.is_empty() {
                    self.content.message_id = Some(value);
                }
            }
            if !have_date {
                let date = header::date(self.arrival);
                self.add_header(&format!("{prefix}Date: {date}"));
            }
            if !have_from {
                let sender = self.sender.clone().unwrap_or_default();
                let name = self.attrs.get("full_name").map(String::as_str);
                let value = header::from_value(&sender, name);
                self.add_header(&format!("{prefix}From: {value}"));
            }
        }
        if self.flags & flags::EXTRACT_RECIPIENTS != 0 {
            self.content.extracted = if self.content.seen_resent {
                std::mem::take(&mut self.content.resent_to_cc_bcc)
            } else {
                std::mem::take(&mut self.content.to_cc_bcc)
            };
        }
    }

    fn add_header(&mut self, line: &str) {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.out(&bytes);
        self.content.added_headers = true;
    }

    /// A body line, or a piece of one (`eol` false).
    fn body_piece(&mut self, text: &[u8], eol: bool) {
        self.content.mid_line = !eol;
        if !self.ok() {
            return;
        }
        let replaced;
        let mut text = text;
        if self.filter {
            match self.check(false, text) {
                Verdict::Keep => {}
                Verdict::Replace(t) => {
                    replaced = t;
                    text = &replaced;
                }
                Verdict::Drop => return,
            }
        }
        self.out(text);
        if eol {
            self.out(b"\n");
        }
    }

    fn out(&mut self, bytes: &[u8]) {
        self.write(|w| w.write_content(bytes));
    }

    /// header_checks or body_checks on one header or body line (Postfix
    /// `cleanup_act`).
    fn check(&mut self, is_header: bool, text: &[u8]) -> Verdict {
        let tables = &self.cx.tables;
        let table = if is_header {
            tables.header_checks.as_deref()
        } else {
            tables.body_checks.as_deref()
        };
        let Some(table) = table else {
            return Verdict::Keep;
        };
        let title = table.title().to_string();
        let shown = String::from_utf8_lossy(text).into_owned();
        let found = match table.lookup(&shown) {
            Ok(Some(r)) => r,
            Ok(None) => return Verdict::Keep,
            Err(e) => {
                warn!(
                    "{}: {title} map lookup problem: {e} -- message not accepted, try again later",
                    self.id
                );
                self.fail(status::DEFER, "4.3.0 content check lookup error");
                return Verdict::Drop;
            }
        };
        let class = if is_header { "header" } else { "body" };
        match Action::parse(&found) {
            Action::Reject(t) => {
                let reason = with_dsn("5.7.1", &t, "message content rejected");
                self.act_log("reject", class, &shown, &reason);
                self.fail(status::CONT, reason);
                self.filter = false;
                Verdict::Drop
            }
            Action::Defer(t) => {
                let reason = with_dsn("4.7.1", &t, "service unavailable");
                self.act_log("defer", class, &shown, &reason);
                self.fail(status::DEFER, reason);
                self.filter = false;
                Verdict::Drop
            }
            Action::Hold(t) => {
                self.act_log("hold", class, &shown, &t);
                self.hold = true;
                Verdict::Keep
            }
            Action::Discard(t) => {
                self.act_log("discard", class, &shown, &t);
                self.discard = true;
                self.filter = false;
                Verdict::Drop
            }
            Action::Warn(t) => {
                self.act_log("warning", class, &shown, &t);
                Verdict::Keep
            }
            Action::Ignore => Verdict::Drop,
            Action::Prepend(t) => {
                if is_header && header::name(t.as_bytes()).is_none() {
                    warn!(
                        "{}: {title}: bad PREPEND header text \"{t}\" -- ignored",
                        self.id
                    );
                } else {
                    let mut line = t.into_bytes();
                    line.push(b'\n');
                    self.out(&line);
                }
                Verdict::Keep
            }
            Action::Replace(t) => {
                if is_header && header::name(t.as_bytes()).is_none() {
                    warn!(
                        "{}: {title}: bad REPLACE header text \"{t}\" -- ignored",
                        self.id
                    );
                    Verdict::Keep
                } else {
                    Verdict::Replace(t.into_bytes())
                }
            }
            Action::Redirect(t) => {
                // XXX: the queue file has no redirect record yet.
                warn!(
                    "{}: {title}: REDIRECT {t} is not supported -- ignored",
                    self.id
                );
                Verdict::Keep
            }
            Action::Dunno | Action::Ok => {
                let word = found.split_whitespace().next().unwrap_or_default();
                if !word.eq_ignore_ascii_case("dunno") && !word.eq_ignore_ascii_case("ok") {
                    warn!(
                        "{}: {title}: unknown command in \"{found}\" -- ignored",
                        self.id
                    );
                }
                Verdict::Keep
            }
        }
    }
}

/// Postfix `dsn_prepend`: the text with its enhanced status code, adding
/// `dsn` when it has none (and dropping a leading SMTP code).
fn with_dsn(dsn: &str, text: &str, default: &str) -> String {
    let mut text = text.trim();
    let digits = |s: &str| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((first, rest)) = text.split_once(' ')
        && digits(first)
    {
        text = rest.trim_start();
    }
    if text.is_empty() {
        return format!("{dsn} {default}");
    }
    let first = text.split_whitespace().next().unwrap_or_default();
    let is_dsn = {
        let parts: Vec<&str> = first.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && matches!(first.as_bytes().first(), Some(b'2' | b'4' | b'5'))
    };
    if is_dsn {
        text.to_string()
    } else {
        format!("{dsn} {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::with_dsn;

    #[test]
    fn dsn_codes_are_added_once() {
        assert_eq!(
            with_dsn("5.7.1", "", "message content rejected"),
            "5.7.1 message content rejected"
        );
        assert_eq!(with_dsn("5.7.1", "no spam", "x"), "5.7.1 no spam");
        assert_eq!(with_dsn("5.7.1", "5.7.0 no spam", "x"), "5.7.0 no spam");
        assert_eq!(with_dsn("5.7.1", "550 5.7.0 go away", "x"), "5.7.0 go away");
    }
}

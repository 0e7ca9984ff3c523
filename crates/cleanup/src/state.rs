//! The per-message state machine (Postfix `cleanup_state.c`,
//! `cleanup_envelope.c`, `cleanup_extracted.c`, `cleanup_api.c`).
//!
//! [`State::record`] takes the client's records one at a time and moves
//! from the envelope through the content ([`crate::message`]) to the
//! extracted segment; [`State::finish`] commits the queue file or removes
//! it. No I/O besides the queue file: the service loop in `main.rs` reads
//! the records and sends the verdict, and the tests drive this directly.
//!
//! Errors pile up in a status word (`ipc::cleanup::status` bits) and the
//! rest of the message is read and thrown away "until the sender is ready
//! to receive our status report", as Postfix does; once any error is set
//! nothing more is written, and the queue file is removed at the end.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::SystemTime;

use postern_config::Config;
use postern_ipc::cleanup::status;
use postern_ipc::rewrite::Rule;
use postern_queue::{NewRecipient, Notify, Queue, QueueFileWriter};
use postern_util::{info, warn};
use postern_wire::RecordType;

use crate::addr::{self, ExpansionLimits, Failed};
use crate::message::Content;
use crate::tables::{Rewriter, Tables};

/// The local part of the null sender's stand-in (Postfix
/// `MAIL_ADDR_MAIL_DAEMON`).
const MAILER_DAEMON: &str = "MAILER-DAEMON";

/// The parameters cleanup reads, once per process.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `queue_directory` (as seen after a chroot).
    pub(crate) queue_dir: PathBuf,
    /// `myhostname`, for `Message-ID:`.
    pub(crate) myhostname: String,
    /// `message_size_limit`; 0 means no limit.
    pub(crate) message_size_limit: u64,
    /// `header_size_limit`: the longest logical header kept.
    pub(crate) header_size_limit: usize,
    /// `line_length_limit`: body lines are checked in pieces of this size.
    pub(crate) line_length_limit: usize,
    /// `hop_count_limit`.
    pub(crate) hop_count_limit: u64,
    /// `always_add_missing_headers`.
    pub(crate) always_add_missing_headers: bool,
    /// `duplicate_filter_limit`; 0 means no limit.
    pub(crate) duplicate_filter_limit: usize,
    /// `virtual_alias_recursion_limit` and `virtual_alias_expansion_limit`.
    pub(crate) expansion: ExpansionLimits,
    /// `delay_warning_time`; zero means no delay warnings.
    pub(crate) delay_warning_time: std::time::Duration,
}

impl Settings {
    pub(crate) fn from_config(config: &Config, queue_dir: PathBuf) -> Settings {
        let int = |name: &str| usize::try_from(config.int(name)).unwrap_or(0);
        Settings {
            queue_dir,
            myhostname: config.str("myhostname"),
            message_size_limit: config.size("message_size_limit"),
            header_size_limit: int("header_size_limit").max(1),
            line_length_limit: int("line_length_limit").max(1),
            hop_count_limit: u64::try_from(config.int("hop_count_limit")).unwrap_or(1),
            always_add_missing_headers: config.bool("always_add_missing_headers"),
            duplicate_filter_limit: int("duplicate_filter_limit"),
            expansion: ExpansionLimits {
                recursion: int("virtual_alias_recursion_limit").max(1),
                expansion: int("virtual_alias_expansion_limit").max(1),
            },
            delay_warning_time: config.time("delay_warning_time"),
        }
    }
}

/// Everything that lives as long as the process: parameters, tables, and
/// the one trivial-rewrite client.
pub(crate) struct Cleanup {
    pub(crate) settings: Settings,
    pub(crate) tables: Tables,
    pub(crate) rewriter: Box<dyn Rewriter>,
}

/// Whether the client may send more records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Keep reading.
    More,
    /// `E` was read: reply now.
    End,
}

/// Where in the message the client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Envelope,
    Headers,
    Body,
    Extracted,
    Done,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Envelope => "envelope",
            Phase::Headers | Phase::Body => "content",
            Phase::Extracted => "extracted",
            Phase::Done => "end",
        }
    }
}

/// The outcome of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// `status` bits for the client.
    pub(crate) status: u64,
    /// `reason` for the client.
    pub(crate) reason: String,
    /// The queue the file was committed to; `None` when it was removed.
    pub(crate) queued: Option<Queue>,
    /// The `Message-ID` value for the log (`<>` when there is none).
    pub(crate) message_id: String,
}

/// The fields that qualify the next recipient (`O`, `o`, `n`).
#[derive(Debug, Default)]
struct PendingRecipient {
    orcpt: Option<String>,
    dsn_orcpt: Option<String>,
    notify: Option<Notify>,
}

impl PendingRecipient {
    fn is_empty(&self) -> bool {
        self.orcpt.is_none() && self.dsn_orcpt.is_none() && self.notify.is_none()
    }
}

/// One message on its way into the queue (Postfix `CLEANUP_STATE`).
pub(crate) struct State<'a> {
    pub(crate) cx: &'a mut Cleanup,
    /// The queue file; `None` once it was given up.
    writer: Option<QueueFileWriter>,
    pub(crate) id: String,
    /// `ipc::cleanup::flags` of the client.
    pub(crate) flags: u64,
    pub(crate) phase: Phase,
    /// Accumulated `status` bits.
    pub(crate) errs: u64,
    /// The first reason given for each status bit.
    reasons: Vec<(u64, String)>,
    /// A HOLD action fired.
    pub(crate) hold: bool,
    /// A DISCARD action fired.
    pub(crate) discard: bool,
    /// header_checks and body_checks still apply (Postfix
    /// `CLEANUP_FLAG_FILTER`: off after REJECT and DISCARD).
    pub(crate) filter: bool,
    pub(crate) arrival: SystemTime,
    pub(crate) sender: Option<String>,
    /// The first recipient, for log lines.
    pub(crate) first_rcpt: Option<String>,
    /// Envelope attributes the log lines and headers use.
    pub(crate) attrs: HashMap<String, String>,
    pending: PendingRecipient,
    dups: HashSet<String>,
    pub(crate) rcpt_count: u64,
    /// Content bytes received.
    pub(crate) size: u64,
    pub(crate) content: Content,
}

impl<'a> State<'a> {
    /// Starts a message in `writer`, writing the arrival time.
    pub(crate) fn new(
        cx: &'a mut Cleanup,
        mut writer: QueueFileWriter,
        flags: u64,
        arrival: SystemTime,
    ) -> State<'a> {
        let id = writer.id().as_str().to_string();
        let mut state = State {
            cx,
            writer: None,
            id,
            flags,
            phase: Phase::Envelope,
            errs: 0,
            reasons: Vec::new(),
            hold: false,
            discard: false,
            filter: true,
            arrival,
            sender: None,
            first_rcpt: None,
            attrs: HashMap::new(),
            pending: PendingRecipient::default(),
            dups: HashSet::new(),
            rcpt_count: 0,
            size: 0,
            content: Content::default(),
        };
        let max = usize::try_from(postern_wire::DEFAULT_MAX_RECORD_LEN).unwrap_or(usize::MAX);
        let line_chunk = state.cx.settings.line_length_limit.clamp(1, max);
        // The time of the delay warning goes into the file (Postfix
        // REC_TYPE_WARN): qmgr sends it once and patches the record to 0.
        let warn = state.cx.settings.delay_warning_time;
        match writer
            .time(arrival)
            .and_then(|()| {
                if warn.is_zero() {
                    Ok(())
                } else {
                    writer.warn(Some(arrival + warn)).map(|_| ())
                }
            })
            .and_then(|()| writer.set_line_chunk(line_chunk))
        {
            Ok(()) => state.writer = Some(writer),
            Err(e) => state.write_error(&e),
        }
        state
    }

    /// Whether records are still processed (no error, not discarded).
    pub(crate) fn ok(&self) -> bool {
        self.errs == 0 && !self.discard
    }

    /// Records an error: the status bit and, if it is the first of its
    /// kind, the reason.
    pub(crate) fn fail(&mut self, bit: u64, reason: impl Into<String>) {
        self.errs |= bit;
        if !self.reasons.iter().any(|(b, _)| *b == bit) {
            self.reasons.push((bit, reason.into()));
        }
    }

    /// A protocol violation by the client (Postfix `CLEANUP_STAT_BAD`).
    pub(crate) fn bad(&mut self, why: &str) {
        warn!("{}: message rejected: {why}", self.id);
        self.fail(status::BAD, "Error: internal protocol error");
    }

    pub(crate) fn write_error(&mut self, e: &postern_queue::Error) {
        warn!("{}: write queue file: {e}", self.id);
        self.writer = None;
        self.fail(status::WRITE, "Error: queue file write error");
    }

    fn deferred(&mut self, f: Failed) {
        self.fail(status::DEFER, f.0);
    }

    /// Runs `op` on the queue file unless an error stopped the message;
    /// a failure becomes `status::WRITE`.
    pub(crate) fn write(
        &mut self,
        op: impl FnOnce(&mut QueueFileWriter) -> Result<(), postern_queue::Error>,
    ) {
        if !self.ok() {
            return;
        }
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        if let Err(e) = op(w) {
            self.write_error(&e);
        }
    }

    /// Takes one record from the client.
    pub(crate) fn record(&mut self, kind: RecordType, data: &[u8]) -> Next {
        if kind == RecordType::End {
            if self.errs == 0 {
                self.drop_pending();
            }
            if self.phase != Phase::Extracted && self.errs == 0 {
                let phase = self.phase.name();
                self.bad(&format!("unexpected end record in {phase} segment"));
            }
            self.phase = Phase::Done;
            return Next::End;
        }
        if self.phase == Phase::Done {
            self.bad(&format!("record type {kind} after the end record"));
            return Next::More;
        }
        // Content is counted even when the message is already refused.
        if matches!(kind, RecordType::Normal | RecordType::Cont) {
            self.count_content(kind, data);
        }
        if self.errs != 0 {
            // Drain, but keep track of the segments.
            match (self.phase, kind) {
                (Phase::Envelope, RecordType::Message) => self.phase = Phase::Headers,
                (Phase::Headers | Phase::Body, RecordType::Xtra) => self.phase = Phase::Extracted,
                _ => {}
            }
            return Next::More;
        }
        match self.phase {
            Phase::Envelope => self.envelope(kind, data),
            Phase::Headers | Phase::Body => match kind {
                RecordType::Normal | RecordType::Cont => self.content_record(kind, data),
                RecordType::Xtra => self.end_content(),
                other => self.bad(&format!("unexpected record type {other} in content")),
            },
            Phase::Extracted => self.extracted(kind, data),
            Phase::Done => {}
        }
        Next::More
    }

    fn count_content(&mut self, kind: RecordType, data: &[u8]) {
        let n = u64::try_from(data.len()).unwrap_or(u64::MAX);
        let n = if kind == RecordType::Normal {
            n.saturating_add(1)
        } else {
            n
        };
        self.size = self.size.saturating_add(n);
        let limit = self.cx.settings.message_size_limit;
        if limit > 0 && self.size > limit && self.errs & status::SIZE == 0 {
            warn!("{}: queue file size limit exceeded", self.id);
            self.fail(status::SIZE, "Error: message file too big");
        }
    }

    /// Postfix `cleanup_envelope`.
    fn envelope(&mut self, kind: RecordType, data: &[u8]) {
        match kind {
            RecordType::Sender => {
                if self.sender.is_some() {
                    return self.bad("multiple envelope sender records");
                }
                let Some(raw) = self.utf8(kind, data) else {
                    return;
                };
                self.envelope_sender(&raw);
            }
            RecordType::Attr => self.attr(data),
            RecordType::Orcpt | RecordType::DsnOrcpt | RecordType::DsnNotify => {
                self.recipient_field(kind, data)
            }
            RecordType::Recipient => {
                if self.sender.is_none() {
                    return self.bad("missing sender envelope record");
                }
                self.recipient_record(data);
            }
            RecordType::Message => {
                if self.sender.is_none() {
                    return self.bad("missing sender envelope record");
                }
                self.drop_pending();
                self.write(|w| w.begin_content());
                self.phase = Phase::Headers;
            }
            other => self.bad(&format!("unexpected record type {other} in envelope")),
        }
    }

    /// Postfix `cleanup_extracted`: the client may add attributes and
    /// recipients after the content.
    fn extracted(&mut self, kind: RecordType, data: &[u8]) {
        match kind {
            RecordType::Attr => self.attr(data),
            RecordType::Orcpt | RecordType::DsnOrcpt | RecordType::DsnNotify => {
                self.recipient_field(kind, data)
            }
            RecordType::Recipient => self.recipient_record(data),
            other => self.bad(&format!(
                "unexpected record type {other} in extracted segment"
            )),
        }
    }

    fn utf8(&mut self, kind: RecordType, data: &[u8]) -> Option<String> {
        match std::str::from_utf8(data) {
            Ok(s) if !s.contains(['\r', '\n', '\0']) => Some(s.to_string()),
            _ => {
                self.bad(&format!("malformed {} record", kind.name()));
                None
            }
        }
    }

    /// Postfix `cleanup_addr_sender`: rewrite, then
    /// `sender_canonical_maps`, then `canonical_maps`.
    fn envelope_sender(&mut self, raw: &str) {
        let addr = if raw.is_empty() {
            Ok(String::new())
        } else {
            self.canonical(raw, true)
        };
        match addr {
            Ok(addr) => {
                let a = addr.clone();
                self.write(|w| w.sender(&a));
                self.sender = Some(addr);
            }
            Err(f) => {
                self.sender = Some(raw.to_string());
                self.deferred(f);
            }
        }
    }

    /// Rewrites `raw` and applies the canonical tables for a sender or a
    /// recipient.
    ///
    /// Envelope addresses are always rewritten in the local context,
    /// whoever sent the message (Postfix `cleanup_addr.c`: "an unqualified
    /// envelope address is for all practical purposes equivalent to a
    /// fully qualified local address"); the remote context and the
    /// client's `rewrite_context` are for addresses in headers. A sender
    /// that comes out as `MAILER-DAEMON@$myorigin` becomes the null
    /// sender, as in Postfix.
    fn canonical(&mut self, raw: &str, sender: bool) -> Result<String, Failed> {
        let cx = &mut *self.cx;
        let id = self.id.as_str();
        let mut addr = addr::rewrite(cx.rewriter.as_mut(), id, Rule::Local, raw)?;
        if sender
            && addr
                .get(..MAILER_DAEMON.len() + 1)
                .is_some_and(|p| p.eq_ignore_ascii_case(&format!("{MAILER_DAEMON}@")))
        {
            let daemon = addr::rewrite(cx.rewriter.as_mut(), id, Rule::Local, MAILER_DAEMON)?;
            if addr.eq_ignore_ascii_case(&daemon) {
                return Ok(String::new());
            }
        }
        let own = if sender {
            cx.tables.sender_canonical.as_deref()
        } else {
            cx.tables.recipient_canonical.as_deref()
        };
        for map in [own, cx.tables.canonical.as_deref()].into_iter().flatten() {
            addr = addr::map11(cx.rewriter.as_mut(), map, id, &addr)?;
        }
        Ok(addr)
    }

    fn attr(&mut self, data: &[u8]) {
        let Some(eq) = data.iter().position(|&b| b == b'=') else {
            return self.bad("malformed named attribute record");
        };
        let (name, value) = data.split_at(eq);
        let value = value.get(1..).unwrap_or_default();
        let name = match std::str::from_utf8(name) {
            Ok(n) if postern_wire::attr::is_valid_name(n.as_bytes()) => n.to_string(),
            _ => return self.bad("malformed named attribute record"),
        };
        if self.phase == Phase::Envelope {
            self.attrs
                .entry(name.clone())
                .or_insert_with(|| String::from_utf8_lossy(value).into_owned());
        }
        if !self.ok() {
            return;
        }
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        match w.attr(&name, value) {
            Ok(()) => {}
            Err(postern_queue::Error::DuplicateAttr { .. }) => {
                warn!("{}: ignoring duplicate attribute {name}", self.id);
            }
            Err(e) => self.write_error(&e),
        }
    }

    fn recipient_field(&mut self, kind: RecordType, data: &[u8]) {
        match kind {
            RecordType::DsnNotify => match data {
                [bits] => match Notify::from_bits(*bits) {
                    Some(n) => self.pending.notify = Some(n),
                    None => warn!("{}: ignoring bad DSN notify flags 0x{bits:02x}", self.id),
                },
                _ => self.bad("malformed DSN notify record"),
            },
            _ => {
                let Some(text) = self.utf8(kind, data) else {
                    return;
                };
                if kind == RecordType::Orcpt {
                    self.pending.orcpt = Some(text);
                } else {
                    self.pending.dsn_orcpt = Some(text);
                }
            }
        }
    }

    fn drop_pending(&mut self) {
        if !self.pending.is_empty() {
            warn!(
                "{}: ignoring out-of-order original recipient record",
                self.id
            );
            self.pending = PendingRecipient::default();
        }
    }

    fn recipient_record(&mut self, data: &[u8]) {
        let pending = std::mem::take(&mut self.pending);
        let Some(raw) = self.utf8(RecordType::Recipient, data) else {
            return;
        };
        if raw.is_empty() {
            return self.bad("empty recipient");
        }
        self.recipient(&raw, pending.orcpt, pending.dsn_orcpt, pending.notify);
    }

    /// Postfix `cleanup_addr_recipient` + `cleanup_out_recipient`: rewrite,
    /// canonical tables, virtual alias expansion, duplicate filter, write.
    /// `orcpt` is the address as the client gave it first; when the client
    /// sent none, `raw` is kept as the original if processing changed it.
    pub(crate) fn recipient(
        &mut self,
        raw: &str,
        orcpt: Option<String>,
        dsn_orcpt: Option<String>,
        notify: Option<Notify>,
    ) {
        if !self.ok() {
            return;
        }
        let addr = match self.canonical(raw, false) {
            Ok(a) => a,
            Err(f) => return self.deferred(f),
        };
        let list = match self.cx.tables.virtual_alias.as_deref() {
            Some(map) => {
                let limits = self.cx.settings.expansion;
                match addr::map1n(self.cx.rewriter.as_mut(), map, &self.id, &addr, limits) {
                    Ok(list) => list,
                    Err(f) => return self.deferred(f),
                }
            }
            None => vec![addr],
        };
        for address in list {
            let original = match &orcpt {
                Some(o) => Some(o.clone()),
                None if address != raw => Some(raw.to_string()),
                None => None,
            };
            let key = format!(
                "{}\n{}\n{}\n{}",
                dsn_orcpt.as_deref().unwrap_or_default(),
                notify.map_or(0, |n| n.bits()),
                original.as_deref().unwrap_or(raw),
                address
            )
            .to_ascii_lowercase();
            if self.dups.contains(&key) {
                continue;
            }
            let limit = self.cx.settings.duplicate_filter_limit;
            if limit == 0 || self.dups.len() < limit {
                self.dups.insert(key);
            }
            let rcpt = NewRecipient {
                address: &address,
                orcpt: original.as_deref(),
                dsn_orcpt: dsn_orcpt.as_deref(),
                notify,
            };
            if !self.ok() {
                return;
            }
            let Some(w) = self.writer.as_mut() else {
                return;
            };
            if let Err(e) = w.recipient(&rcpt) {
                return self.write_error(&e);
            }
            self.rcpt_count += 1;
            if self.first_rcpt.is_none() {
                self.first_rcpt = Some(address.clone());
            }
        }
    }

    /// Where the message came from, for log lines: `name[addr]` or
    /// `local`.
    pub(crate) fn origin(&self) -> String {
        if let Some(o) = self.attrs.get("log_client") {
            return o.clone();
        }
        match self.attrs.get("client_address") {
            Some(addr) => {
                let name = self
                    .attrs
                    .get("client_name")
                    .map_or("unknown", String::as_str);
                format!("{name}[{addr}]")
            }
            None => "local".to_string(),
        }
    }

    /// A log line for a header or body action (Postfix `cleanup_act_log`):
    /// `ID: reject: header Subject: spam from host[1.2.3.4]; from=<a>
    /// to=<b> proto=ESMTP helo=<h>: text`.
    pub(crate) fn act_log(&self, action: &str, class: &str, content: &str, text: &str) {
        let line = self.act_line(action, class, content, text);
        info!("{line}");
    }

    pub(crate) fn act_line(&self, action: &str, class: &str, content: &str, text: &str) -> String {
        let mut shown: String = content
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(200)
            .collect();
        shown.truncate(shown.trim_end().len());
        let mut line = format!(
            "{}: {action}: {class} {shown} from {};",
            self.id,
            self.origin()
        );
        if let Some(s) = &self.sender {
            line.push_str(&format!(" from=<{s}>"));
        }
        if let Some(r) = &self.first_rcpt {
            line.push_str(&format!(" to=<{r}>"));
        }
        if let Some(p) = self.attrs.get("protocol") {
            line.push_str(&format!(" proto={p}"));
        }
        if let Some(h) = self.attrs.get("helo_name") {
            line.push_str(&format!(" helo=<{h}>"));
        }
        if !text.is_empty() {
            line.push_str(&format!(": {text}"));
        }
        line
    }

    /// Ends the content: the rest of the message goes to the extracted
    /// segment, starting with the recipients taken from the headers.
    fn end_content(&mut self) {
        self.finish_content();
        self.write(|w| w.end_content());
        self.phase = Phase::Extracted;
        for rcpt in std::mem::take(&mut self.content.extracted) {
            self.recipient(&rcpt, None, None, None);
        }
    }

    /// The status bits and the reason that goes with the one the client
    /// reports (the order of `ipc::cleanup::Outcome::smtp_reply`).
    fn status_reason(&self) -> (u64, String) {
        let order = [
            status::BAD,
            status::WRITE,
            status::DEFER,
            status::SIZE,
            status::HOPS,
            status::CONT,
            status::RCPT,
        ];
        let reason = order
            .iter()
            .filter(|bit| self.errs & **bit != 0)
            .find_map(|bit| self.reasons.iter().find(|(b, _)| b == bit))
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        (self.errs, reason)
    }

    /// After `E`: commits the queue file (to `hold` when a HOLD action
    /// fired) or removes it (Postfix `cleanup_flush`).
    pub(crate) fn finish(mut self) -> Verdict {
        if self.phase != Phase::Done && self.errs == 0 {
            self.bad("message ends before its end record");
        }
        if self.errs == 0 && !self.discard && self.rcpt_count == 0 {
            self.fail(status::RCPT, "Error: no recipients specified");
        }
        let message_id = self
            .content
            .message_id
            .clone()
            .unwrap_or_else(|| "<>".to_string());
        let removed = |status, reason| Verdict {
            status,
            reason,
            queued: None,
            message_id: message_id.clone(),
        };
        if self.errs != 0 {
            let (status, reason) = self.status_reason();
            return removed(status, reason);
        }
        if self.discard {
            return removed(status::DISCARD, String::new());
        }
        let Some(writer) = self.writer.take() else {
            self.fail(status::WRITE, "Error: queue file write error");
            let (status, reason) = self.status_reason();
            return removed(status, reason);
        };
        let spool = self.cx.settings.queue_dir.clone();
        let queue = if self.hold {
            Queue::Hold
        } else {
            Queue::Incoming
        };
        let id = writer.id().clone();
        if self.hold {
            // Move before commit, so the file is never ready in incoming
            // (Postfix moves it before it is closed, too).
            if let Err(e) = postern_queue::move_file(&spool, &id, Queue::Incoming, Queue::Hold) {
                warn!("{}: problem putting message on hold: {e}", self.id);
                drop(writer);
                self.fail(status::WRITE, "Error: queue file write error");
                let (status, reason) = self.status_reason();
                return removed(status, reason);
            }
        }
        match writer.finish() {
            Ok(_) => Verdict {
                status: status::OK,
                reason: String::new(),
                queued: Some(queue),
                message_id,
            },
            Err(e) => {
                if self.hold {
                    let _ = std::fs::remove_file(id.path(&spool, Queue::Hold));
                }
                warn!("{}: commit queue file: {e}", self.id);
                self.fail(status::WRITE, "Error: queue file write error");
                let (status, reason) = self.status_reason();
                removed(status, reason)
            }
        }
    }
}

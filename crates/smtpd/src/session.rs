//! One SMTP session as a sans-I/O state machine (Postfix `smtpd.c`: the
//! command loop `smtpd_proto` and the `*_cmd` functions).
//!
//! [`Session::feed`] takes whatever bytes the client sent, runs every
//! complete command in order (PIPELINING), streams message content to
//! cleanup, and appends the replies to an output buffer that the caller
//! writes out with [`Session::take_output`] once the input is used up.
//! Effects that leave the process (trivial-rewrite, cleanup, sleeping, the
//! clock) go through [`Backend`]; everything else is here, so the tests at
//! the bottom drive whole sessions without sockets.
//!
//! Phases: commands are framed by `RequestReceiver`; after an accepted
//! DATA the bytes go to a `DataReceiver` (dot-unstuffing, the only
//! end-of-data is `<CR><LF>.<CR><LF>`), after BDAT to the `BdatReceiver`
//! for exactly the chunk size. What follows the end of the content goes
//! back to the command framer.
//!
//! Error handling as in Postfix: every command that fails counts as an
//! error; once the count exceeds `smtpd_soft_error_limit` every reply is
//! delayed by `smtpd_error_sleep_time`, and at `smtpd_hard_error_limit`
//! the server says `421 4.7.0 ... Error: too many errors` and hangs up. A
//! delivered message resets the count ("without delivering mail"). Past
//! `smtpd_junk_command_limit` HELO/EHLO/NOOP/RSET/VRFY/HELP commands,
//! each one counts as an error too, so a client cannot keep a process
//! busy forever with NOOPs.

use postern_ipc::cleanup::{Outcome, Recipient};
use postern_ipc::rewrite::Resolved;
use postern_smtp_proto::reply::{EnhancedStatus, Extension, Reply, ehlo, standard};
use postern_smtp_proto::session::{Greeting, Protocol, State};
use postern_smtp_proto::{
    AddressError, BareNewline, BdatReceiver, Body, ChunkEnd, ChunkProgress, Command, CommandError,
    DataError, DataOptions, DataProgress, DataReceiver, LineEnding, LineError, MailParams, Mailbox,
    Notify, ParseOptions, Path, RcptParams, RequestReceiver, Ret,
};
use postern_tls::TlsInfo;
use postern_util::{info, warn};

use crate::backend::{Backend, QueueSink};
use crate::check::{self, Client, Facts};
use crate::peer::Peer;
use crate::received::Received;
use crate::settings::Env;
use crate::stats::CommandStats;
use crate::tls::Level;

/// What the session is reading.
#[derive(Debug)]
enum Phase {
    /// The connection is over; further input is ignored.
    Closed,
    /// Command lines.
    Command,
    /// DATA content.
    Data(DataReceiver),
    /// A BDAT chunk (read into `Session::bdat`).
    Chunk(Chunk),
    /// STARTTLS was accepted: the caller flushes the `220` and runs the
    /// handshake, then calls [`Session::tls_started`].
    Handshake,
}

#[derive(Debug)]
struct Chunk {
    /// For a refused BDAT: the reply, sent once the chunk is drained.
    refused: Option<Reply>,
    /// The refused BDAT was `LAST` inside a failed chunked transaction,
    /// which ends it.
    ends_transaction: bool,
}

/// One mail transaction, from MAIL to the end of the content.
struct Transaction<Q> {
    /// Envelope sender, internal form, empty for `<>`.
    sender: String,
    params: MailParams,
    /// Accepted recipients as written in headers.
    recipients: Vec<String>,
    /// The cleanup connection, from the first accepted recipient on.
    queue: Option<Q>,
    /// Talking to cleanup failed: this message cannot be queued.
    broken: bool,
    /// cleanup's greeting (the queue ID) was read; see
    /// [`Session::queue_greeted`].
    greeted: bool,
}

/// How a command handler ended, for the statistics.
enum Done {
    /// Failed (the error reply was sent).
    Failed,
    /// Succeeded.
    Ok,
    /// Counted later (DATA and BDAT at the end of their content).
    Pending,
}

/// The SMTP session.
pub(crate) struct Session<'a, B: Backend> {
    env: &'a Env,
    backend: &'a mut B,
    peer: Peer,
    namaddr: String,
    proto: postern_smtp_proto::Session,
    input: RequestReceiver,
    phase: Phase,
    bdat: BdatReceiver,
    /// Content between the receivers and cleanup.
    content: Vec<u8>,
    txn: Option<Transaction<B::Queue>>,
    helo: Option<String>,
    out: Vec<u8>,
    errors: u32,
    /// HELO, EHLO, NOOP, RSET, VRFY and HELP since the last delivery.
    junk: u32,
    stats: CommandStats,
    /// The last command (Postfix `state->where`), for logs.
    last: &'static str,
    /// The TLS session, once the handshake is done.
    tls: Option<TlsInfo>,
}

impl<'a, B: Backend> Session<'a, B> {
    /// A session with `peer`; call [`greet`](Self::greet) first.
    pub(crate) fn new(env: &'a Env, backend: &'a mut B, peer: Peer) -> Session<'a, B> {
        let s = &env.settings;
        let mut proto = postern_smtp_proto::Session::new(Protocol::Smtp);
        if s.helo_required {
            proto = proto.require_helo();
        }
        Session {
            env,
            backend,
            namaddr: peer.namaddr(),
            peer,
            proto,
            input: RequestReceiver::new(s.line_length_limit),
            phase: Phase::Command,
            bdat: BdatReceiver::new(s.message_size_limit),
            content: Vec::new(),
            txn: None,
            helo: None,
            out: Vec::new(),
            errors: 0,
            junk: 0,
            stats: CommandStats::default(),
            last: "CONNECT",
            tls: None,
        }
    }

    /// `name[addr]` of the client.
    pub(crate) fn namaddr(&self) -> &str {
        &self.namaddr
    }

    /// What the access restrictions know about the client.
    fn client(&self) -> Client<'_> {
        Client {
            ip: self.peer.ip,
            addr: &self.peer.addr,
            namaddr: &self.namaddr,
            name_status: self.peer.name_status,
            reverse_name_status: self.peer.reverse_name_status,
        }
    }

    /// Queues the `220` greeting.
    pub(crate) fn greet(&mut self) {
        Reply::new(220, None, self.env.settings.banner.as_str()).encode(&mut self.out);
    }

    /// The replies so far, to be written to the client.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Whether the session is over (QUIT, a fatal error, a timeout).
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Processes bytes from the client.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        let mut carry: Vec<u8>;
        let mut input: &[u8] = bytes;
        loop {
            match self.phase {
                Phase::Closed | Phase::Handshake => return,
                Phase::Command => {
                    self.input.feed(input);
                    self.run_commands();
                    if matches!(self.phase, Phase::Handshake) {
                        self.discard_plaintext();
                        return;
                    }
                    if !self.in_content() {
                        return;
                    }
                    // DATA or BDAT was accepted: what the client sent after
                    // the command belongs to the content.
                    carry = self.input.take_buffered();
                    input = &carry;
                }
                Phase::Data(_) | Phase::Chunk(_) => {
                    let used = self.feed_content(input);
                    if self.in_content() {
                        return;
                    }
                    input = input.get(used..).unwrap_or_default();
                }
            }
        }
    }

    /// Whether the caller must run the TLS handshake now (after writing
    /// out the `220 2.0.0 Ready to start TLS`).
    pub(crate) fn wants_tls(&self) -> bool {
        matches!(self.phase, Phase::Handshake)
    }

    /// The handshake (after STARTTLS, or at connect in wrapper mode)
    /// succeeded: the session starts over as RFC 3207 §4.2 says (no
    /// greeting, no transaction; done by `Session::accept(STARTTLS)`).
    pub(crate) fn tls_started(&mut self, info: TlsInfo) {
        if self.env.tls.loglevel >= 1 {
            info!(
                "Anonymous TLS connection established from {}: {}",
                self.namaddr,
                info.summary()
            );
        }
        self.tls = Some(info);
        if matches!(self.phase, Phase::Handshake) {
            self.phase = Phase::Command;
        } else {
            // Wrapper mode: TLS from the start, so STARTTLS is refused.
            self.proto = self.proto.clone().in_tls();
        }
    }

    /// The handshake failed; the connection cannot go on (there is no
    /// way back to plaintext).
    pub(crate) fn tls_failed(&mut self, error: &std::io::Error) {
        info!("SSL_accept error from {}: {error}", self.namaddr);
        self.lost();
    }

    /// Whether the session runs inside TLS.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Throws away whatever the client sent after STARTTLS before the
    /// handshake. Executing it would let a man in the middle inject
    /// commands into the TLS session (CVE-2011-0411; Postfix: "At this
    /// point there must not be any pending plaintext").
    fn discard_plaintext(&mut self) {
        if self.input.has_buffered() {
            let pending = String::from_utf8_lossy(self.input.buffered())
                .chars()
                .take(100)
                .map(|c| if c.is_control() { '_' } else { c })
                .collect::<String>();
            info!(
                "improper command pipelining after STARTTLS from {}: {pending}",
                self.namaddr
            );
        }
        self.input.clear();
    }

    /// The client did not send or receive in time.
    pub(crate) fn timeout(&mut self) {
        info!("timeout after {} from {}", self.where_(), self.namaddr);
        standard::timeout(&self.env.settings.myhostname).encode(&mut self.out);
        self.close();
    }

    /// The client went away (or reading failed).
    pub(crate) fn lost(&mut self) {
        if !self.is_closed() {
            info!(
                "lost connection after {} from {}",
                self.where_(),
                self.namaddr
            );
        }
        self.close();
    }

    /// Ends the session: abandons an unfinished message and logs the
    /// `disconnect from` line.
    pub(crate) fn end(&mut self) {
        self.close();
        self.abort_transaction();
        info!("disconnect from {}{}", self.namaddr, self.stats.format());
    }

    /// Stops reading; a DATA or BDAT whose content was not read to its
    /// end counts as failed.
    fn close(&mut self) {
        match self.phase {
            Phase::Data(_) => self.stats.count("DATA", false),
            Phase::Chunk(_) => self.stats.count("BDAT", false),
            Phase::Closed | Phase::Command | Phase::Handshake => {}
        }
        self.phase = Phase::Closed;
    }

    fn in_content(&self) -> bool {
        matches!(self.phase, Phase::Data(_) | Phase::Chunk(_))
    }

    /// Postfix `state->where` for logs.
    fn where_(&self) -> String {
        match &self.phase {
            Phase::Data(rx) => format!("DATA ({} bytes)", rx.wire_bytes()),
            Phase::Chunk(_) => format!("BDAT ({} bytes)", self.bdat.stats().size),
            _ => self.last.to_string(),
        }
    }

    fn protocol(&self) -> &'static str {
        match self.proto.greeting() {
            Some(Greeting::Ehlo) => "ESMTP",
            _ => "SMTP",
        }
    }

    // --- replies ----------------------------------------------------------

    /// Queues a reply, after the error-rate delay.
    fn reply(&mut self, reply: Reply) {
        let s = &self.env.settings;
        if self.errors > s.soft_error_limit {
            self.backend.pause(s.error_sleep);
        }
        reply.encode(&mut self.out);
    }

    /// Queues an error reply and counts the error. At
    /// `smtpd_hard_error_limit` errors the server says so and hangs up
    /// (Postfix checks before reading the next command, without waiting
    /// for it).
    fn fail(&mut self, reply: Reply) {
        let closes = reply.closes_connection();
        self.reply(reply);
        self.errors = self.errors.saturating_add(1);
        if !closes {
            self.enforce_error_limit();
        }
    }

    fn enforce_error_limit(&mut self) {
        if !self.is_closed() && self.errors >= self.env.settings.hard_error_limit {
            info!("too many errors after {} from {}", self.last, self.namaddr);
            standard::too_many_errors(&self.env.settings.myhostname).encode(&mut self.out);
            self.close();
        }
    }

    /// Logs `ID: reject: STAGE from host[addr]: REPLY; from=<> to=<> proto= helo=<>`.
    fn log_reject(&self, stage: &str, reply: &Reply, rcpt: Option<&str>) {
        let txn = self.txn.as_ref();
        let id = txn
            .and_then(|t| t.queue.as_ref())
            .map_or("NOQUEUE", |q| q.queue_id());
        let mut line = format!("{id}: reject: {stage} from {}: {reply};", self.namaddr);
        if let Some(t) = txn {
            line.push_str(&format!(" from=<{}>", t.sender));
        }
        if let Some(r) = rcpt {
            line.push_str(&format!(" to=<{r}>"));
        }
        line.push_str(&format!(" proto={}", self.protocol()));
        if let Some(h) = &self.helo {
            line.push_str(&format!(" helo=<{h}>"));
        }
        info!("{line}");
    }

    // --- commands ----------------------------------------------------------

    fn run_commands(&mut self) {
        while matches!(self.phase, Phase::Command) {
            let line = match self.input.next_line() {
                None => return,
                Some(Ok(line)) => Ok((line.bytes.to_vec(), line.ending)),
                Some(Err(e)) => Err(e),
            };
            match line {
                Ok((bytes, ending)) => self.command(&bytes, ending),
                Err(e) => self.line_error(e),
            }
            self.enforce_error_limit();
        }
    }

    fn line_error(&mut self, e: LineError) {
        if e == LineError::TooLong {
            warn!(
                "{}: request longer than {}",
                self.namaddr, self.env.settings.line_length_limit
            );
        }
        self.stats.count("", false);
        self.last = "UNKNOWN";
        self.fail(e.reply());
    }

    fn command(&mut self, bytes: &[u8], ending: LineEnding) {
        let verb = first_word(bytes);
        let settings = &self.env.settings;
        if ending == LineEnding::BareLf && settings.bare_newline == BareNewline::Reject {
            self.stats.count(&verb, false);
            self.last = known_verb(&verb);
            self.fail(standard::bare_lf());
            return;
        }
        let opts = ParseOptions {
            smtputf8: self.proto.smtputf8(),
            strict_rfc821_envelopes: settings.strict_rfc821_envelopes,
            ..ParseOptions::default()
        };
        let command = match Command::parse_with(bytes, &opts) {
            Ok(c) => c,
            Err(e) => {
                self.stats.count(&verb, false);
                self.last = known_verb(&verb);
                if e == CommandError::NonSmtp {
                    warn!(
                        "non-SMTP command from {}: {}",
                        self.namaddr,
                        String::from_utf8_lossy(bytes)
                            .chars()
                            .take(100)
                            .collect::<String>()
                    );
                }
                let reply = e.reply();
                let closes = reply.closes_connection();
                self.fail(reply);
                if closes {
                    self.close();
                }
                return;
            }
        };
        self.last = command.verb();
        if self.must_start_tls(&command) {
            // Postfix smtpd_tls_security_level = encrypt: only commands
            // flagged SMTPD_CMD_FLAG_PRE_TLS run before STARTTLS.
            self.refuse(&command, standard::starttls_first());
            return;
        }
        if matches!(
            command,
            Command::Helo(_)
                | Command::Ehlo(_)
                | Command::Noop(_)
                | Command::Rset
                | Command::Vrfy(_)
                | Command::Help(_)
        ) {
            // Postfix smtpd_junk_command_limit: these cost nothing to
            // send, so past the limit each one counts as an error.
            self.junk = self.junk.saturating_add(1);
            if self.junk > self.env.settings.junk_command_limit {
                self.errors = self.errors.saturating_add(1);
            }
        }
        if let Err(reply) = self.proto.check(&command) {
            self.refuse(&command, reply);
            return;
        }
        let done = match &command {
            Command::Ehlo(name) | Command::Helo(name) => self.helo(&command, &name.to_string()),
            Command::Mail { from, params } => self.mail(&command, from, params),
            Command::Rcpt { to, params } => self.rcpt(&command, to, params),
            Command::Data => self.data(&command),
            Command::Bdat { size, last } => self.bdat(&command, *size, *last),
            Command::Rset => {
                self.abort_transaction();
                self.proto.accept(&command);
                self.reply(standard::ok());
                Done::Ok
            }
            Command::Noop(_) => {
                self.reply(standard::ok());
                Done::Ok
            }
            Command::Quit => {
                self.reply(standard::bye());
                self.phase = Phase::Closed;
                Done::Ok
            }
            Command::Help(_) => {
                self.reply(self.help());
                Done::Ok
            }
            Command::Vrfy(arg) => self.vrfy(arg),
            Command::Starttls => self.starttls(&command),
            Command::Auth { .. } => {
                self.fail(standard::auth_not_enabled());
                Done::Failed
            }
            // EXPN (Postfix does not know it either) and LHLO.
            Command::Expn(_) | Command::Lhlo(_) => {
                self.fail(standard::unrecognized());
                Done::Failed
            }
        };
        match done {
            Done::Ok => self.stats.count(command.verb(), true),
            Done::Failed => self.stats.count(command.verb(), false),
            Done::Pending => {}
        }
    }

    fn extensions(&self) -> Vec<Extension> {
        let s = &self.env.settings;
        let size = (s.message_size_limit > 0).then_some(s.message_size_limit);
        let mut e = vec![Extension::Pipelining, Extension::Size(size)];
        if s.vrfy_enabled {
            e.push(Extension::Vrfy);
        }
        if self.env.tls.offered() && !self.is_tls() {
            e.push(Extension::StartTls);
        }
        e.extend([
            Extension::EnhancedStatusCodes,
            Extension::EightBitMime,
            Extension::Dsn,
            Extension::SmtpUtf8,
            Extension::Chunking,
        ]);
        e
    }

    fn help(&self) -> Reply {
        let mut verbs = "HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP".to_string();
        if self.env.settings.vrfy_enabled {
            verbs.push_str(" VRFY");
        }
        if self.env.tls.offered() && !self.is_tls() {
            verbs.push_str(" STARTTLS");
        }
        Reply::with_status(
            214,
            EnhancedStatus::new(2, 0, 0),
            format!("Commands: {verbs}"),
        )
    }

    /// `smtpd_tls_security_level = encrypt` and no TLS yet: whether
    /// `command` must wait for STARTTLS.
    fn must_start_tls(&self, command: &Command) -> bool {
        let pre_tls = matches!(
            command,
            Command::Helo(_)
                | Command::Ehlo(_)
                | Command::Starttls
                | Command::Noop(_)
                | Command::Quit
        );
        self.env.tls.level == Level::Encrypt && !self.is_tls() && !pre_tls
    }

    /// STARTTLS (Postfix `smtpd.c:starttls_cmd`).
    fn starttls(&mut self, command: &Command) -> Done {
        let tls = &self.env.tls;
        if !tls.offered() {
            self.fail(standard::not_implemented());
            return Done::Failed;
        }
        if self.proto.in_transaction() {
            self.fail(standard::transaction_in_progress());
            return Done::Failed;
        }
        if tls.config.is_none() {
            self.fail(standard::tls_not_available());
            return Done::Failed;
        }
        // RFC 3207 §4.2: forget the greeting and everything learned from
        // the client before TLS.
        self.abort_transaction();
        self.proto.accept(command);
        self.helo = None;
        self.reply(standard::starttls_ready());
        self.phase = Phase::Handshake;
        Done::Ok
    }

    /// HELO/EHLO: resets any transaction (RFC 5321 §4.1.4).
    fn helo(&mut self, command: &Command, name: &str) -> Done {
        self.abort_transaction();
        self.proto.accept(command);
        self.helo = Some(name.to_string());
        let host = &self.env.settings.myhostname;
        let reply = match command {
            Command::Ehlo(_) => ehlo(host, &self.extensions()),
            _ => standard::helo(host),
        };
        self.reply(reply);
        Done::Ok
    }

    fn mail(&mut self, command: &Command, from: &Path, params: &MailParams) -> Done {
        if params.body == Some(Body::BinaryMime) {
            self.fail(standard::unsupported_option("BODY=BINARYMIME"));
            return Done::Failed;
        }
        if params.auth.is_some() {
            // No AUTH announced (Postfix without SASL treats it the same).
            self.fail(standard::unsupported_option("AUTH"));
            return Done::Failed;
        }
        let limit = self.env.settings.message_size_limit;
        if limit > 0 && params.size.is_some_and(|size| size > limit) {
            let reply = standard::message_too_big();
            self.log_reject("MAIL", &reply, None);
            self.fail(reply);
            return Done::Failed;
        }
        self.proto.accept(command);
        self.txn = Some(Transaction {
            sender: from.mailbox().map(Mailbox::internal).unwrap_or_default(),
            params: params.clone(),
            recipients: Vec::new(),
            queue: None,
            broken: false,
            greeted: false,
        });
        self.reply(standard::sender_ok());
        Done::Ok
    }

    /// Rewrites (local context) and resolves `address`; the error is the
    /// reply for a failed lookup.
    fn resolve(&mut self, sender: &str, address: &str) -> Result<Resolved, Reply> {
        let temp_fail = |e: String| {
            warn!("{e}");
            standard::temporary_lookup_failure(&format!("<{address}>"))
        };
        let canonical = self.backend.rewrite_local(address).map_err(temp_fail)?;
        let resolved = self
            .backend
            .resolve(sender, &canonical)
            .map_err(temp_fail)?;
        if resolved.flags & postern_ipc::rewrite::flags::FAIL != 0 {
            // A table lookup failed inside trivial-rewrite (Postfix
            // `reject_dict_retry`).
            return Err(standard::temporary_lookup_failure(&format!("<{address}>")));
        }
        Ok(resolved)
    }

    fn rcpt(&mut self, command: &Command, to: &Mailbox, params: &RcptParams) -> Done {
        let given = to.internal();
        let Some(txn) = self.txn.as_ref() else {
            // Session::check guarantees a transaction.
            self.fail(standard::need_mail());
            return Done::Failed;
        };
        if txn.recipients.len() >= self.env.settings.recipient_limit {
            self.fail(standard::too_many_recipients());
            return Done::Failed;
        }
        if txn.broken {
            self.fail(standard::queue_write_error());
            return Done::Failed;
        }
        let sender = txn.sender.clone();
        let verdict = self.resolve(&sender, &given).and_then(|resolved| {
            let facts = Facts {
                client: self.client(),
                helo: self.helo.as_deref(),
                sender: &sender,
                recipient: &given,
                resolved: &resolved,
                authenticated: self.proto.is_authenticated(),
            };
            let env = self.env;
            env.restrictions
                .check_recipient(&facts, &env.settings.mynetworks, &env.tables)?;
            check::check_recipient_maps(&env.tables, &given, &resolved)?;
            Ok(resolved)
        });
        let resolved = match verdict {
            Ok(r) => r,
            Err(reply) => {
                self.queue_greeted();
                self.log_reject("RCPT", &reply, Some(&given));
                self.fail(reply);
                return Done::Failed;
            }
        };
        // Qualified addresses go to cleanup as given (it canonicalizes
        // them); an unqualified Postmaster as trivial-rewrite completed it.
        let address = if to.domain().is_some() {
            given
        } else {
            resolved.recipient
        };
        if let Err(reply) = self.queue_recipient(&address, params) {
            self.fail(reply);
            return Done::Failed;
        }
        if let Some(txn) = self.txn.as_mut() {
            txn.recipients.push(to.to_string());
        }
        self.proto.accept(command);
        self.reply(standard::recipient_ok());
        Done::Ok
    }

    /// Hands an accepted recipient to cleanup, connecting first if needed.
    fn queue_recipient(&mut self, address: &str, params: &RcptParams) -> Result<(), Reply> {
        let protocol = self.protocol();
        let Some(txn) = self.txn.as_mut() else {
            return Err(standard::queue_write_error());
        };
        if txn.queue.is_none() {
            let mut queue = self.backend.open_queue().map_err(|e| {
                warn!("{e}");
                standard::queue_write_error()
            })?;
            send_envelope(&mut queue, txn, &self.peer, self.helo.as_deref(), protocol).map_err(
                |e| {
                    warn!("{e}");
                    standard::queue_write_error()
                },
            )?;
            txn.queue = Some(queue);
        }
        let Some(queue) = txn.queue.as_mut() else {
            return Err(standard::queue_write_error());
        };
        let dsn_orcpt = params
            .orcpt
            .as_ref()
            .map(|o| format!("{};{}", o.addr_type, o.address));
        let rcpt = Recipient {
            address,
            orcpt: None,
            dsn_orcpt: dsn_orcpt.as_deref(),
            notify: params.notify.map_or(0, Notify::bits),
        };
        queue.recipient(&rcpt).map_err(|e| {
            warn!("{}: {e}", queue.queue_id());
            txn.broken = true;
            standard::queue_write_error()
        })
    }

    /// Reads cleanup's greeting once a queue file is open and logs
    /// `ID: client=...` (Postfix logs it at the first accepted RCPT).
    /// The first RCPT is answered without waiting for cleanup to create
    /// the file; the ID is needed from the Received: header, a later
    /// reject's log line or the end of the transaction on. A greeting
    /// that does not come breaks the transaction (451 at DATA).
    fn queue_greeted(&mut self) {
        let Some(txn) = self.txn.as_mut() else {
            return;
        };
        let Some(queue) = txn.queue.as_mut().filter(|_| !txn.greeted) else {
            return;
        };
        txn.greeted = true;
        match queue.greeting() {
            Ok(()) => info!("{}: client={}", queue.queue_id(), self.namaddr),
            Err(e) => {
                warn!("{e}");
                txn.broken = true;
            }
        }
    }

    /// Starts the content: `M` and the `Received:` header.
    fn begin_message(&mut self) -> Result<(), String> {
        self.queue_greeted();
        let date = self.backend.date();
        // RFC 3848/6531: an S for TLS.
        let protocol = match (self.protocol(), self.proto.smtputf8(), self.tls.is_some()) {
            ("ESMTP", true, false) => "UTF8SMTP",
            ("ESMTP", true, true) => "UTF8SMTPS",
            ("ESMTP", false, true) => "ESMTPS",
            (p, _, _) => p,
        };
        let tls = self.tls.as_ref().filter(|_| self.env.tls.received_header);
        let Some(txn) = self.txn.as_mut() else {
            return Err("no transaction".into());
        };
        let Some(queue) = txn.queue.as_mut().filter(|_| !txn.broken) else {
            return Err("no queue file".into());
        };
        let single = match txn.recipients.as_slice() {
            [one] => Some(one.as_str()),
            _ => None,
        };
        let header = Received {
            helo: self.helo.as_deref(),
            client_name: &self.peer.name,
            client_rfc_addr: &self.peer.rfc_addr(),
            hostname: &self.env.settings.myhostname,
            mail_name: &self.env.settings.mail_name,
            protocol,
            queue_id: queue.queue_id(),
            single_recipient: single,
            date: &date,
            tls,
        }
        .to_bytes();
        let result = queue
            .begin_content()
            .and_then(|()| queue.write_content(&header));
        if let Err(e) = &result {
            warn!("{}: {e}", queue.queue_id());
            txn.broken = true;
        }
        result
    }

    /// `smtpd_data_restrictions`; the error is the reply, already logged.
    fn check_data(&mut self) -> Result<(), Reply> {
        self.queue_greeted();
        let env = self.env;
        env.restrictions
            .check_data(
                &self.client(),
                self.proto.is_authenticated(),
                &env.settings.mynetworks,
            )
            .inspect_err(|reply| self.log_reject("DATA", reply, None))
    }

    fn data(&mut self, command: &Command) -> Done {
        if let Err(reply) = self.check_data() {
            self.fail(reply);
            return Done::Failed;
        }
        if self.begin_message().is_err() {
            self.abort_transaction();
            self.proto.end_transaction();
            self.fail(standard::queue_write_error());
            return Done::Failed;
        }
        self.proto.accept(command);
        let s = &self.env.settings;
        self.phase = Phase::Data(DataReceiver::new(DataOptions {
            bare_newline: s.bare_newline,
            size_limit: s.message_size_limit,
        }));
        self.reply(standard::start_data());
        Done::Pending
    }

    fn bdat(&mut self, command: &Command, size: u64, last: bool) -> Done {
        if self.proto.state() != State::Bdat
            && let Err(reply) = self.check_data()
        {
            self.refuse_chunk(size, last, reply);
            return Done::Pending;
        }
        if self.proto.state() != State::Bdat {
            // The first chunk of the message. A failure is reported when
            // the chunk has been read.
            self.bdat = BdatReceiver::new(self.env.settings.message_size_limit);
            let _ = self.begin_message();
        }
        self.proto.accept(command);
        self.bdat.start_chunk(size, last);
        self.phase = Phase::Chunk(Chunk {
            refused: None,
            ends_transaction: false,
        });
        Done::Pending
    }

    /// A command that may not run: it fails with `reply` (a BDAT after its
    /// chunk is drained).
    fn refuse(&mut self, command: &Command, reply: Reply) {
        if let Command::Bdat { size, last } = *command {
            self.refuse_chunk(size, last, reply);
        } else {
            self.stats.count(command.verb(), false);
            self.fail(reply);
        }
    }

    /// A BDAT that may not run: its chunk is still on the wire and is
    /// drained before the reply.
    fn refuse_chunk(&mut self, size: u64, last: bool, reply: Reply) {
        let ends_transaction = last && self.proto.state() == State::Bdat;
        self.bdat.skip_chunk(size);
        self.phase = Phase::Chunk(Chunk {
            refused: Some(reply),
            ends_transaction,
        });
    }

    fn vrfy(&mut self, arg: &str) -> Done {
        if !self.env.settings.vrfy_enabled {
            self.fail(standard::vrfy_disabled());
            return Done::Failed;
        }
        let trimmed = arg.trim();
        let inner = trimmed
            .strip_prefix('<')
            .and_then(|a| a.strip_suffix('>'))
            .unwrap_or(trimmed);
        let address = match Mailbox::parse(inner, true) {
            Ok(m) => m.internal(),
            Err(AddressError::MissingDomain)
                if !inner.is_empty() && !inner.contains(char::is_whitespace) =>
            {
                inner.to_string()
            }
            Err(_) => {
                self.fail(Reply::with_status(
                    501,
                    EnhancedStatus::new(5, 1, 3),
                    "Bad recipient address syntax",
                ));
                return Done::Failed;
            }
        };
        let verdict = self.resolve("", &address).and_then(|resolved| {
            check::check_recipient_maps(&self.env.tables, &address, &resolved)
        });
        if let Err(reply) = verdict {
            self.log_reject("VRFY", &reply, Some(&address));
            self.fail(reply);
            return Done::Failed;
        }
        self.reply(standard::cannot_verify(arg));
        Done::Ok
    }

    // --- content -------------------------------------------------------------

    /// Feeds content to the DATA or BDAT receiver; returns how much of
    /// `input` it took.
    fn feed_content(&mut self, input: &[u8]) -> usize {
        match &mut self.phase {
            Phase::Data(rx) => {
                let progress = rx.feed(input, &mut self.content);
                self.flush_content();
                match progress {
                    DataProgress::NeedMore => input.len(),
                    DataProgress::Done(end) => {
                        self.phase = Phase::Command;
                        self.end_of_data(end.error);
                        end.consumed
                    }
                }
            }
            Phase::Chunk(_) => {
                let progress = self.bdat.feed(input, &mut self.content);
                self.flush_content();
                match progress {
                    ChunkProgress::NeedMore => input.len(),
                    ChunkProgress::Done(end) => {
                        let phase = std::mem::replace(&mut self.phase, Phase::Command);
                        if let Phase::Chunk(chunk) = phase {
                            self.end_of_chunk(chunk, end);
                        }
                        end.consumed
                    }
                }
            }
            Phase::Closed | Phase::Command | Phase::Handshake => 0,
        }
    }

    /// Streams received content on to cleanup.
    fn flush_content(&mut self) {
        if self.content.is_empty() {
            return;
        }
        if let Some(txn) = self.txn.as_mut()
            && !txn.broken
            && let Some(queue) = txn.queue.as_mut()
            && let Err(e) = queue.write_content(&self.content)
        {
            warn!("{}: {e}", queue.queue_id());
            txn.broken = true;
        }
        self.content.clear();
    }

    fn end_of_data(&mut self, error: Option<DataError>) {
        self.last = "END-OF-MESSAGE";
        let txn = self.txn.take();
        self.proto.end_transaction();
        let (reply, ok) = self.finish_message(txn, error.map(|e| e.reply()));
        self.finish_reply("DATA", reply, ok);
    }

    fn end_of_chunk(&mut self, chunk: Chunk, end: ChunkEnd) {
        if let Some(reply) = chunk.refused {
            if chunk.ends_transaction {
                self.abort_transaction();
                self.proto.end_transaction();
            }
            self.stats.count("BDAT", false);
            self.fail(reply);
            return;
        }
        let too_big = end.error.map(|_| standard::chunk_too_big());
        if end.last {
            self.last = "END-OF-MESSAGE";
            let txn = self.txn.take();
            self.proto.end_transaction();
            self.bdat.reset();
            let (reply, ok) = self.finish_message(txn, too_big);
            self.finish_reply("BDAT", reply, ok);
            return;
        }
        let broken = self.txn.as_ref().is_none_or(|t| t.broken);
        if too_big.is_none() && !broken {
            self.stats.count("BDAT", true);
            self.reply(standard::chunk_ok(end.size));
            return;
        }
        // The message is lost; the rest of its chunks get the same reply.
        let reply = match too_big {
            Some(reply) => {
                self.log_reject("BDAT", &reply, None);
                reply
            }
            None => standard::queue_write_error(),
        };
        if let Some(txn) = self.txn.as_mut() {
            txn.broken = true;
            txn.queue = None;
        }
        self.proto.bdat_failed(reply.clone());
        self.stats.count("BDAT", false);
        self.fail(reply);
    }

    fn finish_reply(&mut self, verb: &str, reply: Reply, ok: bool) {
        self.stats.count(verb, ok);
        if ok {
            // "without delivering mail": a delivered message clears the
            // error count.
            self.errors = 0;
            self.junk = 0;
            self.reply(reply);
        } else {
            self.fail(reply);
        }
    }

    /// Ends a message whose content has been read: rejects it with
    /// `reject`, or lets cleanup commit it. Dropping the transaction
    /// abandons the queue file.
    fn finish_message(
        &mut self,
        txn: Option<Transaction<B::Queue>>,
        reject: Option<Reply>,
    ) -> (Reply, bool) {
        let Some(txn) = txn else {
            return (standard::queue_write_error(), false);
        };
        if let Some(reply) = reject {
            let id = txn.queue.as_ref().map_or("NOQUEUE", |q| q.queue_id());
            let rcpt = match txn.recipients.as_slice() {
                [one] => format!(" to=<{one}>"),
                _ => String::new(),
            };
            let helo = self
                .helo
                .as_ref()
                .map(|h| format!(" helo=<{h}>"))
                .unwrap_or_default();
            info!(
                "{id}: reject: END-OF-MESSAGE from {}: {reply}; from=<{}>{rcpt} proto={}{helo}",
                self.namaddr,
                txn.sender,
                self.protocol()
            );
            return (reply, false);
        }
        let Some(mut queue) = txn.queue.filter(|_| !txn.broken) else {
            return (standard::queue_write_error(), false);
        };
        let id = queue.queue_id().to_string();
        let result = queue.end_content().and_then(|()| queue.finish());
        match result {
            Ok(outcome) => (outcome_reply(&outcome), outcome.accepted()),
            Err(e) => {
                warn!("{id}: {e}");
                (standard::queue_write_error(), false)
            }
        }
    }

    /// Whether the backend keeps a cleanup connection for the next
    /// message (see [`crate::backend::Backend::holds_queue`]).
    pub(crate) fn holds_idle_queue(&self) -> bool {
        self.backend.holds_queue()
    }

    /// Gives the kept cleanup connection back: the client is idle.
    pub(crate) fn release_idle_queue(&mut self) {
        self.backend.release_queue();
    }

    /// Forgets the transaction; an open cleanup connection is dropped,
    /// which makes cleanup remove the unfinished queue file.
    fn abort_transaction(&mut self) {
        // Log the client= line of a queue file opened for nothing.
        self.queue_greeted();
        self.txn = None;
        self.bdat.reset();
    }
}

impl<B: Backend> Drop for Session<'_, B> {
    /// A client that leaves mid-transaction: its queue file still gets
    /// its client= line (see [`Session::queue_greeted`]).
    fn drop(&mut self) {
        self.queue_greeted();
        // The backend outlives the session: a kept cleanup connection
        // must not wait for the next client.
        self.backend.release_queue();
    }
}

/// Sends the envelope head: sender and attributes (Postfix `mail_open_stream`
/// plus the attributes `smtpd.c` sends).
fn send_envelope<Q: QueueSink, R>(
    queue: &mut Q,
    txn: &Transaction<R>,
    peer: &Peer,
    helo: Option<&str>,
    protocol: &str,
) -> Result<(), String> {
    queue.sender(&txn.sender)?;
    queue.attr("client_name", &peer.name)?;
    queue.attr("reverse_client_name", &peer.reverse_name)?;
    queue.attr("client_address", &peer.addr)?;
    queue.attr("client_port", &peer.port.to_string())?;
    if let Some(h) = helo {
        queue.attr("helo_name", h)?;
    }
    queue.attr("protocol", protocol)?;
    queue.attr("rewrite_context", "remote")?;
    let p = &txn.params;
    if let Some(envid) = &p.envid {
        queue.attr("envid", envid)?;
    }
    if let Some(ret) = p.ret {
        let ret = match ret {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        };
        queue.attr("ret", ret)?;
    }
    match p.body {
        Some(Body::EightBitMime) => queue.attr("encoding", "8bit")?,
        Some(Body::SevenBit) => queue.attr("encoding", "7bit")?,
        _ => {}
    }
    if p.smtputf8 {
        queue.attr("smtputf8", "yes")?;
    }
    Ok(())
}

/// A verb for logs (Postfix `state->where`): the command's name if the
/// server knows it, else `UNKNOWN`.
fn known_verb(verb: &str) -> &'static str {
    const KNOWN: [&str; 15] = [
        "AUTH", "BDAT", "DATA", "EHLO", "EXPN", "HELO", "HELP", "LHLO", "MAIL", "NOOP", "QUIT",
        "RCPT", "RSET", "STARTTLS", "VRFY",
    ];
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(verb))
        .copied()
        .unwrap_or("UNKNOWN")
}

/// The first word of a command line, for the statistics.
fn first_word(line: &[u8]) -> String {
    let word = line
        .split(|b| *b == b' ' || *b == b'\t')
        .find(|w| !w.is_empty())
        .unwrap_or_default();
    String::from_utf8_lossy(word).to_ascii_uppercase()
}

/// cleanup's verdict as an SMTP reply; a status code at the start of the
/// reason (`5.7.1 message content rejected`) wins over the default.
fn outcome_reply(outcome: &Outcome) -> Reply {
    let (code, status, text) = outcome.smtp_reply();
    let default = EnhancedStatus::parse_prefix(status)
        .map(|(s, _)| s)
        .unwrap_or(EnhancedStatus::new(4, 3, 0));
    let (status, text) = check::split_dsn(&text, default);
    Reply::with_status(code, status, text)
}

#[cfg(test)]
mod tests;

//! One delivery request: the servers in turn, one SMTP or LMTP
//! transaction per server for the recipients still pending, and a result
//! per recipient (Postfix `smtp_connect.c:smtp_connect_remote`,
//! `smtp_proto.c`, `smtp_trouble.c`).
//!
//! Servers are tried in order (MX preference, then `smtp_fallback_relay`)
//! until no recipient is pending, within `smtp_mx_address_limit` and
//! `smtp_mx_session_limit`. A connection failure, a 4xx greeting (or 5xx
//! with `smtp_skip_5xx_greeting`), a 4xx reply to MAIL, RCPT, DATA or the
//! end of data, and a lost connection all leave the recipients concerned
//! pending for the next server; a 2xx or 5xx reply is final. Recipients
//! still pending after the last server are deferred with the last reason.
//!
//! Reasons follow Postfix: `host mx.example.com[192.0.2.1] said: 550
//! 5.1.1 ... (in reply to RCPT TO command)`, `connect to
//! mx.example.com[192.0.2.1]:25: Connection refused`, `lost connection
//! with mx.example.com[192.0.2.1] while sending message body`; a server's
//! reply also goes to the DSN (`Diagnostic-Code: smtp; 550 ...`,
//! `Remote-MTA: dns; mx.example.com`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use postern_ipc::deliver::{Action, RcptStatus, Request};
use postern_smtp_proto::reply::Severity;
use postern_smtp_proto::{
    Body, Capabilities, Command, DataEncoder, HeloName, Host, MailParams, Mailbox, Notify, Orcpt,
    Path, RcptParams, Reply, Ret,
};
use postern_tls::client::{Policy, SecurityLevel, server_name};
use postern_tls::rpt::ResultType;
use postern_util::info;

use crate::cache::{Cache, Cached};
use crate::client::{Addr, Conn, IoFail, Target};
use crate::mime;
use crate::nexthop::{self, Dest};
use crate::route::{Failure, Router};
use crate::tls::{Plan, TlsClient};

/// Per-command time limits (`smtp_*_timeout` or `lmtp_*_timeout`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) helo: Duration,
    pub(crate) mail: Duration,
    pub(crate) rcpt: Duration,
    pub(crate) data_init: Duration,
    pub(crate) data_xfer: Duration,
    pub(crate) data_done: Duration,
    pub(crate) quit: Duration,
    /// The TLS handshake after STARTTLS (`smtp_starttls_timeout`).
    pub(crate) starttls: Duration,
}

/// The agent's settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// LMTP (RFC 2033) rather than SMTP.
    pub(crate) lmtp: bool,
    /// EHLO/LHLO name.
    pub(crate) helo_name: String,
    /// `myhostname`, for loop detection in the EHLO reply.
    pub(crate) myhostname: String,
    pub(crate) timeouts: Timeouts,
    /// Port when the next hop names none.
    pub(crate) default_port: u16,
    /// `smtp_fallback_relay` (SMTP only).
    pub(crate) fallback: Vec<String>,
    /// `smtp_mx_session_limit` (0: none).
    pub(crate) session_limit: usize,
    /// `smtp_skip_5xx_greeting`.
    pub(crate) skip_5xx_greeting: bool,
    /// Not `disable_mime_output_conversion`.
    pub(crate) convert_8bit: bool,
    /// `smtp_line_length_limit` (0: none).
    pub(crate) line_length_limit: usize,
    /// Idle sessions kept for the next request (SMTP only; `None`:
    /// `smtp_connection_cache_on_demand = no`).
    pub(crate) cache: Option<Cache>,
    /// STARTTLS, DANE, MTA-STS (LMTP: STARTTLS only; `None`: never TLS).
    pub(crate) tls: Option<Arc<TlsClient>>,
}

/// A recipient's result so far.
#[derive(Debug, Clone)]
struct Slot {
    status: RcptStatus,
    relay: String,
    done: bool,
}

/// The message as the sessions need it.
struct Message<'a> {
    content: &'a [u8],
    /// Declared or found 8-bit content.
    eight_bit: bool,
    /// Needs SMTPUTF8 (flagged by smtpd and actually non-ASCII).
    needs_utf8: bool,
}

/// Where in the session we are, for "lost connection ... while ...".
#[derive(Debug, Clone, Copy)]
enum Stage {
    Greeting,
    Helo,
    Mail,
    Rcpt,
    Data,
    Body,
    Dot,
    Starttls,
}

impl Stage {
    fn text(self, lmtp: bool) -> &'static str {
        match self {
            Stage::Greeting => "receiving the initial server greeting",
            Stage::Helo if lmtp => "performing the LHLO handshake",
            Stage::Helo => "performing the EHLO handshake",
            Stage::Mail => "sending MAIL FROM",
            Stage::Rcpt => "sending RCPT TO",
            Stage::Data => "sending DATA command",
            Stage::Body => "sending message body",
            Stage::Dot => "sending end of data -- message may be sent more than once",
            Stage::Starttls => "performing the STARTTLS handshake",
        }
    }
}

fn status(action: Action, dsn: &str, reason: String) -> RcptStatus {
    RcptStatus::new(action, dsn, reason)
}

/// The RFC 3463 status of a reply: its enhanced code, else `X.0.0`.
fn reply_dsn(r: &Reply) -> String {
    match r.enhanced {
        Some(e) => e.to_string(),
        None => format!("{}.0.0", r.code / 100),
    }
}

/// Builds `<addr>` text for MAIL/RCPT from the internal form.
fn mailbox(addr: &str) -> Option<Mailbox> {
    let (local, domain) = addr.rsplit_once('@')?;
    let host = Host::parse(domain, true).ok()?;
    Mailbox::new(local, Some(host)).ok()
}

impl Settings {
    /// Delivers the request; one result per recipient, in order.
    pub(crate) fn deliver(
        &self,
        router: &Router<'_>,
        req: &Request,
        content: &[u8],
    ) -> Vec<(RcptStatus, String)> {
        let n = req.recipients.len();
        let mut slots: Vec<Slot> = (0..n)
            .map(|_| Slot {
                status: status(Action::Delayed, "4.4.3", "no server was tried".into()),
                relay: "none".into(),
                done: false,
            })
            .collect();
        let finish = |slots: Vec<Slot>| {
            slots
                .into_iter()
                .map(|s| (s.status, s.relay))
                .collect::<Vec<_>>()
        };
        let parsed = if self.lmtp {
            nexthop::parse_lmtp(&req.nexthop, self.default_port)
        } else {
            nexthop::parse_smtp(&req.nexthop, self.default_port)
        };
        let mut dests = match parsed {
            Ok(d) => d,
            Err(e) => {
                for s in &mut slots {
                    s.status = status(Action::Delayed, "4.3.5", e.clone());
                }
                return finish(slots);
            }
        };
        let primary = dests.len();
        if !self.lmtp {
            for f in &self.fallback {
                match nexthop::parse_smtp(f, self.default_port) {
                    Ok(d) => dests.extend(d),
                    Err(e) => postern_util::warn!("smtp_fallback_relay: {e}"),
                }
            }
        }
        let msg = Message {
            content,
            eight_bit: req.attr("encoding") == Some("8bit") || mime::has_8bit(content),
            needs_utf8: req.attr("smtputf8") == Some("yes")
                && (!req.sender.is_ascii()
                    || req.recipients.iter().any(|r| !r.address.is_ascii())
                    || !headers(content).is_ascii()),
        };
        // Sessions are kept per next hop and TLS level, so a request
        // that needs TLS never gets a plaintext session (or the reverse).
        let tls_key = match &self.tls {
            Some(t) => t
                .level_for(&req.nexthop)
                .map_or_else(|_| "?".to_string(), |e| e.level.name().to_string()),
            None => "none".into(),
        };
        if let Some(cache) = &self.cache
            && let Some(cached) = cache.take(&req.nexthop, &tls_key)
        {
            self.reuse(cache, cached, req, &msg, &mut slots);
        }
        let mut sessions = 0usize;
        'dests: for (i, dest) in dests.iter().enumerate() {
            if slots.iter().all(|s| s.done) {
                break;
            }
            let mut targets = match router.targets(dest) {
                Ok(t) => t,
                Err(f) => {
                    // The only destination itself is refused (NXDOMAIN,
                    // null MX, loop): no fallback relay helps. With a
                    // list of next hops, the others are still tried.
                    let refused = f.is_permanent() && i == 0 && primary == 1;
                    self.route_failure(&mut slots, &f, refused);
                    if refused {
                        return finish(slots);
                    }
                    continue;
                }
            };
            // TLS: the next-hop domain, and its MTA-STS policy (MX
            // destinations only; the fallback relays are not the domain's).
            let tls_dest = match (&self.tls, dest) {
                (Some(tls), Dest::Mx { domain, .. }) => {
                    // MTA-STS only where TLS is not switched off.
                    let tls_on = tls
                        .level_for(&req.nexthop)
                        .map_or(true, |e| e.level != SecurityLevel::None);
                    let policy = if i < primary && tls_on {
                        tls.sts_policy(router.dns, domain)
                    } else {
                        None
                    };
                    Some((tls.as_ref(), domain.clone(), i < primary, policy))
                }
                (Some(tls), Dest::Host { host, .. }) => {
                    Some((tls.as_ref(), host.clone(), false, None))
                }
                // LMTP over a Unix-domain socket: the server is this
                // host, as Postfix has it for `secure`.
                (Some(tls), Dest::Unix(_)) => {
                    Some((tls.as_ref(), self.myhostname.clone(), false, None))
                }
                (None, _) => None,
            };
            if let Some((tls, domain, true, Some(policy))) = &tls_dest {
                targets = tls.sts_filter(policy, domain, targets);
                if targets.is_empty() {
                    let reason = format!("MTA-STS policy for {domain} lists none of its MX hosts");
                    for s in slots.iter_mut().filter(|s| !s.done) {
                        s.status = status(Action::Delayed, "4.7.5", reason.clone());
                        s.relay = "none".into();
                    }
                    continue;
                }
            }
            for t in &targets {
                if slots.iter().all(|s| s.done) {
                    break 'dests;
                }
                let plan = match &tls_dest {
                    None => Plan::none(),
                    Some((tls, domain, mx_dest, policy)) => match tls.plan(
                        router.dns,
                        &req.nexthop,
                        domain,
                        *mx_dest,
                        t,
                        policy.as_ref(),
                    ) {
                        // Postfix smtp_connect_local: encryption without
                        // authentication buys nothing on a private
                        // channel.
                        Ok(p)
                            if p.level == SecurityLevel::May && matches!(t.addr, Addr::Unix(_)) =>
                        {
                            postern_util::warn!(
                                "opportunistic TLS encryption is not appropriate for unix-domain destinations"
                            );
                            Plan::none()
                        }
                        Ok(p) => p,
                        Err(st) => {
                            info!("{}: {}", t.relay(), st.reason);
                            for s in slots.iter_mut().filter(|s| !s.done) {
                                s.status = st.clone();
                                s.relay = t.relay();
                            }
                            continue;
                        }
                    },
                };
                if self.session_limit > 0 && sessions >= self.session_limit {
                    break 'dests;
                }
                if self.session(t, req, &msg, &mut slots, &plan, &tls_key) {
                    sessions += 1;
                }
            }
        }
        finish(slots)
    }

    /// Records a routing failure for every pending recipient: final
    /// when `final_`, else deferred with the failure's text.
    fn route_failure(&self, slots: &mut [Slot], f: &Failure, final_: bool) {
        for s in slots.iter_mut().filter(|s| !s.done) {
            // A permanent failure that is not final is a deferral.
            let dsn = if final_ {
                f.dsn.clone()
            } else {
                format!("4{}", f.dsn.get(1..).unwrap_or(".0.0"))
            };
            s.status = status(
                if final_ {
                    Action::Failed
                } else {
                    Action::Delayed
                },
                &dsn,
                f.reason.clone(),
            );
            s.relay = "none".into();
            s.done = final_;
        }
    }

    /// A transaction on an idle session kept from an earlier request.
    /// A session found dead before its first reply changes nothing.
    fn reuse(
        &self,
        cache: &Cache,
        mut c: Cached,
        req: &Request,
        msg: &Message<'_>,
        slots: &mut [Slot],
    ) {
        let pending: Vec<usize> = (0..slots.len()).filter(|&i| !slots[i].done).collect();
        let none = Plan::none();
        let mut run = Run {
            s: self,
            t: &c.target,
            relay: c.target.relay(),
            conn: &mut c.conn,
            replies: 0,
            clean: false,
            plan: &none,
        };
        let outcome = run.mail_rcpt_data(req, msg, &c.caps, &pending);
        let (replies, clean, relay) = (run.replies, run.clean, run.relay.clone());
        match outcome {
            Err(Stop::All(_, false)) if replies == 0 => {
                postern_util::debug!("cached session with {} is gone", c.target.relay());
                return;
            }
            Err(Stop::All(st, done)) => {
                for &i in &pending {
                    slots[i].status = st.clone();
                    slots[i].relay = relay.clone();
                    slots[i].done = done;
                }
            }
            Ok(per_rcpt) => {
                for (i, st) in per_rcpt {
                    slots[i].done = st.action.is_final();
                    slots[i].status = st;
                    slots[i].relay = relay.clone();
                }
            }
        }
        if clean {
            c.idle_since = Instant::now();
            cache.put(c);
        } else {
            Run {
                s: self,
                t: &c.target,
                relay,
                conn: &mut c.conn,
                replies: 0,
                clean: false,
                plan: &none,
            }
            .quit();
        }
    }

    /// One session with `t` for the pending recipients under the TLS
    /// `plan`. Returns whether a session took place (the server
    /// greeted). A failed handshake under opportunistic TLS is retried
    /// at once on a new plaintext connection, as Postfix does.
    fn session(
        &self,
        t: &Target,
        req: &Request,
        msg: &Message<'_>,
        slots: &mut [Slot],
        plan: &Plan,
        tls_key: &str,
    ) -> bool {
        let plain = Plan::none();
        let mut plan = plan;
        loop {
            match self.session_once(t, req, msg, slots, plan, tls_key) {
                Outcome::NoSession => return false,
                Outcome::RetryPlain if plan.level != SecurityLevel::None => {
                    info!(
                        "{}: trying plaintext delivery after TLS handshake failure",
                        t.relay()
                    );
                    plan = &plain;
                }
                _ => return true,
            }
        }
    }

    fn session_once(
        &self,
        t: &Target,
        req: &Request,
        msg: &Message<'_>,
        slots: &mut [Slot],
        plan: &Plan,
        tls_key: &str,
    ) -> Outcome {
        let relay = t.relay();
        let pending: Vec<usize> = (0..slots.len()).filter(|&i| !slots[i].done).collect();
        // No session: Postfix logs relay=none with the connect error.
        let soft_all = |slots: &mut [Slot], dsn: &str, reason: String| {
            for &i in &pending {
                slots[i].status = status(Action::Delayed, dsn, reason.clone());
                slots[i].relay = "none".into();
            }
        };
        let mut conn = match Conn::connect(&t.addr, self.timeouts.connect) {
            Ok(c) => c,
            Err(e) => {
                let what = match &t.addr {
                    Addr::Inet(a) => format!("{}[{}]:{}", t.host, a.ip(), a.port()),
                    Addr::Unix(p) => format!("{}[{}]", t.host, p.display()),
                };
                info!("connect to {what}: {e}");
                soft_all(slots, "4.4.1", format!("connect to {what}: {e}"));
                return Outcome::NoSession;
            }
        };
        let born = Instant::now();
        let mut run = Run {
            s: self,
            t,
            relay,
            conn: &mut conn,
            replies: 0,
            clean: false,
            plan,
        };
        let outcome = run.transaction(req, msg, slots, &pending);
        if let Outcome::Keep(caps) = outcome {
            if let Some(cache) = &self.cache {
                cache.put(Cached {
                    nexthop: req.nexthop.clone(),
                    tls_key: tls_key.to_string(),
                    target: t.clone(),
                    conn,
                    caps,
                    born,
                    idle_since: Instant::now(),
                });
            }
            return Outcome::Done;
        }
        outcome
    }
}

/// How a session ended.
enum Outcome {
    /// No connection.
    NoSession,
    /// Done; the session is closed.
    Done,
    /// Done; the session may be kept (it waits for MAIL FROM).
    Keep(Capabilities),
    /// The TLS handshake failed under opportunistic TLS.
    RetryPlain,
}

/// The header block of `content`.
fn headers(content: &[u8]) -> &[u8] {
    let mut pos = 0;
    for line in content.split_inclusive(|&b| b == b'\n') {
        if line == b"\n" || line == b"\r\n" {
            break;
        }
        pos += line.len();
    }
    &content[..pos]
}

/// One connected session.
struct Run<'a> {
    s: &'a Settings,
    t: &'a Target,
    relay: String,
    conn: &'a mut Conn,
    /// Replies read so far.
    replies: usize,
    /// The last transaction ended with every reply to its content read:
    /// the server waits for the next MAIL FROM.
    clean: bool,
    /// What to do about TLS.
    plan: &'a Plan,
}

/// How a step ended when it did not go on.
enum Stop {
    /// Every pending recipient got this result.
    All(RcptStatus, bool),
}

/// How STARTTLS ended when the session does not go on.
enum TlsStop {
    /// A result for every pending recipient.
    Stop(Stop),
    /// Opportunistic TLS failed: try again without.
    Plain,
}

impl From<Stop> for TlsStop {
    fn from(s: Stop) -> TlsStop {
        TlsStop::Stop(s)
    }
}

impl Run<'_> {
    fn io_fail(&self, f: &IoFail, stage: Stage) -> RcptStatus {
        let at = stage.text(self.s.lmtp);
        let who = self.t.name_addr();
        let reason = match f {
            IoFail::Timeout => format!("conversation with {who} timed out while {at}"),
            IoFail::Lost => format!("lost connection with {who} while {at}"),
            IoFail::Garbage(e) => format!("{who} sent a malformed reply ({e}) while {at}"),
        };
        status(Action::Delayed, "4.4.2", reason)
    }

    /// The result a reply gives (`cmd` names the command for the reason).
    fn reply_status(&self, r: &Reply, cmd: &str) -> RcptStatus {
        let action = match r.severity() {
            Severity::Positive => {
                if self.s.lmtp {
                    Action::Delivered
                } else {
                    Action::Relayed
                }
            }
            Severity::PermanentFailure => Action::Failed,
            _ => Action::Delayed,
        };
        let (reason, dsn) = if action == Action::Failed || action == Action::Delayed {
            let dsn = match (r.severity(), r.enhanced) {
                (Severity::TransientFailure | Severity::PermanentFailure, Some(_)) => reply_dsn(r),
                (Severity::PermanentFailure, None) => "5.0.0".into(),
                _ => "4.0.0".into(),
            };
            (
                format!(
                    "host {} said: {r} (in reply to {cmd} command)",
                    self.t.name_addr()
                ),
                dsn,
            )
        } else {
            (r.to_string(), reply_dsn(r))
        };
        let mut st = status(action, &dsn, reason);
        if action != Action::Relayed && action != Action::Delivered {
            st.diagnostic = format!("smtp; {r}");
        }
        st.mta = format!("dns; {}", self.t.host);
        st
    }

    fn read(&mut self, timeout: Duration, stage: Stage) -> Result<Reply, Stop> {
        let r = self
            .conn
            .read_reply(timeout)
            .map_err(|f| Stop::All(self.io_fail(&f, stage), false))?;
        self.replies += 1;
        Ok(r)
    }

    fn send(&mut self, bytes: &[u8], timeout: Duration, stage: Stage) -> Result<(), Stop> {
        self.conn
            .send(bytes, timeout)
            .map_err(|f| Stop::All(self.io_fail(&f, stage), false))
    }

    fn quit(&mut self) {
        let mut out = Vec::new();
        Command::Quit.encode(&mut out);
        // Like Postfix's smtp_skip_quit_response = yes: don't wait.
        let _ = self.conn.send(&out, self.s.timeouts.quit);
    }

    /// Greeting and EHLO/LHLO (HELO after a 5xx to EHLO).
    fn hello(&mut self) -> Result<Capabilities, Stop> {
        let to = self.s.timeouts;
        let greeting = self.read(to.helo, Stage::Greeting)?;
        match greeting.severity() {
            Severity::Positive => {}
            Severity::PermanentFailure if !self.s.skip_5xx_greeting => {
                let mut st = self.reply_status(&greeting, "initial greeting");
                st.reason = format!(
                    "host {} refused to talk to me: {greeting}",
                    self.t.name_addr()
                );
                return Err(Stop::All(st, true));
            }
            _ => {
                let mut st = self.reply_status(&greeting, "initial greeting");
                st.action = Action::Delayed;
                if st.dsn.starts_with('5') {
                    st.dsn.replace_range(..1, "4");
                }
                st.reason = format!(
                    "host {} refused to talk to me: {greeting}",
                    self.t.name_addr()
                );
                return Err(Stop::All(st, false));
            }
        }
        self.ehlo()
    }

    /// EHLO/LHLO (HELO after a 5xx to EHLO): the capabilities.
    fn ehlo(&mut self) -> Result<Capabilities, Stop> {
        let to = self.s.timeouts;
        let name = HeloName::Other(self.s.helo_name.clone());
        let mut out = Vec::new();
        let (cmd, verb) = if self.s.lmtp {
            (Command::Lhlo(name.clone()), "LHLO")
        } else {
            (Command::Ehlo(name.clone()), "EHLO")
        };
        cmd.encode(&mut out);
        self.send(&out, to.helo, Stage::Helo)?;
        let reply = self.read(to.helo, Stage::Helo)?;
        if let Some(caps) = Capabilities::from_ehlo(&reply) {
            // A server that calls itself by our name is us, or a
            // misconfigured peer: either way the mail would loop (Postfix
            // "replied to HELO/EHLO with my own hostname"). Soft, so a
            // better server can still be tried.
            if !self.s.lmtp && caps.domain.eq_ignore_ascii_case(&self.s.myhostname) {
                let reason = format!(
                    "host {} replied to HELO/EHLO with my own hostname {}",
                    self.t.name_addr(),
                    self.s.myhostname
                );
                postern_util::warn!("{reason}");
                return Err(Stop::All(status(Action::Delayed, "4.4.6", reason), false));
            }
            return Ok(caps);
        }
        if self.s.lmtp || reply.severity() != Severity::PermanentFailure {
            let st = self.reply_status(&reply, verb);
            let permanent = st.action == Action::Failed;
            return Err(Stop::All(st, permanent));
        }
        out.clear();
        Command::Helo(name).encode(&mut out);
        self.send(&out, to.helo, Stage::Helo)?;
        let reply = self.read(to.helo, Stage::Helo)?;
        if reply.severity() == Severity::Positive {
            return Ok(Capabilities::default());
        }
        let st = self.reply_status(&reply, "HELO");
        let permanent = st.action == Action::Failed;
        Err(Stop::All(st, permanent))
    }

    /// The whole session for `pending`. Returns the server's
    /// capabilities when the session can be kept for another request
    /// (then without QUIT).
    fn transaction(
        &mut self,
        req: &Request,
        msg: &Message<'_>,
        slots: &mut [Slot],
        pending: &[usize],
    ) -> Outcome {
        let relay = self.relay.clone();
        let set = |slots: &mut [Slot], i: usize, st: RcptStatus, done: bool| {
            slots[i].status = st;
            slots[i].relay = relay.clone();
            slots[i].done = done;
        };
        let caps = match self
            .hello()
            .map_err(TlsStop::from)
            .and_then(|c| self.starttls(c))
        {
            Ok(c) => c,
            Err(TlsStop::Stop(Stop::All(st, done))) => {
                for &i in pending {
                    set(slots, i, st.clone(), done);
                }
                self.quit();
                return Outcome::Done;
            }
            Err(TlsStop::Plain) => return Outcome::RetryPlain,
        };
        let dsn = caps.has("DSN");
        match self.mail_rcpt_data(req, msg, &caps, pending) {
            Ok(per_rcpt) => {
                for (i, mut st) in per_rcpt {
                    st.notify_handed_on = dsn && st.action == Action::Relayed;
                    let done = st.action.is_final();
                    set(slots, i, st, done);
                }
            }
            Err(Stop::All(st, done)) => {
                for &i in pending {
                    set(slots, i, st.clone(), done);
                }
            }
        }
        if self.clean && self.s.cache.is_some() {
            return Outcome::Keep(caps);
        }
        self.quit();
        Outcome::Done
    }

    /// STARTTLS as the plan says, then EHLO again (RFC 3207 §4.2: what
    /// the server announced before TLS no longer counts).
    fn starttls(&mut self, caps: Capabilities) -> Result<Capabilities, TlsStop> {
        let plan = self.plan;
        let Some(tls) = self.s.tls.as_deref() else {
            return Ok(caps);
        };
        if plan.level == SecurityLevel::None {
            return Ok(caps);
        }
        let who = self.t.name_addr();
        let host = self.t.host.clone();
        let report = |failure: Option<(ResultType, &str)>| {
            if let Some((domain, policy)) = &plan.report {
                tls.count(
                    domain,
                    *policy,
                    failure.map(|(r, why)| (r, host.as_str(), why)),
                );
            }
        };
        let tls_fail = |reason: String| {
            TlsStop::Stop(Stop::All(status(Action::Delayed, "4.7.5", reason), false))
        };
        if !caps.has("STARTTLS") {
            report(Some((
                ResultType::StartTlsNotSupported,
                "STARTTLS not offered",
            )));
            if plan.required() {
                return Err(TlsStop::Stop(Stop::All(
                    status(
                        Action::Delayed,
                        "4.7.4",
                        format!("TLS is required, but was not offered by host {who}"),
                    ),
                    false,
                )));
            }
            return Ok(caps);
        }
        let to = self.s.timeouts;
        let mut out = Vec::new();
        Command::Starttls.encode(&mut out);
        self.send(&out, to.helo, Stage::Starttls)?;
        let reply = self.read(to.helo, Stage::Starttls)?;
        if reply.severity() != Severity::Positive {
            report(Some((ResultType::StartTlsNotSupported, "STARTTLS refused")));
            if plan.required() {
                return Err(tls_fail(format!(
                    "TLS is required, but host {who} refused to start TLS: {reply}"
                )));
            }
            // Postfix goes on in plaintext on the same connection.
            return Ok(caps);
        }
        let base = tls.settings.tls(plan.level);
        // A policy entry's protocols= replaces the parameter's list.
        let own;
        let engine = match &plan.versions {
            Some(v) => {
                own = base.with_versions(v);
                &own
            }
            None => base,
        };
        let config = engine.config(&plan.policy).map_err(|e| {
            postern_util::warn!("TLS configuration for {who}: {e}");
            tls_fail(format!("Cannot start TLS: {e}"))
        })?;
        let name =
            server_name(&self.t.host).map_err(|e| tls_fail(format!("Cannot start TLS: {e}")))?;
        match self.conn.starttls(config, name, to.starttls) {
            Ok(info) => {
                if tls.settings.loglevel >= 1 {
                    let word = match plan.policy {
                        Policy::Unauthenticated => {
                            if engine.verify_chain(&self.conn.peer_chain(), &[]).is_ok() {
                                "Trusted"
                            } else {
                                "Untrusted"
                            }
                        }
                        _ => plan.policy.trust_word(),
                    };
                    info!(
                        "{word} TLS connection established to {}: {}",
                        self.relay,
                        info.summary()
                    );
                }
                match &plan.testing {
                    Some(names) => match engine.verify_chain(&self.conn.peer_chain(), names) {
                        Ok(()) => report(None),
                        Err(e) => report(Some((ResultType::from_tls_error(&e), &e.to_string()))),
                    },
                    None => report(None),
                }
            }
            Err(e) => {
                info!("SSL_connect error to {}: {e}", self.relay);
                let rustls_err = postern_tls::stream::tls_error(&e);
                let result =
                    rustls_err.map_or(ResultType::ValidationFailure, ResultType::from_tls_error);
                report(Some((result, &e.to_string())));
                if !plan.required() {
                    return Err(TlsStop::Plain);
                }
                let cert = matches!(
                    rustls_err,
                    Some(postern_tls::rustls::Error::InvalidCertificate(_))
                );
                return Err(tls_fail(
                    if cert {
                        "Server certificate not verified"
                    } else {
                        "Cannot start TLS: handshake failure"
                    }
                    .to_string(),
                ));
            }
        }
        Ok(self.ehlo()?)
    }

    /// MAIL, RCPT, DATA and the content; results per recipient.
    fn mail_rcpt_data(
        &mut self,
        req: &Request,
        msg: &Message<'_>,
        caps: &Capabilities,
        pending: &[usize],
    ) -> Result<Vec<(usize, RcptStatus)>, Stop> {
        let to = self.s.timeouts;
        let who = self.t.name_addr();
        let size = msg.content.len() as u64;
        if let Some(limit) = caps.size_limit()
            && size > limit
        {
            return Err(Stop::All(
                status(
                    Action::Failed,
                    "5.3.4",
                    format!("message size {size} exceeds size limit {limit} of server {who}"),
                ),
                true,
            ));
        }
        if msg.needs_utf8 && !caps.has("SMTPUTF8") {
            return Err(Stop::All(
                status(
                    Action::Failed,
                    "5.6.7",
                    format!("SMTPUTF8 is required, but was not offered by host {who}"),
                ),
                true,
            ));
        }
        let has_8bitmime = caps.has("8BITMIME");
        let dsn = caps.has("DSN");
        // The content as sent: converted to 7 bits for a server without
        // 8BITMIME (unless disabled), then dot-stuffed.
        let body = if msg.eight_bit && !has_8bitmime && self.s.convert_8bit {
            mime::downgrade(msg.content)
        } else {
            msg.content.to_vec()
        };
        let body = fold_long_lines(body, self.s.line_length_limit);
        // CHUNKING (RFC 3030): one BDAT LAST with the content as it is
        // (CRLF line ends, no dot-stuffing) instead of DATA.
        let chunking = caps.has("CHUNKING");
        let data = if chunking {
            crlf(&body)
        } else {
            DataEncoder::encode_all(&body)
        };

        let from = if req.sender.is_empty() {
            Path::Null
        } else {
            match mailbox(&req.sender) {
                Some(m) => Path::Mailbox(m),
                None => {
                    return Err(Stop::All(
                        status(
                            Action::Failed,
                            "5.1.7",
                            format!("bad sender address syntax: <{}>", req.sender),
                        ),
                        true,
                    ));
                }
            }
        };
        let mail_params = MailParams {
            size: caps.has("SIZE").then_some(size),
            body: (msg.eight_bit && has_8bitmime).then_some(Body::EightBitMime),
            smtputf8: msg.needs_utf8,
            ret: if dsn {
                match req.ret.to_ascii_uppercase().as_str() {
                    "FULL" => Some(Ret::Full),
                    "HDRS" => Some(Ret::Hdrs),
                    _ => None,
                }
            } else {
                None
            },
            envid: (dsn && !req.envid.is_empty()).then(|| req.envid.clone()),
            auth: None,
        };
        let mut results: Vec<(usize, RcptStatus)> = Vec::new();
        // RCPT commands for the recipients whose address can be written.
        let mut rcpts: Vec<(usize, Vec<u8>)> = Vec::new();
        for &i in pending {
            let r = &req.recipients[i];
            let Some(to_box) = mailbox(&r.address) else {
                results.push((
                    i,
                    status(
                        Action::Failed,
                        "5.1.3",
                        format!("bad recipient address syntax: <{}>", r.address),
                    ),
                ));
                continue;
            };
            let params = if dsn {
                RcptParams {
                    notify: notify(r.notify),
                    orcpt: r.dsn_orcpt.split_once(';').map(|(t, a)| Orcpt {
                        addr_type: t.trim().to_string(),
                        address: a.trim().to_string(),
                    }),
                }
            } else {
                RcptParams::default()
            };
            let mut line = Vec::new();
            Command::Rcpt { to: to_box, params }.encode(&mut line);
            rcpts.push((i, line));
        }
        if rcpts.is_empty() {
            return Ok(results);
        }
        let mut mail = Vec::new();
        Command::Mail {
            from,
            params: mail_params,
        }
        .encode(&mut mail);
        let mut data_cmd = Vec::new();
        Command::Data.encode(&mut data_cmd);

        let pipelining = caps.has("PIPELINING");
        let mut accepted: Vec<usize> = Vec::new();
        if pipelining {
            // MAIL, every RCPT and DATA in one write (RFC 2920). BDAT
            // waits for the RCPT replies: its data would be wasted if no
            // recipient is accepted.
            let mut batch = mail.clone();
            for (_, l) in &rcpts {
                batch.extend_from_slice(l);
            }
            if !chunking {
                batch.extend_from_slice(&data_cmd);
            }
            self.send(&batch, to.mail, Stage::Mail)?;
        } else {
            self.send(&mail, to.mail, Stage::Mail)?;
        }
        let reply = self.read(to.mail, Stage::Mail)?;
        if reply.severity() != Severity::Positive {
            let st = self.reply_status(&reply, "MAIL FROM");
            let done = st.action == Action::Failed;
            return Err(Stop::All(st, done));
        }
        // From here on, a broken connection defers only the recipients
        // without a result: a 5xx already received stays final.
        for (n, (i, line)) in rcpts.iter().enumerate() {
            let step = if pipelining {
                Ok(())
            } else {
                self.send(line, to.rcpt, Stage::Rcpt)
            };
            match step.and_then(|()| self.read(to.rcpt, Stage::Rcpt)) {
                Ok(reply) if reply.severity() == Severity::Positive => accepted.push(*i),
                Ok(reply) => results.push((*i, self.reply_status(&reply, "RCPT TO"))),
                Err(Stop::All(st, _)) => {
                    let rest = accepted
                        .iter()
                        .copied()
                        .chain(rcpts[n..].iter().map(|r| r.0));
                    results.extend(rest.map(|j| (j, st.clone())));
                    return Ok(results);
                }
            }
        }
        if chunking {
            if accepted.is_empty() {
                return Ok(results);
            }
            let mut out = Vec::with_capacity(data.len() + 32);
            Command::Bdat {
                size: data.len() as u64,
                last: true,
            }
            .encode(&mut out);
            out.extend_from_slice(&data);
            if let Err(Stop::All(st, _)) = self.send(&out, to.data_xfer, Stage::Body) {
                results.extend(accepted.iter().map(|&j| (j, st.clone())));
                return Ok(results);
            }
            self.final_replies(&accepted, &mut results, "BDAT");
            return Ok(results);
        }
        if !pipelining {
            if accepted.is_empty() {
                return Ok(results);
            }
            if let Err(Stop::All(st, _)) = self.send(&data_cmd, to.data_init, Stage::Data) {
                results.extend(accepted.iter().map(|&j| (j, st.clone())));
                return Ok(results);
            }
        }
        let reply = match self.read(to.data_init, Stage::Data) {
            Ok(r) => r,
            Err(Stop::All(st, _)) => {
                results.extend(accepted.iter().map(|&j| (j, st.clone())));
                return Ok(results);
            }
        };
        if accepted.is_empty() {
            // The server must refuse DATA without recipients; if it did
            // not, the transaction is abandoned with the connection.
            return Ok(results);
        }
        if reply.code != 354 {
            let mut st = self.reply_status(&reply, "DATA");
            if st.action == Action::Relayed || st.action == Action::Delivered {
                st = status(
                    Action::Delayed,
                    "4.5.0",
                    format!("host {who} said: {reply} (unexpected reply to DATA command)"),
                );
            }
            for i in accepted {
                results.push((i, st.clone()));
            }
            return Ok(results);
        }
        // The body, then the end of data in the same write.
        if let Err(Stop::All(st, _)) = self.send(&data, to.data_xfer, Stage::Body) {
            for i in accepted {
                results.push((i, st.clone()));
            }
            return Ok(results);
        }
        self.final_replies(&accepted, &mut results, "end of DATA");
        Ok(results)
    }

    /// Reads the replies after the content: one for SMTP, one per
    /// accepted recipient for LMTP (RFC 2033 §4.2).
    fn final_replies(
        &mut self,
        accepted: &[usize],
        results: &mut Vec<(usize, RcptStatus)>,
        cmd: &str,
    ) {
        let to = self.s.timeouts;
        if self.s.lmtp {
            for (n, &i) in accepted.iter().enumerate() {
                match self.read(to.data_done, Stage::Dot) {
                    Ok(r) => results.push((i, self.reply_status(&r, cmd))),
                    Err(Stop::All(st, _)) => {
                        results.extend(accepted[n..].iter().map(|&j| (j, st.clone())));
                        return;
                    }
                }
            }
            self.clean = true;
        } else {
            let st = match self.read(to.data_done, Stage::Dot) {
                Ok(r) => {
                    self.clean = true;
                    self.reply_status(&r, cmd)
                }
                Err(Stop::All(st, _)) => st,
            };
            results.extend(accepted.iter().map(|&j| (j, st.clone())));
        }
    }
}

/// Breaks lines longer than `limit` octets (not counting the line end)
/// by inserting CRLF and a space, as Postfix does with
/// `smtp_line_length_limit`: servers may refuse longer lines (RFC 5321
/// §4.5.3.1.6), and a space keeps a broken header a header.
fn fold_long_lines(content: Vec<u8>, limit: usize) -> Vec<u8> {
    let too_long = |line: &[u8]| line.strip_suffix(b"\r").unwrap_or(line).len() > limit;
    if limit < 2 || !content.split(|&b| b == b'\n').any(too_long) {
        return content;
    }
    let mut out = Vec::with_capacity(content.len() + content.len() / limit * 3 + 3);
    for (n, line) in content.split(|&b| b == b'\n').enumerate() {
        if n > 0 {
            out.push(b'\n');
        }
        let (text, cr) = match line.strip_suffix(b"\r") {
            Some(t) => (t, true),
            None => (line, false),
        };
        let mut rest = text;
        let mut room = limit;
        while rest.len() > room {
            out.extend_from_slice(&rest[..room]);
            out.extend_from_slice(b"\r\n ");
            rest = &rest[room..];
            room = limit - 1;
        }
        out.extend_from_slice(rest);
        if cr {
            out.push(b'\r');
        }
    }
    out
}

/// Content with every line ended by CRLF (bare LF and bare CR become
/// CRLF, a missing last line end is added), for BDAT.
fn crlf(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 32 + 2);
    let mut i = 0;
    while i < content.len() {
        match content[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if content.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// NOTIFY= for the queue file's bits (never 1, success 2, delay 4,
/// failure 8).
fn notify(bits: u8) -> Option<Notify> {
    match bits {
        0 => None,
        b if b & 1 != 0 => Some(Notify::Never),
        b => Some(Notify::On {
            success: b & 2 != 0,
            delay: b & 4 != 0,
            failure: b & 8 != 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use postern_dns::Families;
    use postern_ipc::deliver::Recipient;

    use crate::route::Lookup;

    /// A scripted server on loopback: the greeting, then for each line
    /// received the next reply (`None`: hang up).
    fn server(replies: Vec<Option<&'static str>>) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            w.write_all(b"220 test ESMTP\r\n").unwrap();
            for reply in replies {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                match reply {
                    Some(text) => w.write_all(text.as_bytes()).unwrap(),
                    None => return,
                }
            }
        });
        port
    }

    fn run(port: u16, rcpts: &[&str]) -> Vec<(RcptStatus, String)> {
        run_with(&settings(None), port, rcpts)
    }

    fn settings(cache: Option<Cache>) -> Settings {
        let t = Duration::from_secs(5);
        Settings {
            lmtp: false,
            helo_name: "client.test".into(),
            myhostname: "client.test".into(),
            timeouts: Timeouts {
                connect: t,
                helo: t,
                mail: t,
                rcpt: t,
                data_init: t,
                data_xfer: t,
                data_done: t,
                quit: t,
                starttls: t,
            },
            default_port: 25,
            fallback: Vec::new(),
            session_limit: 2,
            skip_5xx_greeting: true,
            convert_8bit: true,
            line_length_limit: 998,
            cache,
            tls: None,
        }
    }

    fn run_with(settings: &Settings, port: u16, rcpts: &[&str]) -> Vec<(RcptStatus, String)> {
        let router = Router {
            dns: None,
            lookup: Lookup {
                dns: true,
                native: false,
            },
            families: Families::ALL,
            myhostname: "client.test".into(),
            own: Vec::new(),
            address_limit: 5,
        };
        let req = Request {
            queue_id: "Q".into(),
            nexthop: format!("[127.0.0.1]:{port}"),
            sender: "a@client.test".into(),
            recipients: rcpts
                .iter()
                .map(|r| Recipient {
                    address: (*r).into(),
                    ..Recipient::default()
                })
                .collect(),
            ..Request::default()
        };
        settings.deliver(&router, &req, b"Subject: x\n\nhi\n")
    }

    #[test]
    fn a_kept_session_is_reused_and_a_dead_one_replaced() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let sessions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = sessions.clone();
        std::thread::spawn(move || {
            // Each session: greeting, EHLO, then transactions until QUIT
            // or, in the first session, a hang-up after two messages.
            for s in l.incoming() {
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let s = s.unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                w.write_all(b"220 test ESMTP\r\n").unwrap();
                let mut messages = 0;
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 0 {
                    let reply: &[u8] = match line.get(..4).unwrap_or("") {
                        "EHLO" => b"250-test\r\n250 PIPELINING\r\n",
                        "MAIL" | "RCPT" => b"250 Ok\r\n",
                        "DATA" => b"354 go\r\n",
                        "QUIT" => b"221 Bye\r\n",
                        _ if line == ".\r\n" => {
                            messages += 1;
                            b"250 Ok: queued\r\n"
                        }
                        _ => b"",
                    };
                    w.write_all(reply).unwrap();
                    line.clear();
                    if n == 0 && messages == 2 {
                        break;
                    }
                }
            }
        });
        let cache = Cache::new(
            Duration::from_secs(10),
            Duration::from_secs(60),
            Duration::from_secs(1),
        );
        let s = settings(Some(cache));
        for rcpt in ["a@d.test", "b@d.test", "c@d.test"] {
            let got = run_with(&s, port, &[rcpt]);
            assert_eq!(got[0].0.action, Action::Relayed, "{got:?}");
        }
        // Messages 1 and 2 in the first session; the server hung up, so
        // message 3 found the kept session dead and opened another.
        assert_eq!(sessions.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn a_lost_connection_keeps_earlier_final_replies() {
        // Pipelined: MAIL, two RCPTs and DATA in one write; the server
        // refuses the first recipient, takes the second, then hangs up.
        let port = server(vec![
            Some("250-test\r\n250 PIPELINING\r\n"),
            Some("250 2.1.0 Ok\r\n550 5.1.1 no such user\r\n250 2.1.5 Ok\r\n"),
            None,
        ]);
        let got = run(port, &["x@dest.test", "y@dest.test"]);
        assert_eq!(got[0].0.action, Action::Failed, "{got:?}");
        assert_eq!(got[0].0.dsn, "5.1.1");
        assert_eq!(got[0].0.diagnostic, "smtp; 550 5.1.1 no such user");
        assert_eq!(got[1].0.action, Action::Delayed, "{got:?}");
        assert_eq!(
            got[1].0.reason,
            "lost connection with 127.0.0.1[127.0.0.1] while sending DATA command"
        );
        assert_eq!(got[1].1, format!("127.0.0.1[127.0.0.1]:{port}"));
    }

    #[test]
    fn helo_after_a_refused_ehlo_and_no_pipelining() {
        let port = server(vec![
            Some("502 5.5.2 EHLO not supported\r\n"),
            Some("250 test\r\n"),
            Some("250 Ok\r\n"),
            Some("451 4.3.0 try again\r\n"),
            Some("250 Ok\r\n"),
            Some("354 go\r\n"),
            Some("250 Ok: queued\r\n"),
        ]);
        let got = run(port, &["soft@dest.test", "ok@dest.test"]);
        assert_eq!(got[0].0.action, Action::Delayed, "{got:?}");
        assert_eq!(got[0].0.dsn, "4.3.0");
        assert_eq!(
            got[0].0.reason,
            "host 127.0.0.1[127.0.0.1] said: 451 4.3.0 try again (in reply to RCPT TO command)"
        );
        assert_eq!(got[1].0.action, Action::Relayed, "{got:?}");
        assert_eq!(got[1].0.reason, "250 Ok: queued");
        assert_eq!(got[1].0.dsn, "2.0.0");
    }

    #[test]
    fn a_server_with_our_own_name_is_a_loop() {
        let port = server(vec![Some("250-CLIENT.test\r\n250 PIPELINING\r\n")]);
        let got = run(port, &["x@dest.test"]);
        assert_eq!(got[0].0.action, Action::Delayed, "{got:?}");
        assert_eq!(got[0].0.dsn, "4.4.6");
        assert_eq!(
            got[0].0.reason,
            "host 127.0.0.1[127.0.0.1] replied to HELO/EHLO with my own hostname client.test"
        );
    }

    #[test]
    fn a_5xx_greeting_is_skipped_and_the_mail_deferred() {
        // `server` greets with 220; this one refuses at once.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let _ = s.write_all(b"554 5.7.1 go away\r\n");
        });
        let got = run(port, &["x@dest.test"]);
        assert_eq!(got[0].0.action, Action::Delayed, "{got:?}");
        assert_eq!(got[0].0.dsn, "4.7.1");
        assert_eq!(
            got[0].0.reason,
            "host 127.0.0.1[127.0.0.1] refused to talk to me: 554 5.7.1 go away"
        );
    }

    #[test]
    fn long_lines_are_broken() {
        assert_eq!(fold_long_lines(b"abc\n".to_vec(), 3), b"abc\n");
        assert_eq!(
            fold_long_lines(b"abcdefgh\r\nxy\n".to_vec(), 3),
            b"abc\r\n de\r\n fg\r\n h\r\nxy\n"
        );
        assert_eq!(fold_long_lines(b"abcd".to_vec(), 3), b"abc\r\n d");
        assert_eq!(fold_long_lines(b"abcd".to_vec(), 0), b"abcd");
        let long = vec![b'x'; 5000];
        let folded = fold_long_lines(long, 998);
        assert!(folded.split(|&b| b == b'\n').all(|l| l.len() <= 999));
        assert_eq!(folded.iter().filter(|&&b| b == b'x').count(), 5000);
    }

    #[test]
    fn line_ends_for_bdat() {
        assert_eq!(crlf(b"a\nb\r\nc\rd"), b"a\r\nb\r\nc\r\nd\r\n");
        assert_eq!(crlf(b".x\n"), b".x\r\n");
        assert_eq!(crlf(b""), b"");
    }

    #[test]
    fn notify_bits() {
        assert_eq!(notify(0), None);
        assert_eq!(notify(1), Some(Notify::Never));
        assert_eq!(
            notify(2 | 8),
            Some(Notify::On {
                success: true,
                delay: false,
                failure: true
            })
        );
    }

    #[test]
    fn addresses_are_written_in_smtp_form() {
        assert_eq!(
            mailbox("a b@example.test").unwrap().to_string(),
            "\"a b\"@example.test"
        );
        assert_eq!(
            mailbox("u@[127.0.0.1]").unwrap().to_string(),
            "u@[127.0.0.1]"
        );
        assert!(mailbox("nodomain").is_none());
        assert!(mailbox("a@bad domain").is_none());
        assert_eq!(headers(b"A: b\nC: d\n\nbody\n"), b"A: b\nC: d\n");
    }
}

//! Command sequencing (RFC 5321 §4.1.4, RFC 3030, RFC 2033), so that the
//! server stays thin: [`Session::check`] says whether a parsed command may
//! run now and, if not, which `503`/`554` reply to send; the server applies
//! its policy (relay checks, user lookup, limits) to commands that pass,
//! and reports what it accepted with [`Session::accept`].
//!
//! ```text
//!  Init ─HELO/EHLO/LHLO─▶ Greeted ─MAIL─▶ Mail ─RCPT─▶ Rcpt ─DATA─▶ Data
//!                           ▲                           │            │
//!                           │                           └─BDAT─▶ Bdat│
//!                           │                                    │   │
//!                           └──── LAST chunk ◀───────────────────┘   │
//!                           └──── end of DATA ◀──────────────────────┘
//! ```
//!
//! RSET and HELO/EHLO return to `Greeted` from anywhere; STARTTLS returns
//! to `Init` (RFC 3207 §4.2: the server discards what it knew).
//!
//! Postfix counterpart: the sanity checks at the top of each `*_cmd`
//! function in `smtpd.c` and `SMTPD_IN_MAIL_TRANSACTION`. Policy is not
//! here: whether STARTTLS, AUTH, VRFY or CHUNKING are offered at all is the
//! server's business (`502 5.5.1 Error: command not implemented`).

use crate::reply::{Reply, standard};
use crate::request::Command;

/// Which protocol the server speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// LMTP (RFC 2033): LHLO instead of HELO/EHLO, and it is required.
    Lmtp,
    /// SMTP/ESMTP.
    #[default]
    Smtp,
}

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// BDAT chunks are being received (after a BDAT without LAST, or while
    /// reading any chunk).
    Bdat,
    /// DATA content is being received; commands are not read.
    Data,
    /// HELO/EHLO/LHLO done, no transaction.
    Greeted,
    /// Connected (or just switched to TLS); no greeting yet.
    Init,
    /// MAIL accepted, no recipient accepted yet.
    Mail,
    /// At least one recipient accepted.
    Rcpt,
}

/// The greeting command the client used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Greeting {
    /// `EHLO`: ESMTP.
    Ehlo,
    /// `HELO`: plain SMTP.
    Helo,
    /// `LHLO`: LMTP.
    Lhlo,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Transaction {
    Bdat,
    Data,
    Idle,
    Mail,
}

/// Sequencing state of one SMTP/LMTP session.
#[derive(Clone, Debug)]
pub struct Session {
    protocol: Protocol,
    helo_required: bool,
    greeting: Option<Greeting>,
    transaction: Transaction,
    recipients: usize,
    smtputf8: bool,
    tls: bool,
    authenticated: bool,
    bdat_error: Option<Reply>,
}

impl Session {
    /// A new session, in state [`State::Init`].
    pub fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            helo_required: false,
            greeting: None,
            transaction: Transaction::Idle,
            recipients: 0,
            smtputf8: false,
            tls: false,
            authenticated: false,
            bdat_error: None,
        }
    }

    /// Postfix `smtpd_helo_required = yes`: MAIL needs HELO/EHLO first.
    /// (LMTP always requires LHLO.)
    #[must_use]
    pub fn require_helo(mut self) -> Self {
        self.helo_required = true;
        self
    }

    /// A session that starts inside TLS (Postfix `smtpd_tls_wrappermode`).
    #[must_use]
    pub fn in_tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// The current state.
    pub fn state(&self) -> State {
        match self.transaction {
            Transaction::Bdat => State::Bdat,
            Transaction::Data => State::Data,
            Transaction::Mail if self.recipients > 0 => State::Rcpt,
            Transaction::Mail => State::Mail,
            Transaction::Idle if self.greeting.is_some() => State::Greeted,
            Transaction::Idle => State::Init,
        }
    }

    /// How the client greeted, if it did.
    pub fn greeting(&self) -> Option<Greeting> {
        self.greeting
    }

    /// Recipients accepted in the current transaction.
    pub fn recipients(&self) -> usize {
        self.recipients
    }

    /// Whether the current transaction's MAIL carried SMTPUTF8; feed this
    /// into [`ParseOptions::smtputf8`](crate::ParseOptions::smtputf8).
    pub fn smtputf8(&self) -> bool {
        self.smtputf8
    }

    /// Whether TLS is active.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Whether AUTH succeeded.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Whether a mail transaction is in progress (Postfix
    /// `SMTPD_IN_MAIL_TRANSACTION`).
    pub fn in_transaction(&self) -> bool {
        self.transaction != Transaction::Idle
    }

    /// Whether `command` may run now; the error is the reply to send.
    ///
    /// A refused BDAT still has its chunk on the wire: drain it with
    /// [`BdatReceiver::skip_chunk`](crate::BdatReceiver::skip_chunk)
    /// before sending the reply.
    pub fn check(&self, command: &Command) -> Result<(), Reply> {
        let need_greeting = || match self.protocol {
            Protocol::Lmtp => standard::need_lhlo(),
            Protocol::Smtp => standard::need_helo(),
        };
        if self.transaction == Transaction::Data {
            // Interface violation: during DATA, bytes go to the
            // DataReceiver, not to the command parser.
            return Err(standard::transaction_in_progress());
        }
        match command {
            Command::Ehlo(_) | Command::Helo(_) if self.protocol == Protocol::Lmtp => {
                Err(standard::unrecognized())
            }
            Command::Lhlo(_) if self.protocol == Protocol::Smtp => Err(standard::unrecognized()),
            Command::Ehlo(_) | Command::Helo(_) | Command::Lhlo(_) => Ok(()),
            Command::Starttls if self.tls => Err(standard::tls_already_active()),
            Command::Starttls => Ok(()),
            Command::Auth { .. } => {
                if self.greeting.is_none() {
                    Err(need_greeting())
                } else if self.authenticated {
                    Err(standard::already_authenticated())
                } else if self.in_transaction() {
                    Err(standard::transaction_in_progress())
                } else {
                    Ok(())
                }
            }
            Command::Mail { .. } => {
                let greeting_required = self.helo_required || self.protocol == Protocol::Lmtp;
                if greeting_required && self.greeting.is_none() {
                    return Err(need_greeting());
                }
                match self.transaction {
                    Transaction::Idle => Ok(()),
                    Transaction::Bdat => Err(standard::mail_after_bdat()),
                    Transaction::Mail | Transaction::Data => Err(standard::nested_mail()),
                }
            }
            Command::Rcpt { .. } => match self.transaction {
                Transaction::Mail => Ok(()),
                Transaction::Bdat => Err(standard::rcpt_after_bdat()),
                Transaction::Idle | Transaction::Data => Err(standard::need_mail()),
            },
            Command::Data => match self.transaction {
                Transaction::Bdat => Err(standard::data_after_bdat()),
                _ => self.check_recipients(),
            },
            Command::Bdat { .. } => match (&self.bdat_error, &self.transaction) {
                (Some(reply), _) => Err(reply.clone()),
                (None, Transaction::Bdat) => Ok(()),
                (None, _) => self.check_recipients(),
            },
            Command::Expn(_)
            | Command::Help(_)
            | Command::Noop(_)
            | Command::Quit
            | Command::Rset
            | Command::Vrfy(_) => Ok(()),
        }
    }

    /// DATA/BDAT need a recipient. With PIPELINING the client may send DATA
    /// after all its RCPTs were refused, which is not a protocol error:
    /// Postfix answers 554 then, and 503 only outside a transaction.
    fn check_recipients(&self) -> Result<(), Reply> {
        match self.transaction {
            Transaction::Mail if self.recipients > 0 => Ok(()),
            Transaction::Mail => Err(standard::no_valid_recipients()),
            _ => Err(standard::need_rcpt()),
        }
    }

    /// Records that the server accepted `command` (it passed
    /// [`check`](Self::check) and policy, and a positive reply was sent;
    /// for STARTTLS, the handshake is about to start; for AUTH, the
    /// exchange succeeded).
    pub fn accept(&mut self, command: &Command) {
        match command {
            Command::Ehlo(_) => self.greet(Greeting::Ehlo),
            Command::Helo(_) => self.greet(Greeting::Helo),
            Command::Lhlo(_) => self.greet(Greeting::Lhlo),
            Command::Mail { params, .. } => {
                self.end_transaction();
                self.transaction = Transaction::Mail;
                self.smtputf8 = params.smtputf8;
            }
            Command::Rcpt { .. } => {
                if self.transaction == Transaction::Mail {
                    self.recipients += 1;
                }
            }
            Command::Data => self.transaction = Transaction::Data,
            Command::Bdat { .. } => self.transaction = Transaction::Bdat,
            Command::Rset => self.end_transaction(),
            Command::Starttls => {
                self.end_transaction();
                self.greeting = None;
                self.authenticated = false;
                self.tls = true;
            }
            Command::Auth { .. } => self.authenticated = true,
            Command::Expn(_)
            | Command::Help(_)
            | Command::Noop(_)
            | Command::Quit
            | Command::Vrfy(_) => {}
        }
    }

    /// Records that a BDAT chunk failed (e.g. the message grew too big):
    /// the rest of the transaction's chunks are refused with the same reply
    /// until RSET or a refused LAST chunk ends it.
    pub fn bdat_failed(&mut self, reply: Reply) {
        self.bdat_error = Some(reply);
    }

    /// Ends the mail transaction, keeping the greeting: after the end of
    /// DATA (accepted or not), after the LAST chunk, after a refused LAST
    /// chunk, or on RSET.
    pub fn end_transaction(&mut self) {
        self.transaction = Transaction::Idle;
        self.recipients = 0;
        self.smtputf8 = false;
        self.bdat_error = None;
    }

    fn greet(&mut self, greeting: Greeting) {
        // RFC 5321 §4.1.4: EHLO resets the state as RSET does.
        self.end_transaction();
        self.greeting = Some(greeting);
    }
}

/// Free-function form of [`Session::check`].
pub fn check(command: &Command, session: &Session) -> Result<(), Reply> {
    session.check(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> Command {
        Command::parse(line.as_bytes()).unwrap()
    }

    /// Runs commands that must all be accepted.
    fn run(session: &mut Session, lines: &[&str]) {
        for line in lines {
            let c = cmd(line);
            session.check(&c).unwrap_or_else(|r| panic!("{line}: {r}"));
            session.accept(&c);
        }
    }

    fn refused(session: &Session, line: &str) -> String {
        session.check(&cmd(line)).unwrap_err().to_string()
    }

    #[test]
    fn normal_transaction() {
        let mut s = Session::new(Protocol::Smtp);
        assert_eq!(s.state(), State::Init);
        run(&mut s, &["EHLO client.example"]);
        assert_eq!(s.state(), State::Greeted);
        run(&mut s, &["MAIL FROM:<a@b.example>"]);
        assert_eq!(s.state(), State::Mail);
        run(&mut s, &["RCPT TO:<c@d.example>", "RCPT TO:<e@d.example>"]);
        assert_eq!((s.state(), s.recipients()), (State::Rcpt, 2));
        run(&mut s, &["DATA"]);
        assert_eq!(s.state(), State::Data);
        assert!(s.check(&cmd("NOOP")).is_err());
        s.end_transaction();
        assert_eq!(s.state(), State::Greeted);
        assert_eq!(s.recipients(), 0);
    }

    #[test]
    fn sequencing_errors() {
        let mut s = Session::new(Protocol::Smtp).require_helo();
        assert_eq!(
            refused(&s, "MAIL FROM:<a@b.c>"),
            "503 5.5.1 Error: send HELO/EHLO first"
        );
        assert_eq!(
            refused(&s, "RCPT TO:<a@b.c>"),
            "503 5.5.1 Error: need MAIL command"
        );
        assert_eq!(refused(&s, "DATA"), "503 5.5.1 Error: need RCPT command");
        assert_eq!(refused(&s, "BDAT 10"), "503 5.5.1 Error: need RCPT command");
        run(&mut s, &["HELO x", "MAIL FROM:<>"]);
        assert_eq!(
            refused(&s, "MAIL FROM:<a@b.c>"),
            "503 5.5.1 Error: nested MAIL command"
        );
        assert_eq!(refused(&s, "DATA"), "554 5.5.1 Error: no valid recipients");
        assert_eq!(
            refused(&s, "AUTH PLAIN"),
            "503 5.5.1 Error: MAIL transaction in progress"
        );
        run(&mut s, &["RSET", "NOOP", "VRFY x", "HELP"]);
        assert_eq!(s.state(), State::Greeted);
    }

    #[test]
    fn helo_not_required_by_default() {
        let mut s = Session::new(Protocol::Smtp);
        run(&mut s, &["MAIL FROM:<a@b.c>", "RCPT TO:<d@e.f>", "RSET"]);
        assert_eq!(s.state(), State::Init);
    }

    #[test]
    fn ehlo_resets_transaction() {
        let mut s = Session::new(Protocol::Smtp);
        run(
            &mut s,
            &["EHLO x", "MAIL FROM:<a@b.c> SMTPUTF8", "RCPT TO:<d@e.f>"],
        );
        assert!(s.smtputf8());
        run(&mut s, &["EHLO y"]);
        assert_eq!(s.state(), State::Greeted);
        assert!(!s.smtputf8());
    }

    #[test]
    fn bdat_rules() {
        let mut s = Session::new(Protocol::Smtp);
        run(
            &mut s,
            &["EHLO x", "MAIL FROM:<a@b.c>", "RCPT TO:<d@e.f>", "BDAT 10"],
        );
        assert_eq!(s.state(), State::Bdat);
        assert_eq!(refused(&s, "DATA"), "503 5.5.1 Error: DATA after BDAT");
        assert_eq!(
            refused(&s, "MAIL FROM:<a@b.c>"),
            "503 5.5.1 Error: MAIL after BDAT"
        );
        assert_eq!(
            refused(&s, "RCPT TO:<a@b.c>"),
            "503 5.5.1 Error: RCPT after BDAT"
        );
        run(&mut s, &["NOOP", "BDAT 5"]);
        s.bdat_failed(standard::chunk_too_big());
        assert_eq!(
            refused(&s, "BDAT 5 LAST"),
            "552 5.3.4 Chunk exceeds message size limit"
        );
        s.end_transaction();
        assert_eq!(s.state(), State::Greeted);
        assert_eq!(
            refused(&s, "BDAT 5 LAST"),
            "503 5.5.1 Error: need RCPT command"
        );
        run(
            &mut s,
            &["MAIL FROM:<a@b.c>", "RCPT TO:<d@e.f>", "BDAT 5", "RSET"],
        );
        assert_eq!(s.state(), State::Greeted);
    }

    #[test]
    fn tls_and_auth() {
        let mut s = Session::new(Protocol::Smtp);
        assert_eq!(
            refused(&s, "AUTH PLAIN"),
            "503 5.5.1 Error: send HELO/EHLO first"
        );
        run(&mut s, &["EHLO x", "STARTTLS"]);
        assert_eq!(s.state(), State::Init);
        assert!(s.is_tls());
        assert_eq!(
            refused(&s, "STARTTLS"),
            "554 5.5.1 Error: TLS already active"
        );
        run(&mut s, &["EHLO x", "AUTH PLAIN"]);
        assert!(s.is_authenticated());
        assert_eq!(
            refused(&s, "AUTH LOGIN"),
            "503 5.5.1 Error: already authenticated"
        );
    }

    #[test]
    fn lmtp() {
        let mut s = Session::new(Protocol::Lmtp);
        assert_eq!(
            refused(&s, "MAIL FROM:<a@b.c>"),
            "503 5.5.1 Error: send LHLO first"
        );
        assert_eq!(
            refused(&s, "EHLO x"),
            "502 5.5.2 Error: command not recognized"
        );
        run(&mut s, &["LHLO x", "MAIL FROM:<a@b.c>"]);
        assert_eq!(s.greeting(), Some(Greeting::Lhlo));
        let smtp = Session::new(Protocol::Smtp);
        assert_eq!(
            refused(&smtp, "LHLO x"),
            "502 5.5.2 Error: command not recognized"
        );
    }
}

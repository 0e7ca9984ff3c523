//! Session tests in the style of Stalwart's `TestSession::cmd`: bytes in,
//! replies out, with a fake trivial-rewrite and a fake cleanup that records
//! what it was sent.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use postern_config::Config;
use postern_ipc::cleanup::{Outcome, Recipient, status};
use postern_ipc::rewrite::{Resolved, flags};

use super::*;
use crate::check::tests::SetTable;
use crate::check::{Restrictions, Tables};
use crate::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MsgState {
    Open,
    Queued,
    Abandoned,
}

#[derive(Debug)]
struct Message {
    id: String,
    sender: Option<String>,
    attrs: Vec<(String, String)>,
    rcpts: Vec<(String, Option<String>, u8)>,
    /// Whether the session read cleanup's greeting (it must before it
    /// writes the Received: header with the queue ID).
    greeted: bool,
    began: bool,
    content: Vec<u8>,
    ended: bool,
    state: MsgState,
}

impl Message {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.content).into_owned()
    }
    /// The content after the Received: header.
    fn body(&self) -> String {
        let text = self.text();
        let end = text.find("\r\n\t").and_then(|_| {
            // The header ends at the first CRLF not followed by a TAB.
            let bytes = text.as_bytes();
            (0..bytes.len().saturating_sub(2))
                .find(|&i| &bytes[i..i + 2] == b"\r\n" && bytes[i + 2] != b'\t')
                .map(|i| i + 2)
        });
        text[end.unwrap_or(0)..].to_string()
    }
}

#[derive(Debug)]
struct Spool {
    messages: Vec<Message>,
    fail_open: bool,
    /// cleanup accepts the connection but never greets.
    fail_greeting: bool,
    fail_write: bool,
    status: u64,
    reason: String,
}

impl Spool {
    fn new() -> Rc<RefCell<Spool>> {
        Rc::new(RefCell::new(Spool {
            messages: Vec::new(),
            fail_open: false,
            fail_greeting: false,
            fail_write: false,
            status: status::OK,
            reason: String::new(),
        }))
    }
}

struct Fake {
    spool: Rc<RefCell<Spool>>,
    pauses: Vec<Duration>,
    fail_rewrite: bool,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            spool: Spool::new(),
            pauses: Vec::new(),
            fail_rewrite: false,
        }
    }
}

impl Backend for Fake {
    type Queue = FakeQueue;

    fn rewrite_local(&mut self, address: &str) -> Result<String, String> {
        if self.fail_rewrite {
            return Err("problem talking to service rewrite: Connection refused".into());
        }
        Ok(match address.rsplit_once('@') {
            Some((l, d)) => format!("{l}@{}", d.to_ascii_lowercase()),
            None => format!("{address}@mail.example.test"),
        })
    }

    fn resolve(&mut self, _sender: &str, address: &str) -> Result<Resolved, String> {
        let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
        let (class, transport, nexthop) = match domain {
            "mail.example.test" | "localhost" => (flags::CLASS_LOCAL, "local", "mail.example.test"),
            "virt.example" => (flags::CLASS_VIRTUAL, "virtual", "virt.example"),
            "valias.example" => (
                flags::CLASS_ALIAS,
                "error",
                "5.1.1 User unknown in virtual alias table",
            ),
            "relay.example" => (flags::CLASS_RELAY, "relay", "relay.example"),
            "tempfail.example" => (flags::CLASS_DEFAULT | flags::FAIL, "smtp", ""),
            d => (flags::CLASS_DEFAULT, "smtp", d),
        };
        Ok(Resolved {
            flags: class,
            transport: transport.into(),
            nexthop: nexthop.into(),
            recipient: address.into(),
        })
    }

    fn open_queue(&mut self) -> Result<FakeQueue, String> {
        let mut spool = self.spool.borrow_mut();
        if spool.fail_open {
            return Err("connect to service cleanup: No such file or directory".into());
        }
        let index = spool.messages.len();
        spool.messages.push(Message {
            id: format!("4QUEUE{index}"),
            sender: None,
            attrs: Vec::new(),
            rcpts: Vec::new(),
            greeted: false,
            began: false,
            content: Vec::new(),
            ended: false,
            state: MsgState::Open,
        });
        Ok(FakeQueue {
            spool: self.spool.clone(),
            index,
            id: format!("4QUEUE{index}"),
            done: false,
        })
    }

    fn pause(&mut self, duration: Duration) {
        self.pauses.push(duration);
    }

    fn date(&mut self) -> String {
        "Thu, 1 Jan 2026 00:00:00 +0000 (UTC)".into()
    }
}

struct FakeQueue {
    spool: Rc<RefCell<Spool>>,
    index: usize,
    id: String,
    done: bool,
}

impl FakeQueue {
    fn with<T>(&self, f: impl FnOnce(&mut Message) -> T) -> T {
        let mut spool = self.spool.borrow_mut();
        f(&mut spool.messages[self.index])
    }
}

impl QueueSink for FakeQueue {
    fn greeting(&mut self) -> Result<(), String> {
        if self.spool.borrow().fail_greeting {
            return Err("read greeting from service cleanup: connection closed".into());
        }
        self.with(|m| m.greeted = true);
        Ok(())
    }
    fn queue_id(&self) -> &str {
        &self.id
    }
    fn sender(&mut self, address: &str) -> Result<(), String> {
        self.with(|m| m.sender = Some(address.into()));
        Ok(())
    }
    fn attr(&mut self, name: &str, value: &str) -> Result<(), String> {
        self.with(|m| m.attrs.push((name.into(), value.into())));
        Ok(())
    }
    fn recipient(&mut self, rcpt: &Recipient<'_>) -> Result<(), String> {
        let r = (
            rcpt.address.to_string(),
            rcpt.dsn_orcpt.map(str::to_string),
            rcpt.notify,
        );
        self.with(|m| m.rcpts.push(r));
        Ok(())
    }
    fn begin_content(&mut self) -> Result<(), String> {
        self.with(|m| {
            assert!(m.greeted, "content began before the greeting was read");
            m.began = true;
        });
        Ok(())
    }
    fn write_content(&mut self, data: &[u8]) -> Result<(), String> {
        if self.spool.borrow().fail_write {
            return Err("write to service cleanup: Broken pipe".into());
        }
        self.with(|m| m.content.extend_from_slice(data));
        Ok(())
    }
    fn end_content(&mut self) -> Result<(), String> {
        self.with(|m| m.ended = true);
        Ok(())
    }
    fn finish(mut self) -> Result<Outcome, String> {
        self.done = true;
        let (status, reason) = {
            let s = self.spool.borrow();
            (s.status, s.reason.clone())
        };
        let state = if status == status::OK {
            MsgState::Queued
        } else {
            MsgState::Abandoned
        };
        self.with(|m| m.state = state);
        Ok(Outcome {
            queue_id: self.id.clone(),
            status,
            reason,
        })
    }
}

impl Drop for FakeQueue {
    fn drop(&mut self) {
        if !self.done {
            self.with(|m| m.state = MsgState::Abandoned);
        }
    }
}

fn env_with(overrides: &[&str]) -> Env {
    let mut all = vec![
        "myhostname=mail.example.test".to_string(),
        "mynetworks=127.0.0.1/32".to_string(),
    ];
    all.extend(overrides.iter().map(|s| s.to_string()));
    let config = Config::defaults().with_overrides(&all).unwrap();
    Env {
        settings: Settings::from_config(&config),
        restrictions: Restrictions::from_config(&config).unwrap(),
        tables: Tables {
            local_recipient: Some(SetTable::boxed(&["alice", "bob", "jösé"])),
            virtual_mailbox: Some(SetTable::boxed(&["v@virt.example"])),
            virtual_alias: Some(SetTable::boxed(&["a@valias.example"])),
            relay_recipient: None,
            canonical: vec![],
        },
        tls: crate::tls::TlsSettings::from_config(&config).unwrap(),
        dns: None,
        hosts: postern_dns::Hosts::default(),
    }
}

fn env() -> Env {
    env_with(&[])
}

struct T<'a> {
    s: Session<'a, Fake>,
}

impl<'a> T<'a> {
    fn new(env: &'a Env, fake: &'a mut Fake, ip: &str) -> T<'a> {
        let mut s = Session::new(env, fake, Peer::inet(ip.parse().unwrap(), 40000));
        s.greet();
        let greeting = String::from_utf8(s.take_output()).unwrap();
        assert_eq!(greeting, "220 mail.example.test ESMTP Postern\r\n");
        T { s }
    }

    /// Sends raw bytes, returns all replies.
    fn send(&mut self, bytes: &[u8]) -> String {
        self.s.feed(bytes);
        String::from_utf8(self.s.take_output()).unwrap()
    }

    /// Sends one command line; the reply must start with `expect`.
    fn cmd(&mut self, line: &str, expect: &str) -> String {
        let out = self.send(format!("{line}\r\n").as_bytes());
        assert!(
            out.starts_with(expect),
            "{line:?}: expected {expect:?}, got {out:?}"
        );
        out
    }

    fn ehlo(&mut self) {
        self.cmd("EHLO client.example", "250-mail.example.test\r\n");
    }

    /// EHLO, MAIL, one RCPT.
    fn envelope(&mut self, from: &str, to: &str) {
        self.ehlo();
        self.cmd(&format!("MAIL FROM:<{from}>"), "250 2.1.0 Ok\r\n");
        self.cmd(&format!("RCPT TO:<{to}>"), "250 2.1.5 Ok\r\n");
    }
}

fn message(spool: &Rc<RefCell<Spool>>, i: usize) -> std::cell::Ref<'_, Message> {
    std::cell::Ref::map(spool.borrow(), |s| &s.messages[i])
}

#[test]
fn ehlo_announces_postfix_extensions() {
    let env = env();
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    assert_eq!(
        t.cmd("EHLO client.example", "250-"),
        "250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n\
         250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
    );
    assert_eq!(
        t.cmd("HELO client.example", "250"),
        "250 mail.example.test\r\n"
    );
    t.cmd("NOOP", "250 2.0.0 Ok\r\n");
    t.cmd("RSET", "250 2.0.0 Ok\r\n");
    t.cmd("HELP", "214 2.0.0 Commands: HELO EHLO");
    assert_eq!(t.cmd("QUIT", "221"), "221 2.0.0 Bye\r\n");
    assert!(t.s.is_closed());
    assert_eq!(t.send(b"NOOP\r\n"), "", "nothing after QUIT");
    assert_eq!(
        t.s.stats.format(),
        " helo=1 ehlo=1 rset=1 noop=1 quit=1 help=1 commands=6"
    );
}

#[test]
fn the_client_names_go_to_received_the_envelope_and_restrictions() {
    use crate::peer::{Names, Status};
    let env = env_with(&["smtpd_client_restrictions=reject_unknown_client_hostname"]);
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let peer = Peer::inet("192.0.2.7".parse().unwrap(), 40000).with_names(Names {
        name: "good.example".into(),
        reverse_name: "good.example".into(),
        name_status: Status::Ok,
        reverse_name_status: Status::Ok,
    });
    let mut s = Session::new(&env, &mut fake, peer);
    assert_eq!(s.namaddr(), "good.example[192.0.2.7]");
    s.greet();
    let mut t = T { s };
    t.send(b"");
    t.envelope("sender@example.org", "alice@mail.example.test");
    t.cmd("DATA", "354");
    t.cmd("Subject: x\r\n\r\nbody\r\n.", "250 2.0.0 Ok: queued as");
    let m = message(&spool, 0);
    assert_eq!(m.attr("client_name"), Some("good.example"));
    assert_eq!(m.attr("reverse_client_name"), Some("good.example"));
    assert!(
        m.text()
            .starts_with("Received: from client.example (good.example [192.0.2.7])\r\n"),
        "{}",
        m.text()
    );
    drop(m);

    // A name that is not forward-confirmed: unknown, and refused.
    let mut fake = Fake::new();
    let peer = Peer::inet("192.0.2.8".parse().unwrap(), 40000).with_names(Names {
        name: "unknown".into(),
        reverse_name: "liar.example".into(),
        name_status: Status::Forged,
        reverse_name_status: Status::Ok,
    });
    let mut t = T {
        s: Session::new(&env, &mut fake, peer),
    };
    t.ehlo();
    t.cmd("MAIL FROM:<sender@example.org>", "250");
    t.cmd(
        "RCPT TO:<alice@mail.example.test>",
        "450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.8]\r\n",
    );
}

#[test]
fn a_message_is_queued_with_envelope_received_and_unstuffed_content() {
    let env = env();
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.envelope("sender@example.org", "alice@mail.example.test");
    t.cmd("DATA", "354 End data with <CR><LF>.<CR><LF>\r\n");
    let out = t.send(b"Subject: test\r\n\r\n..leading dot\r\n.\r\n");
    assert_eq!(out, "250 2.0.0 Ok: queued as 4QUEUE0\r\n");
    t.cmd("QUIT", "221");
    let m = message(&spool, 0);
    assert_eq!(m.state, MsgState::Queued);
    assert_eq!(m.id, "4QUEUE0");
    assert_eq!(m.sender.as_deref(), Some("sender@example.org"));
    assert_eq!(m.rcpts, [("alice@mail.example.test".to_string(), None, 0)]);
    assert_eq!(m.attr("client_name"), Some("unknown"));
    assert_eq!(m.attr("client_address"), Some("127.0.0.1"));
    assert_eq!(m.attr("client_port"), Some("40000"));
    assert_eq!(m.attr("helo_name"), Some("client.example"));
    assert_eq!(m.attr("protocol"), Some("ESMTP"));
    assert_eq!(m.attr("rewrite_context"), Some("remote"));
    assert!(m.began && m.ended);
    assert_eq!(
        m.text(),
        "Received: from client.example (unknown [127.0.0.1])\r\n\
         \tby mail.example.test (Postern) with ESMTP id 4QUEUE0\r\n\
         \tfor <alice@mail.example.test>; Thu, 1 Jan 2026 00:00:00 +0000 (UTC)\r\n\
         Subject: test\r\n\r\n.leading dot\r\n"
    );
    drop(m);
    assert_eq!(
        t.s.stats.format(),
        " ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
    );
}

#[test]
fn pipelined_transactions_answer_in_order_in_one_flush() {
    let env = env();
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.ehlo();
    let out = t.send(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@mail.example.test>\r\n\
          RCPT TO:<nobody@mail.example.test>\r\nRCPT TO:<bob@mail.example.test>\r\nDATA\r\n",
    );
    assert_eq!(
        out,
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n\
         550 5.1.1 <nobody@mail.example.test>: Recipient address rejected: User unknown in local recipient table\r\n\
         250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    // Content, the end, and a whole second transaction in one write.
    let out = t.send(
        b"one\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<bob@mail.example.test>\r\nDATA\r\ntwo\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(
        out,
        "250 2.0.0 Ok: queued as 4QUEUE0\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n\
         354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 4QUEUE1\r\n221 2.0.0 Bye\r\n"
    );
    let first = message(&spool, 0);
    assert_eq!(first.rcpts.len(), 2);
    assert!(
        first.text().contains("id 4QUEUE0;\r\n\tThu, 1 Jan"),
        "two recipients: no for clause"
    );
    assert_eq!(first.body(), "one\r\n");
    drop(first);
    let second = message(&spool, 1);
    assert_eq!(second.sender.as_deref(), Some(""));
    assert_eq!(second.body(), "two\r\n");
}

#[test]
fn sequencing_errors() {
    let env = env();
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.cmd(
        "RCPT TO:<alice@mail.example.test>",
        "503 5.5.1 Error: need MAIL command",
    );
    t.cmd("DATA", "503 5.5.1 Error: need RCPT command");
    t.cmd("MAIL FROM:<a@example.org>", "250 2.1.0 Ok");
    t.cmd(
        "MAIL FROM:<a@example.org>",
        "503 5.5.1 Error: nested MAIL command",
    );
    t.cmd("DATA", "554 5.5.1 Error: no valid recipients");
    t.cmd("FOO", "502 5.5.2 Error: command not recognized");
    t.cmd("EXPN staff", "502 5.5.2 Error: command not recognized");
    t.cmd("STARTTLS", "502 5.5.1 Error: command not implemented");
    t.cmd("AUTH PLAIN", "503 5.5.1 Error: send HELO/EHLO first");
    t.ehlo();
    t.cmd("MAIL FROM:<a@example.org>", "250 2.1.0 Ok");
    t.cmd(
        "AUTH PLAIN",
        "503 5.5.1 Error: MAIL transaction in progress",
    );
    t.cmd("RSET", "250 2.0.0 Ok");
    t.cmd("AUTH PLAIN", "503 5.5.1 Error: authentication not enabled");
    t.cmd(
        "MAIL FROM:<a@example.org> BODY=BINARYMIME",
        "555 5.5.4 Unsupported option: BODY=BINARYMIME",
    );
    t.cmd(
        "MAIL FROM:<a@example.org> AUTH=<>",
        "555 5.5.4 Unsupported option: AUTH",
    );
    t.cmd(
        "MAIL FROM:<a@example.org> FOO=BAR",
        "555 5.5.4 Unsupported option: FOO=BAR",
    );
    t.cmd("MAIL FROM:a@", "501 5.1.7 Bad sender address syntax");
    t.cmd("MAIL FROM:<a@example.org>", "250");
    t.cmd("RCPT TO:<@>", "501 5.1.3 Bad recipient address syntax");
    t.cmd(
        "RCPT TO:<x@example.org> NOTIFY=SOMETIMES",
        "501 5.5.4 Error: Bad NOTIFY parameter syntax",
    );
    t.cmd("", "500 5.5.2 Error: bad syntax");
    t.cmd("LHLO x", "502 5.5.2 Error: command not recognized");
    assert_eq!(t.s.errors, 18);
}

#[test]
fn helo_required() {
    let env = env_with(&["smtpd_helo_required=yes"]);
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.cmd(
        "MAIL FROM:<a@example.org>",
        "503 5.5.1 Error: send HELO/EHLO first",
    );
    t.cmd("HELO x.example", "250 mail.example.test");
    t.cmd("MAIL FROM:<a@example.org>", "250 2.1.0 Ok");
}

#[test]
fn relay_control() {
    let env = env();
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    // Outside mynetworks: the default relay restrictions defer.
    let mut t = T::new(&env, &mut fake, "127.0.0.2");
    t.ehlo();
    t.cmd("MAIL FROM:<a@example.org>", "250");
    assert_eq!(
        t.cmd("RCPT TO:<victim@remote.example>", "454"),
        "454 4.7.1 <victim@remote.example>: Relay access denied\r\n"
    );
    // Our own destinations are fine.
    t.cmd("RCPT TO:<alice@mail.example.test>", "250 2.1.5 Ok");
    t.cmd("RCPT TO:<anyone@relay.example>", "250 2.1.5 Ok");
    t.cmd("RCPT TO:<v@virt.example>", "250 2.1.5 Ok");
    drop(t);
    assert_eq!(spool.borrow().messages.len(), 1);
    assert_eq!(spool.borrow().messages[0].state, MsgState::Abandoned);

    // Inside mynetworks anything goes.
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.envelope("a@example.org", "someone@remote.example");

    // reject_unauth_destination answers 554.
    let env = env_with(&["smtpd_relay_restrictions=permit_mynetworks reject_unauth_destination"]);
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "10.1.2.3");
    t.ehlo();
    t.cmd("MAIL FROM:<a@example.org>", "250");
    t.cmd(
        "RCPT TO:<victim@remote.example>",
        "554 5.7.1 <victim@remote.example>: Relay access denied\r\n",
    );
    t.cmd("DATA", "554 5.5.1 Error: no valid recipients");
}

#[test]
fn recipient_validation() {
    let env = env();
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.2");
    t.ehlo();
    t.cmd("MAIL FROM:<a@example.org>", "250");
    t.cmd(
        "RCPT TO:<nosuch@mail.example.test>",
        "550 5.1.1 <nosuch@mail.example.test>: Recipient address rejected: User unknown in local recipient table\r\n",
    );
    t.cmd("RCPT TO:<postmaster@mail.example.test>", "250 2.1.5 Ok");
    t.cmd("RCPT TO:<Postmaster>", "250 2.1.5 Ok");
    t.cmd(
        "RCPT TO:<w@virt.example>",
        "550 5.1.1 <w@virt.example>: Recipient address rejected: User unknown in virtual mailbox table\r\n",
    );
    t.cmd(
        "RCPT TO:<nobody@valias.example>",
        "550 5.1.1 <nobody@valias.example>: Recipient address rejected: User unknown in virtual alias table\r\n",
    );
    t.cmd("RCPT TO:<a@valias.example>", "250 2.1.5 Ok");
    t.cmd(
        "RCPT TO:<x@tempfail.example>",
        "451 4.3.0 <x@tempfail.example>: Temporary lookup failure\r\n",
    );
    let m = message(&spool, 0);
    let rcpts: Vec<&str> = m.rcpts.iter().map(|r| r.0.as_str()).collect();
    // The unqualified Postmaster goes to cleanup completed.
    assert_eq!(
        rcpts,
        [
            "postmaster@mail.example.test",
            "Postmaster@mail.example.test",
            "a@valias.example"
        ]
    );
}

#[test]
fn rewrite_service_failure_is_temporary() {
    let env = env();
    let mut fake = Fake::new();
    fake.fail_rewrite = true;
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.ehlo();
    t.cmd("MAIL FROM:<a@example.org>", "250");
    t.cmd(
        "RCPT TO:<alice@mail.example.test>",
        "451 4.3.0 <alice@mail.example.test>: Temporary lookup failure\r\n",
    );
}

#[test]
fn size_limits() {
    let env = env_with(&["message_size_limit=100"]);
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    assert!(t.cmd("EHLO x", "250-").contains("250-SIZE 100\r\n"));
    t.cmd(
        "MAIL FROM:<a@example.org> SIZE=101",
        "552 5.3.4 Message size exceeds fixed limit\r\n",
    );
    t.cmd("MAIL FROM:<a@example.org> SIZE=100", "250 2.1.0 Ok");
    t.cmd("RCPT TO:<alice@mail.example.test>", "250");
    t.cmd("DATA", "354");
    let mut content = Vec::new();
    for _ in 0..20 {
        content.extend_from_slice(b"0123456789\r\n");
    }
    assert_eq!(t.send(&content), "");
    assert_eq!(
        t.send(b".\r\n"),
        "552 5.3.4 Message size exceeds fixed limit\r\n"
    );
    assert_eq!(message(&spool, 0).state, MsgState::Abandoned);
    // The session goes on.
    t.cmd("MAIL FROM:<a@example.org>", "250 2.1.0 Ok");
    // SIZE 0 means no limit.
    let env = env_with(&["message_size_limit=0"]);
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    assert!(t.cmd("EHLO x", "250-").contains("250-SIZE\r\n"));
    t.cmd("MAIL FROM:<a@example.org> SIZE=99999999999", "250");
}

#[test]
fn recipient_limit() {
    let env = env_with(&["smtpd_recipient_limit=2"]);
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.envelope("a@example.org", "alice@mail.example.test");
    t.cmd("RCPT TO:<bob@mail.example.test>", "250");
    t.cmd(
        "RCPT TO:<x@remote.example>",
        "452 4.5.3 Error: too many recipients\r\n",
    );
}

#[test]
fn vrfy() {
    // Off by default (disable_vrfy_command = yes); enabled here.
    let env = env_with(&["disable_vrfy_command=no"]);
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.cmd("VRFY alice", "252 2.0.0 alice\r\n");
    t.cmd(
        "VRFY <bob@mail.example.test>",
        "252 2.0.0 <bob@mail.example.test>\r\n",
    );
    t.cmd(
        "VRFY nosuch",
        "550 5.1.1 <nosuch>: Recipient address rejected: User unknown in local recipient table\r\n",
    );
    t.cmd("VRFY <a b>", "501 5.1.3 Bad recipient address syntax");
    let env = env_with(&["disable_vrfy_command=yes"]);
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    assert!(!t.cmd("EHLO x", "250-").contains("VRFY"));
    t.cmd("VRFY alice", "502 5.5.1 VRFY command is disabled\r\n");
}

#[test]
fn error_limits_slow_down_then_disconnect() {
    let env = env_with(&[
        "smtpd_soft_error_limit=2",
        "smtpd_hard_error_limit=4",
        "smtpd_error_sleep_time=3s",
    ]);
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.cmd("BOGUS", "502");
    t.cmd("BOGUS", "502");
    t.cmd("NOOP", "250");
    t.cmd("BOGUS", "502");
    // The limit is enforced at once, not at the next command.
    assert_eq!(
        t.cmd("BOGUS", "502"),
        "502 5.5.2 Error: command not recognized\r\n\
         421 4.7.0 mail.example.test Error: too many errors\r\n"
    );
    assert!(t.s.is_closed());
    drop(t);
    // Replies after more than 2 errors were delayed: the 4th error reply.
    assert_eq!(fake.pauses, [Duration::from_secs(3)]);
}

#[test]
fn junk_commands_become_errors() {
    let env = env_with(&["smtpd_junk_command_limit=3", "smtpd_hard_error_limit=2"]);
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    for _ in 0..4 {
        t.cmd("NOOP", "250 2.0.0 Ok\r\n");
    }
    // The 4th was over the limit (one error); the 5th is the second.
    assert_eq!(
        t.cmd("RSET", "250"),
        "250 2.0.0 Ok\r\n421 4.7.0 mail.example.test Error: too many errors\r\n"
    );
    assert!(t.s.is_closed());
    // Delivering mail resets the count.
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    for _ in 0..3 {
        t.cmd("NOOP", "250");
    }
    t.envelope("a@example.org", "alice@mail.example.test");
    t.cmd("DATA", "354");
    t.send(b"x\r\n.\r\n");
    for _ in 0..3 {
        t.cmd("NOOP", "250 2.0.0 Ok\r\n");
    }
    assert!(!t.s.is_closed());
}

#[test]
fn delivered_mail_resets_the_error_count() {
    let env = env_with(&["smtpd_hard_error_limit=3"]);
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.cmd("BOGUS", "502");
    t.cmd("BOGUS", "502");
    t.envelope("a@example.org", "alice@mail.example.test");
    t.cmd("DATA", "354");
    t.send(b"x\r\n.\r\n");
    t.cmd("BOGUS", "502");
    t.cmd("BOGUS", "502");
    t.cmd("NOOP", "250");
}

#[test]
fn data_restrictions() {
    let env = env_with(&["smtpd_data_restrictions=permit_mynetworks, reject"]);
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.2");
    t.envelope("a@example.org", "alice@mail.example.test");
    t.cmd(
        "DATA",
        "554 5.7.1 <DATA>: Data command rejected: Access denied\r\n",
    );
    assert_eq!(
        t.send(b"BDAT 3 LAST\r\nabcNOOP\r\n"),
        "554 5.7.1 <DATA>: Data command rejected: Access denied\r\n250 2.0.0 Ok\r\n"
    );
    t.cmd("RSET", "250");
    assert_eq!(message(&spool, 0).state, MsgState::Abandoned);
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.envelope("a@example.org", "alice@mail.example.test");
    t.cmd("DATA", "354");
}

#[test]
fn bare_newline_modes() {
    // normalize (default): bare LF becomes CRLF, commands ending in LF work.
    let env = env();
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    assert_eq!(t.send(b"EHLO x\n").lines().count(), 8);
    t.cmd("MAIL FROM:<a@example.org>", "250");
    t.cmd("RCPT TO:<alice@mail.example.test>", "250");
    t.cmd("DATA", "354");
    assert_eq!(
        t.send(b"a\nb\r\n.\r\n"),
        "250 2.0.0 Ok: queued as 4QUEUE0\r\n"
    );
    assert_eq!(message(&spool, 0).body(), "a\r\nb\r\n");

    // reject: the message is read to its end, then refused.
    let env = env_with(&["smtpd_forbid_bare_newline=reject"]);
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.cmd("NOOP\n", "550 5.5.2 Error: bare <LF> received");
    t.envelope("a@example.org", "alice@mail.example.test");
    t.cmd("DATA", "354");
    assert_eq!(
        t.send(b"a\nb\r\n.\r\n"),
        "550 5.5.2 Error: bare <LF> received\r\n"
    );
    assert_eq!(message(&spool, 0).state, MsgState::Abandoned);

    // no: bare LF kept as is (but it never ends DATA).
    let env = env_with(&["smtpd_forbid_bare_newline=no"]);
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.envelope("a@example.org", "alice@mail.example.test");
    t.cmd("DATA", "354");
    assert_eq!(
        t.send(b"a\n.\nb\r\n.\r\n"),
        "250 2.0.0 Ok: queued as 4QUEUE0\r\n"
    );
    assert_eq!(message(&spool, 0).body(), "a\n.\nb\r\n");
}

#[test]
fn smuggling_variants_stay_content() {
    for variant in [
        &b"\n.\n"[..],
        b"\r.\r\n",
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r\n.\r",
    ] {
        let env = env();
        let mut fake = Fake::new();
        let spool = fake.spool.clone();
        let mut t = T::new(&env, &mut fake, "127.0.0.1");
        t.envelope("a@example.org", "alice@mail.example.test");
        t.cmd("DATA", "354");
        let mut input = b"Subject: x\r\n\r\nbody".to_vec();
        input.extend_from_slice(variant);
        input.extend_from_slice(
            b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<bob@mail.example.test>\r\nDATA\r\nsmuggled\r\n.\r\n",
        );
        let out = t.send(&input);
        assert_eq!(out, "250 2.0.0 Ok: queued as 4QUEUE0\r\n", "{variant:?}");
        let m = message(&spool, 0);
        assert!(
            m.text()
                .contains("MAIL FROM:<evil@example.org>\r\nRCPT TO:<bob@mail.example.test>"),
            "{variant:?}: {:?}",
            m.text()
        );
        assert_eq!(spool.borrow().messages.len(), 1);
    }
}

#[test]
fn bdat_chunks() {
    let env = env();
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    // A chunk refused for sequence is still drained.
    assert_eq!(
        t.send(b"BDAT 12\r\nQUIT\r\nRSET\r\n"),
        "503 5.5.1 Error: need RCPT command\r\n"
    );
    assert!(!t.s.is_closed());
    t.envelope("a@example.org", "alice@mail.example.test");
    // Chunks may split anywhere; no dot-stuffing, no line-ending changes.
    assert_eq!(t.send(b"BDAT 11\r\nSubject: "), "");
    assert_eq!(t.send(b"x\r"), "250 2.0.0 Ok: 11 bytes\r\n");
    t.cmd("DATA", "503 5.5.1 Error: DATA after BDAT");
    assert_eq!(
        t.send(b"BDAT 9 LAST\r\n\n\r\n.\r\n.x\nQUIT\r\n"),
        "250 2.0.0 Ok: queued as 4QUEUE0\r\n221 2.0.0 Bye\r\n"
    );
    let m = message(&spool, 0);
    assert_eq!(m.state, MsgState::Queued);
    assert_eq!(m.body(), "Subject: x\r\n\r\n.\r\n.x\n");
    drop(m);
    assert_eq!(
        t.s.stats.format(),
        " ehlo=1 mail=1 rcpt=1 data=0/1 bdat=2/3 quit=1 commands=6/8"
    );
}

#[test]
fn bdat_zero_last_and_oversize() {
    let env = env_with(&["message_size_limit=10"]);
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.envelope("a@example.org", "alice@mail.example.test");
    assert_eq!(
        t.send(b"BDAT 4\r\nabcdBDAT 0 LAST\r\n"),
        "250 2.0.0 Ok: 4 bytes\r\n250 2.0.0 Ok: queued as 4QUEUE0\r\n"
    );
    assert_eq!(message(&spool, 0).body(), "abcd");
    t.cmd("MAIL FROM:<a@example.org>", "250");
    t.cmd("RCPT TO:<alice@mail.example.test>", "250");
    assert_eq!(
        t.send(b"BDAT 8\r\n12345678BDAT 8\r\n12345678BDAT 3\r\nxyzBDAT 2 LAST\r\nzzNOOP\r\n"),
        "250 2.0.0 Ok: 8 bytes\r\n552 5.3.4 Chunk exceeds message size limit\r\n\
         552 5.3.4 Chunk exceeds message size limit\r\n552 5.3.4 Chunk exceeds message size limit\r\n\
         250 2.0.0 Ok\r\n"
    );
    assert_eq!(message(&spool, 1).state, MsgState::Abandoned);
    // The refused LAST chunk ended the transaction.
    t.cmd(
        "RCPT TO:<alice@mail.example.test>",
        "503 5.5.1 Error: need MAIL command",
    );
}

#[test]
fn bad_bdat_hangs_up() {
    let env = env();
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.cmd("BDAT lots", "521 5.5.4 Syntax: BDAT count [LAST]");
    assert!(t.s.is_closed());
}

#[test]
fn cleanup_failures() {
    // No cleanup: the recipient cannot be accepted.
    let env = env();
    let mut fake = Fake::new();
    fake.spool.borrow_mut().fail_open = true;
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.ehlo();
    t.cmd("MAIL FROM:<a@example.org>", "250");
    t.cmd(
        "RCPT TO:<alice@mail.example.test>",
        "451 4.3.0 Error: queue file write error\r\n",
    );
    t.cmd("DATA", "554 5.5.1 Error: no valid recipients");

    // cleanup takes the connection but never greets: the RCPT was
    // answered before the greeting was read, so DATA fails instead.
    let mut fake = Fake::new();
    fake.spool.borrow_mut().fail_greeting = true;
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.ehlo();
    t.cmd("MAIL FROM:<a@example.org>", "250");
    t.cmd("RCPT TO:<alice@mail.example.test>", "250");
    t.cmd("DATA", "451 4.3.0 Error: queue file write error");
    assert!(!message(&spool, 0).began);
    assert_eq!(message(&spool, 0).state, MsgState::Abandoned);
    // The session goes on: the next transaction gets a new file.
    spool.borrow_mut().fail_greeting = false;
    t.cmd("MAIL FROM:<a@example.org>", "250");
    t.cmd("RCPT TO:<alice@mail.example.test>", "250");
    t.cmd("DATA", "354");
    assert_eq!(t.send(b"hi\r\n.\r\n").get(..3), Some("250"));

    // cleanup goes away during DATA: the content is read to its end.
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.envelope("a@example.org", "alice@mail.example.test");
    t.cmd("DATA", "354");
    spool.borrow_mut().fail_write = true;
    assert_eq!(t.send(b"text\r\n"), "");
    assert_eq!(
        t.send(b".\r\n"),
        "451 4.3.0 Error: queue file write error\r\n"
    );
    assert_eq!(message(&spool, 0).state, MsgState::Abandoned);

    // cleanup refuses the content: its reason and status code are used.
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    {
        let mut s = spool.borrow_mut();
        s.status = status::CONT;
        s.reason = "5.7.1 message content rejected".into();
    }
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.envelope("a@example.org", "alice@mail.example.test");
    t.cmd("DATA", "354");
    assert_eq!(
        t.send(b"spam\r\n.\r\n"),
        "550 5.7.1 message content rejected\r\n"
    );
    spool.borrow_mut().status = status::SIZE;
    spool.borrow_mut().reason = String::new();
    t.envelope("a@example.org", "alice@mail.example.test");
    t.cmd("DATA", "354");
    assert_eq!(
        t.send(b"big\r\n.\r\n"),
        "552 5.3.4 Error: message file too big\r\n"
    );
}

#[test]
fn rset_and_ehlo_abandon_the_queue_file() {
    let env = env();
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.envelope("a@example.org", "alice@mail.example.test");
    t.cmd("RSET", "250 2.0.0 Ok");
    assert_eq!(message(&spool, 0).state, MsgState::Abandoned);
    t.envelope("a@example.org", "alice@mail.example.test");
    t.ehlo();
    assert_eq!(message(&spool, 1).state, MsgState::Abandoned, "EHLO resets");
    t.envelope("a@example.org", "alice@mail.example.test");
    assert_eq!(message(&spool, 2).state, MsgState::Open);
    t.s.end();
    assert_eq!(message(&spool, 2).state, MsgState::Abandoned);
}

#[test]
fn smtputf8_and_dsn_parameters() {
    let env = env();
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.ehlo();
    t.cmd("MAIL FROM:<a@example.org>", "250");
    t.cmd(
        "RCPT TO:<jösé@mail.example.test>",
        "553 5.6.7 Must declare SMTPUTF8 to send unicode address",
    );
    t.cmd("RSET", "250");
    t.cmd(
        "MAIL FROM:<ñ@example.org> SMTPUTF8 BODY=8BITMIME RET=HDRS ENVID=abc+2Bdef",
        "250 2.1.0 Ok",
    );
    t.cmd(
        "RCPT TO:<jösé@mail.example.test> NOTIFY=SUCCESS,FAILURE ORCPT=utf-8;j\\x{F6}s\\x{E9}@mail.example.test",
        "250 2.1.5 Ok",
    );
    t.cmd("DATA", "354");
    assert_eq!(
        t.send("Subject: ¡hola!\r\n\r\nüñí\r\n.\r\n".as_bytes()),
        "250 2.0.0 Ok: queued as 4QUEUE0\r\n"
    );
    let m = message(&spool, 0);
    assert_eq!(m.sender.as_deref(), Some("ñ@example.org"));
    assert_eq!(
        m.rcpts,
        [(
            "jösé@mail.example.test".to_string(),
            Some("utf-8;jösé@mail.example.test".to_string()),
            2 | 8
        )]
    );
    assert_eq!(m.attr("smtputf8"), Some("yes"));
    assert_eq!(m.attr("encoding"), Some("8bit"));
    assert_eq!(m.attr("ret"), Some("HDRS"));
    assert_eq!(m.attr("envid"), Some("abc+def"));
    assert!(m.text().contains("with UTF8SMTP id 4QUEUE0"));
    assert!(m.text().ends_with("üñí\r\n"));
}

#[test]
fn non_smtp_and_long_lines() {
    let env = env_with(&["line_length_limit=100"]);
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    let long = format!("NOOP {}", "x".repeat(200));
    t.cmd(&long, "500 5.5.2 Error: line too long");
    t.cmd("NOOP", "250");
    t.cmd(
        "GET / HTTP/1.0",
        "221 2.7.0 Error: I can break rules, too. Goodbye.",
    );
    assert!(t.s.is_closed());
}

#[test]
fn timeouts_and_lost_connections() {
    let env = env();
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.envelope("a@example.org", "alice@mail.example.test");
    t.cmd("DATA", "354");
    t.send(b"some");
    assert_eq!(t.s.where_(), "DATA (4 bytes)");
    t.s.timeout();
    assert_eq!(
        String::from_utf8(t.s.take_output()).unwrap(),
        "421 4.4.2 mail.example.test Error: timeout exceeded\r\n"
    );
    assert!(t.s.is_closed());
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.ehlo();
    assert_eq!(t.s.where_(), "EHLO");
    t.s.lost();
    assert!(t.s.is_closed());
}

#[test]
fn ipv6_client_in_received() {
    let env = env_with(&["mynetworks=[::1]/128"]);
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut s = Session::new(&env, &mut fake, Peer::inet("::1".parse().unwrap(), 5));
    s.greet();
    s.feed(
        b"HELO h\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@remote.example>\r\nDATA\r\nx\r\n.\r\n",
    );
    let out = String::from_utf8(s.take_output()).unwrap();
    assert!(
        out.ends_with("250 2.0.0 Ok: queued as 4QUEUE0\r\n"),
        "{out}"
    );
    assert!(message(&spool, 0).text().starts_with(
        "Received: from h (unknown [IPv6:::1])\r\n\tby mail.example.test (Postern) with SMTP id"
    ));
}

// --- STARTTLS ------------------------------------------------------------

/// A self-signed certificate in a temp dir, and the overrides that use it.
fn tls_env(extra: &[&str]) -> (Env, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["mail.example.test".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let mut o = vec![
        format!("smtpd_tls_cert_file={}", cert.display()),
        format!("smtpd_tls_key_file={}", key.display()),
    ];
    o.extend(extra.iter().map(|s| s.to_string()));
    let o: Vec<&str> = o.iter().map(String::as_str).collect();
    (env_with(&o), dir)
}

fn tls13() -> TlsInfo {
    TlsInfo {
        protocol: "TLSv1.3".into(),
        cipher: "TLS_AES_256_GCM_SHA384".into(),
        bits: 256,
        key_exchange: Some("X25519".into()),
    }
}

#[test]
fn no_starttls_by_default() {
    let env = env();
    assert!(env.tls.config.is_none());
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    assert!(!t.cmd("EHLO x", "250-").contains("STARTTLS"));
    t.cmd("STARTTLS", "502 5.5.1 Error: command not implemented\r\n");
    // Configured certificate but level none: still nothing.
    let (env, _dir) = tls_env(&[]);
    assert!(env.tls.config.is_none());
}

#[test]
fn starttls_announced_and_session_reset() {
    let (env, _dir) = tls_env(&["smtpd_tls_security_level=may"]);
    assert!(env.tls.config.is_some());
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    let ehlo = t.cmd("EHLO client.example", "250-");
    assert!(ehlo.contains("250-STARTTLS\r\n"), "{ehlo}");
    t.cmd(
        "HELP",
        "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP STARTTLS",
    );
    t.cmd("MAIL FROM:<a@example.org>", "250");
    t.cmd("STARTTLS", "503 5.5.1 Error: MAIL transaction in progress");
    t.cmd("RSET", "250");
    t.cmd("STARTTLS", "220 2.0.0 Ready to start TLS\r\n");
    assert!(t.s.wants_tls());
    // Nothing is read until the handshake is done.
    assert_eq!(t.send(b"NOOP\r\n"), "");
    t.s.tls_started(tls13());
    assert!(!t.s.wants_tls());
    // The session starts over: the old EHLO is forgotten.
    let ehlo = t.cmd("EHLO client.example", "250-");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    t.cmd("STARTTLS", "554 5.5.1 Error: TLS already active");
    assert_eq!(
        t.s.stats.format(),
        " ehlo=2 starttls=1/3 mail=1 rset=1 help=1 commands=6/8"
    );
}

#[test]
fn plaintext_pipelined_after_starttls_is_discarded() {
    let (env, _dir) = tls_env(&["smtpd_tls_security_level=may"]);
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.ehlo();
    // CVE-2011-0411: the injected commands must never run.
    let out = t
        .send(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@mail.example.test>\r\n");
    assert_eq!(out, "220 2.0.0 Ready to start TLS\r\n");
    t.s.tls_started(tls13());
    t.cmd("EHLO client.example", "250-");
    t.cmd(
        "RCPT TO:<alice@mail.example.test>",
        "503 5.5.1 Error: need MAIL command",
    );
    assert!(spool.borrow().messages.is_empty());
}

#[test]
fn encrypt_requires_starttls_first() {
    let (env, _dir) = tls_env(&[
        "smtpd_tls_security_level=encrypt",
        "smtpd_tls_received_header=yes",
    ]);
    let mut fake = Fake::new();
    let spool = fake.spool.clone();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    t.ehlo();
    for cmd in [
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<alice@mail.example.test>",
        "DATA",
        "RSET",
        "VRFY alice",
    ] {
        t.cmd(cmd, "530 5.7.0 Must issue a STARTTLS command first\r\n");
    }
    // A refused BDAT's chunk is read and dropped, not run as commands.
    assert_eq!(
        t.send(b"BDAT 6\r\nQUIT\r\n"),
        "530 5.7.0 Must issue a STARTTLS command first\r\n"
    );
    t.cmd("NOOP", "250");
    t.cmd("STARTTLS", "220");
    t.s.tls_started(tls13());
    t.envelope("sender@example.org", "alice@mail.example.test");
    t.cmd("DATA", "354");
    t.cmd("Subject: x\r\n\r\nbody\r\n.", "250 2.0.0 Ok: queued as");
    let m = message(&spool, 0);
    assert_eq!(
        m.text(),
        "Received: from client.example (unknown [127.0.0.1])\r\n\
         \t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\r\n\
         \t key-exchange X25519)\r\n\
         \t(No client certificate requested)\r\n\
         \tby mail.example.test (Postern) with ESMTPS id 4QUEUE0\r\n\
         \tfor <alice@mail.example.test>; Thu, 1 Jan 2026 00:00:00 +0000 (UTC)\r\n\
         Subject: x\r\n\r\nbody\r\n"
    );
}

#[test]
fn encrypt_without_certificate_answers_454() {
    let env = env_with(&["smtpd_tls_security_level=encrypt"]);
    let mut fake = Fake::new();
    let mut t = T::new(&env, &mut fake, "127.0.0.1");
    assert!(t.cmd("EHLO x", "250-").contains("STARTTLS"));
    t.cmd(
        "STARTTLS",
        "454 4.7.0 TLS not available due to local problem\r\n",
    );
    t.cmd("MAIL FROM:<a@example.org>", "530 5.7.0");
}

#[test]
fn bad_security_level_is_a_config_error() {
    let config = Config::defaults()
        .with_overrides(&["smtpd_tls_security_level=mandatory".to_string()])
        .unwrap();
    let e = crate::tls::TlsSettings::from_config(&config).unwrap_err();
    assert!(e.starts_with("smtpd_tls_security_level:"), "{e}");
}

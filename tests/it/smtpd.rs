//! smtpd through master, with the real cleanup and trivial-rewrite: SMTP
//! clients (a raw socket, Python's smtplib, swaks and curl when installed)
//! send mail on loopback, and the queue files in `incoming/` are read
//! back with `postern_queue::QueueFile`. There is no qmgr, so accepted
//! mail stays in `incoming/`.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use postern_queue::QueueFile;
use postern_tests::{Instance, free_port, installed};

const WAIT: Duration = Duration::from_secs(20);

/// A running instance with smtpd on `port`.
struct Smtp {
    inst: Instance,
    port: u16,
    _tables: tempfile::TempDir,
}

fn master_table(port: u16, with_cleanup: bool) -> String {
    let mut t = format!(
        "[smtp]\ntype = \"inet\"\nlisten = \"127.0.0.1:{port}\"\nmaxproc = 4\ncommand = \"smtpd\"\n\n\
         [rewrite]\ntype = \"unix\"\nmaxproc = 8\ncommand = \"trivial-rewrite\"\n"
    );
    if with_cleanup {
        t.push_str("\n[cleanup]\ntype = \"unix\"\nmaxproc = 8\ncommand = \"cleanup\"\n");
    }
    t
}

/// Starts master with smtpd, trivial-rewrite and (optionally) cleanup.
/// `mynetworks` is 127.0.0.1 only, so a client bound to 127.0.0.2 is a
/// stranger; local recipients are the passwd users plus the aliases in a
/// test file.
fn start_with(main_extra: &str, with_cleanup: bool) -> Smtp {
    let tables = tempfile::tempdir().unwrap();
    let aliases = tables.path().join("aliases");
    fs::write(&aliases, "postmaster: root\nalice: root\nbob: root\n").unwrap();
    let port = free_port();
    let main = format!(
        "mynetworks = \"127.0.0.1/32\"\nalias_maps = \"hash:{}\"\n{main_extra}\n",
        aliases.display()
    );
    let mut inst = Instance::new(&main, &master_table(port, with_cleanup));
    inst.start();
    Smtp {
        inst,
        port,
        _tables: tables,
    }
}

fn start(main_extra: &str) -> Smtp {
    start_with(main_extra, true)
}

/// A raw SMTP client.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(port: u16) -> Client {
        let deadline = Instant::now() + WAIT;
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(Instant::now() < deadline, "connect {port}: {e}");
                    std::thread::sleep(Duration::from_millis(25));
                }
            }
        };
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut c = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let greeting = c.reply();
        assert_eq!(greeting, "220 mail.example.test ESMTP Postern");
        c
    }

    /// One complete reply; lines joined with `\n`, without CRLF.
    fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read reply");
            assert!(n > 0, "connection closed; got so far: {lines:?}");
            assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
            let line = line.trim_end_matches("\r\n").to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Sends a command, returns the reply.
    fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Sends a command; the reply must start with `expect`.
    fn expect(&mut self, line: &str, expect: &str) -> String {
        let reply = self.cmd(line);
        assert!(
            reply.starts_with(expect),
            "{line:?}: expected {expect:?}, got {reply:?}"
        );
        reply
    }

    /// Reads until the server closes the connection.
    fn rest(&mut self) -> String {
        let mut s = String::new();
        let _ = self.reader.read_to_string(&mut s);
        s
    }
}

/// The committed queue files in `incoming/`, with their IDs.
fn incoming(queue_dir: &Path) -> Vec<(String, QueueFile)> {
    let mut files = Vec::new();
    for entry in fs::read_dir(queue_dir.join("incoming")).unwrap() {
        let path = entry.unwrap().path();
        // Hidden names: files being written or kept for reuse.
        if path
            .file_name()
            .unwrap()
            .as_encoded_bytes()
            .starts_with(b".")
        {
            continue;
        }
        if let Ok(qf) = QueueFile::open(&path) {
            let id = path.file_name().unwrap().to_string_lossy().into_owned();
            files.push((id, qf));
        }
    }
    files
}

/// The queue file `id`.
fn queued(smtp: &Smtp, id: &str) -> QueueFile {
    QueueFile::open(&smtp.inst.queue_dir.join("incoming").join(id))
        .unwrap_or_else(|e| panic!("queue file {id}: {e}"))
}

/// The ID from `250 2.0.0 Ok: queued as ID`.
fn queue_id(reply: &str) -> String {
    reply
        .strip_prefix("250 2.0.0 Ok: queued as ")
        .unwrap_or_else(|| panic!("not queued: {reply:?}"))
        .to_string()
}

fn content(qf: &QueueFile) -> String {
    String::from_utf8_lossy(&qf.content_to_vec()).into_owned()
}

fn attr(qf: &QueueFile, name: &str) -> Option<String> {
    qf.attr(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Waits until no file is left in `incoming/` (an abandoned message is
/// removed by cleanup when smtpd hangs up on it).
fn wait_incoming_empty(smtp: &Smtp) {
    let deadline = Instant::now() + WAIT;
    let dir = smtp.inst.queue_dir.join("incoming");
    loop {
        let left: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "incoming not empty: {left:?}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Runs a Python script with the port as `sys.argv[1]`; returns stdout.
fn python(script: &str, port: u16) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(port.to_string())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The smtplib client from Python: an 8-bit message with dot-stuffed
/// lines, and an SMTPUTF8 message with UTF-8 addresses.
#[test]
fn python_smtplib_8bit_smtputf8_and_dot_stuffing() {
    let smtp = start("");
    let script = r#"
import smtplib, sys
port = int(sys.argv[1])
s = smtplib.SMTP("127.0.0.1", port, local_hostname="py.example")
code, msg = s.ehlo()
assert code == 250, (code, msg)
for ext in ["pipelining", "size", "8bitmime", "dsn", "smtputf8", "chunking", "enhancedstatuscodes"]:
    assert s.has_extn(ext), ext
assert s.esmtp_features["size"] == "10240000"
body = ("Subject: caf\u00e9\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "na\u00efve\r\n.leading dot\r\n.\r\n..two dots\r\nlast\r\n").encode("utf-8")
s.sendmail("sender@example.org", ["root@mail.example.test", "alice@mail.example.test"], body,
           mail_options=["BODY=8BITMIME"])
print(s.noop()[0])
u = ("Subject: utf8\r\n\r\nj\u00f6s\u00e9\r\n").encode("utf-8")
s.sendmail("s\u00e9nder@example.org", ["d\u00e9st@remote.example"], u, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
s.quit()
print("ok")
"#;
    let out = python(script, smtp.port);
    assert_eq!(out, "250\nok\n");
    let mut files = incoming(&smtp.inst.queue_dir);
    assert_eq!(files.len(), 2);
    files.sort_by_key(|(_, qf)| qf.recipients().len());
    let (utf8_id, utf8) = &files[0];
    let (_, eight) = &files[1];

    assert_eq!(eight.sender(), "sender@example.org");
    let rcpts: Vec<&str> = eight
        .recipients()
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(rcpts, ["root@mail.example.test", "alice@mail.example.test"]);
    assert_eq!(attr(eight, "client_address").as_deref(), Some("127.0.0.1"));
    assert_eq!(attr(eight, "client_name").as_deref(), Some("unknown"));
    assert_eq!(attr(eight, "helo_name").as_deref(), Some("py.example"));
    assert_eq!(attr(eight, "protocol").as_deref(), Some("ESMTP"));
    assert_eq!(attr(eight, "encoding").as_deref(), Some("8bit"));
    let text = content(eight);
    assert!(
        text.starts_with("Received: from py.example (unknown [127.0.0.1])\n\tby mail.example.test (Postern) with ESMTP id "),
        "{text}"
    );
    assert!(
        text.ends_with(
            "Subject: caf\u{e9}\nContent-Type: text/plain; charset=utf-8\n\
             Content-Transfer-Encoding: 8bit\n\nna\u{ef}ve\n.leading dot\n.\n..two dots\nlast\n"
        ),
        "{text}"
    );

    assert_eq!(utf8.sender(), "s\u{e9}nder@example.org");
    assert_eq!(utf8.recipients()[0].address, "d\u{e9}st@remote.example");
    assert_eq!(attr(utf8, "smtputf8").as_deref(), Some("yes"));
    let text = content(utf8);
    assert!(
        text.contains(&format!(
            "with UTF8SMTP id {utf8_id}\n\tfor <d\u{e9}st@remote.example>;"
        )),
        "{text}"
    );
    assert!(
        text.ends_with("Subject: utf8\n\nj\u{f6}s\u{e9}\n"),
        "{text}"
    );

    let log = smtp
        .inst
        .wait_log("disconnect from unknown[127.0.0.1]", WAIT);
    assert!(log.contains("connect from unknown[127.0.0.1]"), "{log}");
    assert!(
        log.contains(&format!("{utf8_id}: client=unknown[127.0.0.1]")),
        "{log}"
    );
    assert!(
        log.contains(
            "disconnect from unknown[127.0.0.1] ehlo=1 mail=2 rcpt=3 data=2 noop=1 quit=1 commands=10"
        ),
        "{log}"
    );
}

/// A pipelining client sends two whole transactions in one write and gets
/// every reply in order.
#[test]
fn pipelined_transactions() {
    let smtp = start("");
    let mut c = Client::connect(smtp.port);
    c.expect("EHLO pipe.example", "250-mail.example.test\n250-PIPELINING");
    c.send(
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<root@mail.example.test>\r\n\
          RCPT TO:<nosuchuser-xyz@mail.example.test>\r\nDATA\r\n",
    );
    assert_eq!(c.reply(), "250 2.1.0 Ok");
    assert_eq!(c.reply(), "250 2.1.5 Ok");
    assert_eq!(
        c.reply(),
        "550 5.1.1 <nosuchuser-xyz@mail.example.test>: Recipient address rejected: \
         User unknown in local recipient table"
    );
    assert_eq!(c.reply(), "354 End data with <CR><LF>.<CR><LF>");
    c.send(
        b"Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<bob@mail.example.test>\r\n\
          DATA\r\nSubject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n",
    );
    let first = queue_id(&c.reply());
    assert_eq!(c.reply(), "250 2.1.0 Ok");
    assert_eq!(c.reply(), "250 2.1.5 Ok");
    assert_eq!(c.reply(), "354 End data with <CR><LF>.<CR><LF>");
    let second = queue_id(&c.reply());
    assert_eq!(c.reply(), "221 2.0.0 Bye");
    assert_eq!(c.rest(), "");

    let one = queued(&smtp, &first);
    assert_eq!(one.recipients().len(), 1);
    assert!(content(&one).ends_with("Subject: one\n\nfirst\n"));
    let two = queued(&smtp, &second);
    assert_eq!(two.sender(), "");
    assert_eq!(two.recipients()[0].address, "bob@mail.example.test");
    assert!(content(&two).ends_with("Subject: two\n\nsecond\n"));
    let log = smtp.inst.wait_log("disconnect from", WAIT);
    assert!(
        log.contains(
            "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.1.1 <nosuchuser-xyz@mail.example.test>: \
             Recipient address rejected: User unknown in local recipient table; \
             from=<a@example.org> to=<nosuchuser-xyz@mail.example.test> proto=ESMTP helo=<pipe.example>"
        ) || log.contains(&format!(
            "{first}: reject: RCPT from unknown[127.0.0.1]: 550 5.1.1 <nosuchuser-xyz@mail.example.test>: \
             Recipient address rejected: User unknown in local recipient table; \
             from=<a@example.org> to=<nosuchuser-xyz@mail.example.test> proto=ESMTP helo=<pipe.example>"
        )),
        "{log}"
    );
    assert!(
        log.contains("ehlo=1 mail=2 rcpt=2/3 data=2 quit=1 commands=8/9"),
        "{log}"
    );
}

/// BDAT (CHUNKING) over a raw socket: no dot-stuffing, chunks split
/// anywhere, commands after the chunk.
#[test]
fn bdat_chunks() {
    let smtp = start("");
    let mut c = Client::connect(smtp.port);
    c.expect("EHLO chunky.example", "250-");
    c.expect("MAIL FROM:<a@example.org>", "250 2.1.0 Ok");
    c.expect("RCPT TO:<root@mail.example.test>", "250 2.1.5 Ok");
    c.send(b"BDAT 19\r\nSubject: chunk");
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"s\r\n\r\n");
    assert_eq!(c.reply(), "250 2.0.0 Ok: 19 bytes");
    let last = b".line one\r\n.\r\nMAIL FROM:<x@y.z>\r\n";
    c.send(format!("BDAT {} LAST\r\n", last.len()).as_bytes());
    c.send(last);
    let id = queue_id(&c.reply());
    // A refused chunk's octets are drained, not read as commands; the
    // reply comes after them.
    c.send(b"BDAT 3 LAST\r\nxyz");
    assert_eq!(c.reply(), "503 5.5.1 Error: need RCPT command");
    c.expect("QUIT", "221 2.0.0 Bye");
    let qf = queued(&smtp, &id);
    assert!(
        content(&qf).ends_with("Subject: chunks\n\n.line one\n.\nMAIL FROM:<x@y.z>\n"),
        "{}",
        content(&qf)
    );
    let log = smtp.inst.wait_log("disconnect from", WAIT);
    assert!(log.contains("bdat=2/3"), "{log}");
}

/// Every reply path a client can reach without special configuration.
#[test]
fn reply_codes() {
    // VRFY is off by default; turn it on to test its replies.
    let smtp = start("smtpd_recipient_limit = 2\ndisable_vrfy_command = false");
    let mut c = Client::connect(smtp.port);
    c.expect("HELO", "501 Syntax: HELO hostname");
    c.expect("MAIL FROM:<a@example.org>", "250 2.1.0 Ok");
    c.expect(
        "MAIL FROM:<a@example.org>",
        "503 5.5.1 Error: nested MAIL command",
    );
    c.expect("DATA", "554 5.5.1 Error: no valid recipients");
    c.expect("RSET", "250 2.0.0 Ok");
    c.expect(
        "RCPT TO:<root@mail.example.test>",
        "503 5.5.1 Error: need MAIL command",
    );
    c.expect("DATA", "503 5.5.1 Error: need RCPT command");
    c.expect("XYZZY", "502 5.5.2 Error: command not recognized");
    c.expect("STARTTLS", "502 5.5.1 Error: command not implemented");
    c.expect("HELP", "214 2.0.0 Commands:");
    assert_eq!(c.cmd("HELO client.example"), "250 mail.example.test");
    let ehlo = c.cmd("EHLO client.example");
    assert_eq!(
        ehlo,
        "250-mail.example.test\n250-PIPELINING\n250-SIZE 10240000\n250-VRFY\n\
         250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250-DSN\n250-SMTPUTF8\n250 CHUNKING"
    );
    c.expect("AUTH PLAIN", "503 5.5.1 Error: authentication not enabled");
    c.expect("VRFY root", "252 2.0.0 root");
    c.expect(
        "VRFY nosuchuser-xyz",
        "550 5.1.1 <nosuchuser-xyz>: Recipient address rejected: User unknown in local recipient table",
    );
    c.expect(
        "MAIL FROM:<a@example.org> SIZE=99999999",
        "552 5.3.4 Message size exceeds fixed limit",
    );
    c.expect(
        "MAIL FROM:<a@example.org> FOO=1",
        "555 5.5.4 Unsupported option: FOO=1",
    );
    c.expect(
        "MAIL FROM:<bad address>",
        "501 5.1.7 Bad sender address syntax",
    );
    c.expect(
        "MAIL FROM:<a@example.org> RET=FULL ENVID=xyz",
        "250 2.1.0 Ok",
    );
    c.expect(
        "RCPT TO:<j\u{f6}@mail.example.test>",
        "553 5.6.7 Must declare SMTPUTF8 to send unicode address",
    );
    c.expect("RCPT TO:<>", "501 5.1.3 Bad recipient address syntax");
    c.expect(
        "RCPT TO:<nosuchuser-xyz@mail.example.test>",
        "550 5.1.1 <nosuchuser-xyz@mail.example.test>: Recipient address rejected: User unknown in local recipient table",
    );
    c.expect("RCPT TO:<Postmaster>", "250 2.1.5 Ok");
    c.expect(
        "RCPT TO:<alice@mail.example.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;alice+2Bx@example.org",
        "250 2.1.5 Ok",
    );
    c.expect(
        "RCPT TO:<bob@mail.example.test>",
        "452 4.5.3 Error: too many recipients",
    );
    c.send(b"BDAT 1 LAST\r\nx");
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued as "));
    c.expect("NOOP", "250 2.0.0 Ok");
    c.expect(
        "GET / HTTP/1.1",
        "221 2.7.0 Error: I can break rules, too. Goodbye.",
    );
    assert_eq!(c.rest(), "");
    let (_, qf) = incoming(&smtp.inst.queue_dir).pop().expect("one message");
    let rcpts: Vec<&str> = qf.recipients().iter().map(|r| r.address.as_str()).collect();
    assert_eq!(
        rcpts,
        ["Postmaster@mail.example.test", "alice@mail.example.test"]
    );
    let alice = &qf.recipients()[1];
    assert_eq!(
        alice.dsn_orcpt.as_deref(),
        Some("rfc822;alice+x@example.org")
    );
    assert!(alice.notify.is_some());
    assert_eq!(attr(&qf, "ret").as_deref(), Some("FULL"));
    assert_eq!(attr(&qf, "envid").as_deref(), Some("xyz"));
    let log = smtp.inst.wait_log("disconnect from", WAIT);
    assert!(
        log.contains("warning: non-SMTP command from unknown[127.0.0.1]: GET / HTTP/1.1"),
        "{log}"
    );
}

/// `disable_vrfy_command = yes` and `smtpd_helo_required = yes`.
#[test]
fn vrfy_disabled_and_helo_required() {
    let smtp = start("disable_vrfy_command = true\nsmtpd_helo_required = true");
    let mut c = Client::connect(smtp.port);
    c.expect("VRFY root", "502 5.5.1 VRFY command is disabled");
    c.expect(
        "MAIL FROM:<a@example.org>",
        "503 5.5.1 Error: send HELO/EHLO first",
    );
    assert!(!c.expect("EHLO x.example", "250-").contains("VRFY"));
    c.expect("MAIL FROM:<a@example.org>", "250 2.1.0 Ok");
}

/// `smtpd_forbid_bare_newline = reject` and an overlong command line.
#[test]
fn bare_newline_reject_and_long_lines() {
    let smtp = start("smtpd_forbid_bare_newline = \"reject\"");
    let mut c = Client::connect(smtp.port);
    c.send(b"NOOP\n");
    assert_eq!(c.reply(), "550 5.5.2 Error: bare <LF> received");
    c.expect(
        &format!("NOOP {}", "x".repeat(3000)),
        "500 5.5.2 Error: line too long",
    );
    c.expect("EHLO lf.example", "250-");
    c.expect("MAIL FROM:<a@example.org>", "250");
    c.expect("RCPT TO:<root@mail.example.test>", "250");
    c.expect("DATA", "354");
    c.send(b"Subject: lf\r\n\r\nbare\nline\r\n.\r\n");
    assert_eq!(c.reply(), "550 5.5.2 Error: bare <LF> received");
    c.expect("QUIT", "221");
    wait_incoming_empty(&smtp);
    let log = smtp.inst.wait_log("disconnect from", WAIT);
    assert!(
        log.contains("warning: unknown[127.0.0.1]: request longer than 2048"),
        "{log}"
    );
}

/// Oversize mail: refused at MAIL by SIZE=, and refused at the end of
/// DATA by actual size, leaving no queue file behind.
#[test]
fn oversize_mail() {
    let smtp = start("message_size_limit = 2000");
    let mut c = Client::connect(smtp.port);
    assert!(
        c.expect("EHLO big.example", "250-")
            .contains("250-SIZE 2000")
    );
    c.expect(
        "MAIL FROM:<a@example.org> SIZE=2001",
        "552 5.3.4 Message size exceeds fixed limit",
    );
    c.expect("MAIL FROM:<a@example.org> SIZE=1000", "250 2.1.0 Ok");
    c.expect("RCPT TO:<root@mail.example.test>", "250 2.1.5 Ok");
    c.expect("DATA", "354");
    let line = format!("{}\r\n", "x".repeat(98));
    for _ in 0..30 {
        c.send(line.as_bytes());
    }
    assert_eq!(c.cmd("."), "552 5.3.4 Message size exceeds fixed limit");
    // BDAT too.
    c.expect("MAIL FROM:<a@example.org>", "250 2.1.0 Ok");
    c.expect("RCPT TO:<root@mail.example.test>", "250 2.1.5 Ok");
    c.send(format!("BDAT 3000 LAST\r\n{}", "y".repeat(3000)).as_bytes());
    assert_eq!(c.reply(), "552 5.3.4 Chunk exceeds message size limit");
    c.expect("QUIT", "221");
    wait_incoming_empty(&smtp);
    let log = smtp.inst.wait_log("disconnect from", WAIT);
    assert!(
        log.contains(
            "NOQUEUE: reject: MAIL from unknown[127.0.0.1]: 552 5.3.4 Message size exceeds fixed limit; \
             proto=ESMTP helo=<big.example>"
        ),
        "{log}"
    );
    assert!(
        log.contains("reject: END-OF-MESSAGE from unknown[127.0.0.1]: 552 5.3.4"),
        "{log}"
    );
}

/// SMTP smuggling: `<LF>.<LF>`, `<CR>.<CR><LF>` and `<LF>.<CR><LF>` inside
/// a message do not end it, and a smuggled second transaction stays
/// message content.
#[test]
fn smuggling_variants_do_not_end_data() {
    let smtp = start("");
    for variant in ["\n.\n", "\r.\r\n", "\n.\r\n"] {
        let mut c = Client::connect(smtp.port);
        c.expect("EHLO smuggler.example", "250-");
        c.expect("MAIL FROM:<a@example.org>", "250");
        c.expect("RCPT TO:<root@mail.example.test>", "250");
        c.expect("DATA", "354");
        c.send(
            format!(
                "Subject: hi\r\n\r\nbody{variant}MAIL FROM:<evil@example.org>\r\n\
                 RCPT TO:<alice@mail.example.test>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n"
            )
            .as_bytes(),
        );
        let id = queue_id(&c.reply());
        assert_eq!(c.reply(), "221 2.0.0 Bye", "{variant:?}");
        let qf = queued(&smtp, &id);
        assert_eq!(qf.recipients().len(), 1, "{variant:?}");
        assert_eq!(qf.sender(), "a@example.org");
        let text = content(&qf);
        assert!(
            text.contains(
                "MAIL FROM:<evil@example.org>\nRCPT TO:<alice@mail.example.test>\nDATA\nsmuggled\n"
            ),
            "{variant:?}: {text:?}"
        );
    }
    assert_eq!(incoming(&smtp.inst.queue_dir).len(), 3);
}

/// An open-relay attempt from a client outside mynetworks (bound to
/// 127.0.0.2): the default `defer_unauth_destination` answers 454, and
/// `reject_unauth_destination` 554; local recipients stay reachable.
#[test]
fn open_relay_attempt_from_outside_mynetworks() {
    let script = r#"
import smtplib, sys
port = int(sys.argv[1])
s = smtplib.SMTP("127.0.0.1", port, local_hostname="stranger.example", source_address=("127.0.0.2", 0))
s.ehlo()
print(s.mail("a@example.org"))
print(s.rcpt("victim@remote.example"))
print(s.rcpt("root@mail.example.test"))
s.quit()
"#;
    let smtp = start("");
    let out = python(script, smtp.port);
    assert_eq!(
        out,
        "(250, b'2.1.0 Ok')\n(454, b'4.7.1 <victim@remote.example>: Relay access denied')\n\
         (250, b'2.1.5 Ok')\n"
    );
    let log = smtp
        .inst
        .wait_log("disconnect from unknown[127.0.0.2]", WAIT);
    assert!(log.contains("connect from unknown[127.0.0.2]"), "{log}");
    assert!(
        log.contains(
            "NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 454 4.7.1 <victim@remote.example>: \
             Relay access denied; from=<a@example.org> to=<victim@remote.example> proto=ESMTP \
             helo=<stranger.example>"
        ),
        "{log}"
    );

    let smtp = start(
        "smtpd_relay_restrictions = \"permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\"",
    );
    let out = python(script, smtp.port);
    assert_eq!(
        out,
        "(250, b'2.1.0 Ok')\n(554, b'5.7.1 <victim@remote.example>: Relay access denied')\n\
         (250, b'2.1.5 Ok')\n"
    );
    // From inside mynetworks the same relay attempt is fine.
    let mut c = Client::connect(smtp.port);
    c.expect("EHLO friend.example", "250-");
    c.expect("MAIL FROM:<a@example.org>", "250");
    c.expect("RCPT TO:<victim@remote.example>", "250 2.1.5 Ok");
}

/// relay_domains are relayed for outside clients, and relay_recipient_maps
/// turns away the recipients it does not list.
#[test]
fn relay_domains_and_relay_recipient_maps() {
    let smtp = start(
        "relay_domains = \"relay.example\"\n\
         relay_recipient_maps = \"inline:{known@relay.example=ok}\"",
    );
    let script = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="stranger.example", source_address=("127.0.0.2", 0))
s.ehlo()
print(s.mail("a@example.org"))
print(s.rcpt("known@relay.example"))
print(s.rcpt("unknown@relay.example"))
print(s.rcpt("victim@remote.example"))
s.quit()
"#;
    let out = python(script, smtp.port);
    assert_eq!(
        out,
        "(250, b'2.1.0 Ok')\n(250, b'2.1.5 Ok')\n\
         (550, b'5.1.1 <unknown@relay.example>: Recipient address rejected: \
         User unknown in relay recipient table')\n\
         (454, b'4.7.1 <victim@remote.example>: Relay access denied')\n"
    );
}

/// swaks, when installed: a plain message and a pipelined one.
#[test]
fn swaks_sends_mail() {
    if !installed("swaks") {
        eprintln!("swaks not installed: skipped (.ci/run installs it)");
        return;
    }
    let smtp = start("");
    for extra in [&[][..], &["--pipeline"][..]] {
        let out = Command::new("swaks")
            .args(["--server", &format!("127.0.0.1:{}", smtp.port)])
            .args([
                "--from",
                "swaks@example.org",
                "--to",
                "root@mail.example.test",
            ])
            .args(["--helo", "swaks.example", "--header", "Subject: from swaks"])
            .args(["--body", "Hello from swaks.\n.dot line\n"])
            .args(extra)
            .output()
            .expect("run swaks");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{extra:?}: {stdout}");
        assert!(stdout.contains("<-  250 2.0.0 Ok: queued as "), "{stdout}");
    }
    let files = incoming(&smtp.inst.queue_dir);
    assert_eq!(files.len(), 2);
    for (_, qf) in files {
        assert_eq!(qf.sender(), "swaks@example.org");
        let text = content(&qf);
        assert!(text.contains("Subject: from swaks\n"), "{text}");
        assert!(text.contains("Hello from swaks.\n.dot line\n"), "{text}");
        assert_eq!(attr(&qf, "helo_name").as_deref(), Some("swaks.example"));
    }
}

/// curl's SMTP client, when installed.
#[test]
fn curl_sends_mail() {
    if !installed("curl") {
        eprintln!("curl not installed: skipped (.ci/run installs it)");
        return;
    }
    let smtp = start("");
    let mail = smtp.inst.dir.path().join("mail.txt");
    fs::write(
        &mail,
        "Subject: from curl\r\n\r\nHello from curl.\r\n.hidden dot\r\n",
    )
    .unwrap();
    let out = Command::new("curl")
        .args(["--silent", "--show-error"])
        .arg(format!("smtp://127.0.0.1:{}/curl.example", smtp.port))
        .args(["--mail-from", "curl@example.org"])
        .args(["--mail-rcpt", "alice@mail.example.test"])
        .args(["--mail-rcpt", "bob@mail.example.test"])
        .arg("--upload-file")
        .arg(&mail)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, qf) = incoming(&smtp.inst.queue_dir).pop().expect("queued");
    assert_eq!(qf.sender(), "curl@example.org");
    assert_eq!(qf.recipients().len(), 2);
    assert_eq!(attr(&qf, "helo_name").as_deref(), Some("curl.example"));
    assert!(content(&qf).ends_with("Subject: from curl\n\nHello from curl.\n.hidden dot\n"));
}

/// Without cleanup the recipient cannot be accepted: 451, and the
/// connection goes on.
#[test]
fn cleanup_unavailable_is_a_temporary_error() {
    let smtp = start_with("", false);
    let mut c = Client::connect(smtp.port);
    c.expect("EHLO x.example", "250-");
    c.expect("MAIL FROM:<a@example.org>", "250");
    c.expect(
        "RCPT TO:<root@mail.example.test>",
        "451 4.3.0 Error: queue file write error",
    );
    c.expect("QUIT", "221");
    smtp.inst
        .wait_log("warning: connect to service cleanup", WAIT);
}

/// `smtpd_timeout`: an idle client gets 421 and is logged.
#[test]
fn idle_client_times_out() {
    let smtp = start("smtpd_timeout = \"1s\"");
    let mut c = Client::connect(smtp.port);
    c.expect("EHLO slow.example", "250-");
    c.expect("MAIL FROM:<a@example.org>", "250");
    assert_eq!(
        c.reply(),
        "421 4.4.2 mail.example.test Error: timeout exceeded"
    );
    assert_eq!(c.rest(), "");
    let log = smtp.inst.wait_log("disconnect from", WAIT);
    assert!(
        log.contains("timeout after MAIL from unknown[127.0.0.1]"),
        "{log}"
    );
    assert!(log.contains("ehlo=1 mail=1 commands=2"), "{log}");
}

/// `smtpd_hard_error_limit`: 421 and disconnect.
#[test]
fn too_many_errors() {
    let smtp = start(
        "smtpd_hard_error_limit = 3\nsmtpd_soft_error_limit = 1\nsmtpd_error_sleep_time = \"0s\"",
    );
    let mut c = Client::connect(smtp.port);
    for _ in 0..3 {
        c.expect("BOGUS", "502 5.5.2 Error: command not recognized");
    }
    // The third error hits the limit: 421 without waiting for more.
    assert_eq!(
        c.reply(),
        "421 4.7.0 mail.example.test Error: too many errors"
    );
    assert_eq!(c.rest(), "");
    let log = smtp.inst.wait_log("disconnect from", WAIT);
    assert!(
        log.contains("too many errors after UNKNOWN from unknown[127.0.0.1]"),
        "{log}"
    );
    assert!(log.contains("unknown=0/3 commands=0/3"), "{log}");
}

/// A client that hangs up in the middle of DATA: logged, and the
/// unfinished queue file is removed.
#[test]
fn lost_connection_during_data() {
    let smtp = start("");
    let mut c = Client::connect(smtp.port);
    c.expect("EHLO gone.example", "250-");
    c.expect("MAIL FROM:<a@example.org>", "250");
    c.expect("RCPT TO:<root@mail.example.test>", "250");
    c.expect("DATA", "354");
    c.send(b"Subject: unfinished\r\n\r\nhalf a messa");
    drop(c);
    let log = smtp.inst.wait_log("disconnect from", WAIT);
    assert!(
        log.contains("lost connection after DATA (35 bytes) from unknown[127.0.0.1]"),
        "{log}"
    );
    assert!(
        log.contains(
            "disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4"
        ),
        "{log}"
    );
    wait_incoming_empty(&smtp);
}

/// One message with `c` (already past EHLO); returns its queue ID.
fn send_one(c: &mut Client, subject: &str) -> String {
    c.expect("MAIL FROM:<a@example.org>", "250 2.1.0");
    c.expect("RCPT TO:<root@mail.example.test>", "250 2.1.5");
    c.expect("DATA", "354");
    queue_id(&c.cmd(&format!("Subject: {subject}\r\n\r\nbody\r\n.")))
}

/// A session that sends message after message keeps its cleanup
/// connection (`flags::KEEP`), and gives it back as soon as it pauses:
/// with a single cleanup process, a second session that starts while the
/// first one idles still gets its mail queued.
#[test]
fn a_busy_session_keeps_cleanup_and_an_idle_one_gives_it_back() {
    let port = free_port();
    let table = master_table(port, true).replace(
        "maxproc = 8\ncommand = \"cleanup\"",
        "maxproc = 1\ncommand = \"cleanup\"",
    );
    let mut inst = Instance::new("mynetworks = \"127.0.0.1/32\"\n", &table);
    inst.start();
    let smtp = Smtp {
        inst,
        port,
        _tables: tempfile::tempdir().unwrap(),
    };
    let mut a = Client::connect(port);
    a.expect("EHLO a.example", "250-");
    let one = send_one(&mut a, "one");
    let two = send_one(&mut a, "two");
    // a idles: b's message needs the one cleanup process.
    let mut b = Client::connect(port);
    b.expect("EHLO b.example", "250-");
    let three = send_one(&mut b, "three");
    b.expect("QUIT", "221");
    let four = send_one(&mut a, "four");
    // An abandoned transaction drops its connection (and its file); the
    // next message gets a new one.
    a.expect("MAIL FROM:<a@example.org>", "250");
    a.expect("RCPT TO:<root@mail.example.test>", "250");
    a.expect("RSET", "250");
    let five = send_one(&mut a, "five");
    a.expect("QUIT", "221");

    let ids = [&one, &two, &three, &four, &five];
    for (id, subject) in ids.iter().zip(["one", "two", "three", "four", "five"]) {
        let qf = queued(&smtp, id);
        assert!(
            content(&qf).contains(&format!("Subject: {subject}\n\nbody\n")),
            "{id}"
        );
    }
    // Distinct files, and nothing else left behind (the abandoned one is
    // gone, no file waits half-made).
    let mut listed: Vec<String> = fs::read_dir(smtp.inst.queue_dir.join("incoming"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    let mut expected: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    let log = smtp.inst.wait_log_count("disconnect from", 2, WAIT);
    assert!(!log.contains("warning"), "{log}");
}

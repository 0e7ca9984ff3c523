//! smtpd with TLS, through master with the real cleanup and
//! trivial-rewrite: STARTTLS from Python's smtplib (OpenSSL), swaks,
//! curl and Postern's own TLS client (`postern-tls`), the `encrypt`
//! level, the STARTTLS command injection (CVE-2011-0411), wrapper mode
//! (port 465 style) and a failed handshake. Certificates are made at
//! test time with rcgen.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use postern_queue::QueueFile;
use postern_tests::tls::{TestCa, TestCert, self_signed};
use postern_tests::{Instance, free_port, installed};
use postern_tls::MaybeTls;
use postern_tls::client::{ClientTls, Policy, server_name};
use postern_tls::dane::Tlsa;
use postern_tls::stream::connect_buffered;

const WAIT: Duration = Duration::from_secs(20);

/// A running instance: smtpd on `port` (and `smtps` in wrapper mode on
/// `smtps_port`), with a self-signed certificate for mail.example.test.
struct Tls {
    inst: Instance,
    port: u16,
    smtps_port: u16,
    cert: TestCert,
    _files: tempfile::TempDir,
}

fn start(main_extra: &str) -> Tls {
    start_with_cert(main_extra, |dir| self_signed(dir, "mail.example.test"))
}

fn start_with_cert(main_extra: &str, make_cert: impl FnOnce(&Path) -> TestCert) -> Tls {
    let files = tempfile::tempdir().unwrap();
    let aliases = files.path().join("aliases");
    fs::write(&aliases, "postmaster: root\nalice: root\n").unwrap();
    let cert = make_cert(files.path());
    let (port, smtps_port) = (free_port(), free_port());
    let main = format!(
        "mynetworks = \"127.0.0.1/32\"\nalias_maps = \"hash:{}\"\n\
         smtpd_tls_cert_file = \"{}\"\nsmtpd_tls_key_file = \"{}\"\n\
         smtpd_tls_received_header = true\nsmtpd_tls_loglevel = 1\n{main_extra}\n",
        aliases.display(),
        cert.cert.display(),
        cert.key.display()
    );
    let master = format!(
        "[smtp]\ntype = \"inet\"\nlisten = \"127.0.0.1:{port}\"\nmaxproc = 4\ncommand = \"smtpd\"\n\n\
         [smtps]\ntype = \"inet\"\nlisten = \"127.0.0.1:{smtps_port}\"\nmaxproc = 2\n\
         command = \"smtpd\"\nargs = [\"-o\", \"smtpd_tls_wrappermode=yes\"]\n\n\
         [rewrite]\ntype = \"unix\"\nmaxproc = 4\ncommand = \"trivial-rewrite\"\n\n\
         [cleanup]\ntype = \"unix\"\nmaxproc = 4\ncommand = \"cleanup\"\n"
    );
    let mut inst = Instance::new(&main, &master);
    inst.start();
    Tls {
        inst,
        port,
        smtps_port,
        cert,
        _files: files,
    }
}

fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + WAIT;
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(WAIT)).unwrap();
                return s;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "connect {port}: {e}");
                std::thread::sleep(Duration::from_millis(25));
            }
        }
    }
}

/// An SMTP client over `postern-tls` (the library the smtp delivery
/// agent uses), accepting any certificate (`may`).
struct Client {
    r: BufReader<MaybeTls<TcpStream>>,
}

impl Client {
    fn plain(port: u16) -> Client {
        let mut c = Client {
            r: BufReader::new(MaybeTls::Plain(connect(port))),
        };
        assert_eq!(c.reply(), "220 mail.example.test ESMTP Postern");
        c
    }

    /// Wrapper mode: TLS before the greeting.
    fn wrapped(port: u16) -> Client {
        let stream = MaybeTls::Plain(connect(port))
            .connect(config(), server_name("mail.example.test").unwrap())
            .expect("handshake");
        let mut c = Client {
            r: BufReader::new(stream),
        };
        assert_eq!(c.reply(), "220 mail.example.test ESMTP Postern");
        c
    }

    fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.r.read_line(&mut line).expect("read reply");
            assert!(n > 0, "connection closed; got so far: {lines:?}");
            let line = line.trim_end_matches("\r\n").to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        let w = self.r.get_mut();
        w.write_all(bytes).expect("write");
        w.flush().expect("flush");
    }

    fn expect(&mut self, line: &str, expect: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        let reply = self.reply();
        assert!(
            reply.starts_with(expect),
            "{line:?}: expected {expect:?}, got {reply:?}"
        );
        reply
    }

    /// STARTTLS and the handshake.
    fn starttls(self) -> Client {
        let mut c = self;
        c.expect("STARTTLS", "220 2.0.0 Ready to start TLS");
        let r = connect_buffered(c.r, config(), server_name("mail.example.test").unwrap())
            .expect("handshake");
        Client { r }
    }

    fn info(&self) -> String {
        self.r.get_ref().info().expect("TLS active").to_string()
    }
}

fn config() -> std::sync::Arc<postern_tls::rustls::ClientConfig> {
    let versions = postern_tls::parse_protocols("smtp_tls_protocols", "").unwrap();
    ClientTls::new(&versions, None)
        .unwrap()
        .config(&Policy::Unauthenticated)
        .unwrap()
}

fn incoming(queue_dir: &Path) -> Vec<QueueFile> {
    let deadline = Instant::now() + WAIT;
    loop {
        let files: Vec<QueueFile> = fs::read_dir(queue_dir.join("incoming"))
            .unwrap()
            .map(|e| e.unwrap())
            // Hidden names: files being written or kept for reuse.
            .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
            .filter_map(|e| QueueFile::open(&e.path()).ok())
            .collect();
        if !files.is_empty() || Instant::now() > deadline {
            return files;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn content(qf: &QueueFile) -> String {
    String::from_utf8_lossy(&qf.content_to_vec()).into_owned()
}

/// Python's smtplib (OpenSSL underneath) verifies the certificate against
/// the test CA file, sends mail over TLS; the queue file's Received:
/// header and the log name the same cipher OpenSSL reports.
#[test]
fn python_smtplib_starttls() {
    let t = start("smtpd_tls_security_level = \"may\"");
    let script = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="py.example", timeout=20)
s.ehlo()
assert s.has_extn("starttls")
print(s.starttls(context=ctx)[0])
s.ehlo()
assert not s.has_extn("starttls"), "STARTTLS announced inside TLS"
print(s.sock.version(), s.sock.cipher()[0])
s.sendmail("py@example.org", ["alice@mail.example.test"], b"Subject: tls\r\n\r\nover TLS\r\n")
s.quit()
"#;
    let out = Command::new("python3")
        .args(["-c", script, &t.port.to_string()])
        .arg(&t.cert.cert)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("220"));
    let (version, cipher) = lines.next().unwrap().split_once(' ').unwrap();
    assert_eq!(version, "TLSv1.3");
    let files = incoming(&t.inst.queue_dir);
    assert_eq!(files.len(), 1);
    let text = content(&files[0]);
    let using = format!("\t(using TLSv1.3 with cipher {cipher} (");
    assert!(text.contains(&using), "{text}");
    assert!(
        text.contains("\t(No client certificate requested)\n"),
        "{text}"
    );
    assert!(text.contains(") with ESMTPS id "), "{text}");
    assert!(text.ends_with("Subject: tls\n\nover TLS\n"), "{text}");
    t.inst.wait_log(
        &format!(
            "Anonymous TLS connection established from unknown[127.0.0.1]: TLSv1.3 with cipher {cipher}"
        ),
        WAIT,
    );
    t.inst.wait_log(
        "disconnect from unknown[127.0.0.1] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7",
        WAIT,
    );
}

/// swaks --tls (OpenSSL through Net::SSLeay).
#[test]
fn swaks_starttls() {
    if !installed("swaks") {
        eprintln!("swaks not installed: skipped (.ci/run installs it)");
        return;
    }
    let t = start("smtpd_tls_security_level = \"may\"");
    let out = Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{}", t.port), "--tls"])
        .args([
            "--from",
            "swaks@example.org",
            "--to",
            "alice@mail.example.test",
        ])
        .args(["--helo", "swaks.example", "--header", "Subject: swaks tls"])
        .output()
        .expect("run swaks");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("<-  220 2.0.0 Ready to start TLS"),
        "{stdout}"
    );
    assert!(
        stdout.contains("=== TLS started with cipher TLSv1.3"),
        "{stdout}"
    );
    assert!(stdout.contains("<~  250 2.0.0 Ok: queued as "), "{stdout}");
    let files = incoming(&t.inst.queue_dir);
    assert!(content(&files[0]).contains(") with ESMTPS id "));
}

/// curl --ssl-reqd: STARTTLS or fail.
#[test]
fn curl_ssl_reqd() {
    if !installed("curl") {
        eprintln!("curl not installed: skipped (.ci/run installs it)");
        return;
    }
    let t = start("smtpd_tls_security_level = \"encrypt\"");
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("msg");
    fs::write(
        &msg,
        "From: c@example.org\r\nSubject: curl tls\r\n\r\nHi.\r\n",
    )
    .unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--ssl-reqd", "-k", "--max-time", "20"])
        .arg(format!("smtp://127.0.0.1:{}/curl.example", t.port))
        .args([
            "--mail-from",
            "c@example.org",
            "--mail-rcpt",
            "alice@mail.example.test",
        ])
        .arg("-T")
        .arg(&msg)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = incoming(&t.inst.queue_dir);
    assert_eq!(files.len(), 1);
    let text = content(&files[0]);
    assert!(text.contains("\t(using TLSv1.3 with cipher TLS_"), "{text}");
    assert!(text.contains("Subject: curl tls\n"), "{text}");
}

/// `encrypt`: nothing but EHLO/HELO, NOOP, QUIT and STARTTLS before TLS.
#[test]
fn encrypt_refuses_mail_before_starttls() {
    let t = start("smtpd_tls_security_level = \"encrypt\"");
    let mut c = Client::plain(t.port);
    let ehlo = c.expect("EHLO client.example", "250-");
    assert!(ehlo.contains("\n250-STARTTLS\n"), "{ehlo}");
    c.expect(
        "MAIL FROM:<a@example.org>",
        "530 5.7.0 Must issue a STARTTLS command first",
    );
    c.expect("NOOP", "250");
    let mut c = c.starttls();
    assert!(
        c.info().starts_with("TLSv1.3 with cipher TLS_"),
        "{}",
        c.info()
    );
    let ehlo = c.expect("EHLO client.example", "250-");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    c.expect("MAIL FROM:<a@example.org>", "250 2.1.0 Ok");
    c.expect("RCPT TO:<alice@mail.example.test>", "250 2.1.5 Ok");
    c.expect("DATA", "354");
    c.expect(
        "Subject: x\r\n\r\nencrypted\r\n.",
        "250 2.0.0 Ok: queued as ",
    );
    c.expect("QUIT", "221");
    assert_eq!(incoming(&t.inst.queue_dir).len(), 1);
    t.inst.wait_log(
        "disconnect from unknown[127.0.0.1] ehlo=2 starttls=1 mail=1/2 rcpt=1 data=1 noop=1 \
         quit=1 commands=8/9",
        WAIT,
    );
}

/// CVE-2011-0411: commands pipelined behind STARTTLS in plaintext are
/// thrown away, never run inside the TLS session.
#[test]
fn plaintext_injected_after_starttls_is_not_executed() {
    let t = start("smtpd_tls_security_level = \"may\"");
    let mut c = Client::plain(t.port);
    c.expect("EHLO client.example", "250-");
    c.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.org>\r\n");
    assert_eq!(c.reply(), "220 2.0.0 Ready to start TLS");
    let r = connect_buffered(c.r, config(), server_name("mail.example.test").unwrap())
        .expect("handshake");
    let mut c = Client { r };
    // Had RSET run, its 250 would come first.
    let ehlo = c.expect("EHLO client.example", "250-mail.example.test\n");
    assert!(ehlo.ends_with("250 CHUNKING"), "{ehlo}");
    c.expect(
        "RCPT TO:<alice@mail.example.test>",
        "503 5.5.1 Error: need MAIL command",
    );
    c.expect("QUIT", "221");
    t.inst.wait_log(
        "improper command pipelining after STARTTLS from unknown[127.0.0.1]: RSET",
        WAIT,
    );
    t.inst.wait_log(
        "disconnect from unknown[127.0.0.1] ehlo=2 starttls=1 rcpt=0/1 quit=1 commands=4/5",
        WAIT,
    );
}

/// `smtpd_tls_wrappermode = yes` from master.toml: TLS from the first
/// byte; STARTTLS is then refused.
#[test]
fn wrapper_mode() {
    let t = start("smtpd_tls_security_level = \"may\"");
    let mut c = Client::wrapped(t.smtps_port);
    let ehlo = c.expect("EHLO client.example", "250-");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    c.expect("STARTTLS", "554 5.5.1 Error: TLS already active");
    c.expect("MAIL FROM:<a@example.org>", "250");
    c.expect("RCPT TO:<alice@mail.example.test>", "250");
    c.expect("DATA", "354");
    c.expect(
        "Subject: smtps\r\n\r\nwrapped\r\n.",
        "250 2.0.0 Ok: queued as ",
    );
    c.expect("QUIT", "221");
    let files = incoming(&t.inst.queue_dir);
    assert!(content(&files[0]).contains(") with ESMTPS id "));
    // A plaintext client on the wrapper port gets nothing it can use.
    let mut s = connect(t.smtps_port);
    s.write_all(b"EHLO plain.example\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("220 "), "{buf:?}");
    t.inst
        .wait_log("SSL_accept error from unknown[127.0.0.1]", WAIT);
}

/// A client that says STARTTLS and then sends garbage: the handshake
/// fails, the session ends and is logged.
#[test]
fn failed_handshake_is_logged() {
    let t = start("smtpd_tls_security_level = \"may\"");
    let mut c = Client::plain(t.port);
    c.expect("EHLO client.example", "250-");
    c.expect("STARTTLS", "220");
    c.send(b"this is not a TLS ClientHello\r\n");
    t.inst
        .wait_log("SSL_accept error from unknown[127.0.0.1]", WAIT);
    t.inst.wait_log(
        "lost connection after STARTTLS from unknown[127.0.0.1]",
        WAIT,
    );
    // smtpd is still there for the next client.
    let mut c = Client::plain(t.port);
    c.expect("NOOP", "250");
}

/// Postern's client library against Postern's smtpd, as the smtp agent
/// will use it: `verify` with a private CA (names checked), and DANE
/// records for the server certificate (3 1 1) and the CA (2 0 1).
#[test]
fn verify_and_dane_against_smtpd() {
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(ca_dir.path(), "Test");
    let t = start_with_cert("smtpd_tls_security_level = \"may\"", |dir| {
        ca.issue(dir, "mail.example.test")
    });
    let versions = postern_tls::parse_protocols("smtp_tls_protocols", "").unwrap();
    let client = ClientTls::new(&versions, Some(&ca.cert)).unwrap();
    // STARTTLS with a policy; the handshake result.
    let try_policy = |policy: Policy| -> Result<String, String> {
        let mut c = Client::plain(t.port);
        c.expect("EHLO client.example", "250-");
        c.expect("STARTTLS", "220");
        let config = client.config(&policy).unwrap();
        match connect_buffered(c.r, config, server_name("127.0.0.1").unwrap()) {
            Ok(r) => {
                let mut c = Client { r };
                c.expect("EHLO client.example", "250-");
                c.expect("QUIT", "221");
                Ok(c.info())
            }
            Err(e) => {
                let kind = postern_tls::stream::tls_error(&e)
                    .map(postern_tls::rpt::ResultType::from_tls_error);
                Err(format!("{e} {kind:?}"))
            }
        }
    };
    let names = |n: &str| vec![n.to_string()];
    try_policy(Policy::Verify {
        names: names("mail.example.test"),
    })
    .unwrap();
    let e = try_policy(Policy::Verify {
        names: names("mx.other.example"),
    })
    .unwrap_err();
    assert!(e.contains("CertificateHostMismatch"), "{e}");
    let ee = Tlsa::for_cert(3, 1, 1, &t.cert.der).unwrap();
    try_policy(Policy::Dane {
        tlsa: vec![ee],
        names: vec![],
    })
    .unwrap();
    let ta = Tlsa::for_cert(2, 0, 1, &ca.der()).unwrap();
    try_policy(Policy::Dane {
        tlsa: vec![ta],
        names: names("mail.example.test"),
    })
    .unwrap();
    let wrong = Tlsa::parse(&format!("3 1 1 {}", "ab".repeat(32))).unwrap();
    let e = try_policy(Policy::Dane {
        tlsa: vec![wrong],
        names: vec![],
    })
    .unwrap_err();
    assert!(e.contains("ValidationFailure"), "{e}");
    // The failed handshakes are logged by smtpd too.
    t.inst
        .wait_log("SSL_accept error from unknown[127.0.0.1]", WAIT);
}

/// A TLSv1.2-only OpenSSL client (Python): accepted by default, with the
/// cipher named in the log as OpenSSL names it; refused when
/// `smtpd_tls_protocols = >=TLSv1.3`.
#[test]
fn tls12_client_and_protocol_limits() {
    let script = r#"
import smtplib, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="py.example", timeout=20)
s.ehlo()
try:
    s.starttls(context=ctx)
except (ssl.SSLError, ConnectionError) as e:
    print("refused")
    sys.exit(0)
print(s.sock.version(), s.sock.cipher()[0])
s.quit()
"#;
    let run = |port: u16| -> String {
        let out = Command::new("python3")
            .args(["-c", script, &port.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let t = start("smtpd_tls_security_level = \"may\"");
    let out = run(t.port);
    let (version, cipher) = out.split_once(' ').unwrap();
    assert_eq!(version, "TLSv1.2");
    t.inst.wait_log(
        &format!(
            "Anonymous TLS connection established from unknown[127.0.0.1]: TLSv1.2 with cipher {cipher} ("
        ),
        WAIT,
    );
    let t = start("smtpd_tls_security_level = \"may\"\nsmtpd_tls_protocols = \">=TLSv1.3\"");
    assert_eq!(run(t.port), "refused");
    t.inst
        .wait_log("SSL_accept error from unknown[127.0.0.1]", WAIT);
}

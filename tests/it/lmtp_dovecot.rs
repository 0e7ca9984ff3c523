//! lmtp(8) to Dovecot's LMTP server: mail comes in through smtpd, qmgr
//! routes it with `transport_maps` (`lmtp:inet:127.0.0.1:PORT`,
//! `lmtp:unix:/path`, Postfix syntax) to the LMTP client, and a private
//! Dovecot 2.3 (Debian `dovecot-core` + `dovecot-lmtpd`) stores it in a
//! Maildir per user; the tests read those files. Dovecot runs from a temp
//! directory with its own configuration, on a free port, as the running
//! user (root in CI: then the mail is stored as `nobody`, because
//! Dovecot refuses uid 0 for mail).
//!
//! Skipped, with a message, when Dovecot is not installed (`.ci/run`
//! installs it).

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Group, Pid, Uid, User};
use postern_tests::tls::{TestCa, TestCert};
use postern_tests::{Instance, free_port, installed, is_root};

const WAIT: Duration = Duration::from_secs(30);

/// Where Debian's dovecot-lmtpd puts the LMTP server; without it Dovecot
/// does not start with `protocols = lmtp`.
const DOVECOT_LMTP: &str = "/usr/lib/dovecot/lmtp";

/// Whether Dovecot and its LMTP server are there; says why not.
fn dovecot_installed() -> bool {
    if installed("dovecot") && Path::new(DOVECOT_LMTP).exists() {
        return true;
    }
    eprintln!(
        "dovecot with its LMTP server not installed: skipped \
         (apt-get install dovecot-core dovecot-lmtpd; .ci/run does)"
    );
    false
}

/// One private Dovecot: LMTP on 127.0.0.1:`port` and on the Unix sockets
/// `socket` and `socket2` (two, so that one next hop can have a TLS
/// policy the other has not); users from a passwd-file, each with a
/// Maildir under `home/USER/Maildir`.
struct Dovecot {
    dir: tempfile::TempDir,
    conf: PathBuf,
    port: u16,
    socket: PathBuf,
    socket2: PathBuf,
    child: Option<std::process::Child>,
}

impl Dovecot {
    /// Writes the configuration for `users`; `tls`: `ssl = required`
    /// with that certificate (STARTTLS is offered), else `ssl = no`.
    fn new(users: &[&str], tls: Option<&TestCert>) -> Dovecot {
        let dir = tempfile::Builder::new()
            .prefix("dovecot")
            .tempdir()
            .unwrap();
        let root = dir.path();
        for d in ["run", "state", "home"] {
            fs::create_dir(root.join(d)).unwrap();
        }
        fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
        // Dovecot's own processes run as the running user; mail is stored
        // as that user too, except as root (Dovecot refuses uid 0).
        let me = User::from_uid(Uid::current())
            .unwrap()
            .expect("passwd entry");
        let group = Group::from_gid(Gid::current())
            .unwrap()
            .map_or_else(|| Gid::current().to_string(), |g| g.name);
        let (uid, gid) = if is_root() {
            let nobody = User::from_name("nobody").unwrap().expect("user nobody");
            nix::unistd::chown(&root.join("home"), Some(nobody.uid), Some(nobody.gid)).unwrap();
            (nobody.uid, nobody.gid)
        } else {
            (Uid::current(), Gid::current())
        };
        let passwd = root.join("passwd");
        let lines: String = users.iter().map(|u| format!("{u}::::::\n")).collect();
        fs::write(&passwd, lines).unwrap();
        let ssl = match tls {
            Some(c) => format!(
                "ssl = required\nssl_cert = <{}\nssl_key = <{}\n",
                c.cert.display(),
                c.key.display()
            ),
            None => "ssl = no\n".to_string(),
        };
        let port = free_port();
        let r = root.display();
        let conf = root.join("dovecot.conf");
        fs::write(
            &conf,
            format!(
                "base_dir = {r}/run\n\
                 state_dir = {r}/state\n\
                 log_path = {r}/dovecot.log\n\
                 protocols = lmtp\n\
                 listen = 127.0.0.1\n\
                 hostname = lmtp.dovecot.test\n\
                 {ssl}\
                 default_internal_user = {user}\n\
                 default_internal_group = {group}\n\
                 default_login_user = {user}\n\
                 first_valid_uid = {uid}\n\
                 mail_location = maildir:~/Maildir\n\
                 passdb {{\n  driver = passwd-file\n  args = username_format=%n {r}/passwd\n}}\n\
                 userdb {{\n  driver = passwd-file\n  args = username_format=%n {r}/passwd\n\
                 \x20 default_fields = uid={uid} gid={gid} home={r}/home/%n\n}}\n\
                 service lmtp {{\n\
                 \x20 inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n\
                 \x20 unix_listener lmtp {{\n    mode = 0666\n  }}\n\
                 \x20 unix_listener lmtp2 {{\n    mode = 0666\n  }}\n\
                 }}\n\
                 # anvil chroots by default, which only root may.\n\
                 service anvil {{\n  chroot =\n}}\n",
                user = me.name,
            ),
        )
        .unwrap();
        Dovecot {
            socket: root.join("run/lmtp"),
            socket2: root.join("run/lmtp2"),
            dir,
            conf,
            port,
            child: None,
        }
    }

    /// Starts Dovecot in the foreground (`-F`) and waits until both of
    /// its listeners answer.
    fn start(&mut self) {
        // Configuration errors go to stderr, not to log_path.
        let stderr = fs::File::create(self.dir.path().join("stderr")).unwrap();
        let child = Command::new("dovecot")
            .arg("-c")
            .arg(&self.conf)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("dovecot");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err()
            || UnixStream::connect(&self.socket).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "dovecot did not start; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Dovecot's log and what it wrote to stderr.
    fn log(&self) -> String {
        let read = |f: &str| fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!("{}{}", read("stderr"), read("dovecot.log"))
    }

    /// The messages delivered to `user`, oldest first, with CRLF read as
    /// LF.
    fn messages(&self, user: &str) -> Vec<String> {
        let new = self.dir.path().join(format!("home/{user}/Maildir/new"));
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(new)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| (e.metadata().unwrap().modified().unwrap(), e.path()))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|(_, p)| String::from_utf8_lossy(&fs::read(p).unwrap()).replace("\r\n", "\n"))
            .collect()
    }

    /// Waits until `user` has `n` messages; returns them.
    fn wait_messages(&self, user: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.messages(user);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{user} has {} of {n} messages; dovecot log:\n{}",
                got.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM, so that the master takes its children down with it.
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
            let _ = c.wait();
        }
    }
}

/// Postern with smtpd on `port`, qmgr waking every second with short
/// backoffs (deferred mail is retried soon), and the LMTP client;
/// `routes` are `transport_maps` entries (`domain=lmtp:...`).
fn postern(port: u16, routes: &[String], extra: &str) -> Instance {
    let table = format!(
        "[smtp]\ntype = \"inet\"\nlisten = \"127.0.0.1:{port}\"\ncommand = \"smtpd\"\n\
         [cleanup]\ntype = \"unix\"\ncommand = \"cleanup\"\n\
         [rewrite]\ntype = \"unix\"\ncommand = \"trivial-rewrite\"\n\
         [qmgr]\ntype = \"unix\"\nprivate = false\nwakeup = \"1s\"\nmaxproc = 1\ncommand = \"qmgr\"\n\
         [lmtp]\ntype = \"unix\"\ncommand = \"smtp\"\n"
    );
    let main = format!(
        "mynetworks = \"127.0.0.1/32\"\n\
         transport_maps = \"inline:{{ {} }}\"\n\
         minimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"2s\"\n\
         queue_run_delay = \"1s\"\nlmtp_connect_timeout = \"5s\"\n{extra}",
        routes.join(", ")
    );
    let mut inst = Instance::new(&main, &table);
    inst.start();
    inst
}

/// The message every test sends: a few headers, a line that starts with
/// a dot (dot-stuffed on the way, and unstuffed by Dovecot) and a long
/// line.
fn message(subject: &str) -> String {
    format!(
        "From: Sender <sender@sender.test>\r\n\
         To: Several <list@lmtp.test>\r\n\
         Subject: {subject}\r\n\
         Message-ID: <{subject}@sender.test>\r\n\
         X-Test: kept as it is\r\n\
         \r\n\
         first line\r\n\
         .leading dot\r\n\
         {}\r\n\
         last line\r\n",
        "x".repeat(900)
    )
}

/// Sends `msg` to smtpd at `port` with Python's smtplib.
fn send(port: u16, from: &str, rcpts: &[&str], msg: &str) {
    let script = "import smtplib, sys\n\
                  s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=20)\n\
                  refused = s.sendmail(sys.argv[2], sys.argv[3].split(','), sys.stdin.read())\n\
                  assert not refused, refused\n\
                  s.quit()\n";
    let deadline = Instant::now() + WAIT;
    loop {
        let mut child = Command::new("python3")
            .args(["-c", script, &port.to_string(), from, &rcpts.join(",")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(msg.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            return;
        }
        // smtpd may not listen yet right after master's start.
        assert!(
            Instant::now() < deadline,
            "smtplib: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The queue id of the message whose Message-ID is `<subject@...>`, from
/// cleanup's log line.
fn queue_id(inst: &Instance, subject: &str) -> String {
    let needle = format!(": message-id=<{subject}@sender.test>");
    let log = inst.wait_log(&needle, WAIT);
    let line = log.lines().find(|l| l.contains(&needle)).unwrap();
    let before = line.split(&needle).next().unwrap();
    before.rsplit(' ').next().unwrap().to_string()
}

/// Checks that `got` is `sent` as Dovecot stores it: Dovecot's and
/// Postern's trace headers on top, then the headers and body unchanged.
/// `alone`: the recipient was the only one of its LMTP transaction; then
/// Dovecot names it (`Delivered-To:`, `for <rcpt>` in `Received:`).
fn assert_intact(got: &str, sent: &str, rcpt: &str, alone: bool) {
    let sent = sent.replace("\r\n", "\n");
    assert!(got.ends_with(&sent), "sent:\n{sent}\ngot:\n{got}");
    assert!(
        got.starts_with("Return-Path: <sender@sender.test>\n"),
        "{got}"
    );
    assert!(got.contains("\tby lmtp.dovecot.test with LMTP"), "{got}");
    assert!(
        got.contains("(envelope-from <sender@sender.test>)"),
        "{got}"
    );
    assert_eq!(
        got.contains(&format!("\nDelivered-To: {rcpt}\n")),
        alone,
        "{got}"
    );
    assert_eq!(got.contains(&format!("for <{rcpt}>;")), alone, "{got}");
    assert!(!got.contains("Delivered-To: ") || alone, "{got}");
}

/// One message to three recipients through Dovecot's TCP listener and
/// one through its Unix socket: each good recipient gets one intact
/// copy; the unknown user bounces with Dovecot's text, and the bounce
/// itself goes to the sender's Maildir through LMTP.
#[test]
fn delivers_over_tcp_and_a_unix_socket_and_bounces_an_unknown_user() {
    if !dovecot_installed() {
        return;
    }
    let mut dovecot = Dovecot::new(&["alice", "bob", "carol", "sender"], None);
    dovecot.start();
    let port = free_port();
    let tcp = format!("lmtp:inet:127.0.0.1:{}", dovecot.port);
    let inst = postern(
        port,
        &[
            format!("tcp.test={tcp}"),
            format!("sender.test={tcp}"),
            format!("sock.test=lmtp:unix:{}", dovecot.socket.display()),
        ],
        "",
    );
    let msg = message("first");
    send(
        port,
        "sender@sender.test",
        &[
            "alice@tcp.test",
            "nobody@tcp.test",
            "bob@tcp.test",
            "carol@sock.test",
        ],
        &msg,
    );
    let id = queue_id(&inst, "first");
    let log = inst.wait_log_count(&format!("{id}: to=<"), 4, WAIT);
    let relay = format!("relay=127.0.0.1[127.0.0.1]:{}", dovecot.port);
    for want in [
        "postern/lmtp[".to_string(),
        format!("{id}: to=<alice@tcp.test>, {relay}, "),
        format!("{id}: to=<bob@tcp.test>, {relay}, "),
        format!(
            "{id}: to=<carol@sock.test>, relay=mail.example.test[{}], ",
            dovecot.socket.display()
        ),
        "dsn=2.0.0, status=sent (250 2.0.0 <alice@tcp.test> ".to_string(),
        format!("{id}: to=<nobody@tcp.test>, {relay}, "),
        "dsn=5.1.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 \
         <nobody@tcp.test> User doesn't exist: nobody@tcp.test (in reply to RCPT TO command))"
            .to_string(),
    ] {
        assert!(log.contains(&want), "{want}\n{log}");
    }
    // alice and bob were in one LMTP transaction, carol alone in hers;
    // each has one copy of her own.
    for (user, rcpt, alone) in [
        ("alice", "alice@tcp.test", false),
        ("bob", "bob@tcp.test", false),
        ("carol", "carol@sock.test", true),
    ] {
        let got = dovecot.wait_messages(user, 1);
        assert_intact(&got[0], &msg, rcpt, alone);
    }
    // The bounce, delivered to the sender by LMTP too.
    let dsn = dovecot.wait_messages("sender", 1);
    let dsn = &dsn[0];
    for want in [
        "Return-Path: <>\n",
        "Delivered-To: sender@sender.test\n",
        "Final-Recipient: rfc822; nobody@tcp.test\n",
        "Action: failed\nStatus: 5.1.1\n",
        "Diagnostic-Code: smtp; 550 5.1.1 <nobody@tcp.test> User doesn't exist: nobody@tcp.test\n",
        "Subject: first\n",
    ] {
        assert!(dsn.contains(want), "{want}\n{dsn}");
    }
    for delivered in ["alice@", "bob@", "carol@"] {
        assert!(
            !dsn.contains(&format!("Final-Recipient: rfc822; {delivered}")),
            "{dsn}"
        );
    }
    // Exactly one copy each, nothing more after the bounce.
    std::thread::sleep(Duration::from_millis(300));
    for user in ["alice", "bob", "carol", "sender"] {
        assert_eq!(dovecot.messages(user).len(), 1, "{user}");
    }
}

/// Dovecot down: the mail waits (connection refused on TCP, no socket
/// file), and is delivered once Dovecot is up; except for the recipient
/// whose next hop needs TLS (`encrypt` in `lmtp_tls_policy_maps`), which
/// this Dovecot (`ssl = no`) does not offer: that one keeps waiting.
#[test]
fn a_dovecot_that_is_down_defers_and_gets_the_mail_when_it_is_up() {
    if !dovecot_installed() {
        return;
    }
    let mut dovecot = Dovecot::new(&["alice", "carol", "erin"], None);
    let port = free_port();
    let p = dovecot.port;
    let inst = postern(
        port,
        &[
            format!("tcp.test=lmtp:inet:127.0.0.1:{p}"),
            format!("sock.test=lmtp:unix:{}", dovecot.socket.display()),
            format!("tls.test=lmtp:inet:[127.0.0.1]:{p}"),
        ],
        &format!("lmtp_tls_policy_maps = \"inline:{{ [127.0.0.1]:{p}=encrypt }}\"\n"),
    );
    let msg = message("later");
    send(
        port,
        "sender@sender.test",
        &["alice@tcp.test", "carol@sock.test", "erin@tls.test"],
        &msg,
    );
    let id = queue_id(&inst, "later");
    let log = inst.wait_log_count(&format!("{id}: to=<"), 3, WAIT);
    for want in [
        format!("{id}: to=<alice@tcp.test>, relay=none, delay="),
        format!(
            "status=deferred (connect to 127.0.0.1[127.0.0.1]:{}: Connection refused)",
            dovecot.port
        ),
        format!(
            "status=deferred (connect to mail.example.test[{}]: No such file or directory)",
            dovecot.socket.display()
        ),
    ] {
        assert!(log.contains(&want), "{want}\n{log}");
    }
    assert!(!log.contains("status=bounced"), "{log}");
    dovecot.start();
    let alice = dovecot.wait_messages("alice", 1);
    assert_intact(&alice[0], &msg, "alice@tcp.test", true);
    let carol = dovecot.wait_messages("carol", 1);
    assert_intact(&carol[0], &msg, "carol@sock.test", true);
    // Each line is waited for: the three deliveries run side by side.
    for want in [
        format!("{id}: to=<alice@tcp.test>, relay=127.0.0.1[127.0.0.1]:{p}, "),
        format!(
            "{id}: to=<carol@sock.test>, relay=mail.example.test[{}], ",
            dovecot.socket.display()
        ),
        format!("{id}: to=<erin@tls.test>, relay=127.0.0.1[127.0.0.1]:{p}, "),
        "status=sent (250 2.0.0 <alice@tcp.test> ".to_string(),
        "status=sent (250 2.0.0 <carol@sock.test> ".to_string(),
        "dsn=4.7.4, status=deferred (TLS is required, but was not offered by host 127.0.0.1[127.0.0.1])".to_string(),
    ] {
        inst.wait_log(&want, WAIT);
    }
    assert!(dovecot.messages("erin").is_empty());
}

/// STARTTLS to a Dovecot with `ssl = required`: `lmtp_tls_security_level
/// = verify` over TCP with a certificate from a test CA; `encrypt` over
/// a Unix socket (`lmtp_tls_policy_maps`, keyed by the path); `may` on
/// a Unix socket is plaintext with Postfix's warning; a certificate that
/// does not match the policy's name defers. Dovecot's `Received:` header
/// says which copies came through TLS.
#[test]
fn starttls_to_dovecot_at_verify_encrypt_and_may() {
    if !dovecot_installed() {
        return;
    }
    let files = tempfile::tempdir().unwrap();
    fs::set_permissions(files.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let ca = TestCa::new(files.path(), "LMTP Test");
    let cert = ca.issue(files.path(), "127.0.0.1");
    let mut dovecot = Dovecot::new(&["alice", "bob", "carol", "dave"], Some(&cert));
    dovecot.start();
    let port = free_port();
    let p = dovecot.port;
    let (sock, sock2) = (dovecot.socket.display(), dovecot.socket2.display());
    let inst = postern(
        port,
        &[
            format!("verify.test=lmtp:inet:127.0.0.1:{p}"),
            // The same server under another next-hop spelling, so that
            // the policy table can ask for a name it does not have.
            format!("wrongname.test=lmtp:inet:[127.0.0.1]:{p}"),
            format!("encrypt.test=lmtp:unix:{sock}"),
            format!("may.test=lmtp:unix:{sock2}"),
        ],
        &format!(
            "lmtp_tls_security_level = \"verify\"\n\
             lmtp_tls_CAfile = \"{}\"\n\
             lmtp_tls_loglevel = 1\n\
             lmtp_tls_policy_maps = \"inline:{{ {{ [127.0.0.1]:{p} = secure match=other.test }}, \
             {sock}=encrypt, {sock2}=may }}\"\n",
            ca.cert.display()
        ),
    );
    let msg = message("secret");
    send(
        port,
        "sender@sender.test",
        &[
            "alice@verify.test",
            "dave@wrongname.test",
            "bob@encrypt.test",
            "carol@may.test",
        ],
        &msg,
    );
    let id = queue_id(&inst, "secret");
    // Each line is waited for: the four deliveries run side by side,
    // and the deferred one is retried.
    for want in [
        format!(
            "Verified TLS connection established to 127.0.0.1[127.0.0.1]:{p}: TLSv1.3 with cipher "
        ),
        format!("TLS connection established to mail.example.test[{sock}]: TLSv1.3 with cipher "),
        "opportunistic TLS encryption is not appropriate for unix-domain destinations".to_string(),
        format!("{id}: to=<alice@verify.test>, relay=127.0.0.1[127.0.0.1]:{p}, "),
        format!("{id}: to=<bob@encrypt.test>, relay=mail.example.test[{sock}], "),
        format!("{id}: to=<carol@may.test>, relay=mail.example.test[{sock2}], "),
        format!("{id}: to=<dave@wrongname.test>, relay=127.0.0.1[127.0.0.1]:{p}, "),
        "dsn=4.7.5, status=deferred (Server certificate not verified)".to_string(),
    ] {
        inst.wait_log(&want, WAIT);
    }
    let log = inst.log_text();
    assert!(
        !log.contains(&format!(
            "TLS connection established to mail.example.test[{sock2}]"
        )),
        "{log}"
    );
    let tls = "(using TLSv1.3 with cipher ";
    for (user, rcpt, encrypted) in [
        ("alice", "alice@verify.test", true),
        ("bob", "bob@encrypt.test", true),
        ("carol", "carol@may.test", false),
    ] {
        let got = dovecot.wait_messages(user, 1);
        assert_intact(&got[0], &msg, rcpt, true);
        assert_eq!(got[0].contains(tls), encrypted, "{user}:\n{}", got[0]);
        assert_eq!(
            got[0].contains("by lmtp.dovecot.test with LMTPS"),
            encrypted,
            "{user}:\n{}",
            got[0]
        );
    }
    assert!(dovecot.messages("dave").is_empty());
}

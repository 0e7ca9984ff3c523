//! smtp(8)/lmtp(8): mail submitted to cleanup goes through qmgr to the
//! smtp client, which finds servers through a real DNS server (dnsmasq
//! on a loopback port, with MX, A and null MX records for `*.test`) and
//! delivers to real peers: Postfix's `smtp-sink`, a second Postern
//! instance's smtpd, and `tests/peers/smtp_peer.py` (a small SMTP/LMTP
//! server that answers per recipient, which smtp-sink cannot). Every
//! server listens on its own 127.0.0.x address and the test's port
//! (`smtp_tcp_port`); the sender's `inet_interfaces` is 127.0.0.1, so
//! only an MX at 127.0.0.1 is "this host".

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postern_ipc::cleanup::{Client, Recipient};
use postern_tests::{Instance, Proc, dnsmasq, free_port, is_root};

const WAIT: Duration = Duration::from_secs(30);

/// The sender's services: the path in, qmgr (waking every second so
/// deferred mail is retried soon), and the smtp and lmtp clients.
const TABLE: &str = "\
[cleanup]\ntype = \"unix\"\ncommand = \"cleanup\"\n\
[rewrite]\ntype = \"unix\"\ncommand = \"trivial-rewrite\"\n\
[qmgr]\ntype = \"unix\"\nprivate = false\nwakeup = \"1s\"\nmaxproc = 1\ncommand = \"qmgr\"\n\
[smtp-client]\ntype = \"unix\"\nservice = \"smtp\"\ncommand = \"smtp\"\n\
[lmtp]\ntype = \"unix\"\ncommand = \"smtp\"\n";

fn wait_tcp(ip: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((ip, port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {ip}:{port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Postfix's smtp-sink on ip:port with extra flags.
fn smtp_sink(ip: &str, port: u16, flags: &[&str]) -> Proc {
    let mut cmd = Command::new("smtp-sink");
    if is_root() {
        cmd.args(["-u", "nobody"]);
    }
    cmd.args(flags)
        .arg(format!("{ip}:{port}"))
        .arg("10")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = Proc(cmd.spawn().expect("smtp-sink (apt-get install postfix)"));
    wait_tcp(ip, port);
    child
}

/// The test peer (`tests/peers/smtp_peer.py`); messages land in `dir`.
fn peer(listen: &str, dir: &Path, flags: &[&str]) -> Proc {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/smtp_peer.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg("--dir").arg(dir);
    if let Some(path) = listen.strip_prefix("unix:") {
        cmd.args(["--unix", path]);
    } else {
        cmd.args(["--listen", listen]);
    }
    cmd.args(flags).stdout(Stdio::null()).stderr(Stdio::null());
    let child = Proc(cmd.spawn().expect("python3"));
    let deadline = Instant::now() + Duration::from_secs(10);
    match listen.strip_prefix("unix:") {
        Some(path) => {
            while !Path::new(path).exists() {
                assert!(Instant::now() < deadline, "peer did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        None => {
            let (ip, port) = listen.rsplit_once(':').unwrap();
            wait_tcp(ip, port.parse().unwrap());
        }
    }
    child
}

/// The sending instance: DNS at `dns_port`, servers on `port`.
fn sender(dns_port: u16, port: u16, extra: &str) -> Instance {
    let main = format!(
        "inet_interfaces = \"127.0.0.1\"\n\
         smtp_dns_resolver_address = \"127.0.0.1:{dns_port}\"\n\
         smtp_tcp_port = \"{port}\"\n\
         smtp_connect_timeout = \"5s\"\n\
         minimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"2s\"\n\
         queue_run_delay = \"1s\"\n{extra}"
    );
    let mut inst = Instance::new(&main, TABLE);
    inst.start();
    inst
}

/// Hands a message to cleanup; returns its queue id.
fn submit(
    inst: &Instance,
    from: &str,
    rcpts: &[&str],
    content: &[u8],
    attrs: &[(&str, &str)],
) -> String {
    let rcpts: Vec<(&str, u8, Option<&str>)> = rcpts.iter().map(|r| (*r, 0, None)).collect();
    submit_dsn(inst, from, &rcpts, content, attrs)
}

/// Like [`submit`] with DSN `NOTIFY` bits and `ORCPT` per recipient.
fn submit_dsn(
    inst: &Instance,
    from: &str,
    rcpts: &[(&str, u8, Option<&str>)],
    content: &[u8],
    attrs: &[(&str, &str)],
) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let attempt = (|| {
            let mut c = Client::connect(&inst.queue_dir, WAIT, 0)?;
            c.sender(from)?;
            for (name, value) in attrs {
                c.attr(name, value)?;
            }
            for (r, notify, orcpt) in rcpts {
                c.recipient(&Recipient {
                    address: r,
                    notify: *notify,
                    dsn_orcpt: *orcpt,
                    ..Recipient::default()
                })?;
            }
            c.begin_content()?;
            c.write_content(content)?;
            c.end_content()?;
            c.finish()
        })();
        match attempt {
            Ok(o) => {
                assert!(o.accepted(), "{o:?}");
                return o.queue_id;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "submit: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

const MESSAGE: &[u8] =
    b"From: alice@sender.test\nTo: bob@a.test\nSubject: test\n\nhello\n.leading dot\n";

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    v.sort();
    v
}

fn wait_files(dir: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let f = files(dir);
        if f.len() >= n {
            return f
                .iter()
                .map(|p| String::from_utf8_lossy(&fs::read(p).unwrap()).into_owned())
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} messages arrived",
            f.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    // smtp-sink writes as nobody when the test runs as root.
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o777)).unwrap();
    d
}

#[test]
fn mx_preference_order_and_the_next_mx_when_the_first_is_down() {
    let port = free_port();
    let (_dns, dns_port) = dnsmasq(&[
        "--mx-host=a.test,mx1.a.test,10".into(),
        "--mx-host=a.test,mx2.a.test,20".into(),
        "--host-record=mx1.a.test,127.0.0.2".into(),
        "--host-record=mx2.a.test,127.0.0.3".into(),
    ]);
    let _mx2 = smtp_sink("127.0.0.3", port, &[]);
    // No session reuse: the second message must look for the best MX.
    let inst = sender(dns_port, port, "smtp_connection_cache_on_demand = \"no\"\n");
    let id = submit(&inst, "alice@sender.test", &["bob@a.test"], MESSAGE, &[]);
    let log = inst.wait_log(&format!("{id}: removed"), WAIT);
    // The agent logs each failed connection, then tries the next MX.
    assert!(log.contains("postern/smtp["), "{log}");
    assert!(
        log.contains(&format!(
            "connect to mx1.a.test[127.0.0.2]:{port}: Connection refused"
        )),
        "{log}"
    );
    let sent = format!("{id}: to=<bob@a.test>, relay=mx2.a.test[127.0.0.3]:{port}, delay=");
    assert!(log.contains(&sent), "{log}");
    assert!(
        log.contains("dsn=2.0.0, status=sent (250 2.0.0 Ok"),
        "{log}"
    );

    // With both up, the preferred MX gets the mail.
    let _mx1 = smtp_sink("127.0.0.2", port, &[]);
    let id = submit(&inst, "alice@sender.test", &["bob@a.test"], MESSAGE, &[]);
    let log = inst.wait_log(&format!("{id}: removed"), WAIT);
    assert!(
        log.contains(&format!(
            "{id}: to=<bob@a.test>, relay=mx1.a.test[127.0.0.2]:{port}, "
        )),
        "{log}"
    );
}

#[test]
fn all_servers_down_defers_then_delivers_when_one_comes_up() {
    let port = free_port();
    let (_dns, dns_port) = dnsmasq(&[
        "--mx-host=a.test,mx1.a.test,10".into(),
        "--host-record=mx1.a.test,127.0.0.6".into(),
    ]);
    let inst = sender(dns_port, port, "");
    let id = submit(&inst, "alice@sender.test", &["bob@a.test"], MESSAGE, &[]);
    let log = inst.wait_log(&format!("{id}: to=<bob@a.test>"), WAIT);
    assert!(
        log.contains(&format!(
            "dsn=4.4.1, status=deferred (connect to mx1.a.test[127.0.0.6]:{port}: Connection refused)"
        )),
        "{log}"
    );
    let d = dir();
    let _mx = peer(&format!("127.0.0.6:{port}"), d.path(), &[]);
    inst.wait_log(&format!("{id}: removed"), WAIT);
    let got = wait_files(d.path(), 1);
    assert!(
        got[0].contains("\nMAIL FROM:<alice@sender.test>"),
        "{}",
        got[0]
    );
    assert!(got[0].contains("\r\n.leading dot\r\n"), "{}", got[0]);
}

#[test]
fn null_mx_nxdomain_loops_and_dns_failures() {
    let port = free_port();
    let (_dns, dns_port) = dnsmasq(&[
        // RFC 7505: "0 ." (raw: preference 0, the root name).
        "--dns-rr=null.test,15,000000".into(),
        "--mx-host=loop.test,mx.loop.test,10".into(),
        "--host-record=mx.loop.test,127.0.0.1".into(),
        "--host-record=nomx.test,127.0.0.7".into(),
    ]);
    let d = dir();
    let _implicit = peer(&format!("127.0.0.7:{port}"), d.path(), &[]);
    let inst = sender(dns_port, port, "");
    let id = submit(
        &inst,
        "",
        &[
            "u@null.test",
            "u@nx.test",
            "u@loop.test",
            "u@elsewhere.example",
            "u@nomx.test",
        ],
        MESSAGE,
        &[],
    );
    let log = inst.wait_log_count(&format!("{id}: to=<"), 5, WAIT);
    for want in [
        "to=<u@null.test>, relay=none, delay=".to_string(),
        "dsn=5.1.0, status=bounced (Domain null.test does not accept mail (nullMX))".into(),
        "dsn=5.4.4, status=bounced (Host or domain name not found. Name service error for name=nx.test type=MX: Host not found)".into(),
        "dsn=5.4.6, status=bounced (mail for loop.test loops back to myself)".into(),
        "dsn=4.4.3, status=deferred (Host or domain name not found. Name service error for name=elsewhere.example type=MX: Host not found, try again".into(),
        format!("to=<u@nomx.test>, relay=nomx.test[127.0.0.7]:{port}, "),
    ] {
        assert!(log.contains(&want), "{want}\n{log}");
    }
    wait_files(d.path(), 1);
}

#[test]
fn per_recipient_replies_and_the_bounce_carries_the_remote_text() {
    let port = free_port();
    let (_dns, dns_port) = dnsmasq(&[
        "--mx-host=peer.test,mx.peer.test,10".into(),
        "--mx-host=sender.test,mx.peer.test,10".into(),
        "--host-record=mx.peer.test,127.0.0.8".into(),
    ]);
    let d = dir();
    let _peer = peer(&format!("127.0.0.8:{port}"), d.path(), &[]);
    let inst = sender(dns_port, port, "");
    let id = submit_dsn(
        &inst,
        "alice@sender.test",
        &[
            ("ok@peer.test", 2 | 8, Some("rfc822;first+ok@sender.test")),
            ("soft@peer.test", 0, None),
            ("hard@peer.test", 0, None),
        ],
        MESSAGE,
        &[("envid", "env-42"), ("ret", "HDRS")],
    );
    let log = inst.wait_log_count(&format!("{id}: to=<"), 3, WAIT);
    let relay = format!("relay=mx.peer.test[127.0.0.8]:{port}");
    for want in [
        format!("{id}: to=<ok@peer.test>, {relay}, "),
        "status=sent (250 2.0.0 Ok: queued as PEER".into(),
        format!("{id}: to=<soft@peer.test>, {relay}, "),
        "dsn=4.2.1, status=deferred (host mx.peer.test[127.0.0.8] said: 450 4.2.1 <soft@peer.test>: mailbox busy, try later (in reply to RCPT TO command))".to_string(),
        "dsn=5.1.1, status=bounced (host mx.peer.test[127.0.0.8] said: 550 5.1.1 <hard@peer.test>: Recipient address rejected: User unknown (in reply to RCPT TO command))".to_string(),
    ] {
        assert!(log.contains(&want), "{want}\n{log}");
    }
    // The accepted copy, then (once soft@ expires or is retried) the
    // bounce for hard@ goes to alice@sender.test through the same peer.
    let got = wait_files(d.path(), 1);
    assert!(got[0].contains("RCPT TO:<ok@peer.test>"), "{}", got[0]);
    assert!(!got[0].contains("soft@") && !got[0].contains("hard@"));
    assert!(
        got[0].contains("MAIL FROM:<alice@sender.test> SIZE="),
        "{}",
        got[0]
    );
    // DSN parameters go on to a server that offers DSN.
    assert!(got[0].contains(" RET=HDRS ENVID=env-42"), "{}", got[0]);
    assert!(
        got[0].contains(
            "RCPT TO:<ok@peer.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;first+2Bok@sender.test"
        ),
        "{}",
        got[0]
    );
    // Expire the soft recipient so the message finishes and bounces.
    inst.rewrite_main(&format!(
        "inet_interfaces = \"127.0.0.1\"\nsmtp_dns_resolver_address = \"127.0.0.1:{dns_port}\"\n\
         smtp_tcp_port = \"{port}\"\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"2s\"\n\
         queue_run_delay = \"1s\"\nmaximal_queue_lifetime = \"0s\"\n"
    ));
    inst.signal(nix::sys::signal::Signal::SIGHUP);
    inst.wait_log(&format!("{id}: sender non-delivery notification"), WAIT);
    let got = wait_files(d.path(), 2);
    let dsn = got
        .iter()
        .find(|m| m.contains("\nMAIL FROM:<>"))
        .expect("bounce");
    assert!(dsn.contains("RCPT TO:<alice@sender.test>"), "{dsn}");
    // ok@ asked for NOTIFY=SUCCESS, but the peer offers DSN and got the
    // NOTIFY: the success notice is its job, not ours (RFC 3461 6.2.2).
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !files(d.path())
            .iter()
            .any(|p| String::from_utf8_lossy(&fs::read(p).unwrap())
                .contains("Successful Mail Delivery Report")),
        "a relayed notice was sent"
    );
    for want in [
        "<hard@peer.test>: host mx.peer.test[127.0.0.8] said: 550 5.1.1",
        "Final-Recipient: rfc822; hard@peer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Remote-MTA: dns; mx.peer.test\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 <hard@peer.test>: Recipient address rejected: User unknown\r\n",
        "Original-Envelope-Id: env-42",
    ] {
        assert!(dsn.contains(want), "{want}\n{dsn}");
    }
}

#[test]
fn eight_bit_mail_to_a_server_without_8bitmime_is_quoted_printable() {
    let port = free_port();
    let (_dns, dns_port) = dnsmasq(&[
        "--mx-host=a.test,mx.a.test,10".into(),
        "--host-record=mx.a.test,127.0.0.9".into(),
    ]);
    let d = dir();
    let dump = d.path().join("dump");
    let _sink = smtp_sink(
        "127.0.0.9",
        port,
        &["-8", "-d", &format!("{}/%H%M%S.", dump.display())],
    );
    let inst = sender(dns_port, port, "");
    let content = "From: alice@sender.test\nSubject: caf\u{e9}?\nMIME-Version: 1.0\n\
                   Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n\
                   Cr\u{e8}me br\u{fb}l\u{e9}e = dessert\n";
    let body_only = content.replace("Subject: caf\u{e9}?", "Subject: cafe?");
    let id = submit(
        &inst,
        "alice@sender.test",
        &["bob@a.test"],
        body_only.as_bytes(),
        &[("encoding", "8bit")],
    );
    inst.wait_log(&format!("{id}: removed"), WAIT);
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let found: Vec<PathBuf> = fs::read_dir(&dump)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        if let Some(p) = found.first() {
            let t = fs::read(p).unwrap();
            if t.windows(7).any(|w| w == b"dessert") {
                break t;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no dump from smtp-sink in {}: {:?}\n{}",
            dump.display(),
            found
                .iter()
                .map(|p| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned())
                .collect::<Vec<_>>(),
            inst.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(text.iter().all(|&b| b < 0x80), "8-bit octets were sent");
    let s = String::from_utf8(text).unwrap();
    assert!(
        s.contains("Content-Transfer-Encoding: quoted-printable"),
        "{s}"
    );
    assert!(!s.contains("Content-Transfer-Encoding: 8bit"), "{s}");
    assert!(s.contains("Cr=C3=A8me br=C3=BBl=C3=A9e =3D dessert"), "{s}");
    // And no BODY=8BITMIME to a server that did not offer it.
    assert!(!s.contains("BODY=8BITMIME"), "{s}");
}

#[test]
fn size_limit_of_the_server_bounces_before_sending() {
    let port = free_port();
    let (_dns, dns_port) = dnsmasq(&[
        "--mx-host=a.test,mx.a.test,10".into(),
        "--host-record=mx.a.test,127.0.0.10".into(),
    ]);
    let d = dir();
    let _peer = peer(&format!("127.0.0.10:{port}"), d.path(), &["--size", "40"]);
    let inst = sender(dns_port, port, "");
    let id = submit(&inst, "", &["bob@a.test"], MESSAGE, &[]);
    let log = inst.wait_log(&format!("{id}: to=<bob@a.test>"), WAIT);
    assert!(
        log.contains(&format!(
            "dsn=5.3.4, status=bounced (message size {} exceeds size limit 40 of server mx.a.test[127.0.0.10])",
            MESSAGE.len()
        )),
        "{log}"
    );
    assert!(files(d.path()).is_empty());
}

#[test]
fn relayhost_without_mx_lookup_and_the_fallback_relay() {
    let port = free_port();
    // No DNS records at all: [host] next hops need none.
    let (_dns, dns_port) = dnsmasq(&[]);
    let d = dir();
    let _fallback = peer(&format!("127.0.0.12:{port}"), d.path(), &[]);
    let log = relay_one(
        dns_port,
        port,
        &format!("relayhost = \"[127.0.0.11]:{port}\"\nsmtp_fallback_relay = \"[127.0.0.12]\"\n"),
        "127.0.0.12",
    );
    assert!(
        log.contains(&format!(
            "connect to 127.0.0.11[127.0.0.11]:{port}: Connection refused"
        )),
        "{log}"
    );
    wait_files(d.path(), 1);
}

/// Sends one message to bob@far.example through an instance with
/// `extra`, and waits until it went to the server at `relay_ip`; returns
/// the log.
fn relay_one(dns_port: u16, port: u16, extra: &str, relay_ip: &str) -> String {
    let inst = sender(dns_port, port, extra);
    let id = submit(
        &inst,
        "alice@sender.test",
        &["bob@far.example"],
        MESSAGE,
        &[],
    );
    let log = inst.wait_log(&format!("{id}: removed"), WAIT);
    assert!(
        log.contains(&format!(
            "{id}: to=<bob@far.example>, relay={relay_ip}[{relay_ip}]:{port}, "
        )),
        "{log}"
    );
    log
}

#[test]
fn a_relayhost_on_this_machine_is_not_a_loop() {
    // A content filter or relay on one of this machine's own addresses
    // (inet_interfaces is 127.0.0.1 here): Postfix uses a [host] as given.
    let port = free_port();
    let (_dns, dns_port) = dnsmasq(&[]);
    let d = dir();
    let _filter = peer(&format!("127.0.0.1:{port}"), d.path(), &[]);
    let log = relay_one(
        dns_port,
        port,
        &format!("relayhost = \"[127.0.0.1]:{port}\"\n"),
        "127.0.0.1",
    );
    assert!(!log.contains("loops back to myself"), "{log}");
    wait_files(d.path(), 1);
}

#[test]
fn lmtp_over_tcp_and_a_unix_socket() {
    let port = free_port();
    let (_dns, dns_port) = dnsmasq(&[]);
    let d = dir();
    let sock = d.path().join("lmtp.sock");
    let _tcp = peer(&format!("127.0.0.13:{port}"), d.path(), &["--lmtp"]);
    let unix_dir = dir();
    // The Unix-socket peer offers CHUNKING: BDAT instead of DATA.
    let _unix = peer(
        &format!("unix:{}", sock.display()),
        unix_dir.path(),
        &["--lmtp", "--chunking"],
    );
    let inst = sender(
        dns_port,
        port,
        &format!(
            "transport_maps = \"inline:{{ lmtp.test=lmtp:inet:127.0.0.13:{port}, sock.test=lmtp:unix:{} }}\"\n",
            sock.display()
        ),
    );
    let id = submit(
        &inst,
        "alice@sender.test",
        &[
            "a@lmtp.test",
            "full@lmtp.test",
            "b@lmtp.test",
            "c@sock.test",
            "full@sock.test",
        ],
        MESSAGE,
        &[],
    );
    let log = inst.wait_log_count(&format!("{id}: to=<"), 5, WAIT);
    let tcp = format!("relay=127.0.0.13[127.0.0.13]:{port}");
    for want in [
        format!("{id}: to=<a@lmtp.test>, {tcp}, "),
        format!("{id}: to=<b@lmtp.test>, {tcp}, "),
        "status=sent (250 2.0.0 <a@lmtp.test> delivered as 1)".to_string(),
        "status=sent (250 2.0.0 <b@lmtp.test> delivered as 1)".to_string(),
        format!("{id}: to=<full@lmtp.test>, {tcp}, "),
        "dsn=5.2.2, status=bounced (host 127.0.0.13[127.0.0.13] said: 552 5.2.2 <full@lmtp.test>: mailbox full (in reply to end of DATA command))".to_string(),
        format!(
            "{id}: to=<c@sock.test>, relay=mail.example.test[{}], ",
            sock.display()
        ),
    ] {
        assert!(log.contains(&want), "{want}\n{log}");
    }
    // The LMTP client logs under its own name, like Postfix.
    assert!(
        log.contains("postern/lmtp[") && log.contains(&format!("]: {id}: to=<c@sock.test>")),
        "{log}"
    );
    wait_files(d.path(), 1);
    assert!(
        log.contains(&format!(
            "dsn=5.2.2, status=bounced (host mail.example.test[{}] said: 552 5.2.2 <full@sock.test>: mailbox full (in reply to BDAT command))",
            sock.display()
        )),
        "{log}"
    );
    let got = wait_files(unix_dir.path(), 1);
    assert!(
        got[0].contains("RCPT TO:<c@sock.test>\nRCPT TO:<full@sock.test>\nBDAT\n"),
        "{}",
        got[0]
    );
    // No dot-stuffing with BDAT; CRLF line ends.
    assert!(
        got[0].ends_with("\r\nhello\r\n.leading dot\r\n"),
        "{}",
        got[0]
    );
}

#[test]
fn delivers_to_a_second_postern_through_its_smtpd() {
    let port = free_port();
    let (_dns, dns_port) = dnsmasq(&[
        "--mx-host=b.test,mx.b.test,10".into(),
        "--host-record=mx.b.test,127.0.0.14".into(),
    ]);
    let boxes = tempfile::tempdir().unwrap();
    let table = format!(
        "[smtp]\ntype = \"inet\"\nlisten = \"127.0.0.14:{port}\"\ncommand = \"smtpd\"\n\
         [cleanup]\ntype = \"unix\"\ncommand = \"cleanup\"\n\
         [rewrite]\ntype = \"unix\"\ncommand = \"trivial-rewrite\"\n\
         [qmgr]\ntype = \"unix\"\nprivate = false\nmaxproc = 1\ncommand = \"qmgr\"\n\
         [virtual]\ntype = \"unix\"\ncommand = \"virtual\"\n"
    );
    let mut receiver = Instance::new(
        &format!(
            "inet_interfaces = \"127.0.0.14\"\nmyhostname = \"mx.b.test\"\n\
             virtual_mailbox_domains = \"b.test\"\n\
             virtual_mailbox_maps = \"inline:{{ u@b.test=u/Maildir/ }}\"\n\
             virtual_mailbox_base = \"{}\"\n",
            boxes.path().display()
        ),
        &table,
    );
    receiver.start();
    wait_tcp("127.0.0.14", port);
    let inst = sender(dns_port, port, "");
    let id = submit(&inst, "alice@sender.test", &["u@b.test"], MESSAGE, &[]);
    let log = inst.wait_log(&format!("{id}: removed"), WAIT);
    assert!(
        log.contains(&format!(
            "{id}: to=<u@b.test>, relay=mx.b.test[127.0.0.14]:{port}, "
        )),
        "{log}"
    );
    assert!(
        log.contains("status=sent (250 2.0.0 Ok: queued as "),
        "{log}"
    );
    receiver.wait_log("status=sent (delivered to maildir)", WAIT);
    let new = boxes.path().join("u/Maildir/new");
    let mail = fs::read_dir(&new).unwrap().next().unwrap().unwrap().path();
    let text = fs::read_to_string(mail).unwrap();
    assert!(text.contains("Subject: test"), "{text}");
    assert!(text.contains("\n.leading dot\n"), "{text}");
}

#[test]
fn helo_without_esmtp_and_a_connection_lost_at_the_end_of_data() {
    let port = free_port();
    let (_dns, dns_port) = dnsmasq(&[
        "--mx-host=old.test,mx.old.test,10".into(),
        "--host-record=mx.old.test,127.0.0.15".into(),
        "--mx-host=drop.test,mx.drop.test,10".into(),
        "--host-record=mx.drop.test,127.0.0.16".into(),
    ]);
    // -e: no ESMTP (EHLO refused, so HELO, no PIPELINING).
    let _old = smtp_sink("127.0.0.15", port, &["-e"]);
    // -q .: hang up without a reply after the end of data.
    let _drop = smtp_sink("127.0.0.16", port, &["-q", "."]);
    let inst = sender(dns_port, port, "");
    let old = submit(&inst, "alice@sender.test", &["bob@old.test"], MESSAGE, &[]);
    let drop = submit(&inst, "alice@sender.test", &["bob@drop.test"], MESSAGE, &[]);
    let log = inst.wait_log(&format!("{old}: removed"), WAIT);
    assert!(
        log.contains(&format!(
            "{old}: to=<bob@old.test>, relay=mx.old.test[127.0.0.15]:{port}, "
        )),
        "{log}"
    );
    let log = inst.wait_log(&format!("{drop}: to=<bob@drop.test>"), WAIT);
    assert!(
        log.contains(&format!(
            "{drop}: to=<bob@drop.test>, relay=mx.drop.test[127.0.0.16]:{port}, "
        )) && log.contains(
            "dsn=4.4.2, status=deferred (lost connection with mx.drop.test[127.0.0.16] \
             while sending end of data -- message may be sent more than once)"
        ),
        "{log}"
    );
}

#[test]
fn smtputf8_mail_to_a_server_without_smtputf8_bounces() {
    let port = free_port();
    let (_dns, dns_port) = dnsmasq(&[
        "--mx-host=a.test,mx.a.test,10".into(),
        "--host-record=mx.a.test,127.0.0.17".into(),
    ]);
    let d = dir();
    let _peer = peer(&format!("127.0.0.17:{port}"), d.path(), &[]);
    let inst = sender(dns_port, port, "");
    let id = submit(
        &inst,
        "",
        &["b\u{f8}b@a.test"],
        MESSAGE,
        &[("smtputf8", "yes")],
    );
    let log = inst.wait_log(&format!("{id}: to=<"), WAIT);
    assert!(
        log.contains(
            "dsn=5.6.7, status=bounced (SMTPUTF8 is required, but was not offered by host mx.a.test[127.0.0.17])"
        ),
        "{log}"
    );
    // The same message without non-ASCII needs no SMTPUTF8 and goes.
    let id = submit(&inst, "", &["bob@a.test"], MESSAGE, &[("smtputf8", "yes")]);
    inst.wait_log(&format!("{id}: removed"), WAIT);
    let got = wait_files(d.path(), 1);
    assert!(!got[0].contains("SMTPUTF8"), "{}", got[0]);
}

#[test]
fn a_clean_session_is_reused_for_the_next_message_then_closed_when_idle() {
    let port = free_port();
    let (_dns, dns_port) = dnsmasq(&[
        "--mx-host=a.test,mx.a.test,10".into(),
        "--host-record=mx.a.test,127.0.0.18".into(),
    ]);
    let d = dir();
    let _peer = peer(&format!("127.0.0.18:{port}"), d.path(), &[]);
    let inst = sender(
        dns_port,
        port,
        "smtp_connection_cache_time_limit = \"1s\"\n",
    );
    let first = submit(&inst, "alice@sender.test", &["bob@a.test"], MESSAGE, &[]);
    inst.wait_log(&format!("{first}: removed"), WAIT);
    let second = submit(&inst, "alice@sender.test", &["carol@a.test"], MESSAGE, &[]);
    inst.wait_log(&format!("{second}: removed"), WAIT);
    let got = wait_files(d.path(), 2);
    let session = |m: &str| m.lines().next().unwrap_or_default().to_string();
    // (Session 1 was the test's own check that the peer is up.)
    assert_eq!(session(&got[0]), session(&got[1]), "{got:?}");
    assert_ne!(session(&got[0]), "SESSION 1");
    let k = session(&got[0])["SESSION ".len()..].to_string();
    // Idle for the time limit: QUIT.
    let deadline = Instant::now() + WAIT;
    while !d.path().join(format!("quit-{k}")).exists() {
        assert!(Instant::now() < deadline, "the idle session was not closed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let third = submit(&inst, "alice@sender.test", &["dave@a.test"], MESSAGE, &[]);
    inst.wait_log(&format!("{third}: removed"), WAIT);
    let got = wait_files(d.path(), 3);
    assert_ne!(session(&got[2]), session(&got[0]), "{}", got[2]);
}

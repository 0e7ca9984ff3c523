//! smtp(8) with TLS: STARTTLS to a second Postern instance's smtpd with
//! an rcgen certificate, opportunistic and mandatory levels, `verify`
//! against a test CA through `smtp_tls_policy_maps`, DANE with TLSA
//! records from `test-dns` (a DNS server that sets the AD bit like a
//! validating resolver, which dnsmasq does not), and an MTA-STS policy
//! served by Python's HTTPS server. Plaintext peers are Postfix's
//! `smtp-sink`. Every server listens on its own 127.0.0.x address and
//! the test's port (`smtp_tcp_port`).

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postern_ipc::cleanup::{Client, Recipient};
use postern_queue::QueueFile;
use postern_tests::tls::{TestCa, TestCert, self_signed};
use postern_tests::{Instance, Proc, bin_dir, free_port, is_root};

const WAIT: Duration = Duration::from_secs(30);

/// The sender's services.
const TABLE: &str = "\
[cleanup]\ntype = \"unix\"\ncommand = \"cleanup\"\n\
[rewrite]\ntype = \"unix\"\ncommand = \"trivial-rewrite\"\n\
[qmgr]\ntype = \"unix\"\nprivate = false\nwakeup = \"1s\"\nmaxproc = 1\ncommand = \"qmgr\"\n\
[smtp-client]\ntype = \"unix\"\nservice = \"smtp\"\ncommand = \"smtp\"\n";

/// `test-dns` serving `zone` (see tests/src/bin/test-dns.rs).
fn dns(dir: &Path, zone: &str) -> (Proc, u16) {
    let file = dir.join("zone");
    fs::write(&file, zone).unwrap();
    let mut child = Command::new(bin_dir().join("test-dns"))
        .arg(&file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("test-dns");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("port from test-dns");
    (Proc(child), port)
}

fn wait_tcp(ip: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((ip, port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {ip}:{port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Postfix's smtp-sink (no STARTTLS) on ip:port.
fn smtp_sink(ip: &str, port: u16) -> Proc {
    let mut cmd = Command::new("smtp-sink");
    if is_root() {
        cmd.args(["-u", "nobody"]);
    }
    cmd.arg(format!("{ip}:{port}"))
        .arg("10")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = Proc(cmd.spawn().expect("smtp-sink (apt-get install postfix)"));
    wait_tcp(ip, port);
    child
}

/// A Postern smtpd with STARTTLS on ip:port presenting `cert`; mail
/// stays in its incoming queue (no qmgr), where the test reads it.
fn receiver(ip: &str, port: u16, host: &str, cert: &TestCert) -> Instance {
    receiver_with(ip, port, host, cert, "")
}

/// [`receiver`] with more main.toml settings.
fn receiver_with(ip: &str, port: u16, host: &str, cert: &TestCert, extra: &str) -> Instance {
    let table = format!(
        "[smtp]\ntype = \"inet\"\nlisten = \"{ip}:{port}\"\ncommand = \"smtpd\"\n\
         [cleanup]\ntype = \"unix\"\ncommand = \"cleanup\"\n\
         [rewrite]\ntype = \"unix\"\ncommand = \"trivial-rewrite\"\n"
    );
    let main = format!(
        "inet_interfaces = \"{ip}\"\nmyhostname = \"{host}\"\n\
         mynetworks = \"127.0.0.0/8\"\n\
         smtpd_tls_security_level = \"may\"\nsmtpd_tls_received_header = true\n\
         smtpd_tls_cert_file = \"{}\"\nsmtpd_tls_key_file = \"{}\"\n{extra}",
        cert.cert.display(),
        cert.key.display()
    );
    let mut inst = Instance::new(&main, &table);
    inst.start();
    wait_tcp(ip, port);
    inst
}

/// The sending instance: DNS at `dns_port`, servers on `port`, TLS as
/// `extra` says; `data` holds the MTA-STS cache.
fn sender(dns_port: u16, port: u16, data: &Path, extra: &str) -> Instance {
    let main = format!(
        "inet_interfaces = \"127.0.0.1\"\n\
         smtp_dns_resolver_address = \"127.0.0.1:{dns_port}\"\n\
         smtp_tcp_port = \"{port}\"\n\
         smtp_connect_timeout = \"5s\"\nsmtp_starttls_timeout = \"5s\"\n\
         smtp_tls_loglevel = 1\ndata_directory = \"{}\"\n\
         minimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"2s\"\n\
         queue_run_delay = \"1s\"\n{extra}",
        data.display()
    );
    let mut inst = Instance::new(&main, TABLE);
    inst.start();
    inst
}

/// Hands a message to cleanup; returns its queue id.
fn submit(inst: &Instance, rcpt: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let attempt = (|| {
            let mut c = Client::connect(&inst.queue_dir, WAIT, 0)?;
            c.sender("alice@sender.test")?;
            c.recipient(&Recipient {
                address: rcpt,
                ..Recipient::default()
            })?;
            c.begin_content()?;
            c.write_content(
                format!("From: alice@sender.test\nTo: {rcpt}\nSubject: tls\n\nhello\n").as_bytes(),
            )?;
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

/// The contents of the messages in `inst`'s incoming queue, once there
/// are `n`.
fn incoming(inst: &Instance, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let files: Vec<String> = fs::read_dir(inst.queue_dir.join("incoming"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    // Hidden names: files being written or kept for reuse.
                    .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
                    .filter_map(|e| QueueFile::open(&e.path()).ok())
                    .map(|qf| String::from_utf8_lossy(&qf.content_to_vec()).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if files.len() >= n {
            return files;
        }
        assert!(Instant::now() < deadline, "{} of {n} messages", files.len());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Submits a message to `rcpt`, waits until it is sent and checks that
/// its status line has `relay` (`relay=host[addr]...`); returns the log.
fn sent_via(inst: &Instance, rcpt: &str, relay: &str) -> String {
    let id = submit(inst, rcpt);
    let line = wait_status(inst, &id, "status=sent");
    assert!(line.contains(relay), "{line}");
    inst.log_text()
}

/// The log lines about queue id `id` (the status line, when it came).
fn wait_status(inst: &Instance, id: &str, status: &str) -> String {
    let log = inst.wait_log(&format!("{id}: to=<"), WAIT);
    let log = if log.contains(status) {
        log
    } else {
        inst.wait_log(status, WAIT)
    };
    log.lines()
        .filter(|l| l.contains(&format!("{id}: to=<")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tempdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    // The agents write the MTA-STS cache as mail_owner when run as root.
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o777)).unwrap();
    d
}

#[test]
fn may_uses_tls_when_offered_and_goes_plaintext_otherwise() {
    let port = free_port();
    let files = tempdir();
    let (_dns, dns_port) = dns(
        files.path(),
        "tls.test MX 10 mx.tls.test\nmx.tls.test A 127.0.0.31\n\
         plain.test MX 10 mx.plain.test\nmx.plain.test A 127.0.0.32\n",
    );
    let ca = TestCa::new(files.path(), "Smtp-TLS");
    let cert = ca.issue(files.path(), "mx.tls.test");
    let peer = receiver("127.0.0.31", port, "mx.tls.test", &cert);
    let _sink = smtp_sink("127.0.0.32", port);
    let inst = sender(
        dns_port,
        port,
        files.path(),
        &format!(
            "smtp_tls_security_level = \"may\"\nsmtp_tls_CAfile = \"{}\"\n",
            ca.cert.display()
        ),
    );
    let log = sent_via(
        &inst,
        "bob@tls.test",
        &format!("relay=mx.tls.test[127.0.0.31]:{port}"),
    );
    // The chain leads to smtp_tls_CAfile: Trusted (not Verified: `may`
    // checks no name).
    assert!(
        log.contains(&format!(
            "Trusted TLS connection established to mx.tls.test[127.0.0.31]:{port}: TLSv1.3 with cipher TLS_"
        )),
        "{log}"
    );
    let got = incoming(&peer, 1);
    assert!(got[0].contains("with ESMTPS id"), "{}", got[0]);
    assert!(got[0].contains("(using TLSv1.3 with cipher"), "{}", got[0]);

    sent_via(
        &inst,
        "carol@plain.test",
        &format!("relay=mx.plain.test[127.0.0.32]:{port}"),
    );
    assert!(
        !inst
            .log_text()
            .contains("TLS connection established to mx.plain.test")
    );
}

#[test]
fn a_failed_handshake_at_may_is_retried_in_plaintext() {
    let port = free_port();
    let files = tempdir();
    let (_dns, dns_port) = dns(
        files.path(),
        "old.test MX 10 mx.old.test\nmx.old.test A 127.0.0.41\n",
    );
    // The server speaks only TLS 1.3, the client only TLS 1.2.
    let cert = self_signed(files.path(), "mx.old.test");
    let peer = receiver_with(
        "127.0.0.41",
        port,
        "mx.old.test",
        &cert,
        "smtpd_tls_protocols = \">=TLSv1.3\"\n",
    );
    let inst = sender(
        dns_port,
        port,
        files.path(),
        "smtp_tls_security_level = \"may\"\nsmtp_tls_protocols = \"<=TLSv1.2\"\n",
    );
    let log = sent_via(&inst, "bob@old.test", "relay=mx.old.test[127.0.0.41]");
    assert!(
        log.contains(&format!(
            "SSL_connect error to mx.old.test[127.0.0.41]:{port}: "
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "mx.old.test[127.0.0.41]:{port}: trying plaintext delivery after TLS handshake failure"
        )),
        "{log}"
    );
    let got = incoming(&peer, 1);
    assert!(got[0].contains("with ESMTP id"), "{}", got[0]);
}

#[test]
fn encrypt_defers_when_the_server_offers_no_starttls() {
    let port = free_port();
    let files = tempdir();
    let (_dns, dns_port) = dns(
        files.path(),
        "plain.test MX 10 mx.plain.test\nmx.plain.test A 127.0.0.36\n",
    );
    let _sink = smtp_sink("127.0.0.36", port);
    let inst = sender(
        dns_port,
        port,
        files.path(),
        "smtp_tls_security_level = \"encrypt\"\n",
    );
    let id = submit(&inst, "carol@plain.test");
    let line = wait_status(&inst, &id, "status=deferred");
    assert!(line.contains("dsn=4.7.4"), "{line}");
    assert!(
        line.contains(
            "status=deferred (TLS is required, but was not offered by host mx.plain.test[127.0.0.36])"
        ),
        "{line}"
    );
}

#[test]
fn verify_by_policy_table_delivers_to_the_right_name_and_defers_the_wrong_one() {
    let port = free_port();
    let files = tempdir();
    // Both MX names lead to the same server, whose certificate names
    // mx.tls.test only.
    let (_dns, dns_port) = dns(
        files.path(),
        "tls.test MX 10 mx.tls.test\nmx.tls.test A 127.0.0.37\n\
         wrong.test MX 10 mx.wrong.test\nmx.wrong.test A 127.0.0.37\n",
    );
    let ca = TestCa::new(files.path(), "Smtp-TLS");
    let cert = ca.issue(files.path(), "mx.tls.test");
    let peer = receiver("127.0.0.37", port, "mx.tls.test", &cert);
    let inst = sender(
        dns_port,
        port,
        files.path(),
        &format!(
            "smtp_tls_security_level = \"may\"\nsmtp_tls_CAfile = \"{}\"\n\
             smtp_tls_policy_maps = \"inline:{{ tls.test=verify, wrong.test=verify }}\"\n",
            ca.cert.display()
        ),
    );
    let log = sent_via(&inst, "bob@tls.test", "relay=mx.tls.test[127.0.0.37]");
    assert!(
        log.contains(&format!(
            "Verified TLS connection established to mx.tls.test[127.0.0.37]:{port}: TLSv1.3"
        )),
        "{log}"
    );
    assert!(incoming(&peer, 1)[0].contains("with ESMTPS id"));

    let id = submit(&inst, "dave@wrong.test");
    let line = wait_status(&inst, &id, "status=deferred");
    assert!(line.contains("dsn=4.7.5"), "{line}");
    assert!(
        line.contains("status=deferred (Server certificate not verified)"),
        "{line}"
    );
    let log = inst.log_text();
    assert!(
        log.contains(&format!(
            "SSL_connect error to mx.wrong.test[127.0.0.37]:{port}: "
        )),
        "{log}"
    );
    // No plaintext retry at a mandatory level.
    assert!(!log.contains("trying plaintext delivery"), "{log}");
}

#[test]
fn policy_protocols_and_refused_attributes() {
    let port = free_port();
    let files = tempdir();
    // One TLS 1.2-only server under three names.
    let (_dns, dns_port) = dns(
        files.path(),
        "old.test MX 10 mx.old.test\nmx.old.test A 127.0.0.39\n\
         new.test MX 10 mx.new.test\nmx.new.test A 127.0.0.39\n\
         odd.test MX 10 mx.odd.test\nmx.odd.test A 127.0.0.39\n",
    );
    let ca = TestCa::new(files.path(), "Smtp-TLS");
    let cert = ca.issue(files.path(), "mx.old.test");
    let peer = receiver_with(
        "127.0.0.39",
        port,
        "mx.old.test",
        &cert,
        "smtpd_tls_protocols = \"<=TLSv1.2\"\n",
    );
    let inst = sender(
        dns_port,
        port,
        files.path(),
        "smtp_tls_security_level = \"may\"\n\
         smtp_tls_policy_maps = \"inline:{ { old.test = encrypt protocols=!TLSv1.3 }, \
         { new.test = encrypt protocols=>=TLSv1.3 }, { odd.test = encrypt exclude=aNULL } }\"\n",
    );
    let log = sent_via(&inst, "a@old.test", "relay=mx.old.test[127.0.0.39]");
    assert!(
        log.contains(&format!(
            "TLS connection established to mx.old.test[127.0.0.39]:{port}: TLSv1.2"
        )),
        "{log}"
    );
    assert_eq!(incoming(&peer, 1).len(), 1);

    // TLS 1.3 only, to a TLS 1.2 server: no handshake, no plaintext.
    let id = submit(&inst, "b@new.test");
    let line = wait_status(&inst, &id, "status=deferred");
    assert!(line.contains("dsn=4."), "{line}");
    assert!(!inst.log_text().contains("trying plaintext delivery"));

    // An attribute Postern cannot honour: the mail waits, and says why.
    let id = submit(&inst, "c@odd.test");
    let line = wait_status(&inst, &id, "status=deferred");
    assert!(
        line.contains("attribute exclude is not supported by Postern"),
        "{line}"
    );
}

/// TLSA `3 1 1` data for a certificate.
fn tlsa_hex(cert: &TestCert) -> String {
    let t = postern_tls::dane::Tlsa::for_cert(3, 1, 1, &cert.der).unwrap();
    t.data.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn dane_match_delivers_mismatch_defers_unsigned_dns_or_unusable_records_get_unverified_tls() {
    let port = free_port();
    let files = tempdir();
    let cert = self_signed(files.path(), "mx.dane.test");
    let good = tlsa_hex(&cert);
    let bad = "ab".repeat(32);
    // dane.test: signed, matching record; bad.test: signed, a record
    // for another key; unsigned.test: the same wrong record, but the MX
    // is not signed, so no DANE (RFC 7672 §2.2.1).
    let zone = format!(
        "dane.test MX 10 mx.dane.test\nmx.dane.test A 127.0.0.38\n\
         _{port}._tcp.mx.dane.test TLSA 3 1 1 {good}\n\
         bad.test MX 10 mx.bad.test\nmx.bad.test A 127.0.0.38\n\
         _{port}._tcp.mx.bad.test TLSA 3 1 1 {bad}\n\
         !unsigned.test MX 10 mx.unsigned.test\n!mx.unsigned.test A 127.0.0.38\n\
         !_{port}._tcp.mx.unsigned.test TLSA 3 1 1 {bad}\n\
         pkix.test MX 10 mx.pkix.test\nmx.pkix.test A 127.0.0.38\n\
         _{port}._tcp.mx.pkix.test TLSA 1 1 1 {bad}\n"
    );
    let (_dns, dns_port) = dns(files.path(), &zone);
    let peer = receiver("127.0.0.38", port, "mx.dane.test", &cert);
    let inst = sender(
        dns_port,
        port,
        files.path(),
        "smtp_tls_security_level = \"dane\"\nsmtp_dns_support_level = \"dnssec\"\n\
         smtp_tls_rpt_log_interval = 1\n",
    );
    let log = sent_via(&inst, "bob@dane.test", "relay=mx.dane.test[127.0.0.38]");
    assert!(
        log.contains(&format!(
            "Verified TLS connection established to mx.dane.test[127.0.0.38]:{port}: TLSv1.3"
        )),
        "{log}"
    );
    assert!(
        log.contains("tlsrpt: policy-domain=dane.test policy-type=tlsa successful=1 failed=0"),
        "{log}"
    );

    let id = submit(&inst, "dave@bad.test");
    let line = wait_status(&inst, &id, "status=deferred");
    assert!(line.contains("dsn=4.7.5"), "{line}");
    assert!(
        line.contains("status=deferred (Server certificate not verified)"),
        "{line}"
    );
    let log = inst.log_text();
    assert!(
        log.contains("tlsrpt: policy-domain=bad.test policy-type=tlsa result-type="),
        "{log}"
    );

    sent_via(
        &inst,
        "erin@unsigned.test",
        "relay=mx.unsigned.test[127.0.0.38]",
    );
    assert!(
        inst.log_text().contains(&format!(
            "Untrusted TLS connection established to mx.unsigned.test[127.0.0.38]:{port}"
        )),
        "{}",
        inst.log_text()
    );
    // Only PKIX records (not usable for SMTP, RFC 7672 §3.1.3): TLS is
    // mandatory, the certificate unchecked.
    sent_via(&inst, "fay@pkix.test", "relay=mx.pkix.test[127.0.0.38]");
    assert!(
        inst.log_text().contains(&format!(
            "Untrusted TLS connection established to mx.pkix.test[127.0.0.38]:{port}"
        )),
        "{}",
        inst.log_text()
    );
    assert_eq!(incoming(&peer, 3).len(), 3);
}

/// Python's HTTPS server for mta-sts.sts.test serving `policy`; its port.
fn sts_server(dir: &Path, ca: &TestCa, policy: &str) -> (Proc, u16) {
    let www = dir.join("www");
    fs::create_dir_all(www.join(".well-known")).unwrap();
    fs::write(www.join(".well-known/mta-sts.txt"), policy).unwrap();
    let web = ca.issue(dir, "mta-sts.sts.test");
    postern_tests::tls::https_server(&www, &web.cert, &web.key)
}

/// The zone of the MTA-STS tests: mx1 (preferred, 127.0.0.N) and mx2
/// (127.0.0.N+1), the TXT record, mta-sts.sts.test on 127.0.0.1.
fn sts_zone(first: u8) -> String {
    format!(
        "sts.test MX 10 mx1.sts.test\nsts.test MX 20 mx2.sts.test\n\
         mx1.sts.test A 127.0.0.{first}\nmx2.sts.test A 127.0.0.{}\n\
         _mta-sts.sts.test TXT v=STSv1; id=20260101\nmta-sts.sts.test A 127.0.0.1\n",
        first + 1
    )
}

#[test]
fn mta_sts_testing_delivers_to_an_unlisted_mx_and_reports_it() {
    let port = free_port();
    let files = tempdir();
    let ca = TestCa::new(files.path(), "Smtp-TLS");
    let (_https, https_port) = sts_server(
        files.path(),
        &ca,
        "version: STSv1\r\nmode: testing\r\nmx: mx2.sts.test\r\nmax_age: 86400\r\n",
    );
    let (_dns, dns_port) = dns(files.path(), &sts_zone(42));
    // mx1: not in the policy, no STARTTLS; testing mode uses it anyway.
    let _sink = smtp_sink("127.0.0.42", port);
    let inst = sender(
        dns_port,
        port,
        files.path(),
        &format!(
            "smtp_tls_security_level = \"may\"\nsmtp_tls_CAfile = \"{}\"\n\
             smtp_mta_sts_enable = true\nsmtp_mta_sts_port = {https_port}\n\
             smtp_tls_rpt_log_interval = 0\n",
            ca.cert.display()
        ),
    );
    let log = sent_via(
        &inst,
        "bob@sts.test",
        &format!("relay=mx1.sts.test[127.0.0.42]:{port}"),
    );
    assert!(
        log.contains("MTA-STS policy for sts.test (testing) does not list MX host mx1.sts.test\n"),
        "{log}"
    );
    assert!(
        log.contains(
            "tlsrpt: policy-domain=sts.test policy-type=sts result-type=starttls-not-supported \
             receiving-mx-hostname=mx1.sts.test"
        ),
        "{log}"
    );
}

#[test]
fn mta_sts_enforce_skips_an_mx_the_policy_does_not_list() {
    let port = free_port();
    let files = tempdir();
    let ca = TestCa::new(files.path(), "Smtp-TLS");
    let (_https, https_port) = sts_server(
        files.path(),
        &ca,
        "version: STSv1\r\nmode: enforce\r\nmx: mx2.sts.test\r\nmax_age: 86400\r\n",
    );
    // mx1 is preferred but not in the policy (and offers no TLS).
    let (_dns, dns_port) = dns(files.path(), &sts_zone(39));
    let _sink = smtp_sink("127.0.0.39", port);
    let cert = ca.issue(files.path(), "mx2.sts.test");
    let peer = receiver("127.0.0.40", port, "mx2.sts.test", &cert);
    let inst = sender(
        dns_port,
        port,
        files.path(),
        &format!(
            "smtp_tls_security_level = \"may\"\nsmtp_tls_CAfile = \"{}\"\n\
             smtp_mta_sts_enable = true\nsmtp_mta_sts_port = {https_port}\n\
             smtp_tls_rpt_log_interval = 1\n",
            ca.cert.display()
        ),
    );
    let log = sent_via(
        &inst,
        "bob@sts.test",
        &format!("relay=mx2.sts.test[127.0.0.40]:{port}"),
    );
    assert!(
        log.contains("MTA-STS policy for sts.test: mode=enforce max_age=86400 mx=mx2.sts.test"),
        "{log}"
    );
    assert!(
        log.contains(
            "MTA-STS policy for sts.test (enforce) does not list MX host mx1.sts.test: skipped"
        ),
        "{log}"
    );
    assert!(!log.contains("relay=mx1.sts.test"), "{log}");
    assert!(
        log.contains(&format!(
            "Verified TLS connection established to mx2.sts.test[127.0.0.40]:{port}"
        )),
        "{log}"
    );
    assert!(
        log.contains("tlsrpt: policy-domain=sts.test policy-type=sts successful=1 failed=0"),
        "{log}"
    );
    assert!(incoming(&peer, 1)[0].contains("with ESMTPS id"));
    // The policy is cached for the next message (no second fetch line).
    let id = submit(&inst, "carol@sts.test");
    wait_status(&inst, &id, "status=sent");
    assert_eq!(
        inst.log_text()
            .matches("MTA-STS policy for sts.test: mode=enforce")
            .count(),
        1
    );
}

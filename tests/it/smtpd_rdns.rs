//! smtpd's client host names (`smtpd_peername_lookup`): a real DNS
//! server (dnsmasq on a loopback port, `smtpd_dns_resolver_address`)
//! has a PTR record for 127.0.0.2 that forward-confirms, one for
//! 127.0.0.3 whose name resolves elsewhere, one for 127.0.0.6 whose name
//! does not exist, none for 127.0.0.4 (NXDOMAIN) and refuses 127.0.0.5
//! (a temporary failure). Python's smtplib connects from each address;
//! the log lines and the `Received:` headers of the queued mail (read
//! with postcat) say who the client was, and
//! `reject_unknown_client_hostname` /
//! `reject_unknown_reverse_client_hostname` refuse with Postfix's codes.

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use postern_tests::{Instance, bin_dir, dnsmasq, free_port};

const WAIT: Duration = Duration::from_secs(20);

/// dnsmasq with the zone described above.
fn zone() -> (postern_tests::Proc, u16) {
    dnsmasq(&[
        // A and PTR.
        "--host-record=good.test,127.0.0.2".into(),
        "--ptr-record=3.0.0.127.in-addr.arpa,liar.test".into(),
        "--host-record=liar.test,127.0.0.9".into(),
        "--ptr-record=6.0.0.127.in-addr.arpa,gone.test".into(),
        "--local=/4.0.0.127.in-addr.arpa/".into(),
    ])
}

/// smtpd on `port` (no restrictions) and on `strict` (client names
/// required: the reverse name in the client list, the verified name in
/// the sender list, `unknown_client_reject_code = 550`), with cleanup and
/// trivial-rewrite; no qmgr, so mail stays queued for postcat.
fn start(main_extra: &str) -> (Instance, u16, u16) {
    let (port, strict) = (free_port(), free_port());
    let master = format!(
        "[smtp]\ntype = \"inet\"\nlisten = \"127.0.0.1:{port}\"\ncommand = \"smtpd\"\n\n\
         [strict]\ntype = \"inet\"\nlisten = \"127.0.0.1:{strict}\"\ncommand = \"smtpd\"\n\
         args = [\"-o\", \"smtpd_client_restrictions=reject_unknown_reverse_client_hostname\", \
         \"-o\", \"smtpd_sender_restrictions=reject_unknown_client_hostname\", \
         \"-o\", \"unknown_client_reject_code=550\"]\n\n\
         [rewrite]\ntype = \"unix\"\ncommand = \"trivial-rewrite\"\n\n\
         [cleanup]\ntype = \"unix\"\ncommand = \"cleanup\"\n"
    );
    let main =
        format!("mynetworks = \"127.0.0.1/32\"\nsmtpd_peername_lookup = true\n{main_extra}\n");
    let mut inst = Instance::new(&main, &master);
    inst.start();
    (inst, port, strict)
}

/// Sends one message from each source address in `sources` to
/// postmaster (always a valid local recipient); prints per address
/// `ADDR CODE TEXT` for the reply to DATA, or to the first refused
/// command.
const CLIENT: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
for addr in sys.argv[2:]:
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test",
                     source_address=(addr, 0), timeout=30)
    s.ehlo()
    result = None
    for cmd in (lambda: s.mail("sender@example.org"),
                lambda: s.rcpt("postmaster@mail.example.test"),
                lambda: s.data(b"Subject: hello\r\n\r\nbody\r\n")):
        code, text = cmd()
        result = (code, text.decode())
        if code >= 400:
            break
    s.quit()
    print(addr, result[0], result[1])
"#;

/// Runs [`CLIENT`]: the line for each address, in order.
fn send(port: u16, sources: &[&str]) -> Vec<String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(CLIENT)
        .arg(port.to_string())
        .args(sources)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

/// The queue ID from `ADDR 250 2.0.0 Ok: queued as ID`.
fn queue_id(line: &str) -> String {
    line.rsplit(' ').next().unwrap_or_default().to_string()
}

fn postcat(inst: &Instance, id: &str) -> String {
    let out = Command::new(bin_dir().join("postcat"))
        .args(["-c", inst.config_dir.to_str().unwrap(), "-q", id])
        .output()
        .expect("postcat");
    assert!(out.status.success(), "postcat {id}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn client_names_are_forward_confirmed_in_logs_and_received_headers() {
    let (_dns, dns_port) = zone();
    let (inst, port, _) = start(&format!(
        "smtpd_dns_resolver_address = \"127.0.0.1:{dns_port}\""
    ));
    let started = Instant::now();
    let lines = send(port, &["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.6"]);
    assert!(started.elapsed() < Duration::from_secs(5), "{lines:?}");
    for line in &lines {
        assert!(line.contains(" 250 2.0.0 Ok: queued as "), "{lines:?}");
    }
    let log = inst.wait_log("disconnect from unknown[127.0.0.6]", WAIT);

    // Forward-confirmed: the name everywhere.
    let good = queue_id(&lines[0]);
    for l in [
        "connect from good.test[127.0.0.2]".to_string(),
        format!("{good}: client=good.test[127.0.0.2]"),
        "disconnect from good.test[127.0.0.2] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
            .to_string(),
    ] {
        assert!(log.contains(&l), "{l}\n{log}");
    }
    let shown = postcat(&inst, &good);
    assert!(
        shown.contains("Received: from client.test (good.test [127.0.0.2])"),
        "{shown}"
    );
    assert!(shown.contains("client_name=good.test"), "{shown}");
    assert!(shown.contains("reverse_client_name=good.test"), "{shown}");

    // The PTR name resolves to another address: unknown, but the
    // reverse name is kept in the envelope.
    let liar = queue_id(&lines[1]);
    for l in [
        "warning: hostname liar.test does not resolve to address 127.0.0.3\n".to_string(),
        "connect from unknown[127.0.0.3]".to_string(),
        format!("{liar}: client=unknown[127.0.0.3]"),
    ] {
        assert!(log.contains(&l), "{l}\n{log}");
    }
    let shown = postcat(&inst, &liar);
    assert!(
        shown.contains("Received: from client.test (unknown [127.0.0.3])"),
        "{shown}"
    );
    assert!(shown.contains("reverse_client_name=liar.test"), "{shown}");

    // No PTR record at all: unknown, no warning.
    let none = queue_id(&lines[2]);
    assert!(
        log.contains(&format!("{none}: client=unknown[127.0.0.4]")),
        "{log}"
    );
    assert!(!log.contains("address 127.0.0.4"), "{log}");
    let shown = postcat(&inst, &none);
    assert!(
        shown.contains("Received: from client.test (unknown [127.0.0.4])"),
        "{shown}"
    );
    assert!(shown.contains("reverse_client_name=unknown"), "{shown}");

    // The PTR name does not exist.
    assert!(
        log.contains(
            "warning: hostname gone.test does not resolve to address 127.0.0.6: \
             Name or service not known"
        ),
        "{log}"
    );
}

#[test]
fn reject_unknown_client_hostname_and_reverse_client_hostname() {
    let (_dns, dns_port) = zone();
    let (inst, _, strict) = start(&format!(
        "smtpd_dns_resolver_address = \"127.0.0.1:{dns_port}\""
    ));
    let lines = send(
        strict,
        &["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"],
    );
    assert!(
        lines[0].starts_with("127.0.0.2 250 2.0.0 Ok: queued as "),
        "{lines:?}"
    );
    // The reverse name is enough for the client list; the sender list
    // wants it forward-confirmed.
    assert_eq!(
        lines[1],
        "127.0.0.3 550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.3]"
    );
    // No PTR: unknown_client_reject_code.
    assert_eq!(
        lines[2],
        "127.0.0.4 550 5.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.4]"
    );
    // The DNS server refused: a temporary failure is always 450.
    assert_eq!(
        lines[3],
        "127.0.0.5 450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.5]"
    );
    let log = inst.wait_log("disconnect from unknown[127.0.0.5]", WAIT);
    assert!(
        log.contains(
            "NOQUEUE: reject: RCPT from unknown[127.0.0.4]: 550 5.7.1 Client host rejected: \
             cannot find your reverse hostname, [127.0.0.4]; from=<sender@example.org> \
             to=<postmaster@mail.example.test> proto=ESMTP helo=<client.test>"
        ),
        "{log}"
    );
    assert!(log.contains("connect from good.test[127.0.0.2]"), "{log}");
}

#[test]
fn a_silent_dns_server_delays_the_greeting_only_up_to_the_limit() {
    // Bound, never answering.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns = silent.local_addr().unwrap();
    let (inst, port, strict) = start(&format!("smtpd_dns_resolver_address = \"{dns}\""));
    let started = Instant::now();
    let lines = send(port, &["127.0.0.2"]);
    // One PTR query, cut off at its share of smtpd's 5-second limit.
    assert!(started.elapsed() < Duration::from_secs(6), "{lines:?}");
    assert!(lines[0].contains(" 250 2.0.0 Ok: queued as "), "{lines:?}");
    inst.wait_log("disconnect from unknown[127.0.0.2]", WAIT);
    // A timeout is a temporary failure.
    let lines = send(strict, &["127.0.0.2"]);
    assert!(
        lines[0].starts_with("127.0.0.2 450 4.7.1 Client host rejected: cannot find your reverse"),
        "{lines:?}"
    );
}

#[test]
fn the_default_resolver_still_accepts_mail_promptly() {
    // make run's case: lookups on (the default), the servers of
    // /etc/resolv.conf, whatever they say about 127.0.0.1.
    let (inst, port, _) = start("");
    let started = Instant::now();
    let lines = send(port, &["127.0.0.1"]);
    assert!(lines[0].contains(" 250 2.0.0 Ok: queued as "), "{lines:?}");
    // At worst one PTR and one A query, each within smtpd's limit.
    assert!(started.elapsed() < Duration::from_secs(11), "{lines:?}");
    let log = inst.wait_log("[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1", WAIT);
    assert!(log.contains("connect from "), "{log}");
}

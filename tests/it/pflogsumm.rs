//! pflogsumm (the Debian package) summarises a Postern log as it does a
//! Postfix one: a test instance receives mail by SMTP and by sendmail,
//! delivers it with local(8) and virtual(8), defers mail for a transport
//! that is not running, bounces mail for an unknown virtual user and
//! rejects a relay attempt; the "Grand Totals" of pflogsumm must count
//! exactly that.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use postern_tests::{Instance, bin_dir, free_port};

const WAIT: Duration = Duration::from_secs(20);

/// pflogsumm's "Grand Totals" message counts, by label.
fn grand_totals(report: &str) -> HashMap<String, u64> {
    let mut totals = HashMap::new();
    let section = report
        .split_once("Grand Totals")
        .unwrap_or_else(|| panic!("no Grand Totals in:\n{report}"))
        .1;
    for line in section.lines().skip(1) {
        // "      4   received": a number, then the label, until the
        // byte counts start.
        if line.contains("bytes received") {
            break;
        }
        let mut words = line.split_whitespace();
        let (Some(n), Some(label)) = (words.next(), words.next()) else {
            continue;
        };
        if let Ok(n) = n.parse() {
            totals.insert(label.to_string(), n);
        }
    }
    totals
}

#[test]
fn pflogsumm_counts_received_delivered_deferred_and_bounced() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    fs::write(
        t.join("aliases"),
        format!("tofile: {}/out.mbox\n", t.display()),
    )
    .unwrap();
    fs::create_dir_all(t.join("mail")).unwrap();
    fs::create_dir_all(t.join("spool")).unwrap();
    let port = free_port();
    let main = format!(
        "mydestination = \"localhost, $myhostname\"\n\
         mynetworks = \"127.0.0.1/32\"\n\
         alias_maps = \"texthash:{d}/aliases\"\n\
         local_recipient_maps = \"$alias_maps\"\n\
         mail_spool_directory = \"{d}/spool\"\n\
         virtual_mailbox_domains = \"example.test\"\n\
         virtual_mailbox_maps = \"inline:{{ dev@example.test=dev/Maildir/ }}\"\n\
         virtual_mailbox_base = \"{d}/mail\"\n",
        d = t.display()
    );
    // No smtp service: mail for other domains is deferred, as on a system
    // whose smtp client is down.
    let master = format!(
        "[smtp]\ntype = \"inet\"\nlisten = \"127.0.0.1:{port}\"\ncommand = \"smtpd\"\n\
         [cleanup]\ntype = \"unix\"\ncommand = \"cleanup\"\n\
         [rewrite]\ntype = \"unix\"\ncommand = \"trivial-rewrite\"\n\
         [pickup]\ntype = \"unix\"\nprivate = false\nwakeup = \"60s\"\nmaxproc = 1\ncommand = \"pickup\"\n\
         [qmgr]\ntype = \"unix\"\nprivate = false\nwakeup = \"300s\"\nmaxproc = 1\ncommand = \"qmgr\"\n\
         [local]\ntype = \"unix\"\nunpriv = false\ncommand = \"local\"\n\
         [virtual]\ntype = \"unix\"\nunpriv = false\ncommand = \"virtual\"\n"
    );
    let mut inst = Instance::new(&main, &master);
    inst.start();

    // Three messages by SMTP: to a virtual mailbox, to a local alias (a
    // file), and to another domain.
    // And a relay attempt from outside mynetworks, which smtpd rejects.
    let script = format!(
        "import smtplib\n\
         s = smtplib.SMTP('127.0.0.1', {port}, timeout=20)\n\
         for rcpt in ['dev@example.test', 'tofile@localhost', 'someone@elsewhere.invalid']:\n\
         \x20   s.sendmail('sender@example.test', [rcpt], 'Subject: to %s\\r\\n\\r\\nhello\\r\\n' % rcpt)\n\
         s.quit()\n\
         s = smtplib.SMTP('127.0.0.1', {port}, timeout=20, source_address=('127.0.0.2', 0))\n\
         try:\n\
         \x20   s.sendmail('spam@example.net', ['victim@elsewhere.invalid'], 'Subject: relay\\r\\n\\r\\nx\\r\\n')\n\
         \x20   raise SystemExit('relayed from outside mynetworks')\n\
         except smtplib.SMTPRecipientsRefused:\n\
         \x20   pass\n\
         s.quit()\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // One by sendmail, to a virtual user that does not exist: it bounces,
    // and the non-delivery report goes to dev@example.test.
    let mut child = Command::new(bin_dir().join("sendmail"))
        .arg("-C")
        .arg(&inst.config_dir)
        .args(["-f", "dev@example.test", "nobody@example.test"])
        .env_remove("MAIL_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sendmail");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Subject: to nobody\n\nhello\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    inst.wait_log("status=deferred", WAIT);
    inst.wait_log("status=bounced", WAIT);
    // dev@example.test twice (the SMTP message and the bounce), tofile.
    inst.wait_log_count("status=sent", 3, WAIT);
    inst.stop();
    let log = inst.log_text();

    let out = Command::new("pflogsumm")
        .arg("--syslog-name=postern")
        .arg(&inst.log)
        .output()
        .expect("pflogsumm (Debian package pflogsumm) must be installed");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let totals = grand_totals(&report);
    let count = |label: &str| totals.get(label).copied().unwrap_or(0);
    let context = format!("report:\n{report}\nlog:\n{log}");
    assert_eq!(count("received"), 4, "{context}");
    assert_eq!(count("delivered"), 3, "{context}");
    assert_eq!(count("deferred"), 1, "{context}");
    assert_eq!(count("bounced"), 1, "{context}");
    assert_eq!(count("rejected"), 1, "{context}");
    // The per-domain tables are filled from the same lines, and the
    // deferral reason reads whole (a ')' inside it would cut it short).
    assert!(report.contains("elsewhere.invalid"), "{context}");
    let deferrals = report
        .split_once("message deferral detail")
        .expect("deferral detail")
        .1;
    assert!(
        deferrals.contains("private/smtp: No such file or directory\n"),
        "{context}"
    );
    assert!(
        report.contains("unknown user: \"nobody@example.test\""),
        "{context}"
    );
}

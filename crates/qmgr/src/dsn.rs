//! Per-message defer and bounce logs, retry backoff, and the RFC 3464
//! non-delivery report (Postfix `bounce_append`, `bounce_notify`,
//! `bounce_template.c`, the backoff of `qmgr_active.c`).
//!
//! A log (`defer/ID`, `bounce/ID`) holds one line per recipient and
//! attempt: `address TAB dsn TAB reason`, then, when a remote server gave
//! the result, `TAB diagnostic TAB mta` (`smtp; 550 5.1.1 ...`,
//! `dns; mx.example.com`), with tabs and line breaks in the fields
//! replaced by spaces.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// One line of a defer or bounce log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogEntry {
    /// The recipient.
    pub(crate) address: String,
    /// The RFC 3463 status (`5.1.1`).
    pub(crate) dsn: String,
    /// Why.
    pub(crate) reason: String,
    /// The remote server's reply for the DSN `Diagnostic-Code:`
    /// (`smtp; 550 5.1.1 ...`), empty if none.
    pub(crate) diagnostic: String,
    /// The remote server for the DSN `Remote-MTA:` (`dns; mx.example`),
    /// empty if none.
    pub(crate) mta: String,
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\t' || c == '\n' || c == '\r' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Appends entries to the log at `path` (created mode 0600).
pub(crate) fn append(path: &Path, entries: &[LogEntry]) -> io::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for e in entries {
        text.push_str(&format!(
            "{}\t{}\t{}",
            clean(&e.address),
            clean(&e.dsn),
            clean(&e.reason)
        ));
        if !e.diagnostic.is_empty() || !e.mta.is_empty() {
            text.push_str(&format!("\t{}\t{}", clean(&e.diagnostic), clean(&e.mta)));
        }
        text.push('\n');
    }
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Parses a log; malformed lines are skipped.
pub(crate) fn parse(text: &str) -> Vec<LogEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(5, '\t');
            Some(LogEntry {
                address: it.next()?.to_string(),
                dsn: it.next()?.to_string(),
                reason: it.next()?.to_string(),
                diagnostic: it.next().unwrap_or_default().to_string(),
                mta: it.next().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// Reads a log; a missing file is empty.
pub(crate) fn read(path: &Path) -> io::Result<Vec<LogEntry>> {
    match fs::read(path) {
        Ok(b) => Ok(parse(&String::from_utf8_lossy(&b))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The number of delivery attempts so far for the recipients in
/// `pending`: the most lines any of them has in the defer log.
pub(crate) fn attempts(log: &[LogEntry], pending: &[&str]) -> u32 {
    pending
        .iter()
        .map(|a| log.iter().filter(|e| e.address == *a).count())
        .max()
        .unwrap_or(0)
        .try_into()
        .unwrap_or(u32::MAX)
}

/// The wait before the next attempt after `attempts` failed ones:
/// `minimal_backoff_time` doubled per attempt after the first, at most
/// `maximal_backoff_time`.
pub(crate) fn backoff(attempts: u32, min: Duration, max: Duration) -> Duration {
    let shift = attempts.saturating_sub(1).min(40);
    let d = min.saturating_mul(1u32 << shift.min(31));
    d.min(max.max(min))
}

/// An RFC 5322 date.
pub(crate) fn date(at: SystemTime) -> String {
    let ts = jiff::Timestamp::try_from(at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let zoned = ts.to_zoned_datetime(jiff::tz::TimeZone::system());
    zoned.strftime("%a, %d %b %Y %H:%M:%S %z").to_string()
}

/// What the report is about.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    /// This host (`myhostname`).
    pub(crate) hostname: &'a str,
    /// The bounced message's queue id.
    pub(crate) queue_id: &'a str,
    /// Its sender (the report's recipient).
    pub(crate) sender: &'a str,
    /// Its arrival time.
    pub(crate) arrival: SystemTime,
    /// Now (Date, boundary).
    pub(crate) now: SystemTime,
    /// DSN `RET`: `HDRS` returns headers only.
    pub(crate) ret: &'a str,
    /// DSN `ENVID`, empty if none.
    pub(crate) envid: &'a str,
    /// The failed recipients.
    pub(crate) failed: &'a [LogEntry],
    /// The original message content.
    pub(crate) content: &'a [u8],
    /// Most bytes of the original message to return (`bounce_size_limit`).
    pub(crate) size_limit: usize,
}

/// The header block of `content` (up to and including the empty line, or
/// everything when there is none).
fn headers(content: &[u8]) -> &[u8] {
    let mut pos = 0;
    while pos < content.len() {
        let end = content[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(content.len(), |i| pos + i + 1);
        let line = &content[pos..end];
        if line == b"\n" || line == b"\r\n" {
            return &content[..pos];
        }
        pos = end;
    }
    content
}

fn status_class_text(dsn: &str) -> String {
    // A DSN must be a.b.c with a class of 2, 4 or 5; anything else is 5.0.0.
    let ok = {
        let parts: Vec<&str> = dsn.split('.').collect();
        parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    if ok {
        // A failed recipient always has a permanent class.
        let rest = dsn.split_once('.').map_or("0.0", |(_, r)| r);
        format!("5.{rest}")
    } else {
        "5.0.0".to_string()
    }
}

/// The complete report message (headers and body), LF line endings.
pub(crate) fn non_delivery_report(r: &Report<'_>) -> Vec<u8> {
    let secs = r
        .now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let boundary = format!("{}.{}/{}", r.queue_id, secs, r.hostname);
    let mut m = String::new();
    m.push_str(&format!(
        "From: MAILER-DAEMON@{h} (Mail Delivery System)\n\
         To: {s}\n\
         Subject: Undelivered Mail Returned to Sender\n\
         Date: {d}\n\
         Message-Id: <{secs}.{q}@{h}>\n\
         Auto-Submitted: auto-replied\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/report; report-type=delivery-status;\n\
         \tboundary=\"{boundary}\"\n\
         Content-Transfer-Encoding: 8bit\n\
         \n\
         This is a MIME-encapsulated message.\n\
         \n\
         --{boundary}\n\
         Content-Description: Notification\n\
         Content-Type: text/plain; charset=us-ascii\n\
         \n\
         This is the mail system at host {h}.\n\
         \n\
         I'm sorry to have to inform you that your message could not\n\
         be delivered to one or more recipients. It's attached below.\n\
         \n\
         For further assistance, please send mail to postmaster.\n\
         \n\
         If you do so, please include this problem report. You can\n\
         delete your own text from the attached returned message.\n\
         \n\
         \x20                  The mail system\n\
         \n",
        h = r.hostname,
        s = r.sender,
        d = date(r.now),
        q = r.queue_id,
    ));
    for f in r.failed {
        m.push_str(&format!("<{}>: {}\n", f.address, f.reason));
    }
    m.push_str(&format!(
        "\n--{boundary}\n\
         Content-Description: Delivery report\n\
         Content-Type: message/delivery-status\n\
         \n\
         Reporting-MTA: dns; {h}\n\
         X-Postfix-Queue-ID: {q}\n\
         X-Postfix-Sender: rfc822; {s}\n\
         Arrival-Date: {a}\n",
        h = r.hostname,
        q = r.queue_id,
        s = r.sender,
        a = date(r.arrival),
    ));
    if !r.envid.is_empty() {
        m.push_str(&format!("Original-Envelope-Id: {}\n", r.envid));
    }
    for f in r.failed {
        m.push_str(&format!(
            "\nFinal-Recipient: rfc822; {}\n\
             Action: failed\n\
             Status: {}\n",
            f.address,
            status_class_text(&f.dsn),
        ));
        if !f.mta.is_empty() {
            m.push_str(&format!("Remote-MTA: {}\n", f.mta));
        }
        if f.diagnostic.is_empty() {
            m.push_str(&format!("Diagnostic-Code: X-Postfix; {}\n", f.reason));
        } else {
            m.push_str(&format!("Diagnostic-Code: {}\n", f.diagnostic));
        }
    }
    let hdrs_only = r.ret.eq_ignore_ascii_case("HDRS") || r.content.len() > r.size_limit;
    let mut out = m.into_bytes();
    if hdrs_only {
        out.extend_from_slice(
            format!(
                "\n--{boundary}\n\
                 Content-Description: Undelivered Message Headers\n\
                 Content-Type: text/rfc822-headers\n\
                 Content-Transfer-Encoding: 8bit\n\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(headers(r.content));
    } else {
        out.extend_from_slice(
            format!(
                "\n--{boundary}\n\
                 Content-Description: Undelivered Message\n\
                 Content-Type: message/rfc822\n\
                 Content-Transfer-Encoding: 8bit\n\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(r.content);
    }
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(format!("\n--{boundary}--\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let min = Duration::from_secs(300);
        let max = Duration::from_secs(4000);
        assert_eq!(backoff(0, min, max), min);
        assert_eq!(backoff(1, min, max), min);
        assert_eq!(backoff(2, min, max), Duration::from_secs(600));
        assert_eq!(backoff(4, min, max), Duration::from_secs(2400));
        assert_eq!(backoff(5, min, max), max);
        assert_eq!(backoff(u32::MAX, min, max), max);
    }

    #[test]
    fn logs_round_trip_and_count_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ID");
        let e = |a: &str| LogEntry {
            address: a.into(),
            dsn: "4.0.0".into(),
            reason: "try\tagain\nlater".into(),
            diagnostic: String::new(),
            mta: String::new(),
        };
        append(&p, &[e("a@x"), e("b@x")]).unwrap();
        append(&p, &[e("a@x")]).unwrap();
        let got = read(&p).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].reason, "try again later");
        assert_eq!(attempts(&got, &["a@x", "b@x"]), 2);
        assert_eq!(attempts(&got, &["b@x"]), 1);
        assert_eq!(attempts(&got, &["c@x"]), 0);
        assert!(read(&dir.path().join("none")).unwrap().is_empty());
    }

    fn report<'a>(failed: &'a [LogEntry], content: &'a [u8], ret: &'a str) -> Report<'a> {
        Report {
            hostname: "mail.example.test",
            queue_id: "4QID",
            sender: "alice@example.test",
            arrival: SystemTime::UNIX_EPOCH,
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(100),
            ret,
            envid: "",
            failed,
            content,
            size_limit: 50000,
        }
    }

    #[test]
    fn report_has_the_rfc3464_parts() {
        let failed = [LogEntry {
            address: "bob@example.test".into(),
            dsn: "5.1.1".into(),
            reason: "unknown user: \"bob\"".into(),
            diagnostic: String::new(),
            mta: String::new(),
        }];
        let content = b"Subject: hi\nFrom: alice@example.test\n\nbody line\n";
        let text = String::from_utf8(non_delivery_report(&report(&failed, content, ""))).unwrap();
        let b = "4QID.100/mail.example.test";
        assert!(text.contains(&format!("boundary=\"{b}\"")), "{text}");
        assert!(text.contains("Content-Type: multipart/report; report-type=delivery-status"));
        assert!(text.contains("<bob@example.test>: unknown user: \"bob\"\n"));
        assert!(text.contains(
            "\nFinal-Recipient: rfc822; bob@example.test\nAction: failed\nStatus: 5.1.1\n\
             Diagnostic-Code: X-Postfix; unknown user: \"bob\"\n"
        ));
        assert!(text.contains("Content-Type: message/rfc822\n"));
        assert!(text.contains("\nbody line\n"));
        assert!(text.ends_with(&format!("\n--{b}--\n")));
        assert_eq!(text.matches(&format!("--{b}\n")).count(), 3);

        let text =
            String::from_utf8(non_delivery_report(&report(&failed, content, "HDRS"))).unwrap();
        assert!(text.contains("Content-Type: text/rfc822-headers\n"));
        assert!(text.contains("From: alice@example.test\n"));
        assert!(!text.contains("body line"));
    }

    #[test]
    fn remote_diagnostics_reach_the_report() {
        let failed = [LogEntry {
            address: "bob@remote.test".into(),
            dsn: "5.1.1".into(),
            reason: "host mx.remote.test[192.0.2.1] said: 550 5.1.1 no such user (in reply to RCPT TO command)".into(),
            diagnostic: "smtp; 550 5.1.1 no such user".into(),
            mta: "dns; mx.remote.test".into(),
        }];
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ID");
        append(&p, &failed).unwrap();
        assert_eq!(read(&p).unwrap(), failed);
        let text =
            String::from_utf8(non_delivery_report(&report(&failed, b"S: x\n\nb\n", ""))).unwrap();
        assert!(
            text.contains(
                "Status: 5.1.1\nRemote-MTA: dns; mx.remote.test\n\
                 Diagnostic-Code: smtp; 550 5.1.1 no such user\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn status_is_permanent_and_well_formed() {
        assert_eq!(status_class_text("5.1.1"), "5.1.1");
        assert_eq!(status_class_text("4.4.1"), "5.4.1");
        assert_eq!(status_class_text("junk"), "5.0.0");
        assert_eq!(status_class_text(""), "5.0.0");
        assert_eq!(headers(b"A: b\r\n\r\nbody"), b"A: b\r\n");
        assert_eq!(headers(b"A: b\n"), b"A: b\n");
    }
}

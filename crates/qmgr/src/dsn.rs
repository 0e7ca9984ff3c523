//! Retry backoff and the RFC 3464 delivery status notifications:
//! non-delivery, delay and success reports and the postmaster's copies
//! (Postfix `bounce_notify_service.c`, `bounce_warn_service.c`,
//! `bounce_trace_service.c`, `bounce_template.c`, the backoff of
//! `qmgr_active.c`). The per-message logs they are built from are
//! [`postern_queue::log`] (also read by showq and postsuper).

use std::time::{Duration, SystemTime};

pub(crate) use postern_queue::log::{LogEntry, append, read, read_existing};

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
    let zoned = ts.to_zoned_datetime(postern_util::time::local_zone());
    zoned.strftime("%a, %d %b %Y %H:%M:%S %z").to_string()
}

/// Which report (Postfix's bounce templates and services).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Non-delivery report to the sender.
    Failure,
    /// Delay warning to the sender (`delay_warning_time`).
    Delay,
    /// Success report to the sender (`NOTIFY=SUCCESS`).
    Success,
    /// The postmaster's copy of a non-delivery report (headers only,
    /// `notify_classes` has `bounce`), or of a delay warning (`delay`).
    PostmasterCopy,
    /// A bounce that could not be delivered, to the postmaster (`bounce`
    /// or `2bounce` in `notify_classes`), with the whole bounce.
    DoubleBounce,
}

/// What the report is about.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    /// Which report.
    pub(crate) kind: Kind,
    /// Whether the recipients' entries are delays (for the postmaster's
    /// copy of a delay warning).
    pub(crate) delayed: bool,
    /// Who gets it (the `To:` header).
    pub(crate) to: &'a str,
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
    /// The recipients reported on.
    pub(crate) failed: &'a [LogEntry],
    /// `delay_warning_time` and the queue lifetime (for the delay text).
    pub(crate) warn_after: Duration,
    /// The queue lifetime.
    pub(crate) lifetime: Duration,
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

/// `dsn` with its class forced to `class` (a failed recipient always has a
/// permanent status, a delayed one a transient one, a delivered one a
/// success); malformed text becomes `class.0.0`.
fn status_with_class(dsn: &str, class: char) -> String {
    let ok = {
        let parts: Vec<&str> = dsn.split('.').collect();
        parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let rest = dsn.split_once('.').map_or("0.0", |(_, r)| r);
    if ok {
        format!("{class}.{rest}")
    } else {
        format!("{class}.0.0")
    }
}

/// A duration in the words of Postfix's delay template.
fn words(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s >= 86400 && s.is_multiple_of(86400) {
        (s / 86400, "day")
    } else if s >= 3600 && s.is_multiple_of(3600) {
        (s / 3600, "hour")
    } else if s >= 60 && s.is_multiple_of(60) {
        (s / 60, "minute")
    } else {
        (s, "second")
    };
    format!("{n} {unit}(s)")
}

#[cfg(test)]
fn status_class_text(dsn: &str) -> String {
    status_with_class(dsn, '5')
}

/// The subject, the readable text and the per-recipient action and status
/// class of a report.
fn template(r: &Report<'_>) -> (&'static str, String, &'static str, char) {
    let h = r.hostname;
    let failure = format!(
        "This is the mail system at host {h}.\n\n\
         I'm sorry to have to inform you that your message could not\n\
         be delivered to one or more recipients. It's attached below.\n\n\
         For further assistance, please send mail to postmaster.\n\n\
         If you do so, please include this problem report. You can\n\
         delete your own text from the attached returned message.\n\n\
         \x20                  The mail system\n\n"
    );
    let delay = format!(
        "This is the mail system at host {h}.\n\n\
         ####################################################################\n\
         # THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n\
         ####################################################################\n\n\
         Your message could not be delivered for more than {}.\n\
         It will be retried until it is {} old.\n\n\
         For further assistance, please send mail to postmaster.\n\n\
         If you do so, please include this problem report. You can\n\
         delete your own text from the attached returned message.\n\n\
         \x20                  The mail system\n\n",
        words(r.warn_after),
        words(r.lifetime)
    );
    match r.kind {
        Kind::Failure => (
            "Undelivered Mail Returned to Sender",
            failure,
            "failed",
            '5',
        ),
        Kind::Delay => ("Delayed Mail (still being retried)", delay, "delayed", '4'),
        Kind::Success => (
            "Successful Mail Delivery Report",
            format!(
                "This is the mail system at host {h}.\n\n\
                 Your message was successfully delivered to the destination(s)\n\
                 listed below. If the message was delivered to mailbox you will\n\
                 receive no further notifications. Otherwise you may still receive\n\
                 notifications of mail delivery errors from other systems.\n\n\
                 \x20                  The mail system\n\n"
            ),
            "delivered",
            '2',
        ),
        Kind::PostmasterCopy if r.delayed => {
            ("Postmaster Warning: Delayed Mail", delay, "delayed", '4')
        }
        Kind::PostmasterCopy => ("Postmaster Copy: Undelivered Mail", failure, "failed", '5'),
        Kind::DoubleBounce => (
            "Undelivered Mail Returned to Sender",
            failure,
            "failed",
            '5',
        ),
    }
}

/// The complete report message (headers and body), LF line endings.
pub(crate) fn report(r: &Report<'_>) -> Vec<u8> {
    let secs = r
        .now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let boundary = format!("{}.{}/{}", r.queue_id, secs, r.hostname);
    let (subject, text, action, class) = template(r);
    let mut m = String::new();
    m.push_str(&format!(
        "From: MAILER-DAEMON@{h} (Mail Delivery System)\n\
         To: {to}\n\
         Subject: {subject}\n\
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
         {text}",
        h = r.hostname,
        to = r.to,
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
        // The trace log records what happened (delivered, expanded,
        // relayed).
        let action = match (r.kind, f.action.as_str()) {
            (Kind::Success, a @ ("delivered" | "expanded" | "relayed")) => a,
            _ => action,
        };
        m.push_str(&format!(
            "\nFinal-Recipient: rfc822; {}\n\
             Action: {action}\n\
             Status: {}\n",
            f.address,
            status_with_class(&f.dsn, class),
        ));
        if !f.mta.is_empty() {
            m.push_str(&format!("Remote-MTA: {}\n", f.mta));
        }
        // A success report has nothing to diagnose.
        match (r.kind, f.diagnostic.is_empty()) {
            (Kind::Success, _) => {}
            (_, true) => m.push_str(&format!("Diagnostic-Code: X-Postfix; {}\n", f.reason)),
            (_, false) => m.push_str(&format!("Diagnostic-Code: {}\n", f.diagnostic)),
        }
    }
    // Only a non-delivery report to the sender, and a double bounce,
    // return the whole message (subject to RET and bounce_size_limit).
    let whole = matches!(r.kind, Kind::Failure | Kind::DoubleBounce);
    let hdrs_only = !whole || r.ret.eq_ignore_ascii_case("HDRS") || r.content.len() > r.size_limit;
    let what = match r.kind {
        Kind::Success => "Delivered Message",
        Kind::Delay => "Delayed Message",
        _ => "Undelivered Message",
    };
    let mut out = m.into_bytes();
    if hdrs_only {
        out.extend_from_slice(
            format!(
                "\n--{boundary}\n\
                 Content-Description: {what} Headers\n\
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
                 Content-Description: {what}\n\
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
    fn attempts_count_lines_per_recipient() {
        let e = |a: &str| LogEntry::new(a, "4.0.0", "later");
        let got = vec![e("a@x"), e("b@x"), e("a@x")];
        assert_eq!(attempts(&got, &["a@x", "b@x"]), 2);
        assert_eq!(attempts(&got, &["b@x"]), 1);
        assert_eq!(attempts(&got, &["c@x"]), 0);
    }

    fn sample<'a>(failed: &'a [LogEntry], content: &'a [u8], ret: &'a str) -> Report<'a> {
        Report {
            kind: Kind::Failure,
            delayed: false,
            to: "alice@example.test",
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
            warn_after: Duration::from_secs(4 * 3600),
            lifetime: Duration::from_secs(5 * 86400),
        }
    }

    #[test]
    fn report_has_the_rfc3464_parts() {
        let failed = [LogEntry::new(
            "bob@example.test",
            "5.1.1",
            "unknown user: \"bob\"",
        )];
        let content = b"Subject: hi\nFrom: alice@example.test\n\nbody line\n";
        let text = String::from_utf8(super::report(&sample(&failed, content, ""))).unwrap();
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

        let text = String::from_utf8(super::report(&sample(&failed, content, "HDRS"))).unwrap();
        assert!(text.contains("Content-Type: text/rfc822-headers\n"));
        assert!(text.contains("From: alice@example.test\n"));
        assert!(!text.contains("body line"));
    }

    #[test]
    fn delay_and_success_reports() {
        let content = b"Subject: hi\n\nbody line\n";
        let delayed = [LogEntry::new("bob@example.test", "4.2.0", "mailbox busy")];
        let mut r = sample(&delayed, content, "");
        r.kind = Kind::Delay;
        let text = String::from_utf8(super::report(&r)).unwrap();
        assert!(text.contains("Subject: Delayed Mail (still being retried)\n"));
        assert!(text.contains("THIS IS A WARNING ONLY."));
        assert!(
            text.contains("for more than 4 hour(s).\nIt will be retried until it is 5 day(s) old.")
        );
        assert!(text.contains("Action: delayed\nStatus: 4.2.0\n"), "{text}");
        assert!(text.contains("Content-Type: text/rfc822-headers\n"));
        assert!(!text.contains("body line"));

        let done = [LogEntry {
            action: "expanded".into(),
            ..LogEntry::new("bob@example.test", "2.0.0", "alias expanded")
        }];
        let mut r = sample(&done, content, "FULL");
        r.kind = Kind::Success;
        let text = String::from_utf8(super::report(&r)).unwrap();
        assert!(text.contains("Subject: Successful Mail Delivery Report\n"));
        assert!(text.contains("Action: expanded\nStatus: 2.0.0\n"), "{text}");
        assert!(!text.contains("Diagnostic-Code"));
        assert!(!text.contains("body line"));
    }

    #[test]
    fn remote_diagnostics_reach_the_report() {
        let failed = [LogEntry {
            diagnostic: "smtp; 550 5.1.1 no such user".into(),
            mta: "dns; mx.remote.test".into(),
            ..LogEntry::new(
                "bob@remote.test",
                "5.1.1",
                "host mx.remote.test[192.0.2.1] said: 550 5.1.1 no such user \
                 (in reply to RCPT TO command)",
            )
        }];
        let text = String::from_utf8(super::report(&sample(&failed, b"S: x\n\nb\n", ""))).unwrap();
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
        assert_eq!(status_with_class("5.1.1", '4'), "4.1.1");
        assert_eq!(status_with_class("x", '2'), "2.0.0");
        assert_eq!(words(Duration::from_secs(90)), "90 second(s)");
        assert_eq!(words(Duration::from_secs(7200)), "2 hour(s)");
        assert_eq!(status_class_text("5.1.1"), "5.1.1");
        assert_eq!(status_class_text("4.4.1"), "5.4.1");
        assert_eq!(status_class_text("junk"), "5.0.0");
        assert_eq!(status_class_text(""), "5.0.0");
        assert_eq!(headers(b"A: b\r\n\r\nbody"), b"A: b\r\n");
        assert_eq!(headers(b"A: b\n"), b"A: b\n");
    }
}

//! State machine tests: records in, queue file (read back with
//! `QueueFile::open`) and verdict out, with tables and a rewriter written
//! here.

use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use postern_ipc::cleanup::{flags, status};
use postern_ipc::rewrite::Rule;
use postern_queue::{Queue, QueueFile, QueueFileWriter};
use postern_wire::content::LineSplitter;
use postern_wire::{RecordType, Segment};

use crate::addr::ExpansionLimits;
use crate::state::{Cleanup, Next, Settings, State, Verdict};
use crate::tables::{AddrMap, CheckTable, Rewriter, Tables};

type R = RecordType;

/// trivial-rewrite stand-in: the local context appends `@example.test`
/// to a bare user; an address containing `rewrite-fail` fails.
struct TestRewriter;

impl Rewriter for TestRewriter {
    fn rewrite(&mut self, rule: Rule, addr: &str) -> Result<String, String> {
        if addr.contains("rewrite-fail") {
            return Err("connect to private/rewrite: refused".into());
        }
        match rule {
            Rule::Local if !addr.contains('@') => Ok(format!("{addr}@example.test")),
            _ => Ok(addr.to_string()),
        }
    }
}

/// An address table: exact (case-folded) keys, then `@domain`; a key
/// `fail` in the table makes lookups of that address fail.
struct TestMap {
    entries: HashMap<String, String>,
}

impl TestMap {
    fn new(entries: &[(&str, &str)]) -> Box<TestMap> {
        Box::new(TestMap {
            entries: entries
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
        })
    }
}

impl AddrMap for TestMap {
    fn title(&self) -> &str {
        "test_maps"
    }

    fn lookup_address(&self, addr: &str) -> Result<Option<String>, String> {
        let key = addr.to_ascii_lowercase();
        match self.entries.get(&key).map(String::as_str) {
            Some("fail") => Err("table unavailable".into()),
            Some(v) => Ok(Some(v.to_string())),
            None => Ok(key
                .rsplit_once('@')
                .and_then(|(_, d)| self.entries.get(&format!("@{d}")))
                .cloned()),
        }
    }
}

/// A content table: the first rule whose text occurs in the line wins
/// (case-insensitive), like a regexp table of plain words.
struct TestChecks {
    rules: Vec<(String, String)>,
}

impl TestChecks {
    fn new(rules: &[(&str, &str)]) -> Box<TestChecks> {
        Box::new(TestChecks {
            rules: rules
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
        })
    }
}

impl CheckTable for TestChecks {
    fn title(&self) -> &str {
        "test_checks"
    }

    fn lookup(&self, text: &str) -> Result<Option<String>, String> {
        let text = text.to_ascii_lowercase();
        for (pattern, action) in &self.rules {
            if text.contains(pattern.as_str()) {
                if action == "fail" {
                    return Err("pattern table unavailable".into());
                }
                return Ok(Some(action.clone()));
            }
        }
        Ok(None)
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    cx: Cleanup,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for q in [Queue::Incoming, Queue::Hold] {
            std::fs::create_dir(dir.path().join(q.dir_name())).unwrap();
        }
        let settings = Settings {
            queue_dir: dir.path().to_path_buf(),
            myhostname: "mail.example.test".into(),
            message_size_limit: 10_240_000,
            header_size_limit: 102_400,
            line_length_limit: 2048,
            hop_count_limit: 50,
            always_add_missing_headers: false,
            duplicate_filter_limit: 1000,
            expansion: ExpansionLimits {
                recursion: 1000,
                expansion: 1000,
            },
            delay_warning_time: std::time::Duration::ZERO,
        };
        Fixture {
            dir,
            cx: Cleanup {
                settings,
                tables: Tables::default(),
                rewriter: Box::new(TestRewriter),
            },
        }
    }

    fn spool(&self) -> &Path {
        self.dir.path()
    }

    /// Feeds `records` and finishes; returns the verdict and the queue
    /// file, and checks that a refused message left no file behind.
    fn run(&mut self, flags: u64, records: &[(R, Vec<u8>)]) -> (Verdict, Option<QueueFile>) {
        let writer = QueueFileWriter::create(self.dir.path(), Queue::Incoming).unwrap();
        let id = writer.id().clone();
        let mut state = State::new(&mut self.cx, writer, flags, SystemTime::now());
        let mut ended = false;
        for (kind, data) in records {
            assert!(!ended, "records after E");
            ended = state.record(*kind, data) == Next::End;
        }
        assert!(ended, "no E record in the test input");
        let verdict = state.finish();
        let file = verdict
            .queued
            .map(|q| QueueFile::open(&id.path(self.dir.path(), q)).unwrap());
        for q in [Queue::Incoming, Queue::Hold] {
            let left: Vec<_> = std::fs::read_dir(self.dir.path().join(q.dir_name()))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            let expected = usize::from(verdict.queued == Some(q));
            assert_eq!(left.len(), expected, "{q}: {left:?} for {verdict:?}");
        }
        if let Some(q) = verdict.queued {
            std::fs::remove_file(id.path(self.dir.path(), q)).unwrap();
        }
        (verdict, file)
    }
}

/// The records a client sends for a message, content split like
/// `ipc::cleanup::Client` does.
fn message(sender: &str, rcpts: &[&str], content: &[u8]) -> Vec<(R, Vec<u8>)> {
    let mut out = vec![(R::Sender, sender.as_bytes().to_vec())];
    for r in rcpts {
        out.push((R::Recipient, r.as_bytes().to_vec()));
    }
    out.push((R::Message, Vec::new()));
    out.extend(content_records(content));
    out.push((R::Xtra, Vec::new()));
    out.push((R::End, Vec::new()));
    out
}

fn content_records(content: &[u8]) -> Vec<(R, Vec<u8>)> {
    let mut out = Vec::new();
    let mut s = LineSplitter::new(2048);
    let mut push = |k: R, d: &[u8]| -> Result<(), ()> {
        out.push((k, d.to_vec()));
        Ok(())
    };
    s.feed(content, &mut push).unwrap();
    s.finish(&mut push).unwrap();
    out
}

/// `message` with an attribute record inserted after the sender.
fn with_attr(mut records: Vec<(R, Vec<u8>)>, name: &str, value: &str) -> Vec<(R, Vec<u8>)> {
    records.insert(1, (R::Attr, format!("{name}={value}").into_bytes()));
    records
}

fn content(qf: &QueueFile) -> String {
    String::from_utf8(qf.content_to_vec()).unwrap()
}

fn rcpts(qf: &QueueFile) -> Vec<(String, Option<String>, Segment)> {
    qf.recipients()
        .iter()
        .map(|r| (r.address.clone(), r.orcpt.clone(), r.segment))
        .collect()
}

fn addresses(qf: &QueueFile) -> Vec<String> {
    qf.recipients().iter().map(|r| r.address.clone()).collect()
}

#[test]
fn a_message_is_queued_with_lf_lines_and_its_envelope() {
    let mut fx = Fixture::new();
    let mut recs = message(
        "alice@example.org",
        &["bob@example.net"],
        b"Subject: hi\r\nMessage-ID: <m1@example.org>\r\n\r\nhello\r\nbare\rcr\r\n",
    );
    recs.insert(1, (R::Attr, b"client_address=192.0.2.1".to_vec()));
    recs.insert(2, (R::Attr, b"helo_name=client.example.org".to_vec()));
    recs.insert(3, (R::DsnNotify, vec![2 | 8]));
    recs.insert(4, (R::DsnOrcpt, b"rfc822;bob@example.net".to_vec()));
    let before = SystemTime::now();
    let (v, qf) = fx.run(0, &recs);
    assert_eq!((v.status, v.queued), (status::OK, Some(Queue::Incoming)));
    assert_eq!(v.message_id, "<m1@example.org>");
    let qf = qf.unwrap();
    assert_eq!(qf.sender(), "alice@example.org");
    assert_eq!(
        content(&qf),
        "Subject: hi\nMessage-ID: <m1@example.org>\n\nhello\nbare\rcr\n"
    );
    assert_eq!(qf.attr("client_address"), Some(&b"192.0.2.1"[..]));
    assert_eq!(qf.attr("helo_name"), Some(&b"client.example.org"[..]));
    let r = &qf.recipients()[0];
    assert_eq!(r.address, "bob@example.net");
    assert_eq!(r.orcpt, None);
    assert_eq!(r.dsn_orcpt.as_deref(), Some("rfc822;bob@example.net"));
    assert_eq!(r.notify.map(|n| n.bits()), Some(10));
    assert!(qf.arrival() >= before - std::time::Duration::from_secs(1));
    // Remote mail gets no headers added (always_add_missing_headers = no).
    assert!(!content(&qf).contains("Date:"));
    // delay_warning_time = 0: no warning record.
    assert_eq!(qf.warn(), None);
}

#[test]
fn delay_warning_time_is_recorded() {
    let mut fx = Fixture::new();
    fx.cx.settings.delay_warning_time = std::time::Duration::from_secs(4 * 3600);
    let recs = message(
        "alice@example.org",
        &["bob@example.net"],
        b"Subject: hi\n\nx\n",
    );
    let (v, qf) = fx.run(0, &recs);
    assert_eq!(v.status, status::OK);
    let qf = qf.unwrap();
    let at = qf.warn().and_then(|w| w.at).unwrap();
    let want = qf.arrival() + std::time::Duration::from_secs(4 * 3600);
    let diff = at.duration_since(want).unwrap_or_else(|e| e.duration());
    assert!(diff < std::time::Duration::from_secs(1), "{diff:?}");
}

#[test]
fn local_submissions_are_rewritten_and_get_missing_headers() {
    let mut fx = Fixture::new();
    let recs = with_attr(
        message("joe", &["ann", "Bob@Example.NET"], b"Subject: x\n\nbody\n"),
        "full_name",
        "Joe Q. User",
    );
    let (v, qf) = fx.run(flags::LOCAL, &recs);
    assert_eq!(v.status, status::OK);
    let qf = qf.unwrap();
    assert_eq!(qf.sender(), "joe@example.test");
    assert_eq!(
        rcpts(&qf),
        [
            (
                "ann@example.test".into(),
                Some("ann".into()),
                Segment::Envelope
            ),
            ("Bob@Example.NET".into(), None, Segment::Envelope),
        ]
    );
    let text = content(&qf);
    let id = v.message_id;
    assert!(
        id.starts_with('<') && id.ends_with("@mail.example.test>"),
        "{id}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Subject: x");
    assert_eq!(lines[1], format!("Message-ID: {id}"));
    assert!(lines[2].starts_with("Date: "), "{text}");
    assert_eq!(lines[3], "From: \"Joe Q. User\" <joe@example.test>");
    assert_eq!(&lines[4..], ["", "body"]);
}

#[test]
fn existing_headers_are_not_added_again_and_remote_mail_gets_none() {
    let mut fx = Fixture::new();
    let body = b"From: a@x.test\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <1@x>\n\nb\n";
    let (_, qf) = fx.run(flags::LOCAL, &message("a@x.test", &["b@y.test"], body));
    assert_eq!(content(&qf.unwrap()).as_bytes(), body);
    let (v, qf) = fx.run(0, &message("a@x.test", &["b@y.test"], b"Subject: s\n\nb\n"));
    assert_eq!(content(&qf.unwrap()), "Subject: s\n\nb\n");
    assert_eq!(v.message_id, "<>");
    fx.cx.settings.always_add_missing_headers = true;
    let (_, qf) = fx.run(0, &message("a@x.test", &["b@y.test"], b"Subject: s\n\nb\n"));
    let text = content(&qf.unwrap());
    assert!(text.contains("\nFrom: a@x.test\n"), "{text}");
}

#[test]
fn headers_are_added_before_a_body_without_blank_line() {
    let mut fx = Fixture::new();
    let (_, qf) = fx.run(
        flags::LOCAL,
        &message("u", &["v"], b"just a body\n  indented\n"),
    );
    let text = content(&qf.unwrap());
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("Message-ID: "), "{text}");
    assert!(lines[2].starts_with("From: u@example.test"), "{text}");
    assert_eq!(&lines[3..], ["", "just a body", "  indented"]);
}

#[test]
fn resent_headers_get_resent_additions() {
    let mut fx = Fixture::new();
    let (_, qf) = fx.run(
        flags::LOCAL,
        &message("u", &["v"], b"Resent-To: v@x\nFrom: a@b\n\nx\n"),
    );
    let text = content(&qf.unwrap());
    assert!(text.contains("\nResent-Message-ID: <"), "{text}");
    assert!(text.contains("\nResent-From: u@example.test\n"), "{text}");
    assert!(!text.contains("\nMessage-ID:"), "{text}");
}

#[test]
fn message_size_limit_refuses_and_drains() {
    let mut fx = Fixture::new();
    fx.cx.settings.message_size_limit = 100;
    let big = format!("Subject: big\n\n{}\n", "x".repeat(200));
    let (v, _) = fx.run(0, &message("a@x", &["b@y"], big.as_bytes()));
    assert_eq!(v.status, status::SIZE);
    assert_eq!(v.reason, "Error: message file too big");
    // Exactly at the limit is fine.
    let exact = "S: x\n\n".to_string() + &"y".repeat(93) + "\n";
    assert_eq!(exact.len(), 100);
    let (v, _) = fx.run(0, &message("a@x", &["b@y"], exact.as_bytes()));
    assert_eq!(v.status, status::OK);
}

#[test]
fn too_many_received_headers_is_hops() {
    let mut fx = Fixture::new();
    fx.cx.settings.hop_count_limit = 3;
    let two = "Received: from a\nReceived: from b\n\nx\n";
    let (v, _) = fx.run(0, &message("a@x", &["b@y"], two.as_bytes()));
    assert_eq!(v.status, status::OK);
    let three = "Received: from a\n\tby b\nReceived: from b\nReceived: from c\n\nx\n";
    let (v, _) = fx.run(0, &message("a@x", &["b@y"], three.as_bytes()));
    assert_eq!(v.status, status::HOPS);
    assert_eq!(v.reason, "Error: too many hops");
}

#[test]
fn header_checks_reject_with_text_and_default() {
    let mut fx = Fixture::new();
    fx.cx.tables.header_checks = Some(TestChecks::new(&[
        ("subject: spam", "REJECT no spam please"),
        ("subject: junk", "REJECT"),
        ("subject: coded", "REJECT 5.7.0 coded text"),
    ]));
    let (v, _) = fx.run(0, &message("a@x", &["b@y"], b"Subject: SPAM here\n\nx\n"));
    assert_eq!(
        (v.status, v.reason.as_str()),
        (status::CONT, "5.7.1 no spam please")
    );
    let (v, _) = fx.run(0, &message("a@x", &["b@y"], b"Subject: junk\n\nx\n"));
    assert_eq!(v.reason, "5.7.1 message content rejected");
    let (v, _) = fx.run(0, &message("a@x", &["b@y"], b"Subject: coded\n\nx\n"));
    assert_eq!(v.reason, "5.7.0 coded text");
    let (v, _) = fx.run(0, &message("a@x", &["b@y"], b"Subject: fine\n\nx\n"));
    assert_eq!(v.status, status::OK);
}

#[test]
fn header_checks_see_folded_headers_whole() {
    let mut fx = Fixture::new();
    fx.cx.tables.header_checks = Some(TestChecks::new(&[("first\n\tsecond", "REJECT folded")]));
    let (v, _) = fx.run(
        0,
        &message("a@x", &["b@y"], b"Subject: first\r\n\tsecond\r\n\r\nx\r\n"),
    );
    assert_eq!(v.reason, "5.7.1 folded");
}

#[test]
fn header_checks_hold_commits_to_the_hold_queue() {
    let mut fx = Fixture::new();
    fx.cx.tables.header_checks = Some(TestChecks::new(&[("subject: hold", "HOLD look at it")]));
    let (v, qf) = fx.run(0, &message("a@x", &["b@y"], b"Subject: hold me\n\nx\n"));
    assert_eq!((v.status, v.queued), (status::OK, Some(Queue::Hold)));
    let qf = qf.unwrap();
    assert_eq!(content(&qf), "Subject: hold me\n\nx\n");
    assert!(
        std::fs::read_dir(fx.spool().join("incoming"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn header_checks_discard_removes_the_file() {
    let mut fx = Fixture::new();
    fx.cx.tables.header_checks = Some(TestChecks::new(&[("subject: drop", "DISCARD")]));
    let (v, qf) = fx.run(0, &message("a@x", &["b@y"], b"Subject: drop\n\nx\n"));
    assert_eq!((v.status, v.queued), (status::DISCARD, None));
    assert!(qf.is_none());
    fx.cx.tables.body_checks = Some(TestChecks::new(&[("unsubscribe", "DISCARD bulk")]));
    let mut recs = message("a@x", &["b@y"], b"Subject: s\n\nunsubscribe here\n");
    // More content after the DISCARD, in pieces, is read and dropped.
    let xtra = recs.len() - 2;
    for _ in 0..3 {
        recs.insert(xtra, (R::Cont, vec![b'z'; 5000]));
    }
    let (v, _) = fx.run(0, &recs);
    assert_eq!((v.status, v.queued), (status::DISCARD, None));
}

#[test]
fn header_checks_ignore_replace_prepend_warn() {
    let mut fx = Fixture::new();
    fx.cx.tables.header_checks = Some(TestChecks::new(&[
        ("x-secret:", "IGNORE"),
        ("subject:", "REPLACE Subject: [tagged]"),
        ("x-mailer:", "PREPEND X-Seen: yes"),
        ("x-bad:", "PREPEND not a header"),
        ("x-warn:", "WARN just looking"),
    ]));
    let (v, qf) = fx.run(
        0,
        &message(
            "a@x",
            &["b@y"],
            b"X-Secret: 1\n  more\nSubject: hi\nX-Mailer: m\nX-Bad: 1\nX-Warn: w\n\nbody x-secret: stays\n",
        ),
    );
    assert_eq!(v.status, status::OK);
    assert_eq!(
        content(&qf.unwrap()),
        "Subject: [tagged]\nX-Seen: yes\nX-Mailer: m\nX-Bad: 1\nX-Warn: w\n\nbody x-secret: stays\n"
    );
}

#[test]
fn header_checks_stop_after_reject_and_lookup_failure_defers() {
    let mut fx = Fixture::new();
    fx.cx.tables.header_checks = Some(TestChecks::new(&[
        ("subject: one", "REJECT first"),
        ("subject: two", "HOLD"),
        ("x-fail", "fail"),
    ]));
    let (v, _) = fx.run(
        0,
        &message("a@x", &["b@y"], b"Subject: one\nSubject: two\n\nx\n"),
    );
    assert_eq!((v.status, v.reason.as_str()), (status::CONT, "5.7.1 first"));
    let (v, _) = fx.run(0, &message("a@x", &["b@y"], b"X-Fail: 1\n\nx\n"));
    assert_eq!(v.status, status::DEFER);
}

#[test]
fn body_checks_reject_and_replace() {
    let mut fx = Fixture::new();
    fx.cx.tables.body_checks = Some(TestChecks::new(&[
        ("viagra", "REJECT 5.7.1 no pills"),
        ("password", "REPLACE [redacted]"),
        ("drop me", "IGNORE"),
        ("subject:", "REJECT headers are not body"),
    ]));
    let (v, _) = fx.run(
        0,
        &message("a@x", &["b@y"], b"Subject: ok\n\nhi\nbuy viagra\n"),
    );
    assert_eq!(
        (v.status, v.reason.as_str()),
        (status::CONT, "5.7.1 no pills")
    );
    let (v, qf) = fx.run(
        0,
        &message(
            "a@x",
            &["b@y"],
            b"Subject: ok\n\nmy password\ndrop me\nend\n",
        ),
    );
    assert_eq!(v.status, status::OK);
    assert_eq!(content(&qf.unwrap()), "Subject: ok\n\n[redacted]\nend\n");
}

#[test]
fn bcc_is_removed_for_local_submissions_only() {
    let mut fx = Fixture::new();
    let text = b"From: a@x\nDate: d\nMessage-ID: <i@x>\nBcc: secret@z\nTo: b@y\n\nx\n";
    let (_, qf) = fx.run(flags::LOCAL, &message("a@x", &["b@y"], text));
    assert!(!content(&qf.unwrap()).contains("Bcc"));
    let (_, qf) = fx.run(0, &message("a@x", &["b@y"], text));
    assert!(content(&qf.unwrap()).contains("Bcc: secret@z\n"));
    let (_, qf) = fx.run(flags::DROP_BCC, &message("a@x", &["b@y"], text));
    assert!(!content(&qf.unwrap()).contains("Bcc"));
}

#[test]
fn extract_recipients_from_to_cc_bcc() {
    let mut fx = Fixture::new();
    let text = b"To: ann, \"B\" <bob@y.test>\nCc: friends: carl@z.test;\nBcc: dora@w.test,\n ann\nSubject: s\n\nx\n";
    let (v, qf) = fx.run(
        flags::LOCAL | flags::EXTRACT_RECIPIENTS,
        &message("u", &[], text),
    );
    assert_eq!(v.status, status::OK);
    let qf = qf.unwrap();
    assert_eq!(
        rcpts(&qf),
        [
            (
                "ann@example.test".into(),
                Some("ann".into()),
                Segment::Extracted
            ),
            ("bob@y.test".into(), None, Segment::Extracted),
            ("carl@z.test".into(), None, Segment::Extracted),
            ("dora@w.test".into(), None, Segment::Extracted),
        ]
    );
    assert!(!content(&qf).contains("Bcc"));
    assert!(content(&qf).contains("To: ann"));
}

#[test]
fn extract_recipients_prefers_resent_headers() {
    let mut fx = Fixture::new();
    let text = b"To: old@x.test\nResent-To: new@x.test\n\nx\n";
    let (_, qf) = fx.run(
        flags::LOCAL | flags::EXTRACT_RECIPIENTS,
        &message("u", &[], text),
    );
    assert_eq!(addresses(&qf.unwrap()), ["new@x.test"]);
}

#[test]
fn no_recipients_is_rcpt() {
    let mut fx = Fixture::new();
    let (v, _) = fx.run(0, &message("a@x", &[], b"Subject: s\n\nx\n"));
    assert_eq!(v.status, status::RCPT);
    assert_eq!(v.reason, "Error: no recipients specified");
    let (v, _) = fx.run(
        flags::EXTRACT_RECIPIENTS,
        &message("a@x", &[], b"To: undisclosed-recipients:;\n\nx\n"),
    );
    assert_eq!(v.status, status::RCPT);
}

#[test]
fn canonical_maps_for_sender_and_recipients() {
    let mut fx = Fixture::new();
    fx.cx.tables.sender_canonical = Some(TestMap::new(&[("joe@example.test", "joe.user")]));
    fx.cx.tables.recipient_canonical = Some(TestMap::new(&[("@old.test", "@new.test")]));
    fx.cx.tables.canonical = Some(TestMap::new(&[(
        "joe.user@example.test",
        "Joe User <joe.user@corp.test>",
    )]));
    let (v, qf) = fx.run(flags::LOCAL, &message("joe", &["ann@old.test"], b"\nx\n"));
    assert_eq!(v.status, status::OK);
    let qf = qf.unwrap();
    // sender_canonical, then canonical, each result rewritten locally.
    assert_eq!(qf.sender(), "joe.user@corp.test");
    assert_eq!(
        rcpts(&qf),
        [(
            "ann@new.test".into(),
            Some("ann@old.test".into()),
            Segment::Envelope
        )]
    );
}

#[test]
fn canonical_map_failure_defers() {
    let mut fx = Fixture::new();
    fx.cx.tables.canonical = Some(TestMap::new(&[("bad@x.test", "fail")]));
    let (v, _) = fx.run(0, &message("a@x.test", &["bad@x.test"], b"\nx\n"));
    assert_eq!(v.status, status::DEFER);
    assert_eq!(v.reason, "4.6.0 Canonical mapping error");
    let (v, _) = fx.run(0, &message("bad@x.test", &["b@x.test"], b"\nx\n"));
    assert_eq!(v.status, status::DEFER);
}

#[test]
fn rewrite_failure_defers() {
    let mut fx = Fixture::new();
    let (v, _) = fx.run(0, &message("a@x.test", &["rewrite-fail@x.test"], b"\nx\n"));
    assert_eq!(v.status, status::DEFER);
    assert_eq!(v.reason, "4.3.0 address rewriting service unavailable");
}

#[test]
fn virtual_alias_expansion_keeps_orcpt_and_drops_duplicates() {
    let mut fx = Fixture::new();
    fx.cx.tables.virtual_alias = Some(TestMap::new(&[
        ("team@v.test", "ann@v.test, bob@v.test, list@v.test"),
        ("list@v.test", "carl@w.test, ann@v.test"),
        ("self@v.test", "self@v.test, copy@w.test"),
    ]));
    let (v, qf) = fx.run(
        0,
        &message(
            "a@x.test",
            &["team@v.test", "ann@v.test", "self@v.test"],
            b"\nx\n",
        ),
    );
    assert_eq!(v.status, status::OK);
    let qf = qf.unwrap();
    assert_eq!(
        rcpts(&qf),
        [
            (
                "ann@v.test".into(),
                Some("team@v.test".into()),
                Segment::Envelope
            ),
            (
                "bob@v.test".into(),
                Some("team@v.test".into()),
                Segment::Envelope
            ),
            (
                "carl@w.test".into(),
                Some("team@v.test".into()),
                Segment::Envelope
            ),
            // The same address with another original recipient is kept
            // (Postfix's duplicate filter keys on both).
            ("ann@v.test".into(), None, Segment::Envelope),
            ("self@v.test".into(), None, Segment::Envelope),
            (
                "copy@w.test".into(),
                Some("self@v.test".into()),
                Segment::Envelope
            ),
        ]
    );
    // Plain duplicates go.
    let (_, qf) = fx.run(0, &message("a@x.test", &["d@x.test", "D@x.test"], b"\nx\n"));
    assert_eq!(addresses(&qf.unwrap()), ["d@x.test"]);
}

#[test]
fn virtual_alias_loops_and_limits_defer() {
    let mut fx = Fixture::new();
    fx.cx.tables.virtual_alias = Some(TestMap::new(&[
        ("a@v.test", "b@v.test"),
        ("b@v.test", "a@v.test"),
        ("many@v.test", "1@x, 2@x, 3@x, 4@x"),
        ("deep@v.test", "deeper@v.test"),
        ("deeper@v.test", "deepest@v.test"),
        ("broken@v.test", "fail"),
    ]));
    fx.cx.settings.expansion = ExpansionLimits {
        recursion: 3,
        expansion: 3,
    };
    for (rcpt, why) in [
        ("a@v.test", "loop"),
        ("many@v.test", "expansion"),
        ("broken@v.test", "failure"),
    ] {
        let (v, _) = fx.run(0, &message("s@x.test", &[rcpt], b"\nx\n"));
        assert_eq!(v.status, status::DEFER, "{why}");
        assert_eq!(v.reason, "4.6.0 Alias expansion error", "{why}");
    }
    let (v, qf) = fx.run(0, &message("s@x.test", &["deep@v.test"], b"\nx\n"));
    assert_eq!(v.status, status::OK);
    assert_eq!(addresses(&qf.unwrap()), ["deepest@v.test"]);
    fx.cx.settings.expansion.recursion = 2;
    let (v, _) = fx.run(0, &message("s@x.test", &["deep@v.test"], b"\nx\n"));
    assert_eq!(v.status, status::DEFER);
}

#[test]
fn forbidden_and_misplaced_records_are_bad() {
    let mut fx = Fixture::new();
    for (at, rec) in [
        (1, (R::Time, vec![0u8; 12])),
        (1, (R::Done, b"x@y".to_vec())),
        (1, (R::Warn, vec![0u8; 8])),
        (1, (R::AttrList, Vec::new())),
        (1, (R::Sender, b"again@x".to_vec())),
        (0, (R::Recipient, b"early@x".to_vec())),
        (4, (R::Recipient, b"in-content@x".to_vec())),
        (1, (R::Attr, b"no-equals-sign".to_vec())),
    ] {
        let mut recs = message("a@x", &["b@y"], b"Subject: s\n\nx\n");
        recs.insert(at, rec.clone());
        let (v, qf) = fx.run(0, &recs);
        assert_eq!(v.status, status::BAD, "{rec:?}");
        assert_eq!(v.reason, "Error: internal protocol error");
        assert!(qf.is_none());
    }
    // E before the content ends.
    let recs = vec![
        (R::Sender, b"a@x".to_vec()),
        (R::Recipient, b"b@y".to_vec()),
        (R::Message, Vec::new()),
        (R::Normal, b"x".to_vec()),
        (R::End, Vec::new()),
    ];
    let (v, _) = fx.run(0, &recs);
    assert_eq!(v.status, status::BAD);
}

#[test]
fn errors_keep_reading_to_the_end() {
    let mut fx = Fixture::new();
    let mut recs = message("a@x", &["b@y"], b"Subject: s\n\nx\n");
    recs.insert(1, (R::Time, vec![0u8; 12]));
    let writer = QueueFileWriter::create(fx.spool(), Queue::Incoming).unwrap();
    let mut state = State::new(&mut fx.cx, writer, 0, SystemTime::now());
    let nexts: Vec<Next> = recs.iter().map(|(k, d)| state.record(*k, d)).collect();
    assert_eq!(nexts.last(), Some(&Next::End));
    assert!(nexts[..nexts.len() - 1].iter().all(|n| *n == Next::More));
    assert_eq!(state.finish().status, status::BAD);
}

#[test]
fn client_hanging_up_leaves_no_queue_file() {
    let mut fx = Fixture::new();
    let recs = message("a@x", &["b@y"], b"Subject: s\n\nbody\n");
    {
        let writer = QueueFileWriter::create(fx.spool(), Queue::Incoming).unwrap();
        let mut state = State::new(&mut fx.cx, writer, 0, SystemTime::now());
        for (k, d) in &recs[..5] {
            assert_eq!(state.record(*k, d), Next::More);
        }
        assert_eq!(
            std::fs::read_dir(fx.dir.path().join("incoming"))
                .unwrap()
                .count(),
            1
        );
        // The connection broke: the service drops the state.
    }
    assert_eq!(
        std::fs::read_dir(fx.dir.path().join("incoming"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn long_lines_and_a_missing_final_newline() {
    let mut fx = Fixture::new();
    fx.cx.settings.line_length_limit = 10;
    fx.cx.tables.body_checks = Some(TestChecks::new(&[("needle", "REJECT")]));
    let long = format!("Subject: s\n\n{}\r\nlast", "0123456789".repeat(5));
    let (v, qf) = fx.run(0, &message("a@x", &["b@y"], long.as_bytes()));
    assert_eq!(v.status, status::OK);
    assert_eq!(
        content(&qf.unwrap()),
        format!("Subject: s\n\n{}\nlast\n", "0123456789".repeat(5))
    );
    // Body checks see pieces of at most line_length_limit bytes, like
    // Postfix's records: a word across a boundary is not seen.
    let split = "Subject: s\n\n12345needle\n";
    let (v, _) = fx.run(0, &message("a@x", &["b@y"], split.as_bytes()));
    assert_eq!(v.status, status::OK);
    let inside = "Subject: s\n\nneedle\n";
    let (v, _) = fx.run(0, &message("a@x", &["b@y"], inside.as_bytes()));
    assert_eq!(v.status, status::CONT);
}

#[test]
fn a_cr_split_from_its_line_feed_is_still_removed() {
    let mut fx = Fixture::new();
    let recs = vec![
        (R::Sender, b"a@x".to_vec()),
        (R::Recipient, b"b@y".to_vec()),
        (R::Message, Vec::new()),
        (R::Normal, b"Subject: s\r".to_vec()),
        (R::Normal, b"\r".to_vec()),
        (R::Cont, b"body\r".to_vec()),
        (R::Normal, Vec::new()),
        (R::Cont, b"a\r".to_vec()),
        (R::Normal, b"b".to_vec()),
        (R::Xtra, Vec::new()),
        (R::End, Vec::new()),
    ];
    let (_, qf) = fx.run(0, &recs);
    assert_eq!(content(&qf.unwrap()), "Subject: s\n\nbody\na\rb\n");
}

#[test]
fn header_size_limit_truncates_a_long_header() {
    let mut fx = Fixture::new();
    fx.cx.settings.header_size_limit = 20;
    let text = format!("Subject: {}\n\tfolded\nTo: b@y\n\nbody\n", "s".repeat(30));
    let (v, qf) = fx.run(0, &message("a@x", &["b@y"], text.as_bytes()));
    assert_eq!(v.status, status::OK);
    assert_eq!(
        content(&qf.unwrap()),
        format!("Subject: {}\nTo: b@y\n\nbody\n", "s".repeat(11))
    );
}

#[test]
fn extracted_segment_records_from_the_client() {
    let mut fx = Fixture::new();
    let mut recs = message("a@x", &["b@y"], b"\nx\n");
    let end = recs.len() - 1;
    recs.insert(end, (R::Recipient, b"late@z".to_vec()));
    recs.insert(end, (R::Attr, b"note=1".to_vec()));
    let (v, qf) = fx.run(0, &recs);
    assert_eq!(v.status, status::OK);
    let qf = qf.unwrap();
    assert_eq!(rcpts(&qf)[1], ("late@z".into(), None, Segment::Extracted));
}

#[test]
fn act_log_line_has_postfix_shape() {
    let mut fx = Fixture::new();
    let writer = QueueFileWriter::create(fx.spool(), Queue::Incoming).unwrap();
    let mut state = State::new(&mut fx.cx, writer, 0, SystemTime::now());
    for (k, d) in [
        (R::Sender, &b"a@x"[..]),
        (R::Attr, b"client_name=host.example"),
        (R::Attr, b"client_address=192.0.2.1"),
        (R::Attr, b"protocol=ESMTP"),
        (R::Attr, b"helo_name=h"),
        (R::Recipient, b"b@y"),
    ] {
        state.record(k, d);
    }
    assert_eq!(state.origin(), "host.example[192.0.2.1]");
    let id = state.id.clone();
    assert_eq!(
        state.act_line("reject", "header", "Subject: spam\n\tmore", "5.7.1 text"),
        format!(
            "{id}: reject: header Subject: spam  more from host.example[192.0.2.1]; \
             from=<a@x> to=<b@y> proto=ESMTP helo=<h>: 5.7.1 text"
        )
    );
    let long = "x".repeat(300);
    let line = state.act_line("hold", "body", &long, "");
    assert!(
        line.contains(&format!(" body {} from ", "x".repeat(200))),
        "{line}"
    );
    assert!(line.ends_with("helo=<h>"), "{line}");
}

/// A queue file as text, one record a line (Postfix's
/// `src/cleanup/test-queue-file*.ref` idea): the arrival time, the only
/// part that changes from run to run, is left out.
fn dump(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for rec in postern_wire::Decoder::new().records(bytes) {
        let (_, r) = rec.unwrap();
        let text = match r.kind {
            R::Time => "(arrival time)".to_string(),
            R::Size => r
                .data
                .chunks(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()).to_string())
                .collect::<Vec<_>>()
                .join(" "),
            R::DsnNotify => r.data[0].to_string(),
            _ => r.data.escape_ascii().to_string(),
        };
        writeln!(out, "{}: {text}", r.kind.name()).unwrap();
    }
    out
}

/// Compares `dump` of the committed file with `testdata/NAME.ref`;
/// `UPDATE_GOLDEN=1` rewrites the reference instead.
fn golden(name: &str, fx: &mut Fixture, flags: u64, records: &[(R, Vec<u8>)]) {
    let (v, qf) = fx.run(flags, records);
    assert_eq!(v.status, status::OK, "{v:?}");
    let got = dump(qf.unwrap().as_bytes());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/{name}.ref"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert_eq!(got, want, "{} differs", path.display());
}

#[test]
fn golden_remote_message_with_tables() {
    let mut fx = Fixture::new();
    fx.cx.settings.line_length_limit = 40;
    fx.cx.tables.canonical = Some(TestMap::new(&[("old@example.org", "new@example.org")]));
    fx.cx.tables.virtual_alias = Some(TestMap::new(&[(
        "team@example.test",
        "ann@example.test, bob@example.test",
    )]));
    fx.cx.tables.header_checks = Some(TestChecks::new(&[
        ("x-tracking:", "IGNORE"),
        ("subject:", "PREPEND X-Checked: yes"),
        ("x-mailer:", "REPLACE X-Mailer: hidden"),
    ]));
    fx.cx.tables.body_checks = Some(TestChecks::new(&[("secret", "REPLACE [removed]")]));
    let mut recs = message(
        "old@example.org",
        &["team@example.test", "carl@example.net"],
        b"Received: from a by b\r\nSubject: golden\r\nX-Tracking: 1\r\n\
          X-Mailer: m 1.0\r\nTo: team@example.test\r\n\r\nline one\r\n\
          the secret line\r\n\
          a line that is longer than forty bytes, so it is split\r\n\
          no newline at the end",
    );
    recs.insert(1, (R::Attr, b"client_name=client.example.org".to_vec()));
    recs.insert(2, (R::Attr, b"client_address=192.0.2.7".to_vec()));
    recs.insert(3, (R::Attr, b"protocol=ESMTP".to_vec()));
    recs.insert(4, (R::Attr, b"envid=ENV1".to_vec()));
    recs.insert(5, (R::DsnNotify, vec![8]));
    recs.insert(6, (R::DsnOrcpt, b"rfc822;team@example.test".to_vec()));
    golden("remote", &mut fx, 0, &recs);
}

#[test]
fn golden_local_extracted_recipients() {
    let mut fx = Fixture::new();
    let recs = with_attr(
        message(
            "joe",
            &[],
            b"From: Joe <joe@example.test>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\
              Message-ID: <golden@example.test>\nTo: ann, bob@example.net\n\
              Bcc: carl\nSubject: t\n\nbody\n",
        ),
        "rewrite_context",
        "local",
    );
    golden(
        "local-extract",
        &mut fx,
        flags::LOCAL | flags::EXTRACT_RECIPIENTS,
        &recs,
    );
}

#[test]
fn envelope_addresses_are_qualified_for_network_mail_too() {
    let mut fx = Fixture::new();
    let (v, qf) = fx.run(0, &message("joe", &["ann", "MAILER-DAEMON"], b"\nx\n"));
    assert_eq!(v.status, status::OK);
    let qf = qf.unwrap();
    assert_eq!(qf.sender(), "joe@example.test");
    assert_eq!(
        addresses(&qf),
        ["ann@example.test", "MAILER-DAEMON@example.test"]
    );
    // MAILER-DAEMON@$myorigin as the sender is the null sender.
    for sender in ["MAILER-DAEMON", "mailer-daemon@example.test", ""] {
        let (_, qf) = fx.run(0, &message(sender, &["b@y.test"], b"\nx\n"));
        assert_eq!(qf.unwrap().sender(), "", "{sender}");
    }
    let (_, qf) = fx.run(
        0,
        &message("mailer-daemon@other.test", &["b@y.test"], b"\nx\n"),
    );
    assert_eq!(qf.unwrap().sender(), "mailer-daemon@other.test");
}

mod prop {
    use proptest::prelude::*;

    use super::*;

    fn record() -> impl Strategy<Value = (R, Vec<u8>)> {
        let kind = proptest::sample::select(RecordType::ALL.to_vec());
        let data = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::sample::select(vec![
                b"Subject: x".to_vec(),
                b"Received: y".to_vec(),
                b"To: a, b@c".to_vec(),
                b" folded".to_vec(),
                b"\r".to_vec(),
                Vec::new(),
                b"a@b".to_vec(),
                b"full_name=J".to_vec(),
            ]),
        ];
        (kind, data)
    }

    /// The input's lines with one CR before each LF removed; the end of
    /// the input ends a last line.
    fn normalized(input: &[u8]) -> Vec<u8> {
        let mut input = input.to_vec();
        if !input.is_empty() && !input.ends_with(b"\n") {
            input.push(b'\n');
        }
        let mut out = Vec::new();
        for line in input.split_inclusive(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
            out.push(b'\n');
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the client sends, cleanup neither panics nor leaves a
        /// file behind unless it said OK.
        #[test]
        fn any_record_sequence_is_handled(
            head in proptest::collection::vec(record(), 0..30),
            flags in 0u64..8,
        ) {
            let mut fx = Fixture::new();
            fx.cx.settings.hop_count_limit = 2;
            fx.cx.settings.header_size_limit = 16;
            fx.cx.settings.line_length_limit = 8;
            fx.cx.tables.header_checks = Some(TestChecks::new(&[("subject", "HOLD")]));
            let mut recs: Vec<(R, Vec<u8>)> =
                head.into_iter().filter(|(k, _)| *k != R::End).collect();
            recs.push((R::End, Vec::new()));
            let (v, qf) = fx.run(flags, &recs);
            prop_assert_eq!(v.queued.is_some(), v.status == status::OK);
            prop_assert_eq!(qf.is_some(), v.status == status::OK);
        }

        /// Arbitrary content in a well-formed envelope: the stored content
        /// is the input's lines, LF-terminated, whatever happens to it.
        #[test]
        fn any_content_is_handled(
            content in proptest::collection::vec(record(), 0..40),
            flags in 0u64..8,
        ) {
            let mut fx = Fixture::new();
            fx.cx.settings.line_length_limit = 8;
            let mut recs = vec![
                (R::Sender, b"a@b".to_vec()),
                (R::Recipient, b"c@d".to_vec()),
                (R::Message, Vec::new()),
            ];
            recs.extend(content.into_iter().map(|(k, d)| {
                (if k == R::Normal { R::Normal } else { R::Cont }, d)
            }));
            recs.push((R::Xtra, Vec::new()));
            recs.push((R::End, Vec::new()));
            let mut input = Vec::new();
            for (k, d) in &recs {
                postern_wire::content::join(*k, d, &mut input);
            }
            let (v, qf) = fx.run(flags, &recs);
            prop_assert!(v.status == status::OK || v.status == status::RCPT, "{:?}", v);
            if let Some(qf) = qf {
                let text = qf.content_to_vec();
                prop_assert!(text.is_empty() || text.ends_with(b"\n"));
                if flags == 0 {
                    // Nothing added or removed: the input's lines, one CR
                    // before each LF removed, and a final LF.
                    prop_assert_eq!(text, normalized(&input));
                }
            }
        }
    }
}

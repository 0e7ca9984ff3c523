//! qmgr through master with cleanup, trivial-rewrite and the test
//! delivery agent `test-deliver` (see `tests/src/bin/test-deliver.rs`):
//! messages are handed to cleanup with `ipc::cleanup::Client`, which
//! triggers qmgr; the spool and the log are checked.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use postern_ipc::cleanup::{Client, Recipient};
use postern_ipc::service::Class;
use postern_queue::{NewRecipient, Queue, QueueFile, QueueFileWriter, QueueId, RecipientStatus};
use postern_tests::Instance;

const WAIT: Duration = Duration::from_secs(30);

const TABLE: &str = "\
[cleanup]\ntype = \"unix\"\ncommand = \"cleanup\"\n\
[rewrite]\ntype = \"unix\"\ncommand = \"trivial-rewrite\"\n\
[qmgr]\ntype = \"unix\"\nprivate = false\nwakeup = \"300s\"\nmaxproc = 1\ncommand = \"qmgr\"\n\
[testagent]\ntype = \"unix\"\ncommand = \"test-deliver\"\n";

/// Local domains go to the test agent; other domains to a transport
/// that does not exist (deliveries there are deferred).
const MAIN: &str = "local_transport = \"testagent\"\ndefault_transport = \"nowhere\"\n\
minimal_backoff_time = \"3600s\"\nmaximal_backoff_time = \"7200s\"\n";

fn start(extra: &str) -> Instance {
    let mut inst = Instance::new(&format!("{MAIN}{extra}"), TABLE);
    inst.start();
    inst
}

/// Hands a message to cleanup; returns its queue id.
fn submit(inst: &Instance, sender: &str, rcpts: &[&str]) -> String {
    let rcpts: Vec<(&str, u8)> = rcpts.iter().map(|r| (*r, 0)).collect();
    submit_notify(inst, sender, &rcpts)
}

/// Like [`submit`], with DSN NOTIFY bits per recipient.
fn submit_notify(inst: &Instance, sender: &str, rcpts: &[(&str, u8)]) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let attempt = (|| {
            let mut c = Client::connect(&inst.queue_dir, WAIT, 0)?;
            c.sender(sender)?;
            for (r, notify) in rcpts {
                c.recipient(&Recipient {
                    address: r,
                    notify: *notify,
                    ..Recipient::default()
                })?;
            }
            c.begin_content()?;
            c.write_content(b"From: a@b\nSubject: test\n\nhello\n")?;
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

fn exists(spool: &Path, queue: Queue, id: &str) -> bool {
    spool.join(queue.dir_name()).join(id).exists()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn delivered(inst: &Instance) -> String {
    fs::read_to_string(inst.dir.path().join("delivered")).unwrap_or_default()
}

#[test]
fn delivered_message_is_removed() {
    let inst = start("");
    let id = submit(
        &inst,
        "alice@mail.example.test",
        &["bob@mail.example.test", "carol@localhost"],
    );
    let log = inst.wait_log(&format!("{id}: removed"), WAIT);
    assert!(
        log.contains(&format!(
            "{id}: from=<alice@mail.example.test>, size=31, nrcpt=2 (queue active)"
        )),
        "{log}"
    );
    let got = delivered(&inst);
    assert!(
        got.contains(&format!("{id} bob@mail.example.test")),
        "{got}"
    );
    assert!(got.contains(&format!("{id} carol@localhost")), "{got}");
    for q in [
        Queue::Incoming,
        Queue::Active,
        Queue::Deferred,
        Queue::Defer,
        Queue::Bounce,
    ] {
        assert!(!exists(&inst.queue_dir, q, &id), "{id} still in {q}");
    }
}

#[test]
fn deferred_then_delivered_after_flush() {
    let inst = start("");
    fs::write(inst.dir.path().join("defer-flag"), "").unwrap();
    let id = submit(
        &inst,
        "alice@mail.example.test",
        &["ok@mail.example.test", "defer-me@mail.example.test"],
    );
    wait_for("deferred file", || {
        exists(&inst.queue_dir, Queue::Deferred, &id)
    });
    let defer_log = fs::read_to_string(inst.queue_dir.join("defer").join(&id)).unwrap();
    assert_eq!(
        defer_log,
        "defer-me@mail.example.test\t4.2.0\tmailbox busy\n"
    );
    // The next attempt is an hour away (minimal_backoff_time).
    let mtime = fs::metadata(inst.queue_dir.join("deferred").join(&id))
        .unwrap()
        .modified()
        .unwrap();
    let wait = mtime.duration_since(SystemTime::now()).unwrap();
    assert!(wait > Duration::from_secs(3500), "{wait:?}");
    // The delivered recipient is done; the deferred one pending.
    let qf = QueueFile::open(&inst.queue_dir.join("deferred").join(&id)).unwrap();
    let st: Vec<_> = qf.recipients().iter().map(|r| r.status).collect();
    assert_eq!(st, [RecipientStatus::Done, RecipientStatus::Pending]);

    // A plain wakeup leaves it alone; F delivers it now.
    postern_ipc::trigger::send(&inst.queue_dir, (Class::Public, "qmgr"), b"I").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(exists(&inst.queue_dir, Queue::Deferred, &id));
    fs::remove_file(inst.dir.path().join("defer-flag")).unwrap();
    postern_ipc::trigger::send(&inst.queue_dir, (Class::Public, "qmgr"), b"F").unwrap();
    inst.wait_log(&format!("{id}: removed"), WAIT);
    let got = delivered(&inst);
    assert_eq!(
        got.matches(&format!("{id} ok@mail.example.test")).count(),
        1,
        "{got}"
    );
    assert!(
        got.contains(&format!("{id} defer-me@mail.example.test")),
        "{got}"
    );
    assert!(!exists(&inst.queue_dir, Queue::Defer, &id));
}

#[test]
fn bounce_sends_a_delivery_status_notification() {
    let inst = start("");
    // The sender's domain is remote, so the report stays deferred in the
    // queue where it can be read.
    let id = submit(
        &inst,
        "alice@remote.test",
        &["bounce-me@mail.example.test", "fine@mail.example.test"],
    );
    let qf = report_of(&inst, &id);
    assert!(!exists(&inst.queue_dir, Queue::Bounce, &id));
    assert_eq!(qf.sender(), "");
    let rcpts: Vec<_> = qf.recipients().iter().map(|r| r.address.as_str()).collect();
    assert_eq!(rcpts, ["alice@remote.test"]);
    let content = String::from_utf8(qf.content_to_vec()).unwrap();
    assert!(
        content.contains("Final-Recipient: rfc822; bounce-me@mail.example.test"),
        "{content}"
    );
    assert!(
        !content.contains("Final-Recipient: rfc822; fine@"),
        "{content}"
    );
    assert!(content.contains("Status: 5.1.1"), "{content}");
    // Python's email package parses it as an RFC 3464 report.
    let path = inst.dir.path().join("report.eml");
    fs::write(&path, &content).unwrap();
    let script = "import email,sys\n\
m=email.message_from_binary_file(open(sys.argv[1],'rb'))\n\
assert m.get_content_type()=='multipart/report', m.get_content_type()\n\
assert m.get_param('report-type')=='delivery-status'\n\
parts=m.get_payload()\n\
print([p.get_content_type() for p in parts])\n\
ds=parts[1].get_payload()\n\
print(ds[1]['Final-Recipient'], ds[1]['Action'], ds[1]['Status'])\n";
    match Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                text.contains("['text/plain', 'message/delivery-status', 'message/rfc822']"),
                "{text}"
            );
            assert!(
                text.contains("rfc822; bounce-me@mail.example.test failed 5.1.1"),
                "{text}"
            );
        }
        Err(e) => eprintln!("python3 not available ({e}): report checked by text only"),
    }
}

/// The report queued for `id` (found through the log), once it waits in
/// `deferred/` (its recipient's domain is remote).
fn report_of(inst: &Instance, id: &str) -> QueueFile {
    let log = inst.wait_log(&format!("{id}: removed"), WAIT);
    let marker = format!("{id}: sender non-delivery notification: ");
    let line = log
        .lines()
        .find(|l| l.contains(&marker))
        .unwrap_or_else(|| panic!("{log}"));
    let new_id = line.rsplit(' ').next().unwrap().to_string();
    wait_for("report in deferred", || {
        exists(&inst.queue_dir, Queue::Deferred, &new_id)
    });
    QueueFile::open(&inst.queue_dir.join("deferred").join(&new_id)).unwrap()
}

#[test]
fn expired_recipients_bounce_and_notify_never_is_honoured() {
    // Lifetime 0: one attempt only.
    let inst = start("maximal_queue_lifetime = \"0\"\n");
    fs::write(inst.dir.path().join("defer-flag"), "").unwrap();
    let id = submit_notify(
        &inst,
        "alice@remote.test",
        &[
            ("defer-a@mail.example.test", 0),
            ("bounce-quiet@mail.example.test", 1),
        ],
    );
    let qf = report_of(&inst, &id);
    let log = inst.log_text();
    assert!(
        log.contains(&format!(
            "{id}: to=<defer-a@mail.example.test>, relay=none, delay="
        )) && log.contains("status=expired, returned to sender"),
        "{log}"
    );
    let content = String::from_utf8(qf.content_to_vec()).unwrap();
    assert!(
        content.contains("Final-Recipient: rfc822; defer-a@mail.example.test"),
        "{content}"
    );
    assert!(
        content.contains("message expired after queue lifetime: mailbox busy"),
        "{content}"
    );
    assert!(content.contains("Status: 5.2.0"), "{content}");
    // NOTIFY=NEVER: failed, but not reported.
    assert!(!content.contains("bounce-quiet"), "{content}");
    assert!(!exists(&inst.queue_dir, Queue::Defer, &id));
}

#[test]
fn null_sender_bounce_is_dropped() {
    // Default notify_classes (resource, software): no double bounce.
    let inst = start("");
    let id = submit(&inst, "", &["bounce-x@mail.example.test"]);
    let log = inst.wait_log(&format!("{id}: removed"), WAIT);
    assert!(
        log.contains(&format!(
            "{id}: undeliverable bounce discarded (notify_classes has no bounce or 2bounce)"
        )),
        "{log}"
    );
    assert!(!log.contains("non-delivery notification"), "{log}");
}

/// The id at the end of the log line that contains `marker`.
fn new_id_after(log: &str, marker: &str) -> String {
    let line = log
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no {marker:?} in {log}"));
    line.rsplit(' ').next().unwrap().to_string()
}

/// Reads queue file `id` wherever it is (it moves between `deferred`
/// and `active` while it is retried), once it exists.
fn queued(inst: &Instance, id: &str) -> QueueFile {
    let deadline = Instant::now() + WAIT;
    loop {
        for q in [Queue::Deferred, Queue::Active, Queue::Incoming] {
            if let Ok(qf) = QueueFile::open(&inst.queue_dir.join(q.dir_name()).join(id)) {
                return qf;
            }
        }
        assert!(Instant::now() < deadline, "{id} not in the queue");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn double_bounces_go_to_the_postmaster_and_a_failed_one_is_discarded() {
    // The postmaster address itself bounces, so the double bounce fails
    // and must be dropped, never bounced again.
    let inst = start(
        "notify_classes = \"bounce\"\n\
         2bounce_notice_recipient = \"bounce-pm@mail.example.test\"\n\
         bounce_notice_recipient = \"pm-copy@remote.test\"\n",
    );
    let id = submit(&inst, "", &["bounce-x@mail.example.test"]);
    let log = inst.wait_log(&format!("{id}: removed"), WAIT);
    let double = new_id_after(
        &log,
        &format!("{id}: postmaster non-delivery notification: "),
    );
    let log = inst.wait_log(&format!("{double}: removed"), WAIT);
    assert!(
        log.contains(&format!(
            "{double}: from=<double-bounce@mail.example.test>, size="
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "{double}: undeliverable postmaster notification discarded"
        )),
        "{log}"
    );
    let after = log
        .split(&format!("{double}: removed"))
        .nth(1)
        .unwrap_or("");
    assert!(!after.contains("notification"), "{after}");

    // A single bounce goes to the sender, with a copy of the headers for
    // bounce_notice_recipient (notify_classes has bounce).
    let id = submit(&inst, "alice@remote.test", &["bounce-y@mail.example.test"]);
    let log = inst.wait_log(&format!("{id}: removed"), WAIT);
    let ndr = new_id_after(&log, &format!("{id}: sender non-delivery notification: "));
    let copy = new_id_after(
        &log,
        &format!("{id}: postmaster non-delivery notification: "),
    );
    assert_eq!(queued(&inst, &ndr).sender(), "");
    let qf = queued(&inst, &copy);
    assert_eq!(qf.sender(), "double-bounce@mail.example.test");
    assert_eq!(qf.recipients()[0].address, "pm-copy@remote.test");
    let content = String::from_utf8(qf.content_to_vec()).unwrap();
    assert!(
        content.contains("Subject: Postmaster Copy: Undelivered Mail"),
        "{content}"
    );
    assert!(
        content.contains("Content-Type: text/rfc822-headers"),
        "{content}"
    );
    assert!(!content.contains("\nhello\n"), "{content}");
}

#[test]
fn delay_warning_is_sent_once_to_those_who_want_it() {
    let mut inst = Instance::new(
        "local_transport = \"testagent\"\ndefault_transport = \"nowhere\"\n\
         delay_warning_time = \"1s\"\nqueue_run_delay = \"1s\"\n\
         minimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"1s\"\n\
         notify_classes = \"delay\"\ndelay_notice_recipient = \"pm@remote.test\"\n",
        TABLE,
    );
    inst.start();
    fs::write(inst.dir.path().join("defer-flag"), "").unwrap();
    // defer-b asked for failure notices only (NOTIFY=FAILURE).
    let id = submit_notify(
        &inst,
        "alice@remote.test",
        &[
            ("defer-a@mail.example.test", 0),
            ("defer-b@mail.example.test", 8),
        ],
    );
    let log = inst.wait_log(&format!("{id}: sender delay notification: "), WAIT);
    let warning = new_id_after(&log, &format!("{id}: sender delay notification: "));
    // Two more attempts after the warning: no second one.
    let attempts = |log: &str| {
        log.matches(&format!("{id}: to=<defer-a@mail.example.test>"))
            .count()
    };
    let before = attempts(&inst.log_text());
    inst.wait_log_count(
        &format!("{id}: to=<defer-a@mail.example.test>"),
        before + 2,
        WAIT,
    );
    let log = inst.log_text();
    assert_eq!(
        log.matches(&format!("{id}: sender delay notification"))
            .count(),
        1,
        "{log}"
    );
    // The warning time in the queue file is cleared (survives restarts).
    let qf = queued(&inst, &id);
    assert_eq!(qf.warn().map(|w| w.at), Some(None), "{:?}", qf.warn());

    let qf = queued(&inst, &warning);
    assert_eq!(qf.sender(), "");
    assert_eq!(qf.recipients()[0].address, "alice@remote.test");
    let content = String::from_utf8(qf.content_to_vec()).unwrap();
    assert!(
        content.contains("Subject: Delayed Mail (still being retried)"),
        "{content}"
    );
    assert!(
        content.contains(
            "Final-Recipient: rfc822; defer-a@mail.example.test\nAction: delayed\nStatus: 4.2.0\n"
        ),
        "{content}"
    );
    assert!(!content.contains("defer-b@"), "{content}");
    check_report_parses(&inst, &content, "defer-a@mail.example.test delayed 4.2.0");
    // notify_classes has delay: the postmaster gets a copy.
    let copy = new_id_after(&log, &format!("{id}: postmaster delay notification: "));
    let qf = queued(&inst, &copy);
    assert_eq!(qf.sender(), "double-bounce@mail.example.test");
    assert_eq!(qf.recipients()[0].address, "pm@remote.test");
    let content = String::from_utf8(qf.content_to_vec()).unwrap();
    assert!(
        content.contains("Subject: Postmaster Warning: Delayed Mail"),
        "{content}"
    );
    fs::remove_file(inst.dir.path().join("defer-flag")).unwrap();
    inst.wait_log(&format!("{id}: removed"), WAIT);
}

#[test]
fn success_notification_for_notify_success_and_notify_delay_gets_no_bounce() {
    let inst = start("");
    let id = submit_notify(
        &inst,
        "alice@remote.test",
        &[
            ("ok-a@mail.example.test", 2 | 8),
            ("ok-b@mail.example.test", 0),
            // NOTIFY=DELAY: a failure is not reported.
            ("bounce-d@mail.example.test", 4),
        ],
    );
    let log = inst.wait_log(&format!("{id}: removed"), WAIT);
    assert!(
        !log.contains(&format!("{id}: sender non-delivery")),
        "{log}"
    );
    let report = new_id_after(
        &log,
        &format!("{id}: sender delivery status notification: "),
    );
    assert!(!exists(&inst.queue_dir, Queue::Trace, &id));
    let qf = queued(&inst, &report);
    assert_eq!(qf.sender(), "");
    let content = String::from_utf8(qf.content_to_vec()).unwrap();
    assert!(
        content.contains("Subject: Successful Mail Delivery Report"),
        "{content}"
    );
    assert!(
        content.contains(
            "Final-Recipient: rfc822; ok-a@mail.example.test\nAction: delivered\nStatus: 2.0.0\n"
        ),
        "{content}"
    );
    assert!(!content.contains("ok-b@"), "{content}");
    assert!(!content.contains("bounce-d@"), "{content}");
    check_report_parses(&inst, &content, "ok-a@mail.example.test delivered 2.0.0");

    // A notification itself (null sender) never gets one.
    let id = submit_notify(&inst, "", &[("ok-c@mail.example.test", 2)]);
    let log = inst.wait_log(&format!("{id}: removed"), WAIT);
    assert!(
        !log.contains(&format!("{id}: sender delivery status")),
        "{log}"
    );
}

/// Python's email package reads `content` as an RFC 3464 report whose
/// first recipient part is "`want`" (address, action, status).
fn check_report_parses(inst: &Instance, content: &str, want: &str) {
    let path = inst.dir.path().join("report-check.eml");
    fs::write(&path, content).unwrap();
    let script = "import email,sys\n\
m=email.message_from_binary_file(open(sys.argv[1],'rb'))\n\
assert m.get_content_type()=='multipart/report', m.get_content_type()\n\
assert m.get_param('report-type')=='delivery-status'\n\
ds=m.get_payload()[1].get_payload()\n\
r=ds[1]\n\
print(r['Final-Recipient'].split(';')[1].strip(), r['Action'], r['Status'])\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want);
}

#[test]
fn active_files_return_to_incoming_after_kill() {
    let inst = start("");
    let id = submit(
        &inst,
        "alice@mail.example.test",
        &["slow-x@mail.example.test"],
    );
    let log = inst.wait_log(&format!("{id}: from=<"), WAIT);
    let line = log
        .lines()
        .find(|l| l.contains(&format!("{id}: from=<")))
        .unwrap();
    let pid: i32 = line
        .split("postern/qmgr[")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line}"));
    assert!(exists(&inst.queue_dir, Queue::Active, &id));
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    inst.wait_log(&format!("{id}: requeued from active to incoming"), WAIT);
    inst.wait_log(&format!("{id}: removed"), WAIT);
    // The agent of the killed qmgr was still delivering: the new qmgr
    // waits for it (the file is locked) instead of delivering again.
    let got = delivered(&inst);
    assert_eq!(
        got.matches(&format!("{id} slow-x@mail.example.test"))
            .count(),
        1,
        "{got}"
    );
}

#[test]
fn corrupt_incoming_file_goes_to_corrupt() {
    let inst = start("");
    let id = QueueId::generate(SystemTime::now(), 4242);
    let path = id.path(&inst.queue_dir, Queue::Incoming);
    fs::write(&path, b"POSTERN garbage, no records").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
    postern_ipc::trigger::send(&inst.queue_dir, (Class::Public, "qmgr"), b"I").unwrap();
    let log = inst.wait_log(&format!("warning: {id}: "), WAIT);
    assert!(log.contains("corrupt"), "{log}");
    wait_for("file in corrupt/", || {
        exists(&inst.queue_dir, Queue::Corrupt, id.as_str())
    });
    assert!(!exists(&inst.queue_dir, Queue::Incoming, id.as_str()));
    assert!(!exists(&inst.queue_dir, Queue::Active, id.as_str()));
}

#[test]
fn per_transport_recipient_and_concurrency_limits_hold_across_messages() {
    // testagent is a master.toml service, so main.toml may set its
    // per-destination limits.
    let inst = start(
        "testagent_destination_recipient_limit = 2\n\
         testagent_destination_concurrency_limit = 2\n",
    );
    let rcpts = [
        "conc-1@mail.example.test",
        "conc-2@mail.example.test",
        "conc-3@mail.example.test",
    ];
    // Four messages at once, each in two requests (2 + 1 recipients),
    // all to one destination.
    let ids: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| submit(&inst, "alice@mail.example.test", &rcpts)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for id in &ids {
        inst.wait_log(&format!("{id}: removed"), WAIT);
    }
    let requests = fs::read_to_string(inst.dir.path().join("requests")).unwrap();
    for id in &ids {
        let mut sizes: Vec<&str> = requests
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{id} ")))
            .collect();
        sizes.sort_unstable();
        assert_eq!(sizes, ["1", "2"], "{requests}");
    }
    let conc = fs::read_to_string(inst.dir.path().join("concurrency")).unwrap();
    let peak = conc
        .lines()
        .filter_map(|l| l.parse::<u32>().ok())
        .max()
        .unwrap();
    assert!(
        peak <= 2,
        "{peak} deliveries at once to one destination: {conc}"
    );
    assert_eq!(delivered(&inst).lines().count(), 12);
}

#[test]
fn unfinished_incoming_file_is_skipped_not_corrupt() {
    // What cleanup killed mid-message leaves: a 0600 (not ready) file
    // with half a message, young and old. qmgr must neither deliver it
    // nor call it corrupt (postsuper -p purges such files).
    let inst = start("");
    let done = submit(
        &inst,
        "alice@mail.example.test",
        &["ok-1@mail.example.test"],
    );
    inst.wait_log(&format!("{done}: removed"), WAIT);
    let mut stale = Vec::new();
    for (n, age) in [(1u32, None), (2, Some("2 hours ago"))] {
        let mut w = QueueFileWriter::create(&inst.queue_dir, Queue::Incoming).unwrap();
        w.time(SystemTime::now()).unwrap();
        w.sender("alice@mail.example.test").unwrap();
        w.recipient(&NewRecipient::new(&format!("half-{n}@mail.example.test")))
            .unwrap();
        let id = w.id().clone();
        // Never finished: the writer's file keeps mode 0600.
        std::mem::forget(w);
        let path = id.path(&inst.queue_dir, Queue::Incoming);
        assert!(path.exists(), "{}", path.display());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        if let Some(age) = age {
            let st = Command::new("touch")
                .arg("-d")
                .arg(age)
                .arg(&path)
                .status()
                .unwrap();
            assert!(st.success());
        }
        stale.push(id);
    }
    let id = submit(
        &inst,
        "alice@mail.example.test",
        &["ok-2@mail.example.test"],
    );
    inst.wait_log(&format!("{id}: removed"), WAIT);
    postern_ipc::trigger::send(&inst.queue_dir, (Class::Public, "qmgr"), b"A").unwrap();
    let id = submit(
        &inst,
        "alice@mail.example.test",
        &["ok-3@mail.example.test"],
    );
    inst.wait_log(&format!("{id}: removed"), WAIT);
    let log = inst.log_text();
    for id in &stale {
        assert!(
            exists(&inst.queue_dir, Queue::Incoming, id.as_str()),
            "{id}"
        );
        for q in [Queue::Active, Queue::Corrupt, Queue::Deferred] {
            assert!(!exists(&inst.queue_dir, q, id.as_str()), "{id} in {q}");
        }
        assert!(!log.contains(id.as_str()), "{log}");
    }
    assert!(!delivered(&inst).contains("half-"));
}

#[test]
fn hold_is_never_touched() {
    let inst = start("");
    let id = submit(&inst, "alice@mail.example.test", &["x@mail.example.test"]);
    inst.wait_log(&format!("{id}: removed"), WAIT);
    // A file put on hold stays there through every kind of scan.
    let held = QueueId::generate(SystemTime::now(), 777);
    fs::write(held.path(&inst.queue_dir, Queue::Hold), b"held").unwrap();
    postern_ipc::trigger::send(&inst.queue_dir, (Class::Public, "qmgr"), b"AFDIW").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(exists(&inst.queue_dir, Queue::Hold, held.as_str()));
}

#[test]
fn virtual_agent_delivers_and_bounces() {
    let mut inst = Instance::new(
        "",
        &format!("{TABLE}[virtual]\ntype = \"unix\"\nunpriv = false\ncommand = \"virtual\"\n"),
    );
    let base = inst.dir.path().join("vmail");
    fs::create_dir(&base).unwrap();
    inst.rewrite_main(&format!(
        "{MAIN}virtual_mailbox_domains = \"virt.test\"\n\
         virtual_mailbox_base = \"{}\"\n\
         virtual_mailbox_maps = \"inline:{{ joe@virt.test=joe/Maildir/ }}\"\n",
        base.display()
    ));
    inst.start();
    let id = submit(
        &inst,
        "alice@remote.test",
        &["joe@virt.test", "nobody@virt.test"],
    );
    let qf = report_of(&inst, &id);
    let new = base.join("joe/Maildir/new");
    let files: Vec<_> = fs::read_dir(&new).unwrap().collect();
    assert_eq!(files.len(), 1, "{new:?}");
    let mail = fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
    assert!(mail.contains("Subject: test\n"), "{mail}");
    let content = String::from_utf8(qf.content_to_vec()).unwrap();
    assert!(
        content.contains("Final-Recipient: rfc822; nobody@virt.test"),
        "{content}"
    );
    assert!(
        !content.contains("Final-Recipient: rfc822; joe@"),
        "{content}"
    );
    assert!(content.contains("Status: 5.1.1"), "{content}");
}

#[test]
fn active_limit_takes_the_queue_in_passes() {
    let inst = start("qmgr_message_active_limit = 1\n");
    // Queue files written behind qmgr's back, announced by one trigger.
    let ids: Vec<QueueId> = (0..3)
        .map(|n| {
            let mut w = QueueFileWriter::create(&inst.queue_dir, Queue::Incoming).unwrap();
            w.time(SystemTime::now()).unwrap();
            w.sender("alice@mail.example.test").unwrap();
            w.recipient(&NewRecipient::new(&format!("u{n}@mail.example.test")))
                .unwrap();
            w.begin_content().unwrap();
            w.write_content(b"Subject: batch\n\nhello\n").unwrap();
            w.finish().unwrap()
        })
        .collect();
    postern_ipc::trigger::send(&inst.queue_dir, (Class::Public, "qmgr"), b"I").unwrap();
    for id in &ids {
        inst.wait_log(&format!("{id}: removed"), WAIT);
    }
    let got = delivered(&inst);
    for (n, id) in ids.iter().enumerate() {
        assert!(
            got.contains(&format!("{id} u{n}@mail.example.test")),
            "{got}"
        );
    }
}

#[test]
fn smtp_to_maildir_through_smtpd_cleanup_qmgr_and_virtual() {
    let port = postern_tests::free_port();
    let mut inst = Instance::new(
        "",
        &format!(
            "{TABLE}[virtual]\ntype = \"unix\"\nunpriv = false\ncommand = \"virtual\"\n\
             [smtp]\ntype = \"inet\"\nlisten = \"127.0.0.1:{port}\"\ncommand = \"smtpd\"\n"
        ),
    );
    let base = inst.dir.path().join("vmail");
    fs::create_dir(&base).unwrap();
    inst.rewrite_main(&format!(
        "{MAIN}virtual_mailbox_domains = \"virt.test\"\n\
         virtual_mailbox_base = \"{}\"\n\
         virtual_mailbox_maps = \"inline:{{ joe@virt.test=joe/Maildir/ }}\"\n",
        base.display()
    ));
    inst.start();
    let mut c = postern_tests::LineClient::connect(port);
    assert!(c.line().starts_with("220 "));
    assert!(c.cmd("HELO client.test").starts_with("250"));
    assert!(c.cmd("MAIL FROM:<alice@remote.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<joe@virt.test>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let reply = c.cmd("Subject: over smtp\r\n\r\nhello joe\r\n.");
    assert!(reply.starts_with("250"), "{reply}");
    let id = reply.rsplit(' ').next().unwrap().to_string();
    c.cmd("QUIT");
    inst.wait_log(&format!("{id}: removed"), WAIT);
    let new = base.join("joe/Maildir/new");
    let files: Vec<_> = fs::read_dir(&new).unwrap().collect();
    assert_eq!(files.len(), 1, "{new:?}");
    let mail = fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
    assert!(mail.contains("Subject: over smtp"), "{mail}");
    assert!(mail.contains("hello joe"), "{mail}");
}

#[test]
fn error_transport_bounces_inside_qmgr() {
    let main = MAIN.replace("\"nowhere\"", "\"error:5.7.1 remote delivery disabled\"");
    let mut inst = Instance::new(&main, TABLE);
    inst.start();
    let id = submit(&inst, "alice@mail.example.test", &["bob@remote.test"]);
    let log = inst.wait_log(&format!("{id}: removed"), WAIT);
    assert!(
        log.contains(&format!("{id}: to=<bob@remote.test>, relay=none, delay="))
            && log.contains("dsn=5.7.1, status=bounced (remote delivery disabled)"),
        "{log}"
    );
    let marker = format!("{id}: sender non-delivery notification: ");
    let line = log.lines().find(|l| l.contains(&marker)).unwrap();
    let new_id = line.rsplit(' ').next().unwrap().to_string();
    // The report is delivered to the local sender like any message.
    inst.wait_log(&format!("{new_id}: removed"), WAIT);
    assert!(
        delivered(&inst).contains(&format!("{new_id} alice@mail.example.test")),
        "{}",
        delivered(&inst)
    );
}

#[test]
fn kill_9_of_qmgr_under_load_loses_and_duplicates_nothing() {
    use postern_tests::load;
    let (inst, accepted, counts, killed) =
        load::run_with_kills("qmgr", 2000, 5, Duration::from_millis(400));
    assert!(killed >= 3, "only {killed} kills");
    assert_eq!(accepted.len(), 2000, "not all accepted");
    let missing: Vec<_> = accepted
        .iter()
        .filter(|n| !counts.contains_key(n))
        .collect();
    let twice: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        missing.is_empty() && twice.is_empty(),
        "missing {missing:?}, duplicated {twice:?}; queue empty: {}",
        load::queue_empty(&inst.queue_dir)
    );
    assert_eq!(counts.len(), accepted.len());
    let log = inst.log_text();
    assert!(
        log.contains("requeued from active to incoming"),
        "qmgr never died mid-delivery"
    );
}
